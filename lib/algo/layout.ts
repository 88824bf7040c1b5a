/**
 * Where everything goes in the target RAM lent to rspflash: pure planning of
 * the runner's RAM layout.
 *
 * ```
 * region.start ─┬─ helpers (return trap, sequencer, CRC, core clean)   code page(s)
 *               ├─ algorithm blob (code, RW data, ZI)                   (unless it has a fixed address)
 *   1 KiB align ├─ CRC table (1 KiB)                                    data pages
 *               ├─ stack (canary word at its bottom, grows down)
 *               └─ buffers × N, each: batch-table area + data (a multiple of the page size)
 * ```
 *
 * Code and data sit on separate 1 KiB pages: QEMU treats stores into a page it
 * has executed code from as self-modifying code and slows them 25-fold (measured).
 * @module
 */
import { RamLayoutError, hex32 } from '../errors.js';
import type { FlashAlgorithm } from './algorithm.js';
import { TARGET_CODE, TARGET_ENTRY } from './target-code.js';
import { ENTRY_SIZE } from './sequencer.js';

/** A RAM region: where code can run and data can be stored. */
export interface RamRegion {
  readonly start: number;
  readonly size: number;
}

/** Options of {@link planRamLayout}. */
export interface LayoutOptions {
  /** Stack bytes (default: the algorithm's own request, else 4 KiB). */
  stackSize?: number;
  /** Data bytes per buffer; default as large as fits, up to {@link DEFAULT_MAX_BUFFER}, a multiple of the page size. */
  bufferSize?: number;
  /** Number of buffers (default 2, at least 1). */
  buffers?: number;
  /** Batch-table entries per buffer (default: up to {@link MAX_TABLE_ENTRIES}, fewer in small RAM). */
  tableEntries?: number;
}

/**
 * One transfer buffer and the batch-table area right before it: a table of n
 * entries is written to end exactly where the data starts, so one memory write
 * carries both.
 */
export interface BufferSlot {
  /** First data byte. */
  readonly address: number;
  readonly size: number;
  /** Start of the table area (`address - tableEntries * ENTRY_SIZE`). */
  readonly tableArea: number;
  readonly tableEntries: number;
}

/** The planned RAM layout. Every address absolute. */
export interface RamLayout {
  readonly region: RamRegion;
  /** Where {@link TARGET_CODE} is loaded. */
  readonly helpers: number;
  /** Return trap address (LR = trap | 1). */
  readonly trap: number;
  /** Load address of the algorithm blob. */
  readonly algorithm: number;
  /** R9 for the algorithm, when it uses a static base. */
  readonly staticBase: number | undefined;
  readonly crcTable: number;
  /** Lowest stack address; the canary word is here. */
  readonly stackBottom: number;
  /** Initial SP (8-byte aligned, exclusive top). */
  readonly stackTop: number;
  readonly buffers: readonly BufferSlot[];
  /** Spans of target RAM the layout writes (to save and restore them). */
  readonly used: readonly { start: number; end: number }[];
}

/** Largest transfer buffer chosen by default: beyond it, batches gain little. */
export const DEFAULT_MAX_BUFFER = 64 * 1024;
/** Most batch-table entries per buffer chosen by default (8 KiB of table). */
export const MAX_TABLE_ENTRIES = 256;
/** Default stack for an algorithm that does not say. */
export const DEFAULT_STACK = 4 * 1024;
/** QEMU's self-modifying-code granule, and a tidy alignment for real targets too. */
const PAGE = 1024;
const CRC_TABLE_BYTES = 1024;

const alignUp = (value: number, to: number) => Math.ceil(value / to) * to;
const alignDown = (value: number, to: number) => Math.floor(value / to) * to;

/**
 * Plans the RAM layout for `algo` in `region`. Throws {@link RamLayoutError}
 * saying how many bytes are needed when the region is too small, or when a
 * fixed-address algorithm overlaps the region in a way that leaves no room.
 */
export function planRamLayout(algo: FlashAlgorithm, region: RamRegion, options: LayoutOptions = {}): RamLayout {
  const pageSize = algo.geometry.pageSize;
  const stackSize = alignUp(options.stackSize ?? algo.stackSize ?? DEFAULT_STACK, 8);
  const bufferCount = Math.max(1, options.buffers ?? 2);
  if (region.start % 4 !== 0) throw new RamLayoutError(`RAM region start ${hex32(region.start)} is not 4-byte aligned`);

  const regionEnd = region.start + region.size;
  const fixed = algo.loadAddress;
  const helpers = alignUp(region.start, 8);
  let cursor = helpers + TARGET_CODE.length;
  let algorithm: number;
  if (fixed === undefined) {
    algorithm = alignUp(cursor, 8);
    cursor = algorithm + algo.blob.length;
  } else {
    algorithm = fixed;
    const fixedEnd = fixed + algo.blob.length;
    if (fixed < regionEnd && fixedEnd > region.start) {
      // The algorithm insists on an address inside the region: put everything else after it.
      if (fixed < cursor) {
        throw new RamLayoutError(
          `The algorithm must be loaded at ${hex32(fixed)}, which leaves no room for rspflash's helpers at the start of the RAM region ${hex32(region.start)}; give a region that starts after ${hex32(fixedEnd - 1)} or before ${hex32(fixed - TARGET_CODE.length)}`,
        );
      }
      cursor = fixedEnd;
    }
  }
  const dataStart = alignUp(cursor, PAGE);
  const crcTable = dataStart;
  const stackBottom = crcTable + CRC_TABLE_BYTES;
  const stackTop = stackBottom + stackSize;
  const buffersStart = alignUp(stackTop, PAGE);
  const available = regionEnd - buffersStart;
  // Table entries: 256 where RAM is plenty; in small RAM (an nRF51 has 16 KiB) about an eighth of each buffer, at least 8.
  const tableEntries =
    options.tableEntries ?? Math.max(8, Math.min(MAX_TABLE_ENTRIES, Math.floor(available / bufferCount / 8 / ENTRY_SIZE)));
  const tableBytes = tableEntries * ENTRY_SIZE;
  const minimum = buffersStart - region.start + bufferCount * (pageSize + tableBytes);
  const perBuffer = Math.floor(available / bufferCount) - tableBytes;
  let bufferSize = options.bufferSize ?? Math.min(DEFAULT_MAX_BUFFER, perBuffer);
  bufferSize = alignDown(bufferSize, pageSize);
  if (bufferSize < pageSize || bufferSize > perBuffer) {
    const wanted = options.bufferSize ? alignUp(options.bufferSize, pageSize) : pageSize;
    const need = buffersStart - region.start + bufferCount * (wanted + tableBytes);
    throw new RamLayoutError(
      `RAM region ${hex32(region.start)}..${hex32(regionEnd - 1)} (${region.size} bytes) is too small: ` +
        `the algorithm needs ${need} bytes (helpers ${TARGET_CODE.length} + code/data ${fixed === undefined ? algo.blob.length : 0}, ` +
        `CRC table ${CRC_TABLE_BYTES}, stack ${stackSize}, ${bufferCount} buffer(s) of ${wanted} + ${tableBytes} bytes, 1 KiB alignment); at least ${minimum} bytes`,
      { hint: 'Pass a larger --ram ADDR:SIZE (e.g. the whole SRAM or ITCM), or a smaller stack/buffer size.' },
    );
  }
  const buffers: BufferSlot[] = [];
  let at = buffersStart;
  for (let i = 0; i < bufferCount; i++) {
    buffers.push({ address: at + tableBytes, size: bufferSize, tableArea: at, tableEntries });
    at = alignUp(at + tableBytes + bufferSize, 8);
  }
  const used = [{ start: helpers, end: at }];
  if (fixed !== undefined && (fixed >= regionEnd || fixed + algo.blob.length <= region.start)) {
    used.push({ start: fixed, end: fixed + algo.blob.length });
  }
  return {
    region,
    helpers,
    trap: helpers + TARGET_ENTRY.trap,
    algorithm,
    staticBase: algo.staticBaseOffset === undefined ? undefined : algorithm + algo.staticBaseOffset,
    crcTable,
    stackBottom,
    stackTop,
    buffers,
    used,
  };
}

/** A human-readable picture of a layout, for `-v` output and debug logs. */
export function describeLayout(layout: RamLayout): string {
  const rows = [
    ['helpers', layout.helpers, TARGET_CODE.length],
    ['stack', layout.stackBottom, layout.stackTop - layout.stackBottom],
    ['crc table', layout.crcTable, CRC_TABLE_BYTES],
    ...layout.buffers.map((b, i) => [`buffer ${i}`, b.tableArea, b.tableEntries * ENTRY_SIZE + b.size] as const),
  ] as const;
  return [
    `algorithm at ${hex32(layout.algorithm)}${layout.staticBase === undefined ? '' : `, static base ${hex32(layout.staticBase)}`}, trap ${hex32(layout.trap)}`,
    ...rows.map(([name, address, size]) => `  ${String(name).padEnd(10)} ${hex32(address as number)}  ${size} bytes`),
  ].join('\n');
}
