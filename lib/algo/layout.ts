/**
 * Where everything goes in the target RAM lent to rspflash: pure planning of
 * the runner's RAM layout.
 *
 * ```
 * region.start ─┬─ helpers (call shim, sequencer, CRC, hash, core clean)         code page(s)
 *               ├─ algorithm blob (code, RW data, ZI)       (unless it has a fixed address)
 *   1 KiB align ├─ CRC table (1 KiB; also the guard band under the stack)          data pages
 *               ├─ stack (canary word at its bottom, grows down)
 *   1 KiB align ├─ trap page: rspflash's vector table, fault loop, return trap
 *   1 KiB align └─ buffers × N, each: batch-table area + data (a multiple of the page size)
 * ```
 *
 * The breakpointed instructions (return trap, fault loop) have a page of their
 * own: QEMU translates code one instruction at a time on any page that holds a
 * breakpoint, which made the helpers and the algorithm 5-10 times slower when
 * the trap sat beside them (measured). The trap page sits above the stack, out
 * of reach of an algorithm that overruns its stack downwards.
 *
 * Code and data sit on separate 1 KiB pages: QEMU treats stores into a page it
 * has executed code from as self-modifying code and slows them 25-fold
 * (measured). The algorithm's own RW/ZI data stays beside its code: the blob is
 * one piece, addressed relative to itself.
 *
 * A stack overflow first lands on the CRC table, which the host can rewrite,
 * not on code: up to 1 KiB of overflow is detected (canary) without damage.
 * @module
 */
import { RamLayoutError, hex32 } from '../errors.js';
import { SYSTEM_VECTORS, vectorOffset } from '../cortex-m.js';
import type { FlashAlgorithm } from './algorithm.js';
import { TARGET_CODE, TARGET_ENTRY } from './target-code.js';
import { ENTRY_SIZE } from './sequencer.js';

/** A RAM region: where code can run and data can be stored. */
export interface RamRegion {
  /** First address of the region. */
  readonly start: number;
  /** Size of the region, in bytes. */
  readonly size: number;
}

/** Options of {@link planRamLayout}. */
export interface LayoutOptions {
  /**
   * Stack bytes the algorithm may use (default: the algorithm's own request,
   * else {@link DEFAULT_STACK}). The layout adds {@link HELPER_STACK} for the
   * sequencer's own frame.
   */
  stackSize?: number;
  /** Data bytes per buffer, rounded down to a multiple of the page size; default as large as fits, up to {@link DEFAULT_MAX_BUFFER}. */
  bufferSize?: number;
  /** Number of buffers (default 2, at least 1). */
  buffers?: number;
  /**
   * Batch-table entries per buffer (default: up to {@link MAX_TABLE_ENTRIES},
   * fewer in small RAM: about an eighth of each buffer, at least
   * {@link MIN_TABLE_ENTRIES}, always leaving room for one page of data).
   */
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
  /** Data bytes, a multiple of the flash page size. */
  readonly size: number;
  /** Start of the table area (`address - tableEntries * ENTRY_SIZE`). */
  readonly tableArea: number;
  /** Batch-table entries the table area holds. */
  readonly tableEntries: number;
}

/** The planned RAM layout. Every address absolute. */
export interface RamLayout {
  /** The RAM region the layout was planned in. */
  readonly region: RamRegion;
  /** Where rspflash's on-target helper code (`TARGET_CODE`: call shim, sequencer, CRC-32, hash) is loaded. */
  readonly helpers: number;
  /** Return trap address (LR = trap | 1). */
  readonly trap: number;
  /** Load address of the algorithm blob. */
  readonly algorithm: number;
  /** Bytes of the algorithm blob. */
  readonly algorithmSize: number;
  /** R9 for the algorithm, when it uses a static base. */
  readonly staticBase: number | undefined;
  /** rspflash's vector table, installed in VTOR while the algorithm runs (where the core has a VTOR). */
  readonly vectorTable: number;
  /** The fault loop every entry of that table points at: the runner breakpoints it. */
  readonly faultLoop: number;
  /** Where the 1 KiB table of the on-target CRC-32 routine goes. */
  readonly crcTable: number;
  /** Lowest stack address; the canary word is here. */
  readonly stackBottom: number;
  /** Initial SP (8-byte aligned, exclusive top). */
  readonly stackTop: number;
  /** The transfer buffers, each with its batch-table area. */
  readonly buffers: readonly BufferSlot[];
  /** Spans of target RAM the layout writes (to save and restore them), `end` exclusive. */
  readonly used: readonly {
    /** First address of the span. */
    start: number;
    /** First address after it. */
    end: number;
  }[];
}

/** Largest transfer buffer chosen by default. Each run of the target costs about 2 ms besides its work (QEMU, measured): 64 KiB runs took 846 ms for 8 MiB of program+verify, 1 MiB runs 561 ms; 256 KiB gets most of that. */
export const DEFAULT_MAX_BUFFER = 256 * 1024;
/** Default stack for an algorithm that does not say. */
export const DEFAULT_STACK = 4 * 1024;
/**
 * Stack added for rspflash's own frames: the sequencer pushes 40 bytes
 * (`rsp_seq_run`, arm-none-eabi-gcc 12 -Os) before it calls the algorithm.
 */
export const HELPER_STACK = 64;
/** QEMU's self-modifying-code granule, and a tidy alignment for real targets too. */
export const LAYOUT_PAGE = 1024;
/** The CRC-32 table of the on-target CRC routine: 256 words. */
export const CRC_TABLE_BYTES = 1024;
/**
 * rspflash's own vector block: 16 exception entries (64 bytes), all pointing
 * at the breakpointed fault loop (`b .`) that follows them at offset
 * {@link FAULT_LOOP_OFFSET}.
 */
export const VECTOR_TABLE_BYTES = 128;
/** Where the fault loop sits in the trap page, after the 16 system vectors (64 bytes). */
export const FAULT_LOOP_OFFSET = vectorOffset(SYSTEM_VECTORS);
/** Where the return trap (`BKPT #0; b .`) sits in the trap page. */
export const TRAP_OFFSET = 72;
/** Most batch-table entries per buffer chosen by default (8 KiB of table). */
export const MAX_TABLE_ENTRIES = 256;
/** Fewest batch-table entries per buffer chosen by default (an nRF51 has 16 KiB of RAM in all). */
export const MIN_TABLE_ENTRIES = 8;

const alignUp = (value: number, to: number) => Math.ceil(value / to) * to;
const alignDown = (value: number, to: number) => Math.floor(value / to) * to;

function positiveInteger(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RamLayoutError(`${what} must be a positive integer, not ${value}`);
  return value;
}

/**
 * Plans the RAM layout for `algo` in `region`. Throws {@link RamLayoutError}
 * saying how many bytes are needed when the region is too small (the figure
 * is exact: a region of that size at the same start fits).
 *
 * A fixed-address algorithm ({@link FlashAlgorithm.loadAddress}) goes where it
 * must; inside the region, the helpers go before it when they fit, else after
 * it, and everything else after it. Outside the region, it is loaded (and its
 * RAM saved and restored) where it is.
 *
 * @example
 * ```ts
 * const layout = planRamLayout(algo, { start: 0x20000000, size: 0x20000 });
 * console.log(describeLayout(layout));
 * ```
 */
export function planRamLayout(algo: FlashAlgorithm, region: RamRegion, options: LayoutOptions = {}): RamLayout {
  const pageSize = algo.geometry.pageSize;
  if (region.start % 4 !== 0) throw new RamLayoutError(`RAM region start ${hex32(region.start)} is not 4-byte aligned`);
  if (!Number.isInteger(region.size) || region.size <= 0) throw new RamLayoutError(`RAM region size ${region.size} is not a positive number of bytes`);
  const requestedStack = positiveInteger(options.stackSize ?? algo.stackSize ?? DEFAULT_STACK, 'The stack size');
  const stackSize = alignUp(requestedStack + HELPER_STACK, 8);
  const bufferCount = positiveInteger(options.buffers ?? 2, 'The number of buffers');
  const helpersSize = TARGET_CODE.length;
  const regionEnd = region.start + region.size;
  const blobSize = algo.blob.length;

  // Code: helpers and algorithm.
  const fixed = algo.loadAddress;
  let helpers = alignUp(region.start, 8);
  let algorithm: number;
  let codeEnd: number;
  let low = helpers;
  const extra: { start: number; end: number }[] = [];
  if (fixed === undefined) {
    algorithm = alignUp(helpers + helpersSize, 8);
    codeEnd = algorithm + blobSize;
  } else {
    algorithm = fixed;
    const fixedEnd = fixed + blobSize;
    if (fixed < regionEnd && fixedEnd > region.start) {
      // The algorithm insists on an address inside the region: the helpers go before it if they fit, else after it.
      if (helpers + helpersSize <= fixed) {
        codeEnd = fixedEnd;
      } else {
        helpers = alignUp(fixedEnd, 8);
        codeEnd = helpers + helpersSize;
      }
      low = Math.min(helpers, fixed);
    } else {
      codeEnd = helpers + helpersSize;
      extra.push({ start: fixed, end: fixedEnd });
    }
  }

  // Data: CRC table (guard band), stack, the trap page, buffers.
  const crcTable = alignUp(codeEnd, LAYOUT_PAGE);
  const stackBottom = crcTable + CRC_TABLE_BYTES;
  const stackTop = stackBottom + stackSize;
  const vectorTable = alignUp(stackTop, LAYOUT_PAGE);
  const buffersStart = vectorTable + LAYOUT_PAGE;
  const available = regionEnd - buffersStart;
  const tableEntries =
    options.tableEntries === undefined
      ? defaultTableEntries(available, bufferCount, options.bufferSize === undefined ? pageSize : alignDown(options.bufferSize, pageSize))
      : positiveInteger(options.tableEntries, 'The number of batch-table entries');
  const tableBytes = tableEntries * ENTRY_SIZE;
  const span = (size: number) => (bufferCount - 1) * alignUp(tableBytes + size, 8) + tableBytes + size;
  const tooSmall = (size: number): RamLayoutError => {
    const need = buffersStart - region.start + span(size);
    const inRegion = fixed === undefined || extra.length === 0 ? `, the algorithm ${blobSize}` : '';
    return new RamLayoutError(
      `The RAM region ${hex32(region.start)}..${hex32(regionEnd - 1)} (${region.size} bytes) is too small for '${algo.name}': ` +
        `it needs ${need} bytes from ${hex32(region.start)} (rspflash's helpers ${helpersSize}${inRegion}, CRC table ${CRC_TABLE_BYTES}, trap page ${LAYOUT_PAGE}, ` +
        `stack ${stackSize}, ${bufferCount} buffer(s) of ${size} + ${tableBytes} bytes of batch table, code and data on separate 1 KiB pages)`,
      { hint: 'Give a larger RAM region (`ram`, e.g. the whole SRAM or ITCM), or a smaller `stackSize` or `bufferSize`.' },
    );
  };

  let bufferSize: number;
  if (options.bufferSize !== undefined) {
    bufferSize = alignDown(options.bufferSize, pageSize);
    if (bufferSize < pageSize) {
      throw new RamLayoutError(`A buffer of ${options.bufferSize} bytes cannot hold one flash page (${pageSize} bytes)`);
    }
    if (span(bufferSize) > available) throw tooSmall(bufferSize);
  } else {
    const cap = Math.max(alignDown(DEFAULT_MAX_BUFFER, pageSize), pageSize);
    bufferSize = Math.min(cap, alignDown(Math.floor((available - tableBytes * bufferCount) / bufferCount), pageSize));
    while (bufferSize >= pageSize && span(bufferSize) > available) bufferSize -= pageSize;
    if (bufferSize < pageSize) throw tooSmall(pageSize);
  }

  const buffers: BufferSlot[] = [];
  let at = buffersStart;
  let end = at;
  for (let i = 0; i < bufferCount; i++) {
    buffers.push({ address: at + tableBytes, size: bufferSize, tableArea: at, tableEntries });
    end = at + tableBytes + bufferSize;
    at = alignUp(end, 8);
  }
  return {
    region,
    helpers,
    trap: vectorTable + TRAP_OFFSET,
    algorithm,
    algorithmSize: blobSize,
    staticBase: algo.staticBaseOffset === undefined ? undefined : algorithm + algo.staticBaseOffset,
    vectorTable,
    faultLoop: vectorTable + FAULT_LOOP_OFFSET,
    crcTable,
    stackBottom,
    stackTop,
    buffers,
    used: [{ start: low, end }, ...extra],
  };
}

/**
 * Table entries where none were asked for: {@link MAX_TABLE_ENTRIES} where RAM
 * is plenty; in small RAM about an eighth of each buffer's share, but never so
 * many that `minData` bytes of data (a page, or the buffer size asked for) no
 * longer fit; at least {@link MIN_TABLE_ENTRIES}. The "too small" figure is
 * computed with that minimum, so a region of that size picks it too.
 */
function defaultTableEntries(available: number, bufferCount: number, minData: number): number {
  const share = alignDown(Math.floor(available / bufferCount), 8);
  const entries = Math.min(MAX_TABLE_ENTRIES, Math.floor(share / 8 / ENTRY_SIZE), Math.floor((share - minData) / ENTRY_SIZE));
  return Math.max(MIN_TABLE_ENTRIES, entries);
}

/** A human-readable picture of a layout, in address order, for `-v` output and debug logs. */
export function describeLayout(layout: RamLayout): string {
  const rows: [string, number, number][] = [
    ['helpers', layout.helpers, TARGET_CODE.length],
    ['algorithm', layout.algorithm, layout.algorithmSize],
    ['crc table', layout.crcTable, CRC_TABLE_BYTES],
    ['stack', layout.stackBottom, layout.stackTop - layout.stackBottom],
    ['trap page', layout.vectorTable, VECTOR_TABLE_BYTES],
    ...layout.buffers.map((b, i): [string, number, number] => [`buffer ${i}`, b.tableArea, b.tableEntries * ENTRY_SIZE + b.size]),
  ];
  rows.sort((a, b) => a[1] - b[1]);
  return [
    `algorithm at ${hex32(layout.algorithm)}${layout.staticBase === undefined ? '' : `, static base ${hex32(layout.staticBase)}`}, trap ${hex32(layout.trap)}`,
    ...rows.map(([name, address, size]) => `  ${name.padEnd(10)} ${hex32(address)}  ${size} bytes`),
  ].join('\n');
}
