/*
 * stress_future.c - the per-id records of the pool-level stress programs:
 * exactly-once checks on task starts, completions and cancels. See
 * stress.h. Any thread.
 */
#include "stress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- records ------------------------------------------------------------ */

static struct stress_track *default_track;

void stress_track_init(struct stress_track *t, size_t cap)
{
	t->rec = calloc(cap ? cap : 1, sizeof(*t->rec));
	if (!t->rec) {
		fprintf(stderr, "stress: cannot allocate %zu records\n",
			cap);
		exit(STRESS_FAIL);
	}
	t->cap = cap;
	atomic_init(&t->next, 0);
}

void stress_track_fini(struct stress_track *t)
{
	free(t->rec);
	t->rec = NULL;
	t->cap = 0;
}

void stress_track_reset(struct stress_track *t)
{
	memset(t->rec, 0, t->cap * sizeof(*t->rec));
	atomic_store(&t->next, 0);
}

size_t stress_track_alloc(struct stress_track *t, size_t n)
{
	size_t id = atomic_fetch_add_explicit(&t->next, n, memory_order_relaxed);
	if (id + n > t->cap) {
		stress_fail("record capacity %zu exhausted (harness sizing bug)",
			    t->cap);
		_exit(STRESS_FAIL);
	}
	return id;
}

void stress_task_start(struct stress_track *t, size_t id)
{
	struct stress_rec *r = &t->rec[id];
	uint8_t prev = atomic_fetch_add(&r->ran, 1);
	STRESS_CHECK(prev == 0, "task %zu started %u times", id,
		     (unsigned)prev + 1);
	unsigned fl = atomic_load(&r->flags);
	STRESS_CHECK(!(fl & REC_CANCEL_OK),
		     "task %zu started after weft_future_cancel() returned 0",
		     id);
	uint8_t st = atomic_load(&r->completions);
	STRESS_CHECK(st == 0, "task %zu started after its future completed",
		     id);
	stress_count_task();
}

static const char *state_name(int s)
{
	switch (s) {
	case WEFT_FUTURE_PENDING: return "PENDING";
	case WEFT_FUTURE_RUNNING: return "RUNNING";
	case WEFT_FUTURE_DONE: return "DONE";
	case WEFT_FUTURE_FAILED: return "FAILED";
	case WEFT_FUTURE_CANCELLED: return "CANCELLED";
	default: return "?";
	}
}

int stress_complete(struct stress_track *t, size_t id, struct weft_future *f)
{
	struct stress_rec *r = &t->rec[id];
	uint8_t prev = atomic_fetch_add(&r->completions, 1);
	STRESS_CHECK(prev == 0, "future %zu completed %u times", id,
		     (unsigned)prev + 1);
	int st = weft_future_state(f);
	int err = weft_future_error(f);
	STRESS_CHECK(weft_future_try_wait(f) == 0,
		     "future %zu: callback before try_wait sees it complete",
		     id);
	switch (st) {
	case WEFT_FUTURE_DONE:
		STRESS_CHECK(err == 0, "future %zu DONE with error %d", id,
			     err);
		break;
	case WEFT_FUTURE_FAILED:
		STRESS_CHECK(err < 0 && err != -EINPROGRESS,
			     "future %zu FAILED with error %d", id, err);
		STRESS_CHECK(weft_future_value(f) == NULL,
			     "future %zu FAILED with a value", id);
		break;
	case WEFT_FUTURE_CANCELLED:
		STRESS_CHECK(err == -ECANCELED,
			     "future %zu CANCELLED with error %d", id, err);
		STRESS_CHECK(weft_future_value(f) == NULL,
			     "future %zu CANCELLED with a value", id);
		break;
	default:
		stress_fail("future %zu: on_complete with state %s (%d)", id,
			    state_name(st), st);
		break;
	}
	unsigned fl = atomic_load(&r->flags);
	uint8_t ran = atomic_load(&r->ran);
	/* weft/future.h: CANCELLED is "cancelled before it ran", or a task
	 * that saw weft_task_cancelled() and returned -ECANCELED (asyncio's
	 * rule for a task that lets CancelledError propagate). */
	if (st == WEFT_FUTURE_CANCELLED)
		STRESS_CHECK(ran == 0 || (ran == 1 && (fl & REC_SAW_CANCEL)),
			     "future %zu CANCELLED after its task ran %u times "
			     "without seeing weft_task_cancelled()",
			     id, (unsigned)ran);
	else if (!(fl & REC_NO_TASK) && err != -ESHUTDOWN)
		STRESS_CHECK(ran == 1,
			     "future %zu %s (error %d) but its task ran %u "
			     "times before completion",
			     id, state_name(st), err, (unsigned)ran);
	atomic_store(&r->err, err);
	atomic_store(&r->state, (uint8_t)st);
	stress_progress();
	return st;
}

void stress_track_default(struct stress_track *t)
{
	default_track = t;
}

static void watch_cb(struct weft_future *f, void *arg)
{
	stress_complete(default_track, (size_t)(uintptr_t)arg, f);
}

void stress_watch(struct weft_future *f, size_t id)
{
	stress_flag(default_track, id, REC_WATCHED);
	int rc = weft_future_on_complete(f, watch_cb, (void *)(uintptr_t)id);
	STRESS_CHECK(rc == 0, "on_complete(%zu) returned %d", id, rc);
}

int stress_cancel(struct stress_track *t, size_t id, struct weft_future *f)
{
	int rc = weft_future_cancel(f);
	switch (rc) {
	case 0:
		stress_flag(t, id, REC_CANCEL_OK);
		STRESS_CHECK(weft_future_try_wait(f) == 0,
			     "cancel(%zu) returned 0 but the future is not "
			     "complete",
			     id);
		STRESS_CHECK(weft_future_state(f) == WEFT_FUTURE_CANCELLED,
			     "cancel(%zu) returned 0, state %s", id,
			     state_name(weft_future_state(f)));
		break;
	case -EBUSY:
		stress_flag(t, id, REC_CANCEL_BUSY);
		break;
	case -EALREADY:
		if (weft_future_try_wait(f) != 0) {
			int st1 = weft_future_state(f);
			stress_spin_ns(1000000);
			stress_fail("cancel(%zu) returned -EALREADY but the "
				    "future is not complete: state %s, 1 ms "
				    "later %s; task started %u times, "
				    "completions seen %u",
				    id, state_name(st1),
				    state_name(weft_future_state(f)),
				    (unsigned)atomic_load(&t->rec[id].ran),
				    (unsigned)atomic_load(
					    &t->rec[id].completions));
		}
		break;
	default:
		stress_fail("cancel(%zu) returned %d", id, rc);
		break;
	}
	stress_progress();
	return rc;
}

static void batch_cancel(const struct stress_batches *b, size_t id,
			 struct weft_future *f)
{
	stress_cancel(b->t, id, f);
	atomic_fetch_add_explicit(b->cancels, 1, memory_order_relaxed);
}

void stress_run_batches(const struct stress_batches *b)
{
	struct stress_task_arg ta[STRESS_BATCH_MAX];
	struct weft_future *fs[STRESS_BATCH_MAX];
	size_t batch = b->batch < STRESS_BATCH_MAX ? b->batch : STRESS_BATCH_MAX;
	size_t ops_every = b->ops ? b->tasks / b->ops + 1 : SIZE_MAX;

	for (size_t done = 0; done < b->tasks;) {
		size_t n = b->tasks - done < batch ? b->tasks - done : batch;

		for (size_t k = 0; k < n; k++) {
			ta[k].id = stress_track_alloc(b->t, 1);
			ta[k].seed = stress_rand(b->rng);
			stress_where("submit", ta[k].id);
			int rc = weft_submit(b->pool, b->fn, &ta[k], &fs[k]);

			STRESS_CHECK(rc == 0, "submit = %d", rc);
			if (rc) {
				fs[k] = NULL;
				continue;
			}
			stress_flag(b->t, ta[k].id, REC_SUBMITTED);
			stress_watch(fs[k], ta[k].id);
			/* cancel some tasks at once, queued or running */
			if (stress_below(b->rng, 16) == 0)
				batch_cancel(b, ta[k].id, fs[k]);
		}
		/* the thread's own ops, with blocking waits, while the batch
		 * runs */
		for (size_t k = 0; k < n; k++)
			if ((done + k) % ops_every == 0)
				b->own_op(b->ctx);
		/* and some cancels of tasks that are in their waits now */
		for (size_t k = 0; k < n; k++)
			if (fs[k] && stress_below(b->rng, b->late_cancel) == 0)
				batch_cancel(b, ta[k].id, fs[k]);
		for (size_t k = 0; k < n; k++) {
			if (!fs[k])
				continue;
			stress_where("wait task", ta[k].id);
			STRESS_CHECK(weft_future_wait(fs[k]) == 0, "wait");
			int st = weft_future_state(fs[k]);

			STRESS_CHECK(st == WEFT_FUTURE_DONE ||
					     st == WEFT_FUTURE_CANCELLED ||
					     (b->failed_cancel &&
					      st == WEFT_FUTURE_FAILED &&
					      weft_future_error(fs[k]) ==
						      -ECANCELED),
				     "task %zu: state %d error %d", ta[k].id,
				     st, weft_future_error(fs[k]));
			if (st == WEFT_FUTURE_DONE)
				STRESS_CHECK(weft_future_value(fs[k]) ==
						     stress_plan_value(ta[k].id),
					     "task %zu: value", ta[k].id);
			weft_future_unref(fs[k]);
		}
		done += n;
	}
}

size_t stress_verify(struct stress_track *t, size_t lo, size_t hi,
		     bool must_run, bool shutdown_cancel)
{
	size_t bad = 0;
	for (size_t id = lo; id < hi; id++) {
		struct stress_rec *r = &t->rec[id];
		unsigned fl = atomic_load(&r->flags);
		unsigned ran = atomic_load(&r->ran);
		unsigned comp = atomic_load(&r->completions);
		int st = atomic_load(&r->state);
		bool ok = true;
		if (fl & REC_SHUTDOWN) {
			if (ran || comp) {
				stress_fail("id %zu: submit returned "
					    "-ESHUTDOWN but it ran %u / "
					    "completed %u",
					    id, ran, comp);
				ok = false;
			}
			goto next;
		}
		if ((fl & REC_WATCHED) && comp != 1) {
			stress_fail("id %zu: completed %u times (want 1); ran "
				    "%u, flags %#x",
				    id, comp, ran, fl);
			ok = false;
		}
		if (ran > 1) {
			stress_fail("id %zu: ran %u times", id, ran);
			ok = false;
		}
		if (fl & REC_CANCEL_OK) {
			if (ran) {
				stress_fail("id %zu: cancel returned 0 but it "
					    "ran",
					    id);
				ok = false;
			}
			if ((fl & REC_WATCHED) && st != WEFT_FUTURE_CANCELLED) {
				stress_fail("id %zu: cancel returned 0 but it "
					    "completed %s",
					    id, state_name(st));
				ok = false;
			}
		}
		if ((fl & REC_CANCEL_BUSY) && !(fl & REC_NO_TASK)) {
			if (ran != 1) {
				stress_fail("id %zu: cancel returned -EBUSY "
					    "but it ran %u times",
					    id, ran);
				ok = false;
			}
			if ((fl & REC_WATCHED) && st == WEFT_FUTURE_CANCELLED &&
			    !(fl & REC_SAW_CANCEL)) {
				stress_fail("id %zu: cancel returned -EBUSY "
					    "and it completed CANCELLED without "
					    "its task seeing the cancel",
					    id);
				ok = false;
			}
		}
		if ((fl & REC_SAW_CANCEL) && !shutdown_cancel &&
		    !(fl & REC_CANCEL_BUSY)) {
			stress_fail("id %zu: weft_task_cancelled() was true "
				    "but no cancel returned -EBUSY",
				    id);
			ok = false;
		}
		if ((fl & REC_WATCHED) && comp == 1 && !(fl & REC_NO_TASK)) {
			if (st == WEFT_FUTURE_CANCELLED && ran &&
			    !(ran == 1 && (fl & REC_SAW_CANCEL))) {
				stress_fail("id %zu: CANCELLED but ran %u "
					    "times without seeing the cancel",
					    id, ran);
				ok = false;
			}
			if (st != WEFT_FUTURE_CANCELLED && ran != 1 &&
			    atomic_load(&r->err) != -ESHUTDOWN) {
				stress_fail("id %zu: %s but ran %u times", id,
					    state_name(st), ran);
				ok = false;
			}
		}
		if (must_run && (fl & REC_SUBMITTED) && ran != 1) {
			stress_fail("id %zu: submitted (drain) but ran %u "
				    "times",
				    id, ran);
			ok = false;
		}
	next:
		if (!ok)
			bad++;
	}
	return bad;
}

struct weft_pool *stress_pool(unsigned workers, const char *name)
{
	struct weft_pool_options o;
	weft_pool_options_init(&o);
	o.workers = workers;
	o.name = name;
	struct weft_pool *p = NULL;
	int rc = weft_pool_create(&o, &p);
	if (rc == -EAGAIN)
		stress_skip("weft_pool_create(%u workers): the system refused "
			    "a thread",
			    workers);
	if (rc != 0 || !p) {
		stress_fail("weft_pool_create(%u workers) = %d", workers, rc);
		exit(stress_finish());
	}
	STRESS_CHECK(weft_pool_workers(p) == (workers ? workers
						      : weft_cpu_count()),
		     "pool has %u workers, asked %u", weft_pool_workers(p),
		     workers);
	return p;
}
