/**
 * Calls into the loaded algorithm as the executor needs them: a write run's
 * batch (UnInit of whatever the failing call left open), a body between
 * Init and UnInit, reads through the algorithm's Read routine. Init and UnInit
 * are paired by construction: inside a batch as table entries
 * ({@link writeCalls}), around a body by {@link AlgorithmCalls.withInit}.
 * @module
 */
import { AbortedError, RspflashError, VerifyError, hex32 } from '../errors.js';
import { createDebug } from '../debug.js';
import type { GdbClient } from '../gdb/client.js';
import type { FlashAlgorithm } from '../algo/algorithm.js';
import type { AlgorithmRunner } from '../algo/runner.js';
import type { BatchCall } from '../algo/sequencer.js';
import type { MemoryRange } from '../range.js';
import { openFunction, type CallTarget } from './write-run.js';

/** Added to every measured run timeout, ms: host and link jitter. */
const RUN_TIMEOUT_SLACK_MS = 1000;

/** After these the core cannot run code (or the link is gone): no UnInit. */
export const NO_CODE_AFTER: ReadonlySet<string> = new Set(['RSPFLASH_ALGO_FAULT', 'RSPFLASH_ALGO_TIMEOUT', 'RSPFLASH_CONNECTION_CLOSED', 'RSPFLASH_RSP_TIMEOUT']);

/** The executor's calls into one loaded algorithm. */
export class AlgorithmCalls {
  readonly #runner: AlgorithmRunner;
  readonly #gdb: GdbClient;
  readonly #algorithm: FlashAlgorithm;
  readonly #clock: number;
  readonly #log = createDebug('flash');

  constructor(runner: AlgorithmRunner, gdb: GdbClient, algorithm: FlashAlgorithm, clock: number) {
    this.#runner = runner;
    this.#gdb = gdb;
    this.#algorithm = algorithm;
    this.#clock = clock;
  }

  /** What {@link writeCalls} needs: entries, Init's arguments, the transfer buffer. */
  get target(): CallTarget {
    return {
      entry: (fn) => (this.#runner.has(fn) ? this.#runner.entry(fn) : undefined),
      flashStart: this.#algorithm.geometry.start,
      clock: this.#clock,
      pageSize: this.#algorithm.geometry.pageSize,
      buffer: this.#runner.buffer(0).address,
    };
  }

  /**
   * Observed milliseconds per millisecond of worst-case work (the algorithm's
   * per-call timeouts), by kind of call (erase, program, verify, other): for
   * each kind the largest ratio seen, counting a whole run's time against the
   * work of that kind in it — an upper bound, so a prediction never falls short
   * when the mix of calls changes.
   */
  readonly #msPerWork = new Map<string, number>();

  /**
   * The timeout of a run: its slowest single call's own timeout, plus three
   * times what the runs so far say the whole run takes, plus a second. A hung
   * call is noticed within its own timeout and a few runs' time, not after the
   * worst case of every call in the run (Alif's FLM allows 30 s per sector
   * erase: 32 of them would be 16 minutes). Until every kind of call in the run
   * has been measured the runner's worst-case sum applies — which is why the
   * plan's first write run holds one sector (`FIRST_RUN_SECTORS` in steps.ts).
   */
  runTimeout(calls: readonly BatchCall[]): number | undefined {
    let predicted = 0;
    let slowest = 0;
    for (const [kind, work] of workByKind(calls, this.#runner)) {
      const ratio = this.#msPerWork.get(kind);
      if (ratio === undefined) return undefined;
      predicted += work * ratio;
    }
    for (const c of calls) slowest = Math.max(slowest, this.#runner.timeoutFor(c.fn, c.args));
    return Math.min(this.#runner.batchTimeout(calls), Math.ceil(slowest + 3 * predicted + RUN_TIMEOUT_SLACK_MS));
  }

  #observe(calls: readonly BatchCall[], elapsedMs: number): void {
    for (const [kind, work] of workByKind(calls, this.#runner)) {
      if (work > 0) this.#msPerWork.set(kind, Math.max(this.#msPerWork.get(kind) ?? 0, elapsedMs / work));
    }
  }

  /**
   * Runs one batch with `data` in the transfer buffer. After a failing call,
   * UnInits the function the batch left open (unless the core cannot run code);
   * a failing Verify becomes a {@link VerifyError}.
   */
  async batch(calls: readonly BatchCall[], data: readonly Uint8Array[]): Promise<void> {
    const timeoutMs = this.runTimeout(calls);
    const started = performance.now();
    try {
      await this.#runner.batch(0, calls, timeoutMs === undefined ? { data } : { data, timeoutMs });
      this.#observe(calls, performance.now() - started);
    } catch (err) {
      const e = err as { code?: string; fn?: string; args?: readonly number[] };
      const open = e.fn === undefined ? undefined : openFunction(e.fn, e.args ?? []);
      if (open !== undefined) await this.#uninitAfterFailure(open, e.code);
      if (err instanceof RspflashError && err.code === 'RSPFLASH_ALGO_FAILED' && e.fn === 'Verify') {
        const result = (err as unknown as { result: number }).result;
        throw new VerifyError(`Verify after programming failed: flash differs from the image at ${hex32(result)}`, result, { cause: err });
      }
      throw err;
    }
  }

  /** `body` between Init(fnc) and UnInit(fnc): UnInit also when `body` fails, unless the core cannot run code. */
  async withInit<T>(fnc: number, body: () => Promise<T>): Promise<T> {
    if (this.#runner.has('Init')) await this.#runner.callChecked('Init', [this.#algorithm.geometry.start, this.#clock, fnc]);
    let result: T;
    try {
      result = await body();
    } catch (err) {
      await this.#uninitAfterFailure(fnc, err instanceof RspflashError ? err.code : undefined);
      throw err;
    }
    if (this.#runner.has('UnInit')) await this.#runner.callChecked('UnInit', [fnc]);
    return result;
  }

  /** Reads through the algorithm's Read routine, a buffer at a time (call inside {@link withInit}). */
  async read(range: MemoryRange, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const out = new Uint8Array(range.length);
    const buffer = this.#runner.buffer(0);
    for (let done = 0; done < range.length; done += buffer.size) {
      if (signal?.aborted) throw new AbortedError('Reading was cancelled; the target is halted');
      const n = Math.min(buffer.size, range.length - done);
      await this.#runner.batch(0, [{ fn: 'Read', entry: this.#runner.entry('Read'), args: [range.address + done, n, buffer.address], expect: n }]);
      out.set(await this.#gdb.readMemory(buffer.address, n), done);
    }
    return out;
  }

  async #uninitAfterFailure(fnc: number, code: string | undefined): Promise<void> {
    if (!this.#runner.has('UnInit') || this.#gdb.closed || NO_CODE_AFTER.has(code ?? '')) return;
    await this.#runner.callChecked('UnInit', [fnc]).catch((x: unknown) => this.#log(`UnInit after failure failed too: ${String(x)}`));
  }
}

/** What kind of work a call is, for run timeouts: device erase, device program, flash reads, the rest. */
function kindOf(fn: string): string {
  if (fn === 'EraseSector' || fn === 'Erase' || fn === 'EraseChip') return 'erase';
  if (fn === 'ProgramPage' || fn === 'Program') return 'program';
  if (fn === 'Verify' || fn === 'BlankCheck' || fn === 'Read' || fn === 'CalcCRC') return 'read';
  return 'other';
}

/** Worst-case work (ms of the algorithm's own timeouts, repeats counted) of a batch, by kind. */
function workByKind(calls: readonly BatchCall[], runner: AlgorithmRunner): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of calls) {
    const kind = kindOf(c.fn);
    out.set(kind, (out.get(kind) ?? 0) + runner.timeoutFor(c.fn, c.args) * (c.repeat ?? 1));
  }
  return out;
}
