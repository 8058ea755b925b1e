/*
 * observe.c - the pool's counters, a task event hook, a slow-task report
 * and a trace (weft/obs.h; docs/observability.md).
 *
 * It runs a small fork/join tree, some tasks that wait, a task that makes
 * I/O round trips, and one task that holds its worker for 30 ms; prints
 * the counters; and writes trace.json (or argv[1]), which
 * https://ui.perfetto.dev opens.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

/* ---- the hook: count events by kind ---- */
static atomic_ulong events[5];

static void on_event(const struct weft_task_event_info *ev, void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&events[ev->event], 1, memory_order_relaxed);
}

/* ---- the slow-task report: print it our way ---- */
static void on_slow(void *fn, int64_t ns, int worker, void *arg)
{
	(void)arg;
	fprintf(stderr, "slow: task %p held worker %d for %.1f ms\n", fn,
		worker, ns / 1e6);
}

/* ---- the work ---- */
int fib(void *arg, void **result)
{
	uintptr_t n = (uintptr_t)arg;
	void *a = NULL, *b = NULL;
	struct weft_spawn sp;

	if (n < 2) {
		*result = (void *)n;
		return 0;
	}
	weft_spawn(&sp, fib, (void *)(n - 1));
	fib((void *)(n - 2), &b);
	weft_join(&sp, &a);
	*result = (void *)((uintptr_t)a + (uintptr_t)b);
	return 0;
}

int napper(void *arg, void **result)
{
	(void)arg;
	weft_sleep(2 * 1000 * 1000); /* suspends: the worker runs others */
	*result = NULL;
	return 0;
}

int pinger(void *arg, void **result)
{
	struct weft_pool *pool = arg;

	for (int i = 0; i < 3; i++) {
		struct weft_future *f;

		if (weft_io_nop(pool, WEFT_FOREVER, &f) == 0)
			weft_io_await(f); /* an I/O op: the task waits */
	}
	*result = NULL;
	return 0;
}

int hog(void *arg, void **result)
{
	int64_t until = weft_now() + 30 * 1000 * 1000;

	(void)arg;
	while (weft_now() < until)
		; /* holds its worker: reported as slow */
	*result = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "trace.json";
	struct weft_pool_options opts;
	struct weft_pool *pool;
	struct weft_future *f[11];
	struct weft_pool_stats st;
	struct weft_worker_stats per[2];
	void *v;

	weft_pool_options_init(&opts);
	opts.workers = 2;
	opts.on_task_event = on_event;     /* task events */
	opts.slow_task_ns = 20 * 1000 * 1000; /* report runs over 20 ms */
	opts.on_slow_task = on_slow;
	opts.trace_events = 1 << 16;       /* keep a trace, 64K events/worker */
	if (weft_pool_create(&opts, &pool) != 0)
		return 1;

	weft_submit(pool, fib, (void *)(uintptr_t)20, &f[0]);
	for (int i = 1; i < 9; i++)
		weft_submit(pool, napper, NULL, &f[i]);
	weft_submit(pool, hog, NULL, &f[9]);
	weft_submit(pool, pinger, pool, &f[10]);
	weft_future_get(f[0], &v);
	for (int i = 0; i < 11; i++) {
		weft_future_wait(f[i]);
		weft_future_unref(f[i]);
	}
	printf("fib(20) = %lu\n", (unsigned long)(uintptr_t)v);

	/* Counters: any time, from any thread; exact once the pool is quiet. */
	weft_pool_shutdown(pool, 0, WEFT_FOREVER);
	weft_pool_stats(pool, &st, per, 2);
	printf("tasks: %lu submitted, %lu completed; %lu steals, %lu waits\n",
	       (unsigned long)st.submitted, (unsigned long)st.completed,
	       (unsigned long)st.total.steals,
	       (unsigned long)st.total.suspends);
	for (int i = 0; i < 2; i++)
		printf("worker %d: %lu task runs, %lu parks\n", i,
		       (unsigned long)per[i].tasks_run,
		       (unsigned long)per[i].parks);
	printf("hook: %lu created, %lu started, %lu finished\n",
	       atomic_load(&events[WEFT_TASK_CREATED]),
	       atomic_load(&events[WEFT_TASK_STARTED]),
	       atomic_load(&events[WEFT_TASK_FINISHED]));

	/* The trace: after shutdown, before destroy. */
	if (weft_pool_trace_write(pool, path) != 0)
		return 1;
	printf("trace written to %s\n", path);
	weft_pool_destroy(pool);
	return st.completed == st.submitted ? 0 : 1;
}
