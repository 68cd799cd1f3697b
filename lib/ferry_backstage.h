/* ferry_backstage: a client for the Backstage Software Catalog REST API (libcurl) and the
 * parser of its answers (jansson), plus the mapping of ferry's annotations to a spec.
 *
 * Backstage has no change feed, so ferry polls
 *   GET <base>/api/catalog/entities/by-query?filter=<filter>&fields=<fields>&limit=<n>
 * and follows pageInfo.nextCursor (the cursor keeps the filter but NOT fields=, so fields=
 * is repeated on every call). A listing is complete only when every page arrived; any
 * error returns no listing at all, so a caller never mistakes a partial listing for
 * removed entities.
 *
 * Annotations (metadata.annotations) that define a migration -- the "spec":
 *   ferry.io/source      s3://bucket/prefix/   required
 *   ferry.io/target      s3://bucket/prefix/   required
 *   ferry.io/dataset     dataset name          default: metadata.name
 *   ferry.io/overwrite   if_different | always | never      default if_different
 *   ferry.io/verify      "true" | "false"                   default true
 *   ferry.io/include     comma-separated key prefixes       default none
 *   ferry.io/exclude     comma-separated key prefixes       default none
 *   ferry.io/inventory   s3://bucket/key of an S3 Inventory manifest.json of the source
 *                        bucket (a hint for splitting a large dataset)   default none
 * Annotations ferry writes back (status; never part of the spec, see deploy/backstage/):
 *   ferry.io/status, ferry.io/progress, ferry.io/objects, ferry.io/bytes,
 *   ferry.io/event-id, ferry.io/updated-at, ferry.io/finished-at, ferry.io/error
 * An entity with neither ferry.io/source nor ferry.io/target is not ferry's (ignored).
 *
 * Threads: a ferry_backstage handle is used by one thread at a time. */
#ifndef FERRY_BACKSTAGE_H
#define FERRY_BACKSTAGE_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_error.h"
#include "ferry_event.h"

#define FERRY_BACKSTAGE_ANN_PREFIX "ferry.io/"
#define FERRY_BACKSTAGE_ANN_SOURCE "ferry.io/source"
#define FERRY_BACKSTAGE_ANN_TARGET "ferry.io/target"
#define FERRY_BACKSTAGE_ANN_DATASET "ferry.io/dataset"
#define FERRY_BACKSTAGE_ANN_OVERWRITE "ferry.io/overwrite"
#define FERRY_BACKSTAGE_ANN_VERIFY "ferry.io/verify"
#define FERRY_BACKSTAGE_ANN_INCLUDE "ferry.io/include"
#define FERRY_BACKSTAGE_ANN_EXCLUDE "ferry.io/exclude"
#define FERRY_BACKSTAGE_ANN_INVENTORY "ferry.io/inventory"

/* The fields= the poller asks for: enough to build the spec, nothing else. */
#define FERRY_BACKSTAGE_FIELDS                                                                 \
    "kind,metadata.namespace,metadata.name,metadata.uid,metadata.etag,metadata.annotations,"   \
    "spec.owner"
#define FERRY_BACKSTAGE_DEFAULT_FILTER "kind=component,spec.type=dataset"

#define FERRY_BACKSTAGE_MAX_PAGE_BYTES (64 * 1024 * 1024)
#define FERRY_BACKSTAGE_MAX_PAGES 100000

/* Error class of catalog failures (err->cls). */
#define FERRY_BACKSTAGE_EC "catalog"

typedef struct ferry_backstage_kv {
    char *key, *value;
} ferry_backstage_kv;

/* One entity as the poller needs it. Strings are heap-owned; NULL when absent. */
typedef struct ferry_backstage_entity {
    char *ref; /* "component:default/sales-orders" (kind lower-cased) */
    char *kind, *namespace_, *name;
    char *uid, *etag;
    char *owner;             /* spec.owner */
    ferry_backstage_kv *ann; /* only the ferry.io/ annotations, in document order */
    size_t n_ann;
} ferry_backstage_entity;

void ferry_backstage_entity_clear(ferry_backstage_entity *e);
/* Value of an annotation (ferry.io/ ones only), NULL if absent. */
const char *ferry_backstage_annotation(const ferry_backstage_entity *e, const char *key);

/* One by-query page. */
typedef struct ferry_backstage_page {
    ferry_backstage_entity *items;
    size_t count;
    char *next_cursor;     /* NULL on the last page */
    long long total_items; /* -1 if absent */
} ferry_backstage_page;

void ferry_backstage_page_clear(ferry_backstage_page *p);

/* Parses a by-query answer {items, totalItems, pageInfo:{nextCursor}} (pure: for tests
 * and fuzzing). Items without kind, metadata.name or metadata.uid are skipped (counted in
 * *skipped if non-NULL). FERRY_ERR_PERMANENT class "catalog" if it is not such a page. */
ferry_rc ferry_backstage_parse_page(const char *text, size_t len, ferry_backstage_page *out,
                                    size_t *skipped, ferry_error *err);

/* Builds the spec from ferry's annotations: dataset, source_uri, target_uri, verify,
 * overwrite, include/exclude, source_inventory; requested_by = "backstage:<spec.owner>"
 * (or "backstage"); catalog_ref = e->ref; catalog_etag = e->etag; origin backstage. No
 * event id, no time.
 * Returns FERRY_OK; or FERRY_ERR_CANCELLED when the entity carries neither source nor
 * target (not ferry's: ignore it); or FERRY_ERR_PERMANENT invalid-spec for an annotation
 * that cannot be used (the message names it). ev must be zeroed; clear it in every case.
 * Whether the URIs and names are valid is ferry_onboard_validate()'s job. */
ferry_rc ferry_backstage_entity_spec(const ferry_backstage_entity *e, ferry_onboard *ev,
                                     ferry_error *err);

/* ---- the client ------------------------------------------------------------------ */

typedef struct ferry_backstage_conf {
    const char *base_url; /* "http://127.0.0.1:7007" (without the /api path) */
    const char *token;    /* bearer token or NULL; copied, wiped on destroy */
    const char *filter;   /* NULL = FERRY_BACKSTAGE_DEFAULT_FILTER */
    int page_size;        /* limit= per page, 1..10000 (Backstage's default is 200) */
    long timeout_ms;      /* per request */
    const char *ca_file;  /* CA bundle for an https catalog; NULL = the system's CAs */
} ferry_backstage_conf;

typedef struct ferry_backstage ferry_backstage;

ferry_backstage *ferry_backstage_new(const ferry_backstage_conf *conf, char *errstr,
                                     size_t errstr_size);
void ferry_backstage_destroy(ferry_backstage *bs); /* NULL-safe */

/* Fetches one page (cursor NULL = the first). Errors, classified:
 *   RETRYABLE "catalog"  connect/timeout/reset, 5xx, 429
 *   RETRYABLE "config"   401/403: the token is wrong (keep backing off; a person must act)
 *   PERMANENT "catalog"  another 4xx (bad filter), or an answer that is not a page */
ferry_rc ferry_backstage_fetch_page(ferry_backstage *bs, const char *cursor,
                                    ferry_backstage_page *out, ferry_error *err);

/* Every page, concatenated into *items and *n (caller clears each entity and frees the array).
 * On error nothing is returned. *pages receives the number of requests made. */
ferry_rc ferry_backstage_list(ferry_backstage *bs, ferry_backstage_entity **items, size_t *n,
                              unsigned *pages, ferry_error *err);

#endif
