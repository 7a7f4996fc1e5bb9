"""The program inside the relay, end to end with real parts: two browser-like sources (H.264 +
Opus in Matroska, different sizes and colours) sent as browsers send them, the program to an
`ffmpeg -listen 1` RTMP receiver, driven through the control API; the receiver's recording is
decoded frame by frame."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest

from desktop_relay.relay import RelayConfig, RelayServer
from desktop_relay.relay.program.picture import pip_rect
from desktop_relay.relay.program.slate import SLATE_BACKGROUND_RGB

from ..media import RtmpReceiver, probe
from ..polling import wait_for
from ..replay import ResumingStreamer, Streamer, relay_url
from ..rtmp import port_of, start_receiver_on
from .captures import make_all

pytestmark = pytest.mark.media

CONTROL = "control-token-0123456789abcdef"
PAIRING = "pairing-token-0123456789"
MakeRelay = Callable[[RelayConfig], Awaitable[RelayServer]]


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory, ffmpeg_exe: str) -> dict[str, Path]:
    return make_all(ffmpeg_exe, tmp_path_factory.mktemp("program-captures"))


def colour_of(rgb: np.ndarray) -> str:
    """red, blue, slate, blend (a mix of red and blue) or other, for a patch's mean."""
    r, g, b = (float(v) for v in rgb.reshape(-1, 3).mean(axis=0))
    if r > 170 and g < 70 and b < 70:
        return "red"
    if b > 170 and r < 70 and g < 70:
        return "blue"
    sr, sg, sb = SLATE_BACKGROUND_RGB
    if abs(r - sr) < 30 and abs(g - sg) < 30 and abs(b - sb) < 30:
        return "slate"
    if r > 50 and b > 50 and g < 60:
        return "blend"
    return "other"


async def api(session: aiohttp.ClientSession, url: str, method: str = "GET",
              body: Any = None, token: str | None = CONTROL,
              raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with session.request(method, f"{url}/api/program", json=body if raw is None else None,
                               data=raw, headers=headers) as response:
        return response.status, await response.json()


def sources_live(relay: RelayServer, n: int) -> bool:
    status = relay.program_status()
    return status.live and sum(1 for s in status.sources if s.state == "live") >= n


async def test_takes_fades_pip_slate_and_a_stall_reach_the_receiver_as_one_stream(
    running_relay: MakeRelay, rtmp_receiver: Callable[..., RtmpReceiver],
    captures: dict[str, Path],
) -> None:
    receiver = rtmp_receiver("program-0123456789ab")
    relay = await running_relay(RelayConfig(
        program_targets=(receiver.url,), control_token=CONTROL, auth_token=PAIRING))
    streamers: dict[str, Streamer] = {}
    replays: dict[str, asyncio.Task[int]] = {}
    ids: dict[str, str] = {}
    marks: list[tuple[str, float]] = []
    try:
        for name in ("red", "blue"):
            streamer = await Streamer(relay_url(relay)).connect(auth={"token": PAIRING})
            assert await streamer.start({"framerate": 30, "name": name})
            streamers[name] = streamer
            replays[name] = asyncio.create_task(streamer.replay(captures[name], seconds=16))
        await wait_for(lambda: sources_live(relay, 2), timeout=15)
        ids = {s.name: s.id for s in relay.program_status().sources}
        url = relay_url(relay)
        async with aiohttp.ClientSession() as http:
            status, state = await api(http, url)
            assert status == 200 and state["live"] and state["source"] is None and state["slate"]
            assert {s["name"] for s in state["sources"]} == {"red", "blue"}
            assert state["size"] == "1280x720"

            async def command(body: dict[str, Any], mark: str) -> dict[str, Any]:
                status, state = await api(http, url, "POST", body)
                assert status == 200, state
                marks.append((mark, time.time()))
                return state

            state = await command({"take": ids["red"]}, "red")
            assert state["source"] == ids["red"]
            await asyncio.sleep(2)
            await command({"take": ids["blue"], "fade_ms": 600}, "fade-to-blue")
            await asyncio.sleep(2)
            state = await command({"preview": ids["red"]}, "preview-red")
            assert state["preview"] == ids["red"] and state["source"] == ids["blue"]
            state = await command({"take": "preview"}, "red-again")
            assert state["source"] == ids["red"] and state["preview"] == ids["blue"]
            await asyncio.sleep(1.5)
            state = await command({"pip": {"source": ids["blue"], "corner": "tl"}}, "pip")
            assert state["pip"] == {"source": ids["blue"], "corner": "tl", "size": "1/4"}
            await asyncio.sleep(1.5)
            await command({"pip": None}, "no-pip")
            await command({"slate": True}, "slate")
            await asyncio.sleep(1)
            await command({"slate": False}, "unslate")
            await asyncio.sleep(1)
            # The source on air stops sending (a phone's app frozen): freeze, then the slate.
            replays["red"].cancel()
            await asyncio.gather(replays["red"], return_exceptions=True)
            last_chunk = time.time()
            await wait_for(lambda: relay.program_status().slate, timeout=5)
            slated = time.time() - last_chunk
            assert relay.program_status().slate_reason == "stalled"
            assert slated <= 1.5, slated  # 1 s freeze at most, then the slate
            marks.append(("stalled", last_chunk))
            await asyncio.sleep(1)
    finally:
        for task in replays.values():
            task.cancel()
        await asyncio.gather(*replays.values(), return_exceptions=True)
        for streamer in streamers.values():
            await streamer.close()
        clock_start = relay.program_status().live and relay.program.engine.state.clock_start
        await relay.stop()
    await asyncio.to_thread(receiver.wait, 15)
    assert clock_start

    # One RTMP connection, one picture size, every second full, colours in the right order.
    # Where the blue (1280x720) picture-in-picture sits at the top left, a quarter wide.
    px, py, pw, ph = pip_rect(1280, 720, 1280, 720, "tl", "1/4")
    container = av.open(str(receiver.path))
    frames: list[tuple[float, str, str, tuple[int, int]]] = []
    beside: dict[float, str] = {}  # just right of and below the inset: the picture on air
    for frame in container.decode(video=0):
        picture = frame.to_ndarray(format="rgb24")
        h, w = picture.shape[:2]
        centre = colour_of(picture[h // 2 - 40:h // 2 + 40, w // 2 - 40:w // 2 + 40])
        cx, cy = px + pw // 2, py + ph // 2
        corner = colour_of(picture[cy - 20:cy + 20, cx - 20:cx + 20])
        t = float(frame.time or 0.0)
        beside[t] = colour_of(picture[py + ph + 8:py + ph + 24, px + pw + 8:px + pw + 24])
        frames.append((t, centre, corner, (w, h)))
    container.close()
    assert {size for *_, size in frames} == {(1280, 720)}
    times = [t for t, *_ in frames]
    per_second = [sum(1 for t in times if s <= t < s + 1) for s in range(1, int(times[-1]) - 1)]
    assert per_second and min(per_second) >= 29, per_second

    def first(colour: str, after: float, where: int = 1) -> float:
        """Wall time of the first frame after `after` whose centre (or corner) shows it."""
        for t, centre, corner, _ in frames:
            wall = clock_start + t
            if wall >= after and (centre if where == 1 else corner) == colour:
                return wall
        raise AssertionError(f"no {colour} after {after}: {[f[1] for f in frames][::15]}")

    at = dict(marks)
    assert first("slate", clock_start) < at["red"]  # nothing taken yet: the slate
    assert first("red", at["red"] - 0.1) - at["red"] <= 0.5
    blend = first("blend", at["fade-to-blue"] - 0.1)
    blue = first("blue", at["fade-to-blue"] - 0.1)
    assert blend < blue and blue - at["fade-to-blue"] <= 0.5 + 0.6
    assert first("red", at["red-again"] - 0.1) - at["red-again"] <= 0.5
    pip = first("blue", at["pip"] - 0.1, where=2)
    assert pip - at["pip"] <= 0.5
    assert colour_of_at(frames, clock_start, pip + 0.2) == "red"  # the centre stays red
    during = [t for t, *_ in frames if pip + 0.1 <= clock_start + t <= at["no-pip"] - 0.1]
    assert during and all(beside[t] == "red" for t in during)  # the inset ends where it should
    assert first("slate", at["slate"] - 0.1) - at["slate"] <= 0.5
    assert first("red", at["unslate"] - 0.1) - at["unslate"] <= 0.5
    assert first("slate", at["stalled"]) - at["stalled"] <= 1.5


def colour_of_at(frames: list[tuple[float, str, str, tuple[int, int]]], clock_start: float,
                 wall: float) -> str:
    """The centre's colour of the frame composed at `wall`."""
    return min(frames, key=lambda f: abs(clock_start + f[0] - wall))[1]


async def test_the_control_api_wants_the_control_token_and_names_what_is_wrong(
    running_relay: MakeRelay, rtmp_receiver: Callable[..., RtmpReceiver],
    captures: dict[str, Path],
) -> None:
    receiver = rtmp_receiver("program-api-0123456789")
    relay = await running_relay(RelayConfig(
        program_targets=(receiver.url,), control_token=CONTROL, auth_token=PAIRING))
    url = relay_url(relay)
    # Numbered chunks, as our page sends them: a lost link leaves the session waiting.
    streamer = await ResumingStreamer(url).connect(auth={"token": PAIRING})
    try:
        await streamer.start_ticket({"framerate": 30, "name": "red"})
        data = captures["red"].read_bytes()
        step = len(data) // 80  # 0.25 s of the 20 s capture each
        chunks = [data[i:i + step] for i in range(0, len(data), step)]
        t0 = asyncio.get_running_loop().time()
        replay = asyncio.create_task(streamer.send_in_time(chunks, 0, 40, t0, 0.25))
        await wait_for(lambda: sources_live(relay, 1), timeout=15)
        (source,) = relay.program_status().sources
        async with aiohttp.ClientSession() as http:
            # No token, a wrong one, the pairing token (every phone has it): 401, no state.
            for token in (None, "wrong-token-0123456789", PAIRING, ""):
                for method, body in (("GET", None), ("POST", {"take": source.id})):
                    status, answer = await api(http, url, method, body, token=token)
                    assert status == 401 and answer["error"] == "UNAUTHORIZED", (token, answer)
                    assert "sources" not in answer and "source" not in answer
            assert relay.program_status().source is None  # nothing was taken
            bad: list[tuple[Any, str]] = [
                ({"take": "no-such-session"}, "UNKNOWN_SOURCE"),
                ({"jump": source.id}, "UNKNOWN_KEY"),
                ({"take": source.id, "slate": True}, "INVALID_BODY"),
                ({}, "INVALID_BODY"),
                ([1, 2], "INVALID_BODY"),
                ({"slate": "yes"}, "INVALID_VALUE"),
                ({"take": source.id, "fade_ms": -5}, "INVALID_VALUE"),
                ({"take": source.id, "fade_ms": "500"}, "INVALID_VALUE"),
                ({"pip": {"source": source.id, "corner": "middle"}}, "INVALID_VALUE"),
                ({"pip": "everywhere"}, "INVALID_VALUE"),
                ({"take": 12}, "INVALID_VALUE"),
                ({"fade_ms": 100}, "INVALID_BODY"),
            ]
            for body, name in bad:
                status, answer = await api(http, url, "POST", body)
                assert status == 400 and answer["error"] == name, (body, answer)
                assert answer["message"]
            status, answer = await api(http, url, "POST", raw=b"{not json")
            assert status == 400 and answer["error"] == "INVALID_BODY"
            status, answer = await api(http, url, "POST", {"take": "preview"})
            assert status == 409 and answer["error"] == "NO_PREVIEW"
            status, answer = await api(http, url, "POST", {"take": source.id})
            assert status == 200 and answer["source"] == source.id
            status, answer = await api(http, url, "POST", {"auto_return": False})
            assert status == 200 and answer["autoReturn"] is False
            status, answer = await api(http, url, "POST", {"audio": source.id})
            assert status == 200 and answer["audioPinned"] == source.id
            status, answer = await api(http, url, "POST", {"audio": None})
            assert status == 200 and answer["audioPinned"] is None
            for body, name in (({"auto_return": "no"}, "INVALID_VALUE"),
                               ({"audio": "no-such-session"}, "UNKNOWN_SOURCE")):
                status, answer = await api(http, url, "POST", body)
                assert status == 400 and answer["error"] == name, (body, answer)
            # Its link lost (the session waits for a resume): not live, 409.
            replay.cancel()
            await asyncio.gather(replay, return_exceptions=True)
            streamer.cut()
            await wait_for(lambda: relay.program_status().sources[0].state == "waiting",
                           timeout=10)
            status, answer = await api(http, url, "POST", {"preview": source.id})
            assert status == 409 and answer["error"] == "SOURCE_NOT_LIVE", answer
    finally:
        await streamer.close()


async def test_monitor_pictures_of_program_and_preview_a_few_a_second(
    running_relay: MakeRelay, rtmp_receiver: Callable[..., RtmpReceiver],
    captures: dict[str, Path],
) -> None:
    """What the window's Program panel shows: small pictures of the program and of the source
    on preview, only while pictures are wanted (Relay.set_thumbnails)."""
    receiver = rtmp_receiver("program-monitor-0123456789")
    relay = await running_relay(RelayConfig(program_targets=(receiver.url,),
                                            control_token=CONTROL))
    pictures: list[tuple[str, float, str]] = []

    def on_picture(which: str, thumbnail: Any) -> None:
        rgb = np.frombuffer(thumbnail.rgb, dtype=np.uint8).reshape(
            thumbnail.height, thumbnail.width, 3)
        pictures.append((which, time.monotonic(), colour_of(rgb[60:120, 130:190])))

    relay.add_listener("program_picture", on_picture)
    streamer = await Streamer(relay_url(relay)).connect()
    try:
        assert await streamer.start({"framerate": 30, "name": "blue"})
        replay = asyncio.create_task(streamer.replay(captures["blue"], seconds=8))
        await wait_for(lambda: sources_live(relay, 1), timeout=15)
        await asyncio.sleep(1)
        assert not pictures  # nobody looks: none made
        relay.set_thumbnails(True)
        (source,) = relay.program_status().sources
        assert relay.program is not None
        relay.program.preview(source.id)
        await wait_for(lambda: sum(1 for p in pictures if p[0] == "preview") >= 4, timeout=5)
        start = time.monotonic()
        await asyncio.sleep(2)
        program = [p for p in pictures if p[0] == "program" and p[1] >= start]
        assert 6 <= len(program) <= 12, len(program)  # about 4 a second
        assert program[-1][2] == "slate"  # nothing taken
        assert [p for p in pictures if p[0] == "preview"][-1][2] == "blue"
        await relay.program.take(source.id)
        await wait_for(lambda: (pictures[-1][0] == "program" and pictures[-1][2] == "blue")
                       or any(p[0] == "program" and p[2] == "blue" for p in pictures[-4:]),
                       timeout=3)
        relay.set_thumbnails(False)
        replay.cancel()
        await asyncio.gather(replay, return_exceptions=True)
    finally:
        await streamer.close()


async def test_the_programs_receiver_killed_and_back_is_reconnected(
    running_relay: MakeRelay, rtmp_receiver: Callable[..., RtmpReceiver], ffmpeg_exe: str,
    tmp_path: Path,
) -> None:
    """The program's own destination is an output like a session's: a receiver that dies
    and comes back on the same address gets the program again, from a keyframe."""
    first = rtmp_receiver("program-back-0123456789")
    relay = await running_relay(RelayConfig(program_targets=(first.url,), control_token=CONTROL))

    def output_state() -> str | None:
        outputs = relay.program_status().outputs
        return str(outputs[0].state) if outputs else None

    await wait_for(lambda: output_state() == "live", timeout=15)
    await asyncio.sleep(1)
    first.process.kill()
    first.process.wait()
    await wait_for(lambda: output_state() in ("reconnecting", "connecting"), timeout=10)
    second = start_receiver_on(ffmpeg_exe, tmp_path, port_of(first.url), "program-back-0123456789")
    try:
        await wait_for(lambda: output_state() == "live", timeout=15)
        status = relay.program_status()
        assert status.live and status.outputs[0].reconnects == 1
        await asyncio.sleep(2)
        await relay.stop()
        await asyncio.to_thread(second.wait, 15)
    finally:
        second.close()
    got = probe(second.path)
    assert got.width == 1280 and got.video_frames >= 30, got


async def read_event(response: aiohttp.ClientResponse, timeout: float = 10.0) -> dict[str, Any]:
    """The next `event: program` of a server-sent event stream, its data parsed."""
    event: dict[str, str] = {}
    async with asyncio.timeout(timeout):
        while True:
            line = (await response.content.readline()).decode()
            assert line, "the event stream ended"
            line = line.rstrip("\n")
            if not line:
                if event.get("event") == "program":
                    return json.loads(event["data"])  # type: ignore[no-any-return]
                event = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(": ")
                event[field] = value


async def test_state_changes_are_pushed_to_controllers_as_server_sent_events(
    running_relay: MakeRelay, rtmp_receiver: Callable[..., RtmpReceiver]
) -> None:
    receiver = rtmp_receiver("program-events-0123456789")
    relay = await running_relay(
        RelayConfig(program_targets=(receiver.url,), control_token=CONTROL, auth_token=PAIRING)
    )
    url = relay_url(relay)
    events = f"{url}/api/program/events"
    async with aiohttp.ClientSession() as http:
        # The same gate as the rest of the API: phones' pairing token included.
        for token in (None, "wrong-token-0123456789", PAIRING):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.get(events, headers=headers) as response:
                assert response.status == 401
                assert (await response.json())["error"] == "UNAUTHORIZED"
        headers = {"Authorization": f"Bearer {CONTROL}"}
        async with http.get(events, headers=headers) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            first = await read_event(response)
            # The worker starting is one of the changes pushed.
            while not first["live"]:
                first = await read_event(response)
            assert first["slate"] is True and first["slateReason"] == "no_source"
            status, _ = await api(http, url, "POST", {"slate": True})
            assert status == 200
            pushed = await read_event(response)
            while pushed["slateReason"] != "manual":  # the program's own changes come too
                pushed = await read_event(response)
            assert pushed["slate"] is True
            # A bounded number of streams: the 17th is refused with a name, not held open.
            others = [await http.get(events, headers=headers) for _ in range(15)]
            try:
                assert all(o.status == 200 for o in others)
                async with http.get(events, headers=headers) as refused:
                    assert refused.status == 503
                    assert (await refused.json())["error"] == "TOO_MANY_STREAMS"
            finally:
                for other in others:
                    other.close()
            # The relay stopping ends the stream at once (no wait for the server's timeout).
            t0 = time.monotonic()
            stopping = asyncio.create_task(relay.stop())
            async with asyncio.timeout(10):
                while await response.content.readline():
                    pass
            await stopping
            assert time.monotonic() - t0 < 5


async def test_a_command_given_while_the_program_starts_waits_for_it(
    running_relay: MakeRelay, rtmp_receiver: Callable[..., RtmpReceiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A Stream Deck pressed while the worker still starts (1-2 s in the packaged app, which
    # spawns itself and loads PyAV) gets its command done, not "the program is not running"
    # (what the packaged-app smoke test got on a slower machine). The start is slowed here.
    from desktop_relay.relay.program.engine import ProgramEngine

    original = ProgramEngine.start

    async def slow_start(self: ProgramEngine) -> None:
        await asyncio.sleep(1.5)
        await original(self)

    monkeypatch.setattr(ProgramEngine, "start", slow_start)
    receiver = rtmp_receiver("program-0123456789cd")
    relay = await running_relay(RelayConfig(program_targets=(receiver.url,), control_token=CONTROL))
    await wait_for(lambda: relay.program is not None, 5)
    assert not relay.program_status().live  # still starting
    async with aiohttp.ClientSession() as http:
        status, body = await api(http, relay_url(relay), "POST", {"slate": True})
    assert status == 200, body
    assert body["live"] and body["slate"]
    assert relay.program_status().slate
