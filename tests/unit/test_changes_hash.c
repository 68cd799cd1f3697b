/* Change detection, the pure part: what the spec hash covers, and the deterministic event
 * ids that make a re-publish after a crash carry the same id. (The Redis part is in
 * tests/integration/test_changes.c.) */
#include <stdlib.h>
#include <string.h>

#include "ferry_changes.h"
#include "ferry_test.h"
#include "ferry_validate.h"

static ferry_onboard spec(void)
{
    ferry_onboard ev = {0};
    ev.dataset = strdup("sales-orders");
    ev.source_uri = strdup("s3://legacy/sales/");
    ev.target_uri = strdup("s3://lake/sales/");
    ev.verify = 1;
    return ev;
}

static void test_spec_hash(void)
{
    char base[17], h[17];
    ferry_onboard a = spec(), b;

    ferry_changes_spec_hash(&a, base);
    CHECK_INT(strlen(base), 16);

    /* Not in the hash: who asked, when, the catalog's etag and ref, the event id. */
    b = spec();
    b.requested_by = strdup("backstage:someone-else");
    b.requested_at_ms = 12345;
    b.catalog_etag = strdup("etag-after-status-write-back");
    b.catalog_ref = strdup("component:default/x");
    b.event_id = strdup("0b8e4c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b");
    ferry_changes_spec_hash(&b, h);
    CHECK_STR(h, base);
    ferry_onboard_clear(&b);

    /* In the hash: everything that changes what is copied where. */
    b = spec();
    free(b.target_uri);
    b.target_uri = strdup("s3://lake/sales-v2/");
    ferry_changes_spec_hash(&b, h);
    CHECK(strcmp(h, base) != 0);
    ferry_onboard_clear(&b);
    b = spec();
    free(b.dataset);
    b.dataset = strdup("sales-orders2");
    ferry_changes_spec_hash(&b, h);
    CHECK(strcmp(h, base) != 0);
    ferry_onboard_clear(&b);
    b = spec();
    b.verify = 0;
    ferry_changes_spec_hash(&b, h);
    CHECK(strcmp(h, base) != 0);
    ferry_onboard_clear(&b);
    b = spec();
    b.overwrite = FERRY_OVERWRITE_NEVER;
    ferry_changes_spec_hash(&b, h);
    CHECK(strcmp(h, base) != 0);
    ferry_onboard_clear(&b);
    b = spec(); /* a new inventory is not: S3 writes one a day under a new key */
    b.source_inventory = strdup("s3://inventory/legacy/all/2026-12-02T01-00Z/manifest.json");
    ferry_changes_spec_hash(&b, h);
    CHECK_STR(h, base);
    ferry_onboard_clear(&b);
    ferry_onboard_clear(&a);
}

static void test_event_id(void)
{
    char a[37], b[37];

    ferry_changes_event_id("backstage", "component:default/x", "0123456789abcdef", 1, a);
    ferry_changes_event_id("backstage", "component:default/x", "0123456789abcdef", 1, b);
    CHECK_STR(a, b);
    CHECK(ferry_uuid_valid(a));
    CHECK(a[14] == '8');                  /* version 8 */
    CHECK(strchr("89ab", a[19]) != NULL); /* RFC 9562 variant */
    ferry_changes_event_id("backstage", "component:default/x", "0123456789abcdef", 2, b);
    CHECK(strcmp(a, b) != 0);
    ferry_changes_event_id("registry", "component:default/x", "0123456789abcdef", 1, b);
    CHECK(strcmp(a, b) != 0);
    ferry_changes_event_id("backstage", "component:default/y", "0123456789abcdef", 1, b);
    CHECK(strcmp(a, b) != 0);
    ferry_changes_event_id("backstage", "component:default/x", "0123456789abcdee", 1, b);
    CHECK(strcmp(a, b) != 0);
    /* Field boundaries matter: "ab"+"c" is not "a"+"bc". */
    ferry_changes_event_id("a", "bc", "0123456789abcdef", 1, a);
    ferry_changes_event_id("ab", "c", "0123456789abcdef", 1, b);
    CHECK(strcmp(a, b) != 0);
}

static void test_source_names(void)
{
    char errstr[128];
    ferry_changes *c;

    CHECK((c = ferry_changes_new("backstage", errstr, sizeof(errstr))) != NULL);
    ferry_changes_destroy(c);
    CHECK(ferry_changes_new("", errstr, sizeof(errstr)) == NULL);
    CHECK(ferry_changes_new("a}b", errstr, sizeof(errstr)) == NULL);
    CHECK(ferry_changes_new("Backstage", errstr, sizeof(errstr)) == NULL);
    CHECK(ferry_changes_new("0123456789012345678901234567890123", errstr, sizeof(errstr)) ==
          NULL);
}

int main(void)
{
    RUN(test_spec_hash);
    RUN(test_event_id);
    RUN(test_source_names);
    return TEST_EXIT();
}
