/* worker_copy_outage.c: an endpoint that is down (its circuit breaker open) is waited for
 * at an object boundary, holding the lease, up to s3.outage_limit_ms. */
#include <stdint.h>

#include "ferry_log.h"
#include "ferry_util.h"
#include "worker_copy_internal.h"
#include "worker_health.h"
#include "worker_metrics.h"

int worker_copy__endpoints_up(const worker_copier *c)
{
    int64_t now = ferry_mono_ms();
    return (!c->src_brk || ferry_breaker_allows(c->src_brk, now)) &&
           (!c->dst_brk || ferry_breaker_allows(c->dst_brk, now));
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

/* The status view and the migration's log show at once why it is not moving, whether
 * the wait began while copying or before the first copy (validation, counting): once
 * per run, best effort. */
static void note_waiting(run *r, ferry_breaker *b)
{
    ferry_breaker_snapshot s;
    ferry_error e, serr;

    if (r->noted_wait)
        return;
    r->noted_wait = 1;
    ferry_breaker_snapshot_get(b, &s);
    ferry_error_set(&e, FERRY_ERR_RETRYABLE,
                    s.stalled ? FERRY_EC_S3_STALL : FERRY_EC_S3_NETWORK,
                    "waiting for S3 endpoint %s, down%s: %s", ferry_breaker_name(b),
                    s.stalled ? " (requests stalled)" : "", s.last_error);
    ferry_warn(&r->lctx, "%s", e.msg);
    if (r->redis && r->lease &&
        ferry_state_note_error(r->redis, r->lease, e.cls, e.msg, &serr) != FERRY_OK)
        ferry_debug(&r->lctx, "recording the wait: %s", serr.msg);
}

/* Waits, at an object boundary and holding the lease, until every endpoint this copy
 * needs answers again. OK, CANCELLED (stop requested) or PERMANENT s3-outage. */
ferry_rc worker_copy__wait_endpoints(run *r, ferry_error *err)
{
    worker_copier *c = r->c;
    ferry_breaker *bs[2] = {c->src_brk, c->dst_brk != c->src_brk ? c->dst_brk : NULL};
    ferry_rc rc;

    while (!worker_copy__endpoints_up(c)) {
        for (int i = 0; i < 2; i++) {
            if (!bs[i] || ferry_breaker_allows(bs[i], ferry_mono_ms()))
                continue;
            note_waiting(r, bs[i]);
            rc = worker_health_wait(bs[i], probe_bucket, r, r->should_stop, r->opaque, &r->lctx,
                                    err);
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
int worker_copy__again(run *r, ferry_breaker *b, ferry_rc *rc, int *tries, ferry_error *err)
{
    worker_health_note(b, *rc, err, NULL, &r->lctx);
    if (*rc == FERRY_OK || !worker_health_endpoint_failure(*rc, err, NULL) ||
        r->should_stop(r->opaque))
        return 0;
    if (!worker_copy__endpoints_up(r->c)) {
        if ((*rc = worker_copy__wait_endpoints(r, err)) != FERRY_OK)
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
