/**
 * Runs flash plans through an {@link AlgorithmRunner}: compare (skip
 * unchanged sectors), keep, erase, program, verify — batched on the target,
 * cancellable between batches, reporting progress as {@link FlashEvent}s.
 * Never builds a packet: the runner and the client do the talking.
 * @module
 */
import { crc32 } from 'node:zlib';
import { murmur3 } from './hash.js';
import { AbortedError, RspflashError, UsageError, VerifyError, hex32 } from '../errors.js';
import { createDebug } from '../debug.js';
import type { GdbClient } from '../gdb/client.js';
import type { ConnectionStats } from '../gdb/client.js';
import { FNC_ERASE, FNC_PROGRAM, FNC_VERIFY, sectorAt, type FlashAlgorithm } from '../algo/algorithm.js';
import { AlgorithmRunner, type RunnerOptions } from '../algo/runner.js';
import type { BatchCall } from '../algo/sequencer.js';
import type { RamRegion } from '../algo/layout.js';
import { imageBytes, type Image } from '../image/image.js';
import { planFlash, type ChipEraseMode, type FlashPlan, type PlannedSector } from './plan.js';
import type { FlashEvent, FlashPhase, FlashReport, ProgressListener } from './progress.js';

/** How programmed data is checked. `auto`: the algorithm's Verify if it has one, else CRC. */
export type VerifyMode = 'auto' | 'algo' | 'crc' | 'read' | 'none';

/**
 * How unchanged sectors are found. `crc`: a checksum of each range computed on
 * the target (MurmurHash3, word at a time; see lib/flash/hash.ts) against the
 * host's; `algo`: the algorithm's Verify on the image data (sends the data);
 * `auto`: the checksum when the flash is memory mapped, else Verify.
 */
export type CompareMode = 'auto' | 'crc' | 'algo' | 'none';

/** Options of {@link Flasher.create}. */
export interface FlasherOptions extends Omit<RunnerOptions, 'ram'> {
  /** RAM lent to the algorithm, its stack and buffers. */
  ram: RamRegion;
  /**
   * Whether the flash can be read at its address while the algorithm owns it
   * (internal flash, simulated NOR: yes; Alif OSPI: no). Decides how sectors
   * are compared and kept. Default true.
   */
  memoryMapped?: boolean;
  /** Clock argument for Init (CMSIS `clk`), default 0. */
  clock?: number;
}

/** Options of {@link Flasher.program}. */
export interface ProgramOptions {
  verify?: VerifyMode;
  /** Leave sectors that already hold the image alone (default true). */
  skipUnchanged?: boolean;
  /** Which comparison skip-unchanged uses. */
  compare?: CompareMode;
  /**
   * Keep bytes of touched sectors that the image does not cover. Default: true
   * when the flash can be read (memory mapped, or the algorithm has Read).
   */
  preserve?: boolean;
  chipErase?: ChipEraseMode;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

interface Session {
  fnc: number | undefined;
  start: number;
  emit: ProgressListener;
  signal: AbortSignal | undefined;
  /** The step under way: a failure names it (see {@link FlashStep}). */
  step: FlashStep | undefined;
  /** The step the algorithm was initialised for (its UnInit is named after it). */
  initFor: FlashStep | undefined;
}

/**
 * What a flash operation was doing when it failed. A failed {@link Flasher.program},
 * {@link Flasher.erase}, {@link Flasher.verify}, {@link Flasher.create} or
 * {@link Flasher.close} throws the lower layer's error (same class, same `code`)
 * with its message prefixed by the step (`Programming 0xc0010000..0xc001ffff
 * failed: …`) and an `operation` field (`program 0xc0010000..0xc001ffff`), so a
 * user learns which flash addresses were in play, not only which packet failed.
 */
export interface FlashStep {
  operation: 'load' | 'init' | 'compare' | 'read' | 'erase' | 'program' | 'verify' | 'uninit' | 'restore';
  /** First address of the step: flash, or target RAM for `load` and `restore`. */
  address: number;
  length: number;
}

const STEP_VERBS: Record<FlashStep['operation'], string> = {
  load: 'Loading the flash algorithm into RAM',
  init: 'Initialising the algorithm (Init) for',
  compare: 'Comparing the flash with the image at',
  read: 'Reading the bytes to keep at',
  erase: 'Erasing',
  program: 'Programming',
  verify: 'Verifying',
  uninit: 'Finishing with the algorithm (UnInit) after',
  restore: "Restoring the target's registers and RAM",
};

/** Errors that already say all there is: no step prefix. */
const SELF_EXPLAINING = new Set(['RSPFLASH_ABORTED', 'RSPFLASH_USAGE', 'RSPFLASH_OUT_OF_FLASH']);

function stepRange(step: FlashStep): string {
  return step.length > 0 ? `${hex32(step.address)}..${hex32(step.address + step.length - 1)}` : hex32(step.address);
}

/**
 * Prefixes `err` with the step it interrupted (once: an error the link keeps
 * re-throwing after it closed is not prefixed twice) and sets its `operation`.
 */
function nameStep(err: unknown, step: FlashStep | undefined): void {
  if (!(err instanceof RspflashError) || step === undefined || SELF_EXPLAINING.has(err.code) || 'operation' in err) return;
  const range = stepRange(step);
  Object.defineProperty(err, 'operation', { value: `${step.operation} ${range}`, enumerable: true, writable: true, configurable: true });
  err.message = `${STEP_VERBS[step.operation]} ${range} failed: ${err.message}`;
}

/** A step covering the items, from the first one's address to the last one's end (items ascend). */
function stepOver(operation: FlashStep['operation'], items: readonly { address: number; data?: Uint8Array; size?: number }[]): FlashStep {
  if (items.length === 0) return { operation, address: 0, length: 0 };
  const first = items[0]!.address;
  const last = items[items.length - 1]!;
  return { operation, address: first, length: last.address + (last.data?.length ?? last.size ?? 0) - first };
}

type Counters = ConnectionStats & { runs: number };

/** A report's figures before an operation adds its own. */
const EMPTY_REPORT: Omit<FlashReport, 'durationMs' | 'bytesSent' | 'roundTrips' | 'targetRuns'> = {
  imageBytes: 0,
  sectorsTouched: 0,
  sectorsSkipped: 0,
  sectorsErased: 0,
  chipErase: false,
  pagesProgrammed: 0,
  bytesProgrammed: 0,
  bytesKept: 0,
  verify: 'none',
};

/** One page (or run of pages) to program, gathered into a buffer. */
interface Chunk {
  address: number;
  data: Uint8Array;
}

/**
 * Programs, erases, verifies and reads flash through a flash algorithm.
 *
 * @example
 * ```ts
 * const gdb = await GdbClient.connect({ port: 2331 });
 * const algo = loadAlgorithm(readFileSync('Ensemble_IS25WX256.FLM'), 'Ensemble_IS25WX256.FLM');
 * const flasher = await Flasher.create(gdb, algo, { ram: { start: 0x0, size: 0x40000 } });
 * try {
 *   const report = await flasher.program(image, { onProgress: (e) => console.log(e.type) });
 * } finally {
 *   await flasher.close();
 *   await gdb.close();
 * }
 * ```
 */
export class Flasher {
  readonly gdb: GdbClient;
  readonly algorithm: FlashAlgorithm;
  readonly runner: AlgorithmRunner;
  readonly #options: FlasherOptions;
  readonly #log = createDebug('flash');

  private constructor(gdb: GdbClient, algorithm: FlashAlgorithm, runner: AlgorithmRunner, options: FlasherOptions) {
    this.gdb = gdb;
    this.algorithm = algorithm;
    this.runner = runner;
    this.#options = options;
  }

  /** Loads the algorithm into the RAM region and prepares the core. */
  static async create(gdb: GdbClient, algorithm: FlashAlgorithm, options: FlasherOptions): Promise<Flasher> {
    const ramEnd = options.ram.start + options.ram.size;
    const g = algorithm.geometry;
    if (options.ram.start < g.start + g.size && ramEnd > g.start) {
      throw new UsageError(
        `The RAM region ${hex32(options.ram.start)}..${hex32(ramEnd - 1)} overlaps the flash ${hex32(g.start)}..${hex32(g.start + g.size - 1)}`,
        { hint: 'Pass a RAM region (--ram ADDR:SIZE) apart from the flash device.' },
      );
    }
    try {
      // One transfer buffer, as large as the RAM allows: the flasher fills one buffer per target run
    // (a GDB server cannot take writes while the core runs), so a second buffer would only halve it.
    const runner = await AlgorithmRunner.create(gdb, algorithm, { ...options, buffers: options.buffers ?? 1 });
      return new Flasher(gdb, algorithm, runner, options);
    } catch (err) {
      nameStep(err, { operation: 'load', address: options.ram.start, length: options.ram.size });
      throw err;
    }
  }

  get #memoryMapped(): boolean {
    return this.#options.memoryMapped ?? true;
  }

  /** The plan {@link program} would carry out, without touching the target. */
  plan(image: Image, options: Pick<ProgramOptions, 'preserve' | 'chipErase'> = {}): FlashPlan {
    return planProgram(image, this.algorithm, { ...options, readable: this.#memoryMapped || this.runner.has('Read') });
  }

  /**
   * Writes `image` to flash: plan, skip sectors that already hold it, keep the
   * bytes of touched sectors the image does not cover, erase, program, verify.
   * Resolves with a report; throws a typed error (and emits `failed`) otherwise,
   * its message prefixed with the step that failed and the flash addresses
   * involved ({@link FlashStep}). Progress events before a failure never claim
   * more than is in flash, so running the same program again resumes the job:
   * sectors that already hold the image are skipped.
   */
  async program(image: Image, options: ProgramOptions = {}): Promise<FlashReport> {
    return this.#operation(options, async (session) => {
      // Inside the operation, so a refusal (image outside the flash, bad options) emits 'failed' too;
      // nothing has touched the target yet at this point.
      const plan = this.plan(image, options);
      const verifyMode = this.#verifyMode(options.verify ?? 'auto');
      session.emit({ type: 'plan', plan });
      let sectors = [...plan.sectors];
      let skipped = 0;
      let skippedBytes = 0;
      let chipErase = plan.erase.kind === 'chip';
      // Compare first, even when the plan chose chip erase on its own ('auto'): erasing the whole chip
      // would throw away sectors that already hold the image. Only an explicit 'always' skips the compare.
      if ((options.skipUnchanged ?? true) && options.chipErase !== 'always' && sectors.length > 0) {
        const same = await this.#unchanged(sectors, options.compare ?? 'auto', session, !plan.preserve);
        if (chipErase && same.size > 0) {
          chipErase = false;
          this.#log(`chip erase declined: ${same.size} of ${plan.sectors.length} sectors already hold the image`);
        }
        if (!chipErase) {
          sectors = sectors.filter((s) => !same.has(s.address));
          skipped = same.size;
          skippedBytes = plan.sectors.filter((s) => same.has(s.address)).reduce((n, s) => n + s.size, 0);
        }
        session.emit({ type: 'skip', sectors: skipped, bytes: skippedBytes });
        this.#log(`skip-unchanged: ${skipped} of ${plan.sectors.length} sectors already hold the image`);
      }
      const kept = await this.#keep(sectors, session);
      if (chipErase) await this.#eraseChip(session);
      else await this.#eraseSectors(sectors, session);
      const chunks = this.#chunks(sectors, kept);
      await this.#programChunks(chunks, verifyMode === 'algo', session);
      if (verifyMode === 'crc' || verifyMode === 'read') await this.#verifyChunks(chunks, verifyMode, session);
      return {
        imageBytes: plan.totals.imageBytes,
        sectorsTouched: plan.sectors.length,
        sectorsSkipped: skipped,
        sectorsErased: chipErase ? 0 : sectors.length,
        chipErase,
        pagesProgrammed: chunks.reduce((n, c) => n + c.data.length / this.algorithm.geometry.pageSize, 0),
        bytesProgrammed: chunks.reduce((n, c) => n + c.data.length, 0),
        bytesKept: kept.bytes,
        // Nothing programmed, nothing verified: the compare already showed the flash holds the image.
        verify: chunks.length > 0 ? verifyMode : 'none',
      };
    });
  }

  /**
   * Erases the sectors that overlap `[address, address + length)`, or the
   * whole device with `'chip'` (EraseChip, or every sector if it has none).
   */
  async erase(range: { address: number; length: number } | 'chip', options: Pick<ProgramOptions, 'signal' | 'onProgress'> = {}): Promise<FlashReport> {
    const g = this.algorithm.geometry;
    return this.#operation(options, async (session) => {
      let sectors: PlannedSector[] = [];
      let chip = false;
      if (range === 'chip' && this.runner.has('EraseChip')) {
        chip = true;
        await this.#eraseChip(session);
      } else {
        const { address, length } = range === 'chip' ? { address: g.start, length: g.size } : range;
        sectors = this.#sectorsIn(address, length);
        await this.#eraseSectors(sectors, session);
      }
      return { sectorsTouched: sectors.length, sectorsErased: sectors.length, chipErase: chip };
    });
  }

  /**
   * Checks that flash holds `image`. Throws {@link VerifyError} naming the
   * first differing address; resolves with a report otherwise.
   */
  async verify(image: Image, options: Pick<ProgramOptions, 'signal' | 'onProgress' | 'verify'> = {}): Promise<FlashReport> {
    return this.#operation(options, async (session) => {
      const plan = this.plan(image, { preserve: false, chipErase: 'never' });
      let mode = options.verify ?? 'auto';
      if (mode === 'auto' || mode === 'none') mode = this.#memoryMapped ? 'crc' : 'algo';
      if ((mode === 'crc' || mode === 'read') && !this.#memoryMapped) {
        throw new UsageError(`--verify ${mode} reads the flash at its address, which this flash does not allow while the algorithm owns it: use --verify algo`);
      }
      const chunks: Chunk[] = [];
      for (const seg of image.segments) chunks.push({ address: seg.address, data: seg.data });
      if (mode === 'algo') {
        await this.#verifyWithAlgorithm(chunks, session);
      } else {
        await this.#verifyChunks(chunks, mode, session);
      }
      return { imageBytes: plan.totals.imageBytes, sectorsTouched: plan.sectors.length, verify: mode };
    });
  }

  /**
   * Reads flash: directly when it is memory mapped, else through the
   * algorithm's Read routine (SEGGER loaders have one).
   */
  async read(address: number, length: number): Promise<Uint8Array> {
    if (this.#memoryMapped) return this.gdb.readMemory(address, length);
    if (!this.runner.has('Read')) {
      throw new UsageError(`The flash is not memory mapped and '${this.algorithm.name}' has no Read routine: it cannot be read`);
    }
    return this.#standalone((session) => this.#readWithAlgorithm(address, length, session));
  }

  /** Whether `[address, address + length)` is blank (all erased value). */
  async blankCheck(address: number, length: number): Promise<boolean> {
    const erased = this.algorithm.geometry.erasedValue;
    if (this.#memoryMapped) {
      const crc = await this.runner.crc32(address, length);
      return crc === crc32(new Uint8Array(length).fill(erased));
    }
    return this.#standalone(async (session) => {
      await this.#init(FNC_VERIFY, session);
      return (await this.runner.call('BlankCheck', [address, length, erased])) === 0;
    });
  }

  /** A small operation in a session of its own: UnInit afterwards, also when it fails. */
  async #standalone<T>(body: (session: Session) => Promise<T>): Promise<T> {
    const session = this.#session({});
    try {
      return await body(session);
    } finally {
      await this.#uninit(session).catch((e: unknown) => this.#log(`UnInit failed: ${String(e)}`));
    }
  }

  /** Reads through the algorithm's Read routine, buffer by buffer, inside `session` (its Init stays paired). */
  async #readWithAlgorithm(address: number, length: number, session: Session): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const buffer = this.runner.buffer(0);
    await this.#init(FNC_VERIFY, session);
    for (let done = 0; done < length; done += buffer.size) {
      const n = Math.min(buffer.size, length - done);
      await this.runner.batch(0, [{ fn: 'Read', entry: this.runner.entry('Read'), args: [address + done, n, buffer.address], expect: n }]);
      out.set(await this.gdb.readMemory(buffer.address, n), done);
    }
    return out;
  }

  /** Unloads: UnInit if still initialised, then the runner restores what it borrowed. */
  async close(): Promise<void> {
    try {
      await this.runner.close();
    } catch (err) {
      nameStep(err, { operation: 'restore', address: this.#options.ram.start, length: this.#options.ram.size });
      throw err;
    }
  }

  // ---------------------------------------------------------------------------

  /**
   * The frame of every operation: a session for its progress, UnInit at the
   * end, the report (the body's figures over zero defaults, plus what the link
   * measured) with a `done` event; on failure a `failed` event and the error.
   */
  async #operation(options: Pick<ProgramOptions, 'signal' | 'onProgress'>, body: (session: Session) => Promise<Partial<FlashReport>>): Promise<FlashReport> {
    const session = this.#session(options);
    const before = this.#counters();
    try {
      const figures = await body(session);
      await this.#uninit(session);
      const report: FlashReport = { ...EMPTY_REPORT, ...figures, ...this.#delta(before, session) };
      session.emit({ type: 'done', report });
      return report;
    } catch (err) {
      await this.#failed(err, session);
      throw err;
    }
  }

  #session(options: Pick<ProgramOptions, 'signal' | 'onProgress'>): Session {
    const listener = options.onProgress;
    return {
      fnc: undefined,
      start: performance.now(),
      emit: (event: FlashEvent) => listener?.(event),
      signal: options.signal,
      step: undefined,
      initFor: undefined,
    };
  }

  #counters(): Counters {
    return { ...this.gdb.stats, runs: this.runner.stats.runs };
  }

  #delta(before: Counters, session: Session) {
    const now = this.#counters();
    return {
      durationMs: Math.round(performance.now() - session.start),
      bytesSent: now.bytesSent - before.bytesSent,
      roundTrips: now.roundTrips - before.roundTrips,
      targetRuns: now.runs - before.runs,
    };
  }

  #verifyMode(mode: VerifyMode): FlashReport['verify'] {
    if (mode === 'auto') return this.runner.has('Verify') ? 'algo' : this.#memoryMapped ? 'crc' : 'none';
    if (mode === 'algo' && !this.runner.has('Verify')) {
      throw new UsageError(`The flash algorithm '${this.algorithm.name}' has no Verify routine; use --verify crc or read`);
    }
    if ((mode === 'crc' || mode === 'read') && !this.#memoryMapped) {
      throw new UsageError(`--verify ${mode} needs memory-mapped flash; this flash is read through the algorithm: use --verify algo`);
    }
    return mode;
  }

  #checkAbort(session: Session): void {
    if (session.signal?.aborted) {
      throw new AbortedError('Flashing was cancelled; the target is halted and the algorithm uninitialised', { cause: session.signal.reason });
    }
  }

  /** Init for `fnc` (after UnInit of another function), for the step set in `session.step`. */
  async #init(fnc: number, session: Session): Promise<void> {
    if (session.fnc === fnc) return;
    const next = session.step;
    await this.#uninit(session);
    if (this.runner.has('Init')) {
      if (next) session.step = { ...next, operation: 'init' };
      await this.runner.callChecked('Init', [this.algorithm.geometry.start, this.#options.clock ?? 0, fnc]);
    }
    session.fnc = fnc;
    session.initFor = next;
    session.step = next;
  }

  async #uninit(session: Session): Promise<void> {
    if (session.fnc === undefined) return;
    const fnc = session.fnc;
    session.fnc = undefined;
    if (!this.runner.has('UnInit')) return;
    const done = session.initFor ?? { address: this.algorithm.geometry.start, length: 0 };
    session.step = { operation: 'uninit', address: done.address, length: done.length };
    await this.runner.callChecked('UnInit', [fnc]);
  }

  async #failed(err: unknown, session: Session): Promise<void> {
    nameStep(err, session.step);
    // UnInit still runs after a failed call or a cancellation, unless the core faulted (then it cannot run code) or the link is gone.
    if (!this.gdb.closed && !(err instanceof RspflashError && (err.code === 'RSPFLASH_ALGO_FAULT' || err.code === 'RSPFLASH_CONNECTION_CLOSED' || err.code === 'RSPFLASH_RSP_TIMEOUT'))) {
      await this.#uninit(session).catch((e: unknown) => this.#log(`UnInit after failure failed too: ${String(e)}`));
    }
    session.emit({ type: 'failed', error: err instanceof Error ? err : new Error(String(err)) });
  }

  #phase(session: Session, phase: FlashPhase, total: number, unit: 'bytes' | 'sectors') {
    const start = performance.now();
    let done = 0;
    session.emit({ type: 'phase-start', phase, total, unit });
    return {
      advance: (n: number) => {
        done += n;
        session.emit({ type: 'progress', phase, done, total, elapsedMs: Math.round(performance.now() - start) });
      },
      end: () => session.emit({ type: 'phase-end', phase, elapsedMs: Math.round(performance.now() - start) }),
    };
  }

  /** Sectors overlapping a range, as plan entries without data. */
  #sectorsIn(address: number, length: number): PlannedSector[] {
    const g = this.algorithm.geometry;
    const end = address + length;
    if (length <= 0 || address < g.start || end > g.start + g.size) {
      throw new UsageError(`Range ${hex32(address)}..${hex32(end - 1)} is not inside the flash ${hex32(g.start)}..${hex32(g.start + g.size - 1)}`);
    }
    const out: PlannedSector[] = [];
    let at = address;
    while (at < end) {
      const s = sectorAt(g, at)!;
      out.push({ ...s, ranges: [], data: new Uint8Array(0), keep: [], pages: [] });
      at = s.address + s.size;
    }
    return out;
  }

  /**
   * Which touched sectors already hold the image bytes: a checksum (MurmurHash3) of each
   * image-covered range computed on the target against the host's, or the
   * algorithm's Verify on the image data when the flash is not memory mapped.
   */
  async #unchanged(sectors: readonly PlannedSector[], mode: CompareMode, session: Session, wholeSectors: boolean): Promise<Set<string | number>> {
    if (mode === 'none') return new Set();
    if (mode === 'crc' && !this.#memoryMapped) {
      throw new UsageError("compare: 'crc' hashes the flash at its address, which this flash does not allow while the algorithm owns it: use 'algo'");
    }
    const useCrc = mode === 'crc' || (mode === 'auto' && this.#memoryMapped);
    if (!useCrc && !this.runner.has('Verify')) return new Set();
    // Without preserve the whole sector must end up as planned (image bytes, erased value elsewhere), so the
    // whole sector is compared; with preserve only the bytes the image covers matter.
    const ranges = wholeSectors
      ? sectors.map((s) => ({ sector: s, address: s.address, data: s.data }))
      : sectors.flatMap((s) => s.ranges.map((r) => ({ sector: s, address: s.address + r.offset, data: s.data.subarray(r.offset, r.offset + r.length) })));
    const totalBytes = ranges.reduce((n, r) => n + r.data.length, 0);
    const phase = this.#phase(session, 'compare', totalBytes, 'bytes');
    const differs = new Set<number>();
    if (useCrc) {
      // Coarse pass: one hash per block of adjacent ranges (up to COMPARE_BLOCK bytes), so an unchanged
      // image costs a handful of target calls instead of one per sector. Fine pass (one hash per
      // sector) only inside blocks that differ; when every one of many blocks differs (a first run),
      // every sector is simply taken as changed, which saves a pass that would find nothing to skip.
      const blocks = blocksOf(ranges);
      const blockHashes = await this.#hashRanges(
        blocks.map((b) => ({ address: b.address, length: b.length })),
        session,
      );
      const differing = blocks.filter((b, i) => blockHashes[i] !== murmur3(joinViews(b.ranges.map((r) => r.data))));
      phase.advance(differing.length === 0 ? totalBytes : 0);
      if (differing.length > 0) {
        const candidates = differing.flatMap((b) => b.ranges);
        if (differing.length === blocks.length && blocks.length >= SKIP_FINE_PASS_BLOCKS) {
          for (const r of candidates) differs.add(r.sector.address);
        } else {
          const hashes = await this.#hashRanges(candidates.map((r) => ({ address: r.address, length: r.data.length })), session);
          candidates.forEach((r, j) => {
            if (hashes[j] !== murmur3(r.data)) differs.add(r.sector.address);
          });
        }
        phase.advance(totalBytes);
      }
    } else {
      session.step = stepOver('compare', ranges);
      await this.#init(FNC_VERIFY, session);
      const verify = this.runner.entry('Verify');
      await this.#eachBuffer(
        ranges.map((r) => ({ address: r.address, data: r.data, sector: r.sector })),
        async (slot, items, buffer) => {
          session.step = stepOver('compare', items);
          const results = await this.runner.batch(
            slot,
            items.map((it) => ({ fn: 'Verify', entry: verify, args: [it.address, it.data.length, buffer.address + it.offset], expect: 0, collect: true })),
            { data: items.map((it) => it.data) },
          );
          items.forEach((it, j) => {
            if (results[j] !== ((it.address + it.data.length) >>> 0)) differs.add(it.item.sector.address);
          });
          phase.advance(items.reduce((n, it) => n + it.data.length, 0));
        },
        session,
      );
    }
    phase.end();
    return new Set(sectors.filter((s) => !differs.has(s.address)).map((s) => s.address));
  }

  /** Target-side hashes of ranges, one sequencer run per table-full, with the step named for errors. */
  async #hashRanges(ranges: readonly { address: number; length: number }[], session: Session): Promise<number[]> {
    const perRun = this.runner.layout.buffers[0]!.tableEntries;
    const out: number[] = [];
    for (let i = 0; i < ranges.length; i += perRun) {
      this.#checkAbort(session);
      const group = ranges.slice(i, i + perRun);
      session.step = stepOver('compare', group.map((r) => ({ address: r.address, size: r.length })));
      out.push(...(await this.runner.hash32Many(group)));
    }
    return out;
  }

  /** Reads the bytes of touched sectors that the image does not cover, to program them back after the erase. */
  async #keep(sectors: readonly PlannedSector[], session: Session): Promise<{ bytes: number; content: Map<number, Uint8Array> }> {
    const content = new Map<number, Uint8Array>();
    const total = sectors.reduce((n, s) => n + s.keep.reduce((m, k) => m + k.length, 0), 0);
    if (total === 0) return { bytes: 0, content };
    const phase = this.#phase(session, 'read', total, 'bytes');
    for (const sector of sectors) {
      if (sector.keep.length === 0) continue;
      this.#checkAbort(session);
      const data = new Uint8Array(sector.data); // never write into the caller's image
      for (const k of sector.keep) {
        session.step = { operation: 'read', address: sector.address + k.offset, length: k.length };
        const bytes = this.#memoryMapped
          ? await this.gdb.readMemory(sector.address + k.offset, k.length)
          : await this.#readWithAlgorithm(sector.address + k.offset, k.length, session);
        data.set(bytes, k.offset);
        phase.advance(k.length);
      }
      content.set(sector.address, data);
    }
    phase.end();
    return { bytes: total, content };
  }

  async #eraseChip(session: Session): Promise<void> {
    this.#checkAbort(session);
    const phase = this.#phase(session, 'erase', this.algorithm.geometry.size, 'bytes');
    session.step = { operation: 'erase', address: this.algorithm.geometry.start, length: this.algorithm.geometry.size };
    await this.#init(FNC_ERASE, session);
    await this.runner.callChecked('EraseChip', []);
    phase.advance(this.algorithm.geometry.size);
    phase.end();
  }

  /** Erases sectors in batches of runs of equal, adjacent sectors (EraseSector, or SEGGER's multi-sector Erase). */
  async #eraseSectors(sectors: readonly PlannedSector[], session: Session): Promise<void> {
    if (sectors.length === 0) return;
    const phase = this.#phase(session, 'erase', sectors.length, 'sectors');
    session.step = stepOver('erase', sectors);
    await this.#init(FNC_ERASE, session);
    const calls: BatchCall[] = [];
    const counts: number[] = [];
    const useMulti = !this.runner.has('EraseSector') && this.runner.has('Erase');
    for (let i = 0; i < sectors.length; ) {
      let j = i + 1;
      while (j < sectors.length && sectors[j]!.address === sectors[j - 1]!.address + sectors[j - 1]!.size && sectors[j]!.size === sectors[i]!.size && j - i < 0xffff) j++;
      const first = sectors[i]!;
      if (useMulti) {
        calls.push({ fn: 'Erase', entry: this.runner.entry('Erase'), args: [first.address, first.index, j - i], expect: 0 });
      } else {
        // EraseSector(adr) ignores r1, so r1 carries the stride for the sequencer.
        calls.push({ fn: 'EraseSector', entry: this.runner.entry('EraseSector'), args: [first.address, first.size], expect: 0, repeat: j - i, stride: true });
      }
      counts.push(j - i);
      i = j;
    }
    // Several runs per batch, but bounded so a cancellation or a timeout is noticed in reasonable time.
    const maxSectorsPerRun = 256;
    let batch: BatchCall[] = [];
    let batchSectors = 0;
    /** Flash range the batch erases, for the error if it fails. */
    let batchFrom = 0;
    let batchTo = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      this.#checkAbort(session);
      session.step = { operation: 'erase', address: batchFrom, length: batchTo - batchFrom };
      await this.runner.batch(0, batch);
      phase.advance(batchSectors);
      batch = [];
      batchSectors = 0;
    };
    for (let k = 0; k < calls.length; k++) {
      let call = calls[k]!;
      let count = counts[k]!;
      // Split long runs so that each batch stays within maxSectorsPerRun.
      while (count > 0) {
        const take = Math.min(count, maxSectorsPerRun - batchSectors);
        const part: BatchCall =
          call.fn === 'Erase'
            ? { ...call, args: [call.args[0]!, call.args[1]!, take] }
            : { ...call, repeat: take };
        const size = call.fn === 'Erase' ? this.#sectorSizeAt(call.args[0]!) : call.args[1]!;
        if (batch.length === 0) batchFrom = call.args[0]!;
        batchTo = call.args[0]! + take * size;
        batch.push(part);
        batchSectors += take;
        count -= take;
        call = call.fn === 'Erase' ? { ...call, args: [call.args[0]! + take * size, call.args[1]! + take, count] } : { ...call, args: [call.args[0]! + take * size, size] };
        if (batchSectors >= maxSectorsPerRun || batch.length >= this.runner.layout.buffers[0]!.tableEntries) await flush();
      }
    }
    await flush();
    phase.end();
  }

  #sectorSizeAt(address: number): number {
    return sectorAt(this.algorithm.geometry, address)!.size;
  }

  /** The pages to program, merged into runs of adjacent pages: what goes into the transfer buffers. */
  #chunks(sectors: readonly PlannedSector[], kept: { content: Map<number, Uint8Array> }): Chunk[] {
    const pageSize = this.algorithm.geometry.pageSize;
    const chunks: Chunk[] = [];
    for (const sector of sectors) {
      const data = kept.content.get(sector.address) ?? sector.data;
      let runStart = -1;
      let runEnd = -1;
      const flush = () => {
        if (runStart >= 0) chunks.push({ address: sector.address + runStart, data: data.subarray(runStart, runEnd) });
        runStart = -1;
      };
      for (const page of sector.pages) {
        if (runStart >= 0 && page === runEnd) {
          runEnd += pageSize;
          continue;
        }
        flush();
        runStart = page;
        runEnd = page + pageSize;
      }
      flush();
    }
    return chunks;
  }

  /**
   * Feeds chunks into transfer buffers (splitting chunks larger than a buffer)
   * and calls `run` once per buffer-full with the items placed in it.
   */
  async #eachBuffer<T extends { address: number; data: Uint8Array }>(
    items: readonly T[],
    run: (slot: number, placed: { item: T; address: number; data: Uint8Array; offset: number }[], buffer: { address: number; size: number }) => Promise<void>,
    session: Session,
    callsPerItem = 1,
  ): Promise<void> {
    const buffer = this.runner.buffer(0);
    // Each placed item becomes `callsPerItem` table entries (ProgramPage run + Verify run when verifying).
    const maxEntries = Math.max(1, Math.floor(this.runner.layout.buffers[0]!.tableEntries / callsPerItem));
    let placed: { item: T; address: number; data: Uint8Array; offset: number }[] = [];
    let used = 0;
    const flush = async () => {
      if (placed.length === 0) return;
      this.#checkAbort(session);
      await run(0, placed, buffer);
      placed = [];
      used = 0;
    };
    for (const item of items) {
      let offset = 0;
      while (offset < item.data.length) {
        if (used === buffer.size || placed.length === maxEntries) await flush();
        const n = Math.min(item.data.length - offset, buffer.size - used);
        placed.push({ item, address: item.address + offset, data: item.data.subarray(offset, offset + n), offset: used });
        used += n;
        offset += n;
      }
    }
    await flush();
  }

  /** Programs the chunks; with `verify`, the algorithm's Verify checks each run right after, on the data already in RAM. */
  async #programChunks(chunks: readonly Chunk[], verify: boolean, session: Session): Promise<void> {
    if (chunks.length === 0) return;
    const pageSize = this.algorithm.geometry.pageSize;
    const total = chunks.reduce((n, c) => n + c.data.length, 0);
    const phase = this.#phase(session, 'program', total, 'bytes');
    session.step = stepOver('program', chunks);
    await this.#init(FNC_PROGRAM, session);
    const multi = this.runner.has('Program') ? this.runner.entry('Program') : undefined;
    const programPage = this.runner.entry('ProgramPage');
    const verifyEntry = verify ? this.runner.entry('Verify') : undefined;
    await this.#eachBuffer(
      chunks,
      async (slot, placed, buffer) => {
        session.step = stepOver('program', placed);
        const calls: BatchCall[] = [];
        for (const p of placed) {
          const at = buffer.address + p.offset;
          if (multi !== undefined) calls.push({ fn: 'Program', entry: multi, args: [p.address, p.data.length, at], expect: 0 });
          else calls.push({ fn: 'ProgramPage', entry: programPage, args: [p.address, pageSize, at], expect: 0, repeat: p.data.length / pageSize, stride: true });
        }
        if (verifyEntry !== undefined) {
          for (const p of placed) {
            const at = buffer.address + p.offset;
            calls.push({ fn: 'Verify', entry: verifyEntry, args: [p.address, p.data.length, at], expect: (p.address + p.data.length) >>> 0 });
          }
        }
        try {
          await this.runner.batch(slot, calls, { data: placed.map((p) => p.data) });
        } catch (err) {
          if (err instanceof RspflashError && err.code === 'RSPFLASH_ALGO_FAILED' && (err as { fn?: string }).fn === 'Verify') {
            const result = (err as unknown as { result: number }).result;
            throw new VerifyError(`Verify after programming failed: flash differs from the image at ${hex32(result)}`, result, { cause: err });
          }
          throw err;
        }
        phase.advance(placed.reduce((n, p) => n + p.data.length, 0));
      },
      session,
      verifyEntry === undefined ? 1 : 2,
    );
    phase.end();
  }

  /** Verify by CRC computed on the target (one value per chunk) or by reading everything back. */
  async #verifyChunks(chunks: readonly Chunk[], mode: 'crc' | 'read' | 'algo', session: Session): Promise<void> {
    if (mode === 'algo') return this.#verifyWithAlgorithm(chunks, session);
    const total = chunks.reduce((n, c) => n + c.data.length, 0);
    const phase = this.#phase(session, 'verify', total, 'bytes');
    if (mode === 'crc') {
      const perRun = this.runner.layout.buffers[0]!.tableEntries;
      for (let i = 0; i < chunks.length; i += perRun) {
        this.#checkAbort(session);
        const group = chunks.slice(i, i + perRun);
        session.step = stepOver('verify', group);
        const crcs = await this.runner.crc32Many(group.map((c) => ({ address: c.address, length: c.data.length })));
        for (let j = 0; j < group.length; j++) {
          const chunk = group[j]!;
          if (crcs[j] !== crc32(chunk.data)) {
            const back = await this.gdb.readMemory(chunk.address, chunk.data.length);
            const at = chunk.address + Math.max(0, back.findIndex((b, k) => b !== chunk.data[k]));
            throw new VerifyError(`Flash differs from the image at ${hex32(at)} (CRC-32 of ${hex32(chunk.address)}..${hex32(chunk.address + chunk.data.length - 1)} does not match)`, at);
          }
        }
        phase.advance(group.reduce((n, c) => n + c.data.length, 0));
      }
    } else {
      const step = 64 * 1024;
      for (const chunk of chunks) {
        for (let off = 0; off < chunk.data.length; off += step) {
          this.#checkAbort(session);
          const n = Math.min(step, chunk.data.length - off);
          session.step = { operation: 'verify', address: chunk.address + off, length: n };
          const back = await this.gdb.readMemory(chunk.address + off, n);
          const bad = back.findIndex((b, k) => b !== chunk.data[off + k]);
          if (bad >= 0) throw new VerifyError(`Flash differs from the image at ${hex32(chunk.address + off + bad)}`, chunk.address + off + bad);
          phase.advance(n);
        }
      }
    }
    phase.end();
  }

  async #verifyWithAlgorithm(chunks: readonly Chunk[], session: Session): Promise<void> {
    const total = chunks.reduce((n, c) => n + c.data.length, 0);
    const phase = this.#phase(session, 'verify', total, 'bytes');
    session.step = stepOver('verify', chunks);
    await this.#init(FNC_VERIFY, session);
    const verify = this.runner.entry('Verify');
    await this.#eachBuffer(
      chunks,
      async (slot, placed, buffer) => {
        session.step = stepOver('verify', placed);
        try {
          await this.runner.batch(
            slot,
            placed.map((p) => ({ fn: 'Verify', entry: verify, args: [p.address, p.data.length, buffer.address + p.offset], expect: (p.address + p.data.length) >>> 0 })),
            { data: placed.map((p) => p.data) },
          );
        } catch (err) {
          if (err instanceof RspflashError && err.code === 'RSPFLASH_ALGO_FAILED') {
            const result = (err as unknown as { result: number }).result;
            throw new VerifyError(`Flash differs from the image at ${hex32(result)}`, result, { cause: err });
          }
          throw err;
        }
        phase.advance(placed.reduce((n, p) => n + p.data.length, 0));
      },
      session,
    );
    phase.end();
  }
}

/**
 * The plan for programming `image` with `algorithm`: pure, no target needed
 * (what `rspflash plan` prints). `readable` says whether bytes to keep can be
 * read back (memory-mapped flash, or a Read routine); preserve defaults to it.
 */
export function planProgram(
  image: Image,
  algorithm: FlashAlgorithm,
  options: Pick<ProgramOptions, 'preserve' | 'chipErase'> & { readable?: boolean } = {},
): FlashPlan {
  const hasChip = algorithm.functions.EraseChip !== undefined;
  if (options.chipErase === 'always' && !hasChip) {
    throw new UsageError(`The flash algorithm '${algorithm.name}' has no EraseChip routine`);
  }
  const readable = options.readable ?? true;
  const preserve = options.preserve ?? readable;
  if (preserve && !readable) {
    throw new UsageError(
      `Cannot keep the bytes of partly covered sectors: the flash is not memory mapped and '${algorithm.name}' has no Read routine`,
      { hint: 'Pass --no-preserve (preserve: false) to let the rest of each touched sector be erased.' },
    );
  }
  const t = algorithm.timeouts;
  return planFlash(image, algorithm.geometry, {
    preserve,
    chipErase: options.chipErase ?? 'auto',
    // Worst-case timeouts as the estimate, the only figures an FLM gives; chip erase only if the algorithm has one.
    estimate: hasChip ? { sectorEraseMs: t.eraseSector, chipEraseMs: t.eraseChip } : { sectorEraseMs: t.eraseSector },
  });
}

/** Largest block the coarse compare hashes in one call. */
const COMPARE_BLOCK = 256 * 1024;
/** With at least this many blocks all differing, the per-sector pass is skipped (4 MiB and up). */
const SKIP_FINE_PASS_BLOCKS = 16;

/** Groups address-adjacent ranges into blocks of at most {@link COMPARE_BLOCK} bytes (a range never split). */
function blocksOf<R extends { address: number; data: Uint8Array }>(ranges: readonly R[]): { address: number; length: number; ranges: R[] }[] {
  const blocks: { address: number; length: number; ranges: R[] }[] = [];
  for (const r of ranges) {
    const last = blocks.at(-1);
    if (last && last.address + last.length === r.address && last.length + r.data.length <= COMPARE_BLOCK) {
      last.length += r.data.length;
      last.ranges.push(r);
    } else {
      blocks.push({ address: r.address, length: r.data.length, ranges: [r] });
    }
  }
  return blocks;
}

/**
 * The parts as one array: a view when they lie back to back in one buffer (the sectors of one image
 * segment do), else a copy. Hashing 32 MiB block by block then allocates nothing.
 */
function joinViews(parts: readonly Uint8Array[]): Uint8Array {
  const first = parts[0];
  if (!first) return new Uint8Array(0);
  let end = first.byteOffset + first.byteLength;
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.buffer !== first.buffer || p.byteOffset !== end) return concat(parts);
    end += p.byteLength;
  }
  return new Uint8Array(first.buffer, first.byteOffset, end - first.byteOffset);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Image bytes of `[address, address + length)` with the erased value in holes (re-exported for callers that verify by hand). */
export function expectedBytes(image: Image, address: number, length: number, erasedValue: number): Uint8Array {
  return imageBytes(image, address, length, erasedValue).data;
}
