/*
 * rsp_unpack: the on-target half of compressed transfer (issue 12). Expands
 * one raw deflate stream (RFC 1951, as node:zlib's deflateRawSync writes it;
 * lib/flash/codec.ts) straight into a page buffer, before ProgramPage/Verify
 * run over it. docs/compression.md says why deflate and gives the figures.
 *
 * Straight into the buffer: the window of back-references is the output
 * itself (the whole block is in RAM), so no window buffer is needed whatever
 * windowBits the encoder used. The Huffman tables live on the stack (about
 * 1.1 KiB; the figure is in docs/compression.md and layout.ts).
 *
 * Hostile input: every read of src is checked against srcLen and every write
 * of dst against dstLen, every back-reference against the bytes already
 * produced, and every Huffman code against over-subscription; a corrupt or
 * hostile stream ends in a failure result, never a write outside
 * [dst, dst + dstLen) and never a read outside [src, src + srcLen).
 * Canonical decoding one bit at a time (as zlib's puff.c does): small and
 * bounded (at most 15 steps a symbol), no lookup tables to build.
 *
 * Position independent and table free: the constant tables of RFC 1951
 * (length and distance bases, the code-length order) are computed, because a
 * const array would be reached through an absolute address. One function only
 * (helpers are always inlined): test/algo/target-code.test.ts requires every
 * function of the blob to be named in TARGET_ENTRY.
 */
#include <stdint.h>

#define UNPACK_FAILED 0x80000000u /* | source offset; lib/flash/codec.ts UNPACK_FAILED */
#define MAX_BITS 15u
#define MAX_LCODES 286u
#define MAX_DCODES 30u
#define FIX_LCODES 288u

struct huffman {
    uint16_t count[MAX_BITS + 1]; /* codes of each length; count[0] = unused symbols */
    uint16_t symbol[FIX_LCODES];  /* symbols ordered by code */
};

struct huffman_small {
    uint16_t count[MAX_BITS + 1];
    uint16_t symbol[MAX_DCODES + 2];
};

/*
 * Canonical Huffman code from code lengths (RFC 1951 3.2.2). Returns 0 for a
 * complete code, > 0 for an incomplete one, < 0 for an over-subscribed one.
 */
static inline __attribute__((always_inline)) int32_t build(uint16_t *count, uint16_t *symbol, const uint8_t *length, uint32_t n)
{
    uint16_t offs[MAX_BITS + 1];
    uint32_t len, sym;
    int32_t left;
    for (len = 0; len <= MAX_BITS; len++) count[len] = 0;
    for (sym = 0; sym < n; sym++) count[length[sym]]++;
    if (count[0] == n) return 0; /* no codes: decoding any symbol fails */
    left = 1;
    for (len = 1; len <= MAX_BITS; len++) {
        left <<= 1;
        left -= count[len];
        if (left < 0) return left;
    }
    offs[1] = 0;
    for (len = 1; len < MAX_BITS; len++) offs[len + 1] = offs[len] + count[len];
    for (sym = 0; sym < n; sym++)
        if (length[sym] != 0) symbol[offs[length[sym]]++] = (uint16_t)sym;
    return left;
}

/* The bit reader: bits of src LSB first, at most 7 held between reads. */
#define NEED(n)                                              \
    do {                                                     \
        while (cnt < (n)) {                                  \
            if (pos == srcLen) goto fail;                    \
            buf |= (uint32_t)src[pos++] << cnt;              \
            cnt += 8;                                        \
        }                                                    \
    } while (0)
#define BITS(out, n)                                         \
    do {                                                     \
        NEED(n);                                             \
        (out) = buf & ((1u << (n)) - 1u);                    \
        buf >>= (n);                                         \
        cnt -= (n);                                          \
    } while (0)

/* One symbol of code (count, symbol) into `out`, or fail when no code of <= 15 bits matches. */
#define DECODE(out, count, symbol)                           \
    do {                                                     \
        uint32_t code_ = 0, first_ = 0, index_ = 0, len_;    \
        for (len_ = 1;; len_++) {                            \
            uint32_t bit_, n_;                               \
            if (len_ > MAX_BITS) goto fail;                  \
            BITS(bit_, 1);                                   \
            code_ |= bit_;                                   \
            n_ = (count)[len_];                              \
            if (code_ - first_ < n_) {                       \
                (out) = (symbol)[index_ + code_ - first_];   \
                break;                                       \
            }                                                \
            index_ += n_;                                    \
            first_ = (first_ + n_) << 1;                     \
            code_ <<= 1;                                     \
        }                                                    \
    } while (0)

/*
 * Expands the raw deflate stream at src (srcLen bytes) into dst (dstLen
 * bytes, < 2 GiB). Returns dstLen when the stream ends with its final block
 * in its last byte and has produced exactly dstLen bytes; otherwise
 * UNPACK_FAILED | the number of source bytes read when it stopped. src and
 * dst must not overlap (a hostile stream could then only spoil its own input,
 * never write outside dst, but the result would mean nothing).
 */
__attribute__((used, noinline, optimize("no-tree-loop-distribute-patterns")))
uint32_t rsp_unpack(const uint8_t *src, uint32_t srcLen, uint8_t *dst, uint32_t dstLen)
{
    struct huffman lencode;
    struct huffman_small distcode;
    uint8_t lengths[FIX_LCODES + MAX_DCODES];
    uint32_t pos = 0, buf = 0, cnt = 0, op = 0;
    uint32_t last, type, i, nlen, ndist;

    do {
        BITS(last, 1);
        BITS(type, 2);
        if (type == 0) {
            /* Stored: the rest of the current byte is padding, then LEN, NLEN, LEN bytes. */
            uint32_t len, check;
            buf = 0;
            cnt = 0;
            BITS(len, 16);
            BITS(check, 16);
            if (len != (~check & 0xffffu)) goto fail;
            if (len > srcLen - pos || len > dstLen - op) goto fail;
            while (len--) dst[op++] = src[pos++];
            continue;
        }
        if (type == 1) {
            /* Fixed codes (RFC 1951 3.2.6), built below like dynamic ones. */
            for (i = 0; i < 144; i++) lengths[i] = 8;
            for (; i < 256; i++) lengths[i] = 9;
            for (; i < 280; i++) lengths[i] = 7;
            for (; i < FIX_LCODES; i++) lengths[i] = 8;
            for (; i < FIX_LCODES + MAX_DCODES; i++) lengths[i] = 5;
            nlen = FIX_LCODES;
            ndist = MAX_DCODES;
        } else if (type == 2) {
            /* Dynamic codes (RFC 1951 3.2.7): code lengths coded with a code of their own. */
            uint32_t ncode, index, sym, rep, fill;
            BITS(nlen, 5);
            nlen += 257;
            BITS(ndist, 5);
            ndist += 1;
            BITS(ncode, 4);
            ncode += 4;
            if (nlen > MAX_LCODES || ndist > MAX_DCODES) goto fail;
            for (i = 0; i < 19; i++) {
                /* Code-length code order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1 15, computed (no tables). */
                uint32_t at = i < 3 ? 16 + i : i == 3 ? 0 : ((i - 4) & 1) ? 7 - ((i - 5) >> 1) : 8 + ((i - 4) >> 1);
                uint32_t v = 0;
                if (i < ncode) BITS(v, 3);
                lengths[at] = (uint8_t)v;
            }
            /* The code-length code goes in distcode's storage (19 symbols), which is free until the lengths are read. */
            if (build(distcode.count, distcode.symbol, lengths, 19) != 0) goto fail; /* must be complete */
            for (index = 0; index < nlen + ndist;) {
                DECODE(sym, distcode.count, distcode.symbol);
                if (sym < 16) {
                    lengths[index++] = (uint8_t)sym;
                    continue;
                }
                fill = 0;
                if (sym == 16) {
                    if (index == 0) goto fail; /* nothing to repeat */
                    fill = lengths[index - 1];
                    BITS(rep, 2);
                    rep += 3;
                } else if (sym == 17) {
                    BITS(rep, 3);
                    rep += 3;
                } else {
                    BITS(rep, 7);
                    rep += 11;
                }
                if (rep > nlen + ndist - index) goto fail;
                while (rep--) lengths[index++] = (uint8_t)fill;
            }
            if (lengths[256] == 0) goto fail; /* no end-of-block code */
        } else {
            goto fail; /* type 3 is reserved */
        }
        /* Literal/length code, then distance code, from lengths[0..nlen) and lengths[nlen..nlen+ndist): one loop, one copy of build(). */
        for (i = 0; i < 2; i++) {
            uint16_t *count = i ? distcode.count : lencode.count;
            uint32_t n = i ? ndist : nlen;
            int32_t err = build(count, i ? distcode.symbol : lencode.symbol, lengths + (i ? nlen : 0), n);
            /* Incomplete dynamic codes are allowed only with a single code (RFC 1951's one-distance-code case);
               the fixed distance code is incomplete by design (30 of 32 codes). */
            if (err < 0 || (err > 0 && type == 2 && n - count[0] != 1)) goto fail;
        }
        /* Literals and back-references until end-of-block. */
        for (;;) {
            uint32_t sym, len, dist, extra, v;
            DECODE(sym, lencode.count, lencode.symbol);
            if (sym < 256) {
                if (op == dstLen) goto fail;
                dst[op++] = (uint8_t)sym;
                continue;
            }
            if (sym == 256) break;
            sym -= 257;
            if (sym >= 29) goto fail; /* 286, 287: never valid */
            /* Length bases and extra bits of RFC 1951 3.2.5, computed. */
            if (sym < 4) { len = sym + 3; extra = 0; }
            else if (sym == 28) { len = 258; extra = 0; }
            else { extra = (sym - 4) >> 2; len = ((4u + (sym & 3u)) << extra) + 3u; }
            if (extra) { BITS(v, extra); len += v; }
            DECODE(sym, distcode.count, distcode.symbol);
            if (sym >= 30) goto fail;
            if (sym < 4) { dist = sym + 1; extra = 0; }
            else { extra = (sym - 2) >> 1; dist = ((2u + (sym & 1u)) << extra) + 1u; }
            if (extra) { BITS(v, extra); dist += v; }
            if (dist > op || len > dstLen - op) goto fail;
            /* Byte by byte: a reference may overlap its own output (dist < len repeats a pattern). */
            while (len--) { dst[op] = dst[op - dist]; op++; }
        }
    } while (!last);
    if (pos == srcLen && op == dstLen) return dstLen;
fail:
    return UNPACK_FAILED | pos;
}
