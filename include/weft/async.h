/*
 * weft/async.h - coroutine async inside tasks: fork/join, yield, sleep,
 * cancellation scopes and task-local storage.
 *
 * Every task runs on a fiber: a stack of its own that the worker thread
 * switches to. A task that never waits costs a function call, not a
 * switch. A task that waits (for a future, a spawned child, a group, a
 * lock, a channel, a sleep) parks its fiber; its worker goes on with other
 * work, and the task resumes, possibly on another worker, when the wait is
 * over. The same wait called on a thread that is not a worker blocks that
 * thread. See docs/async.md.
 *
 * Rules for code that runs in tasks, because a task may change threads at
 * any wait:
 *  - do not keep the address of a thread-local variable, errno's included,
 *    or pthread_self(), across a wait;
 *  - do not hold a pthread mutex across a wait (use weft_mutex, weft/sync.h);
 *  - do not change the signal mask.
 */
#ifndef WEFT_ASYNC_H
#define WEFT_ASYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "task.h"

WEFT_BEGIN_DECLS

/**
 * struct weft_spawn - the record of one forked child, owned by the caller
 * (put it on the stack of the task that forks). Its fields are private:
 * they are spelled out only so that the fast path of weft_spawn() and
 * weft_join() can be inlined (below). It must stay where it is until
 * weft_join() on it has returned.
 */
struct weft_spawn {
	weft_task_fn fn_;
	void *arg_;
	void *value_;
	int err_;
	uint32_t slot_;
	void *fq_;
	uintptr_t sync_;
	void *rec_;
	uint32_t state_;
	uint32_t magic_;
	void *task_;
};

/** Children a task may have unjoined before further spawns run inline. */
#define WEFT_SPAWN_DEPTH 256

/**
 * weft_spawn() - fork: make @fn(@arg) runnable as a child of the calling
 * task, to be joined later with weft_join(@sp).
 *
 * Spawns and joins nest like calls: join children in the reverse order of
 * their spawns (LIFO), and join every child before the task returns. A child
 * that no idle worker has stolen by the time it is joined runs inline in
 * weft_join(), as a plain call. Neither call allocates memory.
 *
 * Called outside a task (no fiber), or when the calling task already has
 * too many unjoined children (WEFT_SPAWN_DEPTH), the child runs at once,
 * inline, and weft_join() returns its outcome. Never fails.
 *
 * A child runs as part of its parent task, wherever it runs: it sees the
 * parent's cancel request (weft_task_cancelled()) and shares its
 * task-local values (weft/group.h).
 */
static inline void weft_spawn(struct weft_spawn *sp, weft_task_fn fn,
			      void *arg);

/**
 * weft_join() - wait for the child forked into @sp and return its error
 * code (0 or a negative errno); its value goes to *@value if @value is not
 * NULL. If a thief is running the child, the calling task suspends until
 * it finishes. A join is not a cancellation point: it always waits for the
 * child, so that @sp can be reused or go out of scope.
 * Joining out of LIFO order, or twice, aborts with a message; so does a
 * join from a task other than the spawning one, in builds with debug
 * checks (the default for debug builds; meson option debug_checks).
 */
static inline int weft_join(struct weft_spawn *sp, void **value);

/**
 * weft_yield() - let the worker run other ready work before the calling task
 * continues: the task goes to the back of the pool's queue. Outside a task,
 * sched_yield(). Returns 0, or -ECANCELED when the task has been cancelled
 * (and is not shielded).
 */
WEFT_API int weft_yield(void);

/**
 * weft_sleep() - suspend the calling task for @ns nanoseconds (block the
 * calling thread, outside a task). weft_sleep_until() takes an absolute
 * weft_now() deadline. Return 0 when the time has passed, -ECANCELED when
 * the task was cancelled first (the sleep ends early), -EINVAL for a
 * negative @ns or a @deadline of WEFT_FOREVER (it would never return).
 */
WEFT_API int weft_sleep(int64_t ns);
WEFT_API int weft_sleep_until(int64_t deadline);

/**
 * weft_cancel_shield_push() / _pop() - shield the calling task from
 * cancellation (for cleanup that must wait: flushing, awaiting an I/O
 * cancel): while at least one shield is pushed, waits in the task are not
 * woken by a cancel and do not return -ECANCELED, and weft_task_cancelled()
 * says false. The request stays: after the last pop, the next wait returns
 * -ECANCELED. Shields nest; pops must match pushes (a pop without a push
 * aborts with a message). Outside a task both do nothing.
 */
WEFT_API void weft_cancel_shield_push(void);
WEFT_API void weft_cancel_shield_pop(void);

/*
 * ---- Private: the inline fast path of weft_spawn() and weft_join() ----
 *
 * As Lace does with its SPAWN/SYNC macros, the common case (a child pushed
 * on, and popped back off, the private part of the calling fiber's fork
 * queue) runs inline in the caller, with no call into the library and no
 * atomic read-modify-write; everything else goes to weft__spawn_slow() and
 * weft__join_slow(). The running fiber's queue is found through a
 * thread-local pointer read relative to the thread pointer inside an asm
 * volatile statement, which the compiler can neither cache nor move across
 * a call: a task may change threads at any wait (weft/async.h), so a
 * thread-local address kept in a register would name the old thread. On
 * targets other than x86-64 and AArch64 with GCC or Clang both calls are
 * out of line. The layouts below mirror the library's (src/core/spawn.h,
 * checked there at compile time); none of this is API.
 */
struct weft__forkq_abi {
	uint64_t ts_;
	uint32_t splitreq;
	unsigned char pad_[64 - 12];
	uint32_t head;
	uint32_t osplit;
	void **current;
	struct weft_spawn *slot[WEFT_SPAWN_DEPTH];
};

#define WEFT__FRAME_MAGIC 0x666f726bu /* "fork" */

WEFT_API void weft__spawn_slow(struct weft_spawn *sp, weft_task_fn fn,
			       void *arg);
WEFT_API int weft__join_slow(struct weft_spawn *sp, void **value);

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__))
#define WEFT__HAVE_TP 1
/* The calling thread's thread pointer, read afresh at every call (the
 * library uses it too, to compute weft__fq_tls_offset). */
static inline char *weft__tp(void)
{
	char *tp;

#if defined(__x86_64__)
	__asm__ __volatile__("movq %%fs:0, %0" : "=r"(tp));
#else
	__asm__ __volatile__("mrs %0, tpidr_el0" : "=r"(tp));
#endif
	return tp;
}
#endif

#if defined(WEFT__HAVE_TP) && !defined(WEFT_BUILDING) && \
	!defined(WEFT_NO_INLINE_FORK)
/* The offset of the library's thread-local fork-queue pointer from the
 * thread pointer (a static TLS variable: the same in every thread). */
WEFT_API extern long weft__fq_tls_offset;

static inline struct weft__forkq_abi *weft__fq_now(void)
{
	return *(struct weft__forkq_abi **)(weft__tp() + weft__fq_tls_offset);
}

static inline void weft_spawn(struct weft_spawn *sp, weft_task_fn fn,
			      void *arg)
{
	struct weft__forkq_abi *q = weft__fq_now();
	uint32_t h;

	if (q && fn &&
	    (h = __atomic_load_n(&q->head, __ATOMIC_RELAXED)) <
		    WEFT_SPAWN_DEPTH &&
	    h != q->osplit &&
	    !__atomic_load_n(&q->splitreq, __ATOMIC_RELAXED)) {
		sp->fn_ = fn;
		sp->arg_ = arg;
		sp->magic_ = WEFT__FRAME_MAGIC;
		sp->fq_ = q;
		sp->slot_ = h;
		/* state_ and sync_ are set by the library if the frame is
		 * ever published beyond this task (shared or evacuated). */
		sp->task_ = *q->current;
		__atomic_store_n(&q->slot[h], sp, __ATOMIC_RELAXED);
		__atomic_store_n(&q->head, h + 1, __ATOMIC_RELAXED);
		return;
	}
	weft__spawn_slow(sp, fn, arg);
}

static inline int weft_join(struct weft_spawn *sp, void **value)
{
	struct weft__forkq_abi *q = (struct weft__forkq_abi *)sp->fq_;

	if (q && sp->magic_ == WEFT__FRAME_MAGIC && q == weft__fq_now() &&
	    __atomic_load_n(&q->head, __ATOMIC_RELAXED) == sp->slot_ + 1 &&
	    sp->slot_ >= q->osplit) {
		void *v = 0;
		int err;

		sp->magic_ = 0;
		__atomic_store_n(&q->head, sp->slot_, __ATOMIC_RELAXED);
		err = sp->fn_(sp->arg_, &v);
		if (value)
			*value = err < 0 ? 0 : v;
		return err < 0 ? err : 0;
	}
	return weft__join_slow(sp, value);
}
#else
static inline void weft_spawn(struct weft_spawn *sp, weft_task_fn fn,
			      void *arg)
{
	weft__spawn_slow(sp, fn, arg);
}

static inline int weft_join(struct weft_spawn *sp, void **value)
{
	return weft__join_slow(sp, value);
}
#endif

WEFT_END_DECLS

#endif /* WEFT_ASYNC_H */
