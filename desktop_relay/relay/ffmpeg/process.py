"""One ffmpeg child process: find the binary, start, feed with backpressure, read its output,
stop gracefully and always reap."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import select
import shutil
import signal
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable

from ..errors import ErrorName, RelayError, ServerError
from ..event_loop import pace
from ..status import FfmpegState, FfmpegStats
from .progress import ProgressParser

log = logging.getLogger(__name__)

# Log lines end in \n, or \r for a status line redrawn in place; progress lines in \n.
_LINE_SPLIT = re.compile(rb"[\r\n]+")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL this child when the relay dies, even by SIGKILL.

    Without it a relay killed by a supervisor leaves ffmpeg running (PPID 1) and holding the
    RTMP connection, so the stream looks alive on the platform. The signal comes when the
    forking thread ends: ffmpeg is always spawned from the event loop's (main) thread.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_SETPRIV_UNKNOWN = "?"
_setpriv_path: str | None = _SETPRIV_UNKNOWN


def _setpriv() -> str | None:
    """util-linux's setpriv, if it can set the parent-death signal (2.33+); looked up once
    (again only if the look-up itself could not run: out of descriptors, say)."""
    global _setpriv_path
    if _setpriv_path != _SETPRIV_UNKNOWN:
        return _setpriv_path
    if sys.platform != "linux":
        _setpriv_path = None
        return None
    path = shutil.which("setpriv")
    if path is None:
        _setpriv_path = None
        return None
    try:
        import subprocess

        result = subprocess.run(
            [path, "--pdeathsig", "KILL", "--", "true"], capture_output=True, timeout=5
        )
    except OSError as exc:
        if exc.errno not in (errno.EMFILE, errno.ENFILE):
            _setpriv_path = None
        return None
    except subprocess.SubprocessError:
        _setpriv_path = None
        return None
    _setpriv_path = path if result.returncode == 0 else None
    return _setpriv_path


def _spawn_options(args: list[str]) -> tuple[list[str], Callable[[], None] | None]:
    """The command and preexec_fn that make ffmpeg die with the relay (see _die_with_parent).

    setpriv sets the death signal and execs ffmpeg: the relay's fork then needs no Python in
    the child, so CPython uses vfork. A preexec_fn forces a full fork of the relay's memory,
    measured here at 40-55 ms of blocked event loop per ffmpeg under load (64 sessions
    starting together waited seconds for it); through setpriv, 10 ms.
    """
    setpriv = _setpriv()
    if setpriv is not None:
        return [setpriv, "--pdeathsig", "KILL", "--", *args], None
    return args, _die_with_parent if sys.platform == "linux" else None


def _executable(program: str) -> bool:
    if os.sep in program:
        return os.path.isfile(program) and os.access(program, os.X_OK)
    return shutil.which(program) is not None


def resolve_ffmpeg(configured: str | None = None) -> str:
    """The configured binary, else imageio-ffmpeg's bundled one, else `ffmpeg` on PATH."""
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise RelayError(
                ServerError(
                    ErrorName.FFMPEG_NOT_FOUND, f"ffmpeg executable not found at {configured}"
                )
            )
        return found
    try:
        import imageio_ffmpeg

        exe = str(imageio_ffmpeg.get_ffmpeg_exe())
        if os.access(exe, os.X_OK):
            return exe
    except (ImportError, RuntimeError) as exc:
        log.debug("imageio-ffmpeg has no ffmpeg: %s", exc)
    found = shutil.which("ffmpeg")
    if found is None:
        raise RelayError(ServerError(ErrorName.FFMPEG_NOT_FOUND, "ffmpeg executable not found"))
    return found


def exit_error(returncode: int | None, last_lines: list[str]) -> ServerError:
    """An unexpected ffmpeg exit as the protocol's error, with its last output lines. Where a
    stream was going decides more (outputs/destinations.py: each kind tells its own)."""
    return ServerError(
        ErrorName.FFMPEG_UNEXPECTED_END,
        f"ffmpeg ended unexpectedly (exit code {returncode})",
        "\n".join(last_lines[-12:]),
    )


def _cant_start(exc: OSError) -> ServerError:
    """CANT_START_FFMPEG for a failed pipe or spawn, saying plainly when the relay (or the
    system) ran out of file descriptors: the operator's fix is then ours to name."""
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        whose = "the relay" if exc.errno == errno.EMFILE else "the system"
        return ServerError(
            ErrorName.CANT_START_FFMPEG,
            f"ffmpeg could not start: {whose} has no file descriptors left ({exc.strerror}); "
            "end some streams or raise the open-file limit (ulimit -n)",
        )
    return ServerError(ErrorName.CANT_START_FFMPEG, f"ffmpeg could not start: {exc}")


def _close(*fds: int | None) -> None:
    for fd in fds:
        if fd is not None:
            os.close(fd)


# ffmpeg writes its output for a piece of input as a burst of packets flushed one by one, a
# few milliseconds apart in all. Reading as soon as the pipe turns readable wakes the relay
# once for every packet or two (about 20 times a second per session, each wake-up costing the
# event loop more than the reading); waiting this long after the first byte takes the whole
# burst in one read (4 to 6 a second for a MediaRecorder stream). It adds at most this much
# latency to the outputs. On a paced loop (event_loop.py) whose pace is at least as long,
# readiness is gathered already: the pipe is read at once there.
MEDIA_READ_DELAY_S = 0.008
# ffmpeg's log: a line is one write, and the audio meter's blocks (5 a second, three lines
# each, audio_meter.py) come a chunk's worth at a time. Nothing in it is urgent (the meter is
# shown twice a second; an exit is noticed by the exit, and its last lines are read to EOF),
# so it is read at most about 4 times a second: every read was a wake-up and a parse, about
# as much of the relay's own CPU as the -progress blocks.
LOG_READ_DELAY_S = 0.25
# Reads in one go before giving the loop back, so a producer faster than the relay cannot
# starve it (each read takes at most a pipe's capacity, 64 KiB on Linux).
_MAX_READS = 16
_READ_SIZE = 1 << 18
_PIPE_CAPACITY = 1 << 16  # Linux's default


class _Lines:
    """Splits a pipe's bytes into lines for `on_line` (decoded, without their ends; empty
    lines are skipped)."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._on_line = on_line
        self._pending = b""

    def __call__(self, data: bytes) -> None:
        *lines, self._pending = _LINE_SPLIT.split(self._pending + data)
        for line in lines:
            if line:
                self._on_line(line.decode("utf-8", "replace"))

    def flush(self) -> None:
        """The stream ended: an unfinished last line is a line too."""
        pending, self._pending = self._pending, b""
        if pending:
            self._on_line(pending.decode("utf-8", "replace"))


_HANGUP = getattr(select, "EPOLLHUP", 0) | getattr(select, "EPOLLERR", 0)
_EDGE_PIPES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _EdgePipes] = (
    weakref.WeakKeyDictionary()
)


class _EdgePipes:
    """Every pipe that _PipeReaders read on one event loop, in one edge-triggered epoll that
    the loop watches as a single reader (Linux).

    A reader that waits a moment before reading (to take a burst in one read) had to leave
    the loop's level-triggered selector meanwhile and join it again after: two epoll_ctl
    calls and the selector's bookkeeping per read, for every pipe of every ffmpeg, a good
    part of the relay's own CPU per session. An edge-triggered watch reports a pipe once
    per arrival of data and stays registered: the reader just reads later. It closes with its
    last pipe.
    """

    @classmethod
    def join(
        cls, loop: asyncio.AbstractEventLoop, reader: _PipeReader, fd: int
    ) -> _EdgePipes | None:
        """The loop's set with `fd` watched for `reader`; None where there is no epoll or it
        cannot be made (out of descriptors): the reader then uses the loop's own selector."""
        if not hasattr(select, "epoll"):
            return None
        pipes = _EDGE_PIPES.get(loop)
        try:
            if pipes is None:
                pipes = cls(loop)
            pipes._epoll.register(fd, select.EPOLLIN | select.EPOLLET)
        except OSError as exc:
            log.debug("reading ffmpeg's pipes without epoll: %s", exc)
            if pipes is not None and not pipes._readers:
                pipes._close()
            return None
        pipes._readers[fd] = reader
        return pipes

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._epoll = select.epoll()
        self._readers: dict[int, _PipeReader] = {}
        try:
            loop.add_reader(self._epoll.fileno(), self._ready)
        except BaseException:
            self._epoll.close()
            raise
        _EDGE_PIPES[loop] = self

    def _ready(self) -> None:
        try:
            events = self._epoll.poll(0)
        except OSError as exc:  # pragma: no cover - only on a closed or broken epoll
            log.warning("watching ffmpeg's pipes failed: %s", exc)
            return
        readers = self._readers
        for fd, mask in events:
            reader = readers.get(fd)
            if reader is not None:
                if mask & _HANGUP:
                    reader.hung_up = True
                reader._readable()

    def leave(self, fd: int) -> None:
        """Stop watching `fd` (before it is closed); the set closes with its last pipe."""
        self._readers.pop(fd, None)
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)
        if not self._readers:
            self._close()

    def _close(self) -> None:
        if _EDGE_PIPES.get(self._loop) is self:
            del _EDGE_PIPES[self._loop]
        if not self._loop.is_closed():
            self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()


class _PipeReader:
    """Hands what ffmpeg writes to one of its pipes to `on_data` straight from the event loop:
    no transport, no task and no stream buffer between the pipe and the consumer (for the
    media, the fan-out: the relay's hottest path). With a `delay`, a readable pipe is read that
    long later, in one go. It owns the pipe's read end and closes it at EOF (then calls
    `on_eof`) or when `done` is cancelled."""

    def __init__(
        self,
        fd: int,
        on_data: Callable[[bytes], None],
        delay: float,
        on_eof: Callable[[], None] | None = None,
    ) -> None:
        os.set_blocking(fd, False)
        self._fd: int | None = fd
        self._on_data = on_data
        self._on_eof = on_eof
        self._loop = asyncio.get_running_loop()
        # A paced loop gathers a burst by itself: a shorter wait of our own would only add a
        # timer and a pace's worth of latency.
        self._delay = 0.0 if delay <= pace(self._loop) else delay
        self._timer: asyncio.Handle | None = None
        # The write end is closed (edge-triggered: said once, maybe with the last bytes):
        # read on to EOF rather than stop at a read that empties the pipe.
        self.hung_up = False
        self.done: asyncio.Future[None] = self._loop.create_future()
        self.done.add_done_callback(lambda _: self.close())
        # Edge-triggered where it can be (see _EdgePipes); else the loop's own selector.
        self._pipes = _EdgePipes.join(self._loop, self, fd)
        if self._pipes is None:
            self._loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        if self._fd is None:
            return
        if not self._delay:
            self._drain()
            return
        if self._timer is not None:
            return  # more of the burst: its read is already due
        if self._pipes is None:
            # Off the selector while the burst arrives: a level-triggered pipe would wake
            # us again.
            self._loop.remove_reader(self._fd)
        self._timer = self._loop.call_later(self._delay, self._drain)

    def _drain(self) -> None:
        self._timer = None
        fd = self._fd
        if fd is None:
            return
        chunks: list[bytes] = []
        eof = emptied = False
        for _ in range(_MAX_READS):
            try:
                data = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                emptied = True
                break
            except OSError as exc:
                log.warning("reading ffmpeg's output failed: %s", exc)
                eof = True
                break
            if not data:
                eof = True
                break
            chunks.append(data)
            if len(data) < _PIPE_CAPACITY and not self.hung_up:
                # Less than a full pipe: it is empty now (spare the read that would say so).
                emptied = True
                break
        if chunks:
            self._deliver(self._on_data, chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if eof:
            if self._on_eof is not None:
                self._deliver(self._on_eof)
            self.close()
            if not self.done.done():
                self.done.set_result(None)
        elif self._fd is None or self._timer is not None:
            return  # closed by the consumer, or read again already
        elif self._pipes is None:
            if self._delay:
                self._loop.add_reader(self._fd, self._readable)
        elif not emptied:
            # Bytes may be left, and an edge-triggered watch tells of new bytes only: read
            # on without waiting for them (a producer faster than the relay still yields the
            # loop between rounds).
            self._timer = self._loop.call_soon(self._drain)

    def read_now(self) -> None:
        """The writer has exited: read to EOF now, without waiting out the delay (the exit's
        handling waits for every pipe's end)."""
        if self._fd is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.hung_up = True
        self._drain()

    @staticmethod
    def _deliver(consumer: Callable[..., None], *args: bytes) -> None:
        try:
            consumer(*args)
        except Exception:  # the consumer's bug must not stop the reading (and the reaping)
            log.exception("handling ffmpeg's output failed")

    def close(self) -> None:
        """Stop reading and close the pipe (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        fd, self._fd = self._fd, None
        if fd is not None:
            if self._pipes is not None:
                self._pipes.leave(fd)
            else:
                self._loop.remove_reader(fd)
            os.close(fd)


class FfmpegProcess:
    """Owns one ffmpeg child from spawn to reap. Writes are ordered by the caller."""

    def __init__(
        self,
        args: list[str],
        *,
        on_line: Callable[[str], None],
        on_stats: Callable[[FfmpegStats], None],
        on_data: Callable[[bytes], None] | None = None,
        take_line: Callable[[str], bool] | None = None,
    ) -> None:
        self.args = args
        self._on_line = on_line
        # Lines it takes (returns True for) are not log lines: the audio meter's readings.
        self._take_line = take_line
        self._on_stats = on_stats
        # With `on_data`, stdout is ffmpeg's media output (its args end in `pipe:1`), handed
        # over as read; `-progress` then goes to a pipe of its own, added by start().
        self._on_data = on_data
        self._proc: asyncio.subprocess.Process | None = None
        # Each of the child's pipes read to its end (see `wait`).
        self._readers: list[_PipeReader] = []
        self._pipes_read: list[asyncio.Future[None]] = []
        self.state = FfmpegState.CREATED
        self.progress = ProgressParser()
        self.last_lines: deque[str] = deque(maxlen=40)
        self.stopping = False
        # Monotonic time of the first write that ffmpeg has not yet answered with output; the
        # relay's stall watchdog reads it (see `waiting_for_output`).
        self._pending_since: float | None = None
        self.has_output = False

    @property
    def pid(self) -> int | None:
        """The child's pid once started."""
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        """The exit code once reaped."""
        return self._proc.returncode if self._proc else None

    async def start(self, pass_fds: tuple[int, ...] = ()) -> None:
        """Spawn ffmpeg (inheriting `pass_fds`); raises FFMPEG_NOT_FOUND or CANT_START_FFMPEG."""
        args = self.args
        # Every output of the child gets a pipe of our own, read by a _PipeReader: no
        # transport or task per pipe, and reads timed to take a burst at once. Out of
        # descriptors (EMFILE, ENFILE) any of these may fail: whatever was made is closed
        # again, and the caller gets CANT_START_FFMPEG, never a bare OSError.
        made: list[int] = []

        def pipe() -> tuple[int, int]:
            read_end, write_end = os.pipe()
            made.extend((read_end, write_end))
            return read_end, write_end

        data_r = data_w = None
        try:
            log_r, log_w = pipe()
            progress_r, progress_w = pipe()
            if self._on_data is not None:
                # stdout carries the media (the args end in `pipe:1`); -progress gets its
                # own pipe.
                args = [args[0], "-progress", f"pipe:{progress_w}", *args[1:]]
                pass_fds = (*pass_fds, progress_w)
                data_r, data_w = pipe()
        except OSError as exc:
            _close(*made)
            raise RelayError(_cant_start(exc)) from None
        command, preexec = _spawn_options(args)
        try:
            if command is not args and not _executable(args[0]):
                # setpriv would start and then fail to exec it: say what is missing ourselves.
                raise FileNotFoundError(args[0])
            self._proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=data_w if data_w is not None else progress_w,
                stderr=log_w,
                # Its own session: Ctrl-C in a terminal must reach the relay only, which then
                # stops ffmpeg gracefully instead of losing the stream's tail.
                start_new_session=True,
                preexec_fn=preexec,
                pass_fds=pass_fds,
            )
        except FileNotFoundError:
            _close(log_r, progress_r, data_r)
            raise RelayError(
                ServerError(ErrorName.FFMPEG_NOT_FOUND, "ffmpeg executable not found", self.args[0])
            ) from None
        except OSError as exc:
            _close(log_r, progress_r, data_r)
            raise RelayError(_cant_start(exc)) from None
        finally:
            _close(log_w, progress_w, data_w)  # the child has its copies; EOF comes at its exit
        self.state = FfmpegState.RUNNING
        lines = _Lines(self._log_line)
        readers = [
            # A progress block comes in one write: read it at once.
            _PipeReader(progress_r, self._progress_data, 0.0, self._progress_end),
            # A log line is one write, and the audio meter's block three: wait for the rest.
            _PipeReader(log_r, lines, LOG_READ_DELAY_S, lines.flush),
        ]
        if data_r is not None:
            assert self._on_data is not None
            readers.append(_PipeReader(data_r, self._on_data, MEDIA_READ_DELAY_S))
        self._readers = readers
        self._pipes_read = [reader.done for reader in readers]

    def _progress_data(self, data: bytes) -> None:
        before = self.progress.stats
        self._progress_blocks(before, self.progress.feed(data))

    def _progress_end(self) -> None:
        before = self.progress.stats
        self._progress_blocks(before, self.progress.flush())

    def _progress_blocks(self, before: FfmpegStats, blocks: list[FfmpegStats]) -> None:
        for stats in blocks:
            # ffmpeg prints progress blocks on a timer even while its output is blocked:
            # only growing counters mean the output really moves.
            if stats.total_size > before.total_size or stats.frames > before.frames:
                self._pending_since = None
                self.has_output = True
            before = stats
            self._on_stats(stats)

    def waiting_for_output(self, now: float | None = None) -> float:
        """Seconds since ffmpeg was given input it has not turned into any output (0 if none).

        A stalled RTMP server blocks ffmpeg's socket, then its muxer: input keeps arriving
        and nothing leaves. A paused browser sends nothing, so it never counts as a stall.
        """
        if self._pending_since is None or self.state != FfmpegState.RUNNING:
            return 0.0
        return (time.monotonic() if now is None else now) - self._pending_since

    def _log_line(self, line: str) -> None:
        if self._take_line is not None and self._take_line(line):
            return
        if line.strip():
            self.last_lines.append(line)
            self._on_line(line)

    async def write(self, data: bytes) -> None:
        """Write and wait until the pipe has taken it: this is the session's backpressure."""
        proc = self._proc
        if proc is None or proc.stdin is None or self.state != FfmpegState.RUNNING:
            raise RelayError(
                ServerError(ErrorName.FFMPEG_NOT_RUNNING, "ffmpeg is not running", fatal=False)
            )
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        try:
            proc.stdin.write(data)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise RelayError(
                ServerError(ErrorName.FFMPEG_WRITE_ERROR, f"Writing to ffmpeg failed: {exc}")
            ) from None

    def write_now(self, data: bytes) -> bool:
        """Hand `data` to the pipe at once if nothing waits before it; False (nothing done)
        if earlier data is still buffered or ffmpeg is not running: then use `write`.

        No await, no task switch: the fan-out's common case, where the pipe is keeping up.
        """
        proc = self._proc
        if proc is None or proc.stdin is None or self.state != FfmpegState.RUNNING:
            return False
        transport = proc.stdin.transport
        if transport.is_closing() or transport.get_write_buffer_size():
            return False
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        transport.write(data)
        return True

    def kill(self) -> None:
        """SIGKILL now (its exit is then reaped by `wait` or `stop`)."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    async def wait(self) -> int:
        """Wait for the exit and for its output to be read; the child is reaped after this."""
        assert self._proc is not None
        rc = await self._proc.wait()
        for reader in self._readers:
            reader.read_now()  # the log's reader may be waiting out its delay
        if self._pipes_read:
            await asyncio.gather(*self._pipes_read, return_exceptions=True)
        self.state = FfmpegState.ENDED
        return rc

    async def stop(self, timeout: float = 10.0, terminate_grace: float = 3.0) -> int | None:
        """Close stdin so ffmpeg flushes the tail, then terminate, then kill; always reap.

        `timeout` is the wait for a graceful end, `terminate_grace` the wait after SIGTERM
        (an ffmpeg blocked on a stalled network write may not act on it: then SIGKILL).
        """
        self.stopping = True
        proc = self._proc
        if proc is None:
            self.state = FfmpegState.ENDED
            return None
        if proc.returncode is None:
            self.state = FfmpegState.ENDING
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
            steps = ((None, timeout), (proc.terminate, terminate_grace), (proc.kill, None))
            try:
                for step, grace in steps:
                    if step is not None:
                        with contextlib.suppress(ProcessLookupError):
                            step()
                    try:
                        await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
                        break
                    except TimeoutError:
                        log.warning("ffmpeg %s did not stop in %.0f s", proc.pid, grace)
            except asyncio.CancelledError:
                # Whoever stopped us gave up waiting: ffmpeg must not live on unsupervised.
                # asyncio's child watcher reaps it as it dies.
                self.kill()
                raise
        return await self.wait()
