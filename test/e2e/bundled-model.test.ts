// The bundled masked-face model: found inside the package without the network, checked against
// its sidecar, and the default of FaceRecognizer.load(). Its weights may be provisional, so
// nothing here asserts recognition quality.
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import t from 'tap';
import { defaultModel } from '../../dist/esm/index.js';
import { ensureModel } from '../../dist/esm/setup.js';
import { verifyBundledModel } from '../../dist/cjs/setup/models.js';
import { inFreshProcess, repoRoot, unreachableRegistry } from '../helpers/data.js';

const name = 'maskface-mbf-cal';
const modelsDir = join(repoRoot, 'models');
const sidecar = JSON.parse(readFileSync(join(modelsDir, `${name}.json`), 'utf8'));

t.test('the sidecar describes the bundled file', async (t) => {
  const bytes = readFileSync(join(modelsDir, `${name}.onnx`));
  t.equal(sidecar.name, name);
  t.equal(sidecar.bytes, bytes.length);
  t.equal(sidecar.sha256, createHash('sha256').update(bytes).digest('hex'));
  for (const key of ['version', 'licence', 'description']) t.type(sidecar[key], 'string', `sidecar has ${key}`);
});

t.test('the bundled model is the default and loads by name without the registry or the cache', async (t) => {
  t.equal(defaultModel, name);
  const cache = mkdtempSync(join(tmpdir(), 'maskface-cache-'));
  const npmCache = mkdtempSync(join(tmpdir(), 'maskface-npm-'));
  t.teardown(() => {
    rmSync(cache, { recursive: true, force: true });
    rmSync(npmCache, { recursive: true, force: true });
  });
  const run = inFreshProcess(
    `const path = await setup.ensureModel(${JSON.stringify(name)});
     const byDefault = await m.FaceRecognizer.load(undefined, { cpu: { intraOpThreads: 1 } });
     const byName = await m.FaceRecognizer.load(${JSON.stringify(name)}, { cpu: { intraOpThreads: 1 } });
     await byDefault.dispose();
     await byName.dispose();
     return { path, ids: [byDefault.model.id, byName.model.id], name: byDefault.model.name, regions: byDefault.info.regionsOutput };`,
    { MASKFACE_CACHE_DIR: cache, npm_config_cache: npmCache, ...unreachableRegistry },
  );
  const result = run.ok ?? run.error;
  t.equal(result.path, join(modelsDir, `${name}.onnx`), 'ensureModel returns the file inside the package');
  t.same(result.ids, [sidecar.sha256, sidecar.sha256], 'default and named load give the bundled file');
  t.equal(result.name, name);
  t.equal(result.regions, 'regions', 'a masked-face (CAL) model');
  t.same(readdirSync(cache), [], 'nothing was fetched or cached');
});

t.test('EXPECTED FAILURE - a damaged copy of the bundled model gives ERR_MODEL_LOAD', async (t) => {
  // A copy of models/ stands for an installed package; the real files are never modified.
  const fresh = () => {
    const dir = t.testdir({});
    for (const file of [`${name}.onnx`, `${name}.json`]) copyFileSync(join(modelsDir, file), join(dir, file));
    return dir;
  };
  const damaged = { name: 'MaskFaceError', code: 'ERR_MODEL_LOAD', message: /damaged.*reinstall/ };

  t.equal(await verifyBundledModel(name, modelsDir), join(modelsDir, `${name}.onnx`), 'the shipped file passes');
  t.equal(await ensureModel(name), join(modelsDir, `${name}.onnx`));

  let dir = fresh();
  truncateSync(join(dir, `${name}.onnx`), sidecar.bytes - 1);
  await t.rejects(verifyBundledModel(name, dir), { ...damaged, message: /has \d+ bytes, expected/ }, 'truncated');

  dir = fresh();
  const bytes = readFileSync(join(dir, `${name}.onnx`));
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
  writeFileSync(join(dir, `${name}.onnx`), bytes);
  await t.rejects(verifyBundledModel(name, dir), { ...damaged, message: /sha256/ }, 'same size, one byte changed');

  dir = fresh();
  unlinkSync(join(dir, `${name}.onnx`));
  await t.rejects(verifyBundledModel(name, dir), damaged, 'model file missing');

  dir = fresh();
  unlinkSync(join(dir, `${name}.json`));
  await t.rejects(verifyBundledModel(name, dir), damaged, 'sidecar missing');

  dir = fresh();
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({ ...sidecar, name: 'other' }));
  await t.rejects(verifyBundledModel(name, dir), damaged, 'sidecar of another model');
});
