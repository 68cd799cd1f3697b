/* ferry_kafka: librdkafka handles built from ferry's configuration, with the settings
 * ferry's guarantees rely on (idempotent acks=all producer; manual offset store consumer),
 * librdkafka's log bridged into ferry_log, and a synchronous produce for the places that
 * must know an event is durable before going on (publish, DLQ, notifications). */
#ifndef FERRY_KAFKA_H
#define FERRY_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry_conf.h"
#include "ferry_error.h"

/* Producer: enable.idempotence=true, acks=all, plus pass-through properties (which win).
 * Returns NULL + errstr. Destroy with ferry_kafka_producer_destroy (flushes first). */
rd_kafka_t *ferry_kafka_producer_new(const ferry_conf *conf, char *errstr, size_t errstr_size);
/* Flushes up to timeout_ms, then destroys. Returns the number of messages NOT delivered. */
int ferry_kafka_producer_destroy(rd_kafka_t *rk, int timeout_ms);

/* Consumer in `group_id`: enable.auto.offset.store=false, auto.offset.reset=earliest,
 * plus pass-through properties (which win). The caller sets callbacks on the conf via
 * `customize` (may be NULL) before the handle is created. NULL + errstr on failure. */
typedef void (*ferry_kafka_conf_cb)(rd_kafka_conf_t *kconf, void *opaque);
rd_kafka_t *ferry_kafka_consumer_new(const ferry_conf *conf, const char *group_id,
                                     ferry_kafka_conf_cb customize, void *opaque, char *errstr,
                                     size_t errstr_size);

/* For a rebalance callback, before it assigns `parts`: every partition whose offset is
 * RD_KAFKA_OFFSET_INVALID gets its committed offset or, without one, the offset
 * auto.offset.reset picks (earliest/latest; "error" is left to librdkafka). Anything
 * not found within timeout_ms (per request) stays INVALID: librdkafka then does the
 * same lookups itself, only slower. Returns the number of partitions resolved. */
int ferry_kafka_resolve_start_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                                      int timeout_ms);

/* Produces one message and waits for its delivery report (bounded by the producer's
 * message.timeout.ms). `headers` may be NULL; it is copied, the caller keeps ownership.
 * partition/offset (may be NULL) receive where it landed. Thread-safe: many threads may
 * call this on one producer. */
ferry_rc ferry_kafka_produce_sync(rd_kafka_t *rk, const char *topic, const void *key,
                                  size_t key_len, const void *value, size_t value_len,
                                  const rd_kafka_headers_t *headers, int32_t *partition,
                                  int64_t *offset, ferry_error *err);

/* The same, but gives up at deadline_ms (ferry_mono_ms; 0 = no deadline beyond
 * message.timeout.ms): the message is purged and RETRYABLE returned. Whether the broker
 * got it is then unknown, as with any delivery that was not acknowledged. */
ferry_rc ferry_kafka_produce_sync_until(rd_kafka_t *rk, const char *topic, const void *key,
                                        size_t key_len, const void *value, size_t value_len,
                                        const rd_kafka_headers_t *headers, int64_t deadline_ms,
                                        int32_t *partition, int64_t *offset, ferry_error *err);

/* One message of a batch: borrowed key, value and headers (copied when produced); where
 * it landed is filled in. */
typedef struct ferry_kafka_msg {
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const rd_kafka_headers_t *headers; /* may be NULL */
    int pinned;                        /* in: produce to `pin`, not the partitioner's choice */
    int32_t pin;
    int32_t partition; /* out */
    int64_t offset;    /* out */
} ferry_kafka_msg;

/* Produces msgs[0..n) at once and waits for every delivery report: one round trip for
 * the batch instead of one per message. FERRY_OK only if all were delivered; on an error
 * some may have been (a caller that retries produces them again). deadline_ms as above. */
ferry_rc ferry_kafka_produce_many_until(rd_kafka_t *rk, const char *topic,
                                        ferry_kafka_msg *msgs, size_t n, int64_t deadline_ms,
                                        ferry_error *err);

/* The number of partitions of topic, from a metadata request (waits up to timeout_ms).
 * RETRYABLE kafka when the broker does not answer or does not know the topic. */
ferry_rc ferry_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                     int32_t *count, ferry_error *err);

/* librdkafka's connection errors (broker down, refused, unresolvable, TLS/SASL failed).
 * Long-running programs (the default) log them at error level, at most one line per 10 s
 * with a count of those left out. A one-shot command calls ferry_kafka_set_one_shot(1)
 * first: they go to debug level, and the last one becomes the cause in the command's
 * final line (ferry_kafka_unreachable). Process-wide. */
void ferry_kafka_set_one_shot(int one_shot);

/* The brokers a handle made from conf bootstraps from (kafka.brokers, or a pass-through
 * bootstrap.servers). Borrowed from conf. */
const char *ferry_kafka_brokers(const ferry_conf *conf);

/* Waits up to timeout_ms until a broker answers a metadata request. RETRYABLE kafka
 * "cannot reach Kafka at <brokers> within <n> s: <cause>" if none did. */
ferry_rc ferry_kafka_wait_brokers(rd_kafka_t *rk, const ferry_conf *conf, int timeout_ms,
                                  ferry_error *err);
/* Fills err with that same message for a request that failed with e (the last connection
 * failure seen is the cause, else e). Returns RETRYABLE. */
ferry_rc ferry_kafka_unreachable(const ferry_conf *conf, rd_kafka_resp_err_t e, int timeout_ms,
                                 ferry_error *err);

/* Retryable unless librdkafka says the error is fatal or the message can never fit. */
ferry_rc ferry_kafka_classify(rd_kafka_resp_err_t e);

/* Reads a header as text into out (NUL-terminated, truncated). Returns 0 if present. */
int ferry_kafka_header_str(const rd_kafka_headers_t *hdrs, const char *name, char *out,
                           size_t size);

#endif
