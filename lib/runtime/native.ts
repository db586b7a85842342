/**
 * The addon's surface, as lib/ uses it. Nothing outside lib/ imports this module; it is not
 * part of the public API.
 * @module
 */
import type { MaskFaceErrorCode } from '../api/errors.js';

export interface NativeImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: number;
  bgr: boolean;
}

export interface NativeFace extends NativeImage {
  landmarks?: Float64Array;
}

export interface NativeTensorDescription {
  name: string;
  type: string;
  shape: (number | null)[];
}

export interface NativeModelDescription {
  input: NativeTensorDescription;
  outputs: NativeTensorDescription[];
  embeddingOutput: string;
  regionsOutput: string | null;
  embeddingDim: number;
  fixedBatch: number;
  inputChannels: number;
  inputHeight: number;
  inputWidth: number;
  metadata: Record<string, string>;
  producer: string;
  graphName: string;
}

export interface NativeTiming {
  preprocessMs: number;
  inferenceMs: number;
  postprocessMs: number;
}

export interface NativeSession {
  describe(): NativeModelDescription;
  setPreprocessing(options: { mean: Float32Array; std: Float32Array; bgr: boolean; template: Float64Array | null }): void;
  embed(
    faces: NativeFace[],
    wantRegions: boolean,
    flip: boolean,
  ): Promise<{ embeddings: Float32Array; regions?: Float32Array; timing: NativeTiming }>;
  dispose(): void;
}

export interface NativeDetectOptions {
  minScore: number;
  nmsIoU: number;
  maxFaces: number;
  minFaceSize: number;
  retryPad: number;
  mirrorLandmarks: boolean;
}

/** What detect() embeds the faces it finds with. */
export interface NativeDetectEmbed {
  session: NativeSession;
  /** 5: eyes, nose tip, mouth corners; 3: eyes and nose tip; 4: BlazeFace keypoints (eyes, nose, mouth centre); 0: 5, then 3 where mean P[mask] over maskCells >= maskThreshold */
  alignmentPoints: 0 | 3 | 4 | 5;
  wantRegions: boolean;
  /** Also run each face's mirror image and merge the two embeddings (regions stay the face's). */
  flip: boolean;
  maskCells?: Uint32Array;
  maskPlane?: number;
  maskThreshold?: number;
}

export interface NativeDetectResult {
  count: number;
  /** count x (x1, y1, x2, y2, score) */
  boxes: Float32Array;
  /** count x 5 (x, y) */
  landmarks5: Float64Array;
  /** count x 68 (x, y) */
  landmarks68: Float32Array;
  /** count x (landmarkDisagreement or -1, yaw, roll, sharpness, padded 0/1) */
  quality: Float64Array;
  /** count x 6 (x, y): BlazeFace's keypoints */
  keypoints?: Float32Array;
  embeddings?: Float32Array;
  regions?: Float32Array;
  /** points each face was aligned with (5 or 3), when embedded */
  alignmentPoints?: Uint8Array;
  timing: { detectMs: number; embedMs: number };
}

export interface NativeDetector {
  describe(): { inputWidth: number; inputHeight: number; kind: 'ultraface' | 'blazeface' };
  detect(image: NativeImage, options: NativeDetectOptions, embed: NativeDetectEmbed | null): Promise<NativeDetectResult>;
  dispose(): void;
}

export interface NativeSearchResult {
  rows: Int32Array;
  scores: Float32Array;
  counts: Uint32Array;
}

export interface NativeGalleryStore {
  put(rows: Uint32Array, vectors: Float32Array): void;
  putAsync(rows: Uint32Array, vectors: Float32Array): Promise<void>;
  kill(rows: Uint32Array): number;
  /** 1 where the row holds a written vector that is live. */
  liveFlags(rows: Uint32Array): Uint8Array;
  /** The vectors of live rows, in the order given. */
  getRows(rows: Uint32Array): Float32Array;
  reserve(capacity: number): void;
  search(queries: Float32Array, count: number, k: number, threshold: number, threads: number): Promise<NativeSearchResult>;
  stats(): {
    rows: number;
    live: number;
    bytes: number;
    reservedBytes: number;
    dim: number;
    deviceBytes: number;
    int8Queries: number;
    int8Widened: number;
    int8ExactScans: number;
    int8Candidates: number;
  };
  /** Writes `rows` (live, in this order) with their encoded ids and meta to a gallery file, atomically. */
  save(path: string, rows: Uint32Array, ids: Uint8Array, meta: string): Promise<void>;
  /**
   * Streams a gallery file's rows into this empty store (rows 0..count-1), checking every byte;
   * the file must still hold `meta` (what describeGalleryFile returned). Rejects with the file's
   * error, leaving part of the rows: the caller drops the store.
   */
  loadFile(path: string, meta: string): Promise<{ count: number; ids: Uint8Array }>;
  attachDevice(deviceId: number): void;
  dispose(): void;
}

/** An open gallery journal (native/core/gallery_journal.h); calls are ordered by lib/. */
export interface NativeGalleryJournal {
  /** Appends records (payload i: the next lengths[i] bytes) numbered from firstSeq, fdatasynced; resolves with the journal's length. */
  append(payloads: Uint8Array, lengths: Uint32Array, firstSeq: number): Promise<number>;
  /** Starts over from a gallery file holding every change up to baseSeq, keeping the later records. */
  rebase(baseSeq: number): Promise<number>;
  stats(): { bytes: number; lastSeq: number; baseSeq: number };
  close(): void;
}

export interface NativeJournalContents {
  journal: NativeGalleryJournal;
  lineage: string;
  baseSeq: number;
  /** One operation per record (1 add, 2 remove), numbered baseSeq + 1, + 2, ... */
  ops: Uint8Array;
  /** One id entry per record, in the ids-section format. */
  ids: Uint8Array;
  /** dim values per add record. */
  vectors: Float32Array;
  tornBytes: number;
}

export interface NativeRuntime {
  path: string;
  version: string;
  providers: string[];
}

export interface NativeGpuProbe {
  driver: {
    loaded: boolean;
    error: string;
    version: number;
    devices: { index: number; name: string; totalMemory: number; computeCapability: string }[];
  };
  /** library name -> '' when it loads, else the loader's message (absent without a GPU) */
  libraries: Record<string, string>;
  tensorrtVersion: string;
  kernels: { loaded: boolean; path: string; error: string };
}

export interface NativeProviderOptions {
  provider: 'cpu' | 'cuda' | 'tensorrt';
  deviceId: number;
  fp16: boolean;
  engineCacheDir: string | null;
  /** align on the GPU and bind the tensor on the device (needs a GPU provider and the kernels) */
  deviceInput: boolean;
}

export interface NativeBinding {
  /** Sets the error class native failures use; false when an earlier call set one (it stays). */
  init(classes: { MaskFaceError: new (message: string, code: MaskFaceErrorCode) => Error }): boolean;
  loadRuntime(path: string): NativeRuntime;
  probeGpu(options: { libraries: string[]; kernelLibrary: string; tensorrt: boolean }): NativeGpuProbe;
  /** searchSimd: the instruction set of the gallery scan on this CPU (avx512, avx2 or scalar) */
  versions(): { onnxruntime: string; napi: number; hardwareThreads: number; searchSimd: string };
  errorCodes(): string[];
  /** Bytes of the C heap (glibc's mallinfo2 over all arenas); null elsewhere. */
  mallocStats(): { inUse: number; free: number; mmapped: number } | null;
  /** glibc's malloc_trim(0); false elsewhere or when nothing was released. */
  mallocTrim(): boolean;
  loadSession(
    bytes: Uint8Array,
    options: { intraOpThreads: number; interOpThreads: number; spinning: boolean; maxBatchSize: number } & NativeProviderOptions,
  ): Promise<NativeSession>;
  loadDetector(detector: Uint8Array, landmarks: Uint8Array, options: { intraOpThreads: number }): Promise<NativeDetector>;
  GalleryStore: new (dim: number, storage?: 'f32' | 'f16' | 'int8') => NativeGalleryStore;
  /** Reads and checks a gallery file's header, footer and meta (native/core/gallery_file.h). */
  describeGalleryFile(path: string): Promise<{ dim: number; count: number; meta: string; storage: 'f32' | 'f16' }>;
  /** Reads, checks and opens (or creates) the journal of a gallery file for appends. */
  openGalleryJournal(path: string, dim: number, lineage: string | null, fileSeq: number, fileExists: boolean): Promise<NativeJournalContents>;
  alignmentMatrix(landmarks: Float64Array, template: Float64Array): Float64Array | null;
  warpImage(image: NativeImage, matrix: Float64Array, width: number, height: number, channels: number, bgr: boolean): Uint8Array;
  warpTensor(
    image: NativeImage,
    matrix: Float64Array | null,
    spec: { width: number; height: number; channels: number; bgr: boolean; mean: Float32Array; std: Float32Array },
  ): Float32Array;
}
