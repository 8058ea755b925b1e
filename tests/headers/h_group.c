/* weft/group.h must compile alone, as C11 and as C++11 (see meson.build). */
#include <weft/group.h>

static struct weft_local_key key;

int weft_hc_group(void);
int weft_hc_group(void)
{
	struct weft_group *g = 0;
	int (*create)(struct weft_pool *, unsigned, int64_t,
		      struct weft_group **) = weft_group_create;
	int (*spawn)(struct weft_group *, weft_task_fn, void *,
		     struct weft_future **) = weft_group_spawn;
	void (*cancel)(struct weft_group *) = weft_group_cancel;
	int (*wait)(struct weft_group *, int64_t) = weft_group_wait;
	void (*destroy)(struct weft_group *) = weft_group_destroy;
	int (*set)(const struct weft_local_key *, void *) = weft_local_set;
	void *(*get)(const struct weft_local_key *) = weft_local_get;

	return (g == 0) + (create != 0) + (spawn != 0) + (cancel != 0) +
	       (wait != 0) + (destroy != 0) + (set != 0) + (get != 0) +
	       (int)sizeof(key) + (int)WEFT_GROUP_COLLECT;
}
