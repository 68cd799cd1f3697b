/* Migration threads: migrations run here, off the poll thread, so a migration of hours
 * never keeps the consumer from polling (max.poll.interval.ms). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_log.h"
#include "worker.h"

typedef struct thread_arg {
    worker *w;
    worker_thread_ctx *ctx;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *a = p;
    worker *w = a->w;

    for (;;) {
        worker_job *job;
        pthread_mutex_lock(&w->lock);
        w->idle_threads++;
        while (!w->queue_head && !w->quit_threads)
            pthread_cond_wait(&w->cond, &w->lock);
        w->idle_threads--;
        if (!w->queue_head) { /* quitting and nothing queued */
            pthread_mutex_unlock(&w->lock);
            break;
        }
        job = w->queue_head;
        w->queue_head = job->next;
        if (!w->queue_head)
            w->queue_tail = NULL;
        job->next = NULL;
        pthread_mutex_unlock(&w->lock);

        worker_migrate_job(a->ctx, job);
        worker_pool_finish(w, job);
    }
    worker_thread_ctx_destroy(a->ctx);
    free(a);
    return NULL;
}

int worker_pool_start(worker *w, char *errstr, size_t errstr_size)
{
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->threads = calloc((size_t)w->nthreads, sizeof(*w->threads));
    if (!w->threads) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (int i = 0; i < w->nthreads; i++) {
        thread_arg *a = calloc(1, sizeof(*a));
        if (!a) {
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
        a->w = w;
        /* Each thread owns its own S3, Redis and codec handles: none is shared. */
        a->ctx = worker_thread_ctx_new(w, i, errstr, errstr_size);
        if (!a->ctx) {
            free(a);
            return -1;
        }
        if (pthread_create(&w->threads[i], NULL, thread_main, a) != 0) {
            snprintf(errstr, errstr_size, "cannot start migration thread");
            worker_thread_ctx_destroy(a->ctx);
            free(a);
            return -1;
        }
    }
    return 0;
}

void worker_pool_stop(worker *w)
{
    if (!w->threads)
        return;
    pthread_mutex_lock(&w->lock);
    w->quit_threads = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->nthreads; i++)
        if (w->threads[i])
            pthread_join(w->threads[i], NULL);
    free(w->threads);
    w->threads = NULL;
}

void worker_pool_submit(worker *w, worker_job *job)
{
    pthread_mutex_lock(&w->lock);
    job->next = NULL;
    if (w->queue_tail)
        w->queue_tail->next = job;
    else
        w->queue_head = job;
    w->queue_tail = job;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void worker_pool_finish(worker *w, worker_job *job)
{
    rd_kafka_queue_t *wake;

    pthread_mutex_lock(&w->lock);
    job->next = w->done_head;
    w->done_head = job;
    wake = w->wake_q; /* set before the first job was dispatched */
    pthread_mutex_unlock(&w->lock);
    /* The poll thread waits in rd_kafka_consumer_poll() for up to 100 ms: cut that wait
     * short, so the partition's next event starts now, not a poll timeout later. */
    if (wake)
        rd_kafka_queue_yield(wake);
}

worker_job *worker_pool_take_done(worker *w)
{
    worker_job *list;
    pthread_mutex_lock(&w->lock);
    list = w->done_head;
    w->done_head = NULL;
    pthread_mutex_unlock(&w->lock);
    return list;
}
