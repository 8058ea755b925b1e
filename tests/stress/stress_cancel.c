/*
 * stress_cancel.c - cancel storms: threads cancelling random futures while
 * workers run them.
 *
 * Phases:
 *   storm   4 outside producers publish their futures into a shared table
 *           of slots; 3 outside cancellers and the tasks themselves cancel
 *           whatever future a random slot holds. Tasks are instant, or spin
 *           while polling weft_task_cancelled() (and return -ECANCELED
 *           when asked to stop), or submit a child, publish it and wait for
 *           it. on_complete callbacks are registered before and after the
 *           future is published, racing the cancels.
 *   gated   every worker is held by a blocker task; tasks queued behind
 *           them are cancelled (from several threads at once for some), so
 *           each cancel must return 0 for exactly one caller and -EALREADY
 *           for the others, and none of those tasks may run once the
 *           blockers let go.
 *
 * Checks per id (stress_future.c): completes exactly once; a cancel that
 * returned 0 means the task never ran and the future is CANCELLED; -EBUSY
 * means it ran and did not complete as CANCELLED (a task that stops on
 * weft_task_cancelled() and returns -ECANCELED is FAILED with -ECANCELED);
 * a task that saw weft_task_cancelled() had a cancel return -EBUSY.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

static struct stress_track tr;
static struct weft_pool *pool;

/* few slots in the shared table: they hold recent futures, often queued or
 * running */
#define NSLOTS 32

static _Atomic bool storm_over;
static _Atomic uint64_t n_cancel_ok, n_cancel_busy, n_cancel_already;

static void count_cancel(int rc)
{
	if (rc == 0)
		atomic_fetch_add_explicit(&n_cancel_ok, 1, memory_order_relaxed);
	else if (rc == -EBUSY)
		atomic_fetch_add_explicit(&n_cancel_busy, 1,
					  memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&n_cancel_already, 1,
					  memory_order_relaxed);
}

/* Cancel whatever slot @k holds. */
static void cancel_slot(unsigned k, bool twice)
{
	size_t id;
	struct weft_future *f = stress_table_get(k, &id);
	if (!f)
		return;
	int rc = stress_cancel(&tr, id, f);
	count_cancel(rc);
	if (twice) {
		int rc2 = stress_cancel(&tr, id, f);
		if (rc == 0)
			STRESS_CHECK(rc2 == -EALREADY,
				     "id %zu: cancel after a successful cancel "
				     "= %d",
				     id, rc2);
		if (rc == -EALREADY)
			STRESS_CHECK(rc2 == -EALREADY,
				     "id %zu: cancel after -EALREADY = %d", id,
				     rc2);
	}
	weft_future_unref(f);
}

/* ---- the storm task ----------------------------------------------------- */

static int storm_task(void *arg, void **result);

static int spawn_child_and_wait(size_t id, uint64_t h)
{
	size_t cid = stress_track_alloc(&tr, 1);
	struct weft_future *cf = NULL;
	int rc = weft_submit(pool, storm_task, (void *)(uintptr_t)cid, &cf);
	STRESS_CHECK(rc == 0, "child submit = %d", rc);
	if (rc)
		return 0;
	stress_flag(&tr, cid, REC_SUBMITTED);
	stress_watch(cf, cid);
	stress_table_put((unsigned)(h >> 20), cf, cid);
	void *v = NULL;
	rc = weft_future_get(cf, &v);
	int st = weft_future_state(cf);
	if (rc == -ECANCELED) {
		/* Either the child was cancelled, or the wait is a
		 * cancellation point and this task was (the child may then
		 * still be running). */
		STRESS_CHECK(st == WEFT_FUTURE_CANCELLED ||
				     st == WEFT_FUTURE_FAILED ||
				     weft_task_cancelled(),
			     "parent %zu: child %zu -ECANCELED in state %d", id,
			     cid, st);
	} else {
		int planned = stress_plan_err(cid, 16);
		STRESS_CHECK(rc == planned, "parent %zu: child %zu = %d, "
			     "planned %d",
			     id, cid, rc, planned);
		if (rc == 0)
			STRESS_CHECK(v == stress_plan_value(cid),
				     "child %zu value %p", cid, v);
	}
	weft_future_unref(cf);
	return rc;
}

static int storm_task(void *arg, void **result)
{
	size_t id = (size_t)(uintptr_t)arg;
	stress_task_start(&tr, id);
	uint64_t h = stress_mix(id ^ 0xca11);
	unsigned what = (unsigned)(h % 100);
	if (what < 30) {
		/* a long task that stops when asked */
		int64_t end = weft_now() + (int64_t)((h >> 8) % 30000);
		while (weft_now() < end) {
			if (weft_task_cancelled()) {
				stress_flag(&tr, id, REC_SAW_CANCEL);
				return -ECANCELED;
			}
		}
	} else if (what < 38) {
		/* cancel others (and maybe this very task: -EBUSY) */
		for (unsigned k = 0; k < 4; k++)
			cancel_slot((unsigned)(h >> (8 * k)), false);
	} else if (what < 45 && !atomic_load(&storm_over)) {
		spawn_child_and_wait(id, h);
	}
	if (weft_task_cancelled()) {
		stress_flag(&tr, id, REC_SAW_CANCEL);
		return -ECANCELED;
	}
	int err = stress_plan_err(id, 16);
	if (!err)
		*result = stress_plan_value(id);
	return err;
}

/* Outcome check for futures the producer still holds at the end. */
static void check_storm_outcome(struct weft_future *f, size_t id)
{
	int st = weft_future_state(f);
	int err = weft_future_error(f);
	if (st == WEFT_FUTURE_CANCELLED)
		return;
	if (err == -ECANCELED) {
		STRESS_CHECK(stress_flags(&tr, id) & REC_SAW_CANCEL,
			     "id %zu failed with -ECANCELED but never saw a "
			     "cancel",
			     id);
		return;
	}
	STRESS_CHECK(err == stress_plan_err(id, 16),
		     "id %zu: error %d, planned %d", id, err,
		     stress_plan_err(id, 16));
}

/* ---- phase: storm ------------------------------------------------------- */

struct storm {
	size_t per_thread;
};

static void storm_producer(void *arg, unsigned index)
{
	struct storm *ph = arg;
	uint64_t rng = stress_stream(700 + index);
	enum { KEEP = 64 };
	struct weft_future *kept[KEEP] = {0};
	size_t kept_id[KEEP];
	for (size_t i = 0; i < ph->per_thread; i++) {
		size_t id = stress_track_alloc(&tr, 1);
		struct weft_future *f = NULL;
		int rc = weft_submit(pool, storm_task, (void *)(uintptr_t)id,
				     &f);
		STRESS_CHECK(rc == 0 && f, "submit = %d", rc);
		if (rc)
			continue;
		stress_flag(&tr, id, REC_SUBMITTED);
		unsigned how = (unsigned)stress_below(&rng, 8);
		if (how < 4)
			stress_watch(f, id);
		if (how == 0) {
			/* cancel at once: often before a worker saw it */
			count_cancel(stress_cancel(&tr, id, f));
		}
		stress_table_put((unsigned)stress_rand(&rng), f, id);
		if (how >= 4)
			stress_watch(f, id); /* after it may be cancelled */
		/* keep some to check their outcome at the end */
		unsigned k = (unsigned)stress_below(&rng, KEEP);
		if (kept[k]) {
			if (weft_future_try_wait(kept[k]) == 0)
				check_storm_outcome(kept[k], kept_id[k]);
			weft_future_unref(kept[k]);
		}
		kept[k] = f;
		kept_id[k] = id;
		if (stress_below(&rng, 1024) == 0)
			stress_sleep_ns((int64_t)stress_below(&rng, 100000));
	}
	for (unsigned k = 0; k < KEEP; k++) {
		if (!kept[k])
			continue;
		stress_where("waiting for", kept_id[k]);
		STRESS_CHECK(weft_future_wait(kept[k]) == 0, "wait failed");
		check_storm_outcome(kept[k], kept_id[k]);
		weft_future_unref(kept[k]);
	}
	stress_where("done", 0);
}

static void storm_canceller(void *arg, unsigned index)
{
	(void)arg;
	uint64_t rng = stress_stream(800 + index);
	while (!atomic_load(&storm_over)) {
		cancel_slot((unsigned)stress_rand(&rng),
			    stress_below(&rng, 4) == 0);
		if (stress_below(&rng, 16) == 0)
			sched_yield();
	}
}

static void phase_storm(size_t n, unsigned workers)
{
	struct storm ph = {.per_thread = n / 4};
	stress_track_reset(&tr);
	atomic_store(&storm_over, false);
	stress_phase("storm: %zu tasks from 4 producers, 3 cancellers, %u "
		     "workers",
		     ph.per_thread * 4, workers);
	pool = stress_pool(workers, "storm");
	struct stress_threads *c =
		stress_threads_start(3, storm_canceller, &ph, "canceller");
	struct stress_threads *p =
		stress_threads_start(4, storm_producer, &ph, "producer");
	stress_threads_join(p);
	atomic_store(&storm_over, true);
	stress_threads_join(c);
	int rc = weft_pool_shutdown(pool, 0, WEFT_FOREVER);
	STRESS_CHECK(rc == 0, "shutdown = %d", rc);
	stress_table_clear();
	weft_pool_destroy(pool);
	pool = NULL;
	stress_verify(&tr, 0, atomic_load(&tr.next), false, false);
	stress_log("storm: cancels: %llu ok, %llu busy, %llu already",
		   (unsigned long long)atomic_load(&n_cancel_ok),
		   (unsigned long long)atomic_load(&n_cancel_busy),
		   (unsigned long long)atomic_load(&n_cancel_already));
}

/* ---- phase: gated ------------------------------------------------------- */

static _Atomic bool gate_open;
static _Atomic unsigned blockers_in;

static int blocker_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_fetch_add(&blockers_in, 1);
	while (!atomic_load(&gate_open))
		sched_yield();
	stress_count_task();
	return 0;
}

static int gated_task(void *arg, void **result)
{
	size_t id = (size_t)(uintptr_t)arg;
	stress_task_start(&tr, id);
	*result = stress_plan_value(id);
	return 0;
}

struct gated_race {
	struct weft_future **fs;
	size_t *ids;
	size_t n;
	_Atomic unsigned ready;
	_Atomic uint32_t *wins;
};

static void gated_racer(void *arg, unsigned index)
{
	struct gated_race *g = arg;
	atomic_fetch_add(&g->ready, 1);
	while (atomic_load(&g->ready) < 3)
		sched_yield();
	for (size_t i = 0; i < g->n; i++) {
		/* each racer walks in its own order */
		size_t k = index == 1 ? g->n - 1 - i : i;
		int rc = stress_cancel(&tr, g->ids[k], g->fs[k]);
		STRESS_CHECK(rc == 0 || rc == -EALREADY,
			     "gated cancel of a queued task = %d", rc);
		if (rc == 0)
			atomic_fetch_add(&g->wins[k], 1);
	}
}

static void phase_gated(size_t n, unsigned rounds)
{
	stress_track_reset(&tr);
	stress_phase("gated: %u rounds of %zu queued tasks behind blockers",
		     rounds, n / rounds);
	uint64_t rng = stress_stream(900);
	size_t per = n / rounds;
	struct weft_future **fs = calloc(per, sizeof(*fs));
	size_t *ids = calloc(per, sizeof(*ids));
	_Atomic uint32_t *wins = calloc(per, sizeof(*wins));
	if (!fs || !ids || !wins)
		exit(STRESS_FAIL);
	for (unsigned r = 0; r < rounds; r++) {
		unsigned workers = 1 + (unsigned)stress_below(&rng, 3);
		pool = stress_pool(workers, "gated");
		atomic_store(&gate_open, false);
		atomic_store(&blockers_in, 0);
		for (unsigned w = 0; w < workers; w++)
			STRESS_CHECK(weft_submit(pool, blocker_task, NULL,
						 NULL) == 0,
				     "submit blocker");
		stress_where("waiting for blockers", r);
		while (atomic_load(&blockers_in) < workers)
			sched_yield();
		for (size_t i = 0; i < per; i++) {
			ids[i] = stress_track_alloc(&tr, 1);
			atomic_store(&wins[i], 0);
			int rc = weft_submit(pool, gated_task,
					     (void *)(uintptr_t)ids[i], &fs[i]);
			STRESS_CHECK(rc == 0, "submit = %d", rc);
			stress_flag(&tr, ids[i], REC_SUBMITTED);
			stress_watch(fs[i], ids[i]);
			STRESS_CHECK(weft_future_state(fs[i]) ==
					     WEFT_FUTURE_PENDING,
				     "queued task %zu in state %d", ids[i],
				     weft_future_state(fs[i]));
		}
		/* half the rounds: three threads race to cancel every one;
		 * otherwise cancel a random half from here */
		bool race = r % 2 == 0;
		if (race) {
			struct gated_race g = {fs, ids, per, 0, wins};
			struct stress_threads *t =
				stress_threads_start(3, gated_racer, &g, "racer");
			stress_threads_join(t);
			for (size_t i = 0; i < per; i++)
				STRESS_CHECK(atomic_load(&wins[i]) == 1,
					     "queued task %zu: %u cancels "
					     "returned 0",
					     ids[i], atomic_load(&wins[i]));
		} else {
			for (size_t i = 0; i < per; i++) {
				if (stress_below(&rng, 2))
					continue;
				int rc = stress_cancel(&tr, ids[i], fs[i]);
				STRESS_CHECK(rc == 0, "cancel of queued task "
					     "%zu = %d",
					     ids[i], rc);
			}
		}
		atomic_store(&gate_open, true);
		for (size_t i = 0; i < per; i++) {
			STRESS_CHECK(weft_future_wait(fs[i]) == 0, "wait");
			unsigned fl = stress_flags(&tr, ids[i]);
			int st = weft_future_state(fs[i]);
			if (fl & REC_CANCEL_OK)
				STRESS_CHECK(st == WEFT_FUTURE_CANCELLED &&
						     weft_future_error(fs[i]) ==
							     -ECANCELED,
					     "cancelled %zu: state %d", ids[i],
					     st);
			else
				STRESS_CHECK(st == WEFT_FUTURE_DONE,
					     "uncancelled %zu: state %d",
					     ids[i], st);
			weft_future_unref(fs[i]);
		}
		weft_pool_destroy(pool);
		pool = NULL;
	}
	stress_verify(&tr, 0, atomic_load(&tr.next), false, false);
	free(fs);
	free(ids);
	free((void *)wins);
}

static void dump(int fd)
{
	stress_dprintf(fd, "  ids %zu, cancels ok %llu busy %llu already %llu, "
		       "gate %d, blockers in %u\n",
		       atomic_load(&tr.next),
		       (unsigned long long)atomic_load(&n_cancel_ok),
		       (unsigned long long)atomic_load(&n_cancel_busy),
		       (unsigned long long)atomic_load(&n_cancel_already),
		       (int)atomic_load(&gate_open),
		       atomic_load(&blockers_in));
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_cancel");
	stress_set_dump(dump);
	stress_table_init(NSLOTS);
	size_t n_storm2 = stress_scaled(750000, 400);
	size_t n_storm4 = stress_scaled(500000, 400);
	size_t n_gated = stress_scaled(200000, 200);
	unsigned gated_rounds = (unsigned)stress_scaled(400, 4);
	size_t biggest = n_storm2 > n_storm4 ? n_storm2 : n_storm4;
	/* a storm task spawns at most one child per task */
	stress_track_init(&tr, biggest * 2 + n_gated + 64);
	stress_track_default(&tr);
	phase_storm(n_storm2, 2);
	phase_storm(n_storm4, 4);
	phase_gated(n_gated, gated_rounds);
	printf("stress_cancel: cancels: %llu returned 0, %llu -EBUSY, %llu "
	       "-EALREADY\n",
	       (unsigned long long)atomic_load(&n_cancel_ok),
	       (unsigned long long)atomic_load(&n_cancel_busy),
	       (unsigned long long)atomic_load(&n_cancel_already));
	stress_track_fini(&tr);
	return stress_finish();
}
