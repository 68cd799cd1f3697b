/* librdkafka's in-process mock cluster for unit tests: one broker, no external service.
 * FERRY_TEST_MOCK_DEBUG (e.g. mock,cgrp) turns on librdkafka debug for the mock. */
#ifndef FERRY_TEST_MOCK_H
#define FERRY_TEST_MOCK_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns the cluster and sets *host (its owner) and bootstraps, or NULL after printing
 * why. The caller destroys the cluster, then *host. */
static rd_kafka_mock_cluster_t *ferry_test_mock_start(rd_kafka_t **host, char *bootstraps,
                                                      size_t bootstraps_size)
{
    char errstr[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_mock_cluster_t *mc;

    if (getenv("FERRY_TEST_MOCK_DEBUG"))
        rd_kafka_conf_set(c, "debug", getenv("FERRY_TEST_MOCK_DEBUG"), errstr, sizeof(errstr));
    *host = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr));
    if (!*host) {
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    mc = rd_kafka_mock_cluster_new(*host, 1);
    if (!mc) {
        fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
        rd_kafka_destroy(*host);
        *host = NULL;
        return NULL;
    }
    snprintf(bootstraps, bootstraps_size, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    return mc;
}

/* Produces n messages "event-0".. to one partition and waits for them. 0, or -1 if the
 * producer could not be made or a message was not delivered within 10 s. */
static int ferry_test_mock_produce(const char *bootstraps, const char *topic, int32_t partition,
                                   int n)
{
    char errstr[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_t *p;
    int rc = 0;
    if (rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(c);
        return -1;
    }
    p = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr));
    if (!p) {
        rd_kafka_conf_destroy(c);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char v[32];
        snprintf(v, sizeof(v), "event-%d", i);
        if (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_VALUE(v, strlen(v)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
            rc = -1;
    }
    if (rd_kafka_flush(p, 10000))
        rc = -1;
    rd_kafka_destroy(p);
    return rc;
}

#endif
