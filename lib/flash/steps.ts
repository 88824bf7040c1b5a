/**
 * The flash job as data: image × geometry × options (× what the compare found)
 * → the complete, ordered list of {@link Step}s the executor runs.
 *
 * Every decision the executor would otherwise make on its own — which ranges
 * to compare, which bytes to keep, chip or sector erase (and why), which pages
 * travel in which transfer and in which target run, how the result is checked
 * — is made here, printed by `rspflash plan`, and tested without a target.
 * The executor ({@link Flasher}) only runs steps and reports.
 *
 * A job is planned twice when it compares first: {@link planJob} without a
 * compare outcome gives the compare step and the worst case after it (every
 * compared sector differs); once the compare has run, {@link planJob} with the
 * outcome gives the steps that remain, and {@link JobPlan.notes} says what
 * changed ("chip erase declined: 8120 of 8192 sectors unchanged").
 *
 * Erase and program share target runs ({@link WriteStep}): a sector is erased
 * in the same run that programs it back, so a fault between erase and program
 * can only hit the sectors of one run — and the bytes kept from them are
 * journalled on the host before that run starts.
 * @module
 */
import { UsageError } from '../errors.js';
import { sectorCount, type AlgorithmFunction, type FlashAlgorithm, type FlashGeometry } from '../algo/algorithm.js';
import { planRamLayout, type LayoutOptions, type RamLayout, type RamRegion } from '../algo/layout.js';
import type { Image } from '../image/image.js';
import { formatRange, mergeRanges, type MemoryRange } from '../range.js';
import { compareMethod, verifyMethod, type CheckMethod, type CompareMode, type VerifyMode } from './checks.js';
import { planFlash, type ChipEraseMode, type EraseDecision, type FlashPlan, type PlannedSector } from './plan.js';

/** Most repeats one batch-table entry holds (16 bits in the sequencer's entry). */
const MAX_REPEAT = 0xffff;
/**
 * Sectors erased in one target run at most: bounds how long a run takes (and so
 * how late a cancellation or a hang is noticed) and how many sectors one fault
 * can leave erased.
 */
export const MAX_SECTORS_PER_RUN = 32;
/**
 * Sectors the first write run erases at most: until one run has completed the
 * executor knows nothing of the device's speed and must allow every call its
 * worst case, so the first run is kept small; later runs get timeouts from
 * what it measured ({@link AlgorithmCalls.runTimeout}).
 */
export const FIRST_RUN_SECTORS = 1;

/** What the target offers a job: geometry, routines, transfer capacity. */
export interface JobTarget {
  /** The flash device's address range, sectors and page size. */
  readonly geometry: FlashGeometry;
  /** Name of the algorithm, for messages. */
  readonly algorithm: string;
  /** Routines the algorithm has. */
  readonly routines: ReadonlySet<AlgorithmFunction>;
  /** The flash reads at its address while the algorithm owns it. */
  readonly memoryMapped: boolean;
  /** What one target run can take. */
  readonly transfer: {
    /** Data bytes: the size of the transfer buffer. */
    readonly bufferSize: number;
    /** Batch-table entries (one per routine call) of the on-target sequencer. */
    readonly tableEntries: number;
  };
  /** Typical erase times for the chip-erase decision (`chipEraseMs` only when the algorithm has EraseChip). */
  readonly estimate?: {
    /** Time to erase one sector, in ms. */
    readonly sectorEraseMs?: number;
    /** Time to erase the whole chip, in ms. */
    readonly chipEraseMs?: number;
  };
}

/**
 * The {@link JobTarget} of an algorithm loaded with a RAM layout (from
 * `planRamLayout`, or `flasher.runner.layout`). Pure: `rspflash plan` uses it
 * without a target.
 */
export function jobTarget(algorithm: FlashAlgorithm, layout: RamLayout, memoryMapped: boolean): JobTarget {
  const buffer = layout.buffers[0];
  if (buffer === undefined) throw new UsageError('The RAM layout has no transfer buffer');
  const routines = new Set(Object.keys(algorithm.functions) as AlgorithmFunction[]);
  const t = algorithm.timeouts;
  return {
    geometry: algorithm.geometry,
    algorithm: algorithm.name,
    routines,
    memoryMapped,
    transfer: { bufferSize: buffer.size, tableEntries: buffer.tableEntries },
    // Worst-case timeouts are the only figures an FLM gives.
    estimate: routines.has('EraseChip') ? { sectorEraseMs: t.eraseSector, chipEraseMs: t.eraseChip } : { sectorEraseMs: t.eraseSector },
  };
}

/** Options of a program job (the same names as {@link ProgramOptions}). */
export interface JobOptions {
  /**
   * Keep the bytes of touched sectors that the image does not cover. Default:
   * true when they can be read (memory mapped, or a Read routine).
   */
  readonly preserve?: boolean;
  /** Chip or sector erase; default `'auto'`. */
  readonly chipErase?: ChipEraseMode;
  /** Leave sectors that already hold the image alone; default true. */
  readonly skipUnchanged?: boolean;
  /** How skip-unchanged compares; default `'auto'`. */
  readonly compare?: CompareMode;
  /** How the result is checked; default `'auto'`. */
  readonly verify?: VerifyMode;
}

/**
 * What the compare found, by sector address: the touched sectors that already
 * hold what the plan wants (left alone), and those that differ but hold only
 * the erased value (programmed without an erase).
 */
export interface CompareOutcome {
  /** Addresses of touched sectors that already hold what the plan wants: left alone. */
  readonly unchanged: ReadonlySet<number>;
  /** Addresses of sectors that differ but hold only the erased value: programmed without an erase. */
  readonly blank?: ReadonlySet<number>;
}

/** A range to compare, with the sector it decides about. */
export interface CompareRange extends MemoryRange {
  /** Address of the sector the result decides about. */
  readonly sector: number;
}

/**
 * Compare flash with the image; sectors that match are left alone. Sectors
 * that differ are then checked for being blank (all erased value), which
 * spares their erase. Where the compare sends data (`algo`), the cheaper
 * blank check runs first (`blankFirst`): on a fresh board it finds every
 * sector blank and no image byte crosses the link.
 */
export interface CompareStep {
  /** Discriminant. */
  readonly kind: 'compare';
  /** `hash`: an on-target hash of the flash against the host's; `algo`: the algorithm's Verify against image bytes sent to RAM. */
  readonly method: 'hash' | 'algo';
  /** What is compared: the image bytes of each touched sector. */
  readonly ranges: readonly CompareRange[];
  /** The touched sectors, whole: what the blank check reads. */
  readonly sectors: readonly MemoryRange[];
  /** Run the blank check on every touched sector before the compare (set with `algo`, which sends data). */
  readonly blankFirst: boolean;
  /** Bytes compared (the sum of `ranges`). */
  readonly bytes: number;
}

/** Read back the bytes of rewritten sectors that the image does not cover, before anything is erased. */
export interface KeepStep {
  /** Discriminant. */
  readonly kind: 'keep';
  /** `memory`: read at the flash address; `algo`: through the algorithm's Read routine. */
  readonly method: 'memory' | 'algo';
  /** The bytes to keep: parts of rewritten sectors that the image does not cover. */
  readonly ranges: readonly MemoryRange[];
  /** Bytes read (the sum of `ranges`). */
  readonly bytes: number;
}

/** Erase the whole device in one run of its own. */
export interface EraseChipStep {
  /** Discriminant. */
  readonly kind: 'erase-chip';
  /** Why the chip is erased whole, in words (e.g. `chip erase requested`). */
  readonly reason: string;
}

/** A run of equal, adjacent sectors. */
export interface SectorSpan {
  /** Address of the first sector. */
  readonly address: number;
  /** Size of each sector, in bytes. */
  readonly size: number;
  /** Number of sectors. */
  readonly count: number;
  /** Index of the first sector in the device. */
  readonly index: number;
}

/** Flash bytes programmed from the transfer buffer at `offset`. */
export interface BufferPiece extends MemoryRange {
  /** Offset in the transfer buffer where the bytes for `address` start. */
  readonly offset: number;
}

/**
 * One target run: erase some sectors, then program pieces from the transfer
 * buffer, then (with `verify`) check them with the algorithm's Verify on the
 * bytes already in RAM — erase, program and verify each between their own
 * Init (fnc 1, 2, 3) and UnInit, all in one run of the on-target sequencer.
 */
export interface WriteStep {
  /** Discriminant. */
  readonly kind: 'write';
  /** Sectors erased in this run, before anything is programmed (empty after a chip erase or for blank sectors). */
  readonly erase: readonly SectorSpan[];
  /** Flash ranges programmed, each from its place in the transfer buffer. */
  readonly program: readonly BufferPiece[];
  /** Check each programmed piece with the algorithm's Verify in the same run. */
  readonly verify: boolean;
  /** Bytes sent into the transfer buffer. */
  readonly bytes: number;
  /** Sectors whose last byte is programmed in this run: complete once it succeeds. */
  readonly completes: readonly MemoryRange[];
  /** Batch-table entries the run uses (Init/UnInit included). */
  readonly entries: number;
}

/** Check that flash holds what the job wrote. */
export interface VerifyStep {
  /** Discriminant. */
  readonly kind: 'verify';
  /** How the ranges are checked. */
  readonly method: CheckMethod;
  /** The flash ranges checked. */
  readonly ranges: readonly MemoryRange[];
  /** `image`: the planned content (image and kept bytes); `erased`: pages left at the erased value. */
  readonly expect: 'image' | 'erased';
  /** Bytes checked (the sum of `ranges`). */
  readonly bytes: number;
}

/** One step of a job. */
export type Step = CompareStep | KeepStep | EraseChipStep | WriteStep | VerifyStep;

/** A planned job: the per-sector layout, the ordered steps, and the decisions in words. */
export interface JobPlan {
  /** What each touched sector must hold (see {@link planFlash}). */
  readonly layout: FlashPlan;
  /** The erase decision after the compare outcome (when one was given). */
  readonly erase: EraseDecision;
  /** The steps, in the order they run. */
  readonly steps: readonly Step[];
  /** Touched sectors the compare found unchanged (addresses), left alone. */
  readonly unchanged: readonly number[];
  /** Bytes outside the image that will end up erased (partly covered sectors without `preserve`). */
  readonly lost: readonly MemoryRange[];
  /** How the programmed result is checked (`undefined`: not at all). */
  readonly verify: CheckMethod | undefined;
  /** Decisions taken on the user's behalf, one sentence each, for `-v` and `rspflash plan`. */
  readonly notes: readonly string[];
  /** Counts of the job, for reports and estimates. */
  readonly totals: JobTotals;
}

/** Counts of a {@link JobPlan}. */
export interface JobTotals {
  /** Bytes the image holds. */
  readonly imageBytes: number;
  /** Sectors the image touches. */
  readonly sectorsTouched: number;
  /** Touched sectors the compare found unchanged (0 before the compare). */
  readonly sectorsUnchanged: number;
  /** Sectors erased one by one (0 with a chip erase). */
  readonly sectorsToErase: number;
  /** Sectors the compare found blank: programmed without an erase. */
  readonly sectorsBlank: number;
  /** The device is erased whole with EraseChip. */
  readonly chipErase: boolean;
  /** Pages written with ProgramPage. */
  readonly pagesToProgram: number;
  /** Bytes written with ProgramPage: `pagesToProgram` whole pages. */
  readonly bytesToProgram: number;
  /** Bytes read back before the erase and programmed again (preserve). */
  readonly bytesToKeep: number;
  /** Target runs of write steps. */
  readonly writeRuns: number;
}

/**
 * Plans a program job. Pure. Without `outcome` and with skip-unchanged on,
 * the first step is the compare and the rest is the worst case; with
 * `outcome`, the steps after the compare.
 *
 * @throws {@link OutOfFlashError} for image bytes outside the flash, and
 *   {@link UsageError} for options the target cannot honour.
 */
export function planJob(image: Image, target: JobTarget, options: JobOptions = {}, outcome?: CompareOutcome): JobPlan {
  const { geometry, routines } = target;
  const hasChip = routines.has('EraseChip');
  if (options.chipErase === 'always' && !hasChip) {
    throw new UsageError(`The flash algorithm '${target.algorithm}' has no EraseChip routine`);
  }
  const readable = target.memoryMapped || routines.has('Read');
  const preserve = options.preserve ?? readable;
  if (preserve && !readable) {
    throw new UsageError(
      `Cannot keep the bytes of partly covered sectors: the flash is not memory mapped and '${target.algorithm}' has no Read routine`,
      { hint: 'Pass preserve: false to let the rest of each touched sector be erased.' },
    );
  }
  const caps = { memoryMapped: target.memoryMapped, hasVerify: routines.has('Verify'), algorithm: target.algorithm };
  const layout = planFlash(image, geometry, { preserve, chipErase: options.chipErase ?? 'auto', estimate: target.estimate ?? {} });
  const verify = verifyMethod(options.verify ?? 'auto', caps, true);
  // Only an explicit 'always' skips the compare: erasing the whole chip would throw away sectors that already hold the image.
  const compare =
    (options.skipUnchanged ?? true) && options.chipErase !== 'always' && layout.sectors.length > 0
      ? compareMethod(options.compare ?? 'auto', caps)
      : undefined;

  const notes: string[] = [];
  const steps: Step[] = [];
  const unchanged = outcome === undefined ? new Set<number>() : new Set(layout.sectors.filter((s) => outcome.unchanged.has(s.address)).map((s) => s.address));
  if (compare !== undefined && outcome === undefined) {
    const ranges = compareRanges(layout.sectors, !preserve);
    const sectors = layout.sectors.map((s) => ({ address: s.address, length: s.size }));
    steps.push({ kind: 'compare', method: compare, ranges, sectors, blankFirst: compare === 'algo', bytes: sum(ranges) });
  }
  if (compare === undefined && (options.skipUnchanged ?? true) && layout.sectors.length > 0 && options.chipErase !== 'always') {
    notes.push(`no compare: the flash is not memory mapped and '${target.algorithm}' has no Verify routine, so every touched sector is rewritten`);
  }

  const blank = new Set(layout.sectors.filter((s) => !unchanged.has(s.address) && outcome?.blank?.has(s.address)).map((s) => s.address));
  let erase = layout.erase;
  if (erase.kind === 'chip' && (unchanged.size > 0 || blank.size > 0)) {
    const counts = [unchanged.size > 0 ? `${unchanged.size} unchanged` : '', blank.size > 0 ? `${blank.size} already blank` : ''].filter(Boolean);
    const [firstCount, ...more] = counts.join(', ').split(' ');
    erase = { kind: 'sectors', reason: `chip erase declined: ${firstCount} of ${layout.sectors.length} touched sectors ${more.join(' ')}` };
    notes.push(erase.reason);
  }
  if (outcome !== undefined) notes.push(`compare: ${unchanged.size} of ${layout.sectors.length} touched sectors already hold the image`);
  if (blank.size > 0) notes.push(`${plural(blank.size, 'sector')} already blank: programmed without erasing`);
  // A blank sector keeps nothing but the erased value: no read-back, and pages holding only kept bytes need no programming.
  const rewrite = layout.sectors.filter((s) => !unchanged.has(s.address)).map((s) => (blank.has(s.address) ? asBlank(s, geometry) : s));

  const keepRanges = rewrite.flatMap((s) => s.keep.map((k) => ({ address: s.address + k.offset, length: k.length })));
  if (keepRanges.length > 0) steps.push({ kind: 'keep', method: target.memoryMapped ? 'memory' : 'algo', ranges: mergeRanges(keepRanges), bytes: sum(keepRanges) });

  const lost = preserve ? [] : mergeRanges(rewrite.filter((s) => !blank.has(s.address)).flatMap((s) => gaps(s)));
  if (lost.length > 0) {
    notes.push(`preserve is off: ${plural(sum(lost), 'byte')} outside the image in partly covered sectors will be erased (${lost.slice(0, 4).map(formatRange).join(', ')}${lost.length > 4 ? ', …' : ''})`);
  }

  const chip = erase.kind === 'chip';
  if (chip) steps.push({ kind: 'erase-chip', reason: erase.reason });
  const inRunVerify = verify === 'algo';
  const writes = packWrites(rewrite, target, { erase: (s) => !chip && !blank.has(s.address), verify: inRunVerify });
  steps.push(...writes);

  // Check what the runs wrote: with Verify in the runs only the pages they did not program (left at the erased value);
  // otherwise every rewritten sector (hash, read) or every programmed range.
  if (verify !== undefined && rewrite.length > 0) {
    const programmed = mergeRanges(writes.flatMap((w) => w.program));
    const erasedPages = subtract(rewrite.map((s) => ({ address: s.address, length: s.size })), programmed);
    if (inRunVerify) {
      if (erasedPages.length > 0) {
        const method: CheckMethod = target.memoryMapped ? 'hash' : 'algo';
        steps.push({ kind: 'verify', method, ranges: erasedPages, expect: 'erased', bytes: sum(erasedPages) });
      }
    } else {
      const ranges = mergeRanges(rewrite.map((s) => ({ address: s.address, length: s.size })));
      steps.push({ kind: 'verify', method: verify, ranges, expect: 'image', bytes: sum(ranges) });
    }
  }

  const pagesToProgram = writes.reduce((n, w) => n + w.program.reduce((m, p) => m + p.length / geometry.pageSize, 0), 0);
  const totals: JobTotals = {
    imageBytes: layout.totals.imageBytes,
    sectorsTouched: layout.sectors.length,
    sectorsUnchanged: unchanged.size,
    sectorsToErase: chip ? 0 : rewrite.length - blank.size,
    sectorsBlank: blank.size,
    chipErase: chip,
    pagesToProgram,
    bytesToProgram: pagesToProgram * geometry.pageSize,
    bytesToKeep: sum(keepRanges),
    writeRuns: writes.length,
  };
  return { layout, erase, steps, unchanged: [...unchanged], lost, verify, notes, totals };
}

/**
 * Plans the job `program` would start with, from the algorithm and the RAM it
 * would get, without a target (what `rspflash plan` prints): the RAM layout
 * gives the transfer capacity, then {@link planJob}.
 *
 * @example
 * ```ts
 * const job = planProgramJob(image, algorithm, { ram: board.ram, memoryMapped: board.memoryMapped });
 * console.log(formatSteps(job));
 * ```
 */
export function planProgramJob(
  image: Image,
  algorithm: FlashAlgorithm,
  target: { ram: RamRegion; memoryMapped?: boolean; layout?: LayoutOptions },
  options: JobOptions = {},
): JobPlan {
  // One transfer buffer, as the Flasher asks for.
  const layout = planRamLayout(algorithm, target.ram, { buffers: 1, ...target.layout });
  return planJob(image, jobTarget(algorithm, layout, target.memoryMapped ?? true), options);
}

/**
 * Plans an erase job: the sectors overlapping `range` (widened to whole
 * sectors), or the whole device (`'chip'`: EraseChip when the algorithm has
 * it, else every sector).
 */
export function planErase(
  range: MemoryRange | 'chip',
  target: JobTarget,
): {
  /** The steps to run: one erase-chip step, or write steps that only erase. */
  steps: Step[];
  /** What ends up erased: `range` widened to whole sectors (or the whole device). */
  erased: MemoryRange;
  /** Sectors erased. */
  sectors: number;
} {
  const g = target.geometry;
  if (range === 'chip' && target.routines.has('EraseChip')) {
    return { steps: [{ kind: 'erase-chip', reason: 'chip erase requested' }], erased: { address: g.start, length: g.size }, sectors: sectorCount(g) };
  }
  const r = range === 'chip' ? { address: g.start, length: g.size } : range;
  checkInsideFlash(r, g);
  const sectors = sectorsIn(g, r);
  const fake: PlannedSector[] = sectors.map((s) => ({ ...s, ranges: [], data: new Uint8Array(0), keep: [], pages: [] }));
  const steps = packWrites(fake, target, { erase: () => true, verify: false });
  const first = sectors[0]!;
  const last = sectors.at(-1)!;
  return { steps, erased: { address: first.address, length: last.address + last.size - first.address }, sectors: sectors.length };
}

/** Plans a verify job: check that the flash holds `image`, with the cheapest method that reads the flash (or `mode`). */
export function planVerify(
  image: Image,
  target: JobTarget,
  mode: VerifyMode = 'auto',
): {
  /** One verify step over the image's segments. */
  steps: Step[];
  /** How the image is checked (`mode` resolved against what the target offers). */
  method: CheckMethod;
} {
  const caps = { memoryMapped: target.memoryMapped, hasVerify: target.routines.has('Verify'), algorithm: target.algorithm };
  // 'none' cannot verify: auto's choice then, and an error if there is none.
  const method = verifyMethod(mode === 'none' ? 'auto' : mode, caps, false);
  if (method === undefined) {
    throw new UsageError(`Cannot verify: the flash is not memory mapped and '${target.algorithm}' has no Verify routine`);
  }
  planFlash(image, target.geometry, { preserve: false, chipErase: 'never' }); // refuses bytes outside the flash
  const ranges = image.segments.map((s) => ({ address: s.address, length: s.data.length }));
  return { steps: [{ kind: 'verify', method, ranges, expect: 'image', bytes: sum(ranges) }], method };
}

/** Throws {@link UsageError} unless `range` is non-empty and inside the flash. */
export function checkInsideFlash(range: MemoryRange, g: FlashGeometry): void {
  if (!(range.length > 0) || range.address < g.start || range.address + range.length > g.start + g.size) {
    throw new UsageError(
      range.length > 0
        ? `Range ${formatRange(range)} is not inside the flash ${formatRange({ address: g.start, length: g.size })}`
        : `A range needs a length above 0 (got ${range.length})`,
    );
  }
}

/** Sectors overlapping a range, in order. */
function sectorsIn(g: FlashGeometry, range: MemoryRange): { address: number; size: number; index: number }[] {
  const out: { address: number; size: number; index: number }[] = [];
  const end = range.address + range.length;
  let index = 0;
  for (const run of g.sectors) {
    for (let i = 0; i < run.count; i++, index++) {
      const address = run.address + i * run.size;
      if (address + run.size > range.address && address < end) out.push({ address, size: run.size, index });
    }
  }
  return out;
}

/** Compare ranges: with preserve only the bytes the image covers matter; without, the whole sector must match. */
function compareRanges(sectors: readonly PlannedSector[], wholeSectors: boolean): CompareRange[] {
  if (wholeSectors) return sectors.map((s) => ({ address: s.address, length: s.size, sector: s.address }));
  return sectors.flatMap((s) => s.ranges.map((r) => ({ address: s.address + r.offset, length: r.length, sector: s.address })));
}

/** Parts of a sector the image does not cover. */
function gaps(sector: PlannedSector): MemoryRange[] {
  return subtract([{ address: sector.address, length: sector.size }], sector.ranges.map((r) => ({ address: sector.address + r.offset, length: r.length })));
}

/** `from` minus `cut` (both ascending, merged). */
function subtract(from: readonly MemoryRange[], cut: readonly MemoryRange[]): MemoryRange[] {
  const out: MemoryRange[] = [];
  let j = 0;
  for (const r of from) {
    let at = r.address;
    const end = r.address + r.length;
    while (j < cut.length && cut[j]!.address + cut[j]!.length <= at) j++;
    for (let k = j; k < cut.length && cut[k]!.address < end; k++) {
      const c = cut[k]!;
      if (c.address > at) out.push({ address: at, length: c.address - at });
      at = Math.max(at, c.address + c.length);
    }
    if (at < end) out.push({ address: at, length: end - at });
  }
  return out;
}

interface RunBuilder {
  erase: { address: number; size: number; count: number; index: number }[];
  program: { address: number; length: number; offset: number }[];
  bytes: number;
  erasedSectors: number;
  completes: MemoryRange[];
}

/**
 * Packs sectors into target runs: each run erases some sectors and programs
 * their pages from one buffer-full, within the batch table's entries. A
 * sector's erase goes into the run that programs its first page; a sector
 * larger than the buffer spans several runs.
 */
function packWrites(sectors: readonly PlannedSector[], target: JobTarget, how: { erase: (sector: PlannedSector) => boolean; verify: boolean }): WriteStep[] {
  const { bufferSize, tableEntries } = target.transfer;
  const pageSize = target.geometry.pageSize;
  const fullCapacity = Math.floor(bufferSize / pageSize) * pageSize;
  // The first run also programs at most one sector's worth: it is the run that measures the device.
  const firstCapacity = Math.max(pageSize, Math.min(fullCapacity, sectors[0]?.size ?? fullCapacity));
  let capacity = firstCapacity;
  if (fullCapacity === 0) throw new UsageError(`The transfer buffer (${bufferSize} bytes) cannot hold one ${pageSize}-byte page`);
  const init = target.routines.has('Init') ? 1 : 0;
  const uninit = target.routines.has('UnInit') ? 1 : 0;
  const multiProgram = target.routines.has('Program');
  // ProgramPage repeats once per page: a piece holds at most MAX_REPEAT pages (SEGGER's Program takes any length).
  const maxPiece = multiProgram ? Infinity : MAX_REPEAT * pageSize;
  // Program and Verify each between their own Init (fnc 2, fnc 3) and UnInit: one entry per piece in each section.
  const sectionEntries = (pieces: number) => (pieces > 0 ? (init + uninit + pieces) * (how.verify ? 2 : 1) : 0);
  const out: WriteStep[] = [];
  let run: RunBuilder = { erase: [], program: [], bytes: 0, erasedSectors: 0, completes: [] };

  const entriesOf = (r: RunBuilder) => (r.erase.length > 0 ? init + uninit + r.erase.length : 0) + sectionEntries(r.program.length);
  /** Whether `length` bytes at `address` extend the run's last piece (the one rule for counting and for adding). */
  const joins = (address: number, length: number) => {
    const last = run.program.at(-1);
    return last !== undefined && last.address + last.length === address && last.offset + last.length === run.bytes && last.length + length <= maxPiece;
  };
  const flush = () => {
    if (run.erase.length === 0 && run.program.length === 0) return;
    out.push({ kind: 'write', erase: run.erase, program: run.program, verify: how.verify && run.program.length > 0, bytes: run.bytes, completes: run.completes, entries: entriesOf(run) });
    run = { erase: [], program: [], bytes: 0, erasedSectors: 0, completes: [] };
    capacity = fullCapacity;
  };
  /** Entries the run would use after adding an erase of `sector` and `length` bytes at `address` (either optional). */
  const entriesWith = (sector: { address: number; size: number } | undefined, piece: { address: number; length: number } | undefined) => {
    let eraseRuns = run.erase.length;
    if (sector !== undefined) {
      const last = run.erase.at(-1);
      const extends_ = last !== undefined && last.address + last.size * last.count === sector.address && last.size === sector.size && last.count < MAX_REPEAT;
      if (!extends_) eraseRuns++;
    }
    const pieces = run.program.length + (piece !== undefined && !joins(piece.address, piece.length) ? 1 : 0);
    return (eraseRuns > 0 ? init + uninit + eraseRuns : 0) + sectionEntries(pieces);
  };
  const addErase = (s: PlannedSector) => {
    const last = run.erase.at(-1);
    if (last !== undefined && last.address + last.size * last.count === s.address && last.size === s.size && last.count < MAX_REPEAT) last.count++;
    else run.erase.push({ address: s.address, size: s.size, count: 1, index: s.index });
    run.erasedSectors++;
  };
  const addPiece = (address: number, length: number) => {
    const last = run.program.at(-1);
    if (last !== undefined && joins(address, length)) {
      last.length += length;
    } else {
      run.program.push({ address, length, offset: run.bytes });
    }
    run.bytes += length;
  };

  for (const sector of sectors) {
    const pieces = pageRuns(sector, pageSize);
    const firstPiece = pieces[0];
    if (how.erase(sector)) {
      // Erase and first page together, or a new run for both.
      const firstBytes = firstPiece === undefined ? 0 : Math.min(firstPiece.length, capacity, maxPiece);
      const first = firstPiece === undefined ? undefined : { address: firstPiece.address, length: firstBytes };
      if (
        run.erasedSectors >= (out.length === 0 ? FIRST_RUN_SECTORS : MAX_SECTORS_PER_RUN) ||
        run.bytes + firstBytes > capacity ||
        entriesWith(sector, first) > tableEntries
      ) {
        flush();
      }
      addErase(sector);
    }
    for (const piece of pieces) {
      let at = piece.address;
      const end = piece.address + piece.length;
      while (at < end) {
        let take = Math.min(end - at, capacity - run.bytes, maxPiece);
        if (take <= 0 || entriesWith(undefined, { address: at, length: take }) > tableEntries) {
          flush();
          take = Math.min(end - at, capacity - run.bytes, maxPiece);
        }
        // A piece that would join the last one may only grow it up to maxPiece.
        const last = run.program.at(-1);
        if (last !== undefined && last.address + last.length === at && last.offset + last.length === run.bytes && last.length + take > maxPiece) {
          take = Math.max(0, maxPiece - last.length) || take;
        }
        addPiece(at, take);
        at += take;
      }
    }
    run.completes.push({ address: sector.address, length: sector.size });
  }
  flush();
  if (out.some((w) => w.entries > tableEntries)) {
    throw new UsageError(`The batch table (${tableEntries} entries) is too small for one erase and one program call; give the algorithm more RAM`);
  }
  return out;
}

/** A sector found blank: nothing to keep (its kept bytes are the erased value), only pages with image bytes to program. */
function asBlank(sector: PlannedSector, geometry: FlashGeometry): PlannedSector {
  const erased = geometry.erasedValue;
  const pages = sector.pages.filter((page) => {
    const end = page + geometry.pageSize;
    for (let i = page; i < end; i++) if (sector.data[i] !== erased) return true;
    return false;
  });
  return { ...sector, keep: [], pages };
}

/** The sector's pages to program, merged into runs of adjacent pages (absolute addresses). */
function pageRuns(sector: PlannedSector, pageSize: number): MemoryRange[] {
  const out: { address: number; length: number }[] = [];
  for (const page of sector.pages) {
    const last = out.at(-1);
    const address = sector.address + page;
    if (last !== undefined && last.address + last.length === address) last.length += pageSize;
    else out.push({ address, length: pageSize });
  }
  return out;
}

function sum(ranges: readonly MemoryRange[]): number {
  return ranges.reduce((n, r) => n + r.length, 0);
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
