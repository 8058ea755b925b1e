/*
 * bench_map.c - data parallelism: out[i] = kernel(in[i]) over an array of
 * doubles, with a cheap kernel (x * x + 1: memory bound) and a heavy one
 * (HEAVY_ITERS rounds of x = sin(x) + 1: compute bound), run by
 *   sequential          a plain loop on the calling thread (the baseline)
 *   OpenMP              #pragma omp parallel for (schedule(static)), with
 *                       as many threads as weft has workers
 *   weft_map            one call of the body per block of items (lazy
 *                       splitting); the body loops over the block
 *   weft_parallel_for   one call of the body per range (lazy splitting)
 *   oneTBB              tbb::parallel_for over a blocked_range with the
 *                       default auto_partitioner, in a task_arena of as
 *                       many threads (peers_tbb.cpp); one call of a C body
 *                       per block, through a function pointer as weft's
 * DESIGN.md section 8: "map / parallel for over 10M items, cheap and heavy
 * kernels".
 *
 * Every variant runs the same C loop (seq_cheap(), seq_heavy()) over its
 * blocks. Every output is compared with the sequential result, bit for bit;
 * the answer in the report is a checksum of the output (the sum of the
 * doubles' bit patterns), right when it is the sequential one's. A
 * difference exits 1, after the report. Each round runs the variants of a
 * kernel in an order rotated each round, with a short sleep between runs so
 * that no runtime's spinning workers eat into the next run. Speed-ups are
 * per-round t_sequential / t_variant (median, min..max); "vs OpenMP" and
 * "vs oneTBB" are the per-round ratios of weft's speed-up over the peer's
 * (t_peer / t_weft).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "bench_common.h"

#if BENCH_HAVE_OPENMP
#include <omp.h>
#endif
#if BENCH_HAVE_TBB
#include "peers_tbb.h"
#endif

#define HEAVY_ITERS 20

enum kernel { K_CHEAP, K_HEAVY, NKERNELS };
enum variant { V_SEQ, V_OMP, V_MAP, V_PFOR, V_TBB, NVARIANTS };

static const char *const kernel_name[NKERNELS] = { "cheap", "heavy" };
static const char *const variant_name[NVARIANTS] = {
	"sequential", "openmp", "weft_map", "weft_parallel_for", "tbb",
};
/* The report's system names (bench_common.h). */
static const char *const variant_system[NVARIANTS] = {
	"serial", "openmp", "weft", "weft_pfor", "tbb",
};

static inline double k_cheap(double x)
{
	return x * x + 1.0;
}

static inline double k_heavy(double x)
{
	for (int i = 0; i < HEAVY_ITERS; i++)
		x = sin(x) + 1.0;
	return x;
}

/* Sequential: the baseline every speed-up is measured against. */
static void seq_cheap(const double *in, double *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = k_cheap(in[i]);
}

static void seq_heavy(const double *in, double *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = k_heavy(in[i]);
}

#if BENCH_HAVE_OPENMP
static void omp_cheap(const double *in, double *out, size_t n)
{
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < n; i++)
		out[i] = k_cheap(in[i]);
}

static void omp_heavy(const double *in, double *out, size_t n)
{
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < n; i++)
		out[i] = k_heavy(in[i]);
}
#endif

/*
 * weft_map bodies: a block of count items per call, run by the sequential
 * loop itself (inlined here, so gcc vectorizes it the same way).
 */
static int map_cheap(const void *in, void *out, size_t count, void *arg)
{
	(void)arg;
	seq_cheap(in, out, count);
	return 0;
}

static int map_heavy(const void *in, void *out, size_t count, void *arg)
{
	(void)arg;
	seq_heavy(in, out, count);
	return 0;
}

/* weft_parallel_for bodies: a range per call, the same loop as sequential. */
struct arrays {
	const double *in;
	double *out;
};

static int pfor_cheap(size_t begin, size_t end, void *arg)
{
	const struct arrays *a = arg;

	seq_cheap(a->in + begin, a->out + begin, end - begin);
	return 0;
}

static int pfor_heavy(size_t begin, size_t end, void *arg)
{
	const struct arrays *a = arg;

	seq_heavy(a->in + begin, a->out + begin, end - begin);
	return 0;
}

#if BENCH_HAVE_TBB
/* oneTBB bodies: a block per call, the same loop again. */
static void tbb_cheap(size_t begin, size_t end, void *arg)
{
	const struct arrays *a = arg;

	seq_cheap(a->in + begin, a->out + begin, end - begin);
}

static void tbb_heavy(size_t begin, size_t end, void *arg)
{
	const struct arrays *a = arg;

	seq_heavy(a->in + begin, a->out + begin, end - begin);
}
#endif

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_map: %s failed: %s\n", what, strerror(-err));
	exit(1);
}

#if BENCH_HAVE_TBB
static struct peers_tbb_arena *arena;
#endif

/* Run one variant once; returns seconds. */
static double run_once(struct weft_pool *pool, enum kernel k, enum variant v,
		       const double *in, double *out, size_t n)
{
	struct arrays a = { in, out };
	int64_t t0, t1;
	int err = 0;

	t0 = bench_now_ns();
	switch (v) {
	case V_SEQ:
		(k == K_CHEAP ? seq_cheap : seq_heavy)(in, out, n);
		break;
	case V_OMP:
#if BENCH_HAVE_OPENMP
		(k == K_CHEAP ? omp_cheap : omp_heavy)(in, out, n);
#else
		abort();
#endif
		break;
	case V_MAP:
		err = weft_map(pool, in, sizeof(double), out, sizeof(double), n,
			       0, k == K_CHEAP ? map_cheap : map_heavy, NULL);
		break;
	case V_PFOR:
		err = weft_parallel_for(pool, 0, n, 0,
					k == K_CHEAP ? pfor_cheap : pfor_heavy,
					&a);
		break;
	case V_TBB:
#if BENCH_HAVE_TBB
		err = peers_tbb_parallel_for(arena, n,
					     k == K_CHEAP ? tbb_cheap : tbb_heavy,
					     &a, NULL);
#else
		abort();
#endif
		break;
	default:
		abort();
	}
	t1 = bench_now_ns();
	if (err)
		die(variant_name[v], err);
	return (double)(t1 - t0) / 1e9;
}

/* The answer: the sum of the doubles' bit patterns, modulo 2^64. */
static uint64_t checksum(const double *p, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t bits;

		memcpy(&bits, &p[i], sizeof(bits));
		sum += bits;
	}
	return sum;
}

/* Whether @out equals the sequential result bit for bit; says where not. */
static bool check(const double *out, const double *ref, size_t n,
		  enum kernel k, enum variant v)
{
	if (!memcmp(out, ref, n * sizeof(double)))
		return true;
	for (size_t i = 0; i < n; i++) {
		if (memcmp(&out[i], &ref[i], sizeof(double))) {
			fprintf(stderr,
				"bench_map: %s/%s: out[%zu] = %.17g, sequential gives %.17g\n",
				kernel_name[k], variant_name[v], i, out[i], ref[i]);
			break;
		}
	}
	return false;
}

#if BENCH_HAVE_TBB
static OPAQUE void empty_block(size_t begin, size_t end, void *arg)
{
	(void)begin;
	(void)end;
	(void)arg;
}

/*
 * The oneTBB peer calls its C body through a function pointer per block
 * (as weft calls its bodies), where a C++ user would write the loop in a
 * lambda the compiler can inline. Show that this costs nothing worth
 * counting: the blocks of one map (counted in an untimed run), times what
 * an indirect call costs here, against the map's time.
 */
static void tbb_call_cost(enum kernel k, const double *in, double *out,
			  size_t n, const struct bench_series *t)
{
	peers_tbb_range_fn volatile fn = empty_block;
	struct arrays a = { in, out };
	size_t blocks = 0;
	int64_t t0;
	double call_ns, map_s = bench_series_median(t);
	int err;
	enum { CALLS = 1000000 };

	err = peers_tbb_parallel_for(arena, n,
				     k == K_CHEAP ? tbb_cheap : tbb_heavy, &a,
				     &blocks);
	if (err)
		die("peers_tbb_parallel_for", err);
	t0 = bench_now_ns();
	for (size_t i = 0; i < CALLS; i++)
		fn(i, i, NULL);
	call_ns = (double)(bench_now_ns() - t0) / CALLS;
	printf("note: oneTBB %s: %zu blocks per map (%.0f items each); an indirect call costs %.1f ns: %.2g%% of the map\n",
	       kernel_name[k], blocks, blocks ? (double)n / (double)blocks : 0.0,
	       call_ns, map_s > 0 ? 100.0 * (double)blocks * call_ns * 1e-9 / map_s : 0.0);
}
#endif

static double *alloc_doubles(size_t n)
{
	double *p = malloc(n * sizeof(double));

	if (!p)
		die("malloc", -ENOMEM);
	/* Fault every page in now, not inside a timed run. */
	memset(p, 0, n * sizeof(double));
	return p;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_load load;
	struct weft_pool *pool;
	struct weft_pool_options wo;
	struct bench_series t[NKERNELS][NVARIANTS] = { 0 };
	struct bench_series ratio;
	size_t n[NKERNELS];
	double *in, *out, *ref[NKERNELS];
	/* Checksums: the sequential result's, and each variant's last. */
	uint64_t ref_sum[NKERNELS], sum[NKERNELS][NVARIANTS] = { 0 };
	bool wrong[NKERNELS][NVARIANTS] = { 0 }, bad = false;
	bool warm_wrong[NVARIANTS] = { 0 };     /* the cheap kernel's */
	unsigned rounds;
	bool have_omp = BENCH_HAVE_OPENMP, have_tbb = BENCH_HAVE_TBB;
	int err;

	bench_parse_args(&o, "bench_map", argc, argv);
	if (o.tiny) {
		n[K_CHEAP] = n[K_HEAVY] = 10000;
	} else {
		n[K_CHEAP] = 10000000;
		n[K_HEAVY] = o.quick ? 1000000 : 10000000;
	}
	rounds = bench_rounds(&o, o.tiny ? 1 : 5, 7);

#if BENCH_HAVE_OPENMP
	omp_set_num_threads((int)o.workers);
#endif
#if BENCH_HAVE_TBB
	/* Threads in all, the caller's included: it works in the arena, as
	 * OpenMP's master does in its team. */
	err = peers_tbb_init(o.workers);
	if (err)
		die("peers_tbb_init", err);
	err = peers_tbb_arena_create(o.workers, &arena);
	if (err)
		die("peers_tbb_arena_create", err);
#endif
	weft_pool_options_init(&wo);
	wo.workers = o.workers;
	err = weft_pool_create(&wo, &pool);
	if (err)
		die("weft_pool_create", err);

	{
		size_t nmax = n[K_CHEAP] > n[K_HEAVY] ? n[K_CHEAP] : n[K_HEAVY];

		in = alloc_doubles(nmax);
		out = alloc_doubles(nmax);
		for (size_t i = 0; i < nmax; i++)
			in[i] = (double)(i % 100000) * 1e-4 - 5.0;
		for (unsigned k = 0; k < NKERNELS; k++) {
			ref[k] = alloc_doubles(n[k]);
			(k == K_CHEAP ? seq_cheap : seq_heavy)(in, ref[k], n[k]);
			ref_sum[k] = checksum(ref[k], n[k]);
		}
	}

	printf("bench_map: cheap x*x+1 over %zu doubles, heavy %d x sin over %zu doubles, %u workers, %u rounds%s\n",
	       n[K_CHEAP], HEAVY_ITERS, n[K_HEAVY], o.workers, rounds,
	       o.tiny ? " (tiny)" : o.quick ? " (quick)" : "");
	if (!have_omp)
		printf("note: built without OpenMP; the OpenMP peer is skipped\n");
	if (!have_tbb)
		printf("note: built without oneTBB; the oneTBB peer is skipped\n");

	bench_load_begin(&load);
	/* Warm-up: start libgomp's team (weft's and oneTBB's threads run
	 * already), so that no first round pays for a thread's creation. */
	for (unsigned v = 0; v < NVARIANTS; v++) {
		size_t nw = n[K_CHEAP] < 100000 ? n[K_CHEAP] : 100000;

		if ((v == V_OMP && !have_omp) || (v == V_TBB && !have_tbb))
			continue;
		run_once(pool, K_CHEAP, (enum variant)v, in, out, nw);
		if (!check(out, ref[K_CHEAP], nw, K_CHEAP, (enum variant)v))
			warm_wrong[v] = bad = true;
	}
	bench_sleep_ms(20);

	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned k = 0; k < NKERNELS; k++) {
			for (unsigned j = 0; j < NVARIANTS; j++) {
				enum variant v = (enum variant)((j + r) % NVARIANTS);
				char name[64];
				double s;

				snprintf(name, sizeof(name), "%s_%s", kernel_name[k],
					 variant_name[v]);
				if ((v == V_OMP && !have_omp) ||
				    (v == V_TBB && !have_tbb) ||
				    !bench_selected(&o, name))
					continue;
				/* NaN everywhere: a variant that skips an
				 * item cannot pass the check. */
				memset(out, 0xff, n[k] * sizeof(double));
				s = run_once(pool, (enum kernel)k, v, in, out, n[k]);
				if (!wrong[k][v])
					sum[k][v] = checksum(out, n[k]);
				if (!check(out, ref[k], n[k], (enum kernel)k, v) ||
				    sum[k][v] != ref_sum[k])
					wrong[k][v] = bad = true;
				bench_series_add(&t[k][v], s);
				bench_sleep_ms(20);
			}
		}
	}

	bench_load_end(&o, &load);
	printf("\n%-7s %-18s %10s %9s %13s %9s %13s %9s %13s\n", "kernel",
	       "variant", "ms", "speed-up", "min..max", "vs OpenMP", "min..max",
	       "vs oneTBB", "min..max");
	for (unsigned k = 0; k < NKERNELS; k++) {
		for (unsigned v = 0; v < NVARIANTS; v++) {
			char variant[64], sp[16], spr[32], vo[16] = "", vor[32] = "";
			char vt[16] = "", vtr[32] = "";

			if (!t[k][v].n)
				continue;
			snprintf(variant, sizeof(variant), "%s_%s", kernel_name[k],
				 variant_name[v]);
			bench_csv_series(&o, variant, "time_s", &t[k][v]);
			bench_series_ratio(&t[k][V_SEQ], &t[k][v], &ratio);
			bench_fmt_ratio(&ratio, sp, sizeof(sp), spr, sizeof(spr));
			bench_csv_series(&o, variant, "speedup", &ratio);
			if (v == V_MAP || v == V_PFOR) {
				/* weft's speed-up / OpenMP's = t_omp / t_weft */
				bench_series_ratio(&t[k][V_OMP], &t[k][v], &ratio);
				bench_fmt_ratio(&ratio, vo, sizeof(vo), vor,
						sizeof(vor));
				bench_csv_series(&o, variant, "vs_openmp", &ratio);
				bench_series_ratio(&t[k][V_TBB], &t[k][v], &ratio);
				bench_fmt_ratio(&ratio, vt, sizeof(vt), vtr,
						sizeof(vtr));
				bench_csv_series(&o, variant, "vs_tbb", &ratio);
			}
			printf("%-7s %-18s %10.1f %9s %13s %9s %13s %9s %13s\n",
			       kernel_name[k], variant_name[v],
			       bench_series_median(&t[k][v]) * 1e3, sp, spr, vo,
			       vor, vt, vtr);
		}
	}
#if BENCH_HAVE_TBB
	printf("\n");
	for (unsigned k = 0; k < NKERNELS; k++)
		if (t[k][V_TBB].n)
			tbb_call_cost((enum kernel)k, in, out, n[k], &t[k][V_TBB]);
#endif

	/* The comparison rows: weft_map is weft's, every other variant is
	 * timed against it round by round (weft_parallel_for too). */
	printf("\n");
	for (unsigned k = 0; k < NKERNELS; k++) {
		static const enum variant rows[] = {
			V_MAP, V_PFOR, V_SEQ, V_OMP, V_TBB,
		};
		char workload[32], size[32], answer[32];

		snprintf(workload, sizeof(workload), "map_%s", kernel_name[k]);
		bench_count_text(size, sizeof(size), n[k], "doubles");
		for (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			enum variant v = rows[i];

			if (!t[k][v].n)
				continue;
			snprintf(answer, sizeof(answer), "%016llx",
				 (unsigned long long)sum[k][v]);
			bench_report(&o, workload, size, variant_system[v],
				     &t[k][v], v == V_MAP ? NULL : &t[k][V_MAP],
				     answer,
				     !wrong[k][v] && !(k == K_CHEAP && warm_wrong[v]));
		}
	}

	printf("\n");
	if (!have_omp)
		printf("target: weft speed-up >= OpenMP's: skipped (no OpenMP)\n");
	for (unsigned k = 0; k < NKERNELS && have_omp; k++) {
		for (unsigned v = V_MAP; v <= V_PFOR; v++) {
			char text[96], meas[32], metric[96];
			double vo;

			bench_series_ratio(&t[k][V_OMP], &t[k][v], &ratio);
			if (!ratio.n)
				continue;
			vo = bench_series_median(&ratio);
			snprintf(text, sizeof(text), "%s %s speed-up / OpenMP's >= 1",
				 kernel_name[k], variant_name[v]);
			snprintf(meas, sizeof(meas), "%.2fx (%.2f..%.2f)", vo,
				 bench_series_min(&ratio), bench_series_max(&ratio));
			snprintf(metric, sizeof(metric), "%s_%s_vs_openmp_ge_1",
				 kernel_name[k], variant_name[v]);
			bench_target(&o, metric, vo, vo >= 1.0, text, meas);
		}
	}

#if BENCH_HAVE_TBB
	peers_tbb_arena_destroy(arena);
	peers_tbb_fini();
#endif
	weft_pool_destroy(pool);
	free(in);
	free(out);
	for (unsigned k = 0; k < NKERNELS; k++)
		free(ref[k]);
	if (bad)
		fprintf(stderr, "bench_map: a variant's output differs from the sequential loop's\n");
	return bad ? 1 : 0;
}
