import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { MaskFaceError, versions } from '../../dist/esm/index.js';
import { adviceFor, bindingCandidates, loadBinding, native } from '../../dist/cjs/runtime/binding-loader.js';

t.test('the addon loads beside its ONNX Runtime and reports versions', async (t) => {
  const v = versions();
  t.equal(v.onnxruntime, '1.29.0');
  t.equal(v.napi, 8);
  t.match(v.maskface, /^\d+\.\d+\.\d+$/);
});

t.test('candidates: the build, then prebuilds; MASKFACE_BINDING alone when set (no fallback)', async (t) => {
  t.same(bindingCandidates('/pkg', {}), [
    '/pkg/build/Release/maskface.node',
    `/pkg/prebuilds/${process.platform}-${process.arch}/maskface.napi.glibc.node`,
  ]);
  t.same(bindingCandidates('/pkg', { MASKFACE_BINDING: '/x/maskface.node' }), ['/x/maskface.node']);
});

t.test('EXPECTED FAILURE - every candidate fails: one error listing each reason with advice', async (t) => {
  const dir = t.testdir({});
  const garbage = join(dir, 'garbage.node');
  writeFileSync(garbage, 'not an ELF file\n'.repeat(512));
  const error = t.throws(() => loadBinding([join(dir, 'missing.node'), garbage])) as unknown as MaskFaceError;
  t.ok(error instanceof MaskFaceError);
  t.equal(error.code, 'ERR_BINDING_LOAD');
  t.match(error.message, /missing\.node: not found/);
  t.match(error.message, /garbage\.node: .*invalid ELF header/);
  t.match(error.message, /Possible solutions/);
  t.match(adviceFor("version `GLIBCXX_3.4.32' not found"), /newer C\/C\+\+ runtime/);
  t.equal(adviceFor('libonnxruntime.so.1: cannot open shared object file'), undefined, 'the addon does not link ONNX Runtime');
});

t.test('native errors are MaskFaceError instances with codes', async (t) => {
  const binding = native();
  const error = t.throws(() => new binding.GalleryStore(0)) as unknown as MaskFaceError;
  t.ok(error instanceof MaskFaceError);
  t.equal(error.code, 'ERR_INVALID_ARGUMENT');
  t.throws(() => new (binding as unknown as { Session: new () => unknown }).Session(), { code: 'ERR_INVALID_ARGUMENT' }, 'Session cannot be built from JS');
  await t.rejects(binding.loadSession(new Uint8Array([1, 2, 3]), { intraOpThreads: 1, interOpThreads: 1, spinning: false, maxBatchSize: 32, provider: 'cpu', deviceId: 0, fp16: false, engineCacheDir: null, deviceInput: false }), {
    name: 'MaskFaceError',
    code: 'ERR_MODEL_LOAD',
  });
});
