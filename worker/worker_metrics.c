#include "worker_metrics.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_error.h"
#include "ferry_limiter.h"

worker_metrics worker_metric;

/* Every class exists from the start at 0, so rate() and increase() see the first one. */
const char *const worker_metrics_classes[] = {
    FERRY_EC_DECODE,         FERRY_EC_SCHEMA,
    FERRY_EC_INVALID_SPEC,   FERRY_EC_VALIDATION,
    FERRY_EC_S3_AUTH,        FERRY_EC_S3_NOT_FOUND,
    FERRY_EC_S3_CLIENT,      FERRY_EC_S3_SERVER,
    FERRY_EC_S3_NETWORK,     FERRY_EC_VERIFY,
    FERRY_EC_REDIS,          FERRY_EC_KAFKA,
    FERRY_EC_CONFIG,         FERRY_EC_INTERNAL,
    FERRY_EC_EXHAUSTED,      FERRY_EC_FENCED,
    FERRY_EC_FAILED_OBJECTS, FERRY_EC_INCOMPLETE,
    FERRY_EC_COUNT_MISMATCH, FERRY_EC_S3_ARCHIVED,
    FERRY_EC_S3_KMS,         FERRY_EC_S3_INVALID_KEY,
    FERRY_EC_S3_BAD_DIGEST,  FERRY_EC_S3_STALL,
    FERRY_EC_S3_OUTAGE,      NULL,
};

/* From a small local copy (milliseconds) to a 10-minute multipart UploadPartCopy. */
static const double copy_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                      2.5,   5,    10,    30,   60,  120,  300, 600};

int worker_metrics_init(void)
{
    worker_metrics m = {0};
    ferry_metric_vec *lease;

    if (!(m.reg = ferry_metrics_new()))
        return -1;
    m.events_consumed =
        ferry_metrics_counter(m.reg, "ferry_events_consumed_total",
                              "DatasetOnboard events taken from Kafka (including no-ops)");
    m.in_flight = ferry_metrics_gauge(m.reg, "ferry_migrations_in_flight",
                                      "Migrations this process is running now");
    m.objects_copied = ferry_metrics_counter(m.reg, "ferry_objects_copied_total",
                                             "Objects copied and verified at the target");
    m.bytes_copied = ferry_metrics_counter(m.reg, "ferry_bytes_copied_total",
                                           "Bytes of the objects copied and verified");
    m.objects_failed = ferry_metrics_counter(
        m.reg, "ferry_objects_failed_total",
        "Objects that failed on their own (403 on the key, archived, KMS, invalid key); the "
        "others were copied, the dataset ends failed_objects");
    m.objects_vanished = ferry_metrics_counter(
        m.reg, "ferry_objects_vanished_total",
        "Objects deleted from the source after they were listed (404 on copy)");
    m.copy_duration = ferry_metrics_histogram(
        m.reg, "ferry_copy_duration_seconds",
        "One object: first request to verified (all parts of a multipart copy)", copy_buckets,
        sizeof(copy_buckets) / sizeof(copy_buckets[0]));
    m.failures = ferry_metrics_counter_vec(m.reg, "ferry_failures_total",
                                           "Failures by error class (the DLQ header "
                                           "ferry-error-class)",
                                           "class", 32);
    m.dlq_records = ferry_metrics_counter(m.reg, "ferry_dlq_records_total",
                                          "Records written to the dead-letter topic "
                                          "(acknowledged by Kafka)");
    m.retries = ferry_metrics_counter(m.reg, "ferry_retries_total",
                                      "Retries of retryable failures (one per backoff)");
    m.consumer_lag = ferry_metrics_gauge_vec(m.reg, "ferry_consumer_lag",
                                             "Consumer lag of each partition this worker owns "
                                             "(librdkafka statistics)",
                                             "partition", 1024);
    lease = ferry_metrics_counter_vec(m.reg, "ferry_lease_renewals_total",
                                      "Dataset lease renewals by result", "result", 2);
    m.lease_ok = ferry_metric_vec_counter(lease, "ok");
    m.lease_failed = ferry_metric_vec_counter(lease, "failed");
    m.s3_limit = ferry_metrics_gauge_vec(m.reg, "ferry_s3_in_flight_limit",
                                         "Requests this process allows in flight to the "
                                         "endpoint now (adaptive, shared by its migrations)",
                                         "endpoint", 16);
    m.s3_rtt = ferry_metrics_gauge_vec(m.reg, "ferry_s3_rtt_seconds",
                                       "Mean latency of small copies in the limiter's last "
                                       "window",
                                       "endpoint", 16);
    m.s3_rtt_floor = ferry_metrics_gauge_vec(m.reg, "ferry_s3_rtt_floor_seconds",
                                             "Lowest window mean latency: the endpoint's "
                                             "latency without queueing",
                                             "endpoint", 16);
    m.s3_throttled = ferry_metrics_counter_vec(m.reg, "ferry_s3_throttled_total",
                                               "Requests the endpoint refused with 503 "
                                               "SlowDown or 429",
                                               "endpoint", 16);
    for (int i = 0; worker_metrics_classes[i]; i++)
        ferry_metric_vec_counter(m.failures, worker_metrics_classes[i]);
    worker_metric = m;
    return m.events_consumed && m.in_flight && m.objects_copied && m.bytes_copied &&
                   m.objects_failed && m.objects_vanished && m.copy_duration && m.failures &&
                   m.dlq_records && m.retries && m.consumer_lag && m.lease_ok &&
                   m.lease_failed && m.s3_limit && m.s3_rtt && m.s3_rtt_floor && m.s3_throttled
               ? 0
               : -1;
}

void worker_metrics_destroy(void)
{
    ferry_metrics_destroy(worker_metric.reg);
    memset(&worker_metric, 0, sizeof(worker_metric));
}

void worker_metrics_failure(const char *cls)
{
    ferry_counter *c;
    if (!worker_metric.failures)
        return;
    /* Only known classes: the label set stays small whatever a bug puts in cls. */
    for (int i = 0; worker_metrics_classes[i]; i++)
        if (cls && !strcmp(cls, worker_metrics_classes[i])) {
            c = ferry_metric_vec_counter(worker_metric.failures, worker_metrics_classes[i]);
            ferry_counter_inc(c);
            return;
        }
    ferry_counter_inc(ferry_metric_vec_counter(worker_metric.failures, FERRY_EC_INTERNAL));
}

static json_int_t int_field(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

int worker_metrics_kafka_stats(const char *json, size_t len, const char *topic)
{
    /* Partitions with a series shown after the previous call (poll thread only). */
    static int32_t shown[1024];
    static size_t nshown;
    int32_t now[1024];
    size_t nnow = 0;
    json_t *root = json_loadb(json, len, 0, NULL), *brokers, *parts, *p, *b;
    const char *key;
    int up = 0;

    if (!json_is_object(root)) {
        json_decref(root);
        return -1;
    }
    brokers = json_object_get(root, "brokers");
    json_object_foreach(brokers, key, b)
    {
        const char *state = json_string_value(json_object_get(b, "state"));
        up += state && !strcmp(state, "UP");
    }
    parts = json_object_get(json_object_get(json_object_get(root, "topics"), topic),
                            "partitions");
    json_object_foreach(parts, key, p)
    {
        char *end;
        long id = strtol(key, &end, 10);
        json_int_t lag = int_field(p, "consumer_lag");
        char label[16];

        if (*end || id < 0 || id > INT32_MAX || !json_is_true(json_object_get(p, "desired")))
            continue; /* "-1" is the internal UA partition */
        if (lag < 0 && int_field(p, "committed_offset") < 0 &&
            int_field(p, "stored_offset") < 0 && int_field(p, "hi_offset") >= 0) {
            json_int_t lo = int_field(p, "lo_offset");
            lag = int_field(p, "hi_offset") - (lo > 0 ? lo : 0);
        }
        if (lag < 0 || nnow == sizeof(now) / sizeof(now[0]))
            continue;
        snprintf(label, sizeof(label), "%ld", id);
        ferry_gauge_set(ferry_metric_vec_gauge(worker_metric.consumer_lag, label), (double)lag);
        now[nnow++] = (int32_t)id;
    }
    for (size_t i = 0; i < nshown; i++) {
        int still = 0;
        char label[16];
        for (size_t j = 0; j < nnow && !still; j++)
            still = now[j] == shown[i];
        if (still)
            continue;
        snprintf(label, sizeof(label), "%d", (int)shown[i]);
        ferry_gauge_remove(ferry_metric_vec_gauge(worker_metric.consumer_lag, label));
    }
    memcpy(shown, now, nnow * sizeof(now[0]));
    nshown = nnow;
    json_decref(root);
    return up;
}

void worker_metrics_limiter(const char *endpoint, struct ferry_limiter *l)
{
    ferry_limiter_stats st;

    if (!l || !worker_metric.reg)
        return;
    ferry_limiter_stats_get(l, &st);
    ferry_gauge_set(ferry_metric_vec_gauge(worker_metric.s3_limit, endpoint), st.limit);
    ferry_gauge_set(ferry_metric_vec_gauge(worker_metric.s3_rtt, endpoint),
                    (double)st.rtt_us / 1e6);
    ferry_gauge_set(ferry_metric_vec_gauge(worker_metric.s3_rtt_floor, endpoint),
                    (double)st.rtt_floor_us / 1e6);
    ferry_counter_set(ferry_metric_vec_counter(worker_metric.s3_throttled, endpoint),
                      st.throttled);
}
