// CommonJS consumers get the same API through require().
import { execFileSync } from 'node:child_process';
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
