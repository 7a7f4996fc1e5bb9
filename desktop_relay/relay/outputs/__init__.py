"""Where a session's normalized stream goes: the hub that fans it out, the supervised ffmpeg
sinks (outputs to RTMP(S)/SRT targets or recording files, thumbnail taps), recordings, the
browser's safety copy and the backoff between attempts."""
