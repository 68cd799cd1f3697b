/* The worker's heartbeat (worker/worker_lease.c) against a real redis-server
 * (FERRY_REDIS_URL): with more leases tracked than one renewal round used to take (64),
 * every one of them stays held across several TTLs, and none is flagged lost.
 *
 * Datasets are named itl-<pid>-<n>; every key made is deleted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_connect.h"
#include "ferry_log.h"
#include "ferry_state.h"
#include "ferry_test.h"
#include "ferry_util.h"
#include "integ_env.h"
#include "worker.h"

#define NLEASES 200 /* above worker.concurrency's old effective limit of 64, below 256 */
#define TTL_MS 1000 /* lease.ttl_ms's minimum: renewed every ~333 ms */
#define WATCH_MS 4000

static char names[NLEASES][64];
static const char *url;

static void cleanup(ferry_redis *r)
{
    for (int i = 0; i < NLEASES; i++) {
        const char *suffix[] = {"state", "lease", "fence"};
        for (int k = 0; k < 3; k++) {
            char key[FERRY_STATE_KEY_MAX];
            const char *argv[2] = {"DEL", key};
            redisReply *rep = NULL;
            ferry_error err;
            if (ferry_state_key(key, sizeof(key), names[i], suffix[k], NULL) != FERRY_OK)
                continue;
            if (ferry_redis_command(r, 2, argv, NULL, &rep, &err) != FERRY_OK)
                fprintf(stderr, "cleanup: %s\n", err.msg);
            freeReplyObject(rep);
        }
    }
}

static void test_every_lease_is_renewed(void)
{
    char errstr[512];
    ferry_conf *conf = ferry_conf_new(worker_conf_defs);
    worker w = {0};
    ferry_redis *r = NULL;
    static ferry_lease leases[NLEASES];
    static atomic_int lost[NLEASES];
    char ttl[16];
    int held = 0;
    int64_t until;

    snprintf(ttl, sizeof(ttl), "%d", TTL_MS);
    if (!conf || ferry_conf_set(conf, "redis.url", url, 0, errstr, sizeof(errstr)) != 0 ||
        ferry_conf_set(conf, "lease.ttl_ms", ttl, 0, errstr, sizeof(errstr)) != 0 ||
        ferry_conf_set(conf, "worker.concurrency", "256", 0, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "conf: %s\n", errstr);
        exit(1);
    }
    w.conf = conf;
    r = ferry_connect_redis(conf, errstr, sizeof(errstr));
    if (!r) {
        fprintf(stderr, "redis: %s\n", errstr);
        exit(1);
    }
    for (int i = 0; i < NLEASES; i++) {
        ferry_acquire_req q = {0};
        ferry_acquire_result res = {0};
        ferry_error err;
        snprintf(names[i], sizeof(names[i]), "itl-%d-%d", (int)getpid(), i);
        q.dataset = names[i];
        q.worker = "lease-test/0";
        q.event_id = "ev";
        q.spec_hash = "spec";
        q.ttl_ms = TTL_MS;
        CHECK_INT(ferry_state_acquire(r, &q, &res, &err), FERRY_OK);
        CHECK_INT(res.outcome, FERRY_ACQUIRE_OK);
        leases[i] = res.lease;
        atomic_init(&lost[i], 0);
        ferry_acquire_result_clear(&res);
    }
    CHECK_INT(worker_lease_start(&w, errstr, sizeof(errstr)), 0);
    for (int i = 0; i < NLEASES; i++)
        worker_lease_track(&w, &leases[i], names[i], &lost[i]);

    /* Several TTLs: a lease left out of the renewal expires within one. */
    until = ferry_mono_ms() + WATCH_MS;
    while (ferry_mono_ms() < until) {
        held = 0;
        for (int i = 0; i < NLEASES; i++) {
            ferry_migration_state st = {0};
            ferry_error err;
            if (ferry_state_get(r, names[i], &st, &err) == FERRY_OK && st.lease_holder &&
                !atomic_load(&lost[i]))
                held++;
            else if (held == i)
                fprintf(stderr, "lease %d (%s) not held after %lld ms (holder %s, lost %d)\n",
                        i, names[i], (long long)(WATCH_MS - (until - ferry_mono_ms())),
                        st.lease_holder ? st.lease_holder : "none", atomic_load(&lost[i]));
            ferry_migration_state_clear(&st);
        }
        if (held != NLEASES)
            break;
        ferry_sleep_ms(100);
    }
    CHECK_INT(held, NLEASES);
    for (int i = 0; i < NLEASES; i++)
        worker_lease_untrack(&w, names[i]);
    worker_lease_stop(&w);
    cleanup(r);
    ferry_redis_destroy(r);
    ferry_conf_destroy(conf);
}

int main(void)
{
    url = integ_require_env("FERRY_REDIS_URL");
    ferry_log_set_level(FERRY_LOG_WARN);
    RUN(test_every_lease_is_renewed);
    return TEST_EXIT();
}
