/* Splitting a dataset by its S3 Inventory: the manifest names CSV data files listing every
 * object of the source bucket; the dataset's keys among them, sampled, give the chunk
 * bounds without one LIST of the dataset. A few GETs instead of one LIST per 1,000 keys.
 *
 * The inventory is a hint for where to cut, not the list of what to copy: each chunk still
 * lists its own key range on the store, so keys written after the inventory was taken,
 * or missing from it, are copied all the same (a chunk ends at its bound, and the last
 * chunk is open-ended). A stale inventory makes chunks uneven; it cannot lose an object. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ferry_inventory.h"
#include "ferry_log.h"
#include "worker_copy_internal.h"

/* Largest manifest.json and data file read (a data file is held whole while it is read;
 * AWS writes inventories of millions of objects as several gzip files of a few MiB each). */
#define MANIFEST_MAX (16u << 20)
#define DATA_FILE_MAX (256u << 20)

typedef struct scan {
    run *r;
    const ferry_inventory_schema *schema;
    const char *start_after; /* keys up to it are already split (a resumed split) */
    const char *file;        /* the data file being read, for messages */
    size_t srclen;
    int64_t line;
    int64_t matched; /* the dataset's objects in the inventory (after start_after) */
    ferry_inventory_sample sample;
    ferry_inventory_row row; /* 2 KiB: not on the stack of every line */
} scan;

static ferry_rc on_line(const char *line, size_t len, void *opaque, ferry_error *err)
{
    scan *s = opaque;
    ferry_inventory_row *row = &s->row;
    const run *r = s->r;
    ferry_rc rc;

    s->line++;
    if ((rc = ferry_inventory_parse_line(s->schema, line, len, row, err)) != FERRY_OK) {
        ferry_error_prefix(err, "%s line %lld", s->file, (long long)s->line);
        return rc;
    }
    if (row->skip || strcmp(row->bucket, r->src.bucket) != 0 ||
        strncmp(row->key, r->src.prefix, s->srclen) != 0 ||
        !worker_copy__selected(r->ev, row->key + s->srclen) ||
        (s->start_after && strcmp(row->key, s->start_after) <= 0))
        return FERRY_OK;
    s->matched++;
    if (ferry_inventory_sample_add(&s->sample, row->key, row->key_len) != 0)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    return FERRY_OK;
}

/* GET with the copy's retries and outage waits; *data is malloc'd. */
static ferry_rc get(run *r, const char *bucket, const char *key, size_t max, char **data,
                    size_t *len, ferry_error *err)
{
    int tries = 0;
    ferry_rc rc;
    do
        rc = ferry_objstore_get(r->c->store, bucket, key, max, data, len, err);
    while (worker_copy__again(r, r->c->src_brk, &rc, &tries, err));
    if (rc != FERRY_OK)
        ferry_error_prefix(err, "reading s3://%s/%s", bucket, key);
    return rc;
}

static int md5_matches(const char *data, size_t len, const char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char got[2 * EVP_MAX_MD_SIZE + 1];

    if (!EVP_Digest(data, len, md, &n, EVP_md5(), NULL))
        return 0;
    for (unsigned int i = 0; i < n; i++)
        snprintf(got + 2 * i, 3, "%02x", md[i]);
    return strcasecmp(got, hex) == 0;
}

/* Reads the manifest and every data file into s (the dataset's keys sampled). */
static ferry_rc read_inventory(run *r, const ferry_uri *at, scan *s, size_t *nfiles,
                               ferry_error *err)
{
    ferry_inventory_manifest m = {0};
    char *data = NULL;
    size_t len = 0;
    ferry_rc rc;

    if ((rc = get(r, at->bucket, at->prefix, MANIFEST_MAX, &data, &len, err)) != FERRY_OK)
        goto cleanup;
    if ((rc = ferry_inventory_manifest_parse(data, len, &m, err)) != FERRY_OK)
        goto cleanup;
    if (strcmp(m.source_bucket, r->src.bucket) != 0) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                             "the inventory lists bucket %s, the dataset is in %s",
                             m.source_bucket, r->src.bucket);
        goto cleanup;
    }
    s->schema = &m.schema;
    for (size_t i = 0; i < m.nfiles; i++) {
        size_t kl = strlen(m.files[i]);
        int gz = kl > 3 && !strcmp(m.files[i] + kl - 3, ".gz");

        free(data);
        data = NULL;
        /* data files are in the manifest's bucket (its destination bucket) */
        if ((rc = get(r, at->bucket, m.files[i], DATA_FILE_MAX, &data, &len, err)) != FERRY_OK)
            goto cleanup;
        if (m.files_md5[i] && !md5_matches(data, len, m.files_md5[i])) {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                 "s3://%s/%s does not match the manifest's MD5checksum",
                                 at->bucket, m.files[i]);
            goto cleanup;
        }
        s->file = m.files[i];
        s->line = 0;
        if ((rc = ferry_inventory_lines(data, len, gz, on_line, s, err)) != FERRY_OK)
            goto cleanup;
        if (r->should_stop(r->opaque)) {
            rc = ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_INTERNAL, "stopped");
            goto cleanup;
        }
    }
    *nfiles = m.nfiles;
cleanup:
    s->schema = NULL;
    s->file = NULL;
    free(data);
    ferry_inventory_manifest_clear(&m);
    return rc;
}

ferry_rc worker_copy__inventory_bounds(run *r, const char *manifest, const char *start_after,
                                       int64_t every, worker_copy_bound_cb cb, void *opaque,
                                       int64_t *nbounds, int64_t *matched, ferry_error *err)
{
    ferry_uri at;
    scan *s;
    size_t nfiles = 0;
    ferry_rc rc;

    *nbounds = 0;
    *matched = 0;
    if ((rc = ferry_uri_parse(manifest, &at, err)) != FERRY_OK)
        return rc;
    if (!(s = calloc(1, sizeof(*s))))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    s->r = r;
    s->start_after = start_after;
    s->srclen = strlen(r->src.prefix);
    ferry_inventory_sample_init(&s->sample, FERRY_INVENTORY_SAMPLE_MAX);
    if ((rc = read_inventory(r, &at, s, &nfiles, err)) != FERRY_OK)
        goto cleanup;
    *matched = s->matched;
    ferry_inventory_sample_bounds(&s->sample, every);
    ferry_info(&r->lctx,
               "inventory %s: %lld objects of the dataset in %zu files: %zu chunk "
               "bounds",
               manifest, (long long)s->matched, nfiles, s->sample.n);
    for (size_t i = 0; i < s->sample.n; i++) {
        if ((rc = cb(s->sample.keys[i], i + 1 < s->sample.n, opaque)) != FERRY_OK) {
            rc = ferry_error_set(err, rc, FERRY_EC_REDIS, "recording chunk boundary %zu", i);
            goto cleanup;
        }
        ++*nbounds;
    }
cleanup:
    ferry_inventory_sample_clear(&s->sample);
    free(s);
    return rc;
}
