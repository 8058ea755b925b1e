/*
 * async_time.c - yield, sleep and deadlines inside tasks, on a pool of one
 * worker.
 *
 * spinner() waits for a flag that only a task it submitted can set: with
 * one worker, that task runs only because spinner() yields. ticker() keeps
 * a steady period with weft_sleep_until() on absolute deadlines.
 * impatient() waits for a slow task with a deadline, gives up, and waits
 * again. While tasks sleep, the one worker runs the others.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define MS 1000000 /* nanoseconds */
#define TICKS 5
#define PERIOD (2 * MS)

static struct weft_pool *pool;
static atomic_bool flag;
static int first_wait = 1; /* impatient()'s first result */

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int setter(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&flag, true);
	return 0;
}

/* Without the yield this loop would keep the only worker for ever, and
 * setter() would never run. */
static int spinner(void *arg, void **result)
{
	uintptr_t yields = 0;
	int err;

	(void)arg;
	err = weft_submit(pool, setter, NULL, NULL);
	if (err < 0)
		return err;
	while (!atomic_load(&flag)) {
		err = weft_yield(); /* to the back of the queue */
		if (err < 0)
			return err; /* -ECANCELED: the task was cancelled */
		yields++;
	}
	*result = (void *)yields;
	return 0;
}

static int ticker(void *arg, void **result)
{
	int64_t start = weft_now(), next = start;

	(void)arg;
	for (int i = 0; i < TICKS; i++) {
		int err;

		next += PERIOD; /* absolute: a late wake-up does not add up */
		err = weft_sleep_until(next);
		if (err < 0)
			return err;
	}
	*result = (void *)(uintptr_t)(weft_now() - start);
	return 0;
}

static int slow(void *arg, void **result)
{
	*result = arg;
	return weft_sleep(500 * MS); /* suspends: the worker runs others */
}

static int impatient(void *arg, void **result)
{
	struct weft_future *f;
	int err;

	(void)arg;
	err = weft_submit(pool, slow, "slow's value", &f);
	if (err < 0)
		return err;
	/* Waiting for a task that has not started runs it here, inline,
	 * where no deadline can cut it short: let it start first. */
	while (weft_future_state(f) == WEFT_FUTURE_PENDING)
		weft_yield();

	first_wait = weft_future_wait_until(f, weft_now() + 10 * MS);
	/* -ETIMEDOUT: slow() goes on, and f is still ours to wait on. */
	err = weft_future_get(f, result);
	weft_future_unref(f);
	return err;
}

int main(void)
{
	struct weft_pool_options opts;
	struct weft_future *fs, *ft, *fi;
	void *yields, *took, *value;
	int bad = 0;

	weft_pool_options_init(&opts);
	opts.workers = 1;
	check(weft_pool_create(&opts, &pool), "weft_pool_create");
	check(weft_submit(pool, spinner, NULL, &fs), "weft_submit");
	check(weft_submit(pool, ticker, NULL, &ft), "weft_submit");
	check(weft_submit(pool, impatient, NULL, &fi), "weft_submit");

	check(weft_future_get(fs, &yields), "spinner");
	check(weft_future_get(ft, &took), "ticker");
	check(weft_future_get(fi, &value), "impatient");
	printf("spinner yielded %zu times\n", (size_t)(uintptr_t)yields);
	printf("ticker: %d ticks of %d ms took %.1f ms\n", TICKS, PERIOD / MS,
	       (double)(uintptr_t)took / MS);
	printf("impatient: first wait %s, then got \"%s\"\n",
	       strerror(-first_wait), (const char *)value);
	bad |= (uintptr_t)yields == 0;
	bad |= (uintptr_t)took < (uintptr_t)TICKS * PERIOD;
	bad |= first_wait != -ETIMEDOUT || strcmp(value, "slow's value") != 0;

	weft_future_unref(fs);
	weft_future_unref(ft);
	weft_future_unref(fi);
	weft_pool_destroy(pool);
	return bad;
}
