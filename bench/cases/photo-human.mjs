// @vladmandic/human (TensorFlow.js) on the same decoded pixels: face detection (BlazeFace),
// face mesh (the box refinement its description model crops from) and face description (faceres,
// 1024-d descriptor); iris, emotion, body, hand, object, gesture and segmentation are off.
// Timed per photo: the pixels to a tensor, human.detect, the descriptors read out.
//
// Backend: tfjs-node cannot install here (its install script downloads libtensorflow from
// storage.googleapis.com), so the fastest backend that installs from the npm registry alone is
// the WebAssembly one (@tensorflow/tfjs-backend-wasm, its .wasm files are in the package; SIMD,
// one thread: tfjs disables WASM threads under Node). --backend cpu (@tensorflow/tfjs-backend-cpu,
// plain JS) is the fallback, used when wasm fails to start. The result says which one ran.
//
// The models are the ones in human's npm package (models/*.json + .bin), read from disk through a
// file:// modelBasePath: Node's fetch cannot read file:// URLs, so fetch is replaced for this process
// by one that reads file:// URLs from disk and refuses anything else (nothing is downloaded).
// Result caching between frames is off (cacheSensitivity 0, skipFrames 0), so every call does the work.
//   node bench/cases/photo-human.mjs --photo five-faces [--backend wasm|cpu]
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { printResult } from '../lib/args.mjs';
import { boxSummary, photoParams, photoResultBase, timePhotos } from '../lib/photo-timing.mjs';

const params = await photoParams();
const requested = params.options.backend ?? 'wasm';
const require = createRequire(import.meta.url);
const base = photoResultBase(params, 'human', 'BlazeFace + mesh + faceres');

function fail(reason) {
  printResult({ ...base, error: reason });
  process.exit(0);
}

globalThis.fetch = async (url) => {
  const href = String(url);
  if (!href.startsWith('file://')) throw new Error(`photo-human: refusing to fetch ${href} (models must come from the npm package)`);
  return new Response(await readFile(fileURLToPath(href)));
};

let Human;
let humanDir;
try {
  // human's package.json "exports" has no usable subpaths, so its Node builds are loaded by file:
  // human.node-wasm.js is the build over the separate tfjs-core/-converter/-backend-wasm packages.
  humanDir = join(dirname(require.resolve('@vladmandic/human')), '..');
  ({ Human } = require(join(humanDir, 'dist', 'human.node-wasm.js')));
} catch (error) {
  fail(`@vladmandic/human did not load: ${error.message.split('\n')[0]} (cd bench && npm install)`);
}

const zeroSkip = { skipFrames: 0, skipTime: 0 };
const config = (backend) => ({
  backend,
  modelBasePath: pathToFileURL(join(humanDir, 'models')).href + '/',
  wasmPath: join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'),
  debug: false,
  warmup: 'none',
  cacheSensitivity: 0,
  filter: { enabled: false },
  face: {
    enabled: true,
    detector: { maxDetected: 20, rotation: false, ...zeroSkip },
    mesh: { enabled: true },
    iris: { enabled: false },
    emotion: { enabled: false },
    description: { enabled: true, ...zeroSkip },
    antispoof: { enabled: false },
    liveness: { enabled: false },
    attention: { enabled: false },
  },
  body: { enabled: false },
  hand: { enabled: false },
  object: { enabled: false },
  gesture: { enabled: false },
  segmentation: { enabled: false },
});

/** A Human on `backend`, or the reason it cannot run (human logs failures and carries on, so the backend is checked). */
async function start(backend) {
  try {
    if (backend === 'cpu') require('@tensorflow/tfjs-backend-cpu');
    const human = new Human(config(backend));
    await human.load();
    const running = human.tf.getBackend();
    if (running !== backend) return { reason: `backend '${backend}' did not start (tfjs is on '${running ?? 'none'}')` };
    const missing = ['blazeface', 'facemesh', 'faceres'].filter((m) => !human.models.loaded().includes(m));
    if (missing.length > 0) return { reason: `models not loaded: ${missing.join(', ')}` };
    return { human };
  } catch (error) {
    return { reason: `${backend}: ${error.message.split('\n')[0]}` };
  }
}

const fallbacks = [];
let started = await start(requested);
if (!started.human && requested === 'wasm') {
  fallbacks.push(`wasm failed: ${started.reason}`);
  started = await start('cpu');
}
if (!started.human) fail([...fallbacks, started.reason].join('; '));
const { human } = started;
const backend = human.tf.getBackend();
const wasmFeatures =
  backend === 'wasm'
    ? { simd: await human.tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), threads: await human.tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT') }
    : undefined;

const { pixels } = params.photo;
let faces;
const timing = await timePhotos(params, async () => {
  const input = human.tf.tensor3d(pixels.data, [pixels.height, pixels.width, 3], 'int32');
  const result = await human.detect(input);
  human.tf.dispose(input);
  if (result.error) throw new Error(`human.detect: ${result.error}`);
  faces = result.face.map((f) => ({ box: f.box, score: f.score, embedding: Float32Array.from(f.embedding ?? []) }));
});
const tensorsLeft = human.tf.memory().numTensors;

printResult({
  ...base,
  variant: `BlazeFace + mesh + faceres, tfjs ${backend}`,
  backend,
  backendNote: [
    backend === 'wasm' ? `WASM ${wasmFeatures.simd ? 'SIMD' : 'no SIMD'}, ${wasmFeatures.threads ? 'threaded' : 'one thread (tfjs has no WASM threads under Node)'}` : 'tfjs cpu backend: plain JavaScript, one thread',
    ...fallbacks,
  ].join('; '),
  threads: 1,
  ...timing,
  facesFound: faces.length,
  descriptorDim: faces[0]?.embedding.length ?? 0,
  faces: faces.map((f) => ({ ...boxSummary({ x: f.box[0], y: f.box[1], width: f.box[2], height: f.box[3] }), score: f.score })),
  tensorsLeft,
  versions: { human: human.version, tfjs: human.tf.version_core, node: process.versions.node },
});
