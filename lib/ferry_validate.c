#include "ferry_validate.h"

#include <stdio.h>
#include <string.h>

int ferry_uuid_valid(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

static int printable_utf8ish(const char *s, size_t max)
{
    size_t n = 0;
    for (; *s; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (n >= max || c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

ferry_rc ferry_onboard_parse_uris(const ferry_onboard *ev, ferry_uri *src, ferry_uri *dst,
                                  ferry_error *err)
{
    if (ferry_uri_parse(ev->source_uri ? ev->source_uri : "", src, err) != FERRY_OK) {
        ferry_error_prefix(err, "source");
        return err->rc;
    }
    if (ferry_uri_parse(ev->target_uri ? ev->target_uri : "", dst, err) != FERRY_OK) {
        ferry_error_prefix(err, "target");
        return err->rc;
    }
    /* Whether they overlap depends on the endpoints, which only the worker knows. */
    return FERRY_OK;
}

ferry_rc ferry_onboard_validate(const ferry_onboard *ev, ferry_error *err)
{
    ferry_uri src, dst;
    char why[128];

    if (!ferry_uuid_valid(ev->event_id))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "event id is not a UUID");
    if (!ferry_dataset_name_valid(ev->dataset, why, sizeof(why)))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC, "%s", why);
    if (ferry_onboard_parse_uris(ev, &src, &dst, err) != FERRY_OK)
        return err->rc;
    for (size_t i = 0; i < ev->include_count + ev->exclude_count; i++) {
        const char *p = i < ev->include_count ? ev->include_prefixes[i]
                                              : ev->exclude_prefixes[i - ev->include_count];
        if (!ferry_uri_prefix_valid(p, why, sizeof(why)))
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC, "%s %s",
                                   i < ev->include_count ? "include" : "exclude", why);
    }
    /* An open chunk (published while the dataset was still listed) always has an end. */
    int open = ev->chunk_count == FERRY_CHUNK_COUNT_OPEN;
    if (ev->chunk_count < FERRY_CHUNK_COUNT_OPEN || ev->chunk_count > 1000000 ||
        (ev->chunk_count != 0 &&
         (ev->chunk_index < 0 || ev->chunk_index >= (open ? 1000000 : ev->chunk_count) ||
          (open && !ev->chunk_end_key) || !ferry_uuid_valid(ev->chunk_parent_event_id) ||
          (ev->chunk_start_after && !printable_utf8ish(ev->chunk_start_after, 1025)) ||
          (ev->chunk_end_key && !printable_utf8ish(ev->chunk_end_key, 1025)))) ||
        (ev->chunk_count == 0 && (ev->chunk_parent_event_id || ev->chunk_index)))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "inconsistent chunk fields");
    /* Only a hint, but the worker will GET it: one object on S3, never a prefix (the URI
     * parser bounds the key and refuses control characters). */
    if (ev->source_inventory) {
        ferry_uri inv;
        size_t n;
        if (ferry_uri_parse(ev->source_inventory, &inv, err) != FERRY_OK) {
            ferry_error_prefix(err, "inventory");
            return err->rc;
        }
        n = strlen(inv.prefix);
        if (n == 0 || inv.prefix[n - 1] == '/')
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                   "inventory must be the s3://bucket/key of a manifest.json, "
                                   "not a bucket or prefix");
    }
    if (ev->requested_by && !printable_utf8ish(ev->requested_by, 256))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "requested_by has control characters or is too long");
    if ((unsigned)ev->overwrite > FERRY_OVERWRITE_NEVER ||
        (unsigned)ev->origin > FERRY_ORIGIN_REPLAY)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "unknown overwrite policy or origin");
    return FERRY_OK;
}
