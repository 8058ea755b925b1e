/*
 * stress_inject.c - the inject queue (src/core/inject.h): several producer
 * threads pushing into lanes, several consumers popping batches.
 *
 * Each node carries its producer, its sequence number within that producer
 * and a plain payload written before the push. Checks:
 *   - every node is popped exactly once, with its payload intact (a missing
 *     release/acquire shows as a wrong payload or a ThreadSanitizer race);
 *   - nodes of one producer pushed to one lane come out of that lane in
 *     order: strictly across the whole round when there is one consumer,
 *     and within every batch when there are several;
 *   - weft__inject_pushed() equals the pushes once producers are done;
 *   - weft__inject_maybe_nonempty() is true while nodes are left and false
 *     once everything has been popped.
 *
 * Rounds vary the lane count (1 lane = every producer on one MPSC queue),
 * the number of producers (4 to 8; pthreads and C11 threads), consumers
 * (1 to 3), batch sizes, whether consumers start late (so lanes fill up
 * first), and whether producers use their own lane
 * (weft__inject_lane_of_caller()) or pick one per push.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/inject.h"
#include "stress.h"

struct node {
	struct weft__inject_node link;
	uint32_t producer;
	uint32_t lane;
	uint64_t seq;
	uint64_t payload; /* plain: published by the push */
	_Atomic uint32_t popped;
};

struct round {
	struct weft__inject q;
	uint64_t round_no;
	unsigned nlanes, producers, consumers;
	bool own_lane;
	bool late_consumers;
	bool trickle; /* producers pause after each push */
	_Atomic bool stuck; /* consumers gave up: nodes unreachable */
	size_t per_producer;
	size_t total;
	struct node *nodes; /* producer p's nodes: [p * per_producer, ...) */
	_Atomic size_t popped_total;
	_Atomic unsigned producers_done;
	_Atomic bool go_consume;
	/* single-consumer order check: last seq per (producer, lane);
	 * consumer-private when consumers == 1 */
	int64_t *last_seq;
};

static struct round *cur_round;

static uint64_t payload_of(const struct round *r, size_t i)
{
	return stress_mix(r->round_no * 0x9e3779b97f4a7c15ull ^ i);
}

static void producer_main(void *arg, unsigned index)
{
	struct round *r = arg;
	uint64_t rng = stress_stream(r->round_no * 64 + index);
	unsigned own = weft__inject_lane_of_caller(&r->q);
	STRESS_CHECK(own < r->q.nlanes, "lane_of_caller = %u of %u lanes", own,
		     r->q.nlanes);
	STRESS_CHECK(weft__inject_lane_of_caller(&r->q) == own,
		     "lane_of_caller changed on one thread");
	stress_where("pushing", r->round_no);
	for (size_t k = 0; k < r->per_producer; k++) {
		size_t i = index * r->per_producer + k;
		struct node *n = &r->nodes[i];
		unsigned lane = r->own_lane ? own
					    : (unsigned)stress_below(&rng, 64);
		n->producer = index;
		n->lane = lane & (r->q.nlanes - 1);
		n->seq = k;
		n->payload = payload_of(r, i);
		weft__inject_count(&r->q, lane);
		weft__inject_link(&r->q, lane, &n->link);
		stress_progress();
		/* pausing lets consumers empty the lane again and again,
		 * which is where a push races the pop of the last node */
		if (r->trickle)
			stress_spin_ns((int64_t)stress_below(&rng, 1500));
		else if (stress_below(&rng, 512) == 0)
			stress_spin_ns((int64_t)stress_below(&rng, 10000));
	}
	atomic_fetch_add(&r->producers_done, 1);
	stress_where("done", r->round_no);
}

static void dump_lanes(int fd, struct round *r);

static void consumer_main(void *arg, unsigned index)
{
	struct round *r = arg;
	uint64_t rng = stress_stream(r->round_no * 64 + 32 + index);
	struct weft__inject_node *batch[64];
	int64_t empty_since = 0;
	stress_where("waiting to consume", r->round_no);
	while (!atomic_load(&r->go_consume))
		sched_yield();
	stress_where("consuming", r->round_no);
	while (atomic_load(&r->popped_total) < r->total &&
	       !atomic_load(&r->stuck)) {
		unsigned max = 1 + (unsigned)stress_below(&rng, 64);
		unsigned start = (unsigned)stress_below(&rng, r->q.nlanes * 2);
		unsigned got = weft__inject_pop_batch(&r->q, start, batch, max);
		STRESS_CHECK(got <= max, "pop_batch returned %u > max %u", got,
			     max);
		if (got == 0) {
			/* Every producer has linked its nodes, so a queue
			 * that keeps answering "nothing" while nodes are
			 * missing has lost them. */
			if (atomic_load(&r->producers_done) < r->producers) {
				empty_since = 0;
			} else if (!empty_since) {
				empty_since = weft_now();
			} else if (weft_now() - empty_since > 2000000000 &&
				   !atomic_exchange(&r->stuck, true)) {
				stress_fail(
					"round %llu: %zu of %zu nodes popped; "
					"producers are done and pop_batch has "
					"found nothing for 2 s (maybe_nonempty "
					"says %d)",
					(unsigned long long)r->round_no,
					atomic_load(&r->popped_total), r->total,
					(int)weft__inject_maybe_nonempty(&r->q));
				dump_lanes(2, r);
			}
			sched_yield();
			continue;
		}
		empty_since = 0;
		unsigned batch_lane = ~0u;
		for (unsigned j = 0; j < got; j++) {
			struct node *n = (struct node *)batch[j];
			if (n < r->nodes || n >= r->nodes + r->total) {
				stress_fail("round %llu: pop_batch gave %p, "
					    "not a node",
					    (unsigned long long)r->round_no,
					    (void *)n);
				continue;
			}
			size_t i = (size_t)(n - r->nodes);
			uint32_t prev = atomic_fetch_add(&n->popped, 1);
			STRESS_CHECK(prev == 0,
				     "round %llu: node %zu popped %u times",
				     (unsigned long long)r->round_no, i,
				     prev + 1);
			STRESS_CHECK(n->payload == payload_of(r, i),
				     "round %llu: node %zu payload %llx, want "
				     "%llx",
				     (unsigned long long)r->round_no, i,
				     (unsigned long long)n->payload,
				     (unsigned long long)payload_of(r, i));
			/* one batch comes from one lane */
			if (batch_lane == ~0u)
				batch_lane = n->lane;
			STRESS_CHECK(n->lane == batch_lane,
				     "round %llu: a batch mixes lanes %u and "
				     "%u",
				     (unsigned long long)r->round_no,
				     batch_lane, n->lane);
			/* FIFO per producer within the batch */
			for (unsigned k = 0; k < j; k++) {
				struct node *o = (struct node *)batch[k];
				if (o->producer == n->producer &&
				    o->lane == n->lane)
					STRESS_CHECK(
						o->seq < n->seq,
						"round %llu: producer %u lane "
						"%u: seq %llu popped after "
						"%llu in one batch",
						(unsigned long long)r->round_no,
						n->producer, n->lane,
						(unsigned long long)n->seq,
						(unsigned long long)o->seq);
			}
			if (r->consumers == 1) {
				int64_t *last =
					&r->last_seq[n->producer * r->nlanes +
						     n->lane];
				STRESS_CHECK(
					(int64_t)n->seq > *last,
					"round %llu: producer %u lane %u: seq "
					"%llu popped after %lld (one consumer)",
					(unsigned long long)r->round_no,
					n->producer, n->lane,
					(unsigned long long)n->seq,
					(long long)*last);
				*last = (int64_t)n->seq;
			}
			stress_progress();
		}
		atomic_fetch_add(&r->popped_total, got);
	}
	stress_where("done", r->round_no);
}

/* After a round: every node popped once, the queue empty. */
static void check_drained(struct round *r)
{
	unsigned long long round_no = (unsigned long long)r->round_no;
	STRESS_CHECK(atomic_load(&r->popped_total) == r->total,
		     "round %llu: popped %zu of %zu", round_no,
		     atomic_load(&r->popped_total), r->total);
	size_t bad = 0;
	for (size_t i = 0; i < r->total; i++) {
		if (atomic_load(&r->nodes[i].popped) != 1 && bad++ < 10)
			stress_fail("round %llu: node %zu popped %u times",
				    round_no, i,
				    atomic_load(&r->nodes[i].popped));
	}
	STRESS_CHECK(!weft__inject_maybe_nonempty(&r->q),
		     "round %llu: maybe_nonempty after every node was popped",
		     round_no);
	struct weft__inject_node *extra[4];
	STRESS_CHECK(weft__inject_pop_batch(&r->q, 0, extra, 4) == 0,
		     "round %llu: pop_batch found nodes after the end",
		     round_no);
}

static size_t run_round(uint64_t round_no, size_t total, uint64_t *rng)
{
	struct round *r = calloc(1, sizeof(*r));
	if (!r)
		exit(STRESS_FAIL);
	r->round_no = round_no;
	r->nlanes = 1u << stress_below(rng, 4);
	r->producers = 4 + (unsigned)stress_below(rng, 5);
	r->consumers = 1 + (unsigned)stress_below(rng, 3);
	r->own_lane = stress_below(rng, 3) != 0;
	r->late_consumers = stress_below(rng, 4) == 0;
	r->trickle = !r->late_consumers && stress_below(rng, 2) == 0;
	r->per_producer = total / r->producers;
	if (r->per_producer == 0)
		r->per_producer = 1;
	r->total = r->per_producer * r->producers;
	r->nodes = calloc(r->total, sizeof(*r->nodes));
	r->last_seq = malloc(sizeof(int64_t) * r->producers * r->nlanes);
	if (!r->nodes || !r->last_seq)
		exit(STRESS_FAIL);
	for (size_t i = 0; i < (size_t)r->producers * r->nlanes; i++)
		r->last_seq[i] = -1;
	int rc = weft__inject_init(&r->q, r->nlanes);
	if (rc != 0) {
		stress_fail("inject_init(%u) = %d", r->nlanes, rc);
		exit(stress_finish());
	}
	cur_round = r;
	stress_phase("round %llu: %u lanes, %u producers (%s%s), %u "
		     "consumers%s, %zu nodes",
		     (unsigned long long)round_no, r->nlanes, r->producers,
		     r->own_lane ? "own lane" : "random lanes",
		     r->trickle ? ", trickle" : "", r->consumers,
		     r->late_consumers ? " (late)" : "", r->total);
	STRESS_CHECK(!weft__inject_maybe_nonempty(&r->q),
		     "a new queue is maybe_nonempty");

	if (!r->late_consumers)
		atomic_store(&r->go_consume, true);
	struct stress_threads *cons =
		stress_threads_start(r->consumers, consumer_main, r, "consumer");
	struct stress_threads *prod =
		stress_threads_start(r->producers, producer_main, r, "producer");
	stress_threads_join(prod);
	STRESS_CHECK(weft__inject_pushed(&r->q) == r->total,
		     "round %llu: inject_pushed = %llu, want %zu",
		     (unsigned long long)round_no,
		     (unsigned long long)weft__inject_pushed(&r->q), r->total);
	if (r->late_consumers)
		STRESS_CHECK(weft__inject_maybe_nonempty(&r->q),
			     "round %llu: %zu nodes queued, maybe_nonempty "
			     "says no",
			     (unsigned long long)round_no, r->total);
	atomic_store(&r->go_consume, true);
	stress_threads_join(cons);

	/* when nodes are stranded (stuck), the consumer has said so */
	if (!atomic_load(&r->stuck))
		check_drained(r);
	cur_round = NULL;
	weft__inject_fini(&r->q);
	size_t n = r->total;
	free(r->nodes);
	free(r->last_seq);
	free(r);
	return n;
}

static void dump(int fd)
{
	struct round *r = cur_round;
	if (!r)
		return;
	stress_dprintf(fd, "  round %llu: popped %zu of %zu, producers done "
		       "%u of %u\n",
		       (unsigned long long)r->round_no,
		       atomic_load(&r->popped_total), r->total,
		       atomic_load(&r->producers_done), r->producers);
	dump_lanes(fd, r);
}

static void dump_lanes(int fd, struct round *r)
{
	/* A racy look at the lanes (the stall report only): a lane whose
	 * tail is its stub but whose head still reaches nodes is one that
	 * weft__inject_pop_batch() and weft__inject_maybe_nonempty() take
	 * for empty. */
	for (unsigned i = 0; i < r->q.nlanes; i++) {
		struct weft__inject_lane *l = &r->q.lanes[i];
		struct weft__inject_node *tail = atomic_load(&l->tail);
		struct weft__inject_node *head = l->head;
		size_t reach = 0;
		for (struct weft__inject_node *n = head; n && reach < 1000000;
		     n = atomic_load(&n->next))
			if (n != &l->stub)
				reach++;
		stress_dprintf(fd, "  lane %u: tail %s, head %s, %zu nodes "
			       "reachable from head, pushed %llu\n",
			       i, tail == &l->stub ? "== stub" : "!= stub",
			       head == &l->stub ? "== stub" : "!= stub", reach,
			       (unsigned long long)atomic_load(&l->pushed));
	}
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_inject");
	stress_set_dump(dump);
	uint64_t total = stress_scaled(4000000, 20000);
	uint64_t rng = stress_stream(2);
	uint64_t done = 0, round_no = 0;
	while (done < total) {
		size_t n = 20000 + stress_below(&rng, 150000);
		if (n > total - done)
			n = (size_t)(total - done);
		done += run_round(round_no++, n, &rng);
	}
	printf("stress_inject: %llu nodes in %llu rounds\n",
	       (unsigned long long)done, (unsigned long long)round_no);
	return stress_finish();
}
