/**
 * SEGGER flash loaders (J-Link "Open Flashloader" ELF files) turned into the
 * {@link FlashAlgorithm} model. Two generations exist, both ELF files with the
 * CMSIS sections (`PrgCode`, `PrgData`, `DevDscr`) and `struct FlashDevice`:
 *
 * - **Legacy OFL**: a `SEGGER_OFL_Api` table of function pointers at the
 *   start of `PrgCode`, in this order (NULL = absent):
 *   `pfFeedWatchdog, pfInit, pfUnInit, pfEraseSector, pfProgramPage,
 *   pfBlankCheck, pfEraseChip, pfVerify, pfSEGGERCalcCRC, pfSEGGERRead,
 *   pfSEGGERProgram, pfSEGGERErase, pfSEGGERStart`.
 * - **SFL** (J-Link 7.80 and later): exported symbols `SEGGER_FL_Prepare`,
 *   `SEGGER_FL_Restore`, `SEGGER_FL_Program`, `SEGGER_FL_Erase` (mandatory)
 *   and `SEGGER_FL_EraseChip`, `SEGGER_FL_CheckBlank`, `SEGGER_FL_Verify`,
 *   `SEGGER_FL_Read`, `SEGGER_FL_CalcCRC`, `SEGGER_FL_Start`,
 *   `SEGGER_FL_GetFlashInfo` (optional).
 *
 * Blob layout, descriptor, geometry and timeouts are those of a CMSIS FLM
 * (shared with `flm.ts`).
 *
 * @example
 * ```ts
 * const bytes = await readFile('MyDevice_OSPI.elf');
 * if (isSeggerLoader(parseElf(bytes, 'MyDevice_OSPI.elf'))) {
 *   const algo = parseSeggerLoader(bytes, 'MyDevice_OSPI.elf');
 *   algo.format; // 'segger-sfl' or 'segger-ofl'
 * }
 * ```
 * @module
 */
import { FormatError, hex32 } from '../errors.js';
import { sectorCount, type AlgorithmFunction, type FlashAlgorithm } from './algorithm.js';
import { SHN_UNDEF, findSymbol, parseElf, readAt, type ElfFile } from '../elf.js';
import {
  basename,
  codeOffset,
  geometryOf,
  gotRelocations,
  layoutAlgorithm,
  readFlashDevice,
  requireArm,
  symbolOffset,
  timeoutsOf,
} from './flm.js';

/** Symbol of the legacy OFL API table. */
export const OFL_API_SYMBOL = 'SEGGER_OFL_Api';

/**
 * The entries of `SEGGER_OFL_Api`, in table order, and the model routine each
 * maps to (`undefined`: rspflash does not call it).
 */
export const OFL_API_ENTRIES: readonly {
  /** Member name in SEGGER's `FlashOS.h` extension. */
  readonly entry: string;
  /** The model routine it provides, if rspflash calls it. */
  readonly fn: AlgorithmFunction | undefined;
}[] = [
  { entry: 'pfFeedWatchdog', fn: undefined },
  { entry: 'pfInit', fn: 'Init' },
  { entry: 'pfUnInit', fn: 'UnInit' },
  { entry: 'pfEraseSector', fn: 'EraseSector' },
  { entry: 'pfProgramPage', fn: 'ProgramPage' },
  { entry: 'pfBlankCheck', fn: 'BlankCheck' },
  { entry: 'pfEraseChip', fn: 'EraseChip' },
  { entry: 'pfVerify', fn: 'Verify' },
  { entry: 'pfSEGGERCalcCRC', fn: 'CalcCRC' },
  { entry: 'pfSEGGERRead', fn: 'Read' },
  { entry: 'pfSEGGERProgram', fn: 'Program' },
  { entry: 'pfSEGGERErase', fn: 'Erase' },
  { entry: 'pfSEGGERStart', fn: undefined },
];

/**
 * The SFL symbols and the model routines each maps to. `SEGGER_FL_Program`
 * maps to both `Program` and `ProgramPage`: its signature `(addr, n, src)` is
 * ProgramPage's, it just accepts more than a page. `SEGGER_FL_Start` and
 * `SEGGER_FL_GetFlashInfo` have no counterpart (the descriptor gives the
 * geometry).
 */
export const SFL_SYMBOLS: readonly {
  /** Exported symbol name. */
  readonly symbol: string;
  /** Model routines it provides. */
  readonly fns: readonly AlgorithmFunction[];
  /** Whether a loader without it is rejected. */
  readonly required: boolean;
}[] = [
  { symbol: 'SEGGER_FL_Prepare', fns: ['Init'], required: true },
  { symbol: 'SEGGER_FL_Restore', fns: ['UnInit'], required: true },
  { symbol: 'SEGGER_FL_Program', fns: ['Program', 'ProgramPage'], required: true },
  { symbol: 'SEGGER_FL_Erase', fns: ['Erase'], required: true },
  { symbol: 'SEGGER_FL_EraseChip', fns: ['EraseChip'], required: false },
  { symbol: 'SEGGER_FL_CheckBlank', fns: ['BlankCheck'], required: false },
  { symbol: 'SEGGER_FL_Verify', fns: ['Verify'], required: false },
  { symbol: 'SEGGER_FL_Read', fns: ['Read'], required: false },
  { symbol: 'SEGGER_FL_CalcCRC', fns: ['CalcCRC'], required: false },
];

/** Which SEGGER loader generation an ELF file is, if any. */
export function seggerLoaderKind(elf: ElfFile): 'segger-sfl' | 'segger-ofl' | undefined {
  const defined = (name: string) => {
    const s = findSymbol(elf, name);
    return s !== undefined && s.sectionIndex !== SHN_UNDEF;
  };
  if (elf.symbols.some((s) => s.name.startsWith('SEGGER_FL_') && s.sectionIndex !== SHN_UNDEF)) return 'segger-sfl';
  if (defined(OFL_API_SYMBOL)) return 'segger-ofl';
  return undefined;
}

/** True if the ELF file exports `SEGGER_FL_*` routines or a `SEGGER_OFL_Api` table. */
export function isSeggerLoader(elf: ElfFile): boolean {
  return seggerLoaderKind(elf) !== undefined;
}

/**
 * Reads a SEGGER flash loader (SFL or legacy OFL) from its ELF file.
 *
 * - SFL: routines by symbol (see {@link SFL_SYMBOLS}). The model has no
 *   `EraseSector` for an SFL loader: erase with `Erase(addr, index, 1)`.
 * - OFL: routines from the `SEGGER_OFL_Api` table (see {@link OFL_API_ENTRIES});
 *   `EraseSector` and `ProgramPage` are required. The table's non-NULL words
 *   are listed in `relocations`, so the copy in target RAM holds run-time
 *   addresses like the rest of the loaded code expects.
 * - Everything else as `parseFlm` (`flm.ts`): blob without `DevDscr`, static base
 *   at `PrgData`, geometry from `FlashDevice`, name from `DevName`.
 *
 * @throws A {@link FormatError} if the file is not a SEGGER loader, a mandatory
 *   routine is missing, the API table is cut short or points outside the code.
 */
export function parseSeggerLoader(bytes: Uint8Array, source: string): FlashAlgorithm {
  const elf = parseElf(bytes, source);
  requireArm(elf, 'SEGGER flash loader');
  const kind = seggerLoaderKind(elf);
  if (kind === undefined) {
    throw new FormatError(
      `${source}: not a SEGGER flash loader (no SEGGER_FL_* symbols and no ${OFL_API_SYMBOL} table)`,
      source,
    );
  }
  const device = readFlashDevice(elf);
  const geometry = geometryOf(device, source);
  const layout = layoutAlgorithm(elf);
  const functions: Partial<Record<AlgorithmFunction, number>> = {};
  const relocations = layout.base === 0 ? gotRelocations(layout) : [];

  if (kind === 'segger-sfl') {
    for (const { symbol, fns, required } of SFL_SYMBOLS) {
      const offset = symbolOffset(elf, layout, symbol);
      if (offset === undefined) {
        if (required) throw new FormatError(`${source}: SEGGER flash loader has no ${symbol} (mandatory)`, source);
        continue;
      }
      for (const fn of fns) functions[fn] = offset;
    }
  } else {
    const table = findSymbol(elf, OFL_API_SYMBOL)!;
    const size = OFL_API_ENTRIES.length * 4;
    const bytesOfTable = readAt(elf, table.value, size, elf.sections[table.sectionIndex]);
    if (bytesOfTable === undefined) {
      throw new FormatError(
        `${source}: ${OFL_API_SYMBOL} at ${hex32(table.value)} does not hold ${OFL_API_ENTRIES.length} function pointers (${size} bytes) in its section`,
        source,
      );
    }
    const tableOffset = table.value - layout.base;
    const inBlob = tableOffset >= 0 && tableOffset + size <= layout.blob.length;
    const view = new DataView(bytesOfTable.buffer, bytesOfTable.byteOffset, bytesOfTable.byteLength);
    OFL_API_ENTRIES.forEach(({ entry, fn }, i) => {
      const pointer = view.getUint32(i * 4, true);
      if (pointer === 0) return;
      if (inBlob && layout.base === 0) relocations.push(tableOffset + i * 4);
      if (fn === undefined) return;
      functions[fn] = codeOffset(layout, pointer, `${OFL_API_SYMBOL}.${entry}`, source);
    });
    for (const fn of ['EraseSector', 'ProgramPage'] as const) {
      if (functions[fn] === undefined) {
        throw new FormatError(`${source}: ${OFL_API_SYMBOL} has no ${fn} (pf${fn} is NULL); it is mandatory`, source);
      }
    }
  }

  return {
    name: device.name || basename(source),
    format: kind,
    blob: layout.blob,
    loadAddress: layout.base === 0 ? undefined : layout.base,
    functions,
    staticBaseOffset: layout.staticBaseOffset,
    relocations: [...new Set(relocations)].sort((a, b) => a - b),
    stackSize: undefined,
    geometry,
    timeouts: timeoutsOf(device, sectorCount(geometry)),
    deviceType: device.type,
  };
}
