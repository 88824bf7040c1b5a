/**
 * Synthetic flash algorithm files shaped like real ones, built with the test
 * ELF writer. Each builder returns the file plus the facts a test asserts.
 */
import { SHF, SHT, STB, STT, STV, flashDeviceBytes, words, writeElf, type FlashDeviceSpec, type SectionSpec, type SymbolSpec } from '../helpers/elf-writer.js';

/** Thumb code filler: recognisable, never confused with zero fill. */
export function code(length: number, seed = 0x46): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed + i * 7) & 0xff || 1);
}

/** Entry points of the Alif-like FLM, offsets in PrgCode (Thumb bit not set here). */
export const ALIF_ENTRIES = { Init: 0x0, UnInit: 0x1a0, EraseChip: 0x210, EraseSector: 0x300, ProgramPage: 0x468, BlankCheck: 0x5f0, Verify: 0x600 };

export const ALIF_DEVICE: FlashDeviceSpec = {
  name: 'Ensemble OSPI1 Flash (IS25WX256)',
  type: 5,
  address: 0xc0000000,
  size: 32 << 20,
  pageSize: 256,
  erasedValue: 0xff,
  programPageTimeout: 10000,
  eraseSectorTimeout: 30000,
  sectors: [[0x1000, 0]],
  fullArray: true,
};

/**
 * An FLM shaped like Alif's `Ensemble_IS25WX256.FLM` (Arm Compiler 6): PrgCode
 * 0x8F8 bytes at 0, PrgData RW 4 bytes at 0x8F8, PrgData ZI 0x74 bytes at
 * 0x8FC, DevDscr (4256 bytes) linked at the *same address as ZI*, functions
 * GLOBAL HIDDEN FUNC with the Thumb bit set, two PT_LOAD segments.
 */
export function alifLikeFlm(overrides: { device?: Partial<FlashDeviceSpec>; symbols?: SymbolSpec[]; omit?: string[] } = {}) {
  const prgCode = code(0x8f8);
  const rw = words(0x12345678);
  const device = { ...ALIF_DEVICE, ...overrides.device };
  const devDscr = flashDeviceBytes(device);
  const sections: SectionSpec[] = [
    { name: 'PrgCode', flags: SHF.ALLOC | SHF.EXECINSTR, addr: 0, data: prgCode },
    { name: 'PrgData', flags: SHF.ALLOC | SHF.WRITE, addr: 0x8f8, data: rw },
    { name: 'PrgData', type: SHT.NOBITS, flags: SHF.ALLOC | SHF.WRITE, addr: 0x8fc, size: 0x74 },
    { name: 'DevDscr', flags: SHF.ALLOC, addr: 0x8fc, data: devDscr },
  ];
  const fn = (name: string, offset: number): SymbolSpec => ({
    name,
    value: offset | 1,
    size: 0x20,
    type: STT.FUNC,
    bind: STB.GLOBAL,
    visibility: STV.HIDDEN,
    section: 'PrgCode',
  });
  const symbols: SymbolSpec[] = [
    { name: '$t', value: 0, type: STT.NOTYPE, bind: STB.LOCAL, section: 'PrgCode' },
    { name: 'FlashPrg.c', value: 0, type: STT.FILE, bind: STB.LOCAL, section: 'ABS' },
    ...Object.entries(ALIF_ENTRIES)
      .filter(([name]) => !(overrides.omit ?? []).includes(name))
      .map(([name, offset]) => fn(name, offset)),
    { name: 'FlashDevice', value: 0x8fc, size: devDscr.length, type: STT.OBJECT, bind: STB.GLOBAL, visibility: STV.DEFAULT, section: 'DevDscr' },
    ...(overrides.symbols ?? []),
  ];
  const { bytes, layout } = writeElf({
    sections,
    symbols,
    segments: [
      { sections: [0, 1, 2], flags: 7 },
      { sections: [3], flags: 4 },
    ],
  });
  return { bytes, layout, prgCode, rw, devDscr };
}

/** STM32F4-like sector map: 4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB at 0x08000000 (1 MiB). */
export const F4_DEVICE: FlashDeviceSpec = {
  name: 'STM32F4xx 1MB Flash  ',
  address: 0x08000000,
  size: 0x100000,
  pageSize: 0x400,
  programPageTimeout: 100,
  eraseSectorTimeout: 6000,
  sectors: [
    [0x4000, 0x0],
    [0x10000, 0x10000],
    [0x20000, 0x20000],
  ],
};

/**
 * A small GCC-style FLM: one PT_LOAD, FUNC symbols with DEFAULT visibility,
 * descriptor in DevDscr placed after ZI (no overlap), optional `.got`.
 */
export function smallFlm(
  options: {
    device?: FlashDeviceSpec;
    deviceSymbol?: boolean;
    extraSections?: SectionSpec[];
    functions?: Record<string, number>;
    codeAddr?: number;
  } = {},
) {
  const device = options.device ?? F4_DEVICE;
  const base = options.codeAddr ?? 0;
  const prgCode = code(0x100);
  const devDscr = flashDeviceBytes(device);
  const sections: SectionSpec[] = [
    { name: 'PrgCode', flags: SHF.ALLOC | SHF.EXECINSTR, addr: base, data: prgCode },
    { name: 'PrgData', flags: SHF.ALLOC | SHF.WRITE, addr: base + 0x100, data: words(1, 2) },
    { name: 'PrgData', type: SHT.NOBITS, flags: SHF.ALLOC | SHF.WRITE, addr: base + 0x108, size: 0x18 },
    ...(options.extraSections ?? []),
    { name: 'DevDscr', flags: SHF.ALLOC, addr: base + 0x200, data: devDscr },
  ];
  const functions = options.functions ?? { Init: 0x1, UnInit: 0x21, EraseSector: 0x41, ProgramPage: 0x61 };
  const symbols: SymbolSpec[] = Object.entries(functions).map(([name, value]) => ({ name, value: base + value, section: 'PrgCode' }));
  if (options.deviceSymbol !== false) {
    symbols.push({ name: 'FlashDevice', value: base + 0x200, size: devDscr.length, type: STT.OBJECT, section: 'DevDscr' });
  }
  return writeElf({ sections, symbols, segments: [{ sections: sections.map((_, i) => i) }] });
}
