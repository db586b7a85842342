// Aligned 112x112 crops of photos made by maskface's own photo pipeline (FaceDetector with its
// defaults: BlazeFace-256, 68 landmarks averaged with the mirror image), so a model trains on the
// crops it will be given at run time.
//
// Usage: node runtime_align.mjs <list.txt> <out prefix>
//   list.txt: one photo path per line.
// Writes <out>.u8: per photo two crops back to back, 'five-point' then 'eyes-nose' (the eyes and
// nose tip only, as embedFaces aligns masked faces), each 112x112x3 RGB; zeros where no face was
// found. <out>.json: { files, found, score, faces, landmarks5 (image pixels) } per photo.
// The largest face of a photo is taken, as `maskface enrol` and `maskface eval` do.
import { readFileSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { FaceDetector, alignFace, arcfaceTemplate112, decodeImage } from 'maskface';

const [listPath, out] = process.argv.slice(2);
if (!listPath || !out) {
  console.error('usage: node runtime_align.mjs <list.txt> <out prefix>');
  process.exit(2);
}
const files = readFileSync(listPath, 'utf8').split('\n').filter((line) => line !== '');
const detector = await FaceDetector.load();
const eyesNose = { template: arcfaceTemplate112.slice(0, 6) };
const size = 112 * 112 * 3;
const blank = new Uint8Array(2 * size);
const fd = openSync(`${out}.u8`, 'w');
const meta = { files, found: [], score: [], faces: [], landmarks5: [] };
const started = Date.now();
for (const [index, file] of files.entries()) {
  const image = await decodeImage(file);
  const faces = await detector.detect(image);
  let main;
  for (const face of faces) {
    if (main === undefined || face.box.width * face.box.height > main.box.width * main.box.height) main = face;
  }
  if (main === undefined) {
    writeSync(fd, blank);
    meta.found.push(false);
    meta.score.push(0);
    meta.faces.push(0);
    meta.landmarks5.push(null);
  } else {
    const five = alignFace(image, main.landmarks);
    const three = alignFace(image, main.landmarks.slice(0, 3), eyesNose);
    writeSync(fd, five.data);
    writeSync(fd, three.data);
    meta.found.push(true);
    meta.score.push(main.score);
    meta.faces.push(faces.length);
    meta.landmarks5.push(main.landmarks.flat());
  }
  if ((index + 1) % 500 === 0 || index + 1 === files.length) {
    console.error(`runtime align: ${index + 1}/${files.length} (${meta.found.filter((f) => !f).length} without a face) ${Math.round((Date.now() - started) / 1000)} s`);
  }
}
closeSync(fd);
writeFileSync(`${out}.json`, JSON.stringify(meta));
await detector.dispose();
