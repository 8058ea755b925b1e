/*
 * map.c - data parallelism: weft_parallel_for() fills an array in place,
 * weft_map() computes a second one from it in input order, and a body that
 * fails stops the loop with its code.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define N 1000000

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

/* Called on disjoint ranges, concurrently; the pool picks their sizes. */
static int fill(size_t begin, size_t end, void *arg)
{
	double *x = arg;

	for (size_t i = begin; i < end; i++)
		x[i] = (double)i / N;
	return 0;
}

/* A block of @count consecutive items: in[0..count) to out[0..count). */
static int scale(const void *in, void *out, size_t count, void *arg)
{
	const double *x = in, *factor = arg;
	double *y = out;

	for (size_t i = 0; i < count; i++)
		y[i] = x[i] * *factor;
	return 0;
}

static int reject_negative(const void *in, void *out, size_t count, void *arg)
{
	const double *x = in;
	double *y = out;

	(void)arg;
	for (size_t i = 0; i < count; i++) {
		if (x[i] < 0)
			return -EDOM; /* stops the map: unstarted blocks are skipped */
		y[i] = x[i];
	}
	return 0;
}

int main(void)
{
	double *x = malloc(N * sizeof(*x)), *y = malloc(N * sizeof(*y));
	double factor = 3.0;
	struct weft_pool *pool;
	int bad = 0, err;

	if (!x || !y)
		return 1;
	check(weft_pool_create(NULL, &pool), "weft_pool_create");

	/* chunk 0: lazy binary splitting sizes the pieces. */
	check(weft_parallel_for(pool, 0, N, 0, fill, x), "weft_parallel_for");
	/* y[i] = scale(x[i]); chunk 4096 fixes the unit of work instead. */
	check(weft_map(pool, x, sizeof(*x), y, sizeof(*y), N, 4096, scale,
		       &factor), "weft_map");
	for (size_t i = 0; i < N; i++)
		bad |= y[i] != x[i] * factor;

	x[N / 2] = -1.0;
	err = weft_map(pool, x, sizeof(*x), y, sizeof(*y), N, 0,
		       reject_negative, NULL);
	printf("map: %s; with a negative item: %s\n",
	       bad ? "WRONG" : "ok", strerror(-err));
	bad |= err != -EDOM;

	weft_pool_destroy(pool);
	free(x);
	free(y);
	return bad;
}
