/* Event validation: the rules that keep hostile input out of Redis keys, S3 keys and logs. */
#include <stdlib.h>
#include <string.h>

#include "ferry_test.h"
#include "ferry_validate.h"

static ferry_onboard good(void)
{
    ferry_onboard ev = {0};
    ev.event_id = strdup("0b8e4c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b");
    ev.dataset = strdup("sales.orders_2024-v1");
    ev.source_uri = strdup("s3://src-bucket/data/");
    ev.target_uri = strdup("s3://dst-bucket/copy/");
    ev.requested_by = strdup("alice");
    ev.verify = 1;
    return ev;
}

static void replace(char **field, const char *v)
{
    free(*field);
    *field = v ? strdup(v) : NULL;
}

static ferry_rc check_with(char **(*field)(ferry_onboard *), const char *value)
{
    ferry_onboard ev = good();
    ferry_error err = {0};
    ferry_rc rc;
    replace(field(&ev), value);
    rc = ferry_onboard_validate(&ev, &err);
    if (rc != FERRY_OK) {
        CHECK(err.msg[0] != '\0');
        CHECK_STR(err.cls, FERRY_EC_INVALID_SPEC);
    }
    ferry_onboard_clear(&ev);
    return rc;
}

static char **f_dataset(ferry_onboard *e) { return &e->dataset; }
static char **f_event(ferry_onboard *e) { return &e->event_id; }
static char **f_src(ferry_onboard *e) { return &e->source_uri; }
static char **f_dst(ferry_onboard *e) { return &e->target_uri; }
static char **f_by(ferry_onboard *e) { return &e->requested_by; }

static void test_good(void)
{
    CHECK_INT(check_with(f_dataset, "sales.orders_2024-v1"), FERRY_OK);
    CHECK_INT(check_with(f_dataset, "0"), FERRY_OK);
}

static void test_hostile_names(void)
{
    char longname[10001];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK_INT(check_with(f_dataset, "../x"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_dataset, longname), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_dataset, "a\nb"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_dataset, "a\x01"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_dataset, "a}{b"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_dataset, "Upper"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_dataset, ""), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_dataset, NULL), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_dataset, "-lead"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_dataset, "<script>"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_by, "bob\r\nINJECTED"), FERRY_ERR_PERMANENT);
}

static void test_ids_and_uris(void)
{
    CHECK_INT(check_with(f_event, "not-a-uuid"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_event, NULL), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_src, "http://x/y"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_src, "s3://UPPER/x"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_src, "s3://bucket/../etc"), FERRY_ERR_PERMANENT);
    /* Overlap depends on the endpoints: the worker decides (see worker_copy.c). */
    CHECK_INT(check_with(f_dst, "s3://src-bucket/data/inside/"), FERRY_OK);
    CHECK_INT(check_with(f_dst, "s3://src-bucket/other/"), FERRY_OK);
}

int main(void)
{
    RUN(test_good);
    RUN(test_hostile_names);
    RUN(test_ids_and_uris);
    return TEST_EXIT();
}
