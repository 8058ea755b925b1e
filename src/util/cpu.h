/*
 * util/cpu.h - how many CPUs this process may use (internal parts exposed
 * for tests, which build fake /proc and /sys trees).
 */
#ifndef WEFT_UTIL_CPU_H
#define WEFT_UTIL_CPU_H

/*
 * The CPU limit that the cgroup quota implies, rounded up: the smallest of
 * the limits of the process's cgroup and its parents. @proc_cgroup is the
 * text of /proc/self/cgroup; @cgroup_root is where the cgroup file systems
 * are mounted ("/sys/fs/cgroup"). Returns 0 when no quota applies.
 */
unsigned weft__cgroup_cpu_limit(const char *proc_cgroup,
				const char *cgroup_root);

#endif /* WEFT_UTIL_CPU_H */
