/*
 * stress.h - the harness shared by weft's concurrency stress programs.
 *
 * Each stress program is a plain main() (Criterion cannot run under
 * ThreadSanitizer) that exits 0 on pass, 1 on failure and 77 to skip. This
 * harness gives them:
 *
 *  - options: --scale=PCT (or WEFT_STRESS_SCALE; default the meson option
 *    stress_scale, passed as WEFT_STRESS_SCALE_DEFAULT), --watchdog=SEC (or
 *    WEFT_STRESS_WATCHDOG; default 20), --seed=N (or WEFT_STRESS_SEED;
 *    default from the clock, always printed so a run can be repeated);
 *  - a watchdog thread that fails the run, after printing what every
 *    registered thread was doing, when the global progress counter has not
 *    moved for the watchdog period;
 *  - per-id records (ran / completed / outcome / flags) with the checks
 *    every future must pass: completes exactly once, a cancelled task never
 *    ran, a task that ran never completes as cancelled;
 *  - a small PRNG, spin helpers and thread starters for pthreads and C11
 *    threads;
 *  - a table of futures shared between threads (each slot under its own
 *    mutex).
 *
 * Which threads touch what: the records and counters are atomics touched by
 * any thread; the options are written once by stress_init() before any
 * thread starts.
 */
#ifndef WEFT_STRESS_H
#define WEFT_STRESS_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft.h>

#ifndef WEFT_STRESS_SCALE_DEFAULT
#define WEFT_STRESS_SCALE_DEFAULT 100
#endif

#define STRESS_PASS 0
#define STRESS_FAIL 1
#define STRESS_SKIP 77

struct stress_opts {
	unsigned scale;      /* percent of the full sizes */
	unsigned watchdog_s; /* seconds without progress that fail the run */
	uint64_t seed;
	bool verbose;
};

extern struct stress_opts stress_opt;

/*
 * stress_init() - parse the options, print the run's parameters, start the
 * watchdog. @argv[0] names the program in messages. Exits with 1 on a bad
 * option.
 */
void stress_init(int argc, char **argv, const char *name);

/*
 * stress_finish() - stop the watchdog, print the summary and return the
 * exit code (0 or 1) for main().
 */
int stress_finish(void);

/* stress_skip() - print why and exit 77. */
_Noreturn void stress_skip(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* full * scale / 100, never less than @min. */
uint64_t stress_scaled(uint64_t full, uint64_t min);

/* Name the current phase: printed by the watchdog and in failures. */
void stress_phase(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print a line when --verbose. */
void stress_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Record a failure (printed, up to a limit); the run will exit 1. */
void stress_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool stress_failed(void);

/* Fail with the location and the condition when @cond is false; the
 * arguments after it are a printf format and its values. */
#define STRESS_CHECK(cond, ...)                                              \
	do {                                                                 \
		if (!(cond))                                                 \
			stress_check_fail(__FILE__, __LINE__, #cond,         \
					  __VA_ARGS__);                      \
	} while (0)
void stress_check_fail(const char *file, int line, const char *cond,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* An extra dump the watchdog calls before it fails the run. */
void stress_set_dump(void (*fn)(int fd));
/* printf to a file descriptor without stdio locks (watchdog-safe). */
void stress_dprintf(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- progress and counters ---------------------------------------------- */

extern _Atomic uint64_t stress_progress_ctr;
extern _Atomic uint64_t stress_tasks_ctr; /* task bodies run */

static inline void stress_progress(void)
{
	/* relaxed: a counter the watchdog only compares with itself */
	atomic_fetch_add_explicit(&stress_progress_ctr, 1, memory_order_relaxed);
}

static inline void stress_count_task(void)
{
	atomic_fetch_add_explicit(&stress_tasks_ctr, 1, memory_order_relaxed);
	stress_progress();
}

/* ---- thread slots: what each thread is doing, for the watchdog ---------- */

#define STRESS_MAX_SLOTS 64

/* Register the calling thread under @name (threads started by
 * stress_threads_start() are registered already); released at
 * stress_slot_release() or when such a thread returns. */
void stress_slot_register(const char *name, unsigned index);
void stress_slot_release(void);
/* Say what the calling thread is doing now (@what: a string literal). */
void stress_where(const char *what, uint64_t arg);

/* ---- threads ------------------------------------------------------------ */

/*
 * Start @fn(@arg, index) on @n threads; even indices are pthreads and odd
 * ones are C11 threads (thrd_create), so that both kinds submit. Returns a
 * handle for stress_threads_join().
 */
typedef void (*stress_thread_fn)(void *arg, unsigned index);
struct stress_threads;
struct stress_threads *stress_threads_start(unsigned n, stress_thread_fn fn,
					    void *arg, const char *name);
void stress_threads_join(struct stress_threads *t);

/* ---- randomness and time ------------------------------------------------ */

static inline uint64_t stress_mix(uint64_t x)
{
	/* splitmix64's finaliser */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t stress_rand(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	uint64_t x = *state;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* uniform in [0, n) (n > 0) */
static inline uint64_t stress_below(uint64_t *state, uint64_t n)
{
	return stress_rand(state) % n;
}

/* A per-thread stream derived from the run's seed. */
static inline uint64_t stress_stream(uint64_t salt)
{
	return stress_mix(stress_opt.seed ^ stress_mix(salt));
}

/* Busy-wait @ns nanoseconds (on weft_now()). */
void stress_spin_ns(int64_t ns);
/* Sleep @ns nanoseconds. */
void stress_sleep_ns(int64_t ns);
/* Seconds since stress_init(). */
double stress_elapsed(void);

/* ---- per-id records ----------------------------------------------------- */

/* flags of a record */
enum {
	REC_SUBMITTED = 1u << 0,   /* submit returned 0 */
	REC_SHUTDOWN = 1u << 1,    /* submit returned -ESHUTDOWN */
	REC_CANCEL_OK = 1u << 2,   /* a cancel returned 0 */
	REC_CANCEL_BUSY = 1u << 3, /* a cancel returned -EBUSY */
	REC_SAW_CANCEL = 1u << 4,  /* the task saw weft_task_cancelled() */
	REC_WATCHED = 1u << 5,     /* an on_complete callback is registered */
	REC_NO_TASK = 1u << 6,     /* a future that no task completes */
	REC_CHECKED = 1u << 7,     /* a check ran at completion */
};

struct stress_rec {
	_Atomic uint8_t ran;         /* task body starts */
	_Atomic uint8_t completions; /* on_complete callbacks */
	_Atomic uint8_t state;       /* weft_future_state() seen at completion */
	_Atomic uint8_t flags;
	_Atomic int32_t err;         /* weft_future_error() seen at completion */
};

struct stress_track {
	struct stress_rec *rec;
	size_t cap;
	_Atomic size_t next;
};

/* Allocate @cap records (exits 1 when out of memory). */
void stress_track_init(struct stress_track *t, size_t cap);
void stress_track_fini(struct stress_track *t);
/* Clear every record; no thread may touch them during the call. */
void stress_track_reset(struct stress_track *t);
/* Take @n consecutive fresh ids; fails the run (and returns 0) when the
 * capacity is exhausted. */
size_t stress_track_alloc(struct stress_track *t, size_t n);

static inline void stress_flag(struct stress_track *t, size_t id, unsigned f)
{
	atomic_fetch_or_explicit(&t->rec[id].flags, (uint8_t)f,
				 memory_order_relaxed);
}

static inline unsigned stress_flags(struct stress_track *t, size_t id)
{
	return atomic_load_explicit(&t->rec[id].flags, memory_order_relaxed);
}

/*
 * stress_task_start() - a task body calls this first: counts the start,
 * fails the run if the id had started before, or if its record says it was
 * cancelled (a cancel had returned 0).
 */
void stress_task_start(struct stress_track *t, size_t id);

/*
 * stress_complete() - the common part of an on_complete callback for id
 * @id: completes exactly once; the future is complete and its state and
 * error agree; a CANCELLED future's task never started; a DONE/FAILED
 * future with a task (not REC_NO_TASK) has started. Returns the state.
 */
int stress_complete(struct stress_track *t, size_t id, struct weft_future *f);

/*
 * stress_watch() - register stress_complete() as @f's on_complete callback
 * for @id (sets REC_WATCHED). The callback uses the tracker registered with
 * stress_track_default().
 */
void stress_track_default(struct stress_track *t);
void stress_watch(struct weft_future *f, size_t id);

/*
 * stress_cancel() - weft_future_cancel() on @f for @id, recording the
 * result in the record, and checking it is one of 0, -EBUSY, -EALREADY.
 */
int stress_cancel(struct stress_track *t, size_t id, struct weft_future *f);

/*
 * Tracked batches: what an outside thread of a mixed phase does (stress_io,
 * stress_blocking). It submits b->tasks tasks of b->fn to b->pool in
 * batches of b->batch (at most STRESS_BATCH_MAX), each with a struct
 * stress_task_arg (a fresh id of b->t, a seed from b->rng), recorded and
 * watched; cancels 1 in 16 at once; between submitting and waiting, runs
 * the thread's own op (b->own_op(b->ctx)) every tasks / ops submissions and
 * cancels 1 in b->late_cancel again (those tasks are in their waits by
 * then); then waits for each and checks its end: DONE with
 * stress_plan_value(id), or CANCELLED, or (b->failed_cancel) FAILED with
 * -ECANCELED, what a task returns when a wait it was in was cancelled.
 * Each cancel adds 1 to *b->cancels.
 */
#define STRESS_BATCH_MAX 64

struct stress_task_arg {
	size_t id;
	uint64_t seed;
};

struct stress_batches {
	struct weft_pool *pool;
	struct stress_track *t;
	weft_task_fn fn;
	size_t batch, tasks, ops;
	void (*own_op)(void *ctx);
	void *ctx;
	uint64_t *rng;
	unsigned late_cancel;
	bool failed_cancel;
	_Atomic uint64_t *cancels;
};

void stress_run_batches(const struct stress_batches *b);

/*
 * stress_verify() - the end-of-run check of ids [@lo, @hi): every id with
 * REC_WATCHED completed exactly once; a cancel that returned 0 means it
 * never ran and is CANCELLED; -EBUSY means it ran and is not CANCELLED; a
 * task that saw weft_task_cancelled() was cancelled while running (unless
 * @shutdown_cancel); every id with REC_SUBMITTED and @must_run ran once.
 * Returns the number of problems found.
 */
size_t stress_verify(struct stress_track *t, size_t lo, size_t hi,
		     bool must_run, bool shutdown_cancel);

/* Error codes tasks fail with on purpose (never -ECANCELED/-ESHUTDOWN). */
static inline int stress_plan_err(uint64_t id, unsigned one_in)
{
	static const int codes[] = {-EIO, -ENOENT, -EPIPE, -ERANGE};
	uint64_t h = stress_mix(id ^ 0x5eed);
	if (one_in == 0 || h % one_in != 0)
		return 0;
	return codes[(h >> 32) % 4];
}

static inline void *stress_plan_value(uint64_t id)
{
	return (void *)(uintptr_t)(id * 2 + 1);
}

/* Create a pool with @workers workers named @name; skips (77) when the
 * system refuses threads, fails on other errors. */
struct weft_pool *stress_pool(unsigned workers, const char *name);

/* ---- a shared table of futures ------------------------------------------ */

/*
 * A fixed table of slots through which threads hand futures to threads that
 * did not create them: producers publish the futures they submit, and
 * cancellers and waiters pick one from a random slot. Each slot has its own
 * mutex, which protects its future pointer and id; the pointer holds one
 * reference, so a future stays alive while the table holds it. There is one
 * table per program.
 */
#define STRESS_TABLE_MAX 64

/*
 * stress_table_init() - set up the table with @nslots slots (1 to
 * STRESS_TABLE_MAX; fewer slots hold more recent futures). Call once, on
 * main, before any other thread uses the table. Every @k below is taken
 * modulo @nslots, so callers may pass any random number.
 */
void stress_table_init(unsigned nslots);

/* stress_table_put() - store @f (the table takes its own reference) and its
 * id @id in slot @k; drops the reference to the future it replaces. Any
 * thread. */
void stress_table_put(unsigned k, struct weft_future *f, size_t id);

/* stress_table_get() - a new reference to the future in slot @k, and its id
 * in *@id; NULL (and *@id unspecified) when the slot is empty. The caller
 * unrefs it. Any thread. */
struct weft_future *stress_table_get(unsigned k, size_t *id);

/* stress_table_clear() - empty every slot, dropping the table's
 * references. Any thread, but meant for when no other thread uses the
 * table any more (between phases, at the end). */
void stress_table_clear(void);

#endif /* WEFT_STRESS_H */
