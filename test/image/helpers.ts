/**
 * Helpers shared by the image tests: building records with correct checksums
 * so that each test can break exactly one thing, and generating sparse images.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { FormatError } from '../../lib/errors.js';
import { createImage, type Image } from '../../lib/image/image.js';

const hex2 = (n: number): string => (n & 0xff).toString(16).toUpperCase().padStart(2, '0');

/** One Intel HEX record `:LLAAAATT<data>CC` with a correct checksum. */
export function ihex(type: number, offset: number, data: readonly number[] = []): string {
  const bytes = [data.length, offset >> 8, offset & 0xff, type, ...data];
  const sum = bytes.reduce((a, b) => a + b, 0);
  return ':' + bytes.map(hex2).join('') + hex2(-sum);
}

/** The Intel HEX end-of-file record. */
export const IHEX_EOF = ':00000001FF';

/** One S-record with a correct count and checksum; `addressSize` bytes of address. */
export function srec(type: number, addressSize: number, address: number, data: readonly number[] = []): string {
  const addressBytes: number[] = [];
  for (let shift = addressSize - 1; shift >= 0; shift--) addressBytes.push(Math.floor(address / 2 ** (8 * shift)) & 0xff);
  const bytes = [addressSize + data.length + 1, ...addressBytes, ...data];
  const sum = bytes.reduce((a, b) => a + b, 0);
  return `S${type}` + bytes.map(hex2).join('') + hex2(~sum);
}

/** Lines joined with LF and a final LF. */
export function file(...lines: string[]): string {
  return lines.join('\n') + '\n';
}

/** Runs `fn`, expects a FormatError on `line` whose message names that line and matches `pattern`. */
export function expectFormatError(fn: () => unknown, line: number, pattern: RegExp): FormatError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a FormatError, but nothing was thrown').toBeInstanceOf(FormatError);
  const err = caught as FormatError;
  expect(err.code).toBe('RSPFLASH_FORMAT');
  expect(err.offset, `error should point at line ${line}: ${err.message}`).toBe(line);
  expect(err.message).toContain(`line ${line}:`);
  expect(err.message).toMatch(pattern);
  return err;
}

/** The plain `{ address, data }` view of an image, for readable `toEqual` diffs. */
export function segmentsOf(image: Image): { address: number; data: number[] }[] {
  return image.segments.map((s) => ({ address: s.address, data: Array.from(s.data) }));
}

/** Compares two images segment by segment without turning megabytes into arrays. */
export function expectSameImage(actual: Image, expected: Image): void {
  expect(actual.segments.map((s) => [s.address, s.data.length])).toEqual(expected.segments.map((s) => [s.address, s.data.length]));
  actual.segments.forEach((s, i) => {
    expect(Buffer.from(s.data).equals(Buffer.from(expected.segments[i]!.data)), `data of segment ${i} at 0x${s.address.toString(16)} differs`).toBe(true);
  });
}

export const ADDRESS_SPACE_END = 0x1_0000_0000;

/** Addresses biased toward the interesting places: 64 KiB boundaries, the bottom and the top of the space. */
export const interestingAddress: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 0, max: 0xffff_ffff }),
  fc.tuple(fc.integer({ min: 1, max: 0xffff }), fc.integer({ min: -300, max: 300 })).map(([high, d]) => high * 0x1_0000 + d),
  fc.integer({ min: 0, max: 0x2_0000 }),
  fc.integer({ min: 0, max: 0xff_ffff }),
  fc.integer({ min: 0, max: 600 }).map((d) => ADDRESS_SPACE_END - 1 - d),
);

/** A random sparse image: up to `maxSegments` non-overlapping segments anywhere in the 32-bit space. */
export function sparseImage(maxSegments = 8, maxLength = 700): fc.Arbitrary<Image> {
  return fc
    .array(fc.record({ address: interestingAddress, data: fc.uint8Array({ minLength: 1, maxLength }) }), { maxLength: maxSegments })
    .map((pieces) => {
      const placed = pieces
        .map((p) => ({ address: Math.min(p.address, ADDRESS_SPACE_END - p.data.length), data: p.data }))
        .sort((a, b) => a.address - b.address);
      const kept: typeof placed = [];
      let end = 0;
      for (const p of placed) {
        if (p.address < end) continue;
        kept.push(p);
        end = p.address + p.data.length;
      }
      return createImage(kept);
    });
}
