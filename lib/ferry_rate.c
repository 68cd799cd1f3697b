#include "ferry_rate.h"

void ferry_rate_init(ferry_rate *r, double per_second, int64_t burst)
{
    r->interval_us = 0;
    if (per_second > 0) {
        double iv = 1e6 / per_second + 0.5;
        r->interval_us = iv < 1 ? 1 : iv > 86400e6 ? (int64_t)86400e6 : (int64_t)iv;
    }
    r->burst = burst < 1 ? 1 : burst;
    r->tat_us = 0;
    r->started = 0;
}

int64_t ferry_rate_reserve(ferry_rate *r, int64_t now_us)
{
    int64_t start, wait;

    if (r->interval_us == 0)
        return 0;
    /* Idle long enough: the bucket is full again, but no fuller. */
    if (!r->started || r->tat_us < now_us) {
        r->tat_us = now_us;
        r->started = 1;
    }
    /* The action may go once the bucket holds a token: burst - 1 intervals ahead of tat. */
    start = r->tat_us - (r->burst - 1) * r->interval_us;
    wait = start > now_us ? start - now_us : 0;
    r->tat_us += r->interval_us;
    return wait;
}
