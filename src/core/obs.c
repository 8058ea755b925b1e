/*
 * core/obs.c - observability: weft_pool_stats(), task events, the trace and
 * its JSON writer, slow-task reports (obs.h, weft/obs.h).
 *
 * The trace format is Chrome's trace-event JSON ("Trace Event Format",
 * Google, docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU),
 * which Perfetto's UI and chrome://tracing open: "B"/"E" duration events
 * nest per thread (tid), "b"/"e" async events pair by (cat, id) and may
 * overlap, "M" events name the threads. Times are in microseconds.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/io.h"
#include "weft/obs.h"
#include "core/future.h"
#include "core/inject.h"
#include "core/obs.h"
#include "core/pool.h"
#include "core/spawn.h"
#include "fiber/fiber.h"
#include "io/io.h"

/* ---- set-up ------------------------------------------------------------ */

static int buf_init(struct weft__trace_buf *b, size_t cap)
{
	b->ev = calloc(cap, sizeof(*b->ev));
	b->cap = cap;
	b->n = 0;
	return b->ev ? 0 : -ENOMEM;
}

int weft__obs_init(struct weft_pool *pool, const struct weft_pool_options *o)
{
	struct weft__obs *ob;
	const char *path = getenv("WEFT_TRACE");
	const char *slow = getenv("WEFT_SLOW_TASK_MS");
	size_t cap = o->trace_events;
	int64_t slow_ns = o->slow_task_ns;

	if (slow_ns < 0)
		return -EINVAL;
	if (path && !*path)
		path = NULL;
	if (path && !cap)
		cap = WEFT_TRACE_EVENTS_DEFAULT;
	if (!slow_ns && slow && *slow) {
		double ms = strtod(slow, NULL);

		if (ms > 0)
			slow_ns = (int64_t)(ms * 1e6);
	}
	for (unsigned i = 0; i < pool->nworkers; i++)
		pool->workers[i].stats_on = !o->no_stats;
	if (!o->on_task_event && !cap && !slow_ns)
		return 0; /* nothing to keep: pool->o stays NULL */
	ob = calloc(1, sizeof(*ob));
	if (!ob)
		return -ENOMEM;
	ob->hook = o->on_task_event;
	ob->hook_arg = o->task_hook_arg;
	ob->slow_ns = slow_ns;
	ob->slow_fn = o->on_slow_task;
	ob->slow_arg = o->slow_task_arg;
	ob->t0 = weft_now();
	pthread_mutex_init(&ob->lock, NULL);
	if (cap) {
		ob->bufs = calloc(pool->nworkers, sizeof(*ob->bufs));
		if (!ob->bufs || buf_init(&ob->shared, cap) != 0)
			goto nomem;
		for (unsigned i = 0; i < pool->nworkers; i++) {
			if (buf_init(&ob->bufs[i], cap) != 0)
				goto nomem;
			pool->workers[i].trace = &ob->bufs[i];
		}
		if (path && !(ob->path = strdup(path)))
			goto nomem;
	}
	pool->o = ob;
	pool->obs = (ob->hook ? OBS_HOOK : 0) | (cap ? OBS_TRACE : 0) |
		    (slow_ns ? OBS_SLOW : 0);
	return 0;
nomem:
	if (ob->bufs)
		for (unsigned i = 0; i < pool->nworkers; i++) {
			free(ob->bufs[i].ev);
			pool->workers[i].trace = NULL;
		}
	free(ob->bufs);
	free(ob->shared.ev);
	pthread_mutex_destroy(&ob->lock);
	free(ob);
	return -ENOMEM;
}

static int trace_write(struct weft_pool *pool, const char *path);

void weft__obs_fini(struct weft_pool *pool)
{
	struct weft__obs *ob = pool->o;

	if (!ob)
		return;
	if (ob->path) {
		int err = trace_write(pool, ob->path);

		if (err)
			fprintf(stderr, "weft: WEFT_TRACE: cannot write %s: %s\n",
				ob->path, strerror(-err));
	}
	if (ob->bufs)
		for (unsigned i = 0; i < pool->nworkers; i++)
			free(ob->bufs[i].ev);
	free(ob->bufs);
	free(ob->shared.ev);
	free(ob->path);
	pthread_mutex_destroy(&ob->lock);
	free(ob);
	pool->o = NULL;
	pool->obs = 0;
}

/* ---- recording --------------------------------------------------------- */

static inline void put(struct weft__trace_buf *b, uint32_t kind, uint64_t id,
		       void *fn, uint32_t aux, int64_t ts)
{
	struct weft__tev *e = &b->ev[b->n++ % b->cap];

	e->ts = ts;
	e->id = id;
	e->fn = fn;
	e->kind = kind;
	e->aux = aux;
}

static void put_shared(struct weft__obs *ob, uint32_t kind, uint64_t id,
		       void *fn, uint32_t aux, int64_t ts)
{
	pthread_mutex_lock(&ob->lock);
	put(&ob->shared, kind, id, fn, aux, ts);
	pthread_mutex_unlock(&ob->lock);
}

/* The slow-task clock: a run holds the worker from the start of an
 * outermost task, or a resume, to the end of that task or a suspend. */
static void slice_open(struct weft__worker *w, void *fn)
{
	if (w->slice_t0 == 0) {
		w->slice_t0 = weft_now();
		w->slice_fn = fn;
	}
}

static void symbol(void *fn, char *buf, size_t len)
{
	Dl_info di;

	if (fn && dladdr(fn, &di) && di.dli_sname && di.dli_saddr == fn)
		snprintf(buf, len, "%s", di.dli_sname);
	else
		snprintf(buf, len, "fn %p", fn);
}

static void slice_close(struct weft__worker *w)
{
	struct weft__obs *ob = w->pool->o;
	int64_t ns;

	if (w->slice_t0 == 0)
		return;
	ns = weft_now() - w->slice_t0;
	w->slice_t0 = 0;
	if (ns < ob->slow_ns)
		return;
	if (ob->slow_fn) {
		ob->slow_fn(w->slice_fn, ns, (int)w->index, ob->slow_arg);
	} else {
		char name[128];

		symbol(w->slice_fn, name, sizeof(name));
		fprintf(stderr,
			"weft: slow task: %s ran %.3f ms on worker %u without "
			"waiting (threshold %.3f ms), holding its worker; move "
			"blocking calls to weft_run_blocking() or split the "
			"work\n",
			name, ns / 1e6, w->index, ob->slow_ns / 1e6);
	}
}

void weft__obs_started(struct weft__worker *w, struct weft_future *f,
		       void *fn, void *arg)
{
	uint32_t obs = w->pool->obs;

	if (obs & OBS_SLOW)
		slice_open(w, fn);
	if (obs & OBS_TRACE)
		put(w->trace, TEV_BEGIN, (uintptr_t)f, fn, 0, weft_now());
	if (obs & OBS_HOOK)
		weft__obs_hook(w->pool->o, WEFT_TASK_STARTED, f, fn, arg,
			       (int)w->index);
}

void weft__obs_finished(struct weft__worker *w, struct weft_future *f,
			void *fn, void *arg, bool outermost)
{
	uint32_t obs = w->pool->obs;

	if (obs & OBS_HOOK)
		weft__obs_hook(w->pool->o, WEFT_TASK_FINISHED, f, fn, arg,
			       (int)w->index);
	if (obs & OBS_TRACE)
		put(w->trace, TEV_END, (uintptr_t)f, fn, 0, weft_now());
	if ((obs & OBS_SLOW) && outermost)
		slice_close(w);
}

/* The task a fiber runs, for its suspend and resume events: the innermost
 * one, and the outermost (whose run the slow-task clock times). */
static struct weft_future *outermost_of(struct weft_future *t)
{
	while (t && t->waiting_in)
		t = t->waiting_in;
	return t;
}

void weft__obs_suspend(struct weft__worker *w, struct weft__fiber *self)
{
	uint32_t obs = w->pool->obs;
	struct weft_future *t = self->current;
	void *fn = NULL, *arg = NULL;

	if (t)
		weft__obs_task_fn(t, &fn, &arg);
	if (obs & OBS_HOOK)
		weft__obs_hook(w->pool->o, WEFT_TASK_SUSPENDED, t, fn, arg,
			       (int)w->index);
	if (obs & OBS_TRACE)
		put(w->trace, TEV_SUSPEND, (uintptr_t)self, fn, 0, weft_now());
	if (obs & OBS_SLOW)
		slice_close(w);
}

void weft__obs_resume(struct weft__worker *w, struct weft__fiber *self)
{
	uint32_t obs = w->pool->obs;
	struct weft_future *t = self->current;
	void *fn = NULL, *arg = NULL;

	if (t)
		weft__obs_task_fn(t, &fn, &arg);
	if (obs & OBS_SLOW) {
		struct weft_future *top = outermost_of(t);
		void *tfn = NULL, *targ;

		if (top)
			weft__obs_task_fn(top, &tfn, &targ);
		slice_open(w, tfn);
	}
	if (obs & OBS_TRACE)
		put(w->trace, TEV_RESUME, (uintptr_t)self, fn, 0, weft_now());
	if (obs & OBS_HOOK)
		weft__obs_hook(w->pool->o, WEFT_TASK_RESUMED, t, fn, arg,
			       (int)w->index);
}

void weft__obs_park(struct weft__worker *w, bool wake)
{
	if (w->pool->obs & OBS_TRACE)
		put(w->trace, wake ? TEV_UNPARK : TEV_PARK, 0, NULL, 0,
		    weft_now());
}

void weft__obs_io(struct weft_pool *pool, uint8_t opcode, const void *op,
		  int64_t t_submit)
{
	if (pool->obs & OBS_TRACE)
		put_shared(pool->o, TEV_IO, (uintptr_t)op,
			   (void *)(intptr_t)t_submit, opcode, weft_now());
}

void weft__obs_io_batch(struct weft_pool *pool, unsigned kind,
			int64_t t_start, unsigned n)
{
	if (pool->obs & OBS_TRACE)
		put_shared(pool->o, TEV_IO_BATCH, kind,
			   (void *)(intptr_t)t_start, n, weft_now());
}

/* ---- stats ------------------------------------------------------------- */

static void worker_stats(struct weft__worker *w, struct weft_worker_stats *s)
{
	const struct weft__wstats *c = &w->stats;

#define LD(x) atomic_load_explicit(&c->x, memory_order_relaxed)
	s->tasks_run = LD(tasks_run);
	s->tasks_completed = LD(tasks_completed);
	s->submitted = LD(submitted);
	s->steals = LD(steals);
	s->steal_failures = LD(steal_failures);
	s->inject_taken = LD(inject_taken);
	s->parks = LD(parks);
	s->wakeups = LD(wakeups);
	s->suspends = LD(suspends);
	s->resumes = LD(resumes);
	s->io_submitted = LD(io_submitted);
	s->fibers_cached = LD(fibers_cached);
#undef LD
	s->deque_depth = weft__deque_size(&w->deque);
}

static void add(struct weft_worker_stats *t, const struct weft_worker_stats *s)
{
	t->tasks_run += s->tasks_run;
	t->tasks_completed += s->tasks_completed;
	t->submitted += s->submitted;
	t->steals += s->steals;
	t->steal_failures += s->steal_failures;
	t->inject_taken += s->inject_taken;
	t->parks += s->parks;
	t->wakeups += s->wakeups;
	t->suspends += s->suspends;
	t->resumes += s->resumes;
	t->io_submitted += s->io_submitted;
	t->deque_depth += s->deque_depth;
	t->fibers_cached += s->fibers_cached;
}

WEFT_API int weft_pool_stats(struct weft_pool *pool,
			     struct weft_pool_stats *out,
			     struct weft_worker_stats *per_worker, unsigned n)
{
	struct weft__io_counts io;
	uint64_t pushed, fibers, overflow = 0, nfree;

	if (!pool || !out || (!per_worker && n))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->workers = pool->nworkers;
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct weft_worker_stats s;

		worker_stats(&pool->workers[i], &s);
		overflow += atomic_load_explicit(
			&pool->workers[i].stats.inject_overflow,
			memory_order_relaxed);
		add(&out->total, &s);
		if (i < n)
			per_worker[i] = s;
	}
	/* Outside submissions: what reached the inject lanes, less the
	 * suspended tasks queued there, the workers' overflow, and the
	 * rejected (counted, then refused at shutdown). */
	pushed = weft__inject_pushed(&pool->inject);
	fibers = weft__inject_fibers(&pool->inject);
	{
		uint64_t rej = atomic_load(&pool->rejected);
		uint64_t minus = fibers + overflow + rej;
		uint64_t taken = out->total.inject_taken;

		out->submitted_outside = pushed > minus ? pushed - minus : 0;
		out->inject_depth = pushed > rej + taken ? pushed - rej - taken
							 : 0;
	}
	out->submitted = out->total.submitted + out->submitted_outside;
	out->completed = out->total.tasks_completed;

	pthread_mutex_lock(&pool->fiber_lock);
	nfree = pool->fiber_nfree;
	pthread_mutex_unlock(&pool->fiber_lock);
	out->fibers = atomic_load(&pool->fibers_mapped);
	/* Read while fibers move between caches and the list, the sum can
	 * count one twice: keep the identity fibers = in use + pooled. */
	out->fibers_pooled = nfree + out->total.fibers_cached;
	if (out->fibers_pooled > out->fibers)
		out->fibers_pooled = out->fibers;
	out->fibers_in_use = out->fibers > out->fibers_pooled
				     ? out->fibers - out->fibers_pooled
				     : 0;
	out->stack_bytes = atomic_load(&pool->stack_bytes);

	weft__io_counts(pool, &io);
	out->io_submitted = io.io_submitted;
	out->io_completed = io.io_completed;
	out->io_in_flight = io.io_submitted > io.io_completed
				    ? io.io_submitted - io.io_completed
				    : 0;
	out->blocking_in_flight = io.blocking_in_flight;
	out->blocking_threads = io.blocking_threads;
	/* Every worker has the same setting (weft__obs_init()). */
	return pool->workers[0].stats_on ? 0 : -ENOTSUP;
}

/* ---- the JSON writer --------------------------------------------------- */

/* An event with the track it belongs to, for the merge. */
struct mev {
	struct weft__tev e;
	uint32_t track;
	uint32_t seq; /* order within its buffer: ties keep it */
};

static int mev_cmp(const void *a, const void *b)
{
	const struct mev *x = a, *y = b;

	/* A lexicographic key, so the order is total: time; then suspends
	 * first (a resume at the same nanosecond on another track follows
	 * its suspend causally; two events of one track are never that
	 * close); then track and buffer order. */
	int rx = x->e.kind != TEV_SUSPEND, ry = y->e.kind != TEV_SUSPEND;

	if (x->e.ts != y->e.ts)
		return x->e.ts < y->e.ts ? -1 : 1;
	if (rx != ry)
		return rx - ry;
	if (x->track != y->track)
		return x->track < y->track ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Slices open on a track, or saved under a suspended fiber. */
struct slice {
	void *fn;
	uint64_t task;
};

struct stack {
	struct slice *s;
	size_t n, cap;
};

static int stack_push(struct stack *st, void *fn, uint64_t task)
{
	if (st->n == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 8;
		struct slice *s = realloc(st->s, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		st->s = s;
		st->cap = cap;
	}
	st->s[st->n++] = (struct slice){fn, task};
	return 0;
}

/* Suspended fibers: open addressing on the fiber address. */
struct parked {
	uint64_t fiber; /* 0: free slot */
	uint64_t wait;	/* the async id of its wait */
	void *fn;	/* the task that waits, for the wait's name */
	unsigned track; /* where it began */
	struct stack st;
};

struct writer {
	FILE *fp;
	int64_t t0;
	bool first;
	unsigned ntracks; /* the workers, then the io thread */
	struct stack *tracks;
	struct parked *fib;
	size_t nfib, capfib;
	uint64_t next_id;
	/* Function names: a small cache for dladdr(). */
	struct name {
		void *fn;
		char s[96];
	} names[512];
	int err;
};

static const char *name_of(struct writer *wr, void *fn)
{
	struct name *n = &wr->names[((uintptr_t)fn >> 4) % 512];

	if (n->fn != fn || !n->s[0]) {
		n->fn = fn;
		symbol(fn, n->s, sizeof(n->s));
	}
	return n->s;
}

static void emit(struct writer *wr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void emit(struct writer *wr, const char *fmt, ...)
{
	va_list ap;

	fputs(wr->first ? "\n" : ",\n", wr->fp);
	wr->first = false;
	va_start(ap, fmt);
	vfprintf(wr->fp, fmt, ap);
	va_end(ap);
}

static double us(struct writer *wr, int64_t ts)
{
	return (double)(ts - wr->t0) / 1e3;
}

/* Symbol names are C identifiers and "fn 0x..." strings: nothing in them
 * needs escaping in JSON. */
static void emit_b(struct writer *wr, unsigned track, int64_t ts, void *fn,
		   uint64_t task)
{
	emit(wr,
	     "{\"ph\":\"B\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,\"name\":\"%s\","
	     "\"cat\":\"task\",\"args\":{\"task\":\"0x%" PRIx64 "\"}}",
	     track, us(wr, ts), name_of(wr, fn), task);
}

static void emit_e(struct writer *wr, unsigned track, int64_t ts)
{
	emit(wr, "{\"ph\":\"E\",\"pid\":1,\"tid\":%u,\"ts\":%.3f}", track,
	     us(wr, ts));
}

static void emit_async(struct writer *wr, char ph, const char *cat,
		       const char *name, uint64_t id, unsigned track,
		       int64_t ts)
{
	emit(wr,
	     "{\"ph\":\"%c\",\"cat\":\"%s\",\"name\":\"%s\",\"id\":\"0x%" PRIx64
	     "\",\"pid\":1,\"tid\":%u,\"ts\":%.3f}",
	     ph, cat, name, id, track, us(wr, ts));
}

static struct parked *fib_slot(struct writer *wr, uint64_t fiber, bool add)
{
	size_t i;

	if (add && 2 * (wr->nfib + 1) > wr->capfib) {
		size_t cap = wr->capfib ? 2 * wr->capfib : 256;
		struct parked *old = wr->fib, *nf = calloc(cap, sizeof(*nf));

		if (!nf)
			return NULL;
		for (size_t j = 0; j < wr->capfib; j++) {
			if (!old[j].fiber)
				continue;
			for (i = (old[j].fiber >> 6) % cap; nf[i].fiber;
			     i = (i + 1) % cap)
				;
			nf[i] = old[j];
		}
		free(old);
		wr->fib = nf;
		wr->capfib = cap;
	}
	if (!wr->capfib)
		return NULL;
	for (i = (fiber >> 6) % wr->capfib; wr->fib[i].fiber;
	     i = (i + 1) % wr->capfib)
		if (wr->fib[i].fiber == fiber)
			return &wr->fib[i];
	if (!add)
		return NULL;
	wr->fib[i].fiber = fiber;
	wr->nfib++;
	return &wr->fib[i];
}

/* Remove @p (found by fib_slot) keeping the probe chains intact. */
static void fib_remove(struct writer *wr, struct parked *p)
{
	size_t i = (size_t)(p - wr->fib), j = i;

	free(p->st.s);
	memset(p, 0, sizeof(*p));
	wr->nfib--;
	for (;;) {
		size_t k;

		j = (j + 1) % wr->capfib;
		if (!wr->fib[j].fiber)
			return;
		k = (wr->fib[j].fiber >> 6) % wr->capfib;
		/* Move j back to i if its home is not in (i, j]. */
		if ((i < j) ? (k <= i || k > j) : (k <= i && k > j)) {
			wr->fib[i] = wr->fib[j];
			memset(&wr->fib[j], 0, sizeof(wr->fib[j]));
			i = j;
		}
	}
}

static const char *const io_names[] = {
	[IO_NOP] = "nop",	     [IO_TIMEOUT] = "timeout",
	[IO_READ] = "read",	     [IO_WRITE] = "write",
	[IO_READV] = "readv",	     [IO_WRITEV] = "writev",
	[IO_FSYNC] = "fsync",	     [IO_FDATASYNC] = "fdatasync",
	[IO_OPENAT] = "openat",	     [IO_CLOSE] = "close",
	[IO_STATX] = "statx",	     [IO_ACCEPT] = "accept",
	[IO_ACCEPT_MULTI] = "accept_multishot",
	[IO_CONNECT] = "connect",    [IO_RECV] = "recv",
	[IO_SEND] = "send",	     [IO_SHUTDOWN] = "shutdown",
	[IO_POLL] = "poll",
};

static const char *io_name(unsigned op)
{
	if (op < sizeof(io_names) / sizeof(io_names[0]) && io_names[op])
		return io_names[op];
	return "op";
}

static void one(struct writer *wr, const struct mev *m)
{
	const struct weft__tev *e = &m->e;
	struct stack *tr = &wr->tracks[m->track];
	unsigned io_track = wr->ntracks - 1;
	struct parked *p;

	switch (e->kind) {
	case TEV_BEGIN:
		if (stack_push(tr, e->fn, e->id) == 0)
			emit_b(wr, m->track, e->ts, e->fn, e->id);
		break;
	case TEV_END:
		/* Only the slice it closes: one whose begin was overwritten
		 * (or that a lost suspend left elsewhere) is dropped. */
		if (tr->n && tr->s[tr->n - 1].task == e->id) {
			tr->n--;
			emit_e(wr, m->track, e->ts);
		}
		break;
	case TEV_SUSPEND:
		/* Every slice open on the track is the fiber's: close them
		 * all and keep them for its resume. */
		p = fib_slot(wr, e->id, true);
		if (!p)
			break;
		if (p->wait) {
			/* An earlier suspend whose resume fell out of its
			 * ring: end that wait here, drop what it saved. */
			emit_async(wr, 'e', "wait",
				   p->fn ? name_of(wr, p->fn) : "wait", p->wait,
				   p->track, e->ts);
			p->st.n = 0;
		}
		p->wait = ++wr->next_id;
		p->fn = e->fn;
		p->track = m->track;
		while (tr->n) {
			struct slice s = tr->s[--tr->n];

			emit_e(wr, m->track, e->ts);
			/* Saved innermost first; resumed in reverse. */
			stack_push(&p->st, s.fn, s.task);
		}
		emit_async(wr, 'b', "wait",
			   e->fn ? name_of(wr, e->fn) : "wait", p->wait,
			   m->track, e->ts);
		break;
	case TEV_RESUME:
		p = fib_slot(wr, e->id, false);
		if (!p)
			break; /* its suspend was overwritten */
		emit_async(wr, 'e', "wait",
			   e->fn ? name_of(wr, e->fn) : "wait", p->wait,
			   m->track, e->ts);
		/* The track is empty: its previous fiber suspended or went
		 * back to the loop with nothing open. */
		while (p->st.n) {
			struct slice s = p->st.s[--p->st.n];

			if (stack_push(tr, s.fn, s.task) == 0)
				emit_b(wr, m->track, e->ts, s.fn, s.task);
		}
		fib_remove(wr, p);
		break;
	case TEV_PARK:
		if (tr->n == 0 && stack_push(tr, NULL, UINT64_MAX) == 0)
			emit(wr,
			     "{\"ph\":\"B\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,"
			     "\"name\":\"parked\",\"cat\":\"idle\"}",
			     m->track, us(wr, e->ts));
		break;
	case TEV_UNPARK:
		if (tr->n && tr->s[tr->n - 1].task == UINT64_MAX) {
			tr->n--;
			emit_e(wr, m->track, e->ts);
		}
		break;
	case TEV_IO: {
		int64_t t_sub = (int64_t)(intptr_t)e->fn;
		uint64_t id = ++wr->next_id;

		if (!t_sub || t_sub > e->ts)
			t_sub = e->ts;
		emit_async(wr, 'b', "io", io_name(e->aux), id, io_track,
			   t_sub);
		emit_async(wr, 'e', "io", io_name(e->aux), id, io_track,
			   e->ts);
		break;
	}
	case TEV_IO_BATCH: {
		static const char *const kinds[] = {"submit", "reap",
						    "timers"};
		int64_t t = (int64_t)(intptr_t)e->fn;

		if (!t || t > e->ts)
			t = e->ts;
		/* Only the io thread records batches, one after another: a
		 * complete begin/end pair each, never overlapping. A submit
		 * batch does not count its ops. */
		if (e->id == 1)
			emit(wr,
			     "{\"ph\":\"B\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,"
			     "\"name\":\"reap\",\"cat\":\"io\",\"args\":"
			     "{\"cqes\":%u}}",
			     io_track, us(wr, t), e->aux);
		else
			emit(wr,
			     "{\"ph\":\"B\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,"
			     "\"name\":\"%s\",\"cat\":\"io\"}",
			     io_track, us(wr, t), kinds[e->id % 3]);
		emit_e(wr, io_track, e->ts);
		break;
	}
	default:
		break;
	}
}

static size_t buf_count(const struct weft__trace_buf *b)
{
	return b->n < b->cap ? (size_t)b->n : b->cap;
}

static void buf_collect(const struct weft__trace_buf *b, uint32_t track,
			struct mev *out, size_t *k)
{
	uint64_t from = b->n > b->cap ? b->n - b->cap : 0;

	for (uint64_t i = from; i < b->n; i++) {
		out[*k].e = b->ev[i % b->cap];
		out[*k].track = track;
		out[*k].seq = (uint32_t)(i - from);
		(*k)++;
	}
}

static int trace_write(struct weft_pool *pool, const char *path)
{
	struct weft__obs *ob = pool->o;
	struct writer *wr;
	struct mev *all;
	size_t total = 0, k = 0;
	int64_t last;
	int err = 0;

	pthread_mutex_lock(&ob->lock);
	for (unsigned i = 0; i < pool->nworkers; i++)
		total += buf_count(&ob->bufs[i]);
	total += buf_count(&ob->shared);
	all = malloc((total ? total : 1) * sizeof(*all));
	wr = calloc(1, sizeof(*wr));
	if (!all || !wr) {
		pthread_mutex_unlock(&ob->lock);
		free(all);
		free(wr);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < pool->nworkers; i++)
		buf_collect(&ob->bufs[i], i, all, &k);
	/* The shared buffer's events go on the io track (io ops, batches);
	 * none of its kinds uses a worker's slice stack. */
	buf_collect(&ob->shared, pool->nworkers, all, &k);
	pthread_mutex_unlock(&ob->lock);
	qsort(all, k, sizeof(*all), mev_cmp);

	wr->fp = fopen(path, "w");
	if (!wr->fp) {
		err = -errno;
		goto out;
	}
	wr->t0 = ob->t0;
	wr->first = true;
	wr->ntracks = pool->nworkers + 1;
	wr->tracks = calloc(wr->ntracks, sizeof(*wr->tracks));
	if (!wr->tracks) {
		err = -ENOMEM;
		goto out;
	}
	fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":"
	      "\"weft\"},\"traceEvents\":[",
	      wr->fp);
	{
		/* The pool's name is the caller's: keep what JSON allows
		 * unescaped. */
		char name[sizeof(pool->name)];
		size_t j = 0;

		for (size_t i = 0; pool->name[i] && j + 1 < sizeof(name); i++)
			if ((unsigned char)pool->name[i] >= 0x20 &&
			    pool->name[i] != '"' && pool->name[i] != '\\')
				name[j++] = pool->name[i];
		name[j] = '\0';
		emit(wr,
		     "{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\","
		     "\"args\":{\"name\":\"weft pool %s\"}}",
		     name);
	}
	for (unsigned i = 0; i < wr->ntracks; i++) {
		char name[48];

		if (i < pool->nworkers)
			snprintf(name, sizeof(name), "worker %u", i);
		else
			snprintf(name, sizeof(name), "io thread");
		emit(wr,
		     "{\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"name\":"
		     "\"thread_name\",\"args\":{\"name\":\"%s\"}}",
		     i, name);
		emit(wr,
		     "{\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"name\":"
		     "\"thread_sort_index\",\"args\":{\"sort_index\":%u}}",
		     i, i);
	}
	for (size_t i = 0; i < k; i++)
		one(wr, &all[i]);
	/* Close what is still open at the last event: running tasks, and
	 * waits that had not ended. */
	last = k ? all[k - 1].e.ts : ob->t0;
	for (unsigned t = 0; t < wr->ntracks; t++)
		for (; wr->tracks[t].n; wr->tracks[t].n--)
			emit_e(wr, t, last);
	for (size_t i = 0; i < wr->capfib; i++)
		if (wr->fib[i].fiber)
			emit_async(wr, 'e', "wait",
				   wr->fib[i].fn ? name_of(wr, wr->fib[i].fn)
						 : "wait",
				   wr->fib[i].wait, wr->fib[i].track, last);
	fputs("\n]}\n", wr->fp);
	if (ferror(wr->fp))
		err = -EIO;
out:
	if (wr->fp && fclose(wr->fp) != 0 && !err)
		err = -errno;
	if (wr->tracks)
		for (unsigned t = 0; t < wr->ntracks; t++)
			free(wr->tracks[t].s);
	for (size_t i = 0; i < wr->capfib; i++)
		free(wr->fib[i].st.s);
	free(wr->fib);
	free(wr->tracks);
	free(wr);
	free(all);
	return err;
}

WEFT_API int weft_pool_trace_write(struct weft_pool *pool, const char *path)
{
	int err;

	if (!pool || !path)
		return -EINVAL;
	if (!(pool->obs & OBS_TRACE))
		return -ENODATA;
	/* The workers write their buffers without a lock: only once they
	 * have exited may another thread read them. */
	pthread_mutex_lock(&pool->shutdown_lock);
	err = pool->joined ? trace_write(pool, path) : -EBUSY;
	pthread_mutex_unlock(&pool->shutdown_lock);
	return err;
}
