/* The default ferry_objstore backend: S3 over libcurl's multi interface, requests signed
 * with AWS Signature V4 by ferry_sigv4 (see ferry_sigv4.h for why not CURLOPT_AWS_SIGV4).
 *
 * Shape: one CURLM and max_in_flight "slots", each an easy handle with its own reusable
 * buffers (URL, headers, response). The multi handle owns the connection cache, so every
 * slot reuses kept-alive connections and DNS results. Ops wait in a FIFO queue until a slot
 * is free. A multipart copy is a small state machine (HEAD source -> CreateMultipartUpload
 * -> UploadPartCopy x N in parallel -> Complete, or Abort on failure) whose requests take
 * slots like any other request. Finished ops go to a done queue; pump delivers callbacks.
 *
 * TRANSFER (source on another endpoint or behind other credentials) reuses that state
 * machine: the source's HEAD and GETs are signed with the source store's settings but run
 * on this store's slots and multi, so one pump drives both sides. Each stream (the whole
 * object, or one part) is a GET and a PUT/UploadPart joined by a ring buffer of
 * transfer_buffer_bytes, with curl's pause/unpause as backpressure (see txpipe); its two
 * slots are taken together so that streams can never deadlock waiting for connections.
 *
 * Per request we allocate nothing ourselves (header list nodes live in the slot); libcurl
 * allocates a little internally. Nothing here logs credentials, signatures or URLs. */
#include "ferry_objstore.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "ferry_log.h"
#include "ferry_objstore_internal.h"
#include "ferry_s3xml.h"
#include "ferry_sigv4.h"
#include "ferry_uri.h"

#define MAX_HDRS 32           /* headers per request, signed or not */
#define HBUF_SIZE 16384       /* per-slot header text: copy source (<= 3 KiB) + metadata */
#define ERROR_BODY_MAX (1u << 20)
#define KEEP_BUF_MAX (1u << 20) /* larger response buffers are freed after the request */
#define MAX_PARTS 10000u
#define MIN_PART ((uint64_t)5 << 20)
#define MAX_PART ((uint64_t)5 << 30)
#define MAX_OBJECT ((uint64_t)5 << 40)
#define META_MAX 4096         /* source metadata carried into a multipart copy */
#define META_HDRS_MAX 16
#define ENC_KEY_MAX (3 * FERRY_URI_KEY_MAX + 1)

enum step {
    ST_MAIN, ST_MP_HEAD, ST_MP_INIT, ST_MP_PART, ST_MP_COMPLETE, ST_MP_ABORT,
    ST_TX_GET, /* TRANSFER: GET (ranged for a part) from the source store, into a pipe */
    ST_TX_PUT, /* TRANSFER: PutObject (part 0) or UploadPart fed from the pipe */
};
enum phase { PH_HEAD, PH_SIMPLE, PH_INIT, PH_PARTS, PH_COMPLETE, PH_ABORT, PH_DONE };

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

struct slot;
struct sigv4;
struct mpcopy;

/* One stream of a TRANSFER: a GET on the source store whose body flows through a ring
 * buffer of transfer_buffer_bytes into a PUT (or UploadPart) on the target store. Both are
 * easy handles of the target store's multi; backpressure is curl's pause: the GET's write
 * callback pauses when the ring is full, the PUT's read callback when it is empty, and the
 * pump unpauses them once the other side has moved (never from inside a callback). The PUT
 * starts only once the GET's response headers say 2xx, so a missing source never creates
 * an object, and the PUT carries the source's Content-Type and metadata. */
typedef struct txpipe {
    struct mpcopy *mp;
    struct txpipe *next; /* in mp->pipes */
    uint32_t part;       /* 0: the whole object into one PutObject; else UploadPart n */
    uint64_t first;      /* range start */
    uint64_t count;      /* bytes the GET must deliver; SIZE_UNKNOWN until its headers */
    struct slot *get, *put; /* NULL once released; put is reserved from the start */
    char *ring;
    size_t cap, rpos, len;
    uint64_t received, sent;
    int get_done, get_ok, put_launched, put_done, put_ok;
    int get_paused, put_paused;
    const char *get_why; /* our own reason for refusing the GET's body */
} txpipe;

/* State of one multipart copy, or of any TRANSFER; op->priv_ points here while it runs. */
typedef struct mpcopy {
    ferry_objstore_op *op;
    struct mpcopy *next; /* active list */
    int transfer;        /* a TRANSFER (parts and the simple case are pipes) */
    struct sigv4 *src;   /* TRANSFER: the source store's settings (signs HEAD and GETs) */
    txpipe *pipes;       /* TRANSFER: running streams */
    char src_etag[FERRY_OBJSTORE_ETAG_MAX]; /* TRANSFER: the source's ETag (If-Match) */
    enum phase phase;
    int busy;     /* a one-at-a-time request (head/init/complete/abort/simple) in flight */
    int failed;   /* op->rc/err hold the first failure */
    uint64_t size, part_size;
    uint32_t nparts, next_part, parts_done, parts_in_flight;
    char upload_id[1024];
    char (*etags)[FERRY_OBJSTORE_ETAG_MAX];
    char content_type[256];
    char meta[META_MAX]; /* "name\0value\0" pairs from the source's HEAD */
    size_t meta_len;
    int meta_n;
    buf body; /* CompleteMultipartUpload XML */
} mpcopy;

typedef struct slot {
    CURL *easy;
    struct sigv4 *s;
    ferry_objstore_op *op; /* NULL when free */
    enum step step;
    uint32_t part;
    txpipe *pipe;          /* TRANSFER streams only */
    const struct sigv4 *conn_of; /* whose connection settings (CA, timeouts) are applied */
    buf url;
    buf resp;
    buf reqbody;
    size_t resp_limit; /* for 2xx bodies; errors get ERROR_BODY_MAX */
    const char *up;
    size_t up_len, up_off;
    char hbuf[HBUF_SIZE];
    size_t hlen;
    struct curl_slist hnodes[MAX_HDRS + 2];
    char errbuf[CURL_ERROR_SIZE];
    /* response as seen by the header callback */
    int status;
    int headers_done; /* the final response's headers are complete */
    int too_large;
    int capture_meta;
    char etag[FERRY_OBJSTORE_ETAG_MAX];
    uint64_t clen;
    int have_clen;
    int64_t last_modified_ms;
} slot;

typedef struct sigv4 {
    /* configuration (owned copies) */
    char *scheme; /* "http" or "https" */
    char *host;   /* "host[:port]" as in the Host header (path style) */
    char *region;
    char *access_key, *secret_key, *session_token;
    char *ca_file;
    char *default_ca; /* libcurl's built-in CA bundle, restored after a source store's */
    int path_style;
    long connect_timeout_ms, request_timeout_ms, stall_timeout_ms;
    size_t max_response;
    uint64_t mp_threshold, mp_part_size;
    size_t tx_buffer;
    /* signing */
    time_t date_t;
    char amz_date[17];
    char key_date[9];
    unsigned char signing_key[32];
    /* transfer machinery */
    CURLM *multi;
    slot *slots;
    int nslots;
    int *free_idx;
    int nfree;
    ferry_objstore_opqs ops; /* waiting for a slot, finished with callback due */
    mpcopy *mp_active;
    int pair_wanted; /* a TRANSFER stream waits for two free slots: hold queued ops back */
} sigv4;

/* ---------------------------------------------------------------- small helpers */

static int buf_reserve(buf *b, size_t need)
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

static int buf_append(buf *b, const void *d, size_t n)
{
    if (buf_reserve(b, b->len + n + 1))
        return -1;
    memcpy(b->p + b->len, d, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, b->len + (size_t)n + 1))
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

static void buf_free(buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static const char *step_name(const ferry_objstore_op *op, enum step st)
{
    switch (st) {
    case ST_MP_HEAD: return "HeadObject";
    case ST_MP_INIT: return "CreateMultipartUpload";
    case ST_MP_PART: return "UploadPartCopy";
    case ST_MP_COMPLETE: return "CompleteMultipartUpload";
    case ST_MP_ABORT: return "AbortMultipartUpload";
    case ST_TX_GET: return "GetObject";
    case ST_TX_PUT: return "PutObject"; /* UploadPart: see describe() */
    case ST_MAIN: break;
    }
    switch (op->type) {
    case FERRY_OBJSTORE_OP_HEAD: return "HeadObject";
    case FERRY_OBJSTORE_OP_COPY: return "CopyObject";
    case FERRY_OBJSTORE_OP_PUT: return "PutObject";
    case FERRY_OBJSTORE_OP_GET: return "GetObject";
    case FERRY_OBJSTORE_OP_DELETE: return "DeleteObject";
    case FERRY_OBJSTORE_OP_LIST: return "ListObjectsV2";
    case FERRY_OBJSTORE_OP_HEAD_BUCKET: return "HeadBucket";
    case FERRY_OBJSTORE_OP_CREATE_BUCKET: return "CreateBucket";
    case FERRY_OBJSTORE_OP_TRANSFER: return "Transfer";
    case FERRY_OBJSTORE_OP_LIST_UPLOADS: return "ListMultipartUploads";
    case FERRY_OBJSTORE_OP_ABORT_UPLOAD: return "AbortMultipartUpload";
    }
    return "request";
}

/* "CopyObject src/k -> dst/k part 3/12" style description of a request. */
static void describe(const ferry_objstore_op *op, enum step st, uint32_t part, char *out,
                     size_t size)
{
    char a[240], b[240];
    const mpcopy *mp = op->priv_;

    switch (op->type) {
    case FERRY_OBJSTORE_OP_TRANSFER:
        /* "Transfer a/k -> b/k: GetObject part 2/4" -- both sides, then the failed step. */
        ferry_objstore_show(a, sizeof(a), op->src_bucket, op->src_key);
        ferry_objstore_show(b, sizeof(b), op->bucket, op->key);
        if (st == ST_MAIN)
            snprintf(out, size, "Transfer %s -> %s", a, b);
        else if ((st == ST_TX_GET || st == ST_TX_PUT) && part && mp)
            snprintf(out, size, "Transfer %s -> %s: %s part %u/%u", a, b,
                     st == ST_TX_PUT ? "UploadPart" : "GetObject", part, mp->nparts);
        else
            snprintf(out, size, "Transfer %s -> %s: %s", a, b, step_name(op, st));
        return;
    case FERRY_OBJSTORE_OP_COPY:
        if (st == ST_MP_HEAD) {
            ferry_objstore_show(a, sizeof(a), op->src_bucket, op->src_key);
            snprintf(out, size, "%s %s", step_name(op, st), a);
            return;
        }
        ferry_objstore_show(a, sizeof(a), op->src_bucket, op->src_key);
        ferry_objstore_show(b, sizeof(b), op->bucket, op->key);
        if (st == ST_MP_PART && mp)
            snprintf(out, size, "%s %s -> %s part %u/%u", step_name(op, st), a, b, part,
                     mp->nparts);
        else
            snprintf(out, size, "%s %s -> %s", step_name(op, st), a, b);
        return;
    case FERRY_OBJSTORE_OP_LIST:
    case FERRY_OBJSTORE_OP_LIST_UPLOADS:
        ferry_objstore_show(a, sizeof(a), op->bucket,
                            op->prefix && *op->prefix ? op->prefix : NULL);
        break;
    case FERRY_OBJSTORE_OP_HEAD_BUCKET:
    case FERRY_OBJSTORE_OP_CREATE_BUCKET:
        ferry_objstore_show(a, sizeof(a), op->bucket, NULL);
        break;
    default:
        ferry_objstore_show(a, sizeof(a), op->bucket, op->key);
        break;
    }
    snprintf(out, size, "%s %s", step_name(op, st), a);
}

/* ---------------------------------------------------------------- curl callbacks */

/* TRANSFER GET body -> ring. Accepts the whole chunk or pauses (curl hands the same chunk
 * again after the unpause). */
static size_t pipe_write(txpipe *p, const char *data, size_t len)
{
    size_t tail, first;

    if (p->count != FERRY_OBJSTORE_SIZE_UNKNOWN && p->received + len > p->count) {
        p->get_why = "the source sent more bytes than its Content-Length or range";
        return 0;
    }
    if (len > p->cap - p->len) {
        if (len > p->cap && !p->len) {
            /* A chunk larger than the whole ring (not seen with curl's 16 KiB chunks). */
            char *r = realloc(p->ring, len);
            if (!r) {
                p->get_why = "out of memory";
                return 0;
            }
            p->ring = r;
            p->cap = len;
            p->rpos = 0;
        } else {
            p->get_paused = 1;
            return CURL_WRITEFUNC_PAUSE;
        }
    }
    tail = (p->rpos + p->len) % p->cap;
    first = p->cap - tail < len ? p->cap - tail : len;
    memcpy(p->ring + tail, data, first);
    memcpy(p->ring, data + first, len - first);
    p->len += len;
    p->received += len;
    return len;
}

/* Ring -> TRANSFER PUT body. */
static size_t pipe_read(txpipe *p, char *out, size_t len)
{
    size_t n = 0;

    if (p->get_done && !p->get_ok)
        return CURL_READFUNC_ABORT;
    while (len && p->len) {
        size_t run = p->cap - p->rpos;
        if (run > p->len)
            run = p->len;
        if (run > len)
            run = len;
        memcpy(out + n, p->ring + p->rpos, run);
        p->rpos = (p->rpos + run) % p->cap;
        p->len -= run;
        n += run;
        len -= run;
    }
    if (n) {
        p->sent += n;
        return n;
    }
    if (p->get_done) /* all received and sent: a short source is an error, not an EOF */
        return p->sent == p->count ? 0 : CURL_READFUNC_ABORT;
    p->put_paused = 1;
    return CURL_READFUNC_PAUSE;
}

static size_t on_write(char *data, size_t sz, size_t n, void *ud)
{
    slot *sl = ud;
    size_t len = sz * n;
    size_t limit = (sl->status >= 200 && sl->status < 300) ? sl->resp_limit : ERROR_BODY_MAX;

    if (sl->pipe && sl->step == ST_TX_GET && sl->status >= 200 && sl->status < 300)
        return pipe_write(sl->pipe, data, len);
    if (sl->resp.len + len > limit) {
        sl->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (!sl->resp.len && sl->have_clen && sl->clen <= limit && sl->status >= 200 &&
        sl->status < 300 && buf_reserve(&sl->resp, (size_t)sl->clen + 1))
        return 0;
    if (buf_append(&sl->resp, data, len))
        return 0;
    return len;
}

static size_t on_read(char *out, size_t sz, size_t n, void *ud)
{
    slot *sl = ud;
    size_t len = sz * n, left = sl->up_len - sl->up_off;

    if (sl->pipe && sl->step == ST_TX_PUT)
        return pipe_read(sl->pipe, out, len);
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
    static const char *const std[] = {"cache-control", "content-disposition",
                                      "content-encoding", "content-language", "expires", NULL};
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

/* ---------------------------------------------------------------- request building */

typedef struct req {
    const char *method;
    const char *bucket;
    const char *key; /* NULL for bucket-level requests */
    ferry_uri_qparam q[8];
    size_t nq;
    ferry_sigv4_header h[MAX_HDRS];
    size_t nh;
    const void *body;
    size_t body_len;
    int upload;     /* send a body (possibly empty) with UPLOAD */
    int stream;     /* the body comes from a TRANSFER pipe: body_len bytes, UNSIGNED-PAYLOAD */
    int small;      /* metadata request: hard total timeout */
    int want_meta;  /* capture the source's metadata (multipart HEAD) */
    size_t resp_limit;
    char payload_hash[65];
} req;

/* Copies a NUL-terminated string into the slot's header area. */
static const char *hstore(slot *sl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *hstore(slot *sl, const char *fmt, ...)
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

static int add_hdr(req *r, const char *name, const char *value)
{
    if (!value || r->nh >= MAX_HDRS)
        return -1;
    r->h[r->nh].name = name;
    r->h[r->nh].value = value;
    r->nh++;
    return 0;
}

/* "/bucket/key" encoded as S3 wants it in x-amz-copy-source. */
static const char *copy_source(slot *sl, const char *bucket, const char *key)
{
    char enc[ENC_KEY_MAX];

    if (ferry_uri_pct_encode(key, strlen(key), 1, enc, sizeof(enc)) >= sizeof(enc))
        return NULL;
    return hstore(sl, "/%s/%s", bucket, enc);
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
        path = r->key ? hstore(sl, "/%s/%s", r->bucket, enc_key) : hstore(sl, "/%s", r->bucket);
    } else {
        host = hstore(sl, "%s.%s", r->bucket, sg->host);
        path = r->key ? hstore(sl, "/%s", enc_key) : "/";
    }
    if (!host || !path ||
        buf_printf(&sl->url, "%s://%s%s%s%s", sg->scheme, host, path, qlen ? "?" : "", query))
        goto too_big;

    refresh_signing_key(sg);
    if (!sg->key_date[0])
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                               "deriving the signing key failed"),
               -1;
    if (r->stream) {
        memcpy(r->payload_hash, FERRY_SIGV4_UNSIGNED, sizeof(FERRY_SIGV4_UNSIGNED));
    } else if (r->upload && r->body_len) {
        if (ferry_sigv4_sha256_hex(r->body, r->body_len, r->payload_hash))
            return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "hashing the request body failed"),
                   -1;
    } else {
        memcpy(r->payload_hash, FERRY_SIGV4_EMPTY_SHA256, 65);
    }
    date_h = hstore(sl, "%s", sg->amz_date);
    if (!date_h || add_hdr(r, "host", host) || add_hdr(r, "x-amz-date", date_h) ||
        add_hdr(r, "x-amz-content-sha256", r->payload_hash))
        goto too_big;
    if (sg->session_token && add_hdr(r, "x-amz-security-token", sg->session_token))
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
        const char *line = hstore(sl, "%s: %s", r->h[i].name, r->h[i].value);
        if (!line)
            goto too_big;
        sl->hnodes[nn].data = (char *)line;
        nn++;
    }
    if (!(sl->hnodes[nn].data = (char *)hstore(sl, "Authorization: %s", auth)))
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

/* The paging query of LIST and LIST_UPLOADS, under each call's own parameter names: page
 * size, prefix, and the key to resume after. Our continuation token is the last key seen
 * (see ferry_objstore_listing): resume after whichever of it and start_after comes later.
 * 0, or -1 when the slot's header area is full. */
static int add_page_params(slot *sl, const ferry_objstore_op *op, req *r, const char *max_name,
                           const char *after_name)
{
    const char *v = hstore(sl, "%d", op->max_keys > 0 ? op->max_keys : 1000);

    if (!v)
        return -1;
    r->q[r->nq++] = (ferry_uri_qparam){max_name, v};
    if (op->prefix && *op->prefix)
        r->q[r->nq++] = (ferry_uri_qparam){"prefix", op->prefix};
    v = op->start_after && *op->start_after ? op->start_after : NULL;
    if (op->continuation_token && *op->continuation_token &&
        (!v || strcmp(op->continuation_token, v) > 0))
        v = op->continuation_token;
    if (v)
        r->q[r->nq++] = (ferry_uri_qparam){after_name, v};
    return 0;
}

/* Fills r for op's request at step st (part: UploadPartCopy part number). */
static int build(sigv4 *s, slot *sl, ferry_objstore_op *op, enum step st, uint32_t part,
                 req *r, ferry_error *err)
{
    mpcopy *mp = op->priv_;
    const char *v;
    char num[32];

    memset(r, 0, sizeof(*r));
    r->bucket = op->bucket;
    r->key = op->key;
    switch (st) {
    case ST_MAIN:
        switch (op->type) {
        case FERRY_OBJSTORE_OP_HEAD:
            r->method = "HEAD";
            r->small = 1;
            break;
        case FERRY_OBJSTORE_OP_GET:
            r->method = "GET";
            r->resp_limit = op->max_size ? op->max_size : s->max_response;
            break;
        case FERRY_OBJSTORE_OP_DELETE:
            r->method = "DELETE";
            r->small = 1;
            break;
        case FERRY_OBJSTORE_OP_PUT:
            r->method = "PUT";
            r->upload = 1;
            r->body = op->put_data;
            r->body_len = op->put_len;
            if (add_hdr(r, "content-type",
                        op->content_type ? hstore(sl, "%s", op->content_type)
                                         : "application/octet-stream"))
                goto too_big;
            if (op->if_none_match && add_hdr(r, "if-none-match", "*"))
                goto too_big;
            break;
        case FERRY_OBJSTORE_OP_COPY:
            r->method = "PUT";
            r->upload = 1;
            if (add_hdr(r, "x-amz-copy-source", copy_source(sl, op->src_bucket, op->src_key)))
                goto too_big;
            if (op->src_if_match &&
                add_hdr(r, "x-amz-copy-source-if-match", hstore(sl, "\"%s\"", op->src_if_match)))
                goto too_big;
            if (op->if_none_match && add_hdr(r, "if-none-match", "*"))
                goto too_big;
            break;
        case FERRY_OBJSTORE_OP_LIST:
            r->method = "GET";
            r->key = NULL;
            r->small = 1;
            r->q[r->nq++] = (ferry_uri_qparam){"list-type", "2"};
            r->q[r->nq++] = (ferry_uri_qparam){"encoding-type", "url"};
            if (add_page_params(sl, op, r, "max-keys", "start-after"))
                goto too_big;
            break;
        case FERRY_OBJSTORE_OP_HEAD_BUCKET:
            r->method = "HEAD";
            r->key = NULL;
            r->small = 1;
            break;
        case FERRY_OBJSTORE_OP_LIST_UPLOADS:
            r->method = "GET";
            r->key = NULL;
            r->small = 1;
            r->q[r->nq++] = (ferry_uri_qparam){"uploads", NULL};
            if (add_page_params(sl, op, r, "max-uploads", "key-marker"))
                goto too_big;
            break;
        case FERRY_OBJSTORE_OP_ABORT_UPLOAD:
            r->method = "DELETE";
            r->small = 1;
            r->q[r->nq++] = (ferry_uri_qparam){"uploadId", op->upload_id};
            break;
        case FERRY_OBJSTORE_OP_TRANSFER: /* runs as ST_TX_* and ST_MP_* steps */
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                                   "transfer step missing"),
                   -1;
        case FERRY_OBJSTORE_OP_CREATE_BUCKET:
            r->method = "PUT";
            r->key = NULL;
            r->small = 1;
            r->upload = 1;
            sl->reqbody.len = 0;
            if (strcmp(s->region, "us-east-1") != 0) {
                if (buf_printf(&sl->reqbody,
                               "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
                               "2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
                               "</CreateBucketConfiguration>",
                               s->region))
                    goto too_big;
                r->body = sl->reqbody.p;
                r->body_len = sl->reqbody.len;
                if (add_hdr(r, "content-type", "application/xml"))
                    goto too_big;
            }
            break;
        }
        break;
    case ST_MP_HEAD:
        r->method = "HEAD";
        r->bucket = op->src_bucket;
        r->key = op->src_key;
        r->small = 1;
        r->want_meta = 1;
        if (op->src_if_match && add_hdr(r, "if-match", hstore(sl, "\"%s\"", op->src_if_match)))
            goto too_big;
        break;
    case ST_MP_INIT: {
        const char *m = mp->meta;
        int i;
        r->method = "POST";
        r->upload = 1;
        r->small = 1;
        r->q[r->nq++] = (ferry_uri_qparam){"uploads", NULL};
        if (add_hdr(r, "content-type",
                    mp->content_type[0] ? mp->content_type : "application/octet-stream"))
            goto too_big;
        for (i = 0; i < mp->meta_n; i++) {
            const char *val = m + strlen(m) + 1;
            if (add_hdr(r, m, val))
                goto too_big;
            m = val + strlen(val) + 1;
        }
        break;
    }
    case ST_MP_PART: {
        uint64_t first = (uint64_t)(part - 1) * mp->part_size;
        uint64_t last = first + mp->part_size - 1;
        if (last >= mp->size)
            last = mp->size - 1;
        r->method = "PUT";
        r->upload = 1;
        snprintf(num, sizeof(num), "%u", part);
        if (!(v = hstore(sl, "%s", num)))
            goto too_big;
        r->q[r->nq++] = (ferry_uri_qparam){"partNumber", v};
        r->q[r->nq++] = (ferry_uri_qparam){"uploadId", mp->upload_id};
        if (add_hdr(r, "x-amz-copy-source", copy_source(sl, op->src_bucket, op->src_key)) ||
            add_hdr(r, "x-amz-copy-source-range",
                    hstore(sl, "bytes=%llu-%llu", (unsigned long long)first,
                           (unsigned long long)last)))
            goto too_big;
        if (op->src_if_match &&
            add_hdr(r, "x-amz-copy-source-if-match", hstore(sl, "\"%s\"", op->src_if_match)))
            goto too_big;
        break;
    }
    case ST_MP_COMPLETE: {
        uint32_t i;
        r->method = "POST";
        r->upload = 1;
        r->q[r->nq++] = (ferry_uri_qparam){"uploadId", mp->upload_id};
        mp->body.len = 0;
        if (buf_printf(&mp->body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/"
                                  "doc/2006-03-01/\">"))
            goto too_big;
        for (i = 0; i < mp->nparts; i++) {
            /* Part ETags are hex (MD5) from the server; refuse anything needing escapes. */
            if (strpbrk(mp->etags[i], "<>&\"'"))
                return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                       "server returned an unusable part ETag"),
                       -1;
            if (buf_printf(&mp->body, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag>"
                                      "</Part>",
                           i + 1, mp->etags[i]))
                goto too_big;
        }
        if (buf_printf(&mp->body, "</CompleteMultipartUpload>"))
            goto too_big;
        r->body = mp->body.p;
        r->body_len = mp->body.len;
        if (add_hdr(r, "content-type", "application/xml"))
            goto too_big;
        if (op->if_none_match && add_hdr(r, "if-none-match", "*"))
            goto too_big;
        break;
    }
    case ST_MP_ABORT:
        r->method = "DELETE";
        r->small = 1;
        r->q[r->nq++] = (ferry_uri_qparam){"uploadId", mp->upload_id};
        break;
    case ST_TX_GET: {
        const txpipe *p = sl->pipe;
        const char *im = op->src_if_match ? op->src_if_match : mp->src_etag[0] ? mp->src_etag
                                                                                : NULL;
        r->method = "GET";
        r->bucket = op->src_bucket;
        r->key = op->src_key;
        r->want_meta = part == 0; /* a single PUT carries what the GET says */
        if (part && add_hdr(r, "range",
                            hstore(sl, "bytes=%llu-%llu", (unsigned long long)p->first,
                                   (unsigned long long)(p->first + p->count - 1))))
            goto too_big;
        /* Parts must all come from one version of the object. */
        if (im && add_hdr(r, "if-match", hstore(sl, "\"%s\"", im)))
            goto too_big;
        break;
    }
    case ST_TX_PUT: {
        const txpipe *p = sl->pipe;
        r->method = "PUT";
        r->upload = 1;
        r->stream = 1;
        r->body_len = (size_t)p->count;
        if (part) {
            snprintf(num, sizeof(num), "%u", part);
            if (!(v = hstore(sl, "%s", num)))
                goto too_big;
            r->q[r->nq++] = (ferry_uri_qparam){"partNumber", v};
            r->q[r->nq++] = (ferry_uri_qparam){"uploadId", mp->upload_id};
            /* S3Proxy wants an explicit Content-Type on every body. */
            if (add_hdr(r, "content-type", "application/octet-stream"))
                goto too_big;
        } else {
            const char *m = mp->meta;
            int i;
            if (add_hdr(r, "content-type",
                        mp->content_type[0] ? mp->content_type : "application/octet-stream"))
                goto too_big;
            for (i = 0; i < mp->meta_n; i++) {
                const char *val = m + strlen(m) + 1;
                if (add_hdr(r, m, val))
                    goto too_big;
                m = val + strlen(val) + 1;
            }
            if (op->if_none_match && add_hdr(r, "if-none-match", "*"))
                goto too_big;
        }
        break;
    }
    }
    return 0;
too_big:
    return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                           "request too large (key, metadata or token)"),
           -1;
}

/* ---------------------------------------------------------------- completion */

static void push_done(sigv4 *s, ferry_objstore_op *op)
{
    ferry_objstore_opq_push(&s->ops.done, op);
}

static void set_op_error(ferry_objstore_op *op, enum step st, uint32_t part, ferry_rc rc,
                         const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void set_op_error(ferry_objstore_op *op, enum step st, uint32_t part, ferry_rc rc,
                         const char *cls, const char *fmt, ...)
{
    char what[600], detail[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    describe(op, st, part, what, sizeof(what));
    op->rc = ferry_error_set(&op->err, rc, cls, "%s: %s", what, detail);
}

static ferry_rc curl_class(CURLcode cc, const char **cls)
{
    *cls = FERRY_EC_S3_NETWORK;
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
        *cls = FERRY_EC_CONFIG;
        return FERRY_ERR_PERMANENT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
        /* A certificate that does not verify will not verify on retry either. */
        return FERRY_ERR_PERMANENT;
    case CURLE_OUT_OF_MEMORY:
        *cls = FERRY_EC_INTERNAL;
        return FERRY_ERR_RETRYABLE;
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
static ferry_rc check(sigv4 *s, slot *sl, CURLcode cc, ferry_objstore_op *op, enum step st,
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
                set_op_error(op, st, part, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                             "object is larger than the %zu bytes allowed", sl->resp_limit);
            else
                set_op_error(op, st, part, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                             "response larger than %zu bytes", sl->resp_limit);
            op->http_status = sl->status;
            return op->rc;
        }
        rc = curl_class(cc, &cls);
        set_op_error(op, st, part, rc, cls, "%s (curl %d: %s)",
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
    if (x && sl->resp.len && !ferry_s3xml_parse_result(sl->resp.p, sl->resp.len, x, why,
                                                       sizeof(why)) &&
        !strcmp(x->root, "Error")) {
        snprintf(op->s3_code, sizeof(op->s3_code), "%s", x->code);
        ferry_objstore_clean_text(op->s3_code);
        ferry_objstore_clean_text(x->message);
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
        set_op_error(op, st, part, rc, cls, "%d %s: %s", sl->status, op->s3_code,
                     x->message[0] ? x->message : "(no message)");
    else
        set_op_error(op, st, part, rc, cls, "HTTP %d%s%s", sl->status,
                     *status_text(sl->status) ? " " : "", status_text(sl->status));
    free(x);
    return rc;
}

/* Parses a 2xx result document (copy/part/init/complete). A 200 can still carry an Error
 * (S3 sends the status before a long copy finishes). Returns FERRY_OK and fills x. */
static ferry_rc parse_result_doc(slot *sl, ferry_objstore_op *op, enum step st, uint32_t part,
                                 ferry_s3xml_result *x, int report)
{
    char why[160];
    const char *cls;
    ferry_rc rc;

    if (!sl->resp.len || ferry_s3xml_parse_result(sl->resp.p, sl->resp.len, x, why,
                                                  sizeof(why))) {
        if (report)
            set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                         "%d with an unreadable body: %s", sl->status,
                         sl->resp.len ? why : "empty");
        return FERRY_ERR_RETRYABLE;
    }
    if (!strcmp(x->root, "Error")) {
        if (report) {
            ferry_objstore_clean_text(x->code);
            ferry_objstore_clean_text(x->message);
            snprintf(op->s3_code, sizeof(op->s3_code), "%s", x->code);
            /* An error inside a 200 is the server's failure unless its code is one we
             * know to be auth or not-found. */
            cls = ferry_objstore_classify(0, x->code, &rc);
            if (!strcmp(cls, FERRY_EC_S3_CLIENT)) {
                cls = FERRY_EC_S3_SERVER;
                rc = FERRY_ERR_RETRYABLE;
            }
            set_op_error(op, st, part, rc, cls, "%d %s: %s", sl->status, x->code,
                         x->message[0] ? x->message : "(no message)");
            return rc;
        }
        return FERRY_ERR_RETRYABLE;
    }
    return FERRY_OK;
}

static void mp_fail(mpcopy *mp);

static void finish_main(sigv4 *s, slot *sl, ferry_objstore_op *op, CURLcode cc)
{
    ferry_s3xml_result *x;
    char why[160];

    op->http_status = sl->status;
    if (check(s, sl, cc, op, ST_MAIN, 0) != FERRY_OK)
        return;
    op->rc = FERRY_OK;
    switch (op->type) {
    case FERRY_OBJSTORE_OP_HEAD:
        op->size = sl->have_clen ? sl->clen : 0;
        memcpy(op->etag, sl->etag, sizeof(op->etag));
        op->last_modified_ms = sl->last_modified_ms;
        break;
    case FERRY_OBJSTORE_OP_PUT:
        memcpy(op->etag, sl->etag, sizeof(op->etag));
        break;
    case FERRY_OBJSTORE_OP_GET:
        if (buf_reserve(&sl->resp, sl->resp.len + 1)) {
            set_op_error(op, ST_MAIN, 0, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
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
        break;
    case FERRY_OBJSTORE_OP_COPY:
        x = malloc(sizeof(*x));
        if (!x) {
            set_op_error(op, ST_MAIN, 0, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                         "out of memory");
            return;
        }
        if (parse_result_doc(sl, op, ST_MAIN, 0, x, 1) == FERRY_OK)
            memcpy(op->etag, x->etag, sizeof(op->etag));
        free(x);
        break;
    case FERRY_OBJSTORE_OP_LIST:
        if (ferry_s3xml_parse_list(sl->resp.p ? sl->resp.p : "", sl->resp.len, op->listing, why,
                                   sizeof(why)))
            set_op_error(op, ST_MAIN, 0, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                         "%d with an unreadable listing: %s", sl->status, why);
        break;
    case FERRY_OBJSTORE_OP_LIST_UPLOADS:
        if (ferry_s3xml_parse_uploads(sl->resp.p ? sl->resp.p : "", sl->resp.len, op->listing,
                                      why, sizeof(why)))
            set_op_error(op, ST_MAIN, 0, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                         "%d with an unreadable upload listing: %s", sl->status, why);
        break;
    case FERRY_OBJSTORE_OP_DELETE:
    case FERRY_OBJSTORE_OP_HEAD_BUCKET:
    case FERRY_OBJSTORE_OP_CREATE_BUCKET:
    case FERRY_OBJSTORE_OP_ABORT_UPLOAD:
    case FERRY_OBJSTORE_OP_TRANSFER:
        break;
    }
}

static void plan_parts(sigv4 *s, mpcopy *mp)
{
    uint64_t ps = s->mp_part_size;
    uint64_t min_for_count = (mp->size + MAX_PARTS - 1) / MAX_PARTS;

    if (ps < min_for_count)
        ps = min_for_count;
    ps = (ps + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1); /* whole MiB */
    if (ps < MIN_PART)
        ps = MIN_PART;
    if (ps > MAX_PART)
        ps = MAX_PART;
    mp->part_size = ps;
    mp->nparts = (uint32_t)((mp->size + ps - 1) / ps);
    mp->next_part = 1;
}

static void finish_mp(sigv4 *s, slot *sl, ferry_objstore_op *op, enum step st, uint32_t part,
                      CURLcode cc)
{
    mpcopy *mp = op->priv_;
    ferry_s3xml_result *x = NULL;
    int first_failure = !mp->failed;

    if (st == ST_MP_PART)
        mp->parts_in_flight--;
    else
        mp->busy = 0;
    if (st == ST_MP_ABORT) {
        mp->phase = PH_DONE; /* best effort; the op keeps its first error */
        return;
    }
    if (check(s, sl, cc, op, st, part) != FERRY_OK) {
        mp_fail(mp);
        return;
    }
    if (mp->failed && st == ST_MP_PART)
        return; /* a sibling part failed already; this one is moot */
    x = calloc(1, sizeof(*x));
    if (!x) {
        if (first_failure)
            set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        mp_fail(mp);
        return;
    }
    switch (st) {
    case ST_MP_HEAD:
        if (!sl->have_clen) {
            set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                         "no Content-Length in the response");
            mp_fail(mp);
            break;
        }
        mp->size = sl->clen;
        if (mp->transfer)
            memcpy(mp->src_etag, sl->etag, sizeof(mp->src_etag));
        if (mp->size > MAX_OBJECT) {
            set_op_error(op, st, part, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                         "object of %llu bytes exceeds S3's 5 TiB limit",
                         (unsigned long long)mp->size);
            mp_fail(mp);
            break;
        }
        if (mp->size <= s->mp_threshold) {
            mp->phase = PH_SIMPLE; /* smaller than the caller said: one CopyObject */
            break;
        }
        plan_parts(s, mp);
        mp->etags = calloc(mp->nparts, sizeof(*mp->etags));
        if (!mp->etags) {
            set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
            mp_fail(mp);
            break;
        }
        mp->phase = PH_INIT;
        break;
    case ST_MP_INIT:
        if (parse_result_doc(sl, op, st, part, x, 1) != FERRY_OK) {
            mp_fail(mp);
        } else if (!x->upload_id[0]) {
            set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                         "no UploadId in the response");
            mp_fail(mp);
        } else {
            memcpy(mp->upload_id, x->upload_id, sizeof(mp->upload_id));
            mp->phase = PH_PARTS;
            ferry_debug(NULL, "multipart copy started: %u parts of %llu bytes", mp->nparts,
                        (unsigned long long)mp->part_size);
        }
        break;
    case ST_MP_PART:
        if (parse_result_doc(sl, op, st, part, x, 1) != FERRY_OK) {
            mp_fail(mp);
        } else if (!x->etag[0]) {
            set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                         "no ETag in the response");
            mp_fail(mp);
        } else {
            memcpy(mp->etags[part - 1], x->etag, sizeof(mp->etags[0]));
            mp->parts_done++;
        }
        break;
    case ST_MP_COMPLETE:
        if (parse_result_doc(sl, op, st, part, x, 1) != FERRY_OK) {
            mp_fail(mp);
        } else {
            memcpy(op->etag, x->etag, sizeof(op->etag));
            op->multipart = 1;
            if (mp->transfer)
                op->size = mp->size;
            op->rc = FERRY_OK;
            op->http_status = sl->status;
            mp->phase = PH_DONE;
        }
        break;
    default:
        break;
    }
    free(x);
}

/* ---------------------------------------------------------------- scheduling */

static slot *take_slot(sigv4 *s)
{
    return &s->slots[s->free_idx[--s->nfree]];
}

static void slot_release(sigv4 *s, slot *sl)
{
    sl->op = NULL;
    sl->pipe = NULL;
    if (sl->resp.cap > KEEP_BUF_MAX)
        buf_free(&sl->resp);
    if (sl->reqbody.cap > KEEP_BUF_MAX)
        buf_free(&sl->reqbody);
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
static int start(sigv4 *s, slot *sl, ferry_objstore_op *op, enum step st, uint32_t part)
{
    req r;
    ferry_error err;

    sl->hlen = 0;
    sl->op = op;
    sl->step = st;
    sl->part = part;
    if (build(s, sl, op, st, part, &r, &err) || launch(s, signer(s, op, st), sl, &r, &err)) {
        mpcopy *mp = op->priv_;
        char what[300];
        sl->op = NULL;
        if (!mp || !mp->failed) {
            describe(op, st, part, what, sizeof(what));
            op->rc = ferry_error_set(&op->err, err.rc, err.cls, "%s: %s", what, err.msg);
        }
        return -1;
    }
    return 0;
}

static void pipe_free(txpipe *p)
{
    if (p) {
        free(p->ring);
        free(p);
    }
}

static void mp_free(mpcopy *mp)
{
    if (!mp)
        return;
    while (mp->pipes) {
        txpipe *p = mp->pipes;
        mp->pipes = p->next;
        pipe_free(p);
    }
    free(mp->etags);
    buf_free(&mp->body);
    free(mp);
}

/* ---------------------------------------------------------------- transfer streams */

/* Starts stream `part` of mp's transfer (0: the whole object): its GET now, with the PUT's
 * slot reserved so that a stream never waits for a connection mid-way. Needs two free
 * slots. Returns 0, or -1 with the op's error set. */
static int pipe_start(sigv4 *s, mpcopy *mp, uint32_t part)
{
    ferry_objstore_op *op = mp->op;
    txpipe *p = calloc(1, sizeof(*p));
    slot *g, *pu;

    if (p)
        p->ring = malloc(s->tx_buffer);
    if (!p || !p->ring) {
        pipe_free(p);
        if (!mp->failed)
            set_op_error(op, ST_TX_GET, part, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                         "out of memory");
        return -1;
    }
    p->mp = mp;
    p->part = part;
    p->cap = s->tx_buffer;
    if (part) {
        p->first = (uint64_t)(part - 1) * mp->part_size;
        p->count = mp->size - p->first < mp->part_size ? mp->size - p->first : mp->part_size;
    } else {
        p->count = FERRY_OBJSTORE_SIZE_UNKNOWN; /* the GET's Content-Length says */
        /* The PUT carries the metadata the GET returns (not a HEAD's, if one ran). */
        mp->meta_len = 0;
        mp->meta_n = 0;
        mp->content_type[0] = '\0';
    }
    g = take_slot(s);
    g->pipe = p;
    if (start(s, g, op, ST_TX_GET, part)) {
        slot_release(s, g);
        pipe_free(p);
        return -1;
    }
    pu = take_slot(s);
    pu->op = op;
    pu->pipe = p;
    pu->step = ST_TX_PUT;
    pu->part = part;
    p->get = g;
    p->put = pu;
    p->next = mp->pipes;
    mp->pipes = p;
    return 0;
}

/* The GET's response headers said 2xx: learn and check how many bytes will come. */
static int pipe_headers(txpipe *p, const slot *g)
{
    mpcopy *mp = p->mp;
    ferry_objstore_op *op = mp->op;

    if (!g->have_clen) {
        if (!mp->failed)
            set_op_error(op, ST_TX_GET, p->part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                         "%d without a Content-Length", g->status);
        return -1;
    }
    if (p->part) {
        if (g->clen != p->count) {
            if (!mp->failed)
                set_op_error(op, ST_TX_GET, p->part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                             "%d with %llu bytes for a range of %llu", g->status,
                             (unsigned long long)g->clen, (unsigned long long)p->count);
            return -1;
        }
        return 0;
    }
    if (mp->size != FERRY_OBJSTORE_SIZE_UNKNOWN && g->clen != mp->size) {
        if (!mp->failed)
            set_op_error(op, ST_TX_GET, 0, FERRY_ERR_RETRYABLE, FERRY_EC_VERIFY,
                         "the source is %llu bytes now, %llu were expected (it changed)",
                         (unsigned long long)g->clen, (unsigned long long)mp->size);
        return -1;
    }
    if (g->clen > MAX_PART) {
        if (!mp->failed)
            set_op_error(op, ST_TX_GET, 0, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                         "%llu bytes is above PutObject's 5 GiB limit",
                         (unsigned long long)g->clen);
        return -1;
    }
    p->count = g->clen;
    return 0;
}

static void mp_fail(mpcopy *mp);

/* Ends whatever side of p can end now, and p itself once both have. */
static void pipe_settle(sigv4 *s, txpipe *p)
{
    mpcopy *mp = p->mp;
    ferry_objstore_op *op = mp->op;
    txpipe **pp;

    if (p->put_done && !p->get_done) {
        /* The PUT is over (refused, say): nobody will read the rest of the source. */
        curl_multi_remove_handle(s->multi, p->get->easy);
        slot_release(s, p->get);
        p->get = NULL;
        p->get_done = 1;
    }
    if (p->get_done && !p->get_ok && !p->put_launched && !p->put_done) {
        slot_release(s, p->put);
        p->put = NULL;
        p->put_done = 1;
    }
    if (!p->get_done || !p->put_done)
        return;
    for (pp = &mp->pipes; *pp && *pp != p; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = p->next;
    if (p->part)
        mp->parts_in_flight--;
    else
        mp->busy = 0;
    if (p->get_ok && p->put_ok && !mp->failed) {
        if (p->part) {
            mp->parts_done++;
        } else {
            op->size = p->count;
            op->multipart = 0;
            op->http_status = 200;
            op->rc = FERRY_OK;
            mp->phase = PH_DONE;
        }
    } else {
        if (!mp->failed && op->rc == FERRY_OK)
            set_op_error(op, p->part ? ST_TX_PUT : ST_MAIN, p->part, FERRY_ERR_RETRYABLE,
                         FERRY_EC_INTERNAL, "stream stopped");
        mp_fail(mp);
        if (!p->part)
            mp->phase = PH_DONE;
    }
    pipe_free(p);
}

/* A stream's GET or PUT finished (already removed from the multi handle). */
static void pipe_slot_done(sigv4 *s, slot *sl, CURLcode cc)
{
    txpipe *p = sl->pipe;
    mpcopy *mp = p->mp;
    ferry_objstore_op *op = mp->op;

    if (sl->step == ST_TX_GET) {
        int ok = 0;
        p->get_done = 1;
        p->get = NULL;
        if (cc != CURLE_OK && p->get_why) {
            if (!mp->failed)
                set_op_error(op, ST_TX_GET, p->part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                             "%s", p->get_why);
        } else if (check(s, sl, cc, op, ST_TX_GET, p->part) != FERRY_OK) {
            /* error set by check (unless an earlier one stands) */
        } else if (p->count == FERRY_OBJSTORE_SIZE_UNKNOWN && pipe_headers(p, sl)) {
            /* a 0-byte or tiny object can end before the pump saw its headers */
        } else if (p->received != p->count) {
            if (!mp->failed)
                set_op_error(op, ST_TX_GET, p->part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_NETWORK,
                             "got %llu of %llu bytes", (unsigned long long)p->received,
                             (unsigned long long)p->count);
        } else {
            ok = 1;
        }
        p->get_ok = ok;
        if (!ok)
            mp_fail(mp);
    } else {
        p->put_done = 1;
        p->put = NULL;
        if (check(s, sl, cc, op, ST_TX_PUT, p->part) != FERRY_OK) {
            mp_fail(mp);
        } else if (!sl->etag[0]) {
            if (!mp->failed)
                set_op_error(op, ST_TX_PUT, p->part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                             "no ETag in the response");
            mp_fail(mp);
        } else if (!mp->failed) {
            p->put_ok = 1;
            if (p->part)
                memcpy(mp->etags[p->part - 1], sl->etag, sizeof(mp->etags[0]));
            else
                memcpy(op->etag, sl->etag, sizeof(op->etag));
        }
    }
    slot_release(s, sl);
    pipe_settle(s, p);
}

/* Stops every stream of a failed transfer at once: its result is decided, and the upload
 * can be aborted only when no part is being written. */
static void tx_cancel(sigv4 *s, mpcopy *mp)
{
    while (mp->pipes) {
        txpipe *p = mp->pipes;
        if (p->get) {
            curl_multi_remove_handle(s->multi, p->get->easy);
            slot_release(s, p->get);
            p->get = NULL;
        }
        p->get_done = 1;
        if (p->put) {
            if (p->put_launched)
                curl_multi_remove_handle(s->multi, p->put->easy);
            slot_release(s, p->put);
            p->put = NULL;
        }
        p->put_done = 1;
        pipe_settle(s, p); /* unlinks and frees p */
    }
}

/* Moves streams along between transfers: starts PUTs whose GET answered, unpauses a GET
 * when its ring has room again and a PUT when data (or the end) arrived. Never called from
 * a curl callback. Returns 1 if anything changed (the caller then runs curl again). */
static int tx_service(sigv4 *s)
{
    int moved = 0;
    mpcopy *mp;

    for (mp = s->mp_active; mp; mp = mp->next) {
        txpipe *p, *next;
        if (!mp->transfer)
            continue;
        for (p = mp->pipes; p; p = next) {
            slot *g = p->get;
            next = p->next;
            if (mp->failed)
                break;
            if (!p->put_launched && !p->put_done && !p->get_done && g && g->headers_done &&
                g->status >= 200 && g->status < 300 && p->count == FERRY_OBJSTORE_SIZE_UNKNOWN &&
                pipe_headers(p, g)) {
                mp_fail(mp);
                moved = 1; /* the caller's schedule() stops the streams */
                break;
            }
            if (!p->put_launched && !p->put_done &&
                ((g && g->headers_done && g->status >= 200 && g->status < 300 &&
                  p->count != FERRY_OBJSTORE_SIZE_UNKNOWN) ||
                 (p->get_done && p->get_ok))) {
                if (start(s, p->put, mp->op, ST_TX_PUT, p->part)) {
                    slot_release(s, p->put);
                    p->put = NULL;
                    p->put_done = 1;
                    mp_fail(mp);
                    pipe_settle(s, p);
                    moved = 1;
                    break;
                }
                p->put_launched = 1;
                moved = 1;
            }
            if (p->get_paused && g && p->cap - p->len >= p->cap / 2) {
                p->get_paused = 0;
                curl_easy_pause(g->easy, CURLPAUSE_CONT); /* may deliver the held chunk now */
                moved = 1;
            }
            if (p->put_paused && p->put_launched && p->put && (p->len || p->get_done)) {
                p->put_paused = 0;
                curl_easy_pause(p->put->easy, CURLPAUSE_CONT);
                moved = 1;
            }
        }
    }
    return moved;
}

/* ---------------------------------------------------------------- multipart scheduling */

static void mp_fail(mpcopy *mp)
{
    mp->failed = 1;
}

/* Next request of a multipart copy or transfer, if one can start now. ST_TX_GET stands
 * for a whole stream (two slots). */
static int mp_pick(const mpcopy *mp, enum step *st)
{
    if (mp->failed) {
        if (!mp->busy && !mp->parts_in_flight && mp->upload_id[0] && mp->phase != PH_ABORT &&
            mp->phase != PH_DONE) {
            *st = ST_MP_ABORT;
            return 1;
        }
        return 0;
    }
    switch (mp->phase) {
    case PH_HEAD:
        if (!mp->busy) {
            *st = ST_MP_HEAD;
            return 1;
        }
        return 0;
    case PH_SIMPLE:
        if (!mp->busy) {
            *st = mp->transfer ? ST_TX_GET : ST_MAIN;
            return 1;
        }
        return 0;
    case PH_INIT:
        if (!mp->busy) {
            *st = ST_MP_INIT;
            return 1;
        }
        return 0;
    case PH_PARTS:
        if (mp->next_part <= mp->nparts) {
            *st = mp->transfer ? ST_TX_GET : ST_MP_PART;
            return 1;
        }
        if (mp->parts_done == mp->nparts && !mp->parts_in_flight && !mp->busy) {
            *st = ST_MP_COMPLETE;
            return 1;
        }
        return 0;
    default:
        return 0;
    }
}

static int mp_finished(const mpcopy *mp)
{
    if (mp->busy || mp->parts_in_flight)
        return 0;
    if (mp->phase == PH_DONE)
        return 1;
    return mp->failed && (!mp->upload_id[0] || mp->phase == PH_ABORT);
}

/* Starts multipart requests and streams on free slots; completes finished ones. */
static void mp_schedule(sigv4 *s)
{
    mpcopy **pp = &s->mp_active;

    while (*pp) {
        mpcopy *mp = *pp;
        ferry_objstore_op *op = mp->op;
        enum step st;

        if (mp->failed && mp->pipes)
            tx_cancel(s, mp);
        while (s->nfree && !mp_finished(mp) && mp_pick(mp, &st)) {
            slot *sl;
            uint32_t part = 0;
            if (st == ST_TX_GET) {
                if (s->nfree < 2) {
                    s->pair_wanted = 1;
                    break;
                }
                if (mp->phase == PH_PARTS) {
                    part = mp->next_part++;
                    mp->parts_in_flight++;
                } else {
                    mp->busy = 1;
                }
                if (pipe_start(s, mp, part)) {
                    if (part)
                        mp->parts_in_flight--;
                    else
                        mp->busy = 0, mp->phase = PH_DONE;
                    mp_fail(mp);
                }
                continue;
            }
            sl = take_slot(s);
            if (st == ST_MP_PART) {
                part = mp->next_part++;
                mp->parts_in_flight++;
            } else {
                mp->busy = 1;
                if (st == ST_MP_ABORT)
                    mp->phase = PH_ABORT;
                if (st == ST_MP_COMPLETE)
                    mp->phase = PH_COMPLETE;
            }
            if (start(s, sl, op, st, part)) {
                slot_release(s, sl);
                if (st == ST_MP_PART)
                    mp->parts_in_flight--;
                else
                    mp->busy = 0;
                if (st == ST_MP_ABORT || st == ST_MAIN)
                    mp->phase = PH_DONE;
                mp_fail(mp);
            }
        }
        if (mp_finished(mp)) {
            if (mp->failed && op->rc == FERRY_OK)
                op->rc = ferry_error_set(&op->err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                         "multipart copy failed");
            *pp = mp->next;
            op->priv_ = NULL;
            mp_free(mp);
            push_done(s, op);
            continue;
        }
        pp = &mp->next;
    }
}

static void schedule(sigv4 *s)
{
    s->pair_wanted = 0;
    mp_schedule(s);
    /* While a stream waits for two free slots, single requests must not take the one that
     * is free, or a steady flow of them could starve the stream. */
    while (s->nfree && s->ops.queued.head && !s->pair_wanted) {
        ferry_objstore_op *op = ferry_objstore_opq_pop(&s->ops.queued);
        slot *sl;

        if (op->type == FERRY_OBJSTORE_OP_TRANSFER ||
            (op->type == FERRY_OBJSTORE_OP_COPY && op->src_size != FERRY_OBJSTORE_SIZE_UNKNOWN &&
             op->src_size > s->mp_threshold)) {
            mpcopy *mp = calloc(1, sizeof(*mp));
            if (!mp) {
                op->rc = ferry_error_set(&op->err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                         "out of memory");
                push_done(s, op);
                continue;
            }
            mp->op = op;
            mp->phase = PH_HEAD;
            mp->size = FERRY_OBJSTORE_SIZE_UNKNOWN;
            if (op->type == FERRY_OBJSTORE_OP_TRANSFER) {
                mp->transfer = 1;
                mp->src = ferry_objstore_impl(op->src_store, &ferry_objstore_sigv4_backend);
                /* A known small size skips the HEAD: the GET's headers say the rest. */
                if (op->src_size != FERRY_OBJSTORE_SIZE_UNKNOWN &&
                    op->src_size <= s->mp_threshold) {
                    mp->phase = PH_SIMPLE;
                    mp->size = op->src_size;
                }
            }
            mp->next = s->mp_active;
            s->mp_active = mp;
            op->priv_ = mp;
            mp_schedule(s);
            continue;
        }
        sl = take_slot(s);
        if (start(s, sl, op, ST_MAIN, 0)) {
            slot_release(s, sl);
            push_done(s, op);
        }
    }
}

static void on_transfer_done(sigv4 *s, slot *sl, CURLcode cc)
{
    ferry_objstore_op *op = sl->op;
    enum step st = sl->step;
    uint32_t part = sl->part;
    mpcopy *mp = op->priv_;

    curl_multi_remove_handle(s->multi, sl->easy);
    if (sl->pipe) {
        pipe_slot_done(s, sl, cc); /* releases the slot */
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
            finish_mp(s, sl, op, st, part, cc);
        }
    } else {
        finish_main(s, sl, op, cc);
        push_done(s, op);
    }
    slot_release(s, sl);
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

static int active(const sigv4 *s)
{
    return s->nfree < s->nslots;
}

/* One round of curl work; then, while streams move (unpauses, new PUTs), more rounds
 * without waiting: an unpaused transfer has work that no socket event would announce. */
static void step(sigv4 *s)
{
    int running = 0, i;

    curl_multi_perform(s->multi, &running);
    drain(s);
    schedule(s);
    for (i = 0; i < 64 && s->mp_active && tx_service(s); i++) {
        curl_multi_perform(s->multi, &running);
        drain(s);
        schedule(s);
    }
}

static size_t be_pump(void *impl, int timeout_ms)
{
    sigv4 *s = impl;

    schedule(s);
    if (active(s)) {
        step(s);
        if (!s->ops.done.head && active(s)) {
            curl_multi_poll(s->multi, NULL, 0, timeout_ms < 0 ? 0 : timeout_ms, NULL);
            step(s);
        }
    }
    ferry_objstore_opqs_deliver(&s->ops);
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
        if (!ferry_objstore_impl(op->src_store, &ferry_objstore_sigv4_backend))
            return "the source store must use the sigv4 backend";
        if (s->nslots < 2)
            return "needs max_in_flight >= 2 (each stream holds a GET and a PUT connection)";
        /* fallthrough */
    case FERRY_OBJSTORE_OP_COPY:
        if (!ferry_objstore_bucket_ok(op->src_bucket) || !name_ok(op->src_key, FERRY_URI_KEY_MAX))
            return "missing or invalid source bucket or key";
        /* fallthrough */
    case FERRY_OBJSTORE_OP_HEAD:
    case FERRY_OBJSTORE_OP_PUT:
    case FERRY_OBJSTORE_OP_GET:
    case FERRY_OBJSTORE_OP_DELETE:
        if (!ferry_objstore_bucket_ok(op->bucket))
            return "missing or invalid bucket";
        if (!name_ok(op->key, FERRY_URI_KEY_MAX))
            return "missing key, or key longer than 1024 bytes";
        if (op->type == FERRY_OBJSTORE_OP_PUT && op->put_len && !op->put_data)
            return "PUT without data";
        return NULL;
    case FERRY_OBJSTORE_OP_ABORT_UPLOAD:
        if (!ferry_objstore_bucket_ok(op->bucket) || !name_ok(op->key, FERRY_URI_KEY_MAX))
            return "missing or invalid bucket or key";
        if (!name_ok(op->upload_id, 1023) || strpbrk(op->upload_id, "\r\n"))
            return "missing or invalid upload id";
        return NULL;
    case FERRY_OBJSTORE_OP_LIST:
    case FERRY_OBJSTORE_OP_LIST_UPLOADS:
        return ferry_objstore_list_args_bad(op);
    case FERRY_OBJSTORE_OP_HEAD_BUCKET:
    case FERRY_OBJSTORE_OP_CREATE_BUCKET:
        return ferry_objstore_bucket_ok(op->bucket) ? NULL : "missing or invalid bucket";
    }
    return "unknown operation type";
}

static void be_submit(void *impl, ferry_objstore_op *op)
{
    sigv4 *s = impl;
    const char *bad;

    ferry_objstore_opqs_accept(&s->ops, op);
    bad = validate(s, op);
    if (bad) {
        char what[600];
        describe(op, ST_MAIN, 0, what, sizeof(what));
        op->rc = ferry_error_set(&op->err, FERRY_ERR_PERMANENT,
                                 op->type == FERRY_OBJSTORE_OP_TRANSFER && !strstr(bad, "key")
                                     ? FERRY_EC_CONFIG
                                     : FERRY_EC_S3_CLIENT,
                                 "%s: %s", what, bad);
        push_done(s, op);
        return;
    }
    ferry_objstore_opq_push(&s->ops.queued, op);
}

static const char *main_step_name(const ferry_objstore_op *op)
{
    return step_name(op, ST_MAIN);
}

static void be_cancel_queued(void *impl)
{
    sigv4 *s = impl;

    ferry_objstore_opqs_cancel_queued(&s->ops, main_step_name);
}

/* ---------------------------------------------------------------- create / destroy */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

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
        buf_free(&sl->url);
        buf_free(&sl->resp);
        buf_free(&sl->reqbody);
        explicit_bzero(sl->hbuf, sizeof(sl->hbuf));
    }
    while (s->mp_active) {
        mpcopy *mp = s->mp_active;
        s->mp_active = mp->next;
        mp->op->priv_ = NULL;
        mp_free(mp);
    }
    if (s->multi)
        curl_multi_cleanup(s->multi);
    free(s->slots);
    free(s->free_idx);
    free(s->host);
    free(s->scheme);
    free(s->region);
    ferry_objstore_wipe_free(s->access_key);
    ferry_objstore_wipe_free(s->secret_key);
    ferry_objstore_wipe_free(s->session_token);
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

static int setup_easy(sigv4 *s, slot *sl)
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
    if (c->transfer_buffer_bytes &&
        (c->transfer_buffer_bytes < ((size_t)64 << 10) ||
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
        if (setup_easy(s, &s->slots[i])) {
            ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "curl_easy_init failed");
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
    "sigv4", be_create, be_destroy, be_submit, be_pump, be_cancel_queued,
};
