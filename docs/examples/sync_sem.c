/*
 * sync_sem.c - a semaphore that lets at most 3 of 12 tasks into a section
 * at once (say, 3 connections to share), and a deadline on the wait.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define MS 1000000 /* nanoseconds */
#define TASKS 12
#define SLOTS 3

static struct weft_sem slots;
static atomic_int inside, most_inside;

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int fetch(void *arg, void **result)
{
	int err = weft_sem_acquire(&slots); /* suspends while all 3 are taken */
	int now, most;

	(void)arg;
	(void)result;
	if (err)
		return err;
	now = atomic_fetch_add(&inside, 1) + 1;
	most = atomic_load(&most_inside);
	while (now > most &&
	       !atomic_compare_exchange_weak(&most_inside, &most, now))
		;
	weft_sleep(5 * MS); /* the work: other tasks run meanwhile */
	atomic_fetch_sub(&inside, 1);
	return weft_sem_release(&slots, 1);
}

int main(void)
{
	struct weft_pool *pool;
	struct weft_future *f[TASKS];
	int err;

	check(weft_pool_create(NULL, &pool), "weft_pool_create");
	check(weft_sem_init(&slots, SLOTS), "weft_sem_init");
	for (int i = 0; i < TASKS; i++)
		check(weft_submit(pool, fetch, NULL, &f[i]), "weft_submit");
	for (int i = 0; i < TASKS; i++) {
		check(weft_future_get(f[i], NULL), "fetch");
		weft_future_unref(f[i]);
	}
	printf("%d tasks, at most %d inside at once\n", TASKS,
	       atomic_load(&most_inside));

	/* Take every slot, then ask for one more with a deadline. */
	for (int i = 0; i < SLOTS; i++)
		check(weft_sem_try_acquire(&slots), "weft_sem_try_acquire");
	err = weft_sem_acquire_until(&slots, weft_now() + 10 * MS);
	printf("a fourth slot within 10 ms: %s\n", strerror(-err));
	check(weft_sem_release(&slots, SLOTS), "weft_sem_release");

	weft_pool_destroy(pool);
	check(weft_sem_fini(&slots), "weft_sem_fini");
	return atomic_load(&most_inside) > SLOTS || err != -ETIMEDOUT;
}
