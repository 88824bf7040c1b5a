import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { planFlash } from '../../lib/flash/plan.js';
import type { FlashPlan, PlanOptions, PlannedSector } from '../../lib/flash/plan.js';
import { formatBytes, formatPlan, planToJSON } from '../../lib/flash/plan-format.js';
import { OutOfFlashError, RspflashError, UsageError } from '../../lib/errors.js';
import { sectorAt, sectorCount } from '../../lib/algo/algorithm.js';
import type { FlashGeometry, SectorRun } from '../../lib/algo/algorithm.js';
import { createImage } from '../../lib/image/image.js';
import type { Image } from '../../lib/image/image.js';
import { ALIF_OSPI1, STM32F4_1MIB } from '../helpers/geometries.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A tiny device to reason about by hand: 4 sectors of 64 B, 16 B pages, at 0x1000. */
const tiny: FlashGeometry = {
  start: 0x1000,
  size: 256,
  pageSize: 16,
  erasedValue: 0xff,
  sectors: [{ address: 0x1000, size: 64, count: 4 }],
};

/** Bytes that are never the erased value 0xff: 0x00, 0x01, … */
function bytes(length: number, seed = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i + seed) % 0xff);
}

function image(...pieces: [address: number, data: Uint8Array][]): Image {
  return createImage(pieces.map(([address, data]) => ({ address, data })));
}

function sectorSummary(plan: FlashPlan) {
  return plan.sectors.map((s) => ({ address: s.address, index: s.index, size: s.size, ranges: s.ranges, keep: s.keep, pages: s.pages }));
}

describe('planFlash: what is erased and programmed', () => {
  it('erases only the sectors the image touches', () => {
    // 80 bytes from 0x1030: the last 16 bytes of sector 0 and all of sector 1; sectors 2 and 3 untouched.
    const plan = planFlash(image([0x1030, bytes(80)]), tiny);
    expect(plan.sectors.map((s) => s.index)).toEqual([0, 1]);
    expect(plan.erase.kind).toBe('sectors');
    expect(plan.totals.sectorsToErase).toBe(2);
    expect(plan.totals.bytesToErase).toBe(128);
  });

  it('keeps the bytes of a touched sector that the image does not cover', () => {
    const plan = planFlash(image([0x1030, bytes(80)]), tiny);
    expect(sectorSummary(plan)).toEqual([
      { address: 0x1000, index: 0, size: 64, ranges: [{ offset: 48, length: 16 }], keep: [{ offset: 0, length: 48 }], pages: [0, 16, 32, 48] },
      { address: 0x1040, index: 1, size: 64, ranges: [{ offset: 0, length: 64 }], keep: [], pages: [0, 16, 32, 48] },
    ]);
    expect(plan.totals.bytesToKeep).toBe(48);
  });

  it('splits a segment at sector boundaries and keeps the tail of the last sector', () => {
    const plan = planFlash(image([0x1030, bytes(100)]), tiny);
    // 0x1030 + 100 = 0x1094: 16 bytes in sector 0, 64 in sector 1, 20 in sector 2.
    expect(plan.sectors.map((s) => [s.index, s.ranges, s.keep])).toEqual([
      [0, [{ offset: 48, length: 16 }], [{ offset: 0, length: 48 }]],
      [1, [{ offset: 0, length: 64 }], []],
      [2, [{ offset: 0, length: 20 }], [{ offset: 20, length: 44 }]],
    ]);
    expect(plan.totals.bytesToKeep).toBe(48 + 44);
  });

  it('fills the bytes the image does not cover with the erased value, and reads nothing back, when preserve is off', () => {
    const plan = planFlash(image([0x1004, bytes(8)]), tiny, { preserve: false });
    const [sector] = plan.sectors;
    expect(sector!.keep).toEqual([]);
    expect(sector!.pages).toEqual([0]);
    expect(Array.from(sector!.data.subarray(0, 16))).toEqual([0xff, 0xff, 0xff, 0xff, ...bytes(8), 0xff, 0xff, 0xff, 0xff]);
    expect(sector!.data.subarray(16).every((b) => b === 0xff)).toBe(true);
    expect(plan.totals.bytesToKeep).toBe(0);
  });

  it('does not program a page whose bytes are all the erased value', () => {
    const data = bytes(64);
    data.fill(0xff, 16, 48); // pages 1 and 2 of the sector are blank
    const plan = planFlash(image([0x1000, data]), tiny);
    expect(plan.sectors[0]!.pages).toEqual([0, 48]);
    expect(plan.totals.pagesToProgram).toBe(2);
    expect(plan.totals.bytesToProgram).toBe(32);
  });

  it('programs a page holding kept bytes even when its image bytes are all the erased value', () => {
    // 8 bytes of 0xff at offset 4: the page also holds 8 kept bytes whose value is unknown until read back.
    const plan = planFlash(image([0x1004, new Uint8Array(8).fill(0xff)]), tiny);
    expect(plan.sectors[0]!.pages).toEqual([0, 16, 32, 48]);
    const withoutPreserve = planFlash(image([0x1004, new Uint8Array(8).fill(0xff)]), tiny, { preserve: false });
    expect(withoutPreserve.sectors[0]!.pages).toEqual([]);
  });

  it('still erases a sector whose image bytes are all the erased value (the flash may hold something else)', () => {
    const plan = planFlash(image([0x1040, new Uint8Array(64).fill(0xff)]), tiny);
    expect(plan.sectors.map((s) => [s.index, s.pages])).toEqual([[1, []]]);
    expect(plan.totals.sectorsToErase).toBe(1);
    expect(plan.totals.pagesToProgram).toBe(0);
  });

  it('lists every image-covered range of a sector that several segments share', () => {
    const plan = planFlash(image([0x1002, bytes(3)], [0x1010, bytes(4)], [0x1030, bytes(1)]), tiny, { preserve: true });
    expect(plan.sectors[0]!.ranges).toEqual([
      { offset: 2, length: 3 },
      { offset: 16, length: 4 },
      { offset: 48, length: 1 },
    ]);
    expect(plan.sectors[0]!.keep).toEqual([
      { offset: 0, length: 2 },
      { offset: 5, length: 11 },
      { offset: 20, length: 28 },
      { offset: 49, length: 15 },
    ]);
  });

  it('uses the erased value of the device, not 0xff, for gaps and blank pages', () => {
    const zeroErased: FlashGeometry = { ...tiny, erasedValue: 0x00 };
    const data = new Uint8Array(32).fill(0xff);
    data.fill(0x00, 16); // second page blank for this device
    const plan = planFlash(image([0x1000, data]), zeroErased, { preserve: false });
    expect(plan.sectors[0]!.pages).toEqual([0]);
    expect(plan.sectors[0]!.data.subarray(32).every((b) => b === 0)).toBe(true);
  });

  it('follows non-uniform sector runs (STM32F4: 4 × 16 KiB, 64 KiB, 7 × 128 KiB)', () => {
    // From 0x0800_8000 (sector 2) to 0x0802_1000 (1 page into sector 5).
    const plan = planFlash(image([0x0800_8000, bytes(0x1_9000)]), STM32F4_1MIB);
    expect(plan.sectors.map((s) => [s.index, s.address.toString(16), s.size / KiB, s.keep])).toEqual([
      [2, '8008000', 16, []],
      [3, '800c000', 16, []],
      [4, '8010000', 64, []],
      [5, '8020000', 128, [{ offset: 0x1000, length: 128 * KiB - 0x1000 }]],
    ]);
    expect(plan.sectors[3]!.pages).toHaveLength(128); // 4 image pages + 124 pages to restore
  });

  it('plans an empty image as nothing to do', () => {
    const plan = planFlash({ segments: [] }, ALIF_OSPI1);
    expect(plan.sectors).toEqual([]);
    expect(plan.erase).toEqual({ kind: 'none', reason: 'nothing to erase: the image is empty' });
    expect(plan.totals).toEqual({
      imageBytes: 0,
      segments: 0,
      sectorsTouched: 0,
      sectorsToErase: 0,
      bytesToErase: 0,
      pagesToProgram: 0,
      bytesToProgram: 0,
      bytesToKeep: 0,
    });
  });

  it('counts totals over the whole plan', () => {
    const plan = planFlash(image([0x1030, bytes(100)], [0x10f0, bytes(16)]), tiny);
    expect(plan.totals).toEqual({
      imageBytes: 116,
      segments: 2,
      sectorsTouched: 4,
      sectorsToErase: 4,
      bytesToErase: 256,
      pagesToProgram: 16,
      bytesToProgram: 256,
      bytesToKeep: 48 + 44 + 48,
    });
  });
});

describe('planFlash: images outside the flash', () => {
  it('refuses an image that ends past the flash, printing both ranges', () => {
    const act = () => planFlash(image([0xc000_0000, bytes(16)], [0xc1ff_ff00, bytes(0x200)]), ALIF_OSPI1);
    expect(act).toThrow(OutOfFlashError);
    expect(act).toThrow(
      'image 0xc0000000–0xc20000ff lies outside flash 0xc0000000–0xc1ffffff (256 bytes past the end); ' +
        'first segment outside: 0xc1ffff00–0xc20000ff (512 bytes)',
    );
  });

  it('refuses an image that starts before the flash, naming the offending segment in the error fields', () => {
    let error: unknown;
    try {
      planFlash(image([0x0000_0000, bytes(0x100)]), ALIF_OSPI1);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(OutOfFlashError);
    const e = error as OutOfFlashError;
    expect(e.code).toBe('RSPFLASH_OUT_OF_FLASH');
    expect(e.message).toBe(
      'image 0x00000000–0x000000ff lies outside flash 0xc0000000–0xc1ffffff (3221225472 bytes before the start); ' +
        'first segment outside: 0x00000000–0x000000ff (256 bytes)',
    );
    expect([e.address, e.length]).toEqual([0, 0x100]);
    expect(e.hint).toMatch(/`base`/);
  });

  it('accepts an image that ends exactly at the end of the flash', () => {
    const plan = planFlash(image([0xc1ff_ff00, bytes(0x100)]), ALIF_OSPI1);
    expect(plan.sectors.map((s) => s.index)).toEqual([8191]);
  });
});

describe('planFlash: memory', () => {
  it('gives a sector that one segment covers as a view into the image, copying only partly covered sectors', () => {
    const data = bytes(3 * 64 + 8);
    const plan = planFlash(image([0x1000, data]), tiny);
    expect(plan.sectors.map((s) => s.data.buffer === data.buffer)).toEqual([true, true, true, false]);
    expect(plan.sectors[1]!.data.byteOffset).toBe(data.byteOffset + 64);
  });

  it('plans a 32 MiB image filling the Alif flash without copying it', () => {
    const data = new Uint8Array(32 * MiB).fill(0xff); // worst case for the blank-page scan
    data.fill(0x5a, 0, 4 * KiB);
    const started = performance.now();
    const plan = planFlash(image([0xc000_0000, data]), ALIF_OSPI1);
    const elapsed = performance.now() - started;
    expect(plan.sectors).toHaveLength(8192);
    expect(plan.sectors.every((s) => s.data.buffer === data.buffer)).toBe(true);
    expect(plan.totals.pagesToProgram).toBe(16);
  });
});

describe('planFlash: chip erase decision', () => {
  /** 4 sectors of 64 B, all touched. */
  const whole = () => image([0x1000, bytes(256)]);
  const partial = () => image([0x1000, bytes(100)]);

  it('never chooses chip erase automatically without an erase-time estimate', () => {
    const plan = planFlash(whole(), tiny);
    expect(plan.erase).toEqual({
      kind: 'sectors',
      reason: 'sector erase: the image touches all 4 sectors, but without both erase-time estimates chip erase is never chosen automatically',
    });
  });

  it('chooses chip erase when the image touches every sector and erasing them one by one is slower', () => {
    const plan = planFlash(whole(), tiny, { estimate: { sectorEraseMs: 50, chipEraseMs: 150 } });
    expect(plan.erase).toEqual({
      kind: 'chip',
      reason: 'chip erase: the image touches all 4 sectors and erasing them one by one (4 × 50 ms = 200 ms) is slower than chip erase (150 ms)',
    });
    expect(plan.totals.sectorsToErase).toBe(0);
    expect(plan.totals.bytesToErase).toBe(256);
  });

  it('keeps sector erase when it is estimated no slower than chip erase', () => {
    const plan = planFlash(whole(), tiny, { estimate: { sectorEraseMs: 50, chipEraseMs: 200 } });
    expect(plan.erase.kind).toBe('sectors');
    expect(plan.erase.reason).toBe(
      'sector erase: the image touches all 4 sectors, but erasing them one by one (4 × 50 ms = 200 ms) is not slower than chip erase (200 ms)',
    );
  });

  it('never auto-chooses chip erase while the image leaves sectors untouched, however fast chip erase is', () => {
    const plan = planFlash(partial(), tiny, { estimate: { sectorEraseMs: 1000, chipEraseMs: 1 } });
    expect(plan.erase).toEqual({
      kind: 'sectors',
      reason: 'sector erase: the image touches 2 of 4 sectors; chip erase would also erase the other 2',
    });
  });

  it("uses sector erase when chip erase is 'never'", () => {
    const plan = planFlash(whole(), tiny, { chipErase: 'never', estimate: { sectorEraseMs: 1000, chipEraseMs: 1 } });
    expect(plan.erase).toEqual({ kind: 'sectors', reason: 'sector erase requested (chip erase disabled): the image touches 4 of 4 sectors' });
  });

  it("refuses chip erase 'always' with preserve when the image leaves sectors untouched", () => {
    const act = () => planFlash(partial(), tiny, { chipErase: 'always' });
    expect(act).toThrow(UsageError);
    expect(act).toThrow(
      'chip erase would also erase the 2 sectors the image does not touch (it touches 2 of 4), whose content `preserve` promises to keep',
    );
  });

  it("allows chip erase 'always' with preserve when the image touches every sector, still reading back the uncovered bytes", () => {
    const plan = planFlash(image([0x1000, bytes(4)], [0x1040, bytes(192)]), tiny, { chipErase: 'always' });
    expect(plan.erase).toEqual({
      kind: 'chip',
      reason: 'chip erase requested; the image touches all 4 sectors; the 60 bytes it does not cover in them are read back first',
    });
    expect(plan.sectors[0]!.keep).toEqual([{ offset: 4, length: 60 }]);
  });

  it("wipes the untouched sectors with chip erase 'always' when preserve is off, and says so", () => {
    const plan = planFlash(partial(), tiny, { chipErase: 'always', preserve: false });
    expect(plan.erase).toEqual({
      kind: 'chip',
      reason: 'chip erase requested; preserve is off, so the 2 sectors the image does not touch are left erased',
    });
    expect(plan.totals.bytesToErase).toBe(256);
  });

});

describe('planFlash: invalid input', () => {
  const whole = () => image([0x1000, bytes(256)]);

  it('rejects options that are not what they claim', () => {
    expect(() => planFlash(whole(), tiny, { chipErase: 'sometimes' } as unknown as PlanOptions)).toThrow(
      `chipErase must be 'auto', 'always' or 'never', not "sometimes"`,
    );
    expect(() => planFlash(whole(), tiny, { estimate: { sectorEraseMs: -1 } })).toThrow(
      'estimate.sectorEraseMs must be a non-negative number of milliseconds, not -1',
    );
  });

  it('rejects a hand-built image whose segments are out of order', () => {
    const unsorted: Image = { segments: [{ address: 0x1040, data: bytes(4) }, { address: 0x1000, data: bytes(4) }] };
    expect(() => planFlash(unsorted, tiny)).toThrow(
      'image segments must be sorted and must not overlap: the segment at 0x00001000 starts before the previous one ends (0x00001044)',
    );
  });

  it('rejects an inconsistent geometry before planning', () => {
    const broken: FlashGeometry = { ...tiny, sectors: [{ address: 0x1000, size: 64, count: 3 }] };
    expect(() => planFlash(whole(), broken)).toThrow(RspflashError);
  });
});

describe('formatPlan: the layout at a glance', () => {
  it('shows a small image at the start of the Alif OSPI flash and the untouched rest', () => {
    // 10000 bytes: 2 full sectors + 1808 bytes of the third.
    const plan = planFlash(image([0xc000_0000, bytes(10_000)]), ALIF_OSPI1);
    expect(formatPlan(plan)).toMatchInlineSnapshot(`
      "flash   0xc0000000–0xc1ffffff  32 MiB, 8192 sectors, 256 B pages, erased value 0xff
      image   0xc0000000–0xc000270f  9.8 KiB in 1 segment

        0xc0000000–0xc0001fff     2 × 4 KiB  erase+program  program 8 KiB
        0xc0002000–0xc0002fff     1 × 4 KiB  erase+program  program 4 KiB, keep 2.2 KiB
        0xc0003000–0xc1ffffff  8189 × 4 KiB  untouched

      erase   sector erase: the image touches 3 of 8192 sectors; chip erase would also erase the other 8189
      totals  erase 3 sectors (12 KiB), program 48 pages (12 KiB), read back 2.2 KiB"
    `);
  });

  it('shows a sparse image with holes: a header, a blank sector, a tail with kept bytes', () => {
    const blank = new Uint8Array(4 * KiB).fill(0xff);
    const plan = planFlash(
      image(
        [0xc000_0000, bytes(256)], // header page
        [0xc001_0000, bytes(64 * KiB)], // 16 full sectors
        [0xc002_0000, blank], // a sector the image wants blank
        [0xc100_0800, bytes(100)], // a few bytes in the middle of a sector
      ),
      ALIF_OSPI1,
    );
    expect(formatPlan(plan)).toMatchInlineSnapshot(`
      "flash   0xc0000000–0xc1ffffff  32 MiB, 8192 sectors, 256 B pages, erased value 0xff
      image   0xc0000000–0xc1000863  68.3 KiB in 3 segments

        0xc0000000–0xc0000fff     1 × 4 KiB  erase+program  program 4 KiB, keep 3.8 KiB
        0xc0001000–0xc000ffff    15 × 4 KiB  untouched
        0xc0010000–0xc001ffff    16 × 4 KiB  erase+program  program 64 KiB
        0xc0020000–0xc0020fff     1 × 4 KiB  erase          image bytes here are all the erased value
        0xc0021000–0xc0ffffff  4063 × 4 KiB  untouched
        0xc1000000–0xc1000fff     1 × 4 KiB  erase+program  program 4 KiB, keep 3.9 KiB
        0xc1001000–0xc1ffffff  4095 × 4 KiB  untouched

      erase   sector erase: the image touches 19 of 8192 sectors; chip erase would also erase the other 8173
      totals  erase 19 sectors (76 KiB), program 288 pages (72 KiB), read back 7.7 KiB"
    `);
  });

  it('shows non-uniform STM32F4 sectors', () => {
    const plan = planFlash(image([0x0800_0000, bytes(0x1_9000)]), STM32F4_1MIB, { preserve: false });
    expect(formatPlan(plan)).toMatchInlineSnapshot(`
      "flash   0x08000000–0x080fffff  1 MiB, 12 sectors, 1 KiB pages, erased value 0xff
      image   0x08000000–0x08018fff  100 KiB in 1 segment

        0x08000000–0x0800ffff   4 × 16 KiB  erase+program  program 64 KiB
        0x08010000–0x0801ffff   1 × 64 KiB  erase+program  program 36 KiB
        0x08020000–0x080fffff  7 × 128 KiB  untouched

      erase   sector erase: the image touches 5 of 12 sectors; chip erase would also erase the other 7
      totals  erase 5 sectors (128 KiB), program 100 pages (100 KiB)"
    `);
  });

  it('shows the sectors a chip erase wipes', () => {
    const plan = planFlash(image([0x0800_0000, bytes(0x8000)]), STM32F4_1MIB, { chipErase: 'always', preserve: false });
    expect(formatPlan(plan)).toMatchInlineSnapshot(`
      "flash   0x08000000–0x080fffff  1 MiB, 12 sectors, 1 KiB pages, erased value 0xff
      image   0x08000000–0x08007fff  32 KiB in 1 segment

        0x08000000–0x08007fff   2 × 16 KiB  erase+program  program 32 KiB
        0x08008000–0x0800ffff   2 × 16 KiB  wiped
        0x08010000–0x0801ffff   1 × 64 KiB  wiped
        0x08020000–0x080fffff  7 × 128 KiB  wiped

      erase   chip erase requested; preserve is off, so the 10 sectors the image does not touch are left erased
      totals  erase chip (1 MiB), program 32 pages (32 KiB)"
    `);
  });

  it('sums up the rows past maxRows in one line', () => {
    const pieces: [number, Uint8Array][] = [];
    for (let i = 0; i < 10; i++) pieces.push([0xc000_0000 + i * 0x2000, bytes(4 * KiB)]);
    const plan = planFlash(image(...pieces), ALIF_OSPI1);
    expect(formatPlan(plan, { maxRows: 4 })).toMatchInlineSnapshot(`
      "flash   0xc0000000–0xc1ffffff  32 MiB, 8192 sectors, 256 B pages, erased value 0xff
      image   0xc0000000–0xc0012fff  40 KiB in 10 segments

        0xc0000000–0xc0000fff  1 × 4 KiB  erase+program  program 4 KiB
        0xc0001000–0xc0001fff  1 × 4 KiB  untouched
        0xc0002000–0xc0002fff  1 × 4 KiB  erase+program  program 4 KiB
        0xc0003000–0xc0003fff  1 × 4 KiB  untouched
        … 16 more rows (8188 sectors) up to 0xc1ffffff

      erase   sector erase: the image touches 10 of 8192 sectors; chip erase would also erase the other 8182
      totals  erase 10 sectors (40 KiB), program 160 pages (40 KiB)"
    `);
  });

  it('prints byte counts exactly when they divide, with one decimal otherwise', () => {
    expect([255, 1024, 1536, 10_000, MiB, 32 * MiB, MiB + 1].map(formatBytes)).toEqual([
      '255 B',
      '1 KiB',
      '1.5 KiB',
      '9.8 KiB',
      '1 MiB',
      '32 MiB',
      '1.0 MiB',
    ]);
  });
});

describe('planToJSON', () => {
  it('is JSON-safe: no byte arrays, addresses as numbers and hex strings, pages as runs', () => {
    const plan = planFlash(image([0xc000_0000, bytes(300)]), ALIF_OSPI1);
    const json = planToJSON(plan);
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
    expect(json.flash).toMatchObject({ start: 0xc000_0000, startHex: '0xc0000000', last: 0xc1ff_ffff, lastHex: '0xc1ffffff', sectorCount: 8192 });
    expect(json.image).toEqual({ start: 0xc000_0000, startHex: '0xc0000000', last: 0xc000_012b, lastHex: '0xc000012b' });
    expect(json.sectors).toEqual([
      {
        index: 0,
        address: 0xc000_0000,
        addressHex: '0xc0000000',
        size: 4096,
        action: 'erase+program',
        ranges: [{ offset: 0, length: 300 }],
        keep: [{ offset: 300, length: 4096 - 300 }],
        pages: [{ offset: 0, count: 16 }],
        pageCount: 16,
      },
    ]);
    expect(json.totals).toEqual(plan.totals);
    expect(json.erase).toEqual(plan.erase);
  });

  it('gives a null image for an empty plan', () => {
    expect(planToJSON(planFlash({ segments: [] }, tiny)).image).toBeNull();
  });
});

// ---------------------------------------------------------------------------
// Properties: run the plan on a simulated NOR flash and compare with what the
// user asked for.

const geometryArb: fc.Arbitrary<FlashGeometry> = fc
  .record({
    start: fc.integer({ min: 0, max: 0xffff }).map((n) => n * 0x100),
    pageSize: fc.constantFrom(4, 8, 16, 32),
    runs: fc.array(fc.record({ pages: fc.constantFrom(1, 2, 4, 8), count: fc.integer({ min: 1, max: 6 }) }), { minLength: 1, maxLength: 4 }),
    erasedValue: fc.constantFrom(0xff, 0x00),
  })
  .map(({ start, pageSize, runs, erasedValue }) => {
    const sectors: SectorRun[] = [];
    let address = start;
    for (const run of runs) {
      sectors.push({ address, size: run.pages * pageSize, count: run.count });
      address += run.pages * pageSize * run.count;
    }
    return { start, size: address - start, pageSize, erasedValue, sectors };
  });

/** Segments laid out inside the device, never overlapping or adjacent; -1 stands for the erased value. */
function imageArb(geometry: FlashGeometry): fc.Arbitrary<Image> {
  const byte = fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 255 }));
  return fc
    .array(fc.record({ gap: fc.integer({ min: 0, max: 80 }), data: fc.array(byte, { minLength: 1, maxLength: 120 }) }), { maxLength: 6 })
    .map((pieces) => {
      const segments = [];
      let address = geometry.start;
      const end = geometry.start + geometry.size;
      for (const [i, piece] of pieces.entries()) {
        address += piece.gap + (i === 0 ? 0 : 1);
        const length = Math.min(piece.data.length, end - address);
        if (length <= 0) break;
        const data = Uint8Array.from(piece.data.slice(0, length), (b) => (b < 0 ? geometry.erasedValue : b));
        segments.push({ address, data });
        address += length;
      }
      return { segments };
    });
}

const optionsArb: fc.Arbitrary<PlanOptions> = fc.record({
  preserve: fc.boolean(),
  chipErase: fc.constantFrom('auto' as const, 'always' as const, 'never' as const),
  estimate: fc.record({ sectorEraseMs: fc.integer({ min: 0, max: 100 }), chipEraseMs: fc.integer({ min: 0, max: 1000 }) }, { requiredKeys: [] }),
});

/** Runs `plan` on a NOR flash holding `before`: read back, erase, program. Returns the content after. */
function simulate(plan: FlashPlan, before: Uint8Array): Uint8Array {
  const g = plan.geometry;
  const flash = before.slice();
  const at = (address: number) => address - g.start;
  const saved = plan.sectors.map((s) => s.keep.map((r) => before.slice(at(s.address + r.offset), at(s.address + r.offset + r.length))));
  if (plan.erase.kind === 'chip') flash.fill(g.erasedValue);
  else for (const s of plan.sectors) flash.fill(g.erasedValue, at(s.address), at(s.address + s.size));
  plan.sectors.forEach((s: PlannedSector, i) => {
    const content = s.data.slice();
    s.keep.forEach((r, k) => content.set(saved[i]![k]!, r.offset));
    for (const page of s.pages) {
      const target = flash.subarray(at(s.address + page), at(s.address + page + g.pageSize));
      if (!target.every((b) => b === g.erasedValue)) throw new Error(`page ${s.address + page} programmed twice or not erased`);
      target.set(content.subarray(page, page + g.pageSize));
    }
  });
  return flash;
}

describe('planFlash properties', () => {
  it('leaves the flash holding the image, the kept bytes, and untouched sectors as they were', () => {
    const caseArb = geometryArb.chain((geometry) => fc.tuple(fc.constant(geometry), imageArb(geometry), optionsArb, fc.integer({ min: 0, max: 255 })));
    fc.assert(
      fc.property(caseArb, ([geometry, img, options, seed]) => {
        const touched = new Set<number>();
        for (const seg of img.segments) for (let a = seg.address; a < seg.address + seg.data.length; a++) touched.add(sectorAt(geometry, a)!.index);

        let plan: FlashPlan;
        try {
          plan = planFlash(img, geometry, options);
        } catch (err) {
          // The one refusal: chip erase would lose sectors that preserve promises to keep.
          expect(err).toBeInstanceOf(UsageError);
          expect([options.chipErase, options.preserve, touched.size < sectorCount(geometry)]).toEqual(['always', true, true]);
          return;
        }

        // No sector is erased that the image does not touch (unless chip erase was chosen, which needs every sector touched or preserve off).
        expect(plan.sectors.map((s) => s.index)).toEqual([...touched].sort((a, b) => a - b));
        if (plan.erase.kind === 'chip' && options.chipErase !== 'always') expect(touched.size).toBe(sectorCount(geometry));

        // Every image byte lies in exactly one planned sector's ranges, with its value in that sector's data.
        for (const seg of img.segments) {
          seg.data.forEach((value, i) => {
            const address = seg.address + i;
            const owners = plan.sectors.filter((s) => s.ranges.some((r) => address >= s.address + r.offset && address < s.address + r.offset + r.length));
            expect(owners).toHaveLength(1);
            expect(owners[0]!.data[address - owners[0]!.address]).toBe(value);
          });
        }

        // After read back, erase and program, the flash holds exactly what was asked for.
        const before = Uint8Array.from({ length: geometry.size }, (_, i) => (i * 31 + seed) & 0xff);
        const after = simulate(plan, before);
        const expected = before.slice();
        const wipe = (address: number, size: number) => expected.fill(geometry.erasedValue, address - geometry.start, address - geometry.start + size);
        if (!options.preserve) for (const s of plan.sectors) wipe(s.address, s.size);
        if (plan.erase.kind === 'chip' && !options.preserve) wipe(geometry.start, geometry.size);
        for (const seg of img.segments) expected.set(seg.data, seg.address - geometry.start);
        const diff = after.findIndex((b, i) => b !== expected[i]);
        expect(diff, diff < 0 ? '' : `flash at 0x${(geometry.start + diff).toString(16)} holds ${after[diff]}, expected ${expected[diff]}`).toBe(-1);

        // Totals agree with the sectors.
        expect(plan.totals.pagesToProgram).toBe(plan.sectors.reduce((n, s) => n + s.pages.length, 0));
        expect(plan.totals.imageBytes).toBe(img.segments.reduce((n, s) => n + s.data.length, 0));
      }),
      { numRuns: 300 },
    );
  });
});
