/*
 * core/inject.h - the inject queue: how threads outside the pool hand tasks
 * to the workers.
 *
 * One mutex for all producers serialises them (Tokio measured 265 ns/task
 * with one producer and 633 ns with eight, tokio PR #7944). Here the queue
 * is split into lanes; each producer thread sticks to one lane, and a lane
 * is Vyukov's intrusive MPSC queue (D. Vyukov, "Intrusive MPSC node-based
 * queue", 1024cores.net, 2010): a push is one atomic exchange on the lane's
 * tail plus one store, so producers never wait for each other or for a
 * consumer. The single-consumer side is made multi-consumer by a try-lock
 * per lane: a worker that finds a lane busy moves on to the next lane.
 *
 * Threads: push from any thread; pop by whoever holds the lane's consumer
 * lock (workers); weft__inject_maybe_nonempty() from any thread.
 *
 * The lane also counts its pushes for the pool's drain check (pool.c): the
 * count is incremented before the node becomes visible.
 */
#ifndef WEFT_CORE_INJECT_H
#define WEFT_CORE_INJECT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct weft__inject_node {
	_Atomic(struct weft__inject_node *) next;
};

struct weft__inject_lane {
	/* The tail producers exchange (consumers read it too). */
	_Alignas(64) _Atomic(struct weft__inject_node *) tail;
	/* The push count, on a line of its own: only producers write it and
	 * only shutdown reads it, so it stays in the producer's cache instead
	 * of moving with the tail to every consumer that looks at the lane. */
	_Alignas(64) _Atomic uint64_t pushed;
	/* Of them, suspended tasks (not submissions), for weft_pool_stats(). */
	_Atomic uint64_t fibers;
	/* Consumer's line. head is written only under consumer_lock; it is
	 * atomic because emptiness checks read it without the lock. */
	_Alignas(64) _Atomic uint32_t consumer_lock;
	_Atomic(struct weft__inject_node *) head;
	struct weft__inject_node stub;
};

struct weft__inject {
	unsigned nlanes; /* a power of two */
	struct weft__inject_lane *lanes;
};

int weft__inject_init(struct weft__inject *q, unsigned nlanes);
void weft__inject_fini(struct weft__inject *q);

/* The lane the calling thread pushes to; fixed per thread. */
unsigned weft__inject_lane_of_caller(const struct weft__inject *q);

/*
 * Any thread: a push is weft__inject_count() then weft__inject_link() on the
 * same lane. They are separate so that the pool can check for shutdown
 * between them (a producer that counted and then finds the pool closed
 * records a rejection instead of linking; see pool.c, drained()).
 */
void weft__inject_count(struct weft__inject *q, unsigned lane);
void weft__inject_link(struct weft__inject *q, unsigned lane,
		       struct weft__inject_node *n);

/* Any thread: false only if every lane was seen empty. May say true for a
 * lane whose last node a consumer is taking right now. */
bool weft__inject_maybe_nonempty(struct weft__inject *q);

/*
 * Consumer: take up to @max nodes from one lane, trying lanes from @start
 * on and skipping lanes another consumer holds. Returns how many were put
 * in @out, oldest first.
 */
unsigned weft__inject_pop_batch(struct weft__inject *q, unsigned start,
				struct weft__inject_node **out, unsigned max);

/* Sum of the lanes' push counts (seq_cst loads), for the drain check. */
uint64_t weft__inject_pushed(struct weft__inject *q);

/* Any thread: the entry pushed next on @lane is a suspended task, not a
 * submission (stats only: submissions are what remains). */
void weft__inject_count_fiber(struct weft__inject *q, unsigned lane);
/* Sum of the lanes' fiber counts. */
uint64_t weft__inject_fibers(struct weft__inject *q);

#endif /* WEFT_CORE_INJECT_H */
