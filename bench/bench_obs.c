/*
 * bench_obs.c - what observability costs (weft/obs.h, issue 6): fib with
 * weft_spawn()/weft_join() and a million tiny tasks submitted from an
 * outside thread, each on pools that differ only in their observability
 * options, measured in the same run with interleaved rounds:
 *
 *   off      no_stats, no hook: the baseline
 *   stats    the per-worker counters (the default)
 *   hooks    the counters plus a task event hook that counts each event
 *            in a thread-local variable (about the least a real hook does)
 *   trace    the counters plus a trace of 1M events per worker (a ring:
 *            it wraps, as a long-running service's would); for
 *            information, no target
 *
 * Target (issue 6): hooks / off <= 1.05 on both workloads, i.e. the
 * counters and hooks together cost at most 5%. Ratios are per round
 * (config time / off time of the same round), median and spread.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>
#include <weft/async.h>
#include <weft/obs.h>

#include "bench_common.h"

enum config { C_OFF, C_STATS, C_HOOKS, C_TRACE, NCONFIGS };

static const char *const config_name[NCONFIGS] = {
	"off", "stats", "hooks", "trace",
};
static const char *const config_text[NCONFIGS] = {
	"stats off, no hook", "stats (default)", "stats + task hook",
	"stats + trace",
};

static _Thread_local uint64_t hook_events;

static void count_hook(const struct weft_task_event_info *ev, void *arg)
{
	(void)arg;
	hook_events += (uint64_t)ev->event + 1;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_obs: %s: %s\n", what, strerror(-err));
	exit(1);
}

static OPAQUE int fib_task(void *arg, void **result)
{
	unsigned n = (unsigned)(uintptr_t)arg;
	struct weft_spawn sp;
	void *a = NULL, *b = NULL;
	int err, jerr;

	if (n < 2) {
		*result = (void *)(uintptr_t)n;
		return 0;
	}
	weft_spawn(&sp, fib_task, (void *)(uintptr_t)(n - 1));
	err = fib_task((void *)(uintptr_t)(n - 2), &b);
	jerr = weft_join(&sp, &a);
	if (err || jerr)
		return err ? err : jerr;
	*result = (void *)((uintptr_t)a + (uintptr_t)b);
	return 0;
}

static uint64_t fib_ref(unsigned n)
{
	uint64_t a = 0, b = 1;

	for (unsigned i = 0; i < n; i++) {
		uint64_t t = a + b;

		a = b;
		b = t;
	}
	return a;
}

/* @reps runs of fib(@n) one after another: one fib(30) takes a few ms,
 * short enough for a single preemption to swing a round by 2x. Seconds
 * per run. */
static double run_fib(struct weft_pool *p, unsigned n, unsigned reps,
		      bool *wrong)
{
	int64_t t0 = bench_now_ns();

	for (unsigned i = 0; i < reps; i++) {
		struct weft_future *f;
		void *v = NULL;
		int err = weft_submit(p, fib_task, (void *)(uintptr_t)n, &f);

		if (err)
			die("weft_submit", err);
		err = weft_future_get(f, &v);
		weft_future_unref(f);
		if (err || (uint64_t)(uintptr_t)v != fib_ref(n))
			*wrong = true;
	}
	return (double)(bench_now_ns() - t0) / 1e9 / reps;
}

static struct bench_latch latch;

static int tiny_task(void *arg, void **result)
{
	(void)arg;
	*result = NULL;
	bench_latch_count_down(&latch);
	return 0;
}

static double run_submit(struct weft_pool *p, size_t n)
{
	int64_t t0 = bench_now_ns();

	bench_latch_init(&latch, (long)n);
	for (size_t i = 0; i < n; i++) {
		int err = weft_submit(p, tiny_task, NULL, NULL);

		if (err)
			die("weft_submit", err);
	}
	bench_latch_wait(&latch);
	bench_latch_fini(&latch);
	return (double)(bench_now_ns() - t0) / 1e9;
}

static void pool_for(enum config c, unsigned workers, struct weft_pool **p)
{
	struct weft_pool_options o;
	int err;

	weft_pool_options_init(&o);
	o.workers = workers;
	o.no_stats = c == C_OFF;
	if (c == C_HOOKS)
		o.on_task_event = count_hook;
	if (c == C_TRACE)
		o.trace_events = 1u << 20;
	err = weft_pool_create(&o, p);
	if (err)
		die("weft_pool_create", err);
}

static void table(const struct bench_opts *o, const char *workload,
		  const char *key, double per, const char *unit,
		  struct bench_series t[NCONFIGS])
{
	printf("\n%s\n%-22s %12s %10s %10s %14s\n", workload, "config",
	       "median ms", unit, "/ off", "range");
	for (unsigned c = 0; c < NCONFIGS; c++) {
		struct bench_series r;
		char med[32], range[48], var[64];

		if (!t[c].n)
			continue;
		bench_series_ratio(&t[c], &t[C_OFF], &r);
		bench_fmt_ratio(&r, med, sizeof(med), range, sizeof(range));
		printf("%-22s %12.2f %10.1f %10s %14s\n", config_text[c],
		       bench_series_median(&t[c]) * 1e3,
		       bench_series_median(&t[c]) * 1e9 / per, med, range);
		snprintf(var, sizeof(var), "%s_%s", key, config_name[c]);
		bench_csv_series(o, var, "seconds", &t[c]);
		if (c != C_OFF)
			bench_csv_series(o, var, "over_off", &r);
	}
}

static void target(const struct bench_opts *o, const char *key,
		   const char *text, struct bench_series t[NCONFIGS])
{
	struct bench_series r;
	char what[96], meas[64], metric[64];
	double m;

	bench_series_ratio(&t[C_HOOKS], &t[C_OFF], &r);
	if (!r.n)
		return;
	m = bench_series_median(&r);
	snprintf(what, sizeof(what), "%s stats+hooks / off <= 1.05x", text);
	snprintf(meas, sizeof(meas), "%.3fx (%.3f..%.3f)", m,
		 bench_series_min(&r), bench_series_max(&r));
	snprintf(metric, sizeof(metric), "%s_hooks_over_off_le_1.05", key);
	bench_target(o, metric, m, m <= 1.05, what, meas);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_load load;
	struct weft_pool *pool[NCONFIGS];
	static struct bench_series fib[NCONFIGS], sub[NCONFIGS];
	unsigned rounds, fib_n, fib_reps;
	size_t ntasks;
	bool wrong = false;
	char what[64];

	bench_parse_args(&o, "bench_obs", argc, argv);
	rounds = bench_rounds(&o, o.tiny ? 1 : 9, 15);
	fib_n = o.tiny ? 18 : o.quick ? 27 : 30;
	fib_reps = o.tiny ? 1 : 10;
	ntasks = o.tiny ? 10000 : o.quick ? 300000 : 1000000;
	/* --only picks configs; "off" always runs, the baseline. */
	for (unsigned c = 0; c < NCONFIGS; c++)
		pool[c] = NULL;
	for (unsigned c = 0; c < NCONFIGS; c++)
		if (c == C_OFF || bench_selected(&o, config_name[c]))
			pool_for((enum config)c, o.workers, &pool[c]);
	bench_count_text(what, sizeof(what), ntasks, "tasks");
	printf("bench_obs: the cost of stats, task hooks and traces: fib(%u) "
	       "and %s from an outside thread; %u workers, %u rounds%s\n",
	       fib_n, what, o.workers, rounds,
	       o.tiny ? " (tiny)" : o.quick ? " (quick)" : "");

	bench_load_begin(&load);
	/* Warm-up: every pool's fibers and allocator caches. */
	for (unsigned c = 0; c < NCONFIGS; c++) {
		if (!pool[c])
			continue;
		run_fib(pool[c], fib_n < 20 ? fib_n : 20, 1, &wrong);
		run_submit(pool[c], ntasks / 10 + 1);
	}
	for (unsigned r = 0; r < rounds; r++) {
		/* Rotate the order, so that no config always runs first. */
		for (unsigned k = 0; k < NCONFIGS; k++) {
			unsigned c = (r + k) % NCONFIGS;

			if (pool[c])
				bench_series_add(&fib[c],
						 run_fib(pool[c], fib_n,
							 fib_reps, &wrong));
		}
		for (unsigned k = 0; k < NCONFIGS; k++) {
			unsigned c = (r + k) % NCONFIGS;

			if (pool[c])
				bench_series_add(&sub[c],
						 run_submit(pool[c], ntasks));
		}
	}
	bench_load_end(&o, &load);

	snprintf(what, sizeof(what), "fib(%u), one spawn per call", fib_n);
	table(&o, what, "fib", (double)fib_ref(fib_n + 1) * 2 - 1, "ns/call",
	      fib);
	bench_count_text(what, sizeof(what), ntasks, "tasks");
	strncat(what, " submitted from outside",
		sizeof(what) - strlen(what) - 1);
	table(&o, what, "submit", (double)ntasks, "ns/task", sub);
	printf("\n");
	target(&o, "fib", "fib", fib);
	target(&o, "submit", "outside submit", sub);

	for (unsigned c = 0; c < NCONFIGS; c++)
		weft_pool_destroy(pool[c]); /* NULL is ignored */
	if (wrong) {
		fprintf(stderr, "bench_obs: WRONG: a fib result was wrong\n");
		return 1;
	}
	return 0;
}
