/* ferry_limiter: how many S3 requests may be in flight to one endpoint, following the
 * store instead of a fixed number. One limiter per endpoint per process, shared by every
 * migration thread that talks to that endpoint, each getting a fair share of it.
 *
 * The limit moves once per window (about one round trip's worth of completions):
 *   - slow start: it doubles while the window's latency stays near the floor RTT and the
 *     limit was actually used, until the first sign of congestion;
 *   - then additive increase (+ sqrt(limit), at least 1) under the same condition;
 *   - a multiplicative cut (x 0.7) on throttling (503 SlowDown, 429), at most once per
 *     round trip so one burst of refusals counts as one signal;
 *   - a gradient cut (x tolerance * floor / latency, not below x 0.5) when the window's
 *     mean latency rises above tolerance x the floor RTT (queueing: more requests would
 *     only wait longer, as in TCP Vegas and Netflix's concurrency-limits).
 * The floor RTT is the lowest window mean seen; when the limit is already at its minimum
 * and latency is still high, the store got slower for good and the floor is re-based, so
 * the limit does not stay at the bottom forever. The limit stays in [min, max].
 *
 * Pure logic on times the caller passes (microseconds, any monotonic origin), so it is
 * unit-tested without sleeping or a network. Only ferry_limiter_wait() blocks.
 *
 * @locality Every function may be called from any thread (one mutex per limiter). */
#ifndef FERRY_LIMITER_H
#define FERRY_LIMITER_H

#include <stdint.h>

typedef struct ferry_limiter_conf {
    int min_limit;     /* floor, >= 1 */
    int max_limit;     /* ceiling, >= min_limit */
    int initial_limit; /* clamped into [min, max] */
    double tolerance;  /* latency above tolerance x floor RTT cuts the limit; > 1, e.g. 2 */
} ferry_limiter_conf;

typedef enum {
    FERRY_LIMITER_OK,        /* answered in time: rtt_us is a latency sample */
    FERRY_LIMITER_THROTTLED, /* 503 SlowDown / 429: the store asks for fewer requests */
    FERRY_LIMITER_IGNORE,    /* cancelled, failed for another reason, or a latency that
                              * says nothing about load (a huge object): no signal */
} ferry_limiter_outcome;

typedef struct ferry_limiter ferry_limiter;

typedef struct ferry_limiter_stats {
    int limit;            /* requests allowed in flight now */
    int in_flight;        /* permits held now */
    int users;            /* joined users sharing the limit */
    int64_t rtt_floor_us; /* lowest window mean latency; 0 before the first window */
    int64_t rtt_us;       /* mean latency of the last complete window; 0 before one */
    uint64_t throttled;   /* THROTTLED outcomes so far */
    uint64_t cuts;        /* times the limit was cut (throttling or latency) */
} ferry_limiter_stats;

/* Fills the defaults: min 4, max 256, initial 16, tolerance 2. */
void ferry_limiter_conf_init(ferry_limiter_conf *conf);
/* NULL when out of memory. The conf is copied after clamping into sane bounds. */
ferry_limiter *ferry_limiter_new(const ferry_limiter_conf *conf);
void ferry_limiter_destroy(ferry_limiter *l); /* accepts NULL */

/* A user (one migration's batch of requests) starts or stops competing for permits; the
 * limit is shared fairly: a user may hold at most ceil(limit / users) permits. */
void ferry_limiter_join(ferry_limiter *l);
void ferry_limiter_leave(ferry_limiter *l);

/* Takes one permit if the limit and the user's fair share allow; user_in_flight is how
 * many permits this user holds now. Returns 1 if granted, 0 if not. */
int ferry_limiter_try_acquire(ferry_limiter *l, int user_in_flight);
/* Returns a permit taken by try_acquire, with what happened to its request. rtt_us < 0:
 * no latency sample. */
void ferry_limiter_release(ferry_limiter *l, int64_t now_us, int64_t rtt_us,
                           ferry_limiter_outcome outcome);
/* Blocks until some permit is released or timeout_ms passes (a user holding no permit
 * and refused one waits here instead of spinning). */
void ferry_limiter_wait(ferry_limiter *l, int timeout_ms);

void ferry_limiter_stats_get(ferry_limiter *l, ferry_limiter_stats *out);

/* ---- per-endpoint registry: one limiter per endpoint string, shared by the stores of a
 * process. The registry owns the limiters; they live until ferry_limiters_destroy(). */
typedef struct ferry_limiters ferry_limiters;

ferry_limiters *ferry_limiters_new(const ferry_limiter_conf *conf);
void ferry_limiters_destroy(ferry_limiters *r); /* accepts NULL */
/* The limiter of endpoint (created on first use). NULL when out of memory. */
ferry_limiter *ferry_limiters_get(ferry_limiters *r, const char *endpoint);
/* Calls fn for each endpoint's limiter (for metrics), under the registry's lock. */
void ferry_limiters_each(ferry_limiters *r,
                         void (*fn)(const char *endpoint, ferry_limiter *l, void *opaque),
                         void *opaque);

#endif
