// The lower-face mask probability written out from its definition, independently of
// lib/api/regions.ts: 28x28 cells of 4x4 template pixels, cell (i, j) centred at (4j + 1.5, 4i + 1.5);
// the cells inside the face-prior ellipse (centre (56, 58), semi-axes 40 x 52) and at or below
// the nose tip line y = 72; the mean of P[mask] over them.
export const regionSize = 28;

export function referenceMaskProbability(mask: ArrayLike<number>): number {
  let sum = 0;
  let cells = 0;
  for (let i = 0; i < regionSize; i++) {
    for (let j = 0; j < regionSize; j++) {
      const x = 4 * j + 1.5;
      const y = 4 * i + 1.5;
      if (y >= 72 && ((x - 56) / 40) ** 2 + ((y - 58) / 52) ** 2 <= 1) {
        sum += mask[i * regionSize + j]!;
        cells++;
      }
    }
  }
  return sum / cells;
}
