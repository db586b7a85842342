#!/usr/bin/env node
// Share of photos in which the face detector finds a face, at several score thresholds, with a
// contact sheet of the photos where it finds none at the default threshold. Meant for folders
// where every photo holds a face (rwmfd_part1: real masked faces in the wild).
//   node bench/photo/detection-rate.mjs <dir> [--detector blazeface-256] [--sheet docs/out.png] [--json out.json]
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { FaceDetector } from '../../dist/esm/index.js';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { detector: { type: 'string' }, sheet: { type: 'string' }, json: { type: 'string' } } });
const [dir] = positionals;
if (!dir) throw new Error('usage: detection-rate.mjs <dir> [--sheet png] [--json file]');
const walk = (d) => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : /\.(jpe?g|png|webp|pgm)$/i.test(n) ? [join(d, n)] : []));
const photos = walk(dir).sort();
const thresholds = [0.5, 0.6, 0.7, 0.8, 0.9];
const defaultScore = 0.6;

const detector = await FaceDetector.load({ detector: values.detector });
const best = [];
const padded = [];
const started = performance.now();
for (const path of photos) {
  const faces = await detector.detect(path, { minScore: Math.min(...thresholds), maxFaces: 1 });
  best.push(faces[0]?.score ?? 0);
  padded.push(faces[0]?.quality.padded ?? false);
}
const seconds = (performance.now() - started) / 1000;
await detector.dispose();
const rates = Object.fromEntries(thresholds.map((t) => [t, best.filter((s) => s >= t).length / photos.length]));
const misses = photos.filter((_, i) => best[i] < defaultScore);
const result = {
  dir,
  detector: detector.kind,
  photos: photos.length,
  foundShare: rates,
  fromPaddedLook: padded.filter((p, i) => p && best[i] >= defaultScore).length,
  missesAtDefault: misses.map((p) => relative(dir, p)),
  msPerPhoto: (1000 * seconds) / photos.length,
};
console.log(
  `${photos.length} photos, ${result.msPerPhoto.toFixed(1)} ms each; found at minScore ${thresholds.map((t) => `${t}: ${(100 * rates[t]).toFixed(1)}%`).join(', ')}; ` +
    `${result.fromPaddedLook} taken from the second look (with a border); ${misses.length} misses at ${defaultScore}`,
);
if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
if (values.sheet && misses.length > 0) {
  const tile = 96;
  const columns = Math.min(10, misses.length);
  const shown = misses.slice(0, 60);
  const rows = Math.ceil(shown.length / columns);
  const tiles = await Promise.all(
    shown.map(async (p, i) => ({
      input: await sharp(p).rotate().resize(tile, tile, { fit: 'contain', background: '#000' }).png().toBuffer(),
      left: (i % columns) * tile,
      top: Math.floor(i / columns) * tile,
    })),
  );
  await sharp({ create: { width: columns * tile, height: rows * tile, channels: 3, background: '#000' } }).composite(tiles).png().toFile(values.sheet);
  console.log(`contact sheet of ${shown.length} misses: ${values.sheet}`);
}
