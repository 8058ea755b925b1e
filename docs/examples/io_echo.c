/*
 * io_echo.c - a TCP echo server and its load generator, in one program:
 *
 *	io_echo [CONNECTIONS [MESSAGES [SECONDS]]]     (default 16 1000 20)
 *
 * The server listens on 127.0.0.1 at a port the kernel picks. One task
 * takes connections from a multishot acceptor and starts one task per
 * connection, which echoes what it receives. The load generator is
 * CONNECTIONS client tasks; each connects and makes MESSAGES round trips,
 * checking that every answer is the request it sent. Every task waits for
 * its I/O in the io thread, suspended, so two workers serve all of them.
 *
 * The run must end within SECONDS: a task group with that deadline holds
 * the clients, and cancels them if the time runs out (exit status 1).
 * Shutdown is in order: stop accepting, wait for the connection tasks,
 * destroy the pool.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft.h>

#define SEC 1000000000LL /* nanoseconds */
#define MAXMSG 1024      /* the longest request */
#define IDLE (10 * SEC)  /* the server drops a connection silent this long */

struct server {
	struct weft_acceptor *acc;
	struct weft_group *conns; /* one child per connection */
};

struct client {
	const struct sockaddr_in *addr;
	unsigned id, msgs;
	unsigned done; /* round trips that came back right */
};

static atomic_ullong echoed; /* bytes the server sent back */

/* The server's side of one connection: echo until the peer closes. */
static int serve(void *arg, void **result)
{
	int fd = (int)(intptr_t)arg;
	struct weft_future *f;
	char buf[4096]; /* on the task's stack: see the note in io.md */
	int64_t n, w;
	int err = 0;

	(void)result;
	for (;;) {
		/* A deadline per operation: an idle client is dropped. */
		err = weft_io_recv(NULL, fd, buf, sizeof(buf), 0,
				   weft_now() + IDLE, &f);
		if (err < 0)
			break;
		n = weft_io_await(f);
		if (n <= 0) { /* 0: the client closed; < 0: an error */
			err = (int)n;
			break;
		}
		/* send() may take fewer bytes than asked: loop. */
		for (int64_t off = 0; off < n; off += w) {
			err = weft_io_send(NULL, fd, buf + off,
					   (size_t)(n - off), 0,
					   weft_now() + IDLE, &f);
			w = err < 0 ? err : weft_io_await(f);
			if (w < 0)
				goto out;
		}
		atomic_fetch_add(&echoed, (unsigned long long)n);
	}
out:
	/* close(2) of a socket does not block: no need for the io thread. */
	close(fd);
	return err < 0 && err != -ECANCELED ? err : 0;
}

/* The accept loop: one task per connection, until it is cancelled. */
static int accept_loop(void *arg, void **result)
{
	struct server *s = arg;
	int fd, one = 1;

	(void)result;
	for (;;) {
		fd = weft_acceptor_next(s->acc, WEFT_FOREVER);
		if (fd < 0)
			return fd; /* -ECANCELED: main() is shutting down */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (weft_group_spawn(s->conns, serve, (void *)(intptr_t)fd,
				     NULL) < 0)
			close(fd);
	}
}

/* Request @i of client @id: its length and bytes depend on both, so an
 * answer meant for another request, or another client, shows. */
static size_t request(char *buf, unsigned id, unsigned i)
{
	size_t len = 1 + (id * 7919u + i * 104729u) % MAXMSG;

	for (size_t k = 0; k < len; k++)
		buf[k] = (char)(id + i + k);
	return len;
}

static int client(void *arg, void **result)
{
	struct client *c = arg;
	char req[MAXMSG], resp[MAXMSG];
	struct weft_future *f;
	int fd, err, one = 1;

	(void)result;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Small requests, each waiting for its answer: no Nagle delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	err = weft_io_connect(NULL, fd, (const struct sockaddr *)c->addr,
			      sizeof(*c->addr), WEFT_FOREVER, &f);
	if (err == 0)
		err = (int)weft_io_await(f);
	for (unsigned i = 0; err == 0 && i < c->msgs; i++) {
		size_t len = request(req, c->id, i);
		ssize_t n;

		/* The loops over short transfers, with offset -1: a socket
		 * has no file position to read at. */
		n = weft_io_write_all(NULL, fd, req, len, -1, WEFT_FOREVER);
		if (n >= 0)
			n = weft_io_read_exact(NULL, fd, resp, len, -1,
					       WEFT_FOREVER);
		if (n < 0)
			err = (int)n;
		else if ((size_t)n != len || memcmp(req, resp, len) != 0)
			err = -EPROTO; /* cut short, or not what we sent */
		else
			c->done++;
	}
	close(fd);
	return err;
}

/* A listening socket on 127.0.0.1, at a port the kernel picks. */
static int listen_loopback(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd;

	*addr = (struct sockaddr_in){ .sin_family = AF_INET,
				      .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)addr, len) < 0 ||
	    listen(fd, SOMAXCONN) < 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void check(int err, const char *what)
{
	if (err < 0) {
		fprintf(stderr, "io_echo: %s: %s\n", what, strerror(-err));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	unsigned nconn = argc > 1 ? (unsigned)atoi(argv[1]) : 16;
	unsigned msgs = argc > 2 ? (unsigned)atoi(argv[2]) : 1000;
	int64_t limit = (argc > 3 ? atoi(argv[3]) : 20) * SEC;
	struct weft_group *clients;
	struct weft_future *acceptf;
	struct weft_pool *pool;
	struct sockaddr_in addr;
	struct server srv;
	struct client *cs;
	unsigned long long total = 0;
	int lfd, err;
	int64_t t0, dt;

	if (nconn == 0 || limit <= 0) {
		fprintf(stderr, "usage: io_echo [CONNECTIONS [MESSAGES "
				"[SECONDS]]]\n");
		return 2;
	}
	cs = calloc(nconn, sizeof(*cs));
	if (!cs)
		return 1;
	check(weft_pool_create(NULL, &pool), "weft_pool_create");
	lfd = listen_loopback(&addr);
	check(lfd, "listen");

	/* The server: an acceptor, a group for the connections, a task
	 * that hands each accepted socket to a new child of the group. */
	check(weft_io_accept_multishot(pool, lfd, 0, &srv.acc),
	      "weft_io_accept_multishot");
	check(weft_group_create(pool, WEFT_GROUP_COLLECT, WEFT_FOREVER,
				&srv.conns),
	      "weft_group_create");
	check(weft_submit(pool, accept_loop, &srv, &acceptf), "weft_submit");

	/* The load: a group whose deadline bounds the whole run. Its first
	 * failure cancels the other clients. */
	t0 = weft_now();
	check(weft_group_create(pool, 0, t0 + limit, &clients),
	      "weft_group_create");
	for (unsigned i = 0; i < nconn; i++) {
		cs[i] = (struct client){ .addr = &addr, .id = i, .msgs = msgs };
		check(weft_group_spawn(clients, client, &cs[i], NULL),
		      "weft_group_spawn");
	}
	err = weft_group_wait(clients, WEFT_FOREVER);
	dt = weft_now() - t0;
	weft_group_destroy(clients);

	/*
	 * Shutdown. Cancel the accept loop (its weft_acceptor_next() returns
	 * -ECANCELED) and wait for it: the acceptor may be closed only when
	 * no call on it is running. Then the connections: each ends when its
	 * client has closed; after a failed run, cancel them instead.
	 */
	weft_future_cancel(acceptf);
	weft_future_wait(acceptf);
	weft_future_unref(acceptf);
	weft_acceptor_close(srv.acc); /* closes sockets nobody took */
	close(lfd);
	if (err < 0)
		weft_group_cancel(srv.conns);
	weft_group_wait(srv.conns, WEFT_FOREVER);
	weft_group_destroy(srv.conns);

	for (unsigned i = 0; i < nconn; i++)
		total += cs[i].done;
	printf("io_echo: %s: %u connections x %u messages: %llu requests "
	       "in %.3f s, %.0f requests/s, %llu bytes echoed\n",
	       weft_io_backend(pool) == WEFT_IO_URING ? "io_uring" : "blocking",
	       nconn, msgs, total, (double)dt / SEC,
	       (double)total * SEC / (double)(dt > 0 ? dt : 1),
	       (unsigned long long)atomic_load(&echoed));
	weft_pool_destroy(pool);
	free(cs);
	if (err < 0) {
		fprintf(stderr, "io_echo: %s\n", err == -ETIMEDOUT
				 ? "not done before the deadline"
				 : strerror(-err));
		return 1;
	}
	return total == (unsigned long long)nconn * msgs ? 0 : 1;
}
