/**
 * The measurement behind docs/compression.md (issue 12, compressed transfer):
 * the ratio of raw deflate (node:zlib, levels 6 and 9, windowBits 9–15)
 * against the LZ4 block format of lib/flash/codec.ts (greedy, lazy, and
 * hash-chain depths), on the corpus of bench/corpus.ts part by part (its
 * non-blank pages, as the flasher sends them), an all-code slice and random
 * data. Each part is cut into transfer blocks (`--block`, default 64 KiB) and
 * every block is compressed on its own, as a write run would; a block that
 * does not pay (`WORTH_RATIO`) counts raw.
 *
 * ```
 * node dist/bench/bench/codec-study.js [--mib 32] [--block 65536] [--json]
 * ```
 * @module
 */
import { pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { WORTH_RATIO } from '../lib/flash/codec.js';
import { DEFAULT_SEED, buildCorpus, nonBlankPages, randomImage } from './corpus.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** One way of compressing a block: its name and the stream length it gives. */
export interface Candidate {
  name: string;
  size: (block: Uint8Array) => number;
}

/** The candidates of the study. */
export function candidates(): Candidate[] {
  const out: Candidate[] = [];
  for (const level of [6, 9]) {
    for (const windowBits of [9, 10, 12, 15]) {
      out.push({ name: `deflate -${level} w${windowBits}`, size: (b) => deflateRawSync(b, { level, windowBits, memLevel: 9 }).length });
    }
  }
  out.push({ name: 'lz4 greedy d16', size: (b) => encodeBlock(b, { lazy: false, depth: 16 }).length });
  out.push({ name: 'lz4 lazy d64', size: (b) => encodeBlock(b).length });
  out.push({ name: 'lz4 lazy d256', size: (b) => encodeBlock(b, { depth: 256 }).length });
  return out;
}

/** Total bytes sent for `data` in blocks of `block` bytes: each block compressed, or raw when that does not pay. */
export function sentBytes(data: Uint8Array, block: number, size: (b: Uint8Array) => number): { sent: number; ms: number } {
  let sent = 0;
  const t = performance.now();
  for (let at = 0; at < data.length; at += block) {
    const b = data.subarray(at, Math.min(at + block, data.length));
    const s = size(b);
    sent += s < b.length * WORTH_RATIO ? s : b.length;
  }
  return { sent, ms: performance.now() - t };
}

/** The study's samples: the corpus parts (non-blank pages), all of it, and random data. */
export function samples(mib: number): { name: string; data: Uint8Array }[] {
  const corpus = buildCorpus(mib * MiB, DEFAULT_SEED);
  const out: { name: string; data: Uint8Array }[] = [];
  const all: Uint8Array[] = [];
  for (const part of corpus.parts) {
    if (part.name === 'free') continue;
    const data = nonBlankPages(corpus.bytes.subarray(part.offset, part.offset + part.length));
    out.push({ name: part.name, data });
    all.push(data);
  }
  const code = out.find((s) => s.name === 'code')!.data;
  out.push({ name: 'code slice 256 KiB', data: code.subarray(0, 256 * KiB) });
  out.push({ name: 'corpus (non-blank)', data: Buffer.concat(all) });
  out.push({ name: 'random 1 MiB', data: randomImage(MiB, 3) });
  return out;
}

// ---- the LZ4 block format, the candidate that lost (kept to repeat the measurement) ------------

/** Shortest match of the LZ4 block format; farthest offset (16-bit field). */
const MIN_MATCH = 4;
const MAX_OFFSET = 65535;
/** LZ4's end-of-block rules: the last 5 bytes are literals, and the last match starts at least 12 bytes before the end. */
const LAST_LITERALS = 5;
const MF_LIMIT = 12;

/**
 * Largest stream {@link encodeBlock} can produce for `length`
 * input bytes (all literals): one token, the literal-length bytes (one per
 * 255), the literals.
 */
export function maxCompressedLength(length: number): number {
  return length + Math.floor(length / 255) + 16;
}

/** Options of {@link encodeBlock}: how hard the match finder looks. */
export interface EncodeOptions {
  /** Hash-chain candidates tried per position (default 64). */
  depth?: number;
  /** Try the next position before taking a match (lazy matching; default true). */
  lazy?: boolean;
}

const HASH_BITS = 16;

function read32(data: Uint8Array, i: number): number {
  return (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) >>> 0;
}

function hash4(data: Uint8Array, i: number): number {
  return Math.imul(read32(data, i), 2654435761) >>> (32 - HASH_BITS);
}

/**
 * Encodes `data` as one LZ4 block (lz4/doc/lz4_Block_format.md). Greedy with one step
 * of lazy evaluation over 4-byte hash chains, like `lz4 -9` without its
 * optimal parser.
 */
export function encodeBlock(data: Uint8Array, options: EncodeOptions = {}): Uint8Array {
  const depth = options.depth ?? 64;
  const lazy = options.lazy ?? true;
  const n = data.length;
  const out = new Uint8Array(maxCompressedLength(n));
  let op = 0;
  const head = new Int32Array(1 << HASH_BITS).fill(-1);
  const prev = new Int32Array(Math.max(n, 1));
  let inserted = 0;
  const matchEnd = n - LAST_LITERALS;
  const startLimit = n - MF_LIMIT;

  const insertUpTo = (i: number) => {
    for (; inserted < i; inserted++) {
      const h = hash4(data, inserted);
      prev[inserted] = head[h]!;
      head[h] = inserted;
    }
  };
  /** Longest earlier match for position `i` (positions before `i` inserted), length 0 if none. */
  let matchPos = 0;
  const longest = (i: number): number => {
    insertUpTo(i);
    let best = 0;
    const limit = matchEnd - i;
    let j = head[hash4(data, i)]!;
    for (let tries = depth; j >= 0 && i - j <= MAX_OFFSET && tries > 0; tries--, j = prev[j]!) {
      if (data[j + best] !== data[i + best]) continue;
      let len = 0;
      while (len < limit && data[j + len] === data[i + len]) len++;
      if (len > best) {
        best = len;
        matchPos = j;
        if (len === limit) break;
      }
    }
    return best >= MIN_MATCH ? best : 0;
  };

  const writeLength = (rest: number) => {
    for (; rest >= 255; rest -= 255) out[op++] = 255;
    out[op++] = rest;
  };

  let anchor = 0;
  let i = 0;
  while (i < startLimit) {
    let len = longest(i);
    if (len === 0) {
      i++;
      continue;
    }
    let from = matchPos;
    // Lazy: a longer match one byte later is worth one more literal.
    while (lazy && i + 1 < startLimit) {
      const next = longest(i + 1);
      if (next <= len) break;
      i++;
      len = next;
      from = matchPos;
    }
    const literals = i - anchor;
    const extra = len - MIN_MATCH;
    out[op++] = (Math.min(literals, 15) << 4) | Math.min(extra, 15);
    if (literals >= 15) writeLength(literals - 15);
    out.set(data.subarray(anchor, i), op);
    op += literals;
    const offset = i - from;
    out[op++] = offset & 0xff;
    out[op++] = offset >>> 8;
    if (extra >= 15) writeLength(extra - 15);
    i += len;
    anchor = i;
  }
  const literals = n - anchor;
  out[op++] = Math.min(literals, 15) << 4;
  if (literals >= 15) writeLength(literals - 15);
  out.set(data.subarray(anchor), op);
  op += literals;
  return out.slice(0, op);
}

/**
 * Bounds-checked LZ4 block decoder (the C twin measured in docs/compression.md): `dstLen` on
 * success; otherwise 0x80000000 | the source offset where decoding
 * stopped, with `dst` written only inside its bounds (as far as it got).
 */
export function lz4UnpackInto(src: Uint8Array, dst: Uint8Array): number {
  const srcLen = src.length;
  const dstLen = dst.length;
  let ip = 0;
  let op = 0;
  const fail = () => (0x80000000 | Math.min(ip, 0x7fffffff)) >>> 0;
  for (;;) {
    if (ip === srcLen) return op === dstLen ? dstLen : fail();
    const token = src[ip++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      for (;;) {
        if (ip === srcLen) return fail();
        const b = src[ip++]!;
        lit += b;
        if (lit > dstLen - op) return fail();
        if (b !== 255) break;
      }
    }
    if (lit > srcLen - ip || lit > dstLen - op) return fail();
    dst.set(src.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip === srcLen) return op === dstLen ? dstLen : fail();
    if (srcLen - ip < 2) return fail();
    const offset = src[ip]! | (src[ip + 1]! << 8);
    if (offset === 0 || offset > op) return fail();
    ip += 2;
    let len = token & 15;
    if (len === 15) {
      for (;;) {
        if (ip === srcLen) return fail();
        const b = src[ip++]!;
        len += b;
        if (len > dstLen - op) return fail();
        if (b !== 255) break;
      }
    }
    len += MIN_MATCH;
    if (len > dstLen - op) return fail();
    // Byte by byte: a match may overlap its own output (offset < length repeats a pattern).
    for (let k = 0; k < len; k++, op++) dst[op] = dst[op - offset]!;
  }
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: number) => {
    const i = process.argv.indexOf(name);
    return i < 0 ? fallback : Number(process.argv[i + 1]);
  };
  const mib = arg('--mib', 32);
  const block = arg('--block', 64 * KiB);
  const rows: Record<string, Record<string, { ratio: number; mbps: number }>> = {};
  for (const sample of samples(mib)) {
    rows[sample.name] = {};
    for (const c of candidates()) {
      const { sent, ms } = sentBytes(sample.data, block, c.size);
      rows[sample.name]![c.name] = { ratio: sent / sample.data.length, mbps: sample.data.length / 1e6 / (ms / 1000) };
    }
    const cells = Object.entries(rows[sample.name]!).map(([k, v]) => `${k} ${(v.ratio * 100).toFixed(1)}% (${v.mbps.toFixed(0)} MB/s)`);
    if (!process.argv.includes('--json')) console.log(`${sample.name} (${(sample.data.length / MiB).toFixed(2)} MiB, blocks of ${block / KiB} KiB):\n  ${cells.join('\n  ')}`);
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify({ mib, block, rows }, null, 2));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
