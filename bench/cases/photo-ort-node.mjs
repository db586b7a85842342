// The photo pipeline a competent user would write with onnxruntime-node and plain JavaScript:
// the same three ONNX files maskface runs (UltraFace-320, landmark68, MobileFaceNet), with the
// pre- and post-processing in JS. Everything from the decoded RGB pixels to unit-length
// embeddings is timed; loading the sessions is not.
//   detection: stretch-resize to 320x240 (bilinear), (x - 127) / 128, score >= 0.6, greedy NMS at IoU 0.4,
//              each box made square (side = box height) around its centre, clamped to the photo
//   landmarks: 64x64 grey crop of the square box (BT.601 luma, bilinear), / 256, one run per face (fixed batch 1),
//              68 points -> 5 (eye centres, nose tip, mouth corners)
//   alignment: least-squares similarity (Umeyama, closed form in 2D) onto the ArcFace 112x112 template,
//              bilinear warp from the full-resolution photo
//   embedding: (x - 127) / 128 RGB NCHW, all faces in one run (symbolic batch), L2-normalised
// --session maskface: maskface's session settings (no spinning after a run, denormals as zero),
// to tell the settings apart from the pipeline, as in embed-ort-node.mjs. Default: onnxruntime-node's own.
//   node bench/cases/photo-ort-node.mjs --photo five-faces --threads 2 [--session maskface]
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';
import { ensureModel } from '../../dist/esm/setup.js';
import { printResult } from '../lib/args.mjs';
import { normalizeRows } from '../lib/faces.mjs';
import { boxSummary, photoParams, photoResultBase, timePhotos } from '../lib/photo-timing.mjs';

const params = await photoParams();
const session_ = params.options.session ?? 'default';
if (session_ !== 'default' && session_ !== 'maskface') throw new Error(`--session must be default or maskface, got ${session_}`);
const sessionOptions = {
  intraOpNumThreads: params.threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  ...(session_ === 'maskface' && {
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' }, set_denormal_as_zero: '1' } },
  }),
};
const [detector, landmarker, embedder] = await Promise.all(
  ['ultraface-320', 'landmark68', 'mobilefacenet'].map(async (name) => ort.InferenceSession.create(await ensureModel(name), sessionOptions)),
);

const detectorSize = { width: 320, height: 240 };
const minScore = 0.6;
const nmsIoU = 0.4;
const landmarkSize = 64;
const faceSize = 112;
const arcface = [38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041];

/** Channel c of the photo at (x, y) in pixel coordinates (pixel centres on integers), bilinear, edges clamped. */
function sample(image, x, y, c) {
  const { data, width, height } = image;
  x = Math.min(Math.max(x, 0), width - 1);
  y = Math.min(Math.max(y, 0), height - 1);
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const x1 = Math.min(x0 + 1, width - 1);
  const y1 = Math.min(y0 + 1, height - 1);
  const fx = x - x0;
  const fy = y - y0;
  const top = data[(y0 * width + x0) * 3 + c] * (1 - fx) + data[(y0 * width + x1) * 3 + c] * fx;
  const bottom = data[(y1 * width + x0) * 3 + c] * (1 - fx) + data[(y1 * width + x1) * 3 + c] * fx;
  return top * (1 - fy) + bottom * fy;
}

/** The detector's input: the photo stretched to 320x240, NCHW, (x - 127) / 128. */
function detectorInput(image) {
  const { width: w, height: h } = detectorSize;
  const input = new Float32Array(3 * w * h);
  const sx = image.width / w;
  const sy = image.height / h;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) input[c * w * h + y * w + x] = (sample(image, (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, c) - 127) / 128;
    }
  }
  return input;
}

function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const area = (r) => (r[2] - r[0]) * (r[3] - r[1]);
  return (w * h) / (area(a) + area(b) - w * h);
}

/** Face boxes in photo pixels [x1, y1, x2, y2], square, the most confident first. */
async function detect(image) {
  const input = new ort.Tensor('float32', detectorInput(image), [1, 3, detectorSize.height, detectorSize.width]);
  const { scores, boxes } = await detector.run({ input });
  const candidates = [];
  for (let a = 0; a < scores.dims[1]; a++) {
    const score = scores.data[2 * a + 1];
    if (score < minScore) continue;
    const box = Array.from(boxes.data.subarray(4 * a, 4 * a + 4));
    if (box[2] > box[0] && box[3] > box[1]) candidates.push({ box, score });
  }
  candidates.sort((p, q) => q.score - p.score);
  const kept = [];
  for (const c of candidates) if (kept.every((k) => iou(k.box, c.box) < nmsIoU)) kept.push(c);
  return kept.map(({ box: [x1, y1, x2, y2], score }) => {
    const side = (y2 - y1) * image.height;
    const cx = ((x1 + x2) / 2) * image.width;
    const cy = ((y1 + y2) / 2) * image.height;
    return {
      score,
      box: [Math.max(0, cx - side / 2), Math.max(0, cy - side / 2), Math.min(image.width - 1, cx + side / 2), Math.min(image.height - 1, cy + side / 2)],
    };
  });
}

/** 68 landmarks (x, y pairs in photo pixels) of one face: its box cropped to 64x64 grey, / 256. */
async function landmarks68(image, box) {
  const [x1, y1, x2, y2] = box.map(Math.trunc);
  const cropWidth = x2 - x1;
  const cropHeight = y2 - y1;
  const input = new Float32Array(landmarkSize * landmarkSize);
  const sx = cropWidth / landmarkSize;
  const sy = cropHeight / landmarkSize;
  for (let y = 0; y < landmarkSize; y++) {
    for (let x = 0; x < landmarkSize; x++) {
      const px = x1 + (x + 0.5) * sx - 0.5;
      const py = y1 + (y + 0.5) * sy - 0.5;
      const grey = 0.299 * sample(image, px, py, 0) + 0.587 * sample(image, px, py, 1) + 0.114 * sample(image, px, py, 2);
      input[y * landmarkSize + x] = grey / 256;
    }
  }
  const { output } = await landmarker.run({ input: new ort.Tensor('float32', input, [1, 1, landmarkSize, landmarkSize]) });
  return Array.from(output.data, (v, i) => (i % 2 === 0 ? x1 + v * cropWidth : y1 + v * cropHeight));
}

/** The ArcFace 5 points from the 68: eye centres, nose tip, mouth corners. */
function fivePoints(p) {
  const mean = (...ids) => [ids.reduce((s, i) => s + p[2 * i], 0) / ids.length, ids.reduce((s, i) => s + p[2 * i + 1], 0) / ids.length];
  return [...mean(37, 38, 40, 41), ...mean(43, 44, 46, 47), p[60], p[61], ...mean(48, 60), ...mean(54, 64)];
}

/**
 * The least-squares similarity (rotation, uniform scale, translation) taking `src` onto `dst`
 * (flat x, y lists): Umeyama's closed form in 2D. Returns [a, b, tx, ty] for
 * dst = [[a, -b], [b, a]] * src + t.
 */
function similarity(src, dst) {
  const n = src.length / 2;
  let msx = 0, msy = 0, mdx = 0, mdy = 0;
  for (let i = 0; i < n; i++) {
    msx += src[2 * i] / n;
    msy += src[2 * i + 1] / n;
    mdx += dst[2 * i] / n;
    mdy += dst[2 * i + 1] / n;
  }
  let dotSum = 0, crossSum = 0, variance = 0;
  for (let i = 0; i < n; i++) {
    const sx = src[2 * i] - msx, sy = src[2 * i + 1] - msy;
    const dx = dst[2 * i] - mdx, dy = dst[2 * i + 1] - mdy;
    dotSum += sx * dx + sy * dy;
    crossSum += sx * dy - sy * dx;
    variance += sx * sx + sy * sy;
  }
  const a = dotSum / variance;
  const b = crossSum / variance;
  return [a, b, mdx - (a * msx - b * msy), mdy - (b * msx + a * msy)];
}

/** Warps one face onto the 112x112 template from the full photo, NCHW (x - 127) / 128, at `offset` of `out`. */
function alignFace(image, points, out, offset) {
  const [a, b, tx, ty] = similarity(points, arcface);
  // inverse of dst = M src + t: src = M^-1 (dst - t), M^-1 = [[a, b], [-b, a]] / (a^2 + b^2)
  const det = a * a + b * b;
  const plane = faceSize * faceSize;
  for (let v = 0; v < faceSize; v++) {
    for (let u = 0; u < faceSize; u++) {
      const du = u - tx;
      const dv = v - ty;
      const x = (a * du + b * dv) / det;
      const y = (-b * du + a * dv) / det;
      for (let c = 0; c < 3; c++) out[offset + c * plane + v * faceSize + u] = (sample(image, x, y, c) - 127) / 128;
    }
  }
}

/** Photo -> every face with its unit-length embedding. */
async function embedFaces(image) {
  const detections = await detect(image);
  if (detections.length === 0) return [];
  const input = new Float32Array(detections.length * 3 * faceSize * faceSize);
  for (const [i, face] of detections.entries()) {
    face.landmarks = fivePoints(await landmarks68(image, face.box));
    alignFace(image, face.landmarks, input, i * 3 * faceSize * faceSize);
  }
  const { output } = await embedder.run({ input: new ort.Tensor('float32', input, [detections.length, 3, faceSize, faceSize]) });
  const dim = output.dims[1];
  const embeddings = normalizeRows(new Float32Array(output.data), dim);
  return detections.map((face, i) => ({ ...face, embedding: embeddings.subarray(i * dim, (i + 1) * dim) }));
}

let faces;
const timing = await timePhotos(params, async () => {
  faces = await embedFaces(params.photo.pixels);
});
await Promise.all([detector.release(), landmarker.release(), embedder.release()]);

const require = createRequire(import.meta.url);
printResult({
  ...photoResultBase(params, 'onnxruntime-node', `mobilefacenet, JS pre/post${session_ === 'maskface' ? ", maskface's session settings" : ''}`),
  model: 'mobilefacenet',
  session: session_,
  threads: params.threads,
  ...timing,
  facesFound: faces.length,
  faces: faces.map(({ box: [x1, y1, x2, y2], score, embedding }) => ({
    ...boxSummary({ x: x1, y: y1, width: x2 - x1, height: y2 - y1 }),
    score,
    embedding: Array.from(embedding),
  })),
  versions: { onnxruntime: require('onnxruntime-node/package.json').version, node: process.versions.node },
});
