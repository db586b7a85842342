// The addon in worker threads: each thread gets its own instance data; a thread that ends (or
// is terminated mid-run) releases its sessions and galleries through the cleanup hook.
import { execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { FaceRecognizer } from '../../dist/esm/index.js';
import { repoRoot } from '../helpers/data.js';
import { syntheticFace } from '../helpers/faces.js';

const workerSource = `
  const { parentPort, workerData } = require('node:worker_threads');
  const m = require(workerData.root);
  (async () => {
    const rec = await m.FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 1 } });
    const gallery = new m.Gallery({ model: rec.model });
    const embedding = await rec.embed(workerData.face);
    gallery.add('self', embedding);
    const [hit] = await gallery.search(embedding, { k: 1 });
    parentPort.postMessage({ vector: embedding.vector, hit });
    if (workerData.leak) {
      rec.embed(workerData.face);   // left in flight; the thread is terminated under it
      gallery.search(embedding);
      parentPort.postMessage('running');
      setInterval(() => {}, 1000);
    }
  })().catch((e) => parentPort.postMessage({ error: e.message, code: e.code }));
`;

function startWorker(face: ReturnType<typeof syntheticFace>, leak: boolean) {
  return new Worker(workerSource, { eval: true, workerData: { root: repoRoot, face, leak } });
}

t.test('worker threads embed and search concurrently with the main thread', async (t) => {
  await using rec = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 1 } });
  const faces = [syntheticFace(21), syntheticFace(22)];
  const expected = await rec.embedBatch(faces);
  const results = await Promise.all(
    faces.map(
      (face) =>
        new Promise<{ vector: Float32Array; hit: { id: string; score: number } }>((resolve, reject) => {
          const worker = startWorker(face, false);
          worker.once('message', (message) => {
            if (message.error) reject(new Error(message.error));
            else resolve(message);
            void worker.terminate();
          });
          worker.once('error', reject);
        }),
    ),
  );
  results.forEach((result, i) => {
    t.equal(result.hit.id, 'self');
    t.ok(expected.at(i).vector.every((v, j) => Math.abs(v - result.vector[j]!) < 1e-5), `worker ${i} embedding equals the main thread's`);
  });
});

t.test('terminating a worker with runs in flight does not crash the process', async (t) => {
  const worker = startWorker(syntheticFace(23), true);
  await new Promise<void>((resolve, reject) => {
    worker.on('message', (message) => {
      if (message === 'running') resolve();
      else if (message.error) reject(new Error(message.error));
    });
    worker.once('error', reject);
  });
  const code = await worker.terminate();
  t.equal(code, 1, 'terminated');
  // The main thread still works afterwards.
  await using rec = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 1 } });
  t.equal((await rec.embed(syntheticFace(24))).dim, 512);
});

t.test('worker threads that load the default model at the same moment all succeed', async (t) => {
  // ONNX Runtime registers the maskface op domain in a process-wide registry, the first time a
  // session uses it, without a lock: in a fresh process, sessions created together on several
  // threads used to fail now and then with "the domain is already exist" (the addon now
  // serialises their creation). So: 10 fresh processes, each loading on 4 threads at once.
  const source = `
    const { Worker } = require('node:worker_threads');
    const body = \`
      const { parentPort, workerData } = require('node:worker_threads');
      require(workerData.root).FaceRecognizer.load(undefined, { cpu: { intraOpThreads: 1 } })
        .then((rec) => rec.dispose().then(() => parentPort.postMessage('loaded')), (e) => parentPort.postMessage(e.message));
    \`;
    Promise.all(Array.from({ length: 4 }, () => new Promise((resolve) => {
      const worker = new Worker(body, { eval: true, workerData: { root: ${JSON.stringify(repoRoot)} } });
      worker.once('message', (m) => worker.terminate().then(() => resolve(m)));
    }))).then((results) => console.log(JSON.stringify(results)));
  `;
  const failures: string[] = [];
  for (let run = 0; run < 10; run++) {
    const output = execFileSync(process.execPath, ['-e', source], { encoding: 'utf8' });
    failures.push(...(JSON.parse(output) as string[]).filter((o) => o !== 'loaded'));
  }
  t.same(failures, [], '40 loads, 4 threads at once in each of 10 fresh processes: every one loaded');
});
