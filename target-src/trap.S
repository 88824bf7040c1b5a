/*
 * The return trap: algorithm routines return here (LR = trap | 1). The runner
 * puts a Z breakpoint on it (QEMU does not report BKPT to GDB); the BKPT is the
 * backstop that halts real hardware if the breakpoint was lost, and the branch
 * keeps a core that ignored the BKPT from running into whatever follows.
 */
    .syntax unified
    .thumb
    .section .text.rsp_trap, "ax"
    .global rsp_trap
    .type rsp_trap, %function
rsp_trap:
    bkpt #0xAB
    b rsp_trap
    .align 2
