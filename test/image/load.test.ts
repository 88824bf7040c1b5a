import { describe, expect, it, vi } from 'vitest';
import { FormatError, UsageError } from '../../lib/errors.js';
import { createImage } from '../../lib/image/image.js';
import { detectImageFormat, loadImage } from '../../lib/image/load.js';
import { file, IHEX_EOF, ihex, segmentsOf, srec } from './helpers.js';

// ELF parsing is elf.ts's business and tested there; here only the dispatch to it matters.
const ELF_IMAGE = createImage([{ address: 0xe1f, data: Uint8Array.of(0xe1) }]);
vi.mock('../../lib/image/elf.js', () => ({
  elfToImage: vi.fn((_bytes: Uint8Array, _source: string) => ELF_IMAGE),
}));

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);
const ELF_HEADER = Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0);
const HEX_TEXT = file(ihex(0, 0x10, [1, 2]), IHEX_EOF);
const SREC_TEXT = file(srec(1, 2, 0x10, [1, 2]), srec(9, 2, 0));
const VECTORS = Uint8Array.of(0x00, 0x10, 0x00, 0x20, 0x01, 0x01, 0x00, 0x08);

describe('detectImageFormat', () => {
  it('knows ELF by its magic number, whatever the name', () => {
    expect(detectImageFormat(ELF_HEADER, 'firmware')).toBe('elf');
    expect(detectImageFormat(ELF_HEADER, 'firmware.bin')).toBe('elf');
    expect(detectImageFormat(ELF_HEADER, 'firmware.hex')).toBe('elf');
  });

  it('knows Intel HEX by a leading colon and S-records by S0–S9, after blank lines and a byte-order mark', () => {
    expect(detectImageFormat(ascii(HEX_TEXT), 'noext')).toBe('hex');
    expect(detectImageFormat(ascii('\uFEFF\r\n  ' + HEX_TEXT), 'noext')).toBe('hex');
    expect(detectImageFormat(ascii(SREC_TEXT), 'noext')).toBe('srec');
    expect(detectImageFormat(ascii('S9030000FC'), 'out.txt')).toBe('srec');
  });

  it('trusts a .bin extension over content, since raw bytes can look like anything', () => {
    expect(detectImageFormat(ascii(HEX_TEXT), 'odd.bin')).toBe('bin');
  });

  it('falls back to the extension, in any case and with directories in the path', () => {
    const cases: [string, string][] = [
      ['a.bin', 'bin'], ['a.hex', 'hex'], ['a.ihex', 'hex'], ['a.ihx', 'hex'], ['a.srec', 'srec'], ['a.s19', 'srec'],
      ['a.s28', 'srec'], ['a.s37', 'srec'], ['a.mot', 'srec'], ['a.elf', 'elf'], ['a.axf', 'elf'], ['a.out', 'elf'],
      ['build.d/APP.HEX', 'hex'], ['C:\\fw\\App.S19', 'srec'],
    ];
    for (const [name, format] of cases) expect(detectImageFormat(VECTORS, name), name).toBe(format);
  });

  it('gives undefined when neither content nor name tells', () => {
    expect(detectImageFormat(VECTORS, 'firmware')).toBeUndefined();
    expect(detectImageFormat(VECTORS, 'build.d/firmware')).toBeUndefined();
    expect(detectImageFormat(new Uint8Array(0), '.hidden')).toBeUndefined();
    expect(detectImageFormat(ascii('Sx'), 'x.txt')).toBeUndefined();
  });
});

describe('loadImage', () => {
  it('reads Intel HEX and S-records', () => {
    expect(segmentsOf(loadImage(ascii(HEX_TEXT), { source: 'app.hex' }))).toEqual([{ address: 0x10, data: [1, 2] }]);
    expect(segmentsOf(loadImage(ascii(SREC_TEXT), { source: 'app' }))).toEqual([{ address: 0x10, data: [1, 2] }]);
  });

  it('hands ELF files to elfToImage', () => {
    expect(loadImage(ELF_HEADER, { source: 'app.axf' })).toBe(ELF_IMAGE);
  });

  it('places a raw binary at `base`', () => {
    expect(segmentsOf(loadImage(VECTORS, { source: 'app.bin', base: 0x0800_0000 }))).toEqual([{ address: 0x0800_0000, data: Array.from(VECTORS) }]);
  });

  it('requires `base` for a raw binary, naming the option as the API spells it', () => {
    expect(() => loadImage(VECTORS, { source: 'app.bin' })).toThrow(UsageError);
    expect(() => loadImage(VECTORS, { source: 'app.bin' })).toThrow(/^`base` is required for \.bin images/);
    expect(() => loadImage(ascii(HEX_TEXT), { source: 'x', format: 'bin' })).toThrow(/`base` is required/);
  });

  it('reads a file of unknown format as raw binary when `base` is given', () => {
    expect(loadImage(VECTORS, { source: 'firmware', base: 0x100 }).segments[0]!.address).toBe(0x100);
  });

  it('refuses `base` for formats that carry their own addresses', () => {
    expect(() => loadImage(ascii(HEX_TEXT), { source: 'app.hex', base: 0 })).toThrow(/`base` applies only to \.bin images; app\.hex is Intel HEX/);
    expect(() => loadImage(ELF_HEADER, { source: 'app.elf', base: 0 })).toThrow(UsageError);
  });

  it('says how to proceed when the format cannot be told', () => {
    let caught: unknown;
    try {
      loadImage(VECTORS, { source: 'firmware' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as UsageError).message).toMatch(/cannot tell the format of firmware/);
    expect((caught as UsageError).hint).toMatch(/`base`.*`format`/);
  });

  it('uses an explicit format over detection', () => {
    expect(() => loadImage(ascii(SREC_TEXT), { source: 'app.srec', format: 'hex' })).toThrow(FormatError);
    expect(segmentsOf(loadImage(ascii(HEX_TEXT), { source: 'app.bin', format: 'hex' }))).toEqual([{ address: 0x10, data: [1, 2] }]);
  });

  it('reports malformed content as a FormatError from the reader', () => {
    expect(() => loadImage(ascii(':00000001FE\n'), { source: 'bad.hex' })).toThrow(/bad\.hex line 1: checksum mismatch/);
  });
});
