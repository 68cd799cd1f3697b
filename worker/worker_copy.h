/* The copy engine: validate the two locations, then list the source page by page
 * (ListObjectsV2 from the checkpoint), copy each page with many requests in flight,
 * verify, and advance the checkpoint -- the largest key K such that every source key
 * <= K is copied and verified -- through fenced Redis writes. Memory stays flat: one
 * page of keys at a time, whatever the dataset size. */
#ifndef FERRY_WORKER_COPY_H
#define FERRY_WORKER_COPY_H

#include <stdint.h>

#include "ferry_conf.h"
#include "ferry_error.h"
#include "ferry_event.h"
#include "ferry_redis.h"
#include "ferry_state.h"

typedef struct worker_copier worker_copier; /* one per migration thread */

struct ferry_limiters;
/* limiters (borrowed, may be NULL: fixed copy.max_in_flight) gives each store its
 * endpoint's shared in-flight limiter. */
worker_copier *worker_copier_new(const ferry_conf *conf, struct ferry_limiters *limiters,
                                 char *errstr, size_t errstr_size);
void worker_copier_destroy(worker_copier *c);

typedef struct worker_copy_progress {
    const char *checkpoint; /* in: resume after this key (borrowed); NULL = from the start */
    char *checkpoint_owned; /* internal; the caller frees it */
    int64_t objects_done;   /* in/out: absolute counts, as stored in Redis */
    int64_t bytes_done;
    int64_t objects_total;   /* in/out: -1 = not known yet */
    int total_lower_bound;   /* out: objects_total counts what was listed so far (no count
                               * before copying); exact once the listing ends */
    int64_t objects_skipped; /* out: already identical at the target, not copied */
    int64_t objects_copied;  /* out: copy requests that succeeded in this run */
    /* in/out, absolute like objects_done (= copied + identical): how each object ended */
    int64_t copied;              /* copied and verified */
    int64_t identical;           /* already identical at the target */
    int64_t vanished;            /* listed, then gone from the source: not a failure */
    int64_t failed;              /* a permanent error on that object alone: in the report */
    ferry_error last_object_err; /* out: the latest object failure (class, message) */
    int64_t started_at_ms;       /* in: when this event's migration started (Redis clock); an
                                 object written at the target since then with the source's
                                 size is ferry's own copy. 0 = unknown */
    int recheck;                 /* in: check every object at the target before copying it (a
                                 replay after failed_objects copies only what is missing) */
    /* internal (set by prepare): the copy began without the count that decides the split;
     * once it has listed more than this many keys with more to come, it stops after the
     * page, with count_due set (out) and the checkpoint written, for worker_copy_count */
    int64_t count_after;
    int count_due;
    int swept; /* internal: the target's stale multipart uploads were swept (once a run) */
} worker_copy_progress;

/* Before any byte moves: the source is listable, the target bucket exists and takes
 * writes, the two do not overlap on one endpoint. An endpoint outage met here is waited
 * out as during the copy, and recorded as the migration's last error under lease (redis
 * and lease may be NULL: then only logged). With count set and prog->objects_total < 0,
 * also counts the selected source objects (one LIST per 1000 keys) into it; once the
 * count passes fanout.min_objects it stops there, with prog->total_lower_bound set. A
 * fresh dataset of more than one page is not counted here when fanout.copy_before_count
 * is set: the copy counts as it lists and stops for worker_copy_count past that many. A
 * dataset with an S3 Inventory listing more than fanout.min_objects of its objects is
 * counted from the inventory instead, its chunk bounds kept for worker_copy_boundaries. */
ferry_rc worker_copy_prepare(worker_copier *c, ferry_redis *redis, const ferry_lease *lease,
                             const ferry_onboard *ev, int count, worker_copy_progress *prog,
                             int (*should_stop)(void *), void *opaque, ferry_error *err);

/* For a copy that stopped with prog->count_due: counts the selected source objects from
 * the start, as worker_copy_prepare does, into prog->objects_total (a lower bound once
 * past fanout.min_objects), so that the caller decides the split; the copy then goes on
 * from prog->checkpoint if it is not split. */
ferry_rc worker_copy_count(worker_copier *c, ferry_redis *redis, const ferry_lease *lease,
                           const ferry_onboard *ev, worker_copy_progress *prog,
                           int (*should_stop)(void *), void *opaque, ferry_error *err);

/* Writes one small object to the target endpoint (the JSON-lines failure report). */
ferry_rc worker_copy_put_object(worker_copier *c, const char *bucket, const char *key,
                                const void *data, size_t len, const char *content_type,
                                ferry_error *err);

/* Receives chunk bounds in increasing order; more = another one follows at once, with no
 * listing in between (a caller may batch what it does with them). */
typedef ferry_rc (*worker_copy_bound_cb)(const char *bound, int more, void *opaque);

/* Lists the selected source keys after start_after (NULL: from the first) in order and
 * calls cb with every `every`-th one: the upper bounds of key-range chunks, as they are
 * found. From the start, the bounds this event's count already found are handed over
 * first. *walked: the selected keys after start_after. Holds one page at a time.
 * With a delimiter (may be NULL or ""), the bounds after those are the source's common
 * prefixes where it has at least two (worker_copy_split.c), found without walking the
 * keys: then *walked is -1. */
ferry_rc worker_copy_boundaries(worker_copier *c, ferry_redis *redis, const ferry_lease *lease,
                                const ferry_onboard *ev, const char *start_after, int64_t every,
                                const char *delimiter, worker_copy_bound_cb cb, void *opaque,
                                int (*should_stop)(void *), void *stop_opaque, int64_t *walked,
                                ferry_error *err);

/* Copies ev's source to its target (for a chunk event, only its key range), after
 * worker_copy_prepare. A permanent error on one object (scope OBJECT or VANISHED, see
 * ferry_objstore_object_scope) does not stop the copy: the object is counted in
 * prog->failed or prog->vanished and recorded in the report, and the checkpoint passes
 * it. More than copy.max_failed_objects failures (or copy.max_failed_percent of the
 * objects) fail the dataset permanently with the last object's class. FERRY_OK with
 * prog->failed > 0 is for the caller to end as failed_objects. should_stop(opaque) is checked between objects; when
 * it says stop, the engine checkpoints and returns FERRY_ERR_CANCELLED. resumed: the
 * checkpoint belongs to this very event, so the objects just past it may already be at
 * the target and are checked before being copied again. */
ferry_rc worker_copy_dataset(worker_copier *c, ferry_redis *redis, const ferry_lease *lease,
                             const ferry_onboard *ev, int resumed, worker_copy_progress *prog,
                             int (*should_stop)(void *), void *opaque, ferry_error *err);

#endif
