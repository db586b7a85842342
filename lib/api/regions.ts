/**
 * Region maps of masked-face (CAL) models: the per-class planes of a map, and the mean mask
 * probability over the lower face.
 * @module
 */
import { MaskFaceError } from './errors.js';

/** The region classes of a masked-face model, in the contract's default order. */
export const regionClasses = ['face', 'mask', 'background'] as const;
export type RegionClass = (typeof regionClasses)[number];

/** Class probabilities per cell of the aligned frame (visible face, mask, background). */
export interface RegionMap {
  readonly width: number;
  readonly height: number;
  /** Order of the planes in `data` (from the model's `maskface.regions` metadata). */
  readonly classes: readonly RegionClass[];
  /** 3 x height x width, planar, one plane per entry of `classes`. */
  readonly data: Float32Array;
}

/**
 * Reads the plane order of a model's region output from its `maskface.regions` metadata
 * (e.g. "face,mask,background"); absent means the contract's default order.
 */
export function parseRegionClasses(text: string | undefined): readonly RegionClass[] {
  if (text === undefined) return regionClasses;
  const classes = text.split(',').map((name) => name.trim());
  const isOrder =
    classes.length === regionClasses.length && regionClasses.every((name) => classes.includes(name));
  if (!isOrder) {
    throw new MaskFaceError(
      `Model metadata maskface.regions='${text}' is not an order of ${regionClasses.join(', ')}`,
      'ERR_MODEL_LOAD',
    );
  }
  return Object.freeze(classes as RegionClass[]);
}

/** The height x width plane of one class: a view into `map.data`, not a copy. */
export function regionPlane(map: RegionMap, name: RegionClass): Float32Array {
  const size = map.width * map.height;
  const index = map.classes.indexOf(name);
  return map.data.subarray(index * size, (index + 1) * size);
}

/**
 * The fixed face-region prior of the training labels, in 112x112 template pixels: an ellipse
 * around the ArcFace landmarks from forehead to chin.
 */
const facePrior = { centreX: 56, centreY: 58, semiAxisX: 40, semiAxisY: 52 } as const;
/** Template row of the nose tip (71.7): the lower face (mouth and chin) is at or below it. */
const lowerFaceTop = 72;
const templateSize = 112;

const lowerFaceCellCache = new Map<string, Uint32Array>();

/**
 * Indices of the cells of a height x width map whose centre, in template pixels, lies inside the
 * face prior and at or below the nose tip. On the 28x28 map a cell covers 4x4 template pixels
 * and cell (i, j) has its centre at (4j + 1.5, 4i + 1.5).
 */
export function lowerFaceCells(width: number, height: number): Uint32Array {
  const key = `${width}x${height}`;
  let cells = lowerFaceCellCache.get(key);
  if (cells === undefined) {
    const list: number[] = [];
    const stepX = templateSize / width;
    const stepY = templateSize / height;
    for (let i = 0; i < height; i++) {
      const y = (i + 0.5) * stepY - 0.5;
      if (y < lowerFaceTop) continue;
      for (let j = 0; j < width; j++) {
        const x = (j + 0.5) * stepX - 0.5;
        const dx = (x - facePrior.centreX) / facePrior.semiAxisX;
        const dy = (y - facePrior.centreY) / facePrior.semiAxisY;
        if (dx * dx + dy * dy <= 1) list.push(i * width + j);
      }
    }
    cells = Uint32Array.from(list);
    lowerFaceCellCache.set(key, cells);
  }
  return cells;
}

/**
 * Mean P[mask] over the lower face (mouth and chin) of the face prior: about 1 for a worn mask,
 * about 0 for a bare face. A summary of the region map, not a calibrated probability.
 */
export function lowerFaceMaskProbability(map: RegionMap): number {
  const mask = regionPlane(map, 'mask');
  const cells = lowerFaceCells(map.width, map.height);
  let sum = 0;
  for (const cell of cells) sum += mask[cell]!;
  return sum / cells.length; // NaN only for a map one cell high, which has no lower face
}
