import { describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/errors.js';
import { binToImage } from '../../lib/image/bin.js';
import { segmentsOf } from './helpers.js';

describe('binToImage', () => {
  it('places the bytes at the base address', () => {
    expect(segmentsOf(binToImage(Uint8Array.of(1, 2, 3), 0x0800_0000, 'app.bin'))).toEqual([{ address: 0x0800_0000, data: [1, 2, 3] }]);
  });

  it('gives an empty image for an empty file', () => {
    expect(binToImage(new Uint8Array(0), 0, 'empty.bin').segments).toEqual([]);
  });

  it('accepts data that ends exactly at 0xFFFFFFFF', () => {
    expect(binToImage(Uint8Array.of(1, 2), 0xffff_fffe, 'top.bin').segments[0]!.address).toBe(0xffff_fffe);
  });

  it('rejects data that would run past 0xFFFFFFFF', () => {
    expect(() => binToImage(Uint8Array.of(1, 2), 0xffff_ffff, 'top.bin')).toThrow(UsageError);
    expect(() => binToImage(Uint8Array.of(1, 2), 0xffff_ffff, 'top.bin')).toThrow(/top\.bin: 2 bytes at 0xffffffff run past the end/);
  });

  it('rejects a base that is not a 32-bit address', () => {
    for (const base of [-1, 0x1_0000_0000, 1.5, Number.NaN]) {
      expect(() => binToImage(Uint8Array.of(1), base, 'app.bin'), `base ${base}`).toThrow(/is not a 32-bit address/);
    }
  });
});
