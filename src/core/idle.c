/*
 * core/idle.c - the parking protocol; see idle.h for the argument.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/idle.h"
#include "util/futex.h"

#define SEARCH_ONE ((uint64_t)1)
#define UNPARK_ONE ((uint64_t)1 << 32)
#define SEARCHING(s) ((uint32_t)((s) & 0xffffffffu))
#define UNPARKED(s) ((uint32_t)((s) >> 32))

enum { P_EMPTY = 0, P_PARKED = 1, P_NOTIFIED = 2 };

int weft__idle_init(struct weft__idle *idle, unsigned nworkers)
{
	idle->nworkers = nworkers;
	idle->nsleepers = 0;
	idle->sleepers = calloc(nworkers, sizeof(*idle->sleepers));
	idle->parkers = aligned_alloc(64, sizeof(*idle->parkers) * nworkers);
	if (!idle->sleepers || !idle->parkers) {
		free(idle->sleepers);
		free(idle->parkers);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < nworkers; i++)
		atomic_init(&idle->parkers[i].word, P_EMPTY);
	/* Workers start unparked and not searching. */
	atomic_init(&idle->state, (uint64_t)nworkers << 32);
	pthread_mutex_init(&idle->lock, NULL);
	return 0;
}

void weft__idle_fini(struct weft__idle *idle)
{
	pthread_mutex_destroy(&idle->lock);
	free(idle->sleepers);
	free(idle->parkers);
}

bool weft__idle_try_search(struct weft__idle *idle)
{
	uint64_t s = atomic_load_explicit(&idle->state, memory_order_seq_cst);

	do {
		if (2 * SEARCHING(s) >= idle->nworkers)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		&idle->state, &s, s + SEARCH_ONE, memory_order_seq_cst,
		memory_order_seq_cst));
	return true;
}

bool weft__idle_stop_search(struct weft__idle *idle)
{
	uint64_t prev = atomic_fetch_sub_explicit(&idle->state, SEARCH_ONE,
						  memory_order_seq_cst);

	return SEARCHING(prev) == 1;
}

static void unpark(struct weft__parker *p)
{
	/* seq_cst exchange: pairs with the CAS to PARKED in park(). */
	if (atomic_exchange(&p->word, P_NOTIFIED) == P_PARKED)
		weft__futex_wake(&p->word, 1);
}

static bool should_wake(struct weft__idle *idle, uint64_t s)
{
	return SEARCHING(s) == 0 && UNPARKED(s) < idle->nworkers;
}

static bool wake_one(struct weft__idle *idle)
{
	unsigned w;

	pthread_mutex_lock(&idle->lock);
	if (!should_wake(idle, atomic_load(&idle->state)) ||
	    idle->nsleepers == 0) {
		pthread_mutex_unlock(&idle->lock);
		return false;
	}
	/* The woken worker counts as unparked and searching from now on, so
	 * that the next producer does not wake a second one for the same
	 * burst. */
	atomic_fetch_add(&idle->state, UNPARK_ONE + SEARCH_ONE);
	w = idle->sleepers[--idle->nsleepers];
	pthread_mutex_unlock(&idle->lock);
	unpark(&idle->parkers[w]);
	return true;
}

bool weft__idle_notify_one(struct weft__idle *idle)
{
	/* seq_cst fence: orders the caller's publication of work before the
	 * read of state; the parker's side is the RMW in prepare_park()
	 * followed by its fence (see idle.h). */
	atomic_thread_fence(memory_order_seq_cst);
	if (!should_wake(idle, atomic_load_explicit(&idle->state,
						    memory_order_relaxed)))
		return false;
	return wake_one(idle);
}

bool weft__idle_notify_published(struct weft__idle *idle)
{
	if (!should_wake(idle, atomic_load_explicit(&idle->state,
						    memory_order_seq_cst)))
		return false;
	return wake_one(idle);
}

void weft__idle_notify_all(struct weft__idle *idle)
{
	pthread_mutex_lock(&idle->lock);
	while (idle->nsleepers) {
		unsigned w = idle->sleepers[--idle->nsleepers];

		atomic_fetch_add(&idle->state, UNPARK_ONE + SEARCH_ONE);
		unpark(&idle->parkers[w]);
	}
	pthread_mutex_unlock(&idle->lock);
}

void weft__idle_prepare_park(struct weft__idle *idle, unsigned index,
			     bool searching)
{
	pthread_mutex_lock(&idle->lock);
	atomic_fetch_sub(&idle->state,
			 UNPARK_ONE + (searching ? SEARCH_ONE : 0));
	idle->sleepers[idle->nsleepers++] = index;
	pthread_mutex_unlock(&idle->lock);
	/* seq_cst: the caller's re-check of the queues must not move before
	 * the decrement above (pairs with the fence in notify_one()). */
	atomic_thread_fence(memory_order_seq_cst);
}

void weft__idle_park(struct weft__idle *idle, unsigned index)
{
	struct weft__parker *p = &idle->parkers[index];
	uint32_t expect = P_EMPTY;

	if (atomic_compare_exchange_strong(&p->word, &expect, P_PARKED)) {
		while (atomic_load(&p->word) == P_PARKED)
			weft__futex_wait(&p->word, P_PARKED, WEFT_FOREVER);
	}
	/* The token is consumed; whoever notified us did the accounting. */
	atomic_store(&p->word, P_EMPTY);
}

unsigned weft__idle_parked(struct weft__idle *idle)
{
	return idle->nworkers - UNPARKED(atomic_load(&idle->state));
}
