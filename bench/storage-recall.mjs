// Recall of f16 and int8 galleries against exact f32 search, on real face embeddings and on the
// clustered benchmark data: recall@10 (the share of f32's top 10 that they also return), the
// largest score difference on the rows both return, answers identical to f32's, and how int8's
// two passes answered (widened: a second, wider pass; exact scans: then the f32 rows).
//   node bench/storage-recall.mjs [--faces 3000] [--queries 200] [--clustered 100000] [--data ../shared/data]
// Real embeddings: UTKFace crops of ../shared/data (roughly aligned 200x200 colour faces), the
// centre 160x160 resized to 112x112 and embedded by the default model; the first `--queries`
// faces are the queries, the rest the gallery.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { EmbeddingBatch, FaceRecognizer, Gallery } from '../dist/esm/index.js';
import { intOption, parseArgs } from './lib/args.mjs';
import { galleryRows, queryRows } from './lib/data.mjs';
import { machineFingerprint } from './lib/fingerprint.mjs';

const options = parseArgs();
const faces = intOption(options, 'faces', 3000);
const queryCount = intOption(options, 'queries', 200);
const clustered = intOption(options, 'clustered', 100000);
const dataDir = options.data ?? process.env.MASKFACE_DATA_DIR ?? join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'shared', 'data');
const k = 10;

/**
 * recall@k of f16 and int8 against f32 over the same rows (one search call per query, so int8
 * runs its two passes), the worst score difference of shared hits, and how int8 answered.
 */
async function compare(rows, queries, dim, label) {
  const model = { id: `storage-recall-${label}`, dim };
  const n = rows.length / dim;
  const ids = Array.from({ length: n }, (_, i) => i);
  const batch = EmbeddingBatch.fromVectors(queries, model);
  const results = {};
  let int8 = null;
  for (const storage of ['f32', 'f16', 'int8']) {
    const gallery = new Gallery({ model, storage, capacity: n });
    await gallery.addMany(ids, EmbeddingBatch.fromVectors(rows, model));
    results[storage] = [];
    for (let q = 0; q < batch.count; q++) results[storage].push(await gallery.search(batch.at(q), { k }));
    if (storage === 'int8') int8 = gallery.searchStats;
    await gallery.dispose();
  }
  const against = (storage) => {
    let found = 0;
    let worst = 0;
    let identical = 0;
    for (let q = 0; q < batch.count; q++) {
      const exact = new Map(results.f32[q].map((m) => [m.id, m.score]));
      if (JSON.stringify(results[storage][q]) === JSON.stringify(results.f32[q])) identical++;
      for (const m of results[storage][q]) {
        if (!exact.has(m.id)) continue;
        found++;
        worst = Math.max(worst, Math.abs(exact.get(m.id) - m.score));
      }
    }
    return { recallAt10: found / (batch.count * k), worstScoreDifference: worst, identicalAnswers: identical };
  };
  return { data: label, rows: n, queries: batch.count, f16: against('f16'), int8: { ...against('int8'), ...int8 } };
}

const reports = [];
const folder = join(dataDir, 'utkface_crop_part1', 'crop_part1');
if (existsSync(folder)) {
  const recognizer = await FaceRecognizer.load();
  const files = readdirSync(folder).filter((f) => f.endsWith('.jpg')).sort().slice(0, faces);
  const vectors = [];
  for (let i = 0; i < files.length; i += 32) {
    const crops = await Promise.all(
      files.slice(i, i + 32).map(async (f) => {
        const { data, info } = await sharp(join(folder, f)).extract({ left: 20, top: 20, width: 160, height: 160 }).resize(112, 112).removeAlpha().raw().toBuffer({ resolveWithObject: true });
        return { data: new Uint8Array(data), width: info.width, height: info.height };
      }),
    );
    const embedded = await recognizer.embedBatch(crops);
    vectors.push(embedded.data.slice());
    process.stderr.write(`\rembedded ${Math.min(i + 32, files.length)} / ${files.length}`);
  }
  process.stderr.write('\n');
  const dim = recognizer.model.dim;
  await recognizer.dispose();
  const all = new Float32Array(vectors.reduce((n, v) => n + v.length, 0));
  let at = 0;
  for (const v of vectors) (all.set(v, at), (at += v.length));
  reports.push(await compare(all.subarray(queryCount * dim), all.subarray(0, queryCount * dim), dim, 'UTKFace embeddings (maskface-mbf-cal)'));
} else {
  console.log(`no UTKFace crops at ${folder}: real embeddings skipped`);
}
reports.push(await compare(galleryRows(clustered, 512), queryRows(queryCount, 512), 512, 'clustered benchmark data'));

const machine = machineFingerprint();
console.log(`machine: ${machine.cpu}, ${machine.cores} cores, search SIMD ${machine.simd}, Node ${machine.node}`);
console.log('| data | rows | queries | storage | recall@10 vs f32 | worst score difference | answers identical to f32 | int8: widened / scanned in f32 | int8: candidates per query |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of reports) {
  for (const storage of ['f16', 'int8']) {
    const m = r[storage];
    const int8 = storage === 'int8' ? [`${m.widened} / ${m.exactScans}`, (m.candidates / m.queries).toFixed(1)] : ['-', '-'];
    console.log(`| ${r.data} | ${r.rows} | ${r.queries} | ${storage} | ${m.recallAt10.toFixed(4)} | ${m.worstScoreDifference.toExponential(2)} | ${m.identicalAnswers} / ${r.queries} | ${int8.join(' | ')} |`);
  }
}
