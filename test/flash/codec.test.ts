/**
 * The block codec of compressed transfer (lib/flash/codec.ts): the LZ4 block
 * encoder and `unpackInto`, the host twin of the target's `rsp_unpack`, which
 * must give back every block the encoder wrote and fail (never throw, never
 * report success with the wrong length) on hostile streams.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../lib/errors.js';
import {
  MAX_OFFSET,
  UNPACK_FAILED,
  WORTH_RATIO,
  breakEvenRatio,
  compressBlock,
  decompressBlock,
  encodeBlock,
  maxCompressedLength,
  unpackInto,
} from '../../lib/flash/codec.js';

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

/** Incompressible, reproducible bytes (xorshift32). */
function noise(length: number, seed: number): Uint8Array {
  let x = seed || 1;
  return Uint8Array.from({ length }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 24;
  });
}

/** The twin's result and output for `src` into `length` bytes. */
function unpack(src: Uint8Array, length: number): { result: number; out: Uint8Array } {
  const out = new Uint8Array(length);
  return { result: unpackInto(src, out), out };
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const failed = (r: number) => (r & UNPACK_FAILED) !== 0;

describe('encodeBlock / compressBlock', () => {
  it('round-trips any data through the host twin, greedy or lazy, at any search depth', () => {
    fc.assert(
      fc.property(fc.oneof(compressible, fc.uint8Array({ maxLength: 3000 })), fc.boolean(), fc.integer({ min: 1, max: 128 }), (data, lazy, depth) => {
        const src = encodeBlock(data, { lazy, depth });
        expect(src.length).toBeLessThanOrEqual(maxCompressedLength(data.length));
        const { result, out } = unpack(src, data.length);
        expect(result).toBe(data.length);
        expect(same(out, data)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it("keeps LZ4's end-of-block rules: the last 5 bytes are literals, so any LZ4 decoder takes the stream", () => {
    fc.assert(
      fc.property(compressible, (data) => {
        // Decoding all but the last 5 bytes as a block of its own must end in the last sequence's literals.
        const src = encodeBlock(data);
        const lastLiterals = Math.min(5, data.length);
        expect(same(src.subarray(src.length - lastLiterals), data.subarray(data.length - lastLiterals))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('reaches back up to MAX_OFFSET and no further', () => {
    const pattern = noise(1000, 9);
    const data = new Uint8Array(MAX_OFFSET + 2000);
    data.set(pattern, 0);
    data.set(noise(MAX_OFFSET - 1000, 4), 1000);
    data.set(pattern, MAX_OFFSET); // exactly MAX_OFFSET back: one match
    const src = encodeBlock(data);
    expect(src.length).toBeLessThan(data.length - 900);
    expect(same(decompressBlock(src, data.length), data)).toBe(true);
    const far = new Uint8Array(MAX_OFFSET + 1001);
    far.set(pattern, 0);
    far.set(noise(MAX_OFFSET - 999, 4), 1000);
    far.set(pattern, MAX_OFFSET + 1); // one byte too far
    expect(encodeBlock(far).length).toBeGreaterThan(far.length);
  });

  it('compresses runs and repeats, and leaves random and tiny blocks raw (undefined)', () => {
    expect(compressBlock(new Uint8Array(65536))!.length).toBeLessThan(300);
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

  it('decompressBlock throws a FormatError (RSPFLASH_FORMAT) naming where a corrupt stream stopped', () => {
    const packed = compressBlock(new Uint8Array(4096).fill(7))!;
    expect(() => decompressBlock(packed, 4095)).toThrow(FormatError);
    try {
      decompressBlock(packed.subarray(0, packed.length - 1), 4096);
      expect.unreachable('a truncated stream decoded');
    } catch (err) {
      expect(err).toBeInstanceOf(FormatError);
      expect((err as FormatError).code).toBe('RSPFLASH_FORMAT');
      expect((err as FormatError).source).toBe('compressed block');
      expect((err as FormatError).message).toMatch(/stopped at byte \d+ of \d+ \(4096 bytes expected\)/);
    }
  });
});

describe('unpackInto, the host twin of rsp_unpack', () => {
  it('fails with UNPACK_FAILED | offset on length lies, truncations and trailing bytes', () => {
    const data = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 15);
    const src = encodeBlock(data);
    expect(failed(unpack(src, data.length - 1).result), 'dstLen one short').toBe(true);
    expect(failed(unpack(src, data.length + 1).result), 'dstLen one long').toBe(true);
    for (const cut of [0, 1, 2, src.length >> 1, src.length - 1]) {
      const r = unpack(src.subarray(0, cut), data.length).result;
      expect(failed(r), `truncated at ${cut}`).toBe(true);
      expect(r & ~UNPACK_FAILED, 'names an offset inside what it had').toBeLessThanOrEqual(cut);
    }
    expect(failed(unpack(Uint8Array.from([...src, 0]), data.length).result), 'a byte after the last sequence').toBe(true);
    expect(unpack(new Uint8Array(0), 0).result, 'an empty stream is an empty block').toBe(0);
  });

  it('decodes hand-made sequences: overlapping matches, extended lengths, a stream ending after a match', () => {
    // 'ab', then a match of 4 + 15 + 1 = 20 at offset 2: 'abab…' (overlapping its own output), and nothing after it.
    const src = Uint8Array.from([0x2f, 0x61, 0x62, 0x02, 0x00, 0x01]);
    expect(unpack(src, 22)).toEqual({ result: 22, out: Uint8Array.from({ length: 22 }, (_, i) => (i % 2 ? 0x62 : 0x61)) });
    // 15 + 255 + 3 = 273 literals.
    const lits = noise(273, 2);
    expect(unpack(Uint8Array.from([0xf0, 255, 3, ...lits]), 273)).toEqual({ result: 273, out: lits });
  });

  it('refuses offsets of 0 and before the start of the output, and lengths longer than dst or src', () => {
    expect(unpack(Uint8Array.from([0x10, 0x61, 0x02, 0x00]), 5).result, 'offset 2 with 1 byte out').toBe((UNPACK_FAILED | 2) >>> 0);
    expect(unpack(Uint8Array.from([0x10, 0x61, 0x00, 0x00]), 5).result, 'offset 0').toBe((UNPACK_FAILED | 2) >>> 0);
    expect(unpack(Uint8Array.from([0x10, 0x61, 0x01, 0x00]), 4).result, 'match past dstLen').toBe((UNPACK_FAILED | 4) >>> 0);
    expect(unpack(Uint8Array.from([0x30, 0x61]), 3).result, 'literals past srcLen').toBe((UNPACK_FAILED | 1) >>> 0);
    expect(unpack(Uint8Array.from([0x30, 0x61, 0x62, 0x63]), 2).result, 'literals past dstLen').toBe((UNPACK_FAILED | 1) >>> 0);
    // A length of 255-bytes that would wrap a 32-bit counter is refused as soon as it passes dstLen.
    const huge = Uint8Array.from([0xf0, ...new Array<number>(5000).fill(255)]);
    expect(unpack(huge, 1000).result).toBe((UNPACK_FAILED | 5) >>> 0);
  });

  it('on mutated streams either fails or reports exactly dstLen, never throwing (hostile input)', () => {
    const bases = [Uint8Array.from({ length: 2048 }, (_, i) => (i * i) & 3), new Uint8Array(1500).fill(9), noise(700, 5).map((b) => b & 7)];
    const streams = bases.map((data) => ({ data, src: encodeBlock(data) }));
    fc.assert(
      fc.property(
        fc.constantFrom(...streams),
        fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: -8, max: 8 }),
        ({ data, src }, flips, lengthLie) => {
          const bad = Uint8Array.from(src);
          for (const f of flips) bad[f.at % bad.length]! ^= f.xor;
          const length = Math.max(0, data.length + lengthLie);
          const { result } = unpack(bad, length);
          if (failed(result)) expect(result & ~UNPACK_FAILED).toBeLessThanOrEqual(bad.length);
          else expect(result).toBe(length);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
