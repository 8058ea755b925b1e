/*
 * sync/waitq.c - the wait queue (waitq.h): FIFO lists of waiters under a
 * spinlock, armed and disarmed through weft__wait().
 */
#include <errno.h>

#include "sync/waitq.h"
#include "fiber/fiber.h"

/* ---- lists ------------------------------------------------------------- */

void weft__wlist_push(struct weft__wlist *l, struct weft__waiter *w)
{
	w->next = NULL;
	w->prev = l->tail; /* NULL for the head: never equal to w */
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
}

void weft__wlist_remove(struct weft__wlist *l, struct weft__waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	w->prev = w; /* not queued */
}

struct weft__waiter *weft__wlist_pop(struct weft__wlist *l)
{
	struct weft__waiter *w = l->head;

	if (w)
		weft__wlist_remove(l, w);
	return w;
}

struct weft__waiter *weft__wlist_take_all(struct weft__wlist *l)
{
	struct weft__waiter *first = l->head;

	for (struct weft__waiter *w = first; w; w = w->next)
		w->prev = w; /* not queued; next stays for the waker's walk */
	l->head = l->tail = NULL;
	return first;
}

/* ---- waking ------------------------------------------------------------ */

void weft__waitq_wake(struct weft__waiter *w)
{
	/* Lost: the waiter timed out or was cancelled and waits in its
	 * disarm (which found it off the list) for the release. */
	if (!weft__waiter_wake(w, W_WOKEN))
		weft__waiter_release(w);
}

void weft__waitq_wake_all(struct weft__waiter *first)
{
	while (first) {
		/* Read before the wake: the record may vanish after it. */
		struct weft__waiter *next = first->next;

		weft__waitq_wake(first);
		first = next;
	}
}

/* ---- waiting ----------------------------------------------------------- */

/* The source weft__wait() sees: one per wait, on the waiter's stack. */
struct wq_wait {
	struct weft__waitq *q;
	const struct weft__waitq_ops *ops;
	void *obj;
	struct weft__wlist *list; /* the list joined; set under the lock */
	bool taken;		  /* a waker took it while it gave up */
};

static bool wq_arm(struct weft__waiter *w, void *src)
{
	struct wq_wait *ww = src;
	uint64_t state = weft__waitq_lock(ww->q);
	struct weft__wlist *l = ww->ops->arm(ww->obj, w, &state);

	if (l)
		weft__wlist_push(l, w);
	ww->list = l;
	weft__waitq_unlock(ww->q, state);
	if (l && ww->ops->armed)
		ww->ops->armed(ww->obj);
	return l != NULL;
}

static bool wq_disarm(struct weft__waiter *w, void *src)
{
	struct wq_wait *ww = src;
	uint64_t state = weft__waitq_lock(ww->q);
	bool queued = weft__waiter_queued(w);

	if (queued) {
		weft__wlist_remove(ww->list, w);
		if (ww->ops->removed)
			ww->ops->removed(ww->obj, ww->list, &state);
	} else {
		/* A waker took @w under the lock before we got here: its
		 * grant stands. It is between its unlock and its wake, so
		 * weft__wait() must wait for its release. */
		ww->taken = true;
	}
	weft__waitq_unlock(ww->q, state);
	return queued;
}

static const struct weft__wait_ops wq_ops = {
	.arm = wq_arm,
	.disarm = wq_disarm,
};

int weft__waitq_wait(struct weft__waitq *q, const struct weft__waitq_ops *ops,
		     void *obj, struct weft__waiter *w, int64_t deadline,
		     unsigned flags)
{
	struct wq_wait ww = {.q = q, .ops = ops, .obj = obj};
	int r = weft__wait(w, &wq_ops, &ww, deadline, flags);

	/* ww.taken is written under the lock in the disarm, which ran on
	 * this side before weft__wait() returned. */
	return r != 0 && ww.taken ? 0 : r;
}

/* ---- owner tokens ------------------------------------------------------ */

static _Thread_local char thread_token;

/* noinline and the barrier: the address must be this thread's, never one
 * computed before a wait that moved the caller (DESIGN.md section 2). Only
 * reached off the workers, where nothing migrates, but cheap to keep
 * right. */
__attribute__((noinline)) void *weft__waitq_self_token(void)
{
	struct weft__fiber *self = weft__fiber_self();

	__asm__ __volatile__("" ::: "memory");
	if (self)
		return self;
	return &thread_token;
}
