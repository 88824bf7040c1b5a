import { describe, expect, it } from 'vitest';
import { parseElf } from '../../lib/elf.js';
import { OFL_API_ENTRIES, isSeggerLoader, parseSeggerLoader, seggerLoaderKind } from '../../lib/algo/segger.js';
import { SHF, SHT, STT, STV, flashDeviceBytes, words, writeElf, type SymbolSpec } from '../helpers/elf-writer.js';
import { formatError } from '../helpers/errors.js';
import { F4_DEVICE, code, smallFlm } from './synthetic.js';

/** A loader: PrgCode (0x400 bytes) at 0, RW, ZI, DevDscr over ZI; `prefix` goes first in PrgCode. */
function loader(symbols: SymbolSpec[], prefix?: Uint8Array) {
  const prgCode = code(0x400);
  if (prefix) prgCode.set(prefix, 0);
  const devDscr = flashDeviceBytes({ ...F4_DEVICE, name: 'SEGGER test loader' });
  return writeElf({
    sections: [
      { name: 'PrgCode', flags: SHF.ALLOC | SHF.EXECINSTR, addr: 0, data: prgCode },
      { name: 'PrgData', flags: SHF.ALLOC | SHF.WRITE, addr: 0x400, data: words(0xabcd) },
      { name: 'PrgData', type: SHT.NOBITS, flags: SHF.ALLOC | SHF.WRITE, addr: 0x404, size: 0x40 },
      { name: 'DevDscr', flags: SHF.ALLOC, addr: 0x404, data: devDscr },
    ],
    symbols: [...symbols, { name: 'FlashDevice', value: 0x404, type: STT.OBJECT, section: 'DevDscr' }],
    segments: [{ sections: [0, 1, 2] }, { sections: [3] }],
  }).bytes;
}

const fn = (name: string, offset: number): SymbolSpec => ({ name, value: offset | 1, type: STT.FUNC, visibility: STV.HIDDEN, section: 'PrgCode' });

describe('SEGGER SFL loaders', () => {
  const sfl = loader([
    fn('SEGGER_FL_Prepare', 0x100),
    fn('SEGGER_FL_Restore', 0x120),
    fn('SEGGER_FL_Program', 0x140),
    fn('SEGGER_FL_Erase', 0x180),
    fn('SEGGER_FL_EraseChip', 0x1c0),
    fn('SEGGER_FL_CheckBlank', 0x200),
    fn('SEGGER_FL_Verify', 0x240),
    fn('SEGGER_FL_Read', 0x280),
    fn('SEGGER_FL_CalcCRC', 0x2c0),
    fn('SEGGER_FL_Start', 0x300),
    fn('SEGGER_FL_GetFlashInfo', 0x340),
  ]);

  it('are recognised by their SEGGER_FL_* symbols', () => {
    expect(seggerLoaderKind(parseElf(sfl, 'x.elf'))).toBe('segger-sfl');
    expect(isSeggerLoader(parseElf(smallFlm().bytes, 'x.flm'))).toBe(false);
  });

  it('map Prepare/Restore/Program/Erase/… onto the model, Program doubling as ProgramPage', () => {
    const algo = parseSeggerLoader(sfl, 'sfl.elf');
    expect(algo.format).toBe('segger-sfl');
    expect(algo.name).toBe('SEGGER test loader');
    expect(algo.functions).toEqual({
      Init: 0x100,
      UnInit: 0x120,
      Program: 0x140,
      ProgramPage: 0x140,
      Erase: 0x180,
      EraseChip: 0x1c0,
      BlankCheck: 0x200,
      Verify: 0x240,
      Read: 0x280,
      CalcCRC: 0x2c0,
    });
    expect(algo.functions.EraseSector).toBeUndefined();
  });

  it('lay out like an FLM: no DevDscr, ZI zeroed, R9 at PrgData, geometry from FlashDevice', () => {
    const algo = parseSeggerLoader(sfl, 'sfl.elf');
    expect(algo.blob.length).toBe(0x444);
    expect(algo.blob.subarray(0x400, 0x404)).toEqual(words(0xabcd));
    expect(algo.blob.subarray(0x404).every((b) => b === 0)).toBe(true);
    expect(algo.staticBaseOffset).toBe(0x400);
    expect(algo.relocations).toEqual([]);
    expect(algo.geometry.sectors).toHaveLength(3);
  });

  it('must export the four mandatory routines', () => {
    const bytes = loader([fn('SEGGER_FL_Prepare', 0x100), fn('SEGGER_FL_Restore', 0x120), fn('SEGGER_FL_Program', 0x140)]);
    expect(formatError(() => parseSeggerLoader(bytes, 'x.elf')).message).toMatch(/no SEGGER_FL_Erase \(mandatory\)/);
  });
});

describe('SEGGER legacy OFL loaders', () => {
  /** Table pointers by entry name (Thumb bit added), 0 for absent. */
  function table(entries: Partial<Record<string, number>>): Uint8Array {
    return words(...OFL_API_ENTRIES.map(({ entry }) => (entries[entry] === undefined ? 0 : entries[entry]! | 1)));
  }
  const api: SymbolSpec = { name: 'SEGGER_OFL_Api', value: 0, size: 52, type: STT.OBJECT, section: 'PrgCode' };

  it('read the routines from the SEGGER_OFL_Api table (NULL = absent) and relocate its words', () => {
    const bytes = loader(
      [api],
      table({ pfInit: 0x100, pfUnInit: 0x120, pfEraseSector: 0x140, pfProgramPage: 0x160, pfVerify: 0x1a0, pfSEGGERRead: 0x1c0, pfSEGGERProgram: 0x1e0, pfSEGGERStart: 0x200 }),
    );
    expect(seggerLoaderKind(parseElf(bytes, 'x.elf'))).toBe('segger-ofl');
    const algo = parseSeggerLoader(bytes, 'ofl.elf');
    expect(algo.format).toBe('segger-ofl');
    expect(algo.functions).toEqual({ Init: 0x100, UnInit: 0x120, EraseSector: 0x140, ProgramPage: 0x160, Verify: 0x1a0, Read: 0x1c0, Program: 0x1e0 });
    // Non-NULL words: pfInit(1) pfUnInit(2) pfEraseSector(3) pfProgramPage(4) pfVerify(7) pfSEGGERRead(9) pfSEGGERProgram(10) pfSEGGERStart(12).
    expect(algo.relocations).toEqual([4, 8, 12, 16, 28, 36, 40, 48]);
  });

  it('require pfEraseSector and pfProgramPage', () => {
    const bytes = loader([api], table({ pfInit: 0x100, pfEraseSector: 0x140 }));
    expect(formatError(() => parseSeggerLoader(bytes, 'x.elf')).message).toMatch(/SEGGER_OFL_Api has no ProgramPage/);
  });

  it('reject a table entry pointing outside the code', () => {
    const bytes = loader([api], table({ pfEraseSector: 0x140, pfProgramPage: 0x4000 }));
    expect(formatError(() => parseSeggerLoader(bytes, 'x.elf')).message).toMatch(/SEGGER_OFL_Api.pfProgramPage at 0x00004001 is not inside/);
  });

  it('reject a table cut short by the end of its section', () => {
    const bytes = loader([{ ...api, value: 0x3f0 }]);
    expect(formatError(() => parseSeggerLoader(bytes, 'x.elf')).message).toMatch(/does not hold 13 function pointers/);
  });
});

it('parseSeggerLoader rejects a plain FLM', () => {
  expect(formatError(() => parseSeggerLoader(smallFlm().bytes, 'x.flm')).message).toMatch(/not a SEGGER flash loader/);
});
