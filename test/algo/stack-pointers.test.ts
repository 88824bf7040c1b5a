/**
 * The runner gives back both stack pointers. An RTOS application runs threads
 * on PSP (CONTROL.SPSEL = 1): the debugger's SP then is PSP, and MSP must come
 * back untouched too. QEMU's debugger cannot write CONTROL or read MSP, so a
 * few instructions of our own set the state up and read it back.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';
import { AlgorithmRunner } from '../../lib/algo/runner.js';
import { FNC_PROGRAM } from '../../lib/algo/algorithm.js';
import { BOARDS } from '../../lib/boards.js';
import { FIXTURES, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { loadFixtureAlgorithm } from '../helpers/algorithms.js';

/** Assembled with arm-none-eabi-as (cortex-m33 syntax, ARMv8-M Mainline encodings the M55 runs). */
const CODE = Buffer.from('022080f31488bff36f8ffee7eff30880eff30981eff31482fee7', 'hex');
/** movs r0,#2; msr control,r0; isb; b . */
const SET_PSP_MODE = 0x00;
const SET_PSP_MODE_END = 0x0a;
/** mrs r0,msp; mrs r1,psp; mrs r2,control; b . */
const READ_SPS = 0x0c;
const READ_SPS_END = 0x18;
/** ISRAM, outside the runner's board RAM (0x21000000 + 256 KiB). */
const AT = 0x21100000;

let qemu: QemuInstance;
beforeAll(async () => {
  qemu = await startQemu({ machine: 'mps3-an547' });
});
afterAll(async () => {
  await qemu?.stop();
});

async function runTo(gdb: GdbClient, start: number, end: number): Promise<Record<string, number>> {
  await gdb.writeRegisters({ pc: AT + start, xpsr: 0x01000000 });
  await gdb.insertBreakpoint(AT + end, 'hw');
  await gdb.continue({ timeoutMs: 5000 });
  await gdb.removeBreakpoint(AT + end, 'hw');
  return gdb.readCoreRegisters();
}

it('restores MSP and PSP for an application whose threads run on PSP', async () => {
  const gdb = await GdbClient.connect(qemu.connectOptions);
  try {
    await gdb.writeMemory(AT, CODE);
    await runTo(gdb, SET_PSP_MODE, SET_PSP_MODE_END); // thread mode on PSP from here
    const psp = 0x20070000;
    await gdb.writeRegisters({ sp: psp }); // the debugger's SP is PSP now
    const before = await runTo(gdb, READ_SPS, READ_SPS_END);
    expect(before.r2).toBe(2);
    expect(before.r1).toBe(psp);
    const msp = before.r0!;

    const runner = await AlgorithmRunner.create(gdb, loadFixtureAlgorithm(FIXTURES.norSim), { ram: BOARDS['qemu-an547']!.ram });
    await runner.callChecked('Init', [0xc0000000, 0, FNC_PROGRAM]);
    await runner.callChecked('UnInit', [FNC_PROGRAM]);
    await runner.close();

    const after = await runTo(gdb, READ_SPS, READ_SPS_END);
    expect({ msp: after.r0, psp: after.r1, control: after.r2 }).toEqual({ msp, psp, control: 2 });
  } finally {
    await gdb.close();
  }
});
