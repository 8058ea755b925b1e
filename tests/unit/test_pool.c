/*
 * test_pool.c - weft/pool.h: creating pools, worker threads, their names,
 * hooks and indices.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <weft.h>

#include "helpers.h"

#define MAX_NAMES 256

/* Names of this process's threads, from /proc/self/task/<tid>/comm. */
struct thread_names {
	size_t n;
	char name[MAX_NAMES][16];
};

static void read_thread_names(struct thread_names *tn)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	cr_assert_not_null(d);
	tn->n = 0;
	while ((e = readdir(d)) != NULL && tn->n < MAX_NAMES) {
		char path[300];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(tn->name[tn->n], sizeof(tn->name[0]), f)) {
			tn->name[tn->n][strcspn(tn->name[tn->n], "\n")] = '\0';
			tn->n++;
		}
		fclose(f);
	}
	closedir(d);
}

static size_t count_named(const struct thread_names *tn, const char *name)
{
	size_t hits = 0;

	for (size_t i = 0; i < tn->n; i++)
		hits += strcmp(tn->name[i], name) == 0;
	return hits;
}

static size_t thread_count(void)
{
	struct thread_names tn;

	read_thread_names(&tn);
	return tn.n;
}

static struct weft_pool *pool_named(unsigned workers, const char *name)
{
	struct weft_pool_options opts;
	struct weft_pool *pool = NULL;

	weft_pool_options_init(&opts);
	opts.workers = workers;
	opts.name = name;
	cr_assert_eq(weft_pool_create(&opts, &pool), 0);
	cr_assert_not_null(pool);
	return pool;
}

Test(pool, options_init_fills_defaults)
{
	struct weft_pool_options opts;

	memset(&opts, 0xa5, sizeof(opts));
	weft_pool_options_init(&opts);
	cr_assert_eq(opts.workers, 0);
	cr_assert_null(opts.name);
	cr_assert_null(opts.on_worker_start);
	cr_assert_null(opts.on_worker_stop);
	cr_assert_null(opts.hook_arg);
}

Test(pool, create_with_null_options_uses_cpu_count, .timeout = 30)
{
	struct weft_pool *pool = NULL;

	cr_assert_eq(weft_pool_create(NULL, &pool), 0);
	cr_assert_not_null(pool);
	cr_assert_geq(weft_pool_workers(pool), 1);
	cr_assert_eq(weft_pool_workers(pool), weft_cpu_count());
	weft_pool_destroy(pool);
}

Test(pool, create_with_default_options_uses_cpu_count, .timeout = 30)
{
	struct weft_pool_options opts;
	struct weft_pool *pool = NULL;

	weft_pool_options_init(&opts);
	cr_assert_eq(weft_pool_create(&opts, &pool), 0);
	cr_assert_eq(weft_pool_workers(pool), weft_cpu_count());
	weft_pool_destroy(pool);
}

Test(pool, create_with_explicit_worker_count, .timeout = 30)
{
	struct weft_pool *pool = pool_new(3);

	cr_assert_not_null(pool);
	cr_assert_eq(weft_pool_workers(pool), 3);
	weft_pool_destroy(pool);
}

Test(pool, create_starts_one_thread_per_worker, .timeout = 30)
{
	size_t before = thread_count();
	struct weft_pool *pool = pool_named(5, "fivew");
	struct thread_names tn;

	read_thread_names(&tn);
	/* weft may keep helper threads of its own, but at least the workers. */
	cr_assert_geq(tn.n, before + 5);
	for (unsigned i = 0; i < 5; i++) {
		char want[16];

		snprintf(want, sizeof(want), "fivew-%u", i);
		cr_assert_eq(count_named(&tn, want), 1, "no thread named %s", want);
	}
	weft_pool_destroy(pool);
}

Test(pool, create_with_too_many_workers_is_einval, .timeout = 30)
{
	struct weft_pool_options opts;
	struct weft_pool *sentinel = (struct weft_pool *)&opts;
	struct weft_pool *pool = sentinel;
	size_t before = thread_count();

	weft_pool_options_init(&opts);
	opts.workers = WEFT_MAX_WORKERS + 1;
	cr_assert_eq(weft_pool_create(&opts, &pool), -EINVAL);
	cr_assert(pool == sentinel || pool == NULL,
		  "out must be left alone or NULL on failure");
	/* Nothing left behind: no thread was started (or all were joined). */
	cr_assert_eq(thread_count(), before);
}

Test(pool, create_with_null_out_is_einval)
{
	struct weft_pool_options opts;

	weft_pool_options_init(&opts);
	opts.workers = 1;
	cr_assert_eq(weft_pool_create(&opts, NULL), -EINVAL);
	cr_assert_eq(weft_pool_create(NULL, NULL), -EINVAL);
}

Test(pool, workers_are_named_prefix_dash_index, .timeout = 30)
{
	struct weft_pool *pool = pool_named(2, "tst");
	struct thread_names tn;

	read_thread_names(&tn);
	cr_assert_eq(count_named(&tn, "tst-0"), 1);
	cr_assert_eq(count_named(&tn, "tst-1"), 1);
	cr_assert_eq(count_named(&tn, "tst-2"), 0);
	weft_pool_destroy(pool);
}

Test(pool, default_worker_name_is_weft, .timeout = 30)
{
	struct weft_pool *pool = pool_named(2, NULL);
	struct thread_names tn;

	read_thread_names(&tn);
	cr_assert_eq(count_named(&tn, "weft-0"), 1);
	cr_assert_eq(count_named(&tn, "weft-1"), 1);
	weft_pool_destroy(pool);
}

struct name_probe {
	int index;
	int getname_rc;
	char name[16];
};

static int name_probe_task(void *arg, void **result)
{
	struct name_probe *p = arg;

	(void)result;
	p->index = weft_worker_index();
	p->getname_rc = pthread_getname_np(pthread_self(), p->name,
					   sizeof(p->name));
	return 0;
}

Test(pool, task_runs_on_thread_named_after_its_worker_index, .timeout = 30)
{
	struct weft_pool *pool = pool_named(2, "probe");
	struct name_probe p = { -2, -1, "" };
	struct weft_future *f = NULL;
	char want[16];

	cr_assert_eq(weft_submit(pool, name_probe_task, &p, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(p.getname_rc, 0);
	cr_assert(p.index == 0 || p.index == 1, "index %d", p.index);
	snprintf(want, sizeof(want), "probe-%d", p.index);
	cr_assert_str_eq(p.name, want);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(pool, long_name_is_cut_to_15_characters, .timeout = 30)
{
	struct weft_pool *pool = pool_named(1, "abcdefghijklmnopqrstuvwxyz");
	struct name_probe p = { -2, -1, "" };
	struct weft_future *f = NULL;

	cr_assert_eq(weft_submit(pool, name_probe_task, &p, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_eq(p.getname_rc, 0);
	cr_assert_eq(strlen(p.name), 15, "name \"%s\"", p.name);
	cr_assert_eq(strncmp(p.name, "abcdefghij", 10), 0, "name \"%s\"", p.name);
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

Test(pool, name_is_copied_at_create, .timeout = 30)
{
	char *name = strdup("copy");
	struct weft_pool *pool;
	struct name_probe p = { -2, -1, "" };
	struct weft_future *f = NULL;

	cr_assert_not_null(name);
	pool = pool_named(1, name);
	/* Under ASan a pool that kept the pointer reads freed memory. */
	memset(name, 'X', 4);
	free(name);
	cr_assert_eq(weft_submit(pool, name_probe_task, &p, &f), 0);
	cr_assert_eq(weft_future_wait(f), 0);
	cr_assert_str_eq(p.name, "copy-0");
	weft_future_unref(f);
	weft_pool_destroy(pool);
}

#define HOOK_WORKERS 4

struct hook_log {
	atomic_int start[HOOK_WORKERS];
	atomic_int stop[HOOK_WORKERS];
	atomic_int out_of_range;
	atomic_int bad_arg;
	atomic_int started_total;
	pid_t start_tid[HOOK_WORKERS];
	pid_t stop_tid[HOOK_WORKERS];
};

static struct hook_log *hook_log_expected;

static void hook_start(unsigned index, void *arg)
{
	struct hook_log *log = arg;

	if (log != hook_log_expected)
		atomic_fetch_add(&hook_log_expected->bad_arg, 1);
	if (index >= HOOK_WORKERS) {
		atomic_fetch_add(&log->out_of_range, 1);
		return;
	}
	log->start_tid[index] = (pid_t)syscall(SYS_gettid);
	atomic_fetch_add(&log->start[index], 1);
	atomic_fetch_add(&log->started_total, 1);
}

static void hook_stop(unsigned index, void *arg)
{
	struct hook_log *log = arg;

	if (log != hook_log_expected)
		atomic_fetch_add(&hook_log_expected->bad_arg, 1);
	if (index >= HOOK_WORKERS) {
		atomic_fetch_add(&log->out_of_range, 1);
		return;
	}
	log->stop_tid[index] = (pid_t)syscall(SYS_gettid);
	atomic_fetch_add(&log->stop[index], 1);
}

static struct weft_pool *pool_with_hooks(struct hook_log *log)
{
	struct weft_pool_options opts;
	struct weft_pool *pool = NULL;

	memset(log, 0, sizeof(*log));
	hook_log_expected = log;
	weft_pool_options_init(&opts);
	opts.workers = HOOK_WORKERS;
	opts.on_worker_start = hook_start;
	opts.on_worker_stop = hook_stop;
	opts.hook_arg = log;
	cr_assert_eq(weft_pool_create(&opts, &pool), 0);
	return pool;
}

Test(pool, start_hook_runs_once_per_worker_before_create_returns, .timeout = 30)
{
	struct hook_log log;
	struct weft_pool *pool = pool_with_hooks(&log);

	/* create blocks until every worker has run its start hook. */
	for (unsigned i = 0; i < HOOK_WORKERS; i++)
		cr_assert_eq(atomic_load(&log.start[i]), 1, "worker %u", i);
	cr_assert_eq(atomic_load(&log.out_of_range), 0);
	cr_assert_eq(atomic_load(&log.bad_arg), 0);
	weft_pool_destroy(pool);
	for (unsigned i = 0; i < HOOK_WORKERS; i++)
		cr_assert_eq(atomic_load(&log.start[i]), 1, "worker %u", i);
}

Test(pool, stop_hook_runs_once_per_worker_by_destroy, .timeout = 30)
{
	struct hook_log log;
	struct weft_pool *pool = pool_with_hooks(&log);

	for (unsigned i = 0; i < HOOK_WORKERS; i++)
		cr_assert_eq(atomic_load(&log.stop[i]), 0, "worker %u", i);
	weft_pool_destroy(pool);
	for (unsigned i = 0; i < HOOK_WORKERS; i++)
		cr_assert_eq(atomic_load(&log.stop[i]), 1, "worker %u", i);
	cr_assert_eq(atomic_load(&log.out_of_range), 0);
	cr_assert_eq(atomic_load(&log.bad_arg), 0);
}

Test(pool, hooks_run_on_distinct_worker_threads, .timeout = 30)
{
	struct hook_log log;
	struct weft_pool *pool = pool_with_hooks(&log);
	pid_t self = (pid_t)syscall(SYS_gettid);

	weft_pool_destroy(pool);
	for (unsigned i = 0; i < HOOK_WORKERS; i++) {
		cr_assert_neq(log.start_tid[i], self);
		cr_assert_eq(log.start_tid[i], log.stop_tid[i],
			     "worker %u started and stopped on different threads", i);
		for (unsigned j = 0; j < i; j++)
			cr_assert_neq(log.start_tid[i], log.start_tid[j]);
	}
}

Test(pool, worker_index_is_minus_one_on_main_thread)
{
	cr_assert_eq(weft_worker_index(), -1);
}

static void *index_thread_main(void *arg)
{
	*(int *)arg = weft_worker_index();
	return NULL;
}

Test(pool, worker_index_is_minus_one_on_foreign_thread_while_pool_runs,
     .timeout = 30)
{
	struct weft_pool *pool = pool_new(2);
	int index = 7;
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, index_thread_main, &index), 0);
	pthread_join(t, NULL);
	cr_assert_eq(index, -1);
	cr_assert_eq(weft_worker_index(), -1);
	weft_pool_destroy(pool);
}

#define INDEX_TASKS 64

static int index_task(void *arg, void **result)
{
	(void)arg;
	*result = (void *)(intptr_t)weft_worker_index();
	return 0;
}

Test(pool, worker_index_is_in_range_inside_tasks, .timeout = 30)
{
	struct weft_pool *pool = pool_new(3);
	struct weft_future *f[INDEX_TASKS];

	for (int i = 0; i < INDEX_TASKS; i++)
		cr_assert_eq(weft_submit(pool, index_task, NULL, &f[i]), 0);
	for (int i = 0; i < INDEX_TASKS; i++) {
		intptr_t index;

		cr_assert_eq(weft_future_wait(f[i]), 0);
		index = (intptr_t)weft_future_value(f[i]);
		cr_assert(index >= 0 && index < 3, "task %d saw index %ld", i,
			  (long)index);
		weft_future_unref(f[i]);
	}
	weft_pool_destroy(pool);
}

Test(pool, create_and_destroy_many_workers, .timeout = 30)
{
	struct weft_pool *pool = pool_new(64);
	atomic_int count = 0;

	cr_assert_not_null(pool);
	cr_assert_eq(weft_pool_workers(pool), 64);
	for (int i = 0; i < 256; i++)
		cr_assert_eq(weft_submit(pool, count_task, &count, NULL), 0);
	weft_pool_destroy(pool);
	cr_assert_eq(atomic_load(&count), 256);
}

Test(pool, destroy_null_is_ignored)
{
	weft_pool_destroy(NULL);
}
