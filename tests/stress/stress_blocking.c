/*
 * stress_blocking.c - blocking calls (weft_submit_blocking(),
 * weft_run_blocking()) from many tasks and threads at once, with cancels
 * racing the call pool and a cancelling shutdown racing calls in flight.
 *
 * Phases:
 *   narrow   2 workers, a call pool of 3 threads (calls queue, so cancels
 *            find queued calls as well as running ones); the io backend
 *            the pool picks.
 *   wide     3 workers, a call pool of 32 threads, the blocking I/O
 *            backend (the calls must not depend on io_uring).
 *   shutdown tasks looping over weft_run_blocking() and outside threads
 *            leaving calls in flight, ended by a cancelling
 *            weft_pool_shutdown(), then weft_pool_destroy() with calls
 *            still queued.
 *
 * In the first two, 2 outside threads (a pthread and a C11 thread, except
 * under TSan) submit batches of tasks, cancel some of them at once or
 * while they wait, and make calls of their own. Each task, and each
 * outside thread, runs a random mix of: a call awaited with
 * weft_future_get() or weft_io_await(); weft_run_blocking(); a call
 * cancelled right after its start; a call published in a table from
 * which every op cancels a random entry (cancels from other tasks and
 * threads); a detached call (out NULL). Each call's function spins or
 * sleeps a few microseconds and returns a value or an error planned from
 * its id; some start a nop on the pool's io thread, as code on the call
 * pool may.
 *
 * Checks: every call's function runs at most once, never after a cancel
 * returned 0 nor after its future completed, never on a worker; its future
 * completes exactly once, CANCELLED only if the function never ran, DONE
 * or FAILED with the planned outcome only if it ran (stress_future.c); a
 * cancel returns 0 (then it never runs), -EBUSY (then it runs) or
 * -EALREADY (then it is complete); weft_run_blocking() returns the planned
 * outcome after the function has finished, or -ECANCELED only in a
 * cancelled task, and then only if the function never ran; every detached
 * call runs. Task futures obey the usual rules (stress_verify()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/io.h>

#include "stress.h"

#define US 1000LL
#define MS (1000LL * 1000)

enum {
	OPS_PER_TASK = 6,
	BATCH = 32,
	THREADS = 2,
	NSLOTS = 16,
};

static struct stress_track tr;
static struct weft_pool *pool;
/* fin[id]: the call @id's function has returned (set as its last act). */
static _Atomic uint8_t *fin;

static _Atomic uint64_t n_calls, n_runs, n_call_cancels, n_task_cancels,
	n_det_submitted, n_det_ran, n_nops, n_cancelled_runs;

static void count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- the functions the call pool runs ----------------------------------- */

/*
 * The call @id (its arg): counts the start (stress_task_start() checks
 * "once, not after a cancel that returned 0, not after completion"),
 * works a little, and returns its planned outcome.
 */
static int call_fn(void *arg, void **result)
{
	size_t id = (size_t)(uintptr_t)arg;
	uint64_t h = stress_mix(id ^ 0xb10c);

	stress_task_start(&tr, id);
	STRESS_CHECK(weft_worker_index() == -1,
		     "call %zu runs on worker %d", id, weft_worker_index());
	switch (h % 8) {
	case 0:
	case 1:
		stress_sleep_ns((int64_t)(h >> 8) % (50 * US));
		break;
	case 2:
		if (pool) {
			/* Code on the call pool may use the pool's io
			 * thread, as any outside thread may. */
			struct weft_future *f = NULL;
			int rc = weft_io_nop(pool, WEFT_FOREVER, &f);

			if (rc == 0)
				STRESS_CHECK(weft_io_await(f) == 0,
					     "call %zu: nop", id);
			else
				STRESS_CHECK(rc == -ESHUTDOWN,
					     "call %zu: nop start = %d", id,
					     rc);
			count(&n_nops, 1);
		}
		break;
	default:
		stress_spin_ns((int64_t)(h >> 8) % (5 * US));
		break;
	}
	int err = stress_plan_err(id, 5);

	if (!err)
		*result = stress_plan_value(id);
	atomic_store(&fin[id], 1);
	count(&n_runs, 1);
	return err;
}

static int detached_fn(void *arg, void **result)
{
	(void)arg;
	(void)result;
	STRESS_CHECK(weft_worker_index() == -1, "detached call on a worker");
	count(&n_det_ran, 1);
	stress_progress();
	return 0;
}

/* ---- one operation ------------------------------------------------------ */

struct who {
	bool task;
	uint64_t rng;
};

static struct weft_pool *pool_for(struct who *w)
{
	return w->task && stress_below(&w->rng, 2) ? NULL : pool;
}

static bool cancelled(struct who *w)
{
	return w->task && weft_task_cancelled();
}

/* Start the call @id; its future (watched), or NULL after a failure. */
static struct weft_future *start_call(struct who *w, size_t id)
{
	struct weft_future *f = NULL;
	int rc;

	stress_where("submit_blocking", id);
	rc = weft_submit_blocking(pool_for(w), call_fn, (void *)(uintptr_t)id,
				  &f);
	STRESS_CHECK(rc == 0 && f, "call %zu: submit = %d", id, rc);
	if (rc || !f)
		return NULL;
	stress_flag(&tr, id, REC_SUBMITTED);
	stress_watch(f, id);
	count(&n_calls, 1);
	return f;
}

/*
 * The outcome @err (and @v when 0) of the call @id, as a wait returned
 * it. -ECANCELED is allowed when @maybe (a cancel of the call raced it),
 * or when the waiting task was cancelled (its wait gave up, or a queued
 * call was dropped).
 */
static void check_outcome(struct who *w, size_t id, int err, void *v,
			  bool maybe)
{
	int want = stress_plan_err(id, 5);

	if (err == -ECANCELED && (maybe || cancelled(w)))
		return;
	STRESS_CHECK(err == want, "call %zu: error %d, want %d", id, err,
		     want);
	if (err == 0 && want == 0)
		STRESS_CHECK(v == stress_plan_value(id), "call %zu: value %p",
			     id, v);
}

/* Wait for @f: weft_future_get() or weft_io_await(); drops our ref. */
static void await_call(struct who *w, struct weft_future *f, size_t id,
		       bool maybe)
{
	void *v = NULL;
	int err;

	stress_where("await call", id);
	if (stress_below(&w->rng, 2)) {
		err = weft_future_get(f, &v);
		if (err != -ECANCELED || !cancelled(w))
			STRESS_CHECK(weft_future_try_wait(f) == 0,
				     "call %zu: get returned %d, pending", id,
				     err);
		weft_future_unref(f);
	} else {
		weft_future_ref(f);
		err = (int)weft_io_await(f);
		/* The await waits on, shielded, even in a cancelled task. */
		STRESS_CHECK(weft_future_try_wait(f) == 0,
			     "call %zu: await returned %d, pending", id, err);
		STRESS_CHECK(weft_io_result(f) == err,
			     "call %zu: await %d, weft_io_result %lld", id, err,
			     (long long)weft_io_result(f));
		v = weft_future_value(f);
		weft_future_unref(f);
	}
	check_outcome(w, id, err, v, maybe);
	stress_progress();
}

static void op_await(struct who *w)
{
	size_t id = stress_track_alloc(&tr, 1);
	struct weft_future *f = start_call(w, id);

	if (f)
		await_call(w, f, id, false);
}

static void op_run(struct who *w)
{
	size_t id = stress_track_alloc(&tr, 1);
	void *v = NULL;
	int err;

	stress_where("run_blocking", id);
	err = weft_run_blocking(pool_for(w), call_fn, (void *)(uintptr_t)id,
				&v);
	count(&n_calls, 1);
	if (err == -ECANCELED && cancelled(w) &&
	    !atomic_load(&tr.rec[id].ran)) {
		/* Dropped while queued (or never submitted): it must never
		 * run, which the flag makes stress_task_start() check. (Had
		 * a thread taken it, the run would have waited for it, and
		 * ran would say so.) */
		stress_flag(&tr, id, REC_CANCEL_OK);
		count(&n_cancelled_runs, 1);
		stress_progress();
		return;
	}
	/* It ran: the result is its own, cancelled task or not. */
	STRESS_CHECK(atomic_load(&fin[id]),
		     "call %zu: run_blocking returned %d before the call "
		     "finished (ran %u)", id, err,
		     (unsigned)atomic_load(&tr.rec[id].ran));
	STRESS_CHECK(err == stress_plan_err(id, 5),
		     "call %zu: run_blocking = %d, want %d", id, err,
		     stress_plan_err(id, 5));
	if (err == 0)
		STRESS_CHECK(v == stress_plan_value(id),
			     "call %zu: run_blocking value %p", id, v);
	stress_progress();
}

static void op_cancel_at_once(struct who *w)
{
	size_t id = stress_track_alloc(&tr, 1);
	struct weft_future *f = start_call(w, id);
	int rc;

	if (!f)
		return;
	if (stress_below(&w->rng, 2))
		stress_spin_ns((int64_t)stress_below(&w->rng, 20 * US));
	rc = stress_cancel(&tr, id, f);
	count(&n_call_cancels, 1);
	if (rc == 0)
		STRESS_CHECK(weft_future_error(f) == -ECANCELED,
			     "call %zu: cancel 0, error %d", id,
			     weft_future_error(f));
	await_call(w, f, id, rc == 0);
	if (rc == -EBUSY || rc == -EALREADY)
		STRESS_CHECK(cancelled(w) || atomic_load(&fin[id]),
			     "call %zu: cancel %d but the call never ran", id,
			     rc);
}

static void op_cross_cancel(struct who *w)
{
	size_t id = stress_track_alloc(&tr, 1);
	struct weft_future *f = start_call(w, id), *g;
	size_t gid;

	if (!f)
		return;
	stress_table_put((unsigned)stress_rand(&w->rng), f, id);
	g = stress_table_get((unsigned)stress_rand(&w->rng), &gid);
	if (g) {
		stress_cancel(&tr, gid, g);
		count(&n_call_cancels, 1);
		weft_future_unref(g);
	}
	/* Anyone may have cancelled ours. */
	await_call(w, f, id, true);
}

static void op_detached(struct who *w)
{
	int rc = weft_submit_blocking(pool_for(w), detached_fn, NULL, NULL);

	STRESS_CHECK(rc == 0, "detached submit = %d", rc);
	if (rc == 0)
		count(&n_det_submitted, 1);
}

static void random_op(struct who *w)
{
	switch (stress_below(&w->rng, 10)) {
	case 0:
	case 1:
	case 2:
		op_await(w);
		break;
	case 3:
	case 4:
	case 5:
		op_run(w);
		break;
	case 6:
	case 7:
		op_cancel_at_once(w);
		break;
	case 8:
		op_cross_cancel(w);
		break;
	default:
		op_detached(w);
		break;
	}
}

/* ---- tasks and outside threads ------------------------------------------ */

static int call_task(void *arg, void **result)
{
	struct stress_task_arg *t = arg;
	struct who w = {.task = true, .rng = t->seed};

	stress_task_start(&tr, t->id);
	for (int i = 0; i < OPS_PER_TASK && !weft_task_cancelled(); i++)
		random_op(&w);
	if (weft_task_cancelled()) {
		stress_flag(&tr, t->id, REC_SAW_CANCEL);
		return -ECANCELED;
	}
	*result = stress_plan_value(t->id);
	return 0;
}

struct phase {
	size_t tasks_per_thread;
	size_t ops_per_thread;
};

static void own_op(void *w)
{
	random_op(w);
}

static void mix_thread(void *arg, unsigned index)
{
	struct phase *ph = arg;
	struct who w = {.task = false, .rng = stress_stream(9100 + index)};
	struct stress_batches b = {
		.pool = pool, .t = &tr, .fn = call_task, .batch = BATCH,
		.tasks = ph->tasks_per_thread, .ops = ph->ops_per_thread,
		.own_op = own_op, .ctx = &w, .rng = &w.rng, .late_cancel = 8,
		.failed_cancel = false, .cancels = &n_task_cancels,
	};

	stress_run_batches(&b);
	stress_where("done", 0);
}

static struct weft_pool *call_pool(unsigned workers, unsigned calls,
				   unsigned backend, const char *name)
{
	struct weft_pool_options o;
	struct weft_pool *p = NULL;
	int rc;

	weft_pool_options_init(&o);
	o.workers = workers;
	o.name = name;
	o.blocking_threads = calls;
	o.io_backend = backend;
	rc = weft_pool_create(&o, &p);
	if (rc == -EAGAIN)
		stress_skip("weft_pool_create: the system refused a thread");
	if (rc != 0) {
		stress_fail("weft_pool_create = %d", rc);
		exit(stress_finish());
	}
	return p;
}

/* Every detached call runs: wait for them (the watchdog bounds it). */
static void wait_detached(void)
{
	stress_where("wait detached", 0);
	while (atomic_load(&n_det_ran) < atomic_load(&n_det_submitted))
		stress_sleep_ns(200 * US);
	STRESS_CHECK(atomic_load(&n_det_ran) == atomic_load(&n_det_submitted),
		     "detached: %llu ran, %llu submitted",
		     (unsigned long long)atomic_load(&n_det_ran),
		     (unsigned long long)atomic_load(&n_det_submitted));
}

static void run_mix(const char *name, size_t tasks, size_t thread_ops,
		    unsigned workers, unsigned calls, unsigned backend)
{
	struct phase ph = {
		.tasks_per_thread = tasks / THREADS,
		.ops_per_thread = thread_ops / THREADS,
	};
	struct stress_threads *t;
	int rc;

	stress_track_reset(&tr);
	memset((void *)fin, 0, tr.cap);
	pool = call_pool(workers, calls, backend, name);
	stress_phase("%s: %zu tasks x %d ops, %zu thread ops, %u workers, "
		     "%u call threads, io backend %d", name, tasks,
		     OPS_PER_TASK, thread_ops, workers, calls,
		     weft_io_backend(pool));
	t = stress_threads_start(THREADS, mix_thread, &ph, name);
	stress_threads_join(t);
	wait_detached();
	rc = weft_pool_shutdown(pool, 0, WEFT_FOREVER);
	STRESS_CHECK(rc == 0, "shutdown = %d", rc);
	stress_table_clear();
	weft_pool_destroy(pool);
	pool = NULL;
	stress_verify(&tr, 0, atomic_load(&tr.next), false, false);
}

/* ---- phase: shutdown ------------------------------------------------------ */

/* A task that makes calls until it is cancelled. */
static int looping_task(void *arg, void **result)
{
	struct stress_task_arg *t = arg;
	struct who w = {.task = true, .rng = t->seed};

	(void)result;
	stress_task_start(&tr, t->id);
	while (!weft_task_cancelled()) {
		if (stress_below(&w.rng, 2))
			op_run(&w);
		else
			op_await(&w);
	}
	stress_flag(&tr, t->id, REC_SAW_CANCEL);
	return -ECANCELED;
}

struct shut_thread {
	_Atomic int stop;
};

/* Leave calls in flight: publish them in the table, wait for none. */
static void leaving_thread(void *arg, unsigned index)
{
	struct shut_thread *s = arg;
	struct who w = {.task = false, .rng = stress_stream(9300 + index)};

	while (!atomic_load(&s->stop)) {
		size_t id = stress_track_alloc(&tr, 1);
		struct weft_future *f = NULL;
		int rc;

		stress_where("leave a call", id);
		rc = weft_submit_blocking(pool, call_fn, (void *)(uintptr_t)id,
					  &f);
		if (rc == -ESHUTDOWN) {
			stress_flag(&tr, id, REC_SHUTDOWN);
			break;
		}
		STRESS_CHECK(rc == 0, "call %zu: submit = %d", id, rc);
		if (rc)
			break;
		stress_flag(&tr, id, REC_SUBMITTED);
		stress_watch(f, id);
		count(&n_calls, 1);
		stress_table_put((unsigned)stress_rand(&w.rng), f, id);
		weft_future_unref(f);
		if (stress_below(&w.rng, 4) == 0) {
			size_t gid;
			struct weft_future *g = stress_table_get(
				(unsigned)stress_rand(&w.rng), &gid);

			if (g) {
				stress_cancel(&tr, gid, g);
				count(&n_call_cancels, 1);
				weft_future_unref(g);
			}
		}
		stress_sleep_ns(20 * US);
	}
}

static void run_shutdown(size_t rounds)
{
	enum { N = 8 };
	struct stress_task_arg ta[N];
	struct weft_future *fs[N];

	stress_track_reset(&tr);
	memset((void *)fin, 0, tr.cap);
	for (size_t round = 0; round < rounds; round++) {
		struct shut_thread s = {0};
		struct stress_threads *t;
		uint64_t rng = stress_stream(9400 + round);

		stress_phase("shutdown: round %zu of %zu", round + 1, rounds);
		pool = call_pool(2, 3, WEFT_IO_AUTO, "shutdown");
		for (int i = 0; i < N; i++) {
			ta[i].id = stress_track_alloc(&tr, 1);
			ta[i].seed = stress_rand(&rng);
			int rc = weft_submit(pool, looping_task, &ta[i], &fs[i]);

			STRESS_CHECK(rc == 0, "submit = %d", rc);
			if (rc) {
				fs[i] = NULL;
				continue;
			}
			stress_flag(&tr, ta[i].id, REC_SUBMITTED);
			stress_watch(fs[i], ta[i].id);
		}
		t = stress_threads_start(THREADS, leaving_thread, &s,
					 "leaving");
		stress_sleep_ns((int64_t)(5 + stress_below(&rng, 20)) * MS);
		stress_where("shutdown(CANCEL)", round);
		int rc = weft_pool_shutdown(pool, WEFT_SHUTDOWN_CANCEL,
					    weft_now() + 20000 * MS);

		STRESS_CHECK(rc == 0, "cancelling shutdown = %d", rc);
		atomic_store(&s.stop, 1);
		stress_threads_join(t);
		for (int i = 0; i < N; i++) {
			if (!fs[i])
				continue;
			STRESS_CHECK(weft_future_try_wait(fs[i]) == 0,
				     "task %zu pending after the shutdown",
				     ta[i].id);
			weft_future_unref(fs[i]);
		}
		/* Calls still queued end -ECANCELED here, running ones are
		 * waited for; the table still holds some of the futures. */
		stress_where("destroy", round);
		weft_pool_destroy(pool);
		pool = NULL;
		stress_table_clear();
		stress_progress();
	}
	stress_log("shutdown: %zu calls and tasks", atomic_load(&tr.next));
	stress_verify(&tr, 0, atomic_load(&tr.next), false, true);
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	size_t n_tasks, n_thread_ops, rounds, cap;

	setenv("WEFT_STRESS_WATCHDOG", "30", 0);
	stress_init(argc, argv, "stress_blocking");
	stress_table_init(NSLOTS);

	n_tasks = stress_scaled(12000, 2 * BATCH);
	n_thread_ops = stress_scaled(8000, 20);
	rounds = stress_scaled(20, 2);
	cap = n_tasks * (1 + OPS_PER_TASK) + n_thread_ops + 1024;
	/* The shutdown phase's tasks and threads loop until the shutdown:
	 * a few thousand calls a round here; room for ten times that. */
	if (cap < rounds * 30000)
		cap = rounds * 30000;
	stress_track_init(&tr, cap);
	stress_track_default(&tr);
	fin = calloc(cap, sizeof(*fin));
	if (!fin) {
		stress_fail("out of memory");
		return stress_finish();
	}

	run_mix("narrow", n_tasks, n_thread_ops, 2, 3, WEFT_IO_AUTO);
	run_mix("wide", n_tasks, n_thread_ops, 3, 32, WEFT_IO_BLOCKING);
	run_shutdown(rounds);

	printf("stress_blocking: %llu calls, %llu ran, %llu call cancels, "
	       "%llu task cancels, %llu runs dropped by a cancel, %llu "
	       "detached, %llu nops from calls\n",
	       (unsigned long long)atomic_load(&n_calls),
	       (unsigned long long)atomic_load(&n_runs),
	       (unsigned long long)atomic_load(&n_call_cancels),
	       (unsigned long long)atomic_load(&n_task_cancels),
	       (unsigned long long)atomic_load(&n_cancelled_runs),
	       (unsigned long long)atomic_load(&n_det_ran),
	       (unsigned long long)atomic_load(&n_nops));
	free((void *)fin);
	stress_track_fini(&tr);
	return stress_finish();
}
