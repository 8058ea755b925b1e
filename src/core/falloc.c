/*
 * core/falloc.c - per-thread heaps of future-sized blocks with batched
 * remote frees; see falloc.h for why and for the bounds.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/falloc.h"
#include "weft_config.h"

#define BLOCK_PAYLOAD 192 /* a future plus the largest internal extra */
#define LOCAL_CAP 1024
#define REMOTE_CAP 4096
#define BATCH 32

struct heap;

struct block {
	struct heap *heap; /* owner, NULL for an oversized malloc'd block */
	struct block *next; /* free-list link (when free) */
	/* payload follows, 16-byte aligned */
};

struct heap {
	/* Other threads' side: blocks they give back, and how many. */
	_Alignas(64) _Atomic(struct block *) remote;
	_Atomic uint32_t nremote;
	/* Owner's side. */
	_Alignas(64) struct block *local;
	unsigned nlocal;
	/* Blocks this thread holds for one other heap, not yet pushed. */
	struct heap *pend_heap;
	struct block *pend_head, *pend_tail;
	unsigned npend;
	struct heap *next_orphan; /* protected by orphans_lock */
};

#if !WEFT_ASAN
static pthread_mutex_t orphans_lock = PTHREAD_MUTEX_INITIALIZER;
static struct heap *orphans; /* protected by orphans_lock */
static pthread_key_t heap_key;
static pthread_once_t heap_once = PTHREAD_ONCE_INIT;
static _Thread_local struct heap *tls_heap;

static void push_remote(struct heap *to, struct block *head,
			struct block *tail, unsigned n)
{
	struct block *old =
		atomic_load_explicit(&to->remote, memory_order_relaxed);

	atomic_fetch_add_explicit(&to->nremote, n, memory_order_relaxed);
	do
		tail->next = old;
	/* release: pairs with the acquire exchange in grab_remote(), which
	 * then reads the blocks' links. */
	while (!atomic_compare_exchange_weak_explicit(
		&to->remote, &old, head, memory_order_release,
		memory_order_relaxed));
}

static void flush(struct heap *h)
{
	if (h->npend) {
		push_remote(h->pend_heap, h->pend_head, h->pend_tail,
			    h->npend);
		h->pend_heap = NULL;
		h->pend_head = h->pend_tail = NULL;
		h->npend = 0;
	}
}

static void thread_exit(void *arg)
{
	struct heap *h = arg;

	flush(h);
	while (h->local) {
		struct block *b = h->local;

		h->local = b->next;
		free(b);
	}
	h->nlocal = 0;
	pthread_mutex_lock(&orphans_lock);
	h->next_orphan = orphans;
	orphans = h;
	pthread_mutex_unlock(&orphans_lock);
	tls_heap = NULL;
}

static void make_key(void)
{
	pthread_key_create(&heap_key, thread_exit);
}

/* Not inlined and behind a barrier: a task may move between threads
 * across a wait (DESIGN.md section 2), so no caller may keep the address. */
__attribute__((noinline)) static struct heap *my_heap(void)
{
	struct heap *h;

	__asm__ __volatile__("" ::: "memory");
	h = tls_heap;
	if (h)
		return h;
	pthread_once(&heap_once, make_key);
	pthread_mutex_lock(&orphans_lock);
	h = orphans;
	if (h)
		orphans = h->next_orphan;
	pthread_mutex_unlock(&orphans_lock);
	if (!h) {
		h = aligned_alloc(64, sizeof(*h));
		if (!h)
			return NULL;
		atomic_init(&h->remote, NULL);
		atomic_init(&h->nremote, 0);
		h->local = NULL;
		h->nlocal = 0;
		h->pend_heap = NULL;
		h->pend_head = h->pend_tail = NULL;
		h->npend = 0;
	}
	h->next_orphan = NULL;
	tls_heap = h;
	pthread_setspecific(heap_key, h);
	return h;
}

void *weft__falloc(size_t size)
{
	struct heap *h;
	struct block *b;

	if (size > BLOCK_PAYLOAD || !(h = my_heap())) {
		b = malloc(sizeof(*b) + size);
		if (!b)
			return NULL;
		b->heap = NULL;
		return b + 1;
	}
	b = h->local;
	if (!b && atomic_load_explicit(&h->remote, memory_order_relaxed)) {
		/* acquire: pairs with the release in push_remote(). */
		b = atomic_exchange_explicit(&h->remote, NULL,
					     memory_order_acquire);
		/* The count may include blocks pushed after our exchange; it
		 * only bounds the cache, so an estimate will do. */
		h->nlocal = atomic_exchange_explicit(&h->nremote, 0,
						     memory_order_relaxed);
	}
	if (b) {
		h->local = b->next;
		if (h->nlocal)
			h->nlocal--;
		return b + 1;
	}
	b = malloc(sizeof(*b) + BLOCK_PAYLOAD);
	if (!b)
		return NULL;
	b->heap = h;
	return b + 1;
}

void weft__ffree(void *p)
{
	struct block *b;
	struct heap *h, *owner;

	if (!p)
		return;
	b = (struct block *)p - 1;
	owner = b->heap;
	if (!owner) {
		free(b);
		return;
	}
	h = my_heap();
	if (h == owner) {
		if (h->nlocal >= LOCAL_CAP) {
			free(b);
			return;
		}
		b->next = h->local;
		h->local = b;
		h->nlocal++;
		return;
	}
	if (atomic_load_explicit(&owner->nremote, memory_order_relaxed) >=
	    REMOTE_CAP || !h) {
		free(b);
		return;
	}
	if (h->pend_heap != owner)
		flush(h);
	h->pend_heap = owner;
	b->next = h->pend_head;
	h->pend_head = b;
	if (!h->pend_tail)
		h->pend_tail = b;
	if (++h->npend == BATCH)
		flush(h);
}

void weft__falloc_flush(void)
{
	struct heap *h = tls_heap;

	if (h)
		flush(h);
}

#else /* WEFT_ASAN: let AddressSanitizer see every future's lifetime */

void *weft__falloc(size_t size)
{
	return malloc(size);
}

void weft__ffree(void *p)
{
	free(p);
}

void weft__falloc_flush(void)
{
}

#endif
