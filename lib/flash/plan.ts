/**
 * Flash planning: what to erase, what to read back, what to program — decided
 * from the image and the flash geometry alone, before the target is touched.
 *
 * {@link planFlash} is pure: it never talks to a target, so a `--dry-run` shows
 * exactly what a real run would do, and the layout is tested without hardware
 * (the same split as probe-rs's `FlashLayout` builder). Every choice the planner
 * makes on the user's behalf (chip erase or not) carries a printable reason,
 * like pyOCD's builder log.
 *
 * Planning model:
 *
 * - A sector is *touched* when it holds at least one image byte. Only touched
 *   sectors are erased (or the whole chip, see {@link ChipEraseMode}).
 * - After erase a touched sector must hold: image bytes where the image has
 *   some; elsewhere its previous content (`preserve`, the default: those bytes
 *   are read back before the erase, see {@link PlannedSector.keep}) or the
 *   erased value (`preserve: false`).
 * - A page is programmed when it holds a byte that is not the erased value or
 *   a byte that is kept (its value is unknown until read back). A page that
 *   would be written all-erased is skipped: the erase already produced it.
 * @module
 */
import { OutOfFlashError, UsageError, hex32 } from '../errors.js';
import { checkGeometry, sectorAt, sectorCount } from '../algo/algorithm.js';
import type { FlashGeometry, Sector } from '../algo/algorithm.js';
import type { Image, Segment } from '../image/image.js';

/**
 * How to erase:
 *
 * - `'auto'` (default): chip erase only when the image touches every sector of
 *   the device *and* {@link EraseEstimate} says it is faster than erasing those
 *   sectors one by one. Without an estimate, sector erase.
 * - `'always'`: chip erase. With `preserve` (the default) this is refused
 *   (throws {@link UsageError}) unless the image touches every sector: a chip
 *   erase would wipe the untouched sectors, whose content `preserve` promises
 *   to keep, and reading the whole device back first is never what a user
 *   means. Pass `preserve: false` to let it wipe them.
 * - `'never'`: sector erase.
 */
export type ChipEraseMode = 'auto' | 'always' | 'never';

/**
 * Typical (not worst-case) erase times, used by `chipErase: 'auto'` to choose
 * between erasing the touched sectors one by one and erasing the chip.
 *
 * Give `chipEraseMs` only when the algorithm has an `EraseChip` routine: when
 * either value is missing, `'auto'` never chooses chip erase.
 */
export interface EraseEstimate {
  /** Time to erase one sector, ms. */
  readonly sectorEraseMs?: number;
  /** Time to erase the whole device, ms. */
  readonly chipEraseMs?: number;
}

/** Options of {@link planFlash}. */
export interface PlanOptions {
  /**
   * Keep the bytes of a touched sector that the image does not cover: they are
   * read back before the erase and programmed again. Default `true`. With
   * `false` they end up as the erased value.
   */
  readonly preserve?: boolean;
  /** Chip erase or sector erase; default `'auto'`. See {@link ChipEraseMode}. */
  readonly chipErase?: ChipEraseMode;
  /** Erase times for the `'auto'` decision. */
  readonly estimate?: EraseEstimate;
}

/** A byte range relative to the start of a sector. */
export interface ByteRange {
  /** Offset of the first byte from the start of the sector. */
  readonly offset: number;
  /** Length in bytes. */
  readonly length: number;
}

/** A sector the image touches, with everything the flasher needs to rewrite it. */
export interface PlannedSector extends Sector {
  /** Image-covered byte ranges within the sector, ascending, merged, non-empty. */
  readonly ranges: readonly ByteRange[];
  /**
   * The sector's intended content (`size` bytes): image bytes in `ranges`, the
   * erased value elsewhere. Bytes in `keep` are placeholders to be replaced by
   * what is read back from the flash.
   *
   * When one image segment covers the whole sector this is a view into that
   * segment (no copy); it is a fresh buffer only for partly covered sectors.
   * Treat it as read-only.
   */
  readonly data: Uint8Array;
  /**
   * Gaps between `ranges` whose current flash content must be read back before
   * the erase and programmed again. Empty when `preserve` is off or the image
   * covers the whole sector.
   */
  readonly keep: readonly ByteRange[];
  /**
   * Offsets (multiples of the page size, ascending) of the pages to program
   * after the erase: those holding a byte that is not the erased value or a
   * byte in `keep`.
   */
  readonly pages: readonly number[];
}

/** How the device is erased. `'none'`: nothing is erased (empty image). */
export type EraseKind = 'chip' | 'sectors' | 'none';

/** The erase decision and why it was taken, one sentence for logs and `--dry-run`. */
export interface EraseDecision {
  /** Chip or sector erase. */
  readonly kind: EraseKind;
  /** Why, in words (e.g. `nothing to erase: the image is empty`), for `-v` and `rspflash plan`. */
  readonly reason: string;
}

/** Counts of a {@link FlashPlan}. */
export interface PlanTotals {
  /** Bytes the image holds (holes not counted). */
  readonly imageBytes: number;
  /** Segments of the image. */
  readonly segments: number;
  /** Sectors holding at least one image byte (= `plan.sectors.length`). */
  readonly sectorsTouched: number;
  /** `EraseSector` calls: the touched sectors with sector erase, 0 with chip erase. */
  readonly sectorsToErase: number;
  /** Bytes erased: the touched sectors' size with sector erase, the device size with chip erase. */
  readonly bytesToErase: number;
  /** Pages to program, all sectors together. */
  readonly pagesToProgram: number;
  /** `pagesToProgram × pageSize`. */
  readonly bytesToProgram: number;
  /** Bytes to read back before erasing and program again (sum of every `keep`). */
  readonly bytesToKeep: number;
}

/**
 * What a flash run will do. Produced by {@link planFlash}, executed by the
 * flasher, printed by `formatPlan` / `planToJSON` (`plan-format.ts`).
 */
export interface FlashPlan {
  /** The geometry the plan was made for. */
  readonly geometry: FlashGeometry;
  /** Whether uncovered bytes of touched sectors are kept (see {@link PlanOptions.preserve}). */
  readonly preserve: boolean;
  /** Chip or sector erase, and why. */
  readonly erase: EraseDecision;
  /** Touched sectors in address order. With sector erase, exactly these are erased. */
  readonly sectors: readonly PlannedSector[];
  /** Counts of the plan. */
  readonly totals: PlanTotals;
}

/**
 * Plans how to write `image` into the flash described by `geometry`. Pure.
 *
 * @throws {@link OutOfFlashError} when an image byte lies outside the device
 *   (nothing has been touched yet); the message names both ranges and the first
 *   offending segment, whose address and length the error carries.
 * @throws {@link UsageError} for `chipErase: 'always'` with `preserve` when the
 *   image leaves sectors untouched, and for invalid options.
 *
 * @example
 * ```ts
 * const plan = planFlash(image, algo.geometry, {
 *   estimate: { sectorEraseMs: 45, chipEraseMs: 80_000 },
 * });
 * log(plan.erase.reason);
 * for (const sector of plan.sectors) {
 *   // read back sector.keep, erase, program sector.pages from sector.data
 * }
 * ```
 */
export function planFlash(image: Image, geometry: FlashGeometry, options: PlanOptions = {}): FlashPlan {
  checkGeometry(geometry, 'flash geometry');
  const preserve = options.preserve ?? true;
  const mode = options.chipErase ?? 'auto';
  if (mode !== 'auto' && mode !== 'always' && mode !== 'never') {
    throw new UsageError(`chipErase must be 'auto', 'always' or 'never', not ${JSON.stringify(mode)}`);
  }
  checkEstimate(options.estimate);
  checkSorted(image);
  checkInsideFlash(image, geometry);

  const sectors = collectPieces(image, geometry).map((pending) => planSector(pending, geometry, preserve));
  const erase = decideErase(sectors, geometry, preserve, mode, options.estimate);

  let imageBytes = 0;
  for (const segment of image.segments) imageBytes += segment.data.length;
  let pagesToProgram = 0;
  let bytesToKeep = 0;
  let touchedBytes = 0;
  for (const sector of sectors) {
    pagesToProgram += sector.pages.length;
    touchedBytes += sector.size;
    for (const range of sector.keep) bytesToKeep += range.length;
  }
  const totals: PlanTotals = {
    imageBytes,
    segments: image.segments.length,
    sectorsTouched: sectors.length,
    sectorsToErase: erase.kind === 'sectors' ? sectors.length : 0,
    bytesToErase: erase.kind === 'chip' ? geometry.size : erase.kind === 'sectors' ? touchedBytes : 0,
    pagesToProgram,
    bytesToProgram: pagesToProgram * geometry.pageSize,
    bytesToKeep,
  };
  return { geometry, preserve, erase, sectors, totals };
}

/**
 * `createImage` guarantees sorted, disjoint segments; an Image built by hand
 * might not, and the planner's single pass would then put bytes in the wrong
 * sector without a word.
 */
function checkSorted(image: Image): void {
  let end = -Infinity;
  for (const segment of image.segments) {
    if (segment.address < end) {
      throw new UsageError(
        `image segments must be sorted and must not overlap: the segment at ${hex32(segment.address)} starts before the previous one ends (${hex32(end)})`,
        { hint: 'Build images with createImage(), which sorts and merges segments.' },
      );
    }
    end = segment.address + segment.data.length;
  }
}

/** Throws {@link OutOfFlashError} naming the first segment that is not entirely inside the device. */
function checkInsideFlash(image: Image, geometry: FlashGeometry): void {
  const flashEnd = geometry.start + geometry.size;
  // The device is one contiguous range, so the image fits if its first and last
  // bytes do; the loop only finds the segment to name.
  const offending = image.segments.find((s) => s.address < geometry.start || s.address + s.data.length > flashEnd);
  if (offending === undefined) return;
  const first = image.segments[0]!;
  const last = image.segments.at(-1)!;
  const imageStart = first.address;
  const imageEnd = last.address + last.data.length;
  const excess: string[] = [];
  if (imageStart < geometry.start) excess.push(`${geometry.start - imageStart} bytes before the start`);
  if (imageEnd > flashEnd) excess.push(`${imageEnd - flashEnd} bytes past the end`);
  const segEnd = offending.address + offending.data.length;
  throw new OutOfFlashError(
    `image ${span(imageStart, imageEnd)} lies outside flash ${span(geometry.start, flashEnd)} (${excess.join(', ')}); ` +
      `first segment outside: ${span(offending.address, segEnd)} (${offending.data.length} bytes)`,
    offending.address,
    offending.data.length,
    { hint: 'Check the load address of the image (`base` for a .bin) and that the flash algorithm is the one for this device.' },
  );
}

/** `[start, end)` printed as an inclusive range, the way users read memory maps. */
function span(start: number, end: number): string {
  return `${hex32(start)}–${hex32(end - 1)}`;
}

function checkEstimate(estimate: EraseEstimate | undefined): void {
  for (const [name, value] of Object.entries(estimate ?? {})) {
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
      throw new UsageError(`estimate.${name} must be a non-negative number of milliseconds, not ${String(value)}`);
    }
  }
}

/** A piece of one segment inside one sector. */
interface Piece {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

interface PendingSector {
  readonly sector: Sector;
  readonly pieces: Piece[];
}

/** Splits the image's segments at sector boundaries, grouped by sector, in address order. */
function collectPieces(image: Image, geometry: FlashGeometry): PendingSector[] {
  const pending: PendingSector[] = [];
  for (const segment of image.segments) {
    addSegment(pending, segment, geometry);
  }
  return pending;
}

function addSegment(pending: PendingSector[], segment: Segment, geometry: FlashGeometry): void {
  const end = segment.address + segment.data.length;
  let address = segment.address;
  while (address < end) {
    let current = pending.at(-1);
    if (current === undefined || address >= current.sector.address + current.sector.size) {
      // Inside the device: checkInsideFlash ran first.
      const sector = sectorAt(geometry, address)!;
      current = { sector, pieces: [] };
      pending.push(current);
    }
    const to = Math.min(end, current.sector.address + current.sector.size);
    current.pieces.push({
      offset: address - current.sector.address,
      bytes: segment.data.subarray(address - segment.address, to - segment.address),
    });
    address = to;
  }
}

function planSector(pending: PendingSector, geometry: FlashGeometry, preserve: boolean): PlannedSector {
  const { sector, pieces } = pending;
  const erased = geometry.erasedValue;
  const only = pieces[0]!;
  let data: Uint8Array;
  if (pieces.length === 1 && only.bytes.length === sector.size) {
    // A view, not a copy: a 32 MiB image must not cost 64 MiB to plan.
    data = only.bytes;
  } else {
    data = new Uint8Array(sector.size).fill(erased);
    for (const piece of pieces) data.set(piece.bytes, piece.offset);
  }

  // Segments of an Image are never adjacent, so pieces only need merging if a
  // caller built an Image by hand; merge anyway, it is cheap.
  const ranges: ByteRange[] = [];
  for (const piece of pieces) {
    const last = ranges.at(-1);
    if (last !== undefined && last.offset + last.length === piece.offset) {
      ranges[ranges.length - 1] = { offset: last.offset, length: last.length + piece.bytes.length };
    } else {
      ranges.push({ offset: piece.offset, length: piece.bytes.length });
    }
  }

  const keep: ByteRange[] = [];
  if (preserve) {
    let cursor = 0;
    for (const range of ranges) {
      if (range.offset > cursor) keep.push({ offset: cursor, length: range.offset - cursor });
      cursor = range.offset + range.length;
    }
    if (cursor < sector.size) keep.push({ offset: cursor, length: sector.size - cursor });
  }

  const pages: number[] = [];
  let k = 0; // first keep range that may still reach the current page
  for (let page = 0; page < sector.size; page += geometry.pageSize) {
    const pageEnd = page + geometry.pageSize;
    while (k < keep.length && keep[k]!.offset + keep[k]!.length <= page) k++;
    const kept = k < keep.length && keep[k]!.offset < pageEnd;
    if (kept || !isAll(data, page, pageEnd, erased)) pages.push(page);
  }

  return { address: sector.address, size: sector.size, index: sector.index, ranges, data, keep, pages };
}

function isAll(data: Uint8Array, from: number, to: number, value: number): boolean {
  for (let i = from; i < to; i++) if (data[i] !== value) return false;
  return true;
}

function decideErase(
  sectors: readonly PlannedSector[],
  geometry: FlashGeometry,
  preserve: boolean,
  mode: ChipEraseMode,
  estimate: EraseEstimate | undefined,
): EraseDecision {
  const total = sectorCount(geometry);
  const touched = sectors.length;
  const untouched = total - touched;
  const keptBytes = sectors.reduce((n, s) => n + s.keep.reduce((m, r) => m + r.length, 0), 0);

  if (mode === 'always') {
    if (untouched > 0 && preserve) {
      throw new UsageError(
        `chip erase would also erase the ${plural(untouched, 'sector')} the image does not touch ` +
          `(it touches ${touched} of ${total}), whose content \`preserve\` promises to keep`,
        { hint: "Give `preserve: false` to let chip erase wipe them, or use sector erase (`chipErase: 'auto'` or `chipErase: 'never'`)." },
      );
    }
    if (untouched > 0) {
      return {
        kind: 'chip',
        reason: `chip erase requested; preserve is off, so the ${plural(untouched, 'sector')} the image does not touch are left erased`,
      };
    }
    return { kind: 'chip', reason: `chip erase requested; the image touches all ${total} sectors${keptNote(keptBytes)}` };
  }

  if (touched === 0) return { kind: 'none', reason: 'nothing to erase: the image is empty' };
  if (mode === 'never') return { kind: 'sectors', reason: `sector erase requested (chip erase disabled): ${touchedOf(touched, total)}` };
  if (untouched > 0) {
    return { kind: 'sectors', reason: `sector erase: ${touchedOf(touched, total)}; chip erase would also erase the other ${untouched}` };
  }
  const sectorMs = estimate?.sectorEraseMs;
  const chipMs = estimate?.chipEraseMs;
  if (sectorMs === undefined || chipMs === undefined) {
    return {
      kind: 'sectors',
      reason: `sector erase: the image touches all ${total} sectors, but without both erase-time estimates chip erase is never chosen automatically`,
    };
  }
  const sectorsMs = touched * sectorMs;
  const comparison = `${touched} × ${sectorMs} ms = ${sectorsMs} ms`;
  if (sectorsMs > chipMs) {
    return {
      kind: 'chip',
      reason: `chip erase: the image touches all ${total} sectors and erasing them one by one (${comparison}) is slower than chip erase (${chipMs} ms)${keptNote(keptBytes)}`,
    };
  }
  return {
    kind: 'sectors',
    reason: `sector erase: the image touches all ${total} sectors, but erasing them one by one (${comparison}) is not slower than chip erase (${chipMs} ms)`,
  };
}

function touchedOf(touched: number, total: number): string {
  return `the image touches ${touched} of ${total} sectors`;
}

function keptNote(keptBytes: number): string {
  return keptBytes === 0 ? '' : `; the ${plural(keptBytes, 'byte')} it does not cover in them are read back first`;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
