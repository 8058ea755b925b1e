/*
 * stress_sync.c - weft/sync.h under contention: tasks (which suspend) and
 * outside threads (which block) hammer a mutex with its condition
 * variable, a semaphore, channels, events and wait groups, with random
 * deadlines, while a canceller thread cancels running tasks.
 *
 * Phases, each on a fresh pool:
 *
 *   mutex   4 driver threads submit batches of tasks and run the same
 *           operations themselves, on 2 or 3 workers. Operations: a
 *           transfer between bank accounts under the mutex (lock, lock
 *           with a random deadline, or trylock; sometimes suspending while
 *           holding it), and a ticket queue on the condition variable
 *           (producers add tickets and signal or broadcast; consumers take
 *           one, waiting with cond_wait_until). Checks: one holder at a
 *           time; the accounts' sum never changes; a plain counter bumped
 *           under the lock equals the number of critical sections;
 *           tickets produced = consumed + left; cond waits return holding
 *           the mutex, whatever their result (its unlock succeeds; debug
 *           builds check the owner).
 *   sem     the same drivers on a semaphore of K permits: acquire, with a
 *           random deadline, or try; sometimes two at once (the second
 *           with a deadline) released together. Checks: never more than K
 *           holders; K permits free at the end.
 *   chan    channels of capacity 0, 1 and 8: producer tasks and threads
 *           send numbered items (send, send_until with a random deadline,
 *           try_send); consumer tasks and threads receive (recv,
 *           recv_until, try_recv) until the channel closes, after which
 *           the test drains it. Checks: every item whose send returned 0
 *           is received exactly once, every other item never; each
 *           consumer sees each producer's items in the order they were
 *           sent.
 *   event   rounds: waiter tasks and threads count themselves into a wait
 *           group, wait on a manual-reset event with a deadline (and wait
 *           again after a timeout), and leave the group; the round's
 *           driver sets the event at a random moment and waits for the
 *           group, with deadlines, then finalises both (on its stack:
 *           nobody may touch them once the group is seen at zero). Then
 *           an auto-reset event between waiters that each need one pass
 *           and a driver that sets it until all have passed: never more
 *           passes than sets.
 *
 * Cancels: a canceller thread picks tasks from the shared table and
 * cancels them while they run; a task whose wait returns -ECANCELED stops
 * and returns -ECANCELED. The per-id records check that only cancelled
 * tasks see it and that each completes once.
 *
 * Counters are exact: every check above is an equality at the end of the
 * phase, except "never more passes than sets".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/sync.h>

#include "stress.h"

#define US 1000LL

static struct stress_track tr;
static struct weft_pool *pool;

/* ---- the canceller ------------------------------------------------------ */

static _Atomic bool cancel_stop;
static _Atomic uint64_t n_cancels;

static void canceller(void *arg, unsigned index)
{
	uint64_t rng = stress_stream(9000 + index);

	(void)arg;
	while (!atomic_load(&cancel_stop)) {
		size_t id;
		struct weft_future *f =
			stress_table_get((unsigned)stress_rand(&rng), &id);

		if (f) {
			stress_where("cancel", id);
			if (stress_cancel(&tr, id, f) == -EBUSY)
				atomic_fetch_add(&n_cancels, 1);
			weft_future_unref(f);
		}
		stress_sleep_ns(20 * US +
				(int64_t)stress_below(&rng, 200) * US);
	}
}

static struct stress_threads *cancellers_start(void)
{
	atomic_store(&cancel_stop, false);
	return stress_threads_start(1, canceller, NULL, "canceller");
}

static void cancellers_stop(struct stress_threads *t)
{
	atomic_store(&cancel_stop, true);
	stress_threads_join(t);
}

/* A deadline for a timed wait: past, tiny, or up to @max_us ahead. */
static int64_t some_deadline(uint64_t *rng, unsigned max_us)
{
	switch (stress_below(rng, 8)) {
	case 0:
		return weft_now() - 1;
	case 1:
		return weft_now() + (int64_t)stress_below(rng, 5) * US;
	default:
		return weft_now() + (int64_t)stress_below(rng, max_us) * US;
	}
}

/* Sometimes let others run (in a task: suspend) at a risky moment. */
static int maybe_pause(uint64_t *rng)
{
	switch (stress_below(rng, 16)) {
	case 0:
		return weft_yield();
	case 1:
		return weft_sleep((int64_t)stress_below(rng, 20) * US);
	default:
		return 0;
	}
}

/* ---- jobs: the same operations as tasks and on driver threads ---------- */

typedef int (*op_fn)(uint64_t *rng);

struct job {
	size_t id;
	uint64_t seed;
	op_fn op;
	unsigned nops;
};

static struct job *jobs;

static int job_task(void *arg, void **result)
{
	struct job *j = arg;
	uint64_t rng = j->seed;

	stress_task_start(&tr, j->id);
	for (unsigned k = 0; k < j->nops; k++) {
		int r = j->op(&rng);

		stress_progress();
		if (r == -ECANCELED) {
			stress_flag(&tr, j->id, REC_SAW_CANCEL);
			return -ECANCELED;
		}
	}
	*result = stress_plan_value(j->id);
	return 0;
}

struct drive {
	op_fn op;
	size_t rounds;	  /* per driver */
	unsigned batch;	  /* tasks per round */
	unsigned nops;	  /* operations per task */
	unsigned own_ops; /* operations the driver thread runs per round */
};

static void driver(void *arg, unsigned index)
{
	struct drive *d = arg;
	uint64_t rng = stress_stream(100 + index);
	struct weft_future *fs[16];

	for (size_t round = 0; round < d->rounds; round++) {
		size_t base = stress_track_alloc(&tr, d->batch);

		for (unsigned i = 0; i < d->batch; i++) {
			struct job *j = &jobs[base + i];

			*j = (struct job){.id = base + i,
					  .seed = stress_rand(&rng),
					  .op = d->op,
					  .nops = d->nops};
			int rc = weft_submit(pool, job_task, j, &fs[i]);
			STRESS_CHECK(rc == 0, "submit = %d", rc);
			if (rc) {
				fs[i] = NULL;
				continue;
			}
			stress_flag(&tr, j->id, REC_SUBMITTED);
			stress_watch(fs[i], j->id);
			stress_table_put((unsigned)stress_rand(&rng), fs[i],
					 j->id);
		}
		stress_where("driver ops", round);
		for (unsigned k = 0; k < d->own_ops; k++) {
			int r = d->op(&rng);

			STRESS_CHECK(r != -ECANCELED,
				     "a thread's wait returned -ECANCELED");
			stress_progress();
		}
		stress_where("driver waits", round);
		for (unsigned i = 0; i < d->batch; i++) {
			if (!fs[i])
				continue;
			STRESS_CHECK(weft_future_wait(fs[i]) == 0, "wait");
			weft_future_unref(fs[i]);
		}
	}
	stress_where("done", 0);
}

static void run_drivers(const char *name, struct drive *d, unsigned workers)
{
	struct stress_threads *c, *t;

	stress_track_reset(&tr);
	stress_phase("%s: %u workers, 4 drivers x %zu rounds x %u tasks x %u "
		     "ops",
		     name, workers, d->rounds, d->batch, d->nops);
	pool = stress_pool(workers, name);
	c = cancellers_start();
	t = stress_threads_start(4, driver, d, name);
	stress_threads_join(t);
	cancellers_stop(c);
	STRESS_CHECK(weft_pool_shutdown(pool, 0, WEFT_FOREVER) == 0,
		     "shutdown");
	stress_table_clear();
	weft_pool_destroy(pool);
	pool = NULL;
	stress_verify(&tr, 0, atomic_load(&tr.next), false, false);
}

/* ---- phase: mutex and condition variable -------------------------------- */

#define ACCOUNTS 8
#define ACCOUNT_START 1000

static struct {
	struct weft_mutex m;
	struct weft_cond c;
	long acct[ACCOUNTS]; /* under m */
	long sections;	     /* under m: critical sections entered */
	long tickets;	     /* under m */
	_Atomic int inside;  /* holders right now: must be 0 or 1 */
	_Atomic long sections_ok, produced, consumed;
	_Atomic long timeouts, busy, cond_timeouts;
} mx;

/* The critical section: one holder, the sum kept, a plain counter. */
static int mutex_section(uint64_t *rng)
{
	int in = atomic_fetch_add(&mx.inside, 1);
	long sum = 0;
	int r;

	STRESS_CHECK(in == 0, "%d other holders inside the mutex", in);
	for (int i = 0; i < ACCOUNTS; i++)
		sum += mx.acct[i];
	STRESS_CHECK(sum == ACCOUNTS * ACCOUNT_START,
		     "accounts sum to %ld under the mutex", sum);
	unsigned a = (unsigned)stress_below(rng, ACCOUNTS);
	unsigned b = (unsigned)stress_below(rng, ACCOUNTS);
	long amount = (long)stress_below(rng, 50);
	mx.acct[a] -= amount;
	r = maybe_pause(rng); /* suspended while holding it */
	mx.acct[b] += amount;
	mx.sections++;
	atomic_fetch_sub(&mx.inside, 1);
	return r;
}

static int op_mutex(uint64_t *rng)
{
	int r, r2;

	switch (stress_below(rng, 4)) {
	case 0:
		r = weft_mutex_lock_until(&mx.m, some_deadline(rng, 300));
		break;
	case 1:
		r = weft_mutex_trylock(&mx.m);
		break;
	default:
		r = weft_mutex_lock(&mx.m);
		break;
	}
	if (r == -ETIMEDOUT || r == -EBUSY) {
		atomic_fetch_add(r == -EBUSY ? &mx.busy : &mx.timeouts, 1);
		return 0;
	}
	if (r)
		goto out;
	r = mutex_section(rng);
	r2 = weft_mutex_unlock(&mx.m);
	STRESS_CHECK(r2 == 0, "unlock = %d", r2);
	atomic_fetch_add(&mx.sections_ok, 1);
out:
	STRESS_CHECK(r == 0 || r == -ECANCELED, "mutex op = %d", r);
	return r;
}

static int op_produce(uint64_t *rng)
{
	long n = 1 + (long)stress_below(rng, 2);
	int r = weft_mutex_lock(&mx.m);

	if (r)
		return r;
	mx.tickets += n;
	mx.sections++;
	atomic_fetch_add(&mx.produced, n);
	if (stress_below(rng, 2))
		weft_cond_broadcast(&mx.c);
	else
		for (long i = 0; i < n; i++)
			weft_cond_signal(&mx.c);
	r = weft_mutex_unlock(&mx.m);
	STRESS_CHECK(r == 0, "unlock = %d", r);
	atomic_fetch_add(&mx.sections_ok, 1);
	return 0;
}

static int op_consume(uint64_t *rng)
{
	int r = weft_mutex_lock(&mx.m), r2;

	if (r)
		return r;
	while (mx.tickets == 0) {
		int64_t dl = some_deadline(rng, 500);

		r = weft_cond_wait_until(&mx.c, &mx.m, dl);
		STRESS_CHECK(r == 0 || r == -ETIMEDOUT || r == -ECANCELED,
			     "cond wait = %d", r);
		if (r == -ETIMEDOUT) {
			STRESS_CHECK(weft_now() >= dl,
				     "cond wait timed out early");
			atomic_fetch_add(&mx.cond_timeouts, 1);
		}
		if (r)
			break; /* the mutex is held again all the same */
	}
	if (r == 0) {
		mx.tickets--;
		atomic_fetch_add(&mx.consumed, 1);
	}
	mx.sections++;
	r2 = weft_mutex_unlock(&mx.m);
	STRESS_CHECK(r2 == 0, "unlock after cond wait (%d) = %d", r, r2);
	atomic_fetch_add(&mx.sections_ok, 1);
	return r == -ETIMEDOUT ? 0 : r;
}

/* Consumers outnumber the tickets, so that they wait on the cond. */
static int op_mutex_mix(uint64_t *rng)
{
	switch (stress_below(rng, 6)) {
	case 0:
		return op_produce(rng);
	case 1:
	case 2:
		return op_consume(rng);
	default:
		return op_mutex(rng);
	}
}

static void phase_mutex(size_t rounds, unsigned workers)
{
	struct drive d = {.op = op_mutex_mix, .rounds = rounds, .batch = 8,
			  .nops = 40, .own_ops = 60};
	long sum = 0;

	memset(&mx, 0, sizeof(mx));
	weft_mutex_init(&mx.m);
	weft_cond_init(&mx.c);
	for (int i = 0; i < ACCOUNTS; i++)
		mx.acct[i] = ACCOUNT_START;
	run_drivers("mutex", &d, workers);
	for (int i = 0; i < ACCOUNTS; i++)
		sum += mx.acct[i];
	STRESS_CHECK(sum == ACCOUNTS * ACCOUNT_START, "accounts sum to %ld",
		     sum);
	STRESS_CHECK(mx.sections == atomic_load(&mx.sections_ok),
		     "%ld critical sections counted under the lock, %ld "
		     "completed",
		     mx.sections, atomic_load(&mx.sections_ok));
	STRESS_CHECK(atomic_load(&mx.produced) ==
			     atomic_load(&mx.consumed) + mx.tickets,
		     "tickets: %ld produced, %ld consumed, %ld left",
		     atomic_load(&mx.produced), atomic_load(&mx.consumed),
		     mx.tickets);
	STRESS_CHECK(weft_mutex_trylock(&mx.m) == 0, "mutex left held");
	weft_mutex_unlock(&mx.m);
	STRESS_CHECK(weft_mutex_fini(&mx.m) == 0, "mutex fini");
	STRESS_CHECK(weft_cond_fini(&mx.c) == 0, "cond fini");
	printf("stress_sync: mutex: %ld sections, %ld timeouts, %ld busy, "
	       "%ld tickets, %ld cond timeouts\n",
	       mx.sections, atomic_load(&mx.timeouts), atomic_load(&mx.busy),
	       atomic_load(&mx.produced), atomic_load(&mx.cond_timeouts));
}

/* ---- phase: semaphore --------------------------------------------------- */

#define SEM_PERMITS 3

static struct {
	struct weft_sem s;
	_Atomic int holders;
	_Atomic long acquired, timeouts;
} sm;

static int hold(uint64_t *rng, int n)
{
	int h = atomic_fetch_add(&sm.holders, n) + n;

	STRESS_CHECK(h <= SEM_PERMITS, "%d permits held of %d", h,
		     SEM_PERMITS);
	atomic_fetch_add(&sm.acquired, n);
	int r = maybe_pause(rng);
	atomic_fetch_sub(&sm.holders, n);
	int r2 = weft_sem_release(&sm.s, (unsigned)n);
	STRESS_CHECK(r2 == 0, "release = %d", r2);
	return r;
}

static int op_sem(uint64_t *rng)
{
	int r;

	switch (stress_below(rng, 5)) {
	case 0:
		r = weft_sem_acquire_until(&sm.s, some_deadline(rng, 300));
		break;
	case 1:
		r = weft_sem_try_acquire(&sm.s);
		break;
	case 2:
		/* Two: the second only with a deadline, so that holders of
		 * one never wait on each other forever. */
		r = weft_sem_acquire(&sm.s);
		if (r)
			break;
		r = weft_sem_acquire_until(&sm.s, some_deadline(rng, 200));
		if (r == 0)
			return hold(rng, 2);
		STRESS_CHECK(weft_sem_release(&sm.s, 1) == 0, "release");
		break;
	default:
		r = weft_sem_acquire(&sm.s);
		break;
	}
	if (r == 0)
		return hold(rng, 1);
	if (r == -ETIMEDOUT || r == -EAGAIN) {
		atomic_fetch_add(&sm.timeouts, 1);
		return 0;
	}
	STRESS_CHECK(r == -ECANCELED, "sem op = %d", r);
	return r;
}

static void phase_sem(size_t rounds, unsigned workers)
{
	struct drive d = {.op = op_sem, .rounds = rounds, .batch = 8,
			  .nops = 40, .own_ops = 60};

	memset(&sm, 0, sizeof(sm));
	weft_sem_init(&sm.s, SEM_PERMITS);
	run_drivers("sem", &d, workers);
	STRESS_CHECK(weft_sem_value(&sm.s) == SEM_PERMITS,
		     "%d permits free at the end, want %d",
		     weft_sem_value(&sm.s), SEM_PERMITS);
	STRESS_CHECK(weft_sem_fini(&sm.s) == 0, "sem fini");
	printf("stress_sync: sem: %ld permits taken, %ld timeouts\n",
	       atomic_load(&sm.acquired), atomic_load(&sm.timeouts));
}

/* ---- phase: channel ----------------------------------------------------- */

#define CH_PRODUCERS 12 /* 0-3 threads, 4-11 tasks */
#define CH_THREAD_PRODUCERS 4
#define CH_CONSUMERS 9 /* 0-2 threads, 3-8 tasks */
#define CH_THREAD_CONSUMERS 3

static struct {
	struct weft_chan *ch;
	size_t per; /* items per producer */
	_Atomic uint8_t *sent, *got; /* [producer * per + seq] */
	_Atomic long timeouts;
} cs;

static void *item_of(unsigned p, size_t seq)
{
	return (void *)(uintptr_t)((((uint64_t)p << 32) | seq) + 1);
}

/* Record a received item; @last: this consumer's last seq per producer. */
static void got_item(void *v, long *last)
{
	uint64_t x = (uint64_t)(uintptr_t)v - 1;
	unsigned p = (unsigned)(x >> 32);
	size_t seq = (size_t)(x & 0xffffffffu);

	if (p >= CH_PRODUCERS || seq >= cs.per) {
		stress_fail("chan: received a bad item %p", v);
		return;
	}
	STRESS_CHECK((long)seq > last[p],
		     "chan: producer %u's item %zu after its item %ld", p, seq,
		     last[p]);
	last[p] = (long)seq;
	uint8_t prev = atomic_fetch_add(&cs.got[p * cs.per + seq], 1);
	STRESS_CHECK(prev == 0, "chan: item %u/%zu received twice", p, seq);
}

/* Send producer @p's items; -ECANCELED when its task was cancelled. */
static int produce(unsigned p, uint64_t *rng)
{
	for (size_t i = 0; i < cs.per; i++) {
		void *item = item_of(p, i);
		int r;

		switch (stress_below(rng, 4)) {
		case 0:
			r = weft_chan_send_until(cs.ch, item,
						 some_deadline(rng, 200));
			break;
		case 1:
			r = weft_chan_try_send(cs.ch, item);
			break;
		default:
			r = weft_chan_send(cs.ch, item);
			break;
		}
		stress_progress();
		if (r == 0) {
			atomic_store(&cs.sent[p * cs.per + i], 1);
		} else if (r == -ETIMEDOUT || r == -EAGAIN) {
			atomic_fetch_add(&cs.timeouts, 1); /* unsent */
		} else {
			/* Closed only after every producer returned. */
			STRESS_CHECK(r == -ECANCELED, "send = %d", r);
			return r;
		}
		if (stress_below(rng, 64) == 0 && weft_yield() == -ECANCELED)
			return -ECANCELED;
	}
	return 0;
}

/* Receive until the channel is closed and empty. */
static int consume(uint64_t *rng)
{
	long last[CH_PRODUCERS];

	for (int p = 0; p < CH_PRODUCERS; p++)
		last[p] = -1;
	for (;;) {
		void *v = NULL;
		int r;

		switch (stress_below(rng, 4)) {
		case 0:
			r = weft_chan_recv_until(cs.ch, &v,
						 some_deadline(rng, 300));
			break;
		case 1:
			r = weft_chan_try_recv(cs.ch, &v);
			if (r == -EAGAIN)
				weft_yield();
			break;
		default:
			r = weft_chan_recv(cs.ch, &v);
			break;
		}
		stress_progress();
		if (r == 0)
			got_item(v, last);
		else if (r == -EPIPE)
			return 0;
		else if (r != -ETIMEDOUT && r != -EAGAIN) {
			STRESS_CHECK(r == -ECANCELED, "recv = %d", r);
			return r;
		}
	}
}

struct chan_job {
	size_t id;
	unsigned index; /* producer or consumer number */
	bool producer;
	uint64_t seed;
};

static int chan_task(void *arg, void **result)
{
	struct chan_job *j = arg;
	uint64_t rng = j->seed;
	int r;

	stress_task_start(&tr, j->id);
	r = j->producer ? produce(j->index, &rng) : consume(&rng);
	if (r == -ECANCELED) {
		stress_flag(&tr, j->id, REC_SAW_CANCEL);
		return r;
	}
	*result = stress_plan_value(j->id);
	return 0;
}

static void chan_thread(void *arg, unsigned index)
{
	struct chan_job *j = &((struct chan_job *)arg)[index];
	uint64_t rng = j->seed;
	int r = j->producer ? produce(j->index, &rng) : consume(&rng);

	STRESS_CHECK(r == 0, "chan thread %u = %d", index, r);
}

static void phase_chan(size_t cap, size_t per, unsigned workers)
{
	struct chan_job tj[CH_THREAD_PRODUCERS], tc[CH_THREAD_CONSUMERS];
	struct chan_job task_jobs[CH_PRODUCERS + CH_CONSUMERS];
	struct weft_future *fs[CH_PRODUCERS + CH_CONSUMERS];
	unsigned nf = 0;
	uint64_t rng = stress_stream(300 + cap);
	struct stress_threads *c, *prod, *cons;
	long sent = 0;

	stress_track_reset(&tr);
	stress_phase("chan: capacity %zu, %u producers x %zu items, %u "
		     "consumers, %u workers",
		     cap, CH_PRODUCERS, per, CH_CONSUMERS, workers);
	cs.per = per;
	cs.sent = calloc(CH_PRODUCERS * per, 1);
	cs.got = calloc(CH_PRODUCERS * per, 1);
	atomic_store(&cs.timeouts, 0);
	if (!cs.sent || !cs.got)
		exit(STRESS_FAIL);
	STRESS_CHECK(weft_chan_create(cap, &cs.ch) == 0, "chan_create");
	pool = stress_pool(workers, "chan");
	c = cancellers_start();

	/* Consumers first: some of them are tasks, which the canceller
	 * may stop; the threads always see the channel through. */
	for (unsigned i = 0; i < CH_CONSUMERS + CH_PRODUCERS; i++) {
		bool producer = i >= CH_CONSUMERS;
		unsigned index = producer ? i - CH_CONSUMERS : i;
		bool thread = producer ? index < CH_THREAD_PRODUCERS
				       : index < CH_THREAD_CONSUMERS;
		struct chan_job j = {.index = index, .producer = producer,
				     .seed = stress_rand(&rng)};

		if (thread) {
			if (producer)
				tj[index] = j;
			else
				tc[index] = j;
			continue;
		}
		j.id = stress_track_alloc(&tr, 1);
		task_jobs[nf] = j;
		int rc = weft_submit(pool, chan_task, &task_jobs[nf], &fs[nf]);
		STRESS_CHECK(rc == 0, "submit = %d", rc);
		if (rc)
			continue;
		stress_flag(&tr, j.id, REC_SUBMITTED);
		stress_watch(fs[nf], j.id);
		stress_table_put((unsigned)stress_rand(&rng), fs[nf], j.id);
		nf++;
	}
	cons = stress_threads_start(CH_THREAD_CONSUMERS, chan_thread, tc,
				    "consumer");
	prod = stress_threads_start(CH_THREAD_PRODUCERS, chan_thread, tj,
				    "producer");
	stress_threads_join(prod);
	/* Every producer task must be done before the close. */
	for (unsigned i = 0; i < nf; i++)
		if (task_jobs[i].producer)
			STRESS_CHECK(weft_future_wait(fs[i]) == 0, "wait");
	cancellers_stop(c);
	STRESS_CHECK(weft_chan_close(cs.ch) == 0, "close");
	stress_threads_join(cons);
	for (unsigned i = 0; i < nf; i++) {
		STRESS_CHECK(weft_future_wait(fs[i]) == 0, "wait");
		weft_future_unref(fs[i]);
	}
	/* Drain what cancelled consumers left (none when the threads saw
	 * -EPIPE: they drained it). */
	{
		long last[CH_PRODUCERS];
		void *v;
		int r;

		for (int p = 0; p < CH_PRODUCERS; p++)
			last[p] = -1;
		while ((r = weft_chan_try_recv(cs.ch, &v)) == 0)
			got_item(v, last);
		STRESS_CHECK(r == -EPIPE, "drain = %d", r);
	}
	for (size_t i = 0; i < CH_PRODUCERS * per; i++) {
		uint8_t s = atomic_load(&cs.sent[i]);
		uint8_t g = atomic_load(&cs.got[i]);

		STRESS_CHECK(s == g, "chan: item %zu/%zu sent %u received %u",
			     i / per, i % per, s, g);
		sent += s;
	}
	STRESS_CHECK(weft_pool_shutdown(pool, 0, WEFT_FOREVER) == 0,
		     "shutdown");
	stress_table_clear();
	weft_pool_destroy(pool);
	pool = NULL;
	weft_chan_destroy(cs.ch);
	stress_verify(&tr, 0, atomic_load(&tr.next), false, false);
	printf("stress_sync: chan cap %zu: %ld of %zu items sent, %ld "
	       "timeouts\n",
	       cap, sent, CH_PRODUCERS * per, atomic_load(&cs.timeouts));
	free(cs.sent);
	free(cs.got);
}

/* ---- phase: events and wait groups -------------------------------------- */

#define EV_WAITERS 12 /* the first 2 are threads */

struct ev_round {
	struct weft_event *go;
	struct weft_wgroup *wg;
	_Atomic int passed;    /* went through the go event */
	_Atomic int cancelled; /* cancelled waiting, before or after go */
	_Atomic int went;      /* cancelled in the go wait: never passed */
	_Atomic long timeouts;
	/* auto-reset part */
	struct weft_event *ping;
	_Atomic long pings;
};

struct ev_job {
	struct ev_round *round;
	size_t id;
	uint64_t seed;
};

/* Wait for the round's go, then for one ping; leave the group. */
static int ev_wait(struct ev_round *rd, uint64_t *rng)
{
	int r;

	do {
		int64_t dl = some_deadline(rng, 300);

		r = weft_event_wait_until(rd->go, dl);
		if (r == -ETIMEDOUT) {
			STRESS_CHECK(weft_now() >= dl, "event: early timeout");
			atomic_fetch_add(&rd->timeouts, 1);
		}
		stress_progress();
	} while (r == -ETIMEDOUT);
	if (r == -ECANCELED)
		atomic_fetch_add(&rd->went, 1);
	if (r == 0) {
		atomic_fetch_add(&rd->passed, 1);
		STRESS_CHECK(weft_event_is_set(rd->go),
			     "manual event passed but not set");
		do {
			r = weft_event_wait_until(rd->ping,
						  some_deadline(rng, 200));
			stress_progress();
		} while (r == -ETIMEDOUT);
		if (r == 0)
			atomic_fetch_add(&rd->pings, 1);
	}
	if (r == -ECANCELED)
		atomic_fetch_add(&rd->cancelled, 1);
	else
		STRESS_CHECK(r == 0, "event wait = %d", r);
	/* The last touch of the round's objects. */
	STRESS_CHECK(weft_wgroup_done(rd->wg) == 0, "done");
	return r;
}

static int ev_task(void *arg, void **result)
{
	struct ev_job *j = arg;
	uint64_t rng = j->seed;
	int r;

	stress_task_start(&tr, j->id);
	r = ev_wait(j->round, &rng);
	if (r == -ECANCELED) {
		stress_flag(&tr, j->id, REC_SAW_CANCEL);
		return r;
	}
	*result = stress_plan_value(j->id);
	return 0;
}

static void ev_thread(void *arg, unsigned index)
{
	struct ev_job *j = &((struct ev_job *)arg)[index];
	uint64_t rng = j->seed;

	STRESS_CHECK(ev_wait(j->round, &rng) == 0, "thread waiter");
}

static void ev_one_round(uint64_t *rng)
{
	struct weft_event go, ping;
	struct weft_wgroup wg;
	struct ev_round rd = {.go = &go, .wg = &wg, .ping = &ping};
	struct ev_job jobs_[EV_WAITERS];
	struct weft_future *fs[EV_WAITERS];
	struct stress_threads *t;
	bool accounted[EV_WAITERS] = {false};
	int never_ran = 0;
	long sets = 0;
	int r;

	weft_event_init(&go, 0);
	weft_event_init(&ping, WEFT_EVENT_AUTO_RESET);
	weft_wgroup_init(&wg);
	STRESS_CHECK(weft_wgroup_add(&wg, EV_WAITERS) == 0, "add");
	for (unsigned i = 0; i < EV_WAITERS; i++)
		jobs_[i] = (struct ev_job){.round = &rd,
					   .seed = stress_rand(rng)};
	for (unsigned i = 2; i < EV_WAITERS; i++) {
		jobs_[i].id = stress_track_alloc(&tr, 1);
		r = weft_submit(pool, ev_task, &jobs_[i], &fs[i]);
		STRESS_CHECK(r == 0, "submit = %d", r);
		if (r) {
			fs[i] = NULL;
			weft_wgroup_done(&wg);
			continue;
		}
		stress_flag(&tr, jobs_[i].id, REC_SUBMITTED);
		stress_watch(fs[i], jobs_[i].id);
		stress_table_put((unsigned)stress_rand(rng), fs[i],
				 jobs_[i].id);
	}
	t = stress_threads_start(2, ev_thread, jobs_, "ev waiter");
	stress_spin_ns((int64_t)stress_below(rng, 300) * US);
	/* The thread waiters cannot leave before the set. */
	STRESS_CHECK(weft_wgroup_count(&wg) >= 2,
		     "the group emptied before the event was set");
	STRESS_CHECK(weft_event_set(&go) == 0, "set");
	/* Ping until the group is empty: every waiter that passed the go
	 * needs one ping. A waiter task cancelled before it started never
	 * leaves the group: leave it on its behalf. (No progress is counted
	 * here, so that the watchdog sees a group that never empties.) */
	for (;;) {
		r = weft_wgroup_wait_until(&wg, weft_now() + 50 * US);
		if (r == 0)
			break;
		STRESS_CHECK(r == -ETIMEDOUT, "wgroup wait = %d", r);
		if (weft_event_is_set(&ping) == false) {
			weft_event_set(&ping);
			sets++;
		}
		for (unsigned i = 2; i < EV_WAITERS; i++) {
			if (accounted[i] || !fs[i] ||
			    weft_future_state(fs[i]) != WEFT_FUTURE_CANCELLED ||
			    atomic_load(&tr.rec[jobs_[i].id].ran))
				continue;
			accounted[i] = true;
			never_ran++;
			STRESS_CHECK(weft_wgroup_done(&wg) == 0, "done");
		}
	}
	/* Every waiter has left the group: what they did is visible, and
	 * none of them touches the objects again (their last touch was the
	 * done(), which the wait saw), so finalise and scribble over them
	 * now, before the waiters have even returned. */
	STRESS_CHECK(weft_wgroup_count(&wg) == 0, "wgroup count");
	STRESS_CHECK(atomic_load(&rd.passed) + atomic_load(&rd.went) +
				     never_ran ==
			     EV_WAITERS,
		     "event: %d passed + %d cancelled + %d never ran, of %d",
		     atomic_load(&rd.passed), atomic_load(&rd.went), never_ran,
		     EV_WAITERS);
	/* Each effective set of the auto-reset event let one waiter
	 * through, or is still pending. */
	STRESS_CHECK(atomic_load(&rd.pings) +
				     (weft_event_is_set(&ping) ? 1 : 0) ==
			     sets,
		     "auto-reset event: %ld passes for %ld sets",
		     atomic_load(&rd.pings), sets);
	STRESS_CHECK(weft_wgroup_fini(&wg) == 0, "wgroup fini");
	STRESS_CHECK(weft_event_fini(&go) == 0, "event fini");
	STRESS_CHECK(weft_event_fini(&ping) == 0, "event fini");
	memset(&wg, 0xa5, sizeof(wg));
	memset(&go, 0xa5, sizeof(go));
	memset(&ping, 0xa5, sizeof(ping));
	stress_threads_join(t);
	for (unsigned i = 2; i < EV_WAITERS; i++) {
		if (!fs[i])
			continue;
		STRESS_CHECK(weft_future_wait(fs[i]) == 0, "wait");
		weft_future_unref(fs[i]);
	}
}

static void ev_driver(void *arg, unsigned index)
{
	size_t rounds = *(size_t *)arg;
	uint64_t rng = stress_stream(500 + index);

	for (size_t i = 0; i < rounds; i++) {
		stress_where("event round", i);
		ev_one_round(&rng);
	}
}

static void phase_event(size_t rounds, unsigned workers)
{
	struct stress_threads *c, *t;

	stress_track_reset(&tr);
	stress_phase("event: 2 drivers x %zu rounds of %d waiters, %u workers",
		     rounds, EV_WAITERS, workers);
	pool = stress_pool(workers, "event");
	c = cancellers_start();
	t = stress_threads_start(2, ev_driver, &rounds, "ev driver");
	stress_threads_join(t);
	cancellers_stop(c);
	STRESS_CHECK(weft_pool_shutdown(pool, 0, WEFT_FOREVER) == 0,
		     "shutdown");
	stress_table_clear();
	weft_pool_destroy(pool);
	pool = NULL;
	stress_verify(&tr, 0, atomic_load(&tr.next), false, false);
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_sync");
	stress_table_init(16);

	size_t mutex_rounds = stress_scaled(400, 4);
	size_t sem_rounds = stress_scaled(300, 4);
	size_t chan_per = stress_scaled(20000, 200);
	size_t ev_rounds = stress_scaled(1500, 10);
	size_t cap = 4 * 16 * mutex_rounds;

	if (4 * 16 * sem_rounds > cap)
		cap = 4 * 16 * sem_rounds;
	if (2 * EV_WAITERS * ev_rounds > cap)
		cap = 2 * EV_WAITERS * ev_rounds;
	cap += CH_PRODUCERS + CH_CONSUMERS;
	stress_track_init(&tr, cap);
	stress_track_default(&tr);
	jobs = calloc(cap, sizeof(*jobs));
	if (!jobs)
		exit(STRESS_FAIL);

	phase_mutex(mutex_rounds, 3);
	phase_mutex(mutex_rounds / 2 + 1, 2);
	phase_sem(sem_rounds, 2);
	phase_chan(0, chan_per / 4 + 1, 2);
	phase_chan(1, chan_per, 3);
	phase_chan(8, chan_per, 2);
	phase_event(ev_rounds, 2);

	printf("stress_sync: %llu running tasks cancelled\n",
	       (unsigned long long)atomic_load(&n_cancels));
	free(jobs);
	stress_track_fini(&tr);
	return stress_finish();
}
