/**
 * Audio from a MediaStreamTrackProcessor (Chromium), encoded without a copy of its PCM.
 *
 * An AudioData's timestamp cannot change: mediabunny's AudioSampleSource, given a sample whose
 * timestamp differs from its AudioData's, rebuilds the AudioData through AudioData.copyTo (one
 * copy per 10 ms block). The timeline needs other timestamps than the capture clock's (tracks
 * placed by their first sample, pauses left out). So this path runs its own AudioEncoder on the
 * AudioData as captured, and gives the muxer each encoded packet at its place on the timeline
 * (an EncodedAudioPacketSource): the first sample's place, plus the samples encoded before the
 * packet. The encoder's own timestamps (the capture clock, with or without gaps: engines
 * differ) are not used. Gaps in the capture (blocks a busy page lost) are filled with silence
 * before the next block, as mediabunny does, so that the sample count stays in step with time.
 */
import { EncodedAudioPacketSource, EncodedPacket } from "mediabunny";

// A gap this long (in samples) or longer is filled with silence (mediabunny's own threshold).
const MIN_GAP_SAMPLES = 64;
// Encodes queued before the feed waits for the encoder (as mediabunny's wrapper does).
const MAX_ENCODE_QUEUE = 4;

/** Where audio goes, counted in samples (pure: the unit tests check it). */
export class AudioSampleClock {
  private first: number | undefined;
  // Where the next input should begin, and how much the packets so far span, in samples from
  // the first.
  private nextInput = 0;
  private packetSamples = 0;

  constructor(readonly sampleRate: number) {}

  /** A block of `frames` placed at `placed` (timeline seconds) is about to be encoded: how
   * many frames of silence go before it. */
  input(placed: number, frames: number): number {
    const rate = this.sampleRate;
    this.first ??= Math.round(placed * rate) / rate;
    const start = Math.round((placed - this.first) * rate);
    const gap = start - this.nextInput;
    const silence = gap >= MIN_GAP_SAMPLES ? gap : 0;
    this.nextInput += silence + frames;
    return silence;
  }

  /** The timeline timestamp (seconds) of the next encoded packet, which spans `frames`. */
  packet(frames: number): number {
    const timestamp = (this.first ?? 0) + this.packetSamples / this.sampleRate;
    this.packetSamples += frames;
    return timestamp;
  }
}

/** A MediaStreamTrackProcessor's AudioData into Opus packets on the timeline. */
export class AudioPacketEncoder {
  readonly source: EncodedAudioPacketSource;
  private encoder: AudioEncoder | undefined;
  private clock: AudioSampleClock | undefined;
  private muxing: Promise<void> = Promise.resolve();
  private error: Error | undefined;

  constructor(private readonly bitrate: number) {
    this.source = new EncodedAudioPacketSource("opus");
  }

  /** Encode `data` (closed here) placed at `timestamp` (timeline seconds); resolves once the
   * encoder and the muxer take more. */
  async add(data: AudioData, timestamp: number): Promise<void> {
    try {
      this.check();
      const encoder = this.encoder ?? this.configure(data);
      const clock = this.clock as AudioSampleClock;
      const silence = clock.input(timestamp, data.numberOfFrames);
      if (silence > 0) encoder.encode(silentData(data, silence));
      encoder.encode(data);
    } finally {
      data.close();
    }
    const encoder = this.encoder as AudioEncoder;
    if (encoder.encodeQueueSize >= MAX_ENCODE_QUEUE) {
      await new Promise((resolve) => encoder.addEventListener("dequeue", resolve, { once: true }));
    }
    await this.muxing;
    this.check();
  }

  /** Encode what the encoder holds and hand it to the muxer. */
  async flush(): Promise<void> {
    const encoder = this.encoder;
    if (encoder && encoder.state === "configured") await encoder.flush();
    await this.muxing;
    this.check();
  }

  close(): void {
    if (this.encoder && this.encoder.state !== "closed") this.encoder.close();
  }

  private check(): void {
    if (this.error) throw this.error;
  }

  private configure(data: AudioData): AudioEncoder {
    const sampleRate = data.sampleRate;
    const clock = new AudioSampleClock(sampleRate);
    this.clock = clock;
    const encoder = new AudioEncoder({
      output: (chunk, meta) => {
        // Opus packets are 20 ms; an engine that does not say a chunk's duration means that.
        const frames = chunk.duration ? Math.round((chunk.duration * sampleRate) / 1e6) : Math.round(sampleRate / 50);
        const timestamp = clock.packet(frames);
        // The packet's few hundred bytes are copied out of the chunk (as mediabunny does).
        const bytes = new Uint8Array(chunk.byteLength);
        chunk.copyTo(bytes);
        const packet = new EncodedPacket(bytes, chunk.type, timestamp, frames / sampleRate);
        this.muxing = this.muxing
          .then(() => this.source.add(packet, meta))
          .catch((err: unknown) => {
            this.error ??= err instanceof Error ? err : new Error(String(err));
          });
      },
      error: (err) => {
        this.error ??= err;
      },
    });
    encoder.configure({
      codec: "opus",
      sampleRate,
      numberOfChannels: data.numberOfChannels,
      bitrate: this.bitrate,
      opus: { format: "opus" },
    } as AudioEncoderConfig);
    this.encoder = encoder;
    return encoder;
  }
}

/** `frames` of silence shaped like `like`, just before it on its clock. */
function silentData(like: AudioData, frames: number): AudioData {
  const channels = like.numberOfChannels;
  return new AudioData({
    format: "f32-planar",
    sampleRate: like.sampleRate,
    numberOfChannels: channels,
    numberOfFrames: frames,
    timestamp: like.timestamp - Math.round((frames / like.sampleRate) * 1e6),
    data: new Float32Array(frames * channels),
  });
}
