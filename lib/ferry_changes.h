/* ferry_changes: the producer's change detection and event-id dedupe, kept in Redis
 * (DESIGN.md section 4), so that each change of a catalog entity becomes exactly one
 * DatasetOnboard event -- not again after a producer restart, never for an unchanged
 * entity.
 *
 * Keys:
 *   ferry:changes:{<source>}:published   hash   entity ref -> record (JSON):
 *       {"hash":<spec hash>,"gen":<n>,"event_id":..,"dataset":..,"uid":..,"etag":..,"at":ms}
 *   ferry:changes:event:{<event id>}      string dedupe of client-chosen event ids:
 *       "inflight" (PX short) while publishing, then the receipt JSON (EX ttl)
 *
 * The protocol, per entity and change:
 *   1. ferry_changes_check(ref, hash): compares with what was LAST PUBLISHED (in-memory
 *      cache first, Redis on a miss). Same hash -> nothing to do. Otherwise it returns the
 *      next generation and a deterministic event id for it.
 *   2. The caller publishes and waits for the broker's acknowledgement.
 *   3. ferry_changes_record(): only now is the new hash written to Redis.
 * A crash between 2 and 3 re-publishes after the restart -- at-least-once, never lost --
 * and because the event id is derived from (source, ref, hash, generation), the duplicate
 * carries the SAME event id, which the worker treats as the same migration (already done,
 * or resumed from its checkpoint). In every run without a crash, one change is one event.
 * Two producers polling the same catalog likewise publish the same event id for a change.
 *
 * A failed record after a successful publish (Redis went away) is kept in memory and
 * retried by the next check of that ref, so it is not re-published meanwhile.
 *
 * Threads: a ferry_changes is used by one thread at a time (one per source); the
 * ferry_redis handle passed in follows ferry_redis's own rule. */
#ifndef FERRY_CHANGES_H
#define FERRY_CHANGES_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_error.h"
#include "ferry_event.h"
#include "ferry_redis.h"

#define FERRY_CHANGES_HASH_LEN 16 /* hex digits */
#define FERRY_CHANGES_REF_MAX 1024

/* The hash of what defines a migration: dataset name + ferry_state_spec_hash() (source,
 * target, verify, overwrite, include/exclude). Status, owner, etag, times and the
 * inventory (a splitting hint that S3 renames daily) are not in it, so ferry's own status
 * write-back or a new inventory never looks like a change. */
void ferry_changes_spec_hash(const ferry_onboard *ev, char out[FERRY_CHANGES_HASH_LEN + 1]);

/* Deterministic event id (UUID version 8, RFC 9562) from SHA-256 of the inputs. */
void ferry_changes_event_id(const char *source, const char *ref, const char *hash, int64_t gen,
                            char out[37]);

typedef struct ferry_changes ferry_changes;

/* source: "backstage", "registry", ... ([a-z0-9._-]{1,32}); it names the Redis hash. */
ferry_changes *ferry_changes_new(const char *source, char *errstr, size_t errstr_size);
void ferry_changes_destroy(ferry_changes *c); /* NULL-safe */

typedef struct ferry_change {
    int publish; /* 1: publish with event_id, then ferry_changes_record() */
    int64_t gen; /* generation of this spec for this ref (1 = first) */
    char event_id[37];
    char hash[FERRY_CHANGES_HASH_LEN + 1];
    char prev_hash[FERRY_CHANGES_HASH_LEN + 1]; /* "" if never published */
} ferry_change;

/* Step 1 above. Also marks ref as seen in the current round. RETRYABLE on Redis
 * errors (nothing decided: try again later). */
ferry_rc ferry_changes_check(ferry_changes *c, ferry_redis *r, const char *ref,
                             const char *hash, ferry_change *out, ferry_error *err);

/* Step 3: records ch (after the broker acknowledged the event). uid, etag, dataset are
 * informational (may be NULL). On a Redis error the record is kept in memory, retried
 * by the next check of ref, and the error returned. */
ferry_rc ferry_changes_record(ferry_changes *c, ferry_redis *r, const char *ref,
                              const ferry_change *ch, const char *dataset, const char *uid,
                              const char *etag, ferry_error *err);

/* Rounds: a source calls begin_round() before a complete listing and end_round() after
 * it; refs that were known (checked in an earlier round) but not checked in this one are
 * reported to removed() and forgotten in memory. Their Redis record stays, so an entity
 * that comes back with the same spec publishes nothing. Call end_round() ONLY after a
 * complete listing: a partial one must never look like removals. */
typedef void (*ferry_changes_removed_cb)(const char *ref, void *opaque);
void ferry_changes_begin_round(ferry_changes *c);
size_t ferry_changes_end_round(ferry_changes *c, ferry_changes_removed_cb removed,
                               void *opaque);

/* Returns 1 the first time (ref, hash) is reported invalid, 0 afterwards: lets a poller
 * warn once per bad version instead of at every poll. Forgotten with the ref. */
int ferry_changes_note_invalid(ferry_changes *c, const char *ref, const char *hash);

/* ---- event-id dedupe (client-chosen ids, e.g. POST /v1/events retried) ------------- */

typedef enum {
    FERRY_DEDUPE_NEW = 0,  /* claimed: publish, then commit (or release on failure) */
    FERRY_DEDUPE_INFLIGHT, /* another request with this id is publishing right now */
    FERRY_DEDUPE_DONE,     /* published before: *receipt holds what commit stored */
} ferry_dedupe_state;

/* SET key "inflight" NX PX inflight_ms; else reads the key. *receipt (DONE only) is
 * malloc'd; the caller frees it. */
ferry_rc ferry_changes_dedupe_claim(ferry_redis *r, const char *event_id, int64_t inflight_ms,
                                    ferry_dedupe_state *state, char **receipt,
                                    ferry_error *err);
/* SET key receipt EX ttl_s. */
ferry_rc ferry_changes_dedupe_commit(ferry_redis *r, const char *event_id, const char *receipt,
                                     int64_t ttl_s, ferry_error *err);
/* Deletes the claim if it is still "inflight" (the publish failed; the client may retry). */
ferry_rc ferry_changes_dedupe_release(ferry_redis *r, const char *event_id, ferry_error *err);

#endif
