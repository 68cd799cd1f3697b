/* ferry_avro_internal: shared between the ferry_avro*.c files only; not part of the API. */
#ifndef FERRY_AVRO_INTERNAL_H
#define FERRY_AVRO_INTERNAL_H

#include <avro.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry_error.h"

/* name + enclosing namespace -> malloc'd full name (Avro spec: a name containing a dot is
 * already full; an empty namespace is none). NULL on out of memory. */
char *ferry_avro_full_name(const char *name, const char *ns);

/* 1 if buf[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF) and
 * contains no NUL byte; 0 otherwise. */
int ferry_avro_utf8_ok(const void *buf, size_t len);

/* Walks an Avro binary body against `writer` without allocating, and fails
 * (FERRY_ERR_PERMANENT, FERRY_EC_DECODE) unless it is one complete, well-formed datum that
 * avro-c can read safely: see ferry_avro.h. `writer` is borrowed. */
ferry_rc ferry_avro_guard_check(avro_schema_t writer, const void *body, size_t len,
                                ferry_error *err);

#endif
