// maskface FaceRecognizer.embedFaces: a whole photo in, an embedding of every face out, in one
// native call off the event loop (detection: --detector, default blazeface-256; 68 landmarks per
// face, alignment from the full-resolution photo, one network run for all faces). Timed on the decoded RGB pixels
// (decoded once before timing, the same pixels every peer gets), then once more on the JPEG
// bytes, which adds sharp's decode to every call.
//   node bench/cases/photo-maskface.mjs --photo five-faces --model mobilefacenet --detector ultraface-320 --threads 2 [--mirror-landmarks false]
import { FaceDetector, FaceRecognizer, versions } from '../../dist/esm/index.js';
import { printResult } from '../lib/args.mjs';
import { boxSummary, photoParams, photoResultBase, timePhotos } from '../lib/photo-timing.mjs';

const params = await photoParams();
const model = params.options.model ?? 'maskface-mbf-cal';
const mirrorLandmarks = params.options['mirror-landmarks'] !== 'false';
const cpu = { intraOpThreads: params.threads };
const detectorName = params.options.detector ?? 'blazeface-256';
const detector = await FaceDetector.load({ cpu, detector: detectorName });
const recognizer = await FaceRecognizer.load(model, { cpu });
const options = { detector, mirrorLandmarks };

let faces;
const timing = await timePhotos(params, async () => {
  faces = await recognizer.embedFaces(params.photo.pixels, options);
});
let jpegFaces;
const jpeg = await timePhotos(params, async () => {
  jpegFaces = await recognizer.embedFaces(params.photo.jpeg, options);
});
await recognizer.dispose();
await detector.dispose();

printResult({
  ...photoResultBase(params, 'maskface', `${detectorName}, ${model}${mirrorLandmarks ? '' : ', mirrorLandmarks off'}`),
  model,
  detector: detectorName,
  mirrorLandmarks,
  threads: params.threads,
  ...timing,
  facesFound: faces.length,
  jpeg: { p50Ms: jpeg.p50Ms, p95Ms: jpeg.p95Ms, photosPerS: jpeg.photosPerS, runs: jpeg.runs, loopMaxDelayMs: jpeg.loopMaxDelayMs, loopP99DelayMs: jpeg.loopP99DelayMs, facesFound: jpegFaces.length },
  alignment: faces.map((f) => f.alignment),
  // for the runner's agreement check against onnxruntime-node (removed from the stored results)
  faces: faces.map((f) => ({ ...boxSummary(f.box), score: f.score, embedding: Array.from(f.embedding.vector) })),
  versions: versions(),
});
