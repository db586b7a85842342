// The timing loop both embedding cases share: untimed warm-up runs, then timed runs until both
// a minimum count and a minimum duration are reached, with the event loop watched throughout.
import { intOption, parseArgs } from './args.mjs';
import { watchEventLoop } from './loop-delay.mjs';
import { percentile, round } from './stats.mjs';

export function embedParams() {
  const options = parseArgs();
  return {
    options,
    model: options.model,
    batch: intOption(options, 'batch', 1),
    threads: intOption(options, 'threads', 1),
    warmup: intOption(options, 'warmup', 3),
    minRuns: intOption(options, 'min-runs', 20),
    minSeconds: Number(options['min-seconds'] ?? 5),
  };
}

/** Times `runOnce()` (one batch per call); `afterRun(ms)` sees each timed run's latency. */
export async function timeEmbedding(params, runOnce, afterRun = () => {}) {
  for (let i = 0; i < params.warmup; i++) await runOnce();
  const latencies = [];
  const watcher = watchEventLoop(Number(process.env.LOOP_RES_MS ?? 5));
  const start = performance.now();
  while (latencies.length < params.minRuns || performance.now() - start < params.minSeconds * 1000) {
    const t0 = performance.now();
    await runOnce();
    const ms = performance.now() - t0;
    latencies.push(ms);
    afterRun(ms);
  }
  const seconds = (performance.now() - start) / 1000;
  const loop = watcher.stop();
  return {
    runs: latencies.length,
    p50Ms: round(percentile(latencies, 50)),
    p95Ms: round(percentile(latencies, 95)),
    facesPerS: round((latencies.length * params.batch) / seconds, 1),
    loopMaxDelayMs: round(loop.maxMs, 1),
    loopResolutionMs: loop.resolutionMs,
    totalMs: seconds * 1000,
  };
}
