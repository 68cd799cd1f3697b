/* The sigv4 backend's transport: the curl multi handle and its slots, the curl callbacks,
 * signing and launching a built request, turning a finished transfer into a result, and
 * the round of work pump runs (see objstore_sigv4.h for the whole shape).
 *
 * Per request we allocate nothing ourselves (header list nodes live in the slot); libcurl
 * allocates a little internally. Nothing here logs credentials, signatures or URLs. */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "ferry_log.h"
#include "ferry_s3xml.h"
#include "ferry_sigv4.h"
#include "objstore/objstore_sigv4.h"

/* ---------------------------------------------------------------- buffers */

int objstore__buf_reserve(buf *b, size_t need)
{
    size_t cap;
    char *p;

    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int objstore__buf_append(buf *b, const void *d, size_t n)
{
    if (objstore__buf_reserve(b, b->len + n + 1))
        return -1;
    memcpy(b->p + b->len, d, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int objstore__buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || objstore__buf_reserve(b, b->len + (size_t)n + 1))
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void objstore__buf_free(buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---------------------------------------------------------------- curl callbacks */

static size_t on_write(char *data, size_t sz, size_t n, void *ud)
{
    slot *sl = ud;
    size_t len = sz * n;
    size_t limit = (sl->status >= 200 && sl->status < 300) ? sl->resp_limit : ERROR_BODY_MAX;

    if (sl->pipe && sl->step == ST_TX_GET && sl->status >= 200 && sl->status < 300)
        return objstore__pipe_write(sl->pipe, data, len);
    if (sl->resp.len + len > limit) {
        sl->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (!sl->resp.len && sl->have_clen && sl->clen <= limit && sl->status >= 200 &&
        sl->status < 300 && objstore__buf_reserve(&sl->resp, (size_t)sl->clen + 1))
        return 0;
    if (objstore__buf_append(&sl->resp, data, len))
        return 0;
    return len;
}

static size_t on_read(char *out, size_t sz, size_t n, void *ud)
{
    slot *sl = ud;
    size_t len = sz * n, left = sl->up_len - sl->up_off;

    if (sl->pipe && sl->step == ST_TX_PUT)
        return objstore__pipe_read(sl->pipe, out, len);
    if (len > left)
        len = left;
    if (len) {
        memcpy(out, sl->up + sl->up_off, len);
        sl->up_off += len;
    }
    return len;
}

static void capture_meta(slot *sl, const char *name, size_t nlen, const char *val, size_t vlen)
{
    static const char *const std[] = {"cache-control",    "content-disposition",
                                      "content-encoding", "content-language",
                                      "expires",          NULL};
    mpcopy *mp = sl->op ? sl->op->priv_ : NULL;
    const char *const *p;
    int keep = 0;
    size_t i;

    if (!mp)
        return;
    if (nlen == 12 && !strncasecmp(name, "content-type", 12)) {
        if (vlen < sizeof(mp->content_type)) {
            memcpy(mp->content_type, val, vlen);
            mp->content_type[vlen] = '\0';
        }
        return;
    }
    if (nlen > 11 && !strncasecmp(name, "x-amz-meta-", 11))
        keep = 1;
    for (p = std; *p && !keep; p++)
        if (strlen(*p) == nlen && !strncasecmp(name, *p, nlen))
            keep = 1;
    if (!keep || mp->meta_n >= META_HDRS_MAX || mp->meta_len + nlen + vlen + 2 > META_MAX)
        return;
    for (i = 0; i < nlen; i++)
        mp->meta[mp->meta_len + i] = (char)tolower((unsigned char)name[i]);
    mp->meta[mp->meta_len + nlen] = '\0';
    mp->meta_len += nlen + 1;
    memcpy(mp->meta + mp->meta_len, val, vlen);
    mp->meta[mp->meta_len + vlen] = '\0';
    mp->meta_len += vlen + 1;
    mp->meta_n++;
}

static void copy_value(char *dst, size_t size, const char *v, size_t vl)
{
    if (vl >= size)
        vl = size - 1;
    memcpy(dst, v, vl);
    dst[vl] = '\0';
}

/* x-amz-checksum-<algo>: <value>, after the prefix. The first algorithm wins (S3 sends
 * one); -mode, -type and -algorithm are not checksums. */
static void checksum_header(slot *sl, const char *name, size_t nlen, const char *v, size_t vl)
{
    const char *algo;
    if (nlen == 4 && !strncasecmp(name, "type", 4)) {
        if (vl < sizeof(sl->checksum_type))
            copy_value(sl->checksum_type, sizeof(sl->checksum_type), v, vl);
        return;
    }
    if (sl->checksum_algo[0] || vl == 0 || vl >= sizeof(sl->checksum) ||
        !(algo = ferry_objstore_checksum_algo(name, nlen)))
        return;
    snprintf(sl->checksum_algo, sizeof(sl->checksum_algo), "%s", algo);
    copy_value(sl->checksum, sizeof(sl->checksum), v, vl);
}

static size_t on_header(char *line, size_t sz, size_t n, void *ud)
{
    slot *sl = ud;
    size_t len = sz * n, nlen;
    const char *colon, *v, *end;
    char tmp[256];

    if (len >= 5 && !memcmp(line, "HTTP/", 5)) {
        /* A new response (also after "100 Continue"): forget the previous one's headers. */
        const char *sp = memchr(line, ' ', len);
        sl->status = 0;
        if (sp && (size_t)(line + len - sp) > 3 && isdigit((unsigned char)sp[1]) &&
            isdigit((unsigned char)sp[2]) && isdigit((unsigned char)sp[3]))
            sl->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
        sl->etag[0] = '\0';
        sl->checksum_algo[0] = sl->checksum[0] = sl->checksum_type[0] = sl->sse[0] = '\0';
        sl->have_clen = 0;
        sl->clen = 0;
        sl->last_modified_ms = 0;
        sl->headers_done = 0;
        return len;
    }
    colon = memchr(line, ':', len);
    if (!colon) {
        /* The blank line ends a response's headers; 1xx responses are followed by more. */
        if (sl->status >= 200 && (len == 2 || len == 1) && (line[0] == '\r' || line[0] == '\n'))
            sl->headers_done = 1;
        return len;
    }
    nlen = (size_t)(colon - line);
    v = colon + 1;
    end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (nlen == 4 && !strncasecmp(line, "etag", 4)) {
        size_t vl = (size_t)(end - v);
        if (vl && *v == '"')
            v++, vl--;
        if (vl && v[vl - 1] == '"')
            vl--;
        if (vl >= sizeof(sl->etag))
            vl = sizeof(sl->etag) - 1;
        memcpy(sl->etag, v, vl);
        sl->etag[vl] = '\0';
    } else if (nlen == 14 && !strncasecmp(line, "content-length", 14)) {
        uint64_t c = 0;
        const char *p;
        for (p = v; p < end && *p >= '0' && *p <= '9'; p++)
            c = c * 10 + (uint64_t)(*p - '0');
        if (p == end && p > v && (size_t)(end - v) < 20) {
            sl->clen = c;
            sl->have_clen = 1;
            if (sl->status >= 200 && sl->status < 300 && sl->op &&
                sl->op->type == FERRY_OBJSTORE_OP_GET && sl->step == ST_MAIN &&
                c > sl->resp_limit) {
                sl->too_large = 1;
                return 0; /* refuse before downloading */
            }
        }
    } else if (nlen > 15 && !strncasecmp(line, "x-amz-checksum-", 15)) {
        checksum_header(sl, line + 15, nlen - 15, v, (size_t)(end - v));
    } else if (nlen == 28 && !strncasecmp(line, "x-amz-server-side-encryption", 28)) {
        if (strcmp(sl->sse, "SSE-C") != 0) /* a customer key says more than "AES256" */
            copy_value(sl->sse, sizeof(sl->sse), v, (size_t)(end - v));
    } else if (nlen == 47 &&
               !strncasecmp(line, "x-amz-server-side-encryption-customer-algorithm", 47)) {
        copy_value(sl->sse, sizeof(sl->sse), "SSE-C", 5);
    } else if (nlen == 13 && !strncasecmp(line, "last-modified", 13)) {
        size_t vl = (size_t)(end - v);
        if (vl < sizeof(tmp)) {
            time_t t;
            memcpy(tmp, v, vl);
            tmp[vl] = '\0';
            t = curl_getdate(tmp, NULL);
            sl->last_modified_ms = t > 0 ? (int64_t)t * 1000 : 0;
        }
    }
    if (sl->capture_meta && sl->status >= 200 && sl->status < 300)
        capture_meta(sl, line, nlen, v, (size_t)(end - v));
    return len;
}

/* ---------------------------------------------------------------- signing and launch */

/* Copies a NUL-terminated string into the slot's header area. */
const char *objstore__hstore(slot *sl, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p = sl->hbuf + sl->hlen;
    size_t room = HBUF_SIZE - sl->hlen;

    va_start(ap, fmt);
    n = vsnprintf(p, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room)
        return NULL;
    sl->hlen += (size_t)n + 1;
    return p;
}

int objstore__add_hdr(req *r, const char *name, const char *value)
{
    if (!value || r->nh >= MAX_HDRS)
        return -1;
    r->h[r->nh].name = name;
    r->h[r->nh].value = value;
    r->nh++;
    return 0;
}

/* Per-connection settings of the store whose endpoint a request goes to: a TRANSFER runs
 * the source store's requests on the target store's handles. */
static void apply_conn_settings(slot *sl, const sigv4 *sg)
{
    CURL *e = sl->easy;

    if (sl->conn_of == sg)
        return;
    sl->conn_of = sg;
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, sg->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (sg->stall_timeout_ms + 999) / 1000);
    curl_easy_setopt(e, CURLOPT_CAINFO, sg->ca_file ? sg->ca_file : sl->s->default_ca);
}

static void refresh_signing_key(sigv4 *s)
{
    time_t now = time(NULL);

    if (now == s->date_t)
        return;
    s->date_t = now;
    ferry_sigv4_amz_date(now, s->amz_date);
    if (memcmp(s->key_date, s->amz_date, 8) != 0) {
        memcpy(s->key_date, s->amz_date, 8);
        s->key_date[8] = '\0';
        if (ferry_sigv4_signing_key(s->secret_key, s->key_date, s->region, "s3",
                                    s->signing_key))
            s->key_date[0] = '\0'; /* retried next request; signing then fails visibly */
    }
}

/* Builds URL, headers and signature for r on slot sl and adds it to s's multi handle. sg
 * is the store whose endpoint and credentials the request uses (s itself, or a TRANSFER's
 * source store). Returns 0, or -1 with err set (PERMANENT: the request cannot be
 * expressed). */
static int launch(sigv4 *s, sigv4 *sg, slot *sl, req *r, ferry_error *err)
{
    char enc_key[ENC_KEY_MAX], query[4 * ENC_KEY_MAX], auth[1024];
    const char *host, *path, *date_h;
    ferry_sigv4_request sr;
    CURL *e = sl->easy;
    size_t i, qlen;
    int nn = 0;

    sl->url.len = 0;
    if (r->key && ferry_uri_pct_encode(r->key, strlen(r->key), 1, enc_key, sizeof(enc_key)) >=
                      sizeof(enc_key))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT, "key too long"),
               -1;
    qlen = ferry_uri_query_build(r->q, r->nq, query, sizeof(query));
    if (qlen >= sizeof(query))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                               "query string too long"),
               -1;
    if (sg->path_style) {
        host = sg->host;
        path = r->key ? objstore__hstore(sl, "/%s/%s", r->bucket, enc_key)
                      : objstore__hstore(sl, "/%s", r->bucket);
    } else {
        host = objstore__hstore(sl, "%s.%s", r->bucket, sg->host);
        path = r->key ? objstore__hstore(sl, "/%s", enc_key) : "/";
    }
    if (!host || !path ||
        objstore__buf_printf(&sl->url, "%s://%s%s%s%s", sg->scheme, host, path, qlen ? "?" : "",
                             query))
        goto too_big;

    refresh_signing_key(sg);
    if (!sg->key_date[0])
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                               "deriving the signing key failed"),
               -1;
    if (r->trailer) {
        snprintf(r->payload_hash, sizeof(r->payload_hash), "%s", FERRY_SIGV4_UNSIGNED_TRAILER);
    } else if (r->stream) {
        memcpy(r->payload_hash, FERRY_SIGV4_UNSIGNED, sizeof(FERRY_SIGV4_UNSIGNED));
    } else if (r->upload && r->body_len) {
        if (ferry_sigv4_sha256_hex(r->body, r->body_len, r->payload_hash))
            return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "hashing the request body failed"),
                   -1;
    } else {
        memcpy(r->payload_hash, FERRY_SIGV4_EMPTY_SHA256, 65);
    }
    date_h = objstore__hstore(sl, "%s", sg->amz_date);
    if (!date_h || objstore__add_hdr(r, "host", host) ||
        objstore__add_hdr(r, "x-amz-date", date_h) ||
        objstore__add_hdr(r, "x-amz-content-sha256", r->payload_hash))
        goto too_big;
    if (sg->session_token && objstore__add_hdr(r, "x-amz-security-token", sg->session_token))
        goto too_big;

    sr.method = r->method;
    sr.canonical_uri = path;
    sr.canonical_query = query;
    sr.headers = r->h;
    sr.n_headers = r->nh;
    sr.payload_hash = r->payload_hash;
    sr.amz_date = sg->amz_date;
    sr.region = sg->region;
    sr.service = "s3";
    sr.access_key = sg->access_key;
    sr.signing_key = sg->signing_key;
    if (!ferry_sigv4_authorization(&sr, auth, sizeof(auth)))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                               "cannot sign the request (bad header)"),
               -1;

    /* Header list: nodes live in the slot, texts in its header area. */
    for (i = 0; i < r->nh; i++) {
        const char *line = objstore__hstore(sl, "%s: %s", r->h[i].name, r->h[i].value);
        if (!line)
            goto too_big;
        sl->hnodes[nn].data = (char *)line;
        nn++;
    }
    if (!(sl->hnodes[nn].data = (char *)objstore__hstore(sl, "Authorization: %s", auth)))
        goto too_big;
    nn++;
    if (r->upload) {
        /* No "Expect: 100-continue" round trip; the body is small or the server fast. */
        sl->hnodes[nn].data = (char *)"Expect:";
        nn++;
    }
    for (i = 0; i < (size_t)nn; i++)
        sl->hnodes[i].next = (i + 1 < (size_t)nn) ? &sl->hnodes[i + 1] : NULL;
    explicit_bzero(auth, sizeof(auth));

    /* Reset the method-related options, then set this request's. */
    curl_easy_setopt(e, CURLOPT_UPLOAD, 0L);
    curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    if (!strcmp(r->method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (r->upload) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
        if (strcmp(r->method, "PUT") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    }
    curl_easy_setopt(e, CURLOPT_URL, sl->url.p);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, sl->hnodes);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->small ? sg->request_timeout_ms : 0L);
    apply_conn_settings(sl, sg);

    sl->up = r->stream ? NULL : r->body;
    sl->up_len = r->upload && !r->stream ? r->body_len : 0;
    sl->up_off = 0;
    sl->resp.len = 0;
    sl->resp_limit = r->resp_limit ? r->resp_limit : s->max_response;
    sl->status = 0;
    sl->headers_done = 0;
    sl->too_large = 0;
    sl->capture_meta = r->want_meta;
    sl->etag[0] = '\0';
    sl->have_clen = 0;
    sl->clen = 0;
    sl->last_modified_ms = 0;
    sl->errbuf[0] = '\0';
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                               "curl_multi_add_handle failed"),
               -1;
    return 0;
too_big:
    return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                           "request too large (key, metadata or token)"),
           -1;
}

/* ---------------------------------------------------------------- completion */

void objstore__push_done(sigv4 *s, ferry_objstore_op *op)
{
    ferry_objstore__opq_push(&s->ops.done, op);
}

void objstore__set_op_error(ferry_objstore_op *op, enum step st, uint32_t part, ferry_rc rc,
                            const char *cls, const char *fmt, ...)
{
    char what[600], detail[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    objstore__describe(op, st, part, what, sizeof(what));
    op->rc = ferry_error_set(&op->err, rc, cls, "%s: %s", what, detail);
    /* which endpoint failed, for its circuit breaker: a transfer reads the source */
    op->src_failed = op->type == FERRY_OBJSTORE_OP_TRANSFER &&
                     (st == ST_TX_GET || st == ST_MP_HEAD);
}

static ferry_rc curl_class(CURLcode cc, const char **cls)
{
    *cls = FERRY_EC_S3_NETWORK;
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN: *cls = FERRY_EC_CONFIG; return FERRY_ERR_PERMANENT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
        /* A certificate that does not verify will not verify on retry either. */
        return FERRY_ERR_PERMANENT;
    case CURLE_OUT_OF_MEMORY: *cls = FERRY_EC_INTERNAL; return FERRY_ERR_RETRYABLE;
    default:
        /* refused, reset, timed out, DNS, TLS handshake, partial body, ... */
        return FERRY_ERR_RETRYABLE;
    }
}

static const char *status_text(int status)
{
    switch (status) {
    case 301: return "Moved Permanently (wrong region or endpoint?)";
    case 307: return "Temporary Redirect (wrong region or endpoint?)";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    }
    return "";
}

/* Turns a finished transfer into FERRY_OK or an error on op (first error wins for
 * multipart ops). Parses nothing on success; the caller does. */
ferry_rc objstore__check(sigv4 *s, slot *sl, CURLcode cc, ferry_objstore_op *op, enum step st,
                         uint32_t part)
{
    ferry_s3xml_result *x = NULL;
    mpcopy *mp = op->priv_;
    int keep_first = mp && mp->failed;
    ferry_rc rc;
    const char *cls;
    char why[160];

    (void)s;
    if (keep_first && st != ST_MAIN)
        op = NULL; /* report nothing new; the first failure stands */
    if (cc != CURLE_OK) {
        if (!op)
            return FERRY_ERR_PERMANENT;
        if (sl->too_large) {
            if (sl->status >= 200 && sl->status < 300 && st == ST_MAIN &&
                op->type == FERRY_OBJSTORE_OP_GET)
                objstore__set_op_error(op, st, part, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                       "object is larger than the %zu bytes allowed",
                                       sl->resp_limit);
            else
                objstore__set_op_error(op, st, part, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                       "response larger than %zu bytes", sl->resp_limit);
            op->http_status = sl->status;
            return op->rc;
        }
        rc = curl_class(cc, &cls);
        if (cc == CURLE_OPERATION_TIMEDOUT && strstr(sl->errbuf, "too slow")) {
            /* CURLOPT_LOW_SPEED_*: a server that took the request and went quiet */
            objstore__set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_STALL,
                                   "stalled: no byte sent or received within the stall "
                                   "timeout (curl: %s)",
                                   sl->errbuf);
            op->http_status = 0;
            return op->rc;
        }
        objstore__set_op_error(op, st, part, rc, cls, "%s (curl %d: %s)",
                               sl->errbuf[0] ? sl->errbuf : curl_easy_strerror(cc), (int)cc,
                               curl_easy_strerror(cc));
        op->http_status = 0;
        return rc;
    }
    if (sl->status >= 200 && sl->status < 300)
        return FERRY_OK;
    if (!op)
        return FERRY_ERR_PERMANENT;
    op->http_status = sl->status;
    op->s3_code[0] = '\0';
    x = malloc(sizeof(*x));
    if (x && sl->resp.len &&
        !ferry_s3xml_parse_result(sl->resp.p, sl->resp.len, x, why, sizeof(why)) &&
        !strcmp(x->root, "Error")) {
        snprintf(op->s3_code, sizeof(op->s3_code), "%s", x->code);
        ferry_objstore__clean_text(op->s3_code);
        ferry_objstore__clean_text(x->message);
    } else if (x) {
        x->code[0] = x->message[0] = '\0';
    }
    if (st == ST_MAIN && op->type == FERRY_OBJSTORE_OP_CREATE_BUCKET &&
        !strcmp(op->s3_code, "BucketAlreadyOwnedByYou")) {
        free(x);
        return FERRY_OK;
    }
    cls = ferry_objstore_classify(sl->status, op->s3_code, &rc);
    if (x && x->code[0])
        objstore__set_op_error(op, st, part, rc, cls, "%d %s: %s", sl->status, op->s3_code,
                               x->message[0] ? x->message : "(no message)");
    else
        objstore__set_op_error(op, st, part, rc, cls, "HTTP %d%s%s", sl->status,
                               *status_text(sl->status) ? " " : "", status_text(sl->status));
    free(x);
    return rc;
}

/* Parses a 2xx result document (copy/part/init/complete). A 200 can still carry an Error
 * (S3 sends the status before a long copy finishes). Returns FERRY_OK and fills x. */
ferry_rc objstore__parse_result_doc(slot *sl, ferry_objstore_op *op, enum step st,
                                    uint32_t part, ferry_s3xml_result *x, int report)
{
    char why[160];
    const char *cls;
    ferry_rc rc;

    if (!sl->resp.len ||
        ferry_s3xml_parse_result(sl->resp.p, sl->resp.len, x, why, sizeof(why))) {
        if (report)
            objstore__set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                                   "%d with an unreadable body: %s", sl->status,
                                   sl->resp.len ? why : "empty");
        return FERRY_ERR_RETRYABLE;
    }
    if (!strcmp(x->root, "Error")) {
        if (report) {
            ferry_objstore__clean_text(x->code);
            ferry_objstore__clean_text(x->message);
            snprintf(op->s3_code, sizeof(op->s3_code), "%s", x->code);
            /* An error inside a 200 is the server's failure unless its code is one we
             * know to be auth or not-found. */
            cls = ferry_objstore_classify(0, x->code, &rc);
            if (!strcmp(cls, FERRY_EC_S3_CLIENT)) {
                cls = FERRY_EC_S3_SERVER;
                rc = FERRY_ERR_RETRYABLE;
            }
            objstore__set_op_error(op, st, part, rc, cls, "%d %s: %s", sl->status, x->code,
                                   x->message[0] ? x->message : "(no message)");
            return rc;
        }
        return FERRY_ERR_RETRYABLE;
    }
    return FERRY_OK;
}

/* The response's checksum and encryption headers, for verification by the caller. */
static void take_integrity(ferry_objstore_op *op, const slot *sl)
{
    memcpy(op->checksum_algo, sl->checksum_algo, sizeof(op->checksum_algo));
    memcpy(op->checksum, sl->checksum, sizeof(op->checksum));
    memcpy(op->checksum_type, sl->checksum_type, sizeof(op->checksum_type));
    memcpy(op->sse, sl->sse, sizeof(op->sse));
}

static void finish_main(sigv4 *s, slot *sl, ferry_objstore_op *op, CURLcode cc)
{
    ferry_s3xml_result *x;
    char why[160];

    op->http_status = sl->status;
    if (objstore__check(s, sl, cc, op, ST_MAIN, 0) != FERRY_OK)
        return;
    op->rc = FERRY_OK;
    switch (op->type) {
    case FERRY_OBJSTORE_OP_HEAD:
        op->size = sl->have_clen ? sl->clen : 0;
        memcpy(op->etag, sl->etag, sizeof(op->etag));
        op->last_modified_ms = sl->last_modified_ms;
        take_integrity(op, sl);
        break;
    case FERRY_OBJSTORE_OP_PUT:
        memcpy(op->etag, sl->etag, sizeof(op->etag));
        take_integrity(op, sl);
        break;
    case FERRY_OBJSTORE_OP_GET:
        if (objstore__buf_reserve(&sl->resp, sl->resp.len + 1)) {
            objstore__set_op_error(op, ST_MAIN, 0, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "out of memory");
            return;
        }
        sl->resp.p[sl->resp.len] = '\0';
        op->get_data = sl->resp.p;
        op->get_len = sl->resp.len;
        op->size = sl->resp.len;
        memset(&sl->resp, 0, sizeof(sl->resp)); /* handed over */
        memcpy(op->etag, sl->etag, sizeof(op->etag));
        op->last_modified_ms = sl->last_modified_ms;
        take_integrity(op, sl);
        break;
    case FERRY_OBJSTORE_OP_COPY:
        x = malloc(sizeof(*x));
        if (!x) {
            objstore__set_op_error(op, ST_MAIN, 0, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "out of memory");
            return;
        }
        if (objstore__parse_result_doc(sl, op, ST_MAIN, 0, x, 1) == FERRY_OK)
            memcpy(op->etag, x->etag, sizeof(op->etag));
        free(x);
        take_integrity(op, sl);
        break;
    case FERRY_OBJSTORE_OP_LIST:
        if (ferry_s3xml_parse_list(sl->resp.p ? sl->resp.p : "", sl->resp.len, op->listing, why,
                                   sizeof(why)))
            objstore__set_op_error(op, ST_MAIN, 0, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                                   "%d with an unreadable listing: %s", sl->status, why);
        break;
    case FERRY_OBJSTORE_OP_LIST_UPLOADS:
        if (ferry_s3xml_parse_uploads(sl->resp.p ? sl->resp.p : "", sl->resp.len, op->listing,
                                      why, sizeof(why)))
            objstore__set_op_error(op, ST_MAIN, 0, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                                   "%d with an unreadable upload listing: %s", sl->status, why);
        break;
    case FERRY_OBJSTORE_OP_DELETE:
    case FERRY_OBJSTORE_OP_HEAD_BUCKET:
    case FERRY_OBJSTORE_OP_CREATE_BUCKET:
    case FERRY_OBJSTORE_OP_ABORT_UPLOAD:
    case FERRY_OBJSTORE_OP_TRANSFER: break;
    }
}

/* ---------------------------------------------------------------- slots and scheduling */

slot *objstore__take_slot(sigv4 *s) { return &s->slots[s->free_idx[--s->nfree]]; }

void objstore__slot_release(sigv4 *s, slot *sl)
{
    sl->op = NULL;
    sl->pipe = NULL;
    if (sl->resp.cap > KEEP_BUF_MAX)
        objstore__buf_free(&sl->resp);
    if (sl->reqbody.cap > KEEP_BUF_MAX)
        objstore__buf_free(&sl->reqbody);
    s->free_idx[s->nfree++] = (int)(sl - s->slots);
}

/* The store whose endpoint and credentials step st of op goes to. */
static sigv4 *signer(sigv4 *s, const ferry_objstore_op *op, enum step st)
{
    const mpcopy *mp = op->priv_;

    if (mp && mp->transfer && (st == ST_MP_HEAD || st == ST_TX_GET))
        return mp->src;
    return s;
}

/* Starts step st of op on slot sl, which the caller took (and gives back on failure). */
int objstore__start(sigv4 *s, slot *sl, ferry_objstore_op *op, enum step st, uint32_t part)
{
    req r;
    ferry_error err;

    sl->hlen = 0;
    sl->op = op;
    sl->step = st;
    sl->part = part;
    if (objstore__build(s, sl, op, st, part, &r, &err) ||
        launch(s, signer(s, op, st), sl, &r, &err)) {
        mpcopy *mp = op->priv_;
        char what[300];
        sl->op = NULL;
        if (!mp || !mp->failed) {
            objstore__describe(op, st, part, what, sizeof(what));
            op->rc = ferry_error_set(&op->err, err.rc, err.cls, "%s: %s", what, err.msg);
        }
        return -1;
    }
    return 0;
}

void objstore__schedule(sigv4 *s)
{
    s->pair_wanted = 0;
    objstore__mp_schedule(s);
    /* While a stream waits for two free slots, single requests must not take the one that
     * is free, or a steady flow of them could starve the stream. */
    while (s->nfree && s->ops.queued.head && !s->pair_wanted) {
        ferry_objstore_op *op = ferry_objstore__opq_pop(&s->ops.queued);
        slot *sl;

        if (op->type == FERRY_OBJSTORE_OP_TRANSFER ||
            (op->type == FERRY_OBJSTORE_OP_COPY &&
             op->src_size != FERRY_OBJSTORE_SIZE_UNKNOWN && op->src_size > s->mp_threshold)) {
            if (objstore__mp_new(s, op) == 0)
                objstore__mp_schedule(s);
            else
                objstore__push_done(s, op);
            continue;
        }
        sl = objstore__take_slot(s);
        if (objstore__start(s, sl, op, ST_MAIN, 0)) {
            objstore__slot_release(s, sl);
            objstore__push_done(s, op);
        }
    }
}

/* ---------------------------------------------------------------- one round of work */

static void on_transfer_done(sigv4 *s, slot *sl, CURLcode cc)
{
    ferry_objstore_op *op = sl->op;
    enum step st = sl->step;
    uint32_t part = sl->part;
    mpcopy *mp = op->priv_;

    curl_multi_remove_handle(s->multi, sl->easy);
    if (sl->pipe) {
        objstore__pipe_slot_done(s, sl, cc); /* releases the slot */
        return;
    }
    if (mp) {
        if (st == ST_MAIN) {
            mp->busy = 0;
            finish_main(s, sl, op, cc);
            if (op->rc != FERRY_OK)
                mp->failed = 1;
            mp->phase = PH_DONE;
        } else {
            objstore__mp_finish(s, sl, op, st, part, cc);
        }
    } else {
        finish_main(s, sl, op, cc);
        objstore__push_done(s, op);
    }
    objstore__slot_release(s, sl);
}

static void drain(sigv4 *s)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(s->multi, &left))) {
        slot *sl = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
        if (sl && sl->op)
            on_transfer_done(s, sl, m->data.result);
    }
}

int objstore__active(const sigv4 *s) { return s->nfree < s->nslots; }

/* One round of curl work; then, while streams move (unpauses, new PUTs), more rounds
 * without waiting: an unpaused transfer has work that no socket event would announce. */
void objstore__step(sigv4 *s)
{
    int running = 0, i;

    curl_multi_perform(s->multi, &running);
    drain(s);
    objstore__schedule(s);
    for (i = 0; i < 64 && s->mp_active && objstore__tx_service(s); i++) {
        curl_multi_perform(s->multi, &running);
        drain(s);
        objstore__schedule(s);
    }
}

/* ---------------------------------------------------------------- easy handle setup */

int objstore__slot_setup(sigv4 *s, slot *sl)
{
    CURL *e = curl_easy_init();

    if (!e)
        return -1;
    sl->easy = e;
    sl->s = s;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)sl);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (s->stall_timeout_ms + 999) / 1000);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L); /* keys may hold "./" or "../" */
    /* CURLOPT_BUFFERSIZE stays at its 16 KiB default: libcurl 7.88 allocates the buffer per
     * transfer, and at 128 KiB glibc serves it with mmap/munmap on every request. */
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, sl);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, sl);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, sl);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, sl->errbuf);
    sl->conn_of = s;
    return 0;
}
