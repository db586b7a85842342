import { createHash } from 'node:crypto';
import { crc32 } from '../runtime/crc32.js';
import { MaskFaceError, invalidArgument } from './errors.js';
import { lowerFaceMaskProbability, regionClasses, regionPlane, type RegionClass, type RegionMap } from './regions.js';
import type { ModelFingerprint } from './types.js';
import { assertInteger, assertObject } from '../runtime/validate.js';

function checkModel(model: unknown): ModelFingerprint {
  const m = assertObject('model', model);
  if (typeof m.id !== 'string' || m.id.length === 0) throw invalidArgument('model.id', 'non-empty string', m.id);
  assertInteger('model.dim', m.dim, 1, 65536);
  return model as ModelFingerprint;
}

/** Throws ERR_MODEL_MISMATCH unless both fingerprints name the same network. */
export function assertSameModel(a: ModelFingerprint, b: ModelFingerprint, what: string): void {
  if (a.id !== b.id || a.dim !== b.dim) {
    // The sha256 prefix tells apart files that share a name (a model and its float16 variant).
    const label = (m: ModelFingerprint) => `${m.name ? `${m.name} ` : ''}(sha256 ${m.id.slice(0, 12)}, ${m.dim}-d)`;
    throw new MaskFaceError(
      `${what} comes from model ${label(b)} but model ${label(a)} was expected; embeddings of different model files are not comparable`,
      'ERR_MODEL_MISMATCH',
      { details: { expected: a.id, received: b.id } },
    );
  }
}

function normalised(vector: Float32Array, name: string): Float32Array {
  let sum = 0;
  for (const v of vector) {
    if (!Number.isFinite(v)) throw invalidArgument(name, 'finite values', v);
    sum += v * v;
  }
  if (sum === 0) throw invalidArgument(name, 'a non-zero vector', 'all zeros');
  const scale = 1 / Math.sqrt(sum);
  return vector.map((v) => v * scale);
}

const embeddingMagic = Uint8Array.of(0x4d, 0x46, 0x45, 0x42); // "MFEB"
const embeddingFormatVersion = 1;
const embeddingHeaderBytes = 24;

/** 8 bytes that tell models apart in toBytes() output: the start of the sha256 of the model's id. */
function modelTag(model: ModelFingerprint): Uint8Array {
  return createHash('sha256').update(model.id).digest().subarray(0, 8);
}

/**
 * A face embedding: a unit-length vector and the fingerprint of the model that made it.
 * Plain data with no native resources: keep it, serialise it, send it to a worker.
 */
export class FaceEmbedding {
  /** Unit-length (L2-normalised) vector of length `model.dim`. Treat it as read-only. */
  readonly vector: Float32Array;
  readonly model: ModelFingerprint;
  /**
   * Region probabilities of the aligned face, for masked-face (CAL) models that output them.
   * Not serialised: toBytes() and toJSON() keep the vector and the model only.
   */
  readonly regions: RegionMap | undefined;
  #maskProbability: number | undefined;

  /** Made by FaceRecognizer.embed(), EmbeddingBatch.at(), fromVector(), fromBytes() or fromJSON(). */
  private constructor(vector: Float32Array, model: ModelFingerprint, regions?: RegionMap) {
    if (!(vector instanceof Float32Array)) throw invalidArgument('vector', 'Float32Array', vector);
    checkModel(model);
    if (vector.length !== model.dim) {
      throw new MaskFaceError(`The vector has ${vector.length} values; model ${model.name ?? model.id.slice(0, 12)} gives ${model.dim}`, 'ERR_DIMENSION_MISMATCH');
    }
    this.vector = vector;
    this.model = model;
    this.regions = regions;
  }

  /** @internal A view of a vector maskface made (already unit length); no copy. */
  static _view(vector: Float32Array, model: ModelFingerprint, regions?: RegionMap): FaceEmbedding {
    return new FaceEmbedding(vector, model, regions);
  }

  /**
   * An embedding from a vector of `model` made elsewhere (stored in your own database, say):
   * copied and L2-normalised. Non-finite values or an all-zero vector are ERR_INVALID_ARGUMENT,
   * another length ERR_DIMENSION_MISMATCH.
   */
  static fromVector(vector: Float32Array | readonly number[], model: ModelFingerprint): FaceEmbedding {
    if (!(vector instanceof Float32Array) && !Array.isArray(vector)) throw invalidArgument('vector', 'Float32Array or array of numbers', vector);
    checkModel(model);
    if (vector.length !== model.dim) {
      throw new MaskFaceError(`The vector has ${vector.length} values; model ${model.name ?? model.id.slice(0, 12)} gives ${model.dim}`, 'ERR_DIMENSION_MISMATCH');
    }
    return new FaceEmbedding(normalised(Float32Array.from(vector), 'vector'), { ...model });
  }

  get dim(): number {
    return this.vector.length;
  }

  /**
   * P[visible face] per cell of the region map (row-major, `regions.height` x `regions.width`,
   * 28x28 for maskface models): a view into `regions.data`, not a copy. Undefined for models
   * without region maps.
   */
  get visibleFace(): Float32Array | undefined {
    return this.regions && regionPlane(this.regions, 'face');
  }

  /** P[mask] per cell of the region map, laid out and shared like `visibleFace`. */
  get maskMap(): Float32Array | undefined {
    return this.regions && regionPlane(this.regions, 'mask');
  }

  /**
   * Mean mask probability over the lower face (mouth and chin): the cells of the region map whose
   * centre lies inside the fixed face prior and at or below the nose tip of the ArcFace template.
   * In [0, 1]: about 1 when a mask is worn, about 0 for a bare face. A summary of the region map,
   * not a calibrated probability of anything else. Undefined for models without region maps.
   */
  get maskProbability(): number | undefined {
    if (this.regions === undefined) return undefined;
    this.#maskProbability ??= lowerFaceMaskProbability(this.regions);
    return this.#maskProbability;
  }

  /** Cosine similarity in [-1, 1] (a dot product: both vectors are unit length). */
  similarity(other: FaceEmbedding): number {
    if (!(other instanceof FaceEmbedding)) throw invalidArgument('other', 'FaceEmbedding', other);
    assertSameModel(this.model, other.model, 'the other embedding');
    const a = this.vector;
    const b = other.vector;
    if (a.length !== b.length) {
      throw new MaskFaceError(`The embeddings have ${a.length} and ${b.length} values`, 'ERR_DIMENSION_MISMATCH');
    }
    let dot = 0;
    for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
    return Math.max(-1, Math.min(1, dot));
  }

  /**
   * The vector as bytes that describe themselves: a 24-byte header (magic `MFEB`, format
   * version 1, value type, dimension, 8 bytes identifying the model, a CRC-32 of the whole), then
   * the values little-endian, 4 bytes each, or 2 with 'f16'. See docs/api.md.
   */
  toBytes(dtype: 'f32' | 'f16' = 'f32'): Uint8Array {
    if (dtype !== 'f32' && dtype !== 'f16') throw invalidArgument('dtype', "'f32' or 'f16'", dtype);
    const width = dtype === 'f32' ? 4 : 2;
    const out = new Uint8Array(embeddingHeaderBytes + this.vector.length * width);
    const view = new DataView(out.buffer);
    out.set(embeddingMagic, 0);
    view.setUint8(4, embeddingFormatVersion);
    view.setUint8(5, dtype === 'f32' ? 1 : 2);
    view.setUint32(8, this.vector.length, true);
    out.set(modelTag(this.model), 12);
    this.vector.forEach((v, i) => {
      if (dtype === 'f32') view.setFloat32(embeddingHeaderBytes + i * 4, v, true);
      else view.setUint16(embeddingHeaderBytes + i * 2, float32ToFloat16(v), true);
    });
    view.setUint32(20, crc32(out.subarray(embeddingHeaderBytes), crc32(out.subarray(0, 20))), true);
    return out;
  }

  /**
   * Rebuilds an embedding from toBytes() output, checking everything the header says: damaged
   * bytes (checksum, truncation) and bytes that are not an embedding are ERR_INVALID_ARGUMENT, an
   * embedding of another model ERR_MODEL_MISMATCH, of another length ERR_DIMENSION_MISMATCH. The
   * vector is re-normalised. `dtype`, when given, must be the one the bytes hold.
   */
  static fromBytes(bytes: Uint8Array, model: ModelFingerprint, dtype?: 'f32' | 'f16'): FaceEmbedding {
    if (!(bytes instanceof Uint8Array)) throw invalidArgument('bytes', 'Uint8Array', bytes);
    checkModel(model);
    if (dtype !== undefined && dtype !== 'f32' && dtype !== 'f16') invalidDtype(dtype);
    const damaged = (why: string) => new MaskFaceError(`The embedding bytes ${why}`, 'ERR_INVALID_ARGUMENT', { details: { argument: 'bytes' } });
    if (bytes.length < embeddingHeaderBytes || !embeddingMagic.every((b, i) => bytes[i] === b)) {
      throw damaged('are not a maskface embedding (no MFEB header); toBytes() makes them');
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint8(4) !== embeddingFormatVersion) throw damaged(`are format version ${view.getUint8(4)}; this maskface reads version ${embeddingFormatVersion}`);
    const type = view.getUint8(5) === 1 ? 'f32' : view.getUint8(5) === 2 ? 'f16' : undefined;
    const dim = view.getUint32(8, true);
    const width = type === 'f32' ? 4 : 2;
    if (type === undefined) throw damaged(`have an unknown value type ${view.getUint8(5)}`);
    if (bytes.length !== embeddingHeaderBytes + dim * width) throw damaged(`are ${bytes.length} long; the header says ${embeddingHeaderBytes + dim * width}`);
    if (view.getUint32(20, true) !== crc32(bytes.subarray(embeddingHeaderBytes), crc32(bytes.subarray(0, 20)))) {
      throw damaged('are damaged: their checksum does not match');
    }
    if (dtype !== undefined && dtype !== type) throw damaged(`hold ${type} values, not ${dtype}`);
    if (dim !== model.dim) {
      throw new MaskFaceError(`The embedding bytes hold ${dim} values; model ${model.name ?? model.id.slice(0, 12)} gives ${model.dim}`, 'ERR_DIMENSION_MISMATCH');
    }
    if (!modelTag(model).every((b, i) => bytes[12 + i] === b)) {
      throw new MaskFaceError(`The embedding bytes come from another model than ${model.name ?? model.id.slice(0, 12)}`, 'ERR_MODEL_MISMATCH');
    }
    const vector = new Float32Array(dim);
    for (let i = 0; i < dim; i++) {
      const offset = embeddingHeaderBytes + i * width;
      vector[i] = type === 'f32' ? view.getFloat32(offset, true) : float16ToFloat32(view.getUint16(offset, true));
    }
    return new FaceEmbedding(normalised(vector, 'bytes'), { ...model });
  }

  toJSON(): { type: 'maskface.embedding'; model: ModelFingerprint; vector: number[] } {
    return { type: 'maskface.embedding', model: { ...this.model }, vector: Array.from(this.vector) };
  }

  static fromJSON(json: unknown): FaceEmbedding {
    const record = assertObject('json', json);
    if (record.type !== 'maskface.embedding') throw invalidArgument('json.type', "'maskface.embedding'", record.type);
    const model = checkModel(record.model);
    const vector = record.vector;
    if (!Array.isArray(vector)) throw invalidArgument('json.vector', 'array of numbers', vector);
    if (vector.length !== model.dim) {
      throw new MaskFaceError(
        `Expected ${model.dim} values but received ${vector.length}`,
        'ERR_DIMENSION_MISMATCH',
      );
    }
    return new FaceEmbedding(normalised(Float32Array.from(vector as number[]), 'json.vector'), { ...model });
  }
}

function invalidDtype(dtype: unknown): never {
  throw invalidArgument('dtype', "'f32' or 'f16'", dtype);
}

/** Time spent in each stage of a run, in milliseconds (measured in native code). */
export interface EmbedTiming {
  /** alignment or resize, normalisation and layout of every face */
  readonly preprocessMs: number;
  /** the ONNX Runtime run(s) */
  readonly inferenceMs: number;
  /** checks and L2 normalisation of the embeddings */
  readonly postprocessMs: number;
}

/**
 * Embeddings of a batch, struct-of-arrays: one Float32Array of count x dim values.
 * `at(i)` gives a FaceEmbedding viewing row i without copying.
 */
export class EmbeddingBatch implements Iterable<FaceEmbedding> {
  /** Row-major count x dim, each row unit length. */
  readonly data: Float32Array;
  readonly count: number;
  readonly model: ModelFingerprint;
  /** count x 3 x h x w region probabilities, for models that output them. */
  readonly regions: Float32Array | undefined;
  readonly regionSize: { readonly width: number; readonly height: number } | undefined;
  /** Order of the 3 planes of each face in `regions`. */
  readonly regionClasses: readonly RegionClass[];

  /**
   * Native milliseconds of the embedBatch() run that made this batch; undefined for batches
   * built with from() or fromVectors().
   */
  readonly timing: EmbedTiming | undefined;

  private constructor(
    data: Float32Array,
    model: ModelFingerprint,
    regions?: Float32Array,
    regionSize?: { width: number; height: number },
    classes: readonly RegionClass[] = regionClasses,
    timing?: EmbedTiming,
  ) {
    if (!(data instanceof Float32Array)) throw invalidArgument('data', 'Float32Array', data);
    checkModel(model);
    if (data.length === 0 || data.length % model.dim !== 0) {
      throw new MaskFaceError(`A batch of ${model.dim}-value embeddings cannot hold ${data.length} values`, 'ERR_DIMENSION_MISMATCH');
    }
    this.data = data;
    this.model = model;
    this.count = data.length / model.dim;
    this.regions = regions;
    this.regionSize = regionSize;
    this.regionClasses = classes;
    this.timing = timing;
  }

  /** @internal Rows maskface made (a run's output, a gallery file): unit length, no copy. */
  static _fromRows(
    data: Float32Array,
    model: ModelFingerprint,
    regions: Float32Array | undefined,
    regionSize: { width: number; height: number } | undefined,
    classes: readonly RegionClass[],
    timing: EmbedTiming | undefined,
  ): EmbeddingBatch {
    return new EmbeddingBatch(data, model, regions, regionSize, classes, timing);
  }

  /**
   * A batch from count x dim values of `model` made elsewhere (row-major): copied, each row
   * L2-normalised. A row with a non-finite value or all zeros is ERR_INVALID_ARGUMENT.
   */
  static fromVectors(data: Float32Array, model: ModelFingerprint): EmbeddingBatch {
    if (!(data instanceof Float32Array)) throw invalidArgument('data', 'Float32Array', data);
    checkModel(model);
    if (data.length === 0 || data.length % model.dim !== 0) {
      throw new MaskFaceError(`A batch of ${model.dim}-value embeddings cannot hold ${data.length} values`, 'ERR_DIMENSION_MISMATCH');
    }
    const rows = new Float32Array(data.length);
    for (let offset = 0, i = 0; offset < data.length; offset += model.dim, i++) {
      rows.set(normalised(data.subarray(offset, offset + model.dim), `data (row ${i})`), offset);
    }
    return new EmbeddingBatch(rows, { ...model });
  }

  /** Builds a batch from embeddings of one model (copies the vectors). */
  static from(embeddings: readonly FaceEmbedding[]): EmbeddingBatch {
    if (!Array.isArray(embeddings) || embeddings.length === 0) {
      throw invalidArgument('embeddings', 'non-empty array of FaceEmbedding', embeddings);
    }
    const first = embeddings[0]!;
    const data = new Float32Array(embeddings.length * first.dim);
    embeddings.forEach((embedding, i) => {
      if (!(embedding instanceof FaceEmbedding)) throw invalidArgument(`embeddings[${i}]`, 'FaceEmbedding', embedding);
      assertSameModel(first.model, embedding.model, `embeddings[${i}]`);
      data.set(embedding.vector, i * first.dim);
    });
    return new EmbeddingBatch(data, first.model);
  }

  at(index: number): FaceEmbedding {
    assertInteger('index', index, 0, this.count - 1);
    const dim = this.model.dim;
    return FaceEmbedding._view(this.data.subarray(index * dim, (index + 1) * dim), this.model, this.#regionMap(index));
  }

  /**
   * `maskProbability` of each face (see FaceEmbedding), or undefined for models without region
   * maps.
   */
  maskProbabilities(): Float32Array | undefined {
    if (this.regions === undefined || this.regionSize === undefined) return undefined;
    return Float32Array.from({ length: this.count }, (_, i) => lowerFaceMaskProbability(this.#regionMap(i)!));
  }

  /** Face `index`'s region map, viewing `regions` without copying. */
  #regionMap(index: number): RegionMap | undefined {
    if (this.regions === undefined || this.regionSize === undefined) return undefined;
    const size = 3 * this.regionSize.width * this.regionSize.height;
    return {
      ...this.regionSize,
      classes: this.regionClasses,
      data: this.regions.subarray(index * size, (index + 1) * size),
    };
  }

  *[Symbol.iterator](): Iterator<FaceEmbedding> {
    for (let i = 0; i < this.count; i++) yield this.at(i);
  }
}

// IEEE 754 half precision, round to nearest even.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float32ToFloat16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mantissa & ((1 << shift) - 1);
    let result = mantissa >>> shift;
    if (rest > half || (rest === half && result & 1)) result++;
    return sign | result;
  }
  let result = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && result & 1)) result++;
  return sign | result;
}

export function float16ToFloat32(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
