/* Splitting a dataset by its common prefixes: one LIST with a delimiter names the
 * "directories" under the dataset's prefix, and each becomes a chunk bound, so a dataset
 * laid out as date=/shard=/... directories is split after a few LIST pages instead of
 * one page per 1,000 keys. The listing descends while it finds a single prefix and
 * nothing else (a dataset under one "2026/" directory).
 *
 * A bound is any string, not only a key: chunk i covers (bound i-1, bound i], and every
 * key under a prefix P sorts after P itself, so with P as a bound P's keys belong to the
 * next chunk, which ends at the next bound. Bounds only need to increase, which is also
 * what makes mixing them with key bounds (the counting pass's, or a resumed split's)
 * safe. */
#include <stdlib.h>
#include <string.h>

#include "ferry_log.h"
#include "worker_copy_internal.h"

/* Past these many prefixes at one level the "directories" are too small for a delimiter
 * listing to save requests: the split walks the keys instead. */
#define MAX_PREFIXES 10000
/* Chunks made from one level's prefixes: more prefixes are grouped. */
#define MAX_PREFIX_CHUNKS 1000
/* How deep a single-directory chain is followed. */
#define MAX_DEPTH 8

typedef struct prefixes {
    char **v; /* heap strings, in key order */
    size_t n, cap;
    int other;          /* the level also holds objects */
    char *first_object; /* the level's first object key (heap), or NULL */
} prefixes;

static void prefixes_clear(prefixes *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i]);
    free(p->v);
    free(p->first_object);
    memset(p, 0, sizeof(*p));
}

static int prefixes_add(prefixes *p, const char *s)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        char **v = realloc(p->v, cap * sizeof(*v));
        if (!v)
            return -1;
        p->v = v;
        p->cap = cap;
    }
    if (!(p->v[p->n] = strdup(s)))
        return -1;
    p->n++;
    return 0;
}

/* Lists one level: the common prefixes under `base` after start_after. *too_many when the
 * level has more than MAX_PREFIXES (then out is incomplete). */
static ferry_rc list_level(run *r, const char *base, const char *delimiter,
                           const char *start_after, prefixes *out, int *too_many,
                           ferry_error *err)
{
    worker_copier *c = r->c;
    ferry_objstore_listing l; /* its own: the copier's may hold a page for the copy */
    char *token = NULL;
    ferry_rc rc = FERRY_OK;

    *too_many = 0;
    ferry_objstore_listing_init(&l);
    do {
        int tries = 0;
        do
            rc = ferry_objstore_list_delimited(c->store, r->src.bucket, base, delimiter,
                                               token ? NULL : start_after, token, 1000, &l,
                                               err);
        while (worker_copy__again(r, c->src_brk, &rc, &tries, err));
        free(token);
        token = NULL;
        if (rc != FERRY_OK)
            goto out;
        for (size_t i = 0; i < l.count; i++) {
            const ferry_objstore_entry *e = &l.entries[i];
            if (!e->is_prefix) {
                out->other = 1;
                if (!out->first_object && !(out->first_object = strdup(e->key)))
                    goto oom;
            } else if (out->n >= MAX_PREFIXES) {
                *too_many = 1;
                goto out;
            } else if (prefixes_add(out, e->key)) {
                goto oom;
            }
        }
        if (l.is_truncated) {
            if (!l.next_token) {
                rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                     "listing is truncated without a continuation token");
                goto out;
            }
            if (!(token = strdup(l.next_token)))
                goto oom;
        }
        if (r->should_stop(r->opaque)) {
            rc = ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_INTERNAL, "stopped");
            goto out;
        }
    } while (l.is_truncated);
    goto out;
oom:
    rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
out:
    free(token);
    ferry_objstore_listing_free(&l);
    return rc;
}

/* The prefix at this level that holds start_after (base + its next segment), put first
 * in lv if the listing left it out: servers differ in whether a prefix sorting before
 * start-after is rolled up (S3Proxy and moto leave it out). It is where the copy stands,
 * so it counts both for following a single directory down and as content before the
 * first bound. */
static ferry_rc add_cursor_prefix(prefixes *lv, const char *base, const char *delimiter,
                                  const char *start_after, ferry_error *err)
{
    size_t bl = strlen(base), pl;
    const char *d;
    char *p;

    if (!start_after || strncmp(start_after, base, bl) != 0 ||
        !(d = strstr(start_after + bl, delimiter)))
        return FERRY_OK;
    pl = (size_t)(d - start_after) + strlen(delimiter);
    if (lv->n && !strncmp(lv->v[0], start_after, pl) && lv->v[0][pl] == '\0')
        return FERRY_OK; /* listed */
    if (prefixes_add(lv, "") || !(p = strndup(start_after, pl)))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    free(lv->v[lv->n - 1]);
    memmove(lv->v + 1, lv->v, (lv->n - 1) * sizeof(*lv->v));
    lv->v[0] = p;
    return FERRY_OK;
}

ferry_rc worker_copy__prefix_bounds(run *r, const char *delimiter, const char *start_after,
                                    worker_copy_bound_cb cb, void *opaque, int64_t *nbounds,
                                    ferry_error *err)
{
    prefixes lv = {0};
    char *base = NULL;
    ferry_rc rc = FERRY_OK;
    int too_many = 0;

    *nbounds = 0;
    if (!(base = strdup(r->src.prefix)))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    for (int depth = 0; depth < MAX_DEPTH; depth++) {
        prefixes_clear(&lv);
        if ((rc = list_level(r, base, delimiter, start_after, &lv, &too_many, err)) !=
                FERRY_OK ||
            too_many ||
            (rc = add_cursor_prefix(&lv, base, delimiter, start_after, err)) != FERRY_OK)
            goto out;
        /* one directory and nothing beside it: the split happens below it */
        if (lv.n != 1 || lv.other)
            break;
        free(base);
        base = lv.v[0];
        lv.v[0] = NULL;
        lv.n = 0;
    }
    {
        /* Prefixes after start_after; the one holding start_after (if listed) sorts
         * before it and its rest goes to the first chunk. */
        size_t first = 0, q, g;
        while (first < lv.n && start_after && strcmp(lv.v[first], start_after) <= 0)
            first++;
        q = lv.n - first;
        if (q < 2)
            goto out; /* nothing to split by: the caller walks the keys */
        /* Bound at the first prefix only if something comes before it: else the first
         * chunk would be empty. */
        if (first == 0 && (!lv.first_object || strcmp(lv.first_object, lv.v[0]) > 0))
            first++, q--;
        g = (q + MAX_PREFIX_CHUNKS - 1) / MAX_PREFIX_CHUNKS;
        for (size_t i = first; i < lv.n; i += g) {
            if ((rc = cb(lv.v[i], i + g < lv.n, opaque)) != FERRY_OK) {
                rc = ferry_error_set(err, rc, FERRY_EC_INTERNAL,
                                     "noting the chunk boundary at %s", lv.v[i]);
                goto out;
            }
            ++*nbounds;
        }
        ferry_info(&r->lctx, "split by %zu common prefixes under \"%s\": %lld bounds", q, base,
                   (long long)*nbounds);
    }
out:
    if (too_many)
        ferry_info(&r->lctx,
                   "more than %d common prefixes under \"%s\": splitting by keys instead",
                   MAX_PREFIXES, base);
    prefixes_clear(&lv);
    free(base);
    return rc;
}
