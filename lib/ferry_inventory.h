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
 * Pure parsing, no I/O, no allocation: unit-tested and fuzzed (tests/fuzz/fuzz_inventory.c). */
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

#endif
