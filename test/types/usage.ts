// Compiled (not run) by test/types/types.test.ts against the published declarations: the README
// example and the public types must type-check for a consumer with strict settings.
import * as maskface from 'maskface';
import { ensureModel, gpuRuntimeDir } from 'maskface/setup';
import {
  BatchMatches,
  EmbeddingBatch,
  FaceDetector,
  FaceEmbedding,
  FaceRecognizer,
  Gallery,
  MaskFaceError,
  alignFace,
  type EmbedTiming,
  type DetectedFace,
  type PhotoFace,
  type FaceImage,
  type Match,
  type MaskFaceErrorCode,
  type ModelFingerprint,
  type RegionClass,
} from 'maskface';

export async function readmeExample(aliceFace: FaceImage, probeFace: FaceImage): Promise<string | undefined> {
  await using recognizer = await FaceRecognizer.load();
  await using gallery = new Gallery({ model: recognizer.model });
  gallery.add('alice', await recognizer.embed(aliceFace));
  const probe = await recognizer.embed(probeFace);
  const [best] = await gallery.search(probe, { k: 1 });
  void probe.maskProbability?.toFixed(2);
  return best?.id;
}

// The README's photo example, as a strict consumer writes it.
export async function readmePhotoExample(): Promise<void> {
  const recognizer = await FaceRecognizer.load();
  const detector = await FaceDetector.load();
  const gallery = new Gallery({ model: recognizer.model });
  try {
    const [alice] = await recognizer.embedFaces('alice.jpg', { detector });
    if (alice) gallery.add('alice', alice.embedding);
    for (const face of await recognizer.embedFaces(new Uint8Array(0), { detector, alignment: 'eyes-nose', maxFaces: 5 })) {
      const [best] = await gallery.search(face.embedding, { k: 1 });
      console.log(face.box.width, face.maskProbability?.toFixed(2), best?.id, face.quality.landmarkDisagreement ?? 'n/a');
    }
    const found: DetectedFace[] = await detector.detect('photo.png', { minScore: 0.5, retryPadding: false });
    const points: readonly (readonly [number, number])[] = found[0]?.landmarks ?? [];
    await recognizer.embed({ data: new Uint8Array(300), width: 10, height: 10, landmarks: points });
    // @ts-expect-error alignment is a closed set
    await recognizer.embedFaces('x.jpg', { detector, alignment: 'mouth' });
    // @ts-expect-error embedFaces needs a detector
    await recognizer.embedFaces('x.jpg', {});
    const face: PhotoFace | undefined = undefined;
    void face;
  } finally {
    await Promise.all([gallery.dispose(), detector.dispose(), recognizer.dispose()]);
  }
}

export async function typedIds(batch: EmbeddingBatch, model: ModelFingerprint): Promise<number> {
  const gallery = new Gallery<number>({ model, capacity: 10 });
  await gallery.addMany([1, 2], batch);
  const matches: BatchMatches<number> = await gallery.searchBatch(batch, { k: 5, threshold: 0.3 });
  const first: Match<number>[] = matches.at(0);
  // @ts-expect-error ids of a Gallery<number> are numbers
  gallery.add('x', batch.at(0));
  await gallery.dispose();
  return first[0]?.id ?? -1;
}

export function errors(error: unknown): MaskFaceErrorCode | undefined {
  if (error instanceof MaskFaceError) return error.code;
  return undefined;
}

export function plainData(embedding: FaceEmbedding, image: FaceImage): number {
  const aligned = alignFace(image, [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]);
  // @ts-expect-error the pixel formats are a closed set
  const bad: FaceImage = { ...image, format: 'yuv' };
  void bad;
  return embedding.similarity(FaceEmbedding.fromBytes(embedding.toBytes('f16'), embedding.model, 'f16')) + aligned.width;
}

export function regionValues(embedding: FaceEmbedding, batch: EmbeddingBatch): number {
  // @ts-expect-error plain models have no region maps: the values may be undefined
  const probability: number = embedding.maskProbability;
  void probability;
  const map: Float32Array | undefined = embedding.visibleFace ?? embedding.maskMap;
  const classes: readonly RegionClass[] | undefined = embedding.regions?.classes;
  return (embedding.maskProbability ?? 0) + (batch.maskProbabilities()?.[0] ?? 0) + (map?.length ?? 0) + (classes?.length ?? 0);
}

// Values users must not construct have no public constructor; factories and setup helpers do.
export async function constructionAndSetup(model: ModelFingerprint, batch: EmbeddingBatch): Promise<number> {
  // @ts-expect-error the constructor is private: use FaceEmbedding.fromVector, fromBytes or fromJSON
  void new FaceEmbedding(new Float32Array(512), model);
  // @ts-expect-error the constructor is private: use EmbeddingBatch.fromVectors or from
  void new EmbeddingBatch(new Float32Array(512), model);
  // @ts-expect-error the constructor is private: Gallery.searchBatch makes these
  void new BatchMatches(1, new Int32Array(1), new Float32Array(1), new Uint32Array(1), []);
  const one = FaceEmbedding.fromVector([0.6, 0.8], model);
  const many = EmbeddingBatch.fromVectors(new Float32Array(2 * model.dim), model);
  const timing: EmbedTiming | undefined = batch.timing;
  const path: string = await ensureModel('mobilefacenet');
  const folder: string = gpuRuntimeDir();
  // @ts-expect-error install helpers live in 'maskface/setup', not in 'maskface'
  void maskface.installGpuRuntime;
  return one.dim + many.count + (timing?.inferenceMs ?? 0) + path.length + folder.length;
}
