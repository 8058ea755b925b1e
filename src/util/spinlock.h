/*
 * util/spinlock.h - a test-and-test-and-set lock for critical sections of a
 * few instructions (a future's waiter list). It yields the CPU after a
 * bounded spin, because on an oversubscribed 2-core VM the holder may have
 * been descheduled and spinning would only keep it off the CPU.
 */
#ifndef WEFT_UTIL_SPINLOCK_H
#define WEFT_UTIL_SPINLOCK_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "util/futex.h"

static inline void weft__spin_lock(_Atomic uint32_t *l)
{
	unsigned spins = 0;

	for (;;) {
		/* acquire: pairs with the release in weft__spin_unlock() */
		if (!atomic_exchange_explicit(l, 1, memory_order_acquire))
			return;
		while (atomic_load_explicit(l, memory_order_relaxed)) {
			if (++spins < 128)
				weft__cpu_relax();
			else
				sched_yield();
		}
	}
}

static inline void weft__spin_unlock(_Atomic uint32_t *l)
{
	/* release: pairs with the acquire in weft__spin_lock() */
	atomic_store_explicit(l, 0, memory_order_release);
}

#endif /* WEFT_UTIL_SPINLOCK_H */
