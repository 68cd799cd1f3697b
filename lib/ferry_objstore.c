/* Backend-neutral part of ferry_objstore: configuration defaults, backend selection,
 * listings, the batch runner and the blocking helpers, all built on a backend's
 * submit/pump/cancel_queued. */
#include "ferry_objstore.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ferry_checksum.h"
#include "ferry_uri.h"
#include "objstore/objstore_internal.h"

struct ferry_objstore {
    const ferry_objstore_backend *be;
    void *impl;
    int max_in_flight;
    ferry_limiter *limiter; /* borrowed; NULL: max_in_flight is the limit */
};

void ferry_objstore_conf_init(ferry_objstore_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->backend = "sigv4";
    conf->region = "us-east-1";
    conf->path_style = 1;
    conf->connect_timeout_ms = 10000;
    conf->request_timeout_ms = 60000;
    conf->stall_timeout_ms = 120000;
    conf->max_in_flight = 16;
    conf->max_response_bytes = 16u << 20;
    conf->multipart_threshold = (uint64_t)5 << 30;
    conf->multipart_part_size = (uint64_t)256 << 20;
    conf->transfer_buffer_bytes = (size_t)1 << 20;
    conf->stream_checksums = 1;
}

ferry_objstore *ferry_objstore_new(const ferry_objstore_conf *conf, ferry_error *err)
{
    static const ferry_objstore_backend *const backends[] = {&ferry_objstore_sigv4_backend,
                                                             &ferry_objstore_libs3_backend};
    const char *name = conf->backend ? conf->backend : "sigv4";
    const ferry_objstore_backend *be = NULL;
    ferry_objstore *os;
    size_t i;

    for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (!strcmp(backends[i]->name, name))
            be = backends[i];
    if (!be) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                        "unknown object store backend \"%.40s\" (known: sigv4, libs3)", name);
        return NULL;
    }
    if (conf->max_in_flight < 1 || conf->max_in_flight > 1024) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                        "object store max_in_flight must be 1..1024 (got %d)",
                        conf->max_in_flight);
        return NULL;
    }
    os = calloc(1, sizeof(*os));
    if (!os) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
        return NULL;
    }
    os->be = be;
    os->max_in_flight = conf->max_in_flight;
    os->limiter = conf->limiter;
    os->impl = be->create(conf, err);
    if (!os->impl) {
        free(os);
        return NULL;
    }
    return os;
}

void ferry_objstore_destroy(ferry_objstore *os)
{
    if (!os)
        return;
    os->be->destroy(os->impl);
    free(os);
}

int ferry_objstore_max_in_flight(const ferry_objstore *os) { return os->max_in_flight; }

const char *ferry_objstore_backend_name(const ferry_objstore *os) { return os->be->name; }

const char *ferry_objstore_key_refused(const ferry_objstore *os, const char *key)
{
    return os->be->key_refused && key ? os->be->key_refused(key) : NULL;
}

void *ferry_objstore__impl(ferry_objstore *os, const ferry_objstore_backend *be)
{
    return os && os->be == be ? os->impl : NULL;
}

void ferry_objstore_listing_init(ferry_objstore_listing *l) { memset(l, 0, sizeof(*l)); }

void ferry_objstore_listing_free(ferry_objstore_listing *l)
{
    if (!l)
        return;
    free(l->entries);
    free(l->arena_);
    ferry_objstore_listing_init(l);
}

/* ---------------------------------------------------------------- listing builder */

void ferry_objstore__listing_begin(ferry_objstore_listing *l)
{
    l->count = 0;
    l->is_truncated = 0;
    l->next_token = NULL;
    l->skipped_dirs = 0;
    l->arena_len_ = 0;
}

#define NO_ETAG (SIZE_MAX - 1) /* etag_off_ of an entry without an ETag (SIZE_MAX: no memory) */

size_t ferry_objstore__listing_arena_add(ferry_objstore_listing *l, const char *s, size_t len)
{
    size_t off = l->arena_len_;

    if (l->arena_len_ + len + 1 > l->arena_cap_) {
        size_t cap = l->arena_cap_ ? l->arena_cap_ : 16384;
        char *p;
        while (cap < l->arena_len_ + len + 1)
            cap *= 2;
        p = realloc(l->arena_, cap);
        if (!p)
            return SIZE_MAX;
        l->arena_ = p;
        l->arena_cap_ = cap;
    }
    memcpy(l->arena_ + off, s, len);
    l->arena_[off + len] = '\0';
    l->arena_len_ += len + 1;
    return off;
}

int ferry_objstore__listing_reserve(ferry_objstore_listing *l)
{
    if (l->count == l->cap_) {
        size_t cap = l->cap_ ? l->cap_ * 2 : 1024;
        ferry_objstore_entry *p = realloc(l->entries, cap * sizeof(*p));
        if (!p)
            return -1;
        l->entries = p;
        l->cap_ = cap;
    }
    return 0;
}

int ferry_objstore__listing_add(ferry_objstore_listing *l, const char *key, size_t key_len,
                                uint64_t size, const char *etag, int64_t last_modified_ms)
{
    ferry_objstore_entry e;

    if (ferry_objstore__listing_reserve(l))
        return -1;
    memset(&e, 0, sizeof(e));
    e.key_len = key_len;
    e.size = size;
    e.last_modified_ms = last_modified_ms;
    e.key_off_ = ferry_objstore__listing_arena_add(l, key, key_len);
    e.etag_off_ = etag && *etag ? ferry_objstore__listing_arena_add(l, etag, strlen(etag))
                                : NO_ETAG;
    if (e.key_off_ == SIZE_MAX || e.etag_off_ == SIZE_MAX)
        return -1;
    l->entries[l->count++] = e;
    return 0;
}

int ferry_objstore__listing_add_prefix(ferry_objstore_listing *l, const char *prefix,
                                       size_t len)
{
    ferry_objstore_entry e;

    if (ferry_objstore__listing_reserve(l))
        return -1;
    memset(&e, 0, sizeof(e));
    e.key_len = len;
    e.is_prefix = 1;
    e.etag_off_ = NO_ETAG;
    if ((e.key_off_ = ferry_objstore__listing_arena_add(l, prefix, len)) == SIZE_MAX)
        return -1;
    l->entries[l->count++] = e;
    return 0;
}

/* U+10FFFF, the largest code point: P followed by it sorts after every key under P (keys
 * are UTF-8, compared byte-wise), so it is a start-after that skips the whole prefix. */
#define PAST_PREFIX "\xF4\x8F\xBF\xBF"

int ferry_objstore__listing_seal(ferry_objstore_listing *l, size_t last_key_off)
{
    size_t i, cursor = last_key_off, last_prefix = SIZE_MAX;

    for (i = 0; i < l->count; i++)
        if (l->entries[i].is_prefix)
            last_prefix = i;
    if (l->is_truncated && last_prefix != SIZE_MAX) {
        const ferry_objstore_entry *p = &l->entries[last_prefix];
        size_t n = p->key_len, off;
        char *past = malloc(n + sizeof(PAST_PREFIX));
        if (!past)
            return -1;
        memcpy(past, l->arena_ + p->key_off_, n);
        memcpy(past + n, PAST_PREFIX, sizeof(PAST_PREFIX));
        off = ferry_objstore__listing_arena_add(l, past, n + sizeof(PAST_PREFIX) - 1);
        free(past);
        if (off == SIZE_MAX)
            return -1;
        if (cursor == SIZE_MAX || strcmp(l->arena_ + off, l->arena_ + cursor) > 0)
            cursor = off;
    }
    /* Only now, with the arena done growing, can entries point into it. */
    for (i = 0; i < l->count; i++) {
        ferry_objstore_entry *e = &l->entries[i];
        e->key = l->arena_ + e->key_off_;
        e->etag = e->etag_off_ >= NO_ETAG ? "" : l->arena_ + e->etag_off_;
        e->upload_id = NULL;
    }
    l->next_token = l->is_truncated && cursor != SIZE_MAX ? l->arena_ + cursor : NULL;
    return 0;
}

int ferry_objstore__listing_end(ferry_objstore_listing *l, int is_truncated)
{
    size_t i, j, last_off = SIZE_MAX;

    for (i = 0, j = 0; i < l->count; i++) {
        ferry_objstore_entry e = l->entries[i];
        if (!e.is_prefix)
            last_off = e.key_off_;
        /* Same rule as the XML listing: a "dir/" entry without an ETag is a directory of a
         * file-system backed server, not an object. */
        if (!e.is_prefix && e.etag_off_ == NO_ETAG && e.key_len &&
            l->arena_[e.key_off_ + e.key_len - 1] == '/') {
            l->skipped_dirs++;
            continue;
        }
        l->entries[j++] = e;
    }
    l->count = j;
    l->is_truncated = is_truncated;
    return ferry_objstore__listing_seal(l, last_off);
}

void ferry_objstore_op_init(ferry_objstore_op *op, ferry_objstore_op_type type)
{
    memset(op, 0, sizeof(*op));
    op->type = type;
    op->src_size = FERRY_OBJSTORE_SIZE_UNKNOWN;
}

void ferry_objstore_submit(ferry_objstore *os, ferry_objstore_op *op)
{
    os->be->submit(os->impl, op);
}

size_t ferry_objstore_pump(ferry_objstore *os, int timeout_ms)
{
    return os->be->pump(os->impl, timeout_ms);
}

void ferry_objstore_cancel_queued(ferry_objstore *os) { os->be->cancel_queued(os->impl); }

/* ---------------------------------------------------------------- backend op queues */

void ferry_objstore__opq_push(ferry_objstore_opq *q, ferry_objstore_op *op)
{
    op->next_ = NULL;
    if (q->tail)
        q->tail->next_ = op;
    else
        q->head = op;
    q->tail = op;
}

ferry_objstore_op *ferry_objstore__opq_pop(ferry_objstore_opq *q)
{
    ferry_objstore_op *op = q->head;

    if (!op)
        return NULL;
    q->head = op->next_;
    if (!q->head)
        q->tail = NULL;
    op->next_ = NULL;
    return op;
}

void ferry_objstore__opqs_accept(ferry_objstore_opqs *qs, ferry_objstore_op *op)
{
    op->rc = FERRY_OK;
    ferry_error_clear(&op->err);
    op->http_status = 0;
    op->s3_code[0] = '\0';
    op->etag[0] = '\0';
    op->size = 0;
    op->last_modified_ms = 0;
    op->multipart = 0;
    op->src_failed = 0;
    op->get_data = NULL;
    op->get_len = 0;
    op->priv_ = NULL;
    op->next_ = NULL;
    qs->pending++;
}

void ferry_objstore__opqs_deliver(ferry_objstore_opqs *qs)
{
    ferry_objstore_op *op;

    /* Pop before the callback: it may submit, and so push onto done, again. */
    while ((op = ferry_objstore__opq_pop(&qs->done))) {
        qs->pending--;
        if (op->done)
            op->done(op, op->done_opaque);
    }
}

void ferry_objstore__opqs_cancel_queued(ferry_objstore_opqs *qs,
                                        const char *(*op_name)(const ferry_objstore_op *op))
{
    ferry_objstore_op *op;

    while ((op = ferry_objstore__opq_pop(&qs->queued))) {
        op->rc = ferry_error_set(&op->err, FERRY_ERR_CANCELLED, FERRY_EC_INTERNAL,
                                 "%s: not started: cancelled", op_name(op));
        ferry_objstore__opq_push(&qs->done, op);
    }
}

/* ---------------------------------------------------------------- exec */

static void exec_done(ferry_objstore_op *op, void *opaque)
{
    (void)op;
    *(int *)opaque = 1;
}

ferry_rc ferry_objstore_exec(ferry_objstore *os, ferry_objstore_op *op)
{
    int finished = 0;

    op->done = exec_done;
    op->done_opaque = &finished;
    ferry_objstore_submit(os, op);
    while (!finished)
        ferry_objstore_pump(os, 1000);
    return op->rc;
}

static void exec_all_done(ferry_objstore_op *op, void *opaque)
{
    (void)op;
    (*(size_t *)opaque)++;
}

void ferry_objstore_exec_all(ferry_objstore *const *stores, ferry_objstore_op *const *ops,
                             size_t n)
{
    size_t finished = 0, i;
    int one_store = 1;

    for (i = 0; i < n; i++) {
        one_store = one_store && stores[i] == stores[0];
        ops[i]->done = exec_all_done;
        ops[i]->done_opaque = &finished;
        ferry_objstore_submit(stores[i], ops[i]);
    }
    /* One store: wait on it. Several: take turns, none waited on for long, since an
     * answer may come from any of them. */
    while (finished < n)
        for (i = 0; i < n && finished < n; i++)
            if (i == 0 || stores[i] != stores[i - 1])
                ferry_objstore_pump(stores[i], one_store ? 1000 : 2);
}

/* ---------------------------------------------------------------- batch */

typedef struct batch {
    const ferry_objstore_batch_opts *opts;
    ferry_limiter *limiter;
    size_t in_flight, finished;
} batch;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Latency says something about the store's load only for requests whose time is not
 * dominated by their size: small copies and uploads. HEAD, LIST and DELETE cost
 * differently and are left out, so the floor compares like with like. */
#define SAMPLE_MAX_BYTES ((uint64_t)8 << 20)

static int throttled(const ferry_objstore_op *op)
{
    return op->http_status == 503 || op->http_status == 429 ||
           !strcmp(op->s3_code, "SlowDown") || !strcmp(op->s3_code, "Throttling") ||
           !strcmp(op->s3_code, "ThrottlingException") ||
           !strcmp(op->s3_code, "RequestLimitExceeded");
}

static void limiter_release(ferry_limiter *l, const ferry_objstore_op *op)
{
    int64_t now = mono_us(), rtt = -1;
    ferry_limiter_outcome o = FERRY_LIMITER_IGNORE;

    if (op->rc == FERRY_OK) {
        int sized = (op->type == FERRY_OBJSTORE_OP_COPY ||
                     op->type == FERRY_OBJSTORE_OP_TRANSFER)
                        ? op->src_size <= SAMPLE_MAX_BYTES
                        : op->type == FERRY_OBJSTORE_OP_PUT && op->put_len <= SAMPLE_MAX_BYTES;
        if (sized && !op->multipart) {
            o = FERRY_LIMITER_OK;
            rtt = now - op->started_us_;
        }
    } else if (op->rc != FERRY_ERR_CANCELLED && throttled(op)) {
        o = FERRY_LIMITER_THROTTLED;
    }
    ferry_limiter_release(l, now, rtt, o);
}

static void batch_done(ferry_objstore_op *op, void *opaque)
{
    batch *b = opaque;

    b->in_flight--;
    b->finished++;
    if (b->limiter)
        limiter_release(b->limiter, op);
    if (b->opts && b->opts->done)
        b->opts->done(op, b->opts->opaque);
}

ferry_rc ferry_objstore_run_batch(ferry_objstore *os, ferry_objstore_op *ops, size_t n,
                                  const ferry_objstore_batch_opts *opts)
{
    batch b = {opts, os->limiter, 0, 0};
    size_t next = 0, limit = (size_t)os->max_in_flight;
    int cancelled = 0;

    if (opts && opts->max_in_flight > 0 && (size_t)opts->max_in_flight < limit)
        limit = (size_t)opts->max_in_flight;
    if (b.limiter && n > 0)
        ferry_limiter_join(b.limiter);
    while (b.finished < n) {
        int refused = 0;
        while (!cancelled && next < n && b.in_flight < limit) {
            if (b.limiter && !ferry_limiter_try_acquire(b.limiter, (int)b.in_flight)) {
                refused = 1;
                break;
            }
            if (opts && opts->cancelled && opts->cancelled(opts->opaque)) {
                if (b.limiter)
                    ferry_limiter_release(b.limiter, mono_us(), -1, FERRY_LIMITER_IGNORE);
                cancelled = 1;
                break;
            }
            ops[next].done = batch_done;
            ops[next].done_opaque = &b;
            ops[next].started_us_ = mono_us();
            b.in_flight++;
            ferry_objstore_submit(os, &ops[next++]);
        }
        /* Ops never started complete at once, in order, with CANCELLED. */
        for (; cancelled && next < n; next++) {
            ferry_objstore_op *op = &ops[next];
            op->rc = ferry_error_set(&op->err, FERRY_ERR_CANCELLED, FERRY_EC_INTERNAL,
                                     "not started: cancelled");
            op->done = NULL;
            op->done_opaque = NULL;
            b.finished++;
            if (opts && opts->done)
                opts->done(op, opts->opaque);
        }
        if (b.finished >= n)
            break;
        if (refused && b.in_flight == 0) {
            /* Other migrations hold the endpoint's whole limit: wait for a permit instead
             * of spinning. (The cancel check runs when a permit is granted: it is called
             * once per op started, and callers count on that.) */
            ferry_limiter_wait(b.limiter, 50);
            continue;
        }
        ferry_objstore_pump(os, 1000);
    }
    if (b.limiter && n > 0)
        ferry_limiter_leave(b.limiter);
    return cancelled ? FERRY_ERR_CANCELLED : FERRY_OK;
}

/* ---------------------------------------------------------------- blocking helpers */

static ferry_rc finish(ferry_objstore_op *op, ferry_error *err)
{
    if (op->rc != FERRY_OK && err)
        *err = op->err;
    return op->rc;
}

/* HEAD and TRANSFER report the object the same way. */
static void fill_info(const ferry_objstore_op *op, ferry_objstore_info *info)
{
    info->size = op->size;
    memcpy(info->etag, op->etag, sizeof(info->etag));
    info->last_modified_ms = op->last_modified_ms;
}

static ferry_rc bucket_call(ferry_objstore *os, ferry_objstore_op_type type, const char *bucket,
                            ferry_error *err)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, type);
    op.bucket = bucket;
    ferry_objstore_exec(os, &op);
    return finish(&op, err);
}

ferry_rc ferry_objstore_head_bucket(ferry_objstore *os, const char *bucket, ferry_error *err)
{
    return bucket_call(os, FERRY_OBJSTORE_OP_HEAD_BUCKET, bucket, err);
}

ferry_rc ferry_objstore_create_bucket(ferry_objstore *os, const char *bucket, ferry_error *err)
{
    return bucket_call(os, FERRY_OBJSTORE_OP_CREATE_BUCKET, bucket, err);
}

ferry_rc ferry_objstore_list(ferry_objstore *os, const char *bucket, const char *prefix,
                             const char *start_after, const char *continuation_token,
                             int max_keys, ferry_objstore_listing *out, ferry_error *err)
{
    return ferry_objstore_list_delimited(os, bucket, prefix, NULL, start_after,
                                         continuation_token, max_keys, out, err);
}

ferry_rc ferry_objstore_list_delimited(ferry_objstore *os, const char *bucket,
                                       const char *prefix, const char *delimiter,
                                       const char *start_after, const char *continuation_token,
                                       int max_keys, ferry_objstore_listing *out,
                                       ferry_error *err)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_LIST);
    op.bucket = bucket;
    op.prefix = prefix;
    op.delimiter = delimiter;
    op.start_after = start_after;
    op.continuation_token = continuation_token;
    op.max_keys = max_keys;
    op.listing = out;
    ferry_objstore_exec(os, &op);
    return finish(&op, err);
}

ferry_rc ferry_objstore_head(ferry_objstore *os, const char *bucket, const char *key,
                             ferry_objstore_info *info, ferry_error *err)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_HEAD);
    op.bucket = bucket;
    op.key = key;
    if (ferry_objstore_exec(os, &op) == FERRY_OK && info)
        fill_info(&op, info);
    return finish(&op, err);
}

ferry_rc ferry_objstore_copy(ferry_objstore *os, const char *src_bucket, const char *src_key,
                             const char *dst_bucket, const char *dst_key,
                             char etag_out[FERRY_OBJSTORE_ETAG_MAX], ferry_error *err)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_COPY);
    op.src_bucket = src_bucket;
    op.src_key = src_key;
    op.bucket = dst_bucket;
    op.key = dst_key;
    if (ferry_objstore_exec(os, &op) == FERRY_OK && etag_out)
        memcpy(etag_out, op.etag, FERRY_OBJSTORE_ETAG_MAX);
    return finish(&op, err);
}

ferry_rc ferry_objstore_put(ferry_objstore *os, const char *bucket, const char *key,
                            const void *data, size_t len, const char *content_type,
                            char etag_out[FERRY_OBJSTORE_ETAG_MAX], ferry_error *err)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_PUT);
    op.bucket = bucket;
    op.key = key;
    op.put_data = data;
    op.put_len = len;
    op.content_type = content_type;
    if (ferry_objstore_exec(os, &op) == FERRY_OK && etag_out)
        memcpy(etag_out, op.etag, FERRY_OBJSTORE_ETAG_MAX);
    return finish(&op, err);
}

ferry_rc ferry_objstore_get(ferry_objstore *os, const char *bucket, const char *key,
                            size_t max_size, char **data, size_t *len, ferry_error *err)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_GET);
    op.bucket = bucket;
    op.key = key;
    op.max_size = max_size;
    *data = NULL;
    if (len)
        *len = 0;
    if (ferry_objstore_exec(os, &op) == FERRY_OK) {
        *data = op.get_data;
        if (len)
            *len = op.get_len;
    } else {
        free(op.get_data);
    }
    return finish(&op, err);
}

ferry_rc ferry_objstore_delete(ferry_objstore *os, const char *bucket, const char *key,
                               ferry_error *err)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_DELETE);
    op.bucket = bucket;
    op.key = key;
    ferry_objstore_exec(os, &op);
    return finish(&op, err);
}

ferry_rc ferry_objstore_transfer(ferry_objstore *dst, ferry_objstore *src,
                                 const char *src_bucket, const char *src_key,
                                 const char *dst_bucket, const char *dst_key,
                                 ferry_objstore_info *info, ferry_error *err)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_TRANSFER);
    op.src_store = src;
    op.src_bucket = src_bucket;
    op.src_key = src_key;
    op.bucket = dst_bucket;
    op.key = dst_key;
    if (ferry_objstore_exec(dst, &op) == FERRY_OK && info)
        fill_info(&op, info);
    return finish(&op, err);
}

/* ---------------------------------------------------------------- classification */

static int code_in(const char *code, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(code, *list))
            return 1;
    return 0;
}

const char *ferry_objstore_classify(int http_status, const char *code, ferry_rc *rc)
{
    static const char *const retry_codes[] = {
        "SlowDown",           "InternalError",
        "ServiceUnavailable", "RequestTimeout",
        "OperationAborted",   "ConditionalRequestConflict",
        "Throttling",         "ThrottlingException",
        "RequestThrottled",   "TooManyRequests",
        "ExpiredToken",       "TokenRefreshRequired",
        "IncompleteBody",     NULL};
    static const char *const auth_codes[] = {
        "SignatureDoesNotMatch", "InvalidAccessKeyId",
        "AccessDenied",          "InvalidToken",
        "ExpiredToken",          "TokenRefreshRequired",
        "RequestTimeTooSkewed",  "AuthorizationHeaderMalformed",
        "InvalidSecurity",       "AccountProblem",
        "AllAccessDisabled",     "NotSignedUp",
        "MissingSecurityHeader", NULL};
    static const char *const notfound_codes[] = {"NoSuchBucket", "NoSuchKey", "NoSuchUpload",
                                                 "NotFound", NULL};

    if (!code)
        code = "";
    /* 501 NotImplemented: a header or feature the store does not have (e.g. aws-chunked
     * trailers). Asking again changes nothing; it is not an outage either. */
    if ((http_status >= 500 && http_status != 501 && strcmp(code, "NotImplemented") != 0) ||
        http_status == 429 || http_status == 408 || code_in(code, retry_codes)) {
        *rc = FERRY_ERR_RETRYABLE;
        /* An expired STS token is an auth problem that a credential refresh fixes. */
        return code_in(code, auth_codes) ? FERRY_EC_S3_AUTH : FERRY_EC_S3_SERVER;
    }
    *rc = FERRY_ERR_PERMANENT;
    if (http_status == 401 || http_status == 403 || code_in(code, auth_codes))
        return FERRY_EC_S3_AUTH;
    if (http_status == 404 || code_in(code, notfound_codes))
        return FERRY_EC_S3_NOT_FOUND;
    return FERRY_EC_S3_CLIENT;
}

const char *ferry_objstore_checksum_algo(const char *name, size_t len)
{
    return ferry_checksum_algo_name(ferry_checksum_algo_parse_n(name, len));
}

int ferry_objstore_checksum_composite(const char *checksum, const char *type)
{
    return strchr(checksum, '-') != NULL || (type && !strcmp(type, "COMPOSITE"));
}

/* AWS S3 answers a request it cannot serve because the caller may not use the object's KMS
 * key with a plain 403 AccessDenied; only the message tells ("The ciphertext refers to a
 * customer master key that does not exist, does not exist in this region, or you are not
 * allowed to access.", or "... is not authorized to perform: kms:Decrypt ..."). msg is the
 * op's error message, "<context>: 403 AccessDenied: <S3 message>": only the S3 message
 * after the last "AccessDenied: " is searched, so a key named "kms:..." changes nothing. */
static int access_denied_by_kms(const char *msg)
{
    static const char *const marks[] = {"customer master key", "kms:", "KMS key", "KMS.", NULL};
    const char *tail = NULL, *p = msg;
    const char *const *m;

    while (p && (p = strstr(p, "AccessDenied: ")) != NULL) {
        tail = p + strlen("AccessDenied: ");
        p = tail;
    }
    if (!tail)
        return 0;
    for (m = marks; *m; m++)
        if (strstr(tail, *m))
            return 1;
    return 0;
}

ferry_objstore_scope ferry_objstore_object_scope(ferry_rc rc, int http_status, const char *code,
                                                 const char *msg, const char **cls)
{
    static const char *const archived[] = {"InvalidObjectState", "ObjectNotInActiveTierError",
                                           NULL};
    static const char *const invalid_key[] = {"KeyTooLongError", "InvalidObjectName",
                                              "XMinioInvalidObjectName", NULL};
    ferry_rc ignored;

    if (!code)
        code = "";
    *cls = ferry_objstore_classify(http_status, code, &ignored);
    if (rc == FERRY_ERR_RETRYABLE)
        return FERRY_SCOPE_ENDPOINT;
    if (rc != FERRY_ERR_PERMANENT)
        return FERRY_SCOPE_DATASET;
    if (!strcmp(code, "NoSuchKey")) {
        *cls = FERRY_EC_VANISHED;
        return FERRY_SCOPE_VANISHED;
    }
    if (code_in(code, archived)) {
        *cls = FERRY_EC_S3_ARCHIVED;
        return FERRY_SCOPE_OBJECT;
    }
    if (!strncmp(code, "KMS.", 4) || !strcmp(code, "KMSAccessDenied")) {
        *cls = FERRY_EC_S3_KMS;
        return FERRY_SCOPE_OBJECT;
    }
    if (code_in(code, invalid_key)) {
        *cls = FERRY_EC_S3_INVALID_KEY;
        return FERRY_SCOPE_OBJECT;
    }
    /* The target refused a stream's bytes against the source's checksum sent with them
     * (copy.stream_checksums): the source's data does not match its own checksum, or the
     * bytes changed on the way. That object's problem; a replay copies it again. */
    if (!strcmp(code, "BadDigest")) {
        *cls = FERRY_EC_S3_BAD_DIGEST;
        return FERRY_SCOPE_OBJECT;
    }
    /* AccessDenied on one key (a bucket policy or ACL on that object): the validation
     * before the copy proved the credentials list the source and write the target, so
     * this is about the object. Wrong credentials show other codes
     * (InvalidAccessKeyId, SignatureDoesNotMatch) and stay dataset-wide. */
    if (!strcmp(code, "AccessDenied")) {
        if (msg && access_denied_by_kms(msg))
            *cls = FERRY_EC_S3_KMS;
        return FERRY_SCOPE_OBJECT;
    }
    return FERRY_SCOPE_DATASET;
}

/* ---------------------------------------------------------------- backend helpers */

void ferry_objstore__show(char *out, size_t size, const char *bucket, const char *key)
{
    const size_t max_key = 100;
    size_t o, i, klen;

    o = (size_t)snprintf(out, size, "%s%s", bucket ? bucket : "", key ? "/" : "");
    if (o >= size || !key)
        return;
    klen = strlen(key);
    for (i = 0; i < klen && o + 4 < size; i++) {
        unsigned char c = (unsigned char)key[i];
        if (i >= max_key && (c & 0xC0) != 0x80) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        out[o++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    out[o] = '\0';
}

void ferry_objstore__clean_text(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F)
            *s = ' ';
}

void ferry_objstore__wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

int ferry_objstore__bucket_ok(const char *b)
{
    const char *p;

    if (!b || !*b || strlen(b) > 255)
        return 0;
    for (p = b; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '/' || *p == 0x7F)
            return 0;
    return 1;
}

const char *ferry_objstore__list_args_bad(const ferry_objstore_op *op)
{
    if (!ferry_objstore__bucket_ok(op->bucket))
        return "missing or invalid bucket";
    if (!op->listing)
        return "LIST without a listing to fill";
    if (op->max_keys < 0 || op->max_keys > 1000)
        return "max_keys must be 0..1000";
    /* a cursor may be a common prefix followed by one 4-byte code point (listing_seal) */
    if ((op->prefix && strlen(op->prefix) > FERRY_URI_KEY_MAX) ||
        (op->start_after && strlen(op->start_after) > FERRY_URI_KEY_MAX + 4) ||
        (op->continuation_token && strlen(op->continuation_token) > FERRY_URI_KEY_MAX + 4))
        return "prefix, start_after or continuation token too long";
    if (op->delimiter && (!*op->delimiter || strlen(op->delimiter) > 16))
        return "delimiter must be 1..16 bytes";
    return NULL;
}
