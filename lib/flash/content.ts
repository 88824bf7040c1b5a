/**
 * The bytes a job expects in flash, by range: the planned sector content
 * (image bytes, erased value in gaps) with the bytes read back to keep laid
 * over it. Views into the image wherever possible: a 32 MiB image is not copied.
 * @module
 */
import type { Image } from '../image/image.js';
import type { MemoryRange } from '../range.js';
import type { KeptBytes } from './journal.js';
import type { FlashPlan, PlannedSector } from './plan.js';

/** Something that yields the expected bytes of a range, as views in address order. */
export interface ExpectedContent {
  /** The expected bytes of `range`, as views in address order that together are `range.length` bytes. */
  bytes(range: MemoryRange): Uint8Array[];
}

/** Expected content of a program job's touched sectors. */
export class JobContent implements ExpectedContent {
  readonly #sectors: readonly PlannedSector[];
  /** Sector content with kept bytes laid over (copies), by sector address. */
  readonly #withKept = new Map<number, Uint8Array>();

  constructor(layout: FlashPlan) {
    this.#sectors = layout.sectors;
  }

  /** Lays bytes read back from the flash over the planned content (never into the caller's image). */
  keep(kept: readonly KeptBytes[]): void {
    for (const k of kept) {
      let at = k.address;
      const end = k.address + k.data.length;
      while (at < end) {
        const sector = this.#sectorAt(at);
        if (sector === undefined) throw new RangeError(`kept bytes at 0x${at.toString(16)} lie outside the touched sectors`);
        let data = this.#withKept.get(sector.address);
        if (data === undefined) {
          data = new Uint8Array(sector.data);
          this.#withKept.set(sector.address, data);
        }
        const to = Math.min(end, sector.address + sector.size);
        data.set(k.data.subarray(at - k.address, to - k.address), at - sector.address);
        at = to;
      }
    }
  }

  /** The expected bytes of `range`, as views in address order that together are `range.length` bytes. */
  bytes(range: MemoryRange): Uint8Array[] {
    const parts: Uint8Array[] = [];
    let at = range.address;
    const end = range.address + range.length;
    while (at < end) {
      const sector = this.#sectorAt(at);
      if (sector === undefined) throw new RangeError(`0x${at.toString(16)} is not in a touched sector`);
      const data = this.#withKept.get(sector.address) ?? sector.data;
      const to = Math.min(end, sector.address + sector.size);
      parts.push(data.subarray(at - sector.address, to - sector.address));
      at = to;
    }
    return parts;
  }

  /** Binary search: sectors are in address order. */
  #sectorAt(address: number): PlannedSector | undefined {
    let lo = 0;
    let hi = this.#sectors.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.#sectors[mid]!;
      if (address < s.address) hi = mid - 1;
      else if (address >= s.address + s.size) lo = mid + 1;
      else return s;
    }
    return undefined;
  }
}

/** Expected content of an image's own ranges (verify): views into its segments; the erased value in holes. */
export function imageContent(image: Image, erasedValue: number): ExpectedContent {
  return {
    bytes(range) {
      const parts: Uint8Array[] = [];
      let at = range.address;
      const end = range.address + range.length;
      for (const s of image.segments) {
        const sEnd = s.address + s.data.length;
        if (sEnd <= at || s.address >= end) continue;
        if (s.address > at) parts.push(new Uint8Array(s.address - at).fill(erasedValue));
        const from = Math.max(at, s.address);
        const to = Math.min(end, sEnd);
        parts.push(s.data.subarray(from - s.address, to - s.address));
        at = to;
      }
      if (at < end) parts.push(new Uint8Array(end - at).fill(erasedValue));
      return parts;
    },
  };
}
