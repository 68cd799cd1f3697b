#include "ferry_redis_access.h"

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

/* Every command ferry sends, directly or via redis.call in its scripts (keep in step with
 * the scripts: grep "redis.call('"). SCAN takes no key, so an ACL cannot limit it by key. */
#define K "ferry:{ferry-access-check}:"
static const char *const probes[][8] = {
    {"SET", K "s", "1", "PX", "60000"},
    {"GET", K "s"},
    {"MGET", K "s"},
    {"PTTL", K "s"},
    {"PEXPIRE", K "s", "60000"},
    {"INCR", K "n"},
    {"HSET", K "h", "f", "1"},
    {"HSETNX", K "h", "g", "1"},
    {"HGET", K "h", "f"},
    {"HMGET", K "h", "f", "g"},
    {"HGETALL", K "h"},
    {"HINCRBY", K "h", "c", "1"},
    {"HDEL", K "h", "g"},
    {"SADD", K "t", "m"},
    {"SCARD", K "t"},
    {"TIME"},
    {"SCAN", "0", "MATCH", K "*", "COUNT", "10"},
    {"EVAL", "return 1", "0"},
    {"SCRIPT", "LOAD", "return 1"},
    {"DEL", K "s", K "n", K "h", K "t"},
};
#undef K

ferry_rc ferry_redis_check_access(ferry_redis *r, ferry_error *err)
{
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        const char *argv[8];
        int argc = 0;
        redisReply *rep = NULL;
        ferry_error sub = {0};
        ferry_rc rc;

        while (argc < 8 && probes[i][argc]) {
            argv[argc] = probes[i][argc];
            argc++;
        }
        rc = ferry_redis_command(r, argc, argv, NULL, &rep, &sub);
        freeReplyObject(rep);
        if (rc == FERRY_OK)
            continue;
        if (strstr(sub.msg, "NOPERM"))
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                                   "the Redis user lacks a command ferry needs (%s): %s",
                                   probes[i][0], sub.msg);
        return ferry_error_set(err, rc, sub.cls[0] ? sub.cls : FERRY_EC_REDIS, "%s", sub.msg);
    }
    return FERRY_OK;
}
