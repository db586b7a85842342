// Recognition on real faces: LFW pairs, landmarks from fr_landmark.onnx (test/helpers/detect.ts,
// run by onnxruntime-node in another process), alignment and embedding by maskface.
import t from 'tap';
import { FaceRecognizer } from '../../dist/esm/index.js';
import { auc, fivePointsFrom68, missingData, readJpegRgb, readPairs } from '../helpers/data.js';
import { landmarks68 } from '../helpers/detect.js';

const skip = missingData('lfw_aligned_100pair');

t.test('genuine LFW pairs score above impostor pairs (AUC >= 0.9)', { skip }, async (t) => {
  const pairs = readPairs();
  const paths = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
  const images = paths.map(readJpegRgb);

  // 68 landmarks from the whole crop resized to the landmark model's 64x64 grey input.
  const landmarks = (await landmarks68(images)).map(fivePointsFrom68);

  await using rec = await FaceRecognizer.load('mobilefacenet');
  const aligned = images.map((image, i) => ({
    ...image,
    landmarks: landmarks[i]!,
  }));
  const embeddings = new Map<string, Awaited<ReturnType<typeof rec.embed>>>();
  const batch = await rec.embedBatch(aligned);
  paths.forEach((path, i) => embeddings.set(path, batch.at(i)));
  const plain = await rec.embedBatch(images);

  const genuine: number[] = [];
  const impostor: number[] = [];
  const genuinePlain: number[] = [];
  const impostorPlain: number[] = [];
  for (const pair of pairs) {
    (pair.same ? genuine : impostor).push(embeddings.get(pair.a)!.similarity(embeddings.get(pair.b)!));
    const a = plain.at(paths.indexOf(pair.a));
    const b = plain.at(paths.indexOf(pair.b));
    (pair.same ? genuinePlain : impostorPlain).push(a.similarity(b));
  }
  const aligned5 = auc(genuine, impostor);
  t.comment(`LFW-100: ${genuine.length} genuine, ${impostor.length} impostor pairs`);
  t.comment(`AUC aligned with 5 landmarks: ${aligned5.toFixed(4)}; crops resized without landmarks: ${auc(genuinePlain, impostorPlain).toFixed(4)}`);
  t.ok(aligned5 >= 0.9, `AUC ${aligned5.toFixed(4)} >= 0.9`);
});
