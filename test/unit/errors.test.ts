import t from 'tap';
import { MaskFaceError, errorCodes } from '../../dist/esm/index.js';
import { invalidArgument, withCallSite } from '../../dist/cjs/api/errors.js';

t.test('MaskFaceError carries name, code, details and cause', async (t) => {
  const cause = new Error('inner');
  const error = new MaskFaceError('boom', 'ERR_INFERENCE', { cause, details: { a: 1 } });
  t.equal(error.name, 'MaskFaceError');
  t.equal(error.code, 'ERR_INFERENCE');
  t.same(error.details, { a: 1 });
  t.equal(error.cause, cause);
  t.equal(new MaskFaceError('x', 'ERR_NOPE' as never).code, 'ERR_INTERNAL', 'unknown codes become ERR_INTERNAL');
  t.ok(errorCodes.includes('ERR_DISPOSED'));
});

t.test('argument errors share one message format', async (t) => {
  t.equal(invalidArgument('k', 'integer in [1, 4096]', 0).message, 'Expected integer in [1, 4096] for k but received 0 of type number');
  t.equal(invalidArgument('face.data', 'Uint8Array', null).message, 'Expected Uint8Array for face.data but received null');
  t.match(invalidArgument('x', 'y', new Float32Array(3)).message, /a Float32Array of length 3/);
});

t.test('async native failures get the caller stack and keep their code', async (t) => {
  const callSite = new Error();
  const nativeLike = Object.assign(new Error('native failure'), { code: 'ERR_INFERENCE' });
  const error = (await withCallSite(callSite, Promise.reject(nativeLike)).catch((e: unknown) => e)) as MaskFaceError;
  t.ok(error instanceof MaskFaceError);
  t.equal(error.code, 'ERR_INFERENCE');
  t.match(error.stack, /errors\.test\.ts/);
});

t.test('one list of error codes: the addon, the TypeScript list and the docs agree', async (t) => {
  const { native } = await import('../../dist/cjs/runtime/binding-loader.js');
  const { typescriptOnlyErrorCodes } = await import('../../dist/cjs/api/errors.js');
  const nativeCodes = native().errorCodes();
  for (const code of nativeCodes) t.ok((errorCodes as readonly string[]).includes(code), `${code} (native) is in errorCodes`);
  for (const code of errorCodes) {
    t.ok(nativeCodes.includes(code) !== typescriptOnlyErrorCodes.includes(code), `${code} comes from native code or is listed as TypeScript-only, not both`);
  }
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { repoRoot } = await import('../helpers/data.js');
  const api = readFileSync(join(repoRoot, 'docs', 'api.md'), 'utf8');
  const documented = [...api.matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  t.same([...documented].sort(), [...errorCodes].sort(), 'the error table of docs/api.md lists every code, once');
});
