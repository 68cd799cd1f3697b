/* The replay ledger in Redis: one string per DLQ record that a replay touched,
 *   ferry:replay:{<dlq topic>}:<partition>:<offset>
 *     "in-progress run=.. fp=.. at=.. count=.."            written before producing
 *     "done run=.. fp=.. at=.. count=.. to=<t>/<p>/<o>"    written after the broker's ack
 * (the run lock is in replayer_lock.c). Value formats: lib/ferry_dlq.c. Why two steps and
 * what an "in-progress" entry left by a crash means: replayer_replay.c and
 * docs/dlq-replayer.md. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replayer.h"

#define KEY_MAX 320

ferry_rc replayer_ledger_lookup(ferry_redis *r, const char *dlq_topic,
                                const ferry_dlq_record *const *recs, size_t n,
                                ferry_dlq_ledger *out, ferry_error *err)
{
    const char *argv[REPLAYER_LEDGER_BATCH + 1];
    char(*keys)[KEY_MAX] = NULL;
    redisReply *reply = NULL;
    ferry_rc rc;

    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].status = FERRY_DLQ_LEDGER_NONE;
    }
    if (n == 0)
        return FERRY_OK;
    if (n > REPLAYER_LEDGER_BATCH)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "ledger lookup of %zu records at once", n);
    if (!(keys = malloc(n * sizeof(*keys))))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    argv[0] = "MGET";
    for (size_t i = 0; i < n; i++) {
        if (ferry_dlq_ledger_key(keys[i], KEY_MAX, dlq_topic, recs[i]->partition,
                                 recs[i]->offset) != 0) {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                                 "\"%s\" is not a valid topic name", dlq_topic);
            goto out;
        }
        argv[i + 1] = keys[i];
    }
    rc = ferry_redis_command(r, (int)n + 1, argv, NULL, &reply, err);
    if (rc != FERRY_OK)
        goto out;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_REDIS,
                             "unexpected reply to MGET");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = reply->element[i];
        if (e->type == REDIS_REPLY_STRING)
            ferry_dlq_ledger_parse(e->str, &out[i]); /* unreadable: NONE */
    }
out:
    if (reply)
        freeReplyObject(reply);
    free(keys);
    return rc;
}

/* KEYS[1] ledger key; ARGV: value, ttl ms (0 = none), fingerprint (hex). Writes the
 * in-progress value unless the entry already says done for this very record, in which
 * case it returns that entry (a concurrent or earlier run got there first). */
static const ferry_redis_script begin_script = {
    "replay-begin", "local v = redis.call('GET', KEYS[1])\n"
                    "if v and string.sub(v, 1, 5) == 'done ' and\n"
                    "   string.find(v, ' fp=' .. ARGV[3] .. ' ', 1, true) then\n"
                    "  return v\n"
                    "end\n"
                    "if tonumber(ARGV[2]) > 0 then\n"
                    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                    "else\n"
                    "  redis.call('SET', KEYS[1], ARGV[1])\n"
                    "end\n"
                    "return false\n"};

ferry_rc replayer_ledger_begin(ferry_redis *r, const char *dlq_topic, int32_t partition,
                               int64_t offset, const ferry_dlq_ledger *in_progress,
                               int64_t ttl_ms, int *done, ferry_dlq_ledger *existing,
                               ferry_error *err)
{
    char key[KEY_MAX], value[1024], ttl[32], fp[32];
    const char *argv[4] = {key, value, ttl, fp};
    redisReply *reply = NULL;
    ferry_rc rc;

    *done = 0;
    if (ferry_dlq_ledger_key(key, sizeof(key), dlq_topic, partition, offset) != 0 ||
        ferry_dlq_ledger_format(in_progress, value, sizeof(value)) != 0)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "cannot build the ledger entry for %d:%" PRId64, (int)partition,
                               offset);
    snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
    snprintf(fp, sizeof(fp), "%016" PRIx64, in_progress->fp);
    rc = ferry_redis_eval(r, &begin_script, 1, 4, argv, &reply, err);
    if (rc != FERRY_OK)
        return rc;
    if (reply->type == REDIS_REPLY_STRING) {
        *done = 1;
        ferry_dlq_ledger_parse(reply->str, existing);
    }
    freeReplyObject(reply);
    return FERRY_OK;
}

ferry_rc replayer_ledger_finish(ferry_redis *r, const char *dlq_topic, int32_t partition,
                                int64_t offset, const ferry_dlq_ledger *done, int64_t ttl_ms,
                                ferry_error *err)
{
    char key[KEY_MAX], value[1024], ttl[32];
    const char *argv[5] = {"SET", key, value, "PX", ttl};
    redisReply *reply = NULL;
    ferry_rc rc;

    if (ferry_dlq_ledger_key(key, sizeof(key), dlq_topic, partition, offset) != 0 ||
        ferry_dlq_ledger_format(done, value, sizeof(value)) != 0)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "cannot build the ledger entry for %d:%" PRId64, (int)partition,
                               offset);
    snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
    rc = ferry_redis_command(r, ttl_ms > 0 ? 5 : 3, argv, NULL, &reply, err);
    if (reply)
        freeReplyObject(reply);
    return rc;
}
