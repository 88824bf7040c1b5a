import { describe, expect, it } from 'vitest';
import { ImageOverlapError } from '../../lib/errors.js';
import { loadAlgorithm } from '../../lib/algo/load.js';
import { elfToImage } from '../../lib/image/elf.js';
import { SHF, SHT, STT, flashDeviceBytes, words, writeElf } from '../helpers/elf-writer.js';
import { formatError } from '../helpers/errors.js';
import { F4_DEVICE, alifLikeFlm, code } from './synthetic.js';

describe('loadAlgorithm detects the format', () => {
  it('an ELF without SEGGER symbols is an FLM', () => {
    expect(loadAlgorithm(alifLikeFlm().bytes, 'Alif.FLM').format).toBe('flm');
  });

  it('an ELF with SEGGER_FL_* symbols is a SEGGER SFL loader', () => {
    const { bytes } = writeElf({
      sections: [
        { name: 'PrgCode', flags: SHF.ALLOC | SHF.EXECINSTR, addr: 0, data: code(0x100) },
        { name: 'DevDscr', flags: SHF.ALLOC, addr: 0x100, data: flashDeviceBytes(F4_DEVICE) },
      ],
      symbols: ['Prepare', 'Restore', 'Program', 'Erase'].map((n, i) => ({ name: `SEGGER_FL_${n}`, value: i * 0x20 + 1, section: 'PrgCode' })),
    });
    expect(loadAlgorithm(bytes, 'loader.elf').format).toBe('segger-sfl');
  });

  it('text is probe-rs YAML, and the name option picks the algorithm', () => {
    const algo = (name: string) => `- name: ${name}
  instructions: ${Buffer.from(code(16)).toString('base64')}
  pc_program_page: 0x1
  pc_erase_sector: 0x5
  flash_properties:
    address_range: { start: 0x0, end: 0x1000 }
    page_size: 0x100
    erased_byte_value: 0xff
    program_page_timeout: 100
    erase_sector_timeout: 100
    sectors: [{ size: 0x1000, address: 0x0 }]
`;
    const text = `flash_algorithms:\n${algo('one')}${algo('two')}`;
    const loaded = loadAlgorithm(new TextEncoder().encode('\uFEFF' + text), 'target.yaml', { name: 'two' });
    expect(loaded).toMatchObject({ format: 'probe-rs', name: 'two' });
  });

  it('binary that is not ELF is rejected, naming the accepted formats', () => {
    const err = formatError(() => loadAlgorithm(Uint8Array.of(0x00, 0x01, 0x02, 0xff), 'firmware.bin'));
    expect(err.message).toMatch(/firmware.bin: neither an ELF file nor text; expected a CMSIS flash algorithm \(.FLM\), a SEGGER flash loader \(ELF\) or a probe-rs target description \(YAML\)/);
  });

  it('text that is not a target description is rejected, naming the accepted formats', () => {
    expect(formatError(() => loadAlgorithm(new TextEncoder().encode('hello: world\n'), 'notes.txt')).message).toMatch(
      /no flash algorithms.*Expected a CMSIS flash algorithm/,
    );
    expect(formatError(() => loadAlgorithm(new TextEncoder().encode(':\n  - [\n'), 'junk.txt')).message).toMatch(/not valid YAML.*Expected a CMSIS/);
  });

  it('invalid UTF-8 counts as binary', () => {
    expect(formatError(() => loadAlgorithm(Uint8Array.of(0xc3, 0x28, 0x41), 'x')).message).toMatch(/neither an ELF file nor text/);
  });
});

describe('elfToImage', () => {
  /** Firmware: .text in flash, .data run in RAM but stored in flash after .text, .bss in RAM. */
  function firmware() {
    const text = code(0x100, 3);
    const data = words(0x11111111, 0x22222222);
    return {
      text,
      data,
      ...writeElf({
        sections: [
          { name: '.text', flags: SHF.ALLOC | SHF.EXECINSTR, addr: 0x08000000, data: text },
          { name: '.data', flags: SHF.ALLOC | SHF.WRITE, addr: 0x20000000, data },
          { name: '.bss', type: SHT.NOBITS, flags: SHF.ALLOC | SHF.WRITE, addr: 0x20000008, size: 0x100 },
          { name: '.debug_info', flags: 0, data: code(32) },
        ],
        symbols: [{ name: 'main', value: 0x08000001, type: STT.FUNC, section: '.text' }],
        segments: [
          { sections: [0] },
          // .data: runs at 0x20000000 (vaddr), stored right after .text (paddr); memsz includes .bss.
          { sections: [1, 2], vaddr: 0x20000000, paddr: 0x08000100 },
        ],
      }),
    };
  }

  it('places each PT_LOAD at its physical address with only its file bytes', () => {
    const { bytes, text, data } = firmware();
    const image = elfToImage(bytes, 'app.elf');
    // .text and the .data load image are adjacent in flash: merged into one segment.
    expect(image.segments).toHaveLength(1);
    expect(image.segments[0]!.address).toBe(0x08000000);
    expect(image.segments[0]!.data).toEqual(Uint8Array.from([...text, ...data]));
  });

  it('copies the bytes out of the input buffer', () => {
    const { bytes } = firmware();
    const image = elfToImage(bytes, 'app.elf');
    bytes.fill(0);
    expect(image.segments[0]!.data[0]).not.toBe(0);
  });

  it('skips segments without file bytes (only .bss)', () => {
    const { bytes } = writeElf({
      sections: [
        { name: '.text', flags: SHF.ALLOC | SHF.EXECINSTR, addr: 0, data: code(8) },
        { name: '.bss', type: SHT.NOBITS, flags: SHF.ALLOC | SHF.WRITE, addr: 0x20000000, size: 64 },
      ],
      segments: [{ sections: [0] }, { sections: [1] }],
    });
    expect(elfToImage(bytes, 'x.elf').segments.map((s) => [s.address, s.data.length])).toEqual([[0, 8]]);
  });

  it('names the program headers when two segments disagree about a byte', () => {
    const { bytes } = writeElf({
      sections: [
        { name: 'a', addr: 0x1000, data: words(1) },
        { name: 'b', addr: 0x2000, data: words(2) },
      ],
      segments: [{ sections: [0] }, { sections: [1], paddr: 0x1000 }],
    });
    expect(() => elfToImage(bytes, 'app.elf')).toThrow(ImageOverlapError);
    expect(() => elfToImage(bytes, 'app.elf')).toThrow(/app.elf PT_LOAD\[1\] and app.elf PT_LOAD\[0\] write different bytes at 0x00001000/);
  });

  it('rejects an ELF without loadable bytes (an object file)', () => {
    const { bytes } = writeElf({ type: 1, sections: [{ name: '.text', flags: SHF.ALLOC | SHF.EXECINSTR, data: code(8) }] });
    expect(formatError(() => elfToImage(bytes, 'main.o')).message).toMatch(/main.o: no loadable segments/);
  });

  it('rejects what is not ELF', () => {
    expect(formatError(() => elfToImage(new Uint8Array(64), 'app.bin')).message).toMatch(/not an ELF file/);
  });
});
