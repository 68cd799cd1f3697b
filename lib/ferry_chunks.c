#include "ferry_chunks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_state.h"
#include "ferry_util.h"

typedef struct keys {
    char chunks[FERRY_STATE_KEY_MAX + 16];
    char done[FERRY_STATE_KEY_MAX + 16];
    char counts[FERRY_STATE_KEY_MAX + 16];
} keys;

static ferry_rc make(keys *k, const char *dataset, ferry_error *err)
{
    ferry_rc rc = ferry_state_key(k->chunks, sizeof(k->chunks), dataset, "chunks", err);
    if (rc == FERRY_OK)
        rc = ferry_state_key(k->done, sizeof(k->done), dataset, "chunks_done", err);
    if (rc == FERRY_OK)
        rc = ferry_state_key(k->counts, sizeof(k->counts), dataset, "chunk_counts", err);
    return rc;
}

static ferry_rc cmd(ferry_redis *r, int argc, const char **argv, redisReply **rep,
                    ferry_error *err)
{
    redisReply *tmp = NULL;
    ferry_rc rc = ferry_redis_command(r, argc, argv, NULL, rep ? rep : &tmp, err);
    freeReplyObject(tmp);
    return rc;
}

static int64_t to_i64(const redisReply *x, int64_t dflt)
{
    if (!x)
        return dflt;
    if (x->type == REDIS_REPLY_INTEGER)
        return x->integer;
    if (x->type == REDIS_REPLY_STRING && x->len > 0)
        return strtoll(x->str, NULL, 10);
    return dflt;
}

/* PLAN_GET  KEYS: chunks, done, counts  ARGV: event_id
 * -> {n or '', published or '', bounds or ''}; a plan of another event is deleted first. */
static const ferry_redis_script lua_plan_get = {
    "chunks_plan_get", "local ev = redis.call('HGET', KEYS[1], 'event')\n"
                       "if ev ~= ARGV[1] then\n"
                       "  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])\n"
                       "  redis.call('HSET', KEYS[1], 'event', ARGV[1])\n"
                       "end\n"
                       "return redis.call('HMGET', KEYS[1], 'n', 'published', 'bounds')\n"};

ferry_rc ferry_chunks_plan_get(ferry_redis *r, const char *dataset, const char *event_id,
                               int64_t *n, int64_t *published, int64_t *bounds,
                               ferry_error *err)
{
    keys k;
    const char *argv[4];
    redisReply *rep = NULL;
    ferry_rc rc;

    if ((rc = make(&k, dataset, err)) != FERRY_OK)
        return rc;
    argv[0] = k.chunks;
    argv[1] = k.done;
    argv[2] = k.counts;
    argv[3] = event_id;
    if ((rc = ferry_redis_eval(r, &lua_plan_get, 3, 4, argv, &rep, err)) != FERRY_OK)
        return rc;
    {
        int ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == 3;
        *n = ok ? to_i64(rep->element[0], -1) : -1;
        *published = ok ? to_i64(rep->element[1], 0) : 0;
        *bounds = ok ? to_i64(rep->element[2], 0) : 0;
    }
    freeReplyObject(rep);
    return FERRY_OK;
}

ferry_rc ferry_chunks_plan_reset(ferry_redis *r, const char *dataset, const char *event_id,
                                 ferry_error *err)
{
    keys k;
    ferry_rc rc;
    if ((rc = make(&k, dataset, err)) != FERRY_OK)
        return rc;
    {
        const char *del[] = {"DEL", k.chunks, k.done, k.counts};
        const char *set[] = {"HSET", k.chunks, "event", event_id};
        if ((rc = cmd(r, 4, del, NULL, err)) != FERRY_OK)
            return rc;
        return cmd(r, 4, set, NULL, err);
    }
}

ferry_rc ferry_chunks_plan_add(ferry_redis *r, const char *dataset, int64_t index,
                               const char *end_key, ferry_error *err)
{
    keys k;
    char field[40];
    ferry_rc rc;
    if ((rc = make(&k, dataset, err)) != FERRY_OK)
        return rc;
    char count[32];
    snprintf(field, sizeof(field), "end:%" PRId64, index);
    snprintf(count, sizeof(count), "%" PRId64, index + 1);
    {
        /* One command: the bound and the count of bounds never disagree. */
        const char *argv[] = {"HSET", k.chunks, field, end_key, "bounds", count};
        return cmd(r, 6, argv, NULL, err);
    }
}

static ferry_rc set_num(ferry_redis *r, const char *dataset, const char *field, int64_t v,
                        ferry_error *err)
{
    keys k;
    char num[32];
    ferry_rc rc;
    if ((rc = make(&k, dataset, err)) != FERRY_OK)
        return rc;
    snprintf(num, sizeof(num), "%" PRId64, v);
    {
        const char *argv[] = {"HSET", k.chunks, field, num};
        return cmd(r, 4, argv, NULL, err);
    }
}

ferry_rc ferry_chunks_plan_complete(ferry_redis *r, const char *dataset, int64_t n,
                                    ferry_error *err)
{
    return set_num(r, dataset, "n", n, err);
}

ferry_rc ferry_chunks_set_published(ferry_redis *r, const char *dataset, int64_t published,
                                    ferry_error *err)
{
    return set_num(r, dataset, "published", published, err);
}

ferry_rc ferry_chunks_range(ferry_redis *r, const char *dataset, int64_t index, int64_t n,
                            char **start_after, char **end_key, ferry_error *err)
{
    keys k;
    char lo[40], hi[40];
    redisReply *rep = NULL;
    ferry_rc rc;

    *start_after = *end_key = NULL;
    if ((rc = make(&k, dataset, err)) != FERRY_OK)
        return rc;
    snprintf(lo, sizeof(lo), "end:%" PRId64, index - 1);
    snprintf(hi, sizeof(hi), "end:%" PRId64, index);
    {
        const char *argv[] = {"HMGET", k.chunks, lo, hi};
        if ((rc = cmd(r, 4, argv, &rep, err)) != FERRY_OK)
            return rc;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        (index > 0 && rep->element[0]->type != REDIS_REPLY_STRING) ||
        ((n < 0 || index < n - 1) && rep->element[1]->type != REDIS_REPLY_STRING)) {
        freeReplyObject(rep);
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "chunk %" PRId64 " of %s has no range in the plan", index,
                               dataset);
    }
    if (index > 0)
        *start_after = strdup(rep->element[0]->str);
    if (n < 0 || index < n - 1)
        *end_key = strdup(rep->element[1]->str);
    freeReplyObject(rep);
    if ((index > 0 && !*start_after) || ((n < 0 || index < n - 1) && !*end_key)) {
        free(*start_after);
        free(*end_key);
        *start_after = *end_key = NULL;
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    }
    return FERRY_OK;
}

/* FINISH  KEYS: chunks, done, counts  ARGV: event_id, index, "objects bytes"
 * -> {done, n}; n = -1 and nothing recorded when the plan belongs to another event, n = -2
 * when it is this event's but still growing (the splitter is listing). */
static const ferry_redis_script lua_finish = {
    "chunks_finish",
    "if redis.call('HGET', KEYS[1], 'event') ~= ARGV[1] then return {0, -1} end\n"
    "redis.call('SADD', KEYS[2], ARGV[2])\n"
    "redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])\n"
    "return {redis.call('SCARD', KEYS[2]), tonumber(redis.call('HGET', KEYS[1], 'n') or '-2')}\n"};

ferry_rc ferry_chunks_finish(ferry_redis *r, const char *dataset, const char *event_id,
                             int64_t index, int64_t objects, int64_t bytes, int64_t *done,
                             int64_t *n, ferry_error *err)
{
    keys k;
    char idx[32], counts[64];
    const char *argv[6];
    redisReply *rep = NULL;
    ferry_rc rc;

    if ((rc = make(&k, dataset, err)) != FERRY_OK)
        return rc;
    snprintf(idx, sizeof(idx), "%" PRId64, index);
    snprintf(counts, sizeof(counts), "%" PRId64 " %" PRId64, objects, bytes);
    argv[0] = k.chunks;
    argv[1] = k.done;
    argv[2] = k.counts;
    argv[3] = event_id;
    argv[4] = idx;
    argv[5] = counts;
    if ((rc = ferry_redis_eval(r, &lua_finish, 3, 6, argv, &rep, err)) != FERRY_OK)
        return rc;
    *done = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 ? to_i64(rep->element[0], 0)
                                                                 : 0;
    *n = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 ? to_i64(rep->element[1], -1)
                                                              : -1;
    freeReplyObject(rep);
    return FERRY_OK;
}

ferry_rc ferry_chunks_totals(ferry_redis *r, const char *dataset, int64_t *objects,
                             int64_t *bytes, ferry_error *err)
{
    keys k;
    redisReply *rep = NULL;
    ferry_rc rc;

    *objects = *bytes = 0;
    if ((rc = make(&k, dataset, err)) != FERRY_OK)
        return rc;
    {
        const char *argv[] = {"HVALS", k.counts};
        if ((rc = cmd(r, 2, argv, &rep, err)) != FERRY_OK)
            return rc;
    }
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        long long o = 0, b = 0;
        if (rep->element[i]->type == REDIS_REPLY_STRING &&
            sscanf(rep->element[i]->str, "%lld %lld", &o, &b) == 2) {
            *objects += o;
            *bytes += b;
        }
    }
    freeReplyObject(rep);
    return FERRY_OK;
}

void ferry_chunks_name(const char *dataset, int64_t index, char *out, size_t size)
{
    snprintf(out, size, "%s#%" PRId64, dataset, index);
}

void ferry_chunks_event_id(const char *parent, int64_t index, char out[37])
{
    /* Two FNV-1a 64 hashes of (parent, index, salt) make the 128 bits; version 4 and
     * variant bits are set so the result is a valid UUID. Deterministic on purpose: a
     * chunk published twice is the same event. */
    unsigned char b[16];
    for (int half = 0; half < 2; half++) {
        /* (a seed of its own, not FERRY_FNV1A64_INIT: ids already published use it) */
        char buf[96];
        int len = snprintf(buf, sizeof(buf), "%s/%" PRId64 "/%d", parent, index, half);
        size_t hl = len < 0 ? 0 : (size_t)len < sizeof(buf) ? (size_t)len : sizeof(buf) - 1;
        uint64_t h = ferry_fnv1a64(1469598103934665603ULL ^ (uint64_t)half, buf, hl);
        for (int i = 0; i < 8; i++)
            b[half * 8 + i] = (unsigned char)(h >> (8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}
