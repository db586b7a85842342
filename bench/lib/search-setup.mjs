// What every search case shares: the sizes from the command line, the clustered gallery and
// queries (cached on disk), the exact reference for recall, and the timing loops.
import { intOption, parseArgs } from './args.mjs';
import { galleryRows, queryRows } from './data.mjs';
import { exactReference, recallAtK } from './exact-reference.mjs';
import { percentile, round } from './stats.mjs';

export function searchSetup() {
  const options = parseArgs();
  const params = {
    n: intOption(options, 'n', 100000),
    dim: intOption(options, 'dim', 512),
    k: intOption(options, 'k', 10),
    singleQueries: intOption(options, 'single-queries', 200),
    batchQueries: intOption(options, 'batch-queries', 1000),
    recallQueries: intOption(options, 'recall-queries', 200),
    threads: intOption(options, 'threads', 2),
  };
  const { n, dim, k } = params;
  const rows = galleryRows(n, dim);
  const queryCount = Math.max(params.singleQueries, params.batchQueries, params.recallQueries);
  const queries = queryRows(queryCount, dim);
  const reference = exactReference(rows, n, dim, queries, params.recallQueries, k);
  const query = (q) => queries.subarray(q * dim, (q + 1) * dim);
  const recall = (resultRows, count) => recallAtK(reference, rows, queries, resultRows, count);
  return { options, params, rows, queries, query, recall };
}

/**
 * Times `count` single queries, one call each (after `warmup` untimed ones). `searchOne(q)`
 * returns (or resolves to) the rows found for query q, which are kept for recall.
 */
export async function timeSingleQueries(count, searchOne, warmup = 5) {
  for (let q = 0; q < Math.min(warmup, count); q++) await searchOne(q);
  const found = [];
  const latencies = [];
  const start = performance.now();
  for (let q = 0; q < count; q++) {
    const t0 = performance.now();
    found.push(await searchOne(q));
    latencies.push(performance.now() - t0);
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    queries: count,
    qps: round(count / seconds, 1),
    p50Ms: round(percentile(latencies, 50), 3),
    p95Ms: round(percentile(latencies, 95), 3),
    found,
  };
}

/**
 * Times one call that searches `count` queries at once, `repeats` times after one untimed
 * warm-up call; reports the median. `searchAll()` returns the rows of query q via a function.
 */
export async function timeBatch(count, searchAll, repeats = 3) {
  let rowsOf = await searchAll();
  const seconds = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    rowsOf = await searchAll();
    seconds.push((performance.now() - t0) / 1000);
  }
  const median = percentile(seconds, 50);
  return { queries: count, qps: round(count / median, 1), callMs: round(median * 1000, 1), repeats, rowsOf };
}

/** The result record of a search case (one table row). */
export function searchResult({ impl, variant, params, single, batch, recall, notes = [], extra = {} }) {
  return {
    kind: 'search',
    impl,
    variant,
    threads: params.threads,
    n: params.n,
    dim: params.dim,
    k: params.k,
    single: single && { queries: single.queries, qps: single.qps, p50Ms: single.p50Ms, p95Ms: single.p95Ms },
    batch: batch && { queries: batch.queries, qps: batch.qps, callMs: batch.callMs, repeats: batch.repeats },
    recall: recall.value,
    recallSingle: recall.single,
    recallBatch: recall.batch,
    recallQueries: recall.queries,
    notes,
    ...extra,
  };
}

/** Recall of single and batch results over the reference queries; the lower one is quoted. */
export function recallOf(setup, single, batch) {
  const fromSingle = single ? setup.recall((q) => single.found[q], single.queries) : undefined;
  const fromBatch = batch ? setup.recall(batch.rowsOf, batch.queries) : undefined;
  const values = [fromSingle?.recall, fromBatch?.recall].filter((v) => v !== undefined);
  return {
    value: values.length ? round(Math.min(...values), 4) : null,
    single: fromSingle && round(fromSingle.recall, 4),
    batch: fromBatch && round(fromBatch.recall, 4),
    queries: Math.max(fromSingle?.recallQueries ?? 0, fromBatch?.recallQueries ?? 0),
  };
}
