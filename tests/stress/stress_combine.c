/*
 * stress_combine.c - continuations and combinators under contention.
 *
 * 4 outside threads (pthreads and C11 threads) each run jobs: a job submits
 * 1-24 source tasks to pool A or B (some fail on purpose, some are
 * cancelled at once, and a canceller thread cancels sources published in a
 * shared table), then combines them one way:
 *   when_all     its on_complete callback checks that every input has
 *                completed and that the error is the lowest-index failure's
 *   when_any     the callback checks the index names a completed input
 *   as_completed every index once, each complete, then -ENOENT (or the
 *                iterator is destroyed part-way)
 *   wait_all     0 only if all succeeded; otherwise the named input has
 *                completed with the returned error
 *   then chain   1-6 continuations alternating between pools A and B; each
 *                checks its antecedent has completed and passes value + 1
 *                on; links may be cancelled
 *   nested       when_all over a when_any, a when_all and a continuation
 *   callbacks    2-5 extra on_complete callbacks per source, registered
 *                from this thread while other threads complete and cancel
 * Combinator futures are sometimes waited for and sometimes dropped at
 * once (their callbacks must fire anyway), and weft_future_cancel() on them
 * must give -EINVAL.
 *
 * Every future, source, continuation or combinator, completes exactly once
 * (stress_future.c); at the end every extra callback has fired.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

static struct stress_track tr;
static struct weft_pool *pool_a, *pool_b;

#define FAIL_ONE_IN 12
#define MAXK 24
#define LINK_ERR (-EPROTO) /* a link whose antecedent did not succeed */

static _Atomic uint64_t cb_registered, cb_fired;
static _Atomic uint64_t n_jobs[8];
static _Atomic bool over;

/* ---- the canceller of sources published in the shared table ------------- */

static void canceller_main(void *arg, unsigned index)
{
	(void)arg;
	uint64_t rng = stress_stream(1300 + index);
	while (!atomic_load(&over)) {
		unsigned k = (unsigned)stress_below(&rng, STRESS_TABLE_MAX);
		size_t id;
		struct weft_future *f = stress_table_get(k, &id);
		if (f) {
			stress_cancel(&tr, id, f);
			weft_future_unref(f);
		}
		if (stress_below(&rng, 8) == 0)
			sched_yield();
	}
}

/* ---- sources and links -------------------------------------------------- */

static int source_task(void *arg, void **result)
{
	size_t id = (size_t)(uintptr_t)arg;
	stress_task_start(&tr, id);
	uint64_t h = stress_mix(id ^ 0x50c);
	if (h % 4 == 0)
		stress_spin_ns((int64_t)(h >> 44) % 20000);
	int err = stress_plan_err(id, FAIL_ONE_IN);
	if (!err)
		*result = stress_plan_value(id);
	return err;
}

static int link_fn(struct weft_future *ante, void *arg, void **result)
{
	size_t id = (size_t)(uintptr_t)arg;
	stress_task_start(&tr, id);
	STRESS_CHECK(weft_future_try_wait(ante) == 0,
		     "link %zu runs before its antecedent completed", id);
	int st = weft_future_state(ante);
	if (st != WEFT_FUTURE_DONE) {
		STRESS_CHECK(weft_future_error(ante) < 0,
			     "link %zu: antecedent state %d, error %d", id, st,
			     weft_future_error(ante));
		return LINK_ERR;
	}
	*result = (void *)((uintptr_t)weft_future_value(ante) + 2);
	return 0;
}

/* ---- jobs --------------------------------------------------------------- */

struct job {
	_Atomic unsigned refs;
	size_t k;
	struct weft_future *src[MAXK];
	size_t src_id[MAXK];
	size_t comb_id;
};

static void job_unref(struct job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) != 1)
		return;
	for (size_t i = 0; i < j->k; i++)
		weft_future_unref(j->src[i]);
	free(j);
}

static int lowest_error(struct weft_future *const *fs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int e = weft_future_error(fs[i]);
		if (e != 0)
			return e;
	}
	return 0;
}

static void when_all_cb(struct weft_future *f, void *arg)
{
	struct job *j = arg;
	stress_complete(&tr, j->comb_id, f);
	for (size_t i = 0; i < j->k; i++)
		STRESS_CHECK(weft_future_try_wait(j->src[i]) == 0,
			     "when_all %zu completed before input %zu (id %zu)",
			     j->comb_id, i, j->src_id[i]);
	int want = lowest_error(j->src, j->k);
	STRESS_CHECK(weft_future_error(f) == want,
		     "when_all %zu: error %d, lowest failing input has %d",
		     j->comb_id, weft_future_error(f), want);
	STRESS_CHECK(weft_future_value(f) == NULL, "when_all value not NULL");
	job_unref(j);
}

static void when_any_cb(struct weft_future *f, void *arg)
{
	struct job *j = arg;
	stress_complete(&tr, j->comb_id, f);
	STRESS_CHECK(weft_future_error(f) == 0, "when_any %zu: error %d",
		     j->comb_id, weft_future_error(f));
	size_t idx = (size_t)(uintptr_t)weft_future_value(f);
	STRESS_CHECK(idx < j->k, "when_any %zu: index %zu of %zu", j->comb_id,
		     idx, j->k);
	if (idx < j->k)
		STRESS_CHECK(weft_future_try_wait(j->src[idx]) == 0,
			     "when_any %zu names input %zu, not complete",
			     j->comb_id, idx);
	job_unref(j);
}

static void extra_cb(struct weft_future *f, void *arg)
{
	STRESS_CHECK(weft_future_try_wait(f) == 0,
		     "callback on an incomplete future");
	(void)arg;
	atomic_fetch_add_explicit(&cb_fired, 1, memory_order_relaxed);
	stress_progress();
}

/* A combinator's future: checks common to all. */
static void comb_common(struct weft_future *c, size_t id)
{
	stress_flag(&tr, id, REC_NO_TASK);
	int rc = weft_future_cancel(c);
	STRESS_CHECK(rc == -EINVAL, "cancel(combinator %zu) = %d", id, rc);
}

static void wait_or_drop(struct weft_future *c, uint64_t *rng)
{
	if (stress_below(rng, 2)) {
		stress_where("waiting for combinator", 0);
		STRESS_CHECK(weft_future_wait(c) == 0, "wait(combinator)");
	}
	weft_future_unref(c);
}

static void do_when_all(struct job *j, uint64_t *rng)
{
	struct weft_future *c = NULL;
	j->comb_id = stress_track_alloc(&tr, 1);
	int rc = weft_when_all(j->src, j->k, &c);
	STRESS_CHECK(rc == 0 && c, "when_all = %d", rc);
	if (rc)
		return;
	comb_common(c, j->comb_id);
	atomic_fetch_add(&j->refs, 1);
	stress_flag(&tr, j->comb_id, REC_WATCHED);
	rc = weft_future_on_complete(c, when_all_cb, j);
	STRESS_CHECK(rc == 0, "on_complete = %d", rc);
	wait_or_drop(c, rng);
}

static void do_when_any(struct job *j, uint64_t *rng)
{
	struct weft_future *c = NULL;
	j->comb_id = stress_track_alloc(&tr, 1);
	int rc = weft_when_any(j->src, j->k, &c);
	STRESS_CHECK(rc == 0 && c, "when_any = %d", rc);
	if (rc)
		return;
	comb_common(c, j->comb_id);
	atomic_fetch_add(&j->refs, 1);
	stress_flag(&tr, j->comb_id, REC_WATCHED);
	rc = weft_future_on_complete(c, when_any_cb, j);
	STRESS_CHECK(rc == 0, "on_complete = %d", rc);
	wait_or_drop(c, rng);
}

static void do_as_completed(struct job *j, uint64_t *rng)
{
	struct weft_as_completed *it = NULL;
	int rc = weft_as_completed_create(j->src, j->k, &it);
	STRESS_CHECK(rc == 0 && it, "as_completed_create = %d", rc);
	if (rc)
		return;
	size_t stop = stress_below(rng, 4) == 0
			      ? (size_t)stress_below(rng, j->k + 1)
			      : j->k;
	bool seen[MAXK] = {0};
	size_t got = 0;
	stress_where("as_completed", 0);
	while (got < stop) {
		size_t idx = SIZE_MAX;
		rc = weft_as_completed_next(it, WEFT_FOREVER, &idx);
		STRESS_CHECK(rc == 0 && idx < j->k, "as_completed_next = %d, %zu",
			     rc, idx);
		if (rc || idx >= j->k)
			break;
		STRESS_CHECK(!seen[idx], "as_completed gave %zu twice", idx);
		STRESS_CHECK(weft_future_try_wait(j->src[idx]) == 0,
			     "as_completed gave %zu before it completed", idx);
		seen[idx] = true;
		got++;
		stress_progress();
	}
	if (got == j->k) {
		size_t idx;
		rc = weft_as_completed_next(it, WEFT_FOREVER, &idx);
		STRESS_CHECK(rc == -ENOENT, "as_completed_next after all = %d",
			     rc);
	}
	weft_as_completed_destroy(it);
}

static void do_wait_all(struct job *j)
{
	size_t failed = 77;
	stress_where("wait_all", 0);
	int rc = weft_future_wait_all(j->src, j->k, WEFT_FOREVER, &failed);
	if (rc == 0) {
		STRESS_CHECK(failed == SIZE_MAX, "wait_all ok, failed %zu",
			     failed);
		for (size_t i = 0; i < j->k; i++)
			STRESS_CHECK(weft_future_try_wait(j->src[i]) == 0 &&
					     weft_future_error(j->src[i]) == 0,
				     "wait_all ok, input %zu: error %d", i,
				     weft_future_error(j->src[i]));
	} else {
		STRESS_CHECK(failed < j->k, "wait_all = %d, failed %zu", rc,
			     failed);
		if (failed < j->k)
			STRESS_CHECK(
				weft_future_try_wait(j->src[failed]) == 0 &&
					weft_future_error(j->src[failed]) == rc,
				"wait_all = %d names input %zu with error %d",
				rc, failed, weft_future_error(j->src[failed]));
	}
	stress_progress();
}

static void do_chain(struct job *j, uint64_t *rng)
{
	size_t s = (size_t)stress_below(rng, j->k);
	unsigned len = 1 + (unsigned)stress_below(rng, 6);
	struct weft_future *ante = j->src[s];
	weft_future_ref(ante);
	size_t base = stress_track_alloc(&tr, len);
	bool broken = false; /* a link was cancelled */
	for (unsigned l = 0; l < len; l++) {
		struct weft_future *c = NULL;
		size_t id = base + l;
		int rc = weft_future_then(l % 2 ? pool_b : pool_a, ante,
					  link_fn, (void *)(uintptr_t)id, &c);
		STRESS_CHECK(rc == 0 && c, "then = %d", rc);
		if (rc) {
			weft_future_unref(ante);
			return;
		}
		stress_flag(&tr, id, REC_SUBMITTED);
		stress_watch(c, id);
		if (stress_below(rng, 10) == 0 &&
		    stress_cancel(&tr, id, c) == 0)
			broken = true;
		weft_future_unref(ante);
		ante = c;
	}
	if (stress_below(rng, 3) == 0) {
		weft_future_unref(ante); /* drop the chain: it still runs */
		return;
	}
	stress_where("waiting for chain", base);
	void *v = NULL;
	int rc = weft_future_get(ante, &v);
	struct weft_future *src = j->src[s];
	int serr = weft_future_error(src);
	if (!broken) {
		if (serr == 0)
			STRESS_CHECK(rc == 0 &&
					     (uintptr_t)v ==
						     (uintptr_t)weft_future_value(
							     src) +
							     2u * len,
				     "chain of %u from source %zu: %d, %p", len,
				     j->src_id[s], rc, v);
		else
			STRESS_CHECK(rc == LINK_ERR,
				     "chain of %u after a failed source: %d",
				     len, rc);
	} else {
		STRESS_CHECK(rc == LINK_ERR || rc == -ECANCELED,
			     "broken chain: %d", rc);
	}
	weft_future_unref(ante);
}

static void do_nested(struct job *j, uint64_t *rng)
{
	if (j->k < 2) {
		do_when_all(j, rng);
		return;
	}
	size_t half = j->k / 2;
	struct weft_future *parts[3] = {0};
	size_t ids[3];
	int rc = weft_when_any(j->src, half, &parts[0]);
	STRESS_CHECK(rc == 0, "when_any = %d", rc);
	rc = weft_when_all(j->src + half, j->k - half, &parts[1]);
	STRESS_CHECK(rc == 0, "when_all = %d", rc);
	ids[2] = stress_track_alloc(&tr, 1);
	rc = weft_future_then(pool_b, parts[1], link_fn,
			      (void *)(uintptr_t)ids[2], &parts[2]);
	STRESS_CHECK(rc == 0, "then(when_all) = %d", rc);
	if (!parts[0] || !parts[1] || !parts[2])
		exit(stress_finish());
	stress_flag(&tr, ids[2], REC_SUBMITTED);
	stress_watch(parts[2], ids[2]);
	ids[0] = stress_track_alloc(&tr, 1);
	ids[1] = stress_track_alloc(&tr, 1);
	for (int i = 0; i < 2; i++) {
		comb_common(parts[i], ids[i]);
		stress_watch(parts[i], ids[i]);
	}
	struct weft_future *all = NULL;
	size_t all_id = stress_track_alloc(&tr, 1);
	rc = weft_when_all(parts, 3, &all);
	STRESS_CHECK(rc == 0, "when_all(nested) = %d", rc);
	comb_common(all, all_id);
	stress_watch(all, all_id);
	for (int i = 0; i < 3; i++)
		weft_future_unref(parts[i]);
	/* when_all of (when_any: error 0; when_all: the lowest failure of
	 * the second half; the link: LINK_ERR exactly when that failed), so
	 * the outer error is the second half's lowest failure */
	stress_where("waiting for nested", all_id);
	STRESS_CHECK(weft_future_wait(all) == 0, "wait nested");
	int want = lowest_error(j->src + half, j->k - half);
	STRESS_CHECK(weft_future_error(all) == want,
		     "nested when_all: error %d, want %d",
		     weft_future_error(all), want);
	weft_future_unref(all);
}

static void run_job(uint64_t *rng, size_t *budget)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		exit(STRESS_FAIL);
	atomic_init(&j->refs, 1);
	j->k = 1 + (size_t)stress_below(rng, MAXK);
	if (j->k > *budget)
		j->k = *budget ? *budget : 1;
	*budget -= j->k < *budget ? j->k : *budget;
	size_t base = stress_track_alloc(&tr, j->k);
	for (size_t i = 0; i < j->k; i++) {
		size_t id = base + i;
		j->src_id[i] = id;
		struct weft_pool *p = stress_below(rng, 2) ? pool_a : pool_b;
		int rc = weft_submit(p, source_task, (void *)(uintptr_t)id,
				     &j->src[i]);
		STRESS_CHECK(rc == 0, "submit = %d", rc);
		if (rc)
			exit(stress_finish());
		stress_flag(&tr, id, REC_SUBMITTED);
		stress_watch(j->src[i], id);
		unsigned x = (unsigned)stress_below(rng, 16);
		if (x == 0)
			stress_cancel(&tr, id, j->src[i]);
		else if (x < 3)
			stress_table_put((unsigned)stress_rand(rng), j->src[i],
					 id);
		if (x < 6) {
			unsigned m = 2 + (unsigned)stress_below(rng, 4);
			for (unsigned c = 0; c < m; c++) {
				atomic_fetch_add(&cb_registered, 1);
				int r2 = weft_future_on_complete(j->src[i],
								 extra_cb, NULL);
				STRESS_CHECK(r2 == 0, "on_complete = %d", r2);
			}
		}
	}
	unsigned what = (unsigned)stress_below(rng, 7);
	atomic_fetch_add(&n_jobs[what], 1);
	switch (what) {
	case 0: do_when_all(j, rng); break;
	case 1: do_when_any(j, rng); break;
	case 2: do_as_completed(j, rng); break;
	case 3: do_wait_all(j); break;
	case 4: do_chain(j, rng); break;
	case 5: do_nested(j, rng); break;
	default:
		/* callbacks only: wait for the sources one by one */
		for (size_t i = 0; i < j->k; i++)
			STRESS_CHECK(weft_future_wait(j->src[i]) == 0, "wait");
		break;
	}
	job_unref(j);
}

struct phase {
	size_t per_thread;
};

static void worker_main(void *arg, unsigned index)
{
	struct phase *ph = arg;
	uint64_t rng = stress_stream(1400 + index);
	size_t budget = ph->per_thread;
	while (budget > 0)
		run_job(&rng, &budget);
	stress_where("done", 0);
}

static void dump(int fd)
{
	stress_dprintf(fd, "  ids %zu, callbacks %llu of %llu fired\n",
		       atomic_load(&tr.next),
		       (unsigned long long)atomic_load(&cb_fired),
		       (unsigned long long)atomic_load(&cb_registered));
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_combine");
	stress_set_dump(dump);
	stress_table_init(STRESS_TABLE_MAX);
	size_t n = stress_scaled(1500000, 400);
	/* per source at most: itself, 6 links or 4 nested ids, 1 combinator */
	stress_track_init(&tr, n * 8 + 1024);
	stress_track_default(&tr);
	pool_a = stress_pool(2, "A");
	pool_b = stress_pool(2, "B");
	struct phase ph = {.per_thread = n / 4};
	stress_phase("combine: %zu sources from 4 threads, 1 canceller, pools "
		     "of 2 + 2 workers",
		     ph.per_thread * 4);
	struct stress_threads *c =
		stress_threads_start(1, canceller_main, NULL, "canceller");
	struct stress_threads *t =
		stress_threads_start(4, worker_main, &ph, "combiner");
	stress_threads_join(t);
	atomic_store(&over, true);
	stress_threads_join(c);
	stress_phase("combine: shutting down");
	STRESS_CHECK(weft_pool_shutdown(pool_a, 0, WEFT_FOREVER) == 0,
		     "shutdown A");
	STRESS_CHECK(weft_pool_shutdown(pool_b, 0, WEFT_FOREVER) == 0,
		     "shutdown B");
	stress_table_clear();
	weft_pool_destroy(pool_a);
	weft_pool_destroy(pool_b);
	stress_verify(&tr, 0, atomic_load(&tr.next), false, false);
	STRESS_CHECK(atomic_load(&cb_fired) == atomic_load(&cb_registered),
		     "%llu of %llu extra callbacks fired",
		     (unsigned long long)atomic_load(&cb_fired),
		     (unsigned long long)atomic_load(&cb_registered));
	printf("stress_combine: jobs: when_all %llu, when_any %llu, "
	       "as_completed %llu, wait_all %llu, chains %llu, nested %llu, "
	       "callbacks %llu; %llu extra callbacks\n",
	       (unsigned long long)n_jobs[0], (unsigned long long)n_jobs[1],
	       (unsigned long long)n_jobs[2], (unsigned long long)n_jobs[3],
	       (unsigned long long)n_jobs[4], (unsigned long long)n_jobs[5],
	       (unsigned long long)n_jobs[6],
	       (unsigned long long)atomic_load(&cb_fired));
	stress_track_fini(&tr);
	return stress_finish();
}
