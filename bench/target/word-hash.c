/*
 * A prototype of a faster on-target compare for skip-unchanged, measured by
 * the benchmark next to rspflash's byte-wise CRC-32 (figure 2, "compare").
 * FNV-1a over 32-bit words, four words per iteration: one load, one XOR and
 * one multiply per word instead of a table look-up per byte. Change detection
 * only (a 32-bit hash, as CRC-32 is); not part of the library.
 *
 * Built into bench/word-hash-code.ts by bench/target/build.sh (Cortex-M55 code,
 * position independent). `nbytes` must be a multiple of 16.
 */
#include <stdint.h>

__attribute__((used, noinline)) uint32_t word_hash(uint32_t h, const uint32_t *p, uint32_t nbytes)
{
    const uint32_t prime = 16777619u;
    const uint32_t *end = p + (nbytes >> 2);
    h ^= 2166136261u;
    while (p != end) {
        uint32_t a = p[0], b = p[1], c = p[2], d = p[3];
        p += 4;
        h = (h ^ a) * prime;
        h = (h ^ b) * prime;
        h = (h ^ c) * prime;
        h = (h ^ d) * prime;
    }
    return h;
}
