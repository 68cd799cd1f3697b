#ifndef FERRY_WORKER_STATUS_H
#define FERRY_WORKER_STATUS_H

#include <jansson.h>

#include "ferry_conf.h"
#include "ferry_error.h"
#include "ferry_redis.h"
#include "ferry_state.h"

/* `ferry-worker status`: every migration in Redis with progress, rate and ETA.
 * Returns an exit code. */
/* timeout_ms bounds connecting to Redis (without --watch, a failure to is final). */
int worker_status_main(const ferry_conf *conf, int watch, int json, int timeout_ms);

/* Every migration in Redis as a JSON array sorted by name -- what `status --json` prints
 * and what the status page gets from GET /v1/migrations. One object per migration:
 * dataset, chunk_of (the parent dataset of a fan-out chunk "<dataset>#<i>", else null),
 * status, event_id, worker, source, target, objects_done, objects_total (null = not
 * counted yet), bytes_done, progress (0..1 or null), objects_per_second and
 * bytes_per_second (averages over the current attempt), eta_seconds (null = unknown),
 * attempts, started_at_ms, attempt_started_at_ms (0 = not recorded), updated_at_ms, finished_at_ms, checkpoint, last_error, error_class.
 * On FERRY_OK the caller owns *out. r: one thread at a time, as always. */
ferry_rc worker_status_json(ferry_redis *r, json_t **out, ferry_error *err);

/* Rates of one migration at `now` (ms since the epoch), averaged over its current
 * attempt: what it copied since that attempt took the lease, over the time since then
 * (until it finished). A state without attempt fields (written by an older worker) is
 * averaged over its whole life. 0 while under half a second. */
double worker_status_rate(const ferry_migration_state *st, int64_t now);
double worker_status_byte_rate(const ferry_migration_state *st, int64_t now);
/* Seconds left at `rate` objects/s for a running migration with a known total; -1 when
 * unknown. */
double worker_status_eta(const ferry_migration_state *st, double rate);

#endif
