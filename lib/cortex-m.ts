/**
 * Cortex-M facts rspflash relies on, named once: System Control Block
 * register addresses, CPUID fields, xPSR fields, the exception frame, the
 * vector table, EXC_RETURN values, fault status bits, and the two Thumb
 * instructions the runner writes. Pure: constants and small decoders.
 *
 * Sources: ARMv7-M Architecture Reference Manual (DDI 0403E) B3.2 "System
 * Control Space", B1.5.6 "Exception entry behavior", B1.5.8 "Exception
 * return behavior"; ARMv8-M Architecture Reference Manual (DDI 0553) D1.2;
 * ARMv6-M (DDI 0419) for what a Cortex-M0 lacks.
 *
 * The C and assembly in target-src/ use the same numbers as literals (they
 * are built separately); keep them in step with this module.
 * @module
 */
import { hex32 } from './errors.js';

// ---------------------------------------------------------------------------
// System Control Block (System Control Space at 0xE000E000)

/** CPUID Base Register: implementer, variant, architecture, part number, revision. */
export const CPUID = 0xe000ed00;
/** Vector Table Offset Register (absent on ARMv6-M Cortex-M0). */
export const VTOR = 0xe000ed08;
/** Application Interrupt and Reset Control Register. */
export const AIRCR = 0xe000ed0c;
/** Configurable Fault Status Register: MMFSR | BFSR << 8 | UFSR << 16 (ARMv7-M and ARMv8-M Mainline). */
export const CFSR = 0xe000ed28;
/** HardFault Status Register. */
export const HFSR = 0xe000ed2c;
/** Debug Fault Status Register. */
export const DFSR = 0xe000ed30;
/** MemManage Fault Address Register (valid when {@link CFSR_MMARVALID} is set). */
export const MMFAR = 0xe000ed34;
/** BusFault Address Register (valid when {@link CFSR_BFARVALID} is set). */
export const BFAR = 0xe000ed38;
/** Coprocessor Access Control Register: 0 at reset, so FPU/MVE code faults (NOCP) until it is set. */
export const CPACR = 0xe000ed88;
/** MPU Type Register: DREGION (bits 15:8) is the number of regions, 0 = no MPU. */
export const MPU_TYPE = 0xe000ed90;
/** MPU Control Register: bit 0 ENABLE. */
export const MPU_CTRL = 0xe000ed94;

/**
 * The fault status registers are five consecutive words from {@link CFSR}:
 * CFSR, HFSR, DFSR, MMFAR, BFAR. One read of this many bytes gets them all.
 */
export const FAULT_STATUS_BYTES = 20;

// ---------------------------------------------------------------------------
// CPUID

/** CPUID.PARTNO (bits 15:4) of a CPUID value. */
export function cpuidPartNo(cpuid: number): number {
  return (cpuid >>> 4) & 0xfff;
}

/** CPUID.ARCHITECTURE (bits 19:16): 0xC for ARMv6-M (and ARMv8-M Baseline), 0xF for ARMv7-M / ARMv8-M Mainline. */
export function cpuidArchitecture(cpuid: number): number {
  return (cpuid >>> 16) & 0xf;
}

/** CPUID.ARCHITECTURE of cores with the fault status registers (ARMv7-M, ARMv8-M Mainline). */
export const CPUID_ARCH_V7M_OR_LATER = 0xf;
/** CPUID.PARTNO of the Cortex-M0, which has no VTOR. */
export const CORTEX_M0_PART = 0xc20;
/** CPUID.PARTNO of ARMv8-M Mainline cores (which have MSPLIM/PSPLIM): Cortex-M33, M35P, M55, M85, M52. */
export const V8M_MAINLINE_PARTS: ReadonlySet<number> = new Set([0xd21, 0xd31, 0xd22, 0xd23, 0xd24]);

/** Whether a core with this CPUID has the fault status registers CFSR…BFAR. */
export function hasFaultStatusRegisters(cpuid: number): boolean {
  return cpuidArchitecture(cpuid) === CPUID_ARCH_V7M_OR_LATER;
}

// ---------------------------------------------------------------------------
// Core registers

/** xPSR.T, the Thumb state bit: Cortex-M executes Thumb only and faults (INVSTATE) with it clear. */
export const XPSR_THUMB = 0x01000000;
/** xPSR's IPSR field: the number of the exception being handled, 0 in thread mode. */
export const IPSR_MASK = 0x1ff;
/** CONTROL.SPSEL: thread mode runs on PSP instead of MSP. */
export const CONTROL_SPSEL = 2;

/** Exception numbers of the system exceptions (IRQ n is 16 + n). */
export const EXCEPTION = {
  Reset: 1,
  NMI: 2,
  HardFault: 3,
  MemManage: 4,
  BusFault: 5,
  UsageFault: 6,
  SecureFault: 7,
  SVCall: 11,
  DebugMonitor: 12,
  PendSV: 14,
  SysTick: 15,
} as const;

/** Exception number 16 is IRQ 0. */
export const FIRST_IRQ = 16;

const EXCEPTION_NAMES = new Map<number, string>(Object.entries(EXCEPTION).map(([name, n]) => [n, name]));

/** The exception number in an xPSR value (its IPSR field). */
export function exceptionNumber(xpsr: number): number {
  return xpsr & IPSR_MASK;
}

/**
 * What the core was doing, from its xPSR: `thread mode`, a system exception
 * by name, `IRQ n`, or `exception n` for a reserved number.
 *
 * @example
 * ```ts
 * exceptionName(0x01000003); // 'HardFault'
 * exceptionName(0x01000000); // 'thread mode'
 * ```
 */
export function exceptionName(xpsr: number): string {
  const n = exceptionNumber(xpsr);
  if (n === 0) return 'thread mode';
  return EXCEPTION_NAMES.get(n) ?? (n >= FIRST_IRQ ? `IRQ ${n - FIRST_IRQ}` : `exception ${n}`);
}

// ---------------------------------------------------------------------------
// Vector table and exception frame

/** Byte offset of an exception's entry in a vector table (entry 0 is the initial SP). */
export function vectorOffset(exception: number): number {
  return exception * 4;
}

/** Entries of the system part of a vector table: the initial SP and exceptions 1–15. */
export const SYSTEM_VECTORS = FIRST_IRQ;

/**
 * The basic exception frame the core pushes on exception entry (8 words, no
 * FP state), as offsets from the SP the handler starts with.
 */
export const EXCEPTION_FRAME = {
  r0: 0,
  r1: 4,
  r2: 8,
  r3: 12,
  r12: 16,
  lr: 20,
  /** Return address: the instruction that faulted (or the next one, for an asynchronous exception). */
  pc: 24,
  xpsr: 28,
} as const;

/** Bytes of the basic exception frame: r0–r3, r12, lr, pc, xpsr. */
export const EXCEPTION_FRAME_BYTES = 32;

/**
 * EXC_RETURN values: what LR holds in a handler (ARMv7-M, and ARMv8-M
 * without the Security Extension). Bit 4 clear = the frame has FP state.
 */
export const EXC_RETURN = {
  /** Back to handler mode, frame on MSP. */
  handlerMsp: 0xfffffff1,
  /** Back to thread mode, frame on MSP. */
  threadMsp: 0xfffffff9,
  /** Back to thread mode, frame on PSP. */
  threadPsp: 0xfffffffd,
  /** The same three with an extended (FP) frame. */
  handlerMspFp: 0xffffffe1,
  threadMspFp: 0xffffffe9,
  threadPspFp: 0xffffffed,
} as const;

/** Whether an LR value is an EXC_RETURN (top byte 0xFF) rather than a return address. */
export function isExcReturn(lr: number): boolean {
  return lr >>> 24 === 0xff;
}

// ---------------------------------------------------------------------------
// Fault status

/** CFSR.MMARVALID: {@link MMFAR} holds the faulting address. */
export const CFSR_MMARVALID = 1 << 7;
/** CFSR.BFARVALID: {@link BFAR} holds the faulting address. */
export const CFSR_BFARVALID = 1 << 15;

/** CFSR bits (MMFSR | BFSR << 8 | UFSR << 16) and what each means, for fault messages. */
export const CFSR_BITS: readonly (readonly [bit: number, meaning: string])[] = [
  [0, 'instruction access violation'],
  [1, 'data access violation'],
  [3, 'MPU fault on exception return'],
  [4, 'MPU fault on exception entry'],
  [8, 'instruction bus error'],
  [9, 'precise data bus error'],
  [10, 'imprecise data bus error'],
  [11, 'bus fault on exception return'],
  [12, 'bus fault on exception entry'],
  [16, 'undefined instruction'],
  [17, 'invalid state (Thumb bit clear?)'],
  [18, 'invalid EXC_RETURN'],
  [19, 'coprocessor access (FPU/MVE disabled)'],
  [20, 'stack limit overflow'],
  [24, 'unaligned access'],
  [25, 'divide by zero'],
];

/** The fault status registers, as read in one block from {@link CFSR}. */
export interface FaultStatus {
  cfsr: number;
  hfsr: number;
  dfsr: number;
  mmfar: number;
  bfar: number;
}

/**
 * Splits the {@link FAULT_STATUS_BYTES} read from {@link CFSR} into its registers.
 *
 * @throws RangeError if fewer bytes are given.
 */
export function parseFaultStatus(bytes: Uint8Array): FaultStatus {
  if (bytes.length < FAULT_STATUS_BYTES) throw new RangeError(`fault status needs ${FAULT_STATUS_BYTES} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, FAULT_STATUS_BYTES);
  const word = (register: number) => view.getUint32(register - CFSR, true);
  return { cfsr: word(CFSR), hfsr: word(HFSR), dfsr: word(DFSR), mmfar: word(MMFAR), bfar: word(BFAR) };
}

/**
 * The causes a fault status records, in words: each CFSR bit set, then the
 * faulting address where the core recorded one.
 *
 * @example
 * ```ts
 * faultCauses({ cfsr: 0x8200, hfsr: 0x40000000, dfsr: 0, mmfar: 0, bfar: 0xf0000000 });
 * // ['precise data bus error', 'bus fault address 0xf0000000']
 * ```
 */
export function faultCauses(status: Pick<FaultStatus, 'cfsr' | 'mmfar' | 'bfar'>): string[] {
  const causes = CFSR_BITS.filter(([bit]) => (status.cfsr & (1 << bit)) !== 0).map(([, meaning]) => meaning);
  if (status.cfsr & CFSR_BFARVALID) causes.push(`bus fault address ${hex32(status.bfar)}`);
  if (status.cfsr & CFSR_MMARVALID) causes.push(`MPU fault address ${hex32(status.mmfar)}`);
  return causes;
}

// ---------------------------------------------------------------------------
// Thumb instructions the runner writes

/** Thumb `b .` (branch to itself): the fault loop, and the return trap's backstop. */
export const THUMB_B_SELF = 0xe7fe;
/** Thumb `BKPT #0` (not 0xAB, which debuggers take as semihosting). */
export const THUMB_BKPT_0 = 0xbe00;
