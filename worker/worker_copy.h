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

worker_copier *worker_copier_new(const ferry_conf *conf, char *errstr, size_t errstr_size);
void worker_copier_destroy(worker_copier *c);

typedef struct worker_copy_progress {
    const char *checkpoint;   /* in: resume after this key (borrowed); NULL = from the start */
    char *checkpoint_owned;   /* internal; the caller frees it */
    int64_t objects_done;     /* in/out: absolute counts, as stored in Redis */
    int64_t bytes_done;
    int64_t objects_total;    /* in/out: -1 = not known yet */
    int64_t objects_skipped;  /* out: already identical at the target, not copied */
    int64_t objects_copied;   /* out: copy requests that succeeded in this run */
} worker_copy_progress;

/* Copies ev's source to its target. should_stop(opaque) is checked between objects; when
 * it says stop, the engine checkpoints and returns FERRY_ERR_CANCELLED. resumed: the
 * checkpoint belongs to this very event, so the objects just past it may already be at
 * the target and are checked before being copied again. */
ferry_rc worker_copy_dataset(worker_copier *c, ferry_redis *redis, const ferry_lease *lease,
                             const ferry_onboard *ev, int resumed, worker_copy_progress *prog,
                             int (*should_stop)(void *), void *opaque, ferry_error *err);

#endif
