#include "ferry_limiter.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CUT_THROTTLED 0.7   /* multiplicative decrease on 503 SlowDown */
#define CUT_LATENCY_MIN 0.5 /* the deepest latency cut in one window */

struct ferry_limiter {
    pthread_mutex_t mu;
    pthread_cond_t released;
    ferry_limiter_conf conf;
    double limit;
    int in_flight, users;
    int slow_start;
    int64_t floor_us, rtt_us;
    /* the current window */
    int win_done;    /* completions of any outcome */
    int win_samples; /* latency samples */
    int64_t win_sum_us;
    int win_peak; /* most permits held at once */
    /* a cut counts once per round trip: the requests in flight when it happened were sent
     * under the old limit, and their refusals say nothing new */
    int since_cut, cut_guard;
    uint64_t throttled, cuts;
};

void ferry_limiter_conf_init(ferry_limiter_conf *conf)
{
    conf->min_limit = 4;
    conf->max_limit = 256;
    conf->initial_limit = 16;
    conf->tolerance = 2.0;
}

static void clamp_conf(ferry_limiter_conf *c)
{
    if (c->min_limit < 1)
        c->min_limit = 1;
    if (c->max_limit < c->min_limit)
        c->max_limit = c->min_limit;
    if (c->initial_limit < c->min_limit)
        c->initial_limit = c->min_limit;
    if (c->initial_limit > c->max_limit)
        c->initial_limit = c->max_limit;
    if (!(c->tolerance > 1.0))
        c->tolerance = 2.0;
}

ferry_limiter *ferry_limiter_new(const ferry_limiter_conf *conf)
{
    ferry_limiter *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return NULL;
    }
    if (pthread_cond_init(&l->released, NULL) != 0) {
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    l->conf = *conf;
    clamp_conf(&l->conf);
    l->limit = l->conf.initial_limit;
    l->slow_start = 1;
    return l;
}

void ferry_limiter_destroy(ferry_limiter *l)
{
    if (!l)
        return;
    pthread_cond_destroy(&l->released);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void ferry_limiter_join(ferry_limiter *l)
{
    pthread_mutex_lock(&l->mu);
    l->users++;
    pthread_mutex_unlock(&l->mu);
}

void ferry_limiter_leave(ferry_limiter *l)
{
    pthread_mutex_lock(&l->mu);
    if (l->users > 0)
        l->users--;
    /* the share of those still here just grew */
    pthread_cond_broadcast(&l->released);
    pthread_mutex_unlock(&l->mu);
}

static int whole_limit(const ferry_limiter *l)
{
    return (int)l->limit; /* always >= min_limit >= 1 */
}

int ferry_limiter_try_acquire(ferry_limiter *l, int user_in_flight)
{
    int granted = 0, limit, users, share;

    pthread_mutex_lock(&l->mu);
    limit = whole_limit(l);
    users = l->users > 0 ? l->users : 1;
    share = (limit + users - 1) / users;
    if (l->in_flight < limit && user_in_flight < share) {
        l->in_flight++;
        if (l->in_flight > l->win_peak)
            l->win_peak = l->in_flight;
        granted = 1;
    }
    pthread_mutex_unlock(&l->mu);
    return granted;
}

static void set_limit(ferry_limiter *l, double v)
{
    if (v < l->conf.min_limit)
        v = l->conf.min_limit;
    if (v > l->conf.max_limit)
        v = l->conf.max_limit;
    l->limit = v;
}

static void window_reset(ferry_limiter *l)
{
    l->win_done = l->win_samples = 0;
    l->win_sum_us = 0;
    l->win_peak = l->in_flight;
}

/* One window of completions is in: move the limit. */
static void window_end(ferry_limiter *l)
{
    int64_t mean;

    if (l->win_samples == 0) { /* nothing measured: no reason to move */
        window_reset(l);
        return;
    }
    mean = l->win_sum_us / l->win_samples;
    l->rtt_us = mean;
    /* The floor is the best window mean seen, not the fastest single request: one lucky
     * sample must not make every normal window look like queueing. */
    if (l->floor_us == 0 || mean < l->floor_us)
        l->floor_us = mean;
    if ((double)mean > l->conf.tolerance * (double)l->floor_us) {
        double g = l->conf.tolerance * (double)l->floor_us / (double)mean;
        if (whole_limit(l) <= l->conf.min_limit) {
            /* Already at the floor and still slow: the store got slower for good (another
             * region, a loaded server). This is its no-load latency now. */
            l->floor_us = mean;
        } else {
            set_limit(l, l->limit * (g < CUT_LATENCY_MIN ? CUT_LATENCY_MIN : g));
            l->slow_start = 0;
            l->cuts++;
        }
    } else if (l->win_peak * 2 >= whole_limit(l)) {
        /* Latency holds and the limit was used: more requests should mean more done. An
         * idle limit is not raised -- it would say nothing about the store. */
        if (l->slow_start) {
            set_limit(l, l->limit * 2);
        } else {
            double step = sqrt(l->limit) / 2;
            set_limit(l, l->limit + (step < 1 ? 1 : step));
        }
    }
    window_reset(l);
}

void ferry_limiter_release(ferry_limiter *l, int64_t now_us, int64_t rtt_us,
                           ferry_limiter_outcome outcome)
{
    (void)now_us; /* windows are counted in completions; kept for future time-based aging */
    pthread_mutex_lock(&l->mu);
    if (l->in_flight > 0)
        l->in_flight--;
    l->since_cut++;
    l->win_done++;
    if (outcome == FERRY_LIMITER_THROTTLED) {
        l->throttled++;
        if (l->since_cut > l->cut_guard) {
            set_limit(l, l->limit * CUT_THROTTLED);
            l->slow_start = 0;
            l->cuts++;
            l->since_cut = 0;
            l->cut_guard = l->in_flight;
            window_reset(l);
        }
    } else if (outcome == FERRY_LIMITER_OK && rtt_us >= 0) {
        if (rtt_us == 0)
            rtt_us = 1;
        l->win_samples++;
        l->win_sum_us += rtt_us;
    }
    if (l->win_done >= (whole_limit(l) > 4 ? whole_limit(l) : 4))
        window_end(l);
    pthread_cond_broadcast(&l->released);
    pthread_mutex_unlock(&l->mu);
}

void ferry_limiter_wait(ferry_limiter *l, int timeout_ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    pthread_cond_timedwait(&l->released, &l->mu, &ts);
    pthread_mutex_unlock(&l->mu);
}

void ferry_limiter_stats_get(ferry_limiter *l, ferry_limiter_stats *out)
{
    pthread_mutex_lock(&l->mu);
    out->limit = whole_limit(l);
    out->in_flight = l->in_flight;
    out->users = l->users;
    out->rtt_floor_us = l->floor_us;
    out->rtt_us = l->rtt_us;
    out->throttled = l->throttled;
    out->cuts = l->cuts;
    pthread_mutex_unlock(&l->mu);
}

/* ---- registry */

typedef struct entry {
    char *endpoint;
    ferry_limiter *lim;
    struct entry *next;
} entry;

struct ferry_limiters {
    pthread_mutex_t mu;
    ferry_limiter_conf conf;
    entry *head;
};

ferry_limiters *ferry_limiters_new(const ferry_limiter_conf *conf)
{
    ferry_limiters *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return NULL;
    }
    r->conf = *conf;
    return r;
}

void ferry_limiters_destroy(ferry_limiters *r)
{
    if (!r)
        return;
    while (r->head) {
        entry *e = r->head;
        r->head = e->next;
        ferry_limiter_destroy(e->lim);
        free(e->endpoint);
        free(e);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}

ferry_limiter *ferry_limiters_get(ferry_limiters *r, const char *endpoint)
{
    ferry_limiter *lim = NULL;
    entry *e;

    pthread_mutex_lock(&r->mu);
    for (e = r->head; e; e = e->next)
        if (!strcmp(e->endpoint, endpoint))
            break;
    if (!e && (e = calloc(1, sizeof(*e)))) {
        e->endpoint = strdup(endpoint);
        e->lim = ferry_limiter_new(&r->conf);
        if (!e->endpoint || !e->lim) {
            ferry_limiter_destroy(e->lim);
            free(e->endpoint);
            free(e);
            e = NULL;
        } else {
            e->next = r->head;
            r->head = e;
        }
    }
    if (e)
        lim = e->lim;
    pthread_mutex_unlock(&r->mu);
    return lim;
}

void ferry_limiters_each(ferry_limiters *r,
                         void (*fn)(const char *endpoint, ferry_limiter *l, void *opaque),
                         void *opaque)
{
    pthread_mutex_lock(&r->mu);
    for (entry *e = r->head; e; e = e->next)
        fn(e->endpoint, e->lim, opaque);
    pthread_mutex_unlock(&r->mu);
}
