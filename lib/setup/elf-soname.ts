/**
 * Renames the DT_SONAME of an ELF64 little-endian shared library in place (same length or
 * shorter). maskface loads its ONNX Runtime privately; with the upstream SONAME
 * (libonnxruntime.so.1), another addon loaded later that links libonnxruntime.so.1 by name (such
 * as onnxruntime-node) would bind to maskface's copy instead of its own, and fail.
 * @module
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** The SONAME maskface gives the ONNX Runtime libraries it loads (as long as the upstream one). */
export const MASKFACE_ORT_SONAME = 'libmaskfaceort.so.1';

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NULL = 0n;
const DT_STRTAB = 5n;
const DT_SONAME = 14n;

/** The file offset and current value of the SONAME, or undefined when there is none. */
export function readSoname(elf: Buffer): { offset: number; value: string } | undefined {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) {
    throw new Error('not a 64-bit little-endian ELF file');
  }
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  const headers = Array.from({ length: phnum }, (_, i) => {
    const at = phoff + i * phentsize;
    return {
      type: elf.readUInt32LE(at),
      offset: Number(elf.readBigUInt64LE(at + 8)),
      vaddr: Number(elf.readBigUInt64LE(at + 16)),
      filesz: Number(elf.readBigUInt64LE(at + 32)),
    };
  });
  const dynamic = headers.find((h) => h.type === PT_DYNAMIC);
  if (dynamic === undefined) return undefined;
  let strtab: number | undefined;
  let soname: number | undefined;
  for (let at = dynamic.offset; at + 16 <= dynamic.offset + dynamic.filesz; at += 16) {
    const tag = elf.readBigInt64LE(at);
    if (tag === DT_NULL) break;
    if (tag === DT_STRTAB) strtab = Number(elf.readBigUInt64LE(at + 8));
    if (tag === DT_SONAME) soname = Number(elf.readBigUInt64LE(at + 8));
  }
  if (strtab === undefined || soname === undefined) return undefined;
  const segment = headers.find((h) => h.type === PT_LOAD && strtab! >= h.vaddr && strtab! < h.vaddr + h.filesz);
  if (segment === undefined) throw new Error('DT_STRTAB lies in no loaded segment');
  const offset = strtab - segment.vaddr + segment.offset + soname;
  const end = elf.indexOf(0, offset);
  return { offset, value: elf.toString('latin1', offset, end) };
}

/** Sets the SONAME of the library at `path` to `name`, which must not be longer than the current one. */
export function setSoname(path: string, name: string = MASKFACE_ORT_SONAME): void {
  const elf = readFileSync(path);
  const current = readSoname(elf);
  if (current === undefined) throw new Error(`${path} has no SONAME`);
  if (current.value === name) return;
  if (name.length > current.value.length) {
    throw new Error(`SONAME '${name}' is longer than ${path}'s '${current.value}'`);
  }
  elf.fill(0, current.offset, current.offset + current.value.length);
  elf.write(name, current.offset, 'latin1');
  writeFileSync(path, elf);
}
