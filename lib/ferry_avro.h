/* ferry_avro: the Avro codec for ferry's events (schemas/, DESIGN.md section 3).
 *
 * Wire formats, both accepted by every decode function:
 *   single-object  0xC3 0x01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer
 *                  schema's Parsing Canonical Form | Avro binary body
 *   Confluent      0x00 | 4-byte big-endian Schema Registry id | Avro binary body
 *
 * Evolution: avro-c 1.11.1's schema resolution refuses a reader field the writer lacks, so
 * we never use it. A payload is decoded with the WRITER's own schema (found by fingerprint
 * or registry id), then copied into the C struct by field name; a field the writer lacked
 * takes the default declared in the CURRENT schema (the embedded schemas/<event>.avsc),
 * a field only the writer has is ignored.
 *
 * Untrusted bytes: avro-c does not bound lengths, so every body is first walked against the
 * writer schema by our own validator (ferry_avro_guard.c): varints, lengths, block counts,
 * union/enum indexes, nesting depth, UTF-8 and NUL-free strings, and no trailing bytes.
 * Only then are the bytes handed to avro-c.
 *
 * Errors: every failure is FERRY_ERR_PERMANENT (the same bytes fail the same way again):
 *   FERRY_EC_SCHEMA ("unknown-schema")  wrong magic, unknown fingerprint or registry id,
 *                                       the payload is another event type, a writer schema
 *                                       that cannot be read into the current one;
 *   FERRY_EC_DECODE                     truncated, malformed, oversized or trailing bytes,
 *                                       invalid UTF-8, a string containing NUL, an enum
 *                                       symbol this reader does not know;
 *   FERRY_EC_INVALID_SPEC               encode: the struct cannot be encoded (NULL required
 *                                       string, invalid UTF-8, enum out of range);
 *   FERRY_EC_INTERNAL                   out of memory or an avro-c failure on encode.
 *
 * Threads: a codec holds no global state but is not locked: one thread at a time may use
 * a given codec (create one per thread, or serialise). The free functions
 * (ferry_avro_crc64, ferry_avro_canonical_form, ferry_avro_fingerprint) are thread-safe. */
#ifndef FERRY_AVRO_H
#define FERRY_AVRO_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_error.h"
#include "ferry_event.h"

/* Inputs longer than this are rejected (FERRY_EC_DECODE) before any parsing; encode refuses
 * to produce them too. */
#define FERRY_AVRO_MAX_EVENT_BYTES (1024 * 1024)
/* Most array items + map entries one event may hold (bounds avro-c's allocations: a 1 MiB
 * body of empty strings would otherwise become ~1M heap strings). */
#define FERRY_AVRO_MAX_ITEMS 10000
/* Deepest nesting of records/arrays/maps/unions the validator follows. */
#define FERRY_AVRO_MAX_DEPTH 32

#define FERRY_AVRO_SINGLE_OBJECT_HEADER 10 /* 0xC3 0x01 + 8-byte fingerprint */
#define FERRY_AVRO_CONFLUENT_HEADER 5      /* 0x00 + 4-byte id */

typedef struct ferry_avro_codec ferry_avro_codec;

typedef enum {
    FERRY_AVRO_EVENT_ONBOARD = 0,  /* io.ferry.DatasetOnboard, schemas/dataset_onboard.avsc */
    FERRY_AVRO_EVENT_MIGRATED = 1, /* io.ferry.DatasetMigrated, schemas/dataset_migrated.avsc */
} ferry_avro_event;

typedef enum {
    FERRY_AVRO_SINGLE_OBJECT = 0, /* no schema registry: fingerprint header */
    FERRY_AVRO_CONFLUENT = 1,     /* schema.registry.url set: magic 0 + registry id */
} ferry_avro_framing;

/* Loads every embedded schema (the .avsc files in schemas/) as an accepted writer schema,
 * keyed by the CRC-64-AVRO fingerprint of its Parsing Canonical Form. dataset_onboard.avsc and
 * dataset_migrated.avsc are the CURRENT versions (used to encode, and whose defaults fill
 * fields an older writer lacked); any other embedded file is an older released version.
 * Returns NULL and fills errstr on failure. Free with ferry_avro_codec_destroy(). */
ferry_avro_codec *ferry_avro_codec_new(char *errstr, size_t errstr_size);
void ferry_avro_codec_destroy(ferry_avro_codec *c); /* NULL-safe */

/* Accepts `json` (an older released version of DatasetOnboard or DatasetMigrated) as a
 * writer schema. Refused (FERRY_EC_SCHEMA) if it does not parse, names another record, or
 * cannot be read into the current schema (a current field without default missing, a field
 * of an incompatible type). Adding a schema already known is a no-op. json is copied. */
ferry_rc ferry_avro_codec_add_schema(ferry_avro_codec *c, const char *json, ferry_error *err);

/* Maps Confluent Schema Registry id `id` (>= 0) to the schema `json`, adding the schema as
 * with ferry_avro_codec_add_schema() if it is not yet known. Re-mapping an id to the same
 * schema is a no-op; to a different one is refused (registry ids are immutable). */
ferry_rc ferry_avro_codec_register_id(ferry_avro_codec *c, int32_t id, const char *json,
                                      ferry_error *err);

/* The current schema's JSON text (what a producer registers with the Schema Registry) and
 * its fingerprint. Borrowed: valid until the codec is destroyed. */
const char *ferry_avro_codec_schema_json(const ferry_avro_codec *c, ferry_avro_event ev);
uint64_t ferry_avro_codec_fingerprint(const ferry_avro_codec *c, ferry_avro_event ev);

/* Encode with the CURRENT schema. On success *out is malloc'd (caller frees) and *out_len
 * set; on failure *out is NULL. For FERRY_AVRO_CONFLUENT, `id` must have been mapped to the
 * current schema with ferry_avro_codec_register_id() (else FERRY_EC_SCHEMA); `id` is
 * ignored for FERRY_AVRO_SINGLE_OBJECT. The event is only read. */
ferry_rc ferry_avro_encode_onboard(ferry_avro_codec *c, const ferry_onboard *ev,
                                   ferry_avro_framing f, int32_t id, void **out,
                                   size_t *out_len, ferry_error *err);
ferry_rc ferry_avro_encode_migrated(ferry_avro_codec *c, const ferry_migrated *ev,
                                    ferry_avro_framing f, int32_t id, void **out,
                                    size_t *out_len, ferry_error *err);

/* Decode either framing. *out is overwritten without being freed first (pass a zeroed or
 * cleared struct). On success the caller owns its strings: free with ferry_onboard_clear()
 * / ferry_migrated_clear(). On failure *out is left zeroed. buf is only read, and may be
 * freed once the call returns. Only the checks that keep later code safe are made here
 * (well-formed Avro, UTF-8, no NUL); dataset names, URIs etc. are validated elsewhere. */
ferry_rc ferry_avro_decode_onboard(ferry_avro_codec *c, const void *buf, size_t len,
                                   ferry_onboard *out, ferry_error *err);
ferry_rc ferry_avro_decode_migrated(ferry_avro_codec *c, const void *buf, size_t len,
                                    ferry_migrated *out, ferry_error *err);

/* Which event a payload claims to be, from its header alone (the body is not checked):
 * for routing, e.g. by the DLQ replayer. FERRY_EC_SCHEMA if the header names no known
 * schema of ours, FERRY_EC_DECODE if it is truncated or oversized. */
ferry_rc ferry_avro_peek(ferry_avro_codec *c, const void *buf, size_t len,
                         ferry_avro_event *kind, ferry_error *err);

/* CRC-64-AVRO (the Avro spec's 64-bit Rabin fingerprint); ferry_avro_crc64("", 0) is
 * 0xc15d213aa4d7a795. */
uint64_t ferry_avro_crc64(const void *buf, size_t len);

/* Parsing Canonical Form of a schema (Avro spec, "Transforming into Parsing Canonical
 * Form"): full names, only name/type/fields/symbols/items/values/size, in that order, no
 * whitespace. Returns a malloc'd string (caller frees), or NULL and FERRY_EC_SCHEMA if the
 * JSON is not a schema (also: undefined name, duplicate field or symbol). */
char *ferry_avro_canonical_form(const char *json, ferry_error *err);

/* *out = ferry_avro_crc64() of ferry_avro_canonical_form(json). */
ferry_rc ferry_avro_fingerprint(const char *json, uint64_t *out, ferry_error *err);

#endif
