/*
 * test_combine.c - weft/future.h: waiting for many futures
 * (weft_when_all(), weft_when_any(), weft_future_wait_all(), as_completed).
 *
 * Completion order is controlled with one gate per task: a task finishes
 * only when the test opens its gate.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include <weft.h>

#include "helpers.h"

#define N 4

static struct weft_future *const bad_future = (struct weft_future *)&bad_future;

/* N gated tasks on a pool with enough workers for all of them. */
struct group {
	struct weft_pool *pool;
	struct gate gate[N];
	struct blocker blk[N];
	struct weft_future *f[N];
};

/* errs[i] is task i's outcome (0: value i + 100). */
static void group_start(struct group *g, const int errs[N])
{
	g->pool = pool_new(N + 1);
	cr_assert_not_null(g->pool);
	for (int i = 0; i < N; i++) {
		gate_init(&g->gate[i]);
		blocker_init(&g->blk[i], &g->gate[i], (void *)(intptr_t)(i + 100),
			     errs ? errs[i] : 0);
		cr_assert_eq(weft_submit(g->pool, blocker_task, &g->blk[i], &g->f[i]), 0);
	}
}

static void group_open(struct group *g, int i)
{
	gate_open(&g->gate[i]);
}

/* Opens gate i and waits until task i has completed. */
static void group_finish(struct group *g, int i)
{
	gate_open(&g->gate[i]);
	cr_assert_eq(weft_future_wait(g->f[i]), 0);
}

static void group_end(struct group *g)
{
	for (int i = 0; i < N; i++)
		gate_open(&g->gate[i]);
	weft_pool_destroy(g->pool);
	for (int i = 0; i < N; i++) {
		weft_future_unref(g->f[i]);
		gate_fini(&g->gate[i]);
	}
}

/* weft_when_all() */

Test(when_all, all_succeed_is_done_with_null_value, .timeout = 30)
{
	struct group g;
	struct weft_future *all = NULL;

	group_start(&g, NULL);
	cr_assert_eq(weft_when_all(g.f, N, &all), 0);
	cr_assert_not_null(all);
	for (int i = 0; i < N - 1; i++)
		group_finish(&g, i);
	cr_assert_eq(weft_future_try_wait(all), -EAGAIN,
		     "when_all completed before its last input");
	group_open(&g, N - 1);
	cr_assert_eq(weft_future_wait(all), 0);
	cr_assert_eq(weft_future_state(all), WEFT_FUTURE_DONE);
	cr_assert_eq(weft_future_error(all), 0);
	cr_assert_null(weft_future_value(all));
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_future_try_wait(g.f[i]), 0);
	weft_future_unref(all);
	group_end(&g);
}

Test(when_all, error_is_lowest_index_failure, .timeout = 30)
{
	const int errs[N] = { 0, -EIO, -EPIPE, 0 };
	struct group g;
	struct weft_future *all = NULL;

	group_start(&g, errs);
	cr_assert_eq(weft_when_all(g.f, N, &all), 0);
	/* The higher index fails first; the lower one must still win. */
	group_finish(&g, 2);
	group_finish(&g, 3);
	group_finish(&g, 0);
	group_open(&g, 1);
	cr_assert_eq(weft_future_wait(all), 0);
	cr_assert_eq(weft_future_state(all), WEFT_FUTURE_FAILED);
	cr_assert_eq(weft_future_error(all), -EIO);
	cr_assert_null(weft_future_value(all));
	weft_future_unref(all);
	group_end(&g);
}

Test(when_all, cancelled_input_gives_ecanceled, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct gate gate;
	struct blocker blk;
	struct weft_future *f[2] = { NULL, NULL }, *all = NULL;

	gate_init(&gate);
	blocker_init(&blk, &gate, NULL, 0);
	cr_assert_eq(weft_submit(pool, blocker_task, &blk, &f[0]), 0);
	cr_assert(blocker_wait_started(&blk));
	cr_assert_eq(weft_submit(pool, value_task, NULL, &f[1]), 0);
	cr_assert_eq(weft_when_all(f, 2, &all), 0);
	cr_assert_eq(weft_future_cancel(f[1]), 0);
	gate_open(&gate);
	cr_assert_eq(weft_future_wait(all), 0);
	cr_assert_eq(weft_future_error(all), -ECANCELED);
	weft_future_unref(all);
	weft_future_unref(f[0]);
	weft_future_unref(f[1]);
	weft_pool_destroy(pool);
	gate_fini(&gate);
}

Test(when_all, empty_is_already_done)
{
	struct weft_future *all = NULL;
	struct weft_future *none[1] = { NULL };

	cr_assert_eq(weft_when_all(none, 0, &all), 0);
	cr_assert_not_null(all);
	cr_assert_eq(weft_future_try_wait(all), 0);
	cr_assert_eq(weft_future_state(all), WEFT_FUTURE_DONE);
	cr_assert_eq(weft_future_error(all), 0);
	weft_future_unref(all);
}

Test(when_all, null_entry_is_einval, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f[2] = { NULL, NULL };
	struct weft_future *all = bad_future;

	cr_assert_eq(weft_submit(pool, value_task, NULL, &f[0]), 0);
	cr_assert_eq(weft_when_all(f, 2, &all), -EINVAL);
	all = NULL;
	cr_assert_eq(weft_when_all(NULL, 2, &all), -EINVAL);
	cr_assert_eq(weft_when_all(f, 1, NULL), -EINVAL);
	cr_assert_null(all);
	weft_future_unref(f[0]);
	weft_pool_destroy(pool);
}

Test(when_all, holds_inputs_until_they_complete, .timeout = 30)
{
	struct group g;
	struct weft_future *all = NULL;

	group_start(&g, NULL);
	cr_assert_eq(weft_when_all(g.f, N, &all), 0);
	/* Drop our references: when_all keeps the inputs alive. */
	for (int i = 0; i < N; i++) {
		weft_future_unref(g.f[i]);
		g.f[i] = NULL;
	}
	for (int i = 0; i < N; i++)
		group_open(&g, i);
	cr_assert_eq(weft_future_wait(all), 0);
	cr_assert_eq(weft_future_error(all), 0);
	weft_future_unref(all);
	group_end(&g);
}

Test(when_all, cannot_be_cancelled, .timeout = 30)
{
	struct group g;
	struct weft_future *all = NULL;

	group_start(&g, NULL);
	cr_assert_eq(weft_when_all(g.f, N, &all), 0);
	cr_assert_eq(weft_future_cancel(all), -EINVAL);
	for (int i = 0; i < N; i++)
		group_open(&g, i);
	cr_assert_eq(weft_future_wait(all), 0);
	cr_assert_eq(weft_future_error(all), 0);
	weft_future_unref(all);
	group_end(&g);
}

/* weft_when_any() */

Test(when_any, value_is_index_of_first_to_complete, .timeout = 30)
{
	struct group g;
	struct weft_future *any = NULL;

	group_start(&g, NULL);
	cr_assert_eq(weft_when_any(g.f, N, &any), 0);
	cr_assert_not_null(any);
	cr_assert_eq(weft_future_try_wait(any), -EAGAIN);
	group_open(&g, 2);
	cr_assert_eq(weft_future_wait(any), 0);
	cr_assert_eq(weft_future_state(any), WEFT_FUTURE_DONE);
	cr_assert_eq(weft_future_error(any), 0);
	cr_assert_eq((uintptr_t)weft_future_value(any), 2);
	/* The others are still blocked. */
	cr_assert_eq(weft_future_try_wait(g.f[0]), -EAGAIN);
	cr_assert_eq(weft_future_try_wait(g.f[1]), -EAGAIN);
	cr_assert_eq(weft_future_try_wait(g.f[3]), -EAGAIN);
	weft_future_unref(any);
	group_end(&g);
}

Test(when_any, failed_first_input_still_gives_its_index_and_no_error,
     .timeout = 30)
{
	const int errs[N] = { 0, 0, 0, -EIO };
	struct group g;
	struct weft_future *any = NULL;

	group_start(&g, errs);
	cr_assert_eq(weft_when_any(g.f, N, &any), 0);
	group_open(&g, 3);
	cr_assert_eq(weft_future_wait(any), 0);
	cr_assert_eq(weft_future_error(any), 0);
	cr_assert_eq((uintptr_t)weft_future_value(any), 3);
	weft_future_unref(any);
	group_end(&g);
}

Test(when_any, input_already_complete, .timeout = 30)
{
	struct group g;
	struct weft_future *any = NULL;

	group_start(&g, NULL);
	group_finish(&g, 1);
	cr_assert_eq(weft_when_any(g.f, N, &any), 0);
	cr_assert_eq(weft_future_wait(any), 0);
	cr_assert_eq((uintptr_t)weft_future_value(any), 1);
	weft_future_unref(any);
	group_end(&g);
}

Test(when_any, empty_or_null_is_einval, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f[2] = { NULL, NULL };
	struct weft_future *any = NULL;

	cr_assert_eq(weft_submit(pool, value_task, NULL, &f[0]), 0);
	cr_assert_eq(weft_when_any(f, 0, &any), -EINVAL);
	cr_assert_eq(weft_when_any(NULL, 1, &any), -EINVAL);
	cr_assert_eq(weft_when_any(f, 1, NULL), -EINVAL);
	cr_assert_eq(weft_when_any(f, 2, &any), -EINVAL);
	cr_assert_null(any);
	weft_future_unref(f[0]);
	weft_pool_destroy(pool);
}

/* weft_future_wait_all() */

Test(wait_all, all_succeed_is_zero, .timeout = 30)
{
	struct group g;
	size_t failed = 7;
	struct delayed_open d[N];

	group_start(&g, NULL);
	for (int i = 0; i < N; i++)
		cr_assert_eq(delayed_open_start(&d[i], &g.gate[i], 2 + 3 * i), 0);
	cr_assert_eq(weft_future_wait_all(g.f, N, WEFT_FOREVER, &failed), 0);
	cr_assert_eq(failed, SIZE_MAX);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(weft_future_try_wait(g.f[i]), 0);
		delayed_open_join(&d[i]);
	}
	group_end(&g);
}

Test(wait_all, returns_first_failure_early, .timeout = 30)
{
	const int errs[N] = { 0, 0, -EIO, 0 };
	struct group g;
	size_t failed = 7;

	group_start(&g, errs);
	group_finish(&g, 0);
	group_open(&g, 2);
	cr_assert_eq(weft_future_wait_all(g.f, N, weft_now() + HELPER_PATIENCE_NS,
					  &failed), -EIO);
	cr_assert_eq(failed, 2);
	/* Early: 1 and 3 are still blocked on their gates. */
	cr_assert_eq(weft_future_try_wait(g.f[1]), -EAGAIN);
	cr_assert_eq(weft_future_try_wait(g.f[3]), -EAGAIN);
	group_end(&g);
}

Test(wait_all, null_failed_is_allowed, .timeout = 30)
{
	const int errs[N] = { -ENOSPC, 0, 0, 0 };
	struct group g;

	group_start(&g, errs);
	group_open(&g, 0);
	cr_assert_eq(weft_future_wait_all(g.f, N, weft_now() + HELPER_PATIENCE_NS,
					  NULL), -ENOSPC);
	group_end(&g);
}

Test(wait_all, cancelled_input_counts_as_failure, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct gate gate;
	struct blocker blk;
	struct weft_future *f[2] = { NULL, NULL };
	size_t failed = 7;

	gate_init(&gate);
	blocker_init(&blk, &gate, NULL, 0);
	cr_assert_eq(weft_submit(pool, blocker_task, &blk, &f[0]), 0);
	cr_assert(blocker_wait_started(&blk));
	cr_assert_eq(weft_submit(pool, value_task, NULL, &f[1]), 0);
	cr_assert_eq(weft_future_cancel(f[1]), 0);
	cr_assert_eq(weft_future_wait_all(f, 2, weft_now() + HELPER_PATIENCE_NS,
					  &failed), -ECANCELED);
	cr_assert_eq(failed, 1);
	cr_assert_eq(weft_future_try_wait(f[0]), -EAGAIN);
	gate_open(&gate);
	weft_future_unref(f[0]);
	weft_future_unref(f[1]);
	weft_pool_destroy(pool);
	gate_fini(&gate);
}

Test(wait_all, times_out_at_deadline, .timeout = 30)
{
	struct group g;
	size_t failed = 7;
	int64_t deadline;

	group_start(&g, NULL);
	group_finish(&g, 0);
	deadline = weft_now() + 20 * 1000 * 1000;
	cr_assert_eq(weft_future_wait_all(g.f, N, deadline, &failed), -ETIMEDOUT);
	cr_assert_geq(weft_now(), deadline);
	cr_assert_eq(failed, SIZE_MAX);
	group_end(&g);
}

Test(wait_all, null_futures_is_einval)
{
	size_t failed = 7;

	cr_assert_eq(weft_future_wait_all(NULL, 2, WEFT_FOREVER, &failed), -EINVAL);
}

/* as_completed */

Test(as_completed, yields_in_completion_order, .timeout = 30)
{
	const int order[N] = { 2, 0, 3, 1 };
	struct group g;
	struct weft_as_completed *it = NULL;
	size_t index;

	group_start(&g, NULL);
	cr_assert_eq(weft_as_completed_create(g.f, N, &it), 0);
	cr_assert_not_null(it);
	for (int k = 0; k < N; k++) {
		index = SIZE_MAX;
		group_open(&g, order[k]);
		cr_assert_eq(weft_as_completed_next(it, weft_now() + HELPER_PATIENCE_NS,
						    &index), 0);
		cr_assert_eq(index, (size_t)order[k], "step %d", k);
	}
	cr_assert_eq(weft_as_completed_next(it, WEFT_FOREVER, &index), -ENOENT);
	cr_assert_eq(weft_as_completed_next(it, 0, &index), -ENOENT);
	weft_as_completed_destroy(it);
	group_end(&g);
}

Test(as_completed, yields_every_index_exactly_once, .timeout = 30)
{
	const int errs[N] = { 0, -EIO, 0, -EPIPE };
	struct group g;
	struct weft_as_completed *it = NULL;
	int seen[N] = { 0 };
	size_t index;

	group_start(&g, errs);
	group_finish(&g, 3);
	group_finish(&g, 1);
	cr_assert_eq(weft_as_completed_create(g.f, N, &it), 0);
	group_open(&g, 0);
	group_open(&g, 2);
	for (int k = 0; k < N; k++) {
		index = SIZE_MAX;
		cr_assert_eq(weft_as_completed_next(it, weft_now() + HELPER_PATIENCE_NS,
						    &index), 0);
		cr_assert_lt(index, (size_t)N);
		seen[index]++;
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(seen[i], 1, "index %d seen %d times", i, seen[i]);
	cr_assert_eq(weft_as_completed_next(it, WEFT_FOREVER, &index), -ENOENT);
	weft_as_completed_destroy(it);
	group_end(&g);
}

Test(as_completed, times_out_when_nothing_completes, .timeout = 30)
{
	struct group g;
	struct weft_as_completed *it = NULL;
	size_t index = 77;
	int64_t deadline;

	group_start(&g, NULL);
	cr_assert_eq(weft_as_completed_create(g.f, N, &it), 0);
	deadline = weft_now() + 20 * 1000 * 1000;
	cr_assert_eq(weft_as_completed_next(it, deadline, &index), -ETIMEDOUT);
	cr_assert_geq(weft_now(), deadline);
	/* A timeout consumes nothing: the next completion is still yielded. */
	group_open(&g, 1);
	cr_assert_eq(weft_as_completed_next(it, weft_now() + HELPER_PATIENCE_NS,
					    &index), 0);
	cr_assert_eq(index, 1);
	weft_as_completed_destroy(it);
	group_end(&g);
}

Test(as_completed, destroy_before_inputs_complete, .timeout = 30)
{
	struct group g;
	struct weft_as_completed *it = NULL;
	size_t index;

	group_start(&g, NULL);
	cr_assert_eq(weft_as_completed_create(g.f, N, &it), 0);
	group_open(&g, 3);
	cr_assert_eq(weft_as_completed_next(it, weft_now() + HELPER_PATIENCE_NS,
					    &index), 0);
	cr_assert_eq(index, 3);
	weft_as_completed_destroy(it);
	/* Inputs complete after the iterator is gone (ASan: no use after free,
	 * no leak). */
	group_end(&g);
}

Test(as_completed, holds_references_to_inputs, .timeout = 30)
{
	struct group g;
	struct weft_as_completed *it = NULL;
	size_t index;
	int seen[N] = { 0 };

	group_start(&g, NULL);
	cr_assert_eq(weft_as_completed_create(g.f, N, &it), 0);
	for (int i = 0; i < N; i++) {
		weft_future_unref(g.f[i]);
		g.f[i] = NULL;
	}
	for (int i = 0; i < N; i++)
		group_open(&g, i);
	for (int k = 0; k < N; k++) {
		cr_assert_eq(weft_as_completed_next(it, weft_now() + HELPER_PATIENCE_NS,
						    &index), 0);
		cr_assert_lt(index, (size_t)N);
		seen[index]++;
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(seen[i], 1);
	weft_as_completed_destroy(it);
	group_end(&g);
}

Test(as_completed, null_arguments_are_einval, .timeout = 30)
{
	struct weft_as_completed *it = NULL;
	size_t index;

	cr_assert_eq(weft_as_completed_create(NULL, 2, &it), -EINVAL);
	cr_assert_eq(weft_as_completed_next(NULL, 0, &index), -EINVAL);
	weft_as_completed_destroy(NULL);
}
