/** Capture choice: which recorder makes the next session's stream (WebCodecs, reading the
 * tracks with a MediaStreamTrackProcessor or a video element, or MediaRecorder), and the
 * recorder helpers the client needs. */
import { clientError } from "./errors";
import { chooseMimeType } from "./mime";
import { DEFAULT_KEYFRAME_INTERVAL_MS, type Options } from "./options";
import type { CaptureOption } from "./types";
import { planWebCodecs, type Recorder, WebCodecsRecorder } from "./webcodecs";

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

/** The recorder for the next session: WebCodecs where the `capture` option allows it and
 * the browser can (and, with `auto`, WebCodecs has not failed on this page: `webCodecsFailed`),
 * else MediaRecorder with the best type it records. */
export async function createRecorder(
  stream: MediaStream,
  options: Options,
  audioWorkletUrl: string | undefined,
  webCodecsFailed: string | undefined,
): Promise<{ recorder: Recorder; mimeType: string }> {
  const capture = captureOption(options);
  const settings = {
    audioBitsPerSecond: options.audioBitsPerSecond,
    videoBitsPerSecond: options.videoBitsPerSecond,
    keyFrameIntervalMs: options.keyFrameIntervalMs ?? DEFAULT_KEYFRAME_INTERVAL_MS,
    audioWorkletUrl,
  };
  // `auto` leaves screens to MediaRecorder: a still screen gives no frames, and the muxer
  // then holds the sound back until the next one (MediaRecorder sends it on).
  const screen = stream.getVideoTracks().some(isScreenTrack);
  const tryWebCodecs = capture === "webcodecs" || (capture === "auto" && !screen && !webCodecsFailed);
  if (tryWebCodecs) {
    const plan = await planWebCodecs(stream, settings);
    if (typeof plan !== "string") {
      return { recorder: new WebCodecsRecorder(stream, plan, settings), mimeType: plan.mimeType };
    }
    if (capture === "webcodecs") {
      throw clientError("CANT_START_RECORDER", `This browser cannot capture with WebCodecs here: ${plan}`);
    }
  }
  const mimeType = chooseMimeType(stream, options.mimeType);
  const recorderOptions: MediaRecorderOptions & { videoKeyFrameIntervalDuration?: number } = {
    audioBitsPerSecond: settings.audioBitsPerSecond,
    videoBitsPerSecond: settings.videoBitsPerSecond,
    // Chromium keyframes every ~5 s otherwise; viewers join and the relay resyncs on them.
    videoKeyFrameIntervalDuration: settings.keyFrameIntervalMs,
  };
  if (mimeType) recorderOptions.mimeType = mimeType;
  return { recorder: new MediaRecorder(stream, recorderOptions), mimeType };
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
