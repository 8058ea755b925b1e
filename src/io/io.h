/*
 * io/io.h - the io thread (io.c), its two backends (uring.c, blocking.c),
 * and the operation record they share.
 *
 * An operation is one allocation: a struct weft_future of kind K_IO
 * followed by its struct weft__io_op (weft__future_extra()). The future's
 * reference count keeps the record alive; the backend holds one reference
 * from submission until it calls weft__io_done() with the operation's own
 * result, and never touches the record after that call. Everything an
 * operation points to (buffers, iovecs, paths, addresses) belongs to the
 * caller and stays valid until the future completes (weft/io.h).
 *
 * Threads: weft__io_submit() runs on any thread. The uring backend prepares
 * and reaps on the io thread only (the ring is SINGLE_ISSUER). The blocking
 * backend runs each operation on one of its own threads. weft__io_done()
 * runs on whichever thread finished the operation.
 *
 * Blocking calls (weft_submit_blocking(), IO_CALL) use the same record and
 * the same path, but always go to a second instance of the blocking
 * backend, io->calls, whatever the I/O backend: a long call never holds
 * one of the threads that blocking I/O needs, and the calls' pool has a
 * size of its own (weft_pool_options.blocking_threads).
 */
#ifndef WEFT_IO_IO_H
#define WEFT_IO_IO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <linux/time_types.h>

#include "core/future.h"
#include "core/wait.h"

struct weft_pool;
struct weft_acceptor;
struct statx;
struct iovec;

enum weft__io_opcode {
	IO_NOP,
	IO_TIMEOUT, /* run by the io thread's timer heap, any backend */
	IO_READ,
	IO_WRITE,
	IO_READV,
	IO_WRITEV,
	IO_FSYNC,
	IO_FDATASYNC,
	IO_OPENAT,
	IO_CLOSE,
	IO_STATX,
	IO_ACCEPT,
	IO_ACCEPT_MULTI, /* results go to op->acc (weft__acceptor_push) */
	IO_CONNECT,
	IO_RECV,
	IO_SEND,
	IO_SHUTDOWN,
	IO_POLL,
	IO_CALL, /* weft_submit_blocking(): fn(arg) on io->calls */
	IO_NOPS_
};

struct weft__io;

struct weft__io_op {
	/* The inbox and the io thread's lists (uring), or the blocking
	 * backend's queue. Owned by whoever holds the op at the time. */
	struct weft__io_op *next;
	/* The cancel inbox (uring); set once, by the first canceller. */
	struct weft__io_op *cnext;
	struct weft__io *io;
	uint8_t opcode;
	/* Backend-private state (uring: where the op is; see uring.c). */
	uint8_t where;
	/* uring: CQEs still to come that carry this op's address (its own,
	 * its linked timeout's, a cancel's, a poll's); the op is completed
	 * only when none is left, so its address (the user_data) is not
	 * reused while the kernel may still look requests up by it. */
	uint16_t ncqe;
	int64_t res; /* uring: the result, kept until ncqe reaches 0 */
	/* Set (0 -> 1) by the first weft_future_cancel(); read by backends
	 * to finish a cancelled op that has not started with -ECANCELED. */
	_Atomic uint8_t cancel;
	int fd;
	int64_t deadline; /* WEFT_FOREVER or weft_now() time */
	/* weft_now() at submission while the pool records a trace (core/
	 * obs.h), else 0; handed to weft__obs_io() at completion. */
	int64_t t_submit;
	union {
		struct { void *buf; size_t len; int64_t off; } rw;
		struct { const struct iovec *iov; int cnt; int64_t off; } vec;
		struct { const char *path; int flags; mode_t mode; } open;
		struct {
			const char *path;
			int flags;
			unsigned mask;
			struct statx *stx;
		} stx;
		struct {
			struct sockaddr *addr;
			socklen_t *addrlen;
			int flags;
		} acc;
		struct { const struct sockaddr *addr; socklen_t len; } conn;
		struct { void *buf; size_t len; int flags; } msg;
		struct { int how; } shut;
		struct { short events; } poll;
		/* IO_CALL: value is fn's, stored by the thread that ran it
		 * before weft__io_done() (which reads it: same thread). */
		struct { weft_task_fn fn; void *arg; void *value; } call;
	} u;
	struct weft_acceptor *acc; /* IO_ACCEPT_MULTI */
	/* uring: the linked timeout's relative time, read by the kernel at
	 * submission (so it lives here, not on a stack). */
	struct __kernel_timespec ts;
	/* IO_TIMEOUT: the timer-heap entry. */
	struct weft__timer timer;
};

static inline struct weft__io_op *weft__io_op_of(struct weft_future *f)
{
	return weft__future_extra(f);
}

static inline struct weft_future *weft__io_future_of(struct weft__io_op *op)
{
	return (struct weft_future *)op - 1;
}

/*
 * The operation @op finished with @res (>= 0, or -errno). Completes its
 * future, which wakes its waiters on the calling thread, and drops the
 * backend's reference: the caller must not touch @op afterwards. For
 * IO_ACCEPT_MULTI this is its end, which it also hands its acceptor (its
 * per-connection results go through weft__acceptor_push() before). For
 * IO_CALL @res is the call's error (0 or -errno) and the value is
 * op->u.call.value: the future completes as a task's would.
 */
void weft__io_done(struct weft__io_op *op, int64_t res);

/* Hand @op (its opcode and arguments set, its future RUNNING, the caller's
 * reference held) to @pool's io thread, blocking backend or call pool. 0,
 * -ESHUTDOWN, -ENOTSUP (I/O where io_uring was insisted on and refused),
 * -ENOMEM, -EAGAIN. On error @op was not taken. Any thread. */
int weft__io_submit(struct weft_pool *pool, struct weft__io_op *op);

/*
 * Wait for the K_IO future @f. In a task that is cancelled while it waits,
 * cancel the operation, then wait on, shielded, for its own completion:
 * its memory (or a call's) may be in use until then. Returns 0, or
 * -ECANCELED when the waiting task was cancelled (@f is complete either
 * way). Suspends a task, blocks a thread.
 */
int weft__io_wait(struct weft_future *f);

/*
 * Counters for weft_pool_stats() (obs.c). io_submitted and io_completed
 * count I/O operations (every opcode but IO_CALL) started and completed;
 * blocking_in_flight is the number of blocking calls queued or running,
 * blocking_threads the threads of the call pool. Any thread, while @pool
 * lives; @pool->io NULL gives zeros. A snapshot: the counters are read
 * one after the other, so completed may briefly lead submitted.
 *
 * How they are kept (no shared atomic on the hot paths): a submission by
 * one of @pool's workers counts in the worker's own stats.io_submitted
 * (owner-only; with no_stats too, since weft_pool_stats() always keeps
 * the I/O figures), any other in io->submitted_outside (an atomic add:
 * outside threads pay for an RMW anyway); a completion on
 * the io thread counts in io->completed_io (its own line, single
 * writer), on any other thread (blocking threads, cancellers, destroy) in
 * io->completed_other.
 */
struct weft__io_counts {
	uint64_t io_submitted;
	uint64_t io_completed;
	uint64_t blocking_in_flight;
	uint64_t blocking_threads;
};

void weft__io_counts(struct weft_pool *pool, struct weft__io_counts *out);

/*
 * IO_ACCEPT_MULTI: hand the acceptor one result. @res >= 0 is an accepted
 * socket (ownership passes to the acceptor), < 0 an error; @more false
 * when this result ends the request (weft__io_done() does that: backends
 * pass true).
 */
void weft__acceptor_push(struct weft_acceptor *a, int res, bool more);

/* ---- the blocking backend (blocking.c) ------------------------------- */

struct weft__blk;

/* The most threads one instance runs (weft_pool_options.blocking_threads
 * is at most this). */
#define WEFT__BLK_THREADS_MAX 1024

/*
 * A pool of at most @threads threads (started as operations arrive, kept
 * while there is work, ended after some idle time) that run operations as
 * blocking system calls; @threads is cut to WEFT__BLK_THREADS_MAX. @name
 * (15 characters at most, a literal) names the threads. Returns 0,
 * -ENOMEM.
 */
int weft__blk_create(unsigned threads, const char *name,
		     struct weft__blk **out);

/*
 * Queue @op (any opcode except IO_TIMEOUT). A thread runs it and calls
 * weft__io_done() (IO_ACCEPT_MULTI: weft__acceptor_push() per connection,
 * then weft__io_done() at the end). Operations that can wait for a file
 * descriptor (sockets, pipes: recv, send, accept, connect, poll, read and
 * write of non-regular files) wait in poll() together with a per-thread
 * wake descriptor and op->deadline, so a cancel or the deadline ends them
 * with -ECANCELED. Returns 0, or -EAGAIN when no thread could be started
 * and none is running (the op was not taken).
 */
int weft__blk_submit(struct weft__blk *b, struct weft__io_op *op);

/*
 * Cancel @op (for I/O, op->cancel is already set by the caller): one still
 * queued completes with -ECANCELED (returns 0); one running and waiting in
 * poll() is woken and completes with -ECANCELED; one in a system call that
 * cannot be interrupted finishes with its own result (both -EBUSY, as is
 * an op not yet queued, which the thread that takes it finds cancelled).
 * An IO_CALL a thread has taken always runs: it is never woken, and its
 * function's result completes it. -EALREADY: @op has completed, or is
 * about to (the thread that finished it calls weft__io_done() right
 * after releasing b->lock). Any thread. The caller holds a reference on
 * @op's future, so @op outlives the call.
 */
int weft__blk_cancel(struct weft__blk *b, struct weft__io_op *op);

/* Under b->lock, a snapshot: threads started and not ended, operations
 * queued, operations taken by a thread and not yet finished. Any thread. */
void weft__blk_counts(struct weft__blk *b, unsigned *threads,
		      unsigned *queued, unsigned *running);

/*
 * Cancel everything queued or running, wait until every operation has
 * completed, join the threads and free @b. No submit may run concurrently
 * or follow.
 */
void weft__blk_destroy(struct weft__blk *b);

#endif /* WEFT_IO_IO_H */

/* ---- the io thread (io.c), seen by the uring backend ----------------- */

#include <pthread.h>

struct weft__uring;

struct weft__io {
	struct weft_pool *pool;
	int backend; /* WEFT_IO_URING or WEFT_IO_BLOCKING; < 0: -errno */
	/* Requests for the ring: a Treiber stack of ops (seq_cst pushes),
	 * taken whole by the io thread; and cancel requests, linked by
	 * op->cnext, each holding a reference on its op's future. */
	_Alignas(64) _Atomic(struct weft__io_op *) inbox;
	_Atomic(struct weft__io_op *) cinbox;
	/* 1 while the io thread is about to sleep or asleep (announced
	 * before its last look at the inboxes and timers): a producer that
	 * exchanges it to 0 owes the thread a wake (weft__io_kick()). */
	_Alignas(64) _Atomic uint32_t sleeping;
	/* Outside the hot lines. */
	_Alignas(64) int efd;	  /* the uring backend's wake eventfd */
	_Atomic uint32_t stop;	  /* weft__io_fini(): finish and exit */
	_Atomic uint32_t users;	  /* submitters between check and push */
	_Atomic uint32_t closed;  /* no more submissions (destroy) */
	unsigned entries;	  /* SQ entries wanted */
	unsigned threads;	  /* blocking threads / io-wq cap */
	int64_t spin_ns;	  /* spin before sleeping */
	struct weft__uring *ring; /* uring.c's state, io thread only */
	struct weft__blk *blk;	  /* the blocking backend */
	struct weft__blk *calls;  /* the blocking-call pool (IO_CALL) */
	pthread_t thread;
	/* The io thread's own id, stored by it before the start-up
	 * handshake (so read race-free by anyone who got the pool). */
	pthread_t self;
	/* Start-up handshake: the io thread stores backend, then bumps it. */
	_Atomic uint32_t started;
	/* Timers: a binary min-heap on deadline, under tlock. A timer
	 * fires under tlock, so weft__timer_del() returning means the io
	 * thread no longer touches it. */
	pthread_mutex_t tlock;
	struct weft__timer **heap;
	size_t n, cap;
	/* Counters (weft__io_counts()): completions on the io thread, a
	 * single writer (relaxed load + store), on a line of their own. */
	_Alignas(64) _Atomic uint64_t completed_io;
	/* Submissions by threads that are not the pool's workers, and
	 * completions on threads other than the io thread: atomic adds. */
	_Alignas(64) _Atomic uint64_t submitted_outside;
	_Atomic uint64_t completed_other;
};

/* Wake the io thread if it announced that it sleeps. Any thread. */
void weft__io_kick(struct weft__io *io);

/* Fire the due timers; returns the earliest deadline left (WEFT_FOREVER
 * if none). io thread. */
int64_t weft__io_run_timers(struct weft__io *io);

#if WEFT_HAVE_LIBURING
/* On the io thread: set up the ring. 0, or -errno (-EPERM, -ENOSYS,
 * -ENOMEM mean io_uring is refused; the caller falls back). */
int weft__uring_setup(struct weft__io *io);
/* On the io thread: the loop, until io->stop; then cancel what is in
 * flight, drain, and tear the ring down. */
void weft__uring_run(struct weft__io *io);
#endif
