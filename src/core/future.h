/*
 * core/future.h - the future object, which is also the task record.
 *
 * One allocation per submitted task: the future carries the task's
 * function and argument while it is queued, and its outcome afterwards.
 * Futures made by combinators (when_all, ...) carry no task.
 *
 * State machine (the state word, written with release, read with acquire):
 *
 *   QUEUED --claim--> RUNNING --complete--> DONE | FAILED | CANCELLED
 *   QUEUED --claim for cancel--> CANCELLING --complete--> CANCELLED
 *   WAITING --antecedent done--> QUEUED    (continuations only)
 *   WAITING --cancel--> CANCELLING --complete--> CANCELLED
 *
 * Whoever moves a future out of QUEUED with a CAS owns its task: a worker
 * that popped it, a worker waiting on it (runs it inline), or a canceller.
 * A queue entry whose claim fails is stale and only drops its reference.
 *
 * References: the creator's (handed to the caller, or dropped at once for a
 * detached task) and one per queue entry; waiters borrow the caller's.
 *
 * Waiters and callbacks hang on a list protected by a spinlock; complete()
 * detaches the list under the lock after storing the final state, so a node
 * is either on the list or being fired, never both.
 */
#ifndef WEFT_CORE_FUTURE_H
#define WEFT_CORE_FUTURE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/future.h"
#include "weft/task.h"
#include "core/inject.h"
#include "weft_config.h"

enum {
	F_QUEUED = WEFT_FUTURE_PENDING,
	F_RUNNING = WEFT_FUTURE_RUNNING,
	F_DONE = WEFT_FUTURE_DONE,
	F_FAILED = WEFT_FUTURE_FAILED,
	F_CANCELLED = WEFT_FUTURE_CANCELLED,
	F_CANCELLING = 5, /* claimed by a canceller; reads as PENDING */
	F_WAITING = 6,    /* a continuation whose antecedent has not
			     completed; not claimable; reads as PENDING */
};

enum weft__task_kind {
	K_NONE = 0,    /* completed by a combinator, not by a task */
	K_FN = 1,      /* weft_task_fn */
	K_ROUTINE = 2, /* weft_routine_fn */
	K_THEN = 3,    /* weft_then_fn; arg2 is the antecedent */
	K_FIBER = 4,   /* not a future: a struct weft__fiber to resume */
	K_FRAME = 5,   /* an evacuated fork child; fn is its weft__frame */
	K_IO = 6,      /* an I/O operation (io/io.h): starts RUNNING, the io
			  thread or the blocking backend completes it */
};

struct weft__wnode;
typedef void (*weft__wnode_fire)(struct weft__wnode *n, struct weft_future *f);

/* A waiter or callback on a future's list. fire() is called once, after
 * the final state is visible; the node must not be touched by the future
 * after fire() has begun. */
struct weft__wnode {
	struct weft__wnode *next;
	weft__wnode_fire fire;
};

#define WEFT__FUTURE_MAGIC 0x77656674u /* "weft" */
#define WEFT__FUTURE_DEAD 0xdeadf00du

struct weft_future {
	/* Queue header, shared with struct weft__fiber: the inject link
	 * first (a node maps back by cast), then the kind. */
	struct weft__inject_node link;
	uint8_t kind;
	_Atomic uint32_t state;
	_Atomic uint32_t refs;
	_Atomic uint32_t cancel_req; /* sticky: cancel asked while running */
	/* Forked children of this task running on other fibers (stolen or
	 * evacuated): a cancel must look for their waits too. */
	_Atomic uint32_t remote_kids;
	_Atomic uint32_t lock;       /* protects waiters */
	uint32_t magic;              /* live / dead, checked in debug builds */
	uint32_t stack_kib;          /* stack the task needs; 0: the pool's */
	struct weft__wnode *waiters;
	struct weft_pool *pool; /* the pool that runs the task, if any */
	void *fn;
	void *arg;
	struct weft_future *arg2; /* K_THEN: the antecedent (holds a ref) */
	/* Outcome, written before the final state is stored. */
	void *value;
	int err;
	/* Task running inline below this one on the same fiber (the waiter
	 * chain used to answer -EDEADLK). Set only while running. */
	struct weft_future *waiting_in;
	/* The fiber the task runs on, once started (for cancellation). */
	struct weft__fiber *fiber;
	/* Task-local values (locals.h); a reference, or NULL. */
	struct weft__locals *locals;
};

/* A new future with one reference, state QUEUED, or NULL. @extra bytes of
 * zeroed storage follow the struct (weft__future_extra()). */
struct weft_future *weft__future_new(uint8_t kind, void *fn, void *arg,
				     size_t extra);

static inline void *weft__future_extra(struct weft_future *f)
{
	return f + 1;
}

static inline struct weft_future *weft__future_of_node(
	struct weft__inject_node *n)
{
	return (struct weft_future *)n;
}

/* CAS QUEUED -> @to; true if the caller now owns the task. */
static inline bool weft__future_claim(struct weft_future *f, uint32_t to)
{
	uint32_t s = F_QUEUED;

	/* acq_rel: acquire pairs with the release that queued the task (its
	 * fields are read next); release orders nothing but is free. */
	return atomic_compare_exchange_strong_explicit(
		&f->state, &s, to, memory_order_acq_rel, memory_order_relaxed);
}

static inline bool weft__future_is_complete(uint32_t s)
{
	return s == F_DONE || s == F_FAILED || s == F_CANCELLED;
}

/*
 * Complete @f, which the caller owns (claimed it, or it is a K_NONE future
 * whose completion the caller won). Stores the outcome, then fires every
 * waiter and callback on the calling thread. @err == -ECANCELED gives
 * CANCELLED, another non-zero error FAILED, 0 DONE.
 */
void weft__future_complete(struct weft_future *f, int err, void *value);

/* Run the claimed task @f on the calling thread: call its function, then
 * complete it. Returns nothing; the outcome is in the future. */
void weft__future_run(struct weft_future *f);

/* Add @n to @f's list. Returns false (and does not add) if @f has already
 * completed: the caller handles the completed case itself. */
bool weft__future_add_waiter(struct weft_future *f, struct weft__wnode *n);

/* Remove @n if it is still on the list; false if it was (being) fired. */
bool weft__future_remove_waiter(struct weft_future *f, struct weft__wnode *n);

/* Wait until @f completes or @deadline; the common engine of the public
 * waits: on a worker the task suspends, elsewhere the thread blocks.
 * Returns 0, -ETIMEDOUT, -EDEADLK, -ECANCELED (the waiting task was
 * cancelled). */
int weft__future_wait(struct weft_future *f, int64_t deadline);

/*
 * Before a wait on a worker: -EDEADLK if @f is the calling task or a task
 * it runs inline below; otherwise, if @run and @f's task is still queued in
 * the caller's pool, claim it and run it here, as Lace's SYNC runs a child
 * nobody stole (returns 1): this is the awaited task itself, never an
 * unrelated one. Returns 0 when nothing was done (not on a worker, or not
 * runnable). Waits with a deadline pass @run false.
 */
int weft__future_help(struct weft_future *f, bool run);

/* weft_future_cancel() of a K_IO future: ask the io thread or the blocking
 * backend to cancel the operation (io/io.c). -EBUSY or -EALREADY. */
int weft__io_cancel(struct weft_future *f);

#endif /* WEFT_CORE_FUTURE_H */
