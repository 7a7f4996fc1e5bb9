/**
 * BrowserToRtmpClient: the API of `@api.video/browser-to-rtmp-client` 0.2.x (constructor,
 * `start()`, `pause()`, `stop()`, events `error`, `destroyed`, `ffmpegOutput`, same options and
 * defaults), made reliable: it picks the recorder type, sends ordered untyped binary chunks,
 * can stop and start again. With Desktop Relay it numbers its chunks and keeps each until the
 * relay acknowledges it: after a connection drop the recorder goes on, and once back the client
 * resumes its session with the session's token and resends what the relay missed. When that is
 * not possible (the relay ended the session, or the drop outlasted the buffer) it starts a
 * fresh session, as it does with the original server. When the browser suspends the camera
 * (a locked phone, a frozen or cached page) it pauses, and goes on with the same session when
 * the camera is back. A stop while the connection is down waits a while for it, so that the
 * relay still gets the stream's tail.
 */
import { io, type Socket } from "socket.io-client";

import { Emitter } from "./emitter";
import { chooseMimeType, describeAudioCodec, describeMimeType } from "./mime";
import type {
  BrowserToRtmpClientEvents,
  BrowserToRtmpClientOptions,
  CaptureMethod,
  CaptureOption,
  ClientState,
  ClientToServerEvents,
  ConnectionState,
  ResumeAck,
  ServerError,
  ServerToClientEvents,
  StartAck,
  StartPayload,
  StopOutcome,
  SuspendReason,
} from "./types";
import { captureWorkletUrl } from "./element-capture";
import { ScreenWakeLock } from "./wakelock";
import { type FrameSource, planWebCodecs, type Recorder, WebCodecsRecorder } from "./webcodecs";

export type * from "./types";
export { chooseMimeType, describeAudioCodec, describeMimeType } from "./mime";
export type { FrameSource, Recorder } from "./webcodecs";

// The original client's defaults.
const DEFAULT_OPTIONS = {
  port: 8086,
  audioBitsPerSecond: 128000,
  videoBitsPerSecond: 2500000,
  framerate: 25,
};
const DEFAULT_TIMESLICE_MS = 250;
const DEFAULT_KEYFRAME_INTERVAL_MS = 2000;
const DEFAULT_ACK_TIMEOUT_MS = 20000;
// After a drop the relay may still be closing the old session, which holds a stream slot until
// its ffmpeg has flushed: a restart refused for want of a slot is tried again for a while.
const RESTART_ATTEMPTS = 8;
const RESTART_DELAY_MS = 1500;
// What a session keeps for a resume, until the relay acknowledges it: a phone's network change
// takes seconds; a minute covers a walk between Wi-Fi and mobile data.
const DEFAULT_RESUME_BUFFER_SECONDS = 60;
const DEFAULT_RESUME_BUFFER_BYTES = 64 * 1024 * 1024;
// Our relay reports a chunk's error both in its ack and as an `error` event.
const DUPLICATE_WINDOW_MS = 2000;
const MAX_NAME_LENGTH = 64;
// A paused recorder sends nothing, and the relay ends sessions that stay silent (60 s by
// default): a paused client sends empty chunks, which the relay takes as a heartbeat.
const HEARTBEAT_MS = 2000;
// How long stop() waits for a dropped connection to come back, to end the session properly.
const DEFAULT_STOP_RECONNECT_TIMEOUT_MS = 10000;
// The least a resume during stop() may wait for its answer, however close the deadline.
const MIN_RESUME_WAIT_MS = 1000;

/** How a resume request went. */
type ResumeOutcome =
  | "resumed" // the relay took the session back and the missing chunks are resent
  | "gap" // the relay took it back, but more was recorded than the buffer kept
  | "refused" // the relay has no such session any more
  | "unanswered"; // dropped again, or no answer in time

/** A numbered chunk kept until the relay acknowledges it. */
interface HeldChunk {
  seq: number;
  data: ArrayBuffer;
  at: number; // when the recorder gave it (epoch ms)
}

/** One server session: its recorder and the ordered sends of its chunks. */
interface Run {
  recorder: Recorder;
  mimeType: string;
  capture: CaptureMethod;
  // Milliseconds of media one chunk spans: MediaRecorder's timeslice, or WebCodecs' chunk
  // interval (its chunks go out per frame).
  chunkMs: number;
  chain: Promise<void>;
  inFlight: number;
  stopping: boolean;
  ended: boolean;
  // From our relay's start ack (the original server sends none): then chunks are numbered
  // and the session can be resumed. Kept in memory only, never logged.
  resume: { sessionId: string; token: string } | undefined;
  nextSeq: number;
  held: HeldChunk[];
  heldBytes: number;
  // More was recorded than the buffer keeps: this session cannot be resumed any more.
  overflowed: boolean;
  // Chunks go out as they come; false from a drop until the resend after a resume is queued.
  linked: boolean;
}

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

type Options = BrowserToRtmpClientOptions & typeof DEFAULT_OPTIONS & { audioSampleRate: number };

/** An error raised on this side, shaped like the relay's so that listeners handle one kind. */
export function clientError(name: string, message: string, fatal = true): ServerError {
  return { name, message, fatal };
}

function isStartAck(value: unknown): value is StartAck {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as StartAck).sessionId === "string" &&
    typeof (value as StartAck).resumeToken === "string"
  );
}

function isServerError(value: unknown): value is ServerError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as ServerError).name === "string" &&
    typeof (value as ServerError).message === "string"
  );
}

function asServerError(err: unknown, name: string): ServerError {
  if (err && typeof err === "object" && "name" in err && "message" in err && "fatal" in err) {
    return err as ServerError;
  }
  const message = err instanceof Error ? err.message : String(err);
  const domName = err instanceof DOMException ? err.name : "";
  return clientError(domName === "NotSupportedError" ? "RECORDER_NOT_SUPPORTED" : name, message);
}

/** The address to give socket.io: `host` with `port` unless `host` names one already. */
export function serverUrl(host: string | undefined, port: number | undefined): string | undefined {
  if (!host) {
    if (port === undefined || typeof location === "undefined") return undefined; // same origin
    return `${location.protocol}//${location.hostname}:${port}`;
  }
  // The original cut two characters for one trailing slash; strip exactly the slashes.
  const url = host.replace(/\/+$/, "");
  const hasPort = /^([a-z][a-z0-9+.-]*:\/\/)?(\[[^\]]*\]|[^/:[\]]*):\d+(\/|$)/i.test(url);
  return hasPort ? url : `${url}:${port ?? DEFAULT_OPTIONS.port}`;
}

function stopRecorder(recorder: Recorder): Promise<void> {
  if (recorder.state === "inactive") return Promise.resolve();
  // The last `dataavailable` fires before `stop`.
  return new Promise((resolve) => {
    recorder.addEventListener("stop", () => resolve(), { once: true });
    try {
      recorder.stop();
    } catch {
      resolve();
    }
  });
}

/** Whether a track captures a screen, window or tab (getDisplayMedia) rather than a camera. */
function isScreenTrack(track: MediaStreamTrack): boolean {
  return (track.getSettings() as { displaySurface?: string }).displaySurface !== undefined;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class BrowserToRtmpClient extends Emitter<BrowserToRtmpClientEvents> {
  /** The socket.io connection (exposed for diagnostics). */
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private stream: MediaStream;
  private readonly options: Options;
  private run: Run | undefined;
  private _state: ClientState = "idle";
  private _connection: ConnectionState = "connecting";
  private pendingStart: ((error: ServerError) => void) | undefined;
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  // Bumped by start() and stop(): work begun for an older request gives up.
  private generation = 0;
  private restarting = false;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastEmittedError: ServerError | undefined;
  private retryingRestart = false;
  private resuming = false;
  private resumeRequest: { run: Run; promise: Promise<ResumeOutcome> } | undefined;
  // Set while the client drops a socket that it reconnects at once (socket.io then says
  // "inactive" for a moment: it is no lost connection).
  private cycling = false;
  private pausedAtDrop = false;
  // What the browser suspended (besides a muted camera, read from the tracks themselves), and
  // whether the client paused the stream for it (then it goes on by itself when it is over).
  private readonly suspensions = new Set<SuspendReason>();
  private autoPaused = false;
  private unwatchTracks: (() => void) | undefined;
  private lastError: { key: string; at: number; fromAck: boolean } | undefined;
  private readonly wakeLock = new ScreenWakeLock();
  private _bytesSent = 0;
  private _chunksSent = 0;
  private _liveSince: number | undefined;
  private _lastConnectError: string | undefined;
  // Why WebCodecs failed mid-stream on this page: `auto` records with MediaRecorder from then on.
  private webCodecsFailed: string | undefined;
  // The capture AudioWorklet, from the relay as socket.io is (WebCodecs without a
  // MediaStreamTrackProcessor reads audio through it).
  private readonly audioWorkletUrl: string | undefined;

  constructor(stream: MediaStream, options: BrowserToRtmpClientOptions = {}) {
    super();
    this.stream = stream;
    const merged = { ...DEFAULT_OPTIONS, ...options };
    this.options = {
      ...merged,
      // The original's default; the relay rounds it to a rate AAC supports.
      audioSampleRate: options.audioSampleRate || Math.round(merged.audioBitsPerSecond / 4),
    };
    const socketOptions = {
      reconnectionDelayMax: 10000,
      // Long-polling mangles binary chunks (and the relay serves websocket only).
      transports: ["websocket"],
      ...(options.socketio ?? {}),
    };
    const url = serverUrl(options.host, options.port);
    this.socket = url === undefined ? io(socketOptions) : io(url, socketOptions);
    this.audioWorkletUrl = captureWorkletUrl(url);

    this.socket.on("connect", () => this.onConnect());
    this.socket.on("disconnect", (reason) => this.onDisconnect(reason));
    this.socket.on("connect_error", (err) => {
      this._lastConnectError = err.message;
      this.setConnection(this.socket.active ? "connecting" : "disconnected");
      // The relay refused the connection (wrong or missing pairing token): socket.io will not
      // retry by itself, and the refusal carries the protocol's error object.
      const data = (err as { data?: unknown }).data;
      if (!this.socket.active && isServerError(data)) this.emitError(data, false);
    });
    this.socket.on("error", (err) => this.onServerError(err, false));
    this.socket.on("ffmpegOutput", (message) => this.emit("ffmpegOutput", message));
    this.socket.on("outputState", (status) => this.emit("outputState", status));
    this.socket.on("health", (warnings) => this.emit("health", Array.isArray(warnings) ? warnings : []));
    this.watchTracks(stream);
    this.watchPage();
  }

  // ---- state ------------------------------------------------------------------------------

  get state(): ClientState {
    return this._state;
  }

  get connectionState(): ConnectionState {
    return this._connection;
  }

  /** Why the last connection attempt failed, while not connected. */
  get lastConnectError(): string | undefined {
    return this._connection === "connected" ? undefined : this._lastConnectError;
  }

  /** Bytes the relay acknowledged since the last start(). */
  get bytesSent(): number {
    return this._bytesSent;
  }

  get chunksSent(): number {
    return this._chunksSent;
  }

  /** Chunks sent or being read but not yet acknowledged: a growing number means a slow link. */
  get pendingChunks(): number {
    const run = this.run;
    if (!run) return 0;
    return run.resume ? run.held.length : run.inFlight;
  }

  /** Seconds of recorded media kept for the relay and not yet acknowledged (while the
   * connection is down: what a resume will resend). */
  get heldSeconds(): number {
    const run = this.run;
    if (!run || run.held.length === 0) return 0;
    const held = run.held;
    return (held[held.length - 1].at - held[0].at + run.chunkMs) / 1000;
  }

  /** Whether a drop now would be bridged by a resume (our relay, buffer not overflowed). */
  get canResume(): boolean {
    const run = this.run;
    return run !== undefined && run.resume !== undefined && !run.overflowed && !run.ended;
  }

  /** Milliseconds of media per chunk: the `timeslice` option, or while WebCodecs records,
   * the least time between its chunks (they go out per frame). */
  get timeslice(): number {
    return this.run?.chunkMs ?? this.options.timeslice ?? DEFAULT_TIMESLICE_MS;
  }

  /** What records the current stream (undefined while idle): `webcodecs` (H.264 from the
   * browser's encoder, muxed on the page) or `mediarecorder`. */
  get captureMethod(): CaptureMethod | undefined {
    return this.run?.capture;
  }

  /** How WebCodecs reads the tracks while it records (undefined otherwise):
   * `track-processor`, or `video-element` where the page has no MediaStreamTrackProcessor. */
  get captureSource(): FrameSource | undefined {
    const recorder = this.run?.recorder;
    return recorder instanceof WebCodecsRecorder ? recorder.source : undefined;
  }

  /** When the stream went live (epoch ms), kept across reconnections; undefined when idle. */
  get liveSince(): number | undefined {
    return this._liveSince;
  }

  /** The type being recorded, as the recorder reports it. */
  get mimeType(): string | undefined {
    const run = this.run;
    return run ? run.recorder.mimeType || run.mimeType : undefined;
  }

  /** A short label of the recorded codecs, such as "H.264 + Opus" (or "H.264" when the
   * recorder does not name its audio). */
  get codecLabel(): string | undefined {
    const type = this.mimeType;
    if (type === undefined) return undefined;
    const audio = describeAudioCodec(type);
    const video = describeMimeType(type);
    return audio && !type.toLowerCase().startsWith("audio/") ? `${video} + ${audio}` : video;
  }

  get wakeLockHeld(): boolean {
    return this.wakeLock.held;
  }

  get mediaStream(): MediaStream {
    return this.stream;
  }

  /** Why the client paused the stream by itself (the browser suspended capture); undefined
   * when it did not. */
  get suspended(): SuspendReason | undefined {
    return this.autoPaused ? (this.suspendReason() ?? "muted") : undefined;
  }

  /** Use another stream for the next start(); only while idle (a recorder keeps its tracks). */
  setStream(stream: MediaStream): void {
    if (this._state !== "idle") throw new Error("Stop the stream before changing its source");
    this.stream = stream;
    this.watchTracks(stream);
  }

  /** Change what the next start() asks for; a running stream keeps its settings. */
  setOptions(options: Partial<Pick<BrowserToRtmpClientOptions, SessionOption>>): void {
    Object.assign(this.options, options);
  }

  // ---- the original's API -----------------------------------------------------------------

  /** Start streaming (or resume a paused stream). Rejects with the relay's refusal. */
  start(): Promise<void> {
    switch (this._state) {
      case "paused":
        return this.resume();
      case "live":
      case "reconnecting":
        return Promise.resolve();
      case "starting":
        return this.startPromise ?? Promise.resolve();
      case "stopping":
        // A stop, or a session being replaced after its encoder failed (startPromise).
        return (this.stopPromise ?? this.startPromise ?? Promise.resolve()).then(() => this.start());
      case "idle":
        break;
    }
    const generation = ++this.generation;
    this._bytesSent = 0;
    this._chunksSent = 0;
    this._liveSince = undefined;
    const promise: Promise<void> = this.beginRun(generation)
      .catch((err: unknown) => {
        if (generation === this.generation) this.setState("idle");
        throw err;
      })
      .finally(() => {
        if (this.startPromise === promise) this.startPromise = undefined;
      });
    this.startPromise = promise;
    // Callers that ignore the promise (as the original's users do) still get the `error`
    // event; an unhandled rejection would only add noise to the console.
    promise.catch(() => undefined);
    return promise;
  }

  /** Pause the recorder; the relay keeps the session. */
  pause(): Promise<void> {
    if (this._state === "live" && this.run && this.run.recorder.state === "recording") {
      this.run.recorder.pause();
      this.setState("paused");
    }
    return Promise.resolve();
  }

  /** Resume after pause(); after a drop while paused, starts a fresh session. */
  resume(): Promise<void> {
    // Asked for, or the suspension is over: either way no longer the client's own pause.
    this.autoPaused = false;
    if (this._state !== "paused") return Promise.resolve();
    if (this.run) {
      if (this.run.recorder.state === "paused") this.run.recorder.resume();
      this.setState("live");
      return Promise.resolve();
    }
    const generation = ++this.generation;
    return this.beginRun(generation).catch((err: unknown) => {
      if (generation === this.generation) this.setState("idle");
      throw err;
    });
  }

  /** Stop: the recorder flushes, every chunk reaches the relay, then its ffmpeg ends. While
   * the connection is down it waits for it up to `stopReconnectTimeoutMs`, then gives up
   * (the `stopped` event says how it ended). */
  stop(): Promise<void> {
    if (!this.stopPromise) {
      this.stopPromise = this.doStop().finally(() => {
        this.stopPromise = undefined;
      });
    }
    return this.stopPromise;
  }

  /** Stop and close the connection for good. */
  async close(): Promise<void> {
    await this.stop();
    this.socket.disconnect();
    this.setConnection("disconnected");
  }

  // ---- sessions ---------------------------------------------------------------------------

  private async beginRun(generation: number, shownState: ClientState = "starting"): Promise<void> {
    this.setState(shownState);
    let recorder: Recorder;
    let mimeType: string;
    try {
      ({ recorder, mimeType } = await this.createRecorder());
      await this.waitConnected();
    } catch (err) {
      const error = asServerError(err, "CANT_START_RECORDER");
      if (error !== this.lastEmittedError) this.emitError(error, false);
      throw error;
    }
    if (generation !== this.generation) throw clientError("CANCELLED", "Start was cancelled");
    const ack = await this.requestStart(recorder.mimeType || mimeType);
    if (generation !== this.generation) {
      // stop() came while the relay was answering: end the session it just accepted.
      this.socket.emit("stop", () => undefined);
      throw clientError("CANCELLED", "Start was cancelled");
    }

    const resumable = isStartAck(ack);
    const webcodecs = recorder instanceof WebCodecsRecorder ? recorder : undefined;
    const run: Run = {
      recorder,
      mimeType,
      capture: webcodecs ? "webcodecs" : "mediarecorder",
      chunkMs: webcodecs?.chunkIntervalMs ?? this.options.timeslice ?? DEFAULT_TIMESLICE_MS,
      chain: Promise.resolve(),
      inFlight: 0,
      stopping: false,
      ended: false,
      resume: resumable ? { sessionId: ack.sessionId, token: ack.resumeToken } : undefined,
      // A new session numbers from 0 (the relay takes any first number).
      nextSeq: 0,
      held: [],
      heldBytes: 0,
      overflowed: false,
      linked: true,
    };
    recorder.addEventListener("dataavailable", (event) => this.onData(run, event));
    recorder.addEventListener("stop", () => {
      // The recorder stopped without us: its tracks ended (the user stopped sharing).
      if (!run.stopping && !run.ended && this.run === run) void this.stop();
    });
    recorder.addEventListener("error", (event) => {
      const message = (event as unknown as { error?: Error }).error?.message ?? "The recorder failed";
      if (this.run !== run || run.stopping) return;
      if (run.capture === "webcodecs" && this.captureOption === "auto") {
        // Hardware encoders fail mid-stream: go on with MediaRecorder rather than end.
        void this.fallBackToMediaRecorder(run, message);
        return;
      }
      this.emitError(clientError("RECORDER_ERROR", message), false);
      void this.stop();
    });
    try {
      recorder.start(run.chunkMs);
    } catch (err) {
      this.socket.emit("stop", () => undefined);
      const error = asServerError(err, "CANT_START_RECORDER");
      this.emitError(error, false);
      throw error;
    }
    this.run = run;
    this._liveSince ??= Date.now();
    this.setState("live");
    // The browser may have suspended capture while the relay was answering.
    this.applySuspension();
  }

  /** The `capture` option in force: an explicit `mimeType` asks for MediaRecorder. */
  private get captureOption(): CaptureOption {
    const capture = this.options.capture ?? "auto";
    const mimeType = this.options.mimeType;
    const typeAsked = mimeType !== undefined && mimeType.length > 0;
    return capture === "auto" && typeAsked ? "mediarecorder" : capture;
  }

  /** The recorder for the next session: WebCodecs where the `capture` option allows it and
   * the browser can, else MediaRecorder with the best type it records. */
  private async createRecorder(): Promise<{ recorder: Recorder; mimeType: string }> {
    const capture = this.captureOption;
    const settings = {
      audioBitsPerSecond: this.options.audioBitsPerSecond,
      videoBitsPerSecond: this.options.videoBitsPerSecond,
      keyFrameIntervalMs: this.options.keyFrameIntervalMs ?? DEFAULT_KEYFRAME_INTERVAL_MS,
      audioWorkletUrl: this.audioWorkletUrl,
    };
    // `auto` leaves screens to MediaRecorder: a still screen gives no frames, and the muxer
    // then holds the sound back until the next one (MediaRecorder sends it on).
    const screen = this.stream.getVideoTracks().some(isScreenTrack);
    const tryWebCodecs = capture === "webcodecs" || (capture === "auto" && !screen && !this.webCodecsFailed);
    if (tryWebCodecs) {
      const plan = await planWebCodecs(this.stream, settings);
      if (typeof plan !== "string") {
        return { recorder: new WebCodecsRecorder(this.stream, plan, settings), mimeType: plan.mimeType };
      }
      if (capture === "webcodecs") {
        throw clientError("CANT_START_RECORDER", `This browser cannot capture with WebCodecs here: ${plan}`);
      }
    }
    const mimeType = chooseMimeType(this.stream, this.options.mimeType);
    const options: MediaRecorderOptions & { videoKeyFrameIntervalDuration?: number } = {
      audioBitsPerSecond: settings.audioBitsPerSecond,
      videoBitsPerSecond: settings.videoBitsPerSecond,
      // Chromium keyframes every ~5 s otherwise; viewers join and the relay resyncs on them.
      videoKeyFrameIntervalDuration: settings.keyFrameIntervalMs,
    };
    if (mimeType) options.mimeType = mimeType;
    return { recorder: new MediaRecorder(this.stream, options), mimeType };
  }

  private startPayload(mimeType: string): StartPayload {
    const o = this.options;
    const payload: StartPayload = {
      framerate: o.framerate,
      audioSampleRate: o.audioSampleRate,
      audioBitsPerSecond: o.audioBitsPerSecond,
      videoBitsPerSecond: o.videoBitsPerSecond,
    };
    if (o.rtmp) payload.rtmp = o.rtmp;
    if (mimeType) payload.mimeType = mimeType;
    const name = o.name?.trim();
    // Cut by characters, not UTF-16 units: half an emoji is no character at all.
    if (name) payload.name = Array.from(name).slice(0, MAX_NAME_LENGTH).join("");
    return payload;
  }

  /** Ask the relay to start; it acks on success (ours with the session's id and resume
   * token) and sends an `error` (no ack) on refusal. */
  private requestStart(mimeType: string): Promise<StartAck | undefined> {
    return new Promise<StartAck | undefined>((resolve, reject) => {
      let settled = false;
      const finish = (error?: ServerError, ack?: StartAck): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.socket.off("disconnect", onDrop);
        if (this.pendingStart === fail) this.pendingStart = undefined;
        if (error) reject(error);
        else resolve(ack);
      };
      const fail = (error: ServerError): void => finish(error);
      const onDrop = (): void => {
        const error = clientError("CONNECTION_LOST", "The connection to the relay was lost while starting");
        // While reconnecting, a second drop only means waiting for the next connection.
        if (this._state === "starting") this.emitError(error, false);
        finish(error);
      };
      const timer = setTimeout(() => {
        const error = clientError("START_TIMEOUT", "The relay did not answer the start request");
        this.emitError(error, false);
        finish(error);
      }, this.ackTimeout);
      this.pendingStart = fail;
      this.socket.on("disconnect", onDrop);
      this.socket.emit("start", this.startPayload(mimeType), (ack?: StartAck) => finish(undefined, ack));
    });
  }

  private waitConnected(): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    // After the relay closed the socket (for example the operator ended the stream) socket.io
    // does not reconnect by itself.
    if (!this.socket.active) this.socket.connect();
    return new Promise<void>((resolve, reject) => {
      const done = (error?: ServerError): void => {
        clearTimeout(timer);
        this.socket.off("connect", onConnect);
        this.socket.off("connect_error", onError);
        if (error) reject(error);
        else resolve();
      };
      const onConnect = (): void => done();
      const onError = (err: Error): void => {
        // Refused by the relay: waiting longer would not help.
        if (this.socket.active) return;
        const data = (err as { data?: unknown }).data;
        done(isServerError(data) ? data : clientError("CANNOT_CONNECT", `Cannot reach the relay (${err.message})`));
      };
      const timer = setTimeout(() => {
        const reason = this._lastConnectError ? ` (${this._lastConnectError})` : "";
        done(clientError("CANNOT_CONNECT", `Cannot reach the relay${reason}`));
      }, this.ackTimeout);
      this.socket.on("connect", onConnect);
      this.socket.on("connect_error", onError);
    });
  }

  private onData(run: Run, event: Event): void {
    const blob = (event as BlobEvent).data;
    if (!blob || blob.size === 0) return;
    const at = Date.now();
    if (run.resume) {
      // Reading a Blob is asynchronous: chaining keeps the chunks in recorder order.
      run.chain = run.chain
        .then(async () => {
          const data = await blob.arrayBuffer();
          if (run.ended) return;
          const chunk: HeldChunk = { seq: run.nextSeq, data, at };
          run.nextSeq += 1;
          this.hold(run, chunk);
          // While the connection is down the chunk waits in the buffer for the resume.
          if (run.linked && this.socket.connected) this.sendChunk(run, chunk);
        })
        .catch(() => undefined);
      return;
    }
    run.inFlight += 1;
    // Reading a Blob is asynchronous: chaining keeps the chunks in recorder order. The chunk
    // goes as an untyped ArrayBuffer: socket.io sends it as one binary websocket frame.
    run.chain = run.chain
      .then(async () => {
        const data = await blob.arrayBuffer();
        // Media of an ended session must not reach the next one (socket.io would buffer it
        // while disconnected and send it after reconnecting).
        if (run.ended || !this.socket.connected) {
          run.inFlight -= 1;
          return;
        }
        this.socket.emit("binarystream", data, (error?: ServerError | null) => {
          run.inFlight -= 1;
          if (error) {
            if (!run.ended && this.run === run) this.onServerError(error, true);
            return;
          }
          if (this.run === run) {
            this._bytesSent += data.byteLength;
            this._chunksSent += 1;
          }
        });
      })
      .catch(() => {
        run.inFlight -= 1;
      });
  }

  /** Keep a numbered chunk until its ack; past the bound the run can no longer resume. */
  private hold(run: Run, chunk: HeldChunk): void {
    if (run.overflowed) return;
    run.held.push(chunk);
    run.heldBytes += chunk.data.byteLength;
    const maxBytes = this.options.resumeBufferBytes ?? DEFAULT_RESUME_BUFFER_BYTES;
    const maxMs = (this.options.resumeBufferSeconds ?? DEFAULT_RESUME_BUFFER_SECONDS) * 1000;
    const spanMs = chunk.at - run.held[0].at + run.chunkMs;
    if (run.heldBytes > maxBytes || spanMs > maxMs) {
      // A resume would leave a gap the relay cannot fill: give the memory back now, and
      // start a new session when the connection returns.
      run.overflowed = true;
      run.held = [];
      run.heldBytes = 0;
    }
  }

  /** Send a numbered chunk; its ack releases it (and any before it) from the buffer. */
  private sendChunk(run: Run, chunk: HeldChunk): void {
    this.socket.emit("binarystream", chunk.data, chunk.seq, (error?: ServerError | null) => {
      if (error) {
        if (!run.ended && this.run === run) this.onServerError(error, true);
        return;
      }
      // Acks come in order; a duplicate (resent after a resume) was taken before.
      this.release(run, chunk.seq);
      if (this.run === run) {
        this._bytesSent += chunk.data.byteLength;
        this._chunksSent += 1;
      }
    });
  }

  private release(run: Run, upTo: number): void {
    while (run.held.length > 0 && run.held[0].seq <= upTo) {
      const done = run.held.shift() as HeldChunk;
      run.heldBytes -= done.data.byteLength;
    }
  }

  private async doStop(): Promise<void> {
    this.generation += 1;
    this.autoPaused = false;
    if (this.startPromise) await this.startPromise.catch(() => undefined);
    const run = this.run;
    if (!run) {
      this.pausedAtDrop = false;
      this.setState("idle");
      return;
    }
    run.stopping = true;
    this.setState("stopping");
    await stopRecorder(run.recorder);
    await run.chain;
    const wasEnded = run.ended;
    const outcome = await this.endSession(run);
    run.ended = true;
    // What the relay did not get by now it never will: give the memory back.
    run.held = [];
    run.heldBytes = 0;
    if (this.run === run) this.run = undefined;
    this._liveSince = undefined;
    this.setState("idle");
    this.emit("stopped", outcome);
    if (!wasEnded) this.emit("destroyed");
  }

  /** The browser's encoder failed mid-stream (hardware encoders do). The relay cannot take a
   * second stream header in the same session, so: end this session with everything recorded
   * until the failure (waiting for a dropped connection as stop() does), then start a new one
   * recorded by MediaRecorder, paused if the person had paused. `restarting` says so. */
  private async fallBackToMediaRecorder(run: Run, reason: string): Promise<void> {
    this.webCodecsFailed = reason;
    const generation = ++this.generation;
    const paused = this._state === "paused" && !this.autoPaused;
    run.stopping = true;
    const promise = (async (): Promise<void> => {
      // As stop() does: a drop meanwhile leaves the session to resume and end properly.
      this.setState("stopping");
      this.emit("restarting", "encoder");
      await stopRecorder(run.recorder);
      await run.chain;
      await this.endSession(run);
      run.ended = true;
      run.held = [];
      run.heldBytes = 0;
      if (this.run === run) this.run = undefined;
      if (generation !== this.generation) return; // stopped meanwhile
      try {
        await this.beginRun(generation);
        if (paused) await this.pause();
      } catch (err) {
        if (generation !== this.generation) return;
        const name = (err as ServerError).name;
        if ((name === "CONNECTION_LOST" || name === "CANNOT_CONNECT") && this.options.reconnect !== false) {
          this.pausedAtDrop = paused;
          this.setState("reconnecting"); // the next `connect` starts it
          return;
        }
        this._liveSince = undefined;
        this.setState("idle");
        this.emit("destroyed");
      }
    })().finally(() => {
      if (this.startPromise === promise) this.startPromise = undefined;
    });
    // stop() meanwhile waits for it, then stops the new session.
    this.startPromise = promise;
    await promise;
  }

  /** Have the relay end a stopping session once it has every chunk. While the connection is
   * down, wait for it (at most `stopReconnectTimeoutMs`) and resume first, so that the
   * stream keeps its tail rather than the relay ending it after its grace period. */
  private async endSession(run: Run): Promise<StopOutcome> {
    const deadline = Date.now() + (this.options.stopReconnectTimeoutMs ?? DEFAULT_STOP_RECONNECT_TIMEOUT_MS);
    let kicked = false;
    for (;;) {
      if (run.ended) return "unreachable";
      if (run.linked && this.socket.connected) {
        try {
          // The relay acks once its ffmpeg has written everything and exited.
          await this.socket.timeout(this.ackTimeout).emitWithAck("stop");
          return "ended";
        } catch {
          // Dropped meanwhile (onDisconnect unlinked the run): resume and ask again. Else no
          // answer in time: the relay ends the session when it notices.
          if (!run.linked && !run.ended) continue;
          return "unreachable";
        }
      }
      if (!run.resume) return "unreachable"; // the original server: nothing to resume
      const left = deadline - Date.now();
      if (left <= 0) return "unreachable";
      if (!this.socket.connected) {
        if (!kicked) {
          // socket.io's next attempt may be up to 10 s away after a long drop: try now.
          kicked = true;
          this.reconnectNow();
        }
        if (!(await this.waitForConnection(left))) return "unreachable";
        continue;
      }
      const outcome = await this.resumeSession(run, Math.min(this.ackTimeout, Math.max(left, MIN_RESUME_WAIT_MS)));
      if (run.ended) return "unreachable";
      switch (outcome) {
        case "resumed":
          break;
        case "gap":
          // This socket holds the session again, and the recorder has stopped: nothing more
          // goes out but the stop.
          run.linked = true;
          break;
        case "refused":
          return "gone";
        case "unanswered":
          if (Date.now() >= deadline) {
            // A late answer would leave the session on this socket: the stop follows the
            // resume there, and on a dead link it is lost with it.
            if (this.socket.connected) this.socket.emit("stop", () => undefined);
            return "unreachable";
          }
          // Up but not answering: a fresh connection may do better.
          if (this.socket.connected) this.reconnectNow();
          break;
      }
    }
  }

  /** Whether the socket connects within `ms` (socket.io keeps trying by itself). */
  private waitForConnection(ms: number): Promise<boolean> {
    if (this.socket.connected) return Promise.resolve(true);
    if (!this.socket.active) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const done = (connected: boolean): void => {
        clearTimeout(timer);
        this.socket.off("connect", onConnect);
        resolve(connected);
      };
      const onConnect = (): void => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.socket.on("connect", onConnect);
    });
  }

  /** Connect again now: drops a connection that is up but does not answer, and cuts
   * socket.io's wait between attempts (its backoff starts over). */
  private reconnectNow(): void {
    this.cycling = true;
    try {
      this.socket.disconnect();
    } finally {
      this.cycling = false;
    }
    this.socket.connect();
  }

  private get ackTimeout(): number {
    return this.options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
  }

  private sendHeartbeat(): void {
    const run = this.run;
    if (!run || run.ended || this._state !== "paused") return;
    // Through the chain, so it never overtakes a chunk still being read.
    run.chain = run.chain.then(() => {
      if (run.ended || !run.linked || !this.socket.connected) return;
      // Unnumbered: a heartbeat carries no media, so a resume has nothing to resend for it.
      this.socket.emit("binarystream", new ArrayBuffer(0), (error?: ServerError | null) => {
        if (error && !run.ended && this.run === run) this.onServerError(error, true);
      });
    });
  }

  /** End the current session on this side without telling the relay (it ended or is gone). */
  private dropRun(): Run | undefined {
    const run = this.run;
    this.run = undefined;
    if (run) {
      run.ended = true;
      if (run.recorder.state !== "inactive") {
        try {
          run.recorder.stop();
        } catch {
          // already stopping
        }
      }
    }
    return run;
  }

  // ---- connection -------------------------------------------------------------------------

  private onConnect(): void {
    this._lastConnectError = undefined;
    this.setConnection("connected");
    if (this._state !== "reconnecting") return;
    const run = this.run;
    if (run?.resume && !run.ended) void this.resumeAfterReconnect(run);
    else void this.restartAfterReconnect();
  }

  private onDisconnect(reason: Socket.DisconnectReason): void {
    // Dropped by reconnectNow(): socket.io connects again at once.
    const reconnects = this.options.reconnect !== false && (this.socket.active || this.cycling);
    this.setConnection(this.socket.active || this.cycling ? "connecting" : "disconnected");
    if (this._state === "starting") return; // requestStart() rejects on its own
    const run = this.run;
    if (!run && this._state !== "paused") return;
    if (run?.stopping) {
      // A session to resume: doStop() waits a while for the connection, to end it properly.
      if (run.resume && reconnects) run.linked = false;
      else run.ended = true; // doStop() finishes without the relay
      return;
    }
    const wasPaused = this._state === "paused";
    if (run?.resume && reconnects) {
      // Our relay keeps the session for a while: record on, and resume it once back (after
      // an overflow only to end it, so that a page never has two sessions).
      run.linked = false;
      this.setState("reconnecting");
      this.emit("reconnecting");
      return;
    }
    this.dropRun();
    // socket.io reconnects by itself unless the relay closed the socket on purpose.
    if (reconnects) {
      this.pausedAtDrop = wasPaused;
      this.setState("reconnecting");
      this.emit("reconnecting");
      return;
    }
    this._liveSince = undefined;
    this.setState("idle");
    const closedByRelay = reason === "io server disconnect";
    this.emitError(
      clientError(
        closedByRelay ? "DISCONNECTED_BY_RELAY" : "CONNECTION_LOST",
        closedByRelay ? "The relay closed the connection" : "The connection to the relay was lost",
      ),
      false,
    );
    this.emit("destroyed");
  }

  /** Back after a drop with a resumable session: take it over with its token, resend what
   * the relay has not got, and go on with the same recording. */
  private async resumeAfterReconnect(run: Run): Promise<void> {
    if (this.resuming || !run.resume) return;
    this.resuming = true;
    const generation = this.generation;
    // A stop meanwhile takes the resume over (endSession), as a newer start does.
    const stale = (): boolean => generation !== this.generation || this.run !== run || run.ended || run.stopping;
    try {
      const outcome = await this.resumeSession(run, this.ackTimeout);
      if (stale()) return;
      switch (outcome) {
        case "unanswered":
          // Dropped again (the next `connect` tries again), or no answer: reconnect, so that
          // a link that is up but dead does not hold the stream.
          if (this.socket.connected) this.reconnectNow();
          return;
        case "resumed":
          this.setState(run.recorder.state === "paused" ? "paused" : "live");
          // The suspension may have ended while the connection was down.
          this.applySuspension();
          this.emit("resumed");
          this.emit("reconnected");
          return;
        case "gap":
          // The relay kept the session, but part of the video since the drop is lost: end
          // it cleanly before starting the new one (never two sessions for one page).
          try {
            await this.socket.timeout(this.ackTimeout).emitWithAck("stop");
          } catch {
            // The relay ends it when it notices.
          }
          if (stale()) return;
          break;
        case "refused":
          break;
      }
      this.pausedAtDrop = run.recorder.state === "paused";
      this.dropRun();
      this.emit("restarting", outcome === "refused" ? "refused" : "overflow");
      await this.restartAfterReconnect();
    } finally {
      this.resuming = false;
    }
  }

  /** Ask the relay to give this socket the session back, and resend what it missed. One
   * request at a time: a second `resume` from a socket that took the session is refused. */
  private resumeSession(run: Run, timeoutMs: number): Promise<ResumeOutcome> {
    if (this.resumeRequest?.run === run) return this.resumeRequest.promise;
    const promise = this.requestResume(run, timeoutMs).finally(() => {
      if (this.resumeRequest?.promise === promise) this.resumeRequest = undefined;
    });
    this.resumeRequest = { run, promise };
    return promise;
  }

  private async requestResume(run: Run, timeoutMs: number): Promise<ResumeOutcome> {
    const ticket = run.resume;
    if (!ticket || run.ended) return "refused";
    let answer: ResumeAck | ServerError;
    try {
      answer = await this.socket
        .timeout(timeoutMs)
        .emitWithAck("resume", { sessionId: ticket.sessionId, token: ticket.token });
    } catch {
      return "unanswered";
    }
    if (isServerError(answer)) return "refused";
    if (run.overflowed) return "gap";
    const lastSeq = answer.lastSeq;
    // Through the chain: after every chunk read so far, before any read from now on.
    run.chain = run.chain.then(() => {
      if (run.ended || !this.socket.connected) return;
      if (lastSeq !== null) this.release(run, lastSeq);
      for (const chunk of run.held) this.sendChunk(run, chunk);
      run.linked = true;
    });
    await run.chain;
    return run.linked ? "resumed" : "unanswered";
  }

  private async restartAfterReconnect(): Promise<void> {
    if (this.restarting) return;
    this.restarting = true;
    const generation = ++this.generation;
    try {
      if (this.pausedAtDrop) {
        // Stay paused: resume() starts the new session.
        this.pausedAtDrop = false;
        this.setState("paused");
        this.emit("reconnected");
        return;
      }
      for (let attempt = 1; ; attempt += 1) {
        try {
          this.retryingRestart = attempt < RESTART_ATTEMPTS;
          await this.beginRun(generation, "reconnecting");
          this.emit("reconnected");
          return;
        } catch (err) {
          if (generation !== this.generation) return; // stopped meanwhile
          const name = (err as ServerError).name;
          if (name === "CONNECTION_LOST" || name === "CANNOT_CONNECT") {
            this.setState("reconnecting"); // the next `connect` tries again
            return;
          }
          if (name !== "MAX_STREAMS_REACHED" || attempt >= RESTART_ATTEMPTS) {
            this._liveSince = undefined;
            this.setState("idle");
            this.emit("destroyed");
            return;
          }
          this.setState("reconnecting");
          await delay(RESTART_DELAY_MS);
          if (generation !== this.generation || !this.socket.connected) return;
        }
      }
    } finally {
      this.restarting = false;
      this.retryingRestart = false;
    }
  }

  // ---- page lifecycle ---------------------------------------------------------------------

  /** Follow the page's lifecycle: a frozen page, or one in the back/forward cache, records
   * nothing, and its timers and socket may stop. */
  private watchPage(): void {
    if (typeof document === "undefined" || typeof window === "undefined") return;
    document.addEventListener("freeze", () => this.suspend("frozen"));
    document.addEventListener("resume", () => this.unsuspend("frozen"));
    window.addEventListener("pagehide", (event) => {
      // Not persisted: the page goes away for good, and its socket with it.
      if (event.persisted) this.suspend("bfcache");
    });
    window.addEventListener("pageshow", () => this.unsuspend("bfcache"));
    document.addEventListener("visibilitychange", () => {
      // Hidden alone changes nothing: desktop browsers record on. A visible page is neither
      // frozen nor cached, whichever event the browser left out.
      if (document.visibilityState === "visible") this.suspensions.clear();
      this.applySuspension();
    });
  }

  /** A camera's track is muted while the browser withholds its frames (a locked phone, a page
   * in the background): follow it. */
  private watchTracks(stream: MediaStream): void {
    this.unwatchTracks?.();
    const tracks = stream.getVideoTracks();
    const onChange = (): void => this.applySuspension();
    for (const track of tracks) {
      track.addEventListener("mute", onChange);
      track.addEventListener("unmute", onChange);
    }
    this.unwatchTracks = () => {
      for (const track of tracks) {
        track.removeEventListener("mute", onChange);
        track.removeEventListener("unmute", onChange);
      }
    };
  }

  private suspend(reason: SuspendReason): void {
    this.suspensions.add(reason);
    this.applySuspension();
  }

  private unsuspend(reason: SuspendReason): void {
    this.suspensions.delete(reason);
    this.applySuspension();
  }

  /** What keeps capture suspended now, if anything. */
  private suspendReason(): SuspendReason | undefined {
    for (const reason of this.suspensions) return reason;
    // A shared screen is left out: its picture may stop while the shared window is minimized
    // or still, and the stream (its sound) is to go on; a person chose what it shows.
    const muted = this.stream
      .getVideoTracks()
      .some((track) => track.readyState === "live" && track.muted && !isScreenTrack(track));
    return muted ? "muted" : undefined;
  }

  /** Pause while the browser suspends capture, and go on with the same session once it is
   * back. A pause the person asked for is theirs: only they end it. */
  private applySuspension(): void {
    if (this.options.pauseWhenSuspended === false) return;
    const run = this.run;
    const reason = this.suspendReason();
    if (reason !== undefined) {
      const already = this.autoPaused;
      const streaming = this._state === "live" || this._state === "reconnecting";
      if (run && streaming && !run.stopping && run.recorder.state === "recording") {
        // Heartbeats keep the session meanwhile; while reconnecting, the resume shows it paused.
        run.recorder.pause();
        this.autoPaused = true;
        if (this._state === "live") this.setState("paused");
      } else if (!run && this._state === "reconnecting" && !this.pausedAtDrop && !this.restarting) {
        // The next session starts paused (the original server's way after a drop).
        this.pausedAtDrop = true;
        this.autoPaused = true;
      }
      if (this.autoPaused && !already) this.emit("suspended", reason);
      return;
    }
    if (!this.autoPaused) return;
    this.autoPaused = false;
    if (this._state === "paused") void this.resume().catch(() => undefined);
    else if (run && !run.stopping && run.recorder.state === "paused") run.recorder.resume();
    else if (!run && this._state === "reconnecting") this.pausedAtDrop = false;
    this.emit("unsuspended");
  }

  // ---- errors -----------------------------------------------------------------------------

  private onServerError(error: ServerError, fromAck: boolean): void {
    // The resume's ack says it as well: resumeAfterReconnect() starts a new session.
    if (error.name === "RESUME_REFUSED") return;
    // A refused start: the relay sends `error` instead of the ack.
    if (!fromAck && this.pendingStart) {
      // A restart after a drop that is refused for want of a slot is tried again: say nothing.
      if (!(this.retryingRestart && error.name === "MAX_STREAMS_REACHED")) this.emitError(error, fromAck);
      this.pendingStart(error);
      return;
    }
    // "Not running" while we are not streaming only echoes an end we already reported.
    if (error.name === "FFMPEG_NOT_RUNNING" && (!this.run || this.run.ended)) return;
    this.emitError(error, fromAck);
    if (error.fatal && this.run) {
      this.dropRun();
      this._liveSince = undefined;
      this.setState("idle");
      this.emit("destroyed");
    }
  }

  private emitError(error: ServerError, fromAck: boolean): void {
    const key = `${error.name}\n${error.message}`;
    const now = Date.now();
    const last = this.lastError;
    this.lastError = { key, at: now, fromAck };
    this.lastEmittedError = error;
    if (last && last.key === key && last.fromAck !== fromAck && now - last.at < DUPLICATE_WINDOW_MS) {
      return;
    }
    this.emit("error", error);
  }

  private setState(state: ClientState): void {
    if (state === "idle") this.wakeLock.release();
    else if (state === "live" && this.options.wakeLock !== false) this.wakeLock.acquire();
    if (state === "paused" && this.run && this.heartbeat === undefined) {
      this.heartbeat = setInterval(() => this.sendHeartbeat(), HEARTBEAT_MS);
    } else if (state !== "paused" && this.heartbeat !== undefined) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
    if (state === this._state) return;
    this._state = state;
    this.emit("state", state);
  }

  private setConnection(state: ConnectionState): void {
    if (state === this._connection) return;
    this._connection = state;
    this.emit("connection", state);
  }
}

export default BrowserToRtmpClient;
