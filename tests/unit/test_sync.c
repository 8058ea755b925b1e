/*
 * test_sync.c - weft/sync.h: mutex, condition variable, semaphore, event,
 * wait group and channel, each used from plain threads and from tasks
 * (which suspend: many waiters share two workers), with every deadline
 * path (-ETIMEDOUT, nothing changed), every cancel path (-ECANCELED from
 * weft_future_cancel() on the waiting task), grants racing timeouts (never
 * lost), mutual exclusion under contention, channel order and close
 * semantics, and -EINVAL for bad arguments with nothing changed.
 *
 * Tasks never call Criterion's assertions: they record what they saw, and
 * the test thread asserts after joining them. Nothing is timed from above
 * except through .timeout; timeouts are checked from below ("not before
 * the deadline").
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include <weft.h>
#include <weft/sync.h>

#include "weft_config.h"
#include "helpers.h"

#if WEFT_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#define MS (1000LL * 1000)
#define US 1000LL

/* ---- running a body in a task or on a thread ------------------------- */

enum where { IN_THREAD, IN_TASK };

static const char *where_name(enum where w)
{
	return w == IN_TASK ? "task" : "thread";
}

struct runner {
	enum where where;
	weft_task_fn fn;
	void *arg;
	pthread_t thread;
	struct weft_future *f;
	int err;
};

static void *runner_main(void *arg)
{
	struct runner *r = arg;
	void *v = NULL;

	r->err = r->fn(r->arg, &v);
	return NULL;
}

static void run_start(struct runner *r, struct weft_pool *pool,
		      enum where where, weft_task_fn fn, void *arg)
{
	r->where = where;
	r->fn = fn;
	r->arg = arg;
	r->f = NULL;
	if (where == IN_TASK)
		cr_assert_eq(weft_submit(pool, fn, arg, &r->f), 0);
	else
		cr_assert_eq(pthread_create(&r->thread, NULL, runner_main, r),
			     0);
}

/* The body's return value. */
static int run_join(struct runner *r)
{
	if (r->where == IN_THREAD) {
		pthread_join(r->thread, NULL);
		return r->err;
	}
	cr_assert_eq(weft_future_wait(r->f), 0);
	r->err = weft_future_error(r->f);
	weft_future_unref(r->f);
	r->f = NULL;
	return r->err;
}

static struct weft_pool *pool_of(unsigned workers)
{
	struct weft_pool *p = pool_new(workers);

	cr_assert_not_null(p, "pool_new(%u)", workers);
	return p;
}

/* Sleep so that a task or thread that was started has reached its wait
 * (ten times longer under Valgrind, which runs one thread at a time).
 * Only the tests of arrival order depend on it; elsewhere it only makes
 * the path where the waiter is queued before the event the likely one. */
static void settle(void)
{
	unsigned ms = 30;

#if WEFT_HAVE_VALGRIND_H
	if (RUNNING_ON_VALGRIND)
		ms *= 10;
#endif
	sleep_ms(ms);
}

/* Cancel the task of @r once it says (*@started) it is about to wait,
 * and a little later, so that it is waiting by then (if not, its wait
 * sees the cancel at once: the result is the same). */
static void cancel_running(struct runner *r, atomic_int *started)
{
	cr_assert(wait_int(started, 1));
	settle();
	cr_assert_eq(weft_future_cancel(r->f), -EBUSY,
		     "the waiting task was not running");
}

/* ---- bad arguments ---------------------------------------------------- */

Test(sync, null_objects_are_einval)
{
	struct weft_mutex m;
	struct weft_cond c;

	cr_assert_eq(weft_mutex_init(NULL), -EINVAL);
	cr_assert_eq(weft_mutex_fini(NULL), -EINVAL);
	cr_assert_eq(weft_mutex_lock(NULL), -EINVAL);
	cr_assert_eq(weft_mutex_lock_until(NULL, 0), -EINVAL);
	cr_assert_eq(weft_mutex_trylock(NULL), -EINVAL);
	cr_assert_eq(weft_mutex_unlock(NULL), -EINVAL);

	cr_assert_eq(weft_mutex_init(&m), 0);
	cr_assert_eq(weft_cond_init(&c), 0);
	cr_assert_eq(weft_cond_init(NULL), -EINVAL);
	cr_assert_eq(weft_cond_fini(NULL), -EINVAL);
	cr_assert_eq(weft_cond_wait(NULL, &m), -EINVAL);
	cr_assert_eq(weft_cond_wait(&c, NULL), -EINVAL);
	cr_assert_eq(weft_cond_wait_until(NULL, &m, 0), -EINVAL);
	cr_assert_eq(weft_cond_signal(NULL), -EINVAL);
	cr_assert_eq(weft_cond_broadcast(NULL), -EINVAL);
	/* Nothing changed: the mutex was never touched. */
	cr_assert_eq(weft_mutex_trylock(&m), 0);
	cr_assert_eq(weft_mutex_unlock(&m), 0);
	cr_assert_eq(weft_cond_fini(&c), 0);
	cr_assert_eq(weft_mutex_fini(&m), 0);

	cr_assert_eq(weft_sem_init(NULL, 0), -EINVAL);
	cr_assert_eq(weft_sem_fini(NULL), -EINVAL);
	cr_assert_eq(weft_sem_acquire(NULL), -EINVAL);
	cr_assert_eq(weft_sem_acquire_until(NULL, 0), -EINVAL);
	cr_assert_eq(weft_sem_try_acquire(NULL), -EINVAL);
	cr_assert_eq(weft_sem_release(NULL, 1), -EINVAL);
	cr_assert_eq(weft_sem_value(NULL), -EINVAL);

	cr_assert_eq(weft_event_init(NULL, 0), -EINVAL);
	cr_assert_eq(weft_event_fini(NULL), -EINVAL);
	cr_assert_eq(weft_event_set(NULL), -EINVAL);
	cr_assert_eq(weft_event_reset(NULL), -EINVAL);
	cr_assert_eq(weft_event_wait(NULL), -EINVAL);
	cr_assert_eq(weft_event_wait_until(NULL, 0), -EINVAL);
	cr_assert_eq(weft_event_try_wait(NULL), -EINVAL);
	cr_assert_eq(weft_event_is_set(NULL), false);

	cr_assert_eq(weft_wgroup_init(NULL), -EINVAL);
	cr_assert_eq(weft_wgroup_fini(NULL), -EINVAL);
	cr_assert_eq(weft_wgroup_add(NULL, 1), -EINVAL);
	cr_assert_eq(weft_wgroup_done(NULL), -EINVAL);
	cr_assert_eq(weft_wgroup_wait(NULL), -EINVAL);
	cr_assert_eq(weft_wgroup_wait_until(NULL, 0), -EINVAL);
	cr_assert_eq(weft_wgroup_count(NULL), -EINVAL);

	cr_assert_eq(weft_chan_send(NULL, NULL), -EINVAL);
	cr_assert_eq(weft_chan_send_until(NULL, NULL, 0), -EINVAL);
	cr_assert_eq(weft_chan_try_send(NULL, NULL), -EINVAL);
	cr_assert_eq(weft_chan_recv(NULL, (void **)&m), -EINVAL);
	cr_assert_eq(weft_chan_recv_until(NULL, (void **)&m, 0), -EINVAL);
	cr_assert_eq(weft_chan_try_recv(NULL, (void **)&m), -EINVAL);
	cr_assert_eq(weft_chan_close(NULL), -EINVAL);
	cr_assert_eq(weft_chan_len(NULL), 0);
	cr_assert_eq(weft_chan_cap(NULL), 0);
	weft_chan_destroy(NULL); /* ignored */
}

Test(sync, bad_arguments_are_einval_and_change_nothing)
{
	struct weft_sem s;
	struct weft_event ev;
	struct weft_wgroup wg;
	struct weft_chan *ch = (struct weft_chan *)&s;
	int item = 7;
	void *got;

	cr_assert_eq(weft_sem_init(&s, WEFT_SEM_MAX + 1u), -EINVAL);
	cr_assert_eq(weft_sem_init(&s, WEFT_SEM_MAX), 0);
	cr_assert_eq(weft_sem_release(&s, 1), -EOVERFLOW);
	cr_assert_eq(weft_sem_value(&s), (int)WEFT_SEM_MAX);
	cr_assert_eq(weft_sem_fini(&s), 0);
	cr_assert_eq(weft_sem_init(&s, 5), 0);
	cr_assert_eq(weft_sem_release(&s, WEFT_SEM_MAX), -EOVERFLOW);
	cr_assert_eq(weft_sem_value(&s), 5);
	cr_assert_eq(weft_sem_release(&s, 0), 0);
	cr_assert_eq(weft_sem_value(&s), 5);
	cr_assert_eq(weft_sem_fini(&s), 0);

	cr_assert_eq(weft_event_init(&ev, 1u << 5), -EINVAL);

	cr_assert_eq(weft_wgroup_init(&wg), 0);
	cr_assert_eq(weft_wgroup_done(&wg), -EINVAL);
	cr_assert_eq(weft_wgroup_add(&wg, -1), -EINVAL);
	cr_assert_eq(weft_wgroup_add(&wg, INT64_MIN), -EINVAL);
	cr_assert_eq(weft_wgroup_count(&wg), 0);
	cr_assert_eq(weft_wgroup_add(&wg, 3), 0);
	cr_assert_eq(weft_wgroup_add(&wg, -4), -EINVAL);
	cr_assert_eq(weft_wgroup_add(&wg, WEFT_WGROUP_MAX), -EINVAL);
	cr_assert_eq(weft_wgroup_count(&wg), 3);
	cr_assert_eq(weft_wgroup_add(&wg, WEFT_WGROUP_MAX - 3), 0);
	cr_assert_eq(weft_wgroup_count(&wg), WEFT_WGROUP_MAX);
	cr_assert_eq(weft_wgroup_add(&wg, -WEFT_WGROUP_MAX), 0);
	cr_assert_eq(weft_wgroup_count(&wg), 0);
	cr_assert_eq(weft_wgroup_fini(&wg), 0);

	cr_assert_eq(weft_chan_create(1, NULL), -EINVAL);
	cr_assert_eq(weft_chan_create(SIZE_MAX / 2, &ch), -EINVAL);
	cr_assert_null(ch, "*out is cleared on failure");
	cr_assert_eq(weft_chan_create(2, &ch), 0);
	cr_assert_eq(weft_chan_cap(ch), 2);
	cr_assert_eq(weft_chan_send(ch, &item), 0);
	cr_assert_eq(weft_chan_recv(ch, NULL), -EINVAL);
	cr_assert_eq(weft_chan_try_recv(ch, NULL), -EINVAL);
	cr_assert_eq(weft_chan_recv_until(ch, NULL, 0), -EINVAL);
	cr_assert_eq(weft_chan_len(ch), 1, "a bad recv took the item");
	cr_assert_eq(weft_chan_recv(ch, &got), 0);
	cr_assert_eq(got, &item);
	weft_chan_destroy(ch);
}

/* ---- mutex ------------------------------------------------------------ */

Test(sync, mutex_lock_trylock_unlock_on_a_thread)
{
	static struct weft_mutex st = WEFT_MUTEX_INIT;
	struct weft_mutex m;

	cr_assert_eq(weft_mutex_init(&m), 0);
	cr_assert_eq(weft_mutex_lock(&m), 0);
	cr_assert_eq(weft_mutex_fini(&m), -EBUSY, "fini of a held mutex");
	cr_assert_eq(weft_mutex_trylock(&m), -EBUSY);
	cr_assert_eq(weft_mutex_unlock(&m), 0);
	cr_assert_eq(weft_mutex_trylock(&m), 0);
	cr_assert_eq(weft_mutex_unlock(&m), 0);
	cr_assert_eq(weft_mutex_lock_until(&m, 0), 0, "a free mutex: a poll");
	cr_assert_eq(weft_mutex_unlock(&m), 0);
	cr_assert_eq(weft_mutex_fini(&m), 0);

	/* The static initialiser makes a working mutex. */
	cr_assert_eq(weft_mutex_lock(&st), 0);
	cr_assert_eq(weft_mutex_trylock(&st), -EBUSY);
	cr_assert_eq(weft_mutex_unlock(&st), 0);
	cr_assert_eq(weft_mutex_fini(&st), 0);
}

#if !WEFT_DEBUG_CHECKS
Test(sync, mutex_unlock_of_a_free_mutex_is_eperm)
{
	struct weft_mutex m;

	cr_assert_eq(weft_mutex_init(&m), 0);
	cr_assert_eq(weft_mutex_unlock(&m), -EPERM);
	cr_assert_eq(weft_mutex_trylock(&m), 0, "the bad unlock changed it");
	cr_assert_eq(weft_mutex_unlock(&m), 0);
}
#endif

struct mlock {
	struct weft_mutex *m;
	int64_t deadline;
	atomic_int waiting;
	int r;
	int unlock_r;
	int64_t returned_at;
};

static int mlock_task(void *arg, void **result)
{
	struct mlock *a = arg;

	(void)result;
	atomic_store(&a->waiting, 1);
	a->r = weft_mutex_lock_until(a->m, a->deadline);
	a->returned_at = weft_now();
	a->unlock_r = a->r == 0 ? weft_mutex_unlock(a->m) : 1;
	return 0;
}

Test(sync, mutex_lock_until_times_out_and_changes_nothing, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);

	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		struct weft_mutex m;
		struct mlock a = {.m = &m};
		struct runner r;

		cr_assert_eq(weft_mutex_init(&m), 0);
		cr_assert_eq(weft_mutex_lock(&m), 0);
		a.deadline = weft_now() + 20 * MS;
		run_start(&r, pool, wh, mlock_task, &a);
		run_join(&r);
		cr_assert_eq(a.r, -ETIMEDOUT, "%s: %d", where_name(wh), a.r);
		cr_assert_geq(a.returned_at, a.deadline, "%s: early",
			      where_name(wh));
		/* Nothing queued behind the holder, nothing lost. */
		cr_assert_eq(weft_mutex_unlock(&m), 0);
		cr_assert_eq(weft_mutex_trylock(&m), 0);
		cr_assert_eq(weft_mutex_unlock(&m), 0);
		cr_assert_eq(weft_mutex_fini(&m), 0);

		/* A deadline already passed on a held mutex: a failed poll. */
		cr_assert_eq(weft_mutex_lock(&m), 0);
		a.deadline = weft_now() - 1;
		run_start(&r, pool, wh, mlock_task, &a);
		run_join(&r);
		cr_assert_eq(a.r, -ETIMEDOUT);
		cr_assert_eq(weft_mutex_unlock(&m), 0);
		cr_assert_eq(weft_mutex_fini(&m), 0);
	}
	weft_pool_destroy(pool);
}

Test(sync, mutex_waiter_gets_it_on_unlock, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);

	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		struct weft_mutex m;
		struct mlock a = {.m = &m, .deadline = WEFT_FOREVER};
		struct runner r;

		cr_assert_eq(weft_mutex_init(&m), 0);
		cr_assert_eq(weft_mutex_lock(&m), 0);
		run_start(&r, pool, wh, mlock_task, &a);
		settle();
		cr_assert_eq(weft_mutex_unlock(&m), 0);
		run_join(&r);
		cr_assert_eq(a.r, 0, "%s", where_name(wh));
		cr_assert_eq(a.unlock_r, 0);
		cr_assert_eq(weft_mutex_fini(&m), 0);
	}
	weft_pool_destroy(pool);
}

Test(sync, mutex_cancel_wakes_a_waiting_task, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);
	struct weft_mutex m;
	struct mlock a = {.m = &m, .deadline = WEFT_FOREVER};
	struct runner r;

	cr_assert_eq(weft_mutex_init(&m), 0);
	cr_assert_eq(weft_mutex_lock(&m), 0);
	run_start(&r, pool, IN_TASK, mlock_task, &a);
	cancel_running(&r, &a.waiting);
	run_join(&r);
	cr_assert_eq(a.r, -ECANCELED);
	cr_assert_eq(weft_mutex_unlock(&m), 0);
	cr_assert_eq(weft_mutex_fini(&m), 0, "the cancelled waiter stayed");
	weft_pool_destroy(pool);
}

/* A cancelled task still takes a free mutex: only waiting is cancelled. */
struct cancelled_lock {
	struct weft_mutex free, held;
	atomic_int started;
	int free_r, unlock_r, held_r;
};

static int cancelled_then_lock(void *arg, void **result)
{
	struct cancelled_lock *a = arg;

	(void)result;
	atomic_store(&a->started, 1);
	while (weft_yield() == 0)
		; /* until the cancel arrives */
	a->free_r = weft_mutex_lock(&a->free);
	a->unlock_r = a->free_r == 0 ? weft_mutex_unlock(&a->free) : 1;
	a->held_r = weft_mutex_lock(&a->held); /* would wait */
	return 0;
}

Test(sync, mutex_in_a_cancelled_task_completes_when_it_need_not_wait,
     .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);
	struct cancelled_lock a = {.free_r = 1};
	struct runner r;

	cr_assert_eq(weft_mutex_init(&a.free), 0);
	cr_assert_eq(weft_mutex_init(&a.held), 0);
	cr_assert_eq(weft_mutex_lock(&a.held), 0);
	run_start(&r, pool, IN_TASK, cancelled_then_lock, &a);
	cr_assert(wait_int(&a.started, 1));
	cr_assert_eq(weft_future_cancel(r.f), -EBUSY);
	run_join(&r);
	cr_assert_eq(a.free_r, 0);
	cr_assert_eq(a.unlock_r, 0);
	cr_assert_eq(a.held_r, -ECANCELED);
	cr_assert_eq(weft_mutex_unlock(&a.held), 0);
	cr_assert_eq(weft_mutex_fini(&a.held), 0);
	cr_assert_eq(weft_mutex_fini(&a.free), 0);
	weft_pool_destroy(pool);
}

struct excl {
	struct weft_mutex m;
	long counter; /* protected by m, deliberately not atomic */
	int iters;
	atomic_int errors;
};

static int excl_body(void *arg, void **result)
{
	struct excl *e = arg;

	(void)result;
	for (int i = 0; i < e->iters; i++) {
		if (weft_mutex_lock(&e->m) != 0) {
			atomic_fetch_add(&e->errors, 1);
			continue;
		}
		long v = e->counter;
		/* Now and then suspend while holding it, so that others
		 * queue behind a parked holder. */
		if (i % 61 == 0)
			weft_yield();
		e->counter = v + 1;
		if (weft_mutex_unlock(&e->m) != 0)
			atomic_fetch_add(&e->errors, 1);
	}
	return 0;
}

Test(sync, mutex_excludes_under_contention_from_tasks_and_threads,
     .timeout = 120)
{
	enum { TASKS = 64, THREADS = 3, ITERS = 2000 };
	struct weft_pool *pool = pool_of(4);
	struct excl e = {.iters = ITERS};
	struct runner r[TASKS + THREADS];

	cr_assert_eq(weft_mutex_init(&e.m), 0);
	for (int i = 0; i < TASKS + THREADS; i++)
		run_start(&r[i], pool, i < TASKS ? IN_TASK : IN_THREAD,
			  excl_body, &e);
	for (int i = 0; i < TASKS + THREADS; i++)
		run_join(&r[i]);
	cr_assert_eq(atomic_load(&e.errors), 0);
	cr_assert_eq(e.counter, (long)(TASKS + THREADS) * ITERS);
	cr_assert_eq(weft_mutex_fini(&e.m), 0);
	weft_pool_destroy(pool);
}

struct fifo {
	struct weft_mutex m;
	int order[16];
	int n; /* under m */
};

struct fifo_arg {
	struct fifo *f;
	int id;
};

static int fifo_body(void *arg, void **result)
{
	struct fifo_arg *a = arg;

	(void)result;
	if (weft_mutex_lock(&a->f->m) != 0)
		return -EIO;
	a->f->order[a->f->n++] = a->id;
	weft_mutex_unlock(&a->f->m);
	return 0;
}

Test(sync, mutex_is_handed_to_waiters_in_arrival_order, .timeout = 30)
{
	enum { N = 6 };
	struct weft_pool *pool = pool_of(2);

	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		struct fifo f = {.n = 0};
		struct fifo_arg fa[N];
		struct runner r[N];

		cr_assert_eq(weft_mutex_init(&f.m), 0);
		cr_assert_eq(weft_mutex_lock(&f.m), 0);
		for (int i = 0; i < N; i++) {
			fa[i] = (struct fifo_arg){.f = &f, .id = i};
			run_start(&r[i], pool, wh, fifo_body, &fa[i]);
			settle();
		}
		cr_assert_eq(weft_mutex_unlock(&f.m), 0);
		for (int i = 0; i < N; i++)
			cr_assert_eq(run_join(&r[i]), 0);
		cr_assert_eq(f.n, N);
		for (int i = 0; i < N; i++)
			cr_assert_eq(f.order[i], i, "%s: position %d: %d",
				     where_name(wh), i, f.order[i]);
		cr_assert_eq(weft_mutex_fini(&f.m), 0);
	}
	weft_pool_destroy(pool);
}

/* Waiters with deadlines racing the unlock: a handoff to a waiter that
 * timed out at that moment is never lost (the mutex ends up free). */
struct race {
	struct weft_mutex m;
	long counter; /* under m */
	atomic_int ok, timedout, bad;
	int64_t deadline;
};

static int race_body(void *arg, void **result)
{
	struct race *rc = arg;
	int r;

	(void)result;
	r = weft_mutex_lock_until(&rc->m, rc->deadline);
	if (r == 0) {
		rc->counter++;
		if (weft_mutex_unlock(&rc->m) != 0)
			atomic_fetch_add(&rc->bad, 1);
		atomic_fetch_add(&rc->ok, 1);
	} else if (r == -ETIMEDOUT) {
		atomic_fetch_add(&rc->timedout, 1);
	} else {
		atomic_fetch_add(&rc->bad, 1);
	}
	return 0;
}

static void spin_until(int64_t t)
{
	while (weft_now() < t)
		;
}

Test(sync, mutex_handoff_is_not_lost_to_a_racing_timeout, .timeout = 120)
{
	enum { ROUNDS = 300, WAITERS = 4 };
	struct weft_pool *pool = pool_of(2);
	struct race rc = {.counter = 0};
	unsigned seed = 12345;

	cr_assert_eq(weft_mutex_init(&rc.m), 0);
	for (int round = 0; round < ROUNDS; round++) {
		struct runner r[WAITERS];
		int64_t t0;

		cr_assert_eq(weft_mutex_lock(&rc.m), 0);
		t0 = weft_now();
		rc.deadline = t0 + 200 * US + (rand_r(&seed) % 300) * US;
		for (int i = 0; i < WAITERS; i++)
			run_start(&r[i], pool, i % 2 ? IN_TASK : IN_THREAD,
				  race_body, &rc);
		spin_until(t0 + 200 * US + (rand_r(&seed) % 300) * US);
		cr_assert_eq(weft_mutex_unlock(&rc.m), 0);
		for (int i = 0; i < WAITERS; i++)
			run_join(&r[i]);
		/* Free, with nobody queued: a lost handoff leaves it held. */
		cr_assert_eq(weft_mutex_trylock(&rc.m), 0, "round %d", round);
		cr_assert_eq(weft_mutex_unlock(&rc.m), 0);
	}
	cr_assert_eq(atomic_load(&rc.bad), 0);
	cr_assert_eq(rc.counter, atomic_load(&rc.ok));
	cr_assert_eq(atomic_load(&rc.ok) + atomic_load(&rc.timedout),
		     ROUNDS * WAITERS);
	cr_log_info("handoff race: %d got it, %d timed out",
		    atomic_load(&rc.ok), atomic_load(&rc.timedout));
	cr_assert_eq(weft_mutex_fini(&rc.m), 0);
	weft_pool_destroy(pool);
}

static int lock_count_unlock(void *arg, void **result)
{
	struct excl *e = arg;

	(void)result;
	if (weft_mutex_lock(&e->m) != 0)
		return -EIO;
	e->counter++;
	weft_mutex_unlock(&e->m);
	return 0;
}

Test(sync, thousand_tasks_waiting_on_a_mutex_do_not_block_two_workers,
     .timeout = 120)
{
	enum { N = 1000 };
	struct weft_pool *pool = pool_of(2);
	struct excl e = {.counter = 0};
	struct weft_future **f = calloc(N, sizeof(*f));

	cr_assert_not_null(f);
	cr_assert_eq(weft_mutex_init(&e.m), 0);
	cr_assert_eq(weft_mutex_lock(&e.m), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_submit(pool, lock_count_unlock, &e, &f[i]),
			     0);
	settle();
	cr_assert_eq(weft_mutex_unlock(&e.m), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(weft_future_wait(f[i]), 0);
		cr_assert_eq(weft_future_error(f[i]), 0);
		weft_future_unref(f[i]);
	}
	cr_assert_eq(e.counter, N);
	cr_assert_eq(weft_mutex_fini(&e.m), 0);
	free(f);
	weft_pool_destroy(pool);
}

static int lock_sleep_unlock(void *arg, void **result)
{
	struct weft_mutex *m = arg;
	int r;

	(void)result;
	if ((r = weft_mutex_lock(m)) != 0)
		return r;
	/* Each sleep may resume the task on another worker: the mutex is
	 * the task's, not its first thread's. */
	for (int i = 0; i < 20; i++)
		weft_sleep(200 * US);
	return weft_mutex_unlock(m);
}

Test(sync, a_task_unlocks_after_changing_threads, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);
	struct weft_mutex m;
	struct runner r[4];

	cr_assert_eq(weft_mutex_init(&m), 0);
	for (int i = 0; i < 4; i++)
		run_start(&r[i], pool, IN_TASK, lock_sleep_unlock, &m);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(run_join(&r[i]), 0);
	cr_assert_eq(weft_mutex_fini(&m), 0);
	weft_pool_destroy(pool);
}

#if WEFT_DEBUG_CHECKS
Test(sync, unlock_of_a_free_mutex_aborts, .signal = SIGABRT, .timeout = 30)
{
	struct weft_mutex m;

	weft_mutex_init(&m);
	weft_mutex_unlock(&m);
}

static int unlock_task(void *arg, void **result)
{
	(void)result;
	return weft_mutex_unlock(arg);
}

Test(sync, unlock_by_a_task_that_does_not_hold_it_aborts, .signal = SIGABRT,
     .timeout = 30)
{
	struct weft_pool *pool = pool_of(1);
	struct weft_mutex m;
	struct weft_future *f;

	weft_mutex_init(&m);
	weft_mutex_lock(&m); /* held by the test thread */
	weft_submit(pool, unlock_task, &m, &f);
	weft_future_wait(f);
}

Test(sync, relock_by_the_holder_aborts, .signal = SIGABRT, .timeout = 30)
{
	struct weft_mutex m;

	weft_mutex_init(&m);
	weft_mutex_lock(&m);
	weft_mutex_lock(&m);
}

Test(sync, cond_wait_without_the_mutex_aborts, .signal = SIGABRT,
     .timeout = 30)
{
	struct weft_mutex m;
	struct weft_cond c;

	weft_mutex_init(&m);
	weft_cond_init(&c);
	weft_cond_wait_until(&c, &m, weft_now() + 10 * MS);
}
#endif

/* ---- condition variable ----------------------------------------------- */

/* A bounded queue built from a mutex and two condition variables. */
struct bq {
	struct weft_mutex m;
	struct weft_cond not_empty, not_full;
	int buf[8];
	int head, n; /* under m */
	int per_producer;
	atomic_int errors;
	atomic_long sum;
	atomic_int received;
};

static int bq_producer(void *arg, void **result)
{
	struct bq *q = arg;

	(void)result;
	for (int i = 1; i <= q->per_producer; i++) {
		if (weft_mutex_lock(&q->m) != 0)
			goto err;
		while (q->n == 8)
			if (weft_cond_wait(&q->not_full, &q->m) != 0)
				atomic_fetch_add(&q->errors, 1);
		q->buf[(q->head + q->n++) % 8] = i;
		weft_cond_signal(&q->not_empty);
		weft_mutex_unlock(&q->m);
	}
	return 0;
err:
	atomic_fetch_add(&q->errors, 1);
	return -EIO;
}

static int bq_consumer(void *arg, void **result)
{
	struct bq *q = arg;

	(void)result;
	for (int i = 0; i < q->per_producer; i++) {
		int v;

		if (weft_mutex_lock(&q->m) != 0)
			goto err;
		while (q->n == 0)
			if (weft_cond_wait(&q->not_empty, &q->m) != 0)
				atomic_fetch_add(&q->errors, 1);
		v = q->buf[q->head];
		q->head = (q->head + 1) % 8;
		q->n--;
		weft_cond_signal(&q->not_full);
		weft_mutex_unlock(&q->m);
		atomic_fetch_add(&q->sum, v);
		atomic_fetch_add(&q->received, 1);
	}
	return 0;
err:
	atomic_fetch_add(&q->errors, 1);
	return -EIO;
}

Test(sync, cond_bounded_queue_between_tasks_and_threads, .timeout = 120)
{
	enum { PAIRS = 6, PER = 3000 };
	struct weft_pool *pool = pool_of(2);
	struct bq q = {.per_producer = PER};
	struct runner r[2 * PAIRS];

	cr_assert_eq(weft_mutex_init(&q.m), 0);
	cr_assert_eq(weft_cond_init(&q.not_empty), 0);
	cr_assert_eq(weft_cond_init(&q.not_full), 0);
	for (int i = 0; i < PAIRS; i++) {
		/* Producers and consumers, each both as tasks and threads. */
		run_start(&r[2 * i], pool, i % 2 ? IN_TASK : IN_THREAD,
			  bq_producer, &q);
		run_start(&r[2 * i + 1], pool, i % 3 ? IN_TASK : IN_THREAD,
			  bq_consumer, &q);
	}
	for (int i = 0; i < 2 * PAIRS; i++)
		cr_assert_eq(run_join(&r[i]), 0);
	cr_assert_eq(atomic_load(&q.errors), 0);
	cr_assert_eq(atomic_load(&q.received), PAIRS * PER);
	cr_assert_eq(atomic_load(&q.sum), (long)PAIRS * PER * (PER + 1) / 2);
	cr_assert_eq(q.n, 0);
	cr_assert_eq(weft_cond_fini(&q.not_empty), 0);
	cr_assert_eq(weft_cond_fini(&q.not_full), 0);
	cr_assert_eq(weft_mutex_fini(&q.m), 0);
	weft_pool_destroy(pool);
}

struct cwait {
	struct weft_mutex *m;
	struct weft_cond *c;
	int64_t deadline;
	atomic_int waiting;
	atomic_int woke;
	int r;
	int unlock_r;
	int64_t returned_at;
};

static int cwait_task(void *arg, void **result)
{
	struct cwait *a = arg;

	(void)result;
	if (weft_mutex_lock(a->m) != 0)
		return -EIO;
	atomic_store(&a->waiting, 1);
	a->r = weft_cond_wait_until(a->c, a->m, a->deadline);
	a->returned_at = weft_now();
	atomic_fetch_add(&a->woke, 1);
	/* Held again whatever the result: this unlock must succeed (and
	 * passes the owner check of debug builds). */
	a->unlock_r = weft_mutex_unlock(a->m);
	return 0;
}

Test(sync, cond_wait_until_times_out_holding_the_mutex, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);

	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		struct weft_mutex m;
		struct weft_cond c;
		struct cwait a = {.m = &m, .c = &c};
		struct runner r;

		cr_assert_eq(weft_mutex_init(&m), 0);
		cr_assert_eq(weft_cond_init(&c), 0);
		a.deadline = weft_now() + 20 * MS;
		run_start(&r, pool, wh, cwait_task, &a);
		run_join(&r);
		cr_assert_eq(a.r, -ETIMEDOUT, "%s: %d", where_name(wh), a.r);
		cr_assert_geq(a.returned_at, a.deadline);
		cr_assert_eq(a.unlock_r, 0);
		cr_assert_eq(weft_cond_fini(&c), 0, "the waiter stayed queued");
		cr_assert_eq(weft_mutex_fini(&m), 0);
	}
	weft_pool_destroy(pool);
}

Test(sync, cond_timeout_waits_to_take_the_mutex_back, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);

	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		struct weft_mutex m;
		struct weft_cond c;
		struct cwait a = {.m = &m, .c = &c};
		struct runner r;
		int64_t released;

		cr_assert_eq(weft_mutex_init(&m), 0);
		cr_assert_eq(weft_cond_init(&c), 0);
		/* Take the mutex while the waiter waits (it lets it go in
		 * the wait) and hold it past the waiter's deadline. If this
		 * thread only got it after the deadline (a slow machine),
		 * try again with a longer one. */
		for (int64_t span = 10 * MS;; span *= 4) {
			a = (struct cwait){.m = &m, .c = &c};
			a.deadline = weft_now() + span;
			run_start(&r, pool, wh, cwait_task, &a);
			cr_assert(wait_int(&a.waiting, 1));
			cr_assert_eq(weft_mutex_lock(&m), 0);
			if (weft_now() >= a.deadline) {
				cr_assert_eq(weft_mutex_unlock(&m), 0);
				run_join(&r);
				continue;
			}
			while (weft_now() < a.deadline + 30 * MS)
				sleep_ms(5);
			released = weft_now();
			cr_assert_eq(weft_mutex_unlock(&m), 0);
			run_join(&r);
			break;
		}
		cr_assert_eq(a.r, -ETIMEDOUT);
		cr_assert_geq(a.returned_at, released,
			      "%s: returned without the mutex", where_name(wh));
		cr_assert_eq(a.unlock_r, 0);
		cr_assert_eq(weft_mutex_fini(&m), 0);
		cr_assert_eq(weft_cond_fini(&c), 0);
	}
	weft_pool_destroy(pool);
}

Test(sync, cond_signal_wakes_one_waiter_and_broadcast_the_rest,
     .timeout = 30)
{
	enum { N = 4 };
	struct weft_pool *pool = pool_of(2);
	struct weft_mutex m;
	struct weft_cond c;
	struct cwait a[N];
	struct runner r[N];
	int woke = 0;

	cr_assert_eq(weft_mutex_init(&m), 0);
	cr_assert_eq(weft_cond_init(&c), 0);
	for (int i = 0; i < N; i++) {
		a[i] = (struct cwait){.m = &m, .c = &c,
				      .deadline = WEFT_FOREVER};
		run_start(&r[i], pool, i % 2 ? IN_TASK : IN_THREAD,
			  cwait_task, &a[i]);
		cr_assert(wait_int(&a[i].waiting, 1));
	}
	/* Each waiter holds the mutex until its cond wait has queued it, so
	 * taking the mutex here means at least the last one is queued. */
	cr_assert_eq(weft_mutex_lock(&m), 0);
	cr_assert_eq(weft_mutex_unlock(&m), 0);
	settle();
	cr_assert_eq(weft_cond_fini(&c), -EBUSY, "fini with waiters");
	cr_assert_eq(weft_cond_signal(&c), 0);
	/* Each waiter held the mutex until it was queued, so they queued
	 * in order: the oldest goes, and only it. */
	cr_assert(wait_int(&a[0].woke, 1), "not the oldest waiter");
	settle();
	for (int i = 0; i < N; i++)
		woke += atomic_load(&a[i].woke);
	cr_assert_eq(woke, 1, "one signal woke %d waiters", woke);
	cr_assert_eq(weft_cond_broadcast(&c), 0);
	for (int i = 0; i < N; i++) {
		run_join(&r[i]);
		cr_assert_eq(a[i].r, 0);
		cr_assert_eq(a[i].unlock_r, 0);
	}
	cr_assert_eq(weft_cond_signal(&c), 0, "a signal with no waiter");
	cr_assert_eq(weft_cond_fini(&c), 0);
	cr_assert_eq(weft_mutex_fini(&m), 0);
	weft_pool_destroy(pool);
}

Test(sync, cond_cancel_returns_ecanceled_holding_the_mutex, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);
	struct weft_mutex m;
	struct weft_cond c;
	struct cwait a = {.m = &m, .c = &c, .deadline = WEFT_FOREVER};
	struct runner r;

	cr_assert_eq(weft_mutex_init(&m), 0);
	cr_assert_eq(weft_cond_init(&c), 0);
	run_start(&r, pool, IN_TASK, cwait_task, &a);
	cr_assert(wait_int(&a.waiting, 1));
	/* Cancel while the test holds the mutex: the waiter must wait for
	 * it before returning. */
	cr_assert_eq(weft_mutex_lock(&m), 0);
	cr_assert_eq(weft_future_cancel(r.f), -EBUSY);
	settle();
	cr_assert_eq(atomic_load(&a.woke), 0, "returned without the mutex");
	cr_assert_eq(weft_mutex_unlock(&m), 0);
	run_join(&r);
	cr_assert_eq(a.r, -ECANCELED);
	cr_assert_eq(a.unlock_r, 0);
	cr_assert_eq(weft_cond_fini(&c), 0);
	cr_assert_eq(weft_mutex_fini(&m), 0);
	weft_pool_destroy(pool);
}

static int cancelled_cond_wait(void *arg, void **result)
{
	struct cwait *a = arg;

	(void)result;
	atomic_store(&a->waiting, 1);
	while (weft_yield() == 0)
		;
	if (weft_mutex_lock(a->m) != 0) /* free: completes */
		return -EIO;
	a->r = weft_cond_wait(a->c, a->m);
	a->unlock_r = weft_mutex_unlock(a->m);
	return 0;
}

Test(sync, cond_wait_in_a_cancelled_task_returns_at_once_holding_the_mutex,
     .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);
	struct weft_mutex m;
	struct weft_cond c;
	struct cwait a = {.m = &m, .c = &c};
	struct runner r;

	cr_assert_eq(weft_mutex_init(&m), 0);
	cr_assert_eq(weft_cond_init(&c), 0);
	run_start(&r, pool, IN_TASK, cancelled_cond_wait, &a);
	cr_assert(wait_int(&a.waiting, 1));
	cr_assert_eq(weft_future_cancel(r.f), -EBUSY);
	run_join(&r);
	cr_assert_eq(a.r, -ECANCELED);
	cr_assert_eq(a.unlock_r, 0);
	cr_assert_eq(weft_mutex_fini(&m), 0);
	cr_assert_eq(weft_cond_fini(&c), 0);
	weft_pool_destroy(pool);
}

struct flagwait {
	struct weft_mutex m;
	struct weft_cond c;
	bool go; /* under m */
	atomic_int done;
};

static int flag_waiter(void *arg, void **result)
{
	struct flagwait *fw = arg;
	int r = 0;

	(void)result;
	if (weft_mutex_lock(&fw->m) != 0)
		return -EIO;
	while (!fw->go && r == 0)
		r = weft_cond_wait(&fw->c, &fw->m);
	weft_mutex_unlock(&fw->m);
	atomic_fetch_add(&fw->done, 1);
	return r;
}

Test(sync, cond_broadcast_wakes_a_thousand_tasks_on_two_workers,
     .timeout = 120)
{
	enum { N = 1000 };
	struct weft_pool *pool = pool_of(2);
	struct flagwait fw = {.go = false};
	struct weft_future **f = calloc(N, sizeof(*f));

	cr_assert_not_null(f);
	cr_assert_eq(weft_mutex_init(&fw.m), 0);
	cr_assert_eq(weft_cond_init(&fw.c), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_submit(pool, flag_waiter, &fw, &f[i]), 0);
	settle();
	cr_assert_eq(weft_mutex_lock(&fw.m), 0);
	fw.go = true;
	cr_assert_eq(weft_cond_broadcast(&fw.c), 0);
	cr_assert_eq(weft_mutex_unlock(&fw.m), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(weft_future_wait(f[i]), 0);
		cr_assert_eq(weft_future_error(f[i]), 0);
		weft_future_unref(f[i]);
	}
	cr_assert_eq(atomic_load(&fw.done), N);
	cr_assert_eq(weft_cond_fini(&fw.c), 0);
	cr_assert_eq(weft_mutex_fini(&fw.m), 0);
	free(f);
	weft_pool_destroy(pool);
}

/* ---- semaphore -------------------------------------------------------- */

Test(sync, sem_counts_permits)
{
	struct weft_sem s;

	cr_assert_eq(weft_sem_init(&s, 2), 0);
	cr_assert_eq(weft_sem_value(&s), 2);
	cr_assert_eq(weft_sem_try_acquire(&s), 0);
	cr_assert_eq(weft_sem_acquire(&s), 0);
	cr_assert_eq(weft_sem_try_acquire(&s), -EAGAIN);
	cr_assert_eq(weft_sem_acquire_until(&s, 0), -ETIMEDOUT);
	cr_assert_eq(weft_sem_value(&s), 0);
	cr_assert_eq(weft_sem_release(&s, 3), 0);
	cr_assert_eq(weft_sem_value(&s), 3);
	cr_assert_eq(weft_sem_acquire_until(&s, 0), 0, "a poll with permits");
	cr_assert_eq(weft_sem_value(&s), 2);
	cr_assert_eq(weft_sem_fini(&s), 0);
}

struct sacq {
	struct weft_sem *s;
	int64_t deadline;
	atomic_int waiting;
	atomic_int got;
	int r;
	int64_t returned_at;
};

static int sacq_task(void *arg, void **result)
{
	struct sacq *a = arg;

	(void)result;
	atomic_store(&a->waiting, 1);
	a->r = weft_sem_acquire_until(a->s, a->deadline);
	a->returned_at = weft_now();
	if (a->r == 0)
		atomic_fetch_add(&a->got, 1);
	return 0;
}

Test(sync, sem_acquire_until_times_out_and_changes_nothing, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);

	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		struct weft_sem s;
		struct sacq a = {.s = &s};
		struct runner r;

		cr_assert_eq(weft_sem_init(&s, 0), 0);
		a.deadline = weft_now() + 20 * MS;
		run_start(&r, pool, wh, sacq_task, &a);
		run_join(&r);
		cr_assert_eq(a.r, -ETIMEDOUT, "%s", where_name(wh));
		cr_assert_geq(a.returned_at, a.deadline);
		cr_assert_eq(weft_sem_value(&s), 0);
		/* No waiter left behind to swallow the next permit. */
		cr_assert_eq(weft_sem_release(&s, 1), 0);
		cr_assert_eq(weft_sem_value(&s), 1);
		cr_assert_eq(weft_sem_fini(&s), 0);
	}
	weft_pool_destroy(pool);
}

Test(sync, sem_release_n_wakes_n_waiters_oldest_first, .timeout = 30)
{
	enum { N = 8 };
	struct weft_pool *pool = pool_of(2);
	struct weft_sem s;
	struct sacq a[N];
	struct runner r[N];
	int got = 0;

	cr_assert_eq(weft_sem_init(&s, 0), 0);
	for (int i = 0; i < N; i++) {
		a[i] = (struct sacq){.s = &s, .deadline = WEFT_FOREVER};
		run_start(&r[i], pool, i % 2 ? IN_TASK : IN_THREAD, sacq_task,
			  &a[i]);
		cr_assert(wait_int(&a[i].waiting, 1));
		settle();
	}
	cr_assert_eq(weft_sem_fini(&s), -EBUSY);
	cr_assert_eq(weft_sem_release(&s, 3), 0);
	for (int i = 0; i < 3; i++)
		cr_assert(wait_int(&a[i].got, 1), "waiter %d", i);
	settle();
	for (int i = 0; i < N; i++)
		got += atomic_load(&a[i].got);
	cr_assert_eq(got, 3);
	cr_assert_eq(weft_sem_value(&s), 0);
	/* 5 more waiters and 2 extra permits. */
	cr_assert_eq(weft_sem_release(&s, N - 3 + 2), 0);
	for (int i = 0; i < N; i++) {
		run_join(&r[i]);
		cr_assert_eq(a[i].r, 0);
	}
	cr_assert_eq(weft_sem_value(&s), 2);
	cr_assert_eq(weft_sem_fini(&s), 0);
	weft_pool_destroy(pool);
}

Test(sync, sem_cancel_wakes_a_waiting_task, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);
	struct weft_sem s;
	struct sacq a = {.s = &s, .deadline = WEFT_FOREVER};
	struct runner r;

	cr_assert_eq(weft_sem_init(&s, 0), 0);
	run_start(&r, pool, IN_TASK, sacq_task, &a);
	cancel_running(&r, &a.waiting);
	run_join(&r);
	cr_assert_eq(a.r, -ECANCELED);
	cr_assert_eq(weft_sem_release(&s, 1), 0);
	cr_assert_eq(weft_sem_value(&s), 1, "a cancelled waiter took it");
	cr_assert_eq(weft_sem_fini(&s), 0);
	weft_pool_destroy(pool);
}

struct srace {
	struct weft_sem s;
	int64_t deadline;
	atomic_int got, timedout, bad;
};

static int srace_body(void *arg, void **result)
{
	struct srace *sr = arg;
	int r = weft_sem_acquire_until(&sr->s, sr->deadline);

	(void)result;
	if (r == 0)
		atomic_fetch_add(&sr->got, 1);
	else if (r == -ETIMEDOUT)
		atomic_fetch_add(&sr->timedout, 1);
	else
		atomic_fetch_add(&sr->bad, 1);
	return 0;
}

Test(sync, sem_permits_are_not_lost_to_racing_timeouts, .timeout = 120)
{
	enum { ROUNDS = 300, WAITERS = 4 };
	struct weft_pool *pool = pool_of(2);
	struct srace sr = {.deadline = 0};
	unsigned seed = 777;
	long released = 0;

	cr_assert_eq(weft_sem_init(&sr.s, 0), 0);
	for (int round = 0; round < ROUNDS; round++) {
		struct runner r[WAITERS];
		int64_t t0 = weft_now();
		unsigned k = rand_r(&seed) % (WAITERS + 1);

		sr.deadline = t0 + 200 * US + (rand_r(&seed) % 300) * US;
		for (int i = 0; i < WAITERS; i++)
			run_start(&r[i], pool, i % 2 ? IN_TASK : IN_THREAD,
				  srace_body, &sr);
		spin_until(t0 + 200 * US + (rand_r(&seed) % 300) * US);
		cr_assert_eq(weft_sem_release(&sr.s, k), 0);
		released += k;
		for (int i = 0; i < WAITERS; i++)
			run_join(&r[i]);
		/* Every permit is with an acquirer or still free. */
		cr_assert_eq(atomic_load(&sr.got) + weft_sem_value(&sr.s),
			     released, "round %d", round);
	}
	cr_assert_eq(atomic_load(&sr.bad), 0);
	cr_log_info("sem race: %d acquired, %d timed out",
		    atomic_load(&sr.got), atomic_load(&sr.timedout));
	cr_assert_eq(weft_sem_fini(&sr.s), 0);
	weft_pool_destroy(pool);
}

/* ---- event ------------------------------------------------------------ */

Test(sync, event_manual_and_auto_reset)
{
	struct weft_event ev;

	cr_assert_eq(weft_event_init(&ev, 0), 0);
	cr_assert_eq(weft_event_is_set(&ev), false);
	cr_assert_eq(weft_event_try_wait(&ev), -EAGAIN);
	cr_assert_eq(weft_event_wait_until(&ev, 0), -ETIMEDOUT);
	cr_assert_eq(weft_event_set(&ev), 0);
	cr_assert_eq(weft_event_set(&ev), 0, "setting a set event");
	cr_assert_eq(weft_event_is_set(&ev), true);
	cr_assert_eq(weft_event_wait(&ev), 0);
	cr_assert_eq(weft_event_wait(&ev), 0, "manual reset stays set");
	cr_assert_eq(weft_event_try_wait(&ev), 0);
	cr_assert_eq(weft_event_reset(&ev), 0);
	cr_assert_eq(weft_event_is_set(&ev), false);
	cr_assert_eq(weft_event_reset(&ev), 0);
	cr_assert_eq(weft_event_fini(&ev), 0);

	cr_assert_eq(weft_event_init(&ev, WEFT_EVENT_AUTO_RESET), 0);
	cr_assert_eq(weft_event_set(&ev), 0);
	cr_assert_eq(weft_event_is_set(&ev), true);
	cr_assert_eq(weft_event_wait(&ev), 0);
	cr_assert_eq(weft_event_is_set(&ev), false, "auto reset consumed");
	cr_assert_eq(weft_event_try_wait(&ev), -EAGAIN);
	cr_assert_eq(weft_event_set(&ev), 0);
	cr_assert_eq(weft_event_try_wait(&ev), 0);
	cr_assert_eq(weft_event_wait_until(&ev, 0), -ETIMEDOUT);
	cr_assert_eq(weft_event_fini(&ev), 0);

	cr_assert_eq(weft_event_init(&ev, WEFT_EVENT_SET), 0);
	cr_assert_eq(weft_event_is_set(&ev), true);
	cr_assert_eq(weft_event_fini(&ev), 0);
	cr_assert_eq(weft_event_init(&ev, WEFT_EVENT_SET |
						  WEFT_EVENT_AUTO_RESET),
		     0);
	cr_assert_eq(weft_event_try_wait(&ev), 0);
	cr_assert_eq(weft_event_try_wait(&ev), -EAGAIN);
	cr_assert_eq(weft_event_fini(&ev), 0);
}

struct evwait {
	struct weft_event *ev;
	int64_t deadline;
	atomic_int waiting;
	atomic_int passed;
	int r;
	int64_t returned_at;
};

static int evwait_task(void *arg, void **result)
{
	struct evwait *a = arg;

	(void)result;
	atomic_store(&a->waiting, 1);
	a->r = weft_event_wait_until(a->ev, a->deadline);
	a->returned_at = weft_now();
	if (a->r == 0)
		atomic_store(&a->passed, 1);
	return 0;
}

Test(sync, event_wait_until_times_out_and_cancel_wakes, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);
	struct weft_event ev;

	cr_assert_eq(weft_event_init(&ev, WEFT_EVENT_AUTO_RESET), 0);
	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		struct evwait a = {.ev = &ev};
		struct runner r;

		a.deadline = weft_now() + 20 * MS;
		run_start(&r, pool, wh, evwait_task, &a);
		run_join(&r);
		cr_assert_eq(a.r, -ETIMEDOUT, "%s", where_name(wh));
		cr_assert_geq(a.returned_at, a.deadline);
		cr_assert_eq(weft_event_fini(&ev), 0, "waiter left queued");
	}
	{
		struct evwait a = {.ev = &ev, .deadline = WEFT_FOREVER};
		struct runner r;

		run_start(&r, pool, IN_TASK, evwait_task, &a);
		cancel_running(&r, &a.waiting);
		run_join(&r);
		cr_assert_eq(a.r, -ECANCELED);
		/* The cancelled waiter did not consume the next set. */
		cr_assert_eq(weft_event_set(&ev), 0);
		cr_assert_eq(weft_event_is_set(&ev), true);
	}
	cr_assert_eq(weft_event_fini(&ev), 0);
	weft_pool_destroy(pool);
}

Test(sync, auto_reset_event_lets_one_waiter_through_per_set, .timeout = 30)
{
	enum { N = 4 };
	struct weft_pool *pool = pool_of(2);
	struct weft_event ev;
	struct evwait a[N];
	struct runner r[N];

	cr_assert_eq(weft_event_init(&ev, WEFT_EVENT_AUTO_RESET), 0);
	for (int i = 0; i < N; i++) {
		a[i] = (struct evwait){.ev = &ev, .deadline = WEFT_FOREVER};
		run_start(&r[i], pool, i % 2 ? IN_TASK : IN_THREAD,
			  evwait_task, &a[i]);
		cr_assert(wait_int(&a[i].waiting, 1));
		settle();
	}
	for (int k = 1; k <= N; k++) {
		int passed = 0;

		cr_assert_eq(weft_event_set(&ev), 0);
		cr_assert(wait_int(&a[k - 1].passed, 1), "oldest first");
		settle();
		for (int i = 0; i < N; i++)
			passed += atomic_load(&a[i].passed);
		cr_assert_eq(passed, k);
		cr_assert_eq(weft_event_is_set(&ev), false);
	}
	for (int i = 0; i < N; i++)
		run_join(&r[i]);
	cr_assert_eq(weft_event_fini(&ev), 0);
	weft_pool_destroy(pool);
}

Test(sync, thousand_tasks_waiting_on_an_event_share_two_workers,
     .timeout = 120)
{
	enum { N = 1000 };
	struct weft_pool *pool = pool_of(2);
	struct weft_event ev;
	struct evwait *a = calloc(N, sizeof(*a));
	struct weft_future **f = calloc(N, sizeof(*f));
	int waiting = 0;

	cr_assert(a && f);
	cr_assert_eq(weft_event_init(&ev, 0), 0);
	for (int i = 0; i < N; i++) {
		a[i].ev = &ev;
		a[i].deadline = WEFT_FOREVER;
		cr_assert_eq(weft_submit(pool, evwait_task, &a[i], &f[i]), 0);
	}
	/* All of them start and wait: two workers are enough, since a
	 * waiting task does not hold its worker. */
	for (int i = 0; i < N; i++)
		waiting += wait_int(&a[i].waiting, 1);
	cr_assert_eq(waiting, N);
	settle();
	for (int i = 0; i < N; i++)
		cr_assert_eq(weft_future_state(f[i]), WEFT_FUTURE_RUNNING);
	cr_assert_eq(weft_event_set(&ev), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(weft_future_wait(f[i]), 0);
		cr_assert_eq(a[i].r, 0);
		weft_future_unref(f[i]);
	}
	cr_assert_eq(weft_event_fini(&ev), 0);
	free(f);
	free(a);
	weft_pool_destroy(pool);
}

/* The waiter frees the event as soon as its wait returns: the setter must
 * not touch it after the waiter can see it set (ASan reports a
 * use-after-free if it does). Half the waits find the event set already,
 * half are woken from the queue. */
struct freed_ev {
	_Atomic(struct weft_event *) ev;
	atomic_int rounds;
};

static int freeing_waiter(void *arg, void **result)
{
	struct freed_ev *se = arg;

	(void)result;
	for (int i = 0; i < 2000; i++) {
		struct weft_event *ev = malloc(sizeof(*ev));

		if (!ev)
			return -ENOMEM;
		weft_event_init(ev, i % 4 < 2 ? WEFT_EVENT_AUTO_RESET : 0);
		atomic_store(&se->ev, ev);
		if (i % 2)
			while (atomic_load(&se->ev) != NULL)
				thrd_yield(); /* set before the wait */
		if (weft_event_wait(ev) != 0)
			return -EIO;
		if (weft_event_fini(ev) != 0)
			return -EBUSY;
		free(ev);
		atomic_fetch_add(&se->rounds, 1);
	}
	return 0;
}

Test(sync, a_waiter_may_free_the_event_as_soon_as_it_returns, .timeout = 60)
{
	struct weft_pool *pool = pool_of(2);
	struct freed_ev se = {.ev = NULL};
	struct runner r;

	run_start(&r, pool, IN_TASK, freeing_waiter, &se);
	for (int i = 0; i < 2000; i++) {
		struct weft_event *ev;

		/* Spins yield: under Valgrind one thread runs at a time, and a
		 * bare spin would burn its whole time slice every round. */
		while (!(ev = atomic_load(&se.ev)))
			thrd_yield();
		atomic_store(&se.ev, NULL);
		weft_event_set(ev);
		while (atomic_load(&se.rounds) <= i)
			thrd_yield();
	}
	cr_assert_eq(run_join(&r), 0);
	weft_pool_destroy(pool);
}

/* ---- wait group ------------------------------------------------------- */

struct wgwork {
	struct weft_wgroup *wg;
	atomic_int ran;
};

static int wg_worker(void *arg, void **result)
{
	struct wgwork *w = arg;

	(void)result;
	weft_sleep(1 * MS);
	atomic_fetch_add(&w->ran, 1);
	return weft_wgroup_done(w->wg);
}

struct wgwait {
	struct weft_wgroup *wg;
	int64_t deadline;
	atomic_int waiting;
	int r;
	int64_t returned_at;
};

static int wgwait_task(void *arg, void **result)
{
	struct wgwait *a = arg;

	(void)result;
	atomic_store(&a->waiting, 1);
	a->r = weft_wgroup_wait_until(a->wg, a->deadline);
	a->returned_at = weft_now();
	return 0;
}

Test(sync, wgroup_waits_for_all_the_work, .timeout = 30)
{
	enum { N = 50 };
	struct weft_pool *pool = pool_of(2);

	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		struct weft_wgroup wg;
		struct wgwork w = {.wg = &wg};
		struct wgwait a = {.wg = &wg, .deadline = WEFT_FOREVER};
		struct runner r;

		cr_assert_eq(weft_wgroup_init(&wg), 0);
		cr_assert_eq(weft_wgroup_wait(&wg), 0, "zero: no wait");
		cr_assert_eq(weft_wgroup_add(&wg, N), 0);
		run_start(&r, pool, wh, wgwait_task, &a);
		for (int i = 0; i < N; i++)
			cr_assert_eq(weft_submit(pool, wg_worker, &w, NULL), 0);
		run_join(&r);
		cr_assert_eq(a.r, 0);
		cr_assert_eq(atomic_load(&w.ran), N, "%s: returned early",
			     where_name(wh));
		cr_assert_eq(weft_wgroup_count(&wg), 0);
		/* A second round on the same group. */
		cr_assert_eq(weft_wgroup_add(&wg, 1), 0);
		cr_assert_eq(weft_wgroup_wait_until(&wg, 0), -ETIMEDOUT);
		cr_assert_eq(weft_wgroup_done(&wg), 0);
		cr_assert_eq(weft_wgroup_wait(&wg), 0);
		cr_assert_eq(weft_wgroup_fini(&wg), 0);
	}
	weft_pool_destroy(pool);
}

Test(sync, wgroup_wait_until_times_out_and_cancel_wakes, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);
	struct weft_wgroup wg;

	cr_assert_eq(weft_wgroup_init(&wg), 0);
	cr_assert_eq(weft_wgroup_add(&wg, 2), 0);
	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		struct wgwait a = {.wg = &wg};
		struct runner r;

		a.deadline = weft_now() + 20 * MS;
		run_start(&r, pool, wh, wgwait_task, &a);
		run_join(&r);
		cr_assert_eq(a.r, -ETIMEDOUT);
		cr_assert_geq(a.returned_at, a.deadline);
		cr_assert_eq(weft_wgroup_count(&wg), 2);
		cr_assert_eq(weft_wgroup_fini(&wg), 0, "waiter left queued");
	}
	{
		struct wgwait a = {.wg = &wg, .deadline = WEFT_FOREVER};
		struct runner r;

		run_start(&r, pool, IN_TASK, wgwait_task, &a);
		cancel_running(&r, &a.waiting);
		run_join(&r);
		cr_assert_eq(a.r, -ECANCELED);
		cr_assert_eq(weft_wgroup_count(&wg), 2);
	}
	cr_assert_eq(weft_wgroup_add(&wg, -2), 0);
	cr_assert_eq(weft_wgroup_fini(&wg), 0);
	weft_pool_destroy(pool);
}

Test(sync, wgroup_zero_releases_a_thousand_waiting_tasks, .timeout = 120)
{
	enum { N = 1000 };
	struct weft_pool *pool = pool_of(2);
	struct weft_wgroup wg;
	struct wgwait *a = calloc(N, sizeof(*a));
	struct weft_future **f = calloc(N, sizeof(*f));

	cr_assert(a && f);
	cr_assert_eq(weft_wgroup_init(&wg), 0);
	cr_assert_eq(weft_wgroup_add(&wg, 1), 0);
	for (int i = 0; i < N; i++) {
		a[i].wg = &wg;
		a[i].deadline = WEFT_FOREVER;
		cr_assert_eq(weft_submit(pool, wgwait_task, &a[i], &f[i]), 0);
	}
	settle();
	cr_assert_eq(weft_wgroup_fini(&wg), -EBUSY);
	cr_assert_eq(weft_wgroup_done(&wg), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(weft_future_wait(f[i]), 0);
		cr_assert_eq(a[i].r, 0);
		weft_future_unref(f[i]);
	}
	cr_assert_eq(weft_wgroup_fini(&wg), 0);
	free(f);
	free(a);
	weft_pool_destroy(pool);
}

/* ---- channel ---------------------------------------------------------- */

#define ITEM(i) ((void *)(uintptr_t)(i))

Test(sync, chan_buffered_is_fifo_and_try_ops_do_not_wait)
{
	struct weft_chan *ch;
	void *v;

	cr_assert_eq(weft_chan_create(3, &ch), 0);
	cr_assert_eq(weft_chan_try_recv(ch, &v), -EAGAIN);
	cr_assert_eq(weft_chan_recv_until(ch, &v, 0), -ETIMEDOUT);
	for (uintptr_t i = 1; i <= 3; i++)
		cr_assert_eq(weft_chan_send(ch, ITEM(i)), 0);
	cr_assert_eq(weft_chan_len(ch), 3);
	cr_assert_eq(weft_chan_try_send(ch, ITEM(9)), -EAGAIN);
	cr_assert_eq(weft_chan_send_until(ch, ITEM(9), 0), -ETIMEDOUT);
	cr_assert_eq(weft_chan_len(ch), 3, "a failed send changed it");
	for (uintptr_t i = 1; i <= 2; i++) {
		cr_assert_eq(weft_chan_try_recv(ch, &v), 0);
		cr_assert_eq(v, ITEM(i));
	}
	cr_assert_eq(weft_chan_try_send(ch, NULL), 0, "NULL is an item");
	cr_assert_eq(weft_chan_try_send(ch, ITEM(5)), 0);
	cr_assert_eq(weft_chan_recv(ch, &v), 0);
	cr_assert_eq(v, ITEM(3));
	cr_assert_eq(weft_chan_recv(ch, &v), 0);
	cr_assert_null(v);
	cr_assert_eq(weft_chan_recv(ch, &v), 0);
	cr_assert_eq(v, ITEM(5));
	cr_assert_eq(weft_chan_len(ch), 0);
	weft_chan_destroy(ch);
}

Test(sync, chan_close_fails_sends_and_drains_then_epipe)
{
	struct weft_chan *ch;
	void *v = ITEM(99);

	cr_assert_eq(weft_chan_create(4, &ch), 0);
	for (uintptr_t i = 1; i <= 3; i++)
		cr_assert_eq(weft_chan_send(ch, ITEM(i)), 0);
	cr_assert_eq(weft_chan_close(ch), 0);
	cr_assert_eq(weft_chan_close(ch), -EPIPE, "closed twice");
	cr_assert_eq(weft_chan_send(ch, ITEM(4)), -EPIPE);
	cr_assert_eq(weft_chan_try_send(ch, ITEM(4)), -EPIPE);
	cr_assert_eq(weft_chan_send_until(ch, ITEM(4), 0), -EPIPE);
	for (uintptr_t i = 1; i <= 3; i++) {
		cr_assert_eq(weft_chan_recv(ch, &v), 0);
		cr_assert_eq(v, ITEM(i));
	}
	v = ITEM(99);
	cr_assert_eq(weft_chan_recv(ch, &v), -EPIPE);
	cr_assert_eq(weft_chan_try_recv(ch, &v), -EPIPE);
	cr_assert_eq(weft_chan_recv_until(ch, &v, weft_now() + MS), -EPIPE);
	cr_assert_eq(v, ITEM(99), "*item written on failure");
	weft_chan_destroy(ch);
}

struct chop {
	struct weft_chan *ch;
	bool send;
	void *item;
	int64_t deadline;
	atomic_int waiting;
	atomic_int returned;
	int r;
	int64_t returned_at;
};

static int chop_task(void *arg, void **result)
{
	struct chop *a = arg;

	(void)result;
	atomic_store(&a->waiting, 1);
	if (a->send)
		a->r = weft_chan_send_until(a->ch, a->item, a->deadline);
	else
		a->r = weft_chan_recv_until(a->ch, &a->item, a->deadline);
	a->returned_at = weft_now();
	atomic_store(&a->returned, 1);
	return 0;
}

Test(sync, chan_close_wakes_blocked_receivers_and_senders, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);

	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		struct weft_chan *ch;
		struct chop rx[2], tx[2];
		struct runner rr[2], rt[2];
		void *v;

		/* Receivers on an empty channel. */
		cr_assert_eq(weft_chan_create(1, &ch), 0);
		for (int i = 0; i < 2; i++) {
			rx[i] = (struct chop){.ch = ch, .send = false,
					      .item = ITEM(77),
					      .deadline = WEFT_FOREVER};
			run_start(&rr[i], pool, wh, chop_task, &rx[i]);
		}
		settle();
		cr_assert_eq(weft_chan_close(ch), 0);
		for (int i = 0; i < 2; i++) {
			run_join(&rr[i]);
			cr_assert_eq(rx[i].r, -EPIPE, "%s", where_name(wh));
			cr_assert_eq(rx[i].item, ITEM(77));
		}
		weft_chan_destroy(ch);

		/* Senders on a full channel: their items are not sent. */
		cr_assert_eq(weft_chan_create(1, &ch), 0);
		cr_assert_eq(weft_chan_send(ch, ITEM(1)), 0);
		for (int i = 0; i < 2; i++) {
			tx[i] = (struct chop){.ch = ch, .send = true,
					      .item = ITEM(10 + i),
					      .deadline = WEFT_FOREVER};
			run_start(&rt[i], pool, wh, chop_task, &tx[i]);
		}
		settle();
		cr_assert_eq(weft_chan_close(ch), 0);
		for (int i = 0; i < 2; i++) {
			run_join(&rt[i]);
			cr_assert_eq(tx[i].r, -EPIPE);
		}
		cr_assert_eq(weft_chan_recv(ch, &v), 0);
		cr_assert_eq(v, ITEM(1));
		cr_assert_eq(weft_chan_recv(ch, &v), -EPIPE);
		weft_chan_destroy(ch);
	}
	weft_pool_destroy(pool);
}

Test(sync, chan_deadlines_time_out_and_change_nothing, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);

	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		for (size_t cap = 0; cap <= 1; cap++) {
			struct weft_chan *ch;
			struct chop a;
			struct runner r;
			void *v;

			cr_assert_eq(weft_chan_create(cap, &ch), 0);
			if (cap)
				cr_assert_eq(weft_chan_send(ch, ITEM(1)), 0);
			/* A send on a full (or unbuffered) channel. */
			a = (struct chop){.ch = ch, .send = true,
					  .item = ITEM(2),
					  .deadline = weft_now() + 20 * MS};
			run_start(&r, pool, wh, chop_task, &a);
			run_join(&r);
			cr_assert_eq(a.r, -ETIMEDOUT, "%s cap %zu: %d",
				     where_name(wh), cap, a.r);
			cr_assert_geq(a.returned_at, a.deadline);
			cr_assert_eq(weft_chan_len(ch), cap);
			if (cap) {
				cr_assert_eq(weft_chan_try_recv(ch, &v), 0);
				cr_assert_eq(v, ITEM(1));
			}
			/* The timed-out sender left nothing behind. */
			cr_assert_eq(weft_chan_try_recv(ch, &v), -EAGAIN);
			/* A receive on an empty channel. */
			a = (struct chop){.ch = ch, .send = false,
					  .item = ITEM(3),
					  .deadline = weft_now() + 20 * MS};
			run_start(&r, pool, wh, chop_task, &a);
			run_join(&r);
			cr_assert_eq(a.r, -ETIMEDOUT);
			cr_assert_eq(a.item, ITEM(3));
			cr_assert_geq(a.returned_at, a.deadline);
			/* The timed-out receiver takes nothing sent later. */
			if (cap) {
				cr_assert_eq(weft_chan_try_send(ch, ITEM(4)),
					     0);
				cr_assert_eq(weft_chan_len(ch), 1);
			} else {
				cr_assert_eq(weft_chan_try_send(ch, ITEM(4)),
					     -EAGAIN);
			}
			weft_chan_destroy(ch);
		}
	}
	weft_pool_destroy(pool);
}

Test(sync, chan_cancel_wakes_blocked_tasks_and_loses_nothing, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);
	struct weft_chan *ch;
	struct chop a;
	struct runner r;
	void *v;

	cr_assert_eq(weft_chan_create(1, &ch), 0);
	a = (struct chop){.ch = ch, .send = false, .item = ITEM(5),
			  .deadline = WEFT_FOREVER};
	run_start(&r, pool, IN_TASK, chop_task, &a);
	cancel_running(&r, &a.waiting);
	run_join(&r);
	cr_assert_eq(a.r, -ECANCELED);
	cr_assert_eq(a.item, ITEM(5));
	cr_assert_eq(weft_chan_send(ch, ITEM(6)), 0);
	cr_assert_eq(weft_chan_len(ch), 1, "the cancelled receiver took it");

	a = (struct chop){.ch = ch, .send = true, .item = ITEM(7),
			  .deadline = WEFT_FOREVER};
	run_start(&r, pool, IN_TASK, chop_task, &a);
	cancel_running(&r, &a.waiting);
	run_join(&r);
	cr_assert_eq(a.r, -ECANCELED);
	cr_assert_eq(weft_chan_recv(ch, &v), 0);
	cr_assert_eq(v, ITEM(6));
	cr_assert_eq(weft_chan_try_recv(ch, &v), -EAGAIN,
		     "the cancelled sender's item arrived");
	weft_chan_destroy(ch);
	weft_pool_destroy(pool);
}

Test(sync, unbuffered_chan_is_a_rendezvous, .timeout = 30)
{
	struct weft_pool *pool = pool_of(2);

	for (enum where wh = IN_THREAD; wh <= IN_TASK; wh++) {
		struct weft_chan *ch;
		struct chop a;
		struct runner r;
		void *v;

		cr_assert_eq(weft_chan_create(0, &ch), 0);
		cr_assert_eq(weft_chan_cap(ch), 0);
		cr_assert_eq(weft_chan_try_send(ch, ITEM(1)), -EAGAIN);
		cr_assert_eq(weft_chan_try_recv(ch, &v), -EAGAIN);
		/* A sender waits until the receive. */
		a = (struct chop){.ch = ch, .send = true, .item = ITEM(2),
				  .deadline = WEFT_FOREVER};
		run_start(&r, pool, wh, chop_task, &a);
		settle();
		cr_assert_eq(atomic_load(&a.returned), 0, "send did not wait");
		cr_assert_eq(weft_chan_recv(ch, &v), 0);
		cr_assert_eq(v, ITEM(2));
		run_join(&r);
		cr_assert_eq(a.r, 0);
		/* A receiver waits until the send. */
		a = (struct chop){.ch = ch, .send = false,
				  .deadline = WEFT_FOREVER};
		run_start(&r, pool, wh, chop_task, &a);
		/* A try_send succeeds once the receiver waits (and failed
		 * above while none did). Retry until then: on a loaded
		 * machine the receiver may take a while to get there. */
		{
			int64_t until = weft_now() + 10000000000LL;
			int rc;

			while ((rc = weft_chan_try_send(ch, ITEM(3))) ==
				       -EAGAIN &&
			       weft_now() < until)
				sleep_ms(1);
			cr_assert_eq(rc, 0);
		}
		run_join(&r);
		cr_assert_eq(a.r, 0);
		cr_assert_eq(a.item, ITEM(3));
		cr_assert_eq(weft_chan_len(ch), 0);
		weft_chan_destroy(ch);
	}
	weft_pool_destroy(pool);
}

/* Many producers and consumers, tasks and threads: every item arrives
 * exactly once, and each consumer sees each producer's items in order. */
enum { MP_PRODUCERS = 6, MP_CONSUMERS = 5, MP_PER = 4000 };

struct mpmc {
	struct weft_chan *ch;
	atomic_int producer_id, consumer_id;
	atomic_int errors;
	atomic_uchar seen[MP_PRODUCERS][MP_PER];
};

static int mp_producer(void *arg, void **result)
{
	struct mpmc *m = arg;
	uintptr_t p = (uintptr_t)atomic_fetch_add(&m->producer_id, 1);

	(void)result;
	for (uintptr_t i = 0; i < MP_PER; i++) {
		if (weft_chan_send(m->ch, ITEM(p * MP_PER + i + 1)) != 0)
			atomic_fetch_add(&m->errors, 1);
		if (i % 97 == 0)
			weft_yield();
	}
	return 0;
}

static int mp_consumer(void *arg, void **result)
{
	struct mpmc *m = arg;
	long last[MP_PRODUCERS];
	void *v;
	int r;

	(void)result;
	for (int p = 0; p < MP_PRODUCERS; p++)
		last[p] = -1;
	while ((r = weft_chan_recv(m->ch, &v)) == 0) {
		uintptr_t x = (uintptr_t)v - 1;
		unsigned p = (unsigned)(x / MP_PER);
		long i = (long)(x % MP_PER);

		if (p >= MP_PRODUCERS || i <= last[p])
			atomic_fetch_add(&m->errors, 1);
		else
			last[p] = i;
		if (p < MP_PRODUCERS)
			atomic_fetch_add(&m->seen[p][i], 1);
	}
	return r == -EPIPE ? 0 : r;
}

Test(sync, chan_mpmc_delivers_each_item_once_in_per_producer_order,
     .timeout = 120)
{
	struct weft_pool *pool = pool_of(3);

	for (size_t cap = 0; cap <= 16; cap += 16) {
		struct mpmc *m = calloc(1, sizeof(*m));
		struct runner p[MP_PRODUCERS], c[MP_CONSUMERS];

		cr_assert_not_null(m);
		cr_assert_eq(weft_chan_create(cap, &m->ch), 0);
		for (int i = 0; i < MP_CONSUMERS; i++)
			run_start(&c[i], pool, i % 2 ? IN_THREAD : IN_TASK,
				  mp_consumer, m);
		for (int i = 0; i < MP_PRODUCERS; i++)
			run_start(&p[i], pool, i % 3 ? IN_TASK : IN_THREAD,
				  mp_producer, m);
		for (int i = 0; i < MP_PRODUCERS; i++)
			cr_assert_eq(run_join(&p[i]), 0);
		cr_assert_eq(weft_chan_close(m->ch), 0);
		for (int i = 0; i < MP_CONSUMERS; i++)
			cr_assert_eq(run_join(&c[i]), 0);
		cr_assert_eq(atomic_load(&m->errors), 0, "cap %zu", cap);
		for (int i = 0; i < MP_PRODUCERS; i++)
			for (int j = 0; j < MP_PER; j++)
				cr_assert_eq(atomic_load(&m->seen[i][j]), 1,
					     "cap %zu: item %d/%d seen %d "
					     "times",
					     cap, i, j,
					     atomic_load(&m->seen[i][j]));
		weft_chan_destroy(m->ch);
		free(m);
	}
	weft_pool_destroy(pool);
}

/* Sends and receives with deadlines racing each other: each item whose
 * send returned 0 is received exactly once; each whose send failed never
 * is. */
enum { CR_ITEMS = 3000 };

struct crace {
	struct weft_chan *ch;
	atomic_int next; /* the next item to send */
	atomic_uchar sent[CR_ITEMS];
	atomic_uchar got[CR_ITEMS];
	atomic_int senders_left;
	atomic_int errors;
};

static int crace_sender(void *arg, void **result)
{
	struct crace *c = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed;
	int i;

	(void)result;
	while ((i = atomic_fetch_add(&c->next, 1)) < CR_ITEMS) {
		int64_t d = weft_now() + (rand_r(&seed) % 200) * US;
		int r = weft_chan_send_until(c->ch, ITEM(i + 1), d);

		if (r == 0)
			atomic_store(&c->sent[i], 1);
		else if (r != -ETIMEDOUT)
			atomic_fetch_add(&c->errors, 1);
	}
	atomic_fetch_sub(&c->senders_left, 1);
	return 0;
}

static int crace_receiver(void *arg, void **result)
{
	struct crace *c = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed;
	void *v;
	int r;

	(void)result;
	for (;;) {
		int64_t d = weft_now() + (rand_r(&seed) % 200) * US;

		r = weft_chan_recv_until(c->ch, &v, d);
		if (r == -ETIMEDOUT)
			continue;
		if (r != 0)
			break;
		uintptr_t i = (uintptr_t)v - 1;
		if (i >= CR_ITEMS || atomic_fetch_add(&c->got[i], 1) != 0)
			atomic_fetch_add(&c->errors, 1);
	}
	return r == -EPIPE ? 0 : r;
}

Test(sync, chan_items_are_not_lost_to_racing_timeouts, .timeout = 120)
{
	enum { S = 4, R = 4 };
	struct weft_pool *pool = pool_of(2);

	for (size_t cap = 0; cap <= 2; cap += 2) {
		struct crace *c = calloc(1, sizeof(*c));
		struct runner s[S], r[R];
		int sent = 0, got = 0;

		cr_assert_not_null(c);
		cr_assert_eq(weft_chan_create(cap, &c->ch), 0);
		atomic_store(&c->senders_left, S);
		for (int i = 0; i < R; i++)
			run_start(&r[i], pool, i % 2 ? IN_TASK : IN_THREAD,
				  crace_receiver, c);
		for (int i = 0; i < S; i++)
			run_start(&s[i], pool, i % 2 ? IN_THREAD : IN_TASK,
				  crace_sender, c);
		for (int i = 0; i < S; i++)
			run_join(&s[i]);
		cr_assert_eq(weft_chan_close(c->ch), 0);
		for (int i = 0; i < R; i++)
			cr_assert_eq(run_join(&r[i]), 0);
		cr_assert_eq(atomic_load(&c->errors), 0);
		for (int i = 0; i < CR_ITEMS; i++) {
			cr_assert_eq(atomic_load(&c->sent[i]),
				     atomic_load(&c->got[i]),
				     "cap %zu item %d: sent %d received %d",
				     cap, i, atomic_load(&c->sent[i]),
				     atomic_load(&c->got[i]));
			sent += atomic_load(&c->sent[i]);
			got += atomic_load(&c->got[i]);
		}
		cr_log_info("chan race cap %zu: %d of %d sent", cap, sent,
			    CR_ITEMS);
		(void)got;
		weft_chan_destroy(c->ch);
		free(c);
	}
	weft_pool_destroy(pool);
}
