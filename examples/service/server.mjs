// An HTTP face recognition service on maskface and fastify:
//   POST   /people/:name   enrol: the largest face of the photo in the body, durable before the reply
//   DELETE /people/:name   forget every photo of a person
//   POST   /identify       every face of the photo, each with the best match or null
//   POST   /verify         { a, b }: base64 photos; are their largest faces the same person?
//   POST   /detect         faces, boxes and mask probabilities, no search
//   GET    /health         gallery size, queue, event-loop delay, memory
// Photos are sent as the raw body (Content-Type image/* or application/octet-stream). Embedding
// runs on a pool of worker threads; the main thread owns the one Gallery (a journaled file, see
// Gallery.open), so every write is ordered and durable. A full queue answers 429; a client that
// disconnects cancels its photo; SIGTERM/SIGINT stop accepting, finish what is in flight, fold the
// journal into the gallery file and exit.
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Fastify from 'fastify';
import { Gallery, ScoreCalibration, verify } from 'maskface';
import { EmbedPool, QueueFullError } from './pool.mjs';

/**
 * Decisions at 1 false accept in 1000 impostor pairs, by the default model's calibration: the
 * masked one when a face wears a mask (docs/api.md#verification-and-thresholds).
 */
const far = 1e-3;

const photoTypes = ['application/octet-stream', 'image/jpeg', 'image/png', 'image/webp'];

export async function startServer({
  gallery: galleryPath = 'gallery.mfg',
  port = 3000,
  host = '127.0.0.1',
  workers = Math.min(4, availableParallelism()),
  threads = Math.max(1, Math.floor(availableParallelism() / workers)),
  queueLimit = 64,
  bodyLimit = 10 * 2 ** 20,
  logger = false,
} = {}) {
  const pool = await EmbedPool.start({ size: workers, threads, queueLimit });
  const gallery = await Gallery.open(galleryPath, { model: pool.model });
  // Sampled every millisecond: an idle loop reads about 1 ms.
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();

  const app = Fastify({ logger, bodyLimit });
  // Once shutting down, answers close their connection: a kept-alive one would hold the shutdown
  // until its idle timeout (idle connections are closed at once by fastify).
  let shuttingDown = false;
  app.addHook('onSend', async (_request, reply) => {
    if (shuttingDown) reply.header('connection', 'close');
  });
  app.addContentTypeParser(photoTypes, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  // An AbortSignal that fires when the client goes away before its answer is sent.
  const clientGone = (request, reply) => {
    const controller = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableEnded) controller.abort(new Error('the client disconnected'));
    });
    return controller.signal;
  };

  const photoOf = (request) => {
    if (!Buffer.isBuffer(request.body) || request.body.length === 0) {
      throw Object.assign(new Error('send the photo as the body (Content-Type image/jpeg, image/png, image/webp or application/octet-stream)'), {
        statusCode: 415,
        code: 'unsupported_media_type',
      });
    }
    return new Uint8Array(request.body.buffer, request.body.byteOffset, request.body.byteLength);
  };

  const largest = (faces) => faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
  const describe = (face) => ({ box: face.box, score: face.score, maskProbability: face.maskProbability });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof QueueFullError) return reply.code(429).header('retry-after', '1').send({ error: 'busy', message: error.message });
    // Errors from the workers arrive as plain Errors with the code kept.
    if (error.code === 'ERR_IMAGE_DECODE') return reply.code(422).send({ error: error.code, message: error.message });
    if (error.statusCode && error.statusCode < 500) return reply.code(error.statusCode).send({ error: error.code ?? 'bad_request', message: error.message });
    if (reply.raw.destroyed) return;  // the client went away: nobody to answer
    request.log.error(error);
    return reply.code(500).send({ error: error.code ?? 'internal', message: error.message });
  });

  app.post('/people/:name', async (request, reply) => {
    const faces = await pool.embed(photoOf(request), clientGone(request, reply));
    if (faces.length === 0) return reply.code(422).send({ error: 'no_face', message: 'no face found in the photo' });
    const face = largest(faces);
    await gallery.add(request.params.name, face.embedding, { durable: true });
    return reply.code(201).send({ name: request.params.name, face: describe(face), photos: gallery.size });
  });

  app.delete('/people/:name', async (request) => {
    const removed = await gallery.remove(request.params.name, { durable: true });
    return { name: request.params.name, removed };
  });

  app.post('/identify', async (request, reply) => {
    const signal = clientGone(request, reply);
    const faces = await pool.embed(photoOf(request), signal);
    const matches = await Promise.all(faces.map((face) => gallery.identify(face.embedding, { far, signal })));
    const calibration = ScoreCalibration.for(gallery.model);
    return {
      faces: faces.map((face, i) => ({
        ...describe(face),
        name: matches[i]?.id ?? null,
        similarity: matches[i]?.score ?? null,
        threshold: calibration.threshold(far, ScoreCalibration.conditionOf(face.embedding)),
      })),
    };
  });

  app.post('/verify', { bodyLimit: 2 * bodyLimit }, async (request, reply) => {
    const { a, b } = request.body ?? {};
    if (typeof a !== 'string' || typeof b !== 'string') {
      return reply.code(400).send({ error: 'bad_request', message: 'send { "a": <base64 photo>, "b": <base64 photo> }' });
    }
    const signal = clientGone(request, reply);
    const [facesA, facesB] = await Promise.all([a, b].map((text) => pool.embed(new Uint8Array(Buffer.from(text, 'base64')), signal)));
    if (facesA.length === 0 || facesB.length === 0) return reply.code(422).send({ error: 'no_face', message: `no face found in photo ${facesA.length === 0 ? 'a' : 'b'}` });
    const [faceA, faceB] = [largest(facesA), largest(facesB)];
    const { same, score, threshold, condition } = verify(faceA.embedding, faceB.embedding, { far });
    return { same, similarity: score, threshold, condition, a: describe(faceA), b: describe(faceB) };
  });

  app.post('/detect', async (request, reply) => {
    const faces = await pool.embed(photoOf(request), clientGone(request, reply));
    return { faces: faces.map(describe) };
  });

  app.get('/health', async (request) => {
    const body = {
      people: gallery.ids().length,
      photos: gallery.size,
      journal: gallery.journal,
      pool: { ...pool.load, ...pool.counts },
      eventLoopDelayMs: { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 },
      rssBytes: process.memoryUsage.rss(),
    };
    if (request.query.reset !== undefined) delay.reset();
    return body;
  });

  await app.listen({ port, host });
  const address = app.server.address();

  let closing;
  /** Stops accepting, lets the requests in flight finish, folds the journal into the file; resolves to the photos held. */
  const close = () =>
    (closing ??= (async () => {
      shuttingDown = true;
      await app.close();
      await pool.close();
      const photos = gallery.size;
      await gallery.save();
      await gallery.dispose();
      delay.disable();
      return photos;
    })());

  return { app, gallery, pool, close, url: `http://${address.address}:${address.port}` };
}

// `node server.mjs`: settings from the environment.
if (import.meta.url === `file://${process.argv[1]}`) {
  const env = process.env;
  const service = await startServer({
    gallery: env.GALLERY ?? 'gallery.mfg',
    port: Number(env.PORT ?? 3000),
    host: env.HOST ?? '127.0.0.1',
    workers: env.WORKERS ? Number(env.WORKERS) : undefined,
    threads: env.THREADS ? Number(env.THREADS) : undefined,
    queueLimit: env.QUEUE_LIMIT ? Number(env.QUEUE_LIMIT) : undefined,
    logger: env.LOG === '1',
  });
  console.log(`listening on ${service.url}`);
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, async () => {
      const photos = await service.close();
      console.log(`stopped (${signal}): gallery saved with ${photos} photos`);
      process.exit(0);
    });
  }
}
