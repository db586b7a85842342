// Load test of the service with autocannon, against 127.0.0.1: starts `node server.mjs` on a fresh
// gallery, enrols one bare photo each of `--people` people of rmfrd_real_masks, then sends
// /identify with other photos of them (masked and bare) at each connection count for `--seconds`
// (and at most `--max-requests` requests). Prints requests/s, latency p50/p99, errors and
// refusals, the server's event-loop delay and its largest RSS, with the machine; `--json FILE`
// keeps them.
//   node examples/service/load-test.mjs [--seconds 20] [--connections 1,8,32] [--people 40]
//     [--max-requests 5000] [--data ../shared/data] [--json results.json]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    connections: { type: 'string', default: '1,8,32' },
    people: { type: 'string', default: '40' },
    'max-requests': { type: 'string', default: '5000' },
    data: { type: 'string', default: process.env.MASKFACE_DATA_DIR ?? join(here, '..', '..', '..', 'shared', 'data') },
    json: { type: 'string' },
  },
});
const loadBefore = loadavg();
const seconds = Number(args.seconds);
const connectionCounts = args.connections.split(',').map(Number);
const maxRequests = Number(args['max-requests']);

const folder = join(args.data, 'rmfrd_real_masks');
if (!existsSync(folder)) throw new Error(`no photos at ${folder} (--data)`);
const people = readdirSync(folder, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort()
  .filter((name) => existsSync(join(folder, name, 'unmasked-c01.jpg')) && existsSync(join(folder, name, 'masked-c01.jpg')))
  .slice(0, Number(args.people));
const probes = people.flatMap((name) =>
  ['masked-c01.jpg', 'unmasked-c02.jpg'].filter((f) => existsSync(join(folder, name, f))).map((f) => readFileSync(join(folder, name, f))),
);

const work = mkdtempSync(join(tmpdir(), 'maskface-load-'));
const server = spawn(process.execPath, [join(here, 'server.mjs')], {
  env: { ...process.env, PORT: '0', GALLERY: join(work, 'people.mfg') },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
server.stdout.on('data', (chunk) => (out += chunk));
while (!/listening on (\S+)/.test(out)) {
  if (server.exitCode !== null) throw new Error(`the server did not start: ${out}`);
  await new Promise((r) => setTimeout(r, 50));
}
const url = /listening on (\S+)/.exec(out)[1];
const health = (reset = false) => fetch(`${url}/health${reset ? '?reset' : ''}`).then((r) => r.json());

let enrolled = 0;
for (const name of people) {
  const response = await fetch(`${url}/people/${name}`, {
    method: 'POST',
    body: readFileSync(join(folder, name, 'unmasked-c01.jpg')),
    headers: { 'content-type': 'image/jpeg' },
  });
  if (response.status === 201) enrolled++;
}

// What the service answers, once per probe photo: the right person, another one, or nobody.
const answers = { right: 0, wrong: 0, nobody: 0, noFace: 0 };
for (const [i, body] of probes.entries()) {
  const response = await fetch(`${url}/identify`, { method: 'POST', body, headers: { 'content-type': 'image/jpeg' } });
  const faces = (await response.json()).faces;
  const names = faces.map((f) => f.name).filter((n) => n !== null);
  if (faces.length === 0) answers.noFace++;
  else if (names.includes(people[Math.floor(i / 2)])) answers.right++;
  else if (names.length > 0) answers.wrong++;
  else answers.nobody++;
}

const runs = [];
for (const connections of connectionCounts) {
  await health(true);
  let rssMax = 0;
  const sampler = setInterval(async () => (rssMax = Math.max(rssMax, (await health()).rssBytes)), 1000);
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    maxOverallRequests: Math.max(maxRequests, connections),
    timeout: 60,
    requests: probes.map((body) => ({ method: 'POST', path: '/identify', body, headers: { 'content-type': 'image/jpeg' } })),
  });
  clearInterval(sampler);
  const after = await health();
  rssMax = Math.max(rssMax, after.rssBytes);
  runs.push({
    connections,
    requests: result.requests.total,
    requestsPerSecond: result.requests.average,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    ok: result['2xx'],
    refused429: result.statusCodeStats?.['429']?.count ?? 0,
    otherNon2xx: result.non2xx - (result.statusCodeStats?.['429']?.count ?? 0),
    errors: result.errors,
    timeouts: result.timeouts,
    eventLoopDelayMs: after.eventLoopDelayMs,
    rssMaxBytes: rssMax,
  });
}
server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
rmSync(work, { recursive: true, force: true });

const machine = { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverageBefore: loadBefore };
console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, load average before the run ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
console.log(`gallery: ${enrolled} people enrolled; probes: ${probes.length} other photos of them (masked and bare), ${seconds} s per row`);
console.log(`answers, one per probe: ${answers.right} the right person, ${answers.wrong} someone else, ${answers.nobody} nobody (below the threshold), ${answers.noFace} no face found`);
console.log('| connections | requests | requests/s | p50 ms | p99 ms | 429 | errors | event-loop p99 / max ms | RSS max MB |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of runs) {
  console.log(
    `| ${r.connections} | ${r.requests} | ${r.requestsPerSecond.toFixed(1)} | ${r.latencyMs.p50} | ${r.latencyMs.p99} | ${r.refused429} | ${r.errors + r.timeouts + r.otherNon2xx} | ` +
      `${r.eventLoopDelayMs.p99.toFixed(1)} / ${r.eventLoopDelayMs.max.toFixed(1)} | ${(r.rssMaxBytes / 2 ** 20).toFixed(0)} |`,
  );
}
if (args.json) writeFileSync(args.json, JSON.stringify({ machine, enrolled, probes: probes.length, answers, seconds, runs }, null, 2) + '\n');
