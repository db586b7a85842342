/**
 * maskface: masked-face recognition for Node.js.
 * @module
 */
export { FaceRecognizer } from './api/face-recognizer.js';
export { faceAlignments } from './api/face-recognizer.js';
export type { FaceRecognizerOptions, EmbedOptions, EmbedFacesOptions, FaceAlignment, ModelInfo, PhotoFace } from './api/face-recognizer.js';
export { FaceDetector } from './api/face-detector.js';
export type { DetectOptions, DetectedFace, FaceBox, FaceDetectorOptions, FaceQuality } from './api/face-detector.js';
export { decodeImage } from './api/image-input.js';
export type { DecodedImage, ImageInput } from './api/image-input.js';
export { FaceEmbedding, EmbeddingBatch } from './api/embedding.js';
export type { EmbedTiming } from './api/embedding.js';
export { regionClasses } from './api/regions.js';
export type { RegionClass, RegionMap } from './api/regions.js';
export { Gallery, BatchMatches, maxTopK, maxTopKCuda } from './api/gallery.js';
export { ScoreCalibration, verify } from './api/calibration.js';
export type { CalibrationPoint, PairCondition, ScoreDistribution, Verification, VerifyOptions } from './api/calibration.js';
export type { GalleryOptions, GalleryLoadOptions, GalleryStorage, Int8SearchStats, SearchOptions, Match, IdentityMatch, IdentitySearchOptions, WriteOptions, JournalStatus } from './api/gallery.js';
export { alignFace, alignmentMatrix, faceTensor } from './api/align.js';
export type { AlignOptions, AlignedFace, TensorOptions } from './api/align.js';
export { MaskFaceError, errorCodes } from './api/errors.js';
export type { MaskFaceErrorCode } from './api/errors.js';
export { arcfaceTemplate112, defaultModel, modelCatalogue } from './setup/models.js';
export type { ModelName } from './setup/models.js';
export { providers, pixelFormats } from './api/types.js';
export type { FaceImage, ModelFingerprint, PixelFormat, Preprocessing, Provider, ProviderPreference } from './api/types.js';
export { versions } from './api/versions.js';
export { gpuStatus, listProviders } from './api/providers.js';
export type { GpuDevice, GpuStatus, ProviderInfo } from './api/providers.js';
// Fetching models ahead of use and installing the GPU runtime: 'maskface/setup'.
