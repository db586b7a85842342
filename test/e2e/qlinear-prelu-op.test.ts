// maskface::QLinearPRelu, the custom op of int8 models (native/ort/quantized_prelu_op.h), on small
// generated models (test/fixtures/qlinear-prelu-models.py): its values against the definition, the
// channels-last form against the NCHW one, and bad models as typed errors.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { FaceRecognizer } from '../../dist/esm/index.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures');
const cpu = { cpu: { intraOpThreads: 1 } };
const slopes = [0.25, -0.5, 1.2];

/** A 112x112 RGB face whose 14x14 blocks are flat, so the model's average pooling is exact. */
function blockFace(seed: number) {
  const data = new Uint8Array(112 * 112 * 3);
  for (let y = 0; y < 112; y++) {
    for (let x = 0; x < 112; x++) {
      for (let c = 0; c < 3; c++) data[(y * 112 + x) * 3 + c] = (37 * (c * 64 + ((y / 14) | 0) * 8 + ((x / 14) | 0)) + 11 + seed * 53) % 256;
    }
  }
  return { data, width: 112, height: 112 };
}

const roundHalfEven = (v: number) => {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
const saturate = (v: number) => Math.min(255, Math.max(0, v));

/** The model's output from its definition, in float64: quantise, PReLU per channel, dequantise, L2-normalise. */
function reference(face: { data: Uint8Array }): number[] {
  const out: number[] = [];
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < 8; i++) {
      for (let j = 0; j < 8; j++) {
        const pixel = face.data[(i * 14 * 112 + j * 14) * 3 + c]!;
        const x = saturate(roundHalfEven((pixel - 128) / 128 / (2 / 255)) + 128);
        const v = (x - 128) * (2 / 255);
        const activated = v < 0 ? v * slopes[c]! : v;
        const y = saturate(roundHalfEven(activated / 0.01) + 100);
        out.push((y - 100) * 0.01);
      }
    }
  }
  const norm = Math.hypot(...out);
  return out.map((v) => v / norm);
}

t.test('QLinearPRelu computes PReLU on uint8 values, NCHW and channels last alike', async (t) => {
  await using nchw = await FaceRecognizer.load(join(fixtures, 'qlinear-prelu-nchw.onnx'), cpu);
  await using nhwc = await FaceRecognizer.load(join(fixtures, 'qlinear-prelu-nhwc.onnx'), cpu);
  const faces = [0, 1, 2].map(blockFace);
  const [a, b] = [await nchw.embedBatch(faces), await nhwc.embedBatch(faces)];
  for (let i = 0; i < faces.length; i++) {
    const got = Array.from(a.at(i).vector);
    t.same(got, Array.from(b.at(i).vector), `face ${i}: channels last gives the same values`);
    const expected = reference(faces[i]!);
    const worst = Math.max(...got.map((v, k) => Math.abs(v - expected[k]!)));
    const step = 0.01 / Math.hypot(...expected.map((v) => v)) ; // one output step, normalised (|expected| = 1)
    t.ok(worst <= step * 1.5 + 1e-6, `face ${i}: within one quantisation step of the definition (worst ${worst.toExponential(2)})`);
    t.ok(got.some((v, k) => v < 0 && expected[k]! < 0), `face ${i}: negative slopes give negative values`);
  }
});

t.test('BAD CALL - QLinearPRelu models with wrong parameters are model errors', async (t) => {
  await t.rejects(FaceRecognizer.load(join(fixtures, 'qlinear-prelu-bad-slope.onnx'), cpu), {
    code: 'ERR_MODEL_LOAD',
    message: /slope has 2 values|2 values for 3 channels|channels/,
  });
  await t.rejects(FaceRecognizer.load(join(fixtures, 'qlinear-prelu-zero-scale.onnx'), cpu), {
    code: 'ERR_MODEL_LOAD',
    message: /scales must be finite and positive/,
  });
});
