/* Heartbeat: one thread renews every lease this process holds, every third of the TTL,
 * so a single slow object copy (a multi-GiB UploadPartCopy) cannot let a lease lapse.
 * A lease found lost (expired and taken, or fenced) flags its migration to stop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_connect.h"
#include "ferry_log.h"
#include "ferry_redis_access.h"
#include "ferry_state.h"
#include "ferry_util.h"
#include "worker.h"
#include "worker_metrics.h"

typedef struct tracked {
    ferry_lease lease;
    char event_id[64]; /* for log lines */
    atomic_int *lost;
    struct tracked *next;
} tracked;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    tracked *head;
    ferry_redis *redis;
    int quit;
    int64_t ttl_ms;
} H = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0};

/* What one round renews: a copy of a tracked entry. */
typedef struct renewal {
    ferry_lease lease;
    char event_id[64];
    atomic_int *lost;
} renewal;

/* Renews every tracked lease: worker.concurrency allows 256 migrations and fan-out
 * chunks add more, so no fixed batch size. */
static void renew_all(void)
{
    ferry_error err;
    renewal *batch = NULL;
    size_t n = 0, count = 0;

    /* Copy under the lock, renew without it: a Redis call may block for a while. */
    pthread_mutex_lock(&H.lock);
    for (tracked *t = H.head; t; t = t->next)
        count++;
    if (count && !(batch = malloc(count * sizeof(*batch)))) {
        pthread_mutex_unlock(&H.lock);
        ferry_warn(NULL, "out of memory renewing %zu lease(s) (will retry)", count);
        return;
    }
    for (tracked *t = H.head; t; t = t->next) {
        batch[n].lease = t->lease;
        memcpy(batch[n].event_id, t->event_id, sizeof(batch[n].event_id));
        batch[n++].lost = t->lost;
    }
    pthread_mutex_unlock(&H.lock);

    for (size_t i = 0; i < n; i++) {
        ferry_rc rc = ferry_state_renew(H.redis, &batch[i].lease, &err);
        ferry_log_ctx ctx = {batch[i].lease.dataset,
                             batch[i].event_id[0] ? batch[i].event_id : NULL};
        if (rc == FERRY_OK)
            ferry_counter_inc(worker_metric.lease_ok);
        else
            ferry_counter_inc(worker_metric.lease_failed);
        if (rc == FERRY_ERR_CANCELLED) {
            /* Only flag it if it is still tracked under the same fence. */
            pthread_mutex_lock(&H.lock);
            for (tracked *t = H.head; t; t = t->next)
                if (t->lost == batch[i].lost && t->lease.fence == batch[i].lease.fence) {
                    atomic_store(t->lost, 1);
                    ferry_warn(&ctx, "lease lost (fence %lld): stopping the migration",
                               (long long)batch[i].lease.fence);
                }
            pthread_mutex_unlock(&H.lock);
        } else if (rc != FERRY_OK) {
            ferry_warn(&ctx, "renewing the lease: %s (will retry)", err.msg);
        }
    }
    free(batch);
}

static void *heartbeat_main(void *arg)
{
    worker *w = arg;
    int64_t took = 0; /* the last round's duration */
    (void)w;
    pthread_mutex_lock(&H.lock);
    while (!H.quit) {
        struct timespec ts;
        /* A round starts every third of the TTL: the time a round of many leases takes
         * comes out of the wait, so a lease is never left longer than that. */
        int64_t period = H.ttl_ms / 3 - took, t0;
        if (period < 0)
            period = 0;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += period / 1000;
        ts.tv_nsec += (period % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&H.cond, &H.lock, &ts);
        if (H.quit)
            break;
        pthread_mutex_unlock(&H.lock);
        t0 = ferry_mono_ms();
        renew_all();
        took = ferry_mono_ms() - t0;
        if (took > H.ttl_ms / 3)
            ferry_warn(NULL,
                       "renewing the leases took %lld ms, more than a third of "
                       "lease.ttl_ms (%lld): they are close to lapsing",
                       (long long)took, (long long)H.ttl_ms);
        pthread_mutex_lock(&H.lock);
    }
    pthread_mutex_unlock(&H.lock);
    return NULL;
}

int worker_lease_start(worker *w, char *errstr, size_t errstr_size)
{
    ferry_error err = {0};

    H.ttl_ms = ferry_conf_int(w->conf, "lease.ttl_ms");
    H.redis = ferry_connect_redis(w->conf, errstr, errstr_size);
    if (!H.redis)
        return -1;
    /* An ACL too narrow for ferry (or a wrong password) is a configuration error: refuse
     * to start, naming the command, rather than fail every event inside a script. Redis
     * being unreachable is not: the worker starts and waits for it as before. */
    if (ferry_redis_check_access(H.redis, &err) != FERRY_OK) {
        if (strcmp(err.cls, FERRY_EC_CONFIG) == 0) {
            snprintf(errstr, errstr_size, "%s", err.msg);
            ferry_redis_destroy(H.redis);
            H.redis = NULL;
            return -2;
        }
        ferry_warn(NULL, "cannot check the Redis user's permissions yet: %s", err.msg);
    }
    if (pthread_create(&w->heartbeat, NULL, heartbeat_main, w) != 0) {
        ferry_redis_destroy(H.redis);
        H.redis = NULL;
        snprintf(errstr, errstr_size, "cannot start the heartbeat thread");
        return -1;
    }
    w->heartbeat_started = 1;
    return 0;
}

void worker_lease_stop(worker *w)
{
    if (!w->heartbeat_started)
        return;
    pthread_mutex_lock(&H.lock);
    H.quit = 1;
    pthread_cond_signal(&H.cond);
    pthread_mutex_unlock(&H.lock);
    pthread_join(w->heartbeat, NULL);
    w->heartbeat_started = 0;
    while (H.head) {
        tracked *t = H.head;
        H.head = t->next;
        free(t);
    }
    ferry_redis_destroy(H.redis);
    H.redis = NULL;
}

void worker_lease_track(worker *w, const ferry_lease *lease, const char *event_id,
                        atomic_int *lost)
{
    tracked *t = calloc(1, sizeof(*t));
    (void)w;
    if (!t)
        return; /* the lease then lapses at its TTL and the fenced writes stop us */
    t->lease = *lease;
    snprintf(t->event_id, sizeof(t->event_id), "%s", event_id ? event_id : "");
    t->lost = lost;
    pthread_mutex_lock(&H.lock);
    t->next = H.head;
    H.head = t;
    pthread_mutex_unlock(&H.lock);
}

void worker_lease_untrack(worker *w, const char *dataset)
{
    (void)w;
    pthread_mutex_lock(&H.lock);
    for (tracked **pp = &H.head; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->lease.dataset, dataset) == 0) {
            tracked *t = *pp;
            *pp = t->next;
            free(t);
            break;
        }
    pthread_mutex_unlock(&H.lock);
}
