/* The JSON form of DatasetOnboard (HTTP ingest and registry share it). */
#include <stdlib.h>
#include <string.h>

#include "ferry_event_json.h"
#include "ferry_test.h"

static ferry_rc parse(const char *text, unsigned flags, ferry_onboard *ev, ferry_error *err)
{
    json_t *root = json_loads(text, 0, NULL);
    const json_t *payload;
    ferry_rc rc;

    memset(ev, 0, sizeof(*ev));
    if (!root)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, "test", "bad test JSON: %s", text);
    payload = ferry_event_json_payload(root, err);
    rc = payload ? ferry_event_json_onboard(payload, flags, ev, err) : err->rc;
    json_decref(root);
    return rc;
}

static void test_minimal(void)
{
    ferry_onboard ev;
    ferry_error err = {0};

    CHECK_INT(parse("{\"type\":\"dataset_onboard\",\"payload\":{\"dataset_name\":\"d1\","
                    "\"source\":\"s3://a/x/\",\"target\":\"s3://b/y/\"}}",
                    0, &ev, &err),
              FERRY_OK);
    CHECK_STR(ev.dataset, "d1");
    CHECK_STR(ev.source_uri, "s3://a/x/");
    CHECK_STR(ev.target_uri, "s3://b/y/");
    CHECK_INT(ev.verify, 1);
    CHECK_INT(ev.overwrite, FERRY_OVERWRITE_IF_DIFFERENT);
    CHECK(ev.event_id == NULL && ev.requested_by == NULL && ev.catalog_ref == NULL);
    CHECK(ev.source_inventory == NULL);
    ferry_onboard_clear(&ev);
}

static void test_all_fields(void)
{
    ferry_onboard ev;
    ferry_error err = {0};
    const char *j =
        "{\"payload\":{\"dataset_name\":\"d1\",\"source\":\"s3://a/x/\","
        "\"target\":\"s3://b/y/\",\"verify\":false,\"overwrite\":\"never\","
        "\"include\":[\"p1/\",\"p2/\"],\"exclude\":[\"tmp/\"],"
        "\"requested_by\":\"jane\",\"event_id\":\"0b8e4c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b\","
        "\"inventory\":\"s3://inv/a/all/manifest.json\","
        "\"catalog_ref\":\"component:default/d1\"},\"type\":\"dataset_onboard\"}";

    CHECK_INT(parse(j, FERRY_EVENT_JSON_ALLOW_EVENT_ID | FERRY_EVENT_JSON_ALLOW_CATALOG_REF,
                    &ev, &err),
              FERRY_OK);
    CHECK_INT(ev.verify, 0);
    CHECK_INT(ev.overwrite, FERRY_OVERWRITE_NEVER);
    CHECK_INT(ev.include_count, 2);
    CHECK_STR(ev.include_prefixes[1], "p2/");
    CHECK_INT(ev.exclude_count, 1);
    CHECK_STR(ev.requested_by, "jane");
    CHECK_STR(ev.event_id, "0b8e4c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b");
    CHECK_STR(ev.catalog_ref, "component:default/d1");
    CHECK_STR(ev.source_inventory, "s3://inv/a/all/manifest.json");
    ferry_onboard_clear(&ev);

    /* Without the flags, event_id and catalog_ref are unknown fields (the registry). */
    CHECK_INT(parse(j, 0, &ev, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "unknown field") != NULL);
    ferry_onboard_clear(&ev);
}

static void test_refused(void)
{
    static const struct {
        const char *json, *msg;
    } cases[] = {
        {"[]", "JSON object"},
        {"{\"payload\":{}}", "\"type\""},
        {"{\"type\":\"other\",\"payload\":{}}", "unknown event type"},
        {"{\"type\":\"dataset_onboard\"}", "\"payload\""},
        {"{\"type\":\"dataset_onboard\",\"payload\":[]}", "\"payload\""},
        {"{\"type\":\"dataset_onboard\",\"payload\":{},\"extra\":1}",
         "unknown field \"extra\""},
        {"{\"type\":\"dataset_onboard\",\"payload\":{\"source\":\"s3://a/\",\"target\":\"s3://b/\"}}",
         "\"dataset_name\""},
        {"{\"type\":\"dataset_onboard\",\"payload\":{\"dataset_name\":\"d\",\"target\":\"s3://b/\"}}",
         "\"source\""},
        {"{\"type\":\"dataset_onboard\",\"payload\":{\"dataset_name\":\"d\",\"source\":\"s3://a/\"}}",
         "\"target\""},
        {"{\"type\":\"dataset_onboard\",\"payload\":{\"dataset_name\":1}}", "must be a string"},
        {"{\"type\":\"dataset_onboard\",\"payload\":{\"verify\":\"yes\"}}", "true or false"},
        {"{\"type\":\"dataset_onboard\",\"payload\":{\"overwrite\":\"maybe\"}}", "overwrite"},
        {"{\"type\":\"dataset_onboard\",\"payload\":{\"include\":\"p/\"}}", "array of strings"},
        {"{\"type\":\"dataset_onboard\",\"payload\":{\"exclude\":[1]}}", "array of strings"},
        {"{\"type\":\"dataset_onboard\",\"payload\":{\"inventory\":[\"s3://i/m.json\"]}}",
         "\"inventory\" must be a string"},
        {"{\"type\":\"dataset_onboard\",\"payload\":{\"inventory\":null}}",
         "\"inventory\" must be a string"},
        {"{\"type\":\"dataset_onboard\",\"payload\":{\"tagret\":\"s3://b/\"}}", "\"tagret\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ferry_onboard ev;
        ferry_error err = {0};
        CHECK_INT(parse(cases[i].json, 0, &ev, &err), FERRY_ERR_PERMANENT);
        CHECK_STR(err.cls, FERRY_EC_INVALID_SPEC);
        if (!strstr(err.msg, cases[i].msg)) {
            fprintf(stderr, "case %zu: \"%s\" lacks \"%s\"\n", i, err.msg, cases[i].msg);
            CHECK(0);
        }
        ferry_onboard_clear(&ev);
    }
}

static void test_prefix_limit(void)
{
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof(buf),
                                "{\"type\":\"dataset_onboard\",\"payload\":{"
                                "\"include\":[");
    ferry_onboard ev;
    ferry_error err = {0};

    for (int i = 0; i <= FERRY_EVENT_JSON_MAX_PREFIXES; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"p%d/\"", i ? "," : "", i);
    snprintf(buf + n, sizeof(buf) - n, "]}}");
    CHECK_INT(parse(buf, 0, &ev, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "more than") != NULL);
    ferry_onboard_clear(&ev);
}

int main(void)
{
    RUN(test_minimal);
    RUN(test_all_fields);
    RUN(test_refused);
    RUN(test_prefix_limit);
    return TEST_EXIT();
}
