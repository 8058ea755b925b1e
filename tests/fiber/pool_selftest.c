/*
 * pool_selftest.c - the whole library through its public API, as a plain
 * program (no Criterion), so that it runs where the unit tests cannot:
 * under qemu-user for AArch64 (.ci/aarch64). Links the shared library, as
 * a user's program does.
 *
 * What it does, with more workers than this machine has CPUs so that they
 * contend: many independent tasks submitted from main; a recursive task
 * tree whose tasks submit and wait for their children (a task that waits
 * is where a worker switches context once tasks run on fibers); a
 * parallel_for; a when_all over failing and succeeding futures. Every
 * value is checked.
 *
 * Exit status: 0 pass, 1 fail.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define WORKERS 4
#define FLAT_TASKS 5000
#define FIB_N 16
#define RANGE_N 100000

static struct weft_pool *pool;
static int failures;

#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (!(cond)) {                                        \
			fprintf(stderr, "pool_selftest: FAIL %s:%d: ", \
				__FILE__, __LINE__);                  \
			fprintf(stderr, __VA_ARGS__);                 \
			fputc('\n', stderr);                          \
			failures++;                                   \
		}                                                     \
	} while (0)

static int square(void *arg, void **result)
{
	uintptr_t x = (uintptr_t)arg;

	*result = (void *)(x * x);
	return 0;
}

/* fib(n) with one submitted task per call above the leaves; each task
 * waits for the child it submitted. */
static int fib_task(void *arg, void **result)
{
	uintptr_t n = (uintptr_t)arg;
	struct weft_future *child;
	void *a = NULL, *b = NULL;
	int err;

	if (n < 2) {
		*result = (void *)n;
		return 0;
	}
	err = weft_submit(pool, fib_task, (void *)(n - 1), &child);
	if (err)
		return err;
	err = fib_task((void *)(n - 2), &b);
	if (err == 0)
		err = weft_future_get(child, &a);
	else
		weft_future_wait(child);
	weft_future_unref(child);
	if (err)
		return err;
	*result = (void *)((uintptr_t)a + (uintptr_t)b);
	return 0;
}

static int add_range(size_t begin, size_t end, void *arg)
{
	_Atomic uint64_t *sum = arg;
	uint64_t s = 0;

	for (size_t i = begin; i < end; i++)
		s += i;
	*sum += s;
	return 0;
}

static int fail_odd(void *arg, void **result)
{
	uintptr_t i = (uintptr_t)arg;

	if (i % 2)
		return -ERANGE;
	*result = arg;
	return 0;
}

static void flat_tasks(void)
{
	struct weft_future **f = calloc(FLAT_TASKS, sizeof(*f));
	int err;

	CHECK(f != NULL, "calloc");
	if (!f)
		return;
	for (uintptr_t i = 0; i < FLAT_TASKS; i++) {
		err = weft_submit(pool, square, (void *)i, &f[i]);
		CHECK(err == 0, "weft_submit %lu: %s", (unsigned long)i,
		      strerror(-err));
	}
	for (uintptr_t i = 0; i < FLAT_TASKS; i++) {
		void *v = NULL;

		if (!f[i])
			continue;
		err = weft_future_get(f[i], &v);
		CHECK(err == 0 && (uintptr_t)v == i * i,
		      "task %lu: error %d value %lu", (unsigned long)i, err,
		      (unsigned long)(uintptr_t)v);
		weft_future_unref(f[i]);
	}
	free(f);
	printf("pool_selftest: %d independent tasks\n", FLAT_TASKS);
}

static void task_tree(void)
{
	static const uintptr_t fib[] = { 0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55,
					 89, 144, 233, 377, 610, 987 };
	struct weft_future *f;
	void *v = NULL;
	int err;

	err = weft_submit(pool, fib_task, (void *)(uintptr_t)FIB_N, &f);
	CHECK(err == 0, "weft_submit fib: %s", strerror(-err));
	if (err)
		return;
	err = weft_future_get(f, &v);
	CHECK(err == 0 && (uintptr_t)v == fib[FIB_N],
	      "fib(%d): error %d value %lu, expected %lu", FIB_N, err,
	      (unsigned long)(uintptr_t)v, (unsigned long)fib[FIB_N]);
	weft_future_unref(f);
	printf("pool_selftest: fib(%d) as a tree of tasks that wait\n", FIB_N);
}

static void range(void)
{
	_Atomic uint64_t sum = 0;
	uint64_t want = (uint64_t)RANGE_N * (RANGE_N - 1) / 2;
	int err;

	err = weft_parallel_for(pool, 0, RANGE_N, 0, add_range, &sum);
	CHECK(err == 0 && sum == want, "parallel_for: error %d sum %llu",
	      err, (unsigned long long)sum);
	printf("pool_selftest: parallel_for over %d indices\n", RANGE_N);
}

static void gather(void)
{
	struct weft_future *f[8], *all;
	int err;

	for (uintptr_t i = 0; i < 8; i++) {
		err = weft_submit(pool, fail_odd, (void *)i, &f[i]);
		CHECK(err == 0, "weft_submit: %s", strerror(-err));
		if (err)
			return;
	}
	err = weft_when_all(f, 8, &all);
	CHECK(err == 0, "weft_when_all: %s", strerror(-err));
	if (err == 0) {
		err = weft_future_get(all, NULL);
		CHECK(err == -ERANGE, "when_all completed with %d, expected %d",
		      err, -ERANGE);
		weft_future_unref(all);
	}
	for (uintptr_t i = 0; i < 8; i++) {
		void *v = NULL;

		err = weft_future_get(f[i], &v);
		CHECK(i % 2 ? err == -ERANGE : err == 0 && v == (void *)i,
		      "future %lu: error %d", (unsigned long)i, err);
		weft_future_unref(f[i]);
	}
	printf("pool_selftest: when_all over 8 futures, 4 failing\n");
}

int main(void)
{
	struct weft_pool_options o;
	int err;

	weft_pool_options_init(&o);
	o.workers = WORKERS;
	err = weft_pool_create(&o, &pool);
	if (err) {
		fprintf(stderr, "pool_selftest: weft_pool_create: %s\n",
			strerror(-err));
		return 1;
	}
	printf("pool_selftest: %u workers\n", weft_pool_workers(pool));
	flat_tasks();
	task_tree();
	range();
	gather();
	weft_pool_destroy(pool);
	printf("pool_selftest: %s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}
