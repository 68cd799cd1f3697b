/* Reading a topic the way an operator's tool should: explicit assignment of one partition
 * at a time, from a start offset to the high watermark asked for beforehand -- no consumer
 * group, nothing committed, nothing changed for the workers. Records that arrive while we
 * read are left for the next run, so a scan always ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_log.h"
#include "ferry_util.h"
#include "replayer.h"

#define META_TIMEOUT_MS 10000
/* A partition that yields nothing for this long while records are still expected. */
#define STALL_TIMEOUT_MS 30000

static int cmp_range(const void *a, const void *b)
{
    const replayer_range *x = a, *y = b;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

int replayer_topic_ranges(rd_kafka_t *rk, const char *topic, replayer_range **out, size_t *n,
                          int *exists, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e;
    replayer_range *r = NULL;
    int rc = -1;

    *out = NULL;
    *n = 0;
    *exists = 0;
    if (!rkt) {
        snprintf(errstr, errstr_size, "topic %s: %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    e = rd_kafka_metadata(rk, 0, rkt, &md, META_TIMEOUT_MS);
    if (e) {
        snprintf(errstr, errstr_size, "reading metadata of %s: %s", topic, rd_kafka_err2str(e));
        goto out;
    }
    if (md->topic_cnt < 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        (md->topics[0].err == 0 && md->topics[0].partition_cnt == 0)) {
        rc = 0; /* no such topic: nothing was ever dead-lettered */
        goto out;
    }
    if (md->topics[0].err) {
        snprintf(errstr, errstr_size, "metadata of %s: %s", topic,
                 rd_kafka_err2str(md->topics[0].err));
        goto out;
    }
    r = calloc((size_t)md->topics[0].partition_cnt, sizeof(*r));
    if (!r) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int64_t lo = 0, hi = 0;
        int32_t p = md->topics[0].partitions[i].id;
        e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, META_TIMEOUT_MS);
        if (e) {
            snprintf(errstr, errstr_size, "watermarks of %s [%d]: %s", topic, (int)p,
                     rd_kafka_err2str(e));
            goto out;
        }
        r[i].partition = p;
        r[i].start = lo;
        r[i].end = hi;
    }
    *n = (size_t)md->topics[0].partition_cnt;
    qsort(r, *n, sizeof(*r), cmp_range);
    *out = r;
    r = NULL;
    *exists = 1;
    rc = 0;
out:
    free(r);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

static rd_kafka_resp_err_t assign_one(rd_kafka_t *rk, const char *topic, int32_t partition,
                                      int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t e;
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    e = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return e;
}

int replayer_scan_range(rd_kafka_t *rk, const char *topic, const replayer_range *r,
                        replayer_scan_cb cb, void *opaque, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t e;
    int64_t last_progress = ferry_mono_ms();
    int rc = -1, done = 0;

    if (r->start >= r->end)
        return 0;
    if ((e = assign_one(rk, topic, r->partition, r->start))) {
        snprintf(errstr, errstr_size, "assigning %s [%d]: %s", topic, (int)r->partition,
                 rd_kafka_err2str(e));
        return -1;
    }
    while (!done) {
        rd_kafka_message_t *m;
        if (replayer_interrupted) {
            snprintf(errstr, errstr_size, "interrupted");
            goto out;
        }
        if (ferry_mono_ms() - last_progress > STALL_TIMEOUT_MS) {
            snprintf(errstr, errstr_size,
                     "reading %s [%d]: no record for %d s while offsets up to %lld were "
                     "expected",
                     topic, (int)r->partition, STALL_TIMEOUT_MS / 1000, (long long)r->end - 1);
            goto out;
        }
        m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        /* A message from an earlier assignment still in the queue is not ours. */
        if (m->partition != r->partition || !m->rkt ||
            strcmp(rd_kafka_topic_name(m->rkt), topic) != 0) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            done = 1; /* the end, even if the last offsets were not data (transactions) */
        } else if (m->err) {
            int fatal = m->err == RD_KAFKA_RESP_ERR__FATAL ||
                        m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                        m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                        m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
            if (fatal) {
                snprintf(errstr, errstr_size, "reading %s [%d]: %s", topic, (int)r->partition,
                         rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                goto out;
            }
            ferry_warn(NULL, "reading %s [%d]: %s (retrying)", topic, (int)r->partition,
                       rd_kafka_message_errstr(m));
        } else if (m->offset >= r->end) {
            done = 1;
        } else {
            int c;
            last_progress = ferry_mono_ms();
            c = cb(m, opaque);
            if (c < 0) {
                snprintf(errstr, errstr_size, "stopped at %s [%d] offset %lld", topic,
                         (int)r->partition, (long long)m->offset);
                rd_kafka_message_destroy(m);
                goto out;
            }
            if (c > 0 || m->offset >= r->end - 1)
                done = 1;
        }
        rd_kafka_message_destroy(m);
    }
    rc = 0;
out:
    rd_kafka_assign(rk, NULL);
    return rc;
}

int replayer_ranges_since(rd_kafka_t *rk, const char *topic, replayer_range *ranges, size_t n,
                          int64_t ts_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t e;
    int rc = -1;

    if (n == 0)
        return 0;
    l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topic, ranges[i].partition)->offset = ts_ms;
    e = rd_kafka_offsets_for_times(rk, l, META_TIMEOUT_MS);
    if (e) {
        snprintf(errstr, errstr_size, "finding offsets of %s by time: %s", topic,
                 rd_kafka_err2str(e));
        goto out;
    }
    for (int i = 0; i < l->cnt; i++) {
        for (size_t j = 0; j < n; j++) {
            if (ranges[j].partition != l->elems[i].partition)
                continue;
            if (l->elems[i].err) {
                snprintf(errstr, errstr_size, "offset by time of %s [%d]: %s", topic,
                         (int)ranges[j].partition, rd_kafka_err2str(l->elems[i].err));
                goto out;
            }
            /* -1: no message that new in this partition. */
            if (l->elems[i].offset < 0)
                ranges[j].start = ranges[j].end;
            else if (l->elems[i].offset > ranges[j].start)
                ranges[j].start = l->elems[i].offset;
        }
    }
    rc = 0;
out:
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}
