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
 *
 * This class orchestrates; the parts live beside it (see resources/web/README.md):
 * state.ts (the state tables), run.ts (one session's chunks), resume-buffer.ts,
 * connection.ts, capture.ts, suspension.ts, errors.ts, options.ts.
 */
import type { Socket } from "socket.io-client";

import { captureOption, createRecorder, stopRecorder } from "./capture";
import { type CaptureFailure, NO_MEDIA_MS, noMediaVerdict } from "./media-check";
import { RelayConnection, type RelaySocket, startPayload } from "./connection";
import { captureWorkletUrl } from "./element-capture";
import { asServerError, clientError, ErrorDeduplicator, isServerError, isStartAck } from "./errors";
import { Emitter } from "./emitter";
import { describeAudioCodec, describeMimeType } from "./mime";
import {
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_STOP_RECONNECT_TIMEOUT_MS,
  DEFAULT_TIMESLICE_MS,
  type Options,
  type SessionOption,
  withDefaults,
} from "./options";
import { bufferLimits } from "./resume-buffer";
import { Run } from "./run";
import { CLIENT_TRANSITIONS, transition } from "./state";
import type {
  BrowserToRtmpClientEvents,
  BrowserToRtmpClientOptions,
  CaptureMethod,
  ClientState,
  ConnectionState,
  NoMediaInfo,
  RestartReason,
  ResumeAck,
  ServerError,
  StartAck,
  StopOutcome,
  SuspendReason,
} from "./types";
import { SuspensionWatch } from "./suspension";
import { ScreenWakeLock } from "./wakelock";
import { type FrameSource, type Recorder, RecorderErrorEvent, WebCodecsRecorder } from "./webcodecs";

export type * from "./types";
export { chooseMimeType, describeAudioCodec, describeMimeType } from "./mime";
export type { FrameSource, Recorder } from "./webcodecs";
export type { SessionOption } from "./options";
export { clientError } from "./errors";
export { serverUrl } from "./connection";
export { CLIENT_TRANSITIONS, RUN_TRANSITIONS } from "./state";
export type { CaptureFailure, MediaCause } from "./media-check";
export type { RunState } from "./state";

// After a drop the relay may still be closing the old session, which holds a stream slot until
// its ffmpeg has flushed: a restart refused for want of a slot is tried again for a while.
const RESTART_ATTEMPTS = 8;
const RESTART_DELAY_MS = 1500;
// A paused recorder sends nothing, and the relay ends sessions that stay silent (60 s by
// default): a paused client sends empty chunks, which the relay takes as a heartbeat.
const HEARTBEAT_MS = 2000;
// The least a resume during stop() may wait for its answer, however close the deadline.
const MIN_RESUME_WAIT_MS = 1000;
// How often the no-media watchdog looks at a live recorder.
const MEDIA_CHECK_MS = 250;

/** How a resume request went. */
type ResumeOutcome =
  | "resumed" // the relay took the session back and the missing chunks are resent
  | "gap" // the relay took it back, but more was recorded than the buffer kept
  | "refused" // the relay has no such session any more
  | "unanswered"; // dropped again, or no answer in time

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class BrowserToRtmpClient extends Emitter<BrowserToRtmpClientEvents> {
  /** The socket.io connection (exposed for diagnostics). */
  readonly socket: RelaySocket;
  private readonly connection: RelayConnection;
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
  // One restart after a drop (restartAfterReconnect) at a time, and whether a refusal for
  // want of a stream slot is to be tried again silently.
  private restarting = false;
  private retryingRestart = false;
  // One resume after a drop (resumeAfterReconnect) at a time, and the resume request in flight.
  private resuming = false;
  private resumeRequest: { run: Run; promise: Promise<ResumeOutcome> } | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastEmittedError: ServerError | undefined;
  private readonly errors = new ErrorDeduplicator();
  // Reconnecting without a session: the next one starts paused (it was paused at the drop).
  private pausedAtDrop = false;
  private readonly suspension: SuspensionWatch;
  // Whether the client paused the stream for a suspension (then it goes on by itself when it
  // is over); a pause the person asked for is theirs.
  private autoPaused = false;
  private readonly wakeLock = new ScreenWakeLock();
  private _bytesSent = 0;
  private _chunksSent = 0;
  private _liveSince: number | undefined;
  // The capture way that failed on this page (WebCodecs mid-stream, or a way that recorded
  // nothing): `auto` records the other way from then on.
  private avoidCapture: CaptureMethod | undefined;
  // The no-media watchdog switches the capture way once per page, not back and forth.
  private switchedForNoMedia = false;
  private _noMedia: NoMediaInfo | undefined;
  private _captureFallback: CaptureFailure | undefined;
  // The capture AudioWorklet, from the relay as socket.io is (WebCodecs without a
  // MediaStreamTrackProcessor reads audio through it).
  private readonly audioWorkletUrl: string | undefined;

  constructor(stream: MediaStream, options: BrowserToRtmpClientOptions = {}) {
    super();
    this.stream = stream;
    this.options = withDefaults(options);
    this.connection = new RelayConnection(options);
    this.socket = this.connection.socket;
    this.audioWorkletUrl = captureWorkletUrl(this.connection.url);

    this.socket.on("connect", () => this.onConnect());
    this.socket.on("disconnect", (reason) => this.onDisconnect(reason));
    this.socket.on("connect_error", (err) => {
      this.connection.lastConnectError = err.message;
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
    this.suspension = new SuspensionWatch(() => this.applySuspension());
    this.suspension.watchTracks(stream);
    this.suspension.watchPage();
    if (typeof window !== "undefined") {
      // Not persisted: the page goes away for good (a reload, a closed tab).
      window.addEventListener("pagehide", (event) => {
        if (!event.persisted) this.goodbye();
      });
    }
  }

  /** The page goes away for good: tell the relay, which then ends the session at once
   * instead of keeping it (and its stream slot and target) for a resume that will never
   * come. Nothing can be awaited here: the stop is sent and the socket closed. A lost link
   * says nothing, and its session waits for the resume as before. */
  private goodbye(): void {
    if (this.run === undefined || !this.socket.connected) return;
    this.socket.emit("stop", () => undefined);
    this.socket.disconnect();
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
    return this._connection === "connected" ? undefined : this.connection.lastConnectError;
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
    return this.run?.pendingChunks ?? 0;
  }

  /** Seconds of recorded media kept for the relay and not yet acknowledged (while the
   * connection is down: what a resume will resend). */
  get heldSeconds(): number {
    return this.run?.buffer.seconds ?? 0;
  }

  /** Whether a drop now would be bridged by a resume (our relay, buffer not overflowed). */
  get canResume(): boolean {
    return this.run?.canResume ?? false;
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

  /** Set when the current stream recorded nothing in its first 5 s of recording (no video
   * frames or audio blocks reached the encoders, or the recorder produced no data): what
   * failed, and the way the client switched to (`noMedia` says it as it happens). */
  get noMedia(): NoMediaInfo | undefined {
    return this._noMedia;
  }

  /** Why `auto` records this camera with MediaRecorder rather than WebCodecs (its trial
   * found no frames or no sound, or the browser lacks something), if it does. */
  get captureFallback(): CaptureFailure | undefined {
    return this.run?.capture === "mediarecorder" ? this._captureFallback : undefined;
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
    return this.autoPaused ? (this.suspension.reason(this.stream) ?? "muted") : undefined;
  }

  /** Use another stream for the next start(); only while idle (a recorder keeps its tracks). */
  setStream(stream: MediaStream): void {
    if (this._state !== "idle") throw new Error("Stop the stream before changing its source");
    this.stream = stream;
    this.suspension.watchTracks(stream);
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
    let recorder: Recorder | undefined;
    let mimeType: string;
    let ack: StartAck | undefined;
    try {
      let skipped: CaptureFailure | undefined;
      try {
        ({ recorder, mimeType, webCodecsSkipped: skipped } = await createRecorder(
          this.stream,
          this.options,
          this.audioWorkletUrl,
          this.avoidCapture,
        ));
        await this.connection.waitConnected(this.ackTimeout);
      } catch (err) {
        const error = asServerError(err, "CANT_START_RECORDER");
        if (error !== this.lastEmittedError) this.emitError(error, false);
        throw error;
      }
      this._captureFallback = skipped;
      if (generation !== this.generation) throw clientError("CANCELLED", "Start was cancelled");
      ack = await this.requestStart(recorder.mimeType || mimeType);
      if (generation !== this.generation) {
        // stop() came while the relay was answering: end the session it just accepted.
        this.socket.emit("stop", () => undefined);
        throw clientError("CANCELLED", "Start was cancelled");
      }
    } catch (err) {
      // A WebCodecs trial's capture stays open for its recorder: close it.
      if (recorder instanceof WebCodecsRecorder) recorder.discard();
      throw err;
    }

    const webcodecs = recorder instanceof WebCodecsRecorder ? recorder : undefined;
    const run = new Run(
      {
        socket: this.socket,
        isCurrent: (r) => this.run === r,
        onChunkError: (error) => this.onServerError(error, true),
        onDelivered: (bytes) => {
          this._bytesSent += bytes;
          this._chunksSent += 1;
        },
        bufferLimits: () => bufferLimits(this.options),
      },
      recorder,
      mimeType,
      webcodecs ? "webcodecs" : "mediarecorder",
      webcodecs?.chunkIntervalMs ?? this.options.timeslice ?? DEFAULT_TIMESLICE_MS,
      isStartAck(ack) ? { sessionId: ack.sessionId, token: ack.resumeToken } : undefined,
    );
    recorder.addEventListener("dataavailable", (event) => run.onData(event));
    recorder.addEventListener("stop", () => {
      // The recorder stopped without us: its tracks ended (the user stopped sharing).
      if (!run.stopping && !run.ended && this.run === run) void this.stop();
    });
    recorder.addEventListener("error", (event) => {
      const message = (event as unknown as { error?: Error }).error?.message ?? "The recorder failed";
      if (this.run !== run || run.stopping) return;
      // What failed: WebCodecs says (an encoder, a track's reading); MediaRecorder is one.
      const cause = event instanceof RecorderErrorEvent ? event.cause : "recorder";
      if (run.capture === "webcodecs" && captureOption(this.options) === "auto") {
        // Hardware encoders fail mid-stream: go on with MediaRecorder rather than end.
        void this.switchCapture(run, cause === "audio" ? "audio" : "encoder");
        return;
      }
      this.emitError({ ...clientError("RECORDER_ERROR", message), cause }, false);
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
    this._noMedia = undefined;
    this.watchMedia(run);
    this._liveSince ??= Date.now();
    this.setState("live");
    // The browser may have suspended capture while the relay was answering.
    this.applySuspension();
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
      this.socket.emit("start", startPayload(this.options, mimeType), (ack?: StartAck) => finish(undefined, ack));
    });
  }

  private get ackTimeout(): number {
    return this.options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
  }

  private sendHeartbeat(): void {
    const run = this.run;
    if (!run || run.ended || this._state !== "paused") return;
    run.sendHeartbeat();
  }

  /** End the current session on this side without telling the relay (it ended or is gone). */
  private dropRun(): Run | undefined {
    const run = this.run;
    this.run = undefined;
    run?.drop();
    return run;
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
    run.beginStop();
    this.setState("stopping");
    await stopRecorder(run.recorder);
    await run.chain;
    const wasEnded = run.ended;
    const outcome = await this.endSession(run);
    run.end();
    // What the relay did not get by now it never will: give the memory back.
    run.buffer.clear();
    if (this.run === run) this.run = undefined;
    this._liveSince = undefined;
    this.setState("idle");
    this.emit("stopped", outcome);
    if (!wasEnded) this.emit("destroyed");
  }

  /** The no-media watchdog: once `run` has recorded NO_MEDIA_MS (pauses do not count), it
   * must have fed frames and audio to the encoders and produced data (media-check.ts).
   * Else `noMedia`, and under `auto` the other capture way, once per page. */
  private watchMedia(run: Run): void {
    const recorder = run.recorder;
    const webcodecs = recorder instanceof WebCodecsRecorder ? recorder : undefined;
    const withAudio = webcodecs ? webcodecs.withAudio : this.stream.getAudioTracks().length > 0;
    let produced = 0;
    const onData = (event: Event): void => {
      produced += (event as BlobEvent).data?.size ?? 0;
    };
    recorder.addEventListener("dataavailable", onData);
    let recordingMs = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      if (this.run !== run || run.stopping || run.ended) {
        clearInterval(timer);
        recorder.removeEventListener("dataavailable", onData);
        return;
      }
      if (recorder.state === "recording") recordingMs += now - last;
      last = now;
      if (recordingMs < NO_MEDIA_MS) return;
      clearInterval(timer);
      recorder.removeEventListener("dataavailable", onData);
      const failure = noMediaVerdict({
        bytes: webcodecs ? webcodecs.bytesWritten : produced,
        videoFrames: webcodecs?.videoFramesIn,
        audioBlocks: webcodecs?.audioBlocksIn,
        withAudio,
      });
      if (failure) this.onNoMedia(run, failure);
    }, MEDIA_CHECK_MS);
  }

  private onNoMedia(run: Run, failure: CaptureFailure): void {
    const switching = captureOption(this.options) === "auto" && !this.switchedForNoMedia;
    const method = run.capture;
    const info: NoMediaInfo = {
      ...failure,
      method,
      switchingTo: switching ? (method === "webcodecs" ? "mediarecorder" : "webcodecs") : undefined,
    };
    this._noMedia = info;
    console.warn(
      `Nothing recorded in ${NO_MEDIA_MS / 1000} s with ${method} (${failure.detail})` +
        (info.switchingTo ? `: trying ${info.switchingTo}` : ""),
    );
    this.emit("noMedia", info);
    if (switching) {
      this.switchedForNoMedia = true;
      void this.switchCapture(run, "no-media");
    }
  }

  /** The capture way failed mid-stream (hardware encoders do; an audio track dies), or
   * recorded nothing: the relay cannot take a second stream header in the same session, so
   * end this session with everything recorded until then (waiting for a dropped connection
   * as stop() does), then start a new one recorded the other way, paused if the person had
   * paused. `restarting` says so, with why. */
  private async switchCapture(run: Run, reason: RestartReason): Promise<void> {
    this.avoidCapture = run.capture;
    const generation = ++this.generation;
    const paused = this._state === "paused" && !this.autoPaused;
    run.beginStop();
    const promise = (async (): Promise<void> => {
      // As stop() does: a drop meanwhile leaves the session to resume and end properly.
      this.setState("stopping");
      this.emit("restarting", reason);
      await stopRecorder(run.recorder);
      await run.chain;
      await this.endSession(run);
      run.end();
      run.buffer.clear();
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
          this.connection.reconnectNow();
        }
        if (!(await this.connection.waitForConnection(left))) return "unreachable";
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
          run.relink();
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
          if (this.socket.connected) this.connection.reconnectNow();
          break;
      }
    }
  }

  // ---- connection -------------------------------------------------------------------------

  private onConnect(): void {
    this.connection.lastConnectError = undefined;
    this.setConnection("connected");
    if (this._state !== "reconnecting") return;
    const run = this.run;
    if (run?.resume && !run.ended) void this.resumeAfterReconnect(run);
    else void this.restartAfterReconnect();
  }

  private onDisconnect(reason: Socket.DisconnectReason): void {
    // Dropped by reconnectNow(): socket.io connects again at once.
    const cycling = this.connection.cycling;
    const reconnects = this.options.reconnect !== false && (this.socket.active || cycling);
    this.setConnection(this.socket.active || cycling ? "connecting" : "disconnected");
    if (this._state === "starting") return; // requestStart() rejects on its own
    const run = this.run;
    if (!run && this._state !== "paused") return;
    if (run?.stopping) {
      // A session to resume: doStop() waits a while for the connection, to end it properly.
      if (run.resume && reconnects) run.unlink();
      else run.end(); // doStop() finishes without the relay
      return;
    }
    const wasPaused = this._state === "paused";
    if (run?.resume && reconnects) {
      // Our relay keeps the session for a while: record on, and resume it once back (after
      // an overflow only to end it, so that a page never has two sessions).
      run.unlink();
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
          if (this.socket.connected) this.connection.reconnectNow();
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
    if (run.buffer.overflowed) return "gap";
    return (await run.resendFrom(answer.lastSeq)) ? "resumed" : "unanswered";
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

  // ---- page suspension --------------------------------------------------------------------

  /** Pause while the browser suspends capture, and go on with the same session once it is
   * back. A pause the person asked for is theirs: only they end it. */
  private applySuspension(): void {
    if (this.options.pauseWhenSuspended === false) return;
    const run = this.run;
    const reason = this.suspension.reason(this.stream);
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
    this.lastEmittedError = error;
    if (this.errors.shouldReport(error, fromAck, Date.now())) this.emit("error", error);
  }

  /** Every change of the client's state goes through here, checked against
   * CLIENT_TRANSITIONS (an illegal one throws: a bug in the client). */
  private setState(state: ClientState): void {
    transition(CLIENT_TRANSITIONS, this._state, state);
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
