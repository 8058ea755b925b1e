/*
 * peers_tbb.h - oneTBB peers of the fork/join benchmarks, written in C++
 * (peers_tbb.cpp) behind a C interface. Built only when meson finds a C++
 * compiler and oneTBB; the C side then sees BENCH_HAVE_TBB=1.
 *
 * The fork/join workloads spawn one tbb::task_group task per call, with no
 * cutoff, the same trees as the weft and OpenMP versions in bench_fib.c:
 * what they measure is the cost of a spawn and its wait. bench_submit.c
 * enqueues tiny tasks from an outside thread (peers_tbb_enqueue()), and
 * bench_map.c runs its C kernels under tbb::parallel_for
 * (peers_tbb_parallel_for()): the work is C code the other systems call
 * too, through a function pointer as they do.
 *
 * Functions return 0, or -ENOMEM when oneTBB threw (the message goes to
 * stderr). Call them from one thread at a time.
 */
#ifndef PEERS_TBB_H
#define PEERS_TBB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A task arena of a fixed number of threads, the calling thread included. */
struct peers_tbb_arena;

/*
 * Allow oneTBB up to @max_threads threads in all (tbb::global_control), so
 * that --workers above the CPU count gives oneTBB as many threads as weft.
 * Call once, before the first arena; peers_tbb_fini() lifts the limit.
 */
int peers_tbb_init(unsigned max_threads);
void peers_tbb_fini(void);

/* An arena that runs work on @threads threads (1: the caller alone). */
int peers_tbb_arena_create(unsigned threads, struct peers_tbb_arena **out);
void peers_tbb_arena_destroy(struct peers_tbb_arena *a);

/*
 * An arena for work enqueued from a thread outside it: @workers oneTBB
 * worker threads and no slot kept for an outside thread, which enqueues
 * and goes on without joining (peers_tbb_enqueue()). Give peers_tbb_init()
 * @workers + 1: oneTBB counts the thread that creates the arena in its
 * limit, and starts limit - 1 workers.
 */
int peers_tbb_arena_create_workers(unsigned workers,
				   struct peers_tbb_arena **out);

/* A task body: what mutex_pool.h's tasks are too. */
typedef void (*peers_tbb_fn)(void *arg);

/*
 * Fire and forget: run @fn(@arg) on one of @a's threads, some time later
 * (task_arena::enqueue()). The caller learns of its end from @fn itself.
 * Any thread, the arena's own included.
 */
int peers_tbb_enqueue(struct peers_tbb_arena *a, peers_tbb_fn fn, void *arg);

/* A loop body over the items [@begin, @end). */
typedef void (*peers_tbb_range_fn)(size_t begin, size_t end, void *arg);

/*
 * tbb::parallel_for over a blocked_range [0, @n) with the default
 * partitioner (auto_partitioner, grain size 1), run in @a: one call of @fn
 * per block that oneTBB settles on. @blocks: NULL, or where to store how
 * many blocks (calls of @fn) there were; counting them costs an atomic add
 * per block, so leave it NULL in a timed run.
 */
int peers_tbb_parallel_for(struct peers_tbb_arena *a, size_t n,
			   peers_tbb_range_fn fn, void *arg, size_t *blocks);

/* fib(@n), one task_group spawn per call that recurses (n >= 2). */
int peers_tbb_fib(struct peers_tbb_arena *a, unsigned n, uint64_t *out);

/* Children of every inner node of the skynet tree. */
#define PEERS_SKYNET_DIV 10

/*
 * skynet: the sum first + (first + 1) + ... + (first + @leaves - 1), as a
 * tree whose inner nodes spawn PEERS_SKYNET_DIV children each and whose
 * leaves return their number (@leaves a power of PEERS_SKYNET_DIV).
 */
int peers_tbb_skynet(struct peers_tbb_arena *a, uint64_t first,
		     uint64_t leaves, uint64_t *out);

#ifdef __cplusplus
}
#endif

#endif /* PEERS_TBB_H */
