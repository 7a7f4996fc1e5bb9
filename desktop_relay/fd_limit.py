"""The process's open-file limit: raised to what the system allows before the relay serves.

Every session holds about a dozen descriptors (its socket, the encoder's and each output's
pipes, recordings), and so does every connection still handshaking. Linux's usual soft limit
of 1024 runs out at about 80 sessions, while the hard limit (what an unprivileged process may
raise its own soft limit to) is often far higher: ask for all of it.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def raise_open_files_limit() -> tuple[int, int] | None:
    """Raise the soft RLIMIT_NOFILE to the hard one; returns (before, after), or None where
    there is no such limit (Windows) or it cannot be changed (then the relay runs with the
    one it has: never a reason not to start)."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard
        if target == resource.RLIM_INFINITY:
            # macOS refuses RLIM_INFINITY as a soft limit; a million is plenty anyway.
            target = 1 << 20
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        after = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError) as exc:
        log.debug("open-file limit left as it is: %s", exc)
        return None
    log.debug("open-file limit: soft %s -> %s (hard %s)", soft, after, hard)
    return soft, after
