// Flip test-time augmentation (`flip: true`): the embedding of a face merged with its mirror
// image's, in embed, embedBatch and embedFaces; region maps stay the face's own.
import { join } from 'node:path';
import t from 'tap';
import { FaceDetector, FaceRecognizer, MaskFaceError } from '../../dist/esm/index.js';
import { dataDir, missingData, readPairs, readJpegRgb } from '../helpers/data.js';
import { syntheticFace } from '../helpers/faces.js';

type Face = { data: Uint8Array; width: number; height: number };

function mirrored(face: Face): Face {
  const data = new Uint8Array(face.data.length);
  for (let y = 0; y < face.height; y++) {
    for (let x = 0; x < face.width; x++) {
      const from = 3 * (y * face.width + x);
      const to = 3 * (y * face.width + (face.width - 1 - x));
      data.set(face.data.subarray(from, from + 3), to);
    }
  }
  return { data, width: face.width, height: face.height };
}

function unitSum(a: Float32Array, b: Float32Array): Float32Array {
  const sum = a.map((v, i) => v + b[i]!);
  const norm = Math.hypot(...sum);
  return sum.map((v) => v / norm);
}

function cosine(a: Float32Array, b: Float32Array): number {
  return a.reduce((s, v, i) => s + v * b[i]!, 0);
}

function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => (error instanceof MaskFaceError ? error.code : String(error)),
  );
}

t.test('embed and embedBatch: the unit sum of the face and its mirror image', async (t) => {
  await using recognizer = await FaceRecognizer.load(undefined, { cpu: { intraOpThreads: 1 } });
  const real = missingData('lfw_aligned_100pair') ? [] : readPairs().slice(0, 2).map((p) => readJpegRgb(p.a));
  const faces: Face[] = [syntheticFace(1), syntheticFace(2), ...real];
  const plain = await recognizer.embedBatch(faces);
  const mirrors = await recognizer.embedBatch(faces.map(mirrored));
  const flipped = await recognizer.embedBatch(faces, { flip: true });
  for (let i = 0; i < faces.length; i++) {
    const expected = unitSum(plain.at(i).vector, mirrors.at(i).vector);
    const got = flipped.at(i);
    t.ok(cosine(got.vector, expected) > 0.99999, `face ${i}: unit(e(face) + e(mirror)) (cos ${cosine(got.vector, expected).toFixed(7)})`);
    t.ok(Math.abs(Math.hypot(...got.vector) - 1) < 1e-5, `face ${i}: unit length`);
    t.ok(cosine(got.vector, plain.at(i).vector) < 0.99999, `face ${i}: not the plain embedding`);
    t.ok(Math.abs(got.maskProbability! - plain.at(i).maskProbability!) < 1e-5, `face ${i}: maskProbability is the face's own`);
  }
  const single = await recognizer.embed(faces[0]!, { flip: true });
  t.ok(single.similarity(flipped.at(0)) > 0.99999, 'single equals batched');
  const ofMirror = await recognizer.embed(mirrored(faces[0]!), { flip: true });
  t.ok(ofMirror.similarity(single) > 0.99999, 'a face and its mirror image give the same flipped embedding');
  t.ok(flipped.at(0).regions!.data.every((v, i) => Math.abs(v - plain.at(0).regions!.data[i]!) < 1e-5), 'region maps are the face’s own');
});

t.test('bad flip values are typed errors', async (t) => {
  await using recognizer = await FaceRecognizer.load(undefined, { cpu: { intraOpThreads: 1 } });
  await using detector = await FaceDetector.load();
  for (const flip of [1, 'yes', 0]) {
    t.equal(await codeOf(recognizer.embed(syntheticFace(1), { flip } as never)), 'ERR_INVALID_ARGUMENT', `embed flip ${String(flip)}`);
    t.equal(await codeOf(recognizer.embedFaces(syntheticFace(1), { detector, flip } as never)), 'ERR_INVALID_ARGUMENT', `embedFaces flip ${String(flip)}`);
  }
});

t.test('embedFaces: the same faces and alignment, each embedding merged with its mirror', { skip: missingData('deepface_testset') || missingData('rwmfd_part1') }, async (t) => {
  await using recognizer = await FaceRecognizer.load(undefined, { cpu: { intraOpThreads: 1 } });
  await using detector = await FaceDetector.load();
  for (const photo of [join(dataDir, 'deepface_testset', 'couple.jpg'), join(dataDir, 'rwmfd_part1', '0000', '0000.jpg')]) {
    const plain = await recognizer.embedFaces(photo, { detector });
    const flipped = await recognizer.embedFaces(photo, { detector, flip: true });
    t.equal(flipped.length, plain.length, `${photo}: same faces`);
    t.ok(plain.length > 0, `${photo}: a face`);
    for (let i = 0; i < plain.length; i++) {
      const a = plain[i]!;
      const b = flipped[i]!;
      t.equal(b.alignment, a.alignment, 'same alignment');
      t.ok(Math.abs(b.maskProbability! - a.maskProbability!) < 1e-5, 'maskProbability is the face’s own');
      const similarity = a.embedding.similarity(b.embedding);
      t.ok(similarity > 0.8 && similarity < 0.99999, `close to the plain embedding, not equal (${similarity.toFixed(4)})`);
    }
  }
});
