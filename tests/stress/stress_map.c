/*
 * stress_map.c - weft_parallel_for() and weft_map() called from several
 * outside threads at once, and from inside tasks (nested loops).
 *
 * 4 outside threads (pthreads and C11 threads) share one pool and call, at
 * random:
 *   pfor        parallel_for over a random range, lazy splitting (chunk 0)
 *               or a fixed chunk, with cheap, costly or irregular bodies
 *   pfor-error  the same with one or two indices whose body fails
 *   map         weft_map with different in/out sizes, or in place, lazy
 *               splitting (chunk 0) or a fixed chunk
 *   map-error   weft_map whose body fails at one index
 *   nested      a task that runs a parallel_for whose bodies run parallel
 *               loops of their own
 *   edges       empty ranges (no call), begin > end (-EINVAL)
 *
 * Checks: every index in range is processed exactly once (per-index atomic
 * counters) when the call returns 0, never twice in any case; bodies get
 * disjoint sub-ranges inside the call's range and exactly @chunk indices
 * (the last fewer) with a fixed chunk; the call's result is the body's
 * error; no body of a call is still running, or starts, after the call
 * returned (contexts are kept in quarantine for a while so a late body is
 * caught, not a use-after-free); map results land in input order.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

static struct weft_pool *pool;
static _Atomic uint64_t items_done, calls_done;

enum cost { COST_CHEAP, COST_SPIN, COST_IRREGULAR };

struct ctx {
	size_t begin, end, chunk;
	enum cost cost;
	size_t fail_at[2]; /* SIZE_MAX: none */
	int fail_code[2];
	_Atomic uint8_t *hits; /* [end - begin] */
	_Atomic int inflight;
	_Atomic bool returned;
	_Atomic uint64_t bodies;
	unsigned nest; /* bodies run inner loops of this size */
	uint64_t call_no;
};

static void item_cost(const struct ctx *c, size_t i)
{
	switch (c->cost) {
	case COST_SPIN:
		stress_spin_ns(300);
		break;
	case COST_IRREGULAR:
		if (stress_mix(i ^ c->call_no) % 256 == 0)
			stress_spin_ns(30000);
		break;
	default:
		break;
	}
}

static int inner_body(size_t b, size_t e, void *arg)
{
	_Atomic uint32_t *cnt = arg;
	atomic_fetch_add(cnt, (uint32_t)(e - b));
	stress_count_task();
	return 0;
}

static int range_body(size_t b, size_t e, void *arg)
{
	struct ctx *c = arg;
	stress_count_task();
	STRESS_CHECK(!atomic_load(&c->returned),
		     "call %llu: a body [%zu, %zu) started after the call "
		     "returned",
		     (unsigned long long)c->call_no, b, e);
	atomic_fetch_add(&c->inflight, 1);
	atomic_fetch_add_explicit(&c->bodies, 1, memory_order_relaxed);
	STRESS_CHECK(c->begin <= b && b < e && e <= c->end,
		     "call %llu: body range [%zu, %zu) outside [%zu, %zu)",
		     (unsigned long long)c->call_no, b, e, c->begin, c->end);
	if (c->chunk)
		STRESS_CHECK(e - b == c->chunk ||
				     (e == c->end && e - b < c->chunk),
			     "call %llu: chunk %zu gave [%zu, %zu)",
			     (unsigned long long)c->call_no, c->chunk, b, e);
	int rc = 0;
	for (size_t i = b; i < e && i < c->end; i++) {
		uint8_t prev = atomic_fetch_add_explicit(&c->hits[i - c->begin],
							 1,
							 memory_order_relaxed);
		STRESS_CHECK(prev == 0, "call %llu: index %zu processed %u "
			     "times",
			     (unsigned long long)c->call_no, i, prev + 1u);
		item_cost(c, i);
		for (int k = 0; k < 2; k++)
			if (i == c->fail_at[k] && !rc)
				rc = c->fail_code[k];
	}
	if (c->nest && !rc) {
		_Atomic uint32_t cnt = 0;
		int r2 = weft_parallel_for(pool, 0, c->nest,
					   stress_mix(b) % 2 ? 0 : 7,
					   inner_body, &cnt);
		STRESS_CHECK(r2 == 0 && atomic_load(&cnt) == c->nest,
			     "nested parallel_for = %d, %u of %u", r2,
			     atomic_load(&cnt), c->nest);
	}
	atomic_fetch_add_explicit(&items_done, e - b, memory_order_relaxed);
	atomic_fetch_sub(&c->inflight, 1);
	return rc;
}

static struct ctx *ctx_new(size_t begin, size_t n, uint64_t call_no)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		exit(STRESS_FAIL);
	c->hits = calloc(n ? n : 1, 1);
	if (!c->hits)
		exit(STRESS_FAIL);
	c->begin = begin;
	c->end = begin + n;
	c->fail_at[0] = c->fail_at[1] = SIZE_MAX;
	c->call_no = call_no;
	return c;
}

static void ctx_free(struct ctx *c)
{
	if (!c)
		return;
	STRESS_CHECK(atomic_load(&c->inflight) == 0,
		     "call %llu: a body still runs long after the call "
		     "returned",
		     (unsigned long long)c->call_no);
	free((void *)c->hits);
	free(c);
}

/* Keep finished contexts for a while: a body that runs late finds
 * returned == true instead of freed memory. */
#define QUARANTINE 32
struct thread_state {
	uint64_t rng;
	struct ctx *q[QUARANTINE];
	unsigned qi;
	uint64_t calls;
	unsigned index;
};

static void retire(struct thread_state *ts, struct ctx *c)
{
	atomic_store(&c->returned, true);
	ctx_free(ts->q[ts->qi]);
	ts->q[ts->qi] = c;
	ts->qi = (ts->qi + 1) % QUARANTINE;
}

static size_t pick_n(uint64_t *rng)
{
	switch (stress_below(rng, 4)) {
	case 0: return (size_t)stress_below(rng, 16);
	case 1: return (size_t)stress_below(rng, 1000);
	case 2: return (size_t)stress_below(rng, 20000);
	default: return 20000 + (size_t)stress_below(rng, 100000);
	}
}

static uint64_t next_call(struct thread_state *ts)
{
	return (uint64_t)ts->index << 40 | ts->calls++;
}

/* ---- parallel_for ------------------------------------------------------- */

static void do_pfor(struct thread_state *ts, bool with_error)
{
	uint64_t *rng = &ts->rng;
	size_t n = pick_n(rng);
	if (with_error && n == 0)
		n = 1;
	size_t begin = (size_t)stress_below(rng, 1000);
	struct ctx *c = ctx_new(begin, n, next_call(ts));
	c->chunk = stress_below(rng, 2) ? 0 : 1 + (size_t)stress_below(rng, 512);
	c->cost = (enum cost)stress_below(rng, 3);
	if (c->cost == COST_SPIN && n > 5000)
		c->cost = COST_CHEAP;
	if (n < 5000 && stress_below(rng, 4) == 0)
		c->nest = 1 + (unsigned)stress_below(rng, 100);
	if (with_error) {
		c->fail_at[0] = begin + (size_t)stress_below(rng, n);
		c->fail_code[0] = -EIO;
		if (stress_below(rng, 2)) {
			c->fail_at[1] = begin + (size_t)stress_below(rng, n);
			c->fail_code[1] = -ERANGE;
		}
	}
	stress_where("parallel_for", c->call_no);
	int rc = weft_parallel_for(pool, begin, begin + n, c->chunk,
				   range_body, c);
	STRESS_CHECK(atomic_load(&c->inflight) == 0,
		     "call %llu: parallel_for returned with %d bodies running",
		     (unsigned long long)c->call_no, atomic_load(&c->inflight));
	if (!with_error) {
		STRESS_CHECK(rc == 0, "parallel_for(%zu items, chunk %zu) = %d",
			     n, c->chunk, rc);
		for (size_t i = 0; i < n; i++)
			if (atomic_load(&c->hits[i]) != 1) {
				stress_fail("call %llu: parallel_for(%zu, "
					    "chunk %zu) = %d but index %zu "
					    "processed %u times",
					    (unsigned long long)c->call_no, n,
					    c->chunk, rc, begin + i,
					    atomic_load(&c->hits[i]));
				break;
			}
		if (n == 0)
			STRESS_CHECK(atomic_load(&c->bodies) == 0,
				     "empty range called the body");
	} else {
		STRESS_CHECK(rc == c->fail_code[0] ||
				     (c->fail_at[1] != SIZE_MAX &&
				      rc == c->fail_code[1]),
			     "parallel_for with failing bodies = %d", rc);
		for (int k = 0; k < 2; k++)
			if (rc == c->fail_code[k] && c->fail_at[k] != SIZE_MAX)
				STRESS_CHECK(atomic_load(&c->hits[c->fail_at[k] -
								  begin]) == 1,
					     "error %d but index %zu never ran",
					     rc, c->fail_at[k]);
	}
	atomic_fetch_add(&calls_done, 1);
	retire(ts, c);
}

/* ---- map ---------------------------------------------------------------- */

struct mapctx {
	struct ctx *c;      /* hits by index; c->chunk is the map's chunk */
	const void *in_base;
	size_t in_size;
	size_t fail_idx;
	const uint64_t *out_base;
};

static uint64_t map_f(uint64_t x)
{
	return x * 2654435761u + 17;
}

/* One item of a block; returns 0, or the error that stops the map. */
static int map_item(struct mapctx *m, const char *in, uint64_t *out,
		    size_t idx)
{
	if (idx >= m->c->end)
		return -EFAULT;
	uint8_t prev = atomic_fetch_add_explicit(&m->c->hits[idx], 1,
						 memory_order_relaxed);
	STRESS_CHECK(prev == 0, "map item %zu processed %u times", idx,
		     prev + 1u);
	if (idx == m->fail_idx)
		return -ERANGE;
	if (m->in_size == 4) {
		uint32_t x;
		memcpy(&x, in, 4);
		uint64_t y = map_f(x);
		memcpy(out, &y, 8);
	} else {
		uint64_t x;
		memcpy(&x, in, 8);
		uint64_t y = map_f(x);
		memcpy(out, &y, 8); /* out may alias in: read first */
	}
	atomic_fetch_add_explicit(&items_done, 1, memory_order_relaxed);
	stress_progress();
	return 0;
}

static int map_body(const void *in, void *out, size_t count, void *arg)
{
	struct mapctx *m = arg;
	const struct ctx *c = m->c;
	size_t first = (size_t)((const char *)in - (const char *)m->in_base) /
		       m->in_size;
	STRESS_CHECK(!atomic_load(&c->returned),
		     "map call %llu: a body ran after the call returned",
		     (unsigned long long)c->call_no);
	STRESS_CHECK(count >= 1 && first < c->end && count <= c->end - first,
		     "map body for items [%zu, +%zu) of %zu", first, count,
		     c->end);
	STRESS_CHECK((const uint64_t *)out == m->out_base + first,
		     "map call %llu: block at item %zu writes at item %td",
		     (unsigned long long)c->call_no, first,
		     (const uint64_t *)out - m->out_base);
	if (c->chunk)
		STRESS_CHECK(first % c->chunk == 0 &&
				     (count == c->chunk ||
				      (first + count == c->end &&
				       count < c->chunk)),
			     "map call %llu: chunk %zu gave [%zu, +%zu)",
			     (unsigned long long)c->call_no, c->chunk, first,
			     count);
	for (size_t j = 0; j < count; j++) {
		int rc = map_item(m, (const char *)in + j * m->in_size,
				  (uint64_t *)out + j, first + j);
		if (rc)
			return rc;
	}
	return 0;
}

#define SENTINEL 0xdeadbeefcafef00dull

static void do_map(struct thread_state *ts, bool with_error)
{
	uint64_t *rng = &ts->rng;
	size_t n = pick_n(rng) / 2;
	if (with_error && n == 0)
		n = 1;
	bool in_place = stress_below(rng, 3) == 0;
	size_t in_size = in_place ? 8 : 4;
	struct ctx *c = ctx_new(0, n, next_call(ts));
	struct mapctx m = {c, NULL, in_size, SIZE_MAX, NULL};
	if (with_error)
		m.fail_idx = (size_t)stress_below(rng, n);
	uint64_t *out = malloc((n ? n : 1) * 8);
	uint32_t *in32 = NULL;
	if (!out)
		exit(STRESS_FAIL);
	if (in_place) {
		for (size_t i = 0; i < n; i++)
			out[i] = i * 3 + c->call_no;
		m.in_base = out;
	} else {
		in32 = malloc((n ? n : 1) * 4);
		if (!in32)
			exit(STRESS_FAIL);
		for (size_t i = 0; i < n; i++) {
			in32[i] = (uint32_t)(i * 7 + c->call_no);
			out[i] = SENTINEL;
		}
		m.in_base = in32;
	}
	size_t chunk = stress_below(rng, 2) ? 0 : 1 + (size_t)stress_below(rng, 300);
	c->chunk = chunk;
	m.out_base = out;
	stress_where("map", c->call_no);
	int rc = weft_map(pool, m.in_base, in_size, out, 8, n, chunk, map_body,
			  &m);
	if (!with_error)
		STRESS_CHECK(rc == 0, "map(%zu items, chunk %zu) = %d", n,
			     chunk, rc);
	else
		STRESS_CHECK(rc == -ERANGE, "map with a failing item = %d", rc);
	size_t bad = 0;
	for (size_t i = 0; i < n && bad < 3; i++) {
		unsigned hit = atomic_load(&c->hits[i]);
		uint64_t orig = in_place ? i * 3 + c->call_no
					 : (uint32_t)(i * 7 + c->call_no);
		uint64_t want;
		if (hit == 1 && i != m.fail_idx)
			want = map_f(orig);
		else
			want = in_place ? orig : SENTINEL; /* left as it was */
		if (!with_error && hit != 1) {
			stress_fail("map call %llu: item %zu processed %u "
				    "times",
				    (unsigned long long)c->call_no, i, hit);
			bad++;
		} else if (out[i] != want) {
			stress_fail("map call %llu (%s, chunk %zu): out[%zu] = "
				    "%llx, want %llx",
				    (unsigned long long)c->call_no,
				    in_place ? "in place" : "4->8 bytes", chunk,
				    i, (unsigned long long)out[i],
				    (unsigned long long)want);
			bad++;
		}
	}
	atomic_fetch_add(&calls_done, 1);
	free(out);
	free(in32);
	retire(ts, c);
}

/* ---- nested: loops inside tasks ----------------------------------------- */

static int nested_task(void *arg, void **result)
{
	struct ctx *c = arg;
	stress_count_task();
	int rc = weft_parallel_for(pool, c->begin, c->end, c->chunk,
				   range_body, c);
	*result = c;
	return rc;
}

static void do_nested(struct thread_state *ts)
{
	uint64_t *rng = &ts->rng;
	size_t n = 1 + (size_t)stress_below(rng, 2000);
	struct ctx *c = ctx_new(0, n, next_call(ts));
	c->chunk = stress_below(rng, 2) ? 0 : 1 + (size_t)stress_below(rng, 64);
	c->nest = stress_below(rng, 2) ? 0 : 1 + (unsigned)stress_below(rng, 64);
	struct weft_future *f = NULL;
	int rc = weft_submit(pool, nested_task, c, &f);
	STRESS_CHECK(rc == 0, "submit = %d", rc);
	if (rc) {
		retire(ts, c);
		return;
	}
	stress_where("nested", c->call_no);
	void *v = NULL;
	rc = weft_future_get(f, &v);
	STRESS_CHECK(rc == 0 && v == c, "nested parallel_for task = %d", rc);
	for (size_t i = 0; i < n; i++)
		if (atomic_load(&c->hits[i]) != 1) {
			stress_fail("nested call %llu: index %zu processed %u "
				    "times",
				    (unsigned long long)c->call_no, i,
				    atomic_load(&c->hits[i]));
			break;
		}
	STRESS_CHECK(atomic_load(&c->inflight) == 0,
		     "nested call: bodies running after it returned");
	weft_future_unref(f);
	atomic_fetch_add(&calls_done, 1);
	retire(ts, c);
}

static int never_body(size_t b, size_t e, void *arg)
{
	(void)arg;
	stress_fail("body called for [%zu, %zu) of an empty range", b, e);
	return 0;
}

static void do_edges(struct thread_state *ts)
{
	size_t b = (size_t)stress_below(&ts->rng, 100);
	int rc = weft_parallel_for(pool, b, b, 0, never_body, NULL);
	STRESS_CHECK(rc == 0, "empty parallel_for = %d", rc);
	rc = weft_parallel_for(pool, b + 1, b, 0, never_body, NULL);
	STRESS_CHECK(rc == -EINVAL, "parallel_for(begin > end) = %d", rc);
	rc = weft_map(pool, &b, sizeof(b), &b, sizeof(b), 0, 0, NULL, NULL);
	STRESS_CHECK(rc == 0 || rc == -EINVAL, "map(n = 0, fn NULL) = %d", rc);
}

struct phase {
	uint64_t items_target;
};

static void thread_main(void *arg, unsigned index)
{
	struct phase *ph = arg;
	struct thread_state ts = {.rng = stress_stream(1500 + index),
				  .index = index};
	while (atomic_load(&items_done) < ph->items_target) {
		unsigned what = (unsigned)stress_below(&ts.rng, 100);
		if (what < 40)
			do_pfor(&ts, false);
		else if (what < 50)
			do_pfor(&ts, true);
		else if (what < 75)
			do_map(&ts, false);
		else if (what < 82)
			do_map(&ts, true);
		else if (what < 97)
			do_nested(&ts);
		else
			do_edges(&ts);
	}
	for (unsigned i = 0; i < QUARANTINE; i++)
		ctx_free(ts.q[i]);
	stress_where("done", 0);
}

static void dump(int fd)
{
	stress_dprintf(fd, "  items %llu, calls %llu\n",
		       (unsigned long long)atomic_load(&items_done),
		       (unsigned long long)atomic_load(&calls_done));
}

static void run_phase(uint64_t items, unsigned workers)
{
	struct phase ph = {.items_target = atomic_load(&items_done) + items};
	stress_phase("map: %llu items from 4 threads, %u workers",
		     (unsigned long long)items, workers);
	pool = stress_pool(workers, "map");
	struct stress_threads *t =
		stress_threads_start(4, thread_main, &ph, "mapper");
	stress_threads_join(t);
	weft_pool_destroy(pool);
	pool = NULL;
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_map");
	stress_set_dump(dump);
	uint64_t items = stress_scaled(20000000, 20000);
	run_phase(items / 2, 2);
	run_phase(items / 2, 3);
	printf("stress_map: %llu items in %llu calls\n",
	       (unsigned long long)atomic_load(&items_done),
	       (unsigned long long)atomic_load(&calls_done));
	return stress_finish();
}
