// Real face photos for recognition tests live outside the package (../shared/data beside the
// repository, or MASKFACE_DATA_DIR). Tests that need them skip with a message when absent.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jpeg from 'jpeg-js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const dataDir = process.env.MASKFACE_DATA_DIR ?? join(repoRoot, '..', 'shared', 'data');

/** npm settings under which the registry cannot be reached (and npm does not retry). */
export const unreachableRegistry = { npm_config_registry: 'http://127.0.0.1:9/', npm_config_fetch_retries: '0' };

/**
 * Runs `body` (an async function's body, with `m` = maskface's dist/esm/index.js and `setup` =
 * dist/esm/setup.js) in a fresh Node process with `env` added, and returns `{ ok: what it
 * returned }` or `{ error: { code, message } }`.
 */
export function inFreshProcess(body: string, env: NodeJS.ProcessEnv = {}): any {
  const script = `Promise.all([${JSON.stringify(join(repoRoot, 'dist', 'esm', 'index.js'))}, ${JSON.stringify(join(repoRoot, 'dist', 'esm', 'setup.js'))}].map((p) => import(p))).then(async ([m, setup]) => {
      try { return { ok: await (async () => { ${body} })() }; }
      catch (e) { return { error: { code: e.code, message: e.message } }; }
    }).then((r) => console.log(JSON.stringify(r)));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

/** The reason to skip, or false when the folder exists. */
export function missingData(folder: string): string | false {
  const path = join(dataDir, folder);
  return existsSync(path) ? false : `face data not found at ${path} (set MASKFACE_DATA_DIR)`;
}

/** Decodes a JPEG into interleaved RGB (grey photos are replicated to 3 channels). */
export function readJpegRgb(path: string): { data: Uint8Array; width: number; height: number } {
  const decoded = jpeg.decode(readFileSync(path), { useTArray: true, formatAsRGBA: true });
  const { width, height } = decoded;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    rgb[3 * i] = decoded.data[4 * i]!;
    rgb[3 * i + 1] = decoded.data[4 * i + 1]!;
    rgb[3 * i + 2] = decoded.data[4 * i + 2]!;
  }
  return { data: rgb, width, height };
}

export interface Pair {
  a: string;
  b: string;
  same: boolean;
}

/** pairs.txt of lfw_aligned_100pair: `pathA pathB same` per line, # comments. */
export function readPairs(folder = 'lfw_aligned_100pair'): Pair[] {
  return readFileSync(join(dataDir, folder, 'pairs.txt'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() && !line.startsWith('#'))
    .map((line) => {
      const [a, b, same] = line.trim().split(/\s+/);
      return { a: join(dataDir, folder, a!), b: join(dataDir, folder, b!), same: same === '1' };
    });
}

/** Area under the ROC curve: the probability a genuine pair outscores an impostor pair (ties count half). */
export function auc(genuine: number[], impostor: number[]): number {
  let wins = 0;
  for (const g of genuine) for (const i of impostor) wins += g > i ? 1 : g === i ? 0.5 : 0;
  return wins / (genuine.length * impostor.length);
}

/** Runs `model` item by item in onnxruntime-node (another process) and returns the first output. */
export function ortReference(model: string, input: Float32Array, itemShape: readonly number[]): Float32Array {
  const dir = mkdtempSync(join(tmpdir(), 'maskface-ref-'));
  try {
    runOrtReference([model, writeInput(dir, input), itemShape.join(','), join(dir, 'out.f32')]);
    return readFloats(join(dir, 'out.f32'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Like ortReference, with the named outputs (several, in one process for the whole batch). */
export function ortOutputs<Name extends string>(
  model: string,
  input: Float32Array,
  itemShape: readonly number[],
  names: readonly [Name, Name, ...Name[]],
): Record<Name, Float32Array> {
  const dir = mkdtempSync(join(tmpdir(), 'maskface-ref-'));
  try {
    runOrtReference([model, writeInput(dir, input), itemShape.join(','), join(dir, 'out'), names.join(',')]);
    return Object.fromEntries(names.map((name) => [name, readFloats(join(dir, 'out', `${name}.f32`))])) as Record<Name, Float32Array>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeInput(dir: string, input: Float32Array): string {
  const path = join(dir, 'in.f32');
  writeFileSync(path, new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
  return path;
}

function runOrtReference(args: string[]): void {
  execFileSync(process.execPath, [join(repoRoot, 'test', 'helpers', 'ort-reference.cjs'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

function readFloats(path: string): Float32Array {
  const bytes = readFileSync(path);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** The 5 points of the ArcFace template from 68 iBUG landmarks (eye centres, nose tip, mouth corners). */
export function fivePointsFrom68(points: ArrayLike<number>): number[] {
  const at = (i: number) => [points[2 * i]!, points[2 * i + 1]!] as const;
  const mean = (...ids: number[]) => {
    const xs = ids.map(at);
    return [xs.reduce((s, p) => s + p[0], 0) / xs.length, xs.reduce((s, p) => s + p[1], 0) / xs.length];
  };
  return [...mean(37, 38, 40, 41), ...mean(43, 44, 46, 47), ...at(30), ...mean(48, 60), ...mean(54, 64)];
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}
