/*
 * mutex_pool.c - the mutex + condvar FIFO pool the benchmarks compare weft
 * against; see mutex_pool.h for the design and why it is shaped this way.
 *
 * Threads: any thread submits; the workers pop. Everything in struct mpool
 * below the lock is protected by mu. A worker increments sleepers before
 * cond_wait and decrements it after, both under mu, so a submitter that sees
 * sleepers > 0 under mu knows a signal after unlocking reaches a waiter.
 */
#include "mutex_pool.h"

#include <errno.h>
#include <stdlib.h>

struct mpool_job {
	struct mpool_job *next;
	mpool_fn fn;
	void *arg;
	struct mpool_group *group;
};

struct mpool {
	pthread_mutex_t mu;
	pthread_cond_t has_jobs;      /* signalled when head becomes non-NULL */
	struct mpool_job *head;       /* protected by mu */
	struct mpool_job *tail;       /* protected by mu */
	unsigned sleepers;            /* protected by mu */
	bool stop;                    /* protected by mu */
	unsigned nthreads;
	pthread_t *threads;
};

void mpool_group_init(struct mpool_group *g, long n)
{
	atomic_init(&g->pending, n);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->done = n <= 0;
}

void mpool_group_fini(struct mpool_group *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}

static void group_done_one(struct mpool_group *g)
{
	/* acq_rel: the last task's decrement sees every other task's effects,
	 * and the mutex hands them to the waiter. */
	if (atomic_fetch_sub_explicit(&g->pending, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_lock(&g->mu);
	g->done = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

void mpool_group_wait(struct mpool_group *g)
{
	pthread_mutex_lock(&g->mu);
	while (!g->done)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void *worker_main(void *arg)
{
	struct mpool *p = arg;

	for (;;) {
		struct mpool_job *job;

		pthread_mutex_lock(&p->mu);
		while (!p->head && !p->stop) {
			p->sleepers++;
			pthread_cond_wait(&p->has_jobs, &p->mu);
			p->sleepers--;
		}
		job = p->head;
		if (!job) { /* stopping, and the queue is drained */
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		p->head = job->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);

		job->fn(job->arg);
		if (job->group)
			group_done_one(job->group);
		free(job);
	}
}

int mpool_submit(struct mpool *p, mpool_fn fn, void *arg,
		 struct mpool_group *g)
{
	struct mpool_job *job = malloc(sizeof(*job));
	bool wake;

	if (!job)
		return -ENOMEM;
	job->next = NULL;
	job->fn = fn;
	job->arg = arg;
	job->group = g;

	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	wake = p->sleepers > 0;
	pthread_mutex_unlock(&p->mu);
	if (wake)
		pthread_cond_signal(&p->has_jobs);
	return 0;
}

int mpool_create(unsigned workers, struct mpool **out)
{
	struct mpool *p;
	int err;

	if (!out || !workers)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->threads = calloc(workers, sizeof(*p->threads));
	if (!p->threads) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->has_jobs, NULL);
	for (; p->nthreads < workers; p->nthreads++) {
		err = pthread_create(&p->threads[p->nthreads], NULL, worker_main, p);
		if (err) {
			mpool_destroy(p);
			return -err;
		}
	}
	*out = p;
	return 0;
}

void mpool_destroy(struct mpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->has_jobs);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->has_jobs);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}
