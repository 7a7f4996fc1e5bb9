import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Timeline } from "../src/client/timeline";

const close = (actual: number | undefined, expected: number): void => {
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-9, `${actual} != ${expected}`);
};

describe("the WebCodecs timeline", () => {
  it("places each track by its first sample, then by its own clock", () => {
    const timeline = new Timeline();
    // Video's clock reads 1000 s, audio's 5 s: the first sample of each lands when it is read.
    const v0 = timeline.place(1000, undefined, 50);
    close(v0?.timestamp, 0);
    const a0 = timeline.place(5, undefined, 50.01);
    close(a0?.timestamp, 0.01);
    close(timeline.place(1000.5, v0?.offset, 50.6)?.timestamp, 0.5);
    // Read late (a busy page): still where its clock says.
    close(timeline.place(5.5, a0?.offset, 53)?.timestamp, 0.51);
  });

  it("leaves pauses out, and drops what was captured during one", () => {
    const timeline = new Timeline();
    const first = timeline.place(10, undefined, 100);
    const offset = first?.offset;
    timeline.pause(101);
    timeline.resume(104);
    // Captured during the pause (timeline 1..4 s): dropped.
    assert.equal(timeline.place(12, offset, 104), undefined);
    // After it: 3 s earlier than its clock says.
    close(timeline.place(14.5, offset, 104.6)?.timestamp, 1.5);
    // A second pause adds up.
    timeline.pause(105);
    timeline.resume(107);
    close(timeline.place(17.5, offset, 107.6)?.timestamp, 2.5);
  });

  it("gives a track first read after a pause the time it is read at, without the pause", () => {
    const timeline = new Timeline();
    timeline.place(0, undefined, 10);
    timeline.pause(11);
    timeline.resume(13);
    close(timeline.place(42, undefined, 13.5)?.timestamp, 1.5);
  });
});
