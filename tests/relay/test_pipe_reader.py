"""How the relay reads its ffmpegs' pipes (ffmpeg._PipeReader, ffmpeg._Lines): real pipes.

The media pipe is read a moment after it turns readable, so a burst of packets flushed one by
one arrives in one read; nothing may be lost, reordered or held past the end of the stream.
Every test runs twice: with the edge-triggered epoll every pipe of a loop shares (Linux), and
with the loop's own selector, which a reader falls back to without epoll.
"""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from desktop_relay.relay import event_loop
from desktop_relay.relay.ffmpeg import process
from desktop_relay.relay.ffmpeg.process import _Lines, _PipeReader


@pytest.fixture(autouse=True, params=["edge-triggered", "selector"])
def watch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "selector":
        monkeypatch.setattr(process._EdgePipes, "join", classmethod(lambda cls, *a: None))
    return str(request.param)


class Sink:
    def __init__(self) -> None:
        self.reads: list[bytes] = []
        self.eof = 0
        self.read = asyncio.Event()

    def __call__(self, data: bytes) -> None:
        assert self.eof == 0, "data after the end of the stream"
        self.reads.append(data)
        self.read.set()

    def end(self) -> None:
        self.eof += 1


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


async def test_a_burst_of_small_writes_is_read_at_once() -> None:
    r, w = os.pipe()
    sink = Sink()
    reader = _PipeReader(r, sink, 0.05, sink.end)
    packets = [bytes([i]) * (100 + i) for i in range(10)]
    for packet in packets:  # ffmpeg's per-packet flushes, a millisecond apart
        os.write(w, packet)
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.15)
    assert sink.reads == [b"".join(packets)]
    os.close(w)
    await asyncio.wait_for(reader.done, 2)
    assert sink.eof == 1 and _closed(r)


async def test_separate_bursts_are_separate_reads_and_wait_no_longer_than_the_delay() -> None:
    r, w = os.pipe()
    sink = Sink()
    loop = asyncio.get_running_loop()
    reader = _PipeReader(r, sink, 0.02, sink.end)
    waits = []
    for i in range(3):
        sink.read.clear()
        sent = loop.time()
        os.write(w, b"x" * (i + 1))
        await asyncio.wait_for(sink.read.wait(), 1)
        waits.append(loop.time() - sent)
    assert sink.reads == [b"x", b"xx", b"xxx"]
    # The delay, plus the loop's own latency on a busy 2-core machine.
    assert all(0.015 <= wait < 0.5 for wait in waits), waits
    os.close(w)
    await asyncio.wait_for(reader.done, 2)


async def test_more_than_a_pipe_holds_arrives_whole_and_in_order() -> None:
    r, w = os.pipe()
    sink = Sink()
    reader = _PipeReader(r, sink, 0.008, sink.end)
    data = os.urandom(3 * 1024 * 1024)

    def write_all() -> None:  # a producer that blocks on the full pipe, as ffmpeg does
        view = memoryview(data)
        while view:
            view = view[os.write(w, view[: 1 << 20]) :]
        os.close(w)

    writer = threading.Thread(target=write_all)
    writer.start()
    await asyncio.wait_for(reader.done, 20)
    writer.join()
    assert b"".join(sink.reads) == data
    assert sink.eof == 1


async def test_eof_right_after_the_last_bytes_delivers_them_first() -> None:
    r, w = os.pipe()
    sink = Sink()
    reader = _PipeReader(r, sink, 0.01, sink.end)
    os.write(w, b"tail")
    os.close(w)
    await asyncio.wait_for(reader.done, 2)
    assert sink.reads == [b"tail"] and sink.eof == 1 and _closed(r)


async def test_read_now_takes_the_rest_without_waiting_out_the_delay() -> None:
    # ffmpeg exited: its exit's handling waits for every pipe's end, and the log's reader
    # waits a quarter of a second before reading.
    r, w = os.pipe()
    sink = Sink()
    reader = _PipeReader(r, sink, 5.0, sink.end)
    os.write(w, b"last words\n")
    os.close(w)
    await asyncio.sleep(0.05)  # the pipe turned readable: its read is due in 5 s
    assert sink.reads == []
    reader.read_now()
    assert reader.done.done()
    assert sink.reads == [b"last words\n"] and sink.eof == 1 and _closed(r)


async def test_without_a_delay_reads_at_once() -> None:
    r, w = os.pipe()
    sink = Sink()
    reader = _PipeReader(r, sink, 0.0, sink.end)
    os.write(w, b"progress=continue\n")
    await asyncio.wait_for(sink.read.wait(), 1)
    assert sink.reads == [b"progress=continue\n"]
    os.close(w)
    await asyncio.wait_for(reader.done, 2)


def test_on_a_paced_loop_the_pace_gathers_the_burst_without_a_delay() -> None:
    # The headless relay's loop (event_loop.py) wakes once per interval: the reader's own
    # wait would only add a timer and latency. The burst still comes in one read.
    async def burst() -> tuple[float, list[bytes]]:
        r, w = os.pipe()
        sink = Sink()
        reader = _PipeReader(r, sink, 0.05, sink.end)
        packets = [bytes([i]) * (100 + i) for i in range(10)]
        for packet in packets:  # written in one go, as the loop's pace gathers them
            os.write(w, packet)
        os.close(w)
        await asyncio.wait_for(reader.done, 2)
        return reader._delay, sink.reads

    delay, reads = event_loop.run(burst(), interval=0.05)
    assert delay == 0.0
    assert reads == [b"".join(bytes([i]) * (100 + i) for i in range(10))]


async def test_cancelling_closes_the_pipe_and_stops_reading() -> None:
    r, w = os.pipe()
    sink = Sink()
    reader = _PipeReader(r, sink, 0.05, sink.end)
    os.write(w, b"pending")
    await asyncio.sleep(0.01)  # readable, its read still waiting for the delay
    reader.done.cancel()
    await asyncio.sleep(0.1)
    assert sink.reads == [] and sink.eof == 0 and _closed(r)
    os.close(w)


async def test_a_consumer_that_raises_does_not_stop_the_reading() -> None:
    r, w = os.pipe()
    got: list[bytes] = []

    def flaky(data: bytes) -> None:
        got.append(data)
        if len(got) == 1:
            raise RuntimeError("consumer bug")

    reader = _PipeReader(r, flaky, 0.005)
    os.write(w, b"one")
    await asyncio.sleep(0.05)
    os.write(w, b"two")
    await asyncio.sleep(0.05)
    os.close(w)
    await asyncio.wait_for(reader.done, 2)
    assert got == [b"one", b"two"]


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b"a\nb", b"c\n"], ["a", "bc"]),
        ([b"frame=  10\rframe=  20\r", b"\n\nend"], ["frame=  10", "frame=  20", "end"]),
        # A character cut between two reads is decoded whole.
        (["é\n".encode()[:1], "é\n".encode()[1:]], ["é"]),
    ],
)
def test_lines_split_across_reads(chunks: list[bytes], lines: list[str]) -> None:
    got: list[str] = []
    split = _Lines(got.append)
    for chunk in chunks:
        split(chunk)
    split.flush()
    assert got == lines


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


async def test_pipes_share_one_watch_that_closes_with_the_last(watch: str) -> None:
    before = _open_fds()
    pipes = [os.pipe() for _ in range(3)]
    sinks = [Sink() for _ in pipes]
    readers = [
        _PipeReader(r, sink, 0.005, sink.end) for (r, _), sink in zip(pipes, sinks, strict=True)
    ]
    # The three read ends, the three write ends and (edge-triggered) one epoll.
    assert len(_open_fds() - before) == (7 if watch == "edge-triggered" else 6)
    for i, (_, w) in enumerate(pipes):
        os.write(w, b"%d" % i)
    for sink in sinks:
        await asyncio.wait_for(sink.read.wait(), 2)
    assert [sink.reads for sink in sinks] == [[b"0"], [b"1"], [b"2"]]
    for _, w in pipes:
        os.close(w)
    await asyncio.wait_for(asyncio.gather(*(reader.done for reader in readers)), 2)
    assert _open_fds() == before  # pipes and epoll closed
    assert not process._EDGE_PIPES


async def test_bytes_written_before_the_watch_began_are_read() -> None:
    r, w = os.pipe()
    os.write(w, b"early")  # ffmpeg may write before its reader exists
    sink = Sink()
    reader = _PipeReader(r, sink, 0.005, sink.end)
    await asyncio.wait_for(sink.read.wait(), 2)
    assert sink.reads == [b"early"]
    os.close(w)
    await asyncio.wait_for(reader.done, 2)
