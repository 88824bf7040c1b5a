/**
 * MurmurHash3 (x86, 32-bit) on the host: the same function as `rsp_hash32` in
 * target-src/sequencer.c, which skip-unchanged runs on the target. Words are
 * taken little-endian from the first byte of the data.
 *
 * Why not CRC-32 here: a byte-at-a-time table CRC runs at about 8 MB/s under
 * QEMU, a word-at-a-time hash about 45 times faster (bench/README.md); an
 * unchanged re-run is mostly this comparison. Like CRC-32 it is 32 bits: a
 * changed sector passes for unchanged with odds of about 1 in 4 billion.
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
