/* weft/io.h must compile alone, as C11 and as C++11 (see meson.build). */
#include <weft/io.h>

int weft_hc_io(void);
int weft_hc_io(void)
{
	int (*rd)(struct weft_pool *, int, void *, size_t, int64_t, int64_t,
		  struct weft_future **) = weft_io_read;
	int (*acc)(struct weft_pool *, int, struct sockaddr *, socklen_t *,
		   int, int64_t, struct weft_future **) = weft_io_accept;
	int64_t (*await)(struct weft_future *) = weft_io_await;
	ssize_t (*exact)(struct weft_pool *, int, void *, size_t, int64_t,
			 int64_t) = weft_io_read_exact;
	struct weft_acceptor *a = 0;

	return (rd != 0) + (acc != 0) + (await != 0) + (exact != 0) +
	       (a == 0) + WEFT_IO_AUTO + WEFT_IO_URING + WEFT_IO_BLOCKING;
}
