/*
 * stress_shutdown.c - shutting a pool down while it is busy and while
 * outside threads keep submitting.
 *
 * Each round makes a pool (1-4 workers), starts 4 outside producers
 * (pthreads and C11 threads) that submit plain, spinning and nested tasks
 * (nested ones submit children from inside the pool), continuations and
 * small parallel_for calls, and after a random delay shuts the pool down in
 * one of these ways:
 *   drain          shutdown(0, FOREVER)
 *   cancel         shutdown(WEFT_SHUTDOWN_CANCEL, FOREVER)
 *   drain->cancel  shutdown(0, short deadline); on -ETIMEDOUT,
 *                  shutdown(CANCEL, FOREVER)
 *   drain-retry    shutdown(0, short deadline) until it returns 0
 *   concurrent     three threads call shutdown at once (drain and cancel)
 *   destroy        producers finish, then weft_pool_destroy() with the work
 *                  still queued (it drains)
 * Cancelling rounds also run "sticky" tasks that spin until
 * weft_task_cancelled() says stop: shutdown with CANCEL must reach tasks
 * already running.
 *
 * The rule under test: a submit either returns -ESHUTDOWN (and nothing
 * runs) or returns 0 and its task is never lost. So:
 *   - once a producer has seen -ESHUTDOWN, its later submits see it too,
 *     and *out is NULL;
 *   - when shutdown returns 0, every future whose submit had returned 0 is
 *     complete (checked at once, and again after the producers stop);
 *   - draining: every task that was submitted ran exactly once, and tasks'
 *     own submits (nested children) succeed while the pool drains;
 *   - cancelling: each task ran at most once, CANCELLED ones never ran;
 *   - after shutdown, outside weft_submit / weft_submit_routine /
 *     weft_future_then / weft_parallel_for / weft_map return -ESHUTDOWN;
 *   - every future completes exactly once, and can be queried and unref'd
 *     after weft_pool_destroy().
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

static struct stress_track tr;

enum mode {
	M_DRAIN,
	M_CANCEL,
	M_DRAIN_THEN_CANCEL,
	M_DRAIN_RETRY,
	M_CONCURRENT,
	M_DESTROY,
	M_COUNT
};
static const char *const mode_names[] = {"drain",       "cancel",
					 "drain->cancel", "drain-retry",
					 "concurrent",  "destroy"};

enum ttype { T_PLAIN, T_SPIN, T_NESTED, T_STICKY };

struct round {
	struct weft_pool *pool;
	enum mode mode;
	bool may_cancel; /* the mode may cancel */
	unsigned workers;
	size_t quota; /* per producer */
	_Atomic(struct weft_future *) *futs; /* by id; owned by the round */
	size_t cap;
	_Atomic bool shutdown_called;
	_Atomic bool shutdown_done;
	_Atomic unsigned sticky_running;
	_Atomic uint64_t submitted, rejected;
	uint64_t round_no;
};

static struct round *R;

/* ---- tasks -------------------------------------------------------------- */

/* arg: id in the low 32 bits, type in bits 32-33, depth in 34-35 */
static void *targ(size_t id, enum ttype t, unsigned depth)
{
	return (void *)(uintptr_t)((uint64_t)id | (uint64_t)t << 32 |
				   (uint64_t)depth << 34);
}

static int task_fn(void *arg, void **result);

static void keep_future(size_t id, struct weft_future *f)
{
	/* release: pairs with the acquire loads in check_complete() */
	atomic_store_explicit(&R->futs[id], f, memory_order_release);
}

static void submit_child(size_t parent, unsigned depth, uint64_t h)
{
	size_t id = stress_track_alloc(&tr, 1);
	/* children of roots may nest once more: at most 1 + 3 + 9 ids */
	enum ttype t = depth < 1 && h % 3 == 0 ? T_NESTED : T_PLAIN;
	struct weft_future *f = (struct weft_future *)0x1;
	int rc = weft_submit(R->pool, task_fn, targ(id, t, depth + 1), &f);
	if (rc == -ESHUTDOWN) {
		/* a pool's own task may submit while it drains */
		STRESS_CHECK(R->may_cancel,
			     "task %zu: child submit -ESHUTDOWN while the "
			     "pool drains (mode %s)",
			     parent, mode_names[R->mode]);
		STRESS_CHECK(f == NULL, "*out not NULL after -ESHUTDOWN");
		stress_flag(&tr, id, REC_SHUTDOWN);
		return;
	}
	STRESS_CHECK(rc == 0, "task %zu: child submit = %d", parent, rc);
	if (rc)
		return;
	stress_flag(&tr, id, REC_SUBMITTED);
	stress_watch(f, id);
	keep_future(id, f);
}

static int task_fn(void *arg, void **result)
{
	uint64_t a = (uint64_t)(uintptr_t)arg;
	size_t id = (size_t)(a & 0xffffffffu);
	enum ttype t = (enum ttype)((a >> 32) & 3);
	unsigned depth = (unsigned)(a >> 34) & 3;
	stress_task_start(&tr, id);
	uint64_t h = stress_mix(id ^ R->round_no << 40);
	switch (t) {
	case T_SPIN: {
		int64_t end = weft_now() + (int64_t)(h % 50000);
		while (weft_now() < end) {
			if (weft_task_cancelled()) {
				stress_flag(&tr, id, REC_SAW_CANCEL);
				return -ECANCELED;
			}
		}
		break;
	}
	case T_NESTED: {
		unsigned n = 1 + (unsigned)(h % 3);
		for (unsigned i = 0; i < n; i++)
			submit_child(id, depth, stress_mix(h + i));
		break;
	}
	case T_STICKY: {
		atomic_fetch_add(&R->sticky_running, 1);
		int64_t end = weft_now() + 30 * (int64_t)1000000000;
		while (!weft_task_cancelled()) {
			if (weft_now() > end) {
				stress_fail("sticky task %zu: not cancelled "
					    "30 s after start (mode %s, "
					    "shutdown called %d)",
					    id, mode_names[R->mode],
					    (int)atomic_load(
						    &R->shutdown_called));
				break;
			}
			stress_progress();
			sched_yield();
		}
		STRESS_CHECK(atomic_load(&R->shutdown_called),
			     "sticky task %zu cancelled before shutdown", id);
		stress_flag(&tr, id, REC_SAW_CANCEL);
		atomic_fetch_sub(&R->sticky_running, 1);
		return -ECANCELED;
	}
	default:
		break;
	}
	*result = stress_plan_value(id);
	return 0;
}

static int cont_fn(struct weft_future *ante, void *arg, void **result)
{
	size_t id = (size_t)(uintptr_t)arg;
	stress_task_start(&tr, id);
	STRESS_CHECK(weft_future_try_wait(ante) == 0,
		     "continuation %zu runs before its antecedent completed",
		     id);
	*result = stress_plan_value(id);
	return 0;
}

static _Atomic uint64_t pfor_hits_bad;

struct pfor {
	_Atomic uint8_t hit[64];
};

static int pfor_body(size_t b, size_t e, void *arg)
{
	struct pfor *p = arg;
	for (size_t i = b; i < e; i++)
		if (atomic_fetch_add(&p->hit[i], 1) != 0)
			atomic_fetch_add(&pfor_hits_bad, 1);
	stress_count_task();
	return 0;
}

/* ---- producers ---------------------------------------------------------- */

static void producer_main(void *arg, unsigned index)
{
	(void)arg;
	struct round *r = R;
	uint64_t rng = stress_stream(r->round_no * 8 + index + 5000);
	bool seen_shutdown = false;
	unsigned after = 0;
	struct weft_future *last = NULL;
	size_t last_id = 0;
	stress_where("producing", r->round_no);
	for (size_t i = 0; i < r->quota; i++) {
		unsigned what = (unsigned)stress_below(&rng, 100);
		size_t id = stress_track_alloc(&tr, 1);
		struct weft_future *f = (struct weft_future *)0x1;
		int rc;
		if (what < 4 && last) {
			rc = weft_future_then(r->pool, last, cont_fn,
					      (void *)(uintptr_t)id, &f);
		} else if (what < 6) {
			struct pfor p;
			memset(&p, 0, sizeof(p));
			rc = weft_parallel_for(r->pool, 0, 64,
					       stress_below(&rng, 3) * 8,
					       pfor_body, &p);
			STRESS_CHECK(rc == 0 || rc == -ESHUTDOWN ||
					     rc == -ECANCELED,
				     "parallel_for = %d", rc);
			if (rc == 0)
				for (size_t k = 0; k < 64; k++)
					STRESS_CHECK(atomic_load(&p.hit[k]) == 1,
						     "parallel_for ok, index "
						     "%zu hit %u times",
						     k,
						     atomic_load(&p.hit[k]));
			if (rc == -ESHUTDOWN)
				seen_shutdown = true;
			continue;
		} else if (what < 10) {
			/* a NULL routine is refused, before or after
			 * shutdown, and nothing is queued */
			rc = weft_submit_routine(r->pool, NULL, NULL, &f);
			STRESS_CHECK((rc == -EINVAL || rc == -ESHUTDOWN) &&
					     f == NULL,
				     "submit_routine(NULL) = %d", rc);
			rc = weft_submit(r->pool, task_fn,
					 targ(id, T_PLAIN, 0), &f);
		} else {
			enum ttype t = what < 60   ? T_PLAIN
				       : what < 80 ? T_SPIN
						   : T_NESTED;
			if (r->may_cancel && r->mode != M_CONCURRENT &&
			    what == 99 && atomic_load(&r->sticky_running) < 1 &&
			    r->workers > 1)
				t = T_STICKY;
			rc = weft_submit(r->pool, task_fn, targ(id, t, 0), &f);
		}
		if (rc == -ESHUTDOWN) {
			STRESS_CHECK(f == NULL, "*out not NULL after "
				     "-ESHUTDOWN");
			STRESS_CHECK(atomic_load(&r->shutdown_called),
				     "-ESHUTDOWN before shutdown was called");
			stress_flag(&tr, id, REC_SHUTDOWN);
			atomic_fetch_add(&r->rejected, 1);
			seen_shutdown = true;
			if (++after > 3)
				break;
			continue;
		}
		STRESS_CHECK(rc == 0 && f, "submit = %d", rc);
		if (rc != 0)
			continue;
		STRESS_CHECK(!seen_shutdown,
			     "submit succeeded after this thread saw "
			     "-ESHUTDOWN (id %zu)",
			     id);
		if (!(what < 4 && last))
			stress_flag(&tr, id, REC_SUBMITTED);
		stress_watch(f, id);
		keep_future(id, f);
		weft_future_ref(f);
		weft_future_unref(last);
		last = f;
		last_id = id;
		atomic_fetch_add(&r->submitted, 1);
		if (stress_below(&rng, 64) == 0)
			sched_yield();
	}
	(void)last_id;
	weft_future_unref(last);
	stress_where("done", r->round_no);
}

/* ---- the round ---------------------------------------------------------- */

/* Every future whose submit returned 0 must be complete. */
static void check_complete(const char *when)
{
	size_t n = atomic_load(&tr.next);
	size_t bad = 0;
	for (size_t id = 0; id < n && id < R->cap; id++) {
		struct weft_future *f =
			atomic_load_explicit(&R->futs[id], memory_order_acquire);
		if (!f)
			continue;
		if (weft_future_try_wait(f) != 0 && bad++ < 5)
			stress_fail("round %llu (%s, %u workers): id %zu "
				    "submitted but not complete %s (state %d)",
				    (unsigned long long)R->round_no,
				    mode_names[R->mode], R->workers, id, when,
				    weft_future_state(f));
	}
}

static void shutdown_caller(void *arg, unsigned index)
{
	(void)arg;
	unsigned flags = index == 1 ? WEFT_SHUTDOWN_CANCEL : 0;
	int rc = weft_pool_shutdown(R->pool, flags, WEFT_FOREVER);
	STRESS_CHECK(rc == 0, "concurrent shutdown(%u) = %d", flags, rc);
}

static int noop_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	stress_fail("a task ran on a pool that was shut down");
	return 0;
}

static void *noop_routine(void *arg)
{
	(void)arg;
	stress_fail("a routine ran on a pool that was shut down");
	return NULL;
}

static int noop_range(size_t b, size_t e, void *arg)
{
	(void)b;
	(void)e;
	(void)arg;
	stress_fail("a parallel_for body ran on a pool that was shut down");
	return 0;
}

static int noop_map(const void *in, void *out, size_t count, void *arg)
{
	(void)in;
	(void)out;
	(void)count;
	(void)arg;
	stress_fail("a map body ran on a pool that was shut down");
	return 0;
}

static int noop_then(struct weft_future *a, void *arg, void **result)
{
	(void)a;
	(void)arg;
	(void)result;
	stress_fail("a continuation ran on a pool that was shut down");
	return 0;
}

static void check_closed(struct weft_pool *pool, struct weft_future *done)
{
	struct weft_future *f = (struct weft_future *)0x1;
	int rc = weft_submit(pool, noop_task, NULL, &f);
	STRESS_CHECK(rc == -ESHUTDOWN && f == NULL,
		     "submit after shutdown = %d", rc);
	f = (struct weft_future *)0x1;
	rc = weft_submit_routine(pool, noop_routine, NULL, &f);
	STRESS_CHECK(rc == -ESHUTDOWN && f == NULL,
		     "submit_routine after shutdown = %d", rc);
	rc = weft_parallel_for(pool, 0, 100, 0, noop_range, NULL);
	STRESS_CHECK(rc == -ESHUTDOWN, "parallel_for after shutdown = %d", rc);
	int in[4] = {0}, out[4];
	rc = weft_map(pool, in, sizeof(int), out, sizeof(int), 4, 0, noop_map,
		      NULL);
	STRESS_CHECK(rc == -ESHUTDOWN, "map after shutdown = %d", rc);
	if (done) {
		f = NULL;
		rc = weft_future_then(pool, done, noop_then, NULL, &f);
		STRESS_CHECK(rc == -ESHUTDOWN,
			     "then after shutdown = %d", rc);
		if (rc == 0) {
			weft_future_wait(f);
			weft_future_unref(f);
		}
	}
	rc = weft_pool_shutdown(pool, 0, 0);
	STRESS_CHECK(rc == 0, "shutdown again after it finished = %d", rc);
}

static void run_round(uint64_t round_no, size_t quota, uint64_t *rng)
{
	struct round r = {0};
	r.round_no = round_no;
	r.mode = (enum mode)stress_below(rng, M_COUNT);
	r.may_cancel = r.mode == M_CANCEL || r.mode == M_DRAIN_THEN_CANCEL ||
		       r.mode == M_CONCURRENT;
	r.workers = 1 + (unsigned)stress_below(rng, 4);
	r.quota = quota;
	/* a nested task has at most 3 children, to depth 2: 13 ids */
	r.cap = quota * 4 * 13 + 64;
	r.futs = calloc(r.cap, sizeof(*r.futs));
	if (!r.futs)
		exit(STRESS_FAIL);
	R = &r;
	if (tr.cap < r.cap) {
		stress_track_fini(&tr);
		stress_track_init(&tr, r.cap);
	} else {
		stress_track_reset(&tr);
	}
	stress_phase("round %llu: %s, %u workers, 4 producers x %zu",
		     (unsigned long long)round_no, mode_names[r.mode],
		     r.workers, quota);
	r.pool = stress_pool(r.workers, "shut");

	struct stress_threads *prod =
		stress_threads_start(4, producer_main, NULL, "producer");
	/* let work pile up: up to 3 ms, or until a share was submitted */
	int64_t until = weft_now() + (int64_t)stress_below(rng, 3000000);
	size_t want = (size_t)stress_below(rng, quota * 4);
	while (weft_now() < until && atomic_load(&r.submitted) < want)
		sched_yield();

	int rc;
	stress_where("shutting down", round_no);
	switch (r.mode) {
	case M_DESTROY:
		stress_threads_join(prod);
		prod = NULL;
		/* no shutdown: destroy drains what is queued */
		atomic_store(&r.shutdown_called, true);
		weft_pool_destroy(r.pool);
		r.pool = NULL;
		check_complete("after destroy");
		break;
	case M_DRAIN:
	case M_CANCEL:
		atomic_store(&r.shutdown_called, true);
		rc = weft_pool_shutdown(r.pool,
					r.mode == M_CANCEL ? WEFT_SHUTDOWN_CANCEL
							   : 0,
					WEFT_FOREVER);
		STRESS_CHECK(rc == 0, "shutdown = %d", rc);
		break;
	case M_DRAIN_THEN_CANCEL:
		atomic_store(&r.shutdown_called, true);
		rc = weft_pool_shutdown(
			r.pool, 0,
			weft_now() + (int64_t)stress_below(rng, 1000000));
		STRESS_CHECK(rc == 0 || rc == -ETIMEDOUT, "shutdown = %d", rc);
		if (rc == -ETIMEDOUT) {
			rc = weft_pool_shutdown(r.pool, WEFT_SHUTDOWN_CANCEL,
						WEFT_FOREVER);
			STRESS_CHECK(rc == 0, "cancelling shutdown = %d", rc);
		}
		break;
	case M_DRAIN_RETRY: {
		atomic_store(&r.shutdown_called, true);
		unsigned tries = 0;
		do {
			rc = weft_pool_shutdown(
				r.pool, 0,
				weft_now() +
					(int64_t)stress_below(rng, 500000));
			STRESS_CHECK(rc == 0 || rc == -ETIMEDOUT,
				     "shutdown = %d", rc);
			tries++;
			stress_progress();
		} while (rc == -ETIMEDOUT);
		break;
	}
	case M_CONCURRENT: {
		atomic_store(&r.shutdown_called, true);
		struct stress_threads *s =
			stress_threads_start(3, shutdown_caller, NULL,
					     "shutdown");
		stress_threads_join(s);
		break;
	}
	default:
		break;
	}
	atomic_store(&r.shutdown_done, true);
	if (r.pool)
		check_complete("when shutdown returned");
	stress_where("joining producers", round_no);
	stress_threads_join(prod);
	check_complete("after the producers stopped");
	if (r.pool) {
		struct weft_future *done = NULL;
		for (size_t id = 0; id < r.cap && !done; id++)
			done = atomic_load(&r.futs[id]);
		check_closed(r.pool, done);
		weft_pool_destroy(r.pool);
		r.pool = NULL;
	}
	/* futures outlive the pool */
	size_t n = atomic_load(&tr.next);
	for (size_t id = 0; id < n; id++) {
		struct weft_future *f = atomic_load(&r.futs[id]);
		if (!f)
			continue;
		STRESS_CHECK(weft_future_try_wait(f) == 0,
			     "id %zu incomplete after destroy", id);
		int st = weft_future_state(f);
		unsigned fl = stress_flags(&tr, id);
		if (!r.may_cancel && (fl & REC_SUBMITTED))
			STRESS_CHECK(st == WEFT_FUTURE_DONE,
				     "round %llu (%s): id %zu state %d after "
				     "a draining shutdown",
				     (unsigned long long)round_no,
				     mode_names[r.mode], id, st);
		weft_future_unref(f);
	}
	stress_verify(&tr, 0, n, !r.may_cancel, r.may_cancel);
	STRESS_CHECK(atomic_load(&pfor_hits_bad) == 0,
		     "parallel_for ran an index twice");
	stress_log("round %llu %s: %llu submitted, %llu rejected",
		   (unsigned long long)round_no, mode_names[r.mode],
		   (unsigned long long)atomic_load(&r.submitted),
		   (unsigned long long)atomic_load(&r.rejected));
	R = NULL;
	free((void *)r.futs);
}

static void dump(int fd)
{
	struct round *r = R;
	if (!r)
		return;
	stress_dprintf(fd, "  round %llu (%s, %u workers): submitted %llu, "
		       "rejected %llu, shutdown called %d, returned %d, "
		       "sticky running %u\n",
		       (unsigned long long)r->round_no, mode_names[r->mode],
		       r->workers, (unsigned long long)atomic_load(&r->submitted),
		       (unsigned long long)atomic_load(&r->rejected),
		       (int)atomic_load(&r->shutdown_called),
		       (int)atomic_load(&r->shutdown_done),
		       atomic_load(&r->sticky_running));
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_shutdown");
	stress_set_dump(dump);
	unsigned rounds = (unsigned)stress_scaled(800, 6);
	size_t quota = 500;
	stress_track_init(&tr, quota * 4 * 13 + 64);
	stress_track_default(&tr);
	uint64_t rng = stress_stream(3);
	for (unsigned i = 0; i < rounds; i++)
		run_round(i, quota, &rng);
	stress_track_fini(&tr);
	return stress_finish();
}
