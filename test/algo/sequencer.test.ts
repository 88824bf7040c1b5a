/**
 * Batch tables for the on-target sequencer (lib/algo/sequencer.ts): what
 * encodeBatch writes is what target-src/sequencer.c reads (8 little-endian
 * words per entry), and decodeEntry/decodeResults read back what it leaves.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ENTRY_SIZE,
  FLAG_COLLECT,
  FLAG_EXPECT_STRIDE,
  FLAG_STARTED,
  FLAG_STRIDE,
  MAX_REPEAT,
  decodeEntry,
  decodeResults,
  encodeBatch,
  runningEntry,
  type BatchCall,
} from '../../lib/algo/sequencer.js';

const words = (table: Uint8Array): number[] => {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  return Array.from({ length: table.length / 4 }, (_, i) => view.getUint32(i * 4, true));
};

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const callArb: fc.Arbitrary<BatchCall> = fc.record(
  {
    fn: fc.constantFrom('EraseSector', 'ProgramPage', 'Verify', 'crc32'),
    entry: u32,
    args: fc.array(u32, { maxLength: 4 }),
    expect: u32,
    repeat: fc.integer({ min: 1, max: MAX_REPEAT }),
    stride: fc.boolean(),
    expectStride: fc.boolean(),
    collect: fc.boolean(),
  },
  { requiredKeys: ['fn', 'entry', 'args', 'expect'] },
);

describe('encodeBatch', () => {
  it('writes one 32-byte entry per call: entry|1, r0-r3, expect, flags, result 0', () => {
    const table = encodeBatch([
      { fn: 'ProgramPage', entry: 0x21000150, args: [0xc0000000, 256, 0x21003800], expect: 0, repeat: 256, stride: true },
      { fn: 'Verify', entry: 0x21000171, args: [0xc0000000, 256, 0x21003800], expect: 0xc0000100, repeat: 3, stride: true, expectStride: true },
      { fn: 'crc32', entry: 0x210000a8, args: [0, 0xc0000000, 4096, 0x21000400], expect: 0, collect: true },
    ]);
    expect(table.length).toBe(3 * ENTRY_SIZE);
    expect(words(table)).toEqual([
      0x21000151, 0xc0000000, 256, 0x21003800, 0, 0, FLAG_STRIDE | (256 << 16), 0,
      0x21000171, 0xc0000000, 256, 0x21003800, 0, 0xc0000100, (FLAG_STRIDE | FLAG_EXPECT_STRIDE | (3 << 16)) >>> 0, 0,
      0x210000a9, 0, 0xc0000000, 4096, 0x21000400, 0, FLAG_COLLECT, 0,
    ]);
  });

  it('keeps the Thumb bit an entry already has, and encodes a single call with repeat field 0 (the sequencer reads 0 as once)', () => {
    const [entry, , , , , , flags] = words(encodeBatch([{ fn: 'Init', entry: 0x20000001, args: [], expect: 0 }]));
    expect(entry).toBe(0x20000001);
    expect(flags).toBe(0);
    expect(words(encodeBatch([{ fn: 'Init', entry: 0x20000000, args: [], expect: 0, repeat: 1 }]))[6]).toBe(0);
  });

  it('holds repeats up to 0xFFFF in the top half of the flags word', () => {
    const flags = words(encodeBatch([{ fn: 'ProgramPage', entry: 0, args: [], expect: 0, repeat: MAX_REPEAT, stride: true, collect: true }]))[6]!;
    expect(flags >>> 16).toBe(0xffff);
    expect(flags & 0xffff).toBe(FLAG_STRIDE | FLAG_COLLECT);
  });

  it.each([0, -1, MAX_REPEAT + 1, 1.5, Number.NaN])('refuses repeat %s with a RangeError naming the call', (repeat) => {
    expect(() => encodeBatch([{ fn: 'EraseSector', entry: 0, args: [0], expect: 0, repeat }])).toThrow(/repeat .* of EraseSector is outside 1\.\.65535/);
  });

  it('refuses more than four arguments (the sequencer passes r0-r3 only)', () => {
    expect(() => encodeBatch([{ fn: 'ProgramPage', entry: 0, args: [1, 2, 3, 4, 5], expect: 0 }])).toThrow(RangeError);
  });

  it.each([2 ** 32, -(2 ** 31) - 1, 0.5, Number.NaN, Infinity])('refuses %s as an argument instead of writing a truncated word', (bad) => {
    expect(() => encodeBatch([{ fn: 'ProgramPage', entry: 0, args: [bad], expect: 0 }])).toThrow(/ProgramPage: .* is not a 32-bit value/);
    expect(() => encodeBatch([{ fn: 'Verify', entry: 0, args: [], expect: bad }])).toThrow(RangeError);
  });

  it('takes negative values as their two\'s complement', () => {
    expect(words(encodeBatch([{ fn: 'x', entry: 0, args: [-1, -(2 ** 31)], expect: -2 }])).slice(1, 6)).toEqual([0xffffffff, 0x80000000, 0, 0, 0xfffffffe]);
  });

  it('encodes an empty batch as an empty table', () => {
    expect(encodeBatch([]).length).toBe(0);
  });
});

describe('decodeEntry / decodeResults', () => {
  it('round-trip every call: arguments (missing ones 0), expect, result 0, flags as encoded', () => {
    fc.assert(
      fc.property(fc.array(callArb, { minLength: 1, maxLength: 20 }), (calls) => {
        const table = encodeBatch(calls);
        calls.forEach((call, i) => {
          const state = decodeEntry(table, i);
          expect(state.args).toEqual([0, 1, 2, 3].map((j) => call.args[j] ?? 0));
          expect(state.expect).toBe(call.expect);
          expect(state.result).toBe(0);
          expect(state.started).toBe(false);
          const flags = words(table)[i * 8 + 6]!;
          const repeat = call.repeat ?? 1;
          expect(flags >>> 16).toBe(repeat === 1 ? 0 : repeat);
          expect(!!(flags & FLAG_COLLECT)).toBe(!!call.collect);
          expect(!!(flags & FLAG_STRIDE)).toBe(!!call.stride);
          expect(!!(flags & FLAG_EXPECT_STRIDE)).toBe(!!call.expectStride);
          expect(flags & FLAG_STARTED).toBe(0); // only the sequencer sets it
        });
        expect(decodeResults(table)).toEqual(calls.map(() => 0));
        expect(runningEntry(table)).toBeUndefined();
      }),
    );
  });

  it('read what the sequencer left: advanced arguments and the last result of each entry', () => {
    const table = encodeBatch([
      { fn: 'crc32', entry: 0x100, args: [0, 0xc0000000, 4096, 0x400], expect: 0, collect: true },
      { fn: 'ProgramPage', entry: 0x200, args: [0xc0000000, 256, 0x3800], expect: 0, repeat: 8, stride: true },
    ]);
    // What rsp_seq_run does: result of entry 0; entry 1 failed on its 5th call.
    const view = new DataView(table.buffer);
    view.setUint32(28, 0xcbf43926, true);
    view.setUint32(32 + 4, 0xc0000400, true);
    view.setUint32(32 + 12, 0x3800 + 0x400, true);
    view.setUint32(32 + 28, 1, true);
    for (const i of [0, 1]) view.setUint32(i * 32 + 24, view.getUint32(i * 32 + 24, true) | FLAG_STARTED, true);
    expect(decodeResults(table)).toEqual([0xcbf43926, 1]);
    expect(decodeEntry(table, 1)).toEqual({ args: [0xc0000400, 256, 0x3c00, 0], expect: 0, result: 1, started: true });
    expect(runningEntry(table)).toBe(1);
  });

  it('work on a table read back into the middle of a larger buffer (non-zero byteOffset)', () => {
    const table = encodeBatch([
      { fn: 'a', entry: 0, args: [1, 2, 3, 4], expect: 5 },
      { fn: 'b', entry: 0, args: [6], expect: 7 },
    ]);
    const big = new Uint8Array(table.length + 12);
    big.set(table, 12);
    const view = big.subarray(12);
    expect(decodeEntry(view, 1)).toEqual({ args: [6, 0, 0, 0], expect: 7, result: 0, started: false });
    expect(decodeResults(view)).toEqual([0, 0]);
  });

  it('name the entry that was running when the sequencer never returned: the last one it marked started', () => {
    const table = encodeBatch(Array.from({ length: 5 }, (_, i) => ({ fn: `f${i}`, entry: 0, args: [i], expect: 0 })));
    const view = new DataView(table.buffer);
    expect(runningEntry(table)).toBeUndefined();
    for (const i of [0, 1, 2]) {
      view.setUint32(i * 32 + 24, FLAG_STARTED, true);
      expect(runningEntry(table)).toBe(i);
    }
  });

  it('ignore a trailing partial entry', () => {
    expect(decodeResults(new Uint8Array(ENTRY_SIZE + 31))).toEqual([0]);
  });
});
