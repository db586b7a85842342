// maskface-mbf-cal-fp16, the float16 variant of the default model made for the CUDA provider
// (training/maskface_train/fp16.py). Bundled and checked like the default; here it runs on the
// CPU, where ONNX Runtime computes most ops in float32 from the float16 weights, so this checks the
// converted weights and graph (training/docs/fp16_agreement.json also emulates float16 rounding).
import t from 'tap';
import { FaceRecognizer, Gallery, modelCatalogue } from '../../dist/esm/index.js';
import { ensureModel } from '../../dist/esm/setup.js';
import { cosine, missingData } from '../helpers/data.js';
import { realFaces } from '../helpers/real-faces.js';

const cpu = { cpu: { intraOpThreads: 1 } };
const skip = missingData('rwmfd_part1') || missingData('lfw_aligned_100pair');

t.test('the float16 variant is bundled and verified, never downloaded', async (t) => {
  t.ok('maskface-mbf-cal-fp16' in modelCatalogue);
  t.match(await ensureModel('maskface-mbf-cal-fp16'), /models\/maskface-mbf-cal-fp16\.onnx$/);
});

t.test('float16 embeddings and region maps agree with the float32 model on real faces', { skip }, async (t) => {
  const faces = await realFaces(8);
  await using fp32 = await FaceRecognizer.load('maskface-mbf-cal', cpu);
  await using fp16 = await FaceRecognizer.load('maskface-mbf-cal-fp16', cpu);
  t.equal(fp16.info.metadata['maskface.precision'], 'fp16');
  t.same(fp16.preprocessing, fp32.preprocessing, 'same preprocessing from the metadata');
  const a = await fp32.embedBatch(faces);
  const b = await fp16.embedBatch(faces);
  let worstCosine = 1;
  let worstRegion = 0;
  for (let i = 0; i < faces.length; i++) {
    worstCosine = Math.min(worstCosine, cosine(a.at(i).vector, b.at(i).vector));
    const ra = a.at(i).regions!.data;
    const rb = b.at(i).regions!.data;
    for (let j = 0; j < ra.length; j++) worstRegion = Math.max(worstRegion, Math.abs(ra[j]! - rb[j]!));
  }
  t.ok(worstCosine > 0.9995, `worst cosine ${worstCosine.toFixed(6)} over ${faces.length} faces`);
  t.ok(worstRegion < 0.02, `worst region probability difference ${worstRegion.toExponential(2)}`);

  // Different files, different fingerprints: a gallery of one refuses the other's embeddings.
  await using gallery = new Gallery({ model: fp32.model });
  // Both carry the name maskface-mbf-cal in their metadata: the message tells them apart by sha256.
  t.throws(() => gallery.add('x', b.at(0)), {
    code: 'ERR_MODEL_MISMATCH',
    message: new RegExp(`model maskface-mbf-cal \\(sha256 ${fp16.model.id.slice(0, 12)}, 512-d\\) but model maskface-mbf-cal \\(sha256 ${fp32.model.id.slice(0, 12)}`),
  });
});
