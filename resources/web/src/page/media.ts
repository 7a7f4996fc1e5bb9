/** Getting the camera, microphone and screen, and listing devices. */

export type SourceKind = "camera" | "screen";
export const NO_DEVICE = "none";

export interface DeviceChoice {
  cameraId: string; // "" for the default camera
  microphoneId: string; // "" for the default, NO_DEVICE for none
}

function audioConstraint(microphoneId: string): MediaTrackConstraints | boolean {
  if (microphoneId === NO_DEVICE) return false;
  const base: MediaTrackConstraints = { echoCancellation: true, noiseSuppression: true };
  return microphoneId ? { ...base, deviceId: { exact: microphoneId } } : base;
}

/** Camera and microphone as chosen (720p where the camera offers it). */
export async function openCamera(choice: DeviceChoice): Promise<MediaStream> {
  const video: MediaTrackConstraints = {
    width: { ideal: 1280 },
    height: { ideal: 720 },
    frameRate: { ideal: 30 },
  };
  if (choice.cameraId) video.deviceId = { exact: choice.cameraId };
  return navigator.mediaDevices.getUserMedia({ video, audio: audioConstraint(choice.microphoneId) });
}

/**
 * A screen (or window or tab) the person picks, with the chosen microphone. MediaRecorder
 * records a single audio track, so the microphone wins over the shared tab's sound; with
 * "no microphone" the shared sound is used when the browser offers it.
 */
export async function openScreen(microphoneId: string): Promise<MediaStream> {
  const wantsMic = microphoneId !== NO_DEVICE;
  const display = await navigator.mediaDevices.getDisplayMedia({
    video: { frameRate: { ideal: 30 } },
    audio: !wantsMic,
  });
  if (!wantsMic) return display;
  try {
    const mic = await navigator.mediaDevices.getUserMedia({ audio: audioConstraint(microphoneId), video: false });
    return new MediaStream([...display.getVideoTracks(), ...mic.getAudioTracks()]);
  } catch {
    // Screen without sound beats no screen; the page says which tracks it has.
    return display;
  }
}

export function stopStream(stream: MediaStream | undefined): void {
  stream?.getTracks().forEach((track) => track.stop());
}

/** Cameras and microphones (labels appear once the person allowed access). */
export async function listDevices(): Promise<{ cameras: MediaDeviceInfo[]; microphones: MediaDeviceInfo[] }> {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: devices.filter((d) => d.kind === "videoinput" && d.deviceId),
    microphones: devices.filter((d) => d.kind === "audioinput" && d.deviceId),
  };
}

/** The frame rate a stream's video runs at, for the relay's encoder settings. */
export function frameRateOf(stream: MediaStream, fallback: number): number {
  const rate = stream.getVideoTracks()[0]?.getSettings().frameRate;
  return rate && Number.isFinite(rate) && rate >= 1 ? Math.min(60, Math.round(rate)) : fallback;
}
