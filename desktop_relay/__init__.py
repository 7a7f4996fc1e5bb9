"""Desktop Relay: browsers on the LAN stream to the app, the app pushes RTMP(S) through ffmpeg."""

__version__ = "0.1.0"
