import t from 'tap';
import { EmbeddingBatch, FaceEmbedding, MaskFaceError } from '../../dist/esm/index.js';

const model = { id: 'a'.repeat(64), dim: 4, name: 'test' };
const other = { id: 'b'.repeat(64), dim: 4 };
const unit = (...v: number[]) => {
  const n = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / n);
};

t.test('similarity is the cosine and refuses other models', async (t) => {
  const a = FaceEmbedding.fromVector(unit(1, 0, 0, 0), model);
  const b = FaceEmbedding.fromVector(unit(1, 1, 0, 0), model);
  t.ok(Math.abs(a.similarity(b) - Math.SQRT1_2) < 1e-6);
  t.equal(a.similarity(a), 1);
  t.throws(() => a.similarity(FaceEmbedding.fromVector(unit(1, 0, 0, 0), other)), { code: 'ERR_MODEL_MISMATCH' });
  t.throws(() => a.similarity({} as FaceEmbedding), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('bytes round trip in f32 exactly and in f16 closely', async (t) => {
  const a = FaceEmbedding.fromVector(unit(0.1, -0.7, 0.3, 0.2), model);
  const f32 = FaceEmbedding.fromBytes(a.toBytes(), model);
  t.same(Array.from(f32.vector), Array.from(a.vector));
  const f16 = FaceEmbedding.fromBytes(a.toBytes('f16'), model, 'f16');
  t.equal(a.toBytes('f16').length, 24 + 8, 'a 24-byte header, then 2 bytes a value');
  t.equal(a.toBytes().length, 24 + 16);
  t.same(Array.from(a.toBytes().subarray(0, 4)), [0x4d, 0x46, 0x45, 0x42], 'MFEB');
  t.ok(a.similarity(f16) > 0.9999);
  t.throws(() => FaceEmbedding.fromBytes(new Uint8Array(16), model), { code: 'ERR_INVALID_ARGUMENT' }, 'no header');
  t.throws(() => FaceEmbedding.fromBytes(a.toBytes(), { ...model, dim: 5 }), { code: 'ERR_DIMENSION_MISMATCH' });
  t.throws(() => FaceEmbedding.fromBytes(a.toBytes(), other), { code: 'ERR_MODEL_MISMATCH' });
  t.throws(() => a.toBytes('f64' as 'f32'), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('JSON round trip re-normalises and validates', async (t) => {
  const a = FaceEmbedding.fromVector(unit(3, 4, 0, 0), model);
  const back = FaceEmbedding.fromJSON(JSON.parse(JSON.stringify(a)));
  t.ok(Math.abs(back.similarity(a) - 1) < 1e-6);
  t.same(back.model, model);
  t.throws(() => FaceEmbedding.fromJSON({ type: 'other' }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => FaceEmbedding.fromJSON({ type: 'maskface.embedding', model, vector: [1, 2] }), { code: 'ERR_DIMENSION_MISMATCH' });
  t.throws(() => FaceEmbedding.fromJSON({ type: 'maskface.embedding', model, vector: [1, NaN, 0, 0] }), MaskFaceError);
});

t.test('EmbeddingBatch views rows without copying and checks models', async (t) => {
  const a = FaceEmbedding.fromVector(unit(1, 0, 0, 0), model);
  const b = FaceEmbedding.fromVector(unit(0, 1, 0, 0), model);
  const batch = EmbeddingBatch.from([a, b]);
  t.equal(batch.count, 2);
  t.equal(batch.at(1).vector.buffer, batch.data.buffer);
  t.same([...batch].map((e) => e.vector[1]), [0, 1]);
  t.throws(() => batch.at(2), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => EmbeddingBatch.from([a, FaceEmbedding.fromVector(unit(1, 0, 0, 0), other)]), { code: 'ERR_MODEL_MISMATCH' });
  t.throws(() => EmbeddingBatch.from([]), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('fromVector and fromVectors copy and normalise vectors made elsewhere, and refuse bad ones', async (t) => {
  const source = Float32Array.of(3, 4, 0, 0);
  const e = FaceEmbedding.fromVector(source, model);
  t.same(Array.from(e.vector), [0.6000000238418579, 0.800000011920929, 0, 0]);
  t.not(e.vector.buffer, source.buffer, 'copied');
  t.same(Array.from(FaceEmbedding.fromVector([0, 0, 2, 0], model).vector), [0, 0, 1, 0], 'an array of numbers');
  t.throws(() => FaceEmbedding.fromVector([0, 0, 0, 0], model), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => FaceEmbedding.fromVector([1, NaN, 0, 0], model), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => FaceEmbedding.fromVector([1, 0, 0], model), { code: 'ERR_DIMENSION_MISMATCH' });
  t.throws(() => FaceEmbedding.fromVector('1,0,0,0' as never, model), { code: 'ERR_INVALID_ARGUMENT' });
  const batch = EmbeddingBatch.fromVectors(Float32Array.of(3, 4, 0, 0, 0, 0, 0, 5), model);
  t.equal(batch.count, 2);
  t.same(Array.from(batch.at(1).vector), [0, 0, 0, 1]);
  t.equal(batch.timing, undefined, 'no run made it');
  t.throws(() => EmbeddingBatch.fromVectors(Float32Array.of(1, 0, 0, 0, 0, 0, 0, 0), model), { code: 'ERR_INVALID_ARGUMENT', message: /row 1/ });
  t.throws(() => EmbeddingBatch.fromVectors(Float32Array.of(1, 0, 0), model), { code: 'ERR_DIMENSION_MISMATCH' });
});
