/*
 * bench_common.h - what every weft benchmark program shares: the command
 * line, a clock, statistics over interleaved rounds, the CSV rows and the
 * "target" lines, and a one-shot latch to wait for N completions.
 *
 * The rules the programs follow (STYLE.md, DESIGN.md section 8): every
 * figure is a ratio against a baseline measured in the same run, rounds of
 * baseline and peer are interleaved (and their order rotated each round),
 * and a missed target is reported, never turned into a failure. A program
 * exits 1 only when a result is wrong, 77 when it cannot run at all.
 *
 * Command line of every program:
 *   --quick        small sizes, few rounds (what bench/report.sh runs)
 *   --full         the full sizes (the default when run by hand)
 *   --workers N    worker threads for every pool (default weft_cpu_count())
 *   --rounds R     override the number of rounds
 *   --csv FILE     append rows "benchmark,variant,metric,value" to FILE
 *                  (a header is written when FILE is empty)
 *   --only NAME    run only the variants whose name contains NAME (for
 *                  profiling one of them; ratios to a skipped baseline are
 *                  not reported)
 *   --tiny         the smallest sizes and one or two rounds: for the test
 *                  that checks every workload's answer (implies --quick)
 *   --report FILE  append the comparison rows of bench/report.sh (below)
 *
 * The comparison report (issue 5, bench/report.sh): a program that runs a
 * workload on weft and on its peers writes one row per system with
 * bench_report(): the time of one run of the workload (median and spread
 * over interleaved rounds), the per-round ratio peer / weft (> 1: weft is
 * faster), and the answer the system computed with whether it was right.
 * A wrong answer makes the program exit 1, so a fast wrong result cannot
 * pass.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_ROUNDS 64

/* Which optional peers the build has (bench/meson.build defines each as 0
 * or 1; a program compiled by hand gets none). */
#ifndef BENCH_HAVE_OPENMP
#define BENCH_HAVE_OPENMP 0
#endif
#ifndef BENCH_HAVE_TBB
#define BENCH_HAVE_TBB 0
#endif
#ifndef BENCH_HAVE_LIBUV
#define BENCH_HAVE_LIBUV 0
#endif
#ifndef BENCH_HAVE_NETTLE
#define BENCH_HAVE_NETTLE 0
#endif

/* For baselines and bodies: opaque to interprocedural optimisation (no
 * cloning for constant arguments, no inlining, no assumptions about what
 * the callee does), so the compiler cannot fold the work away. */
#if defined(__has_attribute)
#if __has_attribute(noipa)
#define OPAQUE __attribute__((noipa))
#endif
#endif
#ifndef OPAQUE
#define OPAQUE __attribute__((noinline))
#endif

struct bench_opts {
	bool quick;
	unsigned workers;   /* resolved: never 0 after bench_parse_args() */
	unsigned rounds;    /* 0 until the program picks its default */
	const char *csv;    /* NULL: no CSV */
	const char *name;   /* the benchmark's name, first CSV column */
	const char *only;   /* NULL: every variant */
	bool tiny;          /* --tiny: answer checks only (quick is set too) */
	const char *report; /* NULL: no comparison rows */
};

/*
 * Parse the common options. @extra_usage is printed after the common usage
 * for --help. Exits 2 on a bad option. Unknown options are an error.
 */
void bench_parse_args(struct bench_opts *o, const char *name, int argc,
		      char **argv);

/* Whether --only lets variant @name run. */
bool bench_selected(const struct bench_opts *o, const char *name);

/*
 * How busy the rest of the machine was while a program ran: the CPU time
 * all processes used (/proc/stat) minus this process's own, and the time
 * the hypervisor stole, each over the wall time, in CPUs. A figure measured
 * while other processes used a sizeable part of the machine says so in its
 * own output (a WARNING line) and in the CSV (variant "env").
 */
struct bench_load {
	int64_t wall_ns, own_ns;
	long long busy_ticks, steal_ticks;
};

void bench_load_begin(struct bench_load *l);
/* Print and record the machine's load since bench_load_begin(). */
void bench_load_end(const struct bench_opts *o, const struct bench_load *l);

/* Rounds to run: --rounds when given, else @quick_default or @full_default. */
unsigned bench_rounds(const struct bench_opts *o, unsigned quick_default,
		      unsigned full_default);

/* CLOCK_MONOTONIC in ns. */
int64_t bench_now_ns(void);
/* CLOCK_PROCESS_CPUTIME_ID in ns: every thread of the process. */
int64_t bench_cpu_ns(void);
void bench_sleep_ms(unsigned ms);

/* One measurement per round. */
struct bench_series {
	double v[BENCH_MAX_ROUNDS];
	unsigned n;
};

void bench_series_add(struct bench_series *s, double x);
double bench_series_median(const struct bench_series *s);
double bench_series_min(const struct bench_series *s);
double bench_series_max(const struct bench_series *s);

/*
 * Per-round ratios num[r] / den[r] into @out (rounds that both have), the
 * spread of a ratio measured in one run.
 */
void bench_series_ratio(const struct bench_series *num,
			const struct bench_series *den,
			struct bench_series *out);

/* "1.23x" and "min..max" of a ratio series, or "-" twice when it is empty. */
void bench_fmt_ratio(const struct bench_series *r, char *med, size_t mlen,
		     char *range, size_t rlen);

/* Rows <metric>_median, _min, _max of @s (nothing when it is empty). */
void bench_csv_series(const struct bench_opts *o, const char *variant,
		      const char *metric, const struct bench_series *s);

/* Append one CSV row (no-op without --csv). */
void bench_csv(const struct bench_opts *o, const char *variant,
	       const char *metric, double value);

/*
 * Print "target: <text>  measured <value-as-text>  MET|MISSED" and record
 * two CSV rows: (target, @metric, @value) and (target, @metric_met, 0|1).
 * Returns @met.
 */
bool bench_target(const struct bench_opts *o, const char *metric,
		  double value, bool met, const char *text,
		  const char *measured);

/*
 * Append one comparison row to --report (no-op without it):
 *
 *   workload,size,system,workers,rounds,median_s,min_s,max_s,
 *   ratio_median,ratio_min,ratio_max,answer,ok
 *
 * @workload  the workload's short name, the same in every program and run
 *            (fib, skynet, nqueens, uts, submit, map_cheap, map_heavy,
 *            reads, nop, echo)
 * @size      its size in words ("fib(30)", "1M leaves"); no commas
 * @system    "weft" for weft's row; peers: serial, mutex, openmp, tbb,
 *            libuv, liburing, pread, fio, epoll (or "weft_<variant>" for a
 *            second weft row, e.g. weft_thread)
 * @secs      seconds per run of the workload, one per round
 * @weft      weft's series of the same rounds, for the per-round ratio
 *            @secs / @weft; NULL in weft's own row (ratio 1)
 * @answer    what the system computed, as text (a count, a sum, a checksum)
 * @ok        whether it equals the expected answer
 * Prints a line "report: ..." too, so a log shows what went to the file.
 */
void bench_report(const struct bench_opts *o, const char *workload,
		  const char *size, const char *system,
		  const struct bench_series *secs,
		  const struct bench_series *weft, const char *answer,
		  bool ok);

/* "1M tasks", "500K doubles", "1234 reads": @n with @unit and no commas,
 * for the size column of the report's CSV. */
void bench_count_text(char *buf, size_t len, size_t n, const char *unit);

/* A one-shot countdown: wait until it has been counted down @n times. */
struct bench_latch {
	atomic_long count;
	pthread_mutex_t mu;   /* protects done */
	pthread_cond_t cv;
	bool done;
};

void bench_latch_init(struct bench_latch *l, long n);
void bench_latch_fini(struct bench_latch *l);
void bench_latch_count_down(struct bench_latch *l);
void bench_latch_wait(struct bench_latch *l);

/* Keep a value alive so that the compiler cannot drop its computation. */
static inline void bench_keep(uint64_t x)
{
	__asm__ volatile("" : : "r"(x) : "memory");
}

#endif /* BENCH_COMMON_H */
