/* Reading an inventory's data files (gzip CSV) and sampling their keys for chunk bounds. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ferry_inventory.h"

/* ---- lines ------------------------------------------------------------------------- */

typedef struct liner {
    char buf[FERRY_INVENTORY_LINE_MAX];
    size_t len;
    ferry_inventory_line_cb cb;
    void *opaque;
} liner;

/* Feeds n bytes: whole lines go to the callback, a partial one waits in buf. */
static ferry_rc feed(liner *l, const char *p, size_t n, ferry_error *err)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (l->len + take > sizeof(l->buf))
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                   "inventory: a line longer than %d bytes",
                                   FERRY_INVENTORY_LINE_MAX);
        memcpy(l->buf + l->len, p, take);
        l->len += take;
        if (!nl)
            break;
        if (l->len > 0 && !(l->len == 1 && l->buf[0] == '\r')) {
            ferry_rc rc = l->cb(l->buf, l->len, l->opaque, err);
            if (rc != FERRY_OK)
                return rc;
        }
        l->len = 0;
        p += take + 1;
        n -= take + 1;
    }
    return FERRY_OK;
}

static ferry_rc finish(liner *l, ferry_error *err)
{
    ferry_rc rc = FERRY_OK;
    if (l->len > 0 && !(l->len == 1 && l->buf[0] == '\r'))
        rc = l->cb(l->buf, l->len, l->opaque, err);
    l->len = 0;
    return rc;
}

static ferry_rc gunzip_lines(liner *l, const char *data, size_t len, ferry_error *err)
{
    z_stream z;
    char out[64 * 1024];
    ferry_rc rc = FERRY_OK;
    int zrc;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    z.next_in = (Bytef *)(uintptr_t)data; /* zlib does not write its input */
    for (;;) {
        /* zlib's counters are uInt: feed a large file in slices */
        if (z.avail_in == 0) {
            size_t used = (size_t)((const char *)z.next_in - data);
            size_t left = len - used;
            z.avail_in = (uInt)(left > (1u << 30) ? (1u << 30) : left);
        }
        z.next_out = (Bytef *)out;
        z.avail_out = sizeof(out);
        zrc = inflate(&z, Z_NO_FLUSH);
        if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR) {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                 "inventory: corrupt gzip data (%s)",
                                 z.msg ? z.msg : "inflate failed");
            goto cleanup;
        }
        if ((rc = feed(l, out, sizeof(out) - z.avail_out, err)) != FERRY_OK)
            goto cleanup;
        if (zrc == Z_STREAM_END) {
            /* S3 may write concatenated members: go on with the next one */
            if ((const char *)z.next_in - data == (ptrdiff_t)len && z.avail_in == 0)
                break;
            if (inflateReset(&z) != Z_OK) {
                rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                     "inventory: corrupt gzip data");
                goto cleanup;
            }
            continue;
        }
        if (zrc == Z_BUF_ERROR && z.avail_in == 0 &&
            (const char *)z.next_in - data == (ptrdiff_t)len) {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                 "inventory: gzip data is truncated");
            goto cleanup;
        }
    }
    rc = finish(l, err);
cleanup:
    inflateEnd(&z);
    return rc;
}

ferry_rc ferry_inventory_lines(const char *data, size_t len, int gzip,
                               ferry_inventory_line_cb cb, void *opaque, ferry_error *err)
{
    liner *l = malloc(sizeof(*l)); /* 16 KiB: off the migration thread's stack */
    ferry_rc rc;

    if (!l)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    l->len = 0;
    l->cb = cb;
    l->opaque = opaque;
    if (gzip) {
        rc = len ? gunzip_lines(l, data, len, err)
                 : ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                   "inventory: empty gzip file");
    } else {
        rc = feed(l, data, len, err);
        if (rc == FERRY_OK)
            rc = finish(l, err);
    }
    free(l);
    return rc;
}

/* ---- sample ------------------------------------------------------------------------ */

void ferry_inventory_sample_init(ferry_inventory_sample *s, size_t cap)
{
    memset(s, 0, sizeof(*s));
    s->cap = cap ? cap : 1;
    s->rng = 0x9e3779b97f4a7c15ull; /* fixed: the same inventory gives the same bounds */
}

static uint64_t next_rand(ferry_inventory_sample *s)
{
    /* xorshift64*: plenty for choosing sample slots */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 0x2545f4914f6cdd1dull;
}

int ferry_inventory_sample_add(ferry_inventory_sample *s, const char *key, size_t len)
{
    size_t slot;
    char *copy;

    s->seen++;
    if (s->n < s->cap) {
        if (!s->keys && !(s->keys = calloc(s->cap, sizeof(*s->keys))))
            return -1;
        slot = s->n;
    } else {
        /* Algorithm R: the seen-th key replaces a random one with probability cap/seen */
        uint64_t j = next_rand(s) % (uint64_t)s->seen;
        if (j >= s->cap)
            return 0;
        slot = (size_t)j;
    }
    if (!(copy = strndup(key, len)))
        return -1;
    if (slot == s->n)
        s->n++;
    else
        free(s->keys[slot]);
    s->keys[slot] = copy;
    return 0;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void ferry_inventory_sample_bounds(ferry_inventory_sample *s, int64_t every)
{
    int64_t chunks;
    size_t nb = 0;

    if (every < 1)
        every = 1;
    if (s->n > 1)
        qsort(s->keys, s->n, sizeof(*s->keys), by_key);
    chunks = s->seen > 0 ? (s->seen + every - 1) / every : 0;
    /* Bound i (1-based) ends chunk i: the (i * every)-th key of all of them, which is the
     * same fraction of the way through the sorted sample. */
    for (int64_t i = 1; i < chunks && s->n > 0; i++) {
        long double frac = (long double)(i * every) / (long double)s->seen;
        int64_t idx = (int64_t)(frac * (long double)s->n) - 1;
        char *k;
        if (idx < 0)
            idx = 0;
        if (idx >= (int64_t)s->n)
            idx = (int64_t)s->n - 1;
        k = s->keys[idx];
        if (nb > 0 && strcmp(k, s->keys[nb - 1]) <= 0)
            continue; /* a sample too small for this many chunks: fewer, larger ones */
        /* idx >= nb always (idx grows by at least one per bound taken): swap it into place */
        s->keys[idx] = s->keys[nb];
        s->keys[nb++] = k;
    }
    for (size_t i = nb; i < s->n; i++) {
        free(s->keys[i]);
        s->keys[i] = NULL;
    }
    s->n = nb;
}

void ferry_inventory_sample_clear(ferry_inventory_sample *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->keys[i]);
    free(s->keys);
    memset(s, 0, sizeof(*s));
}
