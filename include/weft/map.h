/*
 * weft/map.h - data parallelism: parallel for over an index range, and map
 * over an array with results in input order.
 *
 * Work is divided by lazy binary splitting (Tzannes, Caragea, Barua,
 * Vishkin, "Lazy binary-splitting", PPoPP 2010): a worker runs its range in
 * growing blocks and hands half of what is left to the pool only when its
 * own deque is empty, i.e. when some worker may be idle. So the grain adapts
 * to the cost of an item and to the number of idle workers, with no tuning.
 * An explicit chunk size fixes the unit of work instead.
 *
 * The first error a body returns is the call's result; chunks that have not
 * started by then are skipped. Both calls wait until every chunk that
 * started has finished: a calling task first runs its own chunks that no
 * other worker took, then suspends; a thread outside the pool blocks.
 */
#ifndef WEFT_MAP_H
#define WEFT_MAP_H

#include <stddef.h>

#include "common.h"

WEFT_BEGIN_DECLS

struct weft_pool;

/**
 * A parallel-for body: process indices [@begin, @end) and return 0, or a
 * negative code to stop the loop. Called concurrently on disjoint ranges.
 */
typedef int (*weft_range_fn)(size_t begin, size_t end, void *arg);

/**
 * weft_parallel_for() - call @fn over [@begin, @end) in parallel.
 * @chunk: 0 to split on demand; otherwise every call gets exactly @chunk
 *         indices (the last may get fewer).
 * Returns 0; the first error a body returned; -EINVAL (@pool or @fn NULL,
 * @begin > @end); -ESHUTDOWN (the pool takes no submissions from this
 * thread); -ENOMEM. An empty range returns 0 without calling @fn. Any
 * thread; blocks until done.
 */
WEFT_API int weft_parallel_for(struct weft_pool *pool, size_t begin,
			       size_t end, size_t chunk, weft_range_fn fn,
			       void *arg);

/**
 * A map body: read @count consecutive items starting at @in (each in_size
 * bytes), write their results starting at @out (each out_size bytes), and
 * return 0, or a negative code to stop the map (results of items the
 * failing call did not write are left as they were). Called concurrently
 * on disjoint blocks; a body that handles one item at a time is a loop
 * over count.
 */
typedef int (*weft_map_fn)(const void *in, void *out, size_t count,
			   void *arg);

/**
 * weft_map() - out[i] = f(in[i]) for i in [0, @n), like Executor.map:
 * results land in input order. @in holds @n items of @in_size bytes, @out
 * room for @n results of @out_size bytes; the caller owns both, and they
 * may be the same array when the sizes match. @fn is called once per block
 * [b, e), with in + b * @in_size, out + b * @out_size and count e - b >= 1.
 * @chunk: 0 to let the block size adapt, as weft_parallel_for() does;
 *         otherwise every call gets exactly @chunk items (the last may get
 *         fewer).
 * Returns 0; the first error a body returned (results of items no call
 * wrote are left as they were); -EINVAL (NULL pointers, a zero size, @n
 * items of either size overflow size_t); -ESHUTDOWN; -ENOMEM. n == 0
 * returns 0 without calling @fn. Any thread; blocks until done.
 */
WEFT_API int weft_map(struct weft_pool *pool, const void *in, size_t in_size,
		      void *out, size_t out_size, size_t n, size_t chunk,
		      weft_map_fn fn, void *arg);

WEFT_END_DECLS

#endif /* WEFT_MAP_H */
