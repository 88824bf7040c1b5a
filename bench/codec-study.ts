/**
 * The measurement behind docs/compression.md (issue 12, compressed transfer):
 * the ratio of raw deflate (node:zlib, levels 6 and 9, windowBits 9–15)
 * against the LZ4 block format of lib/flash/codec.ts (greedy, lazy, and
 * hash-chain depths; the format picked), on the corpus of bench/corpus.ts part by part (its
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
import { WORTH_RATIO, encodeBlock } from '../lib/flash/codec.js';
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
