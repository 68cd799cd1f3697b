/* ferry-worker internals shared by its files:
 *   worker_main.c     command line: parse, run `status` or `run`, exit
 *   worker_run.c      settings table, signals, start/stop of the pieces below
 *   worker_consume.c  poll loop, rebalances, pause/resume, offset store (the only thread
 *                     that touches the consumer)
 *   worker_pool.c     migration threads and the job/completion queues
 *   worker_migrate.c  one event: decode, validate, retries, dead-lettering
 *   worker_pipeline.c one unit of work (dataset or chunk): lease, copy, done, release
 *   worker_copy.c     the copy engine: list, copy in flight, verify, checkpoint
 *   worker_fanout.c   splitting a large dataset into chunk events, finishing chunks
 *   worker_lease.c    heartbeat thread renewing every lease this process holds
 *   worker_dlq.c      dead-letter records
 *   worker_notify.c   DatasetMigrated
 *   worker_webhook.c  optional webhook POST after a migration
 *   worker_status.c   `ferry-worker status` */
#ifndef FERRY_WORKER_H
#define FERRY_WORKER_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ferry_avro.h"
#include "ferry_conf.h"
#include "ferry_error.h"
#include "ferry_event.h"

typedef struct worker worker;

/* One Kafka message being processed. Created and destroyed by the poll thread; a
 * migration thread owns it between dequeue and completion. */
typedef struct worker_job {
    rd_kafka_message_t *msg; /* owned; destroyed by the poll thread after completion */
    int topic;               /* index in worker.topics */
    int32_t partition;
    int64_t offset;
    uint64_t epoch;    /* partition's assignment epoch at dispatch */
    atomic_int cancel; /* set by the poll thread: stop at the next object boundary */
    int store;         /* set by the migration thread: outcome is durable, store offset */
    struct worker_job *next;
} worker_job;

/* Per-partition bookkeeping on the poll thread. */
typedef struct worker_partition {
    int topic; /* index in worker.topics */
    int32_t partition;
    int assigned;
    uint64_t epoch;           /* bumped on every assign/revoke */
    worker_job *inflight;     /* at most one event per partition: keeps per-key order */
    int64_t rewind_to;        /* first unprocessed offset to seek back to, -1 if none; the
                                partition stays paused until that seek succeeded */
    int64_t retry_at;         /* ferry_mono_ms() to retry a failed seek/resume, 0 = none */
    int paused;               /* 1 while this worker holds it paused (librdkafka keeps an
                             application's pause across assignments) */
    rd_kafka_message_t *next; /* owned: the event after `inflight`, fetched while that one
                                 runs and started the moment it ends (no resume and fetch in
                                 between); the partition is paused while one waits here */
} worker_partition;

struct worker {
    const ferry_conf *conf;
    char id[128];
    const char *topics[2]; /* onboard events, chunk events */
    rd_kafka_t *consumer;
    rd_kafka_t *producer;            /* shared, thread-safe: DLQ and notifications */
    rd_kafka_topic_t *ahead[3];      /* owned: the producer's topics, known from the start */
    struct ferry_limiters *limiters; /* one in-flight limiter per S3 endpoint, shared by
                                      * the migration threads' stores */
    atomic_int stopping;             /* 1 after the first SIGTERM/SIGINT */

    /* pool */
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    worker_job *queue_head, *queue_tail; /* dispatched, not yet started */
    worker_job *done_head;               /* finished, waiting for the poll thread */
    int idle_threads;
    int quit_threads;
    rd_kafka_queue_t *wake_q; /* the consumer's queue, yielded by a completion to wake the
                               * poll thread; set (under lock) by worker_consume_run */

    /* poll-thread-only state */
    worker_partition *parts;
    size_t nparts;
    size_t inflight;

    /* heartbeat */
    pthread_t heartbeat;
    int heartbeat_started;
};

/* worker_run.c: ferry-worker's settings (for ferry_cli_new) and its run command: consume
 * until SIGTERM as worker `id`. Returns an exit code; *abandoned = 1 when migration
 * threads were still stopping at the shutdown deadline: the caller must _exit() at once,
 * since those threads still use process-wide state. */
extern const ferry_conf_def worker_conf_defs[];
int worker_run(const ferry_conf *conf, const char *id, int *abandoned);

/* worker_pool.c */
int worker_pool_start(worker *w, char *errstr, size_t errstr_size);
void worker_pool_stop(worker *w); /* joins the threads */
void worker_pool_submit(worker *w, worker_job *job);
/* A migration thread hands its finished job back and wakes the poll thread. */
void worker_pool_finish(worker *w, worker_job *job);
worker_job *worker_pool_take_done(worker *w); /* list of finished jobs, or NULL */

/* worker_consume.c */
int worker_consume_run(worker *w);  /* returns an exit code */
#define WORKER_CONSUME_RETRY_MS 500 /* a failed seek/resume is retried */
/* Test hook: the seek the poll loop uses, rd_kafka_seek_partitions unless a test
 * (tests/unit/test_consume_mock.c) replaces it before worker_consume_run. */
extern rd_kafka_error_t *(*worker_consume_seek)(rd_kafka_t *rk,
                                                rd_kafka_topic_partition_list_t *parts,
                                                int timeout_ms);
/* Test hook: rd_kafka_pause_partitions (pause 1) or rd_kafka_resume_partitions (0). */
extern rd_kafka_resp_err_t (*worker_consume_pause)(rd_kafka_t *rk,
                                                   rd_kafka_topic_partition_list_t *parts,
                                                   int pause);

/* worker_migrate.c: processes one job on a migration thread. Sets job->store. */
struct ferry_redis;
struct worker_copier;
typedef struct worker_thread_ctx {
    worker *w;
    char owner[160]; /* lease owner: "<worker.id>/<thread>" */
    ferry_avro_codec *codec;
    struct ferry_redis *redis;
    struct worker_copier *copier;
    /* Partitions of the chunk topic (worker_fanout.c), refreshed once a minute. */
    int32_t chunk_partitions;
    int64_t chunk_partitions_at;
} worker_thread_ctx;

/* Why a migration must stop: revoked or shutting down (job->cancel), or its lease was
 * lost (lost). */
typedef struct worker_stop {
    worker_job *job;
    atomic_int lost;
} worker_stop;
/* worker_pipeline.c: the one path for a unit of work (a whole dataset or one chunk):
 * lease -> track -> prepare -> [hand off] -> copy -> mark done (or failed_objects) ->
 * untrack and release -> the unit's own step once done. */
int worker_should_stop(void *stop); /* a worker_stop* */
ferry_rc worker_stopped(worker_stop *s, ferry_error *err);
/* Sleeps up to ms, waking early when the job must stop. Returns 1 if it must. */
int worker_nap(worker_stop *s, int64_t ms);

struct ferry_acquire_result;
/* Takes the lease of `name` (a dataset, or a chunk's "<dataset>#<i>") for ev, waiting
 * while another owner holds it. */
ferry_rc worker_acquire(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                        const char *name, struct ferry_acquire_result *res, ferry_error *err);
/* DatasetMigrated for ev, then the webhook if configured: at least once, and only by the
 * worker that claims the announcement in Redis (others holding the same event wait until
 * it is recorded as sent, or the claim expires or is released). */
ferry_rc worker_announce(worker_thread_ctx *t, const ferry_onboard *ev, int64_t objects,
                         int64_t bytes, int64_t duration_ms, int64_t finished_at,
                         ferry_error *err);

/* How a unit ended up done, for its after-done step. */
typedef struct worker_unit_done {
    int already;            /* done by an earlier delivery: nothing was copied now */
    int64_t objects, bytes; /* done (objects copied or identical) */
    int64_t skipped;        /* of those, identical at the target (0 if already) */
    int64_t t0;             /* wall clock ms when this attempt began */
    int64_t finished_at_ms; /* when already: when the earlier delivery finished */
} worker_unit_done;

/* What differs between a whole dataset and a chunk; the steps are the same. */
struct ferry_lease;
struct ferry_log_ctx;
typedef struct worker_unit {
    const char *name; /* lease and state key: the dataset, or "<dataset>#<i>" (borrowed) */
    int count;        /* worker_copy_prepare counts the objects first (a whole dataset) */
    /* Logs the start of the copy (resuming or fresh). */
    void (*starting)(const ferry_onboard *ev, const struct ferry_acquire_result *res,
                     const struct ferry_log_ctx *lctx);
    /* NULL, or called after prepare when there is no checkpoint: *taken = 1 if it took the
     * unit over (the split into chunk events); the lease is released either way. */
    ferry_rc (*hand_off)(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                         const struct ferry_lease *lease, int64_t objects_total, int *taken,
                         ferry_error *err);
    /* After the lease is released as done (or found done): announce the dataset, or
     * count the chunk and finalize the dataset with the last one. */
    ferry_rc (*done)(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                     const worker_unit_done *d, ferry_error *err);
} worker_unit;

/* One attempt at unit u of ev. FERRY_OK: done (or already done, or handed off: then
 * *handed_off = 1 if handed_off is not NULL) and the after-done step went through. */
ferry_rc worker_pipeline_run(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                             const worker_unit *u, int *handed_off, ferry_error *err);

/* worker_fanout.c: a dataset above fanout.min_objects is split into key-range chunks,
 * each its own chunk event run through the pipeline. */
int worker_fanout_wanted(const worker *w, const ferry_onboard *ev, int64_t objects_total);
ferry_rc worker_fanout_split(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                             const struct ferry_lease *lease, ferry_error *err);
ferry_rc worker_fanout_chunk(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                             ferry_error *err);
/* index: the thread's number in the pool; the lease owner is "<worker.id>/<index>", so two
 * threads of one process never mistake each other's lease for their own, while a
 * restarted process with the same worker.id takes its old leases back at once. */
worker_thread_ctx *worker_thread_ctx_new(worker *w, int index, char *errstr,
                                         size_t errstr_size);
void worker_thread_ctx_destroy(worker_thread_ctx *t);
void worker_migrate_job(worker_thread_ctx *t, worker_job *job);

/* worker_dlq.c: dead-letters the job's message; retries until acknowledged or stopping.
 * lctx (may be NULL): what the log lines are about. report (may be NULL): the failure
 * report's location, sent as the header ferry-report. */
struct ferry_log_ctx;
ferry_rc worker_dlq_send(worker *w, const rd_kafka_message_t *msg,
                         const struct ferry_log_ctx *lctx, const ferry_error *cause,
                         int attempts, const char *report, ferry_error *err);

/* worker_notify.c */
ferry_rc worker_notify_migrated(worker *w, ferry_avro_codec *codec, const ferry_migrated *m,
                                ferry_error *err);

/* worker_webhook.c: POSTs the outcome to notify.webhook_url (if set), with retries. */
ferry_rc worker_webhook_post(worker *w, const ferry_migrated *m, ferry_error *err);

/* worker_lease.c */
/* 0, -1 on failure, -2 when the configuration is at fault (e.g. the Redis ACL). */
int worker_lease_start(worker *w, char *errstr, size_t errstr_size);
void worker_lease_stop(worker *w);
/* Registers a held lease for renewal; `lost` is set to 1 if the lease is lost. event_id
 * (copied) is for the log lines. */
struct ferry_lease;
void worker_lease_track(worker *w, const struct ferry_lease *lease, const char *event_id,
                        atomic_int *lost);
void worker_lease_untrack(worker *w, const char *dataset);

#endif
