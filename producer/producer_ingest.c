/* The HTTP API of `serve`:
 *   POST /v1/events          {"type":"dataset_onboard","payload":{...}} -> 202 + receipt
 *                            once the broker acknowledged the event (ferry_event_json.h)
 *   GET  /v1/datasets/NAME   the migration state from Redis, as JSON
 * Both require the bearer token (http.token_file) when one is configured. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_event_json.h"
#include "ferry_log.h"
#include "ferry_names.h"
#include "ferry_rate.h"
#include "ferry_state.h"
#include "ferry_util.h"
#include "ferry_validate.h"
#include "producer.h"

static void rejected(producer_ctx *ctx)
{
    PRODUCER_COUNT(producer_metrics_of(ctx->em)->ingest_rejected, 1);
}

/* http.rate_limit_per_s: one token bucket for POST /v1/events, shared by the connection
 * threads (one `serve` per process). A request that would have to wait is not delayed
 * but answered 429 and does not use up a token. */
static pthread_mutex_t ingest_rate_lock = PTHREAD_MUTEX_INITIALIZER;
static ferry_rate ingest_rate;

static int64_t ingest_rate_check(void)
{
    ferry_rate next;
    int64_t wait;

    pthread_mutex_lock(&ingest_rate_lock);
    next = ingest_rate;
    wait = ferry_rate_reserve(&next, ferry_mono_ms() * 1000);
    if (wait == 0)
        ingest_rate = next;
    pthread_mutex_unlock(&ingest_rate_lock);
    return wait;
}

static json_t *receipt_json(const producer_receipt *r, const char *dataset)
{
    return json_pack("{s:s,s:s,s:s,s:i,s:I}", "event_id", r->event_id, "dataset", dataset,
                     "topic", r->topic, "partition", (int)r->partition, "offset",
                     (json_int_t)r->offset);
}

static void on_event(ferry_http_req *req, void *opaque)
{
    producer_ctx *ctx = opaque;
    json_t *root;
    const json_t *payload;
    ferry_onboard ev = {0};
    ferry_error err = {0};
    producer_receipt rcpt;
    ferry_redis *r;
    char uuid[40], *prior = NULL, *text = NULL;
    int client_id = 0;
    ferry_dedupe_state ds = FERRY_DEDUPE_NEW;
    json_t *body;
    ferry_rc rc;

    {
        int64_t wait_us = ingest_rate_check();
        if (wait_us > 0) {
            char ra[24];
            snprintf(ra, sizeof(ra), "%lld", (long long)((wait_us + 999999) / 1000000));
            rejected(ctx);
            ferry_http_add_header(req, "Retry-After", ra);
            ferry_http_reply_error(req, 429, "rate_limited", "more than %lld events per second",
                                   (long long)ferry_conf_int(ctx->conf,
                                                             "http.rate_limit_per_s"));
            return;
        }
    }
    root = ferry_http_req_json(req, (int)ferry_conf_int(ctx->conf, "http.max_json_depth"));
    if (!root) {
        rejected(ctx);
        return;
    }
    if (!(payload = ferry_event_json_payload(root, &err)) ||
        ferry_event_json_onboard(payload,
                                 FERRY_EVENT_JSON_ALLOW_EVENT_ID |
                                     FERRY_EVENT_JSON_ALLOW_CATALOG_REF,
                                 &ev, &err) != FERRY_OK)
        goto invalid;
    ev.origin = FERRY_ORIGIN_API;
    ev.requested_at_ms = ferry_now_ms();
    client_id = ev.event_id != NULL;
    if (!client_id && (ferry_uuid_v4(uuid, sizeof(uuid)) != 0 || !(ev.event_id = strdup(uuid))))
        goto oom;
    if (!ev.requested_by && !(ev.requested_by = strdup("api")))
        goto oom;
    if (ferry_onboard_validate(&ev, &err) != FERRY_OK)
        goto invalid;

    /* A client-chosen event id is an idempotency key: a retried POST gets the first
     * answer back instead of a second event. */
    if (client_id) {
        if (!(r = producer_redis_lock(ctx->em))) {
            ferry_http_reply_error(req, 503, "unavailable", "no Redis connection");
            goto out;
        }
        rc = ferry_changes_dedupe_claim(r, ev.event_id, 60000, &ds, &prior, &err);
        producer_redis_unlock(ctx->em);
        if (rc != FERRY_OK) {
            ferry_http_add_header(req, "Retry-After", "5");
            ferry_http_reply_error(req, 503, "unavailable", "%s", err.msg);
            goto out;
        }
        if (ds == FERRY_DEDUPE_DONE) {
            json_t *prev = json_loads(prior, 0, NULL);
            PRODUCER_COUNT(producer_metrics_of(ctx->em)->ingest_duplicates, 1);
            if (json_is_object(prev)) {
                json_object_set_new(prev, "duplicate", json_true());
                ferry_http_reply_json(req, 200, prev);
            } else {
                json_decref(prev);
                ferry_http_reply_error(req, 500, "internal", "unreadable earlier receipt");
            }
            goto out;
        }
        if (ds == FERRY_DEDUPE_INFLIGHT) {
            ferry_http_add_header(req, "Retry-After", "1");
            ferry_http_reply_error(req, 409, "in_progress",
                                   "an event with this id is being published right now");
            goto out;
        }
    }

    if ((rc = producer_emit(ctx->em, &ev, &rcpt, &err)) != FERRY_OK) {
        if (client_id && (r = producer_redis_lock(ctx->em))) {
            ferry_error e2 = {0};
            ferry_changes_dedupe_release(r, ev.event_id, &e2);
            producer_redis_unlock(ctx->em);
        }
        if (rc == FERRY_ERR_PERMANENT)
            goto invalid;
        ferry_http_add_header(req, "Retry-After", "5");
        ferry_http_reply_error(req, 503, "unavailable", "event not published: %s", err.msg);
        goto out;
    }
    body = receipt_json(&rcpt, ev.dataset);
    if (client_id && body && (text = json_dumps(body, JSON_COMPACT)) &&
        (r = producer_redis_lock(ctx->em))) {
        if (ferry_changes_dedupe_commit(r, ev.event_id, text,
                                        ferry_conf_int(ctx->conf, "ingest.dedupe_ttl_s"),
                                        &err) != FERRY_OK)
            ferry_warn(NULL, "ingest: event %s published but its receipt not stored: %s",
                       ev.event_id, err.msg);
        producer_redis_unlock(ctx->em);
    }
    ferry_http_reply_json(req, 202, body);
    goto out;

invalid:
    rejected(ctx);
    ferry_http_reply_error(req, 400, "invalid_event", "%s", err.msg);
    goto out;
oom:
    ferry_http_reply_error(req, 500, "internal", "out of memory");
out:
    free(text);
    free(prior);
    ferry_onboard_clear(&ev);
    json_decref(root);
}

static void set_time(json_t *o, const char *key, int64_t ms)
{
    json_object_set_new(o, key, ms > 0 ? json_integer(ms) : json_null());
}

static void on_dataset(ferry_http_req *req, void *opaque)
{
    producer_ctx *ctx = opaque;
    const char *name = ferry_http_req_path_rest(req);
    ferry_migration_state st = {0};
    ferry_error err = {0};
    ferry_redis *r;
    char why[160];
    json_t *o;
    double prog;
    ferry_rc rc;

    if (!ferry_dataset_name_valid(name, why, sizeof(why))) {
        rejected(ctx);
        ferry_http_reply_error(req, 400, "invalid_name", "%s", why);
        return;
    }
    if (!(r = producer_redis_lock(ctx->em))) {
        ferry_http_reply_error(req, 503, "unavailable", "no Redis connection");
        return;
    }
    rc = ferry_state_get(r, name, &st, &err);
    producer_redis_unlock(ctx->em);
    if (rc != FERRY_OK) {
        ferry_http_add_header(req, "Retry-After", "5");
        ferry_http_reply_error(req, 503, "unavailable", "%s", err.msg);
        return;
    }
    if (st.status == FERRY_MIG_NONE) {
        ferry_http_reply_error(req, 404, "not_found", "no migration known for %s", name);
        ferry_migration_state_clear(&st);
        return;
    }
    o = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:I,s:I,s:s?,s:s?}", "dataset", name, "status",
                  ferry_mig_status_name(st.status), "event_id", st.event_id, "worker",
                  st.worker, "source", st.source_uri, "target", st.target_uri, "objects_done",
                  (json_int_t)st.objects_done, "bytes_done", (json_int_t)st.bytes_done,
                  "last_error", st.last_error, "error_class", st.error_class);
    if (o) {
        json_object_set_new(o, "objects_total",
                            st.objects_total >= 0 ? json_integer(st.objects_total)
                                                  : json_null());
        json_object_set_new(o, "objects_total_lower_bound",
                            json_boolean(st.objects_total_lower_bound &&
                                         st.objects_total >= 0));
        prog = ferry_migration_progress(&st);
        json_object_set_new(o, "progress", prog >= 0 ? json_real(prog) : json_null());
        set_time(o, "started_at_ms", st.started_at_ms);
        set_time(o, "updated_at_ms", st.updated_at_ms);
        set_time(o, "finished_at_ms", st.finished_at_ms);
    }
    ferry_migration_state_clear(&st);
    ferry_http_reply_json(req, 200, o);
}

int producer_ingest_routes(ferry_http *h, producer_ctx *ctx, int accept_events)
{
    int64_t per_s = ferry_conf_int(ctx->conf, "http.rate_limit_per_s");
    ferry_rate_init(&ingest_rate, (double)per_s, per_s > 0 ? per_s : 1);
    if (ferry_http_route(h, "GET", "/v1/datasets/", FERRY_HTTP_PREFIX | FERRY_HTTP_AUTH,
                         on_dataset, ctx) != 0)
        return -1;
    if (accept_events &&
        ferry_http_route(h, "POST", "/v1/events", FERRY_HTTP_AUTH, on_event, ctx) != 0)
        return -1;
    return 0;
}
