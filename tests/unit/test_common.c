/*
 * test_common.c - weft/common.h: the clock every deadline uses, and the
 * version.
 */
#include <criterion/criterion.h>
#include <time.h>

#include <weft.h>

#include "helpers.h"

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

Test(common, now_reads_clock_monotonic)
{
	int64_t before = mono_ns();
	int64_t now = weft_now();
	int64_t after = mono_ns();

	cr_assert_geq(now, before);
	cr_assert_leq(now, after);
}

Test(common, now_advances_with_time)
{
	int64_t t0 = weft_now();

	sleep_ms(5);
	cr_assert_geq(weft_now() - t0, 5 * 1000 * 1000LL);
}

Test(common, version_matches_header_macros)
{
	cr_assert_eq(weft_version(), WEFT_VERSION_MAJOR * 10000 +
					     WEFT_VERSION_MINOR * 100 +
					     WEFT_VERSION_PATCH);
}
