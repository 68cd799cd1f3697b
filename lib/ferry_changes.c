#include "ferry_changes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "ferry_log.h"
#include "ferry_state.h"
#include "ferry_util.h"

/* ---- pure helpers ---------------------------------------------------------------- */

void ferry_changes_spec_hash(const ferry_onboard *ev, char out[FERRY_CHANGES_HASH_LEN + 1])
{
    char spec[17];
    uint64_t h = FERRY_FNV1A64_INIT, n;
    const char *ds = ev->dataset ? ev->dataset : "";

    ferry_state_spec_hash(ev, spec);
    h = ferry_fnv1a64(h, "ferry-change-v1", 15);
    n = strlen(ds);
    h = ferry_fnv1a64(h, &n, sizeof(n)); /* length-prefixed: no ambiguity between fields */
    h = ferry_fnv1a64(h, ds, n);
    h = ferry_fnv1a64(h, spec, 16);
    snprintf(out, FERRY_CHANGES_HASH_LEN + 1, "%016" PRIx64, h);
}

void ferry_changes_event_id(const char *source, const char *ref, const char *hash, int64_t gen,
                            char out[37])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    char in[FERRY_CHANGES_REF_MAX + 128];
    int n;

    /* NUL-separated fields: no two different inputs give the same bytes (a ref is at
     * most FERRY_CHANGES_REF_MAX bytes; ferry_changes_check refuses longer ones). */
    n = snprintf(in, sizeof(in), "ferry-event-id-v1%c%s%c%s%c%s%c%" PRId64, 0, source, 0, ref,
                 0, hash, 0, gen);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(in))
        n = (int)sizeof(in) - 1;
    SHA256((const unsigned char *)in, (size_t)n, d);
    d[6] = (unsigned char)((d[6] & 0x0f) | 0x80); /* version 8: custom (RFC 9562) */
    d[8] = (unsigned char)((d[8] & 0x3f) | 0x80); /* variant 10 */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12],
             d[13], d[14], d[15]);
}

/* ---- the in-memory cache --------------------------------------------------------- */

typedef struct entry {
    struct entry *next;
    char *ref;
    char hash[FERRY_CHANGES_HASH_LEN + 1];    /* last published, "" = not known */
    char invalid[FERRY_CHANGES_HASH_LEN + 1]; /* last version reported invalid */
    int64_t gen;
    uint64_t round; /* last round it was checked in */
    char *pending;  /* record not yet written to Redis */
} entry;

struct ferry_changes {
    char source[33];
    char key[64];
    entry **buckets;
    size_t n_buckets, count;
    uint64_t round;
};

static uint64_t hash_ref(const char *s)
{
    return ferry_fnv1a64(FERRY_FNV1A64_INIT, s, strlen(s));
}

static entry *lookup(ferry_changes *c, const char *ref)
{
    for (entry *e = c->buckets[hash_ref(ref) & (c->n_buckets - 1)]; e; e = e->next)
        if (strcmp(e->ref, ref) == 0)
            return e;
    return NULL;
}

static void grow(ferry_changes *c)
{
    size_t nb = c->n_buckets * 2;
    entry **b = calloc(nb, sizeof(*b));
    if (!b)
        return; /* keep the longer chains */
    for (size_t i = 0; i < c->n_buckets; i++)
        for (entry *e = c->buckets[i], *next; e; e = next) {
            next = e->next;
            size_t k = hash_ref(e->ref) & (nb - 1);
            e->next = b[k];
            b[k] = e;
        }
    free(c->buckets);
    c->buckets = b;
    c->n_buckets = nb;
}

static entry *get_or_add(ferry_changes *c, const char *ref)
{
    entry *e = lookup(c, ref);
    size_t k;

    if (e)
        return e;
    if (!(e = calloc(1, sizeof(*e))) || !(e->ref = strdup(ref))) {
        free(e);
        return NULL;
    }
    if (c->count + 1 > c->n_buckets * 2)
        grow(c);
    k = hash_ref(ref) & (c->n_buckets - 1);
    e->next = c->buckets[k];
    c->buckets[k] = e;
    c->count++;
    return e;
}

static void free_entry(entry *e)
{
    free(e->ref);
    free(e->pending);
    free(e);
}

ferry_changes *ferry_changes_new(const char *source, char *errstr, size_t errstr_size)
{
    ferry_changes *c;
    size_t n = source ? strlen(source) : 0;

    if (n == 0 || n > 32 || strspn(source, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n) {
        snprintf(errstr, errstr_size, "change source name must be [a-z0-9._-]{1,32}");
        return NULL;
    }
    if (!(c = calloc(1, sizeof(*c))) || !(c->buckets = calloc(256, sizeof(*c->buckets)))) {
        free(c);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->n_buckets = 256;
    memcpy(c->source, source, n + 1);
    snprintf(c->key, sizeof(c->key), "ferry:changes:{%s}:published", source);
    return c;
}

void ferry_changes_destroy(ferry_changes *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_buckets; i++)
        for (entry *e = c->buckets[i], *next; e; e = next) {
            next = e->next;
            free_entry(e);
        }
    free(c->buckets);
    free(c);
}

/* ---- check / record -------------------------------------------------------------- */

static ferry_rc write_record(ferry_changes *c, ferry_redis *r, const char *ref,
                             const char *json, ferry_error *err)
{
    const char *argv[] = {"HSET", c->key, ref, json};
    redisReply *reply = NULL;
    ferry_rc rc = ferry_redis_command(r, 4, argv, NULL, &reply, err);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

ferry_rc ferry_changes_check(ferry_changes *c, ferry_redis *r, const char *ref,
                             const char *hash, ferry_change *out, ferry_error *err)
{
    const char *argv[] = {"HGET", c->key, ref};
    redisReply *reply = NULL;
    entry *e;
    ferry_rc rc;

    memset(out, 0, sizeof(*out));
    if (!ref || !*ref || strlen(ref) > FERRY_CHANGES_REF_MAX ||
        strlen(hash) != FERRY_CHANGES_HASH_LEN)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "entity ref empty or longer than %d bytes, or bad hash",
                               FERRY_CHANGES_REF_MAX);
    memcpy(out->hash, hash, FERRY_CHANGES_HASH_LEN + 1);
    if (!(e = get_or_add(c, ref)))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    e->round = c->round;

    if (e->hash[0] && strcmp(e->hash, hash) == 0) {
        out->gen = e->gen;
        memcpy(out->prev_hash, e->hash, sizeof(out->prev_hash));
        if (e->pending) { /* published, but Redis did not take the record: try again */
            ferry_error werr = {0};
            if (write_record(c, r, ref, e->pending, &werr) == FERRY_OK) {
                free(e->pending);
                e->pending = NULL;
                ferry_info(NULL, "changes: recorded %s for %s (after an earlier failure)", hash,
                           ref);
            } else {
                ferry_debug(NULL, "changes: still cannot record %s: %s", ref, werr.msg);
            }
        }
        return FERRY_OK; /* publish = 0 */
    }

    /* Not known in memory (restart) or changed: Redis has the truth. */
    if ((rc = ferry_redis_command(r, 3, argv, NULL, &reply, err)) != FERRY_OK)
        return rc;
    if (reply->type == REDIS_REPLY_STRING) {
        json_t *rec = json_loadb(reply->str, reply->len, 0, NULL);
        const char *h = json_string_value(json_object_get(rec, "hash"));
        json_int_t g = json_integer_value(json_object_get(rec, "gen"));
        if (h && strlen(h) == FERRY_CHANGES_HASH_LEN && g > 0) {
            memcpy(out->prev_hash, h, FERRY_CHANGES_HASH_LEN + 1);
            out->gen = g;
        } else {
            ferry_warn(NULL, "changes: unreadable record for %s in %s; treating it as new", ref,
                       c->key);
        }
        json_decref(rec);
    }
    freeReplyObject(reply);

    if (out->prev_hash[0] && strcmp(out->prev_hash, hash) == 0) {
        memcpy(e->hash, hash, sizeof(e->hash)); /* published before this process started */
        e->gen = out->gen;
        return FERRY_OK;
    }
    out->gen++;
    out->publish = 1;
    ferry_changes_event_id(c->source, ref, hash, out->gen, out->event_id);
    return FERRY_OK;
}

ferry_rc ferry_changes_record(ferry_changes *c, ferry_redis *r, const char *ref,
                              const ferry_change *ch, const char *dataset, const char *uid,
                              const char *etag, ferry_error *err)
{
    entry *e = get_or_add(c, ref);
    json_t *rec;
    char *text;
    ferry_rc rc;

    if (!e)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    rec = json_pack("{s:s,s:I,s:s,s:s?,s:s?,s:s?,s:I}", "hash", ch->hash, "gen",
                    (json_int_t)ch->gen, "event_id", ch->event_id, "dataset", dataset, "uid",
                    uid, "etag", etag, "at", (json_int_t)ferry_now_ms());
    text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    /* Whatever Redis says: this hash is published, so do not publish it again. */
    memcpy(e->hash, ch->hash, sizeof(e->hash));
    e->gen = ch->gen;
    e->round = c->round;
    free(e->pending);
    e->pending = NULL;
    rc = write_record(c, r, ref, text, err);
    if (rc != FERRY_OK)
        e->pending = text; /* retried by the next check */
    else
        free(text);
    return rc;
}

void ferry_changes_begin_round(ferry_changes *c) { c->round++; }

size_t ferry_changes_end_round(ferry_changes *c, ferry_changes_removed_cb removed, void *opaque)
{
    size_t n = 0;

    for (size_t i = 0; i < c->n_buckets; i++) {
        entry **pp = &c->buckets[i];
        while (*pp) {
            entry *e = *pp;
            if (e->round == c->round || e->pending) { /* a pending record stays */
                pp = &e->next;
                continue;
            }
            if (removed)
                removed(e->ref, opaque);
            *pp = e->next;
            free_entry(e);
            c->count--;
            n++;
        }
    }
    return n;
}

int ferry_changes_note_invalid(ferry_changes *c, const char *ref, const char *hash)
{
    entry *e = get_or_add(c, ref);

    if (!e)
        return 1;
    e->round = c->round;
    if (strcmp(e->invalid, hash) == 0)
        return 0;
    snprintf(e->invalid, sizeof(e->invalid), "%s", hash);
    return 1;
}

/* ---- event-id dedupe ------------------------------------------------------------- */

#define INFLIGHT "inflight"

static ferry_rc dedupe_key(char *buf, size_t size, const char *event_id, ferry_error *err)
{
    if ((size_t)snprintf(buf, size, "ferry:changes:event:{%s}", event_id) >= size ||
        strpbrk(event_id, "{}"))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "event id unusable as a key");
    return FERRY_OK;
}

ferry_rc ferry_changes_dedupe_claim(ferry_redis *r, const char *event_id, int64_t inflight_ms,
                                    ferry_dedupe_state *state, char **receipt, ferry_error *err)
{
    char key[128], px[24];
    redisReply *reply = NULL;
    ferry_rc rc;

    *receipt = NULL;
    if ((rc = dedupe_key(key, sizeof(key), event_id, err)) != FERRY_OK)
        return rc;
    snprintf(px, sizeof(px), "%" PRId64, inflight_ms > 0 ? inflight_ms : 60000);
    for (int attempt = 0; attempt < 3; attempt++) {
        const char *set[] = {"SET", key, INFLIGHT, "NX", "PX", px};
        const char *get[] = {"GET", key};
        if ((rc = ferry_redis_command(r, 6, set, NULL, &reply, err)) != FERRY_OK)
            return rc;
        int claimed = reply->type == REDIS_REPLY_STATUS;
        freeReplyObject(reply);
        if (claimed) {
            *state = FERRY_DEDUPE_NEW;
            return FERRY_OK;
        }
        if ((rc = ferry_redis_command(r, 2, get, NULL, &reply, err)) != FERRY_OK)
            return rc;
        if (reply->type == REDIS_REPLY_STRING) {
            if (reply->len == strlen(INFLIGHT) &&
                memcmp(reply->str, INFLIGHT, reply->len) == 0) {
                *state = FERRY_DEDUPE_INFLIGHT;
            } else {
                *state = FERRY_DEDUPE_DONE;
                *receipt = strndup(reply->str, reply->len);
            }
            freeReplyObject(reply);
            if (*state == FERRY_DEDUPE_DONE && !*receipt)
                return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                       "out of memory");
            return FERRY_OK;
        }
        freeReplyObject(reply); /* expired between SET and GET: claim again */
    }
    return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_REDIS,
                           "event id claim kept expiring");
}

ferry_rc ferry_changes_dedupe_commit(ferry_redis *r, const char *event_id, const char *receipt,
                                     int64_t ttl_s, ferry_error *err)
{
    char key[128], ex[24];
    const char *argv[] = {"SET", key, receipt, "EX", ex};
    redisReply *reply = NULL;
    ferry_rc rc;

    if ((rc = dedupe_key(key, sizeof(key), event_id, err)) != FERRY_OK)
        return rc;
    snprintf(ex, sizeof(ex), "%" PRId64, ttl_s > 0 ? ttl_s : 86400);
    rc = ferry_redis_command(r, 5, argv, NULL, &reply, err);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

ferry_rc ferry_changes_dedupe_release(ferry_redis *r, const char *event_id, ferry_error *err)
{
    static const ferry_redis_script release = {
        "dedupe-release",
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
        "return 0"};
    char key[128];
    const char *argv[] = {key, INFLIGHT};
    redisReply *reply = NULL;
    ferry_rc rc;

    if ((rc = dedupe_key(key, sizeof(key), event_id, err)) != FERRY_OK)
        return rc;
    rc = ferry_redis_eval(r, &release, 1, 2, argv, &reply, err);
    if (reply)
        freeReplyObject(reply);
    return rc;
}
