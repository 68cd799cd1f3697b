/* The default ferry_objstore backend: S3 over libcurl's multi interface, requests signed
 * with AWS Signature V4 by ferry_sigv4 (see ferry_sigv4.h for why not CURLOPT_AWS_SIGV4).
 * This file is the backend's vtable: create/destroy, submit (validation), pump and
 * cancel_queued; objstore_sigv4.h describes the engine and which file holds what. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ferry_log.h"
#include "objstore/objstore_sigv4.h"

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static size_t be_pump(void *impl, int timeout_ms)
{
    sigv4 *s = impl;

    objstore__schedule(s);
    if (objstore__active(s)) {
        objstore__step(s);
        if (!s->ops.done.head && objstore__active(s)) {
            curl_multi_poll(s->multi, NULL, 0, timeout_ms < 0 ? 0 : timeout_ms, NULL);
            objstore__step(s);
        }
    }
    ferry_objstore__opqs_deliver(&s->ops);
    return s->ops.pending;
}

/* ---------------------------------------------------------------- submit / cancel */

static int name_ok(const char *s, size_t max)
{
    size_t n;

    if (!s || !*s)
        return 0;
    n = strlen(s);
    return n <= max;
}

static const char *validate(const sigv4 *s, const ferry_objstore_op *op)
{
    switch (op->type) {
    case FERRY_OBJSTORE_OP_TRANSFER:
        if (!op->src_store)
            return "no source store";
        if (!ferry_objstore__impl(op->src_store, &ferry_objstore_sigv4_backend))
            return "the source store must use the sigv4 backend";
        if (s->nslots < 2)
            return "needs max_in_flight >= 2 (each stream holds a GET and a PUT connection)";
        /* fallthrough */
    case FERRY_OBJSTORE_OP_COPY:
        if (!ferry_objstore__bucket_ok(op->src_bucket) ||
            !name_ok(op->src_key, FERRY_URI_KEY_MAX))
            return "missing or invalid source bucket or key";
        /* fallthrough */
    case FERRY_OBJSTORE_OP_HEAD:
    case FERRY_OBJSTORE_OP_PUT:
    case FERRY_OBJSTORE_OP_GET:
    case FERRY_OBJSTORE_OP_DELETE:
        if (!ferry_objstore__bucket_ok(op->bucket))
            return "missing or invalid bucket";
        if (!name_ok(op->key, FERRY_URI_KEY_MAX))
            return "missing key, or key longer than 1024 bytes";
        if (op->type == FERRY_OBJSTORE_OP_PUT && op->put_len && !op->put_data)
            return "PUT without data";
        return NULL;
    case FERRY_OBJSTORE_OP_ABORT_UPLOAD:
        if (!ferry_objstore__bucket_ok(op->bucket) || !name_ok(op->key, FERRY_URI_KEY_MAX))
            return "missing or invalid bucket or key";
        if (!name_ok(op->upload_id, 1023) || strpbrk(op->upload_id, "\r\n"))
            return "missing or invalid upload id";
        return NULL;
    case FERRY_OBJSTORE_OP_LIST:
    case FERRY_OBJSTORE_OP_LIST_UPLOADS: return ferry_objstore__list_args_bad(op);
    case FERRY_OBJSTORE_OP_HEAD_BUCKET:
    case FERRY_OBJSTORE_OP_CREATE_BUCKET:
        return ferry_objstore__bucket_ok(op->bucket) ? NULL : "missing or invalid bucket";
    }
    return "unknown operation type";
}

static void be_submit(void *impl, ferry_objstore_op *op)
{
    sigv4 *s = impl;
    const char *bad;

    ferry_objstore__opqs_accept(&s->ops, op);
    bad = validate(s, op);
    if (bad) {
        char what[600];
        objstore__describe(op, ST_MAIN, 0, what, sizeof(what));
        op->rc = ferry_error_set(&op->err, FERRY_ERR_PERMANENT,
                                 op->type == FERRY_OBJSTORE_OP_TRANSFER && !strstr(bad, "key")
                                     ? FERRY_EC_CONFIG
                                     : FERRY_EC_S3_CLIENT,
                                 "%s: %s", what, bad);
        objstore__push_done(s, op);
        return;
    }
    ferry_objstore__opq_push(&s->ops.queued, op);
}

static const char *main_step_name(const ferry_objstore_op *op)
{
    return objstore__step_name(op, ST_MAIN);
}

static void be_cancel_queued(void *impl)
{
    sigv4 *s = impl;

    ferry_objstore__opqs_cancel_queued(&s->ops, main_step_name);
}

/* ---------------------------------------------------------------- create / destroy */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static void be_destroy(void *impl)
{
    sigv4 *s = impl;
    int i;

    if (!s)
        return;
    for (i = 0; s->slots && i < s->nslots; i++) {
        slot *sl = &s->slots[i];
        if (sl->easy) {
            if (sl->op && s->multi)
                curl_multi_remove_handle(s->multi, sl->easy);
            curl_easy_cleanup(sl->easy);
        }
        objstore__buf_free(&sl->url);
        objstore__buf_free(&sl->resp);
        objstore__buf_free(&sl->reqbody);
        explicit_bzero(sl->hbuf, sizeof(sl->hbuf));
    }
    while (s->mp_active) {
        mpcopy *mp = s->mp_active;
        s->mp_active = mp->next;
        mp->op->priv_ = NULL;
        objstore__mp_free(mp);
    }
    if (s->multi)
        curl_multi_cleanup(s->multi);
    free(s->slots);
    free(s->free_idx);
    free(s->host);
    free(s->scheme);
    free(s->region);
    ferry_objstore__wipe_free(s->access_key);
    ferry_objstore__wipe_free(s->secret_key);
    ferry_objstore__wipe_free(s->session_token);
    free(s->ca_file);
    free(s->default_ca);
    explicit_bzero(s->signing_key, sizeof(s->signing_key));
    free(s);
}

/* Splits the endpoint into scheme and Host header value; refuses paths, queries and
 * user info (credentials never travel in URLs). */
static int parse_endpoint(sigv4 *s, const char *endpoint, ferry_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *user = NULL;
    int rc = -1;

    if (!u) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
        return -1;
    }
    if (!endpoint || !*endpoint ||
        curl_url_set(u, CURLUPART_URL, endpoint, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                        "S3 endpoint is not a valid URL (want http(s)://host[:port])");
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                        "S3 endpoint must use http or https");
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    if ((path && strcmp(path, "/") != 0 && *path) || query || user) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                        "S3 endpoint must be scheme://host[:port] without path, query or "
                        "user info");
        goto out;
    }
    s->scheme = strdup(scheme);
    if (port)
        s->host = malloc(strlen(host) + strlen(port) + 2);
    else
        s->host = strdup(host);
    if (!s->scheme || !s->host) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
        goto out;
    }
    if (port)
        sprintf(s->host, "%s:%s", host, port); /* sized exactly above */
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

static void *be_create(const ferry_objstore_conf *c, ferry_error *err)
{
    sigv4 *s;
    int i;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                        "curl_global_init failed: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    if (!c->access_key || !*c->access_key || !c->secret_key || !*c->secret_key) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                        "S3 credentials are missing (access key and secret key)");
        return NULL;
    }
    if (c->multipart_threshold < MIN_PART || c->multipart_threshold > MAX_PART ||
        c->multipart_part_size < MIN_PART || c->multipart_part_size > MAX_PART) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                        "multipart threshold and part size must be 5 MiB..5 GiB");
        return NULL;
    }
    if (c->transfer_buffer_bytes && (c->transfer_buffer_bytes < ((size_t)64 << 10) ||
                                     c->transfer_buffer_bytes > ((size_t)64 << 20))) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                        "transfer buffer must be 64 KiB..64 MiB");
        return NULL;
    }
    if (c->insecure_tls_ok)
        ferry_debug(NULL, "insecure_tls_ok is ignored by the sigv4 backend: it always "
                          "verifies TLS");
    if (c->region && (!*c->region || strpbrk(c->region, "/ \r\n"))) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG, "invalid S3 region");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
        return NULL;
    }
    if (parse_endpoint(s, c->endpoint, err))
        goto fail;
    s->region = strdup(c->region ? c->region : "us-east-1");
    s->access_key = strdup(c->access_key);
    s->secret_key = strdup(c->secret_key);
    s->session_token = c->session_token && *c->session_token ? strdup(c->session_token) : NULL;
    s->ca_file = xstrdup(c->ca_file);
    s->path_style = c->path_style;
    s->connect_timeout_ms = c->connect_timeout_ms > 0 ? c->connect_timeout_ms : 10000;
    s->request_timeout_ms = c->request_timeout_ms > 0 ? c->request_timeout_ms : 60000;
    s->stall_timeout_ms = c->stall_timeout_ms > 0 ? c->stall_timeout_ms : 120000;
    s->max_response = c->max_response_bytes ? c->max_response_bytes : (16u << 20);
    s->mp_threshold = c->multipart_threshold;
    s->mp_part_size = c->multipart_part_size;
    s->tx_buffer = c->transfer_buffer_bytes ? c->transfer_buffer_bytes : (size_t)1 << 20;
    s->stream_checksums = c->stream_checksums;
    s->nslots = c->max_in_flight;
    s->slots = calloc((size_t)s->nslots, sizeof(*s->slots));
    s->free_idx = calloc((size_t)s->nslots, sizeof(*s->free_idx));
    s->multi = curl_multi_init();
    if (!s->region || !s->access_key || !s->secret_key || !s->slots || !s->free_idx ||
        !s->multi || (c->session_token && *c->session_token && !s->session_token) ||
        (c->ca_file && !s->ca_file)) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
        goto fail;
    }
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)s->nslots + 4);
    curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    for (i = 0; i < s->nslots; i++) {
        if (objstore__slot_setup(s, &s->slots[i])) {
            ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                            "curl_easy_init failed");
            goto fail;
        }
        s->free_idx[i] = s->nslots - 1 - i; /* slot 0 is used first */
    }
    {
        /* libcurl's own CA bundle, to restore on a handle that ran a request for a
         * TRANSFER's source store with another ca_file. */
        char *def = NULL;
#if LIBCURL_VERSION_NUM >= 0x075400
        curl_easy_getinfo(s->slots[0].easy, CURLINFO_CAINFO, &def);
#endif
        if (def && !(s->default_ca = strdup(def))) {
            ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
            goto fail;
        }
    }
    s->nfree = s->nslots;
    return s;
fail:
    be_destroy(s);
    return NULL;
}

const ferry_objstore_backend ferry_objstore_sigv4_backend = {
    "sigv4", be_create, be_destroy, be_submit, be_pump, be_cancel_queued, NULL,
};
