/* The replay lock: ferry:replay:{<dlq topic>}:lock = "run=<id> host=<name>
 * node=<boot id>:<pid namespace> pid=<pid>", SET NX PX, renewed every third of its TTL by
 * a thread with its own Redis connection (hiredis handles are one-thread), released by
 * compare-and-delete.
 *
 * Why the holder's identity: after `kill -9` the operator reruns at once, typically on the
 * same machine. When the holder ran in this very boot and PID namespace and its process
 * no longer exists, it cannot be replaying: take the lock over (compare-and-set) instead
 * of making the operator wait out the TTL. From another machine, or while the process
 * lives, wait: the TTL is short because renewal never blocks on Kafka. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ferry_connect.h"
#include "ferry_log.h"
#include "replayer.h"

#define LOCK_TTL_MS 30000
#define KEY_MAX 320

struct replayer_lock {
    char key[KEY_MAX];
    char value[512];
    ferry_redis *redis; /* the renewal thread's own connection */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int quit; /* under mu */
    atomic_int lost;
};

static const ferry_redis_script renew_script = {
    "replay-lock-renew", "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                         "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                         "end\n"
                         "return 0\n"};

static const ferry_redis_script release_script = {
    "replay-lock-release", "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                           "  return redis.call('DEL', KEYS[1])\n"
                           "end\n"
                           "return 0\n"};

static const ferry_redis_script takeover_script = {
    "replay-lock-takeover", "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                            "  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
                            "  return 1\n"
                            "end\n"
                            "return 0\n"};

/* "<boot id>:<pid namespace inode>": processes that can see each other's PIDs share it. */
static void node_id(char *out, size_t size)
{
    char boot[64] = "?";
    struct stat st;
    FILE *fp = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (fp) {
        if (!fgets(boot, sizeof(boot), fp))
            snprintf(boot, sizeof(boot), "?");
        boot[strcspn(boot, "\n")] = '\0';
        fclose(fp);
    }
    snprintf(out, size, "%s:%llu", boot,
             stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long long)st.st_ino : 0ULL);
}

/* Value of " name=" in v (up to the next space) into out; "" if absent. */
static void field(const char *v, const char *name, char *out, size_t size)
{
    char pat[32];
    const char *p;
    size_t n;
    snprintf(pat, sizeof(pat), "%s=", name);
    out[0] = '\0';
    for (p = v; (p = strstr(p, pat)); p++)
        if (p == v || p[-1] == ' ')
            break;
    if (!p)
        return;
    p += strlen(pat);
    n = strcspn(p, " ");
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* 1 if the holder value names a process of this node that no longer exists. */
static int holder_is_dead(const char *holder)
{
    char node[128], mine[128], pid_s[32], *end;
    long pid;
    field(holder, "node", node, sizeof(node));
    field(holder, "pid", pid_s, sizeof(pid_s));
    node_id(mine, sizeof(mine));
    if (!node[0] || node[0] == '?' || strcmp(node, mine) != 0)
        return 0;
    pid = strtol(pid_s, &end, 10);
    if (end == pid_s || *end || pid <= 0)
        return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static void *renew_main(void *arg)
{
    replayer_lock *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->quit) {
        struct timespec ts;
        ferry_error err = {0};
        redisReply *reply = NULL;
        char ttl[32];
        const char *argv[3] = {l->key, l->value, ttl};
        ferry_rc rc;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += LOCK_TTL_MS / 3 / 1000;
        pthread_cond_timedwait(&l->cond, &l->mu, &ts);
        if (l->quit)
            break;
        pthread_mutex_unlock(&l->mu);
        snprintf(ttl, sizeof(ttl), "%d", LOCK_TTL_MS);
        rc = ferry_redis_eval(l->redis, &renew_script, 1, 3, argv, &reply, &err);
        if (rc == FERRY_OK) {
            if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
                atomic_store(&l->lost, 1);
                ferry_err(NULL, "the replay lock %s expired and is no longer ours: stopping",
                          l->key);
            }
            freeReplyObject(reply);
        } else {
            ferry_warn(NULL, "renewing the replay lock: %s (retrying)", err.msg);
        }
        pthread_mutex_lock(&l->mu);
        if (atomic_load(&l->lost))
            break;
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

replayer_lock *replayer_lock_take(const ferry_conf *conf, const char *dlq_topic,
                                  const char *run_id, char *errstr, size_t errstr_size)
{
    replayer_lock *l = calloc(1, sizeof(*l));
    char host[128] = "?", node[128], ttl[32], holder[512] = "";
    const char *set[6];
    const char *get[2];
    redisReply *reply = NULL;
    ferry_error err = {0};
    int acquired = 0;
    long long holder_ttl = -1;

    if (!l) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);
    atomic_init(&l->lost, 0);
    if (ferry_dlq_lock_key(l->key, sizeof(l->key), dlq_topic) != 0) {
        snprintf(errstr, errstr_size, "\"%s\" is not a valid topic name", dlq_topic);
        goto fail;
    }
    if (!(l->redis = ferry_connect_redis(conf, errstr, errstr_size)))
        goto fail;
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    host[strcspn(host, " ")] = '\0';
    node_id(node, sizeof(node));
    snprintf(l->value, sizeof(l->value), "run=%s host=%s node=%s pid=%d", run_id, host, node,
             (int)getpid());
    snprintf(ttl, sizeof(ttl), "%d", LOCK_TTL_MS);

    set[0] = "SET";
    set[1] = l->key;
    set[2] = l->value;
    set[3] = "NX";
    set[4] = "PX";
    set[5] = ttl;
    get[0] = "GET";
    get[1] = l->key;
    for (int attempt = 0; attempt < 2 && !acquired; attempt++) {
        if (ferry_redis_command(l->redis, 6, set, NULL, &reply, &err) != FERRY_OK)
            goto redis_fail;
        acquired = reply->type == REDIS_REPLY_STATUS;
        freeReplyObject(reply);
        if (acquired)
            break;
        if (ferry_redis_command(l->redis, 2, get, NULL, &reply, &err) != FERRY_OK)
            goto redis_fail;
        holder[0] = '\0';
        if (reply->type == REDIS_REPLY_STRING)
            snprintf(holder, sizeof(holder), "%s", reply->str);
        freeReplyObject(reply);
        if (!holder[0])
            continue; /* released meanwhile: try again */
        if (holder_is_dead(holder)) {
            const char *argv[4] = {l->key, holder, l->value, ttl};
            if (ferry_redis_eval(l->redis, &takeover_script, 1, 4, argv, &reply, &err) !=
                FERRY_OK)
                goto redis_fail;
            acquired = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
            freeReplyObject(reply);
            if (acquired) {
                char run[64];
                field(holder, "run", run, sizeof(run));
                ferry_warn(NULL,
                           "took over the replay lock of run %s: its process is gone "
                           "(killed?)",
                           run);
            }
        }
    }
    if (!acquired) {
        const char *pttl[2] = {"PTTL", l->key};
        char run[64], hh[128], pid[32];
        if (ferry_redis_command(l->redis, 2, pttl, NULL, &reply, &err) == FERRY_OK) {
            if (reply->type == REDIS_REPLY_INTEGER)
                holder_ttl = reply->integer;
            freeReplyObject(reply);
        }
        field(holder, "run", run, sizeof(run));
        field(holder, "host", hh, sizeof(hh));
        field(holder, "pid", pid, sizeof(pid));
        snprintf(errstr, errstr_size,
                 "another replay of %s is running (run %s, process %s on %s); if it died, its "
                 "lock expires in %lld s",
                 dlq_topic, run[0] ? run : "?", pid[0] ? pid : "?", hh[0] ? hh : "?",
                 holder_ttl > 0 ? (holder_ttl + 999) / 1000 : 0);
        goto fail;
    }
    if (pthread_create(&l->thread, NULL, renew_main, l) != 0) {
        snprintf(errstr, errstr_size, "cannot start the lock renewal thread");
        l->started = 0;
        replayer_lock_release(l);
        return NULL;
    }
    l->started = 1;
    return l;

redis_fail:
    ferry_error_to_errstr(&err, errstr, errstr_size, "taking the replay lock");
fail:
    ferry_redis_destroy(l->redis);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    free(l);
    return NULL;
}

int replayer_lock_lost(replayer_lock *l) { return l && atomic_load(&l->lost); }

void replayer_lock_release(replayer_lock *l)
{
    const char *argv[2];
    redisReply *reply = NULL;
    ferry_error err = {0};

    if (!l)
        return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->quit = 1;
        pthread_cond_signal(&l->cond);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    argv[0] = l->key;
    argv[1] = l->value;
    if (ferry_redis_eval(l->redis, &release_script, 1, 2, argv, &reply, &err) == FERRY_OK)
        freeReplyObject(reply);
    else
        ferry_warn(NULL, "releasing the replay lock: %s (it expires by itself)", err.msg);
    ferry_redis_destroy(l->redis);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
