/*
 * test_stack_budget.c - the guarded-stack budget (vm.max_map_count policy,
 * fiber/stack.h) seen through a pool: with WEFT_GUARDED_STACKS=2, a pool
 * whose tasks all suspend at once needs many fibers; all must work, and no
 * more than two of their stacks may have guard pages.
 *
 * Links the static archive (the budget counters are internal). Criterion
 * runs each test in its own process, so the environment variable is read
 * fresh by the first stack mapped in the test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>
#include <weft/async.h>

#include "fiber/stack.h"

#define MS (1000LL * 1000)
#define PATIENCE (10LL * 1000 * MS)

enum { N = 64 };

struct shared {
	struct weft_future *event; /* the holder's future */
	atomic_int holder_started;
	atomic_int release;	   /* set by the test */
	atomic_int suspended;	   /* waiters that reached their wait */
	_Atomic size_t max_guarded; /* the most the waiters saw */
	int r[N];
};

struct waiter {
	struct shared *s;
	int i;
};

static void nap(void)
{
	struct timespec ts = {0, 200 * 1000};

	nanosleep(&ts, NULL);
}

static void see_guarded(struct shared *s)
{
	size_t g = weft__stack_guarded_count();
	size_t m = atomic_load(&s->max_guarded);

	while (g > m && !atomic_compare_exchange_weak(&s->max_guarded, &m, g))
		;
}

/* Holds one worker's thread until the test releases it. */
static int holder_task(void *arg, void **result)
{
	struct shared *s = arg;
	int64_t give_up = weft_now() + PATIENCE;
	atomic_store(&s->holder_started, 1);
	while (!atomic_load(&s->release) && weft_now() < give_up)
		nap();
	*result = s;
	return atomic_load(&s->release) ? 0 : -ETIMEDOUT;
}

static int waiter_task(void *arg, void **result)
{
	struct waiter *w = arg;
	struct shared *s = w->s;
	void *v = NULL;

	see_guarded(s);
	atomic_fetch_add(&s->suspended, 1);
	/* The holder is running on the other worker: this suspends. */
	s->r[w->i] = weft_future_get(s->event, &v);
	see_guarded(s);
	if (s->r[w->i] == 0 && v != s)
		s->r[w->i] = -EPROTO;
	/* And once more, after having been moved around. */
	if (s->r[w->i] == 0)
		s->r[w->i] = weft_sleep(MS);
	see_guarded(s);
	*result = w;
	return 0;
}

static bool wait_for(atomic_int *v, int want)
{
	int64_t give_up = weft_now() + PATIENCE;

	while (atomic_load(v) < want) {
		if (weft_now() > give_up)
			return false;
		nap();
	}
	return true;
}

Test(stack_budget, many_suspended_tasks_with_two_guarded_stacks,
     .timeout = 30)
{
	struct weft_pool_options opts;
	struct weft_pool *pool = NULL;
	struct weft_future *f[N];
	struct waiter w[N];
	struct shared s;

	cr_assert_eq(setenv("WEFT_GUARDED_STACKS", "2", 1), 0);
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < N; i++)
		s.r[i] = 1;

	weft_pool_options_init(&opts);
	opts.workers = 2;
	cr_assert_eq(weft_pool_create(&opts, &pool), 0);
	cr_assert_eq(weft__stack_guard_budget(), 2);

	cr_assert_eq(weft_submit(pool, holder_task, &s, &s.event), 0);
	cr_assert(wait_for(&s.holder_started, 1));
	for (int i = 0; i < N; i++) {
		w[i] = (struct waiter){.s = &s, .i = i};
		cr_assert_eq(weft_submit(pool, waiter_task, &w[i], &f[i]), 0);
	}
	/* Every waiter is suspended at the same time: N fibers at least. */
	cr_assert(wait_for(&s.suspended, N),
		  "%d of %d waiters started", atomic_load(&s.suspended), N);
	cr_assert_eq(weft__stack_guarded_count(), 2,
		     "%zu guarded stacks with a budget of 2",
		     weft__stack_guarded_count());

	atomic_store(&s.release, 1);
	for (int i = 0; i < N; i++) {
		void *v = NULL;

		cr_assert_eq(weft_future_get(f[i], &v), 0);
		cr_assert_eq(v, &w[i]);
		cr_assert_eq(s.r[i], 0, "waiter %d: %d", i, s.r[i]);
		weft_future_unref(f[i]);
	}
	cr_assert_eq(weft_future_error(s.event), 0);
	cr_assert_leq(atomic_load(&s.max_guarded), 2);
	cr_assert_leq(weft__stack_guarded_count(), 2);
	weft_future_unref(s.event);
	weft_pool_destroy(pool);
	cr_assert_eq(weft__stack_guarded_count(), 0,
		     "the pool's stacks were not all unmapped");
}
