/*
 * io_checksum.c - a parallel sha256sum: io_checksum DIR-OR-FILE...
 *
 * Every regular file under the arguments gets one task. The task reads the
 * file through the pool's io thread and hashes it with nettle's SHA-256 on
 * the worker it runs on. While a task waits for a read it is suspended, so
 * two workers keep many files in flight. The output is sha256sum's, in
 * byte order of the paths:
 *
 *	io_checksum src | diff - <(find src -type f | LC_ALL=C sort |
 *				   xargs -d '\n' sha256sum)
 *
 * (Unlike sha256sum it does not escape names holding a newline or a
 * backslash.) Errors go to stderr as "io_checksum: PATH: reason", and the
 * exit status is then 1.
 */
#define _XOPEN_SOURCE 700 /* nftw() */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nettle/sha2.h>
#include <weft.h>

#define CHUNK (128 * 1024) /* bytes per read of a big file */
#define SMALL (64 * 1024)  /* up to this size, one weft_io_read_file() */
#define IN_FLIGHT 32       /* files open at once (descriptors, buffers) */

struct file {
	char *path;
	off_t size; /* from the walk: picks the way to read it */
	int err;    /* 0 or -errno, set by the task */
	uint8_t digest[SHA256_DIGEST_SIZE];
};

/* What the walk found. nftw() takes no argument for its callback. */
static struct file *files;
static size_t nfiles, cap;
static int walk_failed;

static struct weft_sem in_flight;

/* Small files: one call opens, sizes, reads and closes through the io
 * thread, and hands back a malloc'd copy of the contents. */
static int hash_small(struct file *f, struct sha256_ctx *ctx)
{
	void *data;
	size_t len;
	int err;

	err = weft_io_read_file(NULL, AT_FDCWD, f->path, WEFT_FOREVER, &data,
				&len);
	if (err < 0)
		return err;
	sha256_update(ctx, len, data);
	free(data);
	return 0;
}

/*
 * Big files: two buffers, so that the read of the next chunk runs while
 * this one is hashed. A buffer is the kernel's from the moment its read is
 * started until the read's future completes: we touch buf[cur] only after
 * weft_io_await() has returned for it.
 */
static int hash_big(struct file *f, struct sha256_ctx *ctx)
{
	struct weft_future *rd;
	int64_t fd, n, off = 0;
	uint8_t *buf[2];
	int cur = 0, err;

	/* NULL pool: the pool of the calling task. */
	err = weft_io_openat(NULL, AT_FDCWD, f->path, O_RDONLY, 0,
			     WEFT_FOREVER, &rd);
	if (err < 0)
		return err;
	fd = weft_io_await(rd); /* the task suspends until the open is done */
	if (fd < 0)
		return (int)fd;

	buf[0] = malloc(2 * CHUNK);
	if (buf[0]) {
		buf[1] = buf[0] + CHUNK;
		err = weft_io_read(NULL, (int)fd, buf[cur], CHUNK, off,
				   WEFT_FOREVER, &rd);
	} else {
		err = -ENOMEM;
	}
	while (err == 0) {
		n = weft_io_await(rd); /* bytes read, 0 at end, or -errno */
		if (n <= 0) {
			err = (int)n;
			break;
		}
		off += n;
		/* Start the next read into the other buffer, then hash. */
		err = weft_io_read(NULL, (int)fd, buf[!cur], CHUNK, off,
				   WEFT_FOREVER, &rd);
		sha256_update(ctx, (size_t)n, buf[cur]);
		cur = !cur;
	}
	/* No read is in flight here: each error above comes from an await,
	 * or from a read that was never started. Now buf and fd are free. */
	free(buf[0]);
	n = 0;
	if (weft_io_close(NULL, (int)fd, WEFT_FOREVER, &rd) == 0)
		n = weft_io_await(rd);
	return err < 0 ? err : (int)n;
}

/* The task: one file. */
static int checksum(void *arg, void **result)
{
	struct file *f = arg;
	struct sha256_ctx ctx;

	(void)result;
	sha256_init(&ctx);
	if (f->size <= SMALL)
		f->err = hash_small(f, &ctx);
	else
		f->err = hash_big(f, &ctx);
	if (f->err == 0)
		sha256_digest(&ctx, SHA256_DIGEST_SIZE, f->digest);
	weft_sem_release(&in_flight, 1); /* let main() start another */
	return f->err;
}

static int found(const char *path, const struct stat *st, int type,
		 struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_DNR || type == FTW_NS) { /* unreadable dir, no stat */
		fprintf(stderr, "io_checksum: %s: %s\n", path,
			strerror(errno)); /* glibc: opendir's or stat's */
		walk_failed = 1;
		return 0;
	}
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0; /* directories, symlinks, devices, sockets */
	if (nfiles == cap) {
		struct file *more;

		cap = cap ? 2 * cap : 256;
		more = realloc(files, cap * sizeof(*files));
		if (!more)
			return -1;
		files = more;
	}
	files[nfiles] = (struct file){ .path = strdup(path),
				       .size = st->st_size };
	return files[nfiles++].path ? 0 : -1;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct file *)a)->path,
		      ((const struct file *)b)->path);
}

int main(int argc, char **argv)
{
	struct weft_pool *pool;
	struct weft_group *g;
	int err, status = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: io_checksum DIR-OR-FILE...\n");
		return 2;
	}
	/* FTW_PHYS: do not follow symbolic links (find -type f skips them). */
	for (int i = 1; i < argc; i++) {
		if (nftw(argv[i], found, 16, FTW_PHYS) != 0) {
			fprintf(stderr, "io_checksum: %s: %s\n", argv[i],
				strerror(errno));
			walk_failed = 1;
		}
	}
	qsort(files, nfiles, sizeof(*files), by_path);

	err = weft_pool_create(NULL, &pool);
	if (err == 0)
		err = weft_group_create(pool, WEFT_GROUP_COLLECT, WEFT_FOREVER,
					&g);
	if (err < 0) {
		fprintf(stderr, "io_checksum: %s\n", strerror(-err));
		return 1;
	}
	/*
	 * One task per file, but no more than IN_FLIGHT of them at once: a
	 * task that is waiting still holds a descriptor and its buffers.
	 * main() is not a task, so the acquire blocks this thread; each
	 * task releases its permit as it ends. WEFT_GROUP_COLLECT: a file
	 * that fails does not cancel the others.
	 */
	weft_sem_init(&in_flight, IN_FLIGHT);
	for (size_t i = 0; i < nfiles; i++) {
		weft_sem_acquire(&in_flight);
		err = weft_group_spawn(g, checksum, &files[i], NULL);
		if (err < 0) {
			files[i].err = err;
			weft_sem_release(&in_flight, 1);
		}
	}
	weft_group_wait(g, WEFT_FOREVER); /* each file has its own error */
	weft_group_destroy(g);
	weft_pool_destroy(pool);
	weft_sem_fini(&in_flight);

	for (size_t i = 0; i < nfiles; i++) {
		struct file *f = &files[i];

		if (f->err < 0) {
			fprintf(stderr, "io_checksum: %s: %s\n", f->path,
				strerror(-f->err));
			status = 1;
		} else {
			for (int k = 0; k < SHA256_DIGEST_SIZE; k++)
				printf("%02x", f->digest[k]);
			printf("  %s\n", f->path);
		}
		free(f->path);
	}
	free(files);
	return status || walk_failed;
}
