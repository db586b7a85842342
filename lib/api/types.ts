/** Execution providers maskface knows: 'cpu', and the GPU providers where the GPU runtime is installed. */
export const providers = ['cpu', 'cuda', 'tensorrt'] as const;
export type Provider = (typeof providers)[number];
/** 'auto' picks the best provider that is available and reports it in `recognizer.provider`. */
export type ProviderPreference = Provider | 'auto';

/** Pixel layouts accepted for images. */
export const pixelFormats = ['rgb', 'bgr', 'rgba', 'bgra', 'gray'] as const;
export type PixelFormat = (typeof pixelFormats)[number];

/** Identifies the exact network that produced a vector: comparing vectors of two models is an error. */
export interface ModelFingerprint {
  /** sha256 of the ONNX file's bytes, in hex. */
  readonly id: string;
  /** Embedding length. */
  readonly dim: number;
  /** A human-readable name (the catalogue name, the model's metadata name, or the file name). */
  readonly name?: string;
}

/**
 * An image holding one face, interleaved 8-bit pixels (HWC).
 *
 * With `landmarks` the face is aligned onto the model's landmark template (a similarity
 * transform, bilinear sampling). Without them the image is taken as an aligned crop and resized
 * to the network's input if its size differs.
 */
export interface FaceImage {
  readonly data: Uint8Array | Uint8ClampedArray;
  readonly width: number;
  readonly height: number;
  /** Default: from the data length: 3 bytes per pixel 'rgb', 4 'rgba', 1 'gray'. */
  readonly format?: PixelFormat;
  /**
   * Facial landmarks in image pixels, in the template's order (for the ArcFace template: left
   * eye, right eye, nose tip, left mouth corner, right mouth corner), as [x0, y0, x1, y1, ...] or
   * [[x0, y0], ...].
   */
  readonly landmarks?: ArrayLike<number> | ReadonlyArray<readonly [number, number]>;
}

/** How faces become network input. */
export interface Preprocessing {
  /** Per-channel mean subtracted from 0..255 pixel values, in the network's channel order. */
  readonly mean: readonly [number, number, number];
  /** Per-channel divisor applied after the mean. */
  readonly std: readonly [number, number, number];
  /** Channel order the network expects. */
  readonly colorOrder: 'rgb' | 'bgr';
  /** Landmark template in input pixels, (x, y) pairs; used when faces carry landmarks. */
  readonly template: readonly number[];
}
