/** Dot product of query q (offset qo) with row r (offset ro), accumulated in double. */
export function dot(a, ao, b, bo, dim) {
  let sum = 0;
  for (let d = 0; d < dim; d++) sum += a[ao + d] * b[bo + d];
  return sum;
}

/** The k best (highest) scores seen, kept sorted best first by insertion. */
export class TopK {
  constructor(k) {
    this.k = k;
    this.scores = new Float64Array(k).fill(-Infinity);
    this.rows = new Int32Array(k).fill(-1);
  }

  get worst() {
    return this.scores[this.k - 1];
  }

  push(score, row) {
    if (score <= this.scores[this.k - 1]) return;
    let i = this.k - 1;
    while (i > 0 && this.scores[i - 1] < score) {
      this.scores[i] = this.scores[i - 1];
      this.rows[i] = this.rows[i - 1];
      i--;
    }
    this.scores[i] = score;
    this.rows[i] = row;
  }
}

/** Exact top-k of one query by a plain scan. */
export function scanTopK(rows, n, dim, queries, q, k) {
  const top = new TopK(k);
  const qo = q * dim;
  for (let r = 0; r < n; r++) {
    const score = dot(queries, qo, rows, r * dim, dim);
    if (score > top.worst) top.push(score, r);
  }
  return top;
}
