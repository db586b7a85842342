import { join } from 'node:path';

/**
 * The folder that holds maskface's package.json; compiled files live in dist/cjs.
 * @internal
 */
export const packageRoot: string = join(__dirname, '..', '..');
