/** The socket.io connection to the relay: its address, how to wait for it, how to cycle it,
 * and what `start` sends. */
import { io, type Socket } from "socket.io-client";

import { clientError, isServerError } from "./errors";
import { DEFAULT_OPTIONS, type Options } from "./options";
import type { BrowserToRtmpClientOptions, ClientToServerEvents, ServerError, ServerToClientEvents, StartPayload } from "./types";

export type RelaySocket = Socket<ServerToClientEvents, ClientToServerEvents>;

const MAX_NAME_LENGTH = 64;

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

/** What `start` sends: the original's fields, plus the recorded type and the display name. */
export function startPayload(o: Options, mimeType: string): StartPayload {
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

export class RelayConnection {
  readonly socket: RelaySocket;
  /** The relay's address (undefined: the page's origin). */
  readonly url: string | undefined;
  /** Why the last connection attempt failed. */
  lastConnectError: string | undefined;
  // Set while the client drops a socket that it reconnects at once (socket.io then says
  // "inactive" for a moment: it is no lost connection).
  private _cycling = false;

  constructor(options: BrowserToRtmpClientOptions) {
    const socketOptions = {
      reconnectionDelayMax: 10000,
      // Long-polling mangles binary chunks (and the relay serves websocket only).
      transports: ["websocket"],
      ...(options.socketio ?? {}),
    };
    this.url = serverUrl(options.host, options.port);
    this.socket = this.url === undefined ? io(socketOptions) : io(this.url, socketOptions);
  }

  /** Whether a disconnect now is reconnectNow()'s own. */
  get cycling(): boolean {
    return this._cycling;
  }

  /** Connect again now: drops a connection that is up but does not answer, and cuts
   * socket.io's wait between attempts (its backoff starts over). */
  reconnectNow(): void {
    this._cycling = true;
    try {
      this.socket.disconnect();
    } finally {
      this._cycling = false;
    }
    this.socket.connect();
  }

  /** Resolve once connected, connecting if socket.io gave up; reject with the relay's refusal
   * or CANNOT_CONNECT after `timeoutMs`. */
  waitConnected(timeoutMs: number): Promise<void> {
    const socket = this.socket;
    if (socket.connected) return Promise.resolve();
    // After the relay closed the socket (for example the operator ended the stream) socket.io
    // does not reconnect by itself.
    if (!socket.active) socket.connect();
    return new Promise<void>((resolve, reject) => {
      const done = (error?: ServerError): void => {
        clearTimeout(timer);
        socket.off("connect", onConnect);
        socket.off("connect_error", onError);
        if (error) reject(error);
        else resolve();
      };
      const onConnect = (): void => done();
      const onError = (err: Error): void => {
        // Refused by the relay: waiting longer would not help.
        if (socket.active) return;
        const data = (err as { data?: unknown }).data;
        done(isServerError(data) ? data : clientError("CANNOT_CONNECT", `Cannot reach the relay (${err.message})`));
      };
      const timer = setTimeout(() => {
        const reason = this.lastConnectError ? ` (${this.lastConnectError})` : "";
        done(clientError("CANNOT_CONNECT", `Cannot reach the relay${reason}`));
      }, timeoutMs);
      socket.on("connect", onConnect);
      socket.on("connect_error", onError);
    });
  }

  /** Whether the socket connects within `ms` (socket.io keeps trying by itself). */
  waitForConnection(ms: number): Promise<boolean> {
    const socket = this.socket;
    if (socket.connected) return Promise.resolve(true);
    if (!socket.active) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const done = (connected: boolean): void => {
        clearTimeout(timer);
        socket.off("connect", onConnect);
        resolve(connected);
      };
      const onConnect = (): void => done(true);
      const timer = setTimeout(() => done(false), ms);
      socket.on("connect", onConnect);
    });
  }
}
