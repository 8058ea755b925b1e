/*
 * sync/event.c - events and wait groups (weft/sync.h): a state that
 * waiters wait to see, kept in the waitq's word (waitq.h) next to its lock
 * bit.
 *
 * Event: E_SET, E_WAITERS and the constant E_AUTO. Invariant under the
 * lock bit: E_WAITERS is set exactly when the list is not empty, and then
 * E_SET is clear (a set with waiters lets them through instead: all of
 * them, or one for an auto-reset event, which then stays clear). So set()
 * with nobody waiting is one CAS, a wait on a set event is one load (one
 * CAS to consume it, auto reset), and only the transitions that involve
 * waiters take the lock.
 *
 * Wait group: the count, in units of G_ONE, and G_WAITERS (the list is not
 * empty). The count moves by CAS except for the step to zero while
 * waiters are queued, which takes the lock, so that reaching zero and
 * letting the waiters through are one step: the unlock that publishes
 * zero is the last touch, and a waiter that returns may free the group.
 *
 * Threads: any.
 */
#include <errno.h>

#include "weft/sync.h"
#include "sync/waitq.h"

/* ---- event ------------------------------------------------------------ */

enum {
	E_SET = 1u << 1,
	E_WAITERS = 1u << 2,
	E_AUTO = 1u << 3,
};

struct event {
	struct weft__waitq q; /* word: E_SET | E_WAITERS | E_AUTO */
};

_Static_assert(sizeof(struct event) <= sizeof(struct weft_event),
	       "struct weft_event is too small for its private layout");
_Static_assert(_Alignof(struct event) <= _Alignof(struct weft_event),
	       "struct weft_event is not aligned enough");

static inline struct event *ev_of(struct weft_event *e)
{
	return (struct event *)(void *)e;
}

static void waiters_removed(void *obj, struct weft__wlist *l, uint64_t *state)
{
	(void)obj;
	if (weft__wlist_empty(l))
		*state &= ~(uint64_t)E_WAITERS; /* == G_WAITERS */
}

/* Consume or observe a set event without waiting: 1 went through, 0 not
 * set, -1 the lock bit is held (ask under the lock). */
static int event_take_fast(struct event *e)
{
	uint64_t s = atomic_load_explicit(&e->q.word, memory_order_acquire);

	for (;;) {
		if (!(s & E_SET))
			return 0;
		if (!(s & E_AUTO))
			return 1; /* acquire load: sees what the setter did */
		if (s & WEFT__WQ_LOCK)
			return -1;
		/* acquire: pairs with the release in weft_event_set(). */
		if (atomic_compare_exchange_weak_explicit(
			    &e->q.word, &s, s & ~(uint64_t)E_SET,
			    memory_order_acquire, memory_order_acquire))
			return 1;
	}
}

static struct weft__wlist *event_arm(void *obj, struct weft__waiter *w,
				     uint64_t *state)
{
	struct event *e = obj;

	(void)w;
	if (*state & E_SET) {
		if (*state & E_AUTO)
			*state &= ~(uint64_t)E_SET;
		return NULL;
	}
	*state |= E_WAITERS;
	return &e->q.list;
}

static const struct weft__waitq_ops event_ops = {
	.arm = event_arm,
	.removed = waiters_removed,
};

WEFT_API int weft_event_init(struct weft_event *pe, unsigned flags)
{
	const unsigned known = WEFT_EVENT_AUTO_RESET | WEFT_EVENT_SET;
	uint64_t s = 0;

	if (!pe || (flags & ~known))
		return -EINVAL;
	if (flags & WEFT_EVENT_AUTO_RESET)
		s |= E_AUTO;
	if (flags & WEFT_EVENT_SET)
		s |= E_SET;
	weft__waitq_init(&ev_of(pe)->q, s);
	return 0;
}

WEFT_API int weft_event_fini(struct weft_event *pe)
{
	struct event *e = ev_of(pe);
	uint64_t s;

	if (!pe)
		return -EINVAL;
	s = weft__waitq_lock(&e->q);
	weft__waitq_unlock(&e->q, s);
	return s & E_WAITERS ? -EBUSY : 0;
}

WEFT_API int weft_event_set(struct weft_event *pe)
{
	struct event *e = ev_of(pe);
	struct weft__waiter *first;
	uint64_t s;

	if (!pe)
		return -EINVAL;
	s = atomic_load_explicit(&e->q.word, memory_order_relaxed);
	for (;;) {
		if (s & E_SET)
			return 0;
		if (s & (WEFT__WQ_LOCK | E_WAITERS))
			break;
		/* release: pairs with the acquire of the waits. The last
		 * touch. */
		if (atomic_compare_exchange_weak_explicit(
			    &e->q.word, &s, s | E_SET, memory_order_release,
			    memory_order_relaxed))
			return 0;
	}

	s = weft__waitq_lock(&e->q);
	if (s & E_SET) {
		first = NULL;
	} else if (s & E_AUTO) {
		first = weft__wlist_pop(&e->q.list);
		if (first)
			first->next = NULL;
		else
			s |= E_SET;
		if (weft__wlist_empty(&e->q.list))
			s &= ~(uint64_t)E_WAITERS;
	} else {
		first = weft__wlist_take_all(&e->q.list);
		s = (s & ~(uint64_t)E_WAITERS) | E_SET;
	}
	weft__waitq_unlock(&e->q, s);
	weft__waitq_wake_all(first);
	return 0;
}

WEFT_API int weft_event_reset(struct weft_event *pe)
{
	struct event *e = ev_of(pe);
	uint64_t s;

	if (!pe)
		return -EINVAL;
	s = atomic_load_explicit(&e->q.word, memory_order_relaxed);
	while ((s & E_SET) && !(s & WEFT__WQ_LOCK)) {
		/* relaxed: clearing publishes nothing. */
		if (atomic_compare_exchange_weak_explicit(
			    &e->q.word, &s, s & ~(uint64_t)E_SET,
			    memory_order_relaxed, memory_order_relaxed))
			return 0;
	}
	if (!(s & E_SET))
		return 0;
	s = weft__waitq_lock(&e->q);
	weft__waitq_unlock(&e->q, s & ~(uint64_t)E_SET);
	return 0;
}

WEFT_API int weft_event_wait_until(struct weft_event *pe, int64_t deadline)
{
	struct weft__waiter w;

	if (!pe)
		return -EINVAL;
	if (event_take_fast(ev_of(pe)) == 1)
		return 0;
	w.data = NULL;
	return weft__waitq_wait(&ev_of(pe)->q, &event_ops, ev_of(pe), &w,
				deadline, WEFT__WAIT_CANCELLABLE);
}

WEFT_API int weft_event_wait(struct weft_event *ev)
{
	return weft_event_wait_until(ev, WEFT_FOREVER);
}

WEFT_API int weft_event_try_wait(struct weft_event *pe)
{
	struct event *e = ev_of(pe);
	uint64_t s;
	int r;

	if (!pe)
		return -EINVAL;
	r = event_take_fast(e);
	if (r >= 0)
		return r ? 0 : -EAGAIN;
	s = weft__waitq_lock(&e->q);
	r = s & E_SET ? 0 : -EAGAIN;
	if (r == 0)
		s &= ~(uint64_t)E_SET; /* only auto reset gets here */
	weft__waitq_unlock(&e->q, s);
	return r;
}

WEFT_API bool weft_event_is_set(struct weft_event *pe)
{
	return pe && (weft__waitq_peek(&ev_of(pe)->q) & E_SET);
}

/* ---- wait group ------------------------------------------------------- */

enum {
	G_WAITERS = E_WAITERS, /* shares waiters_removed() */
	G_SHIFT = 3,
};
#define G_ONE ((uint64_t)1 << G_SHIFT)

_Static_assert(G_ONE > (G_WAITERS | WEFT__WQ_LOCK), "count overlaps flags");
_Static_assert(WEFT_WGROUP_MAX <= (int64_t)(UINT64_MAX >> G_SHIFT),
	       "WEFT_WGROUP_MAX does not fit the word");

struct wgroup {
	struct weft__waitq q; /* word: count * G_ONE | G_WAITERS */
};

_Static_assert(sizeof(struct wgroup) <= sizeof(struct weft_wgroup),
	       "struct weft_wgroup is too small for its private layout");
_Static_assert(_Alignof(struct wgroup) <= _Alignof(struct weft_wgroup),
	       "struct weft_wgroup is not aligned enough");

static inline struct wgroup *wg_of(struct weft_wgroup *g)
{
	return (struct wgroup *)(void *)g;
}

static inline int64_t count_of(uint64_t s)
{
	return (int64_t)(s >> G_SHIFT);
}

/* @c + @n, or -1 when out of [0, WEFT_WGROUP_MAX]. */
static int64_t count_add(int64_t c, int64_t n)
{
	if (n < 0 ? n < -c : n > WEFT_WGROUP_MAX - c)
		return -1;
	return c + n;
}

static struct weft__wlist *wgroup_arm(void *obj, struct weft__waiter *w,
				      uint64_t *state)
{
	struct wgroup *g = obj;

	(void)w;
	if (count_of(*state) == 0)
		return NULL;
	*state |= G_WAITERS;
	return &g->q.list;
}

static const struct weft__waitq_ops wgroup_ops = {
	.arm = wgroup_arm,
	.removed = waiters_removed,
};

WEFT_API int weft_wgroup_init(struct weft_wgroup *pg)
{
	if (!pg)
		return -EINVAL;
	weft__waitq_init(&wg_of(pg)->q, 0);
	return 0;
}

WEFT_API int weft_wgroup_fini(struct weft_wgroup *pg)
{
	struct wgroup *g = wg_of(pg);
	uint64_t s;

	if (!pg)
		return -EINVAL;
	s = weft__waitq_lock(&g->q);
	weft__waitq_unlock(&g->q, s);
	return s & G_WAITERS ? -EBUSY : 0;
}

WEFT_API int weft_wgroup_add(struct weft_wgroup *pg, int64_t n)
{
	struct wgroup *g = wg_of(pg);
	struct weft__waiter *first = NULL;
	uint64_t s;
	int64_t c;

	if (!pg)
		return -EINVAL;
	s = atomic_load_explicit(&g->q.word, memory_order_relaxed);
	for (;;) {
		if (s & WEFT__WQ_LOCK)
			break;
		c = count_add(count_of(s), n);
		if (c < 0)
			return -EINVAL;
		if (c == 0 && (s & G_WAITERS))
			break;
		/* acq_rel: release publishes the work done before a done()
		 * to the waiters' acquire; acquire orders an add() before
		 * the work it announces. The last touch. */
		if (atomic_compare_exchange_weak_explicit(
			    &g->q.word, &s,
			    ((uint64_t)c << G_SHIFT) | (s & G_WAITERS),
			    memory_order_acq_rel, memory_order_relaxed))
			return 0;
	}

	s = weft__waitq_lock(&g->q);
	c = count_add(count_of(s), n);
	if (c < 0) {
		weft__waitq_unlock(&g->q, s);
		return -EINVAL;
	}
	if (c == 0) {
		first = weft__wlist_take_all(&g->q.list);
		s = 0;
	} else {
		s = ((uint64_t)c << G_SHIFT) | (s & G_WAITERS);
	}
	weft__waitq_unlock(&g->q, s);
	weft__waitq_wake_all(first);
	return 0;
}

WEFT_API int weft_wgroup_done(struct weft_wgroup *wg)
{
	return weft_wgroup_add(wg, -1);
}

WEFT_API int weft_wgroup_wait_until(struct weft_wgroup *pg, int64_t deadline)
{
	struct wgroup *g = wg_of(pg);
	struct weft__waiter w;

	if (!pg)
		return -EINVAL;
	/* acquire: pairs with the release of the last done(). */
	if (count_of(atomic_load_explicit(&g->q.word, memory_order_acquire)) ==
	    0)
		return 0;
	w.data = NULL;
	return weft__waitq_wait(&g->q, &wgroup_ops, g, &w, deadline,
				WEFT__WAIT_CANCELLABLE);
}

WEFT_API int weft_wgroup_wait(struct weft_wgroup *wg)
{
	return weft_wgroup_wait_until(wg, WEFT_FOREVER);
}

WEFT_API int64_t weft_wgroup_count(struct weft_wgroup *pg)
{
	if (!pg)
		return -EINVAL;
	return count_of(weft__waitq_peek(&wg_of(pg)->q));
}
