/*
 * then.c - a continuation and completion callbacks.
 *
 * weft_future_then() runs a task on a pool once a future completes;
 * weft_future_on_complete() calls a short function on whichever thread
 * completes the future, or at once on the caller's if it already has.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int parse(void *arg, void **result)
{
	*result = (void *)(uintptr_t)strtoul(arg, NULL, 10);
	return 0;
}

/* Runs as a task once @antecedent has completed, whatever its outcome. */
static int twice(struct weft_future *antecedent, void *arg, void **result)
{
	void *v;
	int err = weft_future_try_get(antecedent, &v); /* complete: no wait */

	(void)arg;
	if (err < 0)
		return err; /* pass the failure on */
	*result = (void *)((uintptr_t)v * 2);
	return 0;
}

/* Short, never waits; @f is live for the call only. */
static void where(struct weft_future *f, void *arg)
{
	(void)f;
	*(int *)arg = weft_worker_index(); /* -1: not on a worker */
}

int main(void)
{
	struct weft_pool *pool;
	struct weft_future *f, *g;
	int on_g = -2, on_f = -2, err;
	void *v;

	check(weft_pool_create(NULL, &pool), "weft_pool_create");
	check(weft_submit(pool, parse, "21", &f), "weft_submit");
	check(weft_future_then(pool, f, twice, NULL, &g), "weft_future_then");
	check(weft_future_on_complete(g, where, &on_g), "on_complete");

	err = weft_future_get(g, &v);
	printf("twice(parse(\"21\")) = %zu (%s)\n", (size_t)(uintptr_t)v,
	       strerror(-err));
	/* f completed before g: this callback runs now, on main(). */
	check(weft_future_on_complete(f, where, &on_f), "on_complete");

	weft_future_unref(g);
	weft_future_unref(f);
	weft_pool_destroy(pool); /* joins the workers: on_g is settled now */
	printf("g's callback ran on worker %d, f's on %d\n", on_g, on_f);
	return err != 0 || (uintptr_t)v != 42 || on_f != -1 || on_g < -1;
}
