/*
 * fiber/fiber.c - fibers: allocation, the annotated switch, suspend and
 * resume (see fiber.h for the model).
 *
 * Every switch goes through switch_to(), which is also where the sanitizers
 * are told (DESIGN.md section 5, research/fibers.md section 4):
 *  - ASan: __sanitizer_start_switch_fiber() with the destination's stack
 *    before the switch, __sanitizer_finish_switch_fiber() right after
 *    landing; NULL for the fake stack of a context left for good.
 *  - TSan: __tsan_switch_to_fiber() in the same function as the switch (a
 *    separate instrumented helper would unbalance TSan's shadow call
 *    stack); a fiber's TSan context is created when it is first switched to
 *    and destroyed when its frames die, by whoever lands after it.
 *  - Valgrind: stacks are registered by stack.c.
 *
 * The handoff. A switch carries a pointer to a struct handoff on the
 * stack of the context that switches away. The destination runs it first
 * thing after landing (landed()): recycle the previous fiber if its frames
 * are dead, or run the park action that publishes it as a waiter. The
 * handoff is copied before either, because recycling may reuse the memory
 * it lives in.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/future.h"
#include "core/pool.h"
#include "core/wait.h"
#include "fiber/context.h"
#include "fiber/fiber.h"
#include "core/obs.h"
#include "util/sigfmt.h"
#include "util/spinlock.h"
#include "weft_config.h"

#if WEFT_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define CACHE_MAX 16

struct handoff {
	struct weft__fiber *to;	  /* the destination fiber (NULL: thread) */
	struct weft__fiber *prev; /* the fiber that switched away, or NULL */
	bool prev_dead;		  /* its frames are dead: recycle it */
	weft__park_fn park;	  /* else: publish it */
	void *arg;
};

/* ---- allocation ------------------------------------------------------- */

/* Bytes at the top of the mapping for the descriptor (cache-line aligned,
 * rounded so the stack below stays 16-byte aligned). */
static size_t desc_size(void)
{
	return (sizeof(struct weft__fiber) + 63) & ~(size_t)63;
}

static void fiber_entry(void *xfer);

/* A fresh context on @f's stack that starts the scheduling loop. */
static void fiber_reset(struct weft__fiber *f)
{
	f->sp = weft__ctx_init(f, fiber_entry);
	/* Under wait_lock: a canceller holding a stale f->fiber of a task
	 * that ran here earlier reads these under it (cancel_wake). */
	weft__fiber_wait_lock(f);
	f->current = NULL;
	f->waiting = NULL;
	f->shield = 0;
	weft__fiber_wait_unlock(f);
	f->used = false;
	f->start_task = NULL;
	f->bounces = 0;
}

static struct weft__fiber *fiber_map(struct weft_pool *pool, size_t size)
{
	struct weft__stack st;
	struct weft__fiber *f;

	if (weft__stack_map(size + desc_size(), &st) != 0)
		return NULL;
	f = (struct weft__fiber *)((char *)st.hi - desc_size());
	memset(f, 0, sizeof(*f));
	f->kind = K_FIBER;
	f->pool = pool;
	f->stack = st;
	f->stack_size = (size_t)((char *)f - (char *)st.lo);
	atomic_init(&f->wait_lock, 0);
	weft__forkq_init(&f->fq, &f->current);
	/* Every fiber is listed, for weft__fibers_cancel_waits(). */
	pthread_mutex_lock(&pool->fiber_lock);
	if (pool->fiber_nall == pool->fiber_capall) {
		size_t cap = pool->fiber_capall ? 2 * pool->fiber_capall : 64;
		struct weft__fiber **all =
			realloc(pool->fiber_all, cap * sizeof(*all));

		if (!all) {
			pthread_mutex_unlock(&pool->fiber_lock);
			weft__stack_unmap(&st);
			return NULL;
		}
		pool->fiber_all = all;
		pool->fiber_capall = cap;
	}
	pool->fiber_all[pool->fiber_nall++] = f;
	pthread_mutex_unlock(&pool->fiber_lock);
	atomic_fetch_add_explicit(&pool->fibers_mapped, 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&pool->stack_bytes, st.map_size,
				  memory_order_relaxed);
	return f;
}

void weft__fibers_cancel_task_waits(struct weft_pool *pool,
				    struct weft_future *task)
{
	pthread_mutex_lock(&pool->fiber_lock);
	for (size_t i = 0; i < pool->fiber_nall; i++) {
		struct weft__fiber *f = pool->fiber_all[i];

		weft__fiber_wait_lock(f);
		/* waiting first: current and shield are stable only while
		 * the fiber waits (weft__cancel_wake()). */
		if (f->waiting && (!task || f->current == task) && !f->shield)
			weft__waiter_wake(f->waiting, W_CANCELLED);
		weft__fiber_wait_unlock(f);
	}
	pthread_mutex_unlock(&pool->fiber_lock);
}

void weft__fibers_cancel_waits(struct weft_pool *pool)
{
	weft__fibers_cancel_task_waits(pool, NULL);
}

static void fiber_unmap(struct weft__fiber *f)
{
	struct weft__stack st = f->stack;

#if WEFT_TSAN
	if (f->tsan)
		__tsan_destroy_fiber(f->tsan);
#endif
	weft__stack_unmap(&st);
}

/* A free fiber for worker @w, its context set to start the loop. */
static struct weft__fiber *fiber_get(struct weft__worker *w)
{
	struct weft__fiber_worker *fw = &w->fib;
	struct weft_pool *pool = w->pool;
	struct weft__fiber *f = fw->cache;

	if (f) {
		fw->cache = f->next_free;
		fw->ncached--;
		atomic_store_explicit(&w->stats.fibers_cached, fw->ncached,
				      memory_order_relaxed);
	} else {
		pthread_mutex_lock(&pool->fiber_lock);
		f = pool->fiber_free;
		if (f) {
			pool->fiber_free = f->next_free;
			pool->fiber_nfree--;
		}
		pthread_mutex_unlock(&pool->fiber_lock);
		if (!f && !(f = fiber_map(pool, pool->fiber_stack_size)))
			return NULL;
	}
	fiber_reset(f);
	return f;
}

/* Give @f (whose frames are dead) back to worker @w's cache; when that is
 * full, move half of it to the pool's list, returning their stack pages to
 * the kernel (a pooled reuse costs about 1 us then, against 6 us for a
 * fresh mapping: research/fibers.md section 2.2). */
static void fiber_put(struct weft__worker *w, struct weft__fiber *f)
{
	struct weft__fiber_worker *fw = &w->fib;
	struct weft_pool *pool = w->pool;
	struct weft__fiber *spill = NULL, *last = NULL;
	unsigned n = 0;

	f->next_free = fw->cache;
	fw->cache = f;
	if (++fw->ncached <= CACHE_MAX) {
		atomic_store_explicit(&w->stats.fibers_cached, fw->ncached,
				      memory_order_relaxed);
		return;
	}
	while (fw->ncached > CACHE_MAX / 2) {
		struct weft__fiber *g = fw->cache;

		fw->cache = g->next_free;
		fw->ncached--;
		weft__stack_release(&g->stack, desc_size());
		g->next_free = spill;
		if (!spill)
			last = g;
		spill = g;
		n++;
	}
	atomic_store_explicit(&w->stats.fibers_cached, fw->ncached,
			      memory_order_relaxed);
	pthread_mutex_lock(&pool->fiber_lock);
	last->next_free = pool->fiber_free;
	pool->fiber_free = spill;
	pool->fiber_nfree += n;
	pthread_mutex_unlock(&pool->fiber_lock);
}

int weft__fibers_init(struct weft_pool *pool, size_t stack_size)
{
	pool->fiber_stack_size = stack_size;
	pool->fiber_free = NULL;
	pool->fiber_nfree = 0;
	pool->fiber_all = NULL;
	pool->fiber_nall = pool->fiber_capall = 0;
	atomic_init(&pool->fibers_mapped, 0);
	return -pthread_mutex_init(&pool->fiber_lock, NULL);
}

void weft__fibers_fini(struct weft_pool *pool)
{
	size_t n = 0;

	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct weft__fiber_worker *fw = &pool->workers[i].fib;

		while (fw->cache) {
			struct weft__fiber *f = fw->cache;

			fw->cache = f->next_free;
			fiber_unmap(f);
			n++;
		}
		fw->ncached = 0;
	}
	while (pool->fiber_free) {
		struct weft__fiber *f = pool->fiber_free;

		pool->fiber_free = f->next_free;
		fiber_unmap(f);
		n++;
	}
	if (n != atomic_load(&pool->fibers_mapped)) {
		fprintf(stderr,
			"weft: pool %p freed with %zu of its %zu fibers still "
			"in use (a task suspended forever?)\n",
			(void *)pool, (size_t)atomic_load(&pool->fibers_mapped) - n,
			(size_t)atomic_load(&pool->fibers_mapped));
		abort();
	}
	free(pool->fiber_all);
	pthread_mutex_destroy(&pool->fiber_lock);
}

/* ---- the switch ------------------------------------------------------- */

static void check_canary(struct weft__fiber *f)
{
	if (f && !weft__stack_canary_ok(&f->stack)) {
		fprintf(stderr,
			"weft: stack overflow in a task (fiber %p, %zu-byte "
			"stack without a guard page: the guarded-stack budget "
			"was spent, see WEFT_GUARDED_STACKS); raise the stack "
			"size with weft_pool_options.stack_size\n",
			(void *)f, f->stack_size);
		abort();
	}
}

/* Run the handoff @hp from the context that switched to us, on worker @w. */
static void landed(struct weft__worker *w, struct handoff *hp)
{
	struct handoff h = *hp; /* hp may be recycled below */

	if (!h.prev)
		return;
	if (h.prev_dead) {
#if WEFT_TSAN
		/* Its frames are dead and it is not running: destroy its TSan
		 * context now; the next use creates a fresh one. */
		__tsan_destroy_fiber(h.prev->tsan);
		h.prev->tsan = NULL;
#endif
		fiber_put(w, h.prev);
	}
	if (h.park)
		h.park(h.prev, h.arg);
}

/*
 * Switch from @from (NULL: the worker thread's own context) to @to (NULL:
 * the thread's context) on worker @w, handing over @h. @dying: @from will
 * never be resumed. Returns the handoff of whatever later switches back to
 * @from, with the worker that did it in *@wout.
 */
static struct handoff *switch_to(struct weft__worker *w,
				 struct weft__fiber *from,
				 struct weft__fiber *to, struct handoff *h,
				 bool dying, struct weft__worker **wout)
{
	struct weft__fiber_worker *fw = &w->fib;
	void **save = from ? &from->sp : &fw->thread_sp;
	void *to_sp = to ? to->sp : fw->thread_sp;

	check_canary(from);
	fw->running = to;
	if (to) {
		to->worker = w;
		/* release: a thief that reads the pointer sees the queue's
		 * state as of this switch. */
		atomic_store_explicit(&w->fq, &to->fq, memory_order_release);
	} else {
		atomic_store_explicit(&w->fq, NULL, memory_order_release);
	}
	/* For weft/async.h's inline fast path, on the thread that will run
	 * @to; written before the switch only. */
	weft__tls_fq = to ? &to->fq : NULL;
#if WEFT_ASAN
	__sanitizer_start_switch_fiber(
		dying ? NULL : from ? &from->asan_fake : &fw->thread_asan_fake,
		to ? to->stack.lo : fw->thread_stack_lo,
		to ? to->stack_size : fw->thread_stack_size);
#endif
#if WEFT_TSAN
	if (to && !to->tsan)
		to->tsan = __tsan_create_fiber(0);
	__tsan_switch_to_fiber(to ? to->tsan : fw->thread_tsan, 0);
#endif
	(void)dying;
	h = weft__ctx_switch(save, to_sp, h);

	/* Resumed, maybe on another thread: re-read the worker. */
	w = from ? from->worker : weft__current_worker();
#if WEFT_ASAN
	{
		const void *lo;
		size_t size;

		__sanitizer_finish_switch_fiber(
			from ? from->asan_fake : w->fib.thread_asan_fake, &lo,
			&size);
	}
#endif
	landed(w, h);
	*wout = w;
	return h;
}

/* First instructions of every fiber: finish the switch that started it, run
 * its handoff, then the scheduling loop. */
static void fiber_entry(void *xfer)
{
	struct handoff *h = xfer;
	struct weft__fiber *self = h->to;
	struct weft__worker *w = self->worker;

#if WEFT_ASAN
	{
		const void *lo;
		size_t size;

		__sanitizer_finish_switch_fiber(NULL, &lo, &size);
		if (!h->prev) {
			/* Started from the worker thread's own stack: this is
			 * how we learn its bounds for the switch back. */
			w->fib.thread_stack_lo = lo;
			w->fib.thread_stack_size = size;
		}
	}
#endif
	self->used = true;
	landed(w, h);
	if (self->start_task) {
		struct weft_future *t = self->start_task;

		self->start_task = NULL;
		weft__worker_run(w, t);
		weft__worker_finish(t);
	}
	weft__worker_loop();
}

int weft__fiber_run_task(struct weft__worker *w, struct weft_future *f)
{
	struct weft__fiber *self = w->fib.running;
	struct weft__fiber *nf =
		fiber_map(w->pool, (size_t)f->stack_kib * 1024);
	struct handoff h;
	struct weft__worker *wout;

	if (!nf)
		return -ENOMEM;
	fiber_reset(nf);
	nf->start_task = f;
	h = (struct handoff){.to = nf, .prev = self, .prev_dead = true};
	switch_to(w, self, nf, &h, true, &wout);
	abort();
}

/* ---- the public face -------------------------------------------------- */

void weft__fiber_run_loop(struct weft__worker *w, struct weft__fiber *f)
{
	struct handoff h = {.to = f};
	struct weft__worker *wout;

#if WEFT_TSAN
	w->fib.thread_tsan = __tsan_get_current_fiber();
#endif
	switch_to(w, NULL, f, &h, false, &wout);
}

_Noreturn void weft__fiber_exit_loop(void)
{
	struct weft__worker *w = weft__current_worker();
	struct weft__fiber *self = w->fib.running;
	struct handoff h = {.to = NULL, .prev = self, .prev_dead = true};
	struct weft__worker *wout;

	switch_to(w, self, NULL, &h, true, &wout);
	abort(); /* a dead context was resumed */
}

_Noreturn void weft__fiber_resume(struct weft__worker *w,
				  struct weft__fiber *f)
{
	struct weft__fiber *self = w->fib.running;
	struct handoff h = {.to = f, .prev = self, .prev_dead = true};
	struct weft__worker *wout;

	switch_to(w, self, f, &h, true, &wout);
	abort();
}

struct weft__fiber *weft__fiber_reserve(void)
{
	return fiber_get(weft__current_worker());
}

void weft__fiber_unreserve(struct weft__fiber *next)
{
	fiber_put(weft__current_worker(), next);
}

void weft__fiber_suspend_to(struct weft__fiber *next, weft__park_fn park,
			    void *arg)
{
	struct weft__worker *w = weft__current_worker();
	struct weft__fiber *self = w->fib.running;
	struct weft__worker *wout;
	struct handoff h;

	/* Children not yet joined must stay runnable while we wait (we may
	 * be waiting for one of them). */
	weft__forkq_evacuate(&self->fq, w->pool);
	WEFT__STAT_INC(w, suspends);
	if (__builtin_expect(w->pool->obs != 0, 0))
		weft__obs_suspend(w, self);
	h = (struct handoff){.to = next, .prev = self, .park = park,
			     .arg = arg};
	switch_to(w, self, next, &h, false, &wout);
	/* Resumed on worker wout (which counted the resume). */
	if (__builtin_expect(wout->pool->obs != 0, 0))
		weft__obs_resume(wout, self);
}

int weft__fiber_suspend(weft__park_fn park, void *arg)
{
	struct weft__fiber *next = weft__fiber_reserve();

	if (!next)
		return -ENOMEM;
	weft__fiber_suspend_to(next, park, arg);
	return 0;
}

void weft__fiber_ready(struct weft__fiber *f)
{
	weft__pool_push_fiber(f->pool, f, false);
}

void weft__fiber_ready_fifo(struct weft__fiber *f)
{
	weft__pool_push_fiber(f->pool, f, true);
}

void weft__fiber_wait_lock(struct weft__fiber *f)
{
	weft__spin_lock(&f->wait_lock);
}

void weft__fiber_wait_unlock(struct weft__fiber *f)
{
	weft__spin_unlock(&f->wait_lock);
}

/* ---- stack overflow --------------------------------------------------- */

size_t weft__fiber_overflow_lookup(void *addr, char *buf, size_t len)
{
	/* In the SIGSEGV handler, on the faulting thread: nothing migrates
	 * while it runs, so the worker's running fiber is the one that
	 * faulted. Only async-signal-safe formatting below. */
	struct weft__worker *w = weft__current_worker();
	struct weft__fiber *f = w ? w->fib.running : NULL;
	uintptr_t a = (uintptr_t)addr;
	struct weft_future *t;
	size_t n = 0;

	if (!f || !f->stack.guarded || a < (uintptr_t)f->stack.map ||
	    a >= (uintptr_t)f->stack.lo)
		return 0;
	t = f->current;
	n = weft__sigfmt_str(buf, len, n, "weft: stack overflow in task ");
	if (t) {
		n = weft__sigfmt_ptr(buf, len, n, t);
		n = weft__sigfmt_str(buf, len, n, " (function ");
		n = weft__sigfmt_ptr(buf, len, n, t->fn);
		n = weft__sigfmt_str(buf, len, n, ")");
	} else {
		n = weft__sigfmt_str(buf, len, n, "(a spawned child or the "
						  "scheduler)");
	}
	n = weft__sigfmt_str(buf, len, n, " on worker ");
	n = weft__sigfmt_str(buf, len, n, w->pool->name);
	n = weft__sigfmt_str(buf, len, n, "-");
	n = weft__sigfmt_uint(buf, len, n, w->index);
	n = weft__sigfmt_str(buf, len, n, ": its fiber stack is ");
	n = weft__sigfmt_uint(buf, len, n, f->stack_size);
	n = weft__sigfmt_str(buf, len, n, " bytes (fault at ");
	n = weft__sigfmt_ptr(buf, len, n, addr);
	n = weft__sigfmt_str(buf, len, n,
			     ", in the guard pages below it). Raise it "
			     "with weft_pool_options.stack_size, or for one "
			     "task with weft_task_options.stack_size.\n");
	return n;
}
