// maskface FaceRecognizer.embedBatch: uint8 HWC pixels in, unit-length embeddings out, the
// network on a libuv worker thread (preprocessing and L2 normalisation included in the time).
import { FaceRecognizer, versions } from '../../dist/esm/index.js';
import { printResult } from '../lib/args.mjs';
import { embedParams, timeEmbedding } from '../lib/embed-timing.mjs';
import { syntheticFaces } from '../lib/faces.mjs';
import { round } from '../lib/stats.mjs';

const params = embedParams();
// --spinning: the recognizer's cpu.spinning option (ONNX Runtime's threads spin-wait between steps).
const spinning = params.options.spinning === true;
const faces = syntheticFaces(params.batch);
const recognizer = await FaceRecognizer.load(params.model, { cpu: { intraOpThreads: params.threads, interOpThreads: 1, spinning } });

let embeddings;
const stages = { preprocessMs: 0, inferenceMs: 0, postprocessMs: 0 };
const timing = await timeEmbedding(
  params,
  async () => {
    embeddings = await recognizer.embedBatch(faces);
  },
  () => {
    for (const stage of Object.keys(stages)) stages[stage] += embeddings.timing[stage];
  },
);
await recognizer.dispose();

const prePost = stages.preprocessMs + stages.postprocessMs;
printResult({
  kind: 'embed',
  impl: 'maskface',
  batch: params.batch,
  threads: params.threads,
  spinning,
  ...timing,
  totalMs: undefined,
  prePostShare: round(prePost / timing.totalMs, 4), // share of end-to-end wall time
  nativeStagesMs: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, round(v / timing.runs, 3)])),
  embedding0: Array.from(embeddings.data.subarray(0, embeddings.model.dim)),
  versions: versions(),
});
