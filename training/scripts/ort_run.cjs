// Runs an ONNX model with onnxruntime-node on the CPU, one item at a time, and writes every output.
// Usage: node ort_run.cjs <model.onnx> <input.f32> <itemShape e.g. 1,3,112,112> <outDir> [optimisation]
// optimisation: disabled | basic | extended | all (default: all, as maskface's runtime runs).
// Writes <outDir>/<output name with / replaced by _>.f32 (float32, items back to back) and prints
// {"ortVersion", "items", "outputs", "ms"} on stdout. onnxruntime-node resolves as usual (NODE_PATH).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inputPath, shapeText, outDir, level = 'all'] = process.argv.slice(2);
  const shape = shapeText.split(',').map(Number);
  const itemSize = shape.reduce((a, b) => a * b, 1);
  const raw = fs.readFileSync(inputPath);
  const input = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: level,
  });
  const chunks = session.outputNames.map(() => []);
  const started = process.hrtime.bigint();
  for (let offset = 0; offset < input.length; offset += itemSize) {
    const tensor = new ort.Tensor('float32', input.slice(offset, offset + itemSize), shape);
    const result = await session.run({ [session.inputNames[0]]: tensor });
    session.outputNames.forEach((name, i) => {
      if (result[name].type !== 'float32') throw new Error(`${name} is ${result[name].type}, not float32`);
      chunks[i].push(Buffer.from(result[name].data.slice().buffer));
    });
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  fs.mkdirSync(outDir, { recursive: true });
  session.outputNames.forEach((name, i) => {
    fs.writeFileSync(path.join(outDir, `${name.replace(/\//g, '_')}.f32`), Buffer.concat(chunks[i]));
  });
  process.stdout.write(JSON.stringify({
    ortVersion: require('onnxruntime-node/package.json').version,
    items: input.length / itemSize, outputs: session.outputNames, ms,
  }) + '\n');
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
