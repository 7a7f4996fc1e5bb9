import type { ManagerOptions, SocketOptions } from "socket.io-client";

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
   * browser records it (the relay then copies video), else VP8/VP9 WebM, else MP4. */
  mimeType?: string | string[];
  /** Milliseconds of media per chunk (default 250, as the original). */
  timeslice?: number;
  /** Keyframe interval asked of the recorder, in milliseconds (default 2000). */
  keyFrameIntervalMs?: number;
  /** Display name the operator sees (at most 64 characters). */
  name?: string;
  /** Start a fresh session by itself after the connection dropped mid-stream (default true). */
  reconnect?: boolean;
  /** Keep the screen on while streaming, where the browser allows it (default true). */
  wakeLock?: boolean;
  /** How long `start()` and `stop()` wait for the relay's answer, in milliseconds. */
  ackTimeoutMs?: number;
} & FfmpegConfig;

/** Where the client's stream stands. */
export type ClientState =
  | "idle" // no stream (not started, stopped, or ended by an error)
  | "starting" // asked the relay to start, waiting for its answer
  | "live"
  | "paused"
  | "stopping"
  | "reconnecting"; // the connection dropped mid-stream; a new session starts once back

/** The socket.io connection to the relay. */
export type ConnectionState = "connecting" | "connected" | "disconnected";

/** Events of the original client (`error`, `destroyed`, `ffmpegOutput`), then ours. */
export type BrowserToRtmpClientEvents = {
  error: (error: ServerError) => void;
  destroyed: () => void;
  ffmpegOutput: (message: string) => void;
  state: (state: ClientState) => void;
  connection: (state: ConnectionState) => void;
  /** The connection dropped while streaming; the client will start a new session. */
  reconnecting: () => void;
  /** A new session started after a drop; the stream goes on from here. */
  reconnected: () => void;
};

export interface ServerToClientEvents {
  error: (error: ServerError) => void;
  ffmpegOutput: (message: string) => void;
}

export interface StartPayload extends FfmpegConfig {
  mimeType?: string;
  name?: string;
}

export interface ClientToServerEvents {
  start: (config: StartPayload, callback: () => void) => void;
  binarystream: (data: ArrayBuffer, callback: (error?: ServerError) => void) => void;
  stop: (callback: () => void) => void;
}
