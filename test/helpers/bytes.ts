/**
 * Test data and comparisons for byte arrays: reproducible contents, the
 * erased state of flash, and reading a word back.
 * @module
 */

/**
 * Deterministic bytes that are neither 0x00- nor 0xFF-heavy, different per
 * seed (a linear congruential generator), so a failing run can be repeated.
 *
 * @example
 * ```ts
 * const page = seededBytes(256, 1); // the same 256 bytes on every run
 * ```
 */
export function seededBytes(length: number, seed: number): Uint8Array {
  let x = (seed * 0x9e3779b1 + 1) >>> 0;
  return Uint8Array.from({ length }, () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x >>> 24;
  });
}

/** Whether two byte arrays hold the same bytes (fast on MiB-sized arrays, unlike a deep `toEqual`). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/** `length` bytes of erased NOR flash: all 0xFF. */
export function erasedBytes(length: number): Uint8Array {
  return new Uint8Array(length).fill(0xff);
}

/** The little-endian 32-bit word at the start of `bytes` (as the target stores it). */
export function u32(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
}
