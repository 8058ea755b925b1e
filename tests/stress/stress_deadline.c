/*
 * stress_deadline.c - waits with deadlines racing the completion they wait
 * for.
 *
 * Phases:
 *   race     4 outside threads each submit a task that finishes at a known
 *            time T (it spins until then) and wait for it with
 *            weft_future_wait_until(T + jitter), jitter within +-200 us, so
 *            the deadline and the completion race. Other threads wait on
 *            the same futures (shared through a table) with their own
 *            deadlines, some cancel them, some poll with a past deadline.
 *   inner    the same from inside tasks: a task submits a child that
 *            finishes at T and waits for it until T + jitter (the interim
 *            rule may run the child inline).
 *   multi    weft_future_wait_all() and weft_as_completed_next() with
 *            deadlines over sets of tasks that finish at staggered times.
 *
 * Checks: -ETIMEDOUT never comes before the deadline (weft_now() read after
 * the return is at or past it); a return of 0 means the future has
 * completed; a poll of a future seen complete returns 0; a failed
 * wait_all names a complete future with that error; as_completed gives
 * every index once, each complete; every future completes exactly once.
 * How late the timeouts were is printed (not checked: this is a loaded VM).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

static struct stress_track tr;
static struct weft_pool *pool;

static _Atomic int64_t max_late_ns;
static _Atomic uint64_t n_timeouts, n_in_time;

struct timed {
	size_t id;
	int64_t until; /* the task spins until this weft_now() time */
};

static struct timed *timed_args;

static int timed_task(void *arg, void **result)
{
	struct timed *t = arg;
	stress_task_start(&tr, t->id);
	while (weft_now() < t->until)
		if (weft_task_cancelled())
			break;
	*result = stress_plan_value(t->id);
	return 0;
}

static void note_late(int64_t late)
{
	int64_t m = atomic_load_explicit(&max_late_ns, memory_order_relaxed);
	while (late > m &&
	       !atomic_compare_exchange_weak(&max_late_ns, &m, late))
		;
}

/* wait_until with the checks every caller wants; returns its result. */
static int checked_wait_until(struct weft_future *f, size_t id,
			      int64_t deadline)
{
	bool was_done = weft_future_try_wait(f) == 0;
	int rc = weft_future_wait_until(f, deadline);
	int64_t now = weft_now();
	if (rc == -ETIMEDOUT) {
		STRESS_CHECK(now >= deadline,
			     "id %zu: -ETIMEDOUT %lld ns before the deadline",
			     id, (long long)(deadline - now));
		STRESS_CHECK(!was_done,
			     "id %zu: -ETIMEDOUT on a future already complete",
			     id);
		note_late(now - deadline);
		atomic_fetch_add_explicit(&n_timeouts, 1, memory_order_relaxed);
	} else {
		STRESS_CHECK(rc == 0, "id %zu: wait_until = %d", id, rc);
		STRESS_CHECK(weft_future_try_wait(f) == 0,
			     "id %zu: wait_until returned 0, not complete", id);
		int st = weft_future_state(f);
		STRESS_CHECK(st == WEFT_FUTURE_DONE ||
				     st == WEFT_FUTURE_CANCELLED ||
				     st == WEFT_FUTURE_FAILED,
			     "id %zu: state %d after wait_until", id, st);
		atomic_fetch_add_explicit(&n_in_time, 1, memory_order_relaxed);
	}
	stress_progress();
	return rc;
}

/* ---- phase: race -------------------------------------------------------- */

struct race {
	size_t per_thread;
};

static int64_t jitter(uint64_t *rng, int64_t span)
{
	return (int64_t)stress_below(rng, (uint64_t)(2 * span + 1)) - span;
}

static void race_thread(void *arg, unsigned index)
{
	struct race *ph = arg;
	uint64_t rng = stress_stream(1000 + index);
	for (size_t i = 0; i < ph->per_thread; i++) {
		size_t id = stress_track_alloc(&tr, 1);
		struct timed *t = &timed_args[id];
		int64_t d = (int64_t)stress_below(&rng, 300000);
		t->id = id;
		t->until = weft_now() + d;
		struct weft_future *f = NULL;
		int rc = weft_submit(pool, timed_task, t, &f);
		STRESS_CHECK(rc == 0, "submit = %d", rc);
		if (rc)
			continue;
		stress_flag(&tr, id, REC_SUBMITTED);
		stress_watch(f, id);
		stress_table_put((unsigned)stress_rand(&rng), f, id);

		stress_where("wait_until", id);
		int64_t deadline = t->until + jitter(&rng, 200000);
		rc = checked_wait_until(f, id, deadline);
		/* sometimes chain further short waits until done */
		while (rc == -ETIMEDOUT && stress_below(&rng, 2))
			rc = checked_wait_until(
				f, id, weft_now() + jitter(&rng, 50000));
		/* a poll: a past deadline */
		if (weft_future_try_wait(f) == 0)
			STRESS_CHECK(weft_future_wait_until(f, 0) == 0,
				     "poll of a complete future");
		else
			checked_wait_until(f, id, weft_now() - 1000);
		/* wait on someone else's future */
		size_t oid;
		struct weft_future *o =
			stress_table_get((unsigned)stress_rand(&rng), &oid);
		if (o) {
			if (stress_below(&rng, 4) == 0)
				stress_cancel(&tr, oid, o);
			checked_wait_until(o, oid,
					   weft_now() + jitter(&rng, 100000));
			weft_future_unref(o);
		}
		stress_where("wait", id);
		STRESS_CHECK(weft_future_wait(f) == 0, "wait");
		int st = weft_future_state(f);
		STRESS_CHECK(st == WEFT_FUTURE_DONE ||
				     st == WEFT_FUTURE_CANCELLED,
			     "id %zu: state %d", id, st);
		if (st == WEFT_FUTURE_DONE)
			STRESS_CHECK(weft_future_value(f) ==
					     stress_plan_value(id),
				     "id %zu: value", id);
		weft_future_unref(f);
	}
	stress_where("done", 0);
}

/* ---- phase: inner ------------------------------------------------------- */

static int inner_task(void *arg, void **result)
{
	struct timed *t = arg; /* the parent's record; the child is id + 1 */
	stress_task_start(&tr, t->id);
	uint64_t rng = stress_mix(t->id);
	struct timed *c = &timed_args[t->id + 1];
	c->id = t->id + 1;
	c->until = weft_now() + (int64_t)stress_below(&rng, 200000);
	struct weft_future *f = NULL;
	int rc = weft_submit(pool, timed_task, c, &f);
	STRESS_CHECK(rc == 0, "inner submit = %d", rc);
	if (rc)
		return rc;
	stress_flag(&tr, c->id, REC_SUBMITTED);
	stress_watch(f, c->id);
	/* give a thief a chance to take the child first */
	if (stress_below(&rng, 2))
		stress_spin_ns((int64_t)stress_below(&rng, 30000));
	rc = checked_wait_until(f, c->id, c->until + jitter(&rng, 150000));
	if (rc == -ETIMEDOUT)
		rc = weft_future_wait(f);
	STRESS_CHECK(rc == 0, "inner wait = %d", rc);
	weft_future_unref(f);
	*result = stress_plan_value(t->id);
	return 0;
}

static void inner_thread(void *arg, unsigned index)
{
	struct race *ph = arg;
	uint64_t rng = stress_stream(1100 + index);
	enum { BATCH = 8 };
	struct weft_future *fs[BATCH];
	for (size_t i = 0; i < ph->per_thread; i += BATCH) {
		unsigned k = 0;
		for (; k < BATCH && i + k < ph->per_thread; k++) {
			size_t id = stress_track_alloc(&tr, 2);
			timed_args[id].id = id;
			int rc = weft_submit(pool, inner_task, &timed_args[id],
					     &fs[k]);
			STRESS_CHECK(rc == 0, "submit = %d", rc);
			stress_flag(&tr, id, REC_SUBMITTED);
			stress_watch(fs[k], id);
		}
		for (unsigned j = 0; j < k; j++) {
			stress_where("waiting for inner", j);
			STRESS_CHECK(weft_future_wait(fs[j]) == 0, "wait");
			weft_future_unref(fs[j]);
		}
		(void)rng;
	}
}

/* ---- phase: multi ------------------------------------------------------- */

static void multi_thread(void *arg, unsigned index)
{
	struct race *ph = arg;
	uint64_t rng = stress_stream(1200 + index);
	enum { MAXN = 16 };
	struct weft_future *fs[MAXN];
	for (size_t done = 0; done < ph->per_thread;) {
		size_t n = 1 + (size_t)stress_below(&rng, MAXN);
		int64_t now = weft_now();
		for (size_t j = 0; j < n; j++) {
			size_t id = stress_track_alloc(&tr, 1);
			timed_args[id].id = id;
			timed_args[id].until =
				now + (int64_t)stress_below(&rng, 300000);
			int rc = weft_submit(pool, timed_task, &timed_args[id],
					     &fs[j]);
			STRESS_CHECK(rc == 0, "submit = %d", rc);
			stress_flag(&tr, id, REC_SUBMITTED);
			stress_watch(fs[j], id);
			if (stress_below(&rng, 8) == 0)
				stress_cancel(&tr, id, fs[j]);
		}
		done += n;
		if (stress_below(&rng, 2)) {
			/* wait_all with deadlines until it stops timing out */
			for (;;) {
				size_t failed = 7;
				int64_t dl = weft_now() + jitter(&rng, 150000);
				int rc = weft_future_wait_all(fs, n, dl,
							      &failed);
				int64_t after = weft_now();
				stress_progress();
				if (rc == -ETIMEDOUT) {
					STRESS_CHECK(after >= dl,
						     "wait_all: -ETIMEDOUT %lld "
						     "ns early",
						     (long long)(dl - after));
					STRESS_CHECK(failed == SIZE_MAX,
						     "wait_all timed out, "
						     "failed = %zu",
						     failed);
					note_late(after - dl);
					continue;
				}
				if (rc == 0) {
					STRESS_CHECK(failed == SIZE_MAX,
						     "wait_all ok, failed = "
						     "%zu",
						     failed);
					for (size_t j = 0; j < n; j++)
						STRESS_CHECK(
							weft_future_error(
								fs[j]) == 0,
							"wait_all ok but %zu "
							"has error %d",
							j,
							weft_future_error(fs[j]));
				} else {
					STRESS_CHECK(failed < n,
						     "wait_all = %d, failed = "
						     "%zu",
						     rc, failed);
					if (failed < n)
						STRESS_CHECK(
							weft_future_try_wait(
								fs[failed]) ==
									0 &&
								weft_future_error(
									fs[failed]) ==
									rc,
							"wait_all = %d names "
							"%zu with error %d",
							rc, failed,
							weft_future_error(
								fs[failed]));
				}
				break;
			}
		} else {
			struct weft_as_completed *it = NULL;
			int rc = weft_as_completed_create(fs, n, &it);
			STRESS_CHECK(rc == 0, "as_completed_create = %d", rc);
			bool seen[MAXN] = {0};
			size_t got = 0;
			while (it) {
				size_t idx = SIZE_MAX;
				int64_t dl = weft_now() + jitter(&rng, 100000);
				rc = weft_as_completed_next(it, dl, &idx);
				int64_t after = weft_now();
				stress_progress();
				if (rc == -ENOENT)
					break;
				if (rc == -ETIMEDOUT) {
					STRESS_CHECK(after >= dl,
						     "as_completed_next: "
						     "-ETIMEDOUT %lld ns early",
						     (long long)(dl - after));
					note_late(after - dl);
					continue;
				}
				STRESS_CHECK(rc == 0 && idx < n,
					     "as_completed_next = %d, %zu", rc,
					     idx);
				if (rc != 0 || idx >= n)
					break;
				STRESS_CHECK(!seen[idx],
					     "as_completed gave %zu twice", idx);
				STRESS_CHECK(weft_future_try_wait(fs[idx]) == 0,
					     "as_completed gave %zu before it "
					     "completed",
					     idx);
				seen[idx] = true;
				got++;
			}
			STRESS_CHECK(got == n, "as_completed gave %zu of %zu",
				     got, n);
			weft_as_completed_destroy(it);
		}
		for (size_t j = 0; j < n; j++) {
			STRESS_CHECK(weft_future_wait(fs[j]) == 0, "wait");
			weft_future_unref(fs[j]);
		}
	}
	(void)index;
}

static void run_phase(const char *name, stress_thread_fn fn, size_t n,
		      unsigned threads, unsigned workers)
{
	struct race ph = {.per_thread = n / threads};
	stress_track_reset(&tr);
	stress_phase("%s: %zu waits from %u threads, %u workers", name,
		     ph.per_thread * threads, threads, workers);
	pool = stress_pool(workers, name);
	struct stress_threads *t = stress_threads_start(threads, fn, &ph, name);
	stress_threads_join(t);
	int rc = weft_pool_shutdown(pool, 0, WEFT_FOREVER);
	STRESS_CHECK(rc == 0, "shutdown = %d", rc);
	stress_table_clear();
	weft_pool_destroy(pool);
	pool = NULL;
	stress_verify(&tr, 0, atomic_load(&tr.next), false, false);
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_deadline");
	stress_table_init(STRESS_TABLE_MAX);
	size_t n_race = stress_scaled(100000, 100);
	size_t n_inner = stress_scaled(60000, 100);
	size_t n_multi = stress_scaled(100000, 100);
	size_t cap = n_race;
	if (n_inner * 2 > cap)
		cap = n_inner * 2;
	if (n_multi + 64 > cap)
		cap = n_multi + 64;
	cap += 64;
	stress_track_init(&tr, cap);
	stress_track_default(&tr);
	timed_args = calloc(cap, sizeof(*timed_args));
	if (!timed_args)
		exit(STRESS_FAIL);

	run_phase("race", race_thread, n_race, 4, 2);
	run_phase("inner", inner_thread, n_inner, 4, 3);
	run_phase("multi", multi_thread, n_multi, 4, 2);

	printf("stress_deadline: %llu waits timed out (latest by %.3f ms), "
	       "%llu returned in time\n",
	       (unsigned long long)atomic_load(&n_timeouts),
	       (double)atomic_load(&max_late_ns) / 1e6,
	       (unsigned long long)atomic_load(&n_in_time));
	free(timed_args);
	stress_track_fini(&tr);
	return stress_finish();
}
