import { native } from '../runtime/binding-loader.js';
import { MaskFaceError } from './errors.js';
import { arcfaceTemplate112 } from '../setup/models.js';
import type { FaceImage } from './types.js';
import { invalidArgument } from './errors.js';
import { assertInteger, assertObject, assertOneOf, assertPlausibleLandmarks, toLandmarks, toNativeImage } from '../runtime/validate.js';

export interface AlignOptions {
  /** Output width and height. Default 112 x 112. */
  width?: number;
  height?: number;
  /** Landmark template in output pixels, (x, y) pairs. Default: the ArcFace 5-point template scaled to the output. */
  template?: readonly number[];
}

/** An aligned face: 8-bit RGB (or BGR, following the input), and the map that produced it. */
export interface AlignedFace extends FaceImage {
  readonly format: 'rgb' | 'bgr';
  /** 2x3 map from output pixels to input pixels: x_in = m0 x + m1 y + m2, y_in = m3 x + m4 y + m5. */
  readonly matrix: Float64Array;
}

function templateFor(options: AlignOptions, width: number, height: number): Float64Array {
  if (options.template === undefined) {
    return Float64Array.from(arcfaceTemplate112, (v, i) => (i % 2 === 0 ? (v * width) / 112 : (v * height) / 112));
  }
  return toLandmarks('options.template', options.template, options.template.length / 2);
}

/** Points of the template alignmentMatrix uses with these options. */
function matrixPoints(options: AlignOptions): number {
  return options.template === undefined ? arcfaceTemplate112.length / 2 : options.template.length / 2;
}

/**
 * The output-to-image map of the least-squares similarity (rotation, uniform scale,
 * translation) that takes `landmarks` onto the template (Umeyama's method).
 */
export function alignmentMatrix(landmarks: ArrayLike<number> | ReadonlyArray<readonly [number, number]>, options: AlignOptions = {}): Float64Array {
  assertObject('options', options);
  const width = assertInteger('options.width', options.width ?? 112, 1, 4096);
  const height = assertInteger('options.height', options.height ?? 112, 1, 4096);
  const template = templateFor(options, width, height);
  const points = toLandmarks('landmarks', landmarks, template.length / 2);
  const matrix = native().alignmentMatrix(points, template);
  if (matrix === null) {
    throw new MaskFaceError('The landmarks are degenerate: no similarity transform maps them onto the template', 'ERR_INVALID_ARGUMENT');
  }
  return matrix;
}

/**
 * Warps a face onto the landmark template (default: ArcFace, 112 x 112): similarity transform,
 * bilinear sampling, black outside the image. The result can be passed to embed() as is.
 */
export function alignFace(
  image: FaceImage,
  landmarks: ArrayLike<number> | ReadonlyArray<readonly [number, number]>,
  options: AlignOptions = {},
): AlignedFace {
  const source = toNativeImage('image', image);
  const matrix = alignmentMatrix(landmarks, options);
  assertPlausibleLandmarks('landmarks', toLandmarks('landmarks', landmarks, matrixPoints(options)), source.width, source.height);
  const width = options.width ?? 112;
  const height = options.height ?? 112;
  const channels = source.channels === 1 ? 1 : 3;
  const data = native().warpImage(source, matrix, width, height, channels, source.bgr);
  if (channels === 1) {
    // Grey stays grey in the pixels; report it as RGB-compatible by expanding to 3 channels.
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = data[i]!;
    return { data: rgb, width, height, format: 'rgb', matrix };
  }
  return { data, width, height, format: source.bgr ? 'bgr' : 'rgb', matrix };
}

export interface TensorOptions extends AlignOptions {
  /** Per-channel mean and std applied to 0..255 values. Default 127.5 and 127.5. */
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
  /** Output channel order. Default 'rgb'. */
  colorOrder?: 'rgb' | 'bgr';
  /** 1 for grey networks. Default 3. */
  channels?: 1 | 3;
}

/**
 * The network input for one face, exactly as embed() builds it: alignment (when landmarks are
 * given) or resize, normalisation and HWC -> CHW, in one pass. Returns channels x height x width floats.
 */
export function faceTensor(image: FaceImage, options: TensorOptions = {}): Float32Array {
  const source = toNativeImage('image', image);
  assertObject('options', options);
  const width = assertInteger('options.width', options.width ?? 112, 1, 4096);
  const height = assertInteger('options.height', options.height ?? 112, 1, 4096);
  const channels = assertInteger('options.channels', options.channels ?? 3, 1, 3);
  if (channels === 2) throw invalidArgument('options.channels', '1 or 3', channels);
  const colorOrder = assertOneOf('options.colorOrder', options.colorOrder ?? 'rgb', ['rgb', 'bgr'] as const);
  // null: the plain resize embed() applies to faces without landmarks (computed natively).
  let matrix: Float64Array | null = null;
  if (image.landmarks !== undefined) {
    matrix = alignmentMatrix(image.landmarks, options);
    assertPlausibleLandmarks('image.landmarks', toLandmarks('image.landmarks', image.landmarks, matrixPoints(options)), source.width, source.height);
  }
  return native().warpTensor(source, matrix, {
    width,
    height,
    channels,
    bgr: colorOrder === 'bgr',
    mean: Float32Array.from(options.mean ?? [127.5, 127.5, 127.5]),
    std: Float32Array.from(options.std ?? [127.5, 127.5, 127.5]),
  });
}
