/**
 * The concurrency policy of a native handle: at most `limit` runs at once (the rest wait in
 * FIFO order), and a record of every run in flight so that dispose() can wait for them.
 */
export class RunQueue {
  readonly #limit: number;
  readonly #waiting: (() => void)[] = [];
  readonly #inFlight = new Set<Promise<unknown>>();
  #running = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Runs fn when a slot is free; the returned promise counts as in flight until it settles. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const task = this.#schedule(fn);
    this.#inFlight.add(task);
    const untrack = () => this.#inFlight.delete(task);
    task.then(untrack, untrack);
    return task;
  }

  /** Counts a promise as in flight (work that another queue schedules) until it settles. */
  track<T>(promise: Promise<T>): Promise<T> {
    this.#inFlight.add(promise);
    const untrack = () => this.#inFlight.delete(promise);
    promise.then(untrack, untrack);
    return promise;
  }

  /** Resolves once every run in flight now has settled. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  async #schedule<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#running++;
    try {
      return await fn();
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }
}
