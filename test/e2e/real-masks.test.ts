// The bundled model's region maps on REAL photos: people wearing real masks (rwmfd_part1, colour
// photos in the wild; face and 68 landmarks found by the catalogued detector and landmark models)
// against bare faces (LFW tight grey crops; landmarks from the whole crop, as in lfw.test.ts).
// Both are aligned with 5 landmarks and embedded by the default model.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FaceRecognizer, type FaceEmbedding } from '../../dist/esm/index.js';
import { dataDir, fivePointsFrom68, missingData, readJpegRgb, readPairs } from '../helpers/data.js';
import { fivePointLandmarks, landmarks68 } from '../helpers/detect.js';

const photos = 48;
/** A face counts as masked when its maskProbability is above this. */
const maskedAbove = 0.5;
/** The shipped model (0.2.0) gives a median of 0.83, 83% above 0.5 (real masks) and 0.03, 0% (bare faces). */
const minMaskedMedian = 0.5;
const maxBareMedian = 0.2;
const minMaskedShare = 0.7;
const maxBareShare = 0.1;
/** The most rwmfd photos the detector may miss. */
const maxMissedShare = 0.15;

const skip = missingData('rwmfd_part1') || missingData('lfw_aligned_100pair');

/** `count` photos taken round-robin over the crawl folders 0000, 0001, ... (file name order within each). */
function spreadOverFolders(root: string, count: number): string[] {
  const folders = readdirSync(root)
    .filter((name) => /^\d{4}$/.test(name))
    .sort()
    .map((folder) => readdirSync(join(root, folder)).filter((name) => name.endsWith('.jpg')).sort().map((name) => join(root, folder, name)));
  const chosen: string[] = [];
  for (let round = 0; chosen.length < count && folders.some((files) => round < files.length); round++) {
    for (const files of folders) if (round < files.length && chosen.length < count) chosen.push(files[round]!);
  }
  return chosen;
}

/** `count` items evenly spaced over the list. */
function evenly<T>(list: readonly T[], count: number): T[] {
  return Array.from({ length: Math.min(count, list.length) }, (_, i) => list[Math.floor((i * list.length) / count)]!);
}

/** Linear-interpolated quantile of sorted values. */
function quantile(sorted: readonly number[], q: number): number {
  const at = q * (sorted.length - 1);
  const low = Math.floor(at);
  return sorted[low]! + (sorted[Math.min(low + 1, sorted.length - 1)]! - sorted[low]!) * (at - low);
}

function summary(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const share = values.filter((v) => v > maskedAbove).length / values.length;
  const text = [0, 0.25, 0.5, 0.75, 1].map((q) => Number(quantile(sorted, q).toPrecision(3))).join(' / ');
  return { median: quantile(sorted, 0.5), share, text: `min / q1 / median / q3 / max ${text}; ${(100 * share).toFixed(0)}% above ${maskedAbove}` };
}

t.test('the default model flags real masks in real photos and not bare faces', { skip }, async (t) => {
  const maskedPaths = spreadOverFolders(join(dataDir, 'rwmfd_part1'), photos);
  const maskedImages = maskedPaths.map(readJpegRgb);
  const maskedPoints = await fivePointLandmarks(maskedImages);
  const missed = maskedPaths.filter((_, i) => maskedPoints[i] === null);
  t.comment(`rwmfd_part1: a face in ${maskedPaths.length - missed.length} of ${maskedPaths.length} photos`);
  if (missed.length > 0) t.comment(`no face found in: ${missed.map((p) => p.slice(dataDir.length + 1)).join(', ')}`);
  t.ok(missed.length <= maxMissedShare * maskedPaths.length, `the detector misses at most ${100 * maxMissedShare}% of the photos`);

  const bareImages = evenly(readPairs().filter((pair) => pair.same).map((pair) => pair.a), photos).map(readJpegRgb);
  const barePoints = (await landmarks68(bareImages)).map(fivePointsFrom68);

  await using rec = await FaceRecognizer.load(undefined, { cpu: { intraOpThreads: 1 } });
  const masked = await rec.embedBatch(maskedImages.flatMap((image, i) => (maskedPoints[i] ? [{ ...image, landmarks: maskedPoints[i] }] : [])));
  const bare = await rec.embedBatch(bareImages.map((image, i) => ({ ...image, landmarks: barePoints[i]! })));

  const invalid = (e: FaceEmbedding) => e.regions === undefined || !(e.maskProbability! >= 0 && e.maskProbability! <= 1);
  t.equal([...masked].filter(invalid).length, 0, 'every masked face has regions and a maskProbability in [0, 1]');
  t.equal([...bare].filter(invalid).length, 0, 'every bare face has regions and a maskProbability in [0, 1]');

  const m = summary([...masked].map((e) => e.maskProbability!));
  const b = summary([...bare].map((e) => e.maskProbability!));
  t.comment(`maskProbability, ${masked.count} real masked faces: ${m.text}`);
  t.comment(`maskProbability, ${bare.count} bare LFW faces: ${b.text}`);
  t.ok(m.median > minMaskedMedian, `median over real masks ${m.median.toFixed(3)} > ${minMaskedMedian}`);
  t.ok(b.median < maxBareMedian, `median over bare faces ${b.median.toFixed(3)} < ${maxBareMedian}`);
  t.ok(m.share >= minMaskedShare, `${(100 * m.share).toFixed(0)}% of real masks above ${maskedAbove} (at least ${100 * minMaskedShare}%)`);
  t.ok(b.share <= maxBareShare, `${(100 * b.share).toFixed(0)}% of bare faces above ${maskedAbove} (at most ${100 * maxBareShare}%)`);
});
