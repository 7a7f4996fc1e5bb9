/**
 * What the capture AudioWorklet (capture-audio-worklet.ts) and the page agree on: the
 * processor's name, its options and the blocks it posts. Kept apart from both so that the
 * page's bundle does not take in the worklet's code (it runs only in an AudioWorkletGlobalScope)
 * and the worklet's bundle does not take in the page's.
 */

/** The name the worklet registers its processor under. */
export const CAPTURE_PROCESSOR = "desktop-relay-capture";

/** Where the relay serves the worklet module (esbuild writes it beside the page). */
export const CAPTURE_WORKLET_PATH = "/static/capture-audio-worklet.js";

/** The AudioWorkletNode's `processorOptions`. */
export interface CaptureProcessorOptions {
  /** Planes per block: the node mixes its input to this many channels. */
  channels: number;
  /** Frames per block. */
  blockFrames: number;
}

/** One block of PCM, as the page receives it. */
export interface CaptureBlock {
  /** The AudioContext frame (sample index) of its first frame. */
  frame: number;
  /** `channels` planes of `blockFrames` samples, one after the other (f32-planar). */
  data: Float32Array<ArrayBuffer>;
}
