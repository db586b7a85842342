// Clustered, face-embedding-like benchmark vectors: 1000 cluster centres ("identities"), every
// row = its centre + Gaussian noise, L2 normalised; queries come from the same distribution.
// Uniform random vectors would make approximate indexes (HNSW) look far worse than on real
// embeddings, so recall is only quoted on data like this.
//
// Follows the C++ generator bench/native/data.h step by step (splitmix64, Box-Muller, the same
// seeds and streams, float32 rounding where the C++ rounds). It is not guaranteed bit-identical:
// V8's log/sin/cos may differ from glibc's in the last bit, and the C++ compiler may fuse the
// multiply-add. The distribution is the same either way.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const clusterCount = 1000;
export const noiseNorm = 0.8; // noise norm relative to the unit centre: cosine to centre ~0.78
const seed = 20240611n;
const streamMultiplier = 0xd1b54a32d192ed03n;

export const cacheDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', '.cache');

const two32 = 4294967296;

/** (ah:al) * (bh:bl) mod 2^64 with 32-bit halves. */
function multiply64(ah, al, bh, bl) {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const a1b0 = a1 * b0;
  const a0b1 = a0 * b1;
  const middle = ((a0 * b0) >>> 16) + (a1b0 & 0xffff) + (a0b1 & 0xffff);
  const carry = a1 * b1 + Math.floor(a1b0 / 65536) + Math.floor(a0b1 / 65536) + Math.floor(middle / 65536);
  const hi = (carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
  const lo = Math.imul(al, bl) >>> 0;
  return [hi, lo];
}

/** splitmix64 + Box-Muller, as bench::Rng in data.h. */
export class Rng {
  #hi;
  #lo;
  #spare = 0;
  #hasSpare = false;

  constructor(seed64) {
    const state = BigInt.asUintN(64, BigInt(seed64));
    this.#hi = Number(state >> 32n);
    this.#lo = Number(state & 0xffffffffn);
  }

  /** Next 64-bit output as [hi, lo] uint32 halves. */
  next() {
    const lo = this.#lo + 0x7f4a7c15;
    this.#lo = lo >>> 0;
    this.#hi = (this.#hi + 0x9e3779b9 + (lo >= two32 ? 1 : 0)) >>> 0;
    let hi = this.#hi;
    let low = this.#lo;
    // z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    [hi, low] = multiply64(hi ^ (hi >>> 30), (low ^ ((low >>> 30) | (hi << 2))) >>> 0, 0xbf58476d, 0x1ce4e5b9);
    // z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    [hi, low] = multiply64(hi ^ (hi >>> 27), (low ^ ((low >>> 27) | (hi << 5))) >>> 0, 0x94d049bb, 0x133111eb);
    // z ^ (z >> 31)
    return [(hi ^ (hi >>> 31)) >>> 0, (low ^ ((low >>> 31) | (hi << 1))) >>> 0];
  }

  /** Uniform in (0, 1) from the top 53 bits. */
  uniform() {
    const [hi, lo] = this.next();
    return (hi * 2097152 + (lo >>> 11) + 0.5) * 2 ** -53;
  }

  /** Next 64-bit output modulo m (m < 2^21). */
  below(m) {
    const [hi, lo] = this.next();
    return ((hi % m) * (two32 % m) + (lo % m)) % m;
  }

  normal() {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return this.#spare;
    }
    const radius = Math.sqrt(-2 * Math.log(this.uniform()));
    const angle = 6.283185307179586 * this.uniform();
    this.#spare = Math.fround(radius * Math.sin(angle));
    this.#hasSpare = true;
    return Math.fround(radius * Math.cos(angle));
  }
}

function normalizeRow(data, offset, dim) {
  let norm = 0;
  for (let d = 0; d < dim; d++) norm += data[offset + d] * data[offset + d];
  const scale = Math.fround(1 / Math.sqrt(norm));
  for (let d = 0; d < dim; d++) data[offset + d] *= scale; // Float32Array rounds like float *=
}

function centres(dim) {
  const rng = new Rng(seed);
  const out = new Float32Array(clusterCount * dim);
  for (let i = 0; i < out.length; i++) out[i] = rng.normal();
  for (let c = 0; c < clusterCount; c++) normalizeRow(out, c * dim, dim);
  return out;
}

/** n unit vectors (row-major n x dim) around the shared centres; `stream` 1 = gallery, 2 = queries. */
export function clusteredVectors(n, dim, stream) {
  const centre = centres(dim);
  const rng = new Rng(seed ^ BigInt.asUintN(64, BigInt(stream) * streamMultiplier));
  const out = new Float32Array(n * dim);
  const noise = Math.fround(Math.fround(noiseNorm) / Math.fround(Math.sqrt(dim)));
  for (let i = 0; i < n; i++) {
    const from = rng.below(clusterCount) * dim;
    const offset = i * dim;
    for (let d = 0; d < dim; d++) out[offset + d] = centre[from + d] + Math.fround(noise * rng.normal());
    normalizeRow(out, offset, dim);
  }
  return out;
}

/** clusteredVectors, cached as raw float32 under bench/results/.cache (generation takes seconds). */
export function cachedVectors(n, dim, stream) {
  const file = join(cacheDir, `clustered-s${stream}-${n}x${dim}.f32`);
  if (existsSync(file)) {
    const bytes = readFileSync(file);
    if (bytes.byteLength === n * dim * 4) return new Float32Array(bytes.buffer, bytes.byteOffset, n * dim);
  }
  const vectors = clusteredVectors(n, dim, stream);
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(`${file}.tmp`, vectors);
  renameSync(`${file}.tmp`, file);
  return vectors;
}

export const galleryRows = (n, dim) => cachedVectors(n, dim, 1);
export const queryRows = (n, dim) => cachedVectors(n, dim, 2);
