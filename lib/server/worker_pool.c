/*
 * Worker pool.
 *
 * Threading: one mutex protects the job queue; workers sleep on a condition
 * variable while it is empty.  Jobs carry their own state, so the pool
 * knows nothing about what they do.  Job nodes are recycled through a free
 * list so steady-state submission does not allocate.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/error.h"
#include "server/worker_pool.h"

struct job {
	bc_job_fn fn;
	void *arg;
	struct job *next;
};

struct bc_worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *head, *tail, *free_jobs;
	bool stopping;
	unsigned nthreads;
	pthread_t threads[];
};

static void *worker_main(void *arg)
{
	struct bc_worker_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct job *j;
		bc_job_fn fn;
		void *jarg;

		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		if (!p->head)
			break;
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		fn = j->fn;
		jarg = j->arg;
		j->next = p->free_jobs;
		p->free_jobs = j;
		pthread_mutex_unlock(&p->lock);
		fn(jarg);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int bc_worker_pool_new(unsigned threads, struct bc_worker_pool **out)
{
	struct bc_worker_pool *p;
	pthread_attr_t attr;

	*out = NULL;
	if (!threads)
		threads = 1;
	p = calloc(1, sizeof(*p) + threads * sizeof(pthread_t));
	if (!p)
		return bc_error(-ENOMEM, "worker pool: out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10); /* workers need little stack */
	for (; p->nthreads < threads; p->nthreads++) {
		if (pthread_create(&p->threads[p->nthreads], &attr, worker_main, p) != 0) {
			pthread_attr_destroy(&attr);
			bc_worker_pool_free(p);
			return bc_error(-EAGAIN, "worker pool: cannot start threads");
		}
	}
	pthread_attr_destroy(&attr);
	*out = p;
	return 0;
}

int bc_worker_pool_submit(struct bc_worker_pool *p, bc_job_fn fn, void *arg)
{
	struct job *j;

	pthread_mutex_lock(&p->lock);
	j = p->free_jobs;
	if (j)
		p->free_jobs = j->next;
	else if (!(j = malloc(sizeof(*j)))) {
		pthread_mutex_unlock(&p->lock);
		return bc_error(-ENOMEM, "worker pool: out of memory");
	}
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void bc_worker_pool_free(struct bc_worker_pool *p)
{
	struct job *j;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	while ((j = p->free_jobs)) {
		p->free_jobs = j->next;
		free(j);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	free(p);
}
