/**
 * The one model of a flash algorithm that every source format (CMSIS `.FLM`,
 * SEGGER flash loader, probe-rs target YAML) is turned into, and the pure
 * helpers over its geometry.
 * @module
 */
import { FormatError, hex32 } from '../errors.js';

/** Where a {@link FlashAlgorithm} came from. */
export type AlgorithmFormat = 'flm' | 'segger-ofl' | 'segger-sfl' | 'probe-rs';

/**
 * Routines an algorithm may export. The first seven follow CMSIS `FlashOS.h`;
 * the rest are SEGGER extras:
 *
 * | name | signature | success |
 * | --- | --- | --- |
 * | `Init` | `(adr, clk, fnc)` | 0 |
 * | `UnInit` | `(fnc)` | 0 |
 * | `EraseSector` | `(adr)` | 0 |
 * | `ProgramPage` | `(adr, sz, buf)` | 0 |
 * | `EraseChip` | `()` | 0 |
 * | `BlankCheck` | `(adr, sz, pat)` | 0 = blank |
 * | `Verify` | `(adr, sz, buf)` | returns `adr + sz` |
 * | `Program` | `(adr, sz, buf)`, many pages in one call (SEGGER) | 0 |
 * | `Erase` | `(adr, sectorIndex, count)`, many sectors in one call (SEGGER SFL) | 0 |
 * | `Read` | `(adr, sz, buf)` (SEGGER) | returns `sz` |
 * | `CalcCRC` | `(crc, adr, sz, poly)` CRC-32 poly 0xEDB88320 (SEGGER) | returns the CRC |
 */
export type AlgorithmFunction =
  | 'Init'
  | 'UnInit'
  | 'EraseSector'
  | 'ProgramPage'
  | 'EraseChip'
  | 'BlankCheck'
  | 'Verify'
  | 'Program'
  | 'Erase'
  | 'Read'
  | 'CalcCRC';

/** The `fnc` argument of Init/UnInit (CMSIS): what the algorithm is prepared for. */
export const FNC_ERASE = 1;
/** @see FNC_ERASE */
export const FNC_PROGRAM = 2;
/** @see FNC_ERASE */
export const FNC_VERIFY = 3;

/** A run of `count` equal sectors of `size` bytes starting at absolute `address`. */
export interface SectorRun {
  /** Address of the first sector of the run. */
  readonly address: number;
  /** Size of each sector, in bytes. */
  readonly size: number;
  /** Number of sectors in the run. */
  readonly count: number;
}

/** One erase sector, absolute address. */
export interface Sector {
  /** Address of the sector. */
  readonly address: number;
  /** Size of the sector, in bytes. */
  readonly size: number;
  /** Index of the sector within the device (0 = first). */
  readonly index: number;
}

/** The shape of the flash device an algorithm programs. All addresses absolute. */
export interface FlashGeometry {
  /** First address of the device (FLM `DevAdr`). */
  readonly start: number;
  /** Size of the device in bytes (FLM `szDev`). */
  readonly size: number;
  /** Program granularity: ProgramPage takes at most this many bytes (FLM `szPage`). */
  readonly pageSize: number;
  /** Value of an erased byte, usually 0xFF (FLM `valEmpty`). */
  readonly erasedValue: number;
  /** Sector runs in ascending address order, covering `[start, start + size)`. */
  readonly sectors: readonly SectorRun[];
}

/** Per-call timeouts in milliseconds. */
export interface AlgorithmTimeouts {
  /** Init and UnInit, in ms. */
  readonly init: number;
  /** One EraseSector call, in ms (FLM `toErase`). */
  readonly eraseSector: number;
  /** One ProgramPage call, in ms (FLM `toProg`). */
  readonly programPage: number;
  /** One EraseChip call, in ms. */
  readonly eraseChip: number;
}

/**
 * A flash algorithm ready to be placed in target RAM: one contiguous blob
 * (code, initialised data, zeroed ZI) plus where its routines are.
 */
export interface FlashAlgorithm {
  /** Human name, e.g. `Ensemble OSPI1 Flash (IS25WX256)`. */
  readonly name: string;
  /** The file format it was loaded from. */
  readonly format: AlgorithmFormat;
  /**
   * The bytes to load, ZI area already zeroed. Offset 0 is loaded at the load
   * address. Never includes the FLM `DevDscr` descriptor.
   */
  readonly blob: Uint8Array;
  /** Fixed load address, or `undefined` if position independent. */
  readonly loadAddress: number | undefined;
  /** Entry offsets from the start of the blob, Thumb bit cleared. */
  readonly functions: Readonly<Partial<Record<AlgorithmFunction, number>>>;
  /** R9 (static base) = load address + this offset; `undefined` leaves R9 alone. */
  readonly staticBaseOffset: number | undefined;
  /**
   * Offsets of 32-bit words in the blob that hold link-time addresses (a GOT,
   * a SEGGER API table) and must be increased by the load address.
   */
  readonly relocations: readonly number[];
  /** Stack the algorithm asks for, bytes (probe-rs `stack_size`); `undefined` = runner default. */
  readonly stackSize: number | undefined;
  /** The flash device it programs. */
  readonly geometry: FlashGeometry;
  /** How long each routine may run before rspflash halts it. */
  readonly timeouts: AlgorithmTimeouts;
  /** FLM `DevType` (1 on-chip, … 5 external SPI), when known. */
  readonly deviceType?: number;
}

/** Expands the sector runs of a geometry into every sector, in address order. */
export function* sectorsOf(geometry: FlashGeometry): Generator<Sector> {
  let index = 0;
  for (const run of geometry.sectors) {
    for (let i = 0; i < run.count; i++) {
      yield { address: run.address + i * run.size, size: run.size, index: index++ };
    }
  }
}

/** Total number of sectors in a geometry. */
export function sectorCount(geometry: FlashGeometry): number {
  return geometry.sectors.reduce((n, run) => n + run.count, 0);
}

/**
 * The sector that contains `address`, or `undefined` if the address is outside
 * the device. O(number of runs).
 */
export function sectorAt(geometry: FlashGeometry, address: number): Sector | undefined {
  let index = 0;
  for (const run of geometry.sectors) {
    const end = run.address + run.size * run.count;
    if (address >= run.address && address < end) {
      const i = Math.floor((address - run.address) / run.size);
      return { address: run.address + i * run.size, size: run.size, index: index + i };
    }
    index += run.count;
  }
  return undefined;
}

/**
 * Checks that a geometry is consistent: runs ascending, contiguous, covering the
 * device, page size dividing every sector. Throws a {@link FormatError} naming
 * the first problem.
 */
export function checkGeometry(geometry: FlashGeometry, source: string): void {
  const fail = (what: string) => {
    throw new FormatError(`${source}: flash geometry is inconsistent: ${what}`, source);
  };
  if (geometry.size <= 0) fail('device size is 0');
  if (geometry.pageSize <= 0 || (geometry.pageSize & 3) !== 0) fail(`page size ${geometry.pageSize} is not a positive multiple of 4`);
  if (geometry.sectors.length === 0) fail('no sectors');
  let next = geometry.start;
  for (const run of geometry.sectors) {
    if (run.address !== next) fail(`sector run at ${hex32(run.address)} should start at ${hex32(next)}`);
    if (run.size <= 0 || run.count <= 0) fail(`sector run at ${hex32(run.address)} is empty`);
    if (run.size % geometry.pageSize !== 0) fail(`sector size ${run.size} is not a multiple of the page size ${geometry.pageSize}`);
    next = run.address + run.size * run.count;
  }
  if (next !== geometry.start + geometry.size) {
    fail(`sectors end at ${hex32(next)} but the device ends at ${hex32(geometry.start + geometry.size)}`);
  }
}

function formatSize(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes / (1 << 10)} KiB`;
  return `${bytes} B`;
}

/** A human-readable, multi-line description of an algorithm: geometry, routines, RAM need. */
export function describeAlgorithm(algo: FlashAlgorithm): string {
  const g = algo.geometry;
  const lines = [
    `${algo.name} (${algo.format})`,
    `  flash      ${hex32(g.start)}..${hex32(g.start + g.size - 1)}  ${formatSize(g.size)}`,
    `  page       ${formatSize(g.pageSize)}, erased value 0x${g.erasedValue.toString(16).padStart(2, '0')}`,
    `  sectors    ${g.sectors.map((r) => `${r.count} x ${formatSize(r.size)} at ${hex32(r.address)}`).join(', ')}`,
    `  code+data  ${algo.blob.length} bytes, ${algo.loadAddress === undefined ? 'position independent' : `at ${hex32(algo.loadAddress)}`}` +
      (algo.staticBaseOffset === undefined ? '' : `, static base +0x${algo.staticBaseOffset.toString(16)}`),
    `  functions  ${Object.entries(algo.functions)
      .map(([name, offset]) => `${name}@+0x${(offset as number).toString(16)}`)
      .join(' ')}`,
    `  timeouts   init ${algo.timeouts.init} ms, erase sector ${algo.timeouts.eraseSector} ms, program page ${algo.timeouts.programPage} ms, erase chip ${algo.timeouts.eraseChip} ms`,
  ];
  return lines.join('\n');
}
