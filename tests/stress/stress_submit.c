/*
 * stress_submit.c - submissions from threads outside the pool.
 *
 * Phases:
 *   producers  6 outside threads (pthreads and C11 threads) submit at once,
 *              in mixed forms: keep the future and wait for it later (wait,
 *              get, wait_until, try_get polling), fire and forget
 *              (out == NULL), drop the reference at once, watch with
 *              on_complete and drop it, weft_submit_routine(). Then a
 *              draining shutdown: every task must have run exactly once.
 *   pingpong   1 and then 4 outside threads submit one to three tasks and
 *              wait for them, often after a pause long enough for the
 *              workers (4, more than the CPUs) to park: a lost wake-up
 *              hangs a wait, and the watchdog reports it.
 *   crosspool  outside threads feed pool A; A's tasks submit to pool B (an
 *              outside thread for B) and sometimes wait; B's tasks submit
 *              back to A without keeping the future.
 *
 * Every task has an id: its start is counted (at most once, never after a
 * cancel), its completion is seen by an on_complete callback exactly once
 * where one is registered, and its outcome (value / error) is the one the
 * id planned.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

static struct stress_track tr;

/* One in FAIL_ONE_IN tasks fails with a planned error. */
#define FAIL_ONE_IN 16

static int task_plain(void *arg, void **result)
{
	size_t id = (size_t)(uintptr_t)arg;
	stress_task_start(&tr, id);
	uint64_t h = stress_mix(id);
	if (h % 64 == 0)
		stress_spin_ns((int64_t)(h >> 40) % 20000);
	int err = stress_plan_err(id, FAIL_ONE_IN);
	if (err == 0)
		*result = stress_plan_value(id);
	return err;
}

static void *routine_plain(void *arg)
{
	size_t id = (size_t)(uintptr_t)arg;
	stress_task_start(&tr, id);
	return stress_plan_value(id);
}

/* Check a completed future's outcome against the plan. */
static void check_outcome(struct weft_future *f, size_t id, bool routine)
{
	int want = routine ? 0 : stress_plan_err(id, FAIL_ONE_IN);
	int st = weft_future_state(f);
	int err = weft_future_error(f);
	STRESS_CHECK(err == want, "id %zu: error %d, planned %d (state %d)", id,
		     err, want, st);
	if (want == 0) {
		STRESS_CHECK(st == WEFT_FUTURE_DONE, "id %zu: state %d, want DONE",
			     id, st);
		STRESS_CHECK(weft_future_value(f) == stress_plan_value(id),
			     "id %zu: value %p, want %p", id,
			     weft_future_value(f), stress_plan_value(id));
	} else {
		STRESS_CHECK(st == WEFT_FUTURE_FAILED,
			     "id %zu: state %d, want FAILED", id, st);
	}
}

struct held {
	struct weft_future *f;
	size_t id;
	bool routine;
};

/* Wait for @h in one of several ways, check it and drop it. */
static void consume(struct held *h, uint64_t *rng)
{
	struct weft_future *f = h->f;
	int want = h->routine ? 0 : stress_plan_err(h->id, FAIL_ONE_IN);
	void *v = (void *)0x1;
	int rc;
	stress_where("waiting for", h->id);
	switch (stress_below(rng, 5)) {
	case 0:
		rc = weft_future_wait(f);
		STRESS_CHECK(rc == 0, "wait(%zu) = %d", h->id, rc);
		break;
	case 1:
		rc = weft_future_get(f, &v);
		STRESS_CHECK(rc == want, "get(%zu) = %d, planned %d", h->id, rc,
			     want);
		if (rc == 0)
			STRESS_CHECK(v == stress_plan_value(h->id),
				     "get(%zu) value %p", h->id, v);
		break;
	case 2:
		while ((rc = weft_future_wait_until(f, weft_now() + 200000)) ==
		       -ETIMEDOUT)
			stress_progress();
		STRESS_CHECK(rc == 0, "wait_until(%zu) = %d", h->id, rc);
		break;
	case 3:
		/* try_get's -EAGAIN may be the task's own error: tell the
		 * two apart with try_wait */
		for (;;) {
			rc = weft_future_try_get(f, &v);
			if (rc != -EAGAIN)
				break;
			if (weft_future_try_wait(f) == 0) {
				rc = weft_future_try_get(f, &v);
				break;
			}
			sched_yield();
		}
		STRESS_CHECK(rc == want, "try_get(%zu) = %d, planned %d", h->id,
			     rc, want);
		break;
	default:
		while (weft_future_try_wait(f) == -EAGAIN)
			sched_yield();
		rc = weft_future_wait_until(f, 0);
		STRESS_CHECK(rc == 0, "wait_until(past) on a complete future = "
			     "%d", rc);
		break;
	}
	STRESS_CHECK(weft_future_try_wait(f) == 0,
		     "id %zu: not complete after a wait", h->id);
	check_outcome(f, h->id, h->routine);
	weft_future_unref(f);
	h->f = NULL;
	stress_where("producing", 0);
}

/* ---- phase: producers --------------------------------------------------- */

struct prod_phase {
	struct weft_pool *pool;
	size_t base, per_thread;
};

static void submit_one(struct weft_pool *pool, size_t id, uint64_t *rng,
		       struct held *window, size_t wsize, size_t *wcount)
{
	struct weft_future *f = (struct weft_future *)0x1;
	unsigned mode = (unsigned)stress_below(rng, 100);
	void *arg = (void *)(uintptr_t)id;
	int rc;
	if (mode < 50 || (mode >= 80 && mode < 90)) {
		bool routine = mode >= 80;
		rc = routine ? weft_submit_routine(pool, routine_plain, arg, &f)
			     : weft_submit(pool, task_plain, arg, &f);
		STRESS_CHECK(rc == 0 && f, "submit(%zu) = %d", id, rc);
		if (rc != 0)
			return;
		stress_flag(&tr, id, REC_SUBMITTED);
		stress_watch(f, id);
		if (*wcount == wsize) {
			size_t k = stress_below(rng, 4) == 0
					   ? (size_t)stress_below(rng, wsize)
					   : 0;
			consume(&window[k], rng);
			window[k] = window[--*wcount];
		}
		window[(*wcount)++] = (struct held){f, id, routine};
	} else if (mode < 65) {
		rc = weft_submit(pool, task_plain, arg, NULL);
		STRESS_CHECK(rc == 0, "submit(%zu, out NULL) = %d", id, rc);
		if (rc == 0)
			stress_flag(&tr, id, REC_SUBMITTED);
	} else if (mode < 80) {
		rc = weft_submit(pool, task_plain, arg, &f);
		STRESS_CHECK(rc == 0 && f, "submit(%zu) = %d", id, rc);
		if (rc != 0)
			return;
		stress_flag(&tr, id, REC_SUBMITTED);
		weft_future_unref(f);
	} else {
		rc = weft_submit(pool, task_plain, arg, &f);
		STRESS_CHECK(rc == 0 && f, "submit(%zu) = %d", id, rc);
		if (rc != 0)
			return;
		stress_flag(&tr, id, REC_SUBMITTED);
		stress_watch(f, id);
		weft_future_unref(f);
	}
	stress_progress();
}

static void producer_main(void *arg, unsigned index)
{
	struct prod_phase *ph = arg;
	uint64_t rng = stress_stream(100 + index);
	size_t wsize = 1 + (size_t)stress_below(&rng, 512);
	struct held *window = calloc(wsize, sizeof(*window));
	size_t wcount = 0;
	if (!window)
		exit(STRESS_FAIL);
	stress_where("producing", 0);
	size_t lo = ph->base + index * ph->per_thread;
	for (size_t id = lo; id < lo + ph->per_thread; id++) {
		submit_one(ph->pool, id, &rng, window, wsize, &wcount);
		if (stress_below(&rng, 4096) == 0) {
			/* change the window size now and then */
			while (wcount)
				consume(&window[--wcount], &rng);
			free(window);
			wsize = 1 + (size_t)stress_below(&rng, 512);
			window = calloc(wsize, sizeof(*window));
			if (!window)
				exit(STRESS_FAIL);
		}
	}
	while (wcount)
		consume(&window[--wcount], &rng);
	free(window);
	stress_where("done", 0);
}

static void phase_producers(size_t n)
{
	enum { THREADS = 6 };
	struct prod_phase ph = {.per_thread = n / THREADS};
	ph.base = stress_track_alloc(&tr, ph.per_thread * THREADS);
	stress_phase("producers: %d outside threads, %zu tasks, default "
		     "workers",
		     THREADS, ph.per_thread * THREADS);
	ph.pool = stress_pool(0, "sub");
	struct stress_threads *t =
		stress_threads_start(THREADS, producer_main, &ph, "producer");
	stress_threads_join(t);
	stress_phase("producers: draining shutdown");
	int rc = weft_pool_shutdown(ph.pool, 0, WEFT_FOREVER);
	STRESS_CHECK(rc == 0, "shutdown = %d", rc);
	/* Every submitted task ran exactly once, every watch fired once. */
	stress_verify(&tr, ph.base, ph.base + ph.per_thread * THREADS, true,
		      false);
	weft_pool_destroy(ph.pool);
}

/* ---- phase: pingpong ---------------------------------------------------- */

struct ping_phase {
	struct weft_pool *pool;
	size_t base, per_thread;
};

static void ping_main(void *arg, unsigned index)
{
	struct ping_phase *ph = arg;
	uint64_t rng = stress_stream(200 + index);
	size_t lo = ph->base + index * ph->per_thread;
	size_t hi = lo + ph->per_thread;
	struct held burst[3];
	for (size_t id = lo; id < hi;) {
		if (stress_below(&rng, 3) == 0)
			stress_sleep_ns((int64_t)stress_below(&rng, 300000));
		size_t k = 1 + (size_t)stress_below(&rng, 3);
		if (k > hi - id)
			k = hi - id;
		for (size_t j = 0; j < k; j++, id++) {
			struct weft_future *f = NULL;
			int rc = weft_submit(ph->pool, task_plain,
					     (void *)(uintptr_t)id, &f);
			STRESS_CHECK(rc == 0 && f, "submit(%zu) = %d", id, rc);
			if (rc != 0)
				exit(stress_finish());
			stress_flag(&tr, id, REC_SUBMITTED);
			if (stress_below(&rng, 2))
				stress_watch(f, id);
			burst[j] = (struct held){f, id, false};
		}
		for (size_t j = 0; j < k; j++)
			consume(&burst[j], &rng);
	}
	stress_where("done", 0);
}

static void phase_pingpong(size_t n, unsigned threads)
{
	struct ping_phase ph = {.per_thread = n / threads};
	ph.base = stress_track_alloc(&tr, ph.per_thread * threads);
	stress_phase("pingpong: %u outside threads, %zu round trips, 4 "
		     "workers",
		     threads, ph.per_thread * threads);
	ph.pool = stress_pool(4, "ping");
	struct stress_threads *t =
		stress_threads_start(threads, ping_main, &ph, "pinger");
	stress_threads_join(t);
	weft_pool_destroy(ph.pool); /* drains */
	stress_verify(&tr, ph.base, ph.base + ph.per_thread * threads, true,
		      false);
}

/* ---- phase: crosspool --------------------------------------------------- */

struct cross_phase {
	struct weft_pool *a, *b;
	size_t relay_base, per_thread;
	/* children of relays in B, and B's fire-and-forget tasks in A */
	size_t child_base;
};

static struct cross_phase *cross;

/* In B: maybe submit a leaf back to A without keeping its future. */
static int task_b(void *arg, void **result)
{
	size_t id = (size_t)(uintptr_t)arg;
	stress_task_start(&tr, id);
	*result = stress_plan_value(id);
	/* the leaf for A uses the id right after this one */
	if (stress_mix(id) % 4 == 0) {
		size_t leaf = id + 1;
		int rc = weft_submit(cross->a, task_plain,
				     (void *)(uintptr_t)leaf, NULL);
		/* A may be shutting down already: then -ESHUTDOWN */
		STRESS_CHECK(rc == 0 || rc == -ESHUTDOWN,
			     "submit to A from B = %d", rc);
		stress_flag(&tr, leaf, rc == 0 ? REC_SUBMITTED : REC_SHUTDOWN);
	}
	return 0;
}

/* In A: submit 1-4 tasks to B; wait for some of them. */
static int task_relay(void *arg, void **result)
{
	size_t id = (size_t)(uintptr_t)arg;
	stress_task_start(&tr, id);
	uint64_t rng = stress_mix(id);
	size_t k = 1 + (size_t)stress_below(&rng, 4);
	struct weft_future *fs[4];
	size_t ids[4];
	/* two ids per child: the child and its possible leaf */
	size_t c0 = cross->child_base + (id - cross->relay_base) * 8;
	for (size_t j = 0; j < k; j++) {
		ids[j] = c0 + 2 * j;
		fs[j] = NULL;
		int rc = weft_submit(cross->b, task_b,
				     (void *)(uintptr_t)ids[j], &fs[j]);
		STRESS_CHECK(rc == 0 && fs[j], "submit to B = %d", rc);
		if (rc != 0)
			continue;
		stress_flag(&tr, ids[j], REC_SUBMITTED);
		stress_watch(fs[j], ids[j]);
	}
	bool wait = stress_below(&rng, 2);
	for (size_t j = 0; j < k; j++) {
		if (!fs[j])
			continue;
		if (wait) {
			void *v = NULL;
			int rc = weft_future_get(fs[j], &v);
			STRESS_CHECK(rc == 0 && v == stress_plan_value(ids[j]),
				     "get(B child %zu) = %d, %p", ids[j], rc,
				     v);
		}
		weft_future_unref(fs[j]);
	}
	*result = stress_plan_value(id);
	return 0;
}

static void cross_main(void *arg, unsigned index)
{
	struct cross_phase *ph = arg;
	uint64_t rng = stress_stream(300 + index);
	size_t lo = ph->relay_base + index * ph->per_thread;
	for (size_t id = lo; id < lo + ph->per_thread; id++) {
		struct weft_future *f = NULL;
		int rc = weft_submit(ph->a, task_relay, (void *)(uintptr_t)id,
				     stress_below(&rng, 2) ? &f : NULL);
		STRESS_CHECK(rc == 0, "submit relay = %d", rc);
		if (rc != 0)
			continue;
		stress_flag(&tr, id, REC_SUBMITTED);
		if (f) {
			stress_watch(f, id);
			weft_future_unref(f);
		}
		if (stress_below(&rng, 64) == 0)
			stress_sleep_ns((int64_t)stress_below(&rng, 200000));
	}
}

static void phase_crosspool(size_t relays)
{
	enum { THREADS = 4 };
	struct cross_phase ph = {.per_thread = relays / THREADS};
	size_t nrelay = ph.per_thread * THREADS;
	ph.relay_base = stress_track_alloc(&tr, nrelay);
	ph.child_base = stress_track_alloc(&tr, nrelay * 8);
	stress_phase("crosspool: %d outside threads, %zu relays in A feeding "
		     "B",
		     THREADS, nrelay);
	ph.a = stress_pool(2, "A");
	ph.b = stress_pool(2, "B");
	cross = &ph;
	struct stress_threads *t =
		stress_threads_start(THREADS, cross_main, &ph, "feeder");
	stress_threads_join(t);
	int rc = weft_pool_shutdown(ph.a, 0, WEFT_FOREVER);
	STRESS_CHECK(rc == 0, "shutdown A = %d", rc);
	rc = weft_pool_shutdown(ph.b, 0, WEFT_FOREVER);
	STRESS_CHECK(rc == 0, "shutdown B = %d", rc);
	weft_pool_destroy(ph.a);
	weft_pool_destroy(ph.b);
	cross = NULL;
	stress_verify(&tr, ph.relay_base, ph.child_base + nrelay * 8, true,
		      false);
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_submit");
	size_t n_prod = stress_scaled(1900000, 600);
	size_t n_ping1 = stress_scaled(40000, 100);
	size_t n_ping4 = stress_scaled(120000, 400);
	size_t n_relay = stress_scaled(100000, 400);
	stress_track_init(&tr, n_prod + n_ping1 + n_ping4 + n_relay * 9 + 64);
	stress_track_default(&tr);

	phase_producers(n_prod);
	phase_pingpong(n_ping1, 1);
	phase_pingpong(n_ping4, 4);
	phase_crosspool(n_relay);

	stress_track_fini(&tr);
	return stress_finish();
}
