/*
 * weft/group.h - task groups (structured concurrency) and task-local
 * storage.
 *
 * A task group is a nursery in Trio's sense (asyncio's TaskGroup): tasks
 * spawned into it are its children, weft_group_wait() returns when all of
 * them have finished, and by default the first child that fails cancels
 * the others. A group may have a deadline, after which the children still
 * running are cancelled. See docs/groups.md.
 *
 * Cancellation in weft is cooperative and sticky: a cancelled task that has
 * not started never runs; a running one sees weft_task_cancelled() return
 * true, and every wait it makes (futures, joins of groups, locks, channels,
 * sleeps) returns -ECANCELED, including a wait it is suspended in when the
 * cancel arrives, until it returns. weft_cancel_shield_push() (weft/async.h)
 * lets cleanup code wait anyway.
 */
#ifndef WEFT_GROUP_H
#define WEFT_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "task.h"

WEFT_BEGIN_DECLS

struct weft_pool;
struct weft_future;
struct weft_group;

/** Flags for weft_group_create(). */
enum {
	/** Do not cancel the other children when one fails: run them all
	 *  and report the first failure at the end. */
	WEFT_GROUP_COLLECT = 1u << 0,
};

/**
 * weft_group_create() - a new, empty task group whose children run on
 * @pool.
 * @deadline: an absolute weft_now() time after which the children still
 *            running are cancelled (WEFT_FOREVER: none).
 * @out: receives the group, owned by the caller (weft_group_destroy()).
 *
 * Returns 0, -EINVAL (@pool or @out NULL, unknown flags), -ENOMEM.
 * Any thread; never blocks.
 */
WEFT_API int weft_group_create(struct weft_pool *pool, unsigned flags,
			       int64_t deadline, struct weft_group **out);

/**
 * weft_group_spawn() - run @fn(@arg) as a child of @g (as weft_submit()).
 * @out: optional; receives the child's future with a reference owned by
 *       the caller.
 *
 * Returns 0; -EINVAL; -ENOMEM; -ECANCELED once the group has been
 * cancelled (explicitly, by a failure, or by its deadline): nothing runs;
 * -ESHUTDOWN if the pool refuses it. Any thread, including the group's
 * own children.
 */
WEFT_API int weft_group_spawn(struct weft_group *g, weft_task_fn fn,
			      void *arg, struct weft_future **out);

/**
 * weft_group_cancel() - cancel every child that has not finished (queued
 * ones never run, running ones are asked to stop and woken from their
 * waits) and refuse new ones. Idempotent. Any thread; never blocks.
 */
WEFT_API void weft_group_cancel(struct weft_group *g);

/**
 * weft_group_wait() - wait until every child has finished, or @deadline.
 *
 * Returns 0 when no child failed (a child cancelled by someone else, e.g.
 * a cancelling pool shutdown, is not a failure); else the first failure:
 * the error code of the first child that failed (-ECANCELED does not
 * count as a failure),
 * -ETIMEDOUT when the group's own deadline passed (the rest were
 * cancelled and have finished), -ECANCELED when the group was cancelled by
 * weft_group_cancel() or the waiting task was cancelled (the children are
 * then cancelled, and waited for, before it returns). When @deadline (the
 * wait's, not the group's) passes first it returns -ETIMEDOUT at once and
 * the children go on; wait again later.
 *
 * In a task the task suspends; elsewhere the thread blocks. One of @g's
 * own children gets -EDEADLK (it would wait for itself).
 */
WEFT_API int weft_group_wait(struct weft_group *g, int64_t deadline);

/**
 * weft_group_destroy() - cancel the children still running, wait for them
 * (not cancellable), and free @g. NULL is a no-op. Any thread that is not
 * one of @g's children.
 */
WEFT_API void weft_group_destroy(struct weft_group *g);

/**
 * Task-local storage, like Python's contextvars: a value set in a task is
 * seen by that task wherever it runs (it follows the task across workers,
 * since it lives in the task, not in the thread), and a task started from
 * inside a task (weft_submit(), weft_submit_opts(), weft_group_spawn(),
 * weft_future_then()) starts with a copy of its creator's values: later
 * sets on either side do not show on the other. A child forked with
 * weft_spawn() is part of its parent task and shares its values (it sees a
 * set made by the parent while it runs, and the other way round). Outside
 * a task the values belong to the calling thread (a worker's start hook
 * included: tasks never see those). Values are plain pointers that weft
 * does not own (it never frees them).
 *
 * A key is any object with a stable address, typically a static variable:
 *
 *	static struct weft_local_key request_id;
 *	weft_local_set(&request_id, req);
 *	... weft_local_get(&request_id) ...
 */
struct weft_local_key {
	char unused_;
};

/**
 * weft_local_set() - bind @value to @key for the calling task (or thread).
 * Returns 0, -EINVAL (@key NULL), -ENOMEM (nothing changed). Copies the
 * task's small table (copy on write): O(number of keys set).
 */
WEFT_API int weft_local_set(const struct weft_local_key *key, void *value);

/** weft_local_get() - the value bound to @key, or NULL if none. */
WEFT_API void *weft_local_get(const struct weft_local_key *key);

WEFT_END_DECLS

#endif /* WEFT_GROUP_H */
