/*
 * weft/future.h - futures: the outcome of a task, and ways to wait for many.
 *
 * A future is refcounted. Its creator (weft_submit(), weft_when_all(), ...)
 * hands the caller one reference; weft_future_ref() adds one and
 * weft_future_unref() drops one; the last unref frees it. The pool keeps its
 * own reference while the task is queued or running, so dropping yours never
 * stops the task. A future stays valid after its pool is destroyed.
 *
 * A future completes exactly once, in one of three ways:
 *   WEFT_FUTURE_DONE       the task returned 0; weft_future_value() holds its
 *                          value;
 *   WEFT_FUTURE_FAILED     the task returned a negative code, or the future
 *                          finished with -ESHUTDOWN (a continuation whose
 *                          pool had stopped);
 *   WEFT_FUTURE_CANCELLED  it completed with -ECANCELED: it was cancelled
 *                          before it ran (and never will), or its task saw
 *                          weft_task_cancelled() and returned -ECANCELED,
 *                          as an asyncio task that lets CancelledError
 *                          propagate counts as cancelled.
 *
 * Waiting: on a thread outside any pool every wait blocks the thread.
 * Inside a task it suspends the task (weft/task.h, docs/async.md), and a
 * wait without a deadline runs the awaited task inline if it has not
 * started. A task that waits on its own future, or on a task that is
 * (inline) waiting for it, gets -EDEADLK; a waiting task that is cancelled
 * gets -ECANCELED.
 */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

WEFT_BEGIN_DECLS

struct weft_pool;
struct weft_future;
struct weft_as_completed;

/** Values of weft_future_state(). */
enum weft_future_state {
	WEFT_FUTURE_PENDING = 0,   /**< queued, not started */
	WEFT_FUTURE_RUNNING = 1,   /**< its task is running */
	WEFT_FUTURE_DONE = 2,      /**< completed, error 0 */
	WEFT_FUTURE_FAILED = 3,    /**< completed with an error */
	WEFT_FUTURE_CANCELLED = 4, /**< completed with -ECANCELED */
};

/** weft_future_ref() - add a reference. Any thread; @f must be live. */
WEFT_API void weft_future_ref(struct weft_future *f);

/**
 * weft_future_unref() - drop a reference; the last frees the future. NULL is
 * ignored. Any thread. Dropping more references than were taken is a bug:
 * debug builds abort with a message naming the future.
 */
WEFT_API void weft_future_unref(struct weft_future *f);

/** weft_future_state() - one of enum weft_future_state; a snapshot. */
WEFT_API int weft_future_state(const struct weft_future *f);

/**
 * weft_future_wait() - wait until @f completes.
 * Returns 0 once it has (whatever its outcome: read it with
 * weft_future_error()), -EINVAL for NULL, -EDEADLK when the calling task is
 * the one that must complete @f (or an inline waiter of it).
 */
WEFT_API int weft_future_wait(struct weft_future *f);

/**
 * weft_future_wait_until() - as weft_future_wait(), giving up at @deadline
 * (weft_now() clock) with -ETIMEDOUT. A deadline in the past makes it a
 * poll.
 */
WEFT_API int weft_future_wait_until(struct weft_future *f, int64_t deadline);

/** weft_future_try_wait() - 0 if @f has completed, else -EAGAIN; never
 *  waits. */
WEFT_API int weft_future_try_wait(const struct weft_future *f);

/**
 * weft_future_error() - the outcome of a completed future: 0, the task's own
 * code, -ECANCELED or -ESHUTDOWN. -EINPROGRESS while it has not completed.
 */
WEFT_API int weft_future_error(const struct weft_future *f);

/** weft_future_value() - the value of a DONE future; NULL otherwise. The
 *  future does not own what it points to. */
WEFT_API void *weft_future_value(const struct weft_future *f);

/**
 * weft_future_get() - wait, then give the outcome, as Python's
 * Future.result(): 0 with *@value set (when @value is not NULL), the task's
 * error, -ECANCELED, -ESHUTDOWN; or -EDEADLK / -EINVAL as for
 * weft_future_wait(), which leave *@value untouched.
 */
WEFT_API int weft_future_get(struct weft_future *f, void **value);

/**
 * weft_future_try_get() - weft_future_get() that never waits: -EAGAIN while
 * @f has not completed. (A task may fail with -EAGAIN too; use
 * weft_future_try_wait() where the two must be told apart.)
 */
WEFT_API int weft_future_try_get(const struct weft_future *f, void **value);

/**
 * weft_future_cancel() - ask that @f's task not run.
 * Returns 0 when the task had not started: it never will, and @f completes
 * now with -ECANCELED (continuations and waiters run on the calling thread).
 * -EBUSY when it is running: it keeps running, and weft_task_cancelled()
 * returns true inside it. -EALREADY when @f had already completed, or
 * another cancel won the race (either way @f is complete when this
 * returns), and -EINVAL for NULL or a future no task completes
 * (weft_when_all()'s). Any thread; never blocks (a losing cancel waits
 * the few instructions the winner needs to store the outcome).
 */
WEFT_API int weft_future_cancel(struct weft_future *f);

/** A completion callback. */
typedef void (*weft_callback_fn)(struct weft_future *f, void *arg);

/**
 * weft_future_on_complete() - call @cb(@f, @arg) once @f completes: on the
 * thread that completes it, or at once on the caller's if @f already has.
 * Callbacks run in no set order, must be short and must not wait; @f is
 * live during the call (take a reference to keep it longer).
 * Returns 0, -EINVAL, -ENOMEM.
 */
WEFT_API int weft_future_on_complete(struct weft_future *f, weft_callback_fn cb,
				     void *arg);

/**
 * A continuation body: @antecedent is the completed future it follows (live
 * for the call; query its outcome), @arg as given; fill *@result and return
 * as a weft_task_fn does.
 */
typedef int (*weft_then_fn)(struct weft_future *antecedent, void *arg,
			    void **result);

/**
 * weft_future_then() - run @fn as a task on @pool once @f completes,
 * whatever its outcome. *@out receives the continuation's future (caller
 * owns one reference). If @pool has stopped by the time @f completes, the
 * continuation never runs and its future fails with -ESHUTDOWN. @pool must
 * not be destroyed before @f completes. Returns 0, -EINVAL, -ENOMEM,
 * -ESHUTDOWN (the pool no longer takes submissions from this thread).
 */
WEFT_API int weft_future_then(struct weft_pool *pool, struct weft_future *f,
			      weft_then_fn fn, void *arg,
			      struct weft_future **out);

/**
 * weft_when_all() - a future that completes when all @n futures have (like
 * asyncio.gather). Its value is NULL; its error is 0 when all succeeded,
 * else the error of the lowest-index input that did not. @futs is read
 * during the call only; references to the inputs are held until they
 * complete. n == 0 gives a future that is already done.
 * Returns 0, -EINVAL (@futs or @out NULL, or a NULL entry), -ENOMEM.
 */
WEFT_API int weft_when_all(struct weft_future *const *futs, size_t n,
			   struct weft_future **out);

/**
 * weft_when_any() - a future that completes as soon as one of the @n
 * futures has; its value is that input's index, cast with (void *)(uintptr_t),
 * and its error is 0. -EINVAL for n == 0, NULL arguments; -ENOMEM.
 */
WEFT_API int weft_when_any(struct weft_future *const *futs, size_t n,
			   struct weft_future **out);

/**
 * weft_future_wait_all() - wait until all @n futures complete, but return at
 * the first failure (asyncio.wait(..., FIRST_EXCEPTION)).
 * Returns 0 when all completed successfully; the failing future's error as
 * soon as any fails (or is cancelled), with its index in *@failed when
 * @failed is not NULL; -ETIMEDOUT at @deadline; -EINVAL, -ENOMEM, -EDEADLK.
 * *@failed is SIZE_MAX unless a future failed.
 */
WEFT_API int weft_future_wait_all(struct weft_future *const *futs, size_t n,
				  int64_t deadline, size_t *failed);

/**
 * weft_as_completed_create() - iterate over @n futures in the order they
 * complete (concurrent.futures.as_completed). Holds a reference to each
 * input until weft_as_completed_destroy(). Returns 0, -EINVAL, -ENOMEM.
 */
WEFT_API int weft_as_completed_create(struct weft_future *const *futs,
				      size_t n, struct weft_as_completed **out);

/**
 * weft_as_completed_next() - wait for the next input to complete and store
 * its index in *@index. Returns 0; -ENOENT once every input has been
 * returned; -ETIMEDOUT at @deadline; -EINVAL. One thread at a time per
 * iterator.
 */
WEFT_API int weft_as_completed_next(struct weft_as_completed *it,
				    int64_t deadline, size_t *index);

/** weft_as_completed_destroy() - free the iterator; NULL is ignored. The
 *  inputs need not have completed. */
WEFT_API void weft_as_completed_destroy(struct weft_as_completed *it);

WEFT_END_DECLS

#endif /* WEFT_FUTURE_H */
