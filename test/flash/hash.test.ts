import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { murmur3 } from '../../lib/flash/hash.js';

describe('murmur3 (the host side of skip-unchanged)', () => {
  it('matches the published MurmurHash3_x86_32 test vectors', () => {
    const text = (s: string) => new TextEncoder().encode(s);
    expect(murmur3(new Uint8Array(0), 0)).toBe(0);
    expect(murmur3(new Uint8Array(0), 1)).toBe(0x514e28b7);
    expect(murmur3(new Uint8Array(0), 0xffffffff)).toBe(0x81f16f39);
    expect(murmur3(Uint8Array.of(0xff, 0xff, 0xff, 0xff), 0)).toBe(0x76293b50);
    expect(murmur3(Uint8Array.of(0x21, 0x43, 0x65, 0x87), 0)).toBe(0xf55b516b);
    expect(murmur3(Uint8Array.of(0x21, 0x43, 0x65), 0)).toBe(0x7e4a8634);
    expect(murmur3(Uint8Array.of(0x21, 0x43), 0)).toBe(0xa0f7b07a);
    expect(murmur3(Uint8Array.of(0x21), 0)).toBe(0x72661cf4);
    expect(murmur3(text('Hello, world!'), 1234)).toBe(0xfaf6cdb3);
    expect(murmur3(text('The quick brown fox jumps over the lazy dog'), 0x9747b28c)).toBe(0x2fa826cd);
  });

  it('tells apart data that differs in any one bit, or in the top bits of two words', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), (data, at) => {
        const bit = at % (data.length * 8);
        const other = new Uint8Array(data);
        other[bit >> 3] = other[bit >> 3]! ^ (1 << (bit & 7));
        expect(murmur3(other)).not.toBe(murmur3(data));
      }),
    );
    const a = new Uint8Array(4096);
    const b = new Uint8Array(4096);
    b[3] = 0x80;
    b[7] = 0x80; // a weak word hash (FNV-1a on words) lets these two flips cancel
    expect(murmur3(b)).not.toBe(murmur3(a));
  });
});
