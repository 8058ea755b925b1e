/*
 * io/blocking.c - the blocking I/O backend: each operation runs as the
 * ordinary system call on a small pool of threads, for kernels or
 * sandboxes that refuse io_uring (DESIGN.md section 6, "Fallback"). The
 * model is libuv's threadpool (uv__work_submit): a FIFO queue under one
 * mutex and condition variable, served by threads named "weft-blk".
 *
 * Results follow io_uring's convention, so the io core cannot tell the
 * backends apart: >= 0, or -errno; a cancelled operation or one past its
 * deadline ends with -ECANCELED (what an io_uring linked timeout gives).
 *
 * Threads. At most b->max running calls or waiting for work, plus those
 * waiting in ppoll() for a descriptor (up to BLK_THREADS_MAX in all),
 * started by weft__blk_submit() when more operations are queued than
 * threads are idle, and by a thread that starts waiting for a descriptor
 * while operations are queued; none before the first
 * operation. A thread idle for IDLE_NS ends itself (a later burst starts
 * new ones: pthread_create() is cheap next to the wait it serves). An
 * ending thread cannot join itself, so it leaves itself as b->zombie and
 * joins the zombie it replaced: the threads that have ended form a chain
 * in which each joins its predecessor, and weft__blk_destroy() joins the
 * last one. Nobody else ever waits in pthread_join(). The threads block
 * asynchronous signals (they are created with them blocked), so that a
 * process-directed signal goes to the application's own threads, as it
 * would without weft, and our calls rarely see EINTR.
 *
 * Cancel and deadline. An operation that can wait for a descriptor
 * (socket, pipe, terminal: recv, send, accept, connect, poll, and read or
 * write of anything that is not a regular file, block device or
 * directory) waits in ppoll() on { its descriptor, its thread's eventfd }
 * with a timeout from op->deadline, and only then makes the call, without
 * blocking where the call allows it (MSG_DONTWAIT; a descriptor with
 * O_NONBLOCK). weft__blk_cancel() writes the eventfd of the thread running
 * the operation; the thread then sees op->cancel and ends it with
 * -ECANCELED. The eventfd only says "look again": cancellation is decided
 * by op->cancel (or b->stop), never by the eventfd alone, and a thread
 * that was kicked drains its eventfd before its next operation, so a wake
 * meant for an operation that has just finished cannot end the next one.
 *
 * What cannot be interrupted (a cancel or deadline then waits for the
 * call's own result): calls on regular files and block devices (read,
 * write, fsync, open, statx, ...), openat() of a FIFO, connect() on a
 * blocking socket, a write to a blocking pipe or socket larger than the
 * room ppoll() saw, and a call on a blocking descriptor whose readiness
 * another reader or acceptor took between ppoll() and the call. Use
 * non-blocking descriptors, as one would with io_uring, to avoid these.
 * A write to a pipe with no reader raises SIGPIPE at the calling thread,
 * as it does for io_uring's submitter; here it stays pending on a thread
 * that blocks it, and the write gives -EPIPE.
 *
 * IO_ACCEPT_MULTI keeps accepting on one thread until it is cancelled or
 * fails, so each outstanding multishot accept takes one of the b->max
 * threads for its whole life (io_uring needs none).
 *
 * Blocking calls (IO_CALL, weft_submit_blocking()) run on an instance of
 * their own (io->calls, named "weft-call"), whatever the I/O backend: the
 * thread calls fn(arg, &value) and completes the future with fn's error
 * and value. A call never waits in ppoll(), so at most b->max threads
 * run calls. A thread that has taken a call runs it, cancelled or not (as
 * a worker that has claimed a task does): a cancel dequeues a call that
 * is still queued, and otherwise cannot stop it. fn runs with the
 * thread's signal mask, all asynchronous signals blocked.
 *
 * Locking: b->lock protects the queue, the thread list and counters,
 * each thread's cur and kicked, b->zombie, and op->where of every
 * operation submitted here. It is a leaf lock: weft__io_done() and
 * weft__acceptor_push() are always called without it. Queue order is
 * FIFO; cancelling a queued operation unlinks it with a scan of the
 * queue (cancels are rare and the queue is the slow path already).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "io/io.h"
#include "weft/common.h"
#include "weft_config.h"

#define IDLE_NS 1000000000 /* an idle thread ends after this long */
/* Threads waiting in ppoll() for a descriptor do not count against
 * b->max (a pool of 4 would otherwise deadlock with 4 connections
 * waiting for peers whose requests queue behind them); this caps the
 * total instead, or b->max where that is higher (the call pool, up to
 * WEFT__BLK_THREADS_MAX, whose calls never wait in ppoll()). A readiness
 * poller that frees the thread while it waits (as libuv's loop does)
 * would not need it: a known limit. */
#define BLK_THREADS_MAX 512

/* op->where for operations submitted here (under b->lock). BLK_NEW is the
 * zeroed value of an op that never reached us. */
enum {
	BLK_NEW = 0,
	BLK_QUEUED,  /* on b's queue */
	BLK_RUNNING, /* taken by the thread whose cur it is */
	BLK_DONE,    /* completed, or being completed; ours no more */
};

struct blk_thread {
	struct weft__blk *b;
	pthread_t tid;
	int efd;		  /* eventfd, non-blocking; written by cancel */
	struct weft__io_op *cur;  /* the op running here, or NULL */
	bool kicked;		  /* efd may hold a count: drain before next op */
	struct blk_thread *next;  /* on b->threads */
};

struct weft__blk {
	pthread_mutex_t lock;
	pthread_cond_t work;		 /* an op was queued, or stop */
	pthread_cond_t gone;		 /* the last thread ended */
	struct weft__io_op *head;	 /* the queue, FIFO, linked by next */
	struct weft__io_op **tail;
	unsigned nqueued;
	unsigned max;			 /* most threads at once */
	unsigned limit;			 /* most threads, wait_fd() ones too */
	unsigned nthreads;		 /* threads that will look at the queue */
	unsigned nidle;			 /* of them, waiting on work */
	unsigned nwaiting;		 /* of them, in wait_fd() */
	unsigned nrunning;		 /* of them, with an op (cur set) */
	const char *name;		 /* the threads' name, a literal */
	struct blk_thread *threads;	 /* those nthreads */
	struct blk_thread *zombie;	 /* ended, not yet joined */
	/* Set once by weft__blk_destroy() under lock; read without it by
	 * running operations, which then end as if cancelled. */
	_Atomic bool stop;
};

/* ---- small helpers ---------------------------------------------------- */

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
}

/* Should @op end with -ECANCELED? op->cancel is set by the first
 * weft_future_cancel() before weft__blk_cancel() kicks us; b->stop by
 * weft__blk_destroy() before it kicks every running thread. Both are
 * stored before the kick, so a kicked ppoll() that returns sees them. */
static bool cancelled(struct blk_thread *t, struct weft__io_op *op)
{
	return atomic_load(&op->cancel) || atomic_load(&t->b->stop);
}

static bool expired(struct weft__io_op *op)
{
	return op->deadline != WEFT_FOREVER && weft_now() >= op->deadline;
}

/* Empty @t's eventfd. It is non-blocking, so this never waits. */
static void drain(struct blk_thread *t)
{
	uint64_t v;

	while (read(t->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

/* Make @t's ppoll() return, or its next one. Under b->lock, which keeps
 * @t (and its efd) alive. A full counter (EAGAIN) already wakes it. */
static void kick(struct blk_thread *t)
{
	uint64_t one = 1;

	while (write(t->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	t->kicked = true;
}

/* 1 if @fd is O_NONBLOCK, 0 if not, -errno. */
static int fd_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	return (fl & O_NONBLOCK) != 0;
}

/* 1 if a read or write of @fd can wait for a peer (a pipe, socket,
 * terminal...), 0 if it runs to completion on its own (regular file,
 * block device, directory), -errno if fstat fails. */
static int fd_waits(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) ||
		 S_ISDIR(st.st_mode));
}

/* ---- waiting for a descriptor ----------------------------------------- */

/*
 * Wait until @op's descriptor has one of @events, @op is cancelled or its
 * deadline passes. Returns the descriptor's revents (> 0; POLLERR, POLLHUP
 * and POLLNVAL included), -ECANCELED, or -errno from ppoll().
 */
static int wait_fd_loop(struct blk_thread *t, struct weft__io_op *op,
			struct pollfd *p);
static int spawn(struct weft__blk *b);

/* Under b->lock: whether another thread may start. */
static bool may_spawn(struct weft__blk *b)
{
	return b->nthreads - b->nwaiting < b->max && b->nthreads < b->limit;
}

static int wait_fd(struct blk_thread *t, struct weft__io_op *op,
		   short events)
{
	struct pollfd p[2] = {
		{ .fd = op->fd, .events = events },
		{ .fd = t->efd, .events = POLLIN },
	};
	int r;

	/* ppoll() ignores a negative descriptor: it would wait forever. */
	if (op->fd < 0)
		return -EBADF;
	/* This thread may wait long: let queued work have another. */
	pthread_mutex_lock(&t->b->lock);
	t->b->nwaiting++;
	if (t->b->nqueued > t->b->nidle && may_spawn(t->b))
		(void)spawn(t->b); /* without one, the op waits its turn */
	pthread_mutex_unlock(&t->b->lock);
	r = wait_fd_loop(t, op, p);
	pthread_mutex_lock(&t->b->lock);
	t->b->nwaiting--;
	pthread_mutex_unlock(&t->b->lock);
	return r;
}

static int wait_fd_loop(struct blk_thread *t, struct weft__io_op *op,
			struct pollfd *p)
{
	for (;;) {
		struct timespec ts, *tsp = NULL;

		if (cancelled(t, op))
			return -ECANCELED;
		if (op->deadline != WEFT_FOREVER) {
			int64_t left = op->deadline - weft_now();

			if (left <= 0)
				return -ECANCELED;
			ns_to_ts(left, &ts);
			tsp = &ts;
		}
		if (ppoll(p, 2, tsp, NULL) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* A kick: drain it and decide by the flags at the top (a
		 * kick without a flag is only a spurious wake). The eventfd
		 * write follows the flag's store, so draining here cannot
		 * lose a cancel. */
		if (p[1].revents)
			drain(t);
		if (p[0].revents && !cancelled(t, op))
			return p[0].revents;
	}
}

/* ---- one system call -------------------------------------------------- */

/* The call for a read or write, once. On a descriptor that cannot seek
 * (pipe, socket) io_uring ignores the offset (the file has FMODE_STREAM),
 * so pread()'s ESPIPE sends us to read(). */
static int64_t rw_once(struct weft__io_op *op)
{
	bool vec = op->opcode == IO_READV || op->opcode == IO_WRITEV;
	int64_t off = vec ? op->u.vec.off : op->u.rw.off;
	ssize_t n;

	for (;;) {
		switch (op->opcode) {
		case IO_READ:
			n = off == -1 ? read(op->fd, op->u.rw.buf, op->u.rw.len)
				      : pread(op->fd, op->u.rw.buf,
					      op->u.rw.len, off);
			break;
		case IO_WRITE:
			n = off == -1
				    ? write(op->fd, op->u.rw.buf, op->u.rw.len)
				    : pwrite(op->fd, op->u.rw.buf,
					     op->u.rw.len, off);
			break;
		case IO_READV:
			n = off == -1 ? readv(op->fd, op->u.vec.iov,
					      op->u.vec.cnt)
				      : preadv(op->fd, op->u.vec.iov,
					       op->u.vec.cnt, off);
			break;
		default: /* IO_WRITEV */
			n = off == -1 ? writev(op->fd, op->u.vec.iov,
					       op->u.vec.cnt)
				      : pwritev(op->fd, op->u.vec.iov,
						op->u.vec.cnt, off);
			break;
		}
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == ESPIPE && off != -1) {
			off = -1;
			continue;
		}
		return -errno;
	}
}

/*
 * A write to a pipe or socket after ppoll() said POLLOUT. A blocking
 * descriptor would still block in write() when the data is larger than
 * the room, past any deadline or cancel: RWF_NOWAIT makes it write what
 * fits (a short count, as io_uring may give) or fail with EAGAIN (then
 * run_waiting() waits again). Where RWF_NOWAIT is not supported, one
 * PIPE_BUF at most, which POLLOUT on a pipe guarantees room for.
 */
static int64_t write_nowait(struct weft__io_op *op)
{
	struct iovec one, *iov;
	int cnt;
	ssize_t n;

	if (op->opcode == IO_WRITE) {
		one.iov_base = op->u.rw.buf;
		one.iov_len = op->u.rw.len;
		iov = &one;
		cnt = 1;
	} else {
		iov = (struct iovec *)op->u.vec.iov;
		cnt = op->u.vec.cnt;
	}
	do
		n = pwritev2(op->fd, iov, cnt, -1, RWF_NOWAIT);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno != EOPNOTSUPP && errno != EINVAL)
		return -errno;
	one = iov[0];
	if (one.iov_len > PIPE_BUF)
		one.iov_len = PIPE_BUF;
	do
		n = write(op->fd, one.iov_base, one.iov_len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* The call for a waitable @op other than recv and send, once. */
static int64_t call_once(struct weft__io_op *op)
{
	int r;

	switch (op->opcode) {
	case IO_ACCEPT:
		do
			r = accept4(op->fd, op->u.acc.addr, op->u.acc.addrlen,
				    op->u.acc.flags | SOCK_CLOEXEC);
		while (r < 0 && errno == EINTR);
		break;
	case IO_ACCEPT_MULTI:
		do
			r = accept4(op->fd, NULL, NULL,
				    op->u.acc.flags | SOCK_CLOEXEC);
		while (r < 0 && errno == EINTR);
		break;
	case IO_WRITE:
	case IO_WRITEV:
		return write_nowait(op);
	default:
		return rw_once(op);
	}
	return r < 0 ? -errno : r;
}

/*
 * Run a waitable @op: wait for @events, make the call, and go back to
 * waiting while it says EAGAIN (a non-blocking descriptor whose readiness
 * another reader took, or a readiness that vanished, as for a datagram
 * with a bad checksum).
 */
static int64_t run_waiting(struct blk_thread *t, struct weft__io_op *op,
			   short events)
{
	for (;;) {
		int r = wait_fd(t, op, events);
		int64_t res;

		if (r < 0)
			return r;
		res = call_once(op);
		if (res != -EAGAIN && res != -EWOULDBLOCK)
			return res;
	}
}

/*
 * recv or send. Both are made non-blocking with MSG_DONTWAIT whatever the
 * descriptor's mode, so the call is tried first and the wait follows only
 * on EAGAIN; a caller who passed MSG_DONTWAIT gets that EAGAIN, as from
 * io_uring. MSG_WAITALL (which MSG_DONTWAIT would defeat) is done here,
 * as io_uring does it: on a stream socket keep going until @len bytes,
 * end of stream or an error; an error or cancel after some bytes gives
 * the count, since the bytes are gone from the socket.
 */
static int64_t run_msg(struct blk_thread *t, struct weft__io_op *op,
		       bool is_send)
{
	int flags = (op->u.msg.flags & ~MSG_WAITALL) | MSG_DONTWAIT;
	bool nowait = op->u.msg.flags & MSG_DONTWAIT;
	char *buf = op->u.msg.buf;
	size_t len = op->u.msg.len, done = 0;
	bool all = false;

	if (is_send)
		flags |= MSG_NOSIGNAL;
	if (op->u.msg.flags & MSG_WAITALL) {
		int type;
		socklen_t tl = sizeof(type);

		if (getsockopt(op->fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0)
			all = type == SOCK_STREAM || type == SOCK_SEQPACKET;
	}
	for (;;) {
		ssize_t n = is_send ? send(op->fd, buf + done, len - done, flags)
				    : recv(op->fd, buf + done, len - done, flags);
		int r;

		if (n > 0) {
			done += (size_t)n;
			if (!all || done == len)
				return (int64_t)done;
			continue;
		}
		if (n == 0)
			return (int64_t)done;
		if (errno == EINTR)
			continue;
		r = -errno;
		if ((r != -EAGAIN && r != -EWOULDBLOCK) || nowait)
			return done ? (int64_t)done : r;
		r = wait_fd(t, op, is_send ? POLLOUT : POLLIN);
		if (r < 0)
			return done ? (int64_t)done : r;
	}
}

/*
 * connect. A non-blocking socket connects in the background (EINPROGRESS)
 * and we wait for POLLOUT, so cancel and deadline work; SO_ERROR then
 * gives the outcome. A blocking socket's connect() waits inside the call
 * and cannot be interrupted: switching the socket to O_NONBLOCK for the
 * call would change the open file description that other threads share.
 * After EINTR the connect goes on in the background (POSIX), so it is
 * waited for like EINPROGRESS.
 */
static int64_t run_connect(struct blk_thread *t, struct weft__io_op *op)
{
	int err;
	socklen_t el = sizeof(err);

	if (connect(op->fd, op->u.conn.addr, op->u.conn.len) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return -errno;
	err = wait_fd(t, op, POLLOUT);
	if (err < 0)
		return err;
	if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -errno;
	return -err;
}

/* poll: the ready events. POLLNVAL becomes -EBADF, which is what io_uring
 * answers for a bad descriptor (it never reports POLLNVAL). */
static int64_t run_poll(struct blk_thread *t, struct weft__io_op *op)
{
	int r = wait_fd(t, op, op->u.poll.events);

	if (r > 0 && (r & POLLNVAL))
		return -EBADF;
	return r;
}

/*
 * IO_ACCEPT_MULTI: hand each accepted socket to the acceptor until the
 * first error, cancel (-ECANCELED) or deadline; that ending result is
 * returned (weft__io_done() pushes it as the acceptor's last). On a
 * non-blocking listener, after a success we try again at once: under load
 * the next connection is usually there already.
 */
static int64_t run_accept_multi(struct blk_thread *t, struct weft__io_op *op)
{
	int nb = fd_nonblock(op->fd);
	int64_t res;

	if (nb < 0)
		return nb;
	for (;;) {
		if (cancelled(t, op) || expired(op))
			return -ECANCELED;
		res = run_waiting(t, op, POLLIN);
		while (res >= 0) {
			weft__acceptor_push(op->acc, (int)res, true);
			if (!nb || cancelled(t, op))
				break;
			res = call_once(op);
			if (res == -EAGAIN || res == -EWOULDBLOCK)
				break;
		}
		if (res < 0 && res != -EAGAIN && res != -EWOULDBLOCK)
			return res;
	}
}

/* read, write and their vector forms: straight through on a file, which
 * cannot wait for a peer; through ppoll() on anything else. */
static int64_t run_rw(struct blk_thread *t, struct weft__io_op *op)
{
	int w = fd_waits(op->fd);
	bool rd = op->opcode == IO_READ || op->opcode == IO_READV;

	if (w < 0)
		return w;
	if (!w)
		return rw_once(op);
	return run_waiting(t, op, rd ? POLLIN : POLLOUT);
}

/* @res = the result of the system call @expr, restarted after EINTR. */
#define RETRY(res, expr)                                          \
	do {                                                      \
		long r_;                                          \
		do                                                \
			r_ = (long)(expr);                        \
		while (r_ < 0 && errno == EINTR);                 \
		(res) = r_ < 0 ? -(int64_t)errno : (int64_t)r_;   \
	} while (0)

/* IO_CALL: the function, once; its error, as weft__future_run() takes a
 * task's (a positive return counts as 0). The value goes in the op for
 * weft__io_done(), on this same thread. */
static int64_t run_call(struct weft__io_op *op)
{
	void *value = NULL;
	int err = op->u.call.fn(op->u.call.arg, &value);

	op->u.call.value = value;
	return err > 0 ? 0 : err;
}

/* Run @op on thread @t; its result, >= 0 or -errno. */
static int64_t run_op(struct blk_thread *t, struct weft__io_op *op)
{
	int64_t res;

	/* Taken is committed, for a call: a cancel of a call that is no
	 * longer queued has returned -EBUSY, which promises it runs. */
	if (op->opcode == IO_CALL)
		return run_call(op);
	if (cancelled(t, op) || expired(op))
		return -ECANCELED;
	switch (op->opcode) {
	case IO_NOP:
		return 0;
	case IO_READ:
	case IO_WRITE:
	case IO_READV:
	case IO_WRITEV:
		return run_rw(t, op);
	case IO_FSYNC:
		RETRY(res, fsync(op->fd));
		return res;
	case IO_FDATASYNC:
		RETRY(res, fdatasync(op->fd));
		return res;
	case IO_OPENAT:
		RETRY(res, openat(op->fd, op->u.open.path,
				  op->u.open.flags | O_CLOEXEC,
				  op->u.open.mode));
		return res;
	case IO_CLOSE:
		/* Never retried: Linux has released the descriptor even
		 * when close() says EINTR, and the number may already be
		 * someone else's. The close did happen, so that is 0. */
		if (close(op->fd) < 0 && errno != EINTR)
			return -errno;
		return 0;
	case IO_STATX:
		RETRY(res, statx(op->fd, op->u.stx.path, op->u.stx.flags,
				 op->u.stx.mask, op->u.stx.stx));
		return res;
	case IO_ACCEPT:
		return run_waiting(t, op, POLLIN);
	case IO_ACCEPT_MULTI:
		return run_accept_multi(t, op);
	case IO_CONNECT:
		return run_connect(t, op);
	case IO_RECV:
		return run_msg(t, op, false);
	case IO_SEND:
		return run_msg(t, op, true);
	case IO_SHUTDOWN:
		RETRY(res, shutdown(op->fd, op->u.shut.how));
		return res;
	case IO_POLL:
		return run_poll(t, op);
	default: /* IO_TIMEOUT belongs to the io thread's timer heap */
		return -EINVAL;
	}
}

/* ---- the threads ------------------------------------------------------ */

static void unlink_thread(struct weft__blk *b, struct blk_thread *t)
{
	struct blk_thread **pp = &b->threads;

	while (*pp != t)
		pp = &(*pp)->next;
	*pp = t->next;
}

/*
 * Under b->lock: wait up to IDLE_NS for work or stop. Returns false when
 * the time ran out with nothing queued (the thread should end).
 */
static bool idle_wait(struct weft__blk *b)
{
	struct timespec ts;
	bool more = true;

	ns_to_ts(weft_now() + IDLE_NS, &ts);
	b->nidle++;
	while (!b->head && !atomic_load(&b->stop)) {
		if (pthread_cond_timedwait(&b->work, &b->lock, &ts) ==
		    ETIMEDOUT) {
			more = b->head || atomic_load(&b->stop);
			break;
		}
	}
	b->nidle--;
	return more;
}

static void *blk_main(void *arg)
{
	struct blk_thread *t = arg;
	struct weft__blk *b = t->b;
	struct blk_thread *prev;

#if WEFT_HAVE_PTHREAD_SETNAME_NP
	pthread_setname_np(pthread_self(), b->name);
#endif
	pthread_mutex_lock(&b->lock);
	for (;;) {
		struct weft__io_op *op = b->head;
		int64_t res;

		/* Once stop is set the queue is destroy()'s, which
		 * cancels what is left: take nothing more, end. */
		if (!op || atomic_load(&b->stop)) {
			if (atomic_load(&b->stop) || !idle_wait(b))
				break;
			continue;
		}
		b->head = op->next;
		if (!b->head)
			b->tail = &b->head;
		b->nqueued--;
		b->nrunning++;
		op->where = BLK_RUNNING;
		t->cur = op;
		/* Every kick so far was for an op before this one (a kick
		 * needs cur == that op, under this lock): drop them. */
		if (t->kicked) {
			drain(t);
			t->kicked = false;
		}
		pthread_mutex_unlock(&b->lock);

		res = run_op(t, op);

		pthread_mutex_lock(&b->lock);
		t->cur = NULL;
		b->nrunning--;
		op->where = BLK_DONE;
		pthread_mutex_unlock(&b->lock);
		weft__io_done(op, res);
		pthread_mutex_lock(&b->lock);
	}
	/* End: leave the list (no cancel can reach our efd any more), and
	 * become the zombie that the next ending thread or destroy joins. */
	unlink_thread(b, t);
	b->nthreads--;
	prev = b->zombie;
	b->zombie = t;
	if (!b->nthreads)
		pthread_cond_broadcast(&b->gone);
	pthread_mutex_unlock(&b->lock);
	/* From here b may be freed: destroy only needs nthreads == 0 to go
	 * on to join us, and we touch nothing of b but our own record. */
	close(t->efd);
	if (prev) {
		pthread_join(prev->tid, NULL);
		free(prev);
	}
	return NULL;
}

/*
 * Under b->lock: start one more thread. Its first act is to take b->lock,
 * so it finds whatever the caller queues before unlocking. Returns 0,
 * -EAGAIN (no thread or eventfd), -ENOMEM.
 */
static int spawn(struct weft__blk *b)
{
	struct blk_thread *t = calloc(1, sizeof(*t));
	sigset_t all, old;
	int err;

	if (!t)
		return -ENOMEM;
	t->b = b;
	t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->efd < 0) {
		free(t);
		return -EAGAIN;
	}
	/* The new thread inherits this mask: asynchronous signals stay
	 * blocked in it from its first instruction. The synchronous ones
	 * cannot usefully be blocked (a fault would just kill). */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGSYS);
	sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&t->tid, NULL, blk_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		close(t->efd);
		free(t);
		return -EAGAIN;
	}
	t->next = b->threads;
	b->threads = t;
	b->nthreads++;
	return 0;
}

/* ---- the interface (io.h) --------------------------------------------- */

int weft__blk_create(unsigned threads, const char *name,
		     struct weft__blk **out)
{
	struct weft__blk *b = calloc(1, sizeof(*b));
	pthread_condattr_t ca;

	if (!b)
		return -ENOMEM;
	b->tail = &b->head;
	b->max = threads ? threads : 1; /* 0 would run nothing */
	if (b->max > WEFT__BLK_THREADS_MAX)
		b->max = WEFT__BLK_THREADS_MAX;
	b->limit = b->max > BLK_THREADS_MAX ? b->max : BLK_THREADS_MAX;
	b->name = name;
	atomic_init(&b->stop, false);
	/* idle_wait()'s deadline is on CLOCK_MONOTONIC, like weft_now(). */
	if (pthread_condattr_init(&ca))
		goto err_free;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&b->work, &ca))
		goto err_attr;
	if (pthread_cond_init(&b->gone, NULL))
		goto err_work;
	if (pthread_mutex_init(&b->lock, NULL))
		goto err_gone;
	pthread_condattr_destroy(&ca);
	*out = b;
	return 0;

err_gone:
	pthread_cond_destroy(&b->gone);
err_work:
	pthread_cond_destroy(&b->work);
err_attr:
	pthread_condattr_destroy(&ca);
err_free:
	free(b);
	return -ENOMEM;
}

int weft__blk_submit(struct weft__blk *b, struct weft__io_op *op)
{
	int err = 0;

	op->next = NULL;
	pthread_mutex_lock(&b->lock);
	/* One more thread when the queue (with @op) outgrows the idle
	 * ones. An idle thread that was signalled but has not yet run still
	 * counts as idle, so a burst may briefly start one thread too few;
	 * the queue drains all the same. */
	if (b->nqueued + 1 > b->nidle && may_spawn(b)) {
		err = spawn(b);
		/* With no thread at all nobody would ever run @op. With
		 * some, it waits its turn. */
		if (err && !b->nthreads) {
			err = -EAGAIN;
			goto out_unlock;
		}
		err = 0;
	}
	op->where = BLK_QUEUED;
	*b->tail = op;
	b->tail = &op->next;
	b->nqueued++;
	if (b->nidle)
		pthread_cond_signal(&b->work);
out_unlock:
	pthread_mutex_unlock(&b->lock);
	return err;
}

int weft__blk_cancel(struct weft__blk *b, struct weft__io_op *op)
{
	bool dequeued = false;
	int ret = -EBUSY;

	pthread_mutex_lock(&b->lock);
	if (op->where == BLK_QUEUED) {
		struct weft__io_op **pp = &b->head;

		/* Stops at the end too, in case where was not ours. */
		while (*pp && *pp != op)
			pp = &(*pp)->next;
		if (*pp) {
			*pp = op->next;
			if (b->tail == &op->next)
				b->tail = pp;
			b->nqueued--;
			op->where = BLK_DONE;
			dequeued = true;
			ret = 0;
		}
	} else if (op->where == BLK_RUNNING && op->opcode != IO_CALL) {
		struct blk_thread *t;

		for (t = b->threads; t; t = t->next) {
			if (t->cur == op) {
				kick(t);
				break;
			}
		}
	} else if (op->where == BLK_DONE) {
		ret = -EALREADY;
	}
	/* BLK_NEW: not submitted yet; the thread that takes it will see
	 * op->cancel. A running IO_CALL: nothing can stop it. */
	pthread_mutex_unlock(&b->lock);
	if (dequeued)
		weft__io_done(op, -ECANCELED);
	return ret;
}

void weft__blk_counts(struct weft__blk *b, unsigned *threads,
		      unsigned *queued, unsigned *running)
{
	pthread_mutex_lock(&b->lock);
	*threads = b->nthreads;
	*queued = b->nqueued;
	*running = b->nrunning;
	pthread_mutex_unlock(&b->lock);
}

void weft__blk_destroy(struct weft__blk *b)
{
	struct weft__io_op *op;
	struct blk_thread *t, *z;

	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	atomic_store(&b->stop, true);
	for (t = b->threads; t; t = t->next)
		if (t->cur)
			kick(t);
	pthread_cond_broadcast(&b->work);
	/* What is still queued ends -ECANCELED, one op at a time: the
	 * completion runs callbacks, which may cancel other queued ops, and
	 * those must still be found queued (weft__blk_cancel() dequeues and
	 * completes them itself), never marked done but not yet completed,
	 * which a cancel of a call would wait on for ever. */
	while ((op = b->head)) {
		b->head = op->next;
		if (!b->head)
			b->tail = &b->head;
		b->nqueued--;
		op->where = BLK_DONE;
		pthread_mutex_unlock(&b->lock);
		weft__io_done(op, -ECANCELED);
		pthread_mutex_lock(&b->lock);
	}
	while (b->nthreads)
		pthread_cond_wait(&b->gone, &b->lock);
	z = b->zombie;
	pthread_mutex_unlock(&b->lock);
	/* Each ended thread joined the one before it: joining the last
	 * joins them all. */
	if (z) {
		pthread_join(z->tid, NULL);
		free(z);
	}
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->work);
	pthread_cond_destroy(&b->gone);
	free(b);
}
