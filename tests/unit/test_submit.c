/*
 * test_submit.c - weft/task.h: submitting from every kind of thread, task
 * outcomes, and argument checks.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <threads.h>

#include <weft.h>

#include "helpers.h"

static struct weft_future *const bad_future = (struct weft_future *)&bad_future;

static int add_one_task(void *arg, void **result)
{
	*result = (void *)((intptr_t)arg + 1);
	return 0;
}

Test(submit, from_main_thread_returns_value, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, add_one_task, (void *)41, &f), 0);
	cr_assert_not_null(f);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_DONE);
	cr_assert_eq(weft_future_error(f), 0);
	cr_assert_eq((intptr_t)weft_future_value(f), 42);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

struct submitter {
	struct weft_pool *pool;
	intptr_t base;
	int n;
	int submit_fail;
	int wrong_value;
};

static int submit_and_check(struct submitter *s)
{
	for (int i = 0; i < s->n; i++) {
		struct weft_future *f = NULL;
		intptr_t want = s->base + i;

		if (weft_submit(s->pool, add_one_task, (void *)want, &f) != 0) {
			s->submit_fail++;
			continue;
		}
		if (weft_future_wait(f) != 0 ||
		    (intptr_t)weft_future_value(f) != want + 1)
			s->wrong_value++;
		weft_future_unref(f);
	}
	return 0;
}

static void *pthread_submitter(void *arg)
{
	submit_and_check(arg);
	return NULL;
}

static int c11_submitter(void *arg)
{
	return submit_and_check(arg);
}

Test(submit, from_pthread, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct submitter s = { pool, 100, 50, 0, 0 };
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, pthread_submitter, &s), 0);
	pthread_join(t, NULL);
	cr_assert_eq(s.submit_fail, 0);
	cr_assert_eq(s.wrong_value, 0);
	weft_pool_destroy(pool);
}

Test(submit, from_c11_thread, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct submitter s = { pool, 200, 50, 0, 0 };
	thrd_t t;
	int rc = -1;

	cr_assert_eq(thrd_create(&t, c11_submitter, &s), thrd_success);
	cr_assert_eq(thrd_join(t, &rc), thrd_success);
	cr_assert_eq(rc, 0);
	cr_assert_eq(s.submit_fail, 0);
	cr_assert_eq(s.wrong_value, 0);
	weft_pool_destroy(pool);
}

#define CONCURRENT_THREADS 4
#define PER_THREAD 500

Test(submit, from_four_threads_concurrently, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct submitter s[CONCURRENT_THREADS];
	pthread_t t[CONCURRENT_THREADS];

	for (int i = 0; i < CONCURRENT_THREADS; i++) {
		s[i] = (struct submitter){ pool, i * 100000, PER_THREAD, 0, 0 };
		cr_assert_eq(pthread_create(&t[i], NULL, pthread_submitter, &s[i]), 0);
	}
	for (int i = 0; i < CONCURRENT_THREADS; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(s[i].submit_fail, 0, "thread %d", i);
		cr_assert_eq(s[i].wrong_value, 0, "thread %d", i);
	}
	weft_pool_destroy(pool);
}

struct detached_submitter {
	struct weft_pool *pool;
	atomic_int *count;
	int fails;
};

static void *detached_submitter_main(void *arg)
{
	struct detached_submitter *d = arg;

	for (int i = 0; i < PER_THREAD; i++)
		if (weft_submit(d->pool, count_task, d->count, NULL) != 0)
			d->fails++;
	return NULL;
}

Test(submit, detached_from_four_threads_all_run, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	atomic_int count = 0;
	struct detached_submitter d[CONCURRENT_THREADS];
	pthread_t t[CONCURRENT_THREADS];

	for (int i = 0; i < CONCURRENT_THREADS; i++) {
		d[i] = (struct detached_submitter){ pool, &count, 0 };
		cr_assert_eq(pthread_create(&t[i], NULL, detached_submitter_main,
					    &d[i]), 0);
	}
	for (int i = 0; i < CONCURRENT_THREADS; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(d[i].fails, 0);
	}
	/* destroy drains: every detached task has run when it returns. */
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&count), CONCURRENT_THREADS * PER_THREAD);
}

Test(submit, detached_task_with_null_out_still_runs, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	atomic_int count = 0;

	cr_assert_eq(weft_submit(pool, count_task, &count, NULL), 0);
	cr_assert(wait_int(&count, 1), "detached task never ran");
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&count), 1);
}

struct nested {
	struct weft_pool *pool;
	int submit_rc;
	int wait_rc;
	int worker_index;
};

static int nested_parent(void *arg, void **result)
{
	struct nested *n = arg;
	struct weft_future *child = NULL;

	n->worker_index = weft_worker_index();
	n->submit_rc = weft_submit(n->pool, add_one_task, (void *)9, &child);
	if (n->submit_rc != 0)
		return n->submit_rc;
	n->wait_rc = weft_future_wait(child);
	*result = (void *)((intptr_t)weft_future_value(child) * 10);
	weft_future_unref(child);
	return 0;
}

Test(submit, from_inside_a_task, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct nested n = { pool, -1, -1, -1 };
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, nested_parent, &n, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(n.submit_rc, 0);
	cr_assert_eq(n.wait_rc, 0);
	cr_assert_geq(n.worker_index, 0);
	cr_assert_eq(weft_future_error(f), 0);
	cr_assert_eq((intptr_t)weft_future_value(f), 100);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(submit, from_another_pools_worker, .timeout = 30)
{
	struct weft_pool *a = pool_new(1);
	struct weft_pool *b = pool_new(1);
	struct nested n = { b, -1, -1, -1 };
	struct weft_future *f = NULL;

	/* A task of pool a submits to pool b: a foreign thread for b. */
	cr_assert_eq(weft_submit(a, nested_parent, &n, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(n.submit_rc, 0);
	cr_assert_eq(n.wait_rc, 0);
	cr_assert_eq((intptr_t)weft_future_value(f), 100);
	weft_future_unref(f);
	weft_pool_destroy(a);
	weft_pool_destroy(b);
}

static int x_for_value;

/* Sets a value, then fails: a failed task has no value. */
static int set_then_fail_task(void *arg, void **result)
{
	*result = &x_for_value;
	return (int)(intptr_t)arg;
}

Test(submit, task_error_fails_the_future, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct weft_future *f = NULL;
	void *value = &x_for_value;

	cr_assert_eq(weft_submit(pool, set_then_fail_task, (void *)(intptr_t)-EIO,
				 &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_FAILED);
	cr_assert_eq(weft_future_error(f), -EIO);
	cr_assert_null(weft_future_value(f));
	cr_assert_eq(weft_future_get(f, &value), -EIO);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(submit, positive_return_counts_as_success, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, set_then_fail_task, (void *)5, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_DONE);
	cr_assert_eq(weft_future_error(f), 0);
	cr_assert_eq(weft_future_value(f), &x_for_value);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

static int result_starts_null_task(void *arg, void **result)
{
	(void)arg;
	return *result == NULL ? 0 : -EPROTO;
}

Test(submit, result_slot_starts_null, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, result_starts_null_task, NULL, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_error(f), 0);
	cr_assert_null(weft_future_value(f));
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

static void *routine_double(void *arg)
{
	return (void *)((intptr_t)arg * 2);
}

static void *routine_null(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	return NULL;
}

Test(submit, routine_return_is_the_value, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit_routine(pool, routine_double, (void *)21, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_DONE);
	cr_assert_eq((intptr_t)weft_future_value(f), 42);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(submit, routine_returning_null_succeeds, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct weft_future *f = NULL;
	atomic_int ran = 0;

	cr_assert_eq(weft_submit_routine(pool, routine_null, &ran, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_state(f), WEFT_FUTURE_DONE);
	cr_assert_eq(weft_future_error(f), 0);
	cr_assert_null(weft_future_value(f));
	cr_assert_eq(atomic_load(&ran), 1);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(submit, routine_with_null_out_still_runs, .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	atomic_int ran = 0;

	cr_assert_eq(weft_submit_routine(pool, routine_null, &ran, NULL), 0);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&ran), 1);
}

Test(submit, null_pool_is_einval, .timeout = 30)
{
	struct weft_future *f = bad_future;

	cr_assert_eq(weft_submit(NULL, value_task, NULL, &f), -EINVAL);
	cr_assert_null(f);
	f = bad_future;
	cr_assert_eq(weft_submit_routine(NULL, routine_double, NULL, &f), -EINVAL);
	cr_assert_null(f);
}

Test(submit, null_fn_is_einval, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = bad_future;

	cr_assert_eq(weft_submit(pool, NULL, NULL, &f), -EINVAL);
	cr_assert_null(f);
	f = bad_future;
	cr_assert_eq(weft_submit_routine(pool, NULL, NULL, &f), -EINVAL);
	cr_assert_null(f);
	cr_assert_eq(weft_submit(pool, NULL, NULL, NULL), -EINVAL);
	weft_pool_destroy(pool);
}
