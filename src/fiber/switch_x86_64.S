/*
 * fiber/switch_x86_64.S - the machine context switch for x86-64 System V
 * (interface and contract: context.h).
 *
 * A suspended context is the 16-byte aligned stack pointer of this frame,
 * which weft__ctx_switch() pushes on the suspended stack and pops from the
 * resumed one:
 *
 *        +64  (caller's frame)
 *        +56  return address            <- resumed with pop %r8; jmp *%r8
 *        +48  rbp
 *        +40  rbx
 *        +32  r12
 *        +24  r13
 *        +16  r14
 *         +8  r15
 *         +4  x87 control word (2 bytes; 2 bytes unused)
 *   sp -> +0  MXCSR (4 bytes)
 *
 * What is saved, and why (research/fibers.md section 1.4):
 *  - rbx, rbp, r12-r15 and rsp are the registers the System V psABI
 *    (section 3.2.1, figure 3.4) makes callee-saved; rip rides on the stack
 *    as the return address. Everything else is caller-saved, so the C
 *    caller of weft__ctx_switch() already assumes it is lost.
 *  - The psABI also makes the control bits of MXCSR (DAZ, the exception
 *    masks, the rounding mode, FZ: bits 6-15) and the x87 control word
 *    callee-saved, so a context that changes its rounding mode keeps it to
 *    itself across a switch. The MXCSR status flags (bits 0-5, the sticky
 *    exception flags) are caller-saved and are not switched: they stay
 *    with the thread.
 *  - MXCSR is loaded (ldmxcsr) only when the control bits of the two
 *    contexts differ. An ldmxcsr that changes the register's value is
 *    slow: about 35 ns a switch in bench_switch on this VM (Xeon, family 6
 *    model 207), against 3-4 ns for the whole switch otherwise. Restoring
 *    the whole saved value paid that on almost every switch, because the
 *    status flags of two contexts nearly always differ (any inexact
 *    division sets PE). fldcw of an unchanged value costs nothing
 *    measurable, and the x87 control word holds no status bits, so it is
 *    always loaded.
 *  - A fresh context starts with the MXCSR and x87 control word of the
 *    thread that called weft__ctx_init(), as a new thread inherits those of
 *    its creator.
 *
 * Returning through pop + jmp instead of ret: the return lands on another
 * stack than the call came from, so ret would always mispredict from the
 * return-stack buffer; it measured about 4x slower (fibers.md 1.2).
 *
 * Entry of a fresh context: the first switch pops the frame that
 * weft__ctx_init() wrote and jumps to the trampoline with the entry
 * function in rbx and the xfer value in rdi (every switch puts it in rdi
 * as well as rax). The trampoline's rsp is then 16-byte aligned, so the
 * entry, reached through call, sees (rsp + 8) % 16 == 0 as the psABI
 * (section 3.2.2) requires at function entry. The trampoline's CFI says
 * that rip is undefined, which ends unwinding there: gdb's backtrace,
 * backtrace() and _Unwind_Backtrace stop cleanly at weft__ctx_trampoline.
 * An entry that returns runs into ud2 (SIGILL).
 *
 * Hardening: no .note.gnu.property is emitted, so a link that includes
 * this object is marked neither IBT nor SHSTK compatible, and must not be:
 * a CET shadow stack would not follow these stack switches (fibers.md
 * 1.4), and the pop + jmp return lands on a call's return address, which
 * is no endbr64 landing pad. endbr64 is placed at the entry points when
 * the compiler is asked for IBT (-fcf-protection), as compiled code has.
 *
 * Threads: none of this touches thread state; a context may be resumed on
 * another thread than the one that saved it.
 */

/* MXCSR bits 6-15: DAZ, the six exception masks, RC, FZ. */
#define MXCSR_CONTROL 0xffc0

#if defined(__CET__) && (__CET__ & 1)
#define ENDBR endbr64
#else
#define ENDBR
#endif

	.text

/*
 * void *weft__ctx_init(void *stack_hi, weft__ctx_entry entry)
 *   rdi = stack_hi, rsi = entry; returns the context in rax.
 * Writes the 64-byte frame above just below stack_hi rounded down to 16.
 */
	.globl	weft__ctx_init
	.hidden	weft__ctx_init
	.type	weft__ctx_init, @function
	.p2align 4
weft__ctx_init:
	.cfi_startproc
	ENDBR
	movq	%rdi, %rax
	andq	$-16, %rax
	subq	$64, %rax
	leaq	weft__ctx_trampoline(%rip), %rcx
	movq	%rcx, 56(%rax)		/* return address: the trampoline */
	movq	$0, 48(%rax)		/* rbp: ends frame-pointer chains */
	movq	%rsi, 40(%rax)		/* rbx: the entry function */
	movq	$0, 32(%rax)		/* r12 */
	movq	$0, 24(%rax)		/* r13 */
	movq	$0, 16(%rax)		/* r14 */
	movq	$0, 8(%rax)		/* r15 */
	stmxcsr	(%rax)			/* the caller's FP control */
	fnstcw	4(%rax)
	movw	$0, 6(%rax)
	ret
	.cfi_endproc
	.size	weft__ctx_init, .-weft__ctx_init

/*
 * void *weft__ctx_switch(void **save, void *to, void *xfer)
 *   rdi = save, rsi = to, rdx = xfer.
 * The CFI below stays true after rsp moves to the other stack: both stacks
 * hold the same frame layout at that point.
 */
	.globl	weft__ctx_switch
	.hidden	weft__ctx_switch
	.type	weft__ctx_switch, @function
	.p2align 4
weft__ctx_switch:
	.cfi_startproc
	ENDBR
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r15, 0
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)

	movq	%rsp, (%rdi)		/* suspend: publish our frame */
	movl	(%rsp), %eax		/* our MXCSR */
	movq	%rsi, %rsp		/* resume: the other context's frame */
	.cfi_remember_state

	xorl	(%rsp), %eax		/* load MXCSR only if the control */
	testl	$MXCSR_CONTROL, %eax	/* bits differ (see the top) */
	jnz	.Lload_mxcsr
.Lmxcsr_done:
	fldcw	4(%rsp)
	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbx
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbp
	popq	%r8
	.cfi_adjust_cfa_offset -8
	.cfi_register rip, r8
	movq	%rdx, %rax		/* the resumed switch returns xfer */
	movq	%rdx, %rdi		/* a fresh context's entry gets it */
	jmp	*%r8

	/* Out of line: the resumed context runs another rounding mode (or
	 * other masks, DAZ, FZ). Its saved status flags come along, which is
	 * as good as any value for caller-saved bits. */
.Lload_mxcsr:
	.cfi_restore_state
	ldmxcsr	(%rsp)
	jmp	.Lmxcsr_done
	.cfi_endproc
	.size	weft__ctx_switch, .-weft__ctx_switch

/*
 * The first instruction a fresh context runs: rbx = entry, rdi = xfer,
 * rsp 16-byte aligned. Never called, only jumped to; local to this file.
 * The nop before it is inside its CFI: during the first switch to the
 * context the trampoline's address is a return address on the stack, and
 * unwinders look up the instruction before a return address, which would
 * otherwise fall outside any CFI and let gdb walk into garbage.
 */
	.p2align 4
	.cfi_startproc
	.cfi_undefined rip
	nop
	.type	weft__ctx_trampoline, @function
weft__ctx_trampoline:
	ENDBR
	call	*%rbx
	ud2				/* the entry returned: contract broken */
	.cfi_endproc
	.size	weft__ctx_trampoline, .-weft__ctx_trampoline

	.section .note.GNU-stack, "", @progbits
