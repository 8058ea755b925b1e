/*
 * io/io.c - the io thread: its life, its timers, and the path of an
 * operation from weft_io_*() to its backend and back (io.h).
 *
 * Every pool starts one io thread with its workers. With the uring backend
 * the thread owns the ring (uring.c runs its loop); with the blocking
 * backend operations go straight to blocking.c's threads and the io thread
 * only runs timers. Either way the timers live here: a binary min-heap
 * under a mutex, fired by the io thread, which sleeps until the earliest
 * deadline (DESIGN.md section 7). They replace the interim per-pool timer
 * thread of the previous release; wait.c and group.c arm them through
 * weft__timer_add() / weft__timer_del() as before.
 *
 * Waking the io thread (DESIGN.md section 6): before it sleeps the thread
 * stores sleeping = 1 (seq_cst), then looks at the inboxes and the timer
 * heap once more. A producer pushes (seq_cst), then reads sleeping; only
 * if it finds 1 does it exchange it to 0 and pay for a wake. One of the two
 * must see the other's store (a store-buffer pattern, which seq_cst on both
 * sides forbids to lose), so a push is never left unseen by a sleeping
 * thread, and a producer that finds the thread awake wakes nobody.
 *
 * Blocking calls (IO_CALL) take the same path up to the backend, then go
 * to io->calls, a blocking-backend instance of their own, whichever
 * backend the I/O uses; the io thread never sees them. They are not
 * refused when io_uring was insisted on and refused (the calls make no
 * I/O of ours), and they are not counted as I/O operations.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "weft/io.h"
#include "weft/async.h"
#include "core/obs.h"
#include "core/pool.h"
#include "core/wait.h"
#include "fiber/fiber.h"
#include "io/io.h"
#include "util/futex.h"

#if WEFT_HAVE_VALGRIND_H
#include <valgrind/memcheck.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

/* The spin before the io thread sleeps. A sleeping round trip costs 12-16
 * us on the 2-vCPU VMs we measure on, a spinning one about 1 us
 * (research/iouring.md section 4.1); the spin is bounded because on two
 * cores the io thread shares a CPU with a worker. WEFT_IO_SPIN_NS sets
 * it (0 disables). */
#define IO_SPIN_NS_DEFAULT 20000

/* ---- the timer heap ---------------------------------------------------- */

static bool before(struct weft__timer *a, struct weft__timer *b)
{
	return a->deadline < b->deadline;
}

static void heap_set(struct weft__io *io, size_t i, struct weft__timer *x)
{
	io->heap[i] = x;
	x->idx = i;
}

static void sift_up(struct weft__io *io, size_t i)
{
	struct weft__timer *x = io->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!before(x, io->heap[p]))
			break;
		heap_set(io, i, io->heap[p]);
		i = p;
	}
	heap_set(io, i, x);
}

static void sift_down(struct weft__io *io, size_t i)
{
	struct weft__timer *x = io->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= io->n)
			break;
		if (c + 1 < io->n && before(io->heap[c + 1], io->heap[c]))
			c++;
		if (!before(io->heap[c], x))
			break;
		heap_set(io, i, io->heap[c]);
		i = c;
	}
	heap_set(io, i, x);
}

static void heap_remove(struct weft__io *io, size_t i)
{
	struct weft__timer *last = io->heap[--io->n];

	io->heap[i]->idx = SIZE_MAX;
	if (i == io->n)
		return;
	heap_set(io, i, last);
	sift_down(io, i);
	sift_up(io, last->idx);
}

int64_t weft__io_run_timers(struct weft__io *io)
{
	int64_t now, next = WEFT_FOREVER;

	pthread_mutex_lock(&io->tlock);
	if (io->n) {
		now = weft_now();
		while (io->n && io->heap[0]->deadline <= now) {
			struct weft__timer *tm = io->heap[0];

			heap_remove(io, 0);
			if (tm->fire)
				tm->fire(tm);
			else
				weft__waiter_wake(tm->w, W_TIMEDOUT);
		}
		if (io->n)
			next = io->heap[0]->deadline;
	}
	pthread_mutex_unlock(&io->tlock);
	return next;
}

int weft__timer_add(struct weft_pool *pool, struct weft__timer *t)
{
	struct weft__io *io = pool->io;
	bool first;

	pthread_mutex_lock(&io->tlock);
	if (io->n == io->cap) {
		size_t cap = io->cap ? 2 * io->cap : 64;
		struct weft__timer **h = realloc(io->heap, cap * sizeof(*h));

		if (!h) {
			pthread_mutex_unlock(&io->tlock);
			return -ENOMEM;
		}
		io->heap = h;
		io->cap = cap;
	}
	heap_set(io, io->n++, t);
	sift_up(io, t->idx);
	first = t->idx == 0;
	pthread_mutex_unlock(&io->tlock);
	/* A new earliest deadline: a sleeping io thread must sleep less.
	 * (It reads the heap after announcing its sleep; see the top.) */
	if (first)
		weft__io_kick(io);
	return 0;
}

bool weft__timer_del(struct weft_pool *pool, struct weft__timer *t)
{
	struct weft__io *io = pool->io;
	bool armed;

	pthread_mutex_lock(&io->tlock);
	armed = t->idx != SIZE_MAX;
	if (armed)
		heap_remove(io, t->idx);
	pthread_mutex_unlock(&io->tlock);
	return armed;
}

/* ---- waking ------------------------------------------------------------ */

void weft__io_kick(struct weft__io *io)
{
	/* The plain load first: while the thread is awake (the busy case)
	 * this costs a shared cache line read, not an RMW. */
	if (!atomic_load(&io->sleeping) || !atomic_exchange(&io->sleeping, 0))
		return;
	if (io->backend == WEFT_IO_URING) {
		uint64_t one = 1;
		ssize_t r;

		do
			r = write(io->efd, &one, sizeof(one));
		while (r < 0 && errno == EINTR);
	} else {
		weft__futex_wake(&io->sleeping, 1);
	}
}

/* The IO_TIMEOUT op whose timer @t is. */
static struct weft__io_op *timer_op(struct weft__timer *t)
{
	return (struct weft__io_op *)((char *)t -
				      offsetof(struct weft__io_op, timer));
}

static void timeout_fire(struct weft__timer *t);

/* ---- the thread -------------------------------------------------------- */

/* The blocking backend's io thread: timers only. */
static void timer_loop(struct weft__io *io)
{
	while (!atomic_load(&io->stop)) {
		int64_t next = weft__io_run_timers(io);

		atomic_store(&io->sleeping, 1);
		/* Re-check after announcing (see the top of the file). */
		if (atomic_load(&io->stop))
			break;
		pthread_mutex_lock(&io->tlock);
		if (io->n && io->heap[0]->deadline < next)
			next = io->heap[0]->deadline;
		pthread_mutex_unlock(&io->tlock);
		if (next > weft_now())
			weft__futex_wait(&io->sleeping, 1, next);
		atomic_store(&io->sleeping, 0);
	}
}

static int backend_from_env(int asked)
{
	const char *e = getenv("WEFT_IO_BACKEND");

	if (asked != WEFT_IO_AUTO || !e)
		return asked;
	if (!strcmp(e, "blocking"))
		return WEFT_IO_BLOCKING;
	if (!strcmp(e, "uring") || !strcmp(e, "io_uring"))
		return WEFT_IO_URING;
	return WEFT_IO_AUTO;
}

static void *io_main(void *arg)
{
	struct weft__io *io = arg;
	int want = io->backend;
	sigset_t pipe;

	/* A write to a pipe or socket whose reader is gone raises SIGPIPE
	 * at the thread that issues it, which for the ring is this one: the
	 * op gets -EPIPE, and the process must not die of it (send() adds
	 * MSG_NOSIGNAL; write() has no such flag). The blocking backend's
	 * threads block it too. */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	io->self = pthread_self(); /* published by the handshake below */

#if WEFT_HAVE_PTHREAD_SETNAME_NP
	{
		char name[16];

		snprintf(name, sizeof(name), "%.10s-io", io->pool->name);
		pthread_setname_np(pthread_self(), name);
	}
#endif
	if (want != WEFT_IO_BLOCKING) {
#if WEFT_HAVE_LIBURING
		/* Valgrind 3.19 does not know io_uring_enter() blocks: it
		 * keeps its global lock while the io thread waits, and every
		 * other thread stops. Under it the ring counts as refused. */
		int err = RUNNING_ON_VALGRIND ? -ENOSYS : weft__uring_setup(io);

		if (err == 0)
			io->backend = WEFT_IO_URING;
		else if (want == WEFT_IO_URING)
			io->backend = -ENOTSUP;
		else
			io->backend = WEFT_IO_BLOCKING;
#else
		io->backend = want == WEFT_IO_URING ? -ENOTSUP
						    : WEFT_IO_BLOCKING;
#endif
	}
	atomic_store(&io->started, 1);
	weft__futex_wake(&io->started, 1);
#if WEFT_HAVE_LIBURING
	if (io->backend == WEFT_IO_URING) {
		weft__uring_run(io);
		return NULL;
	}
#endif
	timer_loop(io);
	return NULL;
}

int weft__io_init(struct weft_pool *pool, const struct weft_pool_options *o)
{
	struct weft__io *io = calloc(1, sizeof(*io));
	const char *spin = getenv("WEFT_IO_SPIN_NS");
	unsigned entries = o->io_entries ? o->io_entries : 256;
	unsigned calls = o->blocking_threads ? o->blocking_threads : 64;
	int err;

	if (!io)
		return -ENOMEM;
	if (o->io_backend > WEFT_IO_BLOCKING || entries > 4096 ||
	    entries < 2 || calls > WEFT__BLK_THREADS_MAX) {
		free(io);
		return -EINVAL;
	}
	io->pool = pool;
	io->backend = backend_from_env((int)o->io_backend);
	io->entries = entries;
	io->threads = o->io_threads ? o->io_threads : 4;
	io->spin_ns = spin ? strtoll(spin, NULL, 10) : IO_SPIN_NS_DEFAULT;
	io->efd = -1;
	pthread_mutex_init(&io->tlock, NULL);
	err = weft__blk_create(io->threads, "weft-blk", &io->blk);
	if (err)
		goto fail;
	/* Its threads start with the first call. */
	err = weft__blk_create(calls, "weft-call", &io->calls);
	if (err)
		goto fail;
	io->efd = eventfd(0, EFD_CLOEXEC);
	if (io->efd < 0) {
		err = -errno;
		goto fail;
	}
	if (pthread_create(&io->thread, NULL, io_main, io) != 0) {
		err = -EAGAIN;
		goto fail;
	}
	while (!atomic_load(&io->started))
		weft__futex_wait(&io->started, 0, WEFT_FOREVER);
	pool->io = io;
	return 0;
fail:
	if (io->calls)
		weft__blk_destroy(io->calls);
	if (io->blk)
		weft__blk_destroy(io->blk);
	if (io->efd >= 0)
		close(io->efd);
	pthread_mutex_destroy(&io->tlock);
	free(io);
	return err;
}

void weft__io_fini(struct weft_pool *pool)
{
	struct weft__io *io = pool->io;

	if (!io)
		return;
	/* No submitter may be between its check and its push when the
	 * thread drains for the last time: close, then wait them out
	 * (seq_cst with the increment in io_enter()). */
	atomic_store(&io->closed, 1);
	while (atomic_load(&io->users))
		sched_yield();
	/* Blocking calls first, while the io thread still runs: a call may
	 * be waiting for an operation it started. Queued calls end with
	 * -ECANCELED; running ones are waited for. */
	weft__blk_destroy(io->calls);
	atomic_store(&io->stop, 1);
	atomic_store(&io->sleeping, 1); /* force the wake below */
	weft__io_kick(io);
	pthread_join(io->thread, NULL);
	/* Ops of outside threads still in the blocking backend end with
	 * -ECANCELED; tasks are all done by now. */
	weft__blk_destroy(io->blk);
	/* Timer-heap entries left: IO_TIMEOUT operations nobody waited
	 * for. Each completes with -ECANCELED (the cancel flag makes
	 * timeout_fire() say so). */
	while (io->n) {
		struct weft__timer *t = io->heap[0];

		heap_remove(io, 0);
		if (t->fire == timeout_fire)
			atomic_store(&timer_op(t)->cancel, 1);
		if (t->fire)
			t->fire(t);
	}
	free(io->heap);
	close(io->efd);
	pthread_mutex_destroy(&io->tlock);
	free(io);
	pool->io = NULL;
}

/* ---- submission -------------------------------------------------------- */

/* Whether the caller (the worker @w, or NULL for any other thread) may
 * submit to @io now; on 0 the caller must call io_leave() once its op is
 * handed over. A @call is not refused for the I/O backend's failure. */
static int io_enter(struct weft__io *io, struct weft__worker *w, bool call)
{
	struct weft_pool *pool = io->pool;

	if (io->backend < 0 && !call)
		return io->backend;
	atomic_fetch_add(&io->users, 1);
	if (atomic_load(&io->closed))
		goto shut;
	/* Outside threads stop at shutdown, as weft_submit() does; the
	 * pool's own tasks may go on while it drains. */
	if (atomic_load_explicit(&pool->state, memory_order_acquire) !=
	    POOL_RUNNING && !w)
		goto shut;
	return 0;
shut:
	atomic_fetch_sub(&io->users, 1);
	return -ESHUTDOWN;
}

static void io_leave(struct weft__io *io)
{
	atomic_fetch_sub(&io->users, 1);
}

static void timeout_fire(struct weft__timer *t)
{
	struct weft__io_op *op = timer_op(t);

	/* Under tlock, on the io thread (or in weft__io_fini()): a timeout
	 * cancelled before its deadline ends -ECANCELED, in
	 * weft__io_cancel(). */
	weft__io_done(op, atomic_load(&op->cancel) ? -ECANCELED : 0);
}

/* Count one I/O submission (@n 1) or take one back (@n -1); see
 * weft__io_counts() in io.h. @w: the calling worker if it is @io's
 * pool's, else NULL. A worker counts whether its stats are on or not:
 * the I/O figures are always kept (weft_pool_stats()), and an owner-only
 * add costs next to nothing. */
static void count_submit(struct weft__io *io, struct weft__worker *w,
			 uint64_t n)
{
	if (w)
		weft__stat_add(&w->stats.io_submitted, n);
	else
		atomic_fetch_add_explicit(&io->submitted_outside, n,
					  memory_order_relaxed);
}

int weft__io_submit(struct weft_pool *pool, struct weft__io_op *op)
{
	struct weft__io *io = pool->io;
	struct weft__worker *w = weft__current_worker();
	bool call = op->opcode == IO_CALL;
	struct weft__io_op *head;
	int err;

	/* Submit runs to the end without suspending: @w stays ours. */
	if (w && w->pool != pool)
		w = NULL;
	err = io_enter(io, w, call);
	if (err)
		return err;
	op->io = io;
	/* The backend's reference, dropped by weft__io_done(). */
	weft_future_ref(weft__io_future_of(op));
	/* Counted before the hand-off, so that the completion (which may
	 * come first) never leads it by more than a reader's race. */
	if (!call) {
		count_submit(io, w, 1);
		if (pool->obs & OBS_TRACE)
			op->t_submit = weft_now();
	}
	if (call) {
		err = weft__blk_submit(io->calls, op);
	} else if (op->opcode == IO_TIMEOUT) {
		op->timer.idx = SIZE_MAX;
		op->timer.w = NULL;
		op->timer.fire = timeout_fire;
		op->timer.deadline = op->deadline;
		err = weft__timer_add(pool, &op->timer);
	} else if (io->backend == WEFT_IO_BLOCKING) {
		err = weft__blk_submit(io->blk, op);
	} else {
		head = atomic_load_explicit(&io->inbox, memory_order_relaxed);
		do
			op->next = head;
		while (!atomic_compare_exchange_weak(&io->inbox, &head, op));
		weft__io_kick(io);
	}
	if (err) {
		if (!call)
			count_submit(io, w, (uint64_t)-1);
		weft_future_unref(weft__io_future_of(op));
	}
	io_leave(io);
	return err;
}

/*
 * weft_future_cancel() of a blocking call: as a task's cancel (future.h).
 * 0: it was queued, and is now CANCELLED, never to run. -EBUSY: a thread
 * has it, and it runs to its own result. -EALREADY: it has completed,
 * or is completing, and we wait the few instructions that takes, so
 * that our caller finds the future complete. No cancel flag: the call
 * pool's lock alone decides, so concurrent cancels agree.
 */
static int call_cancel(struct weft_future *f, struct weft__io_op *op)
{
	int r = weft__blk_cancel(op->io->calls, op);

	if (r == -EALREADY)
		while (!weft__future_is_complete(atomic_load_explicit(
			&f->state, memory_order_acquire)))
			sched_yield();
	return r;
}

/* weft_future_cancel() of an I/O future (future.c). */
int weft__io_cancel(struct weft_future *f)
{
	struct weft__io_op *op = weft__io_op_of(f);
	struct weft__io *io = op->io;
	uint8_t zero = 0;

	if (weft__future_is_complete(atomic_load(&f->state)))
		return -EALREADY;
	if (op->opcode == IO_CALL)
		return call_cancel(f, op);
	if (!atomic_compare_exchange_strong(&op->cancel, &zero, 1))
		return -EBUSY; /* an earlier cancel is on its way */
	if (op->opcode == IO_TIMEOUT) {
		if (weft__timer_del(io->pool, &op->timer))
			weft__io_done(op, -ECANCELED);
		return -EBUSY;
	}
	if (io->backend == WEFT_IO_BLOCKING) {
		weft_future_ref(f); /* @op must outlive the call */
		weft__blk_cancel(io->blk, op);
		weft_future_unref(f);
		return -EBUSY;
	}
	/* The io thread drops this reference once it has dealt with the
	 * request, so @op outlives it even if the op completes first. */
	weft_future_ref(f);
	{
		struct weft__io_op *head =
			atomic_load_explicit(&io->cinbox, memory_order_relaxed);

		do
			op->cnext = head;
		while (!atomic_compare_exchange_weak(&io->cinbox, &head, op));
	}
	weft__io_kick(io);
	return -EBUSY;
}

/* Count one completion of an I/O operation of @io (weft__io_counts()). */
static void count_done(struct weft__io *io)
{
	if (pthread_equal(pthread_self(), io->self))
		/* The io thread is the only writer: no RMW. */
		atomic_store_explicit(
			&io->completed_io,
			atomic_load_explicit(&io->completed_io,
					     memory_order_relaxed) + 1,
			memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&io->completed_other, 1,
					  memory_order_relaxed);
}

void weft__io_done(struct weft__io_op *op, int64_t res)
{
	struct weft_future *f = weft__io_future_of(op);

	if (op->opcode == IO_CALL) {
		/* fn's error and value, as weft__future_run() completes a
		 * task's future (a cancelled call: -ECANCELED, no value). */
		weft__future_complete(f, (int)res,
				      res ? NULL : op->u.call.value);
		weft_future_unref(f);
		return;
	}
	count_done(op->io);
	/* A trace shows each op from submission to completion (obs.h). */
	if (op->io->pool->obs)
		weft__obs_io(op->io->pool, op->opcode, op, op->t_submit);

#if WEFT_HAVE_VALGRIND_H
	/* The kernel wrote these behind Memcheck's back (io_uring). */
	if (res > 0) {
		if (op->opcode == IO_READ)
			VALGRIND_MAKE_MEM_DEFINED(op->u.rw.buf, (size_t)res);
		else if (op->opcode == IO_RECV)
			VALGRIND_MAKE_MEM_DEFINED(op->u.msg.buf, (size_t)res);
		else if (op->opcode == IO_READV) {
			size_t left = (size_t)res;

			for (int i = 0; i < op->u.vec.cnt && left; i++) {
				size_t n = op->u.vec.iov[i].iov_len < left
						   ? op->u.vec.iov[i].iov_len
						   : left;

				VALGRIND_MAKE_MEM_DEFINED(
					op->u.vec.iov[i].iov_base, n);
				left -= n;
			}
		}
	}
	if (res >= 0 && op->opcode == IO_STATX)
		VALGRIND_MAKE_MEM_DEFINED(op->u.stx.stx, sizeof(struct statx));
	if (res >= 0 && op->opcode == IO_ACCEPT && op->u.acc.addrlen) {
		VALGRIND_MAKE_MEM_DEFINED(op->u.acc.addrlen,
					  sizeof(*op->u.acc.addrlen));
		VALGRIND_MAKE_MEM_DEFINED(op->u.acc.addr, *op->u.acc.addrlen);
	}
#endif
	/* Its acceptor ends first: it may be freed once the future is
	 * complete (weft_acceptor_close() waits for it). */
	if (op->opcode == IO_ACCEPT_MULTI)
		weft__acceptor_push(op->acc, (int)res, false);
	weft__future_complete(f, res < 0 ? (int)res : 0,
			      (void *)(intptr_t)res);
	weft_future_unref(f);
}

/* ---- public queries ---------------------------------------------------- */

WEFT_API int weft_io_backend(struct weft_pool *pool)
{
	if (!pool)
		return -EINVAL;
	if (!pool->io || atomic_load(&pool->io->closed))
		return -ESHUTDOWN;
	return pool->io->backend;
}

WEFT_API int64_t weft_io_result(const struct weft_future *f)
{
	uint32_t s;

	if (!f || f->kind != K_IO)
		return -EINVAL;
	s = atomic_load_explicit(&f->state, memory_order_acquire);
	if (!weft__future_is_complete(s))
		return -EINPROGRESS;
	/* A blocking call's value is a pointer, not a result: its error. */
	if (f->err || weft__io_op_of((struct weft_future *)f)->opcode == IO_CALL)
		return f->err;
	return (int64_t)(intptr_t)f->value;
}

int weft__io_wait(struct weft_future *f)
{
	if (weft__future_wait(f, WEFT_FOREVER) == 0)
		return 0;
	/* The waiting task was cancelled. The operation may still write
	 * into the caller's memory (a call may still use it): cancel it,
	 * then wait, shielded, for its own completion (DESIGN.md section
	 * 6). */
	weft_future_cancel(f);
	weft_cancel_shield_push();
	while (weft__future_wait(f, WEFT_FOREVER) != 0)
		;
	weft_cancel_shield_pop();
	return -ECANCELED;
}

WEFT_API int64_t weft_io_await(struct weft_future *f)
{
	int64_t res;

	if (!f || f->kind != K_IO)
		return -EINVAL;
	(void)weft__io_wait(f);
	res = weft_io_result(f);
	weft_future_unref(f);
	return res;
}

/* ---- counters (weft_pool_stats(), obs.c) -------------------------------- */

void weft__io_counts(struct weft_pool *pool, struct weft__io_counts *out)
{
	struct weft__io *io = pool->io;
	uint64_t sub = 0;
	unsigned threads, queued, running;

	*out = (struct weft__io_counts){ 0 };
	if (!io)
		return;
	/* relaxed: counters, each read alone (io.h: a snapshot). */
	for (unsigned i = 0; i < pool->nworkers; i++)
		sub += atomic_load_explicit(&pool->workers[i].stats.io_submitted,
					    memory_order_relaxed);
	sub += atomic_load_explicit(&io->submitted_outside,
				    memory_order_relaxed);
	out->io_submitted = sub;
	out->io_completed =
		atomic_load_explicit(&io->completed_io, memory_order_relaxed) +
		atomic_load_explicit(&io->completed_other,
				     memory_order_relaxed);
	weft__blk_counts(io->calls, &threads, &queued, &running);
	out->blocking_in_flight = (uint64_t)queued + running;
	out->blocking_threads = threads;
}
