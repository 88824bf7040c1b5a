import { describe, expect, it } from 'vitest';
import { listProbeRsAlgorithms, listProbeRsMemoryRegions, parseProbeRsYaml } from '../../lib/algo/probe-rs.js';
import { formatError } from '../helpers/errors.js';

const CODE = Uint8Array.from({ length: 0x40 }, (_, i) => i + 1);
const B64 = Buffer.from(CODE).toString('base64');

/** One algorithm entry, indented for a `flash_algorithms:` list. */
function algorithm(name: string, extra = ''): string {
  return `- name: ${name}
  description: ${name} flash
  instructions: ${B64}
  pc_init: 0x1
  pc_uninit: 0x11
  pc_program_page: 0x21
  pc_erase_sector: 0x31
  pc_erase_all: 0x39
  data_section_offset: 0x38
  flash_properties:
    address_range:
      start: 0x0
      end: 0x40000
    page_size: 0x400
    erased_byte_value: 0xff
    program_page_timeout: 1000
    erase_sector_timeout: 2000
    sectors:
    - size: 0x400
      address: 0x0
${extra}`;
}

/** A target file shaped like probe-rs's targets/*.yaml, tags included. */
function target(algorithms: string): string {
  return `name: nRF51 Series
manufacturer:
  id: 0x44
  cc: 0x2
chip_detection:
- !NordicConfigId
  configid_address: 0x10000000
  hwid_address: 0x1000005C
  variants:
    0x0: nRF51822_xxAA
variants:
- name: nRF51822_xxAA
  cores:
  - name: main
    type: armv6m
    core_access_options: !Arm
      ap: !v1 0
      psel: 0x0
  memory_map:
  - !Nvm
    name: FLASH
    range:
      start: 0x0
      end: 0x40000
    is_boot_memory: true
    cores:
    - main
  - !Ram
    name: RAM
    range: { start: 0x20000000, end: 0x20004000 }
    cores: [main]
  - !Generic
    name: FICR
    range: { start: 0x10000000, end: 0x10000100 }
  - !SomethingNew
    name: Future
    range: { start: 0x30000000, end: 0x30000100 }
  flash_algorithms:
  - nrf51
flash_algorithms:
${algorithms}`;
}

describe('parseProbeRsYaml', () => {
  const text = target(algorithm('nrf51'));

  it('decodes the only algorithm of a target file', () => {
    const algo = parseProbeRsYaml(text, 'nRF51.yaml');
    expect(algo).toEqual({
      name: 'nrf51',
      format: 'probe-rs',
      blob: CODE,
      loadAddress: undefined,
      functions: { Init: 0x0, UnInit: 0x10, ProgramPage: 0x20, EraseSector: 0x30, EraseChip: 0x38 },
      staticBaseOffset: 0x38,
      relocations: [],
      stackSize: undefined,
      geometry: { start: 0, size: 0x40000, pageSize: 0x400, erasedValue: 0xff, sectors: [{ address: 0, size: 0x400, count: 256 }] },
      timeouts: { init: 5000, programPage: 1000, eraseSector: 2000, eraseChip: 256 * 2000 },
    });
  });

  it('clears the Thumb bit that target-gen copies from st_value (pc_init: 0x1 is offset 0)', () => {
    expect(parseProbeRsYaml(text, 'x.yaml').functions.Init).toBe(0);
  });

  it('reads load_address, stack_size, erase_chip_timeout, pc_verify, pc_blank_check, pc_read', () => {
    const extra = `  load_address: 0x20000008
  stack_size: 1024
  pc_verify: 0x3b
  pc_blank_check: 0x3d
  pc_read: 0x3f
`;
    const yaml = target(algorithm('nrf51', extra)).replace('    erase_sector_timeout: 2000', '    erase_sector_timeout: 2000\n    erase_chip_timeout: 45000');
    const algo = parseProbeRsYaml(yaml, 'x.yaml');
    expect(algo.loadAddress).toBe(0x20000008);
    expect(algo.stackSize).toBe(1024);
    expect(algo.timeouts.eraseChip).toBe(45000);
    expect(algo.functions).toMatchObject({ Verify: 0x3a, BlankCheck: 0x3c, Read: 0x3e });
  });

  it('expands several sector entries relative to address_range.start', () => {
    const yaml = target(
      algorithm('f4')
        .replace('start: 0x0\n      end: 0x40000', 'start: 0x8000000\n      end: 0x8100000')
        .replace('    - size: 0x400\n      address: 0x0', '    - { size: 0x4000, address: 0x0 }\n    - { size: 0x10000, address: 0x10000 }\n    - { size: 0x20000, address: 0x20000 }'),
    );
    expect(parseProbeRsYaml(yaml, 'f4.yaml').geometry.sectors).toEqual([
      { address: 0x8000000, size: 0x4000, count: 4 },
      { address: 0x8010000, size: 0x10000, count: 1 },
      { address: 0x8020000, size: 0x20000, count: 7 },
    ]);
  });

  it('accepts a lone algorithm document (what target-gen prints)', () => {
    const lone = algorithm('solo')
      .split('\n')
      .map((l) => l.replace(/^(- | {2})/, ''))
      .join('\n');
    expect(parseProbeRsYaml(lone, 'solo.yaml').name).toBe('solo');
  });

  describe('picks the algorithm', () => {
    const two = target(algorithm('a') + algorithm('b'));

    it('by name', () => {
      expect(parseProbeRsYaml(two, 'x.yaml', { name: 'b' }).name).toBe('b');
    });

    it('marked default when no name is given', () => {
      expect(parseProbeRsYaml(target(algorithm('a') + algorithm('b', '  default: true\n')), 'x.yaml').name).toBe('b');
    });

    it('and lists the names when the choice is ambiguous', () => {
      expect(formatError(() => parseProbeRsYaml(two, 'x.yaml')).message).toMatch(/2 flash algorithms and none marked default; choose one by name: a, b/);
    });

    it('and lists the names when the name is unknown', () => {
      expect(formatError(() => parseProbeRsYaml(two, 'x.yaml', { name: 'c' })).message).toMatch(/no flash algorithm named 'c'; the file has: a, b/);
    });
  });

  describe('rejects with the field named', () => {
    const swap = (from: string, to: string) => target(algorithm('nrf51')).replace(from, to);

    it('a string where a number belongs', () => {
      expect(formatError(() => parseProbeRsYaml(swap('page_size: 0x400', "page_size: '0x400'"), 'x.yaml')).message).toMatch(
        /flash_algorithms\[0\]\.flash_properties\.page_size must be a number, found the string '0x400'/,
      );
    });

    it('a YAML 1.1-style number the 1.2 core schema reads as a string', () => {
      expect(formatError(() => parseProbeRsYaml(swap('pc_init: 0x1', 'pc_init: 0x0_1'), 'x.yaml')).message).toMatch(/pc_init must be a number/);
    });

    it('a missing required field', () => {
      expect(formatError(() => parseProbeRsYaml(swap('  pc_erase_sector: 0x31\n', ''), 'x.yaml')).message).toMatch(/pc_erase_sector is missing/);
      expect(formatError(() => parseProbeRsYaml(swap('    page_size: 0x400\n', ''), 'x.yaml')).message).toMatch(/page_size is missing/);
    });

    it('a negative, fractional or oversized number', () => {
      expect(formatError(() => parseProbeRsYaml(swap('pc_init: 0x1', 'pc_init: -4'), 'x.yaml')).message).toMatch(/pc_init must be an integer/);
      expect(formatError(() => parseProbeRsYaml(swap('pc_init: 0x1', 'pc_init: 1.5'), 'x.yaml')).message).toMatch(/pc_init must be an integer/);
      expect(formatError(() => parseProbeRsYaml(swap('erased_byte_value: 0xff', 'erased_byte_value: 0x1ff'), 'x.yaml')).message).toMatch(/erased_byte_value must be an integer from 0 to 0xff/);
    });

    it('an entry point outside the code', () => {
      expect(formatError(() => parseProbeRsYaml(swap('pc_uninit: 0x11', 'pc_uninit: 0x41'), 'x.yaml')).message).toMatch(/pc_uninit \(0x41\) is outside the 64-byte code/);
    });

    it('bad base64', () => {
      expect(formatError(() => parseProbeRsYaml(swap(B64, 'not*base64'), 'x.yaml')).message).toMatch(/instructions is not valid base64/);
    });

    it('big-endian or compressed algorithms', () => {
      expect(formatError(() => parseProbeRsYaml(target(algorithm('x', '  big_endian: true\n')), 'x.yaml')).message).toMatch(/big_endian is true/);
      expect(formatError(() => parseProbeRsYaml(target(algorithm('x', '  transfer_encoding: miniz\n')), 'x.yaml')).message).toMatch(/only raw transfer encoding/);
    });

    it('sectors that do not divide the flash', () => {
      expect(formatError(() => parseProbeRsYaml(swap('- size: 0x400', '- size: 0x300'), 'x.yaml')).message).toMatch(/sectors\[0\]\.size \(0x300\) does not divide/);
    });

    it('invalid YAML, with the offset', () => {
      const err = formatError(() => parseProbeRsYaml('a: [1, 2\nb: }', 'bad.yaml'));
      expect(err.message).toMatch(/bad.yaml: not valid YAML/);
      expect(err.offset).toBeTypeOf('number');
    });

    it('a YAML file without algorithms', () => {
      expect(formatError(() => parseProbeRsYaml('name: foo\n', 'x.yaml')).message).toMatch(/no flash algorithms/);
    });

    it('an alias bomb, without hanging', () => {
      const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill('*' + 'abcdefghi'[i]).join(', ')}]`), 'flash_algorithms: *i'].join('\n');
      expect(formatError(() => parseProbeRsYaml(bomb, 'bomb.yaml')).message).toMatch(/bomb.yaml: YAML could not be converted: Excessive alias count/);
    });
  });
});

describe('listProbeRsAlgorithms', () => {
  it('lists name, description, default and address range', () => {
    expect(listProbeRsAlgorithms(target(algorithm('a') + algorithm('b', '  default: true\n')))).toEqual([
      { name: 'a', description: 'a flash', default: false, start: 0, end: 0x40000 },
      { name: 'b', description: 'b flash', default: true, start: 0, end: 0x40000 },
    ]);
  });
});

describe('listProbeRsMemoryRegions', () => {
  it('keeps the !Ram / !Nvm / !Generic tags and parses unknown tags as plain mappings', () => {
    expect(listProbeRsMemoryRegions(target(algorithm('nrf51')))).toEqual([
      {
        variant: 'nRF51822_xxAA',
        regions: [
          { kind: 'Nvm', name: 'FLASH', start: 0, end: 0x40000, cores: ['main'] },
          { kind: 'Ram', name: 'RAM', start: 0x20000000, end: 0x20004000, cores: ['main'] },
          { kind: 'Generic', name: 'FICR', start: 0x10000000, end: 0x10000100, cores: [] },
          { kind: 'SomethingNew', name: 'Future', start: 0x30000000, end: 0x30000100, cores: [] },
        ],
      },
    ]);
  });
});
