/*
 * core/falloc.h - the allocator for futures (task records).
 *
 * The executor's allocation pattern defeats glibc malloc: an outside thread
 * allocates every task and the workers free them, so the producer never
 * finds a block in its thread cache and every allocation takes the arena
 * lock the workers' frees are contending for (perf on bench_submit: 25% of
 * the time in _int_malloc/_int_free). Here each thread has a heap of
 * fixed-size blocks; a block freed by another thread goes back to the heap
 * that allocated it, in batches, through that heap's lock-free remote list
 * (the "remote free" of mimalloc: Leijen, Zorn, de Moura, "Mimalloc: free
 * list sharding in action", APLAS 2019).
 *
 * Bounds: a heap keeps at most LOCAL_CAP blocks on its own list and lets at
 * most REMOTE_CAP wait on its remote list; past that, blocks go to free().
 * A thread's heap outlives the thread (blocks may still come back to it):
 * at thread exit it is parked on a global list and adopted by the next new
 * thread.
 *
 * ASan builds use plain malloc/free so that AddressSanitizer sees every
 * use after free of a future.
 *
 * Threads: any thread allocates and frees.
 */
#ifndef WEFT_CORE_FALLOC_H
#define WEFT_CORE_FALLOC_H

#include <stddef.h>

/* Memory for a future with @size bytes, or NULL. 16-byte aligned. */
void *weft__falloc(size_t size);
/* Give back a block from weft__falloc(); NULL is ignored. */
void weft__ffree(void *p);
/* Return blocks this thread is batching for other heaps (a worker about to
 * park calls it, so that a producer's blocks do not wait on a sleeper). */
void weft__falloc_flush(void);

#endif /* WEFT_CORE_FALLOC_H */
