import { join } from 'node:path';

/**
 * The folder that holds maskface's package.json; this file compiles to dist/cjs/runtime.
 */
export const packageRoot: string = join(__dirname, '..', '..', '..');
