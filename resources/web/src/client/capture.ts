/** Capture choice: which recorder makes the next session's stream (WebCodecs, reading the
 * tracks with a MediaStreamTrackProcessor or a video element, or MediaRecorder), and the
 * recorder helpers the client needs. */
import { clientError } from "./errors";
import { chooseMimeType } from "./mime";
import { DEFAULT_KEYFRAME_INTERVAL_MS, type Options } from "./options";
import type { CaptureFailure, MediaCause } from "./media-check";
import type { CaptureMethod, CaptureOption, ServerError } from "./types";
import { planWebCodecs, type Recorder, type WebCodecsPlan, WebCodecsRecorder } from "./webcodecs";

/** Whether a track captures a screen, window or tab (getDisplayMedia) rather than a camera. */
export function isScreenTrack(track: MediaStreamTrack): boolean {
  return (track.getSettings() as { displaySurface?: string }).displaySurface !== undefined;
}

/** The `capture` option in force: an explicit `mimeType` asks for MediaRecorder. */
export function captureOption(options: Pick<Options, "capture" | "mimeType">): CaptureOption {
  const capture = options.capture ?? "auto";
  const mimeType = options.mimeType;
  const typeAsked = mimeType !== undefined && mimeType.length > 0;
  return capture === "auto" && typeAsked ? "mediarecorder" : capture;
}

/** The recorder for the next session, and why WebCodecs was not used where `auto` would
 * have used it. */
export interface CaptureChoice {
  recorder: Recorder;
  mimeType: string;
  /** Why `auto` records with MediaRecorder though the stream is a camera's. */
  webCodecsSkipped?: CaptureFailure;
}

/** The recorder for the next session: WebCodecs where the `capture` option allows it and
 * the browser can (its trial found frames and audio arriving: media-check.ts), else
 * MediaRecorder with the best type it records. `avoid` is the way that failed on this page
 * under `auto` (WebCodecs failed mid-stream, or a way recorded nothing): the other one is
 * used, where it can be. */
export async function createRecorder(
  stream: MediaStream,
  options: Options,
  audioWorkletUrl: string | undefined,
  avoid: CaptureMethod | undefined,
): Promise<CaptureChoice> {
  const capture = captureOption(options);
  const settings = {
    audioBitsPerSecond: options.audioBitsPerSecond,
    videoBitsPerSecond: options.videoBitsPerSecond,
    keyFrameIntervalMs: options.keyFrameIntervalMs ?? DEFAULT_KEYFRAME_INTERVAL_MS,
    audioWorkletUrl,
    forced: capture === "webcodecs",
  };
  // `auto` leaves screens to MediaRecorder: a still screen gives no frames, and the muxer
  // then holds the sound back until the next one (MediaRecorder sends it on).
  const screen = stream.getVideoTracks().some(isScreenTrack);
  const auto = capture === "auto";
  const tryWebCodecs =
    capture === "webcodecs" || (auto && avoid !== "webcodecs" && (!screen || avoid === "mediarecorder"));
  let webCodecsSkipped: CaptureFailure | undefined;
  if (tryWebCodecs) {
    const plan = await planWebCodecs(stream, settings);
    if (!isFailure(plan)) {
      return { recorder: new WebCodecsRecorder(stream, plan, settings), mimeType: plan.mimeType };
    }
    if (capture === "webcodecs") {
      throw captureError("CANT_START_RECORDER", `This browser cannot capture with WebCodecs here: ${plan.detail}`, plan.cause);
    }
    webCodecsSkipped = plan;
    console.info(`WebCodecs capture not used (${plan.detail}): recording with MediaRecorder`);
  }
  const mimeType = chooseMimeType(stream, options.mimeType);
  const recorderOptions: MediaRecorderOptions & { videoKeyFrameIntervalDuration?: number } = {
    audioBitsPerSecond: settings.audioBitsPerSecond,
    videoBitsPerSecond: settings.videoBitsPerSecond,
    // Chromium keyframes every ~5 s otherwise; viewers join and the relay resyncs on them.
    videoKeyFrameIntervalDuration: settings.keyFrameIntervalMs,
  };
  if (mimeType) recorderOptions.mimeType = mimeType;
  let recorder: MediaRecorder;
  try {
    recorder = new MediaRecorder(stream, recorderOptions);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const name = err instanceof DOMException && err.name === "NotSupportedError" ? "RECORDER_NOT_SUPPORTED" : "CANT_START_RECORDER";
    throw captureError(name, `The browser's recorder (MediaRecorder) could not start: ${message}`, "recorder");
  }
  return { recorder, mimeType, webCodecsSkipped };
}

function isFailure(plan: WebCodecsPlan | CaptureFailure): plan is CaptureFailure {
  return "cause" in plan;
}

/** A client error about capture, with what failed (`cause`, which the page words). */
export function captureError(name: string, message: string, cause: MediaCause): ServerError {
  return { ...clientError(name, message), cause };
}

/** Stop a recorder; resolves after its last `dataavailable` (which fires before `stop`). */
export function stopRecorder(recorder: Recorder): Promise<void> {
  if (recorder.state === "inactive") return Promise.resolve();
  return new Promise((resolve) => {
    recorder.addEventListener("stop", () => resolve(), { once: true });
    try {
      recorder.stop();
    } catch {
      resolve();
    }
  });
}
