/*
 * util/futex.h - the futex calls weft parks on, with absolute deadlines on
 * CLOCK_MONOTONIC (FUTEX_WAIT_BITSET takes an absolute time on that clock,
 * so a wait that is interrupted and restarted does not stretch its
 * deadline).
 *
 * Every user of these keeps the real state in the atomic word itself and
 * treats a return from weft__futex_wait() as a hint to re-read it: futexes
 * wake spuriously, and a wake may be aimed at an address whose owner has
 * already moved on.
 */
#ifndef WEFT_UTIL_FUTEX_H
#define WEFT_UTIL_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "weft/common.h"

/*
 * Sleep while *addr == expected, until woken or @deadline (absolute ns on
 * CLOCK_MONOTONIC, WEFT_FOREVER for none). Returns 0 on a wake (possibly
 * spurious), -EAGAIN if *addr already differed, -ETIMEDOUT, -EINTR.
 */
static inline int weft__futex_wait(_Atomic uint32_t *addr, uint32_t expected,
				   int64_t deadline)
{
	struct timespec ts, *tsp = NULL;

	if (deadline != WEFT_FOREVER) {
		if (deadline < 0)
			deadline = 0;
		ts.tv_sec = (time_t)(deadline / 1000000000);
		ts.tv_nsec = (long)(deadline % 1000000000);
		tsp = &ts;
	}
	if (syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_BITSET_PRIVATE,
		    expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	return -errno;
}

/* Wake up to @n threads sleeping on @addr. */
static inline void weft__futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL,
		0);
}

/* A pause for spin loops: tells the core (and SMT sibling) we are waiting. */
static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

#endif /* WEFT_UTIL_FUTEX_H */
