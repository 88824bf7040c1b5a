/**
 * CMSIS flash algorithms (`.FLM` files, as shipped in CMSIS packs) turned into
 * the {@link FlashAlgorithm} model.
 *
 * An FLM is an Arm ELF executable linked at address 0 with these sections
 * (CMSIS-Pack "Flash Programming Algorithms", `FlashOS.h`):
 *
 * | section | type | what |
 * | --- | --- | --- |
 * | `PrgCode` | PROGBITS, AX | the code, at address 0 |
 * | `PrgData` | PROGBITS, WA | initialised data (RW) |
 * | `PrgData` | NOBITS, WA | zero-initialised data (ZI) |
 * | `DevDscr` | PROGBITS, A | `struct FlashDevice`: name, address, size, page size, sectors |
 *
 * The routines (`Init`, `UnInit`, `EraseSector`, `ProgramPage`, optional
 * `EraseChip`, `BlankCheck`, `Verify`) are found by symbol name. Arm Compiler
 * exports them as GLOBAL HIDDEN FUNC symbols whose value has the Thumb bit set.
 *
 * Two traps real files set, and this module avoids:
 *
 * - `DevDscr` is linked at the same address as the ZI area (it is only read
 *   by the host). Loading it would fill the ZI area with the descriptor's
 *   bytes, so the blob never contains it: ZI is zeroed.
 * - The code is position independent (Arm Compiler ROPI/RWPI): it is loaded
 *   anywhere and R9 (the static base) must point at `PrgData`.
 *
 * The descriptor decoder and the layout helpers are exported because SEGGER
 * flash loaders (see `segger.ts`) share the same sections and descriptor.
 *
 * @example
 * ```ts
 * const algo = parseFlm(await readFile('Ensemble_IS25WX256.FLM'), 'Ensemble_IS25WX256.FLM');
 * console.log(describeAlgorithm(algo));
 * // Ensemble OSPI1 Flash (IS25WX256) (flm)
 * //   flash      0xc0000000..0xc1ffffff  32 MiB
 * //   ...
 * ```
 * @module
 */
import { FormatError, RspflashError, hex32 } from '../errors.js';
import {
  checkGeometry,
  sectorCount,
  type AlgorithmFunction,
  type AlgorithmTimeouts,
  type FlashAlgorithm,
  type FlashGeometry,
  type SectorRun,
} from './algorithm.js';
import {
  EM_ARM,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_WRITE,
  SHN_LORESERVE,
  SHN_UNDEF,
  SHT_NOBITS,
  findSections,
  findSymbol,
  parseElf,
  type ElfFile,
  type ElfSection,
} from '../elf.js';

// ---------------------------------------------------------------------------
// struct FlashDevice

/** Byte offsets of the fields of `struct FlashDevice` (CMSIS `FlashOS.h`). */
const DEV = {
  Vers: 0,
  DevName: 2,
  DevType: 130,
  DevAdr: 132,
  szDev: 136,
  szPage: 140,
  Res: 144,
  valEmpty: 148,
  toProg: 152,
  toErase: 156,
  sectors: 160,
} as const;

/** Length of the `DevName` field, NUL padding included. */
const DEV_NAME_LENGTH = 128;
/** Size of `struct FlashDevice` up to its sector list. */
export const FLASH_DEVICE_HEADER_SIZE = DEV.sectors;
/** Size of one `{szSector, AddrSector}` entry. */
const SECTOR_ENTRY_SIZE = 8;
/** `SECTOR_NUM` in `FlashOS.h`: the array holds at most this many entries, terminator included. */
export const MAX_SECTOR_ENTRIES = 512;
/** Both words of the entry that ends the sector list (`SECTOR_END` in `FlashOS.h`). */
const SECTOR_END = 0xffffffff;

/** One `{szSector, AddrSector}` entry of a FlashDevice sector list. */
export interface FlashDeviceSectorEntry {
  /** `szSector`: size of each sector of this run, bytes. */
  readonly size: number;
  /** `AddrSector`: where the run starts, relative to `DevAdr`. */
  readonly offset: number;
}

/**
 * The decoded `struct FlashDevice` of a CMSIS FLM (also used by SEGGER flash
 * loaders). Field comments give the C names.
 */
export interface FlashDeviceDescriptor {
  /** `Vers`: driver version, e.g. 0x0101. */
  readonly version: number;
  /** `DevName`, up to its first NUL, trimmed. */
  readonly name: string;
  /** `DevType`: 1 on-chip, 2 external 8-bit, 3 external 16-bit, 4 external 32-bit, 5 external SPI. */
  readonly type: number;
  /** `DevAdr`: first address of the device. */
  readonly address: number;
  /** `szDev`: size of the device in bytes. */
  readonly size: number;
  /** `szPage`: ProgramPage programs at most this many bytes per call. */
  readonly pageSize: number;
  /** `Res`: reserved. */
  readonly reserved: number;
  /** `valEmpty`: content of erased memory, usually 0xFF. */
  readonly erasedValue: number;
  /** `toProg`: ProgramPage timeout, ms. */
  readonly programPageTimeout: number;
  /** `toErase`: EraseSector timeout, ms. */
  readonly eraseSectorTimeout: number;
  /** The sector list without its terminator. */
  readonly sectors: readonly FlashDeviceSectorEntry[];
}

/**
 * Decodes a `struct FlashDevice` from `bytes` (which start at the struct).
 *
 * @param bytes The descriptor's bytes, at least up to the sector list's terminator.
 * @param source File name for messages.
 * @param fileOffset File offset of `bytes[0]`, so errors point into the file.
 * @throws A {@link FormatError} if the bytes end before the terminator
 *   `{0xFFFFFFFF, 0xFFFFFFFF}`, or the list has more than {@link MAX_SECTOR_ENTRIES} entries.
 */
export function decodeFlashDevice(bytes: Uint8Array, source: string, fileOffset = 0): FlashDeviceDescriptor {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < FLASH_DEVICE_HEADER_SIZE) {
    throw new FormatError(
      `${source}: FlashDevice descriptor is ${bytes.length} bytes, shorter than its ${FLASH_DEVICE_HEADER_SIZE}-byte header`,
      source,
      fileOffset,
    );
  }
  const u32 = (at: number) => view.getUint32(at, true);
  const nameBytes = bytes.subarray(DEV.DevName, DEV.DevName + DEV_NAME_LENGTH);
  const nul = nameBytes.indexOf(0);
  // DevName is plain ASCII in practice; latin1 never fails to decode.
  const name = new TextDecoder('latin1').decode(nul < 0 ? nameBytes : nameBytes.subarray(0, nul)).trim();

  const sectors: FlashDeviceSectorEntry[] = [];
  for (let i = 0; ; i++) {
    const at = DEV.sectors + i * SECTOR_ENTRY_SIZE;
    if (i >= MAX_SECTOR_ENTRIES) {
      throw new FormatError(
        `${source}: FlashDevice sector list has no {0xFFFFFFFF, 0xFFFFFFFF} terminator within ${MAX_SECTOR_ENTRIES} entries`,
        source,
        fileOffset + DEV.sectors,
      );
    }
    if (at + SECTOR_ENTRY_SIZE > bytes.length) {
      throw new FormatError(
        `${source}: FlashDevice sector list runs past the end of the descriptor after ${i} entries (no {0xFFFFFFFF, 0xFFFFFFFF} terminator)`,
        source,
        fileOffset + at,
      );
    }
    const size = u32(at);
    const offset = u32(at + 4);
    if (size === SECTOR_END && offset === SECTOR_END) break;
    sectors.push({ size, offset });
  }

  return {
    version: view.getUint16(DEV.Vers, true),
    name,
    type: view.getUint16(DEV.DevType, true),
    address: u32(DEV.DevAdr),
    size: u32(DEV.szDev),
    pageSize: u32(DEV.szPage),
    reserved: u32(DEV.Res),
    erasedValue: view.getUint8(DEV.valEmpty),
    programPageTimeout: u32(DEV.toProg),
    eraseSectorTimeout: u32(DEV.toErase),
    sectors,
  };
}

/**
 * Finds and decodes the FlashDevice descriptor of an FLM or SEGGER loader:
 * the symbol `FlashDevice` (read from its section at its value), else the
 * start of the section `DevDscr`.
 *
 * @throws A {@link FormatError} if neither exists or the descriptor is cut short.
 */
export function readFlashDevice(elf: ElfFile): FlashDeviceDescriptor {
  const source = elf.source;
  const symbol = findSymbol(elf, 'FlashDevice');
  let section: ElfSection | undefined;
  let offsetInSection = 0;
  if (symbol !== undefined && symbol.sectionIndex !== SHN_UNDEF && symbol.sectionIndex < SHN_LORESERVE) {
    section = elf.sections[symbol.sectionIndex];
    if (section !== undefined) offsetInSection = symbol.value - section.addr;
    if (section?.data === undefined || offsetInSection < 0 || offsetInSection >= section.size) {
      throw new FormatError(
        `${source}: symbol FlashDevice (${hex32(symbol.value)}) is not inside the bytes of its section ${section ? `'${section.name}'` : symbol.sectionIndex}`,
        source,
        section?.offset,
      );
    }
  } else {
    section = findSections(elf, 'DevDscr').find((s) => s.data !== undefined);
  }
  if (section?.data === undefined) {
    throw new FormatError(
      `${source}: no flash device descriptor (neither a FlashDevice symbol nor a DevDscr section); is this a CMSIS flash algorithm?`,
      source,
    );
  }
  return decodeFlashDevice(section.data.subarray(offsetInSection), source, section.offset + offsetInSection);
}

/**
 * Turns a descriptor into a {@link FlashGeometry}: each sector entry starts a
 * run of equal sectors that lasts until the next entry (or the end of the
 * device); `AddrSector` is relative to `DevAdr`.
 *
 * @example
 * ```ts
 * // DevAdr 0x08000000, szDev 1 MiB, sectors {0x4000, 0}, {0x10000, 0x10000}, {0x20000, 0x20000}
 * geometryOf(device, 'f4.flm').sectors;
 * // [{address: 0x08000000, size: 0x4000, count: 4},
 * //  {address: 0x08010000, size: 0x10000, count: 1},
 * //  {address: 0x08020000, size: 0x20000, count: 7}]
 * ```
 * @throws A {@link FormatError} if runs are not ascending, do not divide evenly
 *   into sectors, or do not cover the device ({@link checkGeometry}).
 */
export function geometryOf(device: FlashDeviceDescriptor, source: string): FlashGeometry {
  if (device.address + device.size > 2 ** 32) {
    throw new FormatError(
      `${source}: flash device at ${hex32(device.address)} of ${device.size} bytes runs past the end of the 32-bit address space`,
      source,
    );
  }
  const runs: SectorRun[] = [];
  device.sectors.forEach((entry, i) => {
    const end = device.sectors[i + 1]?.offset ?? device.size;
    const where = `sector entry ${i} {size 0x${entry.size.toString(16)}, address +0x${entry.offset.toString(16)}}`;
    if (entry.size === 0) throw new FormatError(`${source}: ${where} has sector size 0`, source);
    if (end <= entry.offset) {
      throw new FormatError(`${source}: ${where} does not end before the next entry or the end of the device (+0x${end.toString(16)})`, source);
    }
    if ((end - entry.offset) % entry.size !== 0) {
      throw new FormatError(
        `${source}: ${where} covers 0x${(end - entry.offset).toString(16)} bytes up to +0x${end.toString(16)}, not a whole number of sectors`,
        source,
      );
    }
    runs.push({ address: device.address + entry.offset, size: entry.size, count: (end - entry.offset) / entry.size });
  });
  const geometry: FlashGeometry = {
    start: device.address,
    size: device.size,
    pageSize: device.pageSize,
    erasedValue: device.erasedValue,
    sectors: runs,
  };
  checkGeometryAsFormatError(geometry, source);
  return geometry;
}

/** {@link checkGeometry}, but throwing a {@link FormatError} (the file is at fault, not the caller). */
export function checkGeometryAsFormatError(geometry: FlashGeometry, source: string): void {
  try {
    checkGeometry(geometry, source);
  } catch (err) {
    if (err instanceof RspflashError) throw new FormatError(err.message, source, undefined, { cause: err });
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Timeouts

/** Init/UnInit timeout: CMSIS gives none; peers use 2–5 s. */
export const INIT_TIMEOUT_MS = 5_000;
/** ProgramPage timeout when the descriptor's `toProg` is 0. */
export const DEFAULT_PROGRAM_PAGE_TIMEOUT_MS = 1_000;
/** EraseSector timeout when the descriptor's `toErase` is 0. */
export const DEFAULT_ERASE_SECTOR_TIMEOUT_MS = 5_000;
/** Chip erase never gets less than a minute… */
export const MIN_ERASE_CHIP_TIMEOUT_MS = 60_000;
/** …nor more than 15 minutes: the worst data-sheet chip erase of large serial NOR (1 Gbit) is a few minutes. */
export const MAX_ERASE_CHIP_TIMEOUT_MS = 900_000;

/**
 * Per-call timeouts from a descriptor. CMSIS gives only `toProg` and
 * `toErase`; the rest is chosen here:
 *
 * - `init`: {@link INIT_TIMEOUT_MS}.
 * - `programPage`: `toProg` (or {@link DEFAULT_PROGRAM_PAGE_TIMEOUT_MS} if 0).
 * - `eraseSector`: `toErase` (or {@link DEFAULT_ERASE_SECTOR_TIMEOUT_MS} if 0).
 * - `eraseChip`: as long as erasing every sector one by one would take
 *   (`toErase` × sectors), but at least {@link MIN_ERASE_CHIP_TIMEOUT_MS} and
 *   at most {@link MAX_ERASE_CHIP_TIMEOUT_MS}. A chip erase is much faster
 *   than that product on large devices (8192 × 30 s for a 32 MiB OSPI NOR),
 *   hence the cap.
 */
export function timeoutsOf(device: FlashDeviceDescriptor, sectors: number): AlgorithmTimeouts {
  const programPage = device.programPageTimeout || DEFAULT_PROGRAM_PAGE_TIMEOUT_MS;
  const eraseSector = device.eraseSectorTimeout || DEFAULT_ERASE_SECTOR_TIMEOUT_MS;
  return {
    init: INIT_TIMEOUT_MS,
    programPage,
    eraseSector,
    eraseChip: Math.min(Math.max(eraseSector * sectors, MIN_ERASE_CHIP_TIMEOUT_MS), MAX_ERASE_CHIP_TIMEOUT_MS),
  };
}

// ---------------------------------------------------------------------------
// Blob layout

/** Largest blob accepted: an algorithm runs from target RAM, which is never this big. */
export const MAX_ALGORITHM_SIZE = 16 << 20;

/** The code and data of an algorithm ELF laid out as one contiguous blob. */
export interface AlgorithmLayout {
  /** Bytes to load: every loaded section at `address - base`, NOBITS (ZI) zeroed, gaps zeroed. */
  readonly blob: Uint8Array;
  /** Link address of `blob[0]` (0 for an FLM). */
  readonly base: number;
  /** The sections that went into the blob, in address order. */
  readonly sections: readonly ElfSection[];
  /** Offset of the first writable section (RW, else ZI): the static base (R9); `undefined` if there is none. */
  readonly staticBaseOffset: number | undefined;
}

/**
 * Lays out the allocated sections of an algorithm ELF into one blob, leaving
 * out the flash device descriptor (the `DevDscr` section, or the section that
 * holds only the `FlashDevice` symbol): the host reads it, the target never
 * does, and in real FLMs it overlaps the ZI area.
 *
 * @throws A {@link FormatError} if there is no executable section, loaded
 *   sections overlap each other, or the blob would exceed {@link MAX_ALGORITHM_SIZE}.
 */
export function layoutAlgorithm(elf: ElfFile): AlgorithmLayout {
  const source = elf.source;
  const descriptorSection = descriptorSectionIndex(elf);
  const loaded = elf.sections
    .filter((s) => (s.flags & SHF_ALLOC) !== 0 && s.size > 0 && s.index !== 0)
    .filter((s) => s.name !== 'DevDscr' && s.index !== descriptorSection)
    .sort((a, b) => a.addr - b.addr || a.index - b.index);
  if (!loaded.some((s) => (s.flags & SHF_EXECINSTR) !== 0)) {
    throw new FormatError(`${source}: no code: no allocated executable section (PrgCode) in the file`, source);
  }
  const base = loaded[0]!.addr;
  let end = base;
  let previous: ElfSection | undefined;
  for (const s of loaded) {
    if (previous !== undefined && s.addr < previous.addr + previous.size) {
      throw new FormatError(
        `${source}: sections [${previous.index}] '${previous.name}' (${hex32(previous.addr)}, ${previous.size} bytes) and [${s.index}] '${s.name}' (${hex32(s.addr)}) overlap`,
        source,
        s.offset,
      );
    }
    end = Math.max(end, s.addr + s.size);
    previous = s;
  }
  if (end - base > MAX_ALGORITHM_SIZE) {
    throw new FormatError(
      `${source}: the loaded sections span ${end - base} bytes (${hex32(base)}..${hex32(end - 1)}), more than a flash algorithm can (${MAX_ALGORITHM_SIZE})`,
      source,
    );
  }
  const blob = new Uint8Array(end - base);
  for (const s of loaded) {
    if (s.type !== SHT_NOBITS && s.data !== undefined) blob.set(s.data, s.addr - base);
  }
  const writable = loaded.find((s) => (s.flags & SHF_WRITE) !== 0);
  return { blob, base, sections: loaded, staticBaseOffset: writable === undefined ? undefined : writable.addr - base };
}

/** The section that holds only the FlashDevice descriptor, when it is not called DevDscr. */
function descriptorSectionIndex(elf: ElfFile): number | undefined {
  const symbol = findSymbol(elf, 'FlashDevice');
  if (symbol === undefined || symbol.sectionIndex === SHN_UNDEF || symbol.sectionIndex >= SHN_LORESERVE) return undefined;
  const section = elf.sections[symbol.sectionIndex];
  if (section === undefined) return undefined;
  // Only a section of its own: never drop code or data that merely contains the descriptor.
  const own = (section.flags & (SHF_EXECINSTR | SHF_WRITE)) === 0 && section.addr === symbol.value;
  return own ? section.index : undefined;
}

/**
 * Offset in the blob of the routine at link address `address` (Thumb bit
 * cleared), checked to lie in an executable section of the blob.
 *
 * @param what Names the routine in the error message (`symbol EraseSector`).
 * @throws A {@link FormatError} if the address is outside the loaded code.
 */
export function codeOffset(layout: AlgorithmLayout, address: number, what: string, source: string): number {
  const target = (address & ~1) >>> 0;
  const inCode = layout.sections.some(
    (s) => (s.flags & SHF_EXECINSTR) !== 0 && target >= s.addr && target < s.addr + s.size,
  );
  if (!inCode) {
    throw new FormatError(`${source}: ${what} at ${hex32(address)} is not inside the algorithm's code`, source);
  }
  return target - layout.base;
}

/**
 * Offset in the blob of the routine named by a symbol, or `undefined` when
 * the file has no defined symbol of that name.
 */
export function symbolOffset(elf: ElfFile, layout: AlgorithmLayout, name: string): number | undefined {
  const symbol = findSymbol(elf, name);
  if (symbol === undefined || symbol.sectionIndex === SHN_UNDEF) return undefined;
  return codeOffset(layout, symbol.value, `symbol ${name}`, elf.source);
}

/**
 * Offsets of 32-bit words that hold link-time addresses and must be moved by
 * the load address: every word of a `.got` section (GCC `-fPIC
 * -msingle-pic-base` builds keep their global offset table there when the
 * linker script does not merge it into `PrgData`). Arm Compiler FLMs (ROPI/RWPI)
 * have none.
 */
export function gotRelocations(layout: AlgorithmLayout): number[] {
  const out: number[] = [];
  for (const s of layout.sections) {
    if (s.name !== '.got' || s.type === SHT_NOBITS) continue;
    for (let at = s.addr - layout.base; at + 4 <= s.addr - layout.base + s.size; at += 4) out.push(at);
  }
  return out;
}

/** Throws unless the ELF is for 32-bit Arm. */
export function requireArm(elf: ElfFile, kind: string): void {
  if (elf.header.machine !== EM_ARM) {
    throw new FormatError(
      `${elf.source}: is an ELF file for machine ${elf.header.machine}, not Arm (${EM_ARM}); a ${kind} must be Arm code`,
      elf.source,
      18,
    );
  }
}

// ---------------------------------------------------------------------------
// FLM

/** CMSIS routines and whether an FLM must have them. */
const FLM_FUNCTIONS: readonly { name: AlgorithmFunction; required: boolean }[] = [
  // FlashOS.h calls Init and UnInit mandatory too, but some vendors' FLMs omit
  // them and every peer copes; only the two we cannot program without are required.
  { name: 'Init', required: false },
  { name: 'UnInit', required: false },
  { name: 'EraseSector', required: true },
  { name: 'ProgramPage', required: true },
  { name: 'EraseChip', required: false },
  { name: 'BlankCheck', required: false },
  { name: 'Verify', required: false },
];

/**
 * Reads a CMSIS `.FLM` flash algorithm.
 *
 * - `blob`: `PrgCode`, `PrgData` RW and zeroed ZI laid out by address (the
 *   code is linked at 0, so blob offset = link address); never `DevDscr`.
 * - `functions`: the CMSIS routines found by symbol, Thumb bit cleared;
 *   `EraseSector` and `ProgramPage` are required.
 * - `staticBaseOffset`: address of `PrgData` (R9 for ROPI/RWPI code).
 * - `loadAddress`: `undefined` (position independent) when linked at 0,
 *   else the link address (such code only runs there).
 * - `relocations`: words of a `.got` section, if any (see {@link gotRelocations});
 *   none when the code is linked elsewhere than 0 (it then runs where it was linked).
 * - `geometry` from `struct FlashDevice`, `timeouts` from {@link timeoutsOf}.
 * - `name`: `DevName`.
 *
 * @param bytes The file's bytes.
 * @param source The file name, for messages.
 * @throws A {@link FormatError} for a malformed ELF, a missing or inconsistent
 *   descriptor, or a missing `EraseSector`/`ProgramPage`.
 */
export function parseFlm(bytes: Uint8Array, source: string): FlashAlgorithm {
  const elf = parseElf(bytes, source);
  requireArm(elf, 'flash algorithm');
  const device = readFlashDevice(elf);
  const geometry = geometryOf(device, source);
  const layout = layoutAlgorithm(elf);
  const functions: Partial<Record<AlgorithmFunction, number>> = {};
  for (const { name, required } of FLM_FUNCTIONS) {
    const offset = symbolOffset(elf, layout, name);
    if (offset !== undefined) functions[name] = offset;
    else if (required) {
      throw new FormatError(`${source}: no ${name} function (symbol '${name}'); a CMSIS flash algorithm must export it`, source);
    }
  }
  return {
    name: device.name || basename(source),
    format: 'flm',
    blob: layout.blob,
    loadAddress: layout.base === 0 ? undefined : layout.base,
    functions,
    staticBaseOffset: layout.staticBaseOffset,
    relocations: layout.base === 0 ? gotRelocations(layout) : [],
    stackSize: undefined,
    geometry,
    timeouts: timeoutsOf(device, sectorCount(geometry)),
    deviceType: device.type,
  };
}

/** `dir/Algo.FLM` → `Algo.FLM`, for a name when DevName is empty. */
export function basename(source: string): string {
  return source.split(/[\\/]/).pop() || source;
}
