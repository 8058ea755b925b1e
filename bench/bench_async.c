/*
 * bench_async.c - what coroutine-style async costs inside tasks: awaiting a
 * future, suspending and resuming a task, and the memory of many suspended
 * tasks (DESIGN.md sections 2 and 5; fork/join and skynet are bench_fib's).
 *
 * Latency workloads, each a loop run inside one task:
 *
 *   call                  the baseline: the same loop calling the task body
 *                         (tiny_fn: *result = arg + 1) directly, on the
 *                         calling thread; ns per call
 *   submit_await_1w       one task on a pool of 1 worker loops 1 000 times
 *                         weft_submit(pool, tiny_fn) -> weft_future_get()
 *                         -> weft_future_unref(). On 1 worker the child is
 *                         still queued when it is awaited, so the waiter
 *                         claims it and runs it inline (Lace's SYNC rule,
 *                         weft/task.h): the designed fast path, no switch
 *                         (the warm-up run checks that every child was
 *                         still queued at its await). The child's queue
 *                         entry stays on the worker's deque, with its
 *                         future, until the scheduling loop pops it after
 *                         the loop task returns and drops the queue's
 *                         reference; that clean-up is part of a submit's
 *                         cost, so the time runs from the loop task's start
 *                         to the start of a stamp task that it submitted
 *                         first (the bottom of the deque, popped last).
 *                         ns per task. Target: <= 30 ns per task.
 *   submit_await_long_1w  the same with 100 000 awaits in one task:
 *                         informative. Every awaited child's entry and
 *                         future stay alive until the task returns (about
 *                         240 bytes per await, measured here), so a long
 *                         loop of awaits grows memory and gets slower
 *                         (the futures outgrow weft's future allocator
 *                         cache and the caches).
 *   await_suspend_1w      an await that really suspends the waiter, every
 *                         time, on 1 worker: the loop task submits a child
 *                         whose body first calls weft_yield(); the parent
 *                         yields until the child has started (once, but for
 *                         the scheduler's periodic look at the inject
 *                         queue), so the child is suspended in its yield,
 *                         RUNNING, when the parent awaits it: the parent
 *                         cannot run it inline and suspends on the future;
 *                         the child resumes, returns, and its completion
 *                         requeues the parent. An iteration is a submit and
 *                         3 suspend+resume round trips (parent yield, child
 *                         yield, parent await: 6 switches, see below);
 *                         reported per iteration and per round trip, with
 *                         the count of awaits that found the child running
 *                         (a WARNING when not all). Informative.
 *   await_other_pool      the await of a task that runs on another thread:
 *                         the loop task on pool A (1 worker) awaits a
 *                         tiny_fn child submitted to pool B (1 worker). A
 *                         task of another pool is never run inline, so the
 *                         parent suspends unless the child is already done;
 *                         the round trip includes waking B's worker and,
 *                         for the completion, A's (a 1-worker pool parks at
 *                         once, it does not spin). Reports how many awaits
 *                         found the child not yet done. Informative.
 *   yield_1w              two tasks on a pool of 1 worker ping-pong with
 *                         weft_yield() (each goes to the back of the queue
 *                         and the other runs); ns per yield. Target: <= 10
 *                         ns per fiber switch.
 *
 * What "one fiber switch" is here. A weft_yield() in a task (core/async.c)
 * calls weft__fiber_suspend() (fiber/fiber.c): the task's fiber switches
 * to a fresh scheduling-loop fiber from the worker's cache (switch 1),
 * which requeues the task (park_yield: the inject queue) and runs the loop;
 * the loop pops the other task's fiber and weft__fiber_resume() switches to
 * it (switch 2), the loop fiber it leaves going back to the cache. So a
 * yield is exactly 2 machine context switches, and ns per switch = ns per
 * yield / 2: a switch as the scheduler makes it, with its share of the
 * queue push and pop, the fiber cache and the handoff. The bare machine
 * switch (weft__ctx_switch alone, no scheduler) is bench_switch.c's figure
 * (its "ns/switch" column; DESIGN.md section 5 expects about 4 ns); the
 * difference between the two is the scheduler's part.
 *
 * Time: every latency figure is wall time (CLOCK_MONOTONIC), as in the
 * other programs, and its ratio to the baseline of the same round. Beside
 * it, the CPU time of the thread that did the work (CLOCK_THREAD_CPUTIME_ID
 * of the 1 worker, stamped inside the tasks; both workers' for
 * await_other_pool, the process's CPU time around the run), which other
 * processes on a busy machine inflate far less than the wall time: a
 * preempted thread accrues no CPU time. Targets are judged on the wall
 * time; the CPU figure is printed next to it.
 *
 * Memory workload (suspended tasks):
 *
 *   rss_fibers     100 000 tasks (--quick too: it takes a few seconds) on
 *                  a pool of --workers workers, each blocked in
 *                  weft_chan_recv() on one shared unbuffered channel
 *                  (capacity 0: no buffer memory; every send is a handoff
 *                  to a suspended receiver). Once all have started and
 *                  suspended, the main thread sends 1..N; every task must
 *                  receive exactly one item (the sum is checked) and
 *                  complete. Peak RSS (VmHWM of /proc/self/status: the
 *                  whole process) and its growth over the RSS before the
 *                  tasks, per suspended task. Target: peak RSS <= 1 GiB
 *                  with 100 000 suspended tasks.
 *   rss_pthreads   the baseline: 2 000 pthreads with 64 KiB stacks (mapped
 *                  here, with a 4 KiB guard as glibc's default, and
 *                  unmapped after the join so that glibc's stack cache does
 *                  not carry resident pages into the next round), each
 *                  blocked on a condition variable until the main thread
 *                  hands it one item through a mutex+condvar queue; RSS
 *                  growth per blocked thread. The ratio is bytes per
 *                  suspended task over bytes per blocked thread (below 1: a
 *                  task is cheaper). 100 000 threads are not reasonable on
 *                  a 2-core VM, and the RSS per thread does not depend on
 *                  the count. VmRSS leaves out what the kernel keeps per
 *                  thread (a 16 KiB kernel stack, the task struct), so the
 *                  ratio flatters the threads. Also reported: RSS per task
 *                  as a fraction of the 256 KiB default fiber stack
 *                  (WEFT_STACK_SIZE_DEFAULT).
 *   Each phase resets VmHWM first (writing 5 to /proc/self/clear_refs,
 *   Linux >= 4.0), so that a phase's peak is its own.
 *
 *   Guarded stacks: with the default vm.max_map_count (65530) weft guards
 *   only about 30 000 stacks (half of max_map_count - 4096: a guarded stack
 *   is two memory mappings) and maps the rest unguarded, with a canary
 *   (src/fiber/stack.h). The public API does not say how many stacks got a
 *   guard; the program counts the 64 KiB PROT_NONE mappings in
 *   /proc/self/maps while the tasks are suspended (weft's guard regions:
 *   glibc's thread guards are one page) and prints the budget the policy
 *   implies. It matters for the figure: a suspended task on a guarded
 *   stack costs about one resident page (the top of its stack: the fiber
 *   descriptor and the frames down to the wait), one on an unguarded stack
 *   two, the second being the page of the canary word at the low end
 *   (measured here: about 4.3 KiB against 8.4 KiB per task; run with
 *   WEFT_GUARDED_STACKS=0 to see the second alone).
 *
 * Rounds: every round measures each latency variant once (runs back to
 * back until 20 ms of measured time), in an order rotated each round, with
 * a short sleep between measurements so that parked workers stay parked;
 * then come the memory rounds, the two phases in an order alternated each
 * round. Figures are medians over the rounds; ratios are per-round ratios
 * (median, min..max) against the baseline of the same round. A wrong answer
 * (a sum, a failed task or call) exits 1; a missed target is only
 * reported.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <weft.h>

#include "bench_common.h"

#define NAME "bench_async"

/* Machine context switches per weft_yield() (see the file comment). */
#define SWITCHES_PER_YIELD 2

/* weft's guard region below each guarded fiber stack (weft/pool.h: "256
 * KiB usable, plus a 64 KiB guard"). */
#define WEFT_GUARD_BYTES (64ul * 1024)

/* The pthread baseline of the memory workload. */
#define THREAD_STACK (64u * 1024u)
#define THREAD_GUARD 4096u

enum variant {
	V_CALL, V_SUBMIT, V_SUBMIT_LONG, V_SUSPEND, V_XPOOL, V_YIELD,
	NVARIANTS
};

static const char *const variant_name[NVARIANTS] = {
	"call", "submit_await_1w", "submit_await_long_1w", "await_suspend_1w",
	"await_other_pool", "yield_1w",
};
static const char *const variant_text[NVARIANTS] = {
	"direct call of the task body",
	"submit+await inline, 1 worker",
	"the same, 100 000 in one task",
	"await that suspends, 1 worker",
	"await across pools, 1+1 workers",
	"weft_yield ping-pong, 1 worker",
};
static const char *const variant_unit[NVARIANTS] = {
	"call", "task", "task", "iteration", "await", "yield",
};
/* CSV metric of the time per unit (cpu_ prefixed for the CPU time). */
static const char *const variant_metric[NVARIANTS] = {
	"ns_per_call", "ns_per_task", "ns_per_task", "ns_per_iteration",
	"ns_per_await", "ns_per_yield",
};

struct ctx {
	const struct bench_opts *o;
	unsigned long n[NVARIANTS]; /* operations per run */
	unsigned long tasks;	    /* rss_fibers */
	unsigned long threads;	    /* rss_pthreads */
	unsigned rss_rounds;
	struct weft_pool *pool1;	   /* 1 worker */
	struct weft_pool *pool_a, *pool_b; /* 1 worker each */
	/* Tallies over the measured runs (the checks and the report). */
	unsigned long long susp_iters, susp_yields, susp_suspended;
	unsigned long long xpool_awaits, xpool_not_done;
	/* From the warm-up run of submit_await_1w. */
	unsigned long long inline_awaits, inline_pending;
};

static _Noreturn void die(const char *what, int err)
{
	fprintf(stderr, NAME ": %s failed: %s\n", what, strerror(-err));
	exit(1);
}

/* A wrong result: "<what>: <got>, expected <want>". */
static _Noreturn void wrong(const char *what, unsigned long long got,
			    unsigned long long want)
{
	fprintf(stderr, NAME ": %s: %llu, expected %llu\n", what, got, want);
	exit(1);
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sum of arg + 1 over arg = 0..n-1: what the loops add up. */
static unsigned long long expect_sum(unsigned long n)
{
	return (unsigned long long)n * (n + 1) / 2;
}

/* ---- the task bodies ---------------------------------------------------- */

/* The awaited task of most variants, and the baseline's callee. */
static OPAQUE int tiny_fn(void *arg, void **result)
{
	*result = (void *)((uintptr_t)arg + 1);
	return 0;
}

/* await_suspend_1w's child: suspends once before it returns. */
static OPAQUE int yield_child_fn(void *arg, void **result)
{
	int err = weft_yield();

	if (err)
		return err;
	*result = (void *)((uintptr_t)arg + 1);
	return 0;
}

/* A wall and a CPU clock reading, taken together. */
struct stamp {
	int64_t wall, cpu;
};

static void stamp_now(struct stamp *s)
{
	s->wall = bench_now_ns();
	s->cpu = thread_cpu_ns();
}

static int stamp_fn(void *arg, void **result)
{
	(void)result;
	stamp_now(arg);
	return 0;
}

/* The loop task of submit_await*, await_suspend_1w, await_other_pool. */
struct loop_arg {
	struct weft_pool *pool;	   /* where the children go */
	unsigned long n;	   /* iterations */
	bool check;		   /* submit_await: look at each child first */
	struct stamp t0, t1;	   /* t1: by the stamp task, or the loop */
	struct weft_future *stamp; /* submit_await's stamp task */
	uint64_t sum;
	unsigned long yields, suspended, pending;
};

static OPAQUE int submit_await_task(void *p, void **result)
{
	struct loop_arg *a = p;
	uint64_t sum = 0;
	int err;

	(void)result;
	stamp_now(&a->t0);
	/* First on the deque, so the last entry the loop pops after us: it
	 * runs once every child's entry has been popped and dropped. */
	err = weft_submit(a->pool, stamp_fn, &a->t1, &a->stamp);
	if (err)
		return err;
	for (unsigned long i = 0; i < a->n; i++) {
		struct weft_future *f;
		void *v = NULL;

		err = weft_submit(a->pool, tiny_fn, (void *)(uintptr_t)i, &f);
		if (err)
			return err;
		if (a->check && weft_future_state(f) == WEFT_FUTURE_PENDING)
			a->pending++;
		err = weft_future_get(f, &v);
		weft_future_unref(f);
		if (err)
			return err;
		sum += (uintptr_t)v;
	}
	a->sum = sum;
	return 0;
}

static OPAQUE int await_suspend_task(void *p, void **result)
{
	struct loop_arg *a = p;
	uint64_t sum = 0;
	int err;

	(void)result;
	stamp_now(&a->t0);
	for (unsigned long i = 0; i < a->n; i++) {
		struct weft_future *f;
		void *v = NULL;
		int st;

		err = weft_submit(a->pool, yield_child_fn,
				  (void *)(uintptr_t)i, &f);
		if (err)
			return err;
		/* Let the child start and suspend in its own yield. */
		do {
			err = weft_yield();
			if (err) {
				weft_future_unref(f);
				return err;
			}
			a->yields++;
			st = weft_future_state(f);
		} while (st == WEFT_FUTURE_PENDING);
		if (st == WEFT_FUTURE_RUNNING)
			a->suspended++;
		err = weft_future_get(f, &v);
		weft_future_unref(f);
		if (err)
			return err;
		sum += (uintptr_t)v;
	}
	stamp_now(&a->t1);
	a->sum = sum;
	return 0;
}

static OPAQUE int await_other_pool_task(void *p, void **result)
{
	struct loop_arg *a = p;
	uint64_t sum = 0;
	int err;

	(void)result;
	stamp_now(&a->t0);
	for (unsigned long i = 0; i < a->n; i++) {
		struct weft_future *f;
		void *v = NULL;

		err = weft_submit(a->pool, tiny_fn, (void *)(uintptr_t)i, &f);
		if (err)
			return err;
		if (weft_future_try_wait(f) != 0)
			a->suspended++;
		err = weft_future_get(f, &v);
		weft_future_unref(f);
		if (err)
			return err;
		sum += (uintptr_t)v;
	}
	stamp_now(&a->t1);
	a->sum = sum;
	return 0;
}

/* yield_1w: two of these on one worker. */
struct yield_arg {
	unsigned long n; /* yields each */
	atomic_uint started, finished;
	struct stamp t0, t1;
};

static OPAQUE int yield_task(void *p, void **result)
{
	struct yield_arg *a = p;
	int err;

	(void)result;
	if (atomic_fetch_add(&a->started, 1) == 1) {
		stamp_now(&a->t0);
	} else {
		/* Wait (yielding, uncounted) for the partner, so that every
		 * counted yield switches to the other task. */
		while (atomic_load(&a->started) < 2)
			if ((err = weft_yield()) != 0)
				return err;
	}
	for (unsigned long i = 0; i < a->n; i++)
		if ((err = weft_yield()) != 0)
			return err;
	if (atomic_fetch_add(&a->finished, 1) == 1)
		stamp_now(&a->t1);
	return 0;
}

/* ---- one run ------------------------------------------------------------ */

/* One run's wall and CPU time (ns) and its operations. */
struct run {
	double wall, cpu, ops;
};

static void get_ok(struct weft_future *f, const char *what)
{
	int err = weft_future_get(f, NULL);

	weft_future_unref(f);
	if (err)
		die(what, err);
}

static struct run run_call(unsigned long n)
{
	struct stamp t0, t1;
	uint64_t sum = 0;

	stamp_now(&t0);
	for (unsigned long i = 0; i < n; i++) {
		void *v;

		tiny_fn((void *)(uintptr_t)i, &v);
		sum += (uintptr_t)v;
	}
	stamp_now(&t1);
	if (sum != expect_sum(n))
		wrong("the direct calls sum to", sum, expect_sum(n));
	return (struct run){ (double)(t1.wall - t0.wall),
			     (double)(t1.cpu - t0.cpu), (double)n };
}

/* Run the loop task @fn on @pool with its children on @child_pool. */
static struct run run_loop(struct ctx *c, enum variant v, weft_task_fn fn,
			   struct weft_pool *pool, struct weft_pool *child_pool,
			   bool check)
{
	struct loop_arg a = { 0 };
	struct weft_future *f;
	int64_t cpu0 = bench_cpu_ns();
	double cpu;
	int err;

	a.pool = child_pool;
	a.n = c->n[v];
	a.check = check;
	err = weft_submit(pool, fn, &a, &f);
	if (err)
		die("weft_submit", err);
	get_ok(f, variant_text[v]);
	if (a.stamp)
		get_ok(a.stamp, "the stamp task");
	if (a.sum != expect_sum(a.n))
		wrong("the awaited values sum to", a.sum, expect_sum(a.n));
	cpu = (double)(a.t1.cpu - a.t0.cpu);
	switch (v) {
	case V_SUBMIT:
		if (check) {
			c->inline_awaits += a.n;
			c->inline_pending += a.pending;
		}
		break;
	case V_SUSPEND:
		c->susp_iters += a.n;
		c->susp_yields += a.yields;
		c->susp_suspended += a.suspended;
		break;
	case V_XPOOL:
		c->xpool_awaits += a.n;
		c->xpool_not_done += a.suspended;
		/* Two workers did the work: the process's CPU time. */
		cpu = (double)(bench_cpu_ns() - cpu0);
		break;
	default:
		break;
	}
	return (struct run){ (double)(a.t1.wall - a.t0.wall), cpu,
			     (double)a.n };
}

static struct run run_yield(struct ctx *c)
{
	struct yield_arg a = { .n = c->n[V_YIELD] };
	struct weft_future *f[2];
	int err;

	atomic_init(&a.started, 0);
	atomic_init(&a.finished, 0);
	for (unsigned i = 0; i < 2; i++) {
		err = weft_submit(c->pool1, yield_task, &a, &f[i]);
		if (err)
			die("weft_submit", err);
	}
	for (unsigned i = 0; i < 2; i++)
		get_ok(f[i], "a yield task");
	return (struct run){ (double)(a.t1.wall - a.t0.wall),
			     (double)(a.t1.cpu - a.t0.cpu), 2.0 * (double)a.n };
}

static struct run run_once(struct ctx *c, enum variant v, bool check)
{
	switch (v) {
	case V_CALL:
		return run_call(c->n[v]);
	case V_SUBMIT:
	case V_SUBMIT_LONG:
		return run_loop(c, v, submit_await_task, c->pool1, c->pool1,
				check);
	case V_SUSPEND:
		return run_loop(c, v, await_suspend_task, c->pool1, c->pool1,
				false);
	case V_XPOOL:
		return run_loop(c, v, await_other_pool_task, c->pool_a,
				c->pool_b, false);
	case V_YIELD:
		return run_yield(c);
	default:
		abort();
	}
}

#define SAMPLE_MIN_NS 20e6
#define SAMPLE_MAX_RUNS 1000

/* One round's figures: ns per operation, wall and CPU, over runs back to
 * back until SAMPLE_MIN_NS of measured wall time (at least one). */
static void run_sample(struct ctx *c, enum variant v, double *wall,
		       double *cpu)
{
	struct run sum = { 0, 0, 0 };
	unsigned runs = 0;

	do {
		struct run r = run_once(c, v, false);

		sum.wall += r.wall;
		sum.cpu += r.cpu;
		sum.ops += r.ops;
		runs++;
	} while (sum.wall < SAMPLE_MIN_NS && runs < SAMPLE_MAX_RUNS);
	*wall = sum.wall / sum.ops;
	*cpu = sum.cpu / sum.ops;
}

/* ---- memory ------------------------------------------------------------- */

/* A "Vm...:" field of /proc/self/status in bytes, or -1. */
static long long proc_status_bytes(const char *field)
{
	char line[256];
	size_t len = strlen(field);
	long long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, len) && line[len] == ':') {
			kib = strtoll(line + len + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kib < 0 ? -1 : kib * 1024;
}

/* Reset VmHWM to the current RSS; false when the kernel refuses. */
static bool reset_hwm(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	bool ok;

	if (!f)
		return false;
	ok = fputs("5", f) >= 0;
	ok &= fclose(f) == 0;
	return ok;
}

/* Mappings in /proc/self/maps, and those that look like weft's guards. */
static void count_maps(unsigned long *maps, unsigned long *guards)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	*maps = *guards = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8];

		if (!strchr(line, '\n') && !feof(f)) {
			/* A long path: skip the rest of the line. */
			int ch;

			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
		}
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		(*maps)++;
		if (!strcmp(perms, "---p") && hi - lo == WEFT_GUARD_BYTES)
			(*guards)++;
	}
	fclose(f);
}

static long read_long_file(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

struct rss_result {
	double peak;	 /* VmHWM, bytes, the whole process */
	double growth;	 /* peak - RSS before the phase */
	double per_unit; /* growth per task / thread */
	double seconds;	 /* the phase's wall time */
	unsigned long guards, maps;
};

/* -- pthreads blocked on a condition variable -- */

struct thr_shared {
	pthread_mutex_t mu;
	pthread_cond_t started_cv, item_cv;
	unsigned long started;
	uintptr_t *items;
	unsigned long head, count;
	uint64_t sum;
};

static void *thr_main(void *p)
{
	struct thr_shared *s = p;

	pthread_mutex_lock(&s->mu);
	s->started++;
	pthread_cond_signal(&s->started_cv);
	while (s->count == 0)
		pthread_cond_wait(&s->item_cv, &s->mu);
	s->sum += s->items[s->head++];
	s->count--;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* False when the system refused a thread (the baseline is then skipped). */
static bool rss_pthreads(const struct ctx *c, struct rss_result *r)
{
	unsigned long n = c->threads, want = n;
	size_t map_size = THREAD_STACK + THREAD_GUARD;
	struct thr_shared s;
	pthread_t *tid = calloc(n, sizeof(*tid));
	void **stk = calloc(n, sizeof(*stk));
	int64_t t0 = bench_now_ns();
	long long before;
	int err;

	memset(&s, 0, sizeof(s));
	s.items = calloc(n, sizeof(*s.items));
	if (!tid || !stk || !s.items)
		die("calloc", -ENOMEM);
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.started_cv, NULL);
	pthread_cond_init(&s.item_cv, NULL);

	reset_hwm();
	before = proc_status_bytes("VmRSS");
	for (unsigned long i = 0; i < n; i++) {
		pthread_attr_t attr;

		stk[i] = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (stk[i] == MAP_FAILED)
			die("mmap of a thread stack", -errno);
		if (mprotect(stk[i], THREAD_GUARD, PROT_NONE) != 0)
			die("mprotect of a thread guard", -errno);
		pthread_attr_init(&attr);
		pthread_attr_setstack(&attr, (char *)stk[i] + THREAD_GUARD,
				      THREAD_STACK);
		err = pthread_create(&tid[i], &attr, thr_main, &s);
		pthread_attr_destroy(&attr);
		if (err) {
			/* A limit on threads: release the ones we have. */
			printf("note: pthread_create failed after %lu threads (%s): the pthread baseline is skipped\n",
			       i, strerror(err));
			munmap(stk[i], map_size);
			n = i;
			break;
		}
	}
	pthread_mutex_lock(&s.mu);
	/* started == n seen under the lock: every thread is in cond_wait,
	 * which released the lock as it began to wait. */
	while (s.started < n)
		pthread_cond_wait(&s.started_cv, &s.mu);
	count_maps(&r->maps, &r->guards);
	for (unsigned long i = 0; i < n; i++)
		s.items[i] = i + 1;
	s.count = n;
	pthread_cond_broadcast(&s.item_cv);
	pthread_mutex_unlock(&s.mu);
	for (unsigned long i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		munmap(stk[i], map_size);
	}
	r->peak = (double)proc_status_bytes("VmHWM");
	if (s.sum != expect_sum(n) || s.count != 0)
		wrong("the blocked threads received items summing to", s.sum,
		      expect_sum(n));
	r->growth = r->peak - (double)before;
	r->per_unit = n ? r->growth / (double)n : 0;
	r->guards = 0; /* none of weft's */
	r->seconds = (double)(bench_now_ns() - t0) / 1e9;
	pthread_cond_destroy(&s.item_cv);
	pthread_cond_destroy(&s.started_cv);
	pthread_mutex_destroy(&s.mu);
	free(s.items);
	free(stk);
	free(tid);
	return n == want;
}

/* -- tasks suspended on a channel -- */

struct chan_shared {
	struct weft_chan *ch;
	atomic_ulong started, failed;
	atomic_ullong sum;
	struct bench_latch done;
};

static int chan_task(void *p, void **result)
{
	struct chan_shared *s = p;
	void *item = NULL;
	int err;

	(void)result;
	atomic_fetch_add(&s->started, 1);
	err = weft_chan_recv(s->ch, &item);
	if (err)
		atomic_fetch_add(&s->failed, 1);
	else
		atomic_fetch_add(&s->sum, (uintptr_t)item);
	bench_latch_count_down(&s->done);
	return err;
}

static void rss_fibers(const struct ctx *c, struct rss_result *r)
{
	unsigned long n = c->tasks;
	struct weft_pool_options wo;
	struct weft_pool *pool;
	struct chan_shared s;
	int64_t t0 = bench_now_ns(), deadline;
	long long before;
	int err;

	weft_pool_options_init(&wo);
	wo.workers = c->o->workers;
	err = weft_pool_create(&wo, &pool);
	if (err)
		die("weft_pool_create", err);
	err = weft_chan_create(0, &s.ch);
	if (err)
		die("weft_chan_create", err);
	atomic_init(&s.started, 0);
	atomic_init(&s.failed, 0);
	atomic_init(&s.sum, 0);
	bench_latch_init(&s.done, (long)n);

	reset_hwm();
	before = proc_status_bytes("VmRSS");
	for (unsigned long i = 0; i < n; i++) {
		err = weft_submit(pool, chan_task, &s, NULL);
		if (err)
			die("weft_submit", err);
	}
	/* All started: each is at most a few instructions from parking in
	 * its receive (none can complete: no item has been sent). */
	deadline = bench_now_ns() + 120 * (int64_t)1000000000;
	while (atomic_load(&s.started) < n) {
		if (bench_now_ns() > deadline) {
			fprintf(stderr, NAME ": only %lu of %lu tasks started in 120 s\n",
				(unsigned long)atomic_load(&s.started), n);
			exit(1);
		}
		bench_sleep_ms(1);
	}
	bench_sleep_ms(20);
	count_maps(&r->maps, &r->guards);
	for (unsigned long i = 0; i < n; i++) {
		err = weft_chan_send(s.ch, (void *)(uintptr_t)(i + 1));
		if (err)
			die("weft_chan_send", err);
	}
	bench_latch_wait(&s.done);
	r->peak = (double)proc_status_bytes("VmHWM");
	if (atomic_load(&s.failed))
		wrong("receives that failed", atomic_load(&s.failed), 0);
	if (atomic_load(&s.sum) != expect_sum(n))
		wrong("the suspended tasks received items summing to",
		      atomic_load(&s.sum), expect_sum(n));
	r->growth = r->peak - (double)before;
	r->per_unit = r->growth / (double)n;
	weft_pool_destroy(pool);
	weft_chan_destroy(s.ch);
	bench_latch_fini(&s.done);
	r->seconds = (double)(bench_now_ns() - t0) / 1e9;
}

/* ---- report ------------------------------------------------------------- */

/* "1.23x" and "min..max" of a ratio series; "" twice when it is empty. */
static void fmt_ratio(const struct bench_series *r, char *med, size_t mlen,
		      char *range, size_t rlen)
{
	if (!r->n) {
		med[0] = range[0] = '\0';
		return;
	}
	bench_fmt_ratio(r, med, mlen, range, rlen);
}

/* @s / @div, round by round, into @out. */
static void series_div(const struct bench_series *s, double div,
		       struct bench_series *out)
{
	out->n = 0;
	for (unsigned r = 0; r < s->n; r++)
		bench_series_add(out, s->v[r] / div);
}

static void report_latency(const struct ctx *c,
			   const struct bench_series t[NVARIANTS],
			   const struct bench_series cpu[NVARIANTS])
{
	const struct bench_opts *o = c->o;
	struct bench_series ratio, tmp, tmpc;
	bool any = false;

	for (unsigned v = 0; v < NVARIANTS; v++)
		any |= t[v].n > 0;
	if (!any)
		return;
	printf("\n%-32s %9s %9s %15s %9s %13s %9s %9s\n", "variant", "unit",
	       "ns/unit", "min..max", "vs call", "min..max", "cpu ns", "vs call");
	for (unsigned i = 0; i < NVARIANTS; i++) {
		enum variant v = (enum variant)i;
		char range[40], rm[16] = "", rr[32] = "", cm[16] = "",
		     cr[32], metric[64];

		if (!t[v].n)
			continue;
		snprintf(range, sizeof(range), "%.2f..%.2f",
			 bench_series_min(&t[v]), bench_series_max(&t[v]));
		bench_csv_series(o, variant_name[v], variant_metric[v], &t[v]);
		snprintf(metric, sizeof(metric), "cpu_%s", variant_metric[v]);
		bench_csv_series(o, variant_name[v], metric, &cpu[v]);
		if (v == V_CALL) {
			snprintf(rm, sizeof(rm), "1.00x");
			snprintf(cm, sizeof(cm), "1.00x");
		} else {
			bench_series_ratio(&t[v], &t[V_CALL], &ratio);
			fmt_ratio(&ratio, rm, sizeof(rm), rr, sizeof(rr));
			bench_csv_series(o, variant_name[v], "time_over_call",
					 &ratio);
			bench_series_ratio(&cpu[v], &cpu[V_CALL], &ratio);
			fmt_ratio(&ratio, cm, sizeof(cm), cr, sizeof(cr));
			bench_csv_series(o, variant_name[v], "cpu_over_call",
					 &ratio);
		}
		printf("%-32s %9s %9.2f %15s %9s %13s %9.2f %9s\n",
		       variant_text[v], variant_unit[v],
		       bench_series_median(&t[v]), range, rm, rr,
		       bench_series_median(&cpu[v]), cm);
	}

	if (t[V_SUBMIT].n && c->inline_awaits)
		printf("submit+await: %llu of %llu awaited children were still queued at the await, so run inline (checked in the warm-up run)\n",
		       c->inline_pending, c->inline_awaits);
	if (t[V_SUSPEND].n && c->susp_iters) {
		double iters = (double)c->susp_iters;
		double yields = (double)c->susp_yields / iters;
		/* the parent's yields, the child's one, the await (when it
		 * found the child running) */
		double trips = yields + 1.0 + (double)c->susp_suspended / iters;

		series_div(&t[V_SUSPEND], trips, &tmp);
		series_div(&cpu[V_SUSPEND], trips, &tmpc);
		printf("await that suspends: the parent suspended on the future at %llu of %llu awaits; %.3f parent yields per iteration, so %.3f suspend+resume round trips (%.2f switches): %.2f ns per round trip (%.2f..%.2f), cpu %.2f ns\n",
		       c->susp_suspended, c->susp_iters, yields, trips,
		       trips * SWITCHES_PER_YIELD, bench_series_median(&tmp),
		       bench_series_min(&tmp), bench_series_max(&tmp),
		       bench_series_median(&tmpc));
		bench_csv_series(o, variant_name[V_SUSPEND],
				 "ns_per_round_trip", &tmp);
		bench_csv_series(o, variant_name[V_SUSPEND],
				 "cpu_ns_per_round_trip", &tmpc);
		bench_csv(o, variant_name[V_SUSPEND],
			  "round_trips_per_iteration", trips);
		if (c->susp_suspended != c->susp_iters)
			printf("WARNING: %llu awaits found the child done or not started: on 1 worker it should be suspended in its yield (a change in the scheduler's order?)\n",
			       c->susp_iters - c->susp_suspended);
	}
	if (t[V_XPOOL].n && c->xpool_awaits) {
		printf("await across pools: the child was not done yet at %llu of %llu awaits (those suspended the parent); cpu: both workers\n",
		       c->xpool_not_done, c->xpool_awaits);
		bench_csv(o, variant_name[V_XPOOL], "fraction_not_done",
			  (double)c->xpool_not_done / (double)c->xpool_awaits);
	}
	if (t[V_YIELD].n) {
		series_div(&t[V_YIELD], SWITCHES_PER_YIELD, &tmp);
		series_div(&cpu[V_YIELD], SWITCHES_PER_YIELD, &tmpc);
		printf("yield: %d context switches per weft_yield (task -> fresh loop fiber, loop -> the other task): %.2f ns per switch (%.2f..%.2f), cpu %.2f ns; the bare weft__ctx_switch is bench_switch's figure\n",
		       SWITCHES_PER_YIELD, bench_series_median(&tmp),
		       bench_series_min(&tmp), bench_series_max(&tmp),
		       bench_series_median(&tmpc));
		bench_csv_series(o, variant_name[V_YIELD], "ns_per_switch", &tmp);
		bench_csv_series(o, variant_name[V_YIELD], "cpu_ns_per_switch",
				 &tmpc);
		bench_series_ratio(&tmp, &t[V_CALL], &ratio);
		bench_csv_series(o, variant_name[V_YIELD], "switch_over_call",
				 &ratio);
	}
}

struct mem {
	struct bench_series thr, fib, peak, growth, thr_s, fib_s;
	unsigned long guards, maps;
};

static void report_memory(const struct ctx *c, const struct mem *m)
{
	const struct bench_opts *o = c->o;
	struct bench_series ratio, frac;
	char rm[16], rr[32];
	long max_map = read_long_file("/proc/sys/vm/max_map_count");
	const char *env = getenv("WEFT_GUARDED_STACKS");

	if (!m->thr.n && !m->fib.n)
		return;
	printf("\nmemory:");
	if (m->fib.n)
		printf(" %lu tasks suspended on one channel (%u worker%s)",
		       c->tasks, o->workers, o->workers == 1 ? "" : "s");
	if (m->thr.n)
		printf("%s%lu pthreads (64 KiB stacks) blocked on a condition variable",
		       m->fib.n ? ", against " : " ", c->threads);
	printf("\n");
	if (m->thr.n) {
		printf("  pthreads: %.0f bytes RSS per blocked thread (%.0f..%.0f); %.2f s per round\n",
		       bench_series_median(&m->thr), bench_series_min(&m->thr),
		       bench_series_max(&m->thr),
		       bench_series_median(&m->thr_s));
		bench_csv_series(o, "rss_pthreads", "bytes_per_thread",
				 &m->thr);
	}
	if (!m->fib.n)
		return;
	printf("  tasks:    %.0f bytes RSS per suspended task (%.0f..%.0f); peak RSS of the process %.1f MiB, %.1f MiB over the RSS before the tasks; %.2f s per round\n",
	       bench_series_median(&m->fib), bench_series_min(&m->fib),
	       bench_series_max(&m->fib),
	       bench_series_median(&m->peak) / 1048576.0,
	       bench_series_median(&m->growth) / 1048576.0,
	       bench_series_median(&m->fib_s));
	bench_csv_series(o, "rss_fibers", "bytes_per_task", &m->fib);
	series_div(&m->peak, 1048576.0, &frac);
	bench_csv_series(o, "rss_fibers", "peak_rss_mib", &frac);
	series_div(&m->growth, 1048576.0, &frac);
	bench_csv_series(o, "rss_fibers", "growth_mib", &frac);

	series_div(&m->fib, WEFT_STACK_SIZE_DEFAULT, &frac);
	printf("  per task / the 256 KiB default fiber stack: %.4f\n",
	       bench_series_median(&frac));
	bench_csv_series(o, "rss_fibers", "per_task_over_stack_size", &frac);
	bench_series_ratio(&m->fib, &m->thr, &ratio);
	if (ratio.n) {
		fmt_ratio(&ratio, rm, sizeof(rm), rr, sizeof(rr));
		printf("  per task / per blocked pthread: %s (%s)\n", rm, rr);
		bench_csv_series(o, "rss_fibers", "per_task_over_pthread",
				 &ratio);
	}
	printf("  guard regions (64 KiB PROT_NONE mappings) seen while suspended: %lu for %lu tasks, %lu mappings in all; vm.max_map_count %ld",
	       m->guards, c->tasks, m->maps, max_map);
	if (env)
		printf(", WEFT_GUARDED_STACKS=%s\n", env);
	else if (max_map > 4096)
		printf(", so weft's guarded-stack budget is about %ld\n",
		       (max_map - 4096) / 2);
	else
		printf("\n");
	bench_csv(o, "rss_fibers", "guarded_stacks_seen", (double)m->guards);
	bench_csv(o, "rss_fibers", "mappings", (double)m->maps);
}

static void report_targets(const struct ctx *c,
			   const struct bench_series t[NVARIANTS],
			   const struct bench_series cpu[NVARIANTS],
			   const struct mem *m)
{
	const struct bench_opts *o = c->o;
	struct bench_series ratio;
	char text[96], meas[64];
	double w;

	if (t[V_SUBMIT].n) {
		w = bench_series_median(&t[V_SUBMIT]);
		bench_series_ratio(&t[V_SUBMIT], &t[V_CALL], &ratio);
		if (ratio.n)
			snprintf(meas, sizeof(meas), "%.1f ns, %.0fx call (cpu %.1f)",
				 w, bench_series_median(&ratio),
				 bench_series_median(&cpu[V_SUBMIT]));
		else
			snprintf(meas, sizeof(meas), "%.1f ns (cpu %.1f)", w,
				 bench_series_median(&cpu[V_SUBMIT]));
		bench_target(o, "submit_await_1w_ns_le_30", w, w <= 30.0,
			     "submit+await in a task, 1 worker: ns/task <= 30",
			     meas);
	}
	if (t[V_YIELD].n) {
		w = bench_series_median(&t[V_YIELD]) / SWITCHES_PER_YIELD;
		snprintf(meas, sizeof(meas), "%.1f ns (cpu %.1f)", w,
			 bench_series_median(&cpu[V_YIELD]) /
				 SWITCHES_PER_YIELD);
		bench_target(o, "fiber_switch_ns_le_10", w, w <= 10.0,
			     "fiber switch (yield / 2): ns <= 10", meas);
	}
	if (m->fib.n) {
		w = bench_series_median(&m->peak) / 1048576.0;
		snprintf(text, sizeof(text),
			 "peak RSS, %lu suspended tasks <= 1 GiB", c->tasks);
		snprintf(meas, sizeof(meas), "%.1f MiB", w);
		bench_target(o, "suspended_tasks_peak_rss_mib_le_1024", w,
			     w <= 1024.0, text, meas);
	}
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_load load;
	static struct ctx c;
	static struct bench_series t[NVARIANTS], cpu[NVARIANTS];
	static struct mem m;
	bool do_thr, do_fib, hwm_ok = true;
	unsigned rounds;
	int err;

	bench_parse_args(&o, NAME, argc, argv);
	c.o = &o;
	rounds = bench_rounds(&o, 7, 11);
	c.n[V_CALL] = 1000000;
	c.n[V_SUBMIT] = 1000;
	c.n[V_SUBMIT_LONG] = 100000;
	c.n[V_SUSPEND] = 10000;
	c.n[V_XPOOL] = o.quick ? 300 : 1000;
	c.n[V_YIELD] = 10000;
	c.tasks = 100000; /* the target's count, --quick too: a few s */
	c.threads = 2000;
	c.rss_rounds = o.quick ? 1 : 3;
	if (o.rounds && o.rounds < c.rss_rounds)
		c.rss_rounds = o.rounds;
	do_thr = bench_selected(&o, "rss_pthreads");
	do_fib = bench_selected(&o, "rss_fibers");

	for (unsigned i = 0; i < 3; i++) {
		struct weft_pool_options wo;
		struct weft_pool **p = i == 0 ? &c.pool1 :
				       i == 1 ? &c.pool_a : &c.pool_b;

		weft_pool_options_init(&wo);
		wo.workers = 1;
		wo.name = i == 0 ? "w1" : i == 1 ? "wA" : "wB";
		err = weft_pool_create(&wo, p);
		if (err)
			die("weft_pool_create", err);
	}

	printf(NAME ": awaits, suspensions and suspended tasks; %u latency rounds, %u memory round%s%s\n",
	       rounds, c.rss_rounds, c.rss_rounds == 1 ? "" : "s",
	       o.quick ? " (quick)" : "");
	printf("  per run: %lu calls; %lu and %lu submit+awaits; %lu suspending awaits; %lu cross-pool awaits; 2 x %lu yields\n",
	       c.n[V_CALL], c.n[V_SUBMIT], c.n[V_SUBMIT_LONG], c.n[V_SUSPEND],
	       c.n[V_XPOOL], c.n[V_YIELD]);

	bench_load_begin(&load);
	/* Warm-up: wake the pools, fill the fiber caches; the submit+await
	 * run checks that its children were still queued at the await. */
	for (unsigned v = 0; v < NVARIANTS; v++)
		if (bench_selected(&o, variant_name[v]))
			run_once(&c, (enum variant)v, v == V_SUBMIT);
	c.susp_iters = c.susp_yields = c.susp_suspended = 0;
	c.xpool_awaits = c.xpool_not_done = 0;
	bench_sleep_ms(20);

	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned j = 0; j < NVARIANTS; j++) {
			enum variant v = (enum variant)((j + r) % NVARIANTS);
			double w, cp;

			if (!bench_selected(&o, variant_name[v]))
				continue;
			run_sample(&c, v, &w, &cp);
			bench_series_add(&t[v], w);
			bench_series_add(&cpu[v], cp);
			bench_sleep_ms(20);
		}
	}

	if (do_thr || do_fib)
		hwm_ok = reset_hwm();
	for (unsigned r = 0; r < c.rss_rounds; r++) {
		for (unsigned j = 0; j < 2; j++) {
			struct rss_result res = { 0 };

			if (((j + r) & 1) == 0) {
				if (!do_thr)
					continue;
				if (!rss_pthreads(&c, &res)) {
					do_thr = false;
					continue;
				}
				bench_series_add(&m.thr, res.per_unit);
				bench_series_add(&m.thr_s, res.seconds);
			} else {
				if (!do_fib)
					continue;
				rss_fibers(&c, &res);
				bench_series_add(&m.fib, res.per_unit);
				bench_series_add(&m.peak, res.peak);
				bench_series_add(&m.growth, res.growth);
				bench_series_add(&m.fib_s, res.seconds);
				m.guards = res.guards;
				m.maps = res.maps;
			}
			bench_sleep_ms(20);
		}
	}
	bench_load_end(&o, &load);

	report_latency(&c, t, cpu);
	if (!hwm_ok)
		printf("\nnote: /proc/self/clear_refs refused the VmHWM reset: peaks count from the start of the program\n");
	report_memory(&c, &m);
	printf("\n");
	report_targets(&c, t, cpu, &m);

	weft_pool_destroy(c.pool_b);
	weft_pool_destroy(c.pool_a);
	weft_pool_destroy(c.pool1);
	return 0;
}
