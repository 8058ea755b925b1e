/*
 * sync/sem.c - the task-aware counting semaphore (weft/sync.h).
 *
 * The state word (waitq.h) holds the free permits, in units of S_ONE, and
 * S_WAITERS. Invariant, under the lock bit: S_WAITERS is set exactly when
 * the list of acquirers is not empty, and then no permit is free (a
 * release hands its permits to waiters before it counts any). So the
 * lock-free fast paths are simple: an acquire CASes a permit away while
 * the word shows permits and no lock; a release CASes permits in while it
 * shows neither waiters nor the lock. Waiters are served in FIFO order
 * and a newcomer cannot take a permit from under them, since permits are
 * only ever free when nobody waits.
 *
 * Threads: any.
 */
#include <errno.h>

#include "weft/sync.h"
#include "sync/waitq.h"

enum {
	S_WAITERS = 1u << 1,
	S_SHIFT = 2,
};
#define S_ONE ((uint64_t)1 << S_SHIFT)

struct sem {
	struct weft__waitq q; /* word: permits * S_ONE | S_WAITERS */
};

_Static_assert(sizeof(struct sem) <= sizeof(struct weft_sem),
	       "struct weft_sem is too small for its private layout");
_Static_assert(_Alignof(struct sem) <= _Alignof(struct weft_sem),
	       "struct weft_sem is not aligned enough");

static inline struct sem *sm(struct weft_sem *s)
{
	return (struct sem *)(void *)s;
}

static inline uint64_t permits(uint64_t s)
{
	return s >> S_SHIFT;
}

/* One CAS attempt loop at a free permit. 1 taken, 0 none free, -1 the
 * lock bit is held (ask under the lock). */
static int take_fast(struct sem *sem)
{
	uint64_t s = atomic_load_explicit(&sem->q.word, memory_order_relaxed);

	for (;;) {
		if (s & WEFT__WQ_LOCK)
			return -1;
		if (permits(s) == 0)
			return 0;
		/* acquire: pairs with the release that added the permit. */
		if (atomic_compare_exchange_weak_explicit(
			    &sem->q.word, &s, s - S_ONE, memory_order_acquire,
			    memory_order_relaxed))
			return 1;
	}
}

static struct weft__wlist *sem_arm(void *obj, struct weft__waiter *w,
				   uint64_t *state)
{
	struct sem *sem = obj;

	(void)w;
	if (permits(*state)) {
		*state -= S_ONE;
		return NULL;
	}
	*state |= S_WAITERS;
	return &sem->q.list;
}

static void sem_removed(void *obj, struct weft__wlist *l, uint64_t *state)
{
	(void)obj;
	if (weft__wlist_empty(l))
		*state &= ~(uint64_t)S_WAITERS;
}

static const struct weft__waitq_ops sem_ops = {
	.arm = sem_arm,
	.removed = sem_removed,
};

WEFT_API int weft_sem_init(struct weft_sem *ps, unsigned count)
{
	if (!ps || count > WEFT_SEM_MAX)
		return -EINVAL;
	weft__waitq_init(&sm(ps)->q, (uint64_t)count << S_SHIFT);
	return 0;
}

WEFT_API int weft_sem_fini(struct weft_sem *ps)
{
	struct sem *sem = sm(ps);
	uint64_t s;

	if (!ps)
		return -EINVAL;
	s = weft__waitq_lock(&sem->q);
	weft__waitq_unlock(&sem->q, s);
	return s & S_WAITERS ? -EBUSY : 0;
}

WEFT_API int weft_sem_acquire_until(struct weft_sem *ps, int64_t deadline)
{
	struct weft__waiter w;

	if (!ps)
		return -EINVAL;
	if (take_fast(sm(ps)) == 1)
		return 0;
	w.data = NULL;
	return weft__waitq_wait(&sm(ps)->q, &sem_ops, sm(ps), &w, deadline,
				WEFT__WAIT_CANCELLABLE);
}

WEFT_API int weft_sem_acquire(struct weft_sem *s)
{
	return weft_sem_acquire_until(s, WEFT_FOREVER);
}

WEFT_API int weft_sem_try_acquire(struct weft_sem *ps)
{
	struct sem *sem = sm(ps);
	uint64_t s;
	int r;

	if (!ps)
		return -EINVAL;
	r = take_fast(sem);
	if (r >= 0)
		return r ? 0 : -EAGAIN;
	s = weft__waitq_lock(&sem->q);
	r = permits(s) ? 0 : -EAGAIN;
	weft__waitq_unlock(&sem->q, r ? s : s - S_ONE);
	return r;
}

WEFT_API int weft_sem_release(struct weft_sem *ps, unsigned n)
{
	struct sem *sem = sm(ps);
	struct weft__waiter *first = NULL, **tail = &first;
	uint64_t s;

	if (!ps)
		return -EINVAL;
	if (n == 0)
		return 0;
	s = atomic_load_explicit(&sem->q.word, memory_order_relaxed);
	while (!(s & (WEFT__WQ_LOCK | S_WAITERS))) {
		if (n > WEFT_SEM_MAX - permits(s))
			return -EOVERFLOW;
		/* release: pairs with the acquire in take_fast(). The last
		 * touch of the semaphore. */
		if (atomic_compare_exchange_weak_explicit(
			    &sem->q.word, &s, s + n * S_ONE,
			    memory_order_release, memory_order_relaxed))
			return 0;
	}

	s = weft__waitq_lock(&sem->q);
	if (n > WEFT_SEM_MAX - permits(s)) {
		weft__waitq_unlock(&sem->q, s);
		return -EOVERFLOW;
	}
	/* Waiters first, oldest first: with any queued, no permit is free. */
	while (n && (*tail = weft__wlist_pop(&sem->q.list))) {
		tail = &(*tail)->next;
		n--;
	}
	*tail = NULL;
	if (weft__wlist_empty(&sem->q.list))
		s &= ~(uint64_t)S_WAITERS;
	s += n * S_ONE;
	weft__waitq_unlock(&sem->q, s);
	weft__waitq_wake_all(first);
	return 0;
}

WEFT_API int weft_sem_value(struct weft_sem *ps)
{
	if (!ps)
		return -EINVAL;
	return (int)permits(weft__waitq_peek(&sm(ps)->q));
}
