/**
 * Whether media really flows, decided from counts (pure, so that the unit tests check every
 * case): the capture trial before a WebCodecs start (do video frames and audio blocks arrive
 * on the page, not only do the objects exist?), and the no-media watchdog after going live
 * (did anything enter the encoders, did the recorder produce anything?).
 */

/** What failed, for the person: each has its own words on the page (messages.ts). */
export type MediaCause =
  | "audio-start" // the microphone's sound did not start on the page (AudioContext, worklet)
  | "audio" // the audio track gave no sound, or its encoder failed
  | "video" // the camera gave no frames
  | "video-encoder" // the browser's video encoder (or the muxer) failed
  | "recorder" // MediaRecorder failed or produced nothing
  | "unsupported"; // WebCodecs is missing here, or takes no H.264 / Opus / AAC for this stream

/** A capture that cannot be used, and why (`detail` for the console and `message`). */
export interface CaptureFailure {
  cause: MediaCause;
  detail: string;
}

// ---- the capture trial ------------------------------------------------------------------

/** What a trial found so far: samples that arrived on the page since it began. */
export interface TrialProgress {
  elapsedMs: number;
  videoFrames: number;
  /** Whether the stream has audio to record (false: video only, no audio to wait for). */
  withAudio: boolean;
  audioBlocks: number;
  /** Whether the audio's start is done (the AudioContext runs, its module loaded). */
  audioStarted: boolean;
  /** Something that failed outright (a module that did not load, a frame not copyable). */
  failure?: CaptureFailure;
}

/** How long `auto` waits for video frames and audio blocks before it records with
 * MediaRecorder instead: the page must be live within 2 s of Start whatever path works. An
 * audio start still pending then is slow (Firefox without a sound server takes 3 s, then
 * renders nothing): `auto` does not wait for it. */
export const TRIAL_DECIDE_MS = 1000;
/** Under `auto`, the longest wait when the audio has started and samples are only late (a
 * busy machine): still within the 2 s. */
export const TRIAL_GRACE_MS = 1600;
/** With `capture: "webcodecs"` there is nothing else to record with: wait longer. */
export const TRIAL_FORCED_MS = 3000;

export type TrialVerdict = { kind: "wait" } | { kind: "ready" } | ({ kind: "fail" } & CaptureFailure);

/** The trial's verdict now: `ready` once a video frame and (with audio) an audio block have
 * arrived, `fail` with the cause once the time is up (or something failed), else `wait`. */
export function trialVerdict(progress: TrialProgress, forced: boolean): TrialVerdict {
  if (progress.failure) return { kind: "fail", ...progress.failure };
  const videoOk = progress.videoFrames > 0;
  const audioOk = !progress.withAudio || progress.audioBlocks > 0;
  if (videoOk && audioOk) return { kind: "ready" };
  const elapsed = progress.elapsedMs;
  if (forced) {
    if (elapsed < TRIAL_FORCED_MS) return { kind: "wait" };
  } else if (elapsed < TRIAL_DECIDE_MS) {
    return { kind: "wait" };
  } else if (elapsed < TRIAL_GRACE_MS && (audioOk || progress.audioStarted)) {
    // Only samples are late, nothing is stuck starting: a little longer.
    return { kind: "wait" };
  }
  const seconds = `${(elapsed / 1000).toFixed(1)} s`;
  if (!audioOk) {
    return progress.audioStarted
      ? { kind: "fail", cause: "audio", detail: `the microphone gave no sound within ${seconds}` }
      : { kind: "fail", cause: "audio-start", detail: `the browser's audio did not start within ${seconds}` };
  }
  return { kind: "fail", cause: "video", detail: `the camera gave no frames within ${seconds}` };
}

// ---- the no-media watchdog --------------------------------------------------------------

/** How long after going live (recording time: pauses do not count) the page must have
 * recorded something. */
export const NO_MEDIA_MS = 5000;
/** Fewer bytes than this from the recorder in that time is no media: a stream header (43 B
 * from mediabunny, a few hundred from MediaRecorder) with nothing after it. */
export const NO_MEDIA_BYTES = 1024;

/** What a live recorder has done so far. */
export interface MediaProgress {
  /** Bytes the recorder produced (chunks, sent or waiting). */
  bytes: number;
  /** With WebCodecs: video frames and audio blocks that entered the encoders (undefined
   * with MediaRecorder, which does not say). */
  videoFrames?: number;
  audioBlocks?: number;
  /** Whether an audio track is being recorded. */
  withAudio: boolean;
}

/** The no-media verdict once NO_MEDIA_MS of recording time have passed: the cause, or
 * undefined when media flows. Frames and blocks that did not reach the encoders name the
 * track; otherwise too few bytes blame the recorder. */
export function noMediaVerdict(progress: MediaProgress): CaptureFailure | undefined {
  const { videoFrames, audioBlocks } = progress;
  if (videoFrames !== undefined && videoFrames === 0) {
    return { cause: "video", detail: "no video frames reached the encoder" };
  }
  if (progress.withAudio && audioBlocks !== undefined && audioBlocks === 0) {
    // The muxer interleaves the tracks: without audio it holds the video back too.
    return { cause: "audio", detail: "no audio reached the encoder" };
  }
  if (progress.bytes < NO_MEDIA_BYTES) {
    return videoFrames === undefined
      ? { cause: "recorder", detail: `the browser's recorder produced ${progress.bytes} B` }
      : { cause: "video-encoder", detail: `the encoders produced ${progress.bytes} B` };
  }
  return undefined;
}
