/*
 * test_spawn.c - fork/join (weft_spawn() / weft_join(), weft/async.h):
 * results of recursive fork/join trees on 1, 2 and 4 workers, children
 * run inline or stolen, errors and values through weft_join(), spawns
 * outside a task and past WEFT_SPAWN_DEPTH, children that suspend, parents
 * that suspend with children still queued (evacuation), and the misuse
 * that aborts with a message.
 *
 * Stealing is made certain, not likely: a parent that waits for its child
 * to start keeps spawning and joining trivial children, since a thief that
 * finds nothing shared asks the owner to share at its next spawn.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft.h>
#include <weft/async.h>

#include "weft_config.h"
#include "helpers.h"

#define MS (1000LL * 1000)

static int marker;

static void no_core(void)
{
	struct rlimit rl = {0, 0};

	setrlimit(RLIMIT_CORE, &rl);
}

/* Runs @fn(@arg) as a task on a fresh pool of @workers; returns the task's
 * error and its value in *@value. */
static int run_in_pool(unsigned workers, weft_task_fn fn, void *arg,
		       void **value)
{
	struct weft_pool *pool = pool_new(workers);
	struct weft_future *f = NULL;
	int err;

	cr_assert_not_null(pool);
	cr_assert_eq(weft_submit(pool, fn, arg, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	err = weft_future_error(f);
	if (value)
		*value = weft_future_value(f);
	weft_future_unref(f);
	weft_pool_destroy(pool);
	return err;
}

static int nop_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 0;
}

/* ---- recursive trees ------------------------------------------------ */

static int fib_task(void *arg, void **result)
{
	intptr_t n = (intptr_t)arg;
	struct weft_spawn sp;
	void *a = NULL, *b = NULL;
	int err;

	if (n < 2) {
		*result = (void *)n;
		return 0;
	}
	weft_spawn(&sp, fib_task, (void *)(n - 1));
	err = fib_task((void *)(n - 2), &b);
	if (weft_join(&sp, &a) != 0 || err != 0)
		return -EIO;
	*result = (void *)((intptr_t)a + (intptr_t)b);
	return 0;
}

static void check_fib(unsigned workers)
{
	void *v = NULL;

	cr_assert_eq(run_in_pool(workers, fib_task, (void *)20, &v), 0);
	cr_assert_eq((intptr_t)v, 6765, "fib(20) on %u workers gave %ld",
		     workers, (long)(intptr_t)v);
}

Test(spawn, fib_on_one_worker, .timeout = 30)
{
	check_fib(1);
}

Test(spawn, fib_on_two_workers, .timeout = 30)
{
	check_fib(2);
}

Test(spawn, fib_on_four_workers, .timeout = 30)
{
	check_fib(4);
}

Test(spawn, fib_outside_a_task_runs_inline, .timeout = 30)
{
	void *v = NULL;

	cr_assert_eq(fib_task((void *)20, &v), 0);
	cr_assert_eq((intptr_t)v, 6765);
}

struct sky {
	uint64_t num, size;
};

/* Skynet: each node spawns 10 children over its range of leaves; a leaf's
 * value is its number. */
static int skynet(void *arg, void **result)
{
	const struct sky *a = arg;
	struct weft_spawn sp[10];
	struct sky kids[10];
	uint64_t sum = 0;
	int err = 0;

	if (a->size == 1) {
		*result = (void *)(uintptr_t)a->num;
		return 0;
	}
	for (int i = 0; i < 10; i++) {
		kids[i].size = a->size / 10;
		kids[i].num = a->num + (uint64_t)i * kids[i].size;
		weft_spawn(&sp[i], skynet, &kids[i]);
	}
	for (int i = 9; i >= 0; i--) {
		void *v = NULL;
		int e = weft_join(&sp[i], &v);

		if (e)
			err = e;
		sum += (uintptr_t)v;
	}
	*result = (void *)(uintptr_t)sum;
	return err;
}

static void check_skynet(unsigned workers)
{
	struct sky root = {0, 100000};
	void *v = NULL;

	cr_assert_eq(run_in_pool(workers, skynet, &root, &v), 0);
	cr_assert_eq((uint64_t)(uintptr_t)v, 4999950000ull,
		     "skynet on %u workers gave %llu", workers,
		     (unsigned long long)(uintptr_t)v);
}

Test(spawn, skynet_tree_sums_on_one_worker, .timeout = 30)
{
	check_skynet(1);
}

Test(spawn, skynet_tree_sums_on_two_workers, .timeout = 30)
{
	check_skynet(2);
}

Test(spawn, skynet_tree_sums_on_four_workers, .timeout = 30)
{
	check_skynet(4);
}

/* fib again, but every leaf waits (a yield always suspends): each wait
 * hands the unjoined children of its fiber to the pool, so joins find
 * them handed off, stolen, running or done. */
static int fib_yield_task(void *arg, void **result)
{
	intptr_t n = (intptr_t)arg;
	struct weft_spawn sp;
	void *a = NULL, *b = NULL;
	int err;

	if (n < 2) {
		if (weft_yield() != 0)
			return -EIO;
		*result = (void *)n;
		return 0;
	}
	weft_spawn(&sp, fib_yield_task, (void *)(n - 1));
	err = fib_yield_task((void *)(n - 2), &b);
	if (weft_join(&sp, &a) != 0 || err != 0)
		return -EIO;
	*result = (void *)((intptr_t)a + (intptr_t)b);
	return 0;
}

static void check_fib_yield(unsigned workers)
{
	void *v = NULL;

	cr_assert_eq(run_in_pool(workers, fib_yield_task, (void *)15, &v), 0);
	cr_assert_eq((intptr_t)v, 610, "fib(15) on %u workers gave %ld",
		     workers, (long)(intptr_t)v);
}

Test(spawn, fib_with_waiting_leaves_on_one_worker, .timeout = 30)
{
	check_fib_yield(1);
}

Test(spawn, fib_with_waiting_leaves_on_two_workers, .timeout = 30)
{
	check_fib_yield(2);
}

Test(spawn, fib_with_waiting_leaves_on_four_workers, .timeout = 30)
{
	check_fib_yield(4);
}

/* ---- values and errors through join --------------------------------- */

struct child {
	int ret;	   /* what the child returns */
	void *value;	   /* what it stores in *result first */
	int64_t sleep_ns;  /* > 0: sleep that long first */
	atomic_int started;
	atomic_int finished;
	int worker;
	int sleep_r;
};

static void child_init(struct child *c, int ret, void *value,
		       int64_t sleep_ns)
{
	memset(c, 0, sizeof(*c));
	c->ret = ret;
	c->value = value;
	c->sleep_ns = sleep_ns;
	c->worker = -2;
	c->sleep_r = 1;
	atomic_init(&c->started, 0);
	atomic_init(&c->finished, 0);
}

static int child_task(void *arg, void **result)
{
	struct child *c = arg;

	c->worker = weft_worker_index();
	atomic_store(&c->started, 1);
	if (c->sleep_ns > 0)
		c->sleep_r = weft_sleep(c->sleep_ns);
	*result = c->value;
	atomic_store(&c->finished, 1);
	return c->ret;
}

struct joined {
	struct child *c;
	int err;
	void *value;
	bool ran_at_spawn;
	int parent_worker;
};

static int spawn_join_once(void *arg, void **result)
{
	struct joined *j = arg;
	struct weft_spawn sp;

	(void)result;
	j->value = (void *)&j->value; /* must be overwritten */
	weft_spawn(&sp, child_task, j->c);
	j->ran_at_spawn = atomic_load(&j->c->finished);
	j->parent_worker = weft_worker_index();
	j->err = weft_join(&sp, &j->value);
	return 0;
}

static void check_join(unsigned workers, int ret, void *value, int want_err,
		       void *want_value)
{
	struct child c;
	struct joined j = {.c = &c};

	child_init(&c, ret, value, 0);
	cr_assert_eq(run_in_pool(workers, spawn_join_once, &j, NULL), 0);
	cr_assert_eq(j.err, want_err, "join returned %d", j.err);
	cr_assert_eq(j.value, want_value);
	cr_assert(atomic_load(&c.finished));
}

Test(spawn, join_returns_the_childs_value, .timeout = 30)
{
	check_join(1, 0, &marker, 0, &marker);
}

Test(spawn, join_returns_the_childs_error_and_no_value, .timeout = 30)
{
	/* The child stored a value and then failed: the value is dropped. */
	check_join(1, -EIO, &marker, -EIO, NULL);
}

Test(spawn, positive_return_counts_as_success, .timeout = 30)
{
	check_join(1, 7, &marker, 0, &marker);
}

static int join_null_value(void *arg, void **result)
{
	struct child *c = arg;
	struct weft_spawn sp;
	int e1, e2;

	(void)result;
	weft_spawn(&sp, child_task, c);
	e1 = weft_join(&sp, NULL);
	/* The record may be reused once joined. */
	weft_spawn(&sp, fail_task, (void *)(intptr_t)-ENOENT);
	e2 = weft_join(&sp, NULL);
	return e1 == -EXDEV && e2 == -ENOENT ? 0 : -EIO;
}

Test(spawn, join_with_null_value_and_reuse_of_the_record, .timeout = 30)
{
	struct child c;

	child_init(&c, -EXDEV, &marker, 0);
	cr_assert_eq(run_in_pool(1, join_null_value, &c, NULL), 0);
	cr_assert(atomic_load(&c.finished));
}

Test(spawn, spawn_outside_a_task_runs_inline, .timeout = 30)
{
	struct weft_spawn sp;
	struct child c;
	void *v = NULL;

	child_init(&c, 0, &marker, 0);
	weft_spawn(&sp, child_task, &c);
	/* Already ran, on this thread. */
	cr_assert(atomic_load(&c.finished));
	cr_assert_eq(c.worker, -1);
	cr_assert_eq(weft_join(&sp, &v), 0);
	cr_assert_eq(v, &marker);

	child_init(&c, -EPIPE, &marker, 0);
	v = &c;
	weft_spawn(&sp, child_task, &c);
	cr_assert(atomic_load(&c.finished));
	cr_assert_eq(weft_join(&sp, &v), -EPIPE);
	cr_assert_null(v);
}

static void *spawn_on_thread(void *arg)
{
	struct joined *j = arg;

	spawn_join_once(j, NULL);
	return NULL;
}

Test(spawn, spawn_on_a_plain_thread_runs_inline, .timeout = 30)
{
	struct child c;
	struct joined j = {.c = &c};
	pthread_t t;

	child_init(&c, 0, &marker, 0);
	cr_assert_eq(pthread_create(&t, NULL, spawn_on_thread, &j), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert(j.ran_at_spawn);
	cr_assert_eq(j.err, 0);
	cr_assert_eq(j.value, &marker);
	cr_assert_eq(c.worker, -1);
}

/* ---- past WEFT_SPAWN_DEPTH ------------------------------------------ */

#define MANY (WEFT_SPAWN_DEPTH + 44)

struct many {
	struct child c[MANY];
	bool ran_at_spawn[MANY];
	int bad_join;
	uint64_t sum;
};

static int spawn_many(void *arg, void **result)
{
	struct many *m = arg;
	struct weft_spawn *sp = calloc(MANY, sizeof(*sp));

	(void)result;
	if (!sp)
		return -ENOMEM;
	for (int i = 0; i < MANY; i++) {
		weft_spawn(&sp[i], child_task, &m->c[i]);
		m->ran_at_spawn[i] = atomic_load(&m->c[i].finished);
	}
	for (int i = MANY - 1; i >= 0; i--) {
		void *v = NULL;

		if (weft_join(&sp[i], &v) != 0)
			m->bad_join++;
		m->sum += (uintptr_t)v;
	}
	free(sp);
	return 0;
}

static void check_many(unsigned workers)
{
	struct many *m = calloc(1, sizeof(*m));
	uint64_t want = 0;

	cr_assert_not_null(m);
	for (int i = 0; i < MANY; i++) {
		child_init(&m->c[i], 0, (void *)(uintptr_t)(i + 1), 0);
		want += (uint64_t)i + 1;
	}
	cr_assert_eq(run_in_pool(workers, spawn_many, m, NULL), 0);
	cr_assert_eq(m->bad_join, 0);
	cr_assert_eq(m->sum, want);
	/* The ones past the depth had run by the time weft_spawn returned. */
	for (int i = WEFT_SPAWN_DEPTH; i < MANY; i++)
		cr_assert(m->ran_at_spawn[i], "child %d did not run inline", i);
	free(m);
}

Test(spawn, more_than_spawn_depth_unjoined_children_on_one_worker,
     .timeout = 30)
{
	check_many(1);
}

Test(spawn, more_than_spawn_depth_unjoined_children_on_two_workers,
     .timeout = 30)
{
	check_many(2);
}

/* ---- stolen children ------------------------------------------------ */

/*
 * Spawn @c, then, without waiting (which would evacuate it), keep
 * spawning and joining trivial children until @c has started: only a
 * thief can have started it.
 */
static bool spawn_until_stolen(struct weft_spawn *sp, struct child *c)
{
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;

	weft_spawn(sp, child_task, c);
	while (!atomic_load(&c->started)) {
		struct weft_spawn t;

		if (weft_now() > give_up)
			return false;
		weft_spawn(&t, nop_task, NULL);
		weft_join(&t, NULL);
	}
	return true;
}

struct stolen {
	struct child c;
	bool stolen;
	bool finished_before_join;
	int parent_worker;
	int err;
	void *value;
};

static int parent_of_stolen(void *arg, void **result)
{
	struct stolen *s = arg;
	struct weft_spawn sp;

	(void)result;
	s->parent_worker = weft_worker_index();
	s->stolen = spawn_until_stolen(&sp, &s->c);
	if (!s->stolen) {
		/* Join anyway (it runs inline now), so the task is sound. */
		s->err = weft_join(&sp, &s->value);
		return 0;
	}
	s->finished_before_join = atomic_load(&s->c.finished);
	s->value = &s->value;
	s->err = weft_join(&sp, &s->value);
	return 0;
}

static void check_stolen(int ret, void *value, int want_err, void *want_value)
{
	struct stolen s = {.err = 1};

	child_init(&s.c, ret, value, 50 * MS);
	cr_assert_eq(run_in_pool(2, parent_of_stolen, &s, NULL), 0);
	cr_assert(s.stolen, "no idle worker stole the child");
	cr_assert_neq(s.c.worker, s.parent_worker);
	cr_assert_geq(s.c.worker, 0);
	cr_assert_eq(s.c.sleep_r, 0);
	cr_assert_eq(s.err, want_err, "join returned %d", s.err);
	cr_assert_eq(s.value, want_value);
	cr_log_info("child finished before the join: %d",
		    s.finished_before_join);
}

Test(spawn, join_waits_for_a_stolen_sleeping_child, .timeout = 30)
{
	check_stolen(0, &marker, 0, &marker);
}

Test(spawn, join_returns_the_error_of_a_stolen_child, .timeout = 30)
{
	check_stolen(-ENOSPC, &marker, -ENOSPC, NULL);
}

static int parent_of_inline_sleeper(void *arg, void **result)
{
	struct joined *j = arg;
	struct weft_spawn sp;

	(void)result;
	j->parent_worker = weft_worker_index();
	weft_spawn(&sp, child_task, j->c);
	/* Joined at once on the only worker: runs inline, and sleeps (the
	 * parent's fiber suspends inside the join). */
	j->err = weft_join(&sp, &j->value);
	return 0;
}

Test(spawn, child_run_inline_by_join_may_sleep, .timeout = 30)
{
	struct child c;
	struct joined j = {.c = &c, .err = 1};
	int64_t t0 = weft_now();

	child_init(&c, 0, &marker, 20 * MS);
	cr_assert_eq(run_in_pool(1, parent_of_inline_sleeper, &j, NULL), 0);
	cr_assert_eq(c.sleep_r, 0);
	cr_assert_geq(weft_now() - t0, 20 * MS);
	cr_assert_eq(j.err, 0);
	cr_assert_eq(j.value, &marker);
	cr_assert_eq(c.worker, 0);
}

struct cancel_join {
	struct child c;
	atomic_int joining;
	int err;
	void *value;
	bool cancelled_after;
};

static int parent_joins_while_cancelled(void *arg, void **result)
{
	struct cancel_join *s = arg;
	struct weft_spawn sp;

	(void)result;
	if (!spawn_until_stolen(&sp, &s->c)) {
		s->err = weft_join(&sp, &s->value);
		return -ETIMEDOUT;
	}
	atomic_store(&s->joining, 1);
	s->value = &s->value;
	s->err = weft_join(&sp, &s->value);
	s->cancelled_after = weft_task_cancelled();
	return 0;
}

Test(spawn, join_is_not_a_cancellation_point, .timeout = 30)
{
	/* The parent is cancelled while it waits for a stolen child: the
	 * join still waits for the child and gives its outcome (the child
	 * ignores how its own sleep ended). */
	struct weft_pool *pool = pool_new(2);
	struct cancel_join s = {.err = 1};
	struct weft_future *f = NULL;

	cr_assert_not_null(pool);
	child_init(&s.c, 0, &marker, 200 * MS);
	atomic_init(&s.joining, 0);
	cr_assert_eq(weft_submit(pool, parent_joins_while_cancelled, &s, &f),
		     0);
	cr_assert(wait_int(&s.joining, 1));
	cr_assert_eq(weft_future_cancel(f), -EBUSY);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_error(f), 0);
	cr_assert(atomic_load(&s.c.finished));
	cr_assert_eq(s.err, 0);
	cr_assert_eq(s.value, &marker);
	cr_assert(s.cancelled_after);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

/* ---- evacuation: the parent suspends with children still queued ----- */

struct evac {
	struct child c[8];
	int n;
	bool all_ran_before_join;
	int bad_join;
	int bad_sleep;
	uint64_t sum;
};

static bool all_finished(struct evac *e)
{
	for (int i = 0; i < e->n; i++)
		if (!atomic_load(&e->c[i].finished))
			return false;
	return true;
}

static int parent_sleeps_until_children_ran(void *arg, void **result)
{
	struct evac *e = arg;
	struct weft_spawn sp[8];
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;

	(void)result;
	for (int i = 0; i < e->n; i++)
		weft_spawn(&sp[i], child_task, &e->c[i]);
	/* The only worker runs us; the children can run only if our sleeps
	 * release them. */
	while (!all_finished(e) && weft_now() < give_up)
		e->bad_sleep += weft_sleep(MS) != 0;
	e->all_ran_before_join = all_finished(e);
	for (int i = e->n - 1; i >= 0; i--) {
		void *v = NULL;

		e->bad_join += weft_join(&sp[i], &v) != 0;
		e->sum += (uintptr_t)v;
	}
	return 0;
}

static void check_evac(int n)
{
	struct evac e = {.n = n};
	uint64_t want = 0;

	for (int i = 0; i < n; i++) {
		child_init(&e.c[i], 0, (void *)(uintptr_t)(100 + i), 0);
		want += 100 + (uint64_t)i;
	}
	cr_assert_eq(run_in_pool(1, parent_sleeps_until_children_ran, &e,
				 NULL), 0);
	cr_assert(e.all_ran_before_join,
		  "children queued by a parent that sleeps never ran");
	cr_assert_eq(e.bad_sleep, 0);
	cr_assert_eq(e.bad_join, 0);
	cr_assert_eq(e.sum, want);
}

Test(spawn, queued_child_runs_while_its_parent_sleeps, .timeout = 30)
{
	check_evac(1);
}

Test(spawn, queued_children_run_while_their_parent_sleeps, .timeout = 30)
{
	check_evac(8);
}

struct evac_future {
	struct weft_pool *pool;
	struct child c;
	int r_wait, r_task, join_err;
	void *value;
};

static int wait_for_child_flag(void *arg, void **result)
{
	struct child *c = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;

	(void)result;
	while (!atomic_load(&c->finished)) {
		if (weft_now() > give_up)
			return -ETIMEDOUT;
		if (weft_sleep(MS) != 0)
			return -EIO;
	}
	return 0;
}

static int parent_waits_on_a_future(void *arg, void **result)
{
	struct evac_future *e = arg;
	struct weft_future *f = NULL;
	struct weft_spawn sp;

	(void)result;
	weft_spawn(&sp, child_task, &e->c);
	/* A task that waits for what the child does. On the only worker it
	 * is still queued, so our wait runs it inline; when it sleeps, our
	 * fiber suspends with the child still in our queue. */
	if (weft_submit(e->pool, wait_for_child_flag, &e->c, &f) != 0)
		return -EIO;
	e->r_wait = weft_future_wait(f);
	e->r_task = weft_future_error(f);
	weft_future_unref(f);
	e->join_err = weft_join(&sp, &e->value);
	return 0;
}

Test(spawn, queued_child_runs_while_its_parent_waits_on_a_future,
     .timeout = 30)
{
	struct weft_pool *pool = pool_new(1);
	struct evac_future e = {.pool = pool, .r_wait = 1, .r_task = 1,
				.join_err = 1};
	struct weft_future *f = NULL;

	cr_assert_not_null(pool);
	child_init(&e.c, 0, &marker, 0);
	cr_assert_eq(weft_submit(pool, parent_waits_on_a_future, &e, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(weft_future_error(f), 0);
	cr_assert_eq(e.r_wait, 0);
	cr_assert_eq(e.r_task, 0, "the waited-for task gave %d", e.r_task);
	cr_assert_eq(e.join_err, 0);
	cr_assert_eq(e.value, &marker);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

struct evac_running {
	atomic_int parent_resumed;
	atomic_int child_started;
	bool child_saw_parent;
	bool started_before_join;
	int join_err;
	void *value;
	int sleep_r;
};

static int child_waits_for_parent(void *arg, void **result)
{
	struct evac_running *e = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;

	atomic_store(&e->child_started, 1);
	/* Blocks its worker's thread: the parent needs the other worker. */
	while (!atomic_load(&e->parent_resumed) && weft_now() < give_up)
		sleep_ms(1);
	e->child_saw_parent = atomic_load(&e->parent_resumed);
	*result = &marker;
	return 0;
}

static int parent_resumes_while_child_runs(void *arg, void **result)
{
	struct evac_running *e = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;
	struct weft_spawn sp;

	(void)result;
	weft_spawn(&sp, child_waits_for_parent, e);
	/* Suspending hands the child to the pool; it runs on some worker
	 * while we resume on the other one. */
	do
		e->sleep_r |= weft_sleep(MS);
	while (!atomic_load(&e->child_started) && weft_now() < give_up);
	e->started_before_join = atomic_load(&e->child_started);
	atomic_store(&e->parent_resumed, 1);
	e->join_err = weft_join(&sp, &e->value);
	return 0;
}

Test(spawn, join_waits_for_a_child_handed_off_and_still_running,
     .timeout = 30)
{
	struct evac_running e = {.join_err = 1};

	atomic_init(&e.parent_resumed, 0);
	atomic_init(&e.child_started, 0);
	cr_assert_eq(run_in_pool(2, parent_resumes_while_child_runs, &e, NULL),
		     0);
	cr_assert_eq(e.sleep_r, 0);
	cr_assert(e.started_before_join,
		  "the child of a sleeping parent never started");
	cr_assert(e.child_saw_parent,
		  "the child never saw its parent resume");
	cr_assert_eq(e.join_err, 0);
	cr_assert_eq(e.value, &marker);
}

/* ---- misuse --------------------------------------------------------- */

static int join_out_of_order(void *arg, void **result)
{
	struct weft_spawn a, b;

	(void)arg;
	(void)result;
	weft_spawn(&a, nop_task, NULL);
	weft_spawn(&b, nop_task, NULL);
	weft_join(&a, NULL); /* b first: aborts */
	weft_join(&b, NULL);
	return 0;
}

static int join_twice(void *arg, void **result)
{
	struct weft_spawn a;

	(void)arg;
	(void)result;
	weft_spawn(&a, nop_task, NULL);
	weft_join(&a, NULL);
	weft_join(&a, NULL); /* aborts */
	return 0;
}

static int return_unjoined(void *arg, void **result)
{
	struct weft_spawn *a = arg;

	(void)result;
	/* The record outlives the task, so only the missing join is wrong. */
	weft_spawn(a, nop_task, NULL);
	return 0; /* aborts */
}

static void misuse_in_pool(weft_task_fn fn, void *arg)
{
	struct weft_pool *pool = pool_new(1);
	struct weft_future *f = NULL;

	no_core();
	cr_assert_not_null(pool);
	cr_assert_eq(weft_submit(pool, fn, arg, &f), 0);
	weft_future_wait(f);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

#if WEFT_DEBUG_CHECKS
/* Another task's join: A spawns one child and waits, without suspending,
 * until B has tried to join it. */
struct foreign {
	_Atomic(struct weft_spawn *) sp;
	atomic_int joined;
};

static int foreign_owner(void *arg, void **result)
{
	struct foreign *x = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;
	struct weft_spawn sp;

	(void)result;
	weft_spawn(&sp, nop_task, NULL);
	atomic_store(&x->sp, &sp);
	while (!atomic_load(&x->joined) && weft_now() < give_up)
		sched_yield(); /* the thread, not the task: no suspension */
	/* If B's join was accepted, it popped the child off our queue, and
	 * we may not join it again; return as if it were ours. */
	return 0;
}

static int foreign_joiner(void *arg, void **result)
{
	struct foreign *x = arg;
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;
	struct weft_spawn *sp;

	(void)result;
	while (!(sp = atomic_load(&x->sp)) && weft_now() < give_up)
		weft_sleep(MS);
	if (sp)
		weft_join(sp, NULL); /* aborts */
	atomic_store(&x->joined, 1);
	return 0;
}

static void join_from_other_task(void)
{
	struct weft_pool *pool = pool_new(2);
	struct weft_future *a = NULL, *b = NULL;
	struct foreign x;

	no_core();
	cr_assert_not_null(pool);
	atomic_init(&x.sp, NULL);
	atomic_init(&x.joined, 0);
	cr_assert_eq(weft_submit(pool, foreign_owner, &x, &a), 0);
	cr_assert_eq(weft_submit(pool, foreign_joiner, &x, &b), 0);
	weft_future_wait(a);
	weft_future_wait(b);
	weft_future_unref(a);
	weft_future_unref(b);
	weft_pool_destroy(pool);
}
#endif

Test(spawn, join_out_of_lifo_order_aborts, .signal = SIGABRT, .timeout = 30)
{
	misuse_in_pool(join_out_of_order, NULL);
}

Test(spawn, join_twice_aborts, .signal = SIGABRT, .timeout = 30)
{
	misuse_in_pool(join_twice, NULL);
}

Test(spawn, join_twice_outside_a_task_aborts, .signal = SIGABRT,
     .timeout = 30)
{
	struct weft_spawn a;

	no_core();
	weft_spawn(&a, nop_task, NULL);
	weft_join(&a, NULL);
	weft_join(&a, NULL);
}

Test(spawn, task_returning_with_an_unjoined_child_aborts, .signal = SIGABRT,
     .timeout = 30)
{
	static struct weft_spawn a;

	misuse_in_pool(return_unjoined, &a);
}

#if WEFT_DEBUG_CHECKS
/* Caught only with debug checks (it costs a thread-local read per join);
 * without them it is undefined behaviour, so the test is compiled out. */
Test(spawn, join_from_another_task_aborts, .signal = SIGABRT, .timeout = 30)
{
	join_from_other_task();
}
#endif


static void out_of_order_child(void)
{
	misuse_in_pool(join_out_of_order, NULL);
}

static void twice_child(void)
{
	misuse_in_pool(join_twice, NULL);
}

static void unjoined_child(void)
{
	static struct weft_spawn a;

	misuse_in_pool(return_unjoined, &a);
}

static void check_abort_message(void (*fn)(void), const char *what)
{
	char out[8192];
	int status;

	run_child(fn, out, sizeof(out), &status);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		  "child status %#x, stderr: %s", status, out);
	cr_assert(strstr(out, "weft"), "stderr was: %s", out);
	cr_assert(strstr(out, what), "no \"%s\" in: %s", what, out);
}

Test(spawn, out_of_order_join_message_says_reverse_order, .timeout = 30)
{
	check_abort_message(out_of_order_child, "reverse order");
}

Test(spawn, double_join_message_says_joined_twice, .timeout = 30)
{
	check_abort_message(twice_child, "joined twice");
}

Test(spawn, unjoined_child_message_says_not_joined, .timeout = 30)
{
	check_abort_message(unjoined_child, "not joined");
}

#if WEFT_DEBUG_CHECKS
Test(spawn, foreign_join_message_names_the_other_task, .timeout = 30)
{
	check_abort_message(join_from_other_task, "other than the one");
}
#endif
