#include "worker_copy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry_conf.h"
#include "ferry_creds.h"
#include "ferry_limiter.h"
#include "ferry_log.h"
#include "ferry_mpu.h"
#include "ferry_objstore.h"
#include "ferry_util.h"
#include "ferry_validate.h"
#include "worker_copy_internal.h"
#include "worker_health.h"
#include "worker_metrics.h"

static void clear_bounds(worker_copier *c)
{
    for (size_t i = 0; i < c->nbounds; i++)
        free(c->bounds[i]);
    c->nbounds = 0;
    free(c->bounds_event);
    c->bounds_event = NULL;
    c->inventory_plan = 0; /* the plan is these bounds */
}

/* A whole dataset's copy begins with the sweep of orphaned multipart uploads (once). */
static int sweep_due(const run *r)
{
    return r->redis && r->lease && r->ev->chunk_count == 0 && !r->prog->swept;
}

static void forget_uploads(worker_copier *c)
{
    free(c->uploads_for);
    c->uploads_for = NULL;
    ferry_objstore_listing_free(&c->uploads);
    ferry_objstore_listing_init(&c->uploads);
}

static void forget_first_page(worker_copier *c)
{
    free(c->first_for);
    free(c->first_from);
    c->first_for = c->first_from = NULL;
}

/* listing holds the first page of event_id after start_after. */
static int have_first_page(const worker_copier *c, const char *event_id,
                           const char *start_after)
{
    if (!c->first_for || strcmp(c->first_for, event_id) != 0)
        return 0;
    if (!c->first_from || !start_after)
        return !c->first_from && !start_after;
    return !strcmp(c->first_from, start_after);
}

/* One store per endpoint. Credentials are copied by ferry_objstore_new and wiped here. */
static ferry_objstore *open_store(const ferry_conf *conf, int target, ferry_limiters *limiters,
                                  ferry_limiter **lim_out, char *errstr, size_t errstr_size)
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
    oc.endpoint = target ? ferry_conf_str(conf, "s3.target.endpoint")
                         : ferry_conf_str(conf, "s3.endpoint");
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
    /* Connections up to the ceiling; how many are used is the endpoint's limiter's call. */
    if (limiters && !(oc.limiter = *lim_out = ferry_limiters_get(limiters, oc.endpoint))) {
        ferry_s3_creds_wipe(&creds);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    oc.multipart_threshold = (uint64_t)ferry_conf_int(conf, "copy.multipart_threshold_mb")
                             << 20;
    oc.multipart_part_size = (uint64_t)ferry_conf_int(conf, "copy.multipart_part_size_mb")
                             << 20;
    oc.stream_checksums = ferry_conf_bool(conf, "copy.stream_checksums");
    os = ferry_objstore_new(&oc, &err);
    ferry_s3_creds_wipe(&creds);
    if (!os)
        ferry_error_to_errstr(&err, errstr, errstr_size, "%s endpoint",
                              target ? "target" : "source");
    return os;
}

worker_copier *worker_copier_new(const ferry_conf *conf, ferry_limiters *limiters, char *errstr,
                                 size_t errstr_size)
{
    worker_copier *c = calloc(1, sizeof(*c));

    if (!c) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (!(c->store = open_store(conf, 0, limiters, &c->limiter, errstr, errstr_size)))
        goto fail;
    /* A different target endpoint: objects stream GET -> PUT through this process
     * (server-side copy cannot cross endpoints or accounts). */
    if (ferry_conf_str(conf, "s3.target.endpoint")) {
        if (!(c->dst_store = open_store(conf, 1, limiters, &c->dst_limiter, errstr,
                                        errstr_size)))
            goto fail;
    } else {
        c->dst_store = c->store;
    }
    c->endpoint = ferry_conf_str(conf, "s3.endpoint");
    c->dst_endpoint = ferry_conf_str(conf, "s3.target.endpoint");
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
    if ((c->count_limit = ferry_conf_int(conf, "fanout.min_objects")) > 0)
        c->bound_every = ferry_conf_int(conf, "fanout.chunk_objects");
    c->copy_before_count = ferry_conf_int(conf, "fanout.copy_before_count");
    if (c->copy_before_count > c->count_limit)
        c->copy_before_count = c->count_limit;
    c->checkpoint_interval_ms = ferry_conf_int(conf, "copy.checkpoint_interval_ms");
    c->max_failed = ferry_conf_int(conf, "copy.max_failed_objects");
    c->max_failed_percent = ferry_conf_int(conf, "copy.max_failed_percent");
    c->test_unsettle_key = getenv("FERRY_TEST_UNSETTLE_KEY");
    if (ferry_conf_int(conf, "copy.max_requests_per_second") > 0)
        c->request_interval_us = 1000000 / ferry_conf_int(conf, "copy.max_requests_per_second");
    ferry_objstore_listing_init(&c->listing);
    ferry_objstore_listing_init(&c->ahead);
    ferry_objstore_listing_init(&c->uploads);
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
    free(c->inventory_for);
    ferry_objstore_destroy(c->store);
    ferry_objstore_listing_free(&c->listing);
    ferry_objstore_listing_free(&c->ahead);
    forget_uploads(c);
    free(c->ahead_token);
    free(c->ahead_next);
    free(c->first_for);
    free(c->first_from);
    free(c->ops);
    free(c->items);
    free(c->report);
    free(c->keys);
    free(c);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void ahead_start(worker_copier *c, const run *r);

/* Called before each request starts: the place to stop, and to pace requests when
 * copy.max_requests_per_second asks us to be gentle with a production store. */
static int stop_requested(void *opaque)
{
    run *r = opaque;
    worker_copier *c = r->c;

    if (r->failed || r->should_stop(r->opaque))
        return 1;
    if (!worker_copy__endpoints_up(c)) {
        r->paused = 1;
        return 1;
    }
    /* A batch pumps only the target store: drive the source's LIST prefetch too. */
    if (c->ahead_pending && c->store != c->dst_store)
        ferry_objstore_pump(c->store, 0);
    if (c->ahead_next && r->timing && r->started > 0)
        ahead_start(c, r);
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
void worker_copy__count_copied(const item *it, const ferry_objstore_entry *e)
{
    ferry_counter_inc(worker_metric.objects_copied);
    ferry_counter_add(worker_metric.bytes_copied, e->size);
    if (it->started_us)
        ferry_histogram_observe(worker_metric.copy_duration,
                                (double)(mono_us() - it->started_us) / 1e6);
}

void worker_copy__note_failure(run *r, const ferry_error *e)
{
    if (!r->failed || (e->rc == FERRY_ERR_PERMANENT && r->first_err.rc != FERRY_ERR_PERMANENT))
        r->first_err = *e;
    r->failed = 1;
}

static int finished(item_state s)
{
    return s == ITEM_FILTERED || s == ITEM_SKIPPED || s == ITEM_COPIED ||
           s == ITEM_OBJ_FAILED || s == ITEM_VANISHED;
}

/* Too many objects failed: the dataset itself is broken (e.g. every key 403), so fail
 * it fast, with the objects' class, instead of recording a million failures. */
static void check_threshold(run *r)
{
    worker_copy_progress *p = r->prog;
    int64_t settled = p->objects_done + p->failed + p->vanished;
    ferry_error e;

    if (r->c->max_failed > 0 && p->failed > r->c->max_failed)
        ferry_error_set(&e, FERRY_ERR_PERMANENT, p->last_object_err.cls,
                        "%lld objects failed, more than copy.max_failed_objects=%lld; "
                        "last: %s",
                        (long long)p->failed, (long long)r->c->max_failed,
                        p->last_object_err.msg);
    else if (r->c->max_failed_percent > 0 && settled >= 100 &&
             p->failed * 100 > r->c->max_failed_percent * settled)
        ferry_error_set(&e, FERRY_ERR_PERMANENT, p->last_object_err.cls,
                        "%lld of %lld objects failed, more than copy.max_failed_percent=%lld%%; "
                        "last: %s",
                        (long long)p->failed, (long long)settled,
                        (long long)r->c->max_failed_percent, p->last_object_err.msg);
    else
        return;
    worker_copy__note_failure(r, &e);
}

/* Moves the low-water mark over every finished item, counting them. */
void worker_copy__advance(run *r)
{
    while (r->low < r->n && finished(r->c->items[r->low].state)) {
        const ferry_objstore_entry *e = &r->c->listing.entries[r->low];
        switch (r->c->items[r->low].state) {
        case ITEM_SKIPPED:
        case ITEM_COPIED:
            r->prog->objects_done++;
            r->prog->bytes_done += (int64_t)e->size;
            if (r->c->items[r->low].state == ITEM_COPIED)
                r->prog->copied++;
            else
                r->prog->identical++;
            break;
        case ITEM_OBJ_FAILED:
            r->prog->failed++;
            check_threshold(r);
            break;
        case ITEM_VANISHED: r->prog->vanished++; break;
        default: break;
        }
        r->low++;
    }
}

/* One object failed on its own (scope OBJECT or VANISHED): record why, go on. */
void worker_copy__object_failed(run *r, size_t i, int vanished, const char *cls,
                                const char *msg)
{
    const ferry_objstore_entry *e = &r->c->listing.entries[i];
    item *it = &r->c->items[i];

    it->state = vanished ? ITEM_VANISHED : ITEM_OBJ_FAILED;
    ferry_error_set(&it->why, FERRY_ERR_PERMANENT, cls, "%s", msg);
    if (vanished) {
        ferry_counter_inc(worker_metric.objects_vanished);
        ferry_info(&r->lctx, "%s vanished from the source after it was listed; not copied",
                   e->key);
    } else {
        r->prog->last_object_err = it->why;
        ferry_counter_inc(worker_metric.objects_failed);
        ferry_warn(&r->lctx, "object failed, the others go on: %s: %s: %s", e->key, cls, msg);
    }
}

/* The checkpoint and the report lines of the failed and vanished items it passes, in one
 * atomic write: a key beyond the checkpoint is copied or recorded, never lost. */
ferry_rc worker_copy__write_checkpoint(run *r, ferry_error *err)
{
    ferry_checkpoint cp = {0};
    char methods[160];
    char *key;
    ferry_rc rc;

    if (r->low == 0)
        return FERRY_OK;           /* nothing new in this page */
    if (r->verified & ~r->noted) { /* before the checkpoint that covers those objects */
        worker_copy__verify_text(r->verified & ~r->noted, methods, sizeof(methods));
        if ((rc = ferry_state_note_verify(r->redis, r->lease, methods, err)) != FERRY_OK)
            return rc;
        r->noted |= r->verified;
    }
    key = strdup(r->c->listing.entries[r->low - 1].key);
    if (!key)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    cp.key = key;
    cp.objects_done = r->prog->objects_done;
    cp.bytes_done = r->prog->bytes_done;
    cp.objects_total = r->prog->objects_total;
    cp.total_lower_bound = r->prog->total_lower_bound;
    cp.objects_copied = r->prog->copied;
    cp.objects_identical = r->prog->identical;
    cp.objects_vanished = r->prog->vanished;
    cp.objects_failed = r->prog->failed;
    cp.event_id = r->ev->event_id;
    cp.report = r->c->report;
    for (size_t i = r->reported; i < r->low; i++) {
        const item *it = &r->c->items[i];
        if (it->state != ITEM_OBJ_FAILED && it->state != ITEM_VANISHED)
            continue;
        r->c->report[cp.nreport++] = (ferry_report_entry){r->c->listing.entries[i].key,
                                                          it->state == ITEM_VANISHED
                                                              ? "vanished"
                                                              : "failed",
                                                          it->why.cls, it->why.msg};
    }
    rc = ferry_state_checkpoint(r->redis, r->lease, &cp, err);
    if (rc != FERRY_OK) {
        free(key);
        return rc;
    }
    r->reported = r->low;
    free(r->prog->checkpoint_owned);
    r->prog->checkpoint_owned = key;
    r->prog->checkpoint = key;
    r->last_checkpoint_ms = ferry_mono_ms();
    return FERRY_OK;
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
        ferry_report_entry *report = realloc(c->report, n * sizeof(*report));
        if (!report)
            return -1;
        c->report = report;
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
int worker_copy__selected(const ferry_onboard *ev, const char *rel)
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
    r->reported = 0;
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
        it->state = worker_copy__selected(r->ev, rel) ? ITEM_TODO : ITEM_FILTERED;
        it->started_us = 0;
        memset(&it->mpu, 0, sizeof(it->mpu));
        memset(&it->resume, 0, sizeof(it->resume));
        if (it->state == ITEM_TODO) {
            /* a key the target cannot hold, or one a backend cannot address faithfully */
            char msg[64];
            const char *why = ferry_objstore_key_refused(c->store, e->key);
            if (!why)
                why = ferry_objstore_key_refused(c->dst_store, it->dst_key);
            if (!why && dstlen + rl > FERRY_URI_KEY_MAX) {
                snprintf(msg, sizeof(msg), "the target key would exceed %d bytes",
                         FERRY_URI_KEY_MAX);
                why = msg;
            }
            if (why)
                worker_copy__object_failed(r, i, 0, FERRY_EC_S3_INVALID_KEY, why);
        }
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
        if (type == FERRY_OBJSTORE_OP_HEAD && want != ITEM_TODO)
            op->checksum_mode = 1; /* verifying: ask for the additional checksum */
        if (want == ITEM_VERIFY) { /* the source's side of a verification */
            op->bucket = r->src.bucket;
            op->key = e->key;
        }
        if (type == FERRY_OBJSTORE_OP_COPY) {
            op->src_bucket = r->src.bucket;
            op->src_key = e->key;
            op->src_size = e->size;
            if (worker_copy__etag_comparable(e->etag))
                op->src_if_match = e->etag; /* never copy a newer version than we listed */
            worker_copy__mpu_prepare(r, op, &c->items[i], e);
        }
    }
    r->timing = type == FERRY_OBJSTORE_OP_COPY;
    r->started = 0;
    if (n > 0) /* HEADs and copies act on the target (but the source HEADs of a
                * verification); a TRANSFER drives both stores */
        ferry_objstore_run_batch(want == ITEM_VERIFY ? c->store : c->dst_store, c->ops, n,
                                 &opts);
    r->timing = 0;
    for (size_t i = 0; i < n; i++)
        ferry_mpu_record_clear(&c->items[(size_t)(uintptr_t)c->ops[i].user].mpu);
    if (c->dst_limiter)
        worker_metrics_limiter(c->dst_endpoint, c->dst_limiter);
    else if (c->limiter)
        worker_metrics_limiter(c->endpoint, c->limiter);
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
    while (worker_copy__again(r, r->c->src_brk, &rc, &tries, err));
    return rc;
}

/* Items held back or failed while an endpoint went down: wait for it, checkpointing first
 * what finished. FERRY_OK to go on with the page (the outage charged no retries). */
static ferry_rc pause_point(run *r, ferry_error *err)
{
    ferry_error cerr;
    ferry_rc rc;

    r->paused = 0;
    if (worker_copy__write_checkpoint(r, &cerr) == FERRY_ERR_CANCELLED) {
        *err = cerr; /* fenced */
        return FERRY_ERR_CANCELLED;
    }
    if ((rc = worker_copy__wait_endpoints(r, err)) != FERRY_OK)
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
        run_ops(r, ITEM_TODO, FERRY_OBJSTORE_OP_HEAD, worker_copy__head_done);
        if (r->failed || !r->paused || r->should_stop(r->opaque))
            break;
        if ((rc = pause_point(r, err)) != FERRY_OK)
            return rc;
    }
    worker_copy__advance(r);
    for (int round = 0; !r->failed; round++) {
        /* Every item must settle: an item left TODO (its request never completed) while
         * nothing asked us to stop is tried again like a failed request, and a page that
         * still does not settle fails the attempt -- it is never taken as done. */
        int unsettled = 0;
        r->retry_pending = 0;
        run_ops(r, ITEM_TODO, FERRY_OBJSTORE_OP_COPY, worker_copy__copy_done);
        if (!r->failed)
            run_ops(r, ITEM_VERIFY, FERRY_OBJSTORE_OP_HEAD, worker_copy__head_src_done);
        if (!r->failed)
            run_ops(r, ITEM_VERIFY_DST, FERRY_OBJSTORE_OP_HEAD, worker_copy__head_done);
        worker_copy__advance(r);
        if (r->failed || r->should_stop(r->opaque))
            break;
        if (r->paused || !worker_copy__endpoints_up(r->c)) {
            rc = pause_point(r, err);
            if (rc == FERRY_ERR_CANCELLED && strcmp(err->cls, FERRY_EC_FENCED) != 0)
                break; /* stopping: checkpointed, the rest stays TODO */
            if (rc != FERRY_OK) {
                worker_copy__note_failure(r, err);
                break;
            }
            round = -1;
            continue;
        }
        for (size_t i = r->low; i < r->n; i++)
            unsettled += r->c->items[i].state == ITEM_TODO;
        if (unsettled && !r->retry_pending) {
            r->retry_pending = 1;
            ferry_error_set(&r->retry_err, FERRY_ERR_RETRYABLE, FERRY_EC_INCOMPLETE,
                            "%d objects of the page after %s never finished their copy",
                            unsettled, r->c->listing.entries[r->low].key);
            ferry_warn(&r->lctx, "%s; trying them again", r->retry_err.msg);
        }
        if (!r->retry_pending)
            break;
        if (round >= r->c->request_retries) {
            ferry_error_prefix(&r->retry_err, "after %d tries", round + 1);
            worker_copy__note_failure(r, &r->retry_err);
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
    rc = worker_copy__write_checkpoint(r, err);
    if (r->failed) {
        *err = r->first_err;
        return err->rc;
    }
    if (rc != FERRY_OK)
        return rc;
    if (r->low < r->n && r->should_stop(r->opaque))
        return ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_INTERNAL, "stopped");
    if (r->low < r->n) /* cannot happen after the loop above; never let it pass as done */
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INCOMPLETE,
                               "%zu objects of the page after %s did not settle", r->n - r->low,
                               r->c->listing.entries[r->low].key);
    return FERRY_OK;
}

ferry_rc worker_copy_put_object(worker_copier *c, const char *bucket, const char *key,
                                const void *data, size_t len, const char *content_type,
                                ferry_error *err)
{
    return ferry_objstore_put(c->dst_store, bucket, key, data, len, content_type, NULL, err);
}

/* A request already made once (by ferry_objstore_exec_all): its result, or, while
 * worker_copy__again() says so (an endpoint failure, an endpoint that is down), the result
 * of the same request made again on store os. */
static ferry_rc retried(run *r, ferry_objstore *os, ferry_breaker *b, ferry_objstore_op *op,
                        ferry_error *err)
{
    int tries = 0;
    ferry_rc rc;

    for (;;) {
        if ((rc = op->rc) != FERRY_OK)
            *err = op->err;
        if (!worker_copy__again(r, b, &rc, &tries, err))
            return rc;
        ferry_objstore_exec(os, op);
    }
}

/* Before any byte moves: the source is listable, the target bucket exists and takes
 * writes, the locations do not overlap. Which check failed is in the message. */
static ferry_rc validate(run *r, const char *start, ferry_error *err)
{
    worker_copier *c = r->c;
    char probe[FERRY_URI_KEY_MAX + 64];
    ferry_objstore_op list, head, put, uploads;
    ferry_objstore *stores[4] = {c->store, c->dst_store, c->dst_store, c->dst_store};
    ferry_objstore_op *ops[4] = {&list, &head, &put, &uploads};
    int sweep = sweep_due(r);
    ferry_rc rc;
    int tries = 0;

    /* A target inside the source would feed the copy its own output. */
    if (c->dst_store == c->store && ferry_uri_overlaps(&r->src, &r->dst))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_VALIDATION,
                               "validation: source %s and target %s overlap on the same "
                               "endpoint",
                               r->ev->source_uri, r->ev->target_uri);
    forget_first_page(c);
    forget_uploads(c);
    snprintf(probe, sizeof(probe), "%s.ferry-write-probe-%s", r->dst.prefix, r->ev->event_id);
    /* The first page, the target bucket, the write probe and the sweep's first page are
     * asked for at once: on a store tens of milliseconds away that is one round trip
     * before the copy, not four. A failed check is then retried on its own, in the order
     * of the checks, so the message names the first check that failed (an endpoint that
     * is down is waited for here too: see worker_copy__again()). */
    ferry_objstore_op_init(&list, FERRY_OBJSTORE_OP_LIST);
    list.bucket = r->src.bucket;
    list.prefix = r->src.prefix;
    list.start_after = start;
    list.max_keys = c->page_size;
    list.listing = &c->listing;
    ferry_objstore_op_init(&head, FERRY_OBJSTORE_OP_HEAD_BUCKET);
    head.bucket = r->dst.bucket;
    ferry_objstore_op_init(&put, FERRY_OBJSTORE_OP_PUT);
    put.bucket = r->dst.bucket;
    put.key = probe;
    put.put_data = "";
    if (sweep)
        worker_copy__sweep_first(r, &uploads, &c->uploads);
    ferry_objstore_exec_all(stores, ops, sweep ? 4 : 3);

    if ((rc = retried(r, c->store, c->src_brk, &list, err)) != FERRY_OK) {
        ferry_error_prefix(err, "validation: source %s is not listable", r->ev->source_uri);
        goto early;
    }
    if (!(c->first_for = strdup(r->ev->event_id)) ||
        (start && !(c->first_from = strdup(start)))) {
        forget_first_page(c);
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        goto early;
    }
    if ((rc = retried(r, c->dst_store, c->dst_brk, &head, err)) != FERRY_OK) {
        ferry_error_prefix(err, "validation: target bucket %s", r->dst.bucket);
        goto early;
    }
    if ((rc = retried(r, c->dst_store, c->dst_brk, &put, err)) != FERRY_OK) {
        ferry_error_prefix(err, "validation: target %s does not accept writes",
                           r->ev->target_uri);
        return rc;
    }
    do
        rc = ferry_objstore_delete(c->dst_store, r->dst.bucket, probe, err);
    while (worker_copy__again(r, c->dst_brk, &rc, &tries, err));
    if (rc != FERRY_OK) {
        ferry_error_prefix(err, "validation: deleting the write probe %s", probe);
        return rc;
    }
    /* Held for the copy (without memory, or after a failure, the sweep asks again) */
    if (sweep && uploads.rc == FERRY_OK)
        c->uploads_for = strdup(r->ev->event_id);
    return FERRY_OK;

early: /* an earlier check failed, but the probe went in: it must not stay behind */
    if (put.rc == FERRY_OK) {
        ferry_error derr;
        if (ferry_objstore_delete(c->dst_store, r->dst.bucket, probe, &derr) != FERRY_OK)
            ferry_warn(&r->lctx, "deleting the write probe %s: %s", probe, derr.msg);
    }
    return rc;
}

/* Lists the source after start_after (NULL: from the first key), counting the selected
 * objects into *total and calling cb (if any) with every `every`-th selected key. With
 * limit > 0, stops after the page on which *total passed it, *more set if the listing had
 * not ended. Holds one page at a time. */
static ferry_rc walk_selected(run *r, const char *start_after, int64_t every, int64_t limit,
                              worker_copy_bound_cb cb, void *opaque, int64_t *total, int *more,
                              ferry_error *err)
{
    worker_copier *c = r->c;
    char *token = NULL;
    size_t srclen = strlen(r->src.prefix);
    ferry_rc rc;

    /* The validation's page is the walk's first (and for a small dataset its only) one;
     * then the listing still holds it for the copy. */
    int reuse = have_first_page(c, r->ev->event_id, start_after);

    *total = 0;
    if (more)
        *more = 0;
    do {
        if (reuse) {
            reuse = 0;
            rc = FERRY_OK;
        } else {
            forget_first_page(c);
            rc = list_source(r, token ? NULL : start_after, token, 1000, err);
        }
        free(token);
        token = NULL;
        if (rc != FERRY_OK)
            return rc;
        for (size_t i = 0; i < c->listing.count; i++) {
            if (!worker_copy__selected(r->ev, c->listing.entries[i].key + srclen))
                continue;
            if (++*total % (every > 0 ? every : 1) == 0 && cb &&
                (rc = cb(c->listing.entries[i].key, 0, opaque)) != FERRY_OK)
                return ferry_error_set(err, rc, FERRY_EC_INTERNAL,
                                       "noting the chunk boundary at %s",
                                       c->listing.entries[i].key);
        }
        if (c->listing.is_truncated) {
            const char *next = c->listing.next_token;
            if (!next)
                return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                       "listing is truncated without a continuation token");
            if (limit > 0 && *total > limit) {
                if (more)
                    *more = 1;
                return FERRY_OK;
            }
            if (!(token = strdup(next)))
                return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                       "out of memory");
        }
        if (r->should_stop(r->opaque)) {
            free(token);
            return ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_INTERNAL, "stopped");
        }
    } while (c->listing.is_truncated);
    return FERRY_OK;
}

static ferry_rc note_bound(const char *key, int more, void *opaque)
{
    worker_copier *c = opaque;
    (void)more;
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
 * keys), noting the chunk boundaries on the way in case the dataset is then split. Stops
 * once the count passes fanout.min_objects: the dataset is then split, and the splitter
 * goes on listing from the last boundary instead of counting the rest first. */
static ferry_rc count_objects(run *r, ferry_error *err)
{
    worker_copier *c = r->c;
    int more = 0;
    ferry_rc rc;

    clear_bounds(c);
    rc = walk_selected(r, NULL, c->bound_every, c->count_limit,
                       c->bound_every ? note_bound : NULL, c, &r->prog->objects_total, &more,
                       err);
    if (rc == FERRY_OK && more)
        r->prog->total_lower_bound = 1;
    if (rc == FERRY_OK && c->bound_every && !(c->bounds_event = strdup(r->ev->event_id)))
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    if (rc != FERRY_OK) {
        clear_bounds(c);
        r->prog->objects_total = -1;
    }
    return rc;
}

/* After a shortcut to the split (the inventory, the common prefixes) failed with e having
 * recorded nb bounds: 1 if the caller goes on the usual way (logged at warn), 0 if the
 * attempt ends with e -- stopping, an endpoint down past its limit (the usual way would
 * wait as long again), or a bound already recorded (the split resumes from it). A
 * shortcut never fails a migration on its own. */
static int shortcut_falls_back(run *r, ferry_rc rc, int64_t nb, const ferry_error *e,
                               const char *what, const char *instead)
{
    if (rc == FERRY_OK || rc == FERRY_ERR_CANCELLED || nb > 0 ||
        !strcmp(e->cls, FERRY_EC_S3_OUTAGE))
        return 0;
    ferry_warn(&r->lctx, "%s (%s: %s); %s", what, e->cls, e->msg, instead);
    return 1;
}

/* A dataset with an S3 Inventory is not counted by listing: if the inventory lists more
 * than fanout.min_objects of its objects, their count decides the split and the bounds
 * cut from them are the plan (worker_copy_boundaries hands them over). An unusable
 * inventory, or one listing too few (stale, or the dataset is small), leaves the decision
 * to the count. Only stopping is an error. */
static ferry_rc plan_from_inventory(run *r, ferry_error *err)
{
    worker_copier *c = r->c;
    int64_t nb = 0, matched = 0;
    ferry_error ierr;
    ferry_rc rc;

    clear_bounds(c);
    free(c->inventory_for);
    c->inventory_plan = 0;
    if (!(c->inventory_for = strdup(r->ev->event_id)))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    rc = worker_copy__inventory_bounds(r, r->ev->source_inventory, NULL, c->bound_every,
                                       note_bound, c, &nb, &matched, &ierr);
    if (rc == FERRY_OK && matched > c->count_limit &&
        (c->bounds_event = strdup(r->ev->event_id))) {
        c->inventory_plan = 1;
        r->prog->objects_total = matched; /* for the decision: the chunks count exactly */
        r->prog->total_lower_bound = 1;
        ferry_info(&r->lctx,
                   "the inventory lists %lld objects of the dataset: enough to split it",
                   (long long)matched);
        return FERRY_OK;
    }
    clear_bounds(c);
    if (rc != FERRY_OK) {
        if (shortcut_falls_back(r, rc, 0, &ierr, "inventory unusable", "counting by listing"))
            return FERRY_OK;
        *err = ierr;
        return rc;
    }
    ferry_info(&r->lctx,
               "the inventory lists %lld objects of the dataset, not more than "
               "fanout.min_objects: counting by listing",
               (long long)matched);
    return FERRY_OK;
}

/* The count that decides the split, logged. */
static ferry_rc count_and_log(run *r, ferry_error *err)
{
    ferry_rc rc;

    if ((rc = count_objects(r, err)) != FERRY_OK)
        return rc;
    if (r->prog->total_lower_bound)
        ferry_info(&r->lctx, "at least %lld objects to migrate: enough to split it",
                   (long long)r->prog->objects_total);
    else
        ferry_info(&r->lctx, "%lld objects to migrate", (long long)r->prog->objects_total);
    return FERRY_OK;
}

/* A run over ev for prog. redis and lease (may be NULL) record the wait for an endpoint
 * that is down as the migration's last error, and checkpoints. */
static ferry_rc run_open(run *r, worker_copier *c, ferry_redis *redis, const ferry_lease *lease,
                         const ferry_onboard *ev, worker_copy_progress *prog,
                         int (*should_stop)(void *), void *opaque, ferry_error *err)
{
    memset(r, 0, sizeof(*r));
    r->c = c;
    r->redis = redis;
    r->lease = lease;
    r->ev = ev;
    r->prog = prog;
    r->should_stop = should_stop;
    r->opaque = opaque;
    r->lctx.dataset = ev->dataset;
    r->lctx.event_id = ev->event_id;
    r->last_checkpoint_ms = ferry_mono_ms();
    return ferry_onboard_parse_uris(ev, &r->src, &r->dst, err);
}

ferry_rc worker_copy_prepare(worker_copier *c, ferry_redis *redis, const ferry_lease *lease,
                             const ferry_onboard *ev, int count, worker_copy_progress *prog,
                             int (*should_stop)(void *), void *opaque, ferry_error *err)
{
    run r;
    ferry_rc rc;

    if ((rc = run_open(&r, c, redis, lease, ev, prog, should_stop, opaque, err)) != FERRY_OK)
        return rc;
    if ((rc = validate(&r, prog->checkpoint ? prog->checkpoint : ev->chunk_start_after, err)) !=
        FERRY_OK)
        return rc;
    if (count && prog->objects_total < 0 && c->bound_every && ev->chunk_count == 0 &&
        ev->source_inventory && *ev->source_inventory) {
        if ((rc = plan_from_inventory(&r, err)) != FERRY_OK)
            return rc;
        if (c->inventory_plan)
            return FERRY_OK;
    }
    /* The count decides the fan-out and gives progress a denominator, but a dataset of
     * more than one page is not listed twice for it (one page is counted for free: it is
     * already here): the copy's listing counts as it goes, and the total is known when it
     * ends. Without fan-out that is always so; with it, for a fresh dataset -- most are
     * smaller than fanout.min_objects -- until the copy has listed more than
     * copy_before_count keys and stops for the count (count_due). */
    if (count && c->listing.is_truncated &&
        (!c->bound_every || (prog->objects_total < 0 && c->copy_before_count > 0 &&
                             !prog->checkpoint && ev->chunk_count == 0))) {
        count = 0;
        prog->total_lower_bound = 1;
        if (c->bound_every)
            prog->count_after = c->copy_before_count;
    }
    if (count && prog->objects_total < 0)
        return count_and_log(&r, err);
    return FERRY_OK;
}

ferry_rc worker_copy_count(worker_copier *c, ferry_redis *redis, const ferry_lease *lease,
                           const ferry_onboard *ev, worker_copy_progress *prog,
                           int (*should_stop)(void *), void *opaque, ferry_error *err)
{
    run r;
    ferry_rc rc;

    prog->count_due = 0;
    prog->count_after = 0;
    prog->total_lower_bound = 0;
    if ((rc = run_open(&r, c, redis, lease, ev, prog, should_stop, opaque, err)) != FERRY_OK)
        return rc;
    ferry_info(&r.lctx, "more than %lld objects listed: counting the rest to decide the split",
               (long long)c->copy_before_count);
    return count_and_log(&r, err);
}

ferry_rc worker_copy_boundaries(worker_copier *c, ferry_redis *redis, const ferry_lease *lease,
                                const ferry_onboard *ev, const char *start_after, int64_t every,
                                const char *delimiter, worker_copy_bound_cb cb, void *opaque,
                                int (*should_stop)(void *), void *stop_opaque, int64_t *walked,
                                ferry_error *err)
{
    worker_copy_progress prog = {0};
    int64_t after = 0, cached = 0;
    int inventory_refused;
    run r;
    ferry_rc rc;

    *walked = 0;
    if ((rc = run_open(&r, c, redis, lease, ev, &prog, should_stop, stop_opaque, err)) !=
        FERRY_OK)
        return rc;
    /* The counting pass of this very event already saw the first ones: hand them over and
     * list on from the last (at most `every` keys are listed again). */
    /* read before the count and found unusable or stale: not again */
    inventory_refused = c->inventory_for && !strcmp(c->inventory_for, ev->event_id) &&
                        !c->inventory_plan;
    if (!start_after && c->bounds_event && every == c->bound_every &&
        !strcmp(c->bounds_event, ev->event_id) && (c->nbounds > 0 || c->inventory_plan)) {
        for (size_t i = 0; i < c->nbounds; i++)
            if ((rc = cb(c->bounds[i], i + 1 < c->nbounds, opaque)) != FERRY_OK)
                return ferry_error_set(err, rc, FERRY_EC_REDIS, "recording chunk boundary %zu",
                                       i);
        if (c->inventory_plan) {
            *walked = -1; /* the whole plan, from the inventory */
            return FERRY_OK;
        }
        cached = (int64_t)c->nbounds;
        start_after = c->bounds[c->nbounds - 1];
    }
    if (ev->source_inventory && *ev->source_inventory && !inventory_refused) {
        int64_t nb = 0, matched = 0;
        ferry_error ierr;
        rc = worker_copy__inventory_bounds(&r, ev->source_inventory, start_after, every, cb,
                                           opaque, &nb, &matched, &ierr);
        if (rc == FERRY_OK && matched > 0) {
            *walked = -1; /* the store was not listed: the count comes with the chunks */
            return FERRY_OK;
        }
        if (rc != FERRY_OK) {
            if (!shortcut_falls_back(&r, rc, nb, &ierr, "inventory unusable",
                                     "splitting by listing")) {
                *err = ierr;
                return rc;
            }
        } else {
            ferry_warn(&r.lctx,
                       "inventory %s lists none of the dataset's objects%s; "
                       "splitting by listing",
                       ev->source_inventory, start_after ? " after the last chunk bound" : "");
        }
    }
    if (delimiter && *delimiter) {
        int64_t nb = 0;
        ferry_error perr;
        rc = worker_copy__prefix_bounds(&r, delimiter, start_after, cb, opaque, &nb, &perr);
        /* e.g. a store whose delimiter listing cannot be trusted (libs3) */
        if (rc != FERRY_OK &&
            !shortcut_falls_back(&r, rc, nb, &perr, "split by common prefixes failed",
                                 "walking the keys")) {
            *err = perr;
            return rc;
        }
        if (nb > 0) {
            *walked = -1; /* the keys were not walked: their number is not known yet */
            return FERRY_OK;
        }
    }
    rc = walk_selected(&r, start_after, every, 0, cb, opaque, &after, NULL, err);
    *walked = cached * every + after;
    return rc;
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

/* ---- the LIST prefetch ---------------------------------------------------------- */

static void ahead_done(ferry_objstore_op *op, void *opaque)
{
    worker_copier *c = opaque;
    (void)op;
    c->ahead_pending = 0;
}

/* Requests the page after c->ahead_next into c->ahead; it completes while the current
 * page's copies are pumped (same store) or from stop_requested (another store). */
static void ahead_start(worker_copier *c, const run *r)
{
    ferry_objstore_op *op = &c->ahead_op;
    char *token = c->ahead_next;

    c->ahead_next = NULL;
    free(c->ahead_token);
    c->ahead_token = token;
    ferry_objstore_op_init(op, FERRY_OBJSTORE_OP_LIST);
    op->bucket = r->src.bucket;
    op->prefix = r->src.prefix;
    op->continuation_token = token;
    op->max_keys = c->page_size;
    op->listing = &c->ahead;
    op->done = ahead_done;
    op->done_opaque = c;
    c->ahead_pending = 1;
    ferry_objstore_submit(c->store, op);
}

/* Waits for the prefetch (it may be running: its op and buffers are ours until done). */
static void ahead_wait(worker_copier *c)
{
    while (c->ahead_pending)
        ferry_objstore_pump(c->store, 1000);
}

/* The prefetched page becomes the current one. *prev_last receives the previous page's
 * last key (the token; the caller frees it) for the order check. */
static ferry_rc ahead_take(worker_copier *c, run *r, char **prev_last, ferry_error *err)
{
    ferry_objstore_listing tmp;
    ferry_rc rc;

    if (c->ahead_next) /* the page needed no copy: nothing went out yet */
        ahead_start(c, r);
    ahead_wait(c);
    *prev_last = c->ahead_token;
    c->ahead_token = NULL;
    worker_health_note(c->src_brk, c->ahead_op.rc, &c->ahead_op.err, c->ahead_op.s3_code,
                       &r->lctx);
    if (c->ahead_op.rc == FERRY_OK) {
        tmp = c->listing;
        c->listing = c->ahead;
        c->ahead = tmp;
        return FERRY_OK;
    }
    /* A failed prefetch is asked again here, straight into the current listing (the page
     * before is finished): a throttled or dropped LIST is retried like a copy, and an
     * endpoint that went down is waited for (list_source), before it fails the attempt
     * (which would redo the page from the checkpoint). */
    rc = c->ahead_op.rc;
    *err = c->ahead_op.err;
    for (int round = 0; rc == FERRY_ERR_RETRYABLE && round < c->request_retries; round++) {
        ferry_counter_inc(worker_metric.retries);
        ferry_sleep_ms(ferry_backoff_ms(round, 100, 5000));
        rc = list_source(r, NULL, *prev_last, c->page_size, err);
    }
    return rc;
}

/* Lists and copies the selected keys after `start` page by page, the next page listed
 * while the current one is copied. check: HEAD the first page's objects at the target
 * before copying them; check_all: every page's. */
static ferry_rc copy_pages(run *r, const char *start, int check, int check_all,
                           ferry_error *err)
{
    worker_copier *c = r->c;
    const ferry_onboard *ev = r->ev;
    worker_copy_progress *prog = r->prog;
    char *prev_last = NULL; /* the previous page's last key */
    /* accounted for before the start + selected keys listed since: the running total */
    int64_t listed = prog->objects_done + prog->failed + prog->vanished;
    ferry_rc rc;

    if (have_first_page(c, ev->event_id, start))
        rc = FERRY_OK; /* listed by the validation */
    else
        rc = list_source(r, start, NULL, c->page_size, err);
    forget_first_page(c);
    for (;;) {
        int more;
        if (rc != FERRY_OK) {
            ferry_error_prefix(err, "listing %s", ev->source_uri);
            goto out;
        }
        /* The checkpoint is only sound if keys come in strictly increasing order, after
         * where we asked to start: never trust a server on that. */
        for (size_t i = 0; i < c->listing.count; i++) {
            const char *prev = i           ? c->listing.entries[i - 1].key
                               : prev_last ? prev_last
                                           : start;
            if (prev && strcmp(c->listing.entries[i].key, prev) <= 0) {
                rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                     "listing %s is not in key order (%s after %s)",
                                     ev->source_uri, c->listing.entries[i].key, prev);
                goto out;
            }
        }
        free(prev_last);
        prev_last = NULL;
        clip_to_range(c, ev);
        more = c->listing.is_truncated;
        if (prog->total_lower_bound) {
            size_t srclen = strlen(r->src.prefix);
            for (size_t i = 0; i < c->listing.count; i++)
                listed += worker_copy__selected(ev, c->listing.entries[i].key + srclen);
            if (listed > prog->objects_total)
                prog->objects_total = listed;
            if (!more) { /* the listing is complete: the total is exact */
                prog->objects_total = listed;
                prog->total_lower_bound = 0;
            }
        }
        if (more && prog->count_after > 0 && listed > prog->count_after) {
            more = 0; /* this page, then the count decides (worker_copy_count) */
            prog->count_due = 1;
        }
        if (more) {
            char *token;
            if (!c->listing.next_token) {
                rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                     "listing is truncated without a continuation token");
                goto out;
            }
            if (!(token = strdup(c->listing.next_token))) {
                rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                     "out of memory");
                goto out;
            }
            free(c->ahead_next);
            c->ahead_next = token; /* sent after the page's first copy */
        }
        rc = copy_page(r, check || check_all || ev->overwrite == FERRY_OVERWRITE_NEVER, err);
        if (rc != FERRY_OK) {
            if (rc == FERRY_ERR_CANCELLED && strcmp(err->cls, FERRY_EC_FENCED) != 0)
                ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_INTERNAL,
                                "stopped at an object boundary");
            goto out;
        }
        check = 0;
        ferry_debug(&r->lctx, "page done: %lld/%lld objects", (long long)prog->objects_done,
                    (long long)prog->objects_total);
        if (!more)
            break;
        rc = ahead_take(c, r, &prev_last, err);
    }
out:
    ahead_wait(c); /* a prefetch still running on an error path */
    free(c->ahead_token);
    c->ahead_token = NULL;
    free(c->ahead_next);
    c->ahead_next = NULL;
    free(prev_last);
    return rc;
}

/* Objects accounted for: at the target (copied or identical), failed, or vanished. */
static int64_t accounted(const worker_copy_progress *p)
{
    return p->objects_done + p->failed + p->vanished;
}

ferry_rc worker_copy_dataset(worker_copier *c, ferry_redis *redis, const ferry_lease *lease,
                             const ferry_onboard *ev, int resumed, worker_copy_progress *prog,
                             int (*should_stop)(void *), void *opaque, ferry_error *err)
{
    run r;
    ferry_rc rc;
    int64_t recount = 0;
    /* After a resume, objects past the checkpoint may already have been copied before
     * the previous owner stopped: check the first page instead of copying it blindly. */
    int check = resumed && prog->checkpoint != NULL;
    /* A chunk starts after its lower bound; its checkpoint is always inside the range. */
    const char *start = prog->checkpoint ? prog->checkpoint : ev->chunk_start_after;

    if ((rc = run_open(&r, c, redis, lease, ev, prog, should_stop, opaque, err)) != FERRY_OK)
        return rc;
    if (sweep_due(&r)) {
        int held = c->uploads_for && !strcmp(c->uploads_for, ev->event_id);
        worker_copy__sweep_orphans(&r, held ? &c->uploads : NULL);
        prog->swept = 1;
    }
    forget_uploads(c);
    if ((rc = copy_pages(&r, start, check, prog->recheck, err)) != FERRY_OK)
        return rc;
    if (prog->count_due || prog->objects_total < 0 || accounted(prog) == prog->objects_total)
        return FERRY_OK;
    /* The counts disagree (issue 13.4): never a success without a look. A fresh count
     * that agrees means the source changed during the migration (objects deleted before
     * they were listed, or added); otherwise every object is checked again at the
     * target from the start, and that pass's own accounting stands. */
    ferry_info(&r.lctx,
               "%lld objects accounted for (%lld at the target, %lld failed, %lld "
               "vanished), %lld counted at the start: counting again",
               (long long)accounted(prog), (long long)prog->objects_done,
               (long long)prog->failed, (long long)prog->vanished,
               (long long)prog->objects_total);
    if ((rc = walk_selected(&r, NULL, 0, 0, NULL, NULL, &recount, NULL, err)) != FERRY_OK)
        return rc;
    if (ev->chunk_count == 0 && recount == accounted(prog)) {
        ferry_info(&r.lctx,
                   "the source changed during the migration; a fresh count (%lld) "
                   "agrees",
                   (long long)recount);
        prog->objects_total = recount;
        return FERRY_OK;
    }
    ferry_warn(&r.lctx,
               "object counts disagree (fresh count %lld, accounted %lld): checking "
               "every object at the target again",
               (long long)recount, (long long)accounted(prog));
    prog->objects_done = prog->bytes_done = 0;
    prog->copied = prog->identical = prog->vanished = prog->failed = 0;
    prog->objects_total = -1;
    if ((rc = copy_pages(&r, ev->chunk_start_after, 1, 1, err)) != FERRY_OK)
        return rc;
    prog->objects_total = accounted(prog);
    return FERRY_OK;
}
