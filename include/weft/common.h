/*
 * weft/common.h - export macros, version and time helpers shared by every
 * weft header.
 *
 * Conventions that hold for the whole API (see docs/executor.md):
 *  - fallible calls return int: >= 0 on success, -errno on failure; weft
 *    never sets errno;
 *  - deadlines are absolute int64_t nanoseconds on CLOCK_MONOTONIC, the
 *    clock weft_now() reads; WEFT_FOREVER means "no deadline";
 *  - objects are opaque and are freed by the _destroy or _unref of the
 *    module that made them; both accept NULL.
 */
#ifndef WEFT_COMMON_H
#define WEFT_COMMON_H

#include <stdint.h>

#if defined(WEFT_BUILDING) && defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#ifdef __cplusplus
#define WEFT_BEGIN_DECLS extern "C" {
#define WEFT_END_DECLS }
#else
#define WEFT_BEGIN_DECLS
#define WEFT_END_DECLS
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

/** A deadline that never passes. */
#define WEFT_FOREVER INT64_MAX

WEFT_BEGIN_DECLS

/**
 * weft_now() - the current time on CLOCK_MONOTONIC, in nanoseconds.
 *
 * The clock every weft deadline is measured on: a wait that must give up
 * after 10 ms takes weft_now() + 10000000. Any thread; never blocks.
 */
WEFT_API int64_t weft_now(void);

/**
 * weft_version() - the library's version as MAJOR * 10000 + MINOR * 100 +
 * PATCH, to compare with the WEFT_VERSION_* macros a program was built with.
 */
WEFT_API int weft_version(void);

WEFT_END_DECLS

#endif /* WEFT_COMMON_H */
