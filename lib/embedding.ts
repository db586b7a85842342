import { MaskFaceError, invalidArgument } from './errors.js';
import { lowerFaceMaskProbability, regionClasses, regionPlane, type RegionClass, type RegionMap } from './regions.js';
import type { ModelFingerprint } from './types.js';
import { assertInteger, assertObject } from './validate.js';

function checkModel(model: unknown): ModelFingerprint {
  const m = assertObject('model', model);
  if (typeof m.id !== 'string' || m.id.length === 0) throw invalidArgument('model.id', 'non-empty string', m.id);
  assertInteger('model.dim', m.dim, 1, 65536);
  return model as ModelFingerprint;
}

/** Throws ERR_MODEL_MISMATCH unless both fingerprints name the same network. @internal */
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

  /** @internal Use FaceRecognizer.embed(), FaceEmbedding.fromBytes() or fromJSON(). */
  constructor(vector: Float32Array, model: ModelFingerprint, regions?: RegionMap) {
    this.vector = vector;
    this.model = model;
    this.regions = regions;
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
    let dot = 0;
    const a = this.vector;
    const b = other.vector;
    for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
    return Math.max(-1, Math.min(1, dot));
  }

  /** The vector as little-endian bytes (no header): 4 bytes per value, or 2 with 'f16'. */
  toBytes(dtype: 'f32' | 'f16' = 'f32'): Uint8Array {
    if (dtype === 'f32') return new Uint8Array(this.vector.slice().buffer);
    if (dtype !== 'f16') throw invalidArgument('dtype', "'f32' or 'f16'", dtype);
    const out = new Uint8Array(this.vector.length * 2);
    const view = new DataView(out.buffer);
    this.vector.forEach((v, i) => view.setUint16(i * 2, float32ToFloat16(v), true));
    return out;
  }

  /** Rebuilds an embedding from toBytes() output; the vector is re-normalised. */
  static fromBytes(bytes: Uint8Array, model: ModelFingerprint, dtype: 'f32' | 'f16' = 'f32'): FaceEmbedding {
    if (!(bytes instanceof Uint8Array)) throw invalidArgument('bytes', 'Uint8Array', bytes);
    checkModel(model);
    const width = dtype === 'f32' ? 4 : dtype === 'f16' ? 2 : invalidDtype(dtype);
    if (bytes.length !== model.dim * width) {
      throw new MaskFaceError(
        `Expected ${model.dim * width} bytes (${model.dim} x ${dtype}) but received ${bytes.length}`,
        'ERR_DIMENSION_MISMATCH',
      );
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const vector = new Float32Array(model.dim);
    for (let i = 0; i < model.dim; i++) {
      vector[i] = dtype === 'f32' ? view.getFloat32(i * 4, true) : float16ToFloat32(view.getUint16(i * 2, true));
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

  /** @internal */
  constructor(
    data: Float32Array,
    model: ModelFingerprint,
    regions?: Float32Array,
    regionSize?: { width: number; height: number },
    classes: readonly RegionClass[] = regionClasses,
  ) {
    this.data = data;
    this.model = model;
    this.count = data.length / model.dim;
    this.regions = regions;
    this.regionSize = regionSize;
    this.regionClasses = classes;
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
    return new FaceEmbedding(this.data.subarray(index * dim, (index + 1) * dim), this.model, this.#regionMap(index));
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

/** @internal */
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

/** @internal */
export function float16ToFloat32(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
