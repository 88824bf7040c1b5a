/**
 * The executor: runs the steps of a planned job ({@link planJob}) through an
 * {@link AlgorithmRunner} and reports progress as {@link FlashEvent}s. It
 * decides nothing a plan could decide; it compares, keeps, journals, writes
 * and verifies exactly the steps it is given, and cancels between runs.
 * @module
 */
import { AbortedError, UsageError, type RangeAtRisk } from '../errors.js';
import { createDebug } from '../debug.js';
import type { GdbClient } from '../gdb/client.js';
import { FNC_ERASE, FNC_VERIFY, sectorAt, type FlashAlgorithm } from '../algo/algorithm.js';
import { AlgorithmRunner } from '../algo/runner.js';
import type { Image } from '../image/image.js';
import { formatRange, mergeRanges, spanOf, type MemoryRange } from '../range.js';
import { compareSectors, differenceError, findDifferences, refuseForeignJournal, type CheckContext, type VerifyMode } from './checks.js';
import { Journal, defaultJournalDir, describeJournal, journalPath, keptImage, keptRanges, type KeptBytes } from './journal.js';
import { checkInsideFlash, jobTarget, planErase, planJob, planVerify, type JobOptions, type JobPlan, type JobTarget, type Step } from './steps.js';
import { JobContent, imageContent, type ExpectedContent } from './content.js';
import { withInitCalls, writeCalls } from './write-run.js';
import { AlgorithmCalls } from './calls.js';
import { EMPTY_REPORT, named, operationOfCall, startPhase, type Phase, type Run } from './operation.js';
import type { FlashEvent, FlashReport } from './progress.js';
import type { FlasherOptions, OperationOptions, ProgramOptions } from './options.js';

export type { FlasherOptions, ProgramOptions, OperationOptions } from './options.js';

/**
 * Programs, erases, verifies and reads flash through a flash algorithm.
 * Most scripts use it through {@link withFlasher}, which also connects,
 * resets, restores and closes.
 *
 * @example
 * ```ts
 * const flasher = await Flasher.create(gdb, algorithm, { ram: { start: 0x0, size: 0x40000 } });
 * try {
 *   const report = await flasher.program(image, { onProgress: (e) => console.log(e.type) });
 * } finally {
 *   await flasher.close();
 * }
 * ```
 */
export class Flasher {
  /** The connection to the GDB server (owned by the caller: {@link Flasher.close} does not close it). */
  readonly gdb: GdbClient;
  /** The flash algorithm loaded into the target's RAM. */
  readonly algorithm: FlashAlgorithm;
  /** The runner that owns the borrowed RAM and the core while the flasher lives. */
  readonly runner: AlgorithmRunner;
  /** What jobs are planned for: geometry, routines, transfer capacity. */
  readonly target: JobTarget;
  readonly #options: FlasherOptions;
  readonly #journal: Journal | undefined;
  readonly #calls: AlgorithmCalls;
  readonly #log = createDebug('flash');

  private constructor(gdb: GdbClient, algorithm: FlashAlgorithm, runner: AlgorithmRunner, options: FlasherOptions) {
    this.gdb = gdb;
    this.algorithm = algorithm;
    this.runner = runner;
    this.#options = options;
    this.target = jobTarget(algorithm, runner.layout, options.memoryMapped ?? true);
    this.#calls = new AlgorithmCalls(runner, gdb, algorithm, options.clock ?? 0);
    const g = algorithm.geometry;
    if (options.journal !== false) {
      const key = options.journal?.key ?? `${algorithm.name} ${formatRange({ address: g.start, length: g.size })}`;
      this.#journal = new Journal(journalPath(options.journal?.dir ?? defaultJournalDir(), key), key);
    }
  }

  /** Loads the algorithm into the RAM region and prepares the core. */
  static async create(gdb: GdbClient, algorithm: FlashAlgorithm, options: FlasherOptions): Promise<Flasher> {
    const ram = { address: options.ram.start, length: options.ram.size };
    const g = algorithm.geometry;
    if (ram.address < g.start + g.size && ram.address + ram.length > g.start) {
      throw new UsageError(`The RAM region ${formatRange(ram)} overlaps the flash ${formatRange({ address: g.start, length: g.size })}`, {
        hint: 'Give a RAM region (ram) apart from the flash device.',
      });
    }
    if (options.signal?.aborted) throw new AbortedError('Cancelled before the algorithm was loaded; nothing was changed');
    try {
      // One transfer buffer, as large as the RAM allows: a GDB server takes no writes while the core runs.
      const runner = await AlgorithmRunner.create(gdb, algorithm, { ...options, buffers: options.buffers ?? 1 });
      return new Flasher(gdb, algorithm, runner, options);
    } catch (err) {
      throw named(err, { operation: 'load', range: ram }, [], undefined);
    }
  }

  /** The job {@link program} would start with (pure: nothing is sent). */
  plan(image: Image, options: JobOptions = {}): JobPlan {
    return planJob(image, this.target, options);
  }

  /** The recovery journal this flasher writes, when it has one. */
  get journal(): Journal | undefined { return this.#journal; }

  /**
   * Writes `image` to flash: restore what a failed earlier run left in the
   * journal, compare (skip sectors that already hold the image), keep the
   * bytes of touched sectors the image does not cover (journalled first),
   * erase and program run by run, verify. Resolves with a report; throws a
   * typed error (and emits `failed`) naming the operation and the flash left
   * erased or half-written. Running the same program again resumes the job.
   */
  async program(image: Image, options: ProgramOptions = {}): Promise<FlashReport> {
    return this.#operation(options, async (run) => {
      const recovered = await this.#recoverInside(run);
      const first = this.plan(image, options);
      run.emit({ type: 'plan', plan: first.layout, job: first });
      let job = first;
      const compare = first.steps.find((s) => s.kind === 'compare');
      let unchangedBytes = 0;
      if (compare !== undefined) {
        const { differs, blank } = await this.#compare(compare, first, run);
        const unchanged = new Set(first.layout.sectors.map((s) => s.address).filter((a) => !differs.has(a)));
        job = planJob(image, this.target, options, { unchanged, blank });
        for (const s of first.layout.sectors) if (unchanged.has(s.address)) unchangedBytes += s.ranges.reduce((n, r) => n + r.length, 0);
        if (unchanged.size > 0) run.emit({ type: 'skip', sectors: unchanged.size, bytes: unchangedBytes });
        run.emit({ type: 'replan', job, notes: job.notes });
        this.#log(job.notes.join('; '));
      }
      await this.#runSteps(job, new JobContent(job.layout), run, 'write');
      return {
        imageBytes: job.totals.imageBytes,
        sectorsTouched: job.totals.sectorsTouched,
        sectorsSkipped: job.totals.sectorsUnchanged,
        sectorsErased: job.totals.sectorsToErase,
        sectorsBlank: job.totals.sectorsBlank,
        chipErase: job.totals.chipErase,
        pagesProgrammed: job.totals.pagesToProgram,
        bytesProgrammed: job.totals.bytesToProgram,
        bytesKept: job.totals.bytesToKeep,
        bytesRecovered: recovered,
        verify: job.totals.writeRuns === 0 && job.totals.sectorsTouched > 0 ? 'unchanged' : (job.verify ?? 'none'),
        notes: job.notes,
      };
    });
  }

  /**
   * Restores the bytes a failed earlier run left in the recovery journal (a
   * program job of those bytes, keeping the rest of their sectors), then
   * removes the journal. Resolves with the report, or `undefined` when there
   * was nothing to restore. {@link program} does this first by itself.
   */
  async recover(options: OperationOptions & { force?: boolean } = {}): Promise<FlashReport | undefined> {
    const content = await this.#journal?.read();
    if (content === undefined || content.kept.length === 0) return undefined;
    return this.#operation(options, async (run) => ({ bytesRecovered: await this.#recoverInside(run, options.force ?? false) }));
  }

  async #recoverInside(run: Run, force = false): Promise<number> {
    const journal = this.#journal;
    const content = await journal?.read();
    if (journal === undefined || content === undefined || content.kept.length === 0) return 0;
    const ranges = keptRanges(content.kept);
    run.emit({ type: 'recover', journal: journal.path, ranges });
    this.#log(`recovering ${describeJournal(journal, content.kept)}`);
    run.at = { operation: 'recover', range: spanOf(ranges) };
    const image = keptImage(content.kept, journal.path);
    if (!force) await refuseForeignJournal(image, journal.path, this.target, this.#checkContext(imageContent(image, this.algorithm.geometry.erasedValue), quietRun(), () => undefined));
    const job = planJob(image, this.target, { preserve: this.target.memoryMapped || this.target.routines.has('Read') });
    await this.#runSteps(job, new JobContent(job.layout), run, 'write');
    await journal.remove();
    return ranges.reduce((n, r) => n + r.length, 0);
  }

  /**
   * Erases the sectors that overlap `range` (the range is widened to whole
   * sectors; the report's `erased` says which), or the whole device with
   * `'chip'` (EraseChip, or every sector if it has none).
   */
  async erase(range: MemoryRange | 'chip', options: OperationOptions = {}): Promise<FlashReport> {
    return this.#operation(options, async (run) => {
      const { steps, erased, sectors } = planErase(range, this.target);
      const chip = steps.some((s) => s.kind === 'erase-chip');
      await this.#runSteps({ steps, layout: undefined }, undefined, run, 'erase');
      // Bytes a failed job journalled inside the erased range were erased on purpose now: never restore them.
      await this.#journal?.forget(erased);
      return { sectorsTouched: sectors, sectorsErased: chip ? 0 : sectors, chipErase: chip, erased };
    });
  }

  /**
   * Checks that flash holds `image`. Throws {@link VerifyError} naming the
   * differing ranges (and the first differing address of each, where the method
   * can tell); resolves with a report otherwise.
   */
  async verify(image: Image, options: OperationOptions & { verify?: VerifyMode } = {}): Promise<FlashReport> {
    return this.#operation(options, async (run) => {
      const { steps, method } = planVerify(image, this.target, options.verify ?? 'auto');
      await this.#runSteps({ steps, layout: undefined }, imageContent(image, this.algorithm.geometry.erasedValue), run, 'write');
      let imageBytes = 0;
      for (const s of image.segments) imageBytes += s.data.length;
      return { imageBytes, verify: method };
    });
  }

  /**
   * Reads flash: at its address when it is memory mapped, else through the
   * algorithm's Read routine (SEGGER loaders have one).
   */
  async read(range: MemoryRange, options?: { signal?: AbortSignal }): Promise<Uint8Array>;
  /** @deprecated Pass a range: `read({ address, length })`. */
  async read(address: number, length: number): Promise<Uint8Array>;
  async read(a: MemoryRange | number, b?: number | { signal?: AbortSignal }): Promise<Uint8Array> {
    const range = typeof a === 'number' ? { address: a, length: b as number } : a;
    const signal = typeof b === 'object' ? b.signal : undefined;
    checkInsideFlash(range, this.algorithm.geometry);
    if (this.target.memoryMapped) return this.gdb.readMemory(range.address, range.length);
    if (!this.runner.has('Read')) {
      throw new UsageError(`The flash is not memory mapped and '${this.algorithm.name}' has no Read routine: it cannot be read`);
    }
    return this.#calls.withInit(FNC_VERIFY, () => this.#calls.read(range, signal));
  }

  /** Whether the range holds only the erased value. */
  async blankCheck(range: MemoryRange): Promise<boolean>;
  /** @deprecated Pass a range: `blankCheck({ address, length })`. */
  async blankCheck(address: number, length: number): Promise<boolean>;
  async blankCheck(a: MemoryRange | number, b?: number): Promise<boolean> {
    const range = typeof a === 'number' ? { address: a, length: b! } : a;
    checkInsideFlash(range, this.algorithm.geometry);
    const method = this.target.memoryMapped ? 'hash' : 'algo';
    const ctx = this.#checkContext(undefined, quietRun(), () => undefined);
    return (await findDifferences(method, [range], ctx, { erased: true, stopAtFirst: true })).length === 0;
  }

  /** Unloads: the runner restores the registers, RAM and breakpoints it borrowed. */
  async close(): Promise<void> {
    try {
      await this.runner.close();
    } catch (err) {
      throw named(err, { operation: 'restore', range: { address: this.#options.ram.start, length: this.#options.ram.size } }, [], undefined);
    }
  }

  // ---------------------------------------------------------------------------

  /** Runs the steps after the compare: keep (and journal), chip erase, write runs, verify. */
  async #runSteps(job: { steps: readonly Step[]; layout: JobPlan['layout'] | undefined }, content: (ExpectedContent & Partial<Pick<JobContent, 'keep'>>) | undefined, run: Run, writePhase: 'write' | 'erase'): Promise<void> {
    const writes = job.steps.filter((s) => s.kind === 'write');
    let phase: Phase | undefined;
    for (const step of job.steps) {
      // A cancel waits for a sector spread over several runs to be complete.
      if (step.kind !== 'write' || run.pending.size === 0) this.#checkAbort(run);
      switch (step.kind) {
        case 'compare':
          break; // run before planning the rest
        case 'keep': {
          const kept = await this.#keep(step.ranges, step.method, run);
          content!.keep!(kept);
          if (this.#journal !== undefined) {
            if (run.journal === undefined && (await this.#journal.read()) === undefined) run.journalOwned = true;
            await this.#journal.add(kept);
            run.journal = this.#journal.path;
          }
          break;
        }
        case 'erase-chip': {
          const p = startPhase(run, 'erase', 1, 'sectors');
          run.at = { operation: 'erase', range: { address: this.algorithm.geometry.start, length: this.algorithm.geometry.size } };
          run.erased = true;
          for (const w of writes) for (const c of (w as Extract<Step, { kind: 'write' }>).completes) run.pending.set(c.address, c);
          await this.#calls.batch(withInitCalls(this.#calls.target, FNC_ERASE, [{ fn: 'EraseChip', entry: this.runner.entry('EraseChip'), args: [], expect: 0 }]), []);
          p.advance(1);
          p.end();
          break;
        }
        case 'write': {
          if (phase === undefined) phase = startPhase(run, writePhase, writes.reduce((n, w) => n + (w as Extract<Step, { kind: 'write' }>).completes.length, 0), 'sectors');
          run.at = { operation: step.program.length > 0 ? 'write' : 'erase', range: spanOf([...step.erase.map((e) => ({ address: e.address, length: e.size * e.count })), ...step.program]) };
          for (const e of step.erase) for (let i = 0; i < e.count; i++) run.pending.set(e.address + i * e.size, { address: e.address + i * e.size, length: e.size });
          if (step.erase.length > 0) run.erased = true;
          await this.#calls.batch(writeCalls(step, this.#calls.target), step.program.flatMap((p) => [...content!.bytes(p)])).catch((err: unknown) => {
            const call = err as { fn?: string; args?: readonly number[] };
            run.at = (call.fn && operationOfCall(call.fn, call.args ?? [], (a) => sectorAt(this.algorithm.geometry, a)?.size ?? 0)) || run.at;
            throw err;
          });
          for (const c of step.completes) run.pending.delete(c.address);
          phase.advance(step.completes.length);
          if (step === writes.at(-1)) phase.end();
          break;
        }
        case 'verify': {
          const p = startPhase(run, 'verify', step.bytes, 'bytes');
          const ctx = this.#checkContext(content, run, p.advance);
          const bad = await findDifferences(step.method, step.ranges, ctx, { erased: step.expect === 'erased', stopAtFirst: false });
          if (bad.length > 0) throw differenceError(bad, step);
          p.end();
          break;
        }
      }
    }
  }

  async #compare(step: Extract<Step, { kind: 'compare' }>, job: JobPlan, run: Run): Promise<{ differs: Set<number>; blank: Set<number> }> {
    const p = startPhase(run, 'compare', step.bytes, 'bytes');
    run.at = { operation: 'compare', range: spanOf(step.ranges) };
    const found = await compareSectors(step.method, step, this.#checkContext(new JobContent(job.layout), run, p.advance));
    p.end();
    return found;
  }

  async #keep(ranges: readonly MemoryRange[], method: 'memory' | 'algo', run: Run): Promise<KeptBytes[]> {
    const p = startPhase(run, 'read', ranges.reduce((n, r) => n + r.length, 0), 'bytes');
    const out: KeptBytes[] = [];
    const read = async () => {
      for (const r of ranges) {
        this.#checkAbort(run);
        run.at = { operation: 'keep', range: r };
        out.push({ address: r.address, data: method === 'memory' ? await this.gdb.readMemory(r.address, r.length) : await this.#calls.read(r, run.signal) });
        p.advance(r.length);
      }
    };
    if (method === 'algo') await this.#calls.withInit(FNC_VERIFY, read);
    else await read();
    p.end();
    return out;
  }

  #checkContext(content: ExpectedContent | undefined, run: Run, advance: (n: number) => void): CheckContext {
    return {
      runner: this.runner,
      gdb: this.gdb,
      erasedValue: this.algorithm.geometry.erasedValue,
      expected: (r) => content!.bytes(r),
      checkAbort: () => this.#checkAbort(run),
      advance,
      at: (r) => (run.at = { operation: run.at?.operation === 'compare' ? 'compare' : 'verify', range: r }),
      withInit: (fnc, body) => this.#calls.withInit(fnc, body),
    };
  }

  /**
   * The frame of every operation: progress, the report (the body's figures over
   * zero defaults, plus what the link measured) with a `done` event; on failure
   * the error named after the operation, with the flash left at risk, and a
   * `failed` event.
   */
  async #operation(options: OperationOptions, body: (run: Run) => Promise<Partial<FlashReport>>): Promise<FlashReport> {
    const listener = options.onProgress;
    const run: Run = { emit: (e: FlashEvent) => listener?.(e), signal: options.signal, at: undefined, pending: new Map(), journal: undefined, start: performance.now() };
    const before = { ...this.gdb.stats, runs: this.runner.stats.runs };
    try {
      const figures = await body(run);
      // Success: nothing is at risk any more.
      if (run.journal !== undefined) await this.#journal?.remove();
      const now = { ...this.gdb.stats, runs: this.runner.stats.runs };
      const report: FlashReport = {
        ...EMPTY_REPORT,
        ...figures,
        durationMs: Math.round(performance.now() - run.start),
        bytesSent: now.bytesSent - before.bytesSent,
        roundTrips: now.roundTrips - before.roundTrips,
        targetRuns: now.runs - before.runs,
      };
      run.emit({ type: 'done', report });
      return report;
    } catch (err) {
      const atRisk: RangeAtRisk[] = mergeRanges([...run.pending.values()]).map((r) => ({ ...r, state: 'erased-or-partial' as const }));
      // Nothing erased yet: the journal this operation wrote protects nothing and would make the next run erase for it.
      if (run.journalOwned && !run.erased) {
        await this.#journal?.remove().catch(() => undefined);
        run.journal = undefined;
      }
      const error = named(err, run.at, atRisk, run.journal);
      run.emit({ type: 'failed', error });
      throw error;
    }
  }

  #checkAbort(run: Run): void {
    if (run.signal?.aborted) {
      throw new AbortedError('Flashing was cancelled; the target is halted and the algorithm uninitialised', { cause: run.signal.reason });
    }
  }


}

/** The state of a check run outside any operation (no events, no cancellation). */
function quietRun(): Run {
  return { emit: () => undefined, signal: undefined, at: undefined, pending: new Map(), journal: undefined, start: 0 };
}
