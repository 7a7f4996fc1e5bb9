/** Keeps the screen on while streaming, where the browser offers the Screen Wake Lock API. */

// Not in every TypeScript DOM library version, and absent from many browsers.
interface WakeLockSentinelLike {
  released: boolean;
  release(): Promise<void>;
}
interface WakeLockLike {
  request(type: "screen"): Promise<WakeLockSentinelLike>;
}

export class ScreenWakeLock {
  private sentinel: WakeLockSentinelLike | null = null;
  private wanted = false;
  private requesting = false;
  private readonly onShown = (): void => {
    // The browser drops the lock whenever the page is hidden (and a frozen or cached page is
    // hidden too): take it again on return.
    if (this.wanted) void this.request();
  };

  /** Whether this browser can hold a wake lock (it needs a secure context). */
  static get available(): boolean {
    return typeof navigator !== "undefined" && "wakeLock" in navigator;
  }

  get held(): boolean {
    return this.sentinel !== null && !this.sentinel.released;
  }

  acquire(): void {
    if (this.wanted || !ScreenWakeLock.available) return;
    this.wanted = true;
    document.addEventListener("visibilitychange", this.onShown);
    document.addEventListener("resume", this.onShown);
    window.addEventListener("pageshow", this.onShown);
    void this.request();
  }

  release(): void {
    if (!this.wanted) return;
    this.wanted = false;
    document.removeEventListener("visibilitychange", this.onShown);
    document.removeEventListener("resume", this.onShown);
    window.removeEventListener("pageshow", this.onShown);
    const sentinel = this.sentinel;
    this.sentinel = null;
    if (sentinel && !sentinel.released) void sentinel.release().catch(() => undefined);
  }

  private async request(): Promise<void> {
    // A hidden page is refused anyway; one request at a time, or a lock would be left over.
    if (this.held || this.requesting || document.visibilityState !== "visible") return;
    this.requesting = true;
    try {
      const wakeLock = (navigator as unknown as { wakeLock: WakeLockLike }).wakeLock;
      const sentinel = await wakeLock.request("screen");
      if (this.wanted) this.sentinel = sentinel;
      else void sentinel.release();
    } catch {
      // Refused (low battery, hidden page, permissions policy): streaming goes on without it.
    } finally {
      this.requesting = false;
    }
  }
}
