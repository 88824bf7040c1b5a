/**
 * Crafts MurmurHash3_x86_32 collisions the way issue 15 describes: change one
 * byte of a word, then choose the next word so that the running state is
 * back where it was. Every step of the 32-bit block function is invertible
 * (multiplication by an odd constant, rotation, xor), so this takes one
 * inverse mix per pair: microseconds. The two inputs differ in at most 5
 * bytes and have the same length, so the tail and final mix see the same
 * state: equal `murmur3`, whatever the data around them. The 128-bit
 * variant falls to the same trick ({@link craftMurmur3x128Collision}).
 * @module
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** The multiplicative inverse of an odd number modulo 2^32 (Newton's iteration: each step doubles the correct bits). */
function inverse(odd: number): number {
  let x = odd;
  for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(odd, x));
  return x >>> 0;
}

const mix = (k: number) => Math.imul(((Math.imul(k, C1) << 15) | (Math.imul(k, C1) >>> 17)) >>> 0, C2) >>> 0;
const unmix = (m: number) => {
  const r = Math.imul(m, inverse(C2)) >>> 0;
  return Math.imul(((r >>> 15) | (r << 17)) >>> 0, inverse(C1)) >>> 0;
};

/** The state after word `i` of murmur3's block loop (seed 0), for words 0..count-1. */
function stateAfter(view: DataView, count: number): number {
  let h = 0;
  for (let i = 0; i < count; i++) {
    h ^= mix(view.getUint32(i * 4, true));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return h >>> 0;
}

/**
 * A copy of `data` that differs from it in 5 bytes (or fewer) within words
 * `word` and `word + 1` and has the same MurmurHash3_x86_32 (seed 0). Needs
 * `word + 2` whole words in `data`.
 *
 * @example
 * ```ts
 * const b = craftMurmur3Collision(a, 10);
 * murmur3(b) === murmur3(a); // true
 * ```
 */
export function craftMurmur3Collision(data: Uint8Array, word: number, flip = 0x01): Uint8Array {
  if ((word + 2) * 4 > data.length) throw new RangeError(`need ${(word + 2) * 4} bytes, have ${data.length}`);
  const out = new Uint8Array(data);
  const a = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const b = new DataView(out.buffer);
  out[word * 4] = out[word * 4]! ^ flip;
  // State before word+1 in each input; word+1 of `out` must make them meet: hA ^ mix(kA) = hB ^ mix(kB).
  const hA = stateAfter(a, word + 1);
  const hB = stateAfter(b, word + 1);
  const kA = a.getUint32((word + 1) * 4, true);
  b.setUint32((word + 1) * 4, unmix((hA ^ mix(kA) ^ hB) >>> 0), true);
  return out;
}

/** The four lanes of MurmurHash3_x86_128: mix constants, k rotation, h rotation, h addend. */
const LANES = [
  { c: 0x239b961b, next: 0xab0e9789, kRot: 15, hRot: 19, add: 0x561ccd1b },
  { c: 0xab0e9789, next: 0x38b34ae5, kRot: 16, hRot: 17, add: 0x0bcaa747 },
  { c: 0x38b34ae5, next: 0xa1e38b93, kRot: 17, hRot: 15, add: 0x96cd1c35 },
  { c: 0xa1e38b93, next: 0x239b961b, kRot: 18, hRot: 13, add: 0x32ac3b17 },
] as const;
const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;
const rotr = (x: number, r: number) => ((x >>> r) | (x << (32 - r))) >>> 0;
const INV5 = inverse(5);

/** The four lanes after blocks 0..count-1 of x86_128's block loop (seed 0). */
function lanesAfter(view: DataView, count: number): number[] {
  const h = [0, 0, 0, 0];
  for (let b = 0; b < count; b++) {
    for (let l = 0; l < 4; l++) {
      const { c, next, kRot, hRot, add } = LANES[l]!;
      const k = Math.imul(rotl(Math.imul(view.getUint32(b * 16 + l * 4, true), c) >>> 0, kRot), next) >>> 0;
      // Lane 4 adds the new h1; lanes 1-3 the old value of the next lane.
      h[l] = (Math.imul((rotl((h[l]! ^ k) >>> 0, hRot) + h[(l + 1) % 4]!) | 0, 5) + add) >>> 0;
    }
  }
  return h;
}

/**
 * The same forgery against MurmurHash3_x86_128: change one byte of 16-byte
 * block `block`, then solve block `block + 1` lane by lane so that all four
 * lanes are back where they were (each lane's step is invertible too). The
 * copy differs in at most 17 bytes and has the same `murmur3x128`: 128 bits
 * make chance collisions negligible, not crafted ones.
 */
export function craftMurmur3x128Collision(data: Uint8Array, block: number, flip = 0x01): Uint8Array {
  if ((block + 2) * 16 > data.length) throw new RangeError(`need ${(block + 2) * 16} bytes, have ${data.length}`);
  const out = new Uint8Array(data);
  const a = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const b = new DataView(out.buffer);
  out[block * 16] = out[block * 16]! ^ flip;
  const target = lanesAfter(a, block + 2);
  const h = lanesAfter(b, block + 1);
  for (let l = 0; l < 4; l++) {
    const { c, next, kRot, hRot, add } = LANES[l]!;
    const plus = l === 3 ? target[0]! : h[l + 1]!; // lane 4 adds h1 as already updated (= the target's)
    const mixed = (rotr((Math.imul((target[l]! - add) >>> 0, INV5) - plus) >>> 0, hRot) ^ h[l]!) >>> 0;
    const k = Math.imul(rotr(Math.imul(mixed, inverse(next)) >>> 0, kRot), inverse(c)) >>> 0;
    b.setUint32((block + 1) * 16 + l * 4, k, true);
  }
  return out;
}

/** Indices where `a` and `b` differ. */
export function differingBytes(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) out.push(i);
  return out;
}
