// Execution providers on this machine: what listProviders() reports, that 'auto' says what it
// chose, that an explicit provider never falls back, which ONNX Runtime library a process loads,
// and (with MASKFACE_TEST_GPU_RUNTIME=1, as CI sets it) the real GPU runtime from npm: it loads,
// has the CUDA and TensorRT providers compiled in, embeds on the CPU exactly as the CPU runtime
// does, and refuses a GPU session here with the reason.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadedRuntime, native, runtimeLibrary } from '../../dist/cjs/runtime/binding-loader.js';
import { GPU_RUNTIME_FILES, gpuRuntimeDir } from '../../dist/cjs/setup/gpu-runtime.js';
import { FaceRecognizer, MaskFaceError, gpuStatus, listProviders } from '../../dist/esm/index.js';
import { MASKFACE_ORT_SONAME, readSoname } from '../../dist/cjs/setup/elf-soname.js';
import { engineCacheKey } from '../../dist/cjs/api/providers.js';
import { inFreshProcess, repoRoot } from '../helpers/data.js';

t.test('listProviders: cpu is always available; a GPU provider that is not says why', async (t) => {
  const list = listProviders();
  t.same(list.map((p) => p.name), ['cpu', 'cuda', 'tensorrt']);
  t.match(list[0], { name: 'cpu', compiled: true, available: true, reason: undefined });
  const runtime = loadedRuntime();
  for (const p of list.slice(1)) {
    t.equal(p.compiled, runtime.providers.includes(p.name === 'cuda' ? 'CUDAExecutionProvider' : 'TensorrtExecutionProvider'));
    if (!p.available) t.match(p.reason, /\S{10,}/, `${p.name}: the reason is given`);
    else t.equal(p.reason, undefined);
  }
  const status = gpuStatus();
  t.equal(status.runtime.version, '1.29.0');
  t.ok(existsSync(status.runtime.path), 'the loaded runtime file exists');
  if (!status.driver.loaded) {
    t.match(status.driver.error, /libcuda\.so\.1|driver/, 'no driver: the error names it');
    t.same(status.devices, []);
    t.equal(status.kernels.loaded, false, 'the CUDA kernel library is never loaded without a driver');
  }
});

t.test("'auto' reports what it chose; an explicit GPU provider that cannot run rejects, never falls back", async (t) => {
  const cuda = listProviders().find((p) => p.name === 'cuda')!;
  const recognizer = await FaceRecognizer.load(undefined, { cpu: { intraOpThreads: 1 } });
  t.teardown(() => recognizer.dispose());
  t.equal(recognizer.provider, cuda.available ? 'cuda' : 'cpu');
  t.match(recognizer.providerReason, /^auto: /);
  if (!cuda.available) t.ok(recognizer.providerReason.includes(cuda.reason!.slice(0, 30)) || /no CUDA provider/.test(recognizer.providerReason));

  for (const info of listProviders().filter((p) => p.name !== 'cpu' && !p.available)) {
    const error = (await FaceRecognizer.load(undefined, { provider: info.name }).catch((e) => e)) as MaskFaceError;
    t.ok(error instanceof MaskFaceError, `${info.name}: MaskFaceError`);
    t.equal(error.code, 'ERR_PROVIDER_UNAVAILABLE');
    t.equal(error.message, `Provider '${info.name}' is unavailable: ${info.reason}`);
  }
  const cpu = await FaceRecognizer.load(undefined, { provider: 'cpu', cpu: { intraOpThreads: 1 } });
  t.equal(cpu.provider, 'cpu');
  t.equal(cpu.providerReason, 'asked for');
  await cpu.dispose();
});

t.test('BAD CALL: GPU options', async (t) => {
  const cases: [string, object, RegExp][] = [
    ['provider', { provider: 'gpu' }, /options\.provider/],
    ['gpu not an object', { gpu: 3 }, /options\.gpu/],
    ['deviceId negative', { gpu: { deviceId: -1 } }, /options\.gpu\.deviceId/],
    ['deviceId fractional', { gpu: { deviceId: 0.5 } }, /options\.gpu\.deviceId/],
    ['fp16 not boolean', { gpu: { fp16: 'yes' } }, /options\.gpu\.fp16/],
    ['engineCacheDir empty', { gpu: { engineCacheDir: '' } }, /options\.gpu\.engineCacheDir/],
    ['alignOnDevice not boolean', { gpu: { alignOnDevice: 1 } }, /options\.gpu\.alignOnDevice/],
  ];
  for (const [name, options, message] of cases) {
    await t.rejects(FaceRecognizer.load(undefined, options as never), { code: 'ERR_INVALID_ARGUMENT', message }, name);
  }
});

t.test('alignment on the GPU: refused on a CPU session, in lib/ and in the addon', async (t) => {
  await t.rejects(FaceRecognizer.load(undefined, { provider: 'cpu', gpu: { alignOnDevice: true } }), {
    code: 'ERR_PROVIDER_UNAVAILABLE',
    message: /gpu\.alignOnDevice needs a CUDA or TensorRT session; this one runs on the CPU \(asked for\)/,
  });
  const bytes = readFileSync(join(repoRoot, 'models', 'maskface-mbf-cal.onnx'));
  await t.rejects(
    native().loadSession(bytes, { intraOpThreads: 1, interOpThreads: 1, spinning: false, maxBatchSize: 32, provider: 'cpu', deviceId: 0, fp16: true, engineCacheDir: null, deviceInput: true }),
    { code: 'ERR_PROVIDER_UNAVAILABLE', message: /alignment on the GPU needs a CUDA or TensorRT session/ },
  );
});

const cudaAvailable = listProviders().find((p) => p.name === 'cuda')!.available;
t.test('alignment on the GPU embeds as alignment on the CPU', { skip: cudaAvailable ? false : 'CUDA is not available here' }, async (t) => {
  const faces = [0, 1, 2, 3].map((seed) => {
    const data = new Uint8Array(150 * 130 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + seed * 31 + ((i / 450) | 0)) & 0xff;
    return { data, width: 150, height: 130, landmarks: [50 + seed, 60, 95, 58, 72, 80, 55, 100, 92, 101] };
  });
  await using host = await FaceRecognizer.load(undefined, { provider: 'cuda' });
  await using device = await FaceRecognizer.load(undefined, { provider: 'cuda', gpu: { alignOnDevice: true } });
  const a = await host.embedBatch(faces);
  const b = await device.embedBatch(faces);
  for (let i = 0; i < faces.length; i++) {
    const cosine = a.at(i).vector.reduce((sum, v, j) => sum + v * b.at(i).vector[j]!, 0);
    t.ok(cosine > 0.9999, `face ${i}: cosine ${cosine.toFixed(6)}`);
  }
});

t.test('the ONNX Runtime library: MASKFACE_ORT_LIBRARY alone, else an installed GPU runtime, else the CPU one', async (t) => {
  const binding = '/pkg/build/Release/maskface.node';
  t.same(runtimeLibrary(binding, { MASKFACE_ORT_LIBRARY: '/x/libonnxruntime.so.1' }), {
    path: '/x/libonnxruntime.so.1',
    origin: 'MASKFACE_ORT_LIBRARY',
  });
  const cache = mkdtempSync(join(tmpdir(), 'maskface-runtime-'));
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  const env = { MASKFACE_CACHE_DIR: cache };
  t.equal(runtimeLibrary(binding, env).path, '/pkg/build/Release/libonnxruntime.so.1', 'nothing installed: the CPU runtime');
  const gpu = gpuRuntimeDir(env);
  mkdirSync(gpu, { recursive: true });
  for (const file of GPU_RUNTIME_FILES) writeFileSync(join(gpu, file), '');
  t.equal(runtimeLibrary(binding, env).path, '/pkg/build/Release/libonnxruntime.so.1', 'no stamp (an interrupted install): not used');
  writeFileSync(join(gpu, 'maskface-gpu-runtime.json'), '{}');
  t.equal(runtimeLibrary(binding, env).path, '/pkg/build/Release/libonnxruntime.so.1', 'a stamp from before the SONAME rename: not used');
  writeFileSync(join(gpu, 'maskface-gpu-runtime.json'), JSON.stringify({ soname: 'libmaskfaceort.so.1' }));
  t.equal(runtimeLibrary(binding, env).path, join(gpu, 'libonnxruntime.so.1'), 'complete: the GPU runtime');
  rmSync(join(gpu, GPU_RUNTIME_FILES[1]!));
  t.equal(runtimeLibrary(binding, env).path, '/pkg/build/Release/libonnxruntime.so.1', 'a file missing: not used');

  // A process that cannot load the chosen library says so, with the path and what to do.
  const bad = inFreshProcess('return m.versions();', { MASKFACE_ORT_LIBRARY: join(cache, 'nothing.so') });
  t.equal(bad.error?.code, 'ERR_BINDING_LOAD');
  t.match(bad.error?.message, /Could not load ONNX Runtime, chosen as MASKFACE_ORT_LIBRARY: could not load ONNX Runtime from .*nothing\.so/);
  const notOrt = inFreshProcess('return m.versions();', { MASKFACE_ORT_LIBRARY: 'libz.so.1' });
  t.match(notOrt.error?.message, /libz\.so\.1 is not ONNX Runtime: it has no OrtGetApiBase/);
});

t.test('one ONNX Runtime per process: loading another library is refused', async (t) => {
  const current = loadedRuntime();
  t.same(native().loadRuntime(current.path), current, 'the same path: the same runtime');
  t.throws(() => native().loadRuntime('/elsewhere/libonnxruntime.so.1'), { code: 'ERR_BINDING_LOAD', message: /already loaded/ });
});

t.test('TensorRT engine cache key: model, TensorRT version and GPU', async (t) => {
  const status = {
    runtime: { path: '', version: '1.29.0', providers: [] },
    driver: { loaded: true, cudaVersion: '13.0', error: undefined },
    devices: [{ index: 0, name: 'NVIDIA H100 80GB HBM3', totalMemory: 85e9, computeCapability: '9.0' }],
    tensorrtVersion: '10.9.0',
    kernels: { loaded: false, path: '', error: 'x' },
  };
  const sha = 'ab'.repeat(32);
  t.equal(engineCacheKey(sha, 0, status), 'abababababababab-trt10.9.0-nvidia-h100-80gb-hbm3-sm90');
  t.not(engineCacheKey('cd'.repeat(32), 0, status), engineCacheKey(sha, 0, status), 'another model, another folder');
  t.not(engineCacheKey(sha, 0, { ...status, tensorrtVersion: '10.10.0' }), engineCacheKey(sha, 0, status), 'another TensorRT');
  t.throws(() => engineCacheKey(sha, 1, status), { code: 'ERR_PROVIDER_UNAVAILABLE', message: /No GPU with index 1/ });
});

// The GPU runtime itself (290 MB from npm): CI installs it into its own cache folder.
const gpuCache = join(repoRoot, '.cache', 'test-gpu-runtime');
const gpuSkip =
  process.env.MASKFACE_TEST_GPU_RUNTIME === '1' || existsSync(join(gpuCache, 'onnxruntime-gpu-1.29.0', 'maskface-gpu-runtime.json'))
    ? false
    : 'set MASKFACE_TEST_GPU_RUNTIME=1 to install the GPU runtime (290 MB from npm) and test it';

t.test('the GPU runtime from npm: loads, has CUDA and TensorRT, embeds like the CPU runtime', { skip: gpuSkip }, async (t) => {
  const env = { MASKFACE_CACHE_DIR: gpuCache };
  execFileSync(process.execPath, [join(repoRoot, 'dist', 'cjs', 'cli.js'), 'install-gpu'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const embedBody = `
    const r = await m.FaceRecognizer.load(undefined, { provider: 'cpu', cpu: { intraOpThreads: 1 } });
    const faces = [0, 1, 2].map((seed) => {
      const data = new Uint8Array(112 * 112 * 3);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + seed * 31 + ((i / 336) | 0)) & 0xff;
      return { data, width: 112, height: 112 };
    });
    const batch = await r.embedBatch(faces);
    const out = { runtime: m.gpuStatus().runtime, providers: m.listProviders(), vectors: [...batch].map((e) => [...e.vector]) };
    await r.dispose();
    return out;`;
  const gpu = inFreshProcess(embedBody, env);
  t.notOk(gpu.error, gpu.error?.message ?? 'the GPU runtime embeds');
  t.equal(gpu.ok.runtime.path, join(gpuCache, 'onnxruntime-gpu-1.29.0', 'libonnxruntime.so.1'), 'the GPU runtime was chosen');
  t.equal(gpu.ok.runtime.version, '1.29.0');
  t.equal(readSoname(readFileSync(gpu.ok.runtime.path))?.value, MASKFACE_ORT_SONAME, 'its SONAME is maskface\'s own');
  t.ok(gpu.ok.runtime.providers.includes('CUDAExecutionProvider') && gpu.ok.runtime.providers.includes('TensorrtExecutionProvider'));
  t.ok(gpu.ok.providers.every((p: { compiled: boolean }) => p.compiled), 'every provider compiled in');

  const cpu = inFreshProcess(embedBody, { MASKFACE_ORT_LIBRARY: join(repoRoot, 'build', 'Release', 'libonnxruntime.so.1') });
  t.notOk(cpu.error);
  for (let i = 0; i < 3; i++) {
    const a = gpu.ok.vectors[i] as number[];
    const b = cpu.ok.vectors[i] as number[];
    const cosine = a.reduce((sum, v, j) => sum + v * b[j]!, 0);
    t.ok(cosine > 0.99999, `face ${i}: cosine ${cosine.toFixed(7)} between the GPU and CPU runtimes on the CPU`);
  }

  // ONNX Runtime loads provider libraries from its own folder: without them, the reason says so.
  const lone = mkdtempSync(join(tmpdir(), 'maskface-lone-runtime-'));
  t.teardown(() => rmSync(lone, { recursive: true, force: true }));
  symlinkSync(join(gpuCache, 'onnxruntime-gpu-1.29.0', 'libonnxruntime.so.1'), join(lone, 'libonnxruntime.so.1'));
  const alone = inFreshProcess('return m.listProviders();', { MASKFACE_ORT_LIBRARY: join(lone, 'libonnxruntime.so.1') });
  t.match(alone.ok?.[1], { name: 'cuda', compiled: true, available: false, reason: /libonnxruntime_providers_shared\.so is missing/ });

  // Past maskface's own probe: ONNX Runtime's provider bridge itself is asked for CUDA and
  // refuses without a driver; the session is not created on the CPU instead.
  const cuda = listProviders().find((p) => p.name === 'cuda')!;
  if (!cuda.available) {
    const direct = inFreshProcess(
      `const { native } = await import(${JSON.stringify(join(repoRoot, 'dist', 'cjs', 'runtime', 'binding-loader.js'))});
       const { readFileSync } = await import('node:fs');
       const bytes = readFileSync(${JSON.stringify(join(repoRoot, 'models', 'maskface-mbf-cal.onnx'))});
       await native().loadSession(bytes, { intraOpThreads: 1, interOpThreads: 1, spinning: false, maxBatchSize: 32, provider: 'cuda', deviceId: 0, fp16: true, engineCacheDir: null, deviceInput: false });
       return 'created';`,
      env,
    );
    t.equal(direct.error?.code, 'ERR_PROVIDER_UNAVAILABLE', 'the native layer refuses too');
    t.match(direct.error?.message, /ONNX Runtime could not set up CUDAExecutionProvider/);
  }
});

t.test('onnxruntime-node loaded after maskface in the same process gets its own ONNX Runtime', async (t) => {
  t.equal(readSoname(readFileSync(loadedRuntime().path))?.value, MASKFACE_ORT_SONAME, 'the loaded runtime carries maskface\'s SONAME');
  const ortNode = join(repoRoot, '.cache', 'test-peers', 'node_modules', 'onnxruntime-node', 'dist', 'index.js');
  const both = inFreshProcess(
    `const recognizer = await m.FaceRecognizer.load(undefined, { provider: 'cpu', cpu: { intraOpThreads: 1 } });
     const face = { data: new Uint8Array(112 * 112 * 3).fill(90), width: 112, height: 112 };
     const before = (await recognizer.embed(face)).vector;
     const ort = (await import(${JSON.stringify(ortNode)})).default ?? (await import(${JSON.stringify(ortNode)}));
     const session = await ort.InferenceSession.create(${JSON.stringify(join(repoRoot, 'models', 'maskface-mbf-cal.onnx'))});
     const input = new ort.Tensor('float32', new Float32Array(3 * 112 * 112), [1, 3, 112, 112]);
     const out = await session.run({ input });
     const after = (await recognizer.embed(face)).vector;
     await recognizer.dispose();
     return { ortDim: out.embedding.dims[1], same: before.every((v, i) => v === after[i]) };`,
  );
  t.notOk(both.error, both.error?.message ?? 'both runtimes work');
  t.equal(both.ok?.ortDim, 512, 'onnxruntime-node ran the model');
  t.equal(both.ok?.same, true, 'maskface still embeds identically afterwards');
});
