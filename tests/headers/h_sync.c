/* weft/sync.h must compile alone, as C11 and as C++11 (see meson.build). */
#include <weft/sync.h>

static struct weft_mutex mu = WEFT_MUTEX_INIT;
static struct weft_cond cond = WEFT_COND_INIT;

int weft_hc_sync(void);
int weft_hc_sync(void)
{
	struct weft_sem sem;
	struct weft_event ev;
	struct weft_wgroup wg;
	struct weft_chan *ch = 0;
	int (*lock)(struct weft_mutex *) = weft_mutex_lock;
	int (*lock_until)(struct weft_mutex *, int64_t) = weft_mutex_lock_until;
	int (*cwait)(struct weft_cond *, struct weft_mutex *) = weft_cond_wait;
	int (*release)(struct weft_sem *, unsigned) = weft_sem_release;
	bool (*is_set)(struct weft_event *) = weft_event_is_set;
	int (*add)(struct weft_wgroup *, int64_t) = weft_wgroup_add;
	int (*create)(size_t, struct weft_chan **) = weft_chan_create;
	int (*send)(struct weft_chan *, void *) = weft_chan_send;
	int (*recv_until)(struct weft_chan *, void **, int64_t) =
		weft_chan_recv_until;

	sem.private_[0] = 0;
	ev.private_[0] = 0;
	wg.private_[0] = 0;
	return (ch == 0) + (lock != 0) + (lock_until != 0) + (cwait != 0) +
	       (release != 0) + (is_set != 0) + (add != 0) + (create != 0) +
	       (send != 0) + (recv_until != 0) + (int)sem.private_[0] +
	       (int)ev.private_[0] + (int)wg.private_[0] +
	       (int)sizeof(mu) + (int)sizeof(cond) +
	       (int)(WEFT_SEM_MAX & 1) + WEFT_EVENT_AUTO_RESET +
	       WEFT_EVENT_SET + (int)(WEFT_WGROUP_MAX & 1);
}
