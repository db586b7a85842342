// What the photo cases share: the options (--photo, --threads, run counts), the photo itself
// (decoded once, before timing), the timing loop of the embedding cases with one photo per call,
// and the fields every photo result carries.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { intOption, parseArgs } from './args.mjs';
import { watchEventLoop } from './loop-delay.mjs';
import { loadPhoto } from './photos.mjs';
import { percentile, round } from './stats.mjs';

export async function photoParams() {
  const options = parseArgs();
  const params = {
    options,
    photoName: options.photo ?? 'five-faces',
    threads: intOption(options, 'threads', 2),
    warmup: intOption(options, 'warmup', 3),
    minRuns: intOption(options, 'min-runs', 10),
    minSeconds: Number(options['min-seconds'] ?? 5),
  };
  params.photo = await loadPhoto(params.photoName);
  return params;
}

/**
 * Times `runOnce()` (one photo per call) as embed-timing.mjs does: untimed warm-up runs, then timed
 * runs until both a minimum count and a minimum duration are reached, the event loop watched
 * throughout. One difference: between runs (outside the timed span) the loop gets one turn. A
 * call that never leaves the main thread (tfjs on WASM or its cpu backend resolves every await
 * as a microtask) would otherwise keep the loop from turning for the whole timed section, and the
 * delay histogram would see no sample at all instead of a stall as long as the call.
 */
export async function timePhotos(params, runOnce) {
  for (let i = 0; i < params.warmup; i++) await runOnce();
  await nextTurn();
  const latencies = [];
  const watcher = watchEventLoop(5);
  const start = performance.now();
  let busyMs = 0;
  while (latencies.length < params.minRuns || busyMs < params.minSeconds * 1000) {
    const t0 = performance.now();
    await runOnce();
    const ms = performance.now() - t0;
    latencies.push(ms);
    busyMs += ms;
    await nextTurn();
  }
  await nextTurn();
  const loop = watcher.stop();
  return {
    runs: latencies.length,
    p50Ms: round(percentile(latencies, 50)),
    p95Ms: round(percentile(latencies, 95)),
    photosPerS: round((1000 * latencies.length) / busyMs, 2),
    loopMaxDelayMs: round(loop.maxMs, 1),
    loopP99DelayMs: round(loop.p99Ms, 1),
    loopResolutionMs: loop.resolutionMs,
    timedWallS: round((performance.now() - start) / 1000, 2),
  };
}

/** Box centre and size, for matching the same face across implementations. */
export function boxSummary({ x, y, width, height }) {
  return { cx: round(x + width / 2, 1), cy: round(y + height / 2, 1), size: round(Math.max(width, height), 1) };
}

/** The fields every photo result starts with. */
export function photoResultBase(params, impl, variant) {
  const { photo } = params;
  return {
    kind: 'photo',
    impl,
    variant,
    photo: photo.name,
    photoSize: `${photo.pixels.width}x${photo.pixels.height}`,
    jpegBytes: photo.jpeg.byteLength,
    expectedFaces: photo.expectedFaces,
  };
}
