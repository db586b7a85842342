// maskface-mbf-cal-int8, the int8 variant of the default model (training/maskface_train/quantize.py),
// against the float model on real faces. Its accuracy on rmfrd 'val' is in
// training/docs/int8_measure.json and the model card (not asserted here).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FaceRecognizer, modelCatalogue } from '../../dist/esm/index.js';
import { ensureModel } from '../../dist/esm/setup.js';
import { cosine, missingData, repoRoot } from '../helpers/data.js';
import { realFaces } from '../helpers/real-faces.js';

const cpu = { cpu: { intraOpThreads: 1 } };

t.test('the int8 model is bundled, verified and picked for the CPU', async (t) => {
  t.ok('maskface-mbf-cal-int8' in modelCatalogue);
  const path = await ensureModel('maskface-mbf-cal-int8');
  t.match(path, /models\/maskface-mbf-cal-int8\.onnx$/);
  const sidecar = JSON.parse(readFileSync(join(repoRoot, 'models', 'maskface-mbf-cal-int8.json'), 'utf8'));
  const bytes = readFileSync(path);
  t.equal(sidecar.sha256, createHash('sha256').update(bytes).digest('hex'));
  t.equal(sidecar.bytes, bytes.length);
  await using int8 = await FaceRecognizer.load('maskface-mbf-cal-int8', cpu);
  t.equal(int8.provider, 'cpu');
  t.equal(int8.info.metadata['maskface.precision'], 'int8');
  // By its metadata, not its name: the same file loaded by path under 'auto'.
  await using byPath = await FaceRecognizer.load(path, { cpu: { intraOpThreads: 1 } });
  t.equal(byPath.provider, 'cpu');
  t.match(byPath.providerReason, /int8 model, which runs on the CPU only/);
});

t.test('BAD CALL - the int8 model on a GPU provider is refused before any session is made', async (t) => {
  for (const provider of ['cuda', 'tensorrt'] as const) {
    await t.rejects(FaceRecognizer.load('maskface-mbf-cal-int8', { provider }), {
      code: 'ERR_PROVIDER_UNAVAILABLE',
      message: new RegExp(`int8 model for the CPU; it does not run on ${provider}`),
    });
  }
});

t.test('int8 embeddings and mask probabilities follow the float model on real faces', { skip: missingData('rwmfd_part1') || missingData('lfw_aligned_100pair') }, async (t) => {
  const faces = await realFaces(8);
  await using fp32 = await FaceRecognizer.load('maskface-mbf-cal', cpu);
  await using int8 = await FaceRecognizer.load('maskface-mbf-cal-int8', cpu);
  const [a, b] = [await fp32.embedBatch(faces), await int8.embedBatch(faces)];
  const cosines = faces.map((_, i) => cosine(a.at(i).vector, b.at(i).vector));
  const mean = cosines.reduce((x, y) => x + y, 0) / cosines.length;
  // Measured on 2,850 rmfrd 'val' crops: mean 0.989, worst 0.905 (training/docs/int8_measure.json).
  t.ok(mean > 0.97, `mean cosine to the float model ${mean.toFixed(4)} over ${faces.length} faces`);
  t.ok(Math.min(...cosines) > 0.85, `worst cosine ${Math.min(...cosines).toFixed(4)}`);
  t.ok(Math.max(...cosines) < 0.99999, 'the int8 model computes something else than the float one');
  const pa = a.maskProbabilities()!;
  const pb = b.maskProbabilities()!;
  let agree = 0;
  let worst = 0;
  for (let i = 0; i < faces.length; i++) {
    agree += Number(pa[i]! >= 0.5 === pb[i]! >= 0.5);
    worst = Math.max(worst, Math.abs(pa[i]! - pb[i]!));
  }
  t.ok(worst < 0.1, `worst maskProbability difference ${worst.toFixed(4)}`);
  t.ok(agree >= faces.length - 1, `masked/bare decision agrees on ${agree} of ${faces.length} faces`);
});
