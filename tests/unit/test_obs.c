/*
 * test_obs.c - observability (weft/obs.h): what each counter of
 * weft_pool_stats() means, pinned by workloads that produce known counts
 * (steals forced between two workers, waits that must suspend, I/O from
 * both sides); the task event hook and the order of its events; the
 * trace's call and its errors (the JSON itself is checked by
 * tests/obs/trace_check.py); slow-task reports firing and staying quiet;
 * bad input.
 *
 * Nothing is timed from above except by the tests' .timeout; a counter
 * that must move is polled until a deadline, so a failure is an assertion,
 * not a hang.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>
#include <weft/obs.h>

#include "helpers.h"

#define MS (1000LL * 1000)

static struct weft_pool *pool_opts(struct weft_pool_options *o)
{
	struct weft_pool *p = NULL;

	cr_assert_eq(weft_pool_create(o, &p), 0);
	return p;
}

static void stats(struct weft_pool *p, struct weft_pool_stats *s,
		  struct weft_worker_stats *w, unsigned n)
{
	cr_assert_eq(weft_pool_stats(p, s, w, n), 0);
}

static int nop_task(void *arg, void **res)
{
	(void)arg;
	*res = NULL;
	return 0;
}

/* ---- bad input ---------------------------------------------------------- */

Test(obs, stats_bad_input)
{
	struct weft_pool *p = pool_new(1);
	struct weft_pool_stats s;
	struct weft_worker_stats w[1];

	cr_expect_eq(weft_pool_stats(NULL, &s, NULL, 0), -EINVAL);
	cr_expect_eq(weft_pool_stats(p, NULL, NULL, 0), -EINVAL);
	cr_expect_eq(weft_pool_stats(p, &s, NULL, 1), -EINVAL);
	/* More slots than workers: only the first workers are filled. */
	memset(w, 0xab, sizeof(w));
	cr_expect_eq(weft_pool_stats(p, &s, w, 1), 0);
	cr_expect_eq(s.workers, 1);
	weft_pool_destroy(p);
}

Test(obs, negative_slow_threshold_refused)
{
	struct weft_pool_options o;
	struct weft_pool *p = (struct weft_pool *)&o;

	weft_pool_options_init(&o);
	o.workers = 1;
	o.slow_task_ns = -1;
	cr_expect_eq(weft_pool_create(&o, &p), -EINVAL);
	cr_expect_null(p);
}

/* ---- submissions and completions ---------------------------------------- */

Test(obs, outside_submits_counted, .timeout = 60)
{
	struct weft_pool *p = pool_new(2);
	struct weft_future *f[200];
	struct weft_pool_stats s;
	struct weft_worker_stats w[2];

	for (int i = 0; i < 200; i++)
		cr_assert_eq(weft_submit(p, nop_task, NULL, &f[i]), 0);
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(weft_future_wait(f[i]), 0);
		weft_future_unref(f[i]);
	}
	/* The last task's completion count is stored after its future
	 * completes: shut down so that every count is final. */
	cr_assert_eq(weft_pool_shutdown(p, 0, WEFT_FOREVER), 0);
	stats(p, &s, w, 2);
	cr_expect_eq(s.submitted_outside, 200);
	cr_expect_eq(s.submitted, 200);
	cr_expect_eq(s.total.submitted, 0, "no task submitted anything");
	cr_expect_eq(s.completed, 200);
	cr_expect_eq(s.total.tasks_run, 200);
	cr_expect_eq(w[0].tasks_run + w[1].tasks_run, 200);
	cr_expect_geq(s.total.inject_taken, 200);
	cr_expect_eq(s.inject_depth, 0);
	cr_expect_eq(s.total.deque_depth, 0);
	weft_pool_destroy(p);
}

struct fan {
	struct weft_pool *pool;
	int n;
};

static int fan_task(void *arg, void **res)
{
	struct fan *fa = arg;
	struct weft_future *f;

	for (int i = 0; i < fa->n; i++) {
		cr_assert_eq(weft_submit(fa->pool, nop_task, NULL, &f), 0);
		cr_assert_eq(weft_future_wait(f), 0);
		weft_future_unref(f);
	}
	*res = NULL;
	return 0;
}

Test(obs, task_submits_counted_on_workers, .timeout = 60)
{
	struct weft_pool *p = pool_new(2);
	struct fan fa = {p, 50};
	struct weft_future *f;
	struct weft_pool_stats s;

	cr_assert_eq(weft_submit(p, fan_task, &fa, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	cr_assert_eq(weft_pool_shutdown(p, 0, WEFT_FOREVER), 0);
	stats(p, &s, NULL, 0);
	cr_expect_eq(s.submitted_outside, 1);
	cr_expect_eq(s.total.submitted, 50);
	cr_expect_eq(s.submitted, 51);
	cr_expect_eq(s.completed, 51);
	weft_pool_destroy(p);
}

/* ---- steals, forced ------------------------------------------------------ */

struct hog {
	struct weft_pool *pool;
	int n;
	atomic_int ran;	      /* children that ran */
	atomic_int hog_worker;
	atomic_int wrong;     /* a child ran on the hog's worker */
	atomic_int timed_out;
};

static int child_task(void *arg, void **res)
{
	struct hog *h = arg;

	if (weft_worker_index() == atomic_load(&h->hog_worker))
		atomic_store(&h->wrong, 1);
	atomic_fetch_add(&h->ran, 1);
	*res = NULL;
	return 0;
}

/* Push n children on this worker's own deque, then hold the worker
 * (spinning, not waiting) until they have all run: each must have been
 * stolen by the other worker, one steal per child. */
static int hog_task(void *arg, void **res)
{
	struct hog *h = arg;
	int64_t until = weft_now() + 20000 * MS;

	atomic_store(&h->hog_worker, weft_worker_index());
	for (int i = 0; i < h->n; i++)
		cr_assert_eq(weft_submit(h->pool, child_task, h, NULL), 0);
	while (atomic_load(&h->ran) < h->n) {
		if (weft_now() > until) {
			atomic_store(&h->timed_out, 1);
			break;
		}
		/* Not a weft wait (the worker stays held), but lets the
		 * thief's thread run under Valgrind, which runs one thread
		 * at a time. */
		sched_yield();
	}
	*res = NULL;
	return 0;
}

Test(obs, steals_forced_between_two_workers, .timeout = 60)
{
	struct weft_pool *p = pool_new(2);
	struct hog h = {.pool = p, .n = 40};
	struct weft_future *f;
	struct weft_pool_stats s;
	struct weft_worker_stats w[2];
	int hw, other;

	atomic_init(&h.hog_worker, -1);
	cr_assert_eq(weft_submit(p, hog_task, &h, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	cr_assert_eq(weft_pool_shutdown(p, 0, WEFT_FOREVER), 0);
	cr_assert_eq(atomic_load(&h.timed_out), 0);
	cr_assert_eq(atomic_load(&h.wrong), 0);
	stats(p, &s, w, 2);
	hw = atomic_load(&h.hog_worker);
	other = 1 - hw;
	cr_expect_eq(w[other].steals, 40, "the other worker stole %lu",
		     (unsigned long)w[other].steals);
	cr_expect_eq(w[hw].steals, 0);
	cr_expect_eq(w[hw].submitted, 40);
	cr_expect_eq(w[other].tasks_run, 40);
	cr_expect_eq(w[hw].tasks_run, 1);
	cr_expect_eq(s.total.steals, 40);
	weft_pool_destroy(p);
}

/* A single worker has nobody to steal from: its searches never count. */
Test(obs, no_steals_alone, .timeout = 60)
{
	struct weft_pool *p = pool_new(1);
	struct weft_pool_stats s;
	struct fan fa = {p, 20};
	struct weft_future *f;

	cr_assert_eq(weft_submit(p, fan_task, &fa, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	stats(p, &s, NULL, 0);
	cr_expect_eq(s.total.steals, 0);
	cr_expect_eq(s.total.steal_failures, 0);
	weft_pool_destroy(p);
}

/* Two idle workers look at each other before they sleep: failed steals
 * and parks both grow, and a submission wakes one. */
Test(obs, parks_wakeups_and_failed_steals, .timeout = 60)
{
	struct weft_pool *p = pool_new(2);
	struct weft_pool_stats s, s2;
	struct weft_future *f;
	int64_t until = weft_now() + 10000 * MS;

	do {
		stats(p, &s, NULL, 0);
		if (s.total.parks >= 2)
			break;
		sleep_ms(1);
	} while (weft_now() < until);
	cr_assert_geq(s.total.parks, 2, "both workers park when idle");
	cr_expect_gt(s.total.steal_failures, 0);
	/* Wait until they are asleep again, then wake one with a task. */
	sleep_ms(50);
	stats(p, &s, NULL, 0);
	cr_assert_eq(weft_submit(p, nop_task, NULL, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	until = weft_now() + 10000 * MS;
	do {
		stats(p, &s2, NULL, 0);
		if (s2.total.wakeups > s.total.wakeups)
			break;
		sleep_ms(1);
	} while (weft_now() < until);
	cr_expect_gt(s2.total.wakeups, s.total.wakeups);
	cr_expect_leq(s2.total.wakeups, s2.total.parks,
		      "a wake-up ends a park");
	weft_pool_destroy(p);
}

/* ---- suspends, fibers ----------------------------------------------------- */

/* A wait that cannot be satisfied before the task suspends (a future only
 * the test thread completes, later) suspends it exactly once: ten waiting
 * tasks, ten suspends, ten resumes, and ten more fibers in use than the
 * workers' own while they wait. (A sleep would not do: on a loaded machine
 * its deadline can pass before the task gets to suspend.) */
static int wait_gate_task(void *arg, void **res)
{
	struct blocker *b = arg;
	struct weft_future *f = b->value;

	atomic_fetch_add(&b->started, 1);
	cr_assert_eq(weft_future_wait(f), 0);
	*res = NULL;
	return 0;
}

Test(obs, fibers_in_use_follow_waiting_tasks, .timeout = 60)
{
	struct weft_pool *p = pool_new(2), *q = pool_new(1);
	struct gate g;
	struct blocker bl, waiters;
	struct weft_future *blf, *f[10];
	struct weft_pool_stats s0, s;
	struct weft_pool_options o;

	weft_pool_options_init(&o);
	gate_init(&g);
	blocker_init(&bl, &g, NULL, 0);
	cr_assert_eq(weft_submit(q, blocker_task, &bl, &blf), 0);
	cr_assert(blocker_wait_started(&bl));
	stats(p, &s0, NULL, 0);
	memset(&waiters, 0, sizeof(waiters));
	waiters.value = blf;
	for (int i = 0; i < 10; i++)
		cr_assert_eq(weft_submit(p, wait_gate_task, &waiters, &f[i]),
			     0);
	cr_assert(wait_int(&waiters.started, 10));
	{
		int64_t until = weft_now() + 10000 * MS;

		do {
			stats(p, &s, NULL, 0);
			if (s.total.suspends == 10)
				break;
			sleep_ms(1);
		} while (weft_now() < until);
	}
	cr_expect_eq(s.total.suspends, 10);
	cr_expect_geq(s.fibers_in_use, s0.fibers_in_use + 10);
	cr_expect_eq(s.fibers, s.fibers_in_use + s.fibers_pooled);
	cr_expect_geq(s.stack_bytes, s.fibers * WEFT_STACK_SIZE_DEFAULT);
	gate_open(&g);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(weft_future_wait(f[i]), 0);
		weft_future_unref(f[i]);
	}
	cr_assert_eq(weft_pool_shutdown(p, 0, WEFT_FOREVER), 0);
	stats(p, &s, NULL, 0);
	cr_expect_eq(s.fibers_in_use, 0, "every fiber is back in a cache");
	cr_expect_eq(s.total.resumes, 10);
	weft_future_wait(blf);
	weft_future_unref(blf);
	weft_pool_destroy(p);
	weft_pool_destroy(q);
	gate_fini(&g);
}

/* ---- queue depths ---------------------------------------------------------- */

struct holder {
	struct weft_pool *pool;
	int kids;	     /* tasks to push on its own deque first */
	atomic_int pushed;   /* 1 once they are pushed */
	atomic_int release;  /* set by the test */
	atomic_int ran;	     /* kids that ran */
};

static int kid_task(void *arg, void **res)
{
	struct holder *h = arg;

	atomic_fetch_add(&h->ran, 1);
	*res = NULL;
	return 0;
}

/* Holds the only worker (spinning, not waiting) until released: whatever
 * is queued meanwhile stays queued. */
static int holder_task(void *arg, void **res)
{
	struct holder *h = arg;
	int64_t until = weft_now() + 20000 * MS;

	for (int i = 0; i < h->kids; i++)
		cr_assert_eq(weft_submit(h->pool, kid_task, h, NULL), 0);
	atomic_store(&h->pushed, 1);
	while (!atomic_load(&h->release) && weft_now() < until)
		sched_yield();
	*res = NULL;
	return 0;
}

Test(obs, queue_depths_while_the_worker_is_held, .timeout = 60)
{
	struct weft_pool *p = pool_new(1);
	struct holder h = {.pool = p, .kids = 3};
	struct weft_pool_stats s;
	struct weft_worker_stats w[1];
	struct weft_future *f;

	cr_assert_eq(weft_submit(p, holder_task, &h, &f), 0);
	cr_assert(wait_int(&h.pushed, 1));
	/* Five outside submissions the held worker cannot take. */
	for (int i = 0; i < 5; i++)
		cr_assert_eq(weft_submit(p, kid_task, &h, NULL), 0);
	stats(p, &s, w, 1);
	cr_expect_eq(s.inject_depth, 5);
	cr_expect_eq(w[0].deque_depth, 3, "the holder's own three");
	cr_expect_eq(s.total.deque_depth, 3);
	cr_expect_eq(s.submitted_outside, 6);
	cr_expect_eq(w[0].submitted, 3);
	atomic_store(&h.release, 1);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	cr_assert(wait_int(&h.ran, 8));
	cr_assert_eq(weft_pool_shutdown(p, 0, WEFT_FOREVER), 0);
	stats(p, &s, w, 1);
	cr_expect_eq(s.inject_depth, 0);
	cr_expect_eq(s.total.deque_depth, 0);
	cr_expect_eq(s.completed, 9);
	weft_pool_destroy(p);
}

/* ---- I/O and blocking calls ------------------------------------------------ */

static int nops_task(void *arg, void **res)
{
	struct weft_pool *p = arg;

	for (int i = 0; i < 5; i++) {
		struct weft_future *f;

		cr_assert_eq(weft_io_nop(p, WEFT_FOREVER, &f), 0);
		cr_assert_eq(weft_io_await(f), 0);
	}
	*res = NULL;
	return 0;
}

Test(obs, io_ops_counted, .timeout = 60)
{
	struct weft_pool *p = pool_new(2);
	struct weft_pool_stats s;
	struct weft_future *f;

	for (int i = 0; i < 7; i++) {
		cr_assert_eq(weft_io_nop(p, WEFT_FOREVER, &f), 0);
		cr_assert_eq(weft_io_await(f), 0);
	}
	cr_assert_eq(weft_submit(p, nops_task, p, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	stats(p, &s, NULL, 0);
	cr_expect_eq(s.io_submitted, 12);
	cr_expect_eq(s.total.io_submitted, 5, "the task's five");
	cr_expect_eq(s.io_completed, 12);
	cr_expect_eq(s.io_in_flight, 0);
	weft_pool_destroy(p);
}

static int gate_call(void *arg, void **res)
{
	struct gate *g = arg;

	cr_assert(gate_wait(g));
	*res = NULL;
	return 0;
}

Test(obs, blocking_calls_in_flight, .timeout = 60)
{
	struct weft_pool *p = pool_new(1);
	struct weft_pool_stats s;
	struct weft_future *f[3];
	struct gate g;
	int64_t until = weft_now() + 10000 * MS;

	gate_init(&g);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(weft_submit_blocking(p, gate_call, &g, &f[i]), 0);
	stats(p, &s, NULL, 0);
	cr_expect_eq(s.blocking_in_flight, 3);
	do {
		stats(p, &s, NULL, 0);
		if (s.blocking_threads == 3)
			break;
		sleep_ms(1);
	} while (weft_now() < until);
	cr_expect_eq(s.blocking_threads, 3);
	gate_open(&g);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(weft_future_wait(f[i]), 0);
		weft_future_unref(f[i]);
	}
	until = weft_now() + 10000 * MS;
	do {
		stats(p, &s, NULL, 0);
		if (s.blocking_in_flight == 0)
			break;
		sleep_ms(1);
	} while (weft_now() < until);
	cr_expect_eq(s.blocking_in_flight, 0);
	cr_expect_eq(s.io_submitted, 0, "blocking calls are not I/O ops");
	weft_pool_destroy(p);
	gate_fini(&g);
}

/* ---- stats off ---------------------------------------------------------- */

Test(obs, no_stats_keeps_counters_at_zero, .timeout = 60)
{
	struct weft_pool_options o;
	struct weft_pool *p;
	struct weft_pool_stats s;
	struct fan fa;
	struct weft_future *f;

	weft_pool_options_init(&o);
	o.workers = 2;
	o.no_stats = true;
	p = pool_opts(&o);
	fa = (struct fan){p, 10};
	cr_assert_eq(weft_submit(p, fan_task, &fa, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	cr_expect_eq(weft_pool_stats(p, &s, NULL, 0), -ENOTSUP);
	cr_expect_eq(s.total.tasks_run, 0);
	cr_expect_eq(s.total.submitted, 0);
	cr_expect_eq(s.workers, 2);
	cr_expect_geq(s.fibers, 2, "the fiber figures are kept");
	weft_pool_destroy(p);
}

/* ---- task events --------------------------------------------------------- */

#define NEV 5

struct evlog {
	atomic_int count[NEV];
	atomic_int outside_created; /* CREATED with worker -1 */
	atomic_int bad_worker;
	atomic_int seq;
	/* For the traced task: the sequence number of each event. */
	void *watch_fn;
	atomic_int at[NEV];
};

static void on_event(const struct weft_task_event_info *ev, void *arg)
{
	struct evlog *l = arg;
	int n = atomic_fetch_add(&l->seq, 1) + 1;

	cr_assert_lt((unsigned)ev->event, NEV);
	atomic_fetch_add(&l->count[ev->event], 1);
	if (ev->event == WEFT_TASK_CREATED && ev->worker == -1)
		atomic_fetch_add(&l->outside_created, 1);
	else if (ev->worker < 0 || ev->worker >= 2)
		atomic_fetch_add(&l->bad_worker, 1);
	if (ev->fn == l->watch_fn)
		atomic_store(&l->at[ev->event], n);
}

static int one_sleep_task(void *arg, void **res)
{
	(void)arg;
	cr_assert_eq(weft_sleep(1000000), 0);
	*res = NULL;
	return 0;
}

Test(obs, task_events_in_order, .timeout = 60)
{
	struct weft_pool_options o;
	struct weft_pool *p;
	struct evlog l;
	struct weft_future *f;
	struct fan fa;

	struct weft_pool *q = pool_new(1);
	struct gate g;
	struct blocker bl, waiter;
	struct weft_future *blf;

	/* The watched task waits on a future that only this thread
	 * completes, after the task has suspended: its wait must suspend. */
	gate_init(&g);
	blocker_init(&bl, &g, NULL, 0);
	cr_assert_eq(weft_submit(q, blocker_task, &bl, &blf), 0);
	cr_assert(blocker_wait_started(&bl));
	memset(&waiter, 0, sizeof(waiter));
	waiter.value = blf;
	memset(&l, 0, sizeof(l));
	l.watch_fn = (void *)wait_gate_task;
	weft_pool_options_init(&o);
	o.workers = 2;
	o.on_task_event = on_event;
	o.task_hook_arg = &l;
	p = pool_opts(&o);
	cr_assert_eq(weft_submit(p, wait_gate_task, &waiter, &f), 0);
	cr_assert(wait_int(&l.count[WEFT_TASK_SUSPENDED], 1));
	gate_open(&g);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	fa = (struct fan){p, 10};
	cr_assert_eq(weft_submit(p, fan_task, &fa, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	cr_assert_eq(weft_pool_shutdown(p, 0, WEFT_FOREVER), 0);
	/* 1 waiter + 1 fan + 10 children. */
	cr_expect_eq(atomic_load(&l.count[WEFT_TASK_CREATED]), 12);
	cr_expect_eq(atomic_load(&l.count[WEFT_TASK_STARTED]), 12);
	cr_expect_eq(atomic_load(&l.count[WEFT_TASK_FINISHED]), 12);
	cr_expect_eq(atomic_load(&l.outside_created), 2);
	cr_expect_eq(atomic_load(&l.bad_worker), 0);
	/* The waiter suspended once; the fan may suspend on children that
	 * another worker runs. */
	cr_expect_geq(atomic_load(&l.count[WEFT_TASK_SUSPENDED]), 1);
	cr_expect_eq(atomic_load(&l.count[WEFT_TASK_SUSPENDED]),
		     atomic_load(&l.count[WEFT_TASK_RESUMED]));
	cr_expect_lt(atomic_load(&l.at[WEFT_TASK_CREATED]),
		     atomic_load(&l.at[WEFT_TASK_STARTED]));
	cr_expect_lt(atomic_load(&l.at[WEFT_TASK_STARTED]),
		     atomic_load(&l.at[WEFT_TASK_SUSPENDED]));
	cr_expect_lt(atomic_load(&l.at[WEFT_TASK_SUSPENDED]),
		     atomic_load(&l.at[WEFT_TASK_RESUMED]));
	cr_expect_lt(atomic_load(&l.at[WEFT_TASK_RESUMED]),
		     atomic_load(&l.at[WEFT_TASK_FINISHED]));
	weft_pool_destroy(p);
	weft_future_wait(blf);
	weft_future_unref(blf);
	weft_pool_destroy(q);
	gate_fini(&g);
}

/* ---- the trace call ---------------------------------------------------------- */

Test(obs, trace_write_errors_and_file, .timeout = 60)
{
	struct weft_pool_options o;
	struct weft_pool *p, *off = pool_new(1);
	char path[] = "/tmp/weft-trace-XXXXXX";
	int fd = mkstemp(path);
	struct weft_future *f;
	char head[64] = {0};
	FILE *fp;

	cr_assert_geq(fd, 0);
	close(fd);
	weft_pool_options_init(&o);
	o.workers = 2;
	o.trace_events = 4096;
	p = pool_opts(&o);
	cr_assert_eq(weft_submit(p, one_sleep_task, NULL, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	cr_expect_eq(weft_pool_trace_write(NULL, path), -EINVAL);
	cr_expect_eq(weft_pool_trace_write(p, NULL), -EINVAL);
	cr_expect_eq(weft_pool_trace_write(p, path), -EBUSY,
		     "the workers still write their buffers");
	cr_expect_eq(weft_pool_trace_write(off, path), -ENODATA);
	cr_assert_eq(weft_pool_shutdown(p, 0, WEFT_FOREVER), 0);
	cr_expect_eq(weft_pool_trace_write(p, "/nonexistent-dir/t.json"),
		     -ENOENT);
	cr_assert_eq(weft_pool_trace_write(p, path), 0);
	fp = fopen(path, "r");
	cr_assert_not_null(fp);
	cr_assert_not_null(fgets(head, sizeof(head), fp));
	fclose(fp);
	cr_expect(strncmp(head, "{\"displayTimeUnit\"", 18) == 0, "%s", head);
	unlink(path);
	weft_pool_destroy(p);
	weft_pool_destroy(off);
}

/* ---- slow tasks ---------------------------------------------------------------- */

struct slowlog {
	atomic_int n;
	void *fn;
	int64_t ns;
	int worker;
};

static void on_slow(void *fn, int64_t ns, int worker, void *arg)
{
	struct slowlog *l = arg;

	if (atomic_fetch_add(&l->n, 1) == 0) {
		l->fn = fn;
		l->ns = ns;
		l->worker = worker;
	}
}

static void spin_ms(int64_t ms)
{
	int64_t until = weft_now() + ms * MS;

	while (weft_now() < until)
		sched_yield(); /* for Valgrind; still no weft wait */
}

static int hog_60ms(void *arg, void **res)
{
	(void)arg;
	spin_ms(60);
	*res = NULL;
	return 0;
}

/* 120 ms, a wait, 120 ms: more than the quiet test's 200 ms threshold in
 * all, but never that long without waiting. (The margins are wide: under
 * Valgrind or on a loaded machine a worker can stall for tens of ms.) The
 * wait is on a future that the test completes only once the task has
 * suspended, so it surely splits the run. */
static int split_hog(void *arg, void **res)
{
	spin_ms(120);
	cr_assert_eq(weft_future_wait(arg), 0);
	spin_ms(120);
	*res = NULL;
	return 0;
}

static int short_task(void *arg, void **res)
{
	(void)arg;
	spin_ms(1);
	*res = NULL;
	return 0;
}

static struct weft_pool *slow_pool(struct slowlog *l, int64_t ms)
{
	struct weft_pool_options o;

	memset(l, 0, sizeof(*l));
	weft_pool_options_init(&o);
	o.workers = 2;
	o.slow_task_ns = ms * MS;
	o.on_slow_task = on_slow;
	o.slow_task_arg = l;
	return pool_opts(&o);
}

static void run_one(struct weft_pool *p, weft_task_fn fn)
{
	struct weft_future *f;

	cr_assert_eq(weft_submit(p, fn, NULL, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
}

Test(obs, slow_task_reported, .timeout = 60)
{
	struct slowlog l;
	struct weft_pool *p = slow_pool(&l, 40);

	run_one(p, hog_60ms);
	cr_assert_eq(weft_pool_shutdown(p, 0, WEFT_FOREVER), 0);
	cr_expect_eq(atomic_load(&l.n), 1);
	cr_expect_eq(l.fn, (void *)hog_60ms);
	cr_expect_geq(l.ns, 60 * MS);
	cr_expect(l.worker == 0 || l.worker == 1);
	weft_pool_destroy(p);
}

Test(obs, slow_task_quiet_for_waits_and_short_tasks, .timeout = 60)
{
	struct slowlog l;
	struct weft_pool *p = slow_pool(&l, 200), *q = pool_new(1);
	struct weft_pool_stats s;
	struct weft_future *f, *blf;
	struct blocker bl;
	struct gate g;

	gate_init(&g);
	blocker_init(&bl, &g, NULL, 0);
	cr_assert_eq(weft_submit(q, blocker_task, &bl, &blf), 0);
	cr_assert(blocker_wait_started(&bl));
	cr_assert_eq(weft_submit(p, split_hog, blf, &f), 0);
	do {
		sleep_ms(1);
		stats(p, &s, NULL, 0);
	} while (s.total.suspends == 0);
	gate_open(&g);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	weft_future_wait(blf);
	weft_future_unref(blf);
	weft_pool_destroy(q);
	gate_fini(&g);
	for (int i = 0; i < 20; i++)
		run_one(p, short_task);
	run_one(p, one_sleep_task);
	cr_assert_eq(weft_pool_shutdown(p, 0, WEFT_FOREVER), 0);
	cr_expect_eq(atomic_load(&l.n), 0, "reported %p after %ld ns", l.fn,
		     (long)l.ns);
	weft_pool_destroy(p);
}

/* A task run inline by the task that awaits it holds the same worker:
 * the run is the outer task's, and it is reported once, under the outer
 * task's function. */
static int outer_awaits_hog(void *arg, void **res)
{
	struct weft_pool *p = arg;
	struct weft_future *f;

	cr_assert_eq(weft_submit(p, hog_60ms, NULL, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	*res = NULL;
	return 0;
}

Test(obs, slow_task_counts_inline_runs_once, .timeout = 60)
{
	struct slowlog l;
	struct weft_pool_options o;
	struct weft_pool *p;
	struct weft_future *f;

	memset(&l, 0, sizeof(l));
	weft_pool_options_init(&o);
	o.workers = 1; /* nobody can steal the child: it runs inline */
	o.slow_task_ns = 40 * MS;
	o.on_slow_task = on_slow;
	o.slow_task_arg = &l;
	p = pool_opts(&o);
	cr_assert_eq(weft_submit(p, outer_awaits_hog, p, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_future_unref(f);
	cr_assert_eq(weft_pool_shutdown(p, 0, WEFT_FOREVER), 0);
	cr_expect_eq(atomic_load(&l.n), 1);
	cr_expect_eq(l.fn, (void *)outer_awaits_hog);
	weft_pool_destroy(p);
}

/* The environment variable turns it on, and the default report names the
 * function (exported from this program: -rdynamic is not needed for the
 * address form, which is checked too) and the time. */
static void redirect(void)
{
	cr_redirect_stderr();
}

Test(obs, slow_task_env_prints_message, .init = redirect, .timeout = 60)
{
	struct weft_pool *p;
	char buf[512] = {0};
	FILE *err;

	setenv("WEFT_SLOW_TASK_MS", "30", 1);
	p = pool_new(1);
	unsetenv("WEFT_SLOW_TASK_MS");
	run_one(p, hog_60ms);
	weft_pool_destroy(p);
	fflush(stderr);
	err = cr_get_redirected_stderr();
	cr_assert_not_null(fgets(buf, sizeof(buf), err));
	cr_expect(strstr(buf, "weft: slow task: ") == buf, "%s", buf);
	cr_expect(strstr(buf, " ms on worker 0 without waiting (threshold "
			      "30.000 ms)") != NULL,
		  "%s", buf);
	/* Exactly one report. */
	cr_expect_null(fgets(buf, sizeof(buf), err), "second line: %s", buf);
}
