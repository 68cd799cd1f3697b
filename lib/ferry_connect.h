/* ferry_connect: builds service handles from a ferry_conf, so every program reads the
 * same settings the same way (URL, password file, credentials, timeouts). */
#ifndef FERRY_CONNECT_H
#define FERRY_CONNECT_H

#include <stddef.h>

#include "ferry_conf.h"
#include "ferry_redis.h"

/* redis.url, redis.password_file. Does not connect yet (see ferry_redis_new). */
ferry_redis *ferry_connect_redis(const ferry_conf *conf, char *errstr, size_t errstr_size);
/* The same with other timeouts (> 0), e.g. short ones for a readiness probe. */
ferry_redis *ferry_connect_redis_timeouts(const ferry_conf *conf, int connect_timeout_ms,
                                          int command_timeout_ms, char *errstr,
                                          size_t errstr_size);
/* PINGs (connecting if needed). 0, or -1 + errstr "cannot reach Redis at ADDR: <cause>". */
int ferry_connect_redis_reachable(ferry_redis *r, char *errstr, size_t errstr_size);
/* For one-shot commands: connects within timeout_ms (> 0) and PINGs. NULL + errstr
 * "cannot reach Redis at ADDR: <cause>" (or the configuration error) on failure. */
ferry_redis *ferry_connect_redis_check(const ferry_conf *conf, int timeout_ms, char *errstr,
                                       size_t errstr_size);

#endif
