/* weft.h must compile alone, as C11 and as C++11 (see meson.build). */
#include <weft.h>

int weft_hc_umbrella(void);
int weft_hc_umbrella(void)
{
	struct weft_pool_options opts;
	struct weft_future *fut = 0;

	weft_pool_options_init(&opts);
	return (int)opts.workers + (fut == 0) + WEFT_FUTURE_DONE +
	       (int)sizeof(&weft_submit) + (int)sizeof(&weft_map);
}
