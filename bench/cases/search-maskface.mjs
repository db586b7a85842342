// maskface Gallery: exact cosine top-k in C++ (SIMD, `threads` threads per search), over f32,
// (--storage f16) half-float rows, or (--storage int8) int8 codes first, then the f32 rows.
import { EmbeddingBatch, FaceEmbedding, Gallery, versions } from '../../dist/esm/index.js';
import { printResult } from '../lib/args.mjs';
import { recallOf, searchResult, searchSetup, timeBatch, timeSingleQueries } from '../lib/search-setup.mjs';

const setup = searchSetup();
const { options, params, rows, queries, query } = setup;
const storage = options.storage ?? 'f32';
const { n, dim, k, threads } = params;
const model = { id: 'bench-clustered', dim, name: 'bench' };

const gallery = new Gallery({ model, threads, capacity: n, storage });
const buildStart = performance.now();
await gallery.addMany(Array.from({ length: n }, (_, i) => i), EmbeddingBatch.fromVectors(rows, model));
const buildS = (performance.now() - buildStart) / 1000;

const single = await timeSingleQueries(params.singleQueries, async (q) => {
  const matches = await gallery.search(FaceEmbedding.fromVector(query(q), model), { k });
  return matches.map((m) => m.id);
});
const batchQueries = EmbeddingBatch.fromVectors(queries.subarray(0, params.batchQueries * dim), model);
const batch = await timeBatch(params.batchQueries, async () => {
  const matches = await gallery.searchBatch(batchQueries, { k });
  return (q) => matches.rows.subarray(q * k, (q + 1) * k);
});
const memory = gallery.memory;
const int8 = gallery.searchStats;
await gallery.dispose();

printResult(
  searchResult({
    impl: 'maskface Gallery',
    variant: `exact ${storage}`,
    params,
    single,
    batch,
    recall: recallOf(setup, single, batch),
    extra: { buildS: Math.round(buildS * 100) / 100, hostBytes: memory.hostBytes, ...(int8 ? { int8 } : {}), versions: versions() },
  }),
);
