/* `list`: one row per dead-lettered record, what `replay` would do with it, and totals per
 * error class. Text output holds the selected rows to align the columns; --json streams
 * (one record object at a time), so it also suits a DLQ of millions. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_cli.h"
#include "ferry_log.h"
#include "replayer.h"

typedef struct row {
    ferry_dlq_record rec;
    ferry_dlq_ledger ledger;
    uint64_t fp;
    ferry_dlq_action action;
    int status_known; /* 0: the ledger could not be read */
} row;

typedef struct class_count {
    char cls[64];
    int64_t n;
} class_count;

typedef struct list_ctx {
    replayer *rp;
    row *batch; /* read, waiting for their ledger entries */
    size_t nbatch;
    row *rows; /* text mode: every selected row */
    size_t nrows, caprows;
    int json_first;
    class_count *classes;
    size_t nclasses;
    int64_t by_action[FERRY_DLQ_REFUSE_TOPIC + 1];
    int64_t total, unknown;
    int ledger_down;
    int failed;
} list_ctx;

ferry_dlq_action replayer_status(const replayer *rp, const ferry_dlq_record *r,
                                 const ferry_dlq_ledger *l, uint64_t fp)
{
    return ferry_dlq_decide(r, l, fp, ferry_conf_int(rp->conf, "replay.max_count"), 0,
                            ferry_conf_str(rp->conf, "replay.allowed_topics"),
                            ferry_conf_str(rp->conf, "topic.onboard"));
}

json_t *replayer_json_str(const char *s)
{
    json_t *j = json_string(s);
    if (!j) {
        size_t n = strlen(s) + 1;
        char *clean = malloc(n);
        if (!clean)
            return json_null();
        ferry_dlq_cell(s, 0, clean, n);
        j = json_string(clean);
        free(clean);
    }
    return j ? j : json_null();
}

static json_t *num_or_null(int64_t v) { return v >= 0 ? json_integer(v) : json_null(); }

json_t *replayer_record_json(const ferry_dlq_record *r, const ferry_dlq_ledger *l,
                             const char *status)
{
    json_t *o = json_object(), *orig = json_object();
    char t[32];

    json_object_set_new(o, "partition", json_integer(r->partition));
    json_object_set_new(o, "offset", json_integer(r->offset));
    json_object_set_new(o, "dataset", replayer_json_str(r->dataset));
    json_object_set_new(o, "error_class", replayer_json_str(r->error_class));
    json_object_set_new(o, "error_message", replayer_json_str(r->error_message));
    json_object_set_new(o, "attempts", num_or_null(r->attempts));
    if (r->failed_at_ms >= 0) {
        ferry_dlq_format_time(r->failed_at_ms, t, sizeof(t));
        json_object_set_new(o, "failed_at", json_string(t));
    } else {
        json_object_set_new(o, "failed_at", json_null());
    }
    json_object_set_new(o, "failed_at_ms", num_or_null(r->failed_at_ms));
    json_object_set_new(o, "replay_count", num_or_null(r->replay_count));
    json_object_set_new(o, "worker", replayer_json_str(r->worker));
    json_object_set_new(orig, "topic", replayer_json_str(r->original_topic));
    json_object_set_new(orig, "partition", num_or_null(r->original_partition));
    json_object_set_new(orig, "offset", num_or_null(r->original_offset));
    json_object_set_new(o, "original", orig);
    json_object_set_new(o, "status", status ? json_string(status) : json_null());
    if (l && l->status == FERRY_DLQ_LEDGER_DONE) {
        json_t *rep = json_object();
        ferry_dlq_format_time(l->at_ms, t, sizeof(t));
        json_object_set_new(rep, "at", json_string(t));
        json_object_set_new(rep, "topic", replayer_json_str(l->topic));
        json_object_set_new(rep, "partition", json_integer(l->partition));
        json_object_set_new(rep, "offset", json_integer(l->offset));
        json_object_set_new(rep, "replay_count", json_integer(l->count));
        json_object_set_new(o, "replayed", rep);
    } else {
        json_object_set_new(o, "replayed", json_null());
    }
    return o;
}

static void count_class(list_ctx *c, const char *cls)
{
    class_count *n;
    for (size_t i = 0; i < c->nclasses; i++)
        if (strcmp(c->classes[i].cls, cls) == 0) {
            c->classes[i].n++;
            return;
        }
    n = realloc(c->classes, (c->nclasses + 1) * sizeof(*n));
    if (!n)
        return;
    c->classes = n;
    snprintf(n[c->nclasses].cls, sizeof(n[c->nclasses].cls), "%s", cls);
    n[c->nclasses++].n = 1;
}

static void emit_json(list_ctx *c, const row *r)
{
    json_t *o = replayer_record_json(&r->rec, r->status_known ? &r->ledger : NULL,
                                     r->status_known ? ferry_dlq_action_name(r->action) : NULL);
    char *s = json_dumps(o, JSON_COMPACT);
    if (s)
        printf("%s\n    %s", c->json_first ? "" : ",", s);
    c->json_first = 0;
    free(s);
    json_decref(o);
}

/* Looks the batch up in the ledger, then counts and emits (or keeps) each row. */
static int flush(list_ctx *c)
{
    const ferry_dlq_record *recs[REPLAYER_LEDGER_BATCH];
    ferry_dlq_ledger led[REPLAYER_LEDGER_BATCH];
    int known = 0;

    if (c->nbatch == 0)
        return 0;
    for (size_t i = 0; i < c->nbatch; i++)
        recs[i] = &c->batch[i].rec;
    if (!c->ledger_down) {
        ferry_error err = {0};
        if (replayer_ledger_lookup(c->rp->redis, c->rp->dlq_topic, recs, c->nbatch, led,
                                   &err) == FERRY_OK)
            known = 1;
        else {
            ferry_warn(NULL, "reading the replay ledger: %s; status is shown as \"?\"",
                       err.msg);
            c->ledger_down = 1;
        }
    }
    for (size_t i = 0; i < c->nbatch; i++) {
        row *r = &c->batch[i];
        r->status_known = known;
        if (known) {
            r->ledger = led[i];
            r->action = replayer_status(c->rp, &r->rec, &r->ledger, r->fp);
        }
        if (c->rp->opt.ready_only &&
            (!known || (r->action != FERRY_DLQ_REPLAY && r->action != FERRY_DLQ_RECOVER)))
            continue;
        c->total++;
        if (known)
            c->by_action[r->action]++;
        else
            c->unknown++;
        count_class(c, r->rec.error_class[0] ? r->rec.error_class : "(none)");
        if (c->rp->opt.json) {
            emit_json(c, r);
            continue;
        }
        if (c->nrows == c->caprows) {
            size_t cap = c->caprows ? c->caprows * 2 : 64;
            row *n = realloc(c->rows, cap * sizeof(*n));
            if (!n) {
                ferry_err(NULL, "out of memory holding %zu rows (try --json)", c->nrows);
                return -1;
            }
            c->rows = n;
            c->caprows = cap;
        }
        c->rows[c->nrows++] = *r;
    }
    c->nbatch = 0;
    return 0;
}

static int on_message(const rd_kafka_message_t *m, void *opaque)
{
    list_ctx *c = opaque;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    row *r;

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        h = NULL;
    r = &c->batch[c->nbatch];
    ferry_dlq_record_parse(h, m->key, m->key_len, m->partition, m->offset, ts, &r->rec);
    if (!ferry_dlq_filter_match(&c->rp->opt.filter, &r->rec))
        return 0;
    r->fp = ferry_dlq_fingerprint(m->key, m->key_len, m->payload, m->len, ts);
    if (++c->nbatch == REPLAYER_LEDGER_BATCH && flush(c) != 0)
        return -1;
    return 0;
}

/* Prints cell padded to width characters (cell widths count characters, not bytes). */
static void put_cell(const char *s, size_t width, int last)
{
    char buf[2048];
    size_t n = ferry_dlq_cell(s, 0, buf, sizeof(buf));
    fputs(buf, stdout);
    if (!last)
        for (size_t i = n; i < width + 2; i++)
            fputc(' ', stdout);
}

static void put_num(int64_t v, size_t width)
{
    char buf[32];
    if (v < 0)
        snprintf(buf, sizeof(buf), "-");
    else
        snprintf(buf, sizeof(buf), "%" PRId64, v);
    printf("%*s  ", (int)width, buf);
}

static size_t wlen(const char *s)
{
    char buf[2048];
    return ferry_dlq_cell(s, 0, buf, sizeof(buf));
}

static void print_table(list_ctx *c)
{
    size_t wpos = 3, wds = 7, wcls = 11, watt = 3, wrep = 7, wst = 6, used;
    int term = c->rp->opt.wide ? 0 : replayer_term_width(STDOUT_FILENO);
    char pos[48], t[32], msg[4096];

    for (size_t i = 0; i < c->nrows; i++) {
        const row *r = &c->rows[i];
        size_t n;
        snprintf(pos, sizeof(pos), "%d:%" PRId64, (int)r->rec.partition, r->rec.offset);
        if ((n = strlen(pos)) > wpos)
            wpos = n;
        if ((n = wlen(r->rec.dataset)) > wds)
            wds = n;
        if ((n = wlen(r->rec.error_class)) > wcls)
            wcls = n;
        if (r->status_known && (n = strlen(ferry_dlq_action_name(r->action))) > wst)
            wst = n;
    }
    used = wpos + wds + wcls + watt + 20 + wrep + wst + 7 * 2;
    printf("%-*s  %-*s  %-*s  %*s  %-20s  %*s  %-*s  %s\n", (int)wpos, "POS", (int)wds,
           "DATASET", (int)wcls, "ERROR CLASS", (int)watt, "ATT", "FAILED AT (UTC)", (int)wrep,
           "REPLAYS", (int)wst, "STATUS", "MESSAGE");
    for (size_t i = 0; i < c->nrows; i++) {
        const row *r = &c->rows[i];
        size_t room = term > 0 && (size_t)term > used + 20 ? (size_t)term - used
                      : term > 0                           ? 20
                                                           : 0;
        snprintf(pos, sizeof(pos), "%d:%" PRId64, (int)r->rec.partition, r->rec.offset);
        put_cell(pos, wpos, 0);
        put_cell(r->rec.dataset[0] ? r->rec.dataset : "-", wds, 0);
        put_cell(r->rec.error_class[0] ? r->rec.error_class : "-", wcls, 0);
        put_num(r->rec.attempts, watt);
        if (r->rec.failed_at_ms >= 0)
            ferry_dlq_format_time(r->rec.failed_at_ms, t, sizeof(t));
        else
            snprintf(t, sizeof(t), "-");
        put_cell(t, 20, 0);
        put_num(r->rec.replay_count, wrep);
        put_cell(r->status_known ? ferry_dlq_action_name(r->action) : "?", wst, 0);
        ferry_dlq_cell(r->rec.error_message, room, msg, sizeof(msg));
        printf("%s\n", msg);
    }
}

static int cmp_class(const void *a, const void *b)
{
    const class_count *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->cls, y->cls);
}

static void print_totals(list_ctx *c, int exists)
{
    char desc[512];
    int first = 1;

    replayer_filter_describe(&c->rp->opt.filter, desc, sizeof(desc));
    if (c->nclasses > 1)
        qsort(c->classes, c->nclasses, sizeof(*c->classes), cmp_class);
    if (c->rp->opt.json) {
        json_t *tot = json_object(), *cls = json_object(), *st = json_object();
        char *s;
        for (size_t i = 0; i < c->nclasses; i++)
            json_object_set_new(cls, c->classes[i].cls, json_integer(c->classes[i].n));
        for (int a = 0; a <= FERRY_DLQ_REFUSE_TOPIC; a++)
            json_object_set_new(st, ferry_dlq_action_name((ferry_dlq_action)a),
                                json_integer(c->by_action[a]));
        if (c->unknown)
            json_object_set_new(st, "unknown", json_integer(c->unknown));
        json_object_set_new(tot, "records", json_integer(c->total));
        json_object_set_new(tot, "by_error_class", cls);
        json_object_set_new(tot, "by_status", st);
        s = json_dumps(tot, JSON_COMPACT);
        printf("\n  ],\n  \"topic_exists\": %s,\n  \"totals\": %s\n}\n",
               exists ? "true" : "false", s ? s : "{}");
        free(s);
        json_decref(tot);
        return;
    }
    if (c->nrows)
        printf("\n");
    printf("%" PRId64 " record%s in %s (%s)", c->total, c->total == 1 ? "" : "s",
           c->rp->dlq_topic, desc);
    for (int a = 0; a <= FERRY_DLQ_REFUSE_TOPIC; a++) {
        if (!c->by_action[a])
            continue;
        printf("%s%" PRId64 " %s", first ? ": " : ", ", c->by_action[a],
               ferry_dlq_action_name((ferry_dlq_action)a));
        first = 0;
    }
    if (c->unknown)
        printf("%s%" PRId64 " status unknown (ledger unreadable)", first ? ": " : ", ",
               c->unknown);
    printf("\n");
    if (!exists)
        printf("(topic %s does not exist yet: nothing was dead-lettered)\n", c->rp->dlq_topic);
    for (size_t i = 0; i < c->nclasses; i++)
        printf("  %6" PRId64 "  %s\n", c->classes[i].n, c->classes[i].cls);
}

int replayer_list(replayer *rp)
{
    list_ctx c;
    replayer_range *ranges = NULL;
    size_t n = 0;
    int exists = 0, rc = FERRY_EXIT_FAILURE;
    char errstr[512];

    memset(&c, 0, sizeof(c));
    c.rp = rp;
    c.json_first = 1;
    if (!(c.batch = calloc(REPLAYER_LEDGER_BATCH, sizeof(*c.batch)))) {
        fprintf(stderr, "ferry-dlq-replayer: out of memory\n");
        return FERRY_EXIT_FAILURE;
    }
    if (replayer_topic_ranges(rp->consumer, rp->dlq_topic, &ranges, &n, &exists, errstr,
                              sizeof(errstr)) != 0) {
        fprintf(stderr, "ferry-dlq-replayer: %s\n", errstr);
        goto out;
    }
    if (rp->opt.json) {
        json_t *t = replayer_json_str(rp->dlq_topic);
        char *ts = json_dumps(t, JSON_ENCODE_ANY);
        printf("{\n  \"topic\": %s,\n  \"records\": [", ts ? ts : "null");
        free(ts);
        json_decref(t);
    }
    for (size_t i = 0; i < n; i++) {
        if (rp->opt.filter.partition >= 0 && ranges[i].partition != rp->opt.filter.partition)
            continue;
        if (replayer_scan_range(rp->consumer, rp->dlq_topic, &ranges[i], on_message, &c, errstr,
                                sizeof(errstr)) != 0) {
            fprintf(stderr, "%sferry-dlq-replayer: %s\n", rp->opt.json ? "\n" : "", errstr);
            goto out;
        }
    }
    if (flush(&c) != 0)
        goto out;
    if (!rp->opt.json)
        print_table(&c);
    print_totals(&c, exists);
    rc = FERRY_EXIT_OK;
out:
    fflush(stdout);
    free(ranges);
    free(c.batch);
    free(c.rows);
    free(c.classes);
    return rc;
}
