/** Errors as the client handles them: the relay's shape, for errors raised on this side too. */
import type { ServerError, StartAck } from "./types";

// Our relay reports a chunk's error both in its ack and as an `error` event.
const DUPLICATE_WINDOW_MS = 2000;

/** An error raised on this side, shaped like the relay's so that listeners handle one kind. */
export function clientError(name: string, message: string, fatal = true): ServerError {
  return { name, message, fatal };
}

export function isStartAck(value: unknown): value is StartAck {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as StartAck).sessionId === "string" &&
    typeof (value as StartAck).resumeToken === "string"
  );
}

export function isServerError(value: unknown): value is ServerError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as ServerError).name === "string" &&
    typeof (value as ServerError).message === "string"
  );
}

export function asServerError(err: unknown, name: string): ServerError {
  if (err && typeof err === "object" && "name" in err && "message" in err && "fatal" in err) {
    return err as ServerError;
  }
  const message = err instanceof Error ? err.message : String(err);
  const domName = err instanceof DOMException ? err.name : "";
  return clientError(domName === "NotSupportedError" ? "RECORDER_NOT_SUPPORTED" : name, message);
}

/** Says whether an error repeats the one just reported the other way (our relay sends a
 * chunk's error both as its ack and as an `error` event): report it once. */
export class ErrorDeduplicator {
  private last: { key: string; at: number; fromAck: boolean } | undefined;

  /** Whether to report `error` (received `fromAck` or as an event) at `now`. */
  shouldReport(error: ServerError, fromAck: boolean, now: number): boolean {
    const key = `${error.name}\n${error.message}`;
    const last = this.last;
    this.last = { key, at: now, fromAck };
    return !(last && last.key === key && last.fromAck !== fromAck && now - last.at < DUPLICATE_WINDOW_MS);
  }
}
