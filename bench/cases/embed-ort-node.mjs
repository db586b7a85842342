// onnxruntime-node's own JS binding on the same model file. It is given a ready NCHW float32
// tensor (built before timing), so its time has no preprocessing; reading the output and
// L2-normalising it in JS is included, as maskface's postprocessing is.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';
import { printResult } from '../lib/args.mjs';
import { embedParams, timeEmbedding } from '../lib/embed-timing.mjs';
import { faceSize, facesToTensor, normalizeRows, syntheticFaces } from '../lib/faces.mjs';

const params = embedParams();
// --spinning off: the same thread setting as maskface (session.*.allow_spinning = 0), to tell the
// cost of spinning apart from the cost of the binding. Default: onnxruntime-node's own defaults.
const spinning = params.options.spinning ?? 'default';
if (spinning !== 'default' && spinning !== 'off') throw new Error(`--spinning must be default or off, got ${spinning}`);
const input = new ort.Tensor('float32', facesToTensor(syntheticFaces(params.batch)), [params.batch, 3, faceSize, faceSize]);
const session = await ort.InferenceSession.create(readFileSync(params.model), {
  intraOpNumThreads: params.threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  ...(spinning === 'off' && { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
});
const [inputName] = session.inputNames;
const [outputName] = session.outputNames;

let embeddings;
let dim;
const timing = await timeEmbedding(params, async () => {
  const output = (await session.run({ [inputName]: input }))[outputName];
  dim = output.dims[1];
  embeddings = normalizeRows(new Float32Array(output.data), dim);
});
await session.release();

const require = createRequire(import.meta.url);
printResult({
  kind: 'embed',
  impl: 'onnxruntime-node',
  batch: params.batch,
  threads: params.threads,
  spinning,
  ...timing,
  totalMs: undefined,
  embedding0: Array.from(embeddings.subarray(0, dim)),
  versions: { onnxruntime: require('onnxruntime-node/package.json').version, node: process.versions.node },
});
