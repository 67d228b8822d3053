/* A fixed pool of worker threads running queued jobs in FIFO order. */
#ifndef BC_SERVER_WORKER_POOL_H
#define BC_SERVER_WORKER_POOL_H

struct bc_worker_pool;

typedef void (*bc_job_fn)(void *arg);

int bc_worker_pool_new(unsigned threads, struct bc_worker_pool **out);
/* Queue FN(ARG); never blocks (callers bound their own queue depth). */
int bc_worker_pool_submit(struct bc_worker_pool *p, bc_job_fn fn, void *arg);
/* Finish every queued job, then stop and free the threads. */
void bc_worker_pool_free(struct bc_worker_pool *p);

#endif
