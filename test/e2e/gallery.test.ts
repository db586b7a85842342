import t, { type Test } from 'tap';
import { EmbeddingBatch, FaceEmbedding, Gallery } from '../../dist/esm/index.js';

const model = { id: 'f'.repeat(64), dim: 37, name: 'test' }; // 37: not a multiple of any SIMD width

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}
function vectors(count: number, seed: number, dim = model.dim): Float32Array {
  const next = rng(seed);
  const data = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += (data[i * dim + d] = next()) ** 2;
    for (let d = 0; d < dim; d++) data[i * dim + d]! /= Math.sqrt(norm);
  }
  return data;
}
const embedding = (data: Float32Array, i: number, m = model) => FaceEmbedding.fromVector(data.slice(i * m.dim, (i + 1) * m.dim), m);

/** Brute force in float64: scores best first, ties by insertion order. */
function reference(data: Float32Array, ids: number[], live: Set<number>, query: Float32Array, k: number) {
  const scored: { id: number; score: number }[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (!live.has(i)) continue;
    let dot = 0;
    for (let d = 0; d < model.dim; d++) dot += data[i * model.dim + d]! * query[d]!;
    scored.push({ id: ids[i]!, score: dot });
  }
  return scored.sort((a, b) => b.score - a.score).slice(0, k);
}

/** Tie-aware: scores must match; ids may differ only among equal scores; no duplicates. */
function assertMatches(t: Test, got: { id: number; score: number }[], want: { id: number; score: number }[], label: string) {
  t.equal(got.length, want.length, `${label}: count`);
  const tolerance = 1e-5;
  got.forEach((match, i) => {
    const expected = want[i]!;
    if (Math.abs(match.score - expected.score) > tolerance) t.fail(`${label}: score ${i} ${match.score} != ${expected.score}`);
    if (match.id !== expected.id) {
      const tied = want.some((w) => w.id === match.id && Math.abs(w.score - match.score) <= tolerance);
      if (!tied) t.fail(`${label}: id ${match.id} at ${i} is not a tie of ${expected.id}`);
    }
  });
  t.equal(new Set(got.map((m) => m.id)).size, got.length, `${label}: no duplicate ids`);
}

t.test('search agrees with a brute-force reference, k = 1, 10, size and > size', async (t) => {
  const data = vectors(500, 1);
  await using gallery = new Gallery<number>({ model });
  const ids = Array.from({ length: 500 }, (_, i) => i);
  await gallery.addMany(ids, EmbeddingBatch.fromVectors(data, model));
  t.equal(gallery.size, 500);
  const queries = vectors(8, 2);
  const live = new Set(ids);
  for (const k of [1, 10, 500, 700]) {
    for (let q = 0; q < 8; q++) {
      const query = embedding(queries, q);
      assertMatches(t, await gallery.search(query, { k }), reference(data, ids, live, query.vector, k), `k=${k} q=${q}`);
    }
  }
  const batch = await gallery.searchBatch(EmbeddingBatch.fromVectors(queries, model), { k: 10 });
  for (let q = 0; q < 8; q++) assertMatches(t, batch.at(q), reference(data, ids, live, queries.subarray(q * 37, (q + 1) * 37), 10), `batch q=${q}`);
});

t.test('ties: duplicated vectors all come back with equal scores', async (t) => {
  const base = vectors(3, 3);
  await using gallery = new Gallery<string>({ model });
  for (let copy = 0; copy < 4; copy++) for (let i = 0; i < 3; i++) gallery.add(`v${i}-${copy}`, embedding(base, i));
  const top = await gallery.search(embedding(base, 1), { k: 4 });
  t.same(top.map((m) => m.id).sort(), ['v1-0', 'v1-1', 'v1-2', 'v1-3']);
  t.ok(top.every((m) => Math.abs(m.score - 1) < 1e-5));
  t.same(top.map((m) => m.id), ['v1-0', 'v1-1', 'v1-2', 'v1-3'], 'ties come back in insertion order');
});

t.test('empty gallery, threshold, identify', async (t) => {
  const data = vectors(20, 4);
  await using gallery = new Gallery<number>({ model });
  t.same(await gallery.search(embedding(data, 0)), []);
  t.equal(await gallery.identify(embedding(data, 0), { threshold: 0.5 }), null);
  for (let i = 0; i < 20; i++) gallery.add(i, embedding(data, i));
  const above = await gallery.search(embedding(data, 3), { k: 20, threshold: 0.2 });
  t.ok(above.length >= 1 && above.every((m) => m.score >= 0.2));
  t.same(await gallery.identify(embedding(data, 3), { threshold: 0.99 }), { id: 3, score: (await gallery.search(embedding(data, 3), { k: 1 }))[0]!.score });
});

t.test('several embeddings per id; remove then search; rows are reused', async (t) => {
  const data = vectors(30, 5);
  await using gallery = new Gallery<string>({ model });
  for (let i = 0; i < 30; i++) gallery.add(`p${i % 10}`, embedding(data, i));
  t.equal(gallery.size, 30);
  t.equal(gallery.ids().length, 10);
  t.equal(gallery.remove('p3'), 3);
  t.equal(gallery.remove('p3'), 0);
  t.notOk(gallery.has('p3'));
  t.equal(gallery.size, 27);
  const hits = await gallery.search(embedding(data, 3), { k: 30 });
  t.equal(hits.length, 27);
  t.notOk(hits.some((m) => m.id === 'p3'), 'removed id never returned');
  const before = gallery.memory.hostBytes;
  for (let i = 0; i < 3; i++) gallery.add('again', embedding(data, i));
  t.equal(gallery.memory.hostBytes, before, 'removed rows were reused');
  t.equal((await gallery.search(embedding(data, 0), { k: 1 }))[0]!.id, 'p0');
});

t.test('program order: add and remove before a search are visible to it, even behind an addMany', async (t) => {
  const data = vectors(200, 6);
  await using gallery = new Gallery<number>({ model });
  const many = gallery.addMany(
    Array.from({ length: 199 }, (_, i) => i),
    EmbeddingBatch.fromVectors(data.slice(0, 199 * 37), model),
  );
  gallery.add(199, embedding(data, 199)); // queued behind the addMany
  gallery.remove(5);
  const hits = await gallery.search(embedding(data, 199), { k: 1 });
  await many;
  t.same(hits[0]?.id, 199);
  t.notOk((await gallery.search(embedding(data, 5), { k: 200 })).some((m) => m.id === 5));
  t.equal(gallery.size, 199);
});

t.test('a search in flight never reports a row under the wrong id after a remove and re-add', async (t) => {
  const data = vectors(1000, 7);
  await using gallery = new Gallery<number>({ model });
  await gallery.addMany(Array.from({ length: 1000 }, (_, i) => i), EmbeddingBatch.fromVectors(data, model));
  const dot = (a: number, b: number) => {
    let sum = 0;
    for (let d = 0; d < model.dim; d++) sum += data[a * model.dim + d]! * data[b * model.dim + d]!;
    return sum;
  };
  for (let round = 0; round < 20; round++) {
    const probe = 40 + round;
    const pending = gallery.search(embedding(data, probe), { k: 1 });
    gallery.remove(probe);
    gallery.add(5000 + round, embedding(data, 999 - round)); // must not take the probe's row while the search may read it
    const [hit] = await pending;
    // The search ran before or after the remove (both are allowed); either way its score must
    // belong to the id it reports.
    const vectorOf = hit!.id >= 5000 ? 999 - (hit!.id - 5000) : hit!.id;
    if (Math.abs(hit!.score - dot(probe, vectorOf)) > 1e-5) t.fail(`round ${round}: id ${hit!.id} reported with another row's score`);
    t.notOk((await gallery.search(embedding(data, probe), { k: 3 })).some((m) => m.id === probe), `round ${round}: removed`);
  }
});

t.test('dispose waits for a search in flight, then rejects new calls', async (t) => {
  const data = vectors(100, 8);
  const gallery = new Gallery<number>({ model });
  await gallery.addMany(Array.from({ length: 100 }, (_, i) => i), EmbeddingBatch.fromVectors(data, model));
  const pending = gallery.search(embedding(data, 1), { k: 5 });
  await gallery.dispose();
  t.equal((await pending).length, 5);
  await t.rejects(gallery.search(embedding(data, 1)), { code: 'ERR_DISPOSED' });
  t.throws(() => gallery.add(1, embedding(data, 1)), { code: 'ERR_DISPOSED' });
});

t.test('BAD CALL - gallery arguments', async (t) => {
  const data = vectors(4, 9);
  await using gallery = new Gallery<number>({ model });
  gallery.add(1, embedding(data, 0));
  const otherDim = { id: model.id, dim: 8, name: 'test' };
  const otherModel = { id: 'e'.repeat(64), dim: 37, name: 'other' };
  await t.rejects(gallery.search(embedding(vectors(1, 1, 8), 0, otherDim)), { code: 'ERR_DIMENSION_MISMATCH' });
  await t.rejects(gallery.search(embedding(data, 0, otherModel)), { code: 'ERR_MODEL_MISMATCH' });
  t.throws(() => gallery.add(2, embedding(vectors(1, 1, 8), 0, otherDim)), { code: 'ERR_DIMENSION_MISMATCH' });
  await t.rejects(gallery.search(embedding(data, 0), { k: 0 }), { code: 'ERR_INVALID_ARGUMENT', message: /Expected integer in \[1, 4096\] for options\.k but received 0/ });
  await t.rejects(gallery.search(embedding(data, 0), { k: 4097 }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(gallery.search(embedding(data, 0), { threshold: NaN }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => gallery.add('' as unknown as number, embedding(data, 0)), { code: 'ERR_INVALID_ARGUMENT' });
  // @ts-expect-error -- the constructor is private; JavaScript callers can still reach it
  t.throws(() => gallery.add(3, new FaceEmbedding(new Float32Array(37).fill(NaN), model)), { code: 'ERR_INVALID_ARGUMENT' });
  // @ts-expect-error -- the constructor is private; JavaScript callers can still reach it
  t.throws(() => gallery.add(4, new FaceEmbedding(new Float32Array(37), model)), { code: 'ERR_INVALID_ARGUMENT' }, 'all-zero vector');
  await t.rejects(gallery.addMany([1, 2], EmbeddingBatch.fromVectors(data.slice(0, 37), model)), { code: 'ERR_INVALID_ARGUMENT' });
  const poisoned = data.slice(0, 2 * 37);
  poisoned[40] = Infinity;
  // @ts-expect-error -- the constructor is private; JavaScript callers can still reach it
  await t.rejects(gallery.addMany([7, 8], new EmbeddingBatch(poisoned, model)), { code: 'ERR_INVALID_ARGUMENT' });
  t.notOk(gallery.has(7), 'a failed addMany leaves nothing behind');
  t.equal(gallery.size, 1);
  t.throws(() => new Gallery({ model: { id: '', dim: 4 } }), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('removed rows are reused while searches keep running: memory stays flat under add/remove traffic', async (t) => {
  const data = vectors(400, 11);
  await using gallery = new Gallery<number>({ model, threads: 1 });
  await gallery.addMany(Array.from({ length: 200 }, (_, i) => i), EmbeddingBatch.fromVectors(data.slice(0, 200 * model.dim), model));
  const start = gallery.memory.hostBytes;
  // Four searches always in flight, as under steady traffic: never a moment with none.
  let stop = false;
  let searches = 0;
  const searcher = async (seed: number) => {
    while (!stop) {
      await gallery.search(embedding(data, (seed * 7 + searches) % 400), { k: 3 });
      searches++;
    }
  };
  const searchers = [0, 1, 2, 3].map(searcher);
  for (let cycle = 0; cycle < 2000; cycle++) {
    gallery.remove(cycle);
    gallery.add(200 + cycle, embedding(data, (200 + cycle) % 400));
    await gallery.search(embedding(data, cycle % 400), { k: 1 }); // the caller's own work between changes
  }
  stop = true;
  await Promise.all(searchers);
  t.equal(gallery.size, 200);
  t.ok(searches > 50, `${searches} searches ran during the cycles`);
  // Before reclamation under traffic, every cycle took a new row: 2,200 rows here. With reuse a
  // few dozen rows wait for the searches in flight (more on a loaded machine, where they run longer).
  t.ok(gallery.memory.hostBytes <= 1.5 * start, `rows written: ${gallery.memory.hostBytes} bytes after 2000 cycles, ${start} at the start`);
});

t.test('searchIdentities ranks people, not photos: the best embedding of each, exact', async (t) => {
  // 60 identities with 1 to 12 embeddings each, and one identity with 300 embeddings all close
  // to the query: the first 300 rows of the ranking are one person, so the search must widen.
  const data = vectors(700, 31);
  const query = data.slice(0, model.dim);
  const ids: number[] = [];
  for (let person = 0, row = 0; row < 400; person++) {
    for (let j = 0; j < 1 + (person % 12) && row < 400; j++, row++) ids.push(person);
  }
  const near = new Float32Array(300 * model.dim);
  const jitter = rng(32);
  for (let i = 0; i < 300; i++) {
    let norm = 0;
    for (let d = 0; d < model.dim; d++) norm += (near[i * model.dim + d] = query[d]! + 0.05 * jitter()) ** 2;
    for (let d = 0; d < model.dim; d++) near[i * model.dim + d]! /= Math.sqrt(norm);
  }
  const all = new Float32Array([...data.subarray(0, 400 * model.dim), ...near]);
  const allIds = [...ids, ...new Array<number>(300).fill(1000)];
  await using gallery = new Gallery<number>({ model, threads: 2 });
  await gallery.addMany(allIds, EmbeddingBatch.fromVectors(all, model));

  // The reference: each identity's best score, in float64.
  const best = new Map<number, number>();
  allIds.forEach((id, i) => {
    let dot = 0;
    for (let d = 0; d < model.dim; d++) dot += all[i * model.dim + d]! * query[d]!;
    best.set(id, Math.max(best.get(id) ?? -Infinity, dot));
  });
  const want = [...best].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score);
  const q = FaceEmbedding.fromVector(query, model);
  for (const k of [1, 5, 20, 61, 100]) {
    const got = await gallery.searchIdentities(q, { k });
    assertMatches(t, got.map(({ id, score }) => ({ id, score })), want.slice(0, k), `k=${k}`);
  }
  const [top] = await gallery.searchIdentities(q, { k: 1 });
  t.equal(top?.embeddings, 1, 'the query row itself wins, and its identity holds one embedding');
  const second = (await gallery.searchIdentities(q, { k: 2 }))[1];
  t.same([second?.id, second?.embeddings], [1000, 300], 'the crowded identity comes once, with its count');
  const above = await gallery.searchIdentities(q, { k: 50, threshold: 0.3 });
  assertMatches(t, above.map(({ id, score }) => ({ id, score })), want.filter((w) => w.score >= 0.3).slice(0, 50), 'threshold 0.3');
});

t.test("searchIdentities({ aggregate: 'mean' }): one template per identity, kept up to date", async (t) => {
  const data = vectors(300, 41);
  const query = vectors(1, 42);
  const q = FaceEmbedding.fromVector(query, model);
  const held = new Map<number, Float32Array[]>();
  const row = (i: number) => data.slice(i * model.dim, (i + 1) * model.dim);
  /** The reference: the cosine of the query with each identity's mean unit vector, in float64. */
  const want = () =>
    [...held]
      .map(([id, rows]) => {
        const sum = new Float64Array(model.dim);
        for (const v of rows) for (let d = 0; d < model.dim; d++) sum[d]! += v[d]!;
        const norm = Math.hypot(...sum);
        let dot = 0;
        for (let d = 0; d < model.dim; d++) dot += (sum[d]! / norm) * query[d]!;
        return { id, score: dot };
      })
      .sort((a, b) => b.score - a.score);
  await using gallery = new Gallery<number>({ model, threads: 2 });
  const ids = Array.from({ length: 200 }, (_, i) => i % 40);
  await gallery.addMany(ids, EmbeddingBatch.fromVectors(data.subarray(0, 200 * model.dim), model));
  ids.forEach((id, i) => held.set(id, [...(held.get(id) ?? []), row(i)]));
  const check = async (label: string) => {
    const got = await gallery.searchIdentities(q, { k: 10, aggregate: 'mean' });
    assertMatches(t, got.map(({ id, score }) => ({ id, score })), want().slice(0, 10), label);
    for (const m of got) if (m.embeddings !== held.get(m.id)!.length) t.fail(`${label}: ${m.id} holds ${held.get(m.id)!.length}, not ${m.embeddings}`);
  };
  await check('built on first use');
  for (let i = 200; i < 230; i++) {
    gallery.add(i % 7, embedding(data, i));
    held.set(i % 7, [...held.get(i % 7)!, row(i)]);
  }
  await check('after adds');
  for (const id of [0, 3, 5, 11]) {
    gallery.remove(id);
    held.delete(id);
  }
  await check('after removes');
  const more = Array.from({ length: 70 }, (_, i) => 100 + (i % 10));
  await gallery.addMany(more, EmbeddingBatch.fromVectors(data.subarray(230 * model.dim, 300 * model.dim), model));
  more.forEach((id, i) => held.set(id, [...(held.get(id) ?? []), row(230 + i)]));
  await check('after a batch of new people');
  const max = await gallery.searchIdentities(q, { k: 3 });
  t.equal(max.length, 3, "'max' is still the default");
  await t.rejects(gallery.searchIdentities(q, { aggregate: 'median' as 'mean' }), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test("storage: 'f16' keeps half floats: half the memory, scores within 1e-3", async (t) => {
  const data = vectors(2000, 51);
  const queries = EmbeddingBatch.fromVectors(vectors(30, 52), model);
  const ids = Array.from({ length: 2000 }, (_, i) => i);
  await using full = new Gallery<number>({ model });
  await using half = new Gallery<number>({ model, storage: 'f16' });
  t.equal(half.storage, 'f16');
  await Promise.all([full.addMany(ids, EmbeddingBatch.fromVectors(data, model)), half.addMany(ids, EmbeddingBatch.fromVectors(data, model))]);
  t.equal(half.memory.hostBytes, 2000 * (model.dim * 2 + 1), 'two bytes a value');
  t.equal(full.memory.hostBytes, 2000 * (model.dim * 4 + 1));
  // One query at a time (the scan kernel) and the batch (the GEMM path).
  const singly = (g: Gallery<number>) => Promise.all(Array.from({ length: 30 }, (_, q) => g.search(queries.at(q), { k: 10 })));
  const batched = async (g: Gallery<number>) => {
    const matches = await g.searchBatch(queries, { k: 10 });
    return Array.from({ length: 30 }, (_, q) => matches.at(q));
  };
  let found = 0;
  let worst = 0;
  for (const run of [singly, batched]) {
    const [a, b] = await Promise.all([run(full), run(half)]);
    for (let q = 0; q < 30; q++) {
      const exact = new Map(a[q]!.map((m) => [m.id, m.score]));
      for (const m of b[q]!) {
        if (!exact.has(m.id)) continue;
        found++;
        worst = Math.max(worst, Math.abs(exact.get(m.id)! - m.score));
      }
    }
  }
  t.ok(worst < 1e-3, `scores of the same rows within 1e-3 (worst ${worst.toExponential(2)})`);
  t.ok(found / 600 >= 0.95, `recall@10 against f32: ${(found / 600).toFixed(3)}`);
  await t.rejects(Promise.resolve().then(() => new Gallery({ model, storage: 'f8' as never })), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test("storage: 'int8' answers exactly as 'f32' does: ids and scores to the bit", async (t) => {
  // Random rows, then 300 near-duplicates of row 0 and 1,600 copies of row 1: some queries are
  // proven by the first pass, others need the wider one or the f32 scan.
  const data = vectors(3000, 81);
  const noise = vectors(3000, 82);
  for (let i = 1000; i < 1300; i++) {
    let norm = 0;
    for (let d = 0; d < model.dim; d++) norm += (data[i * model.dim + d] = data[d]! + 0.02 * noise[i * model.dim + d]!) ** 2;
    for (let d = 0; d < model.dim; d++) data[i * model.dim + d]! /= Math.sqrt(norm);
  }
  for (let i = 1300; i < 2900; i++) data.copyWithin(i * model.dim, model.dim, 2 * model.dim);
  const ids = Array.from({ length: 3000 }, (_, i) => i);
  await using full = new Gallery<number>({ model, threads: 2 });
  await using coded = new Gallery<number>({ model, threads: 2, storage: 'int8' });
  t.equal(coded.storage, 'int8');
  t.same(coded.searchStats, { queries: 0, widened: 0, exactScans: 0, candidates: 0 });
  t.equal(full.searchStats, null, "'f32' galleries have no int8 statistics");
  await Promise.all([full.addMany(ids, EmbeddingBatch.fromVectors(data, model)), coded.addMany(ids, EmbeddingBatch.fromVectors(data, model))]);
  for (let i = 5; i < 3000; i += 9) (full.remove(i), coded.remove(i));
  t.equal(coded.memory.hostBytes, 3000 * (model.dim * 4 + 64 + 4 + 1), 'f32 vector, 64 bytes of codes, scale and flag a row');
  const queryData = vectors(12, 83);
  queryData.set(data.subarray(0, model.dim), 0);
  queryData.set(data.subarray(model.dim, 2 * model.dim), model.dim);
  const queries = EmbeddingBatch.fromVectors(queryData, model);
  let compared = 0;
  for (const k of [1, 10, 300]) {
    for (const threshold of [undefined, 0.2, 0.95]) {
      for (let q = 0; q < 12; q++) {
        const [want, got] = await Promise.all([full.search(queries.at(q), { k, threshold }), coded.search(queries.at(q), { k, threshold })]);
        if (JSON.stringify(got) !== JSON.stringify(want)) t.fail(`query ${q}, k ${k}, threshold ${threshold}: differs`);
        compared++;
      }
      const [want, got] = await Promise.all([full.searchBatch(queries, { k, threshold }), coded.searchBatch(queries, { k, threshold })]);
      t.same(Array.from(got.ids), Array.from(want.ids), `batch of 12, k ${k}, threshold ${threshold}: same ids`);
      t.same(Array.from(got.scores), Array.from(want.scores), `batch of 12, k ${k}, threshold ${threshold}: same scores`);
    }
  }
  t.pass(`${compared} single searches compared`);
  const stats = coded.searchStats!;
  // Batches of 8 or more run in two passes too where the CPU has AVX-512 VNNI, else on the f32 rows.
  t.ok(stats.queries === compared || stats.queries === compared + 9 * 12, `every single search ran in two passes (${stats.queries} queries)`);
  t.ok(stats.widened > 0 && stats.exactScans > 0 && stats.exactScans <= stats.widened, `some queries widened (${stats.widened}), some scanned in f32 (${stats.exactScans})`);
  t.ok(stats.candidates > 0);
  await t.rejects(Promise.resolve().then(() => new Gallery({ model, storage: 'int8', device: 'cuda' })), { code: 'ERR_INVALID_ARGUMENT' }, "'int8' is refused for a 'cuda' gallery");
});

t.test('compact() gives back the memory of removed rows; searches running meanwhile stay right', async (t) => {
  const data = vectors(3000, 61);
  await using gallery = new Gallery<number>({ model, threads: 2 });
  await gallery.addMany(Array.from({ length: 3000 }, (_, i) => i), EmbeddingBatch.fromVectors(data, model));
  for (let i = 0; i < 3000; i++) if (i % 10 !== 0) gallery.remove(i);
  const queries = EmbeddingBatch.fromVectors(vectors(20, 62), model);
  const before = await gallery.searchBatch(queries, { k: 5 });
  // Searches in flight while the rows are renumbered.
  const during = Array.from({ length: 6 }, () => gallery.searchBatch(queries, { k: 5 }));
  const result = await gallery.compact();
  t.equal(result.bytesBefore, 3000 * (model.dim * 4 + 1));
  t.equal(result.bytesAfter, 300 * (model.dim * 4 + 1), 'the rows written drop to the 300 held');
  t.equal(gallery.memory.hostBytes, result.bytesAfter);
  for (const pending of await Promise.all(during)) t.same(Array.from(pending.ids), Array.from(before.ids), 'a search running across compact() answers with the right ids');
  const after = await gallery.searchBatch(queries, { k: 5 });
  t.same(Array.from(after.ids), Array.from(before.ids), 'the same matches after');
  t.same(Array.from(after.scores), Array.from(before.scores), 'with the same scores');
  t.same(gallery.ids(), Array.from({ length: 300 }, (_, i) => i * 10), 'the same ids, in order');
  gallery.add(5, embedding(data, 5));
  t.equal(gallery.remove(10), 1);
  const [hit] = await gallery.search(embedding(data, 5), { k: 1 });
  t.same([hit?.id, gallery.size], [5, 300], 'adds and removes go on on the new rows');
});
