/*
 * core/pool.h - the pool and its workers (internal).
 *
 * Threads: a pool has N worker threads, each running worker_main() in
 * pool.c, plus whichever outside threads submit or shut it down. Lock
 * order: shutdown_lock, then the idle sleepers lock (idle.c); a future's
 * spinlock is never held while taking either.
 */
#ifndef WEFT_CORE_POOL_H
#define WEFT_CORE_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/pool.h"
#include "core/deque.h"
#include "core/future.h"
#include "core/idle.h"
#include "core/inject.h"
#include "core/stats.h"
#include "fiber/fiber.h"

struct weft_future;
struct weft__trace_buf;

enum weft__pool_state {
	POOL_RUNNING = 0,
	POOL_DRAINING = 1,   /* outside submits refused, queued work runs */
	POOL_CANCELLING = 2, /* outside submits refused, queued work cancelled */
	POOL_STOPPED = 3,    /* workers exit */
};

struct weft__worker {
	struct weft__deque deque;
	/* Owner-written counters for the drain check, read by the shutdown
	 * thread: entries pushed onto any queue by this worker, and entries
	 * this worker has taken off a queue and finished processing. */
	_Alignas(64) _Atomic uint64_t pushed;
	_Atomic uint64_t popped;
	struct weft_pool *pool;
	unsigned index;
	uint32_t tick;
	uint64_t rng;
	bool searching;
	/* Fibers: the one running here, the thread's own context, the cache
	 * (fiber.h). Owner only. */
	struct weft__fiber_worker fib;
	/* The fork queue of the running fiber, for thieves (spawn.h). */
	_Atomic(struct weft__forkq *) fq;
	pthread_t thread;
	bool started;
	/* Observability (stats.h, obs.h): !no_stats, and the counters,
	 * owner-written, on lines of their own (readers do not slow the
	 * owner's hot fields). */
	bool stats_on;
	/* Slow-task reports (obs.c): when the running slice of work began
	 * (0: none open) and the outermost task's function. */
	int64_t slice_t0;
	void *slice_fn;
	_Alignas(64) struct weft__wstats stats;
	struct weft__trace_buf *trace; /* obs.h; NULL when not tracing */
};

struct weft__io;
struct weft_pool_options;

/* The pool's io thread (io/io.c): start it (it runs the timers, and the
 * ring when io_uring is allowed); stop it once the workers have exited. */
int weft__io_init(struct weft_pool *pool, const struct weft_pool_options *o);
void weft__io_fini(struct weft_pool *pool);

struct weft_pool {
	unsigned nworkers;
	struct weft__worker *workers;
	struct weft__inject inject;
	struct weft__idle idle;
	_Alignas(64) _Atomic uint32_t state;
	/* Outside submits that counted a push and then found the pool closed
	 * (so never linked), for the drain check. */
	_Atomic uint64_t rejected;
	/* Bumped by workers that go idle while the pool is not RUNNING; the
	 * shutdown thread sleeps on it. */
	_Atomic uint32_t quiesce;
	_Atomic uint32_t nstarted;
	_Atomic int start_err; /* a worker could not start its loop */
	pthread_mutex_t shutdown_lock; /* serialises shutdown and join */
	bool joined;                   /* protected by shutdown_lock */
	weft_worker_hook on_start, on_stop;
	void *hook_arg;
	char name[16];
	/* Fibers (fiber.c): the stack size, the free list shared by the
	 * workers' caches, and how many exist. */
	size_t fiber_stack_size;
	pthread_mutex_t fiber_lock;
	struct weft__fiber *fiber_free;
	size_t fiber_nfree;
	struct weft__fiber **fiber_all; /* every fiber, under fiber_lock */
	size_t fiber_nall, fiber_capall;
	_Atomic size_t fibers_mapped;
	struct weft__io *io; /* timers and I/O */
	_Atomic size_t stack_bytes; /* of every fiber mapped (stats) */
	/* Observability (core/obs.h): OBS_* bits, tested on the hot paths
	 * (0 unless hooks, a trace or slow-task reports are on), and the
	 * state behind them. (!no_stats is each worker's stats_on.) */
	uint32_t obs;
	struct weft__obs *o;
	bool fibers_ready; /* fibers and the io thread initialised */
};

/*
 * The worker the calling thread is, or NULL. Never cached by the compiler
 * across a call (noinline plus a compiler barrier): once tasks migrate
 * between threads a cached thread-local address would name the old thread
 * (DESIGN.md section 2).
 */
struct weft__worker *weft__current_worker(void);

/*
 * The same for leaf use: the thread-local read inlined. Only in a function
 * that has not called anything that may suspend since it began (such as
 * weft_spawn(), which reads it first thing): the compiler may keep the
 * thread-pointer-relative address across later calls, and after a
 * migration that would name the old thread.
 */
extern _Thread_local struct weft__worker *weft__tls_worker
	__attribute__((tls_model("initial-exec")));

static inline struct weft__fiber *weft__fiber_self_leaf(void)
{
	struct weft__worker *w = weft__tls_worker;

	return w ? w->fib.running : NULL;
}

/*
 * Queue @f (state QUEUED, kind with a task) on @pool: on the caller's deque
 * when it is one of the pool's workers, else on the inject queue. Takes a
 * new reference for the queue. Returns 0 or -ESHUTDOWN (nothing queued).
 */
int weft__pool_push(struct weft_pool *pool, struct weft_future *f);

/* Run the claimed task @f on the worker @w's running fiber, inline below
 * the task that is running there (if any). The task may suspend: re-read
 * the worker afterwards. */
void weft__worker_run(struct weft__worker *w, struct weft_future *f);

/* Whether the task @f can run on fiber @fib's stack (it asked for no more
 * than @fib has). */
static inline bool weft__task_fits(const struct weft_future *f,
				   const struct weft__fiber *fib);

/* Queue the suspended fiber @f of @pool: on the calling worker's deque when
 * it is one of @pool's and !@fifo, else on the inject queue. */
void weft__pool_push_fiber(struct weft_pool *pool, struct weft__fiber *f,
			   bool fifo);

/* Whether the pool is cancelling its work (weft_task_cancelled()). */
static inline bool weft__pool_cancelling(struct weft_pool *pool)
{
	return atomic_load_explicit(&pool->state, memory_order_relaxed) ==
	       POOL_CANCELLING;
}

/* @f, just claimed by a task of @w that waits for it, is about to run
 * inline: if its queue entry is the newest on @w's deque, take it out (a
 * stale entry would otherwise stay until the waiting task returns). */
void weft__worker_unqueue(struct weft__worker *w, struct weft_future *f);

/* Pop one entry of @w's own deque that satisfies @match, for a waiter that
 * wants to run its own queued work; NULL if the newest entry is not one
 * (it is left in place). */
struct weft_future *weft__worker_take_if(struct weft__worker *w,
					 bool (*match)(struct weft_future *,
						       void *),
					 void *ctx);

/* The end of processing a task entry: drop the queue's reference and count
 * the pop on the worker the caller now runs on. */
void weft__worker_finish(struct weft_future *f);

/* Process an entry taken from a queue: run it if it can be claimed, drop
 * the queue's reference, count it. A K_FIBER entry is switched to: then
 * this call does not return. */
void weft__worker_process(struct weft__worker *w, struct weft_future *f);

static inline bool weft__task_fits(const struct weft_future *f,
				   const struct weft__fiber *fib)
{
	return !f->stack_kib || (size_t)f->stack_kib * 1024 <= fib->stack_size;
}

#endif /* WEFT_CORE_POOL_H */
