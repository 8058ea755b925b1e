/*
 * core/wait.h - the one wait primitive under every wait in weft (DESIGN.md
 * section 7): futures, joins of groups, locks, channels, sleeps.
 *
 * A waiter is a record on the waiting side's stack. It is armed on an event
 * source (a future's waiter list, a wait queue), optionally on the timer
 * (a deadline) and on its fiber (cancellation), and then either suspends
 * its fiber (on a worker) or blocks its thread on a futex (elsewhere).
 * Exactly one of source, timer and canceller ends the wait: each calls
 * weft__waiter_wake() with its reason, and only the first CAS on the
 * state word wins; the winner makes the waiter run again.
 *
 * The arming race. A fiber is registered with the source, timer and
 * canceller by its park action, on the next fiber, after its context is
 * saved ("park, then publish"). A wake can arrive while the park action is
 * still registering the rest; the resumed fiber would then disarm
 * registrations that are not finished. So the park action sets W_ARMING
 * first; a wake that wins while it is set records its reason but leaves
 * the resume to the park action, which checks when it is done.
 *
 * After the wait the waiting side disarms what did not fire: the timer
 * (under its lock, so the timer thread never touches a returned waiter),
 * the canceller (under the fiber's wait_lock), and the source. A source
 * that fires outside its own lock (a future completing: it detaches its
 * list, then fires each node) and loses the race sets `released` as its
 * last touch, and a disarm that finds the node gone waits for that; a wake
 * that wins makes its CAS the last touch, since the waiter may return the
 * moment it sees the state.
 */
#ifndef WEFT_CORE_WAIT_H
#define WEFT_CORE_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/future.h"

struct weft__fiber;
struct weft_pool;

enum {
	W_PENDING = 0,
	W_WOKEN = 1,	 /* the source fired */
	W_TIMEDOUT = 2,	 /* the deadline passed */
	W_CANCELLED = 3, /* the task was cancelled */
	W_REASON = 3,	 /* mask of the above */
	W_ARMING = 4,	 /* the park action is still registering */
};

struct weft__waiter;

struct weft__timer {
	int64_t deadline;
	size_t idx; /* position in the heap; SIZE_MAX when not in it */
	struct weft__waiter *w; /* woken with W_TIMEDOUT, unless fire */
	/* Called instead, by the io thread under the timer lock (so
	 * weft__timer_del() returning means it is not running). */
	void (*fire)(struct weft__timer *t);
};

struct weft__waiter {
	struct weft__wnode node; /* on a future's list */
	struct weft__waiter *next, *prev; /* on a wait queue */
	struct weft__fiber *fiber;	  /* NULL: a thread waiter */
	_Atomic uint32_t state;
	_Atomic uint32_t released; /* the source is done with the node */
	struct weft__timer timer;
	/* For wait queues: what the waiter wants or was handed. */
	void *data;
	uintptr_t tag;
};

/* An event source. arm(): register @w unless the event has already
 * happened (then return false and do not register). disarm(): unregister
 * @w; return false if the source has taken @w and is firing it right now
 * (the caller then waits for @w->released). Both run on the waiting side:
 * a fiber's arm() runs on the worker's next fiber (the park action). */
struct weft__wait_ops {
	bool (*arm)(struct weft__waiter *w, void *src);
	bool (*disarm)(struct weft__waiter *w, void *src);
};

enum {
	WEFT__WAIT_CANCELLABLE = 1u << 0, /* a cancel of the task ends it */
};

/*
 * Wait on @src until it fires, @deadline passes (WEFT_FOREVER: never), or
 * (WEFT__WAIT_CANCELLABLE) the calling task is cancelled. On a worker the
 * task's fiber suspends; elsewhere the thread blocks. @w is the caller's,
 * with data/tag set as the source wants; the rest is set here.
 * Returns 0, -ETIMEDOUT or -ECANCELED. A cancellable wait of a task that
 * was already cancelled (and is not shielded) returns -ECANCELED at once,
 * without arming.
 */
int weft__wait(struct weft__waiter *w, const struct weft__wait_ops *ops,
	       void *src, int64_t deadline, unsigned flags);

/* A source ends @w's wait with @reason (W_WOKEN...). True if this call won
 * (the waiter will run again and sees @reason); false if the wait had
 * already been ended. Any thread; never blocks. */
bool weft__waiter_wake(struct weft__waiter *w, uint32_t reason);

/* Sources that fire outside their lock call this when their
 * weft__waiter_wake() lost, as their last touch of @w. */
static inline void weft__waiter_release(struct weft__waiter *w)
{
	atomic_store_explicit(&w->released, 1, memory_order_release);
}

/* Whether the calling task has a cancel request that is not shielded (or
 * its pool is cancelling). False outside a task. */
bool weft__cancel_pending(void);

/* Ask the running task @f to stop: wake its current cancellable wait. */
void weft__cancel_wake(struct weft_future *f);

/* Arm @t (deadline and w or fire set; idx is set here) on @pool's timers,
 * which its io thread runs (io/io.c). Returns 0 or -ENOMEM. */
int weft__timer_add(struct weft_pool *pool, struct weft__timer *t);

/* Disarm @t; after return the io thread no longer touches it. Returns
 * true if it was still armed (it will not fire). */
bool weft__timer_del(struct weft_pool *pool, struct weft__timer *t);

/* Wait for the future @f (the engine of weft_future_wait_until()). */
int weft__wait_future(struct weft_future *f, int64_t deadline,
		      unsigned flags);

#endif /* WEFT_CORE_WAIT_H */
