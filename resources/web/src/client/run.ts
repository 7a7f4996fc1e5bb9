/**
 * One run: one relay session with its recorder, from the relay's start ack to its end. It
 * sends the recorder's chunks in order (numbered and kept in its resume buffer when the relay
 * gave a resume token, else unnumbered as the original client did), heartbeats while paused,
 * and the resend after a resume. Its life follows RUN_TRANSITIONS (state.ts).
 */
import type { RelaySocket } from "./connection";
import type { BufferLimits } from "./resume-buffer";
import { type HeldChunk, ResumeBuffer } from "./resume-buffer";
import { RUN_TRANSITIONS, type RunState, transition } from "./state";
import type { CaptureMethod, ServerError } from "./types";
import type { Recorder } from "./webcodecs";

/** What a run needs from its client. */
export interface RunLink {
  readonly socket: RelaySocket;
  /** Whether `run` is the client's current run (an older one's acks count for nothing). */
  isCurrent(run: Run): boolean;
  /** The relay refused a chunk of the current run (its ack carried `error`). */
  onChunkError(error: ServerError): void;
  /** The relay acknowledged a chunk of `bytes` of the current run. */
  onDelivered(bytes: number): void;
  /** The resume buffer's bounds now (options may change while streaming). */
  bufferLimits(): BufferLimits;
}

/** From our relay's start ack (the original server sends none). Kept in memory only, never
 * logged. */
export interface ResumeTicket {
  sessionId: string;
  token: string;
}

export class Run {
  // Reading a Blob is asynchronous: every send goes through this chain, in recorder order.
  chain: Promise<void> = Promise.resolve();
  // Unnumbered chunks sent or being read and not yet acknowledged.
  inFlight = 0;
  /** The numbered chunks kept for a resume (used only with a resume ticket). */
  readonly buffer: ResumeBuffer;
  private _state: RunState = "linked";

  constructor(
    private readonly link: RunLink,
    readonly recorder: Recorder,
    readonly mimeType: string,
    readonly capture: CaptureMethod,
    // Milliseconds of media one chunk spans: MediaRecorder's timeslice, or WebCodecs' chunk
    // interval (its chunks go out per frame).
    readonly chunkMs: number,
    // Then chunks are numbered and the session can be resumed.
    readonly resume: ResumeTicket | undefined,
  ) {
    this.buffer = new ResumeBuffer(chunkMs);
  }

  // ---- state (RUN_TRANSITIONS) ------------------------------------------------------------

  get state(): RunState {
    return this._state;
  }

  private to(next: RunState): void {
    this._state = transition(RUN_TRANSITIONS, this._state, next, "run");
  }

  /** Over on this side: nothing more goes out. */
  get ended(): boolean {
    return this._state === "ended";
  }

  /** A stop has begun (stop(), or the switch away from a failed encoder), or the run ended
   * that way: the recorder's own stop or error is then no news. */
  get stopping(): boolean {
    return this._state !== "linked" && this._state !== "unlinked";
  }

  /** Chunks go out as they come; false from a drop until the resend after a resume is queued. */
  get linked(): boolean {
    return this._state === "linked" || this._state === "stopping";
  }

  /** The connection dropped: hold chunks for the resume. */
  unlink(): void {
    if (this._state === "linked") this.to("unlinked");
    else if (this._state === "stopping") this.to("stopping-unlinked");
  }

  /** The relay has the session again on this socket: chunks go out again. */
  relink(): void {
    if (this._state === "unlinked") this.to("linked");
    else if (this._state === "stopping-unlinked") this.to("stopping");
  }

  beginStop(): void {
    if (this._state === "linked") this.to("stopping");
    else if (this._state === "unlinked") this.to("stopping-unlinked");
  }

  /** End on this side (the recorder is left as it is); what the relay lacks it never gets. */
  end(): void {
    this.to("ended");
  }

  /** End on this side without telling the relay (it ended, or is gone), and stop the
   * recorder. */
  drop(): void {
    this.end();
    if (this.recorder.state !== "inactive") {
      try {
        this.recorder.stop();
      } catch {
        // already stopping
      }
    }
  }

  /** Whether a drop now would be bridged by a resume (our relay, buffer not overflowed). */
  get canResume(): boolean {
    return this.resume !== undefined && !this.buffer.overflowed && !this.ended;
  }

  /** Chunks sent or being read but not yet acknowledged. */
  get pendingChunks(): number {
    return this.resume ? this.buffer.length : this.inFlight;
  }

  // ---- chunks -----------------------------------------------------------------------------

  /** The recorder's `dataavailable`. */
  onData(event: Event): void {
    const blob = (event as BlobEvent).data;
    if (!blob || blob.size === 0) return;
    const at = Date.now();
    const socket = this.link.socket;
    if (this.resume) {
      // Reading a Blob is asynchronous: chaining keeps the chunks in recorder order.
      this.chain = this.chain
        .then(async () => {
          const data = await blob.arrayBuffer();
          if (this.ended) return;
          const chunk = this.buffer.number(data, at);
          this.buffer.hold(chunk, this.link.bufferLimits());
          // While the connection is down the chunk waits in the buffer for the resume.
          if (this.linked && socket.connected) this.sendChunk(chunk);
        })
        .catch(() => undefined);
      return;
    }
    this.inFlight += 1;
    // The chunk goes as an untyped ArrayBuffer: socket.io sends it as one binary websocket
    // frame.
    this.chain = this.chain
      .then(async () => {
        const data = await blob.arrayBuffer();
        // Media of an ended session must not reach the next one (socket.io would buffer it
        // while disconnected and send it after reconnecting).
        if (this.ended || !socket.connected) {
          this.inFlight -= 1;
          return;
        }
        socket.emit("binarystream", data, (error?: ServerError | null) => {
          this.inFlight -= 1;
          if (error) {
            if (!this.ended && this.link.isCurrent(this)) this.link.onChunkError(error);
            return;
          }
          if (this.link.isCurrent(this)) this.link.onDelivered(data.byteLength);
        });
      })
      .catch(() => {
        this.inFlight -= 1;
      });
  }

  /** Send a numbered chunk; its ack releases it (and any before it) from the buffer. */
  private sendChunk(chunk: HeldChunk): void {
    this.link.socket.emit("binarystream", chunk.data, chunk.seq, (error?: ServerError | null) => {
      if (error) {
        if (!this.ended && this.link.isCurrent(this)) this.link.onChunkError(error);
        return;
      }
      // Acks come in order; a duplicate (resent after a resume) was taken before.
      this.buffer.acknowledge(chunk.seq);
      if (this.link.isCurrent(this)) this.link.onDelivered(chunk.data.byteLength);
    });
  }

  /** An empty chunk, which the relay takes as a heartbeat (sent while paused). */
  sendHeartbeat(): void {
    const socket = this.link.socket;
    // Through the chain, so it never overtakes a chunk still being read.
    this.chain = this.chain.then(() => {
      if (this.ended || !this.linked || !socket.connected) return;
      // Unnumbered: a heartbeat carries no media, so a resume has nothing to resend for it.
      socket.emit("binarystream", new ArrayBuffer(0), (error?: ServerError | null) => {
        if (error && !this.ended && this.link.isCurrent(this)) this.link.onChunkError(error);
      });
    });
  }

  /** The relay took the session back and has every chunk up to `lastSeq`: resend the rest,
   * after every chunk read so far and before any read from now on, and go on live. Resolves
   * whether the run is linked again (false: dropped again, or ended meanwhile). */
  async resendFrom(lastSeq: number | null): Promise<boolean> {
    this.chain = this.chain.then(() => {
      if (this.ended || !this.link.socket.connected) return;
      for (const chunk of this.buffer.resendFrom(lastSeq)) this.sendChunk(chunk);
      this.relink();
    });
    await this.chain;
    return this.linked;
  }
}
