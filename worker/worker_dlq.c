/* Dead-lettering: the original key and value byte-identical, the original headers, and
 * ferry's own headers saying why (DESIGN.md §5). The event's offset is stored only once
 * the DLQ produce is acknowledged, so a record is never lost between the two topics. */
#include <stdio.h>
#include <string.h>

#include "ferry_dlq.h"
#include "ferry_kafka.h"
#include "ferry_log.h"
#include "ferry_util.h"
#include "worker.h"
#include "worker_metrics.h"

static void add(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_add(h, name, -1, value, -1);
}

static rd_kafka_headers_t *build_headers(worker *w, const rd_kafka_message_t *msg,
                                         const ferry_error *cause, int attempts,
                                         const char *report)
{
    rd_kafka_headers_t *orig = NULL, *h;
    char num[32], replay[32] = "0";

    if (rd_kafka_message_headers(msg, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig) {
        h = rd_kafka_headers_copy(orig);
        /* A replayed record carries its replay count; keep it so the loop guard works. */
        ferry_kafka_header_str(orig, FERRY_DLQ_H_REPLAY_COUNT, replay, sizeof(replay));
        /* Stale copies from an earlier failure are dropped first. */
        for (int i = 0; ferry_dlq_own_headers[i]; i++)
            rd_kafka_header_remove(h, ferry_dlq_own_headers[i]);
    } else {
        h = rd_kafka_headers_new(16);
    }
    add(h, FERRY_DLQ_H_ERROR_CLASS, cause->cls[0] ? cause->cls : FERRY_EC_INTERNAL);
    add(h, FERRY_DLQ_H_ERROR_MESSAGE, cause->msg);
    add(h, FERRY_DLQ_H_ORIGINAL_TOPIC, rd_kafka_topic_name(msg->rkt));
    snprintf(num, sizeof(num), "%d", (int)msg->partition);
    add(h, FERRY_DLQ_H_ORIGINAL_PARTITION, num);
    add(h, FERRY_DLQ_H_DLT_ORIGINAL_PARTITION, num);
    snprintf(num, sizeof(num), "%lld", (long long)msg->offset);
    add(h, FERRY_DLQ_H_ORIGINAL_OFFSET, num);
    add(h, FERRY_DLQ_H_DLT_ORIGINAL_OFFSET, num);
    snprintf(num, sizeof(num), "%d", attempts);
    add(h, FERRY_DLQ_H_ATTEMPTS, num);
    snprintf(num, sizeof(num), "%lld", (long long)ferry_now_ms());
    add(h, FERRY_DLQ_H_FAILED_AT, num);
    add(h, FERRY_DLQ_H_WORKER, w->id);
    add(h, FERRY_DLQ_H_REPLAY_COUNT, replay);
    add(h, FERRY_DLQ_H_DLT_ORIGINAL_TOPIC, rd_kafka_topic_name(msg->rkt));
    add(h, FERRY_DLQ_H_DLT_EXCEPTION_MESSAGE, cause->msg);
    if (report)
        add(h, FERRY_DLQ_H_REPORT, report);
    return h;
}

ferry_rc worker_dlq_send(worker *w, const rd_kafka_message_t *msg, const ferry_log_ctx *lctx,
                         const ferry_error *cause, int attempts, const char *report,
                         ferry_error *err)
{
    const char *topic = ferry_conf_str(w->conf, "topic.dlq");
    rd_kafka_headers_t *h = build_headers(w, msg, cause, attempts, report);
    ferry_rc rc = FERRY_ERR_RETRYABLE;
    int32_t partition = -1;
    int64_t offset = -1;

    /* Until the DLQ has it the event must not be let go: retry while we run. */
    for (int attempt = 0; !atomic_load(&w->stopping) || attempt == 0; attempt++) {
        rc = ferry_kafka_produce_sync(w->producer, topic, msg->key, msg->key_len, msg->payload,
                                      msg->len, h, &partition, &offset, err);
        if (rc == FERRY_OK)
            break;
        ferry_err(lctx, "dead-lettering offset %lld of partition %d: %s (retrying)",
                  (long long)msg->offset, (int)msg->partition, err->msg);
        if (rc == FERRY_ERR_PERMANENT)
            break;
        ferry_sleep_ms(ferry_backoff_ms(attempt, 200, 10000));
    }
    rd_kafka_headers_destroy(h);
    if (rc == FERRY_OK) {
        ferry_counter_inc(worker_metric.dlq_records);
        ferry_warn(lctx, "dead-lettered offset %lld of partition %d to %s [%d] @%lld: %s: %s",
                   (long long)msg->offset, (int)msg->partition, topic, (int)partition,
                   (long long)offset, cause->cls, cause->msg);
    }
    return rc;
}
