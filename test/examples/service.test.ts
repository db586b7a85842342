// examples/service: the HTTP service run as a user runs it (node server.mjs, settings from the
// environment), on real photos: enrol, identify, verify, detect and remove; typed refusals of bad
// requests; 429 when the queue is full; a client that disconnects cancels its photo; SIGTERM
// loses no acknowledged enrolment, and neither does SIGKILL (the gallery's journal).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import sharp from 'sharp';
import { dataDir, missingData, repoRoot } from '../helpers/data.js';

const skip = missingData('deepface_testset');
const work = mkdtempSync(join(tmpdir(), 'maskface-service-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const photo = (name: string) => readFileSync(join(dataDir, 'deepface_testset', name));

interface Server {
  url: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
}

async function startServer(gallery: string, env: Record<string, string> = {}): Promise<Server> {
  const proc = spawn(process.execPath, [join(repoRoot, 'examples', 'service', 'server.mjs')], {
    env: { ...process.env, PORT: '0', GALLERY: gallery, WORKERS: '1', THREADS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  proc.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  proc.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!/listening on (\S+)/.test(text)) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`the server did not start:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: /listening on (\S+)/.exec(text)![1]!, proc, exited, output: () => text };
}

async function post(server: Server, path: string, body: Uint8Array | string, type = 'image/jpeg', signal?: AbortSignal) {
  const response = await fetch(server.url + path, { method: 'POST', body, headers: { 'content-type': type }, signal });
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}

t.test('enrol, identify, verify, detect, remove', { skip }, async (t) => {
  const server = await startServer(join(work, 'people.mfg'));
  t.teardown(() => server.proc.kill('SIGKILL'));

  const enrolled = await post(server, '/people/angelina', photo('img1.jpg'));
  t.equal(enrolled.status, 201, 'enrol answers 201');
  t.equal(enrolled.body.photos, 1);
  t.equal((await post(server, '/people/other', photo('img3.jpg'))).status, 201);

  const identified = await post(server, '/identify', photo('img2.jpg'));
  t.equal(identified.status, 200);
  t.equal(identified.body.faces.length, 1, 'one face');
  t.equal(identified.body.faces[0].name, 'angelina', 'another photo of her is identified');
  t.ok(identified.body.faces[0].similarity >= identified.body.faces[0].threshold, 'at or above the threshold');
  const stranger = await post(server, '/identify', photo('img17.jpg'));
  t.equal(stranger.body.faces[0]?.name, null, 'someone not enrolled is nobody');

  const verify = (a: string, b: string) =>
    post(server, '/verify', JSON.stringify({ a: photo(a).toString('base64'), b: photo(b).toString('base64') }), 'application/json');
  const same = await verify('img1.jpg', 'img2.jpg');
  t.equal(same.body.same, true, 'verify: two photos of one person');
  t.equal((await verify('img1.jpg', 'img17.jpg')).body.same, false, 'verify: two people');

  const detected = await post(server, '/detect', photo('couple.jpg'));
  t.equal(detected.body.faces.length, 2, 'detect: both faces of a couple');

  const removed = await fetch(`${server.url}/people/angelina`, { method: 'DELETE' }).then((r) => r.json() as Promise<any>);
  t.equal(removed.removed, 1, 'remove');
  t.equal((await post(server, '/identify', photo('img2.jpg'))).body.faces[0].name, null, 'a removed person is no longer found');

  // Bad requests: typed refusals, and the server goes on.
  const notImage = await post(server, '/identify', new TextEncoder().encode('not a photo'));
  t.equal(notImage.status, 422, 'bytes that are not a photo: 422');
  t.equal(notImage.body.error, 'ERR_IMAGE_DECODE');
  const blank = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toBuffer();
  const noFace = await post(server, '/people/nobody', blank, 'image/png');
  t.equal(noFace.status, 422, 'a photo without a face: 422');
  t.equal(noFace.body.error, 'no_face');
  t.equal((await post(server, '/identify', 'hello', 'text/plain')).status, 415, 'another content type: 415');
  t.equal((await post(server, '/verify', '{"a":1}', 'application/json')).status, 400, 'a malformed verify body: 400');
  const health = await fetch(`${server.url}/health`).then((r) => r.json() as Promise<any>);
  t.equal(health.photos, 1, 'health: the photos held');
  t.equal(health.journal.pending, 0, 'every acknowledged change is on disk');
});

t.test('a full queue answers 429; a client that disconnects cancels its photo', { skip }, async (t) => {
  const server = await startServer(join(work, 'busy.mfg'), { QUEUE_LIMIT: '2' });
  t.teardown(() => server.proc.kill('SIGKILL'));
  const body = photo('couple.jpg');
  const answers = await Promise.all(Array.from({ length: 12 }, () => post(server, '/detect', body)));
  const statuses = answers.map((a) => a.status);
  t.ok(statuses.includes(429), `some requests are refused while the queue is full (${statuses.join(' ')})`);
  t.ok(statuses.filter((s) => s === 200).length >= 3, 'the ones that fit are answered');
  t.ok(statuses.every((s) => s === 200 || s === 429), 'nothing else');
  t.equal(answers.find((a) => a.status === 429)?.headers.get('retry-after'), '1', '429 says when to retry');

  const controllers = Array.from({ length: 3 }, () => new AbortController());
  const abandoned = controllers.map((c) => post(server, '/detect', body, 'image/jpeg', c.signal).catch((error: Error) => error.name));
  await new Promise((r) => setTimeout(r, 30));
  controllers.forEach((c) => c.abort());
  t.same(await Promise.all(abandoned), ['AbortError', 'AbortError', 'AbortError']);
  let health: any;
  for (let i = 0; i < 100; i++) {
    health = await fetch(`${server.url}/health`).then((r) => r.json());
    if (health.pool.cancelled >= 3 && health.pool.running === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(health.pool.cancelled, 3, 'the server cancelled the three photos whose clients went away');
  t.equal((await post(server, '/detect', body)).status, 200, 'and serves the next request');
});

t.test('SIGTERM finishes what is in flight and loses no enrolment; so does a restart after SIGKILL', { skip }, async (t) => {
  const gallery = join(work, 'shutdown.mfg');
  const enrolAll = async (server: Server, prefix: string, count: number) => {
    const body = photo('img1.jpg');
    const answers = await Promise.all(
      Array.from({ length: count }, (_, i) => post(server, `/people/${prefix}${i}`, body).then((a) => a.status, () => 0)),
    );
    return answers.map((status, i) => (status === 201 ? `${prefix}${i}` : undefined)).filter((x) => x !== undefined);
  };
  let server = await startServer(gallery);
  const pending = enrolAll(server, 'term', 8);
  await new Promise((r) => setTimeout(r, 300));
  server.proc.kill('SIGTERM');
  const acknowledged = await pending;
  t.equal(await server.exited, 0, 'the server exits cleanly');
  t.match(server.output(), /gallery saved with \d+ photos/);
  t.ok(acknowledged.length >= 1, `${acknowledged.length} of 8 enrolments were answered before the shutdown`);

  server = await startServer(gallery);
  let health: any = await fetch(`${server.url}/health`).then((r) => r.json());
  t.equal(health.photos, acknowledged.length, 'after a restart: every acknowledged enrolment, nothing else');
  t.equal(health.journal.unsaved, 0, 'the journal was folded into the file on shutdown');

  const before = health.photos;
  const killed = enrolAll(server, 'kill', 6);
  await new Promise((r) => setTimeout(r, 600));
  server.proc.kill('SIGKILL');
  const survived = await killed;
  await server.exited;
  server = await startServer(gallery);
  t.teardown(() => server.proc.kill('SIGKILL'));
  health = await fetch(`${server.url}/health`).then((r) => r.json());
  t.ok(health.photos >= before + survived.length, `after SIGKILL: ${health.photos - before} enrolments kept, ${survived.length} acknowledged`);
});

t.test('the load test runs (a short version of examples/service/load-test.mjs)', { skip: missingData('rmfrd_real_masks') }, async (t) => {
  const json = join(work, 'load.json');
  const proc = spawn(process.execPath, [join(repoRoot, 'examples', 'service', 'load-test.mjs'), '--seconds', '2', '--connections', '1,4', '--people', '5', '--json', json], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  proc.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
  t.equal(code, 0, 'it exits cleanly');
  t.match(text, /\| connections \| requests \| requests\/s/, 'and prints its table');
  const result = JSON.parse(readFileSync(json, 'utf8'));
  t.equal(result.enrolled, 5, 'every person enrolled');
  t.equal(result.answers.right + result.answers.wrong + result.answers.nobody + result.answers.noFace, result.probes, 'one answer per probe photo');
  for (const run of result.runs) {
    t.ok(run.requests > 0 && run.ok === run.requests, `${run.connections} connections: ${run.requests} requests, all answered 200`);
    t.equal(run.errors + run.timeouts + run.otherNon2xx, 0, 'no errors');
  }
});
