/*
 * stress_deque.c - the Chase-Lev deque (src/core/deque.h) under one owner
 * and several thieves.
 *
 * Every item is a record with a plain (non-atomic) payload the owner writes
 * before pushing it; whoever takes the item checks the payload, so a missing
 * release/acquire pair shows as a wrong value here or as a race under
 * ThreadSanitizer. Every item must be taken exactly once (per-item atomic
 * counters), including while the array grows: rounds start from tiny
 * arrays (2 to 16 slots) and push bursts large enough to grow them many
 * times while thieves are stealing.
 *
 * Patterns per round (chosen at random):
 *   bursts   the owner pushes a burst, then takes a random part of it back
 *   lifo     push one, take one, with thieves racing for the last item
 *   feed     the owner only pushes; the thieves take everything
 *   grow     one huge burst from a 2-slot array, then everyone drains
 *
 * Threads: main is the owner; 1 to 4 thieves (pthreads and C11 threads).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/deque.h"
#include "stress.h"

struct item {
	uint64_t payload; /* plain: published by push, read by the taker */
	_Atomic uint32_t taken;
};

enum pattern { P_BURSTS, P_LIFO, P_FEED, P_GROW, P_COUNT };
static const char *const pattern_names[] = {"bursts", "lifo", "feed", "grow"};

struct round {
	struct weft__deque dq;
	struct item *items;
	size_t nitems;
	unsigned thieves;
	enum pattern pattern;
	_Atomic size_t taken_total;
	_Atomic size_t stolen;
	_Atomic size_t aborts;
	_Atomic bool owner_done;
	uint64_t round_no;
};

static struct round *cur_round;

static uint64_t payload_of(uint64_t round_no, size_t i)
{
	return stress_mix(round_no * 0x100000001b3ull + i);
}

static void check_item(struct round *r, void *p, const char *who)
{
	if (p == NULL || p == WEFT__DEQUE_ABORT) {
		stress_fail("round %llu: %s got %p as an item",
			    (unsigned long long)r->round_no, who, p);
		return;
	}
	struct item *it = p;
	if (it < r->items || it >= r->items + r->nitems) {
		stress_fail("round %llu: %s got a pointer %p outside the items",
			    (unsigned long long)r->round_no, who, p);
		return;
	}
	size_t i = (size_t)(it - r->items);
	uint32_t prev = atomic_fetch_add_explicit(&it->taken, 1,
						  memory_order_relaxed);
	STRESS_CHECK(prev == 0, "round %llu (%s): item %zu taken %u times (%s)",
		     (unsigned long long)r->round_no,
		     pattern_names[r->pattern], i, prev + 1, who);
	STRESS_CHECK(it->payload == payload_of(r->round_no, i),
		     "round %llu: item %zu has payload %llx, want %llx (%s): "
		     "the push was not published",
		     (unsigned long long)r->round_no, i,
		     (unsigned long long)it->payload,
		     (unsigned long long)payload_of(r->round_no, i), who);
	atomic_fetch_add_explicit(&r->taken_total, 1, memory_order_relaxed);
	stress_progress();
}

static void thief_main(void *arg, unsigned index)
{
	struct round *r = arg;
	uint64_t rng = stress_stream(r->round_no * 16 + index);
	stress_where("stealing", r->round_no);
	for (;;) {
		void *p = weft__deque_steal(&r->dq);
		if (p == WEFT__DEQUE_ABORT) {
			atomic_fetch_add_explicit(&r->aborts, 1,
						  memory_order_relaxed);
			continue;
		}
		if (p) {
			check_item(r, p, "thief");
			atomic_fetch_add_explicit(&r->stolen, 1,
						  memory_order_relaxed);
			if (stress_below(&rng, 64) == 0)
				stress_spin_ns((int64_t)stress_below(&rng,
								     2000));
			continue;
		}
		/* Empty: done only once the owner has finished pushing and
		 * every item is accounted for. */
		if (atomic_load(&r->owner_done) &&
		    atomic_load(&r->taken_total) == r->nitems)
			break;
		/* size() is a snapshot, but never more than were pushed */
		size_t sz = weft__deque_size(&r->dq);
		STRESS_CHECK(sz <= r->nitems, "round %llu: deque size %zu > %zu "
			     "items", (unsigned long long)r->round_no, sz,
			     r->nitems);
		sched_yield();
	}
	stress_where("done", r->round_no);
}

static void owner_take(struct round *r, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		void *p = weft__deque_take(&r->dq);
		if (!p)
			return;
		check_item(r, p, "owner");
	}
}

static void push_item(struct round *r, size_t i)
{
	r->items[i].payload = payload_of(r->round_no, i);
	int rc = weft__deque_push(&r->dq, &r->items[i]);
	if (rc != 0) {
		stress_fail("round %llu: push of item %zu = %d",
			    (unsigned long long)r->round_no, i, rc);
		exit(stress_finish());
	}
}

static void run_round(uint64_t round_no, size_t nitems, uint64_t *rng)
{
	struct round *r = calloc(1, sizeof(*r));
	if (!r)
		exit(STRESS_FAIL);
	r->round_no = round_no;
	r->nitems = nitems;
	r->items = calloc(nitems, sizeof(*r->items));
	if (!r->items)
		exit(STRESS_FAIL);
	r->pattern = (enum pattern)stress_below(rng, P_COUNT);
	r->thieves = 1 + (unsigned)stress_below(rng, 4);
	unsigned log2 = 1 + (unsigned)stress_below(rng, 4);
	if (r->pattern == P_GROW)
		log2 = 1;
	int rc = weft__deque_init(&r->dq, log2);
	if (rc != 0) {
		stress_fail("deque_init(%u) = %d", log2, rc);
		exit(stress_finish());
	}
	cur_round = r;
	stress_phase("round %llu: %s, %zu items, %u thieves, %u initial "
		     "slots",
		     (unsigned long long)round_no, pattern_names[r->pattern],
		     nitems, r->thieves, 1u << log2);

	struct stress_threads *th =
		stress_threads_start(r->thieves, thief_main, r, "thief");

	size_t i = 0;
	switch (r->pattern) {
	case P_BURSTS:
		while (i < nitems) {
			size_t burst = 1 + stress_below(rng, 4096);
			for (size_t k = 0; k < burst && i < nitems; k++)
				push_item(r, i++);
			owner_take(r, stress_below(rng, burst + 1));
		}
		break;
	case P_LIFO:
		while (i < nitems) {
			/* keep 0..3 items so thieves race for the last one */
			size_t keep = stress_below(rng, 4);
			for (size_t k = 0; k <= keep && i < nitems; k++)
				push_item(r, i++);
			owner_take(r, 1 + stress_below(rng, keep + 1));
		}
		break;
	case P_FEED:
		while (i < nitems) {
			push_item(r, i++);
			if (stress_below(rng, 256) == 0)
				stress_spin_ns(
					(int64_t)stress_below(rng, 20000));
		}
		break;
	case P_GROW:
		while (i < nitems)
			push_item(r, i++);
		break;
	default:
		break;
	}
	/* Drain what is left alongside the thieves. */
	for (;;) {
		void *p = weft__deque_take(&r->dq);
		if (!p)
			break;
		check_item(r, p, "owner");
	}
	atomic_store(&r->owner_done, true);
	/* An empty take while thieves still hold claimed-but-unchecked items
	 * is fine: wait for the count. */
	stress_threads_join(th);

	size_t missing = 0;
	for (size_t k = 0; k < nitems; k++) {
		uint32_t t = atomic_load(&r->items[k].taken);
		if (t != 1) {
			if (missing < 10)
				stress_fail("round %llu (%s): item %zu taken %u "
					    "times",
					    (unsigned long long)round_no,
					    pattern_names[r->pattern], k, t);
			missing++;
		}
	}
	STRESS_CHECK(atomic_load(&r->taken_total) == nitems,
		     "round %llu: %zu of %zu items taken",
		     (unsigned long long)round_no,
		     atomic_load(&r->taken_total), nitems);
	STRESS_CHECK(weft__deque_size(&r->dq) == 0,
		     "round %llu: size %zu after draining",
		     (unsigned long long)round_no, weft__deque_size(&r->dq));
	STRESS_CHECK(weft__deque_take(&r->dq) == NULL &&
			     weft__deque_steal(&r->dq) == NULL,
		     "round %llu: items after draining",
		     (unsigned long long)round_no);
	stress_log("round %llu %s: %zu items, %zu stolen, %zu aborts",
		   (unsigned long long)round_no, pattern_names[r->pattern],
		   nitems, atomic_load(&r->stolen), atomic_load(&r->aborts));
	cur_round = NULL;
	weft__deque_fini(&r->dq);
	free(r->items);
	free(r);
}

static void dump(int fd)
{
	struct round *r = cur_round;
	if (!r)
		return;
	stress_dprintf(fd, "  round %llu: taken %zu of %zu, owner_done %d, "
		       "size %zu\n",
		       (unsigned long long)r->round_no,
		       atomic_load(&r->taken_total), r->nitems,
		       (int)atomic_load(&r->owner_done),
		       weft__deque_size(&r->dq));
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_deque");
	stress_set_dump(dump);
	uint64_t total = stress_scaled(8000000, 20000);
	uint64_t rng = stress_stream(1);
	uint64_t done = 0, round_no = 0;
	while (done < total) {
		size_t n = 20000 + stress_below(&rng, 200000);
		if (n > total - done)
			n = (size_t)(total - done);
		run_round(round_no++, n, &rng);
		done += n;
	}
	printf("stress_deque: %llu items in %llu rounds\n",
	       (unsigned long long)done, (unsigned long long)round_no);
	return stress_finish();
}
