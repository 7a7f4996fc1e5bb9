/**
 * Reading a camera's frames and a microphone's PCM on the page without
 * MediaStreamTrackProcessor (Safari 26+ and Firefox have WebCodecs but no processor on the
 * page): the video track plays in a hidden, muted `<video>` element and each frame it presents
 * is copied into a VideoFrame (`requestVideoFrameCallback`), and the audio track feeds an
 * AudioWorklet (capture-audio-worklet.ts, served by the relay) through a
 * MediaStreamAudioSourceNode, whose PCM blocks are queued as they are (PcmBlock): the recorder
 * makes each into an AudioSample with its final timestamp, so that mediabunny never has to
 * rebuild an AudioData through AudioData.copyTo (which crashes WebKitGTK's web process, and
 * whose safety in Safari nobody here can check). Both land in bounded SampleQueues that the
 * recorder reads as it reads a processor's stream.
 *
 * A capture starts holding (a trial: samples are counted as they arrive, never made or
 * queued) and is handed to the recorder once a frame and an audio block have arrived
 * (media-check.ts decides); `release()` then lets the queues fill. So the trial's capture is
 * the one recorded from (nothing opened twice), and a queue unread during the trial counts
 * no drops.
 *
 * Timestamps, in microseconds: a video frame's is its capture time where the browser gives it
 * (rVFC's `captureTime`), else when it was presented (`presentationTime`), both on the
 * performance.now() clock and kept increasing; an audio block's is its first frame's index on
 * the AudioContext's sample clock (so audio has no jitter), moved on by any time the context
 * was stopped. The recorder places each track on its timeline by the track's first sample, as
 * it does a processor's.
 *
 * Nothing is lost silently: a sample that finds its queue full (the encoder is behind), a
 * frame the element presented between two callbacks (never seen), a frame that could not be
 * copied: each is counted and the counts are logged (at most every 10 s, and at the end).
 */
import { CAPTURE_PROCESSOR, CAPTURE_WORKLET_PATH, type CaptureBlock, type CaptureProcessorOptions } from "./audio-block";
import type { CaptureFailure } from "./media-check";
import { SampleQueue } from "./sample-queue";

export interface ElementCaptureOptions {
  /** The capture AudioWorklet module's URL (the relay's origin). */
  workletUrl: string;
  videoBufferFrames: number;
  audioBufferBlocks: number;
}

/** The PCM the audio queue delivers, as the AudioContext runs it. */
export interface ElementAudioFormat {
  sampleRate: number;
  channels: number;
}

/** What was dropped so far, by cause. */
export interface CaptureDrops {
  /** Video frames that found the queue full. */
  videoFrames: number;
  /** Frames the element presented between two callbacks, which the page never saw. */
  skippedFrames: number;
  /** Frames the browser would not copy into a VideoFrame. */
  failedFrames: number;
  /** Audio blocks (10 ms) that found the queue full. */
  audioBlocks: number;
}

/** A block of PCM from the worklet, as the recorder reads it: f32-planar, `timestamp` in
 * microseconds on the track's clock. Nothing to close (plain memory). */
export class PcmBlock {
  constructor(
    readonly timestamp: number,
    readonly data: Float32Array<ArrayBuffer>,
    readonly sampleRate: number,
    readonly channels: number,
  ) {}

  close(): void {
    // Plain memory: the garbage collector takes it.
  }
}

/** What a capture trial sees so far (media-check.ts's TrialProgress without the time). */
export interface ElementProgress {
  videoFrames: number;
  audioBlocks: number;
  audioStarted: boolean;
  failure?: CaptureFailure;
}

// rVFC runs with rendering, which a hidden page does not do: after this long without a callback
// there, frames are taken on a timer instead (throttled by the browser, but not stopped).
const STALL_MS = 500;
// Pace of the timer where the track does not say its frame rate.
const DEFAULT_FRAME_RATE = 30;
// PCM per message from the worklet: as Chromium's processor delivers it.
const BLOCK_MS = 10;
const DROP_LOG_MS = 10_000;

/** The capture AudioWorklet's URL on the relay at `server` (undefined: the page's origin), or
 * undefined if that names no URL. */
export function captureWorkletUrl(server: string | undefined): string | undefined {
  try {
    return new URL(CAPTURE_WORKLET_PATH, server ?? location.href).href;
  } catch {
    return undefined; // not a URL (a host without its scheme), or no page
  }
}

function hasGlobal(name: string): boolean {
  return typeof (globalThis as Record<string, unknown>)[name] === "function";
}

/** What this browser lacks to read frames from an element (and, with audio, an AudioWorklet),
 * or undefined. */
export function elementCaptureMissing(withAudio: boolean): string | undefined {
  const names = withAudio ? ["HTMLVideoElement", "AudioContext", "AudioWorkletNode", "AudioData"] : ["HTMLVideoElement"];
  const missing = names.find((name) => !hasGlobal(name));
  return missing && `${missing} is missing`;
}

/** Frames of a video track, as a hidden `<video>` element presents them. */
class VideoElementReader {
  readonly queue: SampleQueue<VideoFrame>;
  skipped = 0;
  failed = 0;
  private readonly track: MediaStreamTrack;
  private readonly element: HTMLVideoElement;
  private readonly hasCallbacks: boolean;
  private callback: number | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastPresented: number | undefined;
  private lastCallbackAt = 0;
  private lastTimestamp = -Infinity;
  // Whether a frame of the element was copied once (start()): frames count from then on.
  private copyable = false;
  private closed = false;
  private readonly onEnded = (): void => this.queue.end();

  constructor(track: MediaStreamTrack, capacity: number) {
    this.track = track;
    this.queue = new SampleQueue<VideoFrame>(capacity);
    const element = document.createElement("video");
    element.muted = true;
    element.playsInline = true;
    element.setAttribute("playsinline", ""); // older iOS Safari reads the attribute only
    element.srcObject = new MediaStream([track]);
    this.element = element;
    this.hasCallbacks = typeof element.requestVideoFrameCallback === "function";
  }

  /** Play the track and offer its frames from the first one presented; resolves once the
   * element shows a frame it can copy, rejects if it cannot (then close()). How long that
   * may take is the trial's to decide. */
  async start(): Promise<void> {
    this.track.addEventListener("ended", this.onEnded);
    if (this.hasCallbacks) this.callback = this.element.requestVideoFrameCallback(this.onFrame);
    const frameRate = this.track.getSettings().frameRate || DEFAULT_FRAME_RATE;
    this.timer = setInterval(() => this.onTick(), 1000 / frameRate);
    await this.firstFrame();
    // A browser that cannot copy the element's picture says so here, not frame after frame.
    new VideoFrame(this.element, { timestamp: 0 }).close();
    this.copyable = true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.callback !== undefined) this.element.cancelVideoFrameCallback(this.callback);
    clearInterval(this.timer);
    this.track.removeEventListener("ended", this.onEnded);
    this.element.pause();
    this.element.srcObject = null;
    void this.queue.cancel();
  }

  private async firstFrame(): Promise<void> {
    const element = this.element;
    const loaded = new Promise<void>((resolve) => {
      if (element.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA) resolve();
      else element.addEventListener("loadeddata", () => resolve(), { once: true });
    });
    await element.play();
    await loaded;
  }

  private readonly onFrame = (now: number, metadata: VideoFrameCallbackMetadata): void => {
    if (this.closed) return;
    this.callback = this.element.requestVideoFrameCallback(this.onFrame);
    this.lastCallbackAt = performance.now();
    const presented = metadata.presentedFrames;
    if (presented === this.lastPresented) return; // no new frame since the last callback
    if (this.lastPresented !== undefined && presented > this.lastPresented + 1) {
      this.skipped += presented - this.lastPresented - 1;
    }
    this.lastPresented = presented;
    this.grab(metadata.captureTime ?? metadata.presentationTime ?? now);
  };

  /** Without rVFC, or while a hidden page renders nothing: take the element's current frame
   * at the track's rate (it may repeat or miss one; nothing better is known then). */
  private onTick(): void {
    if (this.closed) return;
    const stalled = document.visibilityState === "hidden" && performance.now() - this.lastCallbackAt > STALL_MS;
    if (!this.hasCallbacks || stalled) {
      // The frames presented meanwhile were taken here: no skip to count when rVFC is back.
      this.lastPresented = undefined;
      this.grab(performance.now());
    }
  }

  /** Queue the element's current frame, stamped `ms` (performance.now() clock). */
  private grab(ms: number): void {
    if (!this.copyable) return; // not known to be copyable yet (start())
    if (this.element.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) return; // nothing shown yet
    // Strictly increasing: the recorder drops a sample that does not move time forward.
    const timestamp = Math.max(Math.round(ms * 1000), this.lastTimestamp + 1);
    try {
      if (this.queue.offer(() => new VideoFrame(this.element, { timestamp }))) this.lastTimestamp = timestamp;
    } catch {
      this.failed += 1; // no picture right now (the track is restarting): counted
    }
  }
}

/** PCM of an audio track, from the capture AudioWorklet, as PcmBlocks. */
class WorkletAudioReader {
  readonly queue: SampleQueue<PcmBlock>;
  /** What the AudioContext delivers, once it exists. */
  format: ElementAudioFormat | undefined;
  /** Whether the start is done: the module loaded and the AudioContext runs. */
  started = false;
  private readonly track: MediaStreamTrack;
  private context: AudioContext | undefined;
  private source: MediaStreamAudioSourceNode | undefined;
  private node: AudioWorkletNode | undefined;
  private closed = false;
  // While the context does not run (Safari: "interrupted" by a call), its sample clock stops
  // and time goes on: the frames after each such stop go that much later, as capture times
  // would place them (the encoder fills the gap with silence).
  private readonly gaps: Array<{ fromFrame: number; frames: number }> = [];
  private stoppedAt: { wall: number; contextTime: number } | undefined;
  private readonly onEnded = (): void => this.queue.end();

  constructor(track: MediaStreamTrack, capacity: number) {
    this.track = track;
    this.queue = new SampleQueue<PcmBlock>(capacity);
  }

  /** Run the track through the worklet loaded from `workletUrl`; resolves once the
   * AudioContext runs, rejects if it cannot (then close()). How long that may take (Firefox
   * without a sound server: 3 s, then no sound at all) is the trial's to decide. */
  async start(workletUrl: string): Promise<void> {
    await this.connect(workletUrl);
    this.started = !this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.track.removeEventListener("ended", this.onEnded);
    if (this.node) {
      this.node.port.onmessage = null;
      this.node.port.postMessage("stop");
      this.node.disconnect();
    }
    this.source?.disconnect();
    if (this.context) {
      this.context.onstatechange = null;
      void this.context.close().catch(() => undefined);
    }
    void this.queue.cancel();
  }

  private async connect(workletUrl: string): Promise<void> {
    if (this.closed) return;
    const { context, source } = connectTrack(this.track);
    this.context = context;
    this.source = source;
    const channels = Math.min(2, Math.max(1, this.track.getSettings().channelCount || 1));
    const sampleRate = context.sampleRate;
    this.format = { sampleRate, channels };
    await context.audioWorklet.addModule(workletUrl);
    if (this.closed) return;
    const processorOptions: CaptureProcessorOptions = {
      channels,
      blockFrames: Math.round((sampleRate * BLOCK_MS) / 1000),
    };
    // One silent output to the destination: some engines only render nodes that lead there.
    const node = new AudioWorkletNode(context, CAPTURE_PROCESSOR, {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      channelCount: channels,
      channelCountMode: "explicit",
      channelInterpretation: "speakers",
      processorOptions,
    });
    node.port.onmessage = (event: MessageEvent<CaptureBlock>) => this.onBlock(event.data);
    this.node = node;
    source.connect(node);
    node.connect(context.destination);
    this.track.addEventListener("ended", this.onEnded);
    context.onstatechange = () => this.onStateChange();
    // Without a user gesture a context may stay suspended: then the trial fails (no blocks)
    // and `auto` records with MediaRecorder.
    if (context.state !== "running") await context.resume();
  }

  /** Safari suspends ("interrupted") a running context for a call or a locked screen: the
   * muxer would wait for audio that never comes, so ask for it back, and keep the time lost. */
  private onStateChange(): void {
    const context = this.context;
    const format = this.format;
    if (this.closed || !context || !format || context.state === "closed") return;
    if (context.state !== "running") {
      this.stoppedAt ??= { wall: performance.now(), contextTime: context.currentTime };
      void context.resume().catch(() => undefined);
      return;
    }
    const stopped = this.stoppedAt;
    if (!stopped) return;
    this.stoppedAt = undefined;
    const { sampleRate } = format;
    const lost = (performance.now() - stopped.wall) / 1000 - (context.currentTime - stopped.contextTime);
    const frames = Math.round(lost * sampleRate);
    if (frames > 0) this.gaps.push({ fromFrame: Math.round(stopped.contextTime * sampleRate), frames });
  }

  private onBlock(block: CaptureBlock): void {
    if (this.closed || !this.format) return;
    const { sampleRate, channels } = this.format;
    let frame = block.frame;
    for (const gap of this.gaps) if (block.frame >= gap.fromFrame) frame += gap.frames;
    // No AudioData here: the recorder makes the sample once its timestamp is known.
    this.queue.offer(() => new PcmBlock(Math.round((frame / sampleRate) * 1e6), block.data, sampleRate, channels));
  }
}

/** An AudioContext at the track's own rate where it says one, with the track as a source.
 * Firefox refuses a source whose rate differs from its context's: then the default rate. */
function connectTrack(track: MediaStreamTrack): { context: AudioContext; source: MediaStreamAudioSourceNode } {
  const stream = new MediaStream([track]);
  const rate = track.getSettings().sampleRate;
  if (rate) {
    let context: AudioContext | undefined;
    try {
      context = new AudioContext({ sampleRate: rate });
      return { context, source: context.createMediaStreamSource(stream) };
    } catch {
      void context?.close().catch(() => undefined);
    }
  }
  const context = new AudioContext();
  try {
    return { context, source: context.createMediaStreamSource(stream) };
  } catch (err) {
    void context.close().catch(() => undefined);
    throw err;
  }
}

/** A video track read through a `<video>` element, and an audio track through an AudioWorklet,
 * into queues of VideoFrame and PcmBlock. It starts holding (samples counted, not queued: see
 * `progress`); once released the queues fill from the next sample and block on, so that a
 * reader starting at once loses nothing. */
export class ElementCapture {
  readonly video: SampleQueue<VideoFrame>;
  readonly audio: SampleQueue<PcmBlock> | undefined;
  private readonly videoReader: VideoElementReader;
  private readonly audioReader: WorkletAudioReader | undefined;
  private logTimer: ReturnType<typeof setInterval> | undefined;
  private logged: CaptureDrops = { videoFrames: 0, skippedFrames: 0, failedFrames: 0, audioBlocks: 0 };
  private failure: CaptureFailure | undefined;
  private closed = false;

  /** Start reading `video` (and `audio`, if given), holding. */
  constructor(video: MediaStreamTrack, audio: MediaStreamTrack | undefined, options: ElementCaptureOptions) {
    this.videoReader = new VideoElementReader(video, options.videoBufferFrames);
    this.audioReader = audio ? new WorkletAudioReader(audio, options.audioBufferBlocks) : undefined;
    this.video = this.videoReader.queue;
    this.audio = this.audioReader?.queue;
    this.video.holding = true;
    if (this.audio) this.audio.holding = true;
    const fail = (cause: CaptureFailure["cause"], what: string) => (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      this.failure ??= { cause, detail: `${what} (${message})` };
    };
    this.videoReader.start().catch(fail("video", "the camera's picture could not be read from a video element"));
    this.audioReader?.start(options.workletUrl).catch(fail("audio-start", "the browser's audio did not start"));
  }

  /** The audio's format (known as soon as its AudioContext exists), or undefined. */
  get audioFormat(): ElementAudioFormat | undefined {
    return this.audioReader?.format;
  }

  /** What arrived so far, for the trial. */
  get progress(): ElementProgress {
    return {
      videoFrames: this.video.arrived,
      audioBlocks: this.audio?.arrived ?? 0,
      audioStarted: this.audioReader?.started ?? false,
      failure: this.failure,
    };
  }

  /** Hand the capture to its reader: from now on samples are queued, and drops counted and
   * logged (none during the trial, where nobody read). */
  release(): void {
    if (this.closed || !this.video.holding) return;
    this.videoReader.skipped = 0;
    this.video.holding = false;
    if (this.audio) this.audio.holding = false;
    this.logTimer = setInterval(() => this.logDrops(), DROP_LOG_MS);
  }

  get drops(): CaptureDrops {
    return {
      videoFrames: this.video.dropped,
      skippedFrames: this.videoReader.skipped,
      failedFrames: this.videoReader.failed,
      audioBlocks: this.audio?.dropped ?? 0,
    };
  }

  /** Stop reading; what the queues hold is closed, and drops not yet logged are. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.logTimer);
    this.videoReader.close();
    this.audioReader?.close();
    this.logDrops();
  }

  /** Say on the console what was dropped since the last report, if anything. */
  private logDrops(): void {
    const now = this.drops;
    const parts: string[] = [];
    const add = (key: keyof CaptureDrops, what: string, why: string): void => {
      const count = now[key] - this.logged[key];
      if (count) parts.push(`${count} ${what}${count === 1 ? "" : "s"} ${why}`);
    };
    add("videoFrames", "video frame", "(the encoder was behind)");
    add("skippedFrames", "frame", "the video element skipped");
    add("failedFrames", "frame", "that could not be copied");
    add("audioBlocks", "audio block", "(the encoder was behind)");
    this.logged = now;
    if (parts.length) console.warn(`WebCodecs capture (video element) dropped ${parts.join(", ")}`);
  }
}
