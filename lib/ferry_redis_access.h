/* ferry_redis_access: does the configured Redis user may run every command ferry needs?
 * Checked at startup, so that an ACL that is too narrow is one clear error naming the
 * missing command, instead of every event failing inside a Lua script (where Redis does
 * not say which command was refused). */
#ifndef FERRY_REDIS_ACCESS_H
#define FERRY_REDIS_ACCESS_H

#include "ferry_error.h"
#include "ferry_redis.h"

/* Runs each command ferry uses (directly or from its scripts) once on scratch keys under
 * ferry:{ferry-access-check}: (deleted again). FERRY_OK, or a FERRY_EC_CONFIG error such as
 * "redis user lacks a command ferry needs: HSET: NOPERM ... 'hset' ...". */
ferry_rc ferry_redis_check_access(ferry_redis *r, ferry_error *err);

#endif
