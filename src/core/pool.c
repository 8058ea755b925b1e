/*
 * core/pool.c - pool lifecycle, the worker loop, and submission.
 *
 * The worker loop (worker_main), after Tokio's multi-thread scheduler and
 * Go's findRunnable:
 *   1. every FAIRNESS_INTERVAL tasks, look at the inject queue first, so
 *      that a worker busy with its own deque still serves outside
 *      submitters (Go and Tokio use 61);
 *   2. its own deque, newest first (LIFO keeps the cache warm and bounds the
 *      deque in fork/join trees);
 *   3. a batch from the inject queue, oldest first;
 *   4. become a searcher (at most half the workers) and steal from a random
 *      victim onwards; a searcher spins for SPIN_NS before it parks, since a
 *      wake-up costs 10-40 us in these VMs (DESIGN.md section 3);
 *   5. park, by the protocol in idle.h.
 *
 * Shutdown and the drain check. The pool counts queue entries: every push
 * (a worker's counter, or the inject lane's) is counted before the entry
 * becomes visible, and every pop is counted after the popping worker has
 * finished with it (run it, including whatever the task submitted). An
 * outside submit that counted and then saw the pool closed records a
 * rejection. The pool has drained when every worker is parked and
 *      sum(popped) + rejected == sum(pushed),
 * read in that order: a pop is counted only after its push, so reading pops
 * first can only under-count them, and equality means no entry was in
 * flight. Work cannot reappear afterwards: outside threads are refused and
 * no worker is running a task.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft/io.h"
#include "core/falloc.h"
#include "core/future.h"
#include "core/obs.h"
#include "core/pool.h"
#include "core/spawn.h"
#include "core/wait.h"
#include "fiber/fiber.h"
#include "fiber/stack.h"
#include "util/futex.h"
#include "weft_config.h"

#define FAIRNESS_INTERVAL 61
#define INJECT_BATCH 16
#define SPIN_NS 20000
#define DEQUE_LOG2 10

/* initial-exec: a direct %fs-relative load instead of a __tls_get_addr()
 * call (the general-dynamic model a shared library gets by default), which
 * was 15% of a spawn. It takes a few bytes of the static TLS surplus that
 * glibc keeps for libraries, which is fine for one pointer (jemalloc does
 * the same). */
_Thread_local struct weft__worker *weft__tls_worker
	__attribute__((tls_model("initial-exec")));
#define tls_worker weft__tls_worker

__attribute__((noinline)) struct weft__worker *weft__current_worker(void)
{
	/* The barrier stops the compiler from reusing a thread-local address
	 * computed before a call that may have moved the task. */
	__asm__ __volatile__("" ::: "memory");
	return tls_worker;
}

__attribute__((noinline)) struct weft__fiber *weft__fiber_self(void)
{
	struct weft__worker *w;

	__asm__ __volatile__("" ::: "memory");
	w = tls_worker;
	return w ? w->fib.running : NULL;
}

WEFT_API int weft_worker_index(void)
{
	struct weft__worker *w = weft__current_worker();

	return w ? (int)w->index : -1;
}

WEFT_API unsigned weft_pool_workers(const struct weft_pool *pool)
{
	return pool ? pool->nworkers : 0;
}

WEFT_API void weft_pool_options_init(struct weft_pool_options *opts)
{
	if (opts)
		memset(opts, 0, sizeof(*opts));
}

static inline void counter_inc(_Atomic uint64_t *c)
{
	/* Owner-only counter: a plain increment published with release (the
	 * drain check's acquire loads pair with it). */
	atomic_store_explicit(
		c, atomic_load_explicit(c, memory_order_relaxed) + 1,
		memory_order_release);
}

/* xorshift64*: victim selection only. */
static inline uint32_t next_rand(struct weft__worker *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return (uint32_t)((w->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

/* ---- submission ------------------------------------------------------- */

/* @ref: take a new reference for the queue, or (false) hand it the
 * caller's. On failure the caller keeps its reference either way. */
static int push_inject(struct weft_pool *pool, struct weft_future *f,
		       bool own_worker, bool ref)
{
	unsigned lane = weft__inject_lane_of_caller(&pool->inject);

	weft__inject_count(&pool->inject, lane);
	/* seq_cst load after the seq_cst count: pairs with the seq_cst store
	 * of the state in shutdown, which then reads the counts. */
	uint32_t s = atomic_load_explicit(&pool->state, memory_order_seq_cst);
	if (s == POOL_STOPPED || (s != POOL_RUNNING && !own_worker)) {
		atomic_fetch_add_explicit(&pool->rejected, 1,
					  memory_order_seq_cst);
		return -ESHUTDOWN;
	}
	if (ref)
		weft_future_ref(f);
	weft__inject_link(&pool->inject, lane, &f->link);
	weft__idle_notify_published(&pool->idle);
	return 0;
}

/* Push @item on worker @w's own deque, counted, waking a parked worker if
 * there is one to wake. False (nothing pushed, nothing counted) if the
 * deque could not grow. */
static bool push_own(struct weft__worker *w, void *item)
{
	struct weft_pool *pool = w->pool;

	counter_inc(&w->pushed);
	if (weft__deque_push(&w->deque, item) != 0) {
		counter_inc(&w->popped); /* undo the count */
		return false;
	}
	/* A lone worker is awake (it is us): nobody to wake, and the fence
	 * in notify_one is saved. */
	if (pool->nworkers > 1)
		weft__idle_notify_one(&pool->idle);
	return true;
}

static int push(struct weft_pool *pool, struct weft_future *f, bool ref)
{
	struct weft__worker *w = weft__current_worker();

	f->pool = pool;
	if (__builtin_expect(pool->obs != 0, 0) && f->kind != K_FRAME &&
	    (pool->obs & OBS_HOOK))
		/* Inline: see weft__obs_hook(). A fork child's record
		 * (evacuated when its parent waited) is not a submission:
		 * its parent's join may even take it back unrun. */
		weft__obs_hook(pool->o, WEFT_TASK_CREATED, f, f->fn, f->arg,
			       w && w->pool == pool ? (int)w->index : -1);
	if (w && w->pool == pool) {
		/* Our own pool: no state check needed, a worker may submit
		 * while the pool drains, and it cannot be STOPPED while one
		 * of its tasks runs. */
		int err;

		/* The queue's reference must exist before a thief can take
		 * the entry, run it and drop that reference. */
		if (ref)
			weft_future_ref(f);
		if (f->kind != K_FRAME) /* not a submission: see above */
			WEFT__STAT_INC(w, submitted);
		if (push_own(w, f))
			return 0;
		/* Growth failed: the entry goes to the inject queue. */
		weft__stat_add(&w->stats.inject_overflow, 1);
		err = push_inject(pool, f, true, false);
		if (err && ref)
			weft_future_unref(f);
		return err;
	}
	return push_inject(pool, f, false, ref);
}

int weft__pool_push(struct weft_pool *pool, struct weft_future *f)
{
	return push(pool, f, true);
}

void weft__pool_push_fiber(struct weft_pool *pool, struct weft__fiber *f,
			   bool fifo)
{
	struct weft__worker *w = weft__current_worker();
	unsigned lane;

	if (!fifo && w && w->pool == pool && push_own(w, f))
		return;
	/* A suspended task belongs to the pool whatever its state: it is
	 * queued even while the pool drains or cancels (the drain check
	 * waits for it). */
	lane = weft__inject_lane_of_caller(&pool->inject);
	weft__inject_count(&pool->inject, lane);
	weft__inject_count_fiber(&pool->inject, lane);
	weft__inject_link(&pool->inject, lane, &f->link);
	weft__idle_notify_published(&pool->idle);
}

static int submit(struct weft_pool *pool, uint8_t kind, void *fn, void *arg,
		  size_t stack, struct weft_future **out)
{
	struct weft_future *f;
	int err;

	if (out)
		*out = NULL;
	if (!pool || !fn || stack > WEFT__STACK_USABLE_MAX)
		return -EINVAL;
	f = weft__future_new(kind, fn, arg, 0);
	if (!f)
		return -ENOMEM;
	if (stack > pool->fiber_stack_size)
		f->stack_kib = (uint32_t)((stack + 1023) / 1024);
	if (!out) {
		/* Detached: the queue takes over the only reference. */
		err = push(pool, f, false);
		if (err)
			weft_future_unref(f);
		return err;
	}
	/* The caller's reference and the queue's, set before anyone else can
	 * see the future (the push publishes it): no atomic increment. */
	atomic_store_explicit(&f->refs, 2, memory_order_relaxed);
	err = push(pool, f, false);
	if (err) {
		atomic_store_explicit(&f->refs, 1, memory_order_relaxed);
		weft_future_unref(f);
	} else {
		*out = f;
	}
	return err;
}

WEFT_API int weft_submit(struct weft_pool *pool, weft_task_fn fn, void *arg,
			 struct weft_future **out)
{
	return submit(pool, K_FN, (void *)fn, arg, 0, out);
}

WEFT_API int weft_submit_opts(struct weft_pool *pool, weft_task_fn fn,
			      void *arg, const struct weft_task_options *opts,
			      struct weft_future **out)
{
	return submit(pool, K_FN, (void *)fn, arg, opts ? opts->stack_size : 0,
		      out);
}

WEFT_API int weft_submit_routine(struct weft_pool *pool, weft_routine_fn fn,
				 void *arg, struct weft_future **out)
{
	return submit(pool, K_ROUTINE, (void *)fn, arg, 0, out);
}

WEFT_API bool weft_task_cancelled(void)
{
	return weft__cancel_pending();
}

/* ---- running tasks ---------------------------------------------------- */

static _Noreturn void unjoined(struct weft_future *f, uint32_t n)
{
	fprintf(stderr,
		"weft: task %p (fn %p) returned with %u spawned children not "
		"joined; every weft_spawn() needs a weft_join() before the "
		"task returns\n",
		(void *)f, f->fn, n);
	abort();
}

/* weft__future_run() between the started and finished events (obs.h).
 * The future stays alive: the caller holds a reference (the queue's, or
 * the waiter's that runs it inline). */
static __attribute__((noinline)) void run_observed(struct weft__worker *w,
						   struct weft__fiber *self,
						   struct weft_future *f)
{
	void *fn, *arg;

	weft__obs_task_fn(f, &fn, &arg);
	if (w->pool->obs == OBS_HOOK) {
		/* Only a hook: call it from here (obs.h). */
		struct weft__obs *ob = w->pool->o;

		weft__obs_hook(ob, WEFT_TASK_STARTED, f, fn, arg,
			       (int)w->index);
		weft__future_run(f);
		weft__obs_hook(ob, WEFT_TASK_FINISHED, f, fn, arg,
			       (int)self->worker->index);
		return;
	}
	weft__obs_started(w, f, fn, arg);
	weft__future_run(f);
	/* The task may have moved the fiber: the resuming worker wrote
	 * itself into it. */
	weft__obs_finished(self->worker, f, fn, arg, f->waiting_in == NULL);
}

void weft__worker_run(struct weft__worker *w, struct weft_future *f)
{
	struct weft__fiber *self = w->fib.running;
	uint32_t depth;

	/* A cancelling pool cancels queued tasks, but not the record of an
	 * evacuated fork child: its parent's join waits for the child itself
	 * (which sees the pool cancel at its own waits). */
	if (weft__pool_cancelling(w->pool) && f->kind != K_FRAME) {
		weft__future_complete(f, -ECANCELED, NULL);
		return;
	}
	/* The fiber object stays the same across a migration, so self may be
	 * kept; w may not. */
	f->waiting_in = self->current;
	/* release: cancel_wake() on another thread reads it (acquire). */
	__atomic_store_n(&f->fiber, self, __ATOMIC_RELEASE);
	self->current = f;
	depth = weft__forkq_depth(&self->fq);
	WEFT__STAT_INC(w, tasks_run);
	if (__builtin_expect(w->pool->obs != 0, 0)) {
		run_observed(w, self, f);
	} else {
		weft__future_run(f);
	}
	/* The task may have moved this fiber to another worker; the
	 * resuming worker wrote itself into the fiber. */
	w = self->worker;
	WEFT__STAT_INC(w, tasks_completed);
	if (weft__forkq_depth(&self->fq) != depth)
		unjoined(f, weft__forkq_depth(&self->fq) - depth);
	self->current = f->waiting_in;
	f->waiting_in = NULL;
}

/* Entries in the queues are futures and fibers (kind K_FIBER); a stolen
 * fork child is returned by find_work() tagged with the low bit. */
#define FRAME_TAG ((uintptr_t)1)

void weft__worker_process(struct weft__worker *w, struct weft_future *f)
{
	if ((uintptr_t)f & FRAME_TAG) {
		struct weft__frame *fr =
			(struct weft__frame *)((uintptr_t)f & ~FRAME_TAG);

		/* The frame may be gone once it has run (its owner goes
		 * on): keep what the finished event needs. */
		void *fn = (void *)fr->fn, *arg = fr->arg;
		bool obs = __builtin_expect(w->pool->obs != 0, 0);

		WEFT__STAT_INC(w, tasks_run);
		if (obs)
			weft__obs_started(w, NULL, fn, arg);
		weft__frame_run(fr);
		w = weft__current_worker();
		if (obs)
			weft__obs_finished(w, NULL, fn, arg, true);
		WEFT__STAT_INC(w, tasks_completed);
		return;
	}
	if (f->kind == K_FIBER) {
		struct weft__fiber *fb = (struct weft__fiber *)f;

#if WEFT_FORCE_MIGRATION
		/* Debug: send a fiber that last ran here to another worker
		 * (through the inject queue), a few times at most. */
		if (fb->worker == w && w->pool->nworkers > 1 &&
		    fb->bounces++ < 8) {
			counter_inc(&w->popped);
			weft__pool_push_fiber(w->pool, fb, true);
			return;
		}
		fb->bounces = 0;
#endif
		counter_inc(&w->popped);
		WEFT__STAT_INC(w, resumes);
		weft__fiber_resume(w, fb);
	}
	if (weft__future_claim(f, F_RUNNING)) {
		if (!weft__task_fits(f, w->fib.running))
			/* A task that needs a bigger stack than this fiber
			 * has: run it on a fiber of its own, which finishes
			 * this entry (weft__worker_finish) and then carries
			 * on as the loop. */
			weft__future_complete(f, weft__fiber_run_task(w, f),
					      NULL);
		else
			weft__worker_run(w, f);
	}
	weft__worker_finish(f);
}

void weft__worker_finish(struct weft_future *f)
{
	weft_future_unref(f); /* the queue's reference */
	/* The task may have moved this fiber to another worker. */
	counter_inc(&weft__current_worker()->popped);
}

/* The owner's take; a pool of one worker has no thieves. */
static inline void *own_take(struct weft__worker *w)
{
	return w->pool->nworkers == 1 ? weft__deque_take_alone(&w->deque)
				       : weft__deque_take(&w->deque);
}

void weft__worker_unqueue(struct weft__worker *w, struct weft_future *f)
{
	struct weft_future *top;

	if (weft__deque_peek(&w->deque) != f)
		return;
	top = own_take(w);
	if (top == f) {
		weft_future_unref(f); /* the queue's reference */
		counter_inc(&w->popped);
	} else if (top) {
		weft__deque_push(&w->deque, top); /* cannot need to grow */
	}
}

struct weft_future *weft__worker_take_if(struct weft__worker *w,
					 bool (*match)(struct weft_future *,
						       void *),
					 void *ctx)
{
	struct weft_future *f = weft__deque_take(&w->deque);

	if (!f)
		return NULL;
	if (match(f, ctx))
		return f;
	/* Not ours: put it back where it was (the owner's end). The slot is
	 * free, so this cannot need to grow. */
	weft__deque_push(&w->deque, f);
	return NULL;
}

/* ---- finding work ----------------------------------------------------- */

/* Take a batch from the inject queue: run the oldest, queue the rest on the
 * own deque, newest deepest, so that the owner pops them oldest first. */
static struct weft_future *grab_inject(struct weft__worker *w)
{
	struct weft__inject_node *batch[INJECT_BATCH];
	unsigned n = weft__inject_pop_batch(&w->pool->inject, w->index, batch,
					    INJECT_BATCH);

	if (n == 0)
		return NULL;
	weft__stat_add(&w->stats.inject_taken, n);
	for (unsigned i = n - 1; i >= 1; i--) {
		struct weft_future *f = weft__future_of_node(batch[i]);

		/* The entry moves from the lane to our deque: it was counted
		 * when it was pushed on the lane, and this worker will count
		 * its pop, whoever runs it, by counting this push too. */
		counter_inc(&w->pushed);
		counter_inc(&w->popped);
		if (weft__deque_push(&w->deque, f) != 0) {
			/* Out of memory growing the deque: run it now. */
			counter_inc(&w->pushed);
			weft__worker_process(w, f);
		}
	}
	if (n > 1)
		weft__idle_notify_one(&w->pool->idle);
	return weft__future_of_node(batch[0]);
}

static struct weft_future *steal_round(struct weft__worker *w)
{
	struct weft_pool *pool = w->pool;
	unsigned n = pool->nworkers;
	unsigned start = next_rand(w) % n;

	for (unsigned i = 0; i < n; i++) {
		struct weft__worker *v = &pool->workers[(start + i) % n];
		void *item;

		if (v == w)
			continue;
		struct weft__forkq *fq;

		do
			item = weft__deque_steal(&v->deque);
		while (item == WEFT__DEQUE_ABORT);
		if (item) {
			WEFT__STAT_INC(w, steals);
			return item;
		}
		/* acquire: pairs with the release in the victim's switch. */
		fq = atomic_load_explicit(&v->fq, memory_order_acquire);
		if (fq) {
			struct weft__frame *fr = weft__forkq_steal(fq);

			if (fr) {
				WEFT__STAT_INC(w, steals);
				return (void *)((uintptr_t)fr | FRAME_TAG);
			}
		}
		WEFT__STAT_INC(w, steal_failures);
	}
	return grab_inject(w);
}

static struct weft_future *search(struct weft__worker *w)
{
	int64_t until = 0;
	struct weft_future *f;

	for (;;) {
		if ((f = steal_round(w)))
			return f;
		if (atomic_load_explicit(&w->pool->state,
					 memory_order_relaxed) == POOL_STOPPED)
			return NULL;
		/* Spin a while before parking. */
		if (until == 0)
			until = weft_now() + SPIN_NS;
		else if (weft_now() >= until)
			return NULL;
		/* Yield rather than pause: on a machine with few CPUs the
		 * thread that will produce the work (the io thread, an
		 * outside submitter) may be waiting for this one. */
		sched_yield();
	}
}

static struct weft_future *find_work(struct weft__worker *w)
{
	struct weft_future *f = NULL;

	if (++w->tick % FAIRNESS_INTERVAL == 0)
		f = grab_inject(w);
	if (!f)
		f = own_take(w);
	if (!f)
		f = grab_inject(w);
	if (!f) {
		if (!w->searching)
			w->searching = weft__idle_try_search(&w->pool->idle);
		if (w->searching)
			f = search(w);
	}
	if (f && w->searching) {
		/* Found work: the last searcher to stop wakes another, so
		 * that parallelism ramps up one worker at a time. */
		w->searching = false;
		if (weft__idle_stop_search(&w->pool->idle))
			weft__idle_notify_one(&w->pool->idle);
	}
	return f;
}

/* Work any worker could see right now (the re-check before sleeping). */
static bool work_visible(struct weft_pool *pool)
{
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct weft__forkq *fq = atomic_load_explicit(
			&pool->workers[i].fq, memory_order_acquire);

		if (weft__deque_size(&pool->workers[i].deque))
			return true;
		if (fq && weft__forkq_maybe_nonempty(fq))
			return true;
	}
	return weft__inject_maybe_nonempty(&pool->inject);
}

static void park(struct weft__worker *w)
{
	struct weft_pool *pool = w->pool;

	weft__falloc_flush();
	weft__idle_prepare_park(&pool->idle, w->index, w->searching);
	w->searching = false;
	if (atomic_load(&pool->state) == POOL_STOPPED)
		weft__idle_notify_all(&pool->idle);
	else if (work_visible(pool))
		weft__idle_notify_one(&pool->idle);
	if (atomic_load(&pool->state) != POOL_RUNNING) {
		atomic_fetch_add(&pool->quiesce, 1);
		weft__futex_wake(&pool->quiesce, 1);
	}
	WEFT__STAT_INC(w, parks);
	if (__builtin_expect(pool->obs != 0, 0))
		weft__obs_park(w, false);
	weft__idle_park(&pool->idle, w->index);
	if (__builtin_expect(pool->obs != 0, 0))
		weft__obs_park(w, true);
	WEFT__STAT_INC(w, wakeups);
	w->searching = true;
}

static void *worker_main(void *arg)
{
	struct weft__worker *w = arg;
	struct weft_pool *pool = w->pool;
	char name[32];

	tls_worker = w;
	snprintf(name, sizeof(name), "%s-%u", pool->name, w->index);
	name[15] = '\0'; /* the kernel's limit for thread names */
#if WEFT_HAVE_PTHREAD_SETNAME_NP
	pthread_setname_np(pthread_self(), name);
#endif
	struct weft__fiber *first;

	if (pool->on_start)
		pool->on_start(w->index, pool->hook_arg);
	weft__stack_overflow_thread_init();
	/* The first fiber before we count as started, so that a pool whose
	 * workers cannot get one fails to create (-ENOMEM) instead. */
	first = weft__fiber_reserve();
	if (!first)
		atomic_store(&pool->start_err, -ENOMEM);
	atomic_fetch_add(&pool->nstarted, 1);
	weft__futex_wake(&pool->nstarted, 1);

	if (first)
		weft__fiber_run_loop(w, first);
	weft__stack_overflow_thread_fini();
	if (pool->on_stop)
		pool->on_stop(w->index, pool->hook_arg);
	tls_worker = NULL;
	return NULL;
}

_Noreturn void weft__worker_loop(void)
{
	for (;;) {
		/* Re-read every time round: a task run below may have moved
		 * this fiber to another worker. */
		struct weft__worker *w = weft__current_worker();
		struct weft_future *f = find_work(w);

		if (f) {
			weft__worker_process(w, f);
			continue;
		}
		if (atomic_load(&w->pool->state) == POOL_STOPPED)
			weft__fiber_exit_loop();
		park(w);
	}
}

/* ---- lifecycle -------------------------------------------------------- */

static bool drained(struct weft_pool *pool)
{
	uint64_t popped = 0, pushed = 0;

	if (weft__idle_parked(&pool->idle) != pool->nworkers)
		return false;
	/* Pops first (see the file comment). seq_cst loads: they pair with
	 * the release in counter_inc() and keep the two sums in order. */
	for (unsigned i = 0; i < pool->nworkers; i++)
		popped += atomic_load(&pool->workers[i].popped);
	popped += atomic_load(&pool->rejected);
	for (unsigned i = 0; i < pool->nworkers; i++)
		pushed += atomic_load(&pool->workers[i].pushed);
	pushed += weft__inject_pushed(&pool->inject);
	return popped == pushed &&
	       weft__idle_parked(&pool->idle) == pool->nworkers;
}

static void join_workers(struct weft_pool *pool)
{
	atomic_store(&pool->state, POOL_STOPPED);
	weft__idle_notify_all(&pool->idle);
	for (unsigned i = 0; i < pool->nworkers; i++)
		if (pool->workers[i].started)
			pthread_join(pool->workers[i].thread, NULL);
	pool->joined = true;
}

static void drop_stale(struct weft_future *f)
{
	/* A fiber entry cannot be stale: the drain waited for it. */
	if (f->kind != K_FIBER)
		weft_future_unref(f);
}

/* Free everything; the workers have been joined. Entries still queued are
 * stale (their tasks completed or were cancelled): drop their references. */
static void pool_free(struct weft_pool *pool)
{
	struct weft__inject_node *batch[INJECT_BATCH];
	unsigned n;

	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct weft__worker *w = &pool->workers[i];
		struct weft_future *f;

		if (!w->deque.retired && !atomic_load(&w->deque.array))
			continue;
		while ((f = weft__deque_take(&w->deque)))
			drop_stale(f);
		weft__deque_fini(&w->deque);
	}
	if (pool->inject.lanes) {
		while ((n = weft__inject_pop_batch(&pool->inject, 0, batch,
						   INJECT_BATCH)))
			for (unsigned i = 0; i < n; i++)
				drop_stale(weft__future_of_node(batch[i]));
		weft__inject_fini(&pool->inject);
	}
	if (pool->fibers_ready) {
		weft__io_fini(pool);
		weft__fibers_fini(pool);
		/* Every thread has stopped: the WEFT_TRACE file is written
		 * here. */
		weft__obs_fini(pool);
	}
	weft__idle_fini(&pool->idle);
	pthread_mutex_destroy(&pool->shutdown_lock);
	free(pool->workers);
	free(pool);
}

static unsigned lanes_for(unsigned nworkers)
{
	unsigned n = 4;

	while (n < nworkers && n < 64)
		n <<= 1;
	return n;
}

WEFT_API int weft_pool_create(const struct weft_pool_options *opts,
			      struct weft_pool **out)
{
	struct weft_pool_options defaults;
	struct weft_pool *pool;
	unsigned n;
	int err = -ENOMEM;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!opts) {
		weft_pool_options_init(&defaults);
		opts = &defaults;
	}
	if (opts->workers > WEFT_MAX_WORKERS)
		return -EINVAL;
	if (opts->stack_size &&
	    (opts->stack_size < WEFT__STACK_MIN ||
	     opts->stack_size > WEFT__STACK_USABLE_MAX))
		return -EINVAL;
	if (opts->io_backend > WEFT_IO_BLOCKING || opts->io_entries == 1 ||
	    opts->io_entries > 4096)
		return -EINVAL;
	n = opts->workers ? opts->workers : weft_cpu_count();

	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pool->nworkers = n;
	snprintf(pool->name, sizeof(pool->name), "%s",
		 opts->name ? opts->name : "weft");
	pool->on_start = opts->on_worker_start;
	pool->on_stop = opts->on_worker_stop;
	pool->hook_arg = opts->hook_arg;
	pthread_mutex_init(&pool->shutdown_lock, NULL);
	atomic_init(&pool->state, POOL_RUNNING);

	pool->workers = aligned_alloc(64, sizeof(*pool->workers) * n);
	if (!pool->workers)
		goto err_free;
	weft__stack_overflow_init(weft__fiber_overflow_lookup);
	memset(pool->workers, 0, sizeof(*pool->workers) * n);
	if (weft__idle_init(&pool->idle, n) != 0) {
		free(pool->workers);
		goto err_free;
	}
	if (weft__inject_init(&pool->inject, lanes_for(n)) != 0)
		goto err_unwind;
	if (weft__fibers_init(pool, opts->stack_size ? opts->stack_size
						     : WEFT_STACK_SIZE_DEFAULT) !=
	    0)
		goto err_unwind;
	err = weft__obs_init(pool, opts);
	if (err == 0)
		err = weft__io_init(pool, opts);
	if (err != 0) {
		weft__obs_fini(pool);
		weft__fibers_fini(pool);
		goto err_unwind;
	}
	err = -ENOMEM;
	pool->fibers_ready = true;
	for (unsigned i = 0; i < n; i++) {
		struct weft__worker *w = &pool->workers[i];

		w->pool = pool;
		w->index = i;
		w->rng = 0x9E3779B97F4A7C15ULL * (i + 1);
		if (weft__deque_init(&w->deque, DEQUE_LOG2) != 0)
			goto err_unwind;
	}
	for (unsigned i = 0; i < n; i++) {
		struct weft__worker *w = &pool->workers[i];

		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			err = -EAGAIN;
			goto err_unwind;
		}
		w->started = true;
	}
	/* Wait until every worker has run its start hook. */
	for (;;) {
		uint32_t s = atomic_load(&pool->nstarted);

		if (s == n)
			break;
		weft__futex_wait(&pool->nstarted, s, WEFT_FOREVER);
	}
	if (atomic_load(&pool->start_err)) {
		err = atomic_load(&pool->start_err);
		goto err_unwind;
	}
	*out = pool;
	return 0;

err_unwind:
	join_workers(pool);
	pool_free(pool);
	return err;
err_free:
	pthread_mutex_destroy(&pool->shutdown_lock);
	free(pool);
	return -ENOMEM;
}

static bool on_own_worker(struct weft_pool *pool)
{
	struct weft__worker *w = weft__current_worker();

	return w && w->pool == pool;
}

WEFT_API int weft_pool_shutdown(struct weft_pool *pool, unsigned flags,
				int64_t deadline)
{
	struct timespec ts;
	int err = 0;

	if (!pool || (flags & ~(unsigned)WEFT_SHUTDOWN_CANCEL))
		return -EINVAL;
	if (on_own_worker(pool))
		return -EDEADLK;

	if (deadline == WEFT_FOREVER) {
		pthread_mutex_lock(&pool->shutdown_lock);
	} else {
		/* pthread_mutex_timedlock() takes CLOCK_REALTIME; convert the
		 * monotonic deadline to it. (pthread_mutex_clocklock() would
		 * not need this, but ThreadSanitizer does not intercept it
		 * and then reports the unlock as a bug.) */
		struct timespec now;
		int64_t left = deadline - weft_now(), abs_ns;

		clock_gettime(CLOCK_REALTIME, &now);
		abs_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec +
			 (left > 0 ? left : 0);
		ts.tv_sec = (time_t)(abs_ns / 1000000000);
		ts.tv_nsec = (long)(abs_ns % 1000000000);
		if (pthread_mutex_timedlock(&pool->shutdown_lock, &ts) != 0)
			return -ETIMEDOUT;
	}
	if (pool->joined)
		goto out_unlock;

	/* Close the pool to outside submitters; seq_cst pairs with the load
	 * in push_inject() (see drained()). Cancelling wins over draining. */
	uint32_t s = atomic_load(&pool->state);
	uint32_t to = (flags & WEFT_SHUTDOWN_CANCEL) ? POOL_CANCELLING
		      : s == POOL_RUNNING	     ? POOL_DRAINING
						     : s;
	atomic_store(&pool->state, to);
	/* Parked workers must wake to see queued work get cancelled. */
	weft__idle_notify_all(&pool->idle);
	/* Tasks suspended in waits see the cancel now, not when the wait
	 * would have ended. */
	if (to == POOL_CANCELLING)
		weft__fibers_cancel_waits(pool);

	for (;;) {
		uint32_t seq = atomic_load(&pool->quiesce);
		int64_t now, until;

		if (drained(pool))
			break;
		now = weft_now();
		if (now >= deadline) {
			err = -ETIMEDOUT;
			goto out_unlock;
		}
		/* Workers bump quiesce as they go idle; a 10 ms poll covers a
		 * worker that went idle between our check and our sleep in a
		 * way the sequence number did not show. */
		until = now + 10000000;
		weft__futex_wait(&pool->quiesce, seq,
				 until < deadline ? until : deadline);
	}
	join_workers(pool);
out_unlock:
	pthread_mutex_unlock(&pool->shutdown_lock);
	return err;
}

WEFT_API void weft_pool_destroy(struct weft_pool *pool)
{
	if (!pool)
		return;
	if (on_own_worker(pool)) {
		fprintf(stderr,
			"weft: weft_pool_destroy() called from a task of the "
			"pool it destroys (pool %p); destroy it from outside "
			"the pool\n",
			(void *)pool);
		abort();
	}
	if (weft_pool_shutdown(pool, 0, WEFT_FOREVER) != 0) {
		fprintf(stderr, "weft: weft_pool_destroy(%p): shutdown failed\n",
			(void *)pool);
		abort();
	}
	pool_free(pool);
}
