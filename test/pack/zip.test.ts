/**
 * The zip reader: what it reads (STORE, DEFLATE, comments, data descriptors,
 * an archive written by Info-ZIP) and what it refuses — every hostile archive
 * ends in a FormatError naming the archive and the entry, never in another
 * exception or unbounded memory.
 */
import { readFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../lib/errors.js';
import { openZip, unsafeNameReason } from '../../lib/pack/zip.js';
import { formatError } from '../helpers/errors.js';
import { seededBytes } from '../helpers/bytes.js';
import { writeZip } from '../helpers/zip-writer.js';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const SOURCE = 'hostile.pack';

describe('openZip reads', () => {
  it('stored and deflated entries, byte for byte', () => {
    const blob = seededBytes(5000, 1);
    const zip = openZip(
      writeZip([
        { name: 'Vendor.Dfp.pdsc', data: '<package/>' },
        { name: 'Flash/', data: '', method: 'store' },
        { name: 'Flash/algo.flm', data: blob, method: 'store' },
        { name: 'Flash/zeros.bin', data: new Uint8Array(100_000) },
      ]),
      'a.pack',
    );
    expect(zip.entries.map((e) => [e.name, e.directory])).toEqual([
      ['Vendor.Dfp.pdsc', false],
      ['Flash/', true],
      ['Flash/algo.flm', false],
      ['Flash/zeros.bin', false],
    ]);
    expect(text(zip.read('Vendor.Dfp.pdsc'))).toBe('<package/>');
    expect(zip.read('Flash/algo.flm')).toEqual(blob);
    expect(zip.read('Flash/zeros.bin')).toEqual(new Uint8Array(100_000));
  });

  it('an archive with a comment that itself contains an end-of-central-directory signature', () => {
    const zip = openZip(writeZip([{ name: 'a.txt', data: 'A' }], { comment: 'PK\x05\x06 looks like a record' }), 'c.zip');
    expect(text(zip.read('a.txt'))).toBe('A');
  });

  it('entries whose sizes are in a data descriptor (streaming writers)', () => {
    const zip = openZip(writeZip([{ name: 'x.bin', data: seededBytes(300, 2), dataDescriptor: true }, { name: 'y', data: 'y' }]), 'd.zip');
    expect(zip.read('x.bin')).toEqual(seededBytes(300, 2));
    expect(text(zip.read('y'))).toBe('y');
  });

  it('an archive written by Info-ZIP zip 3.0 (directory entry, stored, deflated, comment)', () => {
    const zip = openZip(new Uint8Array(readFileSync(new URL('../fixtures/pack/infozip.zip', import.meta.url))), 'infozip.zip');
    expect(zip.entries.map((e) => e.name)).toEqual(['a.txt', 'Flash/', 'Flash/big.txt', '-']);
    expect(text(zip.read('a.txt'))).toBe('hello pack\n');
    expect(text(zip.read('Flash/big.txt'))).toBe('0123456789abcdef'.repeat(400) + '\n');
  });

  it('a name that differs only in case when the exact one is absent (packs written on Windows)', () => {
    const zip = openZip(writeZip([{ name: 'Flash/Algo.FLM', data: 'flm' }]), 'e.zip');
    expect(text(zip.read('flash/algo.flm'))).toBe('flm');
  });

  it('whatever entries it wrote itself (property)', () => {
    const entry = fc.record({
      name: fc.stringMatching(/^[A-Za-z0-9_]{1,8}(\/[A-Za-z0-9_.-]{1,8}){0,2}$/).filter((n) => unsafeNameReason(n) === undefined),
      data: fc.uint8Array({ maxLength: 2000 }),
      method: fc.constantFrom('store' as const, 'deflate' as const),
    });
    fc.assert(
      fc.property(fc.uniqueArray(entry, { selector: (e) => e.name.toLowerCase(), maxLength: 6 }), fc.string({ maxLength: 40 }), (entries, comment) => {
        const zip = openZip(writeZip(entries, { comment }), 'p.zip');
        expect(zip.entries.map((e) => e.name)).toEqual(entries.map((e) => e.name));
        for (const e of entries) expect(zip.read(e.name)).toEqual(e.data);
      }),
      { numRuns: 200 },
    );
  });
});

describe('openZip refuses, with a FormatError naming the archive and the entry,', () => {
  const refuse = (bytes: Uint8Array, pattern: RegExp, limits = {}) => {
    const err = formatError(() => {
      const zip = openZip(bytes, SOURCE, limits);
      for (const e of zip.entries) if (!e.directory) zip.read(e.name);
    });
    expect(err.source).toBe(SOURCE);
    expect(err.message).toMatch(pattern);
    return err;
  };

  it.each([
    ['../evil.flm', /"\.\.\/evil\.flm".*"\.\." segment/],
    ['Flash/../../evil.flm', /"\.\." segment/],
    ['/etc/passwd', /absolute path/],
    ['C:/Windows/evil.flm', /drive letter/],
    ['Flash\\..\\evil.flm', /backslash/],
    ['Flash//evil.flm', /empty segment/],
    ['./evil.flm', /"\." segment/],
    ['evil\0.flm', /NUL byte/],
  ])('a path trick: %j', (name, pattern) => {
    refuse(writeZip([{ name, data: 'x' }]), pattern);
  });

  it('a name that appears twice, or twice differing only in case', () => {
    refuse(writeZip([{ name: 'a.flm', data: 'x' }, { name: 'a.flm', data: 'y' }]), /"a\.flm" appears twice/);
    refuse(writeZip([{ name: 'A.FLM', data: 'x' }, { name: 'a.flm', data: 'y' }]), /"a\.flm" and "A\.FLM" differ only in case/);
  });

  it('a local header whose name differs from the central directory', () => {
    refuse(writeZip([{ name: 'Flash/a.flm', localName: '../a.flm', data: 'x' }]), /"Flash\/a\.flm".*local header names it "\.\.\/a\.flm"/);
  });

  it('encrypted entries', () => {
    refuse(writeZip([{ name: 'secret.flm', data: 'x', flags: 1 }]), /"secret\.flm" is encrypted/);
  });

  it('compression methods other than STORE and DEFLATE', () => {
    refuse(writeZip([{ name: 'b.flm', data: 'x', method: 12 }]), /"b\.flm" uses compression method 12/);
  });

  it('a bomb that declares a small size and inflates to far more, without inflating it all', () => {
    const bomb = new Uint8Array(deflateRawSync(new Uint8Array(50 << 20)));
    const err = refuse(writeZip([{ name: 'bomb.bin', data: new Uint8Array(0), rawStored: bomb, declaredSize: 1000 }]), /"bomb\.bin" inflates to more than its declared 1000 bytes/);
    expect(err.cause).toBeInstanceOf(RangeError);
  });

  it('an entry declaring more than the per-entry limit, or an implausible compression ratio', () => {
    refuse(writeZip([{ name: 'huge.bin', data: 'x', declaredSize: 100 << 20 }]), /"huge\.bin" declares 104857600 bytes, more than the 67108864 allowed/);
    refuse(writeZip([{ name: 'ratio.bin', data: 'xx', declaredSize: 10 << 20 }]), /"ratio\.bin" claims a compression ratio over 1100:1/);
  });

  it('more inflated bytes in total than the archive budget', () => {
    const data = seededBytes(4000, 3);
    refuse(writeZip([{ name: 'a', data }, { name: 'b', data }, { name: 'c', data }]), /entry "c": reading 4000 more bytes would inflate more than the 10000 bytes/, { maxTotalSize: 10_000 });
  });

  it('an entry that inflates to fewer bytes than declared, or fails its CRC', () => {
    refuse(writeZip([{ name: 'short.bin', data: 'abc', declaredSize: 10 }]), /"short\.bin" holds 3 bytes, its header declares 10/);
    refuse(writeZip([{ name: 'crc.bin', data: 'abc', crc: 0x12345678 }]), /"crc\.bin" fails its CRC-32 check \(0x352441c2, expected 0x12345678\)/);
  });

  it('entries that share data (a non-recursive zip bomb)', () => {
    refuse(writeZip([{ name: 'a.bin', data: seededBytes(100, 4) }, { name: 'b.bin', data: '', shareDataOf: 0 }]), /overlaps the next entry/);
  });

  it('a zip64 archive and more entries than the limit', () => {
    refuse(writeZip([{ name: 'a', data: 'a' }], { zip64Locator: true }), /zip64 archive, which is not supported/);
    refuse(writeZip([{ name: 'a', data: 'a' }, { name: 'b', data: 'b' }]), /lists 2 entries, more than the 1 allowed/, { maxEntries: 1 });
  });

  it('a file that is not a zip archive', () => {
    refuse(new TextEncoder().encode('<?xml version="1.0"?><package/>'), /not a zip archive/);
    refuse(new Uint8Array(3), /too short for a zip archive/);
  });

  it('every truncation of a valid archive (and never throws anything else)', () => {
    const whole = writeZip([
      { name: 'Vendor.Dfp.pdsc', data: '<package/>' },
      { name: 'Flash/algo.flm', data: seededBytes(600, 5), method: 'store' },
      { name: 'Flash/more.flm', data: seededBytes(600, 6) },
    ]);
    for (let length = 0; length < whole.length; length++) {
      expect(() => {
        const zip = openZip(whole.subarray(0, length), SOURCE);
        for (const e of zip.entries) zip.read(e.name);
      }, `truncated to ${length} bytes`).toThrow(FormatError);
    }
  });

  it('random corruption of a valid archive ends in a FormatError or the right bytes (property)', () => {
    const files = [
      { name: 'a.txt', data: seededBytes(200, 7) },
      { name: 'b/c.bin', data: seededBytes(300, 8), method: 'store' as const },
    ];
    const whole = writeZip(files);
    fc.assert(
      fc.property(fc.nat(whole.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bytes = whole.slice();
        bytes[at]! ^= xor;
        try {
          const zip = openZip(bytes, SOURCE);
          for (const f of files) {
            const entry = zip.find(f.name);
            if (entry) expect(zip.read(entry.name)).toEqual(f.data);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(FormatError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
