/**
 * Several flash regions in one job (lib/regions.ts): splitting an image by
 * region and refusing bytes outside every region (pure), the combined plan,
 * and on QEMU an547 one session that programs both of the test pack's regions
 * with their own algorithms — progress tagged by region, one report — checked
 * by reading back with gdb-multiarch; a changed byte fails verifyRegions.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OutOfFlashError,
  UsageError,
  VerifyError,
  createImage,
  formatRegionPlan,
  imageSize,
  loadAlgorithm,
  planRegions,
  programRegions,
  splitImageByRegion,
  verifyRegions,
  type FlashRegionSpec,
  type RegionEvent,
} from '../lib/index.js';
import { mergeImages } from '../lib/images.js';
import { FIXTURES, startQemu, type QemuInstance } from './helpers/qemu.js';
import { gdbReadMemory, gdbWriteMemory } from './helpers/gdb-multiarch.js';
import { seededBytes } from './helpers/bytes.js';
import { AN547_TEST_RAM } from './helpers/test-pack.js';

const MRAM = 0x80000000;
const OSPI = 0xc0000000;
const mram = loadAlgorithm(new Uint8Array(readFileSync(join(FIXTURES.dir, 'nor-sim-mram.flm'))), { source: 'nor-sim-mram.flm' });
const ospi = loadAlgorithm(new Uint8Array(readFileSync(FIXTURES.norSim)), { source: 'nor-sim.flm' });
/** Given in the wrong order on purpose: regions are taken by address. */
const REGIONS: FlashRegionSpec[] = [
  { algorithm: ospi, ram: AN547_TEST_RAM.ospi },
  { algorithm: mram, ram: { address: AN547_TEST_RAM.mram.start, length: AN547_TEST_RAM.mram.size }, name: 'MRAM' },
];

describe('splitImageByRegion', () => {
  it('gives each region the bytes inside it, in address order, cutting a segment that spans two', () => {
    const image = createImage([
      { address: MRAM + 0x100, data: seededBytes(64, 1) },
      { address: OSPI, data: seededBytes(32, 2) },
    ]);
    const parts = splitImageByRegion(image, REGIONS);
    expect(parts.map((p) => [p.region.index, p.region.algorithm, p.region.name, imageSize(p.image)])).toEqual([
      [0, mram.name, 'MRAM', 64],
      [1, ospi.name, undefined, 32],
    ]);
    expect(parts[0]!.image.segments[0]!.address).toBe(MRAM + 0x100);
  });

  it('refuses bytes in the gap between regions, below and above them, naming each range and where it lies', () => {
    const image = createImage([
      { address: MRAM - 16, data: seededBytes(32, 3) },
      { address: 0x90000000, data: seededBytes(8, 4) },
      { address: OSPI + 0x2000000 - 4, data: seededBytes(8, 5) },
    ]);
    let error: unknown;
    try {
      splitImageByRegion(image, REGIONS);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(OutOfFlashError);
    const message = (error as Error).message;
    expect(message).toMatch(/0x7ffffff0..0x7fffffff \(16 bytes, below 0x80000000..0x8057ffff MRAM\)/);
    expect(message).toMatch(/0x90000000..0x90000007 \(8 bytes, in the gap between 0x80000000..0x8057ffff MRAM and 0xc0000000..0xc1ffffff\)/);
    expect(message).toMatch(/0xc2000000..0xc2000003 \(4 bytes, above 0xc0000000..0xc1ffffff\)/);
    expect((error as OutOfFlashError).address).toBe(0x7ffffff0);
  });

  it('refuses two algorithms for the same flash, and no algorithm at all', () => {
    const image = createImage([{ address: OSPI, data: new Uint8Array(4) }]);
    expect(() => splitImageByRegion(image, [REGIONS[0]!, { algorithm: ospi, ram: AN547_TEST_RAM.mram }])).toThrow(/Flash regions overlap/);
    expect(() => splitImageByRegion(image, [])).toThrow(UsageError);
  });
});

describe('planRegions', () => {
  it('plans each region with image bytes with its own algorithm; the totals add up; a region without bytes has no job', () => {
    const image = createImage([
      { address: MRAM, data: seededBytes(4096 + 1, 6) },
      { address: MRAM + 0x10000, data: seededBytes(100, 7) },
    ]);
    const plan = planRegions(image, REGIONS, { skipUnchanged: false });
    expect(plan.regions.map((r) => [r.imageBytes, r.job?.totals.sectorsTouched])).toEqual([
      [4197, 3],
      [0, undefined],
    ]);
    expect(plan.totals).toMatchObject({ imageBytes: 4197, sectorsTouched: 3, sectorsToErase: 3 });
    const text = formatRegionPlan(plan);
    expect(text).toMatch(/^region 1\/2 {2}0x80000000..0x8057ffff .* \(MRAM\): 4197 bytes of the image\n {2}keep /);
    expect(text).toMatch(/^region 2\/2 {2}0xc0000000..0xc1ffffff .*: no bytes of the image, nothing to do$/m);
  });
});

describe('mergeImages', () => {
  it('merges images that agree where they overlap, and names both files where they do not', () => {
    const a = createImage([{ address: 0x1000, data: new Uint8Array([1, 2, 3, 4]) }]);
    const b = createImage([{ address: 0x1002, data: new Uint8Array([3, 4, 5]) }]);
    const c = createImage([{ address: 0x1004, data: new Uint8Array([6]) }]);
    expect(mergeImages([{ image: a, source: 'a.hex' }, { image: b, source: 'b.bin' }]).segments).toEqual([{ address: 0x1000, data: new Uint8Array([1, 2, 3, 4, 5]) }]);
    // c overlaps b's tail, not a: the message names b and c, not the first file of the merged run.
    expect(() => mergeImages([{ image: a, source: 'a.hex' }, { image: b, source: 'b.bin' }, { image: c, source: 'c.bin' }])).toThrow(
      /^b.bin and c.bin write different bytes at 0x00001004 \(0x05 vs 0x06\)/,
    );
  });
});

describe('on QEMU an547: one session over both regions', () => {
  let qemu: QemuInstance;
  beforeAll(async () => {
    qemu = await startQemu({ machine: 'mps3-an547' });
  });
  afterAll(async () => {
    await qemu?.stop();
  });

  it('programs both regions over one connection, each with its own algorithm, progress tagged by region; read back independently', async () => {
    const a = seededBytes(2 * 4096 + 10, 41);
    const b = seededBytes(4096, 42);
    const image = createImage([
      { address: MRAM + 0x3000, data: a },
      { address: OSPI + 0x5000, data: b },
    ]);
    const events: RegionEvent[] = [];
    const info: string[] = [];
    const report = await programRegions({
      gdb: qemu.connectOptions,
      regions: REGIONS,
      image,
      options: { verify: 'hash' },
      journal: false,
      onProgress: (e) => events.push(e),
      onInfo: (line) => info.push(line),
    });
    expect(info.filter((l) => l.startsWith('Connected'))).toHaveLength(1);
    const starts = events.filter((e) => e.type === 'region-start');
    expect(starts.map((e) => [e.region.algorithm, e.type === 'region-start' && e.imageBytes])).toEqual([
      [mram.name, a.length],
      [ospi.name, b.length],
    ]);
    // Every flash event is tagged with its region, and all of one region's come before the next region-start.
    const order = events.map((e) => `${e.region.index}:${e.type}`);
    expect(order.indexOf('1:region-start')).toBeGreaterThan(order.lastIndexOf('0:done'));
    expect(order.filter((x) => x.endsWith(':done'))).toEqual(['0:done', '1:done']);
    expect(report.regions.map((r) => r.report.imageBytes)).toEqual([a.length, b.length]);
    expect(report.totals).toMatchObject({ imageBytes: a.length + b.length, sectorsTouched: 4, verify: 'hash' });
    expect(report.totals.bytesProgrammed).toBe(report.regions[0]!.report.bytesProgrammed + report.regions[1]!.report.bytesProgrammed);
    expect(await gdbReadMemory(qemu.connectOptions, MRAM + 0x3000, a.length)).toEqual(a);
    expect(await gdbReadMemory(qemu.connectOptions, OSPI + 0x5000, b.length)).toEqual(b);

    // The same image again: every sector unchanged, nothing written.
    const again = await programRegions({ gdb: qemu.connectOptions, regions: REGIONS, image, journal: false });
    expect(again.totals).toMatchObject({ bytesProgrammed: 0, sectorsSkipped: 4, verify: 'unchanged' });
    await expect(verifyRegions({ gdb: qemu.connectOptions, regions: REGIONS, image, verify: 'read' })).resolves.toMatchObject({ totals: { imageBytes: a.length + b.length, verify: 'read' } });

    // One byte changed behind rspflash's back, in the second region: verifyRegions names it.
    await gdbWriteMemory(qemu.connectOptions, OSPI + 0x5000 + 7, new Uint8Array([b[7]! ^ 0xff]));
    const failed = verifyRegions({ gdb: qemu.connectOptions, regions: REGIONS, image, verify: 'read' });
    await expect(failed).rejects.toBeInstanceOf(VerifyError);
    await expect(failed).rejects.toThrow(/0xc0005007/);
  });

  it('refuses an image with bytes outside every region before connecting', async () => {
    const image = createImage([{ address: 0xa0000000, data: new Uint8Array(4) }]);
    await expect(programRegions({ gdb: { host: '127.0.0.1', port: 1 }, regions: REGIONS, image })).rejects.toBeInstanceOf(OutOfFlashError);
  });
});
