/*
 * sync/mutex.c - the task-aware mutex and condition variable (weft/sync.h).
 *
 * Mutex. The state word (waitq.h) holds, besides the queue lock bit,
 * M_LOCKED and M_WAITERS. Uncontended, lock is one CAS 0 -> LOCKED and
 * unlock one CAS LOCKED -> 0. Contended lockers queue in FIFO order, and an
 * unlock with waiters hands the lock to the oldest one directly: the word
 * stays LOCKED throughout, so a newcomer's CAS cannot barge in between (a
 * FIFO handoff lock; the trade-off is the convoy that fairness brings, a
 * full wake-up per handoff under contention, which a barging lock such as
 * glibc's avoids at the price of starvation). Invariants, under the lock
 * bit: M_WAITERS is set exactly when the list is not empty, and then
 * M_LOCKED is set too.
 *
 * Ownership for the debug checks: the holder's token (waitq.h: the fiber on
 * a worker, else a thread-local address), set by whoever grants the lock
 * before the grant is visible, and cleared by the holder before it lets
 * go.
 *
 * Condition variable. Waiters queue under the cond's own lock bit; the
 * mutex is released in the waitq's armed() hook, after the waiter is
 * queued, so a signal sent by anyone who takes the mutex afterwards finds
 * it (the atomic "release and wait" of POSIX). The mutex is taken back
 * after the wait with no deadline and no cancellation, as
 * pthread_cond_wait() does on cancellation, so the caller always returns
 * holding it. Signals hand nothing over, so a broadcast just wakes every
 * waiter, which then queue on the mutex (no wait morphing).
 *
 * Threads: any.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft/sync.h"
#include "sync/waitq.h"
#include "weft_config.h"

enum {
	M_LOCKED = 1u << 1,
	M_WAITERS = 1u << 2,
};

struct mutex {
	struct weft__waitq q; /* word: M_LOCKED | M_WAITERS; list: waiters */
	_Atomic(void *) owner; /* debug checks: the holder's token */
};

_Static_assert(sizeof(struct mutex) <= sizeof(struct weft_mutex),
	       "struct weft_mutex is too small for its private layout");
_Static_assert(_Alignof(struct mutex) <= _Alignof(struct weft_mutex),
	       "struct weft_mutex is not aligned enough");

struct cond {
	struct weft__waitq q; /* word: no state; list: waiters */
};

_Static_assert(sizeof(struct cond) <= sizeof(struct weft_cond),
	       "struct weft_cond is too small for its private layout");
_Static_assert(_Alignof(struct cond) <= _Alignof(struct weft_cond),
	       "struct weft_cond is not aligned enough");

static inline struct mutex *mx(struct weft_mutex *m)
{
	return (struct mutex *)(void *)m;
}

static inline struct cond *cv(struct weft_cond *c)
{
	return (struct cond *)(void *)c;
}

/* ---- ownership (debug checks) ------------------------------------------ */

static void *self_token(void)
{
#if WEFT_DEBUG_CHECKS
	return weft__waitq_self_token();
#else
	return NULL;
#endif
}

static inline void set_owner(struct mutex *m, void *token)
{
#if WEFT_DEBUG_CHECKS
	/* relaxed: ordered by the lock itself; atomic only so that a
	 * misuse check reading it from a non-holder is not a data race. */
	atomic_store_explicit(&m->owner, token, memory_order_relaxed);
#else
	(void)m;
	(void)token;
#endif
}

static void check_owner(struct mutex *m, const char *fn)
{
#if WEFT_DEBUG_CHECKS
	void *owner = atomic_load_explicit(&m->owner, memory_order_relaxed);

	if (owner != weft__waitq_self_token()) {
		fprintf(stderr, "weft: %s(): mutex %p is %s\n", fn, (void *)m,
			owner ? "held by another task or thread, not by the "
				"caller"
			      : "not held by anyone");
		abort();
	}
#else
	(void)m;
	(void)fn;
#endif
}

static void check_not_owner(struct mutex *m, void *me)
{
#if WEFT_DEBUG_CHECKS
	if (atomic_load_explicit(&m->owner, memory_order_relaxed) == me) {
		fprintf(stderr,
			"weft: weft_mutex_lock(): mutex %p is already held by "
			"the calling task or thread (or by an earlier task on "
			"its fiber that never unlocked it): this would wait "
			"forever\n",
			(void *)m);
		abort();
	}
#else
	(void)m;
	(void)me;
#endif
}

/* ---- mutex ------------------------------------------------------------ */

static struct weft__wlist *mutex_arm(void *obj, struct weft__waiter *w,
				     uint64_t *state)
{
	struct mutex *m = obj;

	if (!(*state & M_LOCKED)) {
		/* Freed since the fast path failed; no waiter can be queued
		 * on an unlocked mutex. */
		*state |= M_LOCKED;
		set_owner(m, w->data);
		return NULL;
	}
	*state |= M_WAITERS;
	return &m->q.list;
}

static void mutex_removed(void *obj, struct weft__wlist *l, uint64_t *state)
{
	(void)obj;
	if (weft__wlist_empty(l))
		*state &= ~(uint64_t)M_WAITERS;
}

static const struct weft__waitq_ops mutex_ops = {
	.arm = mutex_arm,
	.removed = mutex_removed,
};

static int mutex_lock(struct mutex *m, int64_t deadline, unsigned flags)
{
	uint64_t s = 0;
	void *me = self_token();
	struct weft__waiter w;

	/* acquire: pairs with the release of the unlock that freed it. */
	if (atomic_compare_exchange_strong_explicit(&m->q.word, &s, M_LOCKED,
						    memory_order_acquire,
						    memory_order_relaxed)) {
		set_owner(m, me);
		return 0;
	}
	check_not_owner(m, me);
	w.data = me; /* the token the granting unlock records */
	return weft__waitq_wait(&m->q, &mutex_ops, m, &w, deadline, flags);
}

/* Let go of @m (its holder's part of unlock, without the owner check). */
static int mutex_release(struct mutex *m)
{
	uint64_t s = M_LOCKED;
	struct weft__waiter *w;

	set_owner(m, NULL);
	/* release: pairs with the acquire of the next lock. The last touch
	 * of @m when nobody waits. */
	if (atomic_compare_exchange_strong_explicit(&m->q.word, &s, 0,
						    memory_order_release,
						    memory_order_relaxed))
		return 0;

	s = weft__waitq_lock(&m->q);
	if (!(s & M_LOCKED)) {
		weft__waitq_unlock(&m->q, s);
		return -EPERM;
	}
	w = weft__wlist_pop(&m->q.list);
	if (!w) {
		weft__waitq_unlock(&m->q, 0);
		return 0;
	}
	/* Hand over: @m stays locked, now by @w. */
	set_owner(m, w->data);
	s = M_LOCKED;
	if (!weft__wlist_empty(&m->q.list))
		s |= M_WAITERS;
	weft__waitq_unlock(&m->q, s);
	weft__waitq_wake(w);
	return 0;
}

WEFT_API int weft_mutex_init(struct weft_mutex *pm)
{
	struct mutex *m = mx(pm);

	if (!pm)
		return -EINVAL;
	weft__waitq_init(&m->q, 0);
	atomic_init(&m->owner, NULL);
	return 0;
}

WEFT_API int weft_mutex_fini(struct weft_mutex *pm)
{
	struct mutex *m = mx(pm);
	uint64_t s;

	if (!pm)
		return -EINVAL;
	s = weft__waitq_lock(&m->q);
	weft__waitq_unlock(&m->q, s);
	return s & M_LOCKED ? -EBUSY : 0;
}

WEFT_API int weft_mutex_lock(struct weft_mutex *pm)
{
	if (!pm)
		return -EINVAL;
	return mutex_lock(mx(pm), WEFT_FOREVER, WEFT__WAIT_CANCELLABLE);
}

WEFT_API int weft_mutex_lock_until(struct weft_mutex *pm, int64_t deadline)
{
	if (!pm)
		return -EINVAL;
	return mutex_lock(mx(pm), deadline, WEFT__WAIT_CANCELLABLE);
}

WEFT_API int weft_mutex_trylock(struct weft_mutex *pm)
{
	struct mutex *m = mx(pm);
	uint64_t s = 0;

	if (!pm)
		return -EINVAL;
	/* acquire: as in mutex_lock(). */
	if (!atomic_compare_exchange_strong_explicit(&m->q.word, &s, M_LOCKED,
						     memory_order_acquire,
						     memory_order_relaxed))
		return -EBUSY;
	set_owner(m, self_token());
	return 0;
}

WEFT_API int weft_mutex_unlock(struct weft_mutex *pm)
{
	struct mutex *m = mx(pm);

	if (!pm)
		return -EINVAL;
	check_owner(m, "weft_mutex_unlock");
	return mutex_release(m);
}

/* ---- condition variable ----------------------------------------------- */

struct cond_wait {
	struct cond *c;
	struct mutex *m;
	bool released; /* the mutex was let go (armed() ran) */
};

static struct weft__wlist *cond_arm(void *obj, struct weft__waiter *w,
				    uint64_t *state)
{
	struct cond_wait *cw = obj;

	(void)w;
	(void)state;
	return &cw->c->q.list; /* always waits: a signal is not a state */
}

static void cond_armed(void *obj)
{
	struct cond_wait *cw = obj;

	cw->released = true;
	mutex_release(cw->m);
}

static const struct weft__waitq_ops cond_ops = {
	.arm = cond_arm,
	.armed = cond_armed,
};

WEFT_API int weft_cond_init(struct weft_cond *pc)
{
	if (!pc)
		return -EINVAL;
	weft__waitq_init(&cv(pc)->q, 0);
	return 0;
}

WEFT_API int weft_cond_fini(struct weft_cond *pc)
{
	struct cond *c = cv(pc);
	uint64_t s;
	bool busy;

	if (!pc)
		return -EINVAL;
	s = weft__waitq_lock(&c->q);
	busy = !weft__wlist_empty(&c->q.list);
	weft__waitq_unlock(&c->q, s);
	return busy ? -EBUSY : 0;
}

WEFT_API int weft_cond_wait_until(struct weft_cond *pc, struct weft_mutex *pm,
				  int64_t deadline)
{
	struct cond_wait cw = {.c = cv(pc), .m = mx(pm)};
	struct weft__waiter w;
	int r;

	if (!pc || !pm)
		return -EINVAL;
	check_owner(cw.m, "weft_cond_wait");
	w.data = NULL;
	r = weft__waitq_wait(&cw.c->q, &cond_ops, &cw, &w, deadline,
			     WEFT__WAIT_CANCELLABLE);
	/* Not released when a cancel was pending before the wait began:
	 * the caller still holds the mutex. */
	if (cw.released)
		mutex_lock(cw.m, WEFT_FOREVER, 0); /* cannot fail */
	return r;
}

WEFT_API int weft_cond_wait(struct weft_cond *c, struct weft_mutex *m)
{
	return weft_cond_wait_until(c, m, WEFT_FOREVER);
}

WEFT_API int weft_cond_signal(struct weft_cond *pc)
{
	struct cond *c = cv(pc);
	struct weft__waiter *w;
	uint64_t s;

	if (!pc)
		return -EINVAL;
	s = weft__waitq_lock(&c->q);
	w = weft__wlist_pop(&c->q.list);
	weft__waitq_unlock(&c->q, s);
	if (w)
		weft__waitq_wake(w);
	return 0;
}

WEFT_API int weft_cond_broadcast(struct weft_cond *pc)
{
	struct cond *c = cv(pc);
	struct weft__waiter *first;
	uint64_t s;

	if (!pc)
		return -EINVAL;
	s = weft__waitq_lock(&c->q);
	first = weft__wlist_take_all(&c->q.list);
	weft__waitq_unlock(&c->q, s);
	weft__waitq_wake_all(first);
	return 0;
}
