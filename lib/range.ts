/**
 * The one shape of an address range in rspflash, and its one printed form.
 *
 * Every API that takes or returns a range of target memory uses
 * {@link MemoryRange} (`{ address, length }`), and every message prints it with
 * {@link formatRange} (`0xc0000000..0xc0000fff`, both ends inclusive, the way
 * users read memory maps). Pure; shared by every layer.
 * @module
 */
import { hex32 } from './errors.js';

/** `length` bytes of target memory starting at `address`. */
export interface MemoryRange {
  /** First address. */
  readonly address: number;
  /** Length in bytes. */
  readonly length: number;
}

/**
 * `0xc0000000..0xc0000fff` for a range (inclusive ends); a bare address for an
 * empty range.
 *
 * @example
 * ```ts
 * formatRange({ address: 0xc0000000, length: 0x1000 }); // '0xc0000000..0xc0000fff'
 * ```
 */
export function formatRange(range: MemoryRange): string {
  return range.length > 0 ? `${hex32(range.address)}..${hex32(range.address + range.length - 1)}` : hex32(range.address);
}

/** First address after the range. */
export function rangeEnd(range: MemoryRange): number {
  return range.address + range.length;
}

/** The smallest range covering every range given (ranges in any order); length 0 at address 0 for none. */
export function spanOf(ranges: readonly MemoryRange[]): MemoryRange {
  if (ranges.length === 0) return { address: 0, length: 0 };
  let start = Infinity;
  let end = -Infinity;
  for (const r of ranges) {
    start = Math.min(start, r.address);
    end = Math.max(end, r.address + r.length);
  }
  return { address: start, length: end - start };
}

/** Adjacent or overlapping ranges merged, ascending. */
export function mergeRanges(ranges: readonly MemoryRange[]): MemoryRange[] {
  const sorted = [...ranges].filter((r) => r.length > 0).sort((a, b) => a.address - b.address);
  const out: { address: number; length: number }[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last !== undefined && r.address <= last.address + last.length) {
      last.length = Math.max(last.length, r.address + r.length - last.address);
    } else {
      out.push({ address: r.address, length: r.length });
    }
  }
  return out;
}

/** The ranges cut at every multiple of `unit` (e.g. into flash pages), in order. */
export function pagesOf(ranges: readonly MemoryRange[], unit: number): MemoryRange[] {
  const out: MemoryRange[] = [];
  for (const r of ranges) {
    const end = r.address + r.length;
    for (let a = r.address; a < end; ) {
      const next = Math.min((Math.floor(a / unit) + 1) * unit, end);
      out.push({ address: a, length: next - a });
      a = next;
    }
  }
  return out;
}
