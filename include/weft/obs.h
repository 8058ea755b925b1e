/*
 * weft/obs.h - observability: counters, task events, traces and slow-task
 * reports (docs/observability.md).
 *
 * What a service wants to know about its pool once the basics work, after
 * Tokio's runtime metrics and task hooks and asyncio's debug mode:
 *
 *   - weft_pool_stats(): per-worker and pool-wide counters, copied into a
 *     caller-owned struct. The counters are per-worker and written only by
 *     their worker (plain increments, no shared atomics on the hot paths),
 *     so they stay on by default; weft_pool_options.no_stats turns them
 *     off.
 *   - weft_pool_options.on_task_event: a function called when a task is
 *     created, starts, suspends in a wait, resumes and finishes.
 *   - A trace in Chrome's trace-event JSON (Perfetto, chrome://tracing):
 *     one track per worker with the tasks it ran, one for the io thread,
 *     and the waits and I/O operations as async slices. Turned on by
 *     weft_pool_options.trace_events or the environment variable
 *     WEFT_TRACE=<file>.
 *   - Slow-task reports: a task that runs longer than a threshold without
 *     waiting holds its worker; weft_pool_options.slow_task_ns or
 *     WEFT_SLOW_TASK_MS=<ms> reports each such run with the task's
 *     function and the time it took.
 *
 * Which tasks: everything that runs as a task with a future (weft_submit
 * and friends, continuations, map chunks) and the fork children of
 * weft_spawn() that another worker stole (or that were evacuated when
 * their parent waited). A fork child that runs at its own weft_join() is
 * an ordinary function call of its parent, as in Lace, and is part of the
 * parent's run: reporting it would put a call on the fork fast path.
 */
#ifndef WEFT_OBS_H
#define WEFT_OBS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

WEFT_BEGIN_DECLS

struct weft_pool;
struct weft_future;

/** What happened to a task (weft_task_hook). */
enum weft_task_event {
	/** Queued: called on the submitting thread, before the task can
	 *  run. Fork children (weft_spawn) have none: one that another
	 *  worker runs starts without it (until then it was a pending call
	 *  of its parent). */
	WEFT_TASK_CREATED = 0,
	/** Its function is about to be called, on a worker. */
	WEFT_TASK_STARTED = 1,
	/** It waits and its fiber is about to leave the worker (a wait
	 *  that is already satisfied does not suspend and is not reported).
	 *  When tasks run inline below others (awaiting a queued task runs
	 *  it), the innermost one is reported: the one that waits. A stolen
	 *  fork child that waits is reported as its parent task (the child
	 *  has no future of its own). */
	WEFT_TASK_SUSPENDED = 2,
	/** It continues after a wait, on the worker given (maybe another
	 *  one). */
	WEFT_TASK_RESUMED = 3,
	/** Its function has returned (its future is complete). */
	WEFT_TASK_FINISHED = 4,
};

/** An event, passed by pointer to the hook; valid during the call only. */
struct weft_task_event_info {
	enum weft_task_event event;
	/** The task's future (NULL for a stolen fork child, which has
	 *  none). Borrowed: alive during the call; take a reference
	 *  (weft_future_ref) to keep it. */
	const struct weft_future *task;
	/** The task's function, as submitted (for continuations the
	 *  weft_then_fn; for fork children the weft_task_fn given to
	 *  weft_spawn). Useful as a key, and to dladdr(). */
	void *fn;
	/** Its argument, as submitted. */
	void *arg;
	/** The worker the event happened on, or -1 (CREATED on a thread
	 *  outside the pool). */
	int worker;
};

/**
 * Called for every task event of the pool, on the thread where it happens:
 * workers (concurrently), and submitting threads for WEFT_TASK_CREATED. It
 * runs inside the scheduler, so it must be short and must not wait, submit
 * to the pool, or call back into weft (other than weft_now() and
 * weft_future_ref()). SUSPENDED is called on the task's own fiber just
 * before it leaves the worker, RESUMED on the same fiber right after it
 * has come back.
 */
typedef void (*weft_task_hook)(const struct weft_task_event_info *ev,
			       void *hook_arg);

/**
 * Called for a task that ran @ns nanoseconds on worker @worker without
 * waiting (from its start or its last resume to its end or its next
 * suspension), when @ns passed the pool's slow_task_ns. @fn is the task's
 * function (the outermost task of the run: tasks it ran inline count in
 * its time). Runs on the worker, after the run; the same rules as
 * weft_task_hook.
 */
typedef void (*weft_slow_task_fn)(void *fn, int64_t ns, int worker,
				  void *arg);

/** The trace's default size, in events per worker (32 bytes each). */
#define WEFT_TRACE_EVENTS_DEFAULT (1u << 20)

/**
 * struct weft_worker_stats - one worker's counters, since the pool began.
 *
 * Counts are exact once the pool is quiet (nothing running); while it runs
 * each is a recent value (read without stopping the worker). A task that
 * migrates is counted on the worker where each event happened.
 */
struct weft_worker_stats {
	/** Task bodies started here (see the file comment for which). */
	uint64_t tasks_run;
	/** Of them, finished here. */
	uint64_t tasks_completed;
	/** Tasks submitted by code running on this worker (fork children
	 *  are not submissions). */
	uint64_t submitted;
	/** Entries taken from other workers' deques and fork queues. */
	uint64_t steals;
	/** Looks at another worker that found nothing to take. */
	uint64_t steal_failures;
	/** Entries taken from the inject queue (outside submissions and
	 *  tasks woken by threads that are not workers). */
	uint64_t inject_taken;
	/** Times the worker went to sleep for lack of work... */
	uint64_t parks;
	/** ...and was woken. */
	uint64_t wakeups;
	/** Waits that suspended a task on this worker. */
	uint64_t suspends;
	/** Suspended tasks this worker resumed. */
	uint64_t resumes;
	/** I/O operations submitted by tasks on this worker. */
	uint64_t io_submitted;
	/** Entries on the worker's deque now. */
	uint64_t deque_depth;
	/** Free fibers in the worker's cache now. */
	uint64_t fibers_cached;
};

/** struct weft_pool_stats - the pool's totals. */
struct weft_pool_stats {
	unsigned workers;
	/** The sum of every worker's counters (the depths and caches
	 *  summed too). */
	struct weft_worker_stats total;
	/** Tasks submitted, by anyone (total.submitted + outside). */
	uint64_t submitted;
	/** Of them, submitted by threads that are not the pool's
	 *  workers. */
	uint64_t submitted_outside;
	/** Tasks that finished running (total.tasks_completed). */
	uint64_t completed;
	/** Entries waiting in the inject queue now. */
	uint64_t inject_depth;
	/** Fibers mapped, in use (running or suspended tasks, and the
	 *  workers' loops), and free (pooled for reuse). fibers ==
	 *  fibers_in_use + fibers_pooled always; while fibers move, the
	 *  split between the two is approximate. */
	uint64_t fibers;
	uint64_t fibers_in_use;
	uint64_t fibers_pooled;
	/** Bytes of address space of the fibers' stacks, guards included. */
	uint64_t stack_bytes;
	/** I/O operations submitted (by anyone), completed, and in flight
	 *  (submitted, not completed). */
	uint64_t io_submitted;
	uint64_t io_completed;
	uint64_t io_in_flight;
	/** weft_submit_blocking() calls queued or running, and the threads
	 *  of the blocking-call pool now. */
	uint64_t blocking_in_flight;
	uint64_t blocking_threads;
};

/**
 * weft_pool_stats() - copy the pool's counters.
 * @out:        receives the totals; caller-owned.
 * @per_worker: NULL, or an array of @n structs that receives the first @n
 *              workers' counters (index = weft_worker_index()).
 *
 * Returns 0, -EINVAL (@pool or @out NULL, @per_worker NULL with @n > 0),
 * or -ENOTSUP (the pool was made with no_stats: @out is zeroed except
 * workers and the fiber, I/O and queue figures, which are always kept).
 * Any thread, also one of the pool's tasks; never blocks (it takes the
 * fiber list's lock briefly). Costs O(workers).
 */
WEFT_API int weft_pool_stats(struct weft_pool *pool,
			     struct weft_pool_stats *out,
			     struct weft_worker_stats *per_worker, unsigned n);

/**
 * weft_pool_trace_write() - write the pool's trace to @path (created or
 * truncated) as Chrome trace-event JSON.
 *
 * The trace is kept per worker while the pool runs, and can be read only
 * when no worker writes it: call this after weft_pool_shutdown() has
 * returned 0 (the destroy that follows frees it). With WEFT_TRACE set, the
 * destroy writes the file itself. Returns 0, -EINVAL (NULL argument),
 * -ENODATA (tracing is off for this pool), -EBUSY (the pool has not shut
 * down), or -errno from opening or writing the file. Blocks on the file.
 */
WEFT_API int weft_pool_trace_write(struct weft_pool *pool, const char *path);

WEFT_END_DECLS

#endif /* WEFT_OBS_H */
