// A fixed pool of embedding workers with a bounded queue: `embed` rejects at once with
// QueueFullError when the queue is full (the server answers 429), and a job whose signal aborts
// leaves the queue, or is cancelled on its worker.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FaceEmbedding } from 'maskface';

export class QueueFullError extends Error {
  code = 'QUEUE_FULL';
}

export class EmbedPool {
  #workers = [];
  #idle = [];
  #queue = [];
  #jobs = new Map();
  #nextJob = 0;
  #closed = false;
  model;
  counts = { done: 0, failed: 0, cancelled: 0, rejected: 0 };

  /** `size` workers of `threads` ONNX Runtime threads each; at most `queueLimit` photos wait. */
  static async start({ size = Math.min(4, availableParallelism()), threads = 1, queueLimit = 64 } = {}) {
    const pool = new EmbedPool();
    pool.queueLimit = queueLimit;
    await Promise.all(Array.from({ length: size }, () => pool.#spawn(threads)));
    return pool;
  }

  #spawn(threads) {
    const worker = new Worker(new URL('./embed-worker.mjs', import.meta.url), { workerData: { threads } });
    this.#workers.push(worker);
    return new Promise((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (message) => {
        if (message.ready) {
          this.model = message.model;
          worker.off('error', reject);
          worker.on('error', (error) => this.#failWorker(worker, error));
          this.#release(worker);
          resolve();
          return;
        }
        this.#finish(worker, message);
      });
    });
  }

  /** Photos waiting and photos running. */
  get load() {
    return { queued: this.#queue.length, running: this.#workers.length - this.#idle.length, workers: this.#workers.length };
  }

  /** The faces of a photo (encoded bytes), each with its embedding. */
  embed(photo, signal) {
    if (this.#closed) return Promise.reject(new Error('the pool is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#idle.length === 0 && this.#queue.length >= this.queueLimit) {
      this.counts.rejected++;
      return Promise.reject(new QueueFullError(`${this.#queue.length} photos are waiting`));
    }
    return new Promise((resolve, reject) => {
      const job = { id: this.#nextJob++, photo, resolve, reject, worker: undefined, signal };
      const onAbort = () => this.#cancel(job);
      signal?.addEventListener('abort', onAbort, { once: true });
      job.detach = () => signal?.removeEventListener('abort', onAbort);
      this.#jobs.set(job.id, job);
      this.#queue.push(job);
      this.#dispatch();
    });
  }

  #dispatch() {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const job = this.#queue.shift();
      const worker = this.#idle.pop();
      job.worker = worker;
      worker.postMessage({ job: job.id, photo: job.photo });  // a copy: request bodies may share a pooled buffer
    }
  }

  #release(worker) {
    this.#idle.push(worker);
    this.#dispatch();
  }

  #cancel(job) {
    this.counts.cancelled++;
    if (job.worker) {
      job.worker.postMessage({ cancel: job.id });  // its answer still frees the worker
    } else {
      this.#queue.splice(this.#queue.indexOf(job), 1);
      this.#jobs.delete(job.id);
    }
    job.detach();
    job.reject(job.signal.reason);
    job.settled = true;
  }

  #finish(worker, message) {
    const job = this.#jobs.get(message.job);
    this.#jobs.delete(message.job);
    this.#release(worker);
    if (!job || job.settled) return;
    job.detach();
    if (message.error) {
      this.counts.failed++;
      job.reject(Object.assign(new Error(message.error.message), { code: message.error.code }));
      return;
    }
    this.counts.done++;
    job.resolve(message.faces.map((face) => ({ ...face, embedding: FaceEmbedding.fromBytes(face.embedding, this.model) })));
  }

  #failWorker(worker, error) {
    for (const job of this.#jobs.values()) {
      if (job.worker === worker && !job.settled) job.reject(error);
    }
  }

  /** Waits for the photos in flight, then stops the workers. */
  async close() {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new Error('the service is shutting down'));
    while (this.#idle.length < this.#workers.length) await new Promise((r) => setTimeout(r, 10));
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}
