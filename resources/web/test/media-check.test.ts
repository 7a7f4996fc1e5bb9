import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  NO_MEDIA_BYTES,
  noMediaVerdict,
  TRIAL_DECIDE_MS,
  TRIAL_FORCED_MS,
  TRIAL_GRACE_MS,
  type TrialProgress,
  trialVerdict,
} from "../src/client/media-check";

function progress(over: Partial<TrialProgress>): TrialProgress {
  return { elapsedMs: 0, videoFrames: 0, withAudio: true, audioBlocks: 0, audioStarted: false, ...over };
}

describe("the capture trial", () => {
  it("is ready once a video frame and an audio block arrived, whenever that is", () => {
    assert.deepEqual(trialVerdict(progress({ elapsedMs: 120, videoFrames: 1, audioBlocks: 1 }), false), { kind: "ready" });
    assert.deepEqual(trialVerdict(progress({ elapsedMs: 2900, videoFrames: 3, audioBlocks: 9 }), true), { kind: "ready" });
  });

  it("needs no audio block for a stream without audio", () => {
    const p = progress({ elapsedMs: 50, videoFrames: 1, withAudio: false });
    assert.deepEqual(trialVerdict(p, false), { kind: "ready" });
  });

  it("waits up to the decision time for what is missing", () => {
    for (const elapsedMs of [0, 500, TRIAL_DECIDE_MS - 1]) {
      assert.equal(trialVerdict(progress({ elapsedMs, videoFrames: 4 }), false).kind, "wait");
      assert.equal(trialVerdict(progress({ elapsedMs, audioBlocks: 4, audioStarted: true }), false).kind, "wait");
    }
  });

  it("does not wait on an audio start still pending at the decision time (slow audio)", () => {
    // Firefox without a sound server: AudioContext.resume() takes 3 s, then no sound.
    const verdict = trialVerdict(progress({ elapsedMs: TRIAL_DECIDE_MS, videoFrames: 20 }), false);
    assert.equal(verdict.kind, "fail");
    assert.equal(verdict.kind === "fail" && verdict.cause, "audio-start");
    assert.match(verdict.kind === "fail" ? verdict.detail : "", /audio did not start within 1\.0 s/);
  });

  it("gives samples that are only late (the audio started) a little longer, then blames the microphone", () => {
    const started = { videoFrames: 20, audioStarted: true };
    assert.equal(trialVerdict(progress({ ...started, elapsedMs: TRIAL_DECIDE_MS }), false).kind, "wait");
    const verdict = trialVerdict(progress({ ...started, elapsedMs: TRIAL_GRACE_MS }), false);
    assert.deepEqual(verdict.kind === "fail" && verdict.cause, "audio");
    // Within the 2 s the page must be live in.
    assert.ok(TRIAL_GRACE_MS < 2000);
  });

  it("blames the camera when no frame came", () => {
    const verdict = trialVerdict(progress({ elapsedMs: TRIAL_GRACE_MS, audioBlocks: 100, audioStarted: true }), false);
    assert.equal(verdict.kind === "fail" && verdict.cause, "video");
    // Nothing at all: the audio start is named first (it is what is stuck).
    const nothing = trialVerdict(progress({ elapsedMs: TRIAL_GRACE_MS }), false);
    assert.equal(nothing.kind === "fail" && nothing.cause, "audio-start");
  });

  it("waits longer when WebCodecs was asked for, then names the cause", () => {
    assert.equal(trialVerdict(progress({ elapsedMs: TRIAL_FORCED_MS - 1, videoFrames: 5 }), true).kind, "wait");
    const verdict = trialVerdict(progress({ elapsedMs: TRIAL_FORCED_MS, videoFrames: 5 }), true);
    assert.equal(verdict.kind === "fail" && verdict.cause, "audio-start");
  });

  it("fails at once on a failure, with its cause", () => {
    const failure = { cause: "audio-start" as const, detail: "the module did not load" };
    assert.deepEqual(trialVerdict(progress({ elapsedMs: 10, videoFrames: 1, failure }), false), { kind: "fail", ...failure });
  });
});

describe("the no-media watchdog", () => {
  it("finds nothing wrong when frames, blocks and bytes flowed", () => {
    assert.equal(noMediaVerdict({ bytes: 500_000, videoFrames: 100, audioBlocks: 500, withAudio: true }), undefined);
    assert.equal(noMediaVerdict({ bytes: 500_000, withAudio: true }), undefined);
    assert.equal(noMediaVerdict({ bytes: 500_000, videoFrames: 100, audioBlocks: 0, withAudio: false }), undefined);
  });

  it("names the track whose samples never reached the encoder", () => {
    assert.equal(noMediaVerdict({ bytes: 43, videoFrames: 0, audioBlocks: 300, withAudio: true })?.cause, "video");
    // Firefox: the AudioContext runs but delivers nothing; the muxer holds the video back.
    assert.equal(noMediaVerdict({ bytes: 43, videoFrames: 120, audioBlocks: 0, withAudio: true })?.cause, "audio");
  });

  it("blames the recorder for a MediaRecorder that produced (next to) nothing", () => {
    // WebKitGTK on Debian 12: MediaRecorder gives no video data, the page said "Live" with 0 B.
    assert.equal(noMediaVerdict({ bytes: 0, withAudio: true })?.cause, "recorder");
    assert.equal(noMediaVerdict({ bytes: NO_MEDIA_BYTES - 1, withAudio: false })?.cause, "recorder");
    assert.equal(noMediaVerdict({ bytes: NO_MEDIA_BYTES, withAudio: false }), undefined);
  });

  it("blames the encoders when samples went in and no bytes came out", () => {
    assert.equal(noMediaVerdict({ bytes: 43, videoFrames: 100, audioBlocks: 500, withAudio: true })?.cause, "video-encoder");
  });
});
