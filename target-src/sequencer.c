/*
 * rspflash on-target helpers, loaded into target RAM beside a flash algorithm.
 *
 * Built by scripts/build-target-code.sh into lib/algo/target-code.ts (committed).
 * Position independent (PC-relative only, no data, no GOT) so the blob runs at
 * whatever RAM address the runner picks. ARMv6-M instructions only, so the same
 * code runs on Cortex-M0 and Cortex-M55; the ARMv8-M extras live in
 * sequencer_v8m.c.
 *
 * Every routine is entered by the debugger with LR = return trap | 1 and ends
 * with an ordinary return to it. Results may be left in any of r0-r7: the
 * runner reads all core registers after the halt.
 */
#include <stdint.h>

/* One entry of a batch: 8 words, layout shared with lib/algo/sequencer.ts. */
struct call {
    uint32_t fn;       /* entry address | 1 */
    uint32_t arg[4];   /* r0-r3 */
    uint32_t expect;   /* result that means success */
    uint32_t flags;    /* FLAG_* | repeat count << 16 (0 = once) */
    uint32_t result;   /* last result, written back */
};

#define FLAG_COLLECT 1u        /* keep the result, do not compare it */
#define FLAG_STRIDE 2u         /* between repeats: arg0 += arg1, arg2 += arg1 */
#define FLAG_EXPECT_STRIDE 4u  /* between repeats: expect += arg1 (Verify returns adr + sz) */
#define FLAG_STARTED 8u        /* set by the sequencer when it starts an entry: after a fault or
                                  timeout the host finds the call that was running, arguments as made */
#define STATUS_OK 0u
#define STATUS_FAILED 1u
#define STATUS_STACK 2u
#define CANARY 0xC0DEC0DEu

typedef uint32_t (*routine)(uint32_t, uint32_t, uint32_t, uint32_t);

static inline void set_static_base(uint32_t sb)
{
    __asm volatile("mov r9, %0" : : "r"(sb) : "r9");
}

/*
 * Runs the `count` entries of `table`, each `repeat` times with its arguments
 * striding in place, so that one entry can program a whole buffer page by page.
 * Stops at the first result that is not `expect` (unless collected) or when the
 * stack canary word at `canary` has changed; the failing entry then holds the
 * arguments of the failing call and its result. Each entry is marked
 * FLAG_STARTED before its first call, so that after a fault or a timeout (when
 * this function never returns) the last marked entry names the call.
 * Returns r0 = entries completed, r1 = status (STATUS_*).
 * R9 is set to `sb` before every call: a RWPI algorithm relies on it.
 */
__attribute__((used, noinline)) uint64_t rsp_seq_run(struct call *table, uint32_t count, uint32_t sb, volatile uint32_t *canary)
{
    uint32_t i;
    uint32_t status = STATUS_OK;
    for (i = 0; i < count; i++) {
        struct call *c = &table[i];
        uint32_t repeat = c->flags >> 16;
        if (repeat == 0) repeat = 1;
        c->flags |= FLAG_STARTED;
        for (;;) {
            set_static_base(sb);
            uint32_t r = ((routine)c->fn)(c->arg[0], c->arg[1], c->arg[2], c->arg[3]);
            c->result = r;
            if (*canary != CANARY) { status = STATUS_STACK; goto out; }
            if (!(c->flags & FLAG_COLLECT) && r != c->expect) { status = STATUS_FAILED; goto out; }
            if (--repeat == 0) break;
            if (c->flags & FLAG_STRIDE) { c->arg[0] += c->arg[1]; c->arg[2] += c->arg[1]; }
            if (c->flags & FLAG_EXPECT_STRIDE) c->expect += c->arg[1];
        }
    }
out:
    return (uint64_t)i | ((uint64_t)status << 32);
}

/*
 * CRC-32 (reflected, poly 0xEDB88320, zlib convention: pass 0 to start) of
 * `len` bytes at `addr`, with a 256-word table the host wrote at `table`.
 */
__attribute__((used, noinline)) uint32_t rsp_crc32(uint32_t crc, const uint8_t *addr, uint32_t len, const uint32_t *table)
{
    crc = ~crc;
    while (len--) crc = table[(crc ^ *addr++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

/*
 * MurmurHash3 (x86, 32-bit) of `len` bytes at `addr`, with `seed`: what
 * skip-unchanged compares, word at a time (about 45 times faster than the
 * byte-table CRC-32 under QEMU, measured). Words are taken little-endian from
 * the first byte of the range; an unaligned range is read byte by byte (an
 * ARMv6-M core faults on unaligned word loads) with the same result.
 * lib/flash/hash.ts computes the same function on the host.
 */
static inline uint32_t rotl32(uint32_t x, uint32_t r)
{
    return (x << r) | (x >> (32u - r));
}

static inline uint32_t murmur_mix(uint32_t k)
{
    k *= 0xcc9e2d51u;
    k = rotl32(k, 15);
    return k * 0x1b873593u;
}

__attribute__((used, noinline)) uint32_t rsp_hash32(uint32_t seed, const uint8_t *addr, uint32_t len)
{
    uint32_t h = seed;
    uint32_t words = len >> 2;
    if (((uint32_t)addr & 3u) == 0) {
        /* Four words per iteration, pointer compare only: this loop is what an unchanged re-run waits on. */
        const uint32_t *w = (const uint32_t *)addr;
        const uint32_t *end4 = w + (words & ~3u);
        const uint32_t *end = w + words;
        while (w != end4) {
            uint32_t a = w[0], b = w[1], c = w[2], d = w[3];
            w += 4;
            h ^= murmur_mix(a); h = rotl32(h, 13); h = h * 5u + 0xe6546b64u;
            h ^= murmur_mix(b); h = rotl32(h, 13); h = h * 5u + 0xe6546b64u;
            h ^= murmur_mix(c); h = rotl32(h, 13); h = h * 5u + 0xe6546b64u;
            h ^= murmur_mix(d); h = rotl32(h, 13); h = h * 5u + 0xe6546b64u;
        }
        while (w != end) {
            h ^= murmur_mix(*w++);
            h = rotl32(h, 13);
            h = h * 5u + 0xe6546b64u;
        }
    } else {
        for (uint32_t i = 0; i < words; i++) {
            const volatile uint8_t *b = addr + 4u * i;
            uint32_t k = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
            h ^= murmur_mix(k);
            h = rotl32(h, 13);
            h = h * 5u + 0xe6546b64u;
        }
    }
    const volatile uint8_t *tail = addr + 4u * words;
    uint32_t k = 0;
    switch (len & 3u) {
    case 3: k ^= (uint32_t)tail[2] << 16; /* fall through */
    case 2: k ^= (uint32_t)tail[1] << 8;  /* fall through */
    case 1: k ^= tail[0]; h ^= murmur_mix(k);
    }
    h ^= len;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/*
 * MurmurHash3 (x86, 128-bit) of `len` bytes at `addr`, with `seed` in all four
 * lanes: what compare and verify use, so that a changed sector passes for
 * unchanged with odds of about 2^-128 instead of 2^-32 (issue 15: 32-bit
 * collisions were crafted in microseconds and, over 8192 sectors, happen by
 * chance about once in 500,000 runs). 32-bit operations only, so ARMv6-M runs
 * it as fast as its 32-bit sibling per word. Writes h1, h2, h3, h4 to `out`
 * (4-byte aligned; bytes in the order of the reference implementation's
 * output) and returns h1. Words are taken little-endian from the first byte
 * of the range; an unaligned range is read byte by byte with the same result.
 * lib/flash/hash.ts computes the same function on the host (murmur3x128).
 */
#define M128_C1 0x239b961bu
#define M128_C2 0xab0e9789u
#define M128_C3 0x38b34ae5u
#define M128_C4 0xa1e38b93u

static inline __attribute__((always_inline)) uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* One 16-byte block into the four lanes: the reference's loop body (inlined: -Os would
   otherwise call it with the lanes in memory, and the blob would hold unnamed routines). */
static inline __attribute__((always_inline)) void m128_block(uint32_t h[4], uint32_t k1, uint32_t k2, uint32_t k3, uint32_t k4)
{
    k1 *= M128_C1; k1 = rotl32(k1, 15); k1 *= M128_C2; h[0] ^= k1;
    h[0] = rotl32(h[0], 19); h[0] += h[1]; h[0] = h[0] * 5u + 0x561ccd1bu;
    k2 *= M128_C2; k2 = rotl32(k2, 16); k2 *= M128_C3; h[1] ^= k2;
    h[1] = rotl32(h[1], 17); h[1] += h[2]; h[1] = h[1] * 5u + 0x0bcaa747u;
    k3 *= M128_C3; k3 = rotl32(k3, 17); k3 *= M128_C4; h[2] ^= k3;
    h[2] = rotl32(h[2], 15); h[2] += h[3]; h[2] = h[2] * 5u + 0x96cd1c35u;
    k4 *= M128_C4; k4 = rotl32(k4, 18); k4 *= M128_C1; h[3] ^= k4;
    h[3] = rotl32(h[3], 13); h[3] += h[0]; h[3] = h[3] * 5u + 0x32ac3b17u;
}

static inline __attribute__((always_inline)) uint32_t load_le(const volatile uint8_t *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

__attribute__((used, noinline)) uint32_t rsp_hash128(uint32_t seed, const uint8_t *addr, uint32_t len, uint32_t *out)
{
    uint32_t h[4] = { seed, seed, seed, seed };
    uint32_t blocks = len >> 4;
    if (((uint32_t)addr & 3u) == 0) {
        /* Pointer compare only: this loop is what an unchanged re-run waits on. */
        const uint32_t *w = (const uint32_t *)addr;
        const uint32_t *end = w + 4u * blocks;
        while (w != end) {
            uint32_t k1 = w[0], k2 = w[1], k3 = w[2], k4 = w[3];
            w += 4;
            m128_block(h, k1, k2, k3, k4);
        }
    } else {
        /* An ARMv6-M core faults on unaligned word loads: bytes, same words. */
        for (uint32_t i = 0; i < blocks; i++) {
            const volatile uint8_t *b = addr + 16u * i;
            m128_block(h, load_le(b), load_le(b + 4), load_le(b + 8), load_le(b + 12));
        }
    }
    /*
     * Tail: up to 15 bytes into k1..k4 as one little-endian 128-bit number,
     * shifted in from the last byte down. The reference mixes only the lanes
     * the tail reaches; mixing a lane whose k is 0 changes nothing (0 * c = 0,
     * rotl 0 = 0, h ^ 0 = h), so all four are mixed.
     */
    const volatile uint8_t *tail = addr + 16u * blocks;
    uint32_t k1 = 0, k2 = 0, k3 = 0, k4 = 0;
    for (uint32_t i = len & 15u; i-- > 0;) {
        k4 = (k4 << 8) | (k3 >> 24);
        k3 = (k3 << 8) | (k2 >> 24);
        k2 = (k2 << 8) | (k1 >> 24);
        k1 = (k1 << 8) | tail[i];
    }
    h[0] ^= rotl32(k1 * M128_C1, 15) * M128_C2;
    h[1] ^= rotl32(k2 * M128_C2, 16) * M128_C3;
    h[2] ^= rotl32(k3 * M128_C3, 17) * M128_C4;
    h[3] ^= rotl32(k4 * M128_C4, 18) * M128_C1;
    h[0] ^= len; h[1] ^= len; h[2] ^= len; h[3] ^= len;
    h[0] += h[1] + h[2] + h[3];
    h[1] += h[0]; h[2] += h[0]; h[3] += h[0];
    h[0] = fmix32(h[0]); h[1] = fmix32(h[1]); h[2] = fmix32(h[2]); h[3] = fmix32(h[3]);
    h[0] += h[1] + h[2] + h[3];
    h[1] += h[0]; h[2] += h[0]; h[3] += h[0];
    out[0] = h[0]; out[1] = h[1]; out[2] = h[2]; out[3] = h[3];
    return h[0];
}

/*
 * Puts the core in a known state before running foreign code, on ARMv6-M and
 * later: interrupts masked (PRIMASK = 1), CONTROL = 0 (MSP, privileged, no FP
 * context), MPU off, and, when r0 is not 0, VTOR pointed at our own vector
 * table so that any fault lands in rsp_fault (which the runner breakpoints)
 * whatever the application's table holds, even if its table lies in the RAM
 * the runner borrowed. Debuggers cannot always write these registers (QEMU
 * ignores debugger writes to system registers), so code does it.
 * In: r0 = our vector table (0: leave VTOR alone, e.g. ARMv6-M without VTOR).
 * Out: r0 = PRIMASK, r1 = CONTROL, r2 = MPU_CTRL, r3 = previous VTOR,
 *      r4 = VTOR read back after the write (0 if not written), r5 = MSP,
 *      r6 = PSP. (One of MSP/PSP is already the runner's stack pointer: the
 *      debugger's SP write went to the active one, whose old value the runner
 *      saved with the core registers.)
 */
__attribute__((used, noinline, naked)) void rsp_core_clean(void)
{
    __asm volatile(
        "mov r12, r0\n"
        "mrs r0, primask\n"
        "mrs r1, control\n"
        "cpsid i\n"
        "movs r2, #0\n"
        "ldr r6, 1f\n"           /* MPU_TYPE: DREGION 0 means no MPU (then MPU_CTRL may not exist) */
        "ldr r3, [r6]\n"
        "lsrs r3, r3, #8\n"
        "uxtb r3, r3\n"
        "cmp r3, #0\n"
        "beq 2f\n"
        "ldr r6, 1f+4\n"
        "ldr r2, [r6]\n"
        "movs r4, #0\n"
        "str r4, [r6]\n"
        "2:\n"
        "movs r3, #0\n"
        "msr control, r3\n"
        "isb\n"
        "movs r4, #0\n"
        "mov r5, r12\n"
        "cmp r5, #0\n"
        "beq 3f\n"
        "ldr r6, 1f+8\n"
        "ldr r3, [r6]\n"
        "str r5, [r6]\n"
        "dsb\n"
        "isb\n"
        "ldr r4, [r6]\n"
        "3:\n"
        "mrs r5, msp\n"
        "mrs r6, psp\n"
        "dsb\n"
        "bx lr\n"
        ".align 2\n"
        "1: .word 0xE000ED90\n" /* MPU_TYPE, MPU_CTRL, VTOR: named in lib/cortex-m.ts */
        "   .word 0xE000ED94\n"
        "   .word 0xE000ED08\n");
}

/*
 * Undoes rsp_core_clean: r0 = PRIMASK, r1 = CONTROL, r2 = MPU_CTRL,
 * r3 = VTOR, r4 = non-zero to write VTOR back, r5 = MSP, r6 = PSP.
 * Uses no stack: writing MSP moves the stack pointer under it.
 */
__attribute__((used, noinline, naked)) void rsp_core_restore(void)
{
    __asm volatile(
        "cmp r4, #0\n"
        "beq 3f\n"
        "ldr r7, 1f+8\n"
        "str r3, [r7]\n"
        "dsb\n"
        "isb\n"
        "3:\n"
        "ldr r7, 1f\n"
        "ldr r4, [r7]\n"
        "lsrs r4, r4, #8\n"
        "uxtb r4, r4\n"
        "cmp r4, #0\n"
        "beq 2f\n"
        "ldr r7, 1f+4\n"
        "str r2, [r7]\n"
        "2:\n"
        "msr psp, r6\n"
        "msr msp, r5\n"
        "msr control, r1\n"
        "isb\n"
        "msr primask, r0\n"
        "bx lr\n"
        ".align 2\n"
        "1: .word 0xE000ED90\n" /* MPU_TYPE, MPU_CTRL, VTOR: named in lib/cortex-m.ts */
        "   .word 0xE000ED94\n"
        "   .word 0xE000ED08\n");
}

/* Reads nothing, does nothing: the runner's smallest call (round-trip measurements). */
__attribute__((used, noinline)) uint32_t rsp_nop(uint32_t x)
{
    return x;
}
