/* ferry_registry: the JSON dataset registry -- one file, or a directory of *.json files --
 * read into dataset specs, keeping each file's last good contents.
 *
 * File format (every entry uses the fields of ferry_event_json.h's payload, except
 * event_id and catalog_ref):
 *
 *   {"version": 1,                                     optional
 *    "datasets": [
 *      {"dataset_name": "sales.orders",
 *       "source": "s3://legacy/sales/orders/", "target": "s3://lake/sales/orders/",
 *       "overwrite": "if_different", "verify": true, "exclude": ["tmp/"]}
 *    ]}
 *
 * A file is taken whole or not at all: invalid JSON, an unknown field, an entry that fails
 * ferry_onboard_validate(), or a dataset named twice in the file rejects the file, and its
 * LAST GOOD contents stay in force (none, if it never parsed). So a half-written file is
 * never acted on -- it is re-read when it changes again. A deleted file's datasets leave
 * the registry. A dataset defined by two files is taken from the first file (by name) and
 * the duplicate is reported. In a directory, files whose names start with '.' or do not end
 * in ".json" are ignored (editors' and `mv`-style atomic writers' temporary files).
 *
 * Threads: one thread at a time per ferry_registry. */
#ifndef FERRY_REGISTRY_H
#define FERRY_REGISTRY_H

#include <stddef.h>

#include "ferry_error.h"
#include "ferry_event.h"

#define FERRY_REGISTRY_MAX_FILE_BYTES (4 * 1024 * 1024)
#define FERRY_REGISTRY_MAX_DEPTH 8

typedef struct ferry_registry ferry_registry;

typedef struct ferry_registry_entry {
    const char *file;   /* the file it came from (path), borrowed */
    ferry_onboard spec; /* dataset, URIs, options, requested_by; no event id */
} ferry_registry_entry;

/* What one ferry_registry_reload() found. */
typedef struct ferry_registry_result {
    unsigned files;          /* files considered */
    unsigned files_changed;  /* parsed and taken (content differs from before) */
    unsigned files_rejected; /* a new malformed or invalid version (each version is
                                counted and logged once): last good kept */
    unsigned files_removed;  /* gone since the last reload */
    unsigned duplicates;     /* datasets ignored because an earlier file defines them */
} ferry_registry_result;

/* path: a file or a directory (decided at each reload). Nothing is read yet. */
ferry_registry *ferry_registry_new(const char *path, char *errstr, size_t errstr_size);
void ferry_registry_destroy(ferry_registry *reg); /* NULL-safe */

const char *ferry_registry_path(const ferry_registry *reg);

/* Re-reads the file or every file in the directory (see above; problems with single
 * files are logged and counted in res, not returned). Returns FERRY_ERR_RETRYABLE when
 * the path itself cannot be read (missing directory, permissions): nothing changes then.
 * Afterwards the entries are sorted by dataset name. */
ferry_rc ferry_registry_reload(ferry_registry *reg, ferry_registry_result *res,
                               ferry_error *err);

size_t ferry_registry_count(const ferry_registry *reg);
/* Entry i (0 <= i < count), valid until the next reload or destroy. */
const ferry_registry_entry *ferry_registry_at(const ferry_registry *reg, size_t i);

/* Parses one file's text into specs (pure: for tests and fuzzing). On success *out is a
 * malloc'd array of *n specs (clear each with ferry_onboard_clear, then free the array);
 * on failure nothing is returned and err says why (FERRY_ERR_PERMANENT, invalid-spec). */
ferry_rc ferry_registry_parse(const char *text, size_t len, ferry_onboard **out, size_t *n,
                              ferry_error *err);

#endif
