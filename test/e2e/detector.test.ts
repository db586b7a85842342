// FaceDetector and recognizer.embedFaces on real photos: faces found where they are, nothing
// where there is none, every image input the same, and bad input as typed errors.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import t from 'tap';
import { FaceDetector, FaceRecognizer, MaskFaceError, decodeImage, type DetectedFace, type PhotoFace } from '../../dist/esm/index.js';
import { ensureModel } from '../../dist/esm/setup.js';
import { dataDir, missingData, readPairs } from '../helpers/data.js';
import { syntheticFace } from '../helpers/faces.js';

const skip = missingData('deepface_testset') || missingData('rwmfd_part1') || missingData('lfw_aligned_100pair');
const couple = join(dataDir, 'deepface_testset', 'couple.jpg');

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error instanceof MaskFaceError ? error.code : `not a MaskFaceError: ${String(error)}`;
  }
}

function inside(face: DetectedFace, [x, y]: readonly [number, number]): boolean {
  const { box } = face;
  return x > box.x && x < box.x + box.width && y > box.y && y < box.y + box.height;
}

t.test('real photos', { skip }, async (t) => {
  // Subtests run after this function returns: the handles are freed at teardown.
  const detector = await FaceDetector.load();
  const recognizer = await FaceRecognizer.load();
  t.teardown(() => Promise.all([detector.dispose(), recognizer.dispose()]));

  t.test('a photo of two people: two faces, landmarks inside their boxes, in face order', async (t) => {
    const faces = await detector.detect(couple);
    t.equal(faces.length, 2);
    for (const face of faces) {
      t.ok(face.score > 0.8, `confident (${face.score.toFixed(3)})`);
      t.ok(face.landmarks.every((p) => inside(face, p)), 'the 5 points lie inside the box');
      const [leftEye, rightEye, nose, leftMouth, rightMouth] = face.landmarks;
      t.ok(leftEye![0] < rightEye![0] && leftMouth![0] < rightMouth![0], 'left before right');
      t.ok(leftEye![1] < nose![1] && nose![1] < leftMouth![1], 'eyes above the nose above the mouth');
      t.equal(face.landmarks68.length, 68);
      t.ok(face.quality.interocularDistance > 50 && face.quality.faceSize > 100, 'sizes in pixels of the photo');
      t.ok(face.quality.landmarkDisagreement! >= 0 && face.quality.landmarkDisagreement! < 0.2, 'landmarks agree with the mirrored estimate');
    }
    t.ok(faces[0]!.box.x + faces[0]!.box.width < faces[1]!.box.x || faces[1]!.box.x + faces[1]!.box.width < faces[0]!.box.x, 'boxes do not overlap');
    t.equal((await detector.detect(couple, { maxFaces: 1 })).length, 1, 'maxFaces');
    t.equal((await detector.detect(couple, { minFaceSize: 2000 })).length, 0, 'minFaceSize');
    const plain = await detector.detect(couple, { mirrorLandmarks: false });
    t.equal(plain[0]!.quality.landmarkDisagreement, null, 'no disagreement without the mirrored estimate');
  });

  t.test('BlazeFace (the default) gives keypoints; UltraFace finds the same faces without them', async (t) => {
    t.equal(detector.kind, 'blazeface');
    const faces = await detector.detect(couple);
    const ultraface = await FaceDetector.load({ detector: 'ultraface-320' });
    t.teardown(() => ultraface.dispose());
    t.equal(ultraface.kind, 'ultraface');
    const others = await ultraface.detect(couple);
    t.equal(others.length, faces.length);
    t.ok(others.every((f) => f.keypoints === undefined), 'no keypoints from UltraFace');
    for (const face of faces) {
      t.equal(face.keypoints!.length, 6);
      const iod = face.quality.interocularDistance;
      const eyes = [0, 1].map((k) => Math.hypot(face.keypoints![k]![0] - face.landmarks[k]![0], face.keypoints![k]![1] - face.landmarks[k]![1]));
      t.ok(eyes.every((d) => d < 0.25 * iod), `BlazeFace's eyes agree with the landmark network's (${eyes.map((d) => (d / iod).toFixed(2)).join(', ')} interocular)`);
      const twin = others.find((o) => Math.abs(o.box.x + o.box.width / 2 - (face.box.x + face.box.width / 2)) < face.box.width / 2);
      t.ok(twin, 'UltraFace finds the same face');
    }
    const aligned = await recognizer.embedFaces(couple, { detector, alignment: 'keypoints' });
    t.ok(aligned.length === 2 && aligned.every((f) => f.alignment === 'keypoints'), "alignment: 'keypoints'");
    const five = await recognizer.embedFaces(couple, { detector, alignment: 'five-point' });
    aligned.forEach((f, i) => t.ok(f.embedding.similarity(five[i]!.embedding) > 0.8, `keypoint and five-point alignment agree (${f.embedding.similarity(five[i]!.embedding).toFixed(3)})`));
    t.equal(await codeOf(recognizer.embedFaces(couple, { detector: ultraface, alignment: 'keypoints' })), 'ERR_INVALID_ARGUMENT', 'keypoints need BlazeFace');
  });

  t.test('no face: an empty list, never an embedding of the background', async (t) => {
    const noise = syntheticFace(7, 640, 480);
    t.same(await detector.detect(noise), []);
    t.same(await recognizer.embedFaces(noise, { detector }), []);
    const grey = { data: new Uint8Array(320 * 240).fill(128), width: 320, height: 240, format: 'gray' as const };
    t.same(await recognizer.embedFaces(grey, { detector }), []);
  });

  t.test('every input form of one photo gives the same faces', async (t) => {
    const decoded = await decodeImage(couple);
    t.equal(decoded.format, 'rgb');
    const reference = await detector.detect(decoded);
    const encodings: [string, Buffer][] = [
      ['png', await sharp(couple).png().toBuffer()],
      ['webp lossless', await sharp(couple).webp({ lossless: true }).toBuffer()],
      ['tiff', await sharp(couple).tiff({ compression: 'lzw' }).toBuffer()],
      ['avif lossless', await sharp(couple).resize(800).avif({ lossless: true }).toBuffer()],
    ];
    t.same(
      (await detector.detect(readFileSync(couple))).map((f) => f.box),
      (await detector.detect(couple)).map((f) => f.box),
      'a Buffer of the file and its path agree',
    );
    for (const [name, bytes] of encodings) {
      const faces = await detector.detect(bytes);
      t.equal(faces.length, 2, `${name}: two faces`);
      if (name !== 'avif lossless') {
        t.ok(Math.abs(faces[0]!.box.x - reference[0]!.box.x) < 2, `${name}: the same box (lossless re-encoding)`);
      }
    }
  });

  t.test('EXIF orientation is applied: a rotated file with an orientation tag reads upright', async (t) => {
    const upright = await detector.detect(couple);
    // Pixels rotated 90 degrees clockwise, tagged 8 (display: rotate 270 clockwise) = upright.
    const rotated = await sharp(couple).rotate(90).withMetadata({ orientation: 8 }).jpeg({ quality: 95 }).toBuffer();
    const faces = await detector.detect(rotated);
    t.equal(faces.length, 2);
    t.ok(Math.abs(faces[0]!.box.x - upright[0]!.box.x) < 8 && Math.abs(faces[0]!.box.y - upright[0]!.box.y) < 8, 'boxes in upright coordinates');
  });

  t.test('a large photo: found on the downscaled copy, landmarks and embeddings from full resolution', async (t) => {
    const small = await sharp(couple).resize({ width: 1000 }).jpeg({ quality: 95 }).toBuffer();
    const large = await sharp(couple).resize({ width: 4000 }).jpeg({ quality: 95 }).toBuffer();
    const a = await recognizer.embedFaces(small, { detector });
    const b = await recognizer.embedFaces(large, { detector });
    t.equal(b.length, a.length);
    const scale = 4000 / 1000;
    for (let i = 0; i < a.length; i++) {
      const shift = Math.hypot(b[i]!.landmarks[2]![0] / scale - a[i]!.landmarks[2]![0], b[i]!.landmarks[2]![1] / scale - a[i]!.landmarks[2]![1]);
      t.ok(shift < 0.05 * a[i]!.quality.interocularDistance, `face ${i}: the nose tip scales with the photo (off by ${shift.toFixed(2)} px)`);
      const cosine = a[i]!.embedding.similarity(b[i]!.embedding);
      t.ok(cosine > 0.9, `face ${i}: the same embedding at 4x the size (cosine ${cosine.toFixed(3)})`);
    }
  });

  t.test('tight crops with no background (LFW-100): found, and the same person scores higher', async (t) => {
    const all = readPairs();
    const pairs = [...all.filter((p) => p.same).slice(0, 20), ...all.filter((p) => !p.same).slice(0, 20)];
    let found = 0;
    const same: number[] = [];
    const different: number[] = [];
    for (const pair of pairs) {
      const [a, b] = await Promise.all([pair.a, pair.b].map((path) => recognizer.embedFaces(path, { detector, maxFaces: 1 })));
      if (a!.length === 1) found++;
      if (b!.length === 1) found++;
      if (a!.length === 1 && b!.length === 1) (pair.same ? same : different).push(a![0]!.embedding.similarity(b![0]!.embedding));
    }
    t.ok(found >= 0.95 * 2 * pairs.length, `faces found in ${found} of ${2 * pairs.length} crops`);
    let wins = 0;
    for (const s of same) for (const d of different) wins += s > d ? 1 : s === d ? 0.5 : 0;
    const auc = wins / (same.length * different.length);
    t.ok(auc > 0.95, `AUC over ${same.length} + ${different.length} pairs: ${auc.toFixed(3)}`);
  });

  t.test('real masked photos: a mask is seen and the face re-aligned on the eyes and nose', async (t) => {
    // The first photo of each of the first 12 crawl folders.
    const root = join(dataDir, 'rwmfd_part1');
    const photos = readdirSync(root)
      .filter((name) => /^\d{4}$/.test(name))
      .sort()
      .slice(0, 12)
      .map((folder) => join(folder, readdirSync(join(root, folder)).filter((n) => n.endsWith('.jpg')).sort()[0]!));
    let masked = 0;
    let eyesNose = 0;
    let found = 0;
    for (const name of photos) {
      const [face] = await recognizer.embedFaces(join(root, name), { detector, maxFaces: 1 });
      if (face === undefined) continue;
      found++;
      // 'auto' decides on the five-point crop's maskProbability; the face then reports the
      // maskProbability of the crop it was embedded from.
      const [first] = await recognizer.embedFaces(join(root, name), { detector, maxFaces: 1, alignment: 'five-point' });
      if (first!.maskProbability! >= 0.5) masked++;
      if (face.alignment === 'eyes-nose') eyesNose++;
      t.equal(face.alignment === 'eyes-nose', first!.maskProbability! >= 0.5, `${name}: eyes-nose exactly when the five-point maskProbability >= 0.5`);
    }
    t.ok(found >= 10, `faces found in ${found} of ${photos.length} photos`);
    t.ok(masked >= 0.6 * found, `${masked} of ${found} faces seen masked`);
    const bare = await recognizer.embedFaces(couple, { detector });
    t.ok(bare.every((f) => f.alignment === 'five-point' && f.maskProbability! < 0.5), 'bare faces keep five points');
    const fixed = await recognizer.embedFaces(join(root, photos[0]!), { detector, alignment: 'five-point' });
    t.ok(fixed.every((f) => f.alignment === 'five-point'), "alignment: 'five-point' is kept");
    t.equal(eyesNose, masked);
  });

  t.test('concurrent calls give what sequential calls give; the event loop stays free', async (t) => {
    const paths = [couple, join(dataDir, 'deepface_testset', 'img1.jpg'), join(dataDir, 'deepface_testset', 'img2.jpg')];
    const sequential: PhotoFace[][] = [];
    for (const path of paths) sequential.push(await recognizer.embedFaces(path, { detector }));
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const concurrent = await Promise.all([...paths, ...paths].map((path) => recognizer.embedFaces(path, { detector })));
    loop.disable();
    concurrent.forEach((faces, i) => {
      const expected = sequential[i % paths.length]!;
      t.equal(faces.length, expected.length);
      faces.forEach((face, j) => t.ok(face.embedding.similarity(expected[j]!.embedding) > 0.99999, `call ${i} face ${j}: the same embedding`));
    });
    t.ok(loop.max / 1e6 < 200, `longest event-loop stall ${(loop.max / 1e6).toFixed(1)} ms`);
  });
});

t.test('bad input is a typed error', async (t) => {
  await using detector = await FaceDetector.load();
  await using recognizer = await FaceRecognizer.load();
  const folder = mkdtempSync(join(tmpdir(), 'maskface-detect-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const text = join(folder, 'notes.jpg');
  writeFileSync(text, 'not an image at all');
  const jpeg = await sharp(syntheticFace(1, 200, 200).data, { raw: { width: 200, height: 200, channels: 3 } }).jpeg().toBuffer();
  const photo = join(folder, 'synthetic.jpg');
  writeFileSync(photo, jpeg);
  const cases: [string, () => Promise<unknown>, string][] = [
    ['a missing file', () => detector.detect(join(folder, 'absent.jpg')), 'ERR_IMAGE_DECODE'],
    ['a file that is not an image', () => detector.detect(text), 'ERR_IMAGE_DECODE'],
    ['bytes that are not an image', () => detector.detect(new Uint8Array([1, 2, 3, 4, 5])), 'ERR_IMAGE_DECODE'],
    ['empty bytes', () => detector.detect(new Uint8Array(0)), 'ERR_IMAGE_DECODE'],
    ['a truncated JPEG', () => detector.detect(jpeg.subarray(0, jpeg.length >> 1)), 'ERR_IMAGE_DECODE'],
    ['a truncated PGM', () => detector.detect(Buffer.from('P5\n10 10\n255\nabc')), 'ERR_IMAGE_DECODE'],
    ['an empty path', () => detector.detect(''), 'ERR_INVALID_ARGUMENT'],
    ['a number', () => detector.detect(42 as never), 'ERR_INVALID_ARGUMENT'],
    ['pixels of the wrong length', () => detector.detect({ data: new Uint8Array(10), width: 4, height: 4 }), 'ERR_INVALID_ARGUMENT'],
    ['minScore 2', () => detector.detect(photo, { minScore: 2 }), 'ERR_INVALID_ARGUMENT'],
    ['maxFaces -1', () => detector.detect(photo, { maxFaces: -1 }), 'ERR_INVALID_ARGUMENT'],
    ['retryPadding "x"', () => detector.detect(photo, { retryPadding: 'x' as never }), 'ERR_INVALID_ARGUMENT'],
    ['mirrorLandmarks 1', () => detector.detect(photo, { mirrorLandmarks: 1 as never }), 'ERR_INVALID_ARGUMENT'],
    ['embedFaces without a detector', () => recognizer.embedFaces(photo, {} as never), 'ERR_INVALID_ARGUMENT'],
    ['embedFaces with alignment "mouth"', () => recognizer.embedFaces(photo, { detector, alignment: 'mouth' as never }), 'ERR_INVALID_ARGUMENT'],
    ['an aborted signal', () => detector.detect(photo, { signal: AbortSignal.abort() }), 'ERR_ABORTED'],
    ['a detector model that is not one', async () => FaceDetector.load({ detector: await ensureModel('landmark68') }), 'ERR_MODEL_LOAD'],
    ['a landmark model that is a face detector', async () => FaceDetector.load({ landmarks: await ensureModel('ultraface-320') }), 'ERR_MODEL_LOAD'],
    ['a missing model file', () => FaceDetector.load({ detector: join(folder, 'absent.onnx') }), 'ERR_MODEL_LOAD'],
    ['garbage model bytes', () => (writeFileSync(join(folder, 'bad.onnx'), 'garbage'), FaceDetector.load({ detector: join(folder, 'bad.onnx') })), 'ERR_MODEL_LOAD'],
    ['intraOpThreads 0', () => FaceDetector.load({ cpu: { intraOpThreads: 0 } }), 'ERR_INVALID_ARGUMENT'],
  ];
  for (const [what, call, code] of cases) t.equal(await codeOf(call()), code, what);

  const pending = detector.detect(photo);
  const disposing = detector.dispose();
  t.ok(Array.isArray(await pending), 'a call in flight completes');
  await disposing;
  t.equal(await codeOf(detector.detect(photo)), 'ERR_DISPOSED', 'then calls are refused');
  t.equal(await codeOf(recognizer.embedFaces(photo, { detector })), 'ERR_DISPOSED', 'also through embedFaces');
});
