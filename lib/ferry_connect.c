#include "ferry_connect.h"

#include <stdio.h>

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
        snprintf(errstr, errstr_size, "redis.url: %s", sub);
        goto out;
    }
    if (pwfile && ferry_redis_conf_read_password_file(&rc, pwfile, sub, sizeof(sub))) {
        snprintf(errstr, errstr_size, "redis.password_file: %s", sub);
        goto out;
    }
    r = ferry_redis_new(&rc, errstr, errstr_size);
out:
    ferry_redis_conf_clear(&rc);
    return r;
}
