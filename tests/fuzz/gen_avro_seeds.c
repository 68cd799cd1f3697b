/* Writes the seed corpus of fuzz_avro: for every writer of fuzz_avro_schemas.h, a "full"
 * event (plausible values, non-empty arrays and maps, unions on their non-null branch)
 * and a "min" one (null branches, empty arrays and maps), each in both framings:
 *
 *   build/tests/fuzz/fuzz_gen_avro_seeds tests/fuzz/corpus/avro
 *
 * Values are filled generically from the schema with avro-c, so a new writer needs no
 * code here. Every seed is decoded back with the same codec fuzz_avro uses; the program
 * fails if one does not decode. Rerun it when the schemas change. */
#include "fuzz_avro_schemas.h"

#include "ferry_avro.h"

#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *hint_value(const char *field)
{
    static const struct {
        const char *field, *value;
    } hints[] = {
        {"event_id", "0b8a7e1c-1f2d-4c3b-9a8e-5d6c7b8a9f01"},
        {"dataset", "sales.orders"},
        {"source_uri", "s3://legacy-bucket/sales/orders/"},
        {"target_uri", "s3://lake/sales/orders/"},
        {"requested_by", "alice@example.com"},
        {"worker", "worker-1@host-a"},
        {"catalog_ref", "component:default/sales-orders"},
        {"catalog_etag", "\"9b2cf535f27731c974343645a3985328\""},
        {"include_prefixes", "2024/"},
        {"exclude_prefixes", "2024/tmp/"},
        {"chunk_parent_event_id", "5f0c2a9e-7b1d-4e8f-a3c6-1d2e3f405162"},
        {"chunk_start_after", "sales/orders/2024/part-0499.parquet"},
        {"chunk_end_key", "sales/orders/2024/part-0999.parquet"},
        {"source_inventory",
         "s3://inventory/legacy-bucket/all/2026-01-01T01-00Z/manifest.json"},
    };
    for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
        if (field && strcmp(field, hints[i].field) == 0)
            return hints[i].value;
    return "x";
}

static int fill(avro_value_t *v, const char *field, int full, int depth)
{
    avro_value_t child;
    const char *name;
    size_t n;

    switch (avro_value_get_type(v)) {
    case AVRO_NULL: return avro_value_set_null(v);
    case AVRO_BOOLEAN: return avro_value_set_boolean(v, full);
    case AVRO_INT32: return avro_value_set_int(v, full ? 42 : 0);
    case AVRO_INT64:
        if (field && strcmp(field, "chunk_index") == 0)
            return avro_value_set_long(v, full ? 3 : 0);
        if (field && strcmp(field, "chunk_count") == 0)
            return avro_value_set_long(v, full ? 8 : 0);
        return avro_value_set_long(v, full ? 1767225600000LL : 0);
    case AVRO_FLOAT: return avro_value_set_float(v, 1.5f);
    case AVRO_DOUBLE: return avro_value_set_double(v, -2.25);
    case AVRO_STRING: return avro_value_set_string(v, hint_value(field));
    case AVRO_BYTES: {
        char b[] = {1, 2, 3};
        return avro_value_set_bytes(v, b, full ? sizeof(b) : 0);
    }
    case AVRO_FIXED: {
        char b[64];
        avro_schema_t s = avro_value_get_schema(v);
        memset(b, 0xAB, sizeof(b));
        return avro_value_set_fixed(v, b, (size_t)avro_schema_fixed_size(s));
    }
    case AVRO_ENUM: return avro_value_set_enum(v, 0);
    case AVRO_UNION: {
        avro_schema_t s = avro_value_get_schema(v);
        /* "min" takes null branches, except for fields the reader requires. */
        int want_null = full ? depth >= 4
                             : strcmp(hint_value(field), "x") == 0 ||
                                   strncmp(field, "catalog_", 8) == 0 ||
                                   strncmp(field, "chunk_", 6) == 0 ||
                                   strcmp(field, "source_inventory") == 0;
        int pick = -1;
        for (size_t i = 0; i < avro_schema_union_size(s); i++) {
            int is_null = is_avro_null(avro_schema_union_branch(s, (int)i));
            if (is_null == want_null) {
                pick = (int)i;
                break;
            }
        }
        if (pick < 0)
            pick = 0;
        if (avro_value_set_branch(v, pick, &child) != 0)
            return -1;
        return fill(&child, field, full, depth + 1);
    }
    case AVRO_RECORD:
        if (avro_value_get_size(v, &n) != 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (avro_value_get_by_index(v, i, &child, &name) != 0 ||
                fill(&child, name, full, depth + 1) != 0)
                return -1;
        }
        return 0;
    case AVRO_ARRAY:
        for (int i = 0; full && i < 2; i++) {
            if (avro_value_append(v, &child, NULL) != 0 || fill(&child, field, full, depth + 1))
                return -1;
        }
        return 0;
    case AVRO_MAP:
        for (int i = 0; full && i < 2; i++) {
            if (avro_value_add(v, i ? "team" : "tier", &child, NULL, NULL) != 0 ||
                fill(&child, field, full, depth + 1))
                return -1;
        }
        return 0;
    default: return -1;
    }
}

static int write_seed(const char *dir, const char *name, const char *variant,
                      const char *framing, const unsigned char *hdr, size_t hlen,
                      const char *body, size_t blen, ferry_avro_codec *codec,
                      ferry_avro_event kind)
{
    char path[4096];
    unsigned char *buf = malloc(hlen + blen);
    ferry_error err;
    ferry_rc rc;
    FILE *fp;

    if (!buf)
        return -1;
    memcpy(buf, hdr, hlen);
    memcpy(buf + hlen, body, blen);
    if (kind == FERRY_AVRO_EVENT_ONBOARD) {
        ferry_onboard ev;
        memset(&ev, 0, sizeof(ev));
        rc = ferry_avro_decode_onboard(codec, buf, hlen + blen, &ev, &err);
        ferry_onboard_clear(&ev);
    } else {
        ferry_migrated ev;
        memset(&ev, 0, sizeof(ev));
        rc = ferry_avro_decode_migrated(codec, buf, hlen + blen, &ev, &err);
        ferry_migrated_clear(&ev);
    }
    if (rc != FERRY_OK) {
        fprintf(stderr, "gen_avro_seeds: %s-%s-%s does not decode: %s\n", name, variant,
                framing, err.msg);
        free(buf);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s-%s-%s.bin", dir, name, variant, framing);
    fp = fopen(path, "wb");
    if (!fp || fwrite(buf, 1, hlen + blen, fp) != hlen + blen || fclose(fp) != 0) {
        fprintf(stderr, "gen_avro_seeds: cannot write %s\n", path);
        free(buf);
        return -1;
    }
    free(buf);
    printf("%s (%zu bytes)\n", path, hlen + blen);
    return 0;
}

static int gen(const char *dir, ferry_avro_codec *codec, const fuzz_avro_writer *w, int full)
{
    const char *json = w->json ? w->json : ferry_avro_codec_schema_json(codec, w->kind);
    avro_schema_t schema = NULL;
    avro_value_iface_t *iface = NULL;
    avro_value_t v;
    avro_writer_t aw = NULL;
    char *body = NULL;
    size_t size = 0;
    unsigned char hdr[FERRY_AVRO_SINGLE_OBJECT_HEADER];
    uint64_t fp;
    ferry_error err;
    int rc = -1, have_v = 0;

    if (avro_schema_from_json_length(json, strlen(json), &schema) != 0 ||
        !(iface = avro_generic_class_from_schema(schema)) ||
        avro_generic_value_new(iface, &v) != 0) {
        fprintf(stderr, "gen_avro_seeds: %s: %s\n", w->name, avro_strerror());
        goto out;
    }
    have_v = 1;
    if (fill(&v, NULL, full, 0) != 0 || avro_value_sizeof(&v, &size) != 0 ||
        !(body = malloc(size ? size : 1)) || !(aw = avro_writer_memory(body, (int64_t)size)) ||
        avro_value_write(aw, &v) != 0) {
        fprintf(stderr, "gen_avro_seeds: %s: cannot encode: %s\n", w->name, avro_strerror());
        goto out;
    }
    hdr[0] = 0x00;
    for (int i = 0; i < 4; i++)
        hdr[1 + i] = (unsigned char)((uint32_t)w->id >> (24 - 8 * i));
    if (write_seed(dir, w->name, full ? "full" : "min", "confluent", hdr,
                   FERRY_AVRO_CONFLUENT_HEADER, body, size, codec, w->kind) != 0)
        goto out;
    if (ferry_avro_fingerprint(json, &fp, &err) != FERRY_OK) {
        fprintf(stderr, "gen_avro_seeds: %s: %s\n", w->name, err.msg);
        goto out;
    }
    hdr[0] = 0xC3;
    hdr[1] = 0x01;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (unsigned char)(fp >> (8 * i));
    if (write_seed(dir, w->name, full ? "full" : "min", "single", hdr,
                   FERRY_AVRO_SINGLE_OBJECT_HEADER, body, size, codec, w->kind) != 0)
        goto out;
    rc = 0;
out:
    if (aw)
        avro_writer_free(aw);
    free(body);
    if (have_v)
        avro_value_decref(&v);
    if (iface)
        avro_value_iface_decref(iface);
    if (schema)
        avro_schema_decref(schema);
    return rc;
}

int main(int argc, char **argv)
{
    char errstr[512];
    ferry_error err;
    ferry_avro_codec *codec;
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_DIR  (tests/fuzz/corpus/avro)\n", argv[0]);
        return 2;
    }
    codec = ferry_avro_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        fprintf(stderr, "gen_avro_seeds: %s\n", errstr);
        return 1;
    }
    for (size_t i = 0; i < FUZZ_AVRO_NWRITERS; i++) {
        const fuzz_avro_writer *w = &fuzz_avro_writers[i];
        const char *json = w->json ? w->json : ferry_avro_codec_schema_json(codec, w->kind);
        if (ferry_avro_codec_register_id(codec, w->id, json, &err) != FERRY_OK) {
            fprintf(stderr, "gen_avro_seeds: writer %s: %s\n", w->name, err.msg);
            rc = 1;
            goto out;
        }
    }
    for (size_t i = 0; i < FUZZ_AVRO_NWRITERS; i++)
        for (int full = 1; full >= 0; full--)
            if (gen(argv[1], codec, &fuzz_avro_writers[i], full) != 0)
                rc = 1;
out:
    ferry_avro_codec_destroy(codec);
    return rc;
}
