/* One event, start to finish, on a migration thread:
 *   decode -> validate the event -> lease -> validate the stores -> copy (checkpointed)
 *   -> mark done -> notify (the steps from the lease on: worker_pipeline.c),
 * and the decision every failure gets: retry with backoff (retryable), dead-letter at
 * once (permanent), dead-letter when retries run out, or stop without storing the
 * offset (revoked, shutting down, lease lost) so the next owner resumes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_chunks.h"
#include "ferry_connect.h"
#include "ferry_log.h"
#include "ferry_state.h"
#include "ferry_util.h"
#include "ferry_validate.h"
#include "worker.h"
#include "worker_copy.h"
#include "worker_metrics.h"

worker_thread_ctx *worker_thread_ctx_new(worker *w, int index, char *errstr, size_t errstr_size)
{
    worker_thread_ctx *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    t->w = w;
    snprintf(t->owner, sizeof(t->owner), "%s/%d", w->id, index);
    if (!(t->codec = ferry_avro_codec_new(errstr, errstr_size)) ||
        !(t->redis = ferry_connect_redis(w->conf, errstr, errstr_size)) ||
        !(t->copier = worker_copier_new(w->conf, w->limiters, errstr, errstr_size))) {
        worker_thread_ctx_destroy(t);
        return NULL;
    }
    return t;
}

void worker_thread_ctx_destroy(worker_thread_ctx *t)
{
    if (!t)
        return;
    worker_copier_destroy(t->copier);
    ferry_redis_destroy(t->redis);
    ferry_avro_codec_destroy(t->codec);
    free(t);
}

/* A whole dataset starting fresh above fanout.min_objects is split into chunk events
 * instead of copied: *taken says so. */
static ferry_rc split_if_large(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                               const ferry_lease *lease, int64_t objects_total, int *taken,
                               ferry_error *err)
{
    *taken = worker_fanout_wanted(t->w, ev, objects_total);
    return *taken ? worker_fanout_split(t, s, ev, lease, err) : FERRY_OK;
}

static void dataset_starting(const ferry_onboard *ev, const ferry_acquire_result *res,
                             const ferry_log_ctx *lctx)
{
    if (res->resumed && res->checkpoint)
        ferry_info(lctx, "resuming after %s (%lld objects done, attempt %lld)", res->checkpoint,
                   (long long)res->objects_done, (long long)res->attempts);
    else
        ferry_info(lctx, "migrating %s -> %s", ev->source_uri, ev->target_uri);
}

/* A whole dataset, once done: DatasetMigrated (again, if an earlier delivery finished it,
 * since the notification may not have gone out before a crash). */
static ferry_rc dataset_done(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                             const worker_unit_done *d, ferry_error *err)
{
    ferry_log_ctx lctx = {ev->dataset, ev->event_id};

    (void)s;
    if (d->already) {
        ferry_info(&lctx, "already migrated (%lld objects); not copying again",
                   (long long)d->objects);
        return worker_announce(t, ev, d->objects, d->bytes, 0, d->finished_at_ms, err);
    }
    ferry_info(&lctx,
               "migrated %lld objects (%lld bytes, %lld skipped as identical) in %lld ms",
               (long long)d->objects, (long long)d->bytes, (long long)d->skipped,
               (long long)(ferry_now_ms() - d->t0));
    return worker_announce(t, ev, d->objects, d->bytes, ferry_now_ms() - d->t0, ferry_now_ms(),
                           err);
}

/* One attempt at an event: a whole dataset here, a chunk through worker_fanout_chunk.
 * FERRY_OK: done (or already done, or handed to chunk events) and announced. */
static ferry_rc attempt(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                        ferry_error *err)
{
    worker_unit u = {ev->dataset, 1, dataset_starting, split_if_large, dataset_done};
    int handed_off = 0;
    ferry_rc rc;

    if (ev->chunk_count != 0)
        return worker_fanout_chunk(t, s, ev, err);
    rc = worker_pipeline_run(t, s, ev, &u, &handed_off, err);
    if (handed_off) {
        ferry_log_ctx lctx = {ev->dataset, ev->event_id};
        ferry_info(&lctx,
                   "split into chunk events; the workers that run them finish the dataset");
    }
    return rc;
}

/* Failures that are about the fleet's own infrastructure (Redis, Kafka) are not the
 * event's fault: retry them without limit instead of dead-lettering good events. */
static int infrastructure(const ferry_error *err)
{
    return !strcmp(err->cls, FERRY_EC_REDIS) || !strcmp(err->cls, FERRY_EC_KAFKA) ||
           !strcmp(err->cls, FERRY_EC_CONFIG);
}

/* Makes a failure visible in the status view when no lease is held (best effort: the
 * DLQ record is what matters). */
static void record_failure(worker_thread_ctx *t, const ferry_onboard *ev, const ferry_error *e)
{
    ferry_fail_req req = {ev->dataset,    t->owner,       ev->event_id, NULL,
                          ev->source_uri, ev->target_uri, e->cls,       e->msg};
    ferry_error err;
    char spec_hash[17], chunk_name[FERRY_STATE_DATASET_MAX + 1];
    ferry_state_spec_hash(ev, spec_hash);
    req.spec_hash = spec_hash;
    if (ev->chunk_count != 0) { /* a chunk's failure is recorded on the chunk's own state */
        ferry_chunks_name(ev->dataset, ev->chunk_index, chunk_name, sizeof(chunk_name));
        req.dataset = chunk_name;
    }
    if (ferry_state_mark_failed_unleased(t->redis, &req, &err) != FERRY_OK) {
        ferry_log_ctx lctx = {ev->dataset, ev->event_id};
        ferry_warn(&lctx, "recording the failure in Redis: %s", err.msg);
    }
}

static void dead_letter(worker_thread_ctx *t, worker_job *job, const ferry_log_ctx *lctx,
                        const ferry_error *cause, int attempts, const char *report)
{
    ferry_error err;
    if (worker_dlq_send(t->w, job->msg, lctx, cause, attempts, report, &err) == FERRY_OK)
        job->store = 1;
}

/* Where a failed-objects event's report is: "redis:<key of the report hash>", then
 * " s3://<bucket>/<key>" when the JSON-lines object was written. */
static const char *report_location(worker_thread_ctx *t, const ferry_onboard *ev, char *buf,
                                   size_t size)
{
    char name[FERRY_STATE_DATASET_MAX + 1], key[FERRY_STATE_KEY_MAX + 300];
    ferry_migration_state st;
    ferry_error err;

    if (ev->chunk_count != 0)
        ferry_chunks_name(ev->dataset, ev->chunk_index, name, sizeof(name));
    else
        snprintf(name, sizeof(name), "%s", ev->dataset);
    if (ferry_state_report_key(key, sizeof(key), name, ev->event_id, &err) != FERRY_OK)
        return NULL;
    snprintf(buf, size, "redis:%s", key);
    if (ferry_state_get(t->redis, name, &st, &err) == FERRY_OK) {
        if (st.report_object && st.event_id && !strcmp(st.event_id, ev->event_id))
            snprintf(buf, size, "redis:%s %s", key, st.report_object);
        ferry_migration_state_clear(&st);
    }
    return buf;
}

/* The dataset for log lines about an event that did not decode or validate: the message
 * key (producers key by dataset) or the event's field, only if it is a valid name. */
static const char *loggable_dataset(const worker_job *job, const ferry_onboard *ev, char *buf,
                                    size_t size)
{
    if (ev->dataset && ferry_dataset_name_valid(ev->dataset, NULL, 0))
        return ev->dataset;
    if (job->msg->key && job->msg->key_len < size) {
        memcpy(buf, job->msg->key, job->msg->key_len);
        buf[job->msg->key_len] = '\0';
        if (ferry_dataset_name_valid(buf, NULL, 0))
            return buf;
    }
    return NULL;
}

void worker_migrate_job(worker_thread_ctx *t, worker_job *job)
{
    ferry_onboard ev = {0};
    ferry_error err = {0};
    worker_stop s = {job, 0};
    int max_attempts = (int)ferry_conf_int(t->w->conf, "retry.max_attempts");
    int64_t base = ferry_conf_int(t->w->conf, "retry.base_ms");
    int64_t cap = ferry_conf_int(t->w->conf, "retry.max_ms");
    int64_t max_elapsed = ferry_conf_int(t->w->conf, "retry.max_elapsed_ms");
    int64_t first_failure = 0;
    int failures = 0, infra_failures = 0;
    char keybuf[FERRY_STATE_DATASET_MAX + 1];

    job->store = 0;
    ferry_gauge_add(worker_metric.in_flight, 1);
    if (ferry_avro_decode_onboard(t->codec, job->msg->payload, job->msg->len, &ev, &err) !=
        FERRY_OK) {
        ferry_log_ctx lctx = {loggable_dataset(job, &ev, keybuf, sizeof(keybuf)), NULL};
        ferry_warn(&lctx, "partition %d offset %lld: undecodable event: %s",
                   (int)job->partition, (long long)job->offset, err.msg);
        worker_metrics_failure(err.cls);
        dead_letter(t, job, &lctx, &err, 1, NULL);
        goto out;
    }
    if (ferry_onboard_validate(&ev, &err) != FERRY_OK) {
        ferry_log_ctx lctx = {loggable_dataset(job, &ev, keybuf, sizeof(keybuf)), ev.event_id};
        ferry_warn(&lctx, "invalid event at partition %d offset %lld: %s", (int)job->partition,
                   (long long)job->offset, err.msg);
        worker_metrics_failure(err.cls);
        if (ev.dataset && ferry_state_dataset_ok(ev.dataset) &&
            ferry_dataset_name_valid(ev.dataset, NULL, 0))
            record_failure(t, &ev, &err);
        dead_letter(t, job, &lctx, &err, 1, NULL);
        goto out;
    }
    {
        ferry_log_ctx lctx = {ev.dataset, ev.event_id};
        for (;;) {
            ferry_rc rc = attempt(t, &s, &ev, &err);
            if (rc == FERRY_OK) {
                job->store = 1;
                break;
            }
            if (rc == FERRY_ERR_CANCELLED) {
                if (!strcmp(err.cls, FERRY_EC_FENCED))
                    worker_metrics_failure(err.cls);
                ferry_info(&lctx, "not finished here (%s); the next owner resumes", err.msg);
                break;
            }
            worker_metrics_failure(err.cls);
            if (rc == FERRY_ERR_PERMANENT) {
                char report[FERRY_STATE_KEY_MAX + 1600];
                ferry_err(&lctx, "failed permanently: %s: %s", err.cls, err.msg);
                dead_letter(t, job, &lctx, &err, failures + 1,
                            strcmp(err.cls, FERRY_EC_FAILED_OBJECTS)
                                ? NULL
                                : report_location(t, &ev, report, sizeof(report)));
                break;
            }
            if (infrastructure(&err)) {
                ferry_warn(&lctx, "%s unavailable (%s); waiting and retrying", err.cls,
                           err.msg);
                ferry_counter_inc(worker_metric.retries);
                if (worker_nap(&s, ferry_backoff_ms(infra_failures++, base, cap)))
                    break;
                continue;
            }
            if (!failures)
                first_failure = ferry_mono_ms();
            if (++failures >= max_attempts || ferry_mono_ms() - first_failure > max_elapsed) {
                ferry_error ex;
                ferry_error_set(&ex, FERRY_ERR_PERMANENT, FERRY_EC_EXHAUSTED,
                                "%d attempts failed; last: %s: %s", failures, err.cls, err.msg);
                ferry_err(&lctx, "giving up: %s", ex.msg);
                worker_metrics_failure(ex.cls);
                record_failure(t, &ev, &ex);
                dead_letter(t, job, &lctx, &ex, failures, NULL);
                break;
            }
            ferry_warn(&lctx, "attempt %d failed: %s: %s (retrying)", failures, err.cls,
                       err.msg);
            ferry_counter_inc(worker_metric.retries);
            if (worker_nap(&s, ferry_backoff_ms(failures - 1, base, cap)))
                break;
        }
    }
out:
    ferry_gauge_add(worker_metric.in_flight, -1);
    ferry_onboard_clear(&ev);
}
