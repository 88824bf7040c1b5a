/**
 * The readers against real files compiled with arm-none-eabi-gcc
 * (test/fixtures/build, rebuilt by test/fixtures/build.sh): every field the
 * ELF reader returns must agree with `arm-none-eabi-readelf -W -S -s -l`, and
 * the three descriptions of the NOR simulator (FLM, SEGGER SFL, probe-rs YAML)
 * must describe the same flash.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SHN_ABS, SHN_COMMON, SHN_UNDEF, findSymbol, parseElf, type ElfFile } from '../../lib/elf.js';
import { parseFlm } from '../../lib/algo/flm.js';
import { loadAlgorithm } from '../../lib/algo/load.js';
import { listProbeRsAlgorithms, listProbeRsMemoryRegions, parseProbeRsYaml } from '../../lib/algo/probe-rs.js';
import { parseSeggerLoader } from '../../lib/algo/segger.js';
import { elfToImage } from '../../lib/image/elf.js';

const BUILD = fileURLToPath(new URL('../fixtures/build/', import.meta.url));
const path = (name: string) => BUILD + name;
const read = (name: string) => new Uint8Array(readFileSync(path(name)));
const READELF = 'arm-none-eabi-readelf';
// Honest tests: missing fixtures or toolchain fail loudly (npm test installs the toolchain first).
if (!existsSync(path('nor-sim.flm'))) throw new Error('test/fixtures/build is missing: run npm run fixtures');
if (spawnSync(READELF, ['--version']).status !== 0) {
  throw new Error(`${READELF} not found: npm test installs it via scripts/bootstrap.sh (apt-get install gcc-arm-none-eabi)`);
}

const ELF_FIXTURES = ['nor-sim.flm', 'nor-sim-segger.elf', 'nvmc-nrf51.flm', 'broken.flm', 'boot-an547.elf', 'boot-microbit.elf'];

/** What `flmtool.mjs describe` wrote next to each algorithm. */
interface FixtureJson {
  device: { devName: string; devType: number; devAdr: number; szDev: number; szPage: number; valEmpty: number; toProg: number; toErase: number; sectors: { size: number; address: number }[] };
  codeSize: number;
  rwOffset: number;
  blobSize: number;
  functions: Record<string, number>;
}
const json = (name: string) => JSON.parse(readFileSync(path(name), 'utf8')) as FixtureJson;

// ---------------------------------------------------------------------------
// readelf output, parsed

interface ReadelfSection { index: number; name: string; type: string; addr: number; offset: number; size: number; es: number; flags: string; link: number; info: number; align: number }
interface ReadelfSymbol { index: number; value: number; size: number; type: string; bind: string; vis: string; ndx: string; name: string }
interface ReadelfSegment { type: string; offset: number; vaddr: number; paddr: number; filesz: number; memsz: number; flags: string }

function readelf(file: string): { sections: ReadelfSection[]; symbols: ReadelfSymbol[]; segments: ReadelfSegment[] } {
  const run = spawnSync(READELF, ['-W', '-S', '-s', '-l', file], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${READELF} failed on ${file}: ${run.stderr}`);
  const sections: ReadelfSection[] = [];
  const symbols: ReadelfSymbol[] = [];
  const segments: ReadelfSegment[] = [];
  const hex = (s: string) => parseInt(s, 16);
  for (const line of run.stdout.split('\n')) {
    let m = /^\s*\[\s*(\d+)\]\s+(?:(\S+)\s+)?(\S+)\s+([0-9a-f]{8})\s+([0-9a-f]{6,})\s+([0-9a-f]{6,})\s+([0-9a-f]{2})\s+([A-Za-z]*)\s*(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(line);
    if (m) {
      sections.push({
        index: Number(m[1]),
        name: m[2] ?? '',
        type: m[3]!,
        addr: hex(m[4]!),
        offset: hex(m[5]!),
        size: hex(m[6]!),
        es: hex(m[7]!),
        flags: m[8]!,
        link: Number(m[9]),
        info: Number(m[10]),
        align: Number(m[11]),
      });
      continue;
    }
    m = /^\s*(\d+):\s+([0-9a-f]{8})\s+(0x[0-9a-f]+|\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s?(.*)$/.exec(line);
    if (m) {
      symbols.push({ index: Number(m[1]), value: hex(m[2]!), size: Number(m[3]), type: m[4]!, bind: m[5]!, vis: m[6]!, ndx: m[7]!, name: m[8]! });
      continue;
    }
    m = /^\s*([A-Z_]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s(.{3})\s+0x[0-9a-f]+\s*$/.exec(line);
    if (m) {
      segments.push({ type: m[1]!, offset: hex(m[2]!), vaddr: hex(m[3]!), paddr: hex(m[4]!), filesz: hex(m[5]!), memsz: hex(m[6]!), flags: m[7]! });
    }
  }
  return { sections, symbols, segments };
}

const SECTION_TYPES: Record<number, string> = { 0: 'NULL', 1: 'PROGBITS', 2: 'SYMTAB', 3: 'STRTAB', 4: 'RELA', 8: 'NOBITS', 9: 'REL', 0x70000001: 'ARM_EXIDX', 0x70000003: 'ARM_ATTRIBUTES' };
/** Section flags as readelf's Flg column letters, in readelf's order. */
function flagLetters(flags: number): string {
  const letters: [number, string][] = [[1, 'W'], [2, 'A'], [4, 'X'], [0x10, 'M'], [0x20, 'S'], [0x40, 'I'], [0x80, 'L'], [0x100, 'O'], [0x200, 'G'], [0x400, 'T'], [0x800, 'C']];
  return letters.filter(([bit]) => flags & bit).map(([, l]) => l).join('');
}
function segmentFlags(flags: number): string {
  return (flags & 4 ? 'R' : ' ') + (flags & 2 ? 'W' : ' ') + (flags & 1 ? 'E' : ' ');
}
function ndx(elf: ElfFile, index: number): string {
  if (index === SHN_UNDEF) return 'UND';
  if (index === SHN_ABS) return 'ABS';
  if (index === SHN_COMMON) return 'COM';
  return String(index);
}

describe('ELF reader on arm-none-eabi-gcc output agrees with readelf', () => {
  describe.each(ELF_FIXTURES)('%s', (name) => {
    const elf = parseElf(read(name), name);
    const ref = readelf(path(name));

    it('has the same sections (name, type, address, offset, size, flags, link, info, alignment, entry size)', () => {
      expect(ref.sections.length).toBeGreaterThan(3);
      expect(
        elf.sections.map((s) => ({
          index: s.index,
          name: s.name,
          type: SECTION_TYPES[s.type] ?? ref.sections[s.index]?.type,
          addr: s.addr,
          offset: s.offset,
          size: s.size,
          es: s.entsize,
          flags: flagLetters(s.flags),
          link: s.link,
          info: s.info,
          align: s.addralign,
        })),
      ).toEqual(ref.sections);
    });

    it('has the same program headers', () => {
      expect(ref.segments.length).toBeGreaterThan(0);
      expect(
        elf.programHeaders.map((p) => ({
          type: p.type === 1 ? 'LOAD' : ref.segments[p.index]?.type,
          offset: p.offset,
          vaddr: p.vaddr,
          paddr: p.paddr,
          filesz: p.filesz,
          memsz: p.memsz,
          flags: segmentFlags(p.flags),
        })),
      ).toEqual(ref.segments);
    });

    it('has the same symbols (value, size, type, binding, visibility, section, name)', () => {
      expect(ref.symbols.length).toBeGreaterThan(5);
      // readelf lists the null symbol 0 (the reader leaves it out) and prints
      // a SECTION symbol's empty name as its section's name.
      const shown = (s: ElfFile['symbols'][number]) => (s.type === 'SECTION' && s.name === '' ? (s.sectionName ?? '') : s.name);
      expect(
        elf.symbols.map((s) => ({ index: s.index, value: s.value, size: s.size, type: s.type, bind: s.bind, vis: s.visibility, ndx: ndx(elf, s.sectionIndex), name: shown(s) })),
      ).toEqual(ref.symbols.filter((s) => s.index !== 0));
    });
  });
});

describe('algorithm readers on the compiled test algorithms', () => {
  /** What the fixture's JSON says, in the model's terms. */
  function expectMatchesJson(algo: ReturnType<typeof parseFlm>, info: FixtureJson, blobFile: string, rename: (fn: string) => string[]) {
    expect(algo.name).toBe(info.device.devName);
    expect(algo.blob).toEqual(read(blobFile));
    expect(algo.blob.length).toBe(info.blobSize);
    expect(algo.staticBaseOffset).toBe(info.rwOffset);
    expect(algo.loadAddress).toBeUndefined();
    expect(algo.relocations).toEqual([]);
    expect(algo.deviceType).toBe(info.device.devType);
    const expected: Record<string, number> = {};
    for (const [fn, value] of Object.entries(info.functions)) for (const name of rename(fn)) expected[name] = value & ~1;
    expect(algo.functions).toEqual(expected);
    expect(algo.geometry).toEqual({
      start: info.device.devAdr,
      size: info.device.szDev,
      pageSize: info.device.szPage,
      erasedValue: info.device.valEmpty,
      sectors: info.device.sectors.map((entry, i, all) => ({
        address: info.device.devAdr + entry.address,
        size: entry.size,
        count: ((all[i + 1]?.address ?? info.device.szDev) - entry.address) / entry.size,
      })),
    });
    expect(algo.timeouts.programPage).toBe(info.device.toProg);
    expect(algo.timeouts.eraseSector).toBe(info.device.toErase);
  }

  it.each(['nor-sim', 'nvmc-nrf51', 'broken'])('%s.flm matches its build description (blob, functions, R9, geometry)', (name) => {
    const info = json(`${name}.json`);
    const algo = parseFlm(read(`${name}.flm`), `${name}.flm`);
    expect(algo.format).toBe('flm');
    expectMatchesJson(algo, info, `${name}.blob`, (fn) => [fn]);
  });

  it('nor-sim.flm exports its routines as GLOBAL HIDDEN FUNC with the Thumb bit, like armlink', () => {
    const elf = parseElf(read('nor-sim.flm'), 'nor-sim.flm');
    expect(findSymbol(elf, 'ProgramPage')).toMatchObject({ type: 'FUNC', bind: 'GLOBAL', visibility: 'HIDDEN', sectionName: 'PrgCode' });
    expect(findSymbol(elf, 'ProgramPage')!.value & 1).toBe(1);
  });

  it('nor-sim.flm never loads DevDscr, which is linked over the ZI area', () => {
    const elf = parseElf(read('nor-sim.flm'), 'nor-sim.flm');
    const devDscr = elf.sections.find((s) => s.name === 'DevDscr')!;
    const zi = elf.sections.find((s) => s.name === 'PrgData' && s.type === 8)!;
    expect(devDscr.addr).toBe(zi.addr);
    const algo = parseFlm(read('nor-sim.flm'), 'nor-sim.flm');
    expect(algo.blob.subarray(zi.addr, zi.addr + zi.size).every((b) => b === 0)).toBe(true);
  });

  it('nor-sim-segger.elf is read as a SEGGER SFL loader with Program doubling as ProgramPage', () => {
    const info = json('nor-sim-segger.json');
    const algo = parseSeggerLoader(read('nor-sim-segger.elf'), 'nor-sim-segger.elf');
    expect(algo.format).toBe('segger-sfl');
    const map: Record<string, string[]> = {
      SEGGER_FL_Prepare: ['Init'],
      SEGGER_FL_Restore: ['UnInit'],
      SEGGER_FL_Program: ['Program', 'ProgramPage'],
      SEGGER_FL_Erase: ['Erase'],
      SEGGER_FL_EraseChip: ['EraseChip'],
      SEGGER_FL_CheckBlank: ['BlankCheck'],
      SEGGER_FL_Verify: ['Verify'],
      SEGGER_FL_Read: ['Read'],
      SEGGER_FL_CalcCRC: ['CalcCRC'],
    };
    expectMatchesJson(algo, info, 'nor-sim-segger.blob', (fn) => map[fn] ?? []);
  });

  it('nor-sim.yaml (probe-rs) has nor-sim.flm\'s blob, entries, static base and geometry', () => {
    const text = readFileSync(path('nor-sim.yaml'), 'utf8');
    const fromYaml = parseProbeRsYaml(text, 'nor-sim.yaml');
    const fromFlm = parseFlm(read('nor-sim.flm'), 'nor-sim.flm');
    expect(fromYaml.format).toBe('probe-rs');
    expect(fromYaml.blob).toEqual(fromFlm.blob);
    expect(fromYaml.functions).toEqual(fromFlm.functions);
    expect(fromYaml.staticBaseOffset).toBe(fromFlm.staticBaseOffset);
    expect(fromYaml.geometry).toEqual(fromFlm.geometry);
    expect(fromYaml.timeouts).toEqual(fromFlm.timeouts);
    expect(fromYaml.loadAddress).toBeUndefined();
    expect(fromYaml.stackSize).toBe(2048);
    expect(listProbeRsAlgorithms(text, 'nor-sim.yaml')).toEqual([
      { name: 'rspflash-nor-sim', description: 'rspflash NOR simulator (Alif geometry)', default: true, start: 0xc0000000, end: 0xc2000000 },
    ]);
  });

  it('nor-sim.yaml keeps its !Ram/!Nvm tags and survives the unknown !v1 tag', () => {
    const text = readFileSync(path('nor-sim.yaml'), 'utf8');
    expect(listProbeRsMemoryRegions(text, 'nor-sim.yaml')).toEqual([
      {
        variant: 'rspflash-nor-sim',
        regions: [
          { kind: 'Ram', name: 'DTCM', start: 0x20000000, end: 0x20080000, cores: ['main'] },
          { kind: 'Nvm', name: 'OSPI1', start: 0xc0000000, end: 0xc2000000, cores: ['main'] },
        ],
      },
    ]);
  });

  it('the FLM, the SEGGER loader and the YAML describe the same flash', () => {
    const flm = loadAlgorithm(read('nor-sim.flm'), 'nor-sim.flm');
    const segger = loadAlgorithm(read('nor-sim-segger.elf'), 'nor-sim-segger.elf');
    const yaml = loadAlgorithm(read('nor-sim.yaml'), 'nor-sim.yaml');
    expect([flm.format, segger.format, yaml.format]).toEqual(['flm', 'segger-sfl', 'probe-rs']);
    expect(segger.geometry).toEqual(flm.geometry);
    expect(yaml.geometry).toEqual(flm.geometry);
  });
});

describe('elfToImage on the compiled boot images', () => {
  it.each(['boot-an547.elf', 'boot-microbit.elf'])('%s: one piece per PT_LOAD with file bytes, at its physical address', (name) => {
    const bytes = read(name);
    const loads = readelf(path(name)).segments.filter((s) => s.type === 'LOAD' && s.filesz > 0);
    const image = elfToImage(bytes, name);
    expect(image.segments.map((s) => ({ address: s.address, length: s.data.length }))).toEqual(
      loads.map((l) => ({ address: l.paddr, length: l.filesz })),
    );
    for (const [i, l] of loads.entries()) expect(image.segments[i]!.data).toEqual(bytes.subarray(l.offset, l.offset + l.filesz));
  });
});
