/**
 * The host twins of the on-target compare hashes in target-src/sequencer.c:
 * MurmurHash3 x86_32 (`rsp_hash32`, {@link murmur3}) and x86_128
 * (`rsp_hash128`, {@link murmur3x128}). Words are taken little-endian from the
 * first byte of the data.
 *
 * Why not CRC-32 here: a byte-at-a-time table CRC runs at about 8 MB/s under
 * QEMU, a word-at-a-time hash about 45 times faster (bench/README.md); an
 * unchanged re-run is mostly this comparison.
 *
 * Why 128 bits: with 32, a changed sector passes for unchanged with odds of
 * 1 in 4 billion per sector, about once in 500,000 runs over 8192 sectors,
 * and two images with equal 32-bit hashes can be crafted in microseconds
 * (issue 15). MurmurHash3 x86_128 uses 32-bit operations only (fast on a
 * Cortex-M0) and makes chance collisions negligible (2^-128 per sector). It is
 * still not a cryptographic hash: see docs/reliability.md, "Hash width".
 * @module
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mix(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

/** MurmurHash3_x86_32 of `data` with `seed` (default 0), as an unsigned 32-bit number. */
export function murmur3(data: Uint8Array, seed = 0): number {
  let h = seed | 0;
  const words = data.length >>> 2;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < words; i++) {
    h ^= mix(view.getUint32(i * 4, true));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = words * 4;
  const rest = data.length & 3;
  if (rest > 0) {
    let k = data[tail]!;
    if (rest > 1) k |= data[tail + 1]! << 8;
    if (rest > 2) k |= data[tail + 2]! << 16;
    h ^= mix(k);
  }
  h ^= data.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A 128-bit MurmurHash3 (x86_128) value: 32 lower-case hex digits, the 16
 * bytes of h1, h2, h3, h4 in that order, each word little-endian — the bytes
 * `rsp_hash128` stores at its `out` pointer and the reference
 * implementation's output buffer on a little-endian machine (for example
 * h1 = 0xcc066f1f, h2..h4 = 0x9e517840 print as
 * `'1f6f06cc4078519e4078519e4078519e'`). Compare two with `===`.
 */
export type Hash128 = string;

const X128_C1 = 0x239b961b;
const X128_C2 = 0xab0e9789;
const X128_C3 = 0x38b34ae5;
const X128_C4 = 0xa1e38b93;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * The four 32-bit words h1..h4 of MurmurHash3_x86_128 of `data` with `seed`
 * (unsigned), as the reference implementation (smhasher) writes them.
 */
export function murmur3x128Words(data: Uint8Array, seed = 0): [number, number, number, number] {
  let h1 = seed | 0;
  let h2 = h1;
  let h3 = h1;
  let h4 = h1;
  const length = data.length;
  const blocks = length >>> 4;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < blocks; i++) {
    const at = i * 16;
    let k1 = view.getUint32(at, true);
    let k2 = view.getUint32(at + 4, true);
    let k3 = view.getUint32(at + 8, true);
    let k4 = view.getUint32(at + 12, true);
    k1 = Math.imul(rotl(Math.imul(k1, X128_C1), 15), X128_C2);
    h1 ^= k1;
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, X128_C2), 16), X128_C3);
    h2 ^= k2;
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, X128_C3), 17), X128_C4);
    h3 ^= k3;
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, X128_C4), 18), X128_C1);
    h4 ^= k4;
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  // Tail: up to 15 bytes into k1..k4 as one little-endian 128-bit number, shifted in from the last
  // byte down (as rsp_hash128 does). Mixing a lane whose k is 0 is a no-op, so the reference's
  // "only the lanes the tail reaches" needs no special case.
  let k1 = 0;
  let k2 = 0;
  let k3 = 0;
  let k4 = 0;
  const tail = blocks * 16;
  for (let i = (length & 15) - 1; i >= 0; i--) {
    k4 = (k4 << 8) | (k3 >>> 24);
    k3 = (k3 << 8) | (k2 >>> 24);
    k2 = (k2 << 8) | (k1 >>> 24);
    k1 = (k1 << 8) | data[tail + i]!;
  }
  h1 ^= Math.imul(rotl(Math.imul(k1, X128_C1), 15), X128_C2);
  h2 ^= Math.imul(rotl(Math.imul(k2, X128_C2), 16), X128_C3);
  h3 ^= Math.imul(rotl(Math.imul(k3, X128_C3), 17), X128_C4);
  h4 ^= Math.imul(rotl(Math.imul(k4, X128_C4), 18), X128_C1);
  // The reference takes the length as an int: lengths of 4 GiB and more do not occur here.
  h1 ^= length;
  h2 ^= length;
  h3 ^= length;
  h4 ^= length;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix32(h1);
  h2 = fmix32(h2);
  h3 = fmix32(h3);
  h4 = fmix32(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/**
 * MurmurHash3_x86_128 of `data` with `seed` (default 0) as a {@link Hash128}:
 * the same function as `rsp_hash128` on the target, which compare and verify
 * run on flash.
 *
 * @example
 * ```ts
 * murmur3x128(new Uint8Array(4)); // '1f6f06cc4078519e4078519e4078519e'
 * ```
 */
export function murmur3x128(data: Uint8Array, seed = 0): Hash128 {
  return hash128FromWords(murmur3x128Words(data, seed));
}

/** The {@link Hash128} of the words h1..h4 (each taken as unsigned 32-bit). */
export function hash128FromWords(words: readonly [number, number, number, number] | readonly number[]): Hash128 {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 4; i++) view.setUint32(i * 4, (words[i] ?? 0) >>> 0, true);
  return hash128FromBytes(bytes);
}

/** The {@link Hash128} of 16 bytes as `rsp_hash128` stores them (h1..h4, little-endian). */
export function hash128FromBytes(bytes: Uint8Array): Hash128 {
  if (bytes.length !== 16) throw new RangeError(`a 128-bit hash is 16 bytes, not ${bytes.length}`);
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}
