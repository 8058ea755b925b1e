/*
 * weft/task.h - submitting tasks to a pool.
 *
 * A task is a function and an argument. It runs once on one of the pool's
 * workers; its outcome (a value and an error code) completes the future
 * that the submit returned.
 *
 * Waiting inside a task (weft_future_wait() and friends, weft_map(),
 * weft_parallel_for()) - the interim rule until tasks run on fibers: when
 * the awaited task has not started yet, the waiting worker runs it inline
 * (as Lace's SYNC does); otherwise the waiting worker's thread blocks until
 * it completes. A pool whose every worker blocks this way on tasks that are
 * queued behind them stalls; the next release suspends the waiting task
 * instead (see docs/executor.md, "Waiting inside a task").
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stdbool.h>

#include "common.h"

WEFT_BEGIN_DECLS

struct weft_pool;
struct weft_future;

/**
 * A task body. Store the task's value in *result (it starts as NULL) and
 * return 0, or return a negative errno-style code to fail the task with it:
 * the future then completes as failed with that code and no value. A
 * positive return is treated as 0.
 */
typedef int (*weft_task_fn)(void *arg, void **result);

/** A pthread-style start routine: its return value is the task's value. */
typedef void *(*weft_routine_fn)(void *arg);

/**
 * weft_submit() - queue @fn(@arg) on @pool.
 * @out: receives the task's future with one reference owned by the caller
 *       (drop it with weft_future_unref()), or NULL to not keep one: the task
 *       still runs.
 *
 * Any thread may submit: a worker of this pool (the task goes on that
 * worker's deque, from where idle workers steal it), or any other thread
 * (main, pthreads, C11 threads, another pool's worker: the task goes on the
 * inject queue). Never blocks; wakes a parked worker when none is looking
 * for work.
 *
 * Returns 0; -EINVAL (@pool or @fn NULL); -ENOMEM; -ESHUTDOWN once
 * weft_pool_shutdown() has been called, unless the caller is one of the
 * pool's own tasks while the pool drains. On failure *@out is set to NULL
 * and nothing runs.
 */
WEFT_API int weft_submit(struct weft_pool *pool, weft_task_fn fn, void *arg,
			 struct weft_future **out);

/**
 * weft_submit_routine() - as weft_submit() for a pthread-style start routine
 * (the same function you would give pthread_create()), with no wrapper: the
 * routine's return value becomes the future's value and the task never
 * fails on its own.
 */
WEFT_API int weft_submit_routine(struct weft_pool *pool, weft_routine_fn fn,
				 void *arg, struct weft_future **out);

/**
 * weft_task_cancelled() - true when the calling task has been asked to stop:
 * weft_future_cancel() was called on its future after it had started, or its
 * pool is shutting down with WEFT_SHUTDOWN_CANCEL. Long tasks should poll it
 * and return -ECANCELED. False outside a task.
 */
WEFT_API bool weft_task_cancelled(void);

WEFT_END_DECLS

#endif /* WEFT_TASK_H */
