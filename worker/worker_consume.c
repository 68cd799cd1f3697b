/* The poll loop: the only thread that touches the consumer. It runs one event per
 * partition at a time and holds the partition's next one ready (pausing the partition
 * while it waits), keeps polling while migrations run, and stores an event's offset only
 * after the migration thread reported its outcome durable (state done in Redis, or the
 * DLQ produce acknowledged). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_kafka.h"
#include "ferry_log.h"
#include "ferry_util.h"
#include "worker.h"
#include "worker_http.h"
#include "worker_metrics.h"

static int topic_index(const worker *w, const char *topic)
{
    for (int i = 0; i < 2; i++)
        if (!strcmp(w->topics[i], topic))
            return i;
    return -1;
}

static worker_partition *part_get(worker *w, int topic, int32_t partition, int create)
{
    worker_partition *n;
    if (topic < 0)
        return NULL;
    for (size_t i = 0; i < w->nparts; i++)
        if (w->parts[i].topic == topic && w->parts[i].partition == partition)
            return &w->parts[i];
    if (!create)
        return NULL;
    n = realloc(w->parts, (w->nparts + 1) * sizeof(*n));
    if (!n)
        return NULL;
    w->parts = n;
    n = &w->parts[w->nparts++];
    memset(n, 0, sizeof(*n));
    n->topic = topic;
    n->partition = partition;
    n->rewind_to = -1;
    return n;
}

static rd_kafka_resp_err_t pause_or_resume(rd_kafka_t *rk,
                                           rd_kafka_topic_partition_list_t *parts, int pause)
{
    return pause ? rd_kafka_pause_partitions(rk, parts) : rd_kafka_resume_partitions(rk, parts);
}

rd_kafka_resp_err_t (*worker_consume_pause)(rd_kafka_t *rk,
                                            rd_kafka_topic_partition_list_t *parts,
                                            int pause) = pause_or_resume;

/* Returns 0, or -1 when librdkafka refused (for the call or for this partition). */
static int set_paused(worker *w, worker_partition *p, int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t e;
    rd_kafka_topic_partition_list_add(l, w->topics[p->topic], p->partition);
    e = worker_consume_pause(w->consumer, l, pause);
    if (!e)
        e = l->elems[0].err;
    if (e)
        ferry_warn(NULL, "%s partition %d: %s", pause ? "pausing" : "resuming",
                   (int)p->partition, rd_kafka_err2str(e));
    else
        p->paused = pause;
    rd_kafka_topic_partition_list_destroy(l);
    return e ? -1 : 0;
}

static void drop_next(worker_partition *p)
{
    if (p->next)
        rd_kafka_message_destroy(p->next);
    p->next = NULL;
}

/* Marks partitions (un)assigned; a revoked partition's in-flight migration is told to
 * stop at an object boundary. Its offset will not be stored: the next owner resumes it
 * from the Redis checkpoint. */
static void mark(worker *w, const rd_kafka_topic_partition_list_t *parts, int assigned)
{
    for (int i = 0; i < parts->cnt; i++) {
        worker_partition *p = part_get(w, topic_index(w, parts->elems[i].topic),
                                       parts->elems[i].partition, 1);
        if (!p)
            continue;
        p->assigned = assigned;
        p->epoch++;
        p->rewind_to = -1;
        p->retry_at = 0;
        drop_next(p); /* not stored: the next owner (or we, again) fetches it anew */
        if (!assigned && p->inflight) {
            atomic_store(&p->inflight->cancel, 1);
            ferry_info(NULL,
                       "partition %d revoked while its event at offset %lld is in "
                       "flight: stopping it at an object boundary",
                       (int)p->partition, (long long)p->inflight->offset);
        }
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    worker *w = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        ferry_info(NULL, "assigned %d partition(s) (%s)", parts->cnt,
                   cooperative ? "incremental" : "eager");
        worker_http_note_joined(1); /* in the group, even with 0 partitions */
        mark(w, parts, 1);
        /* Our pause outlives an assignment: a partition whose previous event is still
         * stopping stays paused until that is done (then it resumes from the committed
         * offset), the others flow. Changed before the assign, and only where it
         * changes: a pause or resume takes a new op version of the partition, and one
         * taken while librdkafka starts the assigned partition's fetcher can make that
         * start outdated -- the partition is then assigned but never fetched, with no
         * error (librdkafka #5591; most likely why an event on a fresh worker waited
         * 60 s in CI on 5 December). */
        for (int i = 0; i < parts->cnt; i++) {
            worker_partition *p = part_get(w, topic_index(w, parts->elems[i].topic),
                                           parts->elems[i].partition, 0);
            if (p && p->paused != (p->inflight != NULL))
                set_paused(w, p, p->inflight != NULL);
        }
        /* Concrete start offsets: every partition fetchable at once, not after
         * librdkafka's 100 ms offset-reset backoff (ferry_kafka_offsets.c). */
        ferry_kafka_resolve_start_offsets(rk, parts, 3000);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            e = rd_kafka_assign(rk, parts);
    } else {
        int lost = rd_kafka_assignment_lost(rk);
        ferry_info(NULL, "revoked %d partition(s)%s", parts->cnt,
                   lost ? " (assignment lost)" : "");
        if (lost)
            worker_http_note_joined(0);
        mark(w, parts, 0);
        /* Commit what finished events stored, unless the partitions already belong to
         * someone else. */
        if (!lost) {
            rd_kafka_resp_err_t ce = rd_kafka_commit(rk, NULL, 0);
            if (ce && ce != RD_KAFKA_RESP_ERR__NO_OFFSET)
                ferry_warn(NULL, "commit on revoke: %s", rd_kafka_err2str(ce));
        }
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            e = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        ferry_err(NULL, "rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (e) {
        ferry_err(NULL, "rebalance: %s", rd_kafka_err2str(e));
    }
}

/* librdkafka statistics: consumer lag for /metrics, broker state for /readyz. Served
 * from rd_kafka_consumer_poll(), so on the poll thread. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    worker *w = opaque;
    (void)rk;
    worker_http_note_kafka_brokers(worker_metrics_kafka_stats(json, len, w->topics[0]));
    return 0; /* librdkafka frees json */
}

static void install_rebalance_cb(rd_kafka_conf_t *kconf, void *opaque)
{
    worker *w = opaque;
    char val[32], errstr[256];
    size_t n = sizeof(val);

    rd_kafka_conf_set_rebalance_cb(kconf, rebalance_cb);
    rd_kafka_conf_set_opaque(kconf, opaque);
    rd_kafka_conf_set_stats_cb(kconf, stats_cb);
    /* Statistics feed /metrics and /readyz, so only with a listener; an explicit
     * -X statistics.interval.ms wins. */
    if (ferry_conf_str(w->conf, "http.listen") &&
        rd_kafka_conf_get(kconf, "statistics.interval.ms", val, &n) == RD_KAFKA_CONF_OK &&
        !strcmp(val, "0") &&
        rd_kafka_conf_set(kconf, "statistics.interval.ms", "5000", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
        ferry_warn(NULL, "statistics.interval.ms: %s", errstr);
}

static void store_offset(worker *w, int topic, int32_t partition, int64_t next)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t e;
    rd_kafka_topic_partition_list_add(l, w->topics[topic], partition)->offset = next;
    e = rd_kafka_offsets_store(w->consumer, l);
    if (!e && l->elems[0].err)
        e = l->elems[0].err;
    if (e)
        ferry_warn(NULL, "storing offset %lld for partition %d: %s (event will be redelivered)",
                   (long long)next, (int)partition, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

/* Test hook: tests/unit/test_consume_mock.c replaces it to force the seek failure path.
 * Always rd_kafka_seek_partitions outside that test. */
rd_kafka_error_t *(*worker_consume_seek)(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                                         int timeout_ms) = rd_kafka_seek_partitions;

/* Returns 0, or -1 if the call or this partition's seek failed. */
static int seek_to(worker *w, int topic, int32_t partition, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_error_t *error;
    const char *why = NULL;
    rd_kafka_topic_partition_list_add(l, w->topics[topic], partition)->offset = offset;
    error = worker_consume_seek(w->consumer, l, 5000);
    if (error)
        why = rd_kafka_error_string(error);
    else if (l->elems[0].err)
        why = rd_kafka_err2str(l->elems[0].err);
    if (why)
        ferry_warn(NULL, "seeking partition %d back to %lld: %s (it stays paused; retrying)",
                   (int)partition, (long long)offset, why);
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(l);
    return why ? -1 : 0;
}

/* A partition whose event finished: go back to the first unprocessed offset, if any,
 * then let it flow. Until the seek succeeds the partition stays paused, since resuming
 * would fetch past that offset and a later stored offset would commit past it. A
 * failure is retried from the poll loop (retry_at). */
static void settle(worker *w, worker_partition *p)
{
    if (p->rewind_to >= 0) {
        if (seek_to(w, p->topic, p->partition, p->rewind_to) != 0) {
            p->retry_at = ferry_mono_ms() + WORKER_CONSUME_RETRY_MS;
            return;
        }
        p->rewind_to = -1;
    }
    p->retry_at = 0;
    if (p->paused && !atomic_load(&w->stopping) && set_paused(w, p, 0) != 0)
        p->retry_at = ferry_mono_ms() + WORKER_CONSUME_RETRY_MS;
}

static void retry_settles(worker *w)
{
    int64_t now = 0;
    for (size_t i = 0; i < w->nparts; i++) {
        worker_partition *p = &w->parts[i];
        if (!p->retry_at || !p->assigned || p->inflight)
            continue;
        if (!now)
            now = ferry_mono_ms();
        if (now >= p->retry_at)
            settle(w, p);
    }
}

/* Runs msg as the partition's event in flight. The partition keeps flowing, so that
 * its next event is fetched meanwhile and waits in p->next. */
static void start(worker *w, worker_partition *p, rd_kafka_message_t *msg)
{
    worker_job *job = calloc(1, sizeof(*job));

    if (!job) {
        /* Come back to it: paused here, the poll loop seeks back and resumes later. */
        p->rewind_to = msg->offset;
        p->retry_at = ferry_mono_ms() + WORKER_CONSUME_RETRY_MS;
        set_paused(w, p, 1);
        rd_kafka_message_destroy(msg);
        return;
    }
    job->msg = msg;
    job->topic = p->topic;
    job->partition = msg->partition;
    job->offset = msg->offset;
    job->epoch = p->epoch;
    atomic_init(&job->cancel, 0);
    p->inflight = job;
    w->inflight++;
    worker_pool_submit(w, job);
    ferry_counter_inc(worker_metric.events_consumed);
}

/* The partition's event ended: start the one waiting behind it, unless the partition
 * goes back to an earlier offset (the ended one was not durable) or we are stopping. */
static void start_next(worker *w, worker_partition *p)
{
    rd_kafka_message_t *msg = p->next;

    p->next = NULL;
    if (!msg)
        return;
    if (atomic_load(&w->stopping) || (p->rewind_to >= 0 && msg->offset >= p->rewind_to)) {
        rd_kafka_message_destroy(msg);
        return;
    }
    start(w, p, msg);
}

/* Completions: store the offset if the outcome is durable and we still own the
 * partition under the same assignment; start the partition's next event, and let the
 * partition flow again. */
static void drain_completions(worker *w)
{
    worker_job *job = worker_pool_take_done(w), *next;
    for (; job; job = next) {
        worker_partition *p = part_get(w, job->topic, job->partition, 0);
        int current = p && p->assigned && p->epoch == job->epoch;
        next = job->next;
        if (current && job->store)
            store_offset(w, job->topic, job->partition, job->offset + 1);
        if (p && p->inflight == job) {
            p->inflight = NULL;
            if (p->assigned) {
                /* Not durable under this assignment: process it again. (A job of an
                 * earlier assignment needs no seek: its partition stayed paused at the
                 * committed offset since the new assignment.) */
                if (current && !job->store && (p->rewind_to < 0 || job->offset < p->rewind_to))
                    p->rewind_to = job->offset;
                start_next(w, p);
                settle(w, p);
            }
        }
        w->inflight--;
        rd_kafka_message_destroy(job->msg);
        free(job);
    }
}

static void dispatch(worker *w, rd_kafka_message_t *msg)
{
    int topic = topic_index(w, rd_kafka_topic_name(msg->rkt));
    worker_partition *p = part_get(w, topic, msg->partition, 1);

    if (!p || !p->assigned) {
        rd_kafka_message_destroy(msg);
        return;
    }
    if (p->inflight && !p->next && p->rewind_to < 0 && p->inflight->epoch == p->epoch &&
        msg->offset > p->inflight->offset) {
        /* The next event: it waits here, paused, until the one in flight ends. */
        p->next = msg;
        set_paused(w, p, 1);
        return;
    }
    if (p->inflight || p->rewind_to >= 0) {
        /* Fetched before the pause took effect, or while a seek back is pending: not
         * processed now, so come back to it. */
        if (p->rewind_to < 0 || msg->offset < p->rewind_to)
            p->rewind_to = msg->offset;
        rd_kafka_message_destroy(msg);
        return;
    }
    start(w, p, msg);
}

static void unwake(worker *w)
{
    pthread_mutex_lock(&w->lock);
    if (w->wake_q)
        rd_kafka_queue_destroy(w->wake_q);
    w->wake_q = NULL;
    pthread_mutex_unlock(&w->lock);
}

static void cancel_all(worker *w)
{
    for (size_t i = 0; i < w->nparts; i++)
        if (w->parts[i].inflight)
            atomic_store(&w->parts[i].inflight->cancel, 1);
}

int worker_consume_run(worker *w)
{
    char errstr[512];
    rd_kafka_topic_partition_list_t *sub;
    rd_kafka_resp_err_t e;
    int64_t deadline = 0;
    int exit_code = 0;
    const char *group = ferry_conf_str(w->conf, "worker.group");

    w->consumer = ferry_kafka_consumer_new(w->conf, group, install_rebalance_cb, w, errstr,
                                           sizeof(errstr));
    if (!w->consumer) {
        ferry_err(NULL, "creating the consumer: %s", errstr);
        return 1;
    }
    pthread_mutex_lock(&w->lock);
    w->wake_q = rd_kafka_queue_get_consumer(w->consumer);
    pthread_mutex_unlock(&w->lock);
    sub = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(sub, w->topics[0], RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(sub, w->topics[1], RD_KAFKA_PARTITION_UA);
    e = rd_kafka_subscribe(w->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        ferry_err(NULL, "subscribing to %s and %s: %s", w->topics[0], w->topics[1],
                  rd_kafka_err2str(e));
        unwake(w);
        rd_kafka_destroy(w->consumer);
        w->consumer = NULL;
        return 1;
    }
    ferry_info(NULL, "consuming %s and %s in group %s", w->topics[0], w->topics[1], group);

    for (;;) {
        rd_kafka_message_t *msg;
        int stopping = atomic_load(&w->stopping);

        if (stopping && !deadline) {
            deadline = ferry_mono_ms() + ferry_conf_int(w->conf, "shutdown.timeout_ms");
            ferry_info(NULL, "stopping: %zu migration(s) in flight will checkpoint and stop",
                       w->inflight);
            cancel_all(w);
        }
        drain_completions(w);
        retry_settles(w);
        if (stopping && w->inflight == 0)
            break;
        if (stopping && ferry_mono_ms() > deadline) {
            ferry_warn(NULL,
                       "shutdown deadline reached with %zu migration(s) still stopping; "
                       "their events will be redelivered",
                       w->inflight);
            exit_code = 1;
            break;
        }
        /* Keep polling even while stopping: it serves rebalances and heartbeats. */
        msg = rd_kafka_consumer_poll(w->consumer, 100);
        if (!msg)
            continue;
        if (msg->err) {
            if (msg->err == RD_KAFKA_RESP_ERR__FATAL) {
                char reason[512];
                rd_kafka_fatal_error(w->consumer, reason, sizeof(reason));
                ferry_err(NULL, "fatal consumer error: %s", reason);
                rd_kafka_message_destroy(msg);
                atomic_store(&w->stopping, 1);
                exit_code = 1;
                continue;
            }
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                ferry_warn(NULL, "consumer: %s", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            continue;
        }
        if (stopping) {
            /* Not taking new work; it is not stored, so it will be redelivered. */
            rd_kafka_message_destroy(msg);
            continue;
        }
        dispatch(w, msg);
    }

    for (size_t i = 0; i < w->nparts; i++)
        drop_next(&w->parts[i]); /* not stored: redelivered */
    /* Commits stored offsets and leaves the group. */
    e = rd_kafka_consumer_close(w->consumer);
    if (e)
        ferry_warn(NULL, "closing the consumer: %s", rd_kafka_err2str(e));
    /* Jobs still running past the deadline reference the message (and will wake the
     * queue when they end): leave both. */
    if (w->inflight == 0) {
        unwake(w);
        rd_kafka_destroy(w->consumer);
        w->consumer = NULL;
    }
    return exit_code;
}
