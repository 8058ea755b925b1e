/*
 * test_map.c - weft/map.h: weft_map() and weft_parallel_for().
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "helpers.h"

/* weft_map(): int in, long long out, so the two strides differ. */

struct tally {
	atomic_int calls;
	atomic_int items;	/* sum of count */
};

/* @arg, when not NULL, is a struct tally. */
static int times3_plus1(const void *in, void *out, size_t count, void *arg)
{
	const int *x = in;
	long long *y = out;
	struct tally *t = arg;

	if (t) {
		atomic_fetch_add(&t->calls, 1);
		atomic_fetch_add(&t->items, (int)count);
	}
	for (size_t i = 0; i < count; i++)
		y[i] = (long long)x[i] * 3 + 1;
	return 0;
}

static void check_map(struct weft_pool *pool, size_t n, size_t chunk)
{
	int *in = malloc((n ? n : 1) * sizeof(*in));
	long long *out = malloc((n + 1) * sizeof(*out));
	struct tally t = { 0, 0 };

	cr_assert(in && out);
	for (size_t i = 0; i < n; i++)
		in[i] = (int)i - 50;
	for (size_t i = 0; i <= n; i++)
		out[i] = -7;
	cr_assert_eq(weft_map(pool, in, sizeof(*in), out, sizeof(*out), n, chunk,
			      times3_plus1, &t), 0, "n %zu chunk %zu", n, chunk);
	cr_assert_eq(atomic_load(&t.items), (int)n, "n %zu chunk %zu", n, chunk);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(out[i], ((long long)i - 50) * 3 + 1,
			     "n %zu chunk %zu: out[%zu] = %lld", n, chunk, i, out[i]);
	cr_assert_eq(out[n], -7, "wrote past the end");
	free(in);
	free(out);
}

Test(map, results_in_input_order_split_on_demand, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	const size_t sizes[] = { 0, 1, 7, 100000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_map(pool, sizes[i], 0);
	weft_pool_destroy(pool);
}

Test(map, results_in_input_order_chunk_3, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	const size_t sizes[] = { 0, 1, 7, 100000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_map(pool, sizes[i], 3);
	weft_pool_destroy(pool);
}

Test(map, chunk_larger_than_n, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);

	check_map(pool, 7, 1000);
	weft_pool_destroy(pool);
}

Test(map, more_workers_than_cores, .timeout = 30)
{
	struct weft_pool *pool = pool_new(8);

	check_map(pool, 100000, 0);
	check_map(pool, 1000, 1);
	weft_pool_destroy(pool);
}

static int square_in_place(const void *in, void *out, size_t count,
			   void *arg)
{
	const long *x = in;
	long *y = out;

	(void)arg;
	for (size_t i = 0; i < count; i++)
		y[i] = x[i] * x[i];
	return 0;
}

Test(map, in_place_same_array, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	enum { COUNT = 10000 };
	long *a = malloc(COUNT * sizeof(*a));

	cr_assert_not_null(a);
	for (long i = 0; i < COUNT; i++)
		a[i] = i;
	cr_assert_eq(weft_map(pool, a, sizeof(*a), a, sizeof(*a), COUNT, 0,
			      square_in_place, NULL), 0);
	for (long i = 0; i < COUNT; i++)
		cr_assert_eq(a[i], i * i, "a[%ld] = %ld", i, a[i]);
	free(a);
	weft_pool_destroy(pool);
}

Test(map, zero_sizes_are_einval, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	int in[4] = { 1, 2, 3, 4 };
	long long out[4] = { 0 };
	struct tally t = { 0, 0 };

	cr_assert_eq(weft_map(pool, in, 0, out, sizeof(*out), 4, 0, times3_plus1,
			      &t), -EINVAL);
	cr_assert_eq(weft_map(pool, in, sizeof(*in), out, 0, 4, 0, times3_plus1,
			      &t), -EINVAL);
	cr_assert_eq(atomic_load(&t.calls), 0);
	weft_pool_destroy(pool);
}

Test(map, null_arguments_are_einval, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	int in[4] = { 1, 2, 3, 4 };
	long long out[4] = { 0 };
	struct tally t = { 0, 0 };

	cr_assert_eq(weft_map(NULL, in, sizeof(*in), out, sizeof(*out), 4, 0,
			      times3_plus1, &t), -EINVAL);
	cr_assert_eq(weft_map(pool, NULL, sizeof(*in), out, sizeof(*out), 4, 0,
			      times3_plus1, &t), -EINVAL);
	cr_assert_eq(weft_map(pool, in, sizeof(*in), NULL, sizeof(*out), 4, 0,
			      times3_plus1, &t), -EINVAL);
	cr_assert_eq(weft_map(pool, in, sizeof(*in), out, sizeof(*out), 4, 0,
			      NULL, &t), -EINVAL);
	cr_assert_eq(atomic_load(&t.calls), 0);
	weft_pool_destroy(pool);
}

#define BIG 1000000

/*
 * The "later chunks are skipped" tests give every item after the failing
 * one a cost of ITEM_NS of busy work. Without it a worker that is
 * preempted before it reaches the failing item (two loaded cores) lets the
 * other worker race through half a million trivial items in a few
 * milliseconds; with it, that would take a stall of BIG / 10 * ITEM_NS.
 */
#define ITEM_NS 2000

static void busy_ns(int64_t ns)
{
	int64_t until = weft_now() + ns;

	while (weft_now() < until)
		;
}

struct fail_at {
	const int *base;
	size_t fail_index;
	atomic_int processed;
	atomic_int not_one;	/* calls whose count was not 1 (chunk 1) */
};

static int fail_at_item(const void *in, void *out, size_t count, void *arg)
{
	struct fail_at *fa = arg;
	size_t first = (size_t)((const int *)in - fa->base);

	if (count != 1)
		atomic_fetch_add(&fa->not_one, 1);
	for (size_t j = 0; j < count; j++) {
		size_t i = first + j;

		atomic_fetch_add(&fa->processed, 1);
		if (i == fa->fail_index)
			return -EIO;
		if (i > fa->fail_index)
			busy_ns(ITEM_NS);
		((int *)out)[j] = 1;
	}
	return 0;
}

Test(map, first_error_stops_the_map, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	int *in = calloc(BIG, sizeof(*in));
	int *out = calloc(BIG, sizeof(*out));
	struct fail_at fa;
	size_t written = 0;

	cr_assert(in && out);
	fa.base = in;
	fa.fail_index = 10;
	atomic_init(&fa.processed, 0);
	atomic_init(&fa.not_one, 0);
	cr_assert_eq(weft_map(pool, in, sizeof(*in), out, sizeof(*out), BIG, 1,
			      fail_at_item, &fa), -EIO);
	/* chunk 1: a call is one item, so "later chunks" are later items. */
	cr_assert_eq(atomic_load(&fa.not_one), 0);
	cr_assert_lt(atomic_load(&fa.processed), BIG / 10,
		     "%d of %d items ran after the error", atomic_load(&fa.processed),
		     BIG);
	/* Items that did not run are left as they were. */
	for (size_t i = 0; i < BIG; i++)
		written += out[i] != 0;
	cr_assert_eq(written, (size_t)atomic_load(&fa.processed) - 1);
	cr_assert_eq(out[10], 0);
	free(in);
	free(out);
	weft_pool_destroy(pool);
}

/*
 * Block shape: which items each body call got. The index of a call's first
 * item is read from @in and checked against @out, so a body handed in and
 * out at different offsets is caught too.
 */
#define BLOCK_N 100000

struct blocks {
	const int *in;
	long long *out;
	size_t n, chunk;
	atomic_int hits[BLOCK_N];
	atomic_size_t items;	/* sum of count over all calls */
	atomic_int calls;
	atomic_int empty_calls;	/* count == 0 */
	atomic_int bad_place;	/* out of range, or in and out disagree */
	atomic_int misaligned;	/* chunk > 0: first item not k * chunk */
	atomic_int short_calls;	/* chunk > 0: count != chunk */
	atomic_size_t short_begin, short_end;
};

static int record_block(const void *in, void *out, size_t count, void *arg)
{
	struct blocks *b = arg;
	size_t first = (size_t)((const int *)in - b->in);

	atomic_fetch_add(&b->calls, 1);
	atomic_fetch_add(&b->items, count);
	if (count == 0) {
		atomic_fetch_add(&b->empty_calls, 1);
		return 0;
	}
	if ((const int *)in < b->in || first >= b->n || count > b->n - first ||
	    (long long *)out != b->out + first) {
		atomic_fetch_add(&b->bad_place, 1);
		return 0;
	}
	if (b->chunk) {
		if (first % b->chunk)
			atomic_fetch_add(&b->misaligned, 1);
		if (count != b->chunk) {
			atomic_fetch_add(&b->short_calls, 1);
			atomic_store(&b->short_begin, first);
			atomic_store(&b->short_end, first + count);
		}
	}
	for (size_t i = 0; i < count; i++) {
		atomic_fetch_add(&b->hits[first + i], 1);
		((long long *)out)[i] = (long long)((const int *)in)[i] * 3 + 1;
	}
	return 0;
}

static struct blocks block_buf;

static void check_blocks(struct weft_pool *pool, size_t n, size_t chunk)
{
	static int in[BLOCK_N];
	static long long out[BLOCK_N + 1];
	struct blocks *b = &block_buf;

	cr_assert_leq(n, BLOCK_N);
	memset(b, 0, sizeof(*b));
	b->in = in;
	b->out = out;
	b->n = n;
	b->chunk = chunk;
	for (size_t i = 0; i < n; i++)
		in[i] = (int)i - 50;
	for (size_t i = 0; i <= n; i++)
		out[i] = -7;
	cr_assert_eq(weft_map(pool, in, sizeof(*in), out, sizeof(*out), n, chunk,
			      record_block, b), 0, "n %zu chunk %zu", n, chunk);
	cr_assert_eq(atomic_load(&b->empty_calls), 0);
	cr_assert_eq(atomic_load(&b->bad_place), 0);
	cr_assert_eq(atomic_load(&b->items), n,
		     "n %zu chunk %zu: counts sum to %zu", n, chunk,
		     atomic_load(&b->items));
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(atomic_load(&b->hits[i]), 1,
			     "n %zu chunk %zu: item %zu written %d times", n,
			     chunk, i, atomic_load(&b->hits[i]));
		cr_assert_eq(out[i], ((long long)i - 50) * 3 + 1);
	}
	cr_assert_eq(out[n], -7, "wrote past the end");
	if (chunk == 0)
		return;
	cr_assert_eq(atomic_load(&b->misaligned), 0);
	cr_assert_eq((size_t)atomic_load(&b->calls), (n + chunk - 1) / chunk,
		     "n %zu chunk %zu", n, chunk);
	if (n % chunk == 0) {
		cr_assert_eq(atomic_load(&b->short_calls), 0);
	} else {
		/* Only the last block may be shorter. */
		cr_assert_eq(atomic_load(&b->short_calls), 1);
		cr_assert_eq(atomic_load(&b->short_end), n);
		cr_assert_eq(atomic_load(&b->short_begin), n - n % chunk);
	}
}

Test(map, chunk_3_gives_blocks_of_3_but_the_last, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	const size_t sizes[] = { 1, 2, 3, 7, 9, BLOCK_N - 1, BLOCK_N };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_blocks(pool, sizes[i], 3);
	weft_pool_destroy(pool);
}

Test(map, adaptive_blocks_cover_every_item_once, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	const size_t sizes[] = { 1, 7, 1000, BLOCK_N };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_blocks(pool, sizes[i], 0);
	weft_pool_destroy(pool);
	pool = pool_new(8);
	check_blocks(pool, BLOCK_N, 0);
	weft_pool_destroy(pool);
}

struct nested_map {
	struct weft_pool *pool;
	size_t chunk;
	int rc;
	int wrong;
};

static int nested_map_task(void *arg, void **result)
{
	struct nested_map *nm = arg;
	enum { COUNT = 1000 };
	int in[COUNT];
	long long out[COUNT];

	(void)result;
	for (int i = 0; i < COUNT; i++)
		in[i] = i;
	nm->rc = weft_map(nm->pool, in, sizeof(*in), out, sizeof(*out), COUNT,
			  nm->chunk, times3_plus1, NULL);
	nm->wrong = 0;
	for (int i = 0; i < COUNT && nm->rc == 0; i++)
		nm->wrong += out[i] != (long long)i * 3 + 1;
	return nm->rc;
}

static void check_nested_map(unsigned workers, size_t chunk)
{
	struct weft_pool *pool = pool_new(workers);
	struct nested_map nm = { pool, chunk, 1, -1 };
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, nested_map_task, &nm, &f), 0);
	cr_assert_eq(weft_future_wait_until(f, weft_now() + HELPER_PATIENCE_NS), 0,
		     "map inside a task hung (%u workers)", workers);
	cr_assert_eq(nm.rc, 0);
	cr_assert_eq(nm.wrong, 0);
	cr_assert_eq(weft_future_error(f), 0);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(map, from_inside_a_task, .timeout = 30)
{
	check_nested_map(2, 0);
	check_nested_map(2, 7);
}

Test(map, from_inside_a_task_on_one_worker, .timeout = 30)
{
	check_nested_map(1, 0);
	check_nested_map(1, 7);
}

Test(map, after_shutdown_is_eshutdown, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	int in[4] = { 1, 2, 3, 4 };
	long long out[4] = { 0 };
	struct tally t = { 0, 0 };

	cr_assert_eq(weft_pool_shutdown(pool, 0, WEFT_FOREVER), 0);
	cr_assert_eq(weft_map(pool, in, sizeof(*in), out, sizeof(*out), 4, 0,
			      times3_plus1, &t), -ESHUTDOWN);
	cr_assert_eq(atomic_load(&t.calls), 0);
	weft_pool_destroy(pool);
}

/* weft_parallel_for() */

#define SPAN 100000
#define SLACK 16

struct visit {
	size_t lo, hi, chunk;
	atomic_int count[SPAN + 2 * SLACK];
	atomic_int calls;
	atomic_int empty_calls;   /* begin >= end */
	atomic_int out_of_range;  /* outside [lo, hi) */
	atomic_int short_calls;   /* chunk > 0: length != chunk */
	atomic_int misaligned;    /* chunk > 0: begin not lo + k * chunk */
	atomic_size_t short_begin, short_end;
};

static int visit_range(size_t begin, size_t end, void *arg)
{
	struct visit *v = arg;

	atomic_fetch_add(&v->calls, 1);
	if (begin >= end) {
		atomic_fetch_add(&v->empty_calls, 1);
		return 0;
	}
	if (begin < v->lo || end > v->hi) {
		atomic_fetch_add(&v->out_of_range, 1);
		return 0;
	}
	if (v->chunk) {
		if ((begin - v->lo) % v->chunk)
			atomic_fetch_add(&v->misaligned, 1);
		if (end - begin != v->chunk) {
			atomic_fetch_add(&v->short_calls, 1);
			atomic_store(&v->short_begin, begin);
			atomic_store(&v->short_end, end);
		}
	}
	for (size_t i = begin; i < end; i++)
		atomic_fetch_add(&v->count[i - v->lo + SLACK], 1);
	return 0;
}

static void check_parallel_for(struct weft_pool *pool, struct visit *v,
			       size_t lo, size_t hi, size_t chunk)
{
	size_t n = hi - lo;

	memset(v, 0, sizeof(*v));
	v->lo = lo;
	v->hi = hi;
	v->chunk = chunk;
	cr_assert_eq(weft_parallel_for(pool, lo, hi, chunk, visit_range, v), 0,
		     "[%zu, %zu) chunk %zu", lo, hi, chunk);
	cr_assert_eq(atomic_load(&v->empty_calls), 0);
	cr_assert_eq(atomic_load(&v->out_of_range), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(atomic_load(&v->count[i + SLACK]), 1,
			     "[%zu, %zu) chunk %zu: index %zu visited %d times",
			     lo, hi, chunk, lo + i, atomic_load(&v->count[i + SLACK]));
	if (chunk == 0)
		return;
	cr_assert_eq(atomic_load(&v->misaligned), 0);
	cr_assert_eq((size_t)atomic_load(&v->calls), (n + chunk - 1) / chunk,
		     "[%zu, %zu) chunk %zu", lo, hi, chunk);
	if (n % chunk == 0) {
		cr_assert_eq(atomic_load(&v->short_calls), 0);
	} else {
		/* Only the last range may be shorter. */
		cr_assert_eq(atomic_load(&v->short_calls), 1);
		cr_assert_eq(atomic_load(&v->short_end), hi);
		cr_assert_eq(atomic_load(&v->short_begin), hi - n % chunk);
	}
}

static struct visit visit_buf;

Test(parallel_for, visits_every_index_once_split_on_demand, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);

	check_parallel_for(pool, &visit_buf, 0, 1, 0);
	check_parallel_for(pool, &visit_buf, 3, 10, 0);
	check_parallel_for(pool, &visit_buf, 5, 1005, 0);
	check_parallel_for(pool, &visit_buf, 0, SPAN, 0);
	check_parallel_for(pool, &visit_buf, 1000, 1000 + SPAN, 0);
	weft_pool_destroy(pool);
}

Test(parallel_for, visits_every_index_once_chunk_1, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);

	check_parallel_for(pool, &visit_buf, 0, 1, 1);
	check_parallel_for(pool, &visit_buf, 3, 10, 1);
	check_parallel_for(pool, &visit_buf, 0, 20000, 1);
	weft_pool_destroy(pool);
}

Test(parallel_for, visits_every_index_once_chunk_3, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);

	check_parallel_for(pool, &visit_buf, 0, 1, 3);
	check_parallel_for(pool, &visit_buf, 3, 10, 3);
	check_parallel_for(pool, &visit_buf, 3, 12, 3);
	check_parallel_for(pool, &visit_buf, 5, 1005, 3);
	check_parallel_for(pool, &visit_buf, 0, SPAN, 3);
	weft_pool_destroy(pool);
}

Test(parallel_for, visits_every_index_once_chunk_64, .timeout = 30)
{
	struct weft_pool *pool = pool_new(3);

	check_parallel_for(pool, &visit_buf, 0, 64, 64);
	check_parallel_for(pool, &visit_buf, 7, 1007, 64);
	check_parallel_for(pool, &visit_buf, 0, SPAN, 64);
	check_parallel_for(pool, &visit_buf, 0, 10, 64);
	weft_pool_destroy(pool);
}

Test(parallel_for, begin_after_end_is_einval, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);

	memset(&visit_buf, 0, sizeof(visit_buf));
	visit_buf.lo = 0;
	visit_buf.hi = SPAN;
	cr_assert_eq(weft_parallel_for(pool, 10, 5, 0, visit_range, &visit_buf),
		     -EINVAL);
	cr_assert_eq(weft_parallel_for(pool, 10, 5, 2, visit_range, &visit_buf),
		     -EINVAL);
	cr_assert_eq(atomic_load(&visit_buf.calls), 0);
	weft_pool_destroy(pool);
}

Test(parallel_for, empty_range_makes_no_calls, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);

	memset(&visit_buf, 0, sizeof(visit_buf));
	visit_buf.lo = 0;
	visit_buf.hi = SPAN;
	cr_assert_eq(weft_parallel_for(pool, 5, 5, 0, visit_range, &visit_buf), 0);
	cr_assert_eq(weft_parallel_for(pool, 0, 0, 4, visit_range, &visit_buf), 0);
	cr_assert_eq(atomic_load(&visit_buf.calls), 0);
	weft_pool_destroy(pool);
}

Test(parallel_for, null_arguments_are_einval, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);

	memset(&visit_buf, 0, sizeof(visit_buf));
	visit_buf.lo = 0;
	visit_buf.hi = SPAN;
	cr_assert_eq(weft_parallel_for(NULL, 0, 10, 0, visit_range, &visit_buf),
		     -EINVAL);
	cr_assert_eq(weft_parallel_for(pool, 0, 10, 0, NULL, &visit_buf), -EINVAL);
	cr_assert_eq(atomic_load(&visit_buf.calls), 0);
	weft_pool_destroy(pool);
}

struct pfor_fail {
	size_t fail_index;
	bool slow;
	atomic_int calls;
};

static int fail_on_index(size_t begin, size_t end, void *arg)
{
	struct pfor_fail *pf = arg;

	atomic_fetch_add(&pf->calls, 1);
	if (pf->fail_index >= begin && pf->fail_index < end)
		return -EIO;
	if (pf->slow && begin > pf->fail_index)
		busy_ns(ITEM_NS);
	return 0;
}

Test(parallel_for, body_error_is_returned, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct pfor_fail pf = { 777, false, 0 };

	cr_assert_eq(weft_parallel_for(pool, 0, SPAN, 0, fail_on_index, &pf), -EIO);
	cr_assert_geq(atomic_load(&pf.calls), 1);
	atomic_store(&pf.calls, 0);
	cr_assert_eq(weft_parallel_for(pool, 0, SPAN, 10, fail_on_index, &pf), -EIO);
	weft_pool_destroy(pool);
}

Test(parallel_for, first_error_skips_later_chunks, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct pfor_fail pf = { 10, true, 0 };

	cr_assert_eq(weft_parallel_for(pool, 0, BIG, 1, fail_on_index, &pf), -EIO);
	cr_assert_lt(atomic_load(&pf.calls), BIG / 10,
		     "%d of %d chunks ran", atomic_load(&pf.calls), BIG);
	weft_pool_destroy(pool);
}

struct nested_pfor {
	struct weft_pool *pool;
	int rc;
	int wrong;
};

static int nested_pfor_task(void *arg, void **result)
{
	struct nested_pfor *np = arg;
	static struct visit v;

	(void)result;
	memset(&v, 0, sizeof(v));
	v.lo = 0;
	v.hi = 5000;
	np->rc = weft_parallel_for(np->pool, 0, 5000, 0, visit_range, &v);
	np->wrong = 0;
	for (size_t i = 0; i < 5000; i++)
		np->wrong += atomic_load(&v.count[i + SLACK]) != 1;
	return np->rc;
}

Test(parallel_for, from_inside_a_task_on_one_worker, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct nested_pfor np = { pool, 1, -1 };
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, nested_pfor_task, &np, &f), 0);
	cr_assert_eq(weft_future_wait_until(f, weft_now() + HELPER_PATIENCE_NS), 0,
		     "parallel_for inside a task hung");
	cr_assert_eq(np.rc, 0);
	cr_assert_eq(np.wrong, 0);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(parallel_for, after_shutdown_is_eshutdown, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);

	memset(&visit_buf, 0, sizeof(visit_buf));
	visit_buf.lo = 0;
	visit_buf.hi = SPAN;
	cr_assert_eq(weft_pool_shutdown(pool, 0, WEFT_FOREVER), 0);
	cr_assert_eq(weft_parallel_for(pool, 0, 10, 0, visit_range, &visit_buf),
		     -ESHUTDOWN);
	cr_assert_eq(atomic_load(&visit_buf.calls), 0);
	weft_pool_destroy(pool);
}
