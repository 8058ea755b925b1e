/*
 * sync_chan.c - a bounded channel between 3 producer tasks and main():
 * the producers send numbered items into a channel of 4 slots (they
 * suspend while it is full); a fourth task closes it once they are done
 * (a wait group tells it when); main() receives until the channel is
 * closed and empty.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define MS 1000000 /* nanoseconds */
#define PRODUCERS 3
#define ITEMS 100 /* per producer */

static struct weft_chan *ch;
static struct weft_wgroup producing;

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-err));
		exit(1);
	}
}

static int produce(void *arg, void **result)
{
	uintptr_t first = (uintptr_t)arg * ITEMS;
	int err = 0;

	(void)result;
	/* Items are void *; these are the numbers 1 to 300. */
	for (uintptr_t i = first; i < first + ITEMS && !err; i++)
		err = weft_chan_send(ch, (void *)(i + 1));
	weft_wgroup_done(&producing);
	return err;
}

static int close_when_done(void *arg, void **result)
{
	(void)arg;
	(void)result;
	weft_wgroup_wait(&producing);
	return weft_chan_close(ch); /* receivers drain, then get -EPIPE */
}

int main(void)
{
	struct weft_pool *pool;
	uintptr_t sum = 0, count = 0;
	uintptr_t last[PRODUCERS] = {0};
	int bad = 0, err;
	void *item;

	check(weft_pool_create(NULL, &pool), "weft_pool_create");
	check(weft_chan_create(4, &ch), "weft_chan_create");
	check(weft_wgroup_init(&producing), "weft_wgroup_init");

	/* Nothing there yet: a receive with a deadline gives up. */
	err = weft_chan_recv_until(ch, &item, weft_now() + 1 * MS);
	printf("empty channel: %s\n", strerror(-err));
	bad |= err != -ETIMEDOUT;

	check(weft_wgroup_add(&producing, PRODUCERS), "weft_wgroup_add");
	for (uintptr_t p = 0; p < PRODUCERS; p++)
		check(weft_submit(pool, produce, (void *)p, NULL),
		      "weft_submit");
	check(weft_submit(pool, close_when_done, NULL, NULL), "weft_submit");

	while ((err = weft_chan_recv(ch, &item)) == 0) {
		uintptr_t v = (uintptr_t)item, p = (v - 1) / ITEMS;

		bad |= v <= last[p]; /* each producer's items come in order */
		last[p] = v;
		sum += v;
		count++;
	}
	printf("received %zu items, sum %zu, then: %s\n", (size_t)count,
	       (size_t)sum, strerror(-err));

	weft_pool_destroy(pool);
	weft_chan_destroy(ch);
	check(weft_wgroup_fini(&producing), "weft_wgroup_fini");
	bad |= err != -EPIPE || count != PRODUCERS * ITEMS;
	bad |= sum != (uintptr_t)PRODUCERS * ITEMS *
			      (PRODUCERS * ITEMS + 1) / 2;
	return bad;
}
