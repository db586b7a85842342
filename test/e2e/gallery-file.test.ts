// Gallery files: save and load give back the same gallery; a damaged, truncated, foreign or
// missing file is a typed error and never a gallery; a process killed during saves leaves a file
// that loads to the last acknowledged save or a later one.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { EmbeddingBatch, FaceEmbedding, Gallery, MaskFaceError } from '../../dist/esm/index.js';
import { inFreshProcess, repoRoot } from '../helpers/data.js';

const model = { id: 'c'.repeat(64), dim: 37, name: 'test' };
const work = mkdtempSync(join(tmpdir(), 'maskface-gallery-file-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}
function vectors(count: number, seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: count * model.dim }, next);
}

async function codeOf(promise: Promise<unknown>): Promise<{ code: string | undefined; details: Record<string, unknown> | undefined }> {
  try {
    await promise;
    return { code: undefined, details: undefined };
  } catch (error) {
    if (!(error instanceof MaskFaceError)) throw error;
    return { code: error.code, details: error.details };
  }
}

/** A gallery of 300 rows: string and number ids, some ids with two rows, some removed. */
async function sampleGallery(): Promise<Gallery<string | number>> {
  const gallery = new Gallery<string | number>({ model, threads: 1 });
  const ids = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? i : `person-${i % 250}-é`));
  await gallery.addMany(ids, EmbeddingBatch.fromVectors(vectors(300, 1), model));
  for (let i = 0; i < 300; i += 17) gallery.remove(ids[i]!);
  return gallery;
}

t.test('save then load gives the same ids, sizes and search results', async (t) => {
  await using gallery = await sampleGallery();
  const path = join(work, 'people.mfg');
  await gallery.save(path);
  await using loaded = await Gallery.load<string | number>(path, { model, threads: 1 });
  t.equal(loaded.size, gallery.size);
  t.same(loaded.ids(), gallery.ids(), 'ids in the same order, strings and numbers kept apart');
  const queries = EmbeddingBatch.fromVectors(vectors(20, 2), model);
  const [a, b] = await Promise.all([gallery.searchBatch(queries, { k: 15 }), loaded.searchBatch(queries, { k: 15 })]);
  t.same(Array.from(b.ids), Array.from(a.ids), 'the same matches');
  t.same(Array.from(b.scores), Array.from(a.scores), 'the same scores, bit for bit');
  t.same(readdirSync(work).filter((name) => name.includes('.tmp')), [], 'no temporary file left behind');

  await using empty = new Gallery({ model });
  await empty.save(join(work, 'empty.mfg'));
  await using emptyAgain = await Gallery.load(join(work, 'empty.mfg'), { model });
  t.equal(emptyAgain.size, 0, 'an empty gallery round-trips');
});

t.test('a file of another model, a missing file, a folder that does not exist', async (t) => {
  await using gallery = await sampleGallery();
  const path = join(work, 'model.mfg');
  await gallery.save(path);
  const other = await codeOf(Gallery.load(path, { model: { ...model, id: 'd'.repeat(64) } }));
  t.equal(other.code, 'ERR_MODEL_MISMATCH');
  t.equal((await codeOf(Gallery.load(path, { model: { ...model, dim: 38 } }))).code, 'ERR_MODEL_MISMATCH');
  const missing = await codeOf(Gallery.load(join(work, 'nobody.mfg'), { model }));
  t.equal(missing.code, 'ERR_IO');
  t.equal(missing.details?.errno, 'ENOENT');
  const nowhere = await codeOf(gallery.save(join(work, 'no-such-folder', 'g.mfg')));
  t.equal(nowhere.code, 'ERR_IO');
  t.equal((await codeOf(gallery.save(''))).code, 'ERR_INVALID_ARGUMENT');
  t.equal((await codeOf(gallery.save('a\0b'))).code, 'ERR_INVALID_ARGUMENT');
  t.equal((await codeOf(Gallery.load(path, { model, capacity: 5 } as never))).code, 'ERR_INVALID_ARGUMENT');
  writeFileSync(join(work, 'text.mfg'), 'this is not a gallery, but it is long enough to have a header and a footer in it, '.repeat(4));
  const text = await codeOf(Gallery.load(join(work, 'text.mfg'), { model }));
  t.equal(text.code, 'ERR_GALLERY_CORRUPT');
  t.equal(text.details?.section, 'header');
});

t.test('truncation at every 4 KiB boundary and 1,000 random bit flips: ERR_GALLERY_CORRUPT, never a gallery', async (t) => {
  await using gallery = await sampleGallery();
  const path = join(work, 'whole.mfg');
  await gallery.save(path);
  const bytes = readFileSync(path);
  t.ok(bytes.length > 40_000, `${bytes.length} bytes`);
  const damaged = join(work, 'damaged.mfg');
  const verdicts = new Map<string, number>();
  const tally = (code: string | undefined) => verdicts.set(code ?? 'loaded', (verdicts.get(code ?? 'loaded') ?? 0) + 1);
  for (let length = 0; length < bytes.length; length += 4096) {
    writeFileSync(damaged, bytes.subarray(0, length));
    tally((await codeOf(Gallery.load(damaged, { model }))).code);
  }
  for (const extra of [1, 8, 4096]) {
    writeFileSync(damaged, Buffer.concat([bytes, Buffer.alloc(extra)]));
    tally((await codeOf(Gallery.load(damaged, { model }))).code);
  }
  const next = rng(7);
  for (let i = 0; i < 1000; i++) {
    const flipped = Buffer.from(bytes);
    const bit = Math.floor(((next() + 1) / 2) * bytes.length * 8) % (bytes.length * 8);
    flipped[bit >> 3] = flipped[bit >> 3]! ^ (1 << (bit & 7));
    writeFileSync(damaged, flipped);
    tally((await codeOf(Gallery.load(damaged, { model }))).code);
  }
  t.same([...verdicts.keys()], ['ERR_GALLERY_CORRUPT'], `verdicts: ${JSON.stringify(Object.fromEntries(verdicts))}`);
});

t.test('a save while searches, adds and removes run writes a consistent snapshot', async (t) => {
  await using gallery = new Gallery<string>({ model, threads: 1 });
  const data = vectors(400, 3);
  const ids = Array.from({ length: 400 }, (_, i) => `id-${i}`);
  await gallery.addMany(ids.slice(0, 200), EmbeddingBatch.fromVectors(data.slice(0, 200 * model.dim), model));
  const path = join(work, 'busy.mfg');
  const vectorOf = (i: number) => FaceEmbedding.fromVector(data.subarray(i * model.dim, (i + 1) * model.dim), model);
  const saving = gallery.save(path);
  const churn = (async () => {
    for (let i = 0; i < 200; i++) {
      gallery.remove(ids[i]!);
      gallery.add(ids[200 + i]!, vectorOf(200 + i));
      if (i % 20 === 0) await gallery.search(vectorOf(i), { k: 3 });
    }
  })();
  await Promise.all([saving, churn]);
  await using loaded = await Gallery.load(path, { model, threads: 1 });
  t.ok(loaded.size >= 200, `${loaded.size} rows saved`);
  let checked = 0;
  for (const id of loaded.ids()) {
    const i = Number(id.slice(3));
    const [best] = await loaded.search(vectorOf(i), { k: 1 });
    if (best?.id !== id || best.score < 0.9999) t.fail(`${id} holds another vector (best ${best?.id} ${best?.score})`);
    checked++;
  }
  t.equal(checked, loaded.size, 'every saved id holds its own vector');
});

t.test('a save behind a pending addMany, with another addMany queued after it, saves only written rows', async (t) => {
  await using gallery = new Gallery<string>({ model, threads: 1 });
  const path = join(work, 'queued.mfg');
  const data = vectors(5, 5);
  const vectorOf = (i: number) => FaceEmbedding.fromVector(data.subarray(i * model.dim, (i + 1) * model.dim), model);
  const batchOf = (from: number) => EmbeddingBatch.fromVectors(data.slice(from * model.dim, (from + 2) * model.dim), model);
  const first = gallery.addMany(['a', 'b'], batchOf(0));
  const saving = gallery.save(path);
  // Bound at once but written after the first batch: the save must not list rows not yet written.
  const second = gallery.addMany(['c', 'd'], batchOf(2));
  gallery.add('e', vectorOf(4));
  await Promise.all([first, saving, second]);
  await using loaded = await Gallery.load(path, { model, threads: 1 });
  t.ok(loaded.has('a') && loaded.has('b'), `the rows written before the save are in it (${loaded.ids().join(', ')})`);
  for (const id of loaded.ids()) {
    const [best] = await loaded.search(vectorOf('abcde'.indexOf(id)), { k: 1 });
    t.ok(best?.id === id && best.score > 0.9999, `${id} holds its own vector`);
  }
});

t.test('kill -9 during saves, 100 times: the file always loads, to the last acknowledged save or a later one', async (t) => {
  const folder = join(work, 'kill');
  mkdirSync(folder);
  const path = join(folder, 'g.mfg');
  // The child saves versions 1, 2, 3, ... (version v: v rows, each id 'v<version>-<i>') and
  // prints each version once its save has resolved.
  const child = `
    const m = require(${JSON.stringify(repoRoot)});
    const model = ${JSON.stringify(model)};
    (async () => {
      for (let version = 1; ; version++) {
        const gallery = new m.Gallery({ model, threads: 1 });
        const data = Float32Array.from({ length: version * model.dim }, (_, i) => Math.sin(i + version));
        await gallery.addMany(Array.from({ length: version }, (_, i) => 'v' + version + '-' + i), m.EmbeddingBatch.fromVectors(data, model));
        await gallery.save(${JSON.stringify(path)});
        process.stdout.write(version + '\\n');
        await gallery.dispose();
      }
    })();
  `;
  const next = rng(11);
  let loads = 0;
  for (let run = 0; run < 100; run++) {
    const acknowledged = await new Promise<number>((resolve) => {
      const proc = spawn(process.execPath, ['-e', child], { stdio: ['ignore', 'pipe', 'inherit'] });
      let last = 0;
      let text = '';
      proc.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const lines = text.split('\n');
        for (const line of lines.slice(0, -1)) last = Math.max(last, Number(line));
        text = lines.at(-1)!;
      });
      // Kill somewhere from before the first save to well into the saves.
      setTimeout(() => proc.kill('SIGKILL'), 150 + ((next() + 1) / 2) * 600);
      proc.on('exit', () => resolve(last));
    });
    if (!existsSync(path)) {
      if (acknowledged > 0) t.fail(`run ${run}: save ${acknowledged} was acknowledged but there is no file`);
      continue;
    }
    const result = await Gallery.load(path, { model, threads: 1 }).then(
      async (gallery) => {
        const ids = gallery.ids();
        await gallery.dispose();
        return { ids };
      },
      (error: MaskFaceError) => ({ error }),
    );
    if ('error' in result) {
      t.fail(`run ${run}: ${result.error.code}: ${result.error.message}`);
      continue;
    }
    const version = result.ids.length;
    const whole = result.ids.every((id, i) => id === `v${version}-${i}`);
    if (!whole || version < acknowledged) t.fail(`run ${run}: loaded ${version} rows (whole: ${whole}), acknowledged ${acknowledged}`);
    loads++;
  }
  t.ok(loads >= 50, `${loads} of 100 kills left a file that loaded whole, at or past the last acknowledged save`);
  t.same(readdirSync(folder).filter((name) => name !== 'g.mfg' && !name.includes('.tmp')), [], 'nothing else in the folder');
});

t.test('int8 galleries save their f32 vectors and load with the same answers', async (t) => {
  const data = vectors(400, 75);
  const ids = Array.from({ length: 400 }, (_, i) => `p${i}`);
  await using coded = new Gallery<string>({ model, storage: 'int8' });
  await using full = new Gallery<string>({ model });
  await coded.addMany(ids, EmbeddingBatch.fromVectors(data, model));
  await full.addMany(ids, EmbeddingBatch.fromVectors(data, model));
  const [codedPath, fullPath] = [join(work, 'coded.mfg'), join(work, 'full-for-int8.mfg')];
  await coded.save(codedPath);
  await full.save(fullPath);
  t.equal(readFileSync(codedPath).length, readFileSync(fullPath).length, 'the same size as an f32 gallery file');
  const queries = EmbeddingBatch.fromVectors(vectors(6, 76), model);
  const want = await Promise.all(Array.from({ length: 6 }, (_, q) => full.search(queries.at(q), { k: 7 })));
  for (const storage of ['int8', 'f32'] as const) {
    await using loaded = await Gallery.load<string>(codedPath, { model, storage });
    const got = await Promise.all(Array.from({ length: 6 }, (_, q) => loaded.search(queries.at(q), { k: 7 })));
    t.same(got, want, `loaded into an ${storage} gallery: the same matches and scores`);
  }
});

t.test('f16 galleries save half floats: half the vector bytes, loaded into either kind', async (t) => {
  const data = vectors(500, 71);
  const ids = Array.from({ length: 500 }, (_, i) => `p${i}`);
  await using half = new Gallery<string>({ model, storage: 'f16' });
  await using full = new Gallery<string>({ model });
  await half.addMany(ids, EmbeddingBatch.fromVectors(data, model));
  await full.addMany(ids, EmbeddingBatch.fromVectors(data, model));
  const [halfPath, fullPath] = [join(work, 'half.mfg'), join(work, 'full.mfg')];
  await half.save(halfPath);
  await full.save(fullPath);
  const saved = readFileSync(fullPath).length - readFileSync(halfPath).length;
  t.ok(Math.abs(saved - 500 * model.dim * 2) < 64, `the f16 file is ${saved} bytes smaller (2 bytes a value, padding aside)`);
  const queries = EmbeddingBatch.fromVectors(vectors(10, 72), model);
  const want = await half.searchBatch(queries, { k: 5 });
  for (const storage of ['f16', 'f32'] as const) {
    await using loaded = await Gallery.load<string>(halfPath, { model, storage });
    const got = await loaded.searchBatch(queries, { k: 5 });
    t.same(Array.from(got.ids), Array.from(want.ids), `loaded into an ${storage} gallery: the same matches`);
    // Loaded vectors are scaled to unit length again: exact in f16 (it rounds back to the same
    // halves), within rounding in f32.
    const worst = Math.max(...Array.from(got.scores, (score, i) => Math.abs(score - want.scores[i]!)));
    t.ok(storage === 'f16' ? worst === 0 : worst < 1e-3, `scores within ${worst.toExponential(1)}`);
  }
});

t.test('a load streams the rows into the gallery: peak memory is the store, not the file held twice', async (t) => {
  const big = { id: 'd'.repeat(64), dim: 512, name: 'big' };
  const count = 100_000;
  for (const storage of ['f32', 'f16'] as const) {
    const path = join(work, `big-${storage}.mfg`);
    const saved = inFreshProcess(`
      const model = ${JSON.stringify(big)};
      const gallery = new m.Gallery({ model, storage: '${storage}', threads: 1 });
      let s = 12345;
      for (let start = 0; start < ${count}; start += 10000) {
        const rows = new Float32Array(10000 * model.dim).map(() => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5);
        await gallery.addMany(Array.from({ length: 10000 }, (_, i) => 'p' + (start + i)), m.EmbeddingBatch.fromVectors(rows, model));
      }
      await gallery.save(${JSON.stringify(path)});
      const probe = await gallery.search(m.FaceEmbedding.fromVector(new Float32Array(model.dim).map((_, i) => Math.sin(i)), model), { k: 3 });
      await gallery.dispose();
      return probe;`);
    t.ok(saved.ok, `${storage}: saved ${JSON.stringify(saved.error ?? '')}`);
    const loaded = inFreshProcess(`
      const { readFileSync } = await import('node:fs');
      const kib = (key) => Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(key + ':\\\\s+(\\\\d+)'))[1]) * 1024;
      const model = ${JSON.stringify(big)};
      const before = kib('VmRSS');
      const gallery = await m.Gallery.load(${JSON.stringify(path)}, { model, storage: '${storage}', threads: 1 });
      const peak = kib('VmHWM');
      const probe = await gallery.search(m.FaceEmbedding.fromVector(new Float32Array(model.dim).map((_, i) => Math.sin(i)), model), { k: 3 });
      return { growth: peak - before, size: gallery.size, hostBytes: gallery.memory.hostBytes, probe };`);
    t.ok(loaded.ok, `${storage}: loaded ${JSON.stringify(loaded.error ?? '')}`);
    const { growth, size, hostBytes, probe } = loaded.ok;
    t.equal(size, count, `${storage}: every row`);
    t.same(probe, saved.ok, `${storage}: the loaded gallery answers as the saved one did`);
    // Holding the file's vectors and the store at once would be at least twice the store.
    t.ok(growth < 1.5 * hostBytes, `${storage}: the load grew the process by ${(growth / 2 ** 20).toFixed(0)} MiB for a store of ${(hostBytes / 2 ** 20).toFixed(0)} MiB`);
    rmSync(path);
  }
});
