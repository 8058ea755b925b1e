/*
 * core/combine.c - continuations and the many-future waits: then, when_all,
 * when_any, wait_all (return at the first failure), as_completed.
 *
 * Each combinator hangs one node on every input's waiter list. A node fires
 * exactly once, when its input completes (future.c), so the combinator's
 * state is refcounted by its nodes plus its owner and is freed by whichever
 * of them lets go last; nothing is ever unhooked from a list. The inputs are
 * referenced until the state is freed, so a state outlives an early return
 * (a timeout, a first failure) by as long as its slowest input runs.
 *
 * Threads: nodes fire on whatever thread completes an input; the owner side
 * (wait_all, as_completed_next) runs on the caller's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/future.h"
#include "core/pool.h"
#include "core/wait.h"
#include "util/spinlock.h"

static int check_inputs(struct weft_future *const *futs, size_t n)
{
	if (!futs && n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!futs[i])
			return -EINVAL;
	return 0;
}

/* A combinator's node on one input: which combinator, which input. */
struct input_node {
	struct weft__wnode node;
	void *owner;
	size_t index;
};

/*
 * Take a reference to each of the @n inputs into @held, then hang
 * @nodes[i] (firing @fire, for @owner) on input i. An input that has
 * already completed fires at once, on the calling thread, so the owner's
 * count of unfired nodes must already include all @n.
 */
static void watch_inputs(struct weft_future *const *futs, size_t n,
			 struct weft_future **held, struct input_node *nodes,
			 void *owner, weft__wnode_fire fire)
{
	for (size_t i = 0; i < n; i++) {
		weft_future_ref(futs[i]);
		held[i] = futs[i];
		nodes[i].node.fire = fire;
		nodes[i].owner = owner;
		nodes[i].index = i;
	}
	for (size_t i = 0; i < n; i++)
		if (!weft__future_add_waiter(futs[i], &nodes[i].node))
			fire(&nodes[i].node, futs[i]);
}

/* ---- then --------------------------------------------------------------- */

struct then_node {
	struct weft__wnode node;
	struct weft_future *cont;
};

static void then_fire(struct weft__wnode *n, struct weft_future *antecedent)
{
	struct weft_future *c = ((struct then_node *)n)->cont;
	uint32_t s = F_WAITING;

	(void)antecedent;
	/* Unless cancelled meanwhile, the continuation becomes runnable. */
	if (atomic_compare_exchange_strong(&c->state, &s, F_QUEUED) &&
	    weft__pool_push(c->pool, c) != 0 && weft__future_claim(c, F_RUNNING))
		weft__future_complete(c, -ESHUTDOWN, NULL);
	weft_future_unref(c); /* the node's reference */
}

static bool pool_accepts(struct weft_pool *pool)
{
	uint32_t s = atomic_load(&pool->state);
	struct weft__worker *w;

	if (s == POOL_RUNNING)
		return true;
	w = weft__current_worker();
	return s != POOL_STOPPED && w && w->pool == pool;
}

WEFT_API int weft_future_then(struct weft_pool *pool, struct weft_future *f,
			      weft_then_fn fn, void *arg,
			      struct weft_future **out)
{
	struct weft_future *c;
	struct then_node *tn;

	if (out)
		*out = NULL;
	if (!pool || !f || !fn || !out)
		return -EINVAL;
	if (!pool_accepts(pool))
		return -ESHUTDOWN;
	c = weft__future_new(K_THEN, (void *)fn, arg, sizeof(*tn));
	if (!c)
		return -ENOMEM;
	c->pool = pool;
	weft_future_ref(f);
	c->arg2 = f;
	tn = weft__future_extra(c);
	tn->node.fire = then_fire;
	tn->cont = c;
	weft_future_ref(c); /* the node's */
	*out = c;
	if (!weft__future_add_waiter(f, &tn->node))
		then_fire(&tn->node, f);
	return 0;
}

/* ---- when_all / when_any ---------------------------------------------- */

struct group {
	_Atomic size_t remaining; /* inputs not yet fired, + 1 while setting up */
	_Atomic size_t winner;    /* when_any: the first index, or SIZE_MAX */
	bool any;
	size_t n;
	struct weft_future *out;
	struct weft_future **futs;
	struct input_node nodes[];
};

static void group_finish(struct group *g)
{
	if (!g->any) {
		int err = 0;

		/* Every input is complete: report the lowest-index failure. */
		for (size_t i = 0; i < g->n && !err; i++)
			err = g->futs[i]->err;
		weft__future_complete(g->out, err, NULL);
	}
	for (size_t i = 0; i < g->n; i++)
		weft_future_unref(g->futs[i]);
	weft_future_unref(g->out);
	free(g->futs);
	free(g);
}

static void group_release(struct group *g)
{
	/* acq_rel: the last one sees every input's outcome. */
	if (atomic_fetch_sub_explicit(&g->remaining, 1,
				      memory_order_acq_rel) == 1)
		group_finish(g);
}

static void group_fire(struct weft__wnode *n, struct weft_future *f)
{
	struct input_node *gn = (struct input_node *)n;
	struct group *g = gn->owner;
	size_t none = SIZE_MAX;

	(void)f;
	if (g->any && atomic_compare_exchange_strong(&g->winner, &none,
						     gn->index))
		weft__future_complete(g->out, 0,
				      (void *)(uintptr_t)gn->index);
	group_release(g);
}

static int group_create(struct weft_future *const *futs, size_t n, bool any,
			struct weft_future **out)
{
	struct group *g;

	if (out)
		*out = NULL;
	if (!out || check_inputs(futs, n) || (any && n == 0))
		return -EINVAL;
	g = calloc(1, sizeof(*g) + n * sizeof(g->nodes[0]));
	if (!g)
		return -ENOMEM;
	g->futs = malloc((n ? n : 1) * sizeof(*g->futs));
	g->out = weft__future_new(K_NONE, NULL, NULL, 0);
	if (!g->futs || !g->out) {
		free(g->futs);
		weft_future_unref(g->out);
		free(g);
		return -ENOMEM;
	}
	g->any = any;
	g->n = n;
	atomic_init(&g->remaining, n + 1);
	atomic_init(&g->winner, SIZE_MAX);
	weft_future_ref(g->out); /* the group's; the caller gets the other */
	*out = g->out;
	watch_inputs(futs, n, g->futs, g->nodes, g, group_fire);
	group_release(g); /* the set-up guard */
	return 0;
}

WEFT_API int weft_when_all(struct weft_future *const *futs, size_t n,
			   struct weft_future **out)
{
	return group_create(futs, n, false, out);
}

WEFT_API int weft_when_any(struct weft_future *const *futs, size_t n,
			   struct weft_future **out)
{
	return group_create(futs, n, true, out);
}

/* ---- as_completed and wait_all ---------------------------------------- */

struct weft_as_completed {
	_Atomic size_t refs; /* the owner + one per node not yet fired */
	_Atomic uint32_t lock; /* protects order[], ready and waiter */
	struct weft__waiter *waiter; /* the owner, while it waits */
	size_t ready;          /* indices in order[] */
	size_t taken;          /* owner only */
	size_t n;
	size_t *order;
	struct weft_future **futs;
	struct input_node nodes[];
};

static void ac_unref(struct weft_as_completed *it)
{
	if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) !=
	    1)
		return;
	for (size_t i = 0; i < it->n; i++)
		weft_future_unref(it->futs[i]);
	free(it->futs);
	free(it->order);
	free(it);
}

static void ac_fire(struct weft__wnode *n, struct weft_future *f)
{
	struct input_node *an = (struct input_node *)n;
	struct weft_as_completed *it = an->owner;

	(void)f;
	weft__spin_lock(&it->lock);
	it->order[it->ready++] = an->index;
	/* Woken under the lock, so the owner's disarm (under it too) never
	 * finds its waiter half-fired. */
	if (it->waiter) {
		weft__waiter_wake(it->waiter, W_WOKEN);
		it->waiter = NULL;
	}
	weft__spin_unlock(&it->lock);
	ac_unref(it);
}

/* The owner's wait for the next completion: a source for weft__wait(). */
static bool ac_arm(struct weft__waiter *w, void *src)
{
	struct weft_as_completed *it = src;
	bool armed;

	weft__spin_lock(&it->lock);
	armed = it->ready == it->taken;
	if (armed)
		it->waiter = w;
	weft__spin_unlock(&it->lock);
	return armed;
}

static bool ac_disarm(struct weft__waiter *w, void *src)
{
	struct weft_as_completed *it = src;

	weft__spin_lock(&it->lock);
	if (it->waiter == w)
		it->waiter = NULL;
	weft__spin_unlock(&it->lock);
	return true;
}

static const struct weft__wait_ops ac_ops = {
	.arm = ac_arm,
	.disarm = ac_disarm,
};

WEFT_API int weft_as_completed_create(struct weft_future *const *futs,
				      size_t n, struct weft_as_completed **out)
{
	struct weft_as_completed *it;

	if (out)
		*out = NULL;
	if (!out || check_inputs(futs, n))
		return -EINVAL;
	it = calloc(1, sizeof(*it) + n * sizeof(it->nodes[0]));
	if (!it)
		return -ENOMEM;
	it->order = malloc((n ? n : 1) * sizeof(*it->order));
	it->futs = malloc((n ? n : 1) * sizeof(*it->futs));
	if (!it->order || !it->futs) {
		free(it->order);
		free(it->futs);
		free(it);
		return -ENOMEM;
	}
	it->n = n;
	atomic_init(&it->refs, n + 1);
	watch_inputs(futs, n, it->futs, it->nodes, it, ac_fire);
	*out = it;
	return 0;
}

/* On a worker: refuse a wait on the caller itself, and (@run) run inline
 * every input whose task is still queued in its pool: awaited tasks, never
 * unrelated ones. */
static int ac_help(struct weft_as_completed *it, bool run)
{
	for (size_t i = 0; i < it->n; i++) {
		int r = weft__future_help(it->futs[i], run);

		if (r < 0)
			return r;
	}
	return 0;
}

WEFT_API int weft_as_completed_next(struct weft_as_completed *it,
				    int64_t deadline, size_t *index)
{
	int r;

	if (!it || !index)
		return -EINVAL;
	if (it->taken == it->n)
		return -ENOENT;
	/* Inputs still queued run here only for an unbounded wait: with a
	 * deadline the call must be able to return at it. */
	r = ac_help(it, deadline == WEFT_FOREVER);
	if (r < 0)
		return r;
	for (;;) {
		struct weft__waiter w;
		bool got = false;

		weft__spin_lock(&it->lock);
		if (it->ready > it->taken) {
			*index = it->order[it->taken++];
			got = true;
		}
		weft__spin_unlock(&it->lock);
		if (got)
			return 0;
		r = weft__wait(&w, &ac_ops, it, deadline,
			       WEFT__WAIT_CANCELLABLE);
		if (r)
			return r;
	}
}

WEFT_API void weft_as_completed_destroy(struct weft_as_completed *it)
{
	if (it)
		ac_unref(it);
}

WEFT_API int weft_future_wait_all(struct weft_future *const *futs, size_t n,
				  int64_t deadline, size_t *failed)
{
	struct weft_as_completed *it;
	size_t idx;
	int r;

	if (failed)
		*failed = SIZE_MAX;
	r = weft_as_completed_create(futs, n, &it);
	if (r)
		return r;
	for (;;) {
		int err;

		r = weft_as_completed_next(it, deadline, &idx);
		if (r == -ENOENT) {
			r = 0; /* every input completed successfully */
			break;
		}
		if (r)
			break; /* -ETIMEDOUT, -EDEADLK */
		err = weft_future_error(futs[idx]);
		if (err) {
			/* The input's own code, whatever it is (-ENOENT
			 * included). */
			if (failed)
				*failed = idx;
			r = err;
			break;
		}
	}
	weft_as_completed_destroy(it);
	return r;
}
