import { readFileSync } from 'node:fs';
import t from 'tap';
import { ensureModel, sourceModelPath } from '../../dist/esm/setup.js';
import { decode, encode, fieldString, makeBatchSymbolic, readMetadata, setMetadata } from '../../dist/cjs/runtime/onnx-proto.js';

t.test('decode then encode reproduces a real model byte for byte', async (t) => {
  await ensureModel('mobilefacenet');
  const bytes = readFileSync(sourceModelPath('mobilefacenet'));
  t.same(Buffer.from(encode(decode(bytes))), bytes);
});

t.test('the batch rewrite makes input and output batch symbolic and rewrites the Reshape target', async (t) => {
  const bytes = readFileSync(sourceModelPath('mobilefacenet'));
  const rewrite = makeBatchSymbolic(bytes);
  t.ok(rewrite);
  t.same(rewrite!.reshapes, ['703']);
  const graph = decode(decode(rewrite!.model).find((f) => f.number === 7)!.value as Uint8Array);
  const input = decode(graph.find((f) => f.number === 11)!.value as Uint8Array);
  t.equal(fieldString(input, 1), 'input');
  t.match(Buffer.from(input.find((f) => f.number === 2)!.value as Uint8Array).toString('latin1'), /N/);
  t.equal(makeBatchSymbolic(new Uint8Array([0x08, 0x07])), undefined, 'a model without a graph is left alone');
});

t.test('metadata entries are added and replaced', async (t) => {
  const model = encode([{ number: 1, wire: 0, value: 7n }]);
  const once = setMetadata(model, { a: '1', b: '2' });
  const twice = setMetadata(once, { a: '3' });
  const entries = decode(twice)
    .filter((f) => f.number === 14)
    .map((f) => decode(f.value as Uint8Array))
    .map((e) => `${fieldString(e, 1)}=${fieldString(e, 2)}`);
  t.same(entries.sort(), ['a=3', 'b=2']);
  t.throws(() => decode(new Uint8Array([0x0a, 0x05, 0x01])), /truncated/);
});

t.test('readMetadata reads metadata_props without decoding the graph', async (t) => {
  const bytes = readFileSync(await ensureModel('maskface-mbf-cal-int8'));
  const metadata = readMetadata(bytes);
  t.equal(metadata['maskface.precision'], 'int8');
  t.equal(metadata['maskface.dim'], '512');
  t.same(readMetadata(setMetadata(bytes, { 'maskface.precision': 'fp16', extra: 'x' })), { ...metadata, 'maskface.precision': 'fp16', extra: 'x' });
  t.same(readMetadata(encode([])), {}, 'a model without metadata');
});
