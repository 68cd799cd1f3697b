/* Fuzz target: the body of POST /v1/events as the HTTP ingest reads it --
 * ferry_http_json_depth (run before the parser), then the envelope and payload
 * (ferry_event_json_payload, ferry_event_json_onboard).
 * Invariants: the depth scan never exceeds limit + 1 and agrees with jansson on a body it
 * accepts (jansson never parses something deeper than the scan says); a payload that
 * parses has dataset, source and target; any error is PERMANENT invalid-spec or an out of
 * memory. */
#include "fuzz.h"

#include <jansson.h>

#include "ferry_event_json.h"
#include "ferry_http.h"

static int depth(const json_t *v)
{
    int d = 0;
    const char *k;
    json_t *c;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, c)
        {
            int x = depth(c);
            d = x > d ? x : d;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, c)
        {
            int x = depth(c);
            d = x > d ? x : d;
        }
        return d + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int limit = 10;
    int d = ferry_http_json_depth((const char *)data, size, limit);
    json_t *root;
    const json_t *payload;
    ferry_onboard ev = {0};
    ferry_error err = {0};

    FUZZ_ASSERT(d >= 0 && d <= limit + 1);
    if (d > limit)
        return 0; /* the server answers 400 before parsing */
    root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        return 0;
    FUZZ_ASSERT(depth(root) <= d);
    if ((payload = ferry_event_json_payload(root, &err))) {
        ferry_rc rc = ferry_event_json_onboard(payload,
                                               FERRY_EVENT_JSON_ALLOW_EVENT_ID |
                                                   FERRY_EVENT_JSON_ALLOW_CATALOG_REF,
                                               &ev, &err);
        if (rc == FERRY_OK)
            FUZZ_ASSERT(ev.dataset && ev.source_uri && ev.target_uri);
        else
            FUZZ_ASSERT(rc == FERRY_ERR_PERMANENT || strcmp(err.cls, "internal") == 0);
    } else {
        FUZZ_ASSERT(err.rc == FERRY_ERR_PERMANENT);
    }
    ferry_onboard_clear(&ev);
    json_decref(root);
    return 0;
}
