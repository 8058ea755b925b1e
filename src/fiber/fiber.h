/*
 * fiber/fiber.h - fibers: the stacks tasks run on, and suspension.
 *
 * The model (DESIGN.md section 2). A worker runs its scheduling loop on a
 * fiber, and runs each task inline on that fiber, as a call. Only when a
 * task must wait does anything switch:
 *
 *   suspend: the waiting fiber F switches to a fresh loop fiber G of the
 *            same worker, handing it an action; G runs the action after
 *            the switch, when F's registers are saved ("park, then
 *            publish", as Go's park_m does), and the action registers F
 *            with whatever it waits for. G then goes on with the loop.
 *   wake:    whoever ends the wait calls weft__fiber_ready(F), which queues
 *            F like a task (a K_FIBER entry).
 *   resume:  a worker's loop that pops F switches to it and abandons its own
 *            loop fiber, which F recycles right after the switch. F's task
 *            continues; when it returns, F's loop frame simply goes on as
 *            the loop of the worker it now runs on.
 *
 * So fibers migrate between threads. No code may keep a worker pointer or
 * a thread-local address across a wait: after any call that may suspend,
 * re-read the worker with weft__current_worker() (or fiber->worker, which
 * the resuming worker writes).
 *
 * The fiber descriptor lives at the top of its stack mapping; fibers are
 * pooled per worker (a small LIFO cache) over a pool-wide free list, and
 * are unmapped only when the pool is freed, so a descriptor (and its fork
 * queue, which thieves read) stays valid memory for the pool's lifetime.
 *
 * Threads: a fiber runs on one worker thread at a time. weft__fiber_ready()
 * may be called from any thread.
 */
#ifndef WEFT_FIBER_FIBER_H
#define WEFT_FIBER_FIBER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/inject.h"
#include "core/spawn.h"
#include "fiber/stack.h"

struct weft_pool;
struct weft_future;
struct weft__worker;
struct weft__waiter;
struct weft__fiber;

/* An action the destination of a switch runs once it is on its own stack,
 * with the fiber that switched away (now fully saved). */
typedef void (*weft__park_fn)(struct weft__fiber *prev, void *arg);

struct weft__fiber {
	/* Queue header, the same layout as struct weft_future's (a K_FIBER
	 * entry in the deques and the inject queue). */
	struct weft__inject_node link;
	uint8_t kind;
	bool used;	/* has run at least once since it was initialised */
	/* Saved context while not running. Kept at this fixed offset for the
	 * gdb helper (docs/async.md). */
	void *sp;
	struct weft__worker *worker; /* the worker it runs on, while running */
	struct weft_pool *pool;
	/* The innermost task running on this fiber (tasks nest when one runs
	 * another inline), or NULL between tasks. */
	struct weft_future *current;
	struct weft__fiber *next_free;
	struct weft__stack stack;
	size_t stack_size; /* usable bytes below the descriptor */

	/* The wait the fiber is suspended in, for cancellation; written by
	 * the fiber, read by cancellers, both under wait_lock. */
	_Atomic uint32_t wait_lock;
	struct weft__waiter *waiting;
	uint32_t shield; /* cancel-shield depth (weft_cancel_shield_push) */

	/* A task to run first when the fiber starts (weft__fiber_run_task). */
	struct weft_future *start_task;
	uint32_t bounces; /* WEFT_FORCE_MIGRATION: hops to other workers */

	/* Sanitizer state. */
	void *asan_fake;
	void *tsan;

	/* Children spawned and not yet joined (weft_spawn). */
	struct weft__forkq fq;
};

/*
 * Per-worker fiber state, kept in struct weft__worker (pool.h): the fiber
 * that runs now, the thread's own context (where the worker started and
 * returns to when it stops), and the cache of free fibers.
 */
struct weft__fiber_worker {
	struct weft__fiber *running;
	void *thread_sp;
	const void *thread_stack_lo; /* ASan: the thread's own stack */
	size_t thread_stack_size;
	void *thread_asan_fake;
	void *thread_tsan;
	struct weft__fiber *cache;
	unsigned ncached;
};

/* Initialise the pool-wide fiber state; the stack size per fiber. */
int weft__fibers_init(struct weft_pool *pool, size_t stack_size);
/* Unmap every fiber; all must be free (the workers have been joined). */
void weft__fibers_fini(struct weft_pool *pool);

/* Wake every task suspended in a cancellable wait (not shielded) with
 * -ECANCELED: a cancelling shutdown. Any thread. */
void weft__fibers_cancel_waits(struct weft_pool *pool);

/* The same for the waits of fibers running as part of @task (its forked
 * children on other fibers). */
void weft__fibers_cancel_task_waits(struct weft_pool *pool,
				    struct weft_future *task);

/*
 * On a worker thread at start: switch to @f (from weft__fiber_reserve())
 * running weft__worker_loop() (pool.c); returns when that loop calls
 * weft__fiber_exit_loop().
 */
void weft__fiber_run_loop(struct weft__worker *w, struct weft__fiber *f);

/* The scheduling loop (pool.c). Runs on a fiber; never returns. */
_Noreturn void weft__worker_loop(void);

/* From the loop running on a fiber: leave it for good and return to the
 * worker thread's own context (never returns). */
_Noreturn void weft__fiber_exit_loop(void);

/* The fiber running on the calling thread, or NULL (not a worker). */
struct weft__fiber *weft__fiber_self(void);

/*
 * Suspend the calling fiber: switch to a fresh loop fiber, which calls
 * @park(self, @arg) once this fiber's context is saved. @park must arrange
 * that weft__fiber_ready(self) is called exactly once, later or inside
 * @park itself. Returns once resumed, possibly on another worker.
 * Only on a worker (weft__fiber_self() != NULL). Returns -ENOMEM, without
 * suspending, if no fiber could be made for the loop.
 */
int weft__fiber_suspend(weft__park_fn park, void *arg);

/*
 * The same in two steps, for a caller that must know it can suspend before
 * it publishes anything (weft__wait()): reserve the fiber the worker will
 * go on with (NULL: out of memory), then suspend onto it, or give it back
 * unused. All three only on a worker, on its running fiber.
 */
struct weft__fiber *weft__fiber_reserve(void);
void weft__fiber_suspend_to(struct weft__fiber *next, weft__park_fn park,
			    void *arg);
void weft__fiber_unreserve(struct weft__fiber *next);

/* Make the suspended fiber @f runnable: queue it on the calling worker's
 * deque if that worker is in @f's pool, else on the pool's inject queue. */
void weft__fiber_ready(struct weft__fiber *f);

/* Same, but at the back of the pool's inject queue, so that other queued
 * work runs first (weft_yield). */
void weft__fiber_ready_fifo(struct weft__fiber *f);

/*
 * From the loop of worker @w on its running fiber: switch to the suspended
 * fiber @f popped from a queue. The loop fiber is abandoned (recycled by
 * @f after the switch); this call never returns.
 */
_Noreturn void weft__fiber_resume(struct weft__worker *w,
				  struct weft__fiber *f);

/* The stack-overflow lookup registered with stack.c: a message naming the
 * task if @addr is in the guard of the fiber running on this thread. */
size_t weft__fiber_overflow_lookup(void *addr, char *buf, size_t len);

/*
 * From the loop of worker @w: run the claimed task @f, which needs a bigger
 * stack than the running fiber has, on a new fiber of its size; that fiber
 * then goes on as the loop, and the running one is abandoned. Never
 * returns, except with -ENOMEM when no fiber could be mapped.
 */
int weft__fiber_run_task(struct weft__worker *w, struct weft_future *f);

/* Lock protecting fiber->waiting (a spinlock). */
void weft__fiber_wait_lock(struct weft__fiber *f);
void weft__fiber_wait_unlock(struct weft__fiber *f);

#endif /* WEFT_FIBER_FIBER_H */
