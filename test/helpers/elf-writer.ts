/**
 * Builds small ELF32 little-endian files for tests: sections with bytes,
 * symbols, program headers. Not a linker — it writes exactly what it is told,
 * which is what a parser test needs (including shapes real tools produce:
 * HIDDEN FUNC symbols with the Thumb bit, a descriptor section at the same
 * address as a NOBITS one, two PT_LOAD segments).
 *
 * File layout: ELF header, program headers, section contents (in the order
 * given, each aligned), `.symtab`, `.strtab`, `.shstrtab`, section headers.
 */

export const SHT = { NULL: 0, PROGBITS: 1, SYMTAB: 2, STRTAB: 3, NOBITS: 8, REL: 9 } as const;
export const SHF = { WRITE: 1, ALLOC: 2, EXECINSTR: 4 } as const;
export const STT = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4 } as const;
export const STB = { LOCAL: 0, GLOBAL: 1, WEAK: 2 } as const;
export const STV = { DEFAULT: 0, INTERNAL: 1, HIDDEN: 2, PROTECTED: 3 } as const;
export const PT_LOAD = 1;
export const EM_ARM = 40;

export interface SectionSpec {
  name: string;
  /** Default PROGBITS. */
  type?: number;
  /** Default ALLOC. */
  flags?: number;
  addr?: number;
  /** Content (PROGBITS). */
  data?: Uint8Array;
  /** Size for NOBITS sections (content-less). */
  size?: number;
  /** Default 4. */
  align?: number;
}

export interface SymbolSpec {
  name: string;
  value: number;
  size?: number;
  /** Default FUNC. */
  type?: number;
  /** Default GLOBAL. */
  bind?: number;
  /** Default DEFAULT. */
  visibility?: number;
  /** Section name (first section of that name; pass `index` to pick another), or 'ABS' / 'UND'. */
  section: string;
  /** Which of several sections called `section` (0 = first). */
  sectionOccurrence?: number;
}

export interface SegmentSpec {
  type?: number;
  /** Sections the segment covers, by position in `sections` (contiguous in the file). */
  sections: number[];
  /** Overrides of the computed addresses. */
  vaddr?: number;
  paddr?: number;
  flags?: number;
  /** Explicit file size / memory size instead of the computed ones. */
  filesz?: number;
  memsz?: number;
}

export interface ElfSpec {
  sections: SectionSpec[];
  symbols?: SymbolSpec[];
  segments?: SegmentSpec[];
  machine?: number;
  type?: number;
  entry?: number;
  /** Omit `.symtab`/`.strtab` (a stripped file). */
  noSymtab?: boolean;
}

/** Where things landed in the written file, for corruption tests. */
export interface ElfLayout {
  phoff: number;
  shoff: number;
  /** File offset of each `sections[i]` content. */
  sectionOffsets: number[];
  symtabOffset: number;
  strtabOffset: number;
  shstrtabOffset: number;
  /** Section header index of `sections[i]` (i + 1). */
  sectionIndex: (i: number) => number;
}

class StringTable {
  private readonly parts: Uint8Array[] = [new Uint8Array(1)];
  private length = 1;
  private readonly index = new Map<string, number>();

  add(s: string): number {
    if (s === '') return 0;
    const known = this.index.get(s);
    if (known !== undefined) return known;
    const at = this.length;
    const bytes = new TextEncoder().encode(s + '\0');
    this.parts.push(bytes);
    this.length += bytes.length;
    this.index.set(s, at);
    return at;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

const align = (n: number, a: number) => (a > 1 ? Math.ceil(n / a) * a : n);

/** Writes an ELF file from a spec. */
export function writeElf(spec: ElfSpec): { bytes: Uint8Array; layout: ElfLayout } {
  const shstr = new StringTable();
  const str = new StringTable();
  const segments = spec.segments ?? [];
  const phoff = 52;
  let offset = phoff + segments.length * 32;

  const sectionOffsets: number[] = [];
  for (const s of spec.sections) {
    offset = align(offset, s.align ?? 4);
    sectionOffsets.push(offset);
    if ((s.type ?? SHT.PROGBITS) !== SHT.NOBITS) offset += s.data?.length ?? 0;
  }

  // Symbols: locals first (gABI), null symbol at 0.
  const isLocal = (s: SymbolSpec) => (s.bind ?? STB.GLOBAL) === STB.LOCAL;
  const symbols = [...(spec.symbols ?? []).filter(isLocal), ...(spec.symbols ?? []).filter((s) => !isLocal(s))];
  const symtab = new Uint8Array((symbols.length + 1) * 16);
  const sv = new DataView(symtab.buffer);
  symbols.forEach((sym, i) => {
    const at = (i + 1) * 16;
    let shndx: number;
    if (sym.section === 'ABS') shndx = 0xfff1;
    else if (sym.section === 'UND') shndx = 0;
    else {
      const matches = spec.sections.map((s, j) => [s, j] as const).filter(([s]) => s.name === sym.section);
      const hit = matches[sym.sectionOccurrence ?? 0];
      if (!hit) throw new Error(`elf-writer: no section ${sym.section} for symbol ${sym.name}`);
      shndx = hit[1] + 1;
    }
    sv.setUint32(at, str.add(sym.name), true);
    sv.setUint32(at + 4, sym.value >>> 0, true);
    sv.setUint32(at + 8, sym.size ?? 0, true);
    sv.setUint8(at + 12, ((sym.bind ?? STB.GLOBAL) << 4) | (sym.type ?? STT.FUNC));
    sv.setUint8(at + 13, sym.visibility ?? STV.DEFAULT);
    sv.setUint16(at + 14, shndx, true);
  });
  const firstGlobal = 1 + symbols.filter(isLocal).length;

  const strtabBytes = str.bytes();
  offset = align(offset, 4);
  const symtabOffset = offset;
  if (!spec.noSymtab) offset += symtab.length;
  const strtabOffset = offset;
  if (!spec.noSymtab) offset += strtabBytes.length;

  // Section header names (added before .shstrtab's bytes are taken).
  const nameIndex = spec.sections.map((s) => shstr.add(s.name));
  const symtabName = shstr.add('.symtab');
  const strtabName = shstr.add('.strtab');
  const shstrtabName = shstr.add('.shstrtab');
  const shstrBytes = shstr.bytes();
  const shstrtabOffset = offset;
  offset += shstrBytes.length;
  offset = align(offset, 4);
  const shoff = offset;
  const extra = spec.noSymtab ? 1 : 3;
  const shnum = 1 + spec.sections.length + extra;
  const total = shoff + shnum * 40;

  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  // e_ident
  out.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0], 0);
  v.setUint16(16, spec.type ?? 2, true);
  v.setUint16(18, spec.machine ?? EM_ARM, true);
  v.setUint32(20, 1, true);
  v.setUint32(24, spec.entry ?? 0, true);
  v.setUint32(28, segments.length ? phoff : 0, true);
  v.setUint32(32, shoff, true);
  v.setUint32(36, 0x05000200, true);
  v.setUint16(40, 52, true);
  v.setUint16(42, 32, true);
  v.setUint16(44, segments.length, true);
  v.setUint16(46, 40, true);
  v.setUint16(48, shnum, true);
  v.setUint16(50, shnum - 1, true);

  segments.forEach((seg, i) => {
    const at = phoff + i * 32;
    const first = spec.sections[seg.sections[0]!]!;
    const firstOffset = sectionOffsets[seg.sections[0]!]!;
    let filesz = 0;
    let memsz = 0;
    const firstAddr = first.addr ?? 0;
    for (const j of seg.sections) {
      const s = spec.sections[j]!;
      const size = s.data?.length ?? s.size ?? 0;
      const end = (s.addr ?? 0) + size - firstAddr;
      memsz = Math.max(memsz, end);
      if ((s.type ?? SHT.PROGBITS) !== SHT.NOBITS) filesz = Math.max(filesz, sectionOffsets[j]! + size - firstOffset);
    }
    v.setUint32(at, seg.type ?? PT_LOAD, true);
    v.setUint32(at + 4, firstOffset, true);
    v.setUint32(at + 8, seg.vaddr ?? firstAddr, true);
    v.setUint32(at + 12, seg.paddr ?? seg.vaddr ?? firstAddr, true);
    v.setUint32(at + 16, seg.filesz ?? filesz, true);
    v.setUint32(at + 20, seg.memsz ?? memsz, true);
    v.setUint32(at + 24, seg.flags ?? 7, true);
    v.setUint32(at + 28, 4, true);
  });

  spec.sections.forEach((s, i) => {
    if (s.data && (s.type ?? SHT.PROGBITS) !== SHT.NOBITS) out.set(s.data, sectionOffsets[i]!);
  });
  if (!spec.noSymtab) {
    out.set(symtab, symtabOffset);
    out.set(strtabBytes, strtabOffset);
  }
  out.set(shstrBytes, shstrtabOffset);

  const writeShdr = (index: number, f: { name: number; type: number; flags: number; addr: number; offset: number; size: number; link?: number; info?: number; align?: number; entsize?: number }) => {
    const at = shoff + index * 40;
    v.setUint32(at, f.name, true);
    v.setUint32(at + 4, f.type, true);
    v.setUint32(at + 8, f.flags, true);
    v.setUint32(at + 12, f.addr >>> 0, true);
    v.setUint32(at + 16, f.offset, true);
    v.setUint32(at + 20, f.size, true);
    v.setUint32(at + 24, f.link ?? 0, true);
    v.setUint32(at + 28, f.info ?? 0, true);
    v.setUint32(at + 32, f.align ?? 1, true);
    v.setUint32(at + 36, f.entsize ?? 0, true);
  };
  spec.sections.forEach((s, i) => {
    writeShdr(i + 1, {
      name: nameIndex[i]!,
      type: s.type ?? SHT.PROGBITS,
      flags: s.flags ?? SHF.ALLOC,
      addr: s.addr ?? 0,
      offset: sectionOffsets[i]!,
      size: s.data?.length ?? s.size ?? 0,
      align: s.align ?? 4,
    });
  });
  let next = spec.sections.length + 1;
  if (!spec.noSymtab) {
    const symIndex = next++;
    const strIndex = next++;
    writeShdr(symIndex, { name: symtabName, type: SHT.SYMTAB, flags: 0, addr: 0, offset: symtabOffset, size: symtab.length, link: strIndex, info: firstGlobal, align: 4, entsize: 16 });
    writeShdr(strIndex, { name: strtabName, type: SHT.STRTAB, flags: 0, addr: 0, offset: strtabOffset, size: strtabBytes.length });
  }
  writeShdr(next, { name: shstrtabName, type: SHT.STRTAB, flags: 0, addr: 0, offset: shstrtabOffset, size: shstrBytes.length });

  return {
    bytes: out,
    layout: { phoff, shoff, sectionOffsets, symtabOffset, strtabOffset, shstrtabOffset, sectionIndex: (i) => i + 1 },
  };
}

/** Little-endian 32-bit words as bytes. */
export function words(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const v = new DataView(out.buffer);
  values.forEach((w, i) => v.setUint32(i * 4, w >>> 0, true));
  return out;
}

/** Fields of a CMSIS `struct FlashDevice` to encode. */
export interface FlashDeviceSpec {
  version?: number;
  name: string;
  type?: number;
  address: number;
  size: number;
  pageSize: number;
  erasedValue?: number;
  programPageTimeout?: number;
  eraseSectorTimeout?: number;
  /** `[szSector, AddrSector]` pairs; the terminator is added. */
  sectors: [number, number][];
  /** Pad the sector array to SECTOR_NUM (512) entries, like a real FLM's 4256-byte DevDscr. */
  fullArray?: boolean;
  /** Leave out the terminator (a malformed descriptor). */
  noTerminator?: boolean;
}

/** Encodes a `struct FlashDevice` as `FlashOS.h` lays it out. */
export function flashDeviceBytes(d: FlashDeviceSpec): Uint8Array {
  const entries = d.fullArray ? 512 : d.sectors.length + (d.noTerminator ? 0 : 1);
  const out = new Uint8Array(160 + entries * 8);
  const v = new DataView(out.buffer);
  v.setUint16(0, d.version ?? 0x101, true);
  out.set(new TextEncoder().encode(d.name).subarray(0, 127), 2);
  v.setUint16(130, d.type ?? 1, true);
  v.setUint32(132, d.address >>> 0, true);
  v.setUint32(136, d.size >>> 0, true);
  v.setUint32(140, d.pageSize, true);
  v.setUint8(148, d.erasedValue ?? 0xff);
  v.setUint32(152, d.programPageTimeout ?? 100, true);
  v.setUint32(156, d.eraseSectorTimeout ?? 3000, true);
  d.sectors.forEach(([size, addr], i) => {
    v.setUint32(160 + i * 8, size >>> 0, true);
    v.setUint32(164 + i * 8, addr >>> 0, true);
  });
  if (!d.noTerminator) {
    v.setUint32(160 + d.sectors.length * 8, 0xffffffff, true);
    v.setUint32(164 + d.sectors.length * 8, 0xffffffff, true);
  }
  return out;
}
