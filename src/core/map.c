/*
 * core/map.c - parallel for and map by lazy binary splitting.
 *
 * Algorithm: Tzannes, Caragea, Barua, Vishkin, "Lazy binary-splitting: a
 * run-time adaptive work-stealing scheduler", PPoPP 2010. A part [b, e)
 * runs in blocks; before each block it looks at its worker's deque, and
 * only if that is empty (some worker may be hungry: the work we pushed
 * earlier was stolen) does it split, pushing [mid, e) as a new part. So
 * the number of parts follows the demand, not the input size.
 *
 * Block size (auto mode): a block must be long enough that the per-block
 * costs (an indirect call, a deque check, a clock read) vanish, and short
 * enough that the deque is looked at often; we double or halve it to keep
 * a block between BLOCK_MIN_NS and BLOCK_MAX_NS. With an explicit chunk,
 * every block is exactly one chunk and splits fall on chunk boundaries.
 *
 * Completion: every part is a future with a node on its own waiter list,
 * so a part counts down `pending` whether it ran or was cancelled by a
 * cancelling shutdown. The caller waits (weft__wait: a task suspends, a
 * thread blocks) until the last part sets `done`. The loop lives on the
 * caller's stack, so `done` is read and written only under the loop's
 * lock, and the last part takes the waiter under the lock and wakes it
 * after: its winning CAS on the waiter is then its last touch.
 *
 * Threads: parts run on the pool's workers; the caller waits (on a worker
 * it first runs its own parts that nobody stole).
 */
#include <errno.h>
#include <stdint.h>

#include "weft/map.h"
#include "core/future.h"
#include "core/pool.h"
#include "core/wait.h"
#include "util/spinlock.h"

#define BLOCK_MIN_NS 20000
#define BLOCK_MAX_NS 100000

struct loop {
	weft_range_fn fn;
	void *arg;
	size_t chunk;
	struct weft_pool *pool;
	_Atomic int err;
	_Atomic size_t pending; /* parts not finished, the root included */
	_Atomic uint32_t lock;	/* protects done and waiter */
	bool done;
	struct weft__waiter *waiter;
};

struct part {
	struct weft__wnode node; /* fires when the part's future completes */
	struct loop *loop;
	size_t begin, end;
};

static void set_error(struct loop *l, int err)
{
	int zero = 0;

	atomic_compare_exchange_strong(&l->err, &zero, err);
}

static void part_finished(struct loop *l)
{
	/* acq_rel: the last part sees every other part's writes (results),
	 * and publishes them with the release store of done. */
	if (atomic_fetch_sub_explicit(&l->pending, 1, memory_order_acq_rel) ==
	    1) {
		struct weft__waiter *w;

		weft__spin_lock(&l->lock);
		l->done = true;
		w = l->waiter;
		l->waiter = NULL;
		weft__spin_unlock(&l->lock);
		if (w)
			weft__waiter_wake(w, W_WOKEN); /* cannot lose: not
							  timed, not
							  cancellable */
	}
}

static bool loop_arm(struct weft__waiter *w, void *src)
{
	struct loop *l = src;
	bool armed;

	weft__spin_lock(&l->lock);
	armed = !l->done;
	if (armed)
		l->waiter = w;
	weft__spin_unlock(&l->lock);
	return armed;
}

static bool loop_disarm(struct weft__waiter *w, void *src)
{
	(void)w;
	(void)src;
	return true; /* never reached: the wait can only end by a wake */
}

static const struct weft__wait_ops loop_ops = {
	.arm = loop_arm,
	.disarm = loop_disarm,
};

static bool loop_done(struct loop *l)
{
	bool done;

	weft__spin_lock(&l->lock);
	done = l->done;
	weft__spin_unlock(&l->lock);
	return done;
}

static void part_fire(struct weft__wnode *n, struct weft_future *f)
{
	struct part *p = (struct part *)n;

	if (f->err)
		set_error(p->loop, f->err); /* cancelled by shutdown */
	part_finished(p->loop);
}

static int part_task(void *arg, void **result);

static int spawn(struct loop *l, size_t begin, size_t end)
{
	struct weft_future *f;
	struct part *p;
	int err;

	f = weft__future_new(K_FN, (void *)part_task, NULL, sizeof(*p));
	if (!f)
		return -ENOMEM;
	p = weft__future_extra(f);
	f->arg = p;
	p->node.fire = part_fire;
	p->loop = l;
	p->begin = begin;
	p->end = end;
	atomic_fetch_add_explicit(&l->pending, 1, memory_order_relaxed);
	weft__future_add_waiter(f, &p->node);
	err = weft__pool_push(l->pool, f);
	if (err) {
		/* Never queued: complete it by hand, which fires the node. */
		weft__future_claim(f, F_RUNNING);
		weft__future_complete(f, err, NULL);
	}
	weft_future_unref(f);
	return err;
}

static void run_range(struct loop *l, size_t b, size_t e)
{
	struct weft__worker *w = weft__current_worker();
	size_t unit = l->chunk ? l->chunk : 1;
	size_t blk = unit;
	bool can_split = w && w->pool == l->pool && l->pool->nworkers > 1;

	while (b < e) {
		size_t left = e - b, n;
		int64_t t0 = 0;
		int r;

		if (atomic_load_explicit(&l->err, memory_order_relaxed))
			return;
		/* The body may have waited and moved us: re-read. */
		if (can_split)
			w = weft__current_worker();
		if (can_split && left >= 2 * unit &&
		    weft__deque_size(&w->deque) == 0) {
			size_t mid = b + (left / unit / 2) * unit;

			if (spawn(l, mid, e) == 0) {
				e = mid;
				continue;
			}
			can_split = false;
		}
		n = blk < left ? blk : left;
		if (!l->chunk)
			t0 = weft_now();
		r = l->fn(b, b + n, l->arg);
		if (r < 0) {
			set_error(l, r);
			return;
		}
		b += n;
		if (!l->chunk) {
			int64_t dt = weft_now() - t0;

			if (dt < BLOCK_MIN_NS && blk < SIZE_MAX / 2)
				blk *= 2;
			else if (dt > BLOCK_MAX_NS && blk > 1)
				blk /= 2;
		}
	}
}

static int part_task(void *arg, void **result)
{
	struct part *p = arg;

	(void)result;
	run_range(p->loop, p->begin, p->end);
	return 0;
}

static bool is_part_of(struct weft_future *f, void *loop)
{
	return f->kind == K_FN && f->fn == (void *)part_task &&
	       ((struct part *)f->arg)->loop == loop;
}

static void wait_done(struct loop *l)
{
	struct weft__waiter w;

	weft__wait(&w, &loop_ops, l, WEFT_FOREVER, 0);
}

WEFT_API int weft_parallel_for(struct weft_pool *pool, size_t begin,
			       size_t end, size_t chunk, weft_range_fn fn,
			       void *arg)
{
	struct weft__worker *w = weft__current_worker();
	struct loop l = {
		.fn = fn, .arg = arg, .chunk = chunk, .pool = pool,
	};
	int err;

	if (!pool || !fn || begin > end)
		return -EINVAL;
	if (begin == end)
		return 0;
	atomic_init(&l.err, 0);
	atomic_init(&l.pending, 1);
	atomic_init(&l.lock, 0);

	if (w && w->pool == pool) {
		/* Inside a task: the root part runs right here, then this
		 * worker runs its own unstolen parts before it blocks. */
		struct weft_future *f;

		run_range(&l, begin, end);
		part_finished(&l);
		/* Our own parts nobody stole: run them here (they are ours,
		 * not unrelated work). The worker may change as we go. */
		while (!loop_done(&l) &&
		       (w = weft__current_worker(),
			f = weft__worker_take_if(w, is_part_of, &l)))
			weft__worker_process(w, f);
		wait_done(&l);
		return atomic_load(&l.err);
	}
	atomic_store(&l.pending, 0);
	err = spawn(&l, begin, end);
	if (err == -ESHUTDOWN || err == -ENOMEM)
		return err;
	wait_done(&l);
	return atomic_load(&l.err);
}

struct map_ctx {
	const char *in;
	size_t in_size;
	char *out;
	size_t out_size;
	weft_map_fn fn;
	void *arg;
};

/*
 * One body call per block, not per item: the body's own loop over count
 * is what the compiler can vectorize, and the indirect call is paid once a
 * block. begin * size cannot overflow: weft_map() checked n * size.
 */
static int map_range(size_t begin, size_t end, void *arg)
{
	const struct map_ctx *m = arg;
	int r = m->fn(m->in + begin * m->in_size, m->out + begin * m->out_size,
		      end - begin, m->arg);

	return r < 0 ? r : 0;
}

WEFT_API int weft_map(struct weft_pool *pool, const void *in, size_t in_size,
		      void *out, size_t out_size, size_t n, size_t chunk,
		      weft_map_fn fn, void *arg)
{
	struct map_ctx m = {
		.in = in, .in_size = in_size, .out = out,
		.out_size = out_size, .fn = fn, .arg = arg,
	};

	if (!pool || !in || !out || !fn || !in_size || !out_size)
		return -EINVAL;
	if (n > SIZE_MAX / in_size || n > SIZE_MAX / out_size)
		return -EINVAL;
	return weft_parallel_for(pool, 0, n, chunk, map_range, &m);
}
