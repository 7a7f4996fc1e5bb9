"""The operator's pattern for targets that browsers may choose (`rtmpUrlRegexp`).

The pattern comes from the operator but is matched against text any browser sends, on the
event loop that serves every session. With Python's `re`, a pattern as ordinary as
`rtmp://([\\w-]+\\.?)+(:\\d+)?/live/\\w+` backtracks exponentially on a failing target: a
25-character host froze every session for 3 s, and each character doubles it.

We match with RE2 (`google-re2`), whose automaton takes time linear in the target's length
whatever the pattern, so a match stays in the microseconds and can run on the loop. We chose
it over the `regex` package's match timeout because a timeout only bounds the harm: each
hostile start would still stall the loop (or a thread) for the whole timeout, and a slow but
legitimate match could be refused under load. The price is syntax: RE2 refuses
backreferences and lookaround, which are refused with a clear message at configuration time
rather than at the first browser's start. Everything else the original's JavaScript-style
patterns use (classes, `\\d`, `\\w`, `\\/`, `{m,n}`, `(?i)`, named groups) is accepted;
`\\d` and `\\w` are ASCII-only, which is all a target may hold.
"""

from __future__ import annotations

import re2

# RE2 names these in its parse errors: the syntax it deliberately lacks.
_UNSUPPORTED = ("invalid perl operator", "invalid escape sequence", "bad repetition operator")


class PatternError(ValueError):
    """A pattern that is not a valid regular expression, or uses syntax RE2 does not support."""


class TargetPattern:
    """A compiled allowed-target pattern; `matches` must cover the whole target."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        options = re2.Options()
        # Else RE2 prints its parse errors on stderr itself; ours carries the message.
        options.log_errors = False
        try:
            self._regex = re2.compile(pattern, options)
        except re2.error as exc:
            raise PatternError(_explain(exc)) from None

    def matches(self, url: str) -> bool:
        """Whether `url` matches the whole pattern; linear time in `len(url)`."""
        return self._regex.fullmatch(url) is not None


def check_pattern(pattern: str) -> str:
    """Return `pattern` if it compiles as an allowed-target pattern, else raise PatternError."""
    TargetPattern(pattern)
    return pattern


def _explain(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else str(exc)
    reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if reason.startswith(_UNSUPPORTED):
        return (
            f"{reason}: backreferences, lookahead/lookbehind and possessive repeats are not "
            "supported (patterns are matched in linear time, with RE2 syntax)"
        )
    return reason
