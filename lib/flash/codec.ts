/**
 * Compressed transfer (issue 12): the host side of the block codec whose
 * decoder, `rsp_unpack` in target-src/unpack.c, expands a block straight into
 * a page buffer on the target before ProgramPage/Verify run over it.
 *
 * The format is the **LZ4 block format** (lz4/doc/lz4_Block_format.md):
 * sequences of `token, [literal length bytes], literals, offset (16-bit LE),
 * [match length bytes]`, the last one literals only. Why LZ4 and not raw
 * deflate is measured in docs/compression.md: deflate sends 10 points less of
 * the corpus, but its decoder is 8 times the code (1852 bytes against 222),
 * needs 1.1 KiB of stack for its Huffman tables (against 40 bytes) and
 * decodes 15–20 times slower under QEMU, so its extra gain, on weights and
 * audio, is lost again to decode time on any fast probe link.
 *
 * {@link encodeBlock} follows LZ4's end-of-block rules (last five bytes
 * literals, no match starting in the last twelve), so its output is a valid
 * LZ4 block for any LZ4 decoder; `rsp_unpack` and its twin {@link unpackInto}
 * accept a little more (a stream may end right after a match) and check every
 * read and write instead of relying on those rules.
 *
 * Each block is compressed on its own (no dictionary shared between blocks),
 * so any block can be decoded, retried or skipped alone.
 * @module
 */
import { FormatError } from '../errors.js';

/** Format of a compressed block, as plans and reports name it: LZ4 block format, 64 KiB window. */
export const CODEC_FORMAT = 'lz4-block';

/** Shortest match the format can express (a token's match length 0 means 4 bytes). */
export const MIN_MATCH = 4;
/** Farthest back a match may reach: the offset is a 16-bit field (0 is invalid). */
export const MAX_OFFSET = 65535;
/** LZ4's end-of-block rules: the last 5 bytes are literals, and the last match starts at least 12 bytes before the end. */
const LAST_LITERALS = 5;
const MF_LIMIT = 12;

/**
 * A block goes compressed only when the stream is smaller than this share of
 * the raw bytes: below ~5 % the link time saved does not pay for the extra
 * call and the host's encode time.
 */
export const WORTH_RATIO = 0.95;

/**
 * Set in `rsp_unpack`'s result when it fails (a corrupt or hostile stream, or
 * one that does not produce exactly `dstLen` bytes); the low 31 bits are then
 * the offset in the stream where decoding stopped. Success returns exactly
 * `dstLen`, which is below 2 GiB, so the two never meet.
 */
export const UNPACK_FAILED = 0x80000000;

/**
 * Stack `rsp_unpack` uses, bytes: a 40-byte frame (`-fstack-usage`,
 * arm-none-eabi-gcc -Os, ARMv6-M), rounded up. It runs as a sequencer entry
 * beside ProgramPage, on the algorithm's stack, never inside it.
 */
export const UNPACK_STACK = 48;

/**
 * Largest stream {@link encodeBlock} writes for `length` input bytes (all
 * literals): one token, the literal-length bytes (one per 255), the literals.
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
/** Misses in a row before the encoder starts stepping over positions (as LZ4 does: costs code 0.1 point, makes weights 15 times faster). */
const SKIP_AFTER = 64;

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
  let misses = 0;
  while (i < startLimit) {
    let len = longest(i);
    if (len === 0) {
      // LZ4's acceleration: after every SKIP_AFTER misses in a row the step grows by one, and skipped
      // positions are not hashed, so incompressible data (weights, audio) costs a fraction of a search per byte.
      const step = 1 + Math.floor(misses++ / SKIP_AFTER);
      if (step > 1) {
        insertUpTo(i + 1);
        inserted = Math.min(i + step, startLimit);
      }
      i += step;
      continue;
    }
    misses = 0;
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
 * Largest ratio (stream ÷ raw) at which compressing a block saves time, for
 * a link of `linkBytesPerSecond` and a target that decodes
 * `decodeBytesPerSecond` of output: the bytes saved must take longer to send
 * than the block takes to decode, (1 − r) / link > 1 / decode, so
 * r < 1 − link / decode (docs/compression.md, "When it pays"). Never above
 * {@link WORTH_RATIO}; 0 (never compress) when the decoder is slower than the link.
 */
export function breakEvenRatio(linkBytesPerSecond: number, decodeBytesPerSecond: number): number {
  return Math.max(0, Math.min(WORTH_RATIO, 1 - linkBytesPerSecond / decodeBytesPerSecond));
}

/**
 * The stream for `data` when compression pays (shorter than `maxRatio` of the
 * raw bytes, default {@link WORTH_RATIO}; see {@link breakEvenRatio}), else
 * `undefined`: send it raw.
 *
 * @example
 * ```ts
 * const packed = compressBlock(pages);
 * if (packed) {
 *   // write `packed` beside the page buffer, then an `unpack` call
 *   // (src, packed.length, buffer, pages.length; expect pages.length) before ProgramPage
 * }
 * ```
 */
export function compressBlock(data: Uint8Array, options: { maxRatio?: number } = {}): Uint8Array | undefined {
  if (data.length < 64) return undefined;
  const packed = encodeBlock(data);
  return packed.length < data.length * (options.maxRatio ?? WORTH_RATIO) ? packed : undefined;
}

/**
 * What `rsp_unpack(src, src.length, dst, dst.length)` returns, with its effect
 * on `dst`: the host twin of target-src/unpack.c, check for check in the same
 * order, so that tests compare results and bytes exactly, hostile streams
 * included. `dst.length` on success; otherwise {@link UNPACK_FAILED} | the
 * offset in `src` where decoding stopped, with `dst` written only inside its
 * bounds (as far as decoding got).
 */
export function unpackInto(src: Uint8Array, dst: Uint8Array): number {
  const srcLen = src.length;
  const dstLen = dst.length;
  let ip = 0;
  let op = 0;
  const fail = () => (UNPACK_FAILED | ip) >>> 0;
  for (;;) {
    if (ip === srcLen) break;
    const token = src[ip++]!;
    let lit = token >>> 4;
    if (lit > dstLen - op) return fail();
    if (lit === 15) {
      let b: number;
      do {
        if (ip === srcLen) return fail();
        b = src[ip++]!;
        if (b > dstLen - op - lit) return fail();
        lit += b;
      } while (b === 255);
    }
    if (lit > srcLen - ip) return fail();
    dst.set(src.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip === srcLen) break;
    if (srcLen - ip < 2) return fail();
    const offset = src[ip]! | (src[ip + 1]! << 8);
    if (offset === 0 || offset > op) return fail();
    ip += 2;
    let len = (token & 15) + MIN_MATCH;
    if (len > dstLen - op) return fail();
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (ip === srcLen) return fail();
        b = src[ip++]!;
        if (b > dstLen - op - len) return fail();
        len += b;
      } while (b === 255);
    }
    // Byte by byte: a match may overlap its own output (offset < length repeats a pattern).
    for (; len > 0; len--, op++) dst[op] = dst[op - offset]!;
  }
  return op === dstLen ? dstLen : fail();
}

/**
 * Expands a stream from {@link compressBlock} into `length` bytes, as the
 * target does; throws {@link FormatError} (source `compressed block`, offset
 * where decoding stopped) when the stream is corrupt or does not produce
 * exactly `length` bytes.
 */
export function decompressBlock(src: Uint8Array, length: number): Uint8Array {
  const dst = new Uint8Array(length);
  const result = unpackInto(src, dst);
  if (result !== length) {
    const at = (result & ~UNPACK_FAILED) >>> 0;
    throw new FormatError(`Corrupt compressed block: decoding stopped at byte ${at} of ${src.length} (${length} bytes expected)`, 'compressed block', at);
  }
  return dst;
}
