import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hash128FromBytes, hash128FromWords, murmur3, murmur3x128, murmur3x128Words } from '../../lib/flash/hash.js';
import { craftMurmur3Collision, craftMurmur3x128Collision, differingBytes } from '../helpers/murmur-collision.js';

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

describe('murmur3x128 (the host side of compare and verify)', () => {
  const text = (s: string) => new TextEncoder().encode(s);
  const words = (data: Uint8Array, seed: number) => murmur3x128Words(data, seed);

  it('matches MurmurHash3_x86_128 vectors published with other implementations (h1, h2, h3, h4)', () => {
    // Dovecot's test-murmurhash3.c (32-bit vectors), CCCL's cuco hash tests, a C port's test of "hogefugafoobar".
    expect(words(new Uint8Array(0), 0)).toEqual([0, 0, 0, 0]);
    expect(words(new Uint8Array(0), 1)).toEqual([0x88c4adec, 0x54d201b9, 0x54d201b9, 0x54d201b9]);
    expect(words(new Uint8Array(0), 0xffffffff)).toEqual([0x051e08a9, 0x989d49f7, 0x989d49f7, 0x989d49f7]);
    expect(words(new Uint8Array(4), 0)).toEqual([0xcc066f1f, 0x9e517840, 0x9e517840, 0x9e517840]);
    expect(words(text('aaaa'), 0x9747b28c)).toEqual([0x36804cef, 0x2a61c224, 0x2a61c224, 0x2a61c224]);
    expect(words(text('aaa'), 0x9747b28c)).toEqual([0x838389be, 0x9aad7f88, 0x9aad7f88, 0x9aad7f88]);
    expect(words(text('aa'), 0x9747b28c)).toEqual([0xdfbe4a86, 0x4a9c350b, 0x4a9c350b, 0x4a9c350b]);
    expect(words(text('a'), 0x9747b28c)).toEqual([0x084ef944, 0x21a1186e, 0x21a1186e, 0x21a1186e]);
    expect(words(text('abcd'), 0x9747b28c)).toEqual([0x4795c529, 0xcec1885e, 0xcec1885e, 0xcec1885e]);
    expect(words(text('abc'), 0x9747b28c)).toEqual([0xd6359eaf, 0x48fc3ac3, 0x48fc3ac3, 0x48fc3ac3]);
    expect(words(text('ab'), 0x9747b28c)).toEqual([0x3837d795, 0xc7fe5896, 0xc7fe5896, 0xc7fe5896]);
    expect(words(text('Hello, world!'), 0x9747b28c)).toEqual([0x756d5460, 0xbb872216, 0xb7d48b7c, 0x53c8c636]);
    expect(words(text('\u03c0'.repeat(8)), 0x9747b28c)).toEqual([0xaf2ad325, 0x3a74df88, 0x38cc7534, 0xf197cc0d]);
    expect(words(text('a'.repeat(256)), 0x9747b28c)).toEqual([0xd3f2b7bb, 0xf666c0cc, 0xd4a40060, 0x5ec8d32a]);
    expect(words(Uint8Array.of(9, 0, 0, 0), 0)).toEqual([2808089785, 314604614, 314604614, 314604614]);
    expect(words(Uint8Array.of(42, 0, 0, 0), 42)).toEqual([3399017053, 732469929, 732469929, 732469929]);
    expect(words(Uint8Array.of(2, 0, 0, 0, 2, 0, 0, 0), 0)).toEqual([1234494082, 1431451587, 431049201, 431049201]);
    expect(words(Uint8Array.of(1, 0, 0, 0, 4, 0, 0, 0, 9, 0, 0, 0), 42)).toEqual([2516796247, 2757675829, 778406919, 2453259553]);
    expect(words(text('hogefugafoobar'), 12345678)).toEqual([1512736128, 3528938480, 3633978259, 481906499]);
  });

  it("passes smhasher's verification test (every length 0..255, seed 256 - length; VerifyHash 0xB3ECE62A)", () => {
    const key = new Uint8Array(256);
    const hashes = new Uint8Array(256 * 16);
    const view = new DataView(hashes.buffer);
    for (let i = 0; i < 256; i++) {
      key[i] = i;
      murmur3x128Words(key.subarray(0, i), 256 - i).forEach((w, j) => view.setUint32(i * 16 + j * 4, w, true));
    }
    expect(murmur3x128Words(hashes, 0)[0]).toBe(0xb3ece62a);
  });

  it('prints h1..h4 as 32 lower-case hex digits, each word little-endian (the bytes rsp_hash128 stores)', () => {
    expect(murmur3x128(new Uint8Array(4))).toBe('1f6f06cc4078519e4078519e4078519e');
    expect(murmur3x128(new Uint8Array(0))).toBe('0'.repeat(32));
    expect(hash128FromWords([0x01020304, 0xa0b0c0d0, 0, 0xffffffff])).toBe('04030201d0c0b0a000000000ffffffff');
    expect(hash128FromBytes(Uint8Array.from({ length: 16 }, (_, i) => i))).toBe('000102030405060708090a0b0c0d0e0f');
    expect(() => hash128FromBytes(new Uint8Array(15))).toThrow(RangeError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.integer({ min: 0, max: 0xffffffff }), (data, seed) => {
        const hash = murmur3x128(data, seed);
        expect(hash).toMatch(/^[0-9a-f]{32}$/);
        expect(hash).toBe(hash128FromWords(murmur3x128Words(data, seed)));
      }),
    );
  });

  it('reads the data where it lies: a view into a larger buffer hashes like a copy', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.nat(200), fc.nat(200), (big, a, b) => {
        const start = Math.min(a, big.length);
        const end = Math.min(start + b, big.length);
        expect(murmur3x128(big.subarray(start, end))).toBe(murmur3x128(big.slice(start, end)));
      }),
    );
  });

  it('tells apart data that differs in any one bit, in length, or in seed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), (data, at) => {
        const bit = at % (data.length * 8);
        const other = new Uint8Array(data);
        other[bit >> 3] = other[bit >> 3]! ^ (1 << (bit & 7));
        expect(murmur3x128(other)).not.toBe(murmur3x128(data));
        expect(murmur3x128(data.subarray(0, data.length - 1))).not.toBe(murmur3x128(data));
        expect(murmur3x128(data, 1)).not.toBe(murmur3x128(data, 0));
      }),
    );
  });
});

describe('what the hash width buys, and what it does not (issue 15)', () => {
  it('two inputs 5 bytes apart with equal 32-bit MurmurHash3 are crafted in one step; their 128-bit hashes differ', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 4096 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (data, at, flip) => {
        const word = at % ((data.length >> 2) - 1);
        const forged = craftMurmur3Collision(data, word, flip);
        const changed = differingBytes(data, forged);
        expect(changed.length).toBeGreaterThan(0);
        expect(changed.length).toBeLessThanOrEqual(5);
        expect(changed.every((i) => i >= word * 4 && i < word * 4 + 8)).toBe(true);
        expect(murmur3(forged), 'the forgery collides in 32 bits').toBe(murmur3(data));
        expect(murmur3x128(forged), 'the forgery does not collide in 128 bits').not.toBe(murmur3x128(data));
      }),
    );
  });

  it('but 128 bits are against chance, not malice: a forged image with the same murmur3x128 is crafted just as quickly', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 4096 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (data, at, flip) => {
        const block = at % ((data.length >> 4) - 1);
        const forged = craftMurmur3x128Collision(data, block, flip);
        const changed = differingBytes(data, forged);
        expect(changed.length).toBeGreaterThan(0);
        expect(changed.length).toBeLessThanOrEqual(17);
        expect(murmur3x128(forged), 'hash compare is no defence against a crafted image').toBe(murmur3x128(data));
      }),
    );
  });
});
