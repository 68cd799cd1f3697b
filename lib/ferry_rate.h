/* ferry_rate: a token bucket for "at most N actions per second", written as GCRA (the
 * generic cell rate algorithm): one number, the theoretical arrival time of the next
 * action, instead of a token count and a refill timer. Pure arithmetic on times the caller
 * passes in (microseconds, any monotonic origin), so it is unit-tested without sleeping.
 * Not locked: one thread per ferry_rate. */
#ifndef FERRY_RATE_H
#define FERRY_RATE_H

#include <stdint.h>

typedef struct ferry_rate {
    int64_t interval_us; /* 1 s / rate; 0 = unlimited */
    int64_t burst;       /* actions allowed back to back after an idle period (>= 1) */
    int64_t tat_us;      /* theoretical arrival time of the next action */
    int started;
} ferry_rate;

/* per_second <= 0 means unlimited. burst < 1 is taken as 1: with burst 1, N actions take
 * at least (N - 1) / per_second seconds. */
void ferry_rate_init(ferry_rate *r, double per_second, int64_t burst);

/* Reserves the next action: returns how long to wait (us, >= 0) from now_us before doing
 * it. Call once per action and sleep the returned time (an action that took longer than
 * its interval does not earn a catch-up burst beyond `burst`). */
int64_t ferry_rate_reserve(ferry_rate *r, int64_t now_us);

#endif
