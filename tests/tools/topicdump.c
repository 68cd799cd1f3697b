/* ferry-topicdump: prints every DatasetOnboard event of a topic, decoded, one JSON object
 * per line, then exits (reads each partition from the beginning to its end):
 *   ferry-topicdump TOPIC        brokers from $FERRY_KAFKA_BROKERS
 * {"partition":0,"offset":3,"timestamp_ms":...,"key":"d","event_id":"...","dataset":"d",
 *  "origin":"backstage","catalog_ref":"...","catalog_etag":"...","source":"...","target":"...",
 *  "requested_by":"...","verify":true,"overwrite":"if_different"[,"source_inventory":"..."]}
 * A value that does not decode prints {"partition":..,"offset":..,"error":"..."}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "ferry_avro.h"
#include "ferry_util.h"
#include "tool_kafka.h"

int main(int argc, char **argv)
{
    const char *brokers = getenv("FERRY_KAFKA_BROKERS");
    char errstr[512], group[64];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt;
    rd_kafka_topic_partition_list_t *parts;
    ferry_avro_codec *codec;
    int n_parts = 0, eof = 0, rc = 1;
    int64_t deadline;

    if (argc != 2 || !brokers) {
        fprintf(stderr, "usage: FERRY_KAFKA_BROKERS=... ferry-topicdump TOPIC\n");
        return 2;
    }
    if (!(codec = ferry_avro_codec_new(errstr, sizeof(errstr)))) {
        fprintf(stderr, "topicdump: %s\n", errstr);
        return 1;
    }
    snprintf(group, sizeof(group), "ferry-topicdump-%lld", (long long)ferry_now_ms());
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) ||
        tool_kafka_security(conf, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr))) {
        fprintf(stderr, "topicdump: %s\n", errstr);
        return 1;
    }
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "topicdump: %s\n", errstr);
        return 1;
    }
    rkt = rd_kafka_topic_new(rk, argv[1], NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        n_parts = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (n_parts == 0) { /* no such topic (yet): no events */
        rc = 0;
        goto out;
    }
    parts = rd_kafka_topic_partition_list_new(n_parts);
    for (int p = 0; p < n_parts; p++)
        rd_kafka_topic_partition_list_add(parts, argv[1], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    deadline = ferry_mono_ms() + 30000;
    while (eof < n_parts && ferry_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        ferry_onboard ev = {0};
        ferry_error err = {0};
        json_t *o;
        char *line;

        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof++;
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            fprintf(stderr, "topicdump: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        o = json_pack("{s:i,s:I,s:I,s:s#}", "partition", (int)m->partition, "offset",
                      (json_int_t)m->offset, "timestamp_ms",
                      (json_int_t)rd_kafka_message_timestamp(m, NULL), "key",
                      m->key ? (const char *)m->key : "", m->key ? (int)m->key_len : 0);
        if (ferry_avro_decode_onboard(codec, m->payload, m->len, &ev, &err) == FERRY_OK) {
            json_object_set_new(o, "event_id", json_string(ev.event_id));
            json_object_set_new(o, "dataset", json_string(ev.dataset));
            json_object_set_new(o, "origin", json_string(ferry_origin_name(ev.origin)));
            json_object_set_new(o, "catalog_ref",
                                ev.catalog_ref ? json_string(ev.catalog_ref) : json_null());
            json_object_set_new(o, "catalog_etag",
                                ev.catalog_etag ? json_string(ev.catalog_etag) : json_null());
            json_object_set_new(o, "source", json_string(ev.source_uri));
            json_object_set_new(o, "target", json_string(ev.target_uri));
            json_object_set_new(o, "requested_by",
                                ev.requested_by ? json_string(ev.requested_by) : json_null());
            json_object_set_new(o, "requested_at_ms", json_integer(ev.requested_at_ms));
            json_object_set_new(o, "verify", json_boolean(ev.verify));
            json_object_set_new(o, "overwrite",
                                json_string(ferry_overwrite_name(ev.overwrite)));
            if (ev.source_inventory)
                json_object_set_new(o, "source_inventory", json_string(ev.source_inventory));
        } else {
            json_object_set_new(o, "error", json_string(err.msg));
        }
        if ((line = json_dumps(o, JSON_COMPACT))) {
            puts(line);
            free(line);
        }
        json_decref(o);
        ferry_onboard_clear(&ev);
        rd_kafka_message_destroy(m);
    }
    rc = eof < n_parts ? 1 : 0;
    if (rc)
        fprintf(stderr, "topicdump: did not reach the end of every partition in 30 s\n");
out:
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    ferry_avro_codec_destroy(codec);
    return rc;
}
