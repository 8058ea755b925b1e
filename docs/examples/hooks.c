/*
 * hooks.c - worker names, start/stop hooks and weft_worker_index().
 *
 * The start hook runs on each new worker before it runs any task (pin it,
 * set up per-thread state); weft_pool_create() returns only after all of
 * them have run. The stop hook runs after the worker's last task.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getname_np */
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

static atomic_uint started, stopped;

static void on_start(unsigned index, void *hook_arg)
{
	(void)index;
	(void)hook_arg;
	atomic_fetch_add(&started, 1);
}

static void on_stop(unsigned index, void *hook_arg)
{
	(void)index;
	(void)hook_arg;
	atomic_fetch_add(&stopped, 1);
}

/* Value: the worker's index; the thread's name is "<name>-<index>". */
static int where(void *arg, void **result)
{
	char name[16] = "";

	(void)arg;
	pthread_getname_np(pthread_self(), name, sizeof(name));
	printf("running on worker %d, thread \"%s\"\n", weft_worker_index(), name);
	*result = (void *)(intptr_t)weft_worker_index();
	return 0;
}

int main(void)
{
	struct weft_pool_options opts;
	struct weft_pool *pool;
	struct weft_future *f = NULL;
	unsigned workers;
	void *v = NULL;
	int bad = 0;

	weft_pool_options_init(&opts); /* always first: defaults for new fields */
	opts.workers = 2;
	opts.name = "hooks";
	opts.on_worker_start = on_start;
	opts.on_worker_stop = on_stop;
	if (weft_pool_create(&opts, &pool) < 0)
		return 1;
	workers = weft_pool_workers(pool);
	bad |= atomic_load(&started) != workers; /* all ran before create returned */
	bad |= weft_worker_index() != -1;        /* main is not a worker */

	if (weft_submit(pool, where, NULL, &f) < 0 || weft_future_get(f, &v) < 0)
		bad = 1;
	bad |= (intptr_t)v < 0 || (intptr_t)v >= (intptr_t)workers;
	weft_future_unref(f);

	weft_pool_destroy(pool);
	printf("%u workers, %u start hooks, %u stop hooks; this machine: %u CPUs\n",
	       workers, atomic_load(&started), atomic_load(&stopped),
	       weft_cpu_count());
	bad |= atomic_load(&stopped) != workers;
	return bad;
}
