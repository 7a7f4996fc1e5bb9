import type { ManagerOptions, SocketOptions } from "socket.io-client";

import type { MediaCause } from "./media-check";

/** What `start` sends: the original client's fields, plus `mimeType` and `name`. */
export interface FfmpegConfig {
  framerate?: number;
  audioSampleRate?: number;
  rtmp?: string;
  audioBitsPerSecond?: number;
  videoBitsPerSecond?: number;
}

/** An error as the relay sends it; `name` is a stable code such as `MAX_STREAMS_REACHED`. */
export interface ServerError {
  name: string;
  message: string;
  details?: string;
  fatal?: boolean;
  /** Errors raised by the client about capture: what failed (`audio-start`, `audio`,
   * `video`, `video-encoder`, `recorder`, `unsupported`), which the page words. */
  cause?: MediaCause;
}

/** The original client's options (same names and defaults), then Desktop Relay's additions. */
export type BrowserToRtmpClientOptions = {
  /** Relay address such as `http://192.168.1.20`; the original required it, here it
   * defaults to the page's own origin (the page served by the relay). */
  host?: string;
  /** Used when `host` names no port (default 8086, as the original). */
  port?: number;
  socketio?: Partial<ManagerOptions & SocketOptions>;
  /** MediaRecorder type(s) to use, in order of preference; default: H.264 Matroska when the
   * browser records it (the relay then copies video), else VP8/VP9 WebM, else MP4. Given,
   * it means MediaRecorder unless `capture` is `webcodecs`. */
  mimeType?: string | string[];
  /** How to capture (default `auto`): `webcodecs` encodes H.264 (and Opus, else AAC) with the
   * browser's WebCodecs encoders and muxes live Matroska on the page, sending each frame as
   * soon as it is encoded; `mediarecorder` uses MediaRecorder. `auto` uses WebCodecs for a
   * camera where the browser can (else, for a shared screen, with `mimeType`, or once its
   * encoder failed mid-stream: MediaRecorder). `webcodecs` fails to start
   * (`CANT_START_RECORDER`) where it cannot, and ends the stream if the encoder fails. */
  capture?: CaptureOption;
  /** Milliseconds of media per chunk with MediaRecorder (default 250, as the original);
   * WebCodecs sends per frame, at most one chunk per 30 ms. */
  timeslice?: number;
  /** Keyframe interval asked of the recorder, in milliseconds (default 2000). */
  keyFrameIntervalMs?: number;
  /** Display name the operator sees (at most 64 characters). */
  name?: string;
  /** Start a fresh session by itself after the connection dropped mid-stream (default true). */
  reconnect?: boolean;
  /** Keep the screen on while streaming, where the browser allows it (default true). */
  wakeLock?: boolean;
  /** How long `start()`, `stop()` and a resume wait for the relay's answer, in milliseconds. */
  ackTimeoutMs?: number;
  /** Seconds of media kept until the relay acknowledges it, so that a stream can go on after
   * a connection drop (default 60). Past this, or `resumeBufferBytes`, a drop ends the
   * session and a new one starts once back. */
  resumeBufferSeconds?: number;
  /** Bytes of media kept until acknowledged (default 64 MiB). */
  resumeBufferBytes?: number;
  /** How long `stop()` waits for a dropped connection to come back, in milliseconds (default
   * 10000): once back, the client resumes the session, resends what the relay missed and
   * ends it properly, so the stream keeps its tail. Past this it ends on this side only, and
   * the relay ends the session itself after its grace period. */
  stopReconnectTimeoutMs?: number;
  /** Pause when the browser suspends the camera (a locked phone, a page put in the
   * back/forward cache or frozen) and go on with the same session when it gives it back
   * (default true). A page merely hidden keeps streaming where the browser lets it. */
  pauseWhenSuspended?: boolean;
} & FfmpegConfig;

/** Where the client's stream stands. */
export type ClientState =
  | "idle" // no stream (not started, stopped, or ended by an error)
  | "starting" // asked the relay to start, waiting for its answer
  | "live"
  | "paused"
  | "stopping"
  | "reconnecting"; // the connection dropped mid-stream; recording goes on, the session resumes once back

/** The socket.io connection to the relay. */
export type ConnectionState = "connecting" | "connected" | "disconnected";

/** Events of the original client (`error`, `destroyed`, `ffmpegOutput`), then ours. */
export type BrowserToRtmpClientEvents = {
  error: (error: ServerError) => void;
  destroyed: () => void;
  ffmpegOutput: (message: string) => void;
  state: (state: ClientState) => void;
  connection: (state: ConnectionState) => void;
  /** The connection dropped while streaming; the recorder goes on, the client resumes. */
  reconnecting: () => void;
  /** Back after a drop: the session resumed (after `resumed`) or a new one started. */
  reconnected: () => void;
  /** The session went on after a drop: the relay got every chunk recorded meanwhile. */
  resumed: () => void;
  /** The session could not go on: a new one starts (`refused`: after a drop the relay had
   * ended it; `overflow`: more was recorded during a drop than the client keeps; `encoder`:
   * the browser's WebCodecs encoder failed, the new session records with MediaRecorder;
   * `audio`: the same for WebCodecs' audio; `no-media`: nothing was recorded, the new session
   * records the other way, see `noMedia`). */
  restarting: (reason: RestartReason) => void;
  /** Nothing was recorded in the first 5 s of recording: what failed, and the capture way
   * the client switches to (by itself, once per page, under `capture: "auto"`). */
  noMedia: (info: NoMediaInfo) => void;
  /** One of the relay's destinations changed state (our relay only). */
  outputState: (status: OutputStateEvent) => void;
  /** What the relay's health checks find wrong with the stream now (our relay only); an
   * empty list: all well again. */
  health: (warnings: HealthWarningEvent[]) => void;
  /** The browser suspended capture: the client paused the stream (the session stays). */
  suspended: (reason: SuspendReason) => void;
  /** The browser gave capture back: the client went on with the same session. */
  unsuspended: () => void;
  /** A stream ended by `stop()`: how its end reached the relay. */
  stopped: (outcome: StopOutcome) => void;
};

export type RestartReason = "refused" | "overflow" | "encoder" | "audio" | "no-media";

/** What the no-media watchdog found: what failed (`cause`, `detail`), with which capture way
 * (`method`), and the way the client now tries (`switchingTo`; undefined: none left, or
 * `capture` was forced). */
export interface NoMediaInfo {
  cause: MediaCause;
  detail: string;
  method: CaptureMethod;
  switchingTo?: CaptureMethod;
}

/** How the client may capture: `auto` (WebCodecs where the browser can, else MediaRecorder),
 * or one of the two. */
export type CaptureOption = "auto" | "webcodecs" | "mediarecorder";

/** What records a stream: the browser's encoders through WebCodecs, muxed on the page, or
 * MediaRecorder. */
export type CaptureMethod = "webcodecs" | "mediarecorder";

/** Why capture is suspended: `muted`, the browser stopped the camera's frames (a phone's
 * locked screen or a page in the background); `frozen`, the browser froze the page;
 * `bfcache`, the page went into the back/forward cache. */
export type SuspendReason = "muted" | "frozen" | "bfcache";

/** How `stop()` ended a session: `ended`, the relay ended it with its every chunk;
 * `unreachable`, the connection did not come back in time, so the client ended on its own
 * (the relay ends the session after its grace period); `gone`, the relay had ended it. */
export type StopOutcome = "ended" | "unreachable" | "gone";

/** The relay's `outputState` event: one destination of the stream (its key masked). */
export interface OutputStateEvent {
  id: string;
  target: string;
  state: "connecting" | "live" | "reconnecting" | "stopped" | "failed";
  bytesSent: number;
  uptime: number;
  reconnects: number;
  attempts: number;
  nextAttemptIn: number | null;
  error: string | null;
}

/** One of the relay's health warnings: `check` names it (no_audio, low_bitrate,
 * high_bitrate, keyframe_interval, low_frame_rate, resolution_changed, output_lagging),
 * `message` says it in plain words. */
export interface HealthWarningEvent {
  check: string;
  message: string;
}

/** Our relay's `start` ack (the original server acks with nothing). */
export interface StartAck {
  sessionId: string;
  resumeToken: string;
  lastSeq: number | null;
}

/** Our relay's `resume` ack on success. */
export interface ResumeAck {
  sessionId: string;
  lastSeq: number | null;
}

export interface ServerToClientEvents {
  error: (error: ServerError) => void;
  ffmpegOutput: (message: string) => void;
  outputState: (status: OutputStateEvent) => void;
  health: (warnings: HealthWarningEvent[]) => void;
}

export interface StartPayload extends FfmpegConfig {
  mimeType?: string;
  name?: string;
}

export type ChunkAck = (error?: ServerError | null, info?: { duplicate?: boolean }) => void;

export interface ClientToServerEvents {
  start: (config: StartPayload, callback: (ack?: StartAck) => void) => void;
  /** `(data, ack)` unnumbered (the original's form), or `(data, seq, ack)` numbered (our
   * relay only); a duplicate numbered chunk is acked `(null, {duplicate: true})`. */
  binarystream: (data: ArrayBuffer, seqOrAck: number | ChunkAck, ack?: ChunkAck) => void;
  stop: (callback: () => void) => void;
  resume: (
    request: { sessionId: string; token: string },
    callback: (answer: ResumeAck | ServerError) => void,
  ) => void;
}
