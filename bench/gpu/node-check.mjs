// The GPU gallery from JavaScript, for bench/gpu/check.sh: needs only dist/ and a built addon
// (no node_modules). Builds a CPU and a 'cuda' Gallery on the same random unit vectors, checks
// that the GPU's top-k agrees with the CPU's (scores within fp16 rounding, nothing clearly better
// left out, removed rows never returned), and times searches on both.
//   node bench/gpu/node-check.mjs [rows]
import { EmbeddingBatch, Gallery, gpuStatus } from '../../dist/esm/index.js';

const rows = Number(process.argv[2] ?? 200000);
const dim = 512;
const model = { id: 'gpu-check', dim, name: 'gpu-check' };
const status = gpuStatus();
console.log(JSON.stringify({ devices: status.devices, kernels: status.kernels }));
if (!status.kernels.loaded) {
  console.log(`SKIP: no GPU gallery: ${status.kernels.error}`);
  process.exit(77);
}

function randomUnit(count, seed) {
  const out = new Float32Array(count * dim);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      const v = state / 2 ** 32 - 0.5;
      out[i * dim + j] = v;
      norm += v * v;
    }
    const scale = 1 / Math.sqrt(norm);
    for (let j = 0; j < dim; j++) out[i * dim + j] *= scale;
  }
  return out;
}

const vectors = randomUnit(rows, 7);
const cpu = new Gallery({ model });
const gpu = new Gallery({ model, device: 'cuda' });
const ids = Array.from({ length: rows }, (_, i) => i);
let t = performance.now();
await cpu.addMany(ids, new EmbeddingBatch(vectors, model));
const cpuAdd = performance.now() - t;
t = performance.now();
await gpu.addMany(ids, new EmbeddingBatch(vectors, model));
const gpuAdd = performance.now() - t;
for (let i = 0; i < rows; i += 101) {
  cpu.remove(i);
  gpu.remove(i);
}
console.log(`added ${rows} x ${dim}: cpu ${cpuAdd.toFixed(0)} ms, gpu ${gpuAdd.toFixed(0)} ms; device bytes ${gpu.memory.deviceBytes}`);

let failures = 0;
for (const count of [1, 8, 256]) {
  for (const k of [1, 10, 100, 1024]) {
    const queries = randomUnit(count, 1000 + count + k);
    const batch = new EmbeddingBatch(queries, model);
    const [want, got] = await Promise.all([cpu.searchBatch(batch, { k }), gpu.searchBatch(batch, { k })]);
    let worst = 0;
    let wrong = 0;
    for (let q = 0; q < count; q++) {
      const w = want.at(q);
      const g = got.at(q);
      if (g.length !== w.length) wrong++;
      const kth = w[w.length - 1].score;
      for (let j = 0; j < g.length; j++) {
        worst = Math.max(worst, Math.abs(g[j].score - w[j].score));
        if (g[j].id % 101 === 0) wrong++;
        let exact = 0;
        for (let d = 0; d < dim; d++) exact += vectors[g[j].id * dim + d] * queries[q * dim + d];
        if (exact < kth - 2e-3) wrong++;
      }
    }
    const ok = worst < 2e-3 && wrong === 0;
    if (!ok) failures++;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${count} queries, k ${k}: worst score difference ${worst.toExponential(2)}, ${wrong} wrong`);
  }
}

for (const count of [1, 1000]) {
  const batch = new EmbeddingBatch(randomUnit(count, 99), model);
  for (const [name, gallery] of [['cpu', cpu], ['gpu', gpu]]) {
    await gallery.searchBatch(batch, { k: 10 });
    const runs = count === 1 ? 50 : 5;
    t = performance.now();
    for (let i = 0; i < runs; i++) await gallery.searchBatch(batch, { k: 10 });
    const seconds = (performance.now() - t) / 1000;
    console.log(`search ${name}: ${count} queries per call, top-10 over ${rows}: ${((runs * count) / seconds).toFixed(0)} queries/s (through Node, copies included)`);
  }
}
await cpu.dispose();
await gpu.dispose();
console.log(failures === 0 ? 'GPU gallery checks passed' : `GPU gallery checks FAILED (${failures})`);
process.exit(failures === 0 ? 0 : 1);
