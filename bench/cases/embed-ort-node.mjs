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
// --session maskface: maskface's session settings (no spinning after a run, denormals as zero),
// to tell the settings apart from the binding. --session flush: denormals as zero, spinning as
// onnxruntime-node's default (on). Default: onnxruntime-node's own defaults.
// Note: ONNX Runtime applies set_denormal_as_zero to its pool threads and to the thread that
// creates the session; onnxruntime-node creates it on a worker thread and runs on the main one.
const session_ = params.options.session ?? 'default';
const sessionSettings = {
  default: {},
  maskface: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' }, set_denormal_as_zero: '1' },
  flush: { set_denormal_as_zero: '1' },
};
if (!(session_ in sessionSettings)) throw new Error(`--session must be one of ${Object.keys(sessionSettings).join(', ')}, got ${session_}`);
const input = new ort.Tensor('float32', facesToTensor(syntheticFaces(params.batch)), [params.batch, 3, faceSize, faceSize]);
const session = await ort.InferenceSession.create(readFileSync(params.model), {
  intraOpNumThreads: params.threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  ...(session_ !== 'default' && { extra: { session: sessionSettings[session_] } }),
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
  session: session_,
  ...timing,
  totalMs: undefined,
  embedding0: Array.from(embeddings.subarray(0, dim)),
  versions: { onnxruntime: require('onnxruntime-node/package.json').version, node: process.versions.node },
});
