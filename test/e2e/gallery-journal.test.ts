// Gallery journals (Gallery.open): changes survive a reopen without a save, save() folds them into
// the file, a torn last record is dropped and nothing else is, damage and foreign journals are
// typed errors, and a process killed at random moments during appends and saves never loses an
// acknowledged change.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { EmbeddingBatch, FaceEmbedding, Gallery, MaskFaceError } from '../../dist/esm/index.js';
import { repoRoot } from '../helpers/data.js';

const model = { id: 'd'.repeat(64), dim: 16, name: 'test' };
const work = mkdtempSync(join(tmpdir(), 'maskface-gallery-journal-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

let folders = 0;
function freshFolder(): string {
  const folder = join(work, `f${folders++}`);
  mkdirSync(folder);
  return folder;
}

/** The vector of change i (the same formula runs in the killed child below). */
function vectorOf(i: number): Float32Array {
  return Float32Array.from({ length: model.dim }, (_, j) => Math.sin(i * 7.1 + j * 1.3) + (j === i % model.dim ? 2 : 0));
}
function embeddingOf(i: number): FaceEmbedding {
  return FaceEmbedding.fromVector(vectorOf(i), model);
}

async function codeOf(promise: Promise<unknown>): Promise<{ code: string | undefined; details: Record<string, unknown> | undefined }> {
  try {
    const value = await promise;
    if (value instanceof Gallery) await value.dispose();
    return { code: undefined, details: undefined };
  } catch (error) {
    if (!(error instanceof MaskFaceError)) throw error;
    return { code: error.code, details: error.details };
  }
}

/** ids and the best match of every held vector, as a comparable description of a gallery. */
async function describe(gallery: Gallery<string | number>): Promise<{ ids: (string | number)[]; size: number; best: string }> {
  const queries = EmbeddingBatch.fromVectors(Float32Array.from({ length: 12 * model.dim }, (_, i) => vectorOf(Math.floor(i / model.dim))[i % model.dim]!), model);
  const matches = await gallery.searchBatch(queries, { k: 3 });
  const best = Array.from(matches.ids, (id, i) => `${String(id)}:${matches.scores[i]!.toFixed(5)}`).join(',');
  return { ids: [...gallery.ids()].sort((a, b) => String(a).localeCompare(String(b))), size: gallery.size, best };
}

/** Applies changes 0..count-1 of a fixed script: adds, a batch, removes, number ids. */
async function applyScript(gallery: Gallery<string | number>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (i % 7 === 3) gallery.remove(`p${i - 2}`);
    else if (i % 11 === 5) await gallery.addMany([i, `p${i}`], EmbeddingBatch.fromVectors(Float32Array.from([...vectorOf(i), ...vectorOf(i + 1)]), model));
    else gallery.add(`p${i % 9 === 0 ? i - 9 : i}`, embeddingOf(i));
  }
}

t.test('changes survive a reopen without a save; save() folds the journal into the file', async (t) => {
  const path = join(freshFolder(), 'people.mfg');
  const gallery = await Gallery.open<string | number>(path, { model, threads: 1 });
  t.equal(gallery.size, 0, 'a new gallery is empty');
  t.ok(statSync(path).isFile(), 'and has a file at once');
  await applyScript(gallery, 40);
  await gallery.flush();
  t.equal(gallery.journal?.pending, 0, 'nothing pending after flush()');
  t.ok(gallery.journal!.unsaved >= 40, 'every change is in the journal, none in the file');
  const expected = await describe(gallery);
  await gallery.dispose();

  await using memory = new Gallery<string | number>({ model, threads: 1 });
  await applyScript(memory, 40);
  t.same(await describe(memory), expected, 'the journaled gallery holds what an in-memory one holds');

  const reopened = await Gallery.open<string | number>(path, { model, threads: 1 });
  t.same(await describe(reopened), expected, 'reopened: the journal replayed onto the file');
  await reopened.save();
  t.equal(reopened.journal?.unsaved, 0, 'save() folds the journal into the file');
  t.equal(reopened.journal?.bytes, 64, 'and starts the journal over (its header only)');
  reopened.add('late', embeddingOf(99));
  await reopened.dispose();

  await using fileAlone = await Gallery.load<string | number>(path, { model, threads: 1 });
  t.same(await describe(fileAlone), expected, 'Gallery.load reads the file alone: the state of the last save');
  await using again = await Gallery.open<string | number>(path, { model, threads: 1 });
  t.ok(again.has('late'), 'a change after the save is replayed from the new journal');
  t.equal(again.size, expected.size + 1);
});

t.test('durable writes resolve once on disk; options are checked', async (t) => {
  const path = join(freshFolder(), 'g.mfg');
  await using gallery = await Gallery.open<string>(path, { model, threads: 1 });
  const added = gallery.add('a', embeddingOf(1), { durable: true });
  t.ok(added instanceof Promise, 'add(..., { durable: true }) returns a promise');
  t.equal(await added, gallery, 'that resolves to the gallery');
  t.equal(gallery.journal?.pending, 0, 'with the record on disk');
  t.equal(gallery.add('b', embeddingOf(2), { durable: false }), gallery, 'durable: false returns the gallery');
  t.equal(await gallery.remove('a', { durable: true }), 1, 'remove(..., { durable: true }) resolves to the count');
  t.equal(await gallery.remove('nobody', { durable: true }), 0);
  t.equal((await codeOf(Promise.resolve().then(() => gallery.add('c', embeddingOf(3), { durable: 1 as unknown as boolean })))).code, 'ERR_INVALID_ARGUMENT');

  await using plain = new Gallery<string>({ model });
  t.equal((await codeOf(Promise.resolve().then(() => plain.add('a', embeddingOf(1), { durable: true })))).code, 'ERR_INVALID_ARGUMENT', 'durable needs a journal');
  t.equal((await codeOf(plain.flush())).code, 'ERR_INVALID_ARGUMENT', 'so does flush()');
  t.equal((await codeOf(plain.save())).code, 'ERR_INVALID_ARGUMENT', 'save() without a path needs a file of its own');
  t.equal(plain.journal, null, 'a gallery without a journal says so');
});

t.test('one writer per journal', async (t) => {
  const path = join(freshFolder(), 'g.mfg');
  await using first = await Gallery.open(path, { model });
  const second = await codeOf(Gallery.open(path, { model }));
  t.equal(second.code, 'ERR_IO', 'a second open of the same gallery is refused');
  t.equal(second.details?.errno, 'EAGAIN');
  t.equal(first.size, 0, 'the first stays open');
});

t.test('saves and changes running together: the reopened gallery is the last state', async (t) => {
  const path = join(freshFolder(), 'g.mfg');
  const gallery = await Gallery.open<string | number>(path, { model, threads: 1 });
  const saves: Promise<void>[] = [];
  for (let round = 0; round < 20; round++) {
    gallery.add(`r${round}`, embeddingOf(round));
    if (round % 3 === 0) gallery.remove(`r${round - 2}`);
    const batch = gallery.addMany([`b${round}`], EmbeddingBatch.fromVectors(vectorOf(round + 50), model));
    saves.push(gallery.save());
    if (round % 4 === 0) await batch;
  }
  await Promise.all(saves);
  const expected = await describe(gallery);
  await gallery.dispose();
  await using reopened = await Gallery.open<string | number>(path, { model, threads: 1 });
  t.same(await describe(reopened), expected);
});

/** A journal of `count` changes beside an empty file; returns its path and the states after each. */
async function journalWith(count: number): Promise<{ folder: string; states: Awaited<ReturnType<typeof describe>>[] }> {
  const folder = freshFolder();
  const gallery = await Gallery.open<string | number>(join(folder, 'g.mfg'), { model, threads: 1 });
  const memory = new Gallery<string | number>({ model, threads: 1 });
  const states = [await describe(memory)];
  for (let i = 0; i < count; i++) {
    for (const g of [gallery, memory]) {
      if (i % 5 === 4) g.remove(i - 3);
      else g.add(i, embeddingOf(i));
    }
    states.push(await describe(memory));
  }
  await gallery.dispose();
  await memory.dispose();
  return { folder, states };
}

/** Opens a copy of the folder with `journal` as its journal bytes. */
async function openWithJournal(folder: string, journal: Uint8Array): Promise<{ code?: string; state?: Awaited<ReturnType<typeof describe>> }> {
  const copy = freshFolder();
  copyFileSync(join(folder, 'g.mfg'), join(copy, 'g.mfg'));
  writeFileSync(join(copy, 'g.mfg.journal'), journal);
  try {
    const gallery = await Gallery.open<string | number>(join(copy, 'g.mfg'), { model, threads: 1 });
    const state = await describe(gallery);
    await gallery.dispose();
    return { state };
  } catch (error) {
    if (!(error instanceof MaskFaceError)) throw error;
    return { code: error.code };
  } finally {
    rmSync(copy, { recursive: true });
  }
}

t.test('a journal cut anywhere replays its whole records; a cut header is corrupt', async (t) => {
  const { folder, states } = await journalWith(12);
  const bytes = readFileSync(join(folder, 'g.mfg.journal'));
  // Record ends: where a cut leaves k whole records.
  let failures = 0;
  let last = -1;
  for (let cut = 0; cut < bytes.length; cut++) {
    const result = await openWithJournal(folder, bytes.subarray(0, cut));
    if (cut < 64) {
      if (result.code !== 'ERR_GALLERY_CORRUPT') failures++;
      continue;
    }
    const k = states.findIndex((state) => JSON.stringify(state) === JSON.stringify(result.state));
    if (result.code || k < last || k < 0) {
      failures++;
      t.fail(`cut at ${cut}: ${result.code ?? `state ${k}`}`);
    }
    last = Math.max(last, k);
  }
  t.equal(failures, 0, `${bytes.length} cuts: each one a prefix of the changes, never fewer than an earlier cut`);
  t.equal(last, states.length - 2, 'a cut before the last byte drops only the last change');
});

t.test('1,000 bit flips in a journal: each one is ERR_GALLERY_CORRUPT, or drops just the torn last record', async (t) => {
  const { folder, states } = await journalWith(15);
  const bytes = readFileSync(join(folder, 'g.mfg.journal'));
  // The last record starts after the last intact one before it: find it by cutting.
  const whole = JSON.stringify(states.at(-1));
  const withoutLast = JSON.stringify(states.at(-2));
  let state = 1;
  const next = () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const outcomes = { corrupt: 0, version: 0, droppedLast: 0 };
  for (let run = 0; run < 1000; run++) {
    const damaged = Uint8Array.from(bytes);
    const at = Math.floor(next() * damaged.length);
    damaged[at] = damaged[at]! ^ (1 << Math.floor(next() * 8));
    const result = await openWithJournal(folder, damaged);
    if (result.code === 'ERR_GALLERY_CORRUPT') outcomes.corrupt++;
    else if (result.code === 'ERR_GALLERY_VERSION') outcomes.version++;
    else if (JSON.stringify(result.state) === withoutLast && at >= bytes.length - 120) outcomes.droppedLast++;
    else t.fail(`flip at byte ${at}: ${result.code ?? (JSON.stringify(result.state) === whole ? 'read as if intact' : 'another state')}`);
  }
  t.equal(outcomes.corrupt + outcomes.version + outcomes.droppedLast, 1000, JSON.stringify(outcomes));
  t.ok(outcomes.corrupt > 800, 'most flips are reported as damage');
});

t.test('a journal of another gallery, or newer than its file, is refused', async (t) => {
  const a = freshFolder();
  const b = freshFolder();
  for (const folder of [a, b]) {
    await using gallery = await Gallery.open(join(folder, 'g.mfg'), { model });
    gallery.add('x', embeddingOf(1));
  }
  copyFileSync(join(b, 'g.mfg.journal'), join(a, 'g.mfg.journal'));
  const foreign = await codeOf(Gallery.open(join(a, 'g.mfg'), { model }));
  t.equal(foreign.code, 'ERR_GALLERY_CORRUPT', "another gallery's journal");
  t.equal(foreign.details?.section, 'journal');

  const c = freshFolder();
  const path = join(c, 'g.mfg');
  {
    await using gallery = await Gallery.open(path, { model });
    gallery.add('x', embeddingOf(1));
  }
  copyFileSync(path, join(c, 'old.mfg'));
  {
    await using gallery = await Gallery.open(path, { model });
    gallery.add('y', embeddingOf(2));
    await gallery.save();
    gallery.add('z', embeddingOf(3));
  }
  copyFileSync(join(c, 'old.mfg'), path);
  t.equal((await codeOf(Gallery.open(path, { model }))).code, 'ERR_GALLERY_CORRUPT', 'an older copy of the file under a newer journal');

  const d = freshFolder();
  writeFileSync(join(d, 'g.mfg.journal'), readFileSync(join(c, 'g.mfg.journal')));
  t.equal((await codeOf(Gallery.open(join(d, 'g.mfg'), { model }))).code, 'ERR_GALLERY_CORRUPT', 'a journal whose file is missing');
  t.equal((await codeOf(Gallery.open(join(c, 'g.mfg'), { model: { ...model, dim: 8 } }))).code, 'ERR_MODEL_MISMATCH', 'another model');
});

t.test('after a torn tail is cut off, new changes append and replay', async (t) => {
  const { folder } = await journalWith(6);
  const journal = join(folder, 'g.mfg.journal');
  truncateSync(journal, statSync(journal).size - 5);
  {
    await using gallery = await Gallery.open<number>(join(folder, 'g.mfg'), { model });
    t.notOk(gallery.has(5), 'the torn record is gone');
    await gallery.add(100, embeddingOf(100), { durable: true });
  }
  await using gallery = await Gallery.open<number>(join(folder, 'g.mfg'), { model });
  t.ok(gallery.has(100) && gallery.has(3) && !gallery.has(5), 'the change after the cut replays; the torn one stays gone');
});

t.test('kill -9 during journal appends and saves, 100 times: every acknowledged change is there', async (t) => {
  // The child opens a new gallery and runs change 0, 1, 2, ...: add 'c<i>' (every 6th removes
  // 'c<i-4>' instead), every third one durable and printed once it resolves (covering the ones
  // before it), a save every 25 changes. The parent reopens and finds the state equal to the
  // first k changes for some k at or after the last printed one.
  const child = (path: string) => `
    const m = require(${JSON.stringify(repoRoot)});
    const model = ${JSON.stringify(model)};
    const vectorOf = ${vectorOf.toString().replace('function vectorOf', 'function')};
    (async () => {
      const gallery = await m.Gallery.open(${JSON.stringify(path)}, { model, threads: 1 });
      for (let i = 0; ; i++) {
        const change = i % 6 === 5 ? gallery.remove('c' + (i - 4), { durable: i % 3 === 2 })
          : gallery.add('c' + i, m.FaceEmbedding.fromVector(vectorOf(i), model), { durable: i % 3 === 2 });
        if (i % 3 === 2) { await change; process.stdout.write(i + '\\n'); }
        if (i % 25 === 24) await gallery.save();
      }
    })();
  `;
  const stateAfter = (k: number): string[] => {
    const held = new Set<string>();
    for (let i = 0; i < k; i++) {
      if (i % 6 === 5) held.delete(`c${i - 4}`);
      else held.add(`c${i}`);
    }
    return [...held].sort();
  };
  let seed = 5;
  const next = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  let checked = 0;
  let acknowledgedTotal = 0;
  for (let run = 0; run < 100; run++) {
    const path = join(freshFolder(), 'g.mfg');
    const acknowledged = await new Promise<number>((resolve) => {
      const proc = spawn(process.execPath, ['-e', child(path)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let last = -1;
      let text = '';
      proc.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const lines = text.split('\n');
        for (const line of lines.slice(0, -1)) last = Math.max(last, Number(line));
        text = lines.at(-1)!;
      });
      setTimeout(() => proc.kill('SIGKILL'), 200 + next() * 700);
      proc.on('exit', () => resolve(last));
    });
    acknowledgedTotal += acknowledged + 1;
    const result = await Gallery.open<string>(path, { model, threads: 1 }).then(
      async (gallery) => {
        const ids = [...gallery.ids()].sort();
        const matches = await Promise.all(ids.slice(0, 3).map((id) => gallery.search(FaceEmbedding.fromVector(vectorOf(Number(id.slice(1))), model), { k: 3 })));
        await gallery.dispose();
        return { ids, matches };
      },
      (error: MaskFaceError) => ({ error }),
    );
    if ('error' in result) {
      t.fail(`run ${run}: ${result.error.code}: ${result.error.message}`);
      continue;
    }
    const key = JSON.stringify(result.ids);
    let k = acknowledged + 1;
    while (k < acknowledged + 400 && JSON.stringify(stateAfter(k)) !== key) k++;
    if (JSON.stringify(stateAfter(k)) !== key) {
      t.fail(`run ${run}: ${result.ids.length} ids match no state at or after change ${acknowledged}`);
      continue;
    }
    // (vectorOf repeats almost exactly every 400 changes: the id is among the best, not always first)
    if (!result.matches.every((m, i) => m.some((match) => match.id === result.ids[i] && match.score > 0.9999))) t.fail(`run ${run}: a vector is not its own: ${JSON.stringify(result.matches)} ${result.ids.slice(0, 3).join()}`);
    checked++;
  }
  t.equal(checked, 100, 'every run reopened to a state at or after the last acknowledged change');
  t.ok(acknowledgedTotal > 500, `${acknowledgedTotal} changes acknowledged over the runs (the kills landed mid-stream)`);
});
