/*
 * bench_io.c - I/O through the pool's io thread (weft/io.h; DESIGN.md
 * sections 6 and 8) against what the same machine does without it. Three
 * workloads, each against peers measured in the same run:
 *
 * reads: 4 KiB random reads of a page-cached file (default 1 GiB, 256 MiB
 * with --quick, 16 MiB with --tiny), QD reads in flight (--qd, default 32).
 * Every variant reads the same n blocks (one array of random block indices,
 * drawn once), and the file is checked to be wholly in the page cache
 * (mincore) before every run, re-read if it is not. The answer of a run is
 * a checksum of the bytes it read (block_hash(): the sum over the reads of
 * a hash of each block's offset and contents, so the order of completion
 * does not matter); the expected value comes from the file itself, the
 * same blocks read with plain pread() before anything is timed. A read
 * that returns other than 4096 is counted and makes the answer wrong too.
 *   reads_raw          the baseline: one thread, one ring, QD reads in
 *                      flight: submit, reap what completed, resubmit those
 *                      slots. What a single ring thread can do; weft's io
 *                      thread is such a thread plus the handoffs.
 *                      Target: weft tasks >= 0.8x of it.
 *   reads_fio          fio --ioengine=io_uring --iodepth=QD on the same file,
 *                      same number of reads (--io_size, which --number_ios
 *                      alone does not extend past --size), run as a child
 *                      process when fio is on PATH; its IOPS are read from
 *                      --output-format=json (jobs[0].read.iops), i.e. fio's
 *                      own timing, which leaves out its start-up. It reads
 *                      into its own buffers, so its answer is the byte
 *                      count it reports (jobs[0].read.io_bytes), which must
 *                      be n * 4096. fio needs
 *                      --invalidate=0 --fadvise_hint=0, else it drops the
 *                      file from the page cache first and measures the disk
 *                      (research/iouring.md section 4). Target: weft >= 1x.
 *   reads_pread2       two plain pthreads calling pread() in a loop, half
 *                      the reads each (thread start-up timed: ~50 us).
 *                      Informative: research/iouring.md found two pread
 *                      threads ~1.5x one ring on two cores.
 *   reads_weft_tasks   QD tasks, each looping weft_io_read() +
 *                      weft_io_await() over every QD-th read: QD in flight.
 *   reads_weft_thread  one plain thread keeping QD weft_io_read() futures in
 *                      flight (await the oldest, resubmit its slot): the io
 *                      thread without fibers, to tell the two costs apart.
 *   Each row gives reads/s, its ratio to reads_raw (and to reads_fio) per
 *   round, and the process's CPU time per read (every thread: the io
 *   thread's and the workers' spinning shows there).
 *
 * nop: the round trip of one weft_io_nop() + weft_io_await(), one at a
 * time, p50 and p99 of each request's wall time, and the wall time of the
 * run's n round trips (the report's figure). The answer: how many of the n
 * completed with result 0, which must be n.
 *   nop_raw_*          the baseline: io_uring_prep_nop + submit_and_wait
 *                      + reap on the calling thread, its own ring.
 *   nop_weft_task_*    the loop runs in a task;
 *   nop_weft_thread_*  on a plain thread (the main thread), which blocks.
 *   *_busy             back to back, while a background task loops nop +
 *                      await too, so the io thread always has work and never
 *                      sleeps. Target: p50 <= 2 us.
 *   *_idle             a pause of 100..500 us (--full: 100..1000 us; the
 *                      same drawn sequence for every variant) before each
 *                      request, so that the io thread and the workers go to
 *                      sleep between requests. Target: p50 <= 20 us. The
 *                      pause is a nanosleep(), also inside the task (it
 *                      blocks the worker on purpose): weft_sleep() would run
 *                      through the io thread's timers and wake it just
 *                      before the request, which is what idle must avoid.
 *
 * echo: TCP echo over loopback, C connections (--conns, default 32), one
 * message of M bytes (--msg, default 64) in flight on each, ping-pong. One
 * load generator for both servers: a single client thread (the main
 * thread) with non-blocking sockets in a level-triggered epoll, which sends
 * a message, reads the echo back, checks it byte for byte and sends the
 * next. Each connection exchanges one message first (so that every
 * connection has been accepted and is being served), then the timed part:
 * n / C messages on each connection. The answer: the bytes echoed back and
 * found equal to what was sent, over the timed part, which must be
 * n / C * C * M (and no reply may differ, the first exchange's included).
 * TCP_NODELAY on every socket of both servers and of the client, so that a
 * message split by the stack is not held back by Nagle's algorithm.
 *   echo_epoll         the baseline: one thread, epoll (level-triggered),
 *                      non-blocking sockets; recv into a 4 KiB buffer, send
 *                      it all back (waiting for EPOLLOUT if the socket is
 *                      full).
 *   echo_weft          an acceptor task (weft_io_accept_multishot) and one
 *                      task per connection: weft_io_recv() into a 4 KiB
 *                      buffer, then weft_io_send() until all of it is sent,
 *                      each followed by weft_io_await(). Target: >= 1x.
 *
 * Options besides the common ones (bench_common.h; "--opt=value" works
 * for all of them): --qd N, --size BYTES (K, M, G suffixes), --file PATH
 * (default: bench_io.<pid>.dat in $TMPDIR or /tmp), --keep-file (do not
 * delete it at exit; the default name is then bench_io.dat, and the next
 * run reuses a bench_io file of the right size instead of writing it
 * again), --conns N (default 32, --tiny 4), --msg BYTES. A file that this
 * program did not write is never overwritten. The file is written and
 * synced before the machine's load is measured (bench_load): its
 * write-back runs in kernel threads, which would count as other processes.
 * --workers defaults to 2 here: there is one io thread whatever the worker
 * count, and this is what the issue asks for; pass --workers N for the
 * scaling runs. --only takes a part of a variant name: reads, nop, echo,
 * raw, weft, idle, ...
 *
 * Rounds: every round runs each selected variant of a workload once, in an
 * order rotated each round, with a short sleep between runs so that
 * spinning threads park; one warm-up run of each first (fio excepted:
 * its figure is its own steady state). Figures are medians over rounds;
 * ratios are per-round ratios (median, min..max).
 *
 * --report FILE: one row per system (bench_report()): reads (weft = QD
 * tasks, weft_thread, liburing = reads_raw, pread, fio), nop back to back
 * (weft = the task, weft_thread, liburing), echo (weft, epoll); seconds
 * per run, the per-round ratio to weft, the answer. --tiny: a few thousand
 * reads of a 16 MiB file, a few hundred NOPs, 4 connections x 50 messages,
 * one round: every system still runs, so that every answer is checked.
 *
 * Every run's answer is checked, warm-ups and the idle NOPs included. A
 * wrong answer is printed (which system, what it got, what was expected)
 * and makes the program exit 1 once every row is written; a failed call
 * (an error from a syscall or from weft) exits 1 at once; a missed target
 * is only reported. Exit 77: io_uring is refused here (ENOSYS, EPERM, ...)
 * and a raw ring baseline is selected, so there is nothing to compare with.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>
#include <weft.h>

#include "bench_common.h"

#define NAME "bench_io"

#define BLOCK 4096u
/* Block i of the file starts with the 8 bytes BLOCK_TAG + i. */
#define BLOCK_TAG 0x77656674696f0000ull /* "weftio" */
/* Both echo servers' receive buffer, and the largest --msg. */
#define ECHO_BUF 4096u

extern char **environ;

/* ---- options ------------------------------------------------------------ */

struct io_opts {
	const char *path; /* NULL: $TMPDIR or /tmp */
	uint64_t size;	  /* 0: by mode */
	unsigned qd;
	unsigned conns;
	unsigned msg;
	bool keep;
	bool workers_given;
	bool conns_given;
};

/* Set when a system's answer was wrong: main() exits 1 after every row has
 * been written, so that the report shows which one. */
static bool any_wrong;

static _Noreturn void die(const char *what, int err)
{
	fprintf(stderr, NAME ": %s failed: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static _Noreturn void wrong(const char *what)
{
	fprintf(stderr, NAME ": wrong result: %s\n", what);
	exit(1);
}

static _Noreturn void bad_usage(const char *opt, const char *want)
{
	fprintf(stderr, NAME ": %s wants %s\n", opt, want);
	exit(2);
}

static unsigned parse_count(const char *opt, const char *s, unsigned lo,
			    unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		char want[64];

		snprintf(want, sizeof(want), "an integer in %u..%u", lo, hi);
		bad_usage(opt, want);
	}
	return (unsigned)v;
}

static uint64_t parse_size(const char *opt, const char *s)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end == 'k' || *end == 'K')
		mul = 1ull << 10;
	else if (*end == 'm' || *end == 'M')
		mul = 1ull << 20;
	else if (*end == 'g' || *end == 'G')
		mul = 1ull << 30;
	if (mul > 1)
		end++;
	if (errno || end == s || *end || v == 0 || v > (1ull << 46) / mul)
		bad_usage(opt, "a size in bytes (K, M, G suffixes)");
	v *= mul;
	if (v < (1u << 20))
		bad_usage(opt, "at least 1M");
	return v / BLOCK * BLOCK;
}

static void extra_usage(void)
{
	printf("bench_io options (besides the common ones below; --opt=value works too):\n"
	       "  --qd N         reads in flight (default 32)\n"
	       "  --size BYTES   file size, K/M/G suffixes (default 1G, --quick 256M,\n"
	       "                 --tiny 16M)\n"
	       "  --file PATH    the file (default $TMPDIR or /tmp, bench_io.<pid>.dat)\n"
	       "  --keep-file    keep the file at exit (then reused by later runs)\n"
	       "  --conns N      echo connections (default 32, --tiny 4)\n"
	       "  --msg BYTES    echo message size (default 64, at most %u)\n"
	       "  --workers defaults to 2 here\n"
	       "  --only parts: reads, nop, echo, raw, fio, pread, weft, busy, idle\n\n",
	       ECHO_BUF);
}

/*
 * Take this program's own options out of argv, and split "--opt=value"
 * into two words for bench_parse_args(), which knows only the spaced form.
 * Returns the new argv (never freed: it lives as long as the program).
 */
static char **pre_parse(int argc, char **argv, struct io_opts *io, int *nargc)
{
	static const char *const common_valued[] = {
		"--workers", "--rounds", "--csv", "--only", "--report",
	};
	char **out = calloc((size_t)argc * 2 + 1, sizeof(*out));
	int n = 0;

	if (!out)
		die("calloc", ENOMEM);
	out[n++] = argv[0];
	for (int i = 1; i < argc; i++) {
		char *a = argv[i], *eq = strchr(a, '=');
		size_t klen = eq ? (size_t)(eq - a) : strlen(a);
		char *key = strndup(a, klen);
		const char *val;
		bool common = false;

		if (!key)
			die("strndup", ENOMEM);
		if (!strcmp(key, "--help") || !strcmp(key, "-h"))
			extra_usage();
		if (!strcmp(key, "--keep-file") && !eq) {
			io->keep = true;
			continue;
		}
		if (!strcmp(key, "--qd") || !strcmp(key, "--size") ||
		    !strcmp(key, "--file") || !strcmp(key, "--conns") ||
		    !strcmp(key, "--msg")) {
			val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
			if (!val)
				bad_usage(key, "a value");
			/* --tiny's own default gives way to a given count. */
			io->conns_given |= !strcmp(key, "--conns");
			if (!strcmp(key, "--qd"))
				io->qd = parse_count(key, val, 1, 4096);
			else if (!strcmp(key, "--size"))
				io->size = parse_size(key, val);
			else if (!strcmp(key, "--file"))
				io->path = val;
			else if (!strcmp(key, "--conns"))
				io->conns = parse_count(key, val, 1, 1024);
			else
				io->msg = parse_count(key, val, 1, ECHO_BUF);
			continue;
		}
		if (!strcmp(key, "--workers"))
			io->workers_given = true;
		for (size_t k = 0; k < sizeof(common_valued) / sizeof(*common_valued); k++)
			common |= !strcmp(key, common_valued[k]);
		if (eq && common) {
			out[n++] = key;
			out[n++] = eq + 1;
			continue;
		}
		out[n++] = a;
	}
	out[n] = NULL;
	*nargc = n;
	return out;
}

/* ---- small helpers -------------------------------------------------------- */

/* splitmix64: the random block indices and pauses, from a fixed seed so
 * that every run of the program reads the same blocks. */
static uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void sleep_us(uint32_t us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * A ring as weft's io thread sets its own up (DESIGN.md section 6:
 * SINGLE_ISSUER | DEFER_TASKRUN, falling back without them on -EINVAL), so
 * that the baselines run with the same kernel paths. DEFER_TASKRUN runs
 * completions' task work only when the owner enters the kernel to get
 * events, which io_uring_submit_and_wait() does.
 */
static int ring_init(struct io_uring *ring, unsigned entries)
{
	struct io_uring_params p;
	int err;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	err = io_uring_queue_init_params(entries, ring, &p);
	if (err == -EINVAL) {
		memset(&p, 0, sizeof(p));
		err = io_uring_queue_init_params(entries, ring, &p);
	}
	return err;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The ratio series num/den, left empty when either side did not run. */
static void ratio_of(const struct bench_series *num,
		     const struct bench_series *den, struct bench_series *out)
{
	out->n = 0;
	if (num->n && den->n)
		bench_series_ratio(num, den, out);
}

static void fmt_range(char *buf, size_t len, const struct bench_series *s,
		      double scale)
{
	if (!s->n)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2f..%.2f", bench_series_min(s) / scale,
			 bench_series_max(s) / scale);
}

/* "value (min..max)" of a ratio series, for a target line. */
static void fmt_measured(char *buf, size_t len, const struct bench_series *r,
			 const char *unit)
{
	snprintf(buf, len, "%.2f%s (%.2f..%.2f)", bench_series_median(r), unit,
		 bench_series_min(r), bench_series_max(r));
}

/* Rounds: --rounds when given, else 1 with --tiny (it checks answers, it
 * measures nothing), 3 with --quick, 7. */
static unsigned io_rounds(const struct bench_opts *o)
{
	if (o->tiny && !o->rounds)
		return 1;
	return bench_rounds(o, 3, 7);
}

/* One run's answer against the expected one: a wrong one is printed at
 * once (which run of which system) and remembered for the exit status. */
static bool check_answer(const char *variant, const char *run, bool ok,
			 const char *got, const char *want)
{
	if (!ok) {
		fprintf(stderr, NAME ": wrong answer: %s (%s): %s, expected %s\n",
			variant, run, got, want);
		any_wrong = true;
	}
	return ok;
}

/*
 * The report row of a system that ran (nothing when it was not selected);
 * @ok is false when any of its runs had a wrong answer, and @answer is then
 * the first wrong one.
 */
static void report_row(const struct bench_opts *o, const char *workload,
		       const char *size, const char *system,
		       const struct bench_series *secs,
		       const struct bench_series *weft, const char *answer,
		       bool ok)
{
	if (secs->n)
		bench_report(o, workload, size, system, secs, weft, answer, ok);
}

/* ---- the weft pool, made on first use --------------------------------- */

static struct weft_pool *the_pool;
static unsigned pool_workers;
static unsigned pool_entries;

static struct weft_pool *pool(void)
{
	struct weft_pool_options wo;
	int err;

	if (the_pool)
		return the_pool;
	weft_pool_options_init(&wo);
	wo.workers = pool_workers;
	wo.name = "bio";
	/* Room for every read in flight at once: none held back in the io
	 * thread, as none is in the raw loop. */
	wo.io_entries = pool_entries;
	err = weft_pool_create(&wo, &the_pool);
	if (err)
		die("weft_pool_create", err);
	err = weft_io_backend(the_pool);
	if (err < 0)
		die("weft_io_backend", err);
	printf("weft io backend: %s\n",
	       err == WEFT_IO_URING ? "io_uring" : "blocking (thread pool)");
	return the_pool;
}

/* ==== reads ================================================================ */

enum rvar { R_RAW, R_FIO, R_PREAD, R_WEFT_TASKS, R_WEFT_THREAD, NRVARS };

static const char *const rvar_name[NRVARS] = {
	"reads_raw", "reads_fio", "reads_pread2", "reads_weft_tasks",
	"reads_weft_thread",
};
static const char *const rvar_text[NRVARS] = {
	"raw liburing, 1 thread", "fio io_uring", "pread, 2 threads",
	"weft, QD tasks", "weft, 1 thread, QD futures",
};
/* Their names in the report (weft's main row is the tasks'). */
static const char *const rvar_system[NRVARS] = {
	"liburing", "fio", "pread", "weft", "weft_thread",
};

/* What one run of a read variant computed: its answer. */
struct rans {
	uint64_t sum;  /* block_hash() summed over the reads; fio: io_bytes */
	size_t shorts; /* reads that returned other than BLOCK (not summed) */
};

struct reads {
	/* The file. */
	char path[PATH_MAX];
	int fd;
	uint64_t size, nblocks;
	unsigned char *map, *vec; /* mincore */
	size_t pages;
	unsigned rewarms;
	/* The workload. */
	uint32_t *blk; /* n block indices */
	size_t n;
	unsigned qd;
	/* The expected answers: the checksum of the first n / 4 reads (the
	 * warm-up runs read those) and of all n. */
	uint64_t want_warm, want_all;
	unsigned char *bufs; /* max(qd, 2) blocks, page aligned */
	/* fio: why it did not run, once. */
	bool fio_off;
};

/* The file is deleted at exit (also on SIGINT/SIGTERM) unless --keep-file. */
static char unlink_path[PATH_MAX];
static volatile sig_atomic_t unlink_armed;

static void unlink_at_exit(void)
{
	if (unlink_armed)
		unlink(unlink_path);
}

static void unlink_on_signal(int sig)
{
	if (unlink_armed)
		unlink(unlink_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void fill_block(unsigned char *b, uint64_t idx)
{
	uint64_t tag = BLOCK_TAG + idx;

	memcpy(b, &tag, sizeof(tag));
	/* Non-zero everywhere: no block looks like a hole. */
	for (unsigned j = sizeof(tag); j < BLOCK; j++)
		b[j] = (unsigned char)((idx + j) | 1);
}

static inline bool block_ok(const unsigned char *b, uint64_t idx)
{
	uint64_t tag;

	memcpy(&tag, b, sizeof(tag));
	return tag == BLOCK_TAG + idx &&
	       b[BLOCK - 1] == (unsigned char)((idx + BLOCK - 1) | 1);
}

/*
 * The reads' checksum, one term per read: a hash of the block's offset and
 * of one 8-byte word from each 64-byte line of the 4096 bytes that arrived,
 * the word's place in its line moving from line to line and each word
 * rotated by its line's number, so that a line in the wrong place shows.
 * The terms are added (mod 2^64), so the order of completion does not
 * matter. What a matching sum proves (but for a 64-bit collision): each
 * read brought the bytes of the block at its own offset into the buffer
 * it was summed from (word 0 is the block's tag, so even blocks whose
 * filler bytes repeat, 256 apart, differ; a buffer summed too early holds
 * another block), every read was counted once, none lost or doubled. It
 * samples rather than sums all 512 words: 64 loads from a buffer the copy
 * has just left in L1, some tens of ns against about a microsecond per
 * read, the same for every system that reads into memory.
 */
static inline uint64_t block_hash(uint64_t off, const unsigned char *b)
{
	uint64_t h = off * 0x9e3779b97f4a7c15ull;

	for (unsigned line = 0; line < BLOCK / 64; line++) {
		uint64_t w;

		memcpy(&w, b + line * 64 + (line % 8) * 8, sizeof(w));
		h += line ? (w << line) | (w >> (64 - line)) : w;
	}
	/* splitmix64's finaliser: the offset and the words mixed into every
	 * bit, so that errors in two reads do not cancel in the sum. */
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

/* Read the whole file once, sequentially, into the page cache. */
static void warm_file(struct reads *rd)
{
	static unsigned char chunk[1 << 20];

	for (uint64_t off = 0; off < rd->size; off += sizeof(chunk)) {
		ssize_t r = pread(rd->fd, chunk, sizeof(chunk), (off_t)off);

		if (r <= 0)
			die("reading the file to warm it", r < 0 ? errno : EIO);
	}
}

/* Whether @fd (of @size bytes) was written by this program: checks the
 * tags of its first and last blocks. */
static bool is_our_file(int fd, uint64_t size)
{
	unsigned char b[BLOCK];
	uint64_t last = size / BLOCK - 1;

	if (size < BLOCK || size % BLOCK)
		return false;
	if (pread(fd, b, BLOCK, 0) != BLOCK || !block_ok(b, 0))
		return false;
	return pread(fd, b, BLOCK, (off_t)(last * BLOCK)) == BLOCK &&
	       block_ok(b, last);
}

static void file_setup(struct reads *rd, const struct io_opts *io)
{
	static unsigned char chunk[1 << 20];
	struct stat st;
	long page = sysconf(_SC_PAGESIZE);
	int64_t t0 = bench_now_ns();
	bool reuse;

	if (io->path) {
		snprintf(rd->path, sizeof(rd->path), "%s", io->path);
	} else {
		const char *dir = getenv("TMPDIR");

		if (!dir || !*dir)
			dir = "/tmp";
		/* A kept file has a fixed name so that the next run finds it. */
		if (io->keep)
			snprintf(rd->path, sizeof(rd->path), "%s/bench_io.dat", dir);
		else
			snprintf(rd->path, sizeof(rd->path), "%s/bench_io.%ld.dat",
				 dir, (long)getpid());
	}
	rd->fd = open(rd->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (rd->fd < 0)
		die(rd->path, errno);
	if (fstat(rd->fd, &st))
		die("fstat", errno);
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, NAME ": %s is not a regular file\n", rd->path);
		exit(2);
	}
	/* Never overwrite a file that this program did not write. */
	if (st.st_size && !is_our_file(rd->fd, (uint64_t)st.st_size)) {
		fprintf(stderr, NAME ": %s exists and is not a bench_io file; not overwriting it\n",
			rd->path);
		exit(2);
	}
	snprintf(unlink_path, sizeof(unlink_path), "%s", rd->path);
	unlink_armed = !io->keep;
	atexit(unlink_at_exit);
	signal(SIGINT, unlink_on_signal);
	signal(SIGTERM, unlink_on_signal);

	reuse = (uint64_t)st.st_size == rd->size;
	if (!reuse) {
		if (ftruncate(rd->fd, 0))
			die("ftruncate", errno);
		for (uint64_t off = 0; off < rd->size; off += sizeof(chunk)) {
			size_t len = sizeof(chunk);

			if (len > rd->size - off)
				len = (size_t)(rd->size - off);
			for (size_t b = 0; b < len; b += BLOCK)
				fill_block(chunk + b, (off + b) / BLOCK);
			for (size_t done = 0; done < len;) {
				ssize_t w = pwrite(rd->fd, chunk + done, len - done,
						   (off_t)(off + done));

				if (w <= 0)
					die("writing the file", w < 0 ? errno : EIO);
				done += (size_t)w;
			}
		}
		/* Write back now, so that the flusher threads do not take CPU
		 * (and the disk) in the middle of a measurement; the pages stay
		 * cached, clean. */
		if (fdatasync(rd->fd))
			die("fdatasync", errno);
	}
	warm_file(rd);

	rd->pages = (size_t)((rd->size + (uint64_t)page - 1) / (uint64_t)page);
	rd->map = mmap(NULL, rd->size, PROT_READ, MAP_SHARED, rd->fd, 0);
	if (rd->map == MAP_FAILED)
		die("mmap", errno);
	rd->vec = malloc(rd->pages);
	if (!rd->vec)
		die("malloc", ENOMEM);
	printf("file %s: %llu MiB, %s and warmed in %.1f s%s\n", rd->path,
	       (unsigned long long)(rd->size >> 20), reuse ? "reused" : "written",
	       (double)(bench_now_ns() - t0) / 1e9,
	       io->keep ? " (kept at exit)" : "");
}

/*
 * Every measured read must hit the page cache: count the file's resident
 * pages (mincore on a mapping that is never touched, so it faults nothing
 * in) and read the file again if any has gone.
 */
static void ensure_cached(struct reads *rd)
{
	size_t resident = 0;

	if (mincore(rd->map, rd->size, rd->vec))
		die("mincore", errno);
	for (size_t i = 0; i < rd->pages; i++)
		resident += rd->vec[i] & 1;
	if (resident < rd->pages) {
		rd->rewarms++;
		warm_file(rd);
	}
}

static void file_teardown(struct reads *rd)
{
	munmap(rd->map, rd->size);
	free(rd->vec);
	close(rd->fd);
}

/* -- reads_raw -- */

static OPAQUE void raw_prep(struct io_uring *ring, const struct reads *rd,
			    unsigned slot, uint32_t blk)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	/* Never NULL: a slot is refilled only after its completion, and the
	 * SQ has qd entries, all submitted at every enter. */
	if (!sqe)
		wrong("raw ring: no free SQE");
	io_uring_prep_read(sqe, rd->fd, rd->bufs + (size_t)slot * BLOCK, BLOCK,
			   (uint64_t)blk * BLOCK);
	io_uring_sqe_set_data64(sqe, slot);
}

static double run_raw_reads(struct reads *rd, size_t n, struct rans *ans)
{
	struct io_uring ring;
	uint32_t *cur = calloc(rd->qd, sizeof(*cur));
	size_t next = 0, done = 0;
	uint64_t sum = 0;
	int64_t t0, t1;
	int err;

	if (!cur)
		die("calloc", ENOMEM);
	err = ring_init(&ring, rd->qd);
	if (err)
		die("io_uring_queue_init (raw reads)", err);
	t0 = bench_now_ns();
	for (unsigned s = 0; s < rd->qd && next < n; s++) {
		cur[s] = rd->blk[next++];
		raw_prep(&ring, rd, s, cur[s]);
	}
	while (done < n) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;

		err = io_uring_submit_and_wait(&ring, 1);
		if (err < 0 && err != -EINTR)
			die("io_uring_submit_and_wait", err);
		io_uring_for_each_cqe(&ring, head, cqe) {
			unsigned s = (unsigned)cqe->user_data;

			if (cqe->res == (int)BLOCK)
				sum += block_hash((uint64_t)cur[s] * BLOCK,
						  rd->bufs + (size_t)s * BLOCK);
			else
				ans->shorts++;
			done++;
			seen++;
			if (next < n) {
				cur[s] = rd->blk[next++];
				raw_prep(&ring, rd, s, cur[s]);
			}
		}
		io_uring_cq_advance(&ring, seen);
	}
	t1 = bench_now_ns();
	ans->sum = sum;
	io_uring_queue_exit(&ring);
	free(cur);
	return (double)(t1 - t0) / 1e9;
}

/* -- reads_pread2 -- */

#define PREAD_THREADS 2

struct pread_arg {
	const struct reads *rd;
	size_t begin, end;
	unsigned char *buf;
	struct rans ans;
};

static void *pread_thread(void *p)
{
	struct pread_arg *a = p;
	const struct reads *rd = a->rd;
	uint64_t sum = 0;

	for (size_t i = a->begin; i < a->end; i++) {
		uint64_t off = (uint64_t)rd->blk[i] * BLOCK;

		if (pread(rd->fd, a->buf, BLOCK, (off_t)off) == BLOCK)
			sum += block_hash(off, a->buf);
		else
			a->ans.shorts++;
	}
	a->ans.sum = sum;
	return NULL;
}

static double run_pread_reads(struct reads *rd, size_t n, struct rans *ans)
{
	struct pread_arg a[PREAD_THREADS];
	pthread_t th[PREAD_THREADS];
	int64_t t0, t1;

	t0 = bench_now_ns();
	for (unsigned t = 0; t < PREAD_THREADS; t++) {
		a[t] = (struct pread_arg){ rd, n * t / PREAD_THREADS,
					   n * (t + 1) / PREAD_THREADS,
					   rd->bufs + (size_t)t * BLOCK, { 0, 0 } };
		if (pthread_create(&th[t], NULL, pread_thread, &a[t]))
			die("pthread_create", EAGAIN);
	}
	for (unsigned t = 0; t < PREAD_THREADS; t++)
		pthread_join(th[t], NULL);
	t1 = bench_now_ns();
	for (unsigned t = 0; t < PREAD_THREADS; t++) {
		ans->sum += a[t].ans.sum;
		ans->shorts += a[t].ans.shorts;
	}
	return (double)(t1 - t0) / 1e9;
}

/* -- reads_weft_tasks -- */

struct wread_arg {
	const struct reads *rd;
	struct weft_pool *pool;
	size_t n;
	unsigned idx;
	struct rans ans;
};

static int wread_task(void *p, void **result)
{
	struct wread_arg *a = p;
	const struct reads *rd = a->rd;
	unsigned char *buf = rd->bufs + (size_t)a->idx * BLOCK;
	uint64_t sum = 0;

	(void)result;
	for (size_t i = a->idx; i < a->n; i += rd->qd) {
		struct weft_future *f;
		uint64_t off = (uint64_t)rd->blk[i] * BLOCK;
		int64_t r;
		int err;

		err = weft_io_read(a->pool, rd->fd, buf, BLOCK, (int64_t)off,
				   WEFT_FOREVER, &f);
		if (err)
			return err;
		r = weft_io_await(f);
		if (r == (int64_t)BLOCK)
			sum += block_hash(off, buf);
		else
			a->ans.shorts++;
	}
	a->ans.sum = sum;
	return 0;
}

static double run_weft_tasks_reads(struct reads *rd, size_t n,
				   struct rans *ans)
{
	struct weft_pool *p = pool();
	struct wread_arg *a = calloc(rd->qd, sizeof(*a));
	struct weft_future **f = calloc(rd->qd, sizeof(*f));
	int64_t t0, t1;
	int err;

	if (!a || !f)
		die("calloc", ENOMEM);
	t0 = bench_now_ns();
	for (unsigned t = 0; t < rd->qd; t++) {
		a[t] = (struct wread_arg){ rd, p, n, t, { 0, 0 } };
		err = weft_submit(p, wread_task, &a[t], &f[t]);
		if (err)
			die("weft_submit", err);
	}
	for (unsigned t = 0; t < rd->qd; t++) {
		err = weft_future_get(f[t], NULL);
		if (err)
			die("a read task", err);
	}
	t1 = bench_now_ns();
	for (unsigned t = 0; t < rd->qd; t++) {
		weft_future_unref(f[t]);
		ans->sum += a[t].ans.sum;
		ans->shorts += a[t].ans.shorts;
	}
	free(a);
	free(f);
	return (double)(t1 - t0) / 1e9;
}

/* -- reads_weft_thread -- */

static double run_weft_thread_reads(struct reads *rd, size_t n,
				    struct rans *ans)
{
	struct weft_pool *p = pool();
	struct weft_future **f = calloc(rd->qd, sizeof(*f));
	uint32_t *cur = calloc(rd->qd, sizeof(*cur));
	size_t next = 0, done = 0;
	uint64_t sum = 0;
	int64_t t0, t1;
	int err;

	if (!f || !cur)
		die("calloc", ENOMEM);
	t0 = bench_now_ns();
	for (unsigned s = 0; s < rd->qd && next < n; s++) {
		cur[s] = rd->blk[next++];
		err = weft_io_read(p, rd->fd, rd->bufs + (size_t)s * BLOCK, BLOCK,
				   (int64_t)cur[s] * BLOCK, WEFT_FOREVER, &f[s]);
		if (err)
			die("weft_io_read", err);
	}
	/* The slots in submission order: the oldest read is awaited first. */
	for (unsigned s = 0; done < n; s = (s + 1) % rd->qd) {
		unsigned char *buf = rd->bufs + (size_t)s * BLOCK;
		int64_t r = weft_io_await(f[s]);

		if (r == (int64_t)BLOCK)
			sum += block_hash((uint64_t)cur[s] * BLOCK, buf);
		else
			ans->shorts++;
		done++;
		if (next < n) {
			cur[s] = rd->blk[next++];
			err = weft_io_read(p, rd->fd, buf, BLOCK,
					   (int64_t)cur[s] * BLOCK, WEFT_FOREVER,
					   &f[s]);
			if (err)
				die("weft_io_read", err);
		}
	}
	t1 = bench_now_ns();
	ans->sum = sum;
	free(f);
	free(cur);
	return (double)(t1 - t0) / 1e9;
}

/* -- reads_fio -- */

/* CPU time of the fio children, which bench_load counts as "other
 * processes": reported beside that figure. */
static int64_t fio_cpu_ns;

/* The value of jobs[0].read.<@key> (@key with its quotes) in fio's JSON
 * output, or NULL. The quotes keep "iops" from matching "iops_min", ...;
 * both keys asked for come before the next object in "read". */
static const char *fio_json_read(const char *s, const char *key)
{
	const char *p = strstr(s, "\"jobs\"");

	if (p)
		p = strstr(p, "\"read\"");
	for (p = p ? strstr(p, key) : NULL; p; p = strstr(p + 1, key)) {
		const char *q = p + strlen(key);

		while (*q == ' ' || *q == '\t')
			q++;
		if (*q == ':')
			return q + 1;
	}
	return NULL;
}

/*
 * Run fio on the file; its IOPS, or -1 with the reason printed (once), and
 * the bytes it read in ans->sum. The same queue depth and number of reads
 * as the other variants; random offsets of its own (norandommap: with
 * repeats, as ours). --number_ios alone stops fio early but never extends
 * it past --size (the file: fewer reads than n), so --io_size asks for
 * n * 4096 bytes. The batch options are research/iouring.md's page-cache
 * recipe: submit up to QD at once, reap as soon as one has completed, as
 * the raw loop does.
 */
static double run_fio(struct reads *rd, size_t n, struct rans *ans)
{
	char a_file[PATH_MAX + 16], a_size[48], a_qd[32], a_qdb[48], a_n[48];
	char a_io[48];
	char *argv[] = {
		"fio", "--name=bench_io", a_file, "--rw=randread", "--bs=4k",
		a_size, "--direct=0", "--invalidate=0", "--fadvise_hint=0",
		"--ioengine=io_uring", a_qd, a_qdb,
		"--iodepth_batch_complete_min=1", a_n, a_io, "--norandommap",
		"--randrepeat=0", "--allow_file_create=0",
		"--output-format=json", NULL,
	};
	posix_spawn_file_actions_t fa;
	struct rusage ru;
	char *out = NULL;
	size_t len = 0, cap = 0;
	int pipefd[2], status, err;
	const char *v;
	double iops;
	pid_t pid;

	/* fio splits file names at ':' */
	if (strchr(rd->path, ':')) {
		printf("fio: skipped, the file name has a ':'\n");
		rd->fio_off = true;
		return -1;
	}
	snprintf(a_file, sizeof(a_file), "--filename=%s", rd->path);
	snprintf(a_size, sizeof(a_size), "--size=%llu",
		 (unsigned long long)rd->size);
	snprintf(a_qd, sizeof(a_qd), "--iodepth=%u", rd->qd);
	snprintf(a_qdb, sizeof(a_qdb), "--iodepth_batch_submit=%u", rd->qd);
	snprintf(a_n, sizeof(a_n), "--number_ios=%zu", n);
	snprintf(a_io, sizeof(a_io), "--io_size=%llu",
		 (unsigned long long)n * BLOCK);

	if (pipe2(pipefd, O_CLOEXEC))
		die("pipe2", errno);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null",
					 O_WRONLY, 0);
	err = posix_spawnp(&pid, "fio", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (err) {
		close(pipefd[0]);
		printf("fio: skipped (%s)\n", err == ENOENT ? "not on PATH" : strerror(err));
		rd->fio_off = true;
		return -1;
	}
	for (;;) {
		ssize_t r;

		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			out = realloc(out, cap);
			if (!out)
				die("realloc", ENOMEM);
		}
		r = read(pipefd[0], out + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(pipefd[0]);
	out[len] = '\0';
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR)
			die("wait4(fio)", errno);
	}
	fio_cpu_ns += (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
		      (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
	v = fio_json_read(out, "\"iops\"");
	iops = v ? strtod(v, NULL) : -1;
	v = fio_json_read(out, "\"io_bytes\"");
	ans->sum = v ? strtoull(v, NULL, 10) : 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) || iops <= 0) {
		printf("fio: skipped (it failed: status %d, %s)\n", status,
		       iops <= 0 ? "no read IOPS in its output" : "");
		rd->fio_off = true;
		iops = -1;
	}
	free(out);
	return iops;
}

/* Runs variant @v once; reads/s, the process CPU ns per read in *cpu (-1
 * for fio: another process), and the run's answer in *ans. */
static double reads_once(struct reads *rd, enum rvar v, size_t n, double *cpu,
			 struct rans *ans)
{
	int64_t c0;
	double s = 0;

	*ans = (struct rans){ 0, 0 };
	ensure_cached(rd);
	c0 = bench_cpu_ns();
	switch (v) {
	case R_RAW:
		s = run_raw_reads(rd, n, ans);
		break;
	case R_FIO: {
		double iops = run_fio(rd, n, ans);

		*cpu = -1;
		bench_sleep_ms(10);
		return iops;
	}
	case R_PREAD:
		s = run_pread_reads(rd, n, ans);
		break;
	case R_WEFT_TASKS:
		s = run_weft_tasks_reads(rd, n, ans);
		break;
	case R_WEFT_THREAD:
		s = run_weft_thread_reads(rd, n, ans);
		break;
	default:
		abort();
	}
	*cpu = (double)(bench_cpu_ns() - c0) / (double)n;
	/* Let spinning workers and the io thread go to sleep. */
	bench_sleep_ms(10);
	return (double)n / s;
}

/*
 * The workload and the file, before the machine's load is measured: the
 * write-back of a new file runs in kernel threads, which bench_load would
 * count as other processes' work.
 */
static void reads_prepare(struct reads *rd, const struct bench_opts *o,
			  const struct io_opts *io)
{
	uint64_t seed = 0x5eed, sum = 0;
	int64_t t0;

	rd->size = io->size ? io->size :
		   o->tiny ? 16ull << 20 : o->quick ? 256ull << 20 : 1ull << 30;
	rd->nblocks = rd->size / BLOCK;
	rd->qd = io->qd;
	rd->n = o->tiny ? 4000 : o->quick ? 200000 : 1000000;
	rd->blk = malloc(rd->n * sizeof(*rd->blk));
	rd->bufs = aligned_alloc(4096, (size_t)(rd->qd < 2 ? 2 : rd->qd) * BLOCK);
	if (!rd->blk || !rd->bufs)
		die("malloc", ENOMEM);
	for (size_t i = 0; i < rd->n; i++)
		rd->blk[i] = (uint32_t)(rnd_next(&seed) % rd->nblocks);
	file_setup(rd, io);

	/* The expected answers, from the file itself: the same blocks, read
	 * one at a time with plain pread() and checked to be the blocks this
	 * program wrote (tag and filler), before anything is timed. */
	t0 = bench_now_ns();
	for (size_t i = 0; i < rd->n; i++) {
		uint64_t off = (uint64_t)rd->blk[i] * BLOCK;

		if (i == rd->n / 4)
			rd->want_warm = sum;
		if (pread(rd->fd, rd->bufs, BLOCK, (off_t)off) != BLOCK)
			die("reading the expected blocks", errno ? errno : EIO);
		if (!block_ok(rd->bufs, rd->blk[i])) {
			fprintf(stderr, NAME ": %s: block %" PRIu32 " is not what this program wrote\n",
				rd->path, rd->blk[i]);
			exit(1);
		}
		sum += block_hash(off, rd->bufs);
	}
	rd->want_all = sum;
	printf("expected checksum of the %zu reads: %016" PRIx64 " (%.2f s)\n",
	       rd->n, rd->want_all, (double)(bench_now_ns() - t0) / 1e9);
}

/*
 * Check one run's answer against the expected one for @n reads: the
 * checksum of those reads, fio's n * 4096 bytes; no short read either.
 * Keeps the first wrong answer of each variant (else the last) as text.
 */
static void reads_check(const struct reads *rd, enum rvar v, size_t n,
			const struct rans *ans, bool *ok, char *text,
			size_t tlen)
{
	uint64_t want = v == R_FIO ? (uint64_t)n * BLOCK :
			n == rd->n ? rd->want_all : rd->want_warm;
	char got[64], exp[64], run[48];
	bool right;

	if (v == R_FIO) {
		snprintf(got, sizeof(got), "%" PRIu64, ans->sum);
		snprintf(exp, sizeof(exp), "%" PRIu64 " bytes", want);
	} else if (ans->shorts) {
		snprintf(got, sizeof(got), "%016" PRIx64 " with %zu short reads",
			 ans->sum, ans->shorts);
		snprintf(exp, sizeof(exp), "%016" PRIx64, want);
	} else {
		snprintf(got, sizeof(got), "%016" PRIx64, ans->sum);
		snprintf(exp, sizeof(exp), "%016" PRIx64, want);
	}
	right = ans->sum == want && !ans->shorts;
	snprintf(run, sizeof(run), "%zu reads", n);
	if (*ok)
		snprintf(text, tlen, "%s", got);
	*ok &= check_answer(rvar_name[v], run, right, got, exp);
}

static void section_reads(const struct bench_opts *o, struct reads *rd)
{
	struct bench_series rate[NRVARS] = { 0 }, cpu[NRVARS] = { 0 };
	struct bench_series secs[NRVARS] = { 0 };
	struct bench_series r_raw, r_fio;
	unsigned rounds = io_rounds(o);
	bool sel[NRVARS], ok[NRVARS];
	char answer[NRVARS][64] = { { 0 } }, size[64];

	for (unsigned v = 0; v < NRVARS; v++) {
		sel[v] = bench_selected(o, rvar_name[v]);
		ok[v] = true;
	}
	printf("\n== reads: %zu random 4 KiB reads of a page-cached file, QD %u, %u rounds\n",
	       rd->n, rd->qd, rounds);

	/* Warm-up: the io thread, the pool's fibers, the allocators. */
	for (unsigned v = 0; v < NRVARS; v++) {
		struct rans a;
		double c;

		if (!sel[v] || v == R_FIO)
			continue;
		reads_once(rd, (enum rvar)v, rd->n / 4, &c, &a);
		reads_check(rd, (enum rvar)v, rd->n / 4, &a, &ok[v], answer[v],
			    sizeof(answer[v]));
	}
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned j = 0; j < NRVARS; j++) {
			enum rvar v = (enum rvar)((j + r) % NRVARS);
			struct rans a;
			double c, x;

			if (!sel[v] || (v == R_FIO && rd->fio_off))
				continue;
			x = reads_once(rd, v, rd->n, &c, &a);
			if (x <= 0)
				continue;
			reads_check(rd, v, rd->n, &a, &ok[v], answer[v],
				    sizeof(answer[v]));
			bench_series_add(&rate[v], x);
			/* The report's figure: the time of the n reads. */
			bench_series_add(&secs[v], (double)rd->n / x);
			if (c >= 0)
				bench_series_add(&cpu[v], c);
		}
	}

	printf("\n%-28s %10s %14s %9s %14s %9s %14s %11s\n", "variant", "reads/s",
	       "min..max (M/s)", "vs raw", "ratio min..max", "vs fio",
	       "ratio min..max", "cpu us/read");
	for (unsigned v = 0; v < NRVARS; v++) {
		char range[40], m1[16], g1[40], m2[16], g2[40], c[16];

		if (!rate[v].n)
			continue;
		fmt_range(range, sizeof(range), &rate[v], 1e6);
		ratio_of(&rate[v], &rate[R_RAW], &r_raw);
		ratio_of(&rate[v], &rate[R_FIO], &r_fio);
		if (v == R_RAW)
			r_raw.n = 0;
		if (v == R_FIO)
			r_fio.n = 0;
		bench_fmt_ratio(&r_raw, m1, sizeof(m1), g1, sizeof(g1));
		bench_fmt_ratio(&r_fio, m2, sizeof(m2), g2, sizeof(g2));
		if (cpu[v].n)
			snprintf(c, sizeof(c), "%.2f", bench_series_median(&cpu[v]) / 1e3);
		else
			snprintf(c, sizeof(c), "-");
		printf("%-28s %8.3f M %14s %9s %14s %9s %14s %11s\n", rvar_text[v],
		       bench_series_median(&rate[v]) / 1e6, range, m1, g1, m2, g2, c);
		bench_csv_series(o, rvar_name[v], "reads_per_s", &rate[v]);
		bench_csv_series(o, rvar_name[v], "vs_raw", &r_raw);
		bench_csv_series(o, rvar_name[v], "vs_fio", &r_fio);
		bench_csv_series(o, rvar_name[v], "cpu_ns_per_read", &cpu[v]);
	}
	if (rd->rewarms)
		printf("WARNING: the file left the page cache %u times (re-read each time)\n",
		       rd->rewarms);
	bench_csv(o, "reads", "rewarms", rd->rewarms);

	ratio_of(&rate[R_WEFT_TASKS], &rate[R_RAW], &r_raw);
	if (r_raw.n) {
		char meas[48];
		double m = bench_series_median(&r_raw);

		fmt_measured(meas, sizeof(meas), &r_raw, "x");
		bench_target(o, "reads_weft_tasks_vs_raw_ge_0.8", m, m >= 0.8,
			     "reads: weft tasks / raw liburing >= 0.8x", meas);
	}
	ratio_of(&rate[R_WEFT_TASKS], &rate[R_FIO], &r_fio);
	if (r_fio.n) {
		char meas[48];
		double m = bench_series_median(&r_fio);

		fmt_measured(meas, sizeof(meas), &r_fio, "x");
		bench_target(o, "reads_weft_tasks_vs_fio_ge_1", m, m >= 1,
			     "reads: weft tasks / fio io_uring >= 1x", meas);
	}

	snprintf(size, sizeof(size), "4KiB QD%u %zu reads", rd->qd, rd->n);
	report_row(o, "reads", size, rvar_system[R_WEFT_TASKS],
		   &secs[R_WEFT_TASKS], NULL, answer[R_WEFT_TASKS],
		   ok[R_WEFT_TASKS]);
	for (unsigned v = 0; v < NRVARS; v++)
		if (v != R_WEFT_TASKS)
			report_row(o, "reads", size, rvar_system[v], &secs[v],
				   &secs[R_WEFT_TASKS], answer[v], ok[v]);
	file_teardown(rd);
	free(rd->blk);
	free(rd->bufs);
}

/* ==== nop round trip ====================================================== */

enum nvar {
	N_RAW_BUSY, N_TASK_BUSY, N_THREAD_BUSY,
	N_RAW_IDLE, N_TASK_IDLE, N_THREAD_IDLE,
	NNVARS
};

static const char *const nvar_name[NNVARS] = {
	"nop_raw_busy", "nop_weft_task_busy", "nop_weft_thread_busy",
	"nop_raw_idle", "nop_weft_task_idle", "nop_weft_thread_idle",
};
static const char *const nvar_text[NNVARS] = {
	"raw ring, back to back", "weft task, busy", "weft thread, busy",
	"raw ring, idle pauses", "weft task, idle", "weft thread, idle",
};

/* The busy variants' names in the report (weft's main row is the task's). */
static const char *const nvar_system[NNVARS] = {
	"liburing", "weft", "weft_thread", NULL, NULL, NULL,
};

struct nop_loop {
	struct weft_pool *pool;
	struct io_uring *ring; /* the raw variants */
	bool idle;
	unsigned warm, n;
	const uint32_t *pause_us; /* warm + n, when idle */
	int64_t *ns;		  /* n */
	/* Out: the wall time of the n timed round trips, from the first's
	 * start to the last's end; how many of them completed with result 0
	 * (the answer), and how many of all warm + n did not. */
	int64_t run_ns;
	unsigned zeros, nonzero;
};

static OPAQUE int raw_nop_loop(struct nop_loop *l)
{
	int64_t start = 0;

	l->zeros = l->nonzero = 0;
	for (unsigned i = 0; i < l->warm + l->n; i++) {
		struct io_uring_sqe *sqe;
		struct io_uring_cqe *cqe;
		int64_t t0, t1;
		int err, res;

		if (l->idle)
			sleep_us(l->pause_us[i]);
		t0 = bench_now_ns();
		sqe = io_uring_get_sqe(l->ring);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_nop(sqe);
		err = io_uring_submit_and_wait(l->ring, 1);
		if (err < 0)
			return err;
		err = io_uring_wait_cqe(l->ring, &cqe);
		if (err)
			return err;
		res = cqe->res;
		io_uring_cqe_seen(l->ring, cqe);
		t1 = bench_now_ns();
		/* A completion's result is the answer, not a failure: counted. */
		if (res)
			l->nonzero++;
		if (i == l->warm)
			start = t0;
		if (i >= l->warm) {
			l->ns[i - l->warm] = t1 - t0;
			l->zeros += !res;
			l->run_ns = t1 - start;
		}
	}
	return 0;
}

static OPAQUE int weft_nop_loop(struct nop_loop *l)
{
	int64_t start = 0;

	l->zeros = l->nonzero = 0;
	for (unsigned i = 0; i < l->warm + l->n; i++) {
		struct weft_future *f;
		int64_t t0, t1, r;
		int err;

		if (l->idle)
			sleep_us(l->pause_us[i]);
		t0 = bench_now_ns();
		err = weft_io_nop(l->pool, WEFT_FOREVER, &f);
		if (err)
			return err;
		r = weft_io_await(f);
		t1 = bench_now_ns();
		if (r)
			l->nonzero++;
		if (i == l->warm)
			start = t0;
		if (i >= l->warm) {
			l->ns[i - l->warm] = t1 - t0;
			l->zeros += !r;
			l->run_ns = t1 - start;
		}
	}
	return 0;
}

static int nop_task(void *p, void **result)
{
	(void)result;
	return weft_nop_loop(p);
}

/* The background load of the busy variants: nop + await, back to back. */
struct nop_bg {
	struct weft_pool *pool;
	atomic_bool stop;
	atomic_ulong ops;
};

static int nop_bg_task(void *p, void **result)
{
	struct nop_bg *b = p;

	(void)result;
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		struct weft_future *f;
		int err = weft_io_nop(b->pool, WEFT_FOREVER, &f);

		if (err)
			return err;
		if (weft_io_await(f))
			return -EPROTO;
		atomic_fetch_add_explicit(&b->ops, 1, memory_order_relaxed);
	}
	return 0;
}

/* Runs variant @v once: p50 and p99 in ns, and *secs: the wall time of the
 * n round trips. The answer (l->zeros, l->nonzero) is left in @l. */
static void nop_once(enum nvar v, struct nop_loop *l, double *p50, double *p99,
		     double *secs)
{
	struct nop_bg bg = { 0 };
	struct weft_future *bgf = NULL, *f;
	int err;

	l->idle = v >= N_RAW_IDLE;
	if (v == N_RAW_BUSY || v == N_RAW_IDLE) {
		err = raw_nop_loop(l);
	} else {
		l->pool = pool();
		if (!l->idle) {
			bg.pool = l->pool;
			err = weft_submit(l->pool, nop_bg_task, &bg, &bgf);
			if (err)
				die("weft_submit", err);
			/* The load is flowing before the first sample. */
			while (!atomic_load(&bg.ops))
				sleep_us(50);
		}
		if (v == N_TASK_BUSY || v == N_TASK_IDLE) {
			err = weft_submit(l->pool, nop_task, l, &f);
			if (err)
				die("weft_submit", err);
			weft_future_wait(f);
			err = weft_future_error(f);
			weft_future_unref(f);
		} else {
			err = weft_nop_loop(l);
		}
		if (bgf) {
			atomic_store(&bg.stop, true);
			if (weft_future_get(bgf, NULL))
				wrong("the background nop task failed");
			weft_future_unref(bgf);
		}
	}
	if (err)
		die(nvar_name[v], err);
	qsort(l->ns, l->n, sizeof(*l->ns), cmp_i64);
	*p50 = (double)l->ns[l->n / 2];
	*p99 = (double)l->ns[(size_t)l->n * 99 / 100];
	*secs = (double)l->run_ns / 1e9;
	bench_sleep_ms(10);
}

/* Check one run's answer: every one of the n round trips completed with
 * result 0 (and none of the warm-up's failed). Keeps the first wrong answer
 * of each variant (else the last) as text. */
static void nop_check(enum nvar v, const struct nop_loop *l, const char *run,
		      bool *ok, char *text, size_t tlen)
{
	char got[64], want[32];
	bool right = l->zeros == l->n && !l->nonzero;

	if (l->nonzero)
		snprintf(got, sizeof(got), "%u (%u non-zero results)", l->zeros,
			 l->nonzero);
	else
		snprintf(got, sizeof(got), "%u", l->zeros);
	snprintf(want, sizeof(want), "%u", l->n);
	if (*ok)
		snprintf(text, tlen, "%s", got);
	*ok &= check_answer(nvar_name[v], run, right, got, want);
}

static void section_nop(const struct bench_opts *o)
{
	struct bench_series p50[NNVARS] = { 0 }, p99[NNVARS] = { 0 };
	struct bench_series secs[NNVARS] = { 0 };
	struct bench_series r50, r99;
	struct io_uring ring;
	struct nop_loop busy = { 0 }, idle = { 0 };
	unsigned rounds = io_rounds(o);
	uint32_t pause_lo = 100, pause_hi = o->quick ? 500 : 1000;
	uint64_t seed = 0x1d1e;
	bool sel[NNVARS], ok[NNVARS], any_raw = false;
	char answer[NNVARS][64] = { { 0 } }, size[48];
	int err;

	for (unsigned v = 0; v < NNVARS; v++) {
		sel[v] = bench_selected(o, nvar_name[v]);
		ok[v] = true;
		any_raw |= sel[v] && (v == N_RAW_BUSY || v == N_RAW_IDLE);
	}
	busy.n = o->tiny ? 300 : o->quick ? 20000 : 200000;
	busy.warm = o->tiny ? 50 : 1000;
	idle.n = o->tiny ? 40 : o->quick ? 400 : 4000;
	idle.warm = o->tiny ? 4 : 10;
	busy.ns = malloc(busy.n * sizeof(*busy.ns));
	idle.ns = malloc(idle.n * sizeof(*idle.ns));
	idle.pause_us = malloc((idle.warm + idle.n) * sizeof(uint32_t));
	if (!busy.ns || !idle.ns || !idle.pause_us)
		die("malloc", ENOMEM);
	for (unsigned i = 0; i < idle.warm + idle.n; i++)
		((uint32_t *)idle.pause_us)[i] =
			pause_lo + (uint32_t)(rnd_next(&seed) % (pause_hi - pause_lo + 1));
	if (any_raw) {
		err = ring_init(&ring, 8);
		if (err)
			die("io_uring_queue_init (raw nop)", err);
		busy.ring = idle.ring = &ring;
	}

	printf("\n== nop: one weft_io_nop + await at a time; busy %u, idle %u per run (pauses %u..%u us), %u rounds\n",
	       busy.n, idle.n, pause_lo, pause_hi, rounds);
	for (unsigned v = 0; v < NNVARS; v++) {
		struct nop_loop *l = v >= N_RAW_IDLE ? &idle : &busy;
		double a, b, t;

		if (!sel[v])
			continue;
		nop_once((enum nvar)v, l, &a, &b, &t);
		nop_check((enum nvar)v, l, "warm-up", &ok[v], answer[v],
			  sizeof(answer[v]));
	}
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned j = 0; j < NNVARS; j++) {
			enum nvar v = (enum nvar)((j + r) % NNVARS);
			struct nop_loop *l = v >= N_RAW_IDLE ? &idle : &busy;
			double a, b, t;

			if (!sel[v])
				continue;
			nop_once(v, l, &a, &b, &t);
			nop_check(v, l, "timed", &ok[v], answer[v],
				  sizeof(answer[v]));
			bench_series_add(&p50[v], a);
			bench_series_add(&p99[v], b);
			bench_series_add(&secs[v], t);
		}
	}

	printf("\n%-28s %9s %14s %9s %12s %9s\n", "variant", "p50 us",
	       "min..max", "p99 us", "p50 vs raw", "p99 vs raw");
	for (unsigned v = 0; v < NNVARS; v++) {
		unsigned base = v >= N_RAW_IDLE ? N_RAW_IDLE : N_RAW_BUSY;
		char range[40], m50[16], m99[16], g[40];

		if (!p50[v].n)
			continue;
		fmt_range(range, sizeof(range), &p50[v], 1e3);
		/* Latency: above 1, weft takes longer than the raw ring. */
		ratio_of(&p50[v], &p50[base], &r50);
		ratio_of(&p99[v], &p99[base], &r99);
		if (v == base)
			r50.n = r99.n = 0;
		bench_fmt_ratio(&r50, m50, sizeof(m50), g, sizeof(g));
		bench_fmt_ratio(&r99, m99, sizeof(m99), g, sizeof(g));
		printf("%-28s %9.2f %14s %9.2f %12s %9s\n", nvar_text[v],
		       bench_series_median(&p50[v]) / 1e3, range,
		       bench_series_median(&p99[v]) / 1e3, m50, m99);
		bench_csv_series(o, nvar_name[v], "p50_ns", &p50[v]);
		bench_csv_series(o, nvar_name[v], "p99_ns", &p99[v]);
		bench_csv_series(o, nvar_name[v], "p50_vs_raw", &r50);
		bench_csv_series(o, nvar_name[v], "p99_vs_raw", &r99);
	}

	for (unsigned v = N_TASK_BUSY; v < NNVARS; v++) {
		bool is_idle = v >= N_RAW_IDLE;
		double limit = is_idle ? 20e3 : 2e3, m;
		char text[80], meas[48], metric[80];

		if (v == N_RAW_IDLE || !p50[v].n)
			continue;
		m = bench_series_median(&p50[v]);
		snprintf(text, sizeof(text), "nop: %s p50 <= %.0f us", nvar_text[v],
			 limit / 1e3);
		snprintf(meas, sizeof(meas), "%.2f us (%.2f..%.2f)", m / 1e3,
			 bench_series_min(&p50[v]) / 1e3,
			 bench_series_max(&p50[v]) / 1e3);
		snprintf(metric, sizeof(metric), "%s_p50_ns_le_%.0f", nvar_name[v],
			 limit);
		bench_target(o, metric, m, m <= limit, text, meas);
	}

	/* The report: the busy variants, n round trips back to back (the
	 * idle ones time mostly their pauses). */
	snprintf(size, sizeof(size), "%u round trips", busy.n);
	report_row(o, "nop", size, nvar_system[N_TASK_BUSY], &secs[N_TASK_BUSY],
		   NULL, answer[N_TASK_BUSY], ok[N_TASK_BUSY]);
	for (unsigned v = N_RAW_BUSY; v <= N_THREAD_BUSY; v++)
		if (v != N_TASK_BUSY)
			report_row(o, "nop", size, nvar_system[v], &secs[v],
				   &secs[N_TASK_BUSY], answer[v], ok[v]);
	if (any_raw)
		io_uring_queue_exit(&ring);
	free(busy.ns);
	free(idle.ns);
	free((void *)idle.pause_us);
}

/* ==== echo ================================================================ */

enum evar { E_EPOLL, E_WEFT, NEVARS };

static const char *const evar_name[NEVARS] = { "echo_epoll", "echo_weft" };
static const char *const evar_text[NEVARS] = {
	"epoll, 1 thread", "weft, task per connection",
};
static const char *const evar_system[NEVARS] = { "epoll", "weft" };

static void set_nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		die("setsockopt(TCP_NODELAY)", errno);
}

static int listen_loopback(int type_flags, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
	int one = 1;

	if (fd < 0)
		die("socket", errno);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		die("bind/listen on loopback", errno);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* -- the epoll server -- */

struct ep_conn {
	int fd;
	bool want_out; /* registered for EPOLLOUT: output pending */
	size_t off, len;
	unsigned char buf[ECHO_BUF];
};

struct ep_server {
	int lfd, epfd, stopfd;
	uint16_t port;
	pthread_t th;
	atomic_int live;
};

/* epoll data of the two non-connection descriptors (pointers are never
 * 0 or 1). */
#define EP_LISTEN 0
#define EP_STOP 1

static void ep_close(struct ep_server *s, struct ep_conn *c)
{
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
	atomic_fetch_sub(&s->live, 1);
}

/* Send what is pending; switch the interest to EPOLLOUT while the socket is
 * full, back to EPOLLIN once it is all out. false: the connection is gone. */
static bool ep_flush(struct ep_server *s, struct ep_conn *c)
{
	while (c->off < c->len) {
		ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0) {
			c->off += (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN) {
			struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

			if (!c->want_out &&
			    epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev))
				die("epoll_ctl", errno);
			c->want_out = true;
			return true;
		} else {
			return false;
		}
	}
	if (c->want_out) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

		if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev))
			die("epoll_ctl", errno);
		c->want_out = false;
	}
	return true;
}

static void ep_accept(struct ep_server *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct ep_conn *c;

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			die("accept4", errno);
		}
		set_nodelay(fd);
		c = calloc(1, sizeof(*c));
		if (!c)
			die("calloc", ENOMEM);
		c->fd = fd;
		ev.data.ptr = c;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev))
			die("epoll_ctl", errno);
		atomic_fetch_add(&s->live, 1);
	}
}

static void *ep_server_thread(void *p)
{
	struct ep_server *s = p;
	struct epoll_event evs[64];

	for (;;) {
		int n = epoll_wait(s->epfd, evs, 64, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait", errno);
		for (int i = 0; i < n; i++) {
			struct ep_conn *c = evs[i].data.ptr;
			ssize_t r;

			if (evs[i].data.u64 == EP_STOP)
				return NULL;
			if (evs[i].data.u64 == EP_LISTEN) {
				ep_accept(s);
				continue;
			}
			if (c->want_out) {
				if (!ep_flush(s, c))
					ep_close(s, c);
				continue;
			}
			r = recv(c->fd, c->buf, ECHO_BUF, MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0) {
				ep_close(s, c);
				continue;
			}
			c->off = 0;
			c->len = (size_t)r;
			if (!ep_flush(s, c))
				ep_close(s, c);
		}
	}
}

static void ep_server_start(struct ep_server *s)
{
	struct epoll_event ev = { .events = EPOLLIN };

	s->lfd = listen_loopback(SOCK_NONBLOCK, &s->port);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->epfd < 0 || s->stopfd < 0)
		die("epoll_create1/eventfd", errno);
	ev.data.u64 = EP_LISTEN;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev))
		die("epoll_ctl", errno);
	ev.data.u64 = EP_STOP;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->stopfd, &ev))
		die("epoll_ctl", errno);
	if (pthread_create(&s->th, NULL, ep_server_thread, s))
		die("pthread_create", EAGAIN);
}

static void ep_server_stop(struct ep_server *s)
{
	uint64_t one = 1;

	if (write(s->stopfd, &one, sizeof(one)) != sizeof(one))
		die("write(eventfd)", errno);
	pthread_join(s->th, NULL);
	close(s->stopfd);
	close(s->epfd);
	close(s->lfd);
}

/* -- the weft server -- */

struct w_server {
	struct weft_pool *pool;
	int lfd;
	uint16_t port;
	struct weft_future *acceptor;
	atomic_int live;
	atomic_long errors; /* recv/send results other than a peer's close */
};

struct w_conn {
	struct w_server *s;
	int fd;
};

static int w_conn_task(void *p, void **result)
{
	struct w_conn *c = p;
	struct w_server *s = c->s;
	unsigned char buf[ECHO_BUF];

	(void)result;
	for (;;) {
		struct weft_future *f;
		int64_t n, off = 0;
		int err;

		err = weft_io_recv(s->pool, c->fd, buf, sizeof(buf), 0,
				   WEFT_FOREVER, &f);
		if (err)
			die("weft_io_recv", err);
		n = weft_io_await(f);
		if (n <= 0) {
			/* 0: the client closed; -ECONNRESET is a close too. */
			if (n < 0 && n != -ECONNRESET)
				atomic_fetch_add(&s->errors, 1);
			break;
		}
		while (off < n) {
			int64_t w;

			err = weft_io_send(s->pool, c->fd, buf + off,
					   (size_t)(n - off), 0, WEFT_FOREVER, &f);
			if (err)
				die("weft_io_send", err);
			w = weft_io_await(f);
			if (w <= 0) {
				atomic_fetch_add(&s->errors, 1);
				goto out;
			}
			off += w;
		}
	}
out:
	close(c->fd);
	free(c);
	atomic_fetch_sub(&s->live, 1);
	return 0;
}

static int w_acceptor_task(void *p, void **result)
{
	struct w_server *s = p;
	struct weft_acceptor *acc;
	int fd, err;

	(void)result;
	err = weft_io_accept_multishot(s->pool, s->lfd, 0, &acc);
	if (err)
		return err;
	for (;;) {
		struct w_conn *c;

		fd = weft_acceptor_next(acc, WEFT_FOREVER);
		if (fd < 0)
			break;
		set_nodelay(fd);
		c = malloc(sizeof(*c));
		if (!c)
			die("malloc", ENOMEM);
		c->s = s;
		c->fd = fd;
		atomic_fetch_add(&s->live, 1);
		err = weft_submit(s->pool, w_conn_task, c, NULL);
		if (err)
			die("weft_submit", err);
	}
	/* Stopped by a cancel of this task: closing the acceptor waits for
	 * the multishot request to end, which a cancelled task's waits would
	 * cut short. */
	weft_cancel_shield_push();
	weft_acceptor_close(acc);
	weft_cancel_shield_pop();
	return fd == -ECANCELED ? 0 : fd;
}

static void w_server_start(struct w_server *s)
{
	int err;

	s->pool = pool();
	s->lfd = listen_loopback(0, &s->port);
	err = weft_submit(s->pool, w_acceptor_task, s, &s->acceptor);
	if (err)
		die("weft_submit", err);
}

static void w_server_stop(struct w_server *s)
{
	int err;

	err = weft_future_cancel(s->acceptor);
	if (err != -EBUSY && err != -EALREADY && err != 0)
		die("weft_future_cancel(acceptor)", err);
	err = weft_future_get(s->acceptor, NULL);
	if (err && err != -ECANCELED)
		die("the acceptor task", err);
	weft_future_unref(s->acceptor);
	close(s->lfd);
	if (atomic_load(&s->errors))
		wrong("weft echo server: recv/send failed");
}

/* -- the client: one thread, epoll, every connection one message in flight -- */

struct c_conn {
	int fd;
	unsigned id;
	uint32_t seq;
	unsigned left; /* messages still to exchange this pass */
	size_t got;
	unsigned char out[ECHO_BUF], in[ECHO_BUF];
};

struct client {
	unsigned conns, msg;
	struct c_conn *c;
	int epfd;
	/* The answer: bytes of the replies found equal to their messages, and
	 * the replies that differed (counted, so that the run goes on). */
	uint64_t verified;
	unsigned differed;
};

static void c_send(struct client *cl, struct c_conn *c)
{
	size_t off = 0;

	c->seq++;
	/* A different message each time, so that a stale or misplaced echo
	 * shows. */
	for (unsigned j = 0; j < cl->msg; j++)
		c->out[j] = (unsigned char)(c->id * 131u + c->seq * 7u + j);
	while (off < cl->msg) {
		ssize_t w = send(c->fd, c->out + off, cl->msg - off, MSG_NOSIGNAL);
		struct pollfd pfd = { c->fd, POLLOUT, 0 };

		if (w > 0) {
			off += (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			poll(&pfd, 1, 1000);
		} else {
			die("client send", w < 0 ? errno : EIO);
		}
	}
}

/* Every connection exchanges @per_conn messages, one in flight each. */
static void c_exchange(struct client *cl, unsigned per_conn)
{
	struct epoll_event evs[64];
	unsigned active = cl->conns;

	for (unsigned i = 0; i < cl->conns; i++) {
		cl->c[i].left = per_conn;
		cl->c[i].got = 0;
		c_send(cl, &cl->c[i]);
	}
	while (active) {
		int n = epoll_wait(cl->epfd, evs, 64, 10000);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait", errno);
		if (n == 0)
			wrong("echo: no reply for 10 s");
		for (int i = 0; i < n; i++) {
			struct c_conn *c = evs[i].data.ptr;
			ssize_t r;

			if (!c->left)
				continue;
			r = recv(c->fd, c->in + c->got, cl->msg - c->got, 0);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0)
				wrong("echo: the server closed a connection");
			c->got += (size_t)r;
			if (c->got < cl->msg)
				continue;
			if (memcmp(c->in, c->out, cl->msg))
				cl->differed++;
			else
				cl->verified += cl->msg;
			c->got = 0;
			if (--c->left == 0)
				active--;
			else
				c_send(cl, c);
		}
	}
}

/* One run against the server on @port: requests/s, CPU ns per request,
 * and the seconds of the timed part in *secs. The answer is left in @cl:
 * verified counts the timed part's bytes, differed the whole run's. */
static double echo_once(struct client *cl, uint16_t port, atomic_int *live,
			unsigned per_conn, double *cpu, double *secs)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int64_t t0, t1, c0, deadline;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	cl->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cl->epfd < 0)
		die("epoll_create1", errno);
	for (unsigned i = 0; i < cl->conns; i++) {
		struct c_conn *c = &cl->c[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

		c->id = i;
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			die("socket", errno);
		if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)))
			die("connect", errno);
		set_nodelay(c->fd);
		if (fcntl(c->fd, F_SETFL, O_NONBLOCK) ||
		    epoll_ctl(cl->epfd, EPOLL_CTL_ADD, c->fd, &ev))
			die("fcntl/epoll_ctl", errno);
	}
	/* Every connection accepted and served once before the clock. */
	cl->differed = 0;
	c_exchange(cl, 1);
	cl->verified = 0;
	t0 = bench_now_ns();
	c0 = bench_cpu_ns();
	c_exchange(cl, per_conn);
	t1 = bench_now_ns();
	*cpu = (double)(bench_cpu_ns() - c0) / ((double)per_conn * cl->conns);
	for (unsigned i = 0; i < cl->conns; i++)
		close(cl->c[i].fd);
	close(cl->epfd);
	/* The server has seen every close before the next run starts. */
	deadline = bench_now_ns() + 10 * 1000000000ll;
	while (atomic_load(live)) {
		if (bench_now_ns() > deadline)
			wrong("echo: the server kept connections open for 10 s");
		sleep_us(200);
	}
	bench_sleep_ms(10);
	*secs = (double)(t1 - t0) / 1e9;
	return (double)per_conn * cl->conns / *secs;
}

/* Check one run's answer: every byte of the @per_conn messages on each
 * connection came back as sent, and no reply differed. Keeps the first
 * wrong answer of each variant (else the last) as text. */
static void echo_check(enum evar v, const struct client *cl,
		       unsigned per_conn, const char *run, bool *ok, char *text,
		       size_t tlen)
{
	uint64_t want = (uint64_t)cl->conns * per_conn * cl->msg;
	char got[64], exp[32];
	bool right = cl->verified == want && !cl->differed;

	if (cl->differed)
		snprintf(got, sizeof(got), "%" PRIu64 " (%u replies differed)",
			 cl->verified, cl->differed);
	else
		snprintf(got, sizeof(got), "%" PRIu64, cl->verified);
	snprintf(exp, sizeof(exp), "%" PRIu64, want);
	if (*ok)
		snprintf(text, tlen, "%s", got);
	*ok &= check_answer(evar_name[v], run, right, got, exp);
}

static void section_echo(const struct bench_opts *o, const struct io_opts *io)
{
	struct bench_series rate[NEVARS] = { 0 }, cpu[NEVARS] = { 0 }, ratio;
	struct bench_series secs[NEVARS] = { 0 };
	struct ep_server eps = { 0 };
	struct w_server ws = { 0 };
	struct client cl = { 0 };
	unsigned rounds = io_rounds(o);
	unsigned total = o->quick ? 32000 : 320000, per_conn;
	bool sel[NEVARS], ok[NEVARS];
	char answer[NEVARS][64] = { { 0 } }, size[64];

	for (unsigned v = 0; v < NEVARS; v++) {
		sel[v] = bench_selected(o, evar_name[v]);
		ok[v] = true;
	}
	/* --tiny: 4 connections (unless --conns) x 50 messages. */
	cl.conns = o->tiny && !io->conns_given ? 4 : io->conns;
	cl.msg = io->msg;
	if (o->tiny)
		per_conn = 50;
	else
		per_conn = total / cl.conns ? total / cl.conns : 1;
	cl.c = calloc(cl.conns, sizeof(*cl.c));
	if (!cl.c)
		die("calloc", ENOMEM);
	printf("\n== echo: TCP loopback, %u connections, %u-byte messages, %u per connection per run, %u rounds\n",
	       cl.conns, cl.msg, per_conn, rounds);
	if (sel[E_EPOLL])
		ep_server_start(&eps);
	if (sel[E_WEFT])
		w_server_start(&ws);

	for (unsigned v = 0; v < NEVARS; v++) {
		double c, t;

		if (!sel[v])
			continue;
		if (v == E_EPOLL)
			echo_once(&cl, eps.port, &eps.live, per_conn / 4 + 1, &c, &t);
		else
			echo_once(&cl, ws.port, &ws.live, per_conn / 4 + 1, &c, &t);
		echo_check((enum evar)v, &cl, per_conn / 4 + 1, "warm-up", &ok[v],
			   answer[v], sizeof(answer[v]));
	}
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned j = 0; j < NEVARS; j++) {
			enum evar v = (enum evar)((j + r) % NEVARS);
			double c, x, t;

			if (!sel[v])
				continue;
			if (v == E_EPOLL)
				x = echo_once(&cl, eps.port, &eps.live, per_conn, &c, &t);
			else
				x = echo_once(&cl, ws.port, &ws.live, per_conn, &c, &t);
			echo_check(v, &cl, per_conn, "timed", &ok[v], answer[v],
				   sizeof(answer[v]));
			bench_series_add(&rate[v], x);
			bench_series_add(&cpu[v], c);
			bench_series_add(&secs[v], t);
		}
	}
	if (sel[E_EPOLL])
		ep_server_stop(&eps);
	if (sel[E_WEFT])
		w_server_stop(&ws);

	printf("\n%-28s %10s %14s %9s %14s %10s\n", "variant", "req/s",
	       "min..max (K/s)", "vs epoll", "ratio min..max", "cpu us/req");
	for (unsigned v = 0; v < NEVARS; v++) {
		char range[40], m[16], g[40];

		if (!rate[v].n)
			continue;
		fmt_range(range, sizeof(range), &rate[v], 1e3);
		ratio_of(&rate[v], &rate[E_EPOLL], &ratio);
		if (v == E_EPOLL)
			ratio.n = 0;
		bench_fmt_ratio(&ratio, m, sizeof(m), g, sizeof(g));
		printf("%-28s %8.1f K %14s %9s %14s %10.2f\n", evar_text[v],
		       bench_series_median(&rate[v]) / 1e3, range, m, g,
		       bench_series_median(&cpu[v]) / 1e3);
		bench_csv_series(o, evar_name[v], "req_per_s", &rate[v]);
		bench_csv_series(o, evar_name[v], "vs_epoll", &ratio);
		bench_csv_series(o, evar_name[v], "cpu_ns_per_req", &cpu[v]);
	}
	ratio_of(&rate[E_WEFT], &rate[E_EPOLL], &ratio);
	if (ratio.n) {
		char meas[48];
		double m = bench_series_median(&ratio);

		fmt_measured(meas, sizeof(meas), &ratio, "x");
		bench_target(o, "echo_weft_vs_epoll_ge_1", m, m >= 1,
			     "echo: weft / epoll >= 1x", meas);
	}

	snprintf(size, sizeof(size), "%u conns x %u reqs of %u bytes", cl.conns,
		 per_conn, cl.msg);
	report_row(o, "echo", size, evar_system[E_WEFT], &secs[E_WEFT], NULL,
		   answer[E_WEFT], ok[E_WEFT]);
	report_row(o, "echo", size, evar_system[E_EPOLL], &secs[E_EPOLL],
		   &secs[E_WEFT], answer[E_EPOLL], ok[E_EPOLL]);
	free(cl.c);
}

/* ==== main ================================================================ */

static bool any_selected(const struct bench_opts *o, const char *const *names,
			 unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (bench_selected(o, names[i]))
			return true;
	return false;
}

/*
 * The raw ring baselines need io_uring. Where the kernel refuses it (built
 * without it, kernel.io_uring_disabled, a seccomp filter, a memlock limit
 * too small for the rings of old kernels) there is nothing to compare weft
 * with: exit 77, "cannot run", rather than 1 from the first baseline.
 */
static void need_io_uring(void)
{
	struct io_uring ring;
	int err = ring_init(&ring, 8);

	if (!err) {
		io_uring_queue_exit(&ring);
		return;
	}
	if (err == -ENOSYS || err == -EPERM || err == -EACCES || err == -ENOMEM) {
		printf(NAME ": io_uring is refused here (%s): the raw ring baselines cannot run\n",
		       strerror(-err));
		exit(77);
	}
	die("io_uring_queue_init", err);
}

int main(int argc, char **argv)
{
	struct io_opts io = { .qd = 32, .conns = 32, .msg = 64 };
	struct bench_opts o;
	struct bench_load load;
	struct reads rd = { 0 };
	bool do_reads;
	char **args;
	int nargs;

	args = pre_parse(argc, argv, &io, &nargs);
	bench_parse_args(&o, NAME, nargs, args);
	if (!io.workers_given)
		o.workers = 2;
	pool_workers = o.workers;
	pool_entries = io.qd > 256 ? io.qd : 256;
	/* Every send is MSG_NOSIGNAL; a stray SIGPIPE must not kill a run. */
	signal(SIGPIPE, SIG_IGN);

	do_reads = any_selected(&o, rvar_name, NRVARS);
	printf("bench_io: page-cached reads, nop round trip, TCP echo; %u workers, QD %u%s\n",
	       o.workers, io.qd, o.tiny ? " (tiny)" : o.quick ? " (quick)" : "");
	if (bench_selected(&o, rvar_name[R_RAW]) ||
	    bench_selected(&o, nvar_name[N_RAW_BUSY]) ||
	    bench_selected(&o, nvar_name[N_RAW_IDLE]))
		need_io_uring();
	if (do_reads)
		reads_prepare(&rd, &o, &io);
	bench_load_begin(&load);
	if (do_reads)
		section_reads(&o, &rd);
	if (any_selected(&o, nvar_name, NNVARS))
		section_nop(&o);
	if (any_selected(&o, evar_name, NEVARS))
		section_echo(&o, &io);
	printf("\n");
	bench_load_end(&o, &load);
	if (fio_cpu_ns)
		printf("the fio child processes account for %.2f CPUs of that\n",
		       (double)fio_cpu_ns / (double)(bench_now_ns() - load.wall_ns));
	if (the_pool)
		weft_pool_destroy(the_pool);
	if (any_wrong) {
		fprintf(stderr, NAME ": some answers were wrong (above)\n");
		return 1;
	}
	return 0;
}
