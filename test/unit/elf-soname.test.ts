// lib/setup/elf-soname.ts on a real shared library (a copy of the loaded ONNX Runtime) and on bad input.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadedRuntime } from '../../dist/cjs/runtime/binding-loader.js';
import { MASKFACE_ORT_SONAME, readSoname, setSoname } from '../../dist/cjs/setup/elf-soname.js';

t.test('renames the SONAME in place, idempotently, never longer', async (t) => {
  const dir = t.testdir({});
  const copy = join(dir, 'libcopy.so');
  copyFileSync(loadedRuntime().path, copy);
  const size = readFileSync(copy).length;
  setSoname(copy, 'libonnxruntime.so.1');
  t.equal(readSoname(readFileSync(copy))?.value, 'libonnxruntime.so.1');
  setSoname(copy);
  t.equal(readSoname(readFileSync(copy))?.value, MASKFACE_ORT_SONAME);
  setSoname(copy);
  t.equal(readSoname(readFileSync(copy))?.value, MASKFACE_ORT_SONAME, 'a second rename changes nothing');
  t.equal(readFileSync(copy).length, size, 'the file keeps its size');
  t.throws(() => setSoname(copy, 'libmaskfaceort-longer.so.1'), /is longer than/);
  writeFileSync(join(dir, 'text'), 'not an ELF file at all, just some text');
  t.throws(() => readSoname(readFileSync(join(dir, 'text'))), /not a 64-bit little-endian ELF file/);
});
