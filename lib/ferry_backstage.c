#include "ferry_backstage.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ferry_log.h"

/* ---- entities -------------------------------------------------------------------- */

void ferry_backstage_entity_clear(ferry_backstage_entity *e)
{
    if (!e)
        return;
    free(e->ref);
    free(e->kind);
    free(e->namespace_);
    free(e->name);
    free(e->uid);
    free(e->etag);
    free(e->owner);
    for (size_t i = 0; i < e->n_ann; i++) {
        free(e->ann[i].key);
        free(e->ann[i].value);
    }
    free(e->ann);
    memset(e, 0, sizeof(*e));
}

void ferry_backstage_page_clear(ferry_backstage_page *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++)
        ferry_backstage_entity_clear(&p->items[i]);
    free(p->items);
    free(p->next_cursor);
    memset(p, 0, sizeof(*p));
}

const char *ferry_backstage_annotation(const ferry_backstage_entity *e, const char *key)
{
    for (size_t i = 0; i < e->n_ann; i++)
        if (strcmp(e->ann[i].key, key) == 0)
            return e->ann[i].value;
    return NULL;
}

static char *dup_str(const json_t *v)
{
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/* 0 ok, 1 skipped (not an entity we can identify), -1 out of memory. */
static int parse_entity(const json_t *item, ferry_backstage_entity *e)
{
    const json_t *meta = json_object_get(item, "metadata");
    const json_t *spec = json_object_get(item, "spec");
    const json_t *anns = json_object_get(meta, "annotations");
    const char *key;
    const json_t *v;

    if (!json_is_string(json_object_get(item, "kind")) ||
        !json_is_string(json_object_get(meta, "name")) ||
        !json_is_string(json_object_get(meta, "uid")))
        return 1;
    e->kind = dup_str(json_object_get(item, "kind"));
    e->name = dup_str(json_object_get(meta, "name"));
    e->uid = dup_str(json_object_get(meta, "uid"));
    e->namespace_ = json_is_string(json_object_get(meta, "namespace"))
                        ? dup_str(json_object_get(meta, "namespace"))
                        : strdup("default");
    if (json_is_string(json_object_get(meta, "etag")))
        e->etag = dup_str(json_object_get(meta, "etag"));
    if (json_is_object(spec) && json_is_string(json_object_get(spec, "owner")))
        e->owner = dup_str(json_object_get(spec, "owner"));
    if (!e->kind || !e->name || !e->uid || !e->namespace_)
        return -1;
    /* Backstage's stringifyEntityRef: kind lower-cased, namespace and name as they are. */
    if (asprintf(&e->ref, "%s:%s/%s", e->kind, e->namespace_, e->name) < 0) {
        e->ref = NULL;
        return -1;
    }
    for (char *p = e->ref; *p != ':'; p++)
        *p = (char)tolower((unsigned char)*p);
    if (!json_is_object(anns))
        return 0;
    json_object_foreach((json_t *)anns, key, v)
    {
        ferry_backstage_kv *n;
        if (strncmp(key, FERRY_BACKSTAGE_ANN_PREFIX, strlen(FERRY_BACKSTAGE_ANN_PREFIX)) != 0 ||
            !json_is_string(v))
            continue;
        n = realloc(e->ann, (e->n_ann + 1) * sizeof(*n));
        if (!n)
            return -1;
        e->ann = n;
        n[e->n_ann].key = strdup(key);
        n[e->n_ann].value = strdup(json_string_value(v));
        e->n_ann++;
        if (!n[e->n_ann - 1].key || !n[e->n_ann - 1].value)
            return -1;
    }
    return 0;
}

ferry_rc ferry_backstage_parse_page(const char *text, size_t len, ferry_backstage_page *out,
                                    size_t *skipped, ferry_error *err)
{
    json_error_t jerr;
    json_t *root;
    const json_t *items, *info, *cursor, *total, *item;
    size_t i;
    ferry_rc rc = FERRY_OK;

    memset(out, 0, sizeof(*out));
    out->total_items = -1;
    if (skipped)
        *skipped = 0;
    if (!(root = json_loadb(text, len, 0, &jerr)))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_BACKSTAGE_EC,
                               "catalog answer is not JSON: line %d: %s", jerr.line, jerr.text);
    items = json_object_get(root, "items");
    if (!json_is_array(items)) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_BACKSTAGE_EC,
                             "catalog answer has no \"items\" array (not a by-query page)");
        goto out;
    }
    info = json_object_get(root, "pageInfo");
    cursor = json_object_get(info, "nextCursor");
    total = json_object_get(root, "totalItems");
    if (json_is_integer(total))
        out->total_items = json_integer_value(total);
    if (json_is_string(cursor) && *json_string_value(cursor) &&
        !(out->next_cursor = strdup(json_string_value(cursor))))
        goto oom;
    if (json_array_size(items) &&
        !(out->items = calloc(json_array_size(items), sizeof(*out->items))))
        goto oom;
    json_array_foreach(items, i, item)
    {
        int r = parse_entity(item, &out->items[out->count]);
        if (r < 0) {
            ferry_backstage_entity_clear(&out->items[out->count]);
            goto oom;
        }
        if (r > 0) {
            ferry_backstage_entity_clear(&out->items[out->count]);
            if (skipped)
                (*skipped)++;
            continue;
        }
        out->count++;
    }
    goto out;
oom:
    rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
out:
    if (rc != FERRY_OK)
        ferry_backstage_page_clear(out);
    json_decref(root);
    return rc;
}

/* Splits "a/, b/ ,c/" into trimmed, non-empty items. */
static ferry_rc split_list(const char *s, const char *ann, char ***out, size_t *n,
                           ferry_error *err)
{
    const char *p = s;

    while (*p) {
        const char *start, *end;
        char **nv;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        start = p;
        while (*p && *p != ',')
            p++;
        end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (*n >= 100)
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                   "%s lists more than 100 prefixes", ann);
        nv = realloc(*out, (*n + 1) * sizeof(*nv));
        if (!nv)
            return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "out of memory");
        *out = nv;
        if (!(nv[*n] = strndup(start, (size_t)(end - start))))
            return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "out of memory");
        (*n)++;
    }
    return FERRY_OK;
}

ferry_rc ferry_backstage_entity_spec(const ferry_backstage_entity *e, ferry_onboard *ev,
                                     ferry_error *err)
{
    const char *src = ferry_backstage_annotation(e, FERRY_BACKSTAGE_ANN_SOURCE);
    const char *dst = ferry_backstage_annotation(e, FERRY_BACKSTAGE_ANN_TARGET);
    const char *ds = ferry_backstage_annotation(e, FERRY_BACKSTAGE_ANN_DATASET);
    const char *ow = ferry_backstage_annotation(e, FERRY_BACKSTAGE_ANN_OVERWRITE);
    const char *vf = ferry_backstage_annotation(e, FERRY_BACKSTAGE_ANN_VERIFY);
    const char *inc = ferry_backstage_annotation(e, FERRY_BACKSTAGE_ANN_INCLUDE);
    const char *exc = ferry_backstage_annotation(e, FERRY_BACKSTAGE_ANN_EXCLUDE);
    const char *inv = ferry_backstage_annotation(e, FERRY_BACKSTAGE_ANN_INVENTORY);
    ferry_rc rc;

    if (!src && !dst)
        return ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_INVALID_SPEC,
                               "no ferry.io/source or ferry.io/target annotation");
    if (!src || !dst)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "annotation %s is missing",
                               src ? FERRY_BACKSTAGE_ANN_TARGET : FERRY_BACKSTAGE_ANN_SOURCE);
    ev->origin = FERRY_ORIGIN_BACKSTAGE;
    ev->verify = 1;
    ev->overwrite = FERRY_OVERWRITE_IF_DIFFERENT;
    if (ow && ferry_overwrite_parse(ow, &ev->overwrite) != 0)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "%s must be if_different, always or never",
                               FERRY_BACKSTAGE_ANN_OVERWRITE);
    if (vf) {
        if (strcmp(vf, "true") == 0)
            ev->verify = 1;
        else if (strcmp(vf, "false") == 0)
            ev->verify = 0;
        else
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                   "%s must be \"true\" or \"false\"",
                                   FERRY_BACKSTAGE_ANN_VERIFY);
    }
    if (inc && (rc = split_list(inc, FERRY_BACKSTAGE_ANN_INCLUDE, &ev->include_prefixes,
                                &ev->include_count, err)) != FERRY_OK)
        return rc;
    if (exc && (rc = split_list(exc, FERRY_BACKSTAGE_ANN_EXCLUDE, &ev->exclude_prefixes,
                                &ev->exclude_count, err)) != FERRY_OK)
        return rc;
    ev->dataset = strdup(ds ? ds : e->name);
    ev->source_uri = strdup(src);
    ev->target_uri = strdup(dst);
    ev->catalog_ref = strdup(e->ref);
    if (e->etag)
        ev->catalog_etag = strdup(e->etag);
    if (inv)
        ev->source_inventory = strdup(inv);
    if (e->owner) {
        if (asprintf(&ev->requested_by, "backstage:%s", e->owner) < 0)
            ev->requested_by = NULL;
    } else {
        ev->requested_by = strdup("backstage");
    }
    if (!ev->dataset || !ev->source_uri || !ev->target_uri || !ev->catalog_ref ||
        !ev->requested_by || (e->etag && !ev->catalog_etag) || (inv && !ev->source_inventory))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    return FERRY_OK;
}

/* ---- the client ------------------------------------------------------------------ */

struct ferry_backstage {
    CURL *curl;
    struct curl_slist *headers;
    char *base_url;
    char *filter_q; /* url-escaped filter */
    char *fields_q; /* url-escaped fields */
    int page_size;
    long timeout_ms;
    char curl_err[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

ferry_backstage *ferry_backstage_new(const ferry_backstage_conf *conf, char *errstr,
                                     size_t errstr_size)
{
    ferry_backstage *bs = NULL;
    char *auth = NULL;
    size_t n;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        snprintf(errstr, errstr_size, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    if (!conf->base_url || (strncmp(conf->base_url, "http://", 7) != 0 &&
                            strncmp(conf->base_url, "https://", 8) != 0)) {
        snprintf(errstr, errstr_size, "the catalog URL must start with http:// or https://");
        return NULL;
    }
    if (conf->page_size < 1 || conf->page_size > 10000) {
        snprintf(errstr, errstr_size, "page size must be 1..10000");
        return NULL;
    }
    if (!(bs = calloc(1, sizeof(*bs))) || !(bs->curl = curl_easy_init()))
        goto oom;
    bs->page_size = conf->page_size;
    bs->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 10000;
    if (!(bs->base_url = strdup(conf->base_url)))
        goto oom;
    n = strlen(bs->base_url);
    while (n && bs->base_url[n - 1] == '/')
        bs->base_url[--n] = '\0';
    bs->filter_q = curl_easy_escape(bs->curl,
                                    conf->filter && *conf->filter
                                        ? conf->filter
                                        : FERRY_BACKSTAGE_DEFAULT_FILTER,
                                    0);
    bs->fields_q = curl_easy_escape(bs->curl, FERRY_BACKSTAGE_FIELDS, 0);
    if (!bs->filter_q || !bs->fields_q)
        goto oom;
    if (!(bs->headers = curl_slist_append(NULL, "Accept: application/json")))
        goto oom;
    if (conf->token && *conf->token) {
        struct curl_slist *h;
        if (asprintf(&auth, "Authorization: Bearer %s", conf->token) < 0) {
            auth = NULL;
            goto oom;
        }
        h = curl_slist_append(bs->headers, auth);
        explicit_bzero(auth, strlen(auth));
        free(auth);
        if (!h)
            goto oom;
        bs->headers = h;
    }
    curl_easy_setopt(bs->curl, CURLOPT_NOSIGNAL, 1L);
    if (conf->ca_file && *conf->ca_file) /* libcurl copies it; verification stays on */
        curl_easy_setopt(bs->curl, CURLOPT_CAINFO, conf->ca_file);
    curl_easy_setopt(bs->curl, CURLOPT_HTTPHEADER, bs->headers);
    curl_easy_setopt(bs->curl, CURLOPT_TIMEOUT_MS, bs->timeout_ms);
    curl_easy_setopt(bs->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     bs->timeout_ms < 5000 ? bs->timeout_ms : 5000L);
    curl_easy_setopt(bs->curl, CURLOPT_ERRORBUFFER, bs->curl_err);
    curl_easy_setopt(bs->curl, CURLOPT_ACCEPT_ENCODING, ""); /* gzip if offered */
    curl_easy_setopt(bs->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(bs->curl, CURLOPT_FOLLOWLOCATION, 0L); /* never send the token elsewhere */
    return bs;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    ferry_backstage_destroy(bs);
    return NULL;
}

void ferry_backstage_destroy(ferry_backstage *bs)
{
    if (!bs)
        return;
    for (struct curl_slist *h = bs->headers; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data)); /* the bearer token */
    curl_slist_free_all(bs->headers);
    curl_free(bs->filter_q);
    curl_free(bs->fields_q);
    if (bs->curl)
        curl_easy_cleanup(bs->curl);
    free(bs->base_url);
    free(bs);
}

typedef struct buf {
    char *p;
    size_t len, cap;
    int too_big;
} buf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    buf *b = userp;
    size_t n = size * nmemb;

    if (!n)
        return 0;
    if (b->len + n > FERRY_BACKSTAGE_MAX_PAGE_BYTES) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return 0;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

ferry_rc ferry_backstage_fetch_page(ferry_backstage *bs, const char *cursor,
                                    ferry_backstage_page *out, ferry_error *err)
{
    char *url = NULL, *cur_q = NULL;
    buf body = {0};
    long status = 0;
    CURLcode cc;
    ferry_rc rc;
    int r;

    memset(out, 0, sizeof(*out));
    if (cursor) {
        if (!(cur_q = curl_easy_escape(bs->curl, cursor, 0)))
            return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "out of memory");
        /* The cursor carries filter and order, not fields=: repeat it. */
        r = asprintf(&url, "%s/api/catalog/entities/by-query?cursor=%s&fields=%s&limit=%d",
                     bs->base_url, cur_q, bs->fields_q, bs->page_size);
    } else {
        r = asprintf(&url,
                     "%s/api/catalog/entities/by-query?filter=%s&fields=%s&limit=%d"
                     "&orderField=metadata.name,asc",
                     bs->base_url, bs->filter_q, bs->fields_q, bs->page_size);
    }
    curl_free(cur_q);
    if (r < 0)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    bs->curl_err[0] = '\0';
    curl_easy_setopt(bs->curl, CURLOPT_URL, url);
    curl_easy_setopt(bs->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(bs->curl, CURLOPT_WRITEDATA, &body);
    cc = curl_easy_perform(bs->curl);
    curl_easy_getinfo(bs->curl, CURLINFO_RESPONSE_CODE, &status);
    if (body.too_big) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_BACKSTAGE_EC,
                             "catalog page larger than %d bytes; lower the page size",
                             FERRY_BACKSTAGE_MAX_PAGE_BYTES);
    } else if (cc != CURLE_OK) {
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_BACKSTAGE_EC, "catalog %s: %s",
                             bs->base_url,
                             bs->curl_err[0] ? bs->curl_err : curl_easy_strerror(cc));
    } else if (status == 401 || status == 403) {
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_CONFIG,
                             "catalog %s refused the credentials (HTTP %ld): check the token",
                             bs->base_url, status);
    } else if (status >= 500 || status == 429 || status == 408) {
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_BACKSTAGE_EC,
                             "catalog %s answered HTTP %ld", bs->base_url, status);
    } else if (status != 200) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_BACKSTAGE_EC,
                             "catalog %s answered HTTP %ld: %.200s", bs->base_url, status,
                             body.p ? body.p : "");
    } else {
        size_t skipped = 0;
        rc = ferry_backstage_parse_page(body.p ? body.p : "", body.len, out, &skipped, err);
        if (rc == FERRY_OK && skipped)
            ferry_warn(NULL, "catalog: %zu entities without kind, name or uid ignored",
                       skipped);
    }
    free(body.p);
    free(url);
    return rc;
}

ferry_rc ferry_backstage_list(ferry_backstage *bs, ferry_backstage_entity **items, size_t *n,
                              unsigned *pages, ferry_error *err)
{
    ferry_backstage_entity *all = NULL;
    size_t count = 0, cap = 0;
    char *cursor = NULL;
    ferry_rc rc = FERRY_OK;

    *items = NULL;
    *n = 0;
    *pages = 0;
    for (;;) {
        ferry_backstage_page page;
        if (*pages >= FERRY_BACKSTAGE_MAX_PAGES) {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_BACKSTAGE_EC,
                                 "more than %d pages: is the catalog looping?",
                                 FERRY_BACKSTAGE_MAX_PAGES);
            break;
        }
        rc = ferry_backstage_fetch_page(bs, cursor, &page, err);
        (*pages)++;
        if (rc != FERRY_OK)
            break;
        if (count + page.count > cap) {
            size_t ncap = cap ? cap : 256;
            while (ncap < count + page.count)
                ncap *= 2;
            ferry_backstage_entity *na = realloc(all, ncap * sizeof(*na));
            if (!na) {
                ferry_backstage_page_clear(&page);
                rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                     "out of memory");
                break;
            }
            all = na;
            cap = ncap;
        }
        /* Move the entities; the page keeps only its cursor. */
        if (page.count)
            memcpy(all + count, page.items, page.count * sizeof(*all));
        count += page.count;
        page.count = 0;
        free(cursor);
        cursor = page.next_cursor;
        page.next_cursor = NULL;
        ferry_backstage_page_clear(&page);
        if (!cursor)
            break;
    }
    free(cursor);
    if (rc != FERRY_OK) {
        for (size_t i = 0; i < count; i++)
            ferry_backstage_entity_clear(&all[i]);
        free(all);
        return rc;
    }
    *items = all;
    *n = count;
    return FERRY_OK;
}
