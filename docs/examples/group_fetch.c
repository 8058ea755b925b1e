/*
 * group_fetch.c - a task group fetches N items, and one of them fails.
 *
 * One server answers with an error after 10 ms. By default that first
 * failure cancels the other children: the slow fetches still asleep are
 * woken with -ECANCELED, the ones not started never run, and
 * weft_group_wait() returns the failure's code. With
 * WEFT_GROUP_COLLECT every child runs to its end, and the wait reports the
 * first failure once all have finished.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define MS 1000000 /* nanoseconds */
#define N 8
#define BROKEN 3

struct item {
	struct weft_group *g;
	int index;
	int64_t latency;
	int value;    /* the fetched value */
	int own_wait; /* what weft_group_wait() said to the child */
};

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int fetch(void *arg, void **result)
{
	struct item *it = arg;
	int err;

	(void)result;
	/* A child that waited for its own group would wait for itself. */
	it->own_wait = weft_group_wait(it->g, WEFT_FOREVER); /* -EDEADLK */
	err = weft_sleep(it->latency); /* the network; a cancel ends it */
	if (err < 0)
		return err; /* -ECANCELED: not counted as a failure */
	if (it->index == BROKEN)
		return -EIO; /* fails, and (by default) cancels the rest */
	it->value = it->index * 100;
	return 0;
}

/* Fetch N items in a group; the futures tell each child's outcome. */
static int fetch_all(struct weft_pool *pool, unsigned flags, int64_t latency,
		     struct item *items, struct weft_future **futs)
{
	struct weft_group *g;
	int err;

	check(weft_group_create(pool, flags, WEFT_FOREVER, &g),
	      "weft_group_create");
	for (int i = 0; i < N; i++) {
		items[i] = (struct item){ .g = g, .index = i, .latency = latency };
		if (i == BROKEN)
			items[i].latency = 10 * MS; /* a quick error */
		err = weft_group_spawn(g, fetch, &items[i], &futs[i]);
		if (err == -ECANCELED)
			break; /* a child failed already: the group is closed */
		check(err, "weft_group_spawn");
	}
	err = weft_group_wait(g, WEFT_FOREVER);
	weft_group_destroy(g); /* all finished: frees it */
	return err;
}

/* Count the outcomes; futs[i] is NULL where the spawn was refused. */
static void tally(struct weft_future **futs, int *done, int *failed,
		  int *cancelled)
{
	*done = *failed = *cancelled = 0;
	for (int i = 0; i < N; i++) {
		int s = futs[i] ? weft_future_state(futs[i])
				: WEFT_FUTURE_CANCELLED;

		*done += s == WEFT_FUTURE_DONE;
		*failed += s == WEFT_FUTURE_FAILED;
		*cancelled += s == WEFT_FUTURE_CANCELLED;
		weft_future_unref(futs[i]);
	}
}

int main(void)
{
	struct weft_future *futs[N];
	struct item items[N];
	struct weft_pool *pool;
	int err, done, failed, cancelled, bad = 0, sum = 0;
	int64_t t0;

	check(weft_pool_create(NULL, &pool), "weft_pool_create");

	/* 1. Fail fast: the others would take a minute each. */
	t0 = weft_now();
	err = fetch_all(pool, 0, 60000 * (int64_t)MS, items, futs);
	tally(futs, &done, &failed, &cancelled);
	printf("default: %s after %lld ms; %d done, %d failed, %d cancelled\n",
	       strerror(-err), (long long)((weft_now() - t0) / MS), done,
	       failed, cancelled);
	bad |= err != -EIO || done != 0 || failed != 1 || cancelled != N - 1;
	bad |= items[BROKEN].own_wait != -EDEADLK;

	/* 2. Collect: every item is fetched, then the failure is reported. */
	err = fetch_all(pool, WEFT_GROUP_COLLECT, 1 * MS, items, futs);
	tally(futs, &done, &failed, &cancelled);
	for (int i = 0; i < N; i++)
		sum += items[i].value;
	printf("collect: %s; %d done, %d failed, %d cancelled; sum %d\n",
	       strerror(-err), done, failed, cancelled, sum);
	bad |= err != -EIO || done != N - 1 || failed != 1 || cancelled != 0;
	bad |= sum != (N * (N - 1) / 2 - BROKEN) * 100;

	weft_pool_destroy(pool);
	return bad;
}
