/* One event, start to finish, on a migration thread:
 *   decode -> validate the event -> lease -> validate the stores -> copy (checkpointed)
 *   -> mark done -> notify,
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


worker_thread_ctx *worker_thread_ctx_new(worker *w, int index, char *errstr,
                                         size_t errstr_size)
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

int worker_should_stop(void *opaque)
{
    worker_stop *s = opaque;
    return atomic_load(&s->job->cancel) || atomic_load(&s->lost);
}

/* Sleeps up to ms, waking early when the job must stop. Returns 1 if it must. */
static int nap(worker_stop *s, int64_t ms)
{
    int64_t end = ferry_mono_ms() + ms;
    while (ferry_mono_ms() < end) {
        if (worker_should_stop(s))
            return 1;
        ferry_sleep_ms(end - ferry_mono_ms() < 100 ? end - ferry_mono_ms() : 100);
    }
    return worker_should_stop(s);
}

ferry_rc worker_stopped(worker_stop *s, ferry_error *err)
{
    return ferry_error_set(err, FERRY_ERR_CANCELLED,
                           atomic_load(&s->lost) ? FERRY_EC_FENCED : FERRY_EC_INTERNAL,
                           atomic_load(&s->lost) ? "lease lost to another worker"
                                                 : "stopped (partition revoked or shutdown)");
}

/* A second event for a running dataset waits its turn. */
ferry_rc worker_acquire(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                        const char *name, ferry_acquire_result *res, ferry_error *err)
{
    char spec_hash[17];
    ferry_acquire_req req = {name, t->owner, ev->event_id, spec_hash, ev->source_uri,
                             ev->target_uri, ferry_conf_int(t->w->conf, "lease.ttl_ms")};
    ferry_log_ctx lctx = {name, ev->event_id};
    int logged = 0;

    ferry_state_spec_hash(ev, spec_hash);
    for (;;) {
        ferry_rc rc = ferry_state_acquire(t->redis, &req, res, err);
        if (rc != FERRY_OK || res->outcome != FERRY_ACQUIRE_BUSY)
            return rc;
        if (!logged++)
            ferry_info(&lctx, "dataset is being migrated by %s; waiting for its lease",
                       res->holder ? res->holder : "another worker");
        ferry_acquire_result_clear(res);
        if (nap(s, req.ttl_ms / 3 > 2000 ? 2000 : req.ttl_ms / 3))
            return worker_stopped(s, err);
    }
}

/* How the objects ended, from the state hash the last checkpoint wrote (best effort: the
 * counts stay 0 when unknown, e.g. for a dataset split into chunks). */
static void outcome_counts(worker_thread_ctx *t, const ferry_onboard *ev, ferry_migrated *m)
{
    ferry_migration_state st;
    ferry_error err;

    if (ferry_state_get(t->redis, ev->dataset, &st, &err) != FERRY_OK)
        return;
    if (st.event_id && !strcmp(st.event_id, ev->event_id)) {
        m->objects_copied = st.objects_copied;
        m->objects_identical = st.objects_identical;
        m->objects_vanished = st.objects_vanished;
        m->objects_failed = st.objects_failed;
    }
    ferry_migration_state_clear(&st);
}

static ferry_rc notify(worker_thread_ctx *t, const ferry_onboard *ev, int64_t objects,
                       int64_t bytes, int64_t duration_ms, int64_t finished_at,
                       ferry_error *err)
{
    ferry_migrated m = {0};
    ferry_rc rc;
    m.event_id = ev->event_id;
    m.dataset = ev->dataset;
    m.source_uri = ev->source_uri;
    m.target_uri = ev->target_uri;
    m.objects = objects;
    m.bytes = bytes;
    m.duration_ms = duration_ms;
    m.finished_at_ms = finished_at;
    m.worker = t->w->id;
    outcome_counts(t, ev, &m);
    rc = worker_notify_migrated(t->w, t->codec, &m, err); /* m borrows ev's strings */
    if (rc == FERRY_OK) {
        ferry_error merr;
        /* Best effort: without the marker the claim expires and a worker still holding
         * the event (or its redelivery) announces it once more. */
        if (ferry_state_notified_set(t->redis, ev->dataset, ev->event_id, &merr) != FERRY_OK) {
            ferry_log_ctx lctx = {ev->dataset, ev->event_id};
            ferry_warn(&lctx, "recording the notification: %s", merr.msg);
        }
    }
    return rc;
}

/* The webhook is told once per finished migration; its failure is recorded, never fatal. */
static void webhook(worker_thread_ctx *t, const ferry_onboard *ev, int64_t objects,
                    int64_t bytes, int64_t duration_ms)
{
    ferry_migrated m = {ev->event_id, ev->dataset, ev->source_uri, ev->target_uri, objects,
                        bytes, duration_ms, ferry_now_ms(), t->w->id, 0, 0, 0, 0};
    ferry_log_ctx lctx = {ev->dataset, ev->event_id};
    ferry_error err = {0}, serr;
    char outcome[600];

    if (!ferry_conf_str(t->w->conf, "notify.webhook_url"))
        return;
    if (worker_webhook_post(t->w, &m, &err) == FERRY_OK) {
        snprintf(outcome, sizeof(outcome), "ok");
        ferry_info(&lctx, "webhook notified");
    } else {
        snprintf(outcome, sizeof(outcome), "failed: %s", err.msg);
        ferry_err(&lctx, "webhook failed (the migration stands): %s", err.msg);
    }
    if (ferry_state_note_webhook(t->redis, ev->dataset, ev->event_id, outcome, &serr) != FERRY_OK)
        ferry_warn(&lctx, "recording the webhook outcome: %s", serr.msg);
}

/* Test hook (FERRY_TEST_ANNOUNCE_DELAY_MS): sleeps between deciding to announce and
 * producing, so a test can make a duplicate event arrive in that window. */
static void announce_test_delay(void)
{
    const char *v = getenv("FERRY_TEST_ANNOUNCE_DELAY_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    if (ms > 0)
        ferry_sleep_ms(ms);
}

/* How long an announcement claim lasts: past the producer's own delivery timeout
 * (message.timeout.ms, 60 s), so a live claimer is never overtaken; a dead one's claim
 * expires and the next worker holding the event announces it. */
#define ANNOUNCE_CLAIM_MS 120000
#define ANNOUNCE_POLL_MS 100

ferry_rc worker_announce(worker_thread_ctx *t, const ferry_onboard *ev, int64_t objects,
                         int64_t bytes, int64_t duration_ms, int64_t finished_at,
                         ferry_error *err)
{
    ferry_log_ctx lctx = {ev->dataset, ev->event_id};
    ferry_announce_claim claim;
    int waited = 0;
    ferry_rc rc;

    /* Only the claimer produces. Whoever finds the claim held waits until the claimer
     * records it as sent (or its claim expires or is released: then it claims), so no
     * worker stores this event's offset before DatasetMigrated went out. */
    for (;;) {
        if ((rc = ferry_state_announce_claim(t->redis, ev->dataset, ev->event_id, t->owner,
                                             ANNOUNCE_CLAIM_MS, &claim, err)) != FERRY_OK)
            return rc;
        if (claim != FERRY_ANNOUNCE_HELD)
            break;
        if (!waited++)
            ferry_info(&lctx, "another worker is announcing it; waiting until it is sent");
        ferry_sleep_ms(ANNOUNCE_POLL_MS);
    }
    if (claim == FERRY_ANNOUNCE_SENT) {
        if (waited)
            ferry_info(&lctx, "announced by another worker");
        return FERRY_OK;
    }
    announce_test_delay();
    if ((rc = notify(t, ev, objects, bytes, duration_ms, finished_at, err)) != FERRY_OK) {
        ferry_error rerr;
        /* Let another holder of the event announce now instead of after the expiry. */
        if (ferry_state_announce_release(t->redis, ev->dataset, ev->event_id, t->owner,
                                         &rerr) != FERRY_OK)
            ferry_warn(&lctx, "releasing the announce claim: %s", rerr.msg);
        ferry_error_prefix(err, "migrated, but notifying");
        return rc;
    }
    webhook(t, ev, objects, bytes, duration_ms);
    return FERRY_OK;
}

void worker_progress_from(worker_copy_progress *prog, const ferry_acquire_result *res)
{
    prog->checkpoint = res->checkpoint;
    prog->objects_done = res->objects_done;
    prog->bytes_done = res->bytes_done;
    prog->objects_total = res->objects_total;
    prog->copied = res->objects_copied;
    prog->identical = res->objects_identical;
    prog->vanished = res->objects_vanished;
    prog->failed = res->objects_failed;
    /* Only a resumed run (or a replay) can find its own earlier copies at the target. */
    prog->started_at_ms = res->resumed || res->recheck ? res->started_at_ms : 0;
    prog->recheck = res->recheck;
}

/* The report as a JSON-lines object at s3://<report.bucket>/<report.prefix><name>/
 * <event_id>.jsonl on the target endpoint (when report.bucket is set), as S3 Batch
 * Operations writes completion reports. Best effort: the Redis report stays the record. */
static void write_report_object(worker_thread_ctx *t, const char *name, const ferry_onboard *ev)
{
    const char *bucket = ferry_conf_str(t->w->conf, "report.bucket");
    const char *prefix = ferry_conf_str(t->w->conf, "report.prefix");
    ferry_log_ctx lctx = {name, ev->event_id};
    char key[1100], uri[1200];
    char *body = NULL;
    size_t len = 0;
    ferry_error err;

    if (!bucket)
        return;
    snprintf(key, sizeof(key), "%s%s/%s.jsonl", prefix ? prefix : "", name, ev->event_id);
    snprintf(uri, sizeof(uri), "s3://%s/%s", bucket, key);
    if (ferry_state_report_read(t->redis, name, ev->event_id, &body, &len, &err) != FERRY_OK ||
        worker_copy_put_object(t->copier, bucket, key, body ? body : "", len,
                               "application/x-ndjson", &err) != FERRY_OK ||
        ferry_state_note_report_object(t->redis, name, ev->event_id, uri, &err) != FERRY_OK)
        ferry_warn(&lctx, "writing the report object %s (the report in Redis stands): %s", uri,
                   err.msg);
    else
        ferry_info(&lctx, "failure report written to %s", uri);
    free(body);
}

ferry_rc worker_end_failed_objects(worker_thread_ctx *t, const char *name,
                                   const ferry_onboard *ev, const ferry_lease *lease,
                                   const worker_copy_progress *prog, ferry_error *err)
{
    ferry_log_ctx lctx = {name, ev->event_id};
    ferry_error why;
    ferry_rc rc;

    ferry_error_set(&why, FERRY_ERR_PERMANENT, FERRY_EC_FAILED_OBJECTS,
                    "%lld objects failed (%lld copied, %lld identical, %lld vanished); "
                    "last: %s: %s",
                    (long long)prog->failed, (long long)prog->copied,
                    (long long)prog->identical, (long long)prog->vanished,
                    prog->last_object_err.cls[0] ? prog->last_object_err.cls : "see the report",
                    prog->last_object_err.msg);
    rc = ferry_state_mark_failed_objects(t->redis, lease, prog->objects_done, prog->bytes_done,
                                         prog->objects_done + prog->failed + prog->vanished,
                                         why.cls, why.msg, err);
    if (rc != FERRY_OK)
        return rc;
    ferry_err(&lctx, "finished with failed objects: %s", why.msg);
    write_report_object(t, name, ev);
    *err = why;
    return FERRY_ERR_PERMANENT;
}

/* One attempt at a whole-dataset event. FERRY_OK: done (or already done, or handed to
 * chunk events) and announced. */
static ferry_rc attempt(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                        ferry_error *err)
{
    ferry_log_ctx lctx = {ev->dataset, ev->event_id};
    ferry_acquire_result res = {0};
    worker_copy_progress prog = {0};
    int64_t t0 = ferry_now_ms();
    ferry_rc rc;
    int tracked = 0, handed_off = 0;

    if (ev->chunk_count > 0)
        return worker_fanout_chunk(t, s, ev, err);
    if ((rc = worker_acquire(t, s, ev, ev->dataset, &res, err)) != FERRY_OK)
        goto out;
    if (res.outcome == FERRY_ACQUIRE_ALREADY_DONE) {
        ferry_info(&lctx, "already migrated (%lld objects); not copying again",
                   (long long)res.objects_done);
        /* Done, but the notification may not have gone out before a crash. */
        rc = worker_announce(t, ev, res.objects_done, res.bytes_done, 0, res.finished_at_ms, err);
        goto out;
    }
    worker_lease_track(t->w, &res.lease, ev->event_id, &s->lost);
    tracked = 1;
    if (res.resumed && res.checkpoint)
        ferry_info(&lctx, "resuming after %s (%lld objects done, attempt %lld)",
                   res.checkpoint, (long long)res.objects_done, (long long)res.attempts);
    else
        ferry_info(&lctx, "migrating %s -> %s", ev->source_uri, ev->target_uri);

    worker_progress_from(&prog, &res);
    if ((rc = worker_copy_prepare(t->copier, ev, 1, &prog, worker_should_stop, s, err)) !=
        FERRY_OK)
        goto out;
    if (!res.checkpoint && worker_fanout_wanted(t->w, ev, prog.objects_total)) {
        rc = worker_fanout_split(t, s, ev, &res.lease, prog.objects_total, err);
        handed_off = rc == FERRY_OK;
        goto out;
    }
    rc = worker_copy_dataset(t->copier, t->redis, &res.lease, ev, res.resumed, &prog,
                             worker_should_stop, s, err);
    if (rc == FERRY_OK && worker_should_stop(s))
        rc = worker_stopped(s, err);
    if (rc != FERRY_OK)
        goto out;
    if (prog.failed > 0) {
        rc = worker_end_failed_objects(t, ev->dataset, ev, &res.lease, &prog, err);
        if (rc == FERRY_ERR_PERMANENT) { /* recorded; the lease went with it */
            worker_lease_untrack(t->w, ev->dataset);
            tracked = 0;
        }
        goto out;
    }
    rc = ferry_state_mark_done(t->redis, &res.lease, prog.objects_done, prog.bytes_done,
                               prog.objects_done + prog.vanished, err);
    if (rc != FERRY_OK)
        goto out;
    worker_lease_untrack(t->w, ev->dataset);
    tracked = 0;
    ferry_info(&lctx, "migrated %lld objects (%lld bytes, %lld skipped as identical) in %lld ms",
               (long long)prog.objects_done, (long long)prog.bytes_done,
               (long long)prog.objects_skipped, (long long)(ferry_now_ms() - t0));
    rc = worker_announce(t, ev, prog.objects_done, prog.bytes_done, ferry_now_ms() - t0,
                         ferry_now_ms(), err);
out:
    if (tracked) {
        ferry_error rerr;
        worker_lease_untrack(t->w, ev->dataset);
        /* Not finished here (or handed to the chunks): release the lease, keeping the
         * checkpoint. A permanent failure is recorded as such (it needs the lease). */
        if (rc != FERRY_ERR_PERMANENT && !atomic_load(&s->lost))
            ferry_state_release(t->redis, &res.lease, &rerr);
        else if (rc == FERRY_ERR_PERMANENT &&
                 ferry_state_mark_failed(t->redis, &res.lease, err->cls, err->msg, &rerr) !=
                     FERRY_OK)
            ferry_warn(&lctx, "recording the failure in Redis: %s", rerr.msg);
    }
    if (handed_off)
        ferry_info(&lctx, "split into chunk events; the workers that run them finish the dataset");
    ferry_acquire_result_clear(&res);
    free(prog.checkpoint_owned);
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
    ferry_fail_req req = {ev->dataset, t->owner, ev->event_id, NULL, ev->source_uri,
                          ev->target_uri, e->cls, e->msg};
    ferry_error err;
    char spec_hash[17], chunk_name[FERRY_STATE_DATASET_MAX + 1];
    ferry_state_spec_hash(ev, spec_hash);
    req.spec_hash = spec_hash;
    if (ev->chunk_count > 0) { /* a chunk's failure is recorded on the chunk's own state */
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

    if (ev->chunk_count > 0)
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
                ferry_warn(&lctx, "%s unavailable (%s); waiting and retrying", err.cls, err.msg);
                ferry_counter_inc(worker_metric.retries);
                if (nap(&s, ferry_backoff_ms(infra_failures++, base, cap)))
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
            ferry_warn(&lctx, "attempt %d failed: %s: %s (retrying)", failures, err.cls, err.msg);
            ferry_counter_inc(worker_metric.retries);
            if (nap(&s, ferry_backoff_ms(failures - 1, base, cap)))
                break;
        }
    }
out:
    ferry_gauge_add(worker_metric.in_flight, -1);
    ferry_onboard_clear(&ev);
}
