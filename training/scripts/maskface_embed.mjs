// Embeds aligned face crops with maskface's own runtime (the built addon of this checkout), for
// models only maskface runs (custom ops such as maskface::QLinearPRelu).
// Usage: node maskface_embed.mjs <model.onnx> <crops.u8> <count> <outDir> [side]
// crops.u8: count x side x side x 3 uint8 RGB (side 112 unless given). Writes <outDir>/embedding.f32 (count x dim, unit
// length) and, for models with region maps, <outDir>/regions.f32 (count x 3 x h x w); prints
// {"dim", "regions": [3, h, w] | null, "ms"}.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FaceRecognizer } from '../../dist/esm/index.js';

const [model, cropsPath, countText, outDir, sideText = '112'] = process.argv.slice(2);
const count = Number(countText);
const side = Number(sideText);
const size = side * side * 3;
const crops = readFileSync(cropsPath);
if (crops.length !== count * size) throw new Error(`${cropsPath} has ${crops.length} bytes; expected ${count} crops of ${side}x${side}x3`);
const recognizer = await FaceRecognizer.load(model, { cpu: { intraOpThreads: 2 } });
const started = performance.now();
const embeddings = [];
const regions = [];
let regionShape = null;
for (let start = 0; start < count; start += 32) {
  const faces = [];
  for (let i = start; i < Math.min(count, start + 32); i++) {
    faces.push({ data: new Uint8Array(crops.buffer, crops.byteOffset + i * size, size), width: side, height: side });
  }
  const batch = await recognizer.embedBatch(faces);
  embeddings.push(Buffer.from(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength));
  for (let i = 0; i < batch.count; i++) {
    const map = batch.at(i).regions;
    if (!map) continue;
    regionShape = [3, map.height, map.width];
    regions.push(Buffer.from(map.data.buffer, map.data.byteOffset, map.data.byteLength));
  }
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'embedding.f32'), Buffer.concat(embeddings));
if (regionShape) writeFileSync(join(outDir, 'regions.f32'), Buffer.concat(regions));
await recognizer.dispose();
process.stdout.write(`${JSON.stringify({ dim: recognizer.model.dim, regions: regionShape, ms: performance.now() - started })}\n`);
