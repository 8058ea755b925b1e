/*
 * core/deque.c - Chase-Lev work-stealing deque; see deque.h for the
 * algorithm, its sources and which threads call what.
 *
 * Orderings follow Le et al. (PPoPP 2013, fig. 1), with one change: push
 * publishes bottom with a release store instead of a release fence followed
 * by a relaxed store. Both order the slot write before the new bottom; the
 * store form is what ThreadSanitizer understands (it ignores fences), and
 * on x86 and AArch64 it costs the same.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/deque.h"

struct weft__deque_array {
	int64_t mask;
	struct weft__deque_array *next_retired;
	_Atomic(void *) slot[];
};

static struct weft__deque_array *array_new(int64_t size)
{
	struct weft__deque_array *a;

	a = malloc(sizeof(*a) + (size_t)size * sizeof(a->slot[0]));
	if (!a)
		return NULL;
	a->mask = size - 1;
	a->next_retired = NULL;
	return a;
}

int weft__deque_init(struct weft__deque *d, unsigned log2_size)
{
	struct weft__deque_array *a = array_new((int64_t)1 << log2_size);

	if (!a)
		return -ENOMEM;
	atomic_init(&d->top, 0);
	atomic_init(&d->bottom, 0);
	atomic_init(&d->array, a);
	d->retired = NULL;
	return 0;
}

void weft__deque_fini(struct weft__deque *d)
{
	struct weft__deque_array *a = atomic_load(&d->array);

	free(a);
	while (d->retired) {
		a = d->retired;
		d->retired = a->next_retired;
		free(a);
	}
}

/* Owner only: copy the live items [t, b) into an array twice the size. */
static struct weft__deque_array *grow(struct weft__deque *d,
				      struct weft__deque_array *a, int64_t t,
				      int64_t b)
{
	struct weft__deque_array *n = array_new((a->mask + 1) * 2);

	if (!n)
		return NULL;
	for (int64_t i = t; i < b; i++)
		atomic_store_explicit(
			&n->slot[i & n->mask],
			atomic_load_explicit(&a->slot[i & a->mask],
					     memory_order_relaxed),
			memory_order_relaxed);
	/* release: pairs with the acquire load of array in steal(), so a
	 * thief that sees the new array sees the copied slots. */
	atomic_store_explicit(&d->array, n, memory_order_release);
	a->next_retired = d->retired;
	d->retired = a;
	return n;
}

int weft__deque_push(struct weft__deque *d, void *item)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	/* acquire: pairs with the CAS on top in steal(), so the slot a thief
	 * has taken is not overwritten before the thief has read it. */
	int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
	struct weft__deque_array *a =
		atomic_load_explicit(&d->array, memory_order_relaxed);

	if (b - t > a->mask) {
		/* The erratum: use the array grow() returns, not the old one. */
		a = grow(d, a, t, b);
		if (!a)
			return -ENOMEM;
	}
	atomic_store_explicit(&a->slot[b & a->mask], item,
			      memory_order_relaxed);
	/* release: pairs with the acquire load of bottom in steal(); makes
	 * the slot and everything the item points to visible to thieves. */
	atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
	return 0;
}

void *weft__deque_peek(struct weft__deque *d)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
	int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
	struct weft__deque_array *a =
		atomic_load_explicit(&d->array, memory_order_relaxed);

	if (t > b)
		return NULL;
	return atomic_load_explicit(&a->slot[b & a->mask],
				    memory_order_relaxed);
}

void *weft__deque_take_alone(struct weft__deque *d)
{
	/* No thief: the newest item is ours to take with a plain store of
	 * bottom, without the fence and the CAS on the last item. */
	void *item = weft__deque_peek(d);

	if (item)
		atomic_store_explicit(
			&d->bottom,
			atomic_load_explicit(&d->bottom, memory_order_relaxed) -
				1,
			memory_order_relaxed);
	return item;
}

void *weft__deque_take(struct weft__deque *d)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
	struct weft__deque_array *a =
		atomic_load_explicit(&d->array, memory_order_relaxed);
	int64_t t;
	void *item;

	atomic_store_explicit(&d->bottom, b, memory_order_relaxed);
	/* seq_cst: the store of bottom must be ordered before the load of
	 * top, against the thief's load of top then bottom (its fence). */
	atomic_thread_fence(memory_order_seq_cst);
	t = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (t > b) {
		/* Empty: restore bottom. */
		atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
		return NULL;
	}
	item = atomic_load_explicit(&a->slot[b & a->mask],
				    memory_order_relaxed);
	if (t == b) {
		/* The last item: race the thieves for it on top. */
		if (!atomic_compare_exchange_strong_explicit(
			    &d->top, &t, t + 1, memory_order_seq_cst,
			    memory_order_relaxed))
			item = NULL;
		atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
	}
	return item;
}

void *weft__deque_steal(struct weft__deque *d)
{
	/* acquire: pairs with the CAS of other thieves and the owner. */
	int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
	int64_t b;

	/* seq_cst: orders the load of top before the load of bottom, the
	 * mirror of the fence in take(). */
	atomic_thread_fence(memory_order_seq_cst);
	/* acquire: pairs with the release store of bottom in push(). */
	b = atomic_load_explicit(&d->bottom, memory_order_acquire);
	if (t >= b)
		return NULL;

	/* acquire: pairs with the release store of array in grow(). */
	struct weft__deque_array *a =
		atomic_load_explicit(&d->array, memory_order_acquire);
	void *item = atomic_load_explicit(&a->slot[t & a->mask],
					  memory_order_relaxed);

	if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1,
						     memory_order_seq_cst,
						     memory_order_relaxed))
		return WEFT__DEQUE_ABORT;
	return item;
}
