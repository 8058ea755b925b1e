/*
 * tree_tbb.cpp - the oneTBB peer of bench_tree.c; see tree_tbb.h. One
 * tbb::task_group task per child, no cutoff, inside a tbb::task_arena that
 * fixes the thread count: the same trees, walked the same way, as the
 * weft and OpenMP versions in bench_tree.c.
 */
#include "tree_tbb.h"

#include <cerrno>
#include <cstdio>
#include <exception>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

struct tree_tbb {
	/* First: the limit must be in place before the arena starts its
	 * threads. */
	tbb::global_control limit;
	tbb::task_arena arena;

	explicit tree_tbb(unsigned threads)
		: limit(tbb::global_control::max_allowed_parallelism, threads),
		  arena(static_cast<int>(threads), 1)
	{
	}
};

namespace {

/* Opaque to the optimiser, as bench_tree.c's versions are: no recursive
 * inlining, no clones for constant arguments. */
#if defined(__GNUC__) && !defined(__clang__)
#define OPAQUE __attribute__((noipa))
#else
#define OPAQUE __attribute__((noinline))
#endif

/*
 * nqueens: @cols holds the columns taken so far, @left and @right the
 * squares of the next row that the queens attack along the diagonals;
 * @all is the n columns. A task per free square of the next row. A node
 * with no free square makes no task_group: constructing one is part of
 * what a spawn costs in oneTBB, and a dead end spawns nothing.
 */
OPAQUE uint64_t nqueens(uint32_t all, uint32_t cols, uint32_t left,
			uint32_t right)
{
	if (cols == all)
		return 1;
	uint32_t free = all & ~(cols | left | right);

	if (!free)
		return 0;
	uint64_t cnt[TREE_NQ_MAX], sum = 0;
	unsigned k = 0;
	tbb::task_group g;

	while (free) {
		uint32_t bit = free & (0u - free);
		uint32_t c = cols | bit, l = (left | bit) << 1,
			 r = (right | bit) >> 1;

		free ^= bit;
		g.run([&cnt, k, all, c, l, r] {
			cnt[k] = nqueens(all, c, l, r);
		});
		k++;
	}
	g.wait();
	for (unsigned i = 0; i < k; i++)
		sum += cnt[i];
	return sum;
}

/* UTS: the nodes of the subtree at @n. The children's states are made
 * here, in the parent, as in the other versions, and stay in this frame
 * until the wait. */
OPAQUE uint64_t uts(const tree_uts *t, const tree_uts_node *n)
{
	unsigned k = tree_uts_kids(t, n);

	if (!k)
		return 1;
	tree_uts_node kid[TREE_UTS_MAX_KIDS];
	uint64_t cnt[TREE_UTS_MAX_KIDS], sum = 1;
	tbb::task_group g;

	for (unsigned i = 0; i < k; i++) {
		tree_uts_child(n, i, &kid[i]);
		g.run([t, &kid, &cnt, i] { cnt[i] = uts(t, &kid[i]); });
	}
	g.wait();
	for (unsigned i = 0; i < k; i++)
		sum += cnt[i];
	return sum;
}

int failed(const char *what, const std::exception *e)
{
	std::fprintf(stderr, "tree_tbb: %s: %s\n", what,
		     e ? e->what() : "unknown exception");
	return -ENOMEM;
}

} // namespace

extern "C" int tree_tbb_create(unsigned threads, struct tree_tbb **out)
{
	tree_tbb *t = nullptr;

	*out = nullptr;
	try {
		t = new tree_tbb(threads);
		/* Start its threads now, not inside the first timed run. */
		t->arena.initialize();
	} catch (const std::exception &e) {
		delete t;
		return failed("task_arena", &e);
	} catch (...) {
		delete t;
		return failed("task_arena", nullptr);
	}
	*out = t;
	return 0;
}

extern "C" void tree_tbb_destroy(struct tree_tbb *t)
{
	delete t;
}

extern "C" int tree_tbb_nqueens(struct tree_tbb *t, unsigned n,
				uint64_t *out)
{
	if (n < 1 || n > TREE_NQ_MAX)
		return -EINVAL;
	try {
		uint32_t all = (uint32_t)((1ull << n) - 1);

		t->arena.execute([all, out] { *out = nqueens(all, 0, 0, 0); });
	} catch (const std::exception &e) {
		return failed("nqueens", &e);
	} catch (...) {
		return failed("nqueens", nullptr);
	}
	return 0;
}

extern "C" int tree_tbb_uts(struct tree_tbb *t, const struct tree_uts *tree,
			    const struct tree_uts_node *root, uint64_t *out)
{
	try {
		t->arena.execute([tree, root, out] { *out = uts(tree, root); });
	} catch (const std::exception &e) {
		return failed("uts", &e);
	} catch (...) {
		return failed("uts", nullptr);
	}
	return 0;
}
