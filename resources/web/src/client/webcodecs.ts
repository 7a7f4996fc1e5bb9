/**
 * Capture with WebCodecs: H.264 from the browser's VideoEncoder (realtime, a keyframe every
 * `keyFrameIntervalMs`), Opus (else AAC) from its AudioEncoder, muxed by mediabunny into a live
 * Matroska stream, and handed out behind MediaRecorder's surface (`state`, `mimeType`,
 * `start`/`stop`/`pause`/`resume`, events `dataavailable`, `stop`, `error`) so that the client
 * treats both recorders alike. Unlike MediaRecorder's timeslice, bytes leave as soon as the
 * muxer wrote them: one chunk per frame or so, coalesced to at most one per `CHUNK_INTERVAL_MS`
 * (the relay takes at most 100 chunks/s, and Opus alone makes 50 packets/s).
 *
 * Frames and audio are read on the page with MediaStreamTrackProcessor, with a deeper buffer
 * than its default so that a busy page loses no frames. Where it exists only in workers
 * (Safari) or not at all (Firefox), they are read on the page from a hidden `<video>` element
 * and an AudioWorklet instead (element-capture.ts); past the point where a VideoFrame or an
 * AudioData exists, both ways share everything. (mediabunny's own MediaStream sources would
 * start workers from `blob:` URLs there, which the relay's Content-Security-Policy forbids.)
 * Where neither way works, or an encoder is missing, `planWebCodecs` says why and the client
 * records with MediaRecorder.
 */
import {
  AudioSample,
  AudioSampleSource,
  canEncodeAudio,
  canEncodeVideo,
  MkvOutputFormat,
  Output,
  Quality,
  StreamTarget,
  type StreamTargetChunk,
  VideoSample,
  VideoSampleSource,
} from "mediabunny";

import { AudioPacketEncoder } from "./audio-packets";
import { ElementCapture, type ElementCaptureOptions, elementCaptureMissing, PcmBlock } from "./element-capture";
import { type CaptureFailure, type MediaCause, type TrialProgress, type TrialVerdict, trialVerdict } from "./media-check";
import { Timeline } from "./timeline";

/** What records the stream: the browser's MediaRecorder, or WebCodecsRecorder. Both have
 * MediaRecorder's surface (events `dataavailable` with a Blob `data`, `stop`, `error`). */
export interface Recorder extends EventTarget {
  readonly state: RecordingState;
  readonly mimeType: string;
  start(timeslice?: number): void;
  stop(): void;
  pause(): void;
  resume(): void;
}

/** How a WebCodecs capture reads the tracks: MediaStreamTrackProcessor (Chromium), or a
 * `<video>` element and an AudioWorklet (browsers without the processor on the page). */
export type FrameSource = "track-processor" | "video-element";

/** What a WebCodecs capture of a stream will use, as `planWebCodecs` found it supported. */
export interface WebCodecsPlan {
  /** The H.264 codec string the encoder takes, such as `avc1.640028`. */
  videoCodec: string;
  audioCodec: "opus" | "aac" | undefined;
  /** What `start` tells the relay. */
  mimeType: string;
  source: FrameSource;
  /** The `video-element` source's capture, as its trial left it (holding): the recorder
   * reads from it, or `discardPlan` closes it. */
  capture?: ElementCapture;
}

/** Close what a plan holds open when no recorder will use it. */
export function discardPlan(plan: WebCodecsPlan): void {
  plan.capture?.close();
  plan.capture = undefined;
}

export interface WebCodecsSettings {
  videoBitsPerSecond: number;
  audioBitsPerSecond: number;
  keyFrameIntervalMs: number;
  /** The capture AudioWorklet module, which the `video-element` source needs for audio. */
  audioWorkletUrl?: string;
  /** WebCodecs was asked for (`capture: "webcodecs"`): its trial waits longer. */
  forced?: boolean;
}

// At most one chunk per this many ms (about 33 a second), and never later than this after the
// muxer wrote its bytes: a frame at 30 fps plus the Opus packets beside it.
export const CHUNK_INTERVAL_MS = 30;
// A timer this late was throttled (a hidden page): bytes written now leave at once instead.
const LATE_TIMER_MS = 3 * CHUNK_INTERVAL_MS;

// H.264 profiles to offer the encoder, best first: High, Main, Constrained Baseline (phones'
// hardware encoders may have only the last).
const AVC_PROFILES = ["6400", "4d00", "42e0"];

/** The H.264 level for a picture of `width` x `height` (by macroblocks, at up to 30 fps). */
function avcLevel(width: number, height: number): string {
  const macroblocks = Math.ceil(width / 16) * Math.ceil(height / 16);
  if (macroblocks <= 3600) return "1f"; // 3.1: up to 720p
  if (macroblocks <= 8192) return "28"; // 4.0: up to 1080p
  if (macroblocks <= 22080) return "32"; // 5.0: up to 2560x1600
  return "33"; // 5.1: up to 4K
}

function hasGlobal(name: string): boolean {
  return typeof (globalThis as Record<string, unknown>)[name] === "function";
}

/** The mimeType `start` sends: what Chromium's MediaRecorder calls its own H.264 Matroska
 * (the relay reads the container from the bytes; the type names the recording's file). */
function mimeTypeFor(audio: WebCodecsPlan["audioCodec"]): string {
  if (audio === "aac") return "video/x-matroska;codecs=avc1,mp4a.40.2";
  return audio === "opus" ? "video/webm;codecs=h264,opus" : "video/webm;codecs=h264";
}

function unsupported(detail: string): CaptureFailure {
  return { cause: "unsupported", detail };
}

/**
 * How to capture `stream` with WebCodecs here, or why it cannot be: this browser lacks
 * WebCodecs, the stream has no video, no H.264 (or no Opus and no AAC) encoder takes these
 * settings, or the trial found that video frames or audio blocks do not arrive on the page
 * (media-check.ts: `auto` waits about 1 s, so that a slow audio start does not hold the start
 * back; then MediaRecorder records). The trial reads the tracks as the recorder will: with
 * MediaStreamTrackProcessor (its readers are closed again), or through a `<video>` element and
 * the AudioWorklet, whose capture the plan keeps for the recorder (holding until then).
 */
export async function planWebCodecs(
  stream: MediaStream,
  settings: WebCodecsSettings,
): Promise<WebCodecsPlan | CaptureFailure> {
  for (const name of ["VideoEncoder", "AudioEncoder", "VideoFrame", "WritableStream"]) {
    if (!hasGlobal(name)) return unsupported(`${name} is missing`);
  }
  const source: FrameSource = hasGlobal("MediaStreamTrackProcessor") ? "track-processor" : "video-element";
  const video = stream.getVideoTracks().find((track) => track.readyState === "live");
  if (!video) return unsupported("the stream has no video");
  const { width, height } = video.getSettings();
  if (!width || !height) return unsupported("the video has no size yet");
  if (width % 2 || height % 2) return unsupported(`H.264 needs even dimensions, not ${width}x${height}`);
  const audio = stream.getAudioTracks().find((track) => track.readyState === "live");

  // The trial runs while the encoders are asked about.
  const started = performance.now();
  let capture: ElementCapture | undefined;
  let trial: Promise<TrialVerdict>;
  if (source === "video-element") {
    const missing = elementCaptureMissing(audio !== undefined);
    if (missing) return unsupported(`MediaStreamTrackProcessor is missing, and ${missing}`);
    if (audio && !settings.audioWorkletUrl) {
      return unsupported("MediaStreamTrackProcessor is missing, and no AudioWorklet module is given");
    }
    const opened = new ElementCapture(video, audio, elementOptions(settings.audioWorkletUrl));
    capture = opened;
    trial = runTrial(started, () => ({ ...opened.progress, withAudio: audio !== undefined }), settings.forced);
  } else {
    trial = processorTrial(started, video, audio, settings.forced);
  }
  let handed = false;
  try {
    const level = avcLevel(width, height);
    let videoCodec: string | undefined;
    for (const profile of AVC_PROFILES) {
      const codec = `avc1.${profile}${level}`;
      const ok = await canEncodeVideo("avc", {
        width,
        height,
        quality: new Quality({ bitrate: settings.videoBitsPerSecond }),
        latencyMode: "realtime",
        fullCodecString: codec,
      }).catch(() => false);
      if (ok) {
        videoCodec = codec;
        break;
      }
    }
    if (!videoCodec) return unsupported(`no H.264 encoder for ${width}x${height}`);

    let audioCodec: WebCodecsPlan["audioCodec"];
    if (audio) {
      const { sampleRate, channelCount } = audio.getSettings();
      // The PCM an AudioContext delivers, which may differ from what the track says.
      const format = capture?.audioFormat;
      for (const codec of ["opus", "aac"] as const) {
        const ok = await canEncodeAudio(codec, {
          sampleRate: format?.sampleRate ?? (sampleRate || 48000),
          numberOfChannels: format?.channels ?? (channelCount || 1),
          quality: new Quality({ bitrate: settings.audioBitsPerSecond }),
        }).catch(() => false);
        if (ok) {
          audioCodec = codec;
          break;
        }
      }
      if (!audioCodec) return unsupported("no Opus or AAC encoder");
    }
    const verdict = await trial;
    if (verdict.kind === "fail") {
      const how = source === "video-element" ? "through a video element" : "with MediaStreamTrackProcessor";
      return { cause: verdict.cause, detail: `reading the tracks ${how}: ${verdict.detail}` };
    }
    handed = true;
    return { videoCodec, audioCodec, mimeType: mimeTypeFor(audioCodec), source, capture };
  } finally {
    if (!handed) capture?.close();
  }
}

const TRIAL_POLL_MS = 20;

/** Poll `progress` until the trial's verdict is no longer `wait`. */
async function runTrial(
  started: number,
  progress: () => Omit<TrialProgress, "elapsedMs">,
  forced = false,
): Promise<TrialVerdict> {
  for (;;) {
    const verdict = trialVerdict({ ...progress(), elapsedMs: performance.now() - started }, forced);
    if (verdict.kind !== "wait") return verdict;
    await new Promise((resolve) => setTimeout(resolve, TRIAL_POLL_MS));
  }
}

/** Whether a MediaStreamTrackProcessor gives a frame of `video` and a block of `audio` in
 * time: one of each is read, closed, and the readers cancelled. */
async function processorTrial(
  started: number,
  video: MediaStreamTrack,
  audio: MediaStreamTrack | undefined,
  forced = false,
): Promise<TrialVerdict> {
  const Processor = (globalThis as unknown as Record<string, TrackProcessor>).MediaStreamTrackProcessor;
  const counts = { videoFrames: 0, audioBlocks: 0 };
  let failure: CaptureFailure | undefined;
  const readers: Array<ReadableStreamDefaultReader<VideoFrame | AudioData>> = [];
  const readOne = (track: MediaStreamTrack, key: keyof typeof counts, cause: MediaCause): void => {
    try {
      const reader = new Processor({ track }).readable.getReader();
      readers.push(reader);
      reader.read().then(
        ({ value }) => {
          if (!value) return;
          value.close();
          counts[key] += 1;
        },
        () => undefined,
      );
    } catch (err) {
      failure ??= { cause, detail: `MediaStreamTrackProcessor failed (${asError(err).message})` };
    }
  };
  readOne(video, "videoFrames", "video");
  if (audio) readOne(audio, "audioBlocks", "audio");
  try {
    return await runTrial(started, () => ({ ...counts, withAudio: audio !== undefined, audioStarted: true, failure }), forced);
  } finally {
    for (const reader of readers) void reader.cancel().catch(() => undefined);
  }
}

function elementOptions(workletUrl: string | undefined): ElementCaptureOptions {
  return { workletUrl: workletUrl ?? "", videoBufferFrames: VIDEO_BUFFER_FRAMES, audioBufferBlocks: AUDIO_BUFFER_CHUNKS };
}

/** A `dataavailable` event, as MediaRecorder's BlobEvent. */
class DataEvent extends Event {
  constructor(readonly data: Blob) {
    super("dataavailable");
  }
}

/** An `error` event, as MediaRecorder's, with what failed. */
export class RecorderErrorEvent extends Event {
  constructor(
    readonly error: Error,
    readonly cause: MediaCause,
  ) {
    super("error");
  }
}

// How long a stop waits for the encoders to flush before it ends without their last frames.
const FINISH_TIMEOUT_MS = 5000;

/** `promise`'s value, or undefined if it takes longer than `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Chromium's MediaStreamTrackProcessor, with its `maxBufferSize`. */
type TrackProcessor = new (init: { track: MediaStreamTrack; maxBufferSize?: number }) => {
  readable: ReadableStream<VideoFrame | AudioData>;
};

// What a track's reader keeps while the page is busy (MediaStreamTrackProcessor's default is
// a frame or two: the page's main thread, busy for 100 ms, loses camera frames). Half a second
// of video at 30 fps, and of Chromium's 10 ms audio buffers.
const VIDEO_BUFFER_FRAMES = 15;
const AUDIO_BUFFER_CHUNKS = 50;

type Source = VideoSampleSource | AudioSampleSource | AudioPacketEncoder["source"];

/** What a track's samples are read from: a processor's stream reader, or a SampleQueue. */
type SampleReader = Pick<ReadableStreamDefaultReader<VideoFrame | AudioData | PcmBlock>, "read" | "cancel">;

/** Records a stream's first video track (H.264) and first audio track (Opus or AAC) into live
 * Matroska with WebCodecs, as `planWebCodecs` planned it. */
export class WebCodecsRecorder extends EventTarget implements Recorder {
  readonly mimeType: string;
  /** Milliseconds between chunks, at least: what one chunk spans, for buffers counting time. */
  readonly chunkIntervalMs = CHUNK_INTERVAL_MS;
  /** How the tracks are read. */
  readonly source: FrameSource;
  private _state: RecordingState = "inactive";
  private readonly stream: MediaStream;
  private readonly plan: WebCodecsPlan;
  private readonly settings: WebCodecsSettings;
  private output: Output | undefined;
  private started: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private failed = false;
  private readers: SampleReader[] = [];
  // The `video-element` source's element and AudioWorklet, while they run.
  private capture: ElementCapture | undefined;
  // The `track-processor` source's Opus encoder (audio-packets.ts).
  private audioPackets: AudioPacketEncoder | undefined;
  private feeds: Array<Promise<void>> = [];
  // The media timeline, in seconds from the first sample (without the pauses).
  private readonly timeline = new Timeline();
  /** Video frames and audio blocks given to the encoders so far, and bytes the muxer wrote:
   * what the no-media watchdog reads. */
  videoFramesIn = 0;
  audioBlocksIn = 0;
  /** Whether an audio track is recorded. */
  readonly withAudio: boolean;
  // Bytes the muxer wrote and no chunk carried yet.
  private parts: Uint8Array[] = [];
  private written = 0;
  private lastChunkAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private unwatchTracks: (() => void) | undefined;

  constructor(stream: MediaStream, plan: WebCodecsPlan, settings: WebCodecsSettings) {
    super();
    this.stream = stream;
    this.plan = plan;
    this.settings = settings;
    this.mimeType = plan.mimeType;
    this.source = plan.source;
    this.withAudio = plan.audioCodec !== undefined;
  }

  /** Bytes the muxer wrote so far. */
  get bytesWritten(): number {
    return this.written;
  }

  /** Close what the plan holds open (a trial's capture) when this recorder will never start. */
  discard(): void {
    if (this._state === "inactive" && !this.stopping) discardPlan(this.plan);
  }

  get state(): RecordingState {
    return this._state;
  }

  /** Start capturing; `timeslice` is ignored (bytes leave per frame). */
  start(_timeslice?: number): void {
    if (this._state !== "inactive" || this.stopping) {
      throw new DOMException("The recorder has already started", "InvalidStateError");
    }
    const video = this.stream.getVideoTracks().find((track) => track.readyState === "live");
    if (!video) throw new DOMException("The stream has no live video track", "NotSupportedError");
    const audio = this.plan.audioCodec
      ? this.stream.getAudioTracks().find((track) => track.readyState === "live")
      : undefined;
    const intervalS = this.settings.keyFrameIntervalMs / 1000;
    const output = new Output({
      format: new MkvOutputFormat({
        // Append-only: clusters of unknown size whose blocks are written as they come, instead
        // of a cluster held until it ends to write its size.
        appendOnly: true,
        // A cluster per keyframe (they open at one): a restarted relay encoder starts there.
        minimumClusterDuration: Math.min(1, intervalS),
      }),
      target: new StreamTarget(new WritableStream<StreamTargetChunk>({ write: (chunk) => this.onWrite(chunk) })),
    });
    const videoSource = new VideoSampleSource({
      codec: "avc",
      fullCodecString: this.plan.videoCodec,
      quality: new Quality({ bitrate: this.settings.videoBitsPerSecond }),
      keyFrameInterval: intervalS,
      latencyMode: "realtime",
      // A turned phone or a resized shared window: keep the size the stream began with (the
      // relay copies the H.264, whose size is set once).
      sizeChangeBehavior: "contain",
    });
    output.addVideoTrack(videoSource);
    const tracks: Array<[MediaStreamTrack, Source]> = [[video, videoSource]];
    if (audio && this.plan.audioCodec) {
      let audioSource: Source;
      if (this.source === "track-processor" && this.plan.audioCodec === "opus") {
        // The processor's AudioData keeps its timestamp: packets are placed instead.
        this.audioPackets = new AudioPacketEncoder(this.settings.audioBitsPerSecond);
        audioSource = this.audioPackets.source;
        output.addAudioTrack(this.audioPackets.source);
      } else {
        const sampleSource = new AudioSampleSource({
          codec: this.plan.audioCodec,
          quality: new Quality({ bitrate: this.settings.audioBitsPerSecond }),
        });
        output.addAudioTrack(sampleSource);
        audioSource = sampleSource;
      }
      tracks.push([audio, audioSource]);
    }
    this.output = output;
    this._state = "recording";
    this.lastChunkAt = performance.now();
    this.watchTracks(tracks.map(([track]) => track));
    this.started = output
      .start()
      .then(() => (this.source === "video-element" ? this.readElement(tracks) : this.readProcessors(tracks)))
      .catch((err: unknown) => this.fail(err, "video-encoder"));
  }

  /** Feed each track's samples to its source from a MediaStreamTrackProcessor. */
  private readProcessors(tracks: Array<[MediaStreamTrack, Source]>): void {
    if (this.stopping) return;
    // Read here rather than by mediabunny's MediaStream sources: their readers keep a frame
    // or two, and a page busy for 100 ms then loses frames (7 % of them on a loaded machine).
    const Processor = (globalThis as unknown as Record<string, TrackProcessor>).MediaStreamTrackProcessor;
    for (const [track, source] of tracks) {
      const maxBufferSize = track.kind === "video" ? VIDEO_BUFFER_FRAMES : AUDIO_BUFFER_CHUNKS;
      const reader = new Processor({ track, maxBufferSize }).readable.getReader();
      this.readSamples(reader, source, track.kind === "video" ? "video" : "audio");
    }
  }

  /** Feed each track's samples to its source from the `<video>` element and the AudioWorklet
   * that planWebCodecs' trial opened (and found delivering). */
  private readElement(tracks: Array<[MediaStreamTrack, Source]>): void {
    if (this.stopping) return;
    const [[video, videoSource], audio] = tracks;
    // The trial's capture, or (a plan used twice) a new one.
    const capture = this.plan.capture ?? new ElementCapture(video, audio?.[0], elementOptions(this.settings.audioWorkletUrl));
    this.plan.capture = undefined;
    this.capture = capture;
    // Queue from now on, read at once: the first samples are fresh, as the timeline placing
    // each track by its first sample wants.
    capture.release();
    this.readSamples(capture.video, videoSource, "video");
    if (audio && capture.audio) this.readSamples(capture.audio, audio[1], "audio");
  }

  private readSamples(reader: SampleReader, source: Source, kind: "video" | "audio"): void {
    this.readers.push(reader);
    const cause: MediaCause = kind === "video" ? "video-encoder" : "audio";
    this.feeds.push(this.feed(reader, source).catch((err: unknown) => this.fail(err, cause)));
  }

  pause(): void {
    if (this._state === "inactive") throw new DOMException("The recorder is not recording", "InvalidStateError");
    if (this._state === "paused") return;
    this._state = "paused";
    this.timeline.pause(performance.now() / 1000);
    this.flush();
  }

  resume(): void {
    if (this._state === "inactive") throw new DOMException("The recorder is not recording", "InvalidStateError");
    if (this._state === "recording") return;
    this._state = "recording";
    this.timeline.resume(performance.now() / 1000);
  }

  /** Stop: the encoders flush, the muxer ends the stream, the last bytes go out as a last
   * `dataavailable`, then `stop` fires. */
  stop(): void {
    if (this._state === "inactive" || this.stopping) return;
    this._state = "inactive";
    this.stopping = this.finish();
  }

  /** Give each sample of a track to its source, as the muxer's timeline places it. */
  private async feed(reader: SampleReader, source: Source): Promise<void> {
    // The track's own clock to the timeline: set by its first sample (the tracks' clocks
    // need not agree, as mediabunny's MediaStream sources assume too).
    let offset: number | undefined;
    let last = -Infinity;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const at = this.place(value.timestamp / 1e6, offset);
      if (at === undefined || at.timestamp <= last || this.stopping) {
        value.close();
        continue;
      }
      offset = at.offset;
      last = at.timestamp;
      // Resolves once the encoder takes more: meanwhile the reader's buffer fills, and past
      // it frames are dropped, as a busy MediaRecorder does (a processor drops the oldest
      // silently; a SampleQueue the newest, counted and logged).
      //
      // Every sample is made with its final timestamp. What copies media in mediabunny 1.61
      // (node_modules/mediabunny/src/sample.ts, media-source.ts), and so what is avoided here:
      // - AudioSample.setTimestamp() on a sample made from an AudioData, or an AudioData whose
      //   microseconds do not survive `Math.trunc(1e6 * (us / 1e6))` (1.8 % of them do not):
      //   AudioEncoderWrapper.encodeSample -> toAudioData() -> _createAudioDataFromData(), one
      //   AudioData.copyTo per plane, per block (WebKitGTK's web process crashes on it).
      // - An AudioSample made from PCM (as here from a PcmBlock): toAudioData() makes a new
      //   AudioData from the bytes (the constructor's own copy, no copyTo).
      // - AudioSample.clone()/trim()/toAudioBuffer(), a resampler or sample-format transform,
      //   PCM codecs: copyTo. Not used here (no `transform`, Opus or AAC).
      // - A VideoSample from a VideoFrame with another timestamp: toVideoFrame() wraps it in
      //   `new VideoFrame(frame, {timestamp})`, no pixel copy. A frame of another size than
      //   the first ("contain", a turned phone) is drawn into a canvas: a copy, then only.
      // MediaStreamTrackProcessor's AudioData (Chromium) cannot be given another timestamp
      // without copyTo: it is encoded as it is, and its packets placed (audio-packets.ts).
      // Only AAC there (a Chromium without an Opus encoder) still goes through setTimestamp
      // and a copy per block (feedAudioData).
      if (value instanceof VideoFrame) {
        const sample = new VideoSample(value, { timestamp: at.timestamp });
        try {
          await (source as VideoSampleSource).add(sample);
          this.videoFramesIn += 1;
        } finally {
          sample.close();
        }
      } else if (value instanceof PcmBlock) {
        const sample = new AudioSample({
          format: "f32-planar",
          sampleRate: value.sampleRate,
          numberOfChannels: value.channels,
          timestamp: at.timestamp,
          data: value.data,
        });
        try {
          await (source as AudioSampleSource).add(sample);
          this.audioBlocksIn += 1;
        } finally {
          sample.close();
        }
      } else if (this.audioPackets) {
        await this.audioPackets.add(value, at.timestamp);
        this.audioBlocksIn += 1;
      } else {
        await this.feedAudioData(value, at.timestamp, source as AudioSampleSource);
      }
    }
    // The track ended (an unplugged microphone): the muxer, which interleaves the tracks,
    // must not wait for it.
    if (this.stopping) return;
    if (this.audioPackets && source === this.audioPackets.source) await this.audioPackets.flush();
    source.close();
  }

  /** A MediaStreamTrackProcessor's AudioData at `timestamp` (seconds) for AAC: the one path
   * that still copies (setTimestamp makes mediabunny rebuild the AudioData through copyTo). */
  private async feedAudioData(value: AudioData, timestamp: number, source: AudioSampleSource): Promise<void> {
    const sample = new AudioSample(value);
    sample.setTimestamp(timestamp);
    try {
      await source.add(sample);
      this.audioBlocksIn += 1;
    } finally {
      sample.close();
    }
  }

  /** Where a sample captured at `captured` (its track's clock, seconds) goes on the timeline,
   * with the track's offset; undefined to drop it (paused, or captured during a pause). */
  private place(captured: number, offset: number | undefined): { timestamp: number; offset: number } | undefined {
    if (this._state !== "recording") return undefined;
    return this.timeline.place(captured, offset, performance.now() / 1000);
  }

  private async finish(): Promise<void> {
    this.unwatchTracks?.();
    await this.started;
    // Readers stop at once; what they hold was not recorded. A broken encoder may never take
    // the sample it was given: `stop` must come all the same.
    await Promise.all(this.readers.map((reader) => reader.cancel().catch(() => undefined)));
    this.capture?.close();
    this.capture = undefined;
    discardPlan(this.plan); // stopped before the capture was read
    await within(Promise.all(this.feeds), FINISH_TIMEOUT_MS);
    const output = this.output;
    if (output) {
      try {
        if (this.failed) throw new Error("failed");
        // The audio encoder's last packets go to the muxer before it ends.
        const packets = this.audioPackets;
        if (packets && !(await within(packets.flush().then(() => true), FINISH_TIMEOUT_MS))) throw new Error("stuck");
        if (!(await within(output.finalize().then(() => true), FINISH_TIMEOUT_MS))) throw new Error("stuck");
      } catch {
        // A failed encoder cannot flush: what was written is what there is.
        await within(output.cancel().catch(() => undefined), FINISH_TIMEOUT_MS);
      }
    }
    this.audioPackets?.close();
    this.flush();
    this.dispatchEvent(new Event("stop"));
  }

  /** An encoder, a track's reading or the muxer failed: say so, with what failed, then stop
   * with what was recorded. */
  private fail(err: unknown, cause: MediaCause): void {
    if (this.failed || this._state === "inactive") return;
    this.failed = true;
    this.dispatchEvent(new RecorderErrorEvent(asError(err), cause));
    this.stop();
  }

  /** As MediaRecorder does, stop once every recorded track has ended. */
  private watchTracks(tracks: MediaStreamTrack[]): void {
    const onEnded = (): void => {
      if (tracks.every((track) => track.readyState === "ended")) this.stop();
    };
    for (const track of tracks) track.addEventListener("ended", onEnded);
    this.unwatchTracks = () => {
      for (const track of tracks) track.removeEventListener("ended", onEnded);
    };
  }

  private onWrite(chunk: StreamTargetChunk): void {
    // Append-only output writes each byte once, in order; anything else would corrupt the
    // stream the relay reads.
    if (chunk.position !== this.written) {
      this.fail(new Error(`The muxer wrote at ${chunk.position}, expected ${this.written}`), "video-encoder");
      return;
    }
    this.written += chunk.data.byteLength;
    this.parts.push(chunk.data);
    if (this.stopping) return; // the last chunk follows when the muxer is done
    const sinceLast = performance.now() - this.lastChunkAt;
    if (this.timer !== undefined && sinceLast < LATE_TIMER_MS) return;
    if (sinceLast >= LATE_TIMER_MS) {
      this.flush();
      return;
    }
    // Writes of the same moment (a frame, the audio beside it) go together.
    this.timer = setTimeout(() => this.flush(), Math.max(0, CHUNK_INTERVAL_MS - sinceLast));
  }

  /** Hand out what the muxer wrote so far as one chunk. */
  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.parts.length === 0) return;
    const blob = new Blob(this.parts as BlobPart[]);
    this.parts = [];
    this.lastChunkAt = performance.now();
    this.dispatchEvent(new DataEvent(blob));
  }
}
