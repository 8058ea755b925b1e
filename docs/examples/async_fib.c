/*
 * async_fib.c - fork/join with weft_spawn() and weft_join().
 *
 * fib(n) forks fib(n - 1) as a child and computes fib(n - 2) itself. If no
 * idle worker has stolen the child by the time the parent joins it, the
 * join runs it as a plain call. sum() forks one child per quarter of an
 * array and joins them in the reverse order. Nothing here allocates
 * memory: each child's record is a struct weft_spawn on its parent's stack.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define N 27
#define LEN 50000
#define PARTS 4

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int fib(void *arg, void **result)
{
	uintptr_t n = (uintptr_t)arg;
	struct weft_spawn sp; /* must stay put until joined: on this stack */
	void *a, *b;

	if (n < 2) {
		*result = (void *)n;
		return 0;
	}
	weft_spawn(&sp, fib, (void *)(n - 1)); /* an idle worker may steal it */
	fib((void *)(n - 2), &b);              /* meanwhile, a plain call */
	weft_join(&sp, &a);                    /* runs it here if not stolen */
	*result = (void *)((uintptr_t)a + (uintptr_t)b);
	return 0;
}

struct range {
	const uint32_t *x;
	size_t n;
	uint64_t sum;
};

static int sum_range(void *arg, void **result)
{
	struct range *r = arg;

	(void)result;
	r->sum = 0;
	for (size_t i = 0; i < r->n; i++)
		r->sum += r->x[i];
	return 0;
}

/* Several children: join them in the reverse order of their spawns. */
static int sum(void *arg, void **result)
{
	const uint32_t *x = arg;
	struct weft_spawn sp[PARTS];
	struct range part[PARTS];
	uint64_t total = 0;
	int err = 0;

	for (int i = 0; i < PARTS; i++) {
		part[i].x = x + i * (LEN / PARTS);
		part[i].n = i < PARTS - 1 ? LEN / PARTS : LEN - i * (LEN / PARTS);
		weft_spawn(&sp[i], sum_range, &part[i]);
	}
	for (int i = PARTS - 1; i >= 0; i--) {
		int e = weft_join(&sp[i], NULL); /* every child, even on error */

		if (e < 0 && err == 0)
			err = e;
		total += part[i].sum;
	}
	*result = (void *)(uintptr_t)total;
	return err;
}

int main(void)
{
	static uint32_t x[LEN];
	struct weft_pool *pool;
	struct weft_future *f, *g;
	uintptr_t want = 0, next = 1, expect_sum = 0;
	void *v, *s;

	for (int i = 0; i < N; i++) { /* fib(N), the slow way's answer */
		uintptr_t t = want + next;

		want = next;
		next = t;
	}
	for (size_t i = 0; i < LEN; i++) {
		x[i] = (uint32_t)i;
		expect_sum += i;
	}

	check(weft_pool_create(NULL, &pool), "weft_pool_create");
	check(weft_submit(pool, fib, (void *)(uintptr_t)N, &f), "weft_submit");
	check(weft_submit(pool, sum, x, &g), "weft_submit");
	check(weft_future_get(f, &v), "fib");
	check(weft_future_get(g, &s), "sum");
	weft_future_unref(f);
	weft_future_unref(g);
	weft_pool_destroy(pool);

	printf("fib(%d) = %zu, sum = %zu\n", N, (size_t)(uintptr_t)v,
	       (size_t)(uintptr_t)s);
	return (uintptr_t)v != want || (uintptr_t)s != expect_sum;
}
