/**
 * Properties of the readers on damaged input: a corrupted or truncated file
 * either reads back as the original (the damage was harmless, e.g. a digit's
 * case) or fails with a FormatError that points at a line; it never throws
 * anything else and never hangs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError, ImageOverlapError } from '../../lib/errors.js';
import { imageToIntelHex, parseIntelHex } from '../../lib/image/hex.js';
import { imageToSrec, parseSrec } from '../../lib/image/srec.js';
import { expectSameImage, sparseImage } from './helpers.js';

/** One kind of damage, at a position taken modulo the text length. */
type Damage =
  | { kind: 'replace' | 'insert'; at: number; char: string }
  | { kind: 'delete' | 'truncate' | 'duplicate-line'; at: number };

const damageChar = fc.constantFrom(...'0123456789abcdefABCDEFGSs:\n\r \t\u0000é\uFFFD');
const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ kind: fc.constantFrom('replace' as const, 'insert' as const), at: fc.nat(), char: damageChar }),
  fc.record({ kind: fc.constantFrom('delete' as const, 'truncate' as const, 'duplicate-line' as const), at: fc.nat() }),
);

function applyDamage(text: string, d: Damage): string {
  const at = d.at % (text.length + 1);
  switch (d.kind) {
    case 'replace':
      return text.slice(0, at) + d.char + text.slice(at + 1);
    case 'insert':
      return text.slice(0, at) + d.char + text.slice(at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + 1);
    case 'truncate':
      return text.slice(0, at);
    case 'duplicate-line': {
      const start = text.lastIndexOf('\n', at - 1) + 1;
      const end = text.indexOf('\n', at);
      const line = text.slice(start, end < 0 ? text.length : end + 1);
      return text.slice(0, start) + line + (line.endsWith('\n') ? '' : '\n') + text.slice(start);
    }
  }
}

/** Column (0-based) of `at` in its line. */
function columnOf(text: string, at: number): number {
  return at - (text.lastIndexOf('\n', at - 1) + 1);
}

/** Runs a parse and returns what it threw, or undefined if it succeeded. */
function attempt(parse: () => void): unknown {
  try {
    parse();
    return undefined;
  } catch (err) {
    return err;
  }
}

function expectLineError(err: FormatError, damaged: string): void {
  const lines = damaged.split('\n').length;
  expect(err.offset, `FormatError without a line: ${err.message}`).toBeTypeOf('number');
  expect(err.offset!).toBeGreaterThanOrEqual(1);
  expect(err.offset!).toBeLessThanOrEqual(lines);
  expect(err.message).toContain(`line ${err.offset}:`);
}

describe('Intel HEX reader on damaged files', () => {
  it('throws a FormatError naming a line, or reads the original image and entry back', () => {
    fc.assert(
      fc.property(
        sparseImage(4, 80),
        fc.integer({ min: 1, max: 40 }),
        fc.option(fc.nat({ max: 0xffff_ffff }), { nil: undefined }),
        damage,
        (image, recordSize, entry, d) => {
          const damaged = applyDamage(imageToIntelHex(image, { recordSize, entry }), d);
          let parsed: ReturnType<typeof parseIntelHex> | undefined;
          const err = attempt(() => (parsed = parseIntelHex(damaged, 'damaged.hex')));
          if (err === undefined) {
            // Every digit is under the checksum: damage that reads at all must have been harmless.
            expectSameImage(parsed!.image, image);
            expect(parsed!.entry).toBe(entry);
            return;
          }
          expect(err, `unexpected ${String(err)}`).toBeInstanceOf(FormatError);
          expectLineError(err as FormatError, damaged);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('S-record reader on damaged files', () => {
  it('throws a FormatError naming a line, or reads the original back unless a record type was changed', () => {
    fc.assert(
      fc.property(
        sparseImage(4, 80),
        fc.integer({ min: 1, max: 40 }),
        fc.nat({ max: 0xffff_ffff }),
        damage,
        (image, recordSize, entry, d) => {
          const text = imageToSrec(image, { recordSize, entry, header: 'rspflash' });
          const damaged = applyDamage(text, d);
          // The type digit after 'S' is the one part of a record no checksum covers:
          // S1 → S2 moves data, S1 → S0 turns it into a header. That is the format's gap, not ours.
          const at = d.at % (text.length + 1);
          const typeTouched = (d.kind === 'replace' || d.kind === 'insert' || d.kind === 'delete') && columnOf(text, at) <= 1;
          let parsed: ReturnType<typeof parseSrec> | undefined;
          const err = attempt(() => (parsed = parseSrec(damaged, 'damaged.s37')));
          if (err === undefined) {
            if (!typeTouched) {
              expectSameImage(parsed!.image, image);
              expect(parsed!.entry).toBe(entry);
            }
            return;
          }
          if (typeTouched && err instanceof ImageOverlapError) return;
          expect(err, `unexpected ${String(err)}`).toBeInstanceOf(FormatError);
          expectLineError(err as FormatError, damaged);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('readers on files with several kinds of damage', () => {
  // Two changes in one record can cancel out in its checksum, so only the kind of error is asserted here.
  it('throw nothing but FormatError or ImageOverlapError', () => {
    fc.assert(
      fc.property(sparseImage(4, 80), fc.integer({ min: 1, max: 40 }), fc.array(damage, { minLength: 2, maxLength: 6 }), (image, recordSize, damages) => {
        const hex = damages.reduce(applyDamage, imageToIntelHex(image, { recordSize }));
        const srec = damages.reduce(applyDamage, imageToSrec(image, { recordSize }));
        for (const err of [attempt(() => parseIntelHex(hex, 'damaged.hex')), attempt(() => parseSrec(srec, 'damaged.s19'))]) {
          if (err !== undefined) expect(err instanceof FormatError || err instanceof ImageOverlapError, `unexpected ${String(err)}`).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('readers on arbitrary text', () => {
  const recordish = fc.string({ unit: fc.constantFrom(...':S0123456789ABCDEFabcdef\n\r '), maxLength: 400 });

  it('Intel HEX reader throws only FormatError (or ImageOverlapError) and terminates', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), recordish), (text) => {
        const err = attempt(() => parseIntelHex(text, 'fuzz.hex'));
        if (err !== undefined) expect(err instanceof FormatError || err instanceof ImageOverlapError, `unexpected ${String(err)}`).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('S-record reader throws only FormatError (or ImageOverlapError) and terminates', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), recordish), (text) => {
        const err = attempt(() => parseSrec(text, 'fuzz.srec'));
        if (err !== undefined) expect(err instanceof FormatError || err instanceof ImageOverlapError, `unexpected ${String(err)}`).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
