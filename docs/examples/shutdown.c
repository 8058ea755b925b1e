/*
 * shutdown.c - the two ways a pool stops.
 *
 * Draining (flags 0) runs everything queued, including tasks that running
 * tasks submit. Cancelling (WEFT_SHUTDOWN_CANCEL) completes queued tasks
 * with -ECANCELED without running them, and tells running ones through
 * weft_task_cancelled(). A deadline bounds either wait.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#define QUEUED 8

static struct weft_pool *pool;
static atomic_int ran;

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int leaf(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_fetch_add(&ran, 1);
	return 0;
}

/* A pool's own tasks may still submit while it drains. */
static int parent(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_fetch_add(&ran, 1);
	for (int i = 0; i < 3; i++)
		check(weft_submit(pool, leaf, NULL, NULL), "submit from a task");
	return 0;
}

/* A long task that polls for cancellation. */
static int long_task(void *arg, void **result)
{
	struct timespec ms = { 0, 1000000 };

	(void)arg;
	(void)result;
	while (!weft_task_cancelled())
		nanosleep(&ms, NULL);
	return -ECANCELED;
}

int main(void)
{
	struct weft_pool_options opts;
	struct weft_future *lf, *queued[QUEUED];
	struct timespec ms = { 0, 1000000 };
	int bad = 0, cancelled = 0, err;

	/* 1. Drain: 4 parents + the 12 leaves they submit all run. */
	check(weft_pool_create(NULL, &pool), "weft_pool_create");
	for (int i = 0; i < 4; i++)
		check(weft_submit(pool, parent, NULL, NULL), "weft_submit");
	check(weft_pool_shutdown(pool, 0, WEFT_FOREVER), "drain");
	err = weft_submit(pool, leaf, NULL, NULL); /* refused from now on */
	printf("drained: %d tasks ran; a late submit: %s\n",
	       atomic_load(&ran), strerror(-err));
	bad |= atomic_load(&ran) != 16 || err != -ESHUTDOWN;
	weft_pool_destroy(pool);

	/* 2. Cancel: one worker, busy with long_task; 8 tasks wait behind. */
	weft_pool_options_init(&opts);
	opts.workers = 1;
	opts.name = "shutdown-demo";
	check(weft_pool_create(&opts, &pool), "weft_pool_create");
	check(weft_submit(pool, long_task, NULL, &lf), "weft_submit");
	while (weft_future_state(lf) == WEFT_FUTURE_PENDING)
		nanosleep(&ms, NULL);
	for (int i = 0; i < QUEUED; i++)
		check(weft_submit(pool, leaf, NULL, &queued[i]), "weft_submit");

	/* Draining cannot finish while long_task runs: give up after 20 ms. */
	err = weft_pool_shutdown(pool, 0, weft_now() + 20 * 1000000);
	printf("drain with a deadline: %s\n", strerror(-err));
	bad |= err != -ETIMEDOUT;
	/* Switch to cancelling and wait for the pool to go quiet. */
	check(weft_pool_shutdown(pool, WEFT_SHUTDOWN_CANCEL, WEFT_FOREVER),
	      "cancel");
	bad |= weft_future_error(lf) != -ECANCELED;
	for (int i = 0; i < QUEUED; i++) {
		cancelled += weft_future_state(queued[i]) == WEFT_FUTURE_CANCELLED;
		weft_future_unref(queued[i]);
	}
	printf("cancelled: long task: %s; %d of %d queued tasks never ran\n",
	       strerror(-weft_future_error(lf)), cancelled, QUEUED);
	bad |= cancelled != QUEUED;
	weft_future_unref(lf);
	weft_pool_destroy(pool); /* futures stay valid after this */
	return bad;
}
