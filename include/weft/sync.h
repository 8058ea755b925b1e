/*
 * weft/sync.h - synchronisation that knows about tasks: mutex, condition
 * variable, semaphore, event, wait group and bounded channel.
 *
 * Every call works from a task and from any other thread. When it must
 * wait, a task suspends (its worker goes on with other tasks, and the task
 * may resume on another worker) and any other thread blocks. So a thousand
 * tasks may wait on one event with two workers. Use these, never a pthread
 * mutex or condition variable, for anything a task holds or waits on
 * across a wait (weft/async.h). See docs/sync.md.
 *
 * Common rules:
 *  - Objects other than the channel are caller-allocated structs with
 *    private fields (put them on a stack, in a struct, in static storage):
 *    _init() them before use, _fini() them when done. One must not move
 *    while it is initialised. It may be finalised and freed as soon as no
 *    thread is inside a call on it and none will call it again; a waker
 *    never touches the object after its waiters can see the change it
 *    made, so a waiter that returns from a wait may free the object at
 *    once (an event on a stack set by another task, a wait group whose
 *    last done() let the waiter through).
 *  - Deadlines are absolute weft_now() nanoseconds; WEFT_FOREVER waits
 *    without one. Every blocking call has an _until form that gives up at
 *    its deadline with -ETIMEDOUT, changing nothing; a deadline already
 *    passed makes it a poll.
 *  - Blocking calls are cancellation points when they have to wait: a
 *    task cancelled with weft_future_cancel() (or by its pool's
 *    WEFT_SHUTDOWN_CANCEL), and not shielded (weft_cancel_shield_push()),
 *    gets -ECANCELED, changing nothing. A call that can complete at once
 *    (a free mutex, a set event) completes even in a cancelled task. Off
 *    the pool's workers nothing cancels.
 *  - A timeout or a cancel that races a grant loses: a call that was
 *    handed the mutex, a permit or an item as its deadline passed returns
 *    success. -ETIMEDOUT and -ECANCELED always mean nothing was handed
 *    over.
 *  - Waiters are served first come, first served, and a grant goes straight
 *    to the waiter (the mutex to the oldest waiter on unlock, a released
 *    permit to the oldest acquirer), so a newcomer cannot barge past them.
 *  - Errors are negative errno codes; -EINVAL for a NULL object or a bad
 *    argument changes nothing. A wait with a deadline may also fail, in
 *    the rare case that the timer behind deadlines cannot take it, with
 *    -ENOMEM or -EAGAIN, changing nothing (a condition variable's wait
 *    returns holding its mutex all the same).
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

WEFT_BEGIN_DECLS

/* ---- mutex ------------------------------------------------------------ */

/**
 * struct weft_mutex - a mutual-exclusion lock, held by a task or a thread.
 * Its fields are private. An unlocked mutex may also be initialised
 * statically with WEFT_MUTEX_INIT.
 *
 * Fair: an unlock with waiters hands the lock to the oldest of them. The
 * uncontended lock and unlock are one atomic compare-and-swap each. Not
 * recursive. The lock belongs to the task (or the thread, off the workers)
 * that took it, wherever that task runs later: only it may unlock. Builds
 * with debug checks (WEFT_DEBUG_CHECKS) abort with a message when a task
 * or thread unlocks a mutex it does not hold, or locks one it already
 * holds; in other builds the first is undefined (an unlocked mutex gives
 * -EPERM) and the second waits forever.
 */
struct weft_mutex {
	uint64_t private_[4];
};

#define WEFT_MUTEX_INIT { { 0, 0, 0, 0 } }

/** weft_mutex_init() - make @m an unlocked mutex. 0, or -EINVAL for NULL. */
WEFT_API int weft_mutex_init(struct weft_mutex *m);

/**
 * weft_mutex_fini() - end @m's life (it may then be freed or reused).
 * 0; -EBUSY, changing nothing, while it is locked or waited on; -EINVAL
 * for NULL. Any thread.
 */
WEFT_API int weft_mutex_fini(struct weft_mutex *m);

/**
 * weft_mutex_lock() - take @m, waiting for it as long as it takes.
 * In a task the task suspends; elsewhere the thread blocks. Returns 0 with
 * @m held; -ECANCELED (not held) when the calling task is cancelled while
 * it waits; -EINVAL for NULL. Check the result: unlocking after a failed
 * lock is the error debug builds abort on.
 */
WEFT_API int weft_mutex_lock(struct weft_mutex *m);

/**
 * weft_mutex_lock_until() - as weft_mutex_lock(), giving up at @deadline
 * with -ETIMEDOUT (not held).
 */
WEFT_API int weft_mutex_lock_until(struct weft_mutex *m, int64_t deadline);

/**
 * weft_mutex_trylock() - take @m if it is free and nobody waits for it: 0,
 * else -EBUSY. Never waits; -EINVAL for NULL.
 */
WEFT_API int weft_mutex_trylock(struct weft_mutex *m);

/**
 * weft_mutex_unlock() - release @m, which the caller holds; the oldest
 * waiter, if any, gets it now and runs again. Never waits. 0; -EPERM when
 * @m is not locked (debug builds abort instead, and also when another
 * task or thread holds it); -EINVAL for NULL.
 */
WEFT_API int weft_mutex_unlock(struct weft_mutex *m);

/* ---- condition variable ----------------------------------------------- */

/**
 * struct weft_cond - a condition variable, used with a weft_mutex as a
 * pthread condition variable is with its mutex. Its fields are private; it
 * may also be initialised statically with WEFT_COND_INIT. Wake-ups may be
 * spurious: wait in a loop that re-checks the condition.
 */
struct weft_cond {
	uint64_t private_[4];
};

#define WEFT_COND_INIT { { 0, 0, 0, 0 } }

/** weft_cond_init() - 0, or -EINVAL for NULL. */
WEFT_API int weft_cond_init(struct weft_cond *c);

/** weft_cond_fini() - 0; -EBUSY (changing nothing) while a task or thread
 *  waits on @c; -EINVAL for NULL. */
WEFT_API int weft_cond_fini(struct weft_cond *c);

/**
 * weft_cond_wait() - release @m, which the caller holds, wait until @c is
 * signalled, then take @m again. Releasing and starting to wait are one
 * step: a signal sent after another task took @m wakes this waiter.
 * In a task the task suspends; elsewhere the thread blocks.
 *
 * Returns with @m held in every case, as pthread_cond_wait() does: 0 when
 * signalled (or spuriously); -ECANCELED when the calling task was
 * cancelled while it waited for the signal. Taking @m back is not a
 * cancellation point and has no deadline: it always waits for the mutex,
 * so that the caller's unlock after the wait is right whatever the result.
 * -EINVAL (nothing done) for NULL; debug builds abort when the caller does
 * not hold @m.
 */
WEFT_API int weft_cond_wait(struct weft_cond *c, struct weft_mutex *m);

/**
 * weft_cond_wait_until() - as weft_cond_wait(), with -ETIMEDOUT when no
 * signal came by @deadline (@m is held again all the same).
 */
WEFT_API int weft_cond_wait_until(struct weft_cond *c, struct weft_mutex *m,
				  int64_t deadline);

/**
 * weft_cond_signal() - wake the oldest waiter of @c, if any; a signal with
 * no waiter is lost. Holding the mutex is not required. Never waits.
 * 0, or -EINVAL for NULL.
 */
WEFT_API int weft_cond_signal(struct weft_cond *c);

/** weft_cond_broadcast() - wake every waiter of @c. Never waits. 0, or
 *  -EINVAL for NULL. */
WEFT_API int weft_cond_broadcast(struct weft_cond *c);

/* ---- semaphore -------------------------------------------------------- */

/**
 * struct weft_sem - a counting semaphore: acquire takes one permit,
 * waiting while there is none; release returns permits and hands them to
 * waiters oldest first. Its fields are private.
 */
struct weft_sem {
	uint64_t private_[4];
};

/** The most permits a semaphore holds. */
#define WEFT_SEM_MAX 0x7fffffffu

/** weft_sem_init() - @count permits to start with. 0; -EINVAL for NULL
 *  or @count above WEFT_SEM_MAX. */
WEFT_API int weft_sem_init(struct weft_sem *s, unsigned count);

/** weft_sem_fini() - 0; -EBUSY (changing nothing) while waited on;
 *  -EINVAL for NULL. Permits left over are simply dropped. */
WEFT_API int weft_sem_fini(struct weft_sem *s);

/**
 * weft_sem_acquire() - take one permit, waiting until there is one. In a
 * task the task suspends; elsewhere the thread blocks. 0; -ECANCELED (no
 * permit taken) when the calling task is cancelled while it waits;
 * -EINVAL for NULL.
 */
WEFT_API int weft_sem_acquire(struct weft_sem *s);

/** weft_sem_acquire_until() - as weft_sem_acquire(), giving up at
 *  @deadline with -ETIMEDOUT (no permit taken). */
WEFT_API int weft_sem_acquire_until(struct weft_sem *s, int64_t deadline);

/** weft_sem_try_acquire() - take a permit if one is free and nobody waits:
 *  0, else -EAGAIN. Never waits; -EINVAL for NULL. */
WEFT_API int weft_sem_try_acquire(struct weft_sem *s);

/**
 * weft_sem_release() - return @n permits: up to @n waiters get one each,
 * oldest first, and the rest is added to the count. Any task or thread,
 * whether or not it acquired. Never waits. 0; -EOVERFLOW (nothing
 * released) when the count would exceed WEFT_SEM_MAX; -EINVAL for NULL.
 */
WEFT_API int weft_sem_release(struct weft_sem *s, unsigned n);

/** weft_sem_value() - the permits free now (a snapshot); 0 while tasks
 *  wait; -EINVAL for NULL. */
WEFT_API int weft_sem_value(struct weft_sem *s);

/* ---- event ------------------------------------------------------------ */

/** Flags of weft_event_init(). */
enum {
	/** Each set lets one waiter through and the event resets itself,
	 *  as a Win32 auto-reset event does; without it the event stays set
	 *  (letting everyone through) until weft_event_reset(). */
	WEFT_EVENT_AUTO_RESET = 1u << 0,
	/** Start set. */
	WEFT_EVENT_SET = 1u << 1,
};

/**
 * struct weft_event - a flag that tasks and threads wait for. Its fields
 * are private.
 */
struct weft_event {
	uint64_t private_[4];
};

/** weft_event_init() - @flags: WEFT_EVENT_AUTO_RESET, WEFT_EVENT_SET.
 *  0; -EINVAL for NULL or an unknown flag. */
WEFT_API int weft_event_init(struct weft_event *ev, unsigned flags);

/** weft_event_fini() - 0; -EBUSY (changing nothing) while waited on;
 *  -EINVAL for NULL. */
WEFT_API int weft_event_fini(struct weft_event *ev);

/**
 * weft_event_set() - set @ev. Manual reset: every waiter, and every later
 * wait until weft_event_reset(), goes through. Auto reset: the oldest
 * waiter goes through and the event stays reset; with no waiter, it stays
 * set until one wait consumes it. Setting a set event does nothing. Never
 * waits; 0, or -EINVAL for NULL.
 */
WEFT_API int weft_event_set(struct weft_event *ev);

/** weft_event_reset() - clear @ev. Never waits; 0, or -EINVAL for NULL. */
WEFT_API int weft_event_reset(struct weft_event *ev);

/**
 * weft_event_wait() - wait until @ev is set (and, auto reset, consume
 * it). In a task the task suspends; elsewhere the thread blocks. 0;
 * -ECANCELED when the calling task is cancelled while it waits; -EINVAL
 * for NULL.
 */
WEFT_API int weft_event_wait(struct weft_event *ev);

/** weft_event_wait_until() - as weft_event_wait(), giving up at @deadline
 *  with -ETIMEDOUT. */
WEFT_API int weft_event_wait_until(struct weft_event *ev, int64_t deadline);

/** weft_event_try_wait() - 0 if @ev is set (consuming it, auto reset),
 *  else -EAGAIN. Never waits; -EINVAL for NULL. */
WEFT_API int weft_event_try_wait(struct weft_event *ev);

/** weft_event_is_set() - a snapshot; false for NULL. Consumes nothing. */
WEFT_API bool weft_event_is_set(struct weft_event *ev);

/* ---- wait group ------------------------------------------------------- */

/**
 * struct weft_wgroup - a counter of outstanding work that tasks and
 * threads wait to see reach zero, as Go's sync.WaitGroup: weft_wgroup_add()
 * before starting work, weft_wgroup_done() as each piece finishes,
 * weft_wgroup_wait() for all of it. Its fields are private. Reaching zero
 * lets every waiter through at once; the group may then be used for
 * another round.
 */
struct weft_wgroup {
	uint64_t private_[4];
};

/** The highest count a wait group holds. */
#define WEFT_WGROUP_MAX (INT64_MAX / 4)

/** weft_wgroup_init() - a count of zero. 0, or -EINVAL for NULL. */
WEFT_API int weft_wgroup_init(struct weft_wgroup *wg);

/** weft_wgroup_fini() - 0; -EBUSY (changing nothing) while waited on;
 *  -EINVAL for NULL. The count need not be zero. */
WEFT_API int weft_wgroup_fini(struct weft_wgroup *wg);

/**
 * weft_wgroup_add() - add @n (which may be negative) to the count; reaching
 * zero lets every waiter through. Never waits. 0; -EINVAL, changing
 * nothing, for NULL or when the count would go below zero or above
 * WEFT_WGROUP_MAX.
 */
WEFT_API int weft_wgroup_add(struct weft_wgroup *wg, int64_t n);

/** weft_wgroup_done() - weft_wgroup_add(@wg, -1). */
WEFT_API int weft_wgroup_done(struct weft_wgroup *wg);

/**
 * weft_wgroup_wait() - wait until the count is zero. In a task the task
 * suspends; elsewhere the thread blocks. 0; -ECANCELED when the calling
 * task is cancelled while it waits (the work goes on, and the group must
 * live until its last done()); -EINVAL for NULL.
 */
WEFT_API int weft_wgroup_wait(struct weft_wgroup *wg);

/** weft_wgroup_wait_until() - as weft_wgroup_wait(), giving up at
 *  @deadline with -ETIMEDOUT. */
WEFT_API int weft_wgroup_wait_until(struct weft_wgroup *wg, int64_t deadline);

/** weft_wgroup_count() - the count now (a snapshot); -EINVAL for NULL. */
WEFT_API int64_t weft_wgroup_count(struct weft_wgroup *wg);

/* ---- channel ---------------------------------------------------------- */

struct weft_chan;

/**
 * weft_chan_create() - a channel of void * items holding up to @capacity
 * of them, for any number of senders and receivers (tasks or threads).
 * @capacity 0 makes it unbuffered: a send waits until a receiver takes the
 * item from it (a rendezvous). Items are delivered first in, first out:
 * two items sent by one task or thread are received in the order it sent
 * them. The channel does not own what the items point to.
 *
 * Returns 0 with *@out set (free it with weft_chan_destroy()); -ENOMEM;
 * -EINVAL for a NULL @out or a @capacity above (SIZE_MAX / 2) /
 * sizeof(void *) (*@out is set to NULL when @out is not NULL).
 */
WEFT_API int weft_chan_create(size_t capacity, struct weft_chan **out);

/**
 * weft_chan_destroy() - free @ch, which no task or thread may be using or
 * waiting on. Items still buffered are dropped (receive them first with
 * weft_chan_try_recv() if they own memory). NULL is ignored.
 */
WEFT_API void weft_chan_destroy(struct weft_chan *ch);

/**
 * weft_chan_send() - put @item into @ch, waiting while it is full (for an
 * unbuffered channel: until a receiver takes it). In a task the task
 * suspends; elsewhere the thread blocks. Returns 0 once the item is in the
 * channel (or, unbuffered, received); -EPIPE when @ch is or gets closed
 * before it could take the item; -ECANCELED when the calling task is
 * cancelled while it waits; -EINVAL for NULL @ch. On any error the item
 * was not sent and stays the caller's.
 */
WEFT_API int weft_chan_send(struct weft_chan *ch, void *item);

/** weft_chan_send_until() - as weft_chan_send(), giving up at @deadline
 *  with -ETIMEDOUT (not sent). */
WEFT_API int weft_chan_send_until(struct weft_chan *ch, void *item,
				  int64_t deadline);

/** weft_chan_try_send() - send if it can be done without waiting (there
 *  is room, or, unbuffered, a receiver waits): 0; else -EAGAIN, or -EPIPE
 *  when closed. Never waits; -EINVAL for NULL @ch. */
WEFT_API int weft_chan_try_send(struct weft_chan *ch, void *item);

/**
 * weft_chan_recv() - take the oldest item of @ch into *@item, waiting
 * while it is empty. In a task the task suspends; elsewhere the thread
 * blocks. A closed channel still gives the items it holds, in order, and
 * then -EPIPE (as a receive from a closed Go channel gives its buffered
 * values, then reports it closed). Returns 0; -EPIPE when @ch is closed
 * and empty; -ECANCELED when the calling task is cancelled while it
 * waits; -EINVAL for NULL @ch or @item. *@item is written only on 0.
 */
WEFT_API int weft_chan_recv(struct weft_chan *ch, void **item);

/** weft_chan_recv_until() - as weft_chan_recv(), giving up at @deadline
 *  with -ETIMEDOUT (nothing taken). */
WEFT_API int weft_chan_recv_until(struct weft_chan *ch, void **item,
				  int64_t deadline);

/** weft_chan_try_recv() - receive if an item is there (or, unbuffered, a
 *  sender waits): 0; else -EAGAIN, or -EPIPE when closed and empty. Never
 *  waits; -EINVAL for NULL @ch or @item. */
WEFT_API int weft_chan_try_recv(struct weft_chan *ch, void **item);

/**
 * weft_chan_close() - no more sends: every send from now on, and every
 * send waiting now, fails with -EPIPE (its item stays its caller's);
 * receivers get the items already in the channel, then -EPIPE, and those
 * waiting now on an empty channel get -EPIPE at once. Never waits. 0;
 * -EPIPE when already closed; -EINVAL for NULL.
 */
WEFT_API int weft_chan_close(struct weft_chan *ch);

/** weft_chan_len() - the items buffered now (a snapshot); 0 for NULL. */
WEFT_API size_t weft_chan_len(struct weft_chan *ch);

/** weft_chan_cap() - the capacity given to weft_chan_create(); 0 for
 *  NULL. */
WEFT_API size_t weft_chan_cap(const struct weft_chan *ch);

WEFT_END_DECLS

#endif /* WEFT_SYNC_H */
