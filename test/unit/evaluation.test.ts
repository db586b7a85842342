// The measures `maskface eval` reports, against brute-force definitions.
import t from 'tap';
import { rank1, rocCurve, verificationMetrics } from '../../dist/cjs/cli/evaluation.js';

function random(seed: number): () => number {
  let state = seed;
  return () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

t.test('AUC equals the share of (genuine, impostor) pairs in order, ties counted half', async (t) => {
  const next = random(3);
  for (const [n, m, grid] of [[50, 200, 0], [30, 70, 20], [1, 1, 0]] as const) {
    // grid > 0 rounds scores so that many tie
    const round = (v: number) => (grid ? Math.round(v * grid) / grid : v);
    const genuine = Array.from({ length: n }, () => round(0.3 + 0.5 * next()));
    const impostor = Array.from({ length: m }, () => round(0.6 * next()));
    let wins = 0;
    for (const g of genuine) for (const i of impostor) wins += g > i ? 1 : g === i ? 0.5 : 0;
    const { auc, genuinePairs, impostorPairs } = verificationMetrics(genuine, impostor);
    t.ok(Math.abs(auc - wins / (n * m)) < 1e-12, `${n} x ${m}${grid ? ' with ties' : ''}: ${auc}`);
    t.equal(genuinePairs, n);
    t.equal(impostorPairs, m);
  }
  t.equal(verificationMetrics([1, 1], [1, 1]).auc, 0.5, 'all tied: 0.5');
  t.equal(verificationMetrics([2], [1]).auc, 1);
  t.equal(verificationMetrics([0], [1]).auc, 0);
  t.ok(Number.isNaN(verificationMetrics([], [1]).auc), 'no genuine pairs: NaN, not a number that looks measured');
});

t.test('TAR at FAR: the threshold lets at most that share of impostors through', async (t) => {
  const impostor = Array.from({ length: 1000 }, (_, i) => i / 1000); // 0 .. 0.999
  const genuine = Array.from({ length: 100 }, (_, i) => 0.985 + i / 10000); // 0.985 .. 0.9949
  const { tar } = verificationMetrics(genuine, impostor);
  const at = (far: number) => tar.find((x) => x.far === far)!;
  // FAR 1e-2: 10 impostors may pass: the threshold is the 11th highest, 0.989; scores above it pass.
  t.equal(at(1e-2).threshold, 0.989);
  t.equal(at(1e-2).tar, genuine.filter((g) => g > 0.989).length / 100);
  t.equal(impostor.filter((i) => i > at(1e-2).threshold).length, 10, 'exactly 10 impostors above it');
  t.equal(at(1e-3).threshold, 0.998);
  t.equal(at(1e-3).tar, 0);
  t.ok(at(1e-3).resolved);
  t.notOk(verificationMetrics(genuine, impostor.slice(0, 500)).tar.find((x) => x.far === 1e-3)!.resolved, '500 impostors cannot resolve 1e-3');
});

t.test('EER: where the false accept and false reject rates meet', async (t) => {
  // Symmetric overlap: genuine uniform on [0.4, 1.4), impostor on [0, 1): they cross at 0.7.
  const genuine = Array.from({ length: 1000 }, (_, i) => 0.4 + i / 1000);
  const impostor = Array.from({ length: 1000 }, (_, i) => i / 1000);
  const { eer, eerThreshold } = verificationMetrics(genuine, impostor);
  t.ok(Math.abs(eer - 0.3) < 0.002, `EER ${eer}`);
  t.ok(Math.abs(eerThreshold - 0.7) < 0.002, `at ${eerThreshold}`);
  const separated = verificationMetrics([0.9, 0.8], [0.1, 0.2]);
  t.equal(separated.eer, 0, 'separated scores: EER 0');
});

t.test('ROC points rise with the FAR', async (t) => {
  const next = random(5);
  const roc = rocCurve(Array.from({ length: 300 }, () => 0.3 + next()), Array.from({ length: 3000 }, () => next()), 20);
  t.equal(roc.length, 20);
  t.ok(roc.every((p, i) => i === 0 || (p.far > roc[i - 1]!.far && p.tar >= roc[i - 1]!.tar)), 'monotone');
  t.equal(roc.at(-1)!.far, 1);
});

t.test('rank-1: the best gallery entry names the probe; no face counts as wrong; a photo never matches itself', async (t) => {
  const v = (...xs: number[]) => Float32Array.from(xs);
  const gallery = [
    { identity: 'a', key: 'a1', vector: v(1, 0) },
    { identity: 'b', key: 'b1', vector: v(0, 1) },
  ];
  const result = rank1(
    [
      { identity: 'a', key: 'p1', vector: v(0.9, 0.1) },
      { identity: 'b', key: 'p2', vector: v(0.8, 0.2) },
      { identity: 'b', key: 'p3', vector: undefined },
      { identity: 'a', key: 'a1', vector: v(1, 0) },
    ],
    gallery,
  );
  t.same(result, { probes: 4, correct: 1, rank1: 0.25 }, 'p1 right, p2 wrong, p3 no face, a1 may not match itself (best left is b)');
});
