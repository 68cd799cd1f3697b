/* The replayer's record parsing and selection (lib/ferry_dlq.c): which DLQ records
 * --dataset, --error-class, --since/--until and --partition pick. */
#include <stdint.h>

#include "ferry_dlq.h"
#include "ferry_test.h"

/* A DLQ record as the worker writes it. */
static rd_kafka_headers_t *worker_headers(const char *cls, const char *failed_at,
                                          const char *replay_count)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(16);
    rd_kafka_header_add(h, "traceparent", -1, "00-abc-def-01", -1); /* the event's own */
    rd_kafka_header_add(h, FERRY_DLQ_H_ERROR_CLASS, -1, cls, -1);
    rd_kafka_header_add(h, FERRY_DLQ_H_ERROR_MESSAGE, -1, "validation: source missing", -1);
    rd_kafka_header_add(h, FERRY_DLQ_H_ORIGINAL_TOPIC, -1, "ferry.dataset.onboard", -1);
    rd_kafka_header_add(h, FERRY_DLQ_H_ORIGINAL_PARTITION, -1, "3", -1);
    rd_kafka_header_add(h, FERRY_DLQ_H_ORIGINAL_OFFSET, -1, "42", -1);
    rd_kafka_header_add(h, FERRY_DLQ_H_ATTEMPTS, -1, "6", -1);
    if (failed_at)
        rd_kafka_header_add(h, FERRY_DLQ_H_FAILED_AT, -1, failed_at, -1);
    rd_kafka_header_add(h, FERRY_DLQ_H_WORKER, -1, "w-1", -1);
    if (replay_count)
        rd_kafka_header_add(h, FERRY_DLQ_H_REPLAY_COUNT, -1, replay_count, -1);
    return h;
}

static void test_parse_worker_record(void)
{
    rd_kafka_headers_t *h = worker_headers("s3-not-found", "1795656996807", "2");
    ferry_dlq_record r;
    ferry_dlq_record_parse(h, "sales.orders", 12, 1, 7, 1795656996900, &r);
    CHECK_INT(r.partition, 1);
    CHECK_INT(r.offset, 7);
    CHECK_STR(r.dataset, "sales.orders");
    CHECK_STR(r.error_class, "s3-not-found");
    CHECK_STR(r.error_message, "validation: source missing");
    CHECK_STR(r.original_topic, "ferry.dataset.onboard");
    CHECK_INT(r.original_partition, 3);
    CHECK_INT(r.original_offset, 42);
    CHECK_INT(r.attempts, 6);
    CHECK_INT(r.failed_at_ms, 1795656996807LL); /* the header, not the Kafka timestamp */
    CHECK_STR(r.worker, "w-1");
    CHECK_INT(r.replay_count, 2);
    rd_kafka_headers_destroy(h);
}

static void test_parse_fallbacks(void)
{
    ferry_dlq_record r;
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);

    /* Nothing at all: a record someone else dead-lettered. */
    ferry_dlq_record_parse(NULL, NULL, 0, 0, 1, -1, &r);
    CHECK_STR(r.dataset, "");
    CHECK_STR(r.original_topic, "");
    CHECK_INT(r.failed_at_ms, -1);
    CHECK_INT(r.replay_count, 0);
    CHECK_INT(r.attempts, -1);

    /* Spring's kafka_dlt-* names only; failed-at from the Kafka timestamp. */
    rd_kafka_header_add(h, FERRY_DLQ_H_DLT_ORIGINAL_TOPIC, -1, "orders", -1);
    rd_kafka_header_add(h, FERRY_DLQ_H_DLT_ORIGINAL_PARTITION, -1, "5", -1);
    rd_kafka_header_add(h, FERRY_DLQ_H_DLT_EXCEPTION_MESSAGE, -1, "boom", -1);
    ferry_dlq_record_parse(h, "k", 1, 0, 1, 1000, &r);
    CHECK_STR(r.original_topic, "orders");
    CHECK_INT(r.original_partition, 5);
    CHECK_STR(r.error_message, "boom");
    CHECK_INT(r.failed_at_ms, 1000);
    rd_kafka_headers_destroy(h);

    /* A replay count that is not a number must not read as 0 (the loop guard). */
    h = worker_headers("x", "1", "three");
    ferry_dlq_record_parse(h, "k", 1, 0, 1, 1000, &r);
    CHECK_INT(r.replay_count, -1);
    rd_kafka_headers_destroy(h);
    h = worker_headers("x", "1", "-2");
    ferry_dlq_record_parse(h, "k", 1, 0, 1, 1000, &r);
    CHECK_INT(r.replay_count, -1);
    rd_kafka_headers_destroy(h);
    /* A key longer than the field is cut, NUL-terminated. */
    {
        char big[400];
        memset(big, 'a', sizeof(big));
        ferry_dlq_record_parse(NULL, big, sizeof(big), 0, 0, 0, &r);
        CHECK_INT(strlen(r.dataset), sizeof(r.dataset) - 1);
    }
}

static ferry_dlq_record rec(const char *ds, const char *cls, int32_t p, int64_t failed_at)
{
    ferry_dlq_record r;
    memset(&r, 0, sizeof(r));
    snprintf(r.dataset, sizeof(r.dataset), "%s", ds);
    snprintf(r.error_class, sizeof(r.error_class), "%s", cls);
    r.partition = p;
    r.failed_at_ms = failed_at;
    return r;
}

static void test_filter_everything(void)
{
    ferry_dlq_filter f;
    ferry_dlq_record r = rec("a", "b", 0, -1);
    ferry_dlq_filter_init(&f);
    CHECK(ferry_dlq_filter_match(&f, &r));
}

static void test_filter_dataset_exact_and_glob(void)
{
    ferry_dlq_filter f;
    ferry_dlq_record a = rec("sales.orders", "s3-not-found", 0, 10);
    ferry_dlq_record b = rec("sales.returns", "s3-not-found", 0, 10);
    ferry_dlq_record c = rec("hr.people", "s3-not-found", 0, 10);
    ferry_dlq_record d = rec("sales.orders.v2", "s3-not-found", 0, 10);

    ferry_dlq_filter_init(&f);
    ferry_dlq_filter_add_dataset(&f, "sales.orders");
    CHECK(ferry_dlq_filter_match(&f, &a));
    CHECK(!ferry_dlq_filter_match(&f, &b));
    CHECK(!ferry_dlq_filter_match(&f, &d)); /* exact means exact, not a prefix */

    ferry_dlq_filter_init(&f);
    ferry_dlq_filter_add_dataset(&f, "sales.*");
    CHECK(ferry_dlq_filter_match(&f, &a));
    CHECK(ferry_dlq_filter_match(&f, &b));
    CHECK(ferry_dlq_filter_match(&f, &d));
    CHECK(!ferry_dlq_filter_match(&f, &c));

    ferry_dlq_filter_init(&f);
    ferry_dlq_filter_add_dataset(&f, "*.?eople");
    ferry_dlq_filter_add_dataset(&f, "sales.returns"); /* several: any may match */
    CHECK(!ferry_dlq_filter_match(&f, &a));
    CHECK(ferry_dlq_filter_match(&f, &b));
    CHECK(ferry_dlq_filter_match(&f, &c));

    ferry_dlq_filter_init(&f);
    ferry_dlq_filter_add_dataset(&f, "sales.[or]*");
    CHECK(ferry_dlq_filter_match(&f, &a));
    CHECK(ferry_dlq_filter_match(&f, &b));
    CHECK(!ferry_dlq_filter_match(&f, &c));
}

static void test_filter_fields_and(void)
{
    ferry_dlq_filter f;
    ferry_dlq_record a = rec("sales.orders", "s3-not-found", 1, 10);
    ferry_dlq_record b = rec("sales.orders", "validation", 1, 10);
    ferry_dlq_record c = rec("sales.orders", "s3-not-found", 2, 10);

    ferry_dlq_filter_init(&f);
    ferry_dlq_filter_add_dataset(&f, "sales.*");
    ferry_dlq_filter_add_error_class(&f, "s3-*");
    CHECK(ferry_dlq_filter_match(&f, &a));
    CHECK(!ferry_dlq_filter_match(&f, &b));
    f.partition = 1;
    CHECK(ferry_dlq_filter_match(&f, &a));
    CHECK(!ferry_dlq_filter_match(&f, &c));
    f.partition = 0;
    CHECK(!ferry_dlq_filter_match(&f, &a)); /* partition 0 is a real filter, not "any" */
}

static void test_filter_time_window(void)
{
    ferry_dlq_filter f;
    ferry_dlq_record before = rec("d", "c", 0, 999), at = rec("d", "c", 0, 1000),
                     in = rec("d", "c", 0, 1500), end = rec("d", "c", 0, 2000),
                     none = rec("d", "c", 0, -1);

    ferry_dlq_filter_init(&f);
    f.since_ms = 1000;
    f.until_ms = 2000;
    CHECK(!ferry_dlq_filter_match(&f, &before));
    CHECK(ferry_dlq_filter_match(&f, &at)); /* since is inclusive */
    CHECK(ferry_dlq_filter_match(&f, &in));
    CHECK(!ferry_dlq_filter_match(&f, &end));  /* until is exclusive: windows do not overlap */
    CHECK(!ferry_dlq_filter_match(&f, &none)); /* unknown time never matches a bound */
    ferry_dlq_filter_init(&f);
    f.since_ms = 1000;
    CHECK(ferry_dlq_filter_match(&f, &end));
    CHECK(!ferry_dlq_filter_match(&f, &before));
}

static void test_filter_limits(void)
{
    ferry_dlq_filter f;
    ferry_dlq_filter_init(&f);
    for (int i = 0; i < FERRY_DLQ_FILTER_MAX; i++)
        CHECK_INT(ferry_dlq_filter_add_dataset(&f, "x"), 0);
    CHECK_INT(ferry_dlq_filter_add_dataset(&f, "x"), -1);
}

static void test_position(void)
{
    int32_t p = -1;
    int64_t o = -1;
    CHECK_INT(ferry_dlq_parse_position("2:17", &p, &o), 0);
    CHECK_INT(p, 2);
    CHECK_INT(o, 17);
    CHECK_INT(ferry_dlq_parse_position("0:0", &p, &o), 0);
    CHECK_INT(ferry_dlq_parse_position("2", &p, &o), -1);
    CHECK_INT(ferry_dlq_parse_position(":1", &p, &o), -1);
    CHECK_INT(ferry_dlq_parse_position("1:", &p, &o), -1);
    CHECK_INT(ferry_dlq_parse_position("-1:3", &p, &o), -1);
    CHECK_INT(ferry_dlq_parse_position("1:-3", &p, &o), -1);
    CHECK_INT(ferry_dlq_parse_position("1:3x", &p, &o), -1);
    CHECK_INT(ferry_dlq_parse_position("99999999999:3", &p, &o), -1);
}

int main(void)
{
    RUN(test_parse_worker_record);
    RUN(test_parse_fallbacks);
    RUN(test_filter_everything);
    RUN(test_filter_dataset_exact_and_glob);
    RUN(test_filter_fields_and);
    RUN(test_filter_time_window);
    RUN(test_filter_limits);
    RUN(test_position);
    return TEST_EXIT();
}
