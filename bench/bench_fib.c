/*
 * bench_fib.c - fork/join: what a spawn and its join cost, on trees of tiny
 * tasks with no cutoff (one task per call), DESIGN.md section 8:
 *
 *   fib(n)   spawn fib(n - 1), call fib(n - 2), join; n = 30 and 32
 *            (--quick: 27 and 29, --tiny: 16 and 18)
 *   skynet   a 10-ary tree of 1 M leaves (--tiny: 10 K): each leaf returns
 *            its number, each inner node spawns its 10 children, joins them
 *            in reverse order and returns their sum
 *
 * each run by
 *   plain C          the same recursion as plain function calls, on the
 *                    calling thread: the baseline
 *   weft             weft_spawn()/weft_join() (weft/async.h) inside a task
 *                    submitted to a pool of 1 worker, and of --workers
 *   oneTBB           tbb::task_group in a tbb::task_arena of 1 thread, and
 *                    of --workers threads (peers_tbb.cpp)
 *   OpenMP           #pragma omp task / taskwait in a parallel region of 1
 *                    thread, and of --workers threads
 *
 * The recursive functions are kept opaque to the optimiser (noipa, and an
 * empty asm in the plain fib), so that no version is turned into a loop,
 * cloned for constants or partly inlined into itself: every version makes
 * the same calls, and differs only in what a spawn and a join cost.
 *
 * Every run's answer is checked (fib(n), and n(n-1)/2 for skynet's n
 * leaves); a wrong one exits 1, after the report. The report's rows
 * (bench_report()) are the larger fib and skynet on --workers threads:
 * weft, the plain function ("serial"), OpenMP and oneTBB, each timed
 * against weft round by round. Each round measures every variant of a
 * workload once (runs back to back until 20 ms have passed: one run of the
 * slow peers, several of the fast ones), in an order rotated each round,
 * with a short sleep between measurements so that no runtime's spinning
 * threads eat into the next one. Figures are medians over the rounds, of
 * the time per run; ratios are per-round ratios
 * (median, min..max): "vs plain" is t / t_plain, "vs oneTBB" and
 * "vs OpenMP" are t_peer / t_weft on the same thread count (above 1: weft
 * is faster). ns/spawn is the run's time over its spawns, the work of the
 * calls included.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>
#include <weft/async.h>

#include "bench_common.h"

#if BENCH_HAVE_OPENMP
#include <omp.h>
#endif
#if BENCH_HAVE_TBB
#include "peers_tbb.h"
#else
#define PEERS_SKYNET_DIV 10
#endif

#define SKYNET_DIV PEERS_SKYNET_DIV

enum variant {
	V_PLAIN, V_WEFT_1, V_WEFT_N, V_TBB_1, V_TBB_N, V_OMP_1, V_OMP_N,
	NVARIANTS
};

/* CSV names are <workload>_<key>[_<threads>w]. */
static const char *const variant_key[NVARIANTS] = {
	"plain", "weft", "weft", "tbb", "tbb", "omp", "omp",
};
static const char *const variant_text[NVARIANTS] = {
	"plain C", "weft spawn/join", "weft spawn/join", "oneTBB task_group",
	"oneTBB task_group", "OpenMP tasks", "OpenMP tasks",
};

static bool variant_many(enum variant v)
{
	return v == V_WEFT_N || v == V_TBB_N || v == V_OMP_N;
}

/* The peer a weft variant is compared with, on the same thread count. */
static enum variant tbb_of(enum variant v)
{
	return v == V_WEFT_1 ? V_TBB_1 : V_TBB_N;
}

static enum variant omp_of(enum variant v)
{
	return v == V_WEFT_1 ? V_OMP_1 : V_OMP_N;
}

/* At most 15 characters: formats print it with "%.15s", which tells gcc
 * how long it can be (it cannot tell on its own through &w[k]). */
struct workload {
	char name[16];       /* CSV prefix: "fib30", "skynet" */
	char text[32];       /* "fib(30)", "skynet 1M" */
	char size[32];       /* the report's: "fib(30)", "1M leaves" */
	bool skynet;
	unsigned n;          /* fib's argument */
	uint64_t leaves;     /* skynet's leaves, a power of SKYNET_DIV */
	uint64_t expect;
	double calls;        /* nodes of the call tree */
	double spawns;       /* of them, the ones a parent spawns */
};

struct ctx {
	const struct bench_opts *o;
	bool have[NVARIANTS];
	struct weft_pool *pool[2];             /* 1 worker, o->workers */
#if BENCH_HAVE_TBB
	struct peers_tbb_arena *arena[2];      /* 1 thread, o->workers */
#endif
};

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_fib: %s failed: %s\n", what, strerror(-err));
	exit(1);
}

/* ---- fib ---------------------------------------------------------------- */

static OPAQUE uint64_t fib_plain(unsigned n)
{
	uint64_t a, b;

	if (n < 2)
		return n;
	a = fib_plain(n - 1);
	b = fib_plain(n - 2);
	/* Without this gcc turns the second call into a loop (tail recursion
	 * with an accumulator), halving the calls. Costs no instruction. */
	__asm__("" : "+r"(b));
	return a + b;
}

static OPAQUE int fib_weft(void *arg, void **result)
{
	unsigned n = (unsigned)(uintptr_t)arg;
	struct weft_spawn sp;
	int err, jerr;

	if (n < 2) {
		*result = (void *)(uintptr_t)n;
		return 0;
	}
	void *a = NULL, *b = NULL;

	weft_spawn(&sp, fib_weft, (void *)(uintptr_t)(n - 1));
	err = fib_weft((void *)(uintptr_t)(n - 2), &b);
	jerr = weft_join(&sp, &a);
	if (err || jerr)
		return err ? err : jerr;
	*result = (void *)((uintptr_t)a + (uintptr_t)b);
	return 0;
}

#if BENCH_HAVE_OPENMP
static OPAQUE uint64_t fib_omp(unsigned n)
{
	uint64_t a = 0, b;

	if (n < 2)
		return n;
#pragma omp task shared(a) firstprivate(n)
	a = fib_omp(n - 1);
	b = fib_omp(n - 2);
#pragma omp taskwait
	return a + b;
}
#endif

/* ---- skynet ------------------------------------------------------------- */

static OPAQUE uint64_t skynet_plain(uint64_t first, uint64_t size)
{
	uint64_t step, sum = 0;

	if (size == 1)
		return first;
	step = size / SKYNET_DIV;
	for (unsigned i = 0; i < SKYNET_DIV; i++)
		sum += skynet_plain(first + i * step, step);
	return sum;
}

/* A node of the weft tree: its leaves [first, first + size), and the sum
 * it returns (through memory: it needs 64 bits, a pointer may have 32). */
struct sky {
	uint64_t first, size, sum;
};

static OPAQUE int skynet_weft(void *arg, void **result)
{
	struct sky *s = arg;
	struct sky kid[SKYNET_DIV];
	struct weft_spawn sp[SKYNET_DIV];
	uint64_t step, sum = 0;
	int err = 0;

	(void)result;
	if (s->size == 1) {
		s->sum = s->first;
		return 0;
	}
	step = s->size / SKYNET_DIV;
	for (unsigned i = 0; i < SKYNET_DIV; i++) {
		kid[i].first = s->first + i * step;
		kid[i].size = step;
		weft_spawn(&sp[i], skynet_weft, &kid[i]);
	}
	for (unsigned i = SKYNET_DIV; i-- > 0;) {
		int e = weft_join(&sp[i], NULL);

		if (e && !err)
			err = e;
		sum += kid[i].sum;
	}
	s->sum = sum;
	return err;
}

#if BENCH_HAVE_OPENMP
static OPAQUE uint64_t skynet_omp(uint64_t first, uint64_t size)
{
	uint64_t sums[SKYNET_DIV], step, sum = 0;

	if (size == 1)
		return first;
	step = size / SKYNET_DIV;
	for (unsigned i = 0; i < SKYNET_DIV; i++) {
#pragma omp task shared(sums) firstprivate(i, first, step)
		sums[i] = skynet_omp(first + i * step, step);
	}
#pragma omp taskwait
	for (unsigned i = 0; i < SKYNET_DIV; i++)
		sum += sums[i];
	return sum;
}
#endif

/* ---- one run ------------------------------------------------------------ */

static uint64_t run_weft(struct weft_pool *pool, const struct workload *w)
{
	struct weft_future *f;
	struct sky root = { 0, w->leaves, 0 };
	void *value = NULL;
	int err;

	if (w->skynet)
		err = weft_submit(pool, skynet_weft, &root, &f);
	else
		err = weft_submit(pool, fib_weft, (void *)(uintptr_t)w->n, &f);
	if (err)
		die("weft_submit", err);
	err = weft_future_get(f, &value);
	weft_future_unref(f);
	if (err)
		die("the weft task", err);
	return w->skynet ? root.sum : (uint64_t)(uintptr_t)value;
}

#if BENCH_HAVE_OPENMP
static uint64_t run_omp(unsigned threads, const struct workload *w)
{
	uint64_t r = 0;

#pragma omp parallel num_threads(threads)
#pragma omp single
	r = w->skynet ? skynet_omp(0, w->leaves) : fib_omp(w->n);
	return r;
}
#endif

#if BENCH_HAVE_TBB
static uint64_t run_tbb(struct peers_tbb_arena *a, const struct workload *w)
{
	uint64_t r = 0;
	int err;

	if (w->skynet)
		err = peers_tbb_skynet(a, 0, w->leaves, &r);
	else
		err = peers_tbb_fib(a, w->n, &r);
	if (err)
		die("oneTBB", err);
	return r;
}
#endif

/* What a variant computed: its last answer, and whether one was wrong
 * (then the first wrong one). */
struct outcome {
	uint64_t answer;
	bool wrong;
};

/* Run @v on @w once, check its answer into @out; returns seconds. */
static double run_once(const struct ctx *c, const struct workload *w,
		       enum variant v, struct outcome *out)
{
	unsigned threads = variant_many(v) ? c->o->workers : 1;
	int64_t t0, t1;
	uint64_t r = 0;

	t0 = bench_now_ns();
	switch (v) {
	case V_PLAIN:
		r = w->skynet ? skynet_plain(0, w->leaves) : fib_plain(w->n);
		break;
	case V_WEFT_1:
	case V_WEFT_N:
		r = run_weft(c->pool[v == V_WEFT_N], w);
		break;
	case V_TBB_1:
	case V_TBB_N:
#if BENCH_HAVE_TBB
		r = run_tbb(c->arena[v == V_TBB_N], w);
#else
		abort();
#endif
		break;
	case V_OMP_1:
	case V_OMP_N:
#if BENCH_HAVE_OPENMP
		r = run_omp(threads, w);
#else
		abort();
#endif
		break;
	default:
		abort();
	}
	t1 = bench_now_ns();
	if (!out->wrong)
		out->answer = r;
	if (r != w->expect) {
		fprintf(stderr, "bench_fib: %s by %s on %u thread(s) gives %llu, not %llu\n",
			w->text, variant_text[v], threads, (unsigned long long)r,
			(unsigned long long)w->expect);
		out->wrong = true;
	}
	return (double)(t1 - t0) / 1e9;
}

/*
 * One round's figure for @v on @w: seconds per run, over as many runs back
 * to back as fill SAMPLE_MIN_S (at least one), so that a run of a
 * millisecond or two (plain fib(27)) is not one timer tick or preemption
 * away from a different figure. The slow peers take one run.
 */
#define SAMPLE_MIN_S 0.02
#define SAMPLE_MAX_RUNS 1000

static double run_sample(const struct ctx *c, const struct workload *w,
			 enum variant v, struct outcome *out)
{
	double total = 0;
	unsigned runs = 0;

	do {
		total += run_once(c, w, v, out);
		runs++;
	} while (total < SAMPLE_MIN_S && runs < SAMPLE_MAX_RUNS && !out->wrong);
	return total / runs;
}

/* ---- setup and report --------------------------------------------------- */

static void fib_workload(struct workload *w, unsigned n)
{
	uint64_t f0 = 0, f1 = 1;   /* fib(i), fib(i + 1) */

	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "fib%u", n);
	snprintf(w->text, sizeof(w->text), "fib(%u)", n);
	snprintf(w->size, sizeof(w->size), "fib(%u)", n);
	w->n = n;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t = f0 + f1;

		f0 = f1;
		f1 = t;
	}
	w->expect = f0;
	/* calls(n) = 2 fib(n + 1) - 1; every call with n >= 2 spawns once. */
	w->calls = 2.0 * (double)f1 - 1;
	w->spawns = (double)f1 - 1;
}

static void skynet_workload(struct workload *w, uint64_t leaves)
{
	double nodes = 0;

	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "skynet");
	if (leaves >= 1000000) {
		snprintf(w->text, sizeof(w->text), "skynet %lluM",
			 (unsigned long long)(leaves / 1000000));
		snprintf(w->size, sizeof(w->size), "%lluM leaves",
			 (unsigned long long)(leaves / 1000000));
	} else {
		snprintf(w->text, sizeof(w->text), "skynet %lluK",
			 (unsigned long long)(leaves / 1000));
		snprintf(w->size, sizeof(w->size), "%lluK leaves",
			 (unsigned long long)(leaves / 1000));
	}
	w->skynet = true;
	w->leaves = leaves;
	w->expect = leaves * (leaves - 1) / 2;
	for (uint64_t level = 1; level <= leaves; level *= SKYNET_DIV)
		nodes += (double)level;
	w->calls = nodes;
	w->spawns = nodes - 1;
}

static void variant_name(char *buf, size_t len, const struct bench_opts *o,
			 const struct workload *w, enum variant v)
{
	if (v == V_PLAIN)
		snprintf(buf, len, "%.15s_plain", w->name);
	else
		snprintf(buf, len, "%.15s_%s_%uw", w->name, variant_key[v],
			 variant_many(v) ? o->workers : 1);
}

/* "1.23x" and "min..max" of a ratio series; "" twice when it is empty. */
static void fmt_ratio(const struct bench_series *r, char *med, size_t mlen,
		      char *range, size_t rlen)
{
	if (!r->n) {
		med[0] = range[0] = '\0';
		return;
	}
	bench_fmt_ratio(r, med, mlen, range, rlen);
}

/* Whether any variant of a workload ran (--only may have skipped all). */
static bool measured(const struct bench_series t[NVARIANTS])
{
	for (unsigned v = 0; v < NVARIANTS; v++)
		if (t[v].n)
			return true;
	return false;
}

static void report_workload(const struct ctx *c, const struct workload *w,
			    struct bench_series t[NVARIANTS])
{
	const struct bench_opts *o = c->o;
	struct bench_series ratio, per;

	if (!measured(t))
		return;
	printf("\n%s: %.0f calls, %.0f spawns\n", w->text, w->calls, w->spawns);
	printf("%-18s %7s %9s %8s %9s %8s %12s %9s %12s %9s %12s\n", "variant",
	       "threads", "ms", "ns/call", "ns/spawn", "vs plain", "min..max",
	       "vs oneTBB", "min..max", "vs OpenMP", "min..max");
	for (unsigned i = 0; i < NVARIANTS; i++) {
		enum variant v = (enum variant)i;
		char name[64], spawn[16] = "-", pm[16], pr[32], tm[16] = "",
		     tr[32] = "", om[16] = "", omr[32] = "";
		double ms;

		if (!t[v].n)
			continue;
		variant_name(name, sizeof(name), o, w, v);
		ms = bench_series_median(&t[v]) * 1e3;

		per.n = 0;
		for (unsigned r = 0; r < t[v].n; r++)
			bench_series_add(&per, t[v].v[r] * 1e9 /
					 (v == V_PLAIN ? w->calls : w->spawns));
		bench_csv_series(o, name, v == V_PLAIN ? "ns_per_call" :
				 "ns_per_spawn", &per);
		if (v != V_PLAIN)
			snprintf(spawn, sizeof(spawn), "%.1f",
				 bench_series_median(&per));

		bench_series_ratio(&t[v], &t[V_PLAIN], &ratio);
		if (v == V_PLAIN)
			ratio.n = 0;
		else
			bench_csv_series(o, name, "time_over_plain", &ratio);
		fmt_ratio(&ratio, pm, sizeof(pm), pr, sizeof(pr));
		if (v == V_PLAIN)
			snprintf(pm, sizeof(pm), "1.00x");

		if (v == V_WEFT_1 || v == V_WEFT_N) {
			bench_series_ratio(&t[tbb_of(v)], &t[v], &ratio);
			bench_csv_series(o, name, "vs_tbb", &ratio);
			fmt_ratio(&ratio, tm, sizeof(tm), tr, sizeof(tr));
			bench_series_ratio(&t[omp_of(v)], &t[v], &ratio);
			bench_csv_series(o, name, "vs_openmp", &ratio);
			fmt_ratio(&ratio, om, sizeof(om), omr, sizeof(omr));
		}
		printf("%-18s %7u %9.2f %8.2f %9s %8s %12s %9s %12s %9s %12s\n",
		       variant_text[v], variant_many(v) ? o->workers : 1, ms,
		       bench_series_median(&t[v]) * 1e9 / w->calls, spawn, pm,
		       pr, tm, tr, om, omr);
	}
}

static void report_targets(const struct ctx *c, const struct workload *w,
			   struct bench_series t[NVARIANTS])
{
	const struct bench_opts *o = c->o;
	struct bench_series ratio;
	char text[96], meas[48], metric[96];
	double m;

	if (!measured(t))
		return;
	bench_series_ratio(&t[V_WEFT_1], &t[V_PLAIN], &ratio);
	if (ratio.n) {
		m = bench_series_median(&ratio);
		snprintf(text, sizeof(text), "%s weft 1 worker / plain <= 3x",
			 w->text);
		snprintf(meas, sizeof(meas), "%.2fx (%.2f..%.2f)", m,
			 bench_series_min(&ratio), bench_series_max(&ratio));
		snprintf(metric, sizeof(metric), "%.15s_weft_1w_over_plain_le_3x",
			 w->name);
		bench_target(o, metric, m, m <= 3.0, text, meas);
	}

	if (!c->have[V_TBB_1]) {
		printf("target: %s oneTBB / weft >= 20x: skipped (not built with oneTBB)\n",
		       w->text);
		return;
	}
	for (unsigned i = 0; i < 2; i++) {
		enum variant v = i ? V_WEFT_N : V_WEFT_1;
		unsigned threads = i ? o->workers : 1;

		bench_series_ratio(&t[tbb_of(v)], &t[v], &ratio);
		if (!ratio.n)
			continue;
		m = bench_series_median(&ratio);
		snprintf(text, sizeof(text), "%s oneTBB / weft, %u thread%s >= 20x",
			 w->text, threads, threads == 1 ? "" : "s");
		snprintf(meas, sizeof(meas), "%.1fx (%.1f..%.1f)", m,
			 bench_series_min(&ratio), bench_series_max(&ratio));
		snprintf(metric, sizeof(metric), "%.15s_weft_%uw_vs_tbb_ge_20x",
			 w->name, threads);
		bench_target(o, metric, m, m >= 20.0, text, meas);
	}
}

/*
 * The comparison rows of @w: the figures on --workers threads,
 * which a user compares (on 1 thread when --workers is 1), each peer timed
 * against weft on as many threads.
 */
static void report_rows(const struct ctx *c, const struct workload *w,
			const char *workload, struct bench_series t[NVARIANTS],
			const struct outcome res[NVARIANTS])
{
	bool many = c->have[V_WEFT_N];
	const enum variant rows[] = {
		many ? V_WEFT_N : V_WEFT_1, V_PLAIN,
		many ? V_OMP_N : V_OMP_1, many ? V_TBB_N : V_TBB_1,
	};
	static const char *const system[] = { "weft", "serial", "openmp", "tbb" };
	const struct bench_series *weft = &t[rows[0]];

	for (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum variant v = rows[i];
		char answer[32];

		if (!t[v].n)
			continue;
		snprintf(answer, sizeof(answer), "%llu",
			 (unsigned long long)res[v].answer);
		bench_report(c->o, workload, w->size, system[i], &t[v],
			     i ? weft : NULL, answer, !res[v].wrong);
	}
}

#define NWORKLOADS 3

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_load load;
	struct ctx c = { 0 };
	struct workload w[NWORKLOADS];
	static struct bench_series t[NWORKLOADS][NVARIANTS];
	static struct outcome res[NWORKLOADS][NVARIANTS];
	unsigned rounds;
	bool bad = false;
	int err;

	bench_parse_args(&o, "bench_fib", argc, argv);
	c.o = &o;
	rounds = bench_rounds(&o, o.tiny ? 1 : 7, 9);
	fib_workload(&w[0], o.tiny ? 16 : o.quick ? 27 : 30);
	fib_workload(&w[1], o.tiny ? 18 : o.quick ? 29 : 32);
	skynet_workload(&w[2], o.tiny ? 10000 : 1000000);

	for (unsigned v = 0; v < NVARIANTS; v++)
		c.have[v] = true;
	if (o.workers == 1)   /* the N-thread runs would repeat the 1-thread ones */
		c.have[V_WEFT_N] = c.have[V_TBB_N] = c.have[V_OMP_N] = false;
	c.have[V_TBB_1] &= BENCH_HAVE_TBB;
	c.have[V_TBB_N] &= BENCH_HAVE_TBB;
	c.have[V_OMP_1] &= BENCH_HAVE_OPENMP;
	c.have[V_OMP_N] &= BENCH_HAVE_OPENMP;

	for (unsigned i = 0; i < 2; i++) {
		struct weft_pool_options wo;

		if (i && !c.have[V_WEFT_N])
			break;
		weft_pool_options_init(&wo);
		wo.workers = i ? o.workers : 1;
		err = weft_pool_create(&wo, &c.pool[i]);
		if (err)
			die("weft_pool_create", err);
	}
#if BENCH_HAVE_TBB
	err = peers_tbb_init(o.workers);
	if (err)
		die("peers_tbb_init", err);
	for (unsigned i = 0; i < 2; i++) {
		if (i && !c.have[V_TBB_N])
			break;
		err = peers_tbb_arena_create(i ? o.workers : 1, &c.arena[i]);
		if (err)
			die("peers_tbb_arena_create", err);
	}
#endif

	printf("bench_fib: fork/join, one spawn per call: %s, %s, %s; 1%s%.0u thread%s, %u rounds%s\n",
	       w[0].text, w[1].text, w[2].text, o.workers > 1 ? " and " : "",
	       o.workers > 1 ? o.workers : 0, o.workers > 1 ? "s" : "", rounds,
	       o.tiny ? " (tiny)" : o.quick ? " (quick)" : "");
	if (!BENCH_HAVE_TBB)
		printf("note: oneTBB skipped (not built with oneTBB)\n");
	if (!BENCH_HAVE_OPENMP)
		printf("note: OpenMP skipped (not built with OpenMP)\n");

	bench_load_begin(&load);
	/* Warm-up: start every runtime's threads, fault in their stacks. */
	for (unsigned v = 0; v < NVARIANTS; v++) {
		char name[64];

		variant_name(name, sizeof(name), &o, &w[0], (enum variant)v);
		if (c.have[v] && bench_selected(&o, name))
			run_once(&c, &w[0], (enum variant)v, &res[0][v]);
	}
	bench_sleep_ms(20);

	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned k = 0; k < NWORKLOADS; k++) {
			for (unsigned j = 0; j < NVARIANTS; j++) {
				enum variant v = (enum variant)((j + r) % NVARIANTS);
				char name[64];

				variant_name(name, sizeof(name), &o, &w[k], v);
				if (!c.have[v] || !bench_selected(&o, name))
					continue;
				bench_series_add(&t[k][v],
						 run_sample(&c, &w[k], v, &res[k][v]));
				bench_sleep_ms(20);
			}
		}
	}
	bench_load_end(&o, &load);

	for (unsigned k = 0; k < NWORKLOADS; k++)
		report_workload(&c, &w[k], t[k]);
	printf("\n");
	for (unsigned k = 0; k < NWORKLOADS; k++)
		if (!w[k].skynet)
			report_targets(&c, &w[k], t[k]);
	printf("\n");
	report_rows(&c, &w[1], "fib", t[1], res[1]);
	report_rows(&c, &w[2], "skynet", t[2], res[2]);
	for (unsigned k = 0; k < NWORKLOADS; k++)
		for (unsigned v = 0; v < NVARIANTS; v++)
			bad |= res[k][v].wrong;

#if BENCH_HAVE_TBB
	for (unsigned i = 0; i < 2; i++)
		peers_tbb_arena_destroy(c.arena[i]);
	peers_tbb_fini();
#endif
	for (unsigned i = 0; i < 2; i++)
		weft_pool_destroy(c.pool[i]);
	if (bad)
		fprintf(stderr, "bench_fib: a run gave a wrong answer\n");
	return bad ? 1 : 0;
}
