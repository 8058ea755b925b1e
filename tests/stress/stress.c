/*
 * stress.c - the harness shared by the stress programs: options, watchdog,
 * failure reports, threads, time, the shared table of futures. The per-id
 * records of the pool-level programs are in stress_future.c. See stress.h.
 *
 * Threads: stress_init() runs on main before any other thread; the watchdog
 * thread reads the progress counter and the slots; everything else is
 * called from any thread.
 */
#include "stress.h"

#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

/*
 * ThreadSanitizer (gcc 12's libtsan, clang 14's too) does not intercept
 * thrd_create(): glibc's thrd_create() starts the thread without passing
 * through the pthread_create() interceptor, and the new thread crashes in
 * the runtime on its first instrumented access. Under TSan the "C11" threads
 * are therefore pthreads; the other builds run real C11 threads.
 */
#if defined(__SANITIZE_THREAD__)
#define STRESS_C11_THREADS 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STRESS_C11_THREADS 0
#endif
#endif
#ifndef STRESS_C11_THREADS
#define STRESS_C11_THREADS 1
#endif

struct stress_opts stress_opt;
_Atomic uint64_t stress_progress_ctr;
_Atomic uint64_t stress_tasks_ctr;

static const char *prog_name = "stress";
static int64_t start_ns;
static _Atomic unsigned long fail_count;
/*
 * Failures are grouped by the call site's format string: the first few of
 * each kind are printed as they happen, and stress_finish() prints how many
 * of each kind there were, so one noisy kind cannot hide another.
 */
#define FAIL_KIND_PRINT 3
#define FAIL_KINDS 64
struct fail_kind {
	const char *key;
	unsigned long count;
	char first[800];
};
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER; /* kinds */
static struct fail_kind fail_kinds[FAIL_KINDS];

/* Protects phase_buf and dump_fn. The watchdog takes it with trylock only,
 * so a thread stuck while holding it cannot hide a stall. */
static pthread_mutex_t phase_lock = PTHREAD_MUTEX_INITIALIZER;
static char phase_buf[160] = "start";
static void (*dump_fn)(int fd);

struct slot {
	_Atomic bool used;
	_Atomic(const char *) name;
	_Atomic unsigned index;
	_Atomic(const char *) what;
	_Atomic uint64_t arg;
};
static struct slot slots[STRESS_MAX_SLOTS];
static _Thread_local int my_slot = -1;

/* The watchdog: protected by wd_lock. */
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond;
static bool wd_stop;
static pthread_t wd_thread;

void stress_dprintf(int fd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	size_t off = 0;
	while (off < (size_t)n) {
		ssize_t w = write(fd, buf + off, (size_t)n - off);
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

double stress_elapsed(void)
{
	return (double)(weft_now() - start_ns) / 1e9;
}

static void dump_state(int fd)
{
	char phase[sizeof(phase_buf)];
	if (pthread_mutex_trylock(&phase_lock) == 0) {
		memcpy(phase, phase_buf, sizeof(phase));
		pthread_mutex_unlock(&phase_lock);
	} else {
		snprintf(phase, sizeof(phase), "(phase lock held)");
	}
	stress_dprintf(fd, "%s: phase: %s\n", prog_name, phase);
	stress_dprintf(fd, "%s: progress=%llu task bodies=%llu elapsed=%.1fs\n",
		       prog_name,
		       (unsigned long long)atomic_load(&stress_progress_ctr),
		       (unsigned long long)atomic_load(&stress_tasks_ctr),
		       stress_elapsed());
	for (int i = 0; i < STRESS_MAX_SLOTS; i++) {
		const char *name = atomic_load(&slots[i].name);
		const char *what = atomic_load(&slots[i].what);
		if (!atomic_load(&slots[i].used) || !name)
			continue;
		stress_dprintf(fd, "  thread %s-%u: %s (%llu)\n", name,
			       atomic_load(&slots[i].index),
			       what ? what : "-",
			       (unsigned long long)atomic_load(&slots[i].arg));
	}
	if (dump_fn)
		dump_fn(fd);
}

static void *watchdog_main(void *arg)
{
	(void)arg;
	uint64_t last = atomic_load(&stress_progress_ctr);
	int64_t last_change = weft_now();
	pthread_mutex_lock(&wd_lock);
	while (!wd_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&wd_cond, &wd_lock, &ts);
		if (wd_stop)
			break;
		uint64_t cur = atomic_load(&stress_progress_ctr);
		int64_t now = weft_now();
		if (cur != last) {
			last = cur;
			last_change = now;
			continue;
		}
		if (now - last_change >= (int64_t)stress_opt.watchdog_s * 1000000000) {
			stress_dprintf(2,
				"%s: FAIL: watchdog: no progress for %u s "
				"(seed=%llu scale=%u)\n",
				prog_name, stress_opt.watchdog_s,
				(unsigned long long)stress_opt.seed,
				stress_opt.scale);
			dump_state(2);
			_exit(STRESS_FAIL);
		}
	}
	pthread_mutex_unlock(&wd_lock);
	return NULL;
}

static unsigned long parse_ul(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end) {
		fprintf(stderr, "%s: bad %s '%s'\n", prog_name, what, s);
		exit(STRESS_FAIL);
	}
	return (unsigned long)v;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [--scale=PCT] [--watchdog=SEC] [--seed=N] "
		"[--verbose]\n"
		"  env: WEFT_STRESS_SCALE, WEFT_STRESS_WATCHDOG, "
		"WEFT_STRESS_SEED\n"
		"  default scale %d%%, watchdog 20 s\n",
		prog_name, WEFT_STRESS_SCALE_DEFAULT);
}

void stress_init(int argc, char **argv, const char *name)
{
	prog_name = name;
	start_ns = weft_now();
	setvbuf(stdout, NULL, _IOLBF, 0);

	stress_opt.scale = WEFT_STRESS_SCALE_DEFAULT;
	stress_opt.watchdog_s = 20;
	stress_opt.seed = (uint64_t)weft_now() ^ ((uint64_t)getpid() << 32);
	const char *e;
	if ((e = getenv("WEFT_STRESS_SCALE")) && *e)
		stress_opt.scale = (unsigned)parse_ul(e, "WEFT_STRESS_SCALE");
	if ((e = getenv("WEFT_STRESS_WATCHDOG")) && *e)
		stress_opt.watchdog_s =
			(unsigned)parse_ul(e, "WEFT_STRESS_WATCHDOG");
	if ((e = getenv("WEFT_STRESS_SEED")) && *e)
		stress_opt.seed = parse_ul(e, "WEFT_STRESS_SEED");

	static const struct option longopts[] = {
		{"scale", required_argument, NULL, 's'},
		{"watchdog", required_argument, NULL, 'w'},
		{"seed", required_argument, NULL, 'r'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "s:w:r:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			stress_opt.scale = (unsigned)parse_ul(optarg, "scale");
			break;
		case 'w':
			stress_opt.watchdog_s =
				(unsigned)parse_ul(optarg, "watchdog");
			break;
		case 'r':
			stress_opt.seed = parse_ul(optarg, "seed");
			break;
		case 'v':
			stress_opt.verbose = true;
			break;
		case 'h':
			usage();
			exit(STRESS_PASS);
		default:
			usage();
			exit(STRESS_FAIL);
		}
	}
	if (optind < argc) {
		/* A bare number is the scale, as in `prog 10`. */
		stress_opt.scale = (unsigned)parse_ul(argv[optind], "scale");
	}
	if (stress_opt.scale == 0)
		stress_opt.scale = 1;
	if (stress_opt.watchdog_s == 0)
		stress_opt.watchdog_s = 1;

	printf("%s: seed=%llu scale=%u%% watchdog=%us cpus=%u%s\n", prog_name,
	       (unsigned long long)stress_opt.seed, stress_opt.scale,
	       stress_opt.watchdog_s, weft_cpu_count(),
	       STRESS_C11_THREADS ? ""
				  : " (TSan: C11 threads run as pthreads)");

	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wd_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&wd_thread, NULL, watchdog_main, NULL) != 0) {
		fprintf(stderr, "%s: cannot start the watchdog\n", prog_name);
		exit(STRESS_FAIL);
	}
}

int stress_finish(void)
{
	pthread_mutex_lock(&wd_lock);
	wd_stop = true;
	pthread_cond_signal(&wd_cond);
	pthread_mutex_unlock(&wd_lock);
	pthread_join(wd_thread, NULL);

	unsigned long fails = atomic_load(&fail_count);
	pthread_mutex_lock(&fail_lock);
	for (int i = 0; i < FAIL_KINDS && fail_kinds[i].key; i++)
		printf("%s: failure kind %d: %lu x, first: %s\n", prog_name,
		       i + 1, fail_kinds[i].count, fail_kinds[i].first);
	pthread_mutex_unlock(&fail_lock);
	printf("%s: %s: ", prog_name, fails ? "FAIL" : "PASS");
	if (atomic_load(&stress_tasks_ctr))
		printf("%llu task bodies, ",
		       (unsigned long long)atomic_load(&stress_tasks_ctr));
	printf("%.1f s, seed=%llu scale=%u%%", stress_elapsed(),
	       (unsigned long long)stress_opt.seed, stress_opt.scale);
	if (fails)
		printf(", %lu failed checks (rerun with --seed=%llu "
		       "--scale=%u)",
		       fails, (unsigned long long)stress_opt.seed,
		       stress_opt.scale);
	printf("\n");
	fflush(stdout);
	return fails ? STRESS_FAIL : STRESS_PASS;
}

void stress_skip(const char *fmt, ...)
{
	va_list ap;
	printf("%s: SKIP: ", prog_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(STRESS_SKIP);
}

uint64_t stress_scaled(uint64_t full, uint64_t min)
{
	uint64_t v = full * stress_opt.scale / 100;
	return v < min ? min : v;
}

void stress_phase(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&phase_lock);
	va_start(ap, fmt);
	vsnprintf(phase_buf, sizeof(phase_buf), fmt, ap);
	va_end(ap);
	if (stress_opt.verbose)
		printf("%s: [%.1fs] phase: %s\n", prog_name, stress_elapsed(),
		       phase_buf);
	pthread_mutex_unlock(&phase_lock);
	stress_progress();
}

void stress_log(const char *fmt, ...)
{
	if (!stress_opt.verbose)
		return;
	va_list ap;
	char buf[400];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("%s: [%.1fs] %s\n", prog_name, stress_elapsed(), buf);
}

static void vfail(const char *key, const char *prefix, const char *fmt,
		  va_list ap)
{
	atomic_fetch_add(&fail_count, 1);
	char msg[400];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	char phase[sizeof(phase_buf)];
	pthread_mutex_lock(&phase_lock);
	memcpy(phase, phase_buf, sizeof(phase));
	pthread_mutex_unlock(&phase_lock);

	unsigned long nth = 0;
	pthread_mutex_lock(&fail_lock);
	for (int i = 0; i < FAIL_KINDS; i++) {
		struct fail_kind *k = &fail_kinds[i];
		if (k->key && k->key != key)
			continue;
		if (!k->key) {
			k->key = key;
			snprintf(k->first, sizeof(k->first), "[%s] %s%s", phase,
				 prefix, msg);
		}
		nth = ++k->count;
		break;
	}
	pthread_mutex_unlock(&fail_lock);
	if (nth > FAIL_KIND_PRINT)
		return;
	stress_dprintf(2, "%s: FAIL [%s] %s%s (seed=%llu scale=%u)%s\n",
		       prog_name, phase, prefix, msg,
		       (unsigned long long)stress_opt.seed, stress_opt.scale,
		       nth == FAIL_KIND_PRINT ? " (more of this kind not printed)"
					      : "");
}

void stress_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(fmt, "", fmt, ap);
	va_end(ap);
}

void stress_check_fail(const char *file, int line, const char *cond,
		       const char *fmt, ...)
{
	char prefix[200];
	const char *base = strrchr(file, '/');
	snprintf(prefix, sizeof(prefix), "%s:%d: !(%s): ",
		 base ? base + 1 : file, line, cond);
	va_list ap;
	va_start(ap, fmt);
	vfail(fmt, prefix, fmt, ap);
	va_end(ap);
}

bool stress_failed(void)
{
	return atomic_load(&fail_count) != 0;
}

void stress_set_dump(void (*fn)(int fd))
{
	pthread_mutex_lock(&phase_lock);
	dump_fn = fn;
	pthread_mutex_unlock(&phase_lock);
}

void stress_slot_register(const char *name, unsigned index)
{
	for (int i = 0; i < STRESS_MAX_SLOTS; i++) {
		bool expect = false;
		if (atomic_compare_exchange_strong(&slots[i].used, &expect,
						   true)) {
			atomic_store(&slots[i].index, index);
			atomic_store(&slots[i].what, "started");
			atomic_store(&slots[i].arg, 0);
			atomic_store(&slots[i].name, name);
			my_slot = i;
			return;
		}
	}
	my_slot = -1; /* no room: this thread goes unreported */
}

void stress_slot_release(void)
{
	if (my_slot < 0)
		return;
	atomic_store(&slots[my_slot].name, NULL);
	atomic_store(&slots[my_slot].used, false);
	my_slot = -1;
}

void stress_where(const char *what, uint64_t arg)
{
	int slot = my_slot;
	if (slot < 0)
		return;
	/* relaxed: read only by the watchdog's report */
	atomic_store_explicit(&slots[slot].arg, arg, memory_order_relaxed);
	atomic_store_explicit(&slots[slot].what, what, memory_order_relaxed);
}

/* ---- threads ------------------------------------------------------------ */


struct stress_thread {
	struct stress_threads *set;
	unsigned index;
	bool is_c11;
	pthread_t pt;
	thrd_t ct;
};

struct stress_threads {
	unsigned n;
	stress_thread_fn fn;
	void *arg;
	const char *name;
	struct stress_thread t[];
};

static void run_thread(struct stress_thread *t)
{
	stress_slot_register(t->set->name, t->index);
	t->set->fn(t->set->arg, t->index);
	stress_slot_release();
}

static void *pthread_entry(void *arg)
{
	run_thread(arg);
	return NULL;
}

static int c11_entry(void *arg)
{
	run_thread(arg);
	return 0;
}

struct stress_threads *stress_threads_start(unsigned n, stress_thread_fn fn,
					    void *arg, const char *name)
{
	struct stress_threads *s =
		calloc(1, sizeof(*s) + n * sizeof(struct stress_thread));
	if (!s) {
		stress_fail("out of memory starting threads");
		exit(STRESS_FAIL);
	}
	s->n = n;
	s->fn = fn;
	s->arg = arg;
	s->name = name;
	for (unsigned i = 0; i < n; i++) {
		struct stress_thread *t = &s->t[i];
		t->set = s;
		t->index = i;
		t->is_c11 = STRESS_C11_THREADS && i % 2 == 1;
		int rc;
		if (t->is_c11)
			rc = thrd_create(&t->ct, c11_entry, t) == thrd_success
				     ? 0
				     : -1;
		else
			rc = pthread_create(&t->pt, NULL, pthread_entry, t);
		if (rc != 0) {
			stress_fail("cannot start thread %s-%u", name, i);
			exit(STRESS_FAIL);
		}
	}
	return s;
}

void stress_threads_join(struct stress_threads *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->n; i++) {
		if (s->t[i].is_c11)
			thrd_join(s->t[i].ct, NULL);
		else
			pthread_join(s->t[i].pt, NULL);
	}
	free(s);
}

/* ---- time --------------------------------------------------------------- */

void stress_spin_ns(int64_t ns)
{
	int64_t end = weft_now() + ns;
	while (weft_now() < end)
		;
}

void stress_sleep_ns(int64_t ns)
{
	if (ns <= 0)
		return;
	struct timespec ts = {.tv_sec = ns / 1000000000,
			      .tv_nsec = ns % 1000000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- the shared table of futures ---------------------------------------- */

static struct {
	pthread_mutex_t lock; /* protects f and id */
	struct weft_future *f; /* one reference, or NULL */
	size_t id;
} table[STRESS_TABLE_MAX];
static unsigned table_n = STRESS_TABLE_MAX; /* written once, before threads */

void stress_table_init(unsigned nslots)
{
	if (nslots == 0 || nslots > STRESS_TABLE_MAX) {
		fprintf(stderr, "%s: bad table size %u\n", prog_name, nslots);
		exit(STRESS_FAIL);
	}
	table_n = nslots;
	for (unsigned k = 0; k < nslots; k++)
		pthread_mutex_init(&table[k].lock, NULL);
}

void stress_table_put(unsigned k, struct weft_future *f, size_t id)
{
	k %= table_n;
	weft_future_ref(f);
	pthread_mutex_lock(&table[k].lock);
	struct weft_future *old = table[k].f;
	table[k].f = f;
	table[k].id = id;
	pthread_mutex_unlock(&table[k].lock);
	weft_future_unref(old);
}

struct weft_future *stress_table_get(unsigned k, size_t *id)
{
	k %= table_n;
	pthread_mutex_lock(&table[k].lock);
	struct weft_future *f = table[k].f;
	*id = table[k].id;
	if (f)
		weft_future_ref(f);
	pthread_mutex_unlock(&table[k].lock);
	return f;
}

void stress_table_clear(void)
{
	for (unsigned k = 0; k < table_n; k++) {
		pthread_mutex_lock(&table[k].lock);
		struct weft_future *f = table[k].f;
		table[k].f = NULL;
		pthread_mutex_unlock(&table[k].lock);
		weft_future_unref(f);
	}
}
