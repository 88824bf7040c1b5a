/**
 * The runner's RAM layout (lib/algo/layout.ts), pure: where the helpers, the
 * algorithm, the CRC table, the stack and the buffers go, and what a region
 * that is too small is told.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FlashAlgorithm } from '../../lib/algo/algorithm.js';
import {
  CRC_TABLE_BYTES,
  VECTOR_TABLE_BYTES,
  DEFAULT_MAX_BUFFER,
  DEFAULT_STACK,
  MAX_TABLE_ENTRIES,
  MIN_TABLE_ENTRIES,
  HELPER_STACK,
  LAYOUT_PAGE,
  describeLayout,
  planRamLayout,
  type RamLayout,
  type RamRegion,
} from '../../lib/algo/layout.js';
import { loadAlgorithm } from '../../lib/algo/load.js';
import { ENTRY_SIZE } from '../../lib/algo/sequencer.js';
import { TARGET_CODE, TARGET_ENTRY } from '../../lib/algo/target-code.js';
import { RamLayoutError } from '../../lib/errors.js';
import { BOARDS } from '../../lib/boards.js';
import { FIXTURES } from '../helpers/qemu.js';

const load = (path: string) => loadAlgorithm(readFileSync(path), path);
const norSim = load(FIXTURES.norSim);
const norSimYaml = load(FIXTURES.norSimYaml);
const nvmc = load(FIXTURES.nvmcNrf51);
const page = (address: number) => Math.floor(address / LAYOUT_PAGE);

/** A synthetic algorithm: `blob` bytes, page size, optional fixed address and stack request. */
function algorithm(over: { blob?: number; pageSize?: number; loadAddress?: number; stackSize?: number } = {}): FlashAlgorithm {
  const pageSize = over.pageSize ?? 256;
  return {
    ...norSim,
    name: 'synthetic',
    blob: new Uint8Array(over.blob ?? 0x400),
    loadAddress: over.loadAddress,
    staticBaseOffset: 0x40,
    stackSize: over.stackSize,
    geometry: { start: 0x08000000, size: pageSize * 64, pageSize, erasedValue: 0xff, sectors: [{ address: 0x08000000, size: pageSize * 4, count: 16 }] },
  };
}

/** Every invariant a layout must keep, whatever the algorithm and region. */
function checkInvariants(layout: RamLayout, algo: FlashAlgorithm): void {
  const { region } = layout;
  const regionEnd = region.start + region.size;
  const helpersEnd = layout.helpers + TARGET_CODE.length;
  const algoEnd = layout.algorithm + algo.blob.length;
  // Code on pages below the data.
  expect(layout.crcTable % LAYOUT_PAGE).toBe(0);
  expect(page(helpersEnd - 1)).toBeLessThan(page(layout.crcTable));
  const algoInRegion = algo.loadAddress === undefined || (layout.algorithm < regionEnd && algoEnd > region.start);
  if (algoInRegion) expect(page(algoEnd - 1)).toBeLessThan(page(layout.crcTable));
  // Helpers and algorithm do not overlap.
  expect(helpersEnd <= layout.algorithm || algoEnd <= layout.helpers).toBe(true);
  expect(layout.helpers % 4).toBe(0);
  // CRC table, then the stack right above it (the table is the guard band), then the buffers.
  expect(layout.stackBottom).toBe(layout.crcTable + CRC_TABLE_BYTES);
  expect(layout.stackTop % 8).toBe(0);
  expect(layout.stackTop - layout.stackBottom).toBeGreaterThanOrEqual(HELPER_STACK);
  // The trap page above the stack (out of reach of a stack overrun), a page of its own: no code that runs
  // hot shares it with the breakpointed trap and fault loop (QEMU runs such pages one instruction at a time).
  expect(layout.vectorTable).toBeGreaterThanOrEqual(layout.stackTop);
  expect(layout.vectorTable % LAYOUT_PAGE).toBe(0);
  expect(layout.faultLoop).toBe(layout.vectorTable + 64);
  expect(layout.trap).toBe(layout.vectorTable + 72);
  expect(page(layout.trap)).not.toBe(page(helpersEnd - 1));
  expect(page(layout.trap)).not.toBe(page(layout.stackTop - 1));
  let previousEnd = layout.vectorTable + LAYOUT_PAGE;
  for (const b of layout.buffers) {
    expect(b.tableArea).toBeGreaterThanOrEqual(previousEnd);
    expect(b.tableArea + b.tableEntries * ENTRY_SIZE).toBe(b.address); // the table ends where the data starts
    expect(b.size % algo.geometry.pageSize).toBe(0);
    expect(b.size).toBeGreaterThanOrEqual(algo.geometry.pageSize);
    expect(b.address % 4).toBe(0);
    previousEnd = b.address + b.size;
  }
  expect(page(layout.buffers[0]!.tableArea)).toBeGreaterThan(page(layout.stackTop - 1));
  expect(previousEnd).toBeLessThanOrEqual(regionEnd);
  expect(layout.buffers.every((b) => b.size === layout.buffers[0]!.size)).toBe(true);
  // `used` covers everything the runner writes, inside the region except a fixed algorithm outside it.
  const covered = (start: number, end: number) => layout.used.some((u) => u.start <= start && end <= u.end);
  expect(covered(layout.helpers, helpersEnd)).toBe(true);
  expect(covered(layout.algorithm, algoEnd)).toBe(true);
  expect(covered(layout.crcTable, previousEnd)).toBe(true);
  expect(layout.used[0]!.end).toBe(previousEnd);
  if (algoInRegion) expect(layout.used).toHaveLength(1);
  if (layout.staticBase !== undefined) expect(layout.staticBase).toBe(layout.algorithm + algo.staticBaseOffset!);
}

/** The byte count a RamLayoutError says is needed. */
function neededBytes(err: unknown): number {
  expect(err).toBeInstanceOf(RamLayoutError);
  const m = /needs (\d+) bytes/.exec((err as Error).message);
  expect(m, (err as Error).message).not.toBeNull();
  return Number(m![1]);
}

function planError(algo: FlashAlgorithm, region: RamRegion, options = {}): unknown {
  try {
    planRamLayout(algo, region, options);
  } catch (err) {
    return err;
  }
  throw new Error(`planRamLayout fitted ${algo.name} into ${region.size} bytes`);
}

describe('planRamLayout', () => {
  it('lays nor-sim.flm out in the qemu-an547 board RAM: helpers, algorithm, then CRC table, stack and two buffers sharing the rest, on data pages', () => {
    const region = { start: 0x21000000, size: 0x40000 };
    const layout = planRamLayout(norSim, region);
    checkInvariants(layout, norSim);
    expect(layout.helpers).toBe(0x21000000);
    expect(layout.algorithm).toBe(0x21000000 + Math.ceil(TARGET_CODE.length / 8) * 8);
    expect(layout.staticBase).toBe(layout.algorithm + norSim.staticBaseOffset!);
    // Data starts on the first 1 KiB page after the code (where depends on the helpers' size).
    expect(layout.crcTable).toBe(Math.ceil((layout.algorithm + norSim.blob.length) / LAYOUT_PAGE) * LAYOUT_PAGE);
    expect(layout.stackTop - layout.stackBottom).toBe(DEFAULT_STACK + HELPER_STACK);
    // 256 KiB of RAM cannot hold two 256 KiB buffers: each takes what is left, in whole pages.
    expect(layout.buffers.map((b) => b.size)).toEqual([117760, 117760]);
    expect(layout.buffers[0]!.size).toBeLessThan(DEFAULT_MAX_BUFFER);
    expect(layout.buffers.map((b) => b.tableEntries)).toEqual([MAX_TABLE_ENTRIES, MAX_TABLE_ENTRIES]);
    expect(describeLayout(layout)).toMatchInlineSnapshot(`
      "algorithm at 0x210005b8, static base 0x21000894, trap 0x21002448
        helpers    0x21000000  1460 bytes
        algorithm  0x210005b8  764 bytes
        crc table  0x21000c00  1024 bytes
        stack      0x21001000  4160 bytes
        trap page  0x21002400  128 bytes
        buffer 0   0x21002800  125952 bytes
        buffer 1   0x21021400  125952 bytes"
    `);
  });

  it('keeps code and data on separate 1 KiB pages, buffers a multiple of the page size, every table ending where its data starts (any region, blob, page size)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0x3fff }).map((n) => 0x20000000 + n * 4),
        fc.integer({ min: 0x3000, max: 0x80000 }),
        fc.integer({ min: 4, max: 0x3000 }),
        fc.constantFrom(4, 64, 256, 512, 1024, 4096),
        fc.integer({ min: 1, max: 4 }),
        (start, size, blob, pageSize, buffers) => {
          const algo = algorithm({ blob, pageSize });
          let layout: RamLayout;
          try {
            layout = planRamLayout(algo, { start, size }, { buffers, tableEntries: 16 });
          } catch (err) {
            neededBytes(err);
            return;
          }
          checkInvariants(layout, algo);
        },
      ),
    );
  });

  it('takes the largest buffers that fit, up to 64 KiB, when the region is tight', () => {
    const layout = planRamLayout(norSim, { start: 0x20000000, size: 0x6000 }, { buffers: 2, tableEntries: 8 });
    checkInvariants(layout, norSim);
    const end = layout.buffers[1]!.address + layout.buffers[1]!.size;
    // One more page per buffer would not fit.
    expect(end + 2 * norSim.geometry.pageSize).toBeGreaterThan(0x20006000);
  });

  it('rounds a requested buffer size down to whole pages and refuses one smaller than a page', () => {
    const layout = planRamLayout(norSim, { start: 0x20000000, size: 0x40000 }, { bufferSize: 1000 });
    expect(layout.buffers[0]!.size).toBe(768);
    expect(() => planRamLayout(norSim, { start: 0x20000000, size: 0x40000 }, { bufferSize: 255 })).toThrow(/cannot hold one flash page \(256 bytes\)/);
  });

  it('honours the number of buffers and of table entries, and refuses nonsense counts', () => {
    const layout = planRamLayout(norSim, { start: 0x20000000, size: 0x40000 }, { buffers: 3, tableEntries: 64 });
    checkInvariants(layout, norSim);
    expect(layout.buffers).toHaveLength(3);
    expect(layout.buffers[0]!.address - layout.buffers[0]!.tableArea).toBe(64 * ENTRY_SIZE);
    for (const bad of [{ buffers: 0 }, { tableEntries: 0 }, { buffers: 1.5 }, { stackSize: -8 }]) {
      expect(() => planRamLayout(norSim, { start: 0x20000000, size: 0x40000 }, bad)).toThrow(RamLayoutError);
    }
  });

  it('refuses a region start that is not 4-byte aligned, and an empty region', () => {
    expect(() => planRamLayout(norSim, { start: 0x20000002, size: 0x40000 })).toThrow(/not 4-byte aligned/);
    expect(() => planRamLayout(norSim, { start: 0x20000000, size: 0 })).toThrow(RamLayoutError);
  });
});

describe('a region that is too small', () => {
  it('throws RamLayoutError saying how many bytes are needed, and that many bytes are enough', () => {
    const region = { start: 0x20000000, size: 0x1000 };
    const err = planError(norSim, region);
    const need = neededBytes(err);
    expect((err as RamLayoutError).message).toMatch(/^The RAM region 0x20000000\.\.0x20000fff \(4096 bytes\) is too small for 'rspflash NOR simulator/);
    expect((err as RamLayoutError).message).toMatch(/stack 4160, 2 buffer\(s\) of 256 \+ 256 bytes of batch table/);
    expect((err as RamLayoutError).hint).toMatch(/`ram`/);
    checkInvariants(planRamLayout(norSim, { ...region, size: need }), norSim);
    expect(neededBytes(planError(norSim, { ...region, size: need - 1 }))).toBe(need);
  });

  it('gives the exact figure for any algorithm, start, stack, buffers and requested buffer size', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0x3fff }).map((n) => 0x20000000 + n * 4),
        fc.integer({ min: 64, max: 0x4000 }),
        fc.integer({ min: 4, max: 0x3000 }),
        fc.constantFrom(64, 256, 1024),
        fc.record(
          { buffers: fc.integer({ min: 1, max: 3 }), tableEntries: fc.integer({ min: 1, max: 300 }), stackSize: fc.integer({ min: 8, max: 0x3000 }) },
          { requiredKeys: ['buffers', 'stackSize'] },
        ),
        fc.option(fc.integer({ min: 1024, max: 0x20000 }), { nil: undefined }),
        (start, size, blob, pageSize, options, bufferSize) => {
          const algo = algorithm({ blob, pageSize });
          const opts = bufferSize === undefined ? options : { ...options, bufferSize };
          let need: number;
          try {
            planRamLayout(algo, { start, size }, opts);
            return;
          } catch (err) {
            need = neededBytes(err);
          }
          expect(need).toBeGreaterThan(size);
          const layout = planRamLayout(algo, { start, size: need }, opts);
          checkInvariants(layout, algo);
          if (bufferSize !== undefined) expect(layout.buffers[0]!.size).toBe(Math.floor(bufferSize / pageSize) * pageSize);
          expect(neededBytes(planError(algo, { start, size: need - 1 }, opts))).toBe(need);
        },
      ),
    );
  });

  it('also when the requested buffers, not the code, are what does not fit', () => {
    const err = planError(norSim, { start: 0x20000000, size: 0x40000 }, { bufferSize: 0x20000 });
    const need = neededBytes(err);
    expect((err as Error).message).toMatch(/2 buffer\(s\) of 131072 \+ \d+ bytes of batch table/);
    expect(planRamLayout(norSim, { start: 0x20000000, size: need }, { bufferSize: 0x20000 }).buffers[1]!.size).toBe(0x20000);
  });
});

describe('fixed-address algorithms', () => {
  const region = { start: 0x20000000, size: 0x20000 };

  it('outside the region: loaded where it must be, helpers and data in the region, its RAM saved as a second span', () => {
    const algo = algorithm({ loadAddress: 0x10000000, blob: 0x900 });
    const layout = planRamLayout(algo, region);
    checkInvariants(layout, algo);
    expect(layout.algorithm).toBe(0x10000000);
    expect(layout.staticBase).toBe(0x10000040);
    expect(layout.helpers).toBe(0x20000000);
    // Nothing of the algorithm in the region: data right after the helpers' page(s).
    expect(layout.crcTable).toBe(0x20000000 + Math.ceil(TARGET_CODE.length / LAYOUT_PAGE) * LAYOUT_PAGE);
    expect(layout.used).toEqual([
      { start: 0x20000000, end: layout.buffers[1]!.address + layout.buffers[1]!.size },
      { start: 0x10000000, end: 0x10000900 },
    ]);
  });

  it('at the start of the region: the helpers go after it', () => {
    const algo = algorithm({ loadAddress: 0x20000000, blob: 0x8f8 });
    const layout = planRamLayout(algo, region);
    checkInvariants(layout, algo);
    expect(layout.algorithm).toBe(0x20000000);
    expect(layout.helpers).toBe(0x200008f8);
    expect(layout.crcTable).toBe(Math.ceil((0x200008f8 + TARGET_CODE.length) / LAYOUT_PAGE) * LAYOUT_PAGE);
    expect(layout.used[0]!.start).toBe(0x20000000);
  });

  it('inside the region with room before it: the helpers go first, the data after the algorithm', () => {
    const algo = algorithm({ loadAddress: 0x20001000, blob: 0x200 });
    const layout = planRamLayout(algo, region);
    checkInvariants(layout, algo);
    expect(layout.helpers).toBe(0x20000000);
    expect(layout.crcTable).toBe(0x20001400);
  });

  it('starting below the region and reaching into it: loaded there, everything else after it', () => {
    const algo = algorithm({ loadAddress: 0x1ffffc00, blob: 0x800 });
    const layout = planRamLayout(algo, region);
    checkInvariants(layout, algo);
    expect(layout.helpers).toBe(0x20000400);
    expect(layout.used).toEqual([{ start: 0x1ffffc00, end: layout.buffers[1]!.address + layout.buffers[1]!.size }]);
  });

  it('too big for the region it insists on: RamLayoutError with the bytes needed', () => {
    const algo = algorithm({ loadAddress: 0x20000000, blob: 0x1f000 });
    expect(neededBytes(planError(algo, region))).toBeGreaterThan(region.size);
  });
});

describe('stack size', () => {
  const region = { start: 0x20000000, size: 0x40000 };

  it("is the algorithm's own request (probe-rs stack_size) plus room for the sequencer's frame", () => {
    expect(norSimYaml.stackSize).toBe(2048);
    const layout = planRamLayout(norSimYaml, region);
    expect(layout.stackTop - layout.stackBottom).toBe(2048 + HELPER_STACK);
  });

  it('defaults to 4 KiB when the algorithm does not say (FLM), and the option wins over both', () => {
    expect(norSim.stackSize).toBeUndefined();
    const size = (algo: FlashAlgorithm, options = {}) => {
      const l = planRamLayout(algo, region, options);
      return l.stackTop - l.stackBottom;
    };
    expect(size(norSim)).toBe(DEFAULT_STACK + HELPER_STACK);
    expect(size(norSim, { stackSize: 8192 })).toBe(8192 + HELPER_STACK);
    expect(size(norSimYaml, { stackSize: 100 })).toBe(Math.ceil((100 + HELPER_STACK) / 8) * 8);
  });

  it('fits the qemu-microbit board RAM (12 KiB after the boot stack) for the nRF51 NVMC algorithm, with smaller batch tables', () => {
    const layout = planRamLayout(nvmc, BOARDS['qemu-microbit']!.ram);
    checkInvariants(layout, nvmc);
    expect(layout.buffers).toHaveLength(2);
    expect(layout.buffers[0]!.size % 1024).toBe(0);
    expect(layout.buffers[0]!.tableEntries).toBeGreaterThanOrEqual(MIN_TABLE_ENTRIES);
    expect(layout.buffers[0]!.tableEntries).toBeLessThan(MAX_TABLE_ENTRIES);
  });
});
