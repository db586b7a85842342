#!/usr/bin/env node
// prebuildify has no cmake-js backend: it calls this in place of node-gyp
// (`rebuild --target=X --devdir=D --arch=A --release`), and it builds with cmake-js instead.
// The addon uses Node-API only, so the target Node version does not change the binary.
import { buildNative } from './build-native.mjs';

const args = process.argv.slice(2);
const arch = args.find((a) => a.startsWith('--arch='))?.slice('--arch='.length);
const debug = args.includes('--debug');
buildNative([...(arch ? ['--arch', arch] : []), ...(debug ? ['--debug'] : [])]).catch((error) => {
  console.error(`maskface: ${error.message}`);
  process.exit(1);
});
