// Benchmark input for the photo cases: two 1280x720 JPEG photos built from real photos of the
// deepface test set (never committed; built on first use and cached in bench/.cache):
//   one-face   - one portrait (img1.jpg) scaled to fit, on a neutral grey background
//   five-faces - five portraits of five different people, each scaled to 250 px wide, side by side
// Every case decodes the cached JPEG with sharp once, before timing, so all peers see the same pixels.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const photoCacheDir = join(benchDir, '.cache');
export const sourceDir = process.env.MASKFACE_FACE_PHOTOS ?? join(benchDir, '..', '..', 'shared', 'data', 'deepface_testset');

export const photoWidth = 1280;
export const photoHeight = 720;
const background = { r: 128, g: 128, b: 128 };
const version = 1; // bump when the recipe changes, so stale cached photos are not reused

/** The photos, by name: the source files (deepface_testset, distinct identities per labels_derived.csv). */
export const photoRecipes = {
  'one-face': { faces: 1, sources: ['img1.jpg'] },
  // identities id00, id01, id02, id05, id09: all upright portraits with one face each
  'five-faces': { faces: 5, sources: ['img1.jpg', 'img3.jpg', 'img8.jpg', 'img19.jpg', 'img26.jpg'] },
};
export const photoNames = Object.keys(photoRecipes);

function sourcePath(file) {
  const path = join(sourceDir, file);
  if (!existsSync(path)) {
    throw new Error(`Missing source photo ${path}: the photo benchmarks need the deepface test set (set MASKFACE_FACE_PHOTOS to its folder)`);
  }
  return path;
}

async function build(name) {
  const { sources } = photoRecipes[name];
  const canvas = sharp({ create: { width: photoWidth, height: photoHeight, channels: 3, background } });
  let layers;
  if (sources.length === 1) {
    const input = await sharp(sourcePath(sources[0])).rotate().resize(photoWidth, photoHeight, { fit: 'inside' }).toBuffer({ resolveWithObject: true });
    layers = [{ input: input.data, left: Math.round((photoWidth - input.info.width) / 2), top: Math.round((photoHeight - input.info.height) / 2) }];
  } else {
    const tileWidth = 250;
    const gap = Math.floor((photoWidth - sources.length * tileWidth) / (sources.length + 1));
    layers = [];
    for (const [i, file] of sources.entries()) {
      const input = await sharp(sourcePath(file)).rotate().resize(tileWidth, photoHeight - 2 * gap, { fit: 'inside' }).toBuffer({ resolveWithObject: true });
      layers.push({ input: input.data, left: gap + i * (tileWidth + gap), top: Math.round((photoHeight - input.info.height) / 2) });
    }
  }
  return canvas.composite(layers).jpeg({ quality: 90, chromaSubsampling: '4:2:0' }).toBuffer();
}

/** The path of a photo's JPEG, built and cached on first use. */
export async function photoJpegPath(name) {
  if (!photoRecipes[name]) throw new Error(`Unknown photo '${name}' (known: ${photoNames.join(', ')})`);
  const file = join(photoCacheDir, `photo-${name}-v${version}.jpg`);
  if (existsSync(file)) return file;
  const jpeg = await build(name);
  mkdirSync(photoCacheDir, { recursive: true });
  writeFileSync(`${file}.${process.pid}.tmp`, jpeg);
  renameSync(`${file}.${process.pid}.tmp`, file);
  return file;
}

/** Builds every photo (the runner calls it once before the cases). */
export async function ensurePhotos() {
  return Promise.all(photoNames.map(photoJpegPath));
}

/**
 * A photo as its JPEG bytes and its decoded pixels ({ data: HWC uint8 RGB, width, height }),
 * decoded once with sharp; `expectedFaces` is how many people were composited into it.
 */
export async function loadPhoto(name) {
  const path = await photoJpegPath(name);
  const jpeg = readFileSync(path);
  const { data, info } = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`${path}: expected 3 channels, got ${info.channels}`);
  const pixels = { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  return { name, path, jpeg, pixels, expectedFaces: photoRecipes[name].faces };
}
