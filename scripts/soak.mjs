#!/usr/bin/env node
// Soak: many concurrent callers on the main thread and in worker threads, for a long time,
// doing everything at once: embedFaces on photos, embedBatch, detect, gallery add/remove,
// search/searchBatch, and save/load of the command line's gallery file. Samples RSS, heap and
// external memory every few seconds; reports errors (there must be none) and whether memory
// stayed flat; draws the samples as a PNG.
//
//   node scripts/soak.mjs [--seconds 1800] [--callers 8] [--workers 4] [--sample 5]
//                         [--png docs/pictures/soak.png] [--json soak.json] [--max-growth 0.15]
//                         [--trim-seconds N]
//
// --trim-seconds N calls glibc's malloc_trim(0) every N seconds (an experiment: does giving the
// arenas' free memory back keep RSS flat?).
//
// Photos: deepface's test set (../shared/data or MASKFACE_DATA_DIR) when present, else
// generated pixels (mechanics only). Exit status 1 on any error, or when the mean RSS of the
// last quarter exceeds the second quarter's (after warm-up: ONNX Runtime's arenas grow in the
// first seconds) by more than --max-growth.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const m = await import(join(root, 'dist', 'esm', 'index.js'));
const files = await import(join(root, 'dist', 'cjs', 'cli', 'common.js'));

function photos() {
  const dir = process.env.MASKFACE_DATA_DIR ? join(process.env.MASKFACE_DATA_DIR, 'deepface_testset') : join(root, '..', 'shared', 'data', 'deepface_testset');
  if (existsSync(dir)) {
    return readdirSync(dir)
      .filter((n) => n.endsWith('.jpg'))
      .sort()
      .slice(0, 12)
      .map((n) => readFileSync(join(dir, n)));
  }
  return [0, 1, 2].map((s) => ({ data: Uint8Array.from({ length: 320 * 240 * 3 }, (_, i) => (i * 13 + s * 71) & 255), width: 320, height: 240 }));
}

function face(seed) {
  return { data: Uint8Array.from({ length: 112 * 112 * 3 }, (_, i) => (i * 7 + seed * 31 + ((i / 336) | 0) * (seed % 5)) & 255), width: 112, height: 112 };
}

/** One caller: picks operations at random until `deadline`; counts them; records errors. */
async function caller(id, ctx, deadline, stats) {
  let state = id * 7919 + 1;
  const random = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const { recognizer, detector, gallery, pictures, folder } = ctx;
  const ids = [];
  while (Date.now() < deadline) {
    const op = Math.floor(random() * 8);
    try {
      if (op === 0) {
        const faces = await recognizer.embedFaces(pictures[Math.floor(random() * pictures.length)], { detector });
        for (const f of faces) {
          const name = `c${id}-${ids.length}`;
          gallery.add(name, f.embedding);
          ids.push(name);
        }
      } else if (op === 1) {
        const batch = await recognizer.embedBatch([face(id), face(id + 1), face(id + 2)]);
        await gallery.addMany([`b${id}-${stats.ops}-0`, `b${id}-${stats.ops}-1`, `b${id}-${stats.ops}-2`], batch);
        ids.push(`b${id}-${stats.ops}-0`, `b${id}-${stats.ops}-1`, `b${id}-${stats.ops}-2`);
      } else if (op === 2) {
        await detector.detect(pictures[Math.floor(random() * pictures.length)], { maxFaces: 3 });
      } else if (op === 3 && gallery.size > 0) {
        const query = await recognizer.embed(face(Math.floor(random() * 100)));
        await gallery.search(query, { k: 5 });
      } else if (op === 4 && gallery.size > 0) {
        await gallery.searchBatch(await recognizer.embedBatch([face(1), face(2)]), { k: 3 });
      } else if (op === 5 && ids.length > 20) {
        // Keep the gallery bounded: remove the oldest of this caller's ids.
        for (const name of ids.splice(0, 10)) gallery.remove(name);
      } else if (op === 6 && folder) {
        const embeddings = await recognizer.embedBatch([face(id), face(id + 3)]);
        const path = join(folder, `gallery-${id}.json`);
        await files.writeGalleryFile(path, { model: recognizer.model, entries: [{ id: 'x', source: 'x' }, { id: 'y', source: 'y' }], vectors: embeddings.data });
        const loaded = await files.galleryFrom(await files.readGalleryFile(path), recognizer.model, path);
        await loaded.search(embeddings.at(0), { k: 1 });
        await loaded.dispose();
        // The thread's own gallery, saved while the other callers change and search it.
        const saved = join(folder, `gallery-${id}.mfg`);
        await gallery.save(saved);
        const reopened = await m.Gallery.load(saved, { model: recognizer.model, threads: 1 });
        await reopened.dispose();
      } else {
        const e = await recognizer.embed(face(id));
        m.FaceEmbedding.fromBytes(e.toBytes('f16'), recognizer.model);
      }
      stats.ops++;
    } catch (error) {
      stats.errors.push(`${error?.code ?? error?.name}: ${error?.message}`);
    }
  }
}

async function runCallers(count, deadline, label, folder) {
  const recognizer = await m.FaceRecognizer.load('maskface-mbf-cal', { cpu: { intraOpThreads: 1 } });
  const detector = await m.FaceDetector.load({ cpu: { intraOpThreads: 1 } });
  const gallery = new m.Gallery({ model: recognizer.model, threads: 1 });
  const ctx = { recognizer, detector, gallery, pictures: photos(), folder };
  const stats = { label, ops: 0, errors: [] };
  await Promise.all(Array.from({ length: count }, (_, i) => caller(i + (label === 'main' ? 0 : 100 * (workerData?.index ?? 0) + 50), ctx, deadline, stats)));
  await Promise.all([gallery.dispose(), detector.dispose(), recognizer.dispose()]);
  return stats;
}

if (!isMainThread) {
  const stats = await runCallers(workerData.callers, workerData.deadline, `worker ${workerData.index}`, workerData.folder);
  parentPort.postMessage(stats);
} else {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '1800' },
      callers: { type: 'string', default: '8' },
      workers: { type: 'string', default: '4' },
      sample: { type: 'string', default: '5' },
      png: { type: 'string' },
      json: { type: 'string' },
      'max-growth': { type: 'string', default: '0.15' },
      'trim-seconds': { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  const started = Date.now();
  const deadline = started + seconds * 1000;
  const folder = mkdtempSync(join(tmpdir(), 'maskface-soak-'));
  const samples = [];
  // The C heap of every thread (glibc's arenas): what is allocated, and what is held free.
  const { native } = createRequire(import.meta.url)('../dist/cjs/runtime/binding-loader.js');
  const sample = () => {
    const u = process.memoryUsage();
    const heap = native().mallocStats();
    samples.push({
      t: (Date.now() - started) / 1000,
      rssMB: u.rss / 2 ** 20,
      heapMB: u.heapUsed / 2 ** 20,
      externalMB: u.external / 2 ** 20,
      ...(heap && { mallocInUseMB: (heap.inUse + heap.mmapped) / 2 ** 20, mallocFreeMB: heap.free / 2 ** 20 }),
    });
  };
  sample();
  const timer = setInterval(sample, Number(values.sample) * 1000);
  const trimmer = values['trim-seconds'] ? setInterval(() => native().mallocTrim(), Number(values['trim-seconds']) * 1000) : undefined;
  const workers = Array.from({ length: Number(values.workers) }, (_, index) =>
    new Promise((resolve, reject) => {
      const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { index, callers: 2, deadline, folder } });
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => code !== 0 && reject(new Error(`worker ${index} exited with ${code}`)));
    }),
  );
  const results = await Promise.all([runCallers(Number(values.callers), deadline, 'main', folder), ...workers]);
  clearInterval(timer);
  clearInterval(trimmer);
  sample();
  rmSync(folder, { recursive: true, force: true });

  // Flat: the last quarter's mean RSS against the second quarter's (after warm-up).
  const quarterOf = (key, q) => {
    const part = samples.filter((s) => s.t >= (q * seconds) / 4 && s.t <= ((q + 1) * seconds) / 4);
    return part.reduce((sum, s) => sum + s[key], 0) / Math.max(1, part.length);
  };
  const quarter = (q) => quarterOf('rssMB', q);
  const growth = quarter(3) / quarter(1) - 1;
  const errors = results.flatMap((r) => r.errors.map((e) => `${r.label}: ${e}`));
  const report = {
    seconds,
    callers: Number(values.callers),
    workers: Number(values.workers),
    ops: Object.fromEntries(results.map((r) => [r.label, r.ops])),
    totalOps: results.reduce((sum, r) => sum + r.ops, 0),
    errors: errors.slice(0, 20),
    errorCount: errors.length,
    rssMB: { start: samples[0].rssMB, secondQuarterMean: quarter(1), lastQuarterMean: quarter(3), max: Math.max(...samples.map((s) => s.rssMB)) },
    rssGrowth: growth,
    mallocMB: samples[0].mallocInUseMB === undefined ? null : {
      inUse: { secondQuarterMean: quarterOf('mallocInUseMB', 1), lastQuarterMean: quarterOf('mallocInUseMB', 3) },
      free: { secondQuarterMean: quarterOf('mallocFreeMB', 1), lastQuarterMean: quarterOf('mallocFreeMB', 3) },
    },
    samples,
  };
  if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  if (values.png) {
    const width = 800;
    const height = 400;
    const maxMB = Math.max(...samples.map((s) => Math.max(s.rssMB, s.heapMB + s.externalMB))) * 1.1;
    const x = (t) => 60 + (t / Math.max(seconds, 1)) * (width - 80);
    const y = (mb) => height - 40 - (mb / maxMB) * (height - 80);
    const line = (key, colour) => `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${samples.map((s) => `${x(s.t).toFixed(1)},${y(s[key]).toFixed(1)}`).join(' ')}"/>`;
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="${x(f * seconds)}" y="${height - 20}" font-size="12" text-anchor="middle" font-family="sans-serif">${((f * seconds) / 60).toFixed(1)} min</text>`);
    const mbTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="52" y="${y(f * maxMB) + 4}" font-size="12" text-anchor="end" font-family="sans-serif">${(f * maxMB).toFixed(0)} MB</text>`);
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>
      <text x="${width / 2}" y="22" text-anchor="middle" font-size="14" font-family="sans-serif">maskface soak: ${report.callers} callers + ${report.workers} worker threads, ${report.totalOps} operations, ${report.errorCount} errors</text>
      ${line('rssMB', '#d62728')}${line('heapMB', '#1f77b4')}${line('externalMB', '#2ca02c')}${report.mallocMB ? line('mallocInUseMB', '#9467bd') + line('mallocFreeMB', '#8c564b') : ''}${ticks.join('')}${mbTicks.join('')}
      <text x="${width - 20}" y="50" text-anchor="end" font-size="12" fill="#d62728" font-family="sans-serif">RSS</text>
      <text x="${width - 20}" y="66" text-anchor="end" font-size="12" fill="#1f77b4" font-family="sans-serif">JS heap used (main thread)</text>
      <text x="${width - 20}" y="82" text-anchor="end" font-size="12" fill="#2ca02c" font-family="sans-serif">external (main thread)</text>
      ${report.mallocMB ? `<text x="${width - 20}" y="98" text-anchor="end" font-size="12" fill="#9467bd" font-family="sans-serif">C heap allocated (all threads)</text>
      <text x="${width - 20}" y="114" text-anchor="end" font-size="12" fill="#8c564b" font-family="sans-serif">C heap held free (all threads)</text>` : ''}</svg>`;
    const sharp = (await import('sharp')).default;
    await sharp(Buffer.from(svg)).png().toFile(values.png);
  }
  console.log(
    `${seconds} s, ${report.callers} callers + ${report.workers} workers: ${report.totalOps} operations, ${report.errorCount} errors; ` +
      `RSS ${report.rssMB.start.toFixed(0)} MB at start, ${report.rssMB.secondQuarterMean.toFixed(0)} -> ${report.rssMB.lastQuarterMean.toFixed(0)} MB (second to last quarter, ${(100 * growth).toFixed(1)}%), max ${report.rssMB.max.toFixed(0)} MB`,
  );
  if (report.mallocMB) {
    const m = report.mallocMB;
    console.log(
      `C heap, second to last quarter: allocated ${m.inUse.secondQuarterMean.toFixed(0)} -> ${m.inUse.lastQuarterMean.toFixed(0)} MB, ` +
        `held free ${m.free.secondQuarterMean.toFixed(0)} -> ${m.free.lastQuarterMean.toFixed(0)} MB`,
    );
  }
  for (const e of errors.slice(0, 5)) console.log(`  ${e}`);
  process.exit(errors.length === 0 && growth < Number(values['max-growth']) ? 0 : 1);
}
