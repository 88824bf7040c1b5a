/**
 * Renders a {@link FlashPlan} for people (`--dry-run`: {@link formatPlan}) and
 * for programs (`--json`: {@link planToJSON}). Pure; no Uint8Arrays leave here.
 * @module
 */
import { hex32 } from '../errors.js';
import type { ByteRange, EraseKind, FlashPlan, PlanTotals, PlannedSector } from './plan.js';

/** Options of {@link formatPlan}. */
export interface FormatPlanOptions {
  /**
   * Most table rows to print (default {@link DEFAULT_MAX_ROWS}); the rest are
   * summed up in one line. Runs of equal sectors are one row, so this only
   * bites for images with many holes.
   */
  readonly maxRows?: number;
}

/** Rows {@link formatPlan} prints before summing up the rest. */
export const DEFAULT_MAX_ROWS = 40;

/**
 * What happens to a sector, as printed and in {@link SectorJSON.action}:
 *
 * - `erase+program`: erased, then some of its pages are programmed.
 * - `erase`: erased only; every byte the image puts there is the erased value
 *   and nothing is kept, so no page needs programming.
 * - `untouched`: not in the image, left as it is (sector erase).
 * - `wiped`: not in the image, but erased by the chip erase (only with
 *   `preserve: false`).
 */
export type SectorAction = 'erase+program' | 'erase' | 'untouched' | 'wiped';

/** One row of the table: a run of adjacent sectors of one size with one action. */
interface Row {
  readonly address: number;
  count: number;
  readonly sectorSize: number;
  readonly action: SectorAction;
  readonly keeps: boolean;
  programBytes: number;
  keepBytes: number;
}

/**
 * A table of the plan, one row per run of adjacent sectors of the same size and
 * action, covering the whole device (untouched stretches included, so a user
 * sees what is left alone), then the erase decision and the totals. `keep` is
 * what is read back before the erase and programmed again; `program` counts
 * whole pages, kept bytes included.
 *
 * @example
 * ```text
 * flash   0xc0000000–0xc1ffffff  32 MiB, 8192 sectors, 256 B pages, erased value 0xff
 * image   0xc0000000–0xc000270f  9.8 KiB in 1 segment
 *
 *   0xc0000000–0xc0001fff     2 × 4 KiB  erase+program  program 8 KiB
 *   0xc0002000–0xc0002fff     1 × 4 KiB  erase+program  program 4 KiB, keep 2.2 KiB
 *   0xc0003000–0xc1ffffff  8189 × 4 KiB  untouched
 *
 * erase   sector erase: the image touches 3 of 8192 sectors; chip erase would also erase the other 8189
 * totals  erase 3 sectors (12 KiB), program 48 pages (12 KiB), read back 2.2 KiB
 * ```
 */
export function formatPlan(plan: FlashPlan, options: FormatPlanOptions = {}): string {
  const g = plan.geometry;
  const maxRows = Math.max(1, Math.floor(options.maxRows ?? DEFAULT_MAX_ROWS));
  const lines: string[] = [];

  lines.push(
    `flash   ${span(g.start, g.size)}  ${formatBytes(g.size)}, ${plural(totalSectors(plan), 'sector')}, ` +
      `${formatBytes(g.pageSize)} pages, erased value ${hex8(g.erasedValue)}`,
  );
  const image = imageSpan(plan.sectors);
  lines.push(
    image === undefined
      ? 'image   empty'
      : `image   ${span(image.start, image.end - image.start)}  ${formatBytes(plan.totals.imageBytes)} in ${plural(plan.totals.segments, 'segment')}`,
  );
  lines.push('');

  const rows = rowsOf(plan);
  const shown = rows.slice(0, maxRows);
  const cells = shown.map((row) => [
    span(row.address, row.count * row.sectorSize),
    `${row.count} × ${formatBytes(row.sectorSize)}`,
    row.action,
    detail(row),
  ]);
  const width = (column: number) => Math.max(0, ...cells.map((c) => c[column]!.length));
  const w1 = width(1);
  const w2 = width(2);
  for (const [range, count, action, more] of cells) {
    lines.push(`  ${range}  ${count!.padStart(w1)}  ${more ? action!.padEnd(w2) + '  ' + more : action}`);
  }
  if (rows.length > shown.length) {
    const rest = rows.slice(shown.length);
    const sectors = rest.reduce((n, r) => n + r.count, 0);
    const last = rest.at(-1)!;
    lines.push(
      `  … ${plural(rest.length, 'more row')} (${plural(sectors, 'sector')}) up to ${hex32(last.address + last.count * last.sectorSize - 1)}`,
    );
  }

  lines.push('');
  lines.push(`erase   ${plan.erase.reason}`);
  lines.push(`totals  ${summary(plan.erase.kind, plan.totals)}`);
  return lines.join('\n');
}

function detail(row: Row): string {
  switch (row.action) {
    case 'erase+program':
      return `program ${formatBytes(row.programBytes)}` + (row.keeps ? `, keep ${formatBytes(row.keepBytes)}` : '');
    case 'erase':
      return 'image bytes here are all the erased value';
    case 'untouched':
    case 'wiped':
      return '';
  }
}

function summary(kind: EraseKind, t: PlanTotals): string {
  const parts: string[] = [];
  if (kind === 'chip') parts.push(`erase chip (${formatBytes(t.bytesToErase)})`);
  else if (kind === 'sectors') parts.push(`erase ${plural(t.sectorsToErase, 'sector')} (${formatBytes(t.bytesToErase)})`);
  else parts.push('erase nothing');
  parts.push(`program ${plural(t.pagesToProgram, 'page')} (${formatBytes(t.bytesToProgram)})`);
  if (t.bytesToKeep > 0) parts.push(`read back ${formatBytes(t.bytesToKeep)}`);
  return parts.join(', ');
}

/** Builds the table rows: touched sectors from the plan, untouched stretches in between. */
function rowsOf(plan: FlashPlan): Row[] {
  const g = plan.geometry;
  const rows: Row[] = [];
  const untouched: SectorAction = plan.erase.kind === 'chip' ? 'wiped' : 'untouched';
  let cursor = g.start;
  for (const sector of plan.sectors) {
    if (sector.address > cursor) addUntouched(rows, plan, cursor, sector.address, untouched);
    const keepBytes = sumLengths(sector.keep);
    const row: Row = {
      address: sector.address,
      count: 1,
      sectorSize: sector.size,
      action: sector.pages.length > 0 ? 'erase+program' : 'erase',
      keeps: keepBytes > 0,
      programBytes: sector.pages.length * g.pageSize,
      keepBytes,
    };
    const last = rows.at(-1);
    if (
      last !== undefined &&
      last.action === row.action &&
      last.sectorSize === row.sectorSize &&
      last.keeps === row.keeps &&
      last.address + last.count * last.sectorSize === row.address
    ) {
      last.count++;
      last.programBytes += row.programBytes;
      last.keepBytes += row.keepBytes;
    } else {
      rows.push(row);
    }
    cursor = sector.address + sector.size;
  }
  addUntouched(rows, plan, cursor, g.start + g.size, untouched);
  return rows;
}

/** Adds rows for `[from, to)` (sector-aligned), one per sector run it crosses. */
function addUntouched(rows: Row[], plan: FlashPlan, from: number, to: number, action: SectorAction): void {
  for (const run of plan.geometry.sectors) {
    const runEnd = run.address + run.size * run.count;
    const start = Math.max(from, run.address);
    const end = Math.min(to, runEnd);
    if (start >= end) continue;
    rows.push({ address: start, count: (end - start) / run.size, sectorSize: run.size, action, keeps: false, programBytes: 0, keepBytes: 0 });
  }
}

function totalSectors(plan: FlashPlan): number {
  return plan.geometry.sectors.reduce((n, run) => n + run.count, 0);
}

function imageSpan(sectors: readonly PlannedSector[]): { start: number; end: number } | undefined {
  const first = sectors[0];
  const last = sectors.at(-1);
  const firstRange = first?.ranges[0];
  const lastRange = last?.ranges.at(-1);
  if (first === undefined || last === undefined || firstRange === undefined || lastRange === undefined) return undefined;
  return { start: first.address + firstRange.offset, end: last.address + lastRange.offset + lastRange.length };
}

function sumLengths(ranges: readonly ByteRange[]): number {
  let n = 0;
  for (const r of ranges) n += r.length;
  return n;
}

/** `[address, address + length)` printed inclusive, like a memory map. */
function span(address: number, length: number): string {
  return `${hex32(address)}–${hex32(address + length - 1)}`;
}

function hex8(value: number): string {
  return '0x' + value.toString(16).padStart(2, '0');
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

const KiB = 1024;
const MiB = 1024 * 1024;

/**
 * A byte count for people: exact in B, KiB or MiB when it divides, else one
 * decimal (`1.5 KiB`). Exported for the CLI's summaries.
 *
 * @example
 * ```ts
 * formatBytes(256);       // '256 B'
 * formatBytes(1 << 20);   // '1 MiB'
 * formatBytes(10_000);    // '9.8 KiB'
 * ```
 */
export function formatBytes(bytes: number): string {
  if (bytes < KiB) return `${bytes} B`;
  if (bytes >= MiB) return bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${(bytes / MiB).toFixed(1)} MiB`;
  return bytes % KiB === 0 ? `${bytes / KiB} KiB` : `${(bytes / KiB).toFixed(1)} KiB`;
}

// ---------------------------------------------------------------------------
// JSON

/** An address as a number and as the `0x` + 8 hex digits rspflash prints. */
export interface AddressJSON {
  /** The address as a number. */
  readonly address: number;
  /** The same address as `0x` + 8 hex digits. */
  readonly addressHex: string;
}

/** A run of `count` consecutive pages starting `offset` bytes into a sector. */
export interface PageRunJSON {
  /** Offset of the first page from the sector's address, in bytes. */
  readonly offset: number;
  /** Number of consecutive pages. */
  readonly count: number;
}

/** One touched sector in {@link PlanJSON}. */
export interface SectorJSON extends AddressJSON {
  /** Index of the sector in the device (0 = first). */
  readonly index: number;
  /** Size of the sector, in bytes. */
  readonly size: number;
  /** `erase+program` or `erase` (see {@link SectorAction}). */
  readonly action: Extract<SectorAction, 'erase+program' | 'erase'>;
  /** Image-covered byte ranges, offsets from `address`. */
  readonly ranges: readonly ByteRange[];
  /** Ranges read back before the erase and programmed again, offsets from `address`. */
  readonly keep: readonly ByteRange[];
  /** Pages to program as runs of consecutive pages (compact for large images). */
  readonly pages: readonly PageRunJSON[];
  /** Number of pages to program in this sector. */
  readonly pageCount: number;
}

/**
 * The JSON form of a {@link FlashPlan} (`rspflash … --dry-run --json`): every
 * address as a number and as a hex string, ranges inclusive of `last`, no
 * sector data.
 */
export interface PlanJSON {
  /** The flash device. */
  readonly flash: {
    /** First address of the device. */
    readonly start: number;
    /** `start` as `0x` + 8 hex digits. */
    readonly startHex: string;
    /** Last address of the device (inclusive, so a device ending at 4 GiB prints right). */
    readonly last: number;
    /** `last` as `0x` + 8 hex digits. */
    readonly lastHex: string;
    /** Size of the device, in bytes. */
    readonly size: number;
    /** Bytes ProgramPage writes at once. */
    readonly pageSize: number;
    /** The value of an erased byte (usually `0xff`). */
    readonly erasedValue: number;
    /** Sectors in the device. */
    readonly sectorCount: number;
    /** The geometry's sector runs: `count` sectors of `size` bytes from `address`. */
    readonly sectorRuns: readonly (AddressJSON & {
      /** Size of each sector, in bytes. */
      readonly size: number;
      /** Number of sectors in the run. */
      readonly count: number;
    })[];
  };
  /** First and last image address, absent for an empty image. */
  readonly image: {
    /** First image address. */
    readonly start: number;
    /** `start` as `0x` + 8 hex digits. */
    readonly startHex: string;
    /** Last image address (inclusive). */
    readonly last: number;
    /** `last` as `0x` + 8 hex digits. */
    readonly lastHex: string;
  } | null;
  /** Bytes of touched sectors outside the image are kept (read back and programmed again). */
  readonly preserve: boolean;
  /** Chip or sector erase, and why. */
  readonly erase: {
    /** Which erase. */
    readonly kind: EraseKind;
    /** Why, in words. */
    readonly reason: string;
  };
  /** Counts of the plan. */
  readonly totals: PlanTotals;
  /** The touched sectors, in address order. */
  readonly sectors: readonly SectorJSON[];
}

/**
 * A JSON-safe copy of `plan` for `--json` (see {@link PlanJSON}).
 *
 * @example
 * ```ts
 * process.stdout.write(JSON.stringify(planToJSON(plan), null, 2));
 * ```
 */
export function planToJSON(plan: FlashPlan): PlanJSON {
  const g = plan.geometry;
  const image = imageSpan(plan.sectors);
  return {
    flash: {
      start: g.start,
      startHex: hex32(g.start),
      last: g.start + g.size - 1,
      lastHex: hex32(g.start + g.size - 1),
      size: g.size,
      pageSize: g.pageSize,
      erasedValue: g.erasedValue,
      sectorCount: totalSectors(plan),
      sectorRuns: g.sectors.map((run) => ({ address: run.address, addressHex: hex32(run.address), size: run.size, count: run.count })),
    },
    image:
      image === undefined
        ? null
        : { start: image.start, startHex: hex32(image.start), last: image.end - 1, lastHex: hex32(image.end - 1) },
    preserve: plan.preserve,
    erase: { kind: plan.erase.kind, reason: plan.erase.reason },
    totals: { ...plan.totals },
    sectors: plan.sectors.map((sector) => ({
      index: sector.index,
      address: sector.address,
      addressHex: hex32(sector.address),
      size: sector.size,
      action: sector.pages.length > 0 ? 'erase+program' : 'erase',
      ranges: sector.ranges.map((r) => ({ offset: r.offset, length: r.length })),
      keep: sector.keep.map((r) => ({ offset: r.offset, length: r.length })),
      pages: pageRuns(sector.pages, g.pageSize),
      pageCount: sector.pages.length,
    })),
  };
}

function pageRuns(pages: readonly number[], pageSize: number): PageRunJSON[] {
  const runs: { offset: number; count: number }[] = [];
  for (const page of pages) {
    const last = runs.at(-1);
    if (last !== undefined && last.offset + last.count * pageSize === page) last.count++;
    else runs.push({ offset: page, count: 1 });
  }
  return runs;
}
