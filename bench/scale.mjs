// A gallery at scale: 10 million x 512 rows in f16 (about 10 GB) by default. Two fresh
// processes, one after the other:
//   build: adds the rows in batches (add rate, generation not counted), times single queries and
//          a batch, saves the gallery to a file (save time, file size);
//   load:  Gallery.load of that file (load time, peak RSS), the same queries again, which must
//          find the same rows.
// The rows are clustered like the search cases' (their 1000 centres, noise of the same norm), but
// with uniform noise from a 32-bit xorshift: the search cases' exact Gaussian generator makes
// about 10,000 rows a second, which would take most of the run at this size.
// Prints a table with the machine's details; --out writes the JSON. Nothing is asserted but the
// equality of the answers before and after the file.
//
//   node bench/scale.mjs [--rows 10000000] [--dim 512] [--storage f16] [--threads 2]
//                        [--single-queries 20] [--batch-queries 100] [--file PATH] [--out JSON]
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { intOption, parseArgs } from './lib/args.mjs';
import { clusterCount, clusteredVectors, noiseNorm } from './lib/data.mjs';
import { loadAverage, machineFingerprint } from './lib/fingerprint.mjs';
import { percentile, round } from './lib/stats.mjs';

const options = parseArgs();
const params = {
  rows: intOption(options, 'rows', 10_000_000),
  dim: intOption(options, 'dim', 512),
  storage: options.storage ?? 'f16',
  threads: intOption(options, 'threads', 2),
  singleQueries: intOption(options, 'single-queries', 20),
  batchQueries: intOption(options, 'batch-queries', 100),
  k: 10,
  chunk: 100_000,
};
const file = options.file ?? join(tmpdir(), `maskface-scale-${params.rows}x${params.dim}-${params.storage}.mfg`);

const centres = clusteredVectors(clusterCount, params.dim, 3);

/** n unit rows around the centres, deterministic per `seed` (uniform noise of norm ~noiseNorm). */
function fastClusteredRows(n, dim, seed) {
  let s = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  const out = new Float32Array(n * dim);
  const amplitude = noiseNorm * Math.sqrt(3 / dim); // uniform on [-a, a] has variance a^2 / 3
  for (let i = 0; i < n; i++) {
    const from = Math.floor(next() * clusterCount) * dim;
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      const v = centres[from + d] + amplitude * (2 * next() - 1);
      out[i * dim + d] = v;
      norm += v * v;
    }
    const scale = 1 / Math.sqrt(norm);
    for (let d = 0; d < dim; d++) out[i * dim + d] *= scale;
  }
  return out;
}

function kib(key) {
  return Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(`${key}:\\s+(\\d+)`))[1]) * 1024;
}

async function searches(m, gallery, model) {
  const queries = fastClusteredRows(Math.max(params.singleQueries, params.batchQueries), params.dim, 2);
  const query = (q) => m.FaceEmbedding.fromVector(queries.subarray(q * params.dim, (q + 1) * params.dim), model);
  await gallery.search(query(0), { k: params.k }); // warm-up
  const latencies = [];
  const found = [];
  for (let q = 0; q < params.singleQueries; q++) {
    const t0 = performance.now();
    const matches = await gallery.search(query(q), { k: params.k });
    latencies.push(performance.now() - t0);
    found.push(matches.map((match) => match.id));
  }
  const batch = m.EmbeddingBatch.fromVectors(queries.subarray(0, params.batchQueries * params.dim), model);
  const t0 = performance.now();
  const result = await gallery.searchBatch(batch, { k: params.k });
  const batchS = (performance.now() - t0) / 1000;
  const batchFound = Array.from({ length: params.batchQueries }, (_, q) => result.at(q).map((match) => match.id));
  return {
    singleP50Ms: round(percentile(latencies, 50), 1),
    singleQps: round(1000 / (latencies.reduce((a, b) => a + b, 0) / latencies.length), 2),
    batchQps: round(params.batchQueries / batchS, 2),
    found: [...found, ...batchFound],
  };
}

async function build(m) {
  const model = { id: 'bench-scale', dim: params.dim, name: 'bench' };
  const gallery = new m.Gallery({ model, threads: params.threads, storage: params.storage, capacity: params.rows });
  let addS = 0;
  for (let start = 0; start < params.rows; start += params.chunk) {
    const n = Math.min(params.chunk, params.rows - start);
    const rows = fastClusteredRows(n, params.dim, 1000 + start / params.chunk);
    const ids = Array.from({ length: n }, (_, i) => start + i);
    const t0 = performance.now();
    await gallery.addMany(ids, m.EmbeddingBatch.fromVectors(rows, model));
    addS += (performance.now() - t0) / 1000;
    if ((start / params.chunk) % 10 === 0) process.stderr.write(`  added ${start + n} rows\n`);
  }
  const search = await searches(m, gallery, model);
  const t0 = performance.now();
  await gallery.save(file);
  const saveS = (performance.now() - t0) / 1000;
  const result = { addRowsPerS: Math.round(params.rows / addS), addS: round(addS, 1), saveS: round(saveS, 1), fileBytes: statSync(file).size, hostBytes: gallery.memory.hostBytes, peakRssBytes: kib('VmHWM'), ...search };
  await gallery.dispose();
  return result;
}

async function load(m) {
  const model = { id: 'bench-scale', dim: params.dim, name: 'bench' };
  const before = kib('VmRSS');
  const t0 = performance.now();
  const gallery = await m.Gallery.load(file, { model, threads: params.threads, storage: params.storage });
  const loadS = (performance.now() - t0) / 1000;
  const peak = kib('VmHWM');
  const search = await searches(m, gallery, model);
  const result = { loadS: round(loadS, 1), loadRowsPerS: Math.round(gallery.size / loadS), rssBeforeBytes: before, peakRssBytes: peak, hostBytes: gallery.memory.hostBytes, ...search };
  await gallery.dispose();
  return result;
}

const phase = options.phase;
if (phase) {
  const m = await import('../dist/esm/index.js');
  const result = phase === 'build' ? await build(m) : await load(m);
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
} else {
  const self = fileURLToPath(import.meta.url);
  const run = (which) => {
    process.stderr.write(`${which}...\n`);
    const out = execFileSync(process.execPath, ['--max-old-space-size=8192', self, ...process.argv.slice(2), '--phase', which, '--file', file], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 28,
    });
    return JSON.parse(out.split('\n').find((line) => line.startsWith('RESULT ')).slice(7));
  };
  const loadBefore = loadAverage();
  const built = run('build');
  const loaded = run('load');
  rmSync(file, { force: true });
  const same = JSON.stringify(built.found) === JSON.stringify(loaded.found);
  delete built.found;
  delete loaded.found;
  const report = { date: new Date().toISOString(), machine: machineFingerprint(), loadAverage: { before: loadBefore, after: loadAverage() }, params, build: built, load: loaded, sameAnswersAfterLoad: same };
  if (options.out) writeFileSync(options.out, `${JSON.stringify(report, null, 2)}\n`);
  const gib = (bytes) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  const m = report.machine;
  console.log(`${m.cpu} (${m.cpuVendor} ${m.cpuFamilyModelStepping}, ${m.simd}${m.virtualized ? ', virtualised' : ''}), ${m.cores} cores, ${m.memoryGiB} GiB; load ${report.loadAverage.before.join(' ')} -> ${report.loadAverage.after.join(' ')}`);
  console.log(`${params.rows} x ${params.dim} ${params.storage}, ${params.threads} search threads, top-${params.k}`);
  console.log(`build: ${built.addRowsPerS} rows/s added (${built.addS} s), store ${gib(built.hostBytes)}, peak RSS ${gib(built.peakRssBytes)}`);
  console.log(`save:  ${built.saveS} s, file ${gib(built.fileBytes)}`);
  console.log(`load:  ${loaded.loadS} s (${loaded.loadRowsPerS} rows/s), peak RSS ${gib(loaded.peakRssBytes)} (${gib(loaded.rssBeforeBytes)} before)`);
  console.log(`search after build: single p50 ${built.singleP50Ms} ms (${built.singleQps} q/s), batch of ${params.batchQueries}: ${built.batchQps} q/s`);
  console.log(`search after load:  single p50 ${loaded.singleP50Ms} ms (${loaded.singleQps} q/s), batch of ${params.batchQueries}: ${loaded.batchQps} q/s`);
  console.log(`same answers after the file: ${same}`);
}
