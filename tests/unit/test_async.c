/*
 * test_async.c - tasks on fibers (weft/async.h and the waits of
 * weft/future.h inside tasks): a waiting task suspends and frees its
 * worker, resumes on a valid worker (possibly another one), sleeps, yields
 * to queued work, is woken by a cancel (with shields), gives up at a
 * deadline, detects waiting on itself, keeps the stack aligned after a
 * switch, and dies with a report on a stack overflow. Plus the pool's
 * stack_size option.
 *
 * "Something to wait on" that only the test thread completes: a blocker
 * task (helpers.h) on a second one-worker pool. Its future is RUNNING, so a
 * task of the first pool that waits on it can neither run it inline nor
 * see it complete until the test opens the gate.
 *
 * Nothing here is timed from above ("took less than X") except through the
 * tests' own .timeout, or against a sleep several times longer; sleeps are
 * checked from below ("at least X").
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <immintrin.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft.h>
#include <weft/async.h>

#include "weft_config.h"
#include "helpers.h"

#define MS (1000LL * 1000)
#define SEC (1000LL * MS)

/*
 * Every test has the same .timeout: Criterion 2.4.1's runner (BoxFort's
 * bxfi_push_timeout) drops the rest of its timeout list when it inserts a
 * deadline earlier than one already queued, so with mixed values and -j2
 * some tests run without their timeout, and LeakSanitizer reports the
 * dropped entries. A wait that a cancel must end early sleeps for longer
 * than that timeout, so that a missed wake-up fails the test.
 */
#define LONG_SLEEP (60 * SEC)

static int marker;

/* ---- fixtures ------------------------------------------------------- */

/* An event completed by the test thread: a blocker on a pool of its own. */
struct xevent {
	struct weft_pool *pool;
	struct gate gate;
	struct blocker blk;
	struct weft_future *f;
};

static void xevent_start(struct xevent *e)
{
	e->pool = pool_new(1);
	cr_assert_not_null(e->pool);
	gate_init(&e->gate);
	blocker_init(&e->blk, &e->gate, &marker, 0);
	cr_assert_eq(weft_submit(e->pool, blocker_task, &e->blk, &e->f), 0);
	cr_assert(blocker_wait_started(&e->blk));
}

static void xevent_fire(struct xevent *e)
{
	gate_open(&e->gate);
}

static void xevent_fini(struct xevent *e)
{
	gate_open(&e->gate);
	weft_pool_destroy(e->pool);
	cr_assert_eq(atomic_load(&e->blk.gate_ok), 1,
		     "the event was not fired within the helpers' patience");
	weft_future_unref(e->f);
	gate_fini(&e->gate);
}

/* The kernel's id of the calling thread, read afresh on every call (a
 * task may have changed threads since the last one). */
__attribute__((noinline)) static pid_t cur_tid(void)
{
	__asm__ __volatile__("" ::: "memory");
	return (pid_t)syscall(SYS_gettid);
}

/* Worker threads' ids, recorded by the start hook. */
#define HOOK_MAX 8
struct worker_ids {
	_Atomic pid_t tid[HOOK_MAX];
};

static void record_tid(unsigned index, void *arg)
{
	struct worker_ids *ids = arg;

	if (index < HOOK_MAX)
		atomic_store(&ids->tid[index], cur_tid());
}

static struct weft_pool *pool_with_ids(unsigned workers,
				       struct worker_ids *ids)
{
	struct weft_pool_options opts;
	struct weft_pool *pool = NULL;

	memset(ids, 0, sizeof(*ids));
	weft_pool_options_init(&opts);
	opts.workers = workers;
	opts.on_worker_start = record_tid;
	opts.hook_arg = ids;
	cr_assert_eq(weft_pool_create(&opts, &pool), 0);
	return pool;
}

/* Death tests are expected to crash: keep them from writing core files. */
static void no_core(void)
{
	struct rlimit rl = {0, 0};

	setrlimit(RLIMIT_CORE, &rl);
}

/* ---- suspension frees the worker ----------------------------------- */

struct waiting {
	struct weft_future *on;
	atomic_int *started;
	atomic_int *ended;
	int r;
	int err;
	void *value;
};

static int wait_on_task(void *arg, void **result)
{
	struct waiting *c = arg;

	atomic_fetch_add(c->started, 1);
	c->r = weft_future_wait(c->on);
	c->err = weft_future_error(c->on);
	c->value = weft_future_value(c->on);
	atomic_fetch_add(c->ended, 1);
	*result = c;
	return 0;
}

Test(async, waiting_tasks_free_the_only_worker, .timeout = 30)
{
	/*
	 * One worker and 32 tasks that each wait on an event the test fires
	 * later (half on the blocker's future itself, half on a
	 * weft_when_all() future of it, which no task completes). All 32
	 * must start before the event fires: if a wait held the worker,
	 * only the first would.
	 */
	enum { N = 32 };
	struct weft_pool *pool = pool_new(1);
	struct weft_future *futs[N], *all = NULL;
	struct waiting c[N];
	atomic_int started, ended;
	struct xevent ev;
	int i;

	cr_assert_not_null(pool);
	atomic_init(&started, 0);
	atomic_init(&ended, 0);
	xevent_start(&ev);
	cr_assert_eq(weft_when_all(&ev.f, 1, &all), 0);
	for (i = 0; i < N; i++) {
		c[i] = (struct waiting){.on = i % 2 ? all : ev.f,
					.started = &started,
					.ended = &ended,
					.r = 1};
		cr_assert_eq(weft_submit(pool, wait_on_task, &c[i], &futs[i]),
			     0);
	}
	cr_assert(wait_int(&started, N),
		  "%d of %d waiting tasks started on a one-worker pool: a "
		  "wait held the worker", atomic_load(&started), N);
	cr_assert_eq(atomic_load(&ended), 0);
	for (i = 0; i < N; i++)
		cr_assert_eq(weft_future_state(futs[i]), WEFT_FUTURE_RUNNING,
			     "task %d", i);

	xevent_fire(&ev);
	for (i = 0; i < N; i++) {
		void *v = NULL;

		cr_assert_eq(weft_future_get(futs[i], &v), 0, "task %d", i);
		cr_assert_eq(v, &c[i]);
		cr_assert_eq(c[i].r, 0, "task %d: wait returned %d", i, c[i].r);
		cr_assert_eq(c[i].err, 0);
		cr_assert_eq(c[i].value, i % 2 ? NULL : (void *)&marker);
		weft_future_unref(futs[i]);
	}
	cr_assert_eq(atomic_load(&ended), N);
	weft_future_unref(all);
	weft_pool_destroy(pool);
	xevent_fini(&ev);
}

/* ---- a task that never waits stays on its thread -------------------- */

struct stay {
	struct worker_ids *ids;
	atomic_int bad;
};

static int no_wait_task(void *arg, void **result)
{
	struct stay *s = arg;
	int idx = weft_worker_index();
	pid_t tid = cur_tid();
	volatile unsigned spin = 0;

	(void)result;
	for (unsigned i = 0; i < 10000; i++)
		spin += i;
	if (idx < 0 || idx >= HOOK_MAX || weft_worker_index() != idx ||
	    cur_tid() != tid || atomic_load(&s->ids->tid[idx]) != tid)
		atomic_fetch_add(&s->bad, 1);
	return 0;
}

Test(async, task_that_never_waits_stays_on_its_worker, .timeout = 30)
{
	enum { N = 500 };
	struct worker_ids ids;
	struct weft_pool *pool = pool_with_ids(2, &ids);
	struct stay s = {.ids = &ids};

	atomic_init(&s.bad, 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_submit(pool, no_wait_task, &s, NULL), 0);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&s.bad), 0);
}

/* ---- after a wait: a valid worker, and its thread ------------------- */

struct hopper {
	struct worker_ids *ids;
	struct weft_pool *pool;
	unsigned nworkers;
	int bad_index, bad_tid, bad_wait, hops;
};

static int quick_task(void *arg, void **result)
{
	*result = arg;
	return 0;
}

__attribute__((noinline)) static int check_here(struct hopper *h, int *last)
{
	int idx = weft_worker_index();

	if (idx < 0 || (unsigned)idx >= h->nworkers) {
		h->bad_index++;
		return -1;
	}
	if (atomic_load(&h->ids->tid[idx]) != cur_tid())
		h->bad_tid++;
	if (*last >= 0 && *last != idx)
		h->hops++;
	*last = idx;
	return idx;
}

static int hopper_task(void *arg, void **result)
{
	struct hopper *h = arg;
	int last = -1;

	(void)result;
	check_here(h, &last);
	for (int i = 0; i < 200; i++) {
		struct weft_future *f = NULL;
		int r = 0;

		switch (i % 3) {
		case 0:
			r = weft_yield();
			break;
		case 1:
			r = weft_sleep(20 * 1000);
			break;
		case 2:
			/* A task on the same pool; whoever runs it, the wait
			 * may suspend. */
			r = weft_submit(h->pool, quick_task, h, &f);
			if (r == 0)
				r = weft_future_wait(f);
			weft_future_unref(f);
			break;
		}
		if (r != 0)
			h->bad_wait++;
		check_here(h, &last);
	}
	return 0;
}

Test(async, after_each_wait_task_runs_on_a_valid_worker_thread, .timeout = 30)
{
	/*
	 * Whether a task changes workers is up to the scheduler (the
	 * force_migration build makes it likely); what must hold after every
	 * wait is that weft_worker_index() names a worker of the pool and
	 * that the task runs on that worker's thread.
	 */
	enum { T = 4 };
	struct worker_ids ids;
	struct weft_pool *pool = pool_with_ids(2, &ids);
	struct weft_future *f[T];
	struct hopper h[T];
	int hops = 0;

	for (int i = 0; i < T; i++) {
		h[i] = (struct hopper){.ids = &ids, .pool = pool,
				       .nworkers = 2};
		cr_assert_eq(weft_submit(pool, hopper_task, &h[i], &f[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		cr_assert_eq(weft_future_wait(f[i]), 0);
		cr_assert_eq(weft_future_error(f[i]), 0);
		cr_assert_eq(h[i].bad_wait, 0, "task %d: a wait failed", i);
		cr_assert_eq(h[i].bad_index, 0,
			     "task %d: weft_worker_index() out of range", i);
		cr_assert_eq(h[i].bad_tid, 0,
			     "task %d: %d times on a thread that is not the "
			     "worker weft_worker_index() named", i,
			     h[i].bad_tid);
		hops += h[i].hops;
		weft_future_unref(f[i]);
	}
	cr_log_info("tasks changed workers %d times in %d waits", hops,
		    T * 200);
	weft_pool_destroy(pool);
}

/* ---- stack alignment after a switch -------------------------------- */

/* Called through a pointer so that the compiler cannot see that it keeps
 * the vector registers: a __m128 live across it must be spilled, and gcc
 * spills it with an aligned store (movaps), which faults on a stack that
 * is not 16-byte aligned. */
static void opaque(void)
{
	__asm__ __volatile__("" ::: "memory");
}

static void (*volatile opaque_fn)(void) = opaque;

__attribute__((noinline)) static int aligned_here(void)
{
	_Alignas(16) volatile char buf[16];
	__m128 a = _mm_set_ps(1.0f, 2.0f, 3.0f, 4.0f);
	_Alignas(16) float out[4];

	buf[0] = 1;
	opaque_fn();
	a = _mm_add_ps(a, a);
	_mm_store_ps(out, a);
	if (out[0] != 8.0f || out[3] != 2.0f)
		return 0;
	return (uintptr_t)buf % 16 == 0;
}

struct align_ctx {
	int checks;
	int misaligned;
	int bad_wait;
};

static int align_task(void *arg, void **result)
{
	struct align_ctx *c = arg;

	(void)result;
	c->checks++;
	c->misaligned += !aligned_here();
	for (int i = 0; i < 50; i++) {
		int r = (i % 2) ? weft_sleep(10 * 1000) : weft_yield();

		c->bad_wait += r != 0;
		c->checks++;
		c->misaligned += !aligned_here();
	}
	return 0;
}

Test(async, stack_stays_aligned_for_sse_after_a_wait, .timeout = 30)
{
	enum { T = 4 };
	struct weft_pool *pool = pool_new(2);
	struct weft_future *f[T];
	struct align_ctx c[T];

	cr_assert_not_null(pool);
	cr_assert(aligned_here(), "the test thread's own stack");
	for (int i = 0; i < T; i++) {
		c[i] = (struct align_ctx){0};
		cr_assert_eq(weft_submit(pool, align_task, &c[i], &f[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		cr_assert_eq(weft_future_wait(f[i]), 0);
		cr_assert_eq(weft_future_error(f[i]), 0);
		cr_assert_eq(c[i].checks, 51);
		cr_assert_eq(c[i].bad_wait, 0);
		cr_assert_eq(c[i].misaligned, 0,
			     "task %d: %d of 51 checks saw a misaligned stack",
			     i, c[i].misaligned);
		weft_future_unref(f[i]);
	}
	weft_pool_destroy(pool);
}

/* ---- weft_sleep ----------------------------------------------------- */

struct sleeper {
	int64_t ns;
	int r;
	int64_t elapsed;
};

static int sleep_task(void *arg, void **result)
{
	struct sleeper *s = arg;
	int64_t t0 = weft_now();

	(void)result;
	s->r = weft_sleep(s->ns);
	s->elapsed = weft_now() - t0;
	return 0;
}

static void *sleep_thread(void *arg)
{
	sleep_task(arg, NULL);
	return NULL;
}

Test(async, sleep_in_a_task_lasts_at_least_its_time, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct sleeper s = {.ns = 30 * MS, .r = 1};
	struct weft_future *f = NULL;

	cr_assert_not_null(pool);
	cr_assert_eq(weft_submit(pool, sleep_task, &s, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(s.r, 0);
	cr_assert_geq(s.elapsed, 30 * MS, "slept %lld ns",
		      (long long)s.elapsed);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

struct until_ctx {
	int r_future, r_past, r_zero, r_neg, r_sleep0;
	int64_t deadline, woke;
};

static int sleep_until_task(void *arg, void **result)
{
	struct until_ctx *c = arg;

	(void)result;
	c->deadline = weft_now() + 25 * MS;
	c->r_future = weft_sleep_until(c->deadline);
	c->woke = weft_now();
	c->r_past = weft_sleep_until(weft_now() - SEC);
	c->r_zero = weft_sleep_until(0);
	c->r_sleep0 = weft_sleep(0);
	c->r_neg = weft_sleep(-1);
	return 0;
}

static void check_until(const struct until_ctx *c)
{
	cr_assert_eq(c->r_future, 0);
	cr_assert_geq(c->woke, c->deadline, "woke %lld ns early",
		      (long long)(c->deadline - c->woke));
	cr_assert_eq(c->r_past, 0);
	cr_assert_eq(c->r_zero, 0);
	cr_assert_eq(c->r_sleep0, 0);
	cr_assert_eq(c->r_neg, -EINVAL);
}

Test(async, sleep_until_and_edge_cases_in_a_task, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct until_ctx c;
	struct weft_future *f = NULL;

	cr_assert_not_null(pool);
	memset(&c, 0xff, sizeof(c));
	cr_assert_eq(weft_submit(pool, sleep_until_task, &c, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	check_until(&c);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(async, sleep_works_on_plain_threads, .timeout = 30)
{
	struct until_ctx c;
	struct sleeper s = {.ns = 20 * MS, .r = 1};
	pthread_t t;

	/* The test's own thread, not a worker: the sleep blocks it. */
	cr_assert_eq(weft_worker_index(), -1);
	memset(&c, 0xff, sizeof(c));
	sleep_until_task(&c, NULL);
	check_until(&c);
	sleep_task(&s, NULL);
	cr_assert_eq(s.r, 0);
	cr_assert_geq(s.elapsed, 20 * MS);

	/* Another plain thread. */
	s = (struct sleeper){.ns = 20 * MS, .r = 1};
	cr_assert_eq(pthread_create(&t, NULL, sleep_thread, &s), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(s.r, 0);
	cr_assert_geq(s.elapsed, 20 * MS);
}

struct crowd {
	atomic_int asleep;
	atomic_int peak;
	atomic_int done;
	atomic_int bad;
};

static int crowd_task(void *arg, void **result)
{
	struct crowd *c = arg;
	int now = atomic_fetch_add(&c->asleep, 1) + 1;
	int peak = atomic_load(&c->peak);
	int64_t t0 = weft_now();

	(void)result;
	while (now > peak && !atomic_compare_exchange_weak(&c->peak, &peak, now))
		;
	if (weft_sleep(200 * MS) != 0 || weft_now() - t0 < 200 * MS)
		atomic_fetch_add(&c->bad, 1);
	atomic_fetch_sub(&c->asleep, 1);
	atomic_fetch_add(&c->done, 1);
	return 0;
}

Test(async, ten_thousand_sleeping_tasks_share_two_workers, .timeout = 30)
{
	/*
	 * If a sleep held its worker, 10 000 sleeps of 200 ms on two workers
	 * would take over 1000 s (the timeout fails it); and more than two
	 * would never be asleep at once.
	 */
	enum { N = 10000 };
	struct weft_pool *pool = pool_new(2);
	struct crowd c;

	cr_assert_not_null(pool);
	atomic_init(&c.asleep, 0);
	atomic_init(&c.peak, 0);
	atomic_init(&c.done, 0);
	atomic_init(&c.bad, 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_submit(pool, crowd_task, &c, NULL), 0);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&c.done), N);
	cr_assert_eq(atomic_load(&c.bad), 0);
	cr_assert_gt(atomic_load(&c.peak), 2,
		     "at most %d tasks were asleep at once",
		     atomic_load(&c.peak));
	cr_log_info("peak of concurrent sleepers: %d", atomic_load(&c.peak));
}

/* ---- weft_yield ----------------------------------------------------- */

struct yielder {
	struct weft_pool *pool;
	atomic_int flag;
	int yields;
	int bad_r;
	bool saw_flag;
};

static int set_flag_task(void *arg, void **result)
{
	(void)result;
	atomic_store((atomic_int *)arg, 1);
	return 0;
}

static int yield_until_flag(void *arg, void **result)
{
	struct yielder *y = arg;

	(void)result;
	/* Queued behind us on the only worker. */
	if (weft_submit(y->pool, set_flag_task, &y->flag, NULL) != 0)
		return -EIO;
	for (y->yields = 0; y->yields < 1000; y->yields++) {
		if (atomic_load(&y->flag)) {
			y->saw_flag = true;
			break;
		}
		if (weft_yield() != 0)
			y->bad_r++;
	}
	return 0;
}

Test(async, yield_lets_queued_tasks_run_first, .timeout = 30)
{
	/* One worker: the task that sets the flag can only run while the
	 * yielding one is off the worker. */
	struct weft_pool *pool = pool_new(1);
	struct yielder y = {.pool = pool};
	struct weft_future *f = NULL;

	cr_assert_not_null(pool);
	atomic_init(&y.flag, 0);
	cr_assert_eq(weft_submit(pool, yield_until_flag, &y, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_error(f), 0);
	cr_assert_eq(y.bad_r, 0, "weft_yield() did not return 0");
	cr_assert(y.saw_flag, "a task queued on the only worker did not run "
			      "in %d yields", y.yields);
	cr_log_info("flag seen after %d yields", y.yields);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(async, yield_outside_a_task_returns_zero, .timeout = 30)
{
	cr_assert_eq(weft_yield(), 0);
}

struct pingpong {
	atomic_int turn;
	int rounds_a, rounds_b;
};

static int ping(void *arg, void **result)
{
	struct pingpong *p = arg;
	int spins = 0;

	(void)result;
	for (p->rounds_a = 0; p->rounds_a < 100; p->rounds_a++) {
		while (atomic_load(&p->turn) != 0) {
			if (++spins > 100000 || weft_yield() != 0)
				return -EIO;
		}
		atomic_store(&p->turn, 1);
	}
	return 0;
}

static int pong(void *arg, void **result)
{
	struct pingpong *p = arg;
	int spins = 0;

	(void)result;
	for (p->rounds_b = 0; p->rounds_b < 100; p->rounds_b++) {
		while (atomic_load(&p->turn) != 1) {
			if (++spins > 100000 || weft_yield() != 0)
				return -EIO;
		}
		atomic_store(&p->turn, 0);
	}
	return 0;
}

Test(async, two_yielding_tasks_take_turns_on_one_worker, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct pingpong p = {.rounds_a = -1, .rounds_b = -1};
	struct weft_future *a = NULL, *b = NULL;

	cr_assert_not_null(pool);
	atomic_init(&p.turn, 0);
	cr_assert_eq(weft_submit(pool, ping, &p, &a), 0);
	cr_assert_eq(weft_submit(pool, pong, &p, &b), 0);
	cr_assert_eq(weft_future_wait(a), 0);
	cr_assert_eq(weft_future_wait(b), 0);
	cr_assert_eq(weft_future_error(a), 0, "ping stuck at round %d",
		     p.rounds_a);
	cr_assert_eq(weft_future_error(b), 0, "pong stuck at round %d",
		     p.rounds_b);
	weft_future_unref(a);
	weft_future_unref(b);
	weft_pool_destroy(pool);
}

/* ---- cancellation --------------------------------------------------- */

struct cancel_ctx {
	struct weft_future *on; /* NULL: sleep LONG_SLEEP instead */
	atomic_int started;
	int r_wait, r_again, r_yield, r_other;
	bool cancelled_flag;
	int64_t elapsed;
};

static int cancellable_task(void *arg, void **result)
{
	struct cancel_ctx *c = arg;
	int64_t t0 = weft_now();

	(void)result;
	atomic_store(&c->started, 1);
	c->r_wait = c->on ? weft_future_wait(c->on) : weft_sleep(LONG_SLEEP);
	c->elapsed = weft_now() - t0;
	c->cancelled_flag = weft_task_cancelled();
	/* Sticky: every later wait fails at once. */
	c->r_again = weft_sleep(LONG_SLEEP);
	c->r_yield = weft_yield();
	c->r_other = c->on ? weft_future_wait(c->on)
			   : weft_sleep_until(weft_now() + LONG_SLEEP);
	return c->r_wait == -ECANCELED ? -ECANCELED : 0;
}

static void cancel_and_check(struct cancel_ctx *c, struct weft_future *f)
{
	cr_assert(wait_int(&c->started, 1));
	/* Give it the time to suspend (not needed for the outcome: a cancel
	 * that comes first is seen when the wait starts). */
	sleep_ms(20);
	cr_assert_eq(weft_future_cancel(f), -EBUSY);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(c->r_wait, -ECANCELED, "the wait returned %d", c->r_wait);
	cr_assert_lt(c->elapsed, 20 * SEC);
	cr_assert(c->cancelled_flag);
	cr_assert_eq(c->r_again, -ECANCELED);
	cr_assert_eq(c->r_yield, -ECANCELED);
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_CANCELLED);
	cr_assert_eq(weft_future_error(f), -ECANCELED);
	/* Completed: a second cancel has nothing to do. */
	cr_assert_eq(weft_future_cancel(f), -EALREADY);
}

Test(async, cancel_wakes_a_sleeping_task, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct cancel_ctx c = {.r_wait = 1, .r_again = 1, .r_yield = 1};
	struct weft_future *f = NULL;

	cr_assert_not_null(pool);
	atomic_init(&c.started, 0);
	cr_assert_eq(weft_submit(pool, cancellable_task, &c, &f), 0);
	cancel_and_check(&c, f);
	cr_assert_eq(c.r_other, -ECANCELED);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(async, cancel_wakes_a_task_waiting_on_a_future, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct cancel_ctx c = {.r_wait = 1, .r_again = 1, .r_yield = 1};
	struct weft_future *f = NULL;
	struct xevent ev;

	cr_assert_not_null(pool);
	xevent_start(&ev);
	c.on = ev.f;
	atomic_init(&c.started, 0);
	cr_assert_eq(weft_submit(pool, cancellable_task, &c, &f), 0);
	cancel_and_check(&c, f);
	cr_assert_eq(c.r_other, -ECANCELED);
	/* Cancelling the waiter does not touch what it waited for. */
	cr_assert_eq(weft_future_state(ev.f), WEFT_FUTURE_RUNNING);
	xevent_fire(&ev);
	cr_assert_eq(weft_future_wait(ev.f), 0);
	cr_assert_eq(weft_future_error(ev.f), 0);
	weft_future_unref(f);
	weft_pool_destroy(pool);
	xevent_fini(&ev);
}

static int record_cancelled(void *arg, void **result)
{
	(void)result;
	*(int *)arg = weft_task_cancelled();
	return 0;
}

Test(async, not_cancelled_outside_a_task_or_before_a_cancel, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;
	int seen = -1;

	cr_assert_not_null(pool);
	cr_assert_not(weft_task_cancelled());
	/* Pushes and pops outside a task do nothing (and never abort). */
	weft_cancel_shield_pop();
	weft_cancel_shield_push();
	weft_cancel_shield_pop();
	weft_cancel_shield_pop();
	cr_assert_not(weft_task_cancelled());
	cr_assert_eq(weft_submit(pool, record_cancelled, &seen, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(seen, 0);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

struct shield_ctx {
	atomic_int started;
	atomic_int cancelled; /* set by the test once its cancel returned */
	int r_poll, r_shielded, r_yield, r_after;
	bool saw_cancel_request, tc_shielded, tc_nested, tc_after;
	int64_t shielded_elapsed, after_elapsed;
};

static int shielded_task(void *arg, void **result)
{
	struct shield_ctx *c = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS, t0;

	(void)result;
	weft_cancel_shield_push();
	atomic_store(&c->started, 1);
	/* Shielded waits while the cancel comes in: none may fail. */
	c->r_poll = 0;
	while (!atomic_load(&c->cancelled) && weft_now() < give_up)
		c->r_poll |= weft_sleep(MS);
	c->saw_cancel_request = atomic_load(&c->cancelled);
	t0 = weft_now();
	c->r_shielded = weft_sleep(50 * MS);
	c->shielded_elapsed = weft_now() - t0;
	c->r_yield = weft_yield();
	c->tc_shielded = weft_task_cancelled();
	/* Nested shields: one pop leaves it shielded. */
	weft_cancel_shield_push();
	weft_cancel_shield_pop();
	c->tc_nested = weft_task_cancelled();
	weft_cancel_shield_pop();
	/* The request was kept. */
	c->tc_after = weft_task_cancelled();
	t0 = weft_now();
	c->r_after = weft_sleep(LONG_SLEEP);
	c->after_elapsed = weft_now() - t0;
	return c->r_after;
}

Test(async, shield_holds_a_cancel_until_popped, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct shield_ctx c = {.r_poll = 1, .r_shielded = 1, .r_yield = 1,
			       .r_after = 1};
	struct weft_future *f = NULL;

	cr_assert_not_null(pool);
	atomic_init(&c.started, 0);
	atomic_init(&c.cancelled, 0);
	cr_assert_eq(weft_submit(pool, shielded_task, &c, &f), 0);
	cr_assert(wait_int(&c.started, 1));
	cr_assert_eq(weft_future_cancel(f), -EBUSY);
	atomic_store(&c.cancelled, 1);
	cr_assert_eq(weft_future_wait(f), 0);

	cr_assert(c.saw_cancel_request);
	cr_assert_eq(c.r_poll, 0, "a shielded sleep failed");
	cr_assert_eq(c.r_shielded, 0);
	cr_assert_geq(c.shielded_elapsed, 50 * MS,
		      "the shielded sleep ended after %lld ns",
		      (long long)c.shielded_elapsed);
	cr_assert_eq(c.r_yield, 0);
	cr_assert_not(c.tc_shielded);
	cr_assert_not(c.tc_nested);
	cr_assert(c.tc_after);
	cr_assert_eq(c.r_after, -ECANCELED);
	cr_assert_lt(c.after_elapsed, 20 * SEC);
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_CANCELLED);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

static int pop_without_push(void *arg, void **result)
{
	(void)arg;
	(void)result;
	weft_cancel_shield_pop();
	return 0;
}

Test(async, shield_pop_without_push_in_a_task_aborts, .signal = SIGABRT,
     .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;

	no_core();
	cr_assert_not_null(pool);
	cr_assert_eq(weft_submit(pool, pop_without_push, NULL, &f), 0);
	weft_future_wait(f);
	/* Not reached when the task aborts the process. */
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

struct ignore_cancel {
	atomic_int started;
	int r;
};

static int ignores_cancel(void *arg, void **result)
{
	struct ignore_cancel *c = arg;

	atomic_store(&c->started, 1);
	c->r = weft_sleep(LONG_SLEEP);
	*result = &marker;
	return 0; /* carries on: the task decides its outcome */
}

Test(async, cancelled_task_that_returns_zero_is_done, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct ignore_cancel c = {.r = 1};
	struct weft_future *f = NULL;
	void *v = NULL;

	cr_assert_not_null(pool);
	atomic_init(&c.started, 0);
	cr_assert_eq(weft_submit(pool, ignores_cancel, &c, &f), 0);
	cr_assert(wait_int(&c.started, 1));
	cr_assert_eq(weft_future_cancel(f), -EBUSY);
	cr_assert_eq(weft_future_get(f, &v), 0);
	cr_assert_eq(c.r, -ECANCELED);
	cr_assert_eq(v, &marker);
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_DONE);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

struct long_sleeper {
	atomic_int started;
	int r;
	bool cancelled_after;
};

static int long_sleep_task(void *arg, void **result)
{
	struct long_sleeper *c = arg;

	(void)result;
	atomic_store(&c->started, 1);
	c->r = weft_sleep(LONG_SLEEP);
	c->cancelled_after = weft_task_cancelled();
	return c->r;
}

Test(async, cancelling_shutdown_wakes_a_sleeping_task, .timeout = 30)
{
	/*
	 * WEFT_SHUTDOWN_CANCEL: running tasks "see weft_task_cancelled()
	 * return true", and a cancelled task's sleep "ends early" with
	 * -ECANCELED. A task asleep for a minute must not hold the shutdown.
	 */
	struct weft_pool *pool = pool_new(1);
	struct long_sleeper c = {.r = 1};
	struct weft_future *f = NULL;
	int r;

	cr_assert_not_null(pool);
	atomic_init(&c.started, 0);
	cr_assert_eq(weft_submit(pool, long_sleep_task, &c, &f), 0);
	cr_assert(wait_int(&c.started, 1));
	sleep_ms(20);
	r = weft_pool_shutdown(pool, WEFT_SHUTDOWN_CANCEL,
			       weft_now() + 5 * SEC);
	cr_assert_eq(r, 0, "shutdown returned %d: the sleeping task was not "
			   "woken", r);
	cr_assert_eq(c.r, -ECANCELED);
	cr_assert(c.cancelled_after);
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_CANCELLED);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(async, draining_shutdown_waits_for_sleeping_tasks, .timeout = 30)
{
	enum { N = 50 };
	struct weft_pool *pool = pool_new(2);
	struct sleeper s[N];
	struct weft_future *f[N];

	cr_assert_not_null(pool);
	for (int i = 0; i < N; i++) {
		s[i] = (struct sleeper){.ns = 20 * MS, .r = 1};
		cr_assert_eq(weft_submit(pool, sleep_task, &s[i], &f[i]), 0);
	}
	weft_pool_destroy(pool);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(weft_future_state(f[i]), WEFT_FUTURE_DONE);
		cr_assert_eq(s[i].r, 0);
		cr_assert_geq(s[i].elapsed, 20 * MS);
		weft_future_unref(f[i]);
	}
}

/* ---- deadlines inside a task ---------------------------------------- */

struct deadline_ctx {
	struct weft_future *on;
	atomic_int phase;
	int r_timed, r_past, r_zero, r_final;
	int state_after, try_after;
	int64_t deadline, gave_up;
};

static int deadline_task(void *arg, void **result)
{
	struct deadline_ctx *c = arg;

	(void)result;
	c->deadline = weft_now() + 30 * MS;
	c->r_timed = weft_future_wait_until(c->on, c->deadline);
	c->gave_up = weft_now();
	c->r_past = weft_future_wait_until(c->on, weft_now() - SEC);
	c->r_zero = weft_future_wait_until(c->on, 0);
	c->state_after = weft_future_state(c->on);
	c->try_after = weft_future_try_wait(c->on);
	atomic_store(&c->phase, 1);
	/* The test completes it now; this wait must see that. */
	c->r_final = weft_future_wait_until(c->on,
					    weft_now() + HELPER_PATIENCE_NS);
	return 0;
}

Test(async, wait_until_in_a_task_times_out_and_can_wait_again, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct deadline_ctx c = {.r_timed = 1, .r_past = 1, .r_zero = 1,
				 .r_final = 1};
	struct weft_future *f = NULL;
	struct xevent ev;

	cr_assert_not_null(pool);
	xevent_start(&ev);
	c.on = ev.f;
	atomic_init(&c.phase, 0);
	cr_assert_eq(weft_submit(pool, deadline_task, &c, &f), 0);
	cr_assert(wait_int(&c.phase, 1));
	xevent_fire(&ev);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(c.r_timed, -ETIMEDOUT);
	cr_assert_geq(c.gave_up, c.deadline, "gave up %lld ns early",
		      (long long)(c.deadline - c.gave_up));
	cr_assert_eq(c.r_past, -ETIMEDOUT);
	cr_assert_eq(c.r_zero, -ETIMEDOUT);
	cr_assert_eq(c.state_after, WEFT_FUTURE_RUNNING);
	cr_assert_eq(c.try_after, -EAGAIN);
	cr_assert_eq(c.r_final, 0);
	weft_future_unref(f);
	weft_pool_destroy(pool);
	xevent_fini(&ev);
}

struct done_poll {
	struct weft_future *on;
	int r_past, r_zero;
};

static int poll_done_task(void *arg, void **result)
{
	struct done_poll *c = arg;

	(void)result;
	c->r_past = weft_future_wait_until(c->on, weft_now() - SEC);
	c->r_zero = weft_future_wait_until(c->on, 0);
	return 0;
}

Test(async, wait_until_past_deadline_on_a_complete_future_succeeds,
     .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct done_poll c = {.r_past = 1, .r_zero = 1};
	struct weft_future *done = NULL, *f = NULL;

	cr_assert_not_null(pool);
	cr_assert_eq(weft_submit(pool, value_task, &marker, &done), 0);
	cr_assert_eq(weft_future_wait(done), 0);
	c.on = done;
	cr_assert_eq(weft_submit(pool, poll_done_task, &c, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(c.r_past, 0);
	cr_assert_eq(c.r_zero, 0);
	weft_future_unref(done);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

/* ---- waiting on oneself --------------------------------------------- */

struct self_wait {
	_Atomic(struct weft_future *) self;
	_Atomic(struct weft_future *) outer;
	int r_wait, r_until, r_get;
	void *v;
};

static int wait_on_self(void *arg, void **result)
{
	struct self_wait *c = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;
	struct weft_future *me;

	(void)result;
	/* The test stores our future once weft_submit() has returned. */
	while (!(me = atomic_load(&c->self)) && weft_now() < give_up)
		weft_sleep(MS);
	if (!me)
		return -ETIMEDOUT;
	c->v = &marker;
	c->r_wait = weft_future_wait(me);
	c->r_until = weft_future_wait_until(me, weft_now() + SEC);
	c->r_get = weft_future_get(me, &c->v);
	return 0;
}

Test(async, task_waiting_on_its_own_future_gets_edeadlk, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct self_wait c = {.r_wait = 1, .r_until = 1, .r_get = 1};
	struct weft_future *f = NULL;

	cr_assert_not_null(pool);
	atomic_init(&c.self, NULL);
	cr_assert_eq(weft_submit(pool, wait_on_self, &c, &f), 0);
	atomic_store(&c.self, f);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_error(f), 0);
	cr_assert_eq(c.r_wait, -EDEADLK);
	cr_assert_eq(c.r_until, -EDEADLK);
	cr_assert_eq(c.r_get, -EDEADLK);
	cr_assert_eq(c.v, &marker, "-EDEADLK must leave *value alone");
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

static int wait_on_outer(void *arg, void **result)
{
	struct self_wait *c = arg;

	(void)result;
	c->r_wait = weft_future_wait(atomic_load(&c->outer));
	return 0;
}

static int outer_task(void *arg, void **result)
{
	struct self_wait *c = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;
	struct weft_future *inner = NULL;
	struct weft_pool *pool = c->v;

	(void)result;
	while (!atomic_load(&c->outer) && weft_now() < give_up)
		weft_sleep(MS);
	if (!atomic_load(&c->outer))
		return -ETIMEDOUT;
	/* Submitted from the only worker, which is busy with us: inner is
	 * still queued when we wait for it, so we run it inline, and its
	 * wait on us must be refused instead of deadlocking. */
	if (weft_submit(pool, wait_on_outer, c, &inner) != 0)
		return -EIO;
	c->r_until = weft_future_wait(inner);
	c->r_get = weft_future_error(inner);
	weft_future_unref(inner);
	return 0;
}

Test(async, inline_waiter_of_a_task_waiting_on_it_gets_edeadlk,
     .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct self_wait c = {.r_wait = 1, .r_until = 1, .r_get = 1};
	struct weft_future *outer = NULL;

	cr_assert_not_null(pool);
	atomic_init(&c.self, NULL);
	atomic_init(&c.outer, NULL);
	c.v = pool;
	cr_assert_eq(weft_submit(pool, outer_task, &c, &outer), 0);
	atomic_store(&c.outer, outer);
	cr_assert_eq(weft_future_wait(outer), 0);
	cr_assert_eq(weft_future_error(outer), 0);
	cr_assert_eq(c.r_until, 0);
	cr_assert_eq(c.r_get, 0);
	cr_assert_eq(c.r_wait, -EDEADLK,
		     "inner's wait on the task running it returned %d",
		     c.r_wait);
	weft_future_unref(outer);
	weft_pool_destroy(pool);
}

/* ---- stack overflow ------------------------------------------------- */

#define SMALL_STACK (64 * 1024)

/* Each frame keeps a touched 512-byte array, and the addition after the
 * call keeps the frame alive (no tail call), so this walks down the stack
 * until it faults in the guard. The depth bound only makes it finite. */
__attribute__((noinline)) static unsigned recurse(unsigned depth)
{
	volatile char pad[512];

	pad[0] = (char)depth;
	pad[sizeof(pad) - 1] = (char)depth;
	if (depth == UINT_MAX)
		return 0;
	return recurse(depth + 1) + (unsigned)pad[0] + (unsigned)pad[511];
}

static int overflow_task(void *arg, void **result)
{
	(void)arg;
	*result = (void *)(uintptr_t)recurse(0);
	return 0;
}

static void overflow_in_pool(void)
{
	struct weft_pool_options opts;
	struct weft_pool *pool = NULL;
	struct weft_future *f = NULL;

	no_core();
	weft_pool_options_init(&opts);
	opts.workers = 1;
	opts.stack_size = SMALL_STACK;
	if (weft_pool_create(&opts, &pool) != 0)
		_exit(97);
	if (weft_submit(pool, overflow_task, NULL, &f) != 0)
		_exit(98);
	weft_future_wait(f);
	_exit(99); /* survived the overflow */
}

Test(async, unbounded_recursion_in_a_task_dies_by_sigsegv, .signal = SIGSEGV,
     .timeout = 30)
{
	overflow_in_pool();
}


Test(async, stack_overflow_report_names_task_size_and_option, .timeout = 30)
{
	char out[16384], fn_name[64], size[32];
	unsigned long reported = 0;
	const char *at;
	int status;

	run_child(overflow_in_pool, out, sizeof(out), &status);
	cr_log_info("child status %#x, stderr:\n%s", status, out);
#if WEFT_ASAN
	/* ASan may report the overflow itself (and exit or abort) before
	 * weft's handler sees it; accept its report, but never survival. */
	if (strstr(out, "AddressSanitizer")) {
		cr_assert(WIFSIGNALED(status) ||
			  (WIFEXITED(status) && WEXITSTATUS(status) != 99),
			  "child status %#x", status);
		return;
	}
#endif
	cr_assert(WIFSIGNALED(status), "child status %#x, stderr: %s", status,
		  out);
	cr_assert_eq(WTERMSIG(status), SIGSEGV);
	cr_assert(strstr(out, "stack overflow"), "stderr was: %s", out);
	/* The task, by its function. */
	snprintf(fn_name, sizeof(fn_name), "%p", (void *)overflow_task);
	cr_assert(strstr(out, fn_name), "no %s in: %s", fn_name, out);
	/* Its stack size in bytes: the 64 KiB asked for, or the usable size
	 * it was rounded up to (less than a page more). */
	snprintf(size, sizeof(size), "%d", SMALL_STACK);
	at = strstr(out, " bytes");
	if (!strstr(out, size)) {
		cr_assert_not_null(at, "no size in bytes in: %s", out);
		while (at > out && at[-1] >= '0' && at[-1] <= '9')
			at--;
		reported = strtoul(at, NULL, 10);
		cr_assert(reported >= SMALL_STACK &&
			  reported < SMALL_STACK + 4096,
			  "size %lu reported for a %d-byte stack: %s",
			  reported, SMALL_STACK, out);
	}
	/* How to raise it. */
	cr_assert(strstr(out, "stack_size"), "stderr was: %s", out);
}

/* ---- pool options: stack_size --------------------------------------- */

static int pool_with_stack(size_t size, struct weft_pool **out)
{
	struct weft_pool_options opts;

	weft_pool_options_init(&opts);
	opts.workers = 1;
	opts.stack_size = size;
	return weft_pool_create(&opts, out);
}

Test(async, stack_size_out_of_range_is_einval, .timeout = 30)
{
	static const size_t bad[] = {
		1,
		4096,
		16 * 1024 - 1,
		((size_t)1 << 30) + 1,
		((size_t)1 << 30) + 4096,
		SIZE_MAX,
	};
	struct weft_pool *pool;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(pool_with_stack(bad[i], &pool), -EINVAL,
			     "stack_size %zu", bad[i]);
	}
}

Test(async, stack_size_at_the_limits_is_accepted, .timeout = 30)
{
	static const size_t good[] = {
		16 * 1024,
		16 * 1024 + 1,
		100 * 1000,
		((size_t)1 << 30) - 64 * 1024,
	};
	struct weft_pool *pool;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct weft_future *f = NULL;
		void *v = NULL;

		cr_assert_eq(pool_with_stack(good[i], &pool), 0,
			     "stack_size %zu", good[i]);
		cr_assert_eq(weft_submit(pool, value_task, &marker, &f), 0);
		cr_assert_eq(weft_future_get(f, &v), 0);
		cr_assert_eq(v, &marker);
		weft_future_unref(f);
		weft_pool_destroy(pool);
	}
}

Test(async, stack_size_of_exactly_one_gib_is_accepted_and_works,
     .timeout = 30)
{
	/* The documented maximum: the pool must either refuse it at create
	 * or run tasks on it, not abort in a worker. */
	struct weft_pool *pool;
	struct weft_future *f = NULL;
	void *v = NULL;

	cr_assert_eq(pool_with_stack((size_t)1 << 30, &pool), 0);
	cr_assert_eq(weft_submit(pool, value_task, &marker, &f), 0);
	cr_assert_eq(weft_future_get(f, &v), 0);
	cr_assert_eq(v, &marker);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

#define BIG_FRAME (1536 * 1024)

/* Uses 1.5 MiB of stack, which the default 256 KiB stack could not hold. */
__attribute__((noinline)) static int big_frame(void)
{
	volatile char buf[BIG_FRAME];
	int sum = 0;

	for (size_t i = 0; i < sizeof(buf); i += 4096)
		buf[i] = (char)i;
	buf[sizeof(buf) - 1] = 1;
	for (size_t i = 0; i < sizeof(buf); i += 4096)
		sum += buf[i];
	return sum + buf[sizeof(buf) - 1];
}

static int big_stack_task(void *arg, void **result)
{
	(void)arg;
	/* Before and after a wait, which may put it on another fiber
	 * stack: both must be of the pool's size. */
	*result = (void *)(intptr_t)big_frame();
	if (weft_sleep(MS) != 0)
		return -EIO;
	return big_frame() == (int)(intptr_t)*result ? 0 : -EIO;
}

Test(async, stack_size_is_what_tasks_get, .timeout = 30)
{
	struct weft_pool *pool = NULL;
	struct weft_future *f = NULL;

	cr_assert_eq(pool_with_stack(4 * 1024 * 1024, &pool), 0);
	cr_assert_eq(weft_submit(pool, big_stack_task, NULL, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_error(f), 0);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}
