/*
 * peers_tbb.cpp - the oneTBB peers of the fork/join benchmarks; see
 * peers_tbb.h. One tbb::task_group per inner call, no cutoff, inside a
 * tbb::task_arena that fixes the thread count.
 */
#include "peers_tbb.h"

#include <cerrno>
#include <cstdio>
#include <exception>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

struct peers_tbb_arena {
	tbb::task_arena arena;

	explicit peers_tbb_arena(unsigned threads)
		: arena(static_cast<int>(threads), 1)
	{
	}
};

namespace {

tbb::global_control *limit;

/* Opaque to the optimiser, as bench_fib.c's versions are: no recursive
 * inlining, no clones. */
#if defined(__GNUC__) && !defined(__clang__)
#define OPAQUE __attribute__((noipa))
#else
#define OPAQUE __attribute__((noinline))
#endif

/* fib: spawn fib(n - 1), call fib(n - 2), wait: as bench_fib.c's weft and
 * OpenMP versions do. */
OPAQUE uint64_t fib(unsigned n)
{
	if (n < 2)
		return n;
	uint64_t a = 0, b;
	tbb::task_group g;

	g.run([&a, n] { a = fib(n - 1); });
	b = fib(n - 2);
	g.wait();
	return a + b;
}

OPAQUE uint64_t skynet(uint64_t first, uint64_t size)
{
	if (size == 1)
		return first;
	uint64_t sums[PEERS_SKYNET_DIV];
	uint64_t step = size / PEERS_SKYNET_DIV, sum = 0;
	tbb::task_group g;

	for (unsigned i = 0; i < PEERS_SKYNET_DIV; i++)
		g.run([&sums, i, first, step] {
			sums[i] = skynet(first + i * step, step);
		});
	g.wait();
	for (unsigned i = 0; i < PEERS_SKYNET_DIV; i++)
		sum += sums[i];
	return sum;
}

int failed(const char *what, const std::exception *e)
{
	std::fprintf(stderr, "peers_tbb: %s: %s\n", what,
		     e ? e->what() : "unknown exception");
	return -ENOMEM;
}

} // namespace

extern "C" int peers_tbb_init(unsigned max_threads)
{
	try {
		delete limit;
		limit = new tbb::global_control(
			tbb::global_control::max_allowed_parallelism,
			max_threads);
	} catch (const std::exception &e) {
		return failed("global_control", &e);
	} catch (...) {
		return failed("global_control", nullptr);
	}
	return 0;
}

extern "C" void peers_tbb_fini(void)
{
	delete limit;
	limit = nullptr;
}

extern "C" int peers_tbb_arena_create(unsigned threads,
				      struct peers_tbb_arena **out)
{
	peers_tbb_arena *a = nullptr;

	*out = nullptr;
	try {
		a = new peers_tbb_arena(threads);
		/* Start its threads now, not inside the first timed run. */
		a->arena.initialize();
	} catch (const std::exception &e) {
		delete a;
		return failed("task_arena", &e);
	} catch (...) {
		delete a;
		return failed("task_arena", nullptr);
	}
	*out = a;
	return 0;
}

extern "C" void peers_tbb_arena_destroy(struct peers_tbb_arena *a)
{
	delete a;
}

extern "C" int peers_tbb_fib(struct peers_tbb_arena *a, unsigned n,
			     uint64_t *out)
{
	try {
		a->arena.execute([n, out] { *out = fib(n); });
	} catch (const std::exception &e) {
		return failed("fib", &e);
	} catch (...) {
		return failed("fib", nullptr);
	}
	return 0;
}

extern "C" int peers_tbb_skynet(struct peers_tbb_arena *a, uint64_t first,
				uint64_t leaves, uint64_t *out)
{
	try {
		a->arena.execute([first, leaves, out] {
			*out = skynet(first, leaves);
		});
	} catch (const std::exception &e) {
		return failed("skynet", &e);
	} catch (...) {
		return failed("skynet", nullptr);
	}
	return 0;
}
