/*
 * weft/io.h - I/O through the pool's io thread.
 *
 * Each pool has one io thread, started with its workers by
 * weft_pool_create() and stopped last by weft_pool_destroy(). It owns an
 * io_uring ring (created by the io thread itself, so that only it ever
 * submits): requests from tasks and from any
 * other thread reach it through a lock-free inbox, it submits them in
 * batches, and each completion completes the operation's future, which
 * makes the tasks waiting on it runnable again. The same thread runs the
 * pool's timers (sleeps and the deadline of every wait). See docs/io.md.
 *
 * Operations as futures. Every weft_io_*() call below starts one operation
 * and hands back a future (the caller owns one reference). The future
 * completes with the kernel's result: weft_io_result() gives the byte
 * count (or other non-negative result), or -errno. A non-negative result
 * is a DONE future whose weft_future_value() is (void *)(intptr_t)result;
 * a negative one is FAILED with that error (CANCELLED for -ECANCELED).
 * Wait for it as for any future: weft_future_wait() suspends a task and
 * blocks a thread. weft_io_await() waits, reads the result and drops the
 * reference in one call, and is the safe way to wait from a task that may
 * be cancelled (below).
 *
 * Ownership. Every buffer, iovec array, path, address and statx record an
 * operation is given must stay valid and untouched until its future has
 * completed: the kernel may read or write it until then. A cancelled
 * operation's future completes only with that operation's own completion,
 * never earlier, so "the future completed" is always the moment the memory
 * is free again.
 *
 * Deadlines. Each operation takes @deadline, an absolute weft_now() time or
 * WEFT_FOREVER. An operation still unfinished at its deadline is cancelled
 * (an io_uring linked timeout) and completes with -ECANCELED; one that had
 * already started to transfer data may complete with -EINTR or with its
 * partial count instead, as the kernel decides.
 *
 * Cancellation. weft_future_cancel() on an I/O future asks the io thread to
 * cancel the operation and returns -EBUSY (the future completes later, with
 * -ECANCELED or with the real result if the operation won the race) or
 * -EALREADY (it had completed). A cancelled read from a socket may still
 * have consumed data.
 *
 * Backends. WEFT_IO_URING runs operations in the ring; WEFT_IO_BLOCKING runs
 * each as a blocking system call on a small thread pool, with the same API
 * and results (a deadline or a cancel interrupts a call waiting for a
 * socket or pipe; a call in progress on a regular file finishes). The pool
 * picks io_uring unless the kernel refuses it (EPERM or ENOSYS under a
 * seccomp profile, kernel.io_uring_disabled, ENOMEM), or the environment
 * variable WEFT_IO_BACKEND is "blocking", or weft_pool_options.io_backend
 * says so. weft_io_backend() tells which one a pool uses.
 *
 * Arguments common to every call:
 *   @pool:     the pool whose io thread runs it; NULL means the pool of the
 *              calling task (-EINVAL outside a task).
 *   @deadline: as above.
 *   @out:      receives the future (caller owns one reference).
 * Every call returns 0 (the operation is started), -EINVAL (@out NULL, a
 * bad argument: see each call), -ENOMEM, or -ESHUTDOWN (the pool is shutting
 * down and the caller is not one of its tasks, or it is being destroyed).
 * On error *@out is untouched and nothing was started. Any thread; never
 * blocks.
 *
 * Blocking calls (the last section) run a function of yours on a thread
 * of the pool's blocking-call pool, for code that has only blocking APIs;
 * their futures complete like a task's, with the function's value.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h> /* socklen_t */
#include <sys/types.h>

#include "common.h"
#include "task.h" /* weft_task_fn */

WEFT_BEGIN_DECLS

struct weft_pool;
struct weft_future;
struct iovec;
struct sockaddr;
struct statx;

/** Values of weft_pool_options.io_backend and of weft_io_backend(). */
enum weft_io_backend {
	WEFT_IO_AUTO = 0,     /**< io_uring when the kernel allows it */
	WEFT_IO_URING = 1,    /**< io_uring; refused if it is unavailable */
	WEFT_IO_BLOCKING = 2, /**< blocking calls on a thread pool */
};

/**
 * weft_io_backend() - the backend @pool's io thread uses: WEFT_IO_URING or
 * WEFT_IO_BLOCKING. Returns -EINVAL for NULL, -ENOTSUP when the pool asked
 * for WEFT_IO_URING and the kernel refused it (every I/O call then fails
 * with -ENOTSUP; timers still work). Any thread; never blocks.
 */
WEFT_API int weft_io_backend(struct weft_pool *pool);

/**
 * weft_io_result() - the kernel's result of the completed I/O future @f:
 * non-negative (bytes, a file descriptor, poll's revents, ...) or -errno.
 * -EINPROGRESS while it has not completed; -EINVAL if @f is NULL or not an
 * I/O future. For a weft_submit_blocking() future: its error only (0,
 * the function's -errno, or -ECANCELED), never the value (read that with
 * weft_future_value()). Never waits. Any thread.
 */
WEFT_API int64_t weft_io_result(const struct weft_future *f);

/**
 * weft_io_await() - wait for the I/O future @f, then drop the caller's
 * reference to it, and return its result (as weft_io_result()).
 * In a task the task suspends; elsewhere the thread blocks. If the calling
 * task is cancelled while it waits, the operation is cancelled and the
 * wait goes on until the operation's own completion (the buffer is free
 * when this returns); the result is then usually -ECANCELED. Returns
 * -EINVAL for NULL or a future that is not an I/O future (the reference is
 * not dropped then).
 */
WEFT_API int64_t weft_io_await(struct weft_future *f);

/** weft_io_nop() - a no-op through the ring; completes with 0. */
WEFT_API int weft_io_nop(struct weft_pool *pool, int64_t deadline,
			 struct weft_future **out);

/**
 * weft_io_timeout() - completes with 0 at @deadline (an absolute weft_now()
 * time; the past completes at once), or -ECANCELED if cancelled first. The
 * io thread's form of weft_sleep_until() for code that wants a future.
 * -EINVAL for WEFT_FOREVER (it would never complete).
 */
WEFT_API int weft_io_timeout(struct weft_pool *pool, int64_t deadline,
			     struct weft_future **out);

/**
 * weft_io_read() - read up to @len bytes from @fd into @buf, at @offset,
 * or at the file position (advancing it) when @offset is -1. Result: bytes
 * read, 0 at end of file, or -errno. -EINVAL for @buf NULL with @len > 0,
 * @len over INT32_MAX, or @offset < -1.
 */
WEFT_API int weft_io_read(struct weft_pool *pool, int fd, void *buf,
			  size_t len, int64_t offset, int64_t deadline,
			  struct weft_future **out);

/**
 * weft_io_write() - write @len bytes of @buf to @fd; as weft_io_read(). A
 * pipe or socket whose reader has gone gives -EPIPE; SIGPIPE is never
 * raised (the threads that issue the calls block it).
 */
WEFT_API int weft_io_write(struct weft_pool *pool, int fd, const void *buf,
			   size_t len, int64_t offset, int64_t deadline,
			   struct weft_future **out);

/**
 * weft_io_readv() - scatter read into @iovcnt buffers (1..1024) at @offset
 * (-1: the file position). The iovec array must live until completion.
 */
WEFT_API int weft_io_readv(struct weft_pool *pool, int fd,
			   const struct iovec *iov, int iovcnt, int64_t offset,
			   int64_t deadline, struct weft_future **out);

/** weft_io_writev() - gather write; as weft_io_readv(). */
WEFT_API int weft_io_writev(struct weft_pool *pool, int fd,
			    const struct iovec *iov, int iovcnt,
			    int64_t offset, int64_t deadline,
			    struct weft_future **out);

/** weft_io_fsync() - fsync(@fd). */
WEFT_API int weft_io_fsync(struct weft_pool *pool, int fd, int64_t deadline,
			   struct weft_future **out);

/** weft_io_fdatasync() - fdatasync(@fd). */
WEFT_API int weft_io_fdatasync(struct weft_pool *pool, int fd,
			       int64_t deadline, struct weft_future **out);

/**
 * weft_io_openat() - openat(@dirfd, @path, @flags, @mode); O_CLOEXEC is
 * added. Result: the new descriptor or -errno. @path must live until
 * completion; -EINVAL for NULL.
 */
WEFT_API int weft_io_openat(struct weft_pool *pool, int dirfd,
			    const char *path, int flags, mode_t mode,
			    int64_t deadline, struct weft_future **out);

/**
 * weft_io_close() - close(@fd). Close a descriptor only once no other
 * operation on it is in flight: the kernel holds its own reference to the
 * file while one is, and a descriptor number reused by a later open would
 * otherwise mix the two up.
 */
WEFT_API int weft_io_close(struct weft_pool *pool, int fd, int64_t deadline,
			   struct weft_future **out);

/**
 * weft_io_statx() - statx(@dirfd, @path, @flags, @mask, @stx). @path and
 * @stx must live until completion; -EINVAL for NULL.
 */
WEFT_API int weft_io_statx(struct weft_pool *pool, int dirfd,
			   const char *path, int flags, unsigned mask,
			   struct statx *stx, int64_t deadline,
			   struct weft_future **out);

/**
 * weft_io_accept() - accept4(@fd, @addr, @addrlen, @flags | SOCK_CLOEXEC).
 * @addr and @addrlen may both be NULL; otherwise they must live until
 * completion. Result: the new socket or -errno.
 */
WEFT_API int weft_io_accept(struct weft_pool *pool, int fd,
			    struct sockaddr *addr, socklen_t *addrlen,
			    int flags, int64_t deadline,
			    struct weft_future **out);

/**
 * weft_io_connect() - connect(@fd, @addr, @addrlen). @addr must live until
 * completion. Result 0 or -errno (-ECONNREFUSED, ...).
 */
WEFT_API int weft_io_connect(struct weft_pool *pool, int fd,
			     const struct sockaddr *addr, socklen_t addrlen,
			     int64_t deadline, struct weft_future **out);

/** weft_io_recv() - recv(@fd, @buf, @len, @flags). Result: bytes, 0 when
 *  the peer has shut down its side, or -errno. */
WEFT_API int weft_io_recv(struct weft_pool *pool, int fd, void *buf,
			  size_t len, int flags, int64_t deadline,
			  struct weft_future **out);

/** weft_io_send() - send(@fd, @buf, @len, @flags | MSG_NOSIGNAL): a closed
 *  peer gives -EPIPE, never SIGPIPE. */
WEFT_API int weft_io_send(struct weft_pool *pool, int fd, const void *buf,
			  size_t len, int flags, int64_t deadline,
			  struct weft_future **out);

/** weft_io_shutdown() - shutdown(@fd, @how). */
WEFT_API int weft_io_shutdown(struct weft_pool *pool, int fd, int how,
			      int64_t deadline, struct weft_future **out);

/**
 * weft_io_poll() - wait until @fd is ready for @events (POLLIN, POLLOUT,
 * ...). Result: the ready events (revents; POLLERR, POLLHUP and POLLNVAL
 * may be among them) or -errno. -EINVAL for @events 0.
 */
WEFT_API int weft_io_poll(struct weft_pool *pool, int fd, short events,
			  int64_t deadline, struct weft_future **out);

/* ---- multishot accept ------------------------------------------------ */

struct weft_acceptor;

/**
 * weft_io_accept_multishot() - keep accepting connections on the listening
 * socket @fd with one request (io_uring multishot accept; the blocking
 * backend keeps one accept outstanding instead). Accepted sockets (with
 * @flags | SOCK_CLOEXEC) queue in the acceptor until weft_acceptor_next()
 * takes them. *@out receives the acceptor, owned by the caller, freed by
 * weft_acceptor_close(). Returns 0, -EINVAL, -ENOMEM, -ESHUTDOWN.
 */
WEFT_API int weft_io_accept_multishot(struct weft_pool *pool, int fd,
				      int flags, struct weft_acceptor **out);

/**
 * weft_acceptor_next() - the next accepted socket (the caller owns it), or
 * -ETIMEDOUT at @deadline, -ECANCELED if the calling task is cancelled, or
 * the error that ended the accepting (for example -EBADF, -EINVAL; once
 * the queue is drained it is returned on every later call). Suspends a
 * task, blocks a thread. Any number of tasks and threads may call it at
 * once; each socket goes to one of them.
 */
WEFT_API int weft_acceptor_next(struct weft_acceptor *a, int64_t deadline);

/**
 * weft_acceptor_close() - stop accepting, wait until the request has ended,
 * close the sockets nobody took, and free @a. NULL is ignored. No call on
 * @a may be running or follow. Suspends a task, blocks a thread.
 */
WEFT_API void weft_acceptor_close(struct weft_acceptor *a);

/* ---- loops over short transfers -------------------------------------- */

/**
 * weft_io_read_exact() - read until @len bytes are in @buf, end of file, an
 * error, or @deadline (which bounds the whole loop). @offset is where to
 * start, or -1 for the file position. Returns @len, a smaller count when
 * end of file came first, or -errno (with nothing to say how much was read:
 * use it where a partial read is an error). Waits (suspends a task, blocks
 * a thread); a cancelled task gets -ECANCELED after the read in flight has
 * completed.
 */
WEFT_API ssize_t weft_io_read_exact(struct weft_pool *pool, int fd,
				    void *buf, size_t len, int64_t offset,
				    int64_t deadline);

/**
 * weft_io_write_all() - write all @len bytes of @buf, looping over short
 * writes. Returns @len or -errno; waits as weft_io_read_exact().
 */
WEFT_API ssize_t weft_io_write_all(struct weft_pool *pool, int fd,
				   const void *buf, size_t len, int64_t offset,
				   int64_t deadline);

/**
 * weft_io_read_file() - read the whole file @path (relative to @dirfd, as
 * openat()) into a new buffer. *@data receives it (malloc'd, caller frees;
 * a NUL byte follows the contents, not counted) and *@len its length.
 * Returns 0 or -errno (of open, statx, read or close; -ENOMEM; -EFBIG past
 * SIZE_MAX / 2); on error nothing is left allocated or open. Files whose
 * size statx cannot tell (procfs) are read to their end. Waits as
 * weft_io_read_exact(); @deadline bounds the whole call.
 */
WEFT_API int weft_io_read_file(struct weft_pool *pool, int dirfd,
			       const char *path, int64_t deadline,
			       void **data, size_t *len);

/* ---- blocking calls -------------------------------------------------- */

/*
 * For code that must call a blocking API (getaddrinfo(), a database
 * client, compressing a big buffer, a library with no asynchronous
 * interface): run it on a thread of the pool's blocking-call pool, not on
 * a worker, and await the result from a task without holding the worker
 * (Tokio's spawn_blocking, asyncio's to_thread). The weft_io_*() calls
 * above are different: those are operations the io thread starts without
 * blocking anyone; a blocking call holds one of the call pool's threads
 * for as long as it runs.
 *
 * The call pool is the pool's own: at most weft_pool_options.
 * blocking_threads threads (default 64, at most 1024), started as calls
 * arrive and ended after a second idle; calls beyond that wait in FIFO
 * order. It is separate from the threads of the blocking I/O backend
 * (io_threads), so long calls never hold up I/O. The function runs on one
 * of those threads, never on a worker nor on the caller's thread
 * (weft_worker_index() is -1 there, weft calls from it act as from any
 * outside thread), with asynchronous signals blocked.
 *
 * Cancellation, as for a task: a call still queued never runs, and its
 * future completes with -ECANCELED; a call that a thread has taken runs to
 * its end (nothing can interrupt it, and weft_task_cancelled() is false in
 * it), and its future completes with the function's own result.
 *
 * Lifetime: weft_pool_destroy() (after the workers have stopped) completes
 * the calls still queued with -ECANCELED and waits for the running ones to
 * return, so a function that never returns keeps it waiting. A function
 * that waits for another call of the same pool can deadlock once every
 * thread of the call pool is taken.
 */

/**
 * weft_submit_blocking() - run @fn(@arg, &value) on a thread of @pool's
 * blocking-call pool.
 * @pool: the pool; NULL means the pool of the calling task (-EINVAL
 *        outside a task).
 * @fn:   a task body (weft/task.h): store the value in *result (it starts
 *        NULL) and return 0, or a negative errno-style code (a positive
 *        return counts as 0).
 * @arg:  passed to @fn; the caller keeps it valid until the call has run
 *        (until the future completes).
 * @out:  receives the call's future (caller owns one reference), or NULL
 *        to not keep one: the call still runs.
 *
 * The future completes as a weft_submit() task's does: DONE with the value
 * when @fn returns 0, FAILED with its error, CANCELLED with -ECANCELED
 * (cancelled while queued, or @fn returned -ECANCELED). Wait for it as for
 * any future: weft_future_get() and weft_future_wait() suspend a task,
 * block a thread. weft_future_cancel() on it returns 0 when the call was
 * still queued (it never runs; the future completes now), -EBUSY when a
 * thread has taken it (it runs; the future completes with @fn's result),
 * -EALREADY when it had completed. weft_io_result() and weft_io_await()
 * accept it and give its error.
 *
 * Returns 0; -EINVAL (@fn NULL, or @pool NULL outside a task); -ENOMEM;
 * -ESHUTDOWN once weft_pool_shutdown() has been called, unless the caller
 * is one of the pool's own tasks while the pool drains (and always once
 * it is being destroyed); -EAGAIN when no thread could be started and
 * none runs. On failure *@out is set to NULL and nothing runs. Any thread;
 * never blocks.
 */
WEFT_API int weft_submit_blocking(struct weft_pool *pool, weft_task_fn fn,
				  void *arg, struct weft_future **out);

/**
 * weft_run_blocking() - weft_submit_blocking(), wait, and drop the future,
 * in one call (asyncio.to_thread): returns @fn's result, 0 or its -errno,
 * with *@value set to its value on 0 (@value may be NULL).
 *
 * In a task the task suspends (its worker runs other tasks); on any other
 * thread the thread blocks. If the calling task is cancelled while it
 * waits: a call still queued is dropped and this returns -ECANCELED; a
 * call already running is waited for (shielded: @fn may be using the
 * caller's memory, which is free again when this returns) and its result
 * is returned, so check weft_task_cancelled() after a success. A task
 * already cancelled when it calls this gets -ECANCELED and nothing runs.
 *
 * Returns @fn's result, or the errors of weft_submit_blocking() (-EINVAL,
 * -ENOMEM, -ESHUTDOWN, -EAGAIN: @fn did not run), or -ECANCELED.
 */
WEFT_API int weft_run_blocking(struct weft_pool *pool, weft_task_fn fn,
			       void *arg, void **value);

WEFT_END_DECLS

#endif /* WEFT_IO_H */
