// Aligned real faces for model comparisons: people in real masks (rwmfd_part1) and bare LFW faces,
// with landmarks from the catalogued detector and landmark models (as real-masks.test.ts does).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dataDir, fivePointsFrom68, readJpegRgb, readPairs } from './data.js';
import { fivePointLandmarks, landmarks68 } from './detect.js';

/** Up to `count` masked and `count` bare faces, each with five landmarks. */
export async function realFaces(count: number) {
  // The first photo of each of the first crawl folders (0000, 0001, ...).
  const root = join(dataDir, 'rwmfd_part1');
  const maskedImages = readdirSync(root)
    .filter((name) => /^\d{4}$/.test(name))
    .sort()
    .slice(0, count)
    .map((folder) => readJpegRgb(join(root, folder, readdirSync(join(root, folder)).filter((name) => name.endsWith('.jpg')).sort()[0]!)));
  const maskedPoints = await fivePointLandmarks(maskedImages);
  const bareImages = readPairs()
    .filter((pair) => pair.same)
    .slice(0, count)
    .map((pair) => readJpegRgb(pair.a));
  const barePoints = (await landmarks68(bareImages)).map(fivePointsFrom68);
  return [
    ...maskedImages.flatMap((image, i) => (maskedPoints[i] ? [{ ...image, landmarks: maskedPoints[i] }] : [])),
    ...bareImages.map((image, i) => ({ ...image, landmarks: barePoints[i]! })),
  ];
}
