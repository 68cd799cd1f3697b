/* ferry_inventory: S3 Inventory reports (CSV) as a source listing, as S3 Batch Operations
 * reads them: a dataset of millions of keys can be copied from its inventory instead of
 * one serial LIST of the whole prefix.
 *
 * An inventory's manifest.json names its columns in "fileSchema", e.g.
 *   "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass"
 * and its data files are CSV (gzip-compressed by S3; this module reads the decompressed
 * text): one object per line, every field in double quotes ("" inside a field is a
 * quote), the key URL-encoded ('+' is a space). Bucket and Key are required; a versioned
 * inventory's non-current versions and delete markers (IsLatest "false", IsDeleteMarker
 * "true") are not objects to copy and are reported as skipped.
 *
 * A worker uses an inventory to split a dataset into chunks without listing it
 * (worker/worker_copy_inventory.c): it reads the manifest, the data files, and keeps a
 * bounded sample of the keys from which the chunk bounds are taken. The copy itself still
 * lists each chunk's key range, so an inventory that is out of date makes chunks uneven,
 * never loses an object.
 *
 * No I/O here. Lines are parsed without allocation (ferry_inventory.c: unit-tested and
 * fuzzed, tests/fuzz/fuzz_inventory.c); the manifest (ferry_inventory_manifest.c) and the
 * sample (ferry_inventory_sample.c) own what they allocate until their _clear. */
#ifndef FERRY_INVENTORY_H
#define FERRY_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_error.h"
#include "ferry_uri.h"

#define FERRY_INVENTORY_FIELDS_MAX 32
#define FERRY_INVENTORY_ETAG_MAX 128

/* Column positions (0-based) of the fields ferry uses; -1 = absent. */
typedef struct ferry_inventory_schema {
    int nfields;
    int bucket, key, size, etag, last_modified, is_latest, is_delete_marker;
} ferry_inventory_schema;

/* Parses a manifest's fileSchema (comma-separated names, spaces ignored, names matched
 * case-insensitively). PERMANENT invalid-spec if Bucket or Key is missing, a name repeats,
 * or there are more than FERRY_INVENTORY_FIELDS_MAX columns. */
ferry_rc ferry_inventory_schema_parse(const char *file_schema, ferry_inventory_schema *out,
                                      ferry_error *err);

typedef struct ferry_inventory_row {
    char bucket[FERRY_URI_BUCKET_MAX + 1];
    char key[FERRY_URI_KEY_MAX + 1]; /* decoded */
    size_t key_len;
    uint64_t size; /* FERRY_INVENTORY_SIZE_UNKNOWN without a Size column */
    char etag[FERRY_INVENTORY_ETAG_MAX]; /* without quotes; "" if absent */
    int skip;                            /* 1: a non-current version or a delete marker */
} ferry_inventory_row;

#define FERRY_INVENTORY_SIZE_UNKNOWN UINT64_MAX

/* Parses one CSV line (without its line end; a trailing "\r" is ignored) into row.
 * PERMANENT invalid-spec, with the reason, for a line that does not match the schema
 * (field count, quoting, a key that does not decode or is too long, a bad size). */
ferry_rc ferry_inventory_parse_line(const ferry_inventory_schema *schema, const char *line,
                                    size_t len, ferry_inventory_row *row, ferry_error *err);

/* ---- manifest.json ---------------------------------------------------------------- */

typedef struct ferry_inventory_manifest {
    char source_bucket[FERRY_URI_BUCKET_MAX + 1]; /* the bucket the inventory lists */
    ferry_inventory_schema schema;
    size_t nfiles;
    char **files;     /* owned: the data files' keys (in the manifest's bucket) */
    char **files_md5; /* owned: their MD5checksum in hex, or NULL where absent */
} ferry_inventory_manifest;

/* Parses a manifest.json of len bytes into m (cleared first; ferry_inventory_manifest_clear
 * frees it, also after a failure). PERMANENT invalid-spec, with the reason, for a manifest
 * that is not JSON, is not CSV ("only CSV inventories are read"), or lacks sourceBucket, a
 * valid fileSchema or files[].key. */
ferry_rc ferry_inventory_manifest_parse(const char *json, size_t len,
                                        ferry_inventory_manifest *m, ferry_error *err);
void ferry_inventory_manifest_clear(ferry_inventory_manifest *m);

/* ---- data files -------------------------------------------------------------------- */

#define FERRY_INVENTORY_LINE_MAX (16 * 1024)

/* Called with each non-empty line (without "\n"; a "\r" before it is kept for
 * ferry_inventory_parse_line to drop). A non-OK return stops the walk and is returned. */
typedef ferry_rc (*ferry_inventory_line_cb)(const char *line, size_t len, void *opaque,
                                            ferry_error *err);

/* Calls cb for every line of a data file's len bytes; gzip: they are gzip-compressed
 * (S3 writes .csv.gz; concatenated members are read as one stream). PERMANENT
 * invalid-spec for corrupt or truncated gzip data or a line above FERRY_INVENTORY_LINE_MAX;
 * RETRYABLE when out of memory. */
ferry_rc ferry_inventory_lines(const char *data, size_t len, int gzip,
                               ferry_inventory_line_cb cb, void *opaque, ferry_error *err);

/* ---- sample of the keys ------------------------------------------------------------ */

/* A uniform sample of at most cap keys out of every key added (reservoir sampling with a
 * fixed seed, so one inventory always gives the same bounds). Bounds taken from it split
 * the keys into chunks of about `every`: exact while every key fits in the sample. */
typedef struct ferry_inventory_sample {
    char **keys; /* owned */
    size_t n, cap;
    int64_t seen; /* keys added */
    uint64_t rng;
} ferry_inventory_sample;

#define FERRY_INVENTORY_SAMPLE_MAX 65536

void ferry_inventory_sample_init(ferry_inventory_sample *s, size_t cap);
/* Adds a key (copied); -1 when out of memory. */
int ferry_inventory_sample_add(ferry_inventory_sample *s, const char *key, size_t len);
/* Turns the sample into the chunk bounds for chunks of about `every` keys (every > 0):
 * afterwards keys[0, n) are the bounds, strictly increasing in strcmp order (S3's), the
 * last chunk (after the last bound) taking the rest. n = ceil(seen / every) - 1 at most:
 * 0 when the keys fit in one chunk. */
void ferry_inventory_sample_bounds(ferry_inventory_sample *s, int64_t every);
void ferry_inventory_sample_clear(ferry_inventory_sample *s);

#endif
