/*
 * sync_mutex.c - a mutex and a condition variable shared by tasks and by
 * main(), a plain thread.
 *
 * 100 tasks add into one total under a weft_mutex, and each counts itself
 * as finished and signals a condition variable; main() waits on it until
 * all have. The tasks suspend when the mutex is taken (their two workers
 * go on with other tasks); main() blocks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define TASKS 100
#define TERMS 1000

struct tally {
	struct weft_mutex mu;
	struct weft_cond all_done; /* signalled as tasks finish */
	long total;		   /* under mu */
	int finished;		   /* under mu */
};

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int add_up(void *arg, void **result)
{
	struct tally *t = arg;
	int err;

	(void)result;
	for (long i = 1; i <= TERMS; i++) {
		err = weft_mutex_lock(&t->mu);
		if (err)
			return err; /* -ECANCELED: not held, do not unlock */
		t->total += i;
		if (i % 250 == 0)
			weft_yield(); /* holding it across a wait is fine */
		weft_mutex_unlock(&t->mu);
	}
	err = weft_mutex_lock(&t->mu);
	if (err)
		return err;
	t->finished++;
	weft_cond_signal(&t->all_done);
	weft_mutex_unlock(&t->mu);
	return 0;
}

int main(void)
{
	struct weft_pool_options opts;
	struct weft_pool *pool;
	struct tally t = {.total = 0, .finished = 0};

	weft_pool_options_init(&opts);
	opts.workers = 2;
	check(weft_pool_create(&opts, &pool), "weft_pool_create");
	check(weft_mutex_init(&t.mu), "weft_mutex_init");
	check(weft_cond_init(&t.all_done), "weft_cond_init");
	for (int i = 0; i < TASKS; i++)
		check(weft_submit(pool, add_up, &t, NULL), "weft_submit");

	/* main() is not a task: these calls block the thread. */
	check(weft_mutex_lock(&t.mu), "weft_mutex_lock");
	while (t.finished < TASKS)
		weft_cond_wait(&t.all_done, &t.mu); /* returns holding mu */
	printf("%d tasks added up %ld\n", t.finished, t.total);
	weft_mutex_unlock(&t.mu);

	weft_pool_destroy(pool);
	check(weft_cond_fini(&t.all_done), "weft_cond_fini");
	check(weft_mutex_fini(&t.mu), "weft_mutex_fini");
	return t.total != (long)TASKS * TERMS * (TERMS + 1) / 2;
}
