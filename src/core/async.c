/*
 * core/async.c - yield, sleep and cancel shields (weft/async.h).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft/async.h"
#include "core/pool.h"
#include "core/wait.h"
#include "fiber/fiber.h"

static void park_yield(struct weft__fiber *prev, void *arg)
{
	(void)arg;
	weft__fiber_ready_fifo(prev);
}

WEFT_API int weft_yield(void)
{
	struct weft__fiber *self = weft__fiber_self();

	if (!self) {
		sched_yield();
		return 0;
	}
	if (weft__cancel_pending())
		return -ECANCELED;
	if (weft__fiber_suspend(park_yield, NULL) != 0)
		sched_yield();
	return weft__cancel_pending() ? -ECANCELED : 0;
}

/* A sleep waits on a source that never fires. */
static bool never_arm(struct weft__waiter *w, void *src)
{
	(void)w;
	(void)src;
	return true;
}

static bool never_disarm(struct weft__waiter *w, void *src)
{
	(void)w;
	(void)src;
	return true;
}

static const struct weft__wait_ops never_ops = {
	.arm = never_arm,
	.disarm = never_disarm,
};

WEFT_API int weft_sleep_until(int64_t deadline)
{
	struct weft__waiter w;
	int r;

	if (deadline == WEFT_FOREVER)
		return -EINVAL; /* would never return */
	r = weft__wait(&w, &never_ops, NULL, deadline,
		       WEFT__WAIT_CANCELLABLE);
	return r == -ETIMEDOUT ? 0 : r;
}

WEFT_API int weft_sleep(int64_t ns)
{
	if (ns < 0)
		return -EINVAL;
	return weft_sleep_until(weft_now() + ns);
}

WEFT_API void weft_cancel_shield_push(void)
{
	struct weft__fiber *self = weft__fiber_self();

	if (self)
		self->shield++;
}

WEFT_API void weft_cancel_shield_pop(void)
{
	struct weft__fiber *self = weft__fiber_self();

	if (!self)
		return;
	if (self->shield == 0) {
		fprintf(stderr, "weft: weft_cancel_shield_pop() without a "
				"matching weft_cancel_shield_push()\n");
		abort();
	}
	self->shield--;
}
