/** Every failure maskface reports is a MaskFaceError with one of these codes. */
export const errorCodes = [
  'ERR_INVALID_ARGUMENT',
  'ERR_DIMENSION_MISMATCH',
  'ERR_MODEL_MISMATCH',
  'ERR_BINDING_LOAD',
  'ERR_MODEL_LOAD',
  'ERR_MODEL_FETCH',
  'ERR_IMAGE_DECODE',
  'ERR_PROVIDER_UNAVAILABLE',
  'ERR_INFERENCE',
  'ERR_CUDA',
  'ERR_OUT_OF_MEMORY',
  'ERR_DISPOSED',
  'ERR_GALLERY_CORRUPT',
  'ERR_GALLERY_VERSION',
  'ERR_IO',
  'ERR_ABORTED',
  'ERR_INTERNAL',
] as const;
export type MaskFaceErrorCode = (typeof errorCodes)[number];

/**
 * The codes only the TypeScript layer raises; every other code of `errorCodes` comes from native
 * code too (test/unit/errors.test.ts checks both lists against the addon's).
 */
export const typescriptOnlyErrorCodes: readonly MaskFaceErrorCode[] = ['ERR_MODEL_MISMATCH', 'ERR_MODEL_FETCH', 'ERR_IMAGE_DECODE', 'ERR_ABORTED'];

export interface MaskFaceErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

/** The one error class of maskface: check `code`, not the message. */
export class MaskFaceError extends Error {
  readonly code: MaskFaceErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, code: MaskFaceErrorCode, options: MaskFaceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MaskFaceError';
    this.code = errorCodes.includes(code) ? code : 'ERR_INTERNAL';
    this.details = options.details;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${(value as Uint8Array).length}`;
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}' of type string`;
  if (typeof value === 'object') return `an object (${value?.constructor?.name ?? 'Object'})`;
  return `${String(value)} of type ${typeof value}`;
}

/** `Expected <expected> for <name> but received <actual>`: the one message format of argument errors. */
export function invalidArgument(name: string, expected: string, actual: unknown): MaskFaceError {
  return new MaskFaceError(`Expected ${expected} for ${name} but received ${describe(actual)}`, 'ERR_INVALID_ARGUMENT', {
    details: { argument: name },
  });
}

/**
 * Awaits a native promise and, on failure, rethrows it as a MaskFaceError whose stack is the
 * caller's (native rejections have no JavaScript stack of their own).
 */
export async function withCallSite<T>(callSite: Error, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    throw relocate(error, callSite);
  }
}

function relocate(error: unknown, callSite: Error): MaskFaceError {
  const source = error instanceof Error ? error : new Error(String(error));
  const code = (source as { code?: unknown }).code;
  const relocated =
    source instanceof MaskFaceError
      ? source
      : new MaskFaceError(source.message, typeof code === 'string' ? (code as MaskFaceErrorCode) : 'ERR_INTERNAL', {
          cause: source,
        });
  const frames = callSite.stack?.split('\n').slice(1).join('\n') ?? '';
  relocated.stack = `${relocated.name}: ${relocated.message}\n${frames}`;
  return relocated;
}
