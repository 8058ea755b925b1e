/*
 * test_cpu.c - weft_cpu_count(): the CPUs the caller may use.
 *
 * pool.h says "the number of CPUs this process may use: the CPUs in its
 * affinity mask". Linux keeps the affinity mask per thread, and
 * sched_getaffinity(0) (what taskset, nproc and Python's
 * os.sched_getaffinity(0) read) returns the calling thread's. The tests pin
 * that reading: a thread that narrowed its own mask sees the narrowed
 * count, which is also what a pool created from that thread gets by
 * default.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

#include "helpers.h"

static unsigned affinity_count(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	return (unsigned)CPU_COUNT(&set);
}

/* ceil(quota / period) from a cgroup v2 cpu.max, or 0 when unlimited or
 * unreadable. */
static unsigned v2_quota_cpus(const char *path)
{
	char quota[32];
	long long period;
	unsigned cpus = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	if (fscanf(f, "%31s %lld", quota, &period) == 2 &&
	    quota[0] != 'm' && period > 0) {
		long long q = atoll(quota);

		if (q > 0)
			cpus = (unsigned)((q + period - 1) / period);
	}
	fclose(f);
	return cpus;
}

/* The same for cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us under @dir. */
static unsigned v1_quota_cpus(const char *dir)
{
	char path[256];
	long long quota = -1, period = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%lld", &quota) != 1)
		quota = -1;
	fclose(f);
	snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%lld", &period) != 1)
		period = 0;
	fclose(f);
	if (quota <= 0 || period <= 0)
		return 0;
	return (unsigned)((quota + period - 1) / period);
}

Test(cpu, count_is_at_least_one_and_within_affinity_mask)
{
	unsigned n = weft_cpu_count();

	cr_assert_geq(n, 1);
	cr_assert_leq(n, affinity_count());
}

/*
 * Only an upper bound: the quota of a cgroup this test cannot see (a
 * parent outside the container's namespace) may lower the count further.
 */
Test(cpu, count_respects_visible_cgroup_quota)
{
	const char *v1_dirs[] = { "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct",
				  "/sys/fs/cgroup/cpuacct,cpu" };
	unsigned n = weft_cpu_count();
	unsigned q = v2_quota_cpus("/sys/fs/cgroup/cpu.max");

	if (q)
		cr_assert_leq(n, q);
	for (size_t i = 0; i < sizeof(v1_dirs) / sizeof(v1_dirs[0]); i++) {
		q = v1_quota_cpus(v1_dirs[i]);
		if (q)
			cr_assert_leq(n, q);
	}
	cr_assert_geq(n, 1);
}

struct narrowed {
	int setaffinity_rc;
	unsigned count;
	unsigned pool_workers;
	int create_rc;
};

static void *narrowed_main(void *arg)
{
	struct narrowed *n = arg;
	cpu_set_t set, one;
	struct weft_pool *pool = NULL;
	int cpu;

	CPU_ZERO(&set);
	sched_getaffinity(0, sizeof(set), &set);
	for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set); cpu++)
		;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	n->setaffinity_rc = pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
	n->count = weft_cpu_count();
	n->create_rc = weft_pool_create(NULL, &pool);
	if (n->create_rc == 0) {
		n->pool_workers = weft_pool_workers(pool);
		weft_pool_destroy(pool);
	}
	return NULL;
}

Test(cpu, thread_with_one_cpu_mask_counts_one, .timeout = 30)
{
	struct narrowed n = { -1, 0, 0, -1 };
	unsigned main_before = weft_cpu_count();
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, narrowed_main, &n), 0);
	pthread_join(t, NULL);
	cr_assert_eq(n.setaffinity_rc, 0);
	cr_assert_eq(n.count, 1);
	/* Narrowing another thread's mask does not change this thread's. */
	cr_assert_eq(weft_cpu_count(), main_before);
}

Test(cpu, default_pool_from_narrowed_thread_has_one_worker, .timeout = 30)
{
	struct narrowed n = { -1, 0, 0, -1 };
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, narrowed_main, &n), 0);
	pthread_join(t, NULL);
	cr_assert_eq(n.setaffinity_rc, 0);
	cr_assert_eq(n.create_rc, 0);
	cr_assert_eq(n.pool_workers, 1);
}
