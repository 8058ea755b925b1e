/*
 * test_callback.c - weft/future.h: completion callbacks and continuations
 * (weft_future_on_complete(), weft_future_then()).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>

#include <weft.h>

#include "helpers.h"

static int marker;

struct cb_log {
	atomic_int calls;
	atomic_int wrong_future;
	atomic_int not_complete; /* called before the future had completed */
	struct weft_future *expect;
	pthread_t thread;
	int error_seen;
};

static void cb_log_init(struct cb_log *log, struct weft_future *expect)
{
	atomic_init(&log->calls, 0);
	atomic_init(&log->wrong_future, 0);
	atomic_init(&log->not_complete, 0);
	log->expect = expect;
	log->error_seen = 1;
}

static void log_cb(struct weft_future *f, void *arg)
{
	struct cb_log *log = arg;

	if (f != log->expect)
		atomic_fetch_add(&log->wrong_future, 1);
	if (weft_future_try_wait(f) != 0)
		atomic_fetch_add(&log->not_complete, 1);
	log->thread = pthread_self();
	log->error_seen = weft_future_error(f);
	atomic_fetch_add(&log->calls, 1);
}

Test(callback, runs_once_after_completion, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct gate g;
	struct blocker blk;
	struct weft_future *f = NULL;
	struct cb_log log;

	gate_init(&g);
	blocker_init(&blk, &g, &marker, 0);
	cr_assert_eq(weft_submit(pool, blocker_task, &blk, &f), 0);
	cb_log_init(&log, f);
	cr_assert_eq(weft_future_on_complete(f, log_cb, &log), 0);
	cr_assert(blocker_wait_started(&blk));
	cr_assert_eq(atomic_load(&log.calls), 0, "callback ran before completion");
	gate_open(&g);
	cr_assert(wait_int(&log.calls, 1));
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&log.calls), 1);
	cr_assert_eq(atomic_load(&log.wrong_future), 0);
	cr_assert_eq(atomic_load(&log.not_complete), 0);
	cr_assert_eq(log.error_seen, 0);
	/* The completing thread is the worker, not this one. */
	cr_assert(!pthread_equal(log.thread, pthread_self()));
	weft_future_unref(f);
	gate_fini(&g);
}

Test(callback, on_complete_future_runs_at_once_on_caller, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;
	struct cb_log log;

	cr_assert_eq(weft_submit(pool, fail_task, (void *)(intptr_t)-EIO, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cb_log_init(&log, f);
	cr_assert_eq(weft_future_on_complete(f, log_cb, &log), 0);
	cr_assert_eq(atomic_load(&log.calls), 1);
	cr_assert(pthread_equal(log.thread, pthread_self()));
	cr_assert_eq(log.error_seen, -EIO);
	cr_assert_eq(atomic_load(&log.wrong_future), 0);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

#define MANY_CBS 6

Test(callback, several_callbacks_all_run_once, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct gate g;
	struct blocker blk;
	struct weft_future *f = NULL;
	struct cb_log log[MANY_CBS];

	gate_init(&g);
	blocker_init(&blk, &g, &marker, 0);
	cr_assert_eq(weft_submit(pool, blocker_task, &blk, &f), 0);
	for (int i = 0; i < MANY_CBS; i++) {
		cb_log_init(&log[i], f);
		cr_assert_eq(weft_future_on_complete(f, log_cb, &log[i]), 0);
	}
	gate_open(&g);
	weft_pool_destroy(pool);
	for (int i = 0; i < MANY_CBS; i++) {
		cr_assert_eq(atomic_load(&log[i].calls), 1, "callback %d", i);
		cr_assert_eq(atomic_load(&log[i].not_complete), 0);
	}
	weft_future_unref(f);
	gate_fini(&g);
}

Test(callback, cancel_runs_callbacks_on_the_cancelling_thread, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct gate g;
	struct blocker blk;
	struct weft_future *running = NULL, *queued = NULL;
	struct cb_log log;

	gate_init(&g);
	blocker_init(&blk, &g, &marker, 0);
	cr_assert_eq(weft_submit(pool, blocker_task, &blk, &running), 0);
	cr_assert(blocker_wait_started(&blk));
	cr_assert_eq(weft_submit(pool, value_task, &marker, &queued), 0);
	cb_log_init(&log, queued);
	cr_assert_eq(weft_future_on_complete(queued, log_cb, &log), 0);
	cr_assert_eq(weft_future_cancel(queued), 0);
	cr_assert_eq(atomic_load(&log.calls), 1);
	cr_assert(pthread_equal(log.thread, pthread_self()));
	cr_assert_eq(log.error_seen, -ECANCELED);
	gate_open(&g);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&log.calls), 1);
	weft_future_unref(running);
	weft_future_unref(queued);
	gate_fini(&g);
}

Test(callback, on_complete_null_arguments_are_einval, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;
	struct cb_log log;

	cr_assert_eq(weft_submit(pool, value_task, NULL, &f), 0);
	cb_log_init(&log, f);
	cr_assert_eq(weft_future_on_complete(NULL, log_cb, &log), -EINVAL);
	cr_assert_eq(weft_future_on_complete(f, NULL, &log), -EINVAL);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&log.calls), 0);
	weft_future_unref(f);
}

/* Continuations. */

struct then_probe {
	atomic_int calls;
	int antecedent_complete;
	int antecedent_error;
	void *antecedent_value;
};

static int then_add_one(struct weft_future *ant, void *arg, void **result)
{
	struct then_probe *p = arg;

	p->antecedent_complete = weft_future_try_wait(ant) == 0;
	p->antecedent_error = weft_future_error(ant);
	p->antecedent_value = weft_future_value(ant);
	atomic_fetch_add(&p->calls, 1);
	if (p->antecedent_error)
		return -EXDEV;
	*result = (void *)((intptr_t)p->antecedent_value + 1);
	return 0;
}

static void then_probe_init(struct then_probe *p)
{
	atomic_init(&p->calls, 0);
	p->antecedent_complete = 0;
	p->antecedent_error = 1;
	p->antecedent_value = NULL;
}

Test(then, runs_after_antecedent_and_sees_its_value, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct gate g;
	struct blocker blk;
	struct weft_future *f = NULL, *c = NULL;
	struct then_probe p;

	gate_init(&g);
	blocker_init(&blk, &g, (void *)41, 0);
	then_probe_init(&p);
	cr_assert_eq(weft_submit(pool, blocker_task, &blk, &f), 0);
	cr_assert_eq(weft_future_then(pool, f, then_add_one, &p, &c), 0);
	cr_assert_not_null(c);
	cr_assert(blocker_wait_started(&blk));
	sleep_ms(2);
	cr_assert_eq(atomic_load(&p.calls), 0, "continuation ran before antecedent");
	cr_assert_eq(weft_future_try_wait(c), -EAGAIN);
	gate_open(&g);
	cr_assert_eq(weft_future_wait(c), 0);
	cr_assert_eq(atomic_load(&p.calls), 1);
	cr_assert_eq(p.antecedent_complete, 1);
	cr_assert_eq(p.antecedent_error, 0);
	cr_assert_eq((intptr_t)p.antecedent_value, 41);
	cr_assert_eq(weft_future_state(c), WEFT_FUTURE_DONE);
	cr_assert_eq((intptr_t)weft_future_value(c), 42);
	weft_future_unref(f);
	weft_future_unref(c);
	weft_pool_destroy(pool);
	gate_fini(&g);
}

Test(then, sees_antecedent_error_and_can_fail, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct weft_future *f = NULL, *c = NULL;
	struct then_probe p;

	then_probe_init(&p);
	cr_assert_eq(weft_submit(pool, fail_task, (void *)(intptr_t)-EIO, &f), 0);
	cr_assert_eq(weft_future_then(pool, f, then_add_one, &p, &c), 0);
	cr_assert_eq(weft_future_wait(c), 0);
	cr_assert_eq(atomic_load(&p.calls), 1);
	cr_assert_eq(p.antecedent_error, -EIO);
	cr_assert_null(p.antecedent_value);
	cr_assert_eq(weft_future_state(c), WEFT_FUTURE_FAILED);
	cr_assert_eq(weft_future_error(c), -EXDEV);
	weft_future_unref(f);
	weft_future_unref(c);
	weft_pool_destroy(pool);
}

Test(then, on_completed_antecedent_still_runs_as_task, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL, *c = NULL;
	struct then_probe p;

	then_probe_init(&p);
	cr_assert_eq(weft_submit(pool, value_task, (void *)7, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_then(pool, f, then_add_one, &p, &c), 0);
	cr_assert_eq(weft_future_wait(c), 0);
	cr_assert_eq((intptr_t)weft_future_value(c), 8);
	weft_future_unref(f);
	weft_future_unref(c);
	weft_pool_destroy(pool);
}

Test(then, chain_of_three, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct weft_future *f[4] = { NULL };
	struct then_probe p[3];

	cr_assert_eq(weft_submit(pool, value_task, (void *)100, &f[0]), 0);
	for (int i = 0; i < 3; i++) {
		then_probe_init(&p[i]);
		cr_assert_eq(weft_future_then(pool, f[i], then_add_one, &p[i],
					      &f[i + 1]), 0);
	}
	cr_assert_eq(weft_future_wait(f[3]), 0);
	cr_assert_eq((intptr_t)weft_future_value(f[3]), 103);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(atomic_load(&p[i].calls), 1);
		cr_assert_eq((intptr_t)p[i].antecedent_value, 100 + i);
	}
	for (int i = 0; i < 4; i++)
		weft_future_unref(f[i]);
	weft_pool_destroy(pool);
}

Test(then, antecedent_from_another_pool, .timeout = 30)
{
	struct weft_pool *a = pool_new(1);
	struct weft_pool *b = pool_new(1);
	struct weft_future *f = NULL, *c = NULL;
	struct then_probe p;

	then_probe_init(&p);
	cr_assert_eq(weft_submit(a, value_task, (void *)1, &f), 0);
	cr_assert_eq(weft_future_then(b, f, then_add_one, &p, &c), 0);
	cr_assert_eq(weft_future_wait(c), 0);
	cr_assert_eq((intptr_t)weft_future_value(c), 2);
	weft_future_unref(f);
	weft_future_unref(c);
	weft_pool_destroy(a);
	weft_pool_destroy(b);
}

Test(then, on_shut_down_pool_is_eshutdown, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL, *c = NULL;
	struct then_probe p;

	then_probe_init(&p);
	cr_assert_eq(weft_submit(pool, value_task, (void *)1, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_pool_shutdown(pool, 0, WEFT_FOREVER), 0);
	cr_assert_eq(weft_future_then(pool, f, then_add_one, &p, &c), -ESHUTDOWN);
	cr_assert_eq(atomic_load(&p.calls), 0);
	weft_future_unref(c); /* NULL, or whatever it left: must not leak */
	weft_future_unref(f);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&p.calls), 0);
}

Test(then, pool_stopped_before_antecedent_completes_fails_eshutdown,
     .timeout = 30)
{
	struct weft_pool *a = pool_new(1);
	struct weft_pool *b = pool_new(1);
	struct gate g;
	struct blocker blk;
	struct weft_future *f = NULL, *c = NULL;
	struct then_probe p;

	gate_init(&g);
	blocker_init(&blk, &g, NULL, 0);
	then_probe_init(&p);
	cr_assert_eq(weft_submit(a, blocker_task, &blk, &f), 0);
	cr_assert_eq(weft_future_then(b, f, then_add_one, &p, &c), 0);
	cr_assert_eq(weft_pool_shutdown(b, 0, weft_now() + HELPER_PATIENCE_NS), 0,
		     "shutdown of b waited for a continuation not yet queued");
	gate_open(&g);
	cr_assert_eq(weft_future_wait(c), 0);
	cr_assert_eq(weft_future_state(c), WEFT_FUTURE_FAILED);
	cr_assert_eq(weft_future_error(c), -ESHUTDOWN);
	cr_assert_eq(atomic_load(&p.calls), 0, "continuation ran on a stopped pool");
	weft_future_unref(f);
	weft_future_unref(c);
	weft_pool_destroy(a);
	weft_pool_destroy(b);
	gate_fini(&g);
}

Test(then, null_arguments_are_einval, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL, *c = NULL;
	struct then_probe p;

	then_probe_init(&p);
	cr_assert_eq(weft_submit(pool, value_task, NULL, &f), 0);
	cr_assert_eq(weft_future_then(NULL, f, then_add_one, &p, &c), -EINVAL);
	cr_assert_eq(weft_future_then(pool, NULL, then_add_one, &p, &c), -EINVAL);
	cr_assert_eq(weft_future_then(pool, f, NULL, &p, &c), -EINVAL);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&p.calls), 0);
	weft_future_unref(f);
}
