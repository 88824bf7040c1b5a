/**
 * lib/cortex-m.ts: the decoders on their own, then the facts read back from
 * QEMU's Cortex-M55 (mps3-an547) and Cortex-M0 (microbit) through the gdbstub.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BFAR,
  CFSR,
  CORTEX_M0_PART,
  CPUID,
  EXCEPTION,
  EXCEPTION_FRAME,
  EXCEPTION_FRAME_BYTES,
  EXC_RETURN,
  FAULT_STATUS_BYTES,
  HFSR,
  MMFAR,
  V8M_MAINLINE_PARTS,
  VTOR,
  XPSR_THUMB,
  cpuidPartNo,
  exceptionName,
  faultCauses,
  hasFaultStatusRegisters,
  isExcReturn,
  parseFaultStatus,
  vectorOffset,
} from '../lib/cortex-m.js';
import { GdbClient } from '../lib/gdb/client.js';
import { FIXTURES, readFixtureJson, startQemu, type BootFixtureInfo, type QemuInstance } from './helpers/qemu.js';

const word = (bytes: Uint8Array, offset = 0): number => new DataView(bytes.buffer, bytes.byteOffset).getUint32(offset, true);

describe('fault status', () => {
  it('parseFaultStatus takes CFSR, HFSR, DFSR, MMFAR, BFAR from one block read at CFSR', () => {
    const block = new Uint8Array(FAULT_STATUS_BYTES);
    const view = new DataView(block.buffer);
    [0x8200, 0x40000000, 0x2, 0x11111111, 0xf0000000].forEach((v, i) => view.setUint32(4 * i, v, true));
    expect(parseFaultStatus(block)).toEqual({ cfsr: 0x8200, hfsr: 0x40000000, dfsr: 0x2, mmfar: 0x11111111, bfar: 0xf0000000 });
    expect([HFSR - CFSR, MMFAR - CFSR, BFAR - CFSR]).toEqual([4, 12, 16]);
    expect(() => parseFaultStatus(block.subarray(0, 16))).toThrow(RangeError);
  });

  it('faultCauses names each CFSR bit and adds the fault address only where its VALID bit says it holds one', () => {
    // What QEMU records for broken.flm's load from 0xF0000000 (test/fixtures/README.md).
    expect(faultCauses({ cfsr: 0x00008200, mmfar: 0x1234, bfar: 0xf0000000 })).toEqual(['precise data bus error', 'bus fault address 0xf0000000']);
    expect(faultCauses({ cfsr: 0x00010000, mmfar: 0, bfar: 0 })).toEqual(['undefined instruction']);
    expect(faultCauses({ cfsr: 0x00000082, mmfar: 0x20000010, bfar: 0xdead })).toEqual(['data access violation', 'MPU fault address 0x20000010']);
    expect(faultCauses({ cfsr: 0, mmfar: 0, bfar: 0 })).toEqual([]);
  });
});

describe('xPSR, vectors, frames', () => {
  it('exceptionName reads the IPSR field whatever else xPSR holds', () => {
    expect(exceptionName(XPSR_THUMB)).toBe('thread mode');
    expect(exceptionName(XPSR_THUMB | EXCEPTION.HardFault)).toBe('HardFault');
    expect(exceptionName(0x61000000 | 16)).toBe('IRQ 0');
    expect(exceptionName(XPSR_THUMB | 480)).toBe('IRQ 464');
    expect(exceptionName(8)).toBe('exception 8');
  });

  it('the HardFault vector is word 3 of a table; the stacked PC is word 6 of the 8-word frame', () => {
    expect(vectorOffset(EXCEPTION.HardFault)).toBe(0x0c);
    expect(EXCEPTION_FRAME.pc).toBe(24);
    expect(Object.values(EXCEPTION_FRAME)).toEqual([0, 4, 8, 12, 16, 20, 24, 28]);
    expect(EXCEPTION_FRAME_BYTES).toBe(EXCEPTION_FRAME.xpsr + 4);
  });

  it('tells an EXC_RETURN in LR from a return address', () => {
    for (const value of Object.values(EXC_RETURN)) expect(isExcReturn(value)).toBe(true);
    expect(isExcReturn(0x000000d5)).toBe(false);
    expect(isExcReturn(0xc0000001)).toBe(false);
  });
});

describe('the facts on QEMU', () => {
  let an547: QemuInstance;
  let microbit: QemuInstance;
  beforeAll(async () => {
    [an547, microbit] = await Promise.all([startQemu({ machine: 'mps3-an547' }), startQemu({ machine: 'microbit' })]);
  });
  afterAll(async () => {
    await Promise.all([an547?.stop(), microbit?.stop()]);
  });

  it('the Cortex-M55 is ARMv8-M Mainline with fault status registers, and its VTOR table holds the boot image HardFault handler', async () => {
    const gdb = await GdbClient.connect(an547.connectOptions);
    try {
      const cpuid = word(await gdb.readMemory(CPUID, 4));
      expect(V8M_MAINLINE_PARTS.has(cpuidPartNo(cpuid)), `part 0x${cpuidPartNo(cpuid).toString(16)}`).toBe(true);
      expect(hasFaultStatusRegisters(cpuid)).toBe(true);
      const vtor = word(await gdb.readMemory(VTOR, 4));
      const handler = word(await gdb.readMemory(vtor + vectorOffset(EXCEPTION.HardFault), 4));
      const boot = readFixtureJson<BootFixtureInfo>(FIXTURES.bootAn547Json).addresses;
      expect(handler).toBe(boot['HardFault_Handler']! | 1);
      // Nothing has faulted since reset.
      expect(parseFaultStatus(await gdb.readMemory(CFSR, FAULT_STATUS_BYTES)).cfsr).toBe(0);
    } finally {
      await gdb.close();
    }
  });

  it('the nRF51 is a Cortex-M0 (ARMv6-M): no VTOR, no fault status registers', async () => {
    const gdb = await GdbClient.connect(microbit.connectOptions);
    try {
      const cpuid = word(await gdb.readMemory(CPUID, 4));
      expect(cpuidPartNo(cpuid)).toBe(CORTEX_M0_PART);
      expect(hasFaultStatusRegisters(cpuid)).toBe(false);
    } finally {
      await gdb.close();
    }
  });
});
