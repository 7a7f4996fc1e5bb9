/** Page suspension: what makes the browser withhold capture (a muted camera track, a frozen
 * page, a page in the back/forward cache). The client pauses while any holds (heartbeats keep
 * the session) and goes on with the same session when all are over; the decision is the
 * client's (`applySuspension`), the watching is here. */
import { isScreenTrack } from "./capture";
import type { SuspendReason } from "./types";

export class SuspensionWatch {
  // What the browser suspended besides a muted camera (read from the tracks themselves).
  private readonly reasons = new Set<SuspendReason>();
  private unwatchTracks: (() => void) | undefined;

  /** `onChange` runs whenever what suspends capture may have changed. */
  constructor(private readonly onChange: () => void) {}

  /** Follow the page's lifecycle: a frozen page, or one in the back/forward cache, records
   * nothing, and its timers and socket may stop. */
  watchPage(): void {
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
      if (document.visibilityState === "visible") this.reasons.clear();
      this.onChange();
    });
  }

  /** A camera's track is muted while the browser withholds its frames (a locked phone, a page
   * in the background): follow the tracks of `stream` (and no longer the previous ones). */
  watchTracks(stream: MediaStream): void {
    this.unwatchTracks?.();
    const tracks = stream.getVideoTracks();
    const onChange = (): void => this.onChange();
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
    this.reasons.add(reason);
    this.onChange();
  }

  private unsuspend(reason: SuspendReason): void {
    this.reasons.delete(reason);
    this.onChange();
  }

  /** What keeps capture of `stream` suspended now, if anything. */
  reason(stream: MediaStream): SuspendReason | undefined {
    for (const reason of this.reasons) return reason;
    // A shared screen is left out: its picture may stop while the shared window is minimized
    // or still, and the stream (its sound) is to go on; a person chose what it shows.
    const muted = stream
      .getVideoTracks()
      .some((track) => track.readyState === "live" && track.muted && !isScreenTrack(track));
    return muted ? "muted" : undefined;
  }
}
