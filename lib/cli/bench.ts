/**
 * `maskface bench`: embed latency and throughput, then exact gallery search queries/s.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { EmbeddingBatch } from '../api/embedding.js';
import { FaceRecognizer } from '../api/face-recognizer.js';
import { Gallery } from '../api/gallery.js';
import { native } from '../runtime/binding-loader.js';
import { versions } from '../api/versions.js';
import { ensureModel, isModelName } from '../setup/models.js';

const batchSizes = [1, 8, 32];

/** onnxruntime-node as the current project would import it, or undefined. */
function findOnnxruntimeNode(): string | undefined {
  try {
    return createRequire(join(process.cwd(), 'package.json')).resolve('onnxruntime-node');
  } catch {
    return undefined;
  }
}

// Runs in a child process (its own ONNX Runtime, as a user's service would load it): the model
// through onnxruntime-node, fed a ready float tensor, with its defaults or denormals flushed.
const ortNodeScript = `
const [entry, model, threads, iterations, settings, sizes] = process.argv.slice(1);
const ort = require(entry);
(async () => {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: Number(threads), interOpNumThreads: 1,
    ...(settings === 'flush' && { extra: { session: { set_denormal_as_zero: '1' } } }) });
  const rates = {};
  for (const size of JSON.parse(sizes)) {
    const input = new ort.Tensor('float32', Float32Array.from({ length: size * 3 * 112 * 112 }, (_, i) => ((i * 31) & 0xff) / 128 - 1), [size, 3, 112, 112]);
    const feeds = { [session.inputNames[0]]: input };
    await session.run(feeds);
    const times = [];
    for (let i = 0; i < Number(iterations); i++) { const t = performance.now(); await session.run(feeds); times.push(performance.now() - t); }
    times.sort((a, b) => a - b);
    rates[size] = (size * 1000) / times[Math.floor(times.length / 2)];
  }
  console.log(JSON.stringify({ version: require(require('path').join(require('path').dirname(entry), '..', 'package.json')).version, rates }));
})().catch((e) => { console.error(String(e && e.message || e)); process.exit(1); });`;

/** faces/s by batch size of onnxruntime-node on the same model file, or why there is none. */
function onnxruntimeNodeRates(entry: string, model: string, threads: number, iterations: number, settings: 'default' | 'flush'):
  { version: string; rates: Record<number, number> } | { error: string } {
  const child = spawnSync(process.execPath, ['-e', ortNodeScript, entry, model, String(threads), String(iterations), settings, JSON.stringify(batchSizes)], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
  });
  if (child.status !== 0) return { error: (child.stderr || child.error?.message || `exit ${child.status}`).trim().split('\n').at(-1)! };
  return JSON.parse(child.stdout.trim().split('\n').at(-1)!);
}

/** The SIMD extensions the kernel reports for this CPU (those that matter to ONNX Runtime and the scan). */
function cpuFlags(): string {
  try {
    const flags = new Set(/^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? []);
    const wanted = ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_int8'];
    return wanted.filter((flag) => flags.has(flag)).join(' ') || 'none of sse4_2/avx/avx2/avx512';
  } catch {
    return 'unknown (no /proc/cpuinfo)';
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function bench(options: { model: string; threads: number; spinning: boolean; gallery: number; iterations: number }): Promise<void> {
  const v = versions();
  console.log(`maskface ${v.maskface}, ONNX Runtime ${v.onnxruntime}, Node ${v.node}, ${cpus()[0]?.model ?? 'cpu'} x ${availableParallelism()}`);
  console.log(
    `threads: ${options.threads} intra-op per ONNX Runtime session, ${availableParallelism()} for gallery search (its default); ` +
      `gallery scan SIMD: ${native().versions().searchSimd}; CPU flags: ${cpuFlags()}`,
  );
  await using rec = await FaceRecognizer.load(options.model, {
    cpu: { intraOpThreads: options.threads, spinning: options.spinning },
    onProgress: (m) => console.log(`  ${m}`),
  });
  const [height, width] = [rec.info.inputShape[2] ?? 112, rec.info.inputShape[3] ?? 112];
  const face = (seed: number) => ({
    data: Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 31 + seed * 17) & 0xff),
    width,
    height,
  });
  console.log(`\nembed: ${rec.model.name} (${rec.model.dim}-d), ${options.threads} intra-op threads${options.spinning ? ', spinning' : ''}`);
  console.log('batch   p50 ms   p95 ms   faces/s   pre+post %   max loop delay ms');
  const maskfaceRates: Record<number, number> = {};
  for (const size of batchSizes) {
    const faces = Array.from({ length: size }, (_, i) => face(i));
    await rec.embedBatch(faces); // warm-up
    const times: number[] = [];
    let overhead = 0;
    let total = 0;
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    for (let i = 0; i < options.iterations; i++) {
      const start = performance.now();
      const { timing } = await rec.embedBatch(faces);
      times.push(performance.now() - start);
      if (!timing) throw new Error('embedBatch gave no timing');
      overhead += timing.preprocessMs + timing.postprocessMs;
      total += timing.preprocessMs + timing.inferenceMs + timing.postprocessMs;
    }
    loop.disable();
    times.sort((a, b) => a - b);
    const p50 = percentile(times, 50);
    maskfaceRates[size] = (size * 1000) / p50;
    console.log(
      `${String(size).padStart(5)} ${p50.toFixed(1).padStart(8)} ${percentile(times, 95).toFixed(1).padStart(8)} ${((size * 1000) / p50).toFixed(1).padStart(9)} ${((100 * overhead) / total).toFixed(2).padStart(12)} ${(loop.max / 1e6).toFixed(1).padStart(19)}`,
    );
  }

  const ortNode = findOnnxruntimeNode();
  if (ortNode === undefined) {
    console.log('\nonnxruntime-node is not installed in this project: `npm install onnxruntime-node` to compare in the same run');
  } else if (rec.info.metadata['maskface.precision'] === 'int8') {
    console.log('\nonnxruntime-node cannot run this int8 model (its PReLU is maskface::QLinearPRelu, an op of maskface\'s runtime): compare with `maskface bench --model maskface-mbf-cal`');
  } else if (width !== 112 || height !== 112) {
    console.log(`\nonnxruntime-node comparison skipped: it feeds 112x112 faces and this model takes ${width}x${height}`);
  } else {
    const modelFile = isModelName(options.model) ? await ensureModel(options.model) : options.model;
    const runs = (['default', 'flush'] as const).map((settings) => onnxruntimeNodeRates(ortNode, modelFile, options.threads, options.iterations, settings));
    for (const run of runs) if ('error' in run) console.log(`\nonnxruntime-node failed: ${run.error}`);
    if (runs.every((run) => !('error' in run))) {
      const [plain, flushed] = runs as { version: string; rates: Record<number, number> }[];
      console.log(`\nthe same model through onnxruntime-node ${plain!.version} (${ortNode}), faces/s by p50 and maskface's ratio to it:`);
      console.log('batch   defaults   ratio   denormals flushed   ratio');
      for (const size of batchSizes) {
        const cell = (rate: number) => `${rate.toFixed(1).padStart(8)}   ${(maskfaceRates[size]! / rate).toFixed(2).padStart(4)}x`;
        console.log(`${String(size).padStart(5)} ${cell(plain!.rates[size]!)}   ${cell(flushed!.rates[size]!).padStart(17)}`);
      }
    }
  }

  const n = options.gallery;
  const dim = rec.model.dim;
  console.log(`\nsearch: exact cosine top-10 over ${n} x ${dim} f32 (${((n * dim * 4) / 1e6).toFixed(1)} MB)`);
  const data = new Float32Array(n * dim);
  let state = 12345;
  for (let i = 0; i < data.length; i++) data[i] = ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  const batch = EmbeddingBatch.fromVectors(data, rec.model);
  await using gallery = new Gallery<number>({ model: rec.model });
  await gallery.addMany(Array.from({ length: n }, (_, i) => i), batch);
  const queries = EmbeddingBatch.fromVectors(data.slice(0, 1000 * dim), rec.model);
  for (let i = 0; i < 5; i++) await gallery.search(queries.at(i), { k: 10 }); // warm-up
  let start = performance.now();
  const single = 100;
  for (let i = 0; i < single; i++) await gallery.search(queries.at(i), { k: 10 });
  const singleQps = (single * 1000) / (performance.now() - start);
  start = performance.now();
  await gallery.searchBatch(queries, { k: 10 });
  const batchQps = (queries.count * 1000) / (performance.now() - start);
  console.log(`single queries: ${singleQps.toFixed(1)} q/s (${((singleQps * n * dim * 4) / 1e9).toFixed(1)} GB/s scanned)`);
  console.log(`batch of ${queries.count}: ${batchQps.toFixed(1)} q/s`);
}
