/*
 * stress_obs.c - observability under load (weft/obs.h): weft_pool_stats()
 * read while the workers run, the task event hook, traces and slow-task
 * reports.
 *
 * The load (every round): outside threads submit root tasks (a window of
 * futures each, some detached), make I/O nops and blocking calls of their
 * own, and now and then let the pool go idle and submit one wide fork/join
 * tree whose children idle workers steal; each task runs a random list of
 * operations:
 *   sub    weft_submit 1-3 children (a smaller tree, or leaves), wait for
 *          them (get / wait) or detach them;
 *   fork   a weft_spawn / weft_join tree 3-8 deep whose leaves yield,
 *          sleep or spin, so that parents suspend in their joins (their
 *          unjoined children are evacuated), or (half the trees) only
 *          spin, so that idle workers steal children;
 *   sleep  weft_sleep, 0-30 us;  yield  weft_yield;
 *   nop    weft_io_nop + weft_io_await;
 *   call   weft_submit_blocking + weft_future_get (the call sometimes makes
 *          a nop of its own, from the call pool's thread);
 *   stats  weft_pool_stats() from inside the task;
 *   spin   a few microseconds (rarely, in the trace phase, longer than the
 *          slow-task threshold).
 *
 * Phases:
 *   stats   rounds on pools of 2, 3 and 4 workers with an on_task_event
 *           hook counting every event by kind, by class of function
 *           (submitted tasks, fork children, other) and by worker. Two
 *           reader threads call weft_pool_stats() in a loop, through the
 *           drain too, and check what holds even on a racy read: each
 *           per-worker counter (and each total) never decreases between
 *           two reads by the same reader, fibers == in_use + pooled, total
 *           == the sum of the per-worker structs. After
 *           weft_pool_shutdown() (counts exact): the hook's events against
 *           our own counts and against the counters, worker by worker
 *           (see check_final()). A last, smaller round with no_stats:
 *           -ENOTSUP, the counters stay 0, the hook and the I/O, queue
 *           and fiber figures still add up.
 *   trace   rounds with trace_events = 4096 (the rings wrap many times),
 *           slow_task_ns = 200 us with an on_slow_task counter, and the
 *           hook: the same load (io backend auto, then blocking), while
 *           the readers also call weft_pool_trace_write() again and again,
 *           which must return -EBUSY until the pool has shut down (the
 *           readers go on calling through the shutdown, which stresses the
 *           shutdown lock; the first call after it writes a file). After
 *           the shutdown the main thread writes the trace too, and both
 *           files are checked: the header, "]}" and a newline at the end,
 *           one event per line, per tid every "E" closes an open "B" and
 *           none stays open, every async "e" closes an open "b" of the
 *           same id and category and none stays open.
 *   env     a few small pools created with WEFT_TRACE (and
 *           WEFT_SLOW_TASK_MS) in the environment and a hook, a short
 *           burst of work with one task that spins past the threshold,
 *           and a destroy that must write the file (checked as above).
 *
 * The traces go to /tmp/stress_obs.<pid>.*.json and are removed after the
 * check; set STRESS_OBS_KEEP=1 to keep them (for Perfetto).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weft/async.h>
#include <weft/io.h>
#include <weft/obs.h>

#include "stress.h"

#define US 1000LL
#define MS (1000LL * 1000)

enum {
	MAXW = 4,       /* most workers in a round */
	THREADS = 2,    /* outside submitters */
	READERS = 2,    /* stats readers */
	WINDOW = 8,     /* futures an outside thread keeps */
	TRACE_EVENTS = 4096,
	SLOW_NS = 200 * US,
};

/* ---- the task event hook ------------------------------------------------ */

enum { CL_TASK, CL_FORK, CL_OTHER, NCLASS };
#define NEV 5

struct hook_counts {
	/* [event][class][task == NULL] */
	_Atomic uint64_t n[NEV][NCLASS][2];
	/* [event][worker + 1]: index 0 is "no worker" (CREATED outside) */
	_Atomic uint64_t by_worker[NEV][MAXW + 1];
	_Atomic uint64_t bad; /* events that broke the contract */
	unsigned nworkers;
};

static int mixed_task(void *arg, void **res);
static int leaf_task(void *arg, void **res);
static int slow_task(void *arg, void **res);
static int fork_root_task(void *arg, void **res);
static int fork_fn(void *arg, void **res);

static void cnt(_Atomic uint64_t *c)
{
	/* relaxed: read after the threads that count have been joined */
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void on_event(const struct weft_task_event_info *ev, void *arg)
{
	struct hook_counts *h = arg;
	unsigned e = (unsigned)ev->event;
	int cl;

	if (e >= NEV || ev->worker < -1 || ev->worker >= (int)h->nworkers ||
	    (ev->worker == -1 && e != WEFT_TASK_CREATED)) {
		cnt(&h->bad);
		return;
	}
	if (ev->fn == (void *)mixed_task || ev->fn == (void *)leaf_task ||
	    ev->fn == (void *)slow_task || ev->fn == (void *)fork_root_task)
		cl = CL_TASK;
	else if (ev->fn == (void *)fork_fn)
		cl = CL_FORK;
	else
		cl = CL_OTHER;
	/* Only stolen fork children have no future, and they are never
	 * CREATED. */
	if (!ev->task && (cl != CL_FORK || e == WEFT_TASK_CREATED))
		cnt(&h->bad);
	cnt(&h->n[e][cl][ev->task == NULL]);
	cnt(&h->by_worker[e][ev->worker + 1]);
}

static uint64_t hk(struct hook_counts *h, unsigned e, int cl, int null)
{
	return atomic_load_explicit(&h->n[e][cl][null], memory_order_relaxed);
}

/* Events of kind @e, every class, with and without a future. */
static uint64_t hk_all(struct hook_counts *h, unsigned e)
{
	uint64_t s = 0;

	for (int cl = 0; cl < NCLASS; cl++)
		s += hk(h, e, cl, 0) + hk(h, e, cl, 1);
	return s;
}

static uint64_t hk_w(struct hook_counts *h, unsigned e, int worker)
{
	return atomic_load_explicit(&h->by_worker[e][worker + 1],
				    memory_order_relaxed);
}

/* ---- slow-task reports -------------------------------------------------- */

struct slow_counts {
	_Atomic uint64_t n;
	_Atomic uint64_t bad;
	int64_t threshold;
	unsigned nworkers;
};

static void on_slow(void *fn, int64_t ns, int worker, void *arg)
{
	struct slow_counts *s = arg;

	(void)fn;
	if (ns < s->threshold || worker < 0 || worker >= (int)s->nworkers)
		cnt(&s->bad);
	cnt(&s->n);
}

/* ---- the round: a pool and what its load counted ------------------------ */

struct round {
	struct weft_pool *pool;
	unsigned nworkers;
	bool trace;   /* the readers call weft_pool_trace_write() */
	bool no_stats;
	unsigned long_spin_one_in; /* tasks spinning past SLOW_NS; 0: none */
	size_t roots_per_thread;

	struct hook_counts hook;
	struct slow_counts slow;

	/* What the load did (relaxed counters, read after the joins). */
	_Atomic uint64_t submits;        /* weft_submit returned 0 */
	_Atomic uint64_t nops_task;      /* nops started by tasks */
	_Atomic uint64_t nops_other;     /* ... by threads and calls */
	_Atomic uint64_t calls;          /* weft_submit_blocking */
	_Atomic uint64_t forks;          /* fork trees run */
	_Atomic uint64_t long_spins;     /* spins past SLOW_NS */

	/* Readers. */
	_Atomic bool stop;
	_Atomic bool shutdown_started;
	_Atomic uint64_t reads;
	_Atomic uint64_t busy;           /* trace_write() == -EBUSY */
	char trace_path[READERS][128];   /* written by a reader, or "" */
};

static struct round *R;

/* Totals over the rounds, for the last line (main thread only). */
static struct {
	uint64_t submits, evacuated, stolen, suspends, steals, reads, busy,
		slow;
} sum_all;

static void count(_Atomic uint64_t *c)
{
	cnt(c);
	stress_progress();
}

/* ---- tasks -------------------------------------------------------------- */

/* Arguments pack a seed and a depth: (seed & ~15) | depth. */
static void *pack(uint64_t seed, unsigned depth)
{
	return (void *)(uintptr_t)((seed & ~(uint64_t)15) | depth);
}

static unsigned depth_of(void *arg)
{
	return (unsigned)((uintptr_t)arg & 15);
}

static void *leaf_value(void *arg)
{
	return (void *)((uintptr_t)arg * 2 + 1);
}

/* Holds its worker past the slow-task threshold, without waiting. */
static int slow_task(void *arg, void **res)
{
	stress_count_task();
	stress_spin_ns(SLOW_NS + 100 * US);
	count(&R->long_spins);
	*res = leaf_value(arg);
	return 0;
}

static int leaf_task(void *arg, void **res)
{
	uint64_t h = stress_mix((uintptr_t)arg);

	stress_count_task();
	if (R->long_spin_one_in && h % R->long_spin_one_in == 0) {
		stress_spin_ns(SLOW_NS + 100 * US);
		count(&R->long_spins);
	} else if (h % 8 == 0) {
		stress_spin_ns((int64_t)(h >> 40) % (5 * US));
	}
	*res = leaf_value(arg);
	return 0;
}

/* Fork trees carry flags in their arguments, above the depth. WAITS: the
 * leaves wait now and then (their parents suspend in weft_join, and the
 * children they have not joined yet are evacuated); without it they only
 * spin, so that children are stolen by idle workers rather than
 * evacuated. LONG_LEAVES: the leaves spin 10-30 us, so that the tree
 * lasts long enough for parked workers to wake up and steal from it. */
#define WAITS ((uint64_t)16)
#define LONG_LEAVES ((uint64_t)32)

static void *pack_fork(uint64_t seed, unsigned depth, uint64_t flags)
{
	return (void *)(uintptr_t)((seed & ~(uint64_t)63) | flags | depth);
}

/* A fork/join tree: returns the number of its leaves (2^depth). */
static int fork_fn(void *arg, void **res)
{
	unsigned d = depth_of(arg);
	uint64_t flags = (uintptr_t)arg & (WAITS | LONG_LEAVES);
	uint64_t h = stress_mix((uintptr_t)arg);

	if (d == 0) {
		if ((flags & WAITS) && h % 4 == 0)
			(void)weft_yield();
		else if ((flags & WAITS) && h % 8 == 1)
			(void)weft_sleep((int64_t)(h >> 40) % (20 * US));
		else if (flags & LONG_LEAVES)
			stress_spin_ns(10 * US + (int64_t)(h >> 40) % (20 * US));
		else if (h % 2)
			stress_spin_ns((int64_t)(h >> 40) % (3 * US));
		*res = (void *)(uintptr_t)1;
		return 0;
	}
	struct weft_spawn sp;
	void *v1 = NULL, *v2 = NULL;
	int e1, e2;

	weft_spawn(&sp, fork_fn, pack_fork(stress_mix(h + 1), d - 1, flags));
	e2 = fork_fn(pack_fork(stress_mix(h + 2), d - 1, flags), &v2);
	e1 = weft_join(&sp, &v1);
	if (e1 || e2)
		return e1 ? e1 : e2;
	*res = (void *)((uintptr_t)v1 + (uintptr_t)v2);
	return 0;
}

static int call_fn(void *arg, void **res)
{
	uint64_t h = stress_mix((uintptr_t)arg);

	if (h % 4 == 0) {
		/* A nop from the call pool's thread: an outside submission
		 * as far as the counters go. */
		struct weft_future *f = NULL;
		int rc = weft_io_nop(R->pool, WEFT_FOREVER, &f);

		/* The call pool's threads are outside threads: refused once
		 * the shutdown has begun (a task may make a call while the
		 * pool drains). */
		STRESS_CHECK(rc == 0 || (rc == -ESHUTDOWN &&
					 atomic_load(&R->shutdown_started)),
			     "nop from a call = %d", rc);
		if (rc == 0) {
			cnt(&R->nops_other);
			STRESS_CHECK(weft_io_await(f) == 0, "nop from a call");
		}
	} else {
		stress_spin_ns((int64_t)(h >> 40) % (10 * US));
	}
	*res = leaf_value(arg);
	return 0;
}

static void check_stats_shape(const struct weft_pool_stats *s,
			      const struct weft_worker_stats *pw, unsigned n,
			      int rc);

static void op_sub(uint64_t *rng, unsigned depth)
{
	struct weft_future *f[3];
	void *args[3];
	unsigned k = 1 + (unsigned)stress_below(rng, 3);

	for (unsigned i = 0; i < k; i++) {
		bool mixed = depth > 0 && stress_below(rng, 2);
		bool detach = stress_below(rng, 4) == 0;

		args[i] = pack(stress_rand(rng), mixed ? depth - 1 : 0);
		f[i] = NULL;
		int rc = weft_submit(R->pool, mixed ? mixed_task : leaf_task,
				     args[i], detach ? NULL : &f[i]);
		STRESS_CHECK(rc == 0, "submit from a task = %d", rc);
		if (rc == 0)
			count(&R->submits);
	}
	for (unsigned i = 0; i < k; i++) {
		void *v = NULL;
		int rc;

		if (!f[i])
			continue;
		if (stress_below(rng, 2)) {
			rc = weft_future_get(f[i], &v);
			STRESS_CHECK(rc == 0, "get(child) = %d", rc);
		} else {
			rc = weft_future_wait(f[i]);
			STRESS_CHECK(rc == 0, "wait(child) = %d", rc);
			v = weft_future_value(f[i]);
		}
		STRESS_CHECK(v == leaf_value(args[i]), "child value %p", v);
		weft_future_unref(f[i]);
	}
}

static void op_fork(uint64_t *rng)
{
	unsigned d = 3 + (unsigned)stress_below(rng, 6);
	void *v = NULL;
	uint64_t waits = stress_below(rng, 2) ? WAITS : 0;
	int rc = fork_fn(pack_fork(stress_rand(rng), d, waits), &v);

	STRESS_CHECK(rc == 0 && v == (void *)((uintptr_t)1 << d),
		     "fork tree of depth %u = %d, %p leaves", d, rc, v);
	count(&R->forks);
}

/* A root of its own: a wide tree of spinning fork children, submitted
 * when the pool is otherwise idle, so that the idle workers steal them. */
static int fork_root_task(void *arg, void **res)
{
	void *v = NULL;
	unsigned d = 5 + depth_of(arg) % 4;
	int rc = fork_fn(pack_fork(stress_mix((uintptr_t)arg), d, LONG_LEAVES), &v);

	stress_count_task();
	STRESS_CHECK(rc == 0 && v == (void *)((uintptr_t)1 << d),
		     "fork root of depth %u = %d, %p leaves", d, rc, v);
	count(&R->forks);
	*res = leaf_value(arg);
	return 0;
}

static void op_nop(_Atomic uint64_t *ctr)
{
	struct weft_future *f = NULL;
	int rc = weft_io_nop(R->pool, WEFT_FOREVER, &f);

	STRESS_CHECK(rc == 0 && f, "nop = %d", rc);
	if (rc != 0)
		return;
	count(ctr);
	int64_t r = weft_io_await(f);
	STRESS_CHECK(r == 0, "nop await = %lld", (long long)r);
}

static void op_call(uint64_t *rng)
{
	struct weft_future *f = NULL;
	void *arg = (void *)(uintptr_t)stress_rand(rng);
	void *v = NULL;
	int rc = weft_submit_blocking(R->pool, call_fn, arg, &f);

	STRESS_CHECK(rc == 0 && f, "submit_blocking = %d", rc);
	if (rc != 0)
		return;
	count(&R->calls);
	rc = weft_future_get(f, &v);
	STRESS_CHECK(rc == 0 && v == leaf_value(arg), "call = %d, %p", rc, v);
	weft_future_unref(f);
}

static void op_stats(void)
{
	struct weft_pool_stats s;
	struct weft_worker_stats pw[MAXW];
	int rc = weft_pool_stats(R->pool, &s, pw, R->nworkers);

	check_stats_shape(&s, pw, R->nworkers, rc);
}

static int mixed_task(void *arg, void **res)
{
	uint64_t rng = stress_mix((uintptr_t)arg ^ 0x0b5);
	unsigned depth = depth_of(arg);
	unsigned n = 1 + (unsigned)stress_below(&rng, 3);

	stress_count_task();
	for (unsigned i = 0; i < n; i++) {
		unsigned op = (unsigned)stress_below(&rng, 100);

		if (op < 22)
			op_sub(&rng, depth);
		else if (op < 40)
			op_fork(&rng);
		else if (op < 50)
			(void)weft_sleep((int64_t)stress_below(&rng, 30 * US));
		else if (op < 62)
			(void)weft_yield();
		else if (op < 74)
			op_nop(&R->nops_task);
		else if (op < 84)
			op_call(&rng);
		else if (op < 88)
			op_stats();
		else if (R->long_spin_one_in &&
			 stress_below(&rng, R->long_spin_one_in) == 0) {
			stress_spin_ns(SLOW_NS + 100 * US);
			count(&R->long_spins);
		} else {
			stress_spin_ns((int64_t)stress_below(&rng, 5 * US));
		}
	}
	*res = leaf_value(arg);
	return 0;
}

/* ---- outside threads ---------------------------------------------------- */

struct held {
	struct weft_future *f;
	void *arg;
};

static void consume(struct held *h, uint64_t *rng)
{
	void *v = NULL;
	int rc;

	stress_where("waiting for a root", (uintptr_t)h->arg);
	if (stress_below(rng, 2)) {
		rc = weft_future_get(h->f, &v);
	} else {
		while ((rc = weft_future_wait_until(h->f, weft_now() + MS)) ==
		       -ETIMEDOUT)
			;
		v = weft_future_value(h->f);
	}
	STRESS_CHECK(rc == 0 && v == leaf_value(h->arg), "root = %d, %p", rc,
		     v);
	weft_future_unref(h->f);
	h->f = NULL;
	stress_where("submitting", 0);
}

static void submitter_main(void *arg, unsigned index)
{
	struct round *r = arg;
	uint64_t rng = stress_stream(1000 + index + 16 * r->nworkers +
				     (r->trace ? 128 : 0));
	struct held win[WINDOW];
	size_t nwin = 0;

	stress_where("submitting", 0);
	for (size_t i = 0; i < r->roots_per_thread; i++) {
		unsigned kind = (unsigned)stress_below(&rng, 16);
		void *a = pack(stress_rand(&rng), kind < 12 ? 2 : 0);
		weft_task_fn fn = kind < 12 ? mixed_task : leaf_task;
		bool detach = stress_below(&rng, 8) == 0;
		struct weft_future *f = NULL;
		int rc = weft_submit(r->pool, fn, a, detach ? NULL : &f);

		STRESS_CHECK(rc == 0, "submit root = %d", rc);
		if (rc == 0)
			count(&r->submits);
		if (f) {
			if (nwin == WINDOW) {
				size_t k = stress_below(&rng, WINDOW);

				consume(&win[k], &rng);
				win[k] = win[--nwin];
			}
			win[nwin++] = (struct held){f, a};
		}
		if (i % 16 == 5) {
			stress_where("nop", i);
			op_nop(&r->nops_other);
		}
		if (i % 32 == 9) {
			stress_where("call", i);
			op_call(&rng);
		}
		if (stress_below(&rng, 128) == 0)
			stress_sleep_ns((int64_t)stress_below(&rng, 300 * US));
		if (i % 64 == 63) {
			/* Let the pool go idle, then give it one wide fork
			 * tree: thieves take its children. */
			while (nwin)
				consume(&win[--nwin], &rng);
			struct held fr = {NULL, pack(stress_rand(&rng),
						     (unsigned)i & 3)};
			int rc = weft_submit(r->pool, fork_root_task, fr.arg,
					     &fr.f);

			STRESS_CHECK(rc == 0, "submit fork root = %d", rc);
			if (rc == 0) {
				count(&r->submits);
				consume(&fr, &rng);
			}
		}
	}
	while (nwin)
		consume(&win[--nwin], &rng);
	stress_where("done", 0);
}

/* ---- readers ------------------------------------------------------------ */

/* The counters that only grow. */
#define MONO_FIELDS(X)                                                       \
	X(tasks_run) X(tasks_completed) X(submitted) X(steals)               \
	X(steal_failures) X(inject_taken) X(parks) X(wakeups) X(suspends)    \
	X(resumes) X(io_submitted)

static void check_mono(const struct weft_worker_stats *prev,
		       const struct weft_worker_stats *now, const char *who,
		       int worker)
{
#define X(f)                                                                 \
	STRESS_CHECK(now->f >= prev->f,                                      \
		     "%s %d: " #f " went from %llu down to %llu", who,       \
		     worker, (unsigned long long)prev->f,                    \
		     (unsigned long long)now->f);
	MONO_FIELDS(X)
#undef X
}

/* What holds of every read, however racy. */
static void check_stats_shape(const struct weft_pool_stats *s,
			      const struct weft_worker_stats *pw, unsigned n,
			      int rc)
{
	struct weft_worker_stats sum;

	STRESS_CHECK(rc == (R->no_stats ? -ENOTSUP : 0),
		     "weft_pool_stats = %d (no_stats %d)", rc, R->no_stats);
	STRESS_CHECK(s->workers == n, "stats: %u workers, want %u", s->workers,
		     n);
	STRESS_CHECK(s->fibers == s->fibers_in_use + s->fibers_pooled,
		     "stats: fibers %llu != in use %llu + pooled %llu",
		     (unsigned long long)s->fibers,
		     (unsigned long long)s->fibers_in_use,
		     (unsigned long long)s->fibers_pooled);
	STRESS_CHECK(s->completed == s->total.tasks_completed,
		     "stats: completed %llu != total.tasks_completed %llu",
		     (unsigned long long)s->completed,
		     (unsigned long long)s->total.tasks_completed);
	STRESS_CHECK(s->submitted == s->total.submitted + s->submitted_outside,
		     "stats: submitted %llu != %llu + %llu",
		     (unsigned long long)s->submitted,
		     (unsigned long long)s->total.submitted,
		     (unsigned long long)s->submitted_outside);
	memset(&sum, 0, sizeof(sum));
	for (unsigned i = 0; i < n; i++) {
#define X(f) sum.f += pw[i].f;
		MONO_FIELDS(X)
		X(deque_depth) X(fibers_cached)
#undef X
	}
#define X(f)                                                                 \
	STRESS_CHECK(sum.f == s->total.f,                                    \
		     "stats: total." #f " %llu != sum over workers %llu",    \
		     (unsigned long long)s->total.f,                         \
		     (unsigned long long)sum.f);
	MONO_FIELDS(X)
	X(deque_depth) X(fibers_cached)
#undef X
	if (R->no_stats) {
		STRESS_CHECK(s->total.tasks_run == 0 &&
				     s->total.submitted == 0 &&
				     s->total.suspends == 0,
			     "no_stats: counters moved (run %llu, submitted "
			     "%llu, suspends %llu)",
			     (unsigned long long)s->total.tasks_run,
			     (unsigned long long)s->total.submitted,
			     (unsigned long long)s->total.suspends);
	}
}

static void reader_main(void *arg, unsigned index)
{
	struct round *r = arg;
	struct weft_pool_stats s;
	struct weft_worker_stats prev[MAXW], now[MAXW], prev_total;
	bool have_prev = false, wrote = false;
	char path[128];

	memset(&prev_total, 0, sizeof(prev_total));

	snprintf(path, sizeof(path), "/tmp/stress_obs.%d.r%u.json",
		 (int)getpid(), index);
	stress_where("reading stats", 0);
	while (!atomic_load(&r->stop)) {
		int rc = weft_pool_stats(r->pool, &s, now, r->nworkers);

		check_stats_shape(&s, now, r->nworkers, rc);
		if (have_prev) {
			for (unsigned i = 0; i < r->nworkers; i++)
				check_mono(&prev[i], &now[i], "worker", (int)i);
			check_mono(&prev_total, &s.total, "total", -1);
		}
		memcpy(prev, now, sizeof(prev));
		prev_total = s.total;
		have_prev = true;
		cnt(&r->reads);
		if (r->trace && !wrote) {
			stress_where("trace_write", 0);
			rc = weft_pool_trace_write(r->pool, path);
			stress_where("reading stats", 0);
			if (rc == -EBUSY) {
				cnt(&r->busy);
			} else {
				/* Only once the pool has shut down; the flag
				 * is read after the call. */
				STRESS_CHECK(rc == 0 &&
						     atomic_load(
							&r->shutdown_started),
					     "trace_write while running = %d "
					     "(shutdown started %d)",
					     rc,
					     atomic_load(&r->shutdown_started));
				if (rc == 0)
					snprintf(r->trace_path[index],
						 sizeof(r->trace_path[index]),
						 "%s", path);
				wrote = true;
			}
		}
		stress_sleep_ns(100 * US);
	}
	stress_where("done", 0);
}

/* ---- the trace file ----------------------------------------------------- */

/* Open async ids: [id] = 0 closed / never seen, 1 wait, 2 io. */
struct idset {
	uint8_t *cat;
	size_t cap;
};

static bool idset_room(struct idset *s, uint64_t id)
{
	if (id < s->cap)
		return true;
	size_t cap = s->cap ? s->cap : 4096;

	while (cap <= id)
		cap *= 2;
	uint8_t *c = realloc(s->cat, cap);

	if (!c)
		return false;
	memset(c + s->cap, 0, cap - s->cap);
	s->cat = c;
	s->cap = cap;
	return true;
}

struct trace_summary {
	size_t lines, B, b;
};

/*
 * Check the trace at @path (@ntracks: the workers and the io thread): the
 * header, the tail, one event per line, per-tid B/E nesting, b/e pairing by
 * id and category. Returns false if the file could not be read.
 */
static bool check_trace(const char *path, unsigned ntracks,
			struct trace_summary *sum)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	bool ended = false;
	uint64_t depth[MAXW + 1] = {0};
	uint64_t nb = 0, ne = 0, open_async = 0;
	struct idset ids = {0};
	const size_t MAXFAIL = 3;
	size_t fails = 0;

	memset(sum, 0, sizeof(*sum));
	STRESS_CHECK(fp != NULL, "trace %s: cannot open", path);
	if (!fp)
		return false;
#define TFAIL(...)                                                           \
	do {                                                                 \
		if (fails++ < MAXFAIL)                                       \
			stress_fail(__VA_ARGS__);                            \
	} while (0)
	while ((len = getline(&line, &cap, fp)) > 0) {
		lineno++;
		if (line[len - 1] != '\n') {
			TFAIL("trace %s:%zu: no newline at the end", path,
			      lineno);
			break;
		}
		line[--len] = '\0';
		if (lineno == 1) {
			if (strncmp(line, "{\"displayTimeUnit\"", 18) != 0)
				TFAIL("trace %s: starts with %.40s", path,
				      line);
			continue;
		}
		if (ended) {
			TFAIL("trace %s:%zu: a line after ]}", path, lineno);
			break;
		}
		if (strcmp(line, "]}") == 0) {
			ended = true;
			continue;
		}
		if (strncmp(line, "{\"ph\":\"", 7) != 0 || len < 9) {
			TFAIL("trace %s:%zu: not an event: %.60s", path,
			      lineno, line);
			continue;
		}
		/* every event but the last is followed by a comma */
		char ph = line[7];
		const char *t = strstr(line, "\"tid\":");
		unsigned long tid = t ? strtoul(t + 6, NULL, 10) : 0;

		if (ph != 'M' && (!t || tid >= ntracks)) {
			TFAIL("trace %s:%zu: bad tid: %.80s", path, lineno,
			      line);
			continue;
		}
		switch (ph) {
		case 'B':
			depth[tid]++;
			sum->B++;
			break;
		case 'E':
			if (depth[tid] == 0)
				TFAIL("trace %s:%zu: E with no open B on tid "
				      "%lu",
				      path, lineno, tid);
			else
				depth[tid]--;
			break;
		case 'b':
		case 'e': {
			const char *c = strstr(line, "\"cat\":\"");
			const char *i = strstr(line, "\"id\":\"0x");
			uint8_t kind;
			uint64_t id;

			if (!c || !i) {
				TFAIL("trace %s:%zu: async event without cat "
				      "or id: %.80s",
				      path, lineno, line);
				break;
			}
			kind = strncmp(c + 7, "wait\"", 5) == 0 ? 1
			       : strncmp(c + 7, "io\"", 3) == 0 ? 2
								  : 0;
			id = strtoull(i + 8, NULL, 16);
			if (!kind || !idset_room(&ids, id)) {
				TFAIL("trace %s:%zu: bad async event (or out "
				      "of memory): %.80s",
				      path, lineno, line);
				break;
			}
			if (ph == 'b') {
				nb++;
				sum->b++;
				if (ids.cat[id])
					TFAIL("trace %s:%zu: b of id 0x%llx, "
					      "which is open already",
					      path, lineno,
					      (unsigned long long)id);
				else
					open_async++;
				ids.cat[id] = kind;
			} else {
				ne++;
				if (ids.cat[id] != kind) {
					TFAIL("trace %s:%zu: e of id 0x%llx "
					      "(%s) that is not open (%d)",
					      path, lineno,
					      (unsigned long long)id,
					      kind == 1 ? "wait" : "io",
					      ids.cat[id]);
				} else {
					ids.cat[id] = 0;
					open_async--;
				}
			}
			break;
		}
		case 'M':
			break;
		default:
			TFAIL("trace %s:%zu: phase %c", path, lineno, ph);
		}
	}
	sum->lines = lineno;
	STRESS_CHECK(ended, "trace %s: no ]} line (%zu lines)", path, lineno);
	for (unsigned i = 0; i < ntracks; i++)
		STRESS_CHECK(depth[i] == 0, "trace %s: tid %u: %llu B never "
			     "ended", path, i, (unsigned long long)depth[i]);
	STRESS_CHECK(nb == ne && open_async == 0,
		     "trace %s: %llu b, %llu e, %llu async slices left open",
		     path, (unsigned long long)nb, (unsigned long long)ne,
		     (unsigned long long)open_async);
	/* The last bytes: "]}\n". */
	if (fseek(fp, -3, SEEK_END) == 0) {
		char tail[4] = {0};

		STRESS_CHECK(fread(tail, 1, 3, fp) == 3 &&
				     memcmp(tail, "]}\n", 3) == 0,
			     "trace %s: does not end with ]} and a newline",
			     path);
	}
#undef TFAIL
	free(line);
	free(ids.cat);
	fclose(fp);
	return true;
}

/* unlink() unless STRESS_OBS_KEEP is set (to look at the traces). */
static void drop_file(const char *path)
{
	const char *keep = getenv("STRESS_OBS_KEEP");

	if (keep && *keep)
		printf("stress_obs: kept %s\n", path);
	else
		unlink(path);
}

/* ---- final checks ------------------------------------------------------- */

static uint64_t ld(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

#define EQ(a, b, what)                                                       \
	STRESS_CHECK((a) == (b), "%s: %s: %llu != %llu", phase, what,         \
		     (unsigned long long)(a), (unsigned long long)(b))

/*
 * After weft_pool_shutdown() returned 0: every thread that counts has
 * stopped (the workers are joined, the outside threads too), so the counts
 * are exact.
 *
 * Submissions. Every task pushed through the pool's submit path (pool.c
 * push()) is reported CREATED and counted in stats.submitted, except the
 * records of fork children evacuated when their parent suspended (spawn.c
 * weft__forkq_evacuate()): fork children are not submissions. Nothing else
 * in this load pushes (no continuations, groups or maps; the nops and
 * blocking calls go to the io thread and the call pool, not to the
 * queues). So stats.submitted == our submits, and CREATED(fork) == 0.
 *
 * Runs. Each submitted task runs exactly once: STARTED and FINISHED once,
 * with its future. A fork child is reported when a thief ran it (no
 * future) or when a worker ran its evacuated record (with the record as
 * its future); an evacuated child that its own weft_join() claimed back
 * runs as a plain call, with no event. So STARTED(fork, future) ==
 * FINISHED(fork, future).
 */
static void check_final(struct round *r, const char *phase)
{
	struct hook_counts *h = &r->hook;
	struct weft_pool_stats s;
	struct weft_worker_stats pw[MAXW];
	int rc = weft_pool_stats(r->pool, &s, pw, r->nworkers);
	uint64_t submits = ld(&r->submits);
	uint64_t nops = ld(&r->nops_task) + ld(&r->nops_other);

	check_stats_shape(&s, pw, r->nworkers, rc);
	EQ(ld(&h->bad), 0, "hook events that broke the contract");
	for (int cl = 0; cl < NCLASS; cl++)
		if (cl != CL_FORK)
			for (unsigned e = 0; e < NEV; e++)
				if (e != WEFT_TASK_SUSPENDED &&
				    e != WEFT_TASK_RESUMED)
					EQ(hk(h, e, cl, 1), 0,
					   "events with no future, not of a "
					   "fork child");
	EQ(hk(h, WEFT_TASK_CREATED, CL_TASK, 0), submits,
	   "CREATED (submitted tasks) vs our submits");
	EQ(hk(h, WEFT_TASK_STARTED, CL_TASK, 0), submits,
	   "STARTED (submitted tasks) vs our submits");
	EQ(hk(h, WEFT_TASK_FINISHED, CL_TASK, 0), submits,
	   "FINISHED (submitted tasks) vs our submits");
	EQ(hk(h, WEFT_TASK_CREATED, CL_OTHER, 0), 0, "CREATED (other fns)");
	EQ(hk(h, WEFT_TASK_STARTED, CL_FORK, 1),
	   hk(h, WEFT_TASK_FINISHED, CL_FORK, 1),
	   "STARTED vs FINISHED of stolen fork children (no future)");
	EQ(hk(h, WEFT_TASK_STARTED, CL_FORK, 0),
	   hk(h, WEFT_TASK_FINISHED, CL_FORK, 0),
	   "STARTED vs FINISHED of evacuated fork children");
	/* Fork children are not submissions: no CREATED, evacuated or
	 * stolen (weft/obs.h). */
	EQ(hk(h, WEFT_TASK_CREATED, CL_FORK, 0), 0,
	   "CREATED of evacuated fork children");
	EQ(hk_all(h, WEFT_TASK_SUSPENDED), hk_all(h, WEFT_TASK_RESUMED),
	   "SUSPENDED vs RESUMED");

	/* The queues and the io thread are empty. */
	EQ(s.io_submitted, nops, "io_submitted vs our nops");
	EQ(s.io_completed, s.io_submitted, "io_completed vs io_submitted");
	EQ(s.io_in_flight, 0, "io_in_flight");
	EQ(s.blocking_in_flight, 0, "blocking_in_flight");
	EQ(s.inject_depth, 0, "inject_depth");
	EQ(s.total.deque_depth, 0, "total.deque_depth");
	STRESS_CHECK(s.fibers > 0 && s.stack_bytes > 0,
		     "%s: fibers %llu, stack bytes %llu", phase,
		     (unsigned long long)s.fibers,
		     (unsigned long long)s.stack_bytes);

	/* Outside submissions: every CREATED on a thread that is not a
	 * worker. */
	EQ(s.submitted_outside, hk_w(h, WEFT_TASK_CREATED, -1),
	   "submitted_outside vs CREATED outside the workers");
	if (r->no_stats)
		return;

	EQ(s.submitted, submits, "stats.submitted vs our submits");
	EQ(s.submitted, hk_all(h, WEFT_TASK_CREATED),
	   "stats.submitted vs CREATED");
	EQ(s.completed, s.total.tasks_completed, "completed");
	EQ(s.total.tasks_run, hk_all(h, WEFT_TASK_STARTED),
	   "total.tasks_run vs STARTED");
	EQ(s.total.tasks_completed, hk_all(h, WEFT_TASK_FINISHED),
	   "total.tasks_completed vs FINISHED");
	EQ(s.total.suspends, s.total.resumes, "total.suspends vs resumes");
	EQ(s.total.suspends, hk_all(h, WEFT_TASK_SUSPENDED),
	   "total.suspends vs SUSPENDED");
	EQ(s.total.io_submitted, ld(&r->nops_task),
	   "total.io_submitted vs nops from tasks");
	for (unsigned i = 0; i < r->nworkers; i++) {
		char what[64];

#define PER(ev, f)                                                           \
	snprintf(what, sizeof(what), "worker %u: " #f " vs " #ev, i);        \
	EQ(pw[i].f, hk_w(h, WEFT_TASK_##ev, (int)i), what);
		PER(CREATED, submitted)
		PER(STARTED, tasks_run)
		PER(FINISHED, tasks_completed)
		PER(SUSPENDED, suspends)
		PER(RESUMED, resumes)
#undef PER
	}
	sum_all.submits += submits;
	sum_all.evacuated += hk(h, WEFT_TASK_STARTED, CL_FORK, 0);
	sum_all.stolen += hk(h, WEFT_TASK_STARTED, CL_FORK, 1);
	sum_all.suspends += s.total.suspends;
	sum_all.steals += s.total.steals;
	sum_all.reads += ld(&r->reads);
	sum_all.busy += ld(&r->busy);
	sum_all.slow += ld(&r->slow.n);
	stress_log("%s: %llu submits, %llu evacuated fork children run by a "
		   "worker, "
		   "%llu stolen, %llu suspends, %llu steals, %llu steal "
		   "failures, %llu parks, %llu nops, %llu calls, %llu fork "
		   "trees, %llu reads, %llu fibers",
		   phase, (unsigned long long)submits,
		   (unsigned long long)hk(h, WEFT_TASK_STARTED, CL_FORK, 0),
		   (unsigned long long)hk(h, WEFT_TASK_STARTED, CL_FORK, 1),
		   (unsigned long long)s.total.suspends,
		   (unsigned long long)s.total.steals,
		   (unsigned long long)s.total.steal_failures,
		   (unsigned long long)s.total.parks,
		   (unsigned long long)nops, (unsigned long long)ld(&r->calls),
		   (unsigned long long)ld(&r->forks),
		   (unsigned long long)ld(&r->reads),
		   (unsigned long long)s.fibers);
}

/* ---- rounds ------------------------------------------------------------- */

static struct weft_pool *make_pool(const struct weft_pool_options *o)
{
	struct weft_pool *p = NULL;
	int rc = weft_pool_create(o, &p);

	if (rc == -EAGAIN)
		stress_skip("weft_pool_create: the system refused a thread");
	if (rc != 0 || !p) {
		stress_fail("weft_pool_create(%u workers) = %d", o->workers,
			    rc);
		exit(stress_finish());
	}
	return p;
}

static void run_round(const char *phase, unsigned nworkers, bool trace,
		      bool no_stats, unsigned io_backend, size_t roots)
{
	struct round *r = calloc(1, sizeof(*r));
	struct weft_pool_options o;
	char main_path[128];

	if (!r) {
		stress_fail("out of memory");
		return;
	}
	stress_phase("%s: %u workers, %zu roots per thread%s%s", phase,
		     nworkers, roots, trace ? ", tracing" : "",
		     no_stats ? ", no_stats" : "");
	r->nworkers = nworkers;
	r->trace = trace;
	r->no_stats = no_stats;
	r->roots_per_thread = roots;
	r->long_spin_one_in = trace ? 512 : 0;
	r->hook.nworkers = nworkers;
	r->slow.nworkers = nworkers;
	r->slow.threshold = SLOW_NS;

	weft_pool_options_init(&o);
	o.workers = nworkers;
	o.name = trace ? "obs-trace" : "obs";
	o.io_backend = io_backend;
	o.on_task_event = on_event;
	o.task_hook_arg = &r->hook;
	o.no_stats = no_stats;
	if (trace) {
		o.trace_events = TRACE_EVENTS;
		o.slow_task_ns = SLOW_NS;
		o.on_slow_task = on_slow;
		o.slow_task_arg = &r->slow;
	}
	r->pool = make_pool(&o);
	R = r;
	if (!trace)
		STRESS_CHECK(weft_pool_trace_write(r->pool, "/nonexistent") ==
				     -ENODATA,
			     "trace_write with tracing off");

	struct stress_threads *readers =
		stress_threads_start(READERS, reader_main, r, "reader");
	struct stress_threads *subs =
		stress_threads_start(THREADS, submitter_main, r, "submitter");

	stress_threads_join(subs);
	/* A trace in the long-spin rounds must see at least one report:
	 * make sure one task spins past the threshold. */
	if (trace) {
		struct weft_future *f = NULL;
		int rc = weft_submit(r->pool, slow_task, pack(0, 0), &f);

		STRESS_CHECK(rc == 0, "submit the long spin = %d", rc);
		if (rc == 0) {
			count(&r->submits);
			STRESS_CHECK(weft_future_wait(f) == 0, "long spin");
			weft_future_unref(f);
		}
	}
	stress_phase("%s: %u workers: draining shutdown", phase, nworkers);
	atomic_store(&r->shutdown_started, true);
	int rc = weft_pool_shutdown(r->pool, 0, WEFT_FOREVER);

	STRESS_CHECK(rc == 0, "%s: shutdown = %d", phase, rc);
	check_final(r, phase);
	if (trace) {
		struct trace_summary ts;

		snprintf(main_path, sizeof(main_path),
			 "/tmp/stress_obs.%d.main.json", (int)getpid());
		rc = weft_pool_trace_write(r->pool, main_path);
		STRESS_CHECK(rc == 0, "%s: trace_write after shutdown = %d",
			     phase, rc);
		if (rc == 0 && check_trace(main_path, nworkers + 1, &ts))
			stress_log("%s: trace: %zu lines, %zu B, %zu b", phase,
				   ts.lines, ts.B, ts.b);
		drop_file(main_path);
		STRESS_CHECK(ld(&r->slow.n) > 0 && ld(&r->long_spins) > 0,
			     "%s: %llu slow-task reports, %llu long spins",
			     phase, (unsigned long long)ld(&r->slow.n),
			     (unsigned long long)ld(&r->long_spins));
		EQ(ld(&r->slow.bad), 0, "bad slow-task reports");
		STRESS_CHECK(ld(&r->busy) > 0,
			     "%s: no trace_write() returned -EBUSY", phase);
	}
	atomic_store(&r->stop, true);
	stress_threads_join(readers);
	if (trace) {
		for (unsigned i = 0; i < READERS; i++) {
			struct trace_summary ts;

			if (!r->trace_path[i][0])
				continue;
			check_trace(r->trace_path[i], nworkers + 1, &ts);
			drop_file(r->trace_path[i]);
		}
		stress_log("%s: %llu slow-task reports, %llu -EBUSY", phase,
			   (unsigned long long)ld(&r->slow.n),
			   (unsigned long long)ld(&r->busy));
	}
	R = NULL;
	weft_pool_destroy(r->pool);
	free(r);
}

/* ---- env: WEFT_TRACE and WEFT_SLOW_TASK_MS ------------------------------ */

static void run_env(unsigned iters, size_t burst)
{
	const char *phase = "env";
	char path[128];

	snprintf(path, sizeof(path), "/tmp/stress_obs.%d.env.json",
		 (int)getpid());
	for (unsigned it = 0; it < iters; it++) {
		struct round *r = calloc(1, sizeof(*r));
		struct weft_pool_options o;
		struct stat st;
		struct trace_summary ts;
		unsigned nw = 1 + it % 3;

		if (!r) {
			stress_fail("out of memory");
			return;
		}
		stress_phase("env: pool %u of %u, %u workers", it + 1, iters,
			     nw);
		unlink(path);
		r->nworkers = nw;
		r->hook.nworkers = nw;
		r->slow.nworkers = nw;
		r->slow.threshold = SLOW_NS;
		weft_pool_options_init(&o);
		o.workers = nw;
		o.name = "obs-env";
		o.on_task_event = on_event;
		o.task_hook_arg = &r->hook;
		o.on_slow_task = on_slow;
		o.slow_task_arg = &r->slow;
		/* Half the pools take the ring size from the options, the
		 * others the default. */
		if (it % 2)
			o.trace_events = 1024;
		/* No other thread of ours runs here: setenv() is safe. */
		setenv("WEFT_TRACE", path, 1);
		setenv("WEFT_SLOW_TASK_MS", "0.2", 1);
		r->pool = make_pool(&o);
		unsetenv("WEFT_TRACE");
		unsetenv("WEFT_SLOW_TASK_MS");
		R = r;
		uint64_t rng = stress_stream(5000 + it);
		struct weft_future **fs = calloc(burst, sizeof(*fs));
		void **args = calloc(burst, sizeof(*args));

		if (!fs || !args) {
			stress_fail("out of memory");
			exit(stress_finish());
		}
		for (size_t i = 0; i < burst; i++) {
			/* the first one spins past the threshold */
			args[i] = pack(stress_rand(&rng), i == 0 ? 0 : 1);
			int rc = weft_submit(r->pool,
					     i == 0 ? slow_task : mixed_task,
					     args[i], &fs[i]);

			STRESS_CHECK(rc == 0, "env: submit = %d", rc);
			if (rc == 0)
				count(&r->submits);
		}
		for (size_t i = 0; i < burst; i++) {
			void *v = NULL;

			if (!fs[i])
				continue;
			STRESS_CHECK(weft_future_get(fs[i], &v) == 0 &&
					     v == leaf_value(args[i]),
				     "env: task %zu", i);
			weft_future_unref(fs[i]);
		}
		free(fs);
		free(args);
		atomic_store(&r->shutdown_started, true);
		int rc = weft_pool_shutdown(r->pool, 0, WEFT_FOREVER);

		STRESS_CHECK(rc == 0, "env: shutdown = %d", rc);
		check_final(r, "env");
		STRESS_CHECK(ld(&r->slow.n) > 0,
			     "env: no slow-task report with WEFT_SLOW_TASK_MS");
		EQ(ld(&r->slow.bad), 0, "bad slow-task reports");
		STRESS_CHECK(access(path, F_OK) != 0,
			     "env: %s written before the destroy", path);
		R = NULL;
		weft_pool_destroy(r->pool);
		free(r);
		STRESS_CHECK(stat(path, &st) == 0 && st.st_size > 0,
			     "env: WEFT_TRACE=%s not written at destroy", path);
		if (stat(path, &st) == 0 && check_trace(path, nw + 1, &ts))
			stress_log("env: trace: %zu lines, %zu B, %zu b",
				   ts.lines, ts.B, ts.b);
		if (it + 1 < iters)
			unlink(path);
		else
			drop_file(path);
	}
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_obs");

	size_t roots = stress_scaled(600, 40);
	size_t roots_trace = stress_scaled(500, 40);
	size_t burst = stress_scaled(120, 20);
	unsigned env_iters = (unsigned)stress_scaled(6, 3);

	run_round("stats", 2, false, false, WEFT_IO_AUTO, roots);
	run_round("stats", 3, false, false, WEFT_IO_AUTO, roots);
	run_round("stats", 4, false, false, WEFT_IO_BLOCKING, roots);
	run_round("no_stats", 3, false, true, WEFT_IO_AUTO, roots / 4 + 1);
	run_round("trace", 2, true, false, WEFT_IO_AUTO, roots_trace);
	run_round("trace", 4, true, false, WEFT_IO_BLOCKING, roots_trace);
	run_env(env_iters, burst);

	printf("stress_obs: %llu submits, %llu evacuated fork children run, %llu "
	       "stolen, %llu suspends, %llu steals, %llu stats reads, %llu "
	       "trace writes refused (-EBUSY), %llu slow-task reports\n",
	       (unsigned long long)sum_all.submits,
	       (unsigned long long)sum_all.evacuated,
	       (unsigned long long)sum_all.stolen,
	       (unsigned long long)sum_all.suspends,
	       (unsigned long long)sum_all.steals,
	       (unsigned long long)sum_all.reads,
	       (unsigned long long)sum_all.busy,
	       (unsigned long long)sum_all.slow);

	return stress_finish();
}
