/* The worker's Prometheus metrics (docs/operations.md lists them; dashboards and alerts
 * use exactly these names). One registry per process, created by main() before any
 * other thread starts and destroyed after they all stopped; the handles below are then
 * updated from any thread. Before worker_metrics_init() (or if it failed) every handle is
 * NULL, and the ferry_metrics update functions do nothing with NULL. */
#ifndef WORKER_METRICS_H
#define WORKER_METRICS_H

#include "ferry_metrics.h"

typedef struct worker_metrics {
    ferry_metrics *reg;
    ferry_counter *events_consumed;  /* ferry_events_consumed_total */
    ferry_gauge *in_flight;          /* ferry_migrations_in_flight */
    ferry_counter *objects_copied;   /* ferry_objects_copied_total */
    ferry_counter *bytes_copied;     /* ferry_bytes_copied_total */
    ferry_counter *objects_failed;   /* ferry_objects_failed_total: recorded in a report */
    ferry_counter *objects_vanished; /* ferry_objects_vanished_total */
    ferry_histogram *copy_duration;  /* ferry_copy_duration_seconds */
    ferry_metric_vec *failures;      /* ferry_failures_total{class} */
    ferry_counter *dlq_records;      /* ferry_dlq_records_total */
    ferry_counter *retries;          /* ferry_retries_total */
    ferry_metric_vec *consumer_lag;  /* ferry_consumer_lag{partition} */
    ferry_counter *lease_ok;         /* ferry_lease_renewals_total{result="ok"} */
    ferry_counter *lease_failed;     /* ferry_lease_renewals_total{result="failed"} */
    /* the adaptive in-flight limit of each S3 endpoint (ferry_limiter), by endpoint */
    ferry_metric_vec *s3_limit;     /* ferry_s3_in_flight_limit{endpoint} */
    ferry_metric_vec *s3_rtt;       /* ferry_s3_rtt_seconds{endpoint} */
    ferry_metric_vec *s3_rtt_floor; /* ferry_s3_rtt_floor_seconds{endpoint} */
    ferry_metric_vec *s3_throttled; /* ferry_s3_throttled_total{endpoint} */
} worker_metrics;

extern worker_metrics worker_metric;
/* The values of the class label (FERRY_EC_*), NULL-terminated. */
extern const char *const worker_metrics_classes[];

/* Returns 0, or -1 when out of memory (the worker then runs without metrics). */
int worker_metrics_init(void);
void worker_metrics_destroy(void);

/* librdkafka statistics (a stats_cb's JSON): sets ferry_consumer_lag for the partitions
 * of `topic` this consumer owns ("desired"), removes the series of those it no longer
 * owns, and returns how many brokers are UP (-1 if the JSON is unreadable). A partition
 * whose group has no committed or stored offset yet counts its whole backlog (high
 * watermark minus low watermark, as auto.offset.reset=earliest will read it), as KEDA's
 * Kafka scaler does. Poll thread only. */
int worker_metrics_kafka_stats(const char *json, size_t len, const char *topic);

struct ferry_limiter;
/* Mirrors one endpoint's limiter into the ferry_s3_* series (any thread). */
void worker_metrics_limiter(const char *endpoint, struct ferry_limiter *l);

/* One failure of class cls (a FERRY_EC_* value; others are counted as "internal"). */
void worker_metrics_failure(const char *cls);

#endif
