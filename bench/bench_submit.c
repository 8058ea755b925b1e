/*
 * bench_submit.c - external submission: N tiny tasks submitted from threads
 * outside the pool (1 producer, and 4 producers with N/4 each), to weft and
 * to the mutex + condvar pool (mutex_pool.h), both with the same worker
 * count; with 1 producer, to libuv, oneTBB and OpenMP too. DESIGN.md
 * section 8: "1M tiny tasks from one outside thread".
 *
 * Variants:
 *   mutex          mpool_submit(), completion counted by the pool's group
 *   weft null      weft_submit(..., NULL): no future; the task counts down
 *                  a latch (the same countdown the mutex pool's group does)
 *   weft unref     weft_submit(..., &f) then weft_future_unref(f) at once;
 *                  the task counts down the latch
 *   weft futures   every future kept; each producer waits for its futures,
 *                  checks their values, unrefs them, then counts down
 *   libuv          (1 producer) uv_queue_work() on libuv's thread pool of
 *                  as many threads; the producer is the loop's thread, as
 *                  libuv wants: it queues the N requests, then uv_run()s
 *                  until every after_work callback has run
 *   oneTBB         (1 producer) task_arena::enqueue() into an arena of as
 *                  many worker threads (peers_tbb.cpp); the task counts
 *                  down the latch, as weft null's does
 *   OpenMP         (1 producer) #pragma omp task from a single construct
 *                  in a parallel region of as many threads; the region's
 *                  end is the completion. OpenMP has no submission from
 *                  outside a team: the producer is the team's master, one
 *                  of its threads, and runs tasks too. libgomp also runs a
 *                  task at once in the thread that creates it when more
 *                  than 64 per thread wait, so here the producer runs
 *                  nearly every task itself (the table's "by producer"
 *                  column): a figure near a plain loop's. Compiled only
 *                  when the compiler has OpenMP on (_OPENMP)
 *
 * Every task body adds its index to a tally of the thread that runs it; a
 * run's answer is the number of tasks that ran, right when the count is N
 * and the indices sum to N(N-1)/2 (see struct tally). A wrong answer exits
 * 1, after the report.
 *
 * Producer threads live for the whole program (as an application's threads
 * do), so that thread-local allocator caches stay warm between runs. A run
 * is timed from the moment the producers are released (the first one's
 * start, or main's return from the start barrier if that is earlier) until
 * the last task has completed (the waiting thread blocks on a condition
 * variable, so it takes no core from the workers). Every (producers, variant) pair runs
 * once per round, the variants of one producer count back to back, in an
 * order rotated each round; figures are medians over the rounds, ratios are
 * per-round ratios (median, min..max).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "bench_common.h"
#include "mutex_pool.h"

/* OpenMP needs the compiler's flag too (meson's openmp dependency): without
 * it the pragmas would be ignored and the "peer" would be a plain loop. */
#if BENCH_HAVE_OPENMP && defined(_OPENMP)
#define HAVE_OMP 1
#else
#define HAVE_OMP 0
#endif

#if BENCH_HAVE_LIBUV
#include <uv.h>
#endif
#if BENCH_HAVE_TBB
#include "peers_tbb.h"
#endif

enum variant {
	V_MUTEX, V_WEFT_NULL, V_WEFT_UNREF, V_WEFT_FUTURES, V_LIBUV, V_TBB,
	V_OMP, NVARIANTS
};

static const char *const variant_name[NVARIANTS] = {
	"mutex", "weft_null", "weft_unref", "weft_futures", "libuv", "tbb",
	"openmp",
};
static const char *const variant_text[NVARIANTS] = {
	"mutex pool", "weft submit(NULL)", "weft submit+unref",
	"weft keep futures", "libuv queue_work", "oneTBB enqueue",
	"OpenMP tasks",
};

/* The peers take only one producer: libuv's requests are queued by the
 * loop's thread, OpenMP's tasks by a thread of the team. */
static bool variant_peer(enum variant v)
{
	return v >= V_LIBUV;
}

static bool variant_built(enum variant v)
{
	switch (v) {
	case V_LIBUV:
		return BENCH_HAVE_LIBUV;
	case V_TBB:
		return BENCH_HAVE_TBB;
	case V_OMP:
		return HAVE_OMP;
	default:
		return true;
	}
}

static const unsigned producer_counts[] = { 1, 4 };
#define NPRODUCERS (sizeof(producer_counts) / sizeof(producer_counts[0]))
#define MAX_PRODUCERS 4

struct run;

/* A producer thread lives for the whole program, as the threads of an
 * application that submits work do: its allocator caches stay warm. */
struct producer {
	struct run *run;
	unsigned index;
	size_t begin, end;          /* this run's task indices [begin, end) */
	pthread_t thread;
};

struct run {
	/* Set by main before the start barrier, read-only during a run. */
	enum variant v;
	unsigned producers;            /* active this run: index < producers */
	unsigned workers;              /* threads of every pool */
	bool quit;
	struct mpool *mp;
	struct weft_pool *wp;
#if BENCH_HAVE_LIBUV
	/* Used by producer 0 alone, the loop's thread. */
	uv_loop_t loop;
	uv_work_t *reqs;               /* one per task, allocated once */
	size_t uv_done;                /* after_work callbacks of this run */
	bool uv_failed;                /* one had a status other than 0 */
#endif
#if BENCH_HAVE_TBB
	struct peers_tbb_arena *arena;
#endif
	struct mpool_group group;      /* V_MUTEX */
	struct bench_latch latch;      /* the other variants */
	/* MAX_PRODUCERS + main: every producer passes both, active or not. */
	pthread_barrier_t start, end;
	struct weft_future **futs;     /* V_WEFT_FUTURES: one per task */
	_Atomic int64_t submit_begin;  /* when the first producer started */
	_Atomic uint64_t by_producers; /* tasks the producers ran themselves */
	_Atomic int64_t submit_end;    /* when the last producer finished */
	struct producer pr[MAX_PRODUCERS];
};

/* The run in progress: the tasks reach their latch through it. Written
 * before any producer starts; read-only while the run lasts. */
static struct run *current;

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_submit: %s failed: %s\n", what, strerror(-err));
	exit(1);
}

/* A producer has submitted its share: keep the latest such time. */
static void submitted(struct run *run)
{
	int64_t now = bench_now_ns();
	int64_t prev = atomic_load_explicit(&run->submit_end, memory_order_relaxed);

	while (prev < now &&
	       !atomic_compare_exchange_weak_explicit(&run->submit_end, &prev, now,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

/* A producer starts submitting: keep the earliest such time. Main reads
 * the clock after the start barrier too, but on a busy machine it may get
 * its core back only after the producer has done much of the run. */
static void starting(struct run *run)
{
	int64_t now = bench_now_ns();
	int64_t prev = atomic_load_explicit(&run->submit_begin, memory_order_relaxed);

	while (prev > now &&
	       !atomic_compare_exchange_weak_explicit(&run->submit_begin, &prev, now,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

/*
 * What checks a run's answer: every task adds 1 and its index to the tally
 * of the thread that runs it. One tally per thread, on its own cache line,
 * so that the check adds no shared write to the task it checks (a shared
 * counter would cost every system a contended atomic per task). Main sums
 * and clears them between runs, when no task runs: the run's completion (a
 * latch, a group, a region's barrier) orders every task's writes before
 * main's reads, and the next run's submissions order main's clearing
 * before the tasks' writes.
 */
struct tally {
	_Alignas(64) uint64_t count;
	uint64_t sum;
};

/* Threads that may run a task: the workers of five systems, 4 producers
 * (OpenMP's master), and spares for a runtime that replaces a thread. */
#define MAX_TALLIES (5 * WEFT_MAX_WORKERS + 64)

static struct tally tallies[MAX_TALLIES];
static atomic_uint ntallies;
static _Thread_local struct tally *my_tally;

static OPAQUE struct tally *tally_claim(void)
{
	unsigned i = atomic_fetch_add_explicit(&ntallies, 1, memory_order_relaxed);

	if (i >= MAX_TALLIES) {
		fprintf(stderr, "bench_submit: more than %d threads ran tasks\n",
			MAX_TALLIES);
		abort();
	}
	my_tally = &tallies[i];
	return my_tally;
}

/* The tiny task: a few ALU operations on its argument, and the tally. */
static inline void tiny_work(void *arg)
{
	struct tally *t = my_tally;
	uint64_t x = (uintptr_t)arg + 1;

	if (!t)
		t = tally_claim();
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	bench_keep(x);
	t->count++;
	t->sum += (uintptr_t)arg;
}

/* Sum every thread's tally into *@count and *@sum, and clear them.
 * Returns how many threads ran tasks. */
static unsigned tally_collect(uint64_t *count, uint64_t *sum)
{
	unsigned n = atomic_load_explicit(&ntallies, memory_order_relaxed);
	unsigned threads = 0;

	*count = *sum = 0;
	if (n > MAX_TALLIES)
		n = MAX_TALLIES;
	for (unsigned i = 0; i < n; i++) {
		threads += tallies[i].count != 0;
		*count += tallies[i].count;
		*sum += tallies[i].sum;
		tallies[i].count = tallies[i].sum = 0;
	}
	return threads;
}

static void task_mutex(void *arg)
{
	tiny_work(arg);
}

static int task_weft_latch(void *arg, void **result)
{
	(void)result;
	tiny_work(arg);
	bench_latch_count_down(&current->latch);
	return 0;
}

static int task_weft_value(void *arg, void **result)
{
	tiny_work(arg);
	*result = arg;
	return 0;
}

#if BENCH_HAVE_TBB
/* The same countdown as weft null's: the waiting thread learns of the end
 * from the last task, with no loop of its own to run. */
static void task_tbb(void *arg)
{
	tiny_work(arg);
	bench_latch_count_down(&current->latch);
}
#endif

#if BENCH_HAVE_LIBUV
static void uv_task(uv_work_t *req)
{
	tiny_work(req->data);
}

/* On the loop's thread: counts the requests whose result it has seen. */
static void uv_task_done(uv_work_t *req, int status)
{
	struct run *run = req->loop->data;

	if (status)
		run->uv_failed = true;
	run->uv_done++;
}

/*
 * libuv: the run's time covers the N uv_queue_work() calls (each takes the
 * thread pool's mutex and signals a sleeping pool thread), the tasks on the
 * pool's threads, and the loop's uv_run() until it has run the N
 * after_work callbacks, which is when a libuv program learns that its
 * work is done. The uv_work_t requests are allocated once, before the
 * first run, and reused: their allocation is not timed (weft's and the
 * mutex pool's per-task allocations are, inside their submit calls).
 */
static void produce_libuv(struct run *run, size_t begin, size_t end)
{
	int err;

	run->uv_done = 0;
	run->uv_failed = false;
	for (size_t i = begin; i < end; i++) {
		run->reqs[i].data = (void *)(uintptr_t)i;
		err = uv_queue_work(&run->loop, &run->reqs[i], uv_task,
				    uv_task_done);
		if (err)
			die("uv_queue_work", err);
	}
	submitted(run);
	/* Returns when no request is left: the pool's wakeup handle is not
	 * referenced, so it does not keep the loop alive. */
	uv_run(&run->loop, UV_RUN_DEFAULT);
	bench_latch_count_down(&run->latch);
}
#endif

#if HAVE_OMP
/*
 * OpenMP: the producer is the master of a team of run->workers threads,
 * as many as the other pools have (a team cannot be fed from a thread
 * outside it). It creates the tasks in a single construct, and the other
 * threads start on them at once (until libgomp's queue limit makes the
 * producer run them itself, see the top of the file); the producer joins
 * them at the single's barrier. The region's closing barrier is the
 * completion. libgomp keeps the team's threads for the producer's next
 * region, as the other systems keep their workers.
 */
static void produce_omp(struct run *run, size_t begin, size_t end)
{
#pragma omp parallel num_threads(run->workers)
#pragma omp single
	{
		for (size_t i = begin; i < end; i++) {
#pragma omp task firstprivate(i)
			tiny_work((void *)(uintptr_t)i);
		}
		submitted(run);
	}
	bench_latch_count_down(&run->latch);
}
#endif

static void produce(struct producer *pr)
{
	struct run *run = pr->run;
	struct weft_future *f;
	int err;

	starting(run);
	switch (run->v) {
	case V_MUTEX:
		for (size_t i = pr->begin; i < pr->end; i++) {
			err = mpool_submit(run->mp, task_mutex,
					   (void *)(uintptr_t)i, &run->group);
			if (err)
				die("mpool_submit", err);
		}
		submitted(run);
		break;
	case V_WEFT_NULL:
		for (size_t i = pr->begin; i < pr->end; i++) {
			err = weft_submit(run->wp, task_weft_latch,
					  (void *)(uintptr_t)i, NULL);
			if (err)
				die("weft_submit", err);
		}
		submitted(run);
		break;
	case V_WEFT_UNREF:
		for (size_t i = pr->begin; i < pr->end; i++) {
			err = weft_submit(run->wp, task_weft_latch,
					  (void *)(uintptr_t)i, &f);
			if (err)
				die("weft_submit", err);
			weft_future_unref(f);
		}
		submitted(run);
		break;
	case V_WEFT_FUTURES:
		for (size_t i = pr->begin; i < pr->end; i++) {
			err = weft_submit(run->wp, task_weft_value,
					  (void *)(uintptr_t)i, &run->futs[i]);
			if (err)
				die("weft_submit", err);
		}
		submitted(run);
		for (size_t i = pr->begin; i < pr->end; i++) {
			void *value = NULL;

			err = weft_future_get(run->futs[i], &value);
			if (err)
				die("weft_future_get", err);
			if (value != (void *)(uintptr_t)i) {
				fprintf(stderr, "bench_submit: future %zu holds %p\n",
					i, value);
				exit(1);
			}
			weft_future_unref(run->futs[i]);
		}
		bench_latch_count_down(&run->latch);
		break;
	case V_LIBUV:
#if BENCH_HAVE_LIBUV
		produce_libuv(run, pr->begin, pr->end);
#else
		abort();
#endif
		break;
	case V_TBB:
#if BENCH_HAVE_TBB
		for (size_t i = pr->begin; i < pr->end; i++) {
			err = peers_tbb_enqueue(run->arena, task_tbb,
						(void *)(uintptr_t)i);
			if (err)
				die("peers_tbb_enqueue", err);
		}
		submitted(run);
#else
		abort();
#endif
		break;
	case V_OMP:
#if HAVE_OMP
		produce_omp(run, pr->begin, pr->end);
#else
		abort();
#endif
		break;
	default:
		abort();
	}
}

static void *producer_main(void *arg)
{
	struct producer *pr = arg;
	struct run *run = pr->run;

	pthread_setname_np(pthread_self(), "producer");
	for (;;) {
		pthread_barrier_wait(&run->start);
		if (run->quit)
			return NULL;
		if (pr->index < run->producers) {
			produce(pr);
			/* Tasks a producer ran itself (OpenMP's do): its own
			 * tally, which main cleared before the run. */
			if (my_tally)
				atomic_fetch_add_explicit(&run->by_producers,
							  my_tally->count,
							  memory_order_relaxed);
		}
		pthread_barrier_wait(&run->end);
	}
}

static void producers_start(struct run *run)
{
	int err;

	pthread_barrier_init(&run->start, NULL, MAX_PRODUCERS + 1);
	pthread_barrier_init(&run->end, NULL, MAX_PRODUCERS + 1);
	for (unsigned p = 0; p < MAX_PRODUCERS; p++) {
		run->pr[p].run = run;
		run->pr[p].index = p;
		err = pthread_create(&run->pr[p].thread, NULL, producer_main,
				     &run->pr[p]);
		if (err)
			die("pthread_create", -err);
	}
}

static void producers_stop(struct run *run)
{
	run->quit = true;
	pthread_barrier_wait(&run->start);
	for (unsigned p = 0; p < MAX_PRODUCERS; p++)
		pthread_join(run->pr[p].thread, NULL);
	pthread_barrier_destroy(&run->start);
	pthread_barrier_destroy(&run->end);
}

/* A run's answer: how many tasks ran, and whether that is right; and on
 * how many threads they ran, and how many of them the producers ran
 * (OpenMP's producer runs tasks too). */
struct answer {
	uint64_t count, by_producers;
	unsigned threads;
	bool ok;
};

/* The latch counts tasks, or producers that saw their tasks end. */
static long latch_count(enum variant v, unsigned producers, size_t n)
{
	switch (v) {
	case V_WEFT_NULL:
	case V_WEFT_UNREF:
	case V_TBB:
		return (long)n;
	default:
		return (long)producers;
	}
}

/* Check the tallies (and libuv's callbacks) after a run of @n tasks. */
static struct answer run_answer(struct run *run, enum variant v, size_t n)
{
	struct answer a;
	uint64_t sum;

	a.threads = tally_collect(&a.count, &sum);
	a.by_producers = atomic_load(&run->by_producers);
	a.ok = a.count == n && sum == (uint64_t)n * (n - 1) / 2;
#if BENCH_HAVE_LIBUV
	if (v == V_LIBUV && (run->uv_done != n || run->uv_failed))
		a.ok = false;
#else
	(void)run;
#endif
	if (!a.ok)
		fprintf(stderr,
			"bench_submit: %s: %llu tasks ran with index sum %llu; %zu and %llu expected\n",
			variant_text[v], (unsigned long long)a.count,
			(unsigned long long)sum, n,
			(unsigned long long)n * (n - 1) / 2);
	return a;
}

/* One timed run; returns seconds to completion, in *@submit_s the seconds
 * until every producer had submitted its share, and in *@ans its answer. */
static double run_once(struct run *run, enum variant v, unsigned producers,
		       size_t n, double *submit_s, struct answer *ans)
{
	int64_t t0, t1;

	run->v = v;
	run->producers = producers;
	mpool_group_init(&run->group, (long)n);
	bench_latch_init(&run->latch, latch_count(v, producers, n));
	atomic_store(&run->submit_begin, INT64_MAX);
	atomic_store(&run->by_producers, 0);
	atomic_store(&run->submit_end, 0);
	current = run;
	for (unsigned p = 0; p < producers; p++) {
		run->pr[p].begin = n * p / producers;
		run->pr[p].end = n * (p + 1) / producers;
	}
	pthread_barrier_wait(&run->start);
	t0 = bench_now_ns();
	if (v == V_MUTEX)
		mpool_group_wait(&run->group);
	else
		bench_latch_wait(&run->latch);
	t1 = bench_now_ns();
	pthread_barrier_wait(&run->end);
	if (atomic_load(&run->submit_begin) < t0)
		t0 = atomic_load(&run->submit_begin);
	*ans = run_answer(run, v, n);
	bench_latch_fini(&run->latch);
	mpool_group_fini(&run->group);
	/* Let spinning workers of every pool park before the next run, so
	 * that no run pays for the previous one's spinning. */
	bench_sleep_ms(10);
	if (submit_s)
		*submit_s = (double)(atomic_load(&run->submit_end) - t0) / 1e9;
	return (double)(t1 - t0) / 1e9;
}

static bool combo_selected(const struct bench_opts *o, unsigned pi,
			   enum variant v)
{
	char name[64];

	if (!variant_built(v) || (variant_peer(v) && producer_counts[pi] != 1))
		return false;
	snprintf(name, sizeof(name), "%s_%up", variant_name[v],
		 producer_counts[pi]);
	return bench_selected(o, name);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_load load;
	struct run run = { 0 };
	struct bench_series tput[NPRODUCERS][NVARIANTS] = { 0 };
	struct bench_series subr[NPRODUCERS][NVARIANTS] = { 0 };
	struct bench_series secs[NPRODUCERS][NVARIANTS] = { 0 };
	/* The last answer of each timed run (the first wrong one, if any),
	 * and whether one was wrong, warm-up runs included. */
	struct answer last[NPRODUCERS][NVARIANTS] = { 0 };
	bool wrong[NPRODUCERS][NVARIANTS] = { 0 }, bad = false;
	bool warm_wrong[NPRODUCERS][NVARIANTS] = { 0 };
	struct bench_series ratio;
	size_t n;
	unsigned rounds, ncombos = NPRODUCERS * NVARIANTS;
	int err;

	bench_parse_args(&o, "bench_submit", argc, argv);
	n = o.tiny ? 10000 : o.quick ? 500000 : 1000000;
	rounds = bench_rounds(&o, o.tiny ? 1 : 7, 11);
	run.workers = o.workers;

	err = mpool_create(o.workers, &run.mp);
	if (err)
		die("mpool_create", err);
	{
		struct weft_pool_options wo;

		weft_pool_options_init(&wo);
		wo.workers = o.workers;
		err = weft_pool_create(&wo, &run.wp);
		if (err)
			die("weft_pool_create", err);
	}
	run.futs = malloc(n * sizeof(*run.futs));
	if (!run.futs)
		die("malloc", -ENOMEM);
#if BENCH_HAVE_LIBUV
	{
		char size[16];

		/* libuv sizes its one process-wide pool from this variable when
		 * the first request is queued (here: the warm-up). */
		snprintf(size, sizeof(size), "%u", o.workers);
		if (setenv("UV_THREADPOOL_SIZE", size, 1))
			die("setenv", -errno);
		err = uv_loop_init(&run.loop);
		if (err)
			die("uv_loop_init", err);
		run.loop.data = &run;
		/* Touch every page now, not in the first timed run. */
		run.reqs = calloc(n, sizeof(*run.reqs));
		if (!run.reqs)
			die("calloc", -ENOMEM);
	}
#endif
#if BENCH_HAVE_TBB
	/* The producer does not join the arena: oneTBB needs a limit of
	 * workers + 1 (it counts the thread that starts it) to run as many
	 * worker threads as the other pools have. */
	err = peers_tbb_init(o.workers + 1);
	if (err)
		die("peers_tbb_init", err);
	err = peers_tbb_arena_create_workers(o.workers, &run.arena);
	if (err)
		die("peers_tbb_arena_create_workers", err);
#endif
	producers_start(&run);

	printf("bench_submit: %zu tiny tasks from 1 and 4 outside threads, %u workers, %u rounds%s\n",
	       n, o.workers, rounds, o.tiny ? " (tiny)" : o.quick ? " (quick)" : "");
	for (unsigned v = 0; v < NVARIANTS; v++)
		if (!variant_built((enum variant)v))
			printf("note: %s skipped (not built with it)\n",
			       variant_text[v]);

	bench_load_begin(&load);
	/* Warm-up: fault in the allocators' arenas and the pools' queues. */
	for (unsigned c = 0; c < ncombos; c++) {
		unsigned pi = c / NVARIANTS;
		enum variant v = (enum variant)(c % NVARIANTS);

		struct answer a;

		if (!combo_selected(&o, pi, v))
			continue;
		run_once(&run, v, producer_counts[pi], n / 4, NULL, &a);
		if (!a.ok)
			warm_wrong[pi][v] = bad = true;
	}

	/* A ratio's two runs are at most NVARIANTS runs apart: each round
	 * runs all variants of one producer count back to back, then of the
	 * other, rotating both orders. */
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < NPRODUCERS; i++) {
			unsigned pi = (i + r) % NPRODUCERS;

			for (unsigned j = 0; j < NVARIANTS; j++) {
				enum variant v = (enum variant)((j + r) % NVARIANTS);
				struct answer a;
				double s, sub;

				if (!combo_selected(&o, pi, v))
					continue;
				s = run_once(&run, v, producer_counts[pi], n, &sub,
					     &a);
				bench_series_add(&tput[pi][v], (double)n / s);
				bench_series_add(&subr[pi][v], (double)n / sub);
				bench_series_add(&secs[pi][v], s);
				if (!wrong[pi][v])
					last[pi][v] = a;
				if (!a.ok)
					wrong[pi][v] = bad = true;
			}
		}
	}

	bench_load_end(&o, &load);
	/* threads: how many threads ran tasks in the last run; by producer:
	 * the share of them that the producers ran themselves. */
	printf("\n%-10s %-20s %12s %18s %10s %16s %12s %8s %12s\n", "producers",
	       "variant", "tasks/s", "min..max (M/s)", "vs mutex",
	       "ratio min..max", "submit/s", "threads", "by producer");
	for (unsigned pi = 0; pi < NPRODUCERS; pi++) {
		for (unsigned v = 0; v < NVARIANTS; v++) {
			struct bench_series *s = &tput[pi][v];
			char variant[64], range[40], rmed[16], rrange[40];

			if (!s->n)
				continue;
			snprintf(variant, sizeof(variant), "%s_%up",
				 variant_name[v], producer_counts[pi]);
			snprintf(range, sizeof(range), "%.2f..%.2f",
				 bench_series_min(s) / 1e6, bench_series_max(s) / 1e6);
			bench_series_ratio(s, &tput[pi][V_MUTEX], &ratio);
			if (v == V_MUTEX)
				ratio.n = 0;
			bench_fmt_ratio(&ratio, rmed, sizeof(rmed), rrange, sizeof(rrange));
			printf("%-10u %-20s %10.2f M %18s %10s %16s %10.2f M %8u %11.1f%%\n",
			       producer_counts[pi], variant_text[v],
			       bench_series_median(s) / 1e6, range, rmed, rrange,
			       bench_series_median(&subr[pi][v]) / 1e6,
			       last[pi][v].threads,
			       last[pi][v].count ? 100.0 * (double)last[pi][v].by_producers /
			       (double)last[pi][v].count : 0.0);
			bench_csv_series(&o, variant, "tasks_per_s", s);
			bench_csv_series(&o, variant, "submit_per_s", &subr[pi][v]);
			bench_csv_series(&o, variant, "ratio_vs_mutex", &ratio);
		}
	}

	if (secs[0][V_OMP].n && last[0][V_OMP].count &&
	    last[0][V_OMP].by_producers * 2 > last[0][V_OMP].count)
		printf("note: OpenMP's producer ran %.1f%% of the tasks itself (libgomp runs a task at once\n"
		       "      when more than 64 per thread wait): its figure is near a plain loop's, not a hand-off's\n",
		       100.0 * (double)last[0][V_OMP].by_producers /
		       (double)last[0][V_OMP].count);

	/* Per-task cost with 4 producers over 1 producer = 1p rate / 4p rate,
	 * per round. */
	printf("\nper-task cost, 4 producers / 1 producer (median, min..max):\n");
	for (unsigned v = 0; v < NVARIANTS; v++) {
		char rmed[16], rrange[40];

		bench_series_ratio(&tput[0][v], &tput[1][v], &ratio);
		if (!ratio.n)
			continue;
		bench_fmt_ratio(&ratio, rmed, sizeof(rmed), rrange, sizeof(rrange));
		printf("  %-20s %8s   %s\n", variant_text[v], rmed, rrange);
		bench_csv_series(&o, variant_name[v], "cost_4p_over_1p", &ratio);
	}

	printf("\n");
	for (unsigned v = V_WEFT_NULL; v <= V_WEFT_UNREF; v++) {
		char text[80], meas[40], metric[80];
		double tps = bench_series_median(&tput[0][v]);
		double rmed, cost;

		if (!tput[0][v].n)
			continue;
		snprintf(text, sizeof(text), "%s, 1 producer >= 10 M tasks/s",
			 variant_text[v]);
		snprintf(meas, sizeof(meas), "%.2f M/s (%.2f..%.2f)", tps / 1e6,
			 bench_series_min(&tput[0][v]) / 1e6,
			 bench_series_max(&tput[0][v]) / 1e6);
		snprintf(metric, sizeof(metric), "%s_1p_tasks_per_s_ge_10M",
			 variant_name[v]);
		bench_target(&o, metric, tps, tps >= 10e6, text, meas);

		bench_series_ratio(&tput[0][v], &tput[0][V_MUTEX], &ratio);
		if (ratio.n) {
			rmed = bench_series_median(&ratio);
			snprintf(text, sizeof(text), "%s / mutex, 1 producer >= 5x",
				 variant_text[v]);
			snprintf(meas, sizeof(meas), "%.2fx (%.2f..%.2f)", rmed,
				 bench_series_min(&ratio), bench_series_max(&ratio));
			snprintf(metric, sizeof(metric), "%s_1p_vs_mutex_ge_5x",
				 variant_name[v]);
			bench_target(&o, metric, rmed, rmed >= 5, text, meas);
		}

		bench_series_ratio(&tput[0][v], &tput[1][v], &ratio);
		if (ratio.n) {
			cost = bench_series_median(&ratio);
			snprintf(text, sizeof(text), "%s cost 4p/1p <= 1.5",
				 variant_text[v]);
			snprintf(meas, sizeof(meas), "%.2f (%.2f..%.2f)", cost,
				 bench_series_min(&ratio), bench_series_max(&ratio));
			snprintf(metric, sizeof(metric), "%s_cost_4p_over_1p_le_1.5",
				 variant_name[v]);
			bench_target(&o, metric, cost, cost <= 1.5, text, meas);
		}
	}

	/* The comparison rows: 1 producer, weft's submit(NULL) the baseline
	 * (the plain fire-and-forget submission, as the peers' are). */
	{
		static const enum variant rows[] = {
			V_WEFT_NULL, V_MUTEX, V_LIBUV, V_TBB, V_OMP,
		};
		const struct bench_series *weft = &secs[0][V_WEFT_NULL];
		char size[32], answer[32];

		bench_count_text(size, sizeof(size), n, "tasks");
		printf("\n");
		for (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			enum variant v = rows[i];

			if (!secs[0][v].n)
				continue;
			snprintf(answer, sizeof(answer), "%llu",
				 (unsigned long long)last[0][v].count);
			bench_report(&o, "submit", size,
				     v == V_WEFT_NULL ? "weft" : variant_name[v],
				     &secs[0][v], v == V_WEFT_NULL ? NULL : weft,
				     answer, !wrong[0][v] && !warm_wrong[0][v]);
		}
	}

	producers_stop(&run);
#if BENCH_HAVE_TBB
	peers_tbb_arena_destroy(run.arena);
	peers_tbb_fini();
#endif
#if BENCH_HAVE_LIBUV
	uv_loop_close(&run.loop);
	free(run.reqs);
	uv_library_shutdown();
#endif
	free(run.futs);
	weft_pool_destroy(run.wp);
	mpool_destroy(run.mp);
	if (bad)
		fprintf(stderr, "bench_submit: a run gave a wrong answer\n");
	return bad ? 1 : 0;
}
