// CommonJS consumers get the same API through require().
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/data.js';

t.test('require("maskface") works from CommonJS', async (t) => {
  const script = `
    const m = require(${JSON.stringify(repoRoot)});
    const e = new m.FaceEmbedding(Float32Array.of(1, 0), { id: 'x', dim: 2 });
    console.log(JSON.stringify({ similarity: e.similarity(e), onnxruntime: m.versions().onnxruntime, error: typeof m.MaskFaceError }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
  t.same(out, { similarity: 1, onnxruntime: '1.29.0', error: 'function' });
});

t.test('import and require in one process share one instance: one MaskFaceError for native errors', async (t) => {
  // A project that depends on maskface, resolved by name through package.json "exports".
  const project = mkdtempSync(join(tmpdir(), 'maskface-dual-'));
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(repoRoot, join(project, 'node_modules', 'maskface'), 'dir');
  const script = `
    const cjs = require('maskface');
    import('maskface').then(async (esm) => {
      const same = ['MaskFaceError', 'FaceRecognizer', 'Gallery', 'FaceEmbedding'].every((k) => esm[k] === cjs[k]);
      // A failure raised by ONNX Runtime in native code, called through the ES module side.
      let error;
      try { await esm.FaceRecognizer.load(new Uint8Array([8, 1, 18, 0])); } catch (e) { error = e; }
      console.log(JSON.stringify({ same, esm: error instanceof esm.MaskFaceError, cjs: error instanceof cjs.MaskFaceError, code: error && error.code }));
    });
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: project }));
  t.same(out, { same: true, esm: true, cjs: true, code: 'ERR_MODEL_LOAD' });
});
