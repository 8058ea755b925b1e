/*
 * core/wait.c - the wait primitive (wait.h).
 *
 * Deadlines of fiber waits are timers of the pool's io thread (io/io.c),
 * which fires a waiter under its heap lock, so once weft__wait() has taken
 * its timer out under that lock the io thread can no longer touch the
 * waiter. Thread waiters do not use it: their futex wait carries the
 * deadline.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/pool.h"
#include "core/wait.h"
#include "fiber/fiber.h"
#include "util/futex.h"

/* ---- waking ----------------------------------------------------------- */

bool weft__waiter_wake(struct weft__waiter *w, uint32_t reason)
{
	/* Read before the CAS: once it succeeds a thread waiter may return
	 * and its record vanish. */
	struct weft__fiber *fiber = w->fiber;
	uint32_t s = atomic_load_explicit(&w->state, memory_order_relaxed);

	do {
		if (s & W_REASON)
			return false;
		/* acq_rel: release publishes what the source handed over
		 * (w->data); acquire pairs with the arming stores. */
	} while (!atomic_compare_exchange_weak_explicit(
		&w->state, &s, s | reason, memory_order_acq_rel,
		memory_order_relaxed));
	if (s & W_ARMING)
		return true; /* the waiting side resumes itself */
	if (fiber)
		weft__fiber_ready(fiber);
	else
		weft__futex_wake(&w->state, 1);
	return true;
}

/* ---- cancellation ----------------------------------------------------- */

bool weft__cancel_pending(void)
{
	struct weft__fiber *self = weft__fiber_self();
	struct weft_future *cur;

	if (!self || self->shield || !(cur = self->current))
		return false;
	/* seq_cst: pairs with the store in weft_future_cancel(). */
	return atomic_load_explicit(&cur->cancel_req, memory_order_seq_cst) ||
	       weft__pool_cancelling(self->pool);
}

void weft__cancel_wake(struct weft_future *f)
{
	struct weft__fiber *fiber = __atomic_load_n(&f->fiber, __ATOMIC_ACQUIRE);

	if (!fiber)
		return;
	weft__fiber_wait_lock(fiber);
	/* waiting first: while it is set (under wait_lock) the fiber is in a
	 * wait, and its current and shield stay as they are; while it is
	 * NULL the fiber may be writing them, without the lock. */
	if (fiber->waiting && fiber->current == f && !fiber->shield)
		weft__waiter_wake(fiber->waiting, W_CANCELLED);
	weft__fiber_wait_unlock(fiber);
	/* Forked children run as part of the task, on other fibers: look
	 * for their waits too (rare: only while some are running). A child
	 * that starts waiting after this sees the request when it arms. */
	if (atomic_load_explicit(&f->remote_kids, memory_order_relaxed))
		weft__fibers_cancel_task_waits(f->pool, f);
}

/* ---- waiting ---------------------------------------------------------- */

/* Park action: the fiber's context is saved; registrations are done. */
static void park_armed(struct weft__fiber *prev, void *arg)
{
	struct weft__waiter *w = arg;
	/* acq_rel: acquire sees the winner's handover; release is free. */
	uint32_t old = atomic_fetch_and_explicit(&w->state, ~(uint32_t)W_ARMING,
						 memory_order_acq_rel);

	if (old & W_REASON)
		weft__fiber_ready(prev);
}

int weft__wait(struct weft__waiter *w, const struct weft__wait_ops *ops,
	       void *src, int64_t deadline, unsigned flags)
{
	struct weft__fiber *self = weft__fiber_self();
	struct weft__fiber *next = NULL;
	bool cancellable = self && (flags & WEFT__WAIT_CANCELLABLE);
	bool timed = false;
	uint32_t r;

	if (cancellable && weft__cancel_pending())
		return -ECANCELED;
	/* A fiber waiter must be able to suspend once armed (wakers will
	 * queue its fiber, not wake a thread): reserve the fiber the worker
	 * goes on with first. Without one, wait as a thread would. */
	if (self && !(next = weft__fiber_reserve())) {
		self = NULL;
		cancellable = false;
	}
	w->fiber = self;
	w->timer.idx = SIZE_MAX;
	w->timer.w = w;
	w->timer.fire = NULL;
	w->timer.deadline = deadline;
	atomic_init(&w->released, 0);
	atomic_init(&w->state, W_ARMING);
	if (!ops->arm(w, src)) {
		if (next)
			weft__fiber_unreserve(next);
		return 0;
	}

	if (self) {
		if (deadline != WEFT_FOREVER) {
			if (deadline <= weft_now()) {
				weft__waiter_wake(w, W_TIMEDOUT);
			} else {
				int err = weft__timer_add(self->pool,
							  &w->timer);

				if (err) {
					weft__fiber_unreserve(next);
					if (!ops->disarm(w, src))
						goto wait_released_err;
					return err;
				}
				timed = true;
			}
		}
		if (cancellable) {
			weft__fiber_wait_lock(self);
			self->waiting = w;
			weft__fiber_wait_unlock(self);
			/* A cancel that came before waiting was set. */
			if (weft__cancel_pending())
				weft__waiter_wake(w, W_CANCELLED);
		}
#if WEFT_FORCE_MIGRATION
		/* Debug: suspend even when already woken, so that every
		 * wait is a chance to change threads. */
		weft__fiber_suspend_to(next, park_armed, w);
#else
		if (atomic_load_explicit(&w->state, memory_order_acquire) &
		    W_REASON) {
			atomic_fetch_and(&w->state, ~(uint32_t)W_ARMING);
			weft__fiber_unreserve(next);
		} else {
			weft__fiber_suspend_to(next, park_armed, w);
		}
#endif
		self = w->fiber; /* the same fiber; maybe another worker */
		if (timed)
			weft__timer_del(self->pool, &w->timer);
		if (cancellable) {
			weft__fiber_wait_lock(self);
			self->waiting = NULL;
			weft__fiber_wait_unlock(self);
		}
		goto done;
	}

	/* A thread waiter: sleep on the state word. */
	{
		uint32_t old = atomic_fetch_and_explicit(
			&w->state, ~(uint32_t)W_ARMING, memory_order_acq_rel);

		while (!((old = atomic_load_explicit(&w->state,
						     memory_order_acquire)) &
			 W_REASON)) {
			if (weft__futex_wait(&w->state, old, deadline) ==
			    -ETIMEDOUT)
				weft__waiter_wake(w, W_TIMEDOUT);
		}
	}
done:
	r = atomic_load_explicit(&w->state, memory_order_acquire) & W_REASON;
	if (r == W_WOKEN)
		return 0;
	if (!ops->disarm(w, src)) {
		/* Fired at the same time: the source still holds the node. */
		while (!atomic_load_explicit(&w->released,
					     memory_order_acquire))
			sched_yield();
	}
	return r == W_TIMEDOUT ? -ETIMEDOUT : -ECANCELED;

wait_released_err:
	/* The source is firing us, and its winning CAS will be its last
	 * touch. */
	while (!(atomic_load_explicit(&w->state, memory_order_acquire) &
		 W_REASON))
		sched_yield();
	return 0; /* it fired: the wait succeeded after all */
}

/* ---- futures ---------------------------------------------------------- */

static void future_node_fire(struct weft__wnode *n, struct weft_future *f)
{
	struct weft__waiter *w = (struct weft__waiter *)n;

	(void)f;
	/* A winning wake is the last touch (the waiter may return at once);
	 * a losing one must tell the waiter, which is waiting in its disarm
	 * for the node to be released. */
	if (!weft__waiter_wake(w, W_WOKEN))
		weft__waiter_release(w);
}

static bool future_arm(struct weft__waiter *w, void *src)
{
	w->node.fire = future_node_fire;
	w->node.next = NULL;
	return weft__future_add_waiter(src, &w->node);
}

static bool future_disarm(struct weft__waiter *w, void *src)
{
	return weft__future_remove_waiter(src, &w->node);
}

static const struct weft__wait_ops future_ops = {
	.arm = future_arm,
	.disarm = future_disarm,
};

int weft__wait_future(struct weft_future *f, int64_t deadline,
		      unsigned flags)
{
	struct weft__waiter w;

	w.data = NULL;
	return weft__wait(&w, &future_ops, f, deadline, flags);
}
