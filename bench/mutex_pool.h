/*
 * mutex_pool.h - the baseline: a plain mutex + condition variable FIFO
 * thread pool, the design of the popular C thread pools (C-Thread-Pool /
 * thpool, and most hand-written ones): one linked-list queue of malloc'd
 * (fn, arg) nodes, one mutex, one condition variable the idle workers sleep
 * on. Written to be a good implementation of that design, not a strawman:
 * nodes are allocated outside the lock, a submit signals only when a worker
 * sleeps, and signals after unlocking.
 *
 * Completion: a struct mpool_group is this pool's "future": give it to
 * mpool_submit() and the worker counts it down after the task returns;
 * mpool_group_wait() blocks until every task of the group has run.
 */
#ifndef BENCH_MUTEX_POOL_H
#define BENCH_MUTEX_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct mpool;

typedef void (*mpool_fn)(void *arg);

/* A countdown of the tasks submitted with it; caller-allocated. */
struct mpool_group {
	atomic_long pending;
	pthread_mutex_t mu;   /* protects done */
	pthread_cond_t cv;
	bool done;
};

/*
 * mpool_group_init() - a group that completes after @n tasks submitted with
 * it have run. Reuse needs a new init once it has completed.
 */
void mpool_group_init(struct mpool_group *g, long n);
void mpool_group_fini(struct mpool_group *g);
/* Block until the group has completed. Any thread but the pool's own. */
void mpool_group_wait(struct mpool_group *g);

/* Start @workers threads. Returns 0, -EINVAL, -ENOMEM or -EAGAIN. */
int mpool_create(unsigned workers, struct mpool **out);

/*
 * mpool_submit() - queue @fn(@arg) at the tail; @g (may be NULL) is counted
 * down after it runs. Returns 0 or -ENOMEM. Any thread; takes the pool lock.
 */
int mpool_submit(struct mpool *p, mpool_fn fn, void *arg,
		 struct mpool_group *g);

/* Run every queued task, stop and join the workers, free the pool. NULL is
 * ignored. */
void mpool_destroy(struct mpool *p);

#endif /* BENCH_MUTEX_POOL_H */
