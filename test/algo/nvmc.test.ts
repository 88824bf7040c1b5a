/**
 * The runner on a real flash controller model: QEMU microbit (nRF51822,
 * Cortex-M0, ARMv6-M) with nvmc-nrf51.flm driving the emulated NVMC (erase
 * page, write-enable, bits only clear). Flash is read back independently with
 * gdb-multiarch, never written through the debugger (QEMU's debugger writes
 * would bypass the NVMC). Tests program from 0x10000 upward: the boot image
 * lives in page 0.
 */
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';
import { AlgorithmRunner } from '../../lib/algo/runner.js';
import { FNC_PROGRAM } from '../../lib/algo/algorithm.js';
import type { BatchCall } from '../../lib/algo/sequencer.js';
import { AlgorithmFaultError, TargetStateError } from '../../lib/errors.js';
import { FIXTURES, readFixtureJson, startQemu, type BootFixtureInfo, type QemuInstance } from '../helpers/qemu.js';
import { gdbReadMemory } from '../helpers/gdb-multiarch.js';
import { loadFixtureAlgorithm, withRunner } from '../helpers/algorithms.js';
import { erasedBytes, sameBytes, seededBytes } from '../helpers/bytes.js';
import { rejection } from '../helpers/errors.js';

const PAGE = 1024;
/** The nRF51's 16 KiB of RAM, less the top 2 KiB where the boot image's stack (SP = 0x20004000) lives. */
const RAM = { start: 0x20000000, size: 0x3800 };
const ERR_ARG = 1;
const boot = readFixtureJson<BootFixtureInfo>(FIXTURES.bootMicrobitJson).addresses;
const algo = loadFixtureAlgorithm(FIXTURES.nvmcNrf51);

let qemu: QemuInstance;
beforeAll(async () => {
  qemu = await startQemu({ machine: 'microbit' });
});
afterAll(async () => {
  await qemu?.stop();
});

describe('nvmc-nrf51.flm on the microbit (Cortex-M0, real NVMC model)', () => {
  it('loads in the nRF51 RAM, on a Cortex-M0: the core is cleaned, the ARMv8-M stack-limit routine never runs', async () => {
    await withRunner(qemu, algo, { ram: RAM }, async (runner, gdb) => {
      const cpuid = new DataView((await gdb.readMemory(0xe000ed00, 4)).buffer).getUint32(0, true);
      expect((cpuid >>> 4) & 0xfff).toBe(0xc20); // Cortex-M0
      // One run at create: the core clean routine; an M55 takes two (clean, then MSPLIM/PSPLIM).
      expect(runner.stats.runs).toBe(1);
      expect(runner.layout.buffers[0]!.size % PAGE).toBe(0);
      expect(runner.layout.buffers.at(-1)!.address + runner.layout.buffers.at(-1)!.size).toBeLessThanOrEqual(RAM.start + RAM.size);
    });
  });

  it('erases, programs and verifies pages 0x10000 and 0x10400 with single calls; flash holds the data', async () => {
    const a = seededBytes(PAGE, 1);
    const b = seededBytes(PAGE, 2);
    await withRunner(qemu, algo, { ram: RAM }, async (runner) => {
      const [buf0, buf1] = [runner.buffer(0).address, runner.buffer(1).address];
      await runner.writeBuffer(0, a);
      await runner.writeBuffer(1, b);
      expect(await runner.callChecked('Init', [0, 16_000_000, FNC_PROGRAM])).toBe(0);
      for (const page of [0x10000, 0x10400]) expect(await runner.callChecked('EraseSector', [page])).toBe(0);
      expect(await runner.call('BlankCheck', [0x10000, 2 * PAGE, 0xff])).toBe(0);
      expect(await runner.callChecked('ProgramPage', [0x10000, PAGE, buf0])).toBe(0);
      expect(await runner.callChecked('ProgramPage', [0x10400, PAGE, buf1])).toBe(0);
      expect(await runner.callChecked('Verify', [0x10000, PAGE, buf0])).toBe(0x10000 + PAGE);
      expect(await runner.callChecked('Verify', [0x10400, PAGE, buf1])).toBe(0x10400 + PAGE);
      expect(await runner.call('Verify', [0x10000, PAGE, buf1])).toBe(0x10000 + a.findIndex((x, i) => x !== b[i]));
      expect(await runner.call('BlankCheck', [0x10000, 4, 0xff])).toBe(1);
      expect(await runner.call('EraseSector', [0x10010])).toBe(ERR_ARG);
      expect(await runner.callChecked('UnInit', [FNC_PROGRAM])).toBe(0);
    });
    const back = await gdbReadMemory(qemu.connectOptions, 0x10000, 2 * PAGE);
    expect(sameBytes(back.subarray(0, PAGE), a)).toBe(true);
    expect(sameBytes(back.subarray(PAGE), b)).toBe(true);
  });

  it('has NOR semantics through the NVMC: programming again only clears bits, a short write pads with 0xFF, erase sets 0xFF', async () => {
    const a = seededBytes(PAGE, 3);
    const b = seededBytes(PAGE, 4);
    await withRunner(qemu, algo, { ram: RAM }, async (runner) => {
      const [buf0, buf1] = [runner.buffer(0).address, runner.buffer(1).address];
      await runner.writeBuffer(0, a);
      await runner.writeBuffer(1, b);
      await runner.callChecked('Init', [0, 0, FNC_PROGRAM]);
      await runner.callChecked('EraseSector', [0x10800]);
      await runner.callChecked('EraseSector', [0x10c00]);
      await runner.callChecked('ProgramPage', [0x10800, PAGE, buf0]);
      await runner.callChecked('ProgramPage', [0x10800, PAGE, buf1]);
      await runner.callChecked('ProgramPage', [0x10c00, 6, buf0]); // 1.5 words: the half word past the data stays erased
    });
    const back = await gdbReadMemory(qemu.connectOptions, 0x10800, 2 * PAGE);
    expect(sameBytes(back.subarray(0, PAGE), a.map((x, i) => x & b[i]!))).toBe(true);
    expect(sameBytes(back.subarray(PAGE, PAGE + 6), a.subarray(0, 6))).toBe(true);
    expect(sameBytes(back.subarray(PAGE + 6), erasedBytes(PAGE - 6))).toBe(true);

    await withRunner(qemu, algo, { ram: RAM }, async (runner) => {
      await runner.callChecked('Init', [0, 0, FNC_PROGRAM]);
      await runner.callChecked('EraseSector', [0x10800]);
    });
    expect(sameBytes(await gdbReadMemory(qemu.connectOptions, 0x10800, PAGE), erasedBytes(PAGE))).toBe(true);
  });

  it('erases, programs and verifies 4 pages in one batch, and CRCs them on the target', async () => {
    const data = seededBytes(4 * PAGE, 5);
    let crc = 0;
    await withRunner(qemu, algo, { ram: RAM }, async (runner) => {
      const slot = runner.buffer(0);
      await runner.callChecked('Init', [0, 0, FNC_PROGRAM]);
      for (let done = 0; done < data.length; done += slot.size) {
        const chunk = data.subarray(done, done + slot.size);
        const at = 0x11000 + done;
        const pages = chunk.length / PAGE;
        const calls: BatchCall[] = [
          { fn: 'EraseSector', entry: runner.entry('EraseSector'), args: [at, PAGE], expect: 0, repeat: pages, stride: true },
          { fn: 'ProgramPage', entry: runner.entry('ProgramPage'), args: [at, PAGE, slot.address], expect: 0, repeat: pages, stride: true },
          { fn: 'Verify', entry: runner.entry('Verify'), args: [at, PAGE, slot.address], expect: at + PAGE, repeat: pages, stride: true, expectStride: true },
        ];
        await runner.batch(0, calls, { data: chunk });
      }
      crc = await runner.crc32(0x11000, data.length);
    });
    expect(crc).toBe(crc32(data));
    expect(sameBytes(await gdbReadMemory(qemu.connectOptions, 0x11000, data.length), data)).toBe(true);
  });
});

describe('a fault on the Cortex-M0', () => {
  let own: QemuInstance;
  beforeAll(async () => {
    own = await startQemu({ machine: 'microbit' });
  });
  afterAll(async () => {
    await own?.stop();
  });

  it('is caught on the HardFault handler and reported without the ARMv7-M fault status registers', async () => {
    const gdb = await GdbClient.connect(own.connectOptions);
    try {
      const runner = await AlgorithmRunner.create(gdb, algo, { ram: RAM });
      await runner.callChecked('Init', [0, 0, FNC_PROGRAM]);
      await runner.callChecked('EraseSector', [0x10000]);
      // A source buffer nowhere: the word loads bus-fault, which ARMv6-M takes as HardFault.
      const err = (await rejection(runner.call('ProgramPage', [0x10000, 16, 0x60000000], 600_000))) as AlgorithmFaultError;
      expect(err).toBeInstanceOf(AlgorithmFaultError);
      expect(err.xpsr! & 0x1ff).toBe(3);
      expect(err.message).toMatch(/^ProgramPage\(0x00010000, 0x00000010, 0x60000000\) faulted at PC 0x[0-9a-f]{8} \(ProgramPage\+0x[0-9a-f]+\): HardFault; the core stopped at PC /);
      expect(err.message).not.toMatch(/CFSR/);
      expect((await gdb.readRegisters(['pc'])).pc).toBe(boot['HardFault_Handler']);
      expect(await rejection(runner.call('Init', [0, 0, 0]))).toBeInstanceOf(TargetStateError);
      await runner.close();
      await gdb.monitor('system_reset');
      const fresh = await AlgorithmRunner.create(gdb, algo, { ram: RAM });
      expect(await fresh.call('Init', [0, 0, FNC_PROGRAM])).toBe(0);
      await fresh.close();
    } finally {
      await gdb.close();
    }
  });
});
