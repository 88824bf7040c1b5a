/**
 * Soak: 200 program cycles of random small images and random partial updates
 * on QEMU, each with a fresh connection (as the CLI makes them), against a
 * model of what the flash must hold. Every cycle reads the region back through
 * our own client; every 25 cycles and at the end gdb-multiarch reads it too.
 * Zero mismatches, skip-unchanged skips exactly the sectors the model says
 * already hold the image, and no handle or memory growth.
 *
 * Replay a failure with RSPFLASH_SOAK_SEED=<seed printed in the message>.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';
import { Flasher, type ProgramOptions } from '../../lib/flash/flasher.js';
import { createImage, type Image } from '../../lib/image/image.js';
import type { FlashReport } from '../../lib/flash/progress.js';
import { gdbReadMemory } from '../helpers/gdb-multiarch.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { seededRandom } from './fault-proxy.js';
import { FLASH, Outcomes, RAM, SECTOR, activeResources, expectNoLeaks, norSim, randomData } from './harness.js';

const CYCLES = 200;
const GDB_EVERY = 25;
/** The soaked region: 64 sectors (256 KiB), 16 MiB into the flash. */
const BASE = FLASH + (16 << 20);
const SIZE = 64 * SECTOR;
const SEED = Number(process.env['RSPFLASH_SOAK_SEED'] ?? 20261128);

const outcomes = new Outcomes();
let qemu: QemuInstance;

beforeAll(async () => {
  qemu = await startQemu({ machine: 'mps3-an547' });
});
afterAll(async () => {
  outcomes.write();
  await qemu?.stop();
});

interface Job {
  kind: string;
  image: Image;
  options: ProgramOptions;
}

/** Random, non-overlapping segments inside the region (1 to 3, 1 B to 16 KiB, any alignment). */
function randomSegments(rng: () => number, model: Uint8Array, partial: boolean): { address: number; data: Uint8Array }[] {
  const count = 1 + Math.floor(rng() * 3);
  const spans: { offset: number; length: number }[] = [];
  for (let i = 0; i < count; i++) {
    const length = 1 + Math.floor(rng() * (rng() < 0.3 ? 16 << 10 : 2048));
    const offset = Math.floor(rng() * (SIZE - length));
    if (spans.some((s) => offset < s.offset + s.length && s.offset < offset + length)) continue;
    spans.push({ offset, length });
  }
  spans.sort((a, b) => a.offset - b.offset);
  return spans.map(({ offset, length }) => {
    let data: Uint8Array;
    if (partial) {
      // What is there already, with a few bytes changed (or none: nothing to do).
      data = model.slice(offset, offset + length);
      const flips = Math.floor(rng() * 4);
      for (let k = 0; k < flips; k++) {
        const at = Math.floor(rng() * length);
        data[at] = data[at]! ^ (1 + Math.floor(rng() * 255));
      }
    } else {
      data = randomData(length, Math.floor(rng() * 2 ** 31));
    }
    return { address: BASE + offset, data };
  });
}

function nextJob(rng: () => number, model: Uint8Array, cycle: number): Job {
  const r = rng();
  const kind = r < 0.45 ? 'random image' : r < 0.85 ? 'partial update' : r < 0.93 ? 'random image (preserve off)' : 'random image (verify hash)';
  const segments = randomSegments(rng, model, kind === 'partial update');
  const image = createImage(segments.map((s) => ({ ...s, source: `soak cycle ${cycle}` })));
  const options: ProgramOptions = {
    ...(kind.endsWith('(preserve off)') ? { preserve: false } : {}),
    ...(kind.endsWith('(verify hash)') ? { verify: 'hash' as const } : {}),
  };
  return { kind, image, options };
}

/** Applies a job to the model; returns how many touched sectors already held the image (must be skipped). */
function apply(model: Uint8Array, job: Job): { touched: number; unchanged: number } {
  const sectors = new Map<number, boolean>(); // sector index → already holds the image bytes
  for (const seg of job.image.segments) {
    for (let i = 0; i < seg.data.length; i++) {
      const at = seg.address - BASE + i;
      const s = Math.floor(at / SECTOR);
      const same = model[at] === seg.data[i];
      sectors.set(s, (sectors.get(s) ?? true) && same);
    }
  }
  const unchanged = [...sectors.values()].filter(Boolean).length;
  for (const [s, same] of sectors) {
    if (same) continue;
    if (job.options.preserve === false) model.fill(0xff, s * SECTOR, (s + 1) * SECTOR);
  }
  for (const seg of job.image.segments) model.set(seg.data, seg.address - BASE);
  return { touched: sectors.size, unchanged };
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('soak', () => {
  it(`programs ${CYCLES} random images and partial updates with zero mismatches (seed ${SEED})`, async () => {
    const rng = seededRandom(SEED);
    const started = performance.now();
    // Start from a known state: the whole region programmed with random data.
    const model = randomData(SIZE, SEED);
    const run = async (job: Job): Promise<{ report: FlashReport; back: Uint8Array }> => {
      const gdb = await GdbClient.connect(qemu.connectOptions, { timeoutMs: 5000 });
      try {
        const flasher = await Flasher.create(gdb, norSim(), { ram: RAM, memoryMapped: true });
        try {
          const report = await flasher.program(job.image, job.options);
          const back = await flasher.read(BASE, SIZE);
          return { report, back };
        } finally {
          await flasher.close();
        }
      } finally {
        await gdb.close();
      }
    };
    await run({ kind: 'initial', image: createImage([{ address: BASE, data: model, source: 'soak start' }]), options: {} });

    let baseline: Map<string, number> | undefined;
    let heapBaseline = 0;
    const kinds = new Map<string, number>();
    let skipped = 0;
    let gdbReads = 0;
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const job = nextJob(rng, model, cycle);
      const where = `seed ${SEED}, cycle ${cycle} (${job.kind}, ${job.image.segments.map((s) => `${s.data.length} B at 0x${s.address.toString(16)}`).join(', ')})`;
      const expected = apply(model, job);
      const { report, back } = await run(job);
      kinds.set(job.kind, (kinds.get(job.kind) ?? 0) + 1);
      skipped += report.sectorsSkipped;
      expect(report.sectorsTouched, `${where}: sectors touched`).toBe(expected.touched);
      expect(report.sectorsSkipped, `${where}: sectors skipped as unchanged`).toBe(expected.unchanged);
      expect(report.sectorsErased, `${where}: sectors erased`).toBe(expected.touched - expected.unchanged);
      const bad = firstDifference(back, model);
      expect(bad, `${where}: our read-back differs from the model at 0x${(BASE + bad).toString(16)}`).toBe(-1);
      if (cycle % GDB_EVERY === 0 || cycle === CYCLES) {
        const independent = await gdbReadMemory(qemu.connectOptions, BASE, SIZE);
        gdbReads++;
        const diff = firstDifference(independent, model);
        expect(diff, `${where}: gdb-multiarch read-back differs from the model at 0x${(BASE + diff).toString(16)}`).toBe(-1);
      }
      if (cycle === 10) {
        // Warmed up (modules loaded, pools filled): from here on nothing may grow.
        baseline = activeResources();
        heapBaseline = process.memoryUsage().heapUsed;
      }
    }
    await expectNoLeaks(baseline!, `${CYCLES} cycles`);
    const heapGrowth = process.memoryUsage().heapUsed - heapBaseline;
    expect(heapGrowth, 'heap growth over the soak').toBeLessThan(64 << 20);
    const elapsed = performance.now() - started;
    outcomes.add({
      group: 'Soak',
      fault: `${CYCLES} cycles (${[...kinds].map(([k, n]) => `${n}× ${k}`).join(', ')}), a fresh connection each, 256 KiB region, seed ${SEED}`,
      outcome: `0 mismatches (${CYCLES} own read-backs, ${gdbReads} gdb-multiarch read-backs); ${skipped} sectors skipped as unchanged, each as the model predicted; no handle growth, heap ${heapGrowth >= 0 ? '+' : '−'}${Math.abs(heapGrowth / (1 << 20)).toFixed(1)} MiB`,
      code: '—',
      timeMs: Math.round(elapsed),
      content: 'equals the model',
    });
  }, 180_000);

  it('programs 100 more cycles through one long-lived connection and flasher, then gdb-multiarch agrees', async () => {
    const rng = seededRandom(SEED + 1);
    const started = performance.now();
    const model = randomData(SIZE, SEED + 1);
    const gdb = await GdbClient.connect(qemu.connectOptions, { timeoutMs: 5000 });
    const baseline = activeResources();
    try {
      const flasher = await Flasher.create(gdb, norSim(), { ram: RAM, memoryMapped: true });
      try {
        await flasher.program(createImage([{ address: BASE, data: model, source: 'soak start' }]));
        for (let cycle = 1; cycle <= 100; cycle++) {
          const job = nextJob(rng, model, cycle);
          const where = `seed ${SEED + 1}, session cycle ${cycle} (${job.kind})`;
          const expected = apply(model, job);
          const report = await flasher.program(job.image, job.options);
          expect(report.sectorsSkipped, `${where}: sectors skipped`).toBe(expected.unchanged);
          const bad = firstDifference(await flasher.read(BASE, SIZE), model);
          expect(bad, `${where}: read-back differs at 0x${(BASE + bad).toString(16)}`).toBe(-1);
        }
        expect(gdb.breakpoints.length, 'breakpoints do not pile up').toBeLessThanOrEqual(2);
      } finally {
        await flasher.close();
      }
    } finally {
      await gdb.close();
    }
    await expectNoLeaks(baseline, 'a long-lived session');
    const independent = await gdbReadMemory(qemu.connectOptions, BASE, SIZE);
    expect(firstDifference(independent, model), 'gdb-multiarch read-back after the session').toBe(-1);
    outcomes.add({
      group: 'Soak',
      fault: '100 more cycles through one connection and one Flasher (seed ' + (SEED + 1) + ')',
      outcome: '0 mismatches (100 own read-backs, gdb-multiarch at the end); no handle growth',
      code: '—',
      timeMs: Math.round(performance.now() - started),
      content: 'equals the model',
    });
  }, 120_000);
});
