import { native } from '../runtime/binding-loader.js';

/** Versions of the parts maskface runs on. Loads the addon. */
export function versions(): { maskface: string; onnxruntime: string; napi: number; node: string } {
  const v = native().versions();
  return { maskface: MASKFACE_VERSION, onnxruntime: v.onnxruntime, napi: v.napi, node: process.versions.node };
}

/** Kept in step with package.json by the build (scripts/build-ts.mjs checks it). */
export const MASKFACE_VERSION = '0.1.0';
