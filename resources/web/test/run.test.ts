import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { RelaySocket } from "../src/client/connection";
import { bufferLimits } from "../src/client/resume-buffer";
import { Run, type RunLink } from "../src/client/run";
import type { ServerError } from "../src/client/types";
import type { Recorder } from "../src/client/webcodecs";

type Ack = (error?: ServerError | null) => void;

/** What the fake socket was asked to emit. */
interface Sent {
  event: string;
  bytes: number;
  seq: number | undefined;
  ack: Ack;
}

function setUp(options: { resumable?: boolean; limits?: { resumeBufferSeconds?: number } } = {}) {
  const sent: Sent[] = [];
  const socket = {
    connected: true,
    emit(event: string, ...args: unknown[]) {
      const ack = args[args.length - 1] as Ack;
      const data = args[0] as ArrayBuffer;
      sent.push({ event, bytes: data.byteLength, seq: typeof args[1] === "number" ? args[1] : undefined, ack });
      return this;
    },
  };
  const recorder = {
    state: "recording",
    mimeType: "video/webm",
    stop() {
      this.state = "inactive";
    },
  };
  const delivered: number[] = [];
  const errors: ServerError[] = [];
  let current = true;
  const link: RunLink = {
    socket: socket as unknown as RelaySocket,
    isCurrent: () => current,
    onChunkError: (error) => errors.push(error),
    onDelivered: (bytes) => delivered.push(bytes),
    bufferLimits: () => bufferLimits(options.limits ?? {}),
  };
  const ticket = options.resumable === false ? undefined : { sessionId: "s", token: "t" };
  const run = new Run(link, recorder as unknown as Recorder, "video/webm", "mediarecorder", 250, ticket);
  /** The recorder gives a chunk of `size` bytes; resolves once the run has handled it. */
  const record = async (size: number): Promise<void> => {
    run.onData({ data: new Blob([new Uint8Array(size)]) } as unknown as Event);
    await run.chain;
  };
  return {
    run,
    socket,
    recorder,
    sent,
    delivered,
    errors,
    record,
    notCurrent: () => {
      current = false;
    },
  };
}

describe("Run", () => {
  it("sends numbered chunks in order and holds each until acknowledged", async () => {
    const { run, sent, delivered, record } = setUp();
    await record(10);
    await record(20);
    await record(30);
    assert.deepEqual(
      sent.map((s) => [s.event, s.seq, s.bytes]),
      [
        ["binarystream", 0, 10],
        ["binarystream", 1, 20],
        ["binarystream", 2, 30],
      ],
    );
    assert.equal(run.pendingChunks, 3);
    sent[1].ack(null); // releases 0 and 1
    assert.deepEqual(run.buffer.seqs, [2]);
    assert.deepEqual(delivered, [20]);
  });

  it("while unlinked holds chunks, then resends after the relay's lastSeq and goes on", async () => {
    const { run, sent, record } = setUp();
    await record(10); // seq 0, sent
    run.unlink();
    assert.equal(run.state, "unlinked");
    await record(11); // seq 1
    await record(12); // seq 2
    assert.equal(sent.length, 1, "nothing goes out while unlinked");
    assert.deepEqual(run.buffer.seqs, [0, 1, 2]);

    assert.equal(await run.resendFrom(0), true); // the relay got seq 0
    assert.equal(run.state, "linked");
    assert.deepEqual(
      sent.slice(1).map((s) => s.seq),
      [1, 2],
    );
    assert.deepEqual(run.buffer.seqs, [1, 2]);
    await record(13);
    assert.deepEqual(
      sent.slice(1).map((s) => s.seq),
      [1, 2, 3],
    );
  });

  it("resends everything when the relay had nothing (lastSeq null)", async () => {
    const { run, sent, record } = setUp();
    run.unlink();
    await record(10);
    await record(10);
    assert.equal(await run.resendFrom(null), true);
    assert.deepEqual(
      sent.map((s) => s.seq),
      [0, 1],
    );
  });

  it("does not resend or relink while the socket is down", async () => {
    const { run, socket, sent, record } = setUp();
    run.unlink();
    await record(10);
    socket.connected = false;
    assert.equal(await run.resendFrom(null), false);
    assert.equal(run.state, "unlinked");
    assert.equal(sent.length, 0);
  });

  it("reports a refused chunk only for the current run", async () => {
    const { sent, errors, record, notCurrent } = setUp();
    await record(10);
    await record(10);
    const error = { name: "FFMPEG_WRITE_ERROR", message: "no", fatal: true };
    sent[0].ack(error);
    assert.deepEqual(errors, [error]);
    notCurrent();
    sent[1].ack(error);
    assert.equal(errors.length, 1);
  });

  it("sends unnumbered chunks to the original server, never while disconnected", async () => {
    const { run, socket, sent, delivered, record } = setUp({ resumable: false });
    await record(10);
    assert.deepEqual(
      sent.map((s) => [s.seq, s.bytes]),
      [[undefined, 10]],
    );
    assert.equal(run.pendingChunks, 1);
    assert.equal(run.buffer.length, 0, "nothing held without a resume ticket");
    sent[0].ack(null);
    assert.equal(run.pendingChunks, 0);
    assert.deepEqual(delivered, [10]);
    socket.connected = false;
    await record(10);
    assert.equal(sent.length, 1);
    assert.equal(run.pendingChunks, 0);
    assert.equal(run.canResume, false);
  });

  it("sends empty heartbeats, unnumbered, only while linked", async () => {
    const { run, sent } = setUp();
    run.sendHeartbeat();
    await run.chain;
    assert.deepEqual(
      sent.map((s) => [s.seq, s.bytes]),
      [[undefined, 0]],
    );
    run.unlink();
    run.sendHeartbeat();
    await run.chain;
    assert.equal(sent.length, 1);
  });

  it("can no longer resume once its buffer overflowed", async () => {
    const { run, record } = setUp({ limits: { resumeBufferSeconds: 0.5 } });
    assert.equal(run.canResume, true);
    await record(10);
    await record(10); // given at once: 250 ms of media kept, within
    assert.equal(run.canResume, true);
    run.unlink();
    // the recorder keeps going while the connection is down: a chunk 300 ms later makes
    // more than 0.5 s kept (chunks are stamped when the recorder gives them)
    await new Promise((resolve) => setTimeout(resolve, 300));
    await record(10);
    assert.equal(run.buffer.overflowed, true);
    assert.equal(run.canResume, false);
  });

  it("stops through stopping, unlinked or not, and ends for good", async () => {
    const { run, recorder, sent, record } = setUp();
    run.unlink();
    run.beginStop();
    assert.equal(run.state, "stopping-unlinked");
    assert.equal(run.stopping, true);
    assert.equal(run.linked, false);
    run.relink(); // resumed to end it properly
    assert.equal(run.state, "stopping");
    assert.equal(run.linked, true);
    run.unlink();
    assert.equal(run.state, "stopping-unlinked");
    run.drop();
    assert.equal(run.state, "ended");
    assert.equal(recorder.state, "inactive");
    // an ended run stays ended, counts as stopping (its recorder's stop is no news), sends
    // nothing, and may be ended again
    run.unlink();
    run.relink();
    run.beginStop();
    run.end();
    assert.equal(run.state, "ended");
    assert.equal(run.stopping, true);
    await record(10);
    run.sendHeartbeat();
    await run.chain;
    assert.equal(sent.length, 0);
    assert.equal(run.canResume, false);
  });

  it("a streaming run is neither stopping nor ended", () => {
    const { run } = setUp();
    assert.equal(run.state, "linked");
    assert.equal(run.stopping, false);
    assert.equal(run.ended, false);
    assert.equal(run.linked, true);
  });
});
