#include "ferry_connect.h"

#include <stdio.h>
#include <string.h>

ferry_redis *ferry_connect_redis(const ferry_conf *conf, char *errstr, size_t errstr_size)
{
    return ferry_connect_redis_timeouts(conf, 0, 0, errstr, errstr_size);
}

ferry_redis *ferry_connect_redis_timeouts(const ferry_conf *conf, int connect_timeout_ms,
                                          int command_timeout_ms, char *errstr,
                                          size_t errstr_size)
{
    ferry_redis_conf rc;
    ferry_redis *r = NULL;
    const char *pwfile = ferry_conf_str(conf, "redis.password_file");
    char sub[256];

    ferry_redis_conf_init(&rc);
    if (connect_timeout_ms > 0) /* 0: keep the defaults */
        rc.connect_timeout_ms = connect_timeout_ms;
    if (command_timeout_ms > 0)
        rc.command_timeout_ms = command_timeout_ms;
    if (ferry_redis_conf_parse_url(&rc, ferry_conf_str(conf, "redis.url"), sub, sizeof(sub))) {
        snprintf(errstr, errstr_size, "%s", sub); /* "redis URL ..." */
        goto out;
    }
    if (pwfile && ferry_redis_conf_read_password_file(&rc, pwfile, sub, sizeof(sub))) {
        snprintf(errstr, errstr_size, "%s", sub); /* "redis password file ..." */
        goto out;
    }
    r = ferry_redis_new(&rc, errstr, errstr_size);
out:
    ferry_redis_conf_clear(&rc);
    return r;
}

int ferry_connect_redis_reachable(ferry_redis *r, char *errstr, size_t errstr_size)
{
    ferry_error err = {0};
    const char *cause;
    char prefix[160];

    if (ferry_redis_ping(r, &err) == FERRY_OK)
        return 0;
    /* "redis ADDR: connect: Connection refused": the address is said once, up front */
    snprintf(prefix, sizeof(prefix), "redis %s: ", ferry_redis_describe(r));
    cause = strncmp(err.msg, prefix, strlen(prefix)) ? err.msg : err.msg + strlen(prefix);
    /* reachable but refusing us (AUTH, SELECT) is a different problem to fix */
    snprintf(errstr, errstr_size, "cannot %s Redis at %s: %s",
             strcmp(err.cls, FERRY_EC_CONFIG) ? "reach" : "use", ferry_redis_describe(r),
             cause);
    return -1;
}

ferry_redis *ferry_connect_redis_check(const ferry_conf *conf, int timeout_ms, char *errstr,
                                       size_t errstr_size)
{
    ferry_redis *r = ferry_connect_redis_timeouts(conf, timeout_ms, 0, errstr, errstr_size);

    if (r && ferry_connect_redis_reachable(r, errstr, errstr_size) != 0) {
        ferry_redis_destroy(r);
        return NULL;
    }
    return r;
}
