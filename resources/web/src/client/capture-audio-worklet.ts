/**
 * The AudioWorklet module of the video-element capture (element-capture.ts): it copies the
 * microphone's PCM, as a MediaStreamAudioSourceNode feeds it, into blocks of
 * `processorOptions.blockFrames` frames (10 ms) and posts each to the page as one planar
 * Float32Array (channel after channel) with the AudioContext frame it starts at, which the
 * page turns into AudioData for the AudioEncoder. Built on its own
 * (`capture-audio-worklet.js`) and loaded from the relay's origin: the page's CSP allows
 * scripts from 'self' only, so no blob: module.
 *
 * Blocks rather than render quanta: 128 frames are 375 messages a second at 48 kHz, each a
 * task on the page's main thread.
 */
import { CAPTURE_PROCESSOR, type CaptureBlock, type CaptureProcessorOptions } from "./audio-block";

// The AudioWorkletGlobalScope, which TypeScript's DOM library does not describe.
declare const currentFrame: number;
declare function registerProcessor(name: string, processor: unknown): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}

class CaptureProcessor extends AudioWorkletProcessor {
  private readonly channels: number;
  private readonly blockFrames: number;
  private block: Float32Array<ArrayBuffer>;
  private filled = 0;
  private blockStart = 0;
  private running = true;

  constructor(options: { processorOptions: CaptureProcessorOptions }) {
    super();
    this.channels = Math.max(1, options.processorOptions.channels);
    this.blockFrames = Math.max(128, options.processorOptions.blockFrames);
    this.block = new Float32Array(this.channels * this.blockFrames);
    // Any message is the page's stop: returning false lets the node be collected.
    this.port.onmessage = () => {
      this.running = false;
    };
  }

  process(inputs: Float32Array[][]): boolean {
    if (!this.running) return false;
    // No channels while the source is not (yet) active: its frames are silence, and time
    // goes on all the same, so that the timeline keeps its length.
    const input = inputs[0] ?? [];
    const length = input[0]?.length ?? 128;
    let done = 0;
    while (done < length) {
      if (this.filled === 0) this.blockStart = currentFrame + done;
      const count = Math.min(length - done, this.blockFrames - this.filled);
      for (let channel = 0; channel < this.channels; channel += 1) {
        // The node mixes to `channels` (channelCountMode "explicit"); the fallback is a
        // mono input read into every plane.
        const samples = input[channel] ?? input[0];
        if (samples) this.block.set(samples.subarray(done, done + count), channel * this.blockFrames + this.filled);
      }
      this.filled += count;
      done += count;
      if (this.filled === this.blockFrames) {
        const message: CaptureBlock = { frame: this.blockStart, data: this.block };
        this.port.postMessage(message, [this.block.buffer]);
        // The posted buffer is gone (transferred): a new, zeroed one.
        this.block = new Float32Array(this.channels * this.blockFrames);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor(CAPTURE_PROCESSOR, CaptureProcessor);
