/* ferry-topictool create TOPIC PARTITIONS: creates a topic (replication factor 1, as on
 * the local stack) through the Kafka Admin API; an existing topic is fine. Brokers from
 * FERRY_KAFKA_BROKERS. For tests that need more partitions than the broker default. */
#include <librdkafka/rdkafka.h>

#include "tool_kafka.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    char errstr[512];
    const char *brokers = getenv("FERRY_KAFKA_BROKERS");
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_NewTopic_t *nt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    int rc = 1;

    if (argc != 4 || strcmp(argv[1], "create") != 0 || !brokers) {
        fprintf(stderr,
                "usage: FERRY_KAFKA_BROKERS=... ferry-topictool create TOPIC PARTITIONS\n");
        return 2;
    }
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) ||
        tool_kafka_security(conf, errstr, sizeof(errstr)) ||
        !(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "topictool: %s\n", errstr);
        return 1;
    }
    nt = rd_kafka_NewTopic_new(argv[2], atoi(argv[3]), 1, errstr, sizeof(errstr));
    if (!nt) {
        fprintf(stderr, "topictool: %s\n", errstr);
        rd_kafka_destroy(rk);
        return 1;
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (ev) {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n)
                                                 : NULL;
        rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
        if (!e && n == 1)
            e = rd_kafka_topic_result_error(tr[0]);
        if (!e || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            rc = 0;
        else
            fprintf(stderr, "topictool: %s: %s\n", argv[2], rd_kafka_err2str(e));
        rd_kafka_event_destroy(ev);
    } else {
        fprintf(stderr, "topictool: no answer from the broker\n");
    }
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}
