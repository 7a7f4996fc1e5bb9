/** The client's options: the original's defaults, ours, and which may change between streams. */
import type { BrowserToRtmpClientOptions } from "./types";

// The original client's defaults.
export const DEFAULT_OPTIONS = {
  port: 8086,
  audioBitsPerSecond: 128000,
  videoBitsPerSecond: 2500000,
  framerate: 25,
};
export const DEFAULT_TIMESLICE_MS = 250;
export const DEFAULT_KEYFRAME_INTERVAL_MS = 2000;
export const DEFAULT_ACK_TIMEOUT_MS = 20000;
// How long stop() waits for a dropped connection to come back, to end the session properly.
export const DEFAULT_STOP_RECONNECT_TIMEOUT_MS = 10000;

/** Options that setOptions() may change between streams (not the connection's). */
export type SessionOption =
  | "framerate"
  | "audioSampleRate"
  | "audioBitsPerSecond"
  | "videoBitsPerSecond"
  | "rtmp"
  | "name"
  | "mimeType"
  | "capture"
  | "timeslice"
  | "keyFrameIntervalMs"
  | "resumeBufferSeconds"
  | "resumeBufferBytes"
  | "stopReconnectTimeoutMs";

export type Options = BrowserToRtmpClientOptions & typeof DEFAULT_OPTIONS & { audioSampleRate: number };

/** The options in force: the given ones over the original's defaults. */
export function withDefaults(options: BrowserToRtmpClientOptions): Options {
  const merged = { ...DEFAULT_OPTIONS, ...options };
  return {
    ...merged,
    // The original's default; the relay rounds it to a rate AAC supports.
    audioSampleRate: options.audioSampleRate || Math.round(merged.audioBitsPerSecond / 4),
  };
}
