/* Fuzz target: the Avro event decoder, both framings, both events, as the worker and the
 * DLQ replayer see Kafka payloads.
 *
 * The codec knows the embedded schemas (single-object framing, by fingerprint) and the
 * writers of fuzz_avro_schemas.h under Schema Registry ids 1-6 (Confluent framing:
 * 0x00 + 4-byte big-endian id), so mutations of a 5-byte header reach every writer.
 * Every input goes through ferry_avro_peek, ferry_avro_decode_onboard and
 * ferry_avro_decode_migrated. Invariants checked:
 *   - a failure is FERRY_ERR_PERMANENT, class decode or unknown-schema, with a message,
 *     and leaves the output struct zeroed;
 *   - avro-c never rejects a body the guard (ferry_avro_guard.c) accepted: the guard must
 *     be at least as strict as the decoder it protects;
 *   - a decoded event has its required strings, valid UTF-8, enums in range, and is
 *     consistent with ferry_avro_peek;
 *   - it re-encodes (current schema) and decodes back to the same event;
 *   - ferry_onboard_validate runs on it (its verdict is not checked: hostile content is
 *     expected to decode and then be refused there). */
#include "fuzz.h"
#include "fuzz_avro_schemas.h"

#include "ferry_avro.h"
#include "ferry_avro_internal.h"
#include "ferry_validate.h"

static ferry_avro_codec *codec;

static ferry_avro_codec *get_codec(void)
{
    char errstr[512];
    ferry_error err;

    if (codec)
        return codec;
    codec = ferry_avro_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        fprintf(stderr, "fuzz_avro: codec: %s\n", errstr);
        abort();
    }
    for (size_t i = 0; i < FUZZ_AVRO_NWRITERS; i++) {
        const fuzz_avro_writer *w = &fuzz_avro_writers[i];
        const char *json = w->json ? w->json : ferry_avro_codec_schema_json(codec, w->kind);
        if (ferry_avro_codec_register_id(codec, w->id, json, &err) != FERRY_OK) {
            fprintf(stderr, "fuzz_avro: writer %s: %s\n", w->name, err.msg);
            abort();
        }
    }
    return codec;
}

static void check_failure(ferry_rc rc, const ferry_error *err, const void *out, size_t out_size)
{
    static const unsigned char zero[sizeof(ferry_onboard) > sizeof(ferry_migrated)
                                        ? sizeof(ferry_onboard)
                                        : sizeof(ferry_migrated)];
    FUZZ_ASSERT(rc == FERRY_ERR_PERMANENT);
    FUZZ_ASSERT(err->rc == FERRY_ERR_PERMANENT);
    FUZZ_ASSERT(err->msg[0] != '\0');
    FUZZ_ASSERT(strcmp(err->cls, FERRY_EC_DECODE) == 0 ||
                strcmp(err->cls, FERRY_EC_SCHEMA) == 0);
    /* The guard let through something avro-c then refused: they disagree on the format. */
    if (strstr(err->msg, "avro-c cannot read")) {
        fprintf(stderr, "fuzz_avro: guard accepted a body avro-c refused: %s\n", err->msg);
        abort();
    }
    FUZZ_ASSERT(memcmp(out, zero, out_size) == 0);
}

static void check_text(const char *s, int nullable)
{
    if (!s) {
        FUZZ_ASSERT(nullable);
        return;
    }
    FUZZ_ASSERT(ferry_avro_utf8_ok(s, strlen(s)));
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same_strv(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!same_str(a[i], b[i]))
            return 0;
    return 1;
}

static void check_onboard(ferry_avro_codec *c, const ferry_onboard *ev)
{
    ferry_onboard back;
    ferry_error err;
    void *buf = NULL;
    size_t len = 0;

    check_text(ev->event_id, 0);
    check_text(ev->dataset, 0);
    check_text(ev->source_uri, 0);
    check_text(ev->target_uri, 0);
    check_text(ev->requested_by, 0);
    check_text(ev->catalog_ref, 1);
    check_text(ev->catalog_etag, 1);
    FUZZ_ASSERT((unsigned)ev->origin <= FERRY_ORIGIN_REPLAY);
    FUZZ_ASSERT((unsigned)ev->overwrite <= FERRY_OVERWRITE_NEVER);
    FUZZ_ASSERT(ev->verify == 0 || ev->verify == 1);
    FUZZ_ASSERT(ev->include_count <= FERRY_AVRO_MAX_ITEMS);
    FUZZ_ASSERT(ev->exclude_count <= FERRY_AVRO_MAX_ITEMS);
    FUZZ_ASSERT(!ev->include_count || ev->include_prefixes);
    FUZZ_ASSERT(!ev->exclude_count || ev->exclude_prefixes);
    for (size_t i = 0; i < ev->include_count; i++)
        check_text(ev->include_prefixes[i], 0);
    for (size_t i = 0; i < ev->exclude_count; i++)
        check_text(ev->exclude_prefixes[i], 0);
    check_text(ev->chunk_parent_event_id, 1);
    check_text(ev->chunk_start_after, 1);
    check_text(ev->chunk_end_key, 1);
    check_text(ev->source_inventory, 1);

    (void)ferry_onboard_validate(ev, &err);

    /* Round trip through the current schema. */
    if (ferry_avro_encode_onboard(c, ev, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len, &err) !=
        FERRY_OK) {
        fprintf(stderr, "fuzz_avro: a decoded DatasetOnboard does not encode: %s\n", err.msg);
        abort();
    }
    memset(&back, 0, sizeof(back));
    if (ferry_avro_decode_onboard(c, buf, len, &back, &err) != FERRY_OK) {
        fprintf(stderr, "fuzz_avro: a re-encoded DatasetOnboard does not decode: %s\n",
                err.msg);
        abort();
    }
    FUZZ_ASSERT(same_str(ev->event_id, back.event_id));
    FUZZ_ASSERT(same_str(ev->dataset, back.dataset));
    FUZZ_ASSERT(same_str(ev->source_uri, back.source_uri));
    FUZZ_ASSERT(same_str(ev->target_uri, back.target_uri));
    FUZZ_ASSERT(ev->requested_at_ms == back.requested_at_ms);
    FUZZ_ASSERT(same_str(ev->requested_by, back.requested_by));
    FUZZ_ASSERT(ev->origin == back.origin);
    FUZZ_ASSERT(same_str(ev->catalog_ref, back.catalog_ref));
    FUZZ_ASSERT(same_str(ev->catalog_etag, back.catalog_etag));
    FUZZ_ASSERT(ev->verify == back.verify);
    FUZZ_ASSERT(ev->overwrite == back.overwrite);
    FUZZ_ASSERT(same_strv(ev->include_prefixes, ev->include_count, back.include_prefixes,
                          back.include_count));
    FUZZ_ASSERT(same_strv(ev->exclude_prefixes, ev->exclude_count, back.exclude_prefixes,
                          back.exclude_count));
    FUZZ_ASSERT(same_str(ev->chunk_parent_event_id, back.chunk_parent_event_id));
    FUZZ_ASSERT(ev->chunk_index == back.chunk_index);
    FUZZ_ASSERT(ev->chunk_count == back.chunk_count);
    FUZZ_ASSERT(same_str(ev->chunk_start_after, back.chunk_start_after));
    FUZZ_ASSERT(same_str(ev->chunk_end_key, back.chunk_end_key));
    FUZZ_ASSERT(same_str(ev->source_inventory, back.source_inventory));
    ferry_onboard_clear(&back);
    free(buf);
}

static void check_migrated(ferry_avro_codec *c, const ferry_migrated *ev)
{
    ferry_migrated back;
    ferry_error err;
    void *buf = NULL;
    size_t len = 0;

    check_text(ev->event_id, 0);
    check_text(ev->dataset, 0);
    check_text(ev->source_uri, 0);
    check_text(ev->target_uri, 0);
    check_text(ev->worker, 0);

    if (ferry_avro_encode_migrated(c, ev, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len, &err) !=
        FERRY_OK) {
        fprintf(stderr, "fuzz_avro: a decoded DatasetMigrated does not encode: %s\n", err.msg);
        abort();
    }
    memset(&back, 0, sizeof(back));
    if (ferry_avro_decode_migrated(c, buf, len, &back, &err) != FERRY_OK) {
        fprintf(stderr, "fuzz_avro: a re-encoded DatasetMigrated does not decode: %s\n",
                err.msg);
        abort();
    }
    FUZZ_ASSERT(same_str(ev->event_id, back.event_id));
    FUZZ_ASSERT(same_str(ev->dataset, back.dataset));
    FUZZ_ASSERT(same_str(ev->source_uri, back.source_uri));
    FUZZ_ASSERT(same_str(ev->target_uri, back.target_uri));
    FUZZ_ASSERT(ev->objects == back.objects);
    FUZZ_ASSERT(ev->bytes == back.bytes);
    FUZZ_ASSERT(ev->duration_ms == back.duration_ms);
    FUZZ_ASSERT(ev->finished_at_ms == back.finished_at_ms);
    FUZZ_ASSERT(same_str(ev->worker, back.worker));
    ferry_migrated_clear(&back);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ferry_avro_codec *c = get_codec();
    ferry_avro_event kind = (ferry_avro_event)-1;
    ferry_onboard onb;
    ferry_migrated mig;
    ferry_error err;
    ferry_rc rc, peek_rc;

    peek_rc = ferry_avro_peek(c, data, size, &kind, &err);
    if (peek_rc != FERRY_OK) {
        FUZZ_ASSERT(peek_rc == FERRY_ERR_PERMANENT && err.msg[0]);
        FUZZ_ASSERT(strcmp(err.cls, FERRY_EC_DECODE) == 0 ||
                    strcmp(err.cls, FERRY_EC_SCHEMA) == 0);
    }

    memset(&onb, 0, sizeof(onb));
    rc = ferry_avro_decode_onboard(c, data, size, &onb, &err);
    if (rc == FERRY_OK) {
        FUZZ_ASSERT(peek_rc == FERRY_OK && kind == FERRY_AVRO_EVENT_ONBOARD);
        check_onboard(c, &onb);
        ferry_onboard_clear(&onb);
    } else {
        check_failure(rc, &err, &onb, sizeof(onb));
    }

    memset(&mig, 0, sizeof(mig));
    rc = ferry_avro_decode_migrated(c, data, size, &mig, &err);
    if (rc == FERRY_OK) {
        FUZZ_ASSERT(peek_rc == FERRY_OK && kind == FERRY_AVRO_EVENT_MIGRATED);
        check_migrated(c, &mig);
        ferry_migrated_clear(&mig);
    } else {
        check_failure(rc, &err, &mig, sizeof(mig));
    }
    return 0;
}
