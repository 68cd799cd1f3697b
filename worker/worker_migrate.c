/* One event, start to finish, on a migration thread:
 *   decode -> validate the event -> lease -> validate the stores -> copy (checkpointed)
 *   -> mark done -> notify,
 * and the decision every failure gets: retry with backoff (retryable), dead-letter at
 * once (permanent), dead-letter when retries run out, or stop without storing the
 * offset (revoked, shutting down, lease lost) so the next owner resumes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_connect.h"
#include "ferry_log.h"
#include "ferry_state.h"
#include "ferry_util.h"
#include "ferry_validate.h"
#include "worker.h"
#include "worker_copy.h"

struct worker_thread_ctx {
    worker *w;
    ferry_avro_codec *codec;
    ferry_redis *redis;
    worker_copier *copier;
};

worker_thread_ctx *worker_thread_ctx_new(worker *w, char *errstr, size_t errstr_size)
{
    worker_thread_ctx *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    t->w = w;
    if (!(t->codec = ferry_avro_codec_new(errstr, errstr_size)) ||
        !(t->redis = ferry_connect_redis(w->conf, errstr, errstr_size)) ||
        !(t->copier = worker_copier_new(w->conf, errstr, errstr_size))) {
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

/* Set when the migration must stop: revoked or shutting down (job->cancel), or the lease
 * was lost (lost). */
typedef struct stop_flags {
    worker_job *job;
    atomic_int lost;
} stop_flags;

static int should_stop(void *opaque)
{
    stop_flags *s = opaque;
    return atomic_load(&s->job->cancel) || atomic_load(&s->lost);
}

/* Sleeps up to ms, waking early when the job must stop. Returns 1 if it must. */
static int nap(stop_flags *s, int64_t ms)
{
    int64_t end = ferry_mono_ms() + ms;
    while (ferry_mono_ms() < end) {
        if (should_stop(s))
            return 1;
        ferry_sleep_ms(end - ferry_mono_ms() < 100 ? end - ferry_mono_ms() : 100);
    }
    return should_stop(s);
}

static ferry_rc stopped(stop_flags *s, ferry_error *err)
{
    return ferry_error_set(err, FERRY_ERR_CANCELLED,
                           atomic_load(&s->lost) ? FERRY_EC_FENCED : FERRY_EC_INTERNAL,
                           atomic_load(&s->lost) ? "lease lost to another worker"
                                                 : "stopped (partition revoked or shutdown)");
}

/* Takes the lease, waiting while another worker holds it: a second event for a running
 * dataset waits its turn. */
static ferry_rc acquire(worker_thread_ctx *t, stop_flags *s, const ferry_onboard *ev,
                        const char *spec_hash, ferry_acquire_result *res, ferry_error *err)
{
    ferry_acquire_req req = {ev->dataset, t->w->id, ev->event_id, spec_hash, ev->source_uri,
                             ev->target_uri, ferry_conf_int(t->w->conf, "lease.ttl_ms")};
    ferry_log_ctx lctx = {ev->dataset, ev->event_id};
    int logged = 0;

    for (;;) {
        ferry_rc rc = ferry_state_acquire(t->redis, &req, res, err);
        if (rc != FERRY_OK || res->outcome != FERRY_ACQUIRE_BUSY)
            return rc;
        if (!logged++)
            ferry_info(&lctx, "dataset is being migrated by %s; waiting for its lease",
                       res->holder ? res->holder : "another worker");
        ferry_acquire_result_clear(res);
        if (nap(s, req.ttl_ms / 3 > 2000 ? 2000 : req.ttl_ms / 3))
            return stopped(s, err);
    }
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
    rc = worker_notify_migrated(t->w, t->codec, &m, err);
    /* m borrows ev's strings: nothing to free. */
    return rc;
}

/* One attempt. FERRY_OK means done (or already done) and notified. */
static ferry_rc attempt(worker_thread_ctx *t, stop_flags *s, const ferry_onboard *ev,
                        ferry_error *err)
{
    ferry_log_ctx lctx = {ev->dataset, ev->event_id};
    ferry_acquire_result res = {0};
    worker_copy_progress prog = {0};
    char spec_hash[17];
    int64_t t0 = ferry_now_ms();
    ferry_rc rc;
    int tracked = 0;

    ferry_state_spec_hash(ev, spec_hash);
    if ((rc = acquire(t, s, ev, spec_hash, &res, err)) != FERRY_OK)
        goto out;
    if (res.outcome == FERRY_ACQUIRE_ALREADY_DONE) {
        /* Redelivered after it finished: the notification may not have gone out before
         * the crash, so send it again (at least once); copy nothing. */
        ferry_info(&lctx, "already migrated (%lld objects); not copying again",
                   (long long)res.objects_done);
        rc = notify(t, ev, res.objects_done, res.bytes_done, 0, res.finished_at_ms, err);
        goto out;
    }
    worker_lease_track(t->w, &res.lease, &s->lost);
    tracked = 1;
    if (res.resumed && res.checkpoint)
        ferry_info(&lctx, "resuming after %s (%lld objects done, attempt %lld)",
                   res.checkpoint, (long long)res.objects_done, (long long)res.attempts);
    else
        ferry_info(&lctx, "migrating %s -> %s", ev->source_uri, ev->target_uri);

    prog.checkpoint = res.checkpoint;
    prog.objects_done = res.objects_done;
    prog.bytes_done = res.bytes_done;
    prog.objects_total = res.objects_total;
    rc = worker_copy_dataset(t->copier, t->redis, &res.lease, ev, res.resumed, &prog,
                             should_stop, s, err);
    if (rc == FERRY_OK && should_stop(s))
        rc = stopped(s, err);
    if (rc != FERRY_OK)
        goto out;
    rc = ferry_state_mark_done(t->redis, &res.lease, prog.objects_done, prog.bytes_done,
                               prog.objects_done, err);
    if (rc != FERRY_OK)
        goto out;
    worker_lease_untrack(t->w, ev->dataset);
    tracked = 0;
    ferry_info(&lctx, "migrated %lld objects (%lld bytes, %lld skipped as identical) in %lld ms",
               (long long)prog.objects_done, (long long)prog.bytes_done,
               (long long)prog.objects_skipped, (long long)(ferry_now_ms() - t0));
    rc = notify(t, ev, prog.objects_done, prog.bytes_done, ferry_now_ms() - t0, ferry_now_ms(),
                err);
    if (rc != FERRY_OK)
        ferry_error_prefix(err, "migrated, but notifying");
out:
    if (tracked) {
        ferry_error rerr;
        worker_lease_untrack(t->w, ev->dataset);
        /* Not finished: hand the migration over with its checkpoint. A permanent failure
         * is recorded by the caller (mark_failed needs the lease, so it happens there). */
        if (rc != FERRY_ERR_PERMANENT && !atomic_load(&s->lost))
            ferry_state_release(t->redis, &res.lease, &rerr);
        else if (rc == FERRY_ERR_PERMANENT &&
                 ferry_state_mark_failed(t->redis, &res.lease, err->cls, err->msg, &rerr) !=
                     FERRY_OK)
            ferry_warn(&lctx, "recording the failure in Redis: %s", rerr.msg);
    }
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
    ferry_fail_req req = {ev->dataset, t->w->id, ev->event_id, NULL, ev->source_uri,
                          ev->target_uri, e->cls, e->msg};
    ferry_error err;
    char spec_hash[17];
    ferry_state_spec_hash(ev, spec_hash);
    req.spec_hash = spec_hash;
    if (ferry_state_mark_failed_unleased(t->redis, &req, &err) != FERRY_OK) {
        ferry_log_ctx lctx = {ev->dataset, ev->event_id};
        ferry_warn(&lctx, "recording the failure in Redis: %s", err.msg);
    }
}

static void dead_letter(worker_thread_ctx *t, worker_job *job, const ferry_error *cause,
                        int attempts)
{
    ferry_error err;
    if (worker_dlq_send(t->w, job->msg, cause, attempts, &err) == FERRY_OK)
        job->store = 1;
}

void worker_migrate_job(worker_thread_ctx *t, worker_job *job)
{
    ferry_onboard ev = {0};
    ferry_error err = {0};
    stop_flags s = {job, 0};
    int max_attempts = (int)ferry_conf_int(t->w->conf, "retry.max_attempts");
    int64_t base = ferry_conf_int(t->w->conf, "retry.base_ms");
    int64_t cap = ferry_conf_int(t->w->conf, "retry.max_ms");
    int failures = 0, infra_failures = 0;

    job->store = 0;
    if (ferry_avro_decode_onboard(t->codec, job->msg->payload, job->msg->len, &ev, &err) !=
        FERRY_OK) {
        ferry_warn(NULL, "partition %d offset %lld: undecodable event: %s",
                   (int)job->partition, (long long)job->offset, err.msg);
        dead_letter(t, job, &err, 1);
        goto out;
    }
    if (ferry_onboard_validate(&ev, &err) != FERRY_OK) {
        ferry_log_ctx lctx = {NULL, ev.event_id};
        ferry_warn(&lctx, "invalid event at partition %d offset %lld: %s", (int)job->partition,
                   (long long)job->offset, err.msg);
        if (ev.dataset && ferry_state_dataset_ok(ev.dataset) &&
            ferry_dataset_name_valid(ev.dataset, NULL, 0))
            record_failure(t, &ev, &err);
        dead_letter(t, job, &err, 1);
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
                ferry_info(&lctx, "not finished here (%s); the next owner resumes", err.msg);
                break;
            }
            if (rc == FERRY_ERR_PERMANENT) {
                ferry_err(&lctx, "failed permanently: %s: %s", err.cls, err.msg);
                dead_letter(t, job, &err, failures + 1);
                break;
            }
            if (infrastructure(&err)) {
                ferry_warn(&lctx, "%s unavailable (%s); waiting and retrying", err.cls, err.msg);
                if (nap(&s, ferry_backoff_ms(infra_failures++, base, cap)))
                    break;
                continue;
            }
            if (++failures >= max_attempts) {
                ferry_error ex;
                ferry_error_set(&ex, FERRY_ERR_PERMANENT, FERRY_EC_EXHAUSTED,
                                "%d attempts failed; last: %s: %s", failures, err.cls, err.msg);
                ferry_err(&lctx, "giving up: %s", ex.msg);
                record_failure(t, &ev, &ex);
                dead_letter(t, job, &ex, failures);
                break;
            }
            ferry_warn(&lctx, "attempt %d failed: %s: %s (retrying)", failures, err.cls, err.msg);
            if (nap(&s, ferry_backoff_ms(failures - 1, base, cap)))
                break;
        }
    }
out:
    ferry_onboard_clear(&ev);
}
