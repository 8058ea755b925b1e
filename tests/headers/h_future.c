/* weft/future.h must compile alone, as C11 and as C++11 (see meson.build). */
#include <weft/future.h>

int weft_hc_future(void);
int weft_hc_future(void)
{
	enum weft_future_state st = WEFT_FUTURE_PENDING;
	struct weft_as_completed *it = 0;
	weft_callback_fn cb = 0;
	weft_then_fn then = 0;
	size_t failed = 0;
	int (*wait_until)(struct weft_future *, int64_t) =
		weft_future_wait_until;
	int (*wait_all)(struct weft_future *const *, size_t, int64_t,
			size_t *) = weft_future_wait_all;
	int (*when_all)(struct weft_future *const *, size_t,
			struct weft_future **) = weft_when_all;
	int (*on_complete)(struct weft_future *, weft_callback_fn, void *) =
		weft_future_on_complete;
	int (*next)(struct weft_as_completed *, int64_t, size_t *) =
		weft_as_completed_next;

	return (int)st + WEFT_FUTURE_RUNNING + WEFT_FUTURE_DONE +
	       WEFT_FUTURE_FAILED + WEFT_FUTURE_CANCELLED + (it == 0) +
	       (cb == 0) + (then == 0) + (int)failed + (wait_until != 0) +
	       (wait_all != 0) + (when_all != 0) + (on_complete != 0) +
	       (next != 0);
}
