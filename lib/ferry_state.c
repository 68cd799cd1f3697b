/* ferry_state: see ferry_state.h. The Lua scripts below are the only writers of the keys;
 * each states its KEYS/ARGV and replies in the comment above it. */
#include "ferry_state.h"
#include "ferry_util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_ID_MAX 256
#define SPEC_HASH_MAX 128
#define URI_MAX 4096
#define CHECKPOINT_MAX 4096
#define ERROR_CLASS_MAX 64
#define MESSAGE_MAX 1024

/* ---- Lua ---------------------------------------------------------------------------
 * Conventions: numbers go in and out as decimal strings (Lua 5.1 numbers are doubles and
 * print large values with an exponent, so counts are never computed on in Lua); the
 * first reply element is a status word. Timestamps are the server's TIME, in ms. The
 * prelude asks Redis < 5 for effects replication (TIME before a write); on 5+ it is the
 * default and the call is a harmless no-op. */
#define LUA_PRELUDE                                                                               \
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"                      \
    "local function now_ms()\n"                                                                   \
    "  local t = redis.call('TIME')\n"                                                            \
    "  return string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))\n" \
    "end\n"

/* ACQUIRE  KEYS: state, lease, fence, report (this event's)
 *          ARGV: worker, event_id, spec_hash, ttl_ms, source_uri, target_uri
 * -> {'done', finished_at, objects_done, bytes_done}
 *        status is done with this event_id and spec_hash; nothing changed
 * -> {'busy', holder, pttl}
 *        the lease is held by another worker id; nothing changed
 * -> {'ok', fence, resumed, took_over, checkpoint, objects_done, bytes_done,
 *     objects_total ('' = unknown), attempts, objects_copied, objects_identical,
 *     objects_vanished, objects_failed, started_at, recheck}
 *        fence = INCR fence; lease = "<worker>:<fence>" PX ttl; state running with this
 *        worker/fence. resumed (same event_id and spec_hash, not done) keeps checkpoint,
 *        counts, started_at, last_error and adds 1 to attempts; otherwise the hash is
 *        replaced by a fresh one (attempts 1). Either way attempt_started_at = now and
 *        attempt_objects/attempt_bytes = the counts this attempt starts from (rates and
 *        ETA come from the current attempt). took_over: the lease was already held by
 *        this same worker id (a restarted worker); its old fence is now refused.
 *        recheck: the same event and spec ended failed_objects (a replay): a fresh start
 *        (report dropped; started_at kept, so the earlier copies count as this
 *        migration's own) whose copy checks every object at the target first; kept in
 *        the hash, so a resume of that run checks too. */
static const ferry_redis_script lua_acquire = {
    "acquire",
    LUA_PRELUDE
    "local st = redis.call('HMGET', KEYS[1], 'status', 'event_id', 'spec_hash',\n"
    "                      'finished_at', 'objects_done', 'bytes_done', 'started_at')\n"
    "if st[1] == 'done' and st[2] == ARGV[2] and st[3] == ARGV[3] then\n"
    "  return {'done', st[4] or '0', st[5] or '0', st[6] or '0'}\n"
    "end\n"
    "local holder = redis.call('GET', KEYS[2])\n"
    "local took_over = 0\n"
    "if holder then\n"
    "  local p = ARGV[1] .. ':'\n"
    "  if string.sub(holder, 1, #p) == p and string.find(string.sub(holder, #p + 1), '^%d+$') then\n"
    "    took_over = 1\n"
    "  else\n"
    "    return {'busy', holder, redis.call('PTTL', KEYS[2])}\n"
    "  end\n"
    "end\n"
    "local fence = string.format('%d', redis.call('INCR', KEYS[3]))\n"
    "local now = now_ms()\n"
    "redis.call('SET', KEYS[2], ARGV[1] .. ':' .. fence, 'PX', ARGV[4])\n"
    "local resumed, recheck = 0, 0\n"
    "if st[2] == ARGV[2] and st[3] == ARGV[3] then\n"
    "  if st[1] == 'failed_objects' then recheck = 1 else resumed = 1 end\n"
    "end\n"
    "if resumed == 1 then\n"
    "  redis.call('HINCRBY', KEYS[1], 'attempts', 1)\n"
    "  redis.call('HSET', KEYS[1], 'status', 'running', 'worker', ARGV[1], 'fence', fence,\n"
    "             'updated_at', now, 'source_uri', ARGV[5], 'target_uri', ARGV[6])\n"
    "  redis.call('HSETNX', KEYS[1], 'started_at', now)\n"
    "  redis.call('HDEL', KEYS[1], 'finished_at')\n"
    "else\n"
    "  redis.call('DEL', KEYS[1], KEYS[4])\n"
    "  redis.call('HSET', KEYS[1], 'status', 'running', 'event_id', ARGV[2],\n"
    "             'spec_hash', ARGV[3], 'worker', ARGV[1], 'fence', fence,\n"
    "             'source_uri', ARGV[5], 'target_uri', ARGV[6], 'started_at', now,\n"
    "             'updated_at', now, 'objects_done', '0', 'bytes_done', '0', 'attempts', '1')\n"
    "  if recheck == 1 then\n"
    "    redis.call('HSET', KEYS[1], 'recheck', '1')\n"
    "    if st[7] then redis.call('HSET', KEYS[1], 'started_at', st[7]) end\n"
    "  end\n"
    "end\n"
    "if resumed == 1 and redis.call('HGET', KEYS[1], 'recheck') == '1' then recheck = 1 end\n"
    "local cur = redis.call('HMGET', KEYS[1], 'checkpoint', 'objects_done', 'bytes_done',\n"
    "                       'objects_total', 'attempts', 'objects_copied',\n"
    "                       'objects_identical', 'objects_vanished', 'objects_failed',\n"
    "                       'started_at')\n"
    "redis.call('HSET', KEYS[1], 'attempt_started_at', now, 'attempt_objects', cur[2] or '0',\n"
    "           'attempt_bytes', cur[3] or '0')\n"
    "return {'ok', fence, resumed, took_over, cur[1] or '', cur[2] or '0', cur[3] or '0',\n"
    "        cur[4] or '', cur[5] or '1', cur[6] or '0', cur[7] or '0', cur[8] or '0',\n"
    "        cur[9] or '0', cur[10] or '0', recheck}\n",
};

/* RENEW  KEYS: lease   ARGV: "<worker>:<fence>", ttl_ms
 * -> {'ok'}                 lease PEXPIREd
 * -> {'fenced', holder}     lease missing ('') or someone else's; nothing changed */
static const ferry_redis_script lua_renew = {
    "renew",
    "local holder = redis.call('GET', KEYS[1])\n"
    "if holder ~= ARGV[1] then return {'fenced', holder or ''} end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "return {'ok'}\n",
};

/* RELEASE  KEYS: lease, state   ARGV: "<worker>:<fence>", fence
 * -> {'ok'}                 lease deleted; if state.fence == fence and status running,
 *                           status = pending (updated_at = now); checkpoint kept
 * -> {'fenced', holder}     not our lease; nothing changed */
static const ferry_redis_script lua_release = {
    "release",
    LUA_PRELUDE "local holder = redis.call('GET', KEYS[1])\n"
                "if holder ~= ARGV[1] then return {'fenced', holder or ''} end\n"
                "redis.call('DEL', KEYS[1])\n"
                "local st = redis.call('HMGET', KEYS[2], 'fence', 'status')\n"
                "if st[1] == ARGV[2] and st[2] == 'running' then\n"
                "  redis.call('HSET', KEYS[2], 'status', 'pending', 'updated_at', now_ms())\n"
                "end\n"
                "return {'ok'}\n",
};

/* Shared by the fenced writers: nil when the caller still owns the migration, else the
 * reply to return. */
#define LUA_FENCE_CHECK                                                                        \
    "local holder = redis.call('GET', KEYS[2])\n"                                              \
    "local sf = redis.call('HGET', KEYS[1], 'fence')\n"                                        \
    "if holder ~= ARGV[1] or sf ~= ARGV[2] then\n"                                             \
    "  return {'fenced', holder or '', sf or ''}\n"                                            \
    "end\n"

/* CHECKPOINT  KEYS: state, lease, report
 *             ARGV: "<worker>:<fence>", fence, checkpoint, objects_done, bytes_done,
 *                   objects_total, objects_copied, objects_identical, objects_vanished,
 *                   objects_failed ('' = leave each), report_max, report_ttl_ms,
 *                   total_lower_bound ('1' set, else clear),
 *                   then pairs of report field (source key) and value (JSON line)
 * -> {'ok'}                       fields and updated_at written; report entries added
 *                                 while the report has fewer than report_max (an
 *                                 existing field is overwritten: a retried write is
 *                                 harmless), state.report names the report
 * -> {'fenced', holder, fence}    lease not "<worker>:<fence>" or state.fence != fence
 *                                 (the current values, '' when missing); nothing written */
static const ferry_redis_script lua_checkpoint = {
    "checkpoint",
    LUA_PRELUDE LUA_FENCE_CHECK
    "redis.call('HSET', KEYS[1], 'checkpoint', ARGV[3], 'objects_done', ARGV[4],\n"
    "           'bytes_done', ARGV[5], 'updated_at', now_ms())\n"
    "if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'objects_total', ARGV[6]) end\n"
    "local names = {'objects_copied', 'objects_identical', 'objects_vanished', 'objects_failed'}\n"
    "for i = 1, 4 do\n"
    "  if ARGV[6 + i] ~= '' then redis.call('HSET', KEYS[1], names[i], ARGV[6 + i]) end\n"
    "end\n"
    "if ARGV[13] == '1' then redis.call('HSET', KEYS[1], 'objects_total_lower_bound', '1')\n"
    "else redis.call('HDEL', KEYS[1], 'objects_total_lower_bound') end\n"
    "if #ARGV > 13 then\n"
    "  local n, max = redis.call('HLEN', KEYS[3]), tonumber(ARGV[11])\n"
    "  for i = 14, #ARGV - 1, 2 do\n"
    "    if n < max or redis.call('HEXISTS', KEYS[3], ARGV[i]) == 1 then\n"
    "      n = n + redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])\n"
    "    end\n"
    "  end\n"
    "  redis.call('PEXPIRE', KEYS[3], ARGV[12])\n"
    "  redis.call('HSET', KEYS[1], 'report', KEYS[3])\n"
    "end\n"
    "return {'ok'}\n",
};

/* NOTE_VERIFY  KEYS: state, lease
 *              ARGV: "<worker>:<fence>", fence, methods ("checksum-crc32c,size")
 * -> {'ok'}    the state's `verify` field is the union of what it held and methods
 * -> {'fenced', holder, fence}   as for CHECKPOINT */
static const ferry_redis_script lua_note_verify = {
    "note_verify",
    LUA_PRELUDE LUA_FENCE_CHECK
    "local cur = redis.call('HGET', KEYS[1], 'verify') or ''\n"
    "for m in string.gmatch(ARGV[3], '[^,]+') do\n"
    "  if not string.find(','..cur..',', ','..m..',', 1, true) then\n"
    "    if cur == '' then cur = m else cur = cur..','..m end\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'verify', cur)\n"
    "return {'ok'}\n",
};

/* NOTE_ERROR  KEYS: state, lease
 *             ARGV: "<worker>:<fence>", fence, error_class, last_error
 * -> {'ok'}                       last_error, error_class, updated_at written; status stays
 * -> {'fenced', holder, fence}    as for CHECKPOINT */
static const ferry_redis_script lua_note_error = {
    "note_error",
    LUA_PRELUDE LUA_FENCE_CHECK
    "redis.call('HSET', KEYS[1], 'error_class', ARGV[3], 'last_error', ARGV[4],\n"
    "           'updated_at', now_ms())\n"
    "return {'ok'}\n",
};

/* FINISH  KEYS: state, lease
 *         ARGV: "<worker>:<fence>", fence, status ('done' | 'failed' | 'failed_objects'),
 *               objects_done ('' = leave), bytes_done ('' = leave), objects_total ('' =
 *               leave), error_class, last_error
 * -> {'ok'}            status, finished_at, updated_at (and counts) written; for done
 *                      last_error/error_class deleted, for failed set; lease deleted
 * -> {'ok', 'again'}   already finished with this status under this fence (a retry
 *                      after a lost reply); nothing changed
 * -> {'fenced', holder, fence}   as for CHECKPOINT */
static const ferry_redis_script lua_finish = {
    "finish",
    LUA_PRELUDE
    "local holder = redis.call('GET', KEYS[2])\n"
    "local st = redis.call('HMGET', KEYS[1], 'fence', 'status')\n"
    "if holder ~= ARGV[1] or st[1] ~= ARGV[2] then\n"
    "  if st[1] == ARGV[2] and st[2] == ARGV[3] then return {'ok', 'again'} end\n"
    "  return {'fenced', holder or '', st[1] or ''}\n"
    "end\n"
    "local now = now_ms()\n"
    "redis.call('HSET', KEYS[1], 'status', ARGV[3], 'finished_at', now, 'updated_at', now)\n"
    "if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'objects_done', ARGV[4]) end\n"
    "if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'bytes_done', ARGV[5]) end\n"
    "if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'objects_total', ARGV[6]) end\n"
    "if ARGV[3] == 'done' then\n"
    "  redis.call('HDEL', KEYS[1], 'last_error', 'error_class', 'objects_total_lower_bound')\n"
    "else\n"
    "  redis.call('HSET', KEYS[1], 'error_class', ARGV[7], 'last_error', ARGV[8])\n"
    "end\n"
    "redis.call('DEL', KEYS[2])\n"
    "return {'ok'}\n",
};

/* FAIL_UNLEASED  KEYS: state, lease
 *                ARGV: worker, event_id, spec_hash, source_uri, target_uri, error_class,
 *                      last_error  (empty spec/uris: leave as stored)
 * -> {'busy', holder, pttl}   someone holds the lease; nothing changed
 * -> {'ok'}                   status failed, error fields, finished_at/updated_at; a
 *                             different event_id first drops the old hash (checkpoint,
 *                             counts) and starts attempts at 1, the same one adds 1 */
static const ferry_redis_script lua_fail_unleased = {
    "fail-unleased",
    LUA_PRELUDE
    "local holder = redis.call('GET', KEYS[2])\n"
    "if holder then return {'busy', holder, redis.call('PTTL', KEYS[2])} end\n"
    "local now = now_ms()\n"
    "if redis.call('HGET', KEYS[1], 'event_id') == ARGV[2] then\n"
    "  redis.call('HINCRBY', KEYS[1], 'attempts', 1)\n"
    "else\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('HSET', KEYS[1], 'event_id', ARGV[2], 'objects_done', '0',\n"
    "             'bytes_done', '0', 'attempts', '1')\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'status', 'failed', 'worker', ARGV[1],\n"
    "           'error_class', ARGV[6], 'last_error', ARGV[7], 'finished_at', now,\n"
    "           'updated_at', now)\n"
    "if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'spec_hash', ARGV[3]) end\n"
    "if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'source_uri', ARGV[4]) end\n"
    "if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'target_uri', ARGV[5]) end\n"
    "return {'ok'}\n",
};

/* GET  KEYS: state, lease
 * -> {HGETALL state, lease value or nil, PTTL lease}   read atomically */
static const ferry_redis_script lua_get = {
    "get",
    "return {redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[2]),\n"
    "        redis.call('PTTL', KEYS[2])}\n",
};

/* ---- keys ------------------------------------------------------------------------- */

int ferry_state_dataset_ok(const char *dataset)
{
    size_t n;

    if (!dataset)
        return 0;
    n = strnlen(dataset, FERRY_STATE_DATASET_MAX + 1);
    if (n == 0 || n > FERRY_STATE_DATASET_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)dataset[i];
        if (c == '{' || c == '}' || c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

static int suffix_ok(const char *s)
{
    size_t n = s ? strnlen(s, 17) : 0;

    if (n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return 0;
    }
    return 1;
}

ferry_rc ferry_state_key(char *buf, size_t size, const char *dataset, const char *suffix,
                         ferry_error *err)
{
    int n;

    if (size)
        buf[0] = '\0';
    if (!ferry_state_dataset_ok(dataset))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "dataset name refused for a Redis key (empty, over %d bytes, "
                               "or contains '{', '}' or a control character)",
                               FERRY_STATE_DATASET_MAX);
    if (!suffix_ok(suffix))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "bad Redis key suffix");
    n = snprintf(buf, size, "ferry:{%s}:%s", dataset, suffix);
    if (n < 0 || (size_t)n >= size) {
        if (size)
            buf[0] = '\0';
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "Redis key buffer too small");
    }
    return FERRY_OK;
}

int ferry_state_key_dataset(const char *key, size_t keylen, char *out, size_t outsz)
{
    static const char pre[] = "ferry:{", suf[] = "}:state";
    const size_t np = sizeof(pre) - 1, ns = sizeof(suf) - 1;
    size_t n;

    if (!key || keylen <= np + ns || memcmp(key, pre, np) != 0 ||
        memcmp(key + keylen - ns, suf, ns) != 0)
        return -1;
    n = keylen - np - ns;
    if (n > FERRY_STATE_DATASET_MAX || n + 1 > outsz || memchr(key + np, '\0', n))
        return -1;
    memcpy(out, key + np, n);
    out[n] = '\0';
    if (!ferry_state_dataset_ok(out)) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* ---- spec hash -------------------------------------------------------------------- */

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return ferry_fnv1a64(h, b, 8);
}

/* length-prefixed, so ("ab","c") and ("a","bc") differ; NULL differs from "" */
static uint64_t fnv_str(uint64_t h, const char *s)
{
    if (!s)
        return fnv_u64(h, UINT64_MAX);
    h = fnv_u64(h, strlen(s));
    return ferry_fnv1a64(h, s, strlen(s));
}

void ferry_state_spec_hash(const ferry_onboard *ev, char out[17])
{
    uint64_t h = FERRY_FNV1A64_INIT;

    h = fnv_str(h, "ferry-spec-v1");
    h = fnv_str(h, ev->source_uri);
    h = fnv_str(h, ev->target_uri);
    h = fnv_u64(h, ev->verify ? 1 : 0);
    h = fnv_str(h, ferry_overwrite_name(ev->overwrite));
    h = fnv_u64(h, ev->include_count);
    for (size_t i = 0; i < ev->include_count; i++)
        h = fnv_str(h, ev->include_prefixes[i]);
    h = fnv_u64(h, ev->exclude_count);
    for (size_t i = 0; i < ev->exclude_count; i++)
        h = fnv_str(h, ev->exclude_prefixes[i]);
    /* Not source_inventory: it says where to cut the chunks, not what to copy. S3 writes a
     * new inventory every day under a new key; a catalog that follows it must not
     * re-publish the dataset, nor a worker restart it from scratch. */
    snprintf(out, 17, "%016" PRIx64, h);
}

/* ---- helpers ---------------------------------------------------------------------- */

static const char *const status_names[] = {"none",   "pending",        "running", "done",
                                           "failed", "failed_objects", "unknown"};

double ferry_migration_progress(const ferry_migration_state *st)
{
    if (st->status == FERRY_MIG_DONE)
        return 1;
    if (st->objects_total < 0 || st->objects_total_lower_bound)
        return -1;
    if (st->objects_total == 0)
        return 0;
    return st->objects_done >= st->objects_total
               ? 1
               : (double)st->objects_done / (double)st->objects_total;
}

const char *ferry_mig_status_name(ferry_mig_status s)
{
    if ((unsigned)s > FERRY_MIG_UNKNOWN)
        return "unknown";
    return status_names[s];
}

int ferry_mig_status_parse(const char *s, ferry_mig_status *out)
{
    for (int i = FERRY_MIG_PENDING; i <= FERRY_MIG_FAILED_OBJECTS; i++) {
        if (s && strcmp(s, status_names[i]) == 0) {
            *out = (ferry_mig_status)i;
            return 0;
        }
    }
    return -1;
}

/* 1..max bytes, no control bytes (ids that end up in log lines and lease values) */
static int text_ok(const char *s, size_t max, int allow_empty)
{
    size_t n;

    if (!s)
        return allow_empty;
    n = strnlen(s, max + 1);
    if (n > max || (n == 0 && !allow_empty))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int len_ok(const char *s, size_t max) { return !s || strnlen(s, max + 1) <= max; }

static ferry_rc bad_request(ferry_error *err, const char *what)
{
    return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "state: invalid %s",
                           what);
}

static ferry_rc lease_ok(const ferry_lease *l, ferry_error *err)
{
    if (!ferry_state_dataset_ok(l->dataset))
        return bad_request(err, "lease dataset");
    if (!text_ok(l->worker, FERRY_STATE_WORKER_MAX, 0))
        return bad_request(err, "lease worker id");
    if (l->fence < 1)
        return bad_request(err, "lease fence");
    return FERRY_OK;
}

typedef struct {
    char state[FERRY_STATE_KEY_MAX];
    char lease[FERRY_STATE_KEY_MAX];
    char fence[FERRY_STATE_KEY_MAX];
} keyset;

static ferry_rc make_keys(keyset *k, const char *dataset, ferry_error *err)
{
    ferry_rc rc = ferry_state_key(k->state, sizeof(k->state), dataset, FERRY_STATE_KEY_STATE,
                                  err);
    if (rc == FERRY_OK)
        rc = ferry_state_key(k->lease, sizeof(k->lease), dataset, FERRY_STATE_KEY_LEASE, err);
    if (rc == FERRY_OK)
        rc = ferry_state_key(k->fence, sizeof(k->fence), dataset, FERRY_STATE_KEY_FENCE, err);
    return rc;
}

static void lease_value(char *buf, size_t size, const ferry_lease *l)
{
    snprintf(buf, size, "%s:%" PRId64, l->worker, l->fence);
}

/* Lenient: a missing or garbled number reads as dflt (status display must not fail). */
static int64_t to_i64(const char *s, size_t n, int64_t dflt)
{
    char buf[32];
    char *end;
    long long v;

    if (!s || n == 0 || n >= sizeof(buf))
        return dflt;
    memcpy(buf, s, n);
    buf[n] = '\0';
    v = strtoll(buf, &end, 10);
    return *end ? dflt : (int64_t)v;
}

static int64_t elem_i64(const redisReply *e, int64_t dflt)
{
    if (e->type == REDIS_REPLY_INTEGER)
        return (int64_t)e->integer;
    if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS)
        return to_i64(e->str, e->len, dflt);
    return dflt;
}

static int elem_is(const redisReply *e, const char *s)
{
    return (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) &&
           e->len == strlen(s) && memcmp(e->str, s, e->len) == 0;
}

/* heap copy of a string element; NULL for nil or empty */
static char *elem_dup(const redisReply *e)
{
    char *s;
    if ((e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS) || e->len == 0)
        return NULL;
    s = malloc(e->len + 1);
    if (s) {
        memcpy(s, e->str, e->len);
        s[e->len] = '\0';
    }
    return s;
}

static void elem_copy(const redisReply *e, char *buf, size_t size)
{
    size_t n = 0;
    if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS)
        n = e->len < size - 1 ? e->len : size - 1;
    if (n)
        memcpy(buf, e->str, n);
    buf[n] = '\0';
}

static ferry_rc bad_reply(const char *script, ferry_error *err)
{
    return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_REDIS,
                           "state: unexpected reply from script %s", script);
}

/* Checks the reply is an array of at least n elements starting with a status word. */
static int reply_shape(const redisReply *rep, size_t n)
{
    return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= n &&
           (rep->element[0]->type == REDIS_REPLY_STRING ||
            rep->element[0]->type == REDIS_REPLY_STATUS);
}

static ferry_rc fenced(const ferry_lease *l, const char *what, const redisReply *rep,
                       ferry_error *err)
{
    char holder[FERRY_STATE_WORKER_MAX + 32] = "", sf[32] = "";

    if (rep->elements >= 2)
        elem_copy(rep->element[1], holder, sizeof(holder));
    if (rep->elements >= 3)
        elem_copy(rep->element[2], sf, sizeof(sf));
    return ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_FENCED,
                           "%s refused for dataset %s: lease %s:%" PRId64
                           " lost (lease now %s%s%s)",
                           what, l->dataset, l->worker, l->fence, holder[0] ? holder : "free",
                           sf[0] ? ", state fence " : "", sf);
}

/* Trims s to at most max bytes without splitting a UTF-8 sequence. */
static void utf8_trim(const char *s, char *buf, size_t max)
{
    size_t n = s ? strnlen(s, max + 1) : 0;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(buf, s, n);
    buf[n] = '\0';
}

static void fmt_i64(char *buf, size_t size, int64_t v)
{
    if (v < 0)
        buf[0] = '\0';
    else
        snprintf(buf, size, "%" PRId64, v);
}

/* ---- acquire / renew / release ----------------------------------------------------- */

void ferry_acquire_result_clear(ferry_acquire_result *res)
{
    if (!res)
        return;
    free(res->checkpoint);
    free(res->holder);
    memset(res, 0, sizeof(*res));
}

ferry_rc ferry_state_acquire(ferry_redis *r, const ferry_acquire_req *req,
                             ferry_acquire_result *res, ferry_error *err)
{
    keyset k;
    char ttl[32], report[FERRY_STATE_KEY_MAX + EVENT_ID_MAX + 8];
    const char *argv[10];
    redisReply *rep = NULL;
    ferry_rc rc;

    memset(res, 0, sizeof(*res));
    rc = make_keys(&k, req->dataset, err);
    if (rc != FERRY_OK)
        return rc;
    if (!text_ok(req->worker, FERRY_STATE_WORKER_MAX, 0))
        return bad_request(err, "worker id");
    if (!text_ok(req->event_id, EVENT_ID_MAX, 0))
        return bad_request(err, "event id");
    if (!text_ok(req->spec_hash, SPEC_HASH_MAX, 1))
        return bad_request(err, "spec hash");
    if (!len_ok(req->source_uri, URI_MAX) || !len_ok(req->target_uri, URI_MAX))
        return bad_request(err, "URI (too long)");
    if (req->ttl_ms < 1 || req->ttl_ms > FERRY_STATE_LEASE_TTL_MAX_MS)
        return bad_request(err, "lease ttl");
    snprintf(ttl, sizeof(ttl), "%" PRId64, req->ttl_ms);
    if ((rc = ferry_state_report_key(report, sizeof(report), req->dataset, req->event_id,
                                     err)) != FERRY_OK)
        return rc;

    argv[0] = k.state;
    argv[1] = k.lease;
    argv[2] = k.fence;
    argv[3] = report;
    argv[4] = req->worker;
    argv[5] = req->event_id;
    argv[6] = req->spec_hash ? req->spec_hash : "";
    argv[7] = ttl;
    argv[8] = req->source_uri ? req->source_uri : "";
    argv[9] = req->target_uri ? req->target_uri : "";
    rc = ferry_redis_eval(r, &lua_acquire, 4, 10, argv, &rep, err);
    if (rc != FERRY_OK)
        goto out;

    if (reply_shape(rep, 4) && elem_is(rep->element[0], "done")) {
        res->outcome = FERRY_ACQUIRE_ALREADY_DONE;
        res->finished_at_ms = elem_i64(rep->element[1], 0);
        res->objects_done = elem_i64(rep->element[2], 0);
        res->bytes_done = elem_i64(rep->element[3], 0);
    } else if (reply_shape(rep, 3) && elem_is(rep->element[0], "busy")) {
        res->outcome = FERRY_ACQUIRE_BUSY;
        res->holder = elem_dup(rep->element[1]);
        res->holder_ttl_ms = elem_i64(rep->element[2], -1);
    } else if (reply_shape(rep, 15) && elem_is(rep->element[0], "ok")) {
        res->outcome = FERRY_ACQUIRE_OK;
        snprintf(res->lease.dataset, sizeof(res->lease.dataset), "%s", req->dataset);
        snprintf(res->lease.worker, sizeof(res->lease.worker), "%s", req->worker);
        res->lease.fence = elem_i64(rep->element[1], 0);
        res->lease.ttl_ms = req->ttl_ms;
        res->resumed = elem_i64(rep->element[2], 0) != 0;
        res->took_over = elem_i64(rep->element[3], 0) != 0;
        res->checkpoint = elem_dup(rep->element[4]);
        res->objects_done = elem_i64(rep->element[5], 0);
        res->bytes_done = elem_i64(rep->element[6], 0);
        res->objects_total = elem_i64(rep->element[7], -1);
        res->attempts = elem_i64(rep->element[8], 1);
        res->objects_copied = elem_i64(rep->element[9], 0);
        res->objects_identical = elem_i64(rep->element[10], 0);
        res->objects_vanished = elem_i64(rep->element[11], 0);
        res->objects_failed = elem_i64(rep->element[12], 0);
        res->started_at_ms = elem_i64(rep->element[13], 0);
        res->recheck = elem_i64(rep->element[14], 0) != 0;
        if (res->lease.fence < 1) {
            rc = bad_reply(lua_acquire.name, err);
            goto out;
        }
    } else {
        rc = bad_reply(lua_acquire.name, err);
        goto out;
    }
    rc = FERRY_OK;
out:
    freeReplyObject(rep);
    if (rc != FERRY_OK)
        ferry_acquire_result_clear(res);
    return rc;
}

/* Runs a script whose reply is {'ok', ...} or {'fenced', holder[, fence]}. */
static ferry_rc run_fenced(ferry_redis *r, const ferry_redis_script *s, const ferry_lease *l,
                           const char *what, int numkeys, int argc, const char **argv,
                           ferry_error *err)
{
    redisReply *rep = NULL;
    ferry_rc rc = ferry_redis_eval(r, s, numkeys, argc, argv, &rep, err);

    if (rc != FERRY_OK)
        return rc;
    if (reply_shape(rep, 1) && elem_is(rep->element[0], "ok"))
        rc = FERRY_OK;
    else if (reply_shape(rep, 1) && elem_is(rep->element[0], "fenced"))
        rc = fenced(l, what, rep, err);
    else
        rc = bad_reply(s->name, err);
    freeReplyObject(rep);
    return rc;
}

ferry_rc ferry_state_renew(ferry_redis *r, const ferry_lease *lease, ferry_error *err)
{
    keyset k;
    char value[FERRY_STATE_WORKER_MAX + 32], ttl[32];
    const char *argv[3];
    ferry_rc rc;

    if ((rc = lease_ok(lease, err)) != FERRY_OK || (rc = make_keys(&k, lease->dataset, err)))
        return rc;
    if (lease->ttl_ms < 1 || lease->ttl_ms > FERRY_STATE_LEASE_TTL_MAX_MS)
        return bad_request(err, "lease ttl");
    lease_value(value, sizeof(value), lease);
    snprintf(ttl, sizeof(ttl), "%" PRId64, lease->ttl_ms);
    argv[0] = k.lease;
    argv[1] = value;
    argv[2] = ttl;
    return run_fenced(r, &lua_renew, lease, "lease renewal", 1, 3, argv, err);
}

ferry_rc ferry_state_release(ferry_redis *r, const ferry_lease *lease, ferry_error *err)
{
    keyset k;
    char value[FERRY_STATE_WORKER_MAX + 32], fence[32];
    const char *argv[4];
    ferry_rc rc;

    if ((rc = lease_ok(lease, err)) != FERRY_OK || (rc = make_keys(&k, lease->dataset, err)))
        return rc;
    lease_value(value, sizeof(value), lease);
    snprintf(fence, sizeof(fence), "%" PRId64, lease->fence);
    argv[0] = k.lease;
    argv[1] = k.state;
    argv[2] = value;
    argv[3] = fence;
    return run_fenced(r, &lua_release, lease, "lease release", 2, 4, argv, err);
}

/* ---- checkpoint / done / failed ---------------------------------------------------- */

ferry_rc ferry_state_report_key(char *buf, size_t size, const char *dataset,
                                const char *event_id, ferry_error *err)
{
    int n;

    if (!ferry_state_dataset_ok(dataset))
        return ferry_state_key(buf, size, dataset, FERRY_STATE_KEY_STATE, err); /* the error */
    if (!text_ok(event_id, EVENT_ID_MAX, 1))
        return bad_request(err, "event id");
    n = snprintf(buf, size, "ferry:{%s}:report:%s", dataset, event_id ? event_id : "");
    if (n < 0 || (size_t)n >= size)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "Redis key buffer too small");
    return FERRY_OK;
}

/* One report line as JSON; NULL when out of memory. The caller frees it. */
static char *report_json(const ferry_report_entry *e)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "key", e->key, "outcome", e->outcome, "class",
                          e->cls, "message", e->message ? e->message : "");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

ferry_rc ferry_state_checkpoint(ferry_redis *r, const ferry_lease *lease,
                                const ferry_checkpoint *cp, ferry_error *err)
{
    keyset k;
    char value[FERRY_STATE_WORKER_MAX + 32], fence[32], od[32], bd[32], ot[32];
    char counts[4][32], max[32], ttl[32], report[FERRY_STATE_KEY_MAX + EVENT_ID_MAX + 8];
    const int64_t cv[4] = {cp->objects_copied, cp->objects_identical, cp->objects_vanished,
                           cp->objects_failed};
    const char **argv = NULL;
    char **lines = NULL;
    size_t argc = 16 + 2 * cp->nreport, nlines = 0;
    ferry_rc rc;

    if ((rc = lease_ok(lease, err)) != FERRY_OK || (rc = make_keys(&k, lease->dataset, err)))
        return rc;
    if (!cp->key || strnlen(cp->key, CHECKPOINT_MAX + 1) > CHECKPOINT_MAX)
        return bad_request(err, "checkpoint key");
    if (cp->objects_done < 0 || cp->bytes_done < 0)
        return bad_request(err, "checkpoint counts");
    if (cp->nreport && !cp->event_id)
        return bad_request(err, "report without an event id");
    if ((rc = ferry_state_report_key(report, sizeof(report), lease->dataset, cp->event_id,
                                     err)) != FERRY_OK)
        return rc;
    argv = calloc(argc, sizeof(*argv)); /* 3 keys, 13 arguments, the report pairs */
    lines = calloc(cp->nreport ? cp->nreport : 1, sizeof(*lines));
    if (!argv || !lines) {
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        goto out;
    }
    lease_value(value, sizeof(value), lease);
    snprintf(fence, sizeof(fence), "%" PRId64, lease->fence);
    fmt_i64(od, sizeof(od), cp->objects_done);
    fmt_i64(bd, sizeof(bd), cp->bytes_done);
    fmt_i64(ot, sizeof(ot), cp->objects_total);
    for (int i = 0; i < 4; i++)
        fmt_i64(counts[i], sizeof(counts[i]), cv[i]);
    snprintf(max, sizeof(max), "%d", FERRY_STATE_REPORT_MAX);
    snprintf(ttl, sizeof(ttl), "%lld", FERRY_STATE_REPORT_TTL_MS);
    argv[0] = k.state;
    argv[1] = k.lease;
    argv[2] = report;
    argv[3] = value;
    argv[4] = fence;
    argv[5] = cp->key;
    argv[6] = od;
    argv[7] = bd;
    argv[8] = ot;
    for (int i = 0; i < 4; i++)
        argv[9 + i] = counts[i];
    argv[13] = max;
    argv[14] = ttl;
    argv[15] = cp->total_lower_bound ? "1" : "0";
    argc = 16;
    for (size_t i = 0; i < cp->nreport; i++) {
        if (!(lines[nlines] = report_json(&cp->report[i]))) {
            rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
            goto out;
        }
        argv[argc++] = cp->report[i].key;
        argv[argc++] = lines[nlines++];
    }
    rc = run_fenced(r, &lua_checkpoint, lease, "checkpoint", 3, (int)argc, argv, err);
out:
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(lines);
    free(argv);
    return rc;
}

ferry_rc ferry_state_note_verify(ferry_redis *r, const ferry_lease *lease, const char *methods,
                                 ferry_error *err)
{
    keyset k;
    char value[FERRY_STATE_WORKER_MAX + 32], fence[32];
    const char *argv[5];
    ferry_rc rc;

    if ((rc = lease_ok(lease, err)) != FERRY_OK || (rc = make_keys(&k, lease->dataset, err)))
        return rc;
    if (!methods || strnlen(methods, 513) > 512)
        return bad_request(err, "verification methods");
    lease_value(value, sizeof(value), lease);
    snprintf(fence, sizeof(fence), "%" PRId64, lease->fence);
    argv[0] = k.state;
    argv[1] = k.lease;
    argv[2] = value;
    argv[3] = fence;
    argv[4] = methods;
    return run_fenced(r, &lua_note_verify, lease, "verification note", 2, 5, argv, err);
}

ferry_rc ferry_state_note_error(ferry_redis *r, const ferry_lease *lease,
                                const char *error_class, const char *message, ferry_error *err)
{
    keyset k;
    char value[FERRY_STATE_WORKER_MAX + 32], fence[32];
    char cls[ERROR_CLASS_MAX + 1], msg[MESSAGE_MAX + 1];
    const char *argv[6];
    ferry_rc rc;

    if ((rc = lease_ok(lease, err)) != FERRY_OK || (rc = make_keys(&k, lease->dataset, err)))
        return rc;
    lease_value(value, sizeof(value), lease);
    snprintf(fence, sizeof(fence), "%" PRId64, lease->fence);
    utf8_trim(error_class, cls, ERROR_CLASS_MAX);
    utf8_trim(message, msg, MESSAGE_MAX);
    argv[0] = k.state;
    argv[1] = k.lease;
    argv[2] = value;
    argv[3] = fence;
    argv[4] = cls;
    argv[5] = msg;
    return run_fenced(r, &lua_note_error, lease, "note error", 2, 6, argv, err);
}

static ferry_rc finish(ferry_redis *r, const ferry_lease *lease, const char *status,
                       int64_t objects_done, int64_t bytes_done, int64_t objects_total,
                       const char *error_class, const char *message, ferry_error *err)
{
    keyset k;
    char value[FERRY_STATE_WORKER_MAX + 32], fence[32], od[32], bd[32], ot[32];
    char cls[ERROR_CLASS_MAX + 1], msg[MESSAGE_MAX + 1];
    const char *argv[10];
    ferry_rc rc;

    if ((rc = lease_ok(lease, err)) != FERRY_OK || (rc = make_keys(&k, lease->dataset, err)))
        return rc;
    lease_value(value, sizeof(value), lease);
    snprintf(fence, sizeof(fence), "%" PRId64, lease->fence);
    fmt_i64(od, sizeof(od), objects_done);
    fmt_i64(bd, sizeof(bd), bytes_done);
    fmt_i64(ot, sizeof(ot), objects_total);
    utf8_trim(error_class, cls, ERROR_CLASS_MAX);
    utf8_trim(message, msg, MESSAGE_MAX);
    argv[0] = k.state;
    argv[1] = k.lease;
    argv[2] = value;
    argv[3] = fence;
    argv[4] = status;
    argv[5] = od;
    argv[6] = bd;
    argv[7] = ot;
    argv[8] = cls;
    argv[9] = msg;
    return run_fenced(r, &lua_finish, lease,
                      strcmp(status, "done") == 0 ? "mark done" : "mark failed", 2, 10, argv,
                      err);
}

ferry_rc ferry_state_mark_done(ferry_redis *r, const ferry_lease *lease, int64_t objects_done,
                               int64_t bytes_done, int64_t objects_total, ferry_error *err)
{
    if (objects_done < 0 || bytes_done < 0)
        return bad_request(err, "final counts");
    return finish(r, lease, "done", objects_done, bytes_done, objects_total, NULL, NULL, err);
}

ferry_rc ferry_state_mark_failed_objects(ferry_redis *r, const ferry_lease *lease,
                                         int64_t objects_done, int64_t bytes_done,
                                         int64_t objects_total, const char *error_class,
                                         const char *message, ferry_error *err)
{
    if (objects_done < 0 || bytes_done < 0)
        return bad_request(err, "final counts");
    return finish(r, lease, "failed_objects", objects_done, bytes_done, objects_total,
                  error_class ? error_class : FERRY_EC_INTERNAL, message ? message : "", err);
}

ferry_rc ferry_state_mark_failed(ferry_redis *r, const ferry_lease *lease,
                                 const char *error_class, const char *message, ferry_error *err)
{
    return finish(r, lease, "failed", -1, -1, -1, error_class ? error_class : FERRY_EC_INTERNAL,
                  message ? message : "", err);
}

ferry_rc ferry_state_mark_failed_unleased(ferry_redis *r, const ferry_fail_req *req,
                                          ferry_error *err)
{
    keyset k;
    char cls[ERROR_CLASS_MAX + 1], msg[MESSAGE_MAX + 1];
    const char *argv[9];
    redisReply *rep = NULL;
    ferry_rc rc;

    if ((rc = make_keys(&k, req->dataset, err)) != FERRY_OK)
        return rc;
    if (!text_ok(req->worker, FERRY_STATE_WORKER_MAX, 0))
        return bad_request(err, "worker id");
    if (!text_ok(req->event_id, EVENT_ID_MAX, 0))
        return bad_request(err, "event id");
    if (!text_ok(req->spec_hash, SPEC_HASH_MAX, 1))
        return bad_request(err, "spec hash");
    if (!len_ok(req->source_uri, URI_MAX) || !len_ok(req->target_uri, URI_MAX))
        return bad_request(err, "URI (too long)");
    utf8_trim(req->error_class ? req->error_class : FERRY_EC_INTERNAL, cls, ERROR_CLASS_MAX);
    utf8_trim(req->message, msg, MESSAGE_MAX);
    argv[0] = k.state;
    argv[1] = k.lease;
    argv[2] = req->worker;
    argv[3] = req->event_id;
    argv[4] = req->spec_hash ? req->spec_hash : "";
    argv[5] = req->source_uri ? req->source_uri : "";
    argv[6] = req->target_uri ? req->target_uri : "";
    argv[7] = cls;
    argv[8] = msg;
    rc = ferry_redis_eval(r, &lua_fail_unleased, 2, 9, argv, &rep, err);
    if (rc != FERRY_OK)
        return rc;
    if (reply_shape(rep, 1) && elem_is(rep->element[0], "ok")) {
        rc = FERRY_OK;
    } else if (reply_shape(rep, 3) && elem_is(rep->element[0], "busy")) {
        char holder[FERRY_STATE_WORKER_MAX + 32];
        elem_copy(rep->element[1], holder, sizeof(holder));
        rc = ferry_error_set(err, FERRY_ERR_CANCELLED, FERRY_EC_FENCED,
                             "mark failed refused for dataset %s: lease held by %s",
                             req->dataset, holder);
    } else {
        rc = bad_reply(lua_fail_unleased.name, err);
    }
    freeReplyObject(rep);
    return rc;
}

/* ---- read ------------------------------------------------------------------------- */

void ferry_migration_state_clear(ferry_migration_state *st)
{
    if (!st)
        return;
    free(st->dataset);
    free(st->event_id);
    free(st->worker);
    free(st->source_uri);
    free(st->target_uri);
    free(st->spec_hash);
    free(st->checkpoint);
    free(st->last_error);
    free(st->error_class);
    free(st->lease_holder);
    free(st->report);
    free(st->report_object);
    free(st->verify);
    memset(st, 0, sizeof(*st));
}

static void field_set(ferry_migration_state *st, const redisReply *f, const redisReply *v)
{
    static const struct {
        const char *name;
        size_t off;
    } strs[] = {
        {"event_id", offsetof(ferry_migration_state, event_id)},
        {"worker", offsetof(ferry_migration_state, worker)},
        {"source_uri", offsetof(ferry_migration_state, source_uri)},
        {"target_uri", offsetof(ferry_migration_state, target_uri)},
        {"spec_hash", offsetof(ferry_migration_state, spec_hash)},
        {"checkpoint", offsetof(ferry_migration_state, checkpoint)},
        {"last_error", offsetof(ferry_migration_state, last_error)},
        {"error_class", offsetof(ferry_migration_state, error_class)},
        {"report", offsetof(ferry_migration_state, report)},
        {"report_object", offsetof(ferry_migration_state, report_object)},
        {"verify", offsetof(ferry_migration_state, verify)},
    };
    static const struct {
        const char *name;
        size_t off;
    } nums[] = {
        {"fence", offsetof(ferry_migration_state, fence)},
        {"started_at", offsetof(ferry_migration_state, started_at_ms)},
        {"updated_at", offsetof(ferry_migration_state, updated_at_ms)},
        {"finished_at", offsetof(ferry_migration_state, finished_at_ms)},
        {"objects_done", offsetof(ferry_migration_state, objects_done)},
        {"bytes_done", offsetof(ferry_migration_state, bytes_done)},
        {"objects_total", offsetof(ferry_migration_state, objects_total)},
        {"attempts", offsetof(ferry_migration_state, attempts)},
        {"objects_copied", offsetof(ferry_migration_state, objects_copied)},
        {"objects_identical", offsetof(ferry_migration_state, objects_identical)},
        {"objects_vanished", offsetof(ferry_migration_state, objects_vanished)},
        {"objects_failed", offsetof(ferry_migration_state, objects_failed)},
        {"attempt_started_at", offsetof(ferry_migration_state, attempt_started_at_ms)},
        {"attempt_objects", offsetof(ferry_migration_state, attempt_objects)},
        {"attempt_bytes", offsetof(ferry_migration_state, attempt_bytes)},
    };
    char *base = (char *)st;

    if (elem_is(f, "objects_total_lower_bound")) {
        st->objects_total_lower_bound = elem_i64(v, 0) != 0;
        return;
    }
    if (elem_is(f, "status")) {
        char buf[16];
        elem_copy(v, buf, sizeof(buf));
        if (ferry_mig_status_parse(buf, &st->status) != 0)
            st->status = FERRY_MIG_UNKNOWN;
        return;
    }
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (elem_is(f, strs[i].name)) {
            char **slot = (char **)(void *)(base + strs[i].off);
            free(*slot);
            *slot = elem_dup(v);
            return;
        }
    }
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (elem_is(f, nums[i].name)) {
            int64_t *slot = (int64_t *)(void *)(base + nums[i].off);
            *slot = elem_i64(v, *slot);
            return;
        }
    }
    /* unknown fields (a newer version's) are ignored */
}

ferry_rc ferry_state_get(ferry_redis *r, const char *dataset, ferry_migration_state *out,
                         ferry_error *err)
{
    keyset k;
    const char *argv[2];
    redisReply *rep = NULL, *h;
    ferry_rc rc;

    memset(out, 0, sizeof(*out));
    out->objects_total = -1;
    out->lease_ttl_ms = -1;
    if ((rc = make_keys(&k, dataset, err)) != FERRY_OK)
        return rc;
    argv[0] = k.state;
    argv[1] = k.lease;
    rc = ferry_redis_eval(r, &lua_get, 2, 2, argv, &rep, err);
    if (rc != FERRY_OK)
        return rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_ARRAY) {
        rc = bad_reply(lua_get.name, err);
        goto out;
    }
    out->dataset = strdup(dataset);
    h = rep->element[0];
    if (h->elements > 0 && out->status == FERRY_MIG_NONE)
        out->status = FERRY_MIG_UNKNOWN; /* a hash without a status field */
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        field_set(out, h->element[i], h->element[i + 1]);
    out->lease_holder = elem_dup(rep->element[1]);
    if (out->lease_holder) {
        out->lease_ttl_ms = elem_i64(rep->element[2], -1);
        if (out->lease_ttl_ms < 0)
            out->lease_ttl_ms = -1;
    }
    if (!out->dataset) {
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        goto out;
    }
    rc = FERRY_OK;
out:
    freeReplyObject(rep);
    if (rc != FERRY_OK)
        ferry_migration_state_clear(out);
    return rc;
}

/* ---- iterator --------------------------------------------------------------------- */

struct ferry_state_iter {
    ferry_redis *r;
    char cursor[32];
    char count[16];
    int finished;      /* the server returned cursor 0 */
    redisReply *batch; /* the last SCAN reply */
    size_t pos;        /* next key in batch->element[1] */
    char name[FERRY_STATE_DATASET_MAX + 1];
};

ferry_state_iter *ferry_state_iter_new(ferry_redis *r, unsigned count_hint)
{
    ferry_state_iter *it = calloc(1, sizeof(*it));

    if (!it)
        return NULL;
    it->r = r;
    snprintf(it->cursor, sizeof(it->cursor), "0");
    snprintf(it->count, sizeof(it->count), "%u", count_hint ? count_hint : 100);
    return it;
}

void ferry_state_iter_destroy(ferry_state_iter *it)
{
    if (!it)
        return;
    freeReplyObject(it->batch);
    free(it);
}

ferry_rc ferry_state_iter_next(ferry_state_iter *it, const char **dataset, ferry_error *err)
{
    *dataset = NULL;
    for (;;) {
        if (it->batch) {
            const redisReply *keys = it->batch->element[1];
            while (it->pos < keys->elements) {
                const redisReply *key = keys->element[it->pos++];
                if (key->type == REDIS_REPLY_STRING &&
                    ferry_state_key_dataset(key->str, key->len, it->name, sizeof(it->name)) ==
                        0) {
                    *dataset = it->name;
                    return FERRY_OK;
                }
            }
            freeReplyObject(it->batch);
            it->batch = NULL;
        }
        if (it->finished)
            return FERRY_OK;

        const char *argv[6] = {"SCAN",  it->cursor, "MATCH", "ferry:{*}:state",
                               "COUNT", it->count};
        redisReply *rep = NULL;
        ferry_rc rc = ferry_redis_command(it->r, 6, argv, NULL, &rep, err);
        if (rc != FERRY_OK)
            return rc; /* cursor kept: the caller may retry */
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING || rep->element[0]->len == 0 ||
            rep->element[0]->len >= sizeof(it->cursor) ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            return bad_reply("SCAN", err);
        }
        elem_copy(rep->element[0], it->cursor, sizeof(it->cursor));
        if (strcmp(it->cursor, "0") == 0)
            it->finished = 1;
        it->batch = rep;
        it->pos = 0;
    }
}

/* ---- notification marker -------------------------------------------------------------
 * NOTIFIED  KEYS: state   ARGV: event_id
 * -> 1 when the migration is done for this event (marker set, its announce claim cleared),
 *    0 otherwise (nothing set, so a hash replaced by a newer event is never touched). */
static const ferry_redis_script lua_notified = {
    "notified",
    "if redis.call('HGET', KEYS[1], 'status') == 'done' and\n"
    "   redis.call('HGET', KEYS[1], 'event_id') == ARGV[1] then\n"
    "  redis.call('HSET', KEYS[1], 'notified_event', ARGV[1])\n"
    "  if redis.call('HGET', KEYS[1], 'announce_event') == ARGV[1] then\n"
    "    redis.call('HDEL', KEYS[1], 'announce_event', 'announce_owner', 'announce_until')\n"
    "  end\n"
    "  return 1\n"
    "end\n"
    "return 0\n"};

/* Runs a one-key script on the dataset's state hash with one or two arguments. */
static ferry_rc eval_on_state(ferry_redis *r, const ferry_redis_script *script,
                              const char *dataset, const char *a1, const char *a2,
                              ferry_error *err)
{
    keyset k;
    const char *argv[3];
    redisReply *rep = NULL;
    ferry_rc rc;

    if ((rc = make_keys(&k, dataset, err)) != FERRY_OK)
        return rc;
    argv[0] = k.state;
    argv[1] = a1;
    argv[2] = a2;
    rc = ferry_redis_eval(r, script, 1, a2 ? 3 : 2, argv, &rep, err);
    freeReplyObject(rep);
    return rc;
}

ferry_rc ferry_state_notified_set(ferry_redis *r, const char *dataset, const char *event_id,
                                  ferry_error *err)
{
    return eval_on_state(r, &lua_notified, dataset, event_id, NULL, err);
}

/* ANNOUNCE_CLAIM  KEYS: state   ARGV: event_id, owner, ttl_ms
 * -> 0 already announced (notified_event is this event), 2 another owner's unexpired claim
 *    on this event, 1 claimed (recorded, or nothing to guard: the hash belongs to another
 *    event or is gone, so announcing stays at least once). Redis' clock decides expiry, so
 *    workers' clocks need not agree. */
static const ferry_redis_script lua_announce_claim = {
    "announce_claim",
    "if redis.call('HGET', KEYS[1], 'notified_event') == ARGV[1] then return 0 end\n"
    "if redis.call('HGET', KEYS[1], 'event_id') ~= ARGV[1] then return 1 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local c = redis.call('HMGET', KEYS[1], 'announce_event', 'announce_owner', "
    "'announce_until')\n"
    "if c[1] == ARGV[1] and c[2] ~= ARGV[2] and tonumber(c[3] or '0') > now then\n"
    "  return 2\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'announce_event', ARGV[1], 'announce_owner', ARGV[2],\n"
    "           'announce_until', tostring(now + tonumber(ARGV[3])))\n"
    "return 1\n"};

/* ANNOUNCE_RELEASE  KEYS: state   ARGV: event_id, owner  (only the owner's own claim) */
static const ferry_redis_script lua_announce_release = {
    "announce_release",
    "if redis.call('HGET', KEYS[1], 'announce_event') == ARGV[1] and\n"
    "   redis.call('HGET', KEYS[1], 'announce_owner') == ARGV[2] then\n"
    "  redis.call('HDEL', KEYS[1], 'announce_event', 'announce_owner', 'announce_until')\n"
    "  return 1\n"
    "end\n"
    "return 0\n"};

ferry_rc ferry_state_announce_claim(ferry_redis *r, const char *dataset, const char *event_id,
                                    const char *owner, int64_t ttl_ms,
                                    ferry_announce_claim *out, ferry_error *err)
{
    keyset k;
    const char *argv[4];
    char ttl[32];
    redisReply *rep = NULL;
    ferry_rc rc;

    *out = FERRY_ANNOUNCE_HELD;
    if ((rc = make_keys(&k, dataset, err)) != FERRY_OK)
        return rc;
    snprintf(ttl, sizeof(ttl), "%lld", (long long)(ttl_ms > 0 ? ttl_ms : 1));
    argv[0] = k.state;
    argv[1] = event_id;
    argv[2] = owner;
    argv[3] = ttl;
    if ((rc = ferry_redis_eval(r, &lua_announce_claim, 1, 4, argv, &rep, err)) != FERRY_OK)
        return rc;
    if (rep->type != REDIS_REPLY_INTEGER || rep->integer < 0 || rep->integer > 2) {
        freeReplyObject(rep);
        return bad_reply("ANNOUNCE_CLAIM", err);
    }
    *out = rep->integer == 0   ? FERRY_ANNOUNCE_SENT
           : rep->integer == 1 ? FERRY_ANNOUNCE_CLAIMED
                               : FERRY_ANNOUNCE_HELD;
    freeReplyObject(rep);
    return FERRY_OK;
}

ferry_rc ferry_state_announce_release(ferry_redis *r, const char *dataset, const char *event_id,
                                      const char *owner, ferry_error *err)
{
    return eval_on_state(r, &lua_announce_release, dataset, event_id, owner, err);
}

ferry_rc ferry_state_notified_get(ferry_redis *r, const char *dataset, const char *event_id,
                                  int *notified, ferry_error *err)
{
    keyset k;
    const char *argv[3];
    redisReply *rep = NULL;
    ferry_rc rc;

    *notified = 0;
    if ((rc = make_keys(&k, dataset, err)) != FERRY_OK)
        return rc;
    argv[0] = "HGET";
    argv[1] = k.state;
    argv[2] = "notified_event";
    rc = ferry_redis_command(r, 3, argv, NULL, &rep, err);
    if (rc == FERRY_OK && rep->type == REDIS_REPLY_STRING)
        *notified = strcmp(rep->str, event_id) == 0;
    freeReplyObject(rep);
    return rc;
}

/* WEBHOOK  KEYS: state   ARGV: event_id, outcome
 * Records the webhook outcome on the migration of this event only. */
static const ferry_redis_script lua_webhook = {
    "webhook", "if redis.call('HGET', KEYS[1], 'event_id') == ARGV[1] then\n"
               "  redis.call('HSET', KEYS[1], 'webhook', ARGV[2])\n"
               "  return 1\n"
               "end\n"
               "return 0\n"};

ferry_rc ferry_state_report_read(ferry_redis *r, const char *dataset, const char *event_id,
                                 char **out, size_t *len, ferry_error *err)
{
    char key[FERRY_STATE_KEY_MAX + EVENT_ID_MAX + 8];
    const char *argv[2] = {"HVALS", key};
    redisReply *rep = NULL;
    size_t total = 0;
    ferry_rc rc;

    *out = NULL;
    *len = 0;
    if ((rc = ferry_state_report_key(key, sizeof(key), dataset, event_id, err)) != FERRY_OK)
        return rc;
    /* Bounded: the report never holds more than FERRY_STATE_REPORT_MAX entries. */
    if ((rc = ferry_redis_command(r, 2, argv, NULL, &rep, err)) != FERRY_OK)
        return rc;
    if (rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        return bad_reply("HVALS", err);
    }
    for (size_t i = 0; i < rep->elements; i++)
        if (rep->element[i]->type == REDIS_REPLY_STRING)
            total += rep->element[i]->len + 1;
    if (total > 0) {
        if (!(*out = malloc(total + 1))) {
            freeReplyObject(rep);
            return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "out of memory");
        }
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_STRING)
                continue;
            memcpy(*out + *len, e->str, e->len);
            *len += e->len;
            (*out)[(*len)++] = '\n';
        }
        (*out)[*len] = '\0';
    }
    freeReplyObject(rep);
    return FERRY_OK;
}

/* REPORT_OBJECT  KEYS: state   ARGV: event_id, uri (this event's migration only) */
static const ferry_redis_script lua_report_object = {
    "report-object", "if redis.call('HGET', KEYS[1], 'event_id') == ARGV[1] then\n"
                     "  redis.call('HSET', KEYS[1], 'report_object', ARGV[2])\n"
                     "  return 1\n"
                     "end\n"
                     "return 0\n"};

ferry_rc ferry_state_note_report_object(ferry_redis *r, const char *dataset,
                                        const char *event_id, const char *uri, ferry_error *err)
{
    return eval_on_state(r, &lua_report_object, dataset, event_id, uri, err);
}

ferry_rc ferry_state_note_webhook(ferry_redis *r, const char *dataset, const char *event_id,
                                  const char *outcome, ferry_error *err)
{
    return eval_on_state(r, &lua_webhook, dataset, event_id, outcome, err);
}
