import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  bufferLimits,
  DEFAULT_RESUME_BUFFER_BYTES,
  DEFAULT_RESUME_BUFFER_SECONDS,
  type HeldChunk,
  ResumeBuffer,
} from "../src/client/resume-buffer";

const MiB = 1024 * 1024;
const DEFAULTS = bufferLimits({});
const ROOMY = { maxBytes: Number.MAX_SAFE_INTEGER, maxMs: Number.MAX_SAFE_INTEGER };

/** Number and hold `count` chunks of `size` bytes, one every `everyMs` from `start`. */
function fill(buffer: ResumeBuffer, count: number, size = 10, everyMs = buffer.chunkMs, start = 1_000_000): HeldChunk[] {
  const chunks: HeldChunk[] = [];
  for (let i = 0; i < count; i += 1) {
    const chunk = buffer.number(new ArrayBuffer(size), start + i * everyMs);
    buffer.hold(chunk, ROOMY);
    chunks.push(chunk);
  }
  return chunks;
}

describe("bufferLimits", () => {
  it("defaults to 60 s of media and 64 MiB", () => {
    assert.equal(DEFAULT_RESUME_BUFFER_SECONDS, 60);
    assert.equal(DEFAULT_RESUME_BUFFER_BYTES, 64 * MiB);
    assert.deepEqual(DEFAULTS, { maxBytes: 64 * MiB, maxMs: 60_000 });
  });

  it("takes the client's options", () => {
    assert.deepEqual(bufferLimits({ resumeBufferSeconds: 1, resumeBufferBytes: 500 }), { maxBytes: 500, maxMs: 1000 });
  });
});

describe("ResumeBuffer", () => {
  it("numbers chunks from 0, one after the other", () => {
    const buffer = new ResumeBuffer(250);
    const chunks = fill(buffer, 5);
    assert.deepEqual(
      chunks.map((c) => c.seq),
      [0, 1, 2, 3, 4],
    );
    assert.equal(buffer.nextSeq, 5);
  });

  it("holds chunks with their bytes and media time", () => {
    const buffer = new ResumeBuffer(250);
    assert.equal(buffer.seconds, 0);
    fill(buffer, 4, 100);
    assert.equal(buffer.length, 4);
    assert.equal(buffer.bytes, 400);
    assert.deepEqual(buffer.seqs, [0, 1, 2, 3]);
    // from the first chunk's start to the last one's end: 3 intervals + one chunk
    assert.equal(buffer.seconds, 1);
    assert.equal(buffer.overflowed, false);
  });

  it("releases every chunk up to the acknowledged one", () => {
    const buffer = new ResumeBuffer(250);
    fill(buffer, 6, 100);
    buffer.acknowledge(2);
    assert.deepEqual(buffer.seqs, [3, 4, 5]);
    assert.equal(buffer.bytes, 300);
    assert.equal(buffer.seconds, 0.75);
    buffer.acknowledge(5);
    assert.equal(buffer.length, 0);
    assert.equal(buffer.bytes, 0);
    assert.equal(buffer.seconds, 0);
  });

  it("ignores duplicate and late acknowledgements", () => {
    const buffer = new ResumeBuffer(250);
    fill(buffer, 6, 100);
    buffer.acknowledge(3);
    buffer.acknowledge(3); // duplicate (a chunk resent after a resume)
    buffer.acknowledge(1); // older than one already acknowledged
    buffer.acknowledge(-1);
    assert.deepEqual(buffer.seqs, [4, 5]);
    assert.equal(buffer.bytes, 200);
    // an ack past the newest chunk releases all, and later chunks are held again
    buffer.acknowledge(99);
    assert.equal(buffer.length, 0);
    fill(buffer, 1, 100);
    assert.deepEqual(buffer.seqs, [6]);
  });

  it("acknowledging one chunk out of order releases those before it too", () => {
    const buffer = new ResumeBuffer(250);
    fill(buffer, 5);
    buffer.acknowledge(3); // the ack of 3 arrived before those of 0..2
    assert.deepEqual(buffer.seqs, [4]);
    buffer.acknowledge(0);
    buffer.acknowledge(2);
    assert.deepEqual(buffer.seqs, [4]);
  });

  it("resends everything after the relay's lastSeq, in order", () => {
    const buffer = new ResumeBuffer(250);
    const chunks = fill(buffer, 8);
    buffer.acknowledge(1);
    const resend = buffer.resendFrom(4);
    assert.deepEqual(
      resend.map((c) => c.seq),
      [5, 6, 7],
    );
    assert.equal(resend[0], chunks[5], "the same chunk, with its bytes");
    // what the relay has is released
    assert.deepEqual(buffer.seqs, [5, 6, 7]);
  });

  it("resends everything it holds when the relay has nothing yet (lastSeq null)", () => {
    const buffer = new ResumeBuffer(250);
    fill(buffer, 4);
    assert.deepEqual(
      buffer.resendFrom(null).map((c) => c.seq),
      [0, 1, 2, 3],
    );
    assert.equal(buffer.length, 4);
  });

  it("resends nothing when the relay has it all, and all when its lastSeq is older", () => {
    const buffer = new ResumeBuffer(250);
    fill(buffer, 4);
    buffer.acknowledge(1);
    assert.deepEqual(
      buffer.resendFrom(0).map((c) => c.seq),
      [2, 3],
    );
    assert.deepEqual(buffer.resendFrom(3), []);
    assert.equal(buffer.length, 0);
  });

  it("gives a copy to resend: acks during the resend do not skip chunks", () => {
    const buffer = new ResumeBuffer(250);
    fill(buffer, 4);
    const resend = buffer.resendFrom(null);
    buffer.acknowledge(1);
    assert.equal(resend.length, 4);
    assert.deepEqual(buffer.seqs, [2, 3]);
  });

  it("overflows past 60 s of media by default, and keeps nothing after", () => {
    const buffer = new ResumeBuffer(250);
    const start = 1_000_000;
    // 240 chunks of 250 ms span exactly 60 s: still within the bound
    for (let i = 0; i < 240; i += 1) {
      assert.equal(buffer.hold(buffer.number(new ArrayBuffer(10), start + i * 250), DEFAULTS), true, `chunk ${i}`);
    }
    assert.equal(buffer.overflowed, false);
    assert.equal(buffer.seconds, 60);
    // the 241st makes 60.25 s
    assert.equal(buffer.hold(buffer.number(new ArrayBuffer(10), start + 240 * 250), DEFAULTS), false);
    assert.equal(buffer.overflowed, true);
    assert.equal(buffer.length, 0);
    assert.equal(buffer.bytes, 0);
    assert.equal(buffer.seconds, 0);
    // from then on nothing is kept, though chunks are still numbered (they still go out)
    const later = buffer.number(new ArrayBuffer(10), start + 241 * 250);
    assert.equal(later.seq, 241);
    assert.equal(buffer.hold(later, DEFAULTS), false);
    assert.equal(buffer.length, 0);
    assert.deepEqual(buffer.resendFrom(null), []);
  });

  it("counts the time kept from the oldest chunk not yet acknowledged", () => {
    const buffer = new ResumeBuffer(250);
    // two minutes of media, each chunk acknowledged a second later: never over 60 s kept
    for (let i = 0; i < 480; i += 1) {
      buffer.hold(buffer.number(new ArrayBuffer(10), i * 250), DEFAULTS);
      if (i >= 4) buffer.acknowledge(i - 4);
    }
    assert.equal(buffer.overflowed, false);
    assert.equal(buffer.length, 4);
  });

  it("overflows past 64 MiB by default", () => {
    const buffer = new ResumeBuffer(30);
    const MiBChunk = new ArrayBuffer(MiB);
    // all at one moment: only the bytes count
    for (let i = 0; i < 64; i += 1) assert.equal(buffer.hold(buffer.number(MiBChunk, 5000), DEFAULTS), true);
    assert.equal(buffer.bytes, 64 * MiB);
    assert.equal(buffer.overflowed, false);
    assert.equal(buffer.hold(buffer.number(new ArrayBuffer(1), 5000), DEFAULTS), false);
    assert.equal(buffer.overflowed, true);
    assert.equal(buffer.bytes, 0);
    assert.equal(buffer.length, 0);
  });

  it("reads its limits per chunk (options changed while streaming)", () => {
    const buffer = new ResumeBuffer(250);
    for (let i = 0; i < 8; i += 1) buffer.hold(buffer.number(new ArrayBuffer(10), i * 250), DEFAULTS);
    assert.equal(buffer.overflowed, false);
    // resumeBufferSeconds set to 1 meanwhile: 2.25 s kept is past it
    assert.equal(buffer.hold(buffer.number(new ArrayBuffer(10), 8 * 250), bufferLimits({ resumeBufferSeconds: 1 })), false);
    assert.equal(buffer.overflowed, true);
  });

  it("forgets what it holds on clear, without overflowing", () => {
    const buffer = new ResumeBuffer(250);
    fill(buffer, 3, 100);
    buffer.clear();
    assert.equal(buffer.length, 0);
    assert.equal(buffer.bytes, 0);
    assert.equal(buffer.overflowed, false);
    assert.equal(buffer.nextSeq, 3);
  });
});
