/** The join page: pick a source, preview it, and stream it through the relay. */
import { BrowserToRtmpClient } from "../client/index";
import type {
  CaptureOption,
  ClientState,
  HealthWarningEvent,
  NoMediaInfo,
  OutputStateEvent,
  RestartReason,
  ServerError,
  StopOutcome,
  SuspendReason,
} from "../client/types";
import { formatBytes, formatDuration } from "./format";
import { frameRateOf, listDevices, NO_DEVICE, openCamera, openScreen, type SourceKind, stopStream } from "./media";
import {
  BACK_LIVE,
  BACK_LIVE_SUSPENDED,
  BACK_PAUSED,
  describeMediaError,
  describeServerError,
  insecurePage,
  NO_CAMERA_API,
  NO_RECORDER,
  OUTPUT_BACK,
  outputReconnectingText,
  reconnectingText,
  AUDIO_FAILED,
  ENCODER_FAILED,
  noMediaText,
  switchedText,
  RESTARTED,
  RESUME_OVERFLOW,
  RESUME_REFUSED,
  STOPPED_GONE,
  STOPPED_UNREACHABLE,
  STOPPING_OFFLINE,
  suspendedText,
} from "./messages";

interface RelayInfo {
  allowClientTarget: boolean;
  // SHA-256 (hex with colons) of the local CA that `/ca.crt` serves, and of the certificate
  // the relay presents; null without TLS (the CA's also with the operator's own certificate).
  caFingerprint?: string | null;
  certFingerprint?: string | null;
}

type MessageKind = "error" | "warning" | "info";

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`The page lacks #${id}`);
  return found as T;
}

const ui = {
  connection: element("connection"),
  preview: element<HTMLVideoElement>("preview"),
  previewEmpty: element("preview-empty"),
  liveBadge: element("live-badge"),
  streamState: element("stream-state"),
  timeLive: element("time-live"),
  bytesSent: element("bytes-sent"),
  format: element("format"),
  message: element("message"),
  health: element("health"),
  sourceCamera: element<HTMLInputElement>("source-camera"),
  sourceScreen: element<HTMLInputElement>("source-screen"),
  cameraField: element("camera-field"),
  camera: element<HTMLSelectElement>("camera"),
  microphone: element<HTMLSelectElement>("microphone"),
  shareScreen: element<HTMLButtonElement>("share-screen"),
  name: element<HTMLInputElement>("name"),
  targetField: element("target-field"),
  target: element<HTMLInputElement>("target"),
  start: element<HTMLButtonElement>("start"),
  pause: element<HTMLButtonElement>("pause"),
  stop: element<HTMLButtonElement>("stop"),
  trustHelp: element<HTMLDetailsElement>("trust-help"),
  caFingerprintRow: element("ca-fingerprint-row"),
  caFingerprint: element("ca-fingerprint"),
  certFingerprintRow: element("cert-fingerprint-row"),
  certFingerprint: element("cert-fingerprint"),
  relayHost: element("relay-host"),
};

const STATE_TEXT: Record<ClientState, string> = {
  idle: "Not streaming",
  starting: "Starting…",
  live: "Live",
  paused: "Paused",
  stopping: "Stopping…",
  reconnecting: "Reconnecting…",
};
const NAME_KEY = "desktop-relay.name";
// A link may force the recorder type (for example `?mimeType=video/webm;codecs=vp8,opus`).
const params = new URLSearchParams(location.search);
const forcedMimeType = params.get("mimeType") || undefined;
// And how to capture (`?capture=webcodecs` or `?capture=mediarecorder`; default: automatic).
const CAPTURE_OPTIONS: readonly string[] = ["auto", "webcodecs", "mediarecorder"];
const capture = params.get("capture") ?? "";
const forcedCapture = CAPTURE_OPTIONS.includes(capture) ? (capture as CaptureOption) : undefined;
// The join link carries the relay's pairing token (`?token=`, or `#token=` which no server
// log sees); socket.io presents it in its handshake.
const token = params.get("token") || new URLSearchParams(location.hash.slice(1)).get("token") || undefined;
// Seconds of media waiting to be sent before the page warns about a slow network.
const SLOW_LINK_SECONDS = 4;

let source: SourceKind = "camera";
let stream: MediaStream | undefined;
let acquiring = false;
let slowLinkShown = false;
let client: BrowserToRtmpClient;
// Why this browser cannot stream from this page at all (insecure page, no MediaRecorder):
// Start stays disabled and the reason stays on the page.
let blocked: string | undefined;
// Why the stream is starting again after a drop, said until it is live again.
let restartNote: string | undefined;
// The relay's destinations that are reconnecting, by output id.
const reconnectingOutputs = new Set<string>();
// How the client's last stop() ended the session (its `stopped` event).
let stopOutcome: StopOutcome | undefined;
// Recent (time, bytes acknowledged) samples, for the upload rate.
let rateSamples: Array<[number, number]> = [];

// ---- messages ---------------------------------------------------------------------------

// What a message is about: getting a camera or screen fixed only clears messages about that.
type Topic = "media" | "stream" | "blocked";

function showMessage(text: string, kind: MessageKind, topic: Topic = "stream"): void {
  // Nothing else matters while the page cannot stream at all.
  if (blocked !== undefined && topic !== "blocked") return;
  ui.message.textContent = text;
  ui.message.dataset.kind = kind;
  ui.message.dataset.topic = topic;
  ui.message.hidden = false;
}

function clearMessage(topic?: Topic): void {
  if (blocked !== undefined) return;
  if (topic !== undefined && ui.message.dataset.topic !== topic) return;
  ui.message.hidden = true;
  ui.message.textContent = "";
  delete ui.message.dataset.kind;
  delete ui.message.dataset.topic;
}

// ---- sources ----------------------------------------------------------------------------

function describeTracks(s: MediaStream): string {
  const video = s.getVideoTracks()[0]?.getSettings();
  const parts: string[] = [];
  if (video?.width && video.height) parts.push(`${video.width}×${video.height}`);
  if (s.getAudioTracks().length === 0) parts.push("no sound");
  return parts.join(" · ");
}

function setStream(next: MediaStream | undefined): void {
  if (stream && stream !== next) stopStream(stream);
  stream = next;
  ui.preview.srcObject = next ?? null;
  ui.previewEmpty.hidden = next !== undefined;
  if (next) {
    for (const track of next.getTracks()) {
      track.addEventListener("ended", () => onTrackEnded(next, track));
    }
  } else {
    ui.previewEmpty.textContent =
      source === "screen" ? "Press “Choose screen” to pick what to share." : "No camera yet.";
  }
  render();
}

function onTrackEnded(owner: MediaStream, track: MediaStreamTrack): void {
  if (owner !== stream) return;
  // The person pressed the browser's "Stop sharing", or a camera was unplugged.
  const streaming = client.state !== "idle";
  if (streaming) void client.stop();
  setStream(undefined);
  if (track.kind === "video") {
    showMessage(
      source === "screen"
        ? `Screen sharing ended${streaming ? ", so the stream stopped" : ""}.`
        : `The camera stopped${streaming ? ", so the stream stopped" : ""}.`,
      "info",
    );
  }
}

async function useCamera(): Promise<void> {
  if (acquiring) return;
  acquiring = true;
  setStream(undefined);
  try {
    setStream(await openCamera({ cameraId: ui.camera.value, microphoneId: ui.microphone.value }));
    clearMessage("media");
  } catch (err) {
    showMessage(describeMediaError(err, "camera"), "error", "media");
  } finally {
    acquiring = false;
    render();
  }
  await refreshDevices();
}

async function chooseScreen(): Promise<void> {
  if (acquiring) return;
  acquiring = true;
  try {
    setStream(await openScreen(ui.microphone.value));
    clearMessage("media");
  } catch (err) {
    showMessage(describeMediaError(err, "screen"), "error", "media");
  } finally {
    acquiring = false;
    render();
  }
  await refreshDevices();
}

function fillSelect(select: HTMLSelectElement, devices: MediaDeviceInfo[], current: string, extra?: [string, string]): void {
  const previous = select.value;
  select.replaceChildren();
  devices.forEach((device, index) => {
    const label = device.label || `${device.kind === "videoinput" ? "Camera" : "Microphone"} ${index + 1}`;
    select.append(new Option(label, device.deviceId));
  });
  if (extra) select.append(new Option(extra[1], extra[0]));
  if (devices.length === 0 && !extra) select.append(new Option("Default", ""));
  const wanted = current || previous;
  if ([...select.options].some((o) => o.value === wanted)) select.value = wanted;
}

async function refreshDevices(): Promise<void> {
  try {
    const { cameras, microphones } = await listDevices();
    const videoId = stream?.getVideoTracks()[0]?.getSettings().deviceId ?? "";
    const audioTrack = stream?.getAudioTracks()[0];
    const audioId = audioTrack ? (audioTrack.getSettings().deviceId ?? "") : stream ? NO_DEVICE : "";
    if (source === "camera") fillSelect(ui.camera, cameras, videoId);
    fillSelect(ui.microphone, microphones, source === "camera" || audioTrack ? audioId : "", [NO_DEVICE, "No microphone"]);
  } catch {
    // Listing devices is a convenience: the defaults still work.
  }
}

function selectSource(next: SourceKind): void {
  if (next === source) return;
  source = next;
  setStream(undefined);
  clearMessage("media");
  if (next === "camera") void useCamera();
  render();
}

// ---- streaming --------------------------------------------------------------------------

async function start(): Promise<void> {
  clearMessage();
  slowLinkShown = false;
  if (!stream) {
    if (source === "screen") await chooseScreen();
    else await useCamera();
    if (!stream) return;
  }
  const name = ui.name.value.trim();
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // Private browsing: nothing to remember the name in.
  }
  client.setStream(stream);
  client.setOptions({
    name: name || undefined,
    rtmp: ui.targetField.hidden ? undefined : ui.target.value.trim() || undefined,
    framerate: frameRateOf(stream, 30),
    mimeType: forcedMimeType,
    capture: forcedCapture,
  });
  try {
    await client.start();
  } catch {
    // The client's `error` event already put the reason on the page.
  }
}

async function stop(): Promise<void> {
  const sent = client.bytesSent;
  const since = client.liveSince;
  // The client waits a while for the connection, so the relay still gets the stream's end.
  if (client.state === "reconnecting" && client.canResume) showMessage(STOPPING_OFFLINE, "info");
  stopOutcome = undefined;
  await client.stop();
  if (stopOutcome === "unreachable") showMessage(STOPPED_UNREACHABLE, "warning");
  else if (stopOutcome === "gone") showMessage(STOPPED_GONE, "info");
  else if (since !== undefined) {
    showMessage(`Stream stopped after ${formatDuration(Date.now() - since)} (${formatBytes(sent)} sent).`, "info");
  }
}

function onError(error: ServerError): void {
  // `outputState` says it with the attempt number (onOutputState).
  if (error.name === "OUTPUT_RECONNECTING" && reconnectingOutputs.size > 0) return;
  let text = describeServerError(error);
  if (error.cause !== undefined) text += forcedCaptureHint();
  // A warning that does not end the stream must not hide why an earlier one ended.
  if (error.fatal === false && ui.message.dataset.kind === "error" && !ui.message.hidden) return;
  showMessage(text, error.fatal === false ? "warning" : "error");
}

function onReconnecting(): void {
  restartNote = undefined;
  showMessage(reconnectingText(client.canResume ? client.heldSeconds : undefined), "warning");
}

function onRestarting(reason: RestartReason): void {
  if (reason === "encoder" || reason === "audio" || reason === "no-media") {
    // No reconnection follows: the new session goes live by itself. `noMedia` said it.
    restartNote = undefined;
    if (reason !== "no-media") showMessage(reason === "audio" ? AUDIO_FAILED : ENCODER_FAILED, "warning");
    return;
  }
  restartNote = reason === "refused" ? RESUME_REFUSED : RESUME_OVERFLOW;
  showMessage(restartNote, "warning");
}

/** After a capture failure on a link that forces the way: the page could choose better. */
function forcedCaptureHint(): string {
  if (forcedCapture === undefined || forcedCapture === "auto") return "";
  return ` This link forces “capture=${forcedCapture}”: without it the page chooses by itself.`;
}

// The no-media switch under way: said once the new session is live.
let switching: NoMediaInfo | undefined;

function onState(state: ClientState): void {
  if (state === "live" && switching && client.noMedia === undefined) {
    showMessage(switchedText(switching), "info");
    switching = undefined;
  } else if (state === "idle") {
    switching = undefined;
  }
  render();
}

/** Live, but nothing recorded: said at once, whether or not the client tries the other way. */
function onNoMedia(info: NoMediaInfo): void {
  switching = info.switchingTo ? info : undefined;
  const text = noMediaText(info) + (info.switchingTo ? "" : forcedCaptureHint());
  showMessage(text, info.switchingTo ? "warning" : "error");
  render();
}

function onSuspended(reason: SuspendReason): void {
  showMessage(suspendedText(reason, document.visibilityState === "hidden"), "info");
}

function onUnsuspended(): void {
  if (client.state === "reconnecting") {
    // Back from the suspension, but the connection is still down: "Back live" comes with it.
    showMessage(reconnectingText(client.canResume ? client.heldSeconds : undefined), "warning");
  } else if (client.state === "live" || client.state === "starting") {
    showMessage(BACK_LIVE_SUSPENDED, "info");
  }
}

/** Back with a paused stream: the person's pause, or the browser's suspension. */
function showPaused(): void {
  const reason = client.suspended;
  if (reason !== undefined) onSuspended(reason);
  else showMessage(BACK_PAUSED, "info");
}

function onReconnected(): void {
  if (client.state === "paused") showPaused();
  else if (restartNote !== undefined) showMessage(`${restartNote} ${RESTARTED}`, "info");
  else showMessage(RESTARTED, "info");
  restartNote = undefined;
}

function onOutputState(status: OutputStateEvent): void {
  if (status.state === "reconnecting") {
    reconnectingOutputs.add(status.id);
    const text = outputReconnectingText(Math.max(1, status.attempts));
    if (ui.message.dataset.kind === "error" && !ui.message.hidden) return;
    showMessage(text, "warning");
  } else if (reconnectingOutputs.delete(status.id) && status.state === "live") {
    if (ui.message.dataset.kind === "warning" && reconnectingOutputs.size === 0) showMessage(OUTPUT_BACK, "info");
  }
}

/** The relay's health warnings, each in its own words (an empty list clears them). */
function showHealth(warnings: HealthWarningEvent[]): void {
  ui.health.replaceChildren(
    ...warnings.map((warning) => {
      const item = document.createElement("li");
      item.dataset.check = warning.check;
      item.textContent = `\u26a0 ${warning.message}`;
      return item;
    }),
  );
  ui.health.hidden = warnings.length === 0;
}

// ---- rendering --------------------------------------------------------------------------

function render(): void {
  const state = client.state;
  const connection = client.connectionState;
  document.body.dataset.state = state;
  ui.connection.dataset.state = connection;
  ui.connection.textContent =
    connection === "connected" ? "Connected" : connection === "connecting" ? "Connecting…" : "Disconnected";
  ui.connection.title = client.lastConnectError ?? "";

  // Never "Live" while nothing is recorded.
  const noMedia = state === "live" && client.noMedia !== undefined;
  ui.streamState.textContent = noMedia ? "Live, but nothing is recorded" : STATE_TEXT[state];
  document.body.dataset.noMedia = noMedia ? "true" : "false";
  // Warnings are about a live stream: none once it has ended.
  if (state === "idle" && !ui.health.hidden) showHealth([]);
  ui.liveBadge.hidden = state !== "live" || noMedia;
  const busy = state !== "idle";
  ui.start.hidden = state === "live" || state === "paused" || state === "stopping";
  ui.start.disabled = busy || acquiring || blocked !== undefined;
  ui.start.textContent = state === "starting" ? "Starting…" : state === "reconnecting" ? "Reconnecting…" : "Start";
  ui.pause.hidden = !(state === "live" || state === "paused");
  ui.pause.textContent = state === "paused" ? "Resume" : "Pause";
  ui.stop.disabled = !(state === "live" || state === "paused" || state === "reconnecting" || state === "starting");

  for (const control of [ui.sourceCamera, ui.sourceScreen, ui.camera, ui.microphone, ui.shareScreen, ui.name, ui.target]) {
    control.disabled = busy;
  }
  ui.cameraField.hidden = source !== "camera";
  ui.shareScreen.hidden = source !== "screen";
  ui.shareScreen.textContent = stream ? "Choose another screen…" : "Choose screen…";
  renderStats();
}

function renderStats(): void {
  const since = client.liveSince;
  ui.timeLive.textContent = since === undefined ? "–" : formatDuration(Date.now() - since);
  ui.bytesSent.textContent =
    since === undefined && client.bytesSent === 0 ? "–" : formatBytes(client.bytesSent) + uploadRate();
  const method = client.captureMethod;
  const webcodecs = client.captureSource === "video-element" ? "WebCodecs (video element)" : "WebCodecs";
  const capturedBy = method === "webcodecs" ? webcodecs : method === "mediarecorder" ? "MediaRecorder" : undefined;
  const parts = [capturedBy, client.codecLabel, stream ? describeTracks(stream) : undefined].filter(Boolean);
  ui.format.textContent = parts.length ? parts.join(" · ") : "–";

  // While the connection is down, how much video waits for the resume.
  if (client.state === "reconnecting" && client.canResume && ui.message.dataset.kind === "warning") {
    ui.message.textContent = reconnectingText(client.heldSeconds);
  }

  const waitingSeconds = client.canResume ? client.heldSeconds : (client.pendingChunks * client.timeslice) / 1000;
  if (client.state === "live" && waitingSeconds > SLOW_LINK_SECONDS && !slowLinkShown) {
    slowLinkShown = true;
    showMessage("Your network is slower than the video: viewers may see delays. Try a lower quality or a closer Wi-Fi.", "warning");
  }
}

/** " · 1.2 Mbit/s" over the last few seconds while live, else "". */
function uploadRate(): string {
  const now = Date.now();
  if (client.state !== "live") {
    rateSamples = [];
    return "";
  }
  rateSamples.push([now, client.bytesSent]);
  rateSamples = rateSamples.filter(([t]) => now - t <= 5000);
  const [t0, b0] = rateSamples[0];
  if (now - t0 < 1500) return "";
  const bitsPerSecond = ((client.bytesSent - b0) * 8 * 1000) / (now - t0);
  return bitsPerSecond >= 1e6
    ? ` · ${(bitsPerSecond / 1e6).toFixed(1)} Mbit/s`
    : ` · ${Math.round(bitsPerSecond / 1000)} kbit/s`;
}

// ---- start-up ---------------------------------------------------------------------------

/** On an https page of a relay with its own certificate: how to trust it, and its fingerprints. */
function showTrustHelp(info: RelayInfo): void {
  const ca = info.caFingerprint ?? undefined;
  const cert = info.certFingerprint ?? undefined;
  if (location.protocol !== "https:" || (!ca && !cert)) return;
  ui.caFingerprint.textContent = ca ?? "";
  ui.caFingerprintRow.hidden = !ca;
  ui.certFingerprint.textContent = cert ?? "";
  // The certificate is signed by the CA: its own fingerprint is what a browser's certificate
  // viewer and the relay's `--headless` output show.
  ui.certFingerprintRow.hidden = !cert || cert === ca;
  ui.relayHost.textContent = location.hostname;
  // With the operator's own certificate there is no CA to download (`/ca.crt` is not found).
  for (const item of ui.trustHelp.querySelectorAll<HTMLElement>("#ca-download, .ca-only")) item.hidden = !ca;
  ui.trustHelp.hidden = false;
}

function block(reason: string): void {
  blocked = reason;
  showMessage(reason, "error", "blocked");
  render();
}

async function loadInfo(): Promise<RelayInfo> {
  try {
    const response = await fetch("api/info", { cache: "no-store" });
    if (response.ok) return (await response.json()) as RelayInfo;
  } catch {
    // Without the info the page still streams to the operator's target.
  }
  return { allowClientTarget: false };
}

function main(): void {
  client = new BrowserToRtmpClient(new MediaStream(), {
    audioSampleRate: 48000,
    socketio: token ? { auth: { token } } : {},
  });
  client.on("state", onState);
  client.on("connection", render);
  client.on("error", onError);
  client.on("reconnecting", onReconnecting);
  // `reconnected` follows `resumed` at once: the resume has said it already.
  let resumed = false;
  client.on("resumed", () => {
    resumed = true;
    restartNote = undefined;
    if (client.state === "paused") showPaused();
    else showMessage(BACK_LIVE, "info");
  });
  client.on("reconnected", () => {
    if (resumed) resumed = false;
    else onReconnected();
  });
  client.on("restarting", onRestarting);
  client.on("noMedia", onNoMedia);
  client.on("outputState", onOutputState);
  client.on("health", showHealth);
  client.on("suspended", onSuspended);
  client.on("unsuspended", onUnsuspended);
  client.on("stopped", (outcome) => {
    stopOutcome = outcome;
  });
  // Exposed for diagnostics from the browser console (and for the page's tests).
  (window as unknown as { relayClient: BrowserToRtmpClient }).relayClient = client;

  try {
    ui.name.value = localStorage.getItem(NAME_KEY) ?? "";
  } catch {
    // Storage disabled.
  }
  ui.sourceCamera.addEventListener("change", () => selectSource("camera"));
  ui.sourceScreen.addEventListener("change", () => selectSource("screen"));
  ui.camera.addEventListener("change", () => void useCamera());
  ui.microphone.addEventListener("change", () => {
    if (source === "camera") void useCamera();
  });
  ui.shareScreen.addEventListener("click", () => void chooseScreen());
  ui.start.addEventListener("click", () => void start());
  ui.pause.addEventListener("click", () => {
    if (client.state !== "paused") {
      void client.pause();
      return;
    }
    // Resumed by hand while the browser had suspended capture: its message is over.
    if (client.suspended !== undefined) clearMessage("stream");
    void client.resume();
  });
  ui.stop.addEventListener("click", () => void stop());
  setInterval(renderStats, 500);

  void loadInfo().then((info) => {
    ui.targetField.hidden = !info.allowClientTarget;
    showTrustHelp(info);
  });

  if (!window.isSecureContext) {
    // Plain http on a network address: the browser hides getUserMedia altogether.
    block(insecurePage(location.host));
    return;
  }
  if (!navigator.mediaDevices || typeof navigator.mediaDevices.getUserMedia !== "function") {
    block(NO_CAMERA_API);
    return;
  }
  if (typeof MediaRecorder === "undefined") {
    block(NO_RECORDER);
    return;
  }
  navigator.mediaDevices.addEventListener("devicechange", () => void refreshDevices());
  if (typeof navigator.mediaDevices.getDisplayMedia !== "function") {
    // Phones cannot share their screen from a browser.
    ui.sourceScreen.disabled = true;
    ui.sourceScreen.closest("label")?.setAttribute("hidden", "");
  }
  render();
  void useCamera();
}

main();
