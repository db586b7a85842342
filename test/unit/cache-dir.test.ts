// Models and the GPU runtime are cached in the user's cache folder, so they outlive reinstalls.
import { homedir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cacheRoot } from '../../dist/cjs/setup/models.js';
import { gpuRuntimeDir } from '../../dist/cjs/setup/gpu-runtime.js';

t.test('cache root: MASKFACE_CACHE_DIR, else $XDG_CACHE_HOME/maskface, else ~/.cache/maskface', async (t) => {
  t.equal(cacheRoot({ MASKFACE_CACHE_DIR: '/srv/mf', XDG_CACHE_HOME: '/xdg' }), '/srv/mf');
  t.equal(cacheRoot({ XDG_CACHE_HOME: '/xdg' }), join('/xdg', 'maskface'));
  t.equal(cacheRoot({ XDG_CACHE_HOME: 'relative/cache' }), join(homedir(), '.cache', 'maskface'), 'a relative XDG_CACHE_HOME is ignored (XDG spec)');
  t.equal(cacheRoot({}), join(homedir(), '.cache', 'maskface'));
  t.notMatch(cacheRoot({}), /node_modules/, 'never inside the package');
  t.equal(gpuRuntimeDir({ XDG_CACHE_HOME: '/xdg' }), join('/xdg', 'maskface', 'onnxruntime-gpu-1.29.0'));
});
