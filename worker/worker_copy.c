#include "worker_copy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry_creds.h"
#include "ferry_conf.h"
#include "ferry_log.h"
#include "ferry_mpu.h"
#include "ferry_objstore.h"
#include "ferry_util.h"
#include "ferry_validate.h"
#include "worker_health.h"
#include "worker_metrics.h"

typedef enum {
    ITEM_TODO = 0,   /* to copy */
    ITEM_FILTERED,   /* excluded by include/exclude: nothing to do, not counted */
    ITEM_SKIPPED,    /* already identical at the target */
    ITEM_COPIED,     /* copied and verified */
    ITEM_VERIFY,     /* copied; ETag not comparable, size check pending */
    ITEM_FAILED,
    ITEM_RETRY,      /* a retryable request failure: tried again within the page */
} item_state;

typedef struct item {
    item_state state;
    char *dst_key;      /* points into the copier's key arena */
    int64_t started_us; /* when its copy request started (ferry_copy_duration_seconds) */
    ferry_mpu_record mpu;      /* a previous owner's upload of it, while its copy runs */
    ferry_objstore_mpu resume; /* borrows mpu's strings */
} item;

struct worker_copier {
    ferry_objstore *store;     /* source endpoint (and target, unless dst_store differs) */
    ferry_objstore *dst_store; /* target endpoint; == store for server-side copies */
    ferry_breaker *src_brk;    /* the endpoints' circuit breakers (worker_health; shared by */
    ferry_breaker *dst_brk;    /* the process, == when one endpoint; NULL before init) */
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
    char **bounds;
    size_t nbounds, capbounds;
    char *bounds_event;
    int64_t next_request_us;
    ferry_objstore_listing listing;
    ferry_objstore_op *ops;
    item *items;
    size_t cap;
    char *keys;       /* arena for target keys of one page */
    size_t keys_cap;
};

static void clear_bounds(worker_copier *c)
{
    for (size_t i = 0; i < c->nbounds; i++)
        free(c->bounds[i]);
    c->nbounds = 0;
    free(c->bounds_event);
    c->bounds_event = NULL;
}

/* One store per endpoint. Credentials are copied by ferry_objstore_new and wiped here. */
static ferry_objstore *open_store(const ferry_conf *conf, int target, char *errstr,
                                  size_t errstr_size)
{
    ferry_objstore_conf oc;
    ferry_s3_creds creds;
    ferry_error err = {0};
    ferry_objstore *os;
    const char *region = target ? ferry_conf_str(conf, "s3.target.region") : NULL;

    if ((target ? ferry_s3_target_creds_load(conf, &creds, &err)
                : ferry_s3_creds_load(conf, &creds, &err)) != FERRY_OK) {
        ferry_error_to_errstr(&err, errstr, errstr_size, "%s endpoint",
                              target ? "target" : "source");
        return NULL;
    }
    ferry_objstore_conf_init(&oc);
    oc.backend = ferry_conf_str(conf, "s3.backend");
    oc.insecure_tls_ok = ferry_conf_bool(conf, "s3.insecure_tls_ok");
    oc.endpoint = target ? ferry_conf_str(conf, "s3.target.endpoint") : ferry_conf_str(conf, "s3.endpoint");
    oc.region = region ? region : ferry_conf_str(conf, "s3.region");
    oc.path_style = ferry_conf_bool(conf, "s3.path_style");
    oc.ca_file = ferry_conf_str(conf, "s3.ca_file");
    oc.access_key = creds.access_key;
    oc.secret_key = creds.secret_key;
    oc.session_token = creds.session_token[0] ? creds.session_token : NULL;
    oc.request_timeout_ms = ferry_conf_int(conf, "s3.timeout_ms");
    oc.stall_timeout_ms = ferry_conf_int(conf, "s3.stall_timeout_ms");
    oc.max_in_flight = (int)ferry_conf_int(conf, "copy.max_in_flight");
    if (target && oc.max_in_flight < 2)
        oc.max_in_flight = 2; /* a streamed copy holds a GET and a PUT */
    oc.multipart_threshold = (uint64_t)ferry_conf_int(conf, "copy.multipart_threshold_mb") << 20;
    oc.multipart_part_size = (uint64_t)ferry_conf_int(conf, "copy.multipart_part_size_mb") << 20;
    os = ferry_objstore_new(&oc, &err);
    ferry_s3_creds_wipe(&creds);
    if (!os)
        ferry_error_to_errstr(&err, errstr, errstr_size, "%s endpoint",
                              target ? "target" : "source");
    return os;
}

worker_copier *worker_copier_new(const ferry_conf *conf, char *errstr, size_t errstr_size)
{
    worker_copier *c = calloc(1, sizeof(*c));

    if (!c) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (!(c->store = open_store(conf, 0, errstr, errstr_size)))
        goto fail;
    /* A different target endpoint: objects stream GET -> PUT through this process
     * (server-side copy cannot cross endpoints or accounts). */
    if (ferry_conf_str(conf, "s3.target.endpoint")) {
        if (!(c->dst_store = open_store(conf, 1, errstr, errstr_size)))
            goto fail;
    } else {
        c->dst_store = c->store;
    }
    c->src_brk = worker_health_breaker(ferry_conf_str(conf, "s3.endpoint"));
    c->dst_brk = ferry_conf_str(conf, "s3.target.endpoint")
                     ? worker_health_breaker(ferry_conf_str(conf, "s3.target.endpoint"))
                     : c->src_brk;
    c->page_size = (int)ferry_conf_int(conf, "copy.page_size");
    c->request_retries = (int)ferry_conf_int(conf, "copy.request_retries");
    c->endpoint_tries = (int)ferry_conf_int(conf, "s3.breaker_failures");
    if (c->endpoint_tries < c->request_retries)
        c->endpoint_tries = c->request_retries;
    c->mp_threshold = (uint64_t)ferry_conf_int(conf, "copy.multipart_threshold_mb") << 20;
    if (ferry_conf_int(conf, "fanout.min_objects") > 0)
        c->bound_every = ferry_conf_int(conf, "fanout.chunk_objects");
    c->checkpoint_interval_ms = ferry_conf_int(conf, "copy.checkpoint_interval_ms");
    if (ferry_conf_int(conf, "copy.max_requests_per_second") > 0)
        c->request_interval_us = 1000000 / ferry_conf_int(conf, "copy.max_requests_per_second");
    ferry_objstore_listing_init(&c->listing);
    return c;
fail:
    worker_copier_destroy(c);
    return NULL;
}

void worker_copier_destroy(worker_copier *c)
{
    if (!c)
        return;
    if (c->dst_store != c->store)
        ferry_objstore_destroy(c->dst_store);
    clear_bounds(c);
    free(c->bounds);
    ferry_objstore_destroy(c->store);
    ferry_objstore_listing_free(&c->listing);
    free(c->ops);
    free(c->items);
    free(c->keys);
    free(c);
}

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
    size_t n;          /* entries in the page */
    size_t low;        /* items [0, low) are finished: the checkpoint may pass them */
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
    int noted_wait;    /* the wait is recorded as the dataset's last error */
    /* the batch running now: ops start in array order, one per stop_requested() == 0 */
    int timing;        /* a batch of copies: note each one's start */
    size_t started;    /* ops of the batch started so far */
} run;

static int endpoints_up(const worker_copier *c)
{
    int64_t now = ferry_mono_ms();
    return (!c->src_brk || ferry_breaker_allows(c->src_brk, now)) &&
           (!c->dst_brk || ferry_breaker_allows(c->dst_brk, now));
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Called before each request starts: the place to stop, and to pace requests when
 * copy.max_requests_per_second asks us to be gentle with a production store. */
static int stop_requested(void *opaque)
{
    run *r = opaque;
    worker_copier *c = r->c;

    if (r->failed || r->should_stop(r->opaque))
        return 1;
    if (!endpoints_up(c)) {
        r->paused = 1;
        return 1;
    }
    if (c->request_interval_us > 0) {
        int64_t now = mono_us();
        if (c->next_request_us < now)
            c->next_request_us = now;
        while (c->next_request_us > now) {
            int64_t wait = c->next_request_us - now;
            ferry_sleep_ms(wait > 100000 ? 100 : (wait + 999) / 1000);
            if (r->should_stop(r->opaque))
                return 1;
            now = mono_us();
        }
        c->next_request_us += c->request_interval_us;
    }
    if (r->timing)
        c->items[(size_t)(uintptr_t)c->ops[r->started].user].started_us = mono_us();
    r->started++;
    return 0;
}

/* An object is copied and verified at the target. */
static void count_copied(const item *it, const ferry_objstore_entry *e)
{
    ferry_counter_inc(worker_metric.objects_copied);
    ferry_counter_add(worker_metric.bytes_copied, e->size);
    if (it->started_us)
        ferry_histogram_observe(worker_metric.copy_duration,
                                (double)(mono_us() - it->started_us) / 1e6);
}

static void note_failure(run *r, const ferry_error *e)
{
    if (!r->failed || (e->rc == FERRY_ERR_PERMANENT && r->first_err.rc != FERRY_ERR_PERMANENT))
        r->first_err = *e;
    r->failed = 1;
}

static int finished(item_state s)
{
    return s == ITEM_FILTERED || s == ITEM_SKIPPED || s == ITEM_COPIED;
}

/* Moves the low-water mark over every finished item, counting them. */
static void advance(run *r)
{
    while (r->low < r->n && finished(r->c->items[r->low].state)) {
        const ferry_objstore_entry *e = &r->c->listing.entries[r->low];
        if (r->c->items[r->low].state != ITEM_FILTERED) {
            r->prog->objects_done++;
            r->prog->bytes_done += (int64_t)e->size;
        }
        r->low++;
    }
}

static ferry_rc write_checkpoint(run *r, ferry_error *err)
{
    ferry_checkpoint cp;
    char *key;
    ferry_rc rc;

    if (r->low == 0)
        return FERRY_OK; /* nothing new in this page */
    key = strdup(r->c->listing.entries[r->low - 1].key);
    if (!key)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    cp.key = key;
    cp.objects_done = r->prog->objects_done;
    cp.bytes_done = r->prog->bytes_done;
    cp.objects_total = r->prog->objects_total;
    rc = ferry_state_checkpoint(r->redis, r->lease, &cp, err);
    if (rc != FERRY_OK) {
        free(key);
        return rc;
    }
    free(r->prog->checkpoint_owned);
    r->prog->checkpoint_owned = key;
    r->prog->checkpoint = key;
    r->last_checkpoint_ms = ferry_mono_ms();
    return FERRY_OK;
}

static int etag_comparable(const char *etag)
{
    return etag[0] && !strchr(etag, '-'); /* "...-N" is a multipart ETag, not an MD5 */
}

/* Feeds a finished op to the circuit breaker of the endpoint it talked to. A TRANSFER
 * talks to both: an answer counts for both, a failure for the side that failed. */
static void note_endpoint(run *r, const ferry_objstore_op *op)
{
    worker_copier *c = r->c;
    ferry_breaker *b = c->dst_brk;

    if (op->type == FERRY_OBJSTORE_OP_TRANSFER && c->src_brk != c->dst_brk) {
        if (op->rc == FERRY_OK)
            worker_health_note(c->src_brk, op->rc, &op->err, op->s3_code, &r->lctx);
        else if (op->src_failed)
            b = c->src_brk;
    }
    worker_health_note(b, op->rc, &op->err, op->s3_code, &r->lctx);
}

/* ---- multipart resume (DESIGN.md §9 "Multipart state") ---------------------------
 * A copy in parts records its upload in Redis (ferry_mpu) as it goes, under the lease;
 * after a crash the next owner continues that upload and copies only the missing parts.
 * A finished or failed copy forgets the record: a failed one was aborted by the store. */

static ferry_rc mpu_progress(ferry_objstore_op *op, const char *upload_id, uint64_t part_size,
                             uint32_t part, const char *etag, ferry_error *err)
{
    run *r = op->mpu_opaque;
    size_t i = (size_t)(uintptr_t)op->user;
    const ferry_objstore_entry *e = &r->c->listing.entries[i];
    const char *key = r->c->items[i].dst_key;
    ferry_error we;
    ferry_rc rc;

    if (part == 0)
        rc = ferry_mpu_begin(r->redis, r->lease, r->dst.bucket, key, upload_id, part_size,
                             e->size, e->etag, &we);
    else
        rc = ferry_mpu_part(r->redis, r->lease, r->dst.bucket, key, upload_id, part, etag,
                            &we);
    if (rc == FERRY_ERR_CANCELLED) {
        note_failure(r, &we); /* fenced: the upload is aborted, the migration stops */
        *err = we;
        return rc;
    }
    if (rc != FERRY_OK) /* Redis briefly away: the copy goes on, a resume redoes more */
        ferry_warn(&r->lctx, "multipart progress of %s not recorded: %s", key, we.msg);
    return FERRY_OK;
}

/* Aborts an upload nobody will complete (best effort: the sweep catches what remains). */
static void abort_upload(run *r, const char *key, const char *upload_id)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_ABORT_UPLOAD);
    op.bucket = r->dst.bucket;
    op.key = key;
    op.upload_id = upload_id;
    if (ferry_objstore_exec(r->c->dst_store, &op) != FERRY_OK && op.http_status != 404)
        ferry_warn(&r->lctx, "aborting the multipart upload of %s: %s", key, op.err.msg);
}

/* Before an object above the multipart threshold is copied: continue the upload a
 * previous owner recorded, if it was of this very source version. */
static void mpu_prepare(run *r, ferry_objstore_op *op, item *it, const ferry_objstore_entry *e)
{
    ferry_error err;
    int found = 0;

    if (!r->redis || !r->lease || e->size <= r->c->mp_threshold)
        return;
    op->mpu_progress = mpu_progress;
    op->mpu_opaque = r;
    if (ferry_mpu_get(r->redis, r->lease->dataset, r->dst.bucket, it->dst_key, &it->mpu,
                      &found, &err) != FERRY_OK) {
        ferry_warn(&r->lctx, "reading the multipart record of %s: %s", it->dst_key, err.msg);
        return;
    }
    if (!found)
        return;
    if (it->mpu.size != e->size || !it->mpu.src_etag || strcmp(it->mpu.src_etag, e->etag)) {
        /* The source changed since: its parts are of no use. */
        abort_upload(r, it->dst_key, it->mpu.upload_id);
        ferry_mpu_record_clear(&it->mpu);
        return;
    }
    it->resume.upload_id = it->mpu.upload_id;
    it->resume.part_size = it->mpu.part_size;
    it->resume.parts = it->mpu.parts;
    it->resume.nparts = it->mpu.nparts;
    op->mpu_resume = &it->resume;
    ferry_info(&r->lctx, "resuming the multipart upload of %s: %zu parts already stored",
               it->dst_key, it->mpu.nparts);
}

static void mpu_forget(run *r, const item *it)
{
    ferry_error err;
    ferry_rc rc = ferry_mpu_clear(r->redis, r->lease, r->dst.bucket, it->dst_key, NULL, &err);

    if (rc != FERRY_OK && rc != FERRY_ERR_CANCELLED)
        ferry_warn(&r->lctx, "forgetting the multipart record of %s: %s", it->dst_key, err.msg);
}

/* At the start of a whole-dataset migration: abort the multipart uploads under the
 * target prefix that no record tracks and that are older than the lease TTL -- what a
 * worker that crashed (or a ferry before records existed) left behind. Younger ones may
 * belong to a previous owner still finishing a part; uploads of unknown age are kept. */
static void sweep_orphans(run *r)
{
    worker_copier *c = r->c;
    int64_t cutoff = (int64_t)time(NULL) * 1000 - r->lease->ttl_ms;
    char *marker = NULL;
    int aborted = 0;

    do {
        ferry_objstore_op op;
        ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_LIST_UPLOADS);
        op.bucket = r->dst.bucket;
        op.prefix = r->dst.prefix;
        op.continuation_token = marker;
        op.listing = &c->listing;
        ferry_objstore_exec(c->dst_store, &op);
        free(marker);
        marker = NULL;
        if (op.rc != FERRY_OK) {
            ferry_debug(&r->lctx, "no sweep of multipart uploads: %s", op.err.msg);
            return;
        }
        for (size_t i = 0; i < c->listing.count; i++) {
            const ferry_objstore_entry *e = &c->listing.entries[i];
            ferry_mpu_record rec;
            ferry_error err;
            int found = 0;
            if (!e->upload_id || !e->last_modified_ms || e->last_modified_ms > cutoff)
                continue;
            if (ferry_mpu_get(r->redis, r->lease->dataset, r->dst.bucket, e->key, &rec, &found,
                              &err) != FERRY_OK)
                return; /* Redis away: sweep next time */
            found = found && !strcmp(rec.upload_id, e->upload_id);
            ferry_mpu_record_clear(&rec);
            if (found)
                continue; /* a resume continues it */
            abort_upload(r, e->key, e->upload_id);
            aborted++;
        }
        if (c->listing.is_truncated && c->listing.next_token &&
            !(marker = strdup(c->listing.next_token)))
            return;
    } while (marker);
    if (aborted)
        ferry_info(&r->lctx, "aborted %d orphaned multipart upload(s) under %s", aborted,
                   r->ev->target_uri);
}

/* Copy completion, on this thread, in completion order. */
static void copy_done(ferry_objstore_op *op, void *opaque)
{
    run *r = opaque;
    size_t i = (size_t)(uintptr_t)op->user;
    const ferry_objstore_entry *e = &r->c->listing.entries[i];
    item *it = &r->c->items[i];

    if (op->rc == FERRY_ERR_CANCELLED)
        return; /* never started (or lost the lease): stays TODO, its record stays */
    note_endpoint(r, op);
    if (op->mpu_progress)
        mpu_forget(r, it);
    if (op->rc == FERRY_ERR_RETRYABLE && op->http_status != 412) {
        it->state = ITEM_RETRY;
        r->retry_pending = 1;
        r->retry_err = op->err;
        return;
    }
    if (op->rc != FERRY_OK) {
        ferry_error e412;
        it->state = ITEM_FAILED;
        if (op->http_status == 412) {
            /* x-amz-copy-source-if-match refused: the source changed since it was
             * listed. Listing again picks up the new version. */
            ferry_error_set(&e412, FERRY_ERR_RETRYABLE, FERRY_EC_VERIFY,
                            "%s changed during the migration (ETag no longer %s)", e->key,
                            e->etag);
            note_failure(r, &e412);
        } else {
            note_failure(r, &op->err);
        }
        return;
    }
    r->prog->objects_copied++;
    ferry_debug(&r->lctx, "copied %s -> %s", e->key, it->dst_key);
    if (!r->ev->verify)
        it->state = ITEM_COPIED;
    else if (etag_comparable(e->etag) && !op->multipart)
        it->state = strcmp(op->etag, e->etag) == 0 ? ITEM_COPIED : ITEM_FAILED;
    else
        it->state = ITEM_VERIFY; /* multipart ETags differ by part size: check the size */
    if (it->state == ITEM_FAILED) {
        ferry_error ve;
        /* Most likely the source changed under us: retrying copies the new version. */
        ferry_error_set(&ve, FERRY_ERR_RETRYABLE, FERRY_EC_VERIFY,
                        "%s: target ETag %s differs from source ETag %s", e->key, op->etag,
                        e->etag);
        note_failure(r, &ve);
        return;
    }
    if (it->state == ITEM_COPIED)
        count_copied(it, e);
    advance(r);
    if (r->c->checkpoint_interval_ms &&
        ferry_mono_ms() - r->last_checkpoint_ms >= r->c->checkpoint_interval_ms) {
        ferry_error ce;
        ferry_rc rc = write_checkpoint(r, &ce);
        if (rc == FERRY_ERR_CANCELLED)
            note_failure(r, &ce); /* fenced: stop now */
        /* Other checkpoint failures (Redis briefly down) are retried at the page end. */
    }
}

/* Target HEAD before copying (resume window, overwrite=never) or after (size check). */
static void head_done(ferry_objstore_op *op, void *opaque)
{
    run *r = opaque;
    size_t i = (size_t)(uintptr_t)op->user;
    const ferry_objstore_entry *e = &r->c->listing.entries[i];
    item *it = &r->c->items[i];
    int missing = op->rc == FERRY_ERR_PERMANENT && op->http_status == 404;

    if (op->rc == FERRY_ERR_CANCELLED)
        return;
    note_endpoint(r, op);
    if (op->rc == FERRY_ERR_RETRYABLE) {
        /* A verify HEAD is asked again; a pre-copy check is only an optimisation, so the
         * object is simply copied. */
        if (it->state == ITEM_VERIFY) {
            r->retry_pending = 1;
            r->retry_err = op->err;
        }
        return;
    }
    if (op->rc != FERRY_OK && !missing) {
        note_failure(r, &op->err);
        return;
    }
    if (it->state == ITEM_VERIFY) {
        if (missing || op->size != e->size) {
            ferry_error ve;
            it->state = ITEM_FAILED;
            ferry_error_set(&ve, FERRY_ERR_RETRYABLE, FERRY_EC_VERIFY,
                            "%s: target size %llu differs from source size %llu", e->key,
                            missing ? 0ULL : (unsigned long long)op->size,
                            (unsigned long long)e->size);
            note_failure(r, &ve);
        } else {
            it->state = ITEM_COPIED;
            count_copied(it, e);
        }
        return;
    }
    /* Pre-copy check of an item still TODO. */
    if (missing)
        return;
    if (op->size == e->size && etag_comparable(e->etag) && strcmp(op->etag, e->etag) == 0) {
        it->state = ITEM_SKIPPED;
        r->prog->objects_skipped++;
        ferry_debug(&r->lctx, "identical at the target, not copying %s", e->key);
    } else if (r->ev->overwrite == FERRY_OVERWRITE_NEVER) {
        ferry_error ve;
        ferry_error_set(&ve, FERRY_ERR_PERMANENT, FERRY_EC_VALIDATION,
                        "target object %s exists and differs from the source, and the "
                        "overwrite policy is never",
                        it->dst_key);
        it->state = ITEM_FAILED;
        note_failure(r, &ve);
    }
}

static int grow(worker_copier *c, size_t n, size_t keybytes)
{
    if (n > c->cap) {
        ferry_objstore_op *ops = realloc(c->ops, n * sizeof(*ops));
        item *items;
        if (!ops)
            return -1;
        c->ops = ops;
        items = realloc(c->items, n * sizeof(*items));
        if (!items)
            return -1;
        c->items = items;
        c->cap = n;
    }
    if (keybytes > c->keys_cap) {
        char *k = realloc(c->keys, keybytes);
        if (!k)
            return -1;
        c->keys = k;
        c->keys_cap = keybytes;
    }
    return 0;
}

static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Include/exclude prefixes are relative to the source prefix. */
static int selected(const ferry_onboard *ev, const char *rel)
{
    int inc = ev->include_count == 0;
    for (size_t i = 0; i < ev->include_count && !inc; i++)
        inc = has_prefix(rel, ev->include_prefixes[i]);
    for (size_t i = 0; i < ev->exclude_count && inc; i++)
        inc = !has_prefix(rel, ev->exclude_prefixes[i]);
    return inc;
}

/* Lays out the page's items and target keys. */
static ferry_rc plan_page(run *r, ferry_error *err)
{
    worker_copier *c = r->c;
    size_t srclen = strlen(r->src.prefix), dstlen = strlen(r->dst.prefix), need = 0, off = 0;

    r->n = c->listing.count;
    r->low = 0;
    for (size_t i = 0; i < r->n; i++)
        need += dstlen + c->listing.entries[i].key_len - srclen + 1;
    if (grow(c, r->n ? r->n : 1, need ? need : 1) != 0)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    for (size_t i = 0; i < r->n; i++) {
        const ferry_objstore_entry *e = &c->listing.entries[i];
        const char *rel = e->key + srclen; /* listing is under the prefix */
        item *it = &c->items[i];
        size_t rl = e->key_len - srclen;

        it->dst_key = c->keys + off;
        memcpy(it->dst_key, r->dst.prefix, dstlen);
        memcpy(it->dst_key + dstlen, rel, rl);
        it->dst_key[dstlen + rl] = '\0';
        off += dstlen + rl + 1;
        if (dstlen + rl > FERRY_URI_KEY_MAX)
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                   "target key for %s would exceed %d bytes", e->key,
                                   FERRY_URI_KEY_MAX);
        it->state = selected(r->ev, rel) ? ITEM_TODO : ITEM_FILTERED;
        it->started_us = 0;
        memset(&it->mpu, 0, sizeof(it->mpu));
        memset(&it->resume, 0, sizeof(it->resume));
    }
    return FERRY_OK;
}

/* Runs one kind of op over the items in `want` state, all in one batch. ops[] is
 * compact; op->user holds the item's index in the page. */
static void run_ops(run *r, item_state want, ferry_objstore_op_type type,
                    void (*done)(ferry_objstore_op *, void *))
{
    worker_copier *c = r->c;
    ferry_objstore_batch_opts opts = {0, stop_requested, done, r};
    size_t n = 0;

    for (size_t i = 0; i < r->n; i++) {
        ferry_objstore_op *op;
        const ferry_objstore_entry *e = &c->listing.entries[i];
        if (c->items[i].state != want)
            continue;
        op = &c->ops[n++];
        if (type == FERRY_OBJSTORE_OP_COPY && c->dst_store != c->store) {
            ferry_objstore_op_init(op, FERRY_OBJSTORE_OP_TRANSFER);
            op->src_store = c->store;
        } else {
            ferry_objstore_op_init(op, type);
        }
        op->bucket = r->dst.bucket;
        op->key = c->items[i].dst_key;
        op->user = (void *)(uintptr_t)i;
        if (type == FERRY_OBJSTORE_OP_COPY) {
            op->src_bucket = r->src.bucket;
            op->src_key = e->key;
            op->src_size = e->size;
            if (etag_comparable(e->etag))
                op->src_if_match = e->etag; /* never copy a newer version than we listed */
            mpu_prepare(r, op, &c->items[i], e);
        }
    }
    r->timing = type == FERRY_OBJSTORE_OP_COPY;
    r->started = 0;
    if (n > 0) /* HEADs and copies act on the target; a TRANSFER drives both stores */
        ferry_objstore_run_batch(c->dst_store, c->ops, n, &opts);
    r->timing = 0;
    for (size_t i = 0; i < n; i++)
        ferry_mpu_record_clear(&c->items[(size_t)(uintptr_t)c->ops[i].user].mpu);
}

/* ---- endpoint outages ------------------------------------------------------------ */

/* The probe of an endpoint that is down: HEAD of the bucket this copy uses there. */
static ferry_rc probe_bucket(void *opaque, ferry_breaker *b, ferry_error *err)
{
    run *r = opaque;
    if (b == r->c->src_brk)
        return ferry_objstore_head_bucket(r->c->store, r->src.bucket, err);
    return ferry_objstore_head_bucket(r->c->dst_store, r->dst.bucket, err);
}

/* The status view shows at once why the migration is not moving (best effort). */
static void note_waiting(run *r, ferry_breaker *b)
{
    ferry_breaker_snapshot s;
    ferry_error e, serr;

    if (r->noted_wait || !r->redis || !r->lease)
        return;
    r->noted_wait = 1;
    ferry_breaker_snapshot_get(b, &s);
    ferry_error_set(&e, FERRY_ERR_RETRYABLE, s.stalled ? FERRY_EC_S3_STALL : FERRY_EC_S3_NETWORK,
                    "waiting for S3 endpoint %s, down%s: %s", ferry_breaker_name(b),
                    s.stalled ? " (requests stalled)" : "", s.last_error);
    if (ferry_state_note_error(r->redis, r->lease, e.cls, e.msg, &serr) != FERRY_OK)
        ferry_debug(&r->lctx, "recording the wait: %s", serr.msg);
}

/* Waits, at an object boundary and holding the lease, until every endpoint this copy
 * needs answers again. OK, CANCELLED (stop requested) or PERMANENT s3-outage. */
static ferry_rc wait_endpoints(run *r, ferry_error *err)
{
    worker_copier *c = r->c;
    ferry_breaker *bs[2] = {c->src_brk, c->dst_brk != c->src_brk ? c->dst_brk : NULL};
    ferry_rc rc;

    while (!endpoints_up(c)) {
        for (int i = 0; i < 2; i++) {
            if (!bs[i] || ferry_breaker_allows(bs[i], ferry_mono_ms()))
                continue;
            note_waiting(r, bs[i]);
            rc = worker_health_wait(bs[i], probe_bucket, r, r->should_stop, r->opaque,
                                    &r->lctx, err);
            if (rc != FERRY_OK)
                return rc;
        }
    }
    return FERRY_OK;
}

/* After a blocking request to the endpoint of b: feeds the breaker and says whether to
 * send the request again. An endpoint failure is retried in place -- with backoff until
 * the breaker opens (or, if other requests keep succeeding, endpoint_tries times), then
 * after the outage -- so that an outage never charges the event an attempt. When the
 * wait ends the migration, *rc and err say why. */
static int again(run *r, ferry_breaker *b, ferry_rc *rc, int *tries, ferry_error *err)
{
    worker_health_note(b, *rc, err, NULL, &r->lctx);
    if (*rc == FERRY_OK || !worker_health_endpoint_failure(*rc, err, NULL) ||
        r->should_stop(r->opaque))
        return 0;
    if (!endpoints_up(r->c)) {
        if ((*rc = wait_endpoints(r, err)) != FERRY_OK)
            return 0;
        *tries = 0;
        return 1;
    }
    if ((*tries)++ >= r->c->endpoint_tries)
        return 0;
    ferry_counter_inc(worker_metric.retries);
    ferry_sleep_ms(ferry_backoff_ms(*tries - 1, 100, 5000));
    return 1;
}

/* One ListObjectsV2 page of the source, retried across endpoint failures. */
static ferry_rc list_source(run *r, const char *start_after, const char *token, int max_keys,
                            ferry_error *err)
{
    ferry_rc rc;
    int tries = 0;
    do
        rc = ferry_objstore_list(r->c->store, r->src.bucket, r->src.prefix, start_after, token,
                                 max_keys, &r->c->listing, err);
    while (again(r, r->c->src_brk, &rc, &tries, err));
    return rc;
}

/* Items held back or failed while an endpoint went down: wait for it, checkpointing first
 * what finished. FERRY_OK to go on with the page (the outage charged no retries). */
static ferry_rc pause_point(run *r, ferry_error *err)
{
    ferry_error cerr;
    ferry_rc rc;

    r->paused = 0;
    if (write_checkpoint(r, &cerr) == FERRY_ERR_CANCELLED) {
        *err = cerr; /* fenced */
        return FERRY_ERR_CANCELLED;
    }
    if ((rc = wait_endpoints(r, err)) != FERRY_OK)
        return rc;
    for (size_t i = 0; i < r->n; i++)
        if (r->c->items[i].state == ITEM_RETRY)
            r->c->items[i].state = ITEM_TODO;
    return FERRY_OK;
}

static ferry_rc copy_page(run *r, int check_first, ferry_error *err)
{
    ferry_rc rc;

    r->failed = 0;
    r->paused = 0;
    if ((rc = plan_page(r, err)) != FERRY_OK)
        return rc;
    /* (a check held back by an outage is made after it: overwrite=never relies on it) */
    while (check_first) {
        run_ops(r, ITEM_TODO, FERRY_OBJSTORE_OP_HEAD, head_done);
        if (r->failed || !r->paused || r->should_stop(r->opaque))
            break;
        if ((rc = pause_point(r, err)) != FERRY_OK)
            return rc;
    }
    advance(r);
    for (int round = 0; !r->failed; round++) {
        r->retry_pending = 0;
        run_ops(r, ITEM_TODO, FERRY_OBJSTORE_OP_COPY, copy_done);
        if (!r->failed)
            run_ops(r, ITEM_VERIFY, FERRY_OBJSTORE_OP_HEAD, head_done);
        advance(r);
        if (r->failed || r->should_stop(r->opaque))
            break;
        if (r->paused || !endpoints_up(r->c)) {
            rc = pause_point(r, err);
            if (rc == FERRY_ERR_CANCELLED && strcmp(err->cls, FERRY_EC_FENCED) != 0)
                break; /* stopping: checkpointed, the rest stays TODO */
            if (rc != FERRY_OK) {
                note_failure(r, err);
                break;
            }
            round = -1;
            continue;
        }
        if (!r->retry_pending)
            break;
        if (round >= r->c->request_retries) {
            ferry_error_prefix(&r->retry_err, "after %d tries", round + 1);
            note_failure(r, &r->retry_err);
            break;
        }
        ferry_counter_inc(worker_metric.retries);
        ferry_debug(&r->lctx, "retrying failed requests of this page: %s", r->retry_err.msg);
        ferry_sleep_ms(ferry_backoff_ms(round, 100, 5000));
        for (size_t i = 0; i < r->n; i++)
            if (r->c->items[i].state == ITEM_RETRY)
                r->c->items[i].state = ITEM_TODO;
    }
    /* Checkpoint whatever finished, failure or not: that work is never redone. */
    rc = write_checkpoint(r, err);
    if (r->failed) {
        *err = r->first_err;
        return err->rc;
    }
    if (rc != FERRY_OK)
        return rc;
    if (r->low < r->n)
        return ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_INTERNAL, "stopped");
    return FERRY_OK;
}

/* Before any byte moves: the source is listable, the target bucket exists and takes
 * writes, the locations do not overlap. Which check failed is in the message. */
static ferry_rc validate(run *r, ferry_error *err)
{
    worker_copier *c = r->c;
    char probe[FERRY_URI_KEY_MAX + 64];
    ferry_rc rc;
    int tries = 0;

    /* A target inside the source would feed the copy its own output. */
    if (c->dst_store == c->store && ferry_uri_overlaps(&r->src, &r->dst))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_VALIDATION,
                               "validation: source %s and target %s overlap on the same "
                               "endpoint",
                               r->ev->source_uri, r->ev->target_uri);
    /* (an endpoint that is down is waited for here too: see again()) */
    if ((rc = list_source(r, NULL, NULL, 1, err)) != FERRY_OK) {
        ferry_error_prefix(err, "validation: source %s is not listable", r->ev->source_uri);
        return rc;
    }
    do
        rc = ferry_objstore_head_bucket(c->dst_store, r->dst.bucket, err);
    while (again(r, c->dst_brk, &rc, &tries, err));
    if (rc != FERRY_OK) {
        ferry_error_prefix(err, "validation: target bucket %s", r->dst.bucket);
        return rc;
    }
    snprintf(probe, sizeof(probe), "%s.ferry-write-probe-%s", r->dst.prefix, r->ev->event_id);
    tries = 0;
    do
        rc = ferry_objstore_put(c->dst_store, r->dst.bucket, probe, "", 0, NULL, NULL, err);
    while (again(r, c->dst_brk, &rc, &tries, err));
    if (rc != FERRY_OK) {
        ferry_error_prefix(err, "validation: target %s does not accept writes",
                           r->ev->target_uri);
        return rc;
    }
    tries = 0;
    do
        rc = ferry_objstore_delete(c->dst_store, r->dst.bucket, probe, err);
    while (again(r, c->dst_brk, &rc, &tries, err));
    if (rc != FERRY_OK) {
        ferry_error_prefix(err, "validation: deleting the write probe %s", probe);
        return rc;
    }
    return FERRY_OK;
}

/* Lists the whole source once, counting the selected objects into *total and calling
 * cb (if any) with every `every`-th selected key. Holds one page at a time. */
static ferry_rc walk_selected(run *r, int64_t every, ferry_rc (*cb)(const char *, void *),
                              void *opaque, int64_t *total, ferry_error *err)
{
    worker_copier *c = r->c;
    char *token = NULL;
    size_t srclen = strlen(r->src.prefix);
    ferry_rc rc;

    *total = 0;
    do {
        rc = list_source(r, NULL, token, 1000, err);
        free(token);
        token = NULL;
        if (rc != FERRY_OK)
            return rc;
        for (size_t i = 0; i < c->listing.count; i++) {
            if (!selected(r->ev, c->listing.entries[i].key + srclen))
                continue;
            if (++*total % (every > 0 ? every : 1) == 0 && cb &&
                (rc = cb(c->listing.entries[i].key, opaque)) != FERRY_OK)
                return ferry_error_set(err, rc, FERRY_EC_INTERNAL,
                                       "noting the chunk boundary at %s", c->listing.entries[i].key);
        }
        if (c->listing.is_truncated) {
            const char *next = c->listing.next_token;
            if (!next)
                return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                       "listing is truncated without a continuation token");
            if (!(token = strdup(next)))
                return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        }
        if (r->should_stop(r->opaque)) {
            free(token);
            return ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_INTERNAL, "stopped");
        }
    } while (c->listing.is_truncated);
    return FERRY_OK;
}

static ferry_rc note_bound(const char *key, void *opaque)
{
    worker_copier *c = opaque;
    if (c->nbounds == c->capbounds) {
        size_t cap = c->capbounds ? c->capbounds * 2 : 16;
        char **n = realloc(c->bounds, cap * sizeof(*n));
        if (!n)
            return FERRY_ERR_RETRYABLE;
        c->bounds = n;
        c->capbounds = cap;
    }
    if (!(c->bounds[c->nbounds] = strdup(key)))
        return FERRY_ERR_RETRYABLE;
    c->nbounds++;
    return FERRY_OK;
}

/* Counts the selected source objects so progress has a denominator (one LIST per 1000
 * keys), noting the chunk boundaries on the way in case the dataset is then split. */
static ferry_rc count_objects(run *r, ferry_error *err)
{
    worker_copier *c = r->c;
    ferry_rc rc;

    clear_bounds(c);
    rc = walk_selected(r, c->bound_every, c->bound_every ? note_bound : NULL, c,
                       &r->prog->objects_total, err);
    if (rc == FERRY_OK && c->bound_every && !(c->bounds_event = strdup(r->ev->event_id)))
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    if (rc != FERRY_OK) {
        clear_bounds(c);
        r->prog->objects_total = -1;
    }
    return rc;
}

static void run_init(run *r, worker_copier *c, const ferry_onboard *ev,
                     worker_copy_progress *prog, int (*should_stop)(void *), void *opaque)
{
    memset(r, 0, sizeof(*r));
    r->c = c;
    r->ev = ev;
    r->prog = prog;
    r->should_stop = should_stop;
    r->opaque = opaque;
    r->lctx.dataset = ev->dataset;
    r->lctx.event_id = ev->event_id;
    r->last_checkpoint_ms = ferry_mono_ms();
}

ferry_rc worker_copy_prepare(worker_copier *c, const ferry_onboard *ev, int count,
                             worker_copy_progress *prog, int (*should_stop)(void *),
                             void *opaque, ferry_error *err)
{
    run r;
    ferry_rc rc;

    run_init(&r, c, ev, prog, should_stop, opaque);
    if ((rc = ferry_onboard_parse_uris(ev, &r.src, &r.dst, err)) != FERRY_OK)
        return rc;
    if ((rc = validate(&r, err)) != FERRY_OK)
        return rc;
    if (count && prog->objects_total < 0) {
        if ((rc = count_objects(&r, err)) != FERRY_OK)
            return rc;
        ferry_info(&r.lctx, "%lld objects to migrate", (long long)prog->objects_total);
    }
    return FERRY_OK;
}

ferry_rc worker_copy_boundaries(worker_copier *c, const ferry_onboard *ev, int64_t every,
                                ferry_rc (*cb)(const char *key, void *opaque), void *opaque,
                                int (*should_stop)(void *), void *stop_opaque,
                                ferry_error *err)
{
    worker_copy_progress prog = {0};
    int64_t total;
    run r;
    ferry_rc rc;

    /* The counting pass of this very event already saw them. */
    if (c->bounds_event && every == c->bound_every && !strcmp(c->bounds_event, ev->event_id)) {
        for (size_t i = 0; i < c->nbounds; i++)
            if ((rc = cb(c->bounds[i], opaque)) != FERRY_OK)
                return ferry_error_set(err, rc, FERRY_EC_REDIS, "recording chunk boundary %zu", i);
        return FERRY_OK;
    }
    run_init(&r, c, ev, &prog, should_stop, stop_opaque);
    if ((rc = ferry_onboard_parse_uris(ev, &r.src, &r.dst, err)) != FERRY_OK)
        return rc;
    return walk_selected(&r, every, cb, opaque, &total, err);
}

/* A chunk covers (chunk_start_after, chunk_end_key]: cut the page at the end key. S3
 * lists keys in UTF-8 byte order, which is strcmp's order. */
static void clip_to_range(worker_copier *c, const ferry_onboard *ev)
{
    size_t k = 0;
    if (!ev->chunk_end_key)
        return;
    while (k < c->listing.count && strcmp(c->listing.entries[k].key, ev->chunk_end_key) <= 0)
        k++;
    if (k < c->listing.count) {
        c->listing.count = k;
        c->listing.is_truncated = 0;
    }
}

ferry_rc worker_copy_dataset(worker_copier *c, ferry_redis *redis, const ferry_lease *lease,
                             const ferry_onboard *ev, int resumed, worker_copy_progress *prog,
                             int (*should_stop)(void *), void *opaque, ferry_error *err)
{
    run r;
    char *token = NULL;
    ferry_rc rc;
    int first = 1;
    /* After a resume, objects past the checkpoint may already have been copied before
     * the previous owner stopped: check the first page instead of copying it blindly. */
    int check = resumed && prog->checkpoint != NULL;
    /* A chunk starts after its lower bound; its checkpoint is always inside the range. */
    const char *start = prog->checkpoint ? prog->checkpoint : ev->chunk_start_after;

    run_init(&r, c, ev, prog, should_stop, opaque);
    r.redis = redis;
    r.lease = lease;
    if ((rc = ferry_onboard_parse_uris(ev, &r.src, &r.dst, err)) != FERRY_OK)
        return rc;
    if (redis && lease && ev->chunk_count == 0)
        sweep_orphans(&r);

    do {
        const char *start_after = first ? start : NULL;
        rc = list_source(&r, start_after, token, c->page_size, err);
        free(token);
        token = NULL;
        if (rc != FERRY_OK) {
            ferry_error_prefix(err, "listing %s", ev->source_uri);
            return rc;
        }
        /* The checkpoint is only sound if keys come in strictly increasing order, after
         * where we asked to start: never trust a server on that. */
        for (size_t i = 0; i < c->listing.count; i++) {
            const char *prev = i ? c->listing.entries[i - 1].key : start_after;
            if (prev && strcmp(c->listing.entries[i].key, prev) <= 0) {
                free(token);
                return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                       "listing %s is not in key order (%s after %s)",
                                       ev->source_uri, c->listing.entries[i].key, prev);
            }
        }
        clip_to_range(c, ev);
        if (c->listing.is_truncated) {            if (!c->listing.next_token)
                return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                       "listing is truncated without a continuation token");
            if (!(token = strdup(c->listing.next_token)))
                return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                       "out of memory");
        }
        rc = copy_page(&r, check || ev->overwrite == FERRY_OVERWRITE_NEVER, err);
        if (rc == FERRY_ERR_CANCELLED && !strcmp(err->cls, FERRY_EC_INTERNAL) &&
            !should_stop(opaque))
            rc = FERRY_OK; /* should not happen: every item settled */
        if (rc != FERRY_OK) {
            free(token);
            if (rc == FERRY_ERR_CANCELLED && strcmp(err->cls, FERRY_EC_FENCED) != 0)
                ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_INTERNAL,
                                "stopped at an object boundary");
            return rc;
        }
        first = 0;
        check = 0;
        ferry_debug(&r.lctx, "page done: %lld/%lld objects", (long long)prog->objects_done,
                    (long long)prog->objects_total);
    } while (c->listing.is_truncated);
    if (prog->objects_total >= 0 && prog->objects_done != prog->objects_total)
        ferry_info(&r.lctx, "source changed during the migration: %lld objects copied, %lld "
                            "counted at the start",
                   (long long)prog->objects_done, (long long)prog->objects_total);
    return FERRY_OK;
}
