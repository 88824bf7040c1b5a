/**
 * The mps3-an547 boot image (test/fixtures/src/boot-an547.S) as tests of a
 * GDB client use it: its symbols, where a called routine's stack goes, and
 * the registers that call one of its `rt_*` routines through the debugger.
 * @module
 */
import { FIXTURES, readFixtureJson, type BootFixtureInfo } from './qemu.js';

/** DTCM, 512 KiB; the boot image uses only its last 4 KiB. */
export const DTCM = 0x2000_0000;
/** Stack for a called routine: just below the boot image's scratch area at the top of DTCM. */
export const STACK_TOP = 0x2007_f000;
/** xPSR with only the Thumb bit set, as a call from the debugger needs. */
export const XPSR_THUMB = 0x0100_0000;

/**
 * Address of a global symbol of the boot image (functions without the Thumb
 * bit, usable as a PC or breakpoint address). Throws naming the symbol if the
 * image has none, rather than handing a test `undefined`.
 *
 * @example
 * ```ts
 * const IDLE = bootSymbol('idle');
 * ```
 */
export function bootSymbol(name: string): number {
  const value = readFixtureJson<BootFixtureInfo>(FIXTURES.bootAn547Json).addresses[name];
  if (value === undefined) throw new Error(`boot-an547 has no symbol ${name}`);
  return value;
}

/**
 * Registers for an AAPCS call of `entry` with `args` in r0…, returning to
 * `idle` (where the test puts a breakpoint), on the {@link STACK_TOP} stack.
 *
 * @example
 * ```ts
 * await gdb.writeRegisters(callRegisters(bootSymbol('rt_add'), [2, 3]));
 * ```
 */
export function callRegisters(entry: number, args: number[]): Record<string, number> {
  const regs: Record<string, number> = { pc: entry, lr: bootSymbol('idle') | 1, sp: STACK_TOP, xpsr: XPSR_THUMB };
  args.forEach((value, i) => (regs[`r${i}`] = value));
  return regs;
}
