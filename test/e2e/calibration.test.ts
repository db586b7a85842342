// Score calibrations: the default model's shipped calibration gives thresholds by false accept
// rate, lower for masked faces; verify() and gallery.identify({ far }) use the masked one when a
// face wears a mask; bad rates, models without a calibration and conflicting options are typed
// errors. On real photos: two photos of one person verify, two people do not.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FaceDetector, FaceEmbedding, FaceRecognizer, Gallery, MaskFaceError, ScoreCalibration, verify } from '../../dist/esm/index.js';
import { dataDir, missingData, repoRoot } from '../helpers/data.js';

const sidecar = JSON.parse(readFileSync(join(repoRoot, 'models', 'maskface-mbf-cal.json'), 'utf8')) as { sha256: string };
const model = { id: sidecar.sha256, dim: 4, name: 'maskface-mbf-cal' };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (!(error instanceof MaskFaceError)) throw error;
    return error.code;
  }
}

/** A unit vector whose cosine with `q` is exactly `cosine`. */
function atCosine(q: Float32Array, cosine: number): Float32Array {
  const other = Float32Array.from(q, (_, i) => (i === 0 ? -q[1]! : i === 1 ? q[0]! : 0));
  let norm = Math.hypot(...other);
  if (norm < 1e-6) {
    other.fill(0);
    other[2] = 1;
    norm = 1;
  }
  return Float32Array.from(q, (v, i) => cosine * v + Math.sqrt(1 - cosine * cosine) * (other[i]! / norm));
}

t.test('the shipped calibration: thresholds by false accept rate, lower for masked faces', async (t) => {
  const calibration = ScoreCalibration.for(model);
  if (!calibration) throw new Error('no calibration shipped for maskface-mbf-cal');
  t.equal(calibration.model, 'maskface-mbf-cal');
  t.same(calibration.farRange('bare'), [1e-4, 0.1]);
  for (const condition of ['bare', 'masked'] as const) {
    const points = calibration[condition].points;
    for (const point of points) {
      t.ok(Math.abs(calibration.threshold(point.far, condition) - point.threshold) < 1e-12, `${condition} ${point.far}: the measured point`);
    }
    for (let i = 0; i + 1 < points.length; i++) {
      const between = Math.sqrt(points[i]!.far * points[i + 1]!.far);
      const threshold = calibration.threshold(between, condition);
      if (!(threshold >= points[i]!.threshold && threshold <= points[i + 1]!.threshold)) t.fail(`${condition}: ${between} interpolates outside its neighbours`);
    }
    const histogram = calibration[condition].histogram;
    t.equal(histogram.impostor.reduce((a, b) => a + b, 0), calibration[condition].impostorPairs, `${condition}: the impostor histogram holds every pair`);
    t.equal(histogram.genuine.reduce((a, b) => a + b, 0), calibration[condition].genuinePairs, `${condition}: so does the genuine one`);
  }
  for (const far of [1e-1, 1e-2, 1e-3, 1e-4]) {
    t.ok(calibration.threshold(far, 'masked') < calibration.threshold(far, 'bare'), `FAR ${far}: the masked threshold is the lower`);
  }
  t.equal(codeOf(() => calibration.threshold(1e-5, 'bare')), 'ERR_INVALID_ARGUMENT', 'no extrapolation below the measured rates');
  t.equal(codeOf(() => calibration.threshold(0.5, 'bare')), 'ERR_INVALID_ARGUMENT', 'nor above');
  t.equal(codeOf(() => calibration.threshold(Number.NaN, 'bare')), 'ERR_INVALID_ARGUMENT');
  t.equal(ScoreCalibration.for({ id: 'e'.repeat(64), dim: 4 }), null, 'another model has none');
});

t.test('verify and identify: the threshold for the rate asked, and bad options', async (t) => {
  const calibration = ScoreCalibration.for(model)!;
  const q = FaceEmbedding.fromVector([1, 0, 0, 0], model);
  const near = FaceEmbedding.fromVector(atCosine(q.vector, calibration.threshold(1e-3, 'bare') + 0.01), model);
  const below = FaceEmbedding.fromVector(atCosine(q.vector, calibration.threshold(1e-3, 'bare') - 0.01), model);
  const result = verify(q, near);
  t.same([result.same, result.condition, result.far], [true, 'bare', 1e-3], 'just above the 1e-3 threshold: the same person');
  t.equal(verify(q, below).same, false, 'just below: not');
  t.equal(verify(q, below, { far: 1e-2 }).same, true, 'but accepted at 1e-2');
  t.same([verify(q, near, { threshold: 0.99 }).same, verify(q, near, { threshold: 0.99 }).far], [false, null], 'a threshold of your own');
  t.equal(codeOf(() => verify(q, near, { far: 1e-3, threshold: 0.5 })), 'ERR_INVALID_ARGUMENT', 'far and threshold together');
  t.equal(codeOf(() => verify(q, near, { far: 2 })), 'ERR_INVALID_ARGUMENT', 'a rate outside the calibration');
  const other = { id: 'e'.repeat(64), dim: 4, name: 'other' };
  const a = FaceEmbedding.fromVector([1, 0, 0, 0], other);
  t.equal(codeOf(() => verify(a, a)), 'ERR_INVALID_ARGUMENT', 'a model without a calibration needs a threshold');
  t.equal(verify(a, a, { threshold: 0.5 }).same, true);
  t.equal(codeOf(() => verify(q, a, { threshold: 0.5 })), 'ERR_MODEL_MISMATCH', 'two models');

  await using gallery = new Gallery<string>({ model });
  gallery.add('near', near);
  t.equal((await gallery.identify(q, { far: 1e-3 }))?.id, 'near', 'identify at a rate');
  gallery.remove('near');
  gallery.add('below', below);
  t.equal(await gallery.identify(q, { far: 1e-3 }), null, 'nobody below its threshold');
  t.equal((await gallery.identify(q, { far: 1e-2 }))?.id, 'below');
  await t.rejects(gallery.identify(q, {}), { code: 'ERR_INVALID_ARGUMENT' }, 'a threshold or a rate is required');
  await t.rejects(gallery.identify(q, { far: 1e-3, threshold: 0.3 }), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('real photos: the masked threshold for a masked face', { skip: missingData('deepface_testset') || missingData('rmfrd_real_masks') }, async (t) => {
  await using recognizer = await FaceRecognizer.load();
  await using detector = await FaceDetector.load();
  t.equal(recognizer.calibration?.model, 'maskface-mbf-cal', 'the default model carries its calibration');
  const face = async (path: string) => {
    const faces = await recognizer.embedFaces(join(dataDir, path), { detector });
    return faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a)).embedding;
  };
  const [img1, img2, img17] = await Promise.all(['img1.jpg', 'img2.jpg', 'img17.jpg'].map((n) => face(join('deepface_testset', n))));
  t.equal(verify(img1!, img2!).same, true, 'two photos of one person');
  t.equal(verify(img1!, img17!).same, false, 'two people');
  const masked = await face(join('rmfrd_real_masks', 'axin', 'masked-c01.jpg'));
  const bare = await face(join('rmfrd_real_masks', 'axin', 'unmasked-c01.jpg'));
  t.ok((masked.maskProbability ?? 0) >= 0.5, `the masked photo reads as masked (${masked.maskProbability?.toFixed(2)})`);
  const answer = verify(masked, bare);
  t.equal(answer.condition, 'masked', 'so its pair is judged by the masked calibration');
  t.equal(answer.threshold, recognizer.calibration!.threshold(1e-3, 'masked'));
});
