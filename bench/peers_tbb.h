/*
 * peers_tbb.h - oneTBB peers of the fork/join benchmarks, written in C++
 * (peers_tbb.cpp) behind a C interface. Built only when meson finds a C++
 * compiler and oneTBB; the C side then sees BENCH_HAVE_TBB=1.
 *
 * The workloads spawn one tbb::task_group task per call, with no cutoff,
 * the same trees as the weft and OpenMP versions in bench_fib.c: what they
 * measure is the cost of a spawn and its wait.
 *
 * Functions return 0, or -ENOMEM when oneTBB threw (the message goes to
 * stderr). Call them from one thread at a time.
 */
#ifndef PEERS_TBB_H
#define PEERS_TBB_H

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
