// Gallery with device: 'cuda' (vectors also on the GPU in fp16, searched by libmaskface_cuda.so).
// Without a GPU it must refuse with the reason, never hand back a CPU gallery. With one, its
// results are checked against the CPU gallery on the same data: scores within fp16 rounding, and
// nothing that scores clearly better left out (tie- and rounding-aware, not position by position).
import t from 'tap';
import { EmbeddingBatch, Gallery, MaskFaceError, gpuStatus } from '../../dist/esm/index.js';

const model = { id: 'gpu-gallery-test', dim: 512, name: 'test' };
const status = gpuStatus();
const gpuSkip = status.kernels.loaded ? false : `no GPU gallery here: ${status.kernels.error}`;

t.test('without libmaskface_cuda.so loaded, device cuda refuses with the reason', { skip: !gpuSkip }, async (t) => {
  const error = t.throws(() => new Gallery({ model, device: 'cuda' })) as unknown as MaskFaceError;
  t.ok(error instanceof MaskFaceError);
  t.equal(error.code, 'ERR_PROVIDER_UNAVAILABLE');
  t.equal(error.message, `A GPU gallery is unavailable: ${status.kernels.error}`);
});

t.test('BAD CALL: device options', async (t) => {
  t.throws(() => new Gallery({ model, device: 'tpu' as never }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.device/ });
  t.throws(() => new Gallery({ model, deviceId: -1 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.deviceId/ });
  const cpu = new Gallery({ model });
  t.equal(cpu.device, 'cpu');
  t.equal(cpu.memory.deviceBytes, 0);
  await cpu.dispose();
});

function randomUnitVectors(count: number, dim: number, seed: number): Float32Array {
  const out = new Float32Array(count * dim);
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  for (let i = 0; i < count; i++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += (out[i * dim + j] = next()) ** 2;
    for (let j = 0; j < dim; j++) out[i * dim + j]! /= Math.sqrt(norm);
  }
  return out;
}

function dot(rows: Float32Array, row: number, queries: Float32Array, query: number, dim: number): number {
  let sum = 0;
  for (let j = 0; j < dim; j++) sum += rows[row * dim + j]! * queries[query * dim + j]!;
  return sum;
}

t.test('device cuda agrees with the CPU gallery', { skip: gpuSkip }, async (t) => {
  const n = 20_000;
  const vectors = randomUnitVectors(n, model.dim, 7);
  // Exact duplicates make ties.
  vectors.copyWithin(5 * model.dim, 3 * model.dim, 4 * model.dim);
  const cpu = new Gallery<number>({ model });
  const gpu = new Gallery<number>({ model, device: 'cuda' });
  t.teardown(async () => {
    await cpu.dispose();
    await gpu.dispose();
  });
  t.equal(gpu.device, 'cuda');
  const ids = Array.from({ length: n }, (_, i) => i);
  for (const gallery of [cpu, gpu]) {
    await gallery.addMany(ids, EmbeddingBatch.fromVectors(vectors, model));
    for (let i = 0; i < n; i += 97) gallery.remove(i);
  }
  t.ok(gpu.memory.deviceBytes >= n * model.dim * 2, `device bytes ${gpu.memory.deviceBytes}`);

  const queries = randomUnitVectors(300, model.dim, 11);
  queries.set(vectors.subarray(3 * model.dim, 4 * model.dim), 0); // a query equal to the duplicated row
  for (const count of [1, 8, 300]) {
    for (const k of [1, 10, 100, 1024]) {
      const q = queries.subarray(0, count * model.dim);
      const batch = EmbeddingBatch.fromVectors(q, model);
      const [expected, actual] = await Promise.all([cpu.searchBatch(batch, { k }), gpu.searchBatch(batch, { k })]);
      let worst = 0;
      let missing = 0;
      for (let i = 0; i < count; i++) {
        const want = expected.at(i);
        const got = actual.at(i);
        if (got.length !== want.length) missing++;
        const kth = want[want.length - 1]!.score;
        for (let j = 0; j < got.length; j++) {
          worst = Math.max(worst, Math.abs(got[j]!.score - want[j]!.score));
          if (got[j]!.id % 97 === 0) missing++; // a removed row
          // A returned row must be one the CPU ranks within rounding of the k-th best.
          const exact = dot(vectors, got[j]!.id, q, i, model.dim);
          if (exact < kth - 2e-3) missing++;
        }
      }
      t.ok(worst < 2e-3 && missing === 0, `${count} queries, k ${k}: worst score difference ${worst.toExponential(2)}, ${missing} wrong`);
    }
  }
});
