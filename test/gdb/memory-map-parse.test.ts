import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { ReplyFormatError } from '../../lib/errors.js';
import { parseMemoryMap } from '../../lib/gdb/memory-map.js';

const HEADER = `<?xml version="1.0"?>
<!DOCTYPE memory-map PUBLIC "+//IDN gnu.org//DTD GDB Memory Map V1.0//EN" "http://sourceware.org/gdb/gdb-memory-map.dtd">`;

// In the style OpenOCD writes for an STM32F4: one flash region per sector size, regions out of order.
const STM32F4_MAP = `${HEADER}
<memory-map>
<memory type="ram" start="0x20000000" length="0x20000"/>
<memory type="flash" start="0x08000000" length="0x10000">
<property name="blocksize">0x4000</property>
</memory>
<memory type="flash" start="0x08010000" length="0x10000">
<property name="blocksize">0x10000</property>
</memory>
<memory type="flash" start="0x08020000" length="0xe0000">
<property name="blocksize">0x20000</property>
</memory>
<memory type="ram" start="0x00000000" length="0x08000000"/>
<memory type="rom" start="0x1fff0000" length="0x7800"/>
</memory-map>
`;

describe('parseMemoryMap', () => {
  it('reads ram, rom and flash regions with their flash block sizes, sorted by start', () => {
    expect(parseMemoryMap(STM32F4_MAP)).toEqual([
      { type: 'ram', start: 0x00000000, length: 0x08000000 },
      { type: 'flash', start: 0x08000000, length: 0x10000, blockSize: 0x4000 },
      { type: 'flash', start: 0x08010000, length: 0x10000, blockSize: 0x10000 },
      { type: 'flash', start: 0x08020000, length: 0xe0000, blockSize: 0x20000 },
      { type: 'rom', start: 0x1fff0000, length: 0x7800 },
      { type: 'ram', start: 0x20000000, length: 0x20000 },
    ]);
  });

  it('reads decimal numbers, and hex in either case', () => {
    const xml = '<memory-map><memory type="flash" start="0XC0000000" length="33554432"><property name="blocksize">4096</property></memory></memory-map>';
    expect(parseMemoryMap(xml)).toEqual([{ type: 'flash', start: 0xc0000000, length: 32 << 20, blockSize: 4096 }]);
  });

  it('reads a leading 0 as octal, as GDB\'s strtoul does', () => {
    expect(parseMemoryMap('<memory-map><memory type="ram" start="010" length="020"/></memory-map>')).toEqual([
      { type: 'ram', start: 8, length: 16 },
    ]);
  });

  it('tolerates whitespace around numbers and inside the blocksize element', () => {
    const xml = '<memory-map><memory type="flash" start=" 0x0 " length="0x1000">\n  <property name="blocksize">\n 0x400 \n</property>\n</memory></memory-map>';
    expect(parseMemoryMap(xml)[0]?.blockSize).toBe(0x400);
  });

  it('leaves blockSize out for a flash region without a blocksize property', () => {
    const [region] = parseMemoryMap('<memory-map><memory type="flash" start="0" length="0x1000"/></memory-map>');
    expect(region).toEqual({ type: 'flash', start: 0, length: 0x1000 });
    expect(region && 'blockSize' in region).toBe(false);
  });

  it('ignores unknown properties and unknown elements', () => {
    const xml = '<memory-map><note/><memory type="flash" start="0" length="0x1000"><property name="speed">fast</property><property name="blocksize">0x100</property></memory></memory-map>';
    expect(parseMemoryMap(xml)).toEqual([{ type: 'flash', start: 0, length: 0x1000, blockSize: 0x100 }]);
  });

  it('returns no regions for an empty map', () => {
    expect(parseMemoryMap(`${HEADER}<memory-map/>`)).toEqual([]);
  });

  it('accepts regions that touch but do not overlap, up to the end of the 32-bit space', () => {
    const xml = '<memory-map><memory type="ram" start="0x0" length="0x80000000"/><memory type="ram" start="0x80000000" length="0x80000000"/></memory-map>';
    expect(parseMemoryMap(xml).map((r) => r.start + r.length)).toEqual([0x80000000, 0x100000000]);
  });

  it('keeps any set of non-overlapping regions, sorted', () => {
    const regions = fc.uniqueArray(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 12 }).map((blocks) =>
      blocks.map((b) => ({ start: b * 0x10000, length: 0x8000 })),
    );
    fc.assert(
      fc.property(regions, (rs) => {
        const xml = `<memory-map>${rs.map((r) => `<memory type="ram" start="0x${r.start.toString(16)}" length="${r.length}"/>`).join('')}</memory-map>`;
        const parsed = parseMemoryMap(xml);
        expect(parsed.map((r) => r.start)).toEqual(rs.map((r) => r.start).sort((a, b) => a - b));
      }),
    );
  });
});

describe('parseMemoryMap rejections', () => {
  const cases: Array<[string, string]> = [
    ['a root other than memory-map', '<target/>'],
    ['an unknown memory type', '<memory-map><memory type="eeprom" start="0" length="1"/></memory-map>'],
    ['a region without type', '<memory-map><memory start="0" length="1"/></memory-map>'],
    ['a region without start', '<memory-map><memory type="ram" length="1"/></memory-map>'],
    ['a region without length', '<memory-map><memory type="ram" start="0"/></memory-map>'],
    ['a non-numeric start', '<memory-map><memory type="ram" start="zero" length="1"/></memory-map>'],
    ['a negative length', '<memory-map><memory type="ram" start="0" length="-1"/></memory-map>'],
    ['a bad octal number', '<memory-map><memory type="ram" start="09" length="1"/></memory-map>'],
    ['a length of 0', '<memory-map><memory type="ram" start="0" length="0"/></memory-map>'],
    ['a blocksize of 0', '<memory-map><memory type="flash" start="0" length="1"><property name="blocksize">0</property></memory></memory-map>'],
    ['a non-numeric blocksize', '<memory-map><memory type="flash" start="0" length="1"><property name="blocksize">big</property></memory></memory-map>'],
    ['an address beyond 2^53', '<memory-map><memory type="ram" start="0xffffffffffffffff" length="1"/></memory-map>'],
    [
      'overlapping regions',
      '<memory-map><memory type="flash" start="0x08000000" length="0x1000"/><memory type="ram" start="0x08000800" length="0x100"/></memory-map>',
    ],
    ['malformed XML', '<memory-map><memory type="ram" start="0" length="1"></memory-map>'],
    ['an empty reply', ''],
  ];
  for (const [why, xml] of cases) {
    it(`rejects ${why} with ReplyFormatError`, () => {
      expect(() => parseMemoryMap(xml)).toThrow(ReplyFormatError);
    });
  }

  it('says which regions overlap, with 0x-prefixed 8-digit addresses', () => {
    const xml = '<memory-map><memory type="flash" start="0x08000000" length="0x1000"/><memory type="ram" start="0x08000800" length="0x100"/></memory-map>';
    expect(() => parseMemoryMap(xml)).toThrow(/0x08000000.*0x08000800.*overlap/);
  });
});

describe('parseMemoryMap XML safety', () => {
  let consoleSpies: Array<ReturnType<typeof vi.spyOn>> = [];
  beforeEach(() => {
    consoleSpies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => vi.spyOn(console, m).mockImplementation(() => {}));
  });
  afterEach(() => {
    for (const spy of consoleSpies) spy.mockRestore();
  });

  it('does not expand a declared entity', () => {
    const xml = '<!DOCTYPE memory-map [<!ENTITY big "0x1000">]><memory-map><memory type="ram" start="0" length="&big;"/></memory-map>';
    expect(() => parseMemoryMap(xml)).toThrow(ReplyFormatError);
  });

  it('rejects a billion-laughs document quickly', () => {
    let xml = '<!DOCTYPE memory-map [<!ENTITY l0 "1">';
    for (let i = 1; i <= 9; i++) xml += `<!ENTITY l${i} "${`&l${i - 1};`.repeat(10)}">`;
    xml += ']><memory-map><memory type="ram" start="0" length="&l9;"/></memory-map>';
    const t0 = performance.now();
    expect(() => parseMemoryMap(xml)).toThrow(ReplyFormatError);
  });

  it('refuses a document larger than the cap before parsing it', () => {
    const xml = `<memory-map>${' '.repeat(5 << 20)}</memory-map>`;
    expect(() => parseMemoryMap(xml)).toThrow(/characters long/);
  });

  it('never prints to the console', () => {
    for (const xml of ['<memory-map', '<memory-map><memory type=ram/></memory-map>', '<a></b>', '\ufffd<memory-map/>']) {
      expect(() => parseMemoryMap(xml)).toThrow(ReplyFormatError);
    }
    for (const spy of consoleSpies) expect(spy).not.toHaveBeenCalled();
  });
});
