/**
 * The JavaScript side of gallery journals (native/core/gallery_journal.h holds the format, its
 * checksums and the appends): record payloads, group commit, and the order of appends and rebases.
 * @module
 */
import { MaskFaceError } from './errors.js';
import { encodeIds } from './gallery-file.js';
import type { NativeGalleryJournal } from '../runtime/native.js';

export const opAdd = 1;
export const opRemove = 2;

/** A record's payload: the operation, the id entry, and for an add the vector. */
export function encodeRecord(op: typeof opAdd | typeof opRemove, id: string | number, vector?: Float32Array): Uint8Array {
  const idEntry = encodeIds([id]);
  const vectorBytes = vector ? vector.byteLength : 0;
  const payload = new Uint8Array(1 + idEntry.length + vectorBytes);
  payload[0] = op;
  payload.set(idEntry, 1);
  if (vector) payload.set(new Uint8Array(vector.buffer, vector.byteOffset, vectorBytes), 1 + idEntry.length);
  return payload;
}

/**
 * Numbers a gallery's changes and writes them to its journal in that order. Changes queued while
 * an append runs go out together in the next one (one fdatasync for all of them). A failed append
 * or rebase stops the journal: every later change and sync is refused with that error, since what
 * is on disk is no longer known.
 */
export class JournalQueue {
  readonly path: string;
  readonly lineage: string;
  readonly #native: NativeGalleryJournal;
  /** The sequence number of the last change numbered, of the last one on disk, of the file. */
  #seq: number;
  #durable: number;
  #fileSeq: number;
  #bytes: number;
  #queue: Uint8Array[] = [];
  #appendScheduled = false;
  #tail: Promise<void> = Promise.resolve();
  #waiters: { seq: number; resolve: () => void; reject: (error: Error) => void }[] = [];
  #failure: MaskFaceError | undefined;
  #closed = false;

  constructor(native: NativeGalleryJournal, path: string, lineage: string, seq: number, fileSeq: number) {
    this.#native = native;
    this.path = path;
    this.lineage = lineage;
    this.#seq = seq;
    this.#durable = seq;
    this.#fileSeq = fileSeq;
    this.#bytes = native.stats().bytes;
  }

  /** The last change numbered. */
  get seq(): number {
    return this.#seq;
  }

  get status(): { path: string; bytes: number; unsaved: number; pending: number } {
    return { path: this.path, bytes: this.#bytes, unsaved: this.#seq - this.#fileSeq, pending: this.#seq - this.#durable };
  }

  /** Throws the error that stopped the journal, if one did. */
  assertUsable(): void {
    if (this.#failure) throw this.#failure;
  }

  /** Numbers a change and queues its record; returns its sequence number. */
  record(payload: Uint8Array): number {
    this.assertUsable();
    this.#queue.push(payload);
    this.#seq++;
    if (!this.#appendScheduled) {
      this.#appendScheduled = true;
      this.#tail = this.#tail.then(() => this.#appendQueued());
    }
    return this.#seq;
  }

  /** Resolves once the change numbered `seq` (default: every change so far) is on disk. */
  sync(seq = this.#seq): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (seq <= this.#durable) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ seq, resolve, reject }));
  }

  /** Stops the journal with `error`: it and every later call fail with it. */
  fail(error: MaskFaceError): void {
    this.#failure ??= error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#failure);
  }

  async #appendQueued(): Promise<void> {
    this.#appendScheduled = false;
    const payloads = this.#queue.splice(0);
    if (payloads.length === 0 || this.#failure) return;
    const first = this.#durable + 1;
    const lengths = Uint32Array.from(payloads, (p) => p.length);
    const bytes = new Uint8Array(lengths.reduce((sum, n) => sum + n, 0));
    let at = 0;
    for (const payload of payloads) {
      bytes.set(payload, at);
      at += payload.length;
    }
    try {
      this.#bytes = await this.#native.append(bytes, lengths, first);
    } catch (error) {
      this.fail(asJournalError(error, this.path));
      return;
    }
    this.#durable = first + payloads.length - 1;
    const waiting = this.#waiters;
    this.#waiters = waiting.filter((waiter) => waiter.seq > this.#durable);
    for (const waiter of waiting) if (waiter.seq <= this.#durable) waiter.resolve();
  }

  /**
   * After a gallery file holding every change up to `seq` was saved: starts the journal over from
   * it. Runs after the appends queued before it.
   */
  rebase(seq: number): Promise<void> {
    const done = this.#tail.then(async () => {
      this.assertUsable();
      try {
        this.#bytes = await this.#native.rebase(seq);
      } catch (error) {
        const failure = asJournalError(error, this.path);
        this.fail(failure);
        throw failure;
      }
      this.#fileSeq = seq;
    });
    this.#tail = done.catch(() => undefined);
    return done;
  }

  /** Writes what is queued, then closes the file; rejects if the last appends failed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const flushed = this.sync().then(
      () => undefined,
      (error: unknown) => error,
    );
    await this.#tail;
    this.#native.close();
    const error = await flushed;
    if (error) throw error;
  }
}

function asJournalError(error: unknown, path: string): MaskFaceError {
  if (error instanceof MaskFaceError && error.code === 'ERR_IO') return error;
  return new MaskFaceError(`The gallery journal ${path} could not be written: ${(error as Error).message}`, 'ERR_IO', {
    cause: error,
    details: { path },
  });
}
