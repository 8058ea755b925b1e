/*
 * sync/waitq.h - the wait queue under every primitive of weft/sync.h: a
 * lock bit in the object's state word and FIFO intrusive lists of struct
 * weft__waiter, on top of the one wait primitive (core/wait.h, DESIGN.md
 * section 7).
 *
 * The word. Each object keeps its state (locked, permits, set, a count) in
 * the same 64-bit word as the queue's spinlock, bit WEFT__WQ_LOCK. While
 * the bit is set only its holder changes the word; lock-free fast paths
 * (an uncontended mutex lock, a semaphore acquire while permits remain)
 * CAS only from values without it. So the unlock, one release store of the
 * new state, is at once the last touch of the object and the moment the
 * new state becomes visible. That makes the objects safe to destroy as
 * soon as a fast path sees the state that allows it (an event seen set, a
 * wait group seen at zero, a mutex seen free): the thread that made it so
 * no longer touches the object. Keeping a separate lock word would leave a
 * window between the state store and the unlock store in which the object
 * could be freed (the bug glibc's sem_post had, sourceware bug 12674). The
 * lock bit in the state word is the design of WebKit's WTF::Lock and
 * ParkingLot (F. Pizlo, "Locking in WebKit", 2016) and of Linux's bit
 * spinlocks.
 *
 * Waiting. weft__waitq_wait() arms a waiter through weft__wait(): under
 * the lock the object's arm() looks at its state and either does what the
 * caller wanted at once (the lock was free, an item was there: no wait) or
 * names the list to join; the waiter is appended there before the unlock,
 * so no wake can fall between the check and the enqueue. The fiber then
 * suspends (on a worker) or the thread blocks on a futex (elsewhere), with
 * the deadline and cancellation handled by weft__wait().
 *
 * Waking. A waker takes waiters off a list under the lock
 * (weft__wlist_pop(), weft__wlist_take_all()); what it hands them (the
 * mutex, a permit, an item, an outcome in w->tag) is decided and recorded
 * there. It wakes them only after unlocking (weft__waitq_wake(),
 * weft__waitq_wake_all()), touching only the waiter records from then on,
 * so that no fiber is queued and no futex woken while others spin on the
 * lock. That follows wait.h's rule for sources that fire outside their
 * lock: a winning weft__waiter_wake() is the last touch of the record (its
 * owner may return at once), and a losing one is followed by
 * weft__waiter_release() as the last touch.
 *
 * The grant is final. A waiter that timed out or was cancelled takes
 * itself off its list under the lock (the disarm). If a waker took it off
 * first, the grant was made under the lock before the timeout could be
 * seen there, so it stands: weft__waitq_wait() returns 0 and the caller
 * keeps what it was handed, as if the wake had won the race. So a handoff
 * is never lost to a racing timeout or cancel, and never has to be passed
 * on after the fact, when the object may have changed: nothing was
 * refused. It is also the only rule that works for a channel's blocked
 * sender, whose item a receiver moves into the buffer under the lock,
 * where other receivers can take it at once: that send cannot be undone.
 * It is the rule Linux's wait_event_timeout() follows (it returns 1 "if
 * the condition evaluated to true after the timeout elapsed"). A waiter
 * that was not taken is off every list when the call returns -ETIMEDOUT or
 * -ECANCELED, and the object is as it was.
 *
 * Membership: a waiter is on a list while w->prev != w; pop, take_all and
 * remove set w->prev = w under the lock (take_all keeps the next links, so
 * that the waker can walk the chain after unlocking; it reads w->next
 * before each wake, after which the record may vanish).
 *
 * Threads: any. The lock is held for a few instructions; nothing holds it
 * across a wake, a wait, or another object's lock.
 */
#ifndef WEFT_SYNC_WAITQ_H
#define WEFT_SYNC_WAITQ_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/wait.h"
#include "util/futex.h"

/* The queue lock's bit in an object's state word; the object owns the
 * others. */
#define WEFT__WQ_LOCK ((uint64_t)1)

/* A FIFO of waiters; protected by the lock of the waitq it belongs to. */
struct weft__wlist {
	struct weft__waiter *head, *tail;
};

struct weft__waitq {
	/* WEFT__WQ_LOCK protects list (and any further lists and fields
	 * the object names); the other bits are the object's state. */
	_Atomic uint64_t word;
	struct weft__wlist list;
};

static inline void weft__waitq_init(struct weft__waitq *q, uint64_t state)
{
	atomic_init(&q->word, state);
	q->list.head = q->list.tail = NULL;
}

/*
 * Take the lock bit (test-and-test-and-set, yielding after a bounded spin,
 * as util/spinlock.h does); returns the state, without the bit.
 */
static inline uint64_t weft__waitq_lock(struct weft__waitq *q)
{
	uint64_t s = atomic_load_explicit(&q->word, memory_order_relaxed);
	unsigned spins = 0;

	for (;;) {
		if (!(s & WEFT__WQ_LOCK)) {
			/* acquire: pairs with the release in
			 * weft__waitq_unlock() and in the objects' lock-free
			 * fast paths. */
			if (atomic_compare_exchange_weak_explicit(
				    &q->word, &s, s | WEFT__WQ_LOCK,
				    memory_order_acquire, memory_order_relaxed))
				return s;
			continue;
		}
		if (++spins < 128)
			weft__cpu_relax();
		else
			sched_yield();
		s = atomic_load_explicit(&q->word, memory_order_relaxed);
	}
}

/* Publish @state (without the lock bit) and release the lock: the last
 * touch of the object by this thread, unless it locks again. */
static inline void weft__waitq_unlock(struct weft__waitq *q, uint64_t state)
{
	/* release: pairs with the acquire in weft__waitq_lock() and in the
	 * fast paths that read the state. */
	atomic_store_explicit(&q->word, state, memory_order_release);
}

/* The state, for a snapshot (no lock bit). */
static inline uint64_t weft__waitq_peek(struct weft__waitq *q)
{
	return atomic_load_explicit(&q->word, memory_order_acquire) &
	       ~WEFT__WQ_LOCK;
}

/* ---- lists: all under the owning waitq's lock ------------------------- */

static inline bool weft__wlist_empty(const struct weft__wlist *l)
{
	return l->head == NULL;
}

static inline bool weft__waiter_queued(const struct weft__waiter *w)
{
	return w->prev != w;
}

/* Append @w. */
void weft__wlist_push(struct weft__wlist *l, struct weft__waiter *w);

/* Take the oldest waiter off @l (NULL if empty); it is no longer queued. */
struct weft__waiter *weft__wlist_pop(struct weft__wlist *l);

/* Take @w off @l; it must be queued on @l. */
void weft__wlist_remove(struct weft__wlist *l, struct weft__waiter *w);

/* Empty @l: returns its waiters, oldest first, linked by ->next (NULL
 * ends), none of them queued any more. */
struct weft__waiter *weft__wlist_take_all(struct weft__wlist *l);

/* ---- waking: after the lock is released ------------------------------- */

/* Wake @w, which the caller took off a list, with W_WOKEN. The last touch
 * of @w. */
void weft__waitq_wake(struct weft__waiter *w);

/* Wake every waiter of a chain from weft__wlist_take_all(). */
void weft__waitq_wake_all(struct weft__waiter *first);

/* ---- waiting ---------------------------------------------------------- */

/*
 * What an object does when a waiter arms on it. Each hook runs on the
 * waiting side; arm() and removed() under the lock, with *@state the state
 * word (without the lock bit) that the unlock will store: they may change
 * it.
 *
 * arm(obj, w, state): look at the object. Either do what the waiter wants
 *   now and return NULL (no wait: weft__waitq_wait() returns 0), or
 *   return the list that @w must join (under the same lock); it is
 *   appended there.
 * armed(obj): optional; once @w is queued and the lock released, before
 *   the caller parks (the condition variable unlocks its mutex here, so
 *   that a signal after that unlock finds the waiter queued).
 * removed(obj, l, state): optional; @w timed out or was cancelled and has
 *   just been taken off @l (the mutex clears its "waiters" bit when @l is
 *   now empty).
 */
struct weft__waitq_ops {
	struct weft__wlist *(*arm)(void *obj, struct weft__waiter *w,
				   uint64_t *state);
	void (*armed)(void *obj);
	void (*removed)(void *obj, struct weft__wlist *l, uint64_t *state);
};

/*
 * Wait on @q until a waker takes @w off its list, @deadline passes
 * (WEFT_FOREVER: never), or (WEFT__WAIT_CANCELLABLE in @flags) the calling
 * task is cancelled. On a worker the task's fiber suspends; elsewhere the
 * thread blocks. @w->data and @w->tag carry what the caller offers and
 * what a waker hands it; the rest of @w is set here.
 *
 * Returns 0 when arm() asked for no wait or a waker took @w (even if the
 * deadline or a cancel raced it: the grant is final, see above);
 * -ETIMEDOUT or -ECANCELED when @w was not taken (it is off every list,
 * and the object is as before but for what removed() did); -ENOMEM or
 * -EAGAIN in the rare case that the timer could not take the deadline
 * (not queued either). A task that is already cancelled gets -ECANCELED
 * without arm() being called.
 */
int weft__waitq_wait(struct weft__waitq *q, const struct weft__waitq_ops *ops,
		     void *obj, struct weft__waiter *w, int64_t deadline,
		     unsigned flags);

/*
 * A token for the calling task or thread, for debug ownership checks: the
 * running fiber on a worker (tasks migrate, so never a thread id), else the
 * address of a thread-local of the calling thread. Never NULL.
 */
void *weft__waitq_self_token(void);

#endif /* WEFT_SYNC_WAITQ_H */
