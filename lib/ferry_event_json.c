#include "ferry_event_json.h"

#include <stdlib.h>
#include <string.h>

static ferry_rc invalid(ferry_error *err, const char *msg, const char *field)
{
    return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC, "%s%s%s", msg,
                           field ? " " : "", field ? field : "");
}

const json_t *ferry_event_json_payload(const json_t *root, ferry_error *err)
{
    const char *key;
    const json_t *v, *type = NULL, *payload = NULL;

    if (!json_is_object(root)) {
        invalid(err, "the request must be a JSON object", NULL);
        return NULL;
    }
    json_object_foreach((json_t *)root, key, v)
    {
        if (strcmp(key, "type") == 0)
            type = v;
        else if (strcmp(key, "payload") == 0)
            payload = v;
        else {
            ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                            "unknown field \"%.64s\" (expected type and payload)", key);
            return NULL;
        }
    }
    if (!json_is_string(type)) {
        invalid(err, "missing string field", "\"type\"");
        return NULL;
    }
    if (strcmp(json_string_value(type), FERRY_EVENT_JSON_TYPE_ONBOARD) != 0) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                        "unknown event type \"%.64s\" (expected \"%s\")",
                        json_string_value(type), FERRY_EVENT_JSON_TYPE_ONBOARD);
        return NULL;
    }
    if (!json_is_object(payload)) {
        invalid(err, "missing object field", "\"payload\"");
        return NULL;
    }
    return payload;
}

static ferry_rc take_string(const json_t *v, const char *key, char **out, ferry_error *err)
{
    if (!json_is_string(v))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "\"%s\" must be a string", key);
    free(*out);
    if (!(*out = strdup(json_string_value(v))))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    return FERRY_OK;
}

static ferry_rc take_prefixes(const json_t *v, const char *key, char ***out, size_t *count,
                              ferry_error *err)
{
    size_t i, n;
    const json_t *item;

    if (!json_is_array(v))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "\"%s\" must be an array of strings", key);
    n = json_array_size(v);
    if (n > FERRY_EVENT_JSON_MAX_PREFIXES)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "\"%s\" has more than %d prefixes", key,
                               FERRY_EVENT_JSON_MAX_PREFIXES);
    if (*count)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "\"%s\" given twice", key);
    if (n == 0)
        return FERRY_OK;
    if (!(*out = calloc(n, sizeof(**out))))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                   "\"%s\" must be an array of strings", key);
        if (!((*out)[i] = strdup(json_string_value(item))))
            return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "out of memory");
        (*count)++;
    }
    return FERRY_OK;
}

ferry_rc ferry_event_json_onboard(const json_t *payload, unsigned flags, ferry_onboard *ev,
                                  ferry_error *err)
{
    const char *key;
    const json_t *v;
    ferry_rc rc = FERRY_OK;

    if (!json_is_object(payload))
        return invalid(err, "the payload must be a JSON object", NULL);
    ev->verify = 1;
    json_object_foreach((json_t *)payload, key, v)
    {
        if (strcmp(key, "dataset_name") == 0)
            rc = take_string(v, key, &ev->dataset, err);
        else if (strcmp(key, "source") == 0)
            rc = take_string(v, key, &ev->source_uri, err);
        else if (strcmp(key, "target") == 0)
            rc = take_string(v, key, &ev->target_uri, err);
        else if (strcmp(key, "requested_by") == 0)
            rc = take_string(v, key, &ev->requested_by, err);
        else if (strcmp(key, "inventory") == 0)
            rc = take_string(v, key, &ev->source_inventory, err);
        else if (strcmp(key, "event_id") == 0 && (flags & FERRY_EVENT_JSON_ALLOW_EVENT_ID))
            rc = take_string(v, key, &ev->event_id, err);
        else if (strcmp(key, "catalog_ref") == 0 &&
                 (flags & FERRY_EVENT_JSON_ALLOW_CATALOG_REF))
            rc = take_string(v, key, &ev->catalog_ref, err);
        else if (strcmp(key, "verify") == 0) {
            if (!json_is_boolean(v))
                return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                       "\"verify\" must be true or false");
            ev->verify = json_is_true(v);
        } else if (strcmp(key, "overwrite") == 0) {
            if (!json_is_string(v) ||
                ferry_overwrite_parse(json_string_value(v), &ev->overwrite))
                return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                       "\"overwrite\" must be \"if_different\", \"always\" or "
                                       "\"never\"");
        } else if (strcmp(key, "include") == 0)
            rc = take_prefixes(v, key, &ev->include_prefixes, &ev->include_count, err);
        else if (strcmp(key, "exclude") == 0)
            rc = take_prefixes(v, key, &ev->exclude_prefixes, &ev->exclude_count, err);
        else
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                   "unknown field \"%.64s\"", key);
        if (rc != FERRY_OK)
            return rc;
    }
    if (!ev->dataset)
        return invalid(err, "missing field", "\"dataset_name\"");
    if (!ev->source_uri)
        return invalid(err, "missing field", "\"source\"");
    if (!ev->target_uri)
        return invalid(err, "missing field", "\"target\"");
    return FERRY_OK;
}
