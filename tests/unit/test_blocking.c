/*
 * test_blocking.c - weft/io.h's blocking calls: weft_submit_blocking() and
 * weft_run_blocking(). Results and errors, from tasks and from threads;
 * where the function runs (a thread of the call pool, not a worker, not
 * the caller); that a call never holds a worker; the call pool's
 * parallelism and its cap; cancellation of queued and running calls, and
 * of a task waiting in weft_run_blocking(); destroy; bad arguments; and
 * the blocking I/O backend, which the calls must not depend on.
 *
 * Functions that run on the call pool never call Criterion's assertions:
 * they record what they saw in their argument, and the test thread
 * asserts afterwards. Nothing waits a fixed time for another thread to
 * progress: a test that needs a call to have started polls for it with a
 * bound (helpers.h), and every outer wait has a deadline, so a broken
 * implementation fails an assertion instead of hanging.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <weft.h>
#include <weft/io.h>

#include "helpers.h"

#define MS (1000LL * 1000)
/* Criterion 2.4.1 needs the same .timeout on every test of a binary. */
#define TMO 60
/* Bound on the waits that must not hang a broken implementation. */
#define SOON (10000 * MS)
/* What *out holds before a call that must reset it. */
#define SENTINEL ((struct weft_future *)(uintptr_t)0x5a5a5a50)

static struct weft_pool *pool_with(unsigned workers, unsigned calls,
				   unsigned backend)
{
	struct weft_pool_options o;
	struct weft_pool *pool = NULL;

	weft_pool_options_init(&o);
	o.workers = workers;
	o.blocking_threads = calls;
	o.io_backend = backend;
	cr_assert_eq(weft_pool_create(&o, &pool), 0);
	return pool;
}

/* Wait for @f with a deadline; assert it completed in time. */
static void wait_soon(struct weft_future *f)
{
	cr_assert_eq(weft_future_wait_until(f, weft_now() + SOON), 0,
		     "the future did not complete in time");
}

/* ---- functions the call pool runs ------------------------------------- */

/* *result = arg. */
static int give(void *arg, void **result)
{
	*result = arg;
	return 0;
}

/* Fails with -EIO, leaving a value behind that must not show. */
static int fail_eio(void *arg, void **result)
{
	(void)arg;
	*result = (void *)(uintptr_t)0xbad;
	return -EIO;
}

/* A positive return counts as 0, as for a task. */
static int positive(void *arg, void **result)
{
	*result = arg;
	return 7;
}

/* Where a call ran. */
struct where {
	int worker_index;
	pthread_t thread;
	atomic_int ran;
};

static int record_where(void *arg, void **result)
{
	struct where *w = arg;

	(void)result;
	w->worker_index = weft_worker_index();
	w->thread = pthread_self();
	atomic_store(&w->ran, 1);
	return 0;
}

/* Blocks until @flag is set (true) or gives up (-ETIMEDOUT). */
static int wait_flag(void *arg, void **result)
{
	atomic_int *flag = arg;

	(void)result;
	return wait_int(flag, 1) ? 0 : -ETIMEDOUT;
}

static int set_flag(void *arg, void **result)
{
	(void)result;
	atomic_store((atomic_int *)arg, 1);
	return 0;
}

/* ---- results and errors ----------------------------------------------- */

static void check_outcomes(struct weft_pool *pool)
{
	struct weft_future *f;
	void *v = NULL;

	cr_assert_eq(weft_submit_blocking(pool, give, (void *)(uintptr_t)42,
					  &f), 0);
	cr_assert_eq(weft_future_get(f, &v), 0);
	cr_expect_eq(v, (void *)(uintptr_t)42);
	cr_expect_eq(weft_future_state(f), WEFT_FUTURE_DONE);
	cr_expect_eq(weft_io_result(f), 0, "a call's io result is its error");
	weft_future_unref(f);

	cr_assert_eq(weft_submit_blocking(pool, fail_eio, NULL, &f), 0);
	v = (void *)1;
	cr_expect_eq(weft_future_get(f, &v), -EIO);
	cr_expect_eq(v, (void *)1, "get must not touch *value on failure");
	cr_expect_eq(weft_future_state(f), WEFT_FUTURE_FAILED);
	cr_expect_eq(weft_future_error(f), -EIO);
	cr_expect_null(weft_future_value(f));
	cr_expect_eq(weft_io_result(f), -EIO);
	weft_future_unref(f);

	cr_assert_eq(weft_submit_blocking(pool, positive, (void *)3, &f), 0);
	cr_expect_eq(weft_future_get(f, &v), 0);
	cr_expect_eq(v, (void *)3);
	cr_expect_eq(weft_io_await(f), 0, "await takes a call's future");

	v = NULL;
	cr_expect_eq(weft_run_blocking(pool, give, (void *)9, &v), 0);
	cr_expect_eq(v, (void *)9);
	cr_expect_eq(weft_run_blocking(pool, fail_eio, NULL, NULL), -EIO);
	cr_expect_eq(weft_run_blocking(pool, give, (void *)9, NULL), 0);
}

Test(blocking, value_and_error_come_back_to_a_thread, .timeout = TMO)
{
	struct weft_pool *pool = pool_with(2, 0, WEFT_IO_AUTO);

	check_outcomes(pool);
	weft_pool_destroy(pool);
}

Test(blocking, value_and_error_with_the_blocking_io_backend, .timeout = TMO)
{
	struct weft_pool *pool = pool_with(2, 0, WEFT_IO_BLOCKING);

	cr_assert_eq(weft_io_backend(pool), WEFT_IO_BLOCKING);
	check_outcomes(pool);
	weft_pool_destroy(pool);
}

/* In a task: both forms, pool NULL (the task's) and named. */
struct in_task {
	struct weft_pool *pool;
	int get_err, get_fail_err, run_err, run_fail_err, state;
	void *get_value, *run_value;
};

static int outcomes_task(void *arg, void **result)
{
	struct in_task *t = arg;
	struct weft_future *f = NULL;

	(void)result;
	t->get_err = weft_submit_blocking(NULL, give, (void *)11, &f);
	if (t->get_err == 0) {
		t->get_err = weft_future_get(f, &t->get_value);
		t->state = weft_future_state(f);
		weft_future_unref(f);
	}
	t->get_fail_err = weft_submit_blocking(t->pool, fail_eio, NULL, &f);
	if (t->get_fail_err == 0) {
		t->get_fail_err = weft_future_get(f, NULL);
		weft_future_unref(f);
	}
	t->run_err = weft_run_blocking(NULL, give, (void *)12, &t->run_value);
	t->run_fail_err = weft_run_blocking(t->pool, fail_eio, NULL, NULL);
	return 0;
}

Test(blocking, value_and_error_come_back_to_a_task, .timeout = TMO)
{
	struct weft_pool *pool = pool_with(2, 0, WEFT_IO_AUTO);
	struct in_task t = {.pool = pool};
	struct weft_future *f;

	cr_assert_eq(weft_submit(pool, outcomes_task, &t, &f), 0);
	wait_soon(f);
	weft_future_unref(f);
	cr_expect_eq(t.get_err, 0);
	cr_expect_eq(t.get_value, (void *)11);
	cr_expect_eq(t.state, WEFT_FUTURE_DONE);
	cr_expect_eq(t.get_fail_err, -EIO);
	cr_expect_eq(t.run_err, 0);
	cr_expect_eq(t.run_value, (void *)12);
	cr_expect_eq(t.run_fail_err, -EIO);
	weft_pool_destroy(pool);
}

/* ---- where it runs -------------------------------------------------- */

struct where_task {
	struct where w;
	pthread_t self;
	int err;
};

static int where_from_task(void *arg, void **result)
{
	struct where_task *t = arg;

	(void)result;
	t->self = pthread_self(); /* no wait before the call: still ours */
	t->err = weft_run_blocking(NULL, record_where, &t->w, NULL);
	return 0;
}

Test(blocking, runs_on_a_thread_that_is_neither_a_worker_nor_the_caller,
     .timeout = TMO)
{
	struct weft_pool *pool = pool_with(2, 0, WEFT_IO_AUTO);
	struct where w = {.worker_index = 99};
	struct where_task t = {.w = {.worker_index = 99}};
	struct weft_future *f;

	cr_assert_eq(weft_run_blocking(pool, record_where, &w, NULL), 0);
	cr_expect_eq(atomic_load(&w.ran), 1);
	cr_expect_eq(w.worker_index, -1);
	cr_expect(!pthread_equal(w.thread, pthread_self()));

	cr_assert_eq(weft_submit(pool, where_from_task, &t, &f), 0);
	wait_soon(f);
	weft_future_unref(f);
	cr_expect_eq(t.err, 0);
	cr_expect_eq(atomic_load(&t.w.ran), 1);
	cr_expect_eq(t.w.worker_index, -1);
	cr_expect(!pthread_equal(t.w.thread, t.self),
		  "the call ran on the submitting worker's thread");
	weft_pool_destroy(pool);
}

/* ---- it does not hold a worker --------------------------------------- */

struct holder {
	atomic_int flag;
	atomic_int entered; /* the task is about to call weft_run_blocking */
	int err;
};

static int holder_task(void *arg, void **result)
{
	struct holder *h = arg;

	(void)result;
	atomic_store(&h->entered, 1);
	h->err = weft_run_blocking(NULL, wait_flag, &h->flag, NULL);
	return 0;
}

Test(blocking, a_waiting_task_does_not_hold_its_worker, .timeout = TMO)
{
	/* One worker: the task that sets the flag can only run if the task
	 * in weft_run_blocking() gave the worker up. */
	struct weft_pool *pool = pool_with(1, 0, WEFT_IO_AUTO);
	struct holder h = {.err = 1};
	struct weft_future *a, *b;
	int ra, rb;

	cr_assert_eq(weft_submit(pool, holder_task, &h, &a), 0);
	cr_assert(wait_int(&h.entered, 1));
	cr_assert_eq(weft_submit(pool, set_flag, &h.flag, &b), 0);
	rb = weft_future_wait_until(b, weft_now() + SOON);
	ra = weft_future_wait_until(a, weft_now() + SOON);
	atomic_store(&h.flag, 1); /* on failure: let everything end */
	cr_expect_eq(rb, 0, "the second task never ran: the worker is held");
	cr_expect_eq(ra, 0);
	weft_future_wait(a);
	cr_expect_eq(h.err, 0);
	weft_future_unref(a);
	weft_future_unref(b);
	weft_pool_destroy(pool);
}

/* ---- parallelism and the cap ------------------------------------------ */

struct rendezvous {
	int need;
	atomic_int arrived;
	atomic_int running, max_running;
};

/* Arrive, then wait until @need calls have arrived: only possible if
 * that many run at once. */
static int meet(void *arg, void **result)
{
	struct rendezvous *r = arg;
	int64_t give_up = weft_now() + SOON;

	(void)result;
	atomic_fetch_add(&r->arrived, 1);
	while (atomic_load(&r->arrived) < r->need) {
		if (weft_now() > give_up)
			return -ETIMEDOUT;
		sleep_ms(1);
	}
	return 0;
}

Test(blocking, thirty_two_calls_run_at_once, .timeout = TMO)
{
	enum { N = 32 };
	struct weft_pool *pool = pool_with(1, N, WEFT_IO_AUTO);
	struct rendezvous r = {.need = N};
	struct weft_future *f[N];

	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_submit_blocking(pool, meet, &r, &f[i]), 0);
	for (int i = 0; i < N; i++) {
		wait_soon(f[i]);
		cr_expect_eq(weft_future_error(f[i]), 0,
			     "call %d: the %d calls never ran together", i, N);
		weft_future_unref(f[i]);
	}
	weft_pool_destroy(pool);
}

/* Count how many run at once; the first two wait until two have been
 * seen together (so the cap is reached, not just respected). */
static int count_concurrent(void *arg, void **result)
{
	struct rendezvous *r = arg;
	int64_t give_up = weft_now() + SOON;
	int now = atomic_fetch_add(&r->running, 1) + 1;
	int max = atomic_load(&r->max_running);

	(void)result;
	while (now > max &&
	       !atomic_compare_exchange_weak(&r->max_running, &max, now))
		;
	while (atomic_load(&r->max_running) < 2 && weft_now() < give_up)
		sleep_ms(1);
	sleep_ms(1); /* a chance for a third to overlap, were it allowed */
	atomic_fetch_sub(&r->running, 1);
	return 0;
}

Test(blocking, blocking_threads_caps_the_calls_running_at_once,
     .timeout = TMO)
{
	enum { N = 16 };
	struct weft_pool *pool = pool_with(2, 2, WEFT_IO_AUTO);
	struct rendezvous r = {0};
	struct weft_future *f[N];

	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_submit_blocking(pool, count_concurrent, &r,
						  &f[i]), 0);
	for (int i = 0; i < N; i++) {
		wait_soon(f[i]);
		cr_expect_eq(weft_future_error(f[i]), 0);
		weft_future_unref(f[i]);
	}
	cr_expect_eq(atomic_load(&r.max_running), 2,
		     "%d calls ran at once with blocking_threads = 2",
		     atomic_load(&r.max_running));
	weft_pool_destroy(pool);
}

/* ---- cancellation ----------------------------------------------------- */

static void check_queued_cancel(unsigned backend)
{
	struct weft_pool *pool = pool_with(1, 1, backend);
	struct gate g;
	struct blocker b;
	atomic_int count = 0;
	struct weft_future *first, *second, *third;

	gate_init(&g);
	blocker_init(&b, &g, (void *)5, 0);
	cr_assert_eq(weft_submit_blocking(pool, blocker_task, &b, &first), 0);
	cr_assert(blocker_wait_started(&b));
	/* The only thread is taken: this one queues. */
	cr_assert_eq(weft_submit_blocking(pool, count_task, &count, &second),
		     0);
	cr_expect_eq(weft_future_cancel(second), 0);
	cr_expect_eq(weft_future_state(second), WEFT_FUTURE_CANCELLED);
	cr_expect_eq(weft_future_error(second), -ECANCELED);
	cr_expect_eq(weft_future_cancel(second), -EALREADY);
	/* FIFO on one thread: had the second stayed queued, it would run
	 * before the third. */
	cr_assert_eq(weft_submit_blocking(pool, count_task, &count, &third),
		     0);
	gate_open(&g);
	wait_soon(first);
	wait_soon(third);
	cr_expect_eq(weft_future_value(first), (void *)5);
	cr_expect_eq(weft_future_state(third), WEFT_FUTURE_DONE);
	cr_expect_eq(atomic_load(&count), 1, "the cancelled call ran");
	weft_future_unref(first);
	weft_future_unref(second);
	weft_future_unref(third);
	weft_pool_destroy(pool);
	gate_fini(&g);
}

Test(blocking, cancel_of_a_queued_call_means_it_never_runs, .timeout = TMO)
{
	check_queued_cancel(WEFT_IO_AUTO);
}

Test(blocking, cancel_of_a_queued_call_with_the_blocking_io_backend,
     .timeout = TMO)
{
	check_queued_cancel(WEFT_IO_BLOCKING);
}

Test(blocking, cancel_of_a_running_call_is_ebusy_and_it_finishes,
     .timeout = TMO)
{
	struct weft_pool *pool = pool_with(1, 0, WEFT_IO_AUTO);
	struct gate g;
	struct blocker b;
	struct weft_future *f;
	void *v = NULL;

	gate_init(&g);
	blocker_init(&b, &g, (void *)77, 0);
	cr_assert_eq(weft_submit_blocking(pool, blocker_task, &b, &f), 0);
	cr_assert(blocker_wait_started(&b));
	cr_expect_eq(weft_future_cancel(f), -EBUSY);
	cr_expect_eq(weft_future_cancel(f), -EBUSY);
	cr_expect_eq(weft_future_try_wait(f), -EAGAIN,
		     "a running call completed at its cancel");
	gate_open(&g);
	cr_expect_eq(weft_future_get(f, &v), 0);
	cr_expect_eq(v, (void *)77);
	cr_expect_eq(atomic_load(&b.finished), 1);
	cr_expect_eq(weft_future_cancel(f), -EALREADY);
	weft_future_unref(f);
	weft_pool_destroy(pool);
	gate_fini(&g);
}

/* A task in weft_run_blocking() while a cancelling shutdown comes. */
struct long_call {
	struct gate *gate;
	atomic_int started, finished;
	atomic_int ran; /* count_task-like, for calls that must not run */
};

static int long_fn(void *arg, void **result)
{
	struct long_call *c = arg;

	atomic_store(&c->started, 1);
	if (!gate_wait(c->gate)) {
		atomic_store(&c->finished, 1);
		return -ETIMEDOUT;
	}
	*result = (void *)(uintptr_t)123;
	atomic_store(&c->finished, 1);
	return 0;
}

struct run_task {
	struct long_call *call;
	weft_task_fn fn;
	atomic_int entered;
	int err;
	void *value;
	int finished_at_return; /* fn had finished when run returned */
	bool saw_cancel;
};

static int run_task(void *arg, void **result)
{
	struct run_task *t = arg;

	(void)result;
	atomic_store(&t->entered, 1);
	t->err = weft_run_blocking(NULL, t->fn, t->call, &t->value);
	t->finished_at_return = atomic_load(&t->call->finished);
	t->saw_cancel = weft_task_cancelled();
	return 0;
}

/* The shutdown blocks until the task ends; it is run here, on a thread. */
struct shutdown_thread {
	pthread_t thread;
	struct weft_pool *pool;
	unsigned flags;
	int rc;
};

static void *shutdown_main(void *arg)
{
	struct shutdown_thread *s = arg;

	s->rc = weft_pool_shutdown(s->pool, s->flags, weft_now() + 3 * SOON);
	return NULL;
}

Test(blocking, cancelled_task_waits_for_the_running_call_and_gets_its_result,
     .timeout = TMO)
{
	struct weft_pool *pool = pool_with(1, 0, WEFT_IO_AUTO);
	struct gate g;
	struct long_call c = {.gate = &g};
	struct run_task t = {.call = &c, .fn = long_fn, .err = 1};
	struct shutdown_thread s = {.pool = pool,
				    .flags = WEFT_SHUTDOWN_CANCEL, .rc = 1};
	struct weft_future *f;
	int probe;

	gate_init(&g);
	cr_assert_eq(weft_submit(pool, run_task, &t, &f), 0);
	cr_assert(wait_int(&c.started, 1));
	cr_assert_eq(pthread_create(&s.thread, NULL, shutdown_main, &s), 0);
	/* Once outsiders are refused the shutdown has begun; the task may
	 * or may not have been woken yet, and either way the call's result
	 * must come back, after the call. */
	do {
		struct weft_future *x = NULL;

		probe = weft_submit(pool, value_task, NULL, &x);
		weft_future_unref(x);
	} while (probe == 0);
	cr_expect_eq(probe, -ESHUTDOWN);
	sleep_ms(20); /* usually enough for the cancel to reach the task */
	cr_expect_eq(weft_future_try_wait(f), -EAGAIN,
		     "the task returned while its call was running");
	gate_open(&g);
	pthread_join(s.thread, NULL);
	cr_expect_eq(s.rc, 0);
	cr_expect_eq(weft_future_try_wait(f), 0);
	cr_expect_eq(t.err, 0);
	cr_expect_eq(t.value, (void *)123);
	cr_expect_eq(t.finished_at_return, 1,
		     "weft_run_blocking returned before its call finished");
	cr_expect(t.saw_cancel, "the shutdown did not cancel the task");
	weft_future_unref(f);
	weft_pool_destroy(pool);
	gate_fini(&g);
}

static int ran_fn(void *arg, void **result)
{
	struct long_call *c = arg;

	(void)result;
	atomic_fetch_add(&c->ran, 1);
	atomic_store(&c->finished, 1);
	return 0;
}

Test(blocking, cancelled_task_drops_its_queued_call, .timeout = TMO)
{
	/* One call thread, taken by a blocker: the task's call queues. */
	struct weft_pool *pool = pool_with(1, 1, WEFT_IO_AUTO);
	struct gate g;
	struct blocker b;
	struct long_call c = {.gate = NULL};
	struct run_task t = {.call = &c, .fn = ran_fn, .err = 1};
	struct weft_future *first, *f, *after;

	gate_init(&g);
	blocker_init(&b, &g, NULL, 0);
	cr_assert_eq(weft_submit_blocking(pool, blocker_task, &b, &first), 0);
	cr_assert(blocker_wait_started(&b));
	cr_assert_eq(weft_submit(pool, run_task, &t, &f), 0);
	cr_assert(wait_int(&t.entered, 1));
	/* Whether the cancel finds the task before or in its wait, the
	 * call must not run and the result is -ECANCELED. */
	cr_expect_eq(weft_future_cancel(f), -EBUSY);
	wait_soon(f);
	cr_expect_eq(t.err, -ECANCELED);
	cr_expect(t.saw_cancel);
	/* FIFO on one thread: a call still queued would run before this. */
	cr_assert_eq(weft_submit_blocking(pool, value_task, NULL, &after), 0);
	gate_open(&g);
	wait_soon(first);
	wait_soon(after);
	cr_expect_eq(atomic_load(&c.ran), 0, "the cancelled task's call ran");
	weft_future_unref(first);
	weft_future_unref(after);
	weft_future_unref(f);
	weft_pool_destroy(pool);
	gate_fini(&g);
}

Test(blocking, destroy_cancels_queued_calls_and_waits_for_running_ones,
     .timeout = TMO)
{
	struct weft_pool *pool = pool_with(1, 1, WEFT_IO_AUTO);
	struct gate g;
	struct blocker b;
	atomic_int count = 0;
	struct weft_future *running, *queued;
	struct delayed_open d;

	gate_init(&g);
	blocker_init(&b, &g, (void *)8, 0);
	cr_assert_eq(weft_submit_blocking(pool, blocker_task, &b, &running),
		     0);
	cr_assert(blocker_wait_started(&b));
	cr_assert_eq(weft_submit_blocking(pool, count_task, &count, &queued),
		     0);
	/* The running call ends only when this opens, during destroy (or
	 * before: then the queued one may run, which the checks allow). */
	cr_assert_eq(delayed_open_start(&d, &g, 50), 0);
	weft_pool_destroy(pool);
	cr_expect_eq(weft_future_try_wait(running), 0);
	cr_expect_eq(weft_future_try_wait(queued), 0,
		     "destroy left a call pending");
	cr_expect_eq(atomic_load(&b.finished), 1);
	cr_expect_eq(weft_future_value(running), (void *)8);
	if (atomic_load(&count) == 0)
		cr_expect_eq(weft_future_state(queued), WEFT_FUTURE_CANCELLED);
	else
		cr_expect_eq(weft_future_state(queued), WEFT_FUTURE_DONE);
	delayed_open_join(&d);
	weft_future_unref(running);
	weft_future_unref(queued);
	gate_fini(&g);
}

/* A completion callback that cancels another call. */
struct chain {
	struct weft_future *next;
	atomic_int rc; /* the cancel's result; 1 until the callback ran */
};

static void cancel_next(struct weft_future *f, void *arg)
{
	struct chain *c = arg;

	(void)f;
	atomic_store(&c->rc, weft_future_cancel(c->next));
}

Test(blocking, a_callback_may_cancel_a_queued_call_during_destroy,
     .timeout = TMO)
{
	/* Destroy cancels queued calls one by one and their callbacks run
	 * meanwhile: a cancel of the next one must find it still queued
	 * (or complete), never wait for it. */
	struct weft_pool *pool = pool_with(1, 1, WEFT_IO_AUTO);
	struct gate g;
	struct blocker b;
	atomic_int count = 0;
	struct weft_future *running, *a, *next;
	struct chain c = {.rc = 1};
	struct delayed_open d;

	gate_init(&g);
	blocker_init(&b, &g, NULL, 0);
	cr_assert_eq(weft_submit_blocking(pool, blocker_task, &b, &running),
		     0);
	cr_assert(blocker_wait_started(&b));
	cr_assert_eq(weft_submit_blocking(pool, count_task, &count, &a), 0);
	cr_assert_eq(weft_submit_blocking(pool, count_task, &count, &next),
		     0);
	c.next = next;
	cr_assert_eq(weft_future_on_complete(a, cancel_next, &c), 0);
	cr_assert_eq(delayed_open_start(&d, &g, 50), 0);
	weft_pool_destroy(pool);
	delayed_open_join(&d);
	cr_expect_eq(weft_future_try_wait(a), 0);
	cr_expect_eq(weft_future_try_wait(next), 0);
	if (weft_future_state(a) == WEFT_FUTURE_CANCELLED)
		/* Cancelled by destroy: the next one was still queued. */
		cr_expect_eq(atomic_load(&c.rc), 0);
	if (atomic_load(&c.rc) == 0)
		cr_expect_eq(weft_future_state(next), WEFT_FUTURE_CANCELLED);
	weft_future_unref(running);
	weft_future_unref(a);
	weft_future_unref(next);
	gate_fini(&g);
}

/* ---- detached calls --------------------------------------------------- */

Test(blocking, detached_call_runs, .timeout = TMO)
{
	struct weft_pool *pool = pool_with(1, 0, WEFT_IO_AUTO);
	atomic_int count = 0;

	cr_assert_eq(weft_submit_blocking(pool, count_task, &count, NULL), 0);
	cr_expect(wait_int(&count, 1), "the detached call never ran");
	weft_pool_destroy(pool);
}

/* ---- bad arguments and shutdown --------------------------------------- */

Test(blocking, bad_arguments_are_einval_and_start_nothing, .timeout = TMO)
{
	struct weft_pool *pool = pool_with(1, 0, WEFT_IO_AUTO);
	struct weft_future *f = SENTINEL;
	atomic_int count = 0;

	cr_expect_eq(weft_submit_blocking(pool, NULL, NULL, &f), -EINVAL);
	cr_expect_null(f);
	f = SENTINEL;
	cr_expect_eq(weft_submit_blocking(NULL, count_task, &count, &f),
		     -EINVAL, "pool NULL outside a task");
	cr_expect_null(f);
	cr_expect_eq(weft_submit_blocking(pool, NULL, NULL, NULL), -EINVAL);
	cr_expect_eq(weft_run_blocking(pool, NULL, NULL, NULL), -EINVAL);
	cr_expect_eq(weft_run_blocking(NULL, count_task, &count, NULL),
		     -EINVAL);
	weft_pool_destroy(pool);
	cr_expect_eq(atomic_load(&count), 0);
}

Test(blocking, calls_after_shutdown_are_eshutdown, .timeout = TMO)
{
	struct weft_pool *pool = pool_with(1, 0, WEFT_IO_AUTO);
	struct weft_future *f = SENTINEL;
	atomic_int count = 0;

	cr_assert_eq(weft_pool_shutdown(pool, 0, WEFT_FOREVER), 0);
	cr_expect_eq(weft_submit_blocking(pool, count_task, &count, &f),
		     -ESHUTDOWN);
	cr_expect_null(f);
	cr_expect_eq(weft_submit_blocking(pool, count_task, &count, NULL),
		     -ESHUTDOWN);
	cr_expect_eq(weft_run_blocking(pool, count_task, &count, NULL),
		     -ESHUTDOWN);
	weft_pool_destroy(pool);
	cr_expect_eq(atomic_load(&count), 0);
}

Test(blocking, blocking_threads_over_1024_is_einval, .timeout = TMO)
{
	struct weft_pool_options o;
	struct weft_pool *pool = (struct weft_pool *)SENTINEL;

	weft_pool_options_init(&o);
	o.workers = 1;
	o.blocking_threads = 1025;
	cr_expect_eq(weft_pool_create(&o, &pool), -EINVAL);
	cr_expect_null(pool);
	o.blocking_threads = 1024;
	cr_assert_eq(weft_pool_create(&o, &pool), 0);
	cr_expect_eq(weft_run_blocking(pool, give, (void *)1, NULL), 0);
	weft_pool_destroy(pool);
}

/* A draining pool's own tasks may still make calls; outsiders may not. */
struct drain {
	atomic_int shut; /* set once outsiders are refused */
	atomic_int entered;
	int err;
	void *value;
};

static int draining_task(void *arg, void **result)
{
	struct drain *d = arg;

	(void)result;
	atomic_store(&d->entered, 1);
	/* Waits (without holding the worker) until the shutdown began. */
	if (weft_run_blocking(NULL, wait_flag, &d->shut, NULL) != 0) {
		d->err = -ETIMEDOUT;
		return 0;
	}
	d->err = weft_run_blocking(NULL, give, (void *)31, &d->value);
	return 0;
}

Test(blocking, draining_pool_refuses_outsiders_but_not_its_tasks,
     .timeout = TMO)
{
	struct weft_pool *pool = pool_with(1, 0, WEFT_IO_AUTO);
	struct drain d = {.err = 1};
	struct shutdown_thread s = {.pool = pool, .flags = 0, .rc = 1};
	struct weft_future *f;
	int probe;

	cr_assert_eq(weft_submit(pool, draining_task, &d, &f), 0);
	cr_assert(wait_int(&d.entered, 1));
	cr_assert_eq(pthread_create(&s.thread, NULL, shutdown_main, &s), 0);
	/* The drain waits for the task, which waits for d.shut. */
	do {
		struct weft_future *x = NULL;

		probe = weft_submit_blocking(pool, give, NULL, &x);
		weft_future_unref(x);
	} while (probe == 0);
	cr_expect_eq(probe, -ESHUTDOWN);
	atomic_store(&d.shut, 1);
	pthread_join(s.thread, NULL);
	cr_expect_eq(s.rc, 0);
	cr_expect_eq(d.err, 0, "a draining pool's task could not make a call");
	cr_expect_eq(d.value, (void *)31);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}
