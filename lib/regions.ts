/**
 * Several flash regions in one job: an image that spans several flash
 * devices (Alif's MRAM at 0x80000000 and OSPI at 0xC0000000, each with its own
 * algorithm) is split by region, planned as one job per region, and run over
 * one connection — each region's algorithm loaded into its own RAM, used, and
 * restored before the next one is loaded (through {@link withFlasher} on the
 * borrowed client).
 *
 * Splitting and planning are pure ({@link splitImageByRegion},
 * {@link planRegions}, {@link formatRegionPlan}); {@link programRegions} and
 * {@link verifyRegions} run them on a target.
 * @module
 */
import type { GdbClient, GdbConnectOptions, GdbEndpoint } from './gdb/client.js';
import { OutOfFlashError, UsageError } from './errors.js';
import type { FlashAlgorithm } from './algo/algorithm.js';
import type { RamRegion } from './algo/layout.js';
import { createImage, imageSize, type Image, type Segment } from './image/image.js';
import { formatRange, mergeRanges, type MemoryRange } from './range.js';
import { planProgramJob, type JobOptions, type JobPlan, type JobTotals } from './flash/steps.js';
import { formatSteps, stepsToJSON, type StepJSON } from './flash/steps-format.js';
import type { FlashEvent, FlashReport } from './flash/progress.js';
import type { Flasher } from './flash/flasher.js';
import type { VerifyMode } from './flash/checks.js';
import { journalKey, withConnection, withFlasher, type AfterSession } from './session.js';

/** One flash region of a job: the algorithm that programs it and the RAM it runs in. */
export interface FlashRegionSpec {
  /** The algorithm; its geometry says which addresses the region covers. */
  readonly algorithm: FlashAlgorithm;
  /** RAM lent to this algorithm: `{ address, length }` (or `{ start, size }`). */
  readonly ram: MemoryRange | RamRegion;
  /** Whether this flash reads at its address while its algorithm runs. Default true. */
  readonly memoryMapped?: boolean;
  /** What to call the region in messages (a PDSC `<memory>` name such as `MRAM`). */
  readonly name?: string;
}

/** A region as events, plans and reports name it. */
export interface RegionInfo {
  /** Position among the regions given (0-based, in address order). */
  readonly index: number;
  /** The flash range its algorithm covers. */
  readonly flash: MemoryRange;
  /** The algorithm's name. */
  readonly algorithm: string;
  /** From {@link FlashRegionSpec.name}, when given. */
  readonly name?: string;
}

/** The part of an image that falls in one region. */
export interface RegionPart {
  /** Which region. */
  readonly region: RegionInfo;
  /** The region as given: algorithm, RAM, name. */
  readonly spec: FlashRegionSpec;
  /** The image bytes inside the region (may be empty). */
  readonly image: Image;
}

/** `{ start, size }` of a {@link FlashRegionSpec.ram}, whichever form was given. */
function ramRegion(ram: MemoryRange | RamRegion): RamRegion {
  return 'address' in ram ? { start: ram.address, size: ram.length } : ram;
}

/** `0xc0000000..0xc1ffffff nor-sim (OSPI)`: a region in a message. */
export function describeRegion(region: RegionInfo): string {
  return `${formatRange(region.flash)} ${region.algorithm}${region.name ? ` (${region.name})` : ''}`;
}

/** The regions in address order with their {@link RegionInfo}; overlapping regions are refused. */
function orderedRegions(regions: readonly FlashRegionSpec[]): { spec: FlashRegionSpec; region: RegionInfo }[] {
  if (regions.length === 0) throw new UsageError('No flash region: give at least one `algorithm`');
  const sorted = [...regions].sort((a, b) => a.algorithm.geometry.start - b.algorithm.geometry.start);
  const out = sorted.map((spec, index) => {
    const g = spec.algorithm.geometry;
    const region: RegionInfo = { index, flash: { address: g.start, length: g.size }, algorithm: spec.algorithm.name, ...(spec.name ? { name: spec.name } : {}) };
    return { spec, region };
  });
  for (let i = 1; i < out.length; i++) {
    const a = out[i - 1]!.region;
    const b = out[i]!.region;
    // Two algorithms for the same bytes: which one is right is the caller's decision, not ours.
    if (b.flash.address < a.flash.address + a.flash.length) {
      throw new UsageError(`Flash regions overlap: ${describeRegion(a)} and ${describeRegion(b)}; give one algorithm per flash range`);
    }
  }
  return out;
}

/**
 * Splits `image` by flash region. Pure. Every image byte must fall in one
 * region: bytes outside all of them are refused before anything is touched,
 * naming the ranges and the gap between regions they fall in.
 *
 * @throws {@link OutOfFlashError} for image bytes outside every region (its
 * `address`/`length` span the outside bytes).
 * @throws {@link UsageError} for no regions, or regions that overlap.
 *
 * @example
 * ```ts
 * const parts = splitImageByRegion(image, [{ algorithm: mram, ram: ramA }, { algorithm: ospi, ram: ramB }]);
 * for (const p of parts) console.log(describeRegion(p.region), imageSize(p.image));
 * ```
 */
export function splitImageByRegion(image: Image, regions: readonly FlashRegionSpec[]): RegionPart[] {
  const ordered = orderedRegions(regions);
  const outside = outsideRanges(image.segments, ordered.map((o) => o.region.flash));
  if (outside.length > 0) {
    const flashes = ordered.map((o) => o.region);
    const first = outside[0]!;
    const last = outside.at(-1)!;
    const lines = outside.slice(0, 4).map((r) => `${formatRange(r)} (${r.length} bytes, ${whereOutside(r, flashes)})`);
    throw new OutOfFlashError(
      `The image has bytes outside every flash region: ${lines.join('; ')}${outside.length > 4 ? `; … ${outside.length - 4} more range(s)` : ''}. ` +
        `Flash regions: ${flashes.map(describeRegion).join(', ')}`,
      first.address,
      last.address + last.length - first.address,
      { hint: 'Give an `algorithm` for each flash the image writes, or leave those bytes out of the image.' },
    );
  }
  return ordered.map(({ spec, region }) => ({ region, spec, image: clip(image, region.flash) }));
}

/** The parts of the image's segments not covered by any of `flashes`. */
function outsideRanges(segments: readonly Segment[], flashes: readonly MemoryRange[]): MemoryRange[] {
  const out: MemoryRange[] = [];
  for (const s of segments) {
    let at = s.address;
    const end = s.address + s.data.length;
    for (const f of flashes) {
      const fEnd = f.address + f.length;
      if (fEnd <= at || f.address >= end) continue;
      if (f.address > at) out.push({ address: at, length: f.address - at });
      at = Math.max(at, fEnd);
    }
    if (at < end) out.push({ address: at, length: end - at });
  }
  return mergeRanges(out);
}

/** `between region A and region B`, `below …`, `above …`: where an outside range lies. */
function whereOutside(range: MemoryRange, regions: readonly RegionInfo[]): string {
  const below = regions.filter((r) => r.flash.address + r.flash.length <= range.address).at(-1);
  const above = regions.find((r) => r.flash.address >= range.address + range.length);
  const name = (r: RegionInfo) => `${formatRange(r.flash)}${r.name ? ` ${r.name}` : ''}`;
  if (below && above) return `in the gap between ${name(below)} and ${name(above)}`;
  if (above) return `below ${name(above)}`;
  if (below) return `above ${name(below)}`;
  return 'not in any region';
}

/** The bytes of `image` inside `flash`. */
function clip(image: Image, flash: MemoryRange): Image {
  const end = flash.address + flash.length;
  const pieces: Segment[] = [];
  for (const s of image.segments) {
    const from = Math.max(s.address, flash.address);
    const to = Math.min(s.address + s.data.length, end);
    if (from < to) pieces.push({ address: from, data: s.data.subarray(from - s.address, to - s.address) });
  }
  return createImage(pieces);
}

// ---------------------------------------------------------------------------
// Planning (pure).

/** One region of a {@link RegionsPlan}: its part of the image and its job. */
export interface RegionJob {
  /** Which region. */
  readonly region: RegionInfo;
  /** Bytes of the image in this region. */
  readonly imageBytes: number;
  /** The region's job (`undefined`: the image has no bytes here, nothing to do). */
  readonly job: JobPlan | undefined;
}

/** A program job over several regions: one {@link JobPlan} per region that has image bytes, and the sums. */
export interface RegionsPlan {
  /** Every region, in address order, with its job. */
  readonly regions: readonly RegionJob[];
  /** The regions' totals added up. */
  readonly totals: JobTotals;
  /** Each region's notes, prefixed with the region. */
  readonly notes: readonly string[];
  /** Bytes outside the image that end up erased, over all regions. */
  readonly lost: readonly MemoryRange[];
}

/**
 * Plans programming `image` over `regions` without a target (what
 * `rspflash plan` prints): the image split by region, then
 * {@link planProgramJob} for each region with image bytes. Pure.
 *
 * @throws as {@link splitImageByRegion} and {@link planProgramJob}.
 */
export function planRegions(image: Image, regions: readonly FlashRegionSpec[], options: JobOptions = {}): RegionsPlan {
  const parts = splitImageByRegion(image, regions);
  const jobs = parts.map((part): RegionJob => {
    const bytes = imageSize(part.image);
    const job =
      bytes === 0
        ? undefined
        : planProgramJob(part.image, part.spec.algorithm, { ram: ramRegion(part.spec.ram), memoryMapped: part.spec.memoryMapped ?? true }, options);
    return { region: part.region, imageBytes: bytes, job };
  });
  const planned = jobs.filter((j): j is RegionJob & { job: JobPlan } => j.job !== undefined);
  return {
    regions: jobs,
    totals: sumTotals(planned.map((j) => j.job.totals)),
    notes: planned.flatMap((j) => j.job.notes.map((n) => `${formatRange(j.region.flash)}: ${n}`)),
    lost: planned.flatMap((j) => j.job.lost),
  };
}

function sumTotals(all: readonly JobTotals[]): JobTotals {
  const sum = (key: keyof Omit<JobTotals, 'chipErase'>) => all.reduce((n, t) => n + t[key], 0);
  return {
    imageBytes: sum('imageBytes'),
    sectorsTouched: sum('sectorsTouched'),
    sectorsUnchanged: sum('sectorsUnchanged'),
    sectorsToErase: sum('sectorsToErase'),
    sectorsBlank: sum('sectorsBlank'),
    chipErase: all.some((t) => t.chipErase),
    pagesToProgram: sum('pagesToProgram'),
    bytesToProgram: sum('bytesToProgram'),
    bytesToKeep: sum('bytesToKeep'),
    writeRuns: sum('writeRuns'),
  };
}

/**
 * A {@link RegionsPlan} as text: per region a header line, then its steps
 * ({@link formatSteps}) indented.
 *
 * @example
 * ```text
 * region 1/2  0x80000000..0x8057ffff nor-sim-mram (MRAM): 4 KiB of the image
 *   compare   0x80000000..0x80000fff  1 range(s), 4 KiB by on-target hash
 *   …
 * ```
 */
export function formatRegionPlan(plan: RegionsPlan, options: { maxRuns?: number } = {}): string {
  const count = plan.regions.length;
  return plan.regions
    .map((r) => {
      const head = `region ${r.region.index + 1}/${count}  ${describeRegion(r.region)}: `;
      if (r.job === undefined) return `${head}no bytes of the image, nothing to do`;
      const steps = formatSteps(r.job, options)
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n');
      return `${head}${r.imageBytes} bytes of the image\n${steps}`;
    })
    .join('\n');
}

/** A {@link RegionsPlan} for JSON output: per region its flash, algorithm, steps, notes and totals. */
export function regionPlanToJSON(plan: RegionsPlan): {
  /** Every region, in address order. */
  regions: {
    /** Which region. */
    region: RegionInfo;
    /** Bytes of the image in the region. */
    imageBytes: number;
    /** The region's steps (none when the image has no bytes there). */
    steps: StepJSON[];
    /** The region's decisions, one sentence each. */
    notes: readonly string[];
    /** Bytes outside the image that end up erased. */
    lost: readonly MemoryRange[];
    /** The region's totals, when it has a job. */
    totals?: JobTotals;
  }[];
  /** The regions' totals added up. */
  totals: JobTotals;
} {
  return {
    regions: plan.regions.map((r) => ({
      region: r.region,
      imageBytes: r.imageBytes,
      steps: r.job ? stepsToJSON(r.job) : [],
      notes: r.job?.notes ?? [],
      lost: r.job?.lost ?? [],
      ...(r.job ? { totals: r.job.totals } : {}),
    })),
    totals: plan.totals,
  };
}

// ---------------------------------------------------------------------------
// Running on a target.

/**
 * Progress of a job over several regions: `region-start` before each region
 * with image bytes (its algorithm is loaded next), then that region's
 * {@link FlashEvent}s in their documented order, each tagged with `region`.
 */
export type RegionEvent =
  | {
      /** A region's job begins (its algorithm is loaded next). */
      type: 'region-start';
      /** Which region. */
      region: RegionInfo;
      /** How many regions the job works on. */
      count: number;
      /** Bytes of the image in this region. */
      imageBytes: number;
    }
  | (FlashEvent & {
      /** The region the event belongs to. */
      region: RegionInfo;
    });

/** What a job over several regions did: each region's report and the sums. */
export interface RegionsReport {
  /** Each region worked on, in address order. */
  readonly regions: readonly {
    /** Which region. */
    readonly region: RegionInfo;
    /** What was done there. */
    readonly report: FlashReport;
  }[];
  /** The regions' reports added up (`verify`: the method used, or `unchanged` if every region was). */
  readonly totals: FlashReport;
}

/** Options shared by {@link programRegions} and {@link verifyRegions}. */
export interface RegionsSessionOptions {
  /** The GDB server, or a connected {@link GdbClient} (borrowed: left open, target halted). */
  readonly gdb: string | GdbEndpoint | GdbClient;
  /** The flash regions: each algorithm with its RAM. */
  readonly regions: readonly FlashRegionSpec[];
  /** The image, over one or more regions. */
  readonly image: Image;
  /** Cancels between target calls; the region being worked on is restored and the connection closed. */
  readonly signal?: AbortSignal;
  /** Progress, tagged with the region. */
  readonly onProgress?: (event: RegionEvent) => void;
  /** Reset and halt the target once, before the first region. Default false. */
  readonly reset?: boolean;
  /** Leave the target halted (default), running, or reset and running, after the last region. */
  readonly after?: AfterSession;
  /** Options for connecting (request timeout). */
  readonly connect?: GdbConnectOptions;
  /** Lines worth telling a user. */
  readonly onInfo?: (line: string) => void;
  /** The recovery journal's folder, or `false` for none (each region keeps its own journal). */
  readonly journal?: false | {
    /** Folder of the journal files; default {@link defaultJournalDir}. */
    dir?: string;
  };
  /** Called when a region's algorithm is loaded (e.g. to show its RAM layout, or what a forced quit leaves). */
  readonly onLoaded?: (flasher: Flasher, region: RegionInfo) => void;
}

/** Options of {@link programRegions}. */
export interface ProgramRegionsOptions extends RegionsSessionOptions {
  /** Compare, keep, erase and verify choices, the same for every region. */
  readonly options?: JobOptions;
}

/** Options of {@link verifyRegions}. */
export interface VerifyRegionsOptions extends RegionsSessionOptions {
  /** How each region is checked; default `'auto'`. */
  readonly verify?: VerifyMode;
}

/**
 * Programs an image over several flash regions in one session: one
 * connection; for each region with image bytes, in address order, its
 * algorithm is loaded into its RAM, the region's part is programmed
 * ({@link Flasher.program}: compare, keep, erase, write, verify) and the RAM
 * and registers are restored before the next region. Nothing is touched if
 * the image has bytes outside every region.
 *
 * A failure stops the job: regions before it are done, the failing one's
 * error says what it left at risk, later ones are untouched.
 *
 * @example
 * ```ts
 * const report = await programRegions({
 *   gdb: 'localhost:2331',
 *   regions: [{ algorithm: mram, ram: { address: 0x0, length: 0x20000 } }, { algorithm: ospi, ram: { address: 0x0, length: 0x40000 }, memoryMapped: false }],
 *   image,
 *   onProgress: (e) => e.type === 'region-start' && console.log(`${formatRange(e.region.flash)}: one of ${e.count} regions`),
 * });
 * console.log(report.totals.bytesProgrammed);
 * ```
 */
export async function programRegions(options: ProgramRegionsOptions): Promise<RegionsReport> {
  const parts = splitImageByRegion(options.image, options.regions);
  // Planned per region before connecting: options a region cannot honour are refused before anything is touched.
  planRegions(options.image, options.regions, options.options ?? {});
  return runRegions(options, parts, (flasher, part, onProgress) =>
    flasher.program(part.image, { ...options.options, ...(options.signal ? { signal: options.signal } : {}), onProgress }),
  );
}

/**
 * Checks that the flash regions hold `image`, region by region over one
 * connection ({@link Flasher.verify} with each region's algorithm). Throws
 * the first region's {@link VerifyError}; resolves with a report otherwise.
 */
export async function verifyRegions(options: VerifyRegionsOptions): Promise<RegionsReport> {
  const parts = splitImageByRegion(options.image, options.regions);
  return runRegions(options, parts, (flasher, part, onProgress) =>
    flasher.verify(part.image, { verify: options.verify ?? 'auto', ...(options.signal ? { signal: options.signal } : {}), onProgress }),
  );
}

async function runRegions(
  options: RegionsSessionOptions,
  parts: readonly RegionPart[],
  job: (flasher: Flasher, part: RegionPart, onProgress: (event: FlashEvent) => void) => Promise<FlashReport>,
): Promise<RegionsReport> {
  const info = options.onInfo ?? (() => undefined);
  const work = parts.filter((p) => imageSize(p.image) > 0);
  // One connection (reset once before the first region, `after` once after the last), each region loading its own
  // algorithm on the borrowed client; the journal key names the server as a single-region run does, so either kind of
  // run finds the other's journal.
  return withConnection(options, async (gdb, where) => {
    const reports: { region: RegionInfo; report: FlashReport }[] = [];
    for (const part of work) {
      const { region, spec } = part;
      options.onProgress?.({ type: 'region-start', region, count: work.length, imageBytes: imageSize(part.image) });
      const report = await withFlasher(
        {
          gdb,
          algorithm: spec.algorithm,
          ram: spec.ram,
          memoryMapped: spec.memoryMapped ?? true,
          after: 'halt',
          ...(options.signal ? { signal: options.signal } : {}),
          // The connection line was said once above; the rest (restore failures) is passed on.
          onInfo: (line) => {
            if (!line.startsWith('Connected to')) info(line);
          },
          journal: options.journal === false ? false : { ...options.journal, key: journalKey(where, spec.algorithm) },
        },
        async (flasher) => {
          options.onLoaded?.(flasher, region);
          return job(flasher, part, (event) => options.onProgress?.({ ...event, region }));
        },
      );
      reports.push({ region, report });
    }
    return { regions: reports, totals: sumReports(reports) };
  });
}

type NumericReportKey = { [K in keyof FlashReport]-?: FlashReport[K] extends number ? K : never }[keyof FlashReport];

const NUMERIC_KEYS: readonly NumericReportKey[] = [
  'imageBytes',
  'sectorsTouched',
  'sectorsSkipped',
  'sectorsErased',
  'sectorsBlank',
  'pagesProgrammed',
  'bytesProgrammed',
  'bytesKept',
  'bytesRecovered',
  'durationMs',
  'bytesSent',
  'roundTrips',
  'targetRuns',
];

/** The regions' reports added up into one {@link FlashReport}. */
export function sumReports(reports: readonly { region: RegionInfo; report: FlashReport }[]): FlashReport {
  const total = Object.fromEntries(NUMERIC_KEYS.map((k) => [k, reports.reduce((n, r) => n + (r.report[k] ?? 0), 0)])) as Pick<FlashReport, NumericReportKey>;
  const methods = reports.map((r) => r.report.verify);
  // 'unchanged' only when no region wrote anything; else the method that checked what was written.
  const verify = methods.find((m) => m !== 'unchanged' && m !== 'none') ?? (methods.includes('none') ? 'none' : methods.length > 0 ? 'unchanged' : 'none');
  return {
    ...total,
    chipErase: reports.some((r) => r.report.chipErase),
    verify,
    notes: reports.flatMap((r) => r.report.notes.map((n) => `${formatRange(r.region.flash)}: ${n}`)),
  };
}
