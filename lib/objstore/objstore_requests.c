/* The sigv4 backend's request builders: one function per S3 request, chosen through a
 * table by op type (single requests) or by step (multipart and TRANSFER requests). A
 * builder fills a req (method, bucket/key, query, headers, body); objstore_transport.c
 * signs and launches it. Header texts live in the slot's header area (objstore__hstore). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "objstore/objstore_sigv4.h"

const char *objstore__step_name(const ferry_objstore_op *op, enum step st)
{
    switch (st) {
    case ST_MP_HEAD: return "HeadObject";
    case ST_MP_INIT: return "CreateMultipartUpload";
    case ST_MP_PART: return "UploadPartCopy";
    case ST_MP_COMPLETE: return "CompleteMultipartUpload";
    case ST_MP_ABORT: return "AbortMultipartUpload";
    case ST_TX_GET: return "GetObject";
    case ST_TX_PUT: return "PutObject"; /* UploadPart: see objstore__describe() */
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
void objstore__describe(const ferry_objstore_op *op, enum step st, uint32_t part, char *out,
                        size_t size)
{
    char a[240], b[240];
    const mpcopy *mp = op->priv_;

    switch (op->type) {
    case FERRY_OBJSTORE_OP_TRANSFER:
        /* "Transfer a/k -> b/k: GetObject part 2/4" -- both sides, then the failed step. */
        ferry_objstore__show(a, sizeof(a), op->src_bucket, op->src_key);
        ferry_objstore__show(b, sizeof(b), op->bucket, op->key);
        if (st == ST_MAIN)
            snprintf(out, size, "Transfer %s -> %s", a, b);
        else if ((st == ST_TX_GET || st == ST_TX_PUT) && part && mp)
            snprintf(out, size, "Transfer %s -> %s: %s part %u/%u", a, b,
                     st == ST_TX_PUT ? "UploadPart" : "GetObject", part, mp->nparts);
        else
            snprintf(out, size, "Transfer %s -> %s: %s", a, b, objstore__step_name(op, st));
        return;
    case FERRY_OBJSTORE_OP_COPY:
        if (st == ST_MP_HEAD) {
            ferry_objstore__show(a, sizeof(a), op->src_bucket, op->src_key);
            snprintf(out, size, "%s %s", objstore__step_name(op, st), a);
            return;
        }
        ferry_objstore__show(a, sizeof(a), op->src_bucket, op->src_key);
        ferry_objstore__show(b, sizeof(b), op->bucket, op->key);
        if (st == ST_MP_PART && mp)
            snprintf(out, size, "%s %s -> %s part %u/%u", objstore__step_name(op, st), a, b,
                     part, mp->nparts);
        else
            snprintf(out, size, "%s %s -> %s", objstore__step_name(op, st), a, b);
        return;
    case FERRY_OBJSTORE_OP_LIST:
    case FERRY_OBJSTORE_OP_LIST_UPLOADS:
        ferry_objstore__show(a, sizeof(a), op->bucket,
                             op->prefix && *op->prefix ? op->prefix : NULL);
        break;
    case FERRY_OBJSTORE_OP_HEAD_BUCKET:
    case FERRY_OBJSTORE_OP_CREATE_BUCKET:
        ferry_objstore__show(a, sizeof(a), op->bucket, NULL);
        break;
    default: ferry_objstore__show(a, sizeof(a), op->bucket, op->key); break;
    }
    snprintf(out, size, "%s %s", objstore__step_name(op, st), a);
}

/* "/bucket/key" encoded as S3 wants it in x-amz-copy-source. */
static const char *copy_source(slot *sl, const char *bucket, const char *key)
{
    char enc[ENC_KEY_MAX];

    if (ferry_uri_pct_encode(key, strlen(key), 1, enc, sizeof(enc)) >= sizeof(enc))
        return NULL;
    return objstore__hstore(sl, "/%s/%s", bucket, enc);
}

/* The paging query of LIST and LIST_UPLOADS, under each call's own parameter names: page
 * size, prefix, and the key to resume after. Our continuation token is the last key seen
 * (see ferry_objstore_listing): resume after whichever of it and start_after comes later.
 * 0, or -1 when the slot's header area is full. */
static int add_page_params(slot *sl, const ferry_objstore_op *op, req *r, const char *max_name,
                           const char *after_name)
{
    const char *v = objstore__hstore(sl, "%d", op->max_keys > 0 ? op->max_keys : 1000);

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

/* ---------------------------------------------------------------- builders
 * A builder fills r (zeroed, bucket and key preset to op's) for one request. It returns 0,
 * TOO_BIG (the slot's header area or header list is full: objstore__build words that
 * message once), or -1 with err set. */

typedef int (*builder_fn)(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                          ferry_error *err);

#define TOO_BIG (-2) /* a builder's "the slot's header area or the header list is full" */

/* Adds "content-type" and the metadata a multipart copy or stream carries from its source. */
static int add_source_meta(mpcopy *mp, req *r)
{
    const char *m = mp->meta;
    int i;

    if (objstore__add_hdr(r, "content-type",
                          mp->content_type[0] ? mp->content_type : "application/octet-stream"))
        return TOO_BIG;
    for (i = 0; i < mp->meta_n; i++) {
        const char *val = m + strlen(m) + 1;
        if (objstore__add_hdr(r, m, val))
            return TOO_BIG;
        m = val + strlen(val) + 1;
    }
    return 0;
}

/* "partNumber" and "uploadId" of a part request. */
static int add_part_query(slot *sl, const mpcopy *mp, uint32_t part, req *r)
{
    const char *v = objstore__hstore(sl, "%u", part);

    if (!v)
        return TOO_BIG;
    r->q[r->nq++] = (ferry_uri_qparam){"partNumber", v};
    r->q[r->nq++] = (ferry_uri_qparam){"uploadId", mp->upload_id};
    return 0;
}

static int build_head(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                      ferry_error *err)
{
    (void)s, (void)sl, (void)part, (void)err;
    r->method = "HEAD";
    r->small = 1;
    if (op->checksum_mode && objstore__add_hdr(r, "x-amz-checksum-mode", "ENABLED"))
        return TOO_BIG;
    return 0;
}

static int build_get(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                     ferry_error *err)
{
    (void)sl, (void)part, (void)err;
    r->method = "GET";
    r->resp_limit = op->max_size ? op->max_size : s->max_response;
    if (op->checksum_mode && objstore__add_hdr(r, "x-amz-checksum-mode", "ENABLED"))
        return TOO_BIG;
    return 0;
}

static int build_delete(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                        ferry_error *err)
{
    (void)s, (void)sl, (void)op, (void)part, (void)err;
    r->method = "DELETE";
    r->small = 1;
    return 0;
}

/* base64 of the SHA-256 of data (x-amz-checksum-sha256); 0, or -1. */
static int sha256_b64(const void *data, size_t len, char out[64])
{
    unsigned char md[32];
    unsigned int n = 0;

    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, md, 32) == 44 ? 0 : -1;
}

static int build_put(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                     ferry_error *err)
{
    (void)s, (void)part;
    r->method = "PUT";
    r->upload = 1;
    r->body = op->put_data;
    r->body_len = op->put_len;
    if (objstore__add_hdr(r, "content-type",
                          op->content_type ? objstore__hstore(sl, "%s", op->content_type)
                                           : "application/octet-stream"))
        return TOO_BIG;
    if (op->if_none_match && objstore__add_hdr(r, "if-none-match", "*"))
        return TOO_BIG;
    if (op->checksum_algorithm) {
        /* Sent with its value, so the store checks what it received; the SDK header is
         * what some servers (moto) read to learn the algorithm. */
        char b64[64];
        if (strcmp(op->checksum_algorithm, "SHA256") != 0) {
            ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                            "PUT checksum algorithm %s: only SHA256 is computed here",
                            op->checksum_algorithm);
            return -1;
        }
        if (sha256_b64(op->put_data, op->put_len, b64) ||
            objstore__add_hdr(r, "x-amz-checksum-sha256", objstore__hstore(sl, "%s", b64)) ||
            objstore__add_hdr(r, "x-amz-sdk-checksum-algorithm", "SHA256"))
            return TOO_BIG;
    }
    return 0;
}

static int build_copy(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                      ferry_error *err)
{
    (void)s, (void)part, (void)err;
    r->method = "PUT";
    r->upload = 1;
    if (objstore__add_hdr(r, "x-amz-copy-source", copy_source(sl, op->src_bucket, op->src_key)))
        return TOO_BIG;
    if (op->src_if_match && objstore__add_hdr(r, "x-amz-copy-source-if-match",
                                              objstore__hstore(sl, "\"%s\"", op->src_if_match)))
        return TOO_BIG;
    if (op->if_none_match && objstore__add_hdr(r, "if-none-match", "*"))
        return TOO_BIG;
    if (op->checksum_algorithm &&
        objstore__add_hdr(r, "x-amz-checksum-algorithm",
                          objstore__hstore(sl, "%s", op->checksum_algorithm)))
        return TOO_BIG;
    return 0;
}

static int build_list(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                      ferry_error *err)
{
    (void)s, (void)part, (void)err;
    r->method = "GET";
    r->key = NULL;
    r->small = 1;
    r->q[r->nq++] = (ferry_uri_qparam){"list-type", "2"};
    r->q[r->nq++] = (ferry_uri_qparam){"encoding-type", "url"};
    if (op->delimiter)
        r->q[r->nq++] = (ferry_uri_qparam){"delimiter", op->delimiter};
    return add_page_params(sl, op, r, "max-keys", "start-after") ? TOO_BIG : 0;
}

static int build_head_bucket(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                             ferry_error *err)
{
    (void)s, (void)sl, (void)op, (void)part, (void)err;
    r->method = "HEAD";
    r->key = NULL;
    r->small = 1;
    return 0;
}

static int build_create_bucket(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                               ferry_error *err)
{
    (void)op, (void)part, (void)err;
    r->method = "PUT";
    r->key = NULL;
    r->small = 1;
    r->upload = 1;
    sl->reqbody.len = 0;
    if (strcmp(s->region, "us-east-1") != 0) {
        if (objstore__buf_printf(&sl->reqbody,
                                 "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/"
                                 "doc/2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
                                 "</CreateBucketConfiguration>",
                                 s->region))
            return TOO_BIG;
        r->body = sl->reqbody.p;
        r->body_len = sl->reqbody.len;
        if (objstore__add_hdr(r, "content-type", "application/xml"))
            return TOO_BIG;
    }
    return 0;
}

/* TRANSFER runs as ST_MP_* and ST_TX_* steps, never as one request. */
static int build_transfer(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                          ferry_error *err)
{
    (void)s, (void)sl, (void)op, (void)part, (void)r;
    return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                           "transfer step missing"),
           -1;
}

static int build_list_uploads(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                              ferry_error *err)
{
    (void)s, (void)part, (void)err;
    r->method = "GET";
    r->key = NULL;
    r->small = 1;
    r->q[r->nq++] = (ferry_uri_qparam){"uploads", NULL};
    return add_page_params(sl, op, r, "max-uploads", "key-marker") ? TOO_BIG : 0;
}

static int build_abort_upload(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                              ferry_error *err)
{
    (void)s, (void)sl, (void)part, (void)err;
    r->method = "DELETE";
    r->small = 1;
    r->q[r->nq++] = (ferry_uri_qparam){"uploadId", op->upload_id};
    return 0;
}

/* HeadObject of a multipart copy's (or TRANSFER's) source: size, ETag, metadata. */
static int build_mp_head(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                         ferry_error *err)
{
    (void)part, (void)err;
    r->method = "HEAD";
    r->bucket = op->src_bucket;
    r->key = op->src_key;
    r->small = 1;
    r->want_meta = 1;
    if (op->src_if_match &&
        objstore__add_hdr(r, "if-match", objstore__hstore(sl, "\"%s\"", op->src_if_match)))
        return TOO_BIG;
    /* a COPY keeps the source's checksum algorithm, and so does a TRANSFER unless told
     * not to (objstore_multipart.c) */
    if ((op->type == FERRY_OBJSTORE_OP_COPY || s->stream_checksums) &&
        objstore__add_hdr(r, "x-amz-checksum-mode", "ENABLED"))
        return TOO_BIG;
    return 0;
}

static int build_mp_init(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                         ferry_error *err)
{
    mpcopy *mp = op->priv_;

    (void)s, (void)sl, (void)part, (void)err;
    r->method = "POST";
    r->upload = 1;
    r->small = 1;
    r->q[r->nq++] = (ferry_uri_qparam){"uploads", NULL};
    if (mp->ck_algo[0] && (objstore__add_hdr(r, "x-amz-checksum-algorithm", mp->ck_algo) ||
                           objstore__add_hdr(r, "x-amz-checksum-type", mp->ck_type)))
        return TOO_BIG;
    return add_source_meta(mp, r);
}

/* UploadPartCopy of bytes [(part-1)*part_size, part*part_size) of the source. */
static int build_mp_part(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                         ferry_error *err)
{
    const mpcopy *mp = op->priv_;
    uint64_t first = (uint64_t)(part - 1) * mp->part_size;
    uint64_t last = first + mp->part_size - 1;

    (void)s, (void)err;
    if (last >= mp->size)
        last = mp->size - 1;
    r->method = "PUT";
    r->upload = 1;
    if (add_part_query(sl, mp, part, r))
        return TOO_BIG;
    if (objstore__add_hdr(r, "x-amz-copy-source",
                          copy_source(sl, op->src_bucket, op->src_key)) ||
        objstore__add_hdr(r, "x-amz-copy-source-range",
                          objstore__hstore(sl, "bytes=%llu-%llu", (unsigned long long)first,
                                           (unsigned long long)last)))
        return TOO_BIG;
    if (op->src_if_match && objstore__add_hdr(r, "x-amz-copy-source-if-match",
                                              objstore__hstore(sl, "\"%s\"", op->src_if_match)))
        return TOO_BIG;
    return 0;
}

static int build_mp_complete(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                             ferry_error *err)
{
    mpcopy *mp = op->priv_;
    uint32_t i;

    (void)s, (void)sl, (void)part;
    r->method = "POST";
    r->upload = 1;
    r->q[r->nq++] = (ferry_uri_qparam){"uploadId", mp->upload_id};
    mp->body.len = 0;
    if (objstore__buf_printf(&mp->body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws."
                                        "com/doc/2006-03-01/\">"))
        return TOO_BIG;
    for (i = 0; i < mp->nparts; i++) {
        /* Part ETags are hex (MD5) from the server; refuse anything needing escapes. */
        if (strpbrk(mp->etags[i], "<>&\"'"))
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                   "server returned an unusable part ETag"),
                   -1;
        if (objstore__buf_printf(&mp->body,
                                 "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag>", i + 1,
                                 mp->etags[i]))
            return TOO_BIG;
        /* S3 wants each part's checksum when the upload has an algorithm (the values
         * were checked for XML-safe characters when parsed) */
        if (mp->sums && mp->sums[i][0] &&
            objstore__buf_printf(&mp->body, "<Checksum%s>%s</Checksum%s>", mp->ck_algo,
                                 mp->sums[i], mp->ck_algo))
            return TOO_BIG;
        if (objstore__buf_printf(&mp->body, "</Part>"))
            return TOO_BIG;
    }
    if (objstore__buf_printf(&mp->body, "</CompleteMultipartUpload>"))
        return TOO_BIG;
    r->body = mp->body.p;
    r->body_len = mp->body.len;
    if (objstore__add_hdr(r, "content-type", "application/xml"))
        return TOO_BIG;
    if (op->if_none_match && objstore__add_hdr(r, "if-none-match", "*"))
        return TOO_BIG;
    return 0;
}

static int build_mp_abort(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                          ferry_error *err)
{
    const mpcopy *mp = op->priv_;

    (void)s, (void)sl, (void)part, (void)err;
    r->method = "DELETE";
    r->small = 1;
    r->q[r->nq++] = (ferry_uri_qparam){"uploadId", mp->upload_id};
    return 0;
}

/* A stream's GET from the source store: ranged for a part, pinned to one version. */
static int build_tx_get(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                        ferry_error *err)
{
    const mpcopy *mp = op->priv_;
    const txpipe *p = sl->pipe;
    const char *im = op->src_if_match  ? op->src_if_match
                     : mp->src_etag[0] ? mp->src_etag
                                       : NULL;

    (void)err;
    r->method = "GET";
    r->bucket = op->src_bucket;
    r->key = op->src_key;
    r->want_meta = part == 0; /* a single PUT carries what the GET says */
    if (part == 0 && s->stream_checksums &&
        objstore__add_hdr(r, "x-amz-checksum-mode", "ENABLED"))
        return TOO_BIG;
    if (part &&
        objstore__add_hdr(r, "range",
                          objstore__hstore(sl, "bytes=%llu-%llu", (unsigned long long)p->first,
                                           (unsigned long long)(p->first + p->count - 1))))
        return TOO_BIG;
    /* Parts must all come from one version of the object. */
    if (im && objstore__add_hdr(r, "if-match", objstore__hstore(sl, "\"%s\"", im)))
        return TOO_BIG;
    return 0;
}

/* The source's full-object checksum on a stream's PutObject: the target refuses bytes
 * that do not match it (AWS: 400 BadDigest) and keeps the algorithm, as CopyObject does.
 * x-amz-sdk-checksum-algorithm too: moto stores the checksum only with it. */
static int add_stream_checksum(slot *sl, req *r)
{
    const txpipe *p = sl->pipe;
    char name[OBJSTORE_CHECKSUM_HNAME_MAX];

    if (!p->ck_algo[0])
        return 0;
    objstore__checksum_hname(name, sizeof(name), p->ck_algo);
    return objstore__add_hdr(r, objstore__hstore(sl, "%s", name), p->ck) ||
           objstore__add_hdr(r, "x-amz-sdk-checksum-algorithm", p->ck_algo);
}

/* A stream's PutObject (part 0) or UploadPart, its body read from the pipe. */
static int build_tx_put(sigv4 *s, slot *sl, ferry_objstore_op *op, uint32_t part, req *r,
                        ferry_error *err)
{
    mpcopy *mp = op->priv_;

    (void)s, (void)err;
    r->method = "PUT";
    r->upload = 1;
    r->stream = 1;
    r->body_len = (size_t)sl->pipe->count;
    if (!part) {
        if (add_source_meta(mp, r) || (s->stream_checksums && add_stream_checksum(sl, r)))
            return TOO_BIG;
        if (op->if_none_match && objstore__add_hdr(r, "if-none-match", "*"))
            return TOO_BIG;
        return 0;
    }
    if (add_part_query(sl, mp, part, r))
        return TOO_BIG;
    if (sl->pipe->chunked) {
        /* The part's checksum follows its bytes (objstore_streams.c), as the AWS SDKs
         * send it: the body's length on the wire covers the chunk framing. */
        char name[OBJSTORE_CHECKSUM_HNAME_MAX];
        objstore__checksum_hname(name, sizeof(name), mp->ck_algo);
        r->trailer = 1;
        r->body_len = (size_t)objstore__pipe_chunked_len(sl->pipe->count, mp->ck_algo);
        if (objstore__add_hdr(r, "content-encoding", "aws-chunked") ||
            objstore__add_hdr(r, "x-amz-decoded-content-length",
                              objstore__hstore(sl, "%llu",
                                               (unsigned long long)sl->pipe->count)) ||
            objstore__add_hdr(r, "x-amz-trailer", objstore__hstore(sl, "%s", name)) ||
            objstore__add_hdr(r, "x-amz-sdk-checksum-algorithm", mp->ck_algo))
            return TOO_BIG;
    }
    /* S3Proxy wants an explicit Content-Type on every body. */
    return objstore__add_hdr(r, "content-type", "application/octet-stream") ? TOO_BIG : 0;
}

/* Single requests by op type (step ST_MAIN). */
static const builder_fn main_builders[] = {
    [FERRY_OBJSTORE_OP_HEAD] = build_head,
    [FERRY_OBJSTORE_OP_COPY] = build_copy,
    [FERRY_OBJSTORE_OP_PUT] = build_put,
    [FERRY_OBJSTORE_OP_GET] = build_get,
    [FERRY_OBJSTORE_OP_DELETE] = build_delete,
    [FERRY_OBJSTORE_OP_LIST] = build_list,
    [FERRY_OBJSTORE_OP_HEAD_BUCKET] = build_head_bucket,
    [FERRY_OBJSTORE_OP_CREATE_BUCKET] = build_create_bucket,
    [FERRY_OBJSTORE_OP_TRANSFER] = build_transfer,
    [FERRY_OBJSTORE_OP_LIST_UPLOADS] = build_list_uploads,
    [FERRY_OBJSTORE_OP_ABORT_UPLOAD] = build_abort_upload,
};

/* The requests of multipart copies and TRANSFER streams, by step. */
static const builder_fn step_builders[] = {
    [ST_MP_HEAD] = build_mp_head,   [ST_MP_INIT] = build_mp_init,
    [ST_MP_PART] = build_mp_part,   [ST_MP_COMPLETE] = build_mp_complete,
    [ST_MP_ABORT] = build_mp_abort, [ST_TX_GET] = build_tx_get,
    [ST_TX_PUT] = build_tx_put,
};

int objstore__build(sigv4 *s, slot *sl, ferry_objstore_op *op, enum step st, uint32_t part,
                    req *r, ferry_error *err)
{
    builder_fn fn = NULL;
    int rc;

    memset(r, 0, sizeof(*r));
    r->bucket = op->bucket;
    r->key = op->key;
    if (st != ST_MAIN) {
        if ((size_t)st < sizeof(step_builders) / sizeof(step_builders[0]))
            fn = step_builders[st];
    } else if ((size_t)op->type < sizeof(main_builders) / sizeof(main_builders[0])) {
        fn = main_builders[op->type];
    }
    if (!fn)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "no request for this operation"),
               -1;
    rc = fn(s, sl, op, part, r, err);
    if (rc == TOO_BIG)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                               "request too large (key, metadata or token)"),
               -1;
    return rc;
}
