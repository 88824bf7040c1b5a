/*
 * The return trap and the single-call shim.
 *
 * rsp_trap: algorithm routines and our helpers return here. The runner puts a
 * Z breakpoint on it (QEMU does not report BKPT to GDB); the BKPT is the
 * backstop that halts real hardware if the breakpoint was lost, and the branch
 * keeps a core that ignored the BKPT from running into whatever follows.
 * BKPT #0, not #0xAB: 0xAB is the semihosting call, which a debugger with
 * semihosting enabled would serve (taking r0 as an operation) and resume.
 *
 * rsp_call: one algorithm call with the stack canary checked, in the same run
 * (no extra round trip). The debugger sets r0-r3 = arguments, r4 = entry | 1,
 * r5 = address of the canary word, r9 = static base, SP, PC = rsp_call.
 * r4/r5 are callee-saved (AAPCS), so they survive the call of a well-behaved
 * routine. Returns to the trap with r0 = the routine's result and
 * r1 = 0 (canary intact) or 2 (overwritten: STATUS_STACK of the sequencer).
 */
    .syntax unified
    .thumb
    .section .text.rsp_trap, "ax"

    .global rsp_trap
    .type rsp_trap, %function
rsp_trap:
    bkpt #0
    b rsp_trap
    .size rsp_trap, . - rsp_trap

    .global rsp_call
    .type rsp_call, %function
rsp_call:
    blx r4
    ldr r2, [r5]
    ldr r3, .Lcanary
    movs r1, #0
    cmp r2, r3
    beq 1f
    movs r1, #2
1:  b rsp_trap
    .align 2
.Lcanary:
    .word 0xC0DEC0DE
    .size rsp_call, . - rsp_call

