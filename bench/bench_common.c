/*
 * bench_common.c - command line, clocks, statistics, CSV and latch shared by
 * the benchmark programs; see bench_common.h. Single-threaded except the
 * latch, which any thread may count down.
 */
#include "bench_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

static void usage(const char *name, FILE *f)
{
	fprintf(f,
		"usage: %s [--tiny | --quick | --full] [--workers N] [--rounds R] [--csv FILE]\n"
		"          [--report FILE] [--only NAME]\n"
		"  --tiny       the smallest sizes, for checking every answer\n"
		"  --quick      small sizes, few rounds\n"
		"  --full       full sizes (default)\n"
		"  --workers N  worker threads of every pool (default: weft_cpu_count())\n"
		"  --rounds R   interleaved rounds (at most %d)\n"
		"  --csv FILE   append rows benchmark,variant,metric,value\n"
		"  --only NAME  run only the variants whose name contains NAME\n"
		"  --report FILE  append comparison rows (bench/report.sh)\n",
		name, BENCH_MAX_ROUNDS);
}

static unsigned parse_uint(const char *name, const char *opt, const char *s,
			   unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s ? s : "", &end, 10);
	if (!s || errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "%s: %s wants an integer in %u..%u\n", name,
			opt, lo, hi);
		exit(2);
	}
	return (unsigned)v;
}

void bench_parse_args(struct bench_opts *o, const char *name, int argc,
		      char **argv)
{
	memset(o, 0, sizeof(*o));
	o->name = name;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--quick")) {
			o->quick = true;
			o->tiny = false;
		} else if (!strcmp(a, "--tiny")) {
			o->quick = true;
			o->tiny = true;
		} else if (!strcmp(a, "--full")) {
			o->quick = false;
			o->tiny = false;
		} else if (!strcmp(a, "--workers")) {
			o->workers = parse_uint(name, a, i + 1 < argc ? argv[++i] : NULL,
						1, WEFT_MAX_WORKERS);
		} else if (!strcmp(a, "--rounds")) {
			o->rounds = parse_uint(name, a, i + 1 < argc ? argv[++i] : NULL,
					       1, BENCH_MAX_ROUNDS);
		} else if (!strcmp(a, "--csv")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: --csv wants a file\n", name);
				exit(2);
			}
			o->csv = argv[++i];
		} else if (!strcmp(a, "--only")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: --only wants a name\n", name);
				exit(2);
			}
			o->only = argv[++i];
		} else if (!strcmp(a, "--report")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: --report wants a file\n", name);
				exit(2);
			}
			o->report = argv[++i];
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(name, stdout);
			exit(0);
		} else {
			fprintf(stderr, "%s: unknown option %s\n", name, a);
			usage(name, stderr);
			exit(2);
		}
	}
	if (!o->workers)
		o->workers = weft_cpu_count();
}

bool bench_selected(const struct bench_opts *o, const char *name)
{
	return !o->only || strstr(name, o->only);
}

/* Busy and stolen ticks of all CPUs since boot; false if unreadable. */
static bool read_proc_stat(long long *busy, long long *steal)
{
	long long user, nice, sys, idle, iowait, irq, softirq, st;
	FILE *f = fopen("/proc/stat", "r");
	int got;

	if (!f)
		return false;
	got = fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &user,
		     &nice, &sys, &idle, &iowait, &irq, &softirq, &st);
	fclose(f);
	if (got != 8)
		return false;
	*busy = user + nice + sys + irq + softirq;
	*steal = st;
	return true;
}

void bench_load_begin(struct bench_load *l)
{
	l->wall_ns = bench_now_ns();
	l->own_ns = bench_cpu_ns();
	if (!read_proc_stat(&l->busy_ticks, &l->steal_ticks))
		l->busy_ticks = -1;
}

void bench_load_end(const struct bench_opts *o, const struct bench_load *l)
{
	long long busy, steal;
	double wall, own, tick = (double)sysconf(_SC_CLK_TCK);
	double others, stolen, limit = 0.25;

	if (l->busy_ticks < 0 || !read_proc_stat(&busy, &steal) || tick <= 0)
		return;
	wall = (double)(bench_now_ns() - l->wall_ns) / 1e9;
	own = (double)(bench_cpu_ns() - l->own_ns) / 1e9;
	if (wall <= 0)
		return;
	others = ((double)(busy - l->busy_ticks) / tick - own) / wall;
	if (others < 0) /* tick granularity */
		others = 0;
	stolen = (double)(steal - l->steal_ticks) / tick / wall;
	printf("other processes used %.2f CPUs, the hypervisor stole %.2f, of %u%s\n",
	       others, stolen, weft_cpu_count(),
	       others + stolen > limit ?
	       "  WARNING: the machine was busy; figures are unreliable" : "");
	bench_csv(o, "env", "other_processes_cpus", others);
	bench_csv(o, "env", "stolen_cpus", stolen);
}

unsigned bench_rounds(const struct bench_opts *o, unsigned quick_default,
		      unsigned full_default)
{
	if (o->rounds)
		return o->rounds;
	return o->quick ? quick_default : full_default;
}

int64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void bench_series_add(struct bench_series *s, double x)
{
	if (s->n < BENCH_MAX_ROUNDS)
		s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_series_median(const struct bench_series *s)
{
	double tmp[BENCH_MAX_ROUNDS];

	if (!s->n)
		return 0;
	memcpy(tmp, s->v, s->n * sizeof(double));
	qsort(tmp, s->n, sizeof(double), cmp_double);
	if (s->n & 1)
		return tmp[s->n / 2];
	return (tmp[s->n / 2 - 1] + tmp[s->n / 2]) / 2;
}

double bench_series_min(const struct bench_series *s)
{
	double m = s->n ? s->v[0] : 0;

	for (unsigned i = 1; i < s->n; i++)
		if (s->v[i] < m)
			m = s->v[i];
	return m;
}

double bench_series_max(const struct bench_series *s)
{
	double m = s->n ? s->v[0] : 0;

	for (unsigned i = 1; i < s->n; i++)
		if (s->v[i] > m)
			m = s->v[i];
	return m;
}

void bench_series_ratio(const struct bench_series *num,
			const struct bench_series *den,
			struct bench_series *out)
{
	unsigned n = num->n < den->n ? num->n : den->n;

	out->n = 0;
	for (unsigned i = 0; i < n; i++)
		bench_series_add(out, den->v[i] ? num->v[i] / den->v[i] : 0);
}

void bench_fmt_ratio(const struct bench_series *r, char *med, size_t mlen,
		     char *range, size_t rlen)
{
	if (!r->n) {
		snprintf(med, mlen, "-");
		snprintf(range, rlen, "-");
		return;
	}
	snprintf(med, mlen, "%.2fx", bench_series_median(r));
	snprintf(range, rlen, "%.2f..%.2f", bench_series_min(r),
		 bench_series_max(r));
}

void bench_csv_series(const struct bench_opts *o, const char *variant,
		      const char *metric, const struct bench_series *s)
{
	char name[96];

	if (!s->n)
		return;
	snprintf(name, sizeof(name), "%s_median", metric);
	bench_csv(o, variant, name, bench_series_median(s));
	snprintf(name, sizeof(name), "%s_min", metric);
	bench_csv(o, variant, name, bench_series_min(s));
	snprintf(name, sizeof(name), "%s_max", metric);
	bench_csv(o, variant, name, bench_series_max(s));
}

void bench_csv(const struct bench_opts *o, const char *variant,
	       const char *metric, double value)
{
	struct stat st;
	FILE *f;

	if (!o->csv)
		return;
	f = fopen(o->csv, "a");
	if (!f) {
		fprintf(stderr, "%s: cannot open %s: %s\n", o->name, o->csv,
			strerror(errno));
		return;
	}
	if (fstat(fileno(f), &st) == 0 && st.st_size == 0)
		fprintf(f, "benchmark,variant,metric,value\n");
	fprintf(f, "%s,%s,%s,%.6g\n", o->name, variant, metric, value);
	fclose(f);
}

void bench_report(const struct bench_opts *o, const char *workload,
		  const char *size, const char *system,
		  const struct bench_series *secs,
		  const struct bench_series *weft, const char *answer,
		  bool ok)
{
	struct bench_series ratio = { .n = 0 };
	double rmed = 1, rmin = 1, rmax = 1;
	struct stat st;
	FILE *f;

	if (weft) {
		bench_series_ratio(secs, weft, &ratio);
		rmed = bench_series_median(&ratio);
		rmin = bench_series_min(&ratio);
		rmax = bench_series_max(&ratio);
	}
	printf("report: %s %s %s: %.4g s (%.4g..%.4g), %.2fx of weft, answer %s %s\n",
	       workload, size, system, bench_series_median(secs),
	       bench_series_min(secs), bench_series_max(secs), rmed, answer,
	       ok ? "ok" : "WRONG");
	if (!o->report)
		return;
	f = fopen(o->report, "a");
	if (!f) {
		fprintf(stderr, "%s: cannot open %s: %s\n", o->name, o->report,
			strerror(errno));
		return;
	}
	if (fstat(fileno(f), &st) == 0 && st.st_size == 0)
		fprintf(f, "workload,size,system,workers,rounds,median_s,min_s,max_s,"
			"ratio_median,ratio_min,ratio_max,answer,ok\n");
	fprintf(f, "%s,%s,%s,%u,%u,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%s,%d\n",
		workload, size, system, o->workers, secs->n,
		bench_series_median(secs), bench_series_min(secs),
		bench_series_max(secs), rmed, rmin, rmax, answer, ok ? 1 : 0);
	fclose(f);
}

void bench_count_text(char *buf, size_t len, size_t n, const char *unit)
{
	if (n && n % 1000000 == 0)
		snprintf(buf, len, "%zuM %s", n / 1000000, unit);
	else if (n && n % 1000 == 0)
		snprintf(buf, len, "%zuK %s", n / 1000, unit);
	else
		snprintf(buf, len, "%zu %s", n, unit);
}

bool bench_target(const struct bench_opts *o, const char *metric,
		  double value, bool met, const char *text,
		  const char *measured)
{
	char met_name[128];

	printf("target: %-50s measured %-24s %s\n", text, measured,
	       met ? "MET" : "MISSED");
	snprintf(met_name, sizeof(met_name), "%s_met", metric);
	bench_csv(o, "target", metric, value);
	bench_csv(o, "target", met_name, met ? 1 : 0);
	return met;
}

void bench_latch_init(struct bench_latch *l, long n)
{
	atomic_init(&l->count, n);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->done = n <= 0;
}

void bench_latch_fini(struct bench_latch *l)
{
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
}

void bench_latch_count_down(struct bench_latch *l)
{
	/* acq_rel: the last counter sees every earlier counter's writes before
	 * it releases the waiter through the mutex. */
	if (atomic_fetch_sub_explicit(&l->count, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_lock(&l->mu);
	l->done = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

void bench_latch_wait(struct bench_latch *l)
{
	pthread_mutex_lock(&l->mu);
	while (!l->done)
		pthread_cond_wait(&l->cv, &l->mu);
	pthread_mutex_unlock(&l->mu);
}
