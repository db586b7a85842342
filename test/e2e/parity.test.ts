// The addon against onnxruntime-node (1.30, its own JS binding, run in another process) on the
// same model and the same input tensors.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FaceRecognizer, faceTensor } from '../../dist/esm/index.js';
import { ensureModel, sourceModelPath } from '../../dist/esm/setup.js';
import { cosine, dataDir, missingData, ortReference, readJpegRgb } from '../helpers/data.js';
import { syntheticFace } from '../helpers/faces.js';

const modelPath = await ensureModel('mobilefacenet');
const skip = missingData('lfw_aligned_100pair');

function faces() {
  if (skip) return [0, 1, 2, 3, 4, 5].map((seed) => syntheticFace(seed));
  const labels = readFileSync(join(dataDir, 'lfw_aligned_100pair', 'labels.csv'), 'utf8').split('\n').slice(1, 7);
  return labels.map((line) => readJpegRgb(join(dataDir, 'lfw_aligned_100pair', line.split(',')[0]!)));
}

t.test('embeddings equal onnxruntime-node on the same model and input (cosine >= 0.99999)', async (t) => {
  if (skip) t.comment(`${skip}: using generated images`);
  await using rec = await FaceRecognizer.load(modelPath, { cpu: { intraOpThreads: 1 } });
  const images = faces();
  const { mean, std, colorOrder } = rec.preprocessing;
  const tensors = new Float32Array(images.length * 3 * 112 * 112);
  images.forEach((image, i) => tensors.set(faceTensor(image, { mean, std, colorOrder }), i * 3 * 112 * 112));

  const batch = await rec.embedBatch(images);
  for (const [label, model] of [
    ['rewritten model (symbolic batch)', modelPath],
    ['model as published (batch of 1)', sourceModelPath('mobilefacenet')],
  ] as const) {
    const reference = ortReference(model, tensors, [1, 3, 112, 112]);
    for (let i = 0; i < images.length; i++) {
      const c = cosine(batch.at(i).vector, reference.subarray(i * 512, (i + 1) * 512));
      t.ok(c >= 0.99999, `${label}, face ${i}: cosine ${c.toFixed(7)}`);
    }
  }
});
