/* ferry-dlq-replayer internals shared by its files:
 *   replayer_main.c     options, signals, command dispatch (the program; the rest is
 *                       the ferry_replayer library)
 *   replayer_open.c     the Kafka reader and Redis handles, the interrupted flag
 *   replayer_filter.c   --dataset/--error-class/--since/--until/--partition into a filter
 *   replayer_scan.c     reading a topic with explicit assignment, low to high watermark
 *   replayer_ledger.c   the Redis ledger of replayed records
 *   replayer_lock.c     one replay run per DLQ topic at a time
 *   replayer_list.c     `list`
 *   replayer_inspect.c  `inspect`
 *   replayer_replay.c   `replay`: plan, recover interrupted runs, produce, record
 *   replayer_term.c     terminal width, progress bar
 * Threads: everything runs on the main thread except the lock's renewal thread, which
 * has its own Redis connection and shares only an atomic flag. */
#ifndef FERRY_REPLAYER_H
#define FERRY_REPLAYER_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "ferry_avro.h"
#include "ferry_conf.h"
#include "ferry_dlq.h"
#include "ferry_error.h"
#include "ferry_redis.h"

/* Set by SIGINT/SIGTERM: stop at the next record boundary. */
extern volatile sig_atomic_t replayer_interrupted;

typedef struct replayer_opts {
    ferry_dlq_filter filter;
    int json;
    int wide;       /* list: never cut the message */
    int ready_only; /* list: only records `replay` would pick up */
    int dry_run;
    int force;            /* replay: past replay.max_count */
    double rate;          /* replay: records per second, 0 = unlimited */
    int64_t limit;        /* replay: at most this many, -1 = all */
    const char *position; /* inspect: "PARTITION:OFFSET", or NULL */
} replayer_opts;

typedef struct replayer {
    const ferry_conf *conf; /* borrowed, immutable */
    replayer_opts opt;
    const char *dlq_topic;   /* topic.dlq */
    rd_kafka_t *consumer;    /* assign-only reader; owned */
    ferry_redis *redis;      /* owned */
    ferry_avro_codec *codec; /* owned; NULL until a command needs it */
    int timeout_ms;          /* --timeout: bounds connecting, metadata, each delivery */
} replayer;

/* replayer_open.c: opens the consumer and Redis handles (replayer_close frees them). */
int replayer_open(replayer *rp, char *errstr, size_t errstr_size);
void replayer_close(replayer *rp);

/* getopt codes of the long-only options (shared by main and the filter parser). */
enum {
    REPLAYER_OPT_SINCE = 1000,
    REPLAYER_OPT_UNTIL,
    REPLAYER_OPT_JSON,
    REPLAYER_OPT_WIDE,
    REPLAYER_OPT_READY,
    REPLAYER_OPT_RATE,
    REPLAYER_OPT_LIMIT,
    REPLAYER_OPT_FORCE
};

/* replayer_filter.c: handles a filter option (getopt code + argument). Returns 1 if it was
 * one, 0 if not, -1 with errstr on a bad value. */
int replayer_filter_opt(replayer_opts *o, int opt, const char *arg, char *errstr,
                        size_t errstr_size);
/* One line saying what the filter selects ("dataset sales.* and class s3-*"), for output. */
void replayer_filter_describe(const ferry_dlq_filter *f, char *out, size_t size);

/* replayer_scan.c */
typedef struct replayer_range {
    int32_t partition;
    int64_t start; /* first offset to read */
    int64_t end;   /* one past the last (the high watermark when it was asked) */
} replayer_range;

/* The partitions of `topic` with [low, high) watermarks, sorted by partition. *n = 0 and
 * *exists = 0 when the topic does not exist. Returns 0, or -1 with errstr. *out is
 * malloc'd (caller frees). */
int replayer_topic_ranges(rd_kafka_t *rk, const char *topic, replayer_range **out, size_t *n,
                          int *exists, char *errstr, size_t errstr_size);

/* Called for each message in [start, end) of the range, in offset order. Return 0 to go
 * on, 1 to stop early (not an error), -1 to fail the scan. The message is borrowed. */
typedef int (*replayer_scan_cb)(const rd_kafka_message_t *m, void *opaque);

/* Reads one partition's range with explicit assignment (no group, nothing committed).
 * Returns 0 when the range was read (or cb stopped it), -1 with errstr on failure or
 * interruption. */
int replayer_scan_range(rd_kafka_t *rk, const char *topic, const replayer_range *r,
                        replayer_scan_cb cb, void *opaque, char *errstr, size_t errstr_size);

/* Offsets of the first messages at or after ts_ms in every partition of ranges (in place:
 * start is moved forward, never back; a partition with nothing that new gets start = end). */
int replayer_ranges_since(rd_kafka_t *rk, const char *topic, replayer_range *ranges, size_t n,
                          int64_t ts_ms, char *errstr, size_t errstr_size);

/* replayer_ledger.c */
#define REPLAYER_LEDGER_BATCH 256

/* Reads the entries of n records (n <= REPLAYER_LEDGER_BATCH) with one MGET. out[i] is
 * status NONE for a record without (or with an unreadable) entry. */
ferry_rc replayer_ledger_lookup(ferry_redis *r, const char *dlq_topic,
                                const ferry_dlq_record *const *recs, size_t n,
                                ferry_dlq_ledger *out, ferry_error *err);
/* Writes `in_progress` unless a DONE entry for the same fingerprint exists; then *done = 1
 * and *existing holds it. ttl_ms 0 = no expiry. */
ferry_rc replayer_ledger_begin(ferry_redis *r, const char *dlq_topic, int32_t partition,
                               int64_t offset, const ferry_dlq_ledger *in_progress,
                               int64_t ttl_ms, int *done, ferry_dlq_ledger *existing,
                               ferry_error *err);
ferry_rc replayer_ledger_finish(ferry_redis *r, const char *dlq_topic, int32_t partition,
                                int64_t offset, const ferry_dlq_ledger *done, int64_t ttl_ms,
                                ferry_error *err);

/* replayer_lock.c: one replay run per DLQ topic at a time (like SQS's one move task per
 * queue), held in Redis (SET NX PX) and renewed by a thread with its own connection, so a
 * long produce never lets it lapse and a dead run's lock expires within the TTL. A run
 * killed on this machine (same boot, same PID namespace) is noticed at once: its lock is
 * taken over when its process is gone. */
typedef struct replayer_lock replayer_lock;

/* Takes the lock or returns NULL with errstr saying who holds it (or what failed). */
replayer_lock *replayer_lock_take(const ferry_conf *conf, const char *dlq_topic,
                                  const char *run_id, char *errstr, size_t errstr_size);
/* 1 once a renewal found the lock gone (expired and taken): stop replaying. Any thread. */
int replayer_lock_lost(replayer_lock *l);
/* Stops renewing, deletes the lock if still ours, frees. NULL-safe. */
void replayer_lock_release(replayer_lock *l);

/* replayer_term.c */
int replayer_term_width(int fd); /* columns, or 0 if fd is not a terminal */

typedef struct replayer_progress {
    int enabled; /* stderr is a terminal */
    int shown;   /* a bar is on screen */
    int64_t total, done;
    int64_t t0_ms, last_draw_ms;
} replayer_progress;

void replayer_progress_start(replayer_progress *p, int64_t total);
void replayer_progress_set(replayer_progress *p, int64_t done); /* redraws, rate-limited */
void replayer_progress_hide(replayer_progress *p);              /* before printing a line */
void replayer_progress_end(replayer_progress *p);

/* Commands: each returns an exit code (0, 1). */
int replayer_list(replayer *rp);
int replayer_inspect(replayer *rp);
int replayer_replay(replayer *rp);

/* replayer_list.c, shared with inspect and replay: JSON for one record (new reference),
 * and a JSON string that survives bytes that are not UTF-8 (they become '?'). */
json_t *replayer_record_json(const ferry_dlq_record *r, const ferry_dlq_ledger *l,
                             const char *status);
json_t *replayer_json_str(const char *s);

/* Shared by list and inspect: the record's status as `replay` would see it (force=0). */
ferry_dlq_action replayer_status(const replayer *rp, const ferry_dlq_record *r,
                                 const ferry_dlq_ledger *l, uint64_t fp);

#endif
