/*
 * core/inject.c - lanes of Vyukov intrusive MPSC queues; see inject.h.
 *
 * A lane is empty when both its head and its tail are the stub. The tail
 * alone is not enough: the consumer re-pushes the stub behind what it
 * believes is the last node, and a producer that exchanged the tail just
 * before that (and has not linked its node yet) leaves the lane as
 * head -> ... -> (unlinked node) -> stub = tail, which holds work. A
 * producer that has exchanged the tail but not yet linked prev->next leaves
 * a short window in which the consumer cannot reach the node; pop reports
 * nothing for that lane, emptiness checks report it non-empty, and the
 * workers look again (the producer's own wake-up check comes after its
 * link).
 */
#include <errno.h>
#include <stdlib.h>

#include "core/inject.h"

static _Atomic unsigned next_lane_id;
static _Thread_local unsigned caller_lane
	__attribute__((tls_model("initial-exec"))) = ~0u;

int weft__inject_init(struct weft__inject *q, unsigned nlanes)
{
	q->nlanes = nlanes;
	q->lanes = aligned_alloc(64, sizeof(*q->lanes) * nlanes);
	if (!q->lanes)
		return -ENOMEM;
	for (unsigned i = 0; i < nlanes; i++) {
		struct weft__inject_lane *l = &q->lanes[i];

		atomic_init(&l->stub.next, NULL);
		atomic_init(&l->tail, &l->stub);
		atomic_init(&l->pushed, 0);
		atomic_init(&l->fibers, 0);
		atomic_init(&l->consumer_lock, 0);
		atomic_init(&l->head, &l->stub);
	}
	return 0;
}

void weft__inject_fini(struct weft__inject *q)
{
	free(q->lanes);
	q->lanes = NULL;
}

unsigned weft__inject_lane_of_caller(const struct weft__inject *q)
{
	/* A stale or shared id only spreads producers less evenly; it never
	 * affects correctness, so this thread-local needs no care about
	 * migration. */
	if (caller_lane == ~0u)
		caller_lane = atomic_fetch_add_explicit(&next_lane_id, 1,
							memory_order_relaxed);
	return caller_lane & (q->nlanes - 1);
}

static void lane_link(struct weft__inject_lane *l, struct weft__inject_node *n)
{
	struct weft__inject_node *prev;

	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	/* seq_cst: orders producers among themselves, and is the
	 * publication that a parker's seq_cst re-check of the tail pairs
	 * with (weft__idle_notify_published() needs no fence after it). */
	prev = atomic_exchange_explicit(&l->tail, n, memory_order_seq_cst);
	/* release: pairs with the acquire loads of next in pop, publishing
	 * the node's contents (the task) to the consumer. */
	atomic_store_explicit(&prev->next, n, memory_order_release);
}

void weft__inject_count(struct weft__inject *q, unsigned lane)
{
	/* seq_cst: the drain check must see the count before it can see the
	 * node's task run, and the producer's later load of the pool state
	 * must not move before it (pool.c, drained()). */
	atomic_fetch_add_explicit(&q->lanes[lane & (q->nlanes - 1)].pushed, 1,
				  memory_order_seq_cst);
}

void weft__inject_link(struct weft__inject *q, unsigned lane,
		       struct weft__inject_node *n)
{
	lane_link(&q->lanes[lane & (q->nlanes - 1)], n);
}

static bool lane_maybe_nonempty(struct weft__inject_lane *l)
{
	return atomic_load_explicit(&l->tail, memory_order_seq_cst) !=
		       &l->stub ||
	       atomic_load_explicit(&l->head, memory_order_seq_cst) !=
		       &l->stub;
}

bool weft__inject_maybe_nonempty(struct weft__inject *q)
{
	for (unsigned i = 0; i < q->nlanes; i++)
		if (lane_maybe_nonempty(&q->lanes[i]))
			return true;
	return false;
}

/* Consumer of @l (holds consumer_lock): one node, or NULL when the lane is
 * empty or a producer is mid-push. */
static struct weft__inject_node *lane_pop(struct weft__inject_lane *l)
{
	struct weft__inject_node *head =
		atomic_load_explicit(&l->head, memory_order_relaxed);
	struct weft__inject_node *next =
		atomic_load_explicit(&head->next, memory_order_acquire);

	if (head == &l->stub) {
		if (!next)
			return NULL;
		atomic_store_explicit(&l->head, next, memory_order_relaxed);
		head = next;
		next = atomic_load_explicit(&head->next, memory_order_acquire);
	}
	if (next) {
		atomic_store_explicit(&l->head, next, memory_order_relaxed);
		/* The next pop reads next->next, written by the producer on
		 * another core: start that miss now. */
		__builtin_prefetch(next);
		return head;
	}
	if (atomic_load_explicit(&l->tail, memory_order_acquire) != head)
		return NULL; /* a producer is between exchange and link */
	lane_link(l, &l->stub);
	next = atomic_load_explicit(&head->next, memory_order_acquire);
	if (next) {
		atomic_store_explicit(&l->head, next, memory_order_relaxed);
		return head;
	}
	return NULL;
}

unsigned weft__inject_pop_batch(struct weft__inject *q, unsigned start,
				struct weft__inject_node **out, unsigned max)
{
	for (unsigned i = 0; i < q->nlanes; i++) {
		struct weft__inject_lane *l =
			&q->lanes[(start + i) & (q->nlanes - 1)];
		unsigned n = 0;

		/* Cheap test first: skip empty lanes without taking the
		 * consumer lock. */
		if (!lane_maybe_nonempty(l))
			continue;
		/* acquire: pairs with the release when the lock is dropped. */
		if (atomic_exchange_explicit(&l->consumer_lock, 1,
					     memory_order_acquire))
			continue;
		while (n < max) {
			struct weft__inject_node *node = lane_pop(l);

			if (!node)
				break;
			out[n++] = node;
		}
		atomic_store_explicit(&l->consumer_lock, 0,
				      memory_order_release);
		if (n)
			return n;
	}
	return 0;
}

uint64_t weft__inject_pushed(struct weft__inject *q)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < q->nlanes; i++)
		sum += atomic_load_explicit(&q->lanes[i].pushed,
					    memory_order_seq_cst);
	return sum;
}

void weft__inject_count_fiber(struct weft__inject *q, unsigned lane)
{
	/* Relaxed: a statistic, read racily; the wake-up path it sits on
	 * costs far more than this add. */
	atomic_fetch_add_explicit(&q->lanes[lane & (q->nlanes - 1)].fibers, 1,
				  memory_order_relaxed);
}

uint64_t weft__inject_fibers(struct weft__inject *q)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < q->nlanes; i++)
		sum += atomic_load_explicit(&q->lanes[i].fibers,
					    memory_order_relaxed);
	return sum;
}
