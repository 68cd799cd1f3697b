/* The worker's HTTP listener: metrics, health, readiness and the status page (see
 * worker_http.h). Handlers run on libmicrohttpd's connection threads, several at once;
 * each Redis handle here is used under its own mutex. */
#include "worker_http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_connect.h"
#include "ferry_http.h"
#include "ferry_log.h"
#include "ferry_metrics.h"
#include "ferry_util.h"
#include "worker_health.h"
#include "worker_metrics.h"
#include "worker_status.h"

/* Generated from worker/web/ by cmake/FerryEmbedRun.cmake. */
struct ferry_embedded_file {
    const char *name;
    const char *text;
};
extern const struct ferry_embedded_file worker_web_table[];

#define CHECK_MAX_AGE_MS 1000 /* a readiness probe result is reused this long */
#define PROBE_TIMEOUT_MS 500  /* Redis connect and PING */
#define S3_PROBE_TIMEOUT_MS 2000
#define STATUS_MAX_AGE_MS 500 /* /v1/migrations reads Redis at most this often */

/* One cached check. */
typedef struct probe {
    pthread_mutex_t lock;
    int64_t at_ms; /* mono; 0 = never */
    int ok;
    char msg[256];
} probe;

struct worker_http {
    worker *w;
    ferry_http *h;
    ferry_redis *ready_redis; /* short timeouts; under redis_probe.lock */
    probe redis_probe, s3_probe;
    pthread_mutex_t status_lock;
    ferry_redis *status_redis; /* under status_lock */
    json_t *status_cache;      /* the migrations array; under status_lock */
    int64_t status_at_ms;
    char status_err[512];
    int curl_ok;
};

/* Written by the poll thread, read by readiness probes. */
static atomic_int joined;
static atomic_int brokers_up = -1; /* -1: no statistics yet */

void worker_http_note_joined(int j) { atomic_store(&joined, j); }
void worker_http_note_kafka_brokers(int up) { atomic_store(&brokers_up, up); }

/* ---- /metrics, /healthz ---------------------------------------------------------- */

/* ---- /readyz --------------------------------------------------------------------- */

static void redis_check(worker_http *wh, probe *p)
{
    ferry_error err = {0};
    if (ferry_redis_ping(wh->ready_redis, &err) == FERRY_OK) {
        p->ok = 1;
        snprintf(p->msg, sizeof(p->msg), "PONG from %s", ferry_redis_describe(wh->ready_redis));
    } else {
        p->ok = 0;
        /* ferry_redis messages name host:port, never the password. */
        snprintf(p->msg, sizeof(p->msg), "%s", err.msg);
    }
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    (void)ptr;
    (void)opaque;
    return size * nmemb;
}

/* Any HTTP answer from GET <endpoint>/ proves the endpoint is reachable: S3 answers 403
 * (or an XML error, or ListBuckets) without credentials; what matters is the network
 * path, DNS and TLS. We never send credentials here, so nothing can leak. */
static int s3_reachable(const ferry_conf *conf, const char *endpoint, char *msg, size_t size)
{
    CURL *e = curl_easy_init();
    CURLcode cc;
    long status = 0;
    const char *ca = ferry_conf_str(conf, "s3.ca_file");

    if (!e) {
        snprintf(msg, size, "curl_easy_init failed");
        return 0;
    }
    curl_easy_setopt(e, CURLOPT_URL, endpoint);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)S3_PROBE_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)S3_PROBE_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    if (ferry_conf_bool(conf, "s3.insecure_tls_ok")) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    cc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (cc != CURLE_OK || status == 0) {
        /* curl_easy_strerror is generic text: no URL, so no userinfo either. */
        snprintf(msg, size, "unreachable: %s", curl_easy_strerror(cc));
        return 0;
    }
    snprintf(msg, size, "HTTP %ld", status);
    return 1;
}

static void s3_check(worker_http *wh, probe *p)
{
    const ferry_conf *conf = wh->w->conf;
    const char *target = ferry_conf_str(conf, "s3.target.endpoint");
    char m1[128], m2[128];
    int ok1 = s3_reachable(conf, ferry_conf_str(conf, "s3.endpoint"), m1, sizeof(m1));
    int ok2 = target ? s3_reachable(conf, target, m2, sizeof(m2)) : 1;

    p->ok = ok1 && ok2;
    if (target)
        snprintf(p->msg, sizeof(p->msg), "source endpoint: %s; target endpoint: %s", m1, m2);
    else
        snprintf(p->msg, sizeof(p->msg), "endpoint: %s", m1);
}

/* Runs check unless a result younger than CHECK_MAX_AGE_MS exists; concurrent callers
 * wait for the one check in progress instead of piling up. */
static int run_probe(worker_http *wh, probe *p, void (*check)(worker_http *, probe *),
                     char *msg, size_t size)
{
    int ok;
    pthread_mutex_lock(&p->lock);
    if (!p->at_ms || ferry_mono_ms() - p->at_ms > CHECK_MAX_AGE_MS) {
        check(wh, p);
        p->at_ms = ferry_mono_ms();
    }
    ok = p->ok;
    snprintf(msg, size, "%s", p->msg);
    pthread_mutex_unlock(&p->lock);
    return ok;
}

static void add_check(json_t *checks, json_t *failed, const char *name, int ok, const char *msg)
{
    json_object_set_new(checks, name, json_pack("{s:b,s:s}", "ok", ok, "detail", msg));
    if (!ok)
        json_array_append_new(failed, json_string(name));
}

static void on_readyz(ferry_http_req *req, void *opaque)
{
    worker_http *wh = opaque;
    json_t *checks = json_object(), *failed = json_array(), *body;
    char msg[256];
    int ok, up = atomic_load(&brokers_up), ready;

    if (atomic_load(&wh->w->stopping))
        add_check(checks, failed, "consumer", 0, "stopping: leaving the consumer group");
    else if (!atomic_load(&joined))
        add_check(checks, failed, "consumer", 0,
                  "not in the consumer group (no assignment yet)");
    else
        add_check(checks, failed, "consumer", 1, "in the consumer group");
    if (up == 0)
        add_check(checks, failed, "kafka", 0, "no broker connection is up");
    else
        add_check(checks, failed, "kafka", 1,
                  up < 0 ? "no statistics yet (statistics.interval.ms)"
                         : "broker connection up");
    ok = run_probe(wh, &wh->redis_probe, redis_check, msg, sizeof(msg));
    add_check(checks, failed, "redis", ok, msg);
    ok = run_probe(wh, &wh->s3_probe, s3_check, msg, sizeof(msg));
    add_check(checks, failed, "s3", ok, msg);
    /* What the migrations saw: an endpoint that answers GET / may still stall or 5xx. */
    ok = worker_health_describe(msg, sizeof(msg));
    add_check(checks, failed, "s3_endpoints", ok, msg);

    ready = json_array_size(failed) == 0;
    body = json_pack("{s:b,s:o,s:o}", "ready", ready, "failed", failed, "checks", checks);
    ferry_http_reply_json(req, ready ? 200 : 503, body);
}

/* ---- status page ------------------------------------------------------------------ */

static const char *content_type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && !strcmp(dot, ".html"))
        return "text/html; charset=utf-8";
    if (dot && !strcmp(dot, ".js"))
        return "text/javascript; charset=utf-8";
    if (dot && !strcmp(dot, ".css"))
        return "text/css; charset=utf-8";
    if (dot && !strcmp(dot, ".png"))
        return "image/png";
    return "application/octet-stream";
}

static void serve_file(ferry_http_req *req, const char *name)
{
    for (const struct ferry_embedded_file *f = worker_web_table; f->name; f++) {
        if (strcmp(f->name, name) != 0)
            continue;
        /* The page loads only its own script and style, talks only to this server. */
        ferry_http_add_header(req, "Content-Security-Policy",
                              "default-src 'none'; script-src 'self'; style-src 'self'; "
                              "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                              "form-action 'none'; frame-ancestors 'none'");
        ferry_http_add_header(req, "X-Content-Type-Options", "nosniff");
        ferry_http_add_header(req, "Referrer-Policy", "no-referrer");
        ferry_http_reply(req, 200, content_type_of(name), f->text, strlen(f->text));
        return;
    }
    ferry_http_reply_error(req, 404, "not_found", "no such resource");
}

static void on_page(ferry_http_req *req, void *opaque)
{
    (void)opaque;
    serve_file(req, "status.html");
}

static void on_asset(ferry_http_req *req, void *opaque)
{
    serve_file(req, (const char *)opaque);
}

static json_t *counters_json(void)
{
    json_t *f = json_object();
    for (int i = 0; worker_metrics_classes[i]; i++) {
        const char *cls = worker_metrics_classes[i];
        uint64_t n = ferry_counter_value(ferry_metric_vec_counter(worker_metric.failures, cls));
        if (n)
            json_object_set_new(f, cls, json_integer((json_int_t)n));
    }
    return f;
}

static void on_migrations(ferry_http_req *req, void *opaque)
{
    worker_http *wh = opaque;
    json_t *body = NULL;
    ferry_error err = {0};

    pthread_mutex_lock(&wh->status_lock);
    if (!wh->status_at_ms || ferry_mono_ms() - wh->status_at_ms > STATUS_MAX_AGE_MS) {
        json_t *arr = NULL;
        if (worker_status_json(wh->status_redis, &arr, &err) == FERRY_OK) {
            json_decref(wh->status_cache);
            wh->status_cache = arr;
            wh->status_err[0] = '\0';
        } else {
            /* err.msg names the Redis address already ("redis ADDR: ...") */
            snprintf(wh->status_err, sizeof(wh->status_err), "%s", err.msg);
        }
        wh->status_at_ms = ferry_mono_ms();
    }
    if (!wh->status_err[0] && wh->status_cache)
        /* jansson reference counts are touched under status_lock only. */
        body = json_pack("{s:s,s:I,s:O,s:I,s:I,s:I,s:o}", "worker", wh->w->id,
                         "generated_at_ms", (json_int_t)ferry_now_ms(), "migrations",
                         wh->status_cache, "dlq_records",
                         (json_int_t)ferry_counter_value(worker_metric.dlq_records),
                         "in_flight", (json_int_t)ferry_gauge_value(worker_metric.in_flight),
                         "events_consumed",
                         (json_int_t)ferry_counter_value(worker_metric.events_consumed),
                         "failures", counters_json());
    if (body) {
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        pthread_mutex_unlock(&wh->status_lock);
        if (text)
            ferry_http_reply(req, 200, NULL, text, strlen(text));
        else
            ferry_http_reply_error(req, 500, "internal", "out of memory");
        free(text);
        return;
    }
    if (wh->status_err[0]) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", wh->status_err);
        pthread_mutex_unlock(&wh->status_lock);
        ferry_http_add_header(req, "Retry-After", "1");
        ferry_http_reply_error(req, 503, "unavailable", "%s", msg);
        return;
    }
    pthread_mutex_unlock(&wh->status_lock);
    ferry_http_reply_error(req, 500, "internal", "out of memory");
}

/* ---- start / stop ---------------------------------------------------------------- */

static void probe_init(probe *p)
{
    pthread_mutex_init(&p->lock, NULL);
    p->at_ms = 0;
    p->ok = 0;
    p->msg[0] = '\0';
}

int worker_http_start(worker *w, worker_http **out, char *errstr, size_t errstr_size)
{
    const char *listen = ferry_conf_str(w->conf, "http.listen");
    worker_http *wh;
    ferry_http_conf hc;
    int rc = 0;

    *out = NULL;
    if (!listen || !*listen)
        return 0;
    if (!(wh = calloc(1, sizeof(*wh)))) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    wh->w = w;
    probe_init(&wh->redis_probe);
    probe_init(&wh->s3_probe);
    pthread_mutex_init(&wh->status_lock, NULL);
    wh->curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    ferry_http_conf_init(&hc);
    hc.listen = listen;
    hc.max_body_bytes = 1024; /* nothing here takes a body */
    hc.max_connections = 32;
    hc.timeout_s = 10;
    if (!(wh->ready_redis = ferry_connect_redis_timeouts(w->conf, PROBE_TIMEOUT_MS,
                                                         PROBE_TIMEOUT_MS, errstr,
                                                         errstr_size)) ||
        !(wh->status_redis = ferry_connect_redis(w->conf, errstr, errstr_size)) ||
        !(wh->h = ferry_http_new(&hc, errstr, errstr_size)))
        goto fail;
    rc |= ferry_http_route_standard(wh->h, worker_metric.reg);
    rc |= ferry_http_route(wh->h, "GET", "/readyz", 0, on_readyz, wh);
    rc |= ferry_http_route(wh->h, "GET", "/v1/migrations", 0, on_migrations, wh);
    rc |= ferry_http_route(wh->h, "GET", "/", 0, on_page, wh);
    rc |= ferry_http_route(wh->h, "GET", "/status", 0, on_page, wh);
    rc |= ferry_http_route(wh->h, "GET", "/status.js", 0, on_asset, (void *)"status.js");
    rc |= ferry_http_route(wh->h, "GET", "/status.css", 0, on_asset, (void *)"status.css");
    if (rc) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (ferry_http_start(wh->h, errstr, errstr_size) != 0)
        goto fail;
    ferry_info(NULL, "http: listening on %s (port %u): /metrics /healthz /readyz /status",
               listen, ferry_http_port(wh->h));
    *out = wh;
    return 0;
fail:
    worker_http_stop(wh);
    return -1;
}

void worker_http_stop(worker_http *wh)
{
    if (!wh)
        return;
    ferry_http_destroy(wh->h); /* waits for handlers in flight */
    ferry_redis_destroy(wh->ready_redis);
    ferry_redis_destroy(wh->status_redis);
    json_decref(wh->status_cache);
    pthread_mutex_destroy(&wh->redis_probe.lock);
    pthread_mutex_destroy(&wh->s3_probe.lock);
    pthread_mutex_destroy(&wh->status_lock);
    if (wh->curl_ok)
        curl_global_cleanup();
    free(wh);
}
