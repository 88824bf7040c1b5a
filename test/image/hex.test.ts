import { describe, expect, it } from 'vitest';
import { ImageOverlapError, UsageError } from '../../lib/errors.js';
import { hexToImage, imageToIntelHex, parseIntelHex } from '../../lib/image/hex.js';
import { createImage } from '../../lib/image/image.js';
import { expectFormatError, file, IHEX_EOF, ihex, segmentsOf } from './helpers.js';

const SOURCE = 'app.hex';

describe('parseIntelHex: records', () => {
  it('reads the data records of the example in the Intel HEX article', () => {
    const text = file(
      ':10010000214601360121470136007EFE09D2190140',
      ':100110002146017E17C20001FF5F16002148011928',
      ':10012000194E79234623965778239EDA3F01B2CAA7',
      ':100130003F0156702B5E712B722B732146013421C7',
      ':00000001FF',
    );
    const { image, entry } = parseIntelHex(text, SOURCE);
    expect(entry).toBeUndefined();
    expect(image.segments).toHaveLength(1);
    expect(image.segments[0]!.address).toBe(0x0100);
    expect(image.segments[0]!.data.length).toBe(64);
    expect(Array.from(image.segments[0]!.data.subarray(0, 4))).toEqual([0x21, 0x46, 0x01, 0x36]);
  });

  it('reads the example of its TSDoc', () => {
    expect(segmentsOf(hexToImage(':0400000001020304F2\n:00000001FF\n', 'inline'))).toEqual([{ address: 0, data: [1, 2, 3, 4] }]);
  });

  it('reads a data record (00) at its 16-bit offset when no extended address record came before', () => {
    const image = hexToImage(file(ihex(0, 0x1234, [1, 2, 3]), IHEX_EOF), SOURCE);
    expect(segmentsOf(image)).toEqual([{ address: 0x1234, data: [1, 2, 3] }]);
  });

  it('ignores empty data records', () => {
    const image = hexToImage(file(ihex(0, 0x1000, []), IHEX_EOF), SOURCE);
    expect(image.segments).toEqual([]);
  });

  it('adds the extended linear address (04) times 64 KiB to the offset', () => {
    const image = hexToImage(file(ihex(4, 0, [0x08, 0x00]), ihex(0, 0x0010, [0xaa, 0xbb]), IHEX_EOF), SOURCE);
    expect(segmentsOf(image)).toEqual([{ address: 0x0800_0010, data: [0xaa, 0xbb] }]);
  });

  it('adds the extended segment address (02) times 16 to the offset', () => {
    const image = hexToImage(file(ihex(2, 0, [0x12, 0x34]), ihex(0, 0x0005, [7]), IHEX_EOF), SOURCE);
    expect(segmentsOf(image)).toEqual([{ address: 0x12345, data: [7] }]);
  });

  it('wraps a segment-mode (02) record that runs past offset 0xFFFF to the start of its segment', () => {
    const image = hexToImage(file(ihex(2, 0, [0x10, 0x00]), ihex(0, 0xfffe, [1, 2, 3, 4]), IHEX_EOF), SOURCE);
    expect(segmentsOf(image)).toEqual([
      { address: 0x10000, data: [3, 4] },
      { address: 0x1fffe, data: [1, 2] },
    ]);
  });

  it('carries a linear-mode (04) record that runs past offset 0xFFFF on into the next 64 KiB', () => {
    const image = hexToImage(file(ihex(4, 0, [0x00, 0x01]), ihex(0, 0xfffe, [1, 2, 3, 4]), IHEX_EOF), SOURCE);
    expect(segmentsOf(image)).toEqual([{ address: 0x1fffe, data: [1, 2, 3, 4] }]);
  });

  it('carries on linearly past 0xFFFF before any extended address record', () => {
    const image = hexToImage(file(ihex(0, 0xffff, [1, 2]), IHEX_EOF), SOURCE);
    expect(segmentsOf(image)).toEqual([{ address: 0xffff, data: [1, 2] }]);
  });

  it('switches between segment and linear mode as the records say', () => {
    const image = hexToImage(
      file(ihex(2, 0, [0x10, 0x00]), ihex(0, 0, [1]), ihex(4, 0, [0x20, 0x00]), ihex(0, 0, [2]), IHEX_EOF),
      SOURCE,
    );
    expect(segmentsOf(image)).toEqual([
      { address: 0x10000, data: [1] },
      { address: 0x2000_0000, data: [2] },
    ]);
  });

  it('returns the start linear address (05) as entry', () => {
    expect(parseIntelHex(file(ihex(5, 0, [0x08, 0x00, 0x01, 0x31]), IHEX_EOF), SOURCE).entry).toBe(0x0800_0131);
    expect(parseIntelHex(file(ihex(5, 0, [0xff, 0xff, 0xff, 0xff]), IHEX_EOF), SOURCE).entry).toBe(0xffff_ffff);
  });

  it('returns the start segment address (03) as entry CS * 16 + IP', () => {
    expect(parseIntelHex(file(ihex(3, 0, [0x12, 0x34, 0x00, 0x05]), IHEX_EOF), SOURCE).entry).toBe(0x12345);
  });

  it('accepts a repeated start address that agrees, and rejects one that disagrees', () => {
    const same = ihex(5, 0, [0, 0, 0x10, 0]);
    expect(parseIntelHex(file(same, same, IHEX_EOF), SOURCE).entry).toBe(0x1000);
    expectFormatError(
      () => parseIntelHex(file(same, ihex(5, 0, [0, 0, 0x20, 0]), IHEX_EOF), SOURCE),
      2,
      /start address 0x00002000 disagrees with 0x00001000 given on line 1/,
    );
  });

  it('merges contiguous records into one segment and keeps separate runs apart', () => {
    const image = hexToImage(file(ihex(0, 0, [1, 2]), ihex(0, 2, [3]), ihex(0, 0x10, [4]), IHEX_EOF), SOURCE);
    expect(segmentsOf(image)).toEqual([
      { address: 0, data: [1, 2, 3] },
      { address: 0x10, data: [4] },
    ]);
  });

  it('sorts records given out of address order', () => {
    const image = hexToImage(file(ihex(0, 0x20, [2]), ihex(0, 0x10, [1]), ihex(0, 0x11, [9]), IHEX_EOF), SOURCE);
    expect(segmentsOf(image)).toEqual([
      { address: 0x10, data: [1, 9] },
      { address: 0x20, data: [2] },
    ]);
  });

  it('accepts records that write the same bytes twice', () => {
    const image = hexToImage(file(ihex(0, 0, [1, 2, 3]), ihex(0, 1, [2, 3, 4]), IHEX_EOF), SOURCE);
    expect(segmentsOf(image)).toEqual([{ address: 0, data: [1, 2, 3, 4] }]);
  });

  it('rejects records that write different bytes to one address, naming both lines', () => {
    const text = file(ihex(0, 0, [1, 2, 3]), ihex(0, 0x40, [0]), ihex(0, 2, [9]), IHEX_EOF);
    expect(() => hexToImage(text, SOURCE)).toThrow(ImageOverlapError);
    expect(() => hexToImage(text, SOURCE)).toThrow(/app\.hex line 3 and app\.hex line 1 write different bytes at 0x00000002/);
  });
});

describe('parseIntelHex: file structure', () => {
  it('accepts CRLF line ends, lower-case digits, blank lines, trailing whitespace and a byte-order mark', () => {
    const text = '\uFEFF' + [ihex(0, 0xab, [0xcd]).toLowerCase() + ' \t', '', ihex(4, 0, [0, 1]), IHEX_EOF].join('\r\n');
    // The extended address comes after the data, so it changes nothing.
    expect(segmentsOf(hexToImage(text, SOURCE))).toEqual([{ address: 0xab, data: [0xcd] }]);
  });

  it('accepts a file without a final newline', () => {
    expect(segmentsOf(hexToImage(ihex(0, 0, [5]) + '\n' + IHEX_EOF, SOURCE))).toEqual([{ address: 0, data: [5] }]);
  });

  it('requires the end-of-file record (01), pointing at the last line', () => {
    expectFormatError(() => hexToImage(file(ihex(0, 0, [1]), ihex(0, 1, [2])), SOURCE), 2, /missing end-of-file record/);
    expectFormatError(() => hexToImage('', SOURCE), 1, /missing end-of-file record/);
  });

  it('ignores whitespace after the end-of-file record', () => {
    expect(segmentsOf(hexToImage(file(ihex(0, 0, [1]), IHEX_EOF, '', '  ', '\r'), SOURCE))).toEqual([{ address: 0, data: [1] }]);
  });

  it('rejects any record after the end-of-file record', () => {
    expectFormatError(() => hexToImage(file(IHEX_EOF, '', ihex(0, 0, [1])), SOURCE), 3, /record after the end-of-file record of line 1/);
    expectFormatError(() => hexToImage(file(IHEX_EOF, IHEX_EOF), SOURCE), 2, /record after the end-of-file record/);
    expectFormatError(() => hexToImage(file(IHEX_EOF, 'garbage'), SOURCE), 2, /record after the end-of-file record/);
  });
});

describe('parseIntelHex: errors name the line and what is wrong', () => {
  it('bad checksum', () => {
    const good = ihex(0, 0x100, [1, 2, 3]);
    const bad = good.slice(0, -2) + '00';
    const err = expectFormatError(() => hexToImage(file(good, bad, IHEX_EOF), SOURCE), 2, /checksum mismatch: record says 0x00, its bytes need 0x/);
    expect(err.message).toContain(`need 0x${good.slice(-2)}`);
    expect(err.source).toBe(SOURCE);
  });

  it('bad hex digit, with its column', () => {
    expectFormatError(() => hexToImage(file(':0G00000000', IHEX_EOF), SOURCE), 1, /bad hex digit 'G' at column 3/);
    expectFormatError(() => hexToImage(file(IHEX_EOF.replace('F', '\u0000')), SOURCE), 1, /bad hex digit '\\u0000' at column 10/);
  });

  it('missing colon', () => {
    expectFormatError(() => hexToImage(file(ihex(0, 0, [1]).slice(1), IHEX_EOF), SOURCE), 1, /expected ':' at the start of a record, found '0'/);
    expectFormatError(() => hexToImage(file(' ' + IHEX_EOF), SOURCE), 1, /expected ':'/);
  });

  it('odd number of hex digits', () => {
    expectFormatError(() => hexToImage(file(ihex(0, 0, [1, 2]) + 'A', IHEX_EOF), SOURCE), 1, /odd number of hex digits \(15\)/);
  });

  it('truncated line: shorter than any record', () => {
    expectFormatError(() => hexToImage(file(':000000', IHEX_EOF), SOURCE), 1, /record is truncated: 6 hex digits/);
    expectFormatError(() => hexToImage(file(':', IHEX_EOF), SOURCE), 1, /record is truncated: 0 hex digits/);
  });

  it('truncated line: fewer data bytes than the byte count says', () => {
    const cut = ihex(0, 0, [1, 2, 3, 4]).slice(0, -4);
    expectFormatError(() => hexToImage(file(cut, IHEX_EOF), SOURCE), 1, /record is truncated: byte count 0x04 needs 18 hex digits after ':', found 14/);
  });

  it('line longer than its byte count', () => {
    expectFormatError(() => hexToImage(file(ihex(0, 0, [1]) + '00', IHEX_EOF), SOURCE), 1, /longer than its byte count 0x01 says: 14 hex digits after ':', expected 12/);
  });

  it('unknown record type', () => {
    expectFormatError(() => hexToImage(file(ihex(6, 0, []), IHEX_EOF), SOURCE), 1, /unknown record type 0x06/);
  });

  it('records of fixed size with the wrong byte count', () => {
    expectFormatError(() => hexToImage(file(ihex(1, 0, [0])), SOURCE), 1, /end-of-file record needs 0 data bytes, has 1/);
    expectFormatError(() => hexToImage(file(ihex(2, 0, [1]), IHEX_EOF), SOURCE), 1, /extended segment address record needs 2 data bytes, has 1/);
    expectFormatError(() => hexToImage(file(ihex(3, 0, [1, 2, 3]), IHEX_EOF), SOURCE), 1, /start segment address record needs 4 data bytes, has 3/);
    expectFormatError(() => hexToImage(file(ihex(4, 0, [1, 2, 3]), IHEX_EOF), SOURCE), 1, /extended linear address record needs 2 data bytes, has 3/);
    expectFormatError(() => hexToImage(file(ihex(5, 0, []), IHEX_EOF), SOURCE), 1, /start linear address record needs 4 data bytes, has 0/);
  });

  it('data that would run past 0xFFFFFFFF', () => {
    expectFormatError(
      () => hexToImage(file(ihex(4, 0, [0xff, 0xff]), ihex(0, 0xfffe, [1, 2]), ihex(0, 0xffff, [2, 3]), IHEX_EOF), SOURCE),
      3,
      /2 data bytes at 0xffffffff run past the end of the 32-bit address space/,
    );
  });
});

describe('imageToIntelHex', () => {
  it('writes data records, the entry point and the end-of-file record', () => {
    const image = createImage([{ address: 0x0800_0000, data: Uint8Array.of(1, 2, 3) }]);
    expect(imageToIntelHex(image, { entry: 0x0800_0101 })).toBe(
      file(ihex(4, 0, [0x08, 0x00]), ihex(0, 0, [1, 2, 3]), ihex(5, 0, [0x08, 0x00, 0x01, 0x01]), IHEX_EOF),
    );
  });

  it('writes only the end-of-file record for an empty image', () => {
    expect(imageToIntelHex(createImage([]))).toBe(file(IHEX_EOF));
  });

  it('writes no extended address record below 64 KiB', () => {
    const image = createImage([{ address: 0x10, data: Uint8Array.of(9) }]);
    expect(imageToIntelHex(image)).toBe(file(ihex(0, 0x10, [9]), IHEX_EOF));
  });

  it('writes 16 data bytes per record by default, and recordSize when given', () => {
    const image = createImage([{ address: 0, data: new Uint8Array(40) }]);
    expect(imageToIntelHex(image).split('\n').map((l) => l.slice(1, 3))).toEqual(['10', '10', '08', '00', '']);
    expect(imageToIntelHex(image, { recordSize: 32 }).split('\n').map((l) => l.slice(1, 3))).toEqual(['20', '08', '00', '']);
  });

  it('splits a record at a 64 KiB boundary and writes the new upper address before it', () => {
    const image = createImage([{ address: 0xfffe, data: Uint8Array.of(1, 2, 3, 4) }]);
    expect(imageToIntelHex(image)).toBe(file(ihex(0, 0xfffe, [1, 2]), ihex(4, 0, [0, 1]), ihex(0, 0, [3, 4]), IHEX_EOF));
  });

  it('writes an extended address record only when the upper 16 bits change', () => {
    const image = createImage([
      { address: 0x2_0000, data: Uint8Array.of(1) },
      { address: 0x2_0100, data: Uint8Array.of(2) },
      { address: 0x3_0000, data: Uint8Array.of(3) },
    ]);
    expect(imageToIntelHex(image)).toBe(
      file(ihex(4, 0, [0, 2]), ihex(0, 0, [1]), ihex(0, 0x100, [2]), ihex(4, 0, [0, 3]), ihex(0, 0, [3]), IHEX_EOF),
    );
  });

  it('rejects a record size outside 1–255 and an entry outside 32 bits', () => {
    const image = createImage([]);
    for (const recordSize of [0, 256, 1.5, -1]) {
      expect(() => imageToIntelHex(image, { recordSize })).toThrow(UsageError);
    }
    expect(() => imageToIntelHex(image, { entry: 0x1_0000_0000 })).toThrow(UsageError);
    expect(() => imageToIntelHex(image, { entry: -1 })).toThrow(UsageError);
  });
});

describe('parseIntelHex: memory bounded by the image, not by the record count (issue 15, failure 6)', () => {
  it('keeps one copy of bytes written again to the same place, however often', () => {
    const a = ihex(0, 0x1000, [1, 2, 3, 4, 5, 6, 7, 8]);
    const b = ihex(0, 0x2000, [9, 9, 9, 9]);
    const lines: string[] = [];
    for (let i = 0; i < 50_000; i++) lines.push(a, b);
    const { image } = parseIntelHex(file(...lines, IHEX_EOF), 'dup.hex');
    expect(segmentsOf(image)).toEqual([
      { address: 0x1000, data: [1, 2, 3, 4, 5, 6, 7, 8] },
      { address: 0x2000, data: [9, 9, 9, 9] },
    ]);
  });

  it('still refuses the same address written with different bytes, naming both lines', () => {
    const text = file(ihex(0, 0x1000, [1, 2]), ihex(0, 0x2000, [3]), ihex(0, 0x1000, [1, 7]), IHEX_EOF);
    expect(() => parseIntelHex(text, 'clash.hex')).toThrow(ImageOverlapError);
    expect(() => parseIntelHex(text, 'clash.hex')).toThrow(/line 1.*line 3|line 3.*line 1/);
  });
});
