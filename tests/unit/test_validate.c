/* Event validation: the rules that keep hostile input out of Redis keys, S3 keys and logs. */
#include <stdio.h>
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
static char **f_inv(ferry_onboard *e) { return &e->source_inventory; }

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

/* source_inventory: optional, and then one object on S3 (the manifest), never a prefix. */
static void test_inventory(void)
{
    char long_key[1100];
    ferry_onboard ev = good();
    ferry_error err = {0};

    CHECK_INT(check_with(f_inv, NULL), FERRY_OK);
    CHECK_INT(check_with(f_inv, "s3://inventory-bucket/src-bucket/all/2026-01-01T01-00Z/"
                                "manifest.json"),
              FERRY_OK);
    CHECK_INT(check_with(f_inv, "s3://src-bucket/manifest.json"), FERRY_OK);
    CHECK_INT(check_with(f_inv, ""), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_inv, "s3://inventory-bucket"), FERRY_ERR_PERMANENT); /* no key */
    CHECK_INT(check_with(f_inv, "s3://inventory-bucket/"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_inv, "s3://inventory-bucket/src/all/"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_inv, "https://inventory-bucket/manifest.json"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_inv, "s3://Inventory/manifest.json"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_inv, "s3://inventory-bucket/a\nb/manifest.json"),
              FERRY_ERR_PERMANENT);
    CHECK_INT(check_with(f_inv, "s3://inventory-bucket/../manifest.json"), FERRY_ERR_PERMANENT);
    snprintf(long_key, sizeof(long_key), "s3://inventory-bucket/%01070d", 7); /* > 1024 */
    CHECK_INT(check_with(f_inv, long_key), FERRY_ERR_PERMANENT);

    /* The message names the field, for the key and for the URI. */
    ev.source_inventory = strdup("s3://inventory-bucket/src/");
    CHECK_INT(ferry_onboard_validate(&ev, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "inventory") != NULL && strstr(err.msg, "prefix") != NULL);
    replace(&ev.source_inventory, "ftp://x/manifest.json");
    CHECK_INT(ferry_onboard_validate(&ev, &err), FERRY_ERR_PERMANENT);
    CHECK(strncmp(err.msg, "inventory: ", 11) == 0);
    ferry_onboard_clear(&ev);
}

/* Chunk fields: a closed chunk (index < count), an open one (count -1: published while the
 * dataset was still listed, so it must have an end key), and inconsistent ones. */
static ferry_rc check_chunk(int64_t index, int64_t count, int parent, const char *after,
                            const char *end)
{
    ferry_onboard ev = good();
    ferry_error err = {0};
    ferry_rc rc;
    ev.chunk_index = index;
    ev.chunk_count = count;
    if (parent)
        ev.chunk_parent_event_id = strdup("1c9f5d2b-3a4e-4f60-9bac-1d2e3f4a5b6c");
    ev.chunk_start_after = after ? strdup(after) : NULL;
    ev.chunk_end_key = end ? strdup(end) : NULL;
    rc = ferry_onboard_validate(&ev, &err);
    ferry_onboard_clear(&ev);
    return rc;
}

static void test_chunk_fields(void)
{
    CHECK_INT(check_chunk(0, 0, 0, NULL, NULL), FERRY_OK);     /* whole dataset */
    CHECK_INT(check_chunk(2, 3, 1, "data/a", NULL), FERRY_OK); /* last, open-ended */
    CHECK_INT(check_chunk(0, 3, 1, NULL, "data/a"), FERRY_OK);
    CHECK_INT(check_chunk(3, 3, 1, "data/a", NULL), FERRY_ERR_PERMANENT); /* index >= count */
    CHECK_INT(check_chunk(1, 3, 0, "data/a", "data/b"), FERRY_ERR_PERMANENT); /* no parent */
    CHECK_INT(check_chunk(1, 0, 0, NULL, NULL), FERRY_ERR_PERMANENT); /* index, no count */
    CHECK_INT(check_chunk(0, FERRY_CHUNK_COUNT_OPEN, 1, NULL, "data/a"), FERRY_OK);
    CHECK_INT(check_chunk(40, FERRY_CHUNK_COUNT_OPEN, 1, "data/a", "data/b"), FERRY_OK);
    /* an open chunk without an end would silently take every later key */
    CHECK_INT(check_chunk(4, FERRY_CHUNK_COUNT_OPEN, 1, "data/a", NULL), FERRY_ERR_PERMANENT);
    CHECK_INT(check_chunk(-1, FERRY_CHUNK_COUNT_OPEN, 1, NULL, "data/a"), FERRY_ERR_PERMANENT);
    CHECK_INT(check_chunk(0, -2, 1, NULL, "data/a"), FERRY_ERR_PERMANENT);
}

int main(void)
{
    RUN(test_good);
    RUN(test_hostile_names);
    RUN(test_ids_and_uris);
    RUN(test_chunk_fields);
    RUN(test_inventory);
    return TEST_EXIT();
}
