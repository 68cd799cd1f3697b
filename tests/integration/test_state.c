/* ferry_redis + ferry_state against a real redis-server (FERRY_REDIS_URL), plus a fake
 * server that answers canned error replies to check their classification.
 *
 * Datasets are named it-<pid>-<n>-... so runs do not collide; every key made is deleted. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ferry_redis.h"
#include "ferry_state.h"
#include "ferry_test.h"
#include "integ_env.h"

static const char *redis_url;
static char names[128][64];
static int n_names;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static ferry_redis *open_handle(int command_timeout_ms)
{
    ferry_redis_conf c;
    char es[256];
    ferry_redis *r;

    ferry_redis_conf_init(&c);
    if (ferry_redis_conf_parse_url(&c, redis_url, es, sizeof(es)) != 0) {
        fprintf(stderr, "FERRY_REDIS_URL: %s\n", es);
        exit(1);
    }
    if (command_timeout_ms)
        c.command_timeout_ms = command_timeout_ms;
    r = ferry_redis_new(&c, es, sizeof(es));
    ferry_redis_conf_clear(&c);
    if (!r) {
        fprintf(stderr, "ferry_redis_new: %s\n", es);
        exit(1);
    }
    return r;
}

/* A fresh dataset name, remembered for cleanup. */
static const char *dataset(const char *tag)
{
    static int seq;
    if (n_names >= (int)(sizeof(names) / sizeof(names[0]))) {
        fprintf(stderr, "too many datasets\n");
        exit(1);
    }
    snprintf(names[n_names], sizeof(names[0]), "it-%d-%d-%s", (int)getpid(), seq++, tag);
    return names[n_names++];
}

static ferry_rc cmd(ferry_redis *r, redisReply **rep, ferry_error *err, int argc, ...)
{
    const char *argv[16];
    va_list ap;

    va_start(ap, argc);
    for (int i = 0; i < argc && i < 16; i++)
        argv[i] = va_arg(ap, const char *);
    va_end(ap);
    return ferry_redis_command(r, argc, argv, NULL, rep, err);
}

static void cleanup(ferry_redis *r)
{
    for (int i = 0; i < n_names; i++) {
        char s[FERRY_STATE_KEY_MAX], l[FERRY_STATE_KEY_MAX], f[FERRY_STATE_KEY_MAX];
        redisReply *rep = NULL;
        ferry_error err;
        ferry_state_key(s, sizeof(s), names[i], "state", NULL);
        ferry_state_key(l, sizeof(l), names[i], "lease", NULL);
        ferry_state_key(f, sizeof(f), names[i], "fence", NULL);
        if (cmd(r, &rep, &err, 4, "DEL", s, l, f) != FERRY_OK)
            fprintf(stderr, "cleanup: %s\n", err.msg);
        freeReplyObject(rep);
    }
}

static ferry_acquire_req req_for(const char *ds, const char *worker, const char *event,
                                 int64_t ttl_ms)
{
    ferry_acquire_req q = {0};
    q.dataset = ds;
    q.worker = worker;
    q.event_id = event;
    q.spec_hash = "spec-1";
    q.source_uri = "s3://src/data";
    q.target_uri = "s3://dst/data";
    q.ttl_ms = ttl_ms;
    return q;
}

/* ---- connection ------------------------------------------------------------------- */

static int closed_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &al);
    port = ntohs(a.sin_port);
    close(fd); /* nothing listens there now */
    return port;
}

static void test_closed_port_retryable(void)
{
    ferry_redis_conf c;
    ferry_redis *r;
    ferry_error err;
    char es[256];
    int64_t t0;
    ferry_acquire_result res;
    ferry_acquire_req q = req_for("it-closed", "w", "e", 1000);

    ferry_redis_conf_init(&c);
    c.port = closed_port();
    c.connect_timeout_ms = 500;
    snprintf(c.password, sizeof(c.password), "never-shown-pw");
    r = ferry_redis_new(&c, es, sizeof(es));
    CHECK(r != NULL);
    if (!r)
        return;
    t0 = mono_ms();
    CHECK_INT(ferry_redis_ping(r, &err), FERRY_ERR_RETRYABLE);
    CHECK_STR(err.cls, FERRY_EC_REDIS);
    CHECK(strstr(err.msg, "connect") != NULL);
    CHECK(strstr(err.msg, "never-shown-pw") == NULL);
    CHECK(mono_ms() - t0 < 1000);
    /* state calls say the same, and nothing is skipped */
    CHECK_INT(ferry_state_acquire(r, &q, &res, &err), FERRY_ERR_RETRYABLE);
    CHECK_STR(err.cls, FERRY_EC_REDIS);
    /* again: each call tries to connect again */
    CHECK_INT(ferry_redis_ping(r, &err), FERRY_ERR_RETRYABLE);
    ferry_redis_destroy(r);

    /* a server that never completes the handshake: a listener whose accept queue is
     * full drops further SYNs, so the connect timeout alone ends the wait */
    struct sockaddr_in a = {0};
    socklen_t al = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fill[4];
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(lfd, 0) == 0);
    getsockname(lfd, (struct sockaddr *)&a, &al);
    for (int i = 0; i < 4; i++) { /* fill the queue, never accepted */
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fill[i], (struct sockaddr *)&a, sizeof(a));
    }
    sleep_ms(50);
    ferry_redis_conf_init(&c);
    c.port = ntohs(a.sin_port);
    c.connect_timeout_ms = 300;
    r = ferry_redis_new(&c, es, sizeof(es));
    t0 = mono_ms();
    CHECK_INT(ferry_redis_ping(r, &err), FERRY_ERR_RETRYABLE);
    int64_t took = mono_ms() - t0;
    CHECK_STR(err.cls, FERRY_EC_REDIS);
    CHECK(strstr(err.msg, "timed out after 300 ms") != NULL);
    CHECK(took >= 250 && took < 1500);
    fprintf(stderr, "  full accept queue: %s (%" PRId64 " ms)\n", err.msg, took);
    ferry_redis_destroy(r);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
}

static long long client_id(ferry_redis *r)
{
    redisReply *rep = NULL;
    ferry_error err;
    long long id = -1;

    if (cmd(r, &rep, &err, 2, "CLIENT", "ID") == FERRY_OK && rep->type == REDIS_REPLY_INTEGER)
        id = rep->integer;
    freeReplyObject(rep);
    return id;
}

static void test_reconnect_after_client_kill(void)
{
    ferry_redis *a = open_handle(0), *admin = open_handle(0);
    ferry_error err;
    redisReply *rep = NULL;
    char idbuf[32];
    long long id1, id2;

    id1 = client_id(a);
    CHECK(id1 > 0);
    snprintf(idbuf, sizeof(idbuf), "%lld", id1);
    CHECK_INT(cmd(admin, &rep, &err, 4, "CLIENT", "KILL", "ID", idbuf), FERRY_OK);
    CHECK(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1);
    freeReplyObject(rep);
    sleep_ms(50); /* let the FIN arrive */

    /* the closed idle connection is noticed before sending: this call succeeds */
    CHECK_INT(ferry_redis_ping(a, &err), FERRY_OK);
    id2 = client_id(a);
    CHECK(id2 > 0 && id2 != id1);

    /* state calls work on the new connection */
    const char *ds = dataset("kill");
    ferry_migration_state st;
    CHECK_INT(ferry_state_get(a, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_NONE);
    ferry_migration_state_clear(&st);
    ferry_redis_destroy(a);
    ferry_redis_destroy(admin);
}

static void test_command_timeout_then_reconnect(void)
{
    ferry_redis *a = open_handle(200);
    ferry_error err;
    redisReply *rep = NULL;
    char key[FERRY_STATE_KEY_MAX];
    int64_t t0;
    long long id1 = client_id(a);

    ferry_state_key(key, sizeof(key), dataset("blpop"), "list", NULL);
    t0 = mono_ms();
    /* blocks 5 s server-side; our 200 ms read timeout gives up first */
    CHECK_INT(cmd(a, &rep, &err, 3, "BLPOP", key, "5"), FERRY_ERR_RETRYABLE);
    CHECK(rep == NULL);
    CHECK_STR(err.cls, FERRY_EC_REDIS);
    CHECK(strstr(err.msg, "timed out") != NULL);
    CHECK(strstr(err.msg, key) == NULL); /* arguments are never in messages */
    CHECK(mono_ms() - t0 < 2000);
    /* the broken connection was dropped; the next call reconnects */
    CHECK_INT(ferry_redis_ping(a, &err), FERRY_OK);
    CHECK(client_id(a) != id1);
    ferry_redis_destroy(a);
}

static void test_noscript_fallback(void)
{
    ferry_redis *a = open_handle(0), *admin = open_handle(0);
    const char *ds = dataset("noscript");
    ferry_migration_state st;
    ferry_error err;
    redisReply *rep = NULL;

    CHECK_INT(ferry_state_get(a, ds, &st, &err), FERRY_OK); /* SCRIPT LOAD + EVALSHA */
    ferry_migration_state_clear(&st);
    CHECK_INT(cmd(admin, &rep, &err, 2, "SCRIPT", "FLUSH"), FERRY_OK);
    freeReplyObject(rep);
    CHECK_INT(ferry_state_get(a, ds, &st, &err), FERRY_OK); /* NOSCRIPT -> EVAL */
    ferry_migration_state_clear(&st);
    CHECK_INT(ferry_state_get(a, ds, &st, &err), FERRY_OK); /* EVALSHA again */
    CHECK_INT(st.status, FERRY_MIG_NONE);
    ferry_migration_state_clear(&st);
    ferry_redis_destroy(a);
    ferry_redis_destroy(admin);
}

/* ---- lease ------------------------------------------------------------------------ */

static void test_acquire_busy_renew_release(void)
{
    ferry_redis *r = open_handle(0);
    const char *ds = dataset("busy");
    ferry_acquire_req qa = req_for(ds, "worker-a", "ev-1", 30000);
    ferry_acquire_req qb = req_for(ds, "worker-b", "ev-1", 30000);
    ferry_acquire_result a, b;
    ferry_migration_state st;
    ferry_error err;
    int64_t t0 = now_ms();

    CHECK_INT(ferry_state_acquire(r, &qa, &a, &err), FERRY_OK);
    CHECK_INT(a.outcome, FERRY_ACQUIRE_OK);
    CHECK(a.lease.fence >= 1);
    CHECK_STR(a.lease.worker, "worker-a");
    CHECK_STR(a.lease.dataset, ds);
    CHECK_INT(a.resumed, 0);
    CHECK_INT(a.took_over, 0);
    CHECK(a.checkpoint == NULL);
    CHECK_INT(a.objects_done, 0);
    CHECK_INT(a.objects_total, -1);
    CHECK_INT(a.attempts, 1);

    CHECK_INT(ferry_state_acquire(r, &qb, &b, &err), FERRY_OK);
    CHECK_INT(b.outcome, FERRY_ACQUIRE_BUSY);
    char want[64];
    snprintf(want, sizeof(want), "worker-a:%" PRId64, a.lease.fence);
    CHECK_STR(b.holder, want);
    CHECK(b.holder_ttl_ms > 25000 && b.holder_ttl_ms <= 30000);
    ferry_acquire_result_clear(&b);

    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_RUNNING);
    CHECK_STR(st.dataset, ds);
    CHECK_STR(st.worker, "worker-a");
    CHECK_STR(st.event_id, "ev-1");
    CHECK_STR(st.spec_hash, "spec-1");
    CHECK_STR(st.source_uri, "s3://src/data");
    CHECK_STR(st.target_uri, "s3://dst/data");
    CHECK_INT(st.fence, a.lease.fence);
    CHECK_STR(st.lease_holder, want);
    CHECK(st.lease_ttl_ms > 25000);
    /* server time, same machine: within a few seconds of ours */
    CHECK(st.started_at_ms >= t0 - 5000 && st.started_at_ms <= now_ms() + 5000);
    CHECK_INT(st.updated_at_ms, st.started_at_ms);
    CHECK_INT(st.finished_at_ms, 0);
    CHECK(st.checkpoint == NULL);
    ferry_migration_state_clear(&st);

    /* renew: a shorter TTL shows it was applied */
    ferry_lease l = a.lease;
    l.ttl_ms = 10000;
    CHECK_INT(ferry_state_renew(r, &l, &err), FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK(st.lease_ttl_ms > 5000 && st.lease_ttl_ms <= 10000);
    ferry_migration_state_clear(&st);

    /* a wrong fence cannot renew or release */
    ferry_lease wrong = a.lease;
    wrong.fence++;
    CHECK_INT(ferry_state_renew(r, &wrong, &err), FERRY_ERR_CANCELLED);
    CHECK_STR(err.cls, FERRY_EC_FENCED);
    CHECK_INT(ferry_state_release(r, &wrong, &err), FERRY_ERR_CANCELLED);
    CHECK_STR(err.cls, FERRY_EC_FENCED);

    /* release keeps the checkpoint and marks the migration pending */
    ferry_checkpoint cp = {"k/0001", 1, 10, -1, -1, -1, -1, -1, NULL, NULL, 0, 0};
    CHECK_INT(ferry_state_checkpoint(r, &a.lease, &cp, &err), FERRY_OK);
    CHECK_INT(ferry_state_release(r, &a.lease, &err), FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_PENDING);
    CHECK(st.lease_holder == NULL);
    CHECK_INT(st.lease_ttl_ms, -1);
    CHECK_STR(st.checkpoint, "k/0001");
    ferry_migration_state_clear(&st);
    /* releasing twice: not ours any more */
    CHECK_INT(ferry_state_release(r, &a.lease, &err), FERRY_ERR_CANCELLED);
    CHECK_INT(ferry_state_renew(r, &a.lease, &err), FERRY_ERR_CANCELLED);

    /* B can take it now and resumes from A's checkpoint (same event and spec) */
    CHECK_INT(ferry_state_acquire(r, &qb, &b, &err), FERRY_OK);
    CHECK_INT(b.outcome, FERRY_ACQUIRE_OK);
    CHECK_INT(b.lease.fence, a.lease.fence + 1);
    CHECK_INT(b.resumed, 1);
    CHECK_STR(b.checkpoint, "k/0001");
    CHECK_INT(b.objects_done, 1);
    CHECK_INT(b.bytes_done, 10);
    CHECK_INT(b.attempts, 2);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_RUNNING);
    CHECK_STR(st.worker, "worker-b");
    /* the current attempt (status rates, issue 13 item 5): its start and the counts it
     * started from */
    CHECK(st.attempt_started_at_ms >= st.started_at_ms && st.attempt_started_at_ms > 0);
    CHECK_INT(st.attempt_objects, 1);
    CHECK_INT(st.attempt_bytes, 10);
    ferry_migration_state_clear(&st);

    ferry_acquire_result_clear(&a);
    ferry_acquire_result_clear(&b);
    ferry_redis_destroy(r);
}

static void test_fencing_after_expiry(void)
{
    ferry_redis *ra = open_handle(0), *rb = open_handle(0);
    const char *ds = dataset("fence");
    ferry_acquire_req qa = req_for(ds, "worker-a", "ev-1", 150);
    ferry_acquire_req qb = req_for(ds, "worker-b", "ev-1", 30000);
    ferry_acquire_result a, b;
    ferry_migration_state st;
    ferry_error err;

    CHECK_INT(ferry_state_acquire(ra, &qa, &a, &err), FERRY_OK);
    CHECK_INT(a.outcome, FERRY_ACQUIRE_OK);
    ferry_checkpoint cpa1 = {"a/0010", 10, 1000, 100, -1, -1, -1, -1, NULL, NULL, 0, 0};
    CHECK_INT(ferry_state_checkpoint(ra, &a.lease, &cpa1, &err), FERRY_OK);

    sleep_ms(300); /* A is "paused" past its lease */

    CHECK_INT(ferry_state_acquire(rb, &qb, &b, &err), FERRY_OK);
    CHECK_INT(b.outcome, FERRY_ACQUIRE_OK);
    CHECK_INT(b.lease.fence, a.lease.fence + 1);
    CHECK_INT(b.resumed, 1);
    CHECK_STR(b.checkpoint, "a/0010");
    CHECK_INT(b.objects_total, 100);

    /* A wakes up and writes: refused, with the new holder in the message */
    ferry_checkpoint cpa2 = {"a/0099", 99, 9900, -1, -1, -1, -1, -1, NULL, NULL, 0, 0};
    ferry_error_clear(&err);
    CHECK_INT(ferry_state_checkpoint(ra, &a.lease, &cpa2, &err), FERRY_ERR_CANCELLED);
    CHECK_STR(err.cls, FERRY_EC_FENCED);
    CHECK(strstr(err.msg, "worker-b") != NULL);
    CHECK_INT(ferry_state_renew(ra, &a.lease, &err), FERRY_ERR_CANCELLED);
    CHECK_INT(ferry_state_mark_done(ra, &a.lease, 99, 9900, -1, &err), FERRY_ERR_CANCELLED);
    CHECK_INT(ferry_state_mark_failed(ra, &a.lease, "s3-server", "boom", &err),
              FERRY_ERR_CANCELLED);
    CHECK_INT(ferry_state_release(ra, &a.lease, &err), FERRY_ERR_CANCELLED);

    /* B's write is accepted */
    ferry_checkpoint cpb = {"a/0020", 20, 2000, -1, -1, -1, -1, -1, NULL, NULL, 0, 0};
    CHECK_INT(ferry_state_checkpoint(rb, &b.lease, &cpb, &err), FERRY_OK);

    /* A tries once more after B: still refused */
    CHECK_INT(ferry_state_checkpoint(ra, &a.lease, &cpa2, &err), FERRY_ERR_CANCELLED);

    CHECK_INT(ferry_state_get(rb, ds, &st, &err), FERRY_OK);
    CHECK_STR(st.checkpoint, "a/0020");
    CHECK_INT(st.objects_done, 20);
    CHECK_INT(st.bytes_done, 2000);
    CHECK_INT(st.objects_total, 100); /* -1 left it alone */
    CHECK_STR(st.worker, "worker-b");
    CHECK_INT(st.fence, b.lease.fence);
    CHECK_INT(st.status, FERRY_MIG_RUNNING);
    ferry_migration_state_clear(&st);

    /* a lease that expired while nobody took it still refuses the stale writer */
    const char *ds2 = dataset("expired");
    ferry_acquire_req q2 = req_for(ds2, "worker-a", "ev-9", 100);
    ferry_acquire_result a2;
    CHECK_INT(ferry_state_acquire(ra, &q2, &a2, &err), FERRY_OK);
    sleep_ms(250);
    ferry_checkpoint cpx = {"x", 1, 1, -1, -1, -1, -1, -1, NULL, NULL, 0, 0};
    CHECK_INT(ferry_state_checkpoint(ra, &a2.lease, &cpx, &err), FERRY_ERR_CANCELLED);
    CHECK(strstr(err.msg, "free") != NULL);

    ferry_acquire_result_clear(&a2);
    ferry_acquire_result_clear(&a);
    ferry_acquire_result_clear(&b);
    ferry_redis_destroy(ra);
    ferry_redis_destroy(rb);
}

static void test_same_worker_takes_over(void)
{
    ferry_redis *r = open_handle(0);
    const char *ds = dataset("takeover");
    ferry_acquire_req q = req_for(ds, "pod-0", "ev-1", 30000);
    ferry_acquire_result a, a2;
    ferry_error err;

    CHECK_INT(ferry_state_acquire(r, &q, &a, &err), FERRY_OK);
    CHECK_INT(a.outcome, FERRY_ACQUIRE_OK);
    /* the same worker id (a restarted pod) does not wait for its own old lease */
    CHECK_INT(ferry_state_acquire(r, &q, &a2, &err), FERRY_OK);
    CHECK_INT(a2.outcome, FERRY_ACQUIRE_OK);
    CHECK_INT(a2.took_over, 1);
    CHECK_INT(a2.resumed, 1);
    CHECK_INT(a2.lease.fence, a.lease.fence + 1);
    ferry_checkpoint cp = {"k", 1, 1, -1, -1, -1, -1, -1, NULL, NULL, 0, 0};
    CHECK_INT(ferry_state_checkpoint(r, &a.lease, &cp, &err), FERRY_ERR_CANCELLED);
    CHECK_INT(ferry_state_checkpoint(r, &a2.lease, &cp, &err), FERRY_OK);

    /* a worker id that merely starts with ours is someone else */
    ferry_acquire_req q2 = req_for(ds, "pod", "ev-1", 30000);
    ferry_acquire_result o;
    CHECK_INT(ferry_state_acquire(r, &q2, &o, &err), FERRY_OK);
    CHECK_INT(o.outcome, FERRY_ACQUIRE_BUSY);
    ferry_acquire_result_clear(&o);
    ferry_acquire_req q3 = req_for(ds, "pod-0:1", "ev-1", 30000);
    CHECK_INT(ferry_state_acquire(r, &q3, &o, &err), FERRY_OK);
    CHECK_INT(o.outcome, FERRY_ACQUIRE_BUSY);
    ferry_acquire_result_clear(&o);

    ferry_acquire_result_clear(&a);
    ferry_acquire_result_clear(&a2);
    ferry_redis_destroy(r);
}

/* ---- outcome ---------------------------------------------------------------------- */

/* "n of >= m": a checkpoint may say the total is only a lower bound (the source is still
 * being listed); the next checkpoint without it, and done, clear it. */
static void test_total_lower_bound(void)
{
    ferry_redis *r = open_handle(0);
    const char *ds = dataset("lowerbound");
    ferry_acquire_req q = req_for(ds, "worker-a", "ev-1", 30000);
    ferry_acquire_result a;
    ferry_migration_state st;
    ferry_error err;

    CHECK_INT(ferry_state_acquire(r, &q, &a, &err), FERRY_OK);
    ferry_checkpoint lb = {"k/0100", 100, 1000, 2000, -1, -1, -1, -1, NULL, NULL, 0, 1};
    CHECK_INT(ferry_state_checkpoint(r, &a.lease, &lb, &err), FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.objects_total, 2000);
    CHECK_INT(st.objects_total_lower_bound, 1);
    ferry_migration_state_clear(&st);
    ferry_checkpoint exact = {"k/0200", 200, 2000, 2500, -1, -1, -1, -1, NULL, NULL, 0, 0};
    CHECK_INT(ferry_state_checkpoint(r, &a.lease, &exact, &err), FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.objects_total, 2500);
    CHECK_INT(st.objects_total_lower_bound, 0);
    ferry_migration_state_clear(&st);
    CHECK_INT(ferry_state_checkpoint(r, &a.lease, &lb, &err), FERRY_OK);
    CHECK_INT(ferry_state_mark_done(r, &a.lease, 2500, 25000, 2500, &err), FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.objects_total, 2500);
    CHECK_INT(st.objects_total_lower_bound, 0);
    ferry_migration_state_clear(&st);
    ferry_acquire_result_clear(&a);
    ferry_redis_destroy(r);
}

static void test_done_and_already_done(void)
{
    ferry_redis *r = open_handle(0);
    const char *ds = dataset("done");
    ferry_acquire_req q = req_for(ds, "worker-a", "ev-1", 30000);
    ferry_acquire_result a, again;
    ferry_migration_state st;
    ferry_error err;
    /* counts beyond 2^53 survive the round trip (Lua never does arithmetic on them) */
    const int64_t big = 9007199254740993LL;

    CHECK_INT(ferry_state_acquire(r, &q, &a, &err), FERRY_OK);
    ferry_checkpoint cp = {"z/last", 5, big, 6, -1, -1, -1, -1, NULL, NULL, 0, 0};
    CHECK_INT(ferry_state_checkpoint(r, &a.lease, &cp, &err), FERRY_OK);
    CHECK_INT(ferry_state_mark_done(r, &a.lease, 6, big + 2, -1, &err), FERRY_OK);
    /* retried after a lost reply: still OK, nothing changes */
    CHECK_INT(ferry_state_mark_done(r, &a.lease, 6, big + 2, -1, &err), FERRY_OK);

    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_DONE);
    CHECK(st.lease_holder == NULL); /* released atomically */
    CHECK_INT(st.objects_done, 6);
    CHECK_INT(st.bytes_done, big + 2);
    CHECK_INT(st.objects_total, 6);
    CHECK(st.finished_at_ms >= st.started_at_ms && st.finished_at_ms > 0);
    CHECK(st.last_error == NULL);
    CHECK(st.error_class == NULL);
    int64_t finished = st.finished_at_ms;
    ferry_migration_state_clear(&st);

    /* the same event and spec again (redelivery): already done, nothing changed */
    ferry_acquire_req qb = req_for(ds, "worker-b", "ev-1", 30000);
    CHECK_INT(ferry_state_acquire(r, &qb, &again, &err), FERRY_OK);
    CHECK_INT(again.outcome, FERRY_ACQUIRE_ALREADY_DONE);
    CHECK_INT(again.finished_at_ms, finished);
    CHECK_INT(again.objects_done, 6);
    CHECK_INT(again.bytes_done, big + 2);
    ferry_acquire_result_clear(&again);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_DONE);
    CHECK_STR(st.worker, "worker-a");
    CHECK(st.lease_holder == NULL);
    ferry_migration_state_clear(&st);

    /* the same event with a different spec, or a new event: a fresh run */
    qb.spec_hash = "spec-2";
    CHECK_INT(ferry_state_acquire(r, &qb, &again, &err), FERRY_OK);
    CHECK_INT(again.outcome, FERRY_ACQUIRE_OK);
    CHECK_INT(again.resumed, 0);
    CHECK(again.checkpoint == NULL);
    CHECK_INT(again.objects_done, 0);
    CHECK_INT(again.objects_total, -1);
    CHECK_INT(again.attempts, 1);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.finished_at_ms, 0);
    CHECK_STR(st.spec_hash, "spec-2");
    ferry_migration_state_clear(&st);
    /* the old owner's "done" retry is now refused: its fence is no longer current */
    CHECK_INT(ferry_state_mark_done(r, &a.lease, 6, big + 2, -1, &err), FERRY_ERR_CANCELLED);
    ferry_acquire_result_clear(&again);

    ferry_acquire_result_clear(&a);
    ferry_redis_destroy(r);
}

/* ---- announcement claim --------------------------------------------------------------- */

typedef struct {
    const char *ds;
    char owner[32];
    pthread_barrier_t *go;
    ferry_announce_claim got;
    ferry_rc rc;
} claimer;

static void *claim_thread(void *arg)
{
    claimer *c = arg;
    ferry_redis *r = open_handle(0); /* one connection each, as workers have */
    ferry_error err;
    pthread_barrier_wait(c->go);
    c->rc = ferry_state_announce_claim(r, c->ds, "ev-1", c->owner, 30000, &c->got, &err);
    ferry_redis_destroy(r);
    return NULL;
}

/* Workers that finish the same event at once (the duplicate that arrives after mark_done
 * but before the marker): exactly one may announce; the others wait until it is recorded
 * as sent. A claimer that dies leaves a claim that expires, so the event is still
 * announced (at least once); a failed produce releases it at once. */
static void test_announce_claim(void)
{
    enum { N = 8 };
    ferry_redis *r = open_handle(0);
    const char *ds = dataset("announce");
    ferry_acquire_req q = req_for(ds, "worker-a", "ev-1", 30000);
    ferry_acquire_result a;
    ferry_announce_claim got;
    ferry_error err;
    pthread_barrier_t go;
    pthread_t th[N];
    claimer c[N];
    int claimed = 0, held = 0;

    CHECK_INT(ferry_state_acquire(r, &q, &a, &err), FERRY_OK);
    CHECK_INT(ferry_state_mark_done(r, &a.lease, 3, 30, -1, &err), FERRY_OK);

    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        c[i] = (claimer){ds, "", &go, FERRY_ANNOUNCE_SENT, FERRY_ERR_PERMANENT};
        snprintf(c[i].owner, sizeof(c[i].owner), "worker-%d/0", i);
        pthread_create(&th[i], NULL, claim_thread, &c[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(c[i].rc, FERRY_OK);
        claimed += c[i].got == FERRY_ANNOUNCE_CLAIMED;
        held += c[i].got == FERRY_ANNOUNCE_HELD;
    }
    pthread_barrier_destroy(&go);
    CHECK_INT(claimed, 1);
    CHECK_INT(held, N - 1);

    /* the claimer may claim again (a retried produce); the others still wait */
    for (int i = 0; i < N; i++) {
        if (c[i].got != FERRY_ANNOUNCE_CLAIMED)
            continue;
        CHECK_INT(ferry_state_announce_claim(r, ds, "ev-1", c[i].owner, 30000, &got, &err),
                  FERRY_OK);
        CHECK_INT(got, FERRY_ANNOUNCE_CLAIMED);
        /* its produce failed: released, so another claims at once */
        CHECK_INT(ferry_state_announce_release(r, ds, "ev-1", c[i].owner, &err), FERRY_OK);
    }
    CHECK_INT(ferry_state_announce_claim(r, ds, "ev-1", "worker-x/0", 300, &got, &err),
              FERRY_OK);
    CHECK_INT(got, FERRY_ANNOUNCE_CLAIMED);
    /* someone else's release does nothing */
    CHECK_INT(ferry_state_announce_release(r, ds, "ev-1", "worker-y/0", &err), FERRY_OK);
    CHECK_INT(ferry_state_announce_claim(r, ds, "ev-1", "worker-y/0", 30000, &got, &err),
              FERRY_OK);
    CHECK_INT(got, FERRY_ANNOUNCE_HELD);
    /* worker-x dies before producing: its claim expires and worker-y announces */
    int64_t deadline = mono_ms() + 10000;
    do {
        sleep_ms(50);
        CHECK_INT(ferry_state_announce_claim(r, ds, "ev-1", "worker-y/0", 30000, &got, &err),
                  FERRY_OK);
    } while (got == FERRY_ANNOUNCE_HELD && mono_ms() < deadline);
    CHECK_INT(got, FERRY_ANNOUNCE_CLAIMED);
    /* produced and recorded: everyone, the owner too, now finds it sent */
    CHECK_INT(ferry_state_notified_set(r, ds, "ev-1", &err), FERRY_OK);
    CHECK_INT(ferry_state_announce_claim(r, ds, "ev-1", "worker-y/0", 30000, &got, &err),
              FERRY_OK);
    CHECK_INT(got, FERRY_ANNOUNCE_SENT);
    CHECK_INT(ferry_state_announce_claim(r, ds, "ev-1", "worker-z/0", 30000, &got, &err),
              FERRY_OK);
    CHECK_INT(got, FERRY_ANNOUNCE_SENT);
    ferry_migration_state st;
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_DONE);
    ferry_migration_state_clear(&st);
    /* another event's hash is never written: nothing to guard, so announce */
    CHECK_INT(ferry_state_announce_claim(r, ds, "ev-0", "worker-z/0", 30000, &got, &err),
              FERRY_OK);
    CHECK_INT(got, FERRY_ANNOUNCE_CLAIMED);
    CHECK_INT(ferry_state_announce_claim(r, ds, "ev-0", "worker-y/0", 30000, &got, &err),
              FERRY_OK);
    CHECK_INT(got, FERRY_ANNOUNCE_CLAIMED);

    ferry_acquire_result_clear(&a);
    ferry_redis_destroy(r);
}

/* A running migration's last error (an S3 endpoint it waits for): written under the
 * fence, status unchanged, cleared by done; a stale owner is refused. */
static void test_note_error(void)
{
    ferry_redis *r = open_handle(0);
    const char *ds = dataset("noteerr");
    ferry_acquire_req q = req_for(ds, "worker-a", "ev-1", 30000);
    ferry_acquire_result a, b;
    ferry_migration_state st;
    ferry_error err;

    CHECK_INT(ferry_state_acquire(r, &q, &a, &err), FERRY_OK);
    CHECK_INT(ferry_state_note_error(r, &a.lease, FERRY_EC_S3_STALL,
                                     "waiting for S3 endpoint http://s3:9000, down", &err),
              FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_RUNNING);
    CHECK_STR(st.error_class, FERRY_EC_S3_STALL);
    CHECK_STR(st.last_error, "waiting for S3 endpoint http://s3:9000, down");
    CHECK(st.lease_holder != NULL);
    ferry_migration_state_clear(&st);
    CHECK_INT(ferry_state_mark_done(r, &a.lease, 1, 1, 1, &err), FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK(st.last_error == NULL && st.error_class == NULL);
    ferry_migration_state_clear(&st);

    /* a new owner: the old one's note is refused and writes nothing */
    ferry_acquire_req q2 = req_for(ds, "worker-b", "ev-2", 30000);
    CHECK_INT(ferry_state_acquire(r, &q2, &b, &err), FERRY_OK);
    CHECK_INT(ferry_state_note_error(r, &a.lease, FERRY_EC_S3_NETWORK, "stale", &err),
              FERRY_ERR_CANCELLED);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK(st.last_error == NULL);
    ferry_migration_state_clear(&st);
    ferry_acquire_result_clear(&b);
    ferry_acquire_result_clear(&a);
    ferry_redis_destroy(r);
}

static void test_failed(void)
{
    ferry_redis *r = open_handle(0);
    const char *ds = dataset("failed");
    ferry_acquire_req q = req_for(ds, "worker-a", "ev-1", 30000);
    ferry_acquire_result a, b;
    ferry_migration_state st;
    ferry_error err;
    char longmsg[2000];

    CHECK_INT(ferry_state_acquire(r, &q, &a, &err), FERRY_OK);
    ferry_checkpoint cp = {"p/0003", 3, 300, -1, -1, -1, -1, -1, NULL, NULL, 0, 0};
    CHECK_INT(ferry_state_checkpoint(r, &a.lease, &cp, &err), FERRY_OK);
    /* a message over 1024 bytes, cut inside a 2-byte UTF-8 sequence */
    memset(longmsg, 'e', sizeof(longmsg));
    longmsg[1023] = (char)0xc3;
    longmsg[1024] = (char)0xa9;
    longmsg[sizeof(longmsg) - 1] = '\0';
    CHECK_INT(ferry_state_mark_failed(r, &a.lease, FERRY_EC_S3_AUTH, longmsg, &err), FERRY_OK);
    CHECK_INT(ferry_state_mark_failed(r, &a.lease, FERRY_EC_S3_AUTH, longmsg, &err), FERRY_OK);

    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_FAILED);
    CHECK_STR(st.error_class, FERRY_EC_S3_AUTH);
    CHECK(st.last_error && strlen(st.last_error) == 1023); /* not split mid-character */
    CHECK(st.lease_holder == NULL);
    CHECK_STR(st.checkpoint, "p/0003");
    CHECK(st.finished_at_ms > 0);
    ferry_migration_state_clear(&st);

    /* a replay of the same event resumes from the checkpoint */
    CHECK_INT(ferry_state_acquire(r, &q, &b, &err), FERRY_OK);
    CHECK_INT(b.outcome, FERRY_ACQUIRE_OK);
    CHECK_INT(b.resumed, 1);
    CHECK_STR(b.checkpoint, "p/0003");
    CHECK_INT(b.attempts, 2);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_RUNNING);
    CHECK_INT(st.finished_at_ms, 0);
    CHECK_STR(st.error_class, FERRY_EC_S3_AUTH); /* history kept while resuming */
    ferry_migration_state_clear(&st);
    /* and done clears the error */
    CHECK_INT(ferry_state_mark_done(r, &b.lease, 4, 400, 4, &err), FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_DONE);
    CHECK(st.last_error == NULL && st.error_class == NULL);
    ferry_migration_state_clear(&st);

    /* unleased failure (validation): refused while someone holds the lease */
    const char *ds2 = dataset("unleased");
    ferry_acquire_req q2 = req_for(ds2, "worker-a", "ev-1", 30000);
    ferry_acquire_result c;
    CHECK_INT(ferry_state_acquire(r, &q2, &c, &err), FERRY_OK);
    ferry_fail_req f = {ds2,
                        "worker-z",
                        "ev-2",
                        "spec-x",
                        "s3://s",
                        "s3://t",
                        FERRY_EC_VALIDATION,
                        "target bucket does not exist"};
    CHECK_INT(ferry_state_mark_failed_unleased(r, &f, &err), FERRY_ERR_CANCELLED);
    CHECK_STR(err.cls, FERRY_EC_FENCED);
    CHECK_INT(ferry_state_get(r, ds2, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_RUNNING);
    ferry_migration_state_clear(&st);
    ferry_checkpoint cp2 = {"q/1", 1, 1, -1, -1, -1, -1, -1, NULL, NULL, 0, 0};
    CHECK_INT(ferry_state_checkpoint(r, &c.lease, &cp2, &err), FERRY_OK);
    CHECK_INT(ferry_state_release(r, &c.lease, &err), FERRY_OK);
    /* without a lease it is written; a new event drops the old checkpoint */
    CHECK_INT(ferry_state_mark_failed_unleased(r, &f, &err), FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds2, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_FAILED);
    CHECK_STR(st.event_id, "ev-2");
    CHECK_STR(st.worker, "worker-z");
    CHECK_STR(st.error_class, FERRY_EC_VALIDATION);
    CHECK_STR(st.last_error, "target bucket does not exist");
    CHECK_STR(st.source_uri, "s3://s");
    CHECK(st.checkpoint == NULL);
    CHECK_INT(st.objects_done, 0);
    CHECK_INT(st.attempts, 1);
    ferry_migration_state_clear(&st);
    CHECK_INT(ferry_state_mark_failed_unleased(r, &f, &err), FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds2, &st, &err), FERRY_OK);
    CHECK_INT(st.attempts, 2);
    ferry_migration_state_clear(&st);

    /* unleased on a dataset never seen */
    const char *ds3 = dataset("fresh-fail");
    ferry_fail_req f3 = {ds3, "w", "ev-3", NULL, NULL, NULL, NULL, NULL};
    CHECK_INT(ferry_state_mark_failed_unleased(r, &f3, &err), FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds3, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_FAILED);
    CHECK_STR(st.error_class, FERRY_EC_INTERNAL);
    CHECK(st.last_error == NULL);
    ferry_migration_state_clear(&st);

    ferry_acquire_result_clear(&a);
    ferry_acquire_result_clear(&b);
    ferry_acquire_result_clear(&c);
    ferry_redis_destroy(r);
}

/* Per-object failures: the report goes with the checkpoint, the counts into the state,
 * failed_objects is a final state, and the same event afterwards starts over with
 * recheck (report dropped, started_at kept). */
static void test_report_and_failed_objects(void)
{
    ferry_redis *r = open_handle(0);
    const char *ds = dataset("report");
    ferry_acquire_req q = req_for(ds, "worker-a", "ev-r", 30000);
    ferry_acquire_result a, b;
    ferry_migration_state st;
    ferry_error err;
    redisReply *rep = NULL;
    char report[600];
    ferry_report_entry entries[2] = {{"p/0002", "failed", FERRY_EC_S3_ARCHIVED,
                                      "403 InvalidObjectState: archived"},
                                     {"p/0003", "vanished", FERRY_EC_VANISHED,
                                      "404 NoSuchKey"}};

    CHECK_INT(ferry_state_report_key(report, sizeof(report), ds, "ev-r", &err), FERRY_OK);
    CHECK_INT(ferry_state_acquire(r, &q, &a, &err), FERRY_OK);
    CHECK_INT(a.recheck, 0);
    CHECK(a.started_at_ms > 0);
    {
        ferry_checkpoint cp = {"p/0004", 2, 200, 4, 2, 0, 1, 1, "ev-r", entries, 2, 0};
        CHECK_INT(ferry_state_checkpoint(r, &a.lease, &cp, &err), FERRY_OK);
        CHECK_INT(ferry_state_checkpoint(r, &a.lease, &cp, &err), FERRY_OK); /* idempotent */
    }
    CHECK_INT(cmd(r, &rep, &err, 2, "HLEN", report), FERRY_OK);
    CHECK(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 2);
    freeReplyObject(rep);
    CHECK_INT(cmd(r, &rep, &err, 3, "HGET", report, "p/0002"), FERRY_OK);
    CHECK(rep && rep->type == REDIS_REPLY_STRING &&
          strstr(rep->str, "\"class\":\"s3-archived\"") &&
          strstr(rep->str, "\"outcome\":\"failed\""));
    freeReplyObject(rep);
    CHECK_INT(cmd(r, &rep, &err, 2, "PTTL", report), FERRY_OK);
    CHECK(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0);
    freeReplyObject(rep);
    CHECK_INT(ferry_state_mark_failed_objects(r, &a.lease, 2, 200, 4, FERRY_EC_FAILED_OBJECTS,
                                              "1 objects failed", &err),
              FERRY_OK);
    CHECK_INT(ferry_state_get(r, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_FAILED_OBJECTS);
    CHECK_STR(ferry_mig_status_name(st.status), "failed_objects");
    CHECK_INT(st.objects_copied, 2);
    CHECK_INT(st.objects_identical, 0);
    CHECK_INT(st.objects_vanished, 1);
    CHECK_INT(st.objects_failed, 1);
    CHECK_STR(st.report, report);
    CHECK_STR(st.error_class, FERRY_EC_FAILED_OBJECTS);
    CHECK(st.lease_holder == NULL);
    int64_t started = st.started_at_ms;
    ferry_migration_state_clear(&st);

    /* the same event again (a replay): a fresh start that checks every object */
    CHECK_INT(ferry_state_acquire(r, &q, &b, &err), FERRY_OK);
    CHECK_INT(b.outcome, FERRY_ACQUIRE_OK);
    CHECK_INT(b.recheck, 1);
    CHECK_INT(b.resumed, 0);
    CHECK(b.checkpoint == NULL);
    CHECK_INT(b.objects_failed, 0);
    CHECK(b.started_at_ms == started);
    CHECK_INT(cmd(r, &rep, &err, 2, "EXISTS", report), FERRY_OK);
    CHECK(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0);
    freeReplyObject(rep);
    /* that run, stopped and resumed, still checks every object */
    ferry_acquire_result c;
    CHECK_INT(ferry_state_release(r, &b.lease, &err), FERRY_OK);
    CHECK_INT(ferry_state_acquire(r, &q, &c, &err), FERRY_OK);
    CHECK_INT(c.resumed, 1);
    CHECK_INT(c.recheck, 1);
    ferry_acquire_result_clear(&c);
    ferry_acquire_result_clear(&a);
    ferry_acquire_result_clear(&b);
    ferry_redis_destroy(r);
}

static void test_invalid_requests(void)
{
    ferry_redis *r = open_handle(0);
    ferry_acquire_result res;
    ferry_migration_state st;
    ferry_error err;

    ferry_acquire_req q = req_for("bad{name}", "w", "e", 1000);
    CHECK_INT(ferry_state_acquire(r, &q, &res, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_INVALID_SPEC);
    CHECK_INT(ferry_state_get(r, "a\nb", &st, &err), FERRY_ERR_PERMANENT);
    q = req_for("ok-name", "", "e", 1000);
    CHECK_INT(ferry_state_acquire(r, &q, &res, &err), FERRY_ERR_PERMANENT);
    q = req_for("ok-name", "w", NULL, 1000);
    CHECK_INT(ferry_state_acquire(r, &q, &res, &err), FERRY_ERR_PERMANENT);
    q = req_for("ok-name", "w", "e", 0);
    CHECK_INT(ferry_state_acquire(r, &q, &res, &err), FERRY_ERR_PERMANENT);
    ferry_lease l = {"ok-name", "w", 0, 1000};
    CHECK_INT(ferry_state_renew(r, &l, &err), FERRY_ERR_PERMANENT);

    /* a key of the wrong type: the script fails, PERMANENT "redis", no arguments shown */
    const char *ds = dataset("wrongtype");
    char key[FERRY_STATE_KEY_MAX];
    redisReply *rep = NULL;
    ferry_state_key(key, sizeof(key), ds, "state", NULL);
    CHECK_INT(cmd(r, &rep, &err, 3, "SET", key, "not-a-hash"), FERRY_OK);
    freeReplyObject(rep);
    q = req_for(ds, "w", "secret-event-id", 1000);
    CHECK_INT(ferry_state_acquire(r, &q, &res, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_REDIS);
    CHECK(strstr(err.msg, "WRONGTYPE") != NULL);
    CHECK(strstr(err.msg, "secret-event-id") == NULL);
    /* the connection is still fine */
    CHECK_INT(ferry_redis_ping(r, &err), FERRY_OK);
    ferry_redis_destroy(r);
}

/* ---- iteration -------------------------------------------------------------------- */

static void test_scan_iterator(void)
{
    enum { N = 40 };
    ferry_redis *r = open_handle(0);
    int first = n_names, seen[N] = {0}, dup = 0, total = 0;
    ferry_error err;

    for (int i = 0; i < N; i++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "scan%02d", i);
        ferry_fail_req f = {dataset(tag), "w", "ev", NULL, NULL, NULL, "x", "y"};
        CHECK_INT(ferry_state_mark_failed_unleased(r, &f, &err), FERRY_OK);
    }
    /* a look-alike key that is not ours must not come back */
    redisReply *rep = NULL;
    CHECK_INT(cmd(r, &rep, &err, 3, "SET", "ferry:{a}b}:state", "x"), FERRY_OK);
    freeReplyObject(rep);

    ferry_state_iter *it = ferry_state_iter_new(r, 7);
    CHECK(it != NULL);
    for (;;) {
        const char *name = NULL;
        ferry_rc rc = ferry_state_iter_next(it, &name, &err);
        CHECK_INT(rc, FERRY_OK);
        if (rc != FERRY_OK || !name)
            break;
        total++;
        CHECK(strchr(name, '}') == NULL);
        for (int i = 0; i < N; i++) {
            if (strcmp(name, names[first + i]) == 0) {
                if (seen[i])
                    dup++;
                seen[i] = 1;
            }
        }
    }
    /* calling next after the end stays at the end */
    const char *name = "x";
    CHECK_INT(ferry_state_iter_next(it, &name, &err), FERRY_OK);
    CHECK(name == NULL);
    ferry_state_iter_destroy(it);
    ferry_state_iter_destroy(NULL);

    int found = 0;
    for (int i = 0; i < N; i++)
        found += seen[i];
    CHECK_INT(found, N);
    CHECK(total >= N);
    fprintf(stderr, "  scan: %d names (%d duplicates among ours)\n", total, dup);
    CHECK_INT(cmd(r, &rep, &err, 2, "DEL", "ferry:{a}b}:state"), FERRY_OK);
    freeReplyObject(rep);
    ferry_redis_destroy(r);
}

/* ---- auth and db ------------------------------------------------------------------ */

static void test_acl_user_and_db(void)
{
    ferry_redis *admin = open_handle(0), *u, *bad;
    ferry_redis_conf c;
    redisReply *rep = NULL;
    ferry_error err;
    char es[256], user[64], pwrule[80];
    const char *pw = "pw-Very-Secret-42";

    snprintf(user, sizeof(user), "ferry-it-%d", (int)getpid());
    snprintf(pwrule, sizeof(pwrule), ">%s", pw);
    /* least privilege: only ferry keys, only the commands ferry_state uses (Redis 7
     * checks the commands a script calls against the ACL too) */
    const char *acl[] = {"ACL",      "SETUSER",      user,           "reset",   "on",
                         pwrule,     "~ferry:*",     "+@connection", "+select", "+eval",
                         "+evalsha", "+script|load", "+time",        "+get",    "+set",
                         "+incr",    "+pexpire",     "+pttl",        "+del",    "+hget",
                         "+hmget",   "+hset",        "+hsetnx",      "+hdel",   "+hincrby",
                         "+hgetall", "+hlen",        "+hexists",     "+scan"};
    if (ferry_redis_command(admin, (int)(sizeof(acl) / sizeof(acl[0])), acl, NULL, &rep,
                            &err) != FERRY_OK) {
        /* The stack's redis-server (7.x, default user) allows it: a refusal is a broken
         * setup, not a reason to pass. */
        fprintf(stderr, "%s:%d: ACL SETUSER failed: %s\n", __FILE__, __LINE__, err.msg);
        ferry_test_failures++;
        ferry_redis_destroy(admin);
        return;
    }
    freeReplyObject(rep);

    ferry_redis_conf_init(&c);
    CHECK_INT(ferry_redis_conf_parse_url(&c, redis_url, es, sizeof(es)), 0);
    snprintf(c.username, sizeof(c.username), "%s", user);
    snprintf(c.password, sizeof(c.password), "%s", pw);
    c.db = 1;
    u = ferry_redis_new(&c, es, sizeof(es));
    CHECK(u != NULL);
    snprintf(c.password, sizeof(c.password), "wrong-%s", pw);
    bad = ferry_redis_new(&c, es, sizeof(es));
    ferry_redis_conf_clear(&c);

    /* wrong password: retryable, class config, and the password is not in the message */
    CHECK_INT(ferry_redis_ping(bad, &err), FERRY_ERR_RETRYABLE);
    CHECK_STR(err.cls, FERRY_EC_CONFIG);
    CHECK(strstr(err.msg, "WRONGPASS") != NULL);
    CHECK(strstr(err.msg, pw) == NULL);
    ferry_redis_destroy(bad);

    /* the restricted user can run every state operation, in db 1 */
    const char *ds = dataset("acl");
    ferry_acquire_req q = req_for(ds, "w", "ev", 30000);
    ferry_acquire_result a;
    ferry_migration_state st;
    CHECK_INT(ferry_state_acquire(u, &q, &a, &err), FERRY_OK);
    if (a.outcome == FERRY_ACQUIRE_OK) {
        ferry_report_entry re = {"k0", "failed", FERRY_EC_S3_AUTH, "denied"};
        ferry_checkpoint cp = {"k", 1, 2, 3, 1, 0, 0, 1, "ev", &re, 1, 0};
        CHECK_INT(ferry_state_renew(u, &a.lease, &err), FERRY_OK);
        CHECK_INT(ferry_state_checkpoint(u, &a.lease, &cp, &err), FERRY_OK);
        CHECK_INT(ferry_state_mark_done(u, &a.lease, 3, 4, 3, &err), FERRY_OK);
    }
    CHECK_INT(ferry_state_get(u, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_DONE);
    ferry_migration_state_clear(&st);
    /* db 0 does not have it */
    CHECK_INT(ferry_state_get(admin, ds, &st, &err), FERRY_OK);
    CHECK_INT(st.status, FERRY_MIG_NONE);
    ferry_migration_state_clear(&st);
    /* a command outside the ACL: NOPERM, config class */
    CHECK_INT(cmd(u, &rep, &err, 3, "CONFIG", "GET", "maxmemory"), FERRY_ERR_RETRYABLE);
    CHECK_STR(err.cls, FERRY_EC_CONFIG);

    /* an ACL without script|load still works (EVAL every time) */
    {
        ferry_redis_conf c2;
        char user2[80];
        snprintf(user2, sizeof(user2), "%s-noload", user);
        acl[2] = user2;
        acl[11] = "-script|load";
        CHECK_INT(ferry_redis_command(admin, (int)(sizeof(acl) / sizeof(acl[0])), acl, NULL,
                                      &rep, &err),
                  FERRY_OK);
        freeReplyObject(rep);
        ferry_redis_conf_init(&c2);
        CHECK_INT(ferry_redis_conf_parse_url(&c2, redis_url, es, sizeof(es)), 0);
        snprintf(c2.username, sizeof(c2.username), "%s", user2);
        snprintf(c2.password, sizeof(c2.password), "%s", pw);
        c2.db = 1;
        ferry_redis *u2 = ferry_redis_new(&c2, es, sizeof(es));
        ferry_redis_conf_clear(&c2);
        for (int i = 0; i < 2; i++) {
            CHECK_INT(ferry_state_get(u2, ds, &st, &err), FERRY_OK);
            CHECK_INT(st.status, FERRY_MIG_DONE);
            ferry_migration_state_clear(&st);
        }
        ferry_redis_destroy(u2);
        CHECK_INT(cmd(admin, &rep, &err, 3, "ACL", "DELUSER", user2), FERRY_OK);
        freeReplyObject(rep);
    }

    /* clean db 1 */
    char s[FERRY_STATE_KEY_MAX], l[FERRY_STATE_KEY_MAX], f[FERRY_STATE_KEY_MAX];
    ferry_state_key(s, sizeof(s), ds, "state", NULL);
    ferry_state_key(l, sizeof(l), ds, "lease", NULL);
    ferry_state_key(f, sizeof(f), ds, "fence", NULL);
    CHECK_INT(cmd(admin, &rep, &err, 2, "SELECT", "1"), FERRY_OK);
    freeReplyObject(rep);
    CHECK_INT(cmd(admin, &rep, &err, 4, "DEL", s, l, f), FERRY_OK);
    CHECK(rep && rep->integer == 2); /* state and fence; done deleted the lease */
    freeReplyObject(rep);
    CHECK_INT(cmd(admin, &rep, &err, 3, "ACL", "DELUSER", user), FERRY_OK);
    freeReplyObject(rep);
    ferry_acquire_result_clear(&a);
    ferry_redis_destroy(u);
    ferry_redis_destroy(admin); /* its SELECT 1 dies with it */
}

/* ---- error replies from a fake server ---------------------------------------------- */

static struct {
    int lfd;
    int port;
    const char *reply; /* sent for every request */
    pthread_mutex_t mu;
} fake = {.lfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

static void *fake_server(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(fake.lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
            pthread_mutex_lock(&fake.mu);
            const char *rep = fake.reply;
            pthread_mutex_unlock(&fake.mu);
            if (write(fd, rep, strlen(rep)) < 0)
                break;
        }
        close(fd);
    }
}

static void test_error_reply_classes(void)
{
    static const struct {
        const char *reply;
        ferry_rc rc;
        const char *cls;
    } cases[] = {
        {"-LOADING Redis is loading the dataset in memory\r\n", FERRY_ERR_RETRYABLE,
         FERRY_EC_REDIS},
        {"-BUSY Redis is busy running a script.\r\n", FERRY_ERR_RETRYABLE, FERRY_EC_REDIS},
        {"-MASTERDOWN Link with MASTER is down\r\n", FERRY_ERR_RETRYABLE, FERRY_EC_REDIS},
        {"-READONLY You can't write against a read only replica.\r\n", FERRY_ERR_RETRYABLE,
         FERRY_EC_REDIS},
        {"-TRYAGAIN Multiple keys request during rehashing of slot\r\n", FERRY_ERR_RETRYABLE,
         FERRY_EC_REDIS},
        {"-OOM command not allowed when used memory > 'maxmemory'.\r\n", FERRY_ERR_RETRYABLE,
         FERRY_EC_REDIS},
        {"-ERR max number of clients reached\r\n", FERRY_ERR_RETRYABLE, FERRY_EC_REDIS},
        {"-NOAUTH Authentication required.\r\n", FERRY_ERR_RETRYABLE, FERRY_EC_CONFIG},
        {"-BUSYGROUP Consumer Group name already exists\r\n", FERRY_ERR_PERMANENT,
         FERRY_EC_REDIS},
        {"-BUSYKEY Target key name already exists.\r\n", FERRY_ERR_PERMANENT, FERRY_EC_REDIS},
        {"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
         FERRY_ERR_PERMANENT, FERRY_EC_REDIS},
        {"-ERR unknown command\r\n", FERRY_ERR_PERMANENT, FERRY_EC_REDIS},
        {"%1\r\n", FERRY_ERR_RETRYABLE, FERRY_EC_REDIS}, /* protocol error: RESP3 map */
    };
    struct sockaddr_in a = {0};
    socklen_t al = sizeof(a);
    pthread_t th;
    ferry_redis_conf c;
    char es[256];

    fake.lfd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fake.lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(fake.lfd, 8) == 0);
    getsockname(fake.lfd, (struct sockaddr *)&a, &al);
    fake.port = ntohs(a.sin_port);
    fake.reply = "+PONG\r\n";
    CHECK(pthread_create(&th, NULL, fake_server, NULL) == 0);

    ferry_redis_conf_init(&c);
    c.port = fake.port;
    c.command_timeout_ms = 1000;
    ferry_redis *r = ferry_redis_new(&c, es, sizeof(es));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ferry_error err;
        ferry_error_clear(&err);
        pthread_mutex_lock(&fake.mu);
        fake.reply = cases[i].reply;
        pthread_mutex_unlock(&fake.mu);
        CHECK_INT(ferry_redis_ping(r, &err), cases[i].rc);
        CHECK_STR(err.cls, cases[i].cls);
        if (strcmp(err.cls, cases[i].cls) != 0)
            fprintf(stderr, "  case %zu: %s\n", i, err.msg);
    }
    /* NOPERM through ferry_redis_eval: SCRIPT LOAD refused, then EVAL refused too */
    {
        static const ferry_redis_script s = {"probe", "return 1"};
        const char *argv[1] = {"k"};
        redisReply *rep = NULL;
        ferry_error err;
        pthread_mutex_lock(&fake.mu);
        fake.reply = "-NOPERM this user has no permissions to run the 'script' command\r\n";
        pthread_mutex_unlock(&fake.mu);
        CHECK_INT(ferry_redis_eval(r, &s, 1, 1, argv, &rep, &err), FERRY_ERR_RETRYABLE);
        CHECK_STR(err.cls, FERRY_EC_CONFIG);
        CHECK(strstr(err.msg, "probe") != NULL);
        CHECK(rep == NULL);
    }
    ferry_redis_destroy(r);
    shutdown(fake.lfd, SHUT_RDWR);
    close(fake.lfd);
    pthread_join(th, NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as every ferry program does: see ferry_redis.h */
    redis_url = integ_require_env("FERRY_REDIS_URL");
    {
        ferry_redis *r = open_handle(0);
        ferry_error err;
        if (ferry_redis_ping(r, &err) != FERRY_OK) {
            fprintf(stderr, "FERRY_REDIS_URL set but Redis does not answer: %s\n", err.msg);
            return 1;
        }
        ferry_redis_destroy(r);
    }
    RUN(test_closed_port_retryable);
    RUN(test_error_reply_classes);
    RUN(test_reconnect_after_client_kill);
    RUN(test_command_timeout_then_reconnect);
    RUN(test_noscript_fallback);
    RUN(test_acquire_busy_renew_release);
    RUN(test_fencing_after_expiry);
    RUN(test_same_worker_takes_over);
    RUN(test_done_and_already_done);
    RUN(test_announce_claim);
    RUN(test_total_lower_bound);
    RUN(test_failed);
    RUN(test_report_and_failed_objects);
    RUN(test_note_error);
    RUN(test_invalid_requests);
    RUN(test_scan_iterator);
    RUN(test_acl_user_and_db);

    ferry_redis *r = open_handle(0);
    cleanup(r);
    ferry_redis_destroy(r);
    return TEST_EXIT();
}
