/* ferry_objstore: one small, backend-neutral interface to an S3-compatible object store.
 *
 * Everything is an operation (ferry_objstore_op): HEAD, COPY (server-side, multipart
 * UploadPartCopy above a size threshold), PUT and GET (memory buffers), DELETE, LIST
 * (ListObjectsV2, one page) and the bucket calls. Operations are either
 *   - run one at a time by the blocking helpers (ferry_objstore_head(), ..._copy(), ...),
 *   - run as a batch with up to N in flight (ferry_objstore_run_batch()): the copy engine's
 *     hot path, one completion callback per op, a cancel check between ops, or
 *   - submitted and pumped by the caller (ferry_objstore_submit() + ferry_objstore_pump())
 *     to mix kinds freely, e.g. prefetch the next LIST page while copies run.
 * The default backend ("sigv4") signs with AWS Signature V4 and drives libcurl's multi
 * interface: one connection per in-flight request, kept alive and reused. TRANSFER copies
 * between two stores (different endpoints or credentials) by streaming GET -> PUT through a
 * small bounded buffer; see FERRY_OBJSTORE_OP_TRANSFER.
 * The opt-in "libs3" backend (Debian's libs3 2.0: Signature V2 only, no multipart, no TLS
 * certificate checks) serves V2-only stores; see objstore/objstore_libs3.c for its limits.
 *
 * Errors are classified here, at the boundary (see ferry_error.h): 5xx, SlowDown,
 * timeouts, resets, refused connections -> FERRY_ERR_RETRYABLE (a transfer stalled past
 * stall_timeout_ms: class s3-stall, "stalled: ..."); 401/403 and signature or
 * key errors -> PERMANENT s3-auth; 404 / NoSuchBucket / NoSuchKey -> PERMANENT
 * s3-not-found; other 4xx -> PERMANENT s3-client. Messages name the call and the objects
 * and quote S3's Code and Message ("CopyObject a/k -> b/k: 404 NoSuchKey: The specified key
 * does not exist."); they never contain credentials or signed URLs.
 *
 * @locality A store and its operations belong to one thread at a time: the thread that
 * calls submit/pump/run_batch/the blocking helpers. Completion callbacks run on that
 * thread, from inside those calls. Different stores may be used by different threads. */
#ifndef FERRY_OBJSTORE_H
#define FERRY_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_error.h"
#include "ferry_limiter.h"

#define FERRY_OBJSTORE_ETAG_MAX 128 /* ETags are kept without their quotes */
#define FERRY_OBJSTORE_SIZE_UNKNOWN UINT64_MAX
#define FERRY_OBJSTORE_S3_CODE_MAX 64
#define FERRY_OBJSTORE_CHECKSUM_MAX 96 /* base64 of a SHA-256 is 44; composite adds "-N" */
#define FERRY_OBJSTORE_MAX_PARTS 10000 /* S3's limit of parts per multipart upload */

/* ---------------------------------------------------------------- configuration */

typedef struct ferry_objstore_conf {
    const char *backend;       /* "sigv4" (default when NULL) or "libs3" (Signature V2) */
    const char *endpoint;      /* "http(s)://host[:port]", no path; required */
    const char *region;        /* signing region; NULL -> "us-east-1" */
    int path_style;            /* 1 (default): endpoint/bucket/key; 0: bucket.endpoint/key */
    const char *access_key;    /* required. Credentials are copied, wiped on destroy, */
    const char *secret_key;    /* required. never logged and never put in a message.  */
    const char *session_token; /* optional (STS): sent as x-amz-security-token */
    const char *ca_file;       /* optional CA bundle; TLS peer and host checks are always on */
    long connect_timeout_ms;   /* default 10000 */
    long request_timeout_ms;   /* hard limit for small requests (HEAD, LIST, DELETE, bucket
                                * calls, multipart create/abort); default 60000 */
    long stall_timeout_ms;     /* any transfer moving < 1 byte/s for this long is aborted
                                * (no hard limit on copies and big bodies); default 120000 */
    int max_in_flight;         /* concurrent requests = connections; default 16, 1..1024.
                                * libs3 runs as many ops at once (its request context). The
                                * timeouts above, multipart_* and transfer_* are sigv4 only:
                                * libs3 2.0 aborts a request below 1 KiB/s for 15 s. */
    size_t max_response_bytes; /* cap on buffered responses (listings, errors); 16 MiB */
    uint64_t multipart_threshold; /* COPY above this size uses UploadPartCopy; default and
                                   * maximum 5 GiB (CopyObject's limit) */
    uint64_t multipart_part_size; /* default 256 MiB; raised to keep <= 10000 parts */
    size_t transfer_buffer_bytes; /* TRANSFER: bytes buffered between a GET and its PUT, per
                                   * stream; the only memory a transfer holds whatever the
                                   * object and part size. Default 1 MiB, 64 KiB..64 MiB */
    int stream_checksums;         /* TRANSFER into one PutObject: send the source's
                                   * full-object additional checksum (read by the GET with
                                   * x-amz-checksum-mode: ENABLED) as x-amz-checksum-<algo>,
                                   * so the target checks the streamed bytes against it and
                                   * keeps the algorithm. Default 1; set on the target
                                   * store. UploadPart streams send none. */
    ferry_limiter *limiter;       /* optional, borrowed, may be shared by stores of several
                                * threads: run_batch then starts a request only with a
                                * permit from it (the adaptive in-flight limit of the
                                * endpoint) and reports each one's latency and throttling;
                                * max_in_flight is then the ceiling (the connections) */
    int insecure_tls_ok;          /* libs3 only: accept an https endpoint although libs3 2.0
                                * never verifies the server's certificate (anyone on the
                                * path can read the data and the signed requests). 0
                                * (default): https is refused. sigv4 always verifies. */
} ferry_objstore_conf;

/* Fills the defaults above; the caller then sets endpoint and credentials. */
void ferry_objstore_conf_init(ferry_objstore_conf *conf);

typedef struct ferry_objstore ferry_objstore;

/* Validates conf and creates a store (no network I/O). Strings are copied. NULL on error
 * (class config, PERMANENT). Free with ferry_objstore_destroy(). */
ferry_objstore *ferry_objstore_new(const ferry_objstore_conf *conf, ferry_error *err);
/* Aborts anything in flight without calling callbacks; accepts NULL. */
void ferry_objstore_destroy(ferry_objstore *os);
/* The store's max_in_flight. */
int ferry_objstore_max_in_flight(const ferry_objstore *os);
/* Backend name, e.g. "sigv4". */
const char *ferry_objstore_backend_name(const ferry_objstore *os);
/* Why os's backend cannot read or write key under its exact name, or NULL. A request for
 * such a key fails PERMANENT; callers check first to fail that object alone. */
const char *ferry_objstore_key_refused(const ferry_objstore *os, const char *key);

/* ---------------------------------------------------------------- listings */

typedef struct ferry_objstore_entry {
    const char *key; /* NUL-terminated, decoded; valid until the listing is reused */
    size_t key_len;
    uint64_t size;
    const char *etag;         /* without quotes; "" if the server sent none */
    int64_t last_modified_ms; /* ms since the epoch; 0 if unknown */
    const char *upload_id;    /* LIST_UPLOADS: the upload's UploadId; NULL in object listings */
    int is_prefix; /* LIST with a delimiter: a common prefix (CommonPrefixes), not an object;
                    * size 0, etag "" */
    size_t key_off_, etag_off_; /* private */
} ferry_objstore_entry;

/* One ListObjectsV2 page. Reuse one listing across pages: its buffers are kept, so paging
 * through any number of objects allocates nothing after the first page or two. Listed with
 * a delimiter, the page also holds its common prefixes (is_prefix set): objects are in
 * key order among themselves, and so are prefixes. */
typedef struct ferry_objstore_listing {
    ferry_objstore_entry *entries; /* count entries, in key order */
    size_t count;
    int is_truncated;       /* more pages follow */
    const char *next_token; /* when truncated: pass as the next request's continuation_token;
                             * else NULL. It is ferry's own cursor, the page's last key, sent
                             * as start-after: server tokens are opaque and not portable
                             * (S3Proxy url-encodes its token under encoding-type=url, which
                             * ferry always requests, and handing it back repeats keys).
                             * With common prefixes on the page it is the later of the
                             * last key and the last prefix followed by U+10FFFF, which
                             * sorts after every key under that prefix: the next page
                             * does not roll the same prefix up again. */
    size_t skipped_dirs;    /* "dir/" entries without an ETag left out: directories that a
                             * file-system backed server (S3Proxy "filesystem") lists. So a
                             * page may be empty and still truncated: follow is_truncated. */
    /* private */
    size_t cap_;
    char *arena_;
    size_t arena_len_, arena_cap_;
} ferry_objstore_listing;

void ferry_objstore_listing_init(ferry_objstore_listing *l);
void ferry_objstore_listing_free(ferry_objstore_listing *l); /* then init again to reuse */

/* ---------------------------------------------------------------- operations */

typedef enum {
    FERRY_OBJSTORE_OP_HEAD = 1,      /* bucket/key -> size, etag, last_modified_ms */
    FERRY_OBJSTORE_OP_COPY,          /* src_bucket/src_key -> bucket/key on the same endpoint;
                                        -> etag of the new object. CopyObject keeps the
                                        source's metadata. Above multipart_threshold (given
                                        src_size): HEAD source, CreateMultipartUpload with its
                                        Content-Type, Cache-Control, Content-Disposition,
                                        -Encoding, -Language, Expires and x-amz-meta-*, then
                                        UploadPartCopy parts in parallel on free slots, then
                                        Complete; any failure aborts the upload. Tags, ACLs
                                        and storage class are not carried. */
    FERRY_OBJSTORE_OP_PUT,           /* put_data/put_len -> bucket/key; -> etag */
    FERRY_OBJSTORE_OP_GET,           /* bucket/key -> get_data/get_len (<= max_size) */
    FERRY_OBJSTORE_OP_DELETE,        /* bucket/key; deleting a missing key succeeds */
    FERRY_OBJSTORE_OP_LIST,          /* bucket + prefix/start_after/continuation_token/
                                        max_keys -> *listing */
    FERRY_OBJSTORE_OP_HEAD_BUCKET,   /* bucket exists and the credentials may use it */
    FERRY_OBJSTORE_OP_CREATE_BUCKET, /* in conf.region; already owned by us is success */
    FERRY_OBJSTORE_OP_TRANSFER,      /* src_store's src_bucket/src_key -> this store's
                                        bucket/key, streamed; for a source on another endpoint
                                        or behind other credentials. Needs the sigv4 backend on
                                        both stores. -> etag (the target's), size (bytes
                                        copied), multipart.
                                        Up to multipart_threshold (src_size, or a HEAD of the
                                        source when SIZE_UNKNOWN): one GET streamed into one
                                        PutObject (Content-Length from the GET, UNSIGNED-PAYLOAD).
                                        Above: HEAD source, CreateMultipartUpload, then per part
                                        a ranged GET (If-Match the source's ETag) streamed into
                                        UploadPart, parts in parallel, CompleteMultipartUpload;
                                        any failure stops the other parts and aborts the upload.
                                        Memory: transfer_buffer_bytes per stream, never the
                                        object or the part. Content-Type, Cache-Control,
                                        Content-Disposition, -Encoding, -Language, Expires and
                                        x-amz-meta-* are carried. Each stream occupies two of
                                        this store's max_in_flight slots (GET + PUT), so
                                        max_in_flight must be >= 2. src_if_match: the GETs
                                        carry If-Match (412 if the source changed);
                                        if_none_match: the PUT or Complete carries
                                        If-None-Match: *. */
    FERRY_OBJSTORE_OP_LIST_UPLOADS,  /* bucket + prefix/start_after/max_keys -> *listing of
                                        in-progress multipart uploads (ListMultipartUploads,
                                        one page): entries' key, upload_id and
                                        last_modified_ms (when it was initiated); size 0.
                                        sigv4 only, like ABORT_UPLOAD. */
    FERRY_OBJSTORE_OP_ABORT_UPLOAD,  /* bucket/key + upload_id: AbortMultipartUpload */
} ferry_objstore_op_type;

typedef struct ferry_objstore_op ferry_objstore_op;
typedef void (*ferry_objstore_done_cb)(ferry_objstore_op *op, void *opaque);

/* ---------------------------------------------------------------- multipart resume
 * A multipart COPY or TRANSFER reports its upload's progress through op->mpu_progress, so
 * that the caller can persist it; a later op given that progress as op->mpu_resume
 * continues the same upload and copies only the parts not done yet (sigv4 only). */

#define FERRY_OBJSTORE_UPLOAD_ID_MAX 1024

typedef struct ferry_objstore_mpu_part {
    uint32_t number;                    /* 1-based */
    char etag[FERRY_OBJSTORE_ETAG_MAX]; /* without quotes */
    /* The part's checksum when the upload has an additional checksum algorithm (S3 wants
     * each one in CompleteMultipartUpload), else both "". A resumed part without it, or
     * with another algorithm than the upload's, is copied again. */
    char checksum_algo[16]; /* "CRC32", ... */
    char checksum[FERRY_OBJSTORE_CHECKSUM_MAX];
} ferry_objstore_mpu_part;

/* An upload to continue: its id, the part size it was planned with, and the finished
 * parts (any order). Part size and source must be what they were when it started: the
 * caller checks the source (size, ETag); the op refuses a part size that cannot cover
 * the object in at most 10,000 parts. If the upload no longer exists the op fails
 * RETRYABLE with s3_code "NoSuchUpload": drop the record and copy again from scratch. */
typedef struct ferry_objstore_mpu {
    const char *upload_id;
    uint64_t part_size;
    const ferry_objstore_mpu_part *parts;
    size_t nparts;
} ferry_objstore_mpu;

/* Called from inside pump: part NULL when the upload was created (upload_id, part_size),
 * then once per part stored (number, ETag, checksum; borrowed for the call). Anything but
 * FERRY_OK (with err set) fails the op with that error, and the upload is aborted. */
typedef ferry_rc (*ferry_objstore_mpu_cb)(ferry_objstore_op *op, const char *upload_id,
                                          uint64_t part_size,
                                          const ferry_objstore_mpu_part *part,
                                          ferry_error *err);

/* Inputs are borrowed (strings, buffers, listing) until the op's done callback has run.
 * Start from ferry_objstore_op_init(); the op itself must stay put while it runs. */
struct ferry_objstore_op {
    /* ---- request */
    ferry_objstore_op_type type;
    const char *bucket;        /* target bucket (destination of COPY) */
    const char *key;           /* target key (destination of COPY) */
    const char *src_bucket;    /* COPY, TRANSFER */
    const char *src_key;       /* COPY, TRANSFER */
    uint64_t src_size;         /* COPY, TRANSFER: source size if known, else SIZE_UNKNOWN;
                                 * above conf.multipart_threshold: multipart */
    const char *src_if_match;  /* COPY, TRANSFER: only if the source ETag still is this (412
                                 * if not) */
    int if_none_match;         /* COPY/PUT/TRANSFER: create only (If-None-Match: *; 412 if it
                                 * exists). Not available with libs3 (refused). */
    ferry_objstore *src_store; /* TRANSFER: the store the source is read from (endpoint,
                                 * credentials, TLS settings). Borrowed: it must outlive the op
                                 * and belong to the same thread; only its settings are used
                                 * (its own slots and queue are not). May be this store. */
    int checksum_mode;         /* HEAD/GET: ask for the object's additional checksum
                                 * (x-amz-checksum-mode: ENABLED) -> checksum_algo/checksum */
    const char *checksum_algorithm; /* COPY (single CopyObject only; a multipart COPY keeps
                                 * the source's algorithm by itself, from its HEAD):
                                 * x-amz-checksum-algorithm,
                                 * the target computes and keeps that checksum (CRC32, CRC32C,
                                 * SHA1, SHA256, CRC64NVME). PUT: only "SHA256", computed here
                                 * and sent as x-amz-checksum-sha256. NULL: none asked */
    const char *upload_id;          /* ABORT_UPLOAD */
    const ferry_objstore_mpu *mpu_resume; /* COPY, TRANSFER: continue this upload if the
                                 * object is copied in parts (see multipart resume) */
    ferry_objstore_mpu_cb mpu_progress;   /* COPY, TRANSFER: optional, see multipart resume */
    void *mpu_opaque;                     /* the caller's, for mpu_progress; never touched */
    const void *put_data;                 /* PUT */
    size_t put_len;                       /* PUT */
    const char *content_type;             /* PUT: default application/octet-stream */
    size_t max_size;         /* GET: refuse larger objects; 0 -> conf.max_response_bytes */
    const char *prefix;      /* LIST, optional */
    const char *delimiter;   /* LIST, optional: keys with it after the prefix roll up into
                                common prefixes (entries with is_prefix) */
    const char *start_after; /* LIST, optional: keys strictly after this one */
    const char *continuation_token;  /* LIST, optional: the previous page's next_token */
    int max_keys;                    /* LIST: 1..1000; 0 -> 1000 */
    ferry_objstore_listing *listing; /* LIST: receives the page */
    void *user;                      /* the caller's; never touched by the library */

    /* ---- result, valid in the done callback and after it */
    ferry_rc rc;     /* FERRY_OK, RETRYABLE, PERMANENT, or CANCELLED (never ran) */
    ferry_error err; /* when rc != FERRY_OK */
    int http_status; /* final HTTP status, 0 if no response */
    char s3_code[FERRY_OBJSTORE_S3_CODE_MAX]; /* S3 error Code ("NoSuchKey"), or "" */
    char etag[FERRY_OBJSTORE_ETAG_MAX];       /* HEAD, COPY, PUT, GET, TRANSFER: without
                                               * quotes */
    uint64_t size;            /* HEAD, GET: object size; TRANSFER: bytes copied; COPY with
                                 * libs3: the new object's size (from its HEAD) */
    int64_t last_modified_ms; /* HEAD, GET: ms since the epoch, 0 if unknown */
    int multipart;            /* COPY, TRANSFER: done as a multipart upload (ETag is then
                                 * "...-N", not an MD5) */
    /* HEAD, GET, PUT, COPY (single request): from the response headers, "" if absent */
    char checksum_algo[16];                     /* "CRC32C", ... (x-amz-checksum-<algo>) */
    char checksum[FERRY_OBJSTORE_CHECKSUM_MAX]; /* its value as sent; composite ones end
                                 * in "-N" */
    char checksum_type[16]; /* x-amz-checksum-type: "FULL_OBJECT", "COMPOSITE" or "" (moto
                                 * sends composite values without "-N" and says so here) */
    char sse[32];           /* x-amz-server-side-encryption ("AES256", "aws:kms",
                                 * "aws:kms:dsse"), or "SSE-C" when a customer key was used:
                                 * with aws:kms* and SSE-C the ETag is not an MD5 */
    int src_failed;         /* TRANSFER: the failed request went to src_store (GET or
                                 * HEAD of the source), not to this store */
    char *get_data;         /* GET: malloc'd, NUL-terminated for convenience; the caller
                                 * frees it with free() */
    size_t get_len;

    /* ---- completion: set by submit's caller; run_batch sets them itself */
    ferry_objstore_done_cb done;
    void *done_opaque;

    /* ---- private to the backend */
    void *priv_;
    int64_t started_us_; /* private to run_batch: when it was submitted */
    ferry_objstore_op *next_;
};

/* Where a failed request's error belongs (DESIGN.md §9 "Failure scope"):
 *   DATASET   the migration cannot go on (bucket missing, credentials bad): dead-letter
 *   OBJECT    only this key is affected (403 on that key, archived storage class, KMS
 *             refused, invalid key at the target): record it, copy the others
 *   VANISHED  the key was listed but is gone (NoSuchKey): count it, copy the others
 *   ENDPOINT  the server did not answer properly (network, 5xx, throttling): retryable;
 *             the endpoint's health decides what to do (circuit breaker) */
typedef enum {
    FERRY_SCOPE_DATASET = 0,
    FERRY_SCOPE_OBJECT,
    FERRY_SCOPE_VANISHED,
    FERRY_SCOPE_ENDPOINT,
} ferry_objstore_scope;

/* Scope of a failed COPY/TRANSFER of one object (rc, http_status, s3_code and err.msg as
 * the op reports them; msg may be NULL). *cls gets the class for the failure report (a
 * FERRY_EC_* string): an AccessDenied whose message names KMS is s3-kms, not s3-auth. */
ferry_objstore_scope ferry_objstore_object_scope(ferry_rc rc, int http_status, const char *code,
                                                 const char *msg, const char **cls);

/* Zeroes op and sets type and src_size = SIZE_UNKNOWN. */
void ferry_objstore_op_init(ferry_objstore_op *op, ferry_objstore_op_type type);

/* Queues op; it starts when a connection slot is free, during a later pump. op->done is
 * called exactly once (with rc CANCELLED if ferry_objstore_cancel_queued() drops it). */
void ferry_objstore_submit(ferry_objstore *os, ferry_objstore_op *op);
/* Drives transfers, waiting up to timeout_ms for network activity, then calls the done
 * callbacks of finished ops. Returns how many submitted ops have not completed yet. */
size_t ferry_objstore_pump(ferry_objstore *os, int timeout_ms);
/* Completes every queued op that has not started with FERRY_ERR_CANCELLED (callbacks run
 * at the next pump). Started ops run to their end. */
void ferry_objstore_cancel_queued(ferry_objstore *os);
/* Submits op and pumps until it completes; returns op->rc. Callbacks of other submitted
 * ops may run meanwhile. Sets op->done/done_opaque itself. */
ferry_rc ferry_objstore_exec(ferry_objstore *os, ferry_objstore_op *op);

/* Submits ops[i] to stores[i] (stores may repeat) and pumps
 * until every op completed: requests of different kinds, even on different endpoints,
 * in flight together. Sets each op's done/done_opaque itself; results are in the ops. */
void ferry_objstore_exec_all(ferry_objstore *const *stores, ferry_objstore_op *const *ops,
                             size_t n);

typedef struct ferry_objstore_batch_opts {
    int max_in_flight; /* <= 0 or above the store's: the store's max_in_flight */
    /* Called before each op is started; nonzero stops starting ops (the ones running
     * finish; the rest complete with FERRY_ERR_CANCELLED). May be NULL. */
    int (*cancelled)(void *opaque);
    /* Called once per op, in completion order, on the calling thread. May be NULL. */
    void (*done)(ferry_objstore_op *op, void *opaque);
    void *opaque;
} ferry_objstore_batch_opts;

/* Runs ops[0..n) with up to max_in_flight requests in flight and returns when every op has
 * completed. Each op's own result is in the op (and passed to opts->done); this returns
 * FERRY_OK if all ops ran (whatever their results) and FERRY_ERR_CANCELLED if the cancel
 * check stopped it early. Overwrites each op's done/done_opaque. */
ferry_rc ferry_objstore_run_batch(ferry_objstore *os, ferry_objstore_op *ops, size_t n,
                                  const ferry_objstore_batch_opts *opts);

/* ---------------------------------------------------------------- blocking helpers */

typedef struct ferry_objstore_info {
    uint64_t size;
    char etag[FERRY_OBJSTORE_ETAG_MAX];
    int64_t last_modified_ms;
} ferry_objstore_info;

ferry_rc ferry_objstore_head_bucket(ferry_objstore *os, const char *bucket, ferry_error *err);
ferry_rc ferry_objstore_create_bucket(ferry_objstore *os, const char *bucket, ferry_error *err);
/* One ListObjectsV2 page into out (reused; see ferry_objstore_listing). max_keys 0 -> 1000.
 * prefix, start_after and continuation_token may be NULL. */
ferry_rc ferry_objstore_list(ferry_objstore *os, const char *bucket, const char *prefix,
                             const char *start_after, const char *continuation_token,
                             int max_keys, ferry_objstore_listing *out, ferry_error *err);
/* The same with a delimiter (may be NULL): keys with it after the prefix are rolled up
 * into common prefixes, entries with is_prefix set. */
ferry_rc ferry_objstore_list_delimited(ferry_objstore *os, const char *bucket,
                                       const char *prefix, const char *delimiter,
                                       const char *start_after, const char *continuation_token,
                                       int max_keys, ferry_objstore_listing *out,
                                       ferry_error *err);
ferry_rc ferry_objstore_head(ferry_objstore *os, const char *bucket, const char *key,
                             ferry_objstore_info *info, ferry_error *err);
/* Server-side copy; etag_out (may be NULL) receives the new object's ETag. */
ferry_rc ferry_objstore_copy(ferry_objstore *os, const char *src_bucket, const char *src_key,
                             const char *dst_bucket, const char *dst_key,
                             char etag_out[FERRY_OBJSTORE_ETAG_MAX], ferry_error *err);
ferry_rc ferry_objstore_put(ferry_objstore *os, const char *bucket, const char *key,
                            const void *data, size_t len, const char *content_type,
                            char etag_out[FERRY_OBJSTORE_ETAG_MAX], ferry_error *err);
/* *data is malloc'd (NUL-terminated; free() it); objects above max_size fail (PERMANENT). */
ferry_rc ferry_objstore_get(ferry_objstore *os, const char *bucket, const char *key,
                            size_t max_size, char **data, size_t *len, ferry_error *err);
ferry_rc ferry_objstore_delete(ferry_objstore *os, const char *bucket, const char *key,
                               ferry_error *err);
/* TRANSFER src:src_bucket/src_key -> dst:dst_bucket/dst_key (see the op type); info (may be
 * NULL) receives the new object's size and ETag. */
ferry_rc ferry_objstore_transfer(ferry_objstore *dst, ferry_objstore *src,
                                 const char *src_bucket, const char *src_key,
                                 const char *dst_bucket, const char *dst_key,
                                 ferry_objstore_info *info, ferry_error *err);

/* ---------------------------------------------------------------- shared helpers */

/* Classifies an S3 error response: sets *rc and returns the FERRY_EC_* class. code is the
 * XML error Code ("" or NULL if the response had none, e.g. HEAD). Backends use this so
 * every backend classifies alike. */
const char *ferry_objstore_classify(int http_status, const char *code, ferry_rc *rc);

/* The additional checksum algorithm named by len bytes of name, in any case ("crc32c" in
 * x-amz-checksum-crc32c, "CRC32C" in ChecksumCRC32C): its canonical upper-case name
 * (static), or NULL if S3 has no such algorithm. */
const char *ferry_objstore_checksum_algo(const char *name, size_t len);

/* Whether a checksum value is composite (of its parts' checksums, not of the data): "-N"
 * at its end as AWS sends it, or x-amz-checksum-type COMPOSITE (type may be "" or NULL;
 * moto sends composite values without "-N"). A composite and a full-object checksum of the
 * same bytes differ. */
int ferry_objstore_checksum_composite(const char *checksum, const char *type);

#endif
