/* The opt-in "libs3" ferry_objstore backend: Debian's libs3 2.0, for stores that accept only
 * AWS Signature Version 2 (conf.backend = "libs3").
 *
 * What libs3 2.0 cannot do, and what this backend does about it:
 *   - Signature V2 only: AWS refuses V2 for buckets created since mid-2020, R2 and B2 never
 *     accepted it. Use the default sigv4 backend wherever V4 works.
 *   - It never verifies TLS certificates (CURLOPT_SSL_VERIFYPEER is off in 2.0). An https
 *     endpoint is refused unless conf.insecure_tls_ok is set; conf.ca_file is refused.
 *   - No multipart API: a COPY of an object above 5 GiB (CopyObject's limit) fails PERMANENT
 *     before any request is sent; TRANSFER, LIST_UPLOADS and ABORT_UPLOAD are refused.
 *   - No conditional writes: if_none_match is refused. src_if_match on COPY is checked after
 *     the copy by comparing the new object's ETag (a single-part CopyObject keeps the
 *     source's MD5 ETag): a mismatch fails the op with 412, as S3 would have.
 *   - S3_copy_object returns an empty ETag, and a PUT's response properties are taken
 *     before the response arrives (libs3 2.0 fires its properties callback at the first
 *     upload read), so its ETag is empty too: every COPY and PUT is followed by a HEAD of
 *     the new object, whose ETag (and size) the op returns for verification.
 *   - HEAD_BUCKET is S3_test_bucket (GetBucketLocation) and then a one-key ListObjects:
 *     S3Proxy answers GetBucketLocation with 200 even for a bucket that does not exist.
 *   - It maps a truncated response body (CURLE_PARTIAL_FILE) to success: GET checks the
 *     byte count against Content-Length itself.
 *   - No session token (STS) and no region (V2 has none): conf.session_token is refused.
 *   - Fixed timeouts: a transfer slower than 1 KiB/s for 15 s is aborted; connect and
 *     request timeouts from conf are not applied. It follows redirects (up to 10).
 *   - Keys are percent-encoded by libs3 in the path, but not in x-amz-copy-source: we pass
 *     the source key already encoded there.
 *
 * Concurrency: ops run through one S3RequestContext (libs3's curl multi) per store, up to
 * max_in_flight at a time, driven from pump() -- the same submit/pump contract as sigv4.
 * S3_initialize() is global and not thread-safe: it runs once per process (pthread_once)
 * and is never undone. Credentials are copied, wiped on destroy and never logged. */
#include "ferry_objstore.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>

#include <libs3.h>

#include "ferry_log.h"
#include "ferry_uri.h"
#include "objstore/objstore_internal.h"

#define MAX_COPY ((uint64_t)5 << 30) /* CopyObject's limit; libs3 2.0 has no multipart */
#define ENC_KEY_MAX (3 * FERRY_URI_KEY_MAX + 1)

enum lstep { L_PRE_HEAD, L_MAIN, L_POST_HEAD };

typedef struct libs3 libs3;

/* State of one running op; op->priv_ points here. */
typedef struct lop {
    libs3 *s;
    ferry_objstore_op *op;
    struct lop *next;
    enum lstep step;
    int finished; /* the request's complete callback ran; result below */
    S3Status status;
    char detail[400]; /* S3's error message, or our own reason for an abort */
    int too_large;
    int count_mismatch;
    /* response properties (2xx only) */
    int have_props;
    uint64_t clen;
    char etag[FERRY_OBJSTORE_ETAG_MAX];
    int64_t last_modified_ms;
    /* GET */
    char *body;
    size_t body_len, body_cap, limit;
    /* PUT */
    size_t put_off;
    S3PutProperties props;
    /* COPY */
    char enc_src[ENC_KEY_MAX];
    char copy_etag[FERRY_OBJSTORE_ETAG_MAX];
    int64_t copy_lm;
    /* LIST */
    int list_truncated;
    int list_oom;
    /* HEAD_BUCKET */
    char location[128];
    S3BucketContext bc;
} lop;

struct libs3 {
    char *host; /* "host[:port]" */
    S3Protocol protocol;
    S3UriStyle uri_style;
    char *access_key, *secret_key;
    char *region;
    size_t max_response;
    int max_in_flight;
    S3RequestContext *ctx;
    ferry_objstore_opqs ops; /* waiting to start, finished with callback due */
    lop *active;
    int nactive;
    int running; /* requests inside the request context */
};

/* ---------------------------------------------------------------- helpers */

static const char *step_name(const ferry_objstore_op *op, enum lstep st)
{
    if (st != L_MAIN)
        return op->type == FERRY_OBJSTORE_OP_HEAD_BUCKET ? "HeadBucket" : "HeadObject";
    switch (op->type) {
    case FERRY_OBJSTORE_OP_HEAD: return "HeadObject";
    case FERRY_OBJSTORE_OP_COPY: return "CopyObject";
    case FERRY_OBJSTORE_OP_PUT: return "PutObject";
    case FERRY_OBJSTORE_OP_GET: return "GetObject";
    case FERRY_OBJSTORE_OP_DELETE: return "DeleteObject";
    case FERRY_OBJSTORE_OP_LIST: return "ListObjects";
    case FERRY_OBJSTORE_OP_HEAD_BUCKET: return "HeadBucket";
    case FERRY_OBJSTORE_OP_CREATE_BUCKET: return "CreateBucket";
    case FERRY_OBJSTORE_OP_TRANSFER: return "Transfer";
    case FERRY_OBJSTORE_OP_LIST_UPLOADS: return "ListMultipartUploads";
    case FERRY_OBJSTORE_OP_ABORT_UPLOAD: return "AbortMultipartUpload";
    }
    return "request";
}

static void set_op_error(ferry_objstore_op *op, enum lstep st, ferry_rc rc, const char *cls,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void set_op_error(ferry_objstore_op *op, enum lstep st, ferry_rc rc, const char *cls,
                         const char *fmt, ...)
{
    char a[240], b[240], detail[420];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (op->type == FERRY_OBJSTORE_OP_COPY) {
        ferry_objstore__show(a, sizeof(a), op->src_bucket, op->src_key);
        ferry_objstore__show(b, sizeof(b), op->bucket, op->key);
        op->rc = ferry_error_set(&op->err, rc, cls, "CopyObject %s -> %s: %s%s", a, b,
                                 st == L_PRE_HEAD    ? "HeadObject of the source: "
                                 : st == L_POST_HEAD ? "HeadObject of the copy: "
                                                     : "",
                                 detail);
        return;
    }
    if (op->type == FERRY_OBJSTORE_OP_PUT && st == L_POST_HEAD) {
        ferry_objstore__show(a, sizeof(a), op->bucket, op->key);
        op->rc = ferry_error_set(&op->err, rc, cls, "PutObject %s: HeadObject after it: %s", a,
                                 detail);
        return;
    }
    if (op->type == FERRY_OBJSTORE_OP_LIST || op->type == FERRY_OBJSTORE_OP_HEAD_BUCKET ||
        op->type == FERRY_OBJSTORE_OP_CREATE_BUCKET)
        ferry_objstore__show(a, sizeof(a), op->bucket,
                             op->type == FERRY_OBJSTORE_OP_LIST && op->prefix && *op->prefix
                                 ? op->prefix
                                 : NULL);
    else
        ferry_objstore__show(a, sizeof(a), op->bucket, op->key);
    op->rc = ferry_error_set(&op->err, rc, cls, "%s %s: %s", step_name(op, st), a, detail);
}

static void strip_etag(const char *in, char *out, size_t size)
{
    size_t len;

    out[0] = '\0';
    if (!in)
        return;
    while (*in == ' ' || *in == '"')
        in++;
    len = strlen(in);
    while (len && (in[len - 1] == ' ' || in[len - 1] == '"'))
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(out, in, len);
    out[len] = '\0';
}

/* HTTP status S3 uses for an error code libs3 reported (libs3 2.0 does not pass the
 * status on); the worker reads 404 and 412. */
static int status_for_code(const char *code)
{
    static const struct {
        const char *code;
        int status;
    } map[] = {
        {"NoSuchKey", 404},
        {"NoSuchBucket", 404},
        {"AccessDenied", 403},
        {"InvalidAccessKeyId", 403},
        {"SignatureDoesNotMatch", 403},
        {"AccountProblem", 403},
        {"RequestTimeTooSkewed", 403},
        {"InvalidSecurity", 403},
        {"NotSignedUp", 403},
        {"PreconditionFailed", 412},
        {"InternalError", 500},
        {"SlowDown", 503},
        {"BucketAlreadyExists", 409},
        {"BucketAlreadyOwnedByYou", 409},
        {"BucketNotEmpty", 409},
        {"OperationAborted", 409},
        {"InvalidRange", 416},
        {"MethodNotAllowed", 405},
        {"MissingContentLength", 411},
        {"NotImplemented", 501},
        {"PermanentRedirect", 301},
        {"TemporaryRedirect", 307},
        {"Redirect", 307},
        {"EntityTooLarge", 400},
        {"ExpiredToken", 400},
        {"RequestTimeout", 400},
    };
    size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(map[i].code, code))
            return map[i].status;
    return 400;
}

/* Turns a libs3 status into the op's error (classified like the sigv4 backend). */
static void fail_status(lop *l, enum lstep st)
{
    ferry_objstore_op *op = l->op;
    const char *name = S3_get_status_name(l->status);
    const char *detail = l->detail[0] ? l->detail : "(no message)";
    const char *cls;
    ferry_rc rc;

    op->s3_code[0] = '\0';
    op->http_status = 0;
    switch (l->status) {
    case S3StatusNameLookupError:
    case S3StatusFailedToConnect:
    case S3StatusConnectionFailed:
    case S3StatusInterrupted:
    case S3StatusInternalError: /* libs3 2.0 reports most curl failures (resets) as this */
        set_op_error(op, st, FERRY_ERR_RETRYABLE, FERRY_EC_S3_NETWORK, "libs3 %s", name);
        return;
    case S3StatusOutOfMemory:
        set_op_error(op, st, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        return;
    case S3StatusServerFailedVerification:
        set_op_error(op, st, FERRY_ERR_PERMANENT, FERRY_EC_S3_NETWORK, "libs3 %s", name);
        return;
    case S3StatusAbortedByCallback:
        if (l->too_large)
            set_op_error(op, st, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT, "%s", detail);
        else
            set_op_error(op, st, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "%s", detail);
        return;
    case S3StatusErrorUnknown:
        /* An error document whose Code libs3 2.0 does not know (ServiceUnavailable,
         * InvalidRequest, ...). It hides the code and the status, so retry (bounded)
         * rather than dead-letter something that may be transient. */
        set_op_error(op, st, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                     "error not known to libs3 2.0: %s", detail);
        return;
    case S3StatusXmlParseFailure:
        /* The body was not the XML libs3 expected -- in practice an error page (a 502
         * from a load balancer, a 500 from the server itself; tried: moto's 500s under
         * load). libs3 2.0 hides the status behind it, so retry (bounded) as a server
         * error rather than dead-letter the dataset as a client error. */
        set_op_error(op, st, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                     "libs3 could not parse the response (an error page? status hidden "
                     "by libs3 2.0)");
        return;
    case S3StatusHttpErrorUnknown:
        set_op_error(op, st, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                     "HTTP error (status not reported by libs3 2.0)");
        return;
    case S3StatusHttpErrorMovedTemporarily:
        op->http_status = 307; /* libs3 follows redirects; this is one too many */
        break;
    case S3StatusHttpErrorBadRequest: op->http_status = 400; break;
    case S3StatusHttpErrorForbidden: op->http_status = 403; break;
    case S3StatusHttpErrorNotFound: op->http_status = 404; break;
    case S3StatusHttpErrorConflict: op->http_status = 409; break;
    default:
        if (!strncmp(name, "Error", 5) && name[5]) {
            snprintf(op->s3_code, sizeof(op->s3_code), "%s", name + 5);
            op->http_status = status_for_code(op->s3_code);
            break;
        }
        /* libs3 refused to build the request: bad bucket name, key or header too long. */
        set_op_error(op, st, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT, "libs3 %s", name);
        return;
    }
    cls = ferry_objstore_classify(op->http_status, op->s3_code, &rc);
    if (op->s3_code[0])
        set_op_error(op, st, rc, cls, "%d %s: %s", op->http_status, op->s3_code, detail);
    else
        set_op_error(op, st, rc, cls, "HTTP %d%s", op->http_status,
                     op->http_status == 404   ? " Not Found"
                     : op->http_status == 403 ? " Forbidden"
                     : op->http_status == 400 ? " Bad Request"
                                              : "");
}

/* ---------------------------------------------------------------- libs3 callbacks */

static S3Status on_props(const S3ResponseProperties *p, void *data)
{
    lop *l = data;

    l->have_props = 1;
    l->clen = p->contentLength;
    strip_etag(p->eTag, l->etag, sizeof(l->etag));
    l->last_modified_ms = p->lastModified >= 0 ? p->lastModified * 1000 : 0;
    if (l->op->type == FERRY_OBJSTORE_OP_GET && l->step == L_MAIN &&
        p->contentLength > l->limit) {
        l->too_large = 1;
        snprintf(l->detail, sizeof(l->detail), "object is larger than the %zu bytes allowed",
                 l->limit);
        return S3StatusAbortedByCallback;
    }
    return S3StatusOK;
}

static void on_complete(S3Status status, const S3ErrorDetails *ed, void *data)
{
    lop *l = data;

    l->finished = 1;
    l->s->running--;
    /* An abort we asked for keeps our own reason. */
    if (l->status == S3StatusAbortedByCallback && status != S3StatusOK)
        return;
    l->status = status;
    if (status != S3StatusOK && ed && ed->message && !l->detail[0]) {
        snprintf(l->detail, sizeof(l->detail), "%s", ed->message);
        ferry_objstore__clean_text(l->detail);
    }
}

static S3Status on_get_data(int size, const char *buf, void *data)
{
    lop *l = data;
    size_t n = (size_t)size;

    if (l->body_len + n > l->limit) {
        l->too_large = 1;
        l->status = S3StatusAbortedByCallback;
        snprintf(l->detail, sizeof(l->detail), "object is larger than the %zu bytes allowed",
                 l->limit);
        return S3StatusAbortedByCallback;
    }
    if (l->body_len + n + 1 > l->body_cap) {
        size_t cap = l->body_cap ? l->body_cap : 4096;
        char *p;
        while (cap < l->body_len + n + 1)
            cap *= 2;
        if (l->have_props && l->clen + 1 > cap && l->clen <= l->limit)
            cap = (size_t)l->clen + 1;
        p = realloc(l->body, cap);
        if (!p) {
            l->status = S3StatusAbortedByCallback;
            snprintf(l->detail, sizeof(l->detail), "out of memory");
            return S3StatusAbortedByCallback;
        }
        l->body = p;
        l->body_cap = cap;
    }
    memcpy(l->body + l->body_len, buf, n);
    l->body_len += n;
    return S3StatusOK;
}

static int on_put_data(int size, char *buf, void *data)
{
    lop *l = data;
    size_t left = l->op->put_len - l->put_off, n = (size_t)size;

    if (n > left)
        n = left;
    if (n) {
        memcpy(buf, (const char *)l->op->put_data + l->put_off, n);
        l->put_off += n;
    }
    return (int)n;
}

static S3Status list_oom(lop *l)
{
    l->list_oom = 1;
    l->status = S3StatusAbortedByCallback;
    snprintf(l->detail, sizeof(l->detail), "out of memory");
    return S3StatusAbortedByCallback;
}

static S3Status on_list(int truncated, const char *next_marker, int n,
                        const S3ListBucketContent *c, int nprefixes, const char **prefixes,
                        void *data)
{
    lop *l = data;
    int i;

    (void)next_marker;
    l->list_truncated = truncated;
    if (l->op->type != FERRY_OBJSTORE_OP_LIST)
        return S3StatusOK; /* HEAD_BUCKET's existence check: the answer is enough */
    for (i = 0; i < n; i++) {
        char etag[FERRY_OBJSTORE_ETAG_MAX];
        size_t klen = strlen(c[i].key);
        if (klen > FERRY_URI_KEY_MAX) {
            l->status = S3StatusAbortedByCallback;
            snprintf(l->detail, sizeof(l->detail), "key longer than 1024 bytes in listing");
            return S3StatusAbortedByCallback;
        }
        strip_etag(c[i].eTag, etag, sizeof(etag));
        if (ferry_objstore__listing_add(l->op->listing, c[i].key, klen, c[i].size, etag,
                                        c[i].lastModified >= 0 ? c[i].lastModified * 1000 : 0))
            return list_oom(l);
    }
    for (i = 0; i < nprefixes; i++)
        if (ferry_objstore__listing_add_prefix(l->op->listing, prefixes[i],
                                               strlen(prefixes[i])))
            return list_oom(l);
    return S3StatusOK;
}

static const S3ResponseHandler resp_handler = {on_props, on_complete};
static const S3GetObjectHandler get_handler = {{on_props, on_complete}, on_get_data};
static const S3PutObjectHandler put_handler = {{on_props, on_complete}, on_put_data};
static const S3ListBucketHandler list_handler = {{on_props, on_complete}, on_list};

/* ---------------------------------------------------------------- running ops */

static void push_done(libs3 *s, ferry_objstore_op *op)
{
    ferry_objstore__opq_push(&s->ops.done, op);
}

/* Starts step st of l's op inside the request context. */
static void issue(libs3 *s, lop *l, enum lstep st)
{
    ferry_objstore_op *op = l->op;
    const char *marker;

    l->step = st;
    l->finished = 0;
    l->status = S3StatusOK;
    l->detail[0] = '\0';
    l->have_props = 0;
    l->clen = 0;
    l->etag[0] = '\0';
    l->last_modified_ms = 0;
    memset(&l->bc, 0, sizeof(l->bc));
    l->bc.hostName = s->host;
    l->bc.bucketName = st == L_PRE_HEAD ? op->src_bucket : op->bucket;
    l->bc.protocol = s->protocol;
    l->bc.uriStyle = s->uri_style;
    l->bc.accessKeyId = s->access_key;
    l->bc.secretAccessKey = s->secret_key;
    s->running++;

    if (st == L_POST_HEAD && op->type == FERRY_OBJSTORE_OP_HEAD_BUCKET) {
        S3_list_bucket(&l->bc, NULL, NULL, NULL, 1, s->ctx, &list_handler, l);
        return;
    }
    if (st != L_MAIN) {
        S3_head_object(&l->bc, st == L_PRE_HEAD ? op->src_key : op->key, s->ctx, &resp_handler,
                       l);
        return;
    }
    switch (op->type) {
    case FERRY_OBJSTORE_OP_HEAD:
        S3_head_object(&l->bc, op->key, s->ctx, &resp_handler, l);
        break;
    case FERRY_OBJSTORE_OP_GET:
        l->limit = op->max_size ? op->max_size : s->max_response;
        S3_get_object(&l->bc, op->key, NULL, 0, 0, s->ctx, &get_handler, l);
        break;
    case FERRY_OBJSTORE_OP_PUT:
        memset(&l->props, 0, sizeof(l->props));
        l->props.contentType = op->content_type ? op->content_type : "application/octet-stream";
        l->props.expires = -1;
        l->put_off = 0;
        S3_put_object(&l->bc, op->key, op->put_len, &l->props, s->ctx, &put_handler, l);
        break;
    case FERRY_OBJSTORE_OP_DELETE:
        S3_delete_object(&l->bc, op->key, s->ctx, &resp_handler, l);
        break;
    case FERRY_OBJSTORE_OP_COPY:
        /* libs3 puts the source key into x-amz-copy-source as is; S3 wants it encoded. */
        l->bc.bucketName = op->src_bucket;
        l->copy_etag[0] = '\0';
        l->copy_lm = -1;
        S3_copy_object(&l->bc, l->enc_src, op->bucket, op->key, NULL, &l->copy_lm,
                       (int)sizeof(l->copy_etag), l->copy_etag, s->ctx, &resp_handler, l);
        break;
    case FERRY_OBJSTORE_OP_LIST:
        ferry_objstore__listing_begin(op->listing);
        l->list_truncated = 0;
        l->list_oom = 0;
        /* Our continuation token is the page's last key (as with sigv4): resume after
         * whichever of it and start_after comes later. V1's marker means the same. */
        marker = op->start_after && *op->start_after ? op->start_after : NULL;
        if (op->continuation_token && *op->continuation_token &&
            (!marker || strcmp(op->continuation_token, marker) > 0))
            marker = op->continuation_token;
        S3_list_bucket(&l->bc, op->prefix && *op->prefix ? op->prefix : NULL, marker,
                       op->delimiter, op->max_keys > 0 ? op->max_keys : 1000, s->ctx,
                       &list_handler, l);
        break;
    case FERRY_OBJSTORE_OP_HEAD_BUCKET:
        l->location[0] = '\0';
        S3_test_bucket(s->protocol, s->uri_style, s->access_key, s->secret_key, s->host,
                       op->bucket, (int)sizeof(l->location), l->location, s->ctx, &resp_handler,
                       l);
        break;
    case FERRY_OBJSTORE_OP_CREATE_BUCKET:
        S3_create_bucket(s->protocol, s->access_key, s->secret_key, s->host, op->bucket,
                         S3CannedAclPrivate,
                         strcmp(s->region, "us-east-1") != 0 ? s->region : NULL, s->ctx,
                         &resp_handler, l);
        break;
    default: /* refused by validate() */
        l->status = S3StatusInternalError;
        l->finished = 1;
        s->running--;
        break;
    }
}

static void lop_free(lop *l)
{
    if (!l)
        return;
    free(l->body);
    free(l);
}

/* Handles the finished step of l. Returns 1 if the op is complete (result in op). */
static int advance(libs3 *s, lop *l)
{
    ferry_objstore_op *op = l->op;
    enum lstep st = l->step;

    if (l->status != S3StatusOK) {
        /* Deleting what is gone succeeds; creating a bucket we own already too. */
        if (st == L_MAIN && op->type == FERRY_OBJSTORE_OP_DELETE &&
            (l->status == S3StatusErrorNoSuchKey || l->status == S3StatusHttpErrorNotFound))
            return op->rc = FERRY_OK, 1;
        if (st == L_MAIN && op->type == FERRY_OBJSTORE_OP_CREATE_BUCKET &&
            l->status == S3StatusErrorBucketAlreadyOwnedByYou)
            return op->rc = FERRY_OK, 1;
        if (op->type == FERRY_OBJSTORE_OP_LIST) {
            op->listing->count = 0;
            op->listing->is_truncated = 0;
            op->listing->next_token = NULL;
        }
        /* libs3 2.0 reports a CopyObject or PutObject answered by an error page (a 502
         * from a proxy, tried with faultproxy) as done: the HEAD after it is what finds
         * nothing there. That write failed on the server's side; send it again. */
        if (st == L_POST_HEAD &&
            (op->type == FERRY_OBJSTORE_OP_COPY || op->type == FERRY_OBJSTORE_OP_PUT) &&
            l->status == S3StatusHttpErrorNotFound) {
            set_op_error(op, st, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                         "not there after libs3 2.0 reported the write done (an error page "
                         "it took for success?)");
            return 1;
        }
        fail_status(l, st);
        return 1;
    }
    op->rc = FERRY_OK;
    switch (st) {
    case L_PRE_HEAD:
        if (l->clen > MAX_COPY) {
            set_op_error(op, L_MAIN, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                         "object of %llu bytes is above CopyObject's 5 GiB limit, and libs3 "
                         "2.0 has no multipart copy (use the sigv4 backend)",
                         (unsigned long long)l->clen);
            return 1;
        }
        issue(s, l, L_MAIN);
        return 0;
    case L_POST_HEAD:
        if (op->type == FERRY_OBJSTORE_OP_HEAD_BUCKET) {
            op->http_status = 200;
            return 1;
        }
        if (op->type == FERRY_OBJSTORE_OP_PUT) {
            memcpy(op->etag, l->etag, sizeof(op->etag));
            op->http_status = 200;
            return 1;
        }
        op->size = l->clen;
        memcpy(op->etag, l->etag, sizeof(op->etag));
        op->last_modified_ms = l->last_modified_ms;
        op->http_status = 200;
        /* No x-amz-copy-source-if-match in libs3 2.0: a single-part copy keeps the source's
         * MD5 ETag, so a different one means a different version was copied. */
        if (op->src_if_match && *op->src_if_match && !strchr(op->src_if_match, '-') &&
            strcasecmp(op->etag, op->src_if_match) != 0) {
            snprintf(op->s3_code, sizeof(op->s3_code), "PreconditionFailed");
            op->http_status = 412;
            set_op_error(op, L_MAIN, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                         "412 PreconditionFailed: the copied object's ETag %s is not the "
                         "expected source ETag %s (the source changed)",
                         op->etag, op->src_if_match);
        }
        return 1;
    case L_MAIN: break;
    }
    op->http_status = 200;
    switch (op->type) {
    case FERRY_OBJSTORE_OP_HEAD:
        op->size = l->clen;
        memcpy(op->etag, l->etag, sizeof(op->etag));
        op->last_modified_ms = l->last_modified_ms;
        break;
    case FERRY_OBJSTORE_OP_PUT:
        issue(s, l, L_POST_HEAD); /* libs3 2.0 loses the PUT's ETag (see the top) */
        return 0;
    case FERRY_OBJSTORE_OP_GET:
        /* libs3 2.0 reports a body cut short (CURLE_PARTIAL_FILE) as success. */
        if (l->have_props && l->clen != l->body_len) {
            set_op_error(op, L_MAIN, FERRY_ERR_RETRYABLE, FERRY_EC_S3_NETWORK,
                         "got %zu of %llu bytes", l->body_len, (unsigned long long)l->clen);
            break;
        }
        if (!l->body && !(l->body = malloc(1))) {
            set_op_error(op, L_MAIN, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
            break;
        }
        l->body[l->body_len] = '\0';
        op->get_data = l->body;
        op->get_len = l->body_len;
        op->size = l->body_len;
        l->body = NULL; /* handed over */
        memcpy(op->etag, l->etag, sizeof(op->etag));
        op->last_modified_ms = l->last_modified_ms;
        break;
    case FERRY_OBJSTORE_OP_COPY:
        issue(s, l, L_POST_HEAD); /* libs3 2.0 returns no ETag for a copy */
        return 0;
    case FERRY_OBJSTORE_OP_HEAD_BUCKET:
        issue(s, l, L_POST_HEAD); /* the location alone does not prove it exists */
        return 0;
    case FERRY_OBJSTORE_OP_LIST:
        if (ferry_objstore__listing_end(op->listing, l->list_truncated))
            set_op_error(op, L_MAIN, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        break;
    default: break;
    }
    return 1;
}

/* Processes finished requests and starts queued ops while there is room. */
static void schedule(libs3 *s)
{
    lop **pp = &s->active;

    while (*pp) {
        lop *l = *pp;
        if (l->finished && advance(s, l)) {
            *pp = l->next;
            s->nactive--;
            l->op->priv_ = NULL;
            push_done(s, l->op);
            lop_free(l);
            continue;
        }
        pp = &l->next;
    }
    while (s->ops.queued.head && s->nactive < s->max_in_flight) {
        ferry_objstore_op *op = ferry_objstore__opq_pop(&s->ops.queued);
        lop *l = calloc(1, sizeof(*l));

        if (!l) {
            op->rc = ferry_error_set(&op->err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                     "out of memory");
            push_done(s, op);
            continue;
        }
        l->s = s;
        l->op = op;
        op->priv_ = l;
        l->next = s->active;
        s->active = l;
        s->nactive++;
        if (op->type == FERRY_OBJSTORE_OP_COPY) {
            ferry_uri_pct_encode(op->src_key, strlen(op->src_key), 1, l->enc_src,
                                 sizeof(l->enc_src));
            /* The size decides whether libs3 can copy at all: learn it first if unknown. */
            issue(s, l, op->src_size == FERRY_OBJSTORE_SIZE_UNKNOWN ? L_PRE_HEAD : L_MAIN);
        } else {
            issue(s, l, L_MAIN);
        }
    }
}

static int any_finished(const libs3 *s)
{
    const lop *l;

    for (l = s->active; l; l = l->next)
        if (l->finished)
            return 1;
    return 0;
}

static void run_once(libs3 *s)
{
    int remaining = 0;
    S3Status st = S3_runonce_request_context(s->ctx, &remaining);

    if (st != S3StatusOK)
        ferry_debug(NULL, "libs3 runonce: %s", S3_get_status_name(st));
}

/* Waits up to timeout_ms for I/O on the context's sockets. */
static void wait_io(libs3 *s, int timeout_ms)
{
    fd_set r, w, x;
    int maxfd = -1;
    int64_t lt;
    struct timeval tv;

    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&x);
    if (S3_get_request_context_fdsets(s->ctx, &r, &w, &x, &maxfd) != S3StatusOK)
        maxfd = -1;
    lt = S3_get_request_context_timeout(s->ctx);
    if (lt >= 0 && lt < timeout_ms)
        timeout_ms = (int)lt;
    /* No socket yet (resolving, connecting) or only ones select() cannot watch: curl
     * advises a short sleep. */
    if (maxfd < 0 && timeout_ms > 10)
        timeout_ms = 10;
    if (timeout_ms < 0)
        timeout_ms = 0;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (select(maxfd + 1, &r, &w, &x, &tv) < 0 && errno != EINTR)
        ferry_debug(NULL, "libs3 select: %s", strerror(errno));
}

static size_t be_pump(void *impl, int timeout_ms)
{
    libs3 *s = impl;

    schedule(s);
    if (s->running > 0) {
        run_once(s);
        schedule(s);
        if (!s->ops.done.head && s->running > 0 && !any_finished(s)) {
            wait_io(s, timeout_ms);
            run_once(s);
            schedule(s);
        }
    }
    ferry_objstore__opqs_deliver(&s->ops);
    return s->ops.pending;
}

/* ---------------------------------------------------------------- submit / cancel */

static int key_ok(const char *k) { return k && *k && strlen(k) <= FERRY_URI_KEY_MAX; }

/* libs3 2.0 writes a space in the request path as '+'. AWS and S3Proxy read that '+' as a
 * space; moto (and stores that follow RFC 3986) keep a '+', so "a b" was written as "a+b"
 * and then verified under that same wrong name -- tried against moto. (Fixed in libs3
 * after 2.0, not in Debian's package.) */
static const char *key_refused(const char *key)
{
    return strchr(key, ' ') ? "libs3 2.0 sends a space in a key as '+', which a store may "
                              "keep as a plus: keys with spaces need the sigv4 backend"
                            : NULL;
}

static const char *validate(const libs3 *s, const ferry_objstore_op *op)
{
    (void)s;
    switch (op->type) {
    case FERRY_OBJSTORE_OP_COPY:
        if (!ferry_objstore__bucket_ok(op->src_bucket) || !key_ok(op->src_key))
            return "missing or invalid source bucket or key";
        if (key_refused(op->src_key))
            return key_refused(op->src_key);
        if (op->src_size != FERRY_OBJSTORE_SIZE_UNKNOWN && op->src_size > MAX_COPY)
            return "object is above CopyObject's 5 GiB limit, and libs3 2.0 has no "
                   "multipart copy (use the sigv4 backend)";
        /* fallthrough */
    case FERRY_OBJSTORE_OP_HEAD:
    case FERRY_OBJSTORE_OP_PUT:
    case FERRY_OBJSTORE_OP_GET:
    case FERRY_OBJSTORE_OP_DELETE:
        if (!ferry_objstore__bucket_ok(op->bucket))
            return "missing or invalid bucket";
        if (!key_ok(op->key))
            return "missing key, or key longer than 1024 bytes";
        if (key_refused(op->key))
            return key_refused(op->key);
        if (op->type == FERRY_OBJSTORE_OP_PUT && op->put_len && !op->put_data)
            return "PUT without data";
        if (op->if_none_match)
            return "conditional writes (If-None-Match) are not available with libs3 2.0";
        return NULL;
    case FERRY_OBJSTORE_OP_LIST:
        /* Tried against S3Proxy: libs3 2.0 drops a common prefix with a non-ASCII
         * character, and sometimes every one after it, or returns only its tail ("dl/f\xC3\xA9/"
         * as "\xC3\xA9/"), without an error. The split by prefixes then walks the keys. */
        if (op->delimiter && *op->delimiter)
            return "listings with a delimiter are not available with libs3 2.0 (it garbles "
                   "common prefixes with non-ASCII characters; use the sigv4 backend)";
        return ferry_objstore__list_args_bad(op);
    case FERRY_OBJSTORE_OP_HEAD_BUCKET:
    case FERRY_OBJSTORE_OP_CREATE_BUCKET:
        return ferry_objstore__bucket_ok(op->bucket) ? NULL : "missing or invalid bucket";
    case FERRY_OBJSTORE_OP_TRANSFER:
        return "not available with the libs3 backend (use sigv4 stores for streaming "
               "transfers)";
    case FERRY_OBJSTORE_OP_LIST_UPLOADS:
    case FERRY_OBJSTORE_OP_ABORT_UPLOAD: return "libs3 2.0 has no multipart API";
    }
    return "unknown operation type";
}

static void be_submit(void *impl, ferry_objstore_op *op)
{
    libs3 *s = impl;
    const char *bad;

    ferry_objstore__opqs_accept(&s->ops, op);
    bad = validate(s, op);
    if (bad) {
        set_op_error(op, L_MAIN, FERRY_ERR_PERMANENT,
                     op->type == FERRY_OBJSTORE_OP_TRANSFER ||
                             op->type == FERRY_OBJSTORE_OP_LIST_UPLOADS ||
                             op->type == FERRY_OBJSTORE_OP_ABORT_UPLOAD || op->if_none_match ||
                             (op->type == FERRY_OBJSTORE_OP_LIST && op->delimiter &&
                              *op->delimiter)
                         ? FERRY_EC_CONFIG
                         : FERRY_EC_S3_CLIENT,
                     "%s", bad);
        push_done(s, op);
        return;
    }
    ferry_objstore__opq_push(&s->ops.queued, op);
}

static const char *main_step_name(const ferry_objstore_op *op) { return step_name(op, L_MAIN); }

static void be_cancel_queued(void *impl)
{
    libs3 *s = impl;

    ferry_objstore__opqs_cancel_queued(&s->ops, main_step_name);
}

/* ---------------------------------------------------------------- create / destroy */

static pthread_once_t s3_once = PTHREAD_ONCE_INIT;
static S3Status s3_init_status;

static void s3_init(void)
{
    /* Global, not thread-safe, so exactly once per process; never deinitialized (other
     * stores may live until exit). It also initializes libcurl-gnutls, a library separate
     * from the libcurl the sigv4 backend uses. */
    s3_init_status = S3_initialize("ferry", S3_INIT_ALL, NULL);
}

static void be_destroy(void *impl)
{
    libs3 *s = impl;

    if (!s)
        return;
    /* Destroying the context completes its requests with S3StatusInterrupted (callbacks
     * run here); their op state is freed below and no done callback is delivered. */
    if (s->ctx)
        S3_destroy_request_context(s->ctx);
    while (s->active) {
        lop *l = s->active;
        s->active = l->next;
        l->op->priv_ = NULL;
        lop_free(l);
    }
    free(s->host);
    free(s->region);
    ferry_objstore__wipe_free(s->access_key);
    ferry_objstore__wipe_free(s->secret_key);
    free(s);
}

/* "http(s)://host[:port][/]" -> protocol and host; nothing else is accepted. */
static int parse_endpoint(libs3 *s, const char *ep, int insecure_ok, ferry_error *err)
{
    const char *h;
    size_t n;

    if (!ep || !*ep)
        goto bad;
    if (!strncmp(ep, "http://", 7)) {
        s->protocol = S3ProtocolHTTP;
        h = ep + 7;
    } else if (!strncmp(ep, "https://", 8)) {
        if (!insecure_ok) {
            ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                            "the libs3 backend refuses https endpoints: libs3 2.0 does not "
                            "verify TLS certificates, so anyone on the network path could "
                            "impersonate the store; set insecure_tls_ok to accept unverified "
                            "TLS, or use the sigv4 backend");
            return -1;
        }
        s->protocol = S3ProtocolHTTPS;
        h = ep + 8;
    } else {
        goto bad;
    }
    n = strcspn(h, "/?#@");
    if (!n || n > S3_MAX_HOSTNAME_SIZE || (h[n] && strcmp(h + n, "/") != 0))
        goto bad;
    s->host = strndup(h, n);
    if (!s->host) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
        return -1;
    }
    return 0;
bad:
    ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                    "S3 endpoint must be http(s)://host[:port] without path, query or user "
                    "info");
    return -1;
}

static void *be_create(const ferry_objstore_conf *c, ferry_error *err)
{
    libs3 *s;

    if (!c->access_key || !*c->access_key || !c->secret_key || !*c->secret_key) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                        "S3 credentials are missing (access key and secret key)");
        return NULL;
    }
    if (c->session_token && *c->session_token) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                        "the libs3 backend cannot send a session token (libs3 2.0 signs with "
                        "Signature V2 only); use the sigv4 backend for temporary credentials");
        return NULL;
    }
    if (c->ca_file && *c->ca_file) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                        "the libs3 backend cannot use ca_file: libs3 2.0 does not verify TLS "
                        "certificates at all");
        return NULL;
    }
    pthread_once(&s3_once, s3_init);
    if (s3_init_status != S3StatusOK) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "S3_initialize failed: %s",
                        S3_get_status_name(s3_init_status));
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
        return NULL;
    }
    if (parse_endpoint(s, c->endpoint, c->insecure_tls_ok, err))
        goto fail;
    s->uri_style = c->path_style ? S3UriStylePath : S3UriStyleVirtualHost;
    s->access_key = strdup(c->access_key);
    s->secret_key = strdup(c->secret_key);
    s->region = strdup(c->region && *c->region ? c->region : "us-east-1");
    s->max_response = c->max_response_bytes ? c->max_response_bytes : (16u << 20);
    s->max_in_flight = c->max_in_flight;
    if (!s->access_key || !s->secret_key || !s->region) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
        goto fail;
    }
    if (S3_create_request_context(&s->ctx) != S3StatusOK) {
        s->ctx = NULL;
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                        "S3_create_request_context failed");
        goto fail;
    }
    if (s->protocol == S3ProtocolHTTPS)
        FERRY_LOG(FERRY_LOG_WARN, NULL,
                  "libs3 object store over https WITHOUT certificate verification "
                  "(insecure_tls_ok is set): libs3 2.0 cannot verify the server");
    return s;
fail:
    be_destroy(s);
    return NULL;
}

const ferry_objstore_backend ferry_objstore_libs3_backend = {
    "libs3", be_create, be_destroy, be_submit, be_pump, be_cancel_queued, key_refused,
};
