/* ferry-producer internals: the subcommands, the event emitter every source shares, and
 * the sources of `serve` (Backstage poller, JSON registry watcher, HTTP ingest). */
#ifndef FERRY_PRODUCER_H
#define FERRY_PRODUCER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "ferry_changes.h"
#include "ferry_conf.h"
#include "ferry_error.h"
#include "ferry_event.h"
#include "ferry_http.h"
#include "ferry_redis.h"

/* Subcommands; each returns a process exit code (FERRY_EXIT_*). */
int producer_publish_main(int argc, char **argv);
int producer_serve_main(int argc, char **argv);

/* ---- producer_emit.c: one Kafka producer, one codec, one Redis connection ---------- */

/* Counters for /metrics (producer_observe.c mirrors them into its registry at scrape
 * time; the names are the Prometheus names). Updated with relaxed atomics, any thread. */
typedef struct producer_metrics {
    atomic_ullong published[5];            /* ferry_producer_events_published_total{origin} */
    atomic_ullong publish_failures;        /* ferry_producer_publish_failures_total */
    atomic_ullong invalid_specs;           /* ferry_producer_invalid_specs_total */
    atomic_ullong catalog_polls;           /* ferry_producer_catalog_polls_total */
    atomic_ullong catalog_poll_failures;   /* ferry_producer_catalog_poll_failures_total */
    atomic_ullong registry_reloads;        /* ferry_producer_registry_reloads_total */
    atomic_ullong registry_files_rejected; /* ferry_producer_registry_files_rejected_total */
    atomic_ullong ingest_rejected;         /* ferry_producer_ingest_rejected_total (4xx) */
    atomic_ullong ingest_duplicates;       /* ferry_producer_ingest_duplicates_total */
} producer_metrics;

/* Adds n to a counter (relaxed: counters only). */
#define PRODUCER_COUNT(field, n) atomic_fetch_add_explicit(&(field), (n), memory_order_relaxed)

typedef struct producer_emitter producer_emitter;

/* Where an acknowledged event landed. */
typedef struct producer_receipt {
    char event_id[40];
    const char *topic; /* the emitter's; valid while it lives */
    int32_t partition;
    int64_t offset;
} producer_receipt;

/* with_redis: also open the shared Redis connection (serve). NULL + errstr on failure. */
producer_emitter *producer_emitter_new(const ferry_conf *conf, int with_redis, char *errstr,
                                       size_t errstr_size);
/* Flushes (up to 10 s) and frees. Returns the number of events not delivered. NULL-safe. */
int producer_emitter_destroy(producer_emitter *em);

/* Completes ev -- a random event id if it has none, requested_at = now if 0,
 * requested_by = "unknown" if NULL -- validates it (ferry_onboard_validate), encodes it and
 * publishes it keyed by the dataset, returning only after the broker acknowledged it.
 * PERMANENT invalid-spec: bad event (nothing sent). RETRYABLE kafka: not published.
 * Thread-safe. */
ferry_rc producer_emit(producer_emitter *em, ferry_onboard *ev, producer_receipt *out,
                       ferry_error *err);

/* One-shot use (publish): producer_emit gives up delivering at deadline_ms (ferry_mono_ms)
 * and leaves the failure to the caller's final line instead of logging it. */
void producer_emitter_set_deadline(producer_emitter *em, int64_t deadline_ms);

/* The shared Redis connection, for one short operation at a time:
 * lock, use, unlock. NULL if the emitter was made without Redis. */
ferry_redis *producer_redis_lock(producer_emitter *em);
void producer_redis_unlock(producer_emitter *em);

const char *producer_topic(const producer_emitter *em);
producer_metrics *producer_metrics_of(producer_emitter *em);
/* The shared Kafka producer handle (thread-safe; e.g. for a readiness probe). */
rd_kafka_t *producer_kafka_of(producer_emitter *em);

/* ---- producer_sync.c: catalog snapshot -> exactly the changed entities published --- */

typedef struct producer_item {
    const char *ref;     /* the entity's identity: "component:default/x", "registry:x" */
    const char *uid;     /* informational, may be NULL */
    const char *etag;    /* informational, may be NULL */
    ferry_onboard *spec; /* built by the source; no event id. sync fills the rest. */
    const char *invalid; /* non-NULL: the source could not build a spec, this says why
                           (reported once per distinct reason; the ref counts as seen) */
} producer_item;

typedef struct producer_source {
    const char *name; /* "backstage", "registry": names the change state */
    ferry_origin origin;
    ferry_changes *changes;
    producer_emitter *em;
} producer_source;

typedef struct producer_sync_stats {
    unsigned items, published, unchanged, invalid, removed;
} producer_sync_stats;

/* Publishes every item whose spec hash differs from the last one published for its ref
 * (ferry_changes.h has the protocol). `complete`: the items are the whole catalog, so refs
 * seen before and missing now are reported as removed (logged; no event). Returns
 * RETRYABLE when Kafka or Redis failed: the round stopped, nothing is lost -- the next
 * round retries (and does not report removals). */
ferry_rc producer_sync_round(producer_source *src, producer_item *items, size_t n, int complete,
                             producer_sync_stats *st, ferry_error *err);

/* ---- stop signal shared by the source threads ------------------------------------- */

typedef struct producer_stop {
    int fds[2]; /* a pipe: readable once stop was requested */
} producer_stop;

int producer_stop_init(producer_stop *s);
void producer_stop_request(producer_stop *s); /* async-signal-safe */
/* Sleeps up to ms; returns 1 if stop was requested (at once when it is). */
int producer_stop_wait(producer_stop *s, int64_t ms);
void producer_stop_close(producer_stop *s);

/* ---- sources (threads) ------------------------------------------------------------ */

typedef struct producer_ctx {
    const ferry_conf *conf;
    producer_emitter *em;
    producer_stop *stop;
} producer_ctx;

/* Thread bodies; arg is a producer_ctx*. They return when stop is requested. */
void *producer_backstage_thread(void *arg);
void *producer_registry_thread(void *arg);

/* Registers GET /v1/datasets/NAME and, if accept_events, POST /v1/events on h. The
 * routes use FERRY_HTTP_AUTH. ctx must outlive h. Returns 0 or -1. */
int producer_ingest_routes(ferry_http *h, producer_ctx *ctx, int accept_events);

/* producer_observe.c: GET /metrics, /healthz, /readyz on the same listener (no token).
 * Returns 0, or -1 + errstr. producer_observe_stop() after the server is destroyed. */
int producer_observe_routes(ferry_http *h, producer_ctx *ctx, char *errstr, size_t errstr_size);
void producer_observe_stop(void);

/* The conf table of `serve` (also accepted by publish, which ignores it). */
extern const ferry_conf_def producer_serve_defs[];

#endif
