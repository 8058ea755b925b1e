/*
 * group_deadline.c - a task group with a deadline.
 *
 * The group has half a second. Its quick children finish in time; the
 * slow ones are still asleep at the deadline, are cancelled, and the wait
 * returns -ETIMEDOUT. A wait with a deadline of its own gives up without
 * touching the group: the children go on, and the group takes new ones.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define MS 1000000 /* nanoseconds */
#define QUICK (1 * MS)
#define SLOW (60000 * (int64_t)MS)
#define EACH 4

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int nap(void *arg, void **result)
{
	(void)result;
	return weft_sleep((int64_t)(intptr_t)arg); /* -ECANCELED if cut */
}

int main(void)
{
	struct weft_future *futs[2 * EACH + 1];
	struct weft_group *g;
	struct weft_pool *pool;
	int own, err, late, done = 0, cancelled = 0, bad = 0;

	check(weft_pool_create(NULL, &pool), "weft_pool_create");
	check(weft_group_create(pool, 0, weft_now() + 500 * MS, &g),
	      "weft_group_create");
	for (int i = 0; i < 2 * EACH; i++)
		check(weft_group_spawn(g, nap,
				       (void *)(intptr_t)(i < EACH ? QUICK : SLOW),
				       &futs[i]),
		      "weft_group_spawn");

	/* The wait's own deadline: -ETIMEDOUT, and the group goes on. */
	own = weft_group_wait(g, weft_now() + 1 * MS);
	check(weft_group_spawn(g, nap, (void *)(intptr_t)QUICK,
			       &futs[2 * EACH]),
	      "weft_group_spawn after the wait's own deadline");

	/* The group's deadline: the slow children are cancelled. */
	err = weft_group_wait(g, WEFT_FOREVER);
	late = weft_group_spawn(g, nap, (void *)(intptr_t)QUICK, NULL);

	for (int i = 0; i < 2 * EACH + 1; i++) {
		done += weft_future_state(futs[i]) == WEFT_FUTURE_DONE;
		cancelled += weft_future_state(futs[i]) == WEFT_FUTURE_CANCELLED;
		weft_future_unref(futs[i]);
	}
	printf("own deadline: %s; group deadline: %s; %d done, %d cancelled; "
	       "a late spawn: %s\n",
	       strerror(-own), strerror(-err), done, cancelled,
	       strerror(-late));
	bad |= own != -ETIMEDOUT || err != -ETIMEDOUT || late != -ECANCELED;
	bad |= done != EACH + 1 || cancelled != EACH;

	weft_group_destroy(g);
	weft_pool_destroy(pool);
	return bad;
}
