import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder that holds maskface's package.json. Compiled files live two levels below it
 * (dist/esm, dist/cjs); the CommonJS build replaces this module with a __dirname version.
 * @internal
 */
// @ts-ignore -- import.meta does not type-check in the CommonJS build, which replaces this file
export const packageRoot: string = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
