/**
 * A small, strict reader for 32-bit little-endian ELF files, the format Arm
 * toolchains write for Cortex-M programs and flash algorithms (CMSIS `.FLM`,
 * SEGGER flash loaders are ELF files too).
 *
 * It reads the file header, the program headers (segments), the section
 * headers (with a view of each section's bytes) and the symbol table. It does
 * not apply relocations, read DWARF or follow dynamic linking: flash
 * programming needs none of that.
 *
 * Every offset, size and index read from the file is checked against the file
 * before it is used, so a truncated or corrupted file ends in a
 * {@link FormatError} that names the field and its byte offset, never in a
 * `RangeError` from deep inside a `DataView`.
 *
 * Reference: "ELF for the Arm Architecture" (Arm IHI 0044) and the System V
 * gABI, chapter 4.
 *
 * @example
 * ```ts
 * const elf = parseElf(await readFile('algo.flm'), 'algo.flm');
 * const init = findSymbol(elf, 'Init');
 * console.log(init?.value.toString(16), init?.type, init?.sectionName);
 * ```
 * @module
 */
import { FormatError, hex32 } from './errors.js';

// ---------------------------------------------------------------------------
// Constants (only those rspflash uses or prints; the gABI has more)

/** `e_machine` of 32-bit Arm (AArch32, including every Cortex-M). */
export const EM_ARM = 40;

/** `e_type`: relocatable object (`.o`). */
export const ET_REL = 1;
/** `e_type`: executable, the usual kind for firmware and flash algorithms. */
export const ET_EXEC = 2;
/** `e_type`: shared object / position-independent executable. */
export const ET_DYN = 3;

/** `p_type`: a loadable segment. */
export const PT_LOAD = 1;

/** `sh_type`: unused section header (index 0 always is one). */
export const SHT_NULL = 0;
/** `sh_type`: bytes defined by the program (code, initialised data). */
export const SHT_PROGBITS = 1;
/** `sh_type`: symbol table. */
export const SHT_SYMTAB = 2;
/** `sh_type`: string table. */
export const SHT_STRTAB = 3;
/** `sh_type`: occupies no file space (`.bss`, the ZI part of an FLM's `PrgData`). */
export const SHT_NOBITS = 8;

/** `sh_flags`: writable at run time. */
export const SHF_WRITE = 0x1;
/** `sh_flags`: occupies memory when the program runs. */
export const SHF_ALLOC = 0x2;
/** `sh_flags`: holds machine instructions. */
export const SHF_EXECINSTR = 0x4;

/** Special section index: the symbol is undefined (imported). */
export const SHN_UNDEF = 0;
/** Start of the reserved section indices; indices from here on are not real sections. */
export const SHN_LORESERVE = 0xff00;
/** Special section index: the symbol's value is absolute, not tied to a section. */
export const SHN_ABS = 0xfff1;
/** Special section index: a common (not yet allocated) symbol. */
export const SHN_COMMON = 0xfff2;
/** Special section index: the real index is elsewhere (extended numbering). */
export const SHN_XINDEX = 0xffff;

/** Size of the ELF32 file header. */
const EHDR_SIZE = 52;
/** Minimum size of one ELF32 program header. */
const PHDR_SIZE = 32;
/** Minimum size of one ELF32 section header. */
const SHDR_SIZE = 40;
/** Size of one ELF32 symbol table entry. */
const SYM_SIZE = 16;

const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ELFDATA2MSB = 2;
const EV_CURRENT = 1;

// ---------------------------------------------------------------------------
// Model

/** The ELF file header, fields named as in the gABI without the `e_` prefix. */
export interface ElfHeader {
  /** `e_type`: {@link ET_EXEC}, {@link ET_REL}, {@link ET_DYN}, … */
  readonly type: number;
  /** `e_machine`: {@link EM_ARM} for Cortex-M. */
  readonly machine: number;
  /** `e_version`, 1. */
  readonly version: number;
  /** `e_entry`: entry point (with the Thumb bit for Thumb code), 0 if none. */
  readonly entry: number;
  /** `e_phoff`: file offset of the program header table, 0 if none. */
  readonly phoff: number;
  /** `e_shoff`: file offset of the section header table, 0 if none. */
  readonly shoff: number;
  /** `e_flags`: processor flags (Arm EABI version, float ABI). */
  readonly flags: number;
  /** `e_ehsize`: size of this header (52). */
  readonly ehsize: number;
  /** `e_phentsize`: size of one program header (32). */
  readonly phentsize: number;
  /** Number of program headers. */
  readonly phnum: number;
  /** `e_shentsize`: size of one section header (40). */
  readonly shentsize: number;
  /** Number of section headers (resolved through section 0 when extended numbering is used). */
  readonly shnum: number;
  /** Index of the section-name string table (resolved like {@link ElfHeader.shnum}). */
  readonly shstrndx: number;
}

/** One program header: a segment of the program as it is loaded. */
export interface ElfProgramHeader {
  /** Position in the program header table, as `readelf -l` counts. */
  readonly index: number;
  /** `p_type`: {@link PT_LOAD} for loadable segments. */
  readonly type: number;
  /** `p_offset`: where the segment's bytes start in the file. */
  readonly offset: number;
  /** `p_vaddr`: address the segment has when the program runs. */
  readonly vaddr: number;
  /**
   * `p_paddr`: address the segment is loaded at. For firmware this is the
   * flash address (the load memory address, LMA) while `vaddr` may be a RAM
   * copy made by start-up code.
   */
  readonly paddr: number;
  /** `p_filesz`: bytes present in the file. */
  readonly filesz: number;
  /** `p_memsz`: bytes in memory; the part past `filesz` is zero-filled (`.bss`). */
  readonly memsz: number;
  /** `p_flags`: 1 execute, 2 write, 4 read. */
  readonly flags: number;
  /** `p_align`. */
  readonly align: number;
}

/** One section, with its name resolved and its bytes as a view into the file. */
export interface ElfSection {
  /** Position in the section header table (0 is the null section). */
  readonly index: number;
  /** Name from the section-name string table, e.g. `PrgCode` or `.text`. */
  readonly name: string;
  /** `sh_type`: {@link SHT_PROGBITS}, {@link SHT_NOBITS}, {@link SHT_SYMTAB}, … */
  readonly type: number;
  /** `sh_flags`: {@link SHF_ALLOC}, {@link SHF_WRITE}, {@link SHF_EXECINSTR}, … */
  readonly flags: number;
  /** `sh_addr`: address in memory, for allocated sections. */
  readonly addr: number;
  /** `sh_offset`: where the bytes are in the file. */
  readonly offset: number;
  /** `sh_size`: size in bytes (in memory, for NOBITS; in the file otherwise). */
  readonly size: number;
  /** `sh_link`: a related section (a symbol table's string table). */
  readonly link: number;
  /** `sh_info`: extra information, by type. */
  readonly info: number;
  /** `sh_addralign`. */
  readonly addralign: number;
  /** `sh_entsize`: size of one entry for tables (16 for a symbol table). */
  readonly entsize: number;
  /**
   * The section's bytes (a view into the input, not a copy), or `undefined`
   * for sections without file content ({@link SHT_NOBITS}, {@link SHT_NULL}).
   */
  readonly data: Uint8Array | undefined;
}

/** Kind of a symbol (`ELF32_ST_TYPE`), named as `readelf -s` prints it. */
export type ElfSymbolType = 'NOTYPE' | 'OBJECT' | 'FUNC' | 'SECTION' | 'FILE' | 'COMMON' | 'TLS' | 'OTHER';
/** Binding of a symbol (`ELF32_ST_BIND`). */
export type ElfSymbolBind = 'LOCAL' | 'GLOBAL' | 'WEAK' | 'OTHER';
/** Visibility of a symbol (`ELF32_ST_VISIBILITY`). Arm Compiler exports FLM routines as `HIDDEN`. */
export type ElfSymbolVisibility = 'DEFAULT' | 'INTERNAL' | 'HIDDEN' | 'PROTECTED';

/** One entry of `.symtab`. */
export interface ElfSymbol {
  /** Position in the symbol table, as `readelf -s` numbers it. */
  readonly index: number;
  /** Name from the linked string table (`.strtab`); empty for SECTION symbols and the like. */
  readonly name: string;
  /**
   * `st_value`: the address. For Thumb functions bit 0 is set (`Init` at
   * 0x0 reads as 0x1): clear it to get the first instruction's address.
   */
  readonly value: number;
  /** `st_size`: size in bytes (0 when unknown). */
  readonly size: number;
  /** `FUNC` for routines, `OBJECT` for data, `SECTION`/`FILE` for bookkeeping. */
  readonly type: ElfSymbolType;
  /** `GLOBAL` or `WEAK` for exported symbols, `LOCAL` for file-local ones. */
  readonly bind: ElfSymbolBind;
  /** `HIDDEN` for symbols not exported from a shared object (how Arm Compiler marks FLM routines). */
  readonly visibility: ElfSymbolVisibility;
  /** `st_shndx`: index of the section the symbol is defined in, or a special index ({@link SHN_UNDEF}, {@link SHN_ABS}, …). */
  readonly sectionIndex: number;
  /** Name of that section, `undefined` for special indices. */
  readonly sectionName: string | undefined;
}

/** A parsed ELF file. */
export interface ElfFile {
  /** What the file was called, for messages. */
  readonly source: string;
  /** The input bytes, as given. Section `data` views point into it. */
  readonly bytes: Uint8Array;
  /** The file header. */
  readonly header: ElfHeader;
  /** Program headers (segments) in table order; empty if the file has none (an object file). */
  readonly programHeaders: readonly ElfProgramHeader[];
  /** Section headers in table order, index 0 (the null section) included, so `sections[i].index === i`. */
  readonly sections: readonly ElfSection[];
  /** Symbols of `.symtab` (the `SHT_SYMTAB` section) without the null symbol 0; empty if the file is stripped. */
  readonly symbols: readonly ElfSymbol[];
}

// ---------------------------------------------------------------------------
// Reader

const SYMBOL_TYPES: Record<number, ElfSymbolType> = { 0: 'NOTYPE', 1: 'OBJECT', 2: 'FUNC', 3: 'SECTION', 4: 'FILE', 5: 'COMMON', 6: 'TLS' };
const SYMBOL_BINDS: Record<number, ElfSymbolBind> = { 0: 'LOCAL', 1: 'GLOBAL', 2: 'WEAK' };
const SYMBOL_VISIBILITIES: readonly ElfSymbolVisibility[] = ['DEFAULT', 'INTERNAL', 'HIDDEN', 'PROTECTED'];

/** Bounds-checked little-endian reads over the whole file. */
class Reader {
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly source: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.length;
  }

  fail(message: string, offset?: number): never {
    throw new FormatError(`${this.source}: ${message}`, this.source, offset);
  }

  /** Throws unless `[offset, offset + size)` lies inside the file. */
  need(offset: number, size: number, what: string): void {
    if (offset < 0 || size < 0 || offset > this.length || size > this.length - offset) {
      this.fail(
        `${what} (${size} bytes at file offset 0x${offset.toString(16)}) extends past the end of the file (${this.length} bytes)`,
        offset,
      );
    }
  }

  u8(offset: number, what: string): number {
    this.need(offset, 1, what);
    return this.view.getUint8(offset);
  }

  u16(offset: number, what: string): number {
    this.need(offset, 2, what);
    return this.view.getUint16(offset, true);
  }

  u32(offset: number, what: string): number {
    this.need(offset, 4, what);
    return this.view.getUint32(offset, true);
  }

  slice(offset: number, size: number, what: string): Uint8Array {
    this.need(offset, size, what);
    return this.bytes.subarray(offset, offset + size);
  }
}

const decoder = new TextDecoder('utf-8');

/**
 * Reads the NUL-terminated string at `index` of a string table. Throws if the
 * index is outside the table or the string runs off its end.
 */
function stringAt(r: Reader, table: ElfSection, index: number, what: string): string {
  const data = table.data;
  if (data === undefined) r.fail(`${what}: string table [${table.index}] '${table.name}' has no data`, table.offset);
  if (index >= data.length) {
    r.fail(
      `${what}: name index ${index} is outside string table [${table.index}] '${table.name}' (${data.length} bytes)`,
      table.offset,
    );
  }
  const end = data.indexOf(0, index);
  if (end < 0) r.fail(`${what}: name at index ${index} of string table [${table.index}] is not NUL-terminated`, table.offset + index);
  return decoder.decode(data.subarray(index, end));
}

/**
 * Parses a 32-bit little-endian ELF file.
 *
 * Sections and symbols are read only when the file has a section header table;
 * program headers only when it has a program header table. A file with
 * neither is still valid ELF (and comes back with empty lists).
 *
 * @param bytes The whole file.
 * @param source The file name, used in error messages (`FormatError.source`).
 * @throws A {@link FormatError} for anything malformed: wrong magic, ELF64,
 *   big-endian, a table or section that runs past the end of the file, a name
 *   index outside its string table, a symbol table with a bad entry size. The
 *   message names the field and the error's `offset` is the byte offset.
 */
export function parseElf(bytes: Uint8Array, source: string): ElfFile {
  const r = new Reader(bytes, source);
  if (bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    r.fail('not an ELF file (no \\x7fELF magic at offset 0)', 0);
  }
  const elfClass = r.u8(4, 'e_ident[EI_CLASS]');
  if (elfClass === ELFCLASS64) r.fail('is a 64-bit ELF file (ELFCLASS64); only 32-bit Arm ELF files are supported', 4);
  if (elfClass !== ELFCLASS32) r.fail(`has an invalid ELF class ${elfClass} in e_ident[EI_CLASS]`, 4);
  const data = r.u8(5, 'e_ident[EI_DATA]');
  if (data === ELFDATA2MSB) r.fail('is a big-endian ELF file (ELFDATA2MSB); only little-endian files are supported', 5);
  if (data !== ELFDATA2LSB) r.fail(`has an invalid data encoding ${data} in e_ident[EI_DATA]`, 5);
  const identVersion = r.u8(6, 'e_ident[EI_VERSION]');
  if (identVersion !== EV_CURRENT) r.fail(`has an unknown ELF version ${identVersion} in e_ident[EI_VERSION]`, 6);
  r.need(0, EHDR_SIZE, 'ELF header');

  const rawShnum = r.u16(48, 'e_shnum');
  const rawShstrndx = r.u16(50, 'e_shstrndx');
  const partial = {
    type: r.u16(16, 'e_type'),
    machine: r.u16(18, 'e_machine'),
    version: r.u32(20, 'e_version'),
    entry: r.u32(24, 'e_entry'),
    phoff: r.u32(28, 'e_phoff'),
    shoff: r.u32(32, 'e_shoff'),
    flags: r.u32(36, 'e_flags'),
    ehsize: r.u16(40, 'e_ehsize'),
    phentsize: r.u16(42, 'e_phentsize'),
    phnum: r.u16(44, 'e_phnum'),
    shentsize: r.u16(46, 'e_shentsize'),
  };
  if (partial.ehsize < EHDR_SIZE) r.fail(`e_ehsize is ${partial.ehsize}, smaller than the 52-byte ELF32 header`, 40);

  // Extended section numbering (gABI): with 0xff00 or more sections, e_shnum is 0
  // and e_shstrndx is SHN_XINDEX; the real values sit in section header 0.
  let shnum = rawShnum;
  let shstrndx = rawShstrndx;
  if (partial.shoff !== 0) {
    if (partial.shentsize < SHDR_SIZE) r.fail(`e_shentsize is ${partial.shentsize}, smaller than a 40-byte ELF32 section header`, 46);
    if (rawShnum === 0) shnum = r.u32(partial.shoff + 20, 'section header 0 sh_size (extended section count)');
    if (rawShstrndx === SHN_XINDEX) shstrndx = r.u32(partial.shoff + 24, 'section header 0 sh_link (extended e_shstrndx)');
  } else {
    shnum = 0;
  }
  const header: ElfHeader = { ...partial, shnum, shstrndx };

  const programHeaders = readProgramHeaders(r, header);
  const sections = readSections(r, header);
  const symbols = readSymbols(r, sections);
  return { source, bytes, header, programHeaders, sections, symbols };
}

function readProgramHeaders(r: Reader, h: ElfHeader): ElfProgramHeader[] {
  if (h.phoff === 0 || h.phnum === 0) return [];
  if (h.phentsize < PHDR_SIZE) r.fail(`e_phentsize is ${h.phentsize}, smaller than a 32-byte ELF32 program header`, 42);
  r.need(h.phoff, h.phnum * h.phentsize, `program header table (${h.phnum} x ${h.phentsize} bytes, e_phoff)`);
  const out: ElfProgramHeader[] = [];
  for (let index = 0; index < h.phnum; index++) {
    const at = h.phoff + index * h.phentsize;
    const what = (field: string) => `program header ${index} ${field}`;
    const ph: ElfProgramHeader = {
      index,
      type: r.u32(at, what('p_type')),
      offset: r.u32(at + 4, what('p_offset')),
      vaddr: r.u32(at + 8, what('p_vaddr')),
      paddr: r.u32(at + 12, what('p_paddr')),
      filesz: r.u32(at + 16, what('p_filesz')),
      memsz: r.u32(at + 20, what('p_memsz')),
      flags: r.u32(at + 24, what('p_flags')),
      align: r.u32(at + 28, what('p_align')),
    };
    if (ph.filesz > 0) r.need(ph.offset, ph.filesz, `program header ${index} contents (p_offset, p_filesz)`);
    if (ph.type === PT_LOAD) {
      if (ph.filesz > ph.memsz) {
        r.fail(`program header ${index} (PT_LOAD) has p_filesz 0x${ph.filesz.toString(16)} larger than p_memsz 0x${ph.memsz.toString(16)}`, at + 16);
      }
      if (ph.paddr + ph.filesz > 2 ** 32 || ph.vaddr + ph.memsz > 2 ** 32) {
        r.fail(`program header ${index} (PT_LOAD) at ${hex32(ph.paddr)} runs past the end of the 32-bit address space`, at + 8);
      }
    }
    out.push(ph);
  }
  return out;
}

function readSections(r: Reader, h: ElfHeader): ElfSection[] {
  if (h.shnum === 0) return [];
  r.need(h.shoff, h.shnum * h.shentsize, `section header table (${h.shnum} x ${h.shentsize} bytes, e_shoff)`);
  if (h.shstrndx === SHN_UNDEF || h.shstrndx >= h.shnum) {
    r.fail(`e_shstrndx ${h.shstrndx} does not name one of the ${h.shnum} sections`, 50);
  }
  const raw: Omit<ElfSection, 'name'>[] = [];
  const nameIndex: number[] = [];
  for (let index = 0; index < h.shnum; index++) {
    const at = h.shoff + index * h.shentsize;
    const what = (field: string) => `section header ${index} ${field}`;
    nameIndex.push(r.u32(at, what('sh_name')));
    const type = r.u32(at + 4, what('sh_type'));
    const offset = r.u32(at + 16, what('sh_offset'));
    const size = r.u32(at + 20, what('sh_size'));
    // Section 0 carries the extended counts in sh_size/sh_link, not content.
    const hasData = index !== 0 && type !== SHT_NOBITS && type !== SHT_NULL;
    if (hasData) r.need(offset, size, `section ${index} contents (sh_offset, sh_size)`);
    raw.push({
      index,
      type,
      flags: r.u32(at + 8, what('sh_flags')),
      addr: r.u32(at + 12, what('sh_addr')),
      offset,
      size,
      link: r.u32(at + 24, what('sh_link')),
      info: r.u32(at + 28, what('sh_info')),
      addralign: r.u32(at + 32, what('sh_addralign')),
      entsize: r.u32(at + 36, what('sh_entsize')),
      data: hasData ? r.bytes.subarray(offset, offset + size) : undefined,
    });
  }
  const names = raw[h.shstrndx]!;
  if (names.type !== SHT_STRTAB) {
    r.fail(`e_shstrndx ${h.shstrndx} points at a section of type ${names.type}, not a string table`, h.shoff + h.shstrndx * h.shentsize + 4);
  }
  const namesTable = { ...names, name: '' };
  return raw.map((s, i) => ({ ...s, name: stringAt(r, namesTable, nameIndex[i]!, `section header ${i} sh_name`) }));
}

function readSymbols(r: Reader, sections: readonly ElfSection[]): ElfSymbol[] {
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  if (symtab === undefined || symtab.data === undefined) return [];
  const sectionHeaderWhat = `symbol table [${symtab.index}] '${symtab.name}'`;
  if (symtab.entsize !== SYM_SIZE) r.fail(`${sectionHeaderWhat} has sh_entsize ${symtab.entsize}, expected ${SYM_SIZE}`, symtab.offset);
  if (symtab.size % SYM_SIZE !== 0) r.fail(`${sectionHeaderWhat} size ${symtab.size} is not a multiple of ${SYM_SIZE}`, symtab.offset);
  if (symtab.link === 0 || symtab.link >= sections.length) {
    r.fail(`${sectionHeaderWhat} sh_link ${symtab.link} does not name a section`, symtab.offset);
  }
  const strtab = sections[symtab.link]!;
  if (strtab.type !== SHT_STRTAB) r.fail(`${sectionHeaderWhat} links to section [${strtab.index}] of type ${strtab.type}, not a string table`, symtab.offset);
  const count = symtab.size / SYM_SIZE;
  const out: ElfSymbol[] = [];
  // Symbol 0 is the reserved null symbol.
  for (let index = 1; index < count; index++) {
    const at = symtab.offset + index * SYM_SIZE;
    const what = `symbol ${index} of ${sectionHeaderWhat}`;
    const info = r.u8(at + 12, what);
    const other = r.u8(at + 13, what);
    const sectionIndex = r.u16(at + 14, what);
    const special = sectionIndex === SHN_UNDEF || sectionIndex >= SHN_LORESERVE;
    if (!special && sectionIndex >= sections.length) {
      r.fail(`${what} refers to section ${sectionIndex}, but there are only ${sections.length}`, at + 14);
    }
    out.push({
      index,
      name: stringAt(r, strtab, r.u32(at, what), `${what} st_name`),
      value: r.u32(at + 4, what),
      size: r.u32(at + 8, what),
      type: SYMBOL_TYPES[info & 0xf] ?? 'OTHER',
      bind: SYMBOL_BINDS[info >> 4] ?? 'OTHER',
      visibility: SYMBOL_VISIBILITIES[other & 3]!,
      sectionIndex,
      sectionName: special ? undefined : sections[sectionIndex]!.name,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Queries

/**
 * The symbol called `name`, or `undefined`. When several symbols share the
 * name (a local `static` and a global, say), a defined GLOBAL or WEAK one wins
 * over a LOCAL one, and any defined one over an undefined reference.
 */
export function findSymbol(elf: ElfFile, name: string): ElfSymbol | undefined {
  let best: ElfSymbol | undefined;
  let bestRank = -1;
  for (const sym of elf.symbols) {
    if (sym.name !== name) continue;
    const defined = sym.sectionIndex !== SHN_UNDEF;
    const rank = (defined ? 2 : 0) + (sym.bind === 'LOCAL' ? 0 : 1);
    if (rank > bestRank) {
      best = sym;
      bestRank = rank;
    }
  }
  return best;
}

/** Every section called `name`, in header order (an FLM has two called `PrgData`: RW and ZI). */
export function findSections(elf: ElfFile, name: string): ElfSection[] {
  return elf.sections.filter((s) => s.name === name);
}

/**
 * Reads `length` bytes of memory at `address` as the file defines them through
 * an allocated section with file content (`SHT_PROGBITS` and the like, not
 * NOBITS). Returns `undefined` if no such section covers the whole range.
 *
 * Use it to read tables the program holds (a descriptor, an API table) by the
 * address a symbol gives.
 */
export function readAt(elf: ElfFile, address: number, length: number, section?: ElfSection): Uint8Array | undefined {
  const candidates = section === undefined ? elf.sections : [section];
  for (const s of candidates) {
    if (s.data === undefined || (s.flags & SHF_ALLOC) === 0) continue;
    if (address >= s.addr && length <= s.size && address - s.addr <= s.size - length) {
      return s.data.subarray(address - s.addr, address - s.addr + length);
    }
  }
  return undefined;
}
