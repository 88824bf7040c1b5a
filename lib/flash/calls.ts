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
   * Runs one batch with `data` in the transfer buffer. After a failing call,
   * UnInits the function the batch left open (unless the core cannot run code);
   * a failing Verify becomes a {@link VerifyError}.
   */
  async batch(calls: readonly BatchCall[], data: readonly Uint8Array[]): Promise<void> {
    try {
      await this.#runner.batch(0, calls, { data });
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
