// A plain JavaScript scan: Float32Array dot products and a small insertion-sorted top-k, one
// thread, single queries only (it is slow; fewer queries).
import { printResult } from '../lib/args.mjs';
import { recallOf, searchResult, searchSetup, timeSingleQueries } from '../lib/search-setup.mjs';
import { scanTopK } from '../lib/top-k.mjs';

const setup = searchSetup();
const { params, rows, queries } = setup;
const { n, dim, k } = params;

const single = await timeSingleQueries(params.singleQueries, (q) => scanTopK(rows, n, dim, queries, q, k).rows, 1);

printResult(
  searchResult({
    impl: 'plain JS loop',
    variant: 'exact, double accumulate',
    params: { ...params, threads: 1 },
    single,
    recall: recallOf(setup, single, undefined),
    notes: ['single queries only'],
  }),
);
