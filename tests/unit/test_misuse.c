/*
 * test_misuse.c - misuse that cannot be an error return aborts with a
 * message (Criterion death tests: the test passes only if the process dies
 * of SIGABRT).
 */
#include <criterion/criterion.h>
#include <signal.h>

#include <weft.h>

#include "weft_config.h"
#include "helpers.h"

#if WEFT_DEBUG_CHECKS
/*
 * Double unref is only detected by builds with debug checks
 * (-Ddebug_checks, on by default in debug builds). Without them it is plain
 * undefined behaviour, so the test is compiled out rather than left to pass
 * or fail by chance.
 */
Test(misuse, double_unref_aborts, .signal = SIGABRT, .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, value_task, NULL, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	weft_pool_destroy(pool);
	weft_future_unref(f);
	weft_future_unref(f);
}
#endif

static int destroy_own_pool(void *arg, void **result)
{
	(void)result;
	weft_pool_destroy(arg);
	return 0;
}

Test(misuse, pool_destroy_from_own_task_aborts, .signal = SIGABRT,
     .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, destroy_own_pool, pool, &f), 0);
	weft_future_wait(f);
	/* Not reached when the task aborts the process. */
	weft_future_unref(f);
	weft_pool_destroy(pool);
}
