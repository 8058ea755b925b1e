/*
 * fiber/switch_aarch64.S - the machine context switch for AArch64 (AAPCS64
 * on Linux; interface and contract: context.h).
 *
 * A suspended context is the stack pointer of this 160-byte frame, which
 * weft__ctx_switch() stores on the suspended stack and loads from the
 * resumed one:
 *
 *       +160  (caller's frame)
 *       +144  d14, d15
 *       +128  d12, d13
 *       +112  d10, d11
 *        +96  d8,  d9
 *        +80  x29 (frame pointer), x30 (link register: where to resume)
 *        +64  x27, x28
 *        +48  x25, x26
 *        +32  x23, x24
 *        +16  x21, x22
 *   sp ->  +0  x19, x20
 *
 * What is saved, and why (research/fibers.md section 1.4): AAPCS64
 * ("General-purpose registers") makes x19-x29 and sp callee-saved, and
 * ("SIMD and floating-point registers") the low 64 bits of v8-v15, that is
 * d8-d15; x30 holds the return address. Everything else is caller-saved.
 * FPCR (the rounding mode) is not switched: a context that changes it must
 * restore it before it switches away (the x86-64 twin does switch MXCSR
 * and the x87 control word).
 *
 * sp stays 16-byte aligned everywhere (AAPCS64 "Universal stack
 * constraints"; Linux enables the hardware's sp alignment check); the
 * frame is a multiple of 16.
 *
 * Returning through br x30 instead of ret: the return lands on another
 * stack than the call came from, and ret would feed the return-address
 * predictor a wrong guess on every switch (fibers.md 1.2 measured this on
 * x86-64).
 *
 * Entry of a fresh context: the first switch loads the frame that
 * weft__ctx_init() wrote and branches to the trampoline, with the entry
 * function in x19 and the xfer value in x0 (the argument register is also
 * the return register). The trampoline calls the entry with blr; its CFI
 * says that x30 is undefined, which ends unwinding there (gdb,
 * _Unwind_Backtrace). An entry that returns runs into brk (SIGTRAP).
 *
 * Hardening: no .note.gnu.property is emitted, so a link that includes
 * this object is not marked BTI compatible (the kernel then leaves BTI off
 * for it), which the br x30 above relies on: a return address is not a
 * BTI landing pad. Pointer authentication does not matter here: x30 is
 * saved and restored as it is, never signed or authenticated.
 *
 * Threads: none of this touches thread state (tpidr_el0 stays the
 * thread's); a context may be resumed on another thread than the one that
 * saved it.
 */

	.text

/*
 * void *weft__ctx_init(void *stack_hi, weft__ctx_entry entry)
 *   x0 = stack_hi, x1 = entry; returns the context in x0.
 * Writes the 160-byte frame above just below stack_hi rounded down to 16.
 */
	.globl	weft__ctx_init
	.hidden	weft__ctx_init
	.type	weft__ctx_init, %function
	.p2align 4
weft__ctx_init:
	.cfi_startproc
	and	x0, x0, #~15
	sub	x0, x0, #160
	stp	x1, xzr, [x0, #0]	/* x19 = entry, x20 */
	stp	xzr, xzr, [x0, #16]
	stp	xzr, xzr, [x0, #32]
	stp	xzr, xzr, [x0, #48]
	stp	xzr, xzr, [x0, #64]
	adr	x2, weft__ctx_trampoline
	stp	xzr, x2, [x0, #80]	/* x29 = 0 ends frame chains; x30 */
	stp	xzr, xzr, [x0, #96]
	stp	xzr, xzr, [x0, #112]
	stp	xzr, xzr, [x0, #128]
	stp	xzr, xzr, [x0, #144]
	ret
	.cfi_endproc
	.size	weft__ctx_init, .-weft__ctx_init

/*
 * void *weft__ctx_switch(void **save, void *to, void *xfer)
 *   x0 = save, x1 = to, x2 = xfer.
 * The CFI below stays true after sp moves to the other stack: both stacks
 * hold the same frame layout at that point.
 */
	.globl	weft__ctx_switch
	.hidden	weft__ctx_switch
	.type	weft__ctx_switch, %function
	.p2align 4
weft__ctx_switch:
	.cfi_startproc
	sub	sp, sp, #160
	.cfi_def_cfa_offset 160
	stp	x19, x20, [sp, #0]
	.cfi_rel_offset x19, 0
	.cfi_rel_offset x20, 8
	stp	x21, x22, [sp, #16]
	.cfi_rel_offset x21, 16
	.cfi_rel_offset x22, 24
	stp	x23, x24, [sp, #32]
	.cfi_rel_offset x23, 32
	.cfi_rel_offset x24, 40
	stp	x25, x26, [sp, #48]
	.cfi_rel_offset x25, 48
	.cfi_rel_offset x26, 56
	stp	x27, x28, [sp, #64]
	.cfi_rel_offset x27, 64
	.cfi_rel_offset x28, 72
	stp	x29, x30, [sp, #80]
	.cfi_rel_offset x29, 80
	.cfi_rel_offset x30, 88
	stp	d8, d9, [sp, #96]
	.cfi_rel_offset d8, 96
	.cfi_rel_offset d9, 104
	stp	d10, d11, [sp, #112]
	.cfi_rel_offset d10, 112
	.cfi_rel_offset d11, 120
	stp	d12, d13, [sp, #128]
	.cfi_rel_offset d12, 128
	.cfi_rel_offset d13, 136
	stp	d14, d15, [sp, #144]
	.cfi_rel_offset d14, 144
	.cfi_rel_offset d15, 152

	mov	x3, sp
	str	x3, [x0]		/* suspend: publish our frame */
	mov	sp, x1			/* resume: the other context's frame */

	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #160
	.cfi_def_cfa_offset 0
	.cfi_restore x19
	.cfi_restore x20
	.cfi_restore x21
	.cfi_restore x22
	.cfi_restore x23
	.cfi_restore x24
	.cfi_restore x25
	.cfi_restore x26
	.cfi_restore x27
	.cfi_restore x28
	.cfi_restore x29
	.cfi_restore x30
	.cfi_restore d8
	.cfi_restore d9
	.cfi_restore d10
	.cfi_restore d11
	.cfi_restore d12
	.cfi_restore d13
	.cfi_restore d14
	.cfi_restore d15
	mov	x0, x2			/* return value and entry argument */
	br	x30
	.cfi_endproc
	.size	weft__ctx_switch, .-weft__ctx_switch

/*
 * The first instruction a fresh context runs: x19 = entry, x0 = xfer,
 * sp 16-byte aligned. Never called, only branched to; local to this file.
 * The nop before it is inside its CFI: during the first switch to the
 * context the trampoline's address is a return address (in the saved
 * x30), and unwinders look up the instruction before a return address,
 * which would otherwise fall outside any CFI.
 */
	.p2align 4
	.cfi_startproc
	.cfi_undefined x30
	nop
	.type	weft__ctx_trampoline, %function
weft__ctx_trampoline:
	blr	x19
	brk	#0			/* the entry returned: contract broken */
	.cfi_endproc
	.size	weft__ctx_trampoline, .-weft__ctx_trampoline

	.section .note.GNU-stack, "", %progbits
