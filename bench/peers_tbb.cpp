/*
 * peers_tbb.cpp - the oneTBB peers of bench_fib, bench_submit and
 * bench_map; see peers_tbb.h. Fork/join: one tbb::task_group per inner
 * call, no cutoff. Submission: task_arena::enqueue(). Map:
 * tbb::parallel_for. All inside a tbb::task_arena that fixes the thread
 * count.
 */
#include "peers_tbb.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <exception>

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

struct peers_tbb_arena {
	tbb::task_arena arena;

	/* @reserved: slots kept for outside threads that join the arena
	 * (execute()); 1 for the fork/join and map runs, whose caller works
	 * in the arena as OpenMP's master thread does in its team. */
	peers_tbb_arena(unsigned threads, unsigned reserved)
		: arena(static_cast<int>(threads), reserved)
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

static int arena_create(unsigned threads, unsigned reserved,
			struct peers_tbb_arena **out)
{
	peers_tbb_arena *a = nullptr;

	*out = nullptr;
	try {
		a = new peers_tbb_arena(threads, reserved);
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

extern "C" int peers_tbb_arena_create(unsigned threads,
				      struct peers_tbb_arena **out)
{
	return arena_create(threads, 1, out);
}

extern "C" int peers_tbb_arena_create_workers(unsigned workers,
					      struct peers_tbb_arena **out)
{
	/* No reserved slot: an outside thread that enqueues never joins, and
	 * a slot kept for one would count against the arena's concurrency,
	 * admitting only @workers - 1 worker threads. */
	return arena_create(workers, 0, out);
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

extern "C" int peers_tbb_enqueue(struct peers_tbb_arena *a, peers_tbb_fn fn,
				 void *arg)
{
	/*
	 * task_arena::enqueue() is oneTBB's way to hand work to an arena from
	 * a thread that does not belong to it: it returns at once, without
	 * joining the arena, as weft_submit() and mpool_submit() do. The task
	 * (a small object oneTBB allocates) holds the two pointers.
	 */
	try {
		a->arena.enqueue([fn, arg] { fn(arg); });
	} catch (const std::exception &e) {
		return failed("enqueue", &e);
	} catch (...) {
		return failed("enqueue", nullptr);
	}
	return 0;
}

extern "C" int peers_tbb_parallel_for(struct peers_tbb_arena *a, size_t n,
				      peers_tbb_range_fn fn, void *arg,
				      size_t *blocks)
{
	try {
		a->arena.execute([=] {
			typedef tbb::blocked_range<size_t> range;

			if (!blocks) {
				tbb::parallel_for(range(0, n),
						  [fn, arg](const range &r) {
					fn(r.begin(), r.end(), arg);
				});
				return;
			}
			std::atomic<size_t> count(0);

			tbb::parallel_for(range(0, n),
					  [fn, arg, &count](const range &r) {
				count.fetch_add(1, std::memory_order_relaxed);
				fn(r.begin(), r.end(), arg);
			});
			*blocks = count.load();
		});
	} catch (const std::exception &e) {
		return failed("parallel_for", &e);
	} catch (...) {
		return failed("parallel_for", nullptr);
	}
	return 0;
}
