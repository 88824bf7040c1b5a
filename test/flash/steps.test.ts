import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { planErase, planJob, planVerify, FIRST_RUN_SECTORS, MAX_SECTORS_PER_RUN, type JobTarget, type Step, type WriteStep } from '../../lib/flash/steps.js';
import { formatSteps, stepsToJSON } from '../../lib/flash/steps-format.js';
import { writeCalls, openFunction } from '../../lib/flash/write-run.js';
import { compareMethod, verifyMethod } from '../../lib/flash/checks.js';
import { UsageError } from '../../lib/errors.js';
import type { AlgorithmFunction, FlashGeometry } from '../../lib/algo/algorithm.js';
import { createImage, type Image } from '../../lib/image/image.js';
import { ALIF_OSPI1, STM32F4_1MIB } from '../helpers/geometries.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const CMSIS: AlgorithmFunction[] = ['Init', 'UnInit', 'EraseSector', 'ProgramPage', 'Verify'];

function target(geometry: FlashGeometry, options: Partial<Omit<JobTarget, 'routines'>> & { routines?: AlgorithmFunction[] } = {}): JobTarget {
  return {
    geometry,
    algorithm: 'test',
    memoryMapped: options.memoryMapped ?? true,
    routines: new Set(options.routines ?? CMSIS),
    transfer: options.transfer ?? { bufferSize: 64 * KiB, tableEntries: 64 },
    ...(options.estimate ? { estimate: options.estimate } : {}),
  };
}

function data(length: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => ((i * 7 + seed) % 251) & 0xff);
}

function image(...pieces: [address: number, bytes: Uint8Array][]): Image {
  return createImage(pieces.map(([address, d]) => ({ address, data: d })));
}

const kinds = (steps: readonly Step[]) => steps.map((s) => s.kind);
const writes = (steps: readonly Step[]) => steps.filter((s): s is WriteStep => s.kind === 'write');

describe('planJob: the steps of a program job', () => {
  it('compares first, then writes, and checks with Verify in the same runs (Alif geometry, memory mapped)', () => {
    const job = planJob(image([0xc000_0000, data(64 * KiB)]), target(ALIF_OSPI1));
    expect(kinds(job.steps)).toEqual(['compare', 'write', 'write']);
    expect(job.steps[0]).toMatchObject({ kind: 'compare', method: 'hash', bytes: 64 * KiB });
    expect(job.verify).toBe('algo');
    // The first run takes one sector (it measures the device); the second erases the other 15 (one entry, repeated)
    // and programs them (one piece).
    const w = writes(job.steps);
    expect(w.reduce((n, s) => n + s.erase.reduce((m, e) => m + e.count, 0), 0)).toBe(16);
    expect(w.reduce((n, s) => n + s.bytes, 0)).toBe(64 * KiB);
    for (const s of w) expect(s.entries).toBeLessThanOrEqual(64);
    expect(job.totals).toMatchObject({ sectorsTouched: 16, sectorsToErase: 16, pagesToProgram: 256, writeRuns: 2 });
    expect(w.map((r) => r.bytes)).toEqual([4 * KiB, 60 * KiB]);
    expect(w.map((r) => r.entries)).toEqual([9, 9]); // Init/EraseSector/UnInit, Init/ProgramPage/UnInit, Init/Verify/UnInit
  });

  it('erases a sector in the same run that programs its first page', () => {
    const job = planJob(image([0xc000_0000, data(256 * KiB)]), target(ALIF_OSPI1));
    for (const run of writes(job.steps)) {
      for (const e of run.erase) {
        const first = run.program.find((p) => p.address >= e.address && p.address < e.address + e.size * e.count);
        expect(first, `run erasing ${e.address.toString(16)} programs none of its pages`).toBeDefined();
      }
    }
  });

  it('never erases more than MAX_SECTORS_PER_RUN sectors in one run', () => {
    const job = planJob(image([0xc000_0000, new Uint8Array(2 * MiB).fill(0xff)]), target(ALIF_OSPI1, { routines: CMSIS }), { skipUnchanged: false });
    for (const run of writes(job.steps)) expect(run.erase.reduce((n, e) => n + e.count, 0)).toBeLessThanOrEqual(MAX_SECTORS_PER_RUN);
    // An all-erased image programs nothing: the erase already leaves it so.
    expect(job.totals.pagesToProgram).toBe(0);
  });

  it('after the compare, rewrites only the sectors that differ and says so', () => {
    const img = image([0xc000_0000, data(32 * KiB)]);
    const unchanged = new Set([0xc000_0000, 0xc000_1000, 0xc000_2000, 0xc000_4000, 0xc000_5000, 0xc000_6000, 0xc000_7000]);
    const job = planJob(img, target(ALIF_OSPI1), {}, { unchanged });
    expect(kinds(job.steps)).toEqual(['write']);
    const run = writes(job.steps)[0]!;
    expect(run.erase).toEqual([{ address: 0xc000_3000, size: 4 * KiB, count: 1, index: 3 }]);
    expect(run.program).toEqual([{ address: 0xc000_3000, length: 4 * KiB, offset: 0 }]);
    expect(job.unchanged).toHaveLength(7);
    expect(job.notes).toContain('compare: 7 of 8 touched sectors already hold the image');
  });

  it('declines a chip erase when the compare found unchanged sectors, with the reason', () => {
    const tiny: FlashGeometry = { start: 0x1000, size: 256, pageSize: 16, erasedValue: 0xff, sectors: [{ address: 0x1000, size: 64, count: 4 }] };
    const t = target(tiny, { routines: [...CMSIS, 'EraseChip'], estimate: { sectorEraseMs: 100, chipEraseMs: 50 } });
    const img = image([0x1000, data(256)]);
    expect(kinds(planJob(img, t, { skipUnchanged: false }).steps)).toEqual(['erase-chip', 'write', 'write']);
    const job = planJob(img, t, {}, { unchanged: new Set([0x1000]) });
    expect(kinds(job.steps)).toEqual(['write', 'write']); // three sectors: one in the first run, two in the next
    expect(job.erase.kind).toBe('sectors');
    expect(job.notes[0]).toBe('chip erase declined: 1 of 4 touched sectors unchanged');
  });

  it('reads back the bytes to keep before any run, and verifies the pages left erased', () => {
    // 100 bytes in the middle of sector 1 of the tiny flash: keep the rest of the sector.
    const tiny: FlashGeometry = { start: 0x1000, size: 256, pageSize: 16, erasedValue: 0xff, sectors: [{ address: 0x1000, size: 64, count: 4 }] };
    const job = planJob(image([0x1048, data(8)]), target(tiny), {}, { unchanged: new Set() });
    expect(kinds(job.steps)).toEqual(['keep', 'write']);
    expect(job.steps[0]).toMatchObject({ method: 'memory', ranges: [{ address: 0x1040, length: 8 }, { address: 0x1050, length: 48 }], bytes: 56 });
    // With preserve every page may hold kept bytes: all four are programmed, so nothing is left erased to check.
    expect(writes(job.steps)[0]!.program).toEqual([{ address: 0x1040, length: 64, offset: 0 }]);
  });

  it('checks the pages it left at the erased value (a wrong erased value must not pass)', () => {
    const tiny: FlashGeometry = { start: 0x1000, size: 256, pageSize: 16, erasedValue: 0x00, sectors: [{ address: 0x1000, size: 64, count: 4 }] };
    const bytes = new Uint8Array(64); // all 0x00 = the declared erased value, except one page
    bytes.set(data(16), 32);
    const job = planJob(image([0x1000, bytes]), target(tiny), {}, { unchanged: new Set() });
    expect(kinds(job.steps)).toEqual(['write', 'verify']);
    expect(job.steps[1]).toMatchObject({ kind: 'verify', method: 'hash', expect: 'erased', ranges: [{ address: 0x1000, length: 32 }, { address: 0x1030, length: 16 }] });
  });

  it('on flash that is not memory mapped: compares with Verify, and checks erased pages with Verify too', () => {
    const t = target(ALIF_OSPI1, { memoryMapped: false });
    const bytes = data(8 * KiB);
    bytes.fill(0xff, 0, 256);
    const job = planJob(image([0xc000_0000, bytes]), t, { preserve: false });
    expect(job.steps[0]).toMatchObject({ kind: 'compare', method: 'algo' });
    expect(job.steps.at(-1)).toMatchObject({ kind: 'verify', method: 'algo', expect: 'erased', ranges: [{ address: 0xc000_0000, length: 256 }] });
  });

  it('warns, in the plan, which bytes outside the image are erased without preserve', () => {
    const t = target(ALIF_OSPI1, { memoryMapped: false });
    const job = planJob(image([0xc000_0100, data(256)]), t, { preserve: false });
    expect(job.lost).toEqual([
      { address: 0xc000_0000, length: 0x100 },
      { address: 0xc000_0200, length: 0xe00 },
    ]);
    expect(job.notes.some((n) => n.includes('3840 bytes outside the image') && n.includes('0xc0000000..0xc00000ff'))).toBe(true);
  });

  it('refuses to keep bytes it cannot read, naming the option', () => {
    const t = target(ALIF_OSPI1, { memoryMapped: false });
    expect(() => planJob(image([0xc000_0100, data(256)]), t, { preserve: true })).toThrow(UsageError);
    expect(() => planJob(image([0xc000_0100, data(256)]), t, { preserve: true })).toThrow(expect.objectContaining({ hint: expect.stringMatching(/preserve: false/) }));
  });

  it('uses the multi-sector Erase and multi-page Program of a SEGGER loader: one entry per run', () => {
    const t = target(STM32F4_1MIB, { routines: ['Init', 'UnInit', 'Erase', 'Program'], transfer: { bufferSize: 256 * KiB, tableEntries: 16 } });
    const job = planJob(image([0x0800_0000, data(64 * KiB)]), t, { compare: 'none' });
    const [first, run] = writes(job.steps) as [WriteStep, WriteStep];
    expect(first.erase).toEqual([{ address: 0x0800_0000, size: 16 * KiB, count: 1, index: 0 }]);
    expect(run.erase).toEqual([{ address: 0x0800_4000, size: 16 * KiB, count: 3, index: 1 }]);
    expect(run.program).toEqual([{ address: 0x0800_4000, length: 48 * KiB, offset: 0 }]);
    expect(job.verify).toBe('hash');
    const calls = writeCalls(run, { entry: (fn) => (t.routines.has(fn) ? 0x2000_0000 : undefined), flashStart: 0x0800_0000, clock: 0, pageSize: 1024, buffer: 0x2000_8000 });
    expect(calls.map((c) => `${c.fn}(${c.args.map((a) => a.toString(16)).join(',')})`)).toEqual([
      'Init(8000000,0,1)',
      'Erase(8004000,1,3)',
      'UnInit(1)',
      'Init(8000000,0,2)',
      'Program(8004000,c000,20008000)',
      'UnInit(2)',
    ]);
  });

  it('packs sparse pages into one buffer, as many as the table allows', () => {
    const pieces: [number, Uint8Array][] = [];
    for (let i = 0; i < 100; i++) pieces.push([0xc000_0000 + i * 8 * KiB, data(256, i)]);
    const job = planJob(image(...pieces), target(ALIF_OSPI1, { transfer: { bufferSize: 256 * KiB, tableEntries: 64 } }), { compare: 'none' });
    const runs = writes(job.steps);
    expect(runs.reduce((n, r) => n + r.program.length, 0)).toBe(100);
    for (const r of runs) expect(r.entries).toBeLessThanOrEqual(64);
    // Each run: Init + erases + UnInit, Init + ProgramPage per piece + UnInit, Init + Verify per piece + UnInit.
    expect(runs[0]!.entries).toBe(2 + runs[0]!.erase.length + 2 * (2 + runs[0]!.program.length));
  });

  it('gives the whole image in the erase runs their own buffer offsets, back to back', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 3000 })), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 16 }), (parts, bufferPages) => {
        const img = image(...parts.map(([k, len]): [number, Uint8Array] => [0xc000_0000 + k * 4096 + 17, data(len, k)]));
        const t = target(ALIF_OSPI1, { transfer: { bufferSize: bufferPages * 256, tableEntries: 24 } });
        const job = planJob(img, t, { preserve: false, compare: 'none' });
        const programmed: { address: number; length: number }[] = [];
        for (const run of writes(job.steps)) {
          let offset = 0;
          for (const p of run.program) {
            expect(p.offset).toBe(offset);
            offset += p.length;
            programmed.push(p);
          }
          expect(offset).toBeLessThanOrEqual(bufferPages * 256);
          expect(run.entries).toBeLessThanOrEqual(24);
        }
        // Every page holding image bytes is programmed exactly once.
        const pages = new Set<number>();
        for (const p of programmed) for (let a = p.address; a < p.address + p.length; a += 256) {
          expect(pages.has(a)).toBe(false);
          pages.add(a);
        }
        for (const seg of img.segments) for (let a = seg.address - (seg.address % 256); a < seg.address + seg.data.length; a += 256) {
          const slice = seg.data.subarray(Math.max(0, a - seg.address), a + 256 - seg.address);
          if (slice.some((b) => b !== 0xff)) expect(pages.has(a)).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('bounded runs', () => {
  it('makes the first write run one sector (it measures the device), later runs at most MAX_SECTORS_PER_RUN', () => {
    const job = planJob(image([0xc000_0000, new Uint8Array(1 * MiB).fill(0x11)]), target(ALIF_OSPI1, { transfer: { bufferSize: 256 * KiB, tableEntries: 256 } }), { compare: 'none' });
    const runs = writes(job.steps);
    expect(runs[0]!.erase.reduce((n, e) => n + e.count, 0)).toBe(1);
    expect(runs[0]!.bytes).toBe(4 * KiB);
    expect(runs.slice(1).map((r) => r.erase.reduce((n, e) => n + e.count, 0))).toEqual([32, 32, 32, 32, 32, 32, 32, 31]);
  });

  it('also keeps the first run small when it erases nothing (blank sectors)', () => {
    const img = image([0xc000_0000, data(64 * KiB)]);
    const blank = new Set(Array.from({ length: 16 }, (_, i) => 0xc000_0000 + i * 4096));
    const runs = writes(planJob(img, target(ALIF_OSPI1), {}, { unchanged: new Set(), blank }).steps);
    expect(runs.every((r) => r.erase.length === 0)).toBe(true);
    expect(runs[0]!.bytes).toBe(4 * KiB);
  });
});

describe('table accounting agrees with the calls a run makes', () => {
  it('never puts more than 65535 pages in one ProgramPage entry (4-byte pages, 256 KiB sectors)', () => {
    const big: FlashGeometry = { start: 0x1000_0000, size: 4 * MiB, pageSize: 4, erasedValue: 0xff, sectors: [{ address: 0x1000_0000, size: 256 * KiB, count: 16 }] };
    const job = planJob(image([0x1000_0000, data(1 * MiB)]), target(big, { transfer: { bufferSize: 512 * KiB, tableEntries: 64 } }), { compare: 'none' });
    const entry = (fn: AlgorithmFunction) => (CMSIS.includes(fn) ? 0x2000_0000 : undefined);
    for (const run of writes(job.steps)) {
      const calls = writeCalls(run, { entry, flashStart: 0x1000_0000, clock: 0, pageSize: 4, buffer: 0x2000_8000 });
      expect(calls.length).toBe(run.entries);
      for (const c of calls) expect(c.repeat ?? 1).toBeLessThanOrEqual(0xffff);
    }
  });

  it('counts exactly the entries writeCalls makes, for any geometry, routine set and table (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(4, 16, 256),
        fc.array(fc.constantFrom(1, 4, 16, 64), { minLength: 1, maxLength: 4 }),
        fc.constantFrom<AlgorithmFunction[]>(CMSIS, ['EraseSector', 'ProgramPage'], ['Init', 'UnInit', 'Erase', 'Program', 'Verify']),
        fc.integer({ min: 8, max: 40 }),
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 5000 })), { minLength: 1, maxLength: 6 }),
        (page, pagesPerSector, routines, entries, bufferPages, parts) => {
          const sectors = pagesPerSector.map((n) => ({ size: n * page * 16, count: 3 }));
          let at = 0x1000_0000;
          const runs = sectors.map((r) => {
            const run = { address: at, size: r.size, count: r.count };
            at += r.size * r.count;
            return run;
          });
          const g: FlashGeometry = { start: 0x1000_0000, size: at - 0x1000_0000, pageSize: page, erasedValue: 0xff, sectors: runs };
          const segs: [number, Uint8Array][] = [];
          let cursor = g.start;
          for (const [gap, len] of parts) {
            const start = cursor + (gap % 4096);
            const length = Math.min(len, g.start + g.size - start);
            if (length <= 0) break;
            segs.push([start, data(length, gap)]);
            cursor = start + length + 1;
          }
          if (segs.length === 0) return;
          const t = target(g, { routines, transfer: { bufferSize: bufferPages * page, tableEntries: entries } });
          const job = planJob(image(...segs), t, { compare: 'none', preserve: false, ...(routines.includes('Verify') ? {} : { verify: 'none' }) });
          const entry = (fn: AlgorithmFunction) => (routines.includes(fn) ? 0x2000_0000 : undefined);
          for (const run of writes(job.steps)) {
            const calls = writeCalls(run, { entry, flashStart: g.start, clock: 0, pageSize: page, buffer: 0x2000_8000 });
            expect(calls.length).toBe(run.entries);
            expect(run.entries).toBeLessThanOrEqual(entries);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('planErase and planVerify', () => {
  it('widens an erase range to whole sectors and says which', () => {
    const plan = planErase({ address: 0xc000_0800, length: 0x1000 }, target(ALIF_OSPI1));
    expect(plan.erased).toEqual({ address: 0xc000_0000, length: 0x2000 });
    expect(plan.sectors).toBe(2);
    expect(writes(plan.steps).flatMap((w) => w.erase)).toEqual([
      { address: 0xc000_0000, size: 4096, count: 1, index: 0 },
      { address: 0xc000_1000, size: 4096, count: 1, index: 1 },
    ]);
  });

  it('refuses an empty erase range or one outside the flash', () => {
    expect(() => planErase({ address: 0xc000_0000, length: 0 }, target(ALIF_OSPI1))).toThrow(/needs a length above 0/);
    expect(() => planErase({ address: 0xc1ff_ff00, length: 0x200 }, target(ALIF_OSPI1))).toThrow(/0xc1ffff00\.\.0xc20000ff is not inside the flash 0xc0000000\.\.0xc1ffffff/);
  });

  it('erases the chip with EraseChip when there is one, else every sector in bounded runs', () => {
    expect(kinds(planErase('chip', target(STM32F4_1MIB, { routines: [...CMSIS, 'EraseChip'] })).steps)).toEqual(['erase-chip']);
    const each = planErase('chip', target(ALIF_OSPI1));
    expect(each.sectors).toBe(8192);
    expect(writes(each.steps)).toHaveLength(1 + Math.ceil((8192 - FIRST_RUN_SECTORS) / MAX_SECTORS_PER_RUN));
  });

  it("verifies by hash when memory mapped and by the algorithm's Verify otherwise ('auto' means the cheapest way)", () => {
    const img = image([0xc000_0000, data(100)]);
    expect(planVerify(img, target(ALIF_OSPI1)).method).toBe('hash');
    expect(planVerify(img, target(ALIF_OSPI1, { memoryMapped: false })).method).toBe('algo');
    expect(() => planVerify(img, target(ALIF_OSPI1, { memoryMapped: false, routines: ['EraseSector', 'ProgramPage'] }))).toThrow(/Cannot verify/);
  });
});

describe("one meaning of 'auto' for compare and verify", () => {
  const caps = (memoryMapped: boolean, hasVerify: boolean) => ({ memoryMapped, hasVerify, algorithm: 'x' });
  it('compares by hash where memory mapped, by Verify where not, not at all without either', () => {
    expect(compareMethod('auto', caps(true, true))).toBe('hash');
    expect(compareMethod('auto', caps(false, true))).toBe('algo');
    expect(compareMethod('auto', caps(false, false))).toBeUndefined();
    expect(compareMethod('crc', caps(true, false))).toBe('hash');
    expect(() => compareMethod('hash', caps(false, true))).toThrow(/memoryMapped: false/);
  });
  it('verifies with Verify when the bytes are already in RAM, else the same rule as compare', () => {
    expect(verifyMethod('auto', caps(true, true), true)).toBe('algo');
    expect(verifyMethod('auto', caps(true, true), false)).toBe('hash');
    expect(verifyMethod('auto', caps(true, false), true)).toBe('hash');
    expect(verifyMethod('auto', caps(false, false), true)).toBeUndefined();
    expect(() => verifyMethod('algo', caps(true, false), true)).toThrow(/no Verify routine/);
  });
});

describe('after a failed call: which Init is left open', () => {
  it('names the function by the failing call', () => {
    expect(openFunction('EraseSector', [0])).toBe(1);
    expect(openFunction('ProgramPage', [0])).toBe(2);
    expect(openFunction('Verify', [0])).toBe(3);
    expect(openFunction('Init', [0, 0, 2])).toBeUndefined();
  });
});

describe('printing the steps', () => {
  it('prints one line per step, with the decisions as notes (snapshot: 32 MiB unchanged but one sector)', () => {
    const img = image([0xc000_0000, data(32 * MiB)]);
    const t = target(ALIF_OSPI1, { routines: [...CMSIS, 'EraseChip'], transfer: { bufferSize: 256 * KiB, tableEntries: 256 }, estimate: { sectorEraseMs: 30_000, chipEraseMs: 60_000 } });
    const first = planJob(img, t);
    expect(formatSteps(first).split('\n').slice(0, 2)).toEqual([
      'compare   0xc0000000..0xc1ffffff  8192 range(s), 32768 KiB by on-target hash',
      'erase     chip  (chip erase: the image touches all 8192 sectors and erasing them one by one (8192 × 30000 ms = 245760000 ms) is slower than chip erase (60000 ms))',
    ]);
    const unchanged = new Set(first.layout.sectors.map((s) => s.address).filter((a) => a !== 0xc100_0000));
    const job = planJob(img, t, {}, { unchanged });
    expect(formatSteps(job)).toBe(
      [
        'run     1 0xc1000000..0xc1000fff  erase 1 sector(s), program 4 KiB in 1 piece(s), Verify  [9 calls]',
        'note: chip erase declined: 8191 of 8192 touched sectors unchanged',
        'note: compare: 8191 of 8192 touched sectors already hold the image',
      ].join('\n'),
    );
    expect(stepsToJSON(job)).toEqual([{ kind: 'write', range: '0xc1000000..0xc1000fff', sectorsErased: 1, pieces: 1, bytes: 4096, entries: 9, verify: true }]);
  });
});
