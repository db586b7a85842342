#!/usr/bin/env node
// npm pack / npm publish hook: the package carries compiled JavaScript and a current linux-x64
// prebuild, so that installing it needs no compiler. Compiles the TypeScript; rebuilds the
// prebuild only when it is missing or older than the native sources.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { prebuildProblem, root } from './prebuild-sources.mjs';

execFileSync(process.execPath, [join(root, 'scripts', 'build-ts.mjs')], { stdio: 'inherit' });
const problem = prebuildProblem();
if (problem) {
  console.error(`maskface: building the prebuild (${problem})`);
  execFileSync(process.execPath, [join(root, 'scripts', 'prebuild.mjs')], { stdio: 'inherit' });
  const after = prebuildProblem();
  if (after) throw new Error(`the prebuild is still not current: ${after}`);
}
