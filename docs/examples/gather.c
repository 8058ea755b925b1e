/*
 * gather.c - several plain threads submit tasks; main() reports them in
 * completion order with weft_as_completed_*() and gathers them with
 * weft_when_all(). One task fails on purpose.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#define PRODUCERS 3
#define PER_PRODUCER 4
#define N (PRODUCERS * PER_PRODUCER)
#define FAILING 5

static struct weft_pool *pool;
static struct weft_future *futs[N]; /* slot i is written by one producer */

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int work(void *arg, void **result)
{
	uintptr_t i = (uintptr_t)arg;
	struct timespec ts = { 0, (long)(N - i) * 200000 }; /* last ends first */

	nanosleep(&ts, NULL);
	if (i == FAILING)
		return -ERANGE; /* the task fails with its own code */
	*result = (void *)(i * 10);
	return 0;
}

/* Any thread may submit: these go through the pool's inject queue. */
static void *producer(void *arg)
{
	uintptr_t first = (uintptr_t)arg * PER_PRODUCER;

	for (uintptr_t i = first; i < first + PER_PRODUCER; i++)
		check(weft_submit(pool, work, (void *)i, &futs[i]), "weft_submit");
	return NULL;
}

int main(void)
{
	pthread_t threads[PRODUCERS];
	struct weft_as_completed *it;
	struct weft_future *all;
	size_t index, seen = 0;
	int bad = 0, err;

	check(weft_pool_create(NULL, &pool), "weft_pool_create");
	for (uintptr_t t = 0; t < PRODUCERS; t++)
		check(-pthread_create(&threads[t], NULL, producer, (void *)t),
		      "pthread_create");
	for (int t = 0; t < PRODUCERS; t++)
		pthread_join(threads[t], NULL);

	/* In completion order, whichever worker ran each one. */
	check(weft_as_completed_create(futs, N, &it), "as_completed_create");
	while ((err = weft_as_completed_next(it, WEFT_FOREVER, &index)) == 0) {
		void *v;
		int e = weft_future_try_get(futs[index], &v); /* done: no wait */

		if (e == 0)
			printf("task %2zu: %zu\n", index, (size_t)(uintptr_t)v);
		else
			printf("task %2zu: failed: %s\n", index, strerror(-e));
		bad |= (index == FAILING) != (e == -ERANGE);
		seen++;
	}
	bad |= err != -ENOENT || seen != N;
	weft_as_completed_destroy(it);

	/* Gather: completes when all have; its error is the first failure's. */
	check(weft_when_all(futs, N, &all), "weft_when_all");
	err = weft_future_get(all, NULL);
	printf("when_all: %s\n", strerror(-err));
	bad |= err != -ERANGE;
	weft_future_unref(all);

	for (int i = 0; i < N; i++)
		weft_future_unref(futs[i]);
	weft_pool_destroy(pool);
	return bad;
}
