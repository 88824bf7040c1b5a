/**
 * Properties of the Intel HEX and S-record codecs: whatever the writer
 * writes, the reader reads back exactly; every record size works; large files
 * parse. (Corruption is in corruption.property.test.ts.)
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/errors.js';
import { imageToIntelHex, parseIntelHex } from '../../lib/image/hex.js';
import { createImage, imageEnd, type Image } from '../../lib/image/image.js';
import { imageToSrec, parseSrec, type SrecAddressSize } from '../../lib/image/srec.js';
import { expectSameImage, sparseImage } from './helpers.js';

const entryPoint = fc.option(fc.integer({ min: 0, max: 0xffff_ffff }), { nil: undefined });

/** Smallest S-record address size that holds the image and the entry. */
function neededAddressSize(image: Image, entry = 0): SrecAddressSize {
  const highest = Math.max((imageEnd(image) ?? 0) - 1, entry);
  return highest <= 0xffff ? 2 : highest <= 0xff_ffff ? 3 : 4;
}

/** Data records that cross a 64 KiB boundary would mean different things to different readers. */
function expectNoRecordCrosses64K(text: string): void {
  for (const line of text.split('\n')) {
    if (line.slice(7, 9) !== '00') continue;
    const count = parseInt(line.slice(1, 3), 16);
    const offset = parseInt(line.slice(3, 7), 16);
    expect(offset + count, `record ${line} crosses a 64 KiB boundary`).toBeLessThanOrEqual(0x1_0000);
  }
}

/** An image that crosses 64 KiB boundaries and touches both ends of the address space. */
const TRICKY = createImage([
  { address: 0, data: Uint8Array.from({ length: 300 }, (_, i) => i) },
  { address: 0xff00, data: Uint8Array.from({ length: 700 }, (_, i) => i * 7) },
  { address: 0x0800_fff3, data: Uint8Array.from({ length: 29 }, (_, i) => 255 - i) },
  { address: 0xffff_fe00, data: Uint8Array.from({ length: 0x200 }, (_, i) => i * 3) },
]);

describe('Intel HEX round trip', () => {
  it('reads back any sparse image and entry the writer wrote, with any record size', () => {
    fc.assert(
      fc.property(sparseImage(), fc.integer({ min: 1, max: 255 }), entryPoint, (image, recordSize, entry) => {
        const text = imageToIntelHex(image, { recordSize, entry });
        expectNoRecordCrosses64K(text);
        const parsed = parseIntelHex(text, 'prop.hex');
        expectSameImage(parsed.image, image);
        expect(parsed.entry).toBe(entry);
      }),
    );
  });

  it('round-trips an image across 64 KiB boundaries and the top of memory with every record size from 1 to 255', () => {
    for (let recordSize = 1; recordSize <= 255; recordSize++) {
      const text = imageToIntelHex(TRICKY, { recordSize, entry: 0x0800_0101 });
      const parsed = parseIntelHex(text, `size${recordSize}.hex`);
      expectSameImage(parsed.image, TRICKY);
      expect(parsed.entry).toBe(0x0800_0101);
    }
  });

  it('reads back a 4 MiB image', () => {
    const data = new Uint8Array(4 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >>> 13)) & 0xff;
    const image = createImage([{ address: 0x0800_0000, data }]);
    for (const recordSize of [16, 255]) {
      const parsed = parseIntelHex(imageToIntelHex(image, { recordSize }), 'big.hex');
      expectSameImage(parsed.image, image);
    }
  });
});

describe('S-record round trip', () => {
  it('reads back any sparse image, entry and header the writer wrote, with any address and record size', () => {
    fc.assert(
      fc.property(
        sparseImage(),
        fc.constantFrom<SrecAddressSize | undefined>(undefined, 2, 3, 4),
        fc.integer({ min: 1, max: 252 }),
        entryPoint,
        fc.stringMatching(/^[ -~]{0,60}$/),
        (image, addressSize, size, entry, header) => {
          const needed = neededAddressSize(image, entry);
          const options = { addressSize, recordSize: Math.min(size, 254 - (addressSize ?? needed)), entry, header };
          if (addressSize !== undefined && addressSize < needed) {
            expect(() => imageToSrec(image, options)).toThrow(UsageError);
            return;
          }
          const text = imageToSrec(image, options);
          const dataType = `S${(addressSize ?? needed) - 1}`;
          const dataLines = text.split('\n').filter((line) => /^S[123]/.test(line));
          expect(dataLines.every((line) => line.startsWith(dataType)), `data records should all be ${dataType}`).toBe(true);
          const parsed = parseSrec(text, 'prop.srec');
          expectSameImage(parsed.image, image);
          expect(parsed.entry).toBe(entry ?? 0);
          expect(parsed.header).toBe(header);
        },
      ),
    );
  });

  it('round-trips an image across 64 KiB boundaries and the top of memory with every record size', () => {
    for (let recordSize = 1; recordSize <= 250; recordSize++) {
      const parsed = parseSrec(imageToSrec(TRICKY, { recordSize, entry: 0x0800_0101 }), `size${recordSize}.s37`);
      expectSameImage(parsed.image, TRICKY);
      expect(parsed.entry).toBe(0x0800_0101);
    }
    const low = createImage([{ address: 0xff00, data: Uint8Array.from({ length: 256 }, (_, i) => i) }]);
    for (let recordSize = 1; recordSize <= 252; recordSize++) {
      expectSameImage(parseSrec(imageToSrec(low, { recordSize }), `size${recordSize}.s19`).image, low);
    }
  });

  it('reads back a 4 MiB image', () => {
    const data = new Uint8Array(4 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 17 + (i >>> 11)) & 0xff;
    const image = createImage([{ address: 0x0800_0000, data }]);
    for (const recordSize of [16, 250]) {
      expectSameImage(parseSrec(imageToSrec(image, { recordSize }), 'big.s37').image, image);
    }
  });
});
