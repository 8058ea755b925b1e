/*
 * core/group.c - task groups (weft/group.h).
 *
 * A group keeps a reference to each child's future (until destroy) and
 * hangs a node, stored in the child's future (its extra bytes), on the
 * child's waiter list. The node's firing counts the child out and records
 * the first failure; the last one wakes the waiters. Waiters are woken
 * under the group's lock and disarm under it (wait.h), and the group is
 * heap memory that outlives every node (nodes hold a group reference).
 *
 * Cancelling the children calls weft_future_cancel() on each; it may
 * complete a queued child on the spot, which fires its node and takes the
 * group lock, so cancel never runs under that lock: it works on a snapshot
 * of the children taken under the lock, with a reference on each.
 *
 * Threads: any thread may spawn, cancel and wait; nodes fire on whichever
 * thread completes a child.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "weft/group.h"
#include "core/future.h"
#include "core/pool.h"
#include "core/wait.h"
#include "fiber/fiber.h"
#include "util/spinlock.h"

struct weft_group {
	struct weft_pool *pool;
	unsigned flags;
	int64_t deadline;
	_Atomic size_t refs;   /* the owner + one per unfired node */
	_Atomic uint32_t lock; /* protects everything below */
	struct weft_future **kids;
	size_t nkids, cap;
	size_t pending; /* children not finished */
	int first_err;	/* first failure, 0 if none */
	bool cancelled;
	int cancel_reason; /* -ECANCELED or -ETIMEDOUT */
	struct weft__waiter *waiters; /* linked through next */
	/* The group's deadline on the pool's timer, holding a reference to
	 * the group while armed. */
	struct weft__timer timer;
};

struct kid_node {
	struct weft__wnode node;
	struct weft_group *g;
};

static void group_unref(struct weft_group *g)
{
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) !=
	    1)
		return;
	for (size_t i = 0; i < g->nkids; i++)
		weft_future_unref(g->kids[i]);
	free(g->kids);
	free(g);
}

/* Cancel every child not finished; @reason becomes the wait's result
 * unless a failure came first. */
static void cancel_all(struct weft_group *g, int reason)
{
	struct weft_future **snap = NULL;
	size_t n = 0;

	weft__spin_lock(&g->lock);
	if (!g->cancelled) {
		g->cancelled = true;
		g->cancel_reason = reason;
	}
	if (g->nkids) {
		snap = malloc(g->nkids * sizeof(*snap));
		if (snap) {
			for (size_t i = 0; i < g->nkids; i++)
				if (!weft__future_is_complete(atomic_load(
					    &g->kids[i]->state))) {
					weft_future_ref(g->kids[i]);
					snap[n++] = g->kids[i];
				}
		}
	}
	weft__spin_unlock(&g->lock);
	if (!snap && g->nkids) {
		/* No memory for a snapshot: cancel under a reference to the
		 * group by index; kids[] only grows while we are not holding
		 * the lock, and spawning is refused now, so it is stable. */
		for (size_t i = 0; i < g->nkids; i++)
			weft_future_cancel(g->kids[i]);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		weft_future_cancel(snap[i]);
		weft_future_unref(snap[i]);
	}
	free(snap);
}

static void kid_fire(struct weft__wnode *node, struct weft_future *f)
{
	struct weft_group *g = ((struct kid_node *)node)->g;
	bool cancel = false;

	weft__spin_lock(&g->lock);
	if (f->err && f->err != -ECANCELED && !g->first_err) {
		g->first_err = f->err;
		cancel = !(g->flags & WEFT_GROUP_COLLECT);
	}
	if (--g->pending == 0) {
		for (struct weft__waiter *w = g->waiters, *next; w; w = next) {
			next = w->next;
			weft__waiter_wake(w, W_WOKEN);
		}
		g->waiters = NULL;
	}
	weft__spin_unlock(&g->lock);
	if (cancel)
		cancel_all(g, -ECANCELED);
	group_unref(g);
}

/* The deadline passed (timer thread, under its lock): cancel the rest. */
static void deadline_fire(struct weft__timer *t)
{
	struct weft_group *g = (struct weft_group *)((char *)t -
						     offsetof(struct weft_group,
							      timer));

	cancel_all(g, -ETIMEDOUT);
	group_unref(g); /* the timer's reference */
}

WEFT_API int weft_group_create(struct weft_pool *pool, unsigned flags,
			       int64_t deadline, struct weft_group **out)
{
	struct weft_group *g;

	if (out)
		*out = NULL;
	if (!pool || !out || (flags & ~(unsigned)WEFT_GROUP_COLLECT))
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->pool = pool;
	g->flags = flags;
	g->deadline = deadline;
	atomic_init(&g->refs, 1);
	atomic_init(&g->lock, 0);
	g->timer.idx = SIZE_MAX;
	if (deadline != WEFT_FOREVER) {
		int err;

		if (deadline <= weft_now()) {
			g->cancelled = true; /* born expired */
			g->cancel_reason = -ETIMEDOUT;
		} else {
			g->timer.deadline = deadline;
			g->timer.fire = deadline_fire;
			atomic_store(&g->refs, 2); /* + the timer's */
			err = weft__timer_add(pool, &g->timer);
			if (err) {
				free(g);
				return err;
			}
		}
	}
	*out = g;
	return 0;
}

WEFT_API int weft_group_spawn(struct weft_group *g, weft_task_fn fn,
			      void *arg, struct weft_future **out)
{
	struct weft_future *f;
	struct kid_node *kn;
	int err;

	if (out)
		*out = NULL;
	if (!g || !fn)
		return -EINVAL;
	f = weft__future_new(K_FN, (void *)fn, arg, sizeof(*kn));
	if (!f)
		return -ENOMEM;
	kn = weft__future_extra(f);
	kn->node.fire = kid_fire;
	kn->g = g;

	weft__spin_lock(&g->lock);
	if (g->cancelled) {
		weft__spin_unlock(&g->lock);
		weft_future_unref(f);
		return -ECANCELED;
	}
	if (g->nkids == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 8;
		struct weft_future **k = realloc(g->kids, cap * sizeof(*k));

		if (!k) {
			weft__spin_unlock(&g->lock);
			weft_future_unref(f);
			return -ENOMEM;
		}
		g->kids = k;
		g->cap = cap;
	}
	g->kids[g->nkids++] = f; /* the group's reference (the creator's) */
	g->pending++;
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	weft__future_add_waiter(f, &kn->node);
	weft__spin_unlock(&g->lock);

	err = weft__pool_push(g->pool, f);
	if (err) {
		/* Never queued: complete it by hand, which fires the node. */
		weft__future_claim(f, F_RUNNING);
		weft__future_complete(f, err, NULL);
		return err;
	}
	if (out) {
		weft_future_ref(f);
		*out = f;
	}
	return 0;
}

WEFT_API void weft_group_cancel(struct weft_group *g)
{
	if (g)
		cancel_all(g, -ECANCELED);
}

static bool group_arm(struct weft__waiter *w, void *src)
{
	struct weft_group *g = src;
	bool armed;

	weft__spin_lock(&g->lock);
	armed = g->pending > 0;
	if (armed) {
		w->next = g->waiters;
		w->prev = NULL;
		if (g->waiters)
			g->waiters->prev = w;
		g->waiters = w;
	}
	weft__spin_unlock(&g->lock);
	return armed;
}

static bool group_disarm(struct weft__waiter *w, void *src)
{
	struct weft_group *g = src;

	weft__spin_lock(&g->lock);
	/* Still listed unless the last child took the whole list. */
	for (struct weft__waiter **p = &g->waiters; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	weft__spin_unlock(&g->lock);
	return true;
}

static const struct weft__wait_ops group_ops = {
	.arm = group_arm,
	.disarm = group_disarm,
};

/* Whether the calling task is one of @g's children. */
static bool is_own_child(struct weft_group *g)
{
	struct weft__fiber *self = weft__fiber_self();
	bool found = false;

	if (!self || !self->current)
		return false;
	weft__spin_lock(&g->lock);
	for (size_t i = 0; i < g->nkids && !found; i++)
		for (struct weft_future *t = self->current; t;
		     t = t->waiting_in)
			if (t == g->kids[i])
				found = true;
	weft__spin_unlock(&g->lock);
	return found;
}

/* Wait for every child, not cancellable, no deadline. */
static void wait_all(struct weft_group *g)
{
	struct weft__waiter w;

	weft__wait(&w, &group_ops, g, WEFT_FOREVER, 0);
}

static int outcome(struct weft_group *g)
{
	int r;

	weft__spin_lock(&g->lock);
	r = g->first_err ? g->first_err : g->cancelled ? g->cancel_reason : 0;
	weft__spin_unlock(&g->lock);
	return r;
}

WEFT_API int weft_group_wait(struct weft_group *g, int64_t deadline)
{
	struct weft__waiter w;
	int64_t until;
	int r;

	if (!g)
		return -EINVAL;
	if (is_own_child(g))
		return -EDEADLK;
	until = deadline < g->deadline ? deadline : g->deadline;
	r = weft__wait(&w, &group_ops, g, until, WEFT__WAIT_CANCELLABLE);
	if (r == -ETIMEDOUT) {
		if (deadline < g->deadline || weft_now() < g->deadline)
			return -ETIMEDOUT; /* the caller's own deadline */
		cancel_all(g, -ETIMEDOUT);
		wait_all(g);
	} else if (r == -ECANCELED) {
		/* The waiting task was cancelled: so are its children. */
		cancel_all(g, -ECANCELED);
		wait_all(g);
		return -ECANCELED;
	}
	return outcome(g);
}

WEFT_API void weft_group_destroy(struct weft_group *g)
{
	if (!g)
		return;
	if (g->timer.fire && weft__timer_del(g->pool, &g->timer))
		group_unref(g); /* the timer's reference: it will not fire */
	cancel_all(g, -ECANCELED);
	wait_all(g);
	group_unref(g);
}
