/**
 * Score calibrations: a model's genuine and impostor score distributions, measured on development
 * photos for bare faces and for masked ones, and the thresholds they give for a target false
 * accept rate. maskface ships one per calibrated model (models/<name>.calibration.json, written
 * from `maskface eval --out`), found by the model's sha256.
 * @module
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FaceEmbedding } from './embedding.js';
import { MaskFaceError, invalidArgument } from './errors.js';
import type { ModelFingerprint } from './types.js';
import { packageRoot } from '../runtime/package-root.js';
import { assertFinite, assertObject } from '../runtime/validate.js';

/** One point of a calibration: the threshold that accepted at most `far` of the impostor pairs. */
export interface CalibrationPoint {
  readonly far: number;
  readonly threshold: number;
  /** Share of the genuine pairs accepted at that threshold. */
  readonly tar: number;
  /** Impostor pairs accepted at it. */
  readonly impostorsAccepted: number;
}

/**
 * Scores of one kind of pair: the pair counts, thresholds by false accept rate (the rates the
 * impostor pairs resolve, at least 1 / far of them), and histograms of the scores in `binWidth`
 * bins from `from`.
 */
export interface ScoreDistribution {
  readonly genuinePairs: number;
  readonly impostorPairs: number;
  readonly points: readonly CalibrationPoint[];
  readonly histogram: { readonly binWidth: number; readonly from: number; readonly genuine: readonly number[]; readonly impostor: readonly number[] };
}

/** Which distribution a pair of faces falls under: 'masked' when either wears a mask. */
export type PairCondition = 'bare' | 'masked';

interface CalibrationFile {
  format: 'maskface-calibration';
  model: string;
  sha256: string;
  source: string;
  command: string;
  maskedWhen: string;
  conditions: Record<PairCondition, ScoreDistribution>;
}

/** maskProbability at or above which a face counts as masked. */
export const maskedAt = 0.5;

/**
 * A model's measured score distributions, bare faces and masked ones apart: masked faces score
 * lower, genuine and impostor pairs alike, so one threshold cannot serve both. `threshold(far,
 * condition)` gives the threshold for a target false accept rate.
 */
export class ScoreCalibration {
  /** The model's name and the sha256 of its file. */
  readonly model: string;
  readonly sha256: string;
  /** The photos and pipeline it was measured on. */
  readonly source: string;
  readonly bare: ScoreDistribution;
  readonly masked: ScoreDistribution;

  private constructor(file: CalibrationFile) {
    this.model = file.model;
    this.sha256 = file.sha256;
    this.source = file.source;
    this.bare = Object.freeze(file.conditions.bare);
    this.masked = Object.freeze(file.conditions.masked);
  }

  static #shipped: Map<string, ScoreCalibration> | undefined;

  /** The calibration maskface ships for `model` (found by its id, the sha256 of the file), or null. */
  static for(model: ModelFingerprint): ScoreCalibration | null {
    ScoreCalibration.#shipped ??= ScoreCalibration.#readShipped();
    return ScoreCalibration.#shipped.get(model.id) ?? null;
  }

  static #readShipped(): Map<string, ScoreCalibration> {
    const folder = join(packageRoot, 'models');
    const found = new Map<string, ScoreCalibration>();
    for (const name of readdirSync(folder).filter((n) => n.endsWith('.calibration.json'))) {
      const path = join(folder, name);
      let file: CalibrationFile;
      try {
        file = JSON.parse(readFileSync(path, 'utf8')) as CalibrationFile;
      } catch (error) {
        throw new MaskFaceError(`The calibration ${path} cannot be read: ${(error as Error).message}`, 'ERR_MODEL_LOAD', { cause: error, details: { path } });
      }
      const wellFormed = (d: ScoreDistribution | undefined) =>
        Array.isArray(d?.points) && d.points.length > 0 && d.points.every((p, i, all) => Number.isFinite(p.far) && Number.isFinite(p.threshold) && (i === 0 || (p.far < all[i - 1]!.far && p.threshold >= all[i - 1]!.threshold)));
      if (file?.format !== 'maskface-calibration' || typeof file.sha256 !== 'string' || !wellFormed(file.conditions?.bare) || !wellFormed(file.conditions?.masked)) {
        throw new MaskFaceError(`The calibration ${path} is malformed`, 'ERR_MODEL_LOAD', { details: { path } });
      }
      found.set(file.sha256, new ScoreCalibration(file));
    }
    return found;
  }

  /** 'masked' when any of the faces has a maskProbability of 0.5 or more, else 'bare'. */
  static conditionOf(...faces: FaceEmbedding[]): PairCondition {
    return faces.some((face) => (face.maskProbability ?? 0) >= maskedAt) ? 'masked' : 'bare';
  }

  /** The false accept rates this calibration resolves: [lowest, highest]. */
  farRange(condition: PairCondition): [number, number] {
    const points = this[condition].points;
    return [points.at(-1)!.far, points[0]!.far];
  }

  /**
   * The threshold at which `far` of the impostor pairs of that kind were accepted in calibration:
   * log-linear between the measured points. A rate outside the measured range is
   * ERR_INVALID_ARGUMENT (it would be an extrapolation).
   */
  threshold(far: number, condition: PairCondition): number {
    assertFinite('far', far);
    if (condition !== 'bare' && condition !== 'masked') throw invalidArgument('condition', "'bare' or 'masked'", condition);
    const points = this[condition].points;
    const [low, high] = this.farRange(condition);
    if (!(far >= low * (1 - 1e-9) && far <= high * (1 + 1e-9))) {
      throw new MaskFaceError(
        `A false accept rate of ${far} is outside what the calibration of ${this.model} measured for ${condition} faces (${low} to ${high})`,
        'ERR_INVALID_ARGUMENT',
        { details: { argument: 'far', far, range: [low, high] } },
      );
    }
    for (let i = 0; i < points.length - 1; i++) {
      const a = points[i]!;
      const b = points[i + 1]!;
      if (far <= a.far && far >= b.far) {
        const f = Math.log(far / a.far) / Math.log(b.far / a.far);
        return a.threshold + f * (b.threshold - a.threshold);
      }
    }
    return points.at(-1)!.threshold;
  }
}

/** Options of verify(). */
export interface VerifyOptions {
  /** Target false accept rate, answered from the model's calibration. Default 1e-3. */
  far?: number;
  /** A threshold of your own instead (no calibration needed). */
  threshold?: number;
}

/** The answer of verify(). */
export interface Verification {
  /** Cosine similarity of the two embeddings. */
  readonly score: number;
  readonly threshold: number;
  /** score >= threshold. */
  readonly same: boolean;
  /** The distribution the threshold came from: 'masked' when either face wears a mask. */
  readonly condition: PairCondition;
  /** The false accept rate asked for, or null with a threshold of your own. */
  readonly far: number | null;
}

/**
 * 1:1 verification: are two faces the same person? The threshold comes from the model's shipped
 * calibration at `far` (default 1e-3), from the masked distribution when either face's
 * maskProbability is 0.5 or more: masked faces score lower, so they get a lower threshold at the
 * same false accept rate. A model without a calibration needs `threshold` (else
 * ERR_INVALID_ARGUMENT); embeddings of two models are ERR_MODEL_MISMATCH.
 */
export function verify(a: FaceEmbedding, b: FaceEmbedding, options: VerifyOptions = {}): Verification {
  if (!(a instanceof FaceEmbedding)) throw invalidArgument('a', 'FaceEmbedding', a);
  if (!(b instanceof FaceEmbedding)) throw invalidArgument('b', 'FaceEmbedding', b);
  assertObject('options', options);
  const score = a.similarity(b);
  const condition = ScoreCalibration.conditionOf(a, b);
  const threshold = thresholdOf(a.model, condition, options);
  return { score, threshold, same: score >= threshold, condition, far: options.threshold === undefined ? (options.far ?? 1e-3) : null };
}

/**
 * The threshold of `options`: given, or at `far` from the model's calibration. Exactly one of the
 * two may be given; with neither, far = `defaultFar` (null: one is required).
 */
export function thresholdOf(model: ModelFingerprint, condition: PairCondition, options: { far?: number; threshold?: number }, defaultFar: number | null = 1e-3): number {
  if (options.threshold !== undefined && options.far !== undefined) {
    throw invalidArgument('options', 'either far or threshold, not both', options);
  }
  if (options.threshold !== undefined) return assertFinite('options.threshold', options.threshold);
  const far = options.far ?? defaultFar;
  if (far === null) throw invalidArgument('options', 'a threshold or a false accept rate (far)', options);
  assertFinite('options.far', far);
  const calibration = ScoreCalibration.for(model);
  if (!calibration) {
    throw new MaskFaceError(
      `The model ${model.name ?? model.id.slice(0, 12)} has no calibration: pass a threshold of your own`,
      'ERR_INVALID_ARGUMENT',
      { details: { argument: 'options.far' } },
    );
  }
  return calibration.threshold(far, condition);
}
