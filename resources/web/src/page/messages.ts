/** What the page tells a person: plain sentences, never error codes. */
import type { MediaCause } from "../client/media-check";
import type { CaptureMethod, NoMediaInfo, ServerError, SuspendReason } from "../client/types";

const SERVER_MESSAGES: Record<string, string> = {
  MAX_STREAMS_REACHED:
    "The relay is already sending as many streams as it allows. Try again when another stream has ended.",
  RELAY_BUSY:
    "The relay is at capacity: its computer has no room for another stream right now. The streams it has go on; try again in a while.",
  TARGET_NOT_ALLOWED: "The relay does not accept that stream address. Ask the operator which one to use.",
  INVALID_PARAMETERS: "The relay did not accept this stream's settings.",
  UNSUPPORTED_MEDIA: "The relay cannot use the video this browser records. Try another browser.",
  FFMPEG_NOT_FOUND: "The relay cannot stream right now: its video tool (ffmpeg) is missing. Tell the operator.",
  CANT_START_FFMPEG: "The relay could not start your stream. Tell the operator.",
  RTMP_CONNECTION_FAILED:
    "The relay could not reach the streaming service. Check the stream address, or tell the operator.",
  OUTPUT_RECONNECTING:
    "The streaming service is not taking the stream right now; the relay keeps trying to reconnect. Your video still reaches the relay.",
  FFMPEG_UNEXPECTED_END: "The relay's stream ended unexpectedly. You can start again.",
  FFMPEG_ERROR: "The relay's stream ended unexpectedly. You can start again.",
  FFMPEG_WRITE_ERROR: "The relay's stream ended unexpectedly. You can start again.",
  FFMPEG_NOT_RUNNING: "The relay is not running your stream any more.",
  RELAY_OVERLOADED:
    "The relay could not forward your video as fast as it arrived, so it ended the stream. Try a lower quality.",
  KILLED_BY_OPERATOR: "The operator ended your stream.",
  RELAY_SHUTTING_DOWN: "The relay is shutting down.",
  ALREADY_STARTED: "This stream is already running.",
  AUTH_FAILED:
    "This relay only accepts devices that opened its join link. Open the link or scan the QR code shown in Desktop Relay's window.",
  CHUNK_TOO_LARGE: "The browser sent more video at once than the relay accepts. Try a lower quality.",
  RATE_LIMITED: "The stream used more bandwidth than the relay allows, so it was ended. Try a lower quality.",
  IDLE_TIMEOUT: "No video reached the relay for a while, so it ended the stream. You can start again.",
  // Raised by the client itself.
  CONNECTION_LOST: "The connection to the relay was lost.",
  DISCONNECTED_BY_RELAY: "The relay closed the connection.",
  CANNOT_CONNECT: "Cannot reach the relay. Check that this device is on the same network and the relay is running.",
  START_TIMEOUT: "The relay did not answer. Try again.",
  RECORDER_NOT_SUPPORTED: "This browser cannot record video in a format the relay accepts. Try another browser.",
  CANT_START_RECORDER: "This browser could not start recording.",
  RECORDER_ERROR: "Recording stopped because of a problem in the browser.",
};

// Around a connection drop (the client keeps recording and resumes its session).
export function reconnectingText(heldSeconds: number | undefined): string {
  if (heldSeconds === undefined) {
    return "The connection to the relay dropped. Reconnecting; the stream will start again by itself.";
  }
  return `The connection to the relay dropped. Reconnecting… (holding ${Math.round(heldSeconds)} s of video)`;
}

export const BACK_LIVE = "Back live: the relay got the video recorded during the break.";
export const BACK_PAUSED = "Reconnected. Press Resume to go on streaming.";
export const RESTARTED = "Reconnected: the stream started again as a new session. Viewers may have seen a short break.";
export const RESUME_REFUSED = "The relay ended this stream: starting a new one.";
export const RESUME_OVERFLOW = "The break was too long to keep all the video: starting a new stream.";
export const ENCODER_FAILED =
  "The browser's video encoder failed, so the stream started again as a new session with the browser's recorder. Viewers may have seen a short break.";
export const AUDIO_FAILED =
  "The microphone's sound stopped reaching the browser's audio encoder, so the stream started again as a new session with the browser's recorder. Viewers may have seen a short break.";

// What failed, as a person can act on it: the sentence's middle, and what to try.
const CAUSE_TEXT: Record<MediaCause, { what: string; tryThis: string }> = {
  "audio-start": {
    what: "the browser's sound did not start",
    tryThis: "Try again, pick another microphone (or “No microphone”), or use another browser.",
  },
  audio: {
    what: "no sound came from the microphone",
    tryThis: "Check that no other app uses the microphone, pick another one (or “No microphone”), or use another browser.",
  },
  video: {
    what: "no picture came from the camera",
    tryThis: "Check that no other app uses the camera, pick another camera, or reload the page.",
  },
  "video-encoder": {
    what: "the browser's video encoder made nothing",
    tryThis: "Reload the page, or use another browser.",
  },
  recorder: {
    what: "the browser's recorder made no video",
    tryThis: "Reload the page, or use another browser.",
  },
  unsupported: {
    what: "this browser cannot encode this video here",
    tryThis: "Use a recent Chrome, Edge, Firefox or Safari.",
  },
};

// What failed mid-stream (RECORDER_ERROR), where it differs from "made nothing".
const FAILED_TEXT: Partial<Record<MediaCause, string>> = {
  audio: "the microphone's sound could not be encoded",
  "video-encoder": "the browser's video encoder failed",
  recorder: "the browser's recorder failed",
};

const METHOD_TEXT: Record<CaptureMethod, string> = {
  webcodecs: "the browser's encoder (WebCodecs)",
  mediarecorder: "the browser's recorder (MediaRecorder)",
};

/** Live, but nothing recorded for 5 s: what failed, and what the page does or what to try. */
export function noMediaText(info: NoMediaInfo): string {
  const cause = CAUSE_TEXT[info.cause];
  const lead = `Nothing is being recorded: ${cause.what} in the first 5 seconds`;
  if (info.switchingTo) {
    return `${lead} with ${METHOD_TEXT[info.method]}. Trying ${METHOD_TEXT[info.switchingTo]} instead; the stream starts again by itself.`;
  }
  return `${lead}, so viewers get nothing. ${cause.tryThis}`;
}

/** Live again after the no-media switch. */
export function switchedText(info: NoMediaInfo): string {
  const to = info.switchingTo ?? info.method;
  return `Live again, now recorded by ${METHOD_TEXT[to]}: with ${METHOD_TEXT[info.method]} ${CAUSE_TEXT[info.cause].what}.`;
}

/** A capture error (the client's, with a cause) in words that name what failed. */
function describeCaptureError(error: ServerError, cause: MediaCause): string {
  const text = CAUSE_TEXT[cause];
  const sentence = `${text.what.charAt(0).toUpperCase()}${text.what.slice(1)}.`;
  switch (error.name) {
    case "CANT_START_RECORDER":
    case "RECORDER_NOT_SUPPORTED":
      return `This browser could not start recording: ${text.what}. ${text.tryThis}`;
    case "RECORDER_ERROR":
      return `Recording stopped: ${FAILED_TEXT[cause] ?? text.what}. ${text.tryThis}`;
    default:
      return `${sentence} ${text.tryThis}`;
  }
}

/** The relay's destination (RTMP service or recording) is reconnecting: attempt `n`. */
export function outputReconnectingText(attempt: number): string {
  return `The stream service is reconnecting (attempt ${attempt}). The relay keeps trying to reconnect; your video still reaches the relay.`;
}

export const OUTPUT_BACK = "The stream service is taking the stream again.";

/** The client paused because the browser suspended capture; the session waits. */
export function suspendedText(reason: SuspendReason, hidden: boolean): string {
  if (hidden) return "Paused while the page is hidden. The stream goes on when you come back to it.";
  if (reason === "muted") {
    return "Paused: the browser stopped the camera for now (another app may be using it). The stream goes on when it is back.";
  }
  return "Paused while the browser holds this page. The stream goes on when it is back.";
}

export const BACK_LIVE_SUSPENDED = "Back live: the stream goes on where it paused.";

// Stop while the connection to the relay is down.
export const STOPPING_OFFLINE = "Stopping: waiting for the connection to the relay, to send it the end of the stream…";
export const STOPPED_UNREACHABLE = "Stopped. The relay was unreachable; it ends the stream by itself shortly.";
export const STOPPED_GONE = "Stopped. The relay had already ended the stream.";

/** A sentence for an error from the relay or the client. */
export function describeServerError(error: ServerError): string {
  if (error.cause !== undefined && CAUSE_TEXT[error.cause]) return describeCaptureError(error, error.cause);
  const known = SERVER_MESSAGES[error.name];
  if (known) return known;
  // An error this page does not know: the relay's messages are written for people.
  return error.message || "The relay reported a problem.";
}

/** A sentence for a failure to get the camera, microphone or screen. */
export function describeMediaError(err: unknown, what: "camera" | "screen"): string {
  const name = err instanceof DOMException || err instanceof Error ? err.name : "";
  const device = what === "camera" ? "camera or microphone" : "screen";
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
      return what === "camera"
        ? "The browser was not allowed to use the camera or microphone. Allow it in the address bar, then try again."
        : "Screen sharing was cancelled or not allowed.";
    case "NotFoundError":
    case "OverconstrainedError":
      return `No ${device} was found.`;
    case "NotReadableError":
    case "AbortError":
      return `The ${device} is busy or unavailable (another app may be using it).`;
    case "NotSupportedError":
      return what === "screen" ? "This browser cannot share the screen." : "This browser cannot use a camera here.";
    default:
      return `Could not use the ${device}${err instanceof Error && err.message ? `: ${err.message}` : "."}`;
  }
}

/** Why a plain-http page on a network address cannot stream, and what to open instead. */
export function insecurePage(host: string): string {
  return (
    `The camera needs https. Browsers allow the camera, microphone and screen only on secure pages, ` +
    `and this page was opened with http://${host}. Open the relay's https:// join link (or scan the ` +
    `QR code in Desktop Relay's window). If it has none, the operator must turn https on: the relay ` +
    `serves plain http only when started with --no-tls.`
  );
}

export const NO_CAMERA_API =
  "This browser cannot use a camera or microphone on this page. Use a recent Chrome, Edge, Firefox or Safari.";

export const NO_RECORDER =
  "This browser cannot record video (MediaRecorder is missing). Use a recent Chrome, Edge, Firefox or Safari.";
