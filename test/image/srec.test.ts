import { describe, expect, it } from 'vitest';
import { ImageOverlapError, UsageError } from '../../lib/errors.js';
import { createImage } from '../../lib/image/image.js';
import { imageToSrec, parseSrec, srecToImage } from '../../lib/image/srec.js';
import { expectFormatError, file, segmentsOf, srec } from './helpers.js';

const SOURCE = 'app.s19';
const S9 = srec(9, 2, 0);

describe('parseSrec: records', () => {
  it('reads the example of the S-record article: header, S1 data, S5 count, S9 entry', () => {
    const text = file(
      'S00F000068656C6C6F202020202000003C',
      'S11F00007C0802A6900100049421FFF07C6C1B787C8C23783C6000003863000026',
      'S11F001C4BFFFFE5398000007D83637880010014382100107C0803A64E800020E9',
      'S111003848656C6C6F20776F726C642E0A0042',
      'S5030003F9',
      'S9030000FC',
    );
    const { image, entry, header } = parseSrec(text, SOURCE);
    expect(header).toBe('hello     ');
    expect(entry).toBe(0);
    expect(image.segments).toHaveLength(1);
    expect(image.segments[0]!.address).toBe(0);
    expect(image.segments[0]!.data.length).toBe(0x38 + 14);
    expect(new TextDecoder().decode(image.segments[0]!.data.subarray(0x38, 0x38 + 12))).toBe('Hello world.');
  });

  it('reads the example of its TSDoc', () => {
    expect(segmentsOf(srecToImage('S107100001020304DE\nS9030000FC\n', 'inline'))).toEqual([{ address: 0x1000, data: [1, 2, 3, 4] }]);
  });

  it('reads 16-, 24- and 32-bit data addresses (S1, S2, S3)', () => {
    const image = srecToImage(file(srec(1, 2, 0xfffe, [1]), srec(2, 3, 0xab_cdef, [2]), srec(3, 4, 0xffff_fffe, [3, 4]), S9), SOURCE);
    expect(segmentsOf(image)).toEqual([
      { address: 0xfffe, data: [1] },
      { address: 0xab_cdef, data: [2] },
      { address: 0xffff_fffe, data: [3, 4] },
    ]);
  });

  it('carries an S1 record that runs past 0xFFFF on linearly', () => {
    expect(segmentsOf(srecToImage(file(srec(1, 2, 0xffff, [1, 2]), S9), SOURCE))).toEqual([{ address: 0xffff, data: [1, 2] }]);
  });

  it('returns the address of S7, S8 or S9 as entry', () => {
    expect(parseSrec(file(srec(7, 4, 0x0800_0131)), SOURCE).entry).toBe(0x0800_0131);
    expect(parseSrec(file(srec(8, 3, 0x12_3456)), SOURCE).entry).toBe(0x12_3456);
    expect(parseSrec(file(srec(9, 2, 0x1234)), SOURCE).entry).toBe(0x1234);
  });

  it('keeps the first S0 header as UTF-8 text without trailing NULs, and gives "" without one', () => {
    const utf8 = Array.from(new TextEncoder().encode('Grüße'));
    expect(parseSrec(file(srec(0, 2, 0, [...utf8, 0, 0]), srec(0, 2, 0, [0x41]), S9), SOURCE).header).toBe('Grüße');
    expect(parseSrec(file(S9), SOURCE).header).toBe('');
  });

  it('verifies S5 and S6 record counts against the data records before them', () => {
    const data = [srec(1, 2, 0, [1]), srec(1, 2, 1, [2]), srec(2, 3, 2, [3])];
    expect(segmentsOf(srecToImage(file(...data, srec(5, 2, 3), S9), SOURCE))).toEqual([{ address: 0, data: [1, 2, 3] }]);
    expect(segmentsOf(srecToImage(file(...data, srec(6, 3, 3), S9), SOURCE))).toEqual([{ address: 0, data: [1, 2, 3] }]);
    expect(segmentsOf(srecToImage(file(data[0]!, srec(5, 2, 1), ...data.slice(1), srec(5, 2, 3), S9), SOURCE))).toHaveLength(1);
    expectFormatError(() => srecToImage(file(...data, srec(5, 2, 2), S9), SOURCE), 4, /S5 count record says 2 data records, the file has 3 before it/);
    expectFormatError(() => srecToImage(file(...data, srec(6, 3, 4), S9), SOURCE), 4, /S6 count record says 4 data records, the file has 3 before it/);
  });

  it('merges contiguous records and sorts out-of-order ones', () => {
    const image = srecToImage(file(srec(1, 2, 0x20, [9]), srec(1, 2, 0, [1, 2]), srec(1, 2, 2, [3]), S9), SOURCE);
    expect(segmentsOf(image)).toEqual([
      { address: 0, data: [1, 2, 3] },
      { address: 0x20, data: [9] },
    ]);
  });

  it('rejects records that write different bytes to one address, naming both lines', () => {
    const text = file(srec(1, 2, 0, [1, 2]), srec(1, 2, 1, [3]), S9);
    expect(() => srecToImage(text, SOURCE)).toThrow(ImageOverlapError);
    expect(() => srecToImage(text, SOURCE)).toThrow(/app\.s19 line 2 and app\.s19 line 1 write different bytes at 0x00000001/);
  });
});

describe('parseSrec: file structure', () => {
  it('accepts CRLF, lower-case digits, blank lines and trailing whitespace', () => {
    const text = [srec(1, 2, 0xab, [0xcd]).toLowerCase().replace(/^s/, 'S') + '  ', '', S9].join('\r\n');
    expect(segmentsOf(srecToImage(text, SOURCE))).toEqual([{ address: 0xab, data: [0xcd] }]);
  });

  it('requires a termination record, pointing at the last line', () => {
    expectFormatError(() => srecToImage(file(srec(1, 2, 0, [1]), srec(5, 2, 1)), SOURCE), 2, /missing termination record \(S7, S8 or S9\)/);
    expectFormatError(() => srecToImage('', SOURCE), 1, /missing termination record/);
  });

  it('ignores whitespace after the termination record and rejects anything else', () => {
    expect(srecToImage(file(srec(1, 2, 0, [1]), S9, '', ' \r'), SOURCE).segments).toHaveLength(1);
    expectFormatError(() => srecToImage(file(S9, srec(1, 2, 0, [1])), SOURCE), 2, /record after the termination record of line 1/);
  });
});

describe('parseSrec: errors name the line and what is wrong', () => {
  it('bad checksum', () => {
    const good = srec(1, 2, 0x100, [1, 2, 3]);
    const bad = good.slice(0, -2) + '00';
    const err = expectFormatError(() => srecToImage(file(good, bad, S9), SOURCE), 2, /checksum mismatch: record says 0x00, its bytes need 0x/);
    expect(err.message).toContain(`need 0x${good.slice(-2)}`);
  });

  it('bad hex digit, with its column', () => {
    expectFormatError(() => srecToImage(file('S1050000zz00', S9), SOURCE), 1, /bad hex digit 'z' at column 9/);
  });

  it('missing S', () => {
    expectFormatError(() => srecToImage(file(':00000001FF'), SOURCE), 1, /expected 'S' at the start of a record, found ':'/);
  });

  it('unknown record type, including the reserved S4', () => {
    expectFormatError(() => srecToImage(file('S4030000FC', S9), SOURCE), 1, /unknown record type 'S4'/);
    expectFormatError(() => srecToImage(file('SX030000FC', S9), SOURCE), 1, /unknown record type 'SX'/);
    expectFormatError(() => srecToImage(file('S', S9), SOURCE), 1, /record is truncated: no record type/);
  });

  it('odd number of hex digits', () => {
    expectFormatError(() => srecToImage(file(srec(1, 2, 0, [1]) + '0', S9), SOURCE), 1, /odd number of hex digits \(11\)/);
  });

  it('truncated line', () => {
    expectFormatError(() => srecToImage(file('S1', S9), SOURCE), 1, /record is truncated: no byte count/);
    expectFormatError(() => srecToImage(file(srec(3, 4, 0, [1, 2, 3]).slice(0, -4), S9), SOURCE), 1, /record is truncated: byte count 0x08 needs 18 hex digits after 'S3', found 14/);
  });

  it('line longer than its byte count', () => {
    expectFormatError(() => srecToImage(file(srec(1, 2, 0, [1]) + '00', S9), SOURCE), 1, /longer than its byte count 0x04 says: 12 hex digits after 'S1', expected 10/);
  });

  it('byte count too small for the address', () => {
    expectFormatError(() => srecToImage(file('S3030000FC', S9), SOURCE), 1, /byte count 0x03 is too small for the address and checksum of an S3 record \(5\)/);
  });

  it('count and termination records that carry data', () => {
    expectFormatError(() => srecToImage(file(srec(5, 2, 0, [1]), S9), SOURCE), 1, /S5 count record must not carry data, has 1 bytes/);
    expectFormatError(() => srecToImage(file(srec(9, 2, 0, [1, 2])), SOURCE), 1, /S9 termination record must not carry data, has 2 bytes/);
  });

  it('data that would run past 0xFFFFFFFF', () => {
    expectFormatError(() => srecToImage(file(srec(3, 4, 0xffff_ffff, [1, 2]), S9), SOURCE), 1, /2 data bytes at 0xffffffff run past the end of the 32-bit address space/);
  });
});

describe('imageToSrec', () => {
  it('writes header, data, count and termination with the smallest address size that fits', () => {
    const image = createImage([{ address: 0x1000, data: Uint8Array.of(1, 2, 3) }]);
    expect(imageToSrec(image, { header: 'hi', entry: 0x1001 })).toBe(
      file(srec(0, 2, 0, [0x68, 0x69]), srec(1, 2, 0x1000, [1, 2, 3]), srec(5, 2, 1), srec(9, 2, 0x1001)),
    );
  });

  it('picks S2/S8 above 0xFFFF and S3/S7 above 0xFFFFFF, counting the entry point too', () => {
    const low = createImage([{ address: 0xffff, data: Uint8Array.of(1) }]);
    expect(imageToSrec(low)).toContain(srec(1, 2, 0xffff, [1]));
    expect(imageToSrec(createImage([{ address: 0xffff, data: Uint8Array.of(1, 2) }]))).toContain(srec(2, 3, 0xffff, [1, 2]));
    expect(imageToSrec(low, { entry: 0x100_0000 })).toMatch(/\nS7/);
    expect(imageToSrec(createImage([{ address: 0xff_ffff, data: Uint8Array.of(1, 2) }]))).toContain(srec(7, 4, 0));
  });

  it('writes the address size it is asked for, and refuses one too small', () => {
    const image = createImage([{ address: 0x1_0000, data: Uint8Array.of(1) }]);
    expect(imageToSrec(image, { addressSize: 4 })).toBe(file(srec(0, 2, 0), srec(3, 4, 0x1_0000, [1]), srec(5, 2, 1), srec(7, 4, 0)));
    expect(() => imageToSrec(image, { addressSize: 2 })).toThrow(UsageError);
    expect(() => imageToSrec(image, { addressSize: 2 })).toThrow(/address 0x00010000 does not fit the 16-bit addresses of S1 records; use an address size of 3/);
  });

  it('writes 16 data bytes per record by default, and recordSize when given', () => {
    const image = createImage([{ address: 0, data: new Uint8Array(40) }]);
    const counts = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('S1')).map((l) => l.slice(2, 4));
    expect(counts(imageToSrec(image))).toEqual(['13', '13', '0B']);
    expect(counts(imageToSrec(image, { recordSize: 252 }))).toEqual(['2B']);
  });

  it('switches from S5 to S6 above 65535 data records', () => {
    const image = createImage([{ address: 0, data: new Uint8Array(0x1_0000) }]);
    expect(imageToSrec(image, { recordSize: 1, addressSize: 3 })).toContain('\n' + srec(6, 3, 0x1_0000) + '\n');
  });

  it('rejects record sizes that do not fit a record, oversized headers and bad entry points', () => {
    const image = createImage([]);
    expect(() => imageToSrec(image, { addressSize: 2, recordSize: 253 })).toThrow(UsageError);
    expect(() => imageToSrec(image, { addressSize: 4, recordSize: 251 })).toThrow(/S3 record size must be 1–250 bytes, got 251/);
    expect(() => imageToSrec(image, { recordSize: 0 })).toThrow(UsageError);
    expect(() => imageToSrec(image, { header: 'x'.repeat(253) })).toThrow(/at most 252 fit an S0 record/);
    expect(imageToSrec(image, { header: 'x'.repeat(252) })).toMatch(/^S0FF0000/);
    expect(() => imageToSrec(image, { entry: 0x1_0000_0000 })).toThrow(UsageError);
  });
});
