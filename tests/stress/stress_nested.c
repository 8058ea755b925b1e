/*
 * stress_nested.c - tasks that submit tasks: trees of fork/join.
 *
 * Outside threads (pthreads and C11 threads) submit tree roots and wait for
 * them. A tree node submits its children from inside the pool (onto its
 * worker's deque, where idle workers steal them), then waits for most of
 * them in a random order: under the interim waiting rule (weft/task.h) a
 * child that has not started runs inline on the waiting worker, one that
 * has been stolen is waited for. Some children are fire-and-forget
 * (out == NULL), some have their future dropped at once, a few leaves fail
 * on purpose. The shape of every tree follows from its seed, so the values
 * that come back (the number of nodes in the waited-for part of a subtree)
 * and the total node count are computed beforehand and checked.
 *
 * Tree kinds: "deep" (1-3 children, depth 4-9) and "wide" (10 children per
 * node, depth 3; skynet-like fan-out).
 *
 * Phases: trees on 2 workers, trees on 4 workers (more workers than CPUs),
 * and a short -EDEADLK phase: a task waiting for its own future must get
 * -EDEADLK from wait, wait_until and get, not hang.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

static struct stress_track tr;
static struct weft_pool *pool;
static unsigned pool_workers;
static _Atomic uint64_t nodes_done;

/* ---- tree shapes -------------------------------------------------------- */

enum kind { K_DEEP = 0, K_WIDE = 1 };

/* A node's task argument: id 26 bits, depth 4, max depth 4, kind 2, seed
 * 28. */
struct node {
	size_t id;
	unsigned depth, max_depth;
	enum kind kind;
	uint32_t seed;
};

#define ID_BITS 26
#define SEED_MASK ((1u << 28) - 1)

static void *encode(const struct node *n)
{
	uint64_t a = (uint64_t)n->id | (uint64_t)n->depth << 26 |
		     (uint64_t)n->max_depth << 30 | (uint64_t)n->kind << 34 |
		     (uint64_t)(n->seed & SEED_MASK) << 36;
	return (void *)(uintptr_t)a;
}

static struct node decode(void *arg)
{
	uint64_t a = (uint64_t)(uintptr_t)arg;
	struct node n = {
		.id = (size_t)(a & ((1u << ID_BITS) - 1)),
		.depth = (unsigned)(a >> 26) & 15,
		.max_depth = (unsigned)(a >> 30) & 15,
		.kind = (enum kind)((a >> 34) & 3),
		.seed = (uint32_t)(a >> 36) & SEED_MASK,
	};
	return n;
}

static unsigned nchildren(const struct node *n)
{
	if (n->depth >= n->max_depth)
		return 0;
	if (n->kind == K_WIDE)
		return 10;
	return 1 + (unsigned)(stress_mix(n->seed) % 3);
}

static uint32_t child_seed(uint32_t seed, unsigned i)
{
	return (uint32_t)stress_mix((uint64_t)seed * 16 + i + 1) & SEED_MASK;
}

/* How the parent treats the child with this seed. */
enum cmode { C_AWAIT, C_FORGET, C_DROP };
static enum cmode child_mode(uint32_t cseed)
{
	switch (stress_mix(cseed ^ 0xc0ffee) % 16) {
	case 0:
	case 1: return C_FORGET; /* out == NULL */
	case 2: return C_DROP;   /* future dropped at once (watched) */
	default: return C_AWAIT;
	}
}

static bool leaf_fails(const struct node *n)
{
	return nchildren(n) == 0 && stress_mix(n->seed ^ 0xfa11) % 32 == 0;
}

/* Sequential model: total nodes, and the value the node returns (nodes of
 * its waited-for, successful part). */
static void model(const struct node *n, uint64_t *total, uint64_t *value)
{
	unsigned c = nchildren(n);
	uint64_t t = 1, v = 1;
	for (unsigned i = 0; i < c; i++) {
		struct node ch = {0, n->depth + 1, n->max_depth, n->kind,
				  child_seed(n->seed, i)};
		uint64_t ct, cv;
		model(&ch, &ct, &cv);
		t += ct;
		if (child_mode(ch.seed) == C_AWAIT && !leaf_fails(&ch))
			v += cv;
	}
	*total = t;
	*value = v;
}

/* ---- the node task ------------------------------------------------------ */

static int node_task(void *arg, void **result)
{
	struct node n = decode(arg);
	stress_task_start(&tr, n.id);
	int w = weft_worker_index();
	STRESS_CHECK(w >= 0 && (unsigned)w < pool_workers,
		     "node %zu: weft_worker_index() = %d with %u workers", n.id,
		     w, pool_workers);
	STRESS_CHECK(!weft_task_cancelled(), "node %zu: cancelled?", n.id);

	unsigned c = nchildren(&n);
	struct weft_future *fs[10] = {0};
	size_t ids[10];
	size_t base = c ? stress_track_alloc(&tr, c) : 0;
	uint64_t h = stress_mix(n.seed ^ 0x5151);
	for (unsigned i = 0; i < c; i++) {
		struct node ch = {base + i, n.depth + 1, n.max_depth, n.kind,
				  child_seed(n.seed, i)};
		enum cmode m = child_mode(ch.seed);
		ids[i] = ch.id;
		int rc = weft_submit(pool, node_task, encode(&ch),
				     m == C_FORGET ? NULL : &fs[i]);
		STRESS_CHECK(rc == 0, "node %zu: submit child %zu = %d", n.id,
			     ch.id, rc);
		if (rc != 0)
			continue;
		stress_flag(&tr, ch.id, REC_SUBMITTED);
		if (fs[i])
			stress_watch(fs[i], ch.id);
		if (m == C_DROP) {
			weft_future_unref(fs[i]);
			fs[i] = NULL;
		}
	}
	if (h % 8 == 0)
		stress_spin_ns((int64_t)(h >> 50) % 20000);

	/* wait in a random order: reverse, forward or shuffled */
	unsigned order[10];
	for (unsigned i = 0; i < c; i++)
		order[i] = i;
	uint64_t r = h;
	switch (h % 3) {
	case 0:
		for (unsigned i = 0; i < c; i++)
			order[i] = c - 1 - i;
		break;
	case 1:
		break;
	default:
		for (unsigned i = c; i > 1; i--) {
			unsigned j = (unsigned)(stress_rand(&r) % i);
			unsigned t = order[i - 1];
			order[i - 1] = order[j];
			order[j] = t;
		}
	}
	uint64_t value = 1;
	for (unsigned k = 0; k < c; k++) {
		unsigned i = order[k];
		if (!fs[i])
			continue;
		void *v = NULL;
		int rc;
		if (stress_rand(&r) % 4 == 0) {
			rc = weft_future_wait_until(fs[i], WEFT_FOREVER);
			STRESS_CHECK(rc == 0, "node %zu: wait_until(child %zu) "
				     "= %d",
				     n.id, ids[i], rc);
			rc = weft_future_try_get(fs[i], &v);
		} else {
			rc = weft_future_get(fs[i], &v);
		}
		struct node ch = {ids[i], n.depth + 1, n.max_depth, n.kind,
				  child_seed(n.seed, i)};
		if (leaf_fails(&ch)) {
			STRESS_CHECK(rc == -EIO, "node %zu: failing child %zu "
				     "gave %d",
				     n.id, ids[i], rc);
		} else {
			STRESS_CHECK(rc == 0 && v,
				     "node %zu: child %zu gave %d, %p", n.id,
				     ids[i], rc, v);
			value += (uint64_t)(uintptr_t)v;
		}
		weft_future_unref(fs[i]);
	}
	atomic_fetch_add_explicit(&nodes_done, 1, memory_order_relaxed);
	if (leaf_fails(&n))
		return -EIO;
	*result = (void *)(uintptr_t)value;
	return 0;
}

/* ---- phase: trees ------------------------------------------------------- */

struct tree {
	struct node root;
	uint64_t total, value;
};

struct tree_phase {
	struct tree *trees;
	size_t ntrees;
	unsigned threads;
};

static void tree_thread(void *arg, unsigned index)
{
	struct tree_phase *ph = arg;
	uint64_t rng = stress_stream(500 + index);
	enum { INFLIGHT = 4 };
	struct weft_future *fl[INFLIGHT] = {0};
	size_t fl_tree[INFLIGHT];
	unsigned nfl = 0, want = 1;
	size_t t = index;
	while (t < ph->ntrees || nfl) {
		if (t < ph->ntrees && nfl < want) {
			struct tree *tree = &ph->trees[t];
			tree->root.id = stress_track_alloc(&tr, 1);
			struct weft_future *f = NULL;
			int rc = weft_submit(pool, node_task,
					     encode(&tree->root), &f);
			STRESS_CHECK(rc == 0 && f, "submit root = %d", rc);
			if (rc != 0)
				exit(stress_finish());
			stress_flag(&tr, tree->root.id, REC_SUBMITTED);
			stress_watch(f, tree->root.id);
			fl[nfl] = f;
			fl_tree[nfl] = t;
			nfl++;
			t += ph->threads;
			continue;
		}
		want = 1 + (unsigned)stress_below(&rng, INFLIGHT);
		/* wait for one of the roots in flight */
		unsigned k = (unsigned)stress_below(&rng, nfl);
		struct tree *tree = &ph->trees[fl_tree[k]];
		void *v = NULL;
		stress_where("waiting for root", tree->root.id);
		int rc = weft_future_get(fl[k], &v);
		stress_where("submitting", 0);
		if (leaf_fails(&tree->root))
			STRESS_CHECK(rc == -EIO, "root %zu = %d", tree->root.id,
				     rc);
		else
			STRESS_CHECK(rc == 0 &&
					     (uint64_t)(uintptr_t)v == tree->value,
				     "tree %zu (%s, depth %u): root gave %d, "
				     "value %llu, model %llu",
				     fl_tree[k],
				     tree->root.kind == K_WIDE ? "wide"
							       : "deep",
				     tree->root.max_depth, rc,
				     (unsigned long long)(uintptr_t)v,
				     (unsigned long long)tree->value);
		weft_future_unref(fl[k]);
		fl[k] = fl[nfl - 1];
		fl_tree[k] = fl_tree[nfl - 1];
		nfl--;
	}
	stress_where("done", 0);
}

static void phase_trees(uint64_t target_nodes, unsigned workers,
			unsigned salt)
{
	struct tree_phase ph = {.threads = 4};
	uint64_t rng = stress_stream(400 + salt);
	size_t cap = 64;
	ph.trees = malloc(cap * sizeof(*ph.trees));
	uint64_t total = 0;
	while (total < target_nodes) {
		if (ph.ntrees == cap) {
			cap *= 2;
			ph.trees = realloc(ph.trees, cap * sizeof(*ph.trees));
		}
		if (!ph.trees)
			exit(STRESS_FAIL);
		struct tree *t = &ph.trees[ph.ntrees++];
		bool wide = stress_below(&rng, 8) == 0;
		t->root = (struct node){
			.id = 0,
			.depth = 0,
			.max_depth = wide ? 3 : 4 + (unsigned)stress_below(&rng, 6),
			.kind = wide ? K_WIDE : K_DEEP,
			.seed = (uint32_t)stress_rand(&rng) & SEED_MASK,
		};
		model(&t->root, &t->total, &t->value);
		total += t->total;
	}
	stress_track_reset(&tr);
	if (total > tr.cap) {
		stress_fail("harness: %llu nodes > %zu records",
			    (unsigned long long)total, tr.cap);
		exit(stress_finish());
	}
	atomic_store(&nodes_done, 0);
	stress_phase("trees: %zu trees, %llu nodes, %u workers, %u outside "
		     "threads",
		     ph.ntrees, (unsigned long long)total, workers, ph.threads);
	pool = stress_pool(workers, "tree");
	pool_workers = weft_pool_workers(pool);
	struct stress_threads *th =
		stress_threads_start(ph.threads, tree_thread, &ph, "rooter");
	stress_threads_join(th);
	/* fire-and-forget subtrees may still run: wait for the count */
	stress_phase("trees: waiting for forgotten subtrees");
	while (atomic_load(&nodes_done) < total)
		stress_sleep_ns(1000000); /* the tasks report progress */
	STRESS_CHECK(atomic_load(&nodes_done) == total,
		     "%llu nodes done, model says %llu",
		     (unsigned long long)atomic_load(&nodes_done),
		     (unsigned long long)total);
	int rc = weft_pool_shutdown(pool, 0, WEFT_FOREVER);
	STRESS_CHECK(rc == 0, "shutdown = %d", rc);
	weft_pool_destroy(pool);
	pool = NULL;
	STRESS_CHECK(atomic_load(&tr.next) == total,
		     "%zu ids handed out, model says %llu nodes",
		     atomic_load(&tr.next), (unsigned long long)total);
	stress_verify(&tr, 0, atomic_load(&tr.next), true, false);
	free(ph.trees);
}

/* ---- phase: -EDEADLK ---------------------------------------------------- */

struct selfwait {
	_Atomic(struct weft_future *) self;
};

static int selfwait_task(void *arg, void **result)
{
	struct selfwait *s = arg;
	struct weft_future *f;
	while (!(f = atomic_load_explicit(&s->self, memory_order_acquire)))
		sched_yield();
	int rc = weft_future_wait(f);
	STRESS_CHECK(rc == -EDEADLK, "a task waiting for its own future: "
		     "wait = %d",
		     rc);
	rc = weft_future_wait_until(f, weft_now() + 1000000);
	STRESS_CHECK(rc == -EDEADLK, "wait_until(own future) = %d", rc);
	void *v = (void *)0x5;
	rc = weft_future_get(f, &v);
	STRESS_CHECK(rc == -EDEADLK && v == (void *)0x5,
		     "get(own future) = %d", rc);
	STRESS_CHECK(weft_future_try_wait(f) == -EAGAIN,
		     "try_wait(own future) while running");
	STRESS_CHECK(weft_future_state(f) == WEFT_FUTURE_RUNNING,
		     "own state %d while running", weft_future_state(f));
	stress_count_task();
	*result = s;
	return 0;
}

static void selfwait_thread(void *arg, unsigned index)
{
	size_t n = *(size_t *)arg;
	for (size_t i = 0; i < n; i++) {
		struct selfwait s;
		atomic_init(&s.self, NULL);
		struct weft_future *f = NULL;
		int rc = weft_submit(pool, selfwait_task, &s, &f);
		STRESS_CHECK(rc == 0, "submit = %d", rc);
		if (rc)
			return;
		atomic_store_explicit(&s.self, f, memory_order_release);
		void *v = NULL;
		stress_where("waiting for selfwait", i);
		rc = weft_future_get(f, &v);
		STRESS_CHECK(rc == 0 && v == &s, "selfwait get = %d", rc);
		weft_future_unref(f);
	}
	(void)index;
}

static void phase_selfwait(size_t n)
{
	stress_phase("selfwait: %zu tasks waiting for their own future", n);
	pool = stress_pool(2, "self");
	pool_workers = 2;
	size_t per = n / 2;
	struct stress_threads *th =
		stress_threads_start(2, selfwait_thread, &per, "selfwait");
	stress_threads_join(th);
	weft_pool_destroy(pool);
	pool = NULL;
}

static void dump(int fd)
{
	stress_dprintf(fd, "  nodes done %llu, ids handed out %zu\n",
		       (unsigned long long)atomic_load(&nodes_done),
		       atomic_load(&tr.next));
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_nested");
	stress_set_dump(dump);
	uint64_t n2 = stress_scaled(2600000, 2000);
	uint64_t n4 = stress_scaled(1800000, 2000);
	/* a phase overshoots its target by at most one tree: a deep tree
	 * has fewer than 3^10 nodes, a wide one 1111 */
	stress_track_init(&tr, (size_t)(n2 > n4 ? n2 : n4) + 90000);
	stress_track_default(&tr);
	phase_trees(n2, 2, 0);
	phase_trees(n4, 4, 1);
	phase_selfwait(stress_scaled(4000, 20));
	stress_track_fini(&tr);
	return stress_finish();
}
