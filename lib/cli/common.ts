/**
 * Shared pieces of the command line: photo folders, the gallery file, a progress line, output.
 * @module
 */
import { open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, extname, join, relative } from 'node:path';
import { EmbeddingBatch, FaceEmbedding } from '../api/embedding.js';
import { assertSameModel } from '../api/embedding.js';
import { MaskFaceError } from '../api/errors.js';
import type { PhotoFace } from '../api/face-recognizer.js';
import { Gallery } from '../api/gallery.js';
export { exists } from '../setup/npm-fetch.js';
import type { ModelFingerprint } from '../api/types.js';

/** File extensions read as photos. */
export const photoExtensions = new Set(['.jpg', '.jpeg', '.png', '.webp', '.avif', '.tif', '.tiff', '.gif', '.pgm', '.ppm']);

export interface LabelledPhoto {
  readonly identity: string;
  readonly path: string;
}

/** An error the user made on the command line: printed without a stack, exit status 2. */
export class UsageError extends Error {}

function isPhoto(name: string): boolean {
  return photoExtensions.has(extname(name).toLowerCase());
}

/**
 * The photos of a folder and who is in them: a subfolder per identity (every photo inside it,
 * subfolders included), and photos directly in the folder named `<identity>.<ext>`. With a
 * labels CSV (`path,identity` per line, paths relative to the folder; a header line is skipped)
 * the labels decide instead. Sorted by identity, then path.
 */
export async function labelledPhotos(dir: string, labelsCsv?: string): Promise<LabelledPhoto[]> {
  const photos: LabelledPhoto[] = [];
  if (labelsCsv !== undefined) {
    const lines = (await readFile(labelsCsv, 'utf8')).split(/\r?\n/).filter((line) => line.trim() !== '');
    for (const [i, line] of lines.entries()) {
      const [path, identity] = line.split(',').map((field) => field.trim());
      if (i === 0 && !isPhoto(path ?? '')) continue; // header
      if (!path || !identity) throw new UsageError(`${labelsCsv}:${i + 1}: expected 'path,identity'`);
      photos.push({ identity, path: join(dir, path) });
    }
  } else {
    const walk = async (folder: string): Promise<string[]> => {
      const found: string[] = [];
      for (const entry of await readdir(folder, { withFileTypes: true })) {
        const path = join(folder, entry.name);
        if (entry.isDirectory()) found.push(...(await walk(path)));
        else if (isPhoto(entry.name)) found.push(path);
      }
      return found;
    };
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        for (const photo of await walk(path)) photos.push({ identity: entry.name, path: photo });
      } else if (isPhoto(entry.name)) {
        photos.push({ identity: basename(entry.name, extname(entry.name)), path });
      }
    }
  }
  return photos.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : a.path < b.path ? -1 : 1));
}

/** The face a one-person photo is about: the largest box (ties: the more confident). */
export function mainFace(faces: readonly PhotoFace[]): PhotoFace | undefined {
  let best: PhotoFace | undefined;
  for (const face of faces) {
    const area = face.box.width * face.box.height;
    if (best === undefined || area > best.box.width * best.box.height) best = face;
  }
  return best;
}

/**
 * The command line's gallery file: JSON holding the model fingerprint, one entry per enrolled
 * photo (identity and source) and the unit vectors as base64 little-endian float32, written
 * atomically (temporary file, fsync, rename, fsync of the folder). See docs/cli.md.
 */
export interface GalleryFile {
  readonly format: 'maskface-gallery-json';
  readonly version: 1;
  readonly model: ModelFingerprint;
  readonly entries: { id: string; source: string }[];
  /** count x dim float32, little-endian, base64 */
  readonly vectors: string;
}

export interface GalleryContents {
  model: ModelFingerprint;
  entries: { id: string; source: string }[];
  vectors: Float32Array;
}

export async function readGalleryFile(path: string): Promise<GalleryContents> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the gallery ${path}: ${(error as Error).message}`);
  }
  return parseGalleryFile(text, path);
}

/** A gallery file's text (`path` names it in messages): ERR_INVALID_ARGUMENT when it is not one, or damaged. */
export function parseGalleryFile(text: string, path: string): GalleryContents {
  let file: GalleryFile;
  try {
    file = JSON.parse(text) as GalleryFile;
  } catch (error) {
    throw new MaskFaceError(`${path} is not a maskface gallery file: ${(error as Error).message}`, 'ERR_INVALID_ARGUMENT');
  }
  if (typeof file !== 'object' || file === null || file.format !== 'maskface-gallery-json' || file.version !== 1 || !Array.isArray(file.entries)) {
    throw new MaskFaceError(`${path} is not a maskface gallery file (format ${String(file?.format)}, version ${String(file?.version)})`, 'ERR_INVALID_ARGUMENT');
  }
  const dim = file.model?.dim;
  const damaged = (why: string) => new MaskFaceError(`${path} is damaged: ${why}`, 'ERR_INVALID_ARGUMENT');
  if (typeof file.model?.id !== 'string' || !Number.isInteger(dim) || dim < 1 || typeof file.vectors !== 'string') throw damaged('no model fingerprint or vectors');
  if (!file.entries.every((e) => typeof e === 'object' && e !== null && typeof e.id === 'string' && e.id.length > 0 && typeof e.source === 'string')) {
    throw damaged('an entry is not { id, source }');
  }
  const bytes = Buffer.from(file.vectors, 'base64');
  if (bytes.length !== file.entries.length * dim * 4) {
    throw damaged(`${bytes.length} vector bytes for ${file.entries.length} entries of ${dim} values`);
  }
  const vectors = new Float32Array(bytes.length / 4);
  new Uint8Array(vectors.buffer).set(bytes);
  if (!vectors.every(Number.isFinite)) throw damaged('a vector holds NaN or Infinity');
  return { model: { id: file.model.id, dim, ...(typeof file.model.name === 'string' ? { name: file.model.name } : {}) }, entries: file.entries, vectors };
}

export async function writeGalleryFile(path: string, contents: GalleryContents): Promise<void> {
  const file: GalleryFile = {
    format: 'maskface-gallery-json',
    version: 1,
    model: { id: contents.model.id, dim: contents.model.dim, ...(contents.model.name ? { name: contents.model.name } : {}) },
    entries: contents.entries,
    vectors: Buffer.from(contents.vectors.buffer, contents.vectors.byteOffset, contents.vectors.byteLength).toString('base64'),
  };
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(JSON.stringify(file));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  const folder = await open(dirname(path), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/** A Gallery holding a gallery file's vectors (ids are the identities; several rows per identity). */
export async function galleryFrom(contents: GalleryContents, model: ModelFingerprint, path: string): Promise<Gallery<string>> {
  assertSameModel(model, contents.model, `The gallery ${path}`);
  const gallery = new Gallery<string>({ model });
  if (contents.entries.length > 0) {
    await gallery.addMany(
      contents.entries.map((e) => e.id),
      EmbeddingBatch.fromVectors(contents.vectors, model),
    );
  }
  return gallery;
}

/** Best match per identity, best first, at most k: rows of one identity count once. */
export async function searchIdentities(
  gallery: Gallery<string>,
  query: FaceEmbedding,
  k: number,
  photosPerIdentity: number,
): Promise<{ id: string; score: number }[]> {
  const rows = await gallery.search(query, { k: Math.min(gallery.size, k * photosPerIdentity) });
  const seen = new Set<string>();
  const matches: { id: string; score: number }[] = [];
  for (const { id, score } of rows) {
    if (seen.has(id)) continue;
    seen.add(id);
    matches.push({ id, score });
    if (matches.length === k) break;
  }
  return matches;
}

/**
 * A progress line on stderr: count, rate and time left. Redrawn in place on a terminal; elsewhere
 * a plain line every 5 seconds.
 */
export class Progress {
  readonly #total: number;
  readonly #label: string;
  readonly #start = performance.now();
  readonly #tty = process.stderr.isTTY === true;
  #lastPrint = 0;
  #done = 0;

  constructor(label: string, total: number) {
    this.#label = label;
    this.#total = total;
  }

  tick(): void {
    this.#done++;
    const now = performance.now();
    if (this.#done < this.#total && now - this.#lastPrint < (this.#tty ? 100 : 5000)) return;
    this.#lastPrint = now;
    const seconds = (now - this.#start) / 1000;
    const rate = this.#done / Math.max(seconds, 1e-9);
    const left = (this.#total - this.#done) / Math.max(rate, 1e-9);
    const width = 24;
    const filled = Math.round((width * this.#done) / Math.max(this.#total, 1));
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const line = `${this.#label} ${bar} ${this.#done}/${this.#total}  ${rate.toFixed(1)}/s  ETA ${formatSeconds(left)}`;
    if (this.#tty) process.stderr.write(`\r${line}${this.#done === this.#total ? '\n' : ''}`);
    else process.stderr.write(`${line}\n`);
  }
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A path for messages: relative to the current folder when inside it. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel;
}
