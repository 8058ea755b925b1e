/*
 * io/uring.c - the io_uring backend: the io thread's ring and its loop.
 *
 * Only the io thread touches the ring, so it is created there with
 * SINGLE_ISSUER | DEFER_TASKRUN | SUBMIT_ALL and a completion queue twice
 * the submission queue (DESIGN.md section 6; flags dropped on -EINVAL, as
 * Photon's setup does). io-wq workers are capped (the default cap is
 * RLIMIT_NPROC), and the ring's memory is not inherited by fork().
 *
 * One turn of the loop: take the cancel requests, then the inbox (in that
 * order: an op is always pushed before its cancel, so every cancel taken
 * finds its op already taken); queue the new ops behind the ones waiting
 * for room; prepare as many as the completion queue has room for (an op
 * counts one CQE, two with a linked timeout: in-flight CQEs never exceed
 * the CQ, so the kernel never has to hold completions back); submit once;
 * reap every CQE; run the due timers. When a turn finds nothing to do the
 * thread spins a little (bounded), then announces that it sleeps and waits
 * in io_uring_enter() for a completion, its wake eventfd (a read kept
 * armed in the ring) or the next timer.
 *
 * user_data is the op's address with a tag in its low three bits (ops are
 * at least 8-aligned), so the CQE of a linked timeout, a cancel or a
 * re-poll is told apart from the op's own. Only the op's own final CQE
 * completes its future (weft__io_done()); the others just give back their
 * CQ slot. That is what makes cancellation safe: the caller's buffer is
 * released only when the kernel is done with it.
 */
#include "weft_config.h"

#if WEFT_HAVE_LIBURING

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft/io.h"
#include "core/obs.h"
#include "core/pool.h"
#include "io/io.h"
#include "util/futex.h"

enum {
	TAG_OP = 0,	/* the op's own CQE */
	TAG_LT = 1,	/* its linked timeout */
	TAG_CANCEL = 2, /* an ASYNC_CANCEL aimed at it */
	TAG_WAKE = 3,	/* the wake eventfd's read (no op) */
	TAG_REPOLL = 4, /* a poll before retrying an op that got -EAGAIN */
	TAG_MASK = 7,
};

/* op->where, written and read by the io thread only. */
enum {
	OP_NEW = 0,	 /* in the inbox or waiting for room */
	OP_KERNEL = 1,	 /* submitted: its own CQE will come */
	OP_REPOLL = 2,	 /* a poll for it is submitted */
	OP_DONE = 3,	 /* completed (only read through a cancel's ref) */
	OP_CONNPOLL = 4, /* a connect in progress: polling for POLLOUT */
};

struct weft__uring {
	struct io_uring ring;
	unsigned cq_entries;
	unsigned in_flight; /* CQEs still to come */
	struct weft__io_op *head, *tail; /* ops waiting for room, FIFO */
	bool wake_armed;
	uint64_t wake_buf;
	bool cancelled_all;
};

static inline uint64_t ud(struct weft__io_op *op, unsigned tag)
{
	return (uint64_t)(uintptr_t)op | tag;
}

/* ---- set-up ------------------------------------------------------------ */

int weft__uring_setup(struct weft__io *io)
{
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
		IORING_SETUP_CQSIZE,
	};
	struct weft__uring *u = calloc(1, sizeof(*u));
	unsigned workers[2];
	int err = -EINVAL;

	if (!u)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = flag_sets[i];
		p.cq_entries = 2 * io->entries;
		err = io_uring_queue_init_params(io->entries, &u->ring, &p);
		if (err != -EINVAL)
			break;
	}
	if (err < 0) {
		/* -EPERM (seccomp, io_uring_disabled), -ENOSYS, -ENOMEM
		 * (RLIMIT_MEMLOCK before 5.12): the caller falls back. */
		free(u);
		return err;
	}
	u->cq_entries = u->ring.cq.ring_entries;
	/* The default cap on unbounded io-wq workers is RLIMIT_NPROC;
	 * research/iouring.md section 3 lists reports of hundreds. */
	workers[0] = io->threads;
	workers[1] = io->threads;
	(void)io_uring_register_iowq_max_workers(&u->ring, workers);
	/* A fork() without exec must not share the ring's mappings. */
	(void)io_uring_ring_dontfork(&u->ring);
	/* Saves an fget() on every io_uring_enter(); optional. */
	(void)io_uring_register_ring_fd(&u->ring);
	io->ring = u;
	return 0;
}

/* ---- preparing ----------------------------------------------------------- */

static void pend_push_front(struct weft__uring *u, struct weft__io_op *op)
{
	op->next = u->head;
	u->head = op;
	if (!u->tail)
		u->tail = op;
}

static void pend_append(struct weft__uring *u, struct weft__io_op *first,
			struct weft__io_op *last)
{
	if (u->tail)
		u->tail->next = first;
	else
		u->head = first;
	u->tail = last;
	last->next = NULL;
}

static bool pend_remove(struct weft__uring *u, struct weft__io_op *op)
{
	struct weft__io_op **pp = &u->head, *prev = NULL;

	for (; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp != op)
			continue;
		*pp = op->next;
		if (u->tail == op)
			u->tail = prev;
		return true;
	}
	return false;
}

static struct io_uring_sqe *get_sqe(struct weft__uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		/* The SQ is full: hand it to the kernel and try again. */
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

/* Fill @sqe with @op's own request. */
static void prep_op(struct io_uring_sqe *sqe, struct weft__io_op *op)
{
	switch (op->opcode) {
	case IO_NOP:
		io_uring_prep_nop(sqe);
		break;
	case IO_READ:
		io_uring_prep_read(sqe, op->fd, op->u.rw.buf,
				   (unsigned)op->u.rw.len,
				   (uint64_t)op->u.rw.off);
		break;
	case IO_WRITE:
		io_uring_prep_write(sqe, op->fd, op->u.rw.buf,
				    (unsigned)op->u.rw.len,
				    (uint64_t)op->u.rw.off);
		break;
	case IO_READV:
		io_uring_prep_readv(sqe, op->fd, op->u.vec.iov,
				    (unsigned)op->u.vec.cnt,
				    (uint64_t)op->u.vec.off);
		break;
	case IO_WRITEV:
		io_uring_prep_writev(sqe, op->fd, op->u.vec.iov,
				     (unsigned)op->u.vec.cnt,
				     (uint64_t)op->u.vec.off);
		break;
	case IO_FSYNC:
		io_uring_prep_fsync(sqe, op->fd, 0);
		break;
	case IO_FDATASYNC:
		io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
		break;
	case IO_OPENAT:
		io_uring_prep_openat(sqe, op->fd, op->u.open.path,
				     op->u.open.flags | O_CLOEXEC,
				     op->u.open.mode);
		break;
	case IO_CLOSE:
		io_uring_prep_close(sqe, op->fd);
		break;
	case IO_STATX:
		io_uring_prep_statx(sqe, op->fd, op->u.stx.path,
				    op->u.stx.flags, op->u.stx.mask,
				    op->u.stx.stx);
		break;
	case IO_ACCEPT:
		io_uring_prep_accept(sqe, op->fd, op->u.acc.addr,
				     op->u.acc.addrlen,
				     op->u.acc.flags | SOCK_CLOEXEC);
		break;
	case IO_ACCEPT_MULTI:
		io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL,
					       op->u.acc.flags | SOCK_CLOEXEC);
		break;
	case IO_CONNECT:
		io_uring_prep_connect(sqe, op->fd, op->u.conn.addr,
				      op->u.conn.len);
		break;
	case IO_RECV:
		io_uring_prep_recv(sqe, op->fd, op->u.msg.buf, op->u.msg.len,
				   op->u.msg.flags);
		break;
	case IO_SEND:
		io_uring_prep_send(sqe, op->fd, op->u.msg.buf, op->u.msg.len,
				   op->u.msg.flags | MSG_NOSIGNAL);
		break;
	case IO_SHUTDOWN:
		io_uring_prep_shutdown(sqe, op->fd, op->u.shut.how);
		break;
	case IO_POLL:
		io_uring_prep_poll_add(sqe, op->fd, (unsigned)op->u.poll.events);
		break;
	}
}

/* The events an op that got -EAGAIN waits for before its retry. */
static unsigned repoll_events(const struct weft__io_op *op)
{
	switch (op->opcode) {
	case IO_WRITE:
	case IO_WRITEV:
	case IO_SEND:
	case IO_CONNECT:
		return POLLOUT;
	default:
		return POLLIN;
	}
}

/*
 * Submit @op (its own SQE, or a poll when it must wait for readiness
 * first), with its linked timeout. False, with nothing prepared, if the
 * CQ or the SQ has no room now.
 */
static bool prep(struct weft__io *io, struct weft__uring *u,
		 struct weft__io_op *op)
{
	bool timed = op->deadline != WEFT_FOREVER &&
		     op->opcode != IO_ACCEPT_MULTI;
	unsigned need = timed ? 2 : 1;
	struct io_uring_sqe *sqe, *lt;
	bool poll = op->where == OP_REPOLL || op->where == OP_CONNPOLL;

	(void)io;
	if (u->in_flight + need > u->cq_entries)
		return false;
	if (io_uring_sq_space_left(&u->ring) < need)
		io_uring_submit(&u->ring);
	if (io_uring_sq_space_left(&u->ring) < need)
		return false;
	sqe = io_uring_get_sqe(&u->ring);
	if (poll) {
		io_uring_prep_poll_add(sqe, op->fd, repoll_events(op));
		io_uring_sqe_set_data64(sqe, ud(op, TAG_REPOLL));
	} else {
		prep_op(sqe, op);
		io_uring_sqe_set_data64(sqe, ud(op, TAG_OP));
		op->where = OP_KERNEL;
	}
	if (timed) {
		/* Absolute on CLOCK_MONOTONIC, the clock of weft_now(): a
		 * retry after -EAGAIN keeps the first deadline. The kernel
		 * reads ts at submission; it lives in the op. */
		sqe->flags |= IOSQE_IO_LINK;
		op->ts.tv_sec = op->deadline / 1000000000;
		op->ts.tv_nsec = op->deadline % 1000000000;
		lt = io_uring_get_sqe(&u->ring);
		io_uring_prep_link_timeout(lt, &op->ts, IORING_TIMEOUT_ABS);
		io_uring_sqe_set_data64(lt, ud(op, TAG_LT));
	}
	u->in_flight += need;
	op->ncqe += need;
	return true;
}

static void prep_pending(struct weft__io *io, struct weft__uring *u)
{
	while (u->head) {
		struct weft__io_op *op = u->head;

		if (!prep(io, u, op))
			break;
		u->head = op->next;
		if (!u->head)
			u->tail = NULL;
	}
}

/*
 * The op's final result. Its future completes (and an acceptor ends)
 * only once every CQE carrying its address has been reaped: a linked
 * timeout that fires cancels its op by user_data in deferred task work,
 * so while that CQE is to come, a new op at the same address could be
 * cancelled in its place (tests/stress/stress_io.c caught it).
 */
static void finish(struct weft__io_op *op, int64_t res)
{
	op->where = OP_DONE;
	op->res = res;
	if (op->ncqe)
		return;
	weft__io_done(op, res);
}

/* A CQE other than the op's own final one has come for @op. */
static void cqe_seen(struct weft__io_op *op)
{
	if (--op->ncqe == 0 && op->where == OP_DONE)
		finish(op, op->res);
}

/* ---- requests ------------------------------------------------------------ */

static void cancel_one(struct weft__io *io, struct weft__uring *u,
		       struct weft__io_op *op)
{
	struct io_uring_sqe *sqe;

	switch (op->where) {
	case OP_NEW:
		/* Still waiting for room (the inbox was drained after the
		 * cancel inbox): it never reaches the kernel. */
		if (pend_remove(u, op))
			finish(op, -ECANCELED);
		break;
	case OP_KERNEL:
	case OP_REPOLL:
	case OP_CONNPOLL:
		sqe = get_sqe(u);
		if (!sqe)
			break; /* cannot happen after a submit; see get_sqe() */
		io_uring_prep_cancel64(sqe,
				       ud(op, op->where == OP_KERNEL
						      ? TAG_OP
						      : TAG_REPOLL),
				       0);
		io_uring_sqe_set_data64(sqe, ud(op, TAG_CANCEL));
		op->ncqe++;
		/* May exceed the CQ bound by the few cancels in flight; the
		 * kernel keeps overflowed CQEs (IORING_FEAT_NODROP). */
		u->in_flight++;
		break;
	default:
		break; /* completed already */
	}
	(void)io;
}

/* Take both inboxes; true if there was anything. */
static bool take_requests(struct weft__io *io, struct weft__uring *u)
{
	struct weft__io_op *c, *in, *first = NULL, *last = NULL;

	if (!atomic_load_explicit(&io->cinbox, memory_order_relaxed) &&
	    !atomic_load_explicit(&io->inbox, memory_order_relaxed))
		return false;
	/* Cancels first; see the top of the file. */
	c = atomic_exchange(&io->cinbox, NULL);
	in = atomic_exchange(&io->inbox, NULL);
	/* The inbox is a stack: reverse it into submission order. */
	while (in) {
		struct weft__io_op *next = in->next;

		in->next = first;
		first = in;
		if (!last)
			last = in;
		in = next;
	}
	if (first)
		pend_append(u, first, last);
	while (c) {
		struct weft__io_op *next = c->cnext;

		cancel_one(io, u, c);
		/* The canceller's reference (weft__io_cancel()). */
		weft_future_unref(weft__io_future_of(c));
		c = next;
	}
	return true;
}

/* ---- completions ----------------------------------------------------------- */

static bool may_retry(const struct weft__io_op *op)
{
	switch (op->opcode) {
	case IO_READ:
	case IO_WRITE:
	case IO_READV:
	case IO_WRITEV:
	case IO_ACCEPT:
		return true;
	case IO_RECV:
	case IO_SEND:
		/* The caller asked not to wait. */
		return !(op->u.msg.flags & MSG_DONTWAIT);
	default:
		return false;
	}
}

static void op_cqe(struct weft__io *io, struct weft__uring *u,
		   struct weft__io_op *op, int res, unsigned flags)
{
	bool stopping = atomic_load_explicit(&io->stop, memory_order_relaxed);
	bool cancelled = atomic_load_explicit(&op->cancel,
					      memory_order_relaxed) ||
			 stopping;

	if (op->opcode == IO_ACCEPT_MULTI) {
		if (flags & IORING_CQE_F_MORE) {
			weft__acceptor_push(op->acc, res, true);
			return;
		}
		u->in_flight--;
		op->ncqe--;
		if (res >= 0) {
			weft__acceptor_push(op->acc, res, true);
			if (!cancelled) {
				/* The request ended without an error (the
				 * kernel may end a multishot at any time):
				 * arm it again. */
				op->where = OP_NEW;
				pend_push_front(u, op);
				return;
			}
			res = -ECANCELED;
		}
		finish(op, res);
		return;
	}
	u->in_flight--;
	op->ncqe--;
	/* A descriptor in O_NONBLOCK mode makes the kernel answer -EAGAIN
	 * instead of waiting (research/iouring.md section 3, pitfall 5):
	 * wait for readiness with a poll, then try again. A connect on
	 * such a socket answers -EINPROGRESS; the poll then ends it. */
	if (!cancelled && ((res == -EAGAIN && may_retry(op)) ||
			   (res == -EINPROGRESS && op->opcode == IO_CONNECT))) {
		op->where = op->opcode == IO_CONNECT ? OP_CONNPOLL : OP_REPOLL;
		pend_push_front(u, op);
		return;
	}
	finish(op, res);
}

static void repoll_cqe(struct weft__io *io, struct weft__uring *u,
		       struct weft__io_op *op, int res)
{
	u->in_flight--;
	op->ncqe--;
	if (res < 0 || atomic_load_explicit(&op->cancel, memory_order_relaxed) ||
	    atomic_load_explicit(&io->stop, memory_order_relaxed)) {
		finish(op, res < 0 ? res : -ECANCELED);
		return;
	}
	if (op->where == OP_CONNPOLL) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		finish(op, -err);
		return;
	}
	/* Ready: issue the op itself again. */
	op->where = OP_NEW;
	pend_push_front(u, op);
}

static unsigned reap(struct weft__io *io, struct weft__uring *u)
{
	struct io_uring_cqe *cqe;
	unsigned n = 0;

	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		/* Read everything before the slot goes back to the kernel
		 * (research/iouring.md section 3, pitfall 11). */
		uint64_t data = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		unsigned flags = cqe->flags;
		struct weft__io_op *op =
			(struct weft__io_op *)(uintptr_t)(data & ~(uint64_t)TAG_MASK);

		io_uring_cqe_seen(&u->ring, cqe);
		n++;
		switch (data & TAG_MASK) {
		case TAG_OP:
			op_cqe(io, u, op, res, flags);
			break;
		case TAG_REPOLL:
			repoll_cqe(io, u, op, res);
			break;
		case TAG_WAKE:
			u->wake_armed = false;
			u->in_flight--;
			break;
		default: /* a linked timeout's or a cancel's: information */
			u->in_flight--;
			if (op) /* NULL: the cancel-all at stop */
				cqe_seen(op);
			break;
		}
	}
	return n;
}

/* ---- the loop ----------------------------------------------------------- */

static void submit(struct weft__uring *u)
{
	int r;

	/* -EINTR, -EAGAIN, -EBUSY: the SQEs stay queued; the next turn
	 * reaps (which makes room) and submits them again. */
	r = io_uring_submit(&u->ring);
	(void)r;
}

static void arm_wake(struct weft__io *io, struct weft__uring *u)
{
	struct io_uring_sqe *sqe;

	if (u->wake_armed)
		return;
	sqe = get_sqe(u);
	if (!sqe)
		return;
	io_uring_prep_read(sqe, io->efd, &u->wake_buf, sizeof(u->wake_buf), 0);
	io_uring_sqe_set_data64(sqe, TAG_WAKE);
	u->wake_armed = true;
	u->in_flight++;
}

/* Whether anything awaits the io thread. */
static bool work_waiting(struct weft__io *io, struct weft__uring *u)
{
	return atomic_load_explicit(&io->inbox, memory_order_relaxed) ||
	       atomic_load_explicit(&io->cinbox, memory_order_relaxed) ||
	       io_uring_cq_ready(&u->ring) ||
	       atomic_load_explicit(&io->stop, memory_order_relaxed);
}

/* Spin up to io->spin_ns (or @next, a timer) for new work; true if some
 * came. Completions of socket ops are deferred task work
 * (DEFER_TASKRUN) that only io_uring_enter() runs, so while ops are in
 * flight the spin asks the kernel for them now and then. */
static bool spin(struct weft__io *io, struct weft__uring *u, int64_t next)
{
	int64_t end;
	unsigned i = 0;
	unsigned own = u->wake_armed ? 1 : 0;

	if (io->spin_ns <= 0)
		return false;
	end = weft_now() + io->spin_ns;
	if (next < end)
		end = next;
	do {
		if (work_waiting(io, u))
			return true;
		if (u->in_flight > own && (++i & 15) == 0) {
			io_uring_get_events(&u->ring);
			if (io_uring_cq_ready(&u->ring))
				return true;
		}
		/* On two CPUs the io thread often shares one with the
		 * worker it waits for: spinning there only delays it (a
		 * whole tick with a pure spin, research/iouring.md 4.1).
		 * sched_yield() lets it run, and costs a syscall when
		 * nothing else wants the CPU. */
		sched_yield();
	} while (weft_now() < end);
	return false;
}

static void sleep_until(struct weft__io *io, struct weft__uring *u,
			int64_t next)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts, *tsp = NULL;

	arm_wake(io, u);
	atomic_store(&io->sleeping, 1);
	/* The re-check after the announcement (io.c, top of the file). */
	pthread_mutex_lock(&io->tlock);
	if (io->n && io->heap[0]->deadline < next)
		next = io->heap[0]->deadline;
	pthread_mutex_unlock(&io->tlock);
	if (!work_waiting(io, u)) {
		if (next != WEFT_FOREVER) {
			int64_t left = next - weft_now();

			if (left < 0)
				left = 0;
			ts.tv_sec = left / 1000000000;
			ts.tv_nsec = left % 1000000000;
			tsp = &ts;
		}
		if (!tsp || ts.tv_sec || ts.tv_nsec)
			io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1,
							 tsp, NULL);
	}
	atomic_store(&io->sleeping, 0);
}

static void stop_all(struct weft__uring *u)
{
	struct io_uring_sqe *sqe;

	/* Ops that never reached the kernel end here. */
	while (u->head) {
		struct weft__io_op *op = u->head;

		u->head = op->next;
		finish(op, -ECANCELED);
	}
	u->tail = NULL;
	if (u->cancelled_all)
		return;
	/* Everything in the kernel, including the wake read: each op
	 * still completes with its own CQE (-ECANCELED, or its result). */
	sqe = get_sqe(u);
	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
	io_uring_sqe_set_data64(sqe, TAG_CANCEL);
	u->in_flight++;
	u->cancelled_all = true;
}

void weft__uring_run(struct weft__io *io)
{
	struct weft__uring *u = io->ring;

	for (;;) {
		/* A trace shows the turns that did something (obs.h). */
		bool tr = io->pool->obs & OBS_TRACE;
		int64_t t0 = tr ? weft_now() : 0;
		bool busy = take_requests(io, u);
		unsigned n;
		int64_t next;

		if (atomic_load(&io->stop))
			stop_all(u);
		prep_pending(io, u);
		submit(u);
		if (tr && busy)
			weft__obs_io_batch(io->pool, 0, t0, 0);
		t0 = tr ? weft_now() : 0;
		n = reap(io, u);
		if (n) {
			busy = true;
			if (tr)
				weft__obs_io_batch(io->pool, 1, t0, n);
		}
		next = weft__io_run_timers(io);
		if (atomic_load(&io->stop)) {
			if (!u->in_flight && !u->head &&
			    !atomic_load(&io->inbox) && !atomic_load(&io->cinbox))
				break;
			/* Wait for the cancelled ops' own completions. */
			if (!busy) {
				struct io_uring_cqe *cqe;

				io_uring_submit_and_wait(&u->ring, 1);
				(void)io_uring_peek_cqe(&u->ring, &cqe);
			}
			continue;
		}
		if (busy || spin(io, u, next))
			continue;
		sleep_until(io, u, next);
	}
	io_uring_queue_exit(&u->ring);
	free(u);
	io->ring = NULL;
}

#endif /* WEFT_HAVE_LIBURING */
