// Writes a model's shipped calibration (models/<name>.calibration.json) from `maskface eval --out`
// on a labelled folder of masked and bare photos: the bare condition from the bare-vs-bare pairs,
// the masked one from the masked-probe-vs-bare-gallery pairs.
//
// Usage: node scripts/write-calibration.mjs <eval.json> <model.onnx> <out.json> --source "<what the photos are>"
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { source: { type: 'string' } } });
const [evalPath, modelPath, outPath] = positionals;
if (!evalPath || !modelPath || !outPath || !values.source) {
  console.error('usage: node scripts/write-calibration.mjs <eval.json> <model.onnx> <out.json> --source "<photos>"');
  process.exit(2);
}
const evaluation = JSON.parse(readFileSync(evalPath, 'utf8'));
const model = readFileSync(modelPath);
const sha256 = createHash('sha256').update(model).digest('hex');
if (evaluation.modelId !== sha256) {
  console.error(`${evalPath} measured the model with sha256 ${evaluation.modelId ?? '(not recorded)'}, not ${modelPath} (${sha256})`);
  process.exit(1);
}
const split = (name) => {
  const found = evaluation.splits.find((s) => s.name === name);
  if (!found?.calibration) {
    console.error(`${evalPath} has no '${name}' split with a calibration: run maskface eval on a folder with masked and bare photos`);
    process.exit(1);
  }
  const round = (v) => Number(v.toFixed(4));
  const c = found.calibration;
  return { ...c, points: c.points.map((p) => ({ ...p, threshold: round(p.threshold), tar: round(p.tar) })) };
};
const version = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
const name = basename(modelPath, '.onnx');
const calibration = {
  format: 'maskface-calibration',
  model: name,
  sha256,
  source:
    `${values.source}: ${evaluation.masked} masked and ${evaluation.bare} bare photos; FaceDetector and embedFaces ` +
    `(${evaluation.detector}, alignment ${evaluation.alignment}, minScore ${evaluation.minScore}), the largest face of each photo; ` +
    `${evaluation.noFace.masked} masked and ${evaluation.noFace.bare} bare photos with no face found are left out. ` +
    'Impostor pairs share people, so they are not independent.',
  command: `maskface eval <folder> --out eval.json (maskface ${version}); node scripts/write-calibration.mjs eval.json models/${name}.onnx ...`,
  maskedWhen: 'either face has maskProbability >= 0.5',
  conditions: { bare: split('bare vs bare'), masked: split('masked probe vs bare gallery') },
};
writeFileSync(outPath, JSON.stringify(calibration, null, 1) + '\n');
console.log(`${outPath}: bare ${calibration.conditions.bare.points.length} points, masked ${calibration.conditions.masked.points.length} points`);
