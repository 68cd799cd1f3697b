/* ferry_kafka_resolve_start_offsets against librdkafka's in-process mock cluster: the
 * committed offset when there is one, else what auto.offset.reset picks, an offset the
 * caller chose left alone, and nothing invented when the cluster cannot answer. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_kafka.h"
#include "ferry_log.h"
#include "ferry_test.h"
#include "ferry_test_mock.h"

#define TOPIC "offsets"
static char bootstraps[256];
static int group_seq;

/* Owned by the caller (rd_kafka_destroy). A consumer that never subscribes: the resolver
 * only needs a group id and a cluster. */
static rd_kafka_t *consumer_new(const char *brokers, const char *reset)
{
    char errstr[256], group[32];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_t *rk;
    snprintf(group, sizeof(group), "g%d", ++group_seq);
    if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(c, "group.id", group, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(c, "auto.offset.reset", reset, errstr, sizeof(errstr))) {
        fprintf(stderr, "conf: %s\n", errstr);
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr));
    if (!rk)
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return rk;
}

/* Owned by the caller: partitions 0 and 1 of TOPIC, offsets INVALID as a group hands
 * them out. */
static rd_kafka_topic_partition_list_t *assignment(void)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, TOPIC, 0);
    rd_kafka_topic_partition_list_add(l, TOPIC, 1);
    return l;
}

static void resolve_case(const char *reset, int64_t commit0, int64_t want0, int64_t want1,
                         int want_resolved)
{
    rd_kafka_t *rk = consumer_new(bootstraps, reset);
    rd_kafka_topic_partition_list_t *l = assignment();
    CHECK(rk != NULL);
    if (!rk)
        goto cleanup;
    if (commit0 >= 0) {
        rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(c, TOPIC, 0)->offset = commit0;
        CHECK_INT(rd_kafka_commit(rk, c, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_topic_partition_list_destroy(c);
    }
    CHECK_INT(ferry_kafka_resolve_start_offsets(rk, l, 10000), want_resolved);
    CHECK_INT(l->elems[0].offset, want0);
    CHECK_INT(l->elems[1].offset, want1);
cleanup:
    rd_kafka_topic_partition_list_destroy(l);
    if (rk)
        rd_kafka_destroy(rk);
}

/* Partition 0 holds 3 messages, partition 1 none. */
static void test_earliest_without_commit(void) { resolve_case("earliest", -1, 0, 0, 2); }

static void test_latest_without_commit(void) { resolve_case("latest", -1, 3, 0, 2); }

static void test_committed_offset_wins(void)
{
    resolve_case("earliest", 2, 2, 0, 2);
    resolve_case("latest", 1, 1, 0, 2);
}

/* auto.offset.reset=error must still raise librdkafka's error: not resolved here. */
static void test_error_policy_left_to_librdkafka(void)
{
    resolve_case("error", -1, RD_KAFKA_OFFSET_INVALID, RD_KAFKA_OFFSET_INVALID, 0);
    resolve_case("error", 2, 2, RD_KAFKA_OFFSET_INVALID, 1);
}

static void test_chosen_offset_kept(void)
{
    rd_kafka_t *rk = consumer_new(bootstraps, "latest");
    rd_kafka_topic_partition_list_t *l = assignment();
    CHECK(rk != NULL);
    if (rk) {
        l->elems[0].offset = 1;
        CHECK_INT(ferry_kafka_resolve_start_offsets(rk, l, 10000), 1);
        CHECK_INT(l->elems[0].offset, 1);
        CHECK_INT(l->elems[1].offset, 0);
        rd_kafka_destroy(rk);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void test_unreachable_cluster_resolves_nothing(void)
{
    /* Port 1 on loopback: nothing listens, every request times out. */
    rd_kafka_t *rk = consumer_new("127.0.0.1:1", "earliest");
    rd_kafka_topic_partition_list_t *l = assignment();
    CHECK(rk != NULL);
    if (rk) {
        CHECK_INT(ferry_kafka_resolve_start_offsets(rk, l, 300), 0);
        CHECK_INT(l->elems[0].offset, RD_KAFKA_OFFSET_INVALID);
        CHECK_INT(l->elems[1].offset, RD_KAFKA_OFFSET_INVALID);
        rd_kafka_destroy(rk);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

int main(void)
{
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *mc;

    ferry_log_set_level(getenv("FERRY_TEST_DEBUG") ? FERRY_LOG_DEBUG : FERRY_LOG_ERROR);
    mc = ferry_test_mock_start(&host, bootstraps, sizeof(bootstraps));
    if (!mc)
        return 1;
    rd_kafka_mock_topic_create(mc, TOPIC, 2, 1);
    if (ferry_test_mock_produce(bootstraps, TOPIC, 0, 3) != 0) {
        fprintf(stderr, "producing to the mock cluster failed\n");
        ferry_test_failures++;
    } else {
        RUN(test_earliest_without_commit);
        RUN(test_latest_without_commit);
        RUN(test_committed_offset_wins);
        RUN(test_error_policy_left_to_librdkafka);
        RUN(test_chosen_offset_kept);
        RUN(test_unreachable_cluster_resolves_nothing);
    }

    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
    return TEST_EXIT();
}
