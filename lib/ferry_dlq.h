/* ferry_dlq: the dead-letter record, shared by the worker (which writes it) and the
 * replayer (which reads, filters and re-produces it). DESIGN.md §5.
 *
 * A DLQ record is the original event -- key and value byte-identical -- with the original
 * headers plus ferry's own, all UTF-8 text, numbers in decimal:
 *   ferry-error-class, ferry-error-message, ferry-original-topic, ferry-original-partition,
 *   ferry-original-offset, ferry-attempts, ferry-failed-at (ms since the epoch),
 *   ferry-worker, ferry-replay-count, and the names Kafka UIs know for redrive:
 *   kafka_dlt-original-topic, kafka_dlt-original-partition, kafka_dlt-original-offset,
 *   kafka_dlt-exception-message.
 * A replayed event additionally carries ferry-replayed-from ("<dlq topic>/<partition>/
 * <offset>", how the replayer finds it again after a crash) and ferry-replayed-at.
 *
 * Also here, because they are pure and unit-tested: record parsing, the replayer's filter,
 * its time syntax, the replay decision, the Redis ledger's keys and values, and a
 * terminal-safe text cut. Everything is thread-safe (no state). */
#ifndef FERRY_DLQ_H
#define FERRY_DLQ_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_DLQ_H_ERROR_CLASS "ferry-error-class"
#define FERRY_DLQ_H_ERROR_MESSAGE "ferry-error-message"
#define FERRY_DLQ_H_ORIGINAL_TOPIC "ferry-original-topic"
#define FERRY_DLQ_H_ORIGINAL_PARTITION "ferry-original-partition"
#define FERRY_DLQ_H_ORIGINAL_OFFSET "ferry-original-offset"
#define FERRY_DLQ_H_ATTEMPTS "ferry-attempts"
#define FERRY_DLQ_H_FAILED_AT "ferry-failed-at"
#define FERRY_DLQ_H_WORKER "ferry-worker"
/* failed-objects only: where the failure report is (Redis key of the report hash, and the
 * report object's s3:// URI when one was written), e.g. "redis:ferry:{ds}:report:<id>" */
#define FERRY_DLQ_H_REPORT "ferry-report"
#define FERRY_DLQ_H_REPLAY_COUNT "ferry-replay-count"
#define FERRY_DLQ_H_DLT_ORIGINAL_TOPIC "kafka_dlt-original-topic"
#define FERRY_DLQ_H_DLT_ORIGINAL_PARTITION "kafka_dlt-original-partition"
#define FERRY_DLQ_H_DLT_ORIGINAL_OFFSET "kafka_dlt-original-offset"
#define FERRY_DLQ_H_DLT_EXCEPTION_MESSAGE "kafka_dlt-exception-message"
#define FERRY_DLQ_H_REPLAYED_FROM "ferry-replayed-from"
#define FERRY_DLQ_H_REPLAYED_AT "ferry-replayed-at"

/* The headers the worker sets on a DLQ record (NULL-terminated). A record dead-lettered
 * again drops its stale copies first; a replay drops them all (they describe the failure,
 * not the event). */
extern const char *const ferry_dlq_own_headers[];

/* One DLQ record as the replayer shows it. Text fields are NUL-terminated copies, cut to
 * their buffer; absent headers give "" / -1 (numbers) as noted. No heap: copy freely. */
typedef struct ferry_dlq_record {
    int32_t partition; /* where it is in the DLQ topic */
    int64_t offset;
    int64_t timestamp_ms; /* the DLQ message's Kafka timestamp; -1 if none */
    char dataset[256];    /* the message key (ferry keys events by dataset) */
    char error_class[64];
    char error_message[1024];
    char original_topic[256];   /* ferry-original-topic, else kafka_dlt-original-topic */
    int32_t original_partition; /* -1 if absent or unreadable */
    int64_t original_offset;    /* -1 if absent or unreadable */
    int attempts;               /* -1 if absent */
    int64_t failed_at_ms;       /* ferry-failed-at, else the Kafka timestamp; -1 if neither */
    char worker[129];
    int64_t replay_count; /* 0 if absent; -1 if present but not a number */
} ferry_dlq_record;

/* Fills r from a DLQ message's headers (may be NULL) and key (may be NULL). The caller
 * sets nothing beforehand; partition/offset/timestamp_ms are copied from the arguments. */
void ferry_dlq_record_parse(const rd_kafka_headers_t *hdrs, const void *key, size_t key_len,
                            int32_t partition, int64_t offset, int64_t timestamp_ms,
                            ferry_dlq_record *r);

/* Identity of one DLQ record's content for the ledger: FNV-1a 64 over key, value and
 * Kafka timestamp. Guards against a DLQ topic deleted and recreated under the same name
 * (same offsets, different records): a ledger entry with another fingerprint is stale. */
uint64_t ferry_dlq_fingerprint(const void *key, size_t key_len, const void *value,
                               size_t value_len, int64_t timestamp_ms);

/* ---- filter ----------------------------------------------------------------------- */

#define FERRY_DLQ_FILTER_MAX 16 /* patterns per field */

/* What `list`, `inspect --dataset` and `replay` select. Patterns are borrowed. Within a
 * field patterns are OR'ed (any may match); fields are AND'ed. */
typedef struct ferry_dlq_filter {
    const char *datasets[FERRY_DLQ_FILTER_MAX];      /* exact, or fnmatch(3) glob */
    size_t n_datasets;                               /* 0 = any */
    const char *error_classes[FERRY_DLQ_FILTER_MAX]; /* exact, or glob */
    size_t n_error_classes;
    int64_t since_ms;  /* failed_at >= since (INT64_MIN = no bound) */
    int64_t until_ms;  /* failed_at <  until (INT64_MAX = no bound): windows do not overlap */
    int32_t partition; /* DLQ partition, -1 = any */
} ferry_dlq_filter;

void ferry_dlq_filter_init(ferry_dlq_filter *f); /* matches everything */
/* Adds a pattern; -1 if the field is full. */
int ferry_dlq_filter_add_dataset(ferry_dlq_filter *f, const char *pattern);
int ferry_dlq_filter_add_error_class(ferry_dlq_filter *f, const char *pattern);
/* 1 if r is selected. A record without failed-at never matches a time bound. */
int ferry_dlq_filter_match(const ferry_dlq_filter *f, const ferry_dlq_record *r);

/* ---- time ------------------------------------------------------------------------- */

/* Parses a point in time into ms since the epoch:
 *   relative, back from now_ms: "30m", "2h", "1h30m", "45s", "7d", "2w", "now"
 *   ISO-8601: "2026-11-26" (midnight UTC), "2026-11-26T01:00Z", "2026-11-26T01:00:00Z",
 *             "2026-11-26T01:00:00.250Z", "2026-11-26T02:00:00+01:00" (also "+0100";
 *             a space may replace the T). A time of day needs a zone: "Z" for UTC.
 * Returns 0, or -1 with a sentence in errstr. */
int ferry_dlq_parse_time(const char *s, int64_t now_ms, int64_t *out_ms, char *errstr,
                         size_t errstr_size);
/* "2026-11-26T01:00:00Z" (UTC, whole seconds). out needs 21 bytes. */
void ferry_dlq_format_time(int64_t ms, char *out, size_t size);

/* "PARTITION:OFFSET" (both non-negative decimal). 0 or -1. */
int ferry_dlq_parse_position(const char *s, int32_t *partition, int64_t *offset);

/* ---- replay decision ---------------------------------------------------------------- */

/* The replayer's ledger entry for one DLQ record (Redis string, see ferry_dlq_ledger_*). */
typedef enum {
    FERRY_DLQ_LEDGER_NONE = 0,    /* never replayed (or the entry was for another record) */
    FERRY_DLQ_LEDGER_IN_PROGRESS, /* a replay started and did not record its outcome */
    FERRY_DLQ_LEDGER_DONE,        /* produced and acknowledged */
} ferry_dlq_ledger_status;

typedef struct ferry_dlq_ledger {
    ferry_dlq_ledger_status status;
    char run[64];    /* the replay run that wrote it */
    uint64_t fp;     /* ferry_dlq_fingerprint() of the record */
    int64_t at_ms;   /* when it was written */
    int64_t count;   /* the ferry-replay-count the replayed event carries */
    char topic[256]; /* DONE: where the replayed event landed */
    int32_t partition;
    int64_t offset;
} ferry_dlq_ledger;

/* "ferry:replay:{<dlq topic>}:<partition>:<offset>". The DLQ topic is the hash tag, so a
 * whole DLQ's entries share one Redis Cluster slot (MGET works). suffix NULL; or the run
 * lock: "ferry:replay:{<dlq topic>}:lock". Returns 0, or -1 if the topic is not a legal
 * Kafka topic name or buf is too small. */
int ferry_dlq_ledger_key(char *buf, size_t size, const char *dlq_topic, int32_t partition,
                         int64_t offset);
int ferry_dlq_lock_key(char *buf, size_t size, const char *dlq_topic);

/* Value text: "in-progress run=<id> fp=<16 hex> at=<ms> count=<n>" or
 * "done run=<id> fp=<16 hex> at=<ms> count=<n> to=<topic>/<partition>/<offset>".
 * format returns 0 or -1 (too small); parse returns 0, or -1 for text it does not know
 * (then l->status is NONE). */
int ferry_dlq_ledger_format(const ferry_dlq_ledger *l, char *buf, size_t size);
int ferry_dlq_ledger_parse(const char *s, ferry_dlq_ledger *l);

/* 1 if topic is in the comma-separated list (spaces around names ignored). */
int ferry_dlq_topic_in_list(const char *list, const char *topic);

typedef enum {
    FERRY_DLQ_REPLAY = 0,       /* produce it */
    FERRY_DLQ_SKIP_REPLAYED,    /* ledger says done */
    FERRY_DLQ_RECOVER,          /* ledger says in progress: find out whether it landed */
    FERRY_DLQ_REFUSE_MAX_COUNT, /* replay count at the maximum (or unreadable) */
    FERRY_DLQ_REFUSE_TOPIC,     /* original topic not allowed, or absent */
} ferry_dlq_action;

const char *ferry_dlq_action_name(ferry_dlq_action a); /* "ready", "replayed", ... */

/* What a replay does with r. ledger: its entry (NULL = none); fp: r's fingerprint (an
 * entry for another fingerprint counts as none); allowed_topics: comma-separated list
 * (NULL or "" = only default_topic). The ledger is consulted first, so a record already
 * replayed shows as replayed even if it is also at the maximum. */
ferry_dlq_action ferry_dlq_decide(const ferry_dlq_record *r, const ferry_dlq_ledger *ledger,
                                  uint64_t fp, int64_t max_count, int force,
                                  const char *allowed_topics, const char *default_topic);

/* The headers of the re-produced event: the DLQ record's headers without ferry's DLQ
 * headers (ferry_dlq_own_headers) and without an earlier replay's ferry-replayed-*,
 * plus ferry-replay-count = new_count, ferry-replayed-from = from,
 * ferry-replayed-at = now_ms. dlq may be NULL. Caller destroys the result. */
rd_kafka_headers_t *ferry_dlq_replay_headers(const rd_kafka_headers_t *dlq, int64_t new_count,
                                             const char *from, int64_t now_ms);

/* ---- display ------------------------------------------------------------------------ */

/* Copies s into out for one table cell: control characters become spaces, invalid UTF-8
 * bytes become '?', and text longer than max_cols characters (code points) is cut at a
 * character boundary with "..." at the end. max_cols 0 = no limit. Returns the number
 * of characters written. */
size_t ferry_dlq_cell(const char *s, size_t max_cols, char *out, size_t size);

#endif
