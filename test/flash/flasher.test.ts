/**
 * The Flasher end to end on QEMU mps3-an547 with the NOR simulator (32 MiB at
 * 0xC0000000, 4 KiB sectors, 256 B pages): every result is checked by an
 * independent read-back through gdb-multiarch.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';
import { loadAlgorithm } from '../../lib/algo/load.js';
import { Flasher } from '../../lib/flash/flasher.js';
import { withFlasher as withSession } from '../../lib/session.js';
import { createImage, type Image } from '../../lib/image/image.js';
import { BOARDS } from '../../lib/boards.js';
import { RspflashError } from '../../lib/errors.js';
import type { FlashEvent } from '../../lib/flash/progress.js';
import { FIXTURES, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { gdbReadMemory, gdbWriteMemory } from '../helpers/gdb-multiarch.js';

const FLASH = 0xc0000000;
const board = BOARDS['qemu-an547']!;
let qemu: QemuInstance;

beforeAll(async () => {
  qemu = await startQemu({ machine: 'mps3-an547' });
});
afterAll(async () => {
  await qemu?.stop();
});

const journalDir = mkdtempSync(join(tmpdir(), 'rspflash-journal-'));

/** One session through the library's own helper: connect, load, body, restore, close (so gdb-multiarch can connect after). */
function withFlasher<T>(file: string, body: (flasher: Flasher, gdb: GdbClient) => Promise<T>): Promise<T> {
  const algorithm = loadAlgorithm(readFileSync(file), { source: file });
  return withSession({ gdb: qemu.connectOptions, algorithm, board, journal: { dir: journalDir } }, body);
}

function image(address: number, data: Uint8Array): Image {
  return createImage([{ address, data, source: 'test' }]);
}

describe('Flasher.program on the NOR simulator', () => {
  it('programs a 1 MiB image and gdb-multiarch reads it back identical', async () => {
    const data = new Uint8Array(randomBytes(1 << 20));
    const report = await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH, data), { skipUnchanged: false }));
    expect(report.sectorsErased).toBe(256);
    expect(report.bytesProgrammed).toBe(1 << 20);
    expect(report.verify).toBe('algo');
    const back = await gdbReadMemory(qemu.connectOptions, FLASH, data.length);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
  });

  it('erases and programs nothing when the flash already holds the image', async () => {
    const data = new Uint8Array(randomBytes(256 << 10));
    await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0x200000, data)));
    const second = await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0x200000, data)));
    expect(second.sectorsSkipped).toBe(64);
    expect(second.sectorsErased).toBe(0);
    expect(second.bytesProgrammed).toBe(0);
    expect(second.verify).toBe('unchanged'); // nothing programmed: the compare showed the flash holds the image
    // Only checksums crossed the link: far less than the image.
    expect(second.bytesSent).toBeLessThan(data.length / 8);
  });

  it('reprograms only the sector that changed', async () => {
    const data = new Uint8Array(randomBytes(64 << 10));
    await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0x300000, data)));
    data[5000] = data[5000]! ^ 0xff; // sector 1 of 16
    const report = await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0x300000, data)));
    expect(report.sectorsSkipped).toBe(15);
    expect(report.sectorsErased).toBe(1);
    const back = await gdbReadMemory(qemu.connectOptions, FLASH + 0x300000, data.length);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
  });

  it('finds the one changed sector of a 4 MiB image (coarse block hashes, then per sector inside the block that differs)', async () => {
    const data = new Uint8Array(randomBytes(4 << 20));
    await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0xc00000, data)));
    const unchanged = await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0xc00000, data)));
    expect(unchanged).toMatchObject({ sectorsSkipped: 1024, sectorsErased: 0 });
    data[3_000_000] = data[3_000_000]! ^ 1;
    const report = await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0xc00000, data)));
    expect(report).toMatchObject({ sectorsSkipped: 1023, sectorsErased: 1, bytesProgrammed: 4096 });
    const back = await gdbReadMemory(qemu.connectOptions, FLASH + 0xc00000 + 2_998_272, 4096);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(data.subarray(2_998_272, 2_998_272 + 4096)))).toBe(0);
  });

  it('keeps the bytes of a touched sector that the image does not cover', async () => {
    const old = new Uint8Array(randomBytes(8192));
    await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0x400000, old)));
    const patch = new Uint8Array(100).fill(0x42);
    const report = await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0x400000 + 1000, patch)));
    expect(report.bytesKept).toBe(4096 - 100);
    const expected = new Uint8Array(old);
    expected.set(patch, 1000);
    const back = await gdbReadMemory(qemu.connectOptions, FLASH + 0x400000, 8192);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(expected))).toBe(0);
  });

  it('lets the rest of the sector be erased with preserve: false', async () => {
    const old = new Uint8Array(4096).fill(0x11);
    await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0x500000, old)));
    await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0x500000, new Uint8Array(16).fill(0x22)), { preserve: false }));
    const back = await gdbReadMemory(qemu.connectOptions, FLASH + 0x500000, 4096);
    expect(back.subarray(0, 16).every((b) => b === 0x22)).toBe(true);
    expect(back.subarray(16).every((b) => b === 0xff)).toBe(true);
  });

  it('with preserve: false, does not skip a sector whose covered bytes match but whose other bytes are not erased', async () => {
    await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0x510000, new Uint8Array(4096).fill(0x11))));
    const report = await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0x510000, new Uint8Array(16).fill(0x11)), { preserve: false }));
    expect(report).toMatchObject({ sectorsSkipped: 0, sectorsErased: 1 });
    const back = await gdbReadMemory(qemu.connectOptions, FLASH + 0x510000, 4096);
    expect(back.subarray(0, 16).every((b) => b === 0x11)).toBe(true);
    expect(back.subarray(16).every((b) => b === 0xff)).toBe(true);
  });

  it('refuses an image outside the flash before touching the target', async () => {
    await withFlasher(FIXTURES.norSim, async (f, gdb) => {
      const sent = gdb.stats.packetsSent;
      const err = await f.program(image(FLASH + (32 << 20) - 16, new Uint8Array(32))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RspflashError);
      expect((err as RspflashError).code).toBe('RSPFLASH_OUT_OF_FLASH');
      expect((err as Error).message).toMatch(/0xc2000000|0xc1ffffff/);
      expect(gdb.stats.packetsSent).toBe(sent);
      const events: FlashEvent[] = [];
      await f.program(image(FLASH + (32 << 20) - 16, new Uint8Array(32)), { onProgress: (e) => events.push(e) }).catch(() => undefined);
      expect(events.map((e) => e.type)).toEqual(['failed']);
      expect(gdb.stats.packetsSent).toBe(sent);
    });
  });

  it('detects flash altered behind its back when verifying', async () => {
    const data = new Uint8Array(randomBytes(16 << 10));
    await withFlasher(FIXTURES.norSim, (f) => f.program(image(FLASH + 0x600000, data)));
    await gdbWriteMemory(qemu.connectOptions, FLASH + 0x600000 + 12345, Uint8Array.of(data[12345]! ^ 1));
    for (const verify of ['crc', 'algo', 'read'] as const) {
      const err = await withFlasher(FIXTURES.norSim, (f) => f.verify(image(FLASH + 0x600000, data), { verify })).catch((e: unknown) => e);
      expect((err as RspflashError).code, `verify=${verify}`).toBe('RSPFLASH_VERIFY_FAILED');
      expect((err as Error).message, `verify=${verify}`).toContain('0xc0603039');
    }
  });

  it('reports progress in the documented order', async () => {
    const events: FlashEvent[] = [];
    await withFlasher(FIXTURES.norSim, (f) =>
      f.program(image(FLASH + 0x700000, new Uint8Array(randomBytes(200 << 10))), { onProgress: (e) => events.push(e) }),
    );
    const kinds = events.map((e) => (e.type === 'phase-start' || e.type === 'phase-end' ? `${e.type}:${e.phase}` : e.type));
    const compact = kinds.filter((k, i) => k !== 'progress' || kinds[i - 1] !== 'progress');
    expect(compact).toEqual([
      'plan',
      'phase-start:compare',
      'progress',
      'phase-end:compare',
      'replan',
      'phase-start:write',
      'progress',
      'phase-end:write',
      'done',
    ]);
    // 200 KiB = 50 sectors of 4 KiB, each erased and programmed in the same run.
    const last = events.filter((e) => e.type === 'progress' && e.phase === 'write').at(-1);
    expect(last).toMatchObject({ done: 50, total: 50 });
  });

  it('stops between batches when cancelled, runs UnInit, and leaves the link usable', async () => {
    const data = new Uint8Array(randomBytes(1 << 20));
    const controller = new AbortController();
    await withFlasher(FIXTURES.norSim, async (f, gdb) => {
      const err = await f
        .program(image(FLASH + 0x800000, data), {
          skipUnchanged: false,
          signal: controller.signal,
          onProgress: (e) => {
            if (e.type === 'progress' && e.phase === 'write' && e.done >= 32) controller.abort();
          },
        })
        .catch((e: unknown) => e);
      expect((err as RspflashError).code).toBe('RSPFLASH_ABORTED');
      expect(gdb.state).toBe('halted');
      const { pc } = await gdb.readRegisters(['pc']);
      expect(pc).toBe(f.runner.layout.trap); // stopped at the trap after UnInit, not mid-call
    });
    // The first 128 KiB went in, the end did not.
    const back = await gdbReadMemory(qemu.connectOptions, FLASH + 0x800000, data.length);
    expect(Buffer.compare(Buffer.from(back.subarray(0, 128 << 10)), Buffer.from(data.subarray(0, 128 << 10)))).toBe(0);
    expect(Buffer.compare(Buffer.from(back.subarray(-4096)), Buffer.from(data.subarray(-4096)))).not.toBe(0);
  });
});

describe('other algorithm formats program the same flash', () => {
  for (const [name, file] of [
    ['SEGGER SFL loader', FIXTURES.norSimSegger],
    ['probe-rs YAML', FIXTURES.norSimYaml],
  ] as const) {
    it(`programs and verifies with the ${name}`, async () => {
      const data = new Uint8Array(randomBytes(40 << 10));
      const report = await withFlasher(file, (f) => f.program(image(FLASH + 0x900000, data), { skipUnchanged: false }));
      expect(report.bytesProgrammed).toBe(40 << 10);
      const back = await gdbReadMemory(qemu.connectOptions, FLASH + 0x900000, data.length);
      expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
    });
  }
});

describe('flash that is not memory mapped (like Alif OSPI), with a SEGGER loader that has Read', () => {
  it('keeps uncovered bytes by reading them through the algorithm, compares and verifies through it too', async () => {
    const old = new Uint8Array(randomBytes(4096));
    await withFlasher(FIXTURES.norSimSegger, (f) => f.program(image(FLASH + 0xd00000, old)));
    const gdb = await GdbClient.connect(qemu.connectOptions);
    let report;
    try {
      const algo = loadAlgorithm(readFileSync(FIXTURES.norSimSegger), 'nor-sim-segger.elf');
      const flasher = await Flasher.create(gdb, algo, { ram: board.ram, memoryMapped: false, journal: { dir: journalDir } });
      try {
        await expect(flasher.verify(image(FLASH + 0xd00000, old), { verify: 'crc' })).rejects.toMatchObject({ code: 'RSPFLASH_USAGE' });
        report = await flasher.program(image(FLASH + 0xd00000 + 100, new Uint8Array(8).fill(0x42)));
        expect(Buffer.compare(Buffer.from(await flasher.read(FLASH + 0xd00000, 4096)), Buffer.from(old.map((b, i) => (i >= 100 && i < 108 ? 0x42 : b))))).toBe(0);
      } finally {
        await flasher.close();
      }
    } finally {
      await gdb.close();
    }
    expect(report).toMatchObject({ bytesKept: 4096 - 8, sectorsErased: 1, verify: 'algo' });
  });
});

describe('Flasher.program decisions found by the benchmark', () => {
  it('programs a sparse image of 300 separate pages (more page runs than one batch table holds)', async () => {
    const pages = Array.from({ length: 300 }, (_, i) => ({ address: FLASH + 0xa00000 + i * 8192, data: new Uint8Array(randomBytes(256)), source: `page ${i}` }));
    const sparse = createImage(pages);
    const report = await withFlasher(FIXTURES.norSim, (f) => f.program(sparse, { preserve: false, skipUnchanged: false }));
    expect(report.pagesProgrammed).toBe(300);
    for (const p of [pages[0]!, pages[151]!, pages[299]!]) {
      const back = await gdbReadMemory(qemu.connectOptions, p.address, 256);
      expect(Buffer.compare(Buffer.from(back), Buffer.from(p.data)), `page at 0x${p.address.toString(16)}`).toBe(0);
    }
  });

  it('does not chip-erase a device whose sectors already hold the image: an unchanged re-run skips everything', async () => {
    // A 256 KiB device (the simulator's first 64 sectors) whose chip erase the estimate favours.
    const base = loadAlgorithm(readFileSync(FIXTURES.norSim), 'nor-sim.flm');
    const small = {
      ...base,
      geometry: { ...base.geometry, start: FLASH + 0xb00000, size: 256 << 10, sectors: [{ address: FLASH + 0xb00000, size: 4096, count: 64 }] },
      timeouts: { ...base.timeouts, eraseChip: 1000 },
    };
    const data = new Uint8Array(randomBytes(256 << 10));
    const run = async () => {
      const gdb = await GdbClient.connect(qemu.connectOptions);
      try {
        const flasher = await Flasher.create(gdb, small, { ram: board.ram, memoryMapped: true, journal: { dir: journalDir } });
        try {
          const plan = flasher.plan(image(FLASH + 0xb00000, data));
          expect(plan.erase.kind).toBe('chip');
          return await flasher.program(image(FLASH + 0xb00000, data));
        } finally {
          await flasher.close();
        }
      } finally {
        await gdb.close();
      }
    };
    await run();
    const again = await run();
    expect(again).toMatchObject({ chipErase: false, sectorsSkipped: 64, sectorsErased: 0, bytesProgrammed: 0 });
  });
});
