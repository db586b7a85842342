// usearch: --mode exact (exactSearch over the raw matrix, no index) or hnsw (Index with its
// defaults: connectivity 16, expansion_add 128, expansion_search 64), inner product, f32.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printResult } from '../lib/args.mjs';
import { recallOf, searchResult, searchSetup, timeBatch, timeSingleQueries } from '../lib/search-setup.mjs';

// usearch's npm package has no linux prebuild, and when its own build is missing its loader walks
// up the folders and picks the first build/Release it finds: maskface's. Refuse that clearly.
const usearchBinary = fileURLToPath(new URL('../node_modules/usearch/build/Release/usearch.node', import.meta.url));
if (!existsSync(usearchBinary)) throw new Error(`usearch is not built (${usearchBinary} is missing): see bench/README.md`);
const { default: usearch } = await import('usearch');

const setup = searchSetup();
const { options, params, rows, queries, query } = setup;
const { n, dim, k, threads } = params;
const mode = options.mode ?? 'exact';
const toRows = (keys) => Array.from(keys, Number);
// usearch 2.25 exactSearch ignores a typed array's byteOffset (a subarray view is read from the
// start of its buffer), so it gets its own copies.
const own = (view) => (view.byteOffset === 0 ? view : view.slice());

let search;
let build;
if (mode === 'exact') {
  const dataset = own(rows);
  search = (vectors) => usearch.exactSearch(dataset, own(vectors), dim, k, usearch.MetricKind.IP, threads);
} else if (mode === 'hnsw') {
  const index = new usearch.Index({ dimensions: dim, metric: usearch.MetricKind.IP, quantization: usearch.ScalarKind.F32 });
  const t0 = performance.now();
  index.add(BigUint64Array.from({ length: n }, (_, i) => BigInt(i)), rows, threads);
  build = { buildS: Math.round(((performance.now() - t0) / 1000) * 10) / 10, buildThreads: threads };
  search = (vectors) => index.search(vectors, k, threads);
} else {
  throw new Error(`--mode must be exact or hnsw, got ${mode}`);
}

const single = await timeSingleQueries(params.singleQueries, (q) => toRows(search(query(q)).keys));
const batchQueries = queries.subarray(0, params.batchQueries * dim);
const batch = await timeBatch(params.batchQueries, () => {
  const matches = search(batchQueries);
  return (q) => toRows(matches.get(q).keys);
});

printResult(
  searchResult({
    impl: 'usearch',
    variant: mode === 'exact' ? 'exactSearch f32' : 'HNSW defaults (M=16, ef=64)',
    params,
    single,
    batch,
    recall: recallOf(setup, single, batch),
    extra: build ? { build } : {},
  }),
);
