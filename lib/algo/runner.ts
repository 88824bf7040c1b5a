/**
 * Runs a flash algorithm's routines on the target through a {@link GdbClient}.
 *
 * A call is three round trips: one `G` (R0–R3, R4 = entry, R5 = canary
 * address, R9, SP, LR, PC = the call shim, xPSR), one `c` that returns when the
 * core halts on the return trap's breakpoint, one `g` to read R0, the canary
 * status the shim left in R1, and check the PC. The shim (`rsp_call`) calls
 * the routine and checks the stack canary in the same run, so a single call
 * costs no extra round trip for it. Batches of calls go through the on-target
 * sequencer: one run for a whole buffer of pages.
 *
 * The target is borrowed, not owned: {@link AlgorithmRunner.close} puts back
 * the registers, system registers and RAM the runner changed.
 * @module
 */
import {
  AlgorithmCallError,
  AlgorithmFaultError,
  AlgorithmTimeoutError,
  ConnectionClosedError,
  DirtyTargetError,
  LoadMismatchError,
  RspflashError,
  StackOverflowError,
  TargetStateError,
  hex32,
  toRspflashError,
} from '../errors.js';
import type { MemoryRange } from '../range.js';
import { createDebug } from '../debug.js';
import {
  CFSR,
  CONTROL_SPSEL,
  CORTEX_M0_PART,
  CPUID,
  EXCEPTION,
  EXCEPTION_FRAME,
  EXCEPTION_FRAME_BYTES,
  FAULT_STATUS_BYTES,
  SYSTEM_VECTORS,
  THUMB_BKPT_0,
  THUMB_B_SELF,
  V8M_MAINLINE_PARTS,
  VTOR,
  XPSR_THUMB,
  cpuidPartNo,
  exceptionName,
  exceptionNumber,
  faultCauses,
  hasFaultStatusRegisters,
  parseFaultStatus,
  vectorOffset,
} from '../cortex-m.js';
import type { GdbClient } from '../gdb/client.js';
import type { AlgorithmFunction, FlashAlgorithm } from './algorithm.js';
import { planRamLayout, describeLayout, VECTOR_TABLE_BYTES, type LayoutOptions, type RamLayout, type RamRegion } from './layout.js';
import { TARGET_CODE, TARGET_ENTRY } from './target-code.js';
import { ENTRY_SIZE, SEQ_STATUS, STACK_CANARY, decodeEntry, decodeResults, encodeBatch, runningEntry, type BatchCall } from './sequencer.js';

/** Time for our own helper routines (clean, restore, a CRC of a buffer), ms. */
const HELPER_TIMEOUT_MS = 5000;
/**
 * Extra time a routine that walks a range (BlankCheck, Verify, Read, CalcCRC,
 * our CRC) gets per KiB: 1 MB/s, slower than an M0 at 16 MHz or an OSPI flash
 * read through its controller, so only a hang times out.
 */
const RANGE_MS_PER_KIB = 1;
/** Bytes `rsp_hash128` stores per range: h1..h4. */
const HASH128_BYTES = 16;
/** Tries of each restore step at close: a server may refuse once (a busy probe, a lost reply) and take it again. */
const RESTORE_ATTEMPTS = 2;
/** What to do when rspflash's state stays on the target. */
const RESET_HINT =
  "Reset the target before running the application: run again with `reset`, or 'monitor reset halt' from a debugger, or end the run with after: 'reset' (which also skips the restore).";
/**
 * Routines that write RAM through an argument (the others only read through
 * theirs): the argument holding the address, and the bytes written from it.
 * Lazy borrowing saves those bytes before the run.
 */
const WRITES_THROUGH: Readonly<Record<string, { at: number; length: (args: readonly number[]) => number }>> = {
  Read: { at: 2, length: (a) => a[1] ?? 0 }, // Read(adr, sz, buf)
  unpack: { at: 2, length: (a) => a[3] ?? 0 }, // rsp_unpack(src, srcLen, dst, dstLen)
  hash128: { at: 3, length: () => HASH128_BYTES }, // rsp_hash128(seed, adr, len, out)
};
/** Least time any algorithm routine gets, ms. */
/** Shortest timeout of any call, ms: even a tiny call may wait on a loaded host or a slow probe. */
export const MIN_CALL_TIMEOUT_MS = 1000;

/** Options of {@link AlgorithmRunner.create}. */
export interface RunnerOptions extends LayoutOptions {
  /** RAM the runner may use for code, stack and buffers. */
  ram: RamRegion;
  /** Save the RAM and registers it changes and put them back on close (default true). */
  restore?: boolean;
  /** Breakpoint type for the return trap (default `hw`, falling back to `sw`). */
  breakpoint?: 'hw' | 'sw';
  /** Stop at the HardFault handler instead of waiting for the timeout (default true). */
  catchFaults?: boolean;
  /** Check that the helpers and the algorithm read back as written after loading (default true). */
  verifyLoad?: boolean;
}

/** Counters for benchmarks and tests. */
export interface RunnerStats {
  /** Algorithm routines called, each repeat counted. */
  calls: number;
  /** Runs of the target (a single call or one sequencer batch). */
  runs: number;
  /** Bytes of borrowed RAM saved before their first write (lazy borrowing: only what is written). */
  ramSaved: number;
  /** Bytes of borrowed RAM written back at close. */
  ramRestored: number;
}

/** What the runner learned about a fault, for the error message. */
interface FaultDetail {
  /** Where the faulting code was (the stacked PC), when the core stopped on the fault handler's entry. */
  pc: number | undefined;
  text: string;
}

/** The call to name in an error: the routine and its arguments as made. */
interface CallName {
  fn: string;
  args: readonly number[];
  /** Appended to the message, e.g. where in a batch the call was. */
  note?: string;
}

interface SavedState {
  registers: Record<string, number>;
  system: { primask: number; control: number; mpu: number; vtor: number; vtorSwitched: boolean; msp: number; psp: number } | undefined;
  splim: { msplim: number; psplim: number } | undefined;
}

function formatCall(fn: string, args: readonly number[]): string {
  return `${fn}(${args.map((a) => hex32(a)).join(', ')})`;
}

/**
 * The algorithm loaded in target RAM, ready to be called.
 *
 * @example
 * ```ts
 * const runner = await AlgorithmRunner.create(gdb, algo, { ram: { start: 0x20000000, size: 0x20000 } });
 * try {
 *   await runner.call('Init', [algo.geometry.start, 0, FNC_ERASE]);
 *   await runner.call('EraseSector', [algo.geometry.start]);
 *   await runner.call('UnInit', [FNC_ERASE]);
 * } finally {
 *   await runner.close();
 * }
 * ```
 */
export class AlgorithmRunner {
  /** The connection to the GDB server. */
  readonly gdb: GdbClient;
  /** The algorithm loaded into RAM. */
  readonly algorithm: FlashAlgorithm;
  /** Where everything sits in the borrowed RAM. */
  readonly layout: RamLayout;
  /** Counts of calls, runs and RAM saved and restored, growing as the runner works. */
  readonly stats: RunnerStats = { calls: 0, runs: 0, ramSaved: 0, ramRestored: 0 };
  readonly #log = createDebug('algo');
  readonly #options: RunnerOptions;
  #saved: SavedState | undefined;
  /** RAM saved before its first write, in the order saved: what close() writes back. */
  readonly #borrowed: { start: number; data: Uint8Array }[] = [];
  /** Spans of RAM saved so far (sorted, merged, end exclusive): a second write there costs no read. */
  #covered: { start: number; end: number }[] = [];
  /** Set when the state found at create was a killed run's: close() does not put it back. */
  #dirty: DirtyTargetError | undefined;
  /** Whether a call has written the core registers (they need restoring). */
  #registersWritten = false;
  #trapInserted = false;
  /** Breakpoints of ours that could not be removed during set-up: close() tries again. */
  readonly #stale: number[] = [];
  #trapType: 'hw' | 'sw' = 'hw';
  #faultHandler: number | undefined;
  /** Whether the runner inserted the fault-handler breakpoint (a user's own breakpoint there is left alone). */
  #faultHandlerOwned = false;
  #v8m = false;
  #cpuid: number | undefined;
  #closed = false;
  #crcTableLoaded = false;
  /** Set after a fault: the core is in an exception handler and further calls may lock it up. */
  #faulted: string | undefined;

  private constructor(gdb: GdbClient, algorithm: FlashAlgorithm, layout: RamLayout, options: RunnerOptions) {
    this.gdb = gdb;
    this.algorithm = algorithm;
    this.layout = layout;
    this.#options = options;
  }

  /**
   * Plans the RAM layout, saves what it will overwrite, loads the helpers and
   * the algorithm, sets the return-trap breakpoint and cleans the core
   * (PRIMASK = 1, CONTROL = 0, MPU off, stack limits 0 on ARMv8-M).
   */
  static async create(gdb: GdbClient, algorithm: FlashAlgorithm, options: RunnerOptions): Promise<AlgorithmRunner> {
    if (gdb.state !== 'halted') throw new TargetStateError('The core must be halted to load a flash algorithm');
    const layout = planRamLayout(algorithm, options.ram, options);
    const runner = new AlgorithmRunner(gdb, algorithm, layout, options);
    runner.#log(describeLayout(layout));
    try {
      await runner.#setUp();
    } catch (err) {
      await runner.close().catch(() => undefined);
      throw err;
    }
    return runner;
  }

  /** Whether the algorithm has a routine. */
  has(fn: AlgorithmFunction): boolean {
    return this.algorithm.functions[fn] !== undefined;
  }

  /** Absolute entry address of a routine. */
  entry(fn: AlgorithmFunction): number {
    const offset = this.algorithm.functions[fn];
    if (offset === undefined) throw new TargetStateError(`The flash algorithm '${this.algorithm.name}' has no ${fn} routine`);
    return this.layout.algorithm + offset;
  }

  /**
   * The state found at create, when it is a killed run's rather than the
   * application's (issue 15), else undefined. Signs: PC in rspflash's helpers,
   * the algorithm or its trap page; SP in its stack; VTOR on its vector table.
   * Any sign is confirmed by rspflash's vector table still lying on the trap
   * page, so an application that merely runs from the same RAM is not taken
   * for a killed run.
   */
  get dirty(): DirtyTargetError | undefined {
    return this.#dirty;
  }

  async #setUp(): Promise<void> {
    const gdb = this.gdb;
    const layout = this.layout;
    const restore = this.#options.restore !== false;
    // Registers are read even without restore: they tell whether a killed run left the core in our state.
    const saved: SavedState = { registers: await gdb.readCoreRegisters(), system: undefined, splim: undefined };
    this.#saved = saved;
    const vtor = await this.#readWord(VTOR);
    this.#dirty = await this.#dirtyState(saved.registers, vtor);
    if (this.#dirty) this.#log(this.#dirty.message);
    // Read the application's fault vector before anything is written: its table may lie in the RAM we borrow.
    const originalHandler = this.#options.catchFaults === false ? undefined : await this.#applicationFaultHandler(vtor ?? 0);
    if (restore) {
      // Lazy borrowing: save what set-up writes (code, trap page) and what every call writes (the stack, and the
      // CRC table below it, where an overflow lands); buffers are saved as runs first write them.
      await this.#borrow(layout.helpers, layout.helpers + TARGET_CODE.length);
      await this.#borrow(layout.algorithm, layout.algorithm + layout.algorithmSize);
      await this.#borrow(layout.crcTable, layout.stackTop);
      await this.#borrow(layout.vectorTable, layout.vectorTable + VECTOR_TABLE_BYTES);
    }

    // Code first, then the algorithm with its ZI zeroed, then the stack canary.
    const relocated = new Uint8Array(this.algorithm.blob);
    const view = new DataView(relocated.buffer);
    for (const off of this.algorithm.relocations) view.setUint32(off, (view.getUint32(off, true) + this.layout.algorithm) >>> 0, true);
    await gdb.writeMemory(this.layout.helpers, TARGET_CODE);
    await gdb.writeMemory(this.layout.algorithm, relocated);
    // The trap page: return trap, and the vector table and fault loop (used where the core has a VTOR).
    await gdb.writeMemory(this.layout.vectorTable, this.#vectorTableBytes());
    await gdb.writeMemory(this.layout.stackBottom, u32(STACK_CANARY));
    if (this.#options.verifyLoad !== false) {
      for (const [what, address, bytes] of [
        ["rspflash's helper code", this.layout.helpers, TARGET_CODE],
        ['The flash algorithm', this.layout.algorithm, relocated],
      ] as const) {
        const back = await gdb.readMemory(address, bytes.length);
        const bad = back.findIndex((b, i) => b !== bytes[i]);
        if (bad >= 0) {
          throw new LoadMismatchError(
            `${what} did not read back as written at ${hex32(address + bad)}: is ${hex32(address)} really RAM?`,
            address + bad,
          );
        }
      }
    }

    // Return-trap breakpoint: hardware if the server has it (no write to RAM), software otherwise.
    this.#trapType = this.#options.breakpoint ?? 'hw';
    try {
      await gdb.insertBreakpoint(this.layout.trap, this.#trapType);
    } catch (err) {
      if (this.#options.breakpoint !== undefined) throw err;
      this.#trapType = 'sw';
      await gdb.insertBreakpoint(this.layout.trap, 'sw');
    }
    this.#trapInserted = true;
    // The application's handler is only worth a breakpoint if our loading did not overwrite it.
    const overwritten = (a: number) => this.layout.used.some((span) => a >= span.start && a < span.end);
    if (originalHandler !== undefined && !overwritten(originalHandler)) await this.#catchFaultsAt(originalHandler);

    const cpuid = await this.#readWord(CPUID);
    this.#cpuid = cpuid;
    this.#v8m = cpuid !== undefined && V8M_MAINLINE_PARTS.has(cpuidPartNo(cpuid));
    // Our own vector table, every exception → rsp_fault, so any fault stops at our breakpoint whatever the
    // application's table holds (or whether it survived our loading). Not on a Cortex-M0: it has no VTOR.
    const ownVectors = this.#options.catchFaults !== false && cpuid !== undefined && cpuidPartNo(cpuid) !== CORTEX_M0_PART;
    const clean = await this.#callHelper('core clean', TARGET_ENTRY.coreClean, [ownVectors ? this.layout.vectorTable : 0]);
    const switched = ownVectors && clean.r4 === this.layout.vectorTable;
    // Our SP write before the clean call went to the active stack pointer, whose old value is in the saved
    // core registers; the other one the clean routine read untouched.
    const control = clean.r1!;
    const pspActive = (control & CONTROL_SPSEL) !== 0 && exceptionNumber(saved.registers.xpsr ?? 0) === 0;
    const savedSp = saved.registers.sp;
    saved.system = {
      primask: clean.r0!,
      control,
      mpu: clean.r2!,
      vtor: clean.r3!,
      vtorSwitched: switched,
      msp: !pspActive && savedSp !== undefined ? savedSp : clean.r5!,
      psp: pspActive && savedSp !== undefined ? savedSp : clean.r6!,
    };
    if (switched) {
      // Not swallowed (issue 15): a breakpoint left on the application's fault handler stops it at its first fault.
      if (this.#faultHandler !== undefined && this.#faultHandlerOwned && !(await this.#removeBreakpoint(this.#faultHandler, 'hw'))) {
        this.#stale.push(this.#faultHandler);
      }
      this.#faultHandler = undefined;
      this.#faultHandlerOwned = false;
      await this.#catchFaultsAt(this.layout.faultLoop);
    } else if (ownVectors) {
      this.#log(`VTOR did not take ${hex32(this.layout.vectorTable)} (read back ${hex32(clean.r4 ?? 0)}); faults go to the application's handler`);
    }
    if (this.#v8m) {
      const splim = await this.#callHelper('stack limit clear', TARGET_ENTRY.splimClear, []);
      saved.splim = { msplim: splim.r0!, psplim: splim.r1! };
    }
    this.#log(`core cleaned (cpuid ${cpuid === undefined ? 'unreadable' : hex32(cpuid)}, v8-M mainline ${this.#v8m}); saved ${JSON.stringify(saved.system)}`);
  }

  /** See {@link dirty}. One extra read (the trap page) only when a sign shows. */
  async #dirtyState(regs: Readonly<Record<string, number>>, vtor: number | undefined): Promise<DirtyTargetError | undefined> {
    const l = this.layout;
    const inside = (v: number | undefined, start: number, end: number): v is number => v !== undefined && v >= start && v < end;
    const { pc, sp } = regs;
    const signs: string[] = [];
    if (inside(pc, l.vectorTable, l.vectorTable + VECTOR_TABLE_BYTES)) signs.push(`PC ${hex32(pc)} is on rspflash's trap page`);
    else if (inside(pc, l.helpers, l.helpers + TARGET_CODE.length)) signs.push(`PC ${hex32(pc)} is in rspflash's helper code`);
    else if (inside(pc, l.algorithm, l.algorithm + l.algorithmSize)) signs.push(`PC ${hex32(pc)} is in the flash algorithm`);
    // SP equals the stack top after a call returned, so the top counts as inside.
    if (inside(sp, l.stackBottom + 1, l.stackTop + 1)) signs.push(`SP ${hex32(sp)} is in rspflash's stack`);
    if (vtor !== undefined && vtor === l.vectorTable) signs.push(`VTOR ${hex32(vtor)} points at rspflash's vector table`);
    if (signs.length === 0) return undefined;
    const page = await this.gdb.readMemory(l.vectorTable, VECTOR_TABLE_BYTES).catch(() => undefined);
    const ours = this.#vectorTableBytes();
    if (page === undefined || page.some((b, i) => b !== ours[i])) {
      this.#log(`${signs.join('; ')}, but the trap page does not hold rspflash's vector table: taken as the application's state`);
      return undefined;
    }
    const reason = signs.join('; ');
    return new DirtyTargetError(
      `The core was left in rspflash's state by an earlier run that was killed before it restored the target (${reason}): ` +
        "rspflash did not put that state back as if it were the application's (registers, VTOR, stack pointers); the core is left halted",
      reason,
      { hint: RESET_HINT },
    );
  }

  /** Removes one of our breakpoints, trying twice; false when the server still refuses. */
  async #removeBreakpoint(address: number, type: 'hw' | 'sw'): Promise<boolean> {
    for (let attempt = 1; attempt <= RESTORE_ATTEMPTS; attempt++) {
      try {
        await this.gdb.removeBreakpoint(address, type);
        return true;
      } catch (err) {
        this.#log(`removing the breakpoint at ${hex32(address)} failed (attempt ${attempt}): ${err instanceof Error ? err.message : String(err)}`);
        if (this.gdb.closed) return false;
      }
    }
    return false;
  }

  /**
   * Saves the parts of [start, end) inside the lent RAM not saved yet, one
   * read each, before their first write by us or by code we run. Lazy
   * borrowing (issue 12): an unchanged re-run saves and restores the few KiB
   * it writes, not the whole region.
   */
  async #borrow(start: number, end: number): Promise<void> {
    if (this.#options.restore === false || end <= start) return;
    for (const span of this.layout.used) {
      const from = Math.max(start, span.start);
      const to = Math.min(end, span.end);
      for (const gap of uncovered(this.#covered, from, to)) {
        const data = await this.gdb.readMemory(gap.start, gap.end - gap.start);
        this.#borrowed.push({ start: gap.start, data });
        this.#covered = cover(this.#covered, gap);
        this.stats.ramSaved += data.length;
      }
    }
  }

  /** The application's HardFault handler from its vector table, or undefined when the table looks unusable. */
  async #applicationFaultHandler(vtor: number): Promise<number | undefined> {
    const at = vtor + vectorOffset(EXCEPTION.HardFault);
    const vector = await this.#readWord(at);
    // Erased flash (all ones) or a word without the Thumb bit is no handler.
    if (vector === undefined || (vector & 1) === 0 || vector === 0xffffffff) {
      this.#log(`no usable HardFault vector at ${hex32(at)}`);
      return undefined;
    }
    return (vector & ~1) >>> 0;
  }

  /** Breakpoints a fault handler, so a fault stops the core at once instead of waiting out the timeout. */
  async #catchFaultsAt(handler: number): Promise<void> {
    if (this.gdb.breakpoints.some((b) => b.address === handler)) {
      // The user's own breakpoint stops the core there just as well; leave it to them.
      this.#faultHandler = handler;
      return;
    }
    try {
      await this.gdb.insertBreakpoint(handler, 'hw');
      this.#faultHandler = handler;
      this.#faultHandlerOwned = true;
    } catch {
      this.#log(`could not set a breakpoint on the fault handler at ${hex32(handler)}; faults are caught by the timeout`);
    }
  }

  /**
   * The vector block: 16 exception vectors (initial SP, unused; then the fault
   * loop | 1 for every exception) and the fault loop itself, `b .` (0xE7FE).
   * A plain loop, no BKPT: a BKPT in a fault handler escalates to lockup on a
   * core without a debugger. It lives above the stack, out of reach of an
   * algorithm that overruns its stack downwards.
   */
  #vectorTableBytes(): Uint8Array {
    const out = new Uint8Array(VECTOR_TABLE_BYTES);
    const view = new DataView(out.buffer);
    view.setUint32(0, this.layout.stackTop, true);
    for (let i = 1; i < SYSTEM_VECTORS; i++) view.setUint32(vectorOffset(i), this.layout.faultLoop | 1, true);
    view.setUint16(this.layout.faultLoop - this.layout.vectorTable, THUMB_B_SELF, true);
    // The return trap: BKPT #0 (not the semihosting 0xAB) as a backstop if the Z breakpoint is lost, then b .
    view.setUint16(this.layout.trap - this.layout.vectorTable, THUMB_BKPT_0, true);
    view.setUint16(this.layout.trap - this.layout.vectorTable + 2, THUMB_B_SELF, true);
    return out;
  }

  async #readWord(address: number): Promise<number | undefined> {
    try {
      const bytes = await this.gdb.readMemory(address, 4);
      return new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
    } catch (err) {
      if (err instanceof RspflashError && err.code === 'RSPFLASH_SERVER_ERROR') return undefined;
      throw err;
    }
  }

  /**
   * Calls routine `fn` with `args` (R0–R3) and resolves with R0. Does not
   * interpret the result: see {@link callChecked}. Three round trips; the
   * stack canary is checked on the target in the same run (the call shim),
   * and an overwritten canary throws {@link StackOverflowError}.
   */
  async call(fn: AlgorithmFunction, args: readonly number[], timeoutMs?: number): Promise<number> {
    const entry = this.entry(fn);
    const regs = await this.#run(fn, this.layout.helpers + TARGET_ENTRY.call, args, timeoutMs ?? this.timeoutFor(fn, args), {
      r4: entry | 1,
      r5: this.layout.stackBottom,
    });
    this.stats.calls++;
    if (regs.r1 === SEQ_STATUS.stackOverflow) await this.#stackOverflow(fn, args);
    return regs.r0!;
  }

  /** The canary was overwritten: re-arm it, mark the CRC table (the guard band under the stack) stale, and throw. */
  async #stackOverflow(fn: string, args: readonly number[]): Promise<never> {
    this.#crcTableLoaded = false;
    await this.gdb.writeMemory(this.layout.stackBottom, u32(STACK_CANARY));
    throw new StackOverflowError(
      `${formatCall(fn, args)} overflowed its stack: the canary at ${hex32(this.layout.stackBottom)} was overwritten ` +
        `(stack ${this.layout.stackTop - this.layout.stackBottom} bytes at ${hex32(this.layout.stackBottom)})`,
      fn,
    );
  }

  /**
   * Calls `fn` and throws {@link AlgorithmCallError} unless it returns the
   * success value (0, or `adr + sz` for Verify).
   */
  async callChecked(fn: AlgorithmFunction, args: readonly number[], timeoutMs?: number): Promise<number> {
    const result = await this.call(fn, args, timeoutMs);
    const expected = successValue(fn, args);
    if (expected !== undefined && result !== expected) {
      throw new AlgorithmCallError(describeFailure(fn, args, result), fn, args, result);
    }
    return result;
  }

  /**
   * Default timeout of one call, ms: the work it asks for (below), at least
   * {@link MIN_CALL_TIMEOUT_MS}.
   */
  timeoutFor(fn: AlgorithmFunction | string, args: readonly number[]): number {
    return Math.max(this.#work(fn, args), MIN_CALL_TIMEOUT_MS);
  }

  /**
   * Timeout for a batch: the sequencer's own time, one call's minimum, and the
   * work of every call, each repeat counted (a batch is no faster to fail than
   * its calls; the minimum is not paid per repeat, or 256 page verifies would
   * get minutes).
   */
  batchTimeout(calls: readonly BatchCall[]): number {
    let total = HELPER_TIMEOUT_MS + MIN_CALL_TIMEOUT_MS;
    for (const c of calls) total += this.#work(c.fn, c.args) * (c.repeat ?? 1);
    return total;
  }

  /**
   * Time one call may take, ms: the algorithm's own figures (Init, erase,
   * program), scaled by what the arguments ask for where a routine takes a
   * range: SEGGER's multi-sector Erase and multi-page Program, and ranges read
   * by BlankCheck, Verify, Read, CalcCRC and rspflash's `crc32`.
   */
  #work(fn: string, args: readonly number[]): number {
    const t = this.algorithm.timeouts;
    const kib = (bytes: number | undefined) => Math.ceil(((bytes ?? 0) >>> 0) / 1024) * RANGE_MS_PER_KIB;
    switch (fn) {
      case 'Init':
      case 'UnInit':
        return t.init;
      case 'EraseSector':
        return t.eraseSector;
      case 'Erase':
        return t.eraseSector * Math.max(1, (args[2] ?? 1) >>> 0);
      case 'EraseChip':
        return t.eraseChip;
      case 'Program':
        return t.programPage * Math.max(1, Math.ceil(((args[1] ?? 0) >>> 0) / this.algorithm.geometry.pageSize));
      case 'BlankCheck':
      case 'Verify':
      case 'Read':
        return kib(args[1]);
      case 'CalcCRC':
      case 'crc32':
      case 'hash32':
      case 'hash128':
        return kib(args[2]);
      case 'unpack':
        // rsp_unpack(src, srcLen, dst, dstLen), LZ4: about a copy's cost per byte produced, not per stream byte (issue 12).
        return kib(args[3]);
      default:
        return t.programPage;
    }
  }

  /** Writes `data` into transfer buffer `slot` at `offset`. */
  async writeBuffer(slot: number, data: Uint8Array, offset = 0): Promise<void> {
    const buffer = this.#slot(slot);
    if (offset + data.length > buffer.size) throw new RangeError(`buffer ${slot} holds ${buffer.size} bytes, not ${offset + data.length}`);
    await this.#borrow(buffer.address + offset, buffer.address + offset + data.length);
    await this.gdb.writeMemory(buffer.address + offset, data);
  }

  /** Address and size of transfer buffer `slot`. */
  buffer(slot: number): {
    /** First data byte. */
    address: number;
    /** Data bytes. */
    size: number;
  } {
    const b = this.#slot(slot);
    return { address: b.address, size: b.size };
  }

  #slot(slot: number) {
    const buffer = this.layout.buffers[slot];
    if (!buffer) throw new RangeError(`no buffer ${slot} (layout has ${this.layout.buffers.length})`);
    return buffer;
  }

  /**
   * Runs `calls` through the on-target sequencer in one run. With `data`, the
   * batch table and the data go to buffer `slot` in one memory write (the table
   * ends where the data starts). Resolves with each call's last result (only
   * read back when some call collects); throws {@link AlgorithmCallError} for
   * the first failing call (with its arguments as made),
   * {@link StackOverflowError}, or a fault/timeout error.
   *
   * RAM the batch writes is saved first (when restoring): the table and
   * data, and what the routines write through their arguments (`Read`,
   * `unpack`, `hash128`). A routine of the caller's own that writes elsewhere
   * in the lent RAM names it in `writes`.
   */
  async batch(
    slot: number,
    calls: readonly BatchCall[],
    options: { data?: Uint8Array | readonly Uint8Array[]; timeoutMs?: number; writes?: readonly MemoryRange[] } = {},
  ): Promise<number[]> {
    const buffer = this.#slot(slot);
    if (calls.length === 0) return [];
    if (calls.length > buffer.tableEntries) throw new RangeError(`batch of ${calls.length} calls exceeds the table (${buffer.tableEntries})`);
    const parts = options.data === undefined ? [] : options.data instanceof Uint8Array ? [options.data] : options.data;
    const dataLength = parts.reduce((n, p) => n + p.length, 0);
    if (dataLength > buffer.size) throw new RangeError(`buffer ${slot} holds ${buffer.size} bytes, not ${dataLength}`);
    const table = encodeBatch(calls);
    const tableAddress = buffer.address - table.length;
    await this.#borrow(tableAddress, buffer.address + dataLength);
    for (const r of [...targetWrites(calls), ...(options.writes ?? [])]) await this.#borrow(r.address, r.address + r.length);
    // Table and data go out in one write, assembled in a scratch buffer kept for the runner's life:
    // a fresh 256 KiB array per run would pile up until V8's next major collection (peak RSS).
    const scratch = this.#scratchFor(buffer.tableEntries * ENTRY_SIZE + buffer.size);
    scratch.set(table);
    let at = table.length;
    for (const part of parts) {
      scratch.set(part, at);
      at += part.length;
    }
    await this.gdb.writeMemory(tableAddress, scratch.subarray(0, at));
    const label = calls.length === 1 ? calls[0]!.fn : `batch of ${calls.length}`;
    const args = [tableAddress, calls.length, this.layout.staticBase ?? 0, this.layout.stackBottom];
    // After a fault or a timeout the sequencer never returns: the entry it marked started last names the call.
    const running = async (): Promise<CallName | undefined> => {
      const after = await this.gdb.readMemory(tableAddress, table.length);
      const index = runningEntry(after);
      if (index === undefined) return undefined;
      const call = calls[index]!;
      const state = decodeEntry(after, index);
      return {
        fn: call.fn,
        args: state.args.slice(0, Math.max(1, call.args.length)),
        note: calls.length === 1 && (call.repeat ?? 1) === 1 ? undefined : `entry ${index + 1} of a batch of ${calls.length}`,
      };
    };
    const regs = await this.#run(label, this.layout.helpers + TARGET_ENTRY.seqRun, args, options.timeoutMs ?? this.batchTimeout(calls), {}, running);
    const done = regs.r0!;
    const status = regs.r1!;
    const wantResults = calls.some((c) => c.collect);
    if (status === SEQ_STATUS.ok && done === calls.length) {
      this.stats.calls += calls.reduce((n, c) => n + (c.repeat ?? 1), 0);
      if (!wantResults) return [];
      return decodeResults(await this.gdb.readMemory(tableAddress, table.length));
    }
    const after = await this.gdb.readMemory(tableAddress, table.length);
    const failing = calls[Math.min(done, calls.length - 1)]!;
    const state = decodeEntry(after, Math.min(done, calls.length - 1));
    const callArgs = state.args.slice(0, Math.max(1, failing.args.length));
    if (status === SEQ_STATUS.stackOverflow) await this.#stackOverflow(failing.fn, callArgs);
    if (status !== SEQ_STATUS.failed) {
      throw new AlgorithmFaultError(`The sequencer returned an unknown status ${status} after ${done} calls`, failing.fn, callArgs, undefined, undefined);
    }
    throw new AlgorithmCallError(describeFailure(failing.fn, callArgs, state.result, state.expect), failing.fn, callArgs, state.result);
  }

  #scratch: Uint8Array | undefined;

  #scratchFor(size: number): Uint8Array {
    if (!this.#scratch || this.#scratch.length < size) this.#scratch = new Uint8Array(size);
    return this.#scratch;
  }

  /** CRC-32 (zlib convention) of target memory, computed on the target. */
  async crc32(address: number, length: number): Promise<number> {
    const [crc] = await this.crc32Many([{ address, length }]);
    return crc!;
  }

  /** CRC-32 of several ranges in one run (uses buffer 0's table area). */
  async crc32Many(ranges: readonly { address: number; length: number }[], slot = 0): Promise<number[]> {
    await this.#loadCrcTable();
    return this.#collectMany('crc32', TARGET_ENTRY.crc32, ranges, (r) => [0, r.address, r.length, this.layout.crcTable], slot);
  }

  /**
   * MurmurHash3 (x86, 32-bit, seed 0) of each range, computed on the target in
   * one run per batch table: word at a time, what skip-unchanged compares with
   * the host's hash of the image bytes (lib/flash/hash.ts).
   */
  async hash32Many(ranges: readonly { address: number; length: number }[], slot = 0): Promise<number[]> {
    return this.#collectMany('hash32', TARGET_ENTRY.hash32, ranges, (r) => [0, r.address, r.length], slot);
  }

  /**
   * MurmurHash3 (x86, 128-bit, seed 0) of each range, computed on the target
   * by `rsp_hash128`: what compare and verify match against the host's
   * `murmur3x128` of the image bytes (lib/flash/hash.ts). Each hash is a
   * `Hash128` there: 32 lower-case hex digits, h1..h4 each little-endian.
   *
   * One sequencer run per table-full of ranges (at most one entry per range,
   * and at most 16 bytes of results per range in buffer `slot`); each run's
   * 128-bit results come back in one memory read. The run writes buffer
   * `slot` (its table area and the first 16 bytes per range of its data), so
   * no range may overlap that buffer: a `RangeError` says so.
   *
   * @example
   * ```ts
   * const [onTarget] = await runner.hashMany([{ address: 0xc0000000, length: 4096 }]);
   * if (onTarget === murmur3x128(image.subarray(0, 4096))) console.log('unchanged');
   * ```
   */
  async hashMany(ranges: readonly { address: number; length: number }[], slot = 0): Promise<string[]> {
    const buffer = this.#slot(slot);
    for (const r of ranges) {
      if (r.length > 0 && r.address < buffer.address + buffer.size && r.address + r.length > buffer.tableArea) {
        throw new RangeError(
          `cannot hash ${hex32(r.address)}..${hex32(r.address + r.length - 1)}: it overlaps buffer ${slot} (${hex32(buffer.tableArea)}..${hex32(buffer.address + buffer.size - 1)}), which the hash run writes`,
        );
      }
    }
    const entry = this.layout.helpers + TARGET_ENTRY.hash128;
    const perRun = Math.min(buffer.tableEntries, Math.floor(buffer.size / HASH128_BYTES));
    const out: string[] = [];
    for (let i = 0; i < ranges.length; i += perRun) {
      const chunk = ranges.slice(i, i + perRun);
      const calls: BatchCall[] = chunk.map((r, j) => ({
        fn: 'hash128',
        entry,
        args: [0, r.address, r.length, buffer.address + j * HASH128_BYTES],
        expect: 0,
        collect: true,
      }));
      await this.batch(slot, calls);
      const bytes = await this.gdb.readMemory(buffer.address, chunk.length * HASH128_BYTES);
      for (let j = 0; j < chunk.length; j++) {
        out.push(Buffer.from(bytes.buffer, bytes.byteOffset + j * HASH128_BYTES, HASH128_BYTES).toString('hex'));
      }
    }
    return out;
  }

  /**
   * Address in target RAM of one of rspflash's own routines (Thumb bit clear),
   * for a {@link BatchCall}'s `entry`: what hashMany does with `hash128`, for
   * callers that put our helpers in their own batches. (The LZ4 decoder,
   * `UNPACK_CODE`, is not among them: a run that compresses loads it itself;
   * docs/compression.md.)
   *
   * @example
   * ```ts
   * const nop: BatchCall = { fn: 'nop', entry: runner.helperEntry('nop'), args: [0], expect: 0 };
   * ```
   */
  helperEntry(name: keyof typeof TARGET_ENTRY): number {
    return this.layout.helpers + TARGET_ENTRY[name];
  }

  /** Calls one of our helpers once per range through the sequencer, collecting results. */
  async #collectMany(
    fn: string,
    offset: number,
    ranges: readonly { address: number; length: number }[],
    argsOf: (range: { address: number; length: number }) => number[],
    slot: number,
  ): Promise<number[]> {
    const entry = this.layout.helpers + offset;
    const out: number[] = [];
    const perBatch = this.#slot(slot).tableEntries;
    for (let i = 0; i < ranges.length; i += perBatch) {
      const calls: BatchCall[] = ranges.slice(i, i + perBatch).map((r) => ({ fn, entry, args: argsOf(r), expect: 0, collect: true }));
      out.push(...(await this.batch(slot, calls)));
    }
    return out;
  }

  async #loadCrcTable(): Promise<void> {
    if (this.#crcTableLoaded) return;
    await this.gdb.writeMemory(this.layout.crcTable, crcTableBytes());
    this.#crcTableLoaded = true;
  }

  /** Runs a helper of ours (not the algorithm's) and returns the core registers after it. */
  async #callHelper(name: string, offset: number, args: readonly number[]): Promise<Record<string, number>> {
    return this.#run(name, this.layout.helpers + offset, args, HELPER_TIMEOUT_MS);
  }

  /**
   * The call itself: G, c, g. Returns the core registers at the trap.
   * Faults, timeouts and stack overflows become typed errors; the core is
   * always left halted. `extra` registers go into the same `G`. On a fault or
   * timeout, `running` (when given) names the call that was running instead of
   * `fn(args)` — the sequencer's own arguments mean nothing to a user.
   */
  async #run(
    fn: string,
    entry: number,
    args: readonly number[],
    timeoutMs: number,
    extra: Readonly<Record<string, number>> = {},
    running?: () => Promise<CallName | undefined>,
  ): Promise<Record<string, number>> {
    if (this.#closed) throw new TargetStateError(`The algorithm runner is closed; cannot call ${fn}`);
    if (this.#faulted !== undefined) {
      throw new TargetStateError(
        `The core is still in an exception handler after ${this.#faulted}; reset the target and load the algorithm again before calling ${fn}`,
        {
          hint: "A faulted core cannot run more code (a second fault locks it up): reset it (`reset`, 'monitor reset', or GdbClient.monitor with the server's reset command), then create a new runner.",
        },
      );
    }
    const values: Record<string, number> = {
      r0: args[0] ?? 0,
      r1: args[1] ?? 0,
      r2: args[2] ?? 0,
      r3: args[3] ?? 0,
      ...extra,
      sp: this.layout.stackTop,
      lr: this.layout.trap | 1,
      pc: entry,
      xpsr: XPSR_THUMB,
    };
    if (this.layout.staticBase !== undefined) values.r9 = this.layout.staticBase;
    this.#registersWritten = true;
    await this.gdb.writeRegisters(values);
    this.stats.runs++;
    const { stop, interrupted } = await this.gdb.continue({ timeoutMs });
    if (stop.kind === 'exited' || stop.kind === 'killed') {
      this.#faulted = `${formatCall(fn, args)} ended the target`;
      throw new AlgorithmFaultError(
        `${formatCall(fn, args)} ended the target (stop reply '${stop.kind}'): QEMU exits when the core locks up after a fault in a fault handler`,
        fn,
        args,
        undefined,
        undefined,
      );
    }
    const regs = await this.gdb.readCoreRegisters();
    const pc = regs.pc;
    const xpsr = regs.xpsr ?? 0;
    // At the trap the call returned, even if our interrupt for a timeout crossed its stop reply.
    if (pc === this.layout.trap) return regs;
    // Error path from here on: extra reads are fine.
    const named: CallName = (running && (await running().catch(() => undefined))) || { fn, args };
    const call = formatCall(named.fn, named.args);
    const note = named.note === undefined ? '' : ` [${named.note}]`;
    const where = `PC ${pc === undefined ? '?' : hex32(pc)}, ${exceptionName(xpsr)}`;
    if (exceptionNumber(xpsr) !== 0 || (pc !== undefined && pc === this.#faultHandler)) {
      const exception = exceptionNumber(xpsr) !== 0 ? exceptionName(xpsr) : 'a fault handler';
      this.#faulted = `${call} faulted (${exception})`;
      const detail = await this.#faultDetail(regs).catch((): FaultDetail => ({ pc: undefined, text: '' }));
      const lr = regs.lr === undefined ? '' : `, LR ${hex32(regs.lr)}`;
      const at = detail.pc === undefined ? '' : ` at ${this.#describeAddress(detail.pc)}`;
      throw new AlgorithmFaultError(
        `${call} faulted${at}: ${exception}${detail.text}; the core stopped at ${where}${lr}${note}`,
        named.fn,
        named.args,
        detail.pc ?? pc,
        xpsr,
      );
    }
    if (interrupted) {
      throw new AlgorithmTimeoutError(
        `${call} did not return within ${timeoutMs} ms; the core was halted at ${pc === undefined ? where : this.#describeAddress(pc)}, ${exceptionName(xpsr)}${note}`,
        named.fn,
        named.args,
        timeoutMs,
        pc,
      );
    }
    throw new AlgorithmFaultError(
      `${call} stopped at ${where} instead of returning to the trap at ${hex32(this.layout.trap)}${note}`,
      named.fn,
      named.args,
      pc,
      xpsr,
    );
  }

  /**
   * Reads what the core recorded about a fault: the stacked PC (only when the
   * core stopped on the fault handler's first instruction, where SP points at
   * the exception frame) and the fault status registers (ARMv7-M and later;
   * reads that fail are skipped). Only on the error path.
   */
  async #faultDetail(regs: Record<string, number>): Promise<FaultDetail> {
    let pc: number | undefined;
    let text = '';
    if (regs.pc !== undefined && regs.pc === this.#faultHandler && regs.sp !== undefined) {
      const frame = await this.gdb.readMemory(regs.sp, EXCEPTION_FRAME_BYTES).catch(() => undefined);
      if (frame) pc = new DataView(frame.buffer, frame.byteOffset).getUint32(EXCEPTION_FRAME.pc, true);
    }
    if (this.#v8m || (this.#cpuid !== undefined && hasFaultStatusRegisters(this.#cpuid))) {
      const bytes = await this.gdb.readMemory(CFSR, FAULT_STATUS_BYTES).catch(() => undefined);
      if (bytes) {
        const status = parseFaultStatus(bytes);
        const causes = faultCauses(status);
        text = ` (CFSR ${hex32(status.cfsr)}${causes.length > 0 ? `: ${causes.join(', ')}` : ''}; HFSR ${hex32(status.hfsr)})`;
      }
    }
    return { pc, text };
  }

  /** `0x…` plus, inside the algorithm or our helpers, the routine it falls in (`EraseSector+0x4`). */
  #describeAddress(address: number): string {
    const offset = address - this.layout.algorithm;
    if (offset >= 0 && offset < this.layout.algorithmSize) {
      let best: [string, number] | undefined;
      for (const [name, entry] of Object.entries(this.algorithm.functions)) {
        if (entry !== undefined && entry <= offset && (best === undefined || entry > best[1])) best = [name, entry];
      }
      if (best) return `PC ${hex32(address)} (${best[0]}+0x${(offset - best[1]).toString(16)})`;
    }
    const helper = address - this.layout.helpers;
    if (helper >= 0 && helper < TARGET_CODE.length) return `PC ${hex32(address)} (rspflash helper +0x${helper.toString(16)})`;
    return `PC ${hex32(address)}`;
  }

  /**
   * Puts back what the runner borrowed: system registers, stack limits, the
   * RAM it wrote (saved before its first write), core registers, and removes
   * its breakpoints. Each step is tried twice; what still fails is named in
   * the error, never swallowed: a {@link DirtyTargetError} listing what is left
   * on the target (a breakpoint's address, registers, a RAM range), or, when
   * the link is gone, the link's error saying the same. When the state found
   * at create was a killed run's ({@link dirty}), RAM and breakpoints are put
   * back but registers and system registers are not and the core is left
   * halted: close resolves, and {@link dirty} is the report (withFlasher
   * warns through `onInfo`, and refuses `after: 'run'`). After an algorithm
   * fault the system registers stay as set (the core cannot run the restore;
   * the fault's error already asks for a reset). Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    const gdb = this.gdb;
    const saved = this.#saved;
    const restore = this.#options.restore !== false;
    const left: string[] = [];
    const errors: unknown[] = [];
    const step = async (whatIsLeft: string, action: () => Promise<unknown>): Promise<void> => {
      for (let attempt = 1; attempt <= RESTORE_ATTEMPTS; attempt++) {
        if (gdb.closed || gdb.state !== 'halted') break;
        try {
          await action();
          return;
        } catch (err) {
          errors.push(err);
          this.#log(`restoring failed (attempt ${attempt}), ${whatIsLeft}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      left.push(whatIsLeft);
    };
    // A killed run's registers and system registers are not the application's: putting them back would make them stick.
    const core = saved !== undefined && restore && this.#dirty === undefined;
    if (core && saved.splim) {
      const { msplim, psplim } = saved.splim;
      if (this.#faulted === undefined) {
        await step(`MSPLIM/PSPLIM at 0 (were ${hex32(msplim)}/${hex32(psplim)})`, () => this.#callHelper('stack limit restore', TARGET_ENTRY.splimRestore, [msplim, psplim]));
      } else this.#log(`MSPLIM/PSPLIM stay 0 (were ${hex32(msplim)}/${hex32(psplim)}): the faulted core cannot run the restore`);
    }
    if (core && saved.system) {
      const s = saved.system;
      const was = `PRIMASK ${s.primask}, CONTROL ${hex32(s.control)}, MPU_CTRL ${hex32(s.mpu)}, VTOR ${hex32(s.vtor)}, MSP ${hex32(s.msp)}, PSP ${hex32(s.psp)}`;
      if (this.#faulted === undefined) {
        await step(`PRIMASK, CONTROL, MPU and stack pointers as rspflash set them${s.vtorSwitched ? `, VTOR on its vector table ${hex32(this.layout.vectorTable)}` : ''} (were ${was})`, () =>
          this.#run('core restore', this.layout.helpers + TARGET_ENTRY.coreRestore, [s.primask, s.control, s.mpu, s.vtor], HELPER_TIMEOUT_MS, {
            r4: s.vtorSwitched ? 1 : 0,
            r5: s.msp,
            r6: s.psp,
          }),
        );
      } else {
        // Not a failure of close: the fault's own error already says the core needs a reset before anything runs.
        this.#log(`PRIMASK, CONTROL, MPU and stack pointers stay as rspflash set them (were ${was}): the faulted core cannot run the restore`);
        // VTOR must not keep pointing at RAM we are about to give back: a debugger write works on real cores
        // (QEMU ignores it; a reset recovers there).
        if (s.vtorSwitched) await step(`VTOR on rspflash's vector table ${hex32(this.layout.vectorTable)} (was ${hex32(s.vtor)})`, () => gdb.writeMemory(VTOR, u32(s.vtor)));
      }
    }
    if (this.#trapInserted) {
      const type = this.#trapType;
      await step(`a ${type === 'hw' ? 'hardware' : 'software'} breakpoint at ${hex32(this.layout.trap)} (rspflash's return trap)`, () => gdb.removeBreakpoint(this.layout.trap, type));
    }
    const handler = this.#faultHandler;
    if (handler !== undefined && this.#faultHandlerOwned) {
      const what = handler === this.layout.faultLoop ? "rspflash's fault loop" : "the application's HardFault handler";
      await step(`a hardware breakpoint at ${hex32(handler)} (${what})`, () => gdb.removeBreakpoint(handler, 'hw'));
    }
    for (const address of this.#stale) {
      await step(`a hardware breakpoint at ${hex32(address)} (the application's HardFault handler)`, () => gdb.removeBreakpoint(address, 'hw'));
    }
    if (restore) {
      for (const chunk of joinChunks(this.#borrowed)) {
        const range = `${hex32(chunk.start)}..${hex32(chunk.start + chunk.data.length - 1)}`;
        await step(`RAM ${range} holding rspflash's code and data`, async () => {
          await gdb.writeMemory(chunk.start, chunk.data);
          this.stats.ramRestored += chunk.data.length;
        });
      }
    }
    if (core && this.#registersWritten && Object.keys(saved.registers).length > 0) {
      const pc = saved.registers.pc;
      await step(`the core registers as rspflash's last call left them (PC ${pc === undefined ? '?' : hex32(pc)}, SP and the rest not put back)`, () => gdb.writeRegisters(saved.registers));
    }
    this.#closed = true;
    if (left.length > 0) {
      const what = left.join('; ');
      this.#log(`left on the target: ${what}`);
      if (gdb.closed || gdb.state !== 'halted') {
        const why = gdb.closed ? 'the connection is closed' : `the core is ${gdb.state}`;
        const cause = toRspflashError(errors.at(-1) ?? new ConnectionClosedError('The connection to the GDB server is closed'));
        throw cause.within('restore', `Could not restore the target (${why}); left on it: ${what}. ${cause.message}`);
      }
      const last = errors.at(-1);
      const because = last instanceof Error ? ` (${last.message})` : '';
      throw new DirtyTargetError(`Could not restore the target${because}; left on it: ${what}`, what, { cause: last, hint: RESET_HINT });
    }
  }
}

/** The value a routine returns on success, or `undefined` when any value is fine. */
export function successValue(fn: AlgorithmFunction | string, args: readonly number[]): number | undefined {
  switch (fn) {
    case 'Verify':
      return ((args[0] ?? 0) + (args[1] ?? 0)) >>> 0;
    case 'Read':
      return args[1];
    case 'CalcCRC':
    case 'crc32':
    case 'hash32':
    case 'hash128':
      return undefined;
    default:
      return 0;
  }
}

function describeFailure(fn: string, args: readonly number[], result: number, expected?: number): string {
  if (fn === 'Verify') {
    return `${formatCall(fn, args)} found a difference at ${hex32(result)} (expected it to return ${hex32(expected ?? (args[0]! + args[1]!) >>> 0)})`;
  }
  if (fn === 'BlankCheck') return `${formatCall(fn, args)}: the range is not blank (returned ${hex32(result)})`;
  return `${formatCall(fn, args)} failed: it returned ${result} (0x${result.toString(16)})`;
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0, true);
  return out;
}

/** The 256-entry CRC-32 table (poly 0xEDB88320) as little-endian words, for the target's `rsp_crc32`. */
export function crcTableBytes(): Uint8Array {
  const out = new Uint8Array(1024);
  const view = new DataView(out.buffer);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    view.setUint32(n * 4, c >>> 0, true);
  }
  return out;
}

/** The parts of [from, to) that no span of `covered` (sorted, merged) holds. */
function uncovered(covered: readonly { start: number; end: number }[], from: number, to: number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let at = from;
  for (const c of covered) {
    if (c.end <= at) continue;
    if (c.start >= to) break;
    if (c.start > at) out.push({ start: at, end: c.start });
    at = Math.max(at, c.end);
  }
  if (at < to) out.push({ start: at, end: to });
  return out;
}

/** `covered` with `span` added, still sorted and merged. */
function cover(covered: readonly { start: number; end: number }[], span: { start: number; end: number }): { start: number; end: number }[] {
  const all = [...covered, span].sort((a, b) => a.start - b.start);
  const out: { start: number; end: number }[] = [];
  for (const s of all) {
    const last = out.at(-1);
    if (last && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else out.push({ ...s });
  }
  return out;
}

/** Saved chunks in address order, neighbours joined: the restore goes out in as few writes as the RAM allows. */
function joinChunks(chunks: readonly { start: number; data: Uint8Array }[]): { start: number; data: Uint8Array }[] {
  const sorted = [...chunks].sort((a, b) => a.start - b.start);
  const out: { start: number; parts: Uint8Array[]; end: number }[] = [];
  for (const c of sorted) {
    const last = out.at(-1);
    if (last && last.end === c.start) {
      last.parts.push(c.data);
      last.end += c.data.length;
    } else out.push({ start: c.start, parts: [c.data], end: c.start + c.data.length });
  }
  return out.map((c) => ({ start: c.start, data: c.parts.length === 1 ? c.parts[0]! : new Uint8Array(Buffer.concat(c.parts)) }));
}

/** RAM the routines of a batch write through their arguments ({@link WRITES_THROUGH}), repeats with stride included. */
function targetWrites(calls: readonly BatchCall[]): MemoryRange[] {
  const out: MemoryRange[] = [];
  for (const c of calls) {
    const w = WRITES_THROUGH[c.fn];
    const address = w === undefined ? undefined : c.args[w.at];
    if (w === undefined || address === undefined) continue;
    const repeat = c.repeat ?? 1;
    // With stride, arg0 and arg2 advance by arg1 between calls.
    const advance = c.stride && (w.at === 0 || w.at === 2) ? (c.args[1] ?? 0) * (repeat - 1) : 0;
    out.push({ address: address >>> 0, length: w.length(c.args) + advance });
  }
  return out;
}
