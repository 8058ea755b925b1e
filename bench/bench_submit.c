/*
 * bench_submit.c - external submission: N tiny tasks submitted from threads
 * outside the pool (1 producer, and 4 producers with N/4 each), to weft and
 * to the mutex + condvar pool (mutex_pool.h), both with the same worker
 * count. DESIGN.md section 8: "1M tiny tasks from one outside thread".
 *
 * Variants:
 *   mutex          mpool_submit(), completion counted by the pool's group
 *   weft null      weft_submit(..., NULL): no future; the task counts down
 *                  a latch (the same countdown the mutex pool's group does)
 *   weft unref     weft_submit(..., &f) then weft_future_unref(f) at once;
 *                  the task counts down the latch
 *   weft futures   every future kept; each producer waits for its futures,
 *                  checks their values, unrefs them, then counts down
 *
 * Producer threads live for the whole program (as an application's threads
 * do), so that thread-local allocator caches stay warm between runs. A run
 * is timed from the moment the producers are released until the last
 * task has completed (the waiting thread blocks on a condition variable, so
 * it takes no core from the workers). Every (producers, variant) pair runs
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

enum variant { V_MUTEX, V_WEFT_NULL, V_WEFT_UNREF, V_WEFT_FUTURES, NVARIANTS };

static const char *const variant_name[NVARIANTS] = {
	"mutex", "weft_null", "weft_unref", "weft_futures",
};
static const char *const variant_text[NVARIANTS] = {
	"mutex pool", "weft submit(NULL)", "weft submit+unref",
	"weft keep futures",
};

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
	bool quit;
	struct mpool *mp;
	struct weft_pool *wp;
	struct mpool_group group;      /* V_MUTEX */
	struct bench_latch latch;      /* the weft variants */
	/* MAX_PRODUCERS + main: every producer passes both, active or not. */
	pthread_barrier_t start, end;
	struct weft_future **futs;     /* V_WEFT_FUTURES: one per task */
	_Atomic int64_t submit_end;    /* when the last producer finished */
	struct producer pr[MAX_PRODUCERS];
};

/* The run in progress: the tasks reach their latch through it. Written
 * before any producer starts; read-only while the run lasts. */
static struct run *current;

/* The tiny task: a few ALU operations on its argument, no shared write. */
static inline uint64_t tiny_work(void *arg)
{
	uint64_t x = (uintptr_t)arg + 1;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	bench_keep(x);
	return x;
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

static void produce(struct producer *pr)
{
	struct run *run = pr->run;
	struct weft_future *f;
	int err;

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
		if (pr->index < run->producers)
			produce(pr);
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

/* One timed run; returns seconds to completion, and in *@submit_s the
 * seconds until every producer had submitted its share. */
static double run_once(struct run *run, enum variant v, unsigned producers,
		       size_t n, double *submit_s)
{
	int64_t t0, t1;

	run->v = v;
	run->producers = producers;
	mpool_group_init(&run->group, (long)n);
	bench_latch_init(&run->latch, v == V_WEFT_FUTURES ? (long)producers : (long)n);
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
	bench_latch_fini(&run->latch);
	mpool_group_fini(&run->group);
	/* Let spinning workers of either pool park before the next run, so
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
	struct bench_series ratio;
	size_t n;
	unsigned rounds, ncombos = NPRODUCERS * NVARIANTS;
	int err;

	bench_parse_args(&o, "bench_submit", argc, argv);
	n = o.quick ? 500000 : 1000000;
	rounds = bench_rounds(&o, 7, 11);

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
	producers_start(&run);

	printf("bench_submit: %zu tiny tasks from 1 and 4 outside threads, %u workers, %u rounds%s\n",
	       n, o.workers, rounds, o.quick ? " (quick)" : "");

	bench_load_begin(&load);
	/* Warm-up: fault in the allocators' arenas and the pools' queues. */
	for (unsigned c = 0; c < ncombos; c++) {
		unsigned pi = c / NVARIANTS;
		enum variant v = (enum variant)(c % NVARIANTS);

		if (combo_selected(&o, pi, v))
			run_once(&run, v, producer_counts[pi], n / 4, NULL);
	}

	/* A ratio's two runs are at most NVARIANTS runs apart: each round
	 * runs all variants of one producer count back to back, then of the
	 * other, rotating both orders. */
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < NPRODUCERS; i++) {
			unsigned pi = (i + r) % NPRODUCERS;

			for (unsigned j = 0; j < NVARIANTS; j++) {
				enum variant v = (enum variant)((j + r) % NVARIANTS);
				double s, sub;

				if (!combo_selected(&o, pi, v))
					continue;
				s = run_once(&run, v, producer_counts[pi], n, &sub);
				bench_series_add(&tput[pi][v], (double)n / s);
				bench_series_add(&subr[pi][v], (double)n / sub);
			}
		}
	}

	bench_load_end(&o, &load);
	printf("\n%-10s %-20s %12s %18s %10s %16s %12s\n", "producers", "variant",
	       "tasks/s", "min..max (M/s)", "vs mutex", "ratio min..max",
	       "submit/s");
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
			printf("%-10u %-20s %10.2f M %18s %10s %16s %10.2f M\n",
			       producer_counts[pi], variant_text[v],
			       bench_series_median(s) / 1e6, range, rmed, rrange,
			       bench_series_median(&subr[pi][v]) / 1e6);
			bench_csv_series(&o, variant, "tasks_per_s", s);
			bench_csv_series(&o, variant, "submit_per_s", &subr[pi][v]);
			bench_csv_series(&o, variant, "ratio_vs_mutex", &ratio);
		}
	}

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

	producers_stop(&run);
	free(run.futs);
	weft_pool_destroy(run.wp);
	mpool_destroy(run.mp);
	return 0;
}
