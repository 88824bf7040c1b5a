/*
 * ARMv8-M Mainline extras of the rspflash helpers (Cortex-M33/M55/M85): stack
 * limit registers. A stack limit left by the application would fault the
 * algorithm's stack, which lives wherever the runner puts it.
 * Returns r0 = MSPLIM, r1 = PSPLIM (previous values), sets both to 0.
 */
__attribute__((used, noinline, naked)) void rsp_splim_clear(void)
{
    __asm volatile(
        "mrs r0, msplim\n"
        "mrs r1, psplim\n"
        "movs r2, #0\n"
        "msr msplim, r2\n"
        "msr psplim, r2\n"
        "bx lr\n");
}

/* Restores r0 = MSPLIM, r1 = PSPLIM. */
__attribute__((used, noinline, naked)) void rsp_splim_restore(void)
{
    __asm volatile(
        "msr msplim, r0\n"
        "msr psplim, r1\n"
        "bx lr\n");
}
