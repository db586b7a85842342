import { availableParallelism, totalmem } from 'node:os';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { native } from '../runtime/binding-loader.js';
import { EmbeddingBatch, FaceEmbedding, assertSameModel } from './embedding.js';
import { MaskFaceError, invalidArgument, withCallSite } from './errors.js';
import type { NativeGalleryStore } from '../runtime/native.js';
import { checkMeta, decodeIds, encodeIds, encodeMeta, type JournalLink } from './gallery-file.js';
import { JournalQueue, encodeRecord, opAdd, opRemove } from './gallery-journal.js';
import { ScoreCalibration, thresholdOf } from './calibration.js';
import { cudaStatus } from './providers.js';
import type { ModelFingerprint } from './types.js';
import { assertFinite, assertInteger, assertObject, throwIfAborted } from '../runtime/validate.js';

/** Largest k a search accepts. */
export const maxTopK = 4096;
/** Largest k a search of a GPU gallery (`device: 'cuda'`) accepts. */
export const maxTopKCuda = 1024;

export interface GalleryOptions {
  /** The model whose embeddings this gallery holds; others are refused (ERR_MODEL_MISMATCH). */
  model: ModelFingerprint;
  /** Rows to reserve up front. */
  capacity?: number;
  /** Threads one search uses. Default: os.availableParallelism(). */
  threads?: number;
  /**
   * Where searches run. 'cuda' also keeps the vectors on a GPU in fp16 (libmaskface_cuda.so)
   * and searches there, exact over the fp16 copy; k is at most 1024. Where that library is not
   * loaded (no driver, no GPU, or not built), the constructor throws ERR_PROVIDER_UNAVAILABLE
   * with the reason: never a silent CPU gallery. Default 'cpu'.
   */
  device?: 'cpu' | 'cuda';
  /** The GPU of a 'cuda' gallery. Default 0. */
  deviceId?: number;
  /**
   * How the vectors are kept in memory:
   * - 'f32' (default).
   * - 'f16', IEEE half floats: half the memory and about half the memory traffic of a search,
   *   with scores within about 1e-3 of f32 (the search is exact over the rounded vectors).
   * - 'int8': the f32 vectors plus int8 codes (1.25x the memory of 'f32' at 512 values). A
   *   search of fewer than 8 queries first scans the codes (a quarter of the bytes), then scores
   *   its candidates on the f32 vectors, and proves from a bound on the codes' error that no row
   *   it skipped belongs in the answer (it widens the candidates, or scans in f32, when it
   *   cannot): the results are exactly those of 'f32', scores to the bit. Batches of 8 or more
   *   do the same with a matrix product where the CPU has AVX-512 VNNI, and search the f32
   *   vectors directly elsewhere. CPU galleries only. See `searchStats`.
   * Files hold the values as f32 for 'f32' and 'int8', as half floats for 'f16'.
   */
  storage?: GalleryStorage;
}

/** How a gallery keeps its vectors in memory (GalleryOptions.storage). */
export type GalleryStorage = 'f32' | 'f16' | 'int8';

/** How an 'int8' gallery's searches were answered (Gallery.searchStats), counted since it was made. */
export interface Int8SearchStats {
  /** Queries searched in two passes: those of searches of fewer than 8 queries, and of batches where the CPU has AVX-512 VNNI. */
  readonly queries: number;
  /** Of those, queries whose first candidates did not prove the answer and were searched again with 16x as many. */
  readonly widened: number;
  /** Of those, queries that the wider pass did not prove either and were scanned in f32. */
  readonly exactScans: number;
  /** Rows scored on their f32 vectors, over all queries. */
  readonly candidates: number;
}

/** Options of Gallery.load and Gallery.open: those of a new gallery, without `capacity` (the file's row count). */
export type GalleryLoadOptions = Omit<GalleryOptions, 'capacity'>;

/** Options of add() and remove(). */
export interface WriteOptions {
  /**
   * Resolve only once the change is in the gallery's journal on disk (a gallery from
   * Gallery.open): the call then returns a promise. Default false: the change is written to the
   * journal at once, and `flush()` waits for it.
   */
  durable?: boolean;
}

/** The journal of a gallery from Gallery.open. */
export interface JournalStatus {
  /** The journal file: the gallery file's path + '.journal'. */
  readonly path: string;
  /** Its length on disk. */
  readonly bytes: number;
  /** Changes in the journal and not in the gallery file (save() folds them in). */
  readonly unsaved: number;
  /** Changes not yet on disk (flush() waits for them). */
  readonly pending: number;
}

export interface SearchOptions {
  /** Matches to return per query, best first. Default 10, at most 4096. */
  k?: number;
  /** Minimum cosine similarity of a match. Default: none. */
  threshold?: number;
  signal?: AbortSignal;
}

/** The sum of each identity's unit vectors, and a gallery of the normalised sums. */
interface IdentityTemplates<Id extends string | number> {
  sums: Map<Id, Float32Array>;
  gallery: Gallery<Id>;
}

/** Options of searchIdentities. */
export interface IdentitySearchOptions extends SearchOptions {
  /**
   * How an identity's embeddings score against the query: 'max', its best embedding (default),
   * or 'mean', the cosine with the mean of its unit vectors (one template per identity).
   */
  aggregate?: 'max' | 'mean';
}

/** One identity of searchIdentities: its id, its score, and the embeddings it holds. */
export interface IdentityMatch<Id> {
  readonly id: Id;
  /** The cosine similarity to the query of the identity's best embedding ('max') or of its template ('mean'). */
  readonly score: number;
  /** How many embeddings the identity holds. */
  readonly embeddings: number;
}

/** One search hit: an id and its cosine similarity (higher is more similar). */
export interface Match<Id> {
  readonly id: Id;
  readonly score: number;
}

/**
 * Results of searchBatch, struct-of-arrays: for query q, slots q*k .. q*k+counts[q]-1 hold its
 * matches best first. No per-hit objects until at() is called.
 */
export class BatchMatches<Id> {
  readonly k: number;
  readonly count: number;
  /** count x k gallery rows, -1 in unused slots. */
  readonly rows: Int32Array;
  /** count x k cosine similarities, -Infinity in unused slots. */
  readonly scores: Float32Array;
  /** Matches per query (< k when the gallery or the threshold leaves fewer). */
  readonly counts: Uint32Array;
  /** count x k ids, resolved when the search completed. */
  readonly ids: readonly (Id | undefined)[];

  private constructor(k: number, rows: Int32Array, scores: Float32Array, counts: Uint32Array, ids: (Id | undefined)[]) {
    this.k = k;
    this.count = counts.length;
    this.rows = rows;
    this.scores = scores;
    this.counts = counts;
    this.ids = ids;
  }

  /** @internal */
  static _of<Id>(k: number, rows: Int32Array, scores: Float32Array, counts: Uint32Array, ids: (Id | undefined)[]): BatchMatches<Id> {
    return new BatchMatches<Id>(k, rows, scores, counts, ids);
  }

  /** The matches of query `index`, best first. */
  at(index: number): Match<Id>[] {
    assertInteger('index', index, 0, this.count - 1);
    const matches: Match<Id>[] = [];
    for (let i = 0; i < this.counts[index]!; i++) {
      const slot = index * this.k + i;
      matches.push({ id: this.ids[slot] as Id, score: this.scores[slot]! });
    }
    return matches;
  }
}

type Id = string | number;

/**
 * `data` (rows of `dim` values) with every row scaled to unit length, so that scores are cosines
 * whatever made the vectors. Returns `data` itself when every row already is (within float
 * rounding) unless `copy`; a row with NaN, Infinity or only zeros is refused, named.
 */
function unitRows(data: Float32Array, dim: number, name: string, copy: boolean): Float32Array {
  const rows = data.length / dim;
  let out: Float32Array | undefined = copy ? data : undefined;
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let i = r * dim; i < (r + 1) * dim; i++) sum += data[i]! * data[i]!;
    if (!Number.isFinite(sum) || sum === 0) {
      const row = rows === 1 ? name : `${name} row ${r}`;
      throw invalidArgument(row, 'finite values, not all zero', Number.isFinite(sum) ? 'all zeros' : 'NaN or Infinity');
    }
    if (Math.abs(sum - 1) > 1e-5) {
      out ??= data.slice();
      const scale = 1 / Math.sqrt(sum);
      for (let i = r * dim; i < (r + 1) * dim; i++) out[i] = data[i]! * scale;
    }
  }
  return out ?? data;
}

function assertPath(name: string, path: unknown): string {
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) throw invalidArgument(name, 'non-empty path without NUL', path);
  return resolve(path);
}

function assertId(name: string, id: unknown): void {
  if (typeof id === 'string' ? id.length === 0 : typeof id !== 'number' || !Number.isFinite(id)) {
    throw invalidArgument(name, 'non-empty string or finite number', id);
  }
}

/** Bytes of one row's vector in memory (as native/core/gallery_store.h lays it out). */
function rowBytes(dim: number, storage: GalleryStorage): number {
  if (storage === 'f16') return 2 * dim;
  if (storage === 'int8') return 4 * dim + Math.ceil(dim / 64) * 64 + 4;
  return 4 * dim;
}

/**
 * Exact 1:N search over face embeddings (cosine similarity, exhaustive scan with SIMD on every
 * core). Several embeddings may share one id. Ids live here in JavaScript; the native store only
 * sees row numbers.
 *
 * Ordering: add() and remove() take effect at once for every search called after them (also
 * behind a pending addMany()). A search already in flight may or may not see them; it never
 * reports a row under another id (a removed row is not reused while a search may read it).
 */
export class Gallery<GalleryId extends Id = string> implements AsyncDisposable {
  readonly model: ModelFingerprint;
  /** Where searches run. */
  readonly device: 'cpu' | 'cuda';
  /** How the vectors are kept: 'f32', 'f16' or 'int8'. */
  readonly storage: GalleryStorage;

  #store: NativeGalleryStore;
  /** The GPU of a 'cuda' gallery. */
  readonly #deviceId: number;
  readonly #threads: number;
  #rowIds: (GalleryId | undefined)[] = [];
  readonly #idRows = new Map<GalleryId, number[]>();
  readonly #freeRows: number[] = [];
  /** Killed rows and the epoch of their kill: freed once no search that started by then is running. */
  readonly #removedRows: { row: number; epoch: number }[] = [];
  /** Searches in flight by the epoch they started in. */
  readonly #activeSearches = new Map<number, number>();
  #epoch = 0;
  readonly #inFlight = new Set<Promise<unknown>>();
  #pendingWrites = 0;
  #writeTail: Promise<void> = Promise.resolve();
  #size = 0;
  /** The journal of a gallery from Gallery.open, and the file it goes with. */
  #journal: JournalQueue | undefined;
  #journalTarget: string | undefined;
  #saveTail: Promise<void> = Promise.resolve();
  /**
   * One template per identity for searchIdentities({ aggregate: 'mean' }): the sum of its unit
   * vectors, and a gallery of the normalised sums. Built on first use, then kept up to date.
   */
  #templates: IdentityTemplates<GalleryId> | undefined;
  #disposed = false;
  #disposing: Promise<void> | undefined;

  constructor(options: GalleryOptions) {
    assertObject('options', options);
    const model = assertObject('options.model', options.model) as unknown as ModelFingerprint;
    if (typeof model.id !== 'string' || model.id.length === 0) throw invalidArgument('options.model.id', 'non-empty string', model.id);
    assertInteger('options.model.dim', model.dim, 1, 65536);
    this.model = Object.freeze({ ...model });
    this.#threads = assertInteger('options.threads', options.threads ?? availableParallelism(), 1, 1024);
    this.device = options.device ?? 'cpu';
    if (this.device !== 'cpu' && this.device !== 'cuda') throw invalidArgument('options.device', "'cpu' or 'cuda'", options.device);
    const deviceId = assertInteger('options.deviceId', options.deviceId ?? 0, 0, 1023);
    this.storage = options.storage ?? 'f32';
    if (this.storage !== 'f32' && this.storage !== 'f16' && this.storage !== 'int8') throw invalidArgument('options.storage', "'f32', 'f16' or 'int8'", options.storage);
    if (this.storage === 'int8' && this.device === 'cuda') {
      throw invalidArgument('options.storage', "'f32' or 'f16' for a 'cuda' gallery (int8 rows are a CPU search format)", options.storage);
    }
    if (this.device === 'cuda') {
      const status = cudaStatus();
      if (!status.kernels.loaded) {
        throw new MaskFaceError(`A GPU gallery is unavailable: ${status.kernels.error ?? 'libmaskface_cuda.so did not load'}`, 'ERR_PROVIDER_UNAVAILABLE', {
          details: { device: 'cuda', library: status.kernels.path },
        });
      }
      if (!status.devices.some((d) => d.index === deviceId)) {
        throw new MaskFaceError(`A GPU gallery is unavailable: there is no GPU ${deviceId}`, 'ERR_PROVIDER_UNAVAILABLE', {
          details: { device: 'cuda', deviceId },
        });
      }
    }
    if (options.capacity !== undefined) {
      const capacity = assertInteger('options.capacity', options.capacity, 0, 2 ** 31 - 2);
      const bytes = capacity * (rowBytes(model.dim, this.storage) + 1);
      if (bytes > totalmem()) {
        throw new MaskFaceError(
          `A capacity of ${capacity} rows of ${model.dim} values needs ${(bytes / 2 ** 30).toFixed(1)} GiB; this machine has ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
          'ERR_OUT_OF_MEMORY',
          { details: { capacity, bytes } },
        );
      }
    }
    this.#store = new (native().GalleryStore)(model.dim, this.storage);
    if (options.capacity !== undefined) this.#store.reserve(options.capacity);
    this.#deviceId = deviceId;
    if (this.device === 'cuda') this.#store.attachDevice(deviceId);
  }

  /** Number of embeddings held (0 once disposed). */
  get size(): number {
    return this.#disposed ? 0 : this.#size;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Memory of the vectors: `hostBytes` of the rows written, `reservedBytes` set aside on the host
   * for rows to come (the `capacity` option, and the rest of the last block; its pages are
   * committed as rows are written), and `deviceBytes` on the GPU for a 'cuda' gallery (0 otherwise).
   */
  get memory(): { hostBytes: number; reservedBytes: number; deviceBytes: number } {
    this.#assertLive();
    const stats = this.#store.stats();
    return { hostBytes: stats.bytes, reservedBytes: stats.reservedBytes, deviceBytes: stats.deviceBytes };
  }

  /** How the searches of an 'int8' gallery were answered; null for other storage types. */
  get searchStats(): Int8SearchStats | null {
    this.#assertLive();
    if (this.storage !== 'int8') return null;
    const stats = this.#store.stats();
    return { queries: stats.int8Queries, widened: stats.int8Widened, exactScans: stats.int8ExactScans, candidates: stats.int8Candidates };
  }

  has(id: GalleryId): boolean {
    this.#assertLive();
    return this.#idRows.has(id);
  }

  /** The ids held, in insertion order of their first embedding. */
  ids(): GalleryId[] {
    this.#assertLive();
    return [...this.#idRows.keys()];
  }

  #checkEmbedding(name: string, embedding: unknown): FaceEmbedding {
    if (!(embedding instanceof FaceEmbedding)) throw invalidArgument(name, 'FaceEmbedding', embedding);
    this.#checkModel(name, embedding.model);
    return embedding;
  }

  #checkModel(name: string, model: ModelFingerprint): void {
    if (model.dim !== this.model.dim) {
      throw new MaskFaceError(
        `${name} has ${model.dim} dimensions; this gallery holds ${this.model.dim}`,
        'ERR_DIMENSION_MISMATCH',
      );
    }
    assertSameModel(this.model, model, name);
  }

  #allocateRow(): number {
    // Free rows are dead, and no search that could still report their old id is running.
    if (this.#freeRows.length > 0) return this.#freeRows.pop()!;
    this.#rowIds.push(undefined);
    return this.#rowIds.length - 1;
  }

  #bind(id: GalleryId, row: number): void {
    this.#rowIds[row] = id;
    const rows = this.#idRows.get(id);
    if (rows) rows.push(row);
    else this.#idRows.set(id, [row]);
    this.#size++;
  }

  /**
   * Runs a native mutation now, or after the queued writes so that program order holds. A
   * deferred mutation that fails (only an allocation can: arguments are checked before) is
   * undone and reported as a process warning, since its caller has already returned.
   */
  #write(apply: () => void, undo: () => void): void {
    if (this.#pendingWrites === 0) {
      apply();
      return;
    }
    this.#writeTail = this.#writeTail.then(() => {
      try {
        apply();
      } catch (error) {
        undo();
        this.#dropTemplates();
        this.#journal?.fail(journalDiverged(this.#journal.path, error));
        process.emitWarning(`maskface: a queued gallery change failed and was undone: ${(error as Error).message}`, {
          code: 'MASKFACE_GALLERY_WRITE',
        });
      }
    });
  }

  /**
   * Adds one embedding under `id` (an id may hold several). On a gallery from Gallery.open the
   * change also goes to the journal; with `{ durable: true }` the call returns a promise that
   * resolves once it is on disk.
   */
  add(id: GalleryId, embedding: FaceEmbedding, options?: WriteOptions & { durable?: false }): this;
  add(id: GalleryId, embedding: FaceEmbedding, options: WriteOptions & { durable: true }): Promise<this>;
  add(id: GalleryId, embedding: FaceEmbedding, options?: WriteOptions): this | Promise<this>;
  add(id: GalleryId, embedding: FaceEmbedding, options: WriteOptions = {}): this | Promise<this> {
    this.#assertLive();
    assertId('id', id);
    const checked = this.#checkEmbedding('embedding', embedding);
    const durable = this.#durableOption(options);
    const vector = unitRows(checked.vector.slice(), this.model.dim, 'embedding.vector', true);
    this.#insert(id, vector);
    const seq = this.#journal?.record(encodeRecord(opAdd, id, vector));
    return durable ? this.#journal!.sync(seq).then(() => this) : this;
  }

  /** `options.durable`, checked: it needs a journal, and one that still works. */
  #durableOption(options: WriteOptions): boolean {
    assertObject('options', options);
    const durable = options.durable ?? false;
    if (typeof durable !== 'boolean') throw invalidArgument('options.durable', 'boolean', durable);
    if (durable && !this.#journal) {
      throw invalidArgument('options.durable', 'false on a gallery without a journal (durable writes need Gallery.open)', durable);
    }
    this.#journal?.assertUsable();
    return durable;
  }

  /** Binds `vector` (one checked unit row) to `id` in a row of the store. */
  #insert(id: GalleryId, vector: Float32Array): void {
    const row = this.#allocateRow();
    try {
      this.#write(
        () => this.#store.put(Uint32Array.of(row), vector),
        () => this.#unbind(id, row),
      );
    } catch (error) {
      if (row === this.#rowIds.length - 1) this.#rowIds.pop();
      else this.#freeRows.push(row);
      throw error;
    }
    this.#bind(id, row);
    this.#templateAdd(id, vector);
  }

  /**
   * Adds a batch: ids[i] gets batch.at(i). The copy into the gallery runs on a worker thread;
   * do not modify `batch.data` until the promise settles. On failure nothing of the batch stays.
   * On a gallery from Gallery.open it resolves once the batch is in the journal on disk too.
   */
  async addMany(ids: readonly GalleryId[], batch: EmbeddingBatch): Promise<void> {
    const callSite = new Error();
    this.#assertLive();
    this.#journal?.assertUsable();
    if (!(batch instanceof EmbeddingBatch)) throw invalidArgument('batch', 'EmbeddingBatch', batch);
    this.#checkModel('batch', batch.model);
    if (!Array.isArray(ids) || ids.length !== batch.count) {
      throw invalidArgument('ids', `array of ${batch.count} ids (one per embedding)`, ids);
    }
    ids.forEach((id, i) => assertId(`ids[${i}]`, id));
    const vectors = unitRows(batch.data, this.model.dim, 'batch', false); // checked before any row is taken
    // Free rows first, then new ones at the end (in order: the store appends them one by one).
    const rows = new Uint32Array(ids.length);
    const reused = Math.min(ids.length, this.#freeRows.length);
    for (let i = 0; i < reused; i++) rows[i] = this.#freeRows.pop()!;
    for (let i = reused; i < ids.length; i++) rows[i] = this.#rowIds.length + (i - reused);
    this.#rowIds.push(...new Array<undefined>(ids.length - reused));
    ids.forEach((id, i) => this.#bind(id, rows[i]!));
    ids.forEach((id, i) => this.#templateAdd(id, vectors.subarray(i * this.model.dim, (i + 1) * this.model.dim)));
    let seq: number | undefined;
    if (this.#journal) {
      const dim = this.model.dim;
      for (let i = 0; i < ids.length; i++) seq = this.#journal.record(encodeRecord(opAdd, ids[i]!, vectors.subarray(i * dim, (i + 1) * dim)));
    }

    this.#pendingWrites++;
    const write = this.#writeTail.then(() => withCallSite(callSite, this.#store.putAsync(rows, vectors)));
    this.#writeTail = write.then(
      () => undefined,
      () => undefined,
    );
    const tracked = write
      .catch((error: unknown) => {
        // Undo: the rows may be partly written; kill them, then forget their ids.
        if (!this.#disposed) this.#store.kill(rows);
        ids.forEach((id, i) => this.#unbind(id, rows[i]!));
        this.#dropTemplates();
        // The journal holds the batch that memory has dropped: only a reopen makes them agree.
        this.#journal?.fail(journalDiverged(this.#journal.path, error));
        throw error;
      })
      .finally(() => {
        this.#pendingWrites--;
        this.#releaseRemovedRows();
      });
    this.#inFlight.add(tracked);
    try {
      await tracked;
      if (seq !== undefined) await this.#journal!.sync(seq);
    } finally {
      this.#inFlight.delete(tracked);
    }
  }

  #unbind(id: GalleryId, row: number): void {
    const rows = this.#idRows.get(id);
    if (!rows) return;
    const at = rows.indexOf(row);
    if (at < 0) return;
    rows.splice(at, 1);
    if (rows.length === 0) this.#idRows.delete(id);
    this.#size--;
    this.#retire([row]);
  }

  /** Rows just killed (or never written): free once the searches that may still report them end. */
  #retire(rows: Iterable<number>): void {
    const epoch = this.#epoch++;
    for (const row of rows) this.#removedRows.push({ row, epoch });
    this.#releaseRemovedRows();
  }

  /**
   * Removes every embedding of `id`; returns how many there were. On a gallery from Gallery.open
   * the removal also goes to the journal (when there was something to remove); with
   * `{ durable: true }` the call returns a promise that resolves once it is on disk.
   */
  remove(id: GalleryId, options?: WriteOptions & { durable?: false }): number;
  remove(id: GalleryId, options: WriteOptions & { durable: true }): Promise<number>;
  remove(id: GalleryId, options?: WriteOptions): number | Promise<number>;
  remove(id: GalleryId, options: WriteOptions = {}): number | Promise<number> {
    this.#assertLive();
    assertId('id', id);
    const durable = this.#durableOption(options);
    const removed = this.#removeRows(id);
    const seq = removed > 0 ? this.#journal?.record(encodeRecord(opRemove, id)) : undefined;
    return durable ? this.#journal!.sync(seq).then(() => removed) : removed;
  }

  /** Adds a unit vector to `id`'s template, when the templates exist. */
  #templateAdd(id: GalleryId, vector: Float32Array): void {
    const templates = this.#templates;
    if (!templates) return;
    let sum = templates.sums.get(id);
    if (!sum) templates.sums.set(id, (sum = new Float32Array(this.model.dim)));
    for (let d = 0; d < sum.length; d++) sum[d]! += vector[d]!;
    this.#templatePut(id, sum);
  }

  #templatePut(id: GalleryId, sum: Float32Array): void {
    const templates = this.#templates!;
    templates.gallery.remove(id);
    // Vectors that cancel out leave no direction to search by.
    if (Math.hypot(...sum) > 1e-4) templates.gallery.add(id, FaceEmbedding.fromVector(sum, this.model));
  }

  #templateRemove(id: GalleryId): void {
    if (!this.#templates) return;
    this.#templates.sums.delete(id);
    this.#templates.gallery.remove(id);
  }

  /** Forgets the templates (after a failed write): the next mean search builds them again. */
  #dropTemplates(): void {
    void this.#templates?.gallery.dispose();
    this.#templates = undefined;
  }

  async #buildTemplates(): Promise<IdentityTemplates<GalleryId>> {
    await this.#settleWrites();
    if (this.#templates) return this.#templates;
    // From here on synchronous: no change can slip between the rows read and the templates.
    const { ids, rows } = this.#boundRows();
    const vectors = this.#store.getRows(rows);
    const dim = this.model.dim;
    const sums = new Map<GalleryId, Float32Array>();
    ids.forEach((id, i) => {
      let sum = sums.get(id);
      if (!sum) sums.set(id, (sum = new Float32Array(dim)));
      for (let d = 0; d < dim; d++) sum[d]! += vectors[i * dim + d]!;
    });
    this.#templates = { sums, gallery: new Gallery<GalleryId>({ model: this.model, threads: this.#threads, capacity: sums.size, storage: this.storage }) };
    for (const [id, sum] of sums) this.#templatePut(id, sum);
    return this.#templates;
  }

  #removeRows(id: GalleryId): number {
    const rows = this.#idRows.get(id);
    if (!rows) return 0;
    const removed = Uint32Array.from(rows);
    this.#idRows.delete(id);
    this.#size -= removed.length;
    this.#templateRemove(id);
    // Retired once the kill has run: it may wait behind queued writes.
    this.#write(
      () => {
        this.#store.kill(removed);
        this.#retire(removed);
      },
      () => {},
    );
    return removed.length;
  }

  /**
   * Rewrites the vectors into a store of exactly the rows held, in id order, and frees the old
   * one: after many removals, the memory of rows no longer used goes back (row reuse keeps memory
   * at the largest size the gallery had; this shrinks it). Waits for queued writes, then runs
   * synchronously (a copy of every vector: about a second per GB); searches, saves and writes go
   * on meanwhile, those already running on the old rows. Resolves to `memory.hostBytes` before
   * and after.
   */
  async compact(): Promise<{ bytesBefore: number; bytesAfter: number }> {
    this.#assertLive();
    await this.#settleWrites();
    const before = this.#store.stats();
    const { ids, rows } = this.#boundRows();
    const vectors = this.#store.getRows(rows);
    const fresh = new (native().GalleryStore)(this.model.dim, this.storage);
    try {
      fresh.reserve(ids.length);
      if (ids.length > 0) fresh.put(Uint32Array.from(ids, (_, i) => i), vectors);
      if (this.device === 'cuda') fresh.attachDevice(this.#deviceId);
    } catch (error) {
      fresh.dispose();
      throw error;
    }
    // Searches and saves already running keep the old store (native code holds it) and map its
    // rows through the old numbering, which they captured.
    const old = this.#store;
    this.#store = fresh;
    this.#rowIds = ids.slice();
    this.#idRows.clear();
    ids.forEach((id, row) => {
      const idRows = this.#idRows.get(id);
      if (idRows) idRows.push(row);
      else this.#idRows.set(id, [row]);
    });
    this.#freeRows.length = 0;
    this.#removedRows.length = 0;
    old.dispose();
    return { bytesBefore: before.bytes, bytesAfter: fresh.stats().bytes };
  }

  /** Every row bound to an id, with its id, in id order. */
  #boundRows(): { ids: GalleryId[]; rows: Uint32Array } {
    const ids: GalleryId[] = [];
    const rows: number[] = [];
    for (const [id, idRows] of this.#idRows) for (const row of idRows) (ids.push(id), rows.push(row));
    return { ids, rows: Uint32Array.from(rows) };
  }

  /** Waits until no write is queued; the caller then runs synchronously on a settled store. */
  async #settleWrites(): Promise<void> {
    while (this.#pendingWrites > 0) await this.#writeTail;
    this.#assertLive();
  }

  /** Registers a reader of the rows (a search or a save): rows removed from now on are not reused until it ends. */
  #beginRead(): number {
    const epoch = this.#epoch;
    this.#activeSearches.set(epoch, (this.#activeSearches.get(epoch) ?? 0) + 1);
    return epoch;
  }

  #endRead(epoch: number): void {
    const left = this.#activeSearches.get(epoch)! - 1;
    if (left === 0) this.#activeSearches.delete(epoch);
    else this.#activeSearches.set(epoch, left);
    this.#releaseRemovedRows();
  }

  /**
   * Frees the removed rows that no running search can report: a row killed in epoch k may be
   * reported (under its old id) by a search that started in epoch k or before, never by a later
   * one. Under steady search traffic rows are reclaimed as the older searches end.
   */
  #releaseRemovedRows(): void {
    // A GPU gallery's device copy is read without a snapshot of the live flags: its rows are
    // reused only while no search runs at all.
    if (this.device === 'cuda' && this.#activeSearches.size > 0) return;
    let oldest = Infinity;
    for (const epoch of this.#activeSearches.keys()) oldest = Math.min(oldest, epoch);
    let kept = 0;
    for (const removed of this.#removedRows) {
      if (removed.epoch < oldest) {
        this.#rowIds[removed.row] = undefined;
        this.#freeRows.push(removed.row);
      } else {
        this.#removedRows[kept++] = removed;
      }
    }
    this.#removedRows.length = kept;
  }

  #searchOptions(options: SearchOptions): { k: number; threshold: number } {
    assertObject('options', options);
    throwIfAborted(options.signal);
    const k = assertInteger('options.k', options.k ?? 10, 1, this.device === 'cuda' ? maxTopKCuda : maxTopK);
    const threshold = options.threshold === undefined ? -Infinity : assertFinite('options.threshold', options.threshold);
    return { k, threshold };
  }

  async #search(queries: Float32Array, count: number, k: number, threshold: number, callSite: Error, signal?: AbortSignal) {
    const epoch = this.#beginRead();
    const task = (async () => {
      try {
        if (this.#pendingWrites > 0) await this.#writeTail;
        // The row numbering of the store searched (compact() may renumber meanwhile).
        const rowIds = this.#rowIds;
        const result = await withCallSite(
          callSite,
          // Native code wants a finite threshold; -3.4e38 keeps every score.
          this.#store.search(queries, count, k, Math.max(threshold, -3.4e38), this.#threads),
        );
        const ids = Array.from(result.rows, (row) => (row < 0 ? undefined : rowIds[row]));
        return { ...result, ids };
      } finally {
        this.#endRead(epoch);
      }
    })();
    this.#inFlight.add(task);
    try {
      const result = await task;
      throwIfAborted(signal);
      return result;
    } finally {
      this.#inFlight.delete(task);
    }
  }

  /** The k most similar embeddings to `query`, best first (ties: the earlier-added first). */
  async search(query: FaceEmbedding, options: SearchOptions = {}): Promise<Match<GalleryId>[]> {
    const callSite = new Error();
    this.#assertLive();
    const checked = this.#checkEmbedding('query', query);
    const { k, threshold } = this.#searchOptions(options);
    const result = await this.#search(unitRows(checked.vector, this.model.dim, 'query', false), 1, k, threshold, callSite, options.signal);
    const matches: Match<GalleryId>[] = [];
    for (let i = 0; i < result.counts[0]!; i++) matches.push({ id: result.ids[i] as GalleryId, score: result.scores[i]! });
    return matches;
  }

  /** Searches many queries in one pass over the gallery (far faster than one call per query). */
  async searchBatch(queries: EmbeddingBatch, options: SearchOptions = {}): Promise<BatchMatches<GalleryId>> {
    const callSite = new Error();
    this.#assertLive();
    if (!(queries instanceof EmbeddingBatch)) throw invalidArgument('queries', 'EmbeddingBatch', queries);
    this.#checkModel('queries', queries.model);
    const { k, threshold } = this.#searchOptions(options);
    const result = await this.#search(unitRows(queries.data, this.model.dim, 'queries', false), queries.count, k, threshold, callSite, options.signal);
    return BatchMatches._of<GalleryId>(k, result.rows, result.scores, result.counts, result.ids);
  }

  /**
   * The k identities most similar to `query`, best first, each once however many embeddings it
   * holds. `aggregate: 'max'` (the default): an identity scores as its best embedding, so this is
   * exact, the first k distinct ids of the row ranking. It searches 2k rows and more (doubling,
   * up to maxTopK rows) until k distinct ids are found or the gallery is exhausted; an identity
   * whose embeddings fill all maxTopK rows ahead of the others hides them (fewer than k come
   * back). `aggregate: 'mean'`: an identity scores as the cosine of the query with the mean of its
   * unit vectors (one template per identity; an identity whose vectors cancel out has none). The
   * templates are built on the first such search (a synchronous pass over every row, after
   * queued writes) and kept up to date by every change from then on; they take one more vector
   * per identity. `threshold` applies to the scores as in search().
   */
  async searchIdentities(query: FaceEmbedding, options: IdentitySearchOptions = {}): Promise<IdentityMatch<GalleryId>[]> {
    const callSite = new Error();
    this.#assertLive();
    const checked = this.#checkEmbedding('query', query);
    const { k, threshold } = this.#searchOptions(options);
    const aggregate = options.aggregate ?? 'max';
    if (aggregate !== 'max' && aggregate !== 'mean') throw invalidArgument('options.aggregate', "'max' or 'mean'", aggregate);
    if (aggregate === 'mean') {
      const templates = this.#templates ?? (await this.#buildTemplates());
      const matches: Match<GalleryId>[] = await withCallSite(callSite, templates.gallery.search(checked, { k, threshold: options.threshold, signal: options.signal }));
      return matches.map(({ id, score }) => ({ id, score, embeddings: this.#idRows.get(id)?.length ?? 0 }));
    }
    const vector = unitRows(checked.vector, this.model.dim, 'query', false);
    const limit = this.device === 'cuda' ? maxTopKCuda : maxTopK;
    for (let rows = Math.min(limit, Math.max(2 * k, 16)); ; rows = Math.min(limit, rows * 2)) {
      const result = await this.#search(vector, 1, rows, threshold, callSite, options.signal);
      const found = new Map<GalleryId, number>();
      for (let i = 0; i < result.counts[0]! && found.size < k; i++) {
        const id = result.ids[i] as GalleryId | undefined;
        if (id !== undefined && !found.has(id)) found.set(id, result.scores[i]!);
      }
      // Done with k identities, or when the rows ran out (fewer than asked came back) or the cap is hit.
      if (found.size === k || result.counts[0]! < rows || rows === limit) {
        return [...found].map(([id, score]) => ({ id, score, embeddings: this.#idRows.get(id)?.length ?? 0 }));
      }
    }
  }

  /**
   * Open-set identification: the best match if its similarity reaches the threshold, else null.
   * The threshold is `threshold`, or the one at false accept rate `far` from the model's shipped
   * calibration (see verify()): the masked calibration when the query's maskProbability is 0.5 or
   * more. Exactly one of the two; `far` on a model without a calibration is ERR_INVALID_ARGUMENT.
   */
  async identify(query: FaceEmbedding, options: { threshold?: number; far?: number; signal?: AbortSignal }): Promise<Match<GalleryId> | null> {
    assertObject('options', options);
    const checked = this.#checkEmbedding('query', query);
    const threshold = thresholdOf(this.model, ScoreCalibration.conditionOf(checked), options, null);
    const [best] = await this.search(query, { k: 1, threshold, signal: options.signal });
    return best ?? null;
  }

  /**
   * Writes the gallery to `path` and resolves once it is on disk: a temporary file beside it,
   * written, fsynced and renamed over `path`, then the folder fsynced, so a crash at any moment
   * leaves the previous file or the new one, never a mix. The file holds every change made
   * before the call (writes still queued are waited for) and the model's fingerprint; changes
   * made while it runs may or may not be in it. Searches and writes go on meanwhile.
   * ERR_IO when the file system refuses (the message says why; `path` is then unchanged).
   *
   * On a gallery from Gallery.open, `path` defaults to its own file: the journal's changes are
   * then folded into the file and the journal starts over (saves of it run one at a time). Any
   * other path gets a copy that has no journal.
   */
  async save(path?: string): Promise<void> {
    const callSite = new Error();
    this.#assertLive();
    if (path === undefined && !this.#journalTarget) throw invalidArgument('path', 'a path (this gallery has no file of its own: see Gallery.open)', path);
    const target = path === undefined ? this.#journalTarget! : assertPath('path', path);
    if (target === this.#journalTarget) {
      this.#journal!.assertUsable();
      const fold = this.#saveTail.then(() => this.#fold(target, callSite));
      this.#saveTail = fold.catch(() => undefined);
      return this.#track(fold);
    }
    return this.#track(this.#writeFile(target, callSite, () => undefined));
  }

  /** Runs `task` as work that dispose() waits for. */
  async #track<T>(task: Promise<T>): Promise<T> {
    this.#inFlight.add(task);
    try {
      return await task;
    } finally {
      this.#inFlight.delete(task);
    }
  }

  /**
   * Writes the rows bound to ids whose vectors are written. `link` is called once the rows are
   * chosen, in the same tick, and names the journal the file goes with (if any).
   */
  async #writeFile(target: string, callSite: Error, link: () => JournalLink | undefined): Promise<void> {
    // A journaled gallery's file must hold every change up to its link's sequence number, so it
    // waits until no write is queued; other galleries take what is written.
    if (this.#journal) {
      await this.#settleWrites();
    } else {
      if (this.#pendingWrites > 0) await this.#writeTail;
      this.#assertLive();
    }
    // Registered like a search: no row it writes is reused before it is done.
    const epoch = this.#beginRead();
    try {
      const bound = this.#boundRows();
      // A row bound to an id whose vector is still queued (a write issued while this save runs)
      // is not in the store yet: such changes may be left out.
      const live = this.#store.liveFlags(bound.rows);
      const ids = bound.ids.filter((_, i) => live[i] === 1);
      const rows = bound.rows.filter((_, i) => live[i] === 1);
      const meta = encodeMeta(this.model, link());
      await withCallSite(callSite, this.#store.save(target, rows, encodeIds(ids), meta));
    } finally {
      this.#endRead(epoch);
    }
  }

  /** Saves a journaled gallery's own file, then starts its journal over from it. */
  async #fold(target: string, callSite: Error): Promise<void> {
    const journal = this.#journal!;
    let seq = 0;
    await this.#writeFile(target, callSite, () => {
      seq = journal.seq;
      return { lineage: journal.lineage, seq };
    });
    await withCallSite(callSite, journal.rebase(seq));
  }

  /**
   * Resolves once every change made before the call is in the journal on disk (a gallery from
   * Gallery.open; others have nothing to flush and throw ERR_INVALID_ARGUMENT). Rejects with
   * ERR_IO when the journal could not be written: the gallery then refuses further changes
   * (searches go on) until it is opened again, since what is on disk is no longer known.
   */
  async flush(): Promise<void> {
    this.#assertLive();
    if (!this.#journal) throw invalidArgument('this', 'a gallery from Gallery.open (this one lives in memory only)', 'a gallery without a journal');
    await this.#journal.sync();
  }

  /** The journal of a gallery from Gallery.open; null for others. */
  get journal(): JournalStatus | null {
    this.#assertLive();
    return this.#journal ? this.#journal.status : null;
  }

  /**
   * Opens a file written by save(). Every byte is checked (checksums of each part, lengths,
   * values) before anything is returned: a damaged or truncated file is ERR_GALLERY_CORRUPT
   * (`details.section`, `details.offset`), a file of another format version ERR_GALLERY_VERSION,
   * a gallery of another model than `options.model` ERR_MODEL_MISMATCH, a missing or unreadable
   * file ERR_IO. Never a partial gallery. The file alone: a journal beside it is not read (see
   * Gallery.open).
   */
  static async load<GalleryId extends Id = string>(path: string, options: GalleryLoadOptions): Promise<Gallery<GalleryId>> {
    const callSite = new Error();
    const source = assertPath('path', path);
    const gallery = Gallery.#forFile<GalleryId>(options);
    try {
      await gallery.#loadFile(source, callSite);
      return gallery;
    } catch (error) {
      await gallery.dispose();
      throw error;
    }
  }

  /**
   * Opens the gallery kept in the file `path` and its journal (`path` + '.journal'), creating
   * both when neither exists. The file is loaded as by Gallery.load, then the journal's changes
   * are replayed onto it; from then on every add, addMany and remove is appended to the journal
   * (one record each, with a checksum) and save() with no path folds the journal into the file.
   * A process killed at any moment loses at most the changes not yet acknowledged as durable
   * (`add(..., { durable: true })`, addMany, flush()). A torn last record, which a crash during
   * an append leaves, is dropped: it was never acknowledged.
   *
   * Errors: those of Gallery.load for the file; ERR_GALLERY_CORRUPT (`details.section`
   * 'journal') for a damaged journal or one that does not continue the file (another gallery's,
   * or newer than the file: changes between them would be missing); ERR_IO when the journal is
   * open for writing elsewhere (one writer per gallery, in any process) or cannot be written.
   * Dispose the gallery to close the journal: dispose() writes what is queued first.
   */
  static async open<GalleryId extends Id = string>(path: string, options: GalleryLoadOptions): Promise<Gallery<GalleryId>> {
    const callSite = new Error();
    const source = assertPath('path', path);
    const gallery = Gallery.#forFile<GalleryId>(options);
    try {
      const fileExists = existsSync(source);
      const link = fileExists ? await gallery.#loadFile(source, callSite) : undefined;
      const fileSeq = link?.seq ?? 0;
      const opened = await withCallSite(
        callSite,
        native().openGalleryJournal(`${source}.journal`, gallery.model.dim, link?.lineage ?? null, fileSeq, fileExists),
      );
      let journal: JournalQueue;
      try {
        gallery.#replay(opened.ops, decodeIds(opened.ids, opened.ops.length, `${source}.journal`) as GalleryId[], opened.vectors, opened.baseSeq, fileSeq);
        const seq = Math.max(fileSeq, opened.baseSeq + opened.ops.length);
        journal = new JournalQueue(opened.journal, `${source}.journal`, opened.lineage, seq, fileSeq);
      } catch (error) {
        opened.journal.close();
        throw error;
      }
      gallery.#journal = journal;
      gallery.#journalTarget = source;
      // A new gallery (or a file saved without a journal) gets a file that names its journal.
      if (!link) await gallery.save();
      return gallery;
    } catch (error) {
      await gallery.dispose().catch(() => undefined);
      throw error;
    }
  }

  static #forFile<GalleryId extends Id>(options: GalleryLoadOptions): Gallery<GalleryId> {
    assertObject('options', options);
    if ((options as GalleryOptions).capacity !== undefined) throw invalidArgument('options.capacity', 'nothing (a loaded gallery holds the rows of its file)', (options as GalleryOptions).capacity);
    return new Gallery<GalleryId>(options);
  }

  /**
   * Loads a gallery file into this empty gallery; returns the journal the file names, if any.
   * The model is checked from the file's description first; then its rows stream from the file
   * into the store (no copy of the file in memory), and the ids bind to rows 0..count-1.
   */
  async #loadFile(source: string, callSite: Error): Promise<JournalLink | undefined> {
    const description = await withCallSite(callSite, native().describeGalleryFile(source));
    const { journal } = checkMeta(description.meta, description.dim, this.model, source);
    if (description.count === 0) return journal;
    const bytes = description.count * (rowBytes(this.model.dim, this.storage) + 1);
    if (bytes > totalmem()) {
      throw new MaskFaceError(
        `The gallery file ${source} holds ${description.count} rows, which need ${(bytes / 2 ** 30).toFixed(1)} GiB as ${this.storage}; this machine has ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
        'ERR_OUT_OF_MEMORY',
        { details: { path: source, count: description.count, bytes } },
      );
    }
    this.#store.reserve(description.count);
    const loaded = await withCallSite(callSite, this.#store.loadFile(source, description.meta));
    const ids = decodeIds(loaded.ids, loaded.count, source) as GalleryId[];
    this.#rowIds = new Array<GalleryId | undefined>(ids.length);
    ids.forEach((id, row) => this.#bind(id, row));
    return journal;
  }

  /** Applies a journal's records numbered after `fileSeq` (record i is number baseSeq + 1 + i). */
  #replay(ops: Uint8Array, ids: GalleryId[], vectors: Float32Array, baseSeq: number, fileSeq: number): void {
    const dim = this.model.dim;
    let vector = 0;
    for (let i = 0; i < ops.length; i++) {
      const isAdd = ops[i] === opAdd;
      if (baseSeq + 1 + i > fileSeq) {
        if (isAdd) this.#insert(ids[i]!, vectors.subarray(vector * dim, (vector + 1) * dim));
        else this.#removeRows(ids[i]!);
      }
      if (isAdd) vector++;
    }
  }

  #assertLive(): void {
    if (this.#disposed) throw new MaskFaceError('This Gallery has been disposed', 'ERR_DISPOSED');
  }

  /**
   * Rejects new calls at once, waits for searches and writes in flight, then frees the vectors.
   * A gallery from Gallery.open writes its queued journal records and closes the journal; the
   * promise rejects (ERR_IO) when they could not be written. Idempotent.
   */
  dispose(): Promise<void> {
    if (this.#disposing) return this.#disposing;
    this.#disposed = true;
    this.#disposing = (async () => {
      await Promise.allSettled([...this.#inFlight]);
      this.#store.dispose();
      await this.#templates?.gallery.dispose();
      // Last: what is queued for the journal goes to disk before the file closes.
      await this.#journal?.close();
    })();
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** The error that stops a journal whose gallery dropped a change the journal already holds. */
function journalDiverged(path: string, cause: unknown): MaskFaceError {
  return new MaskFaceError(
    `A gallery change failed after it was written to the journal ${path}; open the gallery again to continue`,
    'ERR_IO',
    { cause, details: { path } },
  );
}
