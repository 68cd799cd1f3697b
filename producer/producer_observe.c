/* /metrics, /healthz and /readyz on the HTTP listener of `serve` (http.listen). No bearer
 * token: they say nothing a scraper or kubelet should not know, and neither can send one.
 *
 *   /metrics  Prometheus text: ferry_http_ingest_requests_total{code} (every answer to
 *             POST /v1/events, refusals by the server itself -- 401, 413 -- included) and
 *             the producer's own counters (producer_metrics in producer.h), mirrored at
 *             scrape time
 *   /healthz  200 "ok" while the process runs
 *   /readyz   200 when Kafka has a broker reachable (a metadata request) and Redis answers
 *             PING; 503 with a JSON body naming the failed check. Results are reused for a
 *             second, so a busy prober costs one check per second. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_connect.h"
#include "ferry_log.h"
#include "ferry_metrics.h"
#include "ferry_util.h"
#include "producer.h"

#define CHECK_MAX_AGE_MS 1000
#define PROBE_TIMEOUT_MS 1000

typedef struct check {
    int64_t at_ms; /* mono; 0 = never */
    int ok;
    char msg[256];
} check;

static struct {
    ferry_metrics *reg;
    ferry_metric_vec *ingest_codes;
    ferry_metric_vec *published;
    ferry_counter *publish_failures, *invalid_specs, *catalog_polls, *catalog_poll_failures,
        *registry_reloads, *registry_files_rejected, *ingest_rejected, *ingest_duplicates;
    producer_ctx *ctx;
    pthread_mutex_t lock; /* the checks and ready_redis */
    ferry_redis *ready_redis;
    check kafka, redis;
} O = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t get(atomic_ullong *a) { return atomic_load_explicit(a, memory_order_relaxed); }

/* Before every scrape: copy the producer's counters into the registry. */
static void mirror(void *opaque)
{
    producer_metrics *m = producer_metrics_of(((producer_ctx *)opaque)->em);
    for (int i = 0; i < 5; i++)
        ferry_counter_set(ferry_metric_vec_counter(O.published,
                                                   ferry_origin_name((ferry_origin)i)),
                          get(&m->published[i]));
    ferry_counter_set(O.publish_failures, get(&m->publish_failures));
    ferry_counter_set(O.invalid_specs, get(&m->invalid_specs));
    ferry_counter_set(O.catalog_polls, get(&m->catalog_polls));
    ferry_counter_set(O.catalog_poll_failures, get(&m->catalog_poll_failures));
    ferry_counter_set(O.registry_reloads, get(&m->registry_reloads));
    ferry_counter_set(O.registry_files_rejected, get(&m->registry_files_rejected));
    ferry_counter_set(O.ingest_rejected, get(&m->ingest_rejected));
    ferry_counter_set(O.ingest_duplicates, get(&m->ingest_duplicates));
}

/* Every reply of the server; counts those to the ingest endpoint. */
static void on_reply(const ferry_http_req *req, int status, void *opaque)
{
    char code[8];
    (void)opaque;
    if (strcmp(ferry_http_req_path(req), "/v1/events") != 0 ||
        strcmp(ferry_http_req_method(req), "POST") != 0)
        return;
    snprintf(code, sizeof(code), "%d", status);
    ferry_counter_inc(ferry_metric_vec_counter(O.ingest_codes, code));
}

static void kafka_check(check *c)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(producer_kafka_of(O.ctx->em), 0, NULL, &md,
                                              PROBE_TIMEOUT_MS);
    c->ok = e == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->broker_cnt > 0;
    if (c->ok)
        snprintf(c->msg, sizeof(c->msg), "metadata from %d broker(s)", md->broker_cnt);
    else
        snprintf(c->msg, sizeof(c->msg), "no metadata: %s", rd_kafka_err2str(e));
    if (md)
        rd_kafka_metadata_destroy(md);
}

static void redis_check(check *c)
{
    ferry_error err = {0};
    c->ok = ferry_redis_ping(O.ready_redis, &err) == FERRY_OK;
    /* ferry_redis messages name host:port/db, never the password. */
    snprintf(c->msg, sizeof(c->msg), "%s",
             c->ok ? ferry_redis_describe(O.ready_redis) : err.msg);
}

static void add(json_t *checks, json_t *failed, const char *name, const check *c)
{
    json_object_set_new(checks, name, json_pack("{s:b,s:s}", "ok", c->ok, "detail", c->msg));
    if (!c->ok)
        json_array_append_new(failed, json_string(name));
}

static void on_readyz(ferry_http_req *req, void *opaque)
{
    json_t *checks = json_object(), *failed = json_array();
    int ready;
    (void)opaque;

    pthread_mutex_lock(&O.lock);
    if (!O.kafka.at_ms || ferry_mono_ms() - O.kafka.at_ms > CHECK_MAX_AGE_MS) {
        kafka_check(&O.kafka);
        O.kafka.at_ms = ferry_mono_ms();
    }
    if (!O.redis.at_ms || ferry_mono_ms() - O.redis.at_ms > CHECK_MAX_AGE_MS) {
        redis_check(&O.redis);
        O.redis.at_ms = ferry_mono_ms();
    }
    add(checks, failed, "kafka", &O.kafka);
    add(checks, failed, "redis", &O.redis);
    pthread_mutex_unlock(&O.lock);
    ready = json_array_size(failed) == 0;
    ferry_http_reply_json(req, ready ? 200 : 503,
                          json_pack("{s:b,s:o,s:o}", "ready", ready, "failed", failed, "checks",
                                    checks));
}

int producer_observe_routes(ferry_http *h, producer_ctx *ctx, char *errstr, size_t errstr_size)
{
    ferry_metrics *m;

    if (O.reg) {
        snprintf(errstr, errstr_size, "producer_observe_routes called twice");
        return -1;
    }
    if (!(O.ready_redis = ferry_connect_redis_timeouts(ctx->conf, PROBE_TIMEOUT_MS,
                                                       PROBE_TIMEOUT_MS, errstr, errstr_size)))
        return -1;
    if (!(m = O.reg = ferry_metrics_new()))
        goto oom;
    O.ctx = ctx;
    O.ingest_codes = ferry_metrics_counter_vec(m, "ferry_http_ingest_requests_total",
                                               "POST /v1/events requests by HTTP status code",
                                               "code", 64);
    O.published = ferry_metrics_counter_vec(m, "ferry_producer_events_published_total",
                                            "Events acknowledged by Kafka, by origin", "origin",
                                            8);
    O.publish_failures = ferry_metrics_counter(m, "ferry_producer_publish_failures_total",
                                               "Events Kafka did not acknowledge");
    O.invalid_specs = ferry_metrics_counter(m, "ferry_producer_invalid_specs_total",
                                            "Specs refused by validation (nothing published)");
    O.catalog_polls = ferry_metrics_counter(m, "ferry_producer_catalog_polls_total",
                                            "Backstage catalog polls");
    O.catalog_poll_failures = ferry_metrics_counter(
        m, "ferry_producer_catalog_poll_failures_total", "Backstage catalog polls that failed");
    O.registry_reloads = ferry_metrics_counter(m, "ferry_producer_registry_reloads_total",
                                               "Registry re-reads");
    O.registry_files_rejected = ferry_metrics_counter(
        m, "ferry_producer_registry_files_rejected_total", "Registry files refused as invalid");
    O.ingest_rejected = ferry_metrics_counter(m, "ferry_producer_ingest_rejected_total",
                                              "API requests refused as invalid (4xx)");
    O.ingest_duplicates =
        ferry_metrics_counter(m, "ferry_producer_ingest_duplicates_total",
                              "POST /v1/events retries answered from the stored receipt");
    if (!O.ingest_codes || !O.published || !O.publish_failures || !O.invalid_specs ||
        !O.catalog_polls || !O.catalog_poll_failures || !O.registry_reloads ||
        !O.registry_files_rejected || !O.ingest_rejected || !O.ingest_duplicates)
        goto oom;
    for (int i = 0; i < 5; i++) /* every series from the start */
        ferry_metric_vec_counter(O.published, ferry_origin_name((ferry_origin)i));
    ferry_metrics_on_render(m, mirror, ctx);
    if (ferry_http_on_reply(h, on_reply, NULL) != 0 ||
        ferry_http_route_standard(h, O.reg) != 0 ||
        ferry_http_route(h, "GET", "/readyz", 0, on_readyz, NULL) != 0)
        goto oom;
    return 0;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    producer_observe_stop();
    return -1;
}

void producer_observe_stop(void)
{
    ferry_metrics_destroy(O.reg);
    ferry_redis_destroy(O.ready_redis);
    O.reg = NULL;
    O.ready_redis = NULL;
    O.ctx = NULL;
    O.kafka.at_ms = O.redis.at_ms = 0;
}
