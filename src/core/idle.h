/*
 * core/idle.h - parking idle workers without losing a wake-up.
 *
 * The protocol is Tokio's (tokio runtime/scheduler/multi_thread/idle.rs and
 * park.rs) and Go's spinning-M rule (runtime/proc.go, header comment),
 * restated for weft:
 *
 *  - state packs two counts in one atomic word: workers searching for work
 *    (stealing) and workers not parked. At most half the workers search at
 *    once, so an idle pool does not stampede one victim.
 *  - A producer (submit, a completion, a worker that found a batch)
 *    publishes its work, then issues a seq_cst fence and reads state
 *    (weft__idle_notify_one). It wakes one parked worker only when nobody is
 *    searching and somebody is parked; the woken worker is counted as
 *    unparked and searching before it runs, so a burst wakes one worker,
 *    which wakes the next when it finds work (chain wake-up).
 *  - A worker that gives up decrements its counts under the sleepers lock
 *    (a seq_cst RMW), fences, and then re-checks every queue before it
 *    sleeps. Either the producer's read saw the decrement (and it wakes
 *    someone) or the re-check sees the producer's work (and the parker
 *    calls notify_one itself, possibly waking itself). Tokio re-checks only
 *    in the last searcher; re-checking in every parker costs a scan on a
 *    path that is about to sleep anyway and needs no argument about who is
 *    searching when.
 *  - Each worker has a parker: a futex word EMPTY / PARKED / NOTIFIED, so an
 *    unpark that comes before the park is not lost.
 *
 * Threads: any thread notifies; each worker parks only itself.
 */
#ifndef WEFT_CORE_IDLE_H
#define WEFT_CORE_IDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct weft__parker {
	_Alignas(64) _Atomic uint32_t word;
};

struct weft__idle {
	/* low 32 bits: searching; high 32 bits: unparked. */
	_Alignas(64) _Atomic uint64_t state;
	unsigned nworkers;
	/* Protects sleepers and nsleepers; lock order: taken alone. */
	pthread_mutex_t lock;
	unsigned nsleepers;
	unsigned *sleepers;
	struct weft__parker *parkers; /* one per worker, indexed */
};

int weft__idle_init(struct weft__idle *idle, unsigned nworkers);
void weft__idle_fini(struct weft__idle *idle);

/* Worker: become a searcher if fewer than half the workers search. */
bool weft__idle_try_search(struct weft__idle *idle);

/* Worker: stop searching; true if it was the last searcher (it must then
 * notify_one, since it found work that others may share). */
bool weft__idle_stop_search(struct weft__idle *idle);

/* Any thread, after publishing work: wake one parked worker if nobody is
 * searching. Returns true if it woke one. */
bool weft__idle_notify_one(struct weft__idle *idle);

/* As notify_one, for a caller whose publication was itself a seq_cst
 * read-modify-write that parkers re-check with seq_cst loads (an inject
 * lane's tail exchange): both sides are then in the single total order of
 * seq_cst operations, and the fence can go. */
bool weft__idle_notify_published(struct weft__idle *idle);

/* Any thread: wake every parked worker (shutdown). */
void weft__idle_notify_all(struct weft__idle *idle);

/* Worker @index: announce that it is going to sleep (counted out of
 * unparked and, if @searching, out of searching). The caller must then
 * re-check all queues, calling notify_one on finding work, and finally
 * call weft__idle_park(). */
void weft__idle_prepare_park(struct weft__idle *idle, unsigned index,
			     bool searching);

/* Worker @index: sleep until notified. On return the worker is counted
 * unparked and searching. */
void weft__idle_park(struct weft__idle *idle, unsigned index);

/* Number of workers parked right now (a snapshot, for tests and shutdown). */
unsigned weft__idle_parked(struct weft__idle *idle);

#endif /* WEFT_CORE_IDLE_H */
