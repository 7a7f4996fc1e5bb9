import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { AudioSampleClock } from "../src/client/audio-packets";

describe("the processor path's audio packet clock", () => {
  it("places packets from the first block's place, by the samples before them", () => {
    const clock = new AudioSampleClock(48000);
    assert.equal(clock.input(0.25, 480), 0);
    assert.equal(clock.input(0.26, 480), 0);
    assert.equal(clock.packet(960), 0.25);
    assert.equal(clock.packet(960), 0.27);
    assert.equal(clock.packet(960), 0.29);
  });

  it("does not move with blocks that come a little early or late (jitter under 64 samples)", () => {
    const clock = new AudioSampleClock(48000);
    clock.input(1, 480);
    assert.equal(clock.input(1.0101, 480), 0); // 48 samples late
    assert.equal(clock.input(1.0199, 480), 0); // early
    assert.equal(clock.packet(960), 1);
    assert.equal(clock.packet(960), 1.02);
  });

  it("fills a gap (blocks a busy page lost) with silence, so that packets stay in time", () => {
    const clock = new AudioSampleClock(48000);
    clock.input(0, 480);
    // The next three blocks were lost: 30 ms of silence before the fifth.
    assert.equal(clock.input(0.04, 480), 1440);
    // 480 + 1440 + 480 samples encoded: the packet after 2 x 960 begins at 40 ms.
    clock.packet(960);
    clock.packet(960);
    assert.equal(clock.packet(960), 0.04);
  });

  it("keeps the timeline's time across a pause (the timeline already left it out)", () => {
    const clock = new AudioSampleClock(48000);
    clock.input(0, 480);
    clock.input(0.01, 480);
    // Resumed: the timeline places the next block right after the last one.
    assert.equal(clock.input(0.02, 480), 0);
    clock.packet(960);
    assert.equal(clock.packet(960), 0.02);
  });
});
