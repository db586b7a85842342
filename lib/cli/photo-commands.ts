/**
 * The photo commands of the command line: enrol, search, verify, detect, heatmap.
 * @module
 */
import { writeFile } from 'node:fs/promises';
import { alignFace } from '../api/align.js';
import { decodeImage, loadSharp, type DecodedImage } from '../api/image-input.js';
import type { FaceAlignment, FaceRecognizer, PhotoFace } from '../api/face-recognizer.js';
import type { FaceDetector } from '../api/face-detector.js';
import { arcfaceTemplate112 } from '../setup/models.js';
import { regionPlane } from '../api/regions.js';
import { verify as verifyEmbeddings, type VerifyOptions } from '../api/calibration.js';
import {
  displayPath,
  exists,
  galleryFrom,
  labelledPhotos,
  mainFace,
  Progress,
  readGalleryFile,
  searchIdentities,
  UsageError,
  writeGalleryFile,
  type GalleryContents,
} from './common.js';

export interface PhotoContext {
  recognizer: FaceRecognizer;
  detector: FaceDetector;
  alignment: FaceAlignment;
  minScore: number | undefined;
  mirrorLandmarks: boolean;
  /** flip test-time augmentation (EmbedOptions.flip) */
  flip: boolean;
}

/** Every face of a photo, embedded with the command's options. */
export async function facesOf(context: PhotoContext, image: string | Uint8Array | DecodedImage): Promise<PhotoFace[]> {
  return context.recognizer.embedFaces(image, {
    detector: context.detector,
    alignment: context.alignment,
    minScore: context.minScore,
    mirrorLandmarks: context.mirrorLandmarks,
    flip: context.flip,
  });
}

export interface EnrolSummary {
  gallery: string;
  identities: number;
  enrolled: number;
  /** photos where no face was found (nothing enrolled) */
  noFace: string[];
  /** photos with several faces: the largest was enrolled */
  severalFaces: string[];
}

/** Enrols the largest face of every photo of a folder (a subfolder per identity, or `<id>.<ext>` files). */
export async function enrol(context: PhotoContext, dir: string, galleryPath: string): Promise<EnrolSummary> {
  const photos = await labelledPhotos(dir);
  if (photos.length === 0) throw new UsageError(`no photos in ${dir} (a subfolder per identity, or files named <identity>.jpg)`);
  const model = context.recognizer.model;
  const contents: GalleryContents = (await exists(galleryPath))
    ? await readGalleryFile(galleryPath)
    : { model, entries: [], vectors: new Float32Array(0) };
  // Checked before any work: adding to a gallery of another model would be refused at the end.
  await (await galleryFrom(contents, model, galleryPath)).dispose();
  const vectors: Float32Array[] = [contents.vectors];
  const summary: EnrolSummary = { gallery: galleryPath, identities: 0, enrolled: 0, noFace: [], severalFaces: [] };
  const progress = new Progress('enrolling', photos.length);
  const identities = new Set<string>();
  for (const photo of photos) {
    const faces = await facesOf(context, photo.path);
    const face = mainFace(faces);
    if (face === undefined) summary.noFace.push(displayPath(photo.path));
    else {
      if (faces.length > 1) summary.severalFaces.push(displayPath(photo.path));
      contents.entries.push({ id: photo.identity, source: displayPath(photo.path) });
      vectors.push(face.embedding.vector);
      identities.add(photo.identity);
      summary.enrolled++;
    }
    progress.tick();
  }
  const all = new Float32Array(vectors.reduce((n, v) => n + v.length, 0));
  let offset = 0;
  for (const v of vectors) {
    all.set(v, offset);
    offset += v.length;
  }
  await writeGalleryFile(galleryPath, { model: contents.model, entries: contents.entries, vectors: all });
  summary.identities = identities.size;
  return summary;
}

export interface SearchResult {
  faces: { box: [number, number, number, number]; maskProbability: number | null; matches: { id: string; score: number }[] }[];
}

/** Every face of a photo against a gallery file: the k best identities of each. */
export async function search(context: PhotoContext, photo: string, galleryPath: string, k: number): Promise<SearchResult> {
  const contents = await readGalleryFile(galleryPath);
  await using gallery = await galleryFrom(contents, context.recognizer.model, galleryPath);
  const perIdentity = new Map<string, number>();
  for (const e of contents.entries) perIdentity.set(e.id, (perIdentity.get(e.id) ?? 0) + 1);
  const most = Math.max(1, ...perIdentity.values());
  const faces = await facesOf(context, photo);
  const result: SearchResult = { faces: [] };
  for (const face of faces) {
    result.faces.push({
      box: [face.box.x, face.box.y, face.box.width, face.box.height].map((v) => Math.round(v * 10) / 10) as [number, number, number, number],
      maskProbability: face.maskProbability ?? null,
      matches: gallery.size === 0 ? [] : await searchIdentities(gallery, face.embedding, k, most),
    });
  }
  return result;
}

export interface VerifyResult {
  score: number;
  threshold: number;
  /** which distribution the threshold came from: 'masked' when either face wears a mask */
  calibration: 'bare' | 'masked';
  /** the false accept rate asked for; null with --threshold */
  far: number | null;
  same: boolean;
  maskProbability: [number | null, number | null];
}

/** The largest face of each photo compared: cosine score, the threshold for the pair and the decision. */
export async function verify(context: PhotoContext, a: string, b: string, options: VerifyOptions): Promise<VerifyResult> {
  const [fa, fb] = await Promise.all(
    [a, b].map(async (photo) => {
      const face = mainFace(await facesOf(context, photo));
      if (face === undefined) throw new UsageError(`no face found in ${photo}`);
      return face;
    }),
  );
  const result = verifyEmbeddings(fa!.embedding, fb!.embedding, options);
  return {
    score: result.score,
    threshold: result.threshold,
    calibration: result.condition,
    far: result.far,
    same: result.same,
    maskProbability: [fa!.maskProbability ?? null, fb!.maskProbability ?? null],
  };
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/** Draws boxes, 5 landmarks and the mask probability of every face onto the photo, as a PNG. */
export async function detect(context: PhotoContext, photo: string, out: string | undefined): Promise<PhotoFace[]> {
  const image = await decodeImage(photo);
  const faces = await facesOf(context, image);
  if (out === undefined) return faces;
  const line = Math.max(2, Math.round(Math.max(image.width, image.height) / 400));
  const font = Math.max(12, Math.round(Math.max(image.width, image.height) / 60));
  const shapes = faces.map((face) => {
    const masked = (face.maskProbability ?? 0) >= 0.5;
    const colour = masked ? '#ff3b30' : '#34c759';
    const { x, y, width, height } = face.box;
    const label = `${face.score.toFixed(2)}${face.maskProbability === undefined ? '' : ` · mask ${face.maskProbability.toFixed(2)}`}`;
    const dots = face.landmarks.map(([px, py]) => `<circle cx="${px}" cy="${py}" r="${line * 1.5}" fill="#ffcc00" stroke="black" stroke-width="1"/>`);
    return [
      `<rect x="${x}" y="${y}" width="${width}" height="${height}" fill="none" stroke="${colour}" stroke-width="${line}"/>`,
      ...dots,
      `<text x="${x}" y="${Math.max(font, y - line * 2)}" font-family="sans-serif" font-size="${font}" fill="${colour}" stroke="black" stroke-width="${Math.max(1, line / 3)}" paint-order="stroke">${escapeXml(label)}</text>`,
    ].join('');
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${image.width}" height="${image.height}">${shapes.join('')}</svg>`;
  const sharp = await loadSharp();
  const channels = image.format === 'gray' ? 1 : 3;
  await writeFile(
    out,
    await sharp(image.data, { raw: { width: image.width, height: image.height, channels } })
      .toColourspace('srgb')
      .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
      .png()
      .toBuffer(),
  );
  return faces;
}

/**
 * Each face aligned as the network sees it, beside the same crop tinted by its region map (red:
 * mask, blue: background, untinted: visible face), two tiles per row, scaled up 2x, as a PNG.
 */
export async function heatmap(context: PhotoContext, photo: string, out: string): Promise<PhotoFace[]> {
  const image = await decodeImage(photo);
  const faces = await facesOf(context, image);
  if (faces.length === 0) return faces;
  if (faces[0]!.embedding.regions === undefined) {
    throw new UsageError(`the model ${context.recognizer.model.name ?? ''} has no region maps; heatmap needs a maskface (CAL) model`);
  }
  const size = 112;
  const scale = 2;
  const tile = size * scale;
  const canvas = new Uint8Array(2 * tile * tile * faces.length * 3);
  const rowBytes = 2 * tile * 3;

  faces.forEach((face, f) => {
    const points = face.alignment === 'eyes-nose' ? 3 : 5;
    const landmarks = face.landmarks.slice(0, points).flat();
    const crop = alignFace(image, landmarks, { template: arcfaceTemplate112.slice(0, 2 * points) });
    const map = face.embedding.regions!;
    const mask = regionPlane(map, 'mask');
    const background = regionPlane(map, 'background');
    for (let y = 0; y < tile; y++) {
      for (let x = 0; x < tile; x++) {
        const src = (Math.floor(y / scale) * size + Math.floor(x / scale)) * 3;
        // The region map covers the crop at a coarser grid: nearest cell.
        const cell = Math.floor((y / tile) * map.height) * map.width + Math.floor((x / tile) * map.width);
        const pm = mask[cell]!;
        const pb = background[cell]!;
        const left = (f * tile + y) * rowBytes + x * 3;
        const right = left + tile * 3;
        for (let c = 0; c < 3; c++) {
          const v = crop.data[src + c]!;
          canvas[left + c] = v;
          const tint = c === 0 ? 255 * pm : c === 2 ? 255 * pb : 0;
          canvas[right + c] = Math.round(v * (1 - 0.6 * (pm + pb)) + 0.6 * tint);
        }
      }
    }
  });
  const sharp = await loadSharp();
  await writeFile(out, await sharp(canvas, { raw: { width: 2 * tile, height: tile * faces.length, channels: 3 } }).png().toBuffer());
  return faces;
}
