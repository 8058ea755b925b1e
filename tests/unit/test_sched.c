/*
 * test_sched.c - scheduling behaviour that the API promises without a
 * call of its own: idle workers steal queued work from a busy one (and a
 * local submit wakes a parked worker to do so), and a worker busy with its
 * own deque still serves the inject queue (the fairness interval).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <threads.h>

#include <weft.h>

#include "helpers.h"

struct steal_probe {
	struct weft_pool *pool;
	atomic_int child_ran;
	atomic_int child_worker;
	atomic_int parent_worker;
	atomic_int parent_saw_child; /* 1: the child ran while we spun */
};

static int steal_child(void *arg, void **result)
{
	struct steal_probe *p = arg;

	(void)result;
	atomic_store(&p->child_worker, weft_worker_index());
	atomic_store(&p->child_ran, 1);
	return 0;
}

/* Queues the child on its own deque, then keeps its worker busy without
 * waiting through weft (so the child cannot run inline): only another
 * worker, stealing it, can run the child. */
static int steal_parent(void *arg, void **result)
{
	struct steal_probe *p = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;

	(void)result;
	atomic_store(&p->parent_worker, weft_worker_index());
	if (weft_submit(p->pool, steal_child, p, NULL) != 0)
		return -EIO;
	while (!atomic_load(&p->child_ran) && weft_now() < give_up)
		;
	atomic_store(&p->parent_saw_child, atomic_load(&p->child_ran));
	return 0;
}

Test(sched, idle_worker_steals_from_a_busy_one, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct steal_probe p = {.pool = pool};
	struct weft_future *f;

	cr_assert(pool);
	/* Let both workers park first, so the child's submit must wake one. */
	sleep_ms(50);
	cr_assert_eq(weft_submit(pool, steal_parent, &p, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_error(f), 0);
	cr_assert_eq(atomic_load(&p.parent_saw_child), 1,
		     "the child queued on a busy worker never ran elsewhere");
	cr_assert_neq(atomic_load(&p.child_worker),
		      atomic_load(&p.parent_worker),
		      "the child ran on its parent's worker");
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

/* The chain goes on until the outside task has run, up to this many links
 * (a few seconds): so a main thread descheduled for a while on a loaded
 * machine cannot see the chain end before it submits, while a worker that
 * never looks at the inject queue still fails the test. */
#define CHAIN 50000000

struct chain {
	struct weft_pool *pool;
	atomic_int links;       /* chain tasks run so far */
	atomic_int outside_at;  /* links when the outside task ran, or -1 */
	atomic_int chain_error;
};

/* Each link queues the next on its own deque (LIFO: it runs next). */
static int chain_link(void *arg, void **result)
{
	struct chain *c = arg;

	(void)result;
	if (atomic_fetch_add(&c->links, 1) + 1 < CHAIN &&
	    atomic_load(&c->outside_at) < 0 &&
	    weft_submit(c->pool, chain_link, c, NULL) != 0)
		atomic_store(&c->chain_error, 1);
	return 0;
}

static int outside_task(void *arg, void **result)
{
	struct chain *c = arg;

	(void)result;
	atomic_store(&c->outside_at, atomic_load(&c->links));
	return 0;
}

Test(sched, local_work_does_not_starve_outside_submissions, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct chain c = {.pool = pool};
	struct weft_future *f;
	int submitted_at;

	cr_assert(pool);
	atomic_init(&c.outside_at, -1);
	cr_assert_eq(weft_submit(pool, chain_link, &c, NULL), 0);
	/* Wait until the chain is running on the only worker. */
	while (atomic_load(&c.links) < 1000)
		thrd_yield();
	submitted_at = atomic_load(&c.links);
	cr_assert_eq(weft_submit(pool, outside_task, &c, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	/* The worker's deque always holds the next link, so only the
	 * fairness interval (a look at the inject queue every 61 tasks)
	 * lets the outside task in before the chain ends. */
	cr_assert_lt(atomic_load(&c.outside_at), CHAIN,
		     "the outside task waited for the whole local chain");
	cr_assert_lt(atomic_load(&c.outside_at) - submitted_at, 10000,
		     "the outside task waited %d local tasks",
		     atomic_load(&c.outside_at) - submitted_at);
	cr_assert_eq(atomic_load(&c.chain_error), 0);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}
