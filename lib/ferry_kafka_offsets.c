/* Start offsets for an assignment, looked up before rd_kafka_assign instead of by
 * librdkafka after it. librdkafka 2.0.2 starts an assigned partition that has no
 * committed offset through its auto.offset.reset path, which waits a fixed 100 ms before
 * it even asks the broker (rd_kafka_offset_reset: backoff `err ? 100 : 0`, and "no
 * committed offset" counts as an error). The partitions then become fetchable one
 * ListOffsets reply at a time, and the first Fetch, sent with only the first of them,
 * is held by the broker for fetch.wait.max.ms while the rest wait behind it. On a fresh
 * worker the first event waited ~200 ms for both. With concrete offsets every partition
 * starts at once and joins the first Fetch. */
#include <stdio.h>
#include <string.h>

#include "ferry_kafka.h"
#include "ferry_log.h"

/* The ListOffsets timestamp for auto.offset.reset: -2 earliest, -1 latest, 0 for
 * "error" (or anything unknown): leave the partition to librdkafka. */
static int64_t reset_timestamp(rd_kafka_t *rk)
{
    char v[32];
    size_t n = sizeof(v);
    if (rd_kafka_conf_get(rd_kafka_conf(rk), "auto.offset.reset", v, &n) != RD_KAFKA_CONF_OK)
        return 0;
    if (!strcmp(v, "smallest") || !strcmp(v, "earliest") || !strcmp(v, "beginning"))
        return -2;
    if (!strcmp(v, "largest") || !strcmp(v, "latest") || !strcmp(v, "end"))
        return -1;
    return 0;
}

int ferry_kafka_resolve_start_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                                      int timeout_ms)
{
    rd_kafka_topic_partition_list_t *committed = NULL, *reset = NULL;
    rd_kafka_resp_err_t e;
    int64_t ts = reset_timestamp(rk);
    int resolved = 0;

    /* Only what the group left open: an offset the caller chose stays. */
    committed = rd_kafka_topic_partition_list_new(parts->cnt > 0 ? parts->cnt : 1);
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset == RD_KAFKA_OFFSET_INVALID)
            rd_kafka_topic_partition_list_add(committed, parts->elems[i].topic,
                                              parts->elems[i].partition);
    if (committed->cnt == 0)
        goto cleanup;
    e = rd_kafka_committed(rk, committed, timeout_ms);
    if (e) {
        ferry_debug(NULL, "start offsets: committed offsets: %s (librdkafka looks them up)",
                    rd_kafka_err2str(e));
        goto cleanup;
    }
    reset = rd_kafka_topic_partition_list_new(committed->cnt);
    for (int i = 0; i < committed->cnt; i++) {
        rd_kafka_topic_partition_t *c = &committed->elems[i], *p;
        if (c->err)
            continue;
        if (c->offset >= 0) {
            p = rd_kafka_topic_partition_list_find(parts, c->topic, c->partition);
            if (p) {
                p->offset = c->offset;
                resolved++;
            }
        } else if (ts != 0) {
            rd_kafka_topic_partition_list_add(reset, c->topic, c->partition)->offset = ts;
        }
    }
    if (reset->cnt == 0)
        goto cleanup;
    /* ListOffsets with timestamp -2/-1 answers the log start/end offset: what
     * auto.offset.reset would pick, in one request per leader. */
    e = rd_kafka_offsets_for_times(rk, reset, timeout_ms);
    if (e) {
        ferry_debug(NULL, "start offsets: %s offsets: %s (librdkafka looks them up)",
                    ts == -2 ? "earliest" : "latest", rd_kafka_err2str(e));
        goto cleanup;
    }
    for (int i = 0; i < reset->cnt; i++) {
        rd_kafka_topic_partition_t *r = &reset->elems[i], *p;
        if (r->err || r->offset < 0)
            continue;
        p = rd_kafka_topic_partition_list_find(parts, r->topic, r->partition);
        if (p) {
            p->offset = r->offset;
            resolved++;
        }
    }

cleanup:
    rd_kafka_topic_partition_list_destroy(committed);
    if (reset)
        rd_kafka_topic_partition_list_destroy(reset);
    return resolved;
}
