// Region maps of the bundled masked-face (CAL) model, read through the public API. Its weights may
// be provisional: the checks are about shapes, plane order and arithmetic, not about quality.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { FaceRecognizer } from '../../dist/esm/index.js';
import { ensureModel } from '../../dist/esm/setup.js';
import { setMetadata } from '../../dist/cjs/runtime/onnx-proto.js';
import { syntheticFace } from '../helpers/faces.js';
import { referenceMaskProbability, regionSize } from '../helpers/regions.js';

const size = regionSize;
const plane = size * size;
const faces = [0, 1, 2].map((seed) => syntheticFace(seed));

t.test('each face carries 3x28x28 class probabilities and their summaries', async (t) => {
  await using rec = await FaceRecognizer.load('maskface-mbf-cal', { cpu: { intraOpThreads: 1 } });
  t.equal(rec.info.metadata['maskface.regions'], 'face,mask,background');
  const batch = await rec.embedBatch(faces);
  t.same(batch.regionSize, { width: size, height: size });
  t.equal(batch.regions!.length, faces.length * 3 * plane);
  const probabilities = batch.maskProbabilities()!;
  t.equal(probabilities.length, faces.length);
  for (let i = 0; i < faces.length; i++) {
    const e = batch.at(i);
    const raw = batch.regions!.subarray(i * 3 * plane, (i + 1) * 3 * plane);
    t.same([e.regions!.width, e.regions!.height, e.regions!.data.length], [size, size, 3 * plane]);
    t.same(e.regions!.classes, ['face', 'mask', 'background']);
    t.same(Array.from(e.visibleFace!), Array.from(raw.subarray(0, plane)), `face ${i}: visibleFace is channel face`);
    t.same(Array.from(e.maskMap!), Array.from(raw.subarray(plane, 2 * plane)), `face ${i}: maskMap is channel mask`);
    let worstSum = 0;
    for (let cell = 0; cell < plane; cell++) {
      worstSum = Math.max(worstSum, Math.abs(raw[cell]! + raw[plane + cell]! + raw[2 * plane + cell]! - 1));
    }
    t.ok(worstSum < 1e-4, `face ${i}: the 3 classes sum to 1 in every cell (worst ${worstSum})`);
    const p = e.maskProbability!;
    t.ok(p >= 0 && p <= 1, `face ${i}: maskProbability ${p} in [0, 1]`);
    t.ok(Math.abs(p - referenceMaskProbability(e.maskMap!)) < 1e-6, `face ${i}: equals the reference`);
    t.equal(probabilities[i], Math.fround(p), `face ${i}: batch.maskProbabilities()`);
  }
  const single = await rec.embed(faces[0]!);
  t.ok(Math.abs(single.maskProbability! - batch.at(0).maskProbability!) < 1e-5, 'embed gives what embedBatch gives');
});

t.test('the plane order written in the model metadata is honoured', async (t) => {
  // The same network, with its planes declared in another order: the runtime must follow the label.
  const bytes = readFileSync(await ensureModel('maskface-mbf-cal'));
  await using declared = await FaceRecognizer.load(bytes, { cpu: { intraOpThreads: 1 } });
  await using relabelled = await FaceRecognizer.load(setMetadata(bytes, { 'maskface.regions': 'mask,background,face' }), {
    cpu: { intraOpThreads: 1 },
  });
  const a = await declared.embed(faces[1]!);
  const b = await relabelled.embed(faces[1]!);
  t.same(b.regions!.classes, ['mask', 'background', 'face']);
  t.same(Array.from(b.maskMap!), Array.from(a.visibleFace!), 'plane 0 is read as mask');
  t.same(Array.from(b.visibleFace!), Array.from(a.regions!.data.subarray(2 * plane)), 'plane 2 is read as face');
  t.ok(Math.abs(b.maskProbability! - referenceMaskProbability(a.visibleFace!)) < 1e-6);

  await t.rejects(FaceRecognizer.load(setMetadata(bytes, { 'maskface.regions': 'face,mask' })), {
    name: 'MaskFaceError',
    code: 'ERR_MODEL_LOAD',
    message: /maskface\.regions='face,mask' is not an order of face, mask, background/,
  });
});

t.test('a plain model gives no region values', async (t) => {
  await using rec = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 1 } });
  const batch = await rec.embedBatch(faces.slice(0, 2));
  t.equal(batch.maskProbabilities(), undefined);
  const e = batch.at(0);
  t.equal(e.regions, undefined);
  t.equal(e.visibleFace, undefined);
  t.equal(e.maskMap, undefined);
  t.equal(e.maskProbability, undefined);
});
