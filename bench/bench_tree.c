/*
 * bench_tree.c - fork/join on irregular trees: one task per child, with no
 * cutoff, where the shape of the tree is not known until it is walked.
 * bench_fib's trees are regular (every inner node of skynet has 10
 * children, fib's call tree is fixed by n); these two are not, so they
 * also measure how well each scheduler balances work it cannot foresee:
 * how often idle workers find something to steal, and what a steal costs.
 *
 *   nqueens(n)  the number of ways to place n queens on an n x n board so
 *               that none attacks another. Each node is a partial board of
 *               the first rows; it spawns one task per square of the next
 *               row that no queen attacks, and a full board counts 1. The
 *               shape is the classic Cilk and BOTS nqueens (Frigo,
 *               Leiserson and Randall, "The Implementation of the Cilk-5
 *               Multithreaded Language", PLDI 1998; Duran et al.,
 *               "Barcelona OpenMP Tasks Suite", ICPP 2009), with the board
 *               held as three bitmasks passed by value (the columns taken,
 *               and the squares of the next row attacked along each
 *               diagonal) instead of an array of rows, so that a task's
 *               work is a few instructions and the spawns dominate.
 *               Most branches die within a row or two, so the subtrees
 *               range from one node to hundreds of thousands.
 *               Sizes: n = 13 (73712 solutions, 4.7 M nodes), --quick
 *               n = 12 (14200, 856 K nodes), --tiny n = 8 (92).
 *
 *   uts         Unbalanced Tree Search (Olivier, Huan, Liu, Prins, Dinan,
 *               Sadayappan and Tseng, "UTS: An Unbalanced Tree Search
 *               Benchmark", LCPC 2006): count the nodes of a tree made by
 *               a splittable random number generator, SHA-1. A node's state
 *               is a 20-byte digest; the root's is SHA-1 of 16 zero bytes
 *               and the seed (4 bytes, big-endian); child i's is SHA-1 of
 *               its parent's state and i (4 bytes, big-endian). The
 *               geometric tree with the fixed shape function ("-t 1 -a 3
 *               -d D -b B -r R"): a node at depth d < D has
 *               floor(log(1 - u) / log(1 - p)) children, p = 1 / (1 + B),
 *               u the last 4 bytes of its state (big-endian, top bit
 *               cleared) over 2^31; a node at depth D has none. Each node
 *               costs one SHA-1 per child, about 100 ns, so the tasks are
 *               small but not empty, and the subtrees' sizes are anybody's
 *               guess. Written from that description (the numbers, not the
 *               code, of UTS). Sizes: UTS's standard tree T1 ("-t 1 -a 3
 *               -d 10 -b 4 -r 19", 4130071 nodes, UTS's sample_trees.sh),
 *               --quick the same tree one level shallower (d = 9, 1031269
 *               nodes), --tiny d = 5 (3987 nodes). The first figure checks
 *               the implementation against UTS's; the other two are what
 *               this implementation counts (its serial walk), which every
 *               system must match. Needs nettle's SHA-1; without it, the
 *               program skips uts and says so.
 *
 * each run by
 *   serial        the same recursion as plain function calls, on the
 *                 calling thread: the work without any scheduler
 *   weft          weft_spawn() per child, weft_join() of each in reverse
 *                 order (weft/async.h), inside a task submitted to a pool
 *                 of --workers workers
 *   OpenMP        #pragma omp task per child and taskwait, in a parallel
 *                 region of --workers threads whose root call one thread
 *                 makes (single)
 *   oneTBB        tbb::task_group, one run() per child and wait(), in a
 *                 tbb::task_arena of --workers threads (tree_tbb.cpp)
 *
 * Every version makes the same calls in the same order: the children of a
 * node are made (for uts, their states hashed) by the parent, kept in an
 * array in its frame, spawned one by one, and their counts summed after
 * the join. The UTS node functions are shared (tree_tbb.h), and the
 * recursive functions are opaque to the optimiser (noipa), so that no
 * version is inlined into itself or cloned for constants.
 *
 * Every run's answer is checked against the known count (OEIS A000170 for
 * nqueens); a wrong one is reported and makes the program exit 1, after
 * the table. Each round measures every system once per workload, in an
 * order rotated each round, with a short sleep between measurements so
 * that no runtime's spinning threads eat into the next one; a measurement
 * is one run, or for runs shorter than 20 ms (the serial nqueens, --tiny)
 * as many back-to-back runs as fill 20 ms, and its figure the time per
 * run. Pools and arenas are made once, before the rounds. Figures are
 * medians over the rounds of the time per run; ratios are per-round
 * ratios (median, min..max): "vs weft" is t_system / t_weft (above 1:
 * weft is faster), "speed-up" is t_serial / t_system.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>
#include <weft/async.h>

#include "bench_common.h"
#include "tree_tbb.h"

#if BENCH_HAVE_OPENMP
#include <omp.h>
#endif
#if BENCH_HAVE_NETTLE
#include <nettle/sha1.h>
#endif

enum sys { S_SERIAL, S_WEFT, S_OMP, S_TBB, NSYS };

/* The system's name in the report and in --only / CSV names. */
static const char *const sys_name[NSYS] = {
	"serial", "weft", "openmp", "tbb",
};
static const char *const sys_text[NSYS] = {
	"serial", "weft spawn/join", "OpenMP tasks", "oneTBB task_group",
};

enum work { W_NQUEENS, W_UTS, NWORK };

struct workload {
	enum work kind;
	const char *name;          /* "nqueens", "uts": the report's name */
	char size[40];             /* the report's size: "n=12", "T1 ..." */
	bool have;                 /* false: skipped (uts without nettle) */
	unsigned n;                /* nqueens: the board */
	struct tree_uts tree;      /* uts: the tree */
	struct tree_uts_node root;
	uint64_t expect;           /* the right answer */
	double nodes;              /* nodes of the tree: one task each, but
				    * for the root */
};

/* What one system computed on one workload, over all its runs. */
struct result {
	uint64_t answer;   /* the last answer, or the first wrong one */
	bool ok;           /* every run right */
	bool ran;
};

struct ctx {
	const struct bench_opts *o;
	bool have[NSYS];
	struct weft_pool *pool;
	struct tree_tbb *tbb;
	struct result res[NWORK][NSYS];
};

static void die(const char *what, int err, int code)
{
	fprintf(stderr, "bench_tree: %s failed: %s\n", what, strerror(-err));
	exit(code);
}

/* ---- nqueens ------------------------------------------------------------ */

/*
 * A partial board: @cols the columns taken by the queens of the rows so
 * far, @left and @right the squares of the next row that they attack
 * along the two diagonals (shifted one column further at each row), @all
 * the n columns. The board is full when every column is taken.
 */
static OPAQUE uint64_t nq_serial(uint32_t all, uint32_t cols, uint32_t left,
				 uint32_t right)
{
	uint32_t free = all & ~(cols | left | right);
	uint64_t sum = 0;

	if (cols == all)
		return 1;
	while (free) {
		uint32_t bit = free & (0u - free);

		free ^= bit;
		sum += nq_serial(all, cols | bit, (left | bit) << 1,
				 (right | bit) >> 1);
	}
	return sum;
}

/* The nodes of the tree (for the table's ns/node), outside the timing. */
static uint64_t nq_nodes(uint32_t all, uint32_t cols, uint32_t left,
			 uint32_t right)
{
	uint32_t free = all & ~(cols | left | right);
	uint64_t sum = 1;

	if (cols == all)
		return 1;
	while (free) {
		uint32_t bit = free & (0u - free);

		free ^= bit;
		sum += nq_nodes(all, cols | bit, (left | bit) << 1,
				(right | bit) >> 1);
	}
	return sum;
}

/* A weft task's board, and the count it returns (through memory: it
 * needs 64 bits, a pointer may have 32). */
struct nq {
	uint32_t all, cols, left, right;
	uint64_t count;
};

static OPAQUE int nq_weft(void *arg, void **result)
{
	struct nq *p = arg;
	struct nq kid[TREE_NQ_MAX];
	struct weft_spawn sp[TREE_NQ_MAX];
	uint32_t free = p->all & ~(p->cols | p->left | p->right);
	uint64_t sum = 0;
	unsigned k = 0;
	int err = 0;

	(void)result;
	if (p->cols == p->all) {
		p->count = 1;
		return 0;
	}
	while (free) {
		uint32_t bit = free & (0u - free);

		free ^= bit;
		kid[k].all = p->all;
		kid[k].cols = p->cols | bit;
		kid[k].left = (p->left | bit) << 1;
		kid[k].right = (p->right | bit) >> 1;
		weft_spawn(&sp[k], nq_weft, &kid[k]);
		k++;
	}
	/* Every child is joined, in reverse order, whatever the others
	 * returned (weft/async.h). */
	while (k-- > 0) {
		int e = weft_join(&sp[k], NULL);

		if (e && !err)
			err = e;
		sum += kid[k].count;
	}
	p->count = sum;
	return err;
}

#if BENCH_HAVE_OPENMP
static OPAQUE uint64_t nq_omp(uint32_t all, uint32_t cols, uint32_t left,
			      uint32_t right)
{
	uint32_t free = all & ~(cols | left | right);
	uint64_t cnt[TREE_NQ_MAX], sum = 0;
	unsigned k = 0;

	if (cols == all)
		return 1;
	if (!free)   /* a dead end: no tasks, and no taskwait to pay for */
		return 0;
	while (free) {
		uint32_t bit = free & (0u - free);
		uint32_t c = cols | bit, l = (left | bit) << 1,
			 r = (right | bit) >> 1;

		free ^= bit;
#pragma omp task shared(cnt) firstprivate(k, all, c, l, r)
		cnt[k] = nq_omp(all, c, l, r);
		k++;
	}
#pragma omp taskwait
	for (unsigned i = 0; i < k; i++)
		sum += cnt[i];
	return sum;
}
#endif

/* ---- uts ---------------------------------------------------------------- */

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

#if BENCH_HAVE_NETTLE
static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
#endif

/* Shared with tree_tbb.cpp, and opaque so that the C versions cannot
 * inline what the C++ one has to call. */
OPAQUE unsigned tree_uts_kids(const struct tree_uts *t,
			      const struct tree_uts_node *n)
{
	uint32_t v;
	double u;

	/* The fixed shape: B expected children above depth D, none at D. */
	if (n->depth >= t->depth)
		return 0;
	v = get_be32(n->state + 16) & 0x7fffffff;
	u = (double)v / 2147483648.0;
	/* A geometric number of children, of mean B, by inversion: u < 1
	 * always, so log(1 - u) is finite. */
	return (unsigned)floor(log(1.0 - u) / t->log_q);
}

OPAQUE void tree_uts_child(const struct tree_uts_node *parent, unsigned i,
			   struct tree_uts_node *child)
{
#if BENCH_HAVE_NETTLE
	struct sha1_ctx h;
	uint8_t msg[24];

	memcpy(msg, parent->state, 20);
	put_be32(msg + 20, i);
	sha1_init(&h);
	sha1_update(&h, sizeof(msg), msg);
	sha1_digest(&h, 20, child->state);
	child->depth = parent->depth + 1;
#else
	(void)parent;
	(void)i;
	(void)child;
	abort();   /* uts is skipped without nettle */
#endif
}

/*
 * Set up @t (-d @depth -b @b -r @seed) and its root. Returns false when a
 * node could have more children than the versions have room for.
 */
static bool tree_uts_init(struct tree_uts *t, struct tree_uts_node *root,
			  unsigned depth, unsigned b, uint32_t seed)
{
	t->depth = depth;
	t->b = b;
	t->seed = seed;
	t->log_q = log(1.0 - 1.0 / (1.0 + b));
	/* The largest u is 1 - 2^-31. */
	if (floor(log(1.0 / 2147483648.0) / t->log_q) > TREE_UTS_MAX_KIDS)
		return false;
#if BENCH_HAVE_NETTLE
	struct sha1_ctx h;
	uint8_t msg[20] = { 0 };

	put_be32(msg + 16, seed);
	sha1_init(&h);
	sha1_update(&h, sizeof(msg), msg);
	sha1_digest(&h, 20, root->state);
#else
	memset(root->state, 0, sizeof(root->state));
#endif
	root->depth = 0;
	return true;
}

static OPAQUE uint64_t uts_serial(const struct tree_uts *t,
				  const struct tree_uts_node *n)
{
	unsigned k = tree_uts_kids(t, n);
	struct tree_uts_node kid;
	uint64_t sum = 1;

	for (unsigned i = 0; i < k; i++) {
		tree_uts_child(n, i, &kid);
		sum += uts_serial(t, &kid);
	}
	return sum;
}

/* A weft task: its node, and the nodes of its subtree that it returns. */
struct uts_task {
	struct tree_uts_node node;
	const struct tree_uts *tree;
	uint64_t count;
};

static OPAQUE int uts_weft(void *arg, void **result)
{
	struct uts_task *p = arg;
	struct uts_task kid[TREE_UTS_MAX_KIDS];
	struct weft_spawn sp[TREE_UTS_MAX_KIDS];
	unsigned k = tree_uts_kids(p->tree, &p->node);
	uint64_t sum = 1;
	int err = 0;

	(void)result;
	for (unsigned i = 0; i < k; i++) {
		tree_uts_child(&p->node, i, &kid[i].node);
		kid[i].tree = p->tree;
		weft_spawn(&sp[i], uts_weft, &kid[i]);
	}
	for (unsigned i = k; i-- > 0;) {
		int e = weft_join(&sp[i], NULL);

		if (e && !err)
			err = e;
		sum += kid[i].count;
	}
	p->count = sum;
	return err;
}

#if BENCH_HAVE_OPENMP
static OPAQUE uint64_t uts_omp(const struct tree_uts *t,
			       const struct tree_uts_node *n)
{
	unsigned k = tree_uts_kids(t, n);
	struct tree_uts_node kid[TREE_UTS_MAX_KIDS];
	uint64_t cnt[TREE_UTS_MAX_KIDS], sum = 1;

	if (!k)
		return 1;
	for (unsigned i = 0; i < k; i++) {
		tree_uts_child(n, i, &kid[i]);
#pragma omp task shared(kid, cnt) firstprivate(i, t)
		cnt[i] = uts_omp(t, &kid[i]);
	}
#pragma omp taskwait
	for (unsigned i = 0; i < k; i++)
		sum += cnt[i];
	return sum;
}
#endif

/* ---- one run ------------------------------------------------------------ */

static uint32_t nq_all(unsigned n)
{
	return (uint32_t)((1ull << n) - 1);
}

static int run_weft(struct weft_pool *pool, const struct workload *w,
		    uint64_t *out)
{
	struct nq nq = { nq_all(w->n), 0, 0, 0, 0 };
	struct uts_task uts = { w->root, &w->tree, 0 };
	struct weft_future *f;
	int err;

	if (w->kind == W_NQUEENS)
		err = weft_submit(pool, nq_weft, &nq, &f);
	else
		err = weft_submit(pool, uts_weft, &uts, &f);
	if (err)
		return err;
	err = weft_future_get(f, NULL);
	weft_future_unref(f);
	*out = w->kind == W_NQUEENS ? nq.count : uts.count;
	return err;
}

#if BENCH_HAVE_OPENMP
static uint64_t run_omp(unsigned threads, const struct workload *w)
{
	uint64_t r = 0;

#pragma omp parallel num_threads(threads)
#pragma omp single
	r = w->kind == W_NQUEENS ? nq_omp(nq_all(w->n), 0, 0, 0) :
				   uts_omp(&w->tree, &w->root);
	return r;
}
#endif

/* Run @s on @w once and check its answer; returns seconds. */
static double run_once(struct ctx *c, const struct workload *w, enum sys s)
{
	struct result *res = &c->res[w->kind][s];
	int64_t t0, t1;
	uint64_t r = 0;
	int err = 0;

	t0 = bench_now_ns();
	switch (s) {
	case S_SERIAL:
		r = w->kind == W_NQUEENS ? nq_serial(nq_all(w->n), 0, 0, 0) :
					   uts_serial(&w->tree, &w->root);
		break;
	case S_WEFT:
		err = run_weft(c->pool, w, &r);
		break;
	case S_OMP:
#if BENCH_HAVE_OPENMP
		r = run_omp(c->o->workers, w);
#else
		abort();
#endif
		break;
	case S_TBB:
#if BENCH_HAVE_TBB
		err = w->kind == W_NQUEENS ?
			      tree_tbb_nqueens(c->tbb, w->n, &r) :
			      tree_tbb_uts(c->tbb, &w->tree, &w->root, &r);
#else
		abort();
#endif
		break;
	default:
		abort();
	}
	t1 = bench_now_ns();

	if (!res->ran) {
		res->ran = true;
		res->ok = true;
	}
	/* Say so at the first wrong run of each system; keep that answer. */
	if (res->ok && err)
		fprintf(stderr, "bench_tree: %s %s by %s failed: %s\n", w->name,
			w->size, sys_text[s], strerror(-err));
	else if (res->ok && r != w->expect)
		fprintf(stderr, "bench_tree: %s %s by %s gives %llu, not %llu\n",
			w->name, w->size, sys_text[s], (unsigned long long)r,
			(unsigned long long)w->expect);
	if (res->ok)
		res->answer = r;
	if (err || r != w->expect)
		res->ok = false;
	return (double)(t1 - t0) / 1e9;
}

/*
 * One round's figure for @s on @w: seconds per run, over as many runs
 * back to back as fill SAMPLE_MIN_S (at least one), so that a run of a few
 * milliseconds (the serial nqueens, --tiny) is not one timer tick or
 * preemption away from a different figure. Stops at the first wrong
 * answer: its speed means nothing.
 */
#define SAMPLE_MIN_S 0.02
#define SAMPLE_MAX_RUNS 1000

static double run_sample(struct ctx *c, const struct workload *w, enum sys s)
{
	double total = 0;
	unsigned runs = 0;

	do {
		total += run_once(c, w, s);
		runs++;
	} while (total < SAMPLE_MIN_S && runs < SAMPLE_MAX_RUNS &&
		 c->res[w->kind][s].ok);
	return total / runs;
}

/* ---- setup and report --------------------------------------------------- */

/* Solutions of nqueens, OEIS A000170, for n = 0..16. */
static const uint64_t nq_solutions[TREE_NQ_MAX + 1] = {
	1, 1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680, 14200, 73712, 365596,
	2279184, 14772512,
};

static void nqueens_workload(struct workload *w, unsigned n)
{
	memset(w, 0, sizeof(*w));
	w->kind = W_NQUEENS;
	w->name = "nqueens";
	w->have = true;
	w->n = n;
	snprintf(w->size, sizeof(w->size), "n=%u", n);
	w->expect = nq_solutions[n];
	w->nodes = (double)nq_nodes(nq_all(n), 0, 0, 0);
}

/*
 * The UTS trees, all geometric with the fixed shape, b = 4, seed 19: T1
 * (its count from UTS's sample_trees.sh) and the same tree cut at a
 * smaller depth (the counts of this program's serial walk; T1 matching
 * UTS's figure is what vouches for them).
 */
static void uts_workload(struct workload *w, const struct bench_opts *o)
{
	unsigned depth = o->tiny ? 5 : o->quick ? 9 : 10;

	memset(w, 0, sizeof(*w));
	w->kind = W_UTS;
	w->name = "uts";
	w->have = BENCH_HAVE_NETTLE;
	w->expect = o->tiny ? 3987 : o->quick ? 1031269 : 4130071;
	w->nodes = (double)w->expect;
	if (!tree_uts_init(&w->tree, &w->root, depth, 4, 19)) {
		fprintf(stderr, "bench_tree: a uts node may have more than %d children\n",
			TREE_UTS_MAX_KIDS);
		exit(1);
	}
	if (depth == 10)
		snprintf(w->size, sizeof(w->size), "T1 %llu nodes",
			 (unsigned long long)w->expect);
	else
		snprintf(w->size, sizeof(w->size), "geo d=%u b=%u r=%u",
			 depth, w->tree.b, (unsigned)w->tree.seed);
}

/* "<workload>_<system>", what --only matches; the CSV adds "_<N>w" to
 * the parallel ones. */
static void variant_name(char *buf, size_t len, const struct workload *w,
			 enum sys s)
{
	snprintf(buf, len, "%s_%s", w->name, sys_name[s]);
}

static bool selected(const struct ctx *c, const struct workload *w,
		     enum sys s)
{
	char name[64];

	if (!c->have[s] || !w->have)
		return false;
	variant_name(name, sizeof(name), w, s);
	return bench_selected(c->o, name);
}

static void report_workload(const struct ctx *c, const struct workload *w,
			    struct bench_series t[NSYS])
{
	const struct bench_opts *o = c->o;
	struct bench_series ratio, per;
	bool any = false;

	for (unsigned s = 0; s < NSYS; s++)
		any |= t[s].n > 0;
	if (!any)
		return;
	printf("\n%s %s: answer %llu, %.0f nodes (a task each, but the root)\n",
	       w->name, w->size, (unsigned long long)w->expect, w->nodes);
	printf("%-18s %7s %9s %16s %8s %8s %12s %8s %12s\n", "system",
	       "threads", "ms", "min..max", "ns/node", "vs weft", "min..max",
	       "speed-up", "min..max");
	for (unsigned i = 0; i < NSYS; i++) {
		enum sys s = (enum sys)i;
		unsigned threads = s == S_SERIAL ? 1 : o->workers;
		char name[64], range[32], vm[16], vr[32], sm[16], sr[32];

		if (!t[s].n)
			continue;
		if (s == S_SERIAL)
			snprintf(name, sizeof(name), "%s_serial", w->name);
		else
			snprintf(name, sizeof(name), "%s_%s_%uw", w->name,
				 sys_name[s], threads);
		bench_csv_series(o, name, "seconds", &t[s]);

		per.n = 0;
		for (unsigned r = 0; r < t[s].n; r++)
			bench_series_add(&per, t[s].v[r] * 1e9 / w->nodes);
		bench_csv_series(o, name, "ns_per_node", &per);

		bench_series_ratio(&t[s], &t[S_WEFT], &ratio);
		if (s != S_WEFT)
			bench_csv_series(o, name, "over_weft", &ratio);
		bench_fmt_ratio(&ratio, vm, sizeof(vm), vr, sizeof(vr));

		bench_series_ratio(&t[S_SERIAL], &t[s], &ratio);
		if (s != S_SERIAL)
			bench_csv_series(o, name, "speedup", &ratio);
		bench_fmt_ratio(&ratio, sm, sizeof(sm), sr, sizeof(sr));

		snprintf(range, sizeof(range), "%.2f..%.2f",
			 bench_series_min(&t[s]) * 1e3,
			 bench_series_max(&t[s]) * 1e3);
		printf("%-18s %7u %9.2f %16s %8.1f %8s %12s %8s %12s\n",
		       sys_text[s], threads, bench_series_median(&t[s]) * 1e3,
		       range, bench_series_median(&per), vm, vr, sm, sr);
	}
}

/* The comparison rows (bench_report(): weft's first), and whether every
 * answer was right. */
static bool report_rows(const struct ctx *c, const struct workload *w,
			struct bench_series t[NSYS])
{
	static const enum sys order[NSYS] = { S_WEFT, S_SERIAL, S_OMP, S_TBB };
	bool all_ok = true;

	for (unsigned i = 0; i < NSYS; i++) {
		enum sys s = order[i];
		const struct result *res = &c->res[w->kind][s];
		char answer[32];

		if (!res->ran)
			continue;
		snprintf(answer, sizeof(answer), "%llu",
			 (unsigned long long)res->answer);
		bench_report(c->o, w->name, w->size, sys_name[s], &t[s],
			     s == S_WEFT ? NULL : &t[S_WEFT], answer, res->ok);
		if (!res->ok) {
			fprintf(stderr, "bench_tree: %s %s: %s answered %s, not %llu\n",
				w->name, w->size, sys_name[s], answer,
				(unsigned long long)w->expect);
			all_ok = false;
		}
	}
	return all_ok;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_load load;
	static struct ctx c;
	struct workload w[NWORK], warm[NWORK];
	static struct bench_series t[NWORK][NSYS];
	struct weft_pool_options wo;
	unsigned rounds;
	bool ok = true;
	int err;

	bench_parse_args(&o, "bench_tree", argc, argv);
	c.o = &o;
	rounds = bench_rounds(&o, o.tiny ? 1 : 5, 9);
	nqueens_workload(&w[W_NQUEENS], o.tiny ? 8 : o.quick ? 12 : 13);
	uts_workload(&w[W_UTS], &o);
	/* The warm-up runs the --tiny sizes. */
	nqueens_workload(&warm[W_NQUEENS], 8);
	{
		struct bench_opts tiny = o;

		tiny.tiny = tiny.quick = true;
		uts_workload(&warm[W_UTS], &tiny);
	}

	c.have[S_SERIAL] = c.have[S_WEFT] = true;
	c.have[S_OMP] = BENCH_HAVE_OPENMP;
	c.have[S_TBB] = BENCH_HAVE_TBB;

	weft_pool_options_init(&wo);
	wo.workers = o.workers;
	err = weft_pool_create(&wo, &c.pool);
	if (err)
		die("weft_pool_create", err, 77);
#if BENCH_HAVE_TBB
	err = tree_tbb_create(o.workers, &c.tbb);
	if (err)
		die("tree_tbb_create", err, 77);
#endif

	printf("bench_tree: irregular fork/join, one task per child, no cutoff: nqueens %s, uts %s; %u thread%s, %u round%s%s\n",
	       w[W_NQUEENS].size, w[W_UTS].have ? w[W_UTS].size : "skipped",
	       o.workers,
	       o.workers == 1 ? "" : "s", rounds, rounds == 1 ? "" : "s",
	       o.tiny ? " (tiny)" : o.quick ? " (quick)" : "");
	if (BENCH_HAVE_NETTLE)
		printf("uts tree: geometric, fixed shape (-t 1 -a 3 -d %u -b %u -r %u), %llu nodes%s\n",
		       w[W_UTS].tree.depth, w[W_UTS].tree.b,
		       (unsigned)w[W_UTS].tree.seed,
		       (unsigned long long)w[W_UTS].expect,
		       w[W_UTS].tree.depth == 10 ? " (UTS's T1)" : "");
	else
		printf("note: uts skipped (not built with nettle, which has its SHA-1)\n");
	if (!BENCH_HAVE_TBB)
		printf("note: oneTBB skipped (not built with oneTBB)\n");
	if (!BENCH_HAVE_OPENMP)
		printf("note: OpenMP skipped (not built with OpenMP)\n");

	bench_load_begin(&load);
	/* Warm-up: start every runtime's threads, fault in their stacks.
	 * Its answers are checked too, but not reported. */
	for (unsigned k = 0; k < NWORK; k++)
		for (unsigned s = 0; s < NSYS; s++)
			if (selected(&c, &w[k], (enum sys)s))
				run_once(&c, &warm[k], (enum sys)s);
	for (unsigned k = 0; k < NWORK; k++)
		for (unsigned s = 0; s < NSYS; s++) {
			if (c.res[k][s].ran && !c.res[k][s].ok)
				ok = false;
			c.res[k][s] = (struct result){ 0 };
		}
	bench_sleep_ms(20);

	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned k = 0; k < NWORK; k++) {
			for (unsigned j = 0; j < NSYS; j++) {
				enum sys s = (enum sys)((j + r) % NSYS);

				if (!selected(&c, &w[k], s))
					continue;
				bench_series_add(&t[k][s], run_sample(&c, &w[k], s));
				bench_sleep_ms(20);
			}
		}
	}
	bench_load_end(&o, &load);

	for (unsigned k = 0; k < NWORK; k++)
		report_workload(&c, &w[k], t[k]);
	printf("\n");
	for (unsigned k = 0; k < NWORK; k++)
		ok &= report_rows(&c, &w[k], t[k]);

#if BENCH_HAVE_TBB
	tree_tbb_destroy(c.tbb);
#endif
	weft_pool_destroy(c.pool);
	return ok ? 0 : 1;
}
