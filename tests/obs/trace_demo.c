/*
 * trace_demo - a small, recognisable workload for the trace writer
 * (weft/obs.h): run it, then open the file in Perfetto (ui.perfetto.dev),
 * check it with trace_check.py, or draw it with docs/trace2svg.py.
 *
 *   trace_demo OUT.json
 *
 * A pool of 2 workers with trace_events set runs, together:
 *
 *   demo_fib_root   a fork/join fib (weft_spawn/weft_join). Its first
 *                   child is evacuated when the root waits (0.1 ms) and
 *                   runs as a task of its own: a demo_fib slice. The
 *                   children an idle worker steals are demo_fib slices on
 *                   its track too (children joined inline are part of
 *                   their parent's run and have no slice of their own).
 *                   Repeated, up to 20 times, until a child was stolen
 *                   (counted by a task hook): steals depend on timing;
 *   demo_sleeper    tasks that weft_sleep() a few times: "wait" slices;
 *   demo_io         weft_io_nop() and weft_io_read() of a small temporary
 *                   file: "io" slices on the io thread's track, and the
 *                   task's waits for them;
 *   demo_blocker    one weft_run_blocking() of demo_blocking_call, which
 *                   runs on the blocking-call pool (no worker track) while
 *                   the task waits.
 *
 * then shuts the pool down and writes the trace with
 * weft_pool_trace_write(). The task functions are extern (not static) so
 * that the writer's dladdr() names them: link with -rdynamic.
 *
 * Exit status: 0, or 1 with a message on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/async.h>
#include <weft/future.h>
#include <weft/io.h>
#include <weft/obs.h>
#include <weft/pool.h>
#include <weft/task.h>

/* Extern on purpose (dladdr finds only dynamic symbols); declared here to
 * keep -Wmissing-prototypes quiet. */
int demo_fib(void *arg, void **result);
int demo_fib_root(void *arg, void **result);
int demo_sleeper(void *arg, void **result);
int demo_io(void *arg, void **result);
int demo_blocker(void *arg, void **result);
int demo_blocking_call(void *arg, void **result);

static struct weft_pool *pool;
static _Atomic unsigned long fib_stolen; /* by on_event() */
static char tmp_path[] = "/tmp/weft-trace-demo-XXXXXX";
static int tmp_fd = -1;

#define FIB_N 27
#define FIB_ROUNDS_MAX 20
#define SLEEPERS 4
#define IO_TASKS 3

static long fib_seq(long n)
{
	return n < 2 ? n : fib_seq(n - 1) + fib_seq(n - 2);
}

int demo_fib(void *arg, void **result)
{
	long n = (long)(intptr_t)arg;
	struct weft_spawn sp;
	void *a = NULL, *b = NULL;

	if (n < 12) {
		*result = (void *)(intptr_t)fib_seq(n);
		return 0;
	}
	weft_spawn(&sp, demo_fib, (void *)(intptr_t)(n - 1));
	demo_fib((void *)(intptr_t)(n - 2), &b);
	weft_join(&sp, &a);
	*result = (void *)((intptr_t)a + (intptr_t)b);
	return 0;
}

/* fib(n) whose first child is certain to leave: the root waits a moment
 * after spawning it, which evacuates the unjoined child (it becomes a task
 * of its own, a demo_fib slice wherever it runs) and lets an idle worker
 * come and steal from it. Without the wait a loaded machine may finish
 * the whole fib before the other worker wakes. */
int demo_fib_root(void *arg, void **result)
{
	long n = (long)(intptr_t)arg;
	struct weft_spawn sp;
	void *a = NULL, *b = NULL;
	int err;

	weft_spawn(&sp, demo_fib, (void *)(intptr_t)(n - 1));
	weft_sleep(100000); /* 0.1 ms */
	demo_fib((void *)(intptr_t)(n - 2), &b);
	err = weft_join(&sp, &a);
	if (err)
		return err;
	*result = (void *)((intptr_t)a + (intptr_t)b);
	return 0;
}

int demo_sleeper(void *arg, void **result)
{
	long i = (long)(intptr_t)arg;

	for (int k = 0; k < 3; k++) {
		int err = weft_sleep(200000 + 100000 * i); /* 0.2..0.5 ms */

		if (err)
			return err;
	}
	*result = arg;
	return 0;
}

int demo_io(void *arg, void **result)
{
	char buf[256];
	struct weft_future *f;
	int64_t r;
	int err;

	(void)arg;
	err = weft_io_nop(pool, WEFT_FOREVER, &f);
	if (err)
		return err;
	r = weft_io_await(f);
	if (r < 0)
		return (int)r;
	err = weft_io_read(pool, tmp_fd, buf, sizeof(buf), 0, WEFT_FOREVER,
			   &f);
	if (err)
		return err;
	r = weft_io_await(f);
	if (r < 0)
		return (int)r;
	if (r == 0 || memcmp(buf, "weft trace demo", 15) != 0)
		return -EIO;
	*result = (void *)(intptr_t)r;
	return 0;
}

int demo_blocking_call(void *arg, void **result)
{
	(void)arg;
	usleep(1000); /* a blocking API, 1 ms */
	*result = (void *)(intptr_t)42;
	return 0;
}

int demo_blocker(void *arg, void **result)
{
	void *v = NULL;
	int err;

	(void)arg;
	err = weft_run_blocking(NULL, demo_blocking_call, NULL, &v);
	if (err)
		return err;
	if ((intptr_t)v != 42)
		return -EIO;
	*result = v;
	return 0;
}

/* Counts the fork children other workers stole (an evacuated child has a
 * future of its own; a stolen one has none). */
static void on_event(const struct weft_task_event_info *ev, void *arg)
{
	(void)arg;
	if (ev->event == WEFT_TASK_STARTED && ev->fn == (void *)demo_fib &&
	    ev->task == NULL)
		atomic_fetch_add_explicit(&fib_stolen, 1,
					  memory_order_relaxed);
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "trace_demo: %s: %s\n", what, strerror(-err));
	return 1;
}

/* Wait for @f, check its error, drop it. */
static int get(struct weft_future *f, const char *what, void **value)
{
	int err = weft_future_get(f, value);

	weft_future_unref(f);
	return err ? fail(what, err) : 0;
}

int main(int argc, char **argv)
{
	struct weft_pool_options o;
	struct weft_future *fs[1 + SLEEPERS + IO_TASKS + 1];
	struct weft_pool_stats st;
	static const char text[] = "weft trace demo: a small file to read\n";
	void *v;
	int n = 0, err, rounds = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: trace_demo OUT.json\n");
		return 2;
	}
	tmp_fd = mkstemp(tmp_path);
	if (tmp_fd < 0)
		return fail("mkstemp", -errno);
	unlink(tmp_path);
	if (write(tmp_fd, text, sizeof(text) - 1) != (ssize_t)sizeof(text) - 1)
		return fail("write", -EIO);

	weft_pool_options_init(&o);
	o.workers = 2;
	o.name = "demo";
	o.trace_events = 1u << 16;
	o.on_task_event = on_event;
	err = weft_pool_create(&o, &pool);
	if (err)
		return fail("weft_pool_create", err);

	/* Everything at once, so that the tracks interleave. */
	if ((err = weft_submit(pool, demo_fib_root, (void *)(intptr_t)FIB_N,
			       &fs[n++])))
		return fail("weft_submit", err);
	for (long i = 0; i < SLEEPERS; i++)
		if ((err = weft_submit(pool, demo_sleeper, (void *)(intptr_t)i,
				       &fs[n++])))
			return fail("weft_submit", err);
	for (long i = 0; i < IO_TASKS; i++)
		if ((err = weft_submit(pool, demo_io, NULL, &fs[n++])))
			return fail("weft_submit", err);
	if ((err = weft_submit(pool, demo_blocker, NULL, &fs[n++])))
		return fail("weft_submit", err);

	if (get(fs[0], "demo_fib_root", &v))
		return 1;
	if ((intptr_t)v != fib_seq(FIB_N)) {
		fprintf(stderr, "trace_demo: fib(%d) = %ld, want %ld\n", FIB_N,
			(long)(intptr_t)v, fib_seq(FIB_N));
		return 1;
	}
	for (int i = 1; i < n; i++)
		if (get(fs[i], "task", NULL))
			return 1;

	/* Steals are up to the machine's timing: repeat the fib a few times
	 * until one has happened (usually the first round, where a core
	 * is free for the other worker). */
	for (rounds = 1; rounds < FIB_ROUNDS_MAX; rounds++) {
		if (atomic_load(&fib_stolen) > 0)
			break;
		if ((err = weft_submit(pool, demo_fib_root,
				       (void *)(intptr_t)FIB_N, &fs[0])))
			return fail("weft_submit", err);
		if (get(fs[0], "demo_fib_root", NULL))
			return 1;
	}

	err = weft_pool_shutdown(pool, 0, WEFT_FOREVER);
	if (err)
		return fail("weft_pool_shutdown", err);
	err = weft_pool_trace_write(pool, argv[1]);
	if (err)
		return fail("weft_pool_trace_write", err);
	weft_pool_stats(pool, &st, NULL, 0);
	printf("trace_demo: wrote %s (fib rounds %d, stolen demo_fib %lu, "
	       "steals %llu, suspends %llu, io ops %llu)\n",
	       argv[1], rounds, atomic_load(&fib_stolen),
	       (unsigned long long)st.total.steals,
	       (unsigned long long)st.total.suspends,
	       (unsigned long long)st.io_completed);
	weft_pool_destroy(pool);
	close(tmp_fd);
	return 0;
}
