// Reference runs with onnxruntime-node (1.30, its own JS binding) in a separate process: two
// ONNX Runtime versions cannot share one process (both libraries are libonnxruntime.so.1).
// Usage: node ort-reference.cjs <model.onnx> <input.f32> <itemShape e.g. 1,3,112,112> <output> [name[,name...]]
// Runs each item of the input file as its own batch of 1. With no name or one name, writes that
// output (default: the first) of every item back to back into the file <output>; with several
// names, <output> is a folder and each output goes to <output>/<name>.f32.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
// Fetched by scripts/fetch-test-peers.mjs (npm test runs it), not installed as a dependency.
const ortDir = path.join(__dirname, '..', '..', '.cache', 'test-peers', 'node_modules', 'onnxruntime-node');
const ort = require(ortDir);

async function main() {
  const [model, inputPath, shapeText, outputPath, namesText] = process.argv.slice(2);
  const shape = shapeText.split(',').map(Number);
  const itemSize = shape.reduce((a, b) => a * b, 1);
  const raw = fs.readFileSync(inputPath);
  const input = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const names = namesText ? namesText.split(',') : [session.outputNames[0]];
  const unknown = names.filter((name) => !session.outputNames.includes(name));
  if (unknown.length > 0) throw new Error(`${model} has no output ${unknown.join(', ')} (outputs: ${session.outputNames.join(', ')})`);
  const chunks = names.map(() => []);
  for (let offset = 0; offset < input.length; offset += itemSize) {
    const tensor = new ort.Tensor('float32', input.slice(offset, offset + itemSize), shape);
    const result = await session.run({ [session.inputNames[0]]: tensor });
    names.forEach((name, i) => chunks[i].push(Buffer.from(result[name].data.slice().buffer)));
  }
  if (names.length === 1) {
    fs.writeFileSync(outputPath, Buffer.concat(chunks[0]));
  } else {
    fs.mkdirSync(outputPath, { recursive: true });
    names.forEach((name, i) => fs.writeFileSync(path.join(outputPath, `${name}.f32`), Buffer.concat(chunks[i])));
  }
  process.stdout.write(JSON.stringify({ ortVersion: require(path.join(ortDir, 'package.json')).version, items: chunks[0].length }));
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
