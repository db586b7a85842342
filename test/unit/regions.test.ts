import t from 'tap';
import { EmbeddingBatch, FaceEmbedding, regionClasses } from '../../dist/esm/index.js';
import { parseRegionClasses } from '../../dist/cjs/api/regions.js';
import { referenceMaskProbability, regionSize } from '../helpers/regions.js';

const model = { id: 'c'.repeat(64), dim: 2, name: 'test' };
const size = regionSize;
const plane = size * size;

/** Softmax-like probabilities with a different value in every cell and plane. */
function regionData(seed: number): Float32Array {
  const data = new Float32Array(3 * plane);
  for (let cell = 0; cell < plane; cell++) {
    const a = 1 + Math.sin(cell * 0.37 + seed);
    const b = 1 + Math.cos(cell * 0.11 - seed);
    const c = 0.5;
    const total = a + b + c;
    data[cell] = a / total;
    data[plane + cell] = b / total;
    data[2 * plane + cell] = c / total;
  }
  return data;
}

t.test('the plane order comes from maskface.regions metadata, default face,mask,background', async (t) => {
  t.same(regionClasses, ['face', 'mask', 'background']);
  t.same(parseRegionClasses(undefined), ['face', 'mask', 'background']);
  t.same(parseRegionClasses('mask, background,face'), ['mask', 'background', 'face']);
  for (const bad of ['face,mask', 'face,mask,mask', 'face,mask,background,extra', 'face,occluder,background', '']) {
    t.throws(() => parseRegionClasses(bad), { name: 'MaskFaceError', code: 'ERR_MODEL_LOAD' }, `'${bad}'`);
  }
});

t.test('visibleFace and maskMap are views of the planes the class order names', async (t) => {
  const data = regionData(1);
  for (const classes of [['face', 'mask', 'background'], ['background', 'mask', 'face'], ['mask', 'face', 'background']] as const) {
    // @ts-expect-error -- the constructor is private; JavaScript callers can still reach it
    const e = new FaceEmbedding(Float32Array.of(1, 0), model, { width: size, height: size, classes, data });
    const faceIndex = classes.indexOf('face');
    const maskIndex = classes.indexOf('mask');
    t.same(Array.from(e.visibleFace!), Array.from(data.subarray(faceIndex * plane, (faceIndex + 1) * plane)), `${classes}: face`);
    t.same(Array.from(e.maskMap!), Array.from(data.subarray(maskIndex * plane, (maskIndex + 1) * plane)), `${classes}: mask`);
    t.equal(e.visibleFace!.buffer, data.buffer, 'a view, not a copy');
    const expected = referenceMaskProbability(data.subarray(maskIndex * plane, (maskIndex + 1) * plane));
    t.ok(Math.abs(e.maskProbability! - expected) < 1e-6, `${classes}: maskProbability ${e.maskProbability} = ${expected}`);
    t.ok(e.maskProbability! >= 0 && e.maskProbability! <= 1);
  }
});

t.test('maskProbability reads only the lower face: ~1 for a worn mask, ~0 for a bare face', async (t) => {
  const masked = new Float32Array(3 * plane);
  const bare = new Float32Array(3 * plane);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      const cell = i * size + j;
      // "mask" below the nose row on the masked face; the upper face and background vary freely
      const lower = 4 * i + 1.5 >= 72;
      masked[(lower ? plane : 0) + cell] = 1;
      bare[(lower ? 0 : plane) + cell] = 1; // mask above the nose only: not counted
    }
  }
  const classes = regionClasses;
  // @ts-expect-error -- the constructor is private; JavaScript callers can still reach it
  t.equal(new FaceEmbedding(Float32Array.of(1, 0), model, { width: size, height: size, classes, data: masked }).maskProbability, 1);
  // @ts-expect-error -- the constructor is private; JavaScript callers can still reach it
  t.equal(new FaceEmbedding(Float32Array.of(1, 0), model, { width: size, height: size, classes, data: bare }).maskProbability, 0);
});

t.test('plain models have no region values; serialisation keeps the vector only', async (t) => {
  // @ts-expect-error -- the constructor is private; JavaScript callers can still reach it
  const plain = new FaceEmbedding(Float32Array.of(0.6, 0.8), model);
  t.equal(plain.visibleFace, undefined);
  t.equal(plain.maskMap, undefined);
  t.equal(plain.maskProbability, undefined);
  t.equal(EmbeddingBatch.from([plain]).maskProbabilities(), undefined);

  // @ts-expect-error -- the constructor is private; JavaScript callers can still reach it
  const withRegions = new FaceEmbedding(Float32Array.of(0.6, 0.8), model, { width: size, height: size, classes: regionClasses, data: regionData(2) });
  const json = JSON.parse(JSON.stringify(withRegions));
  t.same(Object.keys(json).sort(), ['model', 'type', 'vector'], 'no region data or getters in JSON');
  const back = FaceEmbedding.fromJSON(json);
  t.same(Array.from(back.vector), Array.from(withRegions.vector));
  t.equal(back.maskProbability, undefined);
  t.equal(FaceEmbedding.fromBytes(withRegions.toBytes(), model).regions, undefined);
});

t.test('EmbeddingBatch.maskProbabilities() gives each face its maskProbability', async (t) => {
  const count = 3;
  const regions = new Float32Array(count * 3 * plane);
  for (let i = 0; i < count; i++) regions.set(regionData(10 + i), i * 3 * plane);
  const classes = ['mask', 'face', 'background'] as const;
  // @ts-expect-error -- the constructor is private; JavaScript callers can still reach it
  const batch = new EmbeddingBatch(Float32Array.of(1, 0, 0, 1, 0.6, 0.8), model, regions, { width: size, height: size }, classes);
  const probabilities = batch.maskProbabilities()!;
  t.equal(probabilities.length, count);
  for (let i = 0; i < count; i++) {
    const face = batch.at(i);
    t.same(face.regions!.classes, classes);
    t.equal(probabilities[i], Math.fround(face.maskProbability!));
    t.ok(Math.abs(face.maskProbability! - referenceMaskProbability(regions.subarray(i * 3 * plane, i * 3 * plane + plane))) < 1e-6);
  }
});
