/**
 * A bounded queue of captured samples (VideoFrame or AudioData) between what produces them on
 * the page (a video element's frames, an AudioWorklet's blocks) and the encoder's feed, with
 * the reading surface of a ReadableStream's reader so that the feed reads it as it reads a
 * MediaStreamTrackProcessor. Unlike a ReadableStream it closes what it drops or still holds
 * when cancelled (an unclosed VideoFrame holds a camera buffer until garbage collection), and
 * counts what it had no room for.
 */

/** What the queue holds: closed once dropped or discarded. */
export interface Closable {
  close(): void;
}

export class SampleQueue<T extends Closable> {
  /** Samples offered while the queue was full: never queued. */
  dropped = 0;
  /** Samples offered at all (queued, dropped or held off): what arrived from the track. */
  arrived = 0;
  /** While true (a capture trial, before anyone reads), offered samples are only counted:
   * never made, queued or dropped. */
  holding = false;
  private readonly items: T[] = [];
  private waiting: ((result: ReadableStreamReadResult<T>) => void) | undefined;
  private ended = false;

  constructor(readonly capacity: number) {}

  /** Whether an offered sample would be dropped now. */
  get full(): boolean {
    return this.waiting === undefined && this.items.length >= this.capacity;
  }

  /** Queue the sample `make` returns, or count a drop without making it when the queue is
   * full (a VideoFrame made only to be closed costs a copy on some browsers), or only count
   * it while `holding`. False when nothing was queued. */
  offer(make: () => T): boolean {
    if (this.ended) return false;
    this.arrived += 1;
    if (this.holding) return false;
    if (this.full) {
      this.dropped += 1;
      return false;
    }
    const item = make();
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      waiting({ value: item, done: false });
    } else {
      this.items.push(item);
    }
    return true;
  }

  /** The next sample, waiting for one; done once the queue ended and is empty. */
  read(): Promise<ReadableStreamReadResult<T>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  /** No more samples will come (the track ended): reads drain what is queued, then end. */
  end(): void {
    this.ended = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  /** End now and close what is still queued (it will never be recorded). */
  cancel(): Promise<void> {
    this.end();
    for (const item of this.items.splice(0)) item.close();
    return Promise.resolve();
  }
}
