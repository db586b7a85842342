// lib/cli/pair-set.ts: the insightface verification pair sets (lfw.bin, agedb_30.bin, ...), pickles read
// by a restricted stack machine. Fixtures (test/fixtures/README.md, written by
// test/fixtures/make-pair-set.py): 4 LFW pairs as Python 3 writes them (protocol 4) and as Python 2
// writes them (protocol 2, images as str); the other pickles here are built opcode by opcode.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { MaskFaceError } from '../../dist/cjs/api/errors.js';
import { parsePairSet, readPairSet } from '../../dist/cjs/cli/pair-set.js';
import { dataDir, repoRoot } from '../helpers/data.js';

const fixtures = join(repoRoot, 'test', 'fixtures');
const p4Path = join(fixtures, 'pairs-lfw-4.bin');
const p2Path = join(fixtures, 'pairs-lfw-4-p2.bin');
const p4 = new Uint8Array(readFileSync(p4Path));
const p2 = new Uint8Array(readFileSync(p2Path));

// What make-pair-set.py wrote: images 0-3 two same-person pairs, 4-7 two different-person pairs
// whose first images are images 0 and 2 again.
const sources = [
  'Aaron_Peirsol/Aaron_Peirsol_0002.jpg',
  'Aaron_Peirsol/Aaron_Peirsol_0003.jpg',
  'Aaron_Sorkin/Aaron_Sorkin_0001.jpg',
  'Aaron_Sorkin/Aaron_Sorkin_0002.jpg',
  'Aaron_Peirsol/Aaron_Peirsol_0002.jpg',
  'Edward_Norton/Edward_Norton_0002.jpg',
  'Aaron_Sorkin/Aaron_Sorkin_0001.jpg',
  'Edwina_Currie/Edwina_Currie_0004.jpg',
];
const sourceSizes = [2947, 3381, 3476, 3673, 2947, 3179, 3476, 3330];

// --- building pickles opcode by opcode --------------------------------------------------------
type Part = number | readonly number[] | Uint8Array;
const cat = (...parts: Part[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : Array.from(p))));
const u32 = (n: number): number[] => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24];
const u64 = (n: number): number[] => [...u32(n), ...u32(Math.floor(n / 2 ** 32))];
const ascii = (s: string): number[] => Array.from(Buffer.from(s, 'latin1'));
const op = {
  PROTO: (v: number) => [0x80, v],
  FRAME: (n: number) => [0x95, ...u64(n)],
  MARK: 0x28,
  STOP: 0x2e,
  EMPTY_LIST: 0x5d,
  APPEND: 0x61,
  APPENDS: 0x65,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  MEMOIZE: 0x94,
  REDUCE: 0x52,
  NONE: 0x4e,
  SHORT_BINBYTES: (b: Uint8Array) => cat(0x43, b.length, b),
  BINBYTES: (b: Uint8Array) => cat(0x42, u32(b.length), b),
  BINBYTES8: (b: Uint8Array) => cat(0x8e, u64(b.length), b),
  SHORT_BINSTRING: (b: Uint8Array) => cat(0x55, b.length, b),
  BINSTRING: (b: Uint8Array) => cat(0x54, u32(b.length), b),
  SHORT_BINUNICODE: (s: string) => cat(0x8c, Buffer.byteLength(s), Buffer.from(s)),
  BINUNICODE: (s: string) => cat(0x58, u32(Buffer.byteLength(s)), Buffer.from(s)),
  BINPUT: (i: number) => [0x71, i],
  LONG_BINPUT: (i: number) => [0x72, ...u32(i)],
  BINGET: (i: number) => [0x68, i],
  LONG_BINGET: (i: number) => [0x6a, ...u32(i)],
  GLOBAL: (module: string, name: string) => [0x63, ...ascii(`${module}\n${name}\n`)],
};
const bool = (b: boolean) => (b ? op.NEWTRUE : op.NEWFALSE);
const image = (n: number, seed = n) => Uint8Array.from({ length: n }, (_, i) => (i < 2 ? [0xff, 0xd8][i]! : (seed * 31 + i) & 255));

/** What Python 3's pickle.dumps((images, issame), protocol=4) writes (checked against CPython 3.11). */
function pickle4(images: readonly Uint8Array[], issame: readonly boolean[]): Uint8Array {
  const bytesOp = (b: Uint8Array) => (b.length < 256 ? op.SHORT_BINBYTES(b) : op.BINBYTES(b));
  const body = cat(
    op.EMPTY_LIST, op.MEMOIZE, op.MARK, ...images.flatMap((b) => [bytesOp(b), op.MEMOIZE]), op.APPENDS,
    op.EMPTY_LIST, op.MEMOIZE, op.MARK, ...issame.map(bool), op.APPENDS,
    op.TUPLE2, op.MEMOIZE, op.STOP,
  );
  return cat(op.PROTO(4), op.FRAME(body.length), body);
}

/** Asserts that parsing `bytes` throws ERR_INVALID_ARGUMENT matching `pattern`, and returns the error. */
function refusal(t: Test, bytes: Uint8Array, pattern: RegExp, message: string): MaskFaceError {
  const error = (() => {
    try {
      parsePairSet(bytes);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.ok(error instanceof MaskFaceError, `${message}: a MaskFaceError`);
  t.equal((error as MaskFaceError).code, 'ERR_INVALID_ARGUMENT', `${message}: ERR_INVALID_ARGUMENT`);
  t.match((error as Error).message, pattern, message);
  return error as MaskFaceError;
}

/** Parses and returns 'ok', or the error's constructor name and code; anything else escapes. */
function outcome(bytes: Uint8Array): string {
  try {
    parsePairSet(bytes);
    return 'ok';
  } catch (error) {
    return error instanceof MaskFaceError ? `MaskFaceError ${error.code}` : `${(error as Error)?.constructor?.name}: ${String(error)}`;
  }
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

// --- the fixtures -----------------------------------------------------------------------------
t.test('both fixtures read to the 4 pairs the generator wrote', async (t) => {
  for (const [name, path] of [['protocol 4', p4Path], ['Python 2, protocol 2', p2Path]] as const) {
    const set = await readPairSet(path);
    t.equal(set.images.length, 8, `${name}: 8 images`);
    t.same(set.issame, [true, true, false, false], `${name}: issame`);
    t.same(set.images.map((b) => b.length), sourceSizes, `${name}: image sizes`);
    for (const [i, b] of set.images.entries()) {
      t.same([b[0], b[1], b[b.length - 2], b[b.length - 1]], [0xff, 0xd8, 0xff, 0xd9], `${name}: image ${i} is a whole JPEG`);
    }
    t.same(Buffer.from(set.images[4]!), Buffer.from(set.images[0]!), `${name}: image 4 is image 0 again`);
    t.same(Buffer.from(set.images[6]!), Buffer.from(set.images[2]!), `${name}: image 6 is image 2 again`);
  }
  const a = parsePairSet(p4);
  const b = parsePairSet(p2);
  t.ok(a.images.every((image, i) => Buffer.from(image).equals(b.images[i]!)), 'the two files hold the same bytes');
  t.equal(a.images[0]!.buffer, p4.buffer, 'images are views into the bytes parsed, not copies');
});

const lfwDir = join(dataDir, 'lfw_aligned_100pair');
t.test('the fixture images are the JPEG files of the data set, byte for byte', { skip: existsSync(lfwDir) ? false : `${lfwDir} is absent` }, async (t) => {
  const dir = lfwDir;
  const set = parsePairSet(p4);
  for (const [i, source] of sources.entries()) {
    t.ok(Buffer.from(set.images[i]!).equals(readFileSync(join(dir, source))), `image ${i} is ${source}`);
  }
});

// --- the opcodes ------------------------------------------------------------------------------
const [a, b, c, d] = [image(3, 1), image(300, 2), image(5, 3), image(7, 4)];

t.test('the protocol-4 builder of this test writes what Python writes', async (t) => {
  const set = parsePairSet(p4);
  t.same(Buffer.from(pickle4(set.images, set.issame)), Buffer.from(p4));
});

t.test('every opcode of the format reads', async (t) => {
  // Each of these loads in CPython 3.11 (pickle.loads, encoding='bytes') to the same pair set.
  const cases: [string, Uint8Array, Uint8Array[], boolean[]][] = [
    ['protocol 4: SHORT_BINBYTES, BINBYTES, MEMOIZE, MARK, APPENDS', pickle4([a, b, c, d], [true, false]), [a, b, c, d], [true, false]],
    [
      'protocol 5: opcodes after the frame, BINBYTES8, APPEND, BINGET',
      cat(
        op.PROTO(5), op.FRAME(9), op.EMPTY_LIST, op.MEMOIZE, op.MARK, op.SHORT_BINBYTES(a), op.MEMOIZE,
        op.BINBYTES8(b), op.MEMOIZE, op.APPENDS, op.BINGET(1), op.APPEND, op.SHORT_BINBYTES(c), op.APPEND,
        op.EMPTY_LIST, op.NEWTRUE, op.APPEND, op.NEWFALSE, op.APPEND, op.TUPLE2, op.STOP,
      ),
      [a, b, a, c],
      [true, false],
    ],
    [
      'Python 2, protocol 2: SHORT_BINSTRING, BINSTRING, BINPUT, LONG_BINPUT, LONG_BINGET, MARK ... TUPLE',
      cat(
        op.PROTO(2), op.MARK, op.EMPTY_LIST, op.BINPUT(1), op.MARK, op.SHORT_BINSTRING(a), op.LONG_BINPUT(70001),
        op.BINSTRING(b), op.BINPUT(3), op.LONG_BINGET(70001), op.SHORT_BINSTRING(c), op.APPENDS,
        op.EMPTY_LIST, op.BINPUT(9), op.MARK, op.NEWTRUE, op.NEWFALSE, op.APPENDS, op.TUPLE, op.STOP,
        ascii('trailing bytes after STOP are not read'),
      ),
      [a, b, a, c],
      [true, false],
    ],
  ];
  for (const [name, bytes, images, issame] of cases) {
    const set = parsePairSet(bytes);
    t.same(set.images.map((x) => Buffer.from(x)), images.map((x) => Buffer.from(x)), `${name}: images`);
    t.same(set.issame, issame, `${name}: issame`);
  }
});

t.test('data of another shape is refused, and says what it found', async (t) => {
  const cases: [Uint8Array, RegExp][] = [
    [pickle4([a, b, c], [true]), /3 images for 1 pairs \(2 images expected\)/],
    [pickle4([a, b], [true, false]), /2 images for 2 pairs \(4 images expected\)/],
    [pickle4([], []), /holds no pairs/],
    [pickle4([a, new Uint8Array(0)], [true]), /image 1 is empty/],
    [cat(op.PROTO(4), op.EMPTY_LIST, op.EMPTY_LIST, op.EMPTY_LIST, op.TUPLE3, op.STOP), /2-tuple .* found a tuple of length 3/],
    [cat(op.PROTO(4), op.EMPTY_TUPLE, op.STOP), /found a tuple of length 0/],
    [cat(op.PROTO(4), op.EMPTY_LIST, op.TUPLE1, op.STOP), /found a tuple of length 1/],
    [cat(op.PROTO(4), op.EMPTY_LIST, op.EMPTY_LIST, op.STOP), /found a list of length 0/],
    [cat(op.PROTO(4), op.SHORT_BINBYTES(a), op.EMPTY_LIST, op.TUPLE2, op.STOP), /bins to be a list but found bytes of length 3/],
    [cat(op.PROTO(4), op.EMPTY_LIST, op.NEWTRUE, op.TUPLE2, op.STOP), /issame_list to be a list but found the bool True/],
    [
      cat(op.PROTO(4), op.EMPTY_LIST, op.MARK, op.SHORT_BINUNICODE('\u00ff\u00d8'), op.BINUNICODE('x'), op.APPENDS, op.EMPTY_LIST, op.NEWTRUE, op.APPEND, op.TUPLE2, op.STOP),
      /image 0 is a text string \(str\) of length 2, not bytes/,
    ],
    [
      cat(op.PROTO(4), op.EMPTY_LIST, op.MEMOIZE, op.MARK, op.SHORT_BINBYTES(a), op.SHORT_BINBYTES(b.subarray(0, 9)), op.APPENDS, op.BINGET(0), op.TUPLE2, op.STOP),
      /issame_list\[0\] is bytes of length 3, not a bool/,
    ],
  ];
  for (const [bytes, pattern] of cases) refusal(t, bytes, pattern, String(pattern));
});

t.test('malformed pickles are refused with the opcode and offset', async (t) => {
  const cases: [Uint8Array, RegExp][] = [
    [cat(op.PROTO(2), op.EMPTY_LIST, op.APPENDS, op.STOP), /APPENDS \(0x65\) at byte offset 3 has no MARK/],
    [cat(op.PROTO(2), op.MARK, op.STOP), /STOP \(0x2e\) at byte offset 3 finds the stack empty/],
    [cat(op.PROTO(2), op.EMPTY_LIST, op.MARK, op.APPEND, op.STOP), /APPEND \(0x61\) at byte offset 4 finds the stack empty/],
    [cat(op.PROTO(2), op.EMPTY_LIST, op.MARK, op.NEWTRUE, op.TUPLE2, op.STOP), /TUPLE2 \(0x86\) at byte offset 5 finds the stack empty/],
    [cat(op.PROTO(2), op.BINGET(7), op.STOP), /BINGET \(0x68\) at byte offset 2 reads memo 7, never stored/],
    [cat(op.PROTO(2), op.MEMOIZE, op.STOP), /MEMOIZE \(0x94\) at byte offset 2 finds the stack empty/],
    [cat(op.PROTO(2), op.SHORT_BINBYTES(a), op.NEWTRUE, op.APPEND, op.STOP), /APPEND \(0x61\) at byte offset 8 appends to bytes of length 3, not a list/],
    [cat(op.PROTO(6), op.STOP), /Unsupported pickle protocol 6 at byte offset 0/],
    [cat(op.PROTO(2), 0x54, 0xff, 0xff, 0xff, 0xff, op.STOP), /BINSTRING at byte offset 2 has a negative length -1/],
    [cat(op.PROTO(4), op.FRAME(100), op.STOP), /FRAME at byte offset 2 announces 100 bytes but 1 remain/],
    [cat(op.PROTO(4), 0x8e, 0, 0, 0, 0, 0, 0, 0, 0x80, 1, 2), /BINBYTES8 at byte offset 2 announces 9223372036854775808 bytes but 2 remain/],
    [cat(op.PROTO(4), 0x42, 0xff, 0xff, 0xff, 0xff, 1), /BINBYTES at byte offset 2 needs 4294967295 bytes of data but 1 remain/],
    [cat(op.PROTO(4), 0x72, 1, 2), /LONG_BINPUT at byte offset 2 needs 4 bytes of argument but 2 remain/],
    [cat(op.PROTO(4), op.EMPTY_LIST), /ends at byte offset 3 without a STOP opcode/],
    [new Uint8Array(0), /The pickle is empty/],
  ];
  for (const [bytes, pattern] of cases) refusal(t, bytes, pattern, String(pattern));
  t.throws(() => parsePairSet('lfw.bin' as never), { code: 'ERR_INVALID_ARGUMENT', message: /Expected a Uint8Array for bytes/ });
});

t.test('code is never run: GLOBAL, STACK_GLOBAL, REDUCE and every other opcode are refused by name', async (t) => {
  // pickle.dumps(os.system, protocol=2) and protocol=4, as CPython 3.11 writes them.
  const system2 = cat(0x80, 2, 0x63, ascii('posix\nsystem\n'), 0x71, 0, 0x2e);
  const system4 = cat(0x80, 4, 0x95, 0x14, 0, 0, 0, 0, 0, 0, 0, 0x8c, 5, ascii('posix'), 0x94, 0x8c, 6, ascii('system'), 0x94, 0x93, 0x94, 0x2e);
  // pickle.dumps(([b'\xff\xd8\xff\xd9'], [True]), protocol=2) by Python 3: bytes by way of _codecs.encode.
  const codecs = cat(
    128, 2, 93, 113, 0, 99, 95, 99, 111, 100, 101, 99, 115, 10, 101, 110, 99, 111, 100, 101, 10, 113, 1, 88, 8, 0, 0, 0, 195,
    191, 195, 152, 195, 191, 195, 153, 113, 2, 88, 6, 0, 0, 0, 108, 97, 116, 105, 110, 49, 113, 3, 134, 113, 4, 82, 113, 5, 97,
    93, 113, 6, 136, 97, 134, 113, 7, 46,
  );
  let error = refusal(t, system2, /^Unsupported pickle opcode GLOBAL \(0x63\) at byte offset 2 \(posix\.system\).*never runs pickled code/, 'GLOBAL');
  t.same(error.details, { offset: 2, opcode: 'GLOBAL', global: 'posix.system' });
  error = refusal(t, system4, /STACK_GLOBAL \(0x93\) at byte offset 28 \(posix\.system\)/, 'STACK_GLOBAL');
  t.equal(error.details?.offset, 28);
  refusal(t, cat(op.PROTO(2), op.EMPTY_TUPLE, op.EMPTY_TUPLE, op.REDUCE, op.STOP), /REDUCE \(0x52\) at byte offset 4/, 'REDUCE');
  refusal(t, codecs, /GLOBAL \(0x63\) at byte offset 5 \(_codecs\.encode\).*protocol 4 or higher/, 'Python 3 protocol 2');
  refusal(
    t,
    cat(op.PROTO(2), op.EMPTY_LIST, op.MARK, op.GLOBAL('numpy.core.multiarray', '_reconstruct'), op.STOP),
    /GLOBAL \(0x63\) at byte offset 4 \(numpy\.core\.multiarray\._reconstruct\).*numpy objects.*Python bools/,
    'numpy arrays',
  );
  refusal(t, cat(op.PROTO(2), op.EMPTY_LIST, op.MARK, op.NONE, op.APPENDS, op.STOP), /NONE \(0x4e\) at byte offset 4/, 'NONE');
  refusal(t, cat(op.PROTO(2), 0xff), /unknown opcode \(0xff\) at byte offset 2/, 'an unknown byte');
  refusal(t, cat(op.PROTO(2), 0x63, ascii('posix')), /GLOBAL \(0x63\) at byte offset 2: /, 'a GLOBAL cut short');
});

// --- damaged files ----------------------------------------------------------------------------
t.test('every truncation is a MaskFaceError naming an offset', async (t) => {
  for (const [name, bytes] of [['protocol 4', p4], ['Python 2, protocol 2', p2]] as const) {
    const bad: string[] = [];
    for (let k = 0; k < 64; k++) {
      const length = Math.floor((k * bytes.length) / 64);
      try {
        parsePairSet(bytes.subarray(0, length));
        bad.push(`${length}: parsed`);
      } catch (error) {
        const ok =
          error instanceof MaskFaceError &&
          error.code === 'ERR_INVALID_ARGUMENT' &&
          /byte offset \d+|is empty/.test(error.message) &&
          typeof error.details?.offset === 'number' &&
          (error.details.offset as number) <= length;
        if (!ok) bad.push(`${length}: ${String(error)}`);
      }
    }
    t.same(bad, [], `${name}: 64 truncations`);
  }
  t.match(outcome(p4.subarray(0, 1000)), 'MaskFaceError', 'a cut inside the frame');
  refusal(t, p2.subarray(0, 1000), /BINSTRING at byte offset 6 needs 2947 bytes of data but 989 remain/, 'a cut inside an image');
});

t.test('random byte flips give a pair set or a MaskFaceError, nothing else', async (t) => {
  const small4 = pickle4([a, c, d, image(40, 5)], [true, false]);
  const small2 = cat(
    op.PROTO(2), op.EMPTY_LIST, op.BINPUT(1), op.MARK, op.SHORT_BINSTRING(a), op.BINPUT(2), op.BINSTRING(c), op.BINPUT(3),
    op.SHORT_BINSTRING(d), op.BINPUT(4), op.BINGET(2), op.APPENDS, op.EMPTY_LIST, op.BINPUT(5), op.MARK, op.NEWFALSE,
    op.NEWTRUE, op.APPENDS, op.TUPLE2, op.LONG_BINPUT(6), op.STOP,
  );
  t.same(parsePairSet(small2).issame, [false, true], 'the small Python-2 pickle reads');
  const random = mulberry32(20240611);
  for (const [name, original] of [['the protocol-4 fixture', p4], ['a small protocol-4 pickle', small4], ['a small Python-2 pickle', small2]] as const) {
    const counts = new Map<string, number>();
    for (let trial = 0; trial < 200; trial++) {
      const bytes = Uint8Array.from(original);
      const flips = 1 + Math.floor(random() * 3);
      for (let f = 0; f < flips; f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      const result = outcome(bytes);
      counts.set(result, (counts.get(result) ?? 0) + 1);
    }
    t.same([...counts.keys()].filter((k) => k !== 'ok' && k !== 'MaskFaceError ERR_INVALID_ARGUMENT'), [], `${name}: ${JSON.stringify(Object.fromEntries(counts))}`);
    if (original !== p4) t.ok((counts.get('MaskFaceError ERR_INVALID_ARGUMENT') ?? 0) > 50, `${name}: most flips break it`);
  }
});

// --- readPairSet ------------------------------------------------------------------------------
t.test('readPairSet names the path in every error', async (t) => {
  const dir = t.testdir({});
  const missing = join(dir, 'missing.bin');
  await t.rejects(readPairSet(missing), {
    name: 'MaskFaceError',
    code: 'ERR_INVALID_ARGUMENT',
    message: /^Cannot read pair set .*missing\.bin: ENOENT/,
    details: { path: missing },
  });
  await t.rejects(readPairSet(dir), { code: 'ERR_INVALID_ARGUMENT', message: /Cannot read pair set .*EISDIR/ });
  const cut = join(dir, 'cut.bin');
  writeFileSync(cut, p2.subarray(0, 100));
  await t.rejects(readPairSet(cut), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /^Pair set .*cut\.bin: The pickle is truncated: BINSTRING at byte offset 6/,
    details: { path: cut, offset: 6, opcode: 'BINSTRING' },
  });
  await t.rejects(readPairSet('' as string), { code: 'ERR_INVALID_ARGUMENT', message: /Expected a non-empty string for path/ });
});
