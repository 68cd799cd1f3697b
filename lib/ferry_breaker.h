/* ferry_breaker: a circuit breaker for one S3 endpoint, shared by every migration of a
 * process, so that an endpoint that is down is an outage to wait out, not a failure to
 * charge to each event.
 *
 *   closed --N consecutive endpoint failures (or one stall)--> open
 *   open --probe due (backoff from probe_base_ms doubling to probe_max_ms)--> half-open:
 *          exactly one caller sends one cheap request and reports it
 *   half-open --probe answered--> closed      half-open --probe failed--> open (longer wait)
 *   any state --a request answered--> closed (the endpoint evidently works)
 *
 * "Failure" means endpoint scope only (refused, reset, timed out, stalled, 5xx that is not
 * throttling); the caller decides that. A 4xx or a throttling answer is a response: the
 * endpoint is up. The breaker decides nothing by itself and owns no thread: the time is
 * passed in by every call (monotonic milliseconds), which keeps it a pure state machine
 * that the unit tests drive with a fake clock.
 *
 * @locality Thread-safe: every call may come from any thread (one mutex inside). */
#ifndef FERRY_BREAKER_H
#define FERRY_BREAKER_H

#include <stdint.h>

typedef enum {
    FERRY_BREAKER_CLOSED = 0, /* requests go out */
    FERRY_BREAKER_OPEN,       /* endpoint down: wait; a probe is due at next_probe_ms */
    FERRY_BREAKER_HALF_OPEN,  /* one probe in flight */
} ferry_breaker_state;

typedef struct ferry_breaker_conf {
    int failure_threshold;    /* consecutive endpoint failures that open it; default 5 */
    int64_t probe_base_ms;    /* wait before the first probe; default 1000 */
    int64_t probe_max_ms;     /* longest wait between probes; default 30000 */
    int64_t probe_timeout_ms; /* a probe not reported within this long counts as failed
                               * and another caller may probe; default 120000 */
} ferry_breaker_conf;

void ferry_breaker_conf_init(ferry_breaker_conf *conf);

typedef struct ferry_breaker ferry_breaker;

/* name: what log lines and /readyz call the endpoint (copied), e.g. its URL. NULL when out
 * of memory. Values of conf <= 0 take the defaults. */
ferry_breaker *ferry_breaker_new(const char *name, const ferry_breaker_conf *conf);
void ferry_breaker_destroy(ferry_breaker *b); /* NULL-safe */
const char *ferry_breaker_name(const ferry_breaker *b);

/* A request got an answer from the endpoint: the failure count restarts, and an open or
 * half-open breaker closes. Returns 1 if this closed it (the caller logs the recovery). */
int ferry_breaker_success(ferry_breaker *b, int64_t now_ms);

/* A request failed with endpoint scope; why (copied, may be NULL) becomes the last error.
 * stalled: the request neither sent nor received a byte for the stall timeout -- it opens
 * the breaker at once, since every request in flight is then likely hung too. Returns 1 if
 * this opened the breaker (the caller logs it at warn). Failures while open or half-open
 * only update the last error: the probe decides. */
int ferry_breaker_failure(ferry_breaker *b, int64_t now_ms, int stalled, const char *why);

/* 1 if requests may go out (closed). */
int ferry_breaker_allows(ferry_breaker *b, int64_t now_ms);

/* While open: returns 1 to exactly one caller once the probe is due (the breaker turns
 * half-open); that caller sends one cheap request and reports it with probe_done. 0
 * otherwise (closed, not due yet, or someone else is probing). */
int ferry_breaker_probe_begin(ferry_breaker *b, int64_t now_ms);
/* The probe's outcome: ok closes the breaker (returns 1); a failure re-opens it with the
 * next, longer wait (why as in failure()). Returns 1 if this closed it. */
int ferry_breaker_probe_done(ferry_breaker *b, int64_t now_ms, int ok, const char *why);

typedef struct ferry_breaker_snapshot {
    ferry_breaker_state state;
    int consecutive_failures; /* endpoint failures since the last answer */
    int64_t down_since_ms;    /* when it opened (kept through half-open and failed probes);
                               * 0 while closed */
    int64_t next_probe_ms;    /* open: when a probe is due */
    int probes_failed;        /* since it opened */
    int stalled;              /* the opening failure was a stall */
    uint64_t opened_total;    /* times it opened since the process started */
    char last_error[256];     /* the last endpoint failure's message, "" if none */
} ferry_breaker_snapshot;

void ferry_breaker_snapshot_get(ferry_breaker *b, ferry_breaker_snapshot *out);
const char *ferry_breaker_state_name(ferry_breaker_state s); /* "closed", "open", ... */

#endif
