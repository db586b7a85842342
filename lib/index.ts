/**
 * maskface: masked-face recognition for Node.js.
 * @module
 */
export { FaceRecognizer } from './face-recognizer.js';
export { faceAlignments } from './face-recognizer.js';
export type { FaceRecognizerOptions, EmbedOptions, EmbedFacesOptions, EmbedTiming, FaceAlignment, ModelInfo, PhotoFace } from './face-recognizer.js';
export { FaceDetector } from './face-detector.js';
export type { DetectOptions, DetectedFace, FaceBox, FaceDetectorOptions, FaceQuality } from './face-detector.js';
export { decodeImage } from './image-input.js';
export type { DecodedImage, ImageInput } from './image-input.js';
export { FaceEmbedding, EmbeddingBatch } from './embedding.js';
export { regionClasses } from './regions.js';
export type { RegionClass, RegionMap } from './regions.js';
export { Gallery, BatchMatches, maxTopK, maxTopKCuda } from './gallery.js';
export type { GalleryOptions, SearchOptions, Match } from './gallery.js';
export { alignFace, alignmentMatrix, faceTensor } from './align.js';
export type { AlignOptions, AlignedFace, TensorOptions } from './align.js';
export { MaskFaceError, errorCodes } from './errors.js';
export type { MaskFaceErrorCode } from './errors.js';
export { arcfaceTemplate112, defaultModel, ensureModel, modelCatalogue, modelCacheDir, sourceModelPath } from './models.js';
export type { ModelName, FetchModelOptions } from './models.js';
export { providers, pixelFormats } from './types.js';
export type { FaceImage, ModelFingerprint, PixelFormat, Preprocessing, Provider, ProviderPreference } from './types.js';
export { versions } from './versions.js';
export { gpuStatus, listProviders } from './providers.js';
export type { GpuDevice, GpuStatus, ProviderInfo } from './providers.js';
export { gpuRuntimeDir, installGpuRuntime, uninstallGpuRuntime, GPU_RUNTIME_ORT_VERSION } from './gpu-runtime.js';
export type { InstallGpuRuntimeOptions } from './gpu-runtime.js';
