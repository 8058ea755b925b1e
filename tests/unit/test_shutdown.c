/*
 * test_shutdown.c - weft/pool.h: weft_pool_shutdown() draining, cancelling,
 * deadlines, and weft_pool_destroy() without a shutdown.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include <weft.h>

#include "helpers.h"

#define QUEUED 1000

static struct weft_future *const bad_future = (struct weft_future *)&bad_future;

Test(shutdown, drain_runs_every_queued_task, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct gate g;
	struct blocker blk[2];
	struct delayed_open d;
	atomic_int count = 0;

	/* Both workers blocked, so the 1000 tasks are queued at shutdown. */
	gate_init(&g);
	for (int i = 0; i < 2; i++) {
		blocker_init(&blk[i], &g, NULL, 0);
		cr_assert_eq(weft_submit(pool, blocker_task, &blk[i], NULL), 0);
	}
	for (int i = 0; i < QUEUED; i++)
		cr_assert_eq(weft_submit(pool, count_task, &count, NULL), 0);
	cr_assert_eq(delayed_open_start(&d, &g, 20), 0);
	cr_assert_eq(weft_pool_shutdown(pool, 0, WEFT_FOREVER), 0);
	cr_assert_eq(atomic_load(&count), QUEUED);
	cr_assert_eq(atomic_load(&blk[0].finished) + atomic_load(&blk[1].finished), 2);
	delayed_open_join(&d);
	weft_pool_destroy(pool);
	gate_fini(&g);
}

Test(shutdown, drained_futures_are_done, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct gate g;
	struct blocker blk;
	struct delayed_open d;
	struct weft_future *f[8];

	gate_init(&g);
	blocker_init(&blk, &g, NULL, 0);
	cr_assert_eq(weft_submit(pool, blocker_task, &blk, NULL), 0);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(weft_submit(pool, value_task, (void *)(intptr_t)(i + 1),
					 &f[i]), 0);
	cr_assert_eq(delayed_open_start(&d, &g, 10), 0);
	cr_assert_eq(weft_pool_shutdown(pool, 0, WEFT_FOREVER), 0);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(weft_future_try_wait(f[i]), 0);
		cr_assert_eq(weft_future_state(f[i]), WEFT_FUTURE_DONE);
		cr_assert_eq((intptr_t)weft_future_value(f[i]), i + 1);
		weft_future_unref(f[i]);
	}
	delayed_open_join(&d);
	weft_pool_destroy(pool);
	gate_fini(&g);
}

struct drain_child {
	struct gate *gate;
	struct weft_pool *pool;
	atomic_int *count;
	int submit_rc;
};

static int submits_after_gate(void *arg, void **result)
{
	struct drain_child *dc = arg;

	(void)result;
	gate_wait(dc->gate);
	/* By now the pool is draining: its own tasks may still submit. */
	dc->submit_rc = weft_submit(dc->pool, count_task, dc->count, NULL);
	return 0;
}

Test(shutdown, drain_runs_tasks_submitted_by_running_tasks, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct gate g;
	struct delayed_open d;
	atomic_int count = 0;
	struct drain_child dc = { &g, pool, &count, 1 };

	gate_init(&g);
	cr_assert_eq(weft_submit(pool, submits_after_gate, &dc, NULL), 0);
	cr_assert_eq(delayed_open_start(&d, &g, 20), 0);
	cr_assert_eq(weft_pool_shutdown(pool, 0, WEFT_FOREVER), 0);
	cr_assert_eq(dc.submit_rc, 0);
	cr_assert_eq(atomic_load(&count), 1);
	delayed_open_join(&d);
	weft_pool_destroy(pool);
	gate_fini(&g);
}

Test(shutdown, submit_after_shutdown_is_eshutdown, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct weft_future *f = bad_future;
	atomic_int count = 0;

	cr_assert_eq(weft_pool_shutdown(pool, 0, WEFT_FOREVER), 0);
	cr_assert_eq(weft_submit(pool, count_task, &count, &f), -ESHUTDOWN);
	cr_assert_null(f);
	cr_assert_eq(weft_submit(pool, count_task, &count, NULL), -ESHUTDOWN);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&count), 0);
}

Test(shutdown, submit_while_draining_is_eshutdown_from_outside, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct gate g;
	struct blocker blk;
	struct weft_future *f = bad_future;
	atomic_int count = 0;

	gate_init(&g);
	blocker_init(&blk, &g, NULL, 0);
	cr_assert_eq(weft_submit(pool, blocker_task, &blk, NULL), 0);
	cr_assert(blocker_wait_started(&blk));
	/* Draining has begun (and timed out); outsiders are refused. */
	cr_assert_eq(weft_pool_shutdown(pool, 0, weft_now() + 1000000), -ETIMEDOUT);
	cr_assert_eq(weft_submit(pool, count_task, &count, &f), -ESHUTDOWN);
	cr_assert_null(f);
	gate_open(&g);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&count), 0);
	gate_fini(&g);
}

struct cancel_probe {
	atomic_int started;
	atomic_int saw_cancel;
};

static int polls_cancel(void *arg, void **result)
{
	struct cancel_probe *p = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;

	(void)result;
	atomic_store(&p->started, 1);
	while (weft_now() < give_up) {
		if (weft_task_cancelled()) {
			atomic_store(&p->saw_cancel, 1);
			return -ECANCELED;
		}
		sleep_ms(1);
	}
	return 0;
}

#define PENDING 10

Test(shutdown, cancel_completes_pending_futures_with_ecanceled, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct cancel_probe p;
	struct weft_future *running = NULL, *f[PENDING];
	atomic_int count = 0;

	atomic_init(&p.started, 0);
	atomic_init(&p.saw_cancel, 0);
	cr_assert_eq(weft_submit(pool, polls_cancel, &p, &running), 0);
	cr_assert(wait_int(&p.started, 1));
	for (int i = 0; i < PENDING; i++)
		cr_assert_eq(weft_submit(pool, count_task, &count, &f[i]), 0);
	cr_assert_eq(weft_pool_shutdown(pool, WEFT_SHUTDOWN_CANCEL,
					weft_now() + HELPER_PATIENCE_NS), 0);
	/* The running task finished, having seen the cancel. */
	cr_assert_eq(atomic_load(&p.saw_cancel), 1);
	cr_assert_eq(weft_future_try_wait(running), 0);
	cr_assert_eq(weft_future_error(running), -ECANCELED);
	for (int i = 0; i < PENDING; i++) {
		cr_assert_eq(weft_future_try_wait(f[i]), 0);
		cr_assert_eq(weft_future_state(f[i]), WEFT_FUTURE_CANCELLED);
		cr_assert_eq(weft_future_error(f[i]), -ECANCELED);
		weft_future_unref(f[i]);
	}
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&count), 0, "cancelled tasks ran");
	weft_future_unref(running);
}

Test(shutdown, cancel_after_timed_out_drain_switches_to_cancel, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct cancel_probe p;
	struct weft_future *f[PENDING];
	atomic_int count = 0;

	atomic_init(&p.started, 0);
	atomic_init(&p.saw_cancel, 0);
	cr_assert_eq(weft_submit(pool, polls_cancel, &p, NULL), 0);
	cr_assert(wait_int(&p.started, 1));
	for (int i = 0; i < PENDING; i++)
		cr_assert_eq(weft_submit(pool, count_task, &count, &f[i]), 0);
	cr_assert_eq(weft_pool_shutdown(pool, 0, weft_now() + 5000000), -ETIMEDOUT);
	cr_assert_eq(atomic_load(&p.saw_cancel), 0,
		     "a draining shutdown set the cancel flag");
	cr_assert_eq(weft_pool_shutdown(pool, WEFT_SHUTDOWN_CANCEL,
					weft_now() + HELPER_PATIENCE_NS), 0);
	cr_assert_eq(atomic_load(&p.saw_cancel), 1);
	for (int i = 0; i < PENDING; i++) {
		cr_assert_eq(weft_future_error(f[i]), -ECANCELED);
		weft_future_unref(f[i]);
	}
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&count), 0);
}

Test(shutdown, deadline_passes_while_task_blocked_then_succeeds, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct gate g;
	struct blocker blk;
	int64_t deadline;

	gate_init(&g);
	blocker_init(&blk, &g, NULL, 0);
	cr_assert_eq(weft_submit(pool, blocker_task, &blk, NULL), 0);
	cr_assert(blocker_wait_started(&blk));
	deadline = weft_now() + 10 * 1000 * 1000;
	cr_assert_eq(weft_pool_shutdown(pool, 0, deadline), -ETIMEDOUT);
	cr_assert_geq(weft_now(), deadline);
	/* Work goes on after a timeout. */
	cr_assert_eq(atomic_load(&blk.finished), 0);
	gate_open(&g);
	cr_assert_eq(weft_pool_shutdown(pool, 0, weft_now() + HELPER_PATIENCE_NS), 0);
	cr_assert_eq(atomic_load(&blk.finished), 1);
	weft_pool_destroy(pool);
	gate_fini(&g);
}

struct self_shutdown {
	struct weft_pool *pool;
	int rc;
};

static int shutdown_from_task(void *arg, void **result)
{
	struct self_shutdown *s = arg;

	(void)result;
	s->rc = weft_pool_shutdown(s->pool, 0, weft_now() + 1000000000LL);
	return 0;
}

Test(shutdown, from_inside_a_task_is_edeadlk, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct self_shutdown s = { pool, 1 };
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, shutdown_from_task, &s, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(s.rc, -EDEADLK);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(shutdown, twice_is_fine, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);

	cr_assert_eq(weft_pool_shutdown(pool, 0, WEFT_FOREVER), 0);
	cr_assert_eq(weft_pool_shutdown(pool, 0, WEFT_FOREVER), 0);
	cr_assert_eq(weft_pool_shutdown(pool, WEFT_SHUTDOWN_CANCEL, 0), 0);
	weft_pool_destroy(pool);
}

struct concurrent_shutdown {
	struct weft_pool *pool;
	int rc;
};

static void *shutdown_thread_main(void *arg)
{
	struct concurrent_shutdown *cs = arg;

	cs->rc = weft_pool_shutdown(cs->pool, 0, WEFT_FOREVER);
	return NULL;
}

Test(shutdown, several_threads_at_once, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct gate g;
	struct blocker blk;
	struct concurrent_shutdown cs[3];
	pthread_t t[3];

	gate_init(&g);
	blocker_init(&blk, &g, NULL, 0);
	cr_assert_eq(weft_submit(pool, blocker_task, &blk, NULL), 0);
	for (int i = 0; i < 3; i++) {
		cs[i] = (struct concurrent_shutdown){ pool, 1 };
		cr_assert_eq(pthread_create(&t[i], NULL, shutdown_thread_main,
					    &cs[i]), 0);
	}
	sleep_ms(10);
	gate_open(&g);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(cs[i].rc, 0, "thread %d", i);
	}
	cr_assert_eq(atomic_load(&blk.finished), 1);
	weft_pool_destroy(pool);
	gate_fini(&g);
}

Test(shutdown, null_pool_is_einval)
{
	cr_assert_eq(weft_pool_shutdown(NULL, 0, WEFT_FOREVER), -EINVAL);
}

Test(shutdown, destroy_without_shutdown_drains, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct gate g;
	struct blocker blk[2];
	struct delayed_open d;
	atomic_int count = 0;

	gate_init(&g);
	for (int i = 0; i < 2; i++) {
		blocker_init(&blk[i], &g, NULL, 0);
		cr_assert_eq(weft_submit(pool, blocker_task, &blk[i], NULL), 0);
	}
	for (int i = 0; i < 100; i++)
		cr_assert_eq(weft_submit(pool, count_task, &count, NULL), 0);
	cr_assert_eq(delayed_open_start(&d, &g, 20), 0);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&count), 100);
	delayed_open_join(&d);
	gate_fini(&g);
}

Test(shutdown, destroy_after_timed_out_shutdown_drains, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct gate g;
	struct blocker blk;
	struct delayed_open d;
	atomic_int count = 0;

	gate_init(&g);
	blocker_init(&blk, &g, NULL, 0);
	cr_assert_eq(weft_submit(pool, blocker_task, &blk, NULL), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(weft_submit(pool, count_task, &count, NULL), 0);
	cr_assert_eq(weft_pool_shutdown(pool, 0, weft_now() + 1000000), -ETIMEDOUT);
	cr_assert_eq(delayed_open_start(&d, &g, 10), 0);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&count), 10);
	delayed_open_join(&d);
	gate_fini(&g);
}
