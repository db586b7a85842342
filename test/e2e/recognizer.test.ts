import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import t from 'tap';
import { EmbeddingBatch, FaceRecognizer, MaskFaceError } from '../../dist/esm/index.js';
import { ensureModel } from '../../dist/esm/setup.js';
import { syntheticFace } from '../helpers/faces.js';

const modelPath = await ensureModel('mobilefacenet');

t.test('loads a catalogue model with its preprocessing from metadata', async (t) => {
  await using rec = await FaceRecognizer.load('mobilefacenet');
  t.equal(rec.model.dim, 512);
  t.equal(rec.model.name, 'mobilefacenet');
  t.equal(rec.model.id, createHash('sha256').update(readFileSync(modelPath)).digest('hex'), 'fingerprint is the file sha256');
  t.equal(rec.provider, 'cpu');
  t.same(rec.preprocessing.mean, [127, 127, 127]);
  t.same(rec.preprocessing.std, [128, 128, 128]);
  t.equal(rec.preprocessing.colorOrder, 'rgb');
  t.same(rec.info.inputShape, [null, 3, 112, 112], 'batch is symbolic');
  t.equal(rec.info.regionsOutput, null);
});

t.test('options override metadata; a path and bytes load the same model', async (t) => {
  await using fromPath = await FaceRecognizer.load(modelPath, { preprocessing: { mean: 127.5, std: [127.5, 127.5, 127.5], colorOrder: 'bgr' } });
  t.same(fromPath.preprocessing.mean, [127.5, 127.5, 127.5]);
  t.equal(fromPath.preprocessing.colorOrder, 'bgr');
  await using fromBytes = await FaceRecognizer.load(readFileSync(modelPath), { cpu: { intraOpThreads: 1 } });
  t.equal(fromBytes.model.id, fromPath.model.id);
});

t.test('embeddings are unit length, deterministic, and a batch equals single runs', async (t) => {
  await using rec = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 1 } });
  const faces = [0, 1, 2, 3].map((seed) => syntheticFace(seed));
  const batch = await rec.embedBatch(faces);
  t.equal(batch.count, 4);
  for (let i = 0; i < faces.length; i++) {
    const single = await rec.embed(faces[i]!);
    const norm = Math.hypot(...single.vector);
    t.ok(Math.abs(norm - 1) < 1e-5, `face ${i} is unit length`);
    t.ok(single.similarity(batch.at(i)) > 0.99999, `face ${i}: batched equals single`);
  }
  t.ok(batch.at(0).similarity(batch.at(1)) < 0.99, 'different faces give different embeddings');
  const timing = batch.timing!;
  t.ok(timing.inferenceMs > 0 && timing.preprocessMs >= 0 && timing.postprocessMs >= 0, 'the batch carries the timing of its run');
  // Concurrent runs each keep their own timing (there is no shared "last" timing to race on).
  const [one, eight] = await Promise.all([rec.embedBatch(faces.slice(0, 1)), rec.embedBatch([...faces, ...faces])]);
  t.not(one.timing, eight.timing);
  t.ok(one.timing!.inferenceMs > 0 && eight.timing!.inferenceMs > 0);
  t.equal(EmbeddingBatch.from([batch.at(0)]).timing, undefined, 'a batch built from embeddings has no run timing');
});

t.test('a face of another size is resized; landmarks align it onto the template', async (t) => {
  await using rec = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 1 } });
  t.equal((await rec.embed(syntheticFace(5, 200, 180))).dim, 512);
  // Landmarks at the template seen through a 2x resize (src = 2 dst + 0.5) give the resize's map.
  const square = syntheticFace(6, 224, 224);
  const viaResize = await rec.embed(square);
  const viaLandmarks = await rec.embed({ ...square, landmarks: rec.preprocessing.template.map((v) => 2 * v + 0.5) });
  t.ok(viaResize.similarity(viaLandmarks) > 0.99999, 'landmark alignment matches the equivalent resize');
});

t.test('the event loop stays responsive during an embedBatch of 8', async (t) => {
  await using rec = await FaceRecognizer.load('mobilefacenet');
  const faces = Array.from({ length: 8 }, (_, i) => syntheticFace(i));
  await rec.embedBatch(faces); // warm-up
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  const started = performance.now();
  await rec.embedBatch(faces);
  const elapsed = performance.now() - started;
  histogram.disable();
  const maxDelayMs = histogram.max / 1e6;
  t.comment(`embedBatch(8) took ${elapsed.toFixed(1)} ms; max event-loop delay ${maxDelayMs.toFixed(1)} ms`);
  t.ok(maxDelayMs < 50, `max event-loop delay ${maxDelayMs.toFixed(1)} ms < 50 ms`);
});

t.test('concurrent callers all get their own results', async (t) => {
  await using rec = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 1 }, maxConcurrency: 2 });
  const faces = Array.from({ length: 6 }, (_, i) => syntheticFace(10 + i));
  const expected = await rec.embedBatch(faces);
  const results = await Promise.all(faces.map((face) => rec.embed(face)));
  results.forEach((embedding, i) => t.ok(embedding.similarity(expected.at(i)) > 0.99999, `caller ${i}`));
});

t.test('dispose waits for runs in flight, then rejects new calls', async (t) => {
  const rec = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 1 } });
  const pending = rec.embed(syntheticFace(1));
  const disposed = rec.dispose();
  t.equal(rec.disposed, true);
  t.equal((await pending).dim, 512, 'the run in flight completes');
  await disposed;
  await rec.dispose(); // idempotent
  await t.rejects(rec.embed(syntheticFace(1)), { name: 'MaskFaceError', code: 'ERR_DISPOSED' });
});

t.test('an aborted signal rejects with ERR_ABORTED', async (t) => {
  await using rec = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 1 } });
  const controller = new AbortController();
  controller.abort();
  await t.rejects(rec.embed(syntheticFace(1), { signal: controller.signal }), { code: 'ERR_ABORTED' });
  const late = new AbortController();
  const pending = rec.embed(syntheticFace(1), { signal: late.signal });
  late.abort();
  await t.rejects(pending, MaskFaceError);
});

t.test('cpu.spinning: the same embeddings, and threads that stop spinning when a run returns', async (t) => {
  const faces = [0, 1, 2].map((seed) => syntheticFace(seed));
  await using sleeping = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 2 } });
  await using spinning = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 2, spinning: true } });
  const [a, b] = [await sleeping.embedBatch(faces), await spinning.embedBatch(faces)];
  for (let i = 0; i < faces.length; i++) t.ok(a.at(i).similarity(b.at(i)) > 0.99999, `face ${i}: same embedding`);
  for (let i = 0; i < 20; i++) await spinning.embedBatch(faces.slice(0, 1));
  // Left spinning, a pool thread burns about 25 ms of CPU in the 100 ms after the last run.
  const before = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const used = process.cpuUsage(before);
  const usedMs = (used.user + used.system) / 1000;
  t.ok(usedMs < 12, `CPU time in the 100 ms after the last run: ${usedMs.toFixed(1)} ms`);
  await t.rejects(FaceRecognizer.load('mobilefacenet', { cpu: { spinning: 'yes' as unknown as boolean } }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /options\.cpu\.spinning/,
  });
});
