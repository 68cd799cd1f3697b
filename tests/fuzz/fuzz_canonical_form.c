/* Fuzz target: Avro schema JSON -- ferry_avro_canonical_form (jansson) and, for what it
 * accepts, avro-c's schema parser through ferry_avro_codec_add_schema. Writer schemas
 * come from a Schema Registry (Confluent framing), so they are untrusted too.
 * Invariants: the canonical form is itself a schema, and a fixed point (canonicalising it
 * again yields the same text, so fingerprints are stable) -- except where the spec makes
 * that impossible: a type declaring the null namespace ("namespace": "") inside a named
 * namespace is written with its bare name, which then reads back into the enclosing
 * namespace (a limit of the spec's Parsing Canonical Form, which we must follow for
 * fingerprints to match other producers'); ferry_avro_fingerprint agrees with it;
 * failures carry class unknown-schema and a message. */
#include "fuzz.h"

#include "ferry_avro.h"

#include <jansson.h>

/* Whether any object in the JSON has "namespace": "". */
static int has_null_namespace(const json_t *j, int depth)
{
    const char *key;
    json_t *v;
    size_t i;

    if (depth > 200)
        return 1; /* don't care: deeper than any schema we check */
    if (json_is_array(j)) {
        json_array_foreach(j, i, v)
        {
            if (has_null_namespace(v, depth + 1))
                return 1;
        }
    } else if (json_is_object(j)) {
        json_object_foreach((json_t *)j, key, v)
        {
            if (strcmp(key, "namespace") == 0 && json_is_string(v) && !*json_string_value(v))
                return 1;
            if (has_null_namespace(v, depth + 1))
                return 1;
        }
    }
    return 0;
}

static int spec_allows_drift(const char *json)
{
    json_t *root = json_loads(json, JSON_DECODE_ANY, NULL);
    int r = !root || has_null_namespace(root, 0);
    json_decref(root);
    return r;
}

static ferry_avro_codec *codec;

static ferry_avro_codec *get_codec(void)
{
    char errstr[512];

    if (!codec) {
        codec = ferry_avro_codec_new(errstr, sizeof(errstr));
        if (!codec) {
            fprintf(stderr, "fuzz_canonical_form: codec: %s\n", errstr);
            abort();
        }
    }
    return codec;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = fuzz_cstr(data, size);
    ferry_error err;
    uint64_t fp = 0;
    char *cf, *again;
    ferry_avro_codec *c;

    cf = ferry_avro_canonical_form(json, &err);
    if (!cf) {
        FUZZ_ASSERT(err.rc == FERRY_ERR_PERMANENT && err.msg[0]);
        FUZZ_ASSERT(strcmp(err.cls, FERRY_EC_SCHEMA) == 0 ||
                    strcmp(err.cls, FERRY_EC_INTERNAL) == 0);
        FUZZ_ASSERT(ferry_avro_fingerprint(json, &fp, &err) == FERRY_ERR_PERMANENT);
        goto out;
    }
    FUZZ_ASSERT(ferry_avro_fingerprint(json, &fp, &err) == FERRY_OK);
    FUZZ_ASSERT(fp == ferry_avro_crc64(cf, strlen(cf)));
    again = ferry_avro_canonical_form(cf, &err);
    if (!again || (strcmp(again, cf) != 0 && !spec_allows_drift(json))) {
        fprintf(stderr, "fuzz_canonical_form: not a fixed point:\n  %s\n  -> %s\n", cf,
                again ? again : err.msg);
        abort();
    }
    free(again);

    /* avro-c parses what we accepted. A schema the codec takes changes its state: start
     * over with a fresh codec so that every input sees the same one. */
    c = get_codec();
    if (ferry_avro_codec_add_schema(c, json, &err) == FERRY_OK) {
        ferry_avro_codec_destroy(codec);
        codec = NULL;
    } else {
        FUZZ_ASSERT(err.rc == FERRY_ERR_PERMANENT && err.msg[0]);
    }
out:
    free(cf);
    free(json);
    return 0;
}
