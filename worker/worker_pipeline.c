/* The one path every unit of work takes, a whole dataset or one chunk of it:
 *   lease -> track -> prepare -> [hand off] -> copy (checkpointed) -> mark done
 *   (or failed_objects) -> untrack and release -> what the unit does once done,
 * with the differences between the units as data (worker_unit, worker.h): the lease
 * name, whether prepare counts the objects, the hand-off (a large dataset is split into
 * chunk events) and the step after done (announce the dataset, or finish the chunk and
 * finalize the dataset). Also the pieces those steps share: stop checks, the lease wait,
 * the announcement, the failed-objects ending. Calls neither worker_migrate.c nor
 * worker_fanout.c: both call into it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_log.h"
#include "ferry_state.h"
#include "ferry_util.h"
#include "worker.h"
#include "worker_copy.h"

int worker_should_stop(void *opaque)
{
    worker_stop *s = opaque;
    return atomic_load(&s->job->cancel) || atomic_load(&s->lost);
}

int worker_nap(worker_stop *s, int64_t ms)
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
    ferry_acquire_req req = {name,
                             t->owner,
                             ev->event_id,
                             spec_hash,
                             ev->source_uri,
                             ev->target_uri,
                             ferry_conf_int(t->w->conf, "lease.ttl_ms")};
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
        if (worker_nap(s, req.ttl_ms / 3 > 2000 ? 2000 : req.ttl_ms / 3))
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
    ferry_migrated m = {ev->event_id,
                        ev->dataset,
                        ev->source_uri,
                        ev->target_uri,
                        objects,
                        bytes,
                        duration_ms,
                        ferry_now_ms(),
                        t->w->id,
                        0,
                        0,
                        0,
                        0};
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
    if (ferry_state_note_webhook(t->redis, ev->dataset, ev->event_id, outcome, &serr) !=
        FERRY_OK)
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

/* The progress a (re)started copy begins with, from what the lease acquisition read. */
static void progress_from(worker_copy_progress *prog, const ferry_acquire_result *res)
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

/* The copy went through, but some objects failed on their own: state failed_objects
 * (durable before the caller stores the offset), and FERRY_ERR_PERMANENT with class
 * failed-objects in err, so the event is dead-lettered naming the report; or the error
 * of recording it (retryable: the next attempt ends the same way). */
static ferry_rc end_failed_objects(worker_thread_ctx *t, const char *name,
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

/* The copy began without a count and has listed more than fanout.copy_before_count keys:
 * count them, then the unit's hand-off decides as it would have before the copy (a split
 * copies the dataset again from its first key); if it does not take the dataset, copy on
 * from the checkpoint. */
static ferry_rc count_then_go_on(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                                 const worker_unit *u, const ferry_lease *lease,
                                 worker_copy_progress *prog, int *taken, ferry_error *err)
{
    ferry_rc rc;

    if ((rc = worker_copy_count(t->copier, t->redis, lease, ev, prog, worker_should_stop, s,
                                err)) != FERRY_OK)
        return rc;
    if (u->hand_off &&
        ((rc = u->hand_off(t, s, ev, lease, prog->objects_total, taken, err)) != FERRY_OK ||
         *taken))
        return rc;
    return worker_copy_dataset(t->copier, t->redis, lease, ev, 0, prog, worker_should_stop, s,
                               err);
}

ferry_rc worker_pipeline_run(worker_thread_ctx *t, worker_stop *s, const ferry_onboard *ev,
                             const worker_unit *u, int *handed_off, ferry_error *err)
{
    ferry_log_ctx lctx = {u->name, ev->event_id};
    ferry_acquire_result res = {0};
    worker_copy_progress prog = {0};
    worker_unit_done d = {0};
    ferry_rc rc;
    int tracked = 0, taken = 0;

    d.t0 = ferry_now_ms();
    if ((rc = worker_acquire(t, s, ev, u->name, &res, err)) != FERRY_OK)
        goto out;
    if (res.outcome == FERRY_ACQUIRE_ALREADY_DONE) {
        /* Done by an earlier delivery; its after-done step may not have run before a
         * crash. */
        d.already = 1;
        d.objects = res.objects_done;
        d.bytes = res.bytes_done;
        d.finished_at_ms = res.finished_at_ms;
        rc = u->done(t, s, ev, &d, err);
        goto out;
    }
    worker_lease_track(t->w, &res.lease, ev->event_id, &s->lost);
    tracked = 1;
    u->starting(ev, &res, &lctx);

    progress_from(&prog, &res);
    if ((rc = worker_copy_prepare(t->copier, t->redis, &res.lease, ev, u->count, &prog,
                                  worker_should_stop, s, err)) != FERRY_OK)
        goto out;
    if (u->hand_off && !res.checkpoint) {
        rc = u->hand_off(t, s, ev, &res.lease, prog.objects_total, &taken, err);
        if (rc != FERRY_OK || taken) {
            taken = taken && rc == FERRY_OK;
            goto out;
        }
    }
    rc = worker_copy_dataset(t->copier, t->redis, &res.lease, ev, res.resumed, &prog,
                             worker_should_stop, s, err);
    if (rc == FERRY_OK && prog.count_due && !worker_should_stop(s)) {
        rc = count_then_go_on(t, s, ev, u, &res.lease, &prog, &taken, err);
        if ((taken = taken && rc == FERRY_OK))
            goto out;
    }
    if (rc == FERRY_OK && worker_should_stop(s))
        rc = worker_stopped(s, err);
    if (rc != FERRY_OK)
        goto out;
    if (prog.failed > 0) {
        /* Ends failed_objects and is dead-lettered; replaying it completes the unit. */
        rc = end_failed_objects(t, u->name, ev, &res.lease, &prog, err);
        if (rc == FERRY_ERR_PERMANENT) { /* recorded; the lease went with it */
            worker_lease_untrack(t->w, u->name);
            tracked = 0;
        }
        goto out;
    }
    rc = ferry_state_mark_done(t->redis, &res.lease, prog.objects_done, prog.bytes_done,
                               prog.objects_done + prog.vanished, err);
    if (rc != FERRY_OK)
        goto out;
    worker_lease_untrack(t->w, u->name);
    tracked = 0;
    d.objects = prog.objects_done;
    d.bytes = prog.bytes_done;
    d.skipped = prog.objects_skipped;
    rc = u->done(t, s, ev, &d, err);
out:
    if (tracked) {
        ferry_error rerr;
        worker_lease_untrack(t->w, u->name);
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
        *handed_off = taken;
    ferry_acquire_result_clear(&res);
    free(prog.checkpoint_owned);
    return rc;
}
