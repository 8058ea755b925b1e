/*
 * core/deque.h - per-worker work-stealing deque of task pointers.
 *
 * Algorithm: the Chase-Lev growable circular deque (Chase & Lev, "Dynamic
 * circular work-stealing deque", SPAA 2005) in the C11 form of Le, Pop,
 * Cohen and Zappa Nardelli ("Correct and efficient work-stealing for weak
 * memory models", PPoPP 2013), with the erratum found by CDSChecker (Norris &
 * Demsky, OOPSLA 2013) applied: push reloads the array after growing it, the
 * grown array is published with release ordering, and slots are atomics so
 * that a thief reading a slot the owner overwrites is not a data race.
 *
 * Threads: weft__deque_push() and weft__deque_take() only on the owning
 * worker; weft__deque_steal() and weft__deque_size() on any thread.
 * Arrays replaced by growth stay allocated until weft__deque_fini(), since a
 * thief may still be reading one (no epoch scheme needed: an array at most
 * doubles, so the retired ones together are smaller than the live one).
 *
 * Trade-off: the owner's take pays one seq_cst fence. Lace's split deque
 * avoids it on the fast path; the fork/join fast path (issue 3) keeps its
 * own records and does not go through here.
 */
#ifndef WEFT_CORE_DEQUE_H
#define WEFT_CORE_DEQUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct weft__deque_array;

struct weft__deque {
	/* Thieves' end; CAS'd by thieves and by the owner on the last item. */
	_Alignas(64) _Atomic int64_t top;
	/* Owner's end; written only by the owner. */
	_Alignas(64) _Atomic int64_t bottom;
	_Atomic(struct weft__deque_array *) array;
	/* Arrays retired by growth, freed at fini; owner only. */
	struct weft__deque_array *retired;
};

/* Returned by weft__deque_steal() when it lost a race (retry elsewhere). */
#define WEFT__DEQUE_ABORT ((void *)1)

/* Returns 0 or -ENOMEM. @log2_size: initial capacity as a power of two. */
int weft__deque_init(struct weft__deque *d, unsigned log2_size);
void weft__deque_fini(struct weft__deque *d);

/* Owner: push @item (not NULL). Returns 0 or -ENOMEM (growth failed; the
 * item is not pushed). */
int weft__deque_push(struct weft__deque *d, void *item);

/* Owner: the most recently pushed item, or NULL when empty. */
void *weft__deque_take(struct weft__deque *d);

/* Owner of a deque no thread steals from (a pool of one worker): as
 * weft__deque_take(), without its fence. */
void *weft__deque_take_alone(struct weft__deque *d);

/* Owner: the most recently pushed item without taking it, or NULL; only a
 * hint (a thief may take it at once): confirm with weft__deque_take(). */
void *weft__deque_peek(struct weft__deque *d);

/* Any thread: the oldest item, NULL when empty, WEFT__DEQUE_ABORT when
 * another thread won the race for it. */
void *weft__deque_steal(struct weft__deque *d);

/* Any thread: a snapshot of the item count (may be stale at once; never
 * negative). */
static inline size_t weft__deque_size(struct weft__deque *d)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);

	return b > t ? (size_t)(b - t) : 0;
}

#endif /* WEFT_CORE_DEQUE_H */
