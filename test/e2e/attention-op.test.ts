// The maskface::AttentionMask custom op (native/ort/attention_op.cc), which the runtime registers on
// every session. Fixtures (test/fixtures/README.md): the shipped model exported a second time with
// fused attention, and small hand-built models around one AttentionMask node.
import { join } from 'node:path';
import t from 'tap';
import { FaceRecognizer, faceTensor } from '../../dist/esm/index.js';
import { cosine, missingData, repoRoot } from '../helpers/data.js';
import { realFaces } from '../helpers/real-faces.js';
import { syntheticFace } from '../helpers/faces.js';

const fixtures = join(repoRoot, 'test', 'fixtures');
const shippedModel = join(repoRoot, 'models', 'maskface-mbf-cal.onnx');
const fusedModel = join(fixtures, 'maskface-mbf-cal-fused.onnx');
const cpu = { cpu: { intraOpThreads: 1 } };

const minCosine = 0.9999;
const maxRegionDifference = 1e-4;

const skip = missingData('rwmfd_part1') || missingData('lfw_aligned_100pair');

t.test('the fused export of the shipped model embeds real faces as the shipped model does', { skip }, async (t) => {
  const faces = await realFaces(8);
  t.ok(faces.length >= 12, `${faces.length} faces (at least 4 masked ones found by the detector)`);
  await using shipped = await FaceRecognizer.load(shippedModel, cpu);
  await using fused = await FaceRecognizer.load(fusedModel, cpu);
  t.equal(fused.info.regionsOutput, 'regions', 'the fused model has its regions output');
  const expected = await shipped.embedBatch(faces);
  const got = await fused.embedBatch(faces);
  t.same(got.regionSize, expected.regionSize, 'same region map size');

  let worstCosine = 1;
  let worstRegion = 0;
  let worstMaskProbability = 0;
  for (let i = 0; i < faces.length; i++) {
    worstCosine = Math.min(worstCosine, cosine(got.at(i).vector, expected.at(i).vector));
    const a = got.at(i).regions!.data;
    const b = expected.at(i).regions!.data;
    for (let j = 0; j < b.length; j++) worstRegion = Math.max(worstRegion, Math.abs(a[j]! - b[j]!));
    worstMaskProbability = Math.max(worstMaskProbability, Math.abs(got.at(i).maskProbability! - expected.at(i).maskProbability!));
  }
  const maskProbabilities = [...expected].map((e) => e.maskProbability!);
  t.ok(Math.max(...maskProbabilities) > 0.5, 'some faces are seen as masked, so the attention really masks');
  t.ok(worstCosine > minCosine, `embeddings agree: worst cosine ${worstCosine.toFixed(7)} > ${minCosine}`);
  t.ok(worstRegion <= maxRegionDifference, `region maps agree: worst difference ${worstRegion.toExponential(2)}`);
  t.ok(worstMaskProbability <= maxRegionDifference, `maskProbability agrees: worst difference ${worstMaskProbability.toExponential(2)}`);
});

t.test('AttentionMask computes features * (1 - P[mask]) (gating not_mask)', async (t) => {
  // attention-mask-tiny.onnx: the input is both the features and the logits; the embedding is the
  // per-channel mean of the masked features.
  await using rec = await FaceRecognizer.load(join(fixtures, 'attention-mask-tiny.onnx'), cpu);
  const face = syntheticFace(3);
  const x = faceTensor(face, rec.preprocessing);
  const plane = 112 * 112;
  const expected = [0, 0, 0];
  for (let p = 0; p < plane; p++) {
    const [face, mask, background] = [x[p]!, x[plane + p]!, x[2 * plane + p]!];
    const top = Math.max(face, mask, background);
    const [eFace, eMask, eBackground] = [face, mask, background].map((v) => Math.exp(v - top)) as [number, number, number];
    const attention = (eFace + eBackground) / (eFace + eMask + eBackground);
    for (let c = 0; c < 3; c++) expected[c]! += (x[c * plane + p]! * attention) / plane;
  }
  const c = cosine((await rec.embed(face)).vector, expected);
  t.ok(c >= 0.99999, `cosine to the reference ${c.toFixed(7)}`);
});

t.test('EXPECTED FAILURE - an AttentionMask node with gating mouth fails to load', async (t) => {
  await t.rejects(FaceRecognizer.load(join(fixtures, 'attention-mask-bad-gating.onnx'), cpu), {
    name: 'MaskFaceError',
    code: 'ERR_MODEL_LOAD',
    message: /AttentionMask node 'attention': gating is 'mouth'; expected 'face' or 'not_mask'/,
  });
});

t.test('EXPECTED FAILURE - an AttentionMask node with 2-channel logits fails its load-time self-check run', async (t) => {
  await t.rejects(FaceRecognizer.load(join(fixtures, 'attention-mask-two-channel-logits.onnx'), cpu), {
    name: 'MaskFaceError',
    code: 'ERR_MODEL_LOAD',
    message: /self-check run.*AttentionMask node 'attention': expected features \[N,C,H,W\] and logits \[N,3,H,W\].*got features \[2,3,112,112\] and logits \[2,2,112,112\]/,
  });
});
