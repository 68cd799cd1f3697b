/* Backstage catalog client: the by-query page parser, the annotation -> spec mapping, and
 * the client's pagination and error classification against a local HTTP endpoint that
 * answers like the catalog (the real catalog is tested in the integration tests). */
#include <stdlib.h>
#include <string.h>

#include "ferry_backstage.h"
#include "ferry_http.h"
#include "ferry_test.h"

static const char *PAGE1 =
    "{\"items\":["
    "{\"kind\":\"Component\",\"metadata\":{\"namespace\":\"default\",\"name\":\"sales-orders\","
    "\"uid\":\"u-1\",\"etag\":\"e-1\",\"annotations\":{"
    "\"backstage.io/managed-by-location\":\"file:/x.yaml\","
    "\"ferry.io/source\":\"s3://legacy/sales/\",\"ferry.io/target\":\"s3://lake/sales/\","
    "\"ferry.io/status\":\"done\"}},\"spec\":{\"owner\":\"team-data\"}},"
    "{\"kind\":\"Component\",\"metadata\":{\"name\":\"no-uid\"}},"
    "{\"kind\":\"Component\",\"metadata\":{\"namespace\":\"Team-A\",\"name\":\"Plain\","
    "\"uid\":\"u-2\",\"etag\":\"e-2\"}}"
    "],\"totalItems\":3,\"pageInfo\":{\"nextCursor\":\"c2\"}}";

static void test_parse_page(void)
{
    ferry_backstage_page p;
    ferry_error err = {0};
    size_t skipped = 0;

    CHECK_INT(ferry_backstage_parse_page(PAGE1, strlen(PAGE1), &p, &skipped, &err), FERRY_OK);
    CHECK_INT(p.count, 2);
    CHECK_INT(skipped, 1);
    CHECK_INT(p.total_items, 3);
    CHECK_STR(p.next_cursor, "c2");
    if (p.count == 2) {
        CHECK_STR(p.items[0].ref, "component:default/sales-orders");
        CHECK_STR(p.items[0].uid, "u-1");
        CHECK_STR(p.items[0].etag, "e-1");
        CHECK_STR(p.items[0].owner, "team-data");
        CHECK_INT(p.items[0].n_ann, 3); /* only ferry.io/ annotations are kept */
        CHECK_STR(ferry_backstage_annotation(&p.items[0], "ferry.io/target"),
                  "s3://lake/sales/");
        CHECK(ferry_backstage_annotation(&p.items[0], "backstage.io/managed-by-location") ==
              NULL);
        CHECK_STR(p.items[1].ref, "component:Team-A/Plain"); /* kind lower-cased only */
        CHECK(p.items[1].owner == NULL && p.items[1].n_ann == 0);
    }
    ferry_backstage_page_clear(&p);

    const char *last = "{\"items\":[],\"totalItems\":0,\"pageInfo\":{}}";
    CHECK_INT(ferry_backstage_parse_page(last, strlen(last), &p, NULL, &err), FERRY_OK);
    CHECK(p.next_cursor == NULL && p.count == 0);
    ferry_backstage_page_clear(&p);

    static const char *bad[] = {"", "[]", "{\"items\":{}}", "<html>", "{\"items\":[1,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(ferry_backstage_parse_page(bad[i], strlen(bad[i]), &p, NULL, &err),
                  FERRY_ERR_PERMANENT);
        CHECK_STR(err.cls, FERRY_BACKSTAGE_EC);
    }
}

static ferry_backstage_entity entity(const char *const *kv)
{
    ferry_backstage_entity e = {0};
    e.ref = strdup("component:default/sales-orders");
    e.name = strdup("sales-orders");
    e.uid = strdup("u-1");
    e.etag = strdup("e-9");
    e.owner = strdup("team-data");
    for (size_t i = 0; kv[i]; i += 2) {
        e.ann = realloc(e.ann, (e.n_ann + 1) * sizeof(*e.ann));
        e.ann[e.n_ann].key = strdup(kv[i]);
        e.ann[e.n_ann].value = strdup(kv[i + 1]);
        e.n_ann++;
    }
    return e;
}

static void test_entity_spec(void)
{
    const char *full[] = {"ferry.io/source",
                          "s3://legacy/sales/",
                          "ferry.io/target",
                          "s3://lake/sales/",
                          "ferry.io/dataset",
                          "sales.orders",
                          "ferry.io/overwrite",
                          "never",
                          "ferry.io/verify",
                          "false",
                          "ferry.io/include",
                          " 2024/ , 2025/,,",
                          "ferry.io/exclude",
                          "tmp/",
                          "ferry.io/inventory",
                          "s3://inventory/legacy/all/2026-01-01T01-00Z/manifest.json",
                          "ferry.io/status",
                          "done",
                          NULL};
    ferry_backstage_entity e = entity(full);
    ferry_onboard ev = {0};
    ferry_error err = {0};

    CHECK_INT(ferry_backstage_entity_spec(&e, &ev, &err), FERRY_OK);
    CHECK_STR(ev.dataset, "sales.orders");
    CHECK_STR(ev.source_uri, "s3://legacy/sales/");
    CHECK_STR(ev.target_uri, "s3://lake/sales/");
    CHECK_INT(ev.overwrite, FERRY_OVERWRITE_NEVER);
    CHECK_INT(ev.verify, 0);
    CHECK_INT(ev.include_count, 2);
    if (ev.include_count == 2) {
        CHECK_STR(ev.include_prefixes[0], "2024/");
        CHECK_STR(ev.include_prefixes[1], "2025/");
    }
    CHECK_INT(ev.exclude_count, 1);
    CHECK_STR(ev.source_inventory, "s3://inventory/legacy/all/2026-01-01T01-00Z/manifest.json");
    CHECK_STR(ev.catalog_ref, "component:default/sales-orders");
    CHECK_STR(ev.catalog_etag, "e-9");
    CHECK_STR(ev.requested_by, "backstage:team-data");
    CHECK_INT(ev.origin, FERRY_ORIGIN_BACKSTAGE);
    CHECK(ev.event_id == NULL);
    ferry_onboard_clear(&ev);
    ferry_backstage_entity_clear(&e);

    const char *minimal[] = {"ferry.io/source", "s3://a/", "ferry.io/target", "s3://b/", NULL};
    e = entity(minimal);
    CHECK_INT(ferry_backstage_entity_spec(&e, &ev, &err), FERRY_OK);
    CHECK_STR(ev.dataset, "sales-orders"); /* metadata.name */
    CHECK_INT(ev.verify, 1);
    CHECK_INT(ev.overwrite, FERRY_OVERWRITE_IF_DIFFERENT);
    CHECK(ev.source_inventory == NULL);
    ferry_onboard_clear(&ev);
    ferry_backstage_entity_clear(&e);

    const char *none[] = {"ferry.io/status", "done", NULL};
    e = entity(none);
    CHECK_INT(ferry_backstage_entity_spec(&e, &ev, &err), FERRY_ERR_CANCELLED); /* not ours */
    ferry_onboard_clear(&ev);
    ferry_backstage_entity_clear(&e);

    static const char *const bad[][3] = {
        {"ferry.io/source", "s3://a/", NULL},
        {"ferry.io/target", "s3://a/", NULL},
    };
    for (int i = 0; i < 2; i++) {
        e = entity(bad[i]);
        CHECK_INT(ferry_backstage_entity_spec(&e, &ev, &err), FERRY_ERR_PERMANENT);
        CHECK(strstr(err.msg, "is missing") != NULL);
        ferry_onboard_clear(&ev);
        ferry_backstage_entity_clear(&e);
    }
    const char *bad_ow[] = {
        "ferry.io/source", "s3://a/", "ferry.io/target", "s3://b/", "ferry.io/overwrite",
        "sometimes",       NULL};
    e = entity(bad_ow);
    CHECK_INT(ferry_backstage_entity_spec(&e, &ev, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "ferry.io/overwrite") != NULL);
    ferry_onboard_clear(&ev);
    ferry_backstage_entity_clear(&e);
    const char *bad_vf[] = {"ferry.io/source",
                            "s3://a/",
                            "ferry.io/target",
                            "s3://b/",
                            "ferry.io/verify",
                            "yes",
                            NULL};
    e = entity(bad_vf);
    CHECK_INT(ferry_backstage_entity_spec(&e, &ev, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "ferry.io/verify") != NULL);
    ferry_onboard_clear(&ev);
    ferry_backstage_entity_clear(&e);
}

/* ---- the client, against a local endpoint that answers like the catalog ---- */

typedef struct catalog {
    int mode; /* 0 ok, 1: 401, 2: 500, 3: page 2 fails, 4: not JSON */
    int requests;
    int fields_every_time;
    int filter_first;
} catalog;

static void by_query(ferry_http_req *req, void *opaque)
{
    catalog *c = opaque;
    const char *cursor = ferry_http_req_query(req, "cursor");
    const char *fields = ferry_http_req_query(req, "fields");
    const char *auth = ferry_http_req_header(req, "Authorization");
    static const char *page2 =
        "{\"items\":[{\"kind\":\"Component\",\"metadata\":{\"name\":\"b\",\"uid\":\"u-3\"}}],"
        "\"totalItems\":3,\"pageInfo\":{\"prevCursor\":\"c1\"}}";

    c->requests++;
    if (!fields || strcmp(fields, FERRY_BACKSTAGE_FIELDS) != 0)
        c->fields_every_time = 0;
    if (!cursor) {
        const char *filter = ferry_http_req_query(req, "filter");
        c->filter_first = filter && strcmp(filter, "kind=component,spec.type=dataset") == 0 &&
                          strcmp(ferry_http_req_query(req, "limit"), "2") == 0;
    }
    if (!auth || strcmp(auth, "Bearer tok-123") != 0 || c->mode == 1) {
        ferry_http_reply_error(req, 401, "unauthorized", "no");
        return;
    }
    if (c->mode == 2) {
        ferry_http_reply_error(req, 500, "boom", "internal");
        return;
    }
    if (c->mode == 4) {
        ferry_http_reply(req, 200, "text/html", "<html>", 6);
        return;
    }
    if (!cursor) {
        ferry_http_reply(req, 200, NULL, PAGE1, strlen(PAGE1));
        return;
    }
    if (strcmp(cursor, "c2") != 0 || c->mode == 3) {
        ferry_http_reply_error(req, 503, "unavailable", "restarting");
        return;
    }
    ferry_http_reply(req, 200, NULL, page2, strlen(page2));
}

static void test_client(void)
{
    ferry_http_conf hc;
    ferry_http *h;
    catalog cat = {0};
    char errstr[256], url[64];
    ferry_backstage_conf bc = {0};
    ferry_backstage *bs;
    ferry_backstage_entity *items;
    size_t n;
    unsigned pages;
    ferry_error err = {0};

    ferry_http_conf_init(&hc);
    hc.listen = "127.0.0.1:0";
    h = ferry_http_new(&hc, errstr, sizeof(errstr));
    ferry_http_route(h, "GET", "/api/catalog/entities/by-query", 0, by_query, &cat);
    CHECK(ferry_http_start(h, errstr, sizeof(errstr)) == 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", ferry_http_port(h));
    bc.base_url = url;
    bc.token = "tok-123";
    bc.page_size = 2;
    bc.timeout_ms = 5000;
    bs = ferry_backstage_new(&bc, errstr, sizeof(errstr));
    CHECK(bs != NULL);

    cat.fields_every_time = 1;
    CHECK_INT(ferry_backstage_list(bs, &items, &n, &pages, &err), FERRY_OK);
    CHECK_INT(n, 3);
    CHECK_INT(pages, 2);
    CHECK(cat.fields_every_time); /* the cursor does not carry fields= */
    CHECK(cat.filter_first);
    if (n == 3)
        CHECK_STR(items[2].ref, "component:default/b");
    for (size_t i = 0; i < n; i++)
        ferry_backstage_entity_clear(&items[i]);
    free(items);

    /* Any failure, even on the last page, yields no listing at all. */
    cat.mode = 3;
    CHECK_INT(ferry_backstage_list(bs, &items, &n, &pages, &err), FERRY_ERR_RETRYABLE);
    CHECK(items == NULL && n == 0);
    CHECK_INT(pages, 2);
    CHECK_STR(err.cls, FERRY_BACKSTAGE_EC);
    cat.mode = 2;
    CHECK_INT(ferry_backstage_list(bs, &items, &n, &pages, &err), FERRY_ERR_RETRYABLE);
    CHECK(strstr(err.msg, "HTTP 500") != NULL);
    cat.mode = 1;
    CHECK_INT(ferry_backstage_list(bs, &items, &n, &pages, &err), FERRY_ERR_RETRYABLE);
    CHECK_STR(err.cls, FERRY_EC_CONFIG);
    CHECK(strstr(err.msg, "tok-123") == NULL); /* never the token in a message */
    cat.mode = 4;
    CHECK_INT(ferry_backstage_list(bs, &items, &n, &pages, &err), FERRY_ERR_PERMANENT);
    ferry_backstage_destroy(bs);

    /* Wrong token. */
    bc.token = "other";
    cat.mode = 0;
    bs = ferry_backstage_new(&bc, errstr, sizeof(errstr));
    CHECK_INT(ferry_backstage_list(bs, &items, &n, &pages, &err), FERRY_ERR_RETRYABLE);
    CHECK_STR(err.cls, FERRY_EC_CONFIG);
    ferry_backstage_destroy(bs);
    ferry_http_destroy(h);

    /* Nobody listening: retryable. */
    bc.token = NULL;
    bs = ferry_backstage_new(&bc, errstr, sizeof(errstr));
    CHECK_INT(ferry_backstage_list(bs, &items, &n, &pages, &err), FERRY_ERR_RETRYABLE);
    CHECK_STR(err.cls, FERRY_BACKSTAGE_EC);
    ferry_backstage_destroy(bs);

    bc.base_url = "ftp://x";
    CHECK(ferry_backstage_new(&bc, errstr, sizeof(errstr)) == NULL);
    bc.base_url = url;
    bc.page_size = 0;
    CHECK(ferry_backstage_new(&bc, errstr, sizeof(errstr)) == NULL);
}

int main(void)
{
    RUN(test_parse_page);
    RUN(test_entity_spec);
    RUN(test_client);
    return TEST_EXIT();
}
