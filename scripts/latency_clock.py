"""The wall clock painted into a video frame, and read back out of it (for bench_latency.py).

A frame of WIDTH x HEIGHT is cut into a GRID_COLS x GRID_ROWS grid of large cells, each all
black (0) or all white (1): 48 bits of the paint time (`Date.now()`, epoch ms, most
significant bit first) then a 16-bit CRC of those 6 bytes (CRC-16/CCITT-FALSE). Cells of
80x60 pixels survive H.264 and VP8 at any usual bitrate; the CRC (and a margin around mid
grey) rejects the blurred or half-updated frames an encoder makes at start or after a loss.

The browser side is CAMERA_INIT_SCRIPT, a Playwright init script that replaces
`navigator.mediaDevices.getUserMedia` with this canvas (and a WebAudio tone), so a page's
own camera code streams the clock. Python has the same painter (paint_frame) for tests.
"""

from __future__ import annotations

WIDTH = 640
HEIGHT = 480
FPS = 30
GRID_COLS = 8
GRID_ROWS = 8
TIME_BITS = 48
CRC_BITS = 16
CELL_W = WIDTH // GRID_COLS
CELL_H = HEIGHT // GRID_ROWS
# A cell's mean must be this far from mid grey to count: blur between cells is not read as a
# bit.
_DARK_MAX = 80
_LIGHT_MIN = 176
# Sample points per cell side, spread over the cell's middle half (away from its edges,
# where the encoder's blocks bleed into the neighbours).
_SAMPLES = 5

assert GRID_COLS * GRID_ROWS == TIME_BITS + CRC_BITS


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as the page computes it."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def clock_bits(ms: int) -> list[int]:
    """The cells' values, row by row, for a paint time of `ms` (0 <= ms < 2**48)."""
    if not 0 <= ms < 1 << TIME_BITS:
        raise ValueError(f"{ms} does not fit in {TIME_BITS} bits")
    value = (ms << CRC_BITS) | crc16(ms.to_bytes(TIME_BITS // 8, "big"))
    total = TIME_BITS + CRC_BITS
    return [(value >> (total - 1 - i)) & 1 for i in range(total)]


def paint_frame(ms: int) -> bytes:
    """A WIDTH x HEIGHT 8-bit grey frame showing `ms` (what the page's canvas paints)."""
    bits = clock_bits(ms)
    rows = []
    for r in range(GRID_ROWS):
        line = b"".join(
            (b"\xff" if bits[r * GRID_COLS + c] else b"\x00") * CELL_W for c in range(GRID_COLS)
        )
        rows.append(line * CELL_H)
    return b"".join(rows)


def _offsets(cell: int) -> list[int]:
    start, span = cell // 4, cell // 2
    return [start + (span * i) // (_SAMPLES - 1) for i in range(_SAMPLES)]


_X_OFFSETS = _offsets(CELL_W)
_Y_OFFSETS = _offsets(CELL_H)


def decode_frame(frame: bytes | bytearray | memoryview, width: int = WIDTH) -> int | None:
    """The paint time (epoch ms) shown by an 8-bit grey frame, or None when it cannot be read
    (a cell too close to grey, or a CRC mismatch). The frame may be any size whose grid
    matches: `width` is its line length; cells are found by proportion."""
    height = len(frame) // width
    cell_w, cell_h = width / GRID_COLS, height / GRID_ROWS
    xs = [int(x * width / WIDTH) for x in _X_OFFSETS]
    ys = [int(y * height / HEIGHT) for y in _Y_OFFSETS]
    value = 0
    for r in range(GRID_ROWS):
        for c in range(GRID_COLS):
            x0, y0 = int(c * cell_w), int(r * cell_h)
            total = 0
            for y in ys:
                row = (y0 + y) * width + x0
                for x in xs:
                    total += frame[row + x]
            mean = total / (len(xs) * len(ys))
            if _DARK_MAX < mean < _LIGHT_MIN:
                return None
            value = (value << 1) | (mean >= _LIGHT_MIN)
    ms, crc = value >> CRC_BITS, value & ((1 << CRC_BITS) - 1)
    if crc16(ms.to_bytes(TIME_BITS // 8, "big")) != crc:
        return None
    return ms


# The same layout and CRC in JavaScript. clockBits is kept apart so that a test can run it in
# node and compare it with clock_bits. JavaScript numbers hold Date.now() exactly (< 2**53),
# and bytes are cut with division, not 32-bit bit operators.
CLOCK_BITS_JS = f"""
function clockBits(ms) {{
  const bytes = [];
  for (let i = {TIME_BITS // 8 - 1}; i >= 0; i--) bytes.push(Math.floor(ms / 2 ** (8 * i)) % 256);
  let crc = 0xffff;
  for (const b of bytes) {{
    crc ^= b << 8;
    for (let k = 0; k < 8; k++) crc = (crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1) & 0xffff;
  }}
  const bits = [];
  for (const b of bytes) for (let k = 7; k >= 0; k--) bits.push((b >> k) & 1);
  for (let k = {CRC_BITS - 1}; k >= 0; k--) bits.push((crc >> k) & 1);
  return bits;
}}
"""

# Replaces getUserMedia: a canvas repainted with Date.now() on every animation frame,
# captured at FPS, plus a 440 Hz tone through WebAudio (a real camera stream has sound, and
# audio changes how the recorders and muxers wait). `window.__latencyClickAt` is the page's
# Date.now() when #start was clicked (the start-to-first-frame origin).
CAMERA_INIT_SCRIPT = (
    "(() => {"
    + CLOCK_BITS_JS
    + f"""
  let canvas, audio;
  function paint() {{
    const ctx = canvas.getContext("2d");
    const bits = clockBits(Date.now());
    for (let i = 0; i < bits.length; i++) {{
      ctx.fillStyle = bits[i] ? "#fff" : "#000";
      ctx.fillRect((i % {GRID_COLS}) * {CELL_W}, Math.floor(i / {GRID_COLS}) * {CELL_H},
                   {CELL_W}, {CELL_H});
    }}
    requestAnimationFrame(paint);
  }}
  function clockCamera() {{
    if (!canvas) {{
      canvas = document.createElement("canvas");
      canvas.width = {WIDTH};
      canvas.height = {HEIGHT};
      paint();
      const context = new AudioContext({{ sampleRate: 48000 }});
      const tone = context.createOscillator();
      const gain = context.createGain();
      gain.gain.value = 0.1;
      tone.frequency.value = 440;
      tone.connect(gain);
      tone.start();
      audio = {{ context, gain }};
    }}
    void audio.context.resume();
    const sink = audio.context.createMediaStreamDestination();
    audio.gain.connect(sink);
    const video = canvas.captureStream({FPS}).getVideoTracks();
    return new MediaStream([...video, ...sink.stream.getAudioTracks()]);
  }}
  if (navigator.mediaDevices) {{
    navigator.mediaDevices.getUserMedia = async () => clockCamera();
  }}
  document.addEventListener("click", (event) => {{
    const target = event.target;
    if (target instanceof Element && target.closest("#start")) window.__latencyClickAt = Date.now();
  }}, true);
}})();
"""
)
