/*
 * helpers.h - shared fixtures for the weft unit tests: gates that tasks
 * block on until the test releases them, a blocking task that reports when
 * it has started, and bounded polling so that a broken implementation makes
 * a test fail instead of hang.
 *
 * Criterion's assertions are only used on the test's own thread: tasks
 * record what they saw in their argument struct, and the test asserts on it
 * after waiting.
 */
#ifndef WEFT_TEST_HELPERS_H
#define WEFT_TEST_HELPERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft.h>

/* How long a helper waits before giving up and letting the test fail. */
#define HELPER_PATIENCE_NS (10LL * 1000 * 1000 * 1000)

/* A one-shot latch: closed until gate_open(), then open for good. */
struct gate {
	pthread_mutex_t mu; /* protects open */
	pthread_cond_t cv;
	bool open;
};

void gate_init(struct gate *g);
void gate_fini(struct gate *g);
void gate_open(struct gate *g);
/* Blocks until the gate opens (true) or HELPER_PATIENCE_NS passed (false). */
bool gate_wait(struct gate *g);

/*
 * blocker_task(): sets started, waits on gate, sets finished, then returns
 * err (with *result = value when err is 0).
 */
struct blocker {
	struct gate *gate;
	void *value;
	int err;
	atomic_int started;
	atomic_int finished;
	atomic_int gate_ok; /* 1 when the gate opened in time */
};

void blocker_init(struct blocker *b, struct gate *g, void *value, int err);
int blocker_task(void *arg, void **result);
/* Polls until b->started is set; false after HELPER_PATIENCE_NS. */
bool blocker_wait_started(struct blocker *b);

/* Polls until weft_future_state(f) == state; false on timeout. */
bool wait_state(const struct weft_future *f, int state);
/* Polls until *v == want; false on timeout. */
bool wait_int(atomic_int *v, int want);

/* *result = arg. */
int value_task(void *arg, void **result);
/* Returns (int)(intptr_t)arg. */
int fail_task(void *arg, void **result);
/* atomic_fetch_add((atomic_int *)arg, 1). */
int count_task(void *arg, void **result);

void sleep_ms(unsigned ms);

/* Creates a pool of @workers (0: the default); NULL on failure. */
struct weft_pool *pool_new(unsigned workers);

/* Opens @g from a helper thread after @ms milliseconds; join with
 * delayed_open_join(). Used while the test thread is blocked in a call. */
struct delayed_open {
	pthread_t thread;
	struct gate *gate;
	unsigned ms;
};
int delayed_open_start(struct delayed_open *d, struct gate *g, unsigned ms);
void delayed_open_join(struct delayed_open *d);

/*
 * Run @fn in a forked child whose stderr is a pipe (for death tests that
 * check a message): store what it printed, NUL-terminated and cut to @len,
 * in @out, and its wait status in *@status. A child whose @fn returns exits
 * with 99. Asserts (Criterion) on the test's thread.
 */
void run_child(void (*fn)(void), char *out, size_t len, int *status);

#endif /* WEFT_TEST_HELPERS_H */
