/*
 * core/spawn.c - weft_spawn() / weft_join(): the fork queue (spawn.h).
 */
#include <errno.h>
#include <stddef.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/future.h"
#include "util/futex.h"
#include "core/pool.h"
#include "core/spawn.h"
#include "fiber/fiber.h"
#include "weft_config.h"

/* weft/async.h spells these layouts out for its inline fast path. */
#define SAME(a, fa, b, fb)                                                    \
	_Static_assert(offsetof(struct a, fa) == offsetof(struct b, fb),     \
		       #a "." #fa " moved: update weft/async.h")
SAME(weft__frame, fn, weft_spawn, fn_);
SAME(weft__frame, arg, weft_spawn, arg_);
SAME(weft__frame, value, weft_spawn, value_);
SAME(weft__frame, err, weft_spawn, err_);
SAME(weft__frame, slot, weft_spawn, slot_);
SAME(weft__frame, fq, weft_spawn, fq_);
SAME(weft__frame, sync, weft_spawn, sync_);
SAME(weft__frame, rec, weft_spawn, rec_);
SAME(weft__frame, state, weft_spawn, state_);
SAME(weft__frame, magic, weft_spawn, magic_);
SAME(weft__frame, task, weft_spawn, task_);
_Static_assert(sizeof(struct weft__frame) == sizeof(struct weft_spawn),
	       "struct weft_spawn does not match struct weft__frame");
SAME(weft__forkq, ts, weft__forkq_abi, ts_);
SAME(weft__forkq, splitreq, weft__forkq_abi, splitreq);
SAME(weft__forkq, head, weft__forkq_abi, head);
SAME(weft__forkq, osplit, weft__forkq_abi, osplit);
SAME(weft__forkq, current, weft__forkq_abi, current);
SAME(weft__forkq, slot, weft__forkq_abi, slot);
_Static_assert(WEFT__FRAME_MAGIC == 0x666f726bu, "magic differs");

_Thread_local struct weft__forkq *weft__tls_fq
	__attribute__((tls_model("initial-exec")));

/* Exported for the inline fast path: &weft__tls_fq minus the thread
 * pointer, the same in every thread for a static TLS variable. */
WEFT_API long weft__fq_tls_offset;

__attribute__((constructor)) static void tls_offset_init(void)
{
#if defined(WEFT__HAVE_TP)
	weft__fq_tls_offset = (long)((char *)&weft__tls_fq - weft__tp());
#endif
	/* Elsewhere there is no inline fast path, and no reader. */
}

static inline uint64_t pack(uint32_t tail, uint32_t split)
{
	return (uint64_t)tail | (uint64_t)split << 32;
}

static inline uint32_t tail_of(uint64_t ts)
{
	return (uint32_t)ts;
}

static inline uint32_t split_of(uint64_t ts)
{
	return (uint32_t)(ts >> 32);
}

static inline uint32_t head_get(struct weft__forkq *q)
{
	return atomic_load_explicit(&q->head, memory_order_relaxed);
}

static inline void head_set(struct weft__forkq *q, uint32_t h)
{
	atomic_store_explicit(&q->head, h, memory_order_relaxed);
}

static inline uint32_t state_get(struct weft__frame *fr)
{
	return __atomic_load_n(&fr->state, __ATOMIC_RELAXED);
}

static inline void state_set(struct weft__frame *fr, uint32_t s)
{
	__atomic_store_n(&fr->state, s, __ATOMIC_RELAXED);
}

void weft__forkq_init(struct weft__forkq *q, struct weft_future **current)
{
	q->current = current;
	atomic_init(&q->ts, 0);
	atomic_init(&q->splitreq, 0);
	atomic_init(&q->head, 0);
	q->osplit = 0;
}

bool weft__forkq_maybe_nonempty(struct weft__forkq *q)
{
	uint64_t ts = atomic_load_explicit(&q->ts, memory_order_acquire);

	return tail_of(ts) < head_get(q);
}

/* ---- running a child -------------------------------------------------- */

static void frame_wake(struct weft__frame *fr)
{
	/* acq_rel: release publishes value and err to the joiner; acquire
	 * pairs with the joiner's CAS that stored its fiber. After this
	 * exchange the frame may be gone (the joiner returns). */
	uintptr_t old = __atomic_exchange_n(&fr->sync, WEFT__FRAME_DONE,
					    __ATOMIC_ACQ_REL);

	if (old > WEFT__FRAME_DONE)
		weft__fiber_ready((struct weft__fiber *)old);
}

void weft__frame_run(struct weft__frame *fr)
{
	struct weft__fiber *self = weft__fiber_self();
	struct weft_future *saved = self->current;
	void *value = NULL;
	int err;

	/* Run as part of the parent task (the fiber object stays the same if
	 * the child suspends and migrates, so self may be kept). The parent
	 * counts its children running elsewhere, for weft__cancel_wake(). */
	self->current = fr->task;
	if (fr->task)
		atomic_fetch_add_explicit(&fr->task->remote_kids, 1,
					  memory_order_relaxed);
	err = fr->fn(fr->arg, &value);
	if (fr->task)
		atomic_fetch_sub_explicit(&fr->task->remote_kids, 1,
					  memory_order_relaxed);
	self->current = saved;
	fr->value = err < 0 ? NULL : value;
	fr->err = err < 0 ? err : 0;
	frame_wake(fr);
}

/* Park action: register as the joiner unless the child finished first. */
static void park_on_frame(struct weft__fiber *self, void *arg)
{
	struct weft__frame *fr = arg;
	uintptr_t expected = 0;

	/* acq_rel: on failure (child done) the acquire sees its outcome. */
	if (!__atomic_compare_exchange_n(&fr->sync, &expected,
					 (uintptr_t)self, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		weft__fiber_ready(self);
}

/* Wait until someone else has run the child of @fr. */
static void wait_frame(struct weft__frame *fr)
{
	unsigned spins = 0;

	if (__atomic_load_n(&fr->sync, __ATOMIC_ACQUIRE) == WEFT__FRAME_DONE)
		return;
	/* Children are usually short: spin a little before suspending. */
	while (spins++ < 64) {
		if (__atomic_load_n(&fr->sync, __ATOMIC_ACQUIRE) ==
		    WEFT__FRAME_DONE)
			return;
		weft__cpu_relax();
	}
	if (weft__fiber_suspend(park_on_frame, fr) == 0)
		return;
	/* No fiber for the worker to go on with: wait on this one. */
	while (__atomic_load_n(&fr->sync, __ATOMIC_ACQUIRE) != WEFT__FRAME_DONE)
		sched_yield();
}

/* ---- thieves ---------------------------------------------------------- */

struct weft__frame *weft__forkq_steal(struct weft__forkq *q)
{
	uint64_t ts = atomic_load_explicit(&q->ts, memory_order_acquire);
	uint32_t tail = tail_of(ts), split = split_of(ts);
	struct weft__frame *fr;

	if (tail >= split) {
		/* Nothing shared: ask the owner to share, if it has private
		 * children (the request is cheap to ignore otherwise). */
		if (head_get(q) > split &&
		    !atomic_load_explicit(&q->splitreq, memory_order_relaxed))
			atomic_store_explicit(&q->splitreq, 1,
					      memory_order_relaxed);
		return NULL;
	}
	/* acquire on success: pairs with the owner's release when it shared
	 * these slots, so the slot and the frame's fields are visible. */
	if (!atomic_compare_exchange_strong_explicit(
		    &q->ts, &ts, pack(tail + 1, split), memory_order_acq_rel,
		    memory_order_relaxed))
		return NULL;
	fr = atomic_load_explicit(&q->slot[tail], memory_order_relaxed);
	state_set(fr, FR_STOLEN);
	return fr;
}

/* ---- the owner -------------------------------------------------------- */

/* Share half of the private part (a thief asked). */
static void grow_shared(struct weft__forkq *q, uint32_t head)
{
	uint32_t ns = q->osplit + (head - q->osplit + 1) / 2;

	atomic_store_explicit(&q->splitreq, 0, memory_order_relaxed);
	if (ns == q->osplit)
		return;
	/* The inline spawn leaves sync and state for whoever publishes the
	 * frame beyond its owner: that is here (or evacuation). */
	for (uint32_t i = q->osplit; i < ns; i++) {
		struct weft__frame *fr =
			atomic_load_explicit(&q->slot[i], memory_order_relaxed);

		fr->sync = 0;
		fr->state = FR_PRIVATE;
	}
	/* release: the slots and frames below ns were written before. The
	 * add leaves tail (low half) alone; thieves CAS the whole word. */
	atomic_fetch_add_explicit(&q->ts, (uint64_t)(ns - q->osplit) << 32,
				  memory_order_release);
	q->osplit = ns;
}

/*
 * The owner popped slot @h, which is below osplit: take it back from the
 * shared part. Returns true if the slot is ours (the child has not been
 * stolen), false if a thief has it or it was evacuated.
 */
static bool reclaim(struct weft__forkq *q, uint32_t h)
{
	uint64_t ts = atomic_load_explicit(&q->ts, memory_order_acquire);

	for (;;) {
		uint32_t tail = tail_of(ts), split = split_of(ts), ns;

		if (tail > h) {
			/* Gone. Nothing is shared now (split == h + 1 ==
			 * tail, see spawn.h), so no thief can change ts:
			 * a plain store resets the indices below the slot. */
			atomic_store_explicit(&q->ts, pack(h, h),
					      memory_order_relaxed);
			q->osplit = h;
			return false;
		}
		/* Take back the slot and half of the rest of the shared
		 * part, so that a run of joins pays one CAS, not one each. */
		ns = tail + (h - tail) / 2;
		if (atomic_compare_exchange_weak_explicit(
			    &q->ts, &ts, pack(tail, ns), memory_order_acq_rel,
			    memory_order_acquire)) {
			q->osplit = ns;
			(void)split;
			return true;
		}
	}
}

static inline void run_inline(struct weft__frame *fr)
{
	void *value = NULL;
	int err = fr->fn(fr->arg, &value);

	fr->value = err < 0 ? NULL : value;
	fr->err = err < 0 ? err : 0;
	state_set(fr, FR_INLINE);
}

__attribute__((hot)) WEFT_API void weft__spawn_slow(struct weft_spawn *sp,
						    weft_task_fn fn, void *arg)
{
	struct weft__frame *fr = (struct weft__frame *)sp;
	/* Read first thing, before any call: safe inline (pool.h). */
	struct weft__fiber *self = weft__fiber_self_leaf();
	struct weft__forkq *q;
	uint32_t h;

	fr->fn = fn;
	fr->arg = arg;
	fr->magic = WEFT__FRAME_MAGIC;
	if (!self || !fn ||
	    (h = head_get(&self->fq)) == WEFT_SPAWN_DEPTH) {
		fr->fq = NULL;
		if (fn)
			run_inline(fr);
		else {
			fr->value = NULL;
			fr->err = -EINVAL;
			state_set(fr, FR_INLINE);
		}
		return;
	}
	q = &self->fq;
	fr->fq = q;
	fr->task = self->current;
	fr->slot = h;
	fr->state = FR_PRIVATE;
	fr->sync = 0;
	atomic_store_explicit(&q->slot[h], fr, memory_order_relaxed);
	head_set(q, h + 1);
	if (atomic_load_explicit(&q->splitreq, memory_order_relaxed))
		grow_shared(q, h + 1);
	else if (h == q->osplit && self->worker->pool->nworkers > 1)
		/* The first private child: if workers are parked and none is
		 * searching, wake one to come and ask for it. */
		weft__idle_notify_one(&self->worker->pool->idle);
}

static _Noreturn void join_misuse(struct weft__frame *fr, const char *why)
{
	fprintf(stderr, "weft: weft_join(%p): %s\n", (void *)fr, why);
	abort();
}

__attribute__((hot)) WEFT_API int weft__join_slow(struct weft_spawn *sp,
						  void **value)
{
	struct weft__frame *fr = (struct weft__frame *)sp;
	struct weft__forkq *q = fr->fq;
	uint32_t h;

	if (fr->magic != WEFT__FRAME_MAGIC)
		join_misuse(fr, "not a spawned child, or joined twice");
	fr->magic = 0;
	if (!q)
		goto out; /* ran inline at spawn */

#if WEFT_DEBUG_CHECKS
	{
		/* Costs a thread-local read per join, so only in debug
		 * builds: release builds trust the caller. */
		struct weft__fiber *self = weft__fiber_self();

		if (!self || &self->fq != q)
			join_misuse(fr, "joined from a task other than the "
					"one that spawned it");
	}
#endif
	h = head_get(q);
	if (h == 0 || fr->slot != h - 1) {
		struct weft__fiber *self = weft__fiber_self();

		join_misuse(fr, !self || &self->fq != q
					? "joined from a task other than "
					  "the one that spawned it"
					: "children must be joined in the "
					  "reverse order of their spawns");
	}
	h--;
	head_set(q, h);
	if (__builtin_expect(h >= q->osplit, 1)) {
		/* Private: nobody else has seen it (evacuation resets osplit
		 * to head, so an evacuated frame is never here). The common
		 * case: run the child here, as a call. */
		void *v = NULL;
		int err = fr->fn(fr->arg, &v);

		if (value)
			*value = err < 0 ? NULL : v;
		return err < 0 ? err : 0;
	}
	if (state_get(fr) == FR_EVAC) {
		struct weft_future *rec = fr->rec;

		reclaim(q, h); /* resets the indices; the slot is gone */
		if (weft__future_claim(rec, F_RUNNING)) {
			weft__frame_run(fr);
			weft__future_complete(rec, 0, NULL);
		} else {
			wait_frame(fr);
		}
		weft_future_unref(rec);
		goto out;
	}
	if (reclaim(q, h)) {
		run_inline(fr);
		goto out;
	}
	wait_frame(fr); /* stolen */
out:
	if (value)
		*value = fr->value;
	return fr->err;
}

/* ---- evacuation ------------------------------------------------------- */

void weft__forkq_evacuate(struct weft__forkq *q, struct weft_pool *pool)
{
	uint32_t head = head_get(q), tail;
	uint64_t ts = atomic_load_explicit(&q->ts, memory_order_acquire);

	if (tail_of(ts) >= head)
		return;
	/* Close the queue to thieves: after this CAS the slots [tail, head)
	 * are the owner's. */
	while (!atomic_compare_exchange_weak_explicit(
		&q->ts, &ts, pack(head, head), memory_order_acq_rel,
		memory_order_acquire))
		;
	q->osplit = head;
	tail = tail_of(ts);
	for (uint32_t i = tail; i < head; i++) {
		struct weft__frame *fr =
			atomic_load_explicit(&q->slot[i], memory_order_relaxed);
		struct weft_future *rec;

		/* Every frame here was spawned since the last evacuation
		 * (which left its frames below tail); a private one may have
		 * sync and state unset (see grow_shared()). */
		fr->sync = 0;
		state_set(fr, FR_PRIVATE);
		rec = weft__future_new(K_FRAME, fr, NULL, 0);
		if (!rec) {
			/* Out of memory: run it now rather than leave it
			 * where nobody can reach it. */
			run_inline(fr);
			state_set(fr, FR_INLINE);
			__atomic_store_n(&fr->sync, WEFT__FRAME_DONE,
					 __ATOMIC_RELEASE);
			continue;
		}
		/* Two references: the owner's join and the queue's. */
		fr->rec = rec;
		state_set(fr, FR_EVAC);
		if (weft__pool_push(pool, rec) != 0) {
			/* The pool is closed to us (cannot happen for a pool's
			 * own worker, which may submit while it drains). */
			weft__future_claim(rec, F_RUNNING);
			weft__frame_run(fr);
			weft__future_complete(rec, 0, NULL);
		}
	}
}
