/*
 * fiber/switch_ucontext.c - the portable twin of the assembly context
 * switch, on getcontext/makecontext/swapcontext (interface: context.h).
 *
 * A suspended context is the address of a ucontext_t: for a context that
 * has run, the one in the frame of its own pending weft__ctx_switch() call
 * (it lives exactly as long as the suspension); for a fresh context, the
 * one weft__ctx_init() placed at the top of the new stack, which stays
 * there, unused after the first switch, until the stack is freed.
 *
 * The xfer value cannot travel in a register through swapcontext(), so it
 * goes through a per-thread slot written right before swapcontext() and
 * read right after it returns. That is safe although contexts migrate
 * between threads: a switch runs on one thread from start to end, so the
 * resumed side reads the slot of the thread that wrote it. The slot's
 * address, though, must be computed afresh after swapcontext() returns,
 * since the caller may by then run on another thread; handoff() is opaque
 * to the compiler for that reason (research/fibers.md section 3.1: gcc and
 * clang both keep a TLS address across a call otherwise).
 *
 * A fresh context's trampoline finds its entry function through the same
 * slot: the switch that starts it records the target context, and the
 * entry is stored next to the ucontext_t.
 *
 * Cost: glibc's swapcontext() makes an rt_sigprocmask system call on every
 * switch (about 60x the assembly switch, fibers.md 1.2). It also saves and
 * restores the floating-point environment (x86-64: the x87 environment and
 * MXCSR; AArch64: FPSR and FPCR), so the rounding mode is per context here
 * too, and a fresh context starts with that of the thread that called
 * weft__ctx_init() (getcontext() captures it).
 *
 * Threads: a context may be resumed on another thread than the one that
 * saved it; the signal mask travels with the context (swapcontext restores
 * the mask that was current when the context was saved).
 */
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

#include "fiber/context.h"

/* What weft__ctx_init() writes below stack_hi. */
struct init_block {
	ucontext_t uc; /* first: a fresh context is the address of this */
	weft__ctx_entry entry;
};

/* context.h promises at most 8 KiB below stack_hi (alignment included). */
_Static_assert(sizeof(struct init_block) + 15 <= 8192,
	       "ucontext_t outgrew the 8 KiB that context.h promises");

/* One switch in flight on this thread: written by the switching side, read
 * by the resumed side on the same thread. */
struct handoff_slot {
	void *xfer;
	ucontext_t *to;
};

static _Thread_local struct handoff_slot handoff_tls;

/*
 * This thread's slot. noinline plus the volatile asm keep the compiler from
 * treating the call as pure and reusing an address computed before a
 * swapcontext() after it, when the caller may run on another thread.
 */
__attribute__((noinline)) static struct handoff_slot *handoff(void)
{
	struct handoff_slot *h = &handoff_tls;

	__asm__ volatile("" : "+r"(h));
	return h;
}

/* The first code a fresh context runs, on its own stack. */
static void trampoline(void)
{
	struct handoff_slot *h = handoff();
	struct init_block *b = (struct init_block *)h->to;

	b->entry(h->xfer);
	/* The entry returned, which context.h forbids: there is no caller to
	 * return to (uc_link is NULL, which would end the thread). */
	__builtin_trap();
}

void *weft__ctx_init(void *stack_hi, weft__ctx_entry entry)
{
	uintptr_t top = (uintptr_t)stack_hi & ~(uintptr_t)15;
	struct init_block *b =
		(struct init_block *)((top - sizeof(*b)) & ~(uintptr_t)15);

	/* getcontext() fails only if rt_sigprocmask does, which it cannot
	 * with valid arguments; the interface has no error to report. */
	if (getcontext(&b->uc) != 0)
		abort();
	/*
	 * glibc's makecontext() derives the initial stack pointer from
	 * ss_sp + ss_size alone, so the new context's frames start right
	 * below the block. The size is left 0, meaning "unknown": ASan's
	 * swapcontext() interceptor clears the shadow of [ss_sp, ss_sp +
	 * ss_size) of its target, and there is nothing it should clear here.
	 */
	b->uc.uc_stack.ss_sp = b;
	b->uc.uc_stack.ss_size = 0;
	b->uc.uc_stack.ss_flags = 0;
	b->uc.uc_link = NULL;
	b->entry = entry;
	makecontext(&b->uc, trampoline, 0);
	return &b->uc;
}

void *weft__ctx_switch(void **save, void *to, void *xfer)
{
	ucontext_t self;
	struct handoff_slot *h;

	/* No stack to describe for ASan's interceptor (see above). */
	self.uc_stack.ss_sp = NULL;
	self.uc_stack.ss_size = 0;
	self.uc_stack.ss_flags = 0;
	*save = &self;
	h = handoff();
	h->xfer = xfer;
	h->to = to;
	if (swapcontext(&self, to) != 0)
		abort(); /* as getcontext() above */
	/* Resumed, maybe on another thread: that thread's slot. */
	return handoff()->xfer;
}
