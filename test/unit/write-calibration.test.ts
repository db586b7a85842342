// scripts/write-calibration.mjs: a model's shipped calibration from `maskface eval --out`.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { calibrationCurve } from '../../dist/cjs/cli/evaluation.js';
import { repoRoot } from '../helpers/data.js';

const script = join(repoRoot, 'scripts', 'write-calibration.mjs');
const model = join(repoRoot, 'test', 'fixtures', 'attention-mask-tiny.onnx');
const sha256 = createHash('sha256').update(readFileSync(model)).digest('hex');

function scores(count: number, mean: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return mean + (state / 2 ** 31 - 0.5) * 0.6;
  });
}

function evaluation(modelId: string) {
  const split = (name: string, genuineMean: number) => ({ name, calibration: calibrationCurve(scores(300, genuineMean, 1), scores(20000, 0.05, 2)) });
  return {
    model: model,
    modelId,
    detector: 'blazeface-256',
    alignment: 'auto',
    minScore: 0.6,
    masked: 30,
    bare: 20,
    noFace: { masked: 2, bare: 0 },
    splits: [split('masked probe vs bare gallery', 0.3), split('bare vs bare', 0.5)],
  };
}

t.test('writes both conditions from the right splits, thresholds rounded, the model by its sha256', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'maskface-calibration-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const input = join(work, 'eval.json');
  const out = join(work, 'out.json');
  const report = evaluation(sha256);
  writeFileSync(input, JSON.stringify(report));
  execFileSync(process.execPath, [script, input, model, out, '--source', 'test photos'], { encoding: 'utf8' });
  const written = JSON.parse(readFileSync(out, 'utf8'));
  t.equal(written.format, 'maskface-calibration');
  t.equal(written.sha256, sha256);
  t.equal(written.model, 'attention-mask-tiny');
  t.match(written.source, /^test photos: 30 masked and 20 bare photos; .*2 masked and 0 bare photos with no face found/);
  for (const [condition, split] of [['bare', 1], ['masked', 0]] as const) {
    const expected = report.splits[split]!.calibration.points;
    t.equal(written.conditions[condition].points.length, expected.length, condition);
    written.conditions[condition].points.forEach((p: { threshold: number; far: number }, i: number) => {
      t.equal(p.far, expected[i]!.far);
      t.ok(Math.abs(p.threshold - expected[i]!.threshold) <= 5e-5, `${condition} ${p.far}: threshold rounded to 4 places`);
    });
  }
  t.ok(written.conditions.bare.points[0].threshold === written.conditions.masked.points[0].threshold, 'the impostors are the same here, so are the thresholds');
});

t.test('refuses an evaluation of another model', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'maskface-calibration-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const input = join(work, 'eval.json');
  writeFileSync(input, JSON.stringify(evaluation('0'.repeat(64))));
  const result = spawnSync(process.execPath, [script, input, model, join(work, 'out.json'), '--source', 'x'], { encoding: 'utf8' });
  t.equal(result.status, 1);
  t.match(result.stderr, /measured the model with sha256 0{64}, not/);
});
