"""Command line: `desktop-relay` opens the window, `desktop-relay --headless` serves without one."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .paths import data_dir, setup_logging
from .relay import (
    BaseObserver,
    OutputState,
    OutputStatus,
    RelayConfig,
    RelayServer,
    SessionStatus,
    TargetError,
    mask_target,
    validate_target,
    video_encoders,
)
from .relay.auth import load_or_create_token
from .relay.errors import ServerError
from .relay.network import join_urls, lan_addresses
from .relay.target_pattern import PatternError, check_pattern
from .relay.tls import TlsFiles, ensure_certificate, fingerprint, machine_hosts

log = logging.getLogger("desktop_relay")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _target(value: str) -> str:
    try:
        return validate_target(value)
    except TargetError as exc:
        raise argparse.ArgumentTypeError(f"RTMP URL {exc}") from None


def _pattern(value: str) -> str:
    try:
        return check_pattern(value)
    except PatternError as exc:
        raise argparse.ArgumentTypeError(f"not a valid regular expression: {exc}") from None


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return port


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


# Which RelayConfig field each option sets, for telling the window what was given explicitly.
_OPTION_FIELDS = {
    "host": "host",
    "port": "port",
    "rtmp_url": "default_target",  # and extra_targets
    "allow_client_rtmp": "allowed_target_pattern",
    "max_streams": "max_ffmpeg_instances",
    "recordings_dir": "recordings_dir",
    "ffmpeg": "ffmpeg_path",
    "log_level": "log_level",
    "cert": "tls",
    "key": "tls",
    "no_tls": "tls",
}


def given_fields(argv: Sequence[str] | None) -> frozenset[str]:
    """The RelayConfig fields that `argv` sets explicitly (not left at their defaults)."""
    probe = build_parser()
    # Not a string, so argparse never converts it: any other value was given. A list for
    # the options given several times (action="append" copies and extends its default).
    unset = _Unset()
    probe.set_defaults(**dict.fromkeys(_OPTION_FIELDS, unset))
    parsed = vars(probe.parse_args(argv))
    return frozenset(
        _OPTION_FIELDS[name]
        for name, value in parsed.items()
        if name in _OPTION_FIELDS and not isinstance(value, _Unset)
    )


class _Unset(list[str]):
    """The probe default of `given_fields`: a list, so appending options accept it too, and
    argparse's copy of it is still recognisably unset only while nothing was appended."""

    def __copy__(self) -> list[str]:
        # argparse copies an append option's default before appending: a plain list then.
        return []


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    parser = argparse.ArgumentParser(
        prog="desktop-relay",
        description="Relay browser camera, microphone and screen streams to RTMP(S) servers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--headless", action="store_true", help="run without a window")
    parser.add_argument("--host", default=None, help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=_port, default=None, help="port (default 8086)")
    parser.add_argument(
        "--rtmp-url",
        type=_target,
        default=None,
        action="append",
        metavar="URL",
        help="target for every session (rtmp:// or rtmps://); give it several times to send "
        "every session to all of them; without it, sessions are recorded to files",
    )
    parser.add_argument(
        "--safety-copy",
        action="store_true",
        help="also keep each session's browser bytes, as received, in the recordings folder "
        "(name.browser.webm): the copy to fall back on",
    )
    parser.add_argument(
        "--allow-client-rtmp",
        type=_pattern,
        default=None,
        metavar="REGEX",
        help="let browsers choose targets that fully match REGEX",
    )
    parser.add_argument(
        "--max-streams",
        type=_positive,
        default=None,
        metavar="N",
        help="most sessions streaming at once",
    )
    parser.add_argument(
        "--recordings-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where sessions without a target are recorded",
    )
    parser.add_argument("--ffmpeg", default=None, metavar="PATH", help="ffmpeg binary to use")
    parser.add_argument(
        "--video-encoder",
        choices=video_encoders.CHOICES,
        default=video_encoders.AUTO,
        help="H.264 encoder for VP8/VP9 video (H.264 is copied): auto uses a hardware encoder "
        "this machine really has (NVENC, Quick Sync, VA-API), else libx264 (default: auto)",
    )
    parser.add_argument(
        "--send-error-details",
        action="store_true",
        help="send ffmpeg's last lines to browsers with errors",
    )
    parser.add_argument(
        "--send-ffmpeg-output", action="store_true", help="send ffmpeg's log to browsers"
    )
    parser.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default="INFO")
    sec = parser.add_argument_group("security (see README: LAN set-up)")
    sec.add_argument("--cert", type=Path, default=None, help="your own TLS certificate (PEM)")
    sec.add_argument("--key", type=Path, default=None, help="the key of --cert (PEM)")
    sec.add_argument(
        "--no-tls",
        action="store_true",
        help="serve plain http (loopback only, or behind a TLS proxy)",
    )
    sec.add_argument(
        "--token",
        default=None,
        help="pairing token browsers must present "
        "(default: one made once and kept in the data folder)",
    )
    sec.add_argument("--no-auth", action="store_true", help="accept browsers without a token")
    sec.add_argument(
        "--allowed-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="another web origin whose pages may connect (repeatable)",
    )
    sec.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="end a streaming session that sends nothing for this long",
    )
    return parser


def security_from_args(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[TlsFiles | None, str | None]:
    """TLS files and pairing token as the flags ask, made and kept in the data folder."""
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")
    if args.no_tls and args.cert:
        parser.error("--no-tls and --cert contradict each other")
    if args.no_auth and args.token:
        parser.error("--no-auth and --token contradict each other")
    if args.token is not None and len(args.token) < 8:
        parser.error("--token must be at least 8 characters")
    tls: TlsFiles | None = None
    if args.cert:
        tls = TlsFiles(args.cert, args.key)
    elif not args.no_tls:
        tls = ensure_certificate(data_dir() / "tls", machine_hosts(lan_addresses()))
    if tls is not None:
        try:
            tls.context()
        except ValueError as exc:
            parser.error(str(exc))
    token = None if args.no_auth else args.token or load_or_create_token(data_dir() / "token")
    return tls, token


def config_from_args(
    args: argparse.Namespace, tls: TlsFiles | None = None, token: str | None = None
) -> RelayConfig:
    """A RelayConfig from parsed arguments (defaults where not given)."""
    base = RelayConfig()
    return RelayConfig(
        tls=tls,
        auth_token=token,
        cors_allowed_origins=args.allowed_origin,
        idle_timeout=args.idle_timeout if args.idle_timeout > 0 else None,
        host=args.host or base.host,
        port=base.port if args.port is None else args.port,
        log_level=args.log_level,
        send_error_details=args.send_error_details,
        send_ffmpeg_output=args.send_ffmpeg_output,
        max_ffmpeg_instances=args.max_streams,
        allowed_target_pattern=args.allow_client_rtmp,
        default_target=args.rtmp_url[0] if args.rtmp_url else None,
        extra_targets=tuple(args.rtmp_url[1:]) if args.rtmp_url else (),
        safety_copy=args.safety_copy,
        recordings_dir=args.recordings_dir,
        ffmpeg_path=args.ffmpeg,
        video_encoder=args.video_encoder,
    )


def _print_status(statuses: list[SessionStatus]) -> None:
    for s in statuses:
        ff = s.ffmpeg
        if ff is None:
            continue
        stats = ff.stats
        log.info(
            "session %s %s frames=%d fps=%s bitrate=%s kbit/s speed=%s target=%s",
            s.uuid[:8],
            s.state,
            ff.frames_sent,
            _rate(stats.fps, "{:.1f}"),
            _rate(stats.bitrate_kbps, "{:.0f}"),
            _rate(stats.speed, "{:.2f}x"),
            s.target or s.recording_path,
        )


def _rate(value: float | None, fmt: str) -> str:
    """A rate, or `-` while it means nothing yet (the first second of a stream)."""
    return "-" if value is None else fmt.format(value)


class _HeadlessPrinter(BaseObserver):
    """What the window shows, as lines on stdout: transitions at once, counters every 5 s."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last_stats = 0.0

    def session_error(self, session_id: str, error: ServerError) -> None:
        if error.fatal:
            log.warning("session %s failed: %s", session_id[:8], error.message)

    def session_waiting(self, status: SessionStatus) -> None:
        print(f"session {status.uuid[:8]}: connection lost, waiting for the browser", flush=True)

    def session_resumed(self, status: SessionStatus) -> None:
        print(
            f"session {status.uuid[:8]}: resumed from {status.remote_address} "
            f"(reconnect {status.resumes})",
            flush=True,
        )

    def output_changed(self, session_id: str, status: OutputStatus) -> None:
        what = f"session {session_id[:8]}: output {status.target}"
        if status.state == OutputState.RECONNECTING:
            when = (
                f" in {status.next_attempt_in_s:.0f} s"
                if status.next_attempt_in_s is not None
                else ""
            )
            print(f"{what} reconnecting{when} ({status.last_error})", flush=True)
        elif status.state == OutputState.LIVE:
            again = f" again (reconnect {status.reconnects})" if status.reconnects else ""
            print(f"{what} live{again}", flush=True)
        elif status.state == OutputState.FAILED:
            print(f"{what} failed: {status.last_error}", flush=True)

    def stats(self, statuses: list[SessionStatus]) -> None:
        # Counters every few seconds: enough to see them rise without flooding.
        now = self._clock()
        if now - self._last_stats >= 5.0:
            self._last_stats = now
            _print_status(statuses)


async def run_headless(config: RelayConfig) -> int:
    """Serve until Ctrl-C or SIGTERM, then stop every session gracefully."""
    relay = RelayServer(config)
    try:
        relay.ffmpeg_binary()
    except Exception as exc:
        log.error("%s", exc)
        return 1
    await relay.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    relay.add_observer(_HeadlessPrinter(loop.time))
    print(
        f"Desktop Relay {__version__} listening on {relay.scheme}://{config.host}:{relay.port}",
        flush=True,
    )
    query = f"?token={config.auth_token}" if config.auth_token else ""
    for url in join_urls(config.host, relay.port or config.port, tls=config.tls is not None):
        print(f"  join: {url}{query}", flush=True)
    if config.tls is not None:
        print(f"  certificate SHA-256: {fingerprint(config.tls.cert)}", flush=True)
        if config.tls.ca_cert is not None:
            print(f"  local CA SHA-256: {fingerprint(config.tls.ca_cert)}", flush=True)
            print(
                f"  devices may trust the relay once via {relay.scheme}://<host>:{relay.port}"
                "/ca.crt",
                flush=True,
            )
    if config.auth_token is None:
        print("  pairing token: off (--no-auth): anyone on the network may stream", flush=True)
    targets = [config.default_target, *config.extra_targets] if config.default_target else []
    where = ", ".join(mask_target(t) or "****" for t in targets) or (
        "local recordings (no --rtmp-url)"
    )
    print(f"  target: {where}", flush=True)
    await stop.wait()
    print("Stopping: ending every session gracefully...", flush=True)
    await relay.stop()
    print("Stopped.", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `desktop-relay`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    log_file = setup_logging(args.log_level)
    log.debug("logging to %s", log_file)
    tls, token = security_from_args(args, parser)
    config = config_from_args(args, tls, token)
    if args.headless:
        return asyncio.run(run_headless(config))
    from .gui.app import run_window  # Qt only when a window is wanted

    return run_window(config, given_fields(argv))


if __name__ == "__main__":
    sys.exit(main())
