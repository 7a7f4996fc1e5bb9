"""Sound levels of a session's audio, measured by its encoder ffmpeg.

The encoder runs a side branch on the browser's audio: `astats` over 0.2 s blocks, printed by
`ametadata` to its log (`METER_FILTER`, an extra null output), which this class reads and
keeps out of the session's log. Levels are dBFS: 0 is full scale, -inf digital silence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# 9600 samples: 0.2 s at 48 kHz (Opus is always decoded at 48 kHz), 0.22 s at 44.1 kHz.
METER_FILTER = (
    "[0:a:0]asetnsamples=n=9600:p=0,"
    "astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=Peak_level+RMS_level,"
    "ametadata=mode=print[meter]"
)
_PEAK = "lavfi.astats.Overall.Peak_level="
_RMS = "lavfi.astats.Overall.RMS_level="
_PTS = "pts_time:"
_OWN_LINE = "[Parsed_ametadata_"
_STATS_LINE = "[Parsed_astats_"
BLOCK_S = 0.2  # a block's duration at 48 kHz
# Quieter than this (RMS) is silence for the "silent for N s" warning: a muted microphone
# or one whose gain is at zero; a quiet room is about -60 to -50 dBFS.
SILENCE_DB = -70.0


@dataclass(frozen=True)
class AudioLevel:
    """The last block's levels (dBFS; -inf for digital silence) and how long it has been
    silent (under SILENCE_DB), 0 when there is sound."""

    peak_db: float
    rms_db: float
    silent_s: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON has no -inf: null stands for digital silence."""
        return {
            "peakDb": None if math.isinf(self.peak_db) else round(self.peak_db, 1),
            "rmsDb": None if math.isinf(self.rms_db) else round(self.rms_db, 1),
            "silentFor": round(self.silent_s, 1),
        }


def _db(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # "-inf", "inf", "nan" parse; anything else is not a level
        return -math.inf


class AudioMeter:
    """Reads the encoder's meter lines (`feed_line`); `level` is the latest reading.

    Silence is counted in media time (each block's `pts_time`), not in wall time: a backlog
    resent after a drop arrives in a burst but lasted as long as it lasted.
    """

    def __init__(self) -> None:
        self._peak = -math.inf
        self._rms = -math.inf
        self._at: float | None = None  # media time of the block being read
        self._updated: float | None = None  # media time of the last complete block
        self._sound_at: float | None = None  # ... of the last block above SILENCE_DB
        self._since: float | None = None  # ... of the first block

    def feed_line(self, line: str) -> bool:
        """Take one line of the encoder's log; True if it was the meter's (not for the log:
        that includes astats' summary at the end)."""
        if _OWN_LINE not in line:
            return _STATS_LINE in line
        if (at := line.find(_PTS)) >= 0:
            self._at = _db(line[at + len(_PTS) :].split()[0])
        elif (at := line.find(_PEAK)) >= 0:
            self._peak = _db(line[at + len(_PEAK) :].strip())
        elif (at := line.find(_RMS)) >= 0 and self._at is not None and math.isfinite(self._at):
            self._rms = _db(line[at + len(_RMS) :].strip())
            now = self._at
            self._updated = now
            if self._since is None:
                self._since = now
            if self._rms > SILENCE_DB:
                self._sound_at = now
        return True

    @property
    def level(self) -> AudioLevel | None:
        """The latest levels, or None before the first block."""
        if self._updated is None or self._since is None:
            return None
        if self._sound_at == self._updated:
            silent = 0.0
        else:
            # The silence began with the block after the last loud one (or the first block).
            began = self._since if self._sound_at is None else self._sound_at + BLOCK_S
            silent = self._updated + BLOCK_S - began
        return AudioLevel(self._peak, self._rms, max(0.0, silent))
