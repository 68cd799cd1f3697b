/* Fan-out: a dataset with more than fanout.min_objects objects is split by the worker
 * that received its onboard event into key-range chunks, each published as its own
 * event on the chunk topic, which the same consumer group consumes -- so many workers
 * copy one dataset at once. Every chunk has its own lease and checkpoint (state name
 * "<dataset>#<i>"); the chunk that completes the set finalizes the dataset (done, counts,
 * one notification) through the dataset's own lease. A chunk runs the same pipeline as a
 * whole dataset (worker_pipeline.c) with its own unit. Redis layout: ferry_chunks.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_chunks.h"
#include "ferry_kafka.h"
#include "ferry_log.h"
#include "ferry_state.h"
#include "ferry_util.h"
#include "worker.h"
#include "worker_copy.h"

int worker_fanout_wanted(const worker *w, const ferry_onboard *ev, int64_t objects_total)
{
    int64_t min = ferry_conf_int(w->conf, "fanout.min_objects");
    return ev->chunk_count == 0 && min > 0 && objects_total > min;
}

/* Chunk events go out in batches of up to this many: one Kafka round trip for a batch. */
#define PUBLISH_BATCH 64

/* Chunk i's event, the parent's request with the chunk's range: *buf (heap) and its
 * Kafka key. n is the chunk count, FERRY_CHUNK_COUNT_OPEN while the plan is growing. */
static ferry_rc encode_chunk(worker_thread_ctx *t, const ferry_onboard *parent, int64_t i,
                             int64_t n, void **buf, size_t *len, char *key, size_t key_size,
                             ferry_error *err)
{
    ferry_onboard c = *parent; /* borrows the parent's strings; only chunk_* are owned */
    char id[37];
    ferry_rc rc;

    c.chunk_start_after = c.chunk_end_key = NULL;
    if ((rc = ferry_chunks_range(t->redis, parent->dataset, i, n, &c.chunk_start_after,
                                 &c.chunk_end_key, err)) != FERRY_OK)
        return rc;
    ferry_chunks_event_id(parent->event_id, i, id);
    c.event_id = id;
    c.chunk_parent_event_id = parent->event_id;
    c.chunk_index = i;
    c.chunk_count = n;
    rc = ferry_avro_encode_onboard(t->codec, &c, FERRY_AVRO_SINGLE_OBJECT, 0, buf, len, err);
    /* Keyed per chunk (its partition: chunk_partition_count) */
    ferry_chunks_name(parent->dataset, i, key, key_size);
    free(c.chunk_start_after);
    free(c.chunk_end_key);
    return rc;
}

/* The chunk topic's partition count, looked up at most once a minute per thread.
 *
 * Chunk i goes to partition (FNV-1a(dataset) + i) mod count: consecutive chunks on
 * consecutive partitions, so n chunks fill the partitions evenly (and the workers that
 * hold them). Hashing each chunk's key instead left partitions empty and others with
 * several chunks: with 32 chunks on 16 partitions the busiest worker had twice the
 * average. The same chunk always goes to the same partition, so one published twice after
 * a crash meets its first copy there. */
static ferry_rc chunk_partition_count(worker_thread_ctx *t, int32_t *count, ferry_error *err)
{
    if (t->chunk_partitions < 1 || ferry_mono_ms() - t->chunk_partitions_at > 60000) {
        ferry_rc rc = ferry_kafka_partition_count(t->w->producer,
                                                  ferry_conf_str(t->w->conf, "topic.chunks"),
                                                  10000, &t->chunk_partitions, err);
        if (rc != FERRY_OK)
            return rc;
        t->chunk_partitions_at = ferry_mono_ms();
    }
    *count = t->chunk_partitions;
    return FERRY_OK;
}

/* Publishes chunks [*published, upto) and records them as published, a batch at a time.
 * Published before recorded: a crash in between publishes a batch twice, with the same
 * event ids, and the second delivery finds each chunk running or done. */
static ferry_rc publish_upto(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                             int64_t *published, int64_t upto, int64_t n, ferry_error *err)
{
    ferry_kafka_msg msgs[PUBLISH_BATCH];
    void *bufs[PUBLISH_BATCH];
    char keys[PUBLISH_BATCH][FERRY_STATE_DATASET_MAX + 32];
    uint64_t base = ferry_fnv1a64(FERRY_FNV1A64_INIT, ev->dataset, strlen(ev->dataset));
    int32_t parts = 1;
    ferry_rc rc = FERRY_OK;

    if (*published < upto && (rc = chunk_partition_count(t, &parts, err)) != FERRY_OK)
        return rc;
    while (*published < upto && rc == FERRY_OK) {
        size_t k = 0, want = (size_t)(upto - *published < PUBLISH_BATCH ? upto - *published
                                                                        : PUBLISH_BATCH);
        if (worker_should_stop(s))
            return worker_stopped(s, err);
        memset(msgs, 0, sizeof(msgs));
        for (; k < want; k++) {
            bufs[k] = NULL;
            if ((rc = encode_chunk(t, ev, *published + (int64_t)k, n, &bufs[k],
                                   &msgs[k].value_len, keys[k], sizeof(keys[k]), err)) !=
                FERRY_OK) {
                free(bufs[k]);
                break;
            }
            msgs[k].value = bufs[k];
            msgs[k].key = keys[k];
            msgs[k].key_len = strlen(keys[k]);
            msgs[k].pinned = 1; /* see chunk_partition_count */
            msgs[k].pin = (int32_t)((base + (uint64_t)(*published + (int64_t)k)) %
                                    (uint64_t)parts);
        }
        if (rc == FERRY_OK)
            rc = ferry_kafka_produce_many_until(t->w->producer,
                                                ferry_conf_str(t->w->conf, "topic.chunks"),
                                                msgs, k, 0, err);
        if (rc == FERRY_OK &&
            (rc = ferry_chunks_set_published(t->redis, ev->dataset, *published + (int64_t)k,
                                             err)) == FERRY_OK)
            *published += (int64_t)k;
        while (k > 0)
            free(bufs[--k]);
    }
    return rc;
}

/* The splitter's walk: each boundary found closes a chunk, recorded and then published at
 * once, so the fleet copies it while the listing goes on. */
typedef struct planner {
    worker_thread_ctx *t;
    worker_stop *s;
    const ferry_onboard *ev;
    int64_t bounds;    /* recorded */
    int64_t published; /* published (<= bounds) */
    ferry_error err;
} planner;

static ferry_rc add_boundary(const char *key, int more, void *opaque)
{
    planner *p = opaque;
    ferry_rc rc;
    if ((rc = ferry_chunks_plan_add(p->t->redis, p->ev->dataset, p->bounds, key, &p->err)) !=
        FERRY_OK)
        return rc;
    p->bounds++;
    /* a burst of bounds (prefixes, the count's) goes out in batches; a bound found by
     * listing goes out at once */
    if (more && p->bounds - p->published < PUBLISH_BATCH)
        return FERRY_OK;
    return publish_upto(p->t, p->s, p->ev, &p->published, p->bounds, FERRY_CHUNK_COUNT_OPEN,
                        &p->err);
}

ferry_rc worker_fanout_split(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                             const ferry_lease *lease, ferry_error *err)
{
    ferry_log_ctx lctx = {ev->dataset, ev->event_id};
    int64_t n, walked = 0, every = ferry_conf_int(t->w->conf, "fanout.chunk_objects");
    ferry_checkpoint cp = {"", 0, 0, -1, -1, -1, -1, -1, NULL, NULL, 0, 0};
    planner p = {t, s, ev, 0, 0, {0}};
    ferry_rc rc;

    /* The dataset's own checkpoint goes first: a copy that began before the count
     * (fanout.copy_before_count) left one, and a redelivery after a crash must start
     * fresh and find this plan, not copy on from it alone beside the chunks. */
    cp.objects_copied = cp.objects_identical = cp.objects_vanished = cp.objects_failed = 0;
    cp.event_id = ev->event_id;
    if ((rc = ferry_state_checkpoint(t->redis, lease, &cp, err)) != FERRY_OK ||
        (rc = ferry_chunks_plan_get(t->redis, ev->dataset, ev->event_id, &n, &p.published,
                                    &p.bounds, err)) != FERRY_OK)
        return rc;
    if (n < 0) {
        char *after = NULL, *unused = NULL;
        int64_t had = p.bounds;
        if (had > 0) {
            ferry_info(&lctx,
                       "resuming the split: %lld chunks planned, %lld published; listing on",
                       (long long)had, (long long)p.published);
            /* chunk `had` starts after the last bound recorded */
            if ((rc = ferry_chunks_range(t->redis, ev->dataset, had, had + 1, &after, &unused,
                                         err)) != FERRY_OK)
                return rc;
            free(unused);
        } else {
            ferry_info(&lctx, "splitting into chunks of %lld objects while listing",
                       (long long)every);
        }
        /* chunks whose bound was recorded but whose event a crash kept from going out */
        rc = publish_upto(t, s, ev, &p.published, p.bounds, FERRY_CHUNK_COUNT_OPEN, err);
        if (rc == FERRY_OK) {
            rc = worker_copy_boundaries(t->copier, t->redis, lease, ev, after, every,
                                        ferry_conf_str(t->w->conf, "fanout.delimiter"),
                                        add_boundary, &p, worker_should_stop, s, &walked, err);
            if (rc != FERRY_OK && p.err.msg[0])
                *err = p.err; /* the boundary's own error says more than the walk's */
        }
        free(after);
        if (rc != FERRY_OK)
            return rc;
        n = p.bounds + 1; /* the last chunk is open-ended: it also takes keys added later */
        /* split by prefixes, the count is the chunks' sum, known when they are done */
        cp.objects_total = walked < 0 ? -1 : had * every + walked;
        /* Complete before the last chunk goes out: whichever chunk completes the done set
         * then sees n. */
        if ((rc = ferry_chunks_plan_complete(t->redis, ev->dataset, n, err)) != FERRY_OK)
            return rc;
        if (walked >= 0)
            ferry_info(&lctx, "%lld objects: split into %lld chunks of about %lld",
                       (long long)cp.objects_total, (long long)n, (long long)every);
        else
            ferry_info(&lctx, "split into %lld chunks", (long long)n);
    } else if (p.published < n) {
        ferry_info(&lctx, "resuming the split: %lld of %lld chunk events already published",
                   (long long)p.published, (long long)n);
    }
    if ((rc = publish_upto(t, s, ev, &p.published, n, n, err)) != FERRY_OK)
        return rc;
    /* Keep the total for progress; the caller releases the lease. */
    return ferry_state_checkpoint(t->redis, lease, &cp, err);
}

/* The dataset is complete when its last chunk is: take the dataset's lease (waiting if
 * another chunk's worker finalizes it right now), record done once, announce once. */
static ferry_rc finalize(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *chunk,
                         int64_t n, ferry_error *err)
{
    ferry_onboard parent = *chunk; /* borrowed strings */
    ferry_acquire_result res = {0};
    int64_t objects = 0, bytes = 0;
    ferry_rc rc;

    parent.event_id = chunk->chunk_parent_event_id;
    parent.chunk_parent_event_id = parent.chunk_start_after = parent.chunk_end_key = NULL;
    parent.chunk_index = parent.chunk_count = 0;
    ferry_log_ctx lctx = {parent.dataset, parent.event_id};

    if ((rc = worker_acquire(t, s, &parent, parent.dataset, &res, err)) != FERRY_OK)
        goto out;
    if (res.outcome == FERRY_ACQUIRE_ALREADY_DONE) {
        rc = worker_announce(t, &parent, res.objects_done, res.bytes_done, 0,
                             res.finished_at_ms, err);
        goto out;
    }
    if ((rc = ferry_chunks_totals(t->redis, parent.dataset, &objects, &bytes, err)) !=
            FERRY_OK ||
        (rc = ferry_state_mark_done(t->redis, &res.lease, objects, bytes, objects, err)) !=
            FERRY_OK) {
        ferry_error rerr;
        ferry_state_release(t->redis, &res.lease, &rerr);
        goto out;
    }
    ferry_info(&lctx, "all %lld chunks done: migrated %lld objects (%lld bytes)", (long long)n,
               (long long)objects, (long long)bytes);
    rc = worker_announce(t, &parent, objects, bytes, 0, ferry_now_ms(), err);
out:
    ferry_acquire_result_clear(&res);
    return rc;
}

static void chunk_starting(const ferry_onboard *ev, const ferry_acquire_result *res,
                           const ferry_log_ctx *lctx)
{
    if (ev->chunk_count == FERRY_CHUNK_COUNT_OPEN)
        ferry_info(lctx, "%s chunk %lld (the dataset is still being listed)",
                   res->checkpoint ? "resuming" : "copying", (long long)ev->chunk_index + 1);
    else
        ferry_info(lctx, "%s chunk %lld of %lld", res->checkpoint ? "resuming" : "copying",
                   (long long)ev->chunk_index + 1, (long long)ev->chunk_count);
}

/* A chunk, once done (now, or by an earlier delivery: make sure it is counted): counted
 * into the dataset's totals; the last one finalizes the dataset. */
static ferry_rc chunk_done(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                           const worker_unit_done *d, ferry_error *err)
{
    char name[FERRY_STATE_DATASET_MAX + 1];
    int64_t done = 0, n = 0;
    ferry_rc rc;

    ferry_chunks_name(ev->dataset, ev->chunk_index, name, sizeof(name));
    ferry_log_ctx lctx = {name, ev->event_id};
    if ((rc = ferry_chunks_finish(t->redis, ev->dataset, ev->chunk_parent_event_id,
                                  ev->chunk_index, d->objects, d->bytes, &done, &n, err)) !=
        FERRY_OK)
        return rc;
    if (n == -2) { /* the split goes on; a later chunk completes the set */
        ferry_info(&lctx, "chunk done (%lld objects); %lld finished, the split still listing",
                   (long long)d->objects, (long long)done);
        return FERRY_OK;
    }
    if (n < 0) {
        ferry_warn(&lctx,
                   "the dataset's plan belongs to a newer event; this chunk is obsolete");
        return FERRY_OK;
    }
    ferry_info(&lctx, "chunk done (%lld objects); %lld of %lld chunks finished",
               (long long)d->objects, (long long)done, (long long)n);
    return done == n ? finalize(t, s, ev, n, err) : FERRY_OK;
}

ferry_rc worker_fanout_chunk(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                             ferry_error *err)
{
    char name[FERRY_STATE_DATASET_MAX + 1];
    /* A chunk is not counted again (its range's keys were counted for the plan) and is
     * never split further. */
    worker_unit u = {name, 0, chunk_starting, NULL, chunk_done};

    ferry_chunks_name(ev->dataset, ev->chunk_index, name, sizeof(name));
    return worker_pipeline_run(t, s, ev, &u, NULL, err);
}
