/* weft/pool.h must compile alone, as C11 and as C++11 (see meson.build). */
#include <weft/pool.h>

unsigned weft_hc_pool(void);
unsigned weft_hc_pool(void)
{
	struct weft_pool_options opts = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					  0, 0, 0, 0, 0, 0, 0 };
	struct weft_pool *pool = 0;
	weft_worker_hook hook = 0;
	int (*create)(const struct weft_pool_options *, struct weft_pool **) =
		weft_pool_create;
	int (*shutdown)(struct weft_pool *, unsigned, int64_t) =
		weft_pool_shutdown;
	void (*destroy)(struct weft_pool *) = weft_pool_destroy;
	unsigned (*workers)(const struct weft_pool *) = weft_pool_workers;
	int (*index)(void) = weft_worker_index;
	unsigned (*cpus)(void) = weft_cpu_count;
	void (*init)(struct weft_pool_options *) = weft_pool_options_init;

	opts.on_worker_start = hook;
	return opts.workers + (pool == 0) + (create != 0) + (shutdown != 0) +
	       (destroy != 0) + (workers != 0) + (index != 0) + (cpus != 0) +
	       (init != 0) + WEFT_MAX_WORKERS + (unsigned)WEFT_SHUTDOWN_CANCEL;
}
