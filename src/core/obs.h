/*
 * core/obs.h - task events, traces and slow-task reports (internal; the
 * public face is weft/obs.h, the code obs.c).
 *
 * The scheduler calls these at the points where a task's life changes:
 *
 *   created    push() in pool.c, for every task that is queued
 *   started    weft__worker_run(), and a stolen fork child in
 *              weft__worker_process()
 *   finished   the same, after the function returned
 *   suspended  weft__fiber_suspend_to(), before the switch away
 *   resumed    the same, after the switch back (maybe on another worker)
 *   park       park() in pool.c, around the sleep
 *
 * Each call site tests pool->obs first, a word that is 0 unless a hook, a
 * trace or slow-task reports are on, so that with all of them off an event
 * costs one load and a branch that is always predicted.
 *
 * The trace. Every worker has a buffer of fixed-size events that only its
 * own thread writes (a ring: when full, the oldest are overwritten); the io
 * thread and every other thread (the blocking backend's, outside
 * cancellers) share one more, under a mutex, since they write rarely. An
 * event is recorded with its worker and CLOCK_MONOTONIC time only; the JSON
 * writer (obs.c) merges the buffers in time order and rebuilds the slices:
 * a suspend closes every slice open on its worker's track and remembers
 * them under the fiber; the resume of that fiber reopens them on the track
 * where it resumes. Events whose partner was overwritten are dropped, so
 * begin and end always match per track.
 *
 * Threads: the worker's buffer is written only on its thread; the shared
 * one under its lock. Buffers are read only when every worker has exited
 * (after shutdown) or under the shared lock.
 */
#ifndef WEFT_CORE_OBS_H
#define WEFT_CORE_OBS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/obs.h"
#include "core/future.h"
#include "core/spawn.h"

struct weft_pool;
struct weft_future;
struct weft__worker;
struct weft__fiber;
struct weft_pool_options;

/* Bits of pool->obs. */
enum {
	OBS_HOOK = 1u << 0,  /* on_task_event set */
	OBS_TRACE = 1u << 1, /* recording a trace */
	OBS_SLOW = 1u << 2,  /* slow-task reports */
};

/* Event kinds in the trace. */
enum weft__tev_kind {
	TEV_BEGIN = 1,	  /* a task starts: fn, id = its future (or 0) */
	TEV_END,	  /* it ends: fn */
	TEV_SUSPEND,	  /* the running fiber suspends: id = fiber */
	TEV_RESUME,	  /* a fiber resumes: id = fiber */
	TEV_PARK,	  /* the worker sleeps */
	TEV_UNPARK,	  /* ...and wakes */
	TEV_IO,		  /* an I/O op: ts = done, aux = opcode, id = op,
			     fn = its submit time (int64_t) */
	TEV_IO_BATCH,	  /* the io thread handled a batch: id = kind
			     (0 submit, 1 reap, 2 timers), aux = ops,
			     fn = its start time (int64_t) */
};

struct weft__tev {
	int64_t ts;
	uint64_t id;
	void *fn;
	uint32_t kind;
	uint32_t aux;
};

struct weft__trace_buf {
	struct weft__tev *ev;
	size_t cap;
	uint64_t n; /* events written; the newest cap are kept */
};

/* The pool's observability state (pool->o, set at create, freed with the
 * pool). */
struct weft__obs {
	weft_task_hook hook;
	void *hook_arg;
	int64_t slow_ns;
	weft_slow_task_fn slow_fn;
	void *slow_arg;
	int64_t t0; /* trace time zero: pool creation */
	/* The io thread's and everybody else's events, under lock. */
	pthread_mutex_t lock;
	struct weft__trace_buf shared;
	struct weft__trace_buf *bufs; /* one per worker */
	char *path;		      /* WEFT_TRACE: written at destroy */
};

/* Set up pool->o and pool->obs from @o and the environment; 0 or -ENOMEM
 * (-EINVAL for a negative slow_task_ns). Before the workers start. */
int weft__obs_init(struct weft_pool *pool, const struct weft_pool_options *o);
/* Write the WEFT_TRACE file if asked, then free. Every thread has
 * stopped. */
void weft__obs_fini(struct weft_pool *pool);

/* The slow paths of the event sites (obs.c); callers test pool->obs.
 * (The created event has only the hook: push() calls it inline.) */
void weft__obs_started(struct weft__worker *w, struct weft_future *f,
		       void *fn, void *arg);
void weft__obs_finished(struct weft__worker *w, struct weft_future *f,
			void *fn, void *arg, bool outermost);
void weft__obs_suspend(struct weft__worker *w, struct weft__fiber *self);
void weft__obs_resume(struct weft__worker *w, struct weft__fiber *self);
void weft__obs_park(struct weft__worker *w, bool wake);
/* An I/O op of @pool ended: @t_submit its submit time (0: unknown). Any
 * thread. */
void weft__obs_io(struct weft_pool *pool, uint8_t opcode, const void *op,
		  int64_t t_submit);
/* The io thread's own work: a batch of @kind (0 submit, 1 reap, 2 timers)
 * that began at @t_start handled @n items. io thread. */
void weft__obs_io_batch(struct weft_pool *pool, unsigned kind,
			int64_t t_start, unsigned n);

/* The function and argument a task was submitted with (for K_FRAME, the
 * fork child's). */
static inline void weft__obs_task_fn(const struct weft_future *f, void **fn,
				     void **arg)
{
	if (f->kind == K_FRAME) {
		const struct weft__frame *fr = f->fn;

		*fn = (void *)fr->fn;
		*arg = fr->arg;
	} else {
		*fn = f->fn;
		*arg = f->arg;
	}
}

/* Call the pool's task hook (pool->obs has OBS_HOOK). Inline: with a hook
 * and nothing else on, the scheduler's event sites call it directly, so
 * that an event costs the hook's own call and little more (bench_obs). */
static inline void weft__obs_hook(struct weft__obs *ob,
				  enum weft_task_event ev,
				  const struct weft_future *f, void *fn,
				  void *arg, int worker)
{
	struct weft_task_event_info info = {
		.event = ev, .task = f, .fn = fn, .arg = arg, .worker = worker,
	};

	ob->hook(&info, ob->hook_arg);
}

#endif /* WEFT_CORE_OBS_H */
