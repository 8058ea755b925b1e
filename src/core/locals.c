/*
 * core/locals.c - task-local storage (see locals.h and weft/group.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "weft/group.h"
#include "core/future.h"
#include "core/locals.h"
#include "fiber/fiber.h"

/* Outside tasks the table belongs to the thread. Plain threads do not
 * migrate, so direct thread-local access is safe here; inside a task the
 * table is reached through the fiber's current task instead. */
static _Thread_local struct weft__locals *thread_locals;

static struct weft__locals **slot(void)
{
	struct weft__fiber *self = weft__fiber_self();

	if (self)
		return self->current ? &self->current->locals : NULL;
	return &thread_locals;
}

static struct weft__locals *ref(struct weft__locals *l)
{
	if (l)
		atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
	return l;
}

void weft__locals_unref(struct weft__locals *l)
{
	if (l && atomic_fetch_sub_explicit(&l->refs, 1,
					   memory_order_acq_rel) == 1)
		free(l);
}

struct weft__locals *weft__locals_inherit(void)
{
	struct weft__locals **s = slot();

	return s ? ref(*s) : NULL;
}

WEFT_API void *weft_local_get(const weft_local_key *key)
{
	struct weft__locals **s = slot(), *l;

	if (!key || !s || !(l = *s))
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		if (l->kv[i].key == key)
			return l->kv[i].value;
	return NULL;
}

WEFT_API int weft_local_set(const weft_local_key *key, void *value)
{
	struct weft__locals **s = slot(), *old, *l;
	size_t n, i;

	if (!key)
		return -EINVAL;
	if (!s)
		return -EINVAL; /* a worker between tasks: no task to own it */
	old = *s;
	n = old ? old->n : 0;
	for (i = 0; i < n && old->kv[i].key != key; i++)
		;
	/* Copy on write: others may share @old. */
	l = malloc(sizeof(*l) + (n + (i == n)) * sizeof(l->kv[0]));
	if (!l)
		return -ENOMEM;
	atomic_init(&l->refs, 1);
	l->n = n + (i == n);
	if (n)
		memcpy(l->kv, old->kv, n * sizeof(l->kv[0]));
	l->kv[i].key = key;
	l->kv[i].value = value;
	*s = l;
	weft__locals_unref(old);
	return 0;
}
