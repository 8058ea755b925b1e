/*
 * core/spawn.h - the fork queue behind weft_spawn() / weft_join().
 *
 * Algorithm: Lace's split deque (T. van Dijk and J. van de Pol, "Lace:
 * non-blocking split deque for work-stealing", Euro-Par 2014 workshops).
 * The slots [tail, split) are shared: thieves take the oldest with a CAS on
 * the packed word ts = {tail, split}. The slots [split, head) are private:
 * the owner pushes and pops them with plain loads and stores, no fence and
 * no read-modify-write, which is what makes a spawn+join cost a few
 * nanoseconds over a call. A thief that finds nothing shared sets splitreq;
 * the owner's next spawn then moves split up to share half of its private
 * part. A join that finds its child in the shared part takes half of the
 * shared part back with one CAS (or learns the child was stolen).
 *
 * Where weft differs from Lace: the queue belongs to a fiber, not to a
 * worker, so it travels with its task when the task migrates; a worker
 * publishes the queue of the fiber it runs for thieves (worker->fq). When a
 * fiber suspends, its unjoined children must stay runnable (the task may
 * be waiting for one of them, e.g. a producer it spawned): they are
 * "evacuated", each wrapped in a heap record (a K_FRAME future) on the
 * worker's general deque, and the queue is emptied (ts = {head, head}).
 * Whoever claims the record runs the child, the owner's join included.
 *
 * The child's record (struct weft__frame) is the caller's struct
 * weft_spawn; the queue holds pointers to it. It lives on the owner's
 * stack, which is safe because the owner does not leave join until every
 * party that could touch the frame is done with it (frame->sync).
 *
 * Index invariants: tail <= split <= head while the owner is not inside
 * join; slots below tail are stolen or evacuated. A thief reads a slot only
 * after its CAS succeeded, so an ABA on ts is harmless: a CAS that succeeds
 * proves the slot is shared at that instant.
 *
 * Threads: owner functions on the fiber that owns the queue; steal from any
 * worker.
 */
#ifndef WEFT_CORE_SPAWN_H
#define WEFT_CORE_SPAWN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/async.h"

struct weft_future;
struct weft__fiber;

enum {
	FR_PRIVATE = 0, /* in the owner's queue, not published anywhere else */
	FR_STOLEN = 1,	/* a thief took it from the shared part */
	FR_EVAC = 2,	/* wrapped in a K_FRAME record (rec) */
	FR_INLINE = 3,	/* ran inline at spawn; outcome stored */
};

/* The private layout of struct weft_spawn (the same members, checked in
 * spawn.c: weft/async.h's inline fast path writes them too). */
struct weft__frame {
	weft_task_fn fn;
	void *arg;
	void *value;
	int err;
	uint32_t slot;
	struct weft__forkq *fq;
	/* 0: pending; 1: done; else the fiber waiting in join. Written with
	 * __atomic builtins (the public struct has no _Atomic members). */
	uintptr_t sync;
	struct weft_future *rec; /* FR_EVAC: the record that runs it */
	uint32_t state;		 /* FR_*; __atomic relaxed (a plain store
				    when the frame is new) */
	uint32_t magic;
	/* The parent task: a child runs as part of it wherever it runs
	 * (its cancel state and task-local values). */
	struct weft_future *task;
};

#define WEFT__FRAME_MAGIC 0x666f726bu /* "fork" */
#define WEFT__FRAME_DONE ((uintptr_t)1)

struct weft__forkq {
	_Alignas(64) _Atomic uint64_t ts; /* tail | split << 32 */
	_Atomic uint32_t splitreq;
	/* Owner's line: head is atomic only so that parking workers can see
	 * whether there is private work (relaxed loads; plain stores). */
	_Alignas(64) _Atomic uint32_t head;
	uint32_t osplit; /* the owner's copy of split */
	/* &fiber->current of the owning fiber: a child's parent task. */
	struct weft_future **current;
	_Atomic(struct weft__frame *) slot[WEFT_SPAWN_DEPTH];
};

/* The running fiber's queue, for the inline fast path in weft/async.h
 * (written at every switch, before it; see fiber.c). */
extern _Thread_local struct weft__forkq *weft__tls_fq
	__attribute__((tls_model("initial-exec")));

void weft__forkq_init(struct weft__forkq *q, struct weft_future **current);

/* Thief: take the oldest shared frame of @q (the caller must then run it
 * with weft__frame_run()), or NULL. */
struct weft__frame *weft__forkq_steal(struct weft__forkq *q);

/* Any thread: whether @q may hold frames (shared or private). */
bool weft__forkq_maybe_nonempty(struct weft__forkq *q);

/* Owner, before its fiber suspends: move every unjoined child to the
 * general queue (see above). Returns -ENOMEM if a record could not be
 * allocated; those children then run inline right away. */
struct weft_pool;
void weft__forkq_evacuate(struct weft__forkq *q, struct weft_pool *pool);

/* Owner: number of unjoined children (for the "returned with unjoined
 * children" check at the end of a task). */
static inline uint32_t weft__forkq_depth(struct weft__forkq *q)
{
	return atomic_load_explicit(&q->head, memory_order_relaxed);
}

/* Run the child of frame @fr (claimed by the caller) and publish its
 * outcome; wakes the joiner if it waits. For K_FRAME records too. */
void weft__frame_run(struct weft__frame *fr);

#endif /* WEFT_CORE_SPAWN_H */
