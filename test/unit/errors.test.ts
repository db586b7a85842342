import t from 'tap';
import { MaskFaceError, errorCodes } from '../../dist/esm/index.js';
import { invalidArgument, withCallSite } from '../../dist/esm/errors.js';

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
