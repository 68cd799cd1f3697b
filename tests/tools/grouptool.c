/* ferry-grouptool lag GROUP TOPIC...: prints the consumer group's total lag over every
 * partition of the topics: high watermark minus the committed offset (minus the low
 * watermark where nothing is committed). 0 means the group committed past every event,
 * so none of them will be delivered to it again: what tests wait for before asserting
 * that something happened exactly once. Brokers from FERRY_KAFKA_BROKERS. Never joins
 * the group (no subscribe): it only reads its committed offsets. */
#include <librdkafka/rdkafka.h>

#include "tool_kafka.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 10000

int main(int argc, char **argv)
{
    char errstr[512];
    const char *brokers = getenv("FERRY_KAFKA_BROKERS");
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t e;
    long long lag = 0;
    int rc = 1;

    if (argc < 4 || strcmp(argv[1], "lag") != 0 || !brokers) {
        fprintf(stderr, "usage: FERRY_KAFKA_BROKERS=... ferry-grouptool lag GROUP TOPIC...\n");
        return 2;
    }
    conf = rd_kafka_conf_new();
    /* tool_kafka_security: the secured stack's SASL_SSL settings, as the other tools */
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) ||
        tool_kafka_security(conf, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", argv[2], errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        !(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "grouptool: %s\n", errstr);
        return 1;
    }
    parts = rd_kafka_topic_partition_list_new(8);
    for (int t = 3; t < argc; t++) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, argv[t], NULL);
        e = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS)
                : RD_KAFKA_RESP_ERR__INVALID_ARG;
        if (!e && (md->topic_cnt != 1 || md->topics[0].err))
            e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (e) {
            fprintf(stderr, "grouptool: metadata of %s: %s\n", argv[t], rd_kafka_err2str(e));
            if (md)
                rd_kafka_metadata_destroy(md);
            if (rkt)
                rd_kafka_topic_destroy(rkt);
            goto out;
        }
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(parts, argv[t], md->topics[0].partitions[p].id);
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
    if ((e = rd_kafka_committed(rk, parts, TIMEOUT_MS))) {
        fprintf(stderr, "grouptool: committed offsets: %s\n", rd_kafka_err2str(e));
        goto out;
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t lo, hi;
        if (p->err) {
            fprintf(stderr, "grouptool: committed offset of %s [%d]: %s\n", p->topic,
                    (int)p->partition, rd_kafka_err2str(p->err));
            goto out;
        }
        if ((e = rd_kafka_query_watermark_offsets(rk, p->topic, p->partition, &lo, &hi,
                                                  TIMEOUT_MS))) {
            fprintf(stderr, "grouptool: watermarks of %s [%d]: %s\n", p->topic,
                    (int)p->partition, rd_kafka_err2str(e));
            goto out;
        }
        lag += hi - (p->offset >= 0 ? p->offset : lo);
    }
    printf("%lld\n", lag);
    rc = 0;
out:
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return rc;
}
