/*
 * weft/pool.h - the worker pool: creation, shutdown, destruction.
 *
 * A pool owns N worker threads, each with a work-stealing deque, and an
 * inject queue for submissions from threads outside the pool. Tasks are
 * submitted with weft_submit() (weft/task.h) and return futures
 * (weft/future.h).
 *
 * Lifetime: weft_pool_create() -> any number of submits -> optionally
 * weft_pool_shutdown() -> weft_pool_destroy(). Futures outlive the pool:
 * after destroy every future the caller still holds is complete and may be
 * queried and unref'd, but nothing may be submitted to the destroyed pool.
 */
#ifndef WEFT_POOL_H
#define WEFT_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

#include "common.h"
#include "obs.h"

WEFT_BEGIN_DECLS

struct weft_pool;

/** The most workers a pool accepts; more is refused with -EINVAL. */
#define WEFT_MAX_WORKERS 1024

/**
 * Called on each worker thread, with the worker's index (0..N-1) and
 * hook_arg: on_worker_start before the worker runs any task (pin the thread,
 * set up thread-local state), on_worker_stop after it has run its last one.
 * Hooks run concurrently on different workers. They must not submit to or
 * wait on the pool.
 */
typedef void (*weft_worker_hook)(unsigned index, void *hook_arg);

/**
 * struct weft_pool_options - how to build a pool.
 *
 * Always fill it with weft_pool_options_init() first, then change the
 * fields you need: later versions may add fields, which init gives their
 * defaults.
 */
struct weft_pool_options {
	/** Worker threads; 0 (the default) means weft_cpu_count(). At most
	 *  WEFT_MAX_WORKERS. */
	unsigned workers;
	/** Prefix of the worker threads' names ("<name>-<index>", cut to the
	 *  kernel's 15 characters); NULL means "weft". Copied at create. */
	const char *name;
	/** Optional; see weft_worker_hook. */
	weft_worker_hook on_worker_start;
	/** Optional; see weft_worker_hook. */
	weft_worker_hook on_worker_stop;
	/** Passed to both hooks. */
	void *hook_arg;
	/** Usable stack bytes of each fiber a task runs on; 0 means
	 *  WEFT_STACK_SIZE_DEFAULT. Rounded up to pages; at least 16 KiB,
	 *  at most 1 GiB. Tasks that need more than the pool's size ask
	 *  for it per task (weft_submit_opts(), weft/task.h). */
	size_t stack_size;
	/** I/O backend (weft/io.h): WEFT_IO_AUTO (the default) uses
	 *  io_uring when the kernel allows it, else blocking calls on a
	 *  thread pool; WEFT_IO_URING insists on io_uring (I/O calls fail
	 *  with -ENOTSUP without it); WEFT_IO_BLOCKING never uses it. The
	 *  environment variable WEFT_IO_BACKEND ("uring", "blocking",
	 *  "auto") overrides WEFT_IO_AUTO. */
	unsigned io_backend;
	/** Submission queue entries of the io thread's ring (rounded up to
	 *  a power of two, 2..4096); 0 means 256. The completion queue has
	 *  twice as many, and at most that many operations are in flight at
	 *  once: the rest wait in the io thread, in order. */
	unsigned io_entries;
	/** Threads of the blocking backend (and the cap on io_uring's
	 *  io-wq workers for blocking work); 0 means 4. */
	unsigned io_threads;
	/** Most threads of the blocking-call pool that runs
	 *  weft_submit_blocking() calls (weft/io.h); threads start as calls
	 *  arrive and end after a second idle. 0 means 64; at most 1024. */
	unsigned blocking_threads;
	/** Observability (weft/obs.h): the task event hook, NULL for none
	 *  (the default; then it costs one predictable branch per task). */
	weft_task_hook on_task_event;
	/** Passed to on_task_event. */
	void *task_hook_arg;
	/** Set to turn the per-worker counters of weft_pool_stats() off
	 *  (they are on by default: plain owner-only increments). */
	bool no_stats;
	/** Report tasks that run longer than this without waiting (they
	 *  hold their worker): see weft_slow_task_fn. 0 means off, unless
	 *  the environment variable WEFT_SLOW_TASK_MS is set. */
	int64_t slow_task_ns;
	/** Called for each slow task instead of the default message on
	 *  stderr; NULL for the message. */
	weft_slow_task_fn on_slow_task;
	/** Passed to on_slow_task. */
	void *slow_task_arg;
	/** Record a trace (weft/obs.h) of at most this many events per
	 *  worker (the newest are kept); 0 means off, unless the
	 *  environment variable WEFT_TRACE names a file, which turns it on
	 *  with WEFT_TRACE_EVENTS_DEFAULT events and writes the file when
	 *  the pool is destroyed. */
	size_t trace_events;
};

/** The default fiber stack: 256 KiB usable, plus a 64 KiB guard. */
#define WEFT_STACK_SIZE_DEFAULT (256u * 1024u)

/** Flags for weft_pool_shutdown(). */
enum {
	/** Cancel instead of draining: queued tasks never run, and their
	 *  futures complete with -ECANCELED; running tasks finish, and see
	 *  weft_task_cancelled() return true; a task suspended in a wait
	 *  (not shielded, not a weft_join()) is woken and the wait returns
	 *  -ECANCELED. A drain, by contrast, waits for suspended tasks to
	 *  finish their waits. */
	WEFT_SHUTDOWN_CANCEL = 1u << 0,
};

/**
 * weft_cpu_count() - the number of CPUs the caller may use: the CPUs in the
 * calling thread's affinity mask (the process's, unless this thread
 * narrowed its own), lowered to the cgroup CPU quota (cgroup v2 cpu.max of
 * the process's cgroup and every parent, or v1 cpu.cfs_quota_us) rounded
 * up. Never less than 1. Any thread; reads /proc and /sys, so call it
 * rarely.
 */
WEFT_API unsigned weft_cpu_count(void);

/**
 * weft_pool_options_init() - fill @opts with the defaults (all zero/NULL:
 * weft_cpu_count() workers named "weft-<i>", no hooks).
 */
WEFT_API void weft_pool_options_init(struct weft_pool_options *opts);

/**
 * weft_pool_create() - start a pool and its worker threads.
 * @opts: NULL for the defaults. Not kept after the call returns.
 * @out:  receives the pool, owned by the caller, freed by
 *        weft_pool_destroy().
 *
 * Returns 0, -EINVAL (@out NULL, more than WEFT_MAX_WORKERS workers, a
 * stack_size out of range), -ENOMEM (including: no memory for the workers'
 * first fiber stacks), or -EAGAIN (the system refused a thread). On failure nothing is
 * left behind. Any thread; blocks until every worker has started (and run
 * its start hook).
 */
WEFT_API int weft_pool_create(const struct weft_pool_options *opts,
			      struct weft_pool **out);

/**
 * weft_pool_shutdown() - stop accepting work and wait for the pool to go
 * quiet.
 * @flags:    0 to drain (every queued task runs, including the ones that
 *            running tasks submit), or WEFT_SHUTDOWN_CANCEL.
 * @deadline: absolute weft_now() time to give up waiting, or WEFT_FOREVER.
 *
 * From the first call on, weft_submit() from threads outside the pool
 * returns -ESHUTDOWN; the pool's own tasks may still submit while it drains.
 * Returns 0 once every task has completed and the workers have exited;
 * -ETIMEDOUT if @deadline passed first (work goes on; call again, perhaps
 * with WEFT_SHUTDOWN_CANCEL, to keep waiting); -EDEADLK when called from one
 * of the pool's own tasks; -EINVAL for a NULL pool. A cancelling call after a
 * draining one switches the pool to cancelling. Blocks the calling thread.
 * Several threads may call it at once.
 */
WEFT_API int weft_pool_shutdown(struct weft_pool *pool, unsigned flags,
				int64_t deadline);

/**
 * weft_pool_destroy() - drain the pool if no shutdown has completed yet
 * (as weft_pool_shutdown(pool, 0, WEFT_FOREVER)), join its threads and free
 * it. NULL is ignored. Must not be called from one of the pool's own tasks
 * (it aborts with a message), nor twice, nor concurrently with other calls
 * on the same pool. Blocks until the pool is gone.
 */
WEFT_API void weft_pool_destroy(struct weft_pool *pool);

/** weft_pool_workers() - the pool's worker count; any thread. */
WEFT_API unsigned weft_pool_workers(const struct weft_pool *pool);

/**
 * weft_worker_index() - the index of the pool worker the caller runs on, or
 * -1 on a thread that is not a weft worker. Read it afresh after every wait:
 * later versions move a waiting task between workers.
 */
WEFT_API int weft_worker_index(void);

WEFT_END_DECLS

#endif /* WEFT_POOL_H */
