import { describe, expect, it } from 'vitest';
import { describeAlgorithm, sectorAt, sectorCount } from '../../lib/algo/algorithm.js';
import {
  MAX_ERASE_CHIP_TIMEOUT_MS,
  MIN_ERASE_CHIP_TIMEOUT_MS,
  decodeFlashDevice,
  geometryOf,
  parseFlm,
  timeoutsOf,
} from '../../lib/algo/flm.js';
import { SHF, SHT, flashDeviceBytes, words } from '../helpers/elf-writer.js';
import { formatError } from '../helpers/errors.js';
import { ALIF_DEVICE, ALIF_ENTRIES, F4_DEVICE, alifLikeFlm, smallFlm } from './synthetic.js';

describe('parseFlm on an Alif-shaped FLM (Arm Compiler: HIDDEN FUNC, DevDscr over ZI, two PT_LOADs)', () => {
  const { bytes, prgCode } = alifLikeFlm();
  const algo = parseFlm(bytes, 'Ensemble_IS25WX256.FLM');

  it('takes the name, device type and geometry from FlashDevice', () => {
    expect(algo.name).toBe('Ensemble OSPI1 Flash (IS25WX256)');
    expect(algo.format).toBe('flm');
    expect(algo.deviceType).toBe(5);
    expect(algo.geometry).toEqual({
      start: 0xc0000000,
      size: 32 << 20,
      pageSize: 256,
      erasedValue: 0xff,
      sectors: [{ address: 0xc0000000, size: 0x1000, count: 8192 }],
    });
  });

  it('lays out PrgCode + RW + zeroed ZI, and never the DevDscr bytes that overlap ZI', () => {
    expect(algo.blob.length).toBe(0x8f8 + 4 + 0x74);
    expect(algo.blob.subarray(0, 0x8f8)).toEqual(prgCode);
    expect(algo.blob.subarray(0x8f8, 0x8fc)).toEqual(words(0x12345678));
    expect(algo.blob.subarray(0x8fc).every((b) => b === 0)).toBe(true);
  });

  it('finds every CMSIS routine by symbol with the Thumb bit cleared', () => {
    expect(algo.functions).toEqual(ALIF_ENTRIES);
  });

  it('is position independent with R9 at PrgData and nothing to relocate', () => {
    expect(algo.loadAddress).toBeUndefined();
    expect(algo.staticBaseOffset).toBe(0x8f8);
    expect(algo.relocations).toEqual([]);
    expect(algo.stackSize).toBeUndefined();
  });

  it('takes ProgramPage/EraseSector timeouts from toProg/toErase and caps chip erase', () => {
    expect(algo.timeouts).toEqual({ init: 5000, programPage: 10000, eraseSector: 30000, eraseChip: MAX_ERASE_CHIP_TIMEOUT_MS });
  });

  it('describes itself', () => {
    expect(describeAlgorithm(algo)).toContain('0xc0000000..0xc1ffffff  32 MiB');
  });
});

describe('parseFlm on a GCC-style FLM', () => {
  it('expands several sector entries into runs (STM32F4: 4x16K, 1x64K, 7x128K)', () => {
    const algo = parseFlm(smallFlm().bytes, 'f4.flm');
    expect(algo.geometry.sectors).toEqual([
      { address: 0x08000000, size: 0x4000, count: 4 },
      { address: 0x08010000, size: 0x10000, count: 1 },
      { address: 0x08020000, size: 0x20000, count: 7 },
    ]);
    expect(sectorCount(algo.geometry)).toBe(12);
    expect(sectorAt(algo.geometry, 0x08030000)).toEqual({ address: 0x08020000, size: 0x20000, index: 5 });
    expect(algo.name).toBe('STM32F4xx 1MB Flash');
  });

  it('reads FUNC symbols with DEFAULT visibility and leaves absent optional routines out', () => {
    const algo = parseFlm(smallFlm().bytes, 'f4.flm');
    expect(algo.functions).toEqual({ Init: 0, UnInit: 0x20, EraseSector: 0x40, ProgramPage: 0x60 });
  });

  it('accepts an FLM without Init and UnInit', () => {
    const algo = parseFlm(smallFlm({ functions: { EraseSector: 0x41, ProgramPage: 0x61 } }).bytes, 'x.flm');
    expect(algo.functions).toEqual({ EraseSector: 0x40, ProgramPage: 0x60 });
  });

  it('falls back to the DevDscr section when there is no FlashDevice symbol', () => {
    const algo = parseFlm(smallFlm({ deviceSymbol: false }).bytes, 'x.flm');
    expect(algo.geometry.start).toBe(0x08000000);
    expect(algo.blob.length).toBe(0x120);
  });

  it('gives R9 = PrgData and relocates the words of a separate .got section', () => {
    const algo = parseFlm(
      smallFlm({
        extraSections: [{ name: '.got', flags: SHF.ALLOC | SHF.WRITE, addr: 0x120, data: words(0x100, 0x104, 0x108) }],
      }).bytes,
      'got.flm',
    );
    expect(algo.staticBaseOffset).toBe(0x100);
    expect(algo.relocations).toEqual([0x120, 0x124, 0x128]);
    expect(algo.blob.subarray(0x120, 0x12c)).toEqual(words(0x100, 0x104, 0x108));
  });

  it('treats code linked away from 0 as loaded at its link address', () => {
    const algo = parseFlm(smallFlm({ codeAddr: 0x20000000 }).bytes, 'fixed.flm');
    expect(algo.loadAddress).toBe(0x20000000);
    expect(algo.functions.ProgramPage).toBe(0x60);
    expect(algo.staticBaseOffset).toBe(0x100);
  });

  it('computes a chip-erase timeout of at least a minute', () => {
    const algo = parseFlm(smallFlm().bytes, 'f4.flm');
    expect(algo.timeouts.eraseChip).toBe(Math.max(12 * 6000, MIN_ERASE_CHIP_TIMEOUT_MS));
  });
});

describe('parseFlm rejects', () => {
  it('an FLM without ProgramPage', () => {
    const err = formatError(() => parseFlm(alifLikeFlm({ omit: ['ProgramPage'] }).bytes, 'x.flm'));
    expect(err.message).toMatch(/no ProgramPage function/);
  });

  it('an FLM without EraseSector', () => {
    expect(formatError(() => parseFlm(alifLikeFlm({ omit: ['EraseSector'] }).bytes, 'x.flm')).message).toMatch(/no EraseSector/);
  });

  it('an ELF without a flash device descriptor', () => {
    const { bytes } = smallFlm({ deviceSymbol: false });
    // Rename DevDscr → DevDscX by patching .shstrtab.
    const text = new TextDecoder('latin1').decode(bytes);
    bytes[text.lastIndexOf('DevDscr') + 6] = 0x58;
    expect(formatError(() => parseFlm(bytes, 'x.elf')).message).toMatch(/no flash device descriptor/);
  });

  it('a sector list without terminator', () => {
    const err = formatError(() => parseFlm(smallFlm({ device: { ...F4_DEVICE, noTerminator: true } }).bytes, 'x.flm'));
    expect(err.message).toMatch(/sector list runs past the end of the descriptor after 3 entries/);
    expect(err.offset).toBeGreaterThan(0);
  });

  it('a sector run that is not a whole number of sectors', () => {
    const device = { ...F4_DEVICE, sectors: [[0x4000, 0], [0x10000, 0x12000]] as [number, number][] };
    expect(formatError(() => parseFlm(smallFlm({ device }).bytes, 'x.flm')).message).toMatch(/sector entry 0 .* not a whole number of sectors/);
  });

  it('sector entries out of order', () => {
    const device = { ...F4_DEVICE, sectors: [[0x4000, 0x10000], [0x4000, 0]] as [number, number][] };
    expect(formatError(() => parseFlm(smallFlm({ device }).bytes, 'x.flm')).message).toMatch(/does not end before the next entry/);
  });

  it('a geometry whose first sector does not start at DevAdr (checkGeometry) as a FormatError', () => {
    const device = { ...F4_DEVICE, sectors: [[0x4000, 0x4000]] as [number, number][] };
    const err = formatError(() => parseFlm(smallFlm({ device }).bytes, 'x.flm'));
    expect(err.message).toMatch(/flash geometry is inconsistent: sector run at 0x08004000 should start at 0x08000000/);
  });

  it('a function symbol outside the code', () => {
    const err = formatError(() => parseFlm(smallFlm({ functions: { EraseSector: 0x41, ProgramPage: 0x101 } }).bytes, 'x.flm'));
    expect(err.message).toMatch(/symbol ProgramPage at 0x00000101 is not inside the algorithm's code/);
  });

  it('a non-Arm ELF', () => {
    const { bytes } = smallFlm();
    new DataView(bytes.buffer).setUint16(18, 243, true); // EM_RISCV
    expect(formatError(() => parseFlm(bytes, 'rv.elf')).message).toMatch(/machine 243, not Arm/);
  });

  it('overlapping loaded sections', () => {
    const { bytes } = smallFlm({ extraSections: [{ name: 'Extra', flags: SHF.ALLOC, addr: 0x104, data: words(1, 2) }] });
    expect(formatError(() => parseFlm(bytes, 'x.flm')).message).toMatch(/'PrgData' .* and \[4\] 'Extra' .* overlap/);
  });

  it('a span too large to be an algorithm', () => {
    const { bytes } = smallFlm({ extraSections: [{ name: 'Far', type: SHT.NOBITS, flags: SHF.ALLOC | SHF.WRITE, addr: 0x20000000, size: 4 }] });
    expect(formatError(() => parseFlm(bytes, 'x.flm')).message).toMatch(/span .* more than a flash algorithm can/);
  });
});

describe('decodeFlashDevice', () => {
  it('decodes every field of struct FlashDevice', () => {
    const d = decodeFlashDevice(flashDeviceBytes({ ...ALIF_DEVICE, version: 0x0101, fullArray: false }), 'x');
    expect(d).toEqual({
      version: 0x101,
      name: 'Ensemble OSPI1 Flash (IS25WX256)',
      type: 5,
      address: 0xc0000000,
      size: 0x2000000,
      pageSize: 256,
      reserved: 0,
      erasedValue: 0xff,
      programPageTimeout: 10000,
      eraseSectorTimeout: 30000,
      sectors: [{ size: 0x1000, offset: 0 }],
    });
  });

  it('rejects a descriptor shorter than its header, and a list of 512 entries without terminator', () => {
    expect(formatError(() => decodeFlashDevice(new Uint8Array(100), 'x', 0x40)).offset).toBe(0x40);
    const sectors = Array.from({ length: 512 }, (_, i) => [0x100, i * 0x100] as [number, number]);
    const bytes = flashDeviceBytes({ ...ALIF_DEVICE, fullArray: false, sectors, noTerminator: true });
    expect(formatError(() => decodeFlashDevice(bytes, 'x')).message).toMatch(/no \{0xFFFFFFFF, 0xFFFFFFFF\} terminator within 512 entries/);
  });

  it('rejects a device that runs past 4 GiB', () => {
    const d = decodeFlashDevice(flashDeviceBytes({ ...ALIF_DEVICE, address: 0xfff00000, fullArray: false }), 'x');
    expect(formatError(() => geometryOf(d, 'x')).message).toMatch(/past the end of the 32-bit address space/);
  });

  it('falls back to default timeouts when toProg/toErase are 0', () => {
    const d = decodeFlashDevice(flashDeviceBytes({ ...F4_DEVICE, programPageTimeout: 0, eraseSectorTimeout: 0 }), 'x');
    expect(timeoutsOf(d, 12)).toEqual({ init: 5000, programPage: 1000, eraseSector: 5000, eraseChip: 60000 });
  });
});
