/* weft/task.h must compile alone, as C11 and as C++11 (see meson.build). */
#include <weft/task.h>

int weft_hc_task(void);
int weft_hc_task(void)
{
	struct weft_pool *pool = 0;
	struct weft_future *fut = 0;
	weft_task_fn fn = 0;
	weft_routine_fn routine = 0;
	int (*submit)(struct weft_pool *, weft_task_fn, void *,
		      struct weft_future **) = weft_submit;
	int (*submit_routine)(struct weft_pool *, weft_routine_fn, void *,
			      struct weft_future **) = weft_submit_routine;
	bool (*cancelled)(void) = weft_task_cancelled;

	return (pool == 0) + (fut == 0) + (fn == 0) + (routine == 0) +
	       (submit != 0) + (submit_routine != 0) + (cancelled != 0);
}
