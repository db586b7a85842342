// The packed package installs like sharp: on a machine with no compiler, with and without install
// scripts, it loads prebuilds/<platform>-<arch>/maskface.napi.glibc.node with its
// libonnxruntime.so.1, uses the bundled default model, and the README's "Use" snippet runs as
// written, on Node 20 and on the newest Node the npm registry's `node` package offers.
// `npm pack` runs scripts/prepack.mjs, which builds the prebuild first when it is missing or stale.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import t from 'tap';
import { dataDir, missingData, repoRoot } from '../helpers/data.js';

const platform = `${process.platform}-${process.arch}`;
const work = mkdtempSync(join(tmpdir(), 'maskface-install-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** A PATH with node, npm and the archive tools only: no cmake, make or C/C++ compiler. */
function bareBin(): string {
  const bin = join(work, 'bin');
  mkdirSync(bin);
  const which = (name: string) => execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  symlinkSync(process.execPath, join(bin, 'node'));
  for (const tool of ['npm', 'npx', 'tar', 'gzip', 'sh']) symlinkSync(which(tool), join(bin, tool));
  return bin;
}

/** The first ```js block after "## Use" in the README. */
function readmeSnippet(): string {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const use = readme.slice(readme.indexOf('\n## Use'));
  const match = /```js\n([\s\S]*?)```/.exec(use);
  if (!match) throw new Error('README.md has no ```js block under "## Use"');
  return match[1]!;
}

const bin = bareBin();
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: bin,
  MASKFACE_SKIP_MODEL_DOWNLOAD: '',
  MASKFACE_BINDING: '',
  MASKFACE_CACHE_DIR: join(work, 'cache'),
};
let tarball = '';
let files: string[] = [];

t.before(() => {
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: repoRoot, encoding: 'utf8' })) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = join(work, packed[0]!.filename);
  files = packed[0]!.files.map((f) => f.path);
});

function install(name: string, flags: string[]): string {
  const app = join(work, name);
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', ...flags, tarball], { cwd: app, env, encoding: 'utf8', stdio: 'pipe' });
  return app;
}

t.test('the tarball holds the prebuild, its runtime, the compiled JavaScript and the bundled model', async (t) => {
  for (const file of [`prebuilds/${platform}/maskface.napi.glibc.node`, `prebuilds/${platform}/libonnxruntime.so.1`, 'dist/cjs/index.js', 'dist/esm/index.js', 'models/maskface-mbf-cal.onnx', 'models/maskface-mbf-cal.json']) {
    t.ok(files.includes(file), file);
  }
  t.notOk(files.some((f) => /^(build|\.cache|lib|test|native\/tests|native\/fuzz)\//.test(f)), 'no sources of tests, build outputs or caches');
});

t.test('the install PATH has no compiler', async (t) => {
  for (const tool of ['cmake', 'make', 'cc', 'gcc', 'g++', 'c++', 'clang', 'clang++', 'nvcc']) {
    t.equal(spawnSync(tool, ['--version'], { env }).error?.message.includes('ENOENT'), true, `${tool} is not found`);
  }
});

for (const [name, flags] of [
  ['with-scripts', []],
  ['ignore-scripts', ['--ignore-scripts']],
] as const) {
  t.test(`npm install of the tarball ${name === 'with-scripts' ? 'with' : 'without'} install scripts compiles nothing and loads`, async (t) => {
    const app = install(name, [...flags]);
    const installed = join(app, 'node_modules', 'maskface');
    t.notOk(existsSync(join(installed, 'build')), 'nothing was compiled');
    const cudaLibrary = existsSync(join(repoRoot, 'prebuilds', platform, 'libmaskface_cuda.so')) ? ['libmaskface_cuda.so'] : [];
    t.same(readdirSync(join(installed, 'prebuilds', platform)).sort(), [...cudaLibrary, 'libonnxruntime.so.1', 'maskface.napi.glibc.node', 'maskface.sources.json'].sort());
    const script = `Promise.all([import('maskface'), import('maskface/setup')]).then(([m, setup]) => setup.ensureModel(m.defaultModel).then((model) => console.log(JSON.stringify({ ort: m.versions().onnxruntime, model }))))`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, env, encoding: 'utf8' }));
    t.same(out, { ort: '1.29.0', model: join(installed, 'models', 'maskface-mbf-cal.onnx') }, 'ONNX Runtime loads; the default model is the bundled file');
    t.notOk(existsSync(join(env.MASKFACE_CACHE_DIR!, 'models', 'maskface-mbf-cal.onnx')), 'the bundled model was not downloaded');
  });
}

/** The newest Node of the registry's `node` package, installed once into .cache/node-latest. */
function newestNode(): { version: string; path: string } {
  const version = execFileSync('npm', ['view', 'node', 'version'], { encoding: 'utf8' }).trim();
  const prefix = join(repoRoot, '.cache', 'node-latest', version);
  const path = join(prefix, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(path)) {
    mkdirSync(prefix, { recursive: true });
    writeFileSync(join(prefix, 'package.json'), '{ "private": true }\n');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', `node@${version}`], { cwd: prefix, stdio: 'pipe' });
  }
  return { version, path };
}

t.test("the README's Use snippet runs as written in the installed package", { skip: missingData('deepface_testset') }, async (t) => {
  const app = join(work, 'with-scripts');
  copyFileSync(join(dataDir, 'deepface_testset', 'img1.jpg'), join(app, 'alice.jpg'));
  copyFileSync(join(dataDir, 'deepface_testset', 'couple.jpg'), join(app, 'entrance.jpg'));
  writeFileSync(join(app, 'snippet.mjs'), readmeSnippet());
  const latest = newestNode();
  for (const [label, node] of [
    [`Node ${process.version}`, process.execPath],
    [`Node v${latest.version} (newest on the registry)`, latest.path],
  ] as const) {
    const run = spawnSync(node, ['snippet.mjs'], { cwd: app, env: { ...env, PATH: `${dirname(node)}${delimiter}${bin}` }, encoding: 'utf8' });
    t.equal(run.status, 0, `${label}: exit status 0${run.stderr ? `\n${run.stderr}` : ''}`);
    // One line per face of the couple photo; the gallery holds alice only, so both name her.
    const scores = [...run.stdout.matchAll(/ alice (-?\d\.\d{3})/g)].map((m) => Number(m[1]));
    t.equal(scores.length, 2, `${label}: both faces of the couple photo are reported\n${run.stdout}`);
    t.ok(Math.max(...scores) > 0.5 && Math.min(...scores) < 0.3, `${label}: alice scores high, the other face low (${scores.join(', ')})`);
  }
});
