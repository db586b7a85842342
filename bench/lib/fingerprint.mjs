// The machine and software a run measured, for the head of the results table.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = join(benchDir, '..');

function cpuinfo() {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

function cpuinfoField(text, name) {
  return text.match(new RegExp(`^${name}\\s*:\\s*(.+)$`, 'm'))?.[1].trim();
}

// The instruction-set extensions that decide which kernels ONNX Runtime and maskface pick.
const isaFlags = ['avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_int8', 'amx_bf16'];

/**
 * Which CPU: vendor, model name, family/model/stepping, the ISA extensions that matter here, and
 * whether it runs under a hypervisor (whose CPUID may hide or rename the real part).
 */
function cpuIdentity() {
  const text = cpuinfo();
  const flags = cpuinfoField(text, 'flags')?.split(' ') ?? [];
  const [family, model, stepping] = ['cpu family', 'model', 'stepping'].map((f) => cpuinfoField(text, f));
  return {
    vendor: cpuinfoField(text, 'vendor_id') ?? os.cpus()[0]?.model.split(' ')[0] ?? 'unknown',
    model: cpuinfoField(text, 'model name') ?? os.cpus()[0]?.model ?? 'unknown',
    familyModelStepping: family !== undefined ? `${family}/${model}/${stepping}` : 'unknown',
    simd: isaFlags.filter((f) => flags.includes(f)),
    virtualized: flags.includes('hypervisor'),
  };
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
  const cpu = cpuIdentity();
  return {
    host: os.hostname(),
    cpu: cpu.model,
    cpuVendor: cpu.vendor,
    cpuFamilyModelStepping: cpu.familyModelStepping,
    simd: cpu.simd,
    virtualized: cpu.virtualized,
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
