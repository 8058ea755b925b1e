/* hello.c - submit one task from main() and wait for its value. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>

static int square(void *arg, void **result)
{
	uintptr_t x = (uintptr_t)arg;

	*result = (void *)(x * x);
	return 0; /* or a negative errno code to fail the task */
}

int main(void)
{
	struct weft_pool *pool;
	struct weft_future *f;
	void *value;
	int err;

	err = weft_pool_create(NULL, &pool); /* one worker per usable CPU */
	if (err < 0) {
		fprintf(stderr, "weft_pool_create: %s\n", strerror(-err));
		return 1;
	}
	err = weft_submit(pool, square, (void *)(uintptr_t)7, &f);
	if (err == 0) {
		err = weft_future_get(f, &value); /* blocks main() until done */
		weft_future_unref(f);             /* drop our only reference */
	}
	weft_pool_destroy(pool); /* drains, then joins the workers */
	if (err < 0) {
		fprintf(stderr, "square: %s\n", strerror(-err));
		return 1;
	}
	printf("7 * 7 = %zu\n", (size_t)(uintptr_t)value);
	return (uintptr_t)value == 49 ? 0 : 1;
}
