/*
 * ctx_checks.h - the checks of the machine context switch (src/fiber/
 * context.h), shared by the Criterion test (tests/unit/test_context.c) and
 * the plain program that runs under qemu-user (tests/fiber/ctx_selftest.c).
 * Include it from exactly one file of a program: it defines static
 * functions and, on x86-64 and AArch64, one assembly helper.
 *
 * Every check returns CK_PASS, CK_FAIL or CK_SKIP and leaves a sentence in
 * ck_msg saying what went wrong or why it was skipped. Checks never fail
 * from inside a context running on a test stack: the contexts record what
 * they saw and the check judges it on the thread's own stack (a Criterion
 * assertion unwinds with longjmp, which would leave a context stack
 * behind).
 *
 * Test stacks come from malloc (not src/fiber/stack.c, which has its own
 * tests) and are registered with Valgrind, which otherwise warns "client
 * switching stacks?" at a switch and may then report errors that are not
 * there.
 */
#ifndef WEFT_TEST_CTX_CHECKS_H
#define WEFT_TEST_CTX_CHECKS_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fiber/context.h"
#include "weft_config.h"

#if WEFT_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_STACK_REGISTER(lo, hi) ((void)(lo), (void)(hi), 0u)
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

enum { CK_PASS = 0, CK_FAIL = 1, CK_SKIP = 77 };

/* The signal that ends a context whose entry returned: ud2 on x86-64
 * (the assembly trampoline, and __builtin_trap() in the ucontext one), brk
 * on AArch64 (both backends). Elsewhere only the ucontext backend exists,
 * and __builtin_trap() may be abort(). */
#if defined(__x86_64__) || defined(__i386__)
#define CK_TRAP_SIGNAL SIGILL
#elif defined(__aarch64__)
#define CK_TRAP_SIGNAL SIGTRAP
#else
#define CK_TRAP_SIGNAL SIGILL
#endif

/* What context.h promises weft__ctx_init() writes below stack_hi. */
#if WEFT_CONTEXT_UCONTEXT
#define CK_INIT_MAX 8192
#else
#define CK_INIT_MAX 512
#endif

#define CK_STACK_SIZE (256 * 1024)

static char ck_msg[512];

__attribute__((format(printf, 1, 2))) static int ck_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ck_msg, sizeof(ck_msg), fmt, ap);
	va_end(ap);
	return CK_FAIL;
}

static int ck_skip(const char *why)
{
	snprintf(ck_msg, sizeof(ck_msg), "%s", why);
	return CK_SKIP;
}

/* ------------------------------------------------------------ stacks -- */

struct ck_stack {
	char *lo;
	size_t size;
	unsigned vg_id;
};

/* Returns false when malloc fails. */
static bool ck_stack_alloc(struct ck_stack *s, size_t size)
{
	s->lo = malloc(size);
	s->size = size;
	if (!s->lo)
		return false;
	/* Lowest and highest addressable byte (valgrind.h). */
	s->vg_id = VALGRIND_STACK_REGISTER(s->lo, s->lo + size - 1);
	return true;
}

static void ck_stack_free(struct ck_stack *s)
{
	if (!s->lo)
		return;
	VALGRIND_STACK_DEREGISTER(s->vg_id);
	free(s->lo);
	s->lo = NULL;
}

static void *ck_stack_hi(const struct ck_stack *s)
{
	return s->lo + s->size;
}

/* --------------------------------------------------------- ping-pong -- */

#define PP_ROUNDS 1000

struct pp {
	void *main_ctx, *fiber_ctx;
	void *first;          /* the entry's argument */
	unsigned bad;         /* xfer values the fiber did not expect */
	unsigned seen;
};

static struct pp pp;

static void pp_entry(void *xfer)
{
	pp.first = xfer;
	for (uintptr_t i = 0;; i++) {
		/* The main side sends 2i+1, the fiber answers 2i+2. */
		if ((uintptr_t)xfer != 2 * i + 1)
			pp.bad++;
		pp.seen++;
		xfer = weft__ctx_switch(&pp.fiber_ctx, pp.main_ctx,
					(void *)(2 * i + 2));
	}
}

/* Values travel both ways, the entry gets the first switch's value. */
static int ck_ping_pong(void)
{
	struct ck_stack st;
	int rc = CK_PASS;

	memset(&pp, 0, sizeof(pp));
	if (!ck_stack_alloc(&st, CK_STACK_SIZE))
		return ck_fail("malloc of a stack failed");
	pp.fiber_ctx = weft__ctx_init(ck_stack_hi(&st), pp_entry);
	for (uintptr_t i = 0; i < PP_ROUNDS; i++) {
		void *back = weft__ctx_switch(&pp.main_ctx, pp.fiber_ctx,
					      (void *)(2 * i + 1));

		if ((uintptr_t)back != 2 * i + 2) {
			rc = ck_fail("round %lu: main got %p back, expected %lu",
				     (unsigned long)i, back,
				     (unsigned long)(2 * i + 2));
			break;
		}
	}
	if (rc == CK_PASS && pp.first != (void *)1)
		rc = ck_fail("the entry got %p, expected the first switch's 0x1",
			     pp.first);
	if (rc == CK_PASS && (pp.bad || pp.seen != PP_ROUNDS))
		rc = ck_fail("the fiber saw %u unexpected values in %u switches",
			     pp.bad, pp.seen);
	ck_stack_free(&st);
	return rc;
}

/* ----------------------------------------------- init's footprint -- */

/* weft__ctx_init() writes nothing at or above stack_hi, at most
 * CK_INIT_MAX bytes below it, and the context it returns lies in that
 * range. */
static int ck_init_footprint(void)
{
	enum { ABOVE = 64, SIZE = 3 * CK_INIT_MAX };
	unsigned char *buf = malloc(SIZE + ABOVE);
	int rc = CK_PASS;

	if (!buf)
		return ck_fail("malloc failed");
	for (unsigned off = 0; off < 16 && rc == CK_PASS; off++) {
		unsigned char *hi = buf + SIZE - off;
		size_t lowest = SIZE + ABOVE;
		void *ctx;

		memset(buf, 0xa5, SIZE + ABOVE);
		ctx = weft__ctx_init(hi, pp_entry);
		for (size_t i = 0; i < SIZE + ABOVE; i++) {
			if (buf[i] != 0xa5) {
				lowest = i;
				break;
			}
		}
		for (unsigned char *p = hi; p < buf + SIZE + ABOVE; p++) {
			if (*p != 0xa5) {
				rc = ck_fail("stack_hi %% 16 == %u: byte at stack_hi+%td written",
					     (unsigned)((uintptr_t)hi % 16), p - hi);
				break;
			}
		}
		if (rc == CK_PASS && lowest < (size_t)(hi - buf) - CK_INIT_MAX)
			rc = ck_fail("wrote %td bytes below stack_hi, more than %d",
				     (hi - buf) - (ptrdiff_t)lowest, CK_INIT_MAX);
		if (rc == CK_PASS && ((unsigned char *)ctx < hi - CK_INIT_MAX ||
				      (unsigned char *)ctx >= hi))
			rc = ck_fail("context %p outside [stack_hi - %d, stack_hi)",
				     ctx, CK_INIT_MAX);
	}
	free(buf);
	return rc;
}

/* --------------------------------------------- callee-saved registers -- */

/*
 * ck_probe_switch(save, to, xfer, regs) loads every callee-saved register
 * from regs[] (x86-64: rbx rbp r12 r13 r14 r15; AArch64: x19-x29 then
 * d8-d15), calls weft__ctx_switch(save, to, xfer), stores the registers
 * back into regs[] once it returns, restores its caller's registers and
 * returns what the switch returned. Two contexts that switch to each other
 * through it with different values each find their own values back unless
 * the switch loses a register.
 */
#if defined(__x86_64__)
#define CK_PROBE_REGS 6
#define CK_PROBE_NAMES { "rbx", "rbp", "r12", "r13", "r14", "r15" }
__asm__(
	"	.text\n"
	"	.globl	ck_probe_switch\n"
	"	.hidden	ck_probe_switch\n"
	"	.type	ck_probe_switch, @function\n"
	"	.p2align 4\n"
	"ck_probe_switch:\n"
	"	pushq	%rbp\n"
	"	pushq	%rbx\n"
	"	pushq	%r12\n"
	"	pushq	%r13\n"
	"	pushq	%r14\n"
	"	pushq	%r15\n"
	"	pushq	%rcx\n" /* regs; rsp is 16-byte aligned again */
	"	movq	0(%rcx), %rbx\n"
	"	movq	8(%rcx), %rbp\n"
	"	movq	16(%rcx), %r12\n"
	"	movq	24(%rcx), %r13\n"
	"	movq	32(%rcx), %r14\n"
	"	movq	40(%rcx), %r15\n"
	"	call	weft__ctx_switch@PLT\n"
	"	popq	%rcx\n"
	"	movq	%rbx, 0(%rcx)\n"
	"	movq	%rbp, 8(%rcx)\n"
	"	movq	%r12, 16(%rcx)\n"
	"	movq	%r13, 24(%rcx)\n"
	"	movq	%r14, 32(%rcx)\n"
	"	movq	%r15, 40(%rcx)\n"
	"	popq	%r15\n"
	"	popq	%r14\n"
	"	popq	%r13\n"
	"	popq	%r12\n"
	"	popq	%rbx\n"
	"	popq	%rbp\n"
	"	ret\n"
	"	.size	ck_probe_switch, .-ck_probe_switch\n");
#elif defined(__aarch64__)
#define CK_PROBE_REGS 19
#define CK_PROBE_NAMES { "x19", "x20", "x21", "x22", "x23", "x24", "x25", \
			 "x26", "x27", "x28", "x29", "d8", "d9", "d10",   \
			 "d11", "d12", "d13", "d14", "d15" }
__asm__(
	"	.text\n"
	"	.globl	ck_probe_switch\n"
	"	.hidden	ck_probe_switch\n"
	"	.type	ck_probe_switch, %function\n"
	"	.p2align 4\n"
	"ck_probe_switch:\n"
	"	stp	x29, x30, [sp, #-176]!\n"
	"	stp	x19, x20, [sp, #16]\n"
	"	stp	x21, x22, [sp, #32]\n"
	"	stp	x23, x24, [sp, #48]\n"
	"	stp	x25, x26, [sp, #64]\n"
	"	stp	x27, x28, [sp, #80]\n"
	"	stp	d8, d9, [sp, #96]\n"
	"	stp	d10, d11, [sp, #112]\n"
	"	stp	d12, d13, [sp, #128]\n"
	"	stp	d14, d15, [sp, #144]\n"
	"	str	x3, [sp, #160]\n"
	"	ldp	x19, x20, [x3, #0]\n"
	"	ldp	x21, x22, [x3, #16]\n"
	"	ldp	x23, x24, [x3, #32]\n"
	"	ldp	x25, x26, [x3, #48]\n"
	"	ldp	x27, x28, [x3, #64]\n"
	"	ldr	x29, [x3, #80]\n"
	"	ldp	d8, d9, [x3, #88]\n"
	"	ldp	d10, d11, [x3, #104]\n"
	"	ldp	d12, d13, [x3, #120]\n"
	"	ldp	d14, d15, [x3, #136]\n"
	"	bl	weft__ctx_switch\n"
	"	ldr	x3, [sp, #160]\n"
	"	stp	x19, x20, [x3, #0]\n"
	"	stp	x21, x22, [x3, #16]\n"
	"	stp	x23, x24, [x3, #32]\n"
	"	stp	x25, x26, [x3, #48]\n"
	"	stp	x27, x28, [x3, #64]\n"
	"	str	x29, [x3, #80]\n"
	"	stp	d8, d9, [x3, #88]\n"
	"	stp	d10, d11, [x3, #104]\n"
	"	stp	d12, d13, [x3, #120]\n"
	"	stp	d14, d15, [x3, #136]\n"
	"	ldp	x19, x20, [sp, #16]\n"
	"	ldp	x21, x22, [sp, #32]\n"
	"	ldp	x23, x24, [sp, #48]\n"
	"	ldp	x25, x26, [sp, #64]\n"
	"	ldp	x27, x28, [sp, #80]\n"
	"	ldp	d8, d9, [sp, #96]\n"
	"	ldp	d10, d11, [sp, #112]\n"
	"	ldp	d12, d13, [sp, #128]\n"
	"	ldp	d14, d15, [sp, #144]\n"
	"	ldp	x29, x30, [sp], #176\n"
	"	ret\n"
	"	.size	ck_probe_switch, .-ck_probe_switch\n");
#endif

#ifdef CK_PROBE_REGS
void *ck_probe_switch(void **save, void *to, void *xfer, uint64_t *regs);

#define PROBE_ROUNDS 100

struct probe {
	void *main_ctx, *fiber_ctx;
	unsigned bad_reg;       /* index + 1 of the first register lost */
	unsigned long bad_round;
};

static struct probe probe;

static uint64_t probe_value(unsigned who, unsigned reg, unsigned long round)
{
	return 0x5157000000000000ull ^ ((uint64_t)who << 40) ^
	       ((uint64_t)reg << 32) ^ round;
}

static void probe_entry(void *xfer)
{
	uint64_t regs[CK_PROBE_REGS];

	(void)xfer;
	for (unsigned long r = 0;; r++) {
		for (unsigned i = 0; i < CK_PROBE_REGS; i++)
			regs[i] = probe_value(2, i, r);
		ck_probe_switch(&probe.fiber_ctx, probe.main_ctx, NULL, regs);
		for (unsigned i = 0; i < CK_PROBE_REGS; i++) {
			if (regs[i] != probe_value(2, i, r) && !probe.bad_reg) {
				probe.bad_reg = i + 1;
				probe.bad_round = r;
			}
		}
	}
}
#endif

/* Every callee-saved register survives a round trip, on both sides. */
static int ck_registers(void)
{
#ifdef CK_PROBE_REGS
	static const char *const names[] = CK_PROBE_NAMES;
	uint64_t regs[CK_PROBE_REGS];
	struct ck_stack st;
	int rc = CK_PASS;

	memset(&probe, 0, sizeof(probe));
	if (!ck_stack_alloc(&st, CK_STACK_SIZE))
		return ck_fail("malloc of a stack failed");
	probe.fiber_ctx = weft__ctx_init(ck_stack_hi(&st), probe_entry);
	for (unsigned long r = 0; r < PROBE_ROUNDS && rc == CK_PASS; r++) {
		for (unsigned i = 0; i < CK_PROBE_REGS; i++)
			regs[i] = probe_value(1, i, r);
		ck_probe_switch(&probe.main_ctx, probe.fiber_ctx, NULL, regs);
		for (unsigned i = 0; i < CK_PROBE_REGS; i++) {
			if (regs[i] != probe_value(1, i, r)) {
				rc = ck_fail("main context: %s lost in round %lu (0x%llx, expected 0x%llx)",
					     names[i], r, (unsigned long long)regs[i],
					     (unsigned long long)probe_value(1, i, r));
				break;
			}
		}
		if (rc == CK_PASS && probe.bad_reg)
			rc = ck_fail("fiber context: %s lost in round %lu",
				     names[probe.bad_reg - 1], probe.bad_round);
	}
	ck_stack_free(&st);
	return rc;
#else
	return ck_skip("no register probe for this CPU (x86-64 and AArch64 only)");
#endif
}

/* ------------------------------------------------ live values at -On -- */

#define LIVE_ROUNDS 200

static volatile uint64_t live_seed_main = 0x0123456789abcdefull;
static volatile uint64_t live_seed_fiber = 0xfedcba9876543210ull;

struct live {
	void *main_ctx, *fiber_ctx;
	unsigned bad;
};

static struct live live;

/* Fourteen values that the compiler keeps in registers (callee-saved ones
 * first, since they live across a call) or spills to the stack, then
 * compares with values recomputed from a volatile seed after the switch. */
#define LIVE_DECLARE(s)                                                     \
	uint64_t v0 = (s) * 3, v1 = (s) ^ 0x1111, v2 = (s) + 7,             \
		 v3 = (s) * 5 + 1, v4 = (s) >> 3, v5 = (s) << 2,           \
		 v6 = ~(s), v7 = (s) * 11, v8 = (s) ^ 0x7777,              \
		 v9 = (s) + 0x1234567, v10 = (s) * 13 + 5, v11 = (s) >> 7, \
		 v12 = (s) ^ ((s) >> 11), v13 = (s) * 17
#define LIVE_MISMATCH(s)                                                    \
	((v0 != (s) * 3) + (v1 != ((s) ^ 0x1111)) + (v2 != (s) + 7) +      \
	 (v3 != (s) * 5 + 1) + (v4 != (s) >> 3) + (v5 != (s) << 2) +       \
	 (v6 != ~(s)) + (v7 != (s) * 11) + (v8 != ((s) ^ 0x7777)) +        \
	 (v9 != (s) + 0x1234567) + (v10 != (s) * 13 + 5) +                 \
	 (v11 != (s) >> 7) + (v12 != ((s) ^ ((s) >> 11))) +                \
	 (v13 != (s) * 17))

static void live_entry(void *xfer)
{
	uint64_t s = live_seed_fiber;
	LIVE_DECLARE(s);

	for (;;) {
		xfer = weft__ctx_switch(&live.fiber_ctx, live.main_ctx, xfer);
		s = live_seed_fiber;
		live.bad += (unsigned)LIVE_MISMATCH(s);
	}
}

/* Values the compiler keeps live across a switch survive, on both sides
 * (the portable twin of ck_registers(); meaningful with optimisation). */
static int ck_live_values(void)
{
	struct ck_stack st;
	uint64_t s = live_seed_main;
	unsigned bad = 0;
	LIVE_DECLARE(s);

	memset(&live, 0, sizeof(live));
	if (!ck_stack_alloc(&st, CK_STACK_SIZE))
		return ck_fail("malloc of a stack failed");
	live.fiber_ctx = weft__ctx_init(ck_stack_hi(&st), live_entry);
	for (unsigned r = 0; r < LIVE_ROUNDS; r++) {
		weft__ctx_switch(&live.main_ctx, live.fiber_ctx, NULL);
		s = live_seed_main;
		bad += (unsigned)LIVE_MISMATCH(s);
	}
	ck_stack_free(&st);
	if (bad || live.bad)
		return ck_fail("%u values lost in the main context, %u in the fiber",
			       bad, live.bad);
	return CK_PASS;
}

/* --------------------------------------------------- stack alignment -- */

typedef double ck_v2d __attribute__((vector_size(16)));

struct align_rec {
	void *main_ctx, *fiber_ctx;
	unsigned misaligned;     /* levels whose 16-aligned local was not */
	unsigned frames_bad;     /* levels with a misaligned stack pointer */
	unsigned levels;
	double sum;
};

static struct align_rec align_rec;
static volatile double align_in = 1.25;

static void align_opaque(void)
{
	__asm__ volatile("" ::: "memory");
}

/* Called through a volatile pointer: the compiler must assume that every
 * call-clobbered register (all of xmm0-15 on x86-64) dies in the call, so
 * a vector live across it is spilled to an aligned stack slot (movaps /
 * movdqa on x86-64, which faults on a misaligned address). */
static void (*volatile align_opaque_fn)(void) = align_opaque;

__attribute__((noinline)) static void align_level(unsigned depth)
{
	_Alignas(16) volatile unsigned char local[16];
	ck_v2d v = { align_in, align_in * 2 };
	uintptr_t addr = (uintptr_t)local;

	local[0] = 1;
	align_rec.levels++;
	/* Laundered: the compiler takes the _Alignas for granted and would
	 * fold addr % 16 to 0 (it addresses the local relative to a stack
	 * pointer it assumes aligned, which is the point of the test). */
	__asm__ volatile("" : "+r"(addr));
	if (addr % 16)
		align_rec.misaligned++;
#if defined(__x86_64__)
	/* The frame pointer is rsp at entry minus the pushed rbp: aligned iff
	 * (rsp + 8) % 16 == 0 at entry, which the psABI requires. */
	addr = (uintptr_t)__builtin_frame_address(0);
	__asm__ volatile("" : "+r"(addr));
	if (addr % 16)
		align_rec.frames_bad++;
#elif defined(__aarch64__)
	/* sp itself must be 16-byte aligned at all times (AAPCS64). */
	__asm__ volatile("mov %0, sp" : "=r"(addr));
	if (addr % 16)
		align_rec.frames_bad++;
#endif
	align_opaque_fn();
	v = v + v;
	if (depth)
		align_level(depth - 1);
	align_rec.sum += v[0] + v[1];
}

static void align_entry(void *xfer)
{
	(void)xfer;
	for (;;) {
		align_level(3);
		weft__ctx_switch(&align_rec.fiber_ctx, align_rec.main_ctx, NULL);
	}
}

/* The entry and its callees run on a 16-byte aligned stack, whatever the
 * alignment of stack_hi, and a forced aligned SSE spill does not fault. */
static int ck_alignment(void)
{
	struct ck_stack st;
	int rc = CK_PASS;

	if (!ck_stack_alloc(&st, CK_STACK_SIZE))
		return ck_fail("malloc of a stack failed");
	for (unsigned off = 0; off < 16 && rc == CK_PASS; off++) {
		memset(&align_rec, 0, sizeof(align_rec));
		align_rec.fiber_ctx =
			weft__ctx_init((char *)ck_stack_hi(&st) - off, align_entry);
		/* Twice: the first switch enters, the second resumes. */
		for (int i = 0; i < 2; i++)
			weft__ctx_switch(&align_rec.main_ctx, align_rec.fiber_ctx,
					 NULL);
		if (align_rec.levels != 8)
			rc = ck_fail("stack_hi - %u: %u levels ran, expected 8",
				     off, align_rec.levels);
		else if (align_rec.misaligned)
			rc = ck_fail("stack_hi - %u: a 16-byte aligned local was misaligned in %u of 8 frames",
				     off, align_rec.misaligned);
		else if (align_rec.frames_bad)
			rc = ck_fail("stack_hi - %u: %u of 8 frames ran on a misaligned stack pointer",
				     off, align_rec.frames_bad);
		else if (align_rec.sum != 8 * 6 * align_in)
			rc = ck_fail("stack_hi - %u: vector sum %g, expected %g",
				     off, align_rec.sum, 8 * 6 * align_in);
	}
	ck_stack_free(&st);
	return rc;
}

/* ----------------------------------------- floating-point control -- */

#if defined(__x86_64__)
/*
 * A mode m in 0..7 sets the rounding control of both MXCSR (bits 13-14)
 * and the x87 control word (bits 10-11) to m & 3 (0 nearest, 1 down, 2 up,
 * 3 toward zero) and MXCSR's flush-to-zero bit (15) to m >> 2.
 * fp_get() returns the mode, or a value above 7 when the two rounding
 * controls disagree.
 */
static unsigned fp_get(void)
{
	uint32_t mxcsr;
	uint16_t cw;
	unsigned rc_sse, rc_x87;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	rc_sse = (mxcsr >> 13) & 3;
	rc_x87 = (cw >> 10) & 3;
	return (rc_sse | ((mxcsr >> 15) & 1) << 2) + (rc_sse != rc_x87 ? 8 : 0);
}

static void fp_set(unsigned m)
{
	uint32_t mxcsr;
	uint16_t cw;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	mxcsr = (mxcsr & ~(7u << 13)) | ((m & 3) << 13) | ((m >> 2) << 15);
	cw = (uint16_t)((cw & ~(3u << 10)) | ((m & 3) << 10));
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
	__asm__ volatile("fldcw %0" : : "m"(cw));
}

#define FP_ROUNDS 32

struct fpc {
	void *main_ctx, *fiber_ctx;
	unsigned at_entry;
	unsigned bad;
};

static struct fpc fpc;

/* The two contexts' modes over the rounds: equal in some, different in
 * others (the switch takes another path when the MXCSR control bits are
 * the same). */
static unsigned fp_main_mode(unsigned r)
{
	return r % 8;
}

static unsigned fp_fiber_mode(unsigned r)
{
	return (r / 3) % 8;
}

static void fpc_entry(void *xfer)
{
	fpc.at_entry = fp_get();
	for (unsigned r = 0;; r++) {
		fp_set(fp_fiber_mode(r));
		xfer = weft__ctx_switch(&fpc.fiber_ctx, fpc.main_ctx, xfer);
		if (fp_get() != fp_fiber_mode(r))
			fpc.bad++;
	}
}
#endif

/* The MXCSR control bits and the x87 control word are per context, and a
 * fresh context starts with those of the thread that initialised it. */
static int ck_fp_control(void)
{
#if defined(__x86_64__)
	struct ck_stack st;
	unsigned saved = fp_get();
	unsigned bad = 0;

	if (RUNNING_ON_VALGRIND)
		return ck_skip("Valgrind emulates SSE round-to-nearest only");
	memset(&fpc, 0, sizeof(fpc));
	if (!ck_stack_alloc(&st, CK_STACK_SIZE))
		return ck_fail("malloc of a stack failed");
	fp_set(5); /* down, flush to zero */
	fpc.fiber_ctx = weft__ctx_init(ck_stack_hi(&st), fpc_entry);
	fp_set(0); /* the fiber must still start with mode 5 */
	for (unsigned r = 0; r < FP_ROUNDS; r++) {
		fp_set(fp_main_mode(r));
		weft__ctx_switch(&fpc.main_ctx, fpc.fiber_ctx, NULL);
		if (fp_get() != fp_main_mode(r))
			bad++;
	}
	fp_set(saved & 7);
	ck_stack_free(&st);
	if (fpc.at_entry != 5)
		return ck_fail("the fresh context started in FP mode %u, expected its creator's 5",
			       fpc.at_entry);
	if (bad || fpc.bad)
		return ck_fail("FP control lost in %u of %d switches to main, %u to the fiber",
			       bad, FP_ROUNDS, fpc.bad);
	return CK_PASS;
#else
	return ck_skip("the context does not switch the FP control register on this CPU");
#endif
}

/* ------------------------------------------------------- migration -- */

#define MIG_HOPS 2000

struct mig_hop {
	void *back;          /* the resuming thread's context */
	pthread_t expect;    /* the thread that resumes */
	unsigned tag;        /* its thread-local tag */
	unsigned bad;        /* set by the fiber */
};

struct mig {
	void *fiber_ctx;
	pthread_mutex_t mu;   /* protects turn */
	pthread_cond_t cv;
	unsigned turn;        /* which thread resumes the fiber next */
	unsigned resumed;     /* written by the fiber */
	unsigned bad;
	unsigned id[2];
};

static struct mig mig;
static _Thread_local unsigned mig_tag;

/* Fresh reads of the thread's identity after a switch: pthread_self() is
 * declared const and a TLS address may be kept across a call, so the
 * compiler could otherwise reuse the values of the previous thread. */
__attribute__((noinline)) static pthread_t mig_self(void)
{
	__asm__ volatile("" ::: "memory");
	return pthread_self();
}

__attribute__((noinline)) static unsigned mig_tag_now(void)
{
	__asm__ volatile("" ::: "memory");
	return mig_tag;
}

static void mig_entry(void *xfer)
{
	for (;;) {
		struct mig_hop *h = xfer;

		if (!pthread_equal(mig_self(), h->expect) ||
		    mig_tag_now() != h->tag)
			h->bad++;
		mig.resumed++;
		/* The next hop's record, from whichever thread resumes. */
		xfer = weft__ctx_switch(&mig.fiber_ctx, h->back, h);
	}
}

static void *mig_thread(void *arg)
{
	unsigned me = *(unsigned *)arg;

	mig_tag = me + 1;
	for (unsigned i = 0; i < MIG_HOPS / 2; i++) {
		struct mig_hop h = { .expect = pthread_self(), .tag = me + 1 };
		void *got;

		pthread_mutex_lock(&mig.mu);
		while (mig.turn != me)
			pthread_cond_wait(&mig.cv, &mig.mu);
		pthread_mutex_unlock(&mig.mu);

		got = weft__ctx_switch(&h.back, mig.fiber_ctx, &h);
		if (got != &h || h.bad)
			mig.bad++;

		pthread_mutex_lock(&mig.mu);
		mig.turn = !me;
		pthread_cond_broadcast(&mig.cv);
		pthread_mutex_unlock(&mig.mu);
	}
	return NULL;
}

/* A context saved on one thread resumes on another, back and forth: the
 * xfer value, pthread_self() and thread-local data are the resuming
 * thread's. */
static int ck_migration(void)
{
	struct ck_stack st;
	pthread_t t[2];
	int err;

	memset(&mig, 0, sizeof(mig));
	pthread_mutex_init(&mig.mu, NULL);
	pthread_cond_init(&mig.cv, NULL);
	if (!ck_stack_alloc(&st, CK_STACK_SIZE))
		return ck_fail("malloc of a stack failed");
	mig.fiber_ctx = weft__ctx_init(ck_stack_hi(&st), mig_entry);
	for (unsigned i = 0; i < 2; i++) {
		mig.id[i] = i;
		err = pthread_create(&t[i], NULL, mig_thread, &mig.id[i]);
		if (err) {
			if (i)
				pthread_join(t[0], NULL);
			ck_stack_free(&st);
			return ck_fail("pthread_create: %s", strerror(err));
		}
	}
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	pthread_cond_destroy(&mig.cv);
	pthread_mutex_destroy(&mig.mu);
	/* The fiber stays suspended for good: abandoning it is allowed. */
	ck_stack_free(&st);
	if (mig.resumed != MIG_HOPS)
		return ck_fail("the fiber ran %u times, expected %d",
			       mig.resumed, MIG_HOPS);
	if (mig.bad)
		return ck_fail("%u of %d hops saw the wrong thread, TLS or xfer",
			       mig.bad, MIG_HOPS);
	return CK_PASS;
}

/* ---------------------------------------------------- many contexts -- */

#define RING_N 1000
#define RING_ROUNDS 20
#define RING_STACK (64 * 1024)

struct ring {
	void *main_ctx;
	void *ctx[RING_N];
	unsigned long visits[RING_N];
	unsigned bad;
};

static struct ring *ring;

/* Context i receives the token t == round * RING_N + i and passes t + 1
 * to context i + 1; the last one returns to the main context. */
static void ring_entry(void *xfer)
{
	uintptr_t t = (uintptr_t)xfer;
	unsigned i = (unsigned)(t % RING_N);

	for (;;) {
		if (t % RING_N != i)
			ring->bad++;
		ring->visits[i]++;
		if (i + 1 < RING_N)
			t = (uintptr_t)weft__ctx_switch(&ring->ctx[i], ring->ctx[i + 1],
							(void *)(t + 1));
		else
			t = (uintptr_t)weft__ctx_switch(&ring->ctx[i], ring->main_ctx,
							(void *)(t + 1));
	}
}

/* RING_N contexts pass a token round robin, RING_ROUNDS times; each one
 * starts from a switch made by another fresh context. */
static int ck_many(void)
{
	struct ck_stack *st = calloc(RING_N, sizeof(*st));
	int rc = CK_PASS;
	unsigned n = 0;

	ring = calloc(1, sizeof(*ring));
	if (!st || !ring) {
		rc = ck_fail("calloc failed");
		goto out;
	}
	for (n = 0; n < RING_N; n++) {
		if (!ck_stack_alloc(&st[n], RING_STACK)) {
			rc = ck_fail("malloc of stack %u failed", n);
			goto out;
		}
		ring->ctx[n] = weft__ctx_init(ck_stack_hi(&st[n]), ring_entry);
	}
	for (uintptr_t r = 0; r < RING_ROUNDS; r++) {
		uintptr_t back = (uintptr_t)weft__ctx_switch(
			&ring->main_ctx, ring->ctx[0], (void *)(r * RING_N));

		if (back != (r + 1) * RING_N) {
			rc = ck_fail("round %lu: token %lu came back, expected %lu",
				     (unsigned long)r, (unsigned long)back,
				     (unsigned long)((r + 1) * RING_N));
			goto out;
		}
	}
	if (ring->bad) {
		rc = ck_fail("%u contexts got another context's token", ring->bad);
		goto out;
	}
	for (unsigned i = 0; i < RING_N; i++) {
		if (ring->visits[i] != RING_ROUNDS) {
			rc = ck_fail("context %u ran %lu times, expected %d", i,
				     ring->visits[i], RING_ROUNDS);
			goto out;
		}
	}
out:
	if (st) {
		for (unsigned i = 0; i < n; i++)
			ck_stack_free(&st[i]);
	}
	free(st);
	free(ring);
	ring = NULL;
	return rc;
}

/* ------------------------------------------------ returning entries -- */

static void *trap_main_ctx;

static void trap_entry(void *xfer)
{
	(void)xfer; /* returns: the trampoline must trap */
}

/*
 * The trap arrives here first, and only a trap the kernel raised (si_code
 * > 0) is passed on, as a signal this process sends itself: SA_RESETHAND
 * made it fatal again and SA_NODEFER leaves it unblocked in here. Valgrind
 * prints a report for a fatal signal the kernel sends (which .ci/valgrind
 * counts as a finding), not for one the program raises.
 */
static void trap_handler(int sig, siginfo_t *info, void *uctx)
{
	(void)uctx;
	if (info->si_code <= 0)
		_Exit(4);
	raise(sig);
	_Exit(5);
}

/* Runs a context whose entry returns: does not return itself, the
 * process dies of CK_TRAP_SIGNAL. */
static void ck_run_returning_entry(void)
{
	static struct ck_stack st;
	struct sigaction sa;
	void *ctx;

	/* A death on purpose: no core file (qemu-user writes one to the
	 * working directory otherwise, where ulimit -c allows). */
	setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = trap_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(CK_TRAP_SIGNAL, &sa, NULL) != 0)
		_Exit(6);
	if (!ck_stack_alloc(&st, CK_STACK_SIZE))
		_Exit(7);
	ctx = weft__ctx_init(ck_stack_hi(&st), trap_entry);
	weft__ctx_switch(&trap_main_ctx, ctx, NULL);
	/* Not reached: nothing switches back. Exit with a status that
	 * cannot be mistaken for the trap. */
	_Exit(3);
}

#endif /* WEFT_TEST_CTX_CHECKS_H */
