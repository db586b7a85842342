#!/usr/bin/env node
// Runs every benchmark case in a fresh Node process, collects one JSON result per case, and
// writes bench/results/<date>-<host>.json plus the Markdown table bench/results/latest.md.
//
//   node bench/run.mjs [--only embed|search|photo] [--quick] [--faiss-bin PATH] [--models a,b] [--model PATH] [--rounds N]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, resultPrefix } from './lib/args.mjs';
import { cpuCounters, loadAverage, machineFingerprint, stealPercent } from './lib/fingerprint.mjs';
import { ensurePhotos, photoNames } from './lib/photos.mjs';
import { renderMarkdown } from './lib/report.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(benchDir, '..');
const options = parseArgs();
const quick = options.quick === true;
const only = options.only;
const groups = ['embed', 'search', 'photo'];
if (only !== undefined && !groups.includes(only)) throw new Error(`--only takes ${groups.join(', ')}`);
const runs = (group) => only === undefined || only === group;
// The embedding cases' networks: catalogue names (--models), or one file (--model PATH).
const embedModelNames = options.model ? [] : String(options.models ?? 'mobilefacenet,maskface-mbf-cal,maskface-mbf-cal-int8').split(',');
// Models only maskface runs (custom ops): no onnxruntime-node cases; compared with the float model.
const maskfaceOnly = (name) => name.endsWith('-int8');
// Every embedding case runs this many times, interleaved; the table gives the median.
const embedRounds = Number(options.rounds ?? (quick ? 1 : 2));
if (!Number.isInteger(embedRounds) || embedRounds < 1) throw new Error(`--rounds must be a positive integer, got ${options.rounds}`);
const faissCandidates = [options['faiss-bin'], join(benchDir, 'native', 'build', 'faiss_bench')];
const faissBin = faissCandidates.find((path) => path && existsSync(path));
const searchBenchBin = faissBin ? join(dirname(faissBin), 'search_bench') : join(benchDir, 'native', 'build', 'search_bench');

const sizes = quick
  ? { batches: [1, 8], threads: [2], embedRuns: ['--warmup', '1', '--min-runs', '3', '--min-seconds', '0.3'],
      n: 5000, singleQueries: 20, batchQueries: 100, recallQueries: 20, jsQueries: 5,
      photoRuns: ['--warmup', '1', '--min-runs', '3', '--min-seconds', '0.3'] }
  : { batches: [1, 8, 32], threads: [1, 2], embedRuns: ['--warmup', '3', '--min-runs', '10', '--min-seconds', '5'],
      n: 100000, singleQueries: 200, batchQueries: 1000, recallQueries: 200, jsQueries: 20,
      photoRuns: ['--warmup', '3', '--min-runs', '10', '--min-seconds', '5'] };
const searchArgs = (overrides = {}) => {
  const values = { n: sizes.n, dim: 512, k: 10, 'single-queries': sizes.singleQueries, 'batch-queries': sizes.batchQueries,
    'recall-queries': sizes.recallQueries, threads: 2, ...overrides };
  return Object.entries(values).flatMap(([name, value]) => [`--${name}`, String(value)]);
};

/**
 * The embedding cases of one model: maskface with its defaults and with cpu.spinning, and
 * onnxruntime-node with its defaults, with maskface's session settings, and with denormals
 * flushed (its default spinning kept): the best settings found for it.
 */
function embedCases(model) {
  const cases = [];
  for (const batch of sizes.batches) {
    for (const threads of sizes.threads) {
      const args = ['--model', model.path, '--batch', String(batch), '--threads', String(threads), ...sizes.embedRuns];
      const at = `${model.name} batch=${batch} threads=${threads}`;
      cases.push({ name: `embed-maskface ${at}`, script: 'embed-maskface', args, meta: { model: model.name } });
      cases.push({ name: `embed-maskface ${at} spinning`, script: 'embed-maskface', args: [...args, '--spinning'], meta: { model: model.name } });
      if (maskfaceOnly(model.name)) continue;
      for (const session of ['default', 'maskface', 'flush']) {
        cases.push({ name: `embed-ort-node ${at} session=${session}`, script: 'embed-ort-node', args: [...args, '--session', session], meta: { model: model.name } });
      }
    }
  }
  return cases;
}

/**
 * Runs every case `rounds` times, round after round; each case's result is its median round by
 * faces/s (of an even count, the slower of the middle two), with every round's faces/s beside it.
 */
function runRounds(cases, rounds) {
  const byCase = new Map(cases.map((c) => [c.name, []]));
  for (let round = 1; round <= rounds; round++) {
    if (rounds > 1) process.stderr.write(`  round ${round} of ${rounds}\n`);
    for (const testCase of cases) byCase.get(testCase.name).push({ ...runCase(testCase), ...testCase.meta });
  }
  return [...byCase.values()].map((runs) => {
    const ok = runs.filter((r) => !r.error).sort((a, b) => a.facesPerS - b.facesPerS);
    if (ok.length === 0) return runs[0];
    return { ...ok[Math.floor((ok.length - 1) / 2)], facesPerSRounds: runs.map((r) => r.facesPerS ?? null) };
  });
}

function searchCases() {
  return [
    { name: 'search-maskface threads=2', script: 'search-maskface', args: searchArgs({ threads: 2 }) },
    { name: 'search-maskface threads=1', script: 'search-maskface', args: searchArgs({ threads: 1 }) },
    { name: 'search-maskface f16 threads=2', script: 'search-maskface', args: [...searchArgs({ threads: 2 }), '--storage', 'f16'] },
    { name: 'search-maskface f16 threads=1', script: 'search-maskface', args: [...searchArgs({ threads: 1 }), '--storage', 'f16'] },
    { name: 'search-maskface int8 threads=2', script: 'search-maskface', args: [...searchArgs({ threads: 2 }), '--storage', 'int8'] },
    { name: 'search-maskface int8 threads=1', script: 'search-maskface', args: [...searchArgs({ threads: 1 }), '--storage', 'int8'] },
    { name: 'search-usearch exact', script: 'search-usearch', args: [...searchArgs(), '--mode', 'exact'] },
    { name: 'search-usearch hnsw', script: 'search-usearch', args: [...searchArgs(), '--mode', 'hnsw'] },
    { name: 'search-hnswlib ef=64', script: 'search-hnswlib', args: [...searchArgs(), '--ef', '64'] },
    { name: 'search-hnswlib ef=256', script: 'search-hnswlib', args: [...searchArgs(), '--ef', '256'] },
    { name: 'search-js-loop', script: 'search-js-loop', args: searchArgs({ 'single-queries': sizes.jsQueries, 'recall-queries': sizes.jsQueries }) },
  ];
}

/** Photo -> embeddings of every face, per photo: maskface, onnxruntime-node + JS, human (tfjs). Intra-op threads 2 for all. */
function photoCases() {
  const cases = [];
  for (const photo of photoNames) {
    const common = ['--photo', photo, '--threads', '2', ...sizes.photoRuns];
    // meta: what a failed case's row shows
    const add = (name, script, args, impl, variant) => cases.push({ name, script, args, meta: { kind: 'photo', impl, variant, photo } });
    // The first two run the peer's models (UltraFace, landmark68, MobileFaceNet); the third is maskface's default pipeline.
    const same = [...common, '--model', 'mobilefacenet', '--detector', 'ultraface-320'];
    add(`photo-maskface ${photo} mobilefacenet`, 'photo-maskface', same, 'maskface', 'ultraface-320, mobilefacenet');
    add(`photo-maskface ${photo} mobilefacenet mirror=off`, 'photo-maskface', [...same, '--mirror-landmarks', 'false'],
      'maskface', 'ultraface-320, mobilefacenet, mirrorLandmarks off');
    add(`photo-maskface ${photo} defaults`, 'photo-maskface', [...common, '--model', 'maskface-mbf-cal', '--detector', 'blazeface-256'], 'maskface',
      'blazeface-256, maskface-mbf-cal (the defaults)');
    add(`photo-ort-node ${photo}`, 'photo-ort-node', common, 'onnxruntime-node', 'mobilefacenet, JS pre/post');
    add(`photo-ort-node ${photo} session=maskface`, 'photo-ort-node', [...common, '--session', 'maskface'], 'onnxruntime-node',
      "mobilefacenet, JS pre/post, maskface's session settings");
    add(`photo-human ${photo}`, 'photo-human', [...common, '--backend', 'wasm'], 'human', 'BlazeFace + mesh + faceres');
  }
  return cases;
}

function runProcess(command, args, timeoutMinutes = 20) {
  const child = spawnSync(command, args, { cwd: repoRoot, encoding: 'utf8', timeout: timeoutMinutes * 60_000, maxBuffer: 64 << 20 });
  const error = child.error?.message ?? (child.status !== 0 ? `exit ${child.status ?? child.signal}: ${child.stderr.trim().split('\n').slice(-3).join(' | ')}` : undefined);
  return { stdout: child.stdout ?? '', error };
}

function runCase(testCase) {
  process.stderr.write(`  ${testCase.name} ... `);
  const loadAtStart = loadAverage();
  const counters = cpuCounters();
  const started = performance.now();
  const { stdout, error } = runProcess(process.execPath, [join(benchDir, 'cases', `${testCase.script}.mjs`), ...testCase.args]);
  const line = stdout.split('\n').find((l) => l.startsWith(resultPrefix));
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  const stealPct = stealPercent(counters, cpuCounters());
  const result = !error && line ? JSON.parse(line.slice(resultPrefix.length)) : undefined;
  const status = error ? 'FAILED' : result?.error ? `FAILED: ${result.error}` : 'done';
  process.stderr.write(`${status} (${seconds} s, load ${loadAtStart[0]}, steal ${stealPct}%)\n`);
  if (!result) {
    return { case: testCase.name, kind: testCase.script.split('-')[0], impl: testCase.script, ...testCase.meta, error: error ?? 'no result line', loadAtStart, stealPct };
  }
  return { case: testCase.name, ...result, loadAtStart, stealPct, wallS: seconds };
}

/** faiss IndexFlatIP from the C++ benchmark of bench/native (one JSON line per case). */
function runFaiss() {
  const how = 'build it with `apt-get install libfaiss-dev libopenblas-dev && cmake -S bench/native -B bench/native/build && cmake --build bench/native/build -j2`, or pass --faiss-bin PATH';
  if (!faissBin) {
    process.stderr.write(`  faiss skipped: no faiss_bench binary (${how})\n`);
    return { result: { kind: 'search', impl: 'faiss IndexFlatIP (C++)', variant: 'BLAS', skipped: `no faiss_bench binary; ${how}` } };
  }
  process.stderr.write(`  faiss (${relative(repoRoot, faissBin)}) ... `);
  const loadAtStart = loadAverage();
  const counters = cpuCounters();
  const common = ['--n', String(sizes.n), '--dim', '512', '--k', '10', '--threads', '2'];
  const lines = [];
  for (const which of ['single', 'batch']) {
    const extra = which === 'single' ? ['--single-queries', String(sizes.singleQueries)] : ['--queries', String(sizes.batchQueries)];
    const { stdout, error } = runProcess(faissBin, ['--case', which, ...common, ...extra]);
    if (error) {
      process.stderr.write('FAILED\n');
      return { result: { kind: 'search', impl: 'faiss IndexFlatIP (C++)', variant: 'BLAS', error } };
    }
    lines.push(...stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)));
  }
  process.stderr.write('done\n');
  const single = lines.find((l) => l.case === 'single');
  const batch = lines.find((l) => l.case === 'batch');
  const recalls = [single?.recall_at_k, batch?.recall_at_k].filter((v) => typeof v === 'number');
  return {
    note: `faiss rows come from ${relative(repoRoot, faissBin)} (C++, same data generator, its own recall reference).`,
    result: {
      case: 'faiss', kind: 'search', impl: 'faiss IndexFlatIP (C++)', variant: 'exact, BLAS for batches', threads: single?.threads ?? batch?.threads,
      n: single?.n ?? batch?.n, dim: single?.dim ?? batch?.dim, k: single?.k ?? batch?.k,
      single: single && { queries: single.queries, qps: single.qps },
      batch: batch && { queries: batch.queries, qps: batch.qps },
      recall: recalls.length ? Math.min(...recalls) : null, raw: lines, loadAtStart, stealPct: stealPercent(counters, cpuCounters()),
    },
  };
}

/** The memory read bound of one query in this run: C++ that only loads every row once (bench/native). */
function runReadBound() {
  const impl = 'read bound (C++, loads only)';
  if (!existsSync(searchBenchBin)) {
    return { kind: 'search', impl, variant: '-', skipped: `no ${relative(repoRoot, searchBenchBin)}; build bench/native` };
  }
  process.stderr.write('  read bound ... ');
  const loadAtStart = loadAverage();
  const { stdout, error } = runProcess(searchBenchBin, ['--case', 'bound', '--n', String(sizes.n), '--dim', '512', '--threads', '2']);
  if (error) {
    process.stderr.write('FAILED\n');
    return { kind: 'search', impl, variant: '-', error };
  }
  process.stderr.write('done\n');
  const line = JSON.parse(stdout.split('\n').find((l) => l.startsWith('{')));
  return {
    kind: 'search', impl, variant: `best of ${line.queries} passes, ${line.gb_per_s.toFixed(1)} GB/s`, threads: line.threads,
    n: line.n, dim: line.dim, k: line.k, single: { qps: line.qps, queries: line.queries }, recall: null, loadAtStart, bound: true,
  };
}

/** The embedding cases' model files: --model PATH, else the catalogue names of --models (fetched once). */
function prepareModels() {
  if (options.model !== undefined) {
    if (!existsSync(options.model)) throw new Error(`--model ${options.model}: no such file`);
    return [{ name: relative(repoRoot, options.model), path: options.model }];
  }
  const script = `import('./dist/esm/setup.js').then(async (m) => { for (const n of ${JSON.stringify(embedModelNames)}) console.log(await m.ensureModel(n)); })`;
  const { stdout, error } = runProcess(process.execPath, ['-e', script]);
  const paths = stdout.trim().split('\n');
  if (error || paths.length !== embedModelNames.length || !paths.every((p) => existsSync(p))) {
    throw new Error(`Cannot get the models ${embedModelNames.join(', ')}: ${error ?? stdout}`);
  }
  return embedModelNames.map((name, i) => ({ name, path: paths[i] }));
}

/** The first embedding of maskface and onnxruntime-node (batch 1) should agree: same model, same pixels. */
function embeddingAgreement(results) {
  const pick = (impl) => results.find((r) => r.impl === impl && r.embedding0)?.embedding0;
  const a = pick('maskface');
  const b = pick('onnxruntime-node');
  for (const r of results) delete r.embedding0;
  if (!a || !b) return undefined;
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return Math.round(dot * 1e6) / 1e6;
}

/** The photo cases' models (UltraFace-320, landmark68, MobileFaceNet) and their two photos, made before any case runs. */
async function preparePhotoCases() {
  const script = "import('./dist/esm/setup.js').then((m) => Promise.all(['ultraface-320', 'blazeface-256', 'landmark68', 'mobilefacenet'].map((n) => m.ensureModel(n))))";
  const { error } = runProcess(process.execPath, ['-e', script]);
  if (error) throw new Error(`Cannot fetch the photo cases' models: ${error}`);
  await ensurePhotos();
}

/**
 * Cosine between maskface's and onnxruntime-node's embeddings of the same faces (same MobileFaceNet,
 * aligned by each one's own landmarks), faces matched by box centre. Every maskface mobilefacenet
 * row gets its agreement with the default onnxruntime-node row of its photo; that row gets the one
 * of the default maskface row. The embeddings are dropped from the results afterwards.
 */
function photoAgreement(results) {
  const cosine = (a, b) => {
    let dot = 0;
    for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
    return dot;
  };
  const compare = (mine, theirs) => {
    const values = mine.map((face) => {
      const near = theirs
        .map((other) => ({ other, distance: Math.hypot(other.cx - face.cx, other.cy - face.cy) }))
        .sort((p, q) => p.distance - q.distance)[0];
      return near && near.distance < 0.5 * face.size ? cosine(face.embedding, near.other.embedding) : null;
    });
    const matched = values.filter((v) => v !== null);
    if (matched.length === 0) return undefined;
    const r = (v) => Math.round(v * 1e4) / 1e4;
    return { min: r(Math.min(...matched)), mean: r(matched.reduce((s, v) => s + v, 0) / matched.length), matched: matched.length, perFace: values.map((v) => v === null ? null : r(v)) };
  };
  for (const photo of photoNames) {
    const ort = results.find((r) => r.kind === 'photo' && r.impl === 'onnxruntime-node' && r.session === 'default' && r.photo === photo && r.faces);
    if (!ort) continue;
    for (const r of results.filter((x) => x.kind === 'photo' && x.impl === 'maskface' && x.model === 'mobilefacenet' && x.photo === photo && x.faces)) {
      r.agreementWithOrtNode = compare(r.faces, ort.faces);
      if (r.mirrorLandmarks) ort.agreementWithMaskface = r.agreementWithOrtNode;
    }
  }
  for (const r of results) for (const face of r.faces ?? []) delete face.embedding;
}

const startedAt = new Date().toISOString();
const loadBefore = loadAverage();
const countersBefore = cpuCounters();
process.stderr.write(`maskface benchmarks (${quick ? 'quick' : 'full'}), load average ${loadBefore.join(' ')}\n`);
const fingerprint = machineFingerprint();
const results = [];
let faissNote;
if (runs('embed')) {
  for (const model of prepareModels()) {
    process.stderr.write(`Embedding cases, ${model.name}:\n`);
    const modelResults = runRounds(embedCases(model), embedRounds);
    const agreement = embeddingAgreement(modelResults);
    for (const r of modelResults) Object.assign(r, { model: model.name, agreement });
    results.push(...modelResults);
  }
}
if (runs('search')) {
  process.stderr.write('Search cases (the first run generates the data and the exact reference, about a minute at 100k):\n');
  const prepared = runCase({ name: 'prepare-search', script: 'prepare-search', args: searchArgs() });
  if (prepared.error) throw new Error(`Preparing the search data failed: ${prepared.error}`);
  for (const testCase of searchCases()) results.push(runCase(testCase));
  results.push(runReadBound());
  const faiss = runFaiss();
  faissNote = faiss.note;
  results.push(faiss.result);
}
if (runs('photo')) {
  process.stderr.write('Photo cases (photo -> an embedding of every face; two 1280x720 photos from bench/.cache):\n');
  await preparePhotoCases();
  const photoResults = photoCases().map(runCase);
  photoAgreement(photoResults);
  results.push(...photoResults);
}

const resultsDir = join(benchDir, 'results');
mkdirSync(resultsDir, { recursive: true });
const suffix = quick ? '-quick' : only ? `-${only}` : '';
const jsonFile = join(resultsDir, `${startedAt.slice(0, 10)}-${os.hostname()}${suffix}.json`);
const run = { startedAt, mode: quick ? 'quick' : 'full', only: only ?? 'all', fingerprint, loadBefore, loadAfter: loadAverage(), stealPct: stealPercent(countersBefore, cpuCounters()),
  jsonFile: relative(repoRoot, jsonFile), results };
writeFileSync(jsonFile, `${JSON.stringify(run, null, 2)}\n`);
const markdown = renderMarkdown(run, { faissNote });
const markdownFile = join(resultsDir, quick ? 'latest-quick.md' : only ? `latest-${only}.md` : 'latest.md');
writeFileSync(markdownFile, markdown);
process.stdout.write(`${markdown}\n\nWrote ${relative(repoRoot, jsonFile)} and ${relative(repoRoot, markdownFile)}\n`);
