/* ferry-eventtool: writes one raw Kafka message value to stdout, for tests that need
 * events the producer would refuse (poison pills). Send it with `kcat -P ... FILE`.
 *   onboard --dataset D --source U --target U [--event-id ID] [--patch-dataset HEX]
 *       a DatasetOnboard with NO validation; --patch-dataset overwrites the encoded
 *       dataset bytes (same length as D) with HEX, e.g. to put a NUL inside the name
 *   migrated    a valid DatasetMigrated (the wrong record type for the onboard topic)
 *   unknown-schema   a valid-looking single-object header with an unknown fingerprint
 *   garbage N        N pseudo-random bytes */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_avro.h"
#include "ferry_util.h"

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int emit(const void *buf, size_t len)
{
    return fwrite(buf, 1, len, stdout) == len ? 0 : 1;
}

int main(int argc, char **argv)
{
    char errstr[256], uuid[40];
    ferry_error err = {0};
    ferry_avro_codec *codec;
    void *buf = NULL;
    size_t len = 0;
    int rc = 1;

    if (argc < 2) {
        fprintf(stderr, "usage: ferry-eventtool onboard|migrated|unknown-schema|garbage ...\n");
        return 2;
    }
    if (!(codec = ferry_avro_codec_new(errstr, sizeof(errstr)))) {
        fprintf(stderr, "eventtool: %s\n", errstr);
        return 1;
    }
    ferry_uuid_v4(uuid, sizeof(uuid));
    if (!strcmp(argv[1], "onboard")) {
        ferry_onboard ev = {0};
        const char *patch = NULL;
        ev.event_id = uuid;
        ev.dataset = "";
        ev.source_uri = "";
        ev.target_uri = "";
        ev.requested_by = "eventtool";
        ev.requested_at_ms = ferry_now_ms();
        ev.origin = FERRY_ORIGIN_CLI;
        ev.verify = 1;
        for (int i = 2; i + 1 < argc; i += 2) {
            if (!strcmp(argv[i], "--dataset"))
                ev.dataset = argv[i + 1];
            else if (!strcmp(argv[i], "--source"))
                ev.source_uri = argv[i + 1];
            else if (!strcmp(argv[i], "--target"))
                ev.target_uri = argv[i + 1];
            else if (!strcmp(argv[i], "--event-id"))
                ev.event_id = argv[i + 1];
            else if (!strcmp(argv[i], "--patch-dataset"))
                patch = argv[i + 1];
        }
        if (ferry_avro_encode_onboard(codec, &ev, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                      &err) != FERRY_OK) {
            fprintf(stderr, "eventtool: %s\n", err.msg);
            goto out;
        }
        if (patch) {
            size_t n = strlen(ev.dataset);
            unsigned char *p = memmem(buf, len, ev.dataset, n);
            if (!p || strlen(patch) != 2 * n) {
                fprintf(stderr, "eventtool: --patch-dataset needs %zu hex bytes\n", n);
                goto out;
            }
            for (size_t i = 0; i < n; i++)
                p[i] = (unsigned char)(hexval(patch[2 * i]) << 4 | hexval(patch[2 * i + 1]));
        }
        rc = emit(buf, len);
    } else if (!strcmp(argv[1], "migrated")) {
        ferry_migrated m = {
            uuid, "some-dataset", "s3://a/b", "s3://c/d", 1, 2, 3, 4, "w", 1, 0, 0, 0};
        if (ferry_avro_encode_migrated(codec, &m, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                       &err) != FERRY_OK) {
            fprintf(stderr, "eventtool: %s\n", err.msg);
            goto out;
        }
        rc = emit(buf, len);
    } else if (!strcmp(argv[1], "unknown-schema")) {
        unsigned char b[32] = {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 2, 'x'};
        rc = emit(b, sizeof(b));
    } else if (!strcmp(argv[1], "garbage") && argc > 2) {
        size_t n = (size_t)atol(argv[2]);
        unsigned char *b = malloc(n ? n : 1);
        for (size_t i = 0; b && i < n; i++)
            b[i] = (unsigned char)ferry_rand_below(256);
        rc = b ? emit(b, n) : 1;
        free(b);
    } else {
        fprintf(stderr, "eventtool: unknown command %s\n", argv[1]);
        rc = 2;
    }
out:
    free(buf);
    ferry_avro_codec_destroy(codec);
    return rc;
}
