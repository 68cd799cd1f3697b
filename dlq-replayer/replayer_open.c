/* Opening and closing the replayer's Kafka reader and Redis connection, and the flag the
 * signal handler sets: shared by every command, so part of the ferry_replayer library. */
#include <stdio.h>
#include <string.h>

#include "ferry_connect.h"
#include "ferry_kafka.h"
#include "replayer.h"

volatile sig_atomic_t replayer_interrupted;

static void find_prop(const char *prop, const char *value, void *opaque)
{
    const char **want = opaque;
    (void)value;
    if (*want && strcmp(prop, *want) == 0)
        *want = NULL;
}

/* The reader: explicit assignment only, so the group id is never joined or committed. */
static void consumer_customize(rd_kafka_conf_t *kconf, void *opaque)
{
    const ferry_conf *conf = opaque;
    const char *wait = "fetch.wait.max.ms";
    char errstr[256];
    rd_kafka_conf_set(kconf, "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(kconf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    /* Partitions are read one after another; a long-poll fetch still in flight for the
     * previous one delays the next by fetch.wait.max.ms (500 ms by default). Unless the
     * user set it, keep it short. */
    ferry_conf_kafka_foreach(conf, find_prop, &wait);
    if (wait)
        rd_kafka_conf_set(kconf, wait, "10", errstr, sizeof(errstr));
}

int replayer_open(replayer *rp, char *errstr, size_t errstr_size)
{
    char sub[512];
    ferry_error err = {0};

    rp->consumer = ferry_kafka_consumer_new(rp->conf, "ferry-dlq-replayer", consumer_customize,
                                            (void *)rp->conf, sub, sizeof(sub));
    if (!rp->consumer) {
        snprintf(errstr, errstr_size, "creating the Kafka consumer: %s", sub);
        return -1;
    }
    /* Both services up front, each within --timeout, so a missing one is named at once. */
    if (ferry_kafka_wait_brokers(rp->consumer, rp->conf, rp->timeout_ms, &err) != FERRY_OK)
        return ferry_error_to_errstr(&err, errstr, errstr_size, NULL);
    rp->redis = ferry_connect_redis_check(rp->conf, rp->timeout_ms, sub, sizeof(sub));
    if (!rp->redis) {
        snprintf(errstr, errstr_size, "%s", sub);
        return -1;
    }
    return 0;
}

void replayer_close(replayer *rp)
{
    if (rp->consumer) {
        rd_kafka_consumer_close(rp->consumer);
        rd_kafka_destroy(rp->consumer);
        rp->consumer = NULL;
    }
    ferry_redis_destroy(rp->redis);
    rp->redis = NULL;
    ferry_avro_codec_destroy(rp->codec);
    rp->codec = NULL;
}
