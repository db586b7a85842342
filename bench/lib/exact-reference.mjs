// The exact answer that recall is measured against: a double-precision scan in plain JS,
// independent of maskface's native search (so maskface's recall of 1.0 is a real check).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from './data.mjs';
import { dot, scanTopK } from './top-k.mjs';

/** Tolerance for ties and float rounding, as RecallAtK in bench/native/data.h. */
const scoreTolerance = 1e-5;

/** k best rows and the k-th best score of the first `count` queries, cached on disk. */
export function exactReference(rows, n, dim, queries, count, k) {
  const file = join(cacheDir, `reference-${n}x${dim}-q${count}-k${k}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const reference = { n, dim, k, count, rows: [], kthScore: [] };
  for (let q = 0; q < count; q++) {
    const top = scanTopK(rows, n, dim, queries, q, k);
    reference.rows.push(Array.from(top.rows));
    reference.kthScore.push(top.worst);
  }
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(file, JSON.stringify(reference));
  return reference;
}

/**
 * Tie-aware recall@k over the queries the reference covers: a returned row counts when its exact
 * score reaches the k-th best exact score (within rounding), whichever of several tied rows it is.
 * `resultRows(q)` gives the rows returned for query q (at most k, -1 or undefined for none).
 */
export function recallAtK(reference, rows, queries, resultRows, queryCount = reference.count) {
  const { dim, k } = reference;
  const count = Math.min(queryCount, reference.count);
  let hits = 0;
  for (let q = 0; q < count; q++) {
    const found = resultRows(q);
    for (let i = 0; i < Math.min(k, found.length); i++) {
      const row = found[i];
      if (row === undefined || row < 0) continue;
      if (dot(queries, q * dim, rows, row * dim, dim) >= reference.kthScore[q] - scoreTolerance) hits++;
    }
  }
  return { recall: hits / (count * k), recallQueries: count };
}
