// hnswlib-node: approximate HNSW (M=16, efConstruction=200), inner product, search ef from --ef.
// The graph is built once per (n, dim, M, efConstruction) and cached on disk, so the ef=64 and
// ef=256 cases search the same graph; the build time reported is the one measured at build.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { intOption, printResult } from '../lib/args.mjs';
import { cacheDir } from '../lib/data.mjs';
import { recallOf, searchResult, searchSetup, timeBatch, timeSingleQueries } from '../lib/search-setup.mjs';

const setup = searchSetup();
const { options, params, query } = setup;
const { n, dim, k } = params;
const m = intOption(options, 'm', 16);
const efConstruction = intOption(options, 'ef-construction', 200);
const ef = intOption(options, 'ef', 64);

const indexFile = join(cacheDir, `hnswlib-${n}x${dim}-M${m}-efc${efConstruction}.bin`);
const metaFile = `${indexFile}.json`;
const index = new hnswlib.HierarchicalNSW('ip', dim);
let build;
if (existsSync(indexFile) && existsSync(metaFile)) {
  const t0 = performance.now();
  index.readIndexSync(indexFile);
  build = { ...JSON.parse(readFileSync(metaFile, 'utf8')), loadedFromCache: true, loadS: (performance.now() - t0) / 1000 };
} else {
  const t0 = performance.now();
  index.initIndex({ maxElements: n, m, efConstruction, randomSeed: 100 });
  for (let i = 0; i < n; i++) index.addPoint(Array.from(setup.rows.subarray(i * dim, (i + 1) * dim)), i);
  build = { buildS: Math.round(((performance.now() - t0) / 1000) * 10) / 10, buildThreads: 1 };
  index.writeIndexSync(indexFile);
  writeFileSync(metaFile, JSON.stringify(build));
  build.loadedFromCache = false;
}
index.setEf(ef);

// hnswlib-node takes number[] and searches one query per call on the calling thread.
const searchOne = (q) => index.searchKnn(Array.from(query(q)), k).neighbors;
const single = await timeSingleQueries(params.singleQueries, searchOne);
const batch = await timeBatch(params.batchQueries, () => {
  const found = [];
  for (let q = 0; q < params.batchQueries; q++) found.push(searchOne(q));
  return (q) => found[q];
});

printResult(
  searchResult({
    impl: 'hnswlib-node',
    variant: `HNSW M=${m} efC=${efConstruction} ef=${ef}`,
    params: { ...params, threads: 1 },
    single,
    batch,
    recall: recallOf(setup, single, batch),
    notes: ['one thread (the binding has no multi-threaded search); batch = a loop of single calls'],
    extra: { build },
  }),
);
