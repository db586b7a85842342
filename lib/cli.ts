#!/usr/bin/env node
// maskface command line. Every command has its own --help; the photo commands take --json.
import { availableParallelism } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { bench } from './cli/bench.js';
import { UsageError } from './cli/common.js';
import { evaluateFolder, evaluatePairSet, formatSplits, writeRocPng, type EvalOptions } from './cli/eval.js';
import { detect, enrol, heatmap, search, verify, type PhotoContext } from './cli/photo-commands.js';
import { FaceDetector } from './api/face-detector.js';
import { faceAlignments, FaceRecognizer, type FaceAlignment } from './api/face-recognizer.js';
import { gpuStatus, listProviders } from './api/providers.js';
import { installGpuRuntime, uninstallGpuRuntime } from './setup/gpu-runtime.js';
import { ensureModel, modelCacheDir, modelCatalogue, type ModelName } from './setup/models.js';
import { versions } from './api/versions.js';

/**
 * Cosine thresholds of `maskface verify` for the default model (maskface-mbf-cal, the
 * default photo pipeline: blazeface-256, 'auto' alignment): the scores at which 1 in 1000 impostor pairs passed on the
 * development photos (rmfrd_real_masks 'val': 113,760 bare-vs-bare impostor pairs, and 422,808
 * masked-probe-vs-bare pairs). A pair with a masked face (maskProbability >= 0.5) uses the masked
 * one: masked faces score lower, genuine and impostor alike.
 */

type Values = Record<string, string | boolean | undefined>;

interface Command {
  readonly names: readonly string[];
  readonly synopsis: string;
  readonly summary: string;
  readonly details: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  readonly arity: readonly [number, number];
  run(positionals: string[], values: Values): Promise<void>;
}

const photoOptions = {
  model: { type: 'string' },
  detector: { type: 'string' },
  'min-score': { type: 'string' },
  alignment: { type: 'string' },
  flip: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

const photoOptionHelp = `  --model <name|path>   face model (default: maskface-mbf-cal, bundled)
  --detector <name>     blazeface-256 (default), blazeface-128 or ultraface-320, or a path
  --min-score <s>       minimum detector confidence (default 0.6)
  --alignment <a>       auto (default: eyes and nose tip only for masked faces, whose
                        mouth corners are guesses), five-point, eyes-nose, or keypoints
                        (a BlazeFace detector's eyes, nose tip and mouth centre)
  --flip                also embed each face's mirror image and merge the two (twice the
                        network work; the shipped thresholds were measured without it)
  --json                print the result as JSON`;

function alignmentOf(values: Values): FaceAlignment {
  const value = (values.alignment as string | undefined) ?? 'auto';
  if (!(faceAlignments as readonly string[]).includes(value)) throw new UsageError(`--alignment must be ${faceAlignments.join(' or ')}, not '${value}'`);
  return value as FaceAlignment;
}

function integerOf(values: Values, name: string, fallback: number): number {
  const text = values[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`--${name} must be a positive integer, not '${String(text)}'`);
  return value;
}

function numberOf(values: Values, name: string, fallback: number): number {
  const text = values[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new UsageError(`--${name} must be a number, not '${String(text)}'`);
  return value;
}

/** Loads the model and the detector, runs fn, frees both. */
async function withPhotoContext<T>(values: Values, fn: (context: PhotoContext) => Promise<T>): Promise<T> {
  const alignment = alignmentOf(values);
  const minScore = values['min-score'] === undefined ? undefined : numberOf(values, 'min-score', 0.6);
  const onProgress = (message: string) => console.error(`  ${message}`);
  await using recognizer = await FaceRecognizer.load((values.model as string | undefined) ?? undefined, { onProgress });
  await using detector = await FaceDetector.load({ detector: values.detector as string | undefined, onProgress });
  return await fn({ recognizer, detector, alignment, minScore, mirrorLandmarks: !values['no-mirror'], flip: values.flip === true });
}

function print(values: Values, json: unknown, text: () => string): void {
  console.log(values.json ? JSON.stringify(json, null, 2) : text());
}

const commands: readonly Command[] = [
  {
    names: ['enrol', 'enroll'],
    synopsis: 'enrol <dir> --gallery <file>',
    summary: 'add the faces of a folder of photos to a gallery file',
    details: `<dir> holds a subfolder per identity (every photo inside it is that person), or photos
named <identity>.<ext>. The largest face of each photo is enrolled; photos with no face are
skipped and listed, photos with several faces are listed. The gallery file is created, or added to.

  --gallery <file>      the gallery file (JSON, see docs/cli.md)
${photoOptionHelp}`,
    options: { ...photoOptions, gallery: { type: 'string' } },
    arity: [1, 1],
    async run([dir], values) {
      if (!values.gallery) throw new UsageError('--gallery <file> is required');
      const summary = await withPhotoContext(values, (context) => enrol(context, dir!, values.gallery as string));
      print(values, summary, () =>
        [
          `enrolled ${summary.enrolled} photos of ${summary.identities} identities into ${summary.gallery}`,
          ...(summary.noFace.length ? [`no face found (skipped): ${summary.noFace.length}`, ...summary.noFace.map((p) => `  ${p}`)] : []),
          ...(summary.severalFaces.length
            ? [`several faces (the largest enrolled): ${summary.severalFaces.length}`, ...summary.severalFaces.map((p) => `  ${p}`)]
            : []),
        ].join('\n'),
      );
    },
  },
  {
    names: ['search'],
    synopsis: 'search <photo> --gallery <file> [--k N]',
    summary: 'who is in a photo: each face against a gallery file',
    details: `For every face of the photo, the k best identities of the gallery (an identity's best
photo counts), with cosine scores.

  --gallery <file>      the gallery file made by enrol
  --k <n>               identities per face (default 5)
${photoOptionHelp}`,
    options: { ...photoOptions, gallery: { type: 'string' }, k: { type: 'string' } },
    arity: [1, 1],
    async run([photo], values) {
      if (!values.gallery) throw new UsageError('--gallery <file> is required');
      const k = integerOf(values, 'k', 5);
      const result = await withPhotoContext(values, (context) => search(context, photo!, values.gallery as string, k));
      print(values, result, () =>
        result.faces.length === 0
          ? 'no face found'
          : result.faces
              .map((face, i) =>
                [
                  `face ${i + 1} at [${face.box.map((v) => Math.round(v)).join(', ')}]${face.maskProbability === null ? '' : `, mask ${face.maskProbability.toFixed(2)}`}`,
                  ...face.matches.map((m) => `  ${m.score.toFixed(3)}  ${m.id}`),
                ].join('\n'),
              )
              .join('\n'),
      );
    },
  },
  {
    names: ['verify'],
    synopsis: 'verify <photo-a> <photo-b> [--far r | --threshold t]',
    summary: 'are two photos the same person: score, threshold, decision',
    details: `Compares the largest face of each photo. The threshold comes from the model's calibration
(the default model has one, see docs/cli.md): the score at which a share --far of impostor pairs
passed in development, from the masked pairs when either face wears a mask; other models need
--threshold.

  --far <r>             target false accept rate (default 1e-3; 1e-4 to 0.1)
  --threshold <t>       a cosine threshold of your own instead
${photoOptionHelp}`,
    options: { ...photoOptions, threshold: { type: 'string' }, far: { type: 'string' } },
    arity: [2, 2],
    async run([a, b], values) {
      const threshold = values.threshold === undefined ? undefined : numberOf(values, 'threshold', 0);
      const far = values.far === undefined ? undefined : numberOf(values, 'far', 1e-3);
      if (threshold !== undefined && far !== undefined) throw new UsageError('give --far or --threshold, not both');
      const result = await withPhotoContext(values, (context) => verify(context, a!, b!, { threshold, far }));
      print(values, result, () =>
        `${result.same ? 'same person' : 'different people'}: score ${result.score.toFixed(3)}, threshold ${threshold ?? result.threshold.toFixed(3)}` +
          (threshold === undefined ? ` (${result.calibration}, FAR ${result.far})` : ''),
      );
    },
  },
  {
    names: ['detect'],
    synopsis: 'detect <photo> [--out <png>]',
    summary: 'find faces: boxes, landmarks, quality, mask probability; draw them',
    details: `  --out <png>           draw boxes (red: masked), the 5 landmarks and the scores
${photoOptionHelp}`,
    options: { ...photoOptions, out: { type: 'string' } },
    arity: [1, 1],
    async run([photo], values) {
      const faces = await withPhotoContext(values, (context) => detect(context, photo!, values.out as string | undefined));
      const records = faces.map(({ box, score, landmarks, keypoints, quality, maskProbability, alignment }) => ({
        box,
        score,
        landmarks,
        keypoints,
        quality,
        maskProbability,
        alignment,
      }));
      print(values, { faces: records }, () =>
        [
          `${faces.length} face${faces.length === 1 ? '' : 's'}${values.out ? `, drawn into ${String(values.out)}` : ''}`,
          ...records.map(
            (f, i) =>
              `  ${i + 1}: [${[f.box.x, f.box.y, f.box.width, f.box.height].map(Math.round).join(', ')}] score ${f.score.toFixed(2)}` +
              `${f.maskProbability === undefined ? '' : `, mask ${f.maskProbability.toFixed(2)}`}, yaw ${f.quality.yaw.toFixed(0)}°, sharpness ${f.quality.sharpness.toFixed(0)}`,
          ),
        ].join('\n'),
      );
    },
  },
  {
    names: ['heatmap'],
    synopsis: 'heatmap <photo> --out <png>',
    summary: 'region maps over each aligned face (mask red, background blue)',
    details: `  --out <png>           the picture: per face, the aligned crop and the crop tinted by its region map
${photoOptionHelp}`,
    options: { ...photoOptions, out: { type: 'string' } },
    arity: [1, 1],
    async run([photo], values) {
      if (!values.out) throw new UsageError('--out <png> is required');
      const faces = await withPhotoContext(values, (context) => heatmap(context, photo!, values.out as string));
      print(values, { faces: faces.length, out: values.out }, () => `${faces.length} face${faces.length === 1 ? '' : 's'}, drawn into ${String(values.out)}`);
    },
  },
  {
    names: ['eval'],
    synopsis: 'eval <dir | pairs.bin> [options]',
    summary: 'recognition measures: AUC, EER, TAR@FAR, rank-1, masked vs bare',
    details: `A folder: a subfolder per identity (or --labels). Photos whose file name matches --masked
are masked probes, compared with every bare photo (verification: all pairs; rank-1: the best
bare photo); bare photos are also compared among themselves (rank-1: leave one out).
An insightface pair set (.bin: lfw.bin, agedb_30.bin, ...): its images are aligned 112x112
crops, embedded as they are (--detect to find faces first); measures over its pairs.

  --labels <csv>        path,identity lines (paths relative to <dir>) instead of subfolders
  --identities <file>   only these identities (one per line, or the first CSV column)
  --masked <regex>      file names of masked photos (default: ^masked)
  --no-mirror           landmarks from the face only, not averaged with its mirror image
  --detect              pair sets: detect and align faces instead of taking the crops as they are
  --roc <png>           draw the ROC curves
  --out <json>          write the measures as JSON
${photoOptionHelp}`,
    options: {
      ...photoOptions,
      labels: { type: 'string' },
      identities: { type: 'string' },
      masked: { type: 'string' },
      'no-mirror': { type: 'boolean' },
      detect: { type: 'boolean' },
      roc: { type: 'string' },
      out: { type: 'string' },
    },
    arity: [1, 1],
    async run([target], values) {
      let masked: RegExp;
      try {
        masked = new RegExp((values.masked as string | undefined) ?? '^masked');
      } catch (error) {
        throw new UsageError(`--masked: ${(error as Error).message}`);
      }
      const options: EvalOptions = {
        labels: values.labels as string | undefined,
        identities: values.identities as string | undefined,
        masked,
        aligned: !values.detect,
      };
      const started = performance.now();
      const { modelId, result } = await withPhotoContext(values, async (context) => ({
        modelId: context.recognizer.model.id,
        result: await (target!.endsWith('.bin') ? evaluatePairSet(target!, context, options) : evaluateFolder(target!, context, options)),
      }));
      const report = {
        target,
        model: values.model ?? 'maskface-mbf-cal',
        modelId,
        detector: values.detector ?? 'blazeface-256',
        alignment: alignmentOf(values),
        flip: values.flip === true,
        minScore: values['min-score'] ?? 0.6,
        mirrorLandmarks: !values['no-mirror'],
        seconds: (performance.now() - started) / 1000,
        ...result,
      };
      if (values.out) await (await import('node:fs/promises')).writeFile(values.out as string, `${JSON.stringify(report, null, 2)}\n`);
      if (values.roc) await writeRocPng(values.roc as string, result.splits, `${String(report.model)} on ${target}`);
      print(values, report, () => {
        const head =
          'photos' in result
            ? `${result.photos} photos (${result.masked} masked, ${result.bare} bare); no face: ${result.noFace.masked} masked, ${result.noFace.bare} bare` +
              (result.maskProbabilityMedian.masked === null ? '' : `; median maskProbability ${result.maskProbabilityMedian.masked.toFixed(2)} masked, ${result.maskProbabilityMedian.bare?.toFixed(2) ?? '-'} bare`)
            : `${result.pairs} pairs; no face: ${result.noFace}; best accuracy ${(100 * result.bestAccuracy).toFixed(2)}% at ${result.bestThreshold.toFixed(3)}`;
        return `${head}\n${formatSplits(result.splits)}`;
      });
    },
  },
  {
    names: ['bench'],
    synopsis: 'bench [options]',
    summary: 'embed latency and throughput, then exact gallery search queries/s',
    details: `  --model <name|path>   model to run (default: mobilefacenet)
  --threads <n>         intra-op threads (default: all cores)
  --spinning            threads spin-wait within a run (the recognizer's cpu.spinning)
  --gallery <n>         gallery size for the search part (default: 100000)
  --iterations <n>      timed runs per batch size (default: 10)
When onnxruntime-node is installed in the current project, the same model runs through it too (in
a child process, with its defaults and with denormals flushed) and the ratios are printed.`,
    options: { model: { type: 'string' }, threads: { type: 'string' }, spinning: { type: 'boolean' }, gallery: { type: 'string' }, iterations: { type: 'string' } },
    arity: [0, 0],
    async run(_, values) {
      await bench({
        model: (values.model as string | undefined) ?? 'mobilefacenet',
        threads: integerOf(values, 'threads', availableParallelism()),
        spinning: values.spinning === true,
        gallery: integerOf(values, 'gallery', 100000),
        iterations: integerOf(values, 'iterations', 10),
      });
    },
  },
  {
    names: ['fetch-models'],
    synopsis: 'fetch-models [names...]',
    summary: 'fetch catalogue models into the cache (default: all)',
    details: `Bundled models are checked against their sidecar, never downloaded. Catalogue: ${Object.keys(modelCatalogue).join(', ')}.`,
    options: {},
    arity: [0, Infinity],
    async run(names) {
      const list = (names.length > 0 ? names : Object.keys(modelCatalogue)) as ModelName[];
      for (const name of list) console.log(await ensureModel(name, { onProgress: (m) => console.error(`  ${m}`) }));
    },
  },
  {
    names: ['info'],
    synopsis: 'info',
    summary: 'versions, cores, model cache (JSON)',
    details: '',
    options: {},
    arity: [0, 0],
    async run() {
      console.log(JSON.stringify({ ...versions(), cores: availableParallelism(), modelCache: modelCacheDir() }, null, 2));
    },
  },
  {
    names: ['providers'],
    synopsis: 'providers',
    summary: 'execution providers, the GPU, driver and kernel library found (JSON)',
    details: '',
    options: {},
    arity: [0, 0],
    async run() {
      console.log(JSON.stringify({ providers: listProviders(), gpu: gpuStatus() }, null, 2));
    },
  },
  {
    names: ['install-gpu'],
    synopsis: 'install-gpu [--force]',
    summary: 'download the GPU runtime (ONNX Runtime with CUDA and TensorRT, ~290 MB from npm)',
    details: '',
    options: { force: { type: 'boolean' } },
    arity: [0, 0],
    async run(_, values) {
      console.log(await installGpuRuntime({ force: values.force === true, log: (m) => console.error(`  ${m}`) }));
    },
  },
  {
    names: ['uninstall-gpu'],
    synopsis: 'uninstall-gpu',
    summary: 'remove the GPU runtime; the CPU runtime is used again',
    details: '',
    options: {},
    arity: [0, 0],
    async run() {
      await uninstallGpuRuntime();
    },
  },
];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.synopsis.length));
  return `Usage: maskface <command> [options]      (maskface <command> --help for its options)

Commands:
${commands.map((c) => `  ${c.synopsis.padEnd(width)}  ${c.summary}`).join('\n')}
`;
}

function commandHelp(command: Command): string {
  const aliases = command.names.length > 1 ? ` (also: ${command.names.slice(1).join(', ')})` : '';
  return `Usage: maskface ${command.synopsis}${aliases}\n\n${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.\n${command.details ? `\n${command.details}\n` : ''}`;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return;
  }
  const command = commands.find((c) => c.names.includes(name));
  if (command === undefined) throw new UsageError(`unknown command '${name}'\n\n${usage()}`);
  let parsed: { positionals: string[]; values: Values };
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
    }) as { positionals: string[]; values: Values };
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${commandHelp(command)}`);
  }
  if (parsed.values.help) {
    console.log(commandHelp(command));
    return;
  }
  const [min, max] = command.arity;
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    throw new UsageError(`wrong number of arguments\n\n${commandHelp(command)}`);
  }
  await command.run(parsed.positionals, parsed.values);
}

main(process.argv.slice(2)).catch((error: Error & { code?: string }) => {
  if (error instanceof UsageError) {
    console.error(`maskface: ${error.message}`);
    process.exit(2);
  }
  console.error(`maskface: ${error.code ? `${error.code}: ` : ''}${error.message}`);
  process.exit(1);
});
