/* weft/map.h must compile alone, as C11 and as C++11 (see meson.build). */
#include <weft/map.h>

int weft_hc_map(void);
int weft_hc_map(void)
{
	weft_range_fn range = 0;
	weft_map_fn body = 0;
	int (*pfor)(struct weft_pool *, size_t, size_t, size_t, weft_range_fn,
		    void *) = weft_parallel_for;
	int (*map)(struct weft_pool *, const void *, size_t, void *, size_t,
		   size_t, size_t, weft_map_fn, void *) = weft_map;

	return (range == 0) + (body == 0) + (pfor != 0) + (map != 0);
}
