// Generates (or finds cached) the gallery, the queries and the exact reference before the timed
// search cases, so that no case pays for them.
import { printResult } from '../lib/args.mjs';
import { searchSetup } from '../lib/search-setup.mjs';

const start = performance.now();
const { params } = searchSetup();
printResult({ kind: 'prepare', ...params, seconds: Math.round((performance.now() - start) / 100) / 10 });
