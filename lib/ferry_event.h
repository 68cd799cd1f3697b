/* ferry_event: the in-memory form of the events in schemas/. The Avro codec
 * (ferry_avro) converts between these structs and bytes on the wire. */
#ifndef FERRY_EVENT_H
#define FERRY_EVENT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FERRY_ORIGIN_BACKSTAGE = 0,
    FERRY_ORIGIN_REGISTRY,
    FERRY_ORIGIN_API,
    FERRY_ORIGIN_CLI,
    FERRY_ORIGIN_REPLAY,
} ferry_origin;

typedef enum {
    FERRY_OVERWRITE_IF_DIFFERENT = 0, /* copy unless the target already holds identical bytes */
    FERRY_OVERWRITE_ALWAYS,
    FERRY_OVERWRITE_NEVER, /* an existing, different target object is an error */
} ferry_overwrite;

/* DatasetOnboard. All strings are heap-owned by the struct; free with ferry_onboard_clear(). */
typedef struct ferry_onboard {
    char *event_id; /* UUID text */
    char *dataset;
    char *source_uri; /* s3://bucket/prefix */
    char *target_uri;
    int64_t requested_at_ms;
    char *requested_by;
    ferry_origin origin;
    char *catalog_ref;  /* NULL if absent */
    char *catalog_etag; /* NULL if absent */
    /* options */
    int verify; /* default 1 */
    ferry_overwrite overwrite;
    char **include_prefixes;
    size_t include_count;
    char **exclude_prefixes;
    size_t exclude_count;
    /* A chunk event (schema v2): one key range of a dataset that was split so many
     * workers copy it at once. chunk_count == 0 for a whole-dataset event, and
     * FERRY_CHUNK_COUNT_OPEN for a chunk published while the splitter was still listing
     * the dataset (the count is then only in the plan, ferry_chunks.h). */
    char *chunk_parent_event_id; /* NULL unless a chunk */
    int64_t chunk_index;
    int64_t chunk_count;
    char *chunk_start_after; /* NULL: from the first key */
    char *chunk_end_key;     /* NULL: to the last key */
    /* Schema v3: s3://bucket/key of an S3 Inventory manifest.json that lists the source
     * bucket, or NULL. A hint for splitting a large dataset without listing it; the copy
     * still lists each chunk's range, so a stale inventory loses nothing. */
    char *source_inventory;
} ferry_onboard;

#define FERRY_CHUNK_COUNT_OPEN (-1)

/* DatasetMigrated. Same ownership rules. */
typedef struct ferry_migrated {
    char *event_id;
    char *dataset;
    char *source_uri;
    char *target_uri;
    int64_t objects;
    int64_t bytes;
    int64_t duration_ms;
    int64_t finished_at_ms;
    char *worker;
    /* version 2 (0 when decoded from version 1) */
    int64_t objects_copied;
    int64_t objects_identical;
    int64_t objects_vanished;
    int64_t objects_failed;
} ferry_migrated;

/* Free the members (not the struct itself) and zero it. NULL-safe. */
void ferry_onboard_clear(ferry_onboard *ev);
void ferry_migrated_clear(ferry_migrated *ev);

const char *ferry_origin_name(ferry_origin o);
int ferry_origin_parse(const char *s, ferry_origin *out); /* 0 ok, -1 unknown */
const char *ferry_overwrite_name(ferry_overwrite o);
int ferry_overwrite_parse(const char *s, ferry_overwrite *out);

#endif
