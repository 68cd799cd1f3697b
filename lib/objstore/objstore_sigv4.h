/* objstore_sigv4.h: the sigv4 backend's shared state, private to lib/objstore/objstore_*.c
 * (transport, requests, streams, multipart and the backend glue). Never included by the
 * programs; tests reach the backend only through ferry_objstore.h.
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
 * Which file holds what:
 *   objstore_transport.c  curl multi, slots, callbacks, signing and launch, result checks
 *   objstore_requests.c   one builder per S3 request, naming and describing requests
 *   objstore_streams.c    TRANSFER streams (GET -> ring -> PUT)
 *   objstore_multipart.c  the multipart state machine: plan, schedule, finish, abort
 *   objstore_sigv4.c      the backend vtable: create, destroy, submit, pump, cancel
 * Functions shared between these files carry the internal prefix objstore__. */
#ifndef FERRY_OBJSTORE_SIGV4_H
#define FERRY_OBJSTORE_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "ferry_checksum.h"
#include "ferry_objstore.h"
#include "ferry_s3xml.h"
#include "ferry_sigv4.h"
#include "ferry_uri.h"
#include "objstore/objstore_internal.h"

#define MAX_HDRS 32     /* headers per request, signed or not */
#define HBUF_SIZE 16384 /* per-slot header text: copy source (<= 3 KiB) + metadata */
#define ERROR_BODY_MAX (1u << 20)
#define KEEP_BUF_MAX (1u << 20) /* larger response buffers are freed after the request */
#define MAX_PARTS ((unsigned)FERRY_OBJSTORE_MAX_PARTS)
#define MIN_PART ((uint64_t)5 << 20)
#define MAX_PART ((uint64_t)5 << 30)
#define MAX_OBJECT ((uint64_t)5 << 40)
#define META_MAX 4096 /* source metadata carried into a multipart copy */
#define META_HDRS_MAX 16
#define ENC_KEY_MAX (3 * FERRY_URI_KEY_MAX + 1)

enum step {
    ST_MAIN,
    ST_MP_HEAD,
    ST_MP_INIT,
    ST_MP_PART,
    ST_MP_COMPLETE,
    ST_MP_ABORT,
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
    struct txpipe *next;    /* in mp->pipes */
    uint32_t part;          /* 0: the whole object into one PutObject; else UploadPart n */
    uint64_t first;         /* range start */
    uint64_t count;         /* bytes the GET must deliver; SIZE_UNKNOWN until its headers */
    struct slot *get, *put; /* NULL once released; put is reserved from the start */
    char *ring;
    size_t cap, rpos, len;
    uint64_t received, sent;
    int get_done, get_ok, put_launched, put_done, put_ok;
    int get_paused, put_paused;
    const char *get_why; /* our own reason for refusing the GET's body */
    /* part 0: the source's full-object checksum, from the GET's headers ("" if none) */
    char ck_algo[16];
    char ck[FERRY_OBJSTORE_CHECKSUM_MAX];
    /* A part of an upload with a checksum algorithm is sent aws-chunked: its bytes in
     * chunks of TX_CHUNK, then the part's checksum as a trailer (S3 wants one per part,
     * and it is known only once the last byte went through). */
    int chunked;
    ferry_checksum part_ck;
    uint64_t chunk_left; /* data bytes left in the current chunk */
    char frame[128];     /* framing bytes not yet handed to curl */
    size_t frame_len, frame_pos;
    int trailer_queued;
    char part_sum[FERRY_CHECKSUM_B64_MAX]; /* the part's checksum, once trailed */
} txpipe;

/* Data bytes per aws-chunked chunk (objstore_streams.c). */
#define TX_CHUNK ((uint64_t)64 * 1024)

/* State of one multipart copy, or of any TRANSFER; op->priv_ points here while it runs. */
typedef struct mpcopy {
    ferry_objstore_op *op;
    struct mpcopy *next; /* active list */
    int transfer;        /* a TRANSFER (parts and the simple case are pipes) */
    struct sigv4 *src;   /* TRANSFER: the source store's settings (signs HEAD and GETs) */
    txpipe *pipes;       /* TRANSFER: running streams */
    char src_etag[FERRY_OBJSTORE_ETAG_MAX]; /* TRANSFER: the source's ETag (If-Match) */
    enum phase phase;
    int busy;    /* a one-at-a-time request (head/init/complete/abort/simple) in flight */
    int failed;  /* op->rc/err hold the first failure */
    int resumed; /* continues op->mpu_resume's upload (no CreateMultipartUpload) */
    uint64_t size, part_size;
    uint32_t nparts, next_part, parts_done, parts_in_flight;
    char upload_id[1024];
    char (*etags)[FERRY_OBJSTORE_ETAG_MAX];
    /* COPY: the source's additional checksum algorithm ("" = none), kept on the target:
     * the upload is created with it, and each part's checksum from UploadPartCopy goes
     * into CompleteMultipartUpload ("" for parts done before a resume) */
    char ck_algo[16];
    const char *ck_type; /* "FULL_OBJECT" or "COMPOSITE" */
    char (*sums)[FERRY_OBJSTORE_CHECKSUM_MAX];
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
    txpipe *pipe;                /* TRANSFER streams only */
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
    char checksum_algo[16];
    char checksum_type[16]; /* x-amz-checksum-type */
    char checksum[FERRY_OBJSTORE_CHECKSUM_MAX];
    char sse[32];
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
    int stream_checksums; /* conf.stream_checksums */
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

/* One request as the builders describe it; launch() turns it into URL, headers and
 * signature. */
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
    int upload; /* send a body (possibly empty) with UPLOAD */
    int stream; /* the body comes from a TRANSFER pipe: body_len bytes, UNSIGNED-PAYLOAD */
    int trailer; /* ... aws-chunked with a trailing checksum (STREAMING-UNSIGNED-PAYLOAD-TRAILER) */
    int small;     /* metadata request: hard total timeout */
    int want_meta; /* capture the source's metadata (multipart HEAD) */
    size_t resp_limit;
    char payload_hash[65];
} req;

/* ---- objstore_transport.c */

/* Growable byte buffers: 0, or -1 when out of memory. */
int objstore__buf_reserve(buf *b, size_t need);
int objstore__buf_append(buf *b, const void *d, size_t n);
int objstore__buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void objstore__buf_free(buf *b);

/* Copies a formatted, NUL-terminated string into the slot's header area; NULL when full. */
const char *objstore__hstore(slot *sl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Adds a request header; -1 when value is NULL (a failed hstore) or the list is full. */
int objstore__add_hdr(req *r, const char *name, const char *value);

/* Sets the easy handle of a new slot up (callbacks, TLS, timeouts): 0 or -1. */
int objstore__slot_setup(sigv4 *s, slot *sl);
slot *objstore__take_slot(sigv4 *s);
/* Frees the slot for the next request (drops oversized buffers). */
void objstore__slot_release(sigv4 *s, slot *sl);
/* Starts step st of op on slot sl, which the caller took (and gives back on failure). */
int objstore__start(sigv4 *s, slot *sl, ferry_objstore_op *op, enum step st, uint32_t part);

/* Queues op's done callback for the next pump. */
void objstore__push_done(sigv4 *s, ferry_objstore_op *op);
/* Sets op's error as "<request description>: <detail>". */
void objstore__set_op_error(ferry_objstore_op *op, enum step st, uint32_t part, ferry_rc rc,
                            const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Turns a finished transfer into FERRY_OK or an error on op (first error wins for
 * multipart ops). Parses nothing on success; the caller does. */
ferry_rc objstore__check(sigv4 *s, slot *sl, CURLcode cc, ferry_objstore_op *op, enum step st,
                         uint32_t part);
/* Parses a 2xx result document (copy/part/init/complete) into x; an Error inside a 200 is
 * reported on op when report is set. */
ferry_rc objstore__parse_result_doc(slot *sl, ferry_objstore_op *op, enum step st,
                                    uint32_t part, ferry_s3xml_result *x, int report);

/* Starts queued ops and multipart steps on free slots. */
void objstore__schedule(sigv4 *s);
/* 1 while any slot runs a request. */
int objstore__active(const sigv4 *s);
/* One round of curl work, completions and scheduling (see pump). */
void objstore__step(sigv4 *s);

/* ---- objstore_requests.c */

/* The S3 name of step st of op ("CopyObject", "UploadPartCopy", ...). */
const char *objstore__step_name(const ferry_objstore_op *op, enum step st);
/* "CopyObject src/k -> dst/k part 3/12" style description of a request. */
void objstore__describe(const ferry_objstore_op *op, enum step st, uint32_t part, char *out,
                        size_t size);
/* Fills r for op's request at step st (part: a part number, 0 for none) using the slot's
 * header area. 0, or -1 with err set (PERMANENT: the request cannot be expressed). */
int objstore__build(sigv4 *s, slot *sl, ferry_objstore_op *op, enum step st, uint32_t part,
                    req *r, ferry_error *err);

/* ---- objstore_streams.c */

/* curl's write and read callbacks of a stream's GET and PUT. */
size_t objstore__pipe_write(txpipe *p, const char *data, size_t len);
size_t objstore__pipe_read(txpipe *p, char *out, size_t len);
/* "x-amz-checksum-<algo in lowercase>": the header (and trailer) name of a checksum, as
 * SigV4 signs names. */
#define OBJSTORE_CHECKSUM_HNAME_MAX 40
void objstore__checksum_hname(char *out, size_t size, const char *algo);
/* Bytes on the wire of an aws-chunked part of count bytes whose trailer carries a checksum
 * of algo ("CRC32"...): what Content-Length says. */
uint64_t objstore__pipe_chunked_len(uint64_t count, const char *algo);
void objstore__pipe_free(txpipe *p);
/* Starts stream `part` (0: the whole object) of mp's transfer; needs two free slots. 0, or
 * -1 with the op's error set. */
int objstore__pipe_start(sigv4 *s, mpcopy *mp, uint32_t part);
/* A stream's GET or PUT finished (already removed from the multi handle); releases sl. */
void objstore__pipe_slot_done(sigv4 *s, slot *sl, CURLcode cc);
/* Stops every stream of a failed transfer. */
void objstore__tx_cancel(sigv4 *s, mpcopy *mp);
/* Moves streams along (starts PUTs, unpauses); 1 if anything changed. */
int objstore__tx_service(sigv4 *s);

/* ---- objstore_multipart.c */

/* Starts the multipart copy or TRANSFER state machine for op (op->priv_ points to it);
 * -1 when out of memory (op's error set). */
int objstore__mp_new(sigv4 *s, ferry_objstore_op *op);
void objstore__mp_free(mpcopy *mp);
/* Marks mp failed: op->rc/err keep the first failure; the upload gets aborted. */
void objstore__mp_fail(mpcopy *mp);
/* A multipart step (not a stream) finished on sl. */
void objstore__mp_finish(sigv4 *s, slot *sl, ferry_objstore_op *op, enum step st, uint32_t part,
                         CURLcode cc);
/* Starts multipart requests and streams on free slots; completes finished ones. */
void objstore__mp_schedule(sigv4 *s);
/* Part `part` is stored with etag: counts it and reports it (op->mpu_progress). */
void objstore__mp_part_done(mpcopy *mp, uint32_t part, const char *etag);
/* After the first failure of a part or Complete: a resumed upload the server no longer
 * knows is RETRYABLE (see ferry_objstore_mpu). */
void objstore__mp_upload_gone(mpcopy *mp);

#endif
