/**
 * The block codec of compressed transfer (lib/flash/codec.ts): node:zlib's raw
 * deflate on the host, and `unpackInto`, the host twin of the target's
 * `rsp_unpack`, which must agree with zlib's inflate on every valid stream and
 * fail (never throw, never claim success with other bytes) on hostile ones.
 */
import fc from 'fast-check';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../lib/errors.js';
import { UNPACK_FAILED, WORTH_RATIO, breakEvenRatio, compressBlock, decompressBlock, maxCompressedLength, unpackInto } from '../../lib/flash/codec.js';
import { seededBytes } from '../helpers/bytes.js';

/** Bytes that compress: runs, repeats of a short pattern and text-like bytes. */
const compressible = fc
  .array(
    fc.oneof(
      fc.record({ byte: fc.integer({ min: 0, max: 255 }), n: fc.integer({ min: 1, max: 600 }) }).map(({ byte, n }) => new Uint8Array(n).fill(byte)),
      fc.uint8Array({ minLength: 1, maxLength: 8 }).chain((p) => fc.integer({ min: 1, max: 80 }).map((k) => Uint8Array.from({ length: p.length * k }, (_, i) => p[i % p.length]!))),
      fc.uint8Array({ maxLength: 64 }).map((b) => b.map((x) => 0x61 + (x % 6))),
    ),
    { maxLength: 40 },
  )
  .map((parts) => new Uint8Array(Buffer.concat(parts)));

/** Incompressible, reproducible bytes (xorshift32; seededBytes' LCG repeats too much to be random for deflate). */
function noise(length: number, seed: number): Uint8Array {
  let x = seed || 1;
  return Uint8Array.from({ length }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 24;
  });
}

const deflate = (data: Uint8Array, level: number, windowBits: number, strategy?: number) =>
  new Uint8Array(deflateRawSync(data, { level, windowBits, memLevel: 9, ...(strategy === undefined ? {} : { strategy }) }));

/** The twin's result and output for `src` into `length` bytes. */
function unpack(src: Uint8Array, length: number): { result: number; out: Uint8Array } {
  const out = new Uint8Array(length);
  return { result: unpackInto(src, out), out };
}

/** zlib's verdict on `src`: the bytes, or undefined when it refuses the stream or it runs past its final block. */
function inflate(src: Uint8Array): Uint8Array | undefined {
  try {
    const out = inflateRawSync(src, { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    // A stream with bytes after its final block is not one rsp_unpack accepts.
    if (out.engine.bytesWritten !== src.length) return undefined;
    return new Uint8Array(out.buffer);
  } catch {
    return undefined;
  }
}

describe('compressBlock / decompressBlock', () => {
  it('round-trips any data, compressed or not, through the host twin and through zlib', () => {
    fc.assert(
      fc.property(fc.oneof(compressible, fc.uint8Array({ maxLength: 3000 })), (data) => {
        const packed = compressBlock(data);
        if (packed === undefined) return;
        expect(packed.length).toBeLessThan(data.length * WORTH_RATIO);
        expect(Buffer.from(decompressBlock(packed, data.length)).equals(Buffer.from(data))).toBe(true);
        expect(Buffer.from(inflateRawSync(packed)).equals(Buffer.from(data))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('compresses runs and code-like repeats, and leaves random and tiny blocks raw (undefined)', () => {
    const run = new Uint8Array(65536).fill(0x00);
    expect(compressBlock(run)!.length).toBeLessThan(200);
    expect(compressBlock(noise(65536, 7)), 'random bytes do not pay').toBeUndefined();
    expect(compressBlock(new Uint8Array(63)), 'under 64 bytes never pays the call').toBeUndefined();
  });

  it('compresses only below the break-even ratio of link and decoder speeds', () => {
    expect(breakEvenRatio(1e6, 4e6)).toBeCloseTo(0.75);
    expect(breakEvenRatio(1e6, 1e9)).toBe(WORTH_RATIO);
    expect(breakEvenRatio(4e6, 2e6), 'a decoder slower than the link never pays').toBe(0);
    const text = Uint8Array.from({ length: 8192 }, (_, i) => 0x61 + ((i * i) % 7));
    const ratio = compressBlock(text)!.length / text.length;
    expect(compressBlock(text, { maxRatio: ratio - 0.01 })).toBeUndefined();
    expect(compressBlock(text, { maxRatio: ratio + 0.01 })).toBeDefined();
  });

  it('bounds every stream zlib writes for a block by maxCompressedLength', () => {
    for (const n of [0, 1, 100, 4096, 65536, 262144]) {
      expect(deflate(seededBytes(n, n), 9, 15).length).toBeLessThanOrEqual(maxCompressedLength(n));
      expect(deflate(seededBytes(n, n), 0, 15).length).toBeLessThanOrEqual(maxCompressedLength(n));
    }
  });

  it('throws a FormatError (RSPFLASH_FORMAT) naming where a corrupt stream stopped', () => {
    const packed = compressBlock(new Uint8Array(4096).fill(7))!;
    expect(() => decompressBlock(packed, 4095)).toThrow(FormatError);
    try {
      decompressBlock(packed.subarray(0, packed.length - 1), 4096);
      expect.unreachable('a truncated stream decoded');
    } catch (err) {
      expect(err).toBeInstanceOf(FormatError);
      expect((err as FormatError).code).toBe('RSPFLASH_FORMAT');
      expect((err as FormatError).source).toBe('compressed block');
      expect((err as FormatError).message).toMatch(/stopped after \d+ of \d+ bytes \(4096 bytes expected\)/);
    }
  });
});

describe('unpackInto, the host twin of rsp_unpack', () => {
  it('agrees with zlib on stored, fixed and dynamic blocks at every level and windowBits 9..15', () => {
    fc.assert(
      fc.property(
        fc.oneof(compressible, fc.uint8Array({ maxLength: 2000 })),
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 9, max: 15 }),
        fc.constantFrom(undefined, 1, 2, 3, 4), // default, filtered, Huffman only, RLE, fixed codes
        (data, level, windowBits, strategy) => {
          const src = deflate(data, level, windowBits, strategy);
          const { result, out } = unpack(src, data.length);
          expect(result).toBe(data.length);
          expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('decodes multi-block streams of 256 KiB (the largest transfer buffer)', () => {
    const data = new Uint8Array(262144);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251 < 40 ? 0xff : (i >> 5) & 0xff;
    for (const level of [0, 1, 6, 9]) {
      const { result, out } = unpack(deflate(data, level, 15), data.length);
      expect(result, `level ${level}`).toBe(data.length);
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('fails with UNPACK_FAILED | bytes read on a length lie, a truncation, trailing bytes and an empty stream', () => {
    const data = seededBytes(3000, 3).map((b) => b & 7);
    const src = deflate(data, 9, 15);
    const failed = (r: number) => (r & UNPACK_FAILED) !== 0;
    expect(failed(unpack(src, data.length - 1).result), 'dstLen one short').toBe(true);
    expect(failed(unpack(src, data.length + 1).result), 'dstLen one long').toBe(true);
    for (const cut of [0, 1, 2, src.length >> 1, src.length - 1]) {
      const r = unpack(src.subarray(0, cut), data.length).result;
      expect(failed(r), `truncated at ${cut}`).toBe(true);
      expect(r & ~UNPACK_FAILED, 'reports no more bytes than it had').toBeLessThanOrEqual(cut);
    }
    expect(failed(unpack(Uint8Array.from([...src, 0]), data.length).result), 'a byte after the final block').toBe(true);
    expect(unpack(deflate(new Uint8Array(0), 9, 15), 0).result, 'an empty block is a valid stream').toBe(0);
  });

  it('refuses back-references before the start of the output and reserved block types', () => {
    // Fixed-code block: literal 'A' (code 0x71, 8 bits), then length 3 (sym 257) at distance 2 (one byte produced).
    const bitsOf = (fields: [number, number, boolean?][]) => {
      const out: number[] = [];
      let acc = 0;
      let n = 0;
      for (const [value, width, msbFirst] of fields) {
        for (let i = 0; i < width; i++) {
          const bit = msbFirst ? (value >> (width - 1 - i)) & 1 : (value >> i) & 1;
          acc |= bit << n++;
          if (n === 8) {
            out.push(acc);
            acc = 0;
            n = 0;
          }
        }
      }
      if (n) out.push(acc);
      return Uint8Array.from(out);
    };
    const literalA: [number, number, boolean] = [0x30 + 0x41, 8, true];
    const end: [number, number, boolean] = [0, 7, true];
    const ok = bitsOf([[1, 1], [1, 2], literalA, [1, 7, true], [0, 5, true], end]); // 'A', then copy 3 at distance 1
    expect(unpack(ok, 4)).toEqual({ result: 4, out: Uint8Array.from([0x41, 0x41, 0x41, 0x41]) });
    const before = bitsOf([[1, 1], [1, 2], literalA, [1, 7, true], [1, 5, true], end]); // distance 2 with 1 byte out
    expect(unpack(before, 4).result & UNPACK_FAILED).not.toBe(0);
    expect(unpack(bitsOf([[1, 1], [3, 2]]), 4).result & UNPACK_FAILED, 'block type 3').not.toBe(0);
    const stored = bitsOf([[1, 1], [0, 2], [0, 5], [4, 16], [0xfffa, 16]]); // LEN 4, NLEN not its complement
    expect(unpack(Uint8Array.from([...stored, 1, 2, 3, 4]), 4).result & UNPACK_FAILED).not.toBe(0);
  });

  it('on mutated streams either fails or produces exactly what zlib produces (hostile input)', () => {
    const bases = [seededBytes(2048, 1).map((b) => b & 3), new Uint8Array(1500).fill(9), seededBytes(700, 5)];
    const streams = bases.flatMap((d) => [0, 1, 6, 9].map((level) => ({ data: d, src: deflate(d, level, 12) })));
    fc.assert(
      fc.property(
        fc.constantFrom(...streams),
        fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: -8, max: 8 }),
        ({ data, src }, flips, lengthLie) => {
          const bad = Uint8Array.from(src);
          for (const f of flips) bad[f.at % bad.length]! ^= f.xor;
          const length = Math.max(0, data.length + lengthLie);
          const { result, out } = unpack(bad, length);
          if ((result & UNPACK_FAILED) !== 0) {
            expect(result & ~UNPACK_FAILED).toBeLessThanOrEqual(bad.length);
            return;
          }
          expect(result).toBe(length);
          const reference = inflate(bad);
          expect(reference, 'zlib refuses a stream the twin accepted').toBeDefined();
          expect(Buffer.from(out).equals(Buffer.from(reference!))).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
