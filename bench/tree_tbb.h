/*
 * tree_tbb.h - the C interface between bench_tree.c and its oneTBB peer
 * (tree_tbb.cpp), and the UTS node functions the two share.
 *
 * tree_tbb.cpp is built only when meson finds a C++ compiler and oneTBB;
 * the C side then sees BENCH_HAVE_TBB=1. Its workloads spawn one
 * tbb::task_group task per child, with no cutoff, the same trees as the
 * weft and OpenMP versions in bench_tree.c.
 *
 * The UTS node functions (tree_uts_kids(), tree_uts_child()) live in
 * bench_tree.c, and every system calls them: the work per node is the very
 * same code in all of them, and only what a spawn and its wait cost
 * differs. They exist whether or not the program was built with nettle;
 * without it they are never called.
 *
 * The tree_tbb_ functions return 0, -EINVAL for a board wider than
 * TREE_NQ_MAX, or -ENOMEM when oneTBB threw (the message goes to stderr).
 * Call them from one thread at a time.
 */
#ifndef TREE_TBB_H
#define TREE_TBB_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The widest board nqueens takes: a row's free columns fit a uint32_t,
 * and a node spawns at most this many children. */
#define TREE_NQ_MAX 16

/*
 * The most children a UTS node may have. A node has at most
 * floor(log(2^-31) / log(1 - p)) of them (its random value is below 1 by
 * 2^-31 at most): 96 for the trees this program uses (b = 4, p = 1/5).
 * tree_uts_init() in bench_tree.c refuses a tree that could exceed it, so
 * that the versions can keep their children in arrays on the stack.
 */
#define TREE_UTS_MAX_KIDS 100

/* A geometric UTS tree with the fixed shape function ("-t 1 -a 3"). */
struct tree_uts {
	unsigned depth;     /* -d: nodes at this depth are leaves */
	unsigned b;         /* -b: expected children of an inner node */
	uint32_t seed;      /* -r: the root's seed */
	double log_q;       /* log(1 - p), p = 1 / (1 + b) */
};

/* A node: its SHA-1 state and its depth (the root's is 0). */
struct tree_uts_node {
	uint8_t state[20];
	uint32_t depth;
};

/* The number of children of @n in @t (at most TREE_UTS_MAX_KIDS). */
unsigned tree_uts_kids(const struct tree_uts *t,
		       const struct tree_uts_node *n);

/* Child @i of @parent, into @child. */
void tree_uts_child(const struct tree_uts_node *parent, unsigned i,
		    struct tree_uts_node *child);

/*
 * oneTBB: a task arena of @threads threads (the calling thread included),
 * and a tbb::global_control that allows oneTBB that many, so that
 * --workers above the CPU count gives oneTBB as many threads as weft.
 * One at a time.
 */
struct tree_tbb;

int tree_tbb_create(unsigned threads, struct tree_tbb **out);
void tree_tbb_destroy(struct tree_tbb *t);

/* The number of ways to place @n queens (n <= TREE_NQ_MAX), one
 * task_group task per legal placement of the next row. */
int tree_tbb_nqueens(struct tree_tbb *t, unsigned n, uint64_t *out);

/* The nodes of @tree below and including @root, one task_group task per
 * child. */
int tree_tbb_uts(struct tree_tbb *t, const struct tree_uts *tree,
		 const struct tree_uts_node *root, uint64_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TREE_TBB_H */
