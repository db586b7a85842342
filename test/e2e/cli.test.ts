// The command line as a user runs it: enrol a folder of photos, search a masked photo of one of
// the people, verify, draw, evaluate; every command's --help; usage errors.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { dataDir, missingData, repoRoot } from '../helpers/data.js';

const cli = join(repoRoot, 'dist', 'cjs', 'cli.js');
const run = promisify(execFile);

async function maskface(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return maskfaceIn(undefined, ...args);
}

/** The CLI run from the folder `cwd` (a project of the user's). */
async function maskfaceIn(cwd: string | undefined, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { maxBuffer: 16 << 20, cwd });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const pngSignature = '89504e470d0a1a0a';

t.test('every command has its own --help; usage errors exit 2', async (t) => {
  const top = await maskface('--help');
  t.equal(top.code, 0);
  const commands = ['enrol', 'search', 'verify', 'detect', 'heatmap', 'eval', 'bench', 'fetch-models', 'info', 'providers', 'install-gpu', 'uninstall-gpu'];
  for (const command of commands) {
    t.match(top.stdout, new RegExp(`^  ${command}\\b`, 'm'), `the overview lists ${command}`);
    const help = await maskface(command, '--help');
    t.equal(help.code, 0, `${command} --help`);
    t.match(help.stdout, `Usage: maskface ${command}`);
  }
  t.match((await maskface('enroll', '--help')).stdout, 'Usage: maskface enrol', "'enroll' is accepted");
  const unknown = await maskface('enlist');
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, "unknown command 'enlist'");
  const missing = await maskface('enrol', 'somewhere');
  t.equal(missing.code, 2);
  t.match(missing.stderr, '--gallery <file> is required');
  const bad = await maskface('search', 'a.jpg', '--gallery', 'g.json', '--k', 'many');
  t.equal(bad.code, 2);
  t.match(bad.stderr, "--k must be a positive integer, not 'many'");
  const flag = await maskface('verify', 'a.jpg', 'b.jpg', '--colour');
  t.equal(flag.code, 2, 'an unknown option');
});

t.test('enrol a folder, then search masked photos of its people', { skip: missingData('rmfrd_real_masks') || missingData('deepface_testset') }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'maskface-cli-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const people = join(work, 'people');
  const source = join(dataDir, 'rmfrd_real_masks');
  const identities = ['baike', 'chenderong', 'chenhe', 'chenhuilin'];
  for (const id of identities) {
    mkdirSync(join(people, id), { recursive: true });
    for (const name of readdirSync(join(source, id)).filter((n) => n.startsWith('unmasked-'))) cpSync(join(source, id, name), join(people, id, name));
  }
  // A photo with no face at all is skipped and reported, not enrolled.
  cpSync(join(repoRoot, 'test', 'fixtures', 'no-face.png'), join(people, 'baike', 'nothing.png'));
  const gallery = join(work, 'people.json');

  const enrolled = await maskface('enrol', people, '--gallery', gallery, '--json');
  t.equal(enrolled.code, 0, enrolled.stderr);
  const summary = JSON.parse(enrolled.stdout);
  t.equal(summary.identities, identities.length);
  t.same(summary.noFace.map((p: string) => p.endsWith('nothing.png')), [true], 'the photo with no face is listed');
  const file = JSON.parse(readFileSync(gallery, 'utf8'));
  t.equal(file.format, 'maskface-gallery-json');
  t.equal(file.entries.length, summary.enrolled);

  for (const id of ['chenhe', 'chenderong']) {
    const probe = join(source, id, 'masked-c01.jpg');
    const found = await maskface('search', probe, '--gallery', gallery, '--k', '3', '--json');
    t.equal(found.code, 0, found.stderr);
    const result = JSON.parse(found.stdout);
    t.equal(result.faces.length, 1, `${id}: one face`);
    const [face] = result.faces;
    t.equal(face.box.length, 4);
    t.ok(face.maskProbability > 0.3, `${id}: a mask is seen (${face.maskProbability.toFixed(2)})`);
    t.equal(face.matches.length, 3);
    t.equal(face.matches[0].id, id, `${id} in a mask is found by name`);
    t.ok(face.matches[0].score > face.matches[1].score, 'best first');
    const text = await maskface('search', probe, '--gallery', gallery, '--k', '1');
    t.match(text.stdout, new RegExp(`face 1 at \\[.*\\], mask [0-9.]+\\n  [0-9.]+  ${id}`), 'the text form');
  }

  // Adding to the gallery keeps what was there; files named <identity>.<ext> are identities too.
  const more = join(work, 'more');
  mkdirSync(more);
  cpSync(join(dataDir, 'deepface_testset', 'img1.jpg'), join(more, 'angelina.jpg'));
  const added = await maskface('enroll', more, '--gallery', gallery, '--json');
  t.equal(added.code, 0, added.stderr);
  t.equal(JSON.parse(readFileSync(gallery, 'utf8')).entries.length, summary.enrolled + 1);
  const angelina = await maskface('search', join(dataDir, 'deepface_testset', 'img2.jpg'), '--gallery', gallery, '--k', '1', '--json');
  t.equal(JSON.parse(angelina.stdout).faces[0].matches[0].id, 'angelina');

  const other = await maskface('enrol', more, '--gallery', gallery, '--model', 'mobilefacenet');
  t.equal(other.code, 1, 'a gallery of another model is refused');
  t.match(other.stderr, 'ERR_MODEL_MISMATCH');
});

t.test('verify, detect, heatmap', { skip: missingData('deepface_testset') }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'maskface-cli-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const photo = (name: string) => join(dataDir, 'deepface_testset', name);
  const same = JSON.parse((await maskface('verify', photo('img1.jpg'), photo('img2.jpg'), '--json')).stdout);
  t.equal(same.same, true, `img1 and img2: score ${same.score}`);
  t.ok(same.score >= same.threshold);
  const different = await maskface('verify', photo('img1.jpg'), photo('img17.jpg'), '--threshold', '0.5');
  t.match(different.stdout, /^different people: score -?[0-9.]+, threshold 0.5/);

  const drawn = join(work, 'couple.png');
  const detected = await maskface('detect', photo('couple.jpg'), '--out', drawn, '--json');
  t.equal(detected.code, 0, detected.stderr);
  t.equal(JSON.parse(detected.stdout).faces.length, 2);
  t.equal(readFileSync(drawn).subarray(0, 8).toString('hex'), pngSignature, 'a PNG is drawn');

  const heat = join(work, 'heat.png');
  const heatmap = await maskface('heatmap', photo('couple.jpg'), '--out', heat);
  t.equal(heatmap.code, 0, heatmap.stderr);
  t.match(heatmap.stdout, '2 faces');
  t.equal(readFileSync(heat).subarray(0, 8).toString('hex'), pngSignature);
  const none = await maskface('verify', photo('img1.jpg'), join(repoRoot, 'test', 'fixtures', 'no-face.png'));
  t.equal(none.code, 2);
  t.match(none.stderr, 'no face found in');
});

t.test('eval: a labelled folder and an insightface pair set', { skip: missingData('deepface_testset') }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'maskface-cli-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const out = join(work, 'eval.json');
  const roc = join(work, 'roc.png');
  const folder = await maskface(
    'eval',
    join(dataDir, 'deepface_testset'),
    '--labels',
    join(dataDir, 'deepface_testset', 'labels_derived.csv'),
    '--out',
    out,
    '--roc',
    roc,
  );
  t.equal(folder.code, 0, folder.stderr);
  const report = JSON.parse(readFileSync(out, 'utf8'));
  t.equal(report.photos, 61);
  const shipped = JSON.parse(readFileSync(join(repoRoot, 'models', 'maskface-mbf-cal.json'), 'utf8'));
  t.equal(report.modelId, shipped.sha256, 'the report names the model it measured by its sha256');
  t.equal(report.splits[0].name, 'bare vs bare');
  t.ok(report.splits[0].identification.rank1 >= 0.95, `deepface leave-one-out rank-1 ${report.splits[0].identification.rank1}`);
  t.match(folder.stdout, /bare vs bare\s+(0\.9\d+|1\.0000)/);
  t.equal(readFileSync(roc).subarray(0, 8).toString('hex'), pngSignature, 'the ROC curve is drawn');

  const pairs = await maskface('eval', join(repoRoot, 'test', 'fixtures', 'pairs-lfw-4.bin'), '--json');
  t.equal(pairs.code, 0, pairs.stderr);
  const measured = JSON.parse(pairs.stdout);
  t.equal(measured.pairs, 4);
  t.equal(measured.splits[0].verification.genuinePairs, 2);
  t.equal(measured.splits[0].verification.impostorPairs, 2);
  t.equal(measured.bestAccuracy, 1, 'the 4 LFW pairs are told apart');
  t.equal(measured.flip, false);

  const flipped = await maskface('eval', join(repoRoot, 'test', 'fixtures', 'pairs-lfw-4.bin'), '--flip', '--json');
  t.equal(flipped.code, 0, flipped.stderr);
  const withFlip = JSON.parse(flipped.stdout);
  t.equal(withFlip.flip, true, 'the report says the embeddings were flipped');
  t.equal(withFlip.bestAccuracy, 1, 'the 4 LFW pairs are told apart with --flip too');
  t.not(withFlip.bestThreshold, measured.bestThreshold, '--flip changed the scores');
});

t.test('bench names the threads, the gallery scan SIMD level and the CPU flags it ran with', async (t) => {
  const result = await maskface('bench', '--iterations', '1', '--gallery', '500', '--threads', '1', '--model', 'maskface-mbf-cal');
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /^threads: 1 intra-op per ONNX Runtime session, \d+ for gallery search/m);
  t.match(result.stdout, /gallery scan SIMD: (avx512|avx2|scalar); CPU flags: /);
  t.match(result.stdout, /^\s+8\s+[\d.]+\s+[\d.]+\s+[\d.]+/m, 'a row for batch 8');
  t.match(result.stdout, /onnxruntime-node is not installed in this project/, 'says how to get the comparison');
});

t.test('bench compares with onnxruntime-node when the project has it', async (t) => {
  // .cache/test-peers holds onnxruntime-node (scripts/fetch-test-peers.mjs), as a user's project would.
  const project = join(repoRoot, '.cache', 'test-peers');
  const result = await maskfaceIn(project, 'bench', '--iterations', '2', '--gallery', '200', '--threads', '1', '--model', 'mobilefacenet');
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /the same model through onnxruntime-node/);
  for (const size of [1, 8, 32]) {
    t.match(result.stdout, new RegExp(`^\\s+${size}\\s+[\\d.]+\\s+[\\d.]+x\\s+[\\d.]+\\s+[\\d.]+x$`, 'm'), `ratios for batch ${size}`);
  }
  const int8 = await maskfaceIn(project, 'bench', '--iterations', '1', '--gallery', '200', '--threads', '1', '--model', 'maskface-mbf-cal-int8');
  t.equal(int8.code, 0, int8.stderr);
  t.match(int8.stdout, /onnxruntime-node cannot run this int8 model/);
});
