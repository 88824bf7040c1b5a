import { describe, expect, it } from 'vitest';
import { FormatError } from '../lib/errors.js';
import { EM_ARM, PT_LOAD, SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS, SHT_PROGBITS, findSections, findSymbol, parseElf, readAt } from '../lib/elf.js';
import { SHF, SHT, STB, STT, STV, words, writeElf } from './helpers/elf-writer.js';
import { alifLikeFlm } from './algo/synthetic.js';

function expectFormatError(fn: () => unknown, pattern: RegExp, offset?: number): FormatError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a FormatError').toBeInstanceOf(FormatError);
  const err = caught as FormatError;
  expect(err.message).toMatch(pattern);
  expect(err.code).toBe('RSPFLASH_FORMAT');
  if (offset !== undefined) expect(err.offset).toBe(offset);
  return err;
}

describe('parseElf', () => {
  it('reads the header, sections, program headers and symbols of an Arm Compiler-shaped FLM', () => {
    const { bytes, layout } = alifLikeFlm();
    const elf = parseElf(bytes, 'algo.flm');
    expect(elf.header).toMatchObject({ type: 2, machine: EM_ARM, version: 1, ehsize: 52, phentsize: 32, phnum: 2, shentsize: 40 });
    expect(elf.header.shoff).toBe(layout.shoff);

    const names = elf.sections.map((s) => s.name);
    expect(names).toEqual(['', 'PrgCode', 'PrgData', 'PrgData', 'DevDscr', '.symtab', '.strtab', '.shstrtab']);
    const [rw, zi] = findSections(elf, 'PrgData');
    expect(rw).toMatchObject({ type: SHT_PROGBITS, addr: 0x8f8, size: 4 });
    expect(rw!.data).toEqual(words(0x12345678));
    expect(zi).toMatchObject({ type: SHT_NOBITS, addr: 0x8fc, size: 0x74, data: undefined });
    const prgCode = elf.sections[1]!;
    expect(prgCode.flags).toBe(SHF_ALLOC | SHF_EXECINSTR);
    expect(prgCode.offset).toBe(layout.sectionOffsets[0]);

    expect(elf.programHeaders).toHaveLength(2);
    expect(elf.programHeaders[0]).toMatchObject({ index: 0, type: PT_LOAD, vaddr: 0, paddr: 0, filesz: 0x8fc, memsz: 0x970 });
    expect(elf.programHeaders[1]).toMatchObject({ index: 1, type: PT_LOAD, vaddr: 0x8fc, filesz: 4256, memsz: 4256 });
  });

  it('reads Thumb function symbols as GLOBAL HIDDEN FUNC with bit 0 set, and names their section', () => {
    const elf = parseElf(alifLikeFlm().bytes, 'algo.flm');
    const program = findSymbol(elf, 'ProgramPage');
    expect(program).toMatchObject({ value: 0x469, size: 0x20, type: 'FUNC', bind: 'GLOBAL', visibility: 'HIDDEN', sectionIndex: 1, sectionName: 'PrgCode' });
    expect(findSymbol(elf, 'FlashDevice')).toMatchObject({ type: 'OBJECT', sectionName: 'DevDscr', value: 0x8fc });
    expect(findSymbol(elf, 'FlashPrg.c')).toMatchObject({ type: 'FILE', bind: 'LOCAL', sectionIndex: 0xfff1, sectionName: undefined });
    expect(findSymbol(elf, 'nope')).toBeUndefined();
    // Symbols are numbered as readelf numbers them: null symbol 0 left out, locals first.
    expect(elf.symbols[0]).toMatchObject({ index: 1, name: '$t' });
  });

  it('prefers a defined global symbol over a local or undefined one of the same name', () => {
    const { bytes } = writeElf({
      sections: [{ name: '.text', flags: SHF.ALLOC | SHF.EXECINSTR, data: new Uint8Array(16) }],
      symbols: [
        { name: 'Init', value: 4, bind: STB.LOCAL, section: '.text' },
        { name: 'Init', value: 9, bind: STB.GLOBAL, section: '.text' },
        { name: 'Ext', value: 0, section: 'UND' },
        { name: 'Ext', value: 5, bind: STB.WEAK, section: '.text' },
      ],
    });
    const elf = parseElf(bytes, 'x.elf');
    expect(findSymbol(elf, 'Init')?.value).toBe(9);
    expect(findSymbol(elf, 'Ext')).toMatchObject({ value: 5, bind: 'WEAK' });
  });

  it('reads memory through allocated sections by address', () => {
    const elf = parseElf(alifLikeFlm().bytes, 'algo.flm');
    expect(readAt(elf, 0x8f8, 4)).toEqual(words(0x12345678));
    // ZI has no bytes in the file; DevDscr at the same address does.
    expect(readAt(elf, 0x8fc, 2)).toEqual(Uint8Array.of(0x01, 0x01));
    expect(readAt(elf, 0x8fa, 4, findSections(elf, 'PrgData')[0])).toBeUndefined();
  });

  it('accepts a stripped file (no .symtab) with an empty symbol list', () => {
    const { bytes } = writeElf({ sections: [{ name: '.text', data: new Uint8Array(8) }], noSymtab: true });
    expect(parseElf(bytes, 'stripped.elf').symbols).toEqual([]);
  });

  it('reads symbol types and visibilities beyond FUNC/OBJECT', () => {
    const { bytes } = writeElf({
      sections: [{ name: '.data', data: new Uint8Array(8) }],
      symbols: [
        { name: 'sec', value: 0, type: STT.SECTION, bind: STB.LOCAL, section: '.data' },
        { name: 'prot', value: 0, type: STT.OBJECT, visibility: STV.PROTECTED, section: '.data' },
        { name: 'odd', value: 0, type: 13, bind: 12, visibility: STV.INTERNAL, section: '.data' },
      ],
    });
    const elf = parseElf(bytes, 'x.elf');
    expect(findSymbol(elf, 'sec')?.type).toBe('SECTION');
    expect(findSymbol(elf, 'prot')?.visibility).toBe('PROTECTED');
    expect(findSymbol(elf, 'odd')).toMatchObject({ type: 'OTHER', bind: 'OTHER', visibility: 'INTERNAL' });
  });

  describe('rejects malformed input with a FormatError naming the problem and its offset', () => {
    const valid = () => alifLikeFlm();

    it('not ELF at all', () => {
      expectFormatError(() => parseElf(new TextEncoder().encode('hello'), 'x.bin'), /not an ELF file/, 0);
      expectFormatError(() => parseElf(new Uint8Array(0), 'empty'), /not an ELF file/, 0);
    });

    it('ELF64', () => {
      const bytes = valid().bytes;
      bytes[4] = 2;
      expectFormatError(() => parseElf(bytes, 'x.elf'), /64-bit ELF.*only 32-bit/, 4);
    });

    it('big-endian', () => {
      const bytes = valid().bytes;
      bytes[5] = 2;
      expectFormatError(() => parseElf(bytes, 'x.elf'), /big-endian.*only little-endian/, 5);
    });

    it('a header cut short', () => {
      expectFormatError(() => parseElf(valid().bytes.subarray(0, 40), 'x.elf'), /ELF header .* past the end of the file/, 0);
    });

    it('a section whose contents run past the end of the file', () => {
      const { bytes, layout } = valid();
      const v = new DataView(bytes.buffer);
      v.setUint32(layout.shoff + 1 * 40 + 20, 0x100000, true); // PrgCode sh_size
      const err = expectFormatError(() => parseElf(bytes, 'x.elf'), /section 1 contents .* past the end of the file/);
      expect(err.offset).toBe(layout.sectionOffsets[0]);
    });

    it('a section header table beyond the file', () => {
      const { bytes } = valid();
      new DataView(bytes.buffer).setUint32(32, bytes.length - 10, true);
      expectFormatError(() => parseElf(bytes, 'x.elf'), /section header table .* past the end/);
    });

    it('a program header table whose count times size overflows the file', () => {
      const { bytes } = valid();
      const v = new DataView(bytes.buffer);
      v.setUint16(44, 0xffff, true);
      v.setUint16(42, 0xffff, true);
      expectFormatError(() => parseElf(bytes, 'x.elf'), /program header table \(65535 x 65535 bytes/);
    });

    it('a segment whose file bytes run past the end', () => {
      const { bytes, layout } = valid();
      new DataView(bytes.buffer).setUint32(layout.phoff + 32 + 16, 0x7fffffff, true);
      expectFormatError(() => parseElf(bytes, 'x.elf'), /program header 1 contents/);
    });

    it('a PT_LOAD with p_filesz > p_memsz', () => {
      const { bytes, layout } = valid();
      new DataView(bytes.buffer).setUint32(layout.phoff + 20, 4, true);
      expectFormatError(() => parseElf(bytes, 'x.elf'), /p_filesz .* larger than p_memsz/, layout.phoff + 16);
    });

    it('a section name index outside .shstrtab', () => {
      const { bytes, layout } = valid();
      new DataView(bytes.buffer).setUint32(layout.shoff + 2 * 40, 0xffff, true);
      expectFormatError(() => parseElf(bytes, 'x.elf'), /section header 2 sh_name: name index 65535 is outside string table/, layout.shstrtabOffset);
    });

    it('a symbol name index outside .strtab', () => {
      const { bytes, layout } = valid();
      new DataView(bytes.buffer).setUint32(layout.symtabOffset + 16, 0x10000, true);
      expectFormatError(() => parseElf(bytes, 'x.elf'), /symbol 1 of symbol table .* name index 65536 is outside string table/);
    });

    it('a string table without a final NUL', () => {
      const { bytes, layout } = valid();
      const strtabSize = layout.shstrtabOffset - layout.strtabOffset;
      bytes[layout.strtabOffset + strtabSize - 1] = 0x41;
      expectFormatError(() => parseElf(bytes, 'x.elf'), /is not NUL-terminated/);
    });

    it('a symbol table with the wrong entry size', () => {
      const { bytes, layout } = valid();
      const symtabHeader = layout.shoff + 5 * 40;
      new DataView(bytes.buffer).setUint32(symtabHeader + 36, 12, true);
      expectFormatError(() => parseElf(bytes, 'x.elf'), /sh_entsize 12, expected 16/);
    });

    it('a symbol pointing at a section that does not exist', () => {
      const { bytes, layout } = valid();
      new DataView(bytes.buffer).setUint16(layout.symtabOffset + 16 + 14, 200, true);
      expectFormatError(() => parseElf(bytes, 'x.elf'), /refers to section 200, but there are only 8/);
    });

    it('e_shstrndx outside the section table', () => {
      const { bytes } = valid();
      new DataView(bytes.buffer).setUint16(50, 99, true);
      expectFormatError(() => parseElf(bytes, 'x.elf'), /e_shstrndx 99 does not name one of the 8 sections/, 50);
    });

    it('e_shstrndx naming a section that is not a string table', () => {
      const { bytes } = valid();
      new DataView(bytes.buffer).setUint16(50, 1, true);
      expectFormatError(() => parseElf(bytes, 'x.elf'), /not a string table/);
    });
  });

  it('supports extended section numbering (e_shnum 0, count in section 0)', () => {
    const { bytes, layout } = alifLikeFlm();
    const v = new DataView(bytes.buffer);
    const shnum = v.getUint16(48, true);
    const shstrndx = v.getUint16(50, true);
    v.setUint16(48, 0, true);
    v.setUint16(50, 0xffff, true);
    v.setUint32(layout.shoff + 20, shnum, true);
    v.setUint32(layout.shoff + 24, shstrndx, true);
    const elf = parseElf(bytes, 'x.elf');
    expect(elf.header.shnum).toBe(shnum);
    expect(elf.sections.map((s) => s.name)).toContain('DevDscr');
  });

  it('gives section data as views into the input (no copies)', () => {
    const { bytes } = alifLikeFlm();
    const elf = parseElf(bytes, 'x.elf');
    expect(elf.sections[1]!.data!.buffer).toBe(bytes.buffer);
    // NOBITS and NULL sections have no data.
    expect(elf.sections[0]!.data).toBeUndefined();
    expect(elf.sections.filter((s) => s.type === SHT.NOBITS).every((s) => s.data === undefined)).toBe(true);
  });
});
