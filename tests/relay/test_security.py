"""Secure by default: pairing token, TLS, limits, keys at rest."""

from __future__ import annotations

import asyncio
import os
import ssl
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from cryptography import x509

from desktop_relay.relay import ErrorName, FfmpegState, RelayConfig, SessionState
from desktop_relay.relay.security.keystore import KeyStore
from desktop_relay.relay.security.tls import ensure_certificate
from desktop_relay.relay.session.limits import TokenBucket

from ..media import H264_FIXTURE, probe
from ..procs import ffmpeg_descendants, pid_alive
from ..replay import Streamer, relay_url

TOKEN = "pairing-token-for-tests"


async def until(predicate: Any, timeout: float = 10.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


# ---- pairing token ---------------------------------------------------------------------

@pytest.mark.parametrize("auth", [None, {"token": "wrong-token-value"}, {"token": 42}, "junk"])
async def test_without_the_right_token_a_browser_is_refused_clearly(
    running_relay, auth: Any
) -> None:
    relay = await running_relay(RelayConfig(auth_token=TOKEN))
    refused: list[Any] = []
    relay.add_listener("refused", lambda addr, err: refused.append((addr, err)))
    client = socketio.AsyncClient()
    told: list[Any] = []
    client.on("connect_error", told.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(relay_url(relay), transports=["websocket"], auth=auth)
    assert "pairing token" in told[0]["message"]
    assert told[0]["data"]["name"] == ErrorName.AUTH_FAILED
    assert refused and refused[0][0] == "127.0.0.1"
    assert refused[0][1].name == ErrorName.AUTH_FAILED
    assert relay.sessions() == []
    assert not any("-listen" not in c for c in ffmpeg_descendants().values())


async def test_the_token_may_come_in_auth_or_in_the_join_url(running_relay) -> None:
    relay = await running_relay(RelayConfig(auth_token=TOKEN))
    by_auth = await Streamer(relay_url(relay)).connect(auth={"token": TOKEN})
    by_query = await Streamer(f"{relay_url(relay)}?token={TOKEN}").connect()
    assert len(relay.sessions()) == 2
    await by_auth.close()
    await by_query.close()


async def test_rotating_the_token_refuses_the_old_one(running_relay) -> None:
    relay = await running_relay(RelayConfig(auth_token=TOKEN))
    new = relay.rotate_token()
    assert new != TOKEN and len(new) >= 16
    with pytest.raises(socketio.exceptions.ConnectionError):
        await socketio.AsyncClient().connect(relay_url(relay), transports=["websocket"],
                                             auth={"token": TOKEN})
    ok = await Streamer(relay_url(relay)).connect(auth={"token": new})
    await ok.close()


# ---- limits ----------------------------------------------------------------------------

def test_token_bucket_allows_bursts_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert all(bucket.take(1, now=0.0) for _ in range(5))
    assert not bucket.take(1, now=0.0)
    assert bucket.take(1, now=0.1)  # 0.1 s at 10/s refills one
    assert not bucket.take(1, now=0.1)


async def started(relay: Any) -> Streamer:
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    return streamer


async def test_oversized_chunks_are_refused_and_end_the_session(running_relay) -> None:
    relay = await running_relay(RelayConfig(max_chunk_bytes=64 * 1024))
    streamer = await started(relay)
    ack = await streamer.send(b"\x1a\x45\xdf\xa3" + bytes(100 * 1024))
    assert ack["name"] == ErrorName.CHUNK_TOO_LARGE and ack["fatal"] is True
    await until(lambda: streamer.errors)
    assert streamer.errors[0]["name"] == ErrorName.CHUNK_TOO_LARGE
    assert relay.sessions()[0].state == SessionState.FAILED
    assert relay.sessions()[0].ffmpeg is None  # refused before any ffmpeg started
    await streamer.close()


async def test_chunk_floods_are_refused(running_relay) -> None:
    relay = await running_relay(RelayConfig(max_chunks_per_second=20, limit_burst_s=1))
    streamer = await started(relay)
    operator: list[Any] = []
    relay.add_listener("error", lambda sid, err: operator.append(err.name))
    data = H264_FIXTURE.read_bytes()
    for i in range(200):
        await streamer.client.emit("binarystream", data[i * 100:(i + 1) * 100])
    await until(lambda: streamer.errors)
    assert streamer.errors[0]["name"] == ErrorName.RATE_LIMITED
    assert "chunks" in streamer.errors[0]["message"]
    assert ErrorName.RATE_LIMITED in operator
    await streamer.close()


async def test_ingest_bitrate_above_the_limit_is_refused(running_relay) -> None:
    relay = await running_relay(RelayConfig(max_ingest_bits_per_second=800_000,
                                            limit_burst_s=1, max_chunk_bytes=256 * 1024))
    streamer = await started(relay)
    data = H264_FIXTURE.read_bytes()
    for i in range(0, 1_000_000, 100_000):  # 1 MB at once: 8 Mbit against 0.8 Mbit/s
        ack = await streamer.send(data[i:i + 100_000])
        if ack:
            break
    await until(lambda: streamer.errors)
    assert streamer.errors[0]["name"] == ErrorName.RATE_LIMITED
    assert "Mbit/s" in streamer.errors[0]["message"]
    await streamer.close()


@pytest.mark.media
async def test_idle_sessions_end_and_free_their_ffmpeg(running_relay) -> None:
    relay = await running_relay(RelayConfig(idle_timeout=1.5, stats_interval=0.2))
    streamer = await started(relay)
    await streamer.replay(H264_FIXTURE, seconds=1)
    pid = (await until(lambda: relay.sessions()[0].ffmpeg and relay.sessions()[0].ffmpeg.pid))
    assert pid_alive(pid)
    await until(lambda: streamer.errors, timeout=10)
    assert streamer.errors[0]["name"] == ErrorName.IDLE_TIMEOUT
    await until(lambda: relay.sessions()[0].ffmpeg.status == FfmpegState.ENDED)
    assert not pid_alive(pid)
    await streamer.close()


async def test_empty_chunks_keep_a_paused_session_alive(running_relay) -> None:
    relay = await running_relay(RelayConfig(idle_timeout=0.6, stats_interval=0.1))
    streamer = await started(relay)
    for _ in range(8):
        assert await streamer.send(b"") is None
        await asyncio.sleep(0.2)
    assert streamer.errors == []
    assert relay.sessions()[0].state == SessionState.STARTING
    await streamer.close()


# ---- TLS -------------------------------------------------------------------------------

def test_certificate_is_made_once_and_covers_the_machine(tmp_path: Path) -> None:
    hosts = ["myhost", "localhost", "127.0.0.1", "192.168.1.20"]
    files = ensure_certificate(tmp_path, hosts)
    assert files.ca_cert is not None
    assert stat.S_IMODE(os.stat(files.key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "ca.key").st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "myhost" in san.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1", "192.168.1.20"}
    first = files.cert.read_bytes()
    assert ensure_certificate(tmp_path, hosts).cert.read_bytes() == first  # reused
    ca_before = files.ca_cert.read_bytes()
    moved = ensure_certificate(tmp_path, [*hosts, "10.0.0.7"])  # the machine moved networks
    assert moved.cert.read_bytes() != first
    assert moved.ca_cert is not None and moved.ca_cert.read_bytes() == ca_before  # trust kept
    # The new server certificate verifies against the CA a device may have trusted.
    ctx = ssl.create_default_context(cafile=str(moved.ca_cert))
    assert ctx.cert_store_stats()["x509_ca"] == 1


@pytest.mark.media
async def test_https_relay_streams_to_a_client_that_trusts_its_ca(
    running_relay, rtmp_receiver, tmp_path: Path
) -> None:
    files = ensure_certificate(tmp_path / "tls", ["localhost", "127.0.0.1"])
    receiver = rtmp_receiver("tls-key-0123456789")
    relay = await running_relay(RelayConfig(tls=files, auth_token=TOKEN,
                                            default_target=receiver.url))
    assert relay.scheme == "https"
    ctx = ssl.create_default_context(cafile=str(files.ca_cert))
    url = f"https://127.0.0.1:{relay.port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
        async with http.get(f"{url}/ca.crt") as resp:
            assert resp.status == 200
            assert resp.content_type == "application/x-x509-ca-cert"
            assert await resp.read() == files.ca_cert.read_bytes()  # type: ignore[union-attr]
        streamer = Streamer(url, client=socketio.AsyncClient(http_session=http))
        await streamer.connect(auth={"token": TOKEN})
        assert await streamer.start({"framerate": 20})
        await streamer.replay(H264_FIXTURE, seconds=5)
        await streamer.stop()
        await streamer.close()
    await asyncio.to_thread(receiver.wait, 30)
    assert probe(receiver.path).video_frames > 60


async def test_plain_http_is_refused_by_a_tls_relay(running_relay, tmp_path: Path) -> None:
    files = ensure_certificate(tmp_path / "tls", ["127.0.0.1"])
    relay = await running_relay(RelayConfig(tls=files))
    client = socketio.AsyncClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(f"http://127.0.0.1:{relay.port}", transports=["websocket"],
                             wait_timeout=3)


# ---- keys at rest ----------------------------------------------------------------------

def test_keystore_falls_back_to_a_private_file_and_says_so(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "secrets.json", use_keyring=False)
    assert store.warning and "secrets.json" in store.warning
    store.set("default-target-key", "live_123_abcdef")
    assert store.get("default-target-key") == "live_123_abcdef"
    assert stat.S_IMODE(os.stat(tmp_path / "secrets.json").st_mode) == 0o600
    store.delete("default-target-key")
    assert store.get("default-target-key") is None


def test_keystore_without_a_keyring_backend_does_not_crash(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "s.json")  # headless Linux: keyring's fail backend
    store.set("k", "v")
    assert store.get("k") == "v"


# ---- masking -----------------------------------------------------------------------------

@pytest.mark.media
async def test_no_stream_key_in_logs_or_client_messages_of_a_whole_session(
    running_relay, rtmp_receiver, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from ..media import find_leaks

    caplog.set_level(logging.DEBUG, logger="desktop_relay")
    first = rtmp_receiver("first-secret-key-abcdef")
    second = rtmp_receiver("second-secret-key-ghijkl")
    relay = await running_relay(RelayConfig(default_target=first.url, send_ffmpeg_output=True,
                                            send_error_details=True))
    relay.set_default_target(first.url)
    streamer = await started(relay)
    replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=6))
    session = await until(lambda: next(
        (s for s in relay.sessions() if s.ffmpeg and s.ffmpeg.frames_sent), None), timeout=20)
    await relay.set_session_target(session.uuid, second.url)
    await replay
    await relay.kill(session.uuid)
    texts = [r.getMessage() for r in caplog.records] + streamer.outputs + [
        repr(e) for e in streamer.errors] + [repr(s.to_dict()) for s in relay.sessions()]
    assert any("ffmpeg" in t and "rtmp://127.0.0.1" in t for t in texts)  # targets were logged
    assert find_leaks(texts, {"first-secret-key-abcdef", "second-secret-key-ghijkl"}) == []
    assert find_leaks(["x first-secret-key-abcdef y"], {"first-secret-key-abcdef"})  # it can fail
