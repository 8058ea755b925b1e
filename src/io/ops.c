/*
 * io/ops.c - the public operations of weft/io.h: argument checks, the
 * operation record, the multishot acceptor, the loops over short
 * transfers, and blocking calls.
 *
 * Each weft_io_*() call checks its arguments (nothing is allocated or
 * started on -EINVAL), allocates the future with its op record behind it,
 * and hands the op to the pool's io thread (io.c). The future is created
 * RUNNING: it has no task to run, so a waiter never tries to run it
 * inline, and weft_future_cancel() reaches the io thread instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "weft/io.h"
#include "weft/async.h"
#include "weft/sync.h"
#include "weft/task.h"
#include "core/pool.h"
#include "io/io.h"
#include "util/spinlock.h"

/* The pool to use: @pool, or the calling task's. */
static struct weft_pool *pool_or_current(struct weft_pool *pool)
{
	struct weft__worker *w;

	if (pool)
		return pool;
	w = weft__current_worker();
	return w ? w->pool : NULL;
}

static struct weft__io_op *op_new(uint8_t opcode, int fd, int64_t deadline)
{
	struct weft_future *f = weft__future_new(K_IO, NULL, NULL,
						 sizeof(struct weft__io_op));
	struct weft__io_op *op;

	if (!f)
		return NULL;
	/* Not yet published: relaxed is enough. */
	atomic_store_explicit(&f->state, F_RUNNING, memory_order_relaxed);
	op = weft__io_op_of(f);
	op->opcode = opcode;
	op->fd = fd;
	op->deadline = deadline;
	return op;
}

/* Hand @op to @pool's io thread; on success the future goes to *@out. */
static int start(struct weft_pool *pool, struct weft__io_op *op,
		 struct weft_future **out)
{
	struct weft_future *f = weft__io_future_of(op);
	int err = weft__io_submit(pool, op);

	if (err) {
		weft_future_unref(f);
		return err;
	}
	*out = f;
	return 0;
}

/* The checks every call shares; then allocate. */
#define OP_BEGIN(opcode, fd)                                                 \
	struct weft__io_op *op;                                              \
	if (!out || !(pool = pool_or_current(pool)))                         \
		return -EINVAL;                                              \
	op = op_new((opcode), (fd), deadline);                               \
	if (!op)                                                             \
		return -ENOMEM

static bool bad_rw(const void *buf, size_t len, int64_t offset)
{
	return (!buf && len) || len > INT32_MAX || offset < -1;
}

static bool bad_vec(const struct iovec *iov, int cnt, int64_t offset)
{
	return !iov || cnt < 1 || cnt > IOV_MAX || offset < -1;
}

WEFT_API int weft_io_nop(struct weft_pool *pool, int64_t deadline,
			 struct weft_future **out)
{
	OP_BEGIN(IO_NOP, -1);
	return start(pool, op, out);
}

WEFT_API int weft_io_timeout(struct weft_pool *pool, int64_t deadline,
			     struct weft_future **out)
{
	if (deadline == WEFT_FOREVER)
		return -EINVAL;
	OP_BEGIN(IO_TIMEOUT, -1);
	return start(pool, op, out);
}

/* read and write: one shape, two opcodes. */
static int rw_start(struct weft_pool *pool, uint8_t opcode, int fd, void *buf,
		    size_t len, int64_t offset, int64_t deadline,
		    struct weft_future **out)
{
	if (bad_rw(buf, len, offset))
		return -EINVAL;
	OP_BEGIN(opcode, fd);
	op->u.rw.buf = buf;
	op->u.rw.len = len;
	op->u.rw.off = offset;
	return start(pool, op, out);
}

/* readv and writev likewise. */
static int vec_start(struct weft_pool *pool, uint8_t opcode, int fd,
		     const struct iovec *iov, int iovcnt, int64_t offset,
		     int64_t deadline, struct weft_future **out)
{
	if (bad_vec(iov, iovcnt, offset))
		return -EINVAL;
	OP_BEGIN(opcode, fd);
	op->u.vec.iov = iov;
	op->u.vec.cnt = iovcnt;
	op->u.vec.off = offset;
	return start(pool, op, out);
}

WEFT_API int weft_io_read(struct weft_pool *pool, int fd, void *buf,
			  size_t len, int64_t offset, int64_t deadline,
			  struct weft_future **out)
{
	return rw_start(pool, IO_READ, fd, buf, len, offset, deadline, out);
}

WEFT_API int weft_io_write(struct weft_pool *pool, int fd, const void *buf,
			   size_t len, int64_t offset, int64_t deadline,
			   struct weft_future **out)
{
	/* The op record is shared with reads; a write never writes it. */
	return rw_start(pool, IO_WRITE, fd, (void *)buf, len, offset, deadline,
			out);
}

WEFT_API int weft_io_readv(struct weft_pool *pool, int fd,
			   const struct iovec *iov, int iovcnt, int64_t offset,
			   int64_t deadline, struct weft_future **out)
{
	return vec_start(pool, IO_READV, fd, iov, iovcnt, offset, deadline,
			 out);
}

WEFT_API int weft_io_writev(struct weft_pool *pool, int fd,
			    const struct iovec *iov, int iovcnt,
			    int64_t offset, int64_t deadline,
			    struct weft_future **out)
{
	return vec_start(pool, IO_WRITEV, fd, iov, iovcnt, offset, deadline,
			 out);
}

WEFT_API int weft_io_fsync(struct weft_pool *pool, int fd, int64_t deadline,
			   struct weft_future **out)
{
	OP_BEGIN(IO_FSYNC, fd);
	return start(pool, op, out);
}

WEFT_API int weft_io_fdatasync(struct weft_pool *pool, int fd,
			       int64_t deadline, struct weft_future **out)
{
	OP_BEGIN(IO_FDATASYNC, fd);
	return start(pool, op, out);
}

WEFT_API int weft_io_openat(struct weft_pool *pool, int dirfd,
			    const char *path, int flags, mode_t mode,
			    int64_t deadline, struct weft_future **out)
{
	if (!path)
		return -EINVAL;
	OP_BEGIN(IO_OPENAT, dirfd);
	op->u.open.path = path;
	op->u.open.flags = flags;
	op->u.open.mode = mode;
	return start(pool, op, out);
}

WEFT_API int weft_io_close(struct weft_pool *pool, int fd, int64_t deadline,
			   struct weft_future **out)
{
	OP_BEGIN(IO_CLOSE, fd);
	return start(pool, op, out);
}

WEFT_API int weft_io_statx(struct weft_pool *pool, int dirfd,
			   const char *path, int flags, unsigned mask,
			   struct statx *stx, int64_t deadline,
			   struct weft_future **out)
{
	if (!path || !stx)
		return -EINVAL;
	OP_BEGIN(IO_STATX, dirfd);
	op->u.stx.path = path;
	op->u.stx.flags = flags;
	op->u.stx.mask = mask;
	op->u.stx.stx = stx;
	return start(pool, op, out);
}

WEFT_API int weft_io_accept(struct weft_pool *pool, int fd,
			    struct sockaddr *addr, socklen_t *addrlen,
			    int flags, int64_t deadline,
			    struct weft_future **out)
{
	if (!addr != !addrlen)
		return -EINVAL;
	OP_BEGIN(IO_ACCEPT, fd);
	op->u.acc.addr = addr;
	op->u.acc.addrlen = addrlen;
	op->u.acc.flags = flags;
	return start(pool, op, out);
}

WEFT_API int weft_io_connect(struct weft_pool *pool, int fd,
			     const struct sockaddr *addr, socklen_t addrlen,
			     int64_t deadline, struct weft_future **out)
{
	if (!addr || !addrlen)
		return -EINVAL;
	OP_BEGIN(IO_CONNECT, fd);
	op->u.conn.addr = addr;
	op->u.conn.len = addrlen;
	return start(pool, op, out);
}

/* recv and send. */
static int msg_start(struct weft_pool *pool, uint8_t opcode, int fd,
		     void *buf, size_t len, int flags, int64_t deadline,
		     struct weft_future **out)
{
	if (bad_rw(buf, len, 0))
		return -EINVAL;
	OP_BEGIN(opcode, fd);
	op->u.msg.buf = buf;
	op->u.msg.len = len;
	op->u.msg.flags = flags;
	return start(pool, op, out);
}

WEFT_API int weft_io_recv(struct weft_pool *pool, int fd, void *buf,
			  size_t len, int flags, int64_t deadline,
			  struct weft_future **out)
{
	return msg_start(pool, IO_RECV, fd, buf, len, flags, deadline, out);
}

WEFT_API int weft_io_send(struct weft_pool *pool, int fd, const void *buf,
			  size_t len, int flags, int64_t deadline,
			  struct weft_future **out)
{
	return msg_start(pool, IO_SEND, fd, (void *)buf, len, flags, deadline,
			 out);
}

WEFT_API int weft_io_shutdown(struct weft_pool *pool, int fd, int how,
			      int64_t deadline, struct weft_future **out)
{
	OP_BEGIN(IO_SHUTDOWN, fd);
	op->u.shut.how = how;
	return start(pool, op, out);
}

WEFT_API int weft_io_poll(struct weft_pool *pool, int fd, short events,
			  int64_t deadline, struct weft_future **out)
{
	if (!events)
		return -EINVAL;
	OP_BEGIN(IO_POLL, fd);
	op->u.poll.events = events;
	return start(pool, op, out);
}

/* ---- the multishot acceptor --------------------------------------------- */

/*
 * Accepted sockets queue in a ring buffer under a spinlock (the io thread
 * holds it for a few instructions); the semaphore counts what a
 * weft_acceptor_next() may take: one per queued socket, plus one for the
 * end once the request has ended, which each taker that finds the queue
 * empty gives back so that every later caller sees the end too.
 */
struct weft_acceptor {
	struct weft_future *f; /* the request's future; our reference */
	_Atomic uint32_t lock;
	int *fds;
	size_t head, n, cap;
	int end; /* 0 while accepting; then the error that ended it */
	struct weft_sem avail;
};

void weft__acceptor_push(struct weft_acceptor *a, int res, bool more)
{
	bool queued = false;

	if (res >= 0) {
		weft__spin_lock(&a->lock);
		if (a->n == a->cap) {
			size_t cap = a->cap ? 2 * a->cap : 16;
			int *fds = malloc(cap * sizeof(*fds));

			if (fds) {
				for (size_t i = 0; i < a->n; i++)
					fds[i] = a->fds[(a->head + i) % a->cap];
				free(a->fds);
				a->fds = fds;
				a->head = 0;
				a->cap = cap;
			}
		}
		if (a->n < a->cap) {
			a->fds[(a->head + a->n++) % a->cap] = res;
			queued = true;
		}
		weft__spin_unlock(&a->lock);
		if (queued)
			weft_sem_release(&a->avail, 1);
		else
			close(res); /* no memory: the peer sees a reset */
	}
	if (!more) {
		weft__spin_lock(&a->lock);
		a->end = res < 0 ? res : -ECANCELED;
		weft__spin_unlock(&a->lock);
		weft_sem_release(&a->avail, 1);
	}
}

WEFT_API int weft_io_accept_multishot(struct weft_pool *pool, int fd,
				      int flags, struct weft_acceptor **out)
{
	struct weft_acceptor *a;
	struct weft__io_op *op;
	int err;

	if (!out || !(pool = pool_or_current(pool)))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	weft_sem_init(&a->avail, 0);
	op = op_new(IO_ACCEPT_MULTI, fd, WEFT_FOREVER);
	if (!op) {
		free(a);
		return -ENOMEM;
	}
	op->u.acc.flags = flags;
	op->acc = a;
	err = start(pool, op, &a->f);
	if (err) {
		weft_sem_fini(&a->avail);
		free(a);
		return err;
	}
	*out = a;
	return 0;
}

WEFT_API int weft_acceptor_next(struct weft_acceptor *a, int64_t deadline)
{
	int err, fd;

	if (!a)
		return -EINVAL;
	err = weft_sem_acquire_until(&a->avail, deadline);
	if (err)
		return err;
	weft__spin_lock(&a->lock);
	if (a->n) {
		fd = a->fds[a->head];
		a->head = (a->head + 1) % a->cap;
		a->n--;
		weft__spin_unlock(&a->lock);
		return fd;
	}
	fd = a->end;
	weft__spin_unlock(&a->lock);
	weft_sem_release(&a->avail, 1); /* the end, for the next caller */
	return fd;
}

WEFT_API void weft_acceptor_close(struct weft_acceptor *a)
{
	if (!a)
		return;
	weft_future_cancel(a->f);
	/* The request's own end must come before the acceptor goes: the io
	 * thread pushes into it until then. Not a cancellation point. */
	weft_cancel_shield_push();
	while (weft_future_wait(a->f) != 0)
		;
	weft_cancel_shield_pop();
	weft_future_unref(a->f);
	while (a->n) {
		close(a->fds[a->head]);
		a->head = (a->head + 1) % a->cap;
		a->n--;
	}
	free(a->fds);
	weft_sem_fini(&a->avail);
	free(a);
}

/* ---- loops over short transfers ----------------------------------------- */

/* One read or write, awaited. */
static ssize_t rw_once(struct weft_pool *pool, bool write, int fd, char *buf,
		       size_t len, int64_t offset, int64_t deadline)
{
	struct weft_future *f;
	int err;

	if (weft_task_cancelled())
		return -ECANCELED;
	err = write ? weft_io_write(pool, fd, buf, len, offset, deadline, &f)
		    : weft_io_read(pool, fd, buf, len, offset, deadline, &f);
	if (err)
		return err;
	return (ssize_t)weft_io_await(f);
}

/* Up to INT32_MAX per operation (the API's bound on one op's length). */
static size_t chunk(size_t left)
{
	return left > (size_t)INT32_MAX ? (size_t)INT32_MAX : left;
}

WEFT_API ssize_t weft_io_read_exact(struct weft_pool *pool, int fd,
				    void *buf, size_t len, int64_t offset,
				    int64_t deadline)
{
	size_t done = 0;

	if ((!buf && len) || offset < -1 || len > SSIZE_MAX ||
	    !(pool = pool_or_current(pool)))
		return -EINVAL;
	while (done < len) {
		ssize_t n = rw_once(pool, false, fd, (char *)buf + done,
				    chunk(len - done),
				    offset < 0 ? -1 : offset + (int64_t)done,
				    deadline);

		if (n < 0)
			return n;
		if (n == 0)
			break; /* end of file */
		done += (size_t)n;
	}
	return (ssize_t)done;
}

WEFT_API ssize_t weft_io_write_all(struct weft_pool *pool, int fd,
				   const void *buf, size_t len, int64_t offset,
				   int64_t deadline)
{
	size_t done = 0;

	if ((!buf && len) || offset < -1 || len > SSIZE_MAX ||
	    !(pool = pool_or_current(pool)))
		return -EINVAL;
	while (done < len) {
		ssize_t n = rw_once(pool, true, fd, (char *)buf + done,
				    chunk(len - done),
				    offset < 0 ? -1 : offset + (int64_t)done,
				    deadline);

		if (n < 0)
			return n;
		if (n == 0)
			return -EIO; /* no progress, no error: give up */
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* The result of an op whose start returned @err (and *@f on success). */
static int64_t await_op(int err, struct weft_future **f)
{
	return err ? err : weft_io_await(*f);
}

WEFT_API int weft_io_read_file(struct weft_pool *pool, int dirfd,
			       const char *path, int64_t deadline,
			       void **data, size_t *len)
{
	struct weft_future *f;
	struct statx stx;
	char *buf = NULL;
	size_t cap, have = 0;
	int64_t r;
	int fd, err = 0;

	if (!path || !data || !len || !(pool = pool_or_current(pool)))
		return -EINVAL;
	r = await_op(weft_io_openat(pool, dirfd, path, O_RDONLY, 0, deadline,
				    &f),
		     &f);
	if (r < 0)
		return (int)r;
	fd = (int)r;
	r = await_op(weft_io_statx(pool, fd, "", AT_EMPTY_PATH, STATX_SIZE,
				   &stx, deadline, &f),
		     &f);
	if (r < 0) {
		err = (int)r;
		goto out;
	}
	if (stx.stx_size >= SIZE_MAX / 2) {
		err = -EFBIG;
		goto out;
	}
	/* One byte more than the size says, so that a file that grew (or
	 * a procfs file, whose size reads 0) shows it by filling it. */
	cap = (size_t)stx.stx_size + 1;
	for (;;) {
		ssize_t n;

		if (have == cap) {
			char *b;

			if (cap >= SIZE_MAX / 4) {
				err = -EFBIG;
				goto out;
			}
			b = realloc(buf, 2 * cap);
			if (!b) {
				err = -ENOMEM;
				goto out;
			}
			buf = b;
			cap *= 2;
		}
		if (!buf && !(buf = malloc(cap))) {
			err = -ENOMEM;
			goto out;
		}
		n = weft_io_read_exact(pool, fd, buf + have, cap - have,
				       (int64_t)have, deadline);
		if (n < 0) {
			err = (int)n;
			goto out;
		}
		have += (size_t)n;
		if (have < cap)
			break; /* end of file */
	}
out:
	{
		/* Close even after an error, and even if the caller's task
		 * was cancelled: no descriptor leaks. */
		int cerr;

		weft_cancel_shield_push();
		cerr = (int)await_op(weft_io_close(pool, fd, WEFT_FOREVER, &f),
				     &f);
		weft_cancel_shield_pop();
		if (!err && cerr < 0)
			err = cerr;
	}
	if (err) {
		free(buf);
		return err;
	}
	/* Room for the terminating NUL: have < cap. */
	buf[have] = '\0';
	*data = buf;
	*len = have;
	return 0;
}

/* ---- blocking calls ------------------------------------------------------ */

/*
 * An IO_CALL op: the usual record, run by the call pool (io->calls) rather
 * than the io thread, so it is awaited, cancelled and freed like any I/O
 * future. Detached (@out NULL), the backend's reference is the only one,
 * as a detached task's queue entry is (core/pool.c).
 */
WEFT_API int weft_submit_blocking(struct weft_pool *pool, weft_task_fn fn,
				  void *arg, struct weft_future **out)
{
	struct weft__io_op *op;
	struct weft_future *f;
	int err;

	if (out)
		*out = NULL;
	if (!fn || !(pool = pool_or_current(pool)))
		return -EINVAL;
	op = op_new(IO_CALL, -1, WEFT_FOREVER);
	if (!op)
		return -ENOMEM;
	op->u.call.fn = fn;
	op->u.call.arg = arg;
	f = weft__io_future_of(op);
	err = weft__io_submit(pool, op);
	if (err || !out)
		weft_future_unref(f);
	else
		*out = f;
	return err;
}

WEFT_API int weft_run_blocking(struct weft_pool *pool, weft_task_fn fn,
			       void *arg, void **value)
{
	struct weft_future *f;
	int err;

	/* A cancelled task starts nothing (as the loops above). */
	if (weft_task_cancelled())
		return -ECANCELED;
	err = weft_submit_blocking(pool, fn, arg, &f);
	if (err)
		return err;
	/* Cancelled while it waits: a queued call is dropped (-ECANCELED),
	 * a running one is waited for, shielded, since fn may be using the
	 * caller's memory. */
	(void)weft__io_wait(f);
	err = weft_future_try_get(f, value); /* complete: never -EAGAIN */
	weft_future_unref(f);
	return err;
}
