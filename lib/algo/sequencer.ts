/**
 * Batch tables for the on-target sequencer (`rsp_seq_run` in target-src/sequencer.c):
 * pure encoding of a list of algorithm calls into the 8-word entries the
 * sequencer executes in one run, and decoding of its outcome.
 * @module
 */

/** Bytes per entry: fn, arg0–arg3, expect, flags, result. */
export const ENTRY_SIZE = 32;
/** Keep the result, do not compare it with `expect`. */
export const FLAG_COLLECT = 1;
/** Between repeats: arg0 += arg1 and arg2 += arg1 (address and buffer advance by the size). */
export const FLAG_STRIDE = 2;
/** Between repeats: expect += arg1 (Verify returns `adr + sz`, which advances too). */
export const FLAG_EXPECT_STRIDE = 4;
/** Set by the sequencer when it starts an entry (never by the host): names the running call after a fault or timeout. */
export const FLAG_STARTED = 8;
/** Largest repeat count an entry holds (16 bits). */
export const MAX_REPEAT = 0xffff;
/** Word the sequencer expects at the bottom of the stack; any other value means overflow. */
export const STACK_CANARY = 0xc0dec0de;

/** The sequencer's status in r1. */
export const SEQ_STATUS = { ok: 0, failed: 1, stackOverflow: 2 } as const;

/** One call, or a run of calls with striding arguments, in a batch. */
export interface BatchCall {
  /** Routine name, for error messages. */
  fn: string;
  /** Absolute entry address (Thumb bit is added when encoding). */
  entry: number;
  /** r0–r3 of the first call. */
  args: readonly number[];
  /** Result that means success (0 for most routines; `adr + sz` for Verify). */
  expect: number;
  /** Times to call; with `stride`, arg0 and arg2 advance by arg1 between calls. */
  repeat?: number;
  /** Advance arg0 (address) and arg2 (data pointer) by arg1 (length) between repeats. */
  stride?: boolean;
  /** With stride, `expect` advances by arg1 too. */
  expectStride?: boolean;
  /** Collect the result instead of checking it (e.g. CRC). */
  collect?: boolean;
}

/**
 * Encodes calls into a table for `rsp_seq_run`, little-endian. Throws
 * `RangeError` for a repeat outside 1..{@link MAX_REPEAT}, more than four
 * arguments, or a value that is not a 32-bit integer (negative values are
 * taken as their two's complement).
 */
export function encodeBatch(calls: readonly BatchCall[]): Uint8Array {
  const table = new Uint8Array(calls.length * ENTRY_SIZE);
  const view = new DataView(table.buffer);
  calls.forEach((call, i) => {
    const repeat = call.repeat ?? 1;
    if (!Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT) {
      throw new RangeError(`repeat ${repeat} of ${call.fn} is outside 1..${MAX_REPEAT}`);
    }
    if (call.args.length > 4) throw new RangeError(`${call.fn} has ${call.args.length} arguments; a call takes at most 4 (r0-r3)`);
    for (const value of [call.entry, ...call.args, call.expect]) {
      if (!Number.isInteger(value) || value < -0x80000000 || value > 0xffffffff) {
        throw new RangeError(`${call.fn}: ${value} is not a 32-bit value`);
      }
    }
    const flags =
      (call.collect ? FLAG_COLLECT : 0) |
      (call.stride ? FLAG_STRIDE : 0) |
      (call.expectStride ? FLAG_EXPECT_STRIDE : 0) |
      (repeat === 1 ? 0 : repeat << 16);
    const words = [call.entry | 1, call.args[0] ?? 0, call.args[1] ?? 0, call.args[2] ?? 0, call.args[3] ?? 0, call.expect, flags >>> 0, 0];
    words.forEach((w, j) => view.setUint32(i * ENTRY_SIZE + j * 4, w >>> 0, true));
  });
  return table;
}

/** An entry as the sequencer left it (arguments advanced to the last call made). */
export interface BatchEntryState {
  args: [number, number, number, number];
  expect: number;
  result: number;
  /** The sequencer has started this entry ({@link FLAG_STARTED}). */
  started: boolean;
}

/** Decodes entry `index` of a table read back from the target. */
export function decodeEntry(table: Uint8Array, index: number): BatchEntryState {
  const view = new DataView(table.buffer, table.byteOffset + index * ENTRY_SIZE, ENTRY_SIZE);
  const w = (j: number) => view.getUint32(j * 4, true);
  return { args: [w(1), w(2), w(3), w(4)], expect: w(5), result: w(7), started: (w(6) & FLAG_STARTED) !== 0 };
}

/**
 * Index of the entry the sequencer was running when it stopped without
 * returning (a fault, a timeout): the last one it marked started, or
 * `undefined` if it started none.
 */
export function runningEntry(table: Uint8Array): number | undefined {
  let running: number | undefined;
  for (let i = 0; (i + 1) * ENTRY_SIZE <= table.length; i++) if (decodeEntry(table, i).started) running = i;
  return running;
}

/** Reads the `result` word of every entry (for collected results such as CRCs). */
export function decodeResults(table: Uint8Array): number[] {
  const out: number[] = [];
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  for (let off = 0; off + ENTRY_SIZE <= table.length; off += ENTRY_SIZE) out.push(view.getUint32(off + 28, true));
  return out;
}
