/**
 * Compressed transfer (issue 12): the host side of the block codec whose
 * decoder, `rsp_unpack` in target-src/unpack.c, expands a block straight into
 * a page buffer on the target before ProgramPage/Verify run over it.
 *
 * The format is **raw deflate** (RFC 1951, no zlib header), written by
 * node:zlib's `deflateRawSync` at level {@link DEFLATE_LEVEL}, windowBits
 * {@link DEFLATE_WINDOW_BITS}. Why deflate and not an LZ4-style format is
 * measured in docs/compression.md: on the corpus 75 % of the bytes (weights,
 * audio) hold almost no repeats, and only entropy coding gains on them; LZ4
 * sent 96.9 % of the corpus, deflate 86.6 %. The window costs the target no
 * RAM: each block is decoded whole into its buffer, so back-references read
 * the output itself (windowBits only bounds how far back they reach).
 *
 * Each block is compressed on its own (no dictionary shared between blocks),
 * so any block can be decoded, retried or skipped alone.
 * @module
 */
import { deflateRawSync } from 'node:zlib';
import { FormatError } from '../errors.js';

/** Format of a compressed block, as plans and reports name it. */
export const CODEC_FORMAT = 'deflate-raw';

/** deflate level: 9 costs the host ~35 MB/s on this corpus (measured), far above any probe link. */
export const DEFLATE_LEVEL = 9;
/** deflate windowBits: the largest (32 KiB back), since the window is the target's output buffer and costs no RAM. */
export const DEFLATE_WINDOW_BITS = 15;

/**
 * A block goes compressed only when the stream is smaller than this share of
 * the raw bytes: below ~5 % the link time saved does not pay for the decode.
 */
export const WORTH_RATIO = 0.95;

/**
 * Worst-case stream length for `length` raw bytes, should a caller size a
 * buffer for a stream it did not test: zlib's `deflateBound` for raw deflate
 * (stored blocks: 5 bytes per 16 KiB block plus a few). {@link compressBlock}
 * never returns a stream longer than {@link WORTH_RATIO} × `length`.
 */
export function maxCompressedLength(length: number): number {
  return length + (length >>> 12) + (length >>> 14) + (length >>> 25) + 13;
}

/**
 * Set in `rsp_unpack`'s result when it fails (a corrupt or hostile stream, or
 * one that does not produce exactly `dstLen` bytes); the low 31 bits are then
 * the number of source bytes it had read. Success returns exactly `dstLen`,
 * which is below 2 GiB, so the two never meet.
 */
export const UNPACK_FAILED = 0x80000000;

/**
 * Stack `rsp_unpack` needs, bytes: its Huffman tables and code lengths
 * (1136 bytes measured with `-fstack-usage`, arm-none-eabi-gcc 13 -Os,
 * rounded up). A sequencer run that unpacks needs this much stack on top of
 * the sequencer's own frame.
 */
export const UNPACK_STACK = 1152;

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
 * const packed = compressBlock(pages, { maxRatio: breakEvenRatio(1e6, 8e6) });
 * if (packed) {
 *   // write `packed` beside the page buffer, then an `unpack` call
 *   // (src, packed.length, buffer, pages.length, expect pages.length) before ProgramPage
 * }
 * ```
 */
export function compressBlock(data: Uint8Array, options: { maxRatio?: number } = {}): Uint8Array | undefined {
  if (data.length < 64) return undefined;
  const packed = deflateRawSync(data, { level: DEFLATE_LEVEL, windowBits: DEFLATE_WINDOW_BITS, memLevel: 9 });
  return packed.length < data.length * (options.maxRatio ?? WORTH_RATIO) ? new Uint8Array(packed.buffer, packed.byteOffset, packed.length) : undefined;
}

const MAX_BITS = 15;
const MAX_LCODES = 286;
const MAX_DCODES = 30;
const FIX_LCODES = 288;

/** A canonical Huffman code: codes per length (count[0]: unused symbols), symbols in code order. */
interface Huffman {
  count: Uint16Array;
  symbol: Uint16Array;
}

/** As `build()` in unpack.c: 0 complete, > 0 incomplete, < 0 over-subscribed. */
function build(h: Huffman, lengths: Uint8Array, n: number): number {
  h.count.fill(0);
  for (let sym = 0; sym < n; sym++) h.count[lengths[sym]!]!++;
  if (h.count[0] === n) return 0;
  let left = 1;
  for (let len = 1; len <= MAX_BITS; len++) {
    left <<= 1;
    left -= h.count[len]!;
    if (left < 0) return left;
  }
  const offs = new Uint16Array(MAX_BITS + 1);
  for (let len = 1; len < MAX_BITS; len++) offs[len + 1] = offs[len]! + h.count[len]!;
  for (let sym = 0; sym < n; sym++) if (lengths[sym] !== 0) h.symbol[offs[lengths[sym]!]!++] = sym;
  return left;
}

/** Thrown inside {@link unpackInto} where unpack.c says `goto fail`. */
class Fail extends Error {}

/**
 * What `rsp_unpack(src, src.length, dst, dst.length)` returns, with its effect
 * on `dst`: the host twin of target-src/unpack.c, step for step (the same
 * checks in the same order, the same bit reader), so that tests compare
 * results and bytes exactly, hostile streams included. `dst.length` on
 * success; otherwise {@link UNPACK_FAILED} | the source bytes read, with `dst`
 * written only inside its bounds (as far as decoding got).
 */
export function unpackInto(src: Uint8Array, dst: Uint8Array): number {
  const srcLen = src.length;
  const dstLen = dst.length;
  let pos = 0;
  let buf = 0;
  let cnt = 0;
  let op = 0;
  const bits = (n: number): number => {
    while (cnt < n) {
      if (pos === srcLen) throw new Fail();
      buf = (buf | (src[pos++]! << cnt)) >>> 0;
      cnt += 8;
    }
    const v = buf & ((1 << n) - 1);
    buf >>>= n;
    cnt -= n;
    return v;
  };
  const decode = (h: Huffman): number => {
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; ; len++) {
      if (len > MAX_BITS) throw new Fail();
      code |= bits(1);
      const n = h.count[len]!;
      if (code - first < n) return h.symbol[index + code - first]!;
      index += n;
      first = (first + n) << 1;
      code <<= 1;
    }
  };
  const lencode: Huffman = { count: new Uint16Array(MAX_BITS + 1), symbol: new Uint16Array(FIX_LCODES) };
  const distcode: Huffman = { count: new Uint16Array(MAX_BITS + 1), symbol: new Uint16Array(MAX_DCODES + 2) };
  const lengths = new Uint8Array(FIX_LCODES + MAX_DCODES);
  try {
    let last: number;
    do {
      last = bits(1);
      const type = bits(2);
      let nlen: number;
      let ndist: number;
      if (type === 0) {
        buf = 0;
        cnt = 0;
        const len = bits(16);
        const check = bits(16);
        if (len !== (~check & 0xffff)) throw new Fail();
        if (len > srcLen - pos || len > dstLen - op) throw new Fail();
        dst.set(src.subarray(pos, pos + len), op);
        pos += len;
        op += len;
        continue;
      }
      if (type === 1) {
        lengths.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, FIX_LCODES).fill(5, FIX_LCODES);
        nlen = FIX_LCODES;
        ndist = MAX_DCODES;
      } else if (type === 2) {
        nlen = bits(5) + 257;
        ndist = bits(5) + 1;
        const ncode = bits(4) + 4;
        if (nlen > MAX_LCODES || ndist > MAX_DCODES) throw new Fail();
        const order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
        for (let i = 0; i < 19; i++) lengths[order[i]!] = i < ncode ? bits(3) : 0;
        if (build(distcode, lengths, 19) !== 0) throw new Fail();
        for (let index = 0; index < nlen + ndist; ) {
          const sym = decode(distcode);
          if (sym < 16) {
            lengths[index++] = sym;
            continue;
          }
          let fill = 0;
          let rep: number;
          if (sym === 16) {
            if (index === 0) throw new Fail();
            fill = lengths[index - 1]!;
            rep = bits(2) + 3;
          } else if (sym === 17) {
            rep = bits(3) + 3;
          } else {
            rep = bits(7) + 11;
          }
          if (rep > nlen + ndist - index) throw new Fail();
          lengths.fill(fill, index, index + rep);
          index += rep;
        }
        if (lengths[256] === 0) throw new Fail();
      } else {
        throw new Fail();
      }
      for (let i = 0; i < 2; i++) {
        const h = i ? distcode : lencode;
        const n = i ? ndist : nlen;
        const err = build(h, lengths.subarray(i ? nlen : 0), n);
        if (err < 0 || (err > 0 && type === 2 && n - h.count[0]! !== 1)) throw new Fail();
      }
      for (;;) {
        let sym = decode(lencode);
        if (sym < 256) {
          if (op === dstLen) throw new Fail();
          dst[op++] = sym;
          continue;
        }
        if (sym === 256) break;
        sym -= 257;
        if (sym >= 29) throw new Fail();
        let len: number;
        let extra: number;
        if (sym < 4) [len, extra] = [sym + 3, 0];
        else if (sym === 28) [len, extra] = [258, 0];
        else {
          extra = (sym - 4) >> 2;
          len = ((4 + (sym & 3)) << extra) + 3;
        }
        if (extra) len += bits(extra);
        sym = decode(distcode);
        if (sym >= 30) throw new Fail();
        let dist: number;
        if (sym < 4) [dist, extra] = [sym + 1, 0];
        else {
          extra = (sym - 2) >> 1;
          dist = ((2 + (sym & 1)) << extra) + 1;
        }
        if (extra) dist += bits(extra);
        if (dist > op || len > dstLen - op) throw new Fail();
        for (; len > 0; len--, op++) dst[op] = dst[op - dist]!;
      }
    } while (!last);
    if (pos === srcLen && op === dstLen) return dstLen;
  } catch (err) {
    if (!(err instanceof Fail)) throw err;
  }
  return (UNPACK_FAILED | pos) >>> 0;
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
    throw new FormatError(`Corrupt compressed block: decoding stopped after ${at} of ${src.length} bytes (${length} bytes expected)`, 'compressed block', at);
  }
  return dst;
}
