/*
 * async_stack.c - fiber stack sizes.
 *
 * A pool with small stacks (64 KiB) runs a thousand light tasks that all
 * sleep at the same time, each suspended on a stack of its own. One deeply
 * recursive task asks for a 16 MiB stack with weft_submit_opts() and runs
 * on a fiber mapped for it. Stack memory is committed only where it is
 * touched, so the big stack costs address space, not memory, until it is
 * used.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define MS 1000000 /* nanoseconds */
#define LIGHT 1000
#define DEPTH 10000 /* about 300 bytes a level: 3 MiB of stack */

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int light(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return weft_sleep(10 * MS); /* all of them asleep at once */
}

/* A recursive descent, say: one frame per level, each still in use when
 * the level below returns. */
static __attribute__((noinline)) unsigned nest(unsigned depth)
{
	volatile unsigned char pad[256];
	unsigned below;

	pad[0] = (unsigned char)depth;
	if (depth == 0)
		return 0;
	below = nest(depth - 1);
	return below + (pad[0] == (unsigned char)depth); /* 1 if intact */
}

static int deep(void *arg, void **result)
{
	*result = (void *)(uintptr_t)nest((unsigned)(uintptr_t)arg);
	return 0;
}

int main(void)
{
	struct weft_pool_options opts;
	struct weft_task_options big = { .stack_size = 16u << 20 };
	struct weft_future *fs[LIGHT], *fd;
	struct weft_pool *pool;
	int bad = 0;
	void *v;

	weft_pool_options_init(&opts);
	opts.stack_size = 64 * 1024; /* for every task of this pool */
	check(weft_pool_create(&opts, &pool), "weft_pool_create");

	for (int i = 0; i < LIGHT; i++)
		check(weft_submit(pool, light, NULL, &fs[i]), "weft_submit");
	/* This one task gets a 16 MiB stack. */
	check(weft_submit_opts(pool, deep, (void *)(uintptr_t)DEPTH, &big, &fd),
	      "weft_submit_opts");

	for (int i = 0; i < LIGHT; i++) {
		bad |= weft_future_get(fs[i], NULL) != 0;
		weft_future_unref(fs[i]);
	}
	check(weft_future_get(fd, &v), "deep");
	weft_future_unref(fd);
	weft_pool_destroy(pool);

	printf("%d light tasks on 64 KiB stacks; recursion %zu deep on 16 MiB\n",
	       LIGHT, (size_t)(uintptr_t)v);
	return bad || (uintptr_t)v != DEPTH;
}
