/*
 * helpers.c - see helpers.h.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void gate_init(struct gate *g)
{
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->open = false;
}

void gate_fini(struct gate *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}

void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

bool gate_wait(struct gate *g)
{
	struct timespec ts;
	bool open;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += HELPER_PATIENCE_NS / 1000000000LL;
	pthread_mutex_lock(&g->mu);
	while (!g->open) {
		if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) == ETIMEDOUT)
			break;
	}
	open = g->open;
	pthread_mutex_unlock(&g->mu);
	return open;
}

void blocker_init(struct blocker *b, struct gate *g, void *value, int err)
{
	b->gate = g;
	b->value = value;
	b->err = err;
	atomic_init(&b->started, 0);
	atomic_init(&b->finished, 0);
	atomic_init(&b->gate_ok, 0);
}

int blocker_task(void *arg, void **result)
{
	struct blocker *b = arg;

	atomic_store(&b->started, 1);
	atomic_store(&b->gate_ok, gate_wait(b->gate) ? 1 : 0);
	atomic_store(&b->finished, 1);
	if (b->err)
		return b->err;
	*result = b->value;
	return 0;
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void nap(void)
{
	struct timespec ts = { 0, 50 * 1000 };

	nanosleep(&ts, NULL);
}

bool wait_int(atomic_int *v, int want)
{
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;

	while (atomic_load(v) != want) {
		if (weft_now() > give_up)
			return false;
		nap();
	}
	return true;
}

bool blocker_wait_started(struct blocker *b)
{
	return wait_int(&b->started, 1);
}

bool wait_state(const struct weft_future *f, int state)
{
	int64_t give_up = weft_now() + HELPER_PATIENCE_NS;

	while (weft_future_state(f) != state) {
		if (weft_now() > give_up)
			return false;
		nap();
	}
	return true;
}

int value_task(void *arg, void **result)
{
	*result = arg;
	return 0;
}

int fail_task(void *arg, void **result)
{
	(void)result;
	return (int)(intptr_t)arg;
}

int count_task(void *arg, void **result)
{
	(void)result;
	atomic_fetch_add((atomic_int *)arg, 1);
	return 0;
}

struct weft_pool *pool_new(unsigned workers)
{
	struct weft_pool_options opts;
	struct weft_pool *pool = NULL;

	weft_pool_options_init(&opts);
	opts.workers = workers;
	if (weft_pool_create(&opts, &pool) != 0)
		return NULL;
	return pool;
}

static void *delayed_open_main(void *arg)
{
	struct delayed_open *d = arg;

	sleep_ms(d->ms);
	gate_open(d->gate);
	return NULL;
}

int delayed_open_start(struct delayed_open *d, struct gate *g, unsigned ms)
{
	d->gate = g;
	d->ms = ms;
	return pthread_create(&d->thread, NULL, delayed_open_main, d);
}

void delayed_open_join(struct delayed_open *d)
{
	pthread_join(d->thread, NULL);
}

void run_child(void (*fn)(void), char *out, size_t len, int *status)
{
	size_t got = 0;
	int fds[2];
	ssize_t n;
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		close(fds[1]);
		fn();
		_exit(99);
	}
	close(fds[1]);
	while (got + 1 < len &&
	       (n = read(fds[0], out + got, len - 1 - got)) != 0) {
		if (n < 0) {
			cr_assert_eq(errno, EINTR);
			continue;
		}
		got += (size_t)n;
	}
	out[got] = '\0';
	close(fds[0]);
	cr_assert_eq(waitpid(pid, status, 0), pid);
}
