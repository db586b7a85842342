import { readFile } from 'node:fs/promises';
import { MaskFaceError, invalidArgument } from './errors.js';
import type { NativeImage } from '../runtime/native.js';
import type { FaceImage } from './types.js';
import { toNativeImage } from '../runtime/validate.js';

/**
 * A photo: a file path, the bytes of a JPEG, PNG, WebP, AVIF, TIFF or GIF file (decoded with
 * sharp, EXIF orientation applied; binary PGM and PPM too), or pixels already decoded (a FaceImage without landmarks).
 */
export type ImageInput = string | Uint8Array | FaceImage;

/** A decoded photo: RGB (or grey) pixels, upright. */
export interface DecodedImage extends FaceImage {
  readonly format: 'rgb' | 'gray';
}

type Sharp = (typeof import('sharp'))['default'];
let sharpModule: Promise<Sharp> | undefined;

/** sharp, loaded on first use, with a load failure reported as what it is. @internal (its type differs between module systems) */
export function loadSharp(): Promise<Sharp> {
  sharpModule ??= import('sharp').then(
    (m) => m.default,
    (error: Error) => {
      sharpModule = undefined;
      throw new MaskFaceError(`Decoding image files needs sharp, which did not load: ${error.message}`, 'ERR_BINDING_LOAD', {
        cause: error,
      });
    },
  );
  return sharpModule;
}

/**
 * Decodes an image file (path or bytes) to upright 8-bit pixels: EXIF orientation applied,
 * alpha dropped, grey images kept grey, everything else converted to sRGB. Fails with
 * ERR_IMAGE_DECODE (unreadable file, not an image, damaged data).
 */
export async function decodeImage(input: string | Uint8Array): Promise<DecodedImage> {
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    if (input.length === 0) throw invalidArgument('image', 'a file path, image bytes or pixels', input);
    try {
      bytes = await readFile(input);
    } catch (error) {
      throw new MaskFaceError(`Cannot read image file ${input}: ${(error as Error).message}`, 'ERR_IMAGE_DECODE', {
        cause: error,
        details: { path: input },
      });
    }
  } else if (input instanceof Uint8Array) {
    bytes = input;
  } else {
    throw invalidArgument('image', 'a file path or image bytes', input);
  }
  if (bytes.length === 0) throw new MaskFaceError('The image is empty (0 bytes)', 'ERR_IMAGE_DECODE');
  const netpbm = decodeNetpbm(bytes);
  if (netpbm) return netpbm;
  const sharp = await loadSharp();
  try {
    const pipeline = sharp(bytes, { failOn: 'error', limitInputPixels: 2 ** 28 }).rotate().removeAlpha();
    // Grey files (one channel, or grey and alpha) stay grey; everything else becomes sRGB.
    const { channels, space } = await pipeline.metadata();
    const grey = space === 'b-w' || space === 'grey16' || (channels !== undefined && channels <= 2);
    const { data, info } = await pipeline
      .toColourspace(grey ? 'b-w' : 'srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const format = info.channels === 1 ? 'gray' : 'rgb';
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, format };
  } catch (error) {
    const where = typeof input === 'string' ? ` ${input}` : '';
    throw new MaskFaceError(`Cannot decode image${where}: ${(error as Error).message}`, 'ERR_IMAGE_DECODE', {
      cause: error,
      details: typeof input === 'string' ? { path: input } : undefined,
    });
  }
}

/**
 * Binary Netpbm (P5 grey, P6 RGB, 8-bit), which sharp's prebuilt libvips does not read: face
 * sets such as ORL ship as PGM. Returns undefined for anything else.
 */
function decodeNetpbm(bytes: Uint8Array): DecodedImage | undefined {
  if (bytes.length < 3 || bytes[0] !== 0x50 || (bytes[1] !== 0x35 && bytes[1] !== 0x36)) return undefined;
  const fields: number[] = [];
  let i = 2;
  while (fields.length < 3 && i < bytes.length) {
    const c = bytes[i]!;
    if (c === 0x23) {
      while (i < bytes.length && bytes[i] !== 0x0a) i++; // comment to the end of the line
    } else if (c >= 0x30 && c <= 0x39) {
      let value = 0;
      while (i < bytes.length && bytes[i]! >= 0x30 && bytes[i]! <= 0x39) value = value * 10 + bytes[i++]! - 0x30;
      fields.push(value);
      continue;
    } else if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) {
      return undefined;
    }
    i++;
  }
  const [width, height, maxValue] = fields;
  const channels = bytes[1] === 0x35 ? 1 : 3;
  if (!width || !height || maxValue !== 255) return undefined;
  const start = i + 1; // one whitespace byte after the maximum value
  const size = width * height * channels;
  if (bytes.length < start + size) throw new MaskFaceError(`The Netpbm image is truncated: ${bytes.length - start} of ${size} pixel bytes`, 'ERR_IMAGE_DECODE');
  return { data: bytes.slice(start, start + size), width, height, format: channels === 1 ? 'gray' : 'rgb' };
}

/** Any ImageInput to the record the addon takes. */
export async function toNativePhoto(name: string, input: unknown): Promise<NativeImage> {
  if (typeof input === 'string' || input instanceof Uint8Array) return toNativeImage(name, await decodeImage(input));
  return toNativeImage(name, input);
}
