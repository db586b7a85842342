/**
 * `maskface eval`: recognition measures on a labelled photo folder (masked probes against bare
 * photos, and bare against bare) or on an insightface pair set (.bin).
 * @module
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { decodeImage, loadSharp } from '../api/image-input.js';
import { calibrationCurve, dot, rank1, rocCurve, verificationMetrics, type IdentificationMetrics, type VerificationMetrics } from './evaluation.js';
import { readPairSet } from './pair-set.js';
import { labelledPhotos, mainFace, Progress, UsageError, type LabelledPhoto } from './common.js';
import { facesOf, type PhotoContext } from './photo-commands.js';
import type { ScoreDistribution } from '../api/calibration.js';

export interface EvalOptions {
  labels?: string;
  identities?: string;
  masked: RegExp;
  /** pair sets: the images are aligned crops (no detection) */
  aligned: boolean;
}

interface PhotoResult {
  readonly identity: string;
  readonly path: string;
  readonly masked: boolean;
  readonly vector: Float32Array | undefined;
  readonly maskProbability: number | undefined;
}

export interface SplitResult {
  readonly name: string;
  readonly verification: VerificationMetrics;
  readonly identification?: IdentificationMetrics;
  readonly roc: { far: number; tar: number }[];
  /** Thresholds by false accept rate and the score histograms (a model's calibration). */
  readonly calibration?: ScoreDistribution;
}

export interface FolderEvaluation {
  readonly photos: number;
  readonly masked: number;
  readonly bare: number;
  readonly noFace: { masked: number; bare: number };
  readonly maskProbabilityMedian: { masked: number | null; bare: number | null };
  readonly splits: SplitResult[];
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function identityFilter(path: string | undefined): Promise<Set<string> | undefined> {
  if (path === undefined) return undefined;
  const names = (await readFile(path, 'utf8'))
    .split(/\r?\n/)
    .map((line) => line.split(',')[0]!.trim())
    .filter((name) => name !== '');
  return new Set(names);
}

/** Embeds every photo of a labelled folder and measures masked-vs-bare and bare-vs-bare recognition. */
export async function evaluateFolder(dir: string, context: PhotoContext, options: EvalOptions): Promise<FolderEvaluation> {
  const only = await identityFilter(options.identities);
  const photos: LabelledPhoto[] = (await labelledPhotos(dir, options.labels)).filter((p) => only === undefined || only.has(p.identity));
  if (photos.length === 0) throw new UsageError(`no photos found in ${dir}${only ? ' for the identities listed' : ''}`);
  const progress = new Progress('embedding', photos.length);
  const results: PhotoResult[] = [];
  for (const photo of photos) {
    const face = mainFace(await facesOf(context, photo.path));
    results.push({
      identity: photo.identity,
      path: photo.path,
      masked: options.masked.test(basename(photo.path)),
      vector: face?.embedding.vector,
      maskProbability: face?.maskProbability,
    });
    progress.tick();
  }
  const masked = results.filter((r) => r.masked);
  const bare = results.filter((r) => !r.masked);
  const found = (list: PhotoResult[]) => list.filter((r): r is PhotoResult & { vector: Float32Array } => r.vector !== undefined);
  const splits: SplitResult[] = [];

  if (masked.length > 0 && bare.length > 0) {
    const genuine: number[] = [];
    const impostor: number[] = [];
    for (const probe of found(masked)) {
      for (const entry of found(bare)) (probe.identity === entry.identity ? genuine : impostor).push(dot(probe.vector, entry.vector));
    }
    splits.push({
      name: 'masked probe vs bare gallery',
      verification: verificationMetrics(genuine, impostor),
      identification: rank1(
        masked.map((r) => ({ identity: r.identity, key: r.path, vector: r.vector })),
        found(bare).map((r) => ({ identity: r.identity, key: r.path, vector: r.vector })),
      ),
      roc: rocCurve(genuine, impostor),
      calibration: calibrationCurve(genuine, impostor),
    });
  }
  if (bare.length > 1) {
    const list = found(bare);
    const genuine: number[] = [];
    const impostor: number[] = [];
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        (list[i]!.identity === list[j]!.identity ? genuine : impostor).push(dot(list[i]!.vector, list[j]!.vector));
      }
    }
    // Leave-one-out: each bare photo of an identity with another bare photo, against all the others.
    const counts = new Map<string, number>();
    for (const r of bare) counts.set(r.identity, (counts.get(r.identity) ?? 0) + 1);
    splits.push({
      name: 'bare vs bare',
      verification: verificationMetrics(genuine, impostor),
      identification: rank1(
        bare.filter((r) => counts.get(r.identity)! > 1).map((r) => ({ identity: r.identity, key: r.path, vector: r.vector })),
        list.map((r) => ({ identity: r.identity, key: r.path, vector: r.vector })),
      ),
      roc: rocCurve(genuine, impostor),
      calibration: calibrationCurve(genuine, impostor),
    });
  }
  const probabilities = (list: PhotoResult[]) => list.flatMap((r) => (r.maskProbability === undefined ? [] : [r.maskProbability]));
  return {
    photos: results.length,
    masked: masked.length,
    bare: bare.length,
    noFace: { masked: masked.length - found(masked).length, bare: bare.length - found(bare).length },
    maskProbabilityMedian: { masked: median(probabilities(masked)), bare: median(probabilities(bare)) },
    splits,
  };
}

export interface PairSetEvaluation {
  readonly pairs: number;
  readonly noFace: number;
  /** Share of pairs decided right at the threshold that maximises it (pairs with no face count as wrong). */
  readonly bestAccuracy: number;
  readonly bestThreshold: number;
  readonly splits: SplitResult[];
}

/** Embeds every image of an insightface pair set and measures verification over its pairs. */
export async function evaluatePairSet(path: string, context: PhotoContext, options: EvalOptions): Promise<PairSetEvaluation> {
  const set = await readPairSet(path);
  const progress = new Progress('embedding', set.images.length);
  const vectors: (Float32Array | undefined)[] = [];
  for (const bytes of set.images) {
    if (options.aligned) {
      vectors.push((await context.recognizer.embed(await decodeImage(bytes), { flip: context.flip })).vector);
    } else {
      vectors.push(mainFace(await facesOf(context, bytes))?.embedding.vector);
    }
    progress.tick();
  }
  const genuine: number[] = [];
  const impostor: number[] = [];
  const scored: { score: number; same: boolean }[] = [];
  let noFace = 0;
  set.issame.forEach((same, i) => {
    const a = vectors[2 * i];
    const b = vectors[2 * i + 1];
    if (a === undefined || b === undefined) {
      noFace++;
      return;
    }
    const score = dot(a, b);
    (same ? genuine : impostor).push(score);
    scored.push({ score, same });
  });
  // Best single threshold: sweep the sorted scores.
  scored.sort((x, y) => y.score - x.score);
  let accepted = { same: 0, different: 0 };
  const totalDifferent = scored.filter((s) => !s.same).length;
  let best = { correct: totalDifferent, threshold: Infinity };
  for (const s of scored) {
    accepted = s.same ? { ...accepted, same: accepted.same + 1 } : { ...accepted, different: accepted.different + 1 };
    const correct = accepted.same + (totalDifferent - accepted.different);
    if (correct > best.correct) best = { correct, threshold: s.score };
  }
  return {
    pairs: set.issame.length,
    noFace,
    bestAccuracy: best.correct / set.issame.length,
    bestThreshold: best.threshold,
    splits: [{ name: 'pairs', verification: verificationMetrics(genuine, impostor), roc: rocCurve(genuine, impostor) }],
  };
}

/** A text table of the splits. */
export function formatSplits(splits: readonly SplitResult[]): string {
  const pct = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : `${(100 * v).toFixed(1)}%`);
  const lines = ['split                          AUC      EER     TAR@1e-2  TAR@1e-3  rank-1   pairs (genuine / impostor)'];
  for (const s of splits) {
    const v = s.verification;
    const tar = (far: number) => {
      const t = v.tar.find((x) => x.far === far);
      return t === undefined ? '-' : `${pct(t.tar)}${t.resolved ? '' : '*'}`;
    };
    lines.push(
      `${s.name.padEnd(30)} ${v.auc.toFixed(4).padStart(6)} ${pct(v.eer).padStart(7)} ${tar(1e-2).padStart(9)} ${tar(1e-3).padStart(9)} ${pct(s.identification?.rank1).padStart(7)}   ${v.genuinePairs} / ${v.impostorPairs}`,
    );
  }
  if (splits.some((s) => s.verification.tar.some((t) => !t.resolved))) lines.push('* fewer impostor pairs than 1 / FAR: not resolved');
  return lines.join('\n');
}

/** Writes the ROC curves as a PNG (log FAR axis). */
export async function writeRocPng(path: string, splits: readonly SplitResult[], title: string): Promise<void> {
  const width = 640;
  const height = 480;
  const left = 60;
  const top = 40;
  const plotW = width - left - 20;
  const plotH = height - top - 60;
  const x = (far: number) => left + ((Math.log10(far) + 4) / 4) * plotW;
  const y = (tar: number) => top + (1 - tar) * plotH;
  const colours = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd'];
  const escape = (text: string) => text.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-family="sans-serif" font-size="15">${escape(title)}</text>`,
  ];
  for (let e = -4; e <= 0; e++) {
    const gx = x(10 ** e);
    parts.push(`<line x1="${gx}" y1="${top}" x2="${gx}" y2="${top + plotH}" stroke="#ddd"/>`);
    parts.push(`<text x="${gx}" y="${top + plotH + 18}" text-anchor="middle" font-family="sans-serif" font-size="12">1e${e}</text>`);
  }
  for (let t = 0; t <= 10; t += 2) {
    const gy = y(t / 10);
    parts.push(`<line x1="${left}" y1="${gy}" x2="${left + plotW}" y2="${gy}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 8}" y="${gy + 4}" text-anchor="end" font-family="sans-serif" font-size="12">${(t / 10).toFixed(1)}</text>`);
  }
  parts.push(`<text x="${left + plotW / 2}" y="${height - 18}" text-anchor="middle" font-family="sans-serif" font-size="13">false accept rate</text>`);
  parts.push(`<text x="16" y="${top + plotH / 2}" transform="rotate(-90 16 ${top + plotH / 2})" text-anchor="middle" font-family="sans-serif" font-size="13">true accept rate</text>`);
  splits.forEach((s, i) => {
    const colour = colours[i % colours.length]!;
    const points = s.roc.map((p) => `${x(p.far).toFixed(1)},${y(p.tar).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    parts.push(`<text x="${left + plotW - 10}" y="${top + plotH - 16 - 18 * i}" text-anchor="end" font-family="sans-serif" font-size="13" fill="${colour}">${escape(`${s.name} (AUC ${s.verification.auc.toFixed(3)})`)}</text>`);
  });
  parts.push('</svg>');
  const sharp = await loadSharp();
  await writeFile(path, await sharp(Buffer.from(parts.join(''))).png().toBuffer());
}
