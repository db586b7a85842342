// Reference runs with onnxruntime-node (1.30, its own JS binding) in a separate process: two
// ONNX Runtime versions cannot share one process (both libraries are libonnxruntime.so.1).
// Usage: node ort-reference.cjs <model.onnx> <input.f32> <itemShape e.g. 1,3,112,112> <output.f32> [outputName]
// Runs each item of the input file as its own batch of 1 and writes one output (the first, or
// outputName) of every item back to back.
'use strict';
const fs = require('node:fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inputPath, shapeText, outputPath, outputName] = process.argv.slice(2);
  const shape = shapeText.split(',').map(Number);
  const itemSize = shape.reduce((a, b) => a * b, 1);
  const raw = fs.readFileSync(inputPath);
  const input = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const chunks = [];
  for (let offset = 0; offset < input.length; offset += itemSize) {
    const tensor = new ort.Tensor('float32', input.slice(offset, offset + itemSize), shape);
    const result = await session.run({ [session.inputNames[0]]: tensor });
    chunks.push(Buffer.from(result[outputName ?? session.outputNames[0]].data.slice().buffer));
  }
  fs.writeFileSync(outputPath, Buffer.concat(chunks));
  process.stdout.write(JSON.stringify({ ortVersion: require('onnxruntime-node/package.json').version, items: chunks.length }));
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
