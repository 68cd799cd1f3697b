/* An S3 Inventory manifest.json: which bucket it lists, its columns and its data files. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ferry_inventory.h"

static ferry_rc bad(ferry_error *err, const char *what)
{
    return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                           "inventory manifest: %s", what);
}

void ferry_inventory_manifest_clear(ferry_inventory_manifest *m)
{
    for (size_t i = 0; i < m->nfiles; i++) {
        free(m->files[i]);
        free(m->files_md5[i]);
    }
    free(m->files);
    free(m->files_md5);
    memset(m, 0, sizeof(*m));
}

static int is_hex(const char *s, size_t want)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') ||
              (s[n] >= 'A' && s[n] <= 'F')))
            return 0;
    return n == want;
}

ferry_rc ferry_inventory_manifest_parse(const char *json, size_t len,
                                        ferry_inventory_manifest *m, ferry_error *err)
{
    json_error_t jerr;
    json_t *root = NULL, *files;
    const char *src, *format, *schema;
    char why[128];
    ferry_rc rc = FERRY_OK;

    memset(m, 0, sizeof(*m));
    if (!(root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr))) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                             "inventory manifest: not JSON (line %d: %s)", jerr.line,
                             jerr.text);
        goto cleanup;
    }
    if (!json_is_object(root)) {
        rc = bad(err, "not a JSON object");
        goto cleanup;
    }
    /* AWS writes "CSV", "ORC" or "Parquet"; a manifest without it is CSV. */
    format = json_string_value(json_object_get(root, "fileFormat"));
    if (format && strcasecmp(format, "CSV") != 0) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                             "inventory manifest: fileFormat %.32s: only CSV inventories "
                             "are read",
                             format);
        goto cleanup;
    }
    src = json_string_value(json_object_get(root, "sourceBucket"));
    if (!src || !ferry_uri_bucket_valid(src, why, sizeof(why))) {
        rc = bad(err, "sourceBucket missing or not a bucket name");
        goto cleanup;
    }
    snprintf(m->source_bucket, sizeof(m->source_bucket), "%s", src);
    schema = json_string_value(json_object_get(root, "fileSchema"));
    if ((rc = ferry_inventory_schema_parse(schema, &m->schema, err)) != FERRY_OK)
        goto cleanup;
    files = json_object_get(root, "files");
    if (!json_is_array(files) || json_array_size(files) == 0) {
        rc = bad(err, "no files");
        goto cleanup;
    }
    if (!(m->files = calloc(json_array_size(files), sizeof(*m->files))) ||
        !(m->files_md5 = calloc(json_array_size(files), sizeof(*m->files_md5))))
        goto oom;
    for (size_t i = 0; i < json_array_size(files); i++) {
        json_t *f = json_array_get(files, i);
        const char *key = json_string_value(json_object_get(f, "key"));
        const char *md5 = json_string_value(json_object_get(f, "MD5checksum"));
        if (!key || !*key || strlen(key) > FERRY_URI_KEY_MAX) {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                 "inventory manifest: files[%zu] has no valid key", i);
            goto cleanup;
        }
        if (md5 && !is_hex(md5, 32)) {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                 "inventory manifest: files[%zu].MD5checksum is not an MD5", i);
            goto cleanup;
        }
        m->nfiles++;
        if (!(m->files[i] = strdup(key)) || (md5 && !(m->files_md5[i] = strdup(md5))))
            goto oom;
    }
    goto cleanup;
oom:
    rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
cleanup:
    json_decref(root);
    return rc;
}
