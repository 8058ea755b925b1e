/*
 * bench_idle.c - what an idle pool costs: the process CPU time
 * (CLOCK_PROCESS_CPUTIME_ID, every thread) over one second in which the
 * pool has nothing to do, as a percentage of one core. DESIGN.md section 3:
 * "spin briefly before parking, then sleep on a futex; an idle pool uses no
 * CPU".
 *
 * Each scenario creates its pool, gives it some work and waits for it (so
 * that every worker has run and then looked for more), sleeps 200 ms so that
 * any spinning settles, then measures one second of idleness; the pool is
 * destroyed before the next scenario, so that only one pool is alive while
 * CPU time is counted:
 *   none             no pool at all: what the process costs by itself
 *   mutex            the mutex + condvar pool (mutex_pool.h), the reference
 *   weft submit      weft after a burst of weft_submit()s
 *   weft map         weft after a weft_parallel_for()
 * Scenarios are interleaved, in an order rotated each round. The figure is
 * absolute (a percentage of one core over the window), the one figure here
 * that has no baseline to divide by: the reference pool's is about 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "bench_common.h"
#include "mutex_pool.h"

enum scenario { S_NONE, S_MUTEX, S_WEFT_SUBMIT, S_WEFT_MAP, NSCENARIOS };

static const char *const scenario_name[NSCENARIOS] = {
	"none", "mutex", "weft_submit", "weft_map",
};

#define WARM_TASKS 1000
#define SETTLE_MS 200
#define WINDOW_MS 1000

static struct bench_latch latch;

static void mtask(void *arg)
{
	bench_keep((uintptr_t)arg);
}

static int wtask(void *arg, void **result)
{
	(void)result;
	bench_keep((uintptr_t)arg);
	bench_latch_count_down(&latch);
	return 0;
}

static int wrange(size_t begin, size_t end, void *arg)
{
	volatile double *sink = arg;
	double s = 0;

	for (size_t i = begin; i < end; i++)
		s += (double)i * 0.5;
	*sink = s;
	return 0;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_idle: %s failed: %s\n", what, strerror(-err));
	exit(1);
}

/* Percentage of one core the process used over WINDOW_MS of idleness. */
static double measure_idle(void)
{
	int64_t c0, c1, w0, w1;

	bench_sleep_ms(SETTLE_MS);
	w0 = bench_now_ns();
	c0 = bench_cpu_ns();
	bench_sleep_ms(WINDOW_MS);
	c1 = bench_cpu_ns();
	w1 = bench_now_ns();
	return 100.0 * (double)(c1 - c0) / (double)(w1 - w0);
}

static double run_scenario(enum scenario s, unsigned workers)
{
	struct weft_pool_options wo;
	struct weft_pool *wp = NULL;
	struct mpool *mp = NULL;
	struct mpool_group g;
	double pct;
	volatile double sink;
	int err;

	switch (s) {
	case S_NONE:
		return measure_idle();
	case S_MUTEX:
		err = mpool_create(workers, &mp);
		if (err)
			die("mpool_create", err);
		mpool_group_init(&g, WARM_TASKS);
		for (unsigned i = 0; i < WARM_TASKS; i++) {
			err = mpool_submit(mp, mtask, (void *)(uintptr_t)i, &g);
			if (err)
				die("mpool_submit", err);
		}
		mpool_group_wait(&g);
		mpool_group_fini(&g);
		pct = measure_idle();
		mpool_destroy(mp);
		return pct;
	case S_WEFT_SUBMIT:
	case S_WEFT_MAP:
		weft_pool_options_init(&wo);
		wo.workers = workers;
		err = weft_pool_create(&wo, &wp);
		if (err)
			die("weft_pool_create", err);
		if (s == S_WEFT_SUBMIT) {
			bench_latch_init(&latch, WARM_TASKS);
			for (unsigned i = 0; i < WARM_TASKS; i++) {
				err = weft_submit(wp, wtask, (void *)(uintptr_t)i, NULL);
				if (err)
					die("weft_submit", err);
			}
			bench_latch_wait(&latch);
			bench_latch_fini(&latch);
		} else {
			err = weft_parallel_for(wp, 0, 1000000, 0, wrange,
						(void *)&sink);
			if (err)
				die("weft_parallel_for", err);
		}
		pct = measure_idle();
		weft_pool_destroy(wp);
		return pct;
	default:
		abort();
	}
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_load load;
	struct bench_series pct[NSCENARIOS] = { 0 };
	unsigned rounds;

	bench_parse_args(&o, "bench_idle", argc, argv);
	rounds = bench_rounds(&o, 2, 3);

	printf("bench_idle: CPU time of an idle pool over %d ms after %d ms settling, %u workers, %u rounds%s\n",
	       WINDOW_MS, SETTLE_MS, o.workers, rounds, o.quick ? " (quick)" : "");
	bench_load_begin(&load);
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned j = 0; j < NSCENARIOS; j++) {
			enum scenario s = (enum scenario)((j + r) % NSCENARIOS);

			bench_series_add(&pct[s], run_scenario(s, o.workers));
		}
	}

	bench_load_end(&o, &load);
	printf("\n%-12s %16s %16s\n", "pool", "% of one core", "min..max");
	for (unsigned s = 0; s < NSCENARIOS; s++) {
		char range[40];

		snprintf(range, sizeof(range), "%.3f..%.3f",
			 bench_series_min(&pct[s]), bench_series_max(&pct[s]));
		printf("%-12s %15.3f%% %16s\n", scenario_name[s],
		       bench_series_median(&pct[s]), range);
		bench_csv(&o, scenario_name[s], "idle_cpu_pct_median",
			  bench_series_median(&pct[s]));
		bench_csv(&o, scenario_name[s], "idle_cpu_pct_max",
			  bench_series_max(&pct[s]));
	}

	printf("\n");
	for (unsigned s = S_WEFT_SUBMIT; s <= S_WEFT_MAP; s++) {
		char text[80], meas[32], metric[64];
		double v = bench_series_median(&pct[s]);

		snprintf(text, sizeof(text), "idle %s <= 1%% of one core",
			 scenario_name[s]);
		snprintf(meas, sizeof(meas), "%.3f%%", v);
		snprintf(metric, sizeof(metric), "%s_idle_cpu_pct_le_1",
			 scenario_name[s]);
		bench_target(&o, metric, v, v <= 1.0, text, meas);
	}
	return 0;
}
