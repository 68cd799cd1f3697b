/* The replay decision, the Redis ledger's keys and values, the replayed event's headers
 * and the terminal cell cut (lib/ferry_dlq.c). */
#include <stdint.h>

#include "ferry_dlq.h"
#include "ferry_test.h"

static ferry_dlq_record rec(const char *topic, int64_t count)
{
    ferry_dlq_record r;
    memset(&r, 0, sizeof(r));
    snprintf(r.dataset, sizeof(r.dataset), "sales.orders");
    snprintf(r.original_topic, sizeof(r.original_topic), "%s", topic);
    r.replay_count = count;
    return r;
}

static void test_keys(void)
{
    char buf[512];
    CHECK_INT(ferry_dlq_ledger_key(buf, sizeof(buf), "ferry.dataset.onboard.dlq", 3, 1234), 0);
    CHECK_STR(buf, "ferry:replay:{ferry.dataset.onboard.dlq}:3:1234");
    CHECK_INT(ferry_dlq_lock_key(buf, sizeof(buf), "t_1-x"), 0);
    CHECK_STR(buf, "ferry:replay:{t_1-x}:lock");
    /* A name that would escape the hash tag, or is no Kafka topic, is refused. */
    CHECK_INT(ferry_dlq_ledger_key(buf, sizeof(buf), "a}b", 0, 0), -1);
    CHECK_INT(ferry_dlq_ledger_key(buf, sizeof(buf), "", 0, 0), -1);
    CHECK_INT(ferry_dlq_ledger_key(buf, sizeof(buf), "a b", 0, 0), -1);
    CHECK_INT(ferry_dlq_ledger_key(buf, sizeof(buf), "t", -1, 0), -1);
    CHECK_INT(ferry_dlq_ledger_key(buf, 10, "topic", 1, 1), -1); /* too small */
    CHECK_INT(ferry_dlq_lock_key(buf, sizeof(buf), "a{b"), -1);
}

static void test_ledger_round_trip(void)
{
    ferry_dlq_ledger l, p;
    char buf[1024];

    memset(&l, 0, sizeof(l));
    l.status = FERRY_DLQ_LEDGER_IN_PROGRESS;
    snprintf(l.run, sizeof(l.run), "58d0302c-cac6-49a0-af32-ef5602c5d8fe");
    l.fp = 0x0069d95939572237ULL;
    l.at_ms = 1795657380150LL;
    l.count = 2;
    CHECK_INT(ferry_dlq_ledger_format(&l, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "in-progress run=58d0302c-cac6-49a0-af32-ef5602c5d8fe fp=0069d95939572237 "
                   "at=1795657380150 count=2");
    CHECK_INT(ferry_dlq_ledger_parse(buf, &p), 0);
    CHECK_INT(p.status, FERRY_DLQ_LEDGER_IN_PROGRESS);
    CHECK_STR(p.run, l.run);
    CHECK(p.fp == l.fp);
    CHECK_INT(p.at_ms, l.at_ms);
    CHECK_INT(p.count, 2);

    l.status = FERRY_DLQ_LEDGER_DONE;
    snprintf(l.topic, sizeof(l.topic), "ferry.dataset.onboard");
    l.partition = 7;
    l.offset = 99;
    CHECK_INT(ferry_dlq_ledger_format(&l, buf, sizeof(buf)), 0);
    CHECK_INT(ferry_dlq_ledger_parse(buf, &p), 0);
    CHECK_INT(p.status, FERRY_DLQ_LEDGER_DONE);
    CHECK_STR(p.topic, "ferry.dataset.onboard");
    CHECK_INT(p.partition, 7);
    CHECK_INT(p.offset, 99);
    CHECK_INT(ferry_dlq_ledger_format(&l, buf, 20), -1);

    /* Fields a newer version adds are ignored. */
    CHECK_INT(ferry_dlq_ledger_parse("done run=r fp=1 at=2 count=1 to=t/0/5 by=me", &p), 0);
    CHECK_INT(p.offset, 5);
}

static void test_ledger_refuses_junk(void)
{
    ferry_dlq_ledger p;
    const char *junk[] = {"",
                          "done",
                          "done run=r at=1 count=1 to=t/0/1", /* no fp */
                          "done run=r fp=1 at=1 count=1",     /* no to */
                          "done run=r fp=xyz at=1 count=1 to=t/0/1",
                          "done run=r fp=1 at=1 count=1 to=t/0",
                          "done run=r fp=1 at=1 count=1 to=/0/1",
                          "done run=r fp=1 at=1 count=1 to=t/-1/1",
                          "done run=r fp=1 at=x count=1 to=t/0/1",
                          "maybe run=r fp=1",
                          "in-progress fp",
                          NULL};
    for (int i = 0; junk[i]; i++) {
        int rc = ferry_dlq_ledger_parse(junk[i], &p);
        if (rc != -1 || p.status != FERRY_DLQ_LEDGER_NONE)
            fprintf(stderr, "  accepted \"%s\"\n", junk[i]);
        CHECK_INT(rc, -1);
        CHECK_INT(p.status, FERRY_DLQ_LEDGER_NONE);
    }
}

static void test_decide(void)
{
    const char *onboard = "ferry.dataset.onboard";
    ferry_dlq_record r = rec(onboard, 0);
    ferry_dlq_ledger l;
    memset(&l, 0, sizeof(l));

    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 0, NULL, onboard), FERRY_DLQ_REPLAY);
    /* the loop guard */
    r.replay_count = 2;
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 0, NULL, onboard), FERRY_DLQ_REPLAY);
    r.replay_count = 3;
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 0, NULL, onboard), FERRY_DLQ_REFUSE_MAX_COUNT);
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 1, NULL, onboard), FERRY_DLQ_REPLAY);
    r.replay_count = 9;
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 0, NULL, onboard), FERRY_DLQ_REFUSE_MAX_COUNT);
    r.replay_count = -1; /* unreadable counts as at the max */
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 0, NULL, onboard), FERRY_DLQ_REFUSE_MAX_COUNT);
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 1, NULL, onboard), FERRY_DLQ_REPLAY);
    r.replay_count = 0;
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 0, 0, NULL, onboard), FERRY_DLQ_REFUSE_MAX_COUNT);

    /* the topic allow-list */
    r = rec("payments", 0);
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 0, NULL, onboard), FERRY_DLQ_REFUSE_TOPIC);
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 1, "", onboard), FERRY_DLQ_REFUSE_TOPIC);
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 0, "a, payments ,b", onboard), FERRY_DLQ_REPLAY);
    r = rec(onboard, 0);
    /* an explicit list replaces the default */
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 0, "payments", onboard), FERRY_DLQ_REFUSE_TOPIC);
    r = rec("", 0);
    CHECK_INT(ferry_dlq_decide(&r, NULL, 1, 3, 1, NULL, onboard), FERRY_DLQ_REFUSE_TOPIC);

    /* the ledger, only for the same fingerprint */
    r = rec(onboard, 3);
    l.status = FERRY_DLQ_LEDGER_DONE;
    l.fp = 42;
    CHECK_INT(ferry_dlq_decide(&r, &l, 42, 3, 0, NULL, onboard), FERRY_DLQ_SKIP_REPLAYED);
    CHECK_INT(ferry_dlq_decide(&r, &l, 42, 3, 1, NULL, onboard), FERRY_DLQ_SKIP_REPLAYED);
    CHECK_INT(ferry_dlq_decide(&r, &l, 43, 3, 1, NULL, onboard), FERRY_DLQ_REPLAY);
    l.status = FERRY_DLQ_LEDGER_IN_PROGRESS;
    CHECK_INT(ferry_dlq_decide(&r, &l, 42, 3, 0, NULL, onboard), FERRY_DLQ_RECOVER);
    l.status = FERRY_DLQ_LEDGER_NONE;
    CHECK_INT(ferry_dlq_decide(&r, &l, 42, 3, 0, NULL, onboard), FERRY_DLQ_REFUSE_MAX_COUNT);
}

static void test_topic_list(void)
{
    CHECK(ferry_dlq_topic_in_list("a,b,c", "b"));
    CHECK(ferry_dlq_topic_in_list(" a , b ", "a"));
    CHECK(!ferry_dlq_topic_in_list("ab,c", "a"));
    CHECK(!ferry_dlq_topic_in_list("a,,b", ""));
    CHECK(!ferry_dlq_topic_in_list("", "a"));
    CHECK(!ferry_dlq_topic_in_list(NULL, "a"));
}

static void test_fingerprint(void)
{
    uint64_t a = ferry_dlq_fingerprint("k", 1, "value", 5, 1000);
    CHECK(a == ferry_dlq_fingerprint("k", 1, "value", 5, 1000));
    CHECK(a != ferry_dlq_fingerprint("k", 1, "value", 5, 1001)); /* another failure */
    CHECK(a != ferry_dlq_fingerprint("k", 1, "valuf", 5, 1000));
    CHECK(a != ferry_dlq_fingerprint("kv", 2, "alue", 4, 1000)); /* boundaries count */
    CHECK(ferry_dlq_fingerprint(NULL, 0, "v", 1, 1) != ferry_dlq_fingerprint("", 0, "v", 1, 1));
}

static const char *hget(const rd_kafka_headers_t *h, const char *name, char *buf, size_t n)
{
    const void *v;
    size_t len;
    if (rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    snprintf(buf, n, "%.*s", (int)len, (const char *)v);
    return buf;
}

static void test_replay_headers(void)
{
    rd_kafka_headers_t *dlq = rd_kafka_headers_new(16), *h;
    char buf[128];

    rd_kafka_header_add(dlq, "traceparent", -1, "00-abc", -1);
    for (int i = 0; ferry_dlq_own_headers[i]; i++)
        rd_kafka_header_add(dlq, ferry_dlq_own_headers[i], -1, "x", -1);
    rd_kafka_header_add(dlq, FERRY_DLQ_H_REPLAY_COUNT, -1, "2", -1); /* two copies */
    rd_kafka_header_add(dlq, FERRY_DLQ_H_REPLAYED_FROM, -1, "old/0/0", -1);
    h = ferry_dlq_replay_headers(dlq, 3, "dlq/1/7", 5000);
    CHECK_STR(hget(h, "traceparent", buf, sizeof(buf)), "00-abc"); /* the event's own stay */
    CHECK_STR(hget(h, FERRY_DLQ_H_REPLAY_COUNT, buf, sizeof(buf)), "3");
    CHECK_STR(hget(h, FERRY_DLQ_H_REPLAYED_FROM, buf, sizeof(buf)), "dlq/1/7");
    CHECK_STR(hget(h, FERRY_DLQ_H_REPLAYED_AT, buf, sizeof(buf)), "5000");
    CHECK(hget(h, FERRY_DLQ_H_ERROR_CLASS, buf, sizeof(buf)) == NULL);
    CHECK(hget(h, FERRY_DLQ_H_DLT_ORIGINAL_TOPIC, buf, sizeof(buf)) == NULL);
    CHECK_INT(rd_kafka_header_cnt(h), 4); /* nothing else, no duplicates */
    rd_kafka_headers_destroy(h);
    /* the DLQ's own headers are not touched */
    CHECK_STR(hget(dlq, FERRY_DLQ_H_ERROR_CLASS, buf, sizeof(buf)), "x");
    rd_kafka_headers_destroy(dlq);
    h = ferry_dlq_replay_headers(NULL, 1, "d/0/0", 1);
    CHECK_INT(rd_kafka_header_cnt(h), 3);
    rd_kafka_headers_destroy(h);
}

static void test_cell(void)
{
    char out[64];
    CHECK_INT(ferry_dlq_cell("hello", 0, out, sizeof(out)), 5);
    CHECK_STR(out, "hello");
    CHECK_INT(ferry_dlq_cell("hello world", 8, out, sizeof(out)), 8);
    CHECK_STR(out, "hello...");
    CHECK_INT(ferry_dlq_cell("hello", 5, out, sizeof(out)), 5);
    CHECK_STR(out, "hello");
    CHECK_INT(ferry_dlq_cell("a\nb\tc\x1b[31m", 0, out, sizeof(out)), 10);
    CHECK_STR(out, "a b c [31m"); /* no escape sequences reach the terminal */
    /* UTF-8 counts characters and is never cut inside one */
    CHECK_INT(ferry_dlq_cell("\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 6, out,
                             sizeof(out)),
              6);
    CHECK_STR(out, "\xc3\xa9t\xc3\xa9...");
    CHECK_INT(ferry_dlq_cell("\xff\xfe ok \xc3", 0, out, sizeof(out)), 7);
    CHECK_STR(out, "?? ok ?");
    CHECK_INT(ferry_dlq_cell("\xed\xa0\x80", 0, out, sizeof(out)), 3); /* surrogate */
    CHECK_STR(out, "???");
    CHECK_INT(ferry_dlq_cell("abcdef", 2, out, sizeof(out)), 2);
    CHECK_STR(out, "..");
    /* the output buffer bounds everything */
    CHECK(ferry_dlq_cell("abcdefghij", 0, out, 4) <= 3);
    CHECK_STR(out, "abc");
}

int main(void)
{
    RUN(test_keys);
    RUN(test_ledger_round_trip);
    RUN(test_ledger_refuses_junk);
    RUN(test_decide);
    RUN(test_topic_list);
    RUN(test_fingerprint);
    RUN(test_replay_headers);
    RUN(test_cell);
    return TEST_EXIT();
}
