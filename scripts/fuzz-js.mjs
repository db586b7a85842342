#!/usr/bin/env node
// Mutation fuzzing of maskface's TypeScript readers of outside bytes: embedding bytes
// (FaceEmbedding.fromBytes), insightface pair sets (the pickle reader), ONNX protobuf
// (makeBatchSymbolic, setMetadata), binary PGM/PPM (decodeImage), the command line's gallery
// file. Each input must come back as a value or a MaskFaceError (the command line's reader may
// also say UsageError); any other exception, or a call over 2 s, is a finding, saved under
// build/fuzz-js/findings/ with the exception.
//
//   node scripts/fuzz-js.mjs [--runs N] [--seed S] [--only target]   (default 1,000,000 runs a target)
//
// Seeds are the files of test/fuzz-corpus/js-<target>/ (made by --write-seeds from the test
// fixtures; the pair-set seeds are small pickles written by Python's pickle, protocols 2, 4, 5). Mutations: bit flips, byte overwrites with boundary values, inserted and deleted
// runs, truncation, duplicated runs, splices of two seeds. Deterministic for a given --seed.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (name) => import(join(root, 'dist', 'cjs', name));
const { MaskFaceError, FaceEmbedding, decodeImage } = await dist('index.js');
const { parsePairSet } = await dist('cli/pair-set.js');
const { makeBatchSymbolic, setMetadata } = await dist('runtime/onnx-proto.js');
const { parseGalleryFile, UsageError } = await dist('cli/common.js');

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '1' },
    only: { type: 'string' },
    'write-seeds': { type: 'boolean', default: false },
  },
});
const corpusRoot = join(root, 'test', 'fuzz-corpus');
const model = { id: 'f'.repeat(64), dim: 16, name: 'fuzz' };

/** target name -> the call under test (may be async) */
const targets = {
  'embedding-bytes': (bytes) => FaceEmbedding.fromBytes(bytes, model),
  'pair-set': (bytes) => parsePairSet(bytes),
  'onnx-proto': (bytes) => {
    makeBatchSymbolic(bytes);
    return setMetadata(bytes, { 'maskface.name': 'x' });
  },
  netpbm: (bytes) => (bytes[0] === 0x50 && (bytes[1] === 0x35 || bytes[1] === 0x36) ? decodeImage(bytes) : undefined),
  'gallery-json': (bytes) => parseGalleryFile(new TextDecoder().decode(bytes), 'fuzz.json'),
};

function writeSeeds() {
  const unit = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i + 1));
  const norm = Math.hypot(...unit);
  const embedding = FaceEmbedding.fromVector(unit.map((v) => v / norm), model);
  const pgm = (w, h, type) => {
    const channels = type === '5' ? 1 : 3;
    const header = Buffer.from(`P${type}\n# fuzz seed\n${w} ${h}\n255\n`);
    return Buffer.concat([header, Buffer.from(Array.from({ length: w * h * channels }, (_, i) => (i * 37) & 255))]);
  };
  const gallery = JSON.stringify({
    format: 'maskface-gallery-json',
    version: 1,
    model: { id: model.id, dim: 4 },
    entries: [{ id: 'a', source: 'a.jpg' }, { id: 'b', source: 'b.jpg' }],
    vectors: Buffer.from(Float32Array.of(1, 0, 0, 0, 0, 1, 0, 0).buffer).toString('base64'),
  });
  const fixtures = join(root, 'test', 'fixtures');
  const seeds = {
    'embedding-bytes': { 'f32.bin': embedding.toBytes('f32'), 'f16.bin': embedding.toBytes('f16') },
    'onnx-proto': { 'contract-tiny.onnx': readFileSync(join(fixtures, 'contract-tiny.onnx')), 'attention-mask-tiny.onnx': readFileSync(join(fixtures, 'attention-mask-tiny.onnx')) },
    netpbm: { 'grey.pgm': pgm(5, 4, '5'), 'colour.ppm': pgm(3, 2, '6') },
    'gallery-json': { 'gallery.json': Buffer.from(gallery) },
  };
  for (const [target, files] of Object.entries(seeds)) {
    mkdirSync(join(corpusRoot, `js-${target}`), { recursive: true });
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(corpusRoot, `js-${target}`, name), bytes);
  }
}

function rng(seed) {
  let state = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
  return () => {
    state ^= state << 13n;
    state &= 0xffffffffffffffffn;
    state ^= state >> 7n;
    state ^= state << 17n;
    state &= 0xffffffffffffffffn;
    return Number(state >> 11n) / 2 ** 53;
  };
}

const boundary = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x3f, 0x40, 0x30, 0x39, 0x0a, 0x20];

function mutate(seeds, random) {
  const pick = (n) => Math.floor(random() * n);
  let bytes = Uint8Array.from(seeds[pick(seeds.length)]);
  const rounds = 1 + pick(4);
  for (let r = 0; r < rounds; r++) {
    const at = bytes.length === 0 ? 0 : pick(bytes.length);
    switch (pick(7)) {
      case 0:
        if (bytes.length) bytes[at] ^= 1 << pick(8);
        break;
      case 1:
        if (bytes.length) bytes[at] = boundary[pick(boundary.length)];
        break;
      case 2: {
        const run = Uint8Array.from({ length: 1 + pick(8) }, () => pick(256));
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...run, ...bytes.subarray(at)]);
        break;
      }
      case 3:
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(Math.min(bytes.length, at + 1 + pick(16)))]);
        break;
      case 4:
        bytes = bytes.slice(0, at);
        break;
      case 5: {
        const length = Math.min(bytes.length - at, 1 + pick(32));
        bytes = Uint8Array.from([...bytes.subarray(0, at + length), ...bytes.subarray(at, at + length), ...bytes.subarray(at + length)]);
        break;
      }
      default: {
        const other = seeds[pick(seeds.length)];
        const cut = pick(other.length + 1);
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...other.subarray(cut)]);
      }
    }
  }
  return bytes;
}

function acceptable(error, target) {
  return error instanceof MaskFaceError || (target === 'gallery-json' && error instanceof UsageError);
}

async function fuzz(target, runs, seed) {
  const folder = join(corpusRoot, `js-${target}`);
  const seeds = readdirSync(folder)
    .sort()
    .map((name) => new Uint8Array(readFileSync(join(folder, name))));
  const call = targets[target];
  const random = rng(seed);
  const findings = [];
  const started = performance.now();
  let accepted = 0;
  for (let i = 0; i < runs; i++) {
    const input = i < seeds.length ? seeds[i] : mutate(seeds, random);
    const begin = performance.now();
    try {
      await call(input);
      accepted++;
    } catch (error) {
      if (!acceptable(error, target)) findings.push({ input, error: `${error?.name}: ${error?.message}\n${error?.stack}` });
    }
    if (performance.now() - begin > 2000) findings.push({ input, error: `slow: ${(performance.now() - begin).toFixed(0)} ms` });
    if (findings.length >= 5) break;
  }
  const seconds = (performance.now() - started) / 1000;
  if (findings.length) {
    const out = join(root, 'build', 'fuzz-js', 'findings', target);
    mkdirSync(out, { recursive: true });
    findings.forEach((f, k) => {
      writeFileSync(join(out, `finding-${k}.bin`), f.input);
      writeFileSync(join(out, `finding-${k}.txt`), f.error);
    });
  }
  console.log(`${target}: ${runs} runs in ${seconds.toFixed(1)} s, ${accepted} accepted, ${findings.length} findings`);
  return findings.length;
}

if (values['write-seeds']) {
  writeSeeds();
  console.log(`seeds written under ${corpusRoot}/js-*`);
} else {
  const runs = Number(values.runs);
  let total = 0;
  for (const target of Object.keys(targets)) {
    if (values.only && values.only !== target) continue;
    total += await fuzz(target, runs, Number(values.seed));
  }
  if (total > 0) {
    console.error(`${total} findings: see build/fuzz-js/findings/`);
    process.exit(1);
  }
}
