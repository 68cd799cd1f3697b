#include "worker_health.h"

#include <stdio.h>
#include <string.h>

#include "ferry_util.h"
#include "worker_metrics.h"

#define MAX_ENDPOINTS 2 /* s3.endpoint and s3.target.endpoint */

typedef struct endpoint {
    char *url;
    ferry_breaker *b;
    ferry_gauge *state; /* ferry_s3_endpoint_state{endpoint}: 0 closed, 1 open, 2 half-open */
    ferry_counter *opened; /* ferry_s3_endpoint_outages_total{endpoint} */
} endpoint;

static struct {
    endpoint ep[MAX_ENDPOINTS];
    int n;
    int64_t outage_limit_ms;
} health;

static int add(const char *url, const ferry_breaker_conf *bc, ferry_metric_vec *state,
               ferry_metric_vec *opened)
{
    endpoint *e;
    if (!url || worker_health_breaker(url))
        return 0;
    e = &health.ep[health.n];
    if (!(e->b = ferry_breaker_new(url, bc)))
        return -1;
    e->url = (char *)ferry_breaker_name(e->b); /* owned by the breaker */
    e->state = ferry_metric_vec_gauge(state, url);
    e->opened = ferry_metric_vec_counter(opened, url);
    ferry_gauge_set(e->state, 0);
    health.n++;
    return 0;
}

int worker_health_init(const ferry_conf *conf)
{
    ferry_breaker_conf bc;
    ferry_metric_vec *state = NULL, *opened = NULL;

    ferry_breaker_conf_init(&bc);
    bc.failure_threshold = (int)ferry_conf_int(conf, "s3.breaker_failures");
    bc.probe_max_ms = ferry_conf_int(conf, "s3.probe_max_ms");
    if (bc.probe_base_ms > bc.probe_max_ms)
        bc.probe_base_ms = bc.probe_max_ms;
    health.outage_limit_ms = ferry_conf_int(conf, "s3.outage_limit_ms");
    if (worker_metric.reg) {
        state = ferry_metrics_gauge_vec(worker_metric.reg, "ferry_s3_endpoint_state",
                                        "Circuit breaker of each S3 endpoint: 0 closed (up), "
                                        "1 open (down, migrations wait), 2 half-open (probing)",
                                        "endpoint", MAX_ENDPOINTS);
        opened = ferry_metrics_counter_vec(worker_metric.reg, "ferry_s3_endpoint_outages_total",
                                           "Times an S3 endpoint's circuit breaker opened",
                                           "endpoint", MAX_ENDPOINTS);
    }
    if (add(ferry_conf_str(conf, "s3.endpoint"), &bc, state, opened) != 0 ||
        add(ferry_conf_str(conf, "s3.target.endpoint"), &bc, state, opened) != 0) {
        worker_health_destroy();
        return -1;
    }
    return 0;
}

void worker_health_destroy(void)
{
    for (int i = 0; i < health.n; i++)
        ferry_breaker_destroy(health.ep[i].b);
    memset(&health, 0, sizeof(health));
}

static endpoint *find(const ferry_breaker *b)
{
    for (int i = 0; i < health.n; i++)
        if (health.ep[i].b == b)
            return &health.ep[i];
    return NULL;
}

ferry_breaker *worker_health_breaker(const char *url)
{
    for (int i = 0; url && i < health.n; i++)
        if (!strcmp(health.ep[i].url, url))
            return health.ep[i].b;
    return NULL;
}

static int throttled(const char *code)
{
    static const char *const codes[] = {
        "SlowDown",         "Throttling",      "ThrottlingException",
        "RequestThrottled", "TooManyRequests", NULL};
    for (int i = 0; codes[i]; i++)
        if (!strcmp(code, codes[i]))
            return 1;
    return 0;
}

static int quotes_throttling(const char *msg)
{
    return strstr(msg, "SlowDown") || strstr(msg, "Throttl") ||
           strstr(msg, "TooManyRequests") || strstr(msg, ": 429");
}

int worker_health_endpoint_failure(ferry_rc rc, const ferry_error *err, const char *s3_code)
{
    if (rc != FERRY_ERR_RETRYABLE)
        return 0;
    if (!strcmp(err->cls, FERRY_EC_S3_NETWORK) || !strcmp(err->cls, FERRY_EC_S3_STALL))
        return 1;
    if (strcmp(err->cls, FERRY_EC_S3_SERVER) != 0)
        return 0;
    return s3_code ? !throttled(s3_code) && !quotes_throttling(err->msg)
                   : !quotes_throttling(err->msg);
}

static void show_state(endpoint *e)
{
    ferry_breaker_snapshot s;
    ferry_breaker_snapshot_get(e->b, &s);
    ferry_gauge_set(e->state, (double)s.state);
}

static void log_opened(endpoint *e, const ferry_log_ctx *lctx)
{
    ferry_breaker_snapshot s;
    ferry_breaker_snapshot_get(e->b, &s);
    ferry_gauge_set(e->state, (double)s.state);
    ferry_counter_inc(e->opened);
    ferry_warn(lctx,
               "S3 endpoint %s is down (%s%s): migrations using it wait at object boundaries "
               "and probe it; dead-lettered only after s3.outage_limit_ms",
               e->url, s.stalled ? "a request stalled: " : "", s.last_error);
}

static void log_closed(endpoint *e, int64_t down_since_ms, const ferry_log_ctx *lctx)
{
    show_state(e);
    ferry_info(lctx, "S3 endpoint %s answers again (down for %lld ms); migrations resume",
               e->url, (long long)(down_since_ms ? ferry_mono_ms() - down_since_ms : 0));
}

void worker_health_note(ferry_breaker *b, ferry_rc rc, const ferry_error *err,
                        const char *s3_code, const ferry_log_ctx *lctx)
{
    endpoint *e = find(b);
    int64_t now = ferry_mono_ms();

    if (!e || rc == FERRY_ERR_CANCELLED)
        return;
    if (worker_health_endpoint_failure(rc, err, s3_code)) {
        if (ferry_breaker_failure(b, now, !strcmp(err->cls, FERRY_EC_S3_STALL), err->msg))
            log_opened(e, lctx);
        return;
    }
    if (!ferry_breaker_allows(b, now)) {
        ferry_breaker_snapshot s;
        ferry_breaker_snapshot_get(b, &s);
        if (ferry_breaker_success(b, now))
            log_closed(e, s.down_since_ms, lctx);
        return;
    }
    ferry_breaker_success(b, now);
}

ferry_rc worker_health_wait(ferry_breaker *b, worker_health_probe_fn probe, void *probe_opaque,
                            int (*should_stop)(void *), void *stop_opaque,
                            const ferry_log_ctx *lctx, ferry_error *err)
{
    endpoint *e = find(b);

    while (e) {
        ferry_breaker_snapshot s;
        int64_t now = ferry_mono_ms();

        ferry_breaker_snapshot_get(b, &s);
        if (s.state == FERRY_BREAKER_CLOSED)
            return FERRY_OK;
        if (health.outage_limit_ms > 0 && now - s.down_since_ms > health.outage_limit_ms)
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_S3_OUTAGE,
                                   "S3 endpoint %s down for %lld s, longer than "
                                   "s3.outage_limit_ms (%lld ms); last error: %s",
                                   e->url, (long long)(now - s.down_since_ms) / 1000,
                                   (long long)health.outage_limit_ms, s.last_error);
        if (should_stop(stop_opaque))
            return ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_INTERNAL,
                                   "stopped while waiting for S3 endpoint %s", e->url);
        if (ferry_breaker_probe_begin(b, now)) {
            ferry_error perr = {0};
            ferry_rc prc;
            int ok;
            show_state(e);
            prc = probe(probe_opaque, b, &perr);
            /* Any answer, even 403 or 404, shows the endpoint is back. */
            ok = prc == FERRY_OK || !worker_health_endpoint_failure(prc, &perr, NULL);
            if (ferry_breaker_probe_done(b, ferry_mono_ms(), ok, ok ? NULL : perr.msg))
                log_closed(e, s.down_since_ms, lctx);
            else
                show_state(e);
            if (!ok)
                ferry_debug(lctx, "probe of S3 endpoint %s failed: %s", e->url, perr.msg);
            continue;
        }
        ferry_sleep_ms(100);
    }
    return FERRY_OK;
}

int worker_health_describe(char *msg, size_t size)
{
    size_t off = 0;
    int all_ok = 1;

    if (size)
        msg[0] = '\0';
    for (int i = 0; i < health.n; i++) {
        ferry_breaker_snapshot s;
        int n;
        ferry_breaker_snapshot_get(health.ep[i].b, &s);
        if (s.state == FERRY_BREAKER_CLOSED)
            continue;
        all_ok = 0;
        n = snprintf(msg + off, size - off, "%s%s %s for %lld s%s: %s", off ? "; " : "",
                     health.ep[i].url, ferry_breaker_state_name(s.state),
                     (long long)(ferry_mono_ms() - s.down_since_ms) / 1000,
                     s.stalled ? ", stalled" : "", s.last_error);
        if (n < 0 || (size_t)n >= size - off)
            return all_ok;
        off += (size_t)n;
    }
    if (all_ok)
        snprintf(msg, size, "%d endpoint(s), circuit breakers closed", health.n);
    return all_ok;
}
