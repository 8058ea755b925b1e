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
#define CARRY 16 /* blocks per remote batch: a carrier and 15 riders */

struct heap;

struct block {
	struct heap *heap; /* owner, NULL for an oversized malloc'd block */
	struct block *next; /* carrier-list link (when free) */
	/* payload follows, 16-byte aligned */
};

/*
 * A batch of blocks returned to their heap travels as an array written
 * into the first block's payload, not as a linked list: the owner then
 * reads two cache lines per CARRY blocks instead of chasing one pointer,
 * written on another core, per block (that chase was most of the
 * producer's allocation time in bench_submit).
 */
struct carrier {
	struct block hdr;
	unsigned n;
	struct block *riders[CARRY - 1];
};

_Static_assert(sizeof(struct carrier) <= sizeof(struct block) + BLOCK_PAYLOAD,
	       "a carrier must fit in a block");

struct heap {
	/* Other threads' side: carriers they give back, and how many blocks
	 * those hold. */
	_Alignas(64) _Atomic(struct block *) remote;
	_Atomic uint32_t nremote;
	/* Owner's side: carriers taken off remote, not yet unpacked. */
	_Alignas(64) struct block *carriers;
	/* Blocks this thread holds for one other heap, not yet pushed. */
	struct heap *pend_heap;
	unsigned npend;
	struct block *pend[CARRY];
	struct heap *next_orphan; /* protected by orphans_lock */
	/* Free blocks ready to hand out, newest last. */
	unsigned ncache;
	struct block *cache[LOCAL_CAP];
};

#if !WEFT_ASAN
static pthread_mutex_t orphans_lock = PTHREAD_MUTEX_INITIALIZER;
static struct heap *orphans; /* protected by orphans_lock */
static pthread_key_t heap_key;
static pthread_once_t heap_once = PTHREAD_ONCE_INIT;
/* initial-exec: a direct thread-pointer load, not a __tls_get_addr()
 * call per allocation (see weft__tls_worker in pool.c). */
static _Thread_local struct heap *tls_heap
	__attribute__((tls_model("initial-exec")));

static void flush(struct heap *h)
{
	struct carrier *c;
	struct heap *to = h->pend_heap;
	struct block *old;

	if (!h->npend)
		return;
	c = (struct carrier *)h->pend[0];
	c->n = h->npend - 1;
	for (unsigned i = 1; i < h->npend; i++)
		c->riders[i - 1] = h->pend[i];
	atomic_fetch_add_explicit(&to->nremote, h->npend,
				  memory_order_relaxed);
	old = atomic_load_explicit(&to->remote, memory_order_relaxed);
	do
		c->hdr.next = old;
	/* release: pairs with the acquire exchange in refill(), which then
	 * reads the carrier's array. */
	while (!atomic_compare_exchange_weak_explicit(
		&to->remote, &old, &c->hdr, memory_order_release,
		memory_order_relaxed));
	h->pend_heap = NULL;
	h->npend = 0;
}

static void free_carriers(struct block *b)
{
	while (b) {
		struct carrier *c = (struct carrier *)b;
		struct block *next = b->next;

		for (unsigned i = 0; i < c->n; i++)
			free(c->riders[i]);
		free(b);
		b = next;
	}
}

static void thread_exit(void *arg)
{
	struct heap *h = arg;

	flush(h);
	while (h->ncache)
		free(h->cache[--h->ncache]);
	free_carriers(h->carriers);
	h->carriers = NULL;
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
		h->carriers = NULL;
		h->pend_heap = NULL;
		h->npend = 0;
		h->ncache = 0;
	}
	h->next_orphan = NULL;
	tls_heap = h;
	pthread_setspecific(heap_key, h);
	return h;
}

/* Owner: refill the empty cache from one carrier, taking the remote list
 * when no carrier is left. */
static void refill(struct heap *h)
{
	struct carrier *c;

	if (!h->carriers &&
	    atomic_load_explicit(&h->remote, memory_order_relaxed)) {
		/* acquire: pairs with the release in flush(). */
		h->carriers = atomic_exchange_explicit(&h->remote, NULL,
						       memory_order_acquire);
		atomic_store_explicit(&h->nremote, 0, memory_order_relaxed);
	}
	if (!h->carriers)
		return;
	c = (struct carrier *)h->carriers;
	h->carriers = c->hdr.next;
	for (unsigned i = 0; i < c->n; i++)
		h->cache[h->ncache++] = c->riders[i];
	h->cache[h->ncache++] = &c->hdr;
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
	if (!h->ncache)
		refill(h);
	if (h->ncache) {
		b = h->cache[--h->ncache];
		/* The caller writes the block next, and blocks were last
		 * written on another core: ask for the next one ahead of
		 * time. (Prefetching every line two blocks ahead made the
		 * producer faster but, with three threads on two CPUs, the
		 * whole run slower in bench_submit.) */
		if (h->ncache)
			__builtin_prefetch(h->cache[h->ncache - 1], 1);
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
		if (h->ncache < LOCAL_CAP - CARRY)
			h->cache[h->ncache++] = b;
		else
			free(b);
		return;
	}
	if (!h || atomic_load_explicit(&owner->nremote, memory_order_relaxed) >=
			  REMOTE_CAP) {
		free(b);
		return;
	}
	if (h->pend_heap != owner)
		flush(h);
	h->pend_heap = owner;
	h->pend[h->npend++] = b;
	if (h->npend == CARRY)
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
