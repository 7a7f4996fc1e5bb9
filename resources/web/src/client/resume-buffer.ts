/**
 * The resume buffer of one run: its chunks numbered from 0, each kept until the relay
 * acknowledges it, so that after a connection drop the client can resend what the relay
 * missed (from the relay's `lastSeq + 1`). Bounded by media time and by bytes: past either
 * bound it overflows, gives its memory back and keeps nothing more (the run can no longer be
 * resumed without a gap). Pure: no DOM, no socket (unit-tested in Node).
 */

// What a session keeps for a resume, until the relay acknowledges it: a phone's network change
// takes seconds; a minute covers a walk between Wi-Fi and mobile data.
export const DEFAULT_RESUME_BUFFER_SECONDS = 60;
export const DEFAULT_RESUME_BUFFER_BYTES = 64 * 1024 * 1024;

/** A numbered chunk kept until the relay acknowledges it. */
export interface HeldChunk {
  seq: number;
  data: ArrayBuffer;
  at: number; // when the recorder gave it (epoch ms)
}

/** How much the buffer may keep. */
export interface BufferLimits {
  maxBytes: number;
  maxMs: number;
}

/** The limits from the client's options (`resumeBufferSeconds`, `resumeBufferBytes`). */
export function bufferLimits(options: { resumeBufferSeconds?: number; resumeBufferBytes?: number }): BufferLimits {
  return {
    maxBytes: options.resumeBufferBytes ?? DEFAULT_RESUME_BUFFER_BYTES,
    maxMs: (options.resumeBufferSeconds ?? DEFAULT_RESUME_BUFFER_SECONDS) * 1000,
  };
}

export class ResumeBuffer {
  private held: HeldChunk[] = [];
  private heldBytes = 0;
  private next = 0;
  private _overflowed = false;

  /** `chunkMs`: the media one chunk spans (MediaRecorder's timeslice, WebCodecs' interval). */
  constructor(readonly chunkMs: number) {}

  /** Give the next chunk its number. A new session numbers from 0 (the relay takes any first
   * number). */
  number(data: ArrayBuffer, at: number): HeldChunk {
    const chunk = { seq: this.next, data, at };
    this.next += 1;
    return chunk;
  }

  /** Keep a numbered chunk until its ack. Past a bound the buffer overflows: it drops all it
   * kept and keeps nothing from then on. Returns whether the chunk is kept. The limits are
   * read per chunk (setOptions() may change them while streaming). */
  hold(chunk: HeldChunk, limits: BufferLimits): boolean {
    if (this._overflowed) return false;
    this.held.push(chunk);
    this.heldBytes += chunk.data.byteLength;
    const spanMs = chunk.at - this.held[0].at + this.chunkMs;
    if (this.heldBytes > limits.maxBytes || spanMs > limits.maxMs) {
      // A resume would leave a gap the relay cannot fill: give the memory back now.
      this._overflowed = true;
      this.clear();
      return false;
    }
    return true;
  }

  /** The relay has every chunk up to `upTo`: release them. Acks come in order; a late or
   * duplicate one (a chunk resent after a resume) releases nothing more. */
  acknowledge(upTo: number): void {
    while (this.held.length > 0 && this.held[0].seq <= upTo) {
      const done = this.held.shift() as HeldChunk;
      this.heldBytes -= done.data.byteLength;
    }
  }

  /** What to resend after a resume whose answer says the relay has everything up to
   * `lastSeq` (null: nothing yet): releases those, returns the rest in order. */
  resendFrom(lastSeq: number | null): HeldChunk[] {
    if (lastSeq !== null) this.acknowledge(lastSeq);
    return [...this.held];
  }

  /** Forget everything kept (the session is over: what the relay lacks it never gets). */
  clear(): void {
    this.held = [];
    this.heldBytes = 0;
  }

  /** More was recorded than the buffer keeps: this session cannot be resumed any more. */
  get overflowed(): boolean {
    return this._overflowed;
  }

  /** The number the next chunk gets. */
  get nextSeq(): number {
    return this.next;
  }

  /** Chunks kept (sent or not) and not yet acknowledged. */
  get length(): number {
    return this.held.length;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  /** Seconds of media kept. */
  get seconds(): number {
    const held = this.held;
    if (held.length === 0) return 0;
    return (held[held.length - 1].at - held[0].at + this.chunkMs) / 1000;
  }

  /** The sequence numbers kept, in order (for diagnostics and tests). */
  get seqs(): number[] {
    return this.held.map((chunk) => chunk.seq);
  }
}
