"""Command line: `desktop-relay` opens the window, `desktop-relay --headless` serves without one."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .fd_limit import raise_open_files_limit
from .paths import control_token_file, data_dir, setup_logging
from .relay import (
    OPTIONS,
    BaseObserver,
    HealthCheck,
    Option,
    OptionKind,
    OutputState,
    OutputStatus,
    RelayConfig,
    RelayServer,
    SessionStatus,
    TargetError,
    event_loop,
    mask_target,
    validate_target,
)
from .relay.errors import ServerError
from .relay.outputs.destinations import mask_key
from .relay.security.auth import load_or_create_token
from .relay.security.tls import TlsFiles, ensure_certificate, fingerprint, machine_hosts
from .relay.transport.network import join_urls, lan_addresses

log = logging.getLogger("desktop_relay")


def _target(value: str) -> str:
    try:
        return validate_target(value)
    except TargetError as exc:
        raise argparse.ArgumentTypeError(f"target URL {exc}") from None


def _arg_type(parse: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """`parse` as an argparse type: its ValueError's message becomes the error argparse prints
    (argparse would otherwise say only "invalid value")."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


# Which RelayConfig field each option sets, for telling the window what was given explicitly:
# the table's options, and the flags outside it.
_OPTION_FIELDS = {opt.name: opt.field for opt in OPTIONS} | {
    "output": "default_target",  # and extra_targets
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


def _add_option(group: argparse._ActionsContainer, opt: Option) -> None:
    """One table option as an argument; its dest is the option's name."""
    if opt.kind is OptionKind.BOOL:
        # A switch: given means on (there is no way to turn a default-on option off).
        group.add_argument(opt.flag, dest=opt.name, action="store_true", help=opt.help)
        return
    kwargs: dict[str, Any] = {"dest": opt.name, "help": opt.help, "metavar": opt.metavar}
    if opt.kind is OptionKind.LIST:
        kwargs.update(action="append", type=_arg_type(opt.parse_item, opt.name), default=None)
    else:
        # A string default goes through `type` too (argparse's rule): the same as the table's.
        kwargs.update(type=_arg_type(opt.parse, opt.name), default=opt.default)
    if opt.kind is OptionKind.CHOICE:
        kwargs["choices"] = opt.choices
    group.add_argument(opt.flag, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments: the options table's, and those that are no settings."""
    parser = argparse.ArgumentParser(
        prog="desktop-relay",
        description="Relay browser camera, microphone and screen streams to RTMP(S) servers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--headless", action="store_true", help="run without a window")
    parser.add_argument(
        "--output",
        # The original's name, kept as an alias: scripts and docs of earlier versions use it.
        "--rtmp-url",
        dest="output",
        type=_target,
        default=None,
        action="append",
        metavar="URL",
        help="target for every session (rtmp://, rtmps:// or srt://host:port?streamid=...); "
        "give it several times to send every session to all of them; without it, sessions "
        "are recorded to files (--rtmp-url is the same option)",
    )
    parser.add_argument(
        "--program-url",
        dest="program_urls",
        type=_target,
        default=None,
        action="append",
        metavar="URL",
        help="turn the program on (several phones, one show: see README) and send it here "
        "(rtmp://, rtmps:// or srt://); give it several times for several destinations",
    )
    sec = parser.add_argument_group("security (see README: LAN set-up)")
    for opt in OPTIONS:
        _add_option(sec if opt.group == "Security" else parser, opt)
    parser.add_argument(
        "--send-error-details",
        action="store_true",
        help="send ffmpeg's last lines to browsers with errors",
    )
    parser.add_argument(
        "--send-ffmpeg-output", action="store_true", help="send ffmpeg's log to browsers"
    )
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
        "--control-token",
        default=None,
        help="token of the program's control API (/api/program; never the pairing token) "
        "(default: one made once and kept in the data folder, file control-token)",
    )
    return parser


def control_token_path() -> Path:
    """Where the control API's token is kept (0600, beside the pairing token)."""
    return control_token_file()


def security_from_args(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[TlsFiles | None, str | None]:
    """TLS files and pairing token as the flags ask, made and kept in the data folder."""
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--cert and --key go together")
    if args.no_tls and args.tls_cert:
        parser.error("--no-tls and --cert contradict each other")
    if args.no_auth and args.token:
        parser.error("--no-auth and --token contradict each other")
    if args.token is not None and len(args.token) < 8:
        parser.error("--token must be at least 8 characters")
    if args.control_token is not None and len(args.control_token) < 16:
        parser.error("--control-token must be at least 16 characters")
    if args.control_token is not None and args.control_token == args.token:
        parser.error("--control-token must differ from the pairing token (phones hold that)")
    tls: TlsFiles | None = None
    if args.tls_cert:
        tls = TlsFiles(Path(args.tls_cert), Path(args.tls_key))
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
    # The certificate is `tls`, made by security_from_args.
    options = {
        opt.field: opt.to_config(getattr(args, opt.name)) for opt in OPTIONS if opt.field != "tls"
    }
    control = getattr(args, "control_token", None) or load_or_create_token(control_token_path())
    return RelayConfig(
        tls=tls,
        auth_token=token,
        control_token=control,
        program_targets=tuple(args.program_urls) if args.program_urls else None,
        send_error_details=args.send_error_details,
        send_ffmpeg_output=args.send_ffmpeg_output,
        default_target=args.output[0] if args.output else None,
        extra_targets=tuple(args.output[1:]) if args.output else (),
        **options,
    )


def _print_status(statuses: list[SessionStatus]) -> None:
    for s in statuses:
        ff = s.ffmpeg
        # A started session that has no encoder yet (no media came) still gets its line.
        if ff is None and not any(w.check == HealthCheck.NO_MEDIA for w in s.health):
            continue
        stats = ff.stats if ff is not None else None
        log.info(
            "session %s %s frames=%d fps=%s bitrate=%s kbit/s speed=%s target=%s%s",
            s.uuid[:8],
            s.state,
            ff.frames_sent if ff is not None else 0,
            _rate(stats.fps if stats else None, "{:.1f}"),
            _rate(stats.bitrate_kbps if stats else None, "{:.0f}"),
            _rate(stats.speed if stats else None, "{:.2f}x"),
            s.target or s.recording_path,
            f" health={','.join(str(w.check) for w in s.health)}" if s.health else "",
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
        "local recordings (no --output)"
    )
    print(f"  target: {where}", flush=True)
    if config.program_targets:
        program = ", ".join(mask_target(t) or "****" for t in config.program_targets)
        print(
            f"  program: {config.program_size} at {config.program_fps} fps to {program}", flush=True
        )
    if config.control_token:
        print(
            f"  control API: {relay.scheme}://<host>:{relay.port}/api/program, token "
            f"{mask_key(config.control_token)} (the whole token: {control_token_path()})",
            flush=True,
        )
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
    # Before anything opens a socket or spawns ffmpeg: the relay's bounds assume it.
    raise_open_files_limit()
    tls, token = security_from_args(args, parser)
    config = config_from_args(args, tls, token)
    if args.headless:
        # I/O and timers gathered under load, for up to 50 ms as sessions grow: less of the
        # relay's own CPU per session (relay/event_loop.py has the figures).
        return event_loop.run(run_headless(config))
    from .gui.app import run_window  # Qt only when a window is wanted

    return run_window(config, given_fields(argv))


if __name__ == "__main__":
    sys.exit(main())
