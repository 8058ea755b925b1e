/*
 * stress_async.c - awaits inside tasks: random task trees whose tasks
 * suspend in every kind of wait while they are cancelled, time out, fail
 * and migrate.
 *
 * Build it with -Dforce_migration=true (and TSan) for what it is meant for:
 * there every wait on a worker suspends the task and resumes it on another
 * worker, so each await is a fiber switch and a change of thread.
 *
 * Phases:
 *
 *   wake    (first, short) a cancel must end the wait a task is suspended
 *           in: a future wait, a sleep, a group wait (whose child waits
 *           too), a forked child's wait (the child runs on another fiber:
 *           evacuated, or stolen) and a cancel shield, which must keep the
 *           wait going until its own deadline and then let the next wait
 *           see the cancel. Each task waits on a "latch" that only a cancel
 *           ends; an outside thread cancels the task and gives it a few
 *           seconds to finish.
 *
 *   trees   rounds on fresh pools of 2, 3 or 4 workers. Two outside
 *           producers submit root tasks (a window of 4 each) and wait for
 *           them; an outside canceller cancels random futures from a shared
 *           table (roots and published children) while they run and
 *           suspend. Every task runs a random list of operations:
 *             sub     weft_submit 1-3 children, then wait for each with
 *                     weft_future_wait / _wait_until (a deadline in the
 *                     past, tiny, short or none); on -ETIMEDOUT wait again
 *                     or cancel the child and wait for it under a cancel
 *                     shield; some children are detached;
 *             fork    weft_spawn 1-3 children (which wait too, so they are
 *                     evacuated or stolen and the parent suspends in
 *                     weft_join), join them in LIFO order;
 *             group   a weft_group of 2-4 children, COLLECT or not, some
 *                     failing, maybe a group deadline, maybe an explicit
 *                     weft_group_cancel, waited for with or without a
 *                     deadline of the wait, then destroyed;
 *             sleep   weft_sleep / weft_sleep_until, 0 to 20 us or past;
 *             yield   weft_yield;
 *             peek    wait_until with a tiny deadline on someone else's
 *                     future;
 *             cancel  weft_future_cancel on someone else's future;
 *             shield  a cancel shield around a sleep, a child's wait or
 *                     a fork/join: inside it nothing may return
 *                     -ECANCELED;
 *             chan    a channel (weft/sync.h) between the task, which
 *                     receives, and 1-2 forked producers, unbuffered or
 *                     buffered, with and without deadlines.
 *           A task whose wait returns -ECANCELED (or that sees
 *           weft_task_cancelled()) cancels its outstanding children, waits
 *           for them under a shield, joins its forks and returns
 *           -ECANCELED; otherwise it returns its planned value or error.
 *           A round ends when its share of the await target is reached;
 *           the producers wait for their roots, the pool is drained and
 *           destroyed, and every record is checked.
 *
 *   cancelling shutdown
 *           (last, 4 short rounds) the same trees, with more shielded
 *           cleanup that forks, cut short by
 *           weft_pool_shutdown(WEFT_SHUTDOWN_CANCEL): it must finish
 *           (within 10 s) and every record must still be consistent.
 *
 * Awaits: every call that may suspend the calling task counts one (future
 * waits, joins, sleeps, yields, group waits and destroys, channel sends and
 * receives). The target is 1 million at --scale=100 (10 million at
 * --scale=1000; see main()), shared by the rounds.
 *
 * Checks, per task id (a record per task: roots, submitted children, forked
 * children, group children):
 *  - its body starts at most once, never after a cancel of it returned 0
 *    or after its future completed; it finishes once if it started;
 *  - it completes exactly once (the on_complete callback of its future, or
 *    the weft_join of a forked child); every task that never ran was
 *    cancelled by someone entitled to (see below);
 *  - its outcome is its planned value or error, or -ECANCELED: CANCELLED
 *    before it ran, or it saw a cancel; and a cancel could only reach it if
 *    it "may be cancelled": someone flagged it before cancelling it (the
 *    canceller, a parent cleaning up, a group that can cancel its
 *    children), or it is a forked child or a group child of a task that
 *    may be cancelled;
 *  - group waits return what weft/group.h says for what happened;
 *  - inside a cancel shield no wait returns -ECANCELED and
 *    weft_task_cancelled() is false;
 *  - no stall (watchdog), no leak (each pool is destroyed and every future
 *    unref'd; ASan's LeakSanitizer checks the rest).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stress.h"
#include <weft/sync.h>

/* ---- records ------------------------------------------------------------ */

#define NONE UINT32_MAX

enum kind {
	KIND_ROOT = 1,
	KIND_SUB = 2,  /* weft_submit'ed by a task */
	KIND_FORK = 3, /* weft_spawn'ed by a task */
	KIND_KID = 4,  /* weft_group_spawn'ed by a task */
};

enum {
	A_CREATED = 1u << 0,   /* the submit / spawn succeeded */
	A_MAYCANCEL = 1u << 1, /* flagged before anything may cancel it */
	A_SAWCANCEL = 1u << 2, /* its body saw a cancel and returned it */
	A_CANCEL0 = 1u << 3,   /* a weft_future_cancel() of it returned 0 */
	A_CANCELBUSY = 1u << 4, /* one returned -EBUSY */
};

struct arec {
	_Atomic uint32_t parent;
	_Atomic uint8_t kind;
	_Atomic uint8_t depth;
	_Atomic uint8_t maxd; /* the tree's depth limit */
	_Atomic uint8_t flags;
	_Atomic uint8_t started;
	_Atomic uint8_t finished;
	_Atomic uint8_t completed;
	_Atomic int32_t ret; /* what its body returned */
	_Atomic int32_t err; /* the outcome seen at completion */
};

static struct arec *recs;
static size_t rec_cap;
static _Atomic size_t rec_next;
static _Atomic bool ids_out; /* the round ran out of ids */
static unsigned round_no;

static struct weft_pool *pool;
static unsigned pool_workers;

#define MAXD 4 /* deepest tree level */

/* ---- counters ----------------------------------------------------------- */

static _Atomic uint64_t n_awaits;     /* calls that may suspend, in tasks */
static _Atomic uint64_t n_tasks;      /* task bodies started */
static _Atomic uint64_t n_forks, n_groups, n_subs, n_detached;
static _Atomic uint64_t n_timeouts, n_saw_cancel, n_cancel0, n_cancelbusy,
	n_cancelalready, n_shields, n_peeks, n_outside_waits, n_chans,
	n_chan_items;

static inline void cnt(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline void await_(void)
{
	cnt(&n_awaits);
}

/* ---- the records' rules ------------------------------------------------- */

static uint32_t rec_alloc(uint32_t parent, enum kind kind, unsigned depth,
			  unsigned maxd)
{
	size_t id = atomic_fetch_add_explicit(&rec_next, 1,
					      memory_order_relaxed);
	if (id >= rec_cap) {
		atomic_store(&ids_out, true);
		return NONE;
	}
	struct arec *r = &recs[id];
	atomic_store_explicit(&r->parent, parent, memory_order_relaxed);
	atomic_store_explicit(&r->kind, (uint8_t)kind, memory_order_relaxed);
	atomic_store_explicit(&r->depth, (uint8_t)depth, memory_order_relaxed);
	atomic_store_explicit(&r->maxd, (uint8_t)maxd, memory_order_relaxed);
	return (uint32_t)id;
}

static inline void flag(uint32_t id, unsigned f)
{
	atomic_fetch_or(&recs[id].flags, (uint8_t)f);
}

/* Whether a cancel may legitimately reach @id: it was flagged, or it is
 * part of (a forked child) or structured under (a group child) a task that
 * may be cancelled. */
static _Atomic bool pool_cancelling; /* a cancelling shutdown has begun */

static bool may_cancel(uint32_t id)
{
	if (atomic_load(&pool_cancelling))
		return true; /* WEFT_SHUTDOWN_CANCEL reaches every task */
	for (unsigned hops = 0; id != NONE && hops < 64; hops++) {
		struct arec *r = &recs[id];
		if (atomic_load(&r->flags) & A_MAYCANCEL)
			return true;
		unsigned k = atomic_load(&r->kind);
		if (k != KIND_FORK && k != KIND_KID)
			return false;
		id = atomic_load(&r->parent);
	}
	return false;
}

static int plan_err(uint32_t id)
{
	static const int codes[] = {-EIO, -ENOENT, -EPIPE, -ERANGE};
	uint64_t h = stress_mix(((uint64_t)round_no << 32 | id) ^ 0xfa11ed);
	if (h % 12 != 0)
		return 0;
	return codes[(h >> 32) % 4];
}

static void *plan_value(uint32_t id)
{
	return (void *)(uintptr_t)(((uint64_t)id << 1) | 1);
}

static void task_start(uint32_t id)
{
	struct arec *r = &recs[id];
	uint8_t prev = atomic_fetch_add(&r->started, 1);
	STRESS_CHECK(prev == 0, "task %u started %u times", id,
		     (unsigned)prev + 1);
	STRESS_CHECK(!(atomic_load(&r->flags) & A_CANCEL0),
		     "task %u started after a cancel of it returned 0", id);
	STRESS_CHECK(atomic_load(&r->completed) == 0,
		     "task %u started after it completed", id);
	cnt(&n_tasks);
	stress_count_task();
}

static void task_finish(uint32_t id, int ret)
{
	struct arec *r = &recs[id];
	atomic_store(&r->ret, ret);
	uint8_t prev = atomic_fetch_add(&r->finished, 1);
	STRESS_CHECK(prev == 0, "task %u finished %u times", id,
		     (unsigned)prev + 1);
}

/* An outcome (@err, @value) for @id, seen by its future or its join. */
static void check_outcome(uint32_t id, int err, void *value, bool cancelled,
			  const char *how)
{
	struct arec *r = &recs[id];
	unsigned started = atomic_load(&r->started);
	unsigned finished = atomic_load(&r->finished);
	unsigned fl = atomic_load(&r->flags);
	int ret = atomic_load(&r->ret);

	if (cancelled || err == -ECANCELED) {
		STRESS_CHECK(err == -ECANCELED,
			     "%s %u: CANCELLED with error %d", how, id, err);
		STRESS_CHECK(may_cancel(id),
			     "%s %u: cancelled (ran %u) but nothing that could "
			     "cancel it was flagged (flags %#x, kind %u)",
			     how, id, started, fl,
			     (unsigned)atomic_load(&r->kind));
		if (started)
			STRESS_CHECK(finished == 1 && ret == -ECANCELED &&
					     (fl & A_SAWCANCEL),
				     "%s %u: CANCELLED after it ran, but its "
				     "body returned %d (finished %u, flags %#x)",
				     how, id, ret, finished, fl);
		return;
	}
	STRESS_CHECK(started == 1 && finished == 1,
		     "%s %u: completed with %d but started %u finished %u",
		     how, id, err, started, finished);
	STRESS_CHECK(err == ret, "%s %u: outcome %d, its body returned %d",
		     how, id, err, ret);
	STRESS_CHECK(err == plan_err(id), "%s %u: outcome %d, planned %d", how,
		     id, err, plan_err(id));
	if (err == 0)
		STRESS_CHECK(value == plan_value(id),
			     "%s %u: value %p, planned %p", how, id, value,
			     plan_value(id));
}

/* on_complete callback of every future a task has. */
static void complete_cb(struct weft_future *f, void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	struct arec *r = &recs[id];
	uint8_t prev = atomic_fetch_add(&r->completed, 1);
	STRESS_CHECK(prev == 0, "future %u completed %u times", id,
		     (unsigned)prev + 1);
	int st = weft_future_state(f);
	int err = weft_future_error(f);
	STRESS_CHECK(st == WEFT_FUTURE_DONE || st == WEFT_FUTURE_FAILED ||
			     st == WEFT_FUTURE_CANCELLED,
		     "future %u: callback in state %d", id, st);
	STRESS_CHECK((st == WEFT_FUTURE_DONE) == (err == 0) &&
			     (st == WEFT_FUTURE_CANCELLED) ==
				     (err == -ECANCELED),
		     "future %u: state %d with error %d", id, st, err);
	check_outcome(id, err, weft_future_value(f),
		      st == WEFT_FUTURE_CANCELLED, "future");
	atomic_store(&r->err, err);
	stress_progress();
}

static void watch(struct weft_future *f, uint32_t id)
{
	int rc = weft_future_on_complete(f, complete_cb, (void *)(uintptr_t)id);
	STRESS_CHECK(rc == 0, "on_complete(%u) = %d", id, rc);
}

/* Cancel @f (task @id), flagging it first. */
static int cancel_task(struct weft_future *f, uint32_t id)
{
	flag(id, A_MAYCANCEL);
	int rc = weft_future_cancel(f);
	switch (rc) {
	case 0:
		flag(id, A_CANCEL0);
		cnt(&n_cancel0);
		STRESS_CHECK(weft_future_state(f) == WEFT_FUTURE_CANCELLED,
			     "cancel(%u) = 0 but state %d", id,
			     weft_future_state(f));
		break;
	case -EBUSY:
		flag(id, A_CANCELBUSY);
		cnt(&n_cancelbusy);
		break;
	case -EALREADY:
		cnt(&n_cancelalready);
		STRESS_CHECK(weft_future_try_wait(f) == 0,
			     "cancel(%u) = -EALREADY but not complete", id);
		break;
	default:
		stress_fail("cancel(%u) = %d", id, rc);
		break;
	}
	return rc;
}

/* ---- the task tree ------------------------------------------------------ */

struct node {
	uint32_t id;
	unsigned depth, maxd;
	uint64_t rng;
};

static int node_task(void *arg, void **result);

static _Atomic bool cx_phase; /* the cancelling-shutdown phase runs */

static inline uint64_t rnd(struct node *n, uint64_t below)
{
	return stress_below(&n->rng, below);
}

static int64_t tiny_ns(struct node *n)
{
	switch (rnd(n, 4)) {
	case 0: return 0;
	case 1: return (int64_t)rnd(n, 2000);
	case 2: return (int64_t)rnd(n, 20000);
	default: return (int64_t)rnd(n, 100000);
	}
}

/* A deadline for a wait: past, tiny, short, or none. */
static int64_t some_deadline(struct node *n)
{
	switch (rnd(n, 6)) {
	case 0: return weft_now() - 1000; /* a poll */
	case 1: return weft_now() + (int64_t)rnd(n, 5000);
	case 2: return weft_now() + (int64_t)rnd(n, 50000);
	case 3: return weft_now() + (int64_t)rnd(n, 500000);
	default: return WEFT_FOREVER;
	}
}

/* A wait on our own child @f (id @cid) that must complete it: under a
 * shield, so our own cancel cannot interrupt it. */
static void shielded_wait(struct weft_future *f, uint32_t cid)
{
	weft_cancel_shield_push();
	STRESS_CHECK(!weft_task_cancelled(),
		     "weft_task_cancelled() true inside a shield");
	await_();
	int rc = weft_future_wait(f);
	STRESS_CHECK(rc == 0, "shielded wait for child %u = %d", cid, rc);
	weft_cancel_shield_pop();
}

/* Spawn a child record; NONE when out of ids. */
static uint32_t child_rec(struct node *n, enum kind k)
{
	return rec_alloc(n->id, k, n->depth + 1, n->maxd);
}

/* op sub: submit 1-3 children, wait for them. */
static int op_sub(struct node *n)
{
	enum { MAXC = 3 };
	struct weft_future *fs[MAXC] = {0};
	uint32_t ids[MAXC];
	unsigned c = 1 + (unsigned)rnd(n, MAXC);
	int rc = 0;

	for (unsigned i = 0; i < c; i++) {
		ids[i] = child_rec(n, KIND_SUB);
		if (ids[i] == NONE)
			break;
		struct weft_future *f = NULL;
		int e = weft_submit(pool, node_task,
				    (void *)(uintptr_t)ids[i], &f);
		STRESS_CHECK(e == 0 && f, "submit child = %d", e);
		if (e)
			break;
		flag(ids[i], A_CREATED);
		cnt(&n_subs);
		watch(f, ids[i]);
		if (rnd(n, 4) == 0)
			stress_table_put((unsigned)rnd(n, 64), f, ids[i]);
		if (rnd(n, 16) == 0) {
			/* cancel at once: usually before anyone runs it */
			cancel_task(f, ids[i]);
		}
		if (rnd(n, 8) == 0) {
			/* detached: nobody waits for it */
			weft_future_unref(f);
			cnt(&n_detached);
			continue;
		}
		fs[i] = f;
	}
	/* Wait in a random order. */
	unsigned start = (unsigned)rnd(n, c);
	for (unsigned j = 0; j < c; j++) {
		unsigned i = (start + j) % c;
		struct weft_future *f = fs[i];
		if (!f)
			continue;
		if (rc == 0) {
			int64_t dl = some_deadline(n);
			await_();
			int w = dl == WEFT_FOREVER
					? weft_future_wait(f)
					: weft_future_wait_until(f, dl);
			if (w == -ETIMEDOUT) {
				cnt(&n_timeouts);
				STRESS_CHECK(weft_now() >= dl,
					     "wait_until timed out early");
				if (rnd(n, 2)) {
					cancel_task(f, ids[i]);
					shielded_wait(f, ids[i]);
				} else {
					await_();
					w = weft_future_wait(f);
				}
			}
			if (w == -ECANCELED) {
				rc = -ECANCELED;
			} else if (w != -ETIMEDOUT) {
				STRESS_CHECK(w == 0, "wait for child %u = %d",
					     ids[i], w);
			}
		}
		if (rc == -ECANCELED && weft_future_try_wait(f) != 0) {
			/* We were cancelled: cancel the child, and wait
			 * for it under a shield (cleanup that waits). */
			cancel_task(f, ids[i]);
			shielded_wait(f, ids[i]);
		}
		STRESS_CHECK(weft_future_try_wait(f) == 0,
			     "child %u not complete after its wait", ids[i]);
		/* The callback checked the outcome; check what we see too. */
		void *v = NULL;
		int e = weft_future_try_get(f, &v);
		check_outcome(ids[i], e, v,
			      weft_future_state(f) == WEFT_FUTURE_CANCELLED,
			      "child");
		weft_future_unref(f);
	}
	return rc;
}

/* op fork: spawn 1-3 children, maybe wait in between, join LIFO.
 * @shielded: called inside a cancel shield, where the wait in between
 * always happens and must not be ended by a cancel. */
static int fork_children(struct node *n, bool shielded)
{
	enum { MAXC = 3 };
	struct weft_spawn sp[MAXC];
	uint32_t ids[MAXC];
	unsigned c = 1 + (unsigned)rnd(n, MAXC), made = 0;
	int rc = 0;

	for (unsigned i = 0; i < c; i++) {
		ids[i] = child_rec(n, KIND_FORK);
		if (ids[i] == NONE)
			break;
		flag(ids[i], A_CREATED);
		weft_spawn(&sp[i], node_task, (void *)(uintptr_t)ids[i]);
		made++;
		cnt(&n_forks);
		/* Give thieves a moment: the next spawn shares the older
		 * children with a thief that asked. */
		if (rnd(n, 2))
			stress_spin_ns((int64_t)rnd(n, 3000));
	}
	/* Suspend while children are unjoined: they are evacuated. */
	if (made && (shielded || rnd(n, 3) == 0)) {
		await_();
		int s = rnd(n, 2) ? weft_sleep(tiny_ns(n)) : weft_yield();
		if (s == -ECANCELED && !shielded)
			rc = -ECANCELED;
		else
			STRESS_CHECK(s == 0, "sleep/yield%s = %d",
				     shielded ? " in a shield" : "", s);
	}
	while (made) {
		made--;
		void *v = (void *)0x1;
		await_();
		int e = weft_join(&sp[made], &v);
		struct arec *r = &recs[ids[made]];
		uint8_t prev = atomic_fetch_add(&r->completed, 1);
		STRESS_CHECK(prev == 0, "fork child %u joined %u times",
			     ids[made], (unsigned)prev + 1);
		check_outcome(ids[made], e, v, false, "fork child");
		atomic_store(&r->err, e);
		stress_progress();
	}
	return rc;
}

static int op_fork(struct node *n)
{
	return fork_children(n, false);
}

/* op group */
static int op_group(struct node *n)
{
	enum { MAXC = 4 };
	struct weft_future *fs[MAXC] = {0};
	uint32_t ids[MAXC];
	unsigned c = 2 + (unsigned)rnd(n, MAXC - 1);
	unsigned flags = rnd(n, 2) ? WEFT_GROUP_COLLECT : 0;
	bool has_deadline = rnd(n, 4) == 0;
	int64_t gdl = has_deadline ? weft_now() + 20000 + (int64_t)rnd(n, 300000)
				   : WEFT_FOREVER;
	bool explicit_cancel = rnd(n, 7) == 0;
	bool any_fail = false;
	struct weft_group *g = NULL;
	int rc = 0;

	for (unsigned i = 0; i < c; i++) {
		ids[i] = child_rec(n, KIND_KID);
		if (ids[i] == NONE) {
			c = i;
			break;
		}
		if (plan_err(ids[i]))
			any_fail = true;
	}
	if (c == 0)
		return 0;
	bool prone = has_deadline || explicit_cancel ||
		     (!(flags & WEFT_GROUP_COLLECT) && any_fail);
	for (unsigned i = 0; i < c; i++)
		if (prone)
			flag(ids[i], A_MAYCANCEL);

	int e = weft_group_create(pool, flags, gdl, &g);
	STRESS_CHECK(e == 0 && g, "group_create = %d", e);
	if (e)
		return 0;
	cnt(&n_groups);
	for (unsigned i = 0; i < c; i++) {
		e = weft_group_spawn(g, node_task, (void *)(uintptr_t)ids[i],
				     &fs[i]);
		if (e == -ECANCELED) {
			STRESS_CHECK(prone, "group_spawn = -ECANCELED in a "
					    "group that cannot be cancelled");
			STRESS_CHECK(fs[i] == NULL, "group_spawn failed with "
						    "a future");
			continue;
		}
		STRESS_CHECK(e == 0 && fs[i], "group_spawn = %d", e);
		if (e)
			continue;
		flag(ids[i], A_CREATED);
		watch(fs[i], ids[i]);
	}
	if (explicit_cancel) {
		if (rnd(n, 2)) {
			await_();
			if (weft_yield() == -ECANCELED)
				rc = -ECANCELED;
		}
		weft_group_cancel(g);
	}

	int r = 0;
	bool full = true; /* the wait ended with every child finished */
	if (rc == 0) {
		bool own_dl = rnd(n, 3) == 0;
		int64_t dl = own_dl ? weft_now() + (int64_t)rnd(n, 100000)
				    : WEFT_FOREVER;
		await_();
		r = weft_group_wait(g, dl);
		if (r == -ETIMEDOUT && own_dl && dl < gdl) {
			STRESS_CHECK(weft_now() >= dl,
				     "group_wait timed out early");
			cnt(&n_timeouts);
			if (rnd(n, 2)) {
				await_();
				r = weft_group_wait(g, WEFT_FOREVER);
			} else {
				full = false; /* destroy cancels the rest */
			}
		}
		if (full) {
			if (r == -ECANCELED) {
				STRESS_CHECK(explicit_cancel ||
						     may_cancel(n->id),
					     "group_wait = -ECANCELED: no "
					     "cancel (task %u)",
					     n->id);
				if (!explicit_cancel)
					rc = -ECANCELED; /* ours */
				else if (weft_task_cancelled())
					rc = -ECANCELED;
			} else if (r == -ETIMEDOUT) {
				STRESS_CHECK(has_deadline && weft_now() >= gdl,
					     "group_wait = -ETIMEDOUT, group "
					     "deadline %d",
					     (int)has_deadline);
			} else if (r < 0) {
				bool found = false;
				for (unsigned i = 0; i < c; i++)
					if (fs[i] &&
					    weft_future_try_wait(fs[i]) == 0 &&
					    weft_future_error(fs[i]) == r)
						found = true;
				STRESS_CHECK(found, "group_wait = %d: no child "
						    "failed with it",
					     r);
			} else {
				/* 0: no child failed. A child the pool
				 * cancelled (a cancelling shutdown) does not
				 * count as failed, nor cancel the group. */
				bool pc = atomic_load(&pool_cancelling);
				STRESS_CHECK(r == 0, "group_wait = %d", r);
				for (unsigned i = 0; i < c; i++) {
					int st = fs[i] ? weft_future_state(
								 fs[i])
						       : WEFT_FUTURE_DONE;
					STRESS_CHECK(
						st == WEFT_FUTURE_DONE ||
							(pc &&
							 st == WEFT_FUTURE_CANCELLED),
						"group_wait = 0 but child %u "
						"state %d",
						ids[i], st);
				}
			}
			for (unsigned i = 0; i < c; i++)
				STRESS_CHECK(!fs[i] ||
						     weft_future_try_wait(
							     fs[i]) == 0,
					     "group_wait = %d but child %u is "
					     "not complete",
					     r, ids[i]);
		}
	}
	if (!full || rc != 0) {
		/* destroy cancels the children still running */
		for (unsigned i = 0; i < c; i++)
			flag(ids[i], A_MAYCANCEL);
	}
	await_();
	weft_group_destroy(g);
	for (unsigned i = 0; i < c; i++) {
		if (!fs[i])
			continue;
		STRESS_CHECK(weft_future_try_wait(fs[i]) == 0,
			     "group child %u not complete after destroy",
			     ids[i]);
		weft_future_unref(fs[i]);
	}
	return rc;
}

static int op_sleep(struct node *n)
{
	int s;
	await_();
	switch (rnd(n, 4)) {
	case 0:
		s = weft_sleep_until(weft_now() - (int64_t)rnd(n, 10000));
		break;
	case 1:
		s = weft_sleep(0);
		break;
	default:
		s = weft_sleep(tiny_ns(n) / 5);
		break;
	}
	if (s == -ECANCELED)
		return s;
	STRESS_CHECK(s == 0, "sleep = %d", s);
	return 0;
}

static int op_yield(struct node *n)
{
	(void)n;
	await_();
	int s = weft_yield();
	if (s == -ECANCELED)
		return s;
	STRESS_CHECK(s == 0, "yield = %d", s);
	return 0;
}

/* Wait a moment for someone else's future. (With a deadline a queued task
 * is not run inline by its waiter, weft/future.h; if it were, peeks could
 * nest unrelated trees deeply on one stack, so a queued one is peeked at
 * only half the time.) */
static int op_peek(struct node *n)
{
	size_t id;
	struct weft_future *f = stress_table_get((unsigned)rnd(n, 64), &id);
	int rc = 0;
	if (!f)
		return 0;
	if (weft_future_state(f) != WEFT_FUTURE_PENDING || rnd(n, 2)) {
		cnt(&n_peeks);
		await_();
		int w = weft_future_wait_until(f, weft_now() +
							  (int64_t)rnd(n, 30000));
		if (w == -ECANCELED)
			rc = -ECANCELED;
		else if (w == 0)
			STRESS_CHECK(weft_future_try_wait(f) == 0,
				     "peek: wait = 0 but not complete");
		else
			STRESS_CHECK(w == -ETIMEDOUT || w == -EDEADLK,
				     "peek: wait_until = %d", w);
	}
	weft_future_unref(f);
	return rc;
}

static int op_cancel(struct node *n)
{
	size_t id;
	struct weft_future *f = stress_table_get((unsigned)rnd(n, 64), &id);
	if (!f)
		return 0;
	cancel_task(f, (uint32_t)id);
	weft_future_unref(f);
	return 0;
}

/* A shield around waits: none may return -ECANCELED. */
static int op_shield(struct node *n)
{
	cnt(&n_shields);
	weft_cancel_shield_push();
	STRESS_CHECK(!weft_task_cancelled(),
		     "weft_task_cancelled() true inside a shield");
	unsigned how = n->depth >= n->maxd ? 0 : (unsigned)rnd(n, 3);
	if (how == 2) {
		/* cleanup that forks: the children run elsewhere while we
		 * wait, shielded (a cancelling shutdown must still run
		 * them, and our joins must return) */
		fork_children(n, true);
	} else if (how == 0) {
		await_();
		int s = weft_sleep(tiny_ns(n) / 5);
		STRESS_CHECK(s == 0, "sleep in a shield = %d", s);
		if (rnd(n, 2)) {
			await_();
			s = weft_yield();
			STRESS_CHECK(s == 0, "yield in a shield = %d", s);
		}
	} else {
		uint32_t cid = child_rec(n, KIND_SUB);
		struct weft_future *f = NULL;
		if (cid != NONE &&
		    weft_submit(pool, node_task, (void *)(uintptr_t)cid, &f) ==
			    0) {
			flag(cid, A_CREATED);
			cnt(&n_subs);
			watch(f, cid);
			await_();
			int w = weft_future_wait_until(f, some_deadline(n));
			STRESS_CHECK(w == 0 || w == -ETIMEDOUT,
				     "wait in a shield = %d", w);
			if (w == -ETIMEDOUT) {
				cnt(&n_timeouts);
				cancel_task(f, cid);
				await_();
				w = weft_future_wait(f);
				STRESS_CHECK(w == 0, "wait in a shield = %d",
					     w);
			}
			weft_future_unref(f);
		}
	}
	STRESS_CHECK(!weft_task_cancelled(),
		     "weft_task_cancelled() true inside a shield");
	weft_cancel_shield_pop();
	return 0;
}

/*
 * op chan: channel traffic (weft/sync.h). The task makes a channel
 * (unbuffered, or 1 or 4 slots) and forks 1-2 producer children that send
 * numbered items (weft_chan_send, or _send_until with a deadline and a
 * retry) while it receives them (weft_chan_recv / _recv_until); the last
 * producer to finish closes the channel, and the receiver reads until
 * -EPIPE. A receiver that is cancelled closes the channel itself (so that
 * its producers' sends end with -EPIPE), joins them, and drains what is
 * left with weft_chan_try_recv(). Checks: each producer's items arrive in
 * the order it sent them, none twice; every item whose send returned 0 is
 * received exactly once (in the loop or in the drain), and no other is;
 * the producers' outcomes follow the rules of the other tasks.
 */
#define CHAN_MAXP 2
#define CHAN_MAXITEMS 8

struct chan_prod {
	struct weft_chan *ch;
	uint32_t id;	 /* the producer's record */
	unsigned index;	 /* which producer: the item's high bits */
	unsigned nitems; /* how many to send */
	uint64_t seed;
	_Atomic unsigned *left; /* producers not finished */
	_Atomic bool *recv_closed; /* the receiver closed it */
	unsigned sent;	 /* items whose send returned 0 */
};

static void *chan_item(unsigned prod, unsigned seq)
{
	return (void *)(uintptr_t)(((uintptr_t)prod << 16 | seq) << 4 | 8);
}

static int chan_producer(void *arg, void **result)
{
	struct chan_prod *p = arg;
	task_start(p->id);
	struct node n = {.id = p->id, .rng = p->seed};
	int rc = 0;

	for (unsigned i = 0; i < p->nitems; i++) {
		void *item = chan_item(p->index, i);
		int s;
		await_();
		if (rnd(&n, 3) == 0) {
			s = weft_chan_send_until(p->ch, item,
						 some_deadline(&n));
			if (s == -ETIMEDOUT) {
				cnt(&n_timeouts);
				await_();
				s = weft_chan_send(p->ch, item);
			}
		} else {
			s = weft_chan_send(p->ch, item);
		}
		if (s == 0) {
			p->sent++;
		} else if (s == -EPIPE) {
			STRESS_CHECK(atomic_load(p->recv_closed),
				     "send = -EPIPE but the receiver has not "
				     "closed the channel");
			break;
		} else if (s == -ECANCELED) {
			rc = -ECANCELED;
			break;
		} else {
			stress_fail("chan send = %d", s);
			break;
		}
		if (rnd(&n, 4) == 0) {
			await_();
			int y = weft_yield();
			if (y == -ECANCELED) {
				rc = -ECANCELED;
				break;
			}
		}
	}
	if (atomic_fetch_sub(p->left, 1) == 1) {
		int c = weft_chan_close(p->ch);
		STRESS_CHECK(c == 0 || (c == -EPIPE && atomic_load(
							 p->recv_closed)),
			     "chan close by the last producer = %d", c);
	}
	int ret;
	if (rc == -ECANCELED) {
		flag(p->id, A_SAWCANCEL);
		cnt(&n_saw_cancel);
		STRESS_CHECK(may_cancel(p->id),
			     "producer %u saw a cancel nobody made", p->id);
		ret = -ECANCELED;
	} else {
		ret = plan_err(p->id);
		if (ret == 0)
			*result = plan_value(p->id);
	}
	task_finish(p->id, ret);
	return ret;
}

/* One received item: in order for its producer, from a live producer. */
static void chan_got(void *item, unsigned np, unsigned *next_seq,
		     unsigned *total)
{
	uintptr_t v = (uintptr_t)item;
	STRESS_CHECK((v & 15) == 8, "chan: received a bad item %p", item);
	unsigned prod = (unsigned)(v >> 20), seq = (unsigned)(v >> 4) & 0xffff;
	if (prod >= np) {
		stress_fail("chan: item %p from producer %u of %u", item, prod,
			    np);
		return;
	}
	STRESS_CHECK(seq == next_seq[prod],
		     "chan: producer %u's item %u arrived when %u was next",
		     prod, seq, next_seq[prod]);
	next_seq[prod] = seq + 1;
	(*total)++;
}

static int op_chan(struct node *n)
{
	static const size_t caps[] = {0, 1, 4};
	struct chan_prod prods[CHAN_MAXP];
	struct weft_spawn sp[CHAN_MAXP];
	unsigned next_seq[CHAN_MAXP] = {0};
	_Atomic unsigned left;
	_Atomic bool recv_closed;
	struct weft_chan *ch = NULL;
	unsigned np = 1 + (unsigned)rnd(n, CHAN_MAXP), made = 0, got = 0;
	int rc = 0;

	int e = weft_chan_create(caps[rnd(n, 3)], &ch);
	STRESS_CHECK(e == 0 && ch, "chan_create = %d", e);
	if (e)
		return 0;
	atomic_init(&left, np);
	atomic_init(&recv_closed, false);
	for (unsigned i = 0; i < np; i++) {
		uint32_t id = child_rec(n, KIND_FORK);
		if (id == NONE) {
			/* Out of ids: these producers never come. If the
			 * ones that came have all finished, none of them
			 * closed the channel: close it here. */
			if (atomic_fetch_sub(&left, np - i) == np - i)
				weft_chan_close(ch);
			break;
		}
		flag(id, A_CREATED);
		prods[i] = (struct chan_prod){
			.ch = ch,
			.id = id,
			.index = i,
			.nitems = 1 + (unsigned)rnd(n, CHAN_MAXITEMS),
			.seed = stress_mix(n->rng ^ id),
			.left = &left,
			.recv_closed = &recv_closed,
		};
		weft_spawn(&sp[i], chan_producer, &prods[i]);
		made++;
		cnt(&n_forks);
	}
	for (;;) {
		void *item = NULL;
		int r;
		await_();
		if (rnd(n, 3) == 0) {
			r = weft_chan_recv_until(ch, &item, some_deadline(n));
			if (r == -ETIMEDOUT) {
				cnt(&n_timeouts);
				continue;
			}
		} else {
			r = weft_chan_recv(ch, &item);
		}
		if (r == 0) {
			chan_got(item, np, next_seq, &got);
			continue;
		}
		if (r == -EPIPE)
			break;
		if (r == -ECANCELED) {
			/* Our producers may be blocked sending: closing
			 * ends their sends with -EPIPE. */
			rc = -ECANCELED;
			atomic_store(&recv_closed, true);
			int c = weft_chan_close(ch);
			STRESS_CHECK(c == 0 || c == -EPIPE,
				     "chan close by the receiver = %d", c);
			break;
		}
		stress_fail("chan recv = %d", r);
		atomic_store(&recv_closed, true);
		weft_chan_close(ch);
		break;
	}
	unsigned sent = 0;
	while (made) {
		made--;
		void *v = (void *)0x1;
		await_();
		int j = weft_join(&sp[made], &v);
		struct arec *r = &recs[prods[made].id];
		uint8_t prev = atomic_fetch_add(&r->completed, 1);
		STRESS_CHECK(prev == 0, "producer %u joined %u times",
			     prods[made].id, (unsigned)prev + 1);
		check_outcome(prods[made].id, j, v, false, "producer");
		atomic_store(&r->err, j);
		sent += prods[made].sent;
	}
	/* What the channel still holds (after a receiver's close). */
	for (;;) {
		void *item = NULL;
		int r = weft_chan_try_recv(ch, &item);
		if (r != 0) {
			STRESS_CHECK(r == -EPIPE, "chan try_recv after "
						  "close = %d",
				     r);
			break;
		}
		STRESS_CHECK(rc == -ECANCELED, "chan: item %p left after "
					       "the receiver saw -EPIPE",
			     item);
		chan_got(item, np, next_seq, &got);
	}
	STRESS_CHECK(got == sent, "chan: %u items sent, %u received", sent,
		     got);
	cnt(&n_chans);
	atomic_fetch_add_explicit(&n_chan_items, got, memory_order_relaxed);
	weft_chan_destroy(ch);
	return rc;
}

enum op {
	OP_SUB,
	OP_FORK,
	OP_GROUP,
	OP_SLEEP,
	OP_YIELD,
	OP_PEEK,
	OP_CANCEL,
	OP_SHIELD,
	OP_CHAN,
	OP_N
};

static enum op pick_op(struct node *n)
{
	/* weights: inner nodes / leaves */
	static const unsigned inner[OP_N] = {22, 18, 9, 16, 16, 5, 3, 6, 8};
	static const unsigned leaf[OP_N] = {0, 0, 0, 40, 35, 8, 4, 10, 0};
	/* the cancelling shutdown: more shielded cleanup with forks */
	static const unsigned inner_cx[OP_N] = {16, 18, 9, 10, 10, 3, 3, 24, 8};
	const unsigned *w = n->depth >= n->maxd ? leaf
			    : atomic_load_explicit(&cx_phase,
						   memory_order_relaxed)
				    ? inner_cx
				    : inner;
	unsigned total = 0;
	for (unsigned i = 0; i < OP_N; i++)
		total += w[i];
	unsigned x = (unsigned)rnd(n, total);
	for (unsigned i = 0; i < OP_N; i++) {
		if (x < w[i])
			return (enum op)i;
		x -= w[i];
	}
	return OP_YIELD;
}

static int node_task(void *arg, void **result)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	task_start(id);
	struct arec *r = &recs[id];
	struct node n = {
		.id = id,
		.depth = atomic_load_explicit(&r->depth, memory_order_relaxed),
		.maxd = atomic_load_explicit(&r->maxd, memory_order_relaxed),
		.rng = stress_mix(stress_opt.seed ^
				  stress_mix((uint64_t)round_no << 32 | id)),
	};
	unsigned nops = n.depth == 0 ? 2 + (unsigned)rnd(&n, 5)
				     : 1 + (unsigned)rnd(&n, 4);
	int rc = 0;

	for (unsigned i = 0; i < nops && rc == 0; i++) {
		if (atomic_load_explicit(&ids_out, memory_order_relaxed) &&
		    n.depth > 0)
			break;
		switch (pick_op(&n)) {
		case OP_SUB: rc = op_sub(&n); break;
		case OP_FORK: rc = op_fork(&n); break;
		case OP_GROUP: rc = op_group(&n); break;
		case OP_SLEEP: rc = op_sleep(&n); break;
		case OP_YIELD: rc = op_yield(&n); break;
		case OP_PEEK: rc = op_peek(&n); break;
		case OP_CANCEL: rc = op_cancel(&n); break;
		case OP_SHIELD: rc = op_shield(&n); break;
		case OP_CHAN: rc = op_chan(&n); break;
		default: break;
		}
		if (rc == 0 && weft_task_cancelled())
			rc = -ECANCELED;
	}
	int ret;
	if (rc == -ECANCELED) {
		flag(id, A_SAWCANCEL);
		cnt(&n_saw_cancel);
		STRESS_CHECK(may_cancel(id),
			     "task %u (kind %u) saw a cancel, but nothing that "
			     "could cancel it was flagged",
			     id, (unsigned)atomic_load(&r->kind));
		ret = -ECANCELED;
	} else {
		ret = plan_err(id);
		if (ret == 0)
			*result = plan_value(id);
	}
	task_finish(id, ret);
	return ret;
}

/* ---- phase: trees ------------------------------------------------------- */

static _Atomic bool round_stop;
static uint64_t round_target; /* n_awaits at which this round stops */

static _Atomic bool abandon; /* a stuck shutdown: stop waiting */

/* An outside wait for a root, which gives up when the run is abandoned. */
static void wait_root(struct weft_future *f, uint32_t id)
{
	stress_where("waiting for a root", id);
	cnt(&n_outside_waits);
	int w;
	while ((w = weft_future_wait_until(f, weft_now() + 100000000)) ==
	       -ETIMEDOUT) {
		if (atomic_load(&abandon))
			return;
	}
	STRESS_CHECK(w == 0, "outside wait = %d", w);
	void *v = NULL;
	int e = weft_future_try_get(f, &v);
	check_outcome(id, e, v, weft_future_state(f) == WEFT_FUTURE_CANCELLED,
		      "root");
}

static void producer(void *arg, unsigned index)
{
	(void)arg;
	enum { WINDOW = 4 };
	struct weft_future *fs[WINDOW] = {0};
	uint32_t ids[WINDOW];
	uint64_t rng = stress_stream(((uint64_t)round_no << 8) + index);
	unsigned k = 0;

	for (;;) {
		if (fs[k]) {
			wait_root(fs[k], ids[k]);
			weft_future_unref(fs[k]);
			fs[k] = NULL;
		}
		if (atomic_load(&round_stop) ||
		    atomic_load_explicit(&n_awaits, memory_order_relaxed) >=
			    round_target ||
		    atomic_load(&ids_out)) {
			atomic_store(&round_stop, true);
			break;
		}
		uint32_t id = rec_alloc(NONE, KIND_ROOT, 0,
					1 + (unsigned)stress_below(&rng, MAXD));
		if (id == NONE)
			break;
		stress_where("submitting", id);
		struct weft_future *f = NULL;
		int e = weft_submit(pool, node_task, (void *)(uintptr_t)id, &f);
		if (e == -ESHUTDOWN && atomic_load(&pool_cancelling))
			break; /* the cancelling shutdown has begun */
		STRESS_CHECK(e == 0 && f, "root submit = %d", e);
		if (e)
			break;
		flag(id, A_CREATED);
		watch(f, id);
		if (stress_below(&rng, 2))
			stress_table_put((unsigned)stress_rand(&rng), f, id);
		fs[k] = f;
		ids[k] = id;
		k = (k + 1) % WINDOW;
	}
	for (unsigned i = 0; i < WINDOW; i++) {
		if (!fs[i])
			continue;
		wait_root(fs[i], ids[i]);
		weft_future_unref(fs[i]);
	}
	stress_where("done", 0);
}

static _Atomic bool cancellers_stop;

static void canceller(void *arg, unsigned index)
{
	(void)arg;
	uint64_t rng = stress_stream(((uint64_t)round_no << 8) + 100 + index);
	while (!atomic_load(&cancellers_stop)) {
		size_t id;
		struct weft_future *f =
			stress_table_get((unsigned)stress_rand(&rng), &id);
		if (f) {
			/* mostly futures that have not completed (a cancel
			 * of a completed one is -EALREADY, cheap to check
			 * now and then) */
			if (weft_future_try_wait(f) != 0 ||
			    stress_below(&rng, 8) == 0) {
				stress_where("cancelling", id);
				cancel_task(f, (uint32_t)id);
			}
			weft_future_unref(f);
		}
		/* a few thousand cancels a second: most trees run through */
		stress_sleep_ns(50000 + (int64_t)stress_below(&rng, 400000));
	}
}

static size_t verify_round(size_t n)
{
	size_t bad = 0;
	for (size_t id = 0; id < n; id++) {
		struct arec *r = &recs[id];
		unsigned fl = atomic_load(&r->flags);
		unsigned st = atomic_load(&r->started);
		unsigned fin = atomic_load(&r->finished);
		unsigned comp = atomic_load(&r->completed);
		bool ok = true;
		if (!(fl & A_CREATED)) {
			if (st || comp) {
				stress_fail("id %zu: never created, but "
					    "started %u completed %u",
					    id, st, comp);
				ok = false;
			}
			goto next;
		}
		if (comp != 1) {
			stress_fail("id %zu (kind %u): completed %u times; "
				    "started %u finished %u flags %#x",
				    id, (unsigned)atomic_load(&r->kind), comp,
				    st, fin, fl);
			ok = false;
		}
		if (st > 1 || fin != st) {
			stress_fail("id %zu: started %u, finished %u", id, st,
				    fin);
			ok = false;
		}
		if ((fl & A_CANCEL0) && st) {
			stress_fail("id %zu: a cancel returned 0 but it ran",
				    id);
			ok = false;
		}
		if (!st && !may_cancel((uint32_t)id)) {
			stress_fail("id %zu (kind %u): never ran, and nothing "
				    "could cancel it",
				    id, (unsigned)atomic_load(&r->kind));
			ok = false;
		}
		if ((fl & A_SAWCANCEL) && !may_cancel((uint32_t)id)) {
			stress_fail("id %zu: saw a cancel nobody made", id);
			ok = false;
		}
	next:
		if (!ok)
			bad++;
	}
	return bad;
}

static void phase_trees(uint64_t target, unsigned rounds)
{
	static const unsigned workers_of[] = {2, 3, 2, 4};
	uint64_t per = target / rounds;

	for (unsigned rd = 0; rd < rounds; rd++) {
		round_no = rd + 1;
		pool_workers = workers_of[rd % 4];
		memset(recs, 0, rec_cap * sizeof(*recs));
		atomic_store(&rec_next, 0);
		atomic_store(&ids_out, false);
		atomic_store(&round_stop, false);
		atomic_store(&cancellers_stop, false);
		uint64_t a0 = atomic_load(&n_awaits);
		round_target = rd + 1 == rounds ? target : a0 + per;
		if (round_target < a0)
			round_target = a0;
		stress_phase("trees round %u/%u: %u workers, awaits %llu..%llu",
			     rd + 1, rounds, pool_workers,
			     (unsigned long long)a0,
			     (unsigned long long)round_target);
		double t0 = stress_elapsed();
		pool = stress_pool(pool_workers, "async");
		struct stress_threads *c =
			stress_threads_start(1, canceller, NULL, "canceller");
		struct stress_threads *p =
			stress_threads_start(2, producer, NULL, "producer");
		stress_threads_join(p);
		atomic_store(&cancellers_stop, true);
		stress_threads_join(c);
		stress_table_clear();
		stress_phase("trees round %u/%u: drain", rd + 1, rounds);
		int rc = weft_pool_shutdown(pool, 0, WEFT_FOREVER);
		STRESS_CHECK(rc == 0, "shutdown = %d", rc);
		weft_pool_destroy(pool);
		pool = NULL;
		size_t n = atomic_load(&rec_next);
		if (n > rec_cap)
			n = rec_cap;
		size_t bad = verify_round(n);
		printf("stress_async: round %u: %u workers, %zu tasks, %llu "
		       "awaits, %.1f s%s\n",
		       rd + 1, pool_workers, n,
		       (unsigned long long)(atomic_load(&n_awaits) - a0),
		       stress_elapsed() - t0,
		       bad ? " (records FAILED)" : "");
	}
}

/* ---- phase: cancelling shutdown ----------------------------------------- */

/*
 * Trees as above, cut short by weft_pool_shutdown(WEFT_SHUTDOWN_CANCEL)
 * once @quota awaits have been made: queued tasks (and children tasks
 * submit from then on) complete CANCELLED without running, running ones
 * see the cancel in their waits, suspended ones are woken. Every record
 * must still be consistent, and the shutdown must finish: a task may be
 * suspended in weft_join() on a forked child that is queued (evacuated),
 * which must run all the same.
 */
static struct weft_pool *stuck_pool; /* a shutdown that did not finish */

static void phase_cancel_shutdown(unsigned rd, uint64_t quota)
{
	round_no = 100 + rd;
	pool_workers = 2;
	memset(recs, 0, rec_cap * sizeof(*recs));
	atomic_store(&rec_next, 0);
	atomic_store(&ids_out, false);
	atomic_store(&round_stop, false);
	atomic_store(&cancellers_stop, false);
	uint64_t a0 = atomic_load(&n_awaits);
	round_target = UINT64_MAX;
	stress_phase("cancelling shutdown %u: %u workers, after %llu awaits",
		     rd + 1, pool_workers, (unsigned long long)quota);
	atomic_store(&cx_phase, true);
	double t0 = stress_elapsed();
	pool = stress_pool(pool_workers, "asynccx");
	struct stress_threads *c =
		stress_threads_start(1, canceller, NULL, "canceller");
	struct stress_threads *p =
		stress_threads_start(2, producer, NULL, "producer");
	int64_t until = weft_now() + 60 * (int64_t)1000000000;
	while (atomic_load(&n_awaits) < a0 + quota &&
	       !atomic_load(&ids_out) && weft_now() < until)
		stress_sleep_ns(1000000);
	atomic_store(&pool_cancelling, true);
	stress_phase("cancelling shutdown: shutdown");
	int rc = weft_pool_shutdown(pool, WEFT_SHUTDOWN_CANCEL,
				    weft_now() + 10 * (int64_t)1000000000);
	if (rc == -ETIMEDOUT) {
		/* What is stuck: tasks that started and did not finish, and
		 * forked children that never ran (nor were joined). */
		size_t n = atomic_load(&rec_next), unfinished = 0, unrun = 0;
		if (n > rec_cap)
			n = rec_cap;
		for (size_t id = 0; id < n; id++) {
			struct arec *r = &recs[id];
			if (!(atomic_load(&r->flags) & A_CREATED))
				continue;
			if (atomic_load(&r->started) &&
			    !atomic_load(&r->finished))
				unfinished++;
			if (atomic_load(&r->kind) == KIND_FORK &&
			    !atomic_load(&r->started) &&
			    !atomic_load(&r->completed))
				unrun++;
		}
		stress_fail("cancelling shutdown: not finished 10 s after "
			    "weft_pool_shutdown(WEFT_SHUTDOWN_CANCEL): %zu "
			    "tasks started and not finished, %zu forked "
			    "children never ran nor were joined; the pool is "
			    "left as it is",
			    unfinished, unrun);
		atomic_store(&abandon, true);
	} else {
		STRESS_CHECK(rc == 0, "cancelling shutdown = %d", rc);
	}
	stress_threads_join(p);
	atomic_store(&cancellers_stop, true);
	stress_threads_join(c);
	stress_table_clear();
	atomic_store(&cx_phase, false);
	if (atomic_load(&abandon)) {
		/* It cannot be destroyed: leave it, reachable (no leak report
		 * on top of the failure). */
		stuck_pool = pool;
		pool = NULL;
		atomic_store(&pool_cancelling, false);
		return;
	}
	weft_pool_destroy(pool);
	pool = NULL;
	size_t n = atomic_load(&rec_next);
	if (n > rec_cap)
		n = rec_cap;
	size_t bad = verify_round(n);
	atomic_store(&pool_cancelling, false);
	printf("stress_async: cancelling shutdown %u: %zu tasks, %llu awaits, "
	       "%.1f s%s\n",
	       rd + 1, n, (unsigned long long)(atomic_load(&n_awaits) - a0),
	       stress_elapsed() - t0, bad ? " (records FAILED)" : "");
}

/* ---- phase: wake -------------------------------------------------------- */

/*
 * The latch: a task suspended in a long sleep. Waiting for it never ends
 * unless the waiter is cancelled, or the latch is (at the end).
 */
static struct weft_future *latch;
static _Atomic bool latch_started;
static _Atomic int armed;    /* the scenario's waiter is about to wait */
static _Atomic int inner_rc; /* what the inner wait returned */
static _Atomic int shield_rc2;

static int latch_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&latch_started, true);
	int rc = weft_sleep(600 * (int64_t)1000000000);
	return rc == -ECANCELED ? -ECANCELED : 0;
}

static int wait_latch(void)
{
	atomic_store(&armed, 1);
	int rc = weft_future_wait(latch);
	atomic_store(&inner_rc, rc);
	return rc;
}

static int sc_future(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return wait_latch();
}

static int sc_sleep(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&armed, 1);
	int rc = weft_sleep(600 * (int64_t)1000000000);
	atomic_store(&inner_rc, rc);
	return rc;
}

static int kid_wait_latch(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return wait_latch();
}

static int sc_group(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct weft_group *g = NULL;
	if (weft_group_create(pool, 0, WEFT_FOREVER, &g) != 0)
		return -ENOMEM;
	int rc = weft_group_spawn(g, kid_wait_latch, NULL, NULL);
	STRESS_CHECK(rc == 0, "group_spawn = %d", rc);
	rc = weft_group_wait(g, WEFT_FOREVER);
	weft_group_destroy(g);
	return rc;
}

static int fork_child_wait_latch(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return wait_latch();
}

/* The parent suspends once with the child unjoined: the child is
 * evacuated and runs on another fiber. */
static int sc_fork_evac(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct weft_spawn sp;
	weft_spawn(&sp, fork_child_wait_latch, NULL);
	weft_sleep(100000);
	return weft_join(&sp, NULL);
}

static int nop_child(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 0;
}

/* The child is stolen: the parent keeps spawning (which shares its older
 * children with a thief that asked) until a thief runs it. */
static int sc_fork_steal(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct weft_spawn sp, d;
	weft_spawn(&sp, fork_child_wait_latch, NULL);
	int64_t end = weft_now() + 1000000000;
	while (!atomic_load(&armed) && weft_now() < end) {
		weft_spawn(&d, nop_child, NULL);
		stress_spin_ns(20000);
		weft_join(&d, NULL);
	}
	return weft_join(&sp, NULL);
}

/* A shielded wait must not be ended by the cancel; the next wait after the
 * shield must see it. */
static int sc_shield(void *arg, void **result)
{
	(void)arg;
	(void)result;
	weft_cancel_shield_push();
	atomic_store(&armed, 1);
	int rc = weft_future_wait_until(latch, weft_now() + 300000000);
	atomic_store(&inner_rc, rc);
	STRESS_CHECK(!weft_task_cancelled(),
		     "weft_task_cancelled() true inside a shield");
	weft_cancel_shield_pop();
	atomic_store(&shield_rc2, weft_sleep(1000000));
	return -ECANCELED;
}

struct scenario {
	const char *name;
	weft_task_fn fn;
	int want_inner; /* the inner wait's result after the cancel */
	int64_t min_ns; /* the cancel may not end it before this */
};

static const struct scenario scenarios[] = {
	{"future wait", sc_future, -ECANCELED, 0},
	{"sleep", sc_sleep, -ECANCELED, 0},
	{"group wait (child waits)", sc_group, -ECANCELED, 0},
	{"forked child (evacuated) waits", sc_fork_evac, -ECANCELED, 0},
	{"forked child (stolen) waits", sc_fork_steal, -ECANCELED, 0},
	{"shielded wait", sc_shield, -ETIMEDOUT, 250000000},
};

static void phase_wake(unsigned reps)
{
	const size_t ns = sizeof(scenarios) / sizeof(scenarios[0]);
	unsigned stuck[sizeof(scenarios) / sizeof(scenarios[0])] = {0};
	struct weft_future *late[64];
	unsigned nlate = 0;

	stress_phase("wake: %u x %zu cancel-while-suspended scenarios", reps,
		     ns);
	pool_workers = 2;
	pool = stress_pool(2, "wake");
	atomic_store(&latch_started, false);
	int rc = weft_submit(pool, latch_task, NULL, &latch);
	STRESS_CHECK(rc == 0, "latch submit = %d", rc);
	while (!atomic_load(&latch_started))
		sched_yield();

	for (unsigned rep = 0; rep < reps; rep++) {
		for (size_t s = 0; s < ns; s++) {
			const struct scenario *sc = &scenarios[s];
			if (stuck[s])
				continue; /* once is enough to know */
			stress_phase("wake: %s (%u)", sc->name, rep);
			atomic_store(&armed, 0);
			atomic_store(&inner_rc, 1);
			atomic_store(&shield_rc2, 1);
			struct weft_future *f = NULL;
			rc = weft_submit(pool, sc->fn, NULL, &f);
			STRESS_CHECK(rc == 0, "submit = %d", rc);
			if (rc)
				continue;
			int64_t until = weft_now() + 2000000000;
			while (!atomic_load(&armed) && weft_now() < until)
				stress_sleep_ns(100000);
			STRESS_CHECK(atomic_load(&armed),
				     "%s: the waiter never got to its wait",
				     sc->name);
			stress_sleep_ns(20000000); /* let it suspend */
			int64_t t0 = weft_now();
			int c = weft_future_cancel(f);
			STRESS_CHECK(c == -EBUSY, "%s: cancel = %d", sc->name,
				     c);
			int w = weft_future_wait_until(f, t0 + 2000000000);
			int64_t dt = weft_now() - t0;
			stress_progress();
			if (w == -ETIMEDOUT) {
				stuck[s]++;
				stress_fail("%s: a cancel did not end the wait "
					    "the task was suspended in (still "
					    "waiting 2 s later)",
					    sc->name);
				if (nlate < 64)
					late[nlate++] = f;
				else {
					weft_future_unref(f);
				}
				/* release it, and everything else waiting */
				weft_future_cancel(latch);
				weft_future_wait(latch);
				weft_future_unref(latch);
				atomic_store(&latch_started, false);
				rc = weft_submit(pool, latch_task, NULL,
						 &latch);
				while (!rc && !atomic_load(&latch_started))
					sched_yield();
				continue;
			}
			STRESS_CHECK(w == 0, "%s: wait = %d", sc->name, w);
			int in = atomic_load(&inner_rc);
			STRESS_CHECK(in == sc->want_inner,
				     "%s: the inner wait returned %d, want %d",
				     sc->name, in, sc->want_inner);
			STRESS_CHECK(dt >= sc->min_ns,
				     "%s: the cancel ended it after %.1f ms",
				     sc->name, (double)dt / 1e6);
			STRESS_CHECK(weft_future_error(f) == -ECANCELED,
				     "%s: the task's outcome is %d", sc->name,
				     weft_future_error(f));
			if (sc->fn == sc_shield)
				STRESS_CHECK(atomic_load(&shield_rc2) ==
						     -ECANCELED,
					     "shield: the wait after the pop "
					     "returned %d",
					     atomic_load(&shield_rc2));
			stress_log("wake: %s: ended %.2f ms after the cancel",
				   sc->name, (double)dt / 1e6);
			weft_future_unref(f);
		}
	}
	weft_future_cancel(latch);
	weft_future_wait(latch);
	weft_future_unref(latch);
	latch = NULL;
	for (unsigned i = 0; i < nlate; i++) {
		weft_future_wait(late[i]);
		weft_future_unref(late[i]);
	}
	weft_pool_destroy(pool);
	pool = NULL;
	for (size_t s = 0; s < ns; s++)
		if (stuck[s])
			printf("stress_async: wake: %s: the cancel did not end "
			       "the wait (further repetitions skipped)\n",
			       scenarios[s].name);
}

/* ---- main --------------------------------------------------------------- */

static void dump(int fd)
{
	stress_dprintf(fd,
		       "  round %u, awaits %llu (round target %llu), tasks "
		       "%llu, ids %zu/%zu, round_stop %d\n",
		       round_no, (unsigned long long)atomic_load(&n_awaits),
		       (unsigned long long)round_target,
		       (unsigned long long)atomic_load(&n_tasks),
		       atomic_load(&rec_next), rec_cap,
		       (int)atomic_load(&round_stop));
}

int main(int argc, char **argv)
{
	stress_init(argc, argv, "stress_async");
	stress_set_dump(dump);
	stress_table_init(32);

	/*
	 * The await target. 10 million awaits is --scale=1000. The default
	 * (100%: 1 million awaits) is what fits in about 3-4 minutes under
	 * gcc 12's ThreadSanitizer with -Dforce_migration=true on 2 cores,
	 * where an await costs about 0.2 ms (mostly the runtime's fiber
	 * create and destroy that every suspension does); clang 14's TSan
	 * runs it about 6 times faster, a build without sanitizers about 50
	 * times.
	 */
	uint64_t target = stress_scaled(1000000, 20000);
	unsigned rounds = (unsigned)stress_scaled(8, 2);
	if (rounds > 8)
		rounds = 8;
	unsigned reps = (unsigned)stress_scaled(4, 2);
	if (reps > 4)
		reps = 4;
	/* A task makes at least one await, so a round needs fewer ids than
	 * awaits; the slack covers the trees still running at the stop. */
	rec_cap = (size_t)(target / rounds) + 200000;
	recs = calloc(rec_cap, sizeof(*recs));
	if (!recs) {
		fprintf(stderr, "stress_async: out of memory\n");
		return STRESS_FAIL;
	}

	phase_wake(reps);
	phase_trees(target, rounds);
	for (unsigned i = 0; i < 4 && !atomic_load(&abandon); i++)
		phase_cancel_shutdown(i, target / rounds / 8);

	printf("stress_async: %llu awaits in tasks (%llu outside waits), %llu "
	       "task bodies: %llu submitted children (%llu detached), %llu "
	       "forks, %llu groups; %llu timeouts, %llu tasks saw a cancel, "
	       "cancels: %llu returned 0, %llu -EBUSY, %llu -EALREADY; %llu "
	       "shields, %llu peeks; %llu channels carried %llu items\n",
	       (unsigned long long)atomic_load(&n_awaits),
	       (unsigned long long)atomic_load(&n_outside_waits),
	       (unsigned long long)atomic_load(&n_tasks),
	       (unsigned long long)atomic_load(&n_subs),
	       (unsigned long long)atomic_load(&n_detached),
	       (unsigned long long)atomic_load(&n_forks),
	       (unsigned long long)atomic_load(&n_groups),
	       (unsigned long long)atomic_load(&n_timeouts),
	       (unsigned long long)atomic_load(&n_saw_cancel),
	       (unsigned long long)atomic_load(&n_cancel0),
	       (unsigned long long)atomic_load(&n_cancelbusy),
	       (unsigned long long)atomic_load(&n_cancelalready),
	       (unsigned long long)atomic_load(&n_shields),
	       (unsigned long long)atomic_load(&n_peeks),
	       (unsigned long long)atomic_load(&n_chans),
	       (unsigned long long)atomic_load(&n_chan_items));
	STRESS_CHECK(atomic_load(&n_awaits) >= target,
		     "%llu awaits, fewer than the target %llu",
		     (unsigned long long)atomic_load(&n_awaits),
		     (unsigned long long)target);
	free(recs);
	int rc = stress_finish();
	if (stuck_pool) {
		/* A shutdown that never finished holds suspended tasks and
		 * their futures: skip the exit-time leak check, which would
		 * only report them. */
		fflush(stdout);
		_exit(rc);
	}
	return rc;
}
