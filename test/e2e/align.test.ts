import t from 'tap';
import { alignFace, alignmentMatrix, arcfaceTemplate112, faceTensor } from '../../dist/esm/index.js';
import { syntheticFace } from '../helpers/faces.js';

// Independent float64 reference: out(x, y) samples the image at M (x, y, 1), bilinear, zero border.
function referenceTensor(image: { data: Uint8Array; width: number; height: number }, m: Float64Array, size: number, mean: number, std: number): Float64Array {
  const out = new Float64Array(3 * size * size);
  const pixel = (x: number, y: number, c: number) =>
    x < 0 || y < 0 || x >= image.width || y >= image.height ? 0 : image.data[(y * image.width + x) * 3 + c]!;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const sx = m[0]! * x + m[1]! * y + m[2]!;
      const sy = m[3]! * x + m[4]! * y + m[5]!;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      for (let c = 0; c < 3; c++) {
        const v =
          (1 - fy) * ((1 - fx) * pixel(x0, y0, c) + fx * pixel(x0 + 1, y0, c)) +
          fy * ((1 - fx) * pixel(x0, y0 + 1, c) + fx * pixel(x0 + 1, y0 + 1, c));
        out[c * size * size + y * size + x] = (v - mean) / std;
      }
    }
  }
  return out;
}

function similarity(scale: number, angle: number, tx: number, ty: number) {
  const a = scale * Math.cos(angle);
  const b = scale * Math.sin(angle);
  return (x: number, y: number): [number, number] => [a * x - b * y + tx, b * x + a * y + ty];
}

t.test('alignment matches a float64 reference within 1e-4', async (t) => {
  const image = syntheticFace(3, 257, 199);
  for (const [scale, angle, tx, ty] of [
    [1.7, 0.3, 40, 20],
    [0.8, -0.5, -10, 30],
    [2.5, 2.0, 200, 150], // partly outside the image
  ] as const) {
    const map = similarity(scale, angle, tx, ty);
    const landmarks = Array.from({ length: 5 }, (_, i) => map(arcfaceTemplate112[2 * i]!, arcfaceTemplate112[2 * i + 1]!)).flat();
    const matrix = alignmentMatrix(landmarks);
    const got = faceTensor({ ...image, landmarks }, { mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] });
    const want = referenceTensor(image, matrix, 112, 127.5, 127.5);
    let maxError = 0;
    for (let i = 0; i < want.length; i++) maxError = Math.max(maxError, Math.abs(got[i]! - want[i]!));
    t.ok(maxError < 1e-4, `scale ${scale} angle ${angle}: max error ${maxError.toExponential(2)}`);
  }
});

t.test('a known similarity is recovered from its landmarks (round trip)', async (t) => {
  const map = similarity(1.9, -0.7, 31.5, 64.25);
  const landmarks = Array.from({ length: 5 }, (_, i) => map(arcfaceTemplate112[2 * i]!, arcfaceTemplate112[2 * i + 1]!));
  const m = alignmentMatrix(landmarks);
  for (const [x, y] of [[0, 0], [111, 0], [50, 77]] as const) {
    const [ex, ey] = map(x, y);
    t.ok(Math.abs(m[0]! * x + m[1]! * y + m[2]! - ex) < 1e-9 && Math.abs(m[3]! * x + m[4]! * y + m[5]! - ey) < 1e-9, `point (${x}, ${y})`);
  }
});

t.test('alignFace returns an aligned RGB crop; warping a crop by the identity leaves it unchanged', async (t) => {
  const crop = syntheticFace(9);
  const aligned = alignFace(crop, arcfaceTemplate112);
  t.equal(aligned.width, 112);
  t.equal(aligned.format, 'rgb');
  t.same(Buffer.from(aligned.data), Buffer.from(crop.data));
  const bgr = alignFace({ ...crop, format: 'bgr' }, arcfaceTemplate112);
  t.equal(bgr.format, 'bgr');
  const grey = alignFace({ data: crop.data.subarray(0, 112 * 112), width: 112, height: 112, format: 'gray' }, arcfaceTemplate112);
  t.equal(grey.data.length, 112 * 112 * 3);
});

t.test('BAD CALL - degenerate landmarks', async (t) => {
  t.throws(() => alignmentMatrix(new Array(10).fill(5)), { code: 'ERR_INVALID_ARGUMENT', message: /degenerate/ });
  t.throws(() => alignmentMatrix([1, 2, 3]), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => alignmentMatrix([[1, 2], [3, NaN], [5, 6], [7, 8], [9, 10]]), { code: 'ERR_INVALID_ARGUMENT' });
});
