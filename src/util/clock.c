/*
 * util/clock.c - the monotonic clock every weft deadline is measured on, and
 * the version query.
 */
#include <time.h>

#include "weft/common.h"

WEFT_API int64_t weft_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

WEFT_API int weft_version(void)
{
	return WEFT_VERSION_MAJOR * 10000 + WEFT_VERSION_MINOR * 100 +
	       WEFT_VERSION_PATCH;
}
