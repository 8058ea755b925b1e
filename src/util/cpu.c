/*
 * util/cpu.c - the default worker count: the CPUs in the affinity mask,
 * lowered to the cgroup CPU quota.
 *
 * A container limited to 2 CPUs on a 64-core host must get 2 workers, and
 * never 0 (oneTBB issue #2056: a quota below one CPU rounded to 0 workers
 * and task_group::wait() hung). Go's GOMAXPROCS became quota-aware for the
 * same reason (golang/go #73193) and also honours the parents' limits
 * (#81180), which a nested cgroup inherits: so we take the minimum along
 * the path to the root. cgroup v2 keeps the quota in "cpu.max" ("max
 * 100000" or "<quota> <period>"); v1 in cpu.cfs_quota_us (-1 = none) and
 * cpu.cfs_period_us. Read once per weft_cpu_count() call; no thread state.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft/pool.h"
#include "util/cpu.h"
#include "weft_config.h"

/* ceil(quota / period), or 0 for "no limit" or unreadable values. */
static unsigned quota_to_cpus(long long quota, long long period)
{
	if (quota <= 0 || period <= 0)
		return 0;
	return (unsigned)((quota + period - 1) / period);
}

static int read_file(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "re");
	size_t n;

	if (!fp)
		return -1;
	n = fread(buf, 1, len - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return 0;
}

static unsigned v2_limit(const char *dir)
{
	char path[4096], buf[128], max[32];
	long long period = 0;

	snprintf(path, sizeof(path), "%s/cpu.max", dir);
	if (read_file(path, buf, sizeof(buf)) != 0)
		return 0;
	if (sscanf(buf, "%31s %lld", max, &period) != 2 ||
	    strcmp(max, "max") == 0)
		return 0;
	return quota_to_cpus(atoll(max), period);
}

static unsigned v1_limit(const char *dir)
{
	char path[4096], buf[64];
	long long quota, period;

	snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
	if (read_file(path, buf, sizeof(buf)) != 0)
		return 0;
	quota = atoll(buf);
	snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
	if (read_file(path, buf, sizeof(buf)) != 0)
		return 0;
	period = atoll(buf);
	return quota_to_cpus(quota, period);
}

/* Minimum non-zero limit over @base/@rel and each of its parents, up to and
 * including @base itself (the container's own cgroup when a cgroup
 * namespace shows its path as "/"). */
static unsigned walk_up(const char *base, const char *rel, int v2)
{
	char path[4096];
	size_t blen = strlen(base);
	unsigned best = 0;

	snprintf(path, sizeof(path), "%s/%s", base, rel[0] == '/' ? rel + 1 : rel);
	for (;;) {
		size_t len = strlen(path);
		unsigned lim;
		char *slash;

		while (len > blen && path[len - 1] == '/')
			path[--len] = '\0';
		lim = v2 ? v2_limit(path) : v1_limit(path);
		if (lim && (!best || lim < best))
			best = lim;
		if (len <= blen)
			break;
		slash = strrchr(path + blen, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	return best;
}

unsigned weft__cgroup_cpu_limit(const char *proc_cgroup,
				const char *cgroup_root)
{
	unsigned best = 0;
	const char *line = proc_cgroup;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		char buf[4096], base[4096];
		char *c1, *c2;
		unsigned lim = 0;

		if (len >= sizeof(buf))
			len = sizeof(buf) - 1;
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = eol ? eol + 1 : NULL;

		/* "hierarchy-id:controllers:path" */
		c1 = strchr(buf, ':');
		c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c1 || !c2)
			continue;
		*c1 = *c2 = '\0';
		if (strcmp(buf, "0") == 0 && c1[1] == '\0') {
			snprintf(base, sizeof(base), "%s", cgroup_root);
			/* A pure v2 mount, or the v2 part of a hybrid one
			 * under "unified". */
			lim = walk_up(base, c2 + 1, 1);
			if (!lim) {
				snprintf(base, sizeof(base), "%s/unified",
					 cgroup_root);
				lim = walk_up(base, c2 + 1, 1);
			}
		} else {
			/* v1: the line must name the cpu controller. */
			char *tok, *save = NULL;
			int has_cpu = 0;
			char ctl[256];

			snprintf(ctl, sizeof(ctl), "%s", c1 + 1);
			for (tok = strtok_r(ctl, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save))
				has_cpu |= strcmp(tok, "cpu") == 0;
			if (!has_cpu)
				continue;
			snprintf(base, sizeof(base), "%s/%s", cgroup_root,
				 c1 + 1);
			lim = walk_up(base, c2 + 1, 0);
			if (!lim) {
				snprintf(base, sizeof(base), "%s/cpu",
					 cgroup_root);
				lim = walk_up(base, c2 + 1, 0);
			}
		}
		if (lim && (!best || lim < best))
			best = lim;
	}
	return best;
}

WEFT_API unsigned weft_cpu_count(void)
{
	unsigned n = 0, quota;
	char buf[4096];

#if WEFT_HAVE_SCHED_GETAFFINITY
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = (unsigned)CPU_COUNT(&set);
#endif
	if (n == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (unsigned)c : 1;
	}
	if (read_file("/proc/self/cgroup", buf, sizeof(buf)) == 0) {
		quota = weft__cgroup_cpu_limit(buf, "/sys/fs/cgroup");
		if (quota && quota < n)
			n = quota;
	}
	return n ? n : 1;
}
