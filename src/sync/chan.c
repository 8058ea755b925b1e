/*
 * sync/chan.c - the bounded MPMC channel of void * items (weft/sync.h).
 *
 * A ring buffer and two waiter lists under one lock, the bit of the waitq
 * word (waitq.h), as Go's runtime channel (runtime/chan.go) keeps its
 * buffer and its sendq / recvq under one lock, and with Go's direct
 * handoffs:
 *  - a send that finds a receiver waiting gives it the item directly
 *    (receivers only wait on an empty buffer);
 *  - a receive from a full buffer with senders waiting takes the oldest
 *    item and moves the oldest sender's item to the tail, so the buffer
 *    stays in FIFO order and the sender is done;
 *  - unbuffered (capacity 0), a receive takes the item straight from the
 *    oldest waiting sender, and a send hands it to the oldest receiver.
 * Invariants under the lock: receivers wait only while count == 0, and
 * senders only while count == cap, so at most one list is non-empty.
 *
 * Every decision, and every item moved, is made under the lock; a waiter
 * taken off a list is woken after the unlock, with its outcome in w->tag
 * and, for a receiver, its item in w->data. A waiter that times out or is
 * cancelled while a peer takes it keeps the peer's outcome (waitq.h: the
 * grant is final), which is what makes the count exact: every item whose
 * send returned 0 is in the buffer or with a receiver, every item whose
 * send failed is still its sender's.
 *
 * Each call that can wait first tries under the lock without waiting, so
 * that a call which can complete at once does so even in a cancelled task
 * (weft__wait() refuses a cancelled task before it arms); if it must
 * wait, the waitq's arm() tries again under the lock, since the channel
 * may have changed in between.
 *
 * Threads: any. Lifetime: weft_chan_destroy() once nobody uses it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft/sync.h"
#include "sync/waitq.h"
#include "weft_config.h"

enum {
	CH_OK = 0,     /* w->tag: sent, or received w->data */
	CH_CLOSED = 1, /* w->tag: the channel closed first */
};

struct weft_chan {
	struct weft__waitq q;	     /* list: receivers waiting (empty) */
	struct weft__wlist senders; /* senders waiting (full); under q */
	bool closed;		     /* under q */
	size_t cap;
	size_t head, count; /* the ring: buf[head], ... count items; under q */
	void *buf[];
};

/* ---- the moves, under the lock ------------------------------------------ */

/* Send @item without waiting: 0 done (wake *@wake after the unlock, if
 * set), -EPIPE closed, -EAGAIN no room and no receiver. */
static int send_locked(struct weft_chan *ch, void *item,
		       struct weft__waiter **wake)
{
	struct weft__waiter *r;

	if (ch->closed)
		return -EPIPE;
	r = weft__wlist_pop(&ch->q.list);
	if (r) {
		r->data = item;
		r->tag = CH_OK;
		*wake = r;
		return 0;
	}
	if (ch->count == ch->cap)
		return -EAGAIN;
	ch->buf[(ch->head + ch->count) % ch->cap] = item;
	ch->count++;
	return 0;
}

/* Receive into *@item without waiting: 0 done (wake *@wake after the
 * unlock, if set), -EPIPE closed and empty, -EAGAIN empty. */
static int recv_locked(struct weft_chan *ch, void **item,
		       struct weft__waiter **wake)
{
	struct weft__waiter *s = weft__wlist_pop(&ch->senders);

	if (ch->count) {
		*item = ch->buf[ch->head];
		ch->head = (ch->head + 1) % ch->cap;
		ch->count--;
		if (s) {
			/* Full with senders waiting: the oldest one's item
			 * takes the free slot at the tail. */
			ch->buf[(ch->head + ch->count) % ch->cap] = s->data;
			ch->count++;
		}
	} else if (s) {
		*item = s->data; /* unbuffered: straight from the sender */
	} else {
		return ch->closed ? -EPIPE : -EAGAIN;
	}
	if (s) {
		s->tag = CH_OK;
		*wake = s;
	}
	return 0;
}

/* ---- waiting ------------------------------------------------------------ */

/* One send or receive on its way into a wait. */
struct op {
	struct weft_chan *ch;
	int res;		   /* of the move arm() made, if it made one */
	bool queued;		   /* arm() queued the waiter */
	struct weft__waiter *wake; /* to wake once arm()'s lock is released */
};

static struct weft__wlist *send_arm(void *obj, struct weft__waiter *w,
				    uint64_t *state)
{
	struct op *op = obj;

	(void)state;
	op->res = send_locked(op->ch, w->data, &op->wake);
	if (op->res != -EAGAIN)
		return NULL;
	op->queued = true;
	return &op->ch->senders;
}

static struct weft__wlist *recv_arm(void *obj, struct weft__waiter *w,
				    uint64_t *state)
{
	struct op *op = obj;

	(void)state;
	op->res = recv_locked(op->ch, &w->data, &op->wake);
	if (op->res != -EAGAIN)
		return NULL;
	op->queued = true;
	return &op->ch->q.list;
}

static const struct weft__waitq_ops send_ops = {.arm = send_arm};
static const struct weft__waitq_ops recv_ops = {.arm = recv_arm};

/*
 * The tail of every send and receive: @w carries the item (send) or gets
 * it (receive). Tries without waiting under the lock; then, unless @try,
 * waits. Returns 0, -EPIPE, -EAGAIN (@try), -ETIMEDOUT, -ECANCELED.
 */
static int chan_op(struct weft_chan *ch, bool send, struct weft__waiter *w,
		   int64_t deadline, bool try)
{
	struct op op = {.ch = ch};
	uint64_t s;
	int r;

	s = weft__waitq_lock(&ch->q);
	if (send)
		r = send_locked(ch, w->data, &op.wake);
	else
		r = recv_locked(ch, &w->data, &op.wake);
	weft__waitq_unlock(&ch->q, s);
	if (r != -EAGAIN || try)
		goto out_wake;

	r = weft__waitq_wait(&ch->q, send ? &send_ops : &recv_ops, &op, w,
			     deadline, WEFT__WAIT_CANCELLABLE);
	if (r)
		return r; /* not taken: nothing moved */
	if (op.queued)
		return w->tag == CH_OK ? 0 : -EPIPE; /* a peer decided */
	r = op.res; /* arm() made the move itself */
out_wake:
	if (op.wake)
		weft__waitq_wake(op.wake);
	return r;
}

/* ---- the API ------------------------------------------------------------ */

WEFT_API int weft_chan_create(size_t capacity, struct weft_chan **out)
{
	struct weft_chan *ch;

	if (out)
		*out = NULL;
	if (!out || capacity > (SIZE_MAX / 2) / sizeof(void *))
		return -EINVAL;
	ch = malloc(sizeof(*ch) + capacity * sizeof(void *));
	if (!ch)
		return -ENOMEM;
	weft__waitq_init(&ch->q, 0);
	ch->senders.head = ch->senders.tail = NULL;
	ch->closed = false;
	ch->cap = capacity;
	ch->head = ch->count = 0;
	*out = ch;
	return 0;
}

WEFT_API void weft_chan_destroy(struct weft_chan *ch)
{
	if (!ch)
		return;
#if WEFT_DEBUG_CHECKS
	uint64_t s = weft__waitq_lock(&ch->q);
	bool busy = !weft__wlist_empty(&ch->q.list) ||
		    !weft__wlist_empty(&ch->senders);

	weft__waitq_unlock(&ch->q, s);
	if (busy) {
		fprintf(stderr,
			"weft: weft_chan_destroy(): channel %p still has "
			"tasks or threads waiting on it\n",
			(void *)ch);
		abort();
	}
#endif
	free(ch);
}

WEFT_API int weft_chan_send_until(struct weft_chan *ch, void *item,
				  int64_t deadline)
{
	struct weft__waiter w;

	if (!ch)
		return -EINVAL;
	w.data = item;
	return chan_op(ch, true, &w, deadline, false);
}

WEFT_API int weft_chan_send(struct weft_chan *ch, void *item)
{
	return weft_chan_send_until(ch, item, WEFT_FOREVER);
}

WEFT_API int weft_chan_try_send(struct weft_chan *ch, void *item)
{
	struct weft__waiter w;

	if (!ch)
		return -EINVAL;
	w.data = item;
	return chan_op(ch, true, &w, WEFT_FOREVER, true);
}

WEFT_API int weft_chan_recv_until(struct weft_chan *ch, void **item,
				  int64_t deadline)
{
	struct weft__waiter w;
	int r;

	if (!ch || !item)
		return -EINVAL;
	w.data = NULL;
	r = chan_op(ch, false, &w, deadline, false);
	if (r == 0)
		*item = w.data;
	return r;
}

WEFT_API int weft_chan_recv(struct weft_chan *ch, void **item)
{
	return weft_chan_recv_until(ch, item, WEFT_FOREVER);
}

WEFT_API int weft_chan_try_recv(struct weft_chan *ch, void **item)
{
	struct weft__waiter w;
	int r;

	if (!ch || !item)
		return -EINVAL;
	w.data = NULL;
	r = chan_op(ch, false, &w, WEFT_FOREVER, true);
	if (r == 0)
		*item = w.data;
	return r;
}

WEFT_API int weft_chan_close(struct weft_chan *ch)
{
	struct weft__waiter *recvs, *sends;
	uint64_t s;

	if (!ch)
		return -EINVAL;
	s = weft__waitq_lock(&ch->q);
	if (ch->closed) {
		weft__waitq_unlock(&ch->q, s);
		return -EPIPE;
	}
	ch->closed = true;
	/* Receivers wait only on an empty channel, and senders on a full
	 * one: both learn now that nothing more will come. */
	recvs = weft__wlist_take_all(&ch->q.list);
	sends = weft__wlist_take_all(&ch->senders);
	for (struct weft__waiter *w = recvs; w; w = w->next)
		w->tag = CH_CLOSED;
	for (struct weft__waiter *w = sends; w; w = w->next)
		w->tag = CH_CLOSED;
	weft__waitq_unlock(&ch->q, s);
	weft__waitq_wake_all(recvs);
	weft__waitq_wake_all(sends);
	return 0;
}

WEFT_API size_t weft_chan_len(struct weft_chan *ch)
{
	uint64_t s;
	size_t n;

	if (!ch)
		return 0;
	s = weft__waitq_lock(&ch->q);
	n = ch->count;
	weft__waitq_unlock(&ch->q, s);
	return n;
}

WEFT_API size_t weft_chan_cap(const struct weft_chan *ch)
{
	return ch ? ch->cap : 0;
}
