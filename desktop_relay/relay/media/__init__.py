"""Media bytes, parsed: container framing (Matroska/WebM, MP4, FLV), H.264 parameter sets,
keyframes, the stream cache, catch-up after a resume, health numbers and the audio meter.

Pure and synchronous: no asyncio, no subprocess, no I/O. Imports only `errors` below it.
"""
