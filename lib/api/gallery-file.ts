/**
 * The JavaScript side of gallery files (native/core/gallery_file.h holds the format, its
 * checksums and the atomic write): the ids section, and the meta text that names the model.
 * @module
 */
import { MaskFaceError } from './errors.js';
import type { ModelFingerprint } from './types.js';
import { MASKFACE_VERSION } from './versions.js';

const idString = 1;
const idNumber = 2;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The ids section: per row a kind byte, then a u32 length and UTF-8 bytes, or an f64. */
export function encodeIds(ids: readonly (string | number)[]): Uint8Array {
  const strings = ids.map((id) => (typeof id === 'string' ? encoder.encode(id) : undefined));
  const size = strings.reduce((sum, bytes) => sum + 1 + (bytes ? 4 + bytes.length : 8), 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let offset = 0;
  ids.forEach((id, i) => {
    const bytes = strings[i];
    if (bytes) {
      out[offset] = idString;
      view.setUint32(offset + 1, bytes.length, true);
      out.set(bytes, offset + 5);
      offset += 5 + bytes.length;
    } else {
      out[offset] = idNumber;
      view.setFloat64(offset + 1, id as number, true);
      offset += 9;
    }
  });
  return out;
}

function corrupt(path: string, section: string, why: string): MaskFaceError {
  return new MaskFaceError(`The gallery file ${path} is damaged: ${why}`, 'ERR_GALLERY_CORRUPT', { details: { path, section } });
}

/**
 * The ids of an ids section the native reader has checked for structure; what it cannot check
 * (UTF-8, empty strings, non-finite numbers) is ERR_GALLERY_CORRUPT here.
 */
export function decodeIds(section: Uint8Array, count: number, path: string): (string | number)[] {
  const view = new DataView(section.buffer, section.byteOffset, section.byteLength);
  const ids: (string | number)[] = new Array(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (section[offset] === idString) {
      const length = view.getUint32(offset + 1, true);
      let id: string;
      try {
        id = decoder.decode(section.subarray(offset + 5, offset + 5 + length));
      } catch {
        throw corrupt(path, 'ids', `id ${i} is not UTF-8`);
      }
      if (id.length === 0) throw corrupt(path, 'ids', `id ${i} is empty`);
      ids[i] = id;
      offset += 5 + length;
    } else {
      const id = view.getFloat64(offset + 1, true);
      if (!Number.isFinite(id)) throw corrupt(path, 'ids', `id ${i} is not a finite number`);
      ids[i] = id;
      offset += 9;
    }
  }
  return ids;
}

/**
 * Which journal a gallery file goes with (files saved by a gallery from Gallery.open): the lineage
 * both carry, and the last change the file holds.
 */
export interface JournalLink {
  lineage: string;
  seq: number;
}

/** What a gallery file says about itself, beside its rows and ids. */
interface GalleryMeta {
  format: 'maskface-gallery';
  model: ModelFingerprint;
  maskface: string;
  savedAt: string;
  journal?: JournalLink;
}

export function encodeMeta(model: ModelFingerprint, journal?: JournalLink): string {
  const meta: GalleryMeta = { format: 'maskface-gallery', model: { ...model }, maskface: MASKFACE_VERSION, savedAt: new Date().toISOString() };
  if (journal) meta.journal = { ...journal };
  return JSON.stringify(meta);
}

/**
 * The model of a file's meta text, checked against the model the caller expects:
 * ERR_GALLERY_CORRUPT when the text is not ours, ERR_MODEL_MISMATCH when the models differ.
 */
export function checkMeta(text: string, dim: number, expected: ModelFingerprint, path: string): { model: ModelFingerprint; journal?: JournalLink } {
  let meta: Partial<GalleryMeta>;
  try {
    meta = JSON.parse(text) as Partial<GalleryMeta>;
  } catch {
    throw corrupt(path, 'meta', 'its description is not JSON');
  }
  const model = meta?.model;
  if (meta?.format !== 'maskface-gallery' || typeof model?.id !== 'string' || model.dim !== dim) {
    throw corrupt(path, 'meta', 'its description does not name a model of its dimension');
  }
  if (model.id !== expected.id || model.dim !== expected.dim) {
    throw new MaskFaceError(
      `The gallery file ${path} holds embeddings of model ${model.name ?? model.id.slice(0, 12)} (${model.dim}-d); ` +
        `expected ${expected.name ?? expected.id.slice(0, 12)} (${expected.dim}-d)`,
      'ERR_MODEL_MISMATCH',
      { details: { path, fileModel: model, expectedModel: { ...expected } } },
    );
  }
  const journal = meta.journal;
  if (journal !== undefined && (typeof journal?.lineage !== 'string' || !/^[0-9a-f]{16}$/.test(journal.lineage) || !Number.isSafeInteger(journal.seq) || journal.seq < 0)) {
    throw corrupt(path, 'meta', 'its journal link is malformed');
  }
  return journal === undefined ? { model } : { model, journal: { lineage: journal.lineage, seq: journal.seq } };
}
