// Small generated fixtures for mechanics (not recognition): deterministic face-sized images.
export function syntheticFace(seed: number, width = 112, height = 112): { data: Uint8Array; width: number; height: number } {
  const data = new Uint8Array(width * height * 3);
  let state = seed * 2654435761 + 1;
  for (let i = 0; i < data.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    // smooth structure plus a little noise, so the network sees something image-like
    const pixel = Math.floor(i / 3);
    const x = pixel % width;
    const y = Math.floor(pixel / width);
    data[i] = (128 + 80 * Math.sin((x + seed * 3) / 9) * Math.cos((y - seed) / 11) + (state >>> 27)) & 0xff;
  }
  return { data, width, height };
}
