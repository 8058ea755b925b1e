/* weft/async.h must compile alone, as C11 and as C++11 (see meson.build). */
#include <weft/async.h>

int weft_hc_async(void);
int weft_hc_async(void)
{
	struct weft_spawn sp;
	void (*spawn)(struct weft_spawn *, weft_task_fn, void *) = weft_spawn;
	int (*join)(struct weft_spawn *, void **) = weft_join;
	int (*yield)(void) = weft_yield;
	int (*sleep_for)(int64_t) = weft_sleep;
	int (*sleep_until)(int64_t) = weft_sleep_until;
	void (*push)(void) = weft_cancel_shield_push;
	void (*pop)(void) = weft_cancel_shield_pop;

	sp.arg_ = 0;
	return (sp.arg_ == 0) + (spawn != 0) + (join != 0) +
	       (yield != 0) + (sleep_for != 0) + (sleep_until != 0) +
	       (push != 0) + (pop != 0) + WEFT_SPAWN_DEPTH;
}
