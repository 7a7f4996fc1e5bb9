"""Benchmark: how many H.264 copy sessions the relay holds; prints one row per session count.

Usage: .venv/bin/python scripts/bench_capacity.py [--counts 16 32 48 64 80 96] [--seconds 20]
                                                  [--per-address 4] [--original] [--rounds R]
                                                  [--max-cpu-percent P] [--keep-going]
                                                  [--pace-ms MS] [--pace-per-source-ms MS]

For each count N, a fresh relay (a child process: scripts/bench_child.py's BenchRelay, this
script with `--serve`) takes N browser sessions at once, each replaying
tests/fixtures/mediarecorder-h264-opus-640x480-20s.mkv over socket.io in real time (0.25 s
chunks, as MediaRecorder does), each session to a stream key of its own on a local nginx with
the RTMP module (recording nothing). The sessions come from many loopback source addresses
(127.0.0.2, 127.0.0.3, ...: `--per-address` sessions on each, as phones on a LAN are; the relay
caps 32 connections per address). Each client's websocket offers permessage-deflate, as
browsers' do. A count holds when every session started, got >= 95 % of
its video frames through (the relay's final session statuses) and stayed real time: its last
chunk was acked less than 0.5 s after its due time (start + n x 0.25 s). Reported per N: the
sessions that held, the worst drift, chunk ack latency p50/p95, disconnects (the socket lost
before the client stopped), RELAY_BUSY refusals and other errors, the server's and its
ffmpegs' CPU, and the load average. Then the largest N that held.

With `--original` the original Node server (`@api.video/browser-to-rtmp-server` 0.2.4, from
npm, as scripts/bench_latency.py installs and starts it) is measured in the same run, fed by
the original client's protocol (unnumbered `binarystream` chunks, the `rtmp` URL in `start`).
It always encodes with libx264 (it has no copy mode); its frames are counted by ffprobe in
nginx's recordings. The sweep of a server stops at the first count that did not hold unless
`--keep-going`. Only 127.0.0.x is used.

The relay child runs on the headless relay's paced event loop (relay/event_loop.py: I/O
gathered for `--pace-per-source-ms` per file descriptor it watches, 1 ms by default, up to
`--pace-ms`, 50 ms by default; 0 for plain asyncio or for a fixed pace, to compare).

With `--rounds R` every count is run R times; with `--original` the two servers alternate at
each count (the relay first in odd rounds, the original first in even ones), so that both
see the same hour of this shared machine. Each row gives the server process's own CPU in all
and per session (the relay's process, not its ffmpegs; node's process, not its ffmpegs), and
with `--original` the run ends with the relay's own CPU per session against the original's
at each count: every round's ratio (the two measured one after the other) and the means'.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_relay import (  # noqa: E402
    CHUNKS,
    FIXTURE_S,
    Usage,
    _children,
    _frames_sent,
    _stat,
    add_pace_option,
    run_benchmark,
    start_relay_child,
)
from bench_transcode import cpu_of  # noqa: E402

from desktop_relay.procstat import is_alive  # noqa: E402
from desktop_relay.relay.ffmpeg.encoder_args import build_encoder_args  # noqa: E402
from desktop_relay.relay.ffmpeg.process import resolve_ffmpeg  # noqa: E402
from desktop_relay.relay.load import read_cpu_times  # noqa: E402
from desktop_relay.relay.media.container import InputFormat  # noqa: E402
from desktop_relay.relay.session.validation import validate_start  # noqa: E402
from tests.media import H264_FIXTURE, _listening, free_port, probe  # noqa: E402
from tests.replay import Streamer  # noqa: E402

SUMMARY = "CAPACITY-SUMMARY "
FRAMES_HELD = 0.95  # of the frames sent
DRIFT_HELD_S = 0.5  # the last chunk's ack after its due time
CHUNK_S = FIXTURE_S / CHUNKS
# What each of the relay's sessions sends in `start` (the rest the relay's defaults).
RELAY_START = {"framerate": 20}


# ---- the relay's side (--serve) ----------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    """A relay sending each session to a key of its own on nginx, until SIGTERM; then one
    line with every ended session's frames and errors."""
    from bench_child import BenchRelay, serve_until_sigterm

    from desktop_relay.relay import RelayConfig
    from desktop_relay.relay.config import StartConfig
    from desktop_relay.relay.outputs.destinations import Destination
    from desktop_relay.relay.session.session import Session
    from desktop_relay.relay.status import SessionStatus

    logging.basicConfig(level=logging.WARNING, format="relay: %(levelname)s %(name)s %(message)s")
    base = args.rtmp_base

    def targets(session: Session, config: StartConfig) -> list[Destination]:
        return [Destination(f"{base}/{session.uuid}")]

    relay = BenchRelay(
        RelayConfig(
            host="127.0.0.1",
            port=0,
            log_level="WARNING",
            recordings_dir=Path(args.serve),
            max_cpu_percent=args.max_cpu_percent,
        ),
        targets,
    )
    ended: list[dict[str, Any]] = []

    def on_ended(status: SessionStatus) -> None:
        ended.append(
            {
                "frames": status.ffmpeg.frames_sent if status.ffmpeg is not None else 0,
                "error": str(status.error.name) if status.error is not None else None,
                "dropped_tags": sum(o.dropped_tags for o in status.outputs),
                "reconnects": sum(o.reconnects for o in status.outputs),
            }
        )

    relay.add_listener("session_ended", on_ended)
    await serve_until_sigterm(relay)
    print(SUMMARY + json.dumps(ended), flush=True)


# ---- the clients' side ---------------------------------------------------------------------


@dataclass
class Client:
    """What one browser session saw."""

    started: bool = False
    refused: str | None = None  # the start's error name
    disconnected: bool = False
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    drift: float | None = None  # the last chunk's ack after its due time
    chunks: int = 0


class BrowserLikeHttp:
    """An aiohttp session for a socket.io client whose websocket, like every browser's,
    offers permessage-deflate: the server decides (the original's engine.io never takes it;
    the relay took it before e6bd977, and inflated every chunk)."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def ws_connect(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("compress", 15)
        return self._session.ws_connect(*args, **kwargs)


async def one_session(
    url: str, http: Any, data: bytes, total: int, config: dict[str, Any]
) -> Client:
    import socketio

    seen = Client()
    client = socketio.AsyncClient(http_session=BrowserLikeHttp(http), reconnection=False)
    streamer = Streamer(url, client=client)
    try:
        await asyncio.wait_for(streamer.connect(), 20)
        seen.started = await streamer.start(config, timeout=20)
        if not seen.started:
            seen.refused = str(streamer.errors[-1].get("name", streamer.errors[-1]))
            return seen
        step = len(data) // CHUNKS
        t0 = time.monotonic()
        for i, pos in enumerate(range(0, total, step)):
            sent = time.monotonic()
            ack = await streamer.send(data[pos : min(pos + step, total)], timeout=30)
            now = time.monotonic()
            seen.latencies.append(now - sent)
            seen.drift = now - (t0 + i * CHUNK_S)
            seen.chunks += 1
            if ack:
                seen.errors.append(str(ack))
            if streamer.disconnected.is_set():
                break
            await asyncio.sleep(max(0.0, t0 + (i + 1) * CHUNK_S - time.monotonic()))
        seen.disconnected = streamer.disconnected.is_set()
        if not seen.disconnected:
            await streamer.stop(timeout=30)
    except Exception as error:  # a lost socket, a timeout: counted, not fatal
        seen.disconnected = seen.disconnected or streamer.disconnected.is_set()
        seen.errors.append(type(error).__name__)
    finally:
        seen.disconnected = seen.disconnected or streamer.disconnected.is_set()
        seen.errors += [str(e.get("name", e)) for e in streamer.errors if isinstance(e, dict)]
        await streamer.close()
    return seen


QUIET_IDLE = 0.9  # the share of the machine's CPU idle over a second before a round starts
SETTLE_LIMIT_S = 60.0


async def settle(leftovers: list[int]) -> str:
    """Wait for a quiet machine before a round: the last server's ffmpegs gone (node does not
    stop its children itself) and the CPUs >= QUIET_IDLE idle over a second, so that neither
    server is measured among the other's leftovers. (So far every round found the machine
    quiet within a second: the relay's higher figures right after the original's libx264
    rounds are not leftover processes.) Returns what it did, for the row."""
    started = time.monotonic()
    deadline = started + SETTLE_LIMIT_S
    while time.monotonic() < deadline:
        if not any(is_alive(p) for p in leftovers):
            break
        await asyncio.sleep(0.2)
    killed = 0
    for pid in leftovers:
        if is_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    idle = 0.0
    while time.monotonic() < deadline and (before := read_cpu_times()) is not None:
        await asyncio.sleep(1.0)
        after = read_cpu_times() or before
        idle = 1 - (after[0] - before[0]) / max(1, after[1] - before[1])
        if idle >= QUIET_IDLE:
            break
    note = f", {killed} leftover processes killed" if killed else ""
    return f"settled in {time.monotonic() - started:.1f} s (CPUs {100 * idle:.0f} % idle{note})"


def address(i: int, per_address: int) -> str:
    n = 2 + i // per_address  # 127.0.0.2 onwards
    return f"127.0.{n // 256}.{n % 256}" if n >= 256 else f"127.0.0.{n}"


async def wait_port(port: int, proc: asyncio.subprocess.Process, what: str) -> None:
    deadline = time.monotonic() + 20
    while not _listening(port):
        if proc.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start listening on port {port}")
        await asyncio.sleep(0.05)


async def run_round(
    server: str, n: int, args: argparse.Namespace, data: bytes, total: int, expected: int,
    tmp: Path, leftovers: list[int],
) -> dict[str, Any]:  # fmt: skip
    """N sessions at once through a fresh server, on a settled machine; the row's figures.
    `leftovers` gets the server's children (to wait for before the next round)."""
    import aiohttp

    from tests.rtmp_server import require_nginx_rtmp, start_nginx_rtmp

    folder = tmp / f"{server}-{n}"
    folder.mkdir()
    # The original's frames are counted in nginx's recordings; ours in the relay's statuses.
    settled = await settle(leftovers)
    leftovers.clear()
    nginx = start_nginx_rtmp(require_nginx_rtmp(), folder / "nginx", record=server == "original")
    loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    proc = None
    ffmpegs = Usage()
    try:
        if server == "original":
            from bench_latency import ORIGINAL_SERVER_JS, install_original

            modules = install_original()
            script = folder / "original-server.js"
            script.write_text(ORIGINAL_SERVER_JS)
            (folder / "page.html").write_text("")
            bin_dir = folder / "bin"
            bin_dir.mkdir()
            (bin_dir / "ffmpeg").symlink_to(resolve_ffmpeg())
            port = free_port()
            log = (folder / "original.log").open("wb")
            env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
            proc = await asyncio.create_subprocess_exec(
                "node", str(script), str(modules / "browser-to-rtmp-server"),
                str(modules / "browser-to-rtmp-client" / "dist" / "index.js"),
                str(folder / "page.html"), str(port),
                env=env, stdout=log, stderr=log,
            )  # fmt: skip
            await wait_port(port, proc, "the original server")
        else:
            (folder / "recordings").mkdir()
            command = [sys.executable, __file__, "--serve", str(folder / "recordings")]
            command += ["--rtmp-base", f"rtmp://127.0.0.1:{nginx.port}/live"]
            if args.max_cpu_percent is not None:
                command += ["--max-cpu-percent", str(args.max_cpu_percent)]
            command += ["--pace-ms", str(args.pace_ms)]
            command += ["--pace-per-source-ms", str(args.pace_per_source_ms)]
            proc, port = await start_relay_child(command)
        url = f"http://127.0.0.1:{port}"
        base = _stat(proc.pid)
        assert base is not None
        nginx_base = _stat(nginx.process.pid)
        clients_base = time.process_time()
        sessions: dict[str, aiohttp.ClientSession] = {}
        for i in range(n):
            where = address(i, args.per_address)
            if where not in sessions:
                connector = aiohttp.TCPConnector(local_addr=(where, 0), limit=0)
                sessions[where] = aiohttp.ClientSession(connector=connector)
        keys = [f"s{i}" for i in range(n)]
        configs = [
            # What the original client 0.2.x sends (its server needs these three).
            {"framerate": 20, "audioSampleRate": 44100, "audioBitsPerSecond": 128000,
             "videoBitsPerSecond": 2500000, "rtmp": nginx.url(keys[i])}
            if server == "original"
            else RELAY_START
            for i in range(n)
        ]  # fmt: skip
        tasks = [
            asyncio.create_task(
                one_session(url, sessions[address(i, args.per_address)], data, total, configs[i])
            )
            for i in range(n)
        ]
        started = time.monotonic()
        while not all(t.done() for t in tasks):
            ffmpegs.sample(_children(proc.pid))
            await asyncio.sleep(0.5)
        clients: list[Client] = list(await asyncio.gather(*tasks))
        wall = time.monotonic() - started
        end = _stat(proc.pid)
        nginx_end = _stat(nginx.process.pid)
        clients_cpu = 100 * (time.process_time() - clients_base) / wall
        for http in sessions.values():
            await http.close()
        loadavg_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        frames: list[int] = []
        if server == "original":
            if proc.returncode is not None:
                tail = (folder / "original.log").read_text(errors="replace")[-1500:]
                print(f"the original server exited ({proc.returncode}):\n{tail}", flush=True)
            else:
                proc.terminate()
            await proc.wait()
            await asyncio.sleep(1.0)
            nginx.stop()
            for key in keys:
                path = nginx.recording(key)
                frames.append(probe(path).video_frames if path.is_file() else 0)
        else:
            proc.terminate()
            assert proc.stdout is not None
            out = (await asyncio.wait_for(proc.stdout.read(), 60)).decode()
            await proc.wait()
            ended: list[dict[str, Any]] = next(
                (json.loads(x[len(SUMMARY) :]) for x in out.splitlines() if x.startswith(SUMMARY)),
                [],
            )
            frames = [e["frames"] for e in ended]
        proc = None
    finally:
        leftovers.extend(ffmpegs.cpu)
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        nginx.stop()
    lat = sorted(x for c in clients for x in c.latencies)
    drifts = [c.drift for c in clients if c.drift is not None]
    started_n = sum(c.started for c in clients)
    full = sum(f >= FRAMES_HELD * expected for f in frames)
    chunks = len(range(0, total, len(data) // CHUNKS))
    in_time = sum(
        1 for c in clients
        if c.drift is not None and c.drift < DRIFT_HELD_S and c.chunks == chunks
    )  # fmt: skip
    disconnects = sum(c.disconnected for c in clients)
    busy = sum(c.refused == "RELAY_BUSY" for c in clients)
    other: dict[str, int] = {}
    for c in clients:
        for e in c.errors + ([c.refused] if c.refused and c.refused != "RELAY_BUSY" else []):
            other[e] = other.get(e, 0) + 1
    held = started_n == n and full == n and in_time == n and disconnects == 0
    return {
        "server": server,
        "n": n,
        "held": held,
        "frames_ok": full,
        "frames_min": min(frames) if frames else 0,
        "expected": expected,
        "in_time": in_time,
        "drift_max": max(drifts) if drifts else None,
        "p50": statistics.median(lat) if lat else None,
        "p95": lat[int(0.95 * (len(lat) - 1))] if lat else None,
        "disconnects": disconnects,
        "busy": busy,
        "other": other,
        "cpu": 100 * (end[0] - base[0]) / wall if end else 0.0,
        "ffmpeg_cpu": 100 * sum(ffmpegs.cpu.values()) / wall,
        "nginx_cpu": 100 * (nginx_end[0] - nginx_base[0]) / wall
        if nginx_base and nginx_end else 0.0,
        "clients_cpu": clients_cpu,
        "loadavg": f"{loadavg} -> {loadavg_after}",
        "settled": settled,
    }


def ms(x: float | None) -> str:
    return "-" if x is None else f"{1000 * x:.0f}"


def print_row(r: dict[str, Any]) -> None:
    other = ", ".join(f"{k} x{v}" for k, v in sorted(r["other"].items())) or "none"
    drift = "-" if r["drift_max"] is None else f"{r['drift_max']:.2f} s"
    print(
        f"{r['server']:8} | {r['n']:3d} | {'yes' if r['held'] else 'NO ':3} | "
        f"{r['frames_ok']:3d}/{r['n']} >=95% (min {r['frames_min']}/{r['expected']}) | "
        f"{r['in_time']:3d}/{r['n']} real time (max drift {drift}) | "
        f"ack p50 {ms(r['p50'])} ms p95 {ms(r['p95'])} ms | "
        f"disc {r['disconnects']} | RELAY_BUSY {r['busy']} | errors: {other} | "
        f"server CPU {r['cpu']:.1f} % ({r['cpu'] / r['n']:.3f} % per session), "
        f"ffmpegs {r['ffmpeg_cpu']:.0f} %, "
        f"nginx {r['nginx_cpu']:.0f} %, clients {r['clients_cpu']:.0f} % | load {r['loadavg']} "
        f"| {r['settled']}",
        flush=True,
    )


def encoder_reference(runs: int = 3) -> str:
    """This machine's speed at the work most of a session's CPU goes to: the relay's own
    encoder command (from `build_encoder_args`: H.264 copied, Opus to AAC, the sound meter) on
    the whole capture as fast as it runs, CPU median of `runs`, as % of one core per live
    session, and how many such encoders alone would fill every core. Capacity moves with it
    from day to day on a shared machine, the relay's code unchanged (README, capacity row)."""
    args = build_encoder_args(resolve_ffmpeg(), InputFormat("matroska", "h264", "opus", b""),
                              validate_start(RELAY_START))
    args[args.index("pipe:0")] = str(H264_FIXTURE)
    cpu = statistics.median(cpu_of(args) for _ in range(runs))
    per_session = 100 * cpu / FIXTURE_S
    cores = os.cpu_count() or 1
    return (
        f"machine reference: the relay's encoder ffmpeg, as fast as it runs on the "
        f"{FIXTURE_S:g} s capture, takes {per_session:.2f} % of one core per second of media "
        f"(CPU median of {runs} runs; about 90 % of it Opus to AAC); at that rate encoders "
        f"alone would fill all {cores} cores at {100 * cores / per_session:.0f} sessions"
    )


async def bench(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    data = H264_FIXTURE.read_bytes()
    total = int(len(data) * args.seconds / FIXTURE_S)
    expected = _frames_sent(data, total)
    servers = ["relay"] + (["original"] if args.original else [])
    print(f"load average before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(encoder_reference(), flush=True)
    print(
        f"{H264_FIXTURE.name}, {args.seconds:g} s per session ({expected} video frames), "
        f"{args.per_address} sessions per source address, counts {args.counts}"
    )
    print(
        "server   |   N | held | frames | real time | chunk ack latency | disconnects | "
        "refusals | errors | CPU (% of one core) | load average before -> after"
    )
    best: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    leftovers: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            # Alternating servers at each count: the same hour for both; the first alternates.
            order = servers if round_ % 2 == 0 else servers[::-1]
            stopped: set[str] = set()
            for n in args.counts:
                for server in order:
                    if server in stopped:
                        continue
                    where = Path(tmp) / f"round{round_ + 1}"
                    where.mkdir(exist_ok=True)
                    row = await run_round(server, n, args, data, total, expected, where, leftovers)
                    row["round"] = round_ + 1
                    rows.append(row)
                    print_row(row)
                    if row["held"]:
                        best[server] = max(best.get(server, 0), n)
                    elif not args.keep_going:
                        stopped.add(server)
    for server in servers:
        print(f"largest N that held, {server}: {best.get(server, 'none of the counts')}")
    if args.original:
        print_ratios(rows, args.counts)
    print(f"load average after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


def print_ratios(rows: list[dict[str, Any]], counts: list[int]) -> None:
    """The relay process's own CPU per session against the original's, at each count: per
    round (measured one after the other) and of the means."""
    print("own CPU per session (% of one core; the server process alone, not its ffmpegs):")
    for n in counts:
        per: dict[str, dict[int, float]] = {"relay": {}, "original": {}}
        for r in rows:
            if r["n"] == n:
                per[r["server"]][r["round"]] = r["cpu"] / n
        relay, original = per["relay"], per["original"]
        if not relay or not original:
            continue
        rounds = sorted(set(relay) & set(original))
        ratios = [relay[i] / original[i] for i in rounds if original[i] > 0]
        mean_relay = statistics.mean(relay.values())
        mean_original = statistics.mean(original.values())
        print(
            f"  N={n}: relay {', '.join(f'{relay[i]:.3f}' for i in sorted(relay))} "
            f"(mean {mean_relay:.3f}); original "
            f"{', '.join(f'{original[i]:.3f}' for i in sorted(original))} "
            f"(mean {mean_original:.3f}); relay/original per round "
            f"{', '.join(f'{x:.2f}x' for x in ratios) or '-'}, of the means "
            f"{mean_relay / mean_original if mean_original > 0 else float('nan'):.2f}x",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--counts", type=int, nargs="+", default=[16, 32, 48, 64, 80, 96],
        help="session counts to try, in order (default: 16 32 48 64 80 96)",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=float, default=FIXTURE_S,
        help=f"seconds of the capture each session sends (at most {FIXTURE_S:g})",
    )  # fmt: skip
    parser.add_argument(
        "--per-address", type=int, default=4,
        help="sessions per loopback source address (127.0.0.2, 127.0.0.3, ...); default 4",
    )  # fmt: skip
    parser.add_argument(
        "--original", action="store_true",
        help="also measure the original Node server (browser-to-rtmp-server 0.2.4, from npm)",
    )  # fmt: skip
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="run every count this many times (with --original: the servers alternating)",
    )  # fmt: skip
    parser.add_argument(
        "--max-cpu-percent", type=float,
        help="the relay's load shedding threshold (RELAY_BUSY past it); default: the relay's",
    )  # fmt: skip
    parser.add_argument(
        "--keep-going", action="store_true",
        help="try every count even after one did not hold",
    )  # fmt: skip
    add_pace_option(parser)
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--rtmp-base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 < args.seconds <= FIXTURE_S:
        parser.error(f"--seconds must be in (0, {FIXTURE_S:g}]: the capture is sent once")
    if args.per_address < 1 or args.rounds < 1 or any(n < 1 for n in args.counts):
        parser.error("--per-address, --rounds and --counts must be 1 or more")
    run_benchmark(parser, args, serve, bench)


if __name__ == "__main__":
    main()
