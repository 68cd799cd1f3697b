#include "ferry_breaker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ferry_breaker {
    pthread_mutex_t lock;
    char *name;
    ferry_breaker_conf conf;
    ferry_breaker_state state;
    int failures; /* consecutive */
    int64_t down_since_ms;
    int64_t next_probe_ms;
    int64_t probe_started_ms;
    int probes_failed;
    int stalled;
    uint64_t opened_total;
    char last_error[256];
};

void ferry_breaker_conf_init(ferry_breaker_conf *conf)
{
    conf->failure_threshold = 5;
    conf->probe_base_ms = 1000;
    conf->probe_max_ms = 30000;
    conf->probe_timeout_ms = 120000;
}

ferry_breaker *ferry_breaker_new(const char *name, const ferry_breaker_conf *conf)
{
    ferry_breaker *b = calloc(1, sizeof(*b));
    ferry_breaker_conf def;

    if (!b || !(b->name = strdup(name ? name : "")))
        goto fail;
    ferry_breaker_conf_init(&def);
    b->conf = def;
    if (conf) {
        if (conf->failure_threshold > 0)
            b->conf.failure_threshold = conf->failure_threshold;
        if (conf->probe_base_ms > 0)
            b->conf.probe_base_ms = conf->probe_base_ms;
        if (conf->probe_max_ms > 0)
            b->conf.probe_max_ms = conf->probe_max_ms;
        if (conf->probe_timeout_ms > 0)
            b->conf.probe_timeout_ms = conf->probe_timeout_ms;
    }
    if (b->conf.probe_max_ms < b->conf.probe_base_ms)
        b->conf.probe_max_ms = b->conf.probe_base_ms;
    pthread_mutex_init(&b->lock, NULL);
    return b;
fail:
    free(b);
    return NULL;
}

void ferry_breaker_destroy(ferry_breaker *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b->name);
    free(b);
}

const char *ferry_breaker_name(const ferry_breaker *b) { return b->name; }

/* The wait after `failed` failed probes: base, 2 base, 4 base, ... up to max. */
static int64_t probe_wait(const ferry_breaker *b, int failed)
{
    int64_t w = b->conf.probe_base_ms;
    for (int i = 0; i < failed && w < b->conf.probe_max_ms; i++)
        w *= 2;
    return w < b->conf.probe_max_ms ? w : b->conf.probe_max_ms;
}

static void note_error(ferry_breaker *b, const char *why)
{
    if (why)
        snprintf(b->last_error, sizeof(b->last_error), "%s", why);
}

/* Under the lock. */
static int close_locked(ferry_breaker *b)
{
    int was_down = b->state != FERRY_BREAKER_CLOSED;
    b->state = FERRY_BREAKER_CLOSED;
    b->failures = 0;
    b->down_since_ms = 0;
    b->next_probe_ms = 0;
    b->probes_failed = 0;
    b->stalled = 0;
    return was_down;
}

int ferry_breaker_success(ferry_breaker *b, int64_t now_ms)
{
    int closed;
    (void)now_ms;
    pthread_mutex_lock(&b->lock);
    closed = close_locked(b);
    pthread_mutex_unlock(&b->lock);
    return closed;
}

int ferry_breaker_failure(ferry_breaker *b, int64_t now_ms, int stalled, const char *why)
{
    int opened = 0;
    pthread_mutex_lock(&b->lock);
    note_error(b, why);
    if (b->state == FERRY_BREAKER_CLOSED) {
        b->failures++;
        if (stalled || b->failures >= b->conf.failure_threshold) {
            b->state = FERRY_BREAKER_OPEN;
            b->down_since_ms = now_ms;
            b->probes_failed = 0;
            b->next_probe_ms = now_ms + probe_wait(b, 0);
            b->stalled = stalled;
            b->opened_total++;
            opened = 1;
        }
    }
    pthread_mutex_unlock(&b->lock);
    return opened;
}

int ferry_breaker_allows(ferry_breaker *b, int64_t now_ms)
{
    int ok;
    (void)now_ms;
    pthread_mutex_lock(&b->lock);
    ok = b->state == FERRY_BREAKER_CLOSED;
    pthread_mutex_unlock(&b->lock);
    return ok;
}

int ferry_breaker_probe_begin(ferry_breaker *b, int64_t now_ms)
{
    int mine = 0;
    pthread_mutex_lock(&b->lock);
    /* A prober that never reported (its thread stopped) must not wedge the breaker. */
    if (b->state == FERRY_BREAKER_HALF_OPEN &&
        now_ms - b->probe_started_ms >= b->conf.probe_timeout_ms) {
        b->probes_failed++;
        b->state = FERRY_BREAKER_OPEN;
        b->next_probe_ms = now_ms;
    }
    if (b->state == FERRY_BREAKER_OPEN && now_ms >= b->next_probe_ms) {
        b->state = FERRY_BREAKER_HALF_OPEN;
        b->probe_started_ms = now_ms;
        mine = 1;
    }
    pthread_mutex_unlock(&b->lock);
    return mine;
}

int ferry_breaker_probe_done(ferry_breaker *b, int64_t now_ms, int ok, const char *why)
{
    int closed = 0;
    pthread_mutex_lock(&b->lock);
    if (ok) {
        closed = close_locked(b);
    } else if (b->state != FERRY_BREAKER_CLOSED) {
        /* (closed already: a request answered meanwhile; that evidence wins) */
        note_error(b, why);
        b->probes_failed++;
        b->state = FERRY_BREAKER_OPEN;
        b->next_probe_ms = now_ms + probe_wait(b, b->probes_failed);
    }
    pthread_mutex_unlock(&b->lock);
    return closed;
}

void ferry_breaker_snapshot_get(ferry_breaker *b, ferry_breaker_snapshot *out)
{
    pthread_mutex_lock(&b->lock);
    out->state = b->state;
    out->consecutive_failures = b->failures;
    out->down_since_ms = b->down_since_ms;
    out->next_probe_ms = b->next_probe_ms;
    out->probes_failed = b->probes_failed;
    out->stalled = b->stalled;
    out->opened_total = b->opened_total;
    memcpy(out->last_error, b->last_error, sizeof(out->last_error));
    pthread_mutex_unlock(&b->lock);
}

const char *ferry_breaker_state_name(ferry_breaker_state s)
{
    switch (s) {
    case FERRY_BREAKER_CLOSED: return "closed";
    case FERRY_BREAKER_OPEN: return "open";
    case FERRY_BREAKER_HALF_OPEN: return "half-open";
    }
    return "unknown";
}
