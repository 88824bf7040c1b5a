/*
 * rsp_call: one algorithm call with the stack canary checked, in the same run
 * (no extra round trip). The debugger sets r0-r3 = arguments, r4 = entry | 1,
 * r5 = address of the canary word, r9 = static base, SP, LR = return trap | 1,
 * PC = rsp_call. r4/r5 are callee-saved (AAPCS), so they survive the call of a
 * well-behaved routine. Returns (to the trap) with r0 = the routine's result
 * and r1 = 0 (canary intact) or 2 (overwritten: STATUS_STACK of the sequencer).
 *
 * The return trap itself (BKPT #0; b .) is not here: the runner writes it on a
 * page of its own beside its vector table (lib/algo/layout.ts). QEMU translates
 * code one instruction at a time on any page that holds a breakpoint, so a
 * trap next to this code made every helper and the algorithm run 5-10 times
 * slower (measured).
 */
    .syntax unified
    .thumb
    .section .text.rsp_call, "ax"

    .global rsp_call
    .type rsp_call, %function
rsp_call:
    push {r7, lr}
    blx r4
    ldr r2, [r5]
    ldr r3, .Lcanary
    movs r1, #0
    cmp r2, r3
    beq 1f
    movs r1, #2
1:  pop {r7, pc}
    .align 2
.Lcanary:
    .word 0xC0DEC0DE
    .size rsp_call, . - rsp_call
