/**
 * Verification and identification measures over similarity scores, as `maskface eval` reports
 * them. Scores are cosine similarities; higher means "same person".
 * @module
 */

import type { ScoreDistribution } from '../api/calibration.js';

/** False accept rates at which `tar` is reported. */
export const reportedFars = [1e-2, 1e-3] as const;

export interface VerificationMetrics {
  readonly genuinePairs: number;
  readonly impostorPairs: number;
  /** Area under the ROC curve: P(genuine score > impostor score), ties counted half. */
  readonly auc: number;
  /** Equal error rate: where the false accept and false reject rates meet. */
  readonly eer: number;
  /** The threshold at the EER. */
  readonly eerThreshold: number;
  /**
   * True accept rate at each reported false accept rate, with the threshold that gives it (the
   * lowest score that accepts at most that share of impostors). `resolved` is false when there
   * are too few impostor pairs to measure that rate (fewer than 1 / far).
   */
  readonly tar: readonly { far: number; tar: number; threshold: number; resolved: boolean }[];
}

function sortedDescending(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort().reverse();
}

/** Share of `sorted` (descending) strictly above `threshold`. */
function shareAbove(sorted: Float64Array, threshold: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! > threshold) lo = mid + 1;
    else hi = mid;
  }
  return sorted.length === 0 ? 0 : lo / sorted.length;
}

/** AUC, EER and TAR at the reported FARs from genuine and impostor scores. */
export function verificationMetrics(genuine: ArrayLike<number>, impostor: ArrayLike<number>): VerificationMetrics {
  const g = sortedDescending(genuine);
  const im = sortedDescending(impostor);
  if (g.length === 0 || im.length === 0) {
    return { genuinePairs: g.length, impostorPairs: im.length, auc: NaN, eer: NaN, eerThreshold: NaN, tar: [] };
  }
  // AUC by a merge of the two sorted lists (ascending walk): for each genuine score, the impostors below it.
  let auc = 0;
  let j = im.length - 1; // index of the smallest impostor not yet counted as below
  let below = 0;
  for (let i = g.length - 1; i >= 0; i--) {
    const s = g[i]!;
    while (j >= 0 && im[j]! < s) {
      below++;
      j--;
    }
    let ties = 0;
    for (let t = j; t >= 0 && im[t] === s; t--) ties++;
    auc += below + ties / 2;
  }
  auc /= g.length * im.length;

  // EER: walk thresholds over every score; FAR falls and FRR rises with the threshold.
  const thresholds = sortedDescending([...g, ...im]);
  let eer = 1;
  let eerThreshold = thresholds[0]!;
  let gap = Infinity;
  for (const t of thresholds) {
    const far = shareAbove(im, t);
    const frr = 1 - shareAbove(g, t);
    if (Math.abs(far - frr) < gap) {
      gap = Math.abs(far - frr);
      eer = (far + frr) / 2;
      eerThreshold = t;
    }
  }

  const tar = reportedFars.map((far) => {
    // Accept scores above the (k+1)-th highest impostor, k = floor(far * n): at most k impostors pass.
    const k = Math.floor(far * im.length);
    const threshold = im[Math.min(k, im.length - 1)]!;
    return { far, tar: shareAbove(g, threshold), threshold, resolved: k >= 1 };
  });
  return { genuinePairs: g.length, impostorPairs: im.length, auc, eer, eerThreshold, tar };
}

/** False accept rates of a calibration: 10^-1 to 10^-4 in quarter decades. */
export const calibrationFars: readonly number[] = Array.from({ length: 13 }, (_, i) => Number((10 ** (-1 - i / 4)).toPrecision(3)));

/**
 * A model's scores on one kind of pair as its shipped calibration records them
 * (models/<name>.calibration.json): thresholds at calibrationFars, only those the impostor pairs
 * resolve (at least 1 / far of them), and histograms in 0.02-wide bins from -1 to 1.
 */
export function calibrationCurve(genuine: ArrayLike<number>, impostor: ArrayLike<number>): ScoreDistribution {
  const g = sortedDescending(genuine);
  const im = sortedDescending(impostor);
  const points = calibrationFars
    .filter((far) => Math.floor(far * im.length) >= 1)
    .map((far) => {
      const k = Math.floor(far * im.length);
      const threshold = im[k]!;
      // Accept scores above the (k+1)-th highest impostor score: at most k impostors pass.
      return { far, threshold, tar: shareAbove(g, threshold), impostorsAccepted: Math.round(shareAbove(im, threshold) * im.length) };
    });
  const bins = (sorted: Float64Array) => {
    const counts = new Array<number>(100).fill(0);
    for (const score of sorted) counts[Math.min(99, Math.max(0, Math.floor((score + 1) / 0.02)))]!++;
    return counts;
  };
  return { genuinePairs: g.length, impostorPairs: im.length, points, histogram: { binWidth: 0.02, from: -1, genuine: bins(g), impostor: bins(im) } };
}

/** Points of the ROC curve (FAR, TAR) at `count` FARs spaced evenly on a log scale from 1e-4 to 1. */
export function rocCurve(genuine: ArrayLike<number>, impostor: ArrayLike<number>, count = 60): { far: number; tar: number }[] {
  const g = sortedDescending(genuine);
  const im = sortedDescending(impostor);
  if (g.length === 0 || im.length === 0) return [];
  return Array.from({ length: count }, (_, i) => {
    const far = 10 ** (-4 + (4 * i) / (count - 1));
    const k = Math.floor(far * im.length);
    return { far, tar: shareAbove(g, im[Math.min(k, im.length - 1)]!) };
  });
}

export interface IdentificationMetrics {
  readonly probes: number;
  /** Probes whose best-scoring gallery entry has their identity. */
  readonly correct: number;
  readonly rank1: number;
}

/**
 * Rank-1 identification: each probe against every gallery entry (skipping entries with the same
 * `key` as the probe: the same photo); a probe with no embedding (no face found) counts as wrong.
 */
export function rank1(
  probes: readonly { identity: string; key: string; vector: Float32Array | undefined }[],
  gallery: readonly { identity: string; key: string; vector: Float32Array }[],
): IdentificationMetrics {
  let correct = 0;
  for (const probe of probes) {
    if (probe.vector === undefined) continue;
    let best = -Infinity;
    let bestIdentity: string | undefined;
    for (const entry of gallery) {
      if (entry.key === probe.key) continue;
      const s = dot(probe.vector, entry.vector);
      if (s > best) {
        best = s;
        bestIdentity = entry.identity;
      }
    }
    if (bestIdentity === probe.identity) correct++;
  }
  return { probes: probes.length, correct, rank1: probes.length === 0 ? NaN : correct / probes.length };
}

/** Dot product (cosine of unit vectors). */
export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
