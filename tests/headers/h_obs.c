/* weft/obs.h must compile alone, as C11 and as C++11 (see meson.build). */
#include <weft/obs.h>

int weft_hc_obs(void);
int weft_hc_obs(void)
{
	int (*st)(struct weft_pool *, struct weft_pool_stats *,
		  struct weft_worker_stats *, unsigned) = weft_pool_stats;
	int (*tw)(struct weft_pool *, const char *) = weft_pool_trace_write;
	struct weft_task_event_info ev = {WEFT_TASK_CREATED, 0, 0, 0, -1};
	weft_task_hook h = 0;
	weft_slow_task_fn s = 0;

	return (st != 0) + (tw != 0) + (h == 0) + (s == 0) + ev.worker +
	       WEFT_TASK_FINISHED;
}
