/*
 * test_io.c - weft/io.h: every operation through the pool's io thread, its
 * results and its errors, cancellation, deadlines, the multishot acceptor,
 * the loop helpers, bad arguments, shutdown, and the backend choice.
 *
 * The file runs twice (tests/meson.build): as "io" with the backend the
 * pool picks, and as "io_blocking" with WEFT_IO_BACKEND=blocking. Every
 * test must pass under both: the two backends promise the same results.
 *
 * Most operation tests are a body run four ways (run_all_modes()): in a
 * task that waits with weft_io_await() and passes pool NULL (the calling
 * task's pool), in a task that waits with weft_future_wait(), and on the
 * test's own thread with each of the two. Every wait also checks that the
 * future agrees with the result: DONE with value (void *)result for a
 * result >= 0, CANCELLED for -ECANCELED, FAILED with the error otherwise.
 *
 * Tasks never call Criterion's assertions: bodies record failed checks in
 * their struct ctx and the test thread asserts on them afterwards. Nothing
 * is timed from above except through .timeout (one value for the whole
 * file: Criterion 2.4.1 misbehaves with several); deadlines are checked
 * from below ("not before the deadline"). Where a test needs another
 * thread or task to have reached a point, it polls with a bounded
 * deadline (helpers.h) instead of sleeping a fixed time.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft.h>
#include <weft/io.h>

#include "helpers.h"

#define MS (1000LL * 1000)
/* Criterion 2.4.1 needs the same .timeout on every test of a binary. */
#define TMO 60
/* A descriptor number no test opens (far above any RLIMIT_NOFILE here). */
#define BAD_FD (1 << 29)
/* What *out holds before a call that must leave it untouched. */
#define UNTOUCHED ((struct weft_future *)(uintptr_t)0x5a5a5a50)
/* The result a failed start reports (so that checks on it fail too). */
#define NOT_RUN INT64_MIN
/* Bounds for waits that must not hang a broken implementation. */
#define SOON (10LL * 1000 * MS)
#define CANARY 0x5a

/* ---- running a body four ways ----------------------------------------- */

enum mode { TASK_AWAIT, TASK_WAIT, THREAD_AWAIT, THREAD_WAIT, NMODES };

static const char *const mode_names[NMODES] = {
	"in a task, pool NULL, weft_io_await",
	"in a task, weft_future_wait",
	"on the test thread, weft_io_await",
	"on the test thread, weft_future_wait",
};

struct ctx;
typedef void (*body_fn)(struct ctx *c);

/* One run of a body. Only the body's own task or thread touches it. */
struct ctx {
	struct weft_pool *pool;
	enum mode mode;
	body_fn body;
	void *arg;
	/* The out-parameter of the operation being started (OUT). */
	struct weft_future *f;
	int nfail;
	char msg[1024];
};

static void ctx_fail(struct ctx *c, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void ctx_fail(struct ctx *c, int line, const char *fmt, ...)
{
	size_t n = strlen(c->msg);
	va_list ap;

	c->nfail++;
	if (n + 2 >= sizeof(c->msg))
		return;
	n += (size_t)snprintf(c->msg + n, sizeof(c->msg) - n, "%sline %d: ",
			      n ? "; " : "", line);
	if (n >= sizeof(c->msg))
		return;
	va_start(ap, fmt);
	vsnprintf(c->msg + n, sizeof(c->msg) - n, fmt, ap);
	va_end(ap);
}

static bool in_task(const struct ctx *c)
{
	return c->mode == TASK_AWAIT || c->mode == TASK_WAIT;
}

/* The pool argument: NULL (the calling task's pool) in the first mode. */
static struct weft_pool *pool_arg(const struct ctx *c)
{
	return c->mode == TASK_AWAIT ? NULL : c->pool;
}

/* These macros expect a struct ctx *c in scope. */
#define POOL (pool_arg(c))
#define OUT (&c->f)
#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond))                                                 \
			ctx_fail(c, __LINE__, "%s", #cond);                  \
	} while (0)
#define CHECK_EQ(got, want)                                                  \
	do {                                                                 \
		long long g_ = (long long)(got);                             \
		long long w_ = (long long)(want);                            \
		if (g_ != w_)                                                \
			ctx_fail(c, __LINE__, "%s = %lld, want %lld", #got,  \
				 g_, w_);                                    \
	} while (0)
/* Start an operation (its call passes OUT) and wait for its result. */
#define RUN(call) run_op(c, __LINE__, #call, (call))
/* Start an operation and hand back its future (NULL if it failed). */
#define START(call) start_op(c, __LINE__, #call, (call))
/* Wait for a future from START and drop it; its result. */
#define AWAIT(fut) finish_op(c, __LINE__, (fut))

/* A completed I/O future agrees with its result @r (weft/io.h). */
static void check_outcome(struct ctx *c, int line, struct weft_future *f,
			  int64_t r)
{
	int st = weft_future_state(f);

	if (weft_future_try_wait(f) != 0)
		ctx_fail(c, line, "the wait returned but the future is pending");
	if (weft_io_result(f) != r)
		ctx_fail(c, line, "weft_io_result() = %lld, the wait gave %lld",
			 (long long)weft_io_result(f), (long long)r);
	if (r == -EINPROGRESS) {
		ctx_fail(c, line, "a completed future gives %lld",
			 (long long)r);
	} else if (r >= 0) {
		if (st != WEFT_FUTURE_DONE || weft_future_error(f) != 0 ||
		    weft_future_value(f) != (void *)(intptr_t)r)
			ctx_fail(c, line,
				 "result %lld: state %d error %d value %p",
				 (long long)r, st, weft_future_error(f),
				 weft_future_value(f));
	} else if (r == -ECANCELED) {
		if (st != WEFT_FUTURE_CANCELLED ||
		    weft_future_error(f) != -ECANCELED)
			ctx_fail(c, line, "-ECANCELED: state %d error %d", st,
				 weft_future_error(f));
	} else if (st != WEFT_FUTURE_FAILED || weft_future_error(f) != r) {
		ctx_fail(c, line, "result %lld: state %d error %d",
			 (long long)r, st, weft_future_error(f));
	}
}

static struct weft_future *start_op(struct ctx *c, int line,
				    const char *what, int rc)
{
	struct weft_future *f = c->f;

	c->f = UNTOUCHED;
	if (rc != 0) {
		ctx_fail(c, line, "%s = %d", what, rc);
		if (f != UNTOUCHED)
			ctx_fail(c, line, "*out changed by a failed call");
		return NULL;
	}
	if (f == UNTOUCHED || f == NULL) {
		ctx_fail(c, line, "%s = 0 without a future", what);
		return NULL;
	}
	return f;
}

/*
 * Wait the way the mode says, check the outcome, drop the caller's
 * reference. An extra reference keeps the future alive to check it after
 * weft_io_await(), which drops one (if it dropped none, ASan's leak check
 * fails the test; if it dropped two, the unref below is a use after free).
 */
static int64_t finish_op(struct ctx *c, int line, struct weft_future *f)
{
	int64_t r;
	int w;

	if (!f)
		return NOT_RUN;
	weft_future_ref(f);
	if (c->mode == TASK_AWAIT || c->mode == THREAD_AWAIT) {
		r = weft_io_await(f);
	} else {
		w = weft_future_wait(f);
		if (w != 0)
			ctx_fail(c, line, "weft_future_wait() = %d", w);
		r = weft_io_result(f);
		weft_future_unref(f);
	}
	check_outcome(c, line, f, r);
	weft_future_unref(f);
	return r;
}

static int64_t run_op(struct ctx *c, int line, const char *what, int rc)
{
	return finish_op(c, line, start_op(c, line, what, rc));
}

static int body_task(void *arg, void **result)
{
	struct ctx *c = arg;

	(void)result;
	c->body(c);
	return 0;
}

static struct weft_pool *io_pool_opts(unsigned workers, unsigned entries,
				      unsigned backend)
{
	struct weft_pool_options o;
	struct weft_pool *p = NULL;

	weft_pool_options_init(&o);
	o.workers = workers;
	o.io_entries = entries;
	o.io_backend = backend;
	cr_assert_eq(weft_pool_create(&o, &p), 0);
	cr_assert_not_null(p);
	return p;
}

static struct weft_pool *io_pool(unsigned workers)
{
	return io_pool_opts(workers, 0, WEFT_IO_AUTO);
}

static void run_in(struct weft_pool *pool, enum mode m, body_fn body,
		   void *arg)
{
	struct ctx c = {
		.pool = pool, .mode = m, .body = body, .arg = arg,
		.f = UNTOUCHED,
	};
	struct weft_future *f = NULL;

	if (in_task(&c)) {
		cr_assert_eq(weft_submit(pool, body_task, &c, &f), 0);
		cr_assert_eq(weft_future_wait(f), 0);
		cr_assert_eq(weft_future_error(f), 0);
		weft_future_unref(f);
	} else {
		body(&c);
	}
	cr_assert_eq(c.nfail, 0, "%s: %d failed check(s): %s", mode_names[m],
		     c.nfail, c.msg);
}

static void run_all_modes(body_fn body, void *arg)
{
	struct weft_pool *pool = io_pool(2);

	for (int m = 0; m < NMODES; m++)
		run_in(pool, (enum mode)m, body, arg);
	weft_pool_destroy(pool);
}

/* ---- fixtures ---------------------------------------------------------- */

/* Byte @i of the test pattern that starts at @seed. */
static unsigned char pat(size_t i)
{
	return (unsigned char)((i * 7u) ^ (i >> 8) ^ (i >> 17) ^ 0x3c);
}

static void fill(void *p, size_t n, size_t seed)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = pat(seed + i);
}

static bool is_pat(const void *p, size_t n, size_t seed)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != pat(seed + i))
			return false;
	return true;
}

static bool all_bytes(const void *p, size_t n, unsigned char v)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
}

#define PATH_LEN 64

/* A new file in /tmp holding @len bytes of @data; its descriptor (O_RDWR)
 * or -errno. */
static int make_tmp(char path[PATH_LEN], const void *data, size_t len)
{
	const char *p = data;
	int fd;

	snprintf(path, PATH_LEN, "/tmp/weft-io-XXXXXX");
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? -errno : -EIO;

			close(fd);
			unlink(path);
			return e;
		}
		p += n;
		len -= (size_t)n;
	}
	return fd;
}

static int spair(int sv[2], int extra)
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | extra, 0, sv)
		       ? -errno
		       : 0;
}

static void close2(int fds[2])
{
	close(fds[0]);
	close(fds[1]);
}

static int tcp_socket(int extra)
{
	return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | extra, 0);
}

/* A TCP socket bound to 127.0.0.1 on a free port (in *@a), listening when
 * @backlog >= 0; its descriptor or -1. */
static int tcp_bound(struct sockaddr_in *a, int backlog, int extra)
{
	socklen_t len = sizeof(*a);
	int fd = tcp_socket(extra);

	if (fd < 0)
		return -1;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->sin_port = 0;
	if (bind(fd, (struct sockaddr *)a, sizeof(*a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)a, &len) != 0 ||
	    (backlog >= 0 && listen(fd, backlog) != 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tcp_connected(const struct sockaddr_in *a)
{
	int fd = tcp_socket(0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)a, sizeof(*a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool cloexec(int64_t fd)
{
	int fl = fcntl((int)fd, F_GETFD);

	return fl >= 0 && (fl & FD_CLOEXEC);
}

static bool nonblocking(int64_t fd)
{
	int fl = fcntl((int)fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}

/* @fd is closed: the number is free, or names another file by now (the
 * io thread or the blocking backend may have reused it). */
static bool fd_gone(int fd, const struct stat *was)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return errno == EBADF;
	return st.st_ino != was->st_ino || st.st_dev != was->st_dev;
}

/* Plain blocking read of exactly @n bytes (poll bounded by SOON). */
static bool read_all_plain(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&pfd, 1, (int)(SOON / MS)) != 1)
			return false;
		r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

static atomic_int sigpipes;

static void on_sigpipe(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigpipes, 1);
}

/* Count SIGPIPE instead of dying of it, so that a test can say which
 * call raised it. */
static void count_sigpipes(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigpipe;
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGPIPE, &sa, NULL), 0);
	atomic_store(&sigpipes, 0);
}

/* A short sleep that makes "the other side is waiting by now" likely.
 * No test's outcome depends on it; it only steers which path runs. */
static void settle(void)
{
	sleep_ms(20);
}

/* ---- the backend ------------------------------------------------------- */

/* The pool names one of the two real backends, never AUTO. */
Test(io, backend_is_uring_or_blocking, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	int b = weft_io_backend(pool);

	cr_assert(b == WEFT_IO_URING || b == WEFT_IO_BLOCKING, "backend %d",
		  b);
	cr_assert_eq(weft_io_backend(pool), b, "the backend changed");
	weft_pool_destroy(pool);
	cr_assert_eq(weft_io_backend(NULL), -EINVAL);
}

/* Under WEFT_IO_BACKEND=blocking (the io_blocking registration) a pool
 * left at WEFT_IO_AUTO uses the blocking backend. */
Test(io, backend_follows_the_environment, .timeout = TMO)
{
	const char *env = getenv("WEFT_IO_BACKEND");
	struct weft_pool *pool = io_pool(2);
	int b = weft_io_backend(pool);

	if (env && strcmp(env, "blocking") == 0)
		cr_assert_eq(b, WEFT_IO_BLOCKING);
	else if (env && strcmp(env, "uring") == 0)
		cr_assert_eq(b, WEFT_IO_URING);
	else
		cr_assert(b == WEFT_IO_URING || b == WEFT_IO_BLOCKING);
	weft_pool_destroy(pool);
}

/* Forcing the blocking backend in the options works whatever the
 * environment says, and its operations work. */
Test(io, forced_blocking_backend_is_used, .timeout = TMO)
{
	struct weft_pool *pool = io_pool_opts(2, 0, WEFT_IO_BLOCKING);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_io_backend(pool), WEFT_IO_BLOCKING);
	cr_assert_eq(weft_io_nop(pool, WEFT_FOREVER, &f), 0);
	cr_assert_eq(weft_io_await(f), 0);
	weft_pool_destroy(pool);
}

/* Forcing io_uring gives io_uring, or -ENOTSUP from every call where the
 * kernel refuses it; never the blocking backend. The environment only
 * overrides WEFT_IO_AUTO. */
Test(io, forced_uring_backend_is_uring_or_enotsup, .timeout = TMO)
{
	struct weft_pool *pool = io_pool_opts(2, 0, WEFT_IO_URING);
	struct weft_future *f = UNTOUCHED;
	int b = weft_io_backend(pool);

	cr_assert(b == WEFT_IO_URING || b == -ENOTSUP, "backend %d", b);
	if (b == WEFT_IO_URING) {
		cr_assert_eq(weft_io_nop(pool, WEFT_FOREVER, &f), 0);
		cr_assert_eq(weft_io_await(f), 0);
	} else {
		cr_assert_eq(weft_io_nop(pool, WEFT_FOREVER, &f), -ENOTSUP);
		cr_assert_eq(f, UNTOUCHED);
	}
	weft_pool_destroy(pool);
}

/* The blocking backend with a single thread still runs everything. */
Test(io, blocking_backend_with_one_thread_works, .timeout = TMO)
{
	struct weft_pool_options o;
	struct weft_pool *pool = NULL;
	struct weft_future *f = NULL;
	char buf[16];
	int sv[2];

	weft_pool_options_init(&o);
	o.workers = 2;
	o.io_backend = WEFT_IO_BLOCKING;
	o.io_threads = 1;
	cr_assert_eq(weft_pool_create(&o, &pool), 0);
	cr_assert_eq(weft_io_backend(pool), WEFT_IO_BLOCKING);
	cr_assert_eq(spair(sv, 0), 0);
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(weft_io_send(pool, sv[0], "abc", 3, 0,
					  WEFT_FOREVER, &f), 0);
		cr_assert_eq(weft_io_await(f), 3);
		cr_assert_eq(weft_io_recv(pool, sv[1], buf, sizeof(buf), 0,
					  WEFT_FOREVER, &f), 0);
		cr_assert_eq(weft_io_await(f), 3);
	}
	close2(sv);
	weft_pool_destroy(pool);
}

static void env_blocking_child(void)
{
	struct weft_pool *pool = NULL;
	struct weft_future *f = NULL;
	int b;
	int64_t r = NOT_RUN;

	setenv("WEFT_IO_BACKEND", "blocking", 1);
	if (weft_pool_create(NULL, &pool) != 0)
		_exit(2);
	b = weft_io_backend(pool);
	if (weft_io_nop(pool, WEFT_FOREVER, &f) == 0)
		r = weft_io_await(f);
	fprintf(stderr, "backend=%d nop=%lld\n", b, (long long)r);
	weft_pool_destroy(pool);
	_exit(b == WEFT_IO_BLOCKING && r == 0 ? 0 : 1);
}

static void env_uring_option_blocking_child(void)
{
	struct weft_pool_options o;
	struct weft_pool *pool = NULL;
	int b;

	setenv("WEFT_IO_BACKEND", "uring", 1);
	weft_pool_options_init(&o);
	o.io_backend = WEFT_IO_BLOCKING;
	if (weft_pool_create(&o, &pool) != 0)
		_exit(2);
	b = weft_io_backend(pool);
	fprintf(stderr, "backend=%d\n", b);
	weft_pool_destroy(pool);
	_exit(b == WEFT_IO_BLOCKING ? 0 : 1);
}

/* WEFT_IO_BACKEND=blocking, set in a fresh process before the pool is
 * created, picks the blocking backend for a WEFT_IO_AUTO pool; the
 * variable does not override a backend the options name. */
Test(io, environment_variable_is_honoured, .timeout = TMO)
{
	char out[256];
	int status;

	run_child(env_blocking_child, out, sizeof(out), &status);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "status %#x: %s", status, out);
	run_child(env_uring_option_blocking_child, out, sizeof(out), &status);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "status %#x: %s", status, out);
}

/* ---- bad arguments ----------------------------------------------------- */

#define EXPECT_ERR(err, call)                                                \
	do {                                                                 \
		f = UNTOUCHED;                                               \
		long long r_ = (long long)(call);                            \
		cr_assert_eq(r_, (err), "%s = %lld, want %d", #call, r_,     \
			     (err));                                         \
		cr_assert_eq(f, UNTOUCHED, "%s changed *out", #call);        \
	} while (0)
#define EXPECT_EINVAL(call) EXPECT_ERR(-EINVAL, call)

/* A NULL @out is -EINVAL for every call, and nothing starts. */
Test(io, null_out_is_einval, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct iovec iov = {.iov_base = &a, .iov_len = 1};
	struct statx stx;
	char buf[8];
	const int64_t T = WEFT_FOREVER;

	cr_assert_eq(weft_io_nop(pool, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_timeout(pool, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_read(pool, 0, buf, 1, 0, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_write(pool, 1, buf, 1, 0, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_readv(pool, 0, &iov, 1, 0, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_writev(pool, 1, &iov, 1, 0, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_fsync(pool, 1, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_fdatasync(pool, 1, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_openat(pool, AT_FDCWD, "/", O_RDONLY, 0, T, NULL),
		     -EINVAL);
	cr_assert_eq(weft_io_close(pool, BAD_FD, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_statx(pool, AT_FDCWD, "/", 0, STATX_SIZE, &stx,
				   T, NULL), -EINVAL);
	cr_assert_eq(weft_io_accept(pool, 0, NULL, NULL, 0, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_connect(pool, 0, (struct sockaddr *)&a,
				     sizeof(a), T, NULL), -EINVAL);
	cr_assert_eq(weft_io_recv(pool, 0, buf, 1, 0, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_send(pool, 1, buf, 1, 0, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_shutdown(pool, 0, SHUT_RD, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_poll(pool, 0, POLLIN, T, NULL), -EINVAL);
	cr_assert_eq(weft_io_accept_multishot(pool, 0, 0, NULL), -EINVAL);
	weft_pool_destroy(pool);
}

/* Buffers, offsets, lengths, iovec counts, poll events, paths: each bad
 * one is -EINVAL, *out untouched, and the pool still works afterwards. */
Test(io, bad_arguments_are_einval_and_start_nothing, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct weft_future *f;
	struct iovec iov[2] = {{NULL, 0}, {NULL, 0}};
	struct statx stx;
	char buf[8];
	int fds[2];
	const int64_t T = WEFT_FOREVER;
	const size_t big = (size_t)INT32_MAX + 1;

	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	iov[0].iov_base = buf;
	iov[0].iov_len = sizeof(buf);

	/* NULL buffer with a length */
	EXPECT_EINVAL(weft_io_read(pool, fds[0], NULL, 1, -1, T, &f));
	EXPECT_EINVAL(weft_io_write(pool, fds[1], NULL, 1, -1, T, &f));
	EXPECT_EINVAL(weft_io_recv(pool, fds[0], NULL, 1, 0, T, &f));
	EXPECT_EINVAL(weft_io_send(pool, fds[1], NULL, 1, 0, T, &f));
	/* length over INT32_MAX */
	EXPECT_EINVAL(weft_io_read(pool, fds[0], buf, big, -1, T, &f));
	EXPECT_EINVAL(weft_io_write(pool, fds[1], buf, big, -1, T, &f));
	/* offsets below -1 */
	EXPECT_EINVAL(weft_io_read(pool, fds[0], buf, 1, -2, T, &f));
	EXPECT_EINVAL(weft_io_read(pool, fds[0], buf, 1, INT64_MIN, T, &f));
	EXPECT_EINVAL(weft_io_write(pool, fds[1], buf, 1, -2, T, &f));
	EXPECT_EINVAL(weft_io_readv(pool, fds[0], iov, 1, -2, T, &f));
	EXPECT_EINVAL(weft_io_writev(pool, fds[1], iov, 1, -7, T, &f));
	/* iovec counts outside 1..1024 */
	EXPECT_EINVAL(weft_io_readv(pool, fds[0], iov, 0, -1, T, &f));
	EXPECT_EINVAL(weft_io_readv(pool, fds[0], iov, -1, -1, T, &f));
	EXPECT_EINVAL(weft_io_readv(pool, fds[0], iov, 1025, -1, T, &f));
	EXPECT_EINVAL(weft_io_writev(pool, fds[1], iov, 0, -1, T, &f));
	EXPECT_EINVAL(weft_io_writev(pool, fds[1], iov, 1025, -1, T, &f));
	/* poll for nothing */
	EXPECT_EINVAL(weft_io_poll(pool, fds[0], 0, T, &f));
	/* NULL path or record */
	EXPECT_EINVAL(weft_io_openat(pool, AT_FDCWD, NULL, O_RDONLY, 0, T,
				     &f));
	EXPECT_EINVAL(weft_io_statx(pool, AT_FDCWD, NULL, 0, STATX_SIZE, &stx,
				    T, &f));
	EXPECT_EINVAL(weft_io_statx(pool, AT_FDCWD, "/", 0, STATX_SIZE, NULL,
				    T, &f));
	/* the loop helpers check the same */
	EXPECT_EINVAL(weft_io_read_exact(pool, fds[0], NULL, 1, -1, T));
	EXPECT_EINVAL(weft_io_read_exact(pool, fds[0], buf, 1, -2, T));
	EXPECT_EINVAL(weft_io_write_all(pool, fds[1], NULL, 1, -1, T));
	EXPECT_EINVAL(weft_io_write_all(pool, fds[1], buf, 1, -2, T));
	/* results of nothing */
	cr_assert_eq(weft_io_result(NULL), -EINVAL);
	cr_assert_eq(weft_io_await(NULL), -EINVAL);
	weft_acceptor_close(NULL); /* ignored */

	/* Nothing was started: the pipe is empty, the pool still works. */
	f = NULL;
	cr_assert_eq(weft_io_nop(pool, T, &f), 0);
	cr_assert_eq(weft_io_await(f), 0);
	cr_assert_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	cr_assert_eq(read(fds[0], buf, 1), -1, "a write was started");
	cr_assert_eq(errno, EAGAIN);
	close2(fds);
	weft_pool_destroy(pool);
}

/* Outside a task a NULL pool names no pool: -EINVAL from every call. */
Test(io, null_pool_outside_a_task_is_einval, .timeout = TMO)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct iovec iov = {.iov_base = &a, .iov_len = 1};
	struct weft_acceptor *acc = (struct weft_acceptor *)UNTOUCHED;
	struct weft_future *f;
	struct statx stx;
	void *data = UNTOUCHED;
	size_t len = 7;
	char buf[8];
	const int64_t T = WEFT_FOREVER;

	EXPECT_EINVAL(weft_io_nop(NULL, T, &f));
	EXPECT_EINVAL(weft_io_timeout(NULL, 0, &f));
	EXPECT_EINVAL(weft_io_read(NULL, 0, buf, 1, 0, T, &f));
	EXPECT_EINVAL(weft_io_write(NULL, 1, buf, 1, 0, T, &f));
	EXPECT_EINVAL(weft_io_readv(NULL, 0, &iov, 1, 0, T, &f));
	EXPECT_EINVAL(weft_io_writev(NULL, 1, &iov, 1, 0, T, &f));
	EXPECT_EINVAL(weft_io_fsync(NULL, 1, T, &f));
	EXPECT_EINVAL(weft_io_fdatasync(NULL, 1, T, &f));
	EXPECT_EINVAL(weft_io_openat(NULL, AT_FDCWD, "/", O_RDONLY, 0, T, &f));
	EXPECT_EINVAL(weft_io_close(NULL, BAD_FD, T, &f));
	EXPECT_EINVAL(weft_io_statx(NULL, AT_FDCWD, "/", 0, STATX_SIZE, &stx,
				    T, &f));
	EXPECT_EINVAL(weft_io_accept(NULL, 0, NULL, NULL, 0, T, &f));
	EXPECT_EINVAL(weft_io_connect(NULL, 0, (struct sockaddr *)&a,
				      sizeof(a), T, &f));
	EXPECT_EINVAL(weft_io_recv(NULL, 0, buf, 1, 0, T, &f));
	EXPECT_EINVAL(weft_io_send(NULL, 1, buf, 1, 0, T, &f));
	EXPECT_EINVAL(weft_io_shutdown(NULL, 0, SHUT_RD, T, &f));
	EXPECT_EINVAL(weft_io_poll(NULL, 0, POLLIN, T, &f));
	EXPECT_EINVAL(weft_io_read_exact(NULL, 0, buf, 1, 0, T));
	EXPECT_EINVAL(weft_io_write_all(NULL, 1, buf, 1, 0, T));
	EXPECT_EINVAL(weft_io_read_file(NULL, AT_FDCWD, "/proc/self/stat", T,
					&data, &len));
	cr_assert_eq(data, UNTOUCHED);
	cr_assert_eq(weft_io_accept_multishot(NULL, 0, 0, &acc), -EINVAL);
	cr_assert_eq(acc, (struct weft_acceptor *)UNTOUCHED);
}

/* weft_io_result() and weft_io_await() refuse a future no I/O completes
 * (pending or not), and the await leaves the caller's reference alone. */
Test(io, result_and_await_of_a_task_future_are_einval, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct weft_future *f = NULL, *g = NULL;
	struct blocker b;
	struct gate gate;

	cr_assert_eq(weft_submit(pool, value_task, (void *)0x10, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_io_result(f), -EINVAL);
	cr_assert_eq(weft_io_await(f), -EINVAL);
	/* still ours: the value is there, and this unref is the last */
	cr_assert_eq(weft_future_value(f), (void *)0x10);
	weft_future_unref(f);

	/* a pending task future: -EINVAL too, not -EINPROGRESS */
	gate_init(&gate);
	blocker_init(&b, &gate, NULL, 0);
	cr_assert_eq(weft_submit(pool, blocker_task, &b, &g), 0);
	cr_assert(blocker_wait_started(&b));
	cr_assert_eq(weft_io_result(g), -EINVAL);
	gate_open(&gate);
	cr_assert_eq(weft_future_wait(g), 0);
	weft_future_unref(g);
	weft_pool_destroy(pool);
	gate_fini(&gate);
}

/* A pending I/O future reports -EINPROGRESS, and keeps doing so until it
 * completes. */
Test(io, result_of_a_pending_op_is_einprogress, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct weft_future *f = NULL;
	char buf[8];
	int sv[2];

	cr_assert_eq(spair(sv, 0), 0);
	cr_assert_eq(weft_io_recv(pool, sv[0], buf, sizeof(buf), 0,
				  WEFT_FOREVER, &f), 0);
	cr_assert_eq(weft_io_result(f), -EINPROGRESS);
	cr_assert_eq(weft_future_try_wait(f), -EAGAIN);
	settle();
	cr_assert_eq(weft_io_result(f), -EINPROGRESS);
	cr_assert_eq(weft_future_wait_until(f, weft_now() + 5 * MS),
		     -ETIMEDOUT);
	cr_assert_eq(send(sv[1], "x", 1, 0), 1);
	cr_assert_eq(weft_io_await(f), 1);
	close2(sv);
	weft_pool_destroy(pool);
}

/* After weft_pool_shutdown() has returned, an outside thread's calls are
 * -ESHUTDOWN with *out untouched. */
Test(io, calls_after_shutdown_are_eshutdown, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct weft_acceptor *acc = (struct weft_acceptor *)UNTOUCHED;
	struct weft_future *f = NULL;
	void *data = UNTOUCHED;
	size_t len = 7;
	char buf[8];
	int fds[2];

	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	/* the io thread is running before the shutdown */
	cr_assert_eq(weft_io_nop(pool, WEFT_FOREVER, &f), 0);
	cr_assert_eq(weft_io_await(f), 0);
	cr_assert_eq(weft_pool_shutdown(pool, 0, WEFT_FOREVER), 0);
	EXPECT_ERR(-ESHUTDOWN, weft_io_nop(pool, WEFT_FOREVER, &f));
	EXPECT_ERR(-ESHUTDOWN, weft_io_timeout(pool, 0, &f));
	EXPECT_ERR(-ESHUTDOWN, weft_io_read(pool, fds[0], buf, 1, -1,
					    WEFT_FOREVER, &f));
	EXPECT_ERR(-ESHUTDOWN, weft_io_write(pool, fds[1], "x", 1, -1,
					     WEFT_FOREVER, &f));
	EXPECT_ERR(-ESHUTDOWN, weft_io_write_all(pool, fds[1], "x", 1, -1,
						 WEFT_FOREVER));
	EXPECT_ERR(-ESHUTDOWN, weft_io_read_exact(pool, fds[0], buf, 1, -1,
						  WEFT_FOREVER));
	EXPECT_ERR(-ESHUTDOWN, weft_io_read_file(pool, AT_FDCWD,
						 "/proc/self/stat",
						 WEFT_FOREVER, &data, &len));
	cr_assert_eq(data, UNTOUCHED);
	cr_assert_eq(weft_io_accept_multishot(pool, fds[0], 0, &acc),
		     -ESHUTDOWN);
	cr_assert_eq(acc, (struct weft_acceptor *)UNTOUCHED);
	/* nothing was written */
	cr_assert_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	cr_assert_eq(read(fds[0], buf, 1), -1);
	close2(fds);
	weft_pool_destroy(pool);
}

struct draining_io {
	struct blocker b;
	int64_t r;
};

static int draining_io_task(void *arg, void **result)
{
	struct draining_io *d = arg;
	struct weft_future *f = NULL;
	int rc;

	blocker_task(&d->b, result);
	/* The pool is draining now: its own tasks may still do I/O (the
	 * first I/O of this pool, which starts its io thread). */
	rc = weft_io_nop(NULL, WEFT_FOREVER, &f);
	d->r = rc ? rc : weft_io_await(f);
	return 0;
}

static void *shutdown_main(void *arg)
{
	return (void *)(intptr_t)weft_pool_shutdown(arg, 0, WEFT_FOREVER);
}

/* While a shutdown drains, an outside thread gets -ESHUTDOWN but the
 * pool's own tasks go on doing I/O. */
Test(io, draining_pool_refuses_outsiders_but_not_its_tasks, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct draining_io d = {.r = NOT_RUN};
	struct weft_future *tf = NULL, *f;
	atomic_int count = 0;
	struct gate gate;
	pthread_t th;
	void *sret;
	int64_t give_up;
	int rc;

	gate_init(&gate);
	blocker_init(&d.b, &gate, NULL, 0);
	cr_assert_eq(weft_submit(pool, draining_io_task, &d, &tf), 0);
	cr_assert(blocker_wait_started(&d.b));
	cr_assert_eq(pthread_create(&th, NULL, shutdown_main, pool), 0);
	/* the shutdown has begun once outside submits are refused */
	give_up = weft_now() + SOON;
	while ((rc = weft_submit(pool, count_task, &count, NULL)) == 0 &&
	       weft_now() < give_up)
		sleep_ms(1);
	cr_assert_eq(rc, -ESHUTDOWN, "the shutdown never began");
	EXPECT_ERR(-ESHUTDOWN, weft_io_nop(pool, WEFT_FOREVER, &f));
	EXPECT_ERR(-ESHUTDOWN, weft_io_timeout(pool, 0, &f));
	gate_open(&gate);
	cr_assert_eq(pthread_join(th, &sret), 0);
	cr_assert_eq((intptr_t)sret, 0);
	cr_assert_eq(weft_future_wait(tf), 0);
	cr_assert_eq(d.r, 0, "the draining pool's task got %lld",
		     (long long)d.r);
	weft_future_unref(tf);
	weft_pool_destroy(pool);
	gate_fini(&gate);
}

/* ---- one operation at a time ------------------------------------------- */

static void nop_body(struct ctx *c)
{
	CHECK_EQ(RUN(weft_io_nop(POOL, WEFT_FOREVER, OUT)), 0);
	CHECK_EQ(RUN(weft_io_nop(POOL, weft_now() + SOON, OUT)), 0);
}

/* A nop completes with 0, DONE with a NULL value. */
Test(io, nop_completes_with_zero, .timeout = TMO)
{
	run_all_modes(nop_body, NULL);
}

static void timeout_body(struct ctx *c)
{
	int64_t dl = weft_now() + 20 * MS;

	CHECK_EQ(RUN(weft_io_timeout(POOL, dl, OUT)), 0);
	CHECK(weft_now() >= dl);
	/* the past completes at once, with 0 as well */
	CHECK_EQ(RUN(weft_io_timeout(POOL, weft_now() - MS, OUT)), 0);
	CHECK_EQ(RUN(weft_io_timeout(POOL, 0, OUT)), 0);
}

/* A timeout completes with 0, not before its deadline. */
Test(io, timeout_completes_at_its_deadline_not_before, .timeout = TMO)
{
	run_all_modes(timeout_body, NULL);
}

static void rw_file_body(struct ctx *c)
{
	unsigned char out[256], in[256];
	char path[PATH_LEN];
	int fd = make_tmp(path, NULL, 0);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	fill(out, sizeof(out), 11);

	/* at the file position, which advances */
	CHECK_EQ(RUN(weft_io_write(POOL, fd, out, 100, -1, WEFT_FOREVER, OUT)),
		 100);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 100);
	CHECK_EQ(RUN(weft_io_write(POOL, fd, out + 100, 50, -1, WEFT_FOREVER,
				   OUT)), 50);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 150);
	/* at an offset past the end: the position stays, the hole is 0 */
	CHECK_EQ(RUN(weft_io_write(POOL, fd, out + 150, 106, 1000,
				   WEFT_FOREVER, OUT)), 106);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 150);
	CHECK_EQ(pread(fd, in, 150, 0), 150);
	CHECK(memcmp(in, out, 150) == 0);
	CHECK_EQ(pread(fd, in, 106, 1000), 106);
	CHECK(memcmp(in, out + 150, 106) == 0);
	CHECK_EQ(pread(fd, in, 100, 500), 100);
	CHECK(all_bytes(in, 100, 0));

	/* read at an offset: the position stays */
	memset(in, 0xee, sizeof(in));
	CHECK_EQ(RUN(weft_io_read(POOL, fd, in, 50, 20, WEFT_FOREVER, OUT)),
		 50);
	CHECK(memcmp(in, out + 20, 50) == 0);
	CHECK(all_bytes(in + 50, sizeof(in) - 50, 0xee));
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 150);
	/* read at the position, which advances */
	CHECK_EQ(lseek(fd, 10, SEEK_SET), 10);
	CHECK_EQ(RUN(weft_io_read(POOL, fd, in, 30, -1, WEFT_FOREVER, OUT)),
		 30);
	CHECK(memcmp(in, out + 10, 30) == 0);
	CHECK_EQ(RUN(weft_io_read(POOL, fd, in, 30, -1, WEFT_FOREVER, OUT)),
		 30);
	CHECK(memcmp(in, out + 40, 30) == 0);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 70);
	/* short across the end of file, then 0 at and past it */
	CHECK_EQ(RUN(weft_io_read(POOL, fd, in, 100, 1050, WEFT_FOREVER, OUT)),
		 56);
	CHECK(memcmp(in, out + 200, 56) == 0);
	CHECK_EQ(RUN(weft_io_read(POOL, fd, in, 100, 1106, WEFT_FOREVER, OUT)),
		 0);
	CHECK_EQ(RUN(weft_io_read(POOL, fd, in, 100, 1 << 20, WEFT_FOREVER,
				  OUT)), 0);
	/* zero bytes: a NULL buffer is fine */
	CHECK_EQ(RUN(weft_io_read(POOL, fd, NULL, 0, 0, WEFT_FOREVER, OUT)), 0);
	CHECK_EQ(RUN(weft_io_write(POOL, fd, NULL, 0, 0, WEFT_FOREVER, OUT)),
		 0);
	close(fd);
}

/* read and write at offsets and at the file position, short reads at the
 * end of file, 0 past it. */
Test(io, read_write_at_offsets_and_at_the_file_position, .timeout = TMO)
{
	run_all_modes(rw_file_body, NULL);
}

static void eof_body(struct ctx *c)
{
	char buf[16] = {0};
	int fds[2];

	CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
	CHECK_EQ(write(fds[1], "hello", 5), 5);
	close(fds[1]);
	CHECK_EQ(RUN(weft_io_read(POOL, fds[0], buf, sizeof(buf), -1,
				  WEFT_FOREVER, OUT)), 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ(RUN(weft_io_read(POOL, fds[0], buf, sizeof(buf), -1,
				  WEFT_FOREVER, OUT)), 0);
	CHECK_EQ(RUN(weft_io_read(POOL, fds[0], buf, sizeof(buf), -1,
				  WEFT_FOREVER, OUT)), 0);
	close(fds[0]);

	/* a read that waits on a pipe ends with 0 when the writer leaves */
	CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
	struct weft_future *f = START(weft_io_read(POOL, fds[0], buf,
						   sizeof(buf), -1,
						   WEFT_FOREVER, OUT));
	close(fds[1]);
	CHECK_EQ(AWAIT(f), 0);
	close(fds[0]);
}

/* End of file on a pipe reads as 0, also for a read already waiting. */
Test(io, read_at_end_of_file_returns_zero, .timeout = TMO)
{
	run_all_modes(eof_body, NULL);
}

static void bad_fd_body(struct ctx *c)
{
	static const int bad[] = {-1, BAD_FD};
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons(1),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	char buf[8] = {0};
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct statx stx;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = bad[i];
		int64_t r;

		CHECK_EQ(RUN(weft_io_read(POOL, fd, buf, 8, 0, WEFT_FOREVER,
					  OUT)), -EBADF);
		CHECK_EQ(RUN(weft_io_read(POOL, fd, buf, 8, -1, WEFT_FOREVER,
					  OUT)), -EBADF);
		CHECK_EQ(RUN(weft_io_write(POOL, fd, buf, 8, -1, WEFT_FOREVER,
					   OUT)), -EBADF);
		CHECK_EQ(RUN(weft_io_readv(POOL, fd, &iov, 1, 0, WEFT_FOREVER,
					   OUT)), -EBADF);
		CHECK_EQ(RUN(weft_io_writev(POOL, fd, &iov, 1, -1,
					    WEFT_FOREVER, OUT)), -EBADF);
		CHECK_EQ(RUN(weft_io_fsync(POOL, fd, WEFT_FOREVER, OUT)),
			 -EBADF);
		CHECK_EQ(RUN(weft_io_fdatasync(POOL, fd, WEFT_FOREVER, OUT)),
			 -EBADF);
		CHECK_EQ(RUN(weft_io_close(POOL, fd, WEFT_FOREVER, OUT)),
			 -EBADF);
		CHECK_EQ(RUN(weft_io_openat(POOL, fd, "relative", O_RDONLY, 0,
					    WEFT_FOREVER, OUT)), -EBADF);
		CHECK_EQ(RUN(weft_io_statx(POOL, fd, "relative", 0,
					   STATX_SIZE, &stx, WEFT_FOREVER,
					   OUT)), -EBADF);
		CHECK_EQ(RUN(weft_io_accept(POOL, fd, NULL, NULL, 0,
					    WEFT_FOREVER, OUT)), -EBADF);
		CHECK_EQ(RUN(weft_io_connect(POOL, fd, (struct sockaddr *)&a,
					     sizeof(a), WEFT_FOREVER, OUT)),
			 -EBADF);
		CHECK_EQ(RUN(weft_io_recv(POOL, fd, buf, 8, 0, WEFT_FOREVER,
					  OUT)), -EBADF);
		CHECK_EQ(RUN(weft_io_send(POOL, fd, buf, 8, 0, WEFT_FOREVER,
					  OUT)), -EBADF);
		CHECK_EQ(RUN(weft_io_shutdown(POOL, fd, SHUT_RDWR,
					      WEFT_FOREVER, OUT)), -EBADF);
		/* poll may say it either way (weft/io.h) */
		r = RUN(weft_io_poll(POOL, fd, POLLIN, WEFT_FOREVER, OUT));
		if (!(r == -EBADF || (r > 0 && (r & POLLNVAL))))
			ctx_fail(c, __LINE__, "poll(fd %d) = %lld", fd,
				 (long long)r);
		CHECK_EQ(weft_io_read_exact(POOL, fd, buf, 8, 0, WEFT_FOREVER),
			 -EBADF);
		CHECK_EQ(weft_io_write_all(POOL, fd, buf, 8, -1, WEFT_FOREVER),
			 -EBADF);
	}
}

/* Every operation on a descriptor that is not open completes with
 * -EBADF (started fine: the kernel's error is the result). */
Test(io, operations_on_a_bad_fd_are_ebadf, .timeout = TMO)
{
	run_all_modes(bad_fd_body, NULL);
}

static void not_socket_body(struct ctx *c)
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons(1),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	char path[PATH_LEN], buf[8] = "1234567";
	int fd = make_tmp(path, "12345678", 8);
	int64_t r;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	CHECK_EQ(RUN(weft_io_accept(POOL, fd, NULL, NULL, 0, WEFT_FOREVER,
				    OUT)), -ENOTSOCK);
	CHECK_EQ(RUN(weft_io_connect(POOL, fd, (struct sockaddr *)&a,
				     sizeof(a), WEFT_FOREVER, OUT)),
		 -ENOTSOCK);
	CHECK_EQ(RUN(weft_io_recv(POOL, fd, buf, 8, 0, WEFT_FOREVER, OUT)),
		 -ENOTSOCK);
	CHECK_EQ(RUN(weft_io_send(POOL, fd, buf, 8, 0, WEFT_FOREVER, OUT)),
		 -ENOTSOCK);
	CHECK_EQ(RUN(weft_io_shutdown(POOL, fd, SHUT_RD, WEFT_FOREVER, OUT)),
		 -ENOTSOCK);
	/* a regular file is always ready */
	r = RUN(weft_io_poll(POOL, fd, POLLIN, WEFT_FOREVER, OUT));
	CHECK(r > 0 && (r & POLLIN));
	close(fd);
}

/* Socket operations on a regular file give the kernel's -ENOTSOCK. */
Test(io, socket_operations_on_a_file_are_enotsock, .timeout = TMO)
{
	run_all_modes(not_socket_body, NULL);
}

static void vec_body(struct ctx *c)
{
	unsigned char out[300], in[300], a[10], b[90], d[200];
	struct iovec wv[3] = {
		{out, 7}, {out + 7, 93}, {out + 100, 200},
	};
	struct iovec rv[3] = {{a, 10}, {b, 90}, {d, 200}};
	char path[PATH_LEN];
	int fd = make_tmp(path, NULL, 0);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	fill(out, sizeof(out), 77);

	/* gather at an offset: the position stays */
	CHECK_EQ(RUN(weft_io_writev(POOL, fd, wv, 3, 64, WEFT_FOREVER, OUT)),
		 300);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
	CHECK_EQ(pread(fd, in, 300, 64), 300);
	CHECK(memcmp(in, out, 300) == 0);
	CHECK_EQ(pread(fd, in, 64, 0), 64);
	CHECK(all_bytes(in, 64, 0));
	/* scatter at an offset, each buffer in order */
	CHECK_EQ(RUN(weft_io_readv(POOL, fd, rv, 3, 64, WEFT_FOREVER, OUT)),
		 300);
	CHECK(memcmp(a, out, 10) == 0);
	CHECK(memcmp(b, out + 10, 90) == 0);
	CHECK(memcmp(d, out + 100, 200) == 0);
	/* short at the end of file: the first buffers fill first */
	memset(b, 0xee, sizeof(b));
	CHECK_EQ(RUN(weft_io_readv(POOL, fd, rv, 3, 64 + 250, WEFT_FOREVER,
				   OUT)), 50);
	CHECK(memcmp(a, out + 250, 10) == 0);
	CHECK(memcmp(b, out + 260, 40) == 0);
	CHECK(all_bytes(b + 40, 50, 0xee));
	/* at the file position, which advances */
	CHECK_EQ(lseek(fd, 0, SEEK_END), 364);
	CHECK_EQ(RUN(weft_io_writev(POOL, fd, wv, 2, -1, WEFT_FOREVER, OUT)),
		 100);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 464);
	CHECK_EQ(lseek(fd, 364, SEEK_SET), 364);
	CHECK_EQ(RUN(weft_io_readv(POOL, fd, rv, 2, -1, WEFT_FOREVER, OUT)),
		 100);
	CHECK(memcmp(a, out, 10) == 0);
	CHECK(memcmp(b, out + 10, 90) == 0);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 464);
	close(fd);
}

/* readv/writev scatter and gather in order, at offsets and at the file
 * position. */
Test(io, readv_writev_at_offsets_and_at_the_file_position, .timeout = TMO)
{
	run_all_modes(vec_body, NULL);
}

struct many_vecs {
	struct iovec iov[1024];
	unsigned char out[1024], in[1024];
};

static void many_vecs_body(struct ctx *c)
{
	struct many_vecs *m = c->arg;
	char path[PATH_LEN];
	int fd = make_tmp(path, NULL, 0);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	fill(m->out, sizeof(m->out), 5);
	for (int i = 0; i < 1024; i++)
		m->iov[i] = (struct iovec){m->out + i, 1};
	CHECK_EQ(RUN(weft_io_writev(POOL, fd, m->iov, 1024, 0, WEFT_FOREVER,
				    OUT)), 1024);
	for (int i = 0; i < 1024; i++)
		m->iov[i] = (struct iovec){m->in + 1023 - i, 1};
	CHECK_EQ(RUN(weft_io_readv(POOL, fd, m->iov, 1024, 0, WEFT_FOREVER,
				   OUT)), 1024);
	for (int i = 0; i < 1024; i++)
		if (m->in[1023 - i] != m->out[i]) {
			ctx_fail(c, __LINE__, "byte %d", i);
			break;
		}
	close(fd);
}

/* 1024 iovecs, the most accepted, all transfer. */
Test(io, readv_writev_take_1024_iovecs, .timeout = TMO)
{
	struct many_vecs *m = calloc(1, sizeof(*m));

	cr_assert_not_null(m);
	run_all_modes(many_vecs_body, m);
	free(m);
}

static void sync_body(struct ctx *c)
{
	char path[PATH_LEN];
	int fd = make_tmp(path, "data", 4);
	int fds[2];

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	CHECK_EQ(RUN(weft_io_write(POOL, fd, "more", 4, -1, WEFT_FOREVER,
				   OUT)), 4);
	CHECK_EQ(RUN(weft_io_fsync(POOL, fd, WEFT_FOREVER, OUT)), 0);
	CHECK_EQ(RUN(weft_io_fdatasync(POOL, fd, WEFT_FOREVER, OUT)), 0);
	close(fd);
	/* a pipe cannot be synced: the kernel's -EINVAL comes back */
	CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
	CHECK_EQ(RUN(weft_io_fsync(POOL, fds[1], WEFT_FOREVER, OUT)), -EINVAL);
	CHECK_EQ(RUN(weft_io_fdatasync(POOL, fds[1], WEFT_FOREVER, OUT)),
		 -EINVAL);
	close2(fds);
}

/* fsync and fdatasync succeed on a file and pass the kernel's error on
 * through. */
Test(io, fsync_and_fdatasync, .timeout = TMO)
{
	run_all_modes(sync_body, NULL);
}

static void openat_body(struct ctx *c)
{
	unsigned char out[64], in[64];
	char path[PATH_LEN], path2[PATH_LEN + 8];
	struct stat st0, st;
	int fd0, dfd;
	int64_t fd;

	fill(out, sizeof(out), 3);
	fd0 = make_tmp(path, out, sizeof(out));
	CHECK(fd0 >= 0);
	if (fd0 < 0)
		return;
	CHECK_EQ(fstat(fd0, &st0), 0);

	/* opens the file, O_CLOEXEC added */
	fd = RUN(weft_io_openat(POOL, AT_FDCWD, path, O_RDONLY, 0,
				WEFT_FOREVER, OUT));
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(cloexec(fd));
		CHECK_EQ(fstat((int)fd, &st), 0);
		CHECK(st.st_ino == st0.st_ino && st.st_dev == st0.st_dev);
		CHECK_EQ(pread((int)fd, in, sizeof(in), 0), 64);
		CHECK(memcmp(in, out, 64) == 0);
		/* close closes it */
		CHECK_EQ(RUN(weft_io_close(POOL, (int)fd, WEFT_FOREVER, OUT)),
			 0);
		CHECK(fd_gone((int)fd, &st0));
	}
	/* relative to a directory descriptor */
	dfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);
	fd = RUN(weft_io_openat(POOL, dfd, path + strlen("/tmp/"), O_RDWR, 0,
				WEFT_FOREVER, OUT));
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK_EQ(fstat((int)fd, &st), 0);
		CHECK(st.st_ino == st0.st_ino);
		close((int)fd);
	}
	close(dfd);
	/* the kernel's errors */
	CHECK_EQ(RUN(weft_io_openat(POOL, AT_FDCWD, path,
				    O_CREAT | O_EXCL | O_WRONLY, 0600,
				    WEFT_FOREVER, OUT)), -EEXIST);
	CHECK_EQ(RUN(weft_io_openat(POOL, AT_FDCWD, "/nonexistent/weft-io",
				    O_RDONLY, 0, WEFT_FOREVER, OUT)), -ENOENT);
	CHECK_EQ(RUN(weft_io_openat(POOL, AT_FDCWD, path,
				    O_RDONLY | O_DIRECTORY, 0, WEFT_FOREVER,
				    OUT)), -ENOTDIR);
	/* O_CREAT takes @mode (a usual umask leaves the owner's bits) */
	snprintf(path2, sizeof(path2), "%s.new", path);
	unlink(path2);
	fd = RUN(weft_io_openat(POOL, AT_FDCWD, path2,
				O_CREAT | O_EXCL | O_RDWR, 0600, WEFT_FOREVER,
				OUT));
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(cloexec(fd));
		CHECK_EQ(fstat((int)fd, &st), 0);
		CHECK_EQ(st.st_mode & 0777, 0600);
		close((int)fd);
	}
	unlink(path2);
	unlink(path);
	close(fd0);
}

/* openat opens (close-on-exec), creates with the mode, passes the
 * kernel's errors on; close closes. */
Test(io, openat_and_close, .timeout = TMO)
{
	run_all_modes(openat_body, NULL);
}

static void statx_body(struct ctx *c)
{
	static char data[1234];
	char path[PATH_LEN];
	struct statx stx;
	int fd = make_tmp(path, data, sizeof(data));
	int dfd;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	memset(&stx, 0, sizeof(stx));
	CHECK_EQ(RUN(weft_io_statx(POOL, AT_FDCWD, path, 0,
				   STATX_SIZE | STATX_MODE, &stx,
				   WEFT_FOREVER, OUT)), 0);
	CHECK(stx.stx_mask & STATX_SIZE);
	CHECK_EQ(stx.stx_size, 1234);
	CHECK(S_ISREG(stx.stx_mode));
	/* a descriptor with AT_EMPTY_PATH */
	memset(&stx, 0, sizeof(stx));
	CHECK_EQ(RUN(weft_io_statx(POOL, fd, "", AT_EMPTY_PATH, STATX_SIZE,
				   &stx, WEFT_FOREVER, OUT)), 0);
	CHECK_EQ(stx.stx_size, 1234);
	/* relative to a directory */
	dfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	memset(&stx, 0, sizeof(stx));
	CHECK_EQ(RUN(weft_io_statx(POOL, dfd, path + strlen("/tmp/"), 0,
				   STATX_SIZE, &stx, WEFT_FOREVER, OUT)), 0);
	CHECK_EQ(stx.stx_size, 1234);
	memset(&stx, 0, sizeof(stx));
	CHECK_EQ(RUN(weft_io_statx(POOL, dfd, "", AT_EMPTY_PATH, STATX_MODE,
				   &stx, WEFT_FOREVER, OUT)), 0);
	CHECK(S_ISDIR(stx.stx_mode));
	close(dfd);
	CHECK_EQ(RUN(weft_io_statx(POOL, AT_FDCWD, "/nonexistent/weft-io", 0,
				   STATX_SIZE, &stx, WEFT_FOREVER, OUT)),
		 -ENOENT);
	unlink(path);
	close(fd);
}

/* statx fills the record the caller gave. */
Test(io, statx_reports_size_and_type, .timeout = TMO)
{
	run_all_modes(statx_body, NULL);
}

static void accept_body(struct ctx *c)
{
	struct sockaddr_in la, ca, pa;
	socklen_t plen = sizeof(pa), clen = sizeof(ca);
	char buf[8];
	int lfd = tcp_bound(&la, 16, 0);
	int cfd = tcp_socket(0), cfd2;
	struct weft_future *f;
	int64_t afd;

	CHECK(lfd >= 0 && cfd >= 0);
	if (lfd < 0 || cfd < 0)
		return;
	memset(&pa, 0, sizeof(pa));
	/* started before anyone connects: it waits */
	f = START(weft_io_accept(POOL, lfd, (struct sockaddr *)&pa, &plen, 0,
				 WEFT_FOREVER, OUT));
	if (f)
		CHECK_EQ(weft_io_result(f), -EINPROGRESS);
	CHECK_EQ(connect(cfd, (struct sockaddr *)&la, sizeof(la)), 0);
	afd = AWAIT(f);
	CHECK(afd >= 0);
	if (afd >= 0) {
		CHECK(cloexec(afd));
		CHECK(!nonblocking(afd));
		/* the peer's address is the client's */
		CHECK_EQ(getsockname(cfd, (struct sockaddr *)&ca, &clen), 0);
		CHECK_EQ(plen, sizeof(pa));
		CHECK_EQ(pa.sin_family, AF_INET);
		CHECK_EQ(pa.sin_port, ca.sin_port);
		CHECK_EQ(pa.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
		/* and it is the client's connection */
		CHECK_EQ(send(cfd, "ping", 4, 0), 4);
		CHECK(read_all_plain((int)afd, buf, 4));
		CHECK(memcmp(buf, "ping", 4) == 0);
		close((int)afd);
	}
	/* no address wanted; flags apply to the new socket */
	cfd2 = tcp_connected(&la);
	CHECK(cfd2 >= 0);
	afd = RUN(weft_io_accept(POOL, lfd, NULL, NULL, SOCK_NONBLOCK,
				 WEFT_FOREVER, OUT));
	CHECK(afd >= 0);
	if (afd >= 0) {
		CHECK(nonblocking(afd));
		CHECK(cloexec(afd));
		close((int)afd);
	}
	close(cfd2);
	close(cfd);
	close(lfd);
}

/* accept waits for a connection and gives a close-on-exec socket, the
 * peer's address, and the flags asked for. */
Test(io, accept_gets_the_connection_and_the_address, .timeout = TMO)
{
	run_all_modes(accept_body, NULL);
}

static void accept_errors_body(struct ctx *c)
{
	struct sockaddr_in a;
	int fd = tcp_bound(&a, -1, 0);

	CHECK(fd >= 0);
	/* bound, not listening */
	CHECK_EQ(RUN(weft_io_accept(POOL, fd, NULL, NULL, 0, WEFT_FOREVER,
				    OUT)), -EINVAL);
	close(fd);
}

/* accept on a socket that does not listen fails with -EINVAL. */
Test(io, accept_on_a_socket_not_listening_is_einval, .timeout = TMO)
{
	run_all_modes(accept_errors_body, NULL);
}

static void connect_body(struct ctx *c)
{
	struct sockaddr_in la, ba;
	char buf[8];
	int lfd = tcp_bound(&la, 16, 0);
	int bfd = tcp_bound(&ba, -1, 0);
	int cfd = tcp_socket(0), c2 = tcp_socket(0), afd;

	CHECK(lfd >= 0 && bfd >= 0 && cfd >= 0 && c2 >= 0);
	CHECK_EQ(RUN(weft_io_connect(POOL, cfd, (struct sockaddr *)&la,
				     sizeof(la), WEFT_FOREVER, OUT)), 0);
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(afd >= 0);
	CHECK_EQ(RUN(weft_io_send(POOL, cfd, "hi!", 3, 0, WEFT_FOREVER, OUT)),
		 3);
	CHECK(read_all_plain(afd, buf, 3));
	CHECK(memcmp(buf, "hi!", 3) == 0);
	/* connected already */
	CHECK_EQ(RUN(weft_io_connect(POOL, cfd, (struct sockaddr *)&la,
				     sizeof(la), WEFT_FOREVER, OUT)), -EISCONN);
	/* a port that is bound but not listening answers with a reset */
	CHECK_EQ(RUN(weft_io_connect(POOL, c2, (struct sockaddr *)&ba,
				     sizeof(ba), WEFT_FOREVER, OUT)),
		 -ECONNREFUSED);
	close(afd);
	close(c2);
	close(cfd);
	close(bfd);
	close(lfd);
}

/* connect connects, and a refused connection is -ECONNREFUSED. */
Test(io, connect_connects_and_refused_is_econnrefused, .timeout = TMO)
{
	run_all_modes(connect_body, NULL);
}

static void send_recv_body(struct ctx *c)
{
	char buf[64];
	struct weft_future *f;
	int sv[2];

	CHECK_EQ(spair(sv, 0), 0);
	CHECK_EQ(RUN(weft_io_send(POOL, sv[0], "hello", 5, 0, WEFT_FOREVER,
				  OUT)), 5);
	/* flags go to the kernel: a peek leaves the data */
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(RUN(weft_io_recv(POOL, sv[1], buf, sizeof(buf), MSG_PEEK,
				  WEFT_FOREVER, OUT)), 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	/* at most @len, then the rest: what is there, not what was asked */
	CHECK_EQ(RUN(weft_io_recv(POOL, sv[1], buf, 3, 0, WEFT_FOREVER, OUT)),
		 3);
	CHECK(memcmp(buf, "hel", 3) == 0);
	CHECK_EQ(RUN(weft_io_recv(POOL, sv[1], buf, sizeof(buf), 0,
				  WEFT_FOREVER, OUT)), 2);
	CHECK(memcmp(buf, "lo", 2) == 0);
	/* a recv started before the data arrives waits for it */
	f = START(weft_io_recv(POOL, sv[1], buf, sizeof(buf), 0, WEFT_FOREVER,
			       OUT));
	if (f)
		CHECK_EQ(weft_io_result(f), -EINPROGRESS);
	CHECK_EQ(send(sv[0], "later", 5, 0), 5);
	CHECK_EQ(AWAIT(f), 5);
	CHECK(memcmp(buf, "later", 5) == 0);
	/* MSG_DONTWAIT is the caller's to ask for */
	CHECK_EQ(RUN(weft_io_recv(POOL, sv[1], buf, sizeof(buf), MSG_DONTWAIT,
				  WEFT_FOREVER, OUT)), -EAGAIN);
	close2(sv);
}

/* send and recv move bytes, honour flags, and a recv waits for data. */
Test(io, send_and_recv, .timeout = TMO)
{
	run_all_modes(send_recv_body, NULL);
}

static void closed_peer_body(struct ctx *c)
{
	char buf[16];
	struct weft_future *f;
	int sv[2];

	CHECK_EQ(spair(sv, 0), 0);
	/* a waiting recv ends with 0 when the peer goes */
	f = START(weft_io_recv(POOL, sv[0], buf, sizeof(buf), 0, WEFT_FOREVER,
			       OUT));
	close(sv[1]);
	CHECK_EQ(AWAIT(f), 0);
	CHECK_EQ(RUN(weft_io_recv(POOL, sv[0], buf, sizeof(buf), 0,
				  WEFT_FOREVER, OUT)), 0);
	/* a send is -EPIPE, without SIGPIPE */
	CHECK_EQ(RUN(weft_io_send(POOL, sv[0], "x", 1, 0, WEFT_FOREVER, OUT)),
		 -EPIPE);
	CHECK_EQ(RUN(weft_io_send(POOL, sv[0], "xy", 2, MSG_DONTWAIT,
				  WEFT_FOREVER, OUT)), -EPIPE);
	close(sv[0]);
}

/* A closed peer: recv gives 0, send -EPIPE, and no SIGPIPE is raised on
 * any thread. */
Test(io, closed_peer_recv_zero_send_epipe_no_sigpipe, .timeout = TMO)
{
	count_sigpipes();
	run_all_modes(closed_peer_body, NULL);
	cr_assert_eq(atomic_load(&sigpipes), 0, "SIGPIPE was raised");
}

static void shutdown_body(struct ctx *c)
{
	char buf[8];
	int sv[2];

	CHECK_EQ(spair(sv, 0), 0);
	CHECK_EQ(RUN(weft_io_shutdown(POOL, sv[0], SHUT_WR, WEFT_FOREVER,
				      OUT)), 0);
	/* the peer sees the end; this side may not send any more */
	CHECK_EQ(RUN(weft_io_recv(POOL, sv[1], buf, sizeof(buf), 0,
				  WEFT_FOREVER, OUT)), 0);
	CHECK_EQ(RUN(weft_io_send(POOL, sv[0], "x", 1, 0, WEFT_FOREVER, OUT)),
		 -EPIPE);
	/* the other direction still works */
	CHECK_EQ(RUN(weft_io_send(POOL, sv[1], "y", 1, 0, WEFT_FOREVER, OUT)),
		 1);
	CHECK_EQ(RUN(weft_io_recv(POOL, sv[0], buf, sizeof(buf), 0,
				  WEFT_FOREVER, OUT)), 1);
	CHECK_EQ(buf[0], 'y');
	CHECK_EQ(RUN(weft_io_shutdown(POOL, sv[0], 7, WEFT_FOREVER, OUT)),
		 -EINVAL);
	close2(sv);
}

/* shutdown(SHUT_WR) ends one direction only; a bad @how is the kernel's
 * -EINVAL. */
Test(io, shutdown_ends_one_direction, .timeout = TMO)
{
	count_sigpipes();
	run_all_modes(shutdown_body, NULL);
	cr_assert_eq(atomic_load(&sigpipes), 0, "SIGPIPE was raised");
}

static void poll_body(struct ctx *c)
{
	struct weft_future *f;
	char buf[8];
	int sv[2];
	int64_t r;

	CHECK_EQ(spair(sv, 0), 0);
	/* ready at once for writing; only what was asked is reported */
	r = RUN(weft_io_poll(POOL, sv[0], POLLOUT, WEFT_FOREVER, OUT));
	CHECK(r > 0 && (r & POLLOUT) && !(r & POLLIN));
	/* waits until data arrives, and does not consume it */
	f = START(weft_io_poll(POOL, sv[0], POLLIN, WEFT_FOREVER, OUT));
	if (f)
		CHECK_EQ(weft_io_result(f), -EINPROGRESS);
	CHECK_EQ(send(sv[1], "z", 1, 0), 1);
	r = AWAIT(f);
	CHECK(r > 0 && (r & POLLIN));
	CHECK_EQ(recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT), 1);
	/* the peer gone: readable (end of file) and hung up */
	close(sv[1]);
	r = RUN(weft_io_poll(POOL, sv[0], POLLIN, WEFT_FOREVER, OUT));
	CHECK(r > 0 && (r & (POLLIN | POLLHUP)));
	close(sv[0]);
}

/* poll reports the ready events, waits for them, and consumes nothing. */
Test(io, poll_reports_and_waits_for_readiness, .timeout = TMO)
{
	run_all_modes(poll_body, NULL);
}

static void nonblocking_body(struct ctx *c)
{
	struct sockaddr_in la;
	struct weft_future *f;
	char buf[8];
	int sv[2], lfd, cfd;
	int64_t afd;

	/* recv on an O_NONBLOCK socket still waits for data */
	CHECK_EQ(spair(sv, SOCK_NONBLOCK), 0);
	f = START(weft_io_recv(POOL, sv[0], buf, sizeof(buf), 0, WEFT_FOREVER,
			       OUT));
	if (f)
		CHECK_EQ(weft_io_result(f), -EINPROGRESS);
	CHECK_EQ(send(sv[1], "nb", 2, 0), 2);
	CHECK_EQ(AWAIT(f), 2);
	/* and so does poll */
	f = START(weft_io_poll(POOL, sv[0], POLLIN, WEFT_FOREVER, OUT));
	CHECK_EQ(send(sv[1], "x", 1, 0), 1);
	CHECK(AWAIT(f) > 0);
	close2(sv);

	/* accept on an O_NONBLOCK listener waits for a connection */
	lfd = tcp_bound(&la, 16, SOCK_NONBLOCK);
	CHECK(lfd >= 0);
	f = START(weft_io_accept(POOL, lfd, NULL, NULL, 0, WEFT_FOREVER,
				 OUT));
	cfd = tcp_connected(&la);
	CHECK(cfd >= 0);
	afd = AWAIT(f);
	CHECK(afd >= 0);
	if (afd >= 0)
		close((int)afd);
	close(cfd);

	/* connect on an O_NONBLOCK socket completes (no -EINPROGRESS) */
	cfd = tcp_socket(SOCK_NONBLOCK);
	CHECK_EQ(RUN(weft_io_connect(POOL, cfd, (struct sockaddr *)&la,
				     sizeof(la), WEFT_FOREVER, OUT)), 0);
	close(cfd);
	close(lfd);
}

/* Sockets the caller made non-blocking behave as blocking ones: the
 * operation waits for readiness instead of completing with -EAGAIN. */
Test(io, nonblocking_sockets_wait_instead_of_eagain, .timeout = TMO)
{
	run_all_modes(nonblocking_body, NULL);
}

/* ---- multishot accept -------------------------------------------------- */

static void multishot_body(struct ctx *c)
{
	enum { N = 6 };
	struct weft_acceptor *a = NULL;
	struct sockaddr_in la;
	bool seen[N] = {false};
	int cl[N + 1];
	int lfd = tcp_bound(&la, 16, 0);
	int64_t dl;

	CHECK(lfd >= 0);
	CHECK_EQ(weft_io_accept_multishot(POOL, lfd, 0, &a), 0);
	if (!a)
		return;
	for (int i = 0; i < N; i++) {
		unsigned char b = (unsigned char)i;

		cl[i] = tcp_connected(&la);
		CHECK(cl[i] >= 0);
		CHECK_EQ(send(cl[i], &b, 1, 0), 1);
	}
	/* each connection comes out once */
	for (int i = 0; i < N; i++) {
		int s = weft_acceptor_next(a, weft_now() + SOON);
		unsigned char b = 0xff;

		CHECK(s >= 0);
		if (s < 0)
			break;
		CHECK(cloexec(s));
		CHECK(read_all_plain(s, &b, 1));
		CHECK(b < N && !seen[b]);
		if (b < N)
			seen[b] = true;
		close(s);
	}
	/* none waiting: -ETIMEDOUT, not before the deadline */
	dl = weft_now() + 20 * MS;
	CHECK_EQ(weft_acceptor_next(a, dl), -ETIMEDOUT);
	CHECK(weft_now() >= dl);
	/* and it goes on accepting after a timeout */
	cl[N] = tcp_connected(&la);
	CHECK(cl[N] >= 0);
	int s = weft_acceptor_next(a, weft_now() + SOON);

	CHECK(s >= 0);
	if (s >= 0)
		close(s);
	weft_acceptor_close(a);
	for (int i = 0; i <= N; i++)
		close(cl[i]);
	close(lfd);
}

/* One multishot request accepts every connection, each handed out once,
 * close-on-exec; weft_acceptor_next() times out when there is none. */
Test(io, multishot_accept_hands_out_each_connection_once, .timeout = TMO)
{
	run_all_modes(multishot_body, NULL);
}

/* The listener's accept queue is empty (the acceptor took everything). */
static bool wait_backlog_empty(int lfd)
{
	int64_t give_up = weft_now() + SOON;

	for (;;) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);

		if (getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
			return false;
		/* for a listener, tcpi_unacked is its accept queue */
		if (ti.tcpi_unacked == 0)
			return true;
		if (weft_now() > give_up)
			return false;
		sleep_ms(1);
	}
}

/* weft_acceptor_close() closes the sockets it accepted that nobody took:
 * their clients see the connection end (a leaked socket would keep it
 * open and the poll below would time out). */
Test(io, acceptor_close_closes_the_sockets_nobody_took, .timeout = TMO)
{
	enum { N = 4 };
	struct weft_pool *pool = io_pool(2);
	struct weft_acceptor *a = NULL;
	struct sockaddr_in la;
	int cl[N];
	int lfd = tcp_bound(&la, 16, 0);

	cr_assert_geq(lfd, 0);
	cr_assert_eq(weft_io_accept_multishot(pool, lfd, 0, &a), 0);
	for (int i = 0; i < N; i++)
		cr_assert_geq(cl[i] = tcp_connected(&la), 0);
	cr_assert(wait_backlog_empty(lfd), "the acceptor accepted nothing");
	weft_acceptor_close(a);
	close(lfd);
	for (int i = 0; i < N; i++) {
		struct pollfd p = {.fd = cl[i], .events = POLLIN};
		char b;
		ssize_t r;

		cr_assert_eq(poll(&p, 1, (int)(SOON / MS)), 1,
			     "client %d: the accepted socket stayed open", i);
		r = recv(cl[i], &b, 1, MSG_DONTWAIT);
		/* 0: closed by the acceptor; a reset: it was still queued
		 * in the listener when that closed */
		cr_assert(r == 0 || (r < 0 && errno == ECONNRESET),
			  "client %d: recv = %zd (%d)", i, r, errno);
		close(cl[i]);
	}
	weft_pool_destroy(pool);
}

struct acc_waiter {
	struct weft_acceptor *a;
	atomic_int *started;
	int r;
};

static int acc_waiter_task(void *arg, void **result)
{
	struct acc_waiter *w = arg;

	(void)result;
	atomic_fetch_add(w->started, 1);
	w->r = weft_acceptor_next(w->a, weft_now() + SOON);
	return 0;
}

/* Tasks and a thread all waiting in weft_acceptor_next(): each
 * connection goes to exactly one of them. */
Test(io, acceptor_gives_each_socket_to_one_waiter, .timeout = TMO)
{
	enum { T = 5, N = T + 1 };
	struct weft_pool *pool = io_pool(2);
	struct weft_acceptor *a = NULL;
	struct acc_waiter w[T];
	struct weft_future *tf[T];
	struct sockaddr_in la, pa;
	atomic_int started = 0;
	int cl[N], got[N];
	uint16_t ports[N];
	int lfd = tcp_bound(&la, 16, 0);

	cr_assert_geq(lfd, 0);
	cr_assert_eq(weft_io_accept_multishot(pool, lfd, 0, &a), 0);
	for (int i = 0; i < T; i++) {
		w[i] = (struct acc_waiter){.a = a, .started = &started,
					   .r = INT_MIN};
		cr_assert_eq(weft_submit(pool, acc_waiter_task, &w[i], &tf[i]),
			     0);
	}
	cr_assert(wait_int(&started, T));
	for (int i = 0; i < N; i++) {
		socklen_t len = sizeof(pa);

		cr_assert_geq(cl[i] = tcp_connected(&la), 0);
		cr_assert_eq(getsockname(cl[i], (struct sockaddr *)&pa, &len),
			     0);
		ports[i] = pa.sin_port;
	}
	got[T] = weft_acceptor_next(a, weft_now() + SOON);
	for (int i = 0; i < T; i++) {
		cr_assert_eq(weft_future_wait(tf[i]), 0);
		weft_future_unref(tf[i]);
		got[i] = w[i].r;
	}
	/* N sockets, one per client */
	for (int i = 0; i < N; i++) {
		socklen_t len = sizeof(pa);
		int k;

		cr_assert_geq(got[i], 0, "waiter %d: %d", i, got[i]);
		cr_assert_eq(getpeername(got[i], (struct sockaddr *)&pa, &len),
			     0);
		for (k = 0; k < N && ports[k] != pa.sin_port; k++)
			;
		cr_assert_lt(k, N, "waiter %d: an unknown peer", i);
		ports[k] = 0; /* taken: a second socket for it fails above */
	}
	weft_acceptor_close(a);
	for (int i = 0; i < N; i++) {
		close(got[i]);
		close(cl[i]);
	}
	close(lfd);
	weft_pool_destroy(pool);
}

/* A task cancelled in weft_acceptor_next() gets -ECANCELED and takes no
 * socket: the next connection goes to the next caller. */
Test(io, acceptor_next_in_a_cancelled_task_is_ecanceled, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct weft_acceptor *a = NULL;
	struct sockaddr_in la;
	atomic_int started = 0;
	struct acc_waiter w;
	struct weft_future *tf = NULL;
	int lfd = tcp_bound(&la, 16, 0), cfd, s;

	cr_assert_geq(lfd, 0);
	cr_assert_eq(weft_io_accept_multishot(pool, lfd, 0, &a), 0);
	w = (struct acc_waiter){.a = a, .started = &started, .r = INT_MIN};
	cr_assert_eq(weft_submit(pool, acc_waiter_task, &w, &tf), 0);
	cr_assert(wait_int(&started, 1));
	settle();
	cr_assert_eq(weft_future_cancel(tf), -EBUSY);
	cr_assert_eq(weft_future_wait(tf), 0);
	cr_assert_eq(w.r, -ECANCELED);
	weft_future_unref(tf);
	cr_assert_geq(cfd = tcp_connected(&la), 0);
	s = weft_acceptor_next(a, weft_now() + SOON);
	cr_assert_geq(s, 0);
	close(s);
	weft_acceptor_close(a);
	close(cfd);
	close(lfd);
	weft_pool_destroy(pool);
}

/* An acceptor whose request fails reports the error, and again on every
 * later call. */
Test(io, acceptor_reports_the_error_that_ended_it, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct weft_acceptor *a = NULL;
	struct sockaddr_in ba;
	int bfd = tcp_bound(&ba, -1, 0);

	cr_assert_geq(bfd, 0);
	/* a socket that does not listen */
	cr_assert_eq(weft_io_accept_multishot(pool, bfd, 0, &a), 0);
	cr_assert_eq(weft_acceptor_next(a, weft_now() + SOON), -EINVAL);
	cr_assert_eq(weft_acceptor_next(a, weft_now() + SOON), -EINVAL);
	weft_acceptor_close(a);
	/* a descriptor that is not open */
	a = NULL;
	cr_assert_eq(weft_io_accept_multishot(pool, BAD_FD, 0, &a), 0);
	cr_assert_eq(weft_acceptor_next(a, weft_now() + SOON), -EBADF);
	cr_assert_eq(weft_acceptor_next(a, 0), -EBADF);
	weft_acceptor_close(a);
	close(bfd);
	weft_pool_destroy(pool);
}

/* ---- cancellation ------------------------------------------------------ */

static void cancel_pending_body(struct ctx *c)
{
	unsigned char buf[16];
	char got[8];
	struct weft_future *f;
	int sv[2];

	CHECK_EQ(spair(sv, 0), 0);
	for (int round = 0; round < 2; round++) {
		memset(buf, 0xaa, sizeof(buf));
		f = START(weft_io_recv(POOL, sv[0], buf, sizeof(buf), 0,
				       WEFT_FOREVER, OUT));
		if (!f)
			break;
		CHECK_EQ(weft_io_result(f), -EINPROGRESS);
		/* the second round cancels an op that is surely started */
		if (round == 1)
			weft_sleep(20 * MS);
		CHECK_EQ(weft_future_cancel(f), -EBUSY);
		weft_future_ref(f);
		CHECK_EQ(AWAIT(f), -ECANCELED);
		/* complete now: a second cancel changes nothing */
		CHECK_EQ(weft_future_cancel(f), -EALREADY);
		CHECK_EQ(weft_io_result(f), -ECANCELED);
		CHECK_EQ(weft_future_state(f), WEFT_FUTURE_CANCELLED);
		weft_future_unref(f);
		/* nothing was read into the buffer; data sent after the
		 * completion stays in the socket for the next reader */
		CHECK(all_bytes(buf, sizeof(buf), 0xaa));
		CHECK_EQ(send(sv[1], "abc", 3, 0), 3);
		CHECK(read_all_plain(sv[0], got, 3));
		CHECK(memcmp(got, "abc", 3) == 0);
		CHECK(all_bytes(buf, sizeof(buf), 0xaa));
	}
	close2(sv);
}

/* Cancelling a recv that has no data: -EBUSY, then the future completes
 * with -ECANCELED, the buffer untouched and no data lost. */
Test(io, cancel_before_completion_is_ecanceled, .timeout = TMO)
{
	run_all_modes(cancel_pending_body, NULL);
}

static void cancel_done_body(struct ctx *c)
{
	char buf[16];
	char path[PATH_LEN];
	struct weft_future *f;
	int fd = make_tmp(path, "0123456789", 10);

	CHECK(fd >= 0);
	unlink(path);
	f = START(weft_io_nop(POOL, WEFT_FOREVER, OUT));
	weft_future_ref(f);
	CHECK_EQ(AWAIT(f), 0);
	CHECK_EQ(weft_future_cancel(f), -EALREADY);
	CHECK_EQ(weft_io_result(f), 0);
	CHECK_EQ(weft_future_state(f), WEFT_FUTURE_DONE);
	weft_future_unref(f);

	f = START(weft_io_read(POOL, fd, buf, sizeof(buf), 0, WEFT_FOREVER,
			       OUT));
	weft_future_ref(f);
	CHECK_EQ(AWAIT(f), 10);
	CHECK_EQ(weft_future_cancel(f), -EALREADY);
	CHECK_EQ(weft_io_result(f), 10);
	CHECK_EQ((intptr_t)weft_future_value(f), 10);
	weft_future_unref(f);

	f = START(weft_io_read(POOL, BAD_FD, buf, sizeof(buf), 0,
			       WEFT_FOREVER, OUT));
	weft_future_ref(f);
	CHECK_EQ(AWAIT(f), -EBADF);
	CHECK_EQ(weft_future_cancel(f), -EALREADY);
	CHECK_EQ(weft_io_result(f), -EBADF);
	CHECK_EQ(weft_future_state(f), WEFT_FUTURE_FAILED);
	weft_future_unref(f);
	close(fd);
}

/* Cancelling a completed op is -EALREADY and leaves its result alone. */
Test(io, cancel_after_completion_is_ealready, .timeout = TMO)
{
	run_all_modes(cancel_done_body, NULL);
}

static void cancel_race_body(struct ctx *c)
{
	char buf[16];
	char path[PATH_LEN];
	int fd = make_tmp(path, "0123456789", 10);

	CHECK(fd >= 0);
	unlink(path);
	for (int i = 0; i < 300; i++) {
		struct weft_future *f;
		int64_t want;
		int rc;

		switch (i % 3) {
		case 0:
			f = START(weft_io_nop(POOL, WEFT_FOREVER, OUT));
			want = 0;
			break;
		case 1:
			f = START(weft_io_read(POOL, fd, buf, sizeof(buf), 0,
					       WEFT_FOREVER, OUT));
			want = 10;
			break;
		default:
			f = START(weft_io_timeout(POOL, 0, OUT));
			want = 0;
			break;
		}
		if (!f)
			break;
		rc = weft_future_cancel(f);
		if (rc != -EBUSY && rc != -EALREADY) {
			ctx_fail(c, __LINE__, "round %d: cancel = %d", i, rc);
			AWAIT(f);
			break;
		}
		int64_t r = AWAIT(f);

		/* -EALREADY: it had completed, with its own result */
		if (rc == -EALREADY ? r != want
				    : r != want && r != -ECANCELED) {
			ctx_fail(c, __LINE__, "round %d: cancel %d, result %lld",
				 i, rc, (long long)r);
			break;
		}
	}
	close(fd);
}

/* Cancels racing fast completions: every op completes once, with its
 * own result or -ECANCELED, never anything else; cancel is never 0. */
Test(io, cancel_racing_completion, .timeout = TMO)
{
	run_all_modes(cancel_race_body, NULL);
}

static void cancel_timeout_body(struct ctx *c)
{
	struct weft_future *f;

	f = START(weft_io_timeout(POOL, weft_now() + SOON, OUT));
	if (f) {
		CHECK_EQ(weft_io_result(f), -EINPROGRESS);
		CHECK_EQ(weft_future_cancel(f), -EBUSY);
		CHECK_EQ(AWAIT(f), -ECANCELED);
	}
}

/* A cancelled timeout completes with -ECANCELED. */
Test(io, cancel_a_timeout, .timeout = TMO)
{
	run_all_modes(cancel_timeout_body, NULL);
}

struct canceller {
	struct weft_future *f;
	int r;
};

static int canceller_task(void *arg, void **result)
{
	struct canceller *k = arg;

	(void)result;
	k->r = weft_future_cancel(k->f);
	return 0;
}

/* Another task may cancel an op the test thread waits for. */
Test(io, cancel_from_another_task, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct canceller k = {.r = 1};
	struct weft_future *f = NULL, *tf = NULL;
	char buf[8];
	int sv[2];

	cr_assert_eq(spair(sv, 0), 0);
	cr_assert_eq(weft_io_recv(pool, sv[0], buf, sizeof(buf), 0,
				  WEFT_FOREVER, &f), 0);
	k.f = f;
	cr_assert_eq(weft_submit(pool, canceller_task, &k, &tf), 0);
	cr_assert_eq(weft_io_await(f), -ECANCELED);
	cr_assert_eq(weft_future_wait(tf), 0);
	cr_assert_eq(k.r, -EBUSY);
	weft_future_unref(tf);
	close2(sv);
	weft_pool_destroy(pool);
}

/* ---- deadlines --------------------------------------------------------- */

static void deadline_body(struct ctx *c)
{
	struct sockaddr_in la;
	char buf[16];
	int sv[2], fds[2];
	int lfd = tcp_bound(&la, 16, 0);
	int64_t dl;

	CHECK(lfd >= 0);
	CHECK_EQ(spair(sv, 0), 0);
	CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);

	/* each of these would wait for ever; the deadline cancels it, and
	 * not before it has passed */
	dl = weft_now() + 20 * MS;
	CHECK_EQ(RUN(weft_io_recv(POOL, sv[0], buf, sizeof(buf), 0, dl, OUT)),
		 -ECANCELED);
	CHECK(weft_now() >= dl);
	dl = weft_now() + 20 * MS;
	CHECK_EQ(RUN(weft_io_poll(POOL, sv[0], POLLIN, dl, OUT)), -ECANCELED);
	CHECK(weft_now() >= dl);
	dl = weft_now() + 20 * MS;
	CHECK_EQ(RUN(weft_io_accept(POOL, lfd, NULL, NULL, 0, dl, OUT)),
		 -ECANCELED);
	CHECK(weft_now() >= dl);
	dl = weft_now() + 20 * MS;
	CHECK_EQ(RUN(weft_io_read(POOL, fds[0], buf, sizeof(buf), -1, dl,
				  OUT)), -ECANCELED);
	CHECK(weft_now() >= dl);
	/* a deadline already past cancels a waiting op at once */
	CHECK_EQ(RUN(weft_io_recv(POOL, sv[0], buf, sizeof(buf), 0,
				  weft_now() - MS, OUT)), -ECANCELED);

	/* nothing was lost: the socket and the pipe still work */
	CHECK_EQ(send(sv[1], "ok", 2, 0), 2);
	CHECK_EQ(RUN(weft_io_recv(POOL, sv[0], buf, sizeof(buf), 0,
				  weft_now() + SOON, OUT)), 2);
	CHECK(memcmp(buf, "ok", 2) == 0);
	CHECK_EQ(write(fds[1], "pp", 2), 2);
	CHECK_EQ(RUN(weft_io_read(POOL, fds[0], buf, sizeof(buf), -1,
				  weft_now() + SOON, OUT)), 2);
	/* a deadline that does not expire does not disturb the op */
	CHECK_EQ(RUN(weft_io_send(POOL, sv[1], "abc", 3, 0,
				  weft_now() + SOON, OUT)), 3);
	CHECK_EQ(RUN(weft_io_recv(POOL, sv[0], buf, sizeof(buf), 0,
				  weft_now() + SOON, OUT)), 3);
	close2(fds);
	close2(sv);
	close(lfd);
}

/* An op still waiting at its deadline completes with -ECANCELED, never
 * before the deadline; the descriptor is left fine. */
Test(io, deadline_cancels_a_waiting_op_not_before_it, .timeout = TMO)
{
	run_all_modes(deadline_body, NULL);
}

/*
 * A write bigger than a pipe's free space, nobody reading: part of it fits
 * at once, the rest would wait for ever. Its deadline, or a cancel, must
 * end it (with the partial count, -EINTR or -ECANCELED: weft/io.h). The
 * wait is bounded so that a write that is never interrupted fails the
 * test with a message instead of hanging it.
 */
static void check_pipe_write_ends(bool by_cancel)
{
	struct weft_pool *pool = io_pool(2);
	const size_t len = 200 * 1024;
	char *big = calloc(1, len);
	struct weft_future *f = NULL;
	int64_t dl = by_cancel ? WEFT_FOREVER : weft_now() + 20 * MS;
	int64_t r;
	int fds[2];

	cr_assert_not_null(big);
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	cr_assert_eq(weft_io_write(pool, fds[1], big, len, -1, dl, &f), 0);
	if (by_cancel) {
		settle();
		r = weft_future_cancel(f);
		cr_assert(r == -EBUSY || r == -EALREADY, "cancel = %lld",
			  (long long)r);
	}
	cr_assert_eq(weft_future_wait_until(f, weft_now() + SOON), 0,
		     "the write was not ended by its %s",
		     by_cancel ? "cancel" : "deadline");
	r = weft_io_result(f);
	cr_assert((r > 0 && r < (int64_t)len) || r == -EINTR ||
		  r == -ECANCELED, "result %lld", (long long)r);
	weft_future_unref(f);
	close2(fds);
	free(big);
	weft_pool_destroy(pool);
}

Test(io, deadline_ends_a_pipe_write_nobody_reads, .timeout = TMO)
{
	check_pipe_write_ends(false);
}

Test(io, cancel_ends_a_pipe_write_nobody_reads, .timeout = TMO)
{
	check_pipe_write_ends(true);
}

/* ---- a cancelled task waiting in weft_io_await() ----------------------- */

struct cancelled_recv {
	int fd;
	atomic_int started;
	atomic_int done;
	int64_t r;
	unsigned char buf[64];
	unsigned char got[64];
};

static int cancelled_recv_task(void *arg, void **result)
{
	struct cancelled_recv *a = arg;
	struct weft_future *f = NULL;
	int rc;

	(void)result;
	rc = weft_io_recv(NULL, a->fd, a->buf, sizeof(a->buf), 0,
			  WEFT_FOREVER, &f);
	atomic_store(&a->started, 1);
	if (rc != 0) {
		a->r = NOT_RUN;
		return rc;
	}
	a->r = weft_io_await(f);
	/* From here the buffer is the task's again: whatever it holds now
	 * was written by the op before it completed. Anything the op wrote
	 * later would overwrite the canary. */
	if (a->r > 0 && a->r <= (int64_t)sizeof(a->buf))
		memcpy(a->got, a->buf, (size_t)a->r);
	memset(a->buf, CANARY, sizeof(a->buf));
	atomic_store(&a->done, 1);
	return 0;
}

/* A task cancelled while it awaits a recv: the await returns -ECANCELED
 * only once the op itself has completed, so data sent afterwards is not
 * taken and the buffer is never written after the await returned. */
Test(io, cancelled_task_await_returns_after_the_op_completed, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct cancelled_recv a = {.r = NOT_RUN};
	struct weft_future *tf = NULL;
	char got[8];
	int sv[2];

	cr_assert_eq(spair(sv, 0), 0);
	a.fd = sv[0];
	memset(a.buf, 0x11, sizeof(a.buf));
	cr_assert_eq(weft_submit(pool, cancelled_recv_task, &a, &tf), 0);
	cr_assert(wait_int(&a.started, 1));
	settle();
	cr_assert_eq(weft_future_cancel(tf), -EBUSY);
	cr_assert_eq(weft_future_wait(tf), 0);
	weft_future_unref(tf);
	cr_assert_eq(atomic_load(&a.done), 1);
	cr_assert_eq(a.r, -ECANCELED);
	cr_assert(all_bytes(a.buf, sizeof(a.buf), CANARY));
	cr_assert_eq(send(sv[1], "late", 4, 0), 4);
	cr_assert(read_all_plain(sv[0], got, 4), "the data was taken");
	cr_assert(memcmp(got, "late", 4) == 0);
	cr_assert(all_bytes(a.buf, sizeof(a.buf), CANARY),
		  "the buffer was written after weft_io_await() returned");
	close2(sv);
	weft_pool_destroy(pool);
}

/* The same with the data racing the cancel: the await returns either the
 * data or -ECANCELED (-EINTR allowed too), and in no case is the buffer
 * written after it returned. */
Test(io, cancelled_task_await_racing_data_never_writes_late, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	char got[16];
	int sv[2];

	cr_assert_eq(spair(sv, 0), 0);
	for (int i = 0; i < 60; i++) {
		struct cancelled_recv a = {.fd = sv[0], .r = NOT_RUN};
		struct weft_future *tf = NULL;
		ssize_t n;
		int rc;

		memset(a.buf, 0x11, sizeof(a.buf));
		cr_assert_eq(weft_submit(pool, cancelled_recv_task, &a, &tf),
			     0);
		cr_assert(wait_int(&a.started, 1));
		if (i % 3 == 0)
			cr_assert_eq(send(sv[1], "data", 4, 0), 4);
		rc = weft_future_cancel(tf);
		cr_assert(rc == -EBUSY || rc == -EALREADY, "cancel = %d", rc);
		if (i % 3 == 1)
			cr_assert_eq(send(sv[1], "data", 4, 0), 4);
		cr_assert_eq(weft_future_wait(tf), 0);
		weft_future_unref(tf);
		cr_assert(a.r == -ECANCELED || a.r == -EINTR ||
			  (a.r > 0 && a.r <= 4),
			  "round %d: %lld", i, (long long)a.r);
		if (a.r > 0)
			cr_assert(memcmp(a.got, "data", (size_t)a.r) == 0);
		/* drain what the op did not take (i % 3 == 2 sent none) */
		while ((n = recv(sv[0], got, sizeof(got), MSG_DONTWAIT)) > 0)
			;
		/* nothing is left reading: a new message arrives whole */
		cr_assert_eq(send(sv[1], "next", 4, 0), 4);
		cr_assert(read_all_plain(sv[0], got, 4), "round %d", i);
		cr_assert(memcmp(got, "next", 4) == 0);
		cr_assert(all_bytes(a.buf, sizeof(a.buf), CANARY),
			  "round %d: the buffer was written after the await "
			  "returned", i);
	}
	close2(sv);
	weft_pool_destroy(pool);
}

/* A cancelling shutdown wakes tasks awaiting I/O: each await returns
 * -ECANCELED (after its op completed) and the shutdown finishes. */
Test(io, cancelling_shutdown_ends_io_awaits, .timeout = TMO)
{
	enum { N = 8 };
	struct weft_pool *pool = io_pool(2);
	struct cancelled_recv *a = calloc(N, sizeof(*a));
	struct weft_future *tf[N];
	int sv[2];

	cr_assert_not_null(a);
	cr_assert_eq(spair(sv, 0), 0);
	for (int i = 0; i < N; i++) {
		a[i].fd = sv[0];
		a[i].r = NOT_RUN;
		cr_assert_eq(weft_submit(pool, cancelled_recv_task, &a[i],
					 &tf[i]), 0);
	}
	for (int i = 0; i < N; i++)
		cr_assert(wait_int(&a[i].started, 1));
	cr_assert_eq(weft_pool_shutdown(pool, WEFT_SHUTDOWN_CANCEL,
					weft_now() + SOON), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(weft_future_try_wait(tf[i]), 0);
		weft_future_unref(tf[i]);
		cr_assert_eq(a[i].r, -ECANCELED, "task %d: %lld", i,
			     (long long)a[i].r);
	}
	weft_pool_destroy(pool);
	close2(sv);
	free(a);
}

/* An op nobody waits for when the pool is destroyed still completes (its
 * future outlives the pool), with an error. */
Test(io, destroy_completes_ops_in_flight, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct weft_future *f = NULL;
	char buf[8];
	int sv[2];

	cr_assert_eq(spair(sv, 0), 0);
	cr_assert_eq(weft_io_recv(pool, sv[0], buf, sizeof(buf), 0,
				  WEFT_FOREVER, &f), 0);
	weft_pool_destroy(pool);
	cr_assert_eq(weft_future_wait_until(f, weft_now() + SOON), 0);
	cr_assert_lt(weft_io_result(f), 0, "result %lld",
		     (long long)weft_io_result(f));
	weft_future_unref(f);
	close2(sv);
}

/* A timeout whose deadline is far off when the pool is destroyed ends
 * cancelled, not as if its time had come. */
Test(io, destroy_cancels_a_pending_timeout, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct weft_future *f = NULL;

	cr_assert_eq(weft_io_timeout(pool, weft_now() + 3600 * 1000 * MS, &f),
		     0);
	weft_pool_destroy(pool);
	cr_assert_eq(weft_future_try_wait(f), 0);
	cr_assert_eq(weft_io_result(f), -ECANCELED, "result %lld",
		     (long long)weft_io_result(f));
	weft_future_unref(f);
}

/* ---- futures from I/O compose with the rest ---------------------------- */

static int then_result(struct weft_future *ante, void *arg, void **result)
{
	(void)arg;
	*result = (void *)(intptr_t)weft_io_result(ante);
	return 0;
}

/* weft_future_then() and weft_when_all() take I/O futures. */
Test(io, io_futures_compose_with_then_and_when_all, .timeout = TMO)
{
	struct weft_pool *pool = io_pool(2);
	struct weft_future *f[3], *g = NULL, *all = NULL;
	char buf[8];
	void *v = NULL;

	cr_assert_eq(weft_io_timeout(pool, weft_now() + 5 * MS, &f[0]), 0);
	cr_assert_eq(weft_future_then(pool, f[0], then_result, NULL, &g), 0);
	cr_assert_eq(weft_future_get(g, &v), 0);
	cr_assert_eq((intptr_t)v, 0);
	weft_future_unref(g);
	weft_future_unref(f[0]);

	cr_assert_eq(weft_io_nop(pool, WEFT_FOREVER, &f[0]), 0);
	cr_assert_eq(weft_io_timeout(pool, weft_now() + 5 * MS, &f[1]), 0);
	cr_assert_eq(weft_io_read(pool, BAD_FD, buf, 8, 0, WEFT_FOREVER,
				  &f[2]), 0);
	cr_assert_eq(weft_when_all(f, 3, &all), 0);
	cr_assert_eq(weft_future_wait(all), 0);
	cr_assert_eq(weft_future_error(all), -EBADF);
	weft_future_unref(all);
	for (int i = 0; i < 3; i++)
		weft_future_unref(f[i]);
	weft_pool_destroy(pool);
}

/* ---- many at once ------------------------------------------------------ */

enum { FLOOD_TASKS = 50, FLOOD_OPS = 20, FLOOD_READ = 64 };

struct flood {
	int fd;
	atomic_int bad;
	char first[256];
	pthread_mutex_t mu; /* protects first */
};

struct flooder {
	struct flood *fl;
	int index;
	unsigned char buf[FLOOD_OPS][FLOOD_READ];
};

static void flood_bad(struct flood *fl, const char *what, int i, int k,
		      int64_t r)
{
	if (atomic_fetch_add(&fl->bad, 1) == 0) {
		pthread_mutex_lock(&fl->mu);
		snprintf(fl->first, sizeof(fl->first),
			 "flooder %d op %d: %s (%lld)", i, k, what,
			 (long long)r);
		pthread_mutex_unlock(&fl->mu);
	}
}

/* Start FLOOD_OPS ops (nops and preads), then wait for all of them. */
static int flooder_task(void *arg, void **result)
{
	struct flooder *w = arg;
	struct flood *fl = w->fl;
	struct weft_future *f[FLOOD_OPS];

	(void)result;
	for (int k = 0; k < FLOOD_OPS; k++) {
		int64_t off = (int64_t)(w->index * FLOOD_OPS + k) * FLOOD_READ;
		int rc = k % 2 ? weft_io_nop(NULL, WEFT_FOREVER, &f[k])
			       : weft_io_read(NULL, fl->fd, w->buf[k],
					      FLOOD_READ, off, WEFT_FOREVER,
					      &f[k]);

		if (rc) {
			flood_bad(fl, "start", w->index, k, rc);
			f[k] = NULL;
		}
	}
	for (int k = 0; k < FLOOD_OPS; k++) {
		size_t off = (size_t)(w->index * FLOOD_OPS + k) * FLOOD_READ;
		int64_t r;

		if (!f[k])
			continue;
		r = weft_io_await(f[k]);
		if (r != (k % 2 ? 0 : FLOOD_READ))
			flood_bad(fl, "result", w->index, k, r);
		else if (k % 2 == 0 && !is_pat(w->buf[k], FLOOD_READ, off))
			flood_bad(fl, "content", w->index, k, r);
	}
	return 0;
}

/* With io_entries = 2 (a completion queue of 4), a thousand ops in
 * flight from fifty tasks all complete, each with its own result. */
Test(io, thousand_ops_through_a_tiny_ring, .timeout = TMO)
{
	struct weft_pool *pool = io_pool_opts(2, 2, WEFT_IO_AUTO);
	size_t size = (size_t)FLOOD_TASKS * FLOOD_OPS * FLOOD_READ;
	struct flooder *w = calloc(FLOOD_TASKS, sizeof(*w));
	struct weft_future *tf[FLOOD_TASKS];
	struct flood fl = {.bad = 0};
	unsigned char *data = malloc(size);
	char path[PATH_LEN];

	cr_assert(w && data);
	fill(data, size, 0);
	pthread_mutex_init(&fl.mu, NULL);
	fl.fd = make_tmp(path, data, size);
	cr_assert_geq(fl.fd, 0);
	unlink(path);
	for (int i = 0; i < FLOOD_TASKS; i++) {
		w[i].fl = &fl;
		w[i].index = i;
		cr_assert_eq(weft_submit(pool, flooder_task, &w[i], &tf[i]), 0);
	}
	for (int i = 0; i < FLOOD_TASKS; i++) {
		cr_assert_eq(weft_future_wait(tf[i]), 0);
		weft_future_unref(tf[i]);
	}
	cr_assert_eq(atomic_load(&fl.bad), 0, "%d bad: first %s",
		     atomic_load(&fl.bad), fl.first);
	close(fl.fd);
	pthread_mutex_destroy(&fl.mu);
	free(data);
	free(w);
	weft_pool_destroy(pool);
}

struct poller {
	int fd;
	atomic_int *waiting;
	int64_t r;
};

static int poller_task(void *arg, void **result)
{
	struct poller *p = arg;
	struct weft_future *f = NULL;
	int rc;

	(void)result;
	rc = weft_io_poll(NULL, p->fd, POLLIN, WEFT_FOREVER, &f);
	atomic_fetch_add(p->waiting, 1);
	p->r = rc ? NOT_RUN : weft_io_await(f);
	return 0;
}

/* Five hundred tasks awaiting I/O on two workers: each await suspends
 * its task (if it blocked the worker, no more than two would ever start
 * waiting), and one byte of data wakes them all. */
Test(io, five_hundred_awaits_do_not_block_two_workers, .timeout = TMO)
{
	enum { N = 500 };
	struct weft_pool *pool = io_pool(2);
	struct poller *p = calloc(N, sizeof(*p));
	struct weft_future **tf = calloc(N, sizeof(*tf));
	atomic_int waiting = 0;
	int sv[2];

	cr_assert(p && tf);
	cr_assert_eq(spair(sv, 0), 0);
	for (int i = 0; i < N; i++) {
		p[i] = (struct poller){.fd = sv[0], .waiting = &waiting,
				       .r = NOT_RUN};
		cr_assert_eq(weft_submit(pool, poller_task, &p[i], &tf[i]), 0);
	}
	cr_assert(wait_int(&waiting, N), "only %d tasks started waiting",
		  atomic_load(&waiting));
	cr_assert_eq(send(sv[1], "!", 1, 0), 1);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(weft_future_wait(tf[i]), 0);
		weft_future_unref(tf[i]);
		cr_assert(p[i].r > 0 && (p[i].r & POLLIN), "task %d: %lld", i,
			  (long long)p[i].r);
	}
	close2(sv);
	free(tf);
	free(p);
	weft_pool_destroy(pool);
}

/* ---- the loop helpers -------------------------------------------------- */

static void read_exact_file_body(struct ctx *c)
{
	unsigned char data[1000], buf[1000];
	char path[PATH_LEN];
	int fd;

	fill(data, sizeof(data), 42);
	fd = make_tmp(path, data, sizeof(data));
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	CHECK_EQ(weft_io_read_exact(POOL, fd, buf, 600, 0, WEFT_FOREVER), 600);
	CHECK(memcmp(buf, data, 600) == 0);
	/* end of file first: the short count */
	CHECK_EQ(weft_io_read_exact(POOL, fd, buf, 600, 800, WEFT_FOREVER),
		 200);
	CHECK(memcmp(buf, data + 800, 200) == 0);
	CHECK_EQ(weft_io_read_exact(POOL, fd, buf, 10, 1000, WEFT_FOREVER), 0);
	CHECK_EQ(weft_io_read_exact(POOL, fd, buf, 0, 0, WEFT_FOREVER), 0);
	/* at the file position, which advances */
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	CHECK_EQ(weft_io_read_exact(POOL, fd, buf, 300, -1, WEFT_FOREVER),
		 300);
	CHECK_EQ(weft_io_read_exact(POOL, fd, buf + 300, 800, -1,
				    WEFT_FOREVER), 700);
	CHECK(memcmp(buf, data, 1000) == 0);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 1000);
	CHECK_EQ(weft_io_read_exact(POOL, fd, buf, 10, -1, WEFT_FOREVER), 0);
	close(fd);
}

/* read_exact reads all it was asked, or up to the end of file. */
Test(io, read_exact_stops_only_at_end_of_file, .timeout = TMO)
{
	run_all_modes(read_exact_file_body, NULL);
}

struct dribbler {
	int fd;
	size_t len, chunk;
	int r;
};

/* Writes len bytes of the pattern in small chunks with sleeps between,
 * then closes its end: a reader sees many short reads, then EOF. */
static int dribbler_task(void *arg, void **result)
{
	struct dribbler *d = arg;
	unsigned char buf[256];

	(void)result;
	for (size_t off = 0; off < d->len; off += d->chunk) {
		size_t n = d->len - off < d->chunk ? d->len - off : d->chunk;

		fill(buf, n, off);
		if (write(d->fd, buf, n) != (ssize_t)n) {
			d->r = -errno;
			break;
		}
		weft_sleep(MS);
	}
	close(d->fd);
	return 0;
}

static void read_exact_pipe_body(struct ctx *c)
{
	struct dribbler d = {.len = 1000, .chunk = 100};
	struct weft_future *tf = NULL;
	unsigned char buf[1000];
	int fds[2];

	CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
	d.fd = fds[1];
	CHECK_EQ(weft_submit(c->pool, dribbler_task, &d, &tf), 0);
	CHECK_EQ(weft_io_read_exact(POOL, fds[0], buf, sizeof(buf), -1,
				    WEFT_FOREVER), 1000);
	CHECK(is_pat(buf, sizeof(buf), 0));
	CHECK_EQ(weft_io_read_exact(POOL, fds[0], buf, 10, -1, WEFT_FOREVER),
		 0);
	CHECK_EQ(weft_future_wait(tf), 0);
	CHECK_EQ(d.r, 0);
	weft_future_unref(tf);
	close(fds[0]);
}

/* read_exact loops over the short reads of a pipe fed in chunks. */
Test(io, read_exact_loops_over_short_reads, .timeout = TMO)
{
	run_all_modes(read_exact_pipe_body, NULL);
}

static void helper_deadline_body(struct ctx *c)
{
	unsigned char *big = malloc(1 << 20);
	char buf[8];
	int fds[2];
	int64_t dl, r;

	CHECK(big != NULL);
	if (!big)
		return;
	memset(big, 1, 1 << 20);
	CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
	/* nobody writes */
	dl = weft_now() + 20 * MS;
	r = weft_io_read_exact(POOL, fds[0], buf, sizeof(buf), -1, dl);
	CHECK(r == -ECANCELED || r == -ETIMEDOUT);
	CHECK(weft_now() >= dl);
	/* nobody reads: the pipe fills */
	dl = weft_now() + 20 * MS;
	r = weft_io_write_all(POOL, fds[1], big, 1 << 20, -1, dl);
	CHECK(r == -ECANCELED || r == -ETIMEDOUT);
	CHECK(weft_now() >= dl);
	close2(fds);
	free(big);
}

/* The deadline of read_exact and write_all bounds the whole loop. */
Test(io, helpers_end_at_their_deadline, .timeout = TMO)
{
	run_all_modes(helper_deadline_body, NULL);
}

struct drain {
	int fd;
	unsigned char *buf;
	size_t len, got;
	int64_t r;
};

/* Reads through the io thread until EOF or @len bytes. */
static int drain_task(void *arg, void **result)
{
	struct drain *d = arg;

	(void)result;
	while (d->got < d->len) {
		struct weft_future *f = NULL;
		size_t n = d->len - d->got < 7000 ? d->len - d->got : 7000;
		int rc = weft_io_read(NULL, d->fd, d->buf + d->got, n, -1,
				      WEFT_FOREVER, &f);

		d->r = rc ? rc : weft_io_await(f);
		if (d->r <= 0)
			break;
		d->got += (size_t)d->r;
	}
	return 0;
}

static void write_all_pipe_body(struct ctx *c)
{
	const size_t len = (1 << 20) + 12345; /* well over a pipe's buffer */
	unsigned char *out = malloc(len), *in = calloc(1, len);
	struct drain d = {.len = len};
	struct weft_future *tf = NULL;
	int fds[2];

	CHECK(out && in);
	if (!out || !in)
		goto out;
	fill(out, len, 9);
	CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
	d.fd = fds[0];
	d.buf = in;
	CHECK_EQ(weft_submit(c->pool, drain_task, &d, &tf), 0);
	CHECK_EQ(weft_io_write_all(POOL, fds[1], out, len, -1, WEFT_FOREVER),
		 len);
	CHECK_EQ(weft_future_wait(tf), 0);
	weft_future_unref(tf);
	CHECK_EQ(d.got, len);
	CHECK(memcmp(in, out, len) == 0);
	close2(fds);
out:
	free(in);
	free(out);
}

/* write_all pushes more than a pipe holds, through short writes, to a
 * reader task; every byte arrives in order. */
Test(io, write_all_through_a_pipe, .timeout = TMO)
{
	run_all_modes(write_all_pipe_body, NULL);
}

static void write_all_file_body(struct ctx *c)
{
	const size_t len = 200 * 1024;
	unsigned char *out = malloc(len), *in = malloc(len);
	char path[PATH_LEN];
	int fd = make_tmp(path, NULL, 0);

	CHECK(fd >= 0 && out && in);
	if (fd < 0 || !out || !in)
		goto out;
	unlink(path);
	fill(out, len, 1);
	CHECK_EQ(weft_io_write_all(POOL, fd, out, len, 4096, WEFT_FOREVER),
		 len);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
	CHECK_EQ(pread(fd, in, len, 4096), len);
	CHECK(memcmp(in, out, len) == 0);
	CHECK_EQ(weft_io_write_all(POOL, fd, out, 100, -1, WEFT_FOREVER), 100);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 100);
	CHECK_EQ(weft_io_write_all(POOL, fd, out, 0, -1, WEFT_FOREVER), 0);
	close(fd);
out:
	free(in);
	free(out);
}

/* write_all to a file at an offset leaves the position; at -1 it moves. */
Test(io, write_all_to_a_file, .timeout = TMO)
{
	run_all_modes(write_all_file_body, NULL);
}

static void read_file_body(struct ctx *c)
{
	const size_t len = 300 * 1024 + 17;
	unsigned char *out = malloc(len);
	char path[PATH_LEN];
	void *data = NULL;
	size_t got = 0;
	int fd, dfd;

	CHECK(out != NULL);
	if (!out)
		return;
	fill(out, len, 123);
	fd = make_tmp(path, out, len);
	CHECK(fd >= 0);
	if (fd < 0)
		goto out;
	CHECK_EQ(weft_io_read_file(POOL, AT_FDCWD, path, WEFT_FOREVER, &data,
				   &got), 0);
	CHECK_EQ(got, len);
	CHECK(data != NULL);
	if (data && got == len) {
		CHECK(memcmp(data, out, len) == 0);
		CHECK_EQ(((char *)data)[len], 0);
	}
	free(data);
	/* relative to a directory descriptor */
	data = NULL;
	got = 0;
	dfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK_EQ(weft_io_read_file(POOL, dfd, path + strlen("/tmp/"),
				   WEFT_FOREVER, &data, &got), 0);
	CHECK_EQ(got, len);
	free(data);
	close(dfd);
	/* an empty file: an empty string */
	CHECK_EQ(ftruncate(fd, 0), 0);
	data = NULL;
	got = 7;
	CHECK_EQ(weft_io_read_file(POOL, AT_FDCWD, path, WEFT_FOREVER, &data,
				   &got), 0);
	CHECK_EQ(got, 0);
	CHECK(data != NULL);
	if (data)
		CHECK_EQ(((char *)data)[0], 0);
	free(data);
	unlink(path);
	close(fd);
out:
	free(out);
}

/* read_file reads a file of a few hundred KiB whole, NUL-terminated. */
Test(io, read_file_reads_a_whole_file, .timeout = TMO)
{
	run_all_modes(read_file_body, NULL);
}

/* Plain read of a whole file, for comparison. */
static size_t slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while (got < cap && (n = read(fd, buf + got, cap - got)) > 0)
		got += (size_t)n;
	close(fd);
	return got;
}

static void read_file_proc_body(struct ctx *c)
{
	static const char *const paths[] = {"/proc/self/environ",
					    "/proc/self/cmdline"};
	char *want = malloc(1 << 20);
	void *data;
	size_t got;

	CHECK(want != NULL);
	if (!want)
		return;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		size_t n = slurp(paths[i], want, 1 << 20);

		data = NULL;
		got = 0;
		CHECK_EQ(weft_io_read_file(POOL, AT_FDCWD, paths[i],
					   WEFT_FOREVER, &data, &got), 0);
		if (got != n || !data || memcmp(data, want, n) != 0)
			ctx_fail(c, __LINE__, "%s: %zu bytes, want %zu",
				 paths[i], got, n);
		free(data);
	}
	/* one that changes as it is read: still read to its end */
	data = NULL;
	got = 0;
	CHECK_EQ(weft_io_read_file(POOL, AT_FDCWD, "/proc/self/maps",
				   WEFT_FOREVER, &data, &got), 0);
	CHECK(got > 0 && data);
	if (got > 0 && data) {
		CHECK_EQ(strlen(data), got);
		CHECK_EQ(((char *)data)[got - 1], '\n');
	}
	free(data);
	free(want);
}

/* Files whose size statx does not tell (procfs says 0) are read to
 * their end. */
Test(io, read_file_reads_procfs_to_the_end, .timeout = TMO)
{
	run_all_modes(read_file_proc_body, NULL);
}

static void read_file_missing_body(struct ctx *c)
{
	void *data = NULL;
	size_t got = 0;
	char path[PATH_LEN];
	int fd = make_tmp(path, NULL, 0);

	CHECK_EQ(weft_io_read_file(POOL, AT_FDCWD, "/nonexistent/weft-io",
				   WEFT_FOREVER, &data, &got), -ENOENT);
	CHECK(data == NULL);
	CHECK_EQ(weft_io_read_file(POOL, AT_FDCWD, "/tmp", WEFT_FOREVER,
				   &data, &got), -EISDIR);
	CHECK(data == NULL);
	/* a file one cannot read */
	if (fd >= 0 && geteuid() != 0) {
		CHECK_EQ(fchmod(fd, 0), 0);
		CHECK_EQ(weft_io_read_file(POOL, AT_FDCWD, path, WEFT_FOREVER,
					   &data, &got), -EACCES);
		CHECK(data == NULL);
	}
	if (fd >= 0) {
		unlink(path);
		close(fd);
	}
}

/* read_file's errors come back with nothing allocated (ASan's leak check
 * sees a buffer left behind) and *data left NULL. */
Test(io, read_file_errors_leave_nothing, .timeout = TMO)
{
	run_all_modes(read_file_missing_body, NULL);
}
