/* ferry_avro: canonical form + fingerprint known answers, round trips in both framings,
 * schema evolution (older and differently shaped writers), and hostile input: truncation
 * at every length, random and mutated bodies, crafted lengths/counts/indexes. Run under
 * ASan/UBSan and valgrind: every path must be leak-free. */
#include "ferry_avro.h"
#include "ferry_avro_internal.h"
#include "ferry_test.h"

#include <avro.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static ferry_avro_codec *codec;

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* A failed decode must say what and why. */
static int is_clean_failure(ferry_rc rc, const ferry_error *err)
{
    return rc == FERRY_ERR_PERMANENT && err->rc == FERRY_ERR_PERMANENT && err->msg[0] &&
           (strcmp(err->cls, FERRY_EC_DECODE) == 0 || strcmp(err->cls, FERRY_EC_SCHEMA) == 0);
}

static void *xmemdup(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

/* Body builder for hand-made Avro binary. */
typedef struct bb {
    unsigned char b[8192];
    size_t n;
} bb;

static void bb_byte(bb *b, unsigned char c) { b->b[b->n++] = c; }

static void bb_raw(bb *b, const void *p, size_t n)
{
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void bb_long(bb *b, int64_t v)
{
    uint64_t n = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (n & ~0x7FULL) {
        bb_byte(b, (unsigned char)((n & 0x7F) | 0x80));
        n >>= 7;
    }
    bb_byte(b, (unsigned char)n);
}

static void bb_strn(bb *b, const void *s, size_t n)
{
    bb_long(b, (int64_t)n);
    bb_raw(b, s, n);
}

static void bb_str(bb *b, const char *s) { bb_strn(b, s, strlen(s)); }

static void bb_single_object_header(bb *b, uint64_t fp)
{
    bb_byte(b, 0xC3);
    bb_byte(b, 0x01);
    for (int i = 0; i < 8; i++)
        bb_byte(b, (unsigned char)(fp >> (8 * i)));
}

/* ------------------------------------------------------------------ CRC-64 / canonical form */

/* From the Avro specification's test vectors (share/test/data/schema-tests.txt): input,
 * expected canonical form, expected fingerprint (as the signed long Java prints; 0 = none
 * given). */
static const struct {
    const char *input, *canonical;
    int64_t fp;
} spec_vectors[] = {
    {"\"null\"", "\"null\"", 7195948357588979594LL},
    {"{\"type\":\"null\"}", "\"null\"", 0},
    {"\"boolean\"", "\"boolean\"", -6970731678124411036LL},
    {"\"int\"", "\"int\"", 8247732601305521295LL},
    {"{\"type\":\"int\"}", "\"int\"", 0},
    {"\"long\"", "\"long\"", -3434872931120570953LL},
    {"\"float\"", "\"float\"", 5583340709985441680LL},
    {"\"double\"", "\"double\"", -8181574048448539266LL},
    {"\"bytes\"", "\"bytes\"", 5746618253357095269LL},
    {"\"string\"", "\"string\"", -8142146995180207161LL},
    {"[  ]", "[]", -1241056759729112623LL},
    {"[ \"int\"  ]", "[\"int\"]", -5232228896498058493LL},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]", 5392556393470105090LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}", 5916914534497305771LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}", -4616218487480524110LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"Useful info\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], \"type\":\"record\", "
     "\"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"}]}",
     7843277075252814651LL},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", \"default\":\"true\"},\n"
     "  {\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\",\"type\":\"int\"}],\n"
     "  \"type\":\"record\", \"name\":\"foo\"\n}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"},"
     "{\"name\":\"f2\",\"type\":\"int\"}]}",
     -4860222112080293046LL},
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
     "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}", -6342190197741309591LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}",
     -4448647247586288245LL},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", 1756455273707447556LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", -3064184465700546786LL},
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
     "{\"type\":\"array\",\"items\":\"null\"}", -589620603366471059LL},
    {"{ \"values\":\"string\", \"type\":\"map\"}", "{\"type\":\"map\",\"values\":\"string\"}",
     -8732877298790414990LL},
    {"{\"name\":\"PigValue\",\"type\":\"record\",\n"
     "   \"fields\":[{\"name\":\"value\", \"type\":[\"null\", \"int\", \"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\",\"type\":"
     "[\"null\",\"int\",\"long\",\"PigValue\"]}]}",
     -1759257747318642341LL},
    /* Ours, by the spec's rules: nested names inherit the namespace, a second occurrence is
     * the full name, logicalType/default/doc are stripped, quoted sizes lose their quotes. */
    {"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n.s\",\"doc\":\"d\",\"fields\":["
     "{\"name\":\"a\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"]},"
     "\"default\":\"X\"},{\"name\":\"b\",\"type\":\"E\"},"
     "{\"name\":\"c\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
     "{\"name\":\"d\",\"type\":{\"type\":\"fixed\",\"name\":\"o.F\",\"size\":\"016\"}},"
     "{\"name\":\"e\",\"type\":{\"type\":\"array\",\"items\":\"o.F\"}}]}",
     "{\"name\":\"n.s.R\",\"type\":\"record\",\"fields\":[{\"name\":\"a\",\"type\":{\"name\":"
     "\"n.s.E\",\"type\":\"enum\",\"symbols\":[\"X\"]}},{\"name\":\"b\",\"type\":\"n.s.E\"},"
     "{\"name\":\"c\",\"type\":\"long\"},{\"name\":\"d\",\"type\":{\"name\":\"o.F\",\"type\":"
     "\"fixed\",\"size\":16}},{\"name\":\"e\",\"type\":{\"type\":\"array\",\"items\":"
     "\"o.F\"}}]}",
     0},
};

static void test_crc64_known_answers(void)
{
    CHECK(ferry_avro_crc64("", 0) == 0xc15d213aa4d7a795ULL);
    CHECK(ferry_avro_crc64("\"int\"", 5) == 0x7275d51a3f395c8fULL);

    for (size_t i = 0; i < sizeof(spec_vectors) / sizeof(spec_vectors[0]); i++) {
        ferry_error err;
        uint64_t fp = 0;
        char *cf = ferry_avro_canonical_form(spec_vectors[i].input, &err);
        CHECK_STR(cf, spec_vectors[i].canonical);
        if (cf && spec_vectors[i].fp) {
            CHECK(ferry_avro_crc64(cf, strlen(cf)) == (uint64_t)spec_vectors[i].fp);
            CHECK_INT(ferry_avro_fingerprint(spec_vectors[i].input, &fp, &err), FERRY_OK);
            CHECK(fp == (uint64_t)spec_vectors[i].fp);
        }
        if (!cf)
            fprintf(stderr, "  vector %zu: %s\n", i, err.msg);
        free(cf);
    }
}

static void test_canonical_form_errors(void)
{
    static const char *bad[] = {
        "",                                                 /* not JSON */
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[", /* truncated */
        "\"Nope\"",                                         /* undefined name */
        "{\"type\":\"record\",\"name\":\"R\"}",             /* no fields */
        "{\"type\":\"record\",\"fields\":[]}",              /* no name */
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
        "{\"name\":\"a\",\"type\":\"int\"}]}",                          /* duplicate field */
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}", /* duplicate symbol */
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"1A\"]}",      /* invalid symbol */
        "{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}",              /* bad size */
        "{\"type\":\"array\"}",                                         /* no items */
        "{\"name\":\"R\"}",                                             /* no type */
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"x\",\"type\":"
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}}]}", /* R defined twice */
        "{\"type\":\"record\",\"name\":\"a-b\",\"fields\":[]}",  /* invalid name */
        "{\"type\":\"int\",\"type\":\"long\"}",                  /* duplicate key */
        "42",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ferry_error err;
        uint64_t fp;
        ferry_error_clear(&err);
        char *cf = ferry_avro_canonical_form(bad[i], &err);
        CHECK(cf == NULL);
        CHECK_STR(err.cls, FERRY_EC_SCHEMA);
        CHECK(err.msg[0] != '\0');
        if (cf)
            fprintf(stderr, "  bad[%zu] accepted: %s\n", i, cf);
        free(cf);
        CHECK_INT(ferry_avro_fingerprint(bad[i], &fp, &err), FERRY_ERR_PERMANENT);
    }
    CHECK(ferry_avro_canonical_form(NULL, NULL) == NULL);
}

static void test_our_schemas(void)
{
    ferry_error err;
    const char *js = ferry_avro_codec_schema_json(codec, FERRY_AVRO_EVENT_ONBOARD);
    char *cf = ferry_avro_canonical_form(js, &err);
    uint64_t fp;

    CHECK(cf != NULL);
    if (cf) {
        CHECK(strncmp(cf,
                      "{\"name\":\"io.ferry.DatasetOnboard\",\"type\":\"record\",\"fields\":"
                      "[{\"name\":\"event_id\",\"type\":\"string\"},",
                      86) == 0);
        CHECK(strstr(cf, "{\"name\":\"origin\",\"type\":{\"name\":\"io.ferry.Origin\","
                         "\"type\":\"enum\",\"symbols\":[\"backstage\",\"registry\",\"api\","
                         "\"cli\",\"replay\"]}}") != NULL);
        CHECK(strstr(cf, "{\"name\":\"catalog_etag\",\"type\":[\"null\",\"string\"]}") != NULL);
        /* version 3: the last field, an optional string */
        CHECK(strstr(cf, "{\"name\":\"source_inventory\",\"type\":[\"null\",\"string\"]}]}") !=
              NULL);
        CHECK(strstr(cf, "\"io.ferry.Options\"") != NULL);
        CHECK(strstr(cf, "doc") == NULL && strstr(cf, "default") == NULL &&
              strstr(cf, "logicalType") == NULL && strchr(cf, ' ') == NULL);
        CHECK(ferry_avro_crc64(cf, strlen(cf)) ==
              ferry_avro_codec_fingerprint(codec, FERRY_AVRO_EVENT_ONBOARD));
    }
    free(cf);
    CHECK_INT(ferry_avro_fingerprint(ferry_avro_codec_schema_json(codec,
                                                                  FERRY_AVRO_EVENT_MIGRATED),
                                     &fp, &err),
              FERRY_OK);
    CHECK(fp == ferry_avro_codec_fingerprint(codec, FERRY_AVRO_EVENT_MIGRATED));
    CHECK(fp != ferry_avro_codec_fingerprint(codec, FERRY_AVRO_EVENT_ONBOARD));
    CHECK(ferry_avro_codec_schema_json(codec, (ferry_avro_event)7) == NULL);
}

/* ------------------------------------------------------------------ round trips */

static char *inc[] = {"raw/2024/", "curated/", "h\xc3\xa9llo/\xf0\x9f\x9a\xa2/"};
static char *exc[] = {"tmp/"};

static ferry_onboard sample_onboard(int full)
{
    ferry_onboard ev;
    memset(&ev, 0, sizeof(ev));
    ev.event_id = "6f1c2a9e-3b7d-4c1e-9a51-0d2f4b8e7c33";
    ev.dataset = "sales.orders";
    ev.source_uri = "s3://old-bucket/datasets/sales/orders";
    ev.target_uri = "s3://new-bucket/sales/orders";
    ev.requested_at_ms = 1717171717171;
    ev.requested_by = "jane.doe@example.com";
    ev.origin = full ? FERRY_ORIGIN_REPLAY : FERRY_ORIGIN_BACKSTAGE;
    ev.verify = full ? 0 : 1;
    ev.overwrite = full ? FERRY_OVERWRITE_NEVER : FERRY_OVERWRITE_IF_DIFFERENT;
    if (full) {
        ev.catalog_ref = "catalog:sales/orders";
        ev.catalog_etag = "\"0x8DC1\"";
        ev.include_prefixes = inc;
        ev.include_count = 3;
        ev.exclude_prefixes = exc;
        ev.exclude_count = 1;
        ev.source_inventory = "s3://inventory/old-bucket/all/2026-01-01T01-00Z/manifest.json";
    }
    return ev;
}

static void check_onboard_equal(const ferry_onboard *a, const ferry_onboard *b)
{
    CHECK_STR(a->event_id, b->event_id);
    CHECK_STR(a->dataset, b->dataset);
    CHECK_STR(a->source_uri, b->source_uri);
    CHECK_STR(a->target_uri, b->target_uri);
    CHECK_INT(a->requested_at_ms, b->requested_at_ms);
    CHECK_STR(a->requested_by, b->requested_by);
    CHECK_INT(a->origin, b->origin);
    if (b->catalog_ref)
        CHECK_STR(a->catalog_ref, b->catalog_ref);
    else
        CHECK(a->catalog_ref == NULL);
    if (b->catalog_etag)
        CHECK_STR(a->catalog_etag, b->catalog_etag);
    else
        CHECK(a->catalog_etag == NULL);
    CHECK_INT(a->verify, b->verify);
    CHECK_INT(a->overwrite, b->overwrite);
    CHECK_INT(a->include_count, b->include_count);
    CHECK_INT(a->exclude_count, b->exclude_count);
    for (size_t i = 0; i < a->include_count && i < b->include_count; i++)
        CHECK_STR(a->include_prefixes[i], b->include_prefixes[i]);
    for (size_t i = 0; i < a->exclude_count && i < b->exclude_count; i++)
        CHECK_STR(a->exclude_prefixes[i], b->exclude_prefixes[i]);
    if (b->include_count == 0)
        CHECK(a->include_prefixes == NULL);
    if (b->source_inventory)
        CHECK_STR(a->source_inventory, b->source_inventory);
    else
        CHECK(a->source_inventory == NULL);
}

static ferry_migrated sample_migrated(void)
{
    ferry_migrated ev;
    memset(&ev, 0, sizeof(ev));
    ev.event_id = "6f1c2a9e-3b7d-4c1e-9a51-0d2f4b8e7c33";
    ev.dataset = "sales.orders";
    ev.source_uri = "s3://old-bucket/datasets/sales/orders";
    ev.target_uri = "s3://new-bucket/sales/orders";
    ev.objects = 123456;
    ev.bytes = INT64_MAX;
    ev.duration_ms = 0;
    ev.finished_at_ms = -1; /* zig-zag negative */
    ev.worker = "worker-7";
    ev.objects_copied = 120000;
    ev.objects_identical = 3456;
    ev.objects_vanished = 7;
    ev.objects_failed = 0;
    return ev;
}

static void test_round_trip_onboard(void)
{
    ferry_error err;
    CHECK_INT(ferry_avro_codec_register_id(
                  codec, 7, ferry_avro_codec_schema_json(codec, FERRY_AVRO_EVENT_ONBOARD),
                  &err),
              FERRY_OK);

    for (int full = 0; full < 2; full++) {
        for (int f = 0; f < 2; f++) {
            ferry_onboard in = sample_onboard(full), out;
            void *buf = NULL;
            size_t len = 0;
            ferry_rc rc = ferry_avro_encode_onboard(codec, &in, (ferry_avro_framing)f, 7, &buf,
                                                    &len, &err);
            CHECK_INT(rc, FERRY_OK);
            if (rc != FERRY_OK) {
                fprintf(stderr, "  encode: %s\n", err.msg);
                continue;
            }
            const unsigned char *p = buf;
            if (f == FERRY_AVRO_SINGLE_OBJECT) {
                uint64_t fp = 0;
                CHECK(p[0] == 0xC3 && p[1] == 0x01);
                for (int i = 7; i >= 0; i--)
                    fp = (fp << 8) | p[2 + i];
                CHECK(fp == ferry_avro_codec_fingerprint(codec, FERRY_AVRO_EVENT_ONBOARD));
            } else {
                CHECK(p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0 && p[4] == 7);
            }
            rc = ferry_avro_decode_onboard(codec, buf, len, &out, &err);
            CHECK_INT(rc, FERRY_OK);
            if (rc != FERRY_OK)
                fprintf(stderr, "  decode: %s\n", err.msg);
            else
                check_onboard_equal(&out, &in);
            ferry_avro_event kind = FERRY_AVRO_EVENT_MIGRATED;
            CHECK_INT(ferry_avro_peek(codec, buf, len, &kind, &err), FERRY_OK);
            CHECK_INT(kind, FERRY_AVRO_EVENT_ONBOARD);
            ferry_onboard_clear(&out);
            free(buf);
        }
    }
}

static void test_round_trip_migrated(void)
{
    ferry_error err;
    CHECK_INT(ferry_avro_codec_register_id(
                  codec, 0x01020304,
                  ferry_avro_codec_schema_json(codec, FERRY_AVRO_EVENT_MIGRATED), &err),
              FERRY_OK);
    for (int f = 0; f < 2; f++) {
        ferry_migrated in = sample_migrated(), out;
        void *buf = NULL;
        size_t len = 0;
        CHECK_INT(ferry_avro_encode_migrated(codec, &in, (ferry_avro_framing)f, 0x01020304,
                                             &buf, &len, &err),
                  FERRY_OK);
        if (!buf)
            continue;
        if (f == FERRY_AVRO_CONFLUENT)
            CHECK(memcmp(buf, "\x00\x01\x02\x03\x04", 5) == 0);
        CHECK_INT(ferry_avro_decode_migrated(codec, buf, len, &out, &err), FERRY_OK);
        CHECK_STR(out.event_id, in.event_id);
        CHECK_STR(out.dataset, in.dataset);
        CHECK_STR(out.source_uri, in.source_uri);
        CHECK_STR(out.target_uri, in.target_uri);
        CHECK_INT(out.objects, in.objects);
        CHECK(out.bytes == INT64_MAX);
        CHECK_INT(out.objects_copied, 120000); /* version 2 fields */
        CHECK_INT(out.objects_identical, 3456);
        CHECK_INT(out.objects_vanished, 7);
        CHECK_INT(out.objects_failed, 0);
        CHECK_INT(out.duration_ms, 0);
        CHECK_INT(out.finished_at_ms, -1);
        CHECK_STR(out.worker, in.worker);
        ferry_migrated_clear(&out);

        /* The other event type is a schema error, not a decode error. */
        ferry_onboard wrong;
        CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &wrong, &err),
                  FERRY_ERR_PERMANENT);
        CHECK_STR(err.cls, FERRY_EC_SCHEMA);
        CHECK(strstr(err.msg, "DatasetMigrated") != NULL);
        CHECK(wrong.event_id == NULL);
        free(buf);
    }
}

static void test_confluent_ids(void)
{
    ferry_error err;
    ferry_onboard in = sample_onboard(1), out;
    void *buf = (void *)1;
    size_t len = 1;
    const char *onb = ferry_avro_codec_schema_json(codec, FERRY_AVRO_EVENT_ONBOARD);
    const char *mig = ferry_avro_codec_schema_json(codec, FERRY_AVRO_EVENT_MIGRATED);

    /* Not registered: refuse to write bytes a reader could not map. */
    CHECK_INT(ferry_avro_encode_onboard(codec, &in, FERRY_AVRO_CONFLUENT, 99, &buf, &len, &err),
              FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_SCHEMA);
    CHECK(buf == NULL && len == 0);
    /* Registered, but to the other event's schema. */
    CHECK_INT(ferry_avro_encode_onboard(codec, &in, FERRY_AVRO_CONFLUENT, 0x01020304, &buf,
                                        &len, &err),
              FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_SCHEMA);
    /* Idempotent; immutable; negative refused; not a schema refused. */
    CHECK_INT(ferry_avro_codec_register_id(codec, 7, onb, &err), FERRY_OK);
    CHECK_INT(ferry_avro_codec_register_id(codec, 7, mig, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_SCHEMA);
    CHECK_INT(ferry_avro_codec_register_id(codec, -1, onb, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_avro_codec_register_id(codec, 8, "{", &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_avro_codec_register_id(codec, 8, NULL, &err), FERRY_ERR_PERMANENT);

    /* Unknown id on the read side. */
    CHECK_INT(ferry_avro_encode_onboard(codec, &in, FERRY_AVRO_CONFLUENT, 7, &buf, &len, &err),
              FERRY_OK);
    ((unsigned char *)buf)[4] = 99;
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_SCHEMA);
    CHECK(strstr(err.msg, "99") != NULL);
    ferry_avro_event kind;
    CHECK_INT(ferry_avro_peek(codec, buf, len, &kind, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_SCHEMA);
    free(buf);
}

static void test_wrong_header(void)
{
    ferry_error err;
    ferry_onboard in = sample_onboard(0), out;
    void *buf;
    size_t len;

    CHECK_INT(ferry_avro_encode_onboard(codec, &in, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                        &err),
              FERRY_OK);
    unsigned char *p = buf;

    p[5] ^= 0x40; /* unknown fingerprint */
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_SCHEMA);
    CHECK(strstr(err.msg, "fingerprint") != NULL);
    p[5] ^= 0x40;

    p[1] = 0x02; /* wrong second magic byte */
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_SCHEMA);
    p[1] = 0x01;

    p[0] = 'x'; /* wrong magic */
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_SCHEMA);
    CHECK(strstr(err.msg, "magic") != NULL);
    p[0] = 0xC3;

    CHECK_INT(ferry_avro_decode_onboard(codec, buf, 0, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_DECODE);
    CHECK_INT(ferry_avro_decode_onboard(codec, NULL, 0, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_OK);
    ferry_onboard_clear(&out);
    free(buf);
}

/* ------------------------------------------------------------------ evolution */

/* An older DatasetOnboard: no catalog_etag, no options. */
static const char *OLD_ONBOARD =
    "{\"type\":\"record\",\"name\":\"DatasetOnboard\",\"namespace\":\"io.ferry\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"}},"
    "{\"name\":\"dataset\",\"type\":\"string\"},"
    "{\"name\":\"source_uri\",\"type\":\"string\"},"
    "{\"name\":\"target_uri\",\"type\":\"string\"},"
    "{\"name\":\"requested_at\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    "{\"name\":\"requested_by\",\"type\":\"string\"},"
    "{\"name\":\"origin\",\"type\":{\"type\":\"enum\",\"name\":\"Origin\",\"symbols\":"
    "[\"backstage\",\"registry\",\"api\",\"cli\",\"replay\"]}},"
    "{\"name\":\"catalog_ref\",\"type\":[\"null\",\"string\"],\"default\":null}]}";

/* A differently shaped writer: fields reordered, requested_at an int (promoted to long),
 * origin symbols in another order plus one this reader lacks, Options without
 * exclude_prefixes but with an extra field, and extra top-level fields (a map and a
 * recursive record) that the reader ignores. */
static const char *ODD_ONBOARD =
    "{\"type\":\"record\",\"name\":\"DatasetOnboard\",\"namespace\":\"io.ferry\",\"fields\":["
    "{\"name\":\"labels\",\"type\":{\"type\":\"map\",\"values\":\"string\"}},"
    "{\"name\":\"dataset\",\"type\":\"string\"},"
    "{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"options\",\"type\":{\"type\":\"record\",\"name\":\"Options\",\"fields\":["
    "  {\"name\":\"priority\",\"type\":\"int\"},"
    "  {\"name\":\"include_prefixes\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "  {\"name\":\"overwrite\",\"type\":{\"type\":\"enum\",\"name\":\"Overwrite\",\"symbols\":"
    "     [\"never\",\"always\",\"if_different\"]}},"
    "  {\"name\":\"verify\",\"type\":\"boolean\"}]}},"
    "{\"name\":\"source_uri\",\"type\":\"string\"},"
    "{\"name\":\"target_uri\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"requested_at\",\"type\":\"int\"},"
    "{\"name\":\"requested_by\",\"type\":\"string\"},"
    "{\"name\":\"origin\",\"type\":{\"type\":\"enum\",\"name\":\"Origin\",\"symbols\":"
    "[\"cli\",\"api\",\"replay\",\"portal\",\"registry\",\"backstage\"]}},"
    "{\"name\":\"catalog_etag\",\"type\":\"string\"},"
    "{\"name\":\"tree\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
    "  {\"name\":\"name\",\"type\":\"string\"},"
    "  {\"name\":\"child\",\"type\":[\"null\",\"Node\"]}]}]}]}";

static void set_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f, b = {NULL, NULL}; /* set_branch is a macro clang sees may skip the call */
    CHECK(avro_value_get_by_name(rec, name, &f, NULL) == 0);
    if (avro_value_get_type(&f) == AVRO_UNION) {
        CHECK(avro_value_set_branch(&f, s ? 1 : 0, &b) == 0);
        f = b;
    }
    if (s)
        CHECK(avro_value_set_string(&f, s) == 0);
    else
        CHECK(avro_value_set_null(&f) == 0);
}

static void set_enum(avro_value_t *rec, const char *name, const char *sym)
{
    avro_value_t f;
    CHECK(avro_value_get_by_name(rec, name, &f, NULL) == 0);
    CHECK(avro_value_set_enum(&f, avro_schema_enum_get_by_name(avro_value_get_schema(&f),
                                                               sym)) == 0);
}

typedef void (*fill_fn)(avro_value_t *rec, void *arg);

/* Encodes with an arbitrary writer schema straight through avro-c. header: 0 single
 * object, else the Confluent id. Returns malloc'd bytes. */
static void *raw_encode(const char *schema_json, fill_fn fill, void *arg, int32_t confluent_id,
                        size_t *out_len)
{
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t v;
    size_t size;
    ferry_error err;
    uint64_t fp = 0;
    bb *h = calloc(1, sizeof(*h));
    unsigned char *out = NULL;

    if (avro_schema_from_json_length(schema_json, strlen(schema_json), &schema) != 0) {
        fprintf(stderr, "  raw_encode: %s\n", avro_strerror());
        free(h);
        return NULL;
    }
    iface = avro_generic_class_from_schema(schema);
    avro_generic_value_new(iface, &v);
    fill(&v, arg);
    CHECK(avro_value_sizeof(&v, &size) == 0);
    if (confluent_id) {
        bb_byte(h, 0);
        for (int i = 3; i >= 0; i--)
            bb_byte(h, (unsigned char)((uint32_t)confluent_id >> (8 * i)));
    } else {
        CHECK_INT(ferry_avro_fingerprint(schema_json, &fp, &err), FERRY_OK);
        bb_single_object_header(h, fp);
    }
    out = malloc(h->n + size);
    memcpy(out, h->b, h->n);
    avro_writer_t w = avro_writer_memory((const char *)out + h->n, (int64_t)size);
    CHECK(avro_value_write(w, &v) == 0);
    avro_writer_free(w);
    *out_len = h->n + size;
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    free(h);
    return out;
}

static void fill_old(avro_value_t *rec, void *arg)
{
    avro_value_t f;
    set_str(rec, "event_id", "0b8a7e1c-0000-4000-8000-000000000001");
    set_str(rec, "dataset", "legacy.ds");
    set_str(rec, "source_uri", "s3://a/b");
    set_str(rec, "target_uri", "s3://c/d");
    avro_value_get_by_name(rec, "requested_at", &f, NULL);
    avro_value_set_long(&f, 42);
    set_str(rec, "requested_by", "old-producer");
    set_enum(rec, "origin", "cli");
    set_str(rec, "catalog_ref", arg);
}

static void test_decode_older_writer(void)
{
    ferry_error err;
    ferry_onboard out;
    size_t len;
    void *buf = raw_encode(OLD_ONBOARD, fill_old, "cat:legacy", 0, &len);

    /* Not yet known: an unknown fingerprint. */
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_SCHEMA);

    CHECK_INT(ferry_avro_codec_add_schema(codec, OLD_ONBOARD, &err), FERRY_OK);
    CHECK_INT(ferry_avro_codec_add_schema(codec, OLD_ONBOARD, &err), FERRY_OK); /* no-op */
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_OK);
    CHECK_STR(out.event_id, "0b8a7e1c-0000-4000-8000-000000000001");
    CHECK_STR(out.dataset, "legacy.ds");
    CHECK_STR(out.source_uri, "s3://a/b");
    CHECK_STR(out.target_uri, "s3://c/d");
    CHECK_INT(out.requested_at_ms, 42);
    CHECK_STR(out.requested_by, "old-producer");
    CHECK_INT(out.origin, FERRY_ORIGIN_CLI);
    CHECK_STR(out.catalog_ref, "cat:legacy");
    /* From the current schema's defaults: */
    CHECK(out.catalog_etag == NULL);
    CHECK_INT(out.verify, 1);
    CHECK_INT(out.overwrite, FERRY_OVERWRITE_IF_DIFFERENT);
    CHECK_INT(out.include_count, 0);
    CHECK(out.include_prefixes == NULL);
    CHECK_INT(out.exclude_count, 0);
    CHECK(out.exclude_prefixes == NULL);
    CHECK(out.source_inventory == NULL);
    ferry_onboard_clear(&out);
    free(buf);

    /* The same older writer through the Schema Registry framing. */
    CHECK_INT(ferry_avro_codec_register_id(codec, 41, OLD_ONBOARD, &err), FERRY_OK);
    buf = raw_encode(OLD_ONBOARD, fill_old, NULL, 41, &len);
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_OK);
    CHECK(out.catalog_ref == NULL);
    CHECK_INT(out.verify, 1);
    ferry_onboard_clear(&out);
    free(buf);
}

typedef struct odd_args {
    const char *origin;
    int tree_depth;
    int null_target;
} odd_args;

static void fill_odd(avro_value_t *rec, void *arg)
{
    const odd_args *a = arg;
    avro_value_t f, opts, arr, item, node, b;

    CHECK(avro_value_get_by_name(rec, "labels", &f, NULL) == 0);
    CHECK(avro_value_add(&f, "team", &item, NULL, NULL) == 0);
    avro_value_set_string(&item, "data-platform");
    CHECK(avro_value_add(&f, "tier", &item, NULL, NULL) == 0);
    avro_value_set_string(&item, "gold");
    set_str(rec, "dataset", "odd.ds");
    set_str(rec, "event_id", "e-odd");
    CHECK(avro_value_get_by_name(rec, "options", &opts, NULL) == 0);
    avro_value_get_by_name(&opts, "priority", &f, NULL);
    avro_value_set_int(&f, -3);
    avro_value_get_by_name(&opts, "include_prefixes", &arr, NULL);
    avro_value_append(&arr, &item, NULL);
    avro_value_set_string(&item, "only/");
    set_enum(&opts, "overwrite", "always");
    avro_value_get_by_name(&opts, "verify", &f, NULL);
    avro_value_set_boolean(&f, 0);
    set_str(rec, "source_uri", "s3://x/y");
    set_str(rec, "target_uri", a->null_target ? NULL : "s3://z/w");
    avro_value_get_by_name(rec, "requested_at", &f, NULL);
    avro_value_set_int(&f, -7);
    set_str(rec, "requested_by", "someone");
    set_enum(rec, "origin", a->origin);
    set_str(rec, "catalog_etag", "etag-1");
    avro_value_get_by_name(rec, "tree", &f, NULL);
    for (int d = 0; d < a->tree_depth; d++) {
        avro_value_set_branch(&f, 1, &node);
        avro_value_get_by_name(&node, "name", &b, NULL);
        avro_value_set_string(&b, "n");
        avro_value_get_by_name(&node, "child", &f, NULL);
    }
    avro_value_set_branch(&f, 0, &b);
    avro_value_set_null(&b);
}

static void test_decode_differently_shaped_writer(void)
{
    ferry_error err;
    ferry_onboard out;
    size_t len;
    odd_args a = {"api", 3, 0};

    ferry_error_clear(&err);
    CHECK_INT(ferry_avro_codec_add_schema(codec, ODD_ONBOARD, &err), FERRY_OK);
    if (err.rc != FERRY_OK)
        fprintf(stderr, "  add: %s\n", err.msg);
    void *buf = raw_encode(ODD_ONBOARD, fill_odd, &a, 0, &len);
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_OK);
    if (err.rc != FERRY_OK)
        fprintf(stderr, "  decode: %s\n", err.msg);
    CHECK_STR(out.event_id, "e-odd");
    CHECK_STR(out.dataset, "odd.ds");
    CHECK_STR(out.target_uri, "s3://z/w");
    CHECK_INT(out.requested_at_ms, -7);
    CHECK_INT(out.origin, FERRY_ORIGIN_API);
    CHECK(out.catalog_ref == NULL); /* default */
    CHECK_STR(out.catalog_etag, "etag-1");
    CHECK_INT(out.verify, 0);
    CHECK_INT(out.overwrite, FERRY_OVERWRITE_ALWAYS);
    CHECK_INT(out.include_count, 1);
    if (out.include_count == 1)
        CHECK_STR(out.include_prefixes[0], "only/");
    CHECK_INT(out.exclude_count, 0); /* Options field default */
    ferry_onboard_clear(&out);
    free(buf);

    /* Duplicate map keys in a field the reader ignores: avro-c keeps one; nothing leaks. */
    a.origin = "api";
    buf = raw_encode(ODD_ONBOARD, fill_odd, &a, 0, &len);
    {
        unsigned char *p = buf, *tier = NULL;
        for (size_t i = 10; i + 4 <= len && !tier; i++)
            if (memcmp(p + i, "tier", 4) == 0)
                tier = p + i;
        CHECK(tier != NULL);
        if (tier)
            memcpy(tier, "team", 4);
        CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_OK);
        ferry_onboard_clear(&out);
    }
    free(buf);

    /* A writer union holding null where the current schema requires a string. */
    a.null_target = 1;
    buf = raw_encode(ODD_ONBOARD, fill_odd, &a, 0, &len);
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_DECODE);
    CHECK(strstr(err.msg, "target_uri") != NULL);
    CHECK(out.event_id == NULL && out.include_prefixes == NULL);
    free(buf);
    a.null_target = 0;

    /* A symbol this reader does not know. */
    a.origin = "portal";
    buf = raw_encode(ODD_ONBOARD, fill_odd, &a, 0, &len);
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_DECODE);
    CHECK(strstr(err.msg, "origin") && strstr(err.msg, "portal"));
    free(buf);

    /* Nesting beyond FERRY_AVRO_MAX_DEPTH is refused before avro-c sees it. */
    a.origin = "cli";
    a.tree_depth = 40;
    buf = raw_encode(ODD_ONBOARD, fill_odd, &a, 0, &len);
    CHECK_INT(ferry_avro_decode_onboard(codec, buf, len, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_DECODE);
    CHECK(strstr(err.msg, "nested") != NULL);
    free(buf);
}

static void test_incompatible_writers_refused(void)
{
    static const char *bad[] = {
        /* lacks dataset, which has no default */
        "{\"type\":\"record\",\"name\":\"DatasetOnboard\",\"namespace\":\"io.ferry\","
        "\"fields\":[{\"name\":\"event_id\",\"type\":\"string\"}]}",
        /* dataset of a type that cannot become a string */
        "{\"type\":\"record\",\"name\":\"DatasetMigrated\",\"namespace\":\"io.ferry\","
        "\"fields\":[{\"name\":\"event_id\",\"type\":\"string\"},"
        "{\"name\":\"dataset\",\"type\":\"long\"},{\"name\":\"source_uri\",\"type\":\"string\"},"
        "{\"name\":\"target_uri\",\"type\":\"string\"},{\"name\":\"objects\",\"type\":\"long\"},"
        "{\"name\":\"bytes\",\"type\":\"long\"},{\"name\":\"duration_ms\",\"type\":\"long\"},"
        "{\"name\":\"finished_at\",\"type\":\"long\"},{\"name\":\"worker\",\"type\":\"string\"}]}",
        /* some other record */
        "{\"type\":\"record\",\"name\":\"Other\",\"namespace\":\"io.ferry\",\"fields\":[]}",
        /* not a record */
        "\"string\"",
        /* not JSON */
        "{\"type\":",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ferry_error err;
        ferry_error_clear(&err);
        CHECK_INT(ferry_avro_codec_add_schema(codec, bad[i], &err), FERRY_ERR_PERMANENT);
        CHECK_STR(err.cls, FERRY_EC_SCHEMA);
        CHECK(err.msg[0] != '\0');
    }
    ferry_error err;
    CHECK_INT(ferry_avro_codec_add_schema(codec, NULL, &err), FERRY_ERR_PERMANENT);
}

/* ------------------------------------------------------------------ hostile input */

static void test_truncated_every_length(void)
{
    ferry_error err;
    for (int f = 0; f < 2; f++) {
        ferry_onboard in = sample_onboard(1), out;
        void *buf;
        size_t len;
        CHECK_INT(ferry_avro_encode_onboard(codec, &in, (ferry_avro_framing)f, 7, &buf, &len,
                                            &err),
                  FERRY_OK);
        for (size_t n = 0; n < len; n++) {
            void *cut = xmemdup(buf, n); /* exact-size copy: ASan sees any over-read */
            ferry_error_clear(&err);
            ferry_rc rc = ferry_avro_decode_onboard(codec, cut, n, &out, &err);
            CHECK(is_clean_failure(rc, &err));
            CHECK(out.event_id == NULL);
            free(cut);
        }
        /* One trailing byte. */
        unsigned char *longer = malloc(len + 1);
        memcpy(longer, buf, len);
        longer[len] = 0;
        CHECK_INT(ferry_avro_decode_onboard(codec, longer, len + 1, &out, &err),
                  FERRY_ERR_PERMANENT);
        CHECK_STR(err.cls, FERRY_EC_DECODE);
        CHECK(strstr(err.msg, "trailing") != NULL);
        free(longer);
        free(buf);
    }
    ferry_migrated in = sample_migrated(), out;
    void *buf;
    size_t len;
    CHECK_INT(ferry_avro_encode_migrated(codec, &in, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                         &err),
              FERRY_OK);
    for (size_t n = 0; n < len; n++) {
        void *cut = xmemdup(buf, n);
        CHECK(is_clean_failure(ferry_avro_decode_migrated(codec, cut, n, &out, &err), &err));
        free(cut);
    }
    free(buf);
}

static void test_random_garbage(void)
{
    ferry_error err;
    uint64_t fp = ferry_avro_codec_fingerprint(codec, FERRY_AVRO_EVENT_ONBOARD);
    int ok = 0;

    for (int i = 0; i < 4000; i++) {
        bb *b = calloc(1, sizeof(*b));
        if (i % 4 == 3) { /* Confluent framing, id 7 */
            bb_raw(b, "\x00\x00\x00\x00\x07", 5);
        } else {
            bb_single_object_header(b, fp);
        }
        size_t n = rng() % 300;
        for (size_t k = 0; k < n; k++) {
            uint64_t r = rng();
            /* Bias towards small varints so the walk gets past the first fields. */
            b->b[b->n++] = (r & 3) ? (unsigned char)(r >> 8) & 0x1F : (unsigned char)(r >> 8);
        }
        void *exact = xmemdup(b->b, b->n);
        ferry_onboard out;
        ferry_error_clear(&err);
        ferry_rc rc = ferry_avro_decode_onboard(codec, exact, b->n, &out, &err);
        if (rc == FERRY_OK)
            ok++;
        else
            CHECK(is_clean_failure(rc, &err));
        ferry_onboard_clear(&out);
        free(exact);
        free(b);
    }
    (void)ok;
}

static void test_mutated_valid_events(void)
{
    ferry_error err;
    ferry_onboard in = sample_onboard(1);
    void *buf;
    size_t len;
    int ok = 0;

    CHECK_INT(ferry_avro_encode_onboard(codec, &in, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                        &err),
              FERRY_OK);
    for (int i = 0; i < 4000; i++) {
        unsigned char *m = xmemdup(buf, len);
        int flips = 1 + (int)(rng() % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = 10 + rng() % (len - 10); /* keep the header */
            uint64_t r = rng();
            switch (r % 4) {
            case 0: m[at] ^= (unsigned char)(1u << ((r >> 8) % 8)); break;
            case 1: m[at] = (unsigned char)(r >> 16); break;
            case 2: m[at] = 0xFF; break;
            default: m[at] = 0x00; break;
            }
        }
        ferry_onboard out;
        ferry_error_clear(&err);
        ferry_rc rc = ferry_avro_decode_onboard(codec, m, len, &out, &err);
        if (rc == FERRY_OK) {
            ok++;
            CHECK(out.event_id && out.dataset && out.requested_by);
        } else {
            CHECK(is_clean_failure(rc, &err));
        }
        ferry_onboard_clear(&out);
        free(m);
    }
    CHECK(ok > 0); /* some mutations hit string contents and still decode */
    free(buf);
}

enum variant {
    V_OK,
    V_NEG_LEN,
    V_HUGE_LEN,
    V_NUL,
    V_BAD_UTF8,
    V_OVERLONG_UTF8,
    V_BAD_BOOL,
    V_UNION_IDX,
    V_NEG_UNION_IDX,
    V_ENUM_IDX,
    V_LONG_VARINT,
    V_VARINT_OVERFLOW,
    V_HUGE_COUNT,
    V_MIN_COUNT,
    V_BAD_BLOCK_SIZE,
    V_WRONG_BLOCK_SIZE,
    V_GOOD_BLOCK_SIZE,
    V_TRAILING,
    V_NVARIANTS
};

/* A DatasetOnboard body in the current schema, written by hand, broken as `v` says. */
static void build_onboard(bb *b, enum variant v)
{
    bb_str(b, "11111111-2222-4333-8444-555555555555");
    switch (v) {
    case V_NEG_LEN:
        bb_long(b, -5);
        bb_raw(b, "sales", 5);
        break;
    case V_HUGE_LEN:
        bb_long(b, 1LL << 40);
        bb_raw(b, "sales", 5);
        break;
    case V_NUL: bb_strn(b, "sa\0es", 5); break;
    case V_BAD_UTF8: bb_strn(b, "sa\xc3\x28s", 5); break;
    case V_OVERLONG_UTF8: bb_strn(b, "sa\xc0\xafs", 5); break;
    default: bb_str(b, "sales"); break;
    }
    bb_str(b, "s3://a/b");
    bb_str(b, "s3://c/d");
    if (v == V_LONG_VARINT) {
        for (int i = 0; i < 10; i++)
            bb_byte(b, 0x80);
        bb_byte(b, 0x00);
    } else if (v == V_VARINT_OVERFLOW) {
        for (int i = 0; i < 9; i++)
            bb_byte(b, 0xFF);
        bb_byte(b, 0x7F);
    } else {
        bb_long(b, 1700000000000LL);
    }
    bb_str(b, "me");
    bb_long(b, v == V_ENUM_IDX ? 5 : 2);                              /* origin */
    bb_long(b, v == V_UNION_IDX ? 2 : v == V_NEG_UNION_IDX ? -1 : 1); /* catalog_ref */
    bb_str(b, "cat:1");
    bb_long(b, 0);                       /* catalog_etag null */
    bb_byte(b, v == V_BAD_BOOL ? 2 : 1); /* verify */
    bb_long(b, 1);                       /* overwrite always */
    switch (v) {                         /* include_prefixes */
    case V_HUGE_COUNT:
        bb_long(b, 1LL << 40);
        bb_str(b, "a/");
        break;
    case V_MIN_COUNT:
        for (int i = 0; i < 9; i++)
            bb_byte(b, 0xFF);
        bb_byte(b, 0x01); /* zig-zag of INT64_MIN */
        bb_long(b, 3);
        bb_str(b, "a/");
        break;
    case V_BAD_BLOCK_SIZE:
        bb_long(b, -2);
        bb_long(b, 99);
        bb_str(b, "a/");
        bb_str(b, "b/");
        break;
    case V_WRONG_BLOCK_SIZE:
        bb_long(b, -2);
        bb_long(b, 5);
        bb_str(b, "a/");
        bb_str(b, "b/");
        break;
    case V_GOOD_BLOCK_SIZE:
        bb_long(b, -2);
        bb_long(b, 6);
        bb_str(b, "a/");
        bb_str(b, "b/");
        break;
    default:
        bb_long(b, 2);
        bb_str(b, "a/");
        bb_str(b, "b/");
        break;
    }
    bb_long(b, 0);
    bb_long(b, 0); /* exclude_prefixes */
    if (v == V_TRAILING)
        bb_byte(b, 0);
}

/* The bodies below are laid out as DatasetOnboard version 1, the first released
 * version, which stays embedded (schemas/dataset_onboard.v1.avsc): they are framed with
 * its fingerprint and decode through schema evolution (v2's chunk_* fields default). */
struct ferry_embedded_file {
    const char *name;
    const char *text;
};
extern const struct ferry_embedded_file ferry_schemas_table[];

/* The fingerprint of an embedded schema file; 0 (and a failed check) if it is missing. */
static uint64_t embedded_fingerprint(const char *file)
{
    ferry_error err;
    uint64_t fp = 0;
    for (const struct ferry_embedded_file *f = ferry_schemas_table; f->name; f++)
        if (!strcmp(f->name, file))
            CHECK_INT(ferry_avro_fingerprint(f->text, &fp, &err), FERRY_OK);
    CHECK(fp != 0);
    return fp;
}

static uint64_t v1_fingerprint(void) { return embedded_fingerprint("dataset_onboard.v1.avsc"); }

/* DatasetOnboard version 2 (schemas/dataset_onboard.v2.avsc, still embedded): a chunk
 * event written before source_inventory existed keeps its chunk fields and takes the
 * version 3 default, no inventory. */
static void test_onboard_v2_decodes(void)
{
    uint64_t fp = embedded_fingerprint("dataset_onboard.v2.avsc");
    ferry_error err;
    ferry_onboard out;
    bb *b = calloc(1, sizeof(*b));

    CHECK(fp != v1_fingerprint());
    CHECK(fp != ferry_avro_codec_fingerprint(codec, FERRY_AVRO_EVENT_ONBOARD));
    bb_single_object_header(b, fp);
    build_onboard(b, V_OK); /* the version 1 fields */
    bb_long(b, 1);          /* chunk_parent_event_id */
    bb_str(b, "1c9f5d2b-3a4e-4f60-9bac-1d2e3f4a5b6c");
    bb_long(b, 2);  /* chunk_index */
    bb_long(b, -1); /* chunk_count: open */
    bb_long(b, 1);  /* chunk_start_after */
    bb_str(b, "a/0499");
    bb_long(b, 1); /* chunk_end_key */
    bb_str(b, "a/0999");
    CHECK_INT(ferry_avro_decode_onboard(codec, b->b, b->n, &out, &err), FERRY_OK);
    CHECK_STR(out.dataset, "sales");
    CHECK_STR(out.chunk_parent_event_id, "1c9f5d2b-3a4e-4f60-9bac-1d2e3f4a5b6c");
    CHECK_INT(out.chunk_index, 2);
    CHECK_INT(out.chunk_count, FERRY_CHUNK_COUNT_OPEN);
    CHECK_STR(out.chunk_start_after, "a/0499");
    CHECK_STR(out.chunk_end_key, "a/0999");
    CHECK(out.source_inventory == NULL);
    ferry_onboard_clear(&out);

    /* The same body read as version 3 lacks the last union: truncated, not misread. */
    b->n = 0;
    bb_single_object_header(b, ferry_avro_codec_fingerprint(codec, FERRY_AVRO_EVENT_ONBOARD));
    build_onboard(b, V_OK);
    bb_long(b, 0);
    bb_long(b, 0);
    bb_long(b, 0);
    bb_long(b, 0);
    bb_long(b, 0);
    CHECK_INT(ferry_avro_decode_onboard(codec, b->b, b->n, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_DECODE);
    bb_long(b, 1); /* source_inventory */
    bb_str(b, "s3://inv/src/all/manifest.json");
    CHECK_INT(ferry_avro_decode_onboard(codec, b->b, b->n, &out, &err), FERRY_OK);
    CHECK_STR(out.source_inventory, "s3://inv/src/all/manifest.json");
    CHECK(out.chunk_parent_event_id == NULL);
    ferry_onboard_clear(&out);
    free(b);
}

/* DatasetMigrated version 1 (schemas/dataset_migrated.v1.avsc, still embedded): an event
 * written by an older worker decodes, the version 2 counts taking their default 0. */
static void test_migrated_v1_decodes(void)
{
    uint64_t fp = 0;
    ferry_error err;
    ferry_migrated out;
    bb *b = calloc(1, sizeof(*b));

    for (const struct ferry_embedded_file *f = ferry_schemas_table; f->name; f++)
        if (!strcmp(f->name, "dataset_migrated.v1.avsc"))
            CHECK_INT(ferry_avro_fingerprint(f->text, &fp, &err), FERRY_OK);
    CHECK(fp != 0);
    CHECK(fp != ferry_avro_codec_fingerprint(codec, FERRY_AVRO_EVENT_MIGRATED));
    bb_single_object_header(b, fp);
    bb_str(b, "6f1c2a9e-3b7d-4c1e-9a51-0d2f4b8e7c33");
    bb_str(b, "sales.orders");
    bb_str(b, "s3://a/b/");
    bb_str(b, "s3://c/d/");
    bb_long(b, 42);   /* objects */
    bb_long(b, 4200); /* bytes */
    bb_long(b, 1500); /* duration_ms */
    bb_long(b, 1700000000000LL);
    bb_str(b, "w-old");
    CHECK_INT(ferry_avro_decode_migrated(codec, b->b, b->n, &out, &err), FERRY_OK);
    CHECK_STR(out.dataset, "sales.orders");
    CHECK_INT(out.objects, 42);
    CHECK_INT(out.bytes, 4200);
    CHECK_STR(out.worker, "w-old");
    CHECK_INT(out.objects_copied, 0);
    CHECK_INT(out.objects_identical, 0);
    CHECK_INT(out.objects_vanished, 0);
    CHECK_INT(out.objects_failed, 0);
    ferry_migrated_clear(&out);
    free(b);
}

static void test_crafted_bodies(void)
{
    uint64_t fp = v1_fingerprint();
    static const char *expect[V_NVARIANTS] = {
        [V_NEG_LEN] = "negative string length",
        [V_HUGE_LEN] = "exceeds",
        [V_NUL] = "NUL",
        [V_BAD_UTF8] = "UTF-8",
        [V_OVERLONG_UTF8] = "UTF-8",
        [V_BAD_BOOL] = "boolean",
        [V_UNION_IDX] = "union branch",
        [V_NEG_UNION_IDX] = "union branch",
        [V_ENUM_IDX] = "enum index",
        [V_LONG_VARINT] = "varint",
        [V_VARINT_OVERFLOW] = "overflows",
        [V_HUGE_COUNT] = "items",
        [V_MIN_COUNT] = "block count",
        [V_BAD_BLOCK_SIZE] = "block size",
        [V_WRONG_BLOCK_SIZE] = "does not match",
        [V_TRAILING] = "trailing",
    };

    for (int v = 0; v < V_NVARIANTS; v++) {
        bb *b = calloc(1, sizeof(*b));
        ferry_error err;
        ferry_onboard out;
        bb_single_object_header(b, fp);
        build_onboard(b, (enum variant)v);
        void *exact = xmemdup(b->b, b->n);
        ferry_error_clear(&err);
        ferry_rc rc = ferry_avro_decode_onboard(codec, exact, b->n, &out, &err);
        if (v == V_OK || v == V_GOOD_BLOCK_SIZE) {
            CHECK_INT(rc, FERRY_OK);
            if (rc != FERRY_OK)
                fprintf(stderr, "  variant %d: %s\n", v, err.msg);
            CHECK_STR(out.dataset, "sales");
            CHECK_STR(out.catalog_ref, "cat:1");
            CHECK(out.catalog_etag == NULL);
            CHECK_INT(out.origin, FERRY_ORIGIN_API);
            CHECK_INT(out.overwrite, FERRY_OVERWRITE_ALWAYS);
            CHECK_INT(out.include_count, 2);
            if (out.include_count == 2)
                CHECK_STR(out.include_prefixes[1], "b/");
            CHECK_INT(out.chunk_count, 0); /* v2 and v3 fields took their defaults */
            CHECK(out.chunk_parent_event_id == NULL && out.chunk_end_key == NULL);
            CHECK(out.source_inventory == NULL);
        } else {
            CHECK(is_clean_failure(rc, &err));
            CHECK_STR(err.cls, FERRY_EC_DECODE);
            if (!strstr(err.msg, expect[v])) {
                fprintf(stderr, "  variant %d: \"%s\" lacks \"%s\"\n", v, err.msg, expect[v]);
                CHECK(0);
            }
            CHECK(out.event_id == NULL && out.include_prefixes == NULL);
        }
        ferry_onboard_clear(&out);
        free(exact);
        free(b);
    }

    /* Field path in the message. */
    {
        bb *b = calloc(1, sizeof(*b));
        ferry_error err;
        ferry_onboard out;
        bb_single_object_header(b, fp);
        build_onboard(b, V_NUL);
        ferry_avro_decode_onboard(codec, b->b, b->n, &out, &err);
        CHECK(strstr(err.msg, "field dataset") != NULL);
        free(b);
    }
}

static void test_oversized_input(void)
{
    ferry_error err;
    ferry_onboard out;
    size_t n = FERRY_AVRO_MAX_EVENT_BYTES + 1;
    unsigned char *big = calloc(1, n);
    uint64_t fp = ferry_avro_codec_fingerprint(codec, FERRY_AVRO_EVENT_ONBOARD);

    big[0] = 0xC3;
    big[1] = 0x01;
    for (int i = 0; i < 8; i++)
        big[2 + i] = (unsigned char)(fp >> (8 * i));
    CHECK_INT(ferry_avro_decode_onboard(codec, big, n, &out, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_DECODE);
    CHECK(strstr(err.msg, "exceeds") != NULL);
    ferry_avro_event kind;
    CHECK_INT(ferry_avro_peek(codec, big, n, &kind, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_DECODE);

    /* Encode refuses to produce what decode would refuse. */
    ferry_onboard in = sample_onboard(0);
    void *buf = NULL;
    size_t len;
    memset(big, 'a', n - 1);
    big[n - 1] = '\0';
    in.dataset = (char *)big;
    CHECK_INT(ferry_avro_encode_onboard(codec, &in, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                        &err),
              FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_INVALID_SPEC);
    CHECK(buf == NULL);
    free(big);
}

static void test_encode_rejects_bad_structs(void)
{
    ferry_error err;
    void *buf = NULL;
    size_t len;
    ferry_onboard in;
    char *nullv[] = {"ok/", NULL};

    in = sample_onboard(1);
    in.dataset = NULL;
    CHECK_INT(ferry_avro_encode_onboard(codec, &in, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                        &err),
              FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_INVALID_SPEC);
    CHECK(strstr(err.msg, "dataset") != NULL);

    in = sample_onboard(1);
    in.requested_by = "bad\xff";
    CHECK_INT(ferry_avro_encode_onboard(codec, &in, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                        &err),
              FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_INVALID_SPEC);

    in = sample_onboard(1);
    in.origin = (ferry_origin)17;
    CHECK_INT(ferry_avro_encode_onboard(codec, &in, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                        &err),
              FERRY_ERR_PERMANENT);

    in = sample_onboard(1);
    in.include_prefixes = NULL;
    CHECK_INT(ferry_avro_encode_onboard(codec, &in, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                        &err),
              FERRY_ERR_PERMANENT);

    in = sample_onboard(1);
    in.exclude_prefixes = nullv;
    in.exclude_count = 2;
    CHECK_INT(ferry_avro_encode_onboard(codec, &in, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                        &err),
              FERRY_ERR_PERMANENT);

    CHECK_INT(ferry_avro_encode_onboard(codec, NULL, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                        &err),
              FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_avro_encode_onboard(codec, &in, (ferry_avro_framing)9, 0, &buf, &len, &err),
              FERRY_ERR_PERMANENT);

    ferry_migrated m = sample_migrated();
    m.worker = NULL;
    CHECK_INT(ferry_avro_encode_migrated(codec, &m, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                         &err),
              FERRY_ERR_PERMANENT);
    CHECK(buf == NULL);
}

static void test_utf8(void)
{
    CHECK(ferry_avro_utf8_ok("", 0));
    CHECK(ferry_avro_utf8_ok("plain ascii", 11));
    CHECK(ferry_avro_utf8_ok("\xc3\xa9\xe2\x82\xac\xf0\x9f\x9a\xa2\xf4\x8f\xbf\xbf", 13));
    CHECK(!ferry_avro_utf8_ok("a\0b", 3));             /* NUL */
    CHECK(!ferry_avro_utf8_ok("\xc0\x80", 2));         /* overlong NUL */
    CHECK(!ferry_avro_utf8_ok("\xe0\x80\xaf", 3));     /* overlong */
    CHECK(!ferry_avro_utf8_ok("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!ferry_avro_utf8_ok("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!ferry_avro_utf8_ok("\xe2\x82", 2));         /* truncated */
    CHECK(!ferry_avro_utf8_ok("\x80", 1));             /* lone continuation */
    CHECK(!ferry_avro_utf8_ok("\xc3\x28", 2));         /* bad continuation */
}

/* The validator on its own, for the types our event schemas do not use (yet). */
static ferry_rc guard(const char *schema_json, const bb *b, ferry_error *err)
{
    avro_schema_t s;
    ferry_rc rc;
    if (avro_schema_from_json_length(schema_json, strlen(schema_json), &s) != 0) {
        fprintf(stderr, "  guard schema: %s\n", avro_strerror());
        return FERRY_ERR_CANCELLED;
    }
    void *exact = xmemdup(b->b, b->n);
    ferry_error_clear(err);
    rc = ferry_avro_guard_check(s, exact, b->n, err);
    free(exact);
    avro_schema_decref(s);
    return rc;
}

static void test_guard_direct(void)
{
    static const char *all =
        "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
        "{\"name\":\"i\",\"type\":\"int\"},{\"name\":\"f\",\"type\":\"float\"},"
        "{\"name\":\"d\",\"type\":\"double\"},{\"name\":\"b\",\"type\":\"bytes\"},"
        "{\"name\":\"x\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":3}},"
        "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
        "{\"name\":\"n\",\"type\":\"null\"}]}";
    ferry_error err;
    bb *b = calloc(1, sizeof(*b));

    /* valid */
    bb_long(b, -123456);
    bb_raw(b, "\0\0\x80\x3f", 4);
    bb_raw(b, "\0\0\0\0\0\0\xf0\x3f", 8);
    bb_strn(b, "\0\xff\x01", 3); /* bytes may hold anything */
    bb_raw(b, "abc", 3);
    bb_long(b, 1);
    bb_str(b, "k");
    bb_long(b, 5);
    bb_long(b, 0);
    CHECK_INT(guard(all, b, &err), FERRY_OK);
    if (err.rc != FERRY_OK)
        fprintf(stderr, "  %s\n", err.msg);
    /* every truncation fails */
    size_t full = b->n;
    for (size_t n = 0; n < full; n++) {
        b->n = n;
        CHECK(is_clean_failure(guard(all, b, &err), &err));
    }
    /* int out of range, and an int varint longer than 5 bytes */
    b->n = 0;
    bb_long(b, (int64_t)INT32_MAX + 1);
    CHECK_INT(guard(all, b, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "out of range") != NULL);
    b->n = 0;
    bb_raw(b, "\x80\x80\x80\x80\x80\x00", 6);
    CHECK_INT(guard(all, b, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "longer than 5") != NULL);
    /* map key with a NUL */
    b->n = 0;
    bb_long(b, 1);
    bb_raw(b, "\0\0\x80\x3f", 4);
    bb_raw(b, "\0\0\0\0\0\0\xf0\x3f", 8);
    bb_strn(b, "", 0);
    bb_raw(b, "abc", 3);
    bb_long(b, 1);
    bb_strn(b, "k\0", 2);
    CHECK_INT(guard(all, b, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "field m[0]") && strstr(err.msg, "NUL"));

    /* Too many items, even of zero-size type (no byte budget bounds them). */
    b->n = 0;
    bb_long(b, FERRY_AVRO_MAX_ITEMS + 1);
    CHECK_INT(guard("{\"type\":\"array\",\"items\":\"null\"}", b, &err), FERRY_ERR_PERMANENT);
    b->n = 0;
    bb_long(b, FERRY_AVRO_MAX_ITEMS);
    bb_long(b, 0);
    CHECK_INT(guard("{\"type\":\"array\",\"items\":\"null\"}", b, &err), FERRY_OK);
    /* ...counted across blocks */
    b->n = 0;
    bb_long(b, FERRY_AVRO_MAX_ITEMS);
    bb_long(b, 1);
    bb_long(b, 0);
    CHECK_INT(guard("{\"type\":\"array\",\"items\":\"null\"}", b, &err), FERRY_ERR_PERMANENT);

    /* Recursion through a named reference is bounded. */
    b->n = 0;
    for (int i = 0; i < 100; i++)
        bb_long(b, 1);
    bb_long(b, 0);
    CHECK_INT(guard("{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"next\","
                    "\"type\":[\"null\",\"L\"]}]}",
                    b, &err),
              FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "nested") != NULL);
    free(b);
}

static void test_codec_lifecycle(void)
{
    char errstr[256];
    ferry_avro_codec_destroy(NULL);
    for (int i = 0; i < 3; i++) {
        ferry_avro_codec *c = ferry_avro_codec_new(errstr, sizeof(errstr));
        CHECK(c != NULL);
        ferry_avro_codec_destroy(c);
    }
}

int main(void)
{
    char errstr[256];

    codec = ferry_avro_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        fprintf(stderr, "ferry_avro_codec_new: %s\n", errstr);
        return 1;
    }
    RUN(test_crc64_known_answers);
    RUN(test_canonical_form_errors);
    RUN(test_our_schemas);
    RUN(test_utf8);
    RUN(test_round_trip_onboard);
    RUN(test_round_trip_migrated);
    RUN(test_confluent_ids);
    RUN(test_wrong_header);
    RUN(test_decode_older_writer);
    RUN(test_decode_differently_shaped_writer);
    RUN(test_incompatible_writers_refused);
    RUN(test_truncated_every_length);
    RUN(test_random_garbage);
    RUN(test_mutated_valid_events);
    RUN(test_crafted_bodies);
    RUN(test_migrated_v1_decodes);
    RUN(test_onboard_v2_decodes);
    RUN(test_oversized_input);
    RUN(test_encode_rejects_bad_structs);
    RUN(test_guard_direct);
    RUN(test_codec_lifecycle);
    ferry_avro_codec_destroy(codec);
    return TEST_EXIT();
}
