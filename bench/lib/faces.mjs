// Benchmark input: 112x112 RGB faces already at the network's input size (as aligned crops are),
// the same seeded pixels for every implementation. Pixel content does not change a CNN's cost.
import { Rng } from './data.mjs';

export const faceSize = 112;

/** `count` faces as maskface FaceImage records (HWC uint8 RGB). */
export function syntheticFaces(count, seed = 7) {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => {
    const data = new Uint8Array(faceSize * faceSize * 3);
    for (let y = 0; y < faceSize; y++) {
      for (let x = 0; x < faceSize; x++) {
        for (let c = 0; c < 3; c++) {
          // a smooth gradient plus noise, roughly image-like
          const value = 60 + x + y * 0.5 + c * 20 + (rng.uniform() - 0.5) * 40;
          data[(y * faceSize + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(value)));
        }
      }
    }
    return { data, width: faceSize, height: faceSize };
  });
}

/**
 * The network input maskface's preprocessing produces for these faces: NCHW float32,
 * (pixel - mean) / std with the model's metadata (mean 127, std 128, RGB).
 */
export function facesToTensor(faces, mean = 127, std = 128) {
  const plane = faceSize * faceSize;
  const tensor = new Float32Array(faces.length * 3 * plane);
  faces.forEach((face, n) => {
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) tensor[(n * 3 + c) * plane + i] = (face.data[i * 3 + c] - mean) / std;
    }
  });
  return tensor;
}

/** L2-normalises each row of a count x dim matrix in place. */
export function normalizeRows(matrix, dim) {
  for (let offset = 0; offset < matrix.length; offset += dim) {
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += matrix[offset + d] * matrix[offset + d];
    const scale = 1 / Math.sqrt(norm);
    for (let d = 0; d < dim; d++) matrix[offset + d] *= scale;
  }
  return matrix;
}
