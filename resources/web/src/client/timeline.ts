/**
 * The WebCodecs recorder's media timeline, in seconds from its first sample: where each
 * captured sample goes (each track placed by its first sample, pauses left out, as
 * MediaRecorder's timestamps go on without them). Pure: the caller passes the time.
 */

/** Where a sample goes on the timeline, and the offset its track keeps from then on. */
export interface Placement {
  timestamp: number;
  offset: number;
}

export class Timeline {
  // When the timeline began (the caller's clock, seconds), and the pauses in it (timeline
  // seconds), which the written timestamps leave out.
  private start: number | undefined;
  private readonly pauses: Array<[number, number]> = [];
  private pausedAt: number | undefined;

  /** Pause at `now` (the caller's clock, seconds). */
  pause(now: number): void {
    if (this.start !== undefined && this.pausedAt === undefined) this.pausedAt = now - this.start;
  }

  /** Resume at `now`: the time since the pause is left out of the timestamps. */
  resume(now: number): void {
    if (this.pausedAt !== undefined && this.start !== undefined) this.pauses.push([this.pausedAt, now - this.start]);
    this.pausedAt = undefined;
  }

  /** Where a sample captured at `captured` (its track's clock, seconds) goes when it is read
   * at `now`, given its track's `offset` (undefined for the track's first sample: the track
   * is placed so that this sample lands at `now`); undefined to drop it (captured during a
   * pause). */
  place(captured: number, offset: number | undefined, now: number): Placement | undefined {
    this.start ??= now;
    const trackOffset = offset ?? now - this.start - captured;
    const time = captured + trackOffset;
    let paused = 0;
    for (const [from, to] of this.pauses) {
      if (time >= to) paused += to - from;
      else if (time >= from) return undefined;
    }
    return { timestamp: time - paused, offset: trackOffset };
  }
}
