/**
 * gdb's CRC-32 for `qCRC` (and `compare-sections`): CRC-32/MPEG-2 — polynomial
 * 0x04C11DB7, most significant bit first (not reflected), initial value
 * 0xffffffff, no final xor. It is libiberty's `xcrc32(buf, len, 0xffffffff)`,
 * which gdb's `target-memory.c`/`remote.c` compare a `qCRC` reply with.
 *
 * Not the zlib CRC-32 of lib/algo (reflected, poly 0xEDB88320): the two cannot
 * be converted into each other without the data, so the target runs a routine
 * of its own ({@link CRC_MPEG2_CODE}).
 * @module
 */

/** gdb's CRC polynomial (MSB first). */
export const CRC_MPEG2_POLY = 0x04c11db7;
/** The initial value gdb passes (`xcrc32(…, 0xffffffff)`); no final xor follows. */
export const CRC_MPEG2_INIT = 0xffffffff;

/** The 256-entry MSB-first table, built once (module-level constant, never changed). */
const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ CRC_MPEG2_POLY : c << 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC-32/MPEG-2 of `data`, continuing from `crc` (default gdb's initial value).
 *
 * @example
 * ```ts
 * crcMpeg2(new TextEncoder().encode('123456789')); // 0x0376e6e7, the catalogue check value
 * ```
 */
export function crcMpeg2(data: Uint8Array, crc = CRC_MPEG2_INIT): number {
  let c = crc >>> 0;
  for (let i = 0; i < data.length; i++) c = ((c << 8) ^ TABLE[((c >>> 24) ^ data[i]!) & 0xff]!) >>> 0;
  return c >>> 0;
}

/** The table as little-endian words, as the target routine reads it. */
export function crcMpeg2TableBytes(): Uint8Array {
  const out = new Uint8Array(1024);
  const view = new DataView(out.buffer);
  for (let n = 0; n < 256; n++) view.setUint32(n * 4, TABLE[n]!, true);
  return out;
}

/**
 * ARMv6-M Thumb code (runs on every Cortex-M) of
 * `uint32_t crc(uint32_t crc, const uint8_t *p, uint32_t len, const uint32_t *table)`:
 * `while (len--) crc = (crc << 8) ^ table[((crc >> 24) ^ *p++) & 0xff]; return crc;`
 * Built from that C with arm-none-eabi-gcc 12.2 `-mcpu=cortex-m0 -mthumb -Os -fPIC`
 * (28 bytes, position independent, no stack beyond 3 words). The host twin is
 * {@link crcMpeg2}; test/serve/crc.test.ts runs both on QEMU.
 */
export const CRC_MPEG2_CODE: Uint8Array = Uint8Array.from(Buffer.from('30b58a18914200d130bd0d780402000e68408000c05801316040f3e7', 'hex'));

/** Bytes of {@link CRC_MPEG2_CODE} rounded up to a word: where the table starts after the code. */
export const CRC_MPEG2_TABLE_OFFSET = 32;
