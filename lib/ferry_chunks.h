/* ferry_chunks: the Redis bookkeeping of a dataset split into key-range chunks.
 *
 * Keys (all in the parent dataset's hash slot):
 *   ferry:{<dataset>}:chunks        hash  event (the parent event id the plan belongs to),
 *                                         n (chunk count, set once the plan is complete),
 *                                         published (chunk events acknowledged by Kafka),
 *                                         end:<i> (upper bound key of chunk i),
 *                                         bounds (how many end:<i> there are)
 *   ferry:{<dataset>}:chunks_done   set   indices of finished chunks
 *   ferry:{<dataset>}:chunk_counts  hash  i -> "<objects> <bytes>"
 *
 * The plan grows while the splitter lists the dataset: bound i is recorded before chunk
 * i's event is published, so the fleet copies the first chunks while the rest is still
 * being listed. Crash safety: a splitter that dies resumes publishing from `published`
 * and listing after the last recorded bound (bounds already recorded are never changed);
 * a chunk published twice has the same deterministic event id, so its second delivery
 * finds it running or done. `n` is set (the plan complete) before the last chunk, the
 * only open-ended one, is published, so the chunk that completes the done set sees n;
 * finishing a chunk is an idempotent SADD, and whoever completes the set finalizes the
 * parent through the parent's own lease.
 * One thread at a time per ferry_redis handle, as always. */
#ifndef FERRY_CHUNKS_H
#define FERRY_CHUNKS_H

#include <stdint.h>

#include "ferry_error.h"
#include "ferry_redis.h"

/* The plan of `event_id`: *n = chunk count (-1 while incomplete), *published, *bounds
 * (end keys recorded so far). A plan left by another event id is dropped first (with the
 * done set and counts). */
ferry_rc ferry_chunks_plan_get(ferry_redis *r, const char *dataset, const char *event_id,
                               int64_t *n, int64_t *published, int64_t *bounds,
                               ferry_error *err);
/* Forgets any plan and starts one for event_id. */
ferry_rc ferry_chunks_plan_reset(ferry_redis *r, const char *dataset, const char *event_id,
                                 ferry_error *err);
ferry_rc ferry_chunks_plan_add(ferry_redis *r, const char *dataset, int64_t index,
                               const char *end_key, ferry_error *err);
ferry_rc ferry_chunks_plan_complete(ferry_redis *r, const char *dataset, int64_t n,
                                    ferry_error *err);
/* Chunk i covers (*start_after, *end_key]; either is NULL when unbounded (n < 0: the
 * plan is still growing, and chunk i must have its end already). Heap strings. */
ferry_rc ferry_chunks_range(ferry_redis *r, const char *dataset, int64_t index, int64_t n,
                            char **start_after, char **end_key, ferry_error *err);
ferry_rc ferry_chunks_set_published(ferry_redis *r, const char *dataset, int64_t published,
                                    ferry_error *err);
/* Records chunk `index` of event_id's plan as finished with its counts. *done and *n
 * tell how many of how many are finished (n = -1 if the plan is not event_id's, -2 while
 * it is still growing). */
ferry_rc ferry_chunks_finish(ferry_redis *r, const char *dataset, const char *event_id,
                             int64_t index, int64_t objects, int64_t bytes, int64_t *done,
                             int64_t *n, ferry_error *err);
/* Sums the finished chunks' counts. */
ferry_rc ferry_chunks_totals(ferry_redis *r, const char *dataset, int64_t *objects,
                             int64_t *bytes, ferry_error *err);
/* The state-key name of chunk i: "<dataset>#<i>" ('#' never appears in dataset names). */
void ferry_chunks_name(const char *dataset, int64_t index, char *out, size_t size);
/* The deterministic event id of chunk i of parent event `parent` (UUID text, 37 bytes). */
void ferry_chunks_event_id(const char *parent, int64_t index, char out[37]);

#endif
