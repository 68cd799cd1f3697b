/* `inspect PARTITION:OFFSET` or `inspect --dataset NAME`: everything about a dead-lettered
 * record -- the decoded event, every header (also ones ferry does not know), the wire
 * format of the value, and what the replay ledger says. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_cli.h"
#include "ferry_log.h"
#include "replayer.h"

typedef struct inspect_ctx {
    replayer *rp;
    int32_t want_partition; /* -1: by filter */
    int64_t want_offset;
    int64_t found;
} inspect_ctx;

/* What the first bytes say about the value's encoding. */
static void describe_value(const rd_kafka_message_t *m, char *out, size_t size)
{
    const unsigned char *b = m->payload;
    if (!b || m->len == 0) {
        snprintf(out, size, "empty");
    } else if (m->len >= FERRY_AVRO_SINGLE_OBJECT_HEADER && b[0] == 0xc3 && b[1] == 0x01) {
        uint64_t fp = 0;
        for (int i = 9; i >= 2; i--)
            fp = (fp << 8) | b[i];
        snprintf(out, size, "Avro single-object encoding, schema fingerprint %016" PRIx64, fp);
    } else if (m->len >= FERRY_AVRO_CONFLUENT_HEADER && b[0] == 0x00) {
        uint32_t id = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
        snprintf(out, size, "Confluent Schema Registry framing, schema id %" PRIu32, id);
    } else {
        snprintf(out, size, "unknown encoding (first byte 0x%02x)", b[0]);
    }
}

static json_t *strv_json(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, replayer_json_str(v[i]));
    return a;
}

static json_t *event_json(const ferry_onboard *ev)
{
    json_t *o = json_object();
    char t[32];
    ferry_dlq_format_time(ev->requested_at_ms, t, sizeof(t));
    json_object_set_new(o, "event_id", replayer_json_str(ev->event_id ? ev->event_id : ""));
    json_object_set_new(o, "dataset", replayer_json_str(ev->dataset ? ev->dataset : ""));
    json_object_set_new(o, "source_uri",
                        replayer_json_str(ev->source_uri ? ev->source_uri : ""));
    json_object_set_new(o, "target_uri",
                        replayer_json_str(ev->target_uri ? ev->target_uri : ""));
    json_object_set_new(o, "requested_at", json_string(t));
    json_object_set_new(o, "requested_at_ms", json_integer(ev->requested_at_ms));
    json_object_set_new(o, "requested_by",
                        replayer_json_str(ev->requested_by ? ev->requested_by : ""));
    json_object_set_new(o, "origin", json_string(ferry_origin_name(ev->origin)));
    json_object_set_new(o, "catalog_ref",
                        ev->catalog_ref ? replayer_json_str(ev->catalog_ref) : json_null());
    json_object_set_new(o, "catalog_etag",
                        ev->catalog_etag ? replayer_json_str(ev->catalog_etag) : json_null());
    json_object_set_new(o, "verify", json_boolean(ev->verify));
    json_object_set_new(o, "overwrite", json_string(ferry_overwrite_name(ev->overwrite)));
    json_object_set_new(o, "include_prefixes",
                        strv_json(ev->include_prefixes, ev->include_count));
    json_object_set_new(o, "exclude_prefixes",
                        strv_json(ev->exclude_prefixes, ev->exclude_count));
    /* Only when set: older events (schema v1, v2) print as they always did. */
    if (ev->source_inventory)
        json_object_set_new(o, "source_inventory", replayer_json_str(ev->source_inventory));
    return o;
}

static void print_kv(const char *k, const char *v)
{
    char buf[4096];
    ferry_dlq_cell(v && *v ? v : "-", 0, buf, sizeof(buf));
    printf("  %-28s %s\n", k, buf);
}

static void print_strv(const char *k, char **v, size_t n)
{
    if (n == 0)
        print_kv(k, "-");
    for (size_t i = 0; i < n; i++)
        print_kv(i ? "" : k, v[i]);
}

static void ledger_text(const ferry_dlq_ledger *l, char *out, size_t size)
{
    char t[32];
    if (l && l->status == FERRY_DLQ_LEDGER_DONE) {
        ferry_dlq_format_time(l->at_ms, t, sizeof(t));
        snprintf(out, size,
                 "replayed %s -> %s [%d] @%" PRId64 ", replay count %" PRId64 ", run %s", t,
                 l->topic, (int)l->partition, l->offset, l->count, l->run);
    } else if (l && l->status == FERRY_DLQ_LEDGER_IN_PROGRESS) {
        ferry_dlq_format_time(l->at_ms, t, sizeof(t));
        snprintf(out, size,
                 "in progress since %s (run %s) and never recorded as done: the next replay "
                 "looks for it on the topic before producing it",
                 t, l->run);
    } else {
        snprintf(out, size, "no entry: never replayed");
    }
}

static int show(inspect_ctx *c, const rd_kafka_message_t *m)
{
    replayer *rp = c->rp;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    ferry_dlq_record rec;
    ferry_dlq_ledger led;
    const ferry_dlq_record *recs[1] = {&rec};
    ferry_onboard ev = {0};
    ferry_error err = {0}, derr = {0};
    ferry_rc drc;
    uint64_t fp;
    ferry_dlq_action action = FERRY_DLQ_REPLAY;
    int ledger_ok;
    char enc[160], t[32], status[512];
    size_t nh;

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        h = NULL;
    ferry_dlq_record_parse(h, m->key, m->key_len, m->partition, m->offset, ts, &rec);
    if (c->want_partition < 0 && !ferry_dlq_filter_match(&rp->opt.filter, &rec))
        return 0;
    c->found++;
    fp = ferry_dlq_fingerprint(m->key, m->key_len, m->payload, m->len, ts);
    ledger_ok = replayer_ledger_lookup(rp->redis, rp->dlq_topic, recs, 1, &led, &err) ==
                FERRY_OK;
    if (!ledger_ok)
        ferry_warn(NULL, "reading the replay ledger: %s", err.msg);
    else
        action = replayer_status(rp, &rec, &led, fp);
    if (!rp->codec && !(rp->codec = ferry_avro_codec_new(status, sizeof(status)))) {
        ferry_err(NULL, "loading the schemas: %s", status);
        return -1;
    }
    drc = ferry_avro_decode_onboard(rp->codec, m->payload, m->len, &ev, &derr);
    describe_value(m, enc, sizeof(enc));
    ledger_text(ledger_ok && (action == FERRY_DLQ_SKIP_REPLAYED || action == FERRY_DLQ_RECOVER)
                    ? &led
                    : NULL,
                status, sizeof(status));
    nh = h ? rd_kafka_header_cnt(h) : 0;

    if (rp->opt.json) {
        json_t *o = replayer_record_json(&rec, ledger_ok ? &led : NULL,
                                         ledger_ok ? ferry_dlq_action_name(action) : NULL);
        json_t *hs = json_array(), *val = json_object();
        char *s;
        for (size_t i = 0; i < nh; i++) {
            const char *name;
            const void *v;
            size_t vn;
            json_t *hj = json_object();
            if (rd_kafka_header_get_all(h, i, &name, &v, &vn))
                continue;
            json_object_set_new(hj, "name", replayer_json_str(name));
            if (v) {
                char *copy = strndup(v, vn);
                json_object_set_new(hj, "value", copy ? replayer_json_str(copy) : json_null());
                free(copy);
            } else {
                json_object_set_new(hj, "value", json_null());
            }
            json_array_append_new(hs, hj);
        }
        json_object_set_new(o, "topic", replayer_json_str(rp->dlq_topic));
        json_object_set_new(o, "timestamp_ms", json_integer(ts));
        json_object_set_new(o, "headers", hs);
        json_object_set_new(val, "bytes", json_integer((json_int_t)m->len));
        json_object_set_new(val, "encoding", json_string(enc));
        json_object_set_new(o, "value", val);
        json_object_set_new(o, "event", drc == FERRY_OK ? event_json(&ev) : json_null());
        json_object_set_new(o, "decode_error",
                            drc == FERRY_OK ? json_null() : replayer_json_str(derr.msg));
        s = json_dumps(o, JSON_INDENT(2));
        if (s)
            printf("%s%s", c->want_partition < 0 ? (c->found > 1 ? ",\n" : "") : "", s);
        free(s);
        json_decref(o);
        goto out;
    }

    if (c->found > 1)
        printf("\n");
    printf("record %s %d:%" PRId64 "\n", rp->dlq_topic, (int)m->partition, m->offset);
    if (ts >= 0) {
        ferry_dlq_format_time(ts, t, sizeof(t));
        printf("  %-28s %s (%" PRId64 ")\n", "timestamp", t, ts);
    }
    print_kv("key", rec.dataset);
    printf("  %-28s %zu bytes, %s\n", "value", m->len, enc);
    print_kv("status", ledger_ok ? ferry_dlq_action_name(action) : "?");
    print_kv("ledger", ledger_ok ? status : "could not be read");
    printf("headers (%zu)\n", nh);
    for (size_t i = 0; i < nh; i++) {
        const char *name;
        const void *v;
        size_t vn;
        char *copy;
        if (rd_kafka_header_get_all(h, i, &name, &v, &vn))
            continue;
        copy = v ? strndup(v, vn) : NULL;
        print_kv(name, copy ? copy : "(null)");
        free(copy);
    }
    if (drc != FERRY_OK) {
        printf("event: cannot decode as DatasetOnboard: %s: %s\n", derr.cls, derr.msg);
        goto out;
    }
    printf("event (DatasetOnboard)\n");
    print_kv("event_id", ev.event_id);
    print_kv("dataset", ev.dataset);
    print_kv("source_uri", ev.source_uri);
    print_kv("target_uri", ev.target_uri);
    ferry_dlq_format_time(ev.requested_at_ms, t, sizeof(t));
    print_kv("requested_at", t);
    print_kv("requested_by", ev.requested_by);
    print_kv("origin", ferry_origin_name(ev.origin));
    print_kv("catalog_ref", ev.catalog_ref);
    print_kv("catalog_etag", ev.catalog_etag);
    print_kv("verify", ev.verify ? "true" : "false");
    print_kv("overwrite", ferry_overwrite_name(ev.overwrite));
    print_strv("include_prefixes", ev.include_prefixes, ev.include_count);
    print_strv("exclude_prefixes", ev.exclude_prefixes, ev.exclude_count);
    if (ev.source_inventory)
        print_kv("source_inventory", ev.source_inventory);
out:
    ferry_onboard_clear(&ev);
    return 0;
}

static int on_message(const rd_kafka_message_t *m, void *opaque)
{
    inspect_ctx *c = opaque;
    if (c->want_partition >= 0 && m->offset != c->want_offset)
        return 0;
    if (show(c, m) != 0)
        return -1;
    return c->want_partition >= 0 ? 1 : 0;
}

int replayer_inspect(replayer *rp)
{
    inspect_ctx c = {rp, -1, -1, 0};
    replayer_range *ranges = NULL;
    size_t n = 0;
    int exists = 0, rc = FERRY_EXIT_FAILURE, by_pos = rp->opt.position != NULL;
    char errstr[512];

    if (by_pos)
        ferry_dlq_parse_position(rp->opt.position, &c.want_partition, &c.want_offset);
    if (replayer_topic_ranges(rp->consumer, rp->dlq_topic, &ranges, &n, &exists, errstr,
                              sizeof(errstr)) != 0) {
        fprintf(stderr, "ferry-dlq-replayer: %s\n", errstr);
        goto out;
    }
    if (rp->opt.json && !by_pos)
        printf("[");
    for (size_t i = 0; i < n; i++) {
        replayer_range r = ranges[i];
        if (by_pos) {
            if (r.partition != c.want_partition)
                continue;
            if (c.want_offset < r.start || c.want_offset >= r.end)
                break;
            r.start = c.want_offset;
            r.end = c.want_offset + 1;
        } else if (rp->opt.filter.partition >= 0 && r.partition != rp->opt.filter.partition) {
            continue;
        }
        if (replayer_scan_range(rp->consumer, rp->dlq_topic, &r, on_message, &c, errstr,
                                sizeof(errstr)) != 0) {
            fprintf(stderr, "ferry-dlq-replayer: %s\n", errstr);
            goto out;
        }
    }
    if (rp->opt.json && !by_pos)
        printf("]");
    if (rp->opt.json)
        printf("\n");
    if (c.found == 0) {
        if (by_pos)
            fprintf(stderr, "ferry-dlq-replayer: no record at %s in %s%s\n", rp->opt.position,
                    rp->dlq_topic, exists ? "" : " (the topic does not exist)");
        else
            fprintf(stderr, "ferry-dlq-replayer: no record in %s matches\n", rp->dlq_topic);
        goto out;
    }
    rc = FERRY_EXIT_OK;
out:
    fflush(stdout);
    free(ranges);
    return rc;
}
