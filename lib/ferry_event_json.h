/* ferry_event_json: the JSON form of a DatasetOnboard request (DESIGN.md section 3), read
 * by the HTTP ingest (POST /v1/events) and by the JSON registry, so both accept exactly
 * the same fields with the same rules:
 *
 *   {"type": "dataset_onboard",                       <- the envelope (HTTP ingest only)
 *    "payload": {
 *      "dataset_name": "sales.orders",                required
 *      "source": "s3://legacy/sales/orders/",         required
 *      "target": "s3://lake/sales/orders/",           required
 *      "verify": true,                                optional, default true
 *      "overwrite": "if_different",                   optional: if_different|always|never
 *      "include": ["2024/"], "exclude": ["tmp/"],     optional key prefixes (<= 100 each)
 *      "requested_by": "jane",                        optional
 *      "inventory": "s3://inv/legacy/manifest.json",  optional: S3 Inventory manifest of the
 *                                                     source bucket (source_inventory)
 *      "event_id": "8-4-4-4-12 UUID",                 optional, HTTP only (idempotency key)
 *      "catalog_ref": "component:default/orders"      optional, HTTP only
 *    }}
 *
 * Unknown fields are refused (a typo such as "tagret" must not silently become "no target").
 * These functions check types and presence; the event rules themselves (name syntax, URIs,
 * overlap, prefixes) are ferry_onboard_validate()'s. Pure functions; any thread. */
#ifndef FERRY_EVENT_JSON_H
#define FERRY_EVENT_JSON_H

#include <jansson.h>

#include "ferry_error.h"
#include "ferry_event.h"

#define FERRY_EVENT_JSON_TYPE_ONBOARD "dataset_onboard"
#define FERRY_EVENT_JSON_MAX_PREFIXES 100

/* Which fields a caller accepts beyond the common ones. */
#define FERRY_EVENT_JSON_ALLOW_EVENT_ID 0x1
#define FERRY_EVENT_JSON_ALLOW_CATALOG_REF 0x2

/* Checks the envelope {"type":"dataset_onboard","payload":{...}} (no other top-level
 * field) and returns the payload object (borrowed from root), or NULL with err set
 * (FERRY_ERR_PERMANENT, class invalid-spec). */
const json_t *ferry_event_json_payload(const json_t *root, ferry_error *err);

/* Fills ev from a payload object: dataset, source_uri, target_uri, verify, overwrite,
 * include/exclude, source_inventory, and (if allowed by flags and present) event_id,
 * requested_by, catalog_ref. ev must be zeroed or cleared; fields it does not set are left
 * alone except verify, which is set to its default (1) when absent. On error ev may be
 * partly filled: the caller clears it. */
ferry_rc ferry_event_json_onboard(const json_t *payload, unsigned flags, ferry_onboard *ev,
                                  ferry_error *err);

#endif
