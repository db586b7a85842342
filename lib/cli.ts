#!/usr/bin/env node
// maskface command line: bench, fetch-models, info, providers, install-gpu, uninstall-gpu.
import { availableParallelism, cpus } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  EmbeddingBatch,
  FaceRecognizer,
  Gallery,
  ensureModel,
  gpuStatus,
  installGpuRuntime,
  listProviders,
  modelCatalogue,
  modelCacheDir,
  uninstallGpuRuntime,
  versions,
} from './index.js';
import type { ModelName } from './models.js';

const usage = `Usage: maskface <command> [options]

Commands:
  bench           embed latency and throughput, then exact gallery search queries/s
    --model <name|path>   model to run (default: mobilefacenet)
    --threads <n>         intra-op threads (default: all cores)
    --gallery <n>         gallery size for the search part (default: 100000)
    --iterations <n>      timed runs per batch size (default: 10)
  fetch-models [names]    fetch catalogue models into the cache (default: all; bundled
                          models are checked against their sidecar, never downloaded)
  info                    versions, cores, model cache
  providers               execution providers: compiled in, available, and why not; the
                          GPU, driver, ONNX Runtime and CUDA kernel library found
  install-gpu [--force]   download the GPU runtime (ONNX Runtime 1.29.0 with CUDA and
                          TensorRT, about 290 MB from the npm registry) into the cache
  uninstall-gpu           remove it; the CPU runtime is used again
`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function bench(options: { model: string; threads: number; gallery: number; iterations: number }): Promise<void> {
  const v = versions();
  console.log(`maskface ${v.maskface}, ONNX Runtime ${v.onnxruntime}, Node ${v.node}, ${cpus()[0]?.model ?? 'cpu'} x ${availableParallelism()}`);
  await using rec = await FaceRecognizer.load(options.model, {
    cpu: { intraOpThreads: options.threads },
    onProgress: (m) => console.log(`  ${m}`),
  });
  const [height, width] = [rec.info.inputShape[2] ?? 112, rec.info.inputShape[3] ?? 112];
  const face = (seed: number) => ({
    data: Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 31 + seed * 17) & 0xff),
    width,
    height,
  });
  console.log(`\nembed: ${rec.model.name} (${rec.model.dim}-d), ${options.threads} intra-op threads`);
  console.log('batch   p50 ms   p95 ms   faces/s   pre+post %   max loop delay ms');
  for (const size of [1, 8, 32]) {
    const faces = Array.from({ length: size }, (_, i) => face(i));
    await rec.embedBatch(faces); // warm-up
    const times: number[] = [];
    let overhead = 0;
    let total = 0;
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    for (let i = 0; i < options.iterations; i++) {
      const start = performance.now();
      await rec.embedBatch(faces);
      times.push(performance.now() - start);
      const timing = rec.lastTiming!;
      overhead += timing.preprocessMs + timing.postprocessMs;
      total += timing.preprocessMs + timing.inferenceMs + timing.postprocessMs;
    }
    loop.disable();
    times.sort((a, b) => a - b);
    const p50 = percentile(times, 50);
    console.log(
      `${String(size).padStart(5)} ${p50.toFixed(1).padStart(8)} ${percentile(times, 95).toFixed(1).padStart(8)} ${((size * 1000) / p50).toFixed(1).padStart(9)} ${((100 * overhead) / total).toFixed(2).padStart(12)} ${(loop.max / 1e6).toFixed(1).padStart(19)}`,
    );
  }

  const n = options.gallery;
  const dim = rec.model.dim;
  console.log(`\nsearch: exact cosine top-10 over ${n} x ${dim} f32 (${((n * dim * 4) / 1e6).toFixed(1)} MB)`);
  const data = new Float32Array(n * dim);
  let state = 12345;
  for (let i = 0; i < data.length; i++) data[i] = ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  const batch = new EmbeddingBatch(data, rec.model);
  await using gallery = new Gallery<number>({ model: rec.model });
  await gallery.addMany(Array.from({ length: n }, (_, i) => i), batch);
  const queries = new EmbeddingBatch(data.slice(0, 1000 * dim), rec.model);
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

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      model: { type: 'string', default: 'mobilefacenet' },
      threads: { type: 'string', default: String(availableParallelism()) },
      gallery: { type: 'string', default: '100000' },
      iterations: { type: 'string', default: '10' },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  const integer = (name: string, text: string) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, not '${text}'`);
    return value;
  };
  if (values.help || command === undefined) {
    console.log(usage);
    return;
  }
  if (command === 'bench') {
    await bench({
      model: values.model!,
      threads: integer('threads', values.threads!),
      gallery: integer('gallery', values.gallery!),
      iterations: integer('iterations', values.iterations!),
    });
  } else if (command === 'fetch-models') {
    const names = (rest.length > 0 ? rest : Object.keys(modelCatalogue)) as ModelName[];
    for (const name of names) console.log(await ensureModel(name, { onProgress: (m) => console.error(`  ${m}`) }));
  } else if (command === 'providers') {
    console.log(JSON.stringify({ providers: listProviders(), gpu: gpuStatus() }, null, 2));
  } else if (command === 'install-gpu') {
    console.log(await installGpuRuntime({ force: values.force, log: (m) => console.error(`  ${m}`) }));
  } else if (command === 'uninstall-gpu') {
    await uninstallGpuRuntime();
  } else if (command === 'info') {
    console.log(JSON.stringify({ ...versions(), cores: availableParallelism(), modelCache: modelCacheDir() }, null, 2));
  } else {
    throw new Error(`unknown command '${command}'\n\n${usage}`);
  }
}

main().catch((error: Error & { code?: string }) => {
  console.error(`maskface: ${error.code ? `${error.code}: ` : ''}${error.message}`);
  process.exit(1);
});
