/* The endpoint circuit breaker's state machine, driven by a fake clock. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "ferry_breaker.h"
#include "ferry_test.h"

static ferry_breaker *make(int threshold)
{
    ferry_breaker_conf c;
    ferry_breaker_conf_init(&c);
    c.failure_threshold = threshold;
    c.probe_base_ms = 1000;
    c.probe_max_ms = 8000;
    c.probe_timeout_ms = 60000;
    return ferry_breaker_new("http://s3.test:9000", &c);
}

static ferry_breaker_state state_of(ferry_breaker *b)
{
    ferry_breaker_snapshot s;
    ferry_breaker_snapshot_get(b, &s);
    return s.state;
}

static void opens_after_n_consecutive_failures(void)
{
    ferry_breaker *b = make(3);
    ferry_breaker_snapshot s;

    CHECK_STR(ferry_breaker_name(b), "http://s3.test:9000");
    CHECK(ferry_breaker_allows(b, 0));
    CHECK_INT(ferry_breaker_failure(b, 10, 0, "refused 1"), 0);
    CHECK_INT(ferry_breaker_failure(b, 20, 0, "refused 2"), 0);
    CHECK(ferry_breaker_allows(b, 20));
    CHECK_INT(ferry_breaker_failure(b, 30, 0, "refused 3"), 1);
    CHECK(!ferry_breaker_allows(b, 30));
    ferry_breaker_snapshot_get(b, &s);
    CHECK_INT(s.state, FERRY_BREAKER_OPEN);
    CHECK_INT(s.down_since_ms, 30);
    CHECK_INT(s.next_probe_ms, 1030);
    CHECK_INT(s.opened_total, 1);
    CHECK_INT(s.stalled, 0);
    CHECK_STR(s.last_error, "refused 3");
    /* More failures while open neither re-open it nor move the outage start. */
    CHECK_INT(ferry_breaker_failure(b, 40, 0, "refused 4"), 0);
    ferry_breaker_snapshot_get(b, &s);
    CHECK_INT(s.down_since_ms, 30);
    CHECK_INT(s.opened_total, 1);
    CHECK_STR(s.last_error, "refused 4");
    ferry_breaker_destroy(b);
}

static void an_answer_resets_the_count(void)
{
    ferry_breaker *b = make(3);
    ferry_breaker_failure(b, 0, 0, "x");
    ferry_breaker_failure(b, 0, 0, "x");
    CHECK_INT(ferry_breaker_success(b, 1), 0); /* was not open */
    ferry_breaker_failure(b, 2, 0, "x");
    ferry_breaker_failure(b, 3, 0, "x");
    CHECK(ferry_breaker_allows(b, 3)); /* 2 since the answer, not 4 */
    CHECK_INT(ferry_breaker_failure(b, 4, 0, "x"), 1);
    ferry_breaker_destroy(b);
}

static void a_stall_opens_at_once(void)
{
    ferry_breaker *b = make(5);
    ferry_breaker_snapshot s;
    CHECK_INT(ferry_breaker_failure(b, 100, 1, "stalled 30 s"), 1);
    ferry_breaker_snapshot_get(b, &s);
    CHECK_INT(s.state, FERRY_BREAKER_OPEN);
    CHECK_INT(s.stalled, 1);
    CHECK_STR(s.last_error, "stalled 30 s");
    ferry_breaker_destroy(b);
}

static void probes_with_backoff_then_closes(void)
{
    ferry_breaker *b = make(1);
    ferry_breaker_snapshot s;

    ferry_breaker_failure(b, 0, 0, "down");
    CHECK_INT(ferry_breaker_probe_begin(b, 999), 0); /* not due */
    CHECK_INT(ferry_breaker_probe_begin(b, 1000), 1);
    CHECK_INT(state_of(b), FERRY_BREAKER_HALF_OPEN);
    CHECK_INT(ferry_breaker_probe_begin(b, 1001), 0); /* one prober at a time */
    CHECK(!ferry_breaker_allows(b, 1001));
    /* failed probes: waits 2 s, 4 s, 8 s, 8 s (capped) */
    CHECK_INT(ferry_breaker_probe_done(b, 1100, 0, "still down"), 0);
    ferry_breaker_snapshot_get(b, &s);
    CHECK_INT(s.state, FERRY_BREAKER_OPEN);
    CHECK_INT(s.next_probe_ms, 3100);
    CHECK_INT(s.probes_failed, 1);
    CHECK_INT(s.down_since_ms, 0 + 0); /* the outage began at 0 */
    CHECK_INT(ferry_breaker_probe_begin(b, 3099), 0);
    CHECK_INT(ferry_breaker_probe_begin(b, 3100), 1);
    ferry_breaker_probe_done(b, 3100, 0, "still down");
    ferry_breaker_snapshot_get(b, &s);
    CHECK_INT(s.next_probe_ms, 7100);
    CHECK_INT(ferry_breaker_probe_begin(b, 7100), 1);
    ferry_breaker_probe_done(b, 7100, 0, "still down");
    ferry_breaker_snapshot_get(b, &s);
    CHECK_INT(s.next_probe_ms, 15100);
    CHECK_INT(ferry_breaker_probe_begin(b, 15100), 1);
    ferry_breaker_probe_done(b, 15100, 0, "still down");
    ferry_breaker_snapshot_get(b, &s);
    CHECK_INT(s.next_probe_ms, 23100);
    CHECK_INT(s.probes_failed, 4);
    CHECK_INT(s.opened_total, 1);
    /* the probe answers: closed, everything reset */
    CHECK_INT(ferry_breaker_probe_begin(b, 23100), 1);
    CHECK_INT(ferry_breaker_probe_done(b, 23200, 1, NULL), 1);
    ferry_breaker_snapshot_get(b, &s);
    CHECK_INT(s.state, FERRY_BREAKER_CLOSED);
    CHECK_INT(s.down_since_ms, 0);
    CHECK_INT(s.probes_failed, 0);
    CHECK_INT(s.consecutive_failures, 0);
    CHECK(ferry_breaker_allows(b, 23200));
    CHECK_INT(ferry_breaker_probe_begin(b, 99999), 0); /* nothing to probe */
    /* a new outage starts its backoff afresh */
    ferry_breaker_failure(b, 30000, 0, "down again");
    ferry_breaker_snapshot_get(b, &s);
    CHECK_INT(s.next_probe_ms, 31000);
    CHECK_INT(s.down_since_ms, 30000);
    CHECK_INT(s.opened_total, 2);
    ferry_breaker_destroy(b);
}

static void an_answer_while_open_closes(void)
{
    ferry_breaker *b = make(1);
    ferry_breaker_failure(b, 0, 0, "down");
    /* a request started before the opening came back with an answer */
    CHECK_INT(ferry_breaker_success(b, 10), 1);
    CHECK(ferry_breaker_allows(b, 10));
    /* and a late probe failure after that changes nothing */
    ferry_breaker_failure(b, 20, 0, "down");
    CHECK_INT(ferry_breaker_probe_begin(b, 1020), 1);
    ferry_breaker_success(b, 1030);
    CHECK_INT(ferry_breaker_probe_done(b, 1040, 0, "late"), 0);
    CHECK(ferry_breaker_allows(b, 1040));
    ferry_breaker_destroy(b);
}

static void a_lost_prober_does_not_wedge_it(void)
{
    ferry_breaker *b = make(1);
    ferry_breaker_failure(b, 0, 0, "down");
    CHECK_INT(ferry_breaker_probe_begin(b, 1000), 1);
    /* that prober never reports */
    CHECK_INT(ferry_breaker_probe_begin(b, 60999), 0);
    CHECK_INT(ferry_breaker_probe_begin(b, 61000), 1);
    ferry_breaker_destroy(b);
}

static void defaults_and_names(void)
{
    ferry_breaker *b = ferry_breaker_new("e", NULL);
    int opened = 0;
    for (int i = 0; i < 5; i++)
        opened += ferry_breaker_failure(b, i, 0, NULL);
    CHECK_INT(opened, 1); /* default threshold 5 */
    CHECK_STR(ferry_breaker_state_name(FERRY_BREAKER_CLOSED), "closed");
    CHECK_STR(ferry_breaker_state_name(FERRY_BREAKER_OPEN), "open");
    CHECK_STR(ferry_breaker_state_name(FERRY_BREAKER_HALF_OPEN), "half-open");
    ferry_breaker_destroy(b);
    ferry_breaker_destroy(NULL);
}

/* Many threads race for the probe and report failures: one probe at a time, and the
 * count of openings stays 1. */
static ferry_breaker *shared;
static atomic_int granted;
static int64_t race_now;

static void *racer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        ferry_breaker_failure(shared, race_now, 0, "refused");
        if (ferry_breaker_probe_begin(shared, race_now))
            atomic_fetch_add(&granted, 1);
    }
    return NULL;
}

static void thread_safe_single_prober(void)
{
    pthread_t th[8];
    ferry_breaker_snapshot s;
    shared = make(3);
    atomic_store(&granted, 0);
    race_now = 5000;
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, racer, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    ferry_breaker_snapshot_get(shared, &s);
    CHECK_INT(atomic_load(&granted), 0); /* opened at 5000, first probe due at 6000 */
    CHECK_INT(s.opened_total, 1);
    race_now = 6000; /* due: 8000 tries, exactly one probe */
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, racer, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    ferry_breaker_snapshot_get(shared, &s);
    CHECK_INT(atomic_load(&granted), 1);
    CHECK_INT(s.state, FERRY_BREAKER_HALF_OPEN);
    CHECK_INT(s.opened_total, 1);
    ferry_breaker_destroy(shared);
}

int main(void)
{
    RUN(opens_after_n_consecutive_failures);
    RUN(an_answer_resets_the_count);
    RUN(a_stall_opens_at_once);
    RUN(probes_with_backoff_then_closes);
    RUN(an_answer_while_open_closes);
    RUN(a_lost_prober_does_not_wedge_it);
    RUN(defaults_and_names);
    RUN(thread_safe_single_prober);
    return TEST_EXIT();
}
