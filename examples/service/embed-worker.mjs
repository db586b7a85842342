// One embedding worker: its own detector and recognizer, fed photos by pool.mjs. A photo whose
// request went away is cancelled through its AbortSignal.
import { parentPort, workerData } from 'node:worker_threads';
import { FaceDetector, FaceRecognizer } from 'maskface';

const cpu = { intraOpThreads: workerData.threads };
const [detector, recognizer] = await Promise.all([FaceDetector.load({ cpu }), FaceRecognizer.load(undefined, { cpu })]);
const running = new Map();

parentPort.on('message', async (message) => {
  if (message.cancel !== undefined) {
    running.get(message.cancel)?.abort();
    return;
  }
  const { job, photo } = message;
  const controller = new AbortController();
  running.set(job, controller);
  try {
    const faces = await recognizer.embedFaces(photo, { detector, signal: controller.signal });
    parentPort.postMessage({
      job,
      faces: faces.map((face) => ({
        box: face.box,
        score: face.score,
        maskProbability: face.maskProbability ?? null,
        // Bytes carry the model and a checksum; FaceEmbedding.fromBytes checks them on arrival.
        embedding: face.embedding.toBytes(),
      })),
    });
  } catch (error) {
    parentPort.postMessage({ job, error: { message: error.message, code: error.code ?? 'ERR_INTERNAL' } });
  } finally {
    running.delete(job);
  }
});
parentPort.postMessage({ ready: true, model: recognizer.model });
