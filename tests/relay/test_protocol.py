"""The wire protocol: acks, refusals and error shapes, as the 0.2.x client expects them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import socketio

from desktop_relay.relay import ErrorName, RelayConfig, RelayError, ServerError, StartConfig

from ..media import H264_FIXTURE, probe
from ..procs import ffmpeg_descendants
from ..replay import Streamer, relay_url


async def until(predicate: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def connected(relay: Any) -> Streamer:
    return await Streamer(relay_url(relay)).connect()


async def test_connection_is_reported_with_address_and_browser(running_relay) -> None:
    relay = await running_relay()
    seen = []
    relay.add_listener("connection", seen.append)
    streamer = await connected(relay)
    assert len(seen) == 1
    status = relay.sessions()[0]
    assert status.remote_address == "127.0.0.1"
    assert "aiohttp" in status.user_agent
    assert status.ffmpeg is None
    assert status.to_dict()["remoteAddress"] == "127.0.0.1"
    await streamer.close()
    await asyncio.sleep(0.2)
    assert relay.sessions() == []


async def test_data_before_start_is_acked_with_ffmpeg_not_running(running_relay) -> None:
    relay = await running_relay()
    streamer = await connected(relay)
    ack = await streamer.send(b"\x1a\x45\xdf\xa3 data")
    assert ack["name"] == ErrorName.FFMPEG_NOT_RUNNING and ack["fatal"] is False
    await until(lambda: streamer.errors)
    assert streamer.errors[0]["name"] == ErrorName.FFMPEG_NOT_RUNNING
    await streamer.close()


async def test_non_binary_chunks_are_refused(running_relay) -> None:
    relay = await running_relay()
    streamer = await connected(relay)
    assert await streamer.start()
    ack = await streamer.send("not bytes")  # type: ignore[arg-type]
    assert ack["name"] == ErrorName.INVALID_PARAMETERS and ack["fatal"] is False
    await streamer.close()


async def refused(relay: Any, config: Any) -> dict[str, Any]:
    streamer = await connected(relay)
    try:
        assert not await streamer.start(config), "start should have been refused"
        return streamer.errors[-1]
    finally:
        await streamer.close()


@pytest.mark.parametrize(
    ("config", "field"),
    [({"framerate": -5}, "framerate"), ({"videoBitsPerSecond": "lots"}, "videoBitsPerSecond"),
     ({"audioSampleRate": 1}, "audioSampleRate"), ("nonsense", "config")],
)
async def test_bad_config_is_refused_naming_the_field(running_relay, config, field) -> None:  # type: ignore[no-untyped-def]
    relay = await running_relay()
    error = await refused(relay, config)
    assert error == {"name": "INVALID_PARAMETERS", "message": error["message"], "fatal": True}
    assert f"'{field}'" in error["message"]


@pytest.mark.parametrize(
    "target",
    ["/tmp/owned.flv", "file:/tmp/owned.flv", "pipe:1", "concat:a|b", "tcp://127.0.0.1:1",
     "http://127.0.0.1/", "-f", "rtmp://h/app/k -y /tmp/x", "rtmp://h/app/k\n", "rtmp://hоst/a/k"],
)
async def test_injection_attempts_as_targets_are_refused(running_relay, target: str) -> None:
    relay = await running_relay(RelayConfig(allowed_target_pattern=".*"))
    error = await refused(relay, {"rtmp": target})
    assert error["name"] == ErrorName.INVALID_PARAMETERS and "'rtmp'" in error["message"]
    assert not ffmpeg_descendants() or all("-listen" in c for c in ffmpeg_descendants().values())


async def test_client_targets_are_refused_unless_the_operator_allows_them(running_relay) -> None:
    relay = await running_relay()
    error = await refused(relay, {"rtmp": "rtmp://127.0.0.1/live/key"})
    assert error["name"] == ErrorName.TARGET_NOT_ALLOWED


async def test_client_targets_must_match_the_allowed_pattern(running_relay) -> None:
    relay = await running_relay(RelayConfig(allowed_target_pattern=r"rtmp://127\.0\.0\.1/.*"))
    error = await refused(relay, {"rtmp": "rtmp://127.0.0.2/live/key"})
    assert error["name"] == ErrorName.TARGET_NOT_ALLOWED
    streamer = await connected(relay)
    assert await streamer.start({"rtmp": "rtmp://127.0.0.1/live/key-0123456789"})
    assert relay.sessions()[0].target == "rtmp://127.0.0.1/live/****6789"
    await streamer.close()


async def test_max_streams_refuses_past_the_limit_and_frees_on_stop(running_relay) -> None:
    relay = await running_relay(RelayConfig(max_ffmpeg_instances=1))
    first = await connected(relay)
    assert await first.start()
    error = await refused(relay, {})
    assert error["name"] == ErrorName.MAX_STREAMS_REACHED and "1 stream" in error["message"]
    await first.stop()
    second = await connected(relay)
    assert await second.start()
    await first.close()
    await second.close()


async def test_start_hook_may_refuse(running_relay) -> None:
    def hook(session: Any, config: StartConfig) -> StartConfig:
        raise ValueError("Streaming is closed tonight")

    relay = await running_relay(RelayConfig(start_hook=hook))
    error = await refused(relay, {})
    assert error["name"] == ErrorName.CANT_START_FFMPEG
    assert error["message"] == "Streaming is closed tonight"


async def test_async_start_hook_may_refuse_with_its_own_error(running_relay) -> None:
    async def hook(session: Any, config: StartConfig) -> StartConfig:
        raise RelayError(ServerError(ErrorName.TARGET_NOT_ALLOWED, "No target for you"))

    relay = await running_relay(RelayConfig(start_hook=hook))
    error = await refused(relay, {})
    assert error["name"] == ErrorName.TARGET_NOT_ALLOWED


async def test_start_hook_may_rewrite_the_config(running_relay) -> None:
    seen: list[Any] = []

    def hook(session: Any, config: StartConfig) -> StartConfig:
        seen.append(session.remote_address)
        return StartConfig(framerate=30, rtmp="rtmp://127.0.0.1/rewritten/key-abcdefghijkl")

    relay = await running_relay(RelayConfig(start_hook=hook))
    streamer = await connected(relay)
    assert await streamer.start({"framerate": 10})
    status = relay.sessions()[0]
    assert status.target == "rtmp://127.0.0.1/rewritten/****ijkl"
    assert status.ffmpeg is not None and status.ffmpeg.options["framerate"] == 30
    assert seen == ["127.0.0.1"]
    await streamer.close()


async def test_second_start_is_refused_without_ending_the_stream(running_relay) -> None:
    relay = await running_relay()
    streamer = await connected(relay)
    assert await streamer.start()
    assert not await streamer.start()
    assert streamer.errors[-1]["name"] == ErrorName.ALREADY_STARTED
    assert streamer.errors[-1]["fatal"] is False
    await streamer.close()


async def test_foreign_media_is_refused(running_relay) -> None:
    relay = await running_relay()
    streamer = await connected(relay)
    assert await streamer.start()
    ack = await streamer.send(b"RIFF\0\0\0\0WAVEfmt " + bytes(100))
    assert ack["name"] == ErrorName.UNSUPPORTED_MEDIA and ack["fatal"] is True
    await streamer.close()


async def test_missing_ffmpeg_is_reported(running_relay) -> None:
    relay = await running_relay(RelayConfig(ffmpeg_path="/nonexistent/ffmpeg"))
    streamer = await connected(relay)
    assert await streamer.start()
    ack = await streamer.send(H264_FIXTURE.read_bytes()[:30000])
    assert ack["name"] == ErrorName.FFMPEG_NOT_FOUND
    await until(lambda: streamer.errors)
    assert streamer.errors[-1]["name"] == ErrorName.FFMPEG_NOT_FOUND
    await streamer.close()


async def test_cross_origin_browsers_are_refused_by_default(running_relay) -> None:
    relay = await running_relay()
    client = socketio.AsyncClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(relay_url(relay), transports=["websocket"],
                             headers={"Origin": "http://evil.example"})
    allowed = await running_relay(RelayConfig(cors_allowed_origins=["http://studio.example"]))
    client = socketio.AsyncClient()
    await client.connect(relay_url(allowed), transports=["websocket"],
                         headers={"Origin": "http://studio.example"})
    await client.disconnect()


@pytest.mark.media
async def test_stop_then_start_again_makes_two_recordings(running_relay, tmp_path: Path) -> None:
    relay = await running_relay(RelayConfig(recordings_dir=tmp_path / "rec"))
    streamer = await connected(relay)
    for name in ("first", "second"):
        assert await streamer.start({"framerate": 20, "name": name})
        await streamer.replay(H264_FIXTURE, seconds=4)
        await streamer.stop()
        assert relay.sessions()[0].ffmpeg.status == "ENDED"
    await streamer.close()
    for name in ("first", "second"):
        (path,) = (tmp_path / "rec").glob(f"*-{name}.mkv")
        assert probe(path).video_frames > 40
    assert streamer.errors == []


async def test_stats_event_carries_snapshots(running_relay) -> None:
    relay = await running_relay(RelayConfig(stats_interval=0.1))
    got: list[Any] = []
    relay.add_listener("stats", got.append)
    streamer = await connected(relay)
    await asyncio.sleep(0.35)
    assert got and got[-1][0].remote_address == "127.0.0.1"
    await streamer.close()


def test_log_level_option_sets_the_relays_loggers() -> None:
    import logging

    from desktop_relay.relay import Relay

    Relay(RelayConfig(log_level="warning"))
    assert logging.getLogger("desktop_relay.relay.session.session").getEffectiveLevel() == logging.WARNING
    Relay(RelayConfig(log_level="DEBUG"))
    assert logging.getLogger("desktop_relay.relay.session.session").getEffectiveLevel() == logging.DEBUG


async def test_max_streams_holds_when_an_async_hook_lets_starts_overlap(running_relay) -> None:
    async def slow_hook(session: Any, config: StartConfig) -> StartConfig:
        await asyncio.sleep(0.2)
        return config

    relay = await running_relay(RelayConfig(max_ffmpeg_instances=1, start_hook=slow_hook))
    streamers = [await connected(relay) for _ in range(3)]
    results = await asyncio.gather(*(s.start() for s in streamers))
    assert sorted(results) == [False, False, True]
    assert sum(1 for s in relay.sessions() if s.state == "starting") == 1
    for s in streamers:
        await s.close()
