// The machine and software a run measured, for the head of the results table.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = join(benchDir, '..');

function cpuModel() {
  try {
    const match = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    if (match) return match[1].trim();
  } catch {}
  return os.cpus()[0]?.model ?? 'unknown';
}

function cpuSimd() {
  try {
    const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.+)$/m)?.[1].split(' ') ?? [];
    return ['avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16'].filter((f) => flags.includes(f));
  } catch {
    return [];
  }
}

function osName() {
  try {
    const pretty = readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]+)"?$/m)?.[1];
    return `${pretty ?? os.type()}, kernel ${os.release()}`;
  } catch {
    return `${os.type()} ${os.release()}`;
  }
}

function packageVersion(name) {
  try {
    return JSON.parse(readFileSync(join(benchDir, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'not installed';
  }
}

/** maskface's versions(), read in a child process (its ORT must not meet onnxruntime-node's). */
function maskfaceVersions() {
  try {
    const script = "import('./dist/esm/index.js').then((m) => console.log(JSON.stringify(m.versions())))";
    return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: repoRoot, encoding: 'utf8' }));
  } catch (error) {
    return { error: String(error.message).split('\n')[0] };
  }
}

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export function machineFingerprint() {
  const maskface = maskfaceVersions();
  return {
    host: os.hostname(),
    cpu: cpuModel(),
    simd: cpuSimd(),
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: osName(),
    node: process.versions.node,
    maskface: maskface.maskface ?? maskface.error,
    maskfaceOrt: maskface.onnxruntime,
    onnxruntimeNode: packageVersion('onnxruntime-node'),
    usearch: packageVersion('usearch'),
    hnswlibNode: packageVersion('hnswlib-node'),
    human: packageVersion('@vladmandic/human'),
    tfjs: packageVersion('@tensorflow/tfjs-core'),
    commit: gitCommit(),
  };
}

/** 1, 5 and 15-minute load averages, rounded. */
export function loadAverage() {
  return os.loadavg().map((v) => Math.round(v * 100) / 100);
}

/** CPU time counters from /proc/stat (jiffies, all cores), to see steal by a busy VM host. */
export function cpuCounters() {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal = 0] = fields;
    return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
  } catch {
    return undefined;
  }
}

/** Share of CPU time between two cpuCounters() readings that the hypervisor stole, in percent. */
export function stealPercent(before, after) {
  if (!before || !after) return undefined;
  const total = after.busy + after.idle + after.steal - (before.busy + before.idle + before.steal);
  return total > 0 ? Math.round(((after.steal - before.steal) / total) * 1000) / 10 : undefined;
}
