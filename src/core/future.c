/*
 * core/future.c - future objects: lifetime, completion, waiting, cancel.
 * See future.h for the state machine and the reference rules.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/falloc.h"
#include "core/future.h"
#include "core/locals.h"
#include "core/pool.h"
#include "core/spawn.h"
#include "core/wait.h"
#include "util/futex.h"
#include "util/spinlock.h"

struct weft_future *weft__future_new(uint8_t kind, void *fn, void *arg,
				     size_t extra)
{
	struct weft_future *f = weft__falloc(sizeof(*f) + extra);

	if (!f)
		return NULL;
	memset(f, 0, sizeof(*f) + extra);
	atomic_init(&f->state, kind == K_THEN ? F_WAITING : F_QUEUED);
	atomic_init(&f->refs, 1);
	f->magic = WEFT__FUTURE_MAGIC;
	f->kind = kind;
	f->fn = fn;
	f->arg = arg;
	/* A task starts with its creator's task-local values. */
	if (kind != K_NONE && kind != K_FRAME && kind != K_IO)
		f->locals = weft__locals_inherit();
	return f;
}

static void check_live(const struct weft_future *f, const char *fn)
{
#if WEFT_DEBUG_CHECKS
	if (f->magic != WEFT__FUTURE_MAGIC) {
		fprintf(stderr,
			"weft: %s(%p): not a live future (unref'd once too "
			"often, or never a future)\n",
			fn, (const void *)f);
		abort();
	}
#else
	(void)f;
	(void)fn;
#endif
}

WEFT_API void weft_future_ref(struct weft_future *f)
{
	check_live(f, "weft_future_ref");
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

WEFT_API void weft_future_unref(struct weft_future *f)
{
	uint32_t prev;

	if (!f)
		return;
	check_live(f, "weft_future_unref");
	/* The last holder needs no RMW: nobody else can take a reference
	 * (that needs one already), so a plain acquire load decides; this is
	 * the common case of a detached task, whose queue entry holds the only
	 * reference. Otherwise acq_rel: the release publishes this holder's
	 * last use, and the acquire in the final unref sees everyone's before
	 * freeing. */
	if (atomic_load_explicit(&f->refs, memory_order_acquire) == 1)
		prev = 1;
	else
		prev = atomic_fetch_sub_explicit(&f->refs, 1,
						 memory_order_acq_rel);
#if WEFT_DEBUG_CHECKS
	if (prev == 0) {
		fprintf(stderr,
			"weft: weft_future_unref(%p): reference count "
			"underflow (unref'd once too often)\n",
			(void *)f);
		abort();
	}
#endif
	if (prev != 1)
		return;
	f->magic = WEFT__FUTURE_DEAD;
	weft_future_unref(f->arg2);
	weft__locals_unref(f->locals);
	weft__ffree(f);
}

/* ---- completion ------------------------------------------------------- */

void weft__future_complete(struct weft_future *f, int err, void *value)
{
	struct weft__wnode *n, *next;
	uint32_t final = err == 0	       ? F_DONE
			 : err == -ECANCELED ? F_CANCELLED
					     : F_FAILED;

	f->value = err ? NULL : value;
	f->err = err;
	if (atomic_load_explicit(&f->refs, memory_order_acquire) == 1 &&
	    !f->waiters && !f->arg2) {
		/* Ours is the only reference, so nobody can be adding a
		 * waiter (that needs a reference), and the acquire above saw
		 * every earlier holder's list changes: no lock needed. */
		atomic_store_explicit(&f->state, final, memory_order_relaxed);
		return;
	}
	weft__spin_lock(&f->lock);
	/* release: pairs with the acquire loads of state in readers, which
	 * then read value and err. */
	atomic_store_explicit(&f->state, final, memory_order_release);
	n = f->waiters;
	f->waiters = NULL;
	weft__spin_unlock(&f->lock);

	/* A continuation's antecedent is no longer needed. */
	if (f->arg2) {
		struct weft_future *a = f->arg2;

		f->arg2 = NULL;
		weft_future_unref(a);
	}
	for (; n; n = next) {
		next = n->next; /* n may be gone once fired */
		n->fire(n, f);
	}
}

void weft__future_run(struct weft_future *f)
{
	void *value = NULL;
	int err = 0;

	switch (f->kind) {
	case K_FN:
		err = ((weft_task_fn)f->fn)(f->arg, &value);
		break;
	case K_ROUTINE:
		value = ((weft_routine_fn)f->fn)(f->arg);
		break;
	case K_THEN:
		err = ((weft_then_fn)f->fn)(f->arg2, f->arg, &value);
		break;
	case K_FRAME:
		weft__frame_run(f->fn);
		break;
	default:
		abort();
	}
	weft__future_complete(f, err > 0 ? 0 : err, value);
}

bool weft__future_add_waiter(struct weft_future *f, struct weft__wnode *n)
{
	bool added = false;

	weft__spin_lock(&f->lock);
	if (!weft__future_is_complete(atomic_load_explicit(
		    &f->state, memory_order_relaxed))) {
		n->next = f->waiters;
		f->waiters = n;
		added = true;
	}
	weft__spin_unlock(&f->lock);
	return added;
}

bool weft__future_remove_waiter(struct weft_future *f, struct weft__wnode *n)
{
	bool removed = false;

	weft__spin_lock(&f->lock);
	for (struct weft__wnode **p = &f->waiters; *p; p = &(*p)->next) {
		if (*p == n) {
			*p = n->next;
			removed = true;
			break;
		}
	}
	weft__spin_unlock(&f->lock);
	return removed;
}

/* ---- waiting ---------------------------------------------------------- */

int weft__future_help(struct weft_future *f, bool run)
{
	struct weft__worker *w = weft__current_worker();

	if (!w)
		return 0;
	for (struct weft_future *t = w->fib.running->current; t;
	     t = t->waiting_in)
		if (t == f)
			return -EDEADLK;
	if (run && f->kind != K_NONE && f->pool == w->pool &&
	    weft__task_fits(f, w->fib.running) &&
	    weft__future_claim(f, F_RUNNING)) {
		weft__worker_unqueue(w, f);
		weft__worker_run(w, f);
		return 1;
	}
	return 0;
}

int weft__future_wait(struct weft_future *f, int64_t deadline)
{
	int r;

	if (weft__future_is_complete(
		    atomic_load_explicit(&f->state, memory_order_acquire)))
		return 0;
	/* With a deadline the awaited task is not run inline: the wait could
	 * not return at its deadline while it runs. */
	r = weft__future_help(f, deadline == WEFT_FOREVER);
	if (r < 0)
		return r;
	if (r > 0)
		return 0;
	return weft__wait_future(f, deadline, WEFT__WAIT_CANCELLABLE);
}

WEFT_API int weft_future_wait(struct weft_future *f)
{
	return weft_future_wait_until(f, WEFT_FOREVER);
}

WEFT_API int weft_future_wait_until(struct weft_future *f, int64_t deadline)
{
	if (!f)
		return -EINVAL;
	check_live(f, "weft_future_wait");
	return weft__future_wait(f, deadline);
}

/* ---- queries ---------------------------------------------------------- */

static uint32_t load_state(const struct weft_future *f)
{
	/* acquire: pairs with the release in complete(). */
	return atomic_load_explicit(&((struct weft_future *)f)->state,
				    memory_order_acquire);
}

WEFT_API int weft_future_state(const struct weft_future *f)
{
	uint32_t s;

	if (!f)
		return -EINVAL;
	s = load_state(f);
	return s == F_CANCELLING || s == F_WAITING ? WEFT_FUTURE_PENDING
						    : (int)s;
}

WEFT_API int weft_future_try_wait(const struct weft_future *f)
{
	if (!f)
		return -EINVAL;
	return weft__future_is_complete(load_state(f)) ? 0 : -EAGAIN;
}

WEFT_API int weft_future_error(const struct weft_future *f)
{
	if (!f)
		return -EINVAL;
	return weft__future_is_complete(load_state(f)) ? f->err : -EINPROGRESS;
}

WEFT_API void *weft_future_value(const struct weft_future *f)
{
	if (!f || load_state(f) != F_DONE)
		return NULL;
	return f->value;
}

WEFT_API int weft_future_try_get(const struct weft_future *f, void **value)
{
	if (!f)
		return -EINVAL;
	if (!weft__future_is_complete(load_state(f)))
		return -EAGAIN;
	if (value && f->err == 0)
		*value = f->value;
	return f->err;
}

WEFT_API int weft_future_get(struct weft_future *f, void **value)
{
	int r = weft_future_wait(f);

	if (r)
		return r;
	return weft_future_try_get(f, value);
}

/* ---- cancel and callbacks ---------------------------------------------- */

WEFT_API int weft_future_cancel(struct weft_future *f)
{
	if (!f)
		return -EINVAL;
	check_live(f, "weft_future_cancel");
	if (f->kind == K_NONE)
		return -EINVAL;
	if (f->kind == K_IO)
		return weft__io_cancel(f); /* io/io.c */
	for (;;) {
		uint32_t s = load_state(f);

		switch (s) {
		case F_QUEUED:
		case F_WAITING:
			if (!atomic_compare_exchange_strong(&f->state, &s,
							    F_CANCELLING))
				continue;
			/* The entry left in a queue, if any, is now stale. */
			weft__future_complete(f, -ECANCELED, NULL);
			return 0;
		case F_RUNNING:
			/* seq_cst, with the load in weft__cancel_pending():
			 * a waiter publishes its wait under its own fiber's
			 * lock, which a forked child's canceller does not take,
			 * so nothing else orders the two (a store-buffer race
			 * on weak memory). */
			atomic_store_explicit(&f->cancel_req, 1,
					      memory_order_seq_cst);
			/* Wake it if it waits; it sees -ECANCELED. */
			weft__cancel_wake(f);
			return -EBUSY;
		case F_CANCELLING:
			/* Another canceller won; it is storing the outcome.
			 * Wait the few instructions that takes, so that our
			 * caller finds the future complete. */
			while (load_state(f) == F_CANCELLING)
				weft__cpu_relax();
			return -EALREADY;
		default:
			return -EALREADY;
		}
	}
}

struct callback {
	struct weft__wnode node;
	weft_callback_fn cb;
	void *arg;
};

static void callback_fire(struct weft__wnode *n, struct weft_future *f)
{
	struct callback *c = (struct callback *)n;

	c->cb(f, c->arg);
	free(c);
}

WEFT_API int weft_future_on_complete(struct weft_future *f, weft_callback_fn cb,
				     void *arg)
{
	struct callback *c;

	if (!f || !cb)
		return -EINVAL;
	check_live(f, "weft_future_on_complete");
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->node.fire = callback_fire;
	c->cb = cb;
	c->arg = arg;
	if (!weft__future_add_waiter(f, &c->node))
		callback_fire(&c->node, f);
	return 0;
}
