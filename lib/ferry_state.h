/* ferry_state: a migration's state, lease and checkpoint in Redis (DESIGN.md §4).
 *
 * Keys (the dataset is a hash tag, so all three share one Redis Cluster slot):
 *   ferry:{<dataset>}:state   hash    see ferry_migration_state below
 *   ferry:{<dataset>}:lease   string  "<worker>:<fence>", PX ttl
 *   ferry:{<dataset>}:fence   counter INCR on every successful acquire; never reset
 *
 * Fencing: every acquire takes a new fence. Renew, checkpoint, done and failed run as Lua
 * scripts that refuse unless the lease still reads "<worker>:<fence>" (and, for writes to
 * the state hash, state.fence == fence), so a worker that was paused past its lease cannot
 * overwrite a newer owner's progress. A refusal is rc FERRY_ERR_CANCELLED with class
 * FERRY_EC_FENCED: stop at once, someone else owns the migration; it is not a failure.
 *
 * Timestamps (started_at, updated_at, finished_at; ms since the epoch) are the Redis
 * server's clock (TIME inside the scripts), so worker clock skew does not matter.
 *
 * Least-privilege Redis ACL (Redis 7 also checks the commands a script calls):
 *   ~ferry:* +@connection +select +eval +evalsha +script|load +time +get +set +incr
 *   +pexpire +pttl +del +hget +hmget +hset +hsetnx +hdel +hincrby +hgetall +hlen +hexists
 *   +scan
 * (without script|load every call uses EVAL; tests/integration/test_state.c runs all
 * operations under exactly this ACL.)
 *
 * Every function takes a ferry_redis handle and so inherits its rule: one thread at a
 * time per handle. Redis errors come back classified as in ferry_redis.h (Redis down is
 * RETRYABLE: wait and retry, never skip). */
#ifndef FERRY_STATE_H
#define FERRY_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_error.h"
#include "ferry_event.h"
#include "ferry_redis.h"

#define FERRY_STATE_DATASET_MAX 200 /* bytes; keys are refused beyond this */
#define FERRY_STATE_WORKER_MAX 128  /* bytes of a worker id */
#define FERRY_STATE_KEY_MAX (FERRY_STATE_DATASET_MAX + 32)
#define FERRY_STATE_LEASE_TTL_MAX_MS (24LL * 3600 * 1000)

#define FERRY_STATE_KEY_STATE "state"
#define FERRY_STATE_KEY_LEASE "lease"
#define FERRY_STATE_KEY_FENCE "fence"

/* ---- keys (pure) ------------------------------------------------------------------ */

/* 1 if dataset may appear in a key: 1..200 bytes, no '{', '}', control bytes (< 0x20,
 * 0x7f). The real name rule (^[a-z0-9][a-z0-9._-]{0,62}$) is enforced where events are
 * validated; this is defence in depth against a name that would escape the hash tag. */
int ferry_state_dataset_ok(const char *dataset);

/* Writes "ferry:{<dataset>}:<suffix>" into buf. suffix is [a-z0-9_.-]{1,16}. Returns
 * FERRY_OK, or FERRY_ERR_PERMANENT class "invalid-spec" for a hostile dataset name,
 * "internal" for a bad suffix or a buffer too small. */
ferry_rc ferry_state_key(char *buf, size_t size, const char *dataset, const char *suffix,
                         ferry_error *err);

/* The dataset of a state key "ferry:{<dataset>}:state" (as SCAN returns it) into out.
 * Returns 0, or -1 if key is not such a key or the name is not ferry_state_dataset_ok. */
int ferry_state_key_dataset(const char *key, size_t keylen, char *out, size_t outsz);

/* The spec hash stored with a migration: 16 lowercase hex digits (FNV-1a 64) over the
 * source URI, target URI, verify, overwrite policy, include/exclude prefixes (in the
 * order given), each length-prefixed; not source_inventory (a hint for splitting, not part
 * of what is copied). Two events with equal hashes ask for the same copy. out must hold 17
 * bytes. */
void ferry_state_spec_hash(const ferry_onboard *ev, char out[17]);

/* ---- state ------------------------------------------------------------------------ */

typedef enum {
    FERRY_MIG_NONE = 0, /* no state hash for this dataset */
    FERRY_MIG_PENDING,  /* a lease was released before the end; the next owner resumes */
    FERRY_MIG_RUNNING,
    FERRY_MIG_DONE,
    FERRY_MIG_FAILED,
    FERRY_MIG_FAILED_OBJECTS, /* finished, but some objects failed: see the report */
    FERRY_MIG_UNKNOWN,        /* a status value this version does not know */
} ferry_mig_status;

const char *ferry_mig_status_name(ferry_mig_status s);            /* "none", "pending", ... */
int ferry_mig_status_parse(const char *s, ferry_mig_status *out); /* 0 ok, -1 unknown */

/* The state hash, read by ferry_state_get(). Strings are heap-owned by the struct and NULL
 * when the field is absent or empty; free with ferry_migration_state_clear(). */
typedef struct ferry_migration_state {
    char *dataset;
    ferry_mig_status status;
    char *event_id;
    char *worker;  /* the last owner */
    int64_t fence; /* the last owner's fence */
    char *source_uri;
    char *target_uri;
    char *spec_hash;
    int64_t started_at_ms; /* 0 = absent */
    int64_t updated_at_ms;
    int64_t finished_at_ms;
    int64_t objects_done;
    int64_t bytes_done;
    int64_t objects_total;         /* -1 = not known */
    int objects_total_lower_bound; /* 1: the source is still being listed; the total is
                                    * at least objects_total ("n of >= m") */
    int64_t attempts;              /* acquisitions for this event id */
    /* outcome counts (absolute, 0 when absent): objects_done = copied + identical */
    int64_t objects_copied;        /* copied and verified */
    int64_t objects_identical;     /* already identical at the target, not copied */
    int64_t objects_vanished;      /* listed, then gone from the source (404 on copy) */
    int64_t objects_failed;        /* a permanent error on that one object; in the report */
    char *report;                  /* Redis key of the failure report (a hash), NULL = none */
    char *report_object;           /* s3:// URI of the JSON-lines copy of the report, or NULL */
    int64_t attempt_started_at_ms; /* when the current attempt took the lease; 0 = absent */
    int64_t attempt_objects;       /* objects_done / bytes_done when it started */
    int64_t attempt_bytes;
    char *checkpoint; /* every source key <= this is copied and verified; NULL = none */
    char *last_error;
    char *error_class;
    char *verify; /* how copies were verified, e.g. "checksum-sha256,size"; NULL = none yet */
    /* lease, read in the same atomic script */
    char *lease_holder;   /* "<worker>:<fence>", NULL = no lease */
    int64_t lease_ttl_ms; /* remaining, -1 = no lease */
} ferry_migration_state;

void ferry_migration_state_clear(ferry_migration_state *st);

/* 0..1 (done: 1), or -1 when unknown: no total yet, or the total is only a lower bound
 * (the source is still being listed: done/listed would show a nearly full bar). */
double ferry_migration_progress(const ferry_migration_state *st);

/* Reads the state of one dataset. FERRY_OK with out->status FERRY_MIG_NONE when there is
 * none. out is overwritten (clear it before reusing). */
ferry_rc ferry_state_get(ferry_redis *r, const char *dataset, ferry_migration_state *out,
                         ferry_error *err);

/* Iterates over the datasets that have a state hash, with SCAN MATCH ferry:{*}:state
 * (never KEYS). SCAN semantics: a dataset present for the whole iteration is returned at
 * least once, possibly more than once; one created or deleted meanwhile may or may not
 * appear. A failed next() keeps the cursor, so calling it again retries the same step. */
typedef struct ferry_state_iter ferry_state_iter;

/* count_hint is SCAN's COUNT (0 = 100). r is borrowed and must outlive the iterator. */
ferry_state_iter *ferry_state_iter_new(ferry_redis *r, unsigned count_hint);
/* FERRY_OK and *dataset set to the next name (valid until the next call), or to NULL
 * when the iteration is complete. */
ferry_rc ferry_state_iter_next(ferry_state_iter *it, const char **dataset, ferry_error *err);
void ferry_state_iter_destroy(ferry_state_iter *it); /* NULL-safe */

/* ---- lease ------------------------------------------------------------------------ */

/* What a worker holds while it owns a migration; pass it to every fenced call. */
typedef struct ferry_lease {
    char dataset[FERRY_STATE_DATASET_MAX + 1];
    char worker[FERRY_STATE_WORKER_MAX + 1];
    int64_t fence;
    int64_t ttl_ms;
} ferry_lease;

typedef struct ferry_acquire_req {
    const char *dataset;
    const char *worker;     /* this worker's id: 1..128 bytes, no control bytes */
    const char *event_id;   /* required */
    const char *spec_hash;  /* ferry_state_spec_hash(); may be "" */
    const char *source_uri; /* stored for the status command; may be NULL */
    const char *target_uri;
    int64_t ttl_ms; /* 1 .. FERRY_STATE_LEASE_TTL_MAX_MS */
} ferry_acquire_req;

typedef enum {
    FERRY_ACQUIRE_OK = 0,       /* lease taken; see lease, resumed, checkpoint, counts */
    FERRY_ACQUIRE_BUSY,         /* another worker holds the lease: holder, holder_ttl_ms */
    FERRY_ACQUIRE_ALREADY_DONE, /* status done with the same event id and spec hash;
                                   nothing was changed (the caller decides: no-op) */
} ferry_acquire_outcome;

typedef struct ferry_acquire_result {
    ferry_acquire_outcome outcome;
    /* OK */
    ferry_lease lease;
    int resumed;          /* 1: same event and spec, not done: continue from checkpoint */
    int took_over;        /* 1: the lease was ours already (same worker id, e.g. restarted
                               pod); it got a new fence, the old one is now refused */
    char *checkpoint;     /* heap; NULL = start from the beginning */
    int64_t objects_done; /* with the checkpoint (0 on a fresh start) */
    int64_t bytes_done;
    int64_t objects_total;  /* -1 = unknown */
    int64_t attempts;       /* 1 on a fresh start, +1 per resume */
    int64_t objects_copied; /* outcome counts with the checkpoint (see the state) */
    int64_t objects_identical;
    int64_t objects_vanished;
    int64_t objects_failed;
    int64_t started_at_ms; /* when this event's migration started (Redis clock) */
    int recheck;           /* 1: this event ended failed_objects before (a replay): start
                               over, but check every object at the target first */
    /* BUSY */
    char *holder; /* heap, "<worker>:<fence>" */
    int64_t holder_ttl_ms;
    /* ALREADY_DONE (objects_done and bytes_done are also set) */
    int64_t finished_at_ms;
} ferry_acquire_result;

void ferry_acquire_result_clear(ferry_acquire_result *res); /* frees the heap strings */

/* Takes the lease for req->dataset unless someone else holds it, or reports that this
 * exact event and spec already finished (status done). The same event after
 * failed_objects starts over with recheck set (its report is dropped). On OK the state
 * becomes running with this worker, fence and event; when resumed, the checkpoint, counts, started_at and
 * last_error are kept, otherwise they are reset. Returns FERRY_OK for all three outcomes;
 * an error only when Redis could not answer or the request is invalid. */
ferry_rc ferry_state_acquire(ferry_redis *r, const ferry_acquire_req *req,
                             ferry_acquire_result *res, ferry_error *err);

/* Heartbeat: PEXPIRE the lease by lease->ttl_ms if it still reads "<worker>:<fence>".
 * FERRY_ERR_CANCELLED "fenced" when it does not (expired, or taken over). */
ferry_rc ferry_state_renew(ferry_redis *r, const ferry_lease *lease, ferry_error *err);

/* Gives the lease up (revocation, shutdown) keeping the checkpoint: compare-and-delete,
 * and status running -> pending when state.fence is still ours, so the status command
 * shows it as waiting to resume. FERRY_ERR_CANCELLED "fenced" if it was not ours any more
 * (nothing changed). */
ferry_rc ferry_state_release(ferry_redis *r, const ferry_lease *lease, ferry_error *err);

/* ---- progress and outcome ---------------------------------------------------------- */

/* One line of a failure report: a source key that failed (or vanished) and why. */
typedef struct ferry_report_entry {
    const char *key;     /* the source key */
    const char *outcome; /* "failed" or "vanished" */
    const char *cls;     /* error class (FERRY_EC_*) */
    const char *message;
} ferry_report_entry;

#define FERRY_STATE_REPORT_MAX 10000 /* entries kept per report; the counts go on */
#define FERRY_STATE_REPORT_TTL_MS                                                              \
    (30LL * 24 * 3600 * 1000) /* a report outlives its DLQ
                                                              * record long enough to act */

/* The report of one event's migration: the hash "ferry:{<dataset>}:report:<event_id>"
 * (field = source key, value = one JSON object {"key","outcome","class","message"}). */
ferry_rc ferry_state_report_key(char *buf, size_t size, const char *dataset,
                                const char *event_id, ferry_error *err);

typedef struct ferry_checkpoint {
    const char *key;      /* every source key <= key is copied and verified, or recorded
                              as failed/vanished in the report; not NULL */
    int64_t objects_done; /* absolute values, so a retried write is harmless */
    int64_t bytes_done;
    int64_t objects_total; /* < 0: leave unchanged */
    /* outcome counts, absolute; < 0: leave unchanged */
    int64_t objects_copied, objects_identical, objects_vanished, objects_failed;
    const char *event_id;             /* names the report; needed with report entries */
    const ferry_report_entry *report; /* appended in the same atomic write (may be NULL) */
    size_t nreport;
    int total_lower_bound; /* 1: objects_total is a lower bound (listing not finished) */
} ferry_checkpoint;

/* Records progress if the lease and state.fence are still ours; sets updated_at. Report
 * entries go into the bounded report hash in the same script (beyond
 * FERRY_STATE_REPORT_MAX entries only the counts grow), so the checkpoint never passes a
 * failed key that is not recorded. FERRY_ERR_CANCELLED "fenced" otherwise (nothing
 * written). */
ferry_rc ferry_state_checkpoint(ferry_redis *r, const ferry_lease *lease,
                                const ferry_checkpoint *cp, ferry_error *err);

/* Adds methods (comma-separated, e.g. "checksum-crc32c,etag-md5,size": how objects were
 * verified) to the state's `verify` field, a set that only grows during a migration (a new
 * migration starts a new state hash). Fenced like a checkpoint. */
ferry_rc ferry_state_note_verify(ferry_redis *r, const ferry_lease *lease, const char *methods,
                                 ferry_error *err);
/* While running: last_error and error_class, so the status view shows at once why a
 * migration is waiting (an S3 endpoint down or stalled); status is unchanged, and
 * mark_done clears them. Fenced like a checkpoint; message truncated like mark_failed's. */
ferry_rc ferry_state_note_error(ferry_redis *r, const ferry_lease *lease,
                                const char *error_class, const char *message, ferry_error *err);

/* status=done, finished_at, final counts (objects_total < 0: leave), clears last_error
 * and error_class, deletes the lease -- one atomic, fenced script. Idempotent: retried
 * after a lost reply it finds its own fence already done and returns FERRY_OK. */
ferry_rc ferry_state_mark_done(ferry_redis *r, const ferry_lease *lease, int64_t objects_done,
                               int64_t bytes_done, int64_t objects_total, ferry_error *err);

/* status=failed_objects: the copy went through every object but some failed (counts and
 * report written by the last checkpoint); error_class/last_error say so. Fenced,
 * idempotent like mark_done. */
ferry_rc ferry_state_mark_failed_objects(ferry_redis *r, const ferry_lease *lease,
                                         int64_t objects_done, int64_t bytes_done,
                                         int64_t objects_total, const char *error_class,
                                         const char *message, ferry_error *err);

/* status=failed, last_error, error_class, finished_at, and deletes the lease (the event
 * goes to the DLQ; a replay of it resumes from the checkpoint). Fenced; idempotent like
 * mark_done. message is truncated to 1024 bytes (at a UTF-8 boundary). */
ferry_rc ferry_state_mark_failed(ferry_redis *r, const ferry_lease *lease,
                                 const char *error_class, const char *message,
                                 ferry_error *err);

/* The same for a failure before any lease was taken (e.g. the event failed validation).
 * Refuses to touch a migration someone holds the lease of: FERRY_ERR_CANCELLED "fenced".
 * When event_id differs from the stored one, the old event's checkpoint and counts are
 * dropped. source_uri/target_uri/spec_hash may be NULL. */
typedef struct ferry_fail_req {
    const char *dataset;
    const char *worker;
    const char *event_id;
    const char *spec_hash;
    const char *source_uri;
    const char *target_uri;
    const char *error_class;
    const char *message;
} ferry_fail_req;

ferry_rc ferry_state_mark_failed_unleased(ferry_redis *r, const ferry_fail_req *req,
                                          ferry_error *err);

/* The report of event_id's migration of `dataset` as JSON lines (one object per failed or
 * vanished key, in no particular order): *out is malloc'd (the caller frees it), NULL
 * with *len 0 when there is none. At most FERRY_STATE_REPORT_MAX lines. */
ferry_rc ferry_state_report_read(ferry_redis *r, const char *dataset, const char *event_id,
                                 char **out, size_t *len, ferry_error *err);

/* Records where the JSON-lines report object was written (state field report_object), on
 * this event's migration only. */
ferry_rc ferry_state_note_report_object(ferry_redis *r, const char *dataset,
                                        const char *event_id, const char *uri,
                                        ferry_error *err);

/* ---- notification ------------------------------------------------------------------ */

/* DatasetMigrated is sent at least once. After it was acknowledged the worker records it
 * here, so a redelivered event that finds the migration already done does not announce it
 * again. notified_set only marks a migration that is done for this very event id. */
ferry_rc ferry_state_notified_set(ferry_redis *r, const char *dataset, const char *event_id,
                                  ferry_error *err);
ferry_rc ferry_state_notified_get(ferry_redis *r, const char *dataset, const char *event_id,
                                  int *notified, ferry_error *err);

/* Who announces. Several workers can finish handling the same event at once (a duplicate
 * on another partition, a redelivery, two chunks finalizing one dataset); each claims the
 * announcement first and only the claimer produces. The claim (state fields
 * announce_event/announce_owner/announce_until) lasts ttl_ms by Redis' clock: if its owner
 * dies before the marker is set, it expires and the next claimer announces (at least
 * once). notified_set clears it; release drops the owner's own claim after a failed
 * produce so another worker need not wait for the expiry. The same owner may claim again.
 * A hash that belongs to another event (or none) cannot be guarded: that is CLAIMED. */
typedef enum {
    FERRY_ANNOUNCE_CLAIMED, /* announce now */
    FERRY_ANNOUNCE_SENT,    /* already announced: nothing to do */
    FERRY_ANNOUNCE_HELD     /* another owner is announcing: wait, then claim again */
} ferry_announce_claim;
ferry_rc ferry_state_announce_claim(ferry_redis *r, const char *dataset, const char *event_id,
                                    const char *owner, int64_t ttl_ms,
                                    ferry_announce_claim *out, ferry_error *err);
ferry_rc ferry_state_announce_release(ferry_redis *r, const char *dataset, const char *event_id,
                                      const char *owner, ferry_error *err);

/* The optional webhook's outcome ("ok" or "failed: <why>") in the state field `webhook`,
 * for this event's migration only: a failing webhook never undoes a migration, but it
 * must be visible. */
ferry_rc ferry_state_note_webhook(ferry_redis *r, const char *dataset, const char *event_id,
                                  const char *outcome, ferry_error *err);

#endif
