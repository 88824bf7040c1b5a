/**
 * The algorithm runner (lib/algo/runner.ts) on QEMU mps3-an547 (Cortex-M55)
 * with the NOR simulator in its three shapes (CMSIS FLM, SEGGER SFL, probe-rs
 * YAML): every routine called through the runner, every result checked
 * against memory read back independently with gdb-multiarch, R9/RW/ZI
 * handling, batches, on-target CRC, what close() puts back, and the cost of a
 * call in round trips.
 */
import { crc32 } from 'node:zlib';
import { murmur3 } from '../../lib/flash/hash.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';
import { AlgorithmRunner } from '../../lib/algo/runner.js';
import { planRamLayout } from '../../lib/algo/layout.js';
import { FNC_ERASE, FNC_PROGRAM, FNC_VERIFY, type FlashAlgorithm } from '../../lib/algo/algorithm.js';
import { STACK_CANARY, type BatchCall } from '../../lib/algo/sequencer.js';
import { TARGET_CODE } from '../../lib/algo/target-code.js';
import { BOARDS } from '../../lib/boards.js';
import { AlgorithmCallError, RspflashError, TargetStateError } from '../../lib/errors.js';
import { FIXTURES, readFixtureJson, startQemu, type BootFixtureInfo, type QemuInstance } from '../helpers/qemu.js';
import { gdbReadMemory, gdbWriteMemory } from '../helpers/gdb-multiarch.js';
import { loadFixtureAlgorithm, withRunner } from '../helpers/algorithms.js';
import { erasedBytes, sameBytes, seededBytes } from '../helpers/bytes.js';
import { rejection } from '../helpers/errors.js';

const FLASH = 0xc0000000;
const FLASH_END = FLASH + (32 << 20);
const SECTOR = 4096;
const PAGE = 256;
/** ISRAM, apart from the boot image's ITCM/DTCM (the qemu-an547 board preset). */
const RAM = BOARDS['qemu-an547']!.ram;
const FLM_INIT_MAGIC = 0x1d1dc0de;
const ERR_ARG = 1;
const ERR_NOINIT = 2;
const ERR_RW = 3;

const boot = readFixtureJson<BootFixtureInfo>(FIXTURES.bootAn547Json).addresses;

const u32s = (data: Uint8Array) => Array.from({ length: data.length >> 2 }, (_, i) => new DataView(data.buffer, data.byteOffset).getUint32(i * 4, true));

let qemu: QemuInstance;
beforeAll(async () => {
  qemu = await startQemu({ machine: 'mps3-an547' });
});
afterAll(async () => {
  await qemu?.stop();
});

describe.each([
  ['nor-sim.flm (CMSIS FLM)', FIXTURES.norSim],
  ['nor-sim.yaml (probe-rs)', FIXTURES.norSimYaml],
])('%s through the runner', (_name, file) => {
  const algo = loadFixtureAlgorithm(file);
  const base = file === FIXTURES.norSim ? FLASH + 0x100000 : FLASH + 0x180000;

  it('Init, EraseSector, ProgramPage (twice: bits only clear), BlankCheck, Verify, UnInit return what the flash holds', async () => {
    const a = seededBytes(PAGE, 1);
    const b = seededBytes(PAGE, 2);
    const anded = a.map((x, i) => x & b[i]!);
    await withRunner(qemu, algo, { ram: RAM }, async (runner) => {
      const buf0 = runner.buffer(0).address;
      const buf1 = runner.buffer(1).address;
      await runner.writeBuffer(0, a);
      await runner.writeBuffer(1, b);
      expect(await runner.call('Init', [FLASH, 12_000_000, FNC_PROGRAM])).toBe(0);
      expect(await runner.call('EraseSector', [base])).toBe(0);
      expect(await runner.call('EraseSector', [base + SECTOR])).toBe(0);
      expect(await runner.call('BlankCheck', [base, 2 * SECTOR, 0xff])).toBe(0);
      expect(await runner.call('ProgramPage', [base, PAGE, buf0])).toBe(0);
      expect(await runner.call('ProgramPage', [base, PAGE, buf1])).toBe(0);
      expect(await runner.call('ProgramPage', [base + SECTOR + 8, 5, buf1])).toBe(0); // short, unaligned length
      expect(await runner.call('BlankCheck', [base, 16, 0xff])).toBe(1);
      expect(await runner.call('BlankCheck', [base + PAGE, SECTOR - PAGE, 0xff])).toBe(0);
      // Verify returns adr + sz on success, the first differing address otherwise.
      expect(await runner.call('Verify', [base, PAGE, buf0])).toBe(base + a.findIndex((x, i) => x !== anded[i]));
      await runner.writeBuffer(0, anded);
      expect(await runner.call('Verify', [base, PAGE, buf0])).toBe(base + PAGE);
      expect(await runner.callChecked('Verify', [base, PAGE, buf0])).toBe(base + PAGE);
      // Argument checks of the algorithm come back as its return codes.
      expect(await runner.call('EraseSector', [base + 0x10])).toBe(ERR_ARG);
      expect(await runner.call('ProgramPage', [base + 0x80, PAGE, buf0])).toBe(ERR_ARG); // crosses a page
      expect(await runner.call('UnInit', [FNC_PROGRAM])).toBe(0);
      expect(await runner.call('EraseSector', [base])).toBe(ERR_NOINIT);
    });
    const back = await gdbReadMemory(qemu.connectOptions, base, 2 * SECTOR);
    expect(sameBytes(back.subarray(0, PAGE), anded)).toBe(true);
    expect(sameBytes(back.subarray(PAGE, SECTOR), erasedBytes(SECTOR - PAGE))).toBe(true);
    expect(sameBytes(back.subarray(SECTOR, SECTOR + 8), erasedBytes(8))).toBe(true);
    expect(sameBytes(back.subarray(SECTOR + 8, SECTOR + 13), b.subarray(0, 5))).toBe(true);
    expect(sameBytes(back.subarray(SECTOR + 13), erasedBytes(SECTOR - 13))).toBe(true);
  });

  it('EraseChip sets all 32 MiB to 0xFF', async () => {
    await withRunner(qemu, algo, { ram: RAM }, async (runner) => {
      await runner.callChecked('Init', [FLASH, 0, FNC_ERASE]);
      await runner.writeBuffer(0, seededBytes(PAGE, 3));
      for (const at of [FLASH, FLASH + 0x1000000, FLASH_END - SECTOR]) {
        await runner.callChecked('EraseSector', [at]);
        await runner.callChecked('ProgramPage', [at, PAGE, runner.buffer(0).address]);
      }
      expect(await runner.callChecked('EraseChip', [])).toBe(0);
      expect(await runner.call('BlankCheck', [FLASH, 32 << 20, 0xff])).toBe(0);
    });
    for (const at of [FLASH, FLASH + 0x1000000, FLASH_END - SECTOR]) {
      expect(sameBytes(await gdbReadMemory(qemu.connectOptions, at, PAGE), erasedBytes(PAGE)), `flash at 0x${at.toString(16)} erased`).toBe(true);
    }
  });

  it('without Init, the routines fail with "not initialised" (2) and callChecked throws AlgorithmCallError with call, arguments and result', async () => {
    await withRunner(qemu, algo, { ram: RAM }, async (runner) => {
      const err = await rejection(runner.callChecked('EraseSector', [FLASH]));
      expect(err).toBeInstanceOf(AlgorithmCallError);
      expect(err).toMatchObject({ code: 'RSPFLASH_ALGO_FAILED', fn: 'EraseSector', args: [FLASH], result: ERR_NOINIT });
      expect((err as Error).message).toBe('EraseSector(0xc0000000) failed: it returned 2 (0x2)');
      const verify = await rejection(runner.callChecked('Verify', [FLASH, PAGE, runner.buffer(0).address]));
      expect((verify as Error).message).toMatch(/^Verify\(0xc0000000, 0x00000100, 0x[0-9a-f]{8}\) found a difference at /);
    });
  });

  it('loads RW data and zeroes ZI: Init sees its RW marker through R9 and counts from zero in ZI, over RAM full of 0xA5', async () => {
    const layout = planRamLayout(algo, RAM);
    const span = layout.used[0]!;
    const gdb = await GdbClient.connect(qemu.connectOptions);
    try {
      await gdb.writeMemory(span.start, new Uint8Array(span.end - span.start).fill(0xa5));
      const runner = await AlgorithmRunner.create(gdb, algo, { ram: RAM });
      try {
        expect(runner.layout.staticBase).toBe(runner.layout.algorithm + algo.staticBaseOffset!);
        expect(await runner.call('Init', [FLASH + 0x40, 8_000_000, FNC_VERIFY])).toBe(0);
        // struct flm_zi after the 8-byte RW block: inited, fnc, clk, adr, init_count, uninit_fnc.
        const zi = u32s(await gdb.readMemory(runner.layout.staticBase! + 8, 24));
        expect(zi).toEqual([FLM_INIT_MAGIC, FNC_VERIFY, 8_000_000, FLASH + 0x40, 1, 0]);
      } finally {
        await runner.close();
      }
    } finally {
      await gdb.close();
    }
  });

  it('a wrong static base is caught: Init returns 3 (bad RW marker) from a single call and fails a batch', async () => {
    const skewed: FlashAlgorithm = { ...algo, staticBaseOffset: algo.staticBaseOffset! + 4 };
    await withRunner(qemu, skewed, { ram: RAM }, async (runner) => {
      expect(await runner.call('Init', [FLASH, 0, FNC_ERASE])).toBe(ERR_RW);
      const err = await rejection(runner.batch(0, [{ fn: 'Init', entry: runner.entry('Init'), args: [FLASH, 0, FNC_ERASE], expect: 0 }]));
      expect(err).toBeInstanceOf(AlgorithmCallError);
      expect(err).toMatchObject({ fn: 'Init', result: ERR_RW });
    });
  });
});

describe('nor-sim-segger.elf (SEGGER SFL) through the runner', () => {
  const algo = loadFixtureAlgorithm(FIXTURES.norSimSegger);
  const base = FLASH + 0x200000;

  it('Prepare/Restore, Erase of many sectors, Program of many pages, CheckBlank, Verify, Read, CalcCRC, EraseChip', async () => {
    const data = seededBytes(3 * SECTOR - 100, 4); // not a whole number of pages
    const crcs: number[] = [];
    let readBack: Uint8Array = new Uint8Array(0);
    await withRunner(qemu, algo, { ram: RAM }, async (runner, gdb) => {
      expect(runner.has('EraseSector')).toBe(false);
      const buf0 = runner.buffer(0).address;
      const buf1 = runner.buffer(1).address;
      expect(await runner.call('Init', [FLASH, 0, FNC_PROGRAM])).toBe(0);
      // Erase(addr, index, count): the index must match the address.
      expect(await runner.call('Erase', [base, (base - FLASH) / SECTOR + 1, 1])).toBe(ERR_ARG);
      expect(await runner.callChecked('Erase', [base, (base - FLASH) / SECTOR, 4])).toBe(0);
      expect(await runner.call('BlankCheck', [base, 4 * SECTOR, 0xff])).toBe(0);
      await runner.writeBuffer(0, data);
      expect(await runner.callChecked('Program', [base, data.length, buf0])).toBe(0);
      expect(await runner.call('BlankCheck', [base, 4 * SECTOR, 0xff])).toBe(1);
      expect(await runner.call('BlankCheck', [base + data.length, 4 * SECTOR - data.length, 0xff])).toBe(0);
      expect(await runner.callChecked('Verify', [base, data.length, buf0])).toBe(base + data.length);
      // Read(addr, n, dst) returns n and fills dst.
      expect(await runner.callChecked('Read', [base + 4, 1000, buf1])).toBe(1000);
      readBack = await gdb.readMemory(buf1, 1000);
      // CalcCRC(crc, addr, n, poly) in zlib's convention, chainable; works on RAM too.
      crcs.push(await runner.call('CalcCRC', [0, base, data.length, 0]));
      crcs.push(await runner.call('CalcCRC', [crcs[0]!, base + data.length, 100, 0xedb88320]));
      crcs.push(await runner.call('CalcCRC', [0, buf0, 777, 0]));
      expect(await runner.call('UnInit', [FNC_PROGRAM])).toBe(0);
      expect(await runner.call('Program', [base, 4, buf0])).toBe(ERR_NOINIT);
    });
    const flash = await gdbReadMemory(qemu.connectOptions, base, 4 * SECTOR);
    expect(sameBytes(flash.subarray(0, data.length), data)).toBe(true);
    expect(sameBytes(flash.subarray(data.length), erasedBytes(4 * SECTOR - data.length))).toBe(true);
    expect(sameBytes(readBack, flash.subarray(4, 1004))).toBe(true);
    expect(crcs).toEqual([crc32(data), crc32(flash.subarray(0, data.length + 100)), crc32(data.subarray(0, 777))]);

    await withRunner(qemu, algo, { ram: RAM }, async (runner) => {
      await runner.callChecked('Init', [FLASH, 0, FNC_ERASE]);
      expect(await runner.callChecked('EraseChip', [])).toBe(0);
    });
    expect(sameBytes(await gdbReadMemory(qemu.connectOptions, base, 4 * SECTOR), erasedBytes(4 * SECTOR))).toBe(true);
  });
});

describe('batches on the sequencer', () => {
  const algo = loadFixtureAlgorithm(FIXTURES.norSim);
  const base = FLASH + 0x400000;

  it('erase, program and verify 64 KiB in striding runs, one entry each', async () => {
    const data = seededBytes(64 << 10, 5);
    await withRunner(qemu, algo, { ram: RAM, bufferSize: 64 << 10 }, async (runner) => {
      const buf = runner.buffer(0);
      expect(buf.size).toBe(64 << 10);
      await runner.callChecked('Init', [FLASH, 0, FNC_PROGRAM]);
      const calls: BatchCall[] = [
        { fn: 'EraseSector', entry: runner.entry('EraseSector'), args: [base, SECTOR], expect: 0, repeat: 16, stride: true },
        { fn: 'ProgramPage', entry: runner.entry('ProgramPage'), args: [base, PAGE, buf.address], expect: 0, repeat: 256, stride: true },
        { fn: 'Verify', entry: runner.entry('Verify'), args: [base, PAGE, buf.address], expect: base + PAGE, repeat: 256, stride: true, expectStride: true },
      ];
      const before = runner.stats.calls;
      expect(await runner.batch(0, calls, { data })).toEqual([]);
      expect(runner.stats.calls - before).toBe(16 + 256 + 256);
    });
    expect(sameBytes(await gdbReadMemory(qemu.connectOptions, base, data.length), data)).toBe(true);
  });

  it('stops at a failing call in the middle and reports its exact, advanced arguments; later calls never run', async () => {
    const last = FLASH_END - 4 * PAGE; // the 5th page of the run lies outside the device
    const data = seededBytes(8 * PAGE, 6);
    await withRunner(qemu, algo, { ram: RAM }, async (runner) => {
      const buf = runner.buffer(0).address;
      await runner.callChecked('Init', [FLASH, 0, FNC_PROGRAM]);
      await runner.callChecked('EraseSector', [FLASH_END - SECTOR]);
      await runner.callChecked('EraseSector', [base]);
      const err = await rejection(
        runner.batch(
          0,
          [
            { fn: 'ProgramPage', entry: runner.entry('ProgramPage'), args: [last, PAGE, buf], expect: 0, repeat: 8, stride: true },
            { fn: 'ProgramPage', entry: runner.entry('ProgramPage'), args: [base, PAGE, buf], expect: 0 },
          ],
          { data },
        ),
      );
      expect(err).toBeInstanceOf(AlgorithmCallError);
      expect(err).toMatchObject({ fn: 'ProgramPage', args: [FLASH_END, PAGE, buf + 4 * PAGE], result: ERR_ARG });
      expect((err as Error).message).toBe(`ProgramPage(0xc2000000, 0x00000100, 0x${(buf + 4 * PAGE).toString(16).padStart(8, '0')}) failed: it returned 1 (0x1)`);

      // A Verify run that finds a difference on its third page: the address found and the advanced arguments.
      await runner.callChecked('EraseSector', [base + SECTOR]);
      await runner.writeBuffer(0, data.subarray(0, 4 * PAGE));
      for (let i = 0; i < 4; i++) await runner.callChecked('ProgramPage', [base + SECTOR + i * PAGE, PAGE, buf + i * PAGE]);
      const changed = data.slice(0, 4 * PAGE);
      changed[2 * PAGE + 17] = changed[2 * PAGE + 17]! ^ 0x01;
      const verify = await rejection(
        runner.batch(
          0,
          [{ fn: 'Verify', entry: runner.entry('Verify'), args: [base + SECTOR, PAGE, buf], expect: base + SECTOR + PAGE, repeat: 4, stride: true, expectStride: true }],
          { data: changed },
        ),
      );
      expect(verify).toMatchObject({ fn: 'Verify', args: [base + SECTOR + 2 * PAGE, PAGE, buf + 2 * PAGE], result: base + SECTOR + 2 * PAGE + 17 });
      expect((verify as Error).message).toMatch(/^Verify\(0xc0401200, 0x00000100, 0x[0-9a-f]{8}\) found a difference at 0xc0401211 \(expected it to return 0xc0401300\)$/);
    });
    const tail = await gdbReadMemory(qemu.connectOptions, FLASH_END - SECTOR, SECTOR);
    expect(sameBytes(tail.subarray(SECTOR - 4 * PAGE), data.subarray(0, 4 * PAGE))).toBe(true);
    expect(sameBytes(tail.subarray(0, SECTOR - 4 * PAGE), erasedBytes(SECTOR - 4 * PAGE))).toBe(true);
    // The entry after the failing one never ran.
    expect(sameBytes(await gdbReadMemory(qemu.connectOptions, base, SECTOR), erasedBytes(SECTOR))).toBe(true);
  });

  it('collects results (CRC-32 of many ranges) equal to node:zlib crc32, in flash and RAM, any alignment and length', async () => {
    const data = seededBytes(3 * SECTOR, 7);
    const ranges = [
      { address: base + 0x20000, length: 3 * SECTOR },
      { address: base + 0x20001, length: 1000 },
      { address: base + 0x20003, length: 1 },
      { address: base + 0x20000, length: 0 },
      { address: boot['rt_add']!, length: 64 }, // the boot image's code in ITCM
    ];
    let crcs: number[] = [];
    let many: number[] = [];
    let hashes: number[] = [];
    let expectedHashes: number[] = [];
    await withRunner(qemu, algo, { ram: RAM }, async (runner, gdb) => {
      await runner.callChecked('Init', [FLASH, 0, FNC_PROGRAM]);
      await runner.batch(
        0,
        [
          { fn: 'EraseSector', entry: runner.entry('EraseSector'), args: [base + 0x20000, SECTOR], expect: 0, repeat: 3, stride: true },
          { fn: 'ProgramPage', entry: runner.entry('ProgramPage'), args: [base + 0x20000, PAGE, runner.buffer(0).address], expect: 0, repeat: 48, stride: true },
        ],
        { data },
      );
      crcs = await runner.crc32Many(ranges);
      expect(await runner.crc32(ranges[1]!.address, ranges[1]!.length)).toBe(crcs[1]);
      // The skip-unchanged hash: word loads when aligned, byte loads otherwise, same function as the host's.
      const odd = [0, 1, 2, 3, 5, 6, 7, 4095].map((length, i) => ({ address: base + 0x20000 + i, length }));
      hashes = await runner.hash32Many([...ranges.slice(0, 4), ...odd]);
      expectedHashes = [data, data.subarray(1, 1001), data.subarray(3, 4), data.subarray(0, 0), ...odd.map((r, i) => data.subarray(i, i + r.length))].map((d) =>
        murmur3(d),
      );
      // More ranges than one table holds: split over several runs, order kept.
      const entries = runner.layout.buffers[0]!.tableEntries;
      const lots = Array.from({ length: entries + 5 }, (_, i) => ({ address: base + 0x20000 + i, length: 64 }));
      many = await runner.crc32Many(lots);
      expect(many).toHaveLength(entries + 5);
      const code = await gdb.readMemory(boot['rt_add']!, 64);
      expect(crcs[4]).toBe(crc32(code));
    });
    expect(crcs.slice(0, 4)).toEqual([crc32(data), crc32(data.subarray(1, 1001)), crc32(data.subarray(3, 4)), 0]);
    expect(many).toEqual(many.map((_, i) => crc32(data.subarray(i, i + 64))));
    expect(hashes).toEqual(expectedHashes);
  });
});

describe('round trips', () => {
  const algo = loadFixtureAlgorithm(FIXTURES.norSim);

  it('a single call is 3 round trips (G, c, g), canary check included; a batch without results 4 (M, G, c, g) once its RAM is saved', async () => {
    await withRunner(qemu, algo, { ram: RAM }, async (runner, gdb) => {
      await runner.call('Init', [FLASH, 0, FNC_PROGRAM]); // first call after create: the register cache is warm from now on
      for (const fn of ['Init', 'BlankCheck', 'UnInit'] as const) {
        const before = gdb.stats.roundTrips;
        const packets = gdb.stats.packetsSent;
        await runner.call(fn, fn === 'BlankCheck' ? [FLASH, 16, 0xff] : [FLASH, 0, FNC_PROGRAM]);
        expect(gdb.stats.roundTrips - before, `${fn}: round trips`).toBe(3);
        expect(gdb.stats.packetsSent - packets, `${fn}: packets`).toBe(3);
      }
      const batch = [
        { fn: 'Init', entry: runner.entry('Init'), args: [FLASH, 0, FNC_PROGRAM], expect: 0 },
        { fn: 'BlankCheck', entry: runner.entry('BlankCheck'), args: [FLASH_END - 16, 16, 0xa5], expect: 1 },
      ];
      let before = gdb.stats.roundTrips;
      await runner.batch(0, batch);
      // Lazy borrowing: the first write to the table area saves it first (one m).
      expect(gdb.stats.roundTrips - before, 'first batch: m (save), M, G, c, g').toBe(5);
      before = gdb.stats.roundTrips;
      await runner.batch(0, batch);
      expect(gdb.stats.roundTrips - before, 'same batch again: M, G, c, g').toBe(4);
    });
  });

  it('measures calls per second: 2048 single ProgramPage calls vs the same 2048 in one batch', async () => {
    const single = FLASH + 0x800000;
    const batched = FLASH + 0x880000;
    const data = seededBytes(64 << 10, 8);
    const figures: Record<string, number> = {};
    await withRunner(qemu, algo, { ram: RAM }, async (runner, gdb) => {
      await runner.callChecked('Init', [FLASH, 0, FNC_PROGRAM]);
      const eraseAll = (at: number): BatchCall => ({ fn: 'EraseSector', entry: runner.entry('EraseSector'), args: [at, SECTOR], expect: 0, repeat: 128, stride: true });
      await runner.batch(0, [eraseAll(single), eraseAll(batched)]);
      await runner.writeBuffer(0, data);
      const buf = runner.buffer(0).address;

      const rt0 = gdb.stats.roundTrips;
      let t = performance.now();
      for (let i = 0; i < 2048; i++) await runner.callChecked('ProgramPage', [single + i * PAGE, PAGE, buf + (i % 256) * PAGE]);
      const singleMs = performance.now() - t;
      const singleTrips = gdb.stats.roundTrips - rt0;

      const calls: BatchCall[] = Array.from({ length: 8 }, (_, k) => ({
        fn: 'ProgramPage',
        entry: runner.entry('ProgramPage'),
        args: [batched + k * (64 << 10), PAGE, buf],
        expect: 0,
        repeat: 256,
        stride: true,
      }));
      await runner.batch(0, calls.map((c) => ({ ...c, repeat: 1 }))); // the same table once: saves its area (lazy borrowing) outside the count
      const rt1 = gdb.stats.roundTrips;
      t = performance.now();
      await runner.batch(0, calls);
      const batchMs = performance.now() - t;
      const batchTrips = gdb.stats.roundTrips - rt1;

      expect(singleTrips).toBe(3 * 2048);
      expect(batchTrips).toBe(4);
      figures['single calls/s'] = Math.round(2048 / (singleMs / 1000));
      figures['single ms/call'] = Number((singleMs / 2048).toFixed(3));
      figures['batched calls/s'] = Math.round(2048 / (batchMs / 1000));
      figures['batch ms'] = Number(batchMs.toFixed(1));
    });
    console.log(`runner throughput on QEMU mps3-an547 (2048 ProgramPage of 256 B): ${JSON.stringify(figures)}`);
    const expected = new Uint8Array(512 << 10);
    for (let k = 0; k < 8; k++) expected.set(data, k * (64 << 10));
    expect(sameBytes(await gdbReadMemory(qemu.connectOptions, single, 512 << 10), expected)).toBe(true);
    expect(sameBytes(await gdbReadMemory(qemu.connectOptions, batched, 512 << 10), expected)).toBe(true);
  });
});

describe('default timeouts', () => {
  it("follow the algorithm's figures and scale with the range a call walks (a 32 MiB BlankCheck is not a 1 s job)", async () => {
    const flm = loadFixtureAlgorithm(FIXTURES.norSim); // toProg 100 ms, toErase 500 ms
    const segger = loadFixtureAlgorithm(FIXTURES.norSimSegger);
    await withRunner(qemu, flm, { ram: RAM }, async (runner) => {
      expect(flm.timeouts).toMatchObject({ programPage: 100, eraseSector: 500 });
      expect(runner.timeoutFor('ProgramPage', [FLASH, PAGE, 0])).toBe(1000); // at least a second
      expect(runner.timeoutFor('EraseSector', [FLASH])).toBe(1000);
      expect(runner.timeoutFor('EraseChip', [])).toBe(flm.timeouts.eraseChip);
      expect(runner.timeoutFor('BlankCheck', [FLASH, 32 << 20, 0xff])).toBe(32 * 1024); // 1 ms per KiB
      expect(runner.timeoutFor('Verify', [FLASH, 64 << 10, 0])).toBe(1000);
      expect(runner.timeoutFor('crc32', [0, FLASH, 8 << 20, 0])).toBe(8 * 1024);
      // A batch pays the one-call minimum once, not per repeat: 256 page verifies are not 256 seconds.
      const entry = runner.entry('Verify');
      expect(runner.batchTimeout([{ fn: 'Verify', entry, args: [FLASH, PAGE, 0], expect: 0, repeat: 256 }])).toBe(5000 + 1000 + 256);
      expect(runner.batchTimeout([{ fn: 'EraseSector', entry, args: [FLASH, SECTOR], expect: 0, repeat: 16 }])).toBe(5000 + 1000 + 16 * 500);
    });
    await withRunner(qemu, segger, { ram: RAM }, async (runner) => {
      expect(runner.timeoutFor('Erase', [FLASH, 0, 16])).toBe(16 * 500);
      expect(runner.timeoutFor('Program', [FLASH, 64 << 10, 0])).toBe(256 * 100);
    });
  });
});

describe('close() hands the target back as it found it', () => {
  const algo = loadFixtureAlgorithm(FIXTURES.norSim);
  let own: QemuInstance;
  beforeAll(async () => {
    own = await startQemu({ machine: 'mps3-an547' });
  });
  afterAll(async () => {
    await own?.stop();
  });

  /** Runs `mrs r0, primask; mrs r1, control; b .` from scratch RAM outside the layout; returns [primask, control]. */
  async function systemRegisters(gdb: GdbClient): Promise<[number, number]> {
    const at = RAM.start + RAM.size + 0x1000;
    await gdb.writeMemory(at, Uint8Array.from([0xef, 0xf3, 0x10, 0x80, 0xef, 0xf3, 0x14, 0x81, 0xfe, 0xe7]));
    await gdb.writeRegisters({ pc: at, xpsr: 0x01000000 });
    await gdb.insertBreakpoint(at + 8, 'hw');
    const { interrupted } = await gdb.continue({ timeoutMs: 5000 });
    await gdb.removeBreakpoint(at + 8, 'hw');
    expect(interrupted).toBe(false);
    const r = await gdb.readRegisters(['r0', 'r1', 'pc']);
    expect(r.pc).toBe(at + 8);
    return [r.r0, r.r1];
  }

  it('registers, PRIMASK/CONTROL, every byte of the RAM it used, and the breakpoints are as before', async () => {
    const layout = planRamLayout(algo, RAM);
    const span = layout.used[0]!;
    expect(layout.used).toHaveLength(1);
    const pattern = seededBytes(span.end - span.start, 9);
    await gdbWriteMemory(own.connectOptions, span.start, pattern);

    const gdb = await GdbClient.connect(own.connectOptions);
    let regsBefore: Record<string, number>;
    let regsAfter: Record<string, number>;
    let userBreakpoints: { type: 'sw' | 'hw'; address: number }[];
    try {
      // A debug session in progress: the core idles in the boot image, with the user's breakpoints set.
      await gdb.insertBreakpoint(boot['idle']!, 'hw');
      await gdb.continue({ timeoutMs: 5000 });
      expect((await gdb.readRegisters(['pc'])).pc).toBe(boot['idle']);
      expect(await systemRegisters(gdb)).toEqual([0, 0]);
      await gdb.insertBreakpoint(boot['HardFault_Handler']!, 'hw'); // the runner's fault catcher uses the same address
      await gdb.insertBreakpoint(boot['rt_spin']!, 'sw');
      await gdb.writeRegisters({ r0: 0x11111111, r4: 0x44444444, r9: 0x99999999, r12: 0xcccccccc, lr: 0x12345679, pc: boot['idle']!, sp: 0x2007fff0 });
      regsBefore = await gdb.readCoreRegisters();
      userBreakpoints = gdb.breakpoints;

      const runner = await AlgorithmRunner.create(gdb, algo, { ram: RAM });
      expect(runner.layout).toEqual(layout);
      await runner.callChecked('Init', [FLASH, 0, FNC_PROGRAM]);
      await runner.callChecked('EraseSector', [FLASH + 0x600000]);
      await runner.batch(0, [{ fn: 'ProgramPage', entry: runner.entry('ProgramPage'), args: [FLASH + 0x600000, PAGE, runner.buffer(0).address], expect: 0, repeat: 16, stride: true }], {
        data: seededBytes(16 * PAGE, 10),
      });
      await runner.crc32Many([{ address: FLASH + 0x600000, length: SECTOR }]);
      await runner.writeBuffer(1, seededBytes(4096, 11));
      expect(await systemRegisters(gdb)).toEqual([1, 0]); // while it runs: interrupts masked
      await runner.close();
      await runner.close(); // twice is harmless

      regsAfter = await gdb.readCoreRegisters();
      expect(gdb.breakpoints).toEqual(userBreakpoints);
      // Our reading of the RAM agrees too (the independent one follows below).
      expect(sameBytes(await gdb.readMemory(span.start, span.end - span.start), pattern)).toBe(true);
      expect(await systemRegisters(gdb)).toEqual([0, 0]);
      await gdb.writeRegisters(regsBefore);
      // The user's HardFault breakpoint survived: a fault stops there at once.
      await gdb.writeRegisters({ pc: boot['rt_fault']!, lr: boot['idle']! | 1, xpsr: 0x01000000 });
      const { interrupted } = await gdb.continue({ timeoutMs: 5000 });
      expect(interrupted).toBe(false);
      expect((await gdb.readRegisters(['pc'])).pc).toBe(boot['HardFault_Handler']);
      await gdb.monitor('system_reset');
    } finally {
      await gdb.close();
    }
    expect(regsAfter).toEqual(regsBefore);
    const back = await gdbReadMemory(own.connectOptions, span.start, span.end - span.start);
    expect(sameBytes(back, pattern), 'RAM of the whole layout span restored').toBe(true);
  });

  it('with restore: false, leaves its code and data in RAM and the registers as the last call left them', async () => {
    const gdb = await GdbClient.connect(own.connectOptions);
    try {
      const runner = await AlgorithmRunner.create(gdb, algo, { ram: RAM, restore: false });
      await runner.callChecked('Init', [FLASH, 0, FNC_PROGRAM]);
      await runner.close();
      expect(gdb.breakpoints).toEqual([]);
      expect(sameBytes(await gdb.readMemory(runner.layout.helpers, TARGET_CODE.length), TARGET_CODE)).toBe(true);
      expect(u32s(await gdb.readMemory(runner.layout.stackBottom, 4))).toEqual([STACK_CANARY]);
      expect((await gdb.readRegisters(['pc'])).pc).toBe(runner.layout.trap);
    } finally {
      // What restore: false leaves is a killed run's state to the next runner: reset it away.
      await gdb.monitor('system_reset').catch(() => undefined);
      await gdb.close();
    }
  });

  it('refuses calls after close, and to start on a running core', async () => {
    const gdb = await GdbClient.connect(own.connectOptions);
    try {
      const runner = await AlgorithmRunner.create(gdb, algo, { ram: RAM });
      await runner.close();
      const err = await rejection(runner.call('Init', [0, 0, 0]));
      expect(err).toBeInstanceOf(TargetStateError);
      expect((err as Error).message).toMatch(/closed; cannot call Init/);
      expect(() => runner.entry('Read' as never)).toThrow(/has no Read routine/);
      // A core that runs (here: the boot image's idle loop) is not borrowed.
      await gdb.writeRegisters({ pc: boot['idle']!, xpsr: 0x01000000 });
      const running = gdb.continue({ timeoutMs: 300 });
      const busy = await rejection(AlgorithmRunner.create(gdb, algo, { ram: RAM }));
      expect(busy).toBeInstanceOf(TargetStateError);
      expect((busy as Error).message).toMatch(/must be halted/);
      expect((await running).interrupted).toBe(true);
    } finally {
      await gdb.close();
    }
  });

  it('refuses a RAM region that is not RAM, restoring what it touched', async () => {
    const gdb = await GdbClient.connect(own.connectOptions);
    try {
      // 16 KiB at 0x48000000 in QEMU mps3-an547 read as zero and ignore writes.
      const err = await rejection(AlgorithmRunner.create(gdb, algo, { ram: { start: 0x48000000, size: 0x4000 } }));
      expect(err).toBeInstanceOf(RspflashError);
      expect((err as RspflashError).code, (err as Error).message).toBe("RSPFLASH_LOAD_MISMATCH");
      expect((err as Error).message).toMatch(/^rspflash's helper code did not read back as written at 0x4800000[0-9a-f]: is 0x48000000 really RAM\?/);
      expect(gdb.breakpoints).toEqual([]);
    } finally {
      await gdb.close();
    }
  });
});
