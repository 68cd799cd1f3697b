/* ferry_mpu: see ferry_mpu.h. The Lua scripts are the only writers of the records; each
 * states its KEYS/ARGV and replies in the comment above it. */
#include "ferry_mpu.h"
#include "ferry_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PART_FIELD_MAX 16 /* "p" + up to 10 digits */

/* Shared by the writers: the reply to return when the caller's lease is gone. */
#define LUA_LEASE_CHECK                                                                        \
    "local holder = redis.call('GET', KEYS[1])\n"                                              \
    "if holder ~= ARGV[1] then return {'fenced', holder or ''} end\n"

/* BEGIN  KEYS: lease, mpu
 *        ARGV: "<worker>:<fence>", bucket, key, upload_id, part_size, size, src_etag, ttl_ms
 * -> {'ok'}                the record is replaced by a fresh one for upload_id
 * -> {'fenced', holder}    not our lease; nothing changed */
static const ferry_redis_script lua_begin = {
    "mpu_begin",
    LUA_LEASE_CHECK
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('HSET', KEYS[2], 'bucket', ARGV[2], 'key', ARGV[3], 'upload_id', ARGV[4],\n"
    "           'part_size', ARGV[5], 'size', ARGV[6], 'src_etag', ARGV[7])\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[8])\n"
    "return {'ok'}\n",
};

/* PART  KEYS: lease, mpu
 *       ARGV: "<worker>:<fence>", upload_id, "p<n>", etag, ttl_ms, "c<n>", checksum ('' = none)
 * -> {'ok'}                part recorded (or the record is of another upload: unchanged)
 * -> {'fenced', holder}    not our lease; nothing changed */
static const ferry_redis_script lua_part = {
    "mpu_part",
    LUA_LEASE_CHECK
    "if redis.call('HGET', KEYS[2], 'upload_id') ~= ARGV[2] then return {'ok'} end\n"
    "redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])\n"
    "if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], ARGV[6], ARGV[7]) end\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[5])\n"
    "return {'ok'}\n",
};

/* CLEAR  KEYS: lease, mpu   ARGV: "<worker>:<fence>", upload_id ('' = any)
 * -> {'ok'}                record deleted (unless it is of another upload)
 * -> {'fenced', holder}    not our lease; nothing changed */
static const ferry_redis_script lua_clear = {
    "mpu_clear",
    LUA_LEASE_CHECK
    "if ARGV[2] ~= '' and redis.call('HGET', KEYS[2], 'upload_id') ~= ARGV[2] then\n"
    "  return {'ok'}\n"
    "end\n"
    "redis.call('DEL', KEYS[2])\n"
    "return {'ok'}\n",
};

ferry_rc ferry_mpu_key(char *buf, size_t size, const char *dataset, const char *bucket,
                       const char *key, ferry_error *err)
{
    uint64_t h = FERRY_FNV1A64_INIT;
    int n;

    if (size)
        buf[0] = '\0';
    if (!ferry_state_dataset_ok(dataset))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "dataset name refused for a Redis key");
    if (!bucket || !key)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "mpu: bucket and key are required");
    /* bucket and key separated by a byte neither contains */
    h = ferry_fnv1a64(h, bucket, strlen(bucket));
    h = ferry_fnv1a64(h, "\n", 1);
    h = ferry_fnv1a64(h, key, strlen(key));
    n = snprintf(buf, size, "ferry:{%s}:mpu:%016" PRIx64, dataset, h);
    if (n < 0 || (size_t)n >= size) {
        if (size)
            buf[0] = '\0';
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "Redis key buffer too small");
    }
    return FERRY_OK;
}

void ferry_mpu_record_clear(ferry_mpu_record *rec)
{
    if (!rec)
        return;
    free(rec->upload_id);
    free(rec->src_etag);
    free(rec->parts);
    memset(rec, 0, sizeof(*rec));
}

static ferry_rc lease_args(const ferry_lease *l, char *value, size_t size, ferry_error *err)
{
    if (!ferry_state_dataset_ok(l->dataset) || !l->worker[0] || l->fence < 1)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "mpu: invalid lease");
    snprintf(value, size, "%s:%" PRId64, l->worker, l->fence);
    return FERRY_OK;
}

/* Runs a writer: FERRY_OK, CANCELLED "fenced", or the Redis error. */
static ferry_rc run(ferry_redis *r, const ferry_redis_script *s, const ferry_lease *l, int argc,
                    const char **argv, ferry_error *err)
{
    redisReply *rep = NULL;
    ferry_rc rc = ferry_redis_eval(r, s, 2, argc, argv, &rep, err);

    if (rc != FERRY_OK)
        return rc;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
        rep->element[0]->type == REDIS_REPLY_STRING) {
        const redisReply *w = rep->element[0];
        if (w->len == 2 && !memcmp(w->str, "ok", 2)) {
            rc = FERRY_OK;
        } else if (w->len == 6 && !memcmp(w->str, "fenced", 6)) {
            const redisReply *h = rep->elements >= 2 ? rep->element[1] : NULL;
            rc = ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_FENCED,
                                 "multipart record refused for dataset %s: lease %s:%" PRId64
                                 " lost (lease now %.*s)",
                                 l->dataset, l->worker, l->fence,
                                 h && h->type == REDIS_REPLY_STRING && h->len ? (int)h->len : 4,
                                 h && h->type == REDIS_REPLY_STRING && h->len ? h->str
                                                                              : "free");
        } else {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_REDIS,
                                 "mpu: unexpected reply from script %s", s->name);
        }
    } else {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_REDIS,
                             "mpu: unexpected reply from script %s", s->name);
    }
    freeReplyObject(rep);
    return rc;
}

ferry_rc ferry_mpu_begin(ferry_redis *r, const ferry_lease *lease, const char *bucket,
                         const char *key, const char *upload_id, uint64_t part_size,
                         uint64_t size, const char *src_etag, ferry_error *err)
{
    char lk[FERRY_STATE_KEY_MAX], mk[FERRY_MPU_KEY_MAX], value[FERRY_STATE_WORKER_MAX + 32];
    char ps[24], sz[24], ttl[24];
    const char *argv[10];
    ferry_rc rc;

    if ((rc = lease_args(lease, value, sizeof(value), err)) != FERRY_OK ||
        (rc = ferry_state_key(lk, sizeof(lk), lease->dataset, FERRY_STATE_KEY_LEASE, err)) ||
        (rc = ferry_mpu_key(mk, sizeof(mk), lease->dataset, bucket, key, err)))
        return rc;
    snprintf(ps, sizeof(ps), "%" PRIu64, part_size);
    snprintf(sz, sizeof(sz), "%" PRIu64, size);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)FERRY_MPU_TTL_MS);
    argv[0] = lk;
    argv[1] = mk;
    argv[2] = value;
    argv[3] = bucket;
    argv[4] = key;
    argv[5] = upload_id;
    argv[6] = ps;
    argv[7] = sz;
    argv[8] = src_etag ? src_etag : "";
    argv[9] = ttl;
    return run(r, &lua_begin, lease, 10, argv, err);
}

ferry_rc ferry_mpu_part(ferry_redis *r, const ferry_lease *lease, const char *bucket,
                        const char *key, const char *upload_id,
                        const ferry_objstore_mpu_part *part, ferry_error *err)
{
    char lk[FERRY_STATE_KEY_MAX], mk[FERRY_MPU_KEY_MAX], value[FERRY_STATE_WORKER_MAX + 32];
    char field[PART_FIELD_MAX], cfield[PART_FIELD_MAX], ttl[24];
    char sum[sizeof(part->checksum_algo) + sizeof(part->checksum) + 1] = "";
    const char *argv[9];
    ferry_rc rc;

    if ((rc = lease_args(lease, value, sizeof(value), err)) != FERRY_OK ||
        (rc = ferry_state_key(lk, sizeof(lk), lease->dataset, FERRY_STATE_KEY_LEASE, err)) ||
        (rc = ferry_mpu_key(mk, sizeof(mk), lease->dataset, bucket, key, err)))
        return rc;
    snprintf(field, sizeof(field), "p%" PRIu32, part->number);
    snprintf(cfield, sizeof(cfield), "c%" PRIu32, part->number);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)FERRY_MPU_TTL_MS);
    if (part->checksum_algo[0] && part->checksum[0])
        snprintf(sum, sizeof(sum), "%.*s:%.*s", (int)sizeof(part->checksum_algo) - 1,
                 part->checksum_algo, (int)sizeof(part->checksum) - 1, part->checksum);
    argv[0] = lk;
    argv[1] = mk;
    argv[2] = value;
    argv[3] = upload_id;
    argv[4] = field;
    argv[5] = part->etag;
    argv[6] = ttl;
    argv[7] = cfield;
    argv[8] = sum;
    return run(r, &lua_part, lease, 9, argv, err);
}

ferry_rc ferry_mpu_clear(ferry_redis *r, const ferry_lease *lease, const char *bucket,
                         const char *key, const char *upload_id, ferry_error *err)
{
    char lk[FERRY_STATE_KEY_MAX], mk[FERRY_MPU_KEY_MAX], value[FERRY_STATE_WORKER_MAX + 32];
    const char *argv[4];
    ferry_rc rc;

    if ((rc = lease_args(lease, value, sizeof(value), err)) != FERRY_OK ||
        (rc = ferry_state_key(lk, sizeof(lk), lease->dataset, FERRY_STATE_KEY_LEASE, err)) ||
        (rc = ferry_mpu_key(mk, sizeof(mk), lease->dataset, bucket, key, err)))
        return rc;
    argv[0] = lk;
    argv[1] = mk;
    argv[2] = value;
    argv[3] = upload_id ? upload_id : "";
    return run(r, &lua_clear, lease, 4, argv, err);
}

static int is(const redisReply *e, const char *s)
{
    return e->type == REDIS_REPLY_STRING && e->len == strlen(s) && !memcmp(e->str, s, e->len);
}

static char *dup_elem(const redisReply *e)
{
    char *s = malloc(e->len + 1);
    if (s) {
        memcpy(s, e->str, e->len);
        s[e->len] = '\0';
    }
    return s;
}

/* A decimal number of up to 20 digits, else 0. */
static uint64_t u64_of(const char *s, size_t len)
{
    char buf[24], *end;
    uint64_t v;

    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    v = strtoull(buf, &end, 10);
    return *end || buf[0] == '-' ? 0 : v;
}

/* "c<n>" = "<ALGO>:<checksum>" onto part n of out (read already); a malformed one is
 * left out, and its part is copied again on resume. FERRY_OK, or FERRY_ERR_RETRYABLE
 * when out of memory. */
static ferry_rc attach_checksums(const redisReply *rep, ferry_mpu_record *out)
{
    uint16_t *at = calloc(FERRY_OBJSTORE_MAX_PARTS + 1,
                          sizeof(*at)); /* part number -> index + 1 */

    if (!at)
        return FERRY_ERR_RETRYABLE;
    for (size_t i = 0; i < out->nparts; i++)
        at[out->parts[i].number] = (uint16_t)(i + 1);
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const redisReply *f = rep->element[i], *v = rep->element[i + 1];
        const char *colon;
        ferry_objstore_mpu_part *p;
        uint64_t n;
        size_t alen;

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || f->len < 2 ||
            f->len >= PART_FIELD_MAX || f->str[0] != 'c')
            continue;
        n = u64_of(f->str + 1, f->len - 1);
        if (n < 1 || n > FERRY_OBJSTORE_MAX_PARTS || !at[n] ||
            !(colon = memchr(v->str, ':', v->len)))
            continue;
        p = &out->parts[at[n] - 1];
        alen = (size_t)(colon - v->str);
        if (alen == 0 || alen >= sizeof(p->checksum_algo) ||
            v->len - alen - 1 >= sizeof(p->checksum) || v->len - alen - 1 == 0)
            continue;
        memcpy(p->checksum_algo, v->str, alen);
        p->checksum_algo[alen] = '\0';
        memcpy(p->checksum, colon + 1, v->len - alen - 1);
        p->checksum[v->len - alen - 1] = '\0';
    }
    free(at);
    return FERRY_OK;
}

ferry_rc ferry_mpu_get(ferry_redis *r, const char *dataset, const char *bucket, const char *key,
                       ferry_mpu_record *out, int *found, ferry_error *err)
{
    char mk[FERRY_MPU_KEY_MAX];
    const char *argv[2] = {"HGETALL", mk};
    redisReply *rep = NULL;
    int same_bucket = 0, same_key = 0;
    ferry_rc rc;

    memset(out, 0, sizeof(*out));
    *found = 0;
    if ((rc = ferry_mpu_key(mk, sizeof(mk), dataset, bucket, key, err)) != FERRY_OK)
        return rc;
    if ((rc = ferry_redis_command(r, 2, argv, NULL, &rep, err)) != FERRY_OK)
        return rc;
    if (!rep || (rep->type != REDIS_REPLY_ARRAY)) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_REDIS,
                             "mpu: unexpected HGETALL reply");
        goto out;
    }
    out->parts = calloc(rep->elements / 2 + 1, sizeof(*out->parts));
    if (!out->parts) {
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const redisReply *f = rep->element[i], *v = rep->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (is(f, "bucket")) {
            same_bucket = is(v, bucket);
        } else if (is(f, "key")) {
            same_key = is(v, key);
        } else if (is(f, "upload_id") && !out->upload_id) {
            if (!(out->upload_id = dup_elem(v)))
                rc = FERRY_ERR_RETRYABLE;
        } else if (is(f, "src_etag") && !out->src_etag) {
            if (!(out->src_etag = dup_elem(v)))
                rc = FERRY_ERR_RETRYABLE;
        } else if (is(f, "part_size")) {
            out->part_size = u64_of(v->str, v->len);
        } else if (is(f, "size")) {
            out->size = u64_of(v->str, v->len);
        } else if (f->len > 1 && f->len < PART_FIELD_MAX && f->str[0] == 'p' &&
                   v->len < sizeof(out->parts[0].etag)) {
            ferry_objstore_mpu_part *p = &out->parts[out->nparts];
            uint64_t n = u64_of(f->str + 1, f->len - 1);
            if (n < 1 || n > FERRY_OBJSTORE_MAX_PARTS)
                continue;
            p->number = (uint32_t)n;
            memcpy(p->etag, v->str, v->len);
            p->etag[v->len] = '\0';
            out->nparts++;
        }
    }
    if (rc == FERRY_OK && out->nparts)
        rc = attach_checksums(rep, out);
    if (rc != FERRY_OK) {
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        goto out;
    }
    *found = same_bucket && same_key && out->upload_id && out->part_size;
out:
    freeReplyObject(rep);
    if (rc != FERRY_OK || !*found)
        ferry_mpu_record_clear(out);
    return rc;
}
