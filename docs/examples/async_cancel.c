/*
 * async_cancel.c - cancelling a task while it waits, and cleaning up.
 *
 * main() cancels a running task that is asleep. The cancel wakes the sleep
 * with -ECANCELED. The task then cleans up inside a cancel shield, where a
 * wait is not cut short, and returns -ECANCELED, so that its future
 * completes as CANCELLED. The request is sticky: outside the shield every
 * later wait of the task fails at once.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#define MS 1000000 /* nanoseconds */

static atomic_bool started;
/* What the task saw; main() reads them after the task has completed. */
static int sleep_err = 1, cleanup_err = 1, yield_err = 1;
static bool in_shield = true, after_shield;

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int session(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&started, true);
	sleep_err = weft_sleep(60000 * (int64_t)MS); /* a minute, or a cancel */
	if (sleep_err != -ECANCELED)
		return sleep_err;

	/* Cleanup that must wait (flush, say goodbye): shield it. */
	weft_cancel_shield_push();
	in_shield = weft_task_cancelled();   /* false while shielded */
	cleanup_err = weft_sleep(1 * MS);    /* runs its full time: 0 */
	weft_cancel_shield_pop();

	after_shield = weft_task_cancelled(); /* true again */
	yield_err = weft_yield();             /* sticky: -ECANCELED at once */
	return -ECANCELED; /* the future completes as CANCELLED */
}

int main(void)
{
	struct timespec ms = { 0, MS };
	struct weft_pool *pool;
	struct weft_future *f;
	int cancel_err, err, bad = 0;

	check(weft_pool_create(NULL, &pool), "weft_pool_create");
	check(weft_submit(pool, session, NULL, &f), "weft_submit");
	while (!atomic_load(&started))
		nanosleep(&ms, NULL);

	cancel_err = weft_future_cancel(f); /* running: -EBUSY, and flagged */
	err = weft_future_get(f, NULL);
	printf("cancel: %s; the task: %s (%s)\n", strerror(-cancel_err),
	       strerror(-err),
	       weft_future_state(f) == WEFT_FUTURE_CANCELLED ? "CANCELLED"
							  : "not CANCELLED");
	printf("sleep: %s; shielded: cancelled %d, sleep %s; after: "
	       "cancelled %d, yield %s\n",
	       strerror(-sleep_err), in_shield, strerror(-cleanup_err),
	       after_shield, strerror(-yield_err));
	bad |= cancel_err != -EBUSY || err != -ECANCELED ||
	       weft_future_state(f) != WEFT_FUTURE_CANCELLED;
	bad |= sleep_err != -ECANCELED || in_shield || cleanup_err != 0;
	bad |= !after_shield || yield_err != -ECANCELED;

	weft_future_unref(f);
	weft_pool_destroy(pool);
	return bad;
}
