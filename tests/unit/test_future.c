/*
 * test_future.c - weft/future.h: states, waiting, outcomes, references,
 * cancellation and the waits inside tasks (deadlock detection, inline
 * execution of a queued task).
 *
 * Most tests use a pool of one worker: a task blocked on a gate holds the
 * worker, so a second task stays PENDING for as long as the test wants.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>

#include <weft.h>

#include "helpers.h"

static int marker;

/* A pool of one worker busy with a gated blocker, and a second task queued
 * behind it. */
struct busy {
	struct weft_pool *pool;
	struct gate gate;
	struct blocker blk;
	struct weft_future *running;
	struct weft_future *queued;
	atomic_int queued_ran;
};

static int queued_task(void *arg, void **result)
{
	struct busy *b = arg;

	atomic_fetch_add(&b->queued_ran, 1);
	*result = &marker;
	return 0;
}

static void busy_start(struct busy *b)
{
	b->pool = pool_new(1);
	cr_assert_not_null(b->pool);
	gate_init(&b->gate);
	blocker_init(&b->blk, &b->gate, &marker, 0);
	atomic_init(&b->queued_ran, 0);
	cr_assert_eq(weft_submit(b->pool, blocker_task, &b->blk, &b->running), 0);
	cr_assert(blocker_wait_started(&b->blk));
	cr_assert_eq(weft_submit(b->pool, queued_task, b, &b->queued), 0);
}

static void busy_finish(struct busy *b)
{
	gate_open(&b->gate);
	weft_pool_destroy(b->pool);
	cr_assert_eq(atomic_load(&b->blk.gate_ok), 1);
	weft_future_unref(b->running);
	weft_future_unref(b->queued);
	gate_fini(&b->gate);
}

Test(future, states_go_pending_running_done, .timeout = 30)
{
	struct busy b;

	busy_start(&b);
	cr_assert(wait_state(b.running, WEFT_FUTURE_RUNNING));
	cr_assert_eq(weft_future_state(b.queued), WEFT_FUTURE_PENDING);
	gate_open(&b.gate);
	cr_assert_eq(weft_future_wait(b.running), 0);
	cr_assert_eq(weft_future_state(b.running), WEFT_FUTURE_DONE);
	cr_assert_eq(weft_future_wait(b.queued), 0);
	cr_assert_eq(weft_future_state(b.queued), WEFT_FUTURE_DONE);
	cr_assert_eq(atomic_load(&b.queued_ran), 1);
	busy_finish(&b);
}

Test(future, error_is_einprogress_until_complete, .timeout = 30)
{
	struct busy b;

	busy_start(&b);
	cr_assert_eq(weft_future_error(b.running), -EINPROGRESS);
	cr_assert_eq(weft_future_error(b.queued), -EINPROGRESS);
	cr_assert_null(weft_future_value(b.running));
	gate_open(&b.gate);
	cr_assert_eq(weft_future_wait(b.queued), 0);
	cr_assert_eq(weft_future_error(b.running), 0);
	cr_assert_eq(weft_future_error(b.queued), 0);
	busy_finish(&b);
}

Test(future, wait_until_past_deadline_on_pending_times_out, .timeout = 30)
{
	struct busy b;

	busy_start(&b);
	cr_assert_eq(weft_future_wait_until(b.queued, weft_now() - 1), -ETIMEDOUT);
	cr_assert_eq(weft_future_wait_until(b.queued, 0), -ETIMEDOUT);
	cr_assert_eq(weft_future_wait_until(b.running, weft_now() - 1), -ETIMEDOUT);
	cr_assert_eq(weft_future_state(b.queued), WEFT_FUTURE_PENDING);
	busy_finish(&b);
}

Test(future, wait_until_waits_for_the_deadline, .timeout = 30)
{
	struct busy b;
	int64_t deadline;

	busy_start(&b);
	deadline = weft_now() + 20 * 1000 * 1000;
	cr_assert_eq(weft_future_wait_until(b.queued, deadline), -ETIMEDOUT);
	cr_assert_geq(weft_now(), deadline, "gave up before the deadline");
	busy_finish(&b);
}

Test(future, wait_until_succeeds_once_complete, .timeout = 30)
{
	struct busy b;

	busy_start(&b);
	gate_open(&b.gate);
	cr_assert_eq(weft_future_wait_until(b.queued, weft_now() + HELPER_PATIENCE_NS), 0);
	cr_assert_eq(weft_future_state(b.queued), WEFT_FUTURE_DONE);
	/* Complete: a past deadline is a successful poll. */
	cr_assert_eq(weft_future_wait_until(b.queued, 0), 0);
	cr_assert_eq(weft_future_wait_until(b.running, weft_now() - 1), 0);
	busy_finish(&b);
}

Test(future, wait_until_wakes_on_completion_before_deadline, .timeout = 30)
{
	struct busy b;
	struct delayed_open d;
	int64_t t0;

	busy_start(&b);
	cr_assert_eq(delayed_open_start(&d, &b.gate, 10), 0);
	t0 = weft_now();
	cr_assert_eq(weft_future_wait_until(b.queued, weft_now() + HELPER_PATIENCE_NS), 0);
	/* Woken by completion, not by the (10 s) deadline. */
	cr_assert_lt(weft_now() - t0, HELPER_PATIENCE_NS / 2);
	delayed_open_join(&d);
	busy_finish(&b);
}

Test(future, try_wait_is_eagain_then_zero, .timeout = 30)
{
	struct busy b;

	busy_start(&b);
	cr_assert_eq(weft_future_try_wait(b.running), -EAGAIN);
	cr_assert_eq(weft_future_try_wait(b.queued), -EAGAIN);
	gate_open(&b.gate);
	cr_assert_eq(weft_future_wait(b.queued), 0);
	cr_assert_eq(weft_future_try_wait(b.running), 0);
	cr_assert_eq(weft_future_try_wait(b.queued), 0);
	busy_finish(&b);
}

Test(future, try_get_is_eagain_then_value, .timeout = 30)
{
	struct busy b;
	void *value = &b;

	busy_start(&b);
	cr_assert_eq(weft_future_try_get(b.queued, &value), -EAGAIN);
	gate_open(&b.gate);
	cr_assert_eq(weft_future_wait(b.queued), 0);
	cr_assert_eq(weft_future_try_get(b.queued, &value), 0);
	cr_assert_eq(value, &marker);
	cr_assert_eq(weft_future_try_get(b.queued, NULL), 0);
	busy_finish(&b);
}

Test(future, get_waits_and_gives_value, .timeout = 30)
{
	struct busy b;
	struct delayed_open d;
	void *value = NULL;

	busy_start(&b);
	cr_assert_eq(delayed_open_start(&d, &b.gate, 10), 0);
	cr_assert_eq(weft_future_get(b.queued, &value), 0);
	cr_assert_eq(value, &marker);
	cr_assert_eq(weft_future_get(b.running, NULL), 0);
	delayed_open_join(&d);
	busy_finish(&b);
}

Test(future, get_gives_task_error, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;
	void *value = NULL;

	cr_assert_eq(weft_submit(pool, fail_task, (void *)(intptr_t)-ENOSPC, &f), 0);
	cr_assert_eq(weft_future_get(f, &value), -ENOSPC);
	cr_assert_eq(weft_future_try_get(f, &value), -ENOSPC);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(future, null_arguments_are_einval)
{
	void *value = &marker;

	cr_assert_eq(weft_future_wait(NULL), -EINVAL);
	cr_assert_eq(weft_future_wait_until(NULL, WEFT_FOREVER), -EINVAL);
	cr_assert_eq(weft_future_get(NULL, &value), -EINVAL);
	cr_assert_eq(value, &marker);
	cr_assert_eq(weft_future_cancel(NULL), -EINVAL);
	weft_future_unref(NULL);
}

Test(future, extra_reference_keeps_future_alive_after_pool_destroy,
     .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, value_task, &marker, &f), 0);
	weft_future_ref(f);
	weft_future_ref(f);
	weft_future_unref(f);
	weft_pool_destroy(pool);
	/* Two references remain (ours and the extra): under ASan a premature
	 * free shows here as a use after free. */
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_DONE);
	weft_future_unref(f);
	cr_assert_eq(weft_future_value(f), &marker);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
}

Test(future, future_stays_valid_after_pool_destroy, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, value_task, &marker, &f), 0);
	weft_pool_destroy(pool);
	cr_assert_eq(weft_future_try_wait(f), 0);
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_DONE);
	cr_assert_eq(weft_future_value(f), &marker);
	weft_future_unref(f);
}

Test(future, dropping_our_reference_does_not_stop_the_task, .timeout = 30)
{
	struct busy b;

	busy_start(&b);
	weft_future_unref(b.queued);
	b.queued = NULL;
	gate_open(&b.gate);
	weft_pool_destroy(b.pool);
	cr_assert_eq(atomic_load(&b.queued_ran), 1);
	weft_future_unref(b.running);
	gate_fini(&b.gate);
}

Test(future, cancel_before_start_never_runs, .timeout = 30)
{
	struct busy b;
	void *value = &b;

	busy_start(&b);
	cr_assert_eq(weft_future_cancel(b.queued), 0);
	/* Completed by the cancel itself, before the worker is free. */
	cr_assert_eq(weft_future_try_wait(b.queued), 0);
	cr_assert_eq(weft_future_state(b.queued), WEFT_FUTURE_CANCELLED);
	cr_assert_eq(weft_future_error(b.queued), -ECANCELED);
	cr_assert_null(weft_future_value(b.queued));
	cr_assert_eq(weft_future_get(b.queued, &value), -ECANCELED);
	gate_open(&b.gate);
	weft_pool_destroy(b.pool);
	cr_assert_eq(atomic_load(&b.queued_ran), 0, "a cancelled task ran");
	cr_assert_eq(weft_future_state(b.queued), WEFT_FUTURE_CANCELLED);
	weft_future_unref(b.running);
	weft_future_unref(b.queued);
	gate_fini(&b.gate);
}

Test(future, cancel_twice_is_ealready, .timeout = 30)
{
	struct busy b;

	busy_start(&b);
	cr_assert_eq(weft_future_cancel(b.queued), 0);
	cr_assert_eq(weft_future_cancel(b.queued), -EALREADY);
	busy_finish(&b);
}

Test(future, cancel_after_done_is_ealready, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, value_task, &marker, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_cancel(f), -EALREADY);
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_DONE);
	cr_assert_eq(weft_future_value(f), &marker);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

struct cancel_probe {
	atomic_int started;
	atomic_int saw_false_first;
	atomic_int saw_true;
};

/* Polls weft_task_cancelled() until it turns true, as a long task should. */
static int cancellable_task(void *arg, void **result)
{
	struct cancel_probe *p = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;

	(void)result;
	atomic_store(&p->saw_false_first, !weft_task_cancelled());
	atomic_store(&p->started, 1);
	while (weft_now() < give_up) {
		if (weft_task_cancelled()) {
			atomic_store(&p->saw_true, 1);
			return -ECANCELED;
		}
		sleep_ms(1);
	}
	return 0;
}

Test(future, cancel_while_running_is_ebusy_and_sets_flag, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct cancel_probe p;
	struct weft_future *f = NULL;
	int st;

	atomic_init(&p.started, 0);
	atomic_init(&p.saw_false_first, 0);
	atomic_init(&p.saw_true, 0);
	cr_assert_eq(weft_submit(pool, cancellable_task, &p, &f), 0);
	cr_assert(wait_int(&p.started, 1));
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_RUNNING);
	cr_assert_eq(weft_future_cancel(f), -EBUSY);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(atomic_load(&p.saw_false_first), 1,
		     "weft_task_cancelled() was true before any cancel");
	cr_assert_eq(atomic_load(&p.saw_true), 1,
		     "weft_task_cancelled() never became true");
	/* The task kept running and returned -ECANCELED itself. */
	cr_assert_eq(weft_future_error(f), -ECANCELED);
	st = weft_future_state(f);
	cr_assert(st == WEFT_FUTURE_FAILED || st == WEFT_FUTURE_CANCELLED,
		  "state %d", st);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

static int cancelled_flag_task(void *arg, void **result)
{
	(void)arg;
	*result = (void *)(intptr_t)(weft_task_cancelled() ? 1 : 2);
	return 0;
}

Test(future, task_cancelled_is_false_outside_tasks_and_in_plain_tasks,
     .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_task_cancelled(), false);
	cr_assert_eq(weft_submit(pool, cancelled_flag_task, NULL, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq((intptr_t)weft_future_value(f), 2);
	cr_assert_eq(weft_task_cancelled(), false);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

/*
 * A task that waits on its own future. The test stores the pointer after
 * submit returns; the task spins until it appears.
 */
struct self_wait {
	_Atomic(struct weft_future *) self;
	int found;
	int wait_rc;
	int wait_until_rc;
	int get_rc;
	void *get_value;
};

static int self_wait_task(void *arg, void **result)
{
	struct self_wait *s = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;
	struct weft_future *self;

	while ((self = atomic_load(&s->self)) == NULL && weft_now() < give_up)
		sleep_ms(1);
	s->found = self != NULL;
	if (!self)
		return -EPROTO;
	s->wait_rc = weft_future_wait(self);
	s->wait_until_rc = weft_future_wait_until(self, weft_now() + 1000000000LL);
	s->get_rc = weft_future_get(self, &s->get_value);
	*result = &marker;
	return 0;
}

Test(future, waiting_on_own_future_is_edeadlk, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct self_wait s = { .wait_rc = 1, .wait_until_rc = 1, .get_rc = 1 };
	struct weft_future *f = NULL;

	atomic_init(&s.self, NULL);
	s.get_value = &s;
	cr_assert_eq(weft_submit(pool, self_wait_task, &s, &f), 0);
	atomic_store(&s.self, f);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(s.found, 1);
	cr_assert_eq(s.wait_rc, -EDEADLK);
	cr_assert_eq(s.wait_until_rc, -EDEADLK);
	cr_assert_eq(s.get_rc, -EDEADLK);
	cr_assert_eq(s.get_value, &s, "get must leave *value untouched on -EDEADLK");
	cr_assert_eq(weft_future_value(f), &marker);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

/*
 * Inline execution: on a one-worker pool, task A submits B (onto A's own
 * deque) and waits for it. Nobody else can run B, so unless the waiting
 * worker runs it inline this hangs.
 */
struct inline_wait {
	struct weft_pool *pool;
	int submit_rc;
	int wait_rc;
	int a_index;
	atomic_int b_index;
	_Atomic(struct weft_future *) a_future; /* for the cycle test */
	int cycle_rc;
};

static int inline_child(void *arg, void **result)
{
	struct inline_wait *w = arg;

	atomic_store(&w->b_index, weft_worker_index());
	*result = &marker;
	return 0;
}

static int inline_parent(void *arg, void **result)
{
	struct inline_wait *w = arg;
	struct weft_future *b = NULL;

	w->a_index = weft_worker_index();
	w->submit_rc = weft_submit(w->pool, inline_child, w, &b);
	if (w->submit_rc != 0)
		return w->submit_rc;
	w->wait_rc = weft_future_wait(b);
	*result = weft_future_value(b);
	weft_future_unref(b);
	return 0;
}

Test(future, waiting_on_queued_task_runs_it_inline, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct inline_wait w = { .pool = pool, .submit_rc = 1, .wait_rc = 1 };
	struct weft_future *a = NULL;

	atomic_init(&w.b_index, -2);
	atomic_init(&w.a_future, NULL);
	cr_assert_eq(weft_submit(pool, inline_parent, &w, &a), 0);
	cr_assert_eq(weft_future_wait_until(a, weft_now() + HELPER_PATIENCE_NS), 0,
		     "waiting inside a task on a queued task hung");
	cr_assert_eq(w.submit_rc, 0);
	cr_assert_eq(w.wait_rc, 0);
	cr_assert_eq(weft_future_value(a), &marker, "B's value not seen by A");
	cr_assert_eq(atomic_load(&w.b_index), 0);
	weft_future_unref(a);
	weft_pool_destroy(pool);
}

/* B runs inline under A's wait and waits on A: a cycle, -EDEADLK. */
static int cycle_child(void *arg, void **result)
{
	struct inline_wait *w = arg;

	w->cycle_rc = weft_future_wait(atomic_load(&w->a_future));
	*result = &marker;
	return 0;
}

static int cycle_parent(void *arg, void **result)
{
	struct inline_wait *w = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;
	struct weft_future *b = NULL;

	(void)result;
	while (atomic_load(&w->a_future) == NULL && weft_now() < give_up)
		sleep_ms(1);
	if (atomic_load(&w->a_future) == NULL)
		return -EPROTO;
	w->submit_rc = weft_submit(w->pool, cycle_child, w, &b);
	if (w->submit_rc != 0)
		return w->submit_rc;
	w->wait_rc = weft_future_wait(b);
	weft_future_unref(b);
	return 0;
}

Test(future, inline_waiter_cycle_is_edeadlk, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct inline_wait w = { .pool = pool, .submit_rc = 1, .wait_rc = 1,
				 .cycle_rc = 1 };
	struct weft_future *a = NULL;

	atomic_init(&w.b_index, -2);
	atomic_init(&w.a_future, NULL);
	cr_assert_eq(weft_submit(pool, cycle_parent, &w, &a), 0);
	atomic_store(&w.a_future, a);
	cr_assert_eq(weft_future_wait_until(a, weft_now() + HELPER_PATIENCE_NS), 0,
		     "a wait cycle through an inline waiter hung");
	cr_assert_eq(weft_future_error(a), 0);
	cr_assert_eq(w.submit_rc, 0);
	cr_assert_eq(w.wait_rc, 0);
	cr_assert_eq(w.cycle_rc, -EDEADLK);
	weft_future_unref(a);
	weft_pool_destroy(pool);
}

static void *waiter_thread_main(void *arg)
{
	struct weft_future *f = arg;

	return (void *)(intptr_t)weft_future_wait(f);
}

Test(future, several_threads_can_wait_on_one_future, .timeout = 30)
{
	struct busy b;
	pthread_t t[3];

	busy_start(&b);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, waiter_thread_main,
					    b.queued), 0);
	sleep_ms(5);
	gate_open(&b.gate);
	for (int i = 0; i < 3; i++) {
		void *rc = (void *)1;

		pthread_join(t[i], &rc);
		cr_assert_eq((intptr_t)rc, 0);
	}
	cr_assert_eq(weft_future_state(b.queued), WEFT_FUTURE_DONE);
	busy_finish(&b);
}
