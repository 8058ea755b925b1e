/*
 * io_blocking.c - blocking calls from tasks, on a pool of one worker.
 *
 * resolve() looks "localhost" up with getaddrinfo(), which has no
 * asynchronous form, through weft_run_blocking(): the lookup runs on a
 * thread of the pool's blocking-call pool and the task suspends until it
 * returns. reader() does a blocking read() of a pipe the same way, and
 * writer(), submitted after it to the same single worker, fills the pipe:
 * it can run only because reader() does not hold the worker while its
 * read() blocks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft.h>

static int fds[2]; /* the pipe: reader() reads fds[0], writer() fills fds[1] */

/* Runs on a blocking-call thread: a weft_task_fn like any task's. */
static int lookup(void *arg, void **result)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct addrinfo *list;
	int err = getaddrinfo(arg, "7", &hints, &list);

	if (err == EAI_SYSTEM)
		return -errno;
	if (err == EAI_MEMORY)
		return -ENOMEM;
	if (err)
		return -ENOENT; /* EAI_NONAME and the rest */
	*result = list; /* the caller frees it */
	return 0;
}

static int resolve(void *arg, void **result)
{
	struct addrinfo *list, *ai;
	char text[INET6_ADDRSTRLEN];
	int err;

	(void)result;
	/* The task suspends here; its worker runs other tasks meanwhile. */
	err = weft_run_blocking(NULL, lookup, arg, (void **)&list);
	if (err < 0)
		return err;
	for (ai = list; ai; ai = ai->ai_next) {
		const void *a = ai->ai_family == AF_INET6
			? (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
			: (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;

		if (inet_ntop(ai->ai_family, a, text, sizeof(text)))
			printf("%s: %s\n", (const char *)arg, text);
	}
	freeaddrinfo(list);
	return 0;
}

static int read_pipe(void *arg, void **result)
{
	char *buf = arg; /* the caller's: it waits until we return */
	ssize_t n;

	do
		n = read(fds[0], buf, 63); /* blocks until writer() writes */
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*result = (void *)(intptr_t)n;
	return 0;
}

static int reader(void *arg, void **result)
{
	char buf[64]; /* on the task's stack: safe, see weft_run_blocking() */
	void *n;
	int err;

	(void)arg;
	(void)result;
	err = weft_run_blocking(NULL, read_pipe, buf, &n);
	if (err < 0)
		return err;
	printf("read %d bytes: %s", (int)(intptr_t)n, buf);
	return 0;
}

static int writer(void *arg, void **result)
{
	static const char msg[] = "written by a task on the same worker\n";

	(void)arg;
	(void)result;
	/* A short write to an empty pipe never blocks. */
	return write(fds[1], msg, sizeof(msg) - 1) < 0 ? -errno : 0;
}

int main(void)
{
	struct weft_pool_options opts;
	struct weft_pool *pool;
	struct weft_future *r, *w, *lk;
	int err;

	if (pipe(fds) < 0)
		return 1;
	weft_pool_options_init(&opts);
	opts.workers = 1;
	opts.blocking_threads = 4; /* calls at once; more wait their turn */
	err = weft_pool_create(&opts, &pool);
	if (err < 0) {
		fprintf(stderr, "weft_pool_create: %s\n", strerror(-err));
		return 1;
	}
	err = weft_submit(pool, reader, NULL, &r);
	if (err == 0) {
		err = weft_submit(pool, writer, NULL, &w);
		if (err == 0) {
			err = weft_future_get(w, NULL);
			weft_future_unref(w);
		}
		if (err == 0)
			err = weft_future_get(r, NULL);
		weft_future_unref(r);
	}
	if (err == 0)
		err = weft_submit(pool, resolve, "localhost", &lk);
	if (err == 0) {
		/* A host without "localhost" (no /etc/hosts) says so; the
		 * example still shows the call, so only weft errors fail. */
		int lerr = weft_future_get(lk, NULL);

		if (lerr < 0)
			printf("localhost: %s\n", strerror(-lerr));
		weft_future_unref(lk);
	}
	weft_pool_destroy(pool);
	close(fds[0]);
	close(fds[1]);
	if (err < 0) {
		fprintf(stderr, "io_blocking: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
