/*
 * fiber/stack.h - fiber stack memory, guard pages, and the stack-overflow
 * report (internal).
 *
 * A stack is one private anonymous mapping (MAP_NORESERVE | MAP_STACK,
 * MADV_NOHUGEPAGE) with a PROT_NONE guard of WEFT__STACK_GUARD bytes at its
 * low end (16 pages: Debian's gcc does not enable -fstack-clash-protection,
 * so one page could be jumped over; research/fibers.md section 2.2).
 *
 * The vm.max_map_count policy. A guarded stack costs two kernel memory
 * mappings (VMAs), and the default limit is 65530 per process, so past
 * about 32 000 guarded stacks mprotect() fails with a misleading ENOMEM.
 * weft therefore keeps a process-wide budget of guarded stacks: half of
 * (vm.max_map_count - 4096 kept for the rest of the process), read once
 * from /proc; the environment variable WEFT_GUARDED_STACKS overrides it.
 * Past the budget a stack is mapped without a guard page (one VMA, which
 * the kernel may merge with its neighbours) and gets a canary word at its
 * low end instead, which fiber.c checks at every switch away from the
 * fiber: an overflow of an unguarded stack is then caught after the fact,
 * with the same message, instead of silently. docs/async.md documents it.
 *
 * Threads: all functions may be called from any thread; the budget is an
 * atomic counter. The overflow handler is installed once per process and
 * a signal stack once per worker thread.
 */
#ifndef WEFT_FIBER_STACK_H
#define WEFT_FIBER_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT__STACK_GUARD (16 * 4096)
#define WEFT__STACK_MIN (16 * 1024)
/* The most usable stack a pool or a task may ask for (weft/pool.h). */
#define WEFT__STACK_USABLE_MAX ((size_t)1 << 30)
#define WEFT__STACK_CANARY 0x5745465453544b21ull /* "WEFTSTK!" */

struct weft__stack {
	void *lo;	 /* lowest usable byte (just above the guard) */
	void *hi;	 /* one past the highest usable byte */
	void *map;	 /* start of the mapping (the guard, if any) */
	size_t map_size; /* length of the mapping */
	bool guarded;	 /* false: canary at lo instead of a guard */
	unsigned vg_id;	 /* Valgrind stack id (0 when not under Valgrind) */
};

/*
 * Map a stack with at least @size usable bytes (rounded up to pages,
 * at least WEFT__STACK_MIN). Guarded while the process-wide budget lasts,
 * else unguarded with a canary. Registers it with Valgrind. Returns 0,
 * -ENOMEM (mmap failed), or -EINVAL (@size absurd, over 2 GiB: the public
 * limit is 1 GiB of usable stack, plus a fiber descriptor).
 */
int weft__stack_map(size_t size, struct weft__stack *out);

/* Unmap @s (unpoisoning it for ASan first) and give back its budget. */
void weft__stack_unmap(struct weft__stack *s);

/*
 * Give the pages of @s below @keep bytes under its top back to the kernel
 * (MADV_DONTNEED; a later touch gets zero pages, and the canary of an
 * unguarded stack is rewritten). The mapping stays valid.
 */
void weft__stack_release(struct weft__stack *s, size_t keep);

/* False if @s is unguarded and its canary was overwritten. */
static inline bool weft__stack_canary_ok(const struct weft__stack *s)
{
	return s->guarded || *(const volatile uint64_t *)s->lo ==
				     WEFT__STACK_CANARY;
}

/* The guarded-stack budget in stacks, and how many guarded stacks exist. */
size_t weft__stack_guard_budget(void);
size_t weft__stack_guarded_count(void);

/* Tests: set the budget (as WEFT_GUARDED_STACKS does); returns the old. */
size_t weft__stack_set_guard_budget(size_t n);

/*
 * Overflow reporting. fiber.c registers @lookup once; the SIGSEGV/SIGBUS
 * handler calls it with the fault address, on the faulting thread, from
 * the signal stack. If it returns a length > 0 it has written a message
 * into @buf (async-signal-safe formatting only: see util/sigfmt.h); the
 * handler writes it to stderr, restores the default action and returns so
 * that the fault repeats and kills the process with a core dump. Otherwise
 * the handler passes the signal on to the handler installed before it (or
 * the default action).
 */
typedef size_t (*weft__overflow_lookup)(void *fault_addr, char *buf,
					size_t len);
void weft__stack_overflow_init(weft__overflow_lookup lookup);

/*
 * Per worker thread: give the calling thread an alternate signal stack if
 * it has none (ASan installs its own; never replace it), so the handler can
 * run after a stack overflow. _thread_fini frees the one it installed.
 */
void weft__stack_overflow_thread_init(void);
void weft__stack_overflow_thread_fini(void);

#endif /* WEFT_FIBER_STACK_H */
