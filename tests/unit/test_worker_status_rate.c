/* `ferry-worker status` rates and ETA (worker/worker_status.c) come from the current
 * attempt: a dataset that failed, waited and was retried must not be averaged with the
 * time before the retry. Progress (lib/ferry_state.c) is unknown while the total is only
 * a lower bound. Pure computation on a ferry_migration_state. */
#include <math.h>

#include "ferry_state.h"
#include "ferry_test.h"
#include "worker_status.h"

#define CHECK_NEAR(a, b) CHECK(fabs((double)(a) - (double)(b)) < 1e-6)

static ferry_migration_state retried(void)
{
    /* First attempt started at t=0 and failed; the retry took the lease at t=80 s with
     * 100 objects done and has copied 1,132 more in 9 s (the case from issue 13). */
    ferry_migration_state st = {0};
    st.status = FERRY_MIG_RUNNING;
    st.started_at_ms = 1000000;
    st.attempt_started_at_ms = st.started_at_ms + 80000;
    st.attempt_objects = 100;
    st.attempt_bytes = 100 * 1024;
    st.objects_done = 100 + 1132;
    st.bytes_done = (100 + 1132) * 1024;
    st.objects_total = 100 + 1132 + 1258;
    st.attempts = 2;
    return st;
}

static void test_rate_of_current_attempt(void)
{
    ferry_migration_state st = retried();
    int64_t now = st.attempt_started_at_ms + 9000;
    double r = worker_status_rate(&st, now);
    CHECK_NEAR(r, 1132.0 / 9.0);
    CHECK_NEAR(worker_status_byte_rate(&st, now), 1132.0 * 1024 / 9.0);
    /* 1,258 left at ~125.8/s: 10 s, not the ~160 s the whole-life average gave. */
    CHECK_NEAR(worker_status_eta(&st, r), 1258.0 / (1132.0 / 9.0));
}

static void test_finished_attempt_ends_at_finish(void)
{
    ferry_migration_state st = retried();
    st.status = FERRY_MIG_DONE;
    st.finished_at_ms = st.attempt_started_at_ms + 10000;
    CHECK_NEAR(worker_status_rate(&st, st.finished_at_ms + 3600000), 1132.0 / 10.0);
    CHECK_INT((long long)worker_status_eta(&st, 1), -1);
}

static void test_no_attempt_fields_uses_whole_life(void)
{
    ferry_migration_state st = retried();
    st.attempt_started_at_ms = 0;
    st.attempt_objects = 0;
    st.attempt_bytes = 0;
    CHECK_NEAR(worker_status_rate(&st, st.started_at_ms + 89000), 1232.0 / 89.0);
}

static void test_just_started_has_no_rate(void)
{
    ferry_migration_state st = retried();
    CHECK_NEAR(worker_status_rate(&st, st.attempt_started_at_ms + 300), 0);
    CHECK_NEAR(worker_status_rate(&st, st.attempt_started_at_ms - 5000), 0); /* clock skew */
    CHECK_INT((long long)worker_status_eta(&st, 0), -1);
}

static void test_progress_unknown_while_listing(void)
{
    ferry_migration_state st = retried();
    CHECK_NEAR(ferry_migration_progress(&st), 1232.0 / 2490.0);
    /* Copied while listed: 200 of >= 200 is not 100 %, and there is no ETA. */
    st.objects_done = st.objects_total = 200;
    st.objects_total_lower_bound = 1;
    CHECK_INT((long long)ferry_migration_progress(&st), -1);
    CHECK_INT((long long)worker_status_eta(&st, 10), -1);
    st.objects_total_lower_bound = 0;
    CHECK_NEAR(ferry_migration_progress(&st), 1);
    st.objects_total = -1;
    CHECK_INT((long long)ferry_migration_progress(&st), -1);
    st.objects_done = st.objects_total = 0;
    CHECK_NEAR(ferry_migration_progress(&st), 0);
    st.status = FERRY_MIG_DONE;
    CHECK_NEAR(ferry_migration_progress(&st), 1);
}

int main(void)
{
    RUN(test_rate_of_current_attempt);
    RUN(test_finished_attempt_ends_at_finish);
    RUN(test_no_attempt_fields_uses_whole_life);
    RUN(test_just_started_has_no_rate);
    RUN(test_progress_unknown_while_listing);
    return TEST_EXIT();
}
