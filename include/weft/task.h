/*
 * weft/task.h - submitting tasks to a pool.
 *
 * A task is a function and an argument. It runs once on one of the pool's
 * workers; its outcome (a value and an error code) completes the future
 * that the submit returned.
 *
 * Waiting inside a task (weft_future_wait() and friends, weft_map(),
 * weft_parallel_for(), and everything in weft/async.h, weft/group.h and
 * weft/sync.h) suspends the task: its worker goes on with other work, and
 * the task resumes, maybe on another worker, when the wait is over. If the
 * awaited task has not started yet, the waiter runs it inline instead (as
 * Lace's SYNC does): that is the awaited task itself, never unrelated work.
 * See docs/async.md.
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stdbool.h>
#include <stddef.h>

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
 * struct weft_task_options - per-task settings for weft_submit_opts().
 * Fill it with zeros (designated initializers) and set what you need; later
 * versions may add fields whose zero is the default.
 */
struct weft_task_options {
	/** Usable stack bytes the task needs; 0 means the pool's
	 *  (weft_pool_options.stack_size). A task that needs more than the
	 *  pool's runs on a fiber of its own size (mapped for it: costs a few
	 *  microseconds). At most 1 GiB. */
	size_t stack_size;
};

/**
 * weft_submit_opts() - weft_submit() with per-task settings (@opts may be
 * NULL: the defaults). Returns what weft_submit() returns, and -EINVAL for
 * a stack_size over 1 GiB.
 */
WEFT_API int weft_submit_opts(struct weft_pool *pool, weft_task_fn fn,
			      void *arg, const struct weft_task_options *opts,
			      struct weft_future **out);

/**
 * weft_task_cancelled() - true when the calling task has been asked to stop:
 * weft_future_cancel() was called on its future after it had started, or its
 * pool is shutting down with WEFT_SHUTDOWN_CANCEL. Long tasks should poll it
 * and return -ECANCELED. False outside a task.
 */
WEFT_API bool weft_task_cancelled(void);

WEFT_END_DECLS

#endif /* WEFT_TASK_H */
