import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Watches the event loop while a timed section runs: a libuv timer fires every `resolutionMs`
 * and the histogram records how late it was. A run that blocks the loop shows up as a large max.
 */
export function watchEventLoop(resolutionMs = 5) {
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  return {
    stop() {
      histogram.disable();
      // Values are nanoseconds and include the timer's own resolution.
      return { maxMs: histogram.max / 1e6, p99Ms: histogram.percentile(99) / 1e6, resolutionMs };
    },
  };
}
