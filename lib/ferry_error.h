/* ferry_error: how every module reports failure.
 *
 * A fallible function returns ferry_rc (FERRY_OK on success) and fills a caller-owned
 * ferry_error. Each adapter (Kafka, Redis, S3, Avro, ...) classifies its library's error
 * at the boundary -- retryable or permanent -- so the worker's retry/dead-letter decision
 * reads only err->rc and never a library's own codes. */
#ifndef FERRY_ERROR_H
#define FERRY_ERROR_H

#include <stddef.h>

typedef enum {
    FERRY_OK = 0,
    FERRY_ERR_RETRYABLE = 1, /* transient: back off and try again */
    FERRY_ERR_PERMANENT = 2, /* will fail the same way again: dead-letter */
    FERRY_ERR_CANCELLED = 3, /* stopped on request (shutdown, revocation); not a failure */
} ferry_rc;

/* Stable, machine-readable error classes (DLQ header ferry-error-class, metrics label). */
#define FERRY_EC_DECODE "decode" /* bytes are not a valid event */
#define FERRY_EC_SCHEMA "unknown-schema"
#define FERRY_EC_INVALID_SPEC "invalid-spec" /* event decodes but its content is unusable */
#define FERRY_EC_VALIDATION "validation" /* pre-copy checks failed (bucket missing, overlap) */
#define FERRY_EC_S3_AUTH "s3-auth"       /* 401/403, bad signature, bad key id */
#define FERRY_EC_S3_NOT_FOUND "s3-not-found"
#define FERRY_EC_S3_CLIENT "s3-client"   /* other 4xx */
#define FERRY_EC_S3_SERVER "s3-server"   /* 5xx, SlowDown */
#define FERRY_EC_S3_NETWORK "s3-network" /* timeouts, resets, DNS */
#define FERRY_EC_S3_STALL "s3-stall"     /* no byte sent or received for the stall timeout */
#define FERRY_EC_S3_OUTAGE "s3-outage"   /* an endpoint stayed down past s3.outage_limit_ms */
#define FERRY_EC_VERIFY "verify-mismatch"
#define FERRY_EC_REDIS "redis"
#define FERRY_EC_KAFKA "kafka"
#define FERRY_EC_CONFIG "config"
#define FERRY_EC_INTERNAL "internal"
#define FERRY_EC_EXHAUSTED "retries-exhausted"
#define FERRY_EC_FENCED "fenced" /* lost the lease to a newer owner */
/* Per-object outcomes (the failure report) and what they add up to. */
#define FERRY_EC_S3_ARCHIVED "s3-archived"       /* InvalidObjectState: GLACIER/DEEP_ARCHIVE */
#define FERRY_EC_S3_KMS "s3-kms"                 /* the object's KMS key refused us */
#define FERRY_EC_S3_INVALID_KEY "s3-invalid-key" /* the key cannot exist at the target */
#define FERRY_EC_S3_BAD_DIGEST "s3-bad-digest"   /* bytes not of the source's checksum */
#define FERRY_EC_VANISHED "vanished"             /* listed, then deleted before its copy */
#define FERRY_EC_FAILED_OBJECTS "failed-objects" /* dataset done except failed objects */
#define FERRY_EC_INCOMPLETE "incomplete-page"    /* objects of a page never settled */
#define FERRY_EC_COUNT_MISMATCH "count-mismatch" /* objects listed != objects accounted */

typedef struct ferry_error {
    ferry_rc rc;
    char cls[32];  /* one of FERRY_EC_* */
    char msg[512]; /* human readable; never contains a secret */
} ferry_error;

/* Sets err (if non-NULL) and returns rc, so callers can `return ferry_error_set(...)`. */
ferry_rc ferry_error_set(ferry_error *err, ferry_rc rc, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prefixes the existing message with context ("listing source: <old msg>"). */
void ferry_error_prefix(ferry_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ferry_error_clear(ferry_error *err);

/* The one bridge between the two error idioms (docs/internals/style.md): a runtime call's
 * ferry_error becomes a constructor's or parser's errstr, as "<context>: <message>"
 * (fmt may be NULL: the message alone). Returns -1, for `return ferry_error_to_errstr(...)`
 * in a function that returns 0/-1. The other direction is
 * ferry_error_set(err, rc, cls, "%s", errstr). */
int ferry_error_to_errstr(const ferry_error *err, char *errstr, size_t errstr_size,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));
const char *ferry_rc_name(ferry_rc rc);

#endif
