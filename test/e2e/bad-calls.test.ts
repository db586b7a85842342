// Bad input gets a MaskFaceError with a code, never a crash.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FaceRecognizer, MaskFaceError } from '../../dist/esm/index.js';
import { ensureModel } from '../../dist/esm/setup.js';
import { syntheticFace } from '../helpers/faces.js';

const modelPath = await ensureModel('mobilefacenet');
const face = syntheticFace(1);
const rec = await FaceRecognizer.load(modelPath, { cpu: { intraOpThreads: 1 } });
t.teardown(() => rec.dispose());

const embedCases: [string, unknown, RegExp][] = [
  ['face is not an object', 42, /Expected object for face/],
  ['data is a plain array', { ...face, data: [1, 2, 3] }, /Expected Uint8Array or Uint8ClampedArray for face\.data/],
  ['data is a Float32Array', { ...face, data: new Float32Array(112 * 112 * 3) }, /face\.data/],
  ['data is too short', { ...face, data: face.data.subarray(1) }, /face\.data/],
  ['width is zero', { ...face, width: 0 }, /integer in \[1, 32767\] for face\.width/],
  ['height is fractional', { ...face, height: 1.5 }, /face\.height/],
  ['format is unknown', { ...face, format: 'yuv' }, /one of 'rgb'.* for face\.format/],
  ['format disagrees with the data length', { ...face, format: 'rgba' }, /face\.data/],
  ['landmarks have NaN', { ...face, landmarks: [1, 2, 3, 4, 5, 6, 7, 8, 9, NaN] }, /finite number for face\.landmarks\[9\]/],
  ['landmarks have the wrong count', { ...face, landmarks: [1, 2, 3, 4] }, /5 \(x, y\) points for face\.landmarks/],
  ['landmarks are degenerate', { ...face, landmarks: new Array(10).fill(3) }, /degenerate/],
];
for (const [name, input, message] of embedCases) {
  t.test(`BAD CALL - embed: ${name}`, async (t) => {
    await t.rejects(rec.embed(input as never), { name: 'MaskFaceError', code: 'ERR_INVALID_ARGUMENT', message });
  });
}

t.test('BAD CALL - embedBatch with no faces or a bad face among good ones', async (t) => {
  await t.rejects(rec.embedBatch([]), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(rec.embedBatch([face, { ...face, width: 3 }]), { code: 'ERR_INVALID_ARGUMENT', message: /faces\[1\]\.data/ });
});

t.test('BAD CALL - load options', async (t) => {
  await t.rejects(FaceRecognizer.load(modelPath, { cpu: { intraOpThreads: 0 } }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(FaceRecognizer.load(modelPath, { provider: 'tpu' as never }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(FaceRecognizer.load(modelPath, { preprocessing: { std: [1, 2] as never } }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(FaceRecognizer.load(42 as never), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('BAD CALL - corrupt, truncated, empty and missing model files', async (t) => {
  const dir = t.testdir({});
  const bytes = (await import('node:fs')).readFileSync(modelPath);
  const truncated = join(dir, 'truncated.onnx');
  writeFileSync(truncated, bytes.subarray(0, bytes.length >> 1));
  const corrupt = Buffer.from(bytes);
  for (let i = 64; i < 4096; i += 7) corrupt[i] = corrupt[i]! ^ 0xff;
  await t.rejects(FaceRecognizer.load(truncated), { code: 'ERR_MODEL_LOAD' });
  await t.rejects(FaceRecognizer.load(corrupt), { code: 'ERR_MODEL_LOAD' });
  await t.rejects(FaceRecognizer.load(new Uint8Array(0)), { code: 'ERR_MODEL_LOAD' });
  await t.rejects(FaceRecognizer.load(new TextEncoder().encode('not a model at all')), { code: 'ERR_MODEL_LOAD' });
  await t.rejects(FaceRecognizer.load(join(dir, 'missing.onnx')), { code: 'ERR_MODEL_LOAD', message: /Cannot read model file/ });
});

t.test('EXPECTED FAILURE - a model that is not a face-embedding network', async (t) => {
  const detector = await ensureModel('ultraface-320');
  const error = await rec.embed(face).then(() => FaceRecognizer.load(detector)).then(
    () => undefined,
    (e: unknown) => e as MaskFaceError,
  );
  // UltraFace has two [1,4420,k] outputs and no [N,D] one.
  t.ok(error instanceof MaskFaceError, 'rejected');
  t.equal(error?.code, 'ERR_MODEL_LOAD');
  t.match(error?.message, /embedding/);
});

t.test('BAD CALL - disposed recognizer', async (t) => {
  const other = await FaceRecognizer.load(modelPath, { cpu: { intraOpThreads: 1 } });
  await other.dispose();
  await t.rejects(other.embed(face), { code: 'ERR_DISPOSED' });
  await t.rejects(other.embedBatch([face]), { code: 'ERR_DISPOSED' });
});

t.test('BAD CALL - durable galleries, identity search and verification', async (t) => {
  const { FaceEmbedding, Gallery, verify } = await import('../../dist/esm/index.js');
  const model = { id: 'a'.repeat(64), dim: 4, name: 'bad-calls' };
  const e = FaceEmbedding.fromVector([1, 0, 0, 0], model);
  const dir = t.testdir({ 'folder.mfg': {} });
  const cases: [string, () => unknown, string][] = [
    ['Gallery.open with no path', () => Gallery.open('', { model }), 'ERR_INVALID_ARGUMENT'],
    ['Gallery.open of a folder', () => Gallery.open(join(dir, 'folder.mfg'), { model }), 'ERR_IO'],
    ['Gallery.open with a capacity', () => Gallery.open(join(dir, 'g.mfg'), { model, capacity: 3 } as never), 'ERR_INVALID_ARGUMENT'],
    ['add with durable not a boolean', () => new Gallery({ model }).add('a', e, { durable: 'yes' as never }), 'ERR_INVALID_ARGUMENT'],
    ['add durable without a journal', () => new Gallery({ model }).add('a', e, { durable: true }), 'ERR_INVALID_ARGUMENT'],
    ['remove with options not an object', () => new Gallery({ model }).remove('a', 7 as never), 'ERR_INVALID_ARGUMENT'],
    ['flush without a journal', () => new Gallery({ model }).flush(), 'ERR_INVALID_ARGUMENT'],
    ['save without a path or a file', () => new Gallery({ model }).save(), 'ERR_INVALID_ARGUMENT'],
    ['searchIdentities with an unknown aggregate', () => new Gallery({ model }).searchIdentities(e, { aggregate: 'sum' as never }), 'ERR_INVALID_ARGUMENT'],
    ['searchIdentities with k = 0', () => new Gallery({ model }).searchIdentities(e, { k: 0 }), 'ERR_INVALID_ARGUMENT'],
    ['identify with neither threshold nor far', () => new Gallery({ model }).identify(e, {} as never), 'ERR_INVALID_ARGUMENT'],
    ['identify with both', () => new Gallery({ model }).identify(e, { threshold: 0.5, far: 1e-3 }), 'ERR_INVALID_ARGUMENT'],
    ['identify at a rate for a model without a calibration', () => new Gallery({ model }).identify(e, { far: 1e-3 }), 'ERR_INVALID_ARGUMENT'],
    ['verify of a non-embedding', () => verify(e, [1, 0, 0, 0] as never, { threshold: 0.5 }), 'ERR_INVALID_ARGUMENT'],
    ['verify with a NaN threshold', () => verify(e, e, { threshold: Number.NaN }), 'ERR_INVALID_ARGUMENT'],
  ];
  for (const [name, call, code] of cases) {
    await t.rejects(Promise.resolve().then(call), { name: 'MaskFaceError', code }, name);
  }
});
