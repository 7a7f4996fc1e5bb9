"""Benchmark: N browser sessions through a relay, each sent to M outputs; prints one table.

Usage: .venv/bin/python scripts/bench_relay.py [--sessions 8] [--outputs 1] [--seconds 10]
                                               [--transcode] [--thumbnails]
                                               [--relay-checkout DIR] [--pace-ms MS]
                                               [--pace-per-source-ms MS]

The relay runs as its own process (this script with `--serve`: the headless relay's
RelayServer, in-process there) so that its CPU and memory are measured apart from the clients,
which replay the suite's MediaRecorder captures (tests/fixtures/) in real time over socket.io,
as browsers would. Every session goes to `--outputs` RTMP targets on a local nginx with the
RTMP module (Debian's nginx + libnginx-mod-rtmp, started in the foreground, recording
nothing), one stream key per session and output: nginx refuses a second publisher on a key
("Already publishing"), so the relay's `--rtmp-url` (the same URLs for every session) cannot
serve many sessions. `--outputs 0` sends no target: each session is recorded to a file in a
temporary folder, which is what this script measured before outputs existed. With
`--relay-checkout` the relay is another checkout's headless command line (an older commit's,
to compare in the same hour: this machine's figures drift between hours), recording to files.
Only 127.0.0.1 is used.

Reported: the relay process's CPU (in all and per session: over the whole run, and while
every session streams, i.e. without the sessions' starts and ends) and peak RSS; the encoder
ffmpegs' and the output ffmpegs' CPU and peak RSS, apart; nginx's CPU; chunk ack latency;
video frames through the encoders against the frames sent, output bytes against encoder
bytes, tags the outputs dropped and output reconnects. With `--thumbnails` the relay decodes
live thumbnails of every session (`Relay.set_thumbnails(True)`, as the window does while it
shows them), and their ffmpegs' CPU (in all and per session) and the pictures made are
reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop_relay.procstat import children_by_parent, cpu_ns, read_stat  # noqa: E402
from desktop_relay.relay import event_loop  # noqa: E402
from tests.media import H264_FIXTURE, VP8_FIXTURE, probe  # noqa: E402
from tests.replay import Streamer  # noqa: E402

SUMMARY = "BENCH-SUMMARY "
# The replay sends the 20 s capture once, in 80 chunks, one every 0.25 s.
FIXTURE_S = 20.0
CHUNKS = 80


def _stat(pid: int) -> tuple[float, int] | None:
    """(cpu seconds, rss bytes) of a process."""
    stat = read_stat(pid)
    return (stat.cpu_s, stat.rss_bytes) if stat is not None else None


# The steady figure leaves out the sessions' starts (ffmpegs spawned, encoders probed) and ends.
STEADY_FROM_S = 3.0


def _steady(samples: list[tuple[float, int]], started: float, until: float) -> float | None:
    """% of one core between STEADY_FROM_S after `started` and `until` (the first session done)."""
    window = [s for s in samples if started + STEADY_FROM_S <= s[0] <= until]
    if len(window) < 2 or window[-1][0] - window[0][0] < 2.0:
        return None
    (t0, c0), (t1, c1) = window[0], window[-1]
    return 100 * (c1 - c0) / 1e9 / (t1 - t0)


async def start_relay_child(
    command: list[str], cwd: str | Path | None = None
) -> tuple[asyncio.subprocess.Process, int]:
    """Start a relay child (stdout piped) and wait for its "listening on host:port" line;
    the process and its port."""
    proc = await asyncio.create_subprocess_exec(*command, cwd=cwd, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    while True:
        line = (await proc.stdout.readline()).decode()
        if not line:
            raise RuntimeError("the relay did not start")
        if m := re.search(r"listening on \S+:(\d+)", line):
            return proc, int(m.group(1))


def _children(pid: int) -> list[int]:
    return children_by_parent(living=False).get(pid, [])


ENCODER, OUTPUT, THUMBNAILS = "encoder", "output", "thumbnails"


def _kind(pid: int) -> str | None:
    """ENCODER for a session's encoder ffmpeg (it flushes its FLV per packet to the relay),
    THUMBNAILS for a thumbnail tap's (it writes raw video), OUTPUT for an output's `-c copy`
    ffmpeg; None once gone or not yet ffmpeg (forked, not exec'd)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if b"ffmpeg" not in Path(args[0].decode(errors="replace")).name.encode():
        return None
    if b"-flush_packets" in args:
        return ENCODER
    return THUMBNAILS if b"rawvideo" in args else OUTPUT


# ---- the relay's side (--serve) ----------------------------------------------------------


class CallbackCosts:
    """Thread CPU time of every event-loop callback, by what it runs, and of the selector.

    Wraps asyncio's Handle._run (a task step is named by its coroutine): where the relay's
    own CPU goes, without a profiler's per-call overhead skewing Python against the kernel.
    """

    def __init__(self) -> None:
        self.costs: dict[str, list[float]] = {}  # name: [calls, seconds]

    def _count(self, name: str, since: float) -> None:
        entry = self.costs.setdefault(name, [0, 0.0])
        entry[0] += 1
        entry[1] += time.thread_time() - since

    def install(self) -> None:
        import asyncio.events
        import selectors

        run, select = asyncio.events.Handle._run, selectors.EpollSelector.select

        def timed_run(handle: asyncio.events.Handle) -> None:
            # Named first: a reader's handle is cancelled (its callback cleared) when the
            # callback removes its own reader.
            name = _callback_name(handle)
            start = time.thread_time()
            run(handle)
            self._count(name, start)

        def timed_select(selector: Any, timeout: float | None = None) -> Any:
            start = time.thread_time()
            ready = select(selector, timeout)
            self._count("(the selector: epoll_wait and its events)", start)
            return ready

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign,assignment]
        selectors.EpollSelector.select = timed_select  # type: ignore[method-assign,assignment]

    def report(self, top: int = 15) -> list[str]:
        rows = sorted(self.costs.items(), key=lambda kv: -kv[1][1])
        total = sum(t for _, t in self.costs.values())
        lines = [f"event-loop callbacks: {1000 * total:.0f} ms of thread CPU in all; the top {top}"]
        for name, (count, spent) in rows[:top]:
            lines.append(
                f"  {1000 * spent:7.1f} ms {int(count):7d} calls {1e6 * spent / count:7.1f} us  "
                f"{name}"
            )
        return lines


def _callback_name(handle: asyncio.Handle) -> str:
    callback = handle._callback  # type: ignore[attr-defined]
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        return "task " + (getattr(coro, "__qualname__", None) or type(coro).__name__)
    function = getattr(callback, "__func__", callback)
    if isinstance(function, functools.partial):
        function = function.func
    return getattr(function, "__qualname__", None) or type(function).__name__


async def serve(args: argparse.Namespace) -> None:
    """Run the relay until SIGTERM, then print what the ended sessions' snapshots say."""
    from bench_child import BenchRelay, serve_until_sigterm

    from desktop_relay.relay import BaseObserver, RelayConfig, Thumbnail
    from desktop_relay.relay.config import StartConfig
    from desktop_relay.relay.outputs.destinations import Destination
    from desktop_relay.relay.session.session import Session
    from desktop_relay.relay.status import SessionStatus

    logging.basicConfig(level=logging.WARNING, format="relay: %(levelname)s %(name)s %(message)s")
    base, count = args.rtmp_base, args.outputs

    def targets(session: Session, config: StartConfig) -> list[Destination]:
        # A key of its own per session and output (nginx takes one publisher per key).
        return [Destination(f"{base}/{session.uuid}-{i}") for i in range(count)]

    relay = BenchRelay(
        RelayConfig(
            host="127.0.0.1",
            port=0,
            log_level="WARNING",
            recordings_dir=Path(args.serve),
        ),
        targets if base is not None else None,
    )
    totals: dict[str, Any] = {
        "sessions": 0,
        "frames": 0,
        "encoder_bytes": 0,
        "output_bytes": 0,
        "outputs": 0,
        "dropped_tags": 0,
        "reconnects": 0,
        "failed_outputs": 0,
        "errors": [],
        "thumbnails": 0,
    }

    class CountPictures(BaseObserver):
        def thumbnail(self, session_id: str, thumbnail: Thumbnail) -> None:
            totals["thumbnails"] += 1

    def on_destroyed(session_id: str, status: SessionStatus) -> None:
        totals["sessions"] += 1
        if status.ffmpeg is not None:
            totals["frames"] += status.ffmpeg.frames_sent
            totals["encoder_bytes"] += status.ffmpeg.stats.total_size
        for output in status.outputs:
            totals["outputs"] += 1
            totals["output_bytes"] += output.bytes_sent
            totals["dropped_tags"] += output.dropped_tags
            totals["reconnects"] += output.reconnects
            totals["failed_outputs"] += output.state == "failed"
        if status.error is not None:
            totals["errors"].append(str(status.error.name))

    costs = CallbackCosts() if args.callbacks else None
    if costs is not None:
        costs.install()
    relay.add_listener("session_ended", lambda status: on_destroyed(status.uuid, status))
    relay.add_observer(CountPictures())
    relay.set_thumbnails(args.thumbnails)
    await serve_until_sigterm(relay)
    if costs is not None:
        totals["callbacks"] = costs.report()
    print(SUMMARY + json.dumps(totals), flush=True)


# ---- the clients' side ---------------------------------------------------------------------


async def session(url: str, data: bytes, total: int, latencies: list[float]) -> None:
    """One browser: the capture's first `total` bytes in real time, then `stop`."""
    streamer = await Streamer(url).connect()
    assert await streamer.start({"framerate": 20})
    step = len(data) // CHUNKS
    t0 = time.monotonic()
    for i, pos in enumerate(range(0, total, step)):
        sent = time.monotonic()
        await streamer.send(data[pos : min(pos + step, total)])
        latencies.append(time.monotonic() - sent)
        await asyncio.sleep(max(0.0, t0 + (i + 1) * FIXTURE_S / CHUNKS - time.monotonic()))
    await streamer.stop()
    await streamer.close()


@dataclass
class Usage:
    """CPU seconds (last seen, per process) and the peak of summed RSS of a set of processes."""

    cpu: dict[int, float] = field(default_factory=dict)
    peak_rss: int = 0

    def sample(self, pids: list[int]) -> None:
        rss = 0
        for pid in pids:
            st = _stat(pid)
            if st:
                self.cpu[pid] = st[0]
                rss += st[1]
        self.peak_rss = max(self.peak_rss, rss)


def _frames_sent(data: bytes, total: int) -> int:
    """Video frames in the part of the capture a session sends (counted by ffprobe)."""
    with tempfile.NamedTemporaryFile(suffix=".mkv") as part:
        part.write(data[:total])
        part.flush()
        return probe(Path(part.name)).video_frames


async def bench(args: argparse.Namespace) -> None:
    """Start nginx (for outputs) and the relay, replay the sessions, print the table."""
    fixture = VP8_FIXTURE if args.transcode else H264_FIXTURE
    data = fixture.read_bytes()
    total = int(len(data) * args.seconds / FIXTURE_S)
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    nginx = None
    with tempfile.TemporaryDirectory() as tmp:
        extra: list[str] = []
        if args.outputs > 0:
            from tests.rtmp_server import require_nginx_rtmp, start_nginx_rtmp

            nginx = start_nginx_rtmp(require_nginx_rtmp(), Path(tmp) / "nginx", record=False)
            extra = ["--rtmp-base", f"rtmp://127.0.0.1:{nginx.port}/live"]
        if args.relay_checkout is not None:
            # `-m` with the checkout as the working directory imports its package first.
            command = [sys.executable, "-m", "desktop_relay", "--headless", "--host"]
            command += ["127.0.0.1", "--port", "0", "--no-tls", "--no-auth"]
            command += ["--recordings-dir", tmp, "--log-level", "WARNING"]
        else:
            command = [sys.executable, __file__, "--serve", tmp, "--outputs", str(args.outputs)]
            command += [*extra, *(["--thumbnails"] if args.thumbnails else [])]
            command += ["--callbacks"] if args.callbacks else []
            command += ["--pace-ms", str(args.pace_ms)]
            command += ["--pace-per-source-ms", str(args.pace_per_source_ms)]
        try:
            proc, port = await start_relay_child(command, cwd=args.relay_checkout)
            base = _stat(proc.pid)
            nginx_base = _stat(nginx.process.pid) if nginx else None
            assert base is not None
            latencies: list[float] = []
            peak_relay = 0
            usage = {ENCODER: Usage(), OUTPUT: Usage(), THUMBNAILS: Usage()}
            kinds: dict[int, str] = {}
            tasks = [
                asyncio.create_task(session(f"http://127.0.0.1:{port}", data, total, latencies))
                for _ in range(args.sessions)
            ]
            started = time.monotonic()
            first_done = None
            steady_samples: list[tuple[float, int]] = []
            while not all(t.done() for t in tasks):
                now = time.monotonic()
                if first_done is None and any(t.done() for t in tasks):
                    first_done = now
                if (ns := cpu_ns(proc.pid)) is not None:
                    steady_samples.append((now, ns))
                relay = _stat(proc.pid)
                if relay:
                    peak_relay = max(peak_relay, relay[1])
                for child in _children(proc.pid):
                    if child not in kinds and (kind := _kind(child)) is not None:
                        kinds[child] = kind
                children = [c for c in kinds if Path(f"/proc/{c}").exists()]
                for kind, used in usage.items():
                    used.sample([c for c in children if kinds[c] == kind])
                await asyncio.sleep(0.25)
            await asyncio.gather(*tasks)
            wall = time.monotonic() - started
            end = _stat(proc.pid)
            nginx_end = _stat(nginx.process.pid) if nginx else None
            assert end is not None
            proc.terminate()
            out, _ = await proc.communicate()
        finally:
            if nginx is not None:
                nginx.stop()
    summary = next(
        (
            json.loads(line[len(SUMMARY) :])
            for line in out.decode().splitlines()
            if line.startswith(SUMMARY)
        ),
        None,
    )
    expected = _frames_sent(data, total) * args.sessions

    relay_cpu = 100 * (end[0] - base[0]) / wall
    steady = _steady(steady_samples, started, first_done or started + wall)
    lat = sorted(latencies)
    mode = "VP8 -> libx264" if args.transcode else "H.264 copy"
    where = f"{args.outputs} RTMP output(s) to nginx" if args.outputs else "recorded to a file"
    if args.relay_checkout is not None:
        where += f", by the headless relay of {args.relay_checkout}"
    rows = [
        (
            "run",
            f"{args.sessions} sessions x {args.seconds:g} s of {fixture.name} ({mode}), "
            f"each {where}",
        ),
        ("load average before", " ".join(loadavg)),
        ("wall time", f"{wall:.1f} s"),
        (
            "relay process CPU",
            f"{relay_cpu:.1f} % of one core; {relay_cpu / args.sessions:.2f} % per session",
        ),
        (
            "relay process CPU, streaming",
            "not measured (too short a run)"
            if steady is None
            else f"{steady:.2f} % of one core; {steady / args.sessions:.3f} % per session "
            f"(from {STEADY_FROM_S:g} s after the start to the first session's end)",
        ),
        ("relay process peak RSS", f"{peak_relay / 2**20:.1f} MiB"),
        _usage_row(ENCODER, kinds, usage[ENCODER], wall),
        _usage_row(OUTPUT, kinds, usage[OUTPUT], wall),
    ]
    if args.thumbnails:
        tap_cpu = 100 * sum(usage[THUMBNAILS].cpu.values()) / wall
        rows += [
            _usage_row(THUMBNAILS, kinds, usage[THUMBNAILS], wall),
            (
                "thumbnails per session",
                f"CPU {tap_cpu / args.sessions:.2f} % of one core (relay process: "
                f"{relay_cpu / args.sessions:.2f} %, with its share of the taps' feeding); "
                f"{(summary or {}).get('thumbnails', 0) / args.sessions:.1f} pictures each",
            ),
        ]
    if nginx_base and nginx_end:
        rows.append(
            (
                "nginx (receiver)",
                f"CPU {100 * (nginx_end[0] - nginx_base[0]) / wall:.1f} % of one core",
            )
        )
    if summary is None:
        rows.append(("video frames, outputs", "not reported by that relay (no in-process hooks)"))
    else:
        frames = summary["frames"]
        copies = summary["encoder_bytes"] * max(1, args.outputs)
        delivered = summary["output_bytes"] / max(1, copies)
        rows += [
            (
                "video frames",
                f"{frames} of {expected} sent through the encoders "
                f"({100 * frames / max(1, expected):.1f} %)",
            ),
            (
                "outputs",
                f"{summary['outputs']} ended; bytes out {100 * delivered:.1f} % of "
                f"encoder bytes x outputs; {summary['dropped_tags']} tags dropped, "
                f"{summary['reconnects']} reconnects, {summary['failed_outputs']} failed",
            ),
            ("session errors", ", ".join(summary["errors"]) or "none"),
        ]
    rows += [
        (
            "chunk ack latency",
            f"p50 {1000 * statistics.median(lat):.1f} ms, "
            f"p95 {1000 * lat[int(0.95 * (len(lat) - 1))]:.1f} ms, "
            f"max {1000 * lat[-1]:.1f} ms ({len(lat)} chunks)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)} | {value}")
    for line in (summary or {}).get("callbacks", []):
        print(line)


def _usage_row(kind: str, kinds: dict[int, str], usage: Usage, wall: float) -> tuple[str, str]:
    return (
        f"{kind} ffmpegs",
        f"{sum(1 for k in kinds.values() if k == kind)} processes, CPU "
        f"{100 * sum(usage.cpu.values()) / wall:.1f} % of one core, "
        f"peak RSS {usage.peak_rss / 2**20:.0f} MiB in all",
    )


def add_pace_option(parser: argparse.ArgumentParser) -> None:
    """`--pace-ms` and `--pace-per-source-ms`: the relay child's event-loop pacing (see
    `run_benchmark`)."""
    parser.add_argument(
        "--pace-ms",
        type=float,
        default=1000 * event_loop.PACE_S,
        help="the relay's longest event-loop pace, as the headless relay's "
        "(relay/event_loop.py); 0: plain asyncio",
    )
    parser.add_argument(
        "--pace-per-source-ms",
        type=float,
        default=1000 * event_loop.PACE_PER_SOURCE_S,
        help="the pace per file descriptor the loop watches, up to --pace-ms, as the "
        "headless relay's; 0: always --pace-ms",
    )


def run_benchmark(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    serve: Callable[[argparse.Namespace], Coroutine[Any, Any, None]],
    bench: Callable[[argparse.Namespace], Coroutine[Any, Any, None]],
) -> None:
    """Run the relay child (`--serve`) on the headless relay's paced loop, or the benchmark
    that starts it on plain asyncio."""
    if not 0 <= args.pace_ms <= 100 or not 0 <= args.pace_per_source_ms <= 10:
        parser.error("--pace-ms must be in [0, 100], --pace-per-source-ms in [0, 10]")
    if args.serve:
        event_loop.run(serve(args), args.pace_ms / 1000, args.pace_per_source_ms / 1000)
    else:
        asyncio.run(bench(args))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument(
        "--outputs",
        type=int,
        default=1,
        help="RTMP outputs per session (0: record each session to a file)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help=f"seconds of the capture each session sends (at most {FIXTURE_S:g})",
    )
    parser.add_argument("--transcode", action="store_true", help="VP8 input (libx264 encode)")
    parser.add_argument(
        "--relay-checkout",
        metavar="DIR",
        type=Path,
        help="measure the headless relay of another checkout instead (e.g. a worktree of an "
        "older commit: `git worktree add /tmp/old 503b128`), each session recorded to a file",
    )
    parser.add_argument(
        "--thumbnails", action="store_true", help="decode live thumbnails of every session"
    )
    add_pace_option(parser)
    parser.add_argument(
        "--callbacks",
        action="store_true",
        help="also print where the relay's CPU goes: thread CPU time per event-loop callback "
        "(over the whole run, starts and ends included)",
    )
    # The relay's own process (started by the benchmark): its recordings folder.
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--rtmp-base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 < args.seconds <= FIXTURE_S:
        parser.error(f"--seconds must be in (0, {FIXTURE_S:g}]: the capture is sent once")
    if args.outputs < 0:
        parser.error("--outputs must be 0 or more")
    if args.relay_checkout is not None:
        if not (args.relay_checkout / "desktop_relay" / "__main__.py").is_file():
            parser.error(f"--relay-checkout: no desktop_relay package in {args.relay_checkout}")
        if args.thumbnails:
            parser.error("--relay-checkout measures a plain headless relay: no --thumbnails")
        if args.callbacks:
            parser.error("--relay-checkout measures a plain headless relay: no --callbacks")
        # What that relay's command line can do without this script's in-process hooks.
        args.outputs = 0
    run_benchmark(parser, args, serve, bench)


if __name__ == "__main__":
    main()
