/* worker_copy_internal.h: the copy engine's private declarations, shared by
 * worker_copy.c (the copier, the page loop and the dataset walks), worker_copy_verify.c
 * (what a finished request means for its object), worker_copy_mpu.c (multipart resume and
 * the orphan sweep) and worker_copy_outage.c (waiting for an endpoint that is down).
 * Nothing outside those files includes it; its functions carry the prefix worker_copy__.
 * Everything runs on the migration's thread. */
#ifndef WORKER_COPY_INTERNAL_H
#define WORKER_COPY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_breaker.h"
#include "ferry_error.h"
#include "ferry_limiter.h"
#include "ferry_log.h"
#include "ferry_mpu.h"
#include "ferry_objstore.h"
#include "ferry_state.h"
#include "ferry_uri.h"
#include "worker_copy.h"

typedef enum {
    ITEM_TODO = 0,   /* to copy */
    ITEM_FILTERED,   /* excluded by include/exclude: nothing to do, not counted */
    ITEM_SKIPPED,    /* already identical at the target */
    ITEM_COPIED,     /* copied and verified */
    ITEM_VERIFY,     /* copied; the ETags did not settle it: the source's HEAD is next */
    ITEM_VERIFY_DST, /* source HEAD done: the target's HEAD decides (checksum, ETag, size) */
    ITEM_FAILED,
    ITEM_RETRY,      /* a retryable request failure: tried again within the page */
    ITEM_OBJ_FAILED, /* a permanent error on this object alone: recorded, not copied */
    ITEM_VANISHED,   /* listed, then gone from the source: recorded, not copied */
} item_state;

typedef struct item {
    item_state state;
    char *dst_key;             /* points into the copier's key arena */
    int64_t started_us;        /* when its copy request started (ferry_copy_duration_seconds) */
    ferry_error why;           /* OBJ_FAILED, VANISHED: class and message for the report */
    ferry_mpu_record mpu;      /* a previous owner's upload of it, while its copy runs */
    ferry_objstore_mpu resume; /* borrows mpu's strings */
    /* ITEM_VERIFY_DST: what the source's HEAD said (x-amz-checksum-mode: ENABLED) */
    int src_etag_md5;  /* the source's ETag is its MD5 (single part, not SSE-KMS/SSE-C) */
    char src_algo[16]; /* additional checksum, "" if the store has none for it */
    char src_sum[FERRY_OBJSTORE_CHECKSUM_MAX];
    int src_composite; /* src_sum is of the parts' checksums, not of the data */
} item;

/* How an object was verified; the union over a migration is kept in its state hash
 * (field `verify`, e.g. "checksum-crc32c,etag-md5,size"). */
enum {
    VERIFY_ETAG_MD5 = 1 << 0,
    VERIFY_SIZE = 1 << 1,
    VERIFY_CRC32 = 1 << 2,
    VERIFY_CRC32C = 1 << 3,
    VERIFY_SHA1 = 1 << 4,
    VERIFY_SHA256 = 1 << 5,
    VERIFY_CRC64NVME = 1 << 6,
};
/* An object at the target written at most this long before the migration started (by the
 * Redis clock, compared with the S3 server's) still counts as written by it. */
#define OWN_COPY_SKEW_MS 120000

struct worker_copier {
    ferry_objstore *store;     /* source endpoint (and target, unless dst_store differs) */
    ferry_objstore *dst_store; /* target endpoint; == store for server-side copies */
    ferry_limiter *limiter, *dst_limiter; /* their endpoints' shared limiters (borrowed) */
    const char *endpoint, *dst_endpoint;  /* metric labels (the conf's strings) */
    ferry_breaker *src_brk; /* the endpoints' circuit breakers (worker_health; shared by */
    ferry_breaker *dst_brk; /* the process, == when one endpoint; NULL before init) */
    int page_size;
    int64_t checkpoint_interval_ms;
    int64_t request_interval_us; /* copy.max_requests_per_second as a gap; 0 = unlimited */
    int request_retries;         /* copy.request_retries */
    int endpoint_tries;          /* a blocking request's retries of endpoint failures: enough
                                  * for the breaker to open (s3.breaker_failures) */
    uint64_t mp_threshold;       /* copy.multipart_threshold_mb: larger objects go in parts */
    /* Chunk boundaries (every fanout.chunk_objects-th selected key) noted by the counting
     * pass, so a dataset that is split is not listed a second time to find them. Bounded:
     * one key per chunk. Valid for the event id in bounds_event. */
    int64_t bound_every;
    /* fanout.min_objects: the count stops once it is passed (the dataset will be split;
     * the splitter lists the rest once) */
    int64_t count_limit;
    /* fanout.copy_before_count: a fresh dataset is copied at once, and counted only if it
     * has more keys than this */
    int64_t copy_before_count;
    char **bounds;
    size_t nbounds, capbounds;
    char *bounds_event;
    /* The event (inventory_for) whose S3 Inventory was read before the count: with
     * inventory_plan set, bounds hold the whole plan from it and the count was skipped;
     * without, it was unusable or stale and the splitter does not read it again. */
    char *inventory_for;
    int inventory_plan;
    int64_t next_request_us;
    int64_t max_failed;         /* copy.max_failed_objects; 0 = no limit */
    int64_t max_failed_percent; /* copy.max_failed_percent; 0 = no limit */
    /* Test hook (FERRY_TEST_UNSETTLE_KEY, read once): the first completion of this source
     * key is dropped as if its request never started, so a page ends with an unsettled
     * item. Lets a test prove such a page is never counted as done (issue 13.4). */
    const char *test_unsettle_key;
    int test_unsettled;
    ferry_report_entry *report;     /* one page's report lines, built at each checkpoint */
    ferry_objstore_listing listing; /* the page being copied */
    /* The next LIST page, requested while the current one is copied: on a real store a
     * LIST takes a round trip or more, and waiting for it between pages idles every
     * connection. At most one page ahead, so memory stays two pages whatever the size. */
    ferry_objstore_listing ahead;
    ferry_objstore_op ahead_op;
    char *ahead_token; /* owned; the op reads it until it completes */
    char *ahead_next;  /* owned: the token of a prefetch wanted but not yet submitted (it
                        * goes out right after the page's first copy) */
    int ahead_pending; /* ahead_op submitted and not completed yet */
    /* The validation's LIST is the copy's first page: listing holds it for the event
     * first_for, listed after first_from (NULL: from the start), until the copy or a
     * walk uses the listing. Saves a round trip before the first copy. */
    char *first_for, *first_from;
    /* The sweep's first ListMultipartUploads page, asked for with the validation of the
     * event uploads_for (NULL: none held) and used by that event's copy of the whole
     * dataset (worker_copy_dataset). Only there: a parent that hands off to chunks must
     * not sweep their uploads. Saves a round trip before the first copy. */
    ferry_objstore_listing uploads;
    char *uploads_for;
    ferry_objstore_op *ops;
    item *items;
    size_t cap;
    char *keys; /* arena for target keys of one page */
    size_t keys_cap;
};

/* ---- per-run context ----------------------------------------------------------- */

typedef struct run {
    worker_copier *c;
    ferry_redis *redis;
    const ferry_lease *lease;
    const ferry_onboard *ev;
    ferry_uri src, dst;
    worker_copy_progress *prog;
    int (*should_stop)(void *);
    void *opaque;
    ferry_log_ctx lctx;
    /* current page */
    size_t n;        /* entries in the page */
    size_t low;      /* items [0, low) are finished: the checkpoint may pass them */
    size_t reported; /* items [0, reported) of the page have their report lines stored */
    int64_t last_checkpoint_ms;
    ferry_error first_err; /* first failure of the page; PERMANENT beats RETRYABLE */
    int failed;
    /* Retryable request failures (503 SlowDown, resets, timeouts) are retried in place,
     * a few times with backoff, before they fail the attempt: on real S3 they are
     * routine, and restarting from the checkpoint would redo the page's checks. */
    int retry_pending;
    ferry_error retry_err;
    /* An endpoint went down (its breaker opened) while a batch ran: ops not started yet
     * were held back; the page waits for the endpoint and goes on. */
    int paused;
    int noted_wait; /* the wait is recorded as the dataset's last error */
    /* the batch running now: ops start in array order, one per stop_requested() == 0 */
    int timing;        /* a batch of copies: note each one's start */
    size_t started;    /* ops of the batch started so far */
    unsigned verified; /* VERIFY_* methods used in this run */
    unsigned noted;    /* ... of which the state hash has been told */
} run;

/* ---- worker_copy.c */
/* Whether include/exclude select the object at rel (its key relative to the prefix). */
int worker_copy__selected(const ferry_onboard *ev, const char *rel);
/* An object is copied and verified at the target (metrics). */
void worker_copy__count_copied(const item *it, const ferry_objstore_entry *e);
/* The page fails with e (a PERMANENT error wins over an earlier RETRYABLE one). */
void worker_copy__note_failure(run *r, const ferry_error *e);
/* Moves the low-water mark over every finished item, counting them. */
void worker_copy__advance(run *r);
/* Object i failed on its own (scope OBJECT or VANISHED): recorded, the others go on. */
void worker_copy__object_failed(run *r, size_t i, int vanished, const char *cls,
                                const char *msg);
/* The checkpoint and the report lines of the items it passes, in one atomic write. */
ferry_rc worker_copy__write_checkpoint(run *r, ferry_error *err);

/* ---- worker_copy_verify.c: completions of a page's requests (ferry_objstore_done_cb) */
void worker_copy__copy_done(ferry_objstore_op *op, void *opaque);
void worker_copy__head_src_done(ferry_objstore_op *op, void *opaque);
void worker_copy__head_done(ferry_objstore_op *op, void *opaque);
/* "checksum-crc32c,etag-md5" from a VERIFY_* set. */
void worker_copy__verify_text(unsigned set, char *out, size_t size);
/* An ETag that can be an MD5 ("...-N" is a multipart ETag). */
int worker_copy__etag_comparable(const char *etag);

/* ---- worker_copy_mpu.c */
/* Before an object above the multipart threshold is copied: records its upload as it
 * goes, and continues one a previous owner recorded for this very source version. */
void worker_copy__mpu_prepare(run *r, ferry_objstore_op *op, item *it,
                              const ferry_objstore_entry *e);
/* Forgets the multipart record of a finished or failed copy. */
void worker_copy__mpu_forget(run *r, const item *it);
/* The sweep's first request into op: ListMultipartUploads of the target prefix, answered
 * into into; to be sent together with others. */
void worker_copy__sweep_first(run *r, ferry_objstore_op *op, ferry_objstore_listing *into);
/* Aborts the uploads under the target prefix that no record tracks (a crash's leftovers).
 * first: its first page, already listed (worker_copy__sweep_first), or NULL. */
void worker_copy__sweep_orphans(run *r, const ferry_objstore_listing *first);

/* ---- worker_copy_outage.c */
/* Whether every endpoint this copier uses lets requests through (breakers closed). */
int worker_copy__endpoints_up(const worker_copier *c);
/* Waits until every endpoint answers again: OK, CANCELLED or PERMANENT s3-outage. */
ferry_rc worker_copy__wait_endpoints(run *r, ferry_error *err);
/* After a blocking request: whether to send it again (see the definition). */
int worker_copy__again(run *r, ferry_breaker *b, ferry_rc *rc, int *tries, ferry_error *err);

/* ---- worker_copy_split.c */
/* Chunk bounds from the source's common prefixes (listed with `delimiter`) after
 * start_after (may be NULL), each handed to cb in increasing order; *nbounds = how many.
 * 0 bounds (and FERRY_OK) when the key space does not split that way -- fewer than two
 * prefixes, or too many of them: then the caller walks the keys. */
ferry_rc worker_copy__prefix_bounds(run *r, const char *delimiter, const char *start_after,
                                    worker_copy_bound_cb cb, void *opaque, int64_t *nbounds,
                                    ferry_error *err);

/* ---- worker_copy_inventory.c */
/* Chunk bounds after start_after (may be NULL) for chunks of about `every` objects, from
 * the S3 Inventory whose manifest.json is at the URI `manifest` (on the source endpoint),
 * each handed to cb in increasing order; *nbounds = how many, *matched = the dataset's
 * objects the inventory lists after start_after. An error before the first bound (an
 * unreadable or foreign inventory) leaves *nbounds 0: the caller can list instead. */
ferry_rc worker_copy__inventory_bounds(run *r, const char *manifest, const char *start_after,
                                       int64_t every, worker_copy_bound_cb cb, void *opaque,
                                       int64_t *nbounds, int64_t *matched, ferry_error *err);
#endif
