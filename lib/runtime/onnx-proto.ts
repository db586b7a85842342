/**
 * Just enough protobuf to rewrite an ONNX ModelProto: decode a message into its fields, change
 * a few, encode it again. Unknown fields pass through untouched.
 * @module
 */

import { MaskFaceError } from '../api/errors.js';

/** A byte string that is not the protobuf it should be. */
function malformed(what: string, offset: number): MaskFaceError {
  return new MaskFaceError(`Malformed ONNX protobuf: ${what} at byte ${offset}`, 'ERR_MODEL_LOAD', { details: { offset } });
}

export interface Field {
  number: number;
  wire: 0 | 1 | 2 | 5;
  /** varint as bigint; fixed64/fixed32 and length-delimited as raw bytes */
  value: bigint | Uint8Array;
}

function readVarint(bytes: Uint8Array, offset: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (offset >= bytes.length) throw malformed('truncated varint', offset);
    const byte = bytes[offset++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, offset];
    shift += 7n;
    if (shift > 70n) throw malformed('varint too long', offset);
  }
}

function writeVarint(value: bigint, out: number[]): void {
  let v = BigInt.asUintN(64, value);
  do {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v ? byte | 0x80 : byte);
  } while (v);
}

export function decode(bytes: Uint8Array): Field[] {
  const fields: Field[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const [key, afterKey] = readVarint(bytes, offset);
    offset = afterKey;
    const number = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [value, next] = readVarint(bytes, offset);
      fields.push({ number, wire, value });
      offset = next;
    } else if (wire === 2) {
      const [length, next] = readVarint(bytes, offset);
      const end = next + Number(length);
      if (end > bytes.length) throw malformed('truncated field', next);
      fields.push({ number, wire, value: bytes.subarray(next, end) });
      offset = end;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      if (offset + size > bytes.length) throw malformed('truncated field', offset);
      fields.push({ number, wire, value: bytes.subarray(offset, offset + size) });
      offset += size;
    } else {
      throw malformed(`unsupported wire type ${wire}`, offset);
    }
  }
  return fields;
}

export function encode(fields: readonly Field[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (const field of fields) {
    const head: number[] = [];
    writeVarint(BigInt((field.number << 3) | field.wire), head);
    if (field.wire === 0) {
      writeVarint(field.value as bigint, head);
      chunks.push(Uint8Array.from(head));
      total += head.length;
      continue;
    }
    const body = field.value as Uint8Array;
    if (field.wire === 2) writeVarint(BigInt(body.length), head);
    chunks.push(Uint8Array.from(head), body);
    total += head.length + body.length;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

const text = new TextDecoder();
const utf8 = new TextEncoder();

export function stringField(number: number, value: string): Field {
  return { number, wire: 2, value: utf8.encode(value) };
}

export function fieldString(fields: readonly Field[], number: number): string | undefined {
  const field = fields.find((f) => f.number === number && f.wire === 2);
  return field ? text.decode(field.value as Uint8Array) : undefined;
}

// ONNX field numbers (onnx.proto3).
const MODEL_GRAPH = 7;
const MODEL_METADATA = 14;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const GRAPH_VALUE_INFO = 13;
const NODE_INPUT = 1;
const NODE_OP_TYPE = 4;
const VALUE_INFO_TYPE = 2;
const TYPE_TENSOR = 1;
const TENSOR_TYPE_SHAPE = 2;
const SHAPE_DIM = 1;
const DIM_PARAM = 2;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_INT64_DATA = 7;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;
const INT64 = 7n;

function mapField(fields: Field[], number: number, fn: (inner: Field[]) => Field[]): Field[] {
  return fields.map((f) => (f.number === number && f.wire === 2 ? { ...f, value: encode(fn(decode(f.value as Uint8Array))) } : f));
}

/** Makes the first dimension of a ValueInfoProto's tensor shape symbolic ('N'). */
function symbolicBatch(valueInfo: Field[]): Field[] {
  return mapField(valueInfo, VALUE_INFO_TYPE, (type) =>
    mapField(type, TYPE_TENSOR, (tensor) =>
      mapField(tensor, TENSOR_TYPE_SHAPE, (shape) => {
        const first = shape.findIndex((f) => f.number === SHAPE_DIM);
        if (first < 0) return shape;
        const copy = shape.slice();
        copy[first] = { number: SHAPE_DIM, wire: 2, value: encode([stringField(DIM_PARAM, 'N')]) };
        return copy;
      }),
    ),
  );
}

/** Rewrites an int64 shape tensor whose first entry is 1 so the entry copies the input's batch (0). */
function batchFromInput(tensor: Field[]): Field[] | undefined {
  const type = tensor.find((f) => f.number === TENSOR_DATA_TYPE)?.value;
  if (type !== INT64) return undefined;
  const raw = tensor.find((f) => f.number === TENSOR_RAW_DATA);
  if (raw) {
    const bytes = new Uint8Array(raw.value as Uint8Array); // a copy: Buffer.slice would share memory
    const view = new DataView(bytes.buffer);
    if (bytes.length < 8 || view.getBigInt64(0, true) !== 1n) return undefined;
    view.setBigInt64(0, 0n, true);
    return tensor.map((f) => (f === raw ? { ...f, value: bytes } : f));
  }
  const data = tensor.filter((f) => f.number === TENSOR_INT64_DATA);
  if (data.length === 0) return undefined;
  if (data[0]!.wire === 2) {
    // packed repeated int64
    const [first, offset] = readVarint(data[0]!.value as Uint8Array, 0);
    if (first !== 1n) return undefined;
    const out: number[] = [];
    writeVarint(0n, out);
    const rest = (data[0]!.value as Uint8Array).subarray(offset);
    const packed = new Uint8Array(out.length + rest.length);
    packed.set(out, 0);
    packed.set(rest, out.length);
    return tensor.map((f) => (f === data[0] ? { ...f, value: packed } : f));
  }
  if (data[0]!.value !== 1n) return undefined;
  return tensor.map((f) => (f === data[0] ? { ...f, value: 0n } : f));
}

export interface BatchRewrite {
  model: Uint8Array;
  /** Reshape shape constants that were changed from [1, ...] to [0, ...]. */
  reshapes: string[];
}

/**
 * Turns a model exported with a fixed batch of 1 into one with a symbolic batch: graph inputs
 * and outputs get batch 'N', intermediate shape hints are dropped (ONNX Runtime infers them),
 * and Reshape targets of the form [1, ...] become [0, ...] (0 copies the input's batch).
 * Returns undefined when a Reshape target is not a constant it can rewrite.
 */
export function makeBatchSymbolic(model: Uint8Array): BatchRewrite | undefined {
  const top = decode(model);
  const graphField = top.find((f) => f.number === MODEL_GRAPH && f.wire === 2);
  if (!graphField) return undefined;
  let graph = decode(graphField.value as Uint8Array);
  const reshapeTargets = new Set<string>();
  for (const node of graph.filter((f) => f.number === GRAPH_NODE)) {
    const fields = decode(node.value as Uint8Array);
    if (fieldString(fields, NODE_OP_TYPE) !== 'Reshape') continue;
    const inputs = fields.filter((f) => f.number === NODE_INPUT).map((f) => text.decode(f.value as Uint8Array));
    if (inputs[1] !== undefined) reshapeTargets.add(inputs[1]);
  }
  const rewritten: string[] = [];
  const unresolved = new Set(reshapeTargets);
  graph = graph.map((field) => {
    if (field.number !== GRAPH_INITIALIZER) return field;
    const tensor = decode(field.value as Uint8Array);
    const name = fieldString(tensor, TENSOR_NAME) ?? '';
    if (!reshapeTargets.has(name)) return field;
    unresolved.delete(name);
    const dims = tensor.filter((f) => f.number === TENSOR_DIMS);
    if (dims.length !== 1) return field;
    const changed = batchFromInput(tensor);
    if (!changed) return field;
    rewritten.push(name);
    return { ...field, value: encode(changed) };
  });
  if (unresolved.size > 0) return undefined;
  graph = graph
    .filter((f) => f.number !== GRAPH_VALUE_INFO)
    .map((f) =>
      f.number === GRAPH_INPUT || f.number === GRAPH_OUTPUT
        ? { ...f, value: encode(symbolicBatch(decode(f.value as Uint8Array))) }
        : f,
    );
  const out = top.map((f) => (f === graphField ? { ...f, value: encode(graph) } : f));
  return { model: encode(out), reshapes: rewritten };
}

/**
 * The metadata_props of a ModelProto, read from its top-level fields only (the graph is not
 * decoded). Throws on bytes that are not a protobuf message.
 */
export function readMetadata(model: Uint8Array): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const field of decode(model)) {
    if (field.number !== MODEL_METADATA || field.wire !== 2) continue;
    const entry = decode(field.value as Uint8Array);
    const key = fieldString(entry, 1);
    if (key !== undefined) entries[key] = fieldString(entry, 2) ?? '';
  }
  return entries;
}

/** Adds (or replaces) metadata_props entries of a ModelProto. */
export function setMetadata(model: Uint8Array, entries: Record<string, string>): Uint8Array {
  const keys = new Set(Object.keys(entries));
  const top = decode(model).filter(
    (f) => !(f.number === MODEL_METADATA && keys.has(fieldString(decode(f.value as Uint8Array), 1) ?? '')),
  );
  for (const [key, value] of Object.entries(entries)) {
    top.push({ number: MODEL_METADATA, wire: 2, value: encode([stringField(1, key), stringField(2, value)]) });
  }
  return encode(top);
}
