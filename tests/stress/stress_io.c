/*
 * stress_io.c - I/O through the io thread from many tasks and threads at
 * once, with cancels and deadlines racing completions.
 *
 * Phases:
 *   ring     a pool whose ring has 4 entries (8 in flight at most: the
 *            rest wait in the io thread), 2 workers.
 *   default  the same mix with the default ring, 3 workers.
 *   shutdown tasks parked in weft_io_await() on reads that never get data,
 *            ended by a cancelling weft_pool_shutdown().
 *
 * In the first two, 2 outside threads (a pthread and a C11 thread, except
 * under TSan) submit batches of tasks, cancel some of them (at once or a
 * little later), and do operations of their own with blocking waits. Each
 * task, and each outside thread, runs a random mix of: nop; an echo
 * through its own socketpair (send, then recv until all came back, or the
 * recv started first); pread and preadv of a shared temp file at random
 * offsets, some past its end; a recv that no data will ever reach, ended
 * by a short deadline; a recv or nop cancelled right after its start; a
 * recv with a deadline published in a table, from which every op cancels
 * a random entry (so cancels come from other tasks and threads, racing the
 * deadline); timeouts, some cancelled.
 *
 * Checks: every operation's future completes exactly once, its state and
 * error agree (stress_future.c), and weft_io_result() agrees with what
 * weft_io_await() returned; each result is one the operation allows: the
 * transfer's full count and the right bytes, 0 for nop and timeouts,
 * -ECANCELED only where a cancel, a deadline or the task's own cancel
 * could cause it; a deadline never ends an op before it has passed, nor
 * does a timeout complete early; a cancel of an I/O future is -EBUSY or
 * -EALREADY, never 0, and -EALREADY means it was complete. Task futures
 * obey the usual rules (stress_verify()). A watchdog fails the run after
 * 30 s without progress (--watchdog / WEFT_STRESS_WATCHDOG).
 *
 * Runs with whichever backend WEFT_IO_BACKEND selects (printed).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <weft/io.h>

#include "stress.h"

#define US 1000LL
#define MS (1000LL * 1000)

enum {
	FILE_SIZE = 256 * 1024,
	OPS_PER_TASK = 8,
	BATCH = 48,
	THREADS = 2,
	NSLOTS = 32,
};

static struct stress_track tr;
static struct weft_pool *pool;
static int file_fd = -1;

static _Atomic uint64_t n_ops, n_op_cancels, n_deadlines, n_echo_bytes,
	n_task_cancels;

static void count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Byte @i of the file (and of the echo payloads). */
static unsigned char pat(size_t i)
{
	return (unsigned char)((i * 7u) ^ (i >> 8) ^ (i >> 17) ^ 0x3c);
}

static bool is_pat(const unsigned char *p, size_t n, size_t start)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pat(start + i))
			return false;
	return true;
}

/* ---- one operation ------------------------------------------------------ */

/*
 * Where an op runs: in a task (pool NULL half the time, waits suspend) or
 * on an outside thread. A task's cancel makes any await in it return
 * -ECANCELED; weft_task_cancelled() is sticky, so reading it after the
 * await tells whether that was allowed.
 */
struct who {
	bool task;
	uint64_t rng;
	int a, b; /* a socketpair: echo goes a -> b; nobody ever sends to a */
	size_t task_id; /* the task's record (when task) */
};

static struct weft_pool *pool_for(struct who *w)
{
	return w->task && stress_below(&w->rng, 2) ? NULL : pool;
}

static bool cancelled(struct who *w)
{
	return w->task && weft_task_cancelled();
}

/* Register a started op; false (and a failure) if the start failed. */
static bool track(int rc, struct weft_future **fp, const char *what,
		  size_t *id)
{
	struct weft_future *f = *fp; /* read after the call that set it */

	STRESS_CHECK(rc == 0 && f, "%s: start = %d", what, rc);
	if (rc || !f)
		return false;
	*id = stress_track_alloc(&tr, 1);
	stress_flag(&tr, *id, REC_NO_TASK | REC_SUBMITTED);
	stress_watch(f, *id);
	count(&n_ops, 1);
	return true;
}

/* Await @f (dropping the caller's reference) and check the future agrees
 * with the result. */
static int64_t await_op(struct weft_future *f, size_t id)
{
	int64_t r;

	weft_future_ref(f);
	stress_where("weft_io_await", id);
	r = weft_io_await(f);
	STRESS_CHECK(weft_future_try_wait(f) == 0,
		     "op %zu: the await returned %lld, still pending", id,
		     (long long)r);
	STRESS_CHECK(weft_io_result(f) == r,
		     "op %zu: await gave %lld, weft_io_result %lld", id,
		     (long long)r, (long long)weft_io_result(f));
	weft_future_unref(f);
	stress_progress();
	return r;
}

static int cancel_op(struct weft_future *f, size_t id)
{
	int rc = stress_cancel(&tr, id, f);

	STRESS_CHECK(rc == -EBUSY || rc == -EALREADY,
		     "op %zu: cancel of an I/O future = %d", id, rc);
	if (rc == -EALREADY)
		STRESS_CHECK(weft_future_try_wait(f) == 0,
			     "op %zu: cancel -EALREADY, not complete", id);
	count(&n_op_cancels, 1);
	return rc;
}

/* -ECANCELED is allowed when @maybe, or the caller's task was cancelled. */
static void check_result(struct who *w, int64_t r, int64_t want, bool maybe,
			 const char *what, size_t id)
{
	if (r == want)
		return;
	if (r == -ECANCELED && (maybe || cancelled(w)))
		return;
	stress_fail("op %zu %s: result %lld, want %lld%s", id, what,
		    (long long)r, (long long)want,
		    maybe || cancelled(w) ? " or -ECANCELED" : "");
}

static void op_nop(struct who *w)
{
	struct weft_future *f = NULL;
	size_t id;

	if (!track(weft_io_nop(pool_for(w), WEFT_FOREVER, &f), &f, "nop", &id))
		return;
	check_result(w, await_op(f, id), 0, false, "nop", id);
}

/* Reopen the socketpair (after an interrupted echo left bytes behind). */
static bool conn_reset(struct who *w)
{
	int sv[2];

	if (w->a >= 0) {
		close(w->a);
		close(w->b);
	}
	w->a = w->b = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		stress_fail("socketpair: %s", strerror(errno));
		return false;
	}
	w->a = sv[0];
	w->b = sv[1];
	return true;
}

/*
 * Echo m bytes from a to b. Usually both halves go through the io thread,
 * the send first. Sometimes the recv starts first and a plain send() feeds
 * it: not a weft send, because that would be an op waiting behind the
 * recv's slot (a full ring, or every blocking-backend thread parked in a
 * recv like it), and nothing promises such an op ever runs.
 */
static void op_echo(struct who *w)
{
	unsigned char out[4096], in[4096];
	size_t m = 1 + (size_t)stress_below(&w->rng, sizeof(out));
	size_t seed = (size_t)stress_below(&w->rng, 1 << 20);
	struct weft_future *f = NULL;
	size_t id, got = 0;
	int64_t r;

	if (w->a < 0 && !conn_reset(w))
		return;
	for (size_t i = 0; i < m; i++)
		out[i] = pat(seed + i);
	if (stress_below(&w->rng, 4) == 0) {
		if (!track(weft_io_recv(pool_for(w), w->b, in, m, 0,
					WEFT_FOREVER, &f), &f, "echo recv", &id))
			return;
		STRESS_CHECK(send(w->a, out, m, MSG_NOSIGNAL) == (ssize_t)m,
			     "plain send: %s", strerror(errno));
	} else {
		if (!track(weft_io_send(pool_for(w), w->a, out, m, 0,
					WEFT_FOREVER, &f), &f, "echo send",
			   &id))
			return;
		r = await_op(f, id);
		f = NULL;
		if (r != (int64_t)m) {
			/* a cancelled task's send may also be cut short */
			if (!(cancelled(w) && (r == -EINTR || r >= 0)))
				check_result(w, r, (int64_t)m, false,
					     "echo send", id);
			goto broken;
		}
	}
	while (got < m) {
		if (!f && !track(weft_io_recv(pool_for(w), w->b, in + got,
					      m - got, 0, WEFT_FOREVER, &f),
				 &f, "echo recv", &id))
			goto broken;
		r = await_op(f, id);
		f = NULL;
		if (r <= 0 || (size_t)r > m - got) {
			check_result(w, r, (int64_t)(m - got), false,
				     "echo recv", id);
			goto broken;
		}
		got += (size_t)r;
	}
	STRESS_CHECK(is_pat(in, m, seed), "echo: %zu bytes came back wrong",
		     m);
	count(&n_echo_bytes, m);
	return;
broken:
	if (f)
		await_op(f, id);
	conn_reset(w);
}

static void op_pread(struct who *w)
{
	unsigned char buf[8192];
	size_t off = (size_t)stress_below(&w->rng, FILE_SIZE + 1024);
	size_t len = 1 + (size_t)stress_below(&w->rng, sizeof(buf));
	size_t want = off >= FILE_SIZE ? 0
		      : len < FILE_SIZE - off ? len
					      : FILE_SIZE - off;
	bool vec = stress_below(&w->rng, 3) == 0;
	struct weft_future *f = NULL;
	size_t id, cut = len / 2;
	struct iovec iov[2] = {{buf, cut}, {buf + cut, len - cut}};
	int64_t r;
	int rc;

	if (vec && cut > 0)
		rc = weft_io_readv(pool_for(w), file_fd, iov, 2, (int64_t)off,
				   WEFT_FOREVER, &f);
	else
		rc = weft_io_read(pool_for(w), file_fd, buf, len, (int64_t)off,
				  WEFT_FOREVER, &f);
	if (!track(rc, &f, "pread", &id))
		return;
	r = await_op(f, id);
	check_result(w, r, (int64_t)want, false, "pread", id);
	if (r == (int64_t)want)
		STRESS_CHECK(is_pat(buf, want, off),
			     "pread %zu at %zu: wrong bytes", want, off);
}

/* A recv on the side nobody sends to, ended by its deadline. */
static void op_deadline(struct who *w)
{
	char buf[64];
	int64_t dl = weft_now() + (int64_t)stress_below(&w->rng, 2 * MS);
	struct weft_future *f = NULL;
	size_t id;
	int64_t r;

	if (w->a < 0 && !conn_reset(w))
		return;
	if (!track(weft_io_recv(pool_for(w), w->a, buf, sizeof(buf), 0, dl,
				&f), &f, "deadline recv", &id))
		return;
	r = await_op(f, id);
	if (r == -ECANCELED) {
		int64_t now = weft_now();

		STRESS_CHECK(now >= dl || cancelled(w),
			     "op %zu: deadline recv ended %lld ns before its "
			     "deadline (%s, task flags %#x)", id,
			     (long long)(dl - now), w->task ? "task" : "thread",
			     w->task ? stress_flags(&tr, w->task_id) : 0);
		count(&n_deadlines, 1);
	} else {
		stress_fail("op %zu: deadline recv = %lld (nobody sends)", id,
			    (long long)r);
	}
}

/* Cancel right after the start: a recv that cannot complete on its own
 * (-EBUSY, then -ECANCELED), or a nop racing its completion. */
static void op_cancel_at_once(struct who *w)
{
	char buf[64];
	struct weft_future *f = NULL;
	size_t id;
	int64_t r;
	int rc;

	if (stress_below(&w->rng, 2)) {
		if (w->a < 0 && !conn_reset(w))
			return;
		if (!track(weft_io_recv(pool_for(w), w->a, buf, sizeof(buf), 0,
					WEFT_FOREVER, &f), &f, "recv", &id))
			return;
		rc = cancel_op(f, id);
		STRESS_CHECK(rc == -EBUSY,
			     "op %zu: cancel of a recv with no data = %d", id,
			     rc);
		r = await_op(f, id);
		STRESS_CHECK(r == -ECANCELED,
			     "op %zu: cancelled recv with no data = %lld", id,
			     (long long)r);
		return;
	}
	if (!track(weft_io_nop(pool_for(w), WEFT_FOREVER, &f), &f, "nop", &id))
		return;
	rc = cancel_op(f, id);
	r = await_op(f, id);
	/* -EALREADY: it had completed, on its own */
	check_result(w, r, 0, rc == -EBUSY, "cancelled nop", id);
	if (rc == -EALREADY)
		STRESS_CHECK(r == 0, "op %zu: nop complete before the cancel "
			     "= %lld", id, (long long)r);
}

/* Publish a recv with a deadline, cancel a random published op (perhaps
 * this one, perhaps one whose owner is long done), then await ours. */
static void op_cross_cancel(struct who *w)
{
	char buf[64];
	int64_t dl = weft_now() + 100 * US +
		     (int64_t)stress_below(&w->rng, 3 * MS);
	struct weft_future *f = NULL, *o;
	size_t id, oid;
	int64_t r;

	if (w->a < 0 && !conn_reset(w))
		return;
	if (!track(weft_io_recv(pool_for(w), w->a, buf, sizeof(buf), 0, dl,
				&f), &f, "published recv", &id))
		return;
	stress_table_put((unsigned)stress_rand(&w->rng), f, id);
	o = stress_table_get((unsigned)stress_rand(&w->rng), &oid);
	if (o) {
		cancel_op(o, oid);
		weft_future_unref(o);
	}
	r = await_op(f, id);
	STRESS_CHECK(r == -ECANCELED,
		     "op %zu: published recv with no data = %lld", id,
		     (long long)r);
}

static void op_timeout(struct who *w)
{
	int64_t dl = weft_now() + (int64_t)stress_below(&w->rng, 500 * US);
	bool cancel = stress_below(&w->rng, 4) == 0;
	struct weft_future *f = NULL;
	size_t id;
	int64_t r;
	int rc = 0;

	if (!track(weft_io_timeout(pool_for(w), dl, &f), &f, "timeout", &id))
		return;
	if (cancel)
		rc = cancel_op(f, id);
	r = await_op(f, id);
	check_result(w, r, 0, rc == -EBUSY, "timeout", id);
	if (r == 0) {
		int64_t now = weft_now();

		STRESS_CHECK(now >= dl,
			     "op %zu: timeout completed %lld ns early", id,
			     (long long)(dl - now));
	}
}

static void random_op(struct who *w)
{
	switch (stress_below(&w->rng, 8)) {
	case 0: op_nop(w); break;
	case 1: case 2: op_echo(w); break;
	case 3: op_pread(w); break;
	case 4: op_deadline(w); break;
	case 5: op_cancel_at_once(w); break;
	case 6: op_cross_cancel(w); break;
	default: op_timeout(w); break;
	}
}

/* ---- tasks and threads -------------------------------------------------- */

static int io_task(void *arg, void **result)
{
	struct stress_task_arg *t = arg;
	struct who w = {.task = true, .rng = t->seed, .a = -1, .b = -1,
			.task_id = t->id};

	stress_task_start(&tr, t->id);
	for (int i = 0; i < OPS_PER_TASK && !weft_task_cancelled(); i++)
		random_op(&w);
	if (w.a >= 0) {
		close(w.a);
		close(w.b);
	}
	if (weft_task_cancelled()) {
		stress_flag(&tr, t->id, REC_SAW_CANCEL);
		return -ECANCELED;
	}
	*result = stress_plan_value(t->id);
	return 0;
}

struct phase {
	size_t tasks_per_thread;
	size_t ops_per_thread;
};

static void own_op(void *w)
{
	random_op(w);
}

static void mix_thread(void *arg, unsigned index)
{
	struct phase *ph = arg;
	struct who w = {.task = false, .rng = stress_stream(7000 + index),
			.a = -1, .b = -1};
	/* A task may end FAILED -ECANCELED: an op's await it was in was
	 * cancelled and the task returned that. */
	struct stress_batches b = {
		.pool = pool, .t = &tr, .fn = io_task, .batch = BATCH,
		.tasks = ph->tasks_per_thread, .ops = ph->ops_per_thread,
		.own_op = own_op, .ctx = &w, .rng = &w.rng, .late_cancel = 16,
		.failed_cancel = true, .cancels = &n_task_cancels,
	};

	stress_run_batches(&b);
	if (w.a >= 0) {
		close(w.a);
		close(w.b);
	}
	stress_where("done", 0);
}

static const char *backend_name(int b)
{
	return b == WEFT_IO_URING	 ? "io_uring"
	       : b == WEFT_IO_BLOCKING ? "blocking"
				       : "?";
}

static struct weft_pool *io_pool(unsigned workers, unsigned entries,
				 const char *name)
{
	struct weft_pool_options o;
	struct weft_pool *p = NULL;
	int rc;

	weft_pool_options_init(&o);
	o.workers = workers;
	o.name = name;
	o.io_entries = entries;
	rc = weft_pool_create(&o, &p);
	if (rc == -EAGAIN)
		stress_skip("weft_pool_create: the system refused a thread");
	if (rc != 0) {
		stress_fail("weft_pool_create = %d", rc);
		exit(stress_finish());
	}
	rc = weft_io_backend(p);
	if (rc == -EAGAIN)
		stress_skip("the io thread could not start");
	if (rc != WEFT_IO_URING && rc != WEFT_IO_BLOCKING) {
		stress_fail("weft_io_backend = %d", rc);
		exit(stress_finish());
	}
	return p;
}

static void run_mix(const char *name, size_t tasks, size_t thread_ops,
		    unsigned workers, unsigned entries)
{
	struct phase ph = {
		.tasks_per_thread = tasks / THREADS,
		.ops_per_thread = thread_ops / THREADS,
	};
	struct stress_threads *t;
	int rc;

	stress_track_reset(&tr);
	pool = io_pool(workers, entries, name);
	stress_phase("%s: %zu tasks x %d ops, %zu thread ops, %u workers, "
		     "io_entries %u, backend %s", name, tasks, OPS_PER_TASK,
		     thread_ops, workers, entries,
		     backend_name(weft_io_backend(pool)));
	t = stress_threads_start(THREADS, mix_thread, &ph, name);
	stress_threads_join(t);
	rc = weft_pool_shutdown(pool, 0, WEFT_FOREVER);
	STRESS_CHECK(rc == 0, "shutdown = %d", rc);
	stress_table_clear();
	weft_pool_destroy(pool);
	pool = NULL;
	stress_verify(&tr, 0, atomic_load(&tr.next), false, false);
}

/* ---- phase: shutdown ---------------------------------------------------- */

struct parked {
	size_t id;
	int fd;
	_Atomic int *waiting;
	int64_t r;
};

static int parked_task(void *arg, void **result)
{
	struct parked *p = arg;
	struct weft_future *f = NULL;
	char buf[16];
	size_t id;

	(void)result;
	stress_task_start(&tr, p->id);
	if (!track(weft_io_recv(NULL, p->fd, buf, sizeof(buf), 0, WEFT_FOREVER,
				&f), &f, "parked recv", &id)) {
		atomic_fetch_add(p->waiting, 1);
		return -EIO;
	}
	atomic_fetch_add(p->waiting, 1);
	p->r = await_op(f, id);
	if (weft_task_cancelled())
		stress_flag(&tr, p->id, REC_SAW_CANCEL);
	return 0;
}

static void run_shutdown(size_t rounds)
{
	enum { N = 32 };
	struct parked p[N];
	struct weft_future *fs[N];

	stress_track_reset(&tr);
	for (size_t round = 0; round < rounds; round++) {
		_Atomic int waiting = 0;
		int sv[2];

		stress_phase("shutdown: round %zu of %zu", round + 1, rounds);
		pool = io_pool(2, 0, "shutdown");
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
			stress_fail("socketpair: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < N; i++) {
			p[i] = (struct parked){
				.id = stress_track_alloc(&tr, 1),
				.fd = sv[0],
				.waiting = &waiting,
				.r = INT64_MIN,
			};
			int rc = weft_submit(pool, parked_task, &p[i], &fs[i]);

			STRESS_CHECK(rc == 0, "submit = %d", rc);
			if (rc) {
				fs[i] = NULL;
				atomic_fetch_add(&waiting, 1);
				continue;
			}
			stress_flag(&tr, p[i].id, REC_SUBMITTED);
			stress_watch(fs[i], p[i].id);
		}
		/* let some of them reach their await (the others are
		 * cancelled queued, or in the middle of starting the recv) */
		int64_t give_up = weft_now() + 10000 * MS;

		while (atomic_load(&waiting) < N / 2 && weft_now() < give_up)
			stress_sleep_ns(100 * US);
		stress_where("shutdown(CANCEL)", round);
		int rc = weft_pool_shutdown(pool, WEFT_SHUTDOWN_CANCEL,
					    weft_now() + 20000 * MS);

		STRESS_CHECK(rc == 0, "cancelling shutdown = %d", rc);
		for (int i = 0; i < N; i++) {
			if (!fs[i])
				continue;
			STRESS_CHECK(weft_future_try_wait(fs[i]) == 0,
				     "task %zu pending after the shutdown",
				     p[i].id);
			/* a task that started its recv got -ECANCELED */
			STRESS_CHECK(p[i].r == INT64_MIN || p[i].r == -ECANCELED,
				     "parked task %zu: recv = %lld", p[i].id,
				     (long long)p[i].r);
			weft_future_unref(fs[i]);
		}
		weft_pool_destroy(pool);
		pool = NULL;
		close(sv[0]);
		close(sv[1]);
		stress_progress();
	}
	/* A cancelling shutdown may flag tasks cancelled without any cancel
	 * call: shutdown_cancel = true. */
	stress_verify(&tr, 0, atomic_load(&tr.next), false, true);
}

/* ---- main --------------------------------------------------------------- */

static void make_file(void)
{
	char path[] = "/tmp/weft-stress-io-XXXXXX";
	unsigned char *data = malloc(FILE_SIZE);
	size_t off = 0;

	file_fd = mkostemp(path, O_CLOEXEC);
	if (file_fd < 0 || !data) {
		stress_fail("temp file: %s", strerror(errno));
		exit(stress_finish());
	}
	unlink(path);
	for (size_t i = 0; i < FILE_SIZE; i++)
		data[i] = pat(i);
	while (off < FILE_SIZE) {
		ssize_t n = write(file_fd, data + off, FILE_SIZE - off);

		if (n <= 0) {
			stress_fail("writing the temp file: %s",
				    strerror(errno));
			exit(stress_finish());
		}
		off += (size_t)n;
	}
	free(data);
}

int main(int argc, char **argv)
{
	size_t n_tasks, n_thread_ops, cap;

	/* this program's default watchdog: 30 s (options still override) */
	setenv("WEFT_STRESS_WATCHDOG", "30", 0);
	stress_init(argc, argv, "stress_io");
	stress_table_init(NSLOTS);
	make_file();

	n_tasks = stress_scaled(20000, 2 * BATCH);
	n_thread_ops = stress_scaled(6000, 20);
	/* each task: its record and its ops (an echo may take a few) */
	cap = n_tasks * (1 + 4 * OPS_PER_TASK) + n_thread_ops * 4 + 1024;
	stress_track_init(&tr, cap);
	stress_track_default(&tr);

	run_mix("ring", n_tasks, n_thread_ops, 2, 4);
	run_mix("default", n_tasks, n_thread_ops, 3, 0);
	run_shutdown(stress_scaled(20, 2));

	printf("stress_io: %llu ops, %llu op cancels, %llu deadlines hit, "
	       "%llu echo bytes, %llu task cancels\n",
	       (unsigned long long)atomic_load(&n_ops),
	       (unsigned long long)atomic_load(&n_op_cancels),
	       (unsigned long long)atomic_load(&n_deadlines),
	       (unsigned long long)atomic_load(&n_echo_bytes),
	       (unsigned long long)atomic_load(&n_task_cancels));
	close(file_fd);
	stress_track_fini(&tr);
	return stress_finish();
}
