/**
 * The runner's error paths on a real core: broken.flm (test/fixtures/README.md)
 * on QEMU mps3-an547 faults (EraseSector: bus fault on a load from
 * 0xF0000000; EraseChip: UDF), hangs (ProgramPage: `b .`), smashes 8 KiB of
 * stack (Verify) and returns nonsense (BlankCheck → 0x1234). Each test gets a
 * fresh QEMU: a faulted core stays in Handler mode until reset.
 */
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';
import { AlgorithmRunner, type RunnerOptions } from '../../lib/algo/runner.js';
import { HELPER_STACK } from '../../lib/algo/layout.js';
import { FNC_ERASE } from '../../lib/algo/algorithm.js';
import { BOARDS } from '../../lib/boards.js';
import {
  AlgorithmCallError,
  AlgorithmFaultError,
  AlgorithmTimeoutError,
  StackOverflowError,
  TargetStateError,
} from '../../lib/errors.js';
import { FIXTURES, readFixtureJson, startQemu, type BootFixtureInfo, type QemuInstance } from '../helpers/qemu.js';
import { loadFixtureAlgorithm } from '../helpers/algorithms.js';
import { rejection } from '../helpers/errors.js';

const FLASH = 0xc0000000;
const RAM = BOARDS['qemu-an547']!.ram;
/** Long enough that a runner waiting for the timeout instead of catching the fault would fail the test (vitest: 60 s). */
const NEVER_MS = 600_000;
const HARDFAULT = 3;

const boot = readFixtureJson<BootFixtureInfo>(FIXTURES.bootAn547Json).addresses;
const info = readFixtureJson(FIXTURES.brokenJson);
const algo = loadFixtureAlgorithm(FIXTURES.broken);
/** Offset range [start, end) of a routine in the blob: from its entry to the next routine's. */
function routine(name: string): [number, number] {
  const entries = Object.values(info.functions).map((v) => v & ~1).sort((a, b) => a - b);
  const start = info.functions[name]! & ~1;
  return [start, entries.find((e) => e > start) ?? info.codeSize];
}

let qemu: QemuInstance;
let gdb: GdbClient;
beforeEach(async () => {
  qemu = await startQemu({ machine: 'mps3-an547' });
  gdb = await GdbClient.connect(qemu.connectOptions);
});
afterEach(async () => {
  await gdb?.close().catch(() => undefined);
  await qemu?.stop();
});

const create = (options: Partial<RunnerOptions> = {}) => AlgorithmRunner.create(gdb, algo, { ram: RAM, ...options });

describe('a routine that faults', () => {
  it('is caught at once even when the algorithm runs over the application\'s own vector table (RAM at 0x0, like Alif\'s ITCM)', async () => {
    // The boot image's vector table and code live in ITCM at 0x0: the runner overwrites them, so only its
    // own vector table (installed in VTOR) can turn the fault into a stop. Everything is put back on close.
    const before = await gdb.readMemory(0, 0x2000);
    const runner = await create({ ram: { start: 0x0, size: 0x40000 } });
    expect(await runner.call('Init', [FLASH, 0, FNC_ERASE])).toBe(0);
    const err = await rejection(runner.call('EraseSector', [FLASH], NEVER_MS));
    expect(err).toBeInstanceOf(AlgorithmFaultError);
    expect((await gdb.readRegisters(['pc'])).pc).toBe(runner.layout.faultLoop);
    await runner.close();
    expect(Buffer.compare(Buffer.from(await gdb.readMemory(0, 0x2000)), Buffer.from(before))).toBe(0);
  });

  it('EraseSector (bus fault on a load from 0xF0000000): AlgorithmFaultError with the call, its arguments, the faulting PC and HardFault — at once, not after the timeout', async () => {
    const runner = await create();
    expect(await runner.call('Init', [FLASH, 0, FNC_ERASE])).toBe(0);
    const err = await rejection(runner.call('EraseSector', [FLASH + 0x3000], NEVER_MS));
    expect(err).toBeInstanceOf(AlgorithmFaultError);
    expect(err).not.toBeInstanceOf(AlgorithmTimeoutError);
    const fault = err as AlgorithmFaultError;
    expect(fault.code).toBe('RSPFLASH_ALGO_FAULT');
    expect(fault.fn).toBe('EraseSector');
    expect(fault.args).toEqual([FLASH + 0x3000]);
    expect(fault.xpsr! & 0x1ff).toBe(HARDFAULT);
    // The PC is where the algorithm faulted (the stacked PC), inside EraseSector.
    const [start, end] = routine('EraseSector');
    expect(fault.pc! - runner.layout.algorithm).toBeGreaterThanOrEqual(start);
    expect(fault.pc! - runner.layout.algorithm).toBeLessThan(end);
    const pc = `0x${fault.pc!.toString(16).padStart(8, '0')}`;
    expect(fault.message).toBe(
      `EraseSector(0xc0003000) faulted at PC ${pc} (EraseSector+0x${(fault.pc! - runner.layout.algorithm - start).toString(16)}): ` +
        'HardFault (CFSR 0x00008200: precise data bus error, bus fault address 0xf0000000; HFSR 0x40000000); ' +
        `the core stopped at PC 0x${(runner.layout.faultLoop).toString(16).padStart(8, '0')}, HardFault, LR 0xfffffff9`,
    );
    expect(fault.hint).toMatch(/crashed/);
    // The core is halted in rspflash's own fault loop (its vector table was in VTOR), not the boot image's handler; the link works.
    expect(gdb.state).toBe('halted');
    expect((await gdb.readRegisters(['pc'])).pc).toBe(runner.layout.faultLoop);
    await runner.close();
  });

  it('EraseChip (UDF): undefined instruction, at the entry of EraseChip', async () => {
    const runner = await create();
    const err = (await rejection(runner.callChecked('EraseChip', [], NEVER_MS))) as AlgorithmFaultError;
    expect(err).toBeInstanceOf(AlgorithmFaultError);
    expect(err.pc).toBe(runner.layout.algorithm + routine('EraseChip')[0]);
    expect(err.message).toMatch(/^EraseChip\(\) faulted at PC 0x[0-9a-f]{8} \(EraseChip\+0x0\): HardFault \(CFSR 0x00010000: undefined instruction; HFSR 0x40000000\)/);
    await runner.close();
  });

  it('in a batch: the error names the call that faulted with its arguments and place in the batch, not the sequencer', async () => {
    const runner = await create();
    const err = (await rejection(
      runner.batch(0, [
        { fn: 'Init', entry: runner.entry('Init'), args: [FLASH, 0, FNC_ERASE], expect: 0 },
        { fn: 'EraseSector', entry: runner.entry('EraseSector'), args: [FLASH + 0x5000, 0x1000], expect: 0, repeat: 3, stride: true },
      ]),
    )) as AlgorithmFaultError;
    expect(err).toBeInstanceOf(AlgorithmFaultError);
    expect(err.fn).toBe('EraseSector');
    expect(err.args).toEqual([FLASH + 0x5000, 0x1000]);
    expect(err.message).toMatch(/^EraseSector\(0xc0005000, 0x00001000\) faulted at PC 0x[0-9a-f]{8} \(EraseSector\+0x[0-9a-f]+\): HardFault .*\[entry 2 of a batch of 2\]$/);
    await runner.close();
  });

  it('leaves the runner refusing further calls (TargetStateError: reset first); after monitor system_reset a fresh runner works and QEMU lives on', async () => {
    const runner = await create();
    await rejection(runner.call('EraseSector', [FLASH], NEVER_MS));
    for (const next of [
      () => runner.call('Init', [FLASH, 0, FNC_ERASE]),
      () => runner.batch(0, [{ fn: 'Init', entry: runner.entry('Init'), args: [FLASH, 0, FNC_ERASE], expect: 0 }]),
      () => runner.crc32(FLASH, 16),
    ]) {
      const err = await rejection(next());
      expect(err).toBeInstanceOf(TargetStateError);
      expect((err as Error).message).toMatch(/^The core is still in an exception handler after EraseSector\(0xc0000000\) faulted \(HardFault\); reset the target and load the algorithm again before calling /);
      expect((err as TargetStateError).hint).toMatch(/reset/);
    }
    // close() runs no code on the faulted core (that would lock it up), but still puts RAM and breakpoints back.
    const runs = runner.stats.runs;
    await runner.close();
    expect(runner.stats.runs).toBe(runs);
    expect(gdb.breakpoints).toEqual([]);

    await gdb.monitor('system_reset');
    expect((await gdb.readRegisters(['pc'])).pc).toBe(boot['Reset_Handler']);
    const fresh = await create();
    expect(await fresh.call('Init', [FLASH, 0, FNC_ERASE])).toBe(0);
    expect(await fresh.call('BlankCheck', [FLASH, 16, 0xff])).toBe(0x1234);
    expect(await fresh.crc32(boot['rt_add']!, 32)).toBe(crc32(await gdb.readMemory(boot['rt_add']!, 32)));
    await fresh.close();
    expect(await gdb.rawRequest('?')).toMatch(/^[ST]/); // still connected to a live QEMU
  });
});

describe('a routine that hangs', () => {
  it('ProgramPage (b .): AlgorithmTimeoutError after the configured timeout, core halted, the link and the runner usable', async () => {
    const runner = await create();
    await runner.callChecked('Init', [FLASH, 0, FNC_ERASE]);
    const err = (await rejection(runner.call('ProgramPage', [FLASH, 256, runner.buffer(0).address], 300))) as AlgorithmTimeoutError;
    expect(err).toBeInstanceOf(AlgorithmTimeoutError);
    expect(err.code).toBe('RSPFLASH_ALGO_TIMEOUT');
    expect(err.fn).toBe('ProgramPage');
    expect(err.args).toEqual([FLASH, 256, runner.buffer(0).address]);
    expect(err.timeoutMs).toBe(300);
    const [start, end] = routine('ProgramPage');
    expect(err.pc! - runner.layout.algorithm).toBeGreaterThanOrEqual(start);
    expect(err.pc! - runner.layout.algorithm).toBeLessThan(end);
    expect(err.message).toMatch(/^ProgramPage\(0xc0000000, 0x00000100, 0x[0-9a-f]{8}\) did not return within 300 ms; the core was halted at PC 0x[0-9a-f]{8} \(ProgramPage\+0x0\), thread mode$/);
    expect(gdb.state).toBe('halted');
    expect(await gdb.readMemory(boot['rt_add']!, 4)).toHaveLength(4);
    // Not a fault: the core is in thread mode and takes further calls.
    expect(await runner.call('Init', [FLASH, 0, FNC_ERASE])).toBe(0);
    await runner.close();
  });

  it("uses the algorithm's own timeout when none is given (toProg 100 ms → at least 1 s), and names the call in a batch", async () => {
    const runner = await create();
    const err = (await rejection(runner.call('ProgramPage', [FLASH, 256, 0]))) as AlgorithmTimeoutError;
    expect(err.timeoutMs).toBe(1000);
    const batched = (await rejection(
      runner.batch(0, [{ fn: 'ProgramPage', entry: runner.entry('ProgramPage'), args: [FLASH + 0x100, 256, runner.buffer(0).address], expect: 0, repeat: 2, stride: true }], {
        timeoutMs: 200,
      }),
    )) as AlgorithmTimeoutError;
    expect(batched).toBeInstanceOf(AlgorithmTimeoutError);
    expect(batched).toMatchObject({ fn: 'ProgramPage', args: [FLASH + 0x100, 256, runner.buffer(0).address], timeoutMs: 200 });
    expect(batched.message).toMatch(/\[entry 1 of a batch of 1\]$/);
    await runner.close();
  });
});

describe('a routine that overflows its stack', () => {
  // Verify writes 0xDEADC0DE over the 8 KiB below its SP. With 7 KiB of stack the smash
  // reaches about 1 KiB below the stack: the canary and the CRC table, which guards the code.
  const stackSize = 7 * 1024;

  it('through batch(): StackOverflowError from the sequencer, naming the call; the runner then works on (canary re-armed, CRC table reloaded)', async () => {
    const runner = await create({ stackSize });
    expect(runner.layout.stackTop - runner.layout.stackBottom).toBe(stackSize + HELPER_STACK);
    const crcBefore = await runner.crc32(boot['rt_add']!, 64); // loads the CRC table
    const verify = { fn: 'Verify', entry: runner.entry('Verify'), args: [FLASH, 256, runner.buffer(0).address], expect: 0 };
    const err = (await rejection(runner.batch(0, [verify]))) as StackOverflowError;
    expect(err).toBeInstanceOf(StackOverflowError);
    expect(err.code).toBe('RSPFLASH_ALGO_STACK_OVERFLOW');
    expect(err.fn).toBe('Verify');
    expect(err.message).toMatch(/^Verify\(0xc0000000, 0x00000100, 0x[0-9a-f]{8}\) overflowed its stack: the canary at 0x[0-9a-f]{8} was overwritten/);
    expect(err.hint).toMatch(/more stack/);
    // The smash hit the CRC table; the runner noticed and loads it again.
    expect(await runner.crc32(boot['rt_add']!, 64)).toBe(crcBefore);
    expect(crcBefore).toBe(crc32(await gdb.readMemory(boot['rt_add']!, 64)));
    expect(await runner.call('Init', [FLASH, 0, FNC_ERASE])).toBe(0);
    await runner.close();
  });

  it('through a single call(): the call shim checks the canary in the same run (still 3 round trips)', async () => {
    const runner = await create({ stackSize });
    await runner.call('Init', [FLASH, 0, FNC_ERASE]);
    const before = gdb.stats.roundTrips;
    const err = await rejection(runner.call('Verify', [FLASH, 256, runner.buffer(0).address]));
    expect(err).toBeInstanceOf(StackOverflowError);
    expect((err as StackOverflowError).fn).toBe('Verify');
    // G, c, g for the call; one M to re-arm the canary (error path only).
    expect(gdb.stats.roundTrips - before).toBe(4);
    expect(await runner.call('BlankCheck', [FLASH, 16, 0xff])).toBe(0x1234);
    await runner.close();
  });

  it('with a stack it fits in, the same Verify is no overflow', async () => {
    const runner = await create({ stackSize: 9 * 1024 });
    expect(await runner.call('Verify', [FLASH, 256, runner.buffer(0).address])).toBe(0);
    expect(await runner.batch(0, [{ fn: 'Verify', entry: runner.entry('Verify'), args: [FLASH, 256, 0], expect: 0 }])).toEqual([]);
    await runner.close();
  });
});

describe('a routine that returns nonsense', () => {
  it('BlankCheck → 0x1234: callChecked says the range is not blank, with the value', async () => {
    const runner = await create();
    const err = (await rejection(runner.callChecked('BlankCheck', [FLASH, 0x1000, 0xff]))) as AlgorithmCallError;
    expect(err).toBeInstanceOf(AlgorithmCallError);
    expect(err.result).toBe(0x1234);
    expect(err.message).toBe('BlankCheck(0xc0000000, 0x00001000, 0x000000ff): the range is not blank (returned 0x00001234)');
    await runner.close();
  });
});
