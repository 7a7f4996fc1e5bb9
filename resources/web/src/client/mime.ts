/** Choosing what MediaRecorder records. */

// H.264 first: the relay then copies the video instead of encoding it again. Chromium records
// `video/webm;codecs=h264` as Matroska (it reports `video/x-matroska;codecs=avc1`).
// VP8 before VP9: cheaper to encode on phones; the relay transcodes either.
// MP4 last: Safari's only choice; its chunks come one per keyframe, which adds latency.
const AV_TYPES = [
  "video/webm;codecs=h264,opus",
  "video/x-matroska;codecs=avc1,opus",
  "video/webm;codecs=vp8,opus",
  "video/webm;codecs=vp9,opus",
  "video/webm",
  "video/mp4;codecs=avc1.42E01F,mp4a.40.2",
  "video/mp4",
];
const VIDEO_TYPES = [
  "video/webm;codecs=h264",
  "video/x-matroska;codecs=avc1",
  "video/webm;codecs=vp8",
  "video/webm;codecs=vp9",
  "video/webm",
  "video/mp4;codecs=avc1.42E01F",
  "video/mp4",
];
const AUDIO_TYPES = ["audio/webm;codecs=opus", "audio/webm", "audio/mp4;codecs=mp4a.40.2", "audio/mp4"];

function isSupported(type: string): boolean {
  return typeof MediaRecorder.isTypeSupported === "function" && MediaRecorder.isTypeSupported(type);
}

/** The recorder types worth trying for `stream`, best first. */
export function candidateTypes(stream: MediaStream): string[] {
  const video = stream.getVideoTracks().length > 0;
  const audio = stream.getAudioTracks().length > 0;
  if (video && audio) return AV_TYPES;
  if (video) return VIDEO_TYPES;
  return AUDIO_TYPES;
}

/**
 * The type to record `stream` with. With `preferred`, the first of those the browser
 * supports, or an error naming them; without, the best of `candidateTypes`, or "" to let
 * the browser choose (older browsers without `isTypeSupported`).
 */
export function chooseMimeType(stream: MediaStream, preferred?: string | string[]): string {
  if (preferred !== undefined && preferred.length > 0) {
    const wanted = Array.isArray(preferred) ? preferred : [preferred];
    const found = wanted.find(isSupported);
    if (found === undefined) {
      throw new DOMException(
        `This browser cannot record ${wanted.join(" or ")}`,
        "NotSupportedError",
      );
    }
    return found;
  }
  return candidateTypes(stream).find(isSupported) ?? "";
}

/** A short label for a recorder type, such as "H.264" or "VP8". */
export function describeMimeType(type: string): string {
  const t = type.toLowerCase();
  if (/h264|avc1/.test(t)) return "H.264";
  if (/vp8/.test(t)) return "VP8";
  if (/vp09|vp9/.test(t)) return "VP9";
  if (/av01|av1/.test(t)) return "AV1";
  if (t.startsWith("audio/")) return "audio only";
  return type || "browser default";
}

/** A short label for the audio codec a recorder type names, such as "Opus" or "AAC";
 * undefined when it names none. */
export function describeAudioCodec(type: string): string | undefined {
  const codecs = /codecs\s*=\s*"?([^";]*)/i.exec(type)?.[1] ?? "";
  for (const codec of codecs.toLowerCase().split(",")) {
    const name = codec.trim();
    if (name === "opus") return "Opus";
    if (name.startsWith("mp4a") || name === "aac") return "AAC";
    if (name === "vorbis") return "Vorbis";
    if (name.startsWith("pcm")) return "PCM";
  }
  return undefined;
}
