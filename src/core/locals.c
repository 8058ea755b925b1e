/*
 * core/locals.c - task-local storage (see locals.h and weft/group.h).
 *
 * Readers on other threads. A forked child (weft_spawn) runs as part of
 * its parent task and reads the parent's table, maybe on a thief's thread,
 * while the parent may set a value (which replaces the table). So the
 * table pointer is read and written atomically (acquire/release), and a
 * table replaced by a set is not freed at once: it goes on the task's
 * retired list, freed when the task record is (every child has been joined
 * by then). Sets are rare; a table per set until the task ends is cheap.
 *
 * Thread tables are reached only by their own thread (plain threads do not
 * migrate), and freed at thread exit by a pthread key destructor.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "weft/group.h"
#include "core/future.h"
#include "core/locals.h"
#include "fiber/fiber.h"

/* initial-exec, as the other thread-locals of the library: every task
 * creation from a plain thread reads it (weft__locals_inherit()). */
static _Thread_local struct weft__locals *thread_locals
	__attribute__((tls_model("initial-exec")));
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *l)
{
	weft__locals_unref(l);
}

static void make_key(void)
{
	pthread_key_create(&thread_key, thread_exit);
}

/* Where the calling context's table pointer lives, and whether it is a
 * task's (shared with forked children) or the thread's. */
static struct weft__locals **slot(struct weft_future **task)
{
	struct weft__fiber *self = weft__fiber_self();

	*task = NULL;
	if (self) {
		*task = self->current;
		return self->current ? &self->current->locals : NULL;
	}
	return &thread_locals;
}

static struct weft__locals *load(struct weft__locals **s)
{
	/* acquire: pairs with the release in weft_local_set(), so the table's
	 * contents are visible. */
	return __atomic_load_n(s, __ATOMIC_ACQUIRE);
}

static struct weft__locals *ref(struct weft__locals *l)
{
	if (l)
		atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
	return l;
}

void weft__locals_unref(struct weft__locals *l)
{
	while (l && atomic_fetch_sub_explicit(&l->refs, 1,
					      memory_order_acq_rel) == 1) {
		struct weft__locals *next = l->retired;

		free(l);
		l = next;
	}
}

struct weft__locals *weft__locals_inherit(void)
{
	struct weft_future *task;
	struct weft__locals **s = slot(&task);

	return s ? ref(load(s)) : NULL;
}

WEFT_API void *weft_local_get(const struct weft_local_key *key)
{
	struct weft_future *task;
	struct weft__locals **s = slot(&task), *l;

	if (!key || !s || !(l = load(s)))
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		if (l->kv[i].key == key)
			return l->kv[i].value;
	return NULL;
}

WEFT_API int weft_local_set(const struct weft_local_key *key, void *value)
{
	struct weft_future *task;
	struct weft__locals **s = slot(&task), *old, *l;
	size_t n, i;

	if (!key || !s)
		return -EINVAL; /* no key, or a worker between tasks */
	old = load(s);
	n = old ? old->n : 0;
	for (i = 0; i < n && old->kv[i].key != key; i++)
		;
	/* Copy on write: others may share @old. */
	l = malloc(sizeof(*l) + (n + (i == n)) * sizeof(l->kv[0]));
	if (!l)
		return -ENOMEM;
	atomic_init(&l->refs, 1);
	l->n = n + (i == n);
	l->retired = NULL;
	if (n)
		memcpy(l->kv, old->kv, n * sizeof(l->kv[0]));
	l->kv[i].key = key;
	l->kv[i].value = value;
	if (task && old) {
		/* Forked children may be reading @old right now: keep it
		 * (and our reference) until the task record goes. */
		l->retired = old;
	} else if (!task) {
		pthread_once(&thread_key_once, make_key);
		pthread_setspecific(thread_key, l);
		weft__locals_unref(old);
	}
	/* release: publishes the table's contents with the pointer. */
	__atomic_store_n(s, l, __ATOMIC_RELEASE);
	return 0;
}
