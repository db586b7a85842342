import { MaskFaceError, invalidArgument } from '../api/errors.js';
import type { NativeFace, NativeImage } from './native.js';
import { pixelFormats, type FaceImage, type PixelFormat } from '../api/types.js';

export function assertInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(name, `integer in [${min}, ${max}]`, value);
  }
  return value;
}

export function assertFinite(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidArgument(name, 'finite number', value);
  return value;
}

export function assertObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidArgument(name, 'object', value);
  return value as Record<string, unknown>;
}

export function assertOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw invalidArgument(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

/** Throws ERR_ABORTED when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal === undefined) return;
  if (!(signal instanceof AbortSignal)) throw invalidArgument('options.signal', 'AbortSignal', signal);
  if (signal.aborted) throw new MaskFaceError('The operation was aborted', 'ERR_ABORTED', { cause: signal.reason });
}

const channelsOf: Record<PixelFormat, number> = { rgb: 3, bgr: 3, rgba: 4, bgra: 4, gray: 1 };

/** Checks an image and returns the record the addon takes. */
export function toNativeImage(name: string, image: unknown): NativeImage {
  const face = assertObject(name, image) as Partial<FaceImage>;
  const { data } = face;
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    throw invalidArgument(`${name}.data`, 'Uint8Array or Uint8ClampedArray', data);
  }
  const width = assertInteger(`${name}.width`, face.width, 1, 32767);
  const height = assertInteger(`${name}.height`, face.height, 1, 32767);
  let format: PixelFormat;
  if (face.format === undefined) {
    const perPixel = data.length / (width * height);
    const inferred = perPixel === 3 ? 'rgb' : perPixel === 4 ? 'rgba' : perPixel === 1 ? 'gray' : undefined;
    if (inferred === undefined) {
      throw invalidArgument(`${name}.data`, `${width}x${height} pixels of 1, 3 or 4 bytes`, data);
    }
    format = inferred;
  } else {
    format = assertOneOf(`${name}.format`, face.format, pixelFormats);
  }
  const channels = channelsOf[format];
  if (data.length !== width * height * channels) {
    throw invalidArgument(`${name}.data`, `${width * height * channels} bytes (${width}x${height} ${format})`, data);
  }
  return { data, width, height, channels, bgr: format === 'bgr' || format === 'bgra' };
}

/** Flattens landmarks to a Float64Array of finite (x, y) pairs. */
export function toLandmarks(name: string, value: unknown, points: number): Float64Array {
  if (typeof value !== 'object' || value === null || typeof (value as ArrayLike<unknown>).length !== 'number') {
    throw invalidArgument(name, `${points} (x, y) points`, value);
  }
  const list = value as ArrayLike<unknown>;
  const out = new Float64Array(points * 2);
  const nested = list.length === points && Array.isArray(list[0]);
  if (!nested && list.length !== points * 2) throw invalidArgument(name, `${points} (x, y) points`, value);
  if (nested) {
    for (let p = 0; p < points; p++) {
      const pair = list[p] as ArrayLike<unknown> | undefined;
      if (!Array.isArray(pair) || pair.length !== 2) throw invalidArgument(`${name}[${p}]`, 'an (x, y) pair', pair);
    }
  }
  for (let i = 0; i < points * 2; i++) {
    const item = nested ? (list[i >> 1] as ArrayLike<unknown> | undefined)?.[i & 1] : list[i];
    if (typeof item !== 'number' || !Number.isFinite(item)) {
      throw invalidArgument(`${name}[${nested ? `${i >> 1}][${i & 1}` : i}]`, 'finite number', item);
    }
    out[i] = item;
  }
  return out;
}

/**
 * Refuses landmarks that cannot be a face of this image: points far outside it (more than its own
 * width or height beyond an edge: landmarks of another, larger image, or of the wrong frame), or
 * points whose RMS distance from their centre is under 1 pixel (all equal, or fractions of the
 * image size rather than pixels: those span under 0.71). Both would
 * align a crop of empty border and give an embedding that looks like any other.
 */
export function assertPlausibleLandmarks(name: string, points: Float64Array, width: number, height: number): void {
  const n = points.length / 2;
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < n; i++) {
    const x = points[2 * i]!;
    const y = points[2 * i + 1]!;
    if (x < -width || x > 2 * width || y < -height || y > 2 * height) {
      throw new MaskFaceError(
        `${name}: point ${i} (${x}, ${y}) lies far outside the ${width}x${height} image; landmarks are image pixels of this image`,
        'ERR_INVALID_ARGUMENT',
        { details: { argument: name } },
      );
    }
    cx += x / n;
    cy += y / n;
  }
  let spread = 0;
  for (let i = 0; i < n; i++) spread += ((points[2 * i]! - cx) ** 2 + (points[2 * i + 1]! - cy) ** 2) / n;
  if (!(Math.sqrt(spread) >= 1)) {
    throw new MaskFaceError(
      `${name}: the points span ${Math.sqrt(spread).toFixed(3)} pixels: degenerate, or fractions of the image size (landmarks are image pixels)`,
      'ERR_INVALID_ARGUMENT',
      { details: { argument: name } },
    );
  }
}

export function toNativeFace(name: string, face: unknown, templatePoints: number): NativeFace {
  const image = toNativeImage(name, face);
  const landmarks = (face as FaceImage).landmarks;
  if (landmarks === undefined) return image;
  const points = toLandmarks(`${name}.landmarks`, landmarks, templatePoints);
  assertPlausibleLandmarks(`${name}.landmarks`, points, image.width, image.height);
  return { ...image, landmarks: points };
}
