/**
 * Reads the insightface verification pair sets (lfw.bin, agedb_30.bin, calfw.bin, cplfw.bin, ...):
 * a Python pickle of the 2-tuple `(bins, issame_list)`, `bins` a list of encoded images (JPEG or
 * PNG bytes) and `issame_list` a list of bools, pair i being images 2i and 2i+1.
 *
 * The pickle is read by a small stack machine that knows only the opcodes such a file is made of
 * (bytes or Python-2 binary strings, lists, tuples, booleans, memo, framing); every other opcode
 * (GLOBAL, REDUCE, ...) is refused, so no pickled code ever runs, and every read is bounds-checked.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { MaskFaceError, invalidArgument } from '../api/errors.js';

/** An insightface verification pair set: pair i is `images[2i]` and `images[2i + 1]`. */
export interface PairSet {
  /** The encoded images (JPEG or PNG bytes, not decoded here): views into the bytes parsed. */
  readonly images: readonly Uint8Array[];
  /** Whether pair i shows the same person; `images.length === 2 * issame.length`. */
  readonly issame: readonly boolean[];
}

/** Highest pickle protocol there is (Python 3.8+). */
const highestProtocol = 5;

// The opcodes read (names as in Python's pickletools).
const MARK = 0x28; // (
const STOP = 0x2e; // .
const EMPTY_TUPLE = 0x29; // )
const BINBYTES = 0x42; // B
const SHORT_BINBYTES = 0x43; // C
const BINSTRING = 0x54; // T
const SHORT_BINSTRING = 0x55; // U
const BINUNICODE = 0x58; // X
const EMPTY_LIST = 0x5d; // ]
const APPEND = 0x61; // a
const APPENDS = 0x65; // e
const BINGET = 0x68; // h
const LONG_BINGET = 0x6a; // j
const BINPUT = 0x71; // q
const LONG_BINPUT = 0x72; // r
const TUPLE = 0x74; // t
const PROTO = 0x80;
const TUPLE1 = 0x85;
const TUPLE2 = 0x86;
const TUPLE3 = 0x87;
const NEWTRUE = 0x88;
const NEWFALSE = 0x89;
const SHORT_BINUNICODE = 0x8c;
const BINUNICODE8 = 0x8d;
const BINBYTES8 = 0x8e;
const MEMOIZE = 0x94;
const FRAME = 0x95;
const GLOBAL = 0x63; // c
const STACK_GLOBAL = 0x93;

/** Every pickle opcode by byte (protocols 0 to 5), to name the ones refused. */
const opcodeNames = new Map<number, string>([
  [0x28, 'MARK'], [0x2e, 'STOP'], [0x30, 'POP'], [0x31, 'POP_MARK'], [0x32, 'DUP'], [0x46, 'FLOAT'],
  [0x49, 'INT'], [0x4a, 'BININT'], [0x4b, 'BININT1'], [0x4c, 'LONG'], [0x4d, 'BININT2'], [0x4e, 'NONE'],
  [0x50, 'PERSID'], [0x51, 'BINPERSID'], [0x52, 'REDUCE'], [0x53, 'STRING'], [0x54, 'BINSTRING'],
  [0x55, 'SHORT_BINSTRING'], [0x56, 'UNICODE'], [0x58, 'BINUNICODE'], [0x61, 'APPEND'], [0x62, 'BUILD'],
  [0x63, 'GLOBAL'], [0x64, 'DICT'], [0x7d, 'EMPTY_DICT'], [0x65, 'APPENDS'], [0x67, 'GET'], [0x68, 'BINGET'],
  [0x69, 'INST'], [0x6a, 'LONG_BINGET'], [0x6c, 'LIST'], [0x5d, 'EMPTY_LIST'], [0x6f, 'OBJ'], [0x70, 'PUT'],
  [0x71, 'BINPUT'], [0x72, 'LONG_BINPUT'], [0x73, 'SETITEM'], [0x74, 'TUPLE'], [0x29, 'EMPTY_TUPLE'],
  [0x75, 'SETITEMS'], [0x47, 'BINFLOAT'], [0x80, 'PROTO'], [0x81, 'NEWOBJ'], [0x82, 'EXT1'], [0x83, 'EXT2'],
  [0x84, 'EXT4'], [0x85, 'TUPLE1'], [0x86, 'TUPLE2'], [0x87, 'TUPLE3'], [0x88, 'NEWTRUE'], [0x89, 'NEWFALSE'],
  [0x8a, 'LONG1'], [0x8b, 'LONG4'], [0x42, 'BINBYTES'], [0x43, 'SHORT_BINBYTES'], [0x8c, 'SHORT_BINUNICODE'],
  [0x8d, 'BINUNICODE8'], [0x8e, 'BINBYTES8'], [0x8f, 'EMPTY_SET'], [0x90, 'ADDITEMS'], [0x91, 'FROZENSET'],
  [0x92, 'NEWOBJ_EX'], [0x93, 'STACK_GLOBAL'], [0x94, 'MEMOIZE'], [0x95, 'FRAME'], [0x96, 'BYTEARRAY8'],
  [0x97, 'NEXT_BUFFER'], [0x98, 'READONLY_BUFFER'],
]);

function opcodeName(code: number): string {
  return `${opcodeNames.get(code) ?? 'unknown opcode'} (0x${code.toString(16).padStart(2, '0')})`;
}

/** A Python list (mutable: APPEND/APPENDS add to it after it is pushed and memoized). */
class PyList {
  readonly items: Value[] = [];
}

/** A Python tuple. */
class PyTuple {
  constructor(readonly items: readonly Value[]) {}
}

/** bytes or a Python-2 str: Uint8Array; a unicode str: string. */
type Value = Uint8Array | string | boolean | PyList | PyTuple;

function describeValue(value: Value | undefined): string {
  if (value === undefined) return 'nothing';
  if (value instanceof Uint8Array) return `bytes of length ${value.length}`;
  if (typeof value === 'string') return `a text string (str) of length ${value.length}`;
  if (typeof value === 'boolean') return `the bool ${value ? 'True' : 'False'}`;
  if (value instanceof PyList) return `a list of length ${value.items.length}`;
  return `a tuple of length ${value.items.length}`;
}

function pickleError(message: string, offset: number, code?: number): MaskFaceError {
  return new MaskFaceError(message, 'ERR_INVALID_ARGUMENT', {
    details: code === undefined ? { offset } : { offset, opcode: opcodeNames.get(code) ?? `0x${code.toString(16)}` },
  });
}

const textDecoder = new TextDecoder('utf-8');
const latin1Decoder = new TextDecoder('latin1');

/** Why an opcode is refused, with a hint where the file is a known kind this reader does not take. */
function refusal(code: number, at: number, bytes: Uint8Array, stack: readonly Value[]): MaskFaceError {
  let global: string | undefined;
  if (code === GLOBAL) {
    // Two newline-terminated names follow; read them only to name them, within bounds.
    const end = Math.min(bytes.length, at + 1 + 256);
    const text = latin1Decoder.decode(bytes.subarray(at + 1, end)).split('\n');
    if (text.length >= 3) global = `${text[0]}.${text[1]}`;
  } else if (code === STACK_GLOBAL) {
    const name = stack[stack.length - 1];
    const module = stack[stack.length - 2];
    if (typeof module === 'string' && typeof name === 'string') global = `${module}.${name}`;
  }
  let message = `Unsupported pickle opcode ${opcodeName(code)} at byte offset ${at}`;
  if (global !== undefined) message += ` (${global.length > 80 ? `${global.slice(0, 80)}…` : global})`;
  message +=
    ': a pair set holds only bytes, lists, tuples and bools, and this reader never runs pickled code or builds objects';
  if (global?.startsWith('numpy')) {
    message +=
      '. This file holds numpy objects (images as arrays or issame as numpy bools), which are not read: write it ' +
      'again with each image as the bytes of its encoded file and issame as Python bools ([bool(s) for s in issame_list])';
  } else if (global === '_codecs.encode') {
    message +=
      '. Python 3 pickles bytes this way only at protocol 2 or lower: write the file again with protocol 4 or higher';
  }
  return new MaskFaceError(message, 'ERR_INVALID_ARGUMENT', {
    details: { offset: at, opcode: opcodeNames.get(code) ?? `0x${code.toString(16)}`, ...(global === undefined ? {} : { global }) },
  });
}

/** Runs the pickle in `bytes` on the restricted machine and returns the object STOP pops. */
function unpickle(bytes: Uint8Array): Value {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Value[] = [];
  const marks: number[] = [];
  const memo = new Map<number, Value>();
  let pos = 0;
  let at = 0;
  let code = 0;

  /** Advances past `n` argument bytes of the current opcode, or throws if the pickle ends first. */
  const take = (n: number, what: string): number => {
    const remaining = bytes.length - pos;
    if (n > remaining) {
      throw pickleError(
        `The pickle is truncated: ${opcodeNames.get(code)} at byte offset ${at} needs ${n} bytes of ${what} but ${remaining} remain`,
        at,
        code,
      );
    }
    const start = pos;
    pos += n;
    return start;
  };
  const u8 = (): number => bytes[take(1, 'argument')]!;
  const u32 = (): number => view.getUint32(take(4, 'argument'), true);
  /** An 8-byte length, checked against the bytes left before it becomes a number. */
  const u64Length = (): number => {
    const value = view.getBigUint64(take(8, 'argument'), true);
    const remaining = bytes.length - pos;
    if (value > BigInt(remaining)) {
      throw pickleError(
        `The pickle is truncated: ${opcodeNames.get(code)} at byte offset ${at} announces ${value} bytes but ${remaining} remain`,
        at,
        code,
      );
    }
    return Number(value);
  };
  /** `n` data bytes as a view, not a copy. */
  const data = (n: number): Uint8Array => {
    const start = take(n, 'data');
    return new Uint8Array(bytes.buffer, bytes.byteOffset + start, n);
  };
  const floor = (): number => marks[marks.length - 1] ?? 0;
  const underflow = (): MaskFaceError =>
    pickleError(`Malformed pickle: ${opcodeName(code)} at byte offset ${at} finds the stack empty`, at, code);
  const pop = (): Value => {
    if (stack.length <= floor()) throw underflow();
    return stack.pop()!;
  };
  const top = (): Value => {
    if (stack.length <= floor()) throw underflow();
    return stack[stack.length - 1]!;
  };
  const popMark = (): Value[] => {
    const mark = marks.pop();
    if (mark === undefined) throw pickleError(`Malformed pickle: ${opcodeName(code)} at byte offset ${at} has no MARK`, at, code);
    return stack.splice(mark);
  };
  const get = (key: number): Value => {
    const value = memo.get(key);
    if (value === undefined) throw pickleError(`Malformed pickle: ${opcodeName(code)} at byte offset ${at} reads memo ${key}, never stored`, at, code);
    return value;
  };
  const appendTarget = (): PyList => {
    const list = top();
    if (!(list instanceof PyList)) {
      throw pickleError(`Malformed pickle: ${opcodeName(code)} at byte offset ${at} appends to ${describeValue(list)}, not a list`, at, code);
    }
    return list;
  };

  while (pos < bytes.length) {
    at = pos;
    code = bytes[pos++]!;
    switch (code) {
      case PROTO: {
        const protocol = u8();
        if (protocol > highestProtocol) throw pickleError(`Unsupported pickle protocol ${protocol} at byte offset ${at}`, at, code);
        break;
      }
      case FRAME:
        // A frame only groups the opcodes that follow (and big payloads may lie outside any
        // frame): check that it fits, then read on.
        u64Length();
        break;
      case EMPTY_LIST:
        stack.push(new PyList());
        break;
      case MARK:
        marks.push(stack.length);
        break;
      case APPEND: {
        const value = pop();
        appendTarget().items.push(value);
        break;
      }
      case APPENDS: {
        const items = popMark();
        const list = appendTarget();
        for (const item of items) list.items.push(item);
        break;
      }
      case SHORT_BINBYTES:
      case SHORT_BINSTRING:
        stack.push(data(u8()));
        break;
      case BINBYTES:
        stack.push(data(u32()));
        break;
      case BINSTRING: {
        const length = view.getInt32(take(4, 'argument'), true);
        if (length < 0) throw pickleError(`Malformed pickle: BINSTRING at byte offset ${at} has a negative length ${length}`, at, code);
        stack.push(data(length));
        break;
      }
      case BINBYTES8:
        stack.push(data(u64Length()));
        break;
      case SHORT_BINUNICODE:
        stack.push(textDecoder.decode(data(u8())));
        break;
      case BINUNICODE:
        stack.push(textDecoder.decode(data(u32())));
        break;
      case BINUNICODE8:
        stack.push(textDecoder.decode(data(u64Length())));
        break;
      case NEWTRUE:
        stack.push(true);
        break;
      case NEWFALSE:
        stack.push(false);
        break;
      case EMPTY_TUPLE:
        stack.push(new PyTuple([]));
        break;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        const n = code - TUPLE1 + 1;
        if (stack.length - floor() < n) throw underflow();
        stack.push(new PyTuple(stack.splice(stack.length - n)));
        break;
      }
      case TUPLE:
        stack.push(new PyTuple(popMark()));
        break;
      case BINPUT:
        memo.set(u8(), top());
        break;
      case LONG_BINPUT:
        memo.set(u32(), top());
        break;
      case MEMOIZE:
        memo.set(memo.size, top());
        break;
      case BINGET:
        stack.push(get(u8()));
        break;
      case LONG_BINGET:
        stack.push(get(u32()));
        break;
      case STOP:
        return pop();
      default:
        throw refusal(code, at, bytes, stack);
    }
  }
  throw pickleError(
    bytes.length === 0 ? 'The pickle is empty (0 bytes)' : `The pickle is truncated: it ends at byte offset ${bytes.length} without a STOP opcode`,
    bytes.length,
  );
}

function shapeError(message: string): MaskFaceError {
  return new MaskFaceError(`Not an insightface pair set: ${message}`, 'ERR_INVALID_ARGUMENT');
}

/**
 * Parses the bytes of an insightface pair-set `.bin` file (pickle protocol 2 to 5; images as
 * Python-3 bytes or Python-2 str). Throws ERR_INVALID_ARGUMENT, naming the opcode and byte offset,
 * on a truncated or malformed pickle or any opcode beyond plain data (no code is run); and where
 * the data is not a 2-tuple of a list of non-empty images and a list of bools, at least one pair,
 * with twice as many images as bools. The images returned are views into `bytes`.
 */
export function parsePairSet(bytes: Uint8Array): PairSet {
  if (!(bytes instanceof Uint8Array)) throw invalidArgument('bytes', 'a Uint8Array', bytes);
  const root = unpickle(bytes);
  if (!(root instanceof PyTuple) || root.items.length !== 2) {
    throw shapeError(`expected a pickled 2-tuple (bins, issame_list) but found ${describeValue(root)}`);
  }
  const [bins, issameList] = root.items;
  if (!(bins instanceof PyList)) throw shapeError(`expected bins to be a list but found ${describeValue(bins)}`);
  if (!(issameList instanceof PyList)) throw shapeError(`expected issame_list to be a list but found ${describeValue(issameList)}`);
  const images = bins.items.map((image, i) => {
    if (!(image instanceof Uint8Array)) throw shapeError(`image ${i} is ${describeValue(image)}, not bytes`);
    if (image.length === 0) throw shapeError(`image ${i} is empty (0 bytes)`);
    return image;
  });
  const issame = issameList.items.map((same, i) => {
    if (typeof same !== 'boolean') throw shapeError(`issame_list[${i}] is ${describeValue(same)}, not a bool`);
    return same;
  });
  if (images.length !== 2 * issame.length) {
    throw shapeError(`${images.length} images for ${issame.length} pairs (${2 * issame.length} images expected)`);
  }
  if (issame.length === 0) throw shapeError('it holds no pairs');
  return { images, issame };
}

/**
 * Reads and parses an insightface pair-set `.bin` file (see parsePairSet). Every failure, the
 * file's reading included, is ERR_INVALID_ARGUMENT with the path in its message and details.
 */
export async function readPairSet(path: string): Promise<PairSet> {
  if (typeof path !== 'string' || path.length === 0) throw invalidArgument('path', 'a non-empty string', path);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new MaskFaceError(`Cannot read pair set ${path}: ${(error as Error).message}`, 'ERR_INVALID_ARGUMENT', {
      cause: error,
      details: { path },
    });
  }
  try {
    return parsePairSet(bytes);
  } catch (error) {
    if (!(error instanceof MaskFaceError)) throw error;
    throw new MaskFaceError(`Pair set ${path}: ${error.message}`, error.code, {
      cause: error,
      details: { ...error.details, path },
    });
  }
}
