/*
 * rsp_unpack: the on-target half of compressed transfer (issue 12). Expands
 * one LZ4 block (lz4/doc/lz4_Block_format.md, as lib/flash/codec.ts writes it)
 * straight into a page buffer, before ProgramPage/Verify run over it.
 * docs/compression.md says why LZ4 and not deflate, with the figures.
 *
 * Straight into the buffer: back-references read the output itself (the
 * whole block is in RAM), so no window and no tables: the decoder needs its
 * registers and a 40-byte frame (arm-none-eabi-gcc -fstack-usage).
 *
 * Hostile input: every read of src is checked against srcLen, every write of
 * dst against dstLen, every offset against the bytes already produced, and
 * every length is checked against the room left before it grows (so none can wrap); a
 * corrupt or hostile stream ends in a failure result, never a write outside
 * [dst, dst + dstLen) and never a read outside [src, src + srcLen). It does
 * not rely on LZ4's end-of-block rules (last 5 bytes literals), which exist
 * for decoders that skip these checks; a stream may also end after a match.
 *
 * lib/flash/codec.ts `unpackInto` is the host twin, check for check: tests
 * compare results and bytes written, hostile streams included.
 */
#include <stdint.h>

#define UNPACK_FAILED 0x80000000u /* | source offset; lib/flash/codec.ts UNPACK_FAILED */
#define MIN_MATCH 4u

/*
 * Expands the LZ4 block at src (srcLen bytes) into dst (dstLen bytes,
 * < 2 GiB). Returns dstLen when the stream ends exactly at srcLen having
 * produced exactly dstLen bytes; otherwise UNPACK_FAILED | the offset in src
 * where decoding stopped. src and dst must not overlap (a hostile stream
 * could then spoil only its own input, never write outside dst, but the
 * result would mean nothing).
 */
__attribute__((used, noinline, optimize("no-tree-loop-distribute-patterns")))
uint32_t rsp_unpack(const uint8_t *src, uint32_t srcLen, uint8_t *dst, uint32_t dstLen)
{
    uint32_t ip = 0, op = 0;
    for (;;) {
        uint32_t token, lit, len, offset, b;
        if (ip == srcLen) goto end;
        token = src[ip++];
        /* Literal run: 4 bits, 15 = more bytes follow (255 = and more still). Each length is
           checked against the room left before anything is added to it, so none can wrap. */
        lit = token >> 4;
        if (lit > dstLen - op) goto fail;
        if (lit == 15) {
            do {
                if (ip == srcLen) goto fail;
                b = src[ip++];
                if (b > dstLen - op - lit) goto fail;
                lit += b;
            } while (b == 255);
        }
        if (lit > srcLen - ip) goto fail;
        while (lit--) dst[op++] = src[ip++];
        if (ip == srcLen) goto end;
        /* Match: 16-bit little-endian offset back into the output, then its length (4 + 4 bits, 15 = more). */
        if (srcLen - ip < 2) goto fail;
        offset = (uint32_t)src[ip] | ((uint32_t)src[ip + 1] << 8);
        if (offset == 0 || offset > op) goto fail;
        ip += 2;
        len = (token & 15u) + MIN_MATCH;
        if (len > dstLen - op) goto fail;
        if ((token & 15u) == 15) {
            do {
                if (ip == srcLen) goto fail;
                b = src[ip++];
                if (b > dstLen - op - len) goto fail;
                len += b;
            } while (b == 255);
        }
        /* Byte by byte: a match may overlap its own output (offset < length repeats a pattern). */
        while (len--) {
            dst[op] = dst[op - offset];
            op++;
        }
    }
end:
    if (op == dstLen) return dstLen;
fail:
    return UNPACK_FAILED | ip;
}
