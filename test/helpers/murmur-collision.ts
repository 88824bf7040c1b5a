/**
 * Crafts MurmurHash3_x86_32 collisions the way issue 15 describes: change one
 * byte of a word, then choose the next word so that the running state is
 * back where it was. Every step of the 32-bit block function is invertible
 * (multiplication by an odd constant, rotation, xor), so this takes one
 * inverse mix per pair: microseconds. The two inputs differ in at most 5
 * bytes and have the same length, so the tail and final mix see the same
 * state: equal `murmur3`, whatever the data around them.
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

/** Indices where `a` and `b` differ. */
export function differingBytes(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) out.push(i);
  return out;
}
