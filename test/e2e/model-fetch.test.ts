import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { repoRoot } from '../helpers/data.js';

t.test('EXPECTED FAILURE - an unreachable registry gives ERR_MODEL_FETCH with a clear message', async (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'maskface-cache-'));
  const npmCache = mkdtempSync(join(tmpdir(), 'maskface-npm-'));
  t.teardown(() => {
    rmSync(cache, { recursive: true, force: true });
    rmSync(npmCache, { recursive: true, force: true });
  });
  const script = `import(${JSON.stringify(join(repoRoot, 'dist', 'esm', 'index.js'))})
    .then((m) => m.ensureModel('mobilefacenet'))
    .then(() => console.log(JSON.stringify({ ok: true })), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`;
  const out = execFileSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: {
      ...process.env,
      MASKFACE_CACHE_DIR: cache,
      npm_config_registry: 'http://127.0.0.1:9/',
      npm_config_cache: npmCache,
      npm_config_fetch_retries: '0',
      npm_config_offline: 'false',
    },
  });
  const result = JSON.parse(out.trim().split('\n').pop()!);
  t.equal(result.code, 'ERR_MODEL_FETCH');
  t.match(result.message, /Could not download faceplugin-face-recognition-js@0\.0\.1 from the npm registry/);
  t.match(result.message, /registry can be reached/);
});

t.test('a cached model loads without the registry', async (t) => {
  const script = `import(${JSON.stringify(join(repoRoot, 'dist', 'esm', 'index.js'))})
    .then((m) => m.ensureModel('mobilefacenet')).then((p) => console.log(p));`;
  const path = execFileSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: { ...process.env, npm_config_registry: 'http://127.0.0.1:9/', npm_config_fetch_retries: '0' },
  }).trim();
  t.match(path, /mobilefacenet\.onnx$/);
});
