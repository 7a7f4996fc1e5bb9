"""ffmpeg itself: the process (spawn, feed, `-progress` counters, log lines, stop and reap),
and the command lines of the encoder and of the outputs, as pure functions."""
