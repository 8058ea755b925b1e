/*
 * sync_event.c - a start signal and a wait for the finish: 8 tasks wait on
 * a manual-reset event until main() sets it, and main() waits on a wait
 * group until all of them are done.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define MS 1000000 /* nanoseconds */
#define RUNNERS 8

struct race {
	struct weft_event start;
	struct weft_wgroup running;
	atomic_int arrived;
};

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int runner(void *arg, void **result)
{
	struct race *r = arg;
	int err;

	(void)result;
	err = weft_event_wait(&r->start); /* suspends until the start */
	if (err == 0)
		atomic_fetch_add(&r->arrived, 1);
	weft_wgroup_done(&r->running); /* the last use of r */
	return err;
}

int main(void)
{
	struct weft_pool *pool;
	struct race r = {.arrived = 0};
	int err;

	check(weft_pool_create(NULL, &pool), "weft_pool_create");
	/* Flags 0: a manual-reset event, which stays set once set. */
	check(weft_event_init(&r.start, 0), "weft_event_init");
	check(weft_wgroup_init(&r.running), "weft_wgroup_init");

	check(weft_wgroup_add(&r.running, RUNNERS), "weft_wgroup_add");
	for (int i = 0; i < RUNNERS; i++)
		check(weft_submit(pool, runner, &r, NULL), "weft_submit");

	/* Nobody finishes before the start. */
	err = weft_wgroup_wait_until(&r.running, weft_now() + 20 * MS);
	printf("before the start: %s, %lld still running\n", strerror(-err),
	       (long long)weft_wgroup_count(&r.running));

	check(weft_event_set(&r.start), "weft_event_set"); /* all go */
	check(weft_wgroup_wait(&r.running), "weft_wgroup_wait");
	printf("after the start: %d arrived\n", atomic_load(&r.arrived));

	check(weft_wgroup_fini(&r.running), "weft_wgroup_fini");
	check(weft_event_fini(&r.start), "weft_event_fini");
	weft_pool_destroy(pool);
	return err != -ETIMEDOUT || atomic_load(&r.arrived) != RUNNERS;
}
