/**
 * What the flash device is asked to do, counted by the NOR simulator itself
 * (its `nor_stats` block at 0xC2000000): blank sectors are programmed without
 * an erase, pages of erased value are neither sent nor programmed, and a
 * re-run of an unchanged image asks the device for nothing but reads — on
 * memory-mapped flash (hash compare) and on flash that is not (Alif mode:
 * the algorithm's Verify, with erased pages checked against one erased block).
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';
import { loadAlgorithm } from '../../lib/algo/load.js';
import { withFlasher } from '../../lib/session.js';
import type { Flasher } from '../../lib/flash/flasher.js';
import { createImage, type Image } from '../../lib/image/image.js';
import { BOARDS } from '../../lib/boards.js';
import { FIXTURES, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { gdbReadMemory } from '../helpers/gdb-multiarch.js';
import { craftMurmur3Collision, differingBytes } from '../helpers/murmur-collision.js';
import { murmur3 } from '../../lib/flash/hash.js';

const FLASH = 0xc0000000;
const STATS = 0xc2000000;
const FIELDS = ['magic', 'init', 'uninit', 'eraseChip', 'eraseSector', 'programPage', 'programBytes', 'verify', 'verifyBytes', 'blankCheck', 'blankCheckBytes'] as const;
type Counts = Record<(typeof FIELDS)[number], number>;
const board = BOARDS['qemu-an547']!;
let qemu: QemuInstance;

beforeAll(async () => {
  qemu = await startQemu({ machine: 'mps3-an547' });
});
afterAll(async () => {
  await qemu?.stop();
});

async function counts(gdb: GdbClient): Promise<Counts> {
  const bytes = await gdb.readMemory(STATS, FIELDS.length * 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Object.fromEntries(FIELDS.map((f, i) => [f, view.getUint32(4 * i, true)])) as Counts;
}

/** One session; returns the job's report and what the device was asked to do during it. */
async function run(memoryMapped: boolean, job: (f: Flasher) => Promise<unknown>): Promise<{ device: Counts; result: unknown }> {
  const algorithm = loadAlgorithm(readFileSync(FIXTURES.norSim), { source: 'nor-sim.flm' });
  return withFlasher({ gdb: qemu.connectOptions, algorithm, board, memoryMapped }, async (f, gdb) => {
    await gdb.writeMemory(STATS, new Uint8Array(FIELDS.length * 4));
    const result = await job(f);
    return { device: await counts(gdb), result };
  });
}

function image(address: number, data: Uint8Array): Image {
  return createImage([{ address, data, source: 'test' }]);
}

/** 64 KiB: 8 sectors of data with a 4 KiB erased hole in the middle and every other page erased in the last sector. */
function mixed(): Uint8Array {
  const data = new Uint8Array(randomBytes(64 << 10));
  data.fill(0xff, 8 << 10, 12 << 10);
  for (let p = 60 << 10; p < 64 << 10; p += 512) data.fill(0xff, p, p + 256);
  return data;
}

for (const memoryMapped of [true, false]) {
  describe(memoryMapped ? 'memory-mapped flash (hash compare)' : 'flash that is not memory mapped (Alif mode: Verify)', () => {
    const base = FLASH + (memoryMapped ? 0x1800000 : 0x1900000);

    it('programs a blank region without erasing a sector, and sends no erased page', async () => {
      await run(true, (f) => f.erase({ address: base, length: 64 << 10 }));
      const data = mixed();
      const { device, result } = await run(memoryMapped, (f) => f.program(image(base, data)));
      expect(device.eraseSector, 'sectors erased').toBe(0);
      expect(device.eraseChip).toBe(0);
      // 256 pages, 16 in the erased hole and 8 erased in the last sector: 232 programmed.
      expect(device.programBytes).toBe(232 * 256);
      expect(result).toMatchObject({ sectorsBlank: 15, sectorsErased: 0, bytesProgrammed: 232 * 256 });
      const report = result as { bytesSent: number };
      // What crossed the link: the programmed pages, the tables and the checks; not the 64 KiB image twice.
      expect(report.bytesSent).toBeLessThan((232 * 256) * (memoryMapped ? 2.3 : 2.3) + 32 * 1024);
      const back = await gdbReadMemory(qemu.connectOptions, base, data.length);
      expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
    });

    it('asks the device for nothing but reads when the flash already holds the image', async () => {
      const data = mixed();
      await run(true, (f) => f.program(image(base + (1 << 20), data)));
      const { device, result } = await run(memoryMapped, (f) => f.program(image(base + (1 << 20), data)));
      expect(device).toMatchObject({ eraseSector: 0, eraseChip: 0, programPage: 0 });
      expect(result).toMatchObject({ sectorsSkipped: 16, bytesProgrammed: 0, verify: 'unchanged' });
      if (!memoryMapped) {
        // The blank check runs first (no data sent; a real Verify stops at the first programmed byte), then the
        // content compare of the 15 sectors that are not blank: 64 KiB + 60 KiB asked of Verify. The image's
        // 24 erased pages are checked against one erased block per run, not sent.
        expect(device.verifyBytes).toBe((64 << 10) + (60 << 10));
        expect((result as { bytesSent: number }).bytesSent).toBeLessThan(232 * 256 * 2.2 + 16 * 1024);
      }
    });

    it('erases exactly the one sector that changed', async () => {
      const data = mixed();
      await run(true, (f) => f.program(image(base + (2 << 20), data)));
      data[20_000] = data[20_000]! ^ 0x5a;
      const { device, result } = await run(memoryMapped, (f) => f.program(image(base + (2 << 20), data)));
      expect(device.eraseSector).toBe(1);
      expect(result).toMatchObject({ sectorsErased: 1, sectorsSkipped: 15 });
      const back = await gdbReadMemory(qemu.connectOptions, base + (2 << 20), data.length);
      expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
    });
  });
}

describe('a wrong erased value fails loudly (issue 15, failure 2)', () => {
  it('verifies the pages it skipped as erased: an algorithm that claims 0x00 on a 0xFF flash is caught', async () => {
    const base = FLASH + 0x1a00000;
    await run(true, (f) => f.erase({ address: base, length: 8 << 10 }));
    const real = loadAlgorithm(readFileSync(FIXTURES.norSim), { source: 'nor-sim.flm' });
    const lying = { ...real, geometry: { ...real.geometry, erasedValue: 0x00 } };
    const data = new Uint8Array(8 << 10); // all 0x00 = the claimed erased value, but one page
    data.set(new Uint8Array(randomBytes(256)), 4096);
    const err = await withFlasher({ gdb: qemu.connectOptions, algorithm: lying, board }, (f) => f.program(image(base, data))).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'RSPFLASH_VERIFY_FAILED' });
    expect((err as Error).message).toMatch(/differs from the erased value/);
  });
});

describe('a 32-bit hash collision is not taken as unchanged (issue 15, failure 3)', () => {
  it('reprograms a sector whose new content has the same 32-bit MurmurHash3 as the old', async () => {
    const base = FLASH + 0x1b00000;
    const first = new Uint8Array(randomBytes(4096));
    const second = craftMurmur3Collision(first, 100);
    expect(murmur3(second)).toBe(murmur3(first)); // what the old 32-bit compare would have seen
    expect(differingBytes(first, second).length).toBeGreaterThan(0);
    await run(true, (f) => f.program(image(base, first)));
    const { result } = await run(true, (f) => f.program(image(base, second)));
    expect(result).toMatchObject({ sectorsSkipped: 0, sectorsErased: 1 });
    const back = await gdbReadMemory(qemu.connectOptions, base, second.length);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(second))).toBe(0);
  });
});
