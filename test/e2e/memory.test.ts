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
