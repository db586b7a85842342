// Face detection and 68 landmarks for tests, with the models maskface catalogues (UltraFace-320 and
// fr_landmark from faceplugin-face-recognition-js@0.0.1), run by onnxruntime-node in another
// process, one process per model for the whole batch. Pre- and post-processing follow that
// package's lib/fr_detect.js and lib/fr_landmark.js; the resizes are maskface's own faceTensor.
import { faceTensor } from '../../dist/esm/index.js';
import { ensureModel } from '../../dist/esm/setup.js';
import { fivePointsFrom68, ortOutputs, ortReference } from './data.js';

export interface RgbImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** A face box in image pixels (x1, y1, x2, y2) and the detector's confidence. */
export interface Detection {
  readonly box: readonly [number, number, number, number];
  readonly score: number;
}

const detector = { width: 320, height: 240, threshold: 0.65, nmsIoU: 0.4 } as const;

/**
 * Faces of each image, most confident first. The image is resized to 320x240, RGB, (x - 127) / 128;
 * `scores` [1, 4420, 2] (column 1 is "face") and `boxes` [1, 4420, 4] (corners in [0, 1]) are
 * kept above 0.65 and thinned by greedy NMS at IoU 0.4. As in the package, each box becomes a
 * square as tall as the box around its centre, clamped to the image.
 */
export async function detectFaces(images: readonly RgbImage[]): Promise<Detection[][]> {
  const size = 3 * detector.width * detector.height;
  const input = new Float32Array(images.length * size);
  images.forEach((image, i) =>
    input.set(faceTensor(image, { width: detector.width, height: detector.height, mean: [127, 127, 127], std: [128, 128, 128] }), i * size),
  );
  const { scores, boxes } = ortOutputs(await ensureModel('ultraface-320'), input, [1, 3, detector.height, detector.width], ['scores', 'boxes']);
  const anchors = scores.length / 2 / images.length;
  return images.map((image, i) => {
    const candidates: { box: number[]; score: number }[] = [];
    for (let a = i * anchors; a < (i + 1) * anchors; a++) {
      const score = scores[2 * a + 1]!;
      const box = Array.from(boxes.subarray(4 * a, 4 * a + 4));
      if (score >= detector.threshold && box[2]! > box[0]! && box[3]! > box[1]!) candidates.push({ box, score });
    }
    candidates.sort((p, q) => q.score - p.score);
    const kept: typeof candidates = [];
    for (const c of candidates) if (kept.every((k) => iou(k.box, c.box) < detector.nmsIoU)) kept.push(c);
    return kept.map(({ box: [x1, y1, x2, y2], score }) => {
      const side = (y2! - y1!) * image.height;
      const cx = ((x1! + x2!) / 2) * image.width;
      const cy = ((y1! + y2!) / 2) * image.height;
      const box = [
        Math.max(0, cx - side / 2),
        Math.max(0, cy - side / 2),
        Math.min(image.width - 1, cx + side / 2),
        Math.min(image.height - 1, cy + side / 2),
      ] as const;
      return { box, score };
    });
  });
}

function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const h = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const area = (box: readonly number[]) => (box[2]! - box[0]!) * (box[3]! - box[1]!);
  return (w * h) / (area(a) + area(b) - w * h);
}

/**
 * 68 landmarks (x, y pairs in image pixels) of one face per image: the box, truncated to whole
 * pixels as the package does, is cropped and resized to the model's 64x64 grey input (/256); the
 * outputs are fractions of the box. Without boxes the whole image is the box (for tight crops).
 */
export async function landmarks68(images: readonly RgbImage[], boxes?: readonly (readonly number[])[]): Promise<Float32Array[]> {
  const input = new Float32Array(images.length * 64 * 64);
  const crops = images.map((image, i) => {
    const [x1, y1, x2, y2] = boxes?.[i]?.map(Math.trunc) ?? [0, 0, image.width, image.height];
    const crop = { x: x1!, y: y1!, width: x2! - x1!, height: y2! - y1! };
    input.set(faceTensor(cropImage(image, crop), { width: 64, height: 64, channels: 1, mean: [0, 0, 0], std: [256, 256, 256] }), i * 4096);
    return crop;
  });
  const output = ortReference(await ensureModel('landmark68'), input, [1, 1, 64, 64]);
  return crops.map((crop, i) =>
    output.subarray(i * 136, (i + 1) * 136).map((v, j) => (j % 2 === 0 ? crop.x + v * crop.width : crop.y + v * crop.height)),
  );
}

function cropImage(image: RgbImage, crop: { x: number; y: number; width: number; height: number }): RgbImage {
  if (crop.x === 0 && crop.y === 0 && crop.width === image.width && crop.height === image.height) return image;
  const data = new Uint8Array(crop.width * crop.height * 3);
  for (let row = 0; row < crop.height; row++) {
    const start = ((crop.y + row) * image.width + crop.x) * 3;
    data.set(image.data.subarray(start, start + crop.width * 3), row * crop.width * 3);
  }
  return { data, width: crop.width, height: crop.height };
}

/**
 * The 5 ArcFace landmarks (image pixels) of the most confident face of each image, or null where
 * the detector finds none.
 */
export async function fivePointLandmarks(images: readonly RgbImage[]): Promise<(number[] | null)[]> {
  const detections = await detectFaces(images);
  const found = images.flatMap((image, i) => {
    const best = detections[i]![0];
    return best ? [{ image, box: best.box, i }] : [];
  });
  const result: (number[] | null)[] = images.map(() => null);
  if (found.length === 0) return result;
  const points = await landmarks68(
    found.map((f) => f.image),
    found.map((f) => f.box),
  );
  found.forEach((f, k) => (result[f.i] = fivePointsFrom68(points[k]!)));
  return result;
}
