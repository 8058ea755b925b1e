/*
 * core/locals.h - task-local storage (weft/group.h): an immutable,
 * refcounted table of (key, value) pairs per task, copied on write, so
 * that a new task can share its creator's table by taking a reference
 * (contextvars' copy-on-create at the cost of an atomic increment).
 *
 * Threads: a table is immutable once published; references are atomic.
 */
#ifndef WEFT_CORE_LOCALS_H
#define WEFT_CORE_LOCALS_H

#include <stdatomic.h>
#include <stddef.h>

struct weft__locals {
	_Atomic size_t refs;
	/* The table this one replaced in the same task, kept (with its
	 * reference) until this one is freed; see locals.c. */
	struct weft__locals *retired;
	size_t n;
	struct {
		const void *key;
		void *value;
	} kv[];
};

/* The calling context's table (the running task's, else the thread's),
 * with a new reference, or NULL. For a task being created. */
struct weft__locals *weft__locals_inherit(void);

void weft__locals_unref(struct weft__locals *l);

#endif /* WEFT_CORE_LOCALS_H */
