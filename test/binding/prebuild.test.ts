// An install of the packed package on a machine that matches the prebuild compiles nothing and
// loads prebuilds/<platform>-<arch>/maskface.napi.glibc.node with its libonnxruntime.so.1; the
// bundled default model ships in models/ and is used from there, nothing downloaded.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/data.js';

const platform = `${process.platform}-${process.arch}`;
const prebuild = join(repoRoot, 'prebuilds', platform, 'maskface.napi.glibc.node');
const skip = existsSync(prebuild) ? false : `no prebuild at ${prebuild} (npm run prebuild)`;

t.test('installing the packed package uses the prebuild and compiles nothing', { skip }, async (t) => {
  t.ok(existsSync(join(repoRoot, 'prebuilds', platform, 'libonnxruntime.so.1')), 'libonnxruntime.so.1 ships beside the addon');
  const work = mkdtempSync(join(tmpdir(), 'maskface-install-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: repoRoot, encoding: 'utf8' }),
  ) as { filename: string; files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path);
  t.ok(files.includes(`prebuilds/${platform}/maskface.napi.glibc.node`), 'the tarball holds the prebuild');
  t.notOk(files.some((f) => f.startsWith('build/') || f.startsWith('.cache/')), 'no build outputs or caches in the tarball');
  t.ok(files.includes('models/maskface-mbf-cal.onnx') && files.includes('models/maskface-mbf-cal.json'), 'the tarball holds the bundled model');

  const app = join(work, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  // The install hook prepares the default model: bundled, so it must not fill the cache.
  const cache = join(work, 'cache');
  const env = { ...process.env, MASKFACE_SKIP_MODEL_DOWNLOAD: '', MASKFACE_BINDING: '', MASKFACE_CACHE_DIR: cache };
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', join(work, packed[0]!.filename)], {
    cwd: app,
    env,
    encoding: 'utf8',
  });
  const installed = join(app, 'node_modules', 'maskface');
  t.notOk(existsSync(join(installed, 'build')), 'nothing was compiled');
  // libmaskface_cuda.so ships where the prebuild was made with nvcc (the addon loads it only on a GPU).
  const cudaLibrary = existsSync(join(repoRoot, 'prebuilds', platform, 'libmaskface_cuda.so')) ? ['libmaskface_cuda.so'] : [];
  t.same(readdirSync(join(installed, 'prebuilds', platform)).sort(), [...cudaLibrary, 'libonnxruntime.so.1', 'maskface.napi.glibc.node']);
  const script = `import('maskface').then((m) => console.log(m.versions().onnxruntime))`;
  t.equal(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, env, encoding: 'utf8' }).trim(), '1.29.0');
  const modelScript = `import('maskface').then((m) => m.ensureModel(m.defaultModel)).then(console.log)`;
  t.equal(
    execFileSync(process.execPath, ['--input-type=module', '-e', modelScript], { cwd: app, env, encoding: 'utf8' }).trim(),
    join(installed, 'models', 'maskface-mbf-cal.onnx'),
    'the default model is the bundled file of the installed package',
  );
  t.notOk(existsSync(cache), 'nothing was downloaded into the model cache');
});
