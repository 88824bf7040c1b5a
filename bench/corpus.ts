/**
 * A realistic flash image for the seed-job model, built deterministically
 * (seeded) from material on the machine, laid out like an Alif OSPI image:
 *
 * | part | share | what |
 * |------|-------|------|
 * | code | 1/16 | Cortex-M code and constants: the allocated PROGBITS sections (`.text`, `.rodata`, `.data`) of the objects in newlib's and libgcc's v8-M mainline and Cortex-M55 (MVE) archives ({@link CODE_ARCHIVES}), in archive order (unrelocated: call offsets are zeros), up to 85 % of the part |
 * | weights | 5/16 | int8 model weights: layers of per-channel Gaussian values (scale chosen so ~3σ fills ±127) with int32 bias vectors, like a TFLite Micro model |
 * | audio | 2/16 | 16-bit PCM at 16 kHz: clips of 3–5 sine partials with envelopes, plus noise at about −40 dB |
 * | filesystem | 2/16 | 4 KiB blocks, about one in seven written (a header, text-like records, the rest of the block still erased), the others erased |
 * | free | rest | erased (0xFF) |
 *
 * Each data part leaves its tail erased, as a linker or a file-system image does.
 * Without the toolchain's archives the code part is seeded random bytes (said in
 * its `source`). `randomImage` is the worst case: no erased pages, incompressible.
 *
 * ```
 * node dist/bench/bench/corpus.js [--mib 32] [--seed 12] [--out FILE] [--json]
 * ```
 * @module
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { seededRandom } from '../test/faults/fault-proxy.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Erased value of the Alif OSPI flash. */
export const ERASED = 0xff;
/** Program page and erase sector of the IS25WX256 (and the simulator). */
export const PAGE = 256;
export const SECTOR = 4 * KiB;
/** Parts start on this boundary (a linker script's alignment of output regions). */
const PART_ALIGN = 64 * KiB;

/** Default seed (issue 12). */
export const DEFAULT_SEED = 12;

/** One part of the image. */
export interface CorpusPart {
  name: 'code' | 'weights' | 'audio' | 'filesystem' | 'free' | 'random';
  /** Offset in the image, bytes. */
  offset: number;
  length: number;
  /** Where the bytes come from. */
  source: string;
}

/** A built image and its layout. */
export interface Corpus {
  bytes: Uint8Array;
  parts: CorpusPart[];
  seed: number;
}

// ---- seeded randomness ------------------------------------------------------------------------

/** A small seeded PRNG (mulberry32, the fault proxy's): same seed, same image, on every machine. */
export const prng: (seed: number) => () => number = seededRandom;

/** Standard normal values from `rand` (Box–Muller). */
function gaussian(rand: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** `length` seeded random bytes: the worst case image. */
export function randomImage(length: number, seed = DEFAULT_SEED): Uint8Array {
  const rand = prng(seed ^ 0x5eed);
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = (rand() * 4294967296) >>> 0;
  for (let i = words.length * 4; i < length; i++) out[i] = (rand() * 256) | 0;
  return out;
}

// ---- code: sections of the toolchain's archives ------------------------------------------------

/** Archives searched for Cortex-M (v8-M mainline) code, in this order. */
export const CODE_ARCHIVES = [
  '/usr/lib/arm-none-eabi/lib/thumb/v8-m.main/nofp/libc.a',
  '/usr/lib/arm-none-eabi/lib/thumb/v8-m.main/nofp/libm.a',
  '/usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v8-m.main/nofp/libgcc.a',
  // The Cortex-M55's own multilib (MVE + FPU code), then the size-optimised newlib.
  '/usr/lib/arm-none-eabi/lib/thumb/v8.1-m.main+mve/hard/libm.a',
  '/usr/lib/arm-none-eabi/lib/thumb/v8.1-m.main+mve/hard/libc.a',
  '/usr/lib/arm-none-eabi/lib/thumb/v8-m.main/nofp/libc_nano.a',
];

/** The archives present (libgcc's version directory may differ: the newest one found). */
function codeArchives(): string[] {
  const found = CODE_ARCHIVES.filter((p) => existsSync(p));
  if (!found.some((p) => p.includes('libgcc'))) {
    const root = '/usr/lib/gcc/arm-none-eabi';
    if (existsSync(root)) {
      for (const version of readdirSync(root).sort().reverse()) {
        const p = join(root, version, 'thumb/v8-m.main/nofp/libgcc.a');
        if (existsSync(p)) {
          found.push(p);
          break;
        }
      }
    }
  }
  return found;
}

const SHT_PROGBITS = 1;
const SHF_ALLOC = 2;

/** The allocated PROGBITS sections of one ELF32 little-endian relocatable object, in section order. */
export function elfAllocSections(elf: Uint8Array): Uint8Array[] {
  if (elf.length < 52 || elf[0] !== 0x7f || elf[1] !== 0x45 || elf[4] !== 1 || elf[5] !== 1) return [];
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const shoff = view.getUint32(0x20, true);
  const shentsize = view.getUint16(0x2e, true);
  const shnum = view.getUint16(0x30, true);
  const out: Uint8Array[] = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize;
    if (at + 40 > elf.length) break;
    const type = view.getUint32(at + 4, true);
    const flags = view.getUint32(at + 8, true);
    const offset = view.getUint32(at + 16, true);
    const size = view.getUint32(at + 20, true);
    if (type === SHT_PROGBITS && flags & SHF_ALLOC && size > 0 && offset + size <= elf.length) out.push(elf.subarray(offset, offset + size));
  }
  return out;
}

/** The members of a Unix `ar` archive (GNU format), in order. */
export function arMembers(archive: Uint8Array): Uint8Array[] {
  const magic = Buffer.from(archive.subarray(0, 8)).toString('latin1');
  if (magic !== '!<arch>\n') return [];
  const out: Uint8Array[] = [];
  for (let at = 8; at + 60 <= archive.length; ) {
    const size = parseInt(Buffer.from(archive.subarray(at + 48, at + 58)).toString('latin1').trim(), 10);
    if (!(size >= 0)) break;
    const data = archive.subarray(at + 60, at + 60 + size);
    out.push(data);
    at += 60 + size + (size & 1);
  }
  return out;
}

/** Fills `out` with code sections from the archives; returns bytes written and the source text. */
function fillCode(out: Uint8Array, rand: () => number): { used: number; source: string } {
  const archives = codeArchives();
  let used = 0;
  for (const path of archives) {
    for (const member of arMembers(readFileSync(path))) {
      for (const section of elfAllocSections(member)) {
        const n = Math.min(section.length, out.length - used);
        out.set(section.subarray(0, n), used);
        used = Math.min(out.length, (used + n + 3) & ~3); // 4-byte alignment, zero padding as a linker does
        if (used >= out.length) return { used, source: `allocated sections of ${archives.join(', ')}` };
      }
    }
  }
  if (used === 0) {
    for (let i = 0; i < out.length; i++) out[i] = (rand() * 256) | 0;
    return { used: out.length, source: 'seeded random bytes (no arm-none-eabi archives found)' };
  }
  return { used, source: `allocated sections of ${archives.join(', ')}` };
}

// ---- weights, audio, file system ---------------------------------------------------------------

function fillWeights(out: Uint8Array, rand: () => number): void {
  const normal = gaussian(rand);
  let at = 0;
  while (at < out.length) {
    // A layer: channels × fan-in int8 weights, then int32 biases.
    const channels = 8 << Math.floor(rand() * 5); // 8..128
    const fanIn = 9 * (4 << Math.floor(rand() * 5)); // 3×3 kernels over 4..64 inputs
    for (let c = 0; c < channels && at < out.length; c++) {
      // Per-channel spread: most channels use a third of the range, some less.
      const sigma = 42 * (0.4 + 0.6 * rand());
      for (let k = 0; k < fanIn && at < out.length; k++) {
        const q = Math.round(normal() * sigma);
        out[at++] = Math.max(-127, Math.min(127, q)) & 0xff;
      }
    }
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let c = 0; c < channels && at + 4 <= out.length; c++, at += 4) view.setInt32(at, Math.round(normal() * 2000), true);
  }
}

function fillAudio(out: Uint8Array, rand: () => number): void {
  const normal = gaussian(rand);
  const rate = 16000;
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let at = 0;
  while (at + 2 <= out.length) {
    const samples = Math.floor(rate * (1 + 2 * rand()));
    const partials = Array.from({ length: 3 + Math.floor(rand() * 3) }, () => ({ f: 80 + rand() * 3000, a: 0.05 + 0.25 * rand(), phase: rand() * 2 * Math.PI }));
    const attack = rate * 0.02;
    const decay = samples * (0.3 + 0.5 * rand());
    for (let n = 0; n < samples && at + 2 <= out.length; n++, at += 2) {
      const envelope = Math.min(1, n / attack) * Math.exp(-n / decay);
      let v = 0;
      for (const p of partials) v += p.a * Math.sin((2 * Math.PI * p.f * n) / rate + p.phase);
      v = v * envelope + normal() * 0.01; // noise ≈ −40 dB full scale
      view.setInt16(at, Math.max(-32768, Math.min(32767, Math.round(v * 32767))), true);
    }
  }
}

const WORDS = ['temp', 'sensor', 'ok', 'boot', 'count', 'level', 'mic', 'wake', 'event', 'cfg', 'log', 'state', 'error', 'retry', 'idle', 'rx', 'tx'];

function fillFilesystem(out: Uint8Array, rand: () => number): void {
  out.fill(ERASED);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let block = 0; block + SECTOR <= out.length; block += SECTOR) {
    if (rand() >= 1 / 7) continue;
    // A metadata/data block as an append-only file system leaves it: a revision
    // count, a tag, records, and the block's tail still erased.
    view.setUint32(block, Math.floor(rand() * 1000), true);
    view.setUint32(block + 4, 0x20000000 | Math.floor(rand() * 0xffff), true);
    const fill = Math.floor(SECTOR * (0.1 + 0.8 * rand()));
    let at = block + 8;
    let line = '';
    while (at < block + fill) {
      line = `${WORDS[Math.floor(rand() * WORDS.length)]}=${Math.floor(rand() * 10000)};t=${Math.floor(rand() * 1e6)}\n`;
      const bytes = Buffer.from(line, 'latin1');
      const n = Math.min(bytes.length, block + fill - at);
      out.set(bytes.subarray(0, n), at);
      at += n;
    }
  }
}

// ---- layout ------------------------------------------------------------------------------------

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/**
 * Builds the image of `length` bytes (a multiple of 64 KiB) from `seed`. The
 * same length and seed give the same bytes on any machine with the same
 * toolchain archives.
 *
 * @example
 * ```ts
 * const { bytes, parts } = buildCorpus(32 << 20);
 * ```
 */
export function buildCorpus(length: number, seed = DEFAULT_SEED): Corpus {
  if (length % PART_ALIGN !== 0 || length < 16 * PART_ALIGN) throw new Error(`corpus size must be a multiple of 64 KiB, at least 1 MiB (got ${length})`);
  const bytes = new Uint8Array(length).fill(ERASED);
  const rand = prng(seed);
  const share = (sixteenths: number) => alignUp((length * sixteenths) / 16, PART_ALIGN);
  const parts: CorpusPart[] = [];
  let at = 0;
  const place = (name: CorpusPart['name'], size: number, fill: (region: Uint8Array) => string) => {
    const region = bytes.subarray(at, at + size);
    parts.push({ name, offset: at, length: size, source: fill(region) });
    at += size;
  };
  place('code', share(1), (region) => {
    // The application's code and constants end some way before the region does.
    const used = fillCode(region.subarray(0, Math.floor(region.length * 0.85) & ~3), rand);
    return `${used.source}; ${used.used} bytes then erased`;
  });
  place('weights', share(5), (region) => {
    fillWeights(region.subarray(0, Math.floor(region.length * 0.93)), rand);
    return 'int8 weights, per-channel Gaussian (σ 17–42, clipped ±127), int32 biases; 93 % then erased';
  });
  place('audio', share(2), (region) => {
    fillAudio(region.subarray(0, Math.floor(region.length * 0.9) & ~1), rand);
    return '16-bit PCM 16 kHz, 3–5 sine partials with envelopes + noise at −40 dB; 90 % then erased';
  });
  place('filesystem', share(2), (region) => {
    fillFilesystem(region, rand);
    return '4 KiB blocks, about 1 in 7 written (header, text records, erased tail)';
  });
  place('free', length - at, () => 'erased (0xFF)');
  return { bytes, parts, seed };
}

// ---- statistics --------------------------------------------------------------------------------

/** Whether every byte of `data` is the erased value. */
export function isErased(data: Uint8Array): boolean {
  if (data.length === 0) return true;
  if (data[0] !== ERASED) return false;
  // Compare halves against the first byte via Buffer.compare on a filled view.
  const ff = ERASED_BLOCK.length >= data.length ? ERASED_BLOCK.subarray(0, data.length) : new Uint8Array(data.length).fill(ERASED);
  return Buffer.compare(Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.from(ff.buffer, ff.byteOffset, ff.byteLength)) === 0;
}
const ERASED_BLOCK = new Uint8Array(64 * KiB).fill(ERASED);

/** The pages of `data` that are not all erased, concatenated (what must really be programmed). */
export function nonBlankPages(data: Uint8Array, page = PAGE): Uint8Array {
  const keep: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += page) {
    const p = data.subarray(at, Math.min(at + page, data.length));
    if (!isErased(p)) keep.push(p);
  }
  return Buffer.concat(keep);
}

/** Counts of erased units in `data`. */
export function erasedUnits(data: Uint8Array): { pages: number; erasedPages: number; sectors: number; erasedSectors: number } {
  let erasedPages = 0;
  let erasedSectors = 0;
  for (let at = 0; at < data.length; at += SECTOR) {
    let sectorErased = true;
    for (let p = at; p < Math.min(at + SECTOR, data.length); p += PAGE) {
      if (isErased(data.subarray(p, Math.min(p + PAGE, data.length)))) erasedPages++;
      else sectorErased = false;
    }
    if (sectorErased) erasedSectors++;
  }
  return { pages: Math.ceil(data.length / PAGE), erasedPages, sectors: Math.ceil(data.length / SECTOR), erasedSectors };
}

/** Raw-deflate size of `data` at `level` and `windowBits`. */
export function deflatedSize(data: Uint8Array, level: number, windowBits: number): number {
  return deflateRawSync(data, { level, windowBits, memLevel: 9 }).length;
}

/** Statistics of one part (or the whole image). */
export interface PartStats {
  name: string;
  offset: number;
  length: number;
  erasedPages: number;
  pages: number;
  erasedSectors: number;
  sectors: number;
  /** Bytes in pages that are not all erased. */
  nonBlankBytes: number;
  /** Raw deflate of the non-blank pages: windowBits → size, at level 9. */
  deflate9: Record<number, number>;
  source: string;
}

/** Compressibility of the whole image's non-blank pages, by level and window. */
export interface DeflateMatrix {
  levels: number[];
  windowBits: number[];
  /** sizes[levelIndex][windowIndex], bytes. */
  sizes: number[][];
  /** Each 64 KiB of non-blank pages deflated on its own (level 9, windowBits 15): what a per-buffer codec gets. */
  perBlock64KiB: number;
}

/** What `corpusStats` reports. */
export interface CorpusStats {
  size: number;
  seed: number;
  parts: PartStats[];
  whole: PartStats;
  matrix: DeflateMatrix;
}

/**
 * Size, erased-value pages and compressibility of a corpus, per part and whole.
 * `windowBits` and `levels` choose the matrix (smaller lists for a smoke run).
 */
export function corpusStats(corpus: Corpus, options: { levels?: number[]; windowBits?: number[]; partWindowBits?: number[] } = {}): CorpusStats {
  const levels = options.levels ?? [1, 6, 9];
  const windowBits = options.windowBits ?? [10, 11, 12, 13, 14, 15];
  const partWindowBits = options.partWindowBits ?? [10, 12, 15];
  const statsOf = (name: string, offset: number, data: Uint8Array, source: string): PartStats => {
    const units = erasedUnits(data);
    const live = nonBlankPages(data);
    const deflate9: Record<number, number> = {};
    for (const w of partWindowBits) deflate9[w] = live.length === 0 ? 0 : deflatedSize(live, 9, w);
    return { name, offset, length: data.length, erasedPages: units.erasedPages, pages: units.pages, erasedSectors: units.erasedSectors, sectors: units.sectors, nonBlankBytes: live.length, deflate9, source };
  };
  const parts = corpus.parts.map((p) => statsOf(p.name, p.offset, corpus.bytes.subarray(p.offset, p.offset + p.length), p.source));
  const whole = statsOf('whole', 0, corpus.bytes, `seed ${corpus.seed}`);
  const live = nonBlankPages(corpus.bytes);
  const sizes = levels.map((level) => windowBits.map((w) => (live.length === 0 ? 0 : deflatedSize(live, level, w))));
  let perBlock64KiB = 0;
  for (let at = 0; at < live.length; at += 64 * KiB) perBlock64KiB += deflatedSize(live.subarray(at, at + 64 * KiB), 9, 15);
  return { size: corpus.bytes.length, seed: corpus.seed, parts, whole, matrix: { levels, windowBits, sizes, perBlock64KiB } };
}

// ---- output ------------------------------------------------------------------------------------

const sizeName = (bytes: number) => (bytes >= MiB ? `${+(bytes / MiB).toFixed(2)} MiB` : `${+(bytes / KiB).toFixed(1)} KiB`);
const pct = (part: number, whole: number) => `${whole === 0 ? '0.0' : ((100 * part) / whole).toFixed(1)}%`;

/** The corpus report as text lines. */
export function formatCorpusStats(s: CorpusStats): string {
  const windows = Object.keys(s.whole.deflate9).map(Number);
  const head = ['part', 'offset', 'size', 'erased pages', 'erased sectors', 'non-blank', ...windows.map((w) => `deflate9 w${w}`), 'source'];
  const row = (p: PartStats) => [
    p.name,
    `0x${p.offset.toString(16).padStart(8, '0')}`,
    sizeName(p.length),
    `${p.erasedPages}/${p.pages} (${pct(p.erasedPages, p.pages)})`,
    `${p.erasedSectors}/${p.sectors}`,
    sizeName(p.nonBlankBytes),
    ...windows.map((w) => `${sizeName(p.deflate9[w] ?? 0)} (${pct(p.deflate9[w] ?? 0, p.nonBlankBytes)})`),
    p.source,
  ];
  const rows = [head, ...s.parts.map(row), row(s.whole)];
  const widths = head.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [`corpus ${sizeName(s.size)}, seed ${s.seed} (raw deflate sizes of the non-blank pages; % of non-blank bytes)`, line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  const m = s.matrix;
  out.push('', `whole image, non-blank pages (${sizeName(s.whole.nonBlankBytes)}): raw deflate by level × windowBits`);
  out.push(['level', ...m.windowBits.map((w) => `w${w}`.padStart(10))].join('  '));
  m.levels.forEach((level, i) => out.push([String(level).padEnd(5), ...m.sizes[i]!.map((n) => sizeName(n).padStart(10))].join('  ')));
  out.push(`each 64 KiB of non-blank pages on its own (level 9, w15): ${sizeName(m.perBlock64KiB)} (${pct(m.perBlock64KiB, s.whole.nonBlankBytes)})`);
  return out.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (name: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const size = Math.round((Number(value('--mib') ?? 32) * MiB) / PART_ALIGN) * PART_ALIGN;
  const seed = Number(value('--seed') ?? DEFAULT_SEED);
  const corpus = buildCorpus(size, seed);
  const out = value('--out');
  if (out) writeFileSync(out, corpus.bytes);
  const stats = corpusStats(corpus);
  process.stdout.write(args.includes('--json') ? `${JSON.stringify(stats, null, 2)}\n` : `${formatCorpusStats(stats)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`corpus failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
