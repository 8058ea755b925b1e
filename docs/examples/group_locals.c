/*
 * group_locals.c - a request id carried through sub-tasks with task-local
 * storage.
 *
 * main() sets the service name: outside a task, values belong to the
 * thread, and each task it submits starts with a copy. handle() sets the
 * request id and runs its steps in a group; each step starts with a copy
 * of handle()'s values, wherever it runs and however often it moves, and
 * what a step sets stays its own. A child forked with weft_spawn() runs as
 * part of its parent task and reads the parent's own values.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define MS 1000000 /* nanoseconds */
#define REQUESTS 3
#define STEPS 3

static struct weft_local_key service, request_id, step_name;
static const char *const ids[REQUESTS] = { "req-1", "req-2", "req-3" };
static const char *const names[STEPS] = { "auth", "load", "render" };
static struct weft_pool *pool;

struct step {
	const char *id; /* what the step expects to find */
	int index;
};

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

/* Forked by a step: part of that step's task, so it sees its values. */
static int audit(void *arg, void **result)
{
	struct step *s = arg;

	(void)result;
	printf("[%s %s] %s: audited\n", (const char *)weft_local_get(&service),
	       (const char *)weft_local_get(&request_id),
	       (const char *)weft_local_get(&step_name));
	if (weft_local_get(&request_id) != s->id ||
	    weft_local_get(&step_name) != names[s->index])
		return -EPROTO;
	return 0;
}

static int step(void *arg, void **result)
{
	struct step *s = arg;
	struct weft_spawn sp;
	int err;

	(void)result;
	/* This task's own value: handle() and the other steps never see it. */
	err = weft_local_set(&step_name, (void *)names[s->index]);
	if (err < 0)
		return err;
	err = weft_sleep(1 * MS); /* may resume on another worker */
	if (err < 0)
		return err;
	if (weft_local_get(&request_id) != s->id) /* still this request's */
		return -EPROTO;
	weft_spawn(&sp, audit, s);
	return weft_join(&sp, NULL);
}

static int handle(void *arg, void **result)
{
	struct step steps[STEPS];
	struct weft_group *g;
	int err;

	(void)result;
	if (weft_local_get(&service) == NULL) /* a copy of main()'s */
		return -EPROTO;
	err = weft_local_set(&request_id, arg); /* before the steps start */
	if (err < 0)
		return err;
	err = weft_group_create(pool, 0, WEFT_FOREVER, &g);
	if (err < 0)
		return err;
	for (int i = 0; i < STEPS && err == 0; i++) {
		steps[i] = (struct step){ .id = arg, .index = i };
		err = weft_group_spawn(g, step, &steps[i], NULL);
	}
	if (err == 0)
		err = weft_group_wait(g, WEFT_FOREVER);
	weft_group_destroy(g); /* after a failed spawn: cancels and joins */
	if (err == 0 && weft_local_get(&step_name) != NULL)
		err = -EPROTO; /* a step's own value leaked back */
	return err;
}

int main(void)
{
	struct weft_future *f[REQUESTS];
	int bad = 0;

	check(weft_local_set(&service, "shop"), "weft_local_set");
	check(weft_pool_create(NULL, &pool), "weft_pool_create");
	for (int i = 0; i < REQUESTS; i++)
		check(weft_submit(pool, handle, (void *)ids[i], &f[i]),
		      "weft_submit");
	for (int i = 0; i < REQUESTS; i++) {
		int err = weft_future_get(f[i], NULL);

		if (err < 0) {
			fprintf(stderr, "%s: %s\n", ids[i], strerror(-err));
			bad = 1;
		}
		weft_future_unref(f[i]);
	}
	weft_pool_destroy(pool);
	/* main()'s own table: its value, and no request id. */
	bad |= strcmp(weft_local_get(&service), "shop") != 0;
	bad |= weft_local_get(&request_id) != NULL;
	return bad;
}
