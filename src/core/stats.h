/*
 * core/stats.h - the per-worker counters behind weft_pool_stats()
 * (weft/obs.h; obs.c reads them).
 *
 * Each counter is written only by the thread of the worker it belongs to,
 * so an increment is a relaxed load and store, not a locked read-modify-
 * write: on x86-64 an ordinary add to a line the worker already owns. The
 * fields are atomics only so that weft_pool_stats() may read them from
 * another thread without a data race (TSan agrees); a reader sees some
 * recent value. Code that may have migrated must re-read its worker before
 * counting (fiber.h), so that it counts on the thread it runs on.
 *
 * worker->stats_on mirrors !weft_pool_options.no_stats, in the worker's
 * own line, so the test costs no extra cache miss.
 */
#ifndef WEFT_CORE_STATS_H
#define WEFT_CORE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

struct weft__wstats {
	_Atomic uint64_t tasks_run;
	_Atomic uint64_t tasks_completed;
	_Atomic uint64_t submitted;
	_Atomic uint64_t steals;
	_Atomic uint64_t steal_failures;
	_Atomic uint64_t inject_taken; /* kept always, like the two below */
	_Atomic uint64_t parks;
	_Atomic uint64_t wakeups;
	_Atomic uint64_t suspends;
	_Atomic uint64_t resumes;
	_Atomic uint64_t io_submitted;
	/* Kept whether or not stats are on (weft_pool_stats() always gives
	 * the queue depths and fibers): entries this worker pushed to the
	 * inject queue because its deque could not grow, and... */
	_Atomic uint64_t inject_overflow;
	/* ...not a count: the fiber cache's size, mirrored for readers. */
	_Atomic uint64_t fibers_cached;
};

/* Add @n to the owner-only counter @c. */
static inline void weft__stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Count one event @field on worker @w (a struct weft__worker *, pool.h),
 * which must be the calling thread's worker. */
#define WEFT__STAT_INC(w, field)                                        \
	do {                                                            \
		if ((w)->stats_on)                                      \
			weft__stat_add(&(w)->stats.field, 1);           \
	} while (0)

#endif /* WEFT_CORE_STATS_H */
