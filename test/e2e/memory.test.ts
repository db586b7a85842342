// Structural check, not a benchmark: repeated embed and gallery calls do not grow RSS.
import t from 'tap';
import { FaceRecognizer, Gallery } from '../../dist/esm/index.js';
import { syntheticFace } from '../helpers/faces.js';

t.test('RSS stays flat over repeated embed, add, search and remove calls', async (t) => {
  await using rec = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 1 } });
  await using gallery = new Gallery<number>({ model: rec.model });
  const face = syntheticFace(31);
  const round = async (i: number) => {
    const embedding = await rec.embed(face);
    gallery.add(i, embedding);
    await gallery.search(embedding, { k: 5 });
    if (i >= 10) gallery.remove(i - 10);
  };
  for (let i = 0; i < 60; i++) await round(i); // warm-up: arenas and pools reach their size
  global.gc?.();
  const before = process.memoryUsage().rss;
  for (let i = 60; i < 360; i++) await round(i);
  global.gc?.();
  const growthMb = (process.memoryUsage().rss - before) / 2 ** 20;
  t.comment(`RSS growth over 300 rounds: ${growthMb.toFixed(1)} MB`);
  t.ok(growthMb < 40, `RSS grew ${growthMb.toFixed(1)} MB (< 40 MB)`);
  t.equal(gallery.size, 10);
});

t.test('RSS stays bounded over embedBatch calls whose batch size keeps changing', async (t) => {
  await using rec = await FaceRecognizer.load('mobilefacenet', { cpu: { intraOpThreads: 1 } });
  const faces = Array.from({ length: 32 }, (_, i) => syntheticFace(i));
  let state = 5;
  const size = () => 1 + Math.floor(((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32) * 32);
  const cycle = async () => {
    for (let i = 0; i < 30; i++) await rec.embedBatch(faces.slice(0, size()));
    global.gc?.();
    return process.memoryUsage().rss / 2 ** 20;
  };
  const warm = Math.max(await cycle(), await cycle()); // every size seen at least once, mostly
  const later: number[] = [];
  for (let i = 0; i < 4; i++) later.push(await cycle());
  t.comment(`RSS after warm-up ${warm.toFixed(0)} MB, then ${later.map((v) => v.toFixed(0)).join(', ')} MB`);
  t.ok(Math.max(...later) < warm + 100, `RSS stays within 100 MB of its warm-up peak (${Math.max(...later).toFixed(0)} vs ${warm.toFixed(0)} MB)`);
});
