/*
 * test_cgroup.c - the cgroup CPU quota parser behind weft_cpu_count(),
 * run against fake /proc/self/cgroup texts and fake cgroup trees made in a
 * temporary directory, so every layout (v2, v1, nested limits, no limit)
 * is exercised whatever machine runs the tests.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cpu.h"

static char root[256];

static void mkdirs(const char *rel)
{
	char path[512], *p;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (p = path + strlen(root) + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
	mkdir(path, 0755);
}

static void put(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	cr_assert(f, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	snprintf(root, sizeof(root), "/tmp/weft-cgroup-XXXXXX");
	cr_assert(mkdtemp(root));
}

static void teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(cgroup, .init = setup, .fini = teardown);

Test(cgroup, v2_quota_rounds_up)
{
	mkdirs("app/web");
	put("app/web/cpu.max", "150000 100000\n");
	cr_assert_eq(weft__cgroup_cpu_limit("0::/app/web\n", root), 2);
}

Test(cgroup, v2_max_means_no_limit)
{
	mkdirs("app");
	put("app/cpu.max", "max 100000\n");
	cr_assert_eq(weft__cgroup_cpu_limit("0::/app\n", root), 0);
}

Test(cgroup, v2_parent_limit_applies_to_child)
{
	/* Go #81180: a nested cgroup is bound by its parent's quota. */
	mkdirs("outer/inner");
	put("outer/cpu.max", "300000 100000\n");
	put("outer/inner/cpu.max", "max 100000\n");
	cr_assert_eq(weft__cgroup_cpu_limit("0::/outer/inner\n", root), 3);
}

Test(cgroup, v2_smallest_limit_on_the_path_wins)
{
	mkdirs("a/b/c");
	put("a/cpu.max", "200000 100000\n");
	put("a/b/cpu.max", "800000 100000\n");
	put("a/b/c/cpu.max", "max 100000\n");
	cr_assert_eq(weft__cgroup_cpu_limit("0::/a/b/c\n", root), 2);
}

Test(cgroup, v2_fraction_of_a_cpu_gives_one_not_zero)
{
	/* oneTBB #2056: a quota under one CPU must not round to 0. */
	mkdirs("tiny");
	put("tiny/cpu.max", "20000 100000\n");
	cr_assert_eq(weft__cgroup_cpu_limit("0::/tiny\n", root), 1);
}

Test(cgroup, v2_namespace_root_is_read)
{
	/* Inside a cgroup namespace the path is "/", and the limit sits on
	 * the mount root itself. */
	put("cpu.max", "400000 100000\n");
	cr_assert_eq(weft__cgroup_cpu_limit("0::/\n", root), 4);
}

Test(cgroup, v1_cpu_controller_quota)
{
	mkdirs("cpu,cpuacct/docker/abc");
	put("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "250000\n");
	put("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
	cr_assert_eq(weft__cgroup_cpu_limit("12:memory:/docker/abc\n"
					    "4:cpu,cpuacct:/docker/abc\n",
					    root),
		     3);
}

Test(cgroup, v1_minus_one_means_no_limit)
{
	mkdirs("cpu/x");
	put("cpu/x/cpu.cfs_quota_us", "-1\n");
	put("cpu/x/cpu.cfs_period_us", "100000\n");
	cr_assert_eq(weft__cgroup_cpu_limit("3:cpu:/x\n", root), 0);
}

Test(cgroup, no_files_no_limit)
{
	cr_assert_eq(weft__cgroup_cpu_limit("0::/nowhere\n", root), 0);
	cr_assert_eq(weft__cgroup_cpu_limit("", root), 0);
	cr_assert_eq(weft__cgroup_cpu_limit("garbage without colons", root),
		     0);
}
