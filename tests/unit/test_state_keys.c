/* Pure logic of ferry_state / ferry_redis: key building (and refusing hostile dataset
 * names), state-key parsing, spec hash, status names, Redis URL and password file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_chunks.h"
#include "ferry_dlq.h"
#include "ferry_mpu.h"
#include "ferry_redis.h"
#include "ferry_state.h"
#include "ferry_test.h"

static void test_key_ok(void)
{
    char buf[FERRY_STATE_KEY_MAX];
    ferry_error err;

    CHECK_INT(ferry_state_key(buf, sizeof(buf), "sales.orders-v2", FERRY_STATE_KEY_STATE, &err),
              FERRY_OK);
    CHECK_STR(buf, "ferry:{sales.orders-v2}:state");
    CHECK_INT(ferry_state_key(buf, sizeof(buf), "a", FERRY_STATE_KEY_LEASE, &err), FERRY_OK);
    CHECK_STR(buf, "ferry:{a}:lease");
    CHECK_INT(ferry_state_key(buf, sizeof(buf), "a", FERRY_STATE_KEY_FENCE, &err), FERRY_OK);
    CHECK_STR(buf, "ferry:{a}:fence");

    /* exactly 200 bytes is allowed; the longest key still fits FERRY_STATE_KEY_MAX */
    char name[FERRY_STATE_DATASET_MAX + 2];
    memset(name, 'x', FERRY_STATE_DATASET_MAX);
    name[FERRY_STATE_DATASET_MAX] = '\0';
    CHECK(ferry_state_dataset_ok(name));
    CHECK_INT(ferry_state_key(buf, sizeof(buf), name, FERRY_STATE_KEY_STATE, &err), FERRY_OK);
    CHECK_INT(strlen(buf), FERRY_STATE_DATASET_MAX + strlen("ferry:{}:state"));
}

static void test_key_hostile(void)
{
    static const char *const bad[] = {
        "",     "a{b",       "a}b",     "{",    "}",         "x}:lease", "a\nb",
        "a\rb", "tab\there", "del\x7f", "\x01", "ferry:{x}", NULL,
    };
    char buf[FERRY_STATE_KEY_MAX];
    char longname[FERRY_STATE_DATASET_MAX + 2];
    ferry_error err;

    for (int i = 0; bad[i]; i++) {
        ferry_error_clear(&err);
        CHECK(!ferry_state_dataset_ok(bad[i]));
        memset(buf, 'Z', sizeof(buf));
        CHECK_INT(ferry_state_key(buf, sizeof(buf), bad[i], FERRY_STATE_KEY_STATE, &err),
                  FERRY_ERR_PERMANENT);
        CHECK_STR(err.cls, FERRY_EC_INVALID_SPEC);
        CHECK_STR(buf, ""); /* nothing half-built is left behind */
    }
    CHECK(!ferry_state_dataset_ok(NULL));
    CHECK_INT(ferry_state_key(buf, sizeof(buf), NULL, "state", &err), FERRY_ERR_PERMANENT);

    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0'; /* 201 bytes */
    CHECK(!ferry_state_dataset_ok(longname));
    CHECK_INT(ferry_state_key(buf, sizeof(buf), longname, "state", &err), FERRY_ERR_PERMANENT);

    /* names the real validator refuses but that cannot break the key stay accepted here */
    CHECK(ferry_state_dataset_ok("UPPER case:colon*star"));
    CHECK(ferry_state_dataset_ok("caf\xc3\xa9"));
}

static void test_key_suffix_and_buffer(void)
{
    char buf[FERRY_STATE_KEY_MAX], small[10];
    ferry_error err;

    CHECK_INT(ferry_state_key(buf, sizeof(buf), "a", "", &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_INTERNAL);
    CHECK_INT(ferry_state_key(buf, sizeof(buf), "a", "St", &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_state_key(buf, sizeof(buf), "a", "x}y", &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_state_key(buf, sizeof(buf), "a", NULL, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_state_key(buf, sizeof(buf), "a", "chunks", &err), FERRY_OK);
    CHECK_STR(buf, "ferry:{a}:chunks");
    CHECK_INT(ferry_state_key(small, sizeof(small), "abcdef", "state", &err),
              FERRY_ERR_PERMANENT);
    CHECK_STR(small, "");
    /* err may be NULL */
    CHECK_INT(ferry_state_key(buf, sizeof(buf), "a{", "state", NULL), FERRY_ERR_PERMANENT);
}

static void test_key_dataset(void)
{
    char out[FERRY_STATE_DATASET_MAX + 1];
    const char *k;

    k = "ferry:{sales.orders}:state";
    CHECK_INT(ferry_state_key_dataset(k, strlen(k), out, sizeof(out)), 0);
    CHECK_STR(out, "sales.orders");

    static const char *const bad[] = {
        "ferry:{}:state",
        "ferry:{a}:lease",
        "ferry:a:state",
        "ferry:{a}:state:x",
        "ferry:{a}b}:state",
        "ferry:{a{b}:state",
        "other:{a}:state",
        "ferry:{",
        "",
        NULL,
    };
    for (int i = 0; bad[i]; i++)
        CHECK_INT(ferry_state_key_dataset(bad[i], strlen(bad[i]), out, sizeof(out)), -1);

    /* embedded NUL (binary keys from SCAN) and a tiny output buffer */
    static const char nul[] = "ferry:{a\0b}:state";
    CHECK_INT(ferry_state_key_dataset(nul, sizeof(nul) - 1, out, sizeof(out)), -1);
    char tiny[3];
    k = "ferry:{abc}:state";
    CHECK_INT(ferry_state_key_dataset(k, strlen(k), tiny, sizeof(tiny)), -1);

    /* round trip with ferry_state_key */
    char key[FERRY_STATE_KEY_MAX];
    CHECK_INT(ferry_state_key(key, sizeof(key), "x-1_y.z", "state", NULL), FERRY_OK);
    CHECK_INT(ferry_state_key_dataset(key, strlen(key), out, sizeof(out)), 0);
    CHECK_STR(out, "x-1_y.z");
}

static void test_spec_hash(void)
{
    char *inc[] = {"a/", "b/"}, *inc2[] = {"a/b/"}, *exc[] = {"tmp/"};
    ferry_onboard ev = {0};
    char h1[17], h2[17], h3[17];

    ev.source_uri = "s3://src/p";
    ev.target_uri = "s3://dst/p";
    ev.verify = 1;
    ferry_state_spec_hash(&ev, h1);
    CHECK_INT(strlen(h1), 16);
    CHECK_INT(strspn(h1, "0123456789abcdef"), 16);
    ferry_state_spec_hash(&ev, h2);
    CHECK_STR(h1, h2); /* deterministic */
    /* Pinned: the hash is stored in Redis and in every change record, so a release that
     * changes it for an unchanged spec would re-publish and re-copy every dataset. */
    CHECK_STR(h1, "c43bb5c0a6826c6b");
    ev.include_prefixes = inc;
    ev.include_count = 2;
    ev.exclude_prefixes = exc;
    ev.exclude_count = 1;
    ferry_state_spec_hash(&ev, h2);
    CHECK_STR(h2, "03a8775e201f0541");
    ev.include_prefixes = ev.exclude_prefixes = NULL;
    ev.include_count = ev.exclude_count = 0;

    ev.event_id = "not part of the spec";
    ev.requested_by = "alice";
    ferry_state_spec_hash(&ev, h2);
    CHECK_STR(h1, h2);

    ev.target_uri = "s3://dst/q";
    ferry_state_spec_hash(&ev, h2);
    CHECK(strcmp(h1, h2) != 0);
    ev.target_uri = "s3://dst/p";

    ev.verify = 0;
    ferry_state_spec_hash(&ev, h2);
    CHECK(strcmp(h1, h2) != 0);
    ev.verify = 1;

    ev.overwrite = FERRY_OVERWRITE_NEVER;
    ferry_state_spec_hash(&ev, h2);
    CHECK(strcmp(h1, h2) != 0);
    ev.overwrite = FERRY_OVERWRITE_IF_DIFFERENT;

    /* length prefixes: ["a/","b/"] differs from ["a/b/"]; include differs from exclude */
    ev.include_prefixes = inc;
    ev.include_count = 2;
    ferry_state_spec_hash(&ev, h2);
    ev.include_prefixes = inc2;
    ev.include_count = 1;
    ferry_state_spec_hash(&ev, h3);
    CHECK(strcmp(h2, h3) != 0);
    CHECK(strcmp(h1, h2) != 0);
    ev.include_prefixes = NULL;
    ev.include_count = 0;
    ev.exclude_prefixes = exc;
    ev.exclude_count = 1;
    ferry_state_spec_hash(&ev, h2);
    ev.exclude_prefixes = NULL;
    ev.exclude_count = 0;
    ev.include_prefixes = exc;
    ev.include_count = 1;
    ferry_state_spec_hash(&ev, h3);
    CHECK(strcmp(h2, h3) != 0);

    /* source_inventory is not in it: a hint for splitting that S3 renames every day */
    ev.include_prefixes = NULL;
    ev.include_count = 0;
    ev.source_inventory = "s3://inv/src/all/2026-12-01T01-00Z/manifest.json";
    ferry_state_spec_hash(&ev, h2);
    CHECK_STR(h1, h2);
    ev.source_inventory = NULL;

    /* source/target swapped is a different copy */
    ferry_onboard sw = {0};
    sw.source_uri = "s3://dst/p";
    sw.target_uri = "s3://src/p";
    sw.verify = 1;
    ferry_state_spec_hash(&sw, h2);
    CHECK(strcmp(h1, h2) != 0);
}

static void test_status_names(void)
{
    ferry_mig_status s;

    CHECK_STR(ferry_mig_status_name(FERRY_MIG_NONE), "none");
    CHECK_STR(ferry_mig_status_name(FERRY_MIG_RUNNING), "running");
    CHECK_STR(ferry_mig_status_name((ferry_mig_status)99), "unknown");
    CHECK_INT(ferry_mig_status_parse("done", &s), 0);
    CHECK_INT(s, FERRY_MIG_DONE);
    CHECK_INT(ferry_mig_status_parse("pending", &s), 0);
    CHECK_INT(s, FERRY_MIG_PENDING);
    CHECK_INT(ferry_mig_status_parse("failed", &s), 0);
    CHECK_INT(s, FERRY_MIG_FAILED);
    CHECK_INT(ferry_mig_status_parse("none", &s), -1); /* not a stored value */
    CHECK_INT(ferry_mig_status_parse("DONE", &s), -1);
    CHECK_INT(ferry_mig_status_parse(NULL, &s), -1);
}

static void test_url_ok(void)
{
    ferry_redis_conf c;
    char es[256];

    ferry_redis_conf_init(&c);
    CHECK_STR(c.host, "127.0.0.1");
    CHECK_INT(c.port, 6379);
    CHECK_INT(c.connect_timeout_ms, FERRY_REDIS_DEFAULT_CONNECT_TIMEOUT_MS);

    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://10.1.2.3:6380", es, sizeof(es)), 0);
    CHECK_STR(c.host, "10.1.2.3");
    CHECK_INT(c.port, 6380);
    CHECK_INT(c.db, 0);
    CHECK_STR(c.username, "");
    CHECK_STR(c.password, "");

    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://redis.svc.local/", es, sizeof(es)), 0);
    CHECK_STR(c.host, "redis.svc.local");
    CHECK_INT(c.port, 6379);

    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://:s3cret@h:1/15", es, sizeof(es)), 0);
    CHECK_STR(c.host, "h");
    CHECK_INT(c.port, 1);
    CHECK_INT(c.db, 15);
    CHECK_STR(c.username, "");
    CHECK_STR(c.password, "s3cret");

    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://ferry:pw@h:65535/0", es, sizeof(es)), 0);
    CHECK_STR(c.username, "ferry");
    CHECK_STR(c.password, "pw");
    CHECK_INT(c.port, 65535);

    /* user only: the password comes from a file; a previous URL's password is dropped */
    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://ferry@h:7000/2", es, sizeof(es)), 0);
    CHECK_STR(c.username, "ferry");
    CHECK_STR(c.password, "");
    CHECK_INT(c.db, 2);

    /* percent-encoding in user and password; raw '@' and ':' inside the password */
    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://u%40x:p%3Aw%25@h:1", es, sizeof(es)), 0);
    CHECK_STR(c.username, "u@x");
    CHECK_STR(c.password, "p:w%");
    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://u:a@b:c@h:2", es, sizeof(es)), 0);
    CHECK_STR(c.username, "u");
    CHECK_STR(c.password, "a@b:c");
    CHECK_STR(c.host, "h");

    /* IPv6 */
    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://[::1]:6390/3", es, sizeof(es)), 0);
    CHECK_STR(c.host, "::1");
    CHECK_INT(c.port, 6390);
    CHECK_INT(c.db, 3);
    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://[fe80::1]", es, sizeof(es)), 0);
    CHECK_STR(c.host, "fe80::1");
    CHECK_INT(c.port, 6379);

    /* timeouts are not the URL's business */
    c.connect_timeout_ms = 123;
    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://h:1", es, sizeof(es)), 0);
    CHECK_INT(c.connect_timeout_ms, 123);
    ferry_redis_conf_clear(&c);
    CHECK_STR(c.password, "");
}

static void test_url_bad(void)
{
    static const char *const bad[] = {
        "",
        "http://h:1",
        "redis:/h:1",
        "redis://",
        "redis://:1",
        "redis://h:",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:99999999999",
        "redis://h:12ab",
        "redis://h:-1",
        "redis://h:1/x",
        "redis://h:1/-1",
        "redis://h:1/2/3",
        "redis://h:1/1x",
        "redis://h:1?db=2",
        "redis://h:1#frag",
        "redis://h h:1",
        "redis://h\n:1",
        "redis://u:p%zz@h:1",
        "redis://u:p%4@h:1",
        "redis://u:p%00@h:1",
        "redis://u%0a:p@h:1",
        "redis://[::1:6379",
        "redis://[::1]x:6379",
        "redis://::1:6379",
        "redis://h%41:1",
        "redis://u:p@",
        NULL,
    };
    ferry_redis_conf c, before;
    char es[256];

    ferry_redis_conf_init(&c);
    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://keep:me@orig:42/7", es, sizeof(es)), 0);
    before = c;
    for (int i = 0; bad[i]; i++) {
        es[0] = '\0';
        if (ferry_redis_conf_parse_url(&c, bad[i], es, sizeof(es)) != -1) {
            fprintf(stderr, "accepted bad URL: %s\n", bad[i]);
            ferry_test_failures++;
        }
        CHECK(es[0] != '\0');
        CHECK(memcmp(&c, &before, sizeof(c)) == 0); /* untouched on error */
    }
    CHECK_INT(ferry_redis_conf_parse_url(&c, NULL, es, sizeof(es)), -1);

    CHECK_INT(ferry_redis_conf_parse_url(&c, "rediss://h:6380", es, sizeof(es)), -1);
    CHECK(strstr(es, "TLS") != NULL);

    /* the password never shows up in an error message */
    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://u:hunter2%zz@h:1", es, sizeof(es)), -1);
    CHECK(strstr(es, "hunter2") == NULL);
    CHECK_INT(ferry_redis_conf_parse_url(&c, "redis://u:hunter2@h:99999", es, sizeof(es)), -1);
    CHECK(strstr(es, "hunter2") == NULL);

    /* too long a password for the field */
    char url[1024];
    int n = snprintf(url, sizeof(url), "redis://:");
    memset(url + n, 'p', 600);
    snprintf(url + n + 600, sizeof(url) - (size_t)n - 600, "@h:1");
    CHECK_INT(ferry_redis_conf_parse_url(&c, url, es, sizeof(es)), -1);
    CHECK(strstr(es, "too long") != NULL);
    ferry_redis_conf_clear(&c);
}

static void write_file(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK_INT(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void test_password_file(void)
{
    char path[] = "/tmp/ferry-test-pw-XXXXXX";
    ferry_redis_conf c;
    char es[256];
    int fd = mkstemp(path);

    CHECK(fd >= 0);
    if (fd < 0)
        return;
    close(fd);
    ferry_redis_conf_init(&c);

    write_file(path, "s3cret\n", 7);
    CHECK_INT(ferry_redis_conf_read_password_file(&c, path, es, sizeof(es)), 0);
    CHECK_STR(c.password, "s3cret");

    write_file(path, "with space\r\n", 12);
    CHECK_INT(ferry_redis_conf_read_password_file(&c, path, es, sizeof(es)), 0);
    CHECK_STR(c.password, "with space");

    write_file(path, "no-newline", 10);
    CHECK_INT(ferry_redis_conf_read_password_file(&c, path, es, sizeof(es)), 0);
    CHECK_STR(c.password, "no-newline");

    write_file(path, "\n", 1);
    CHECK_INT(ferry_redis_conf_read_password_file(&c, path, es, sizeof(es)), -1);
    CHECK_STR(c.password, "no-newline"); /* unchanged on error */

    write_file(path, "a\0b", 3);
    CHECK_INT(ferry_redis_conf_read_password_file(&c, path, es, sizeof(es)), -1);

    char big[600];
    memset(big, 'x', sizeof(big));
    write_file(path, big, sizeof(big));
    CHECK_INT(ferry_redis_conf_read_password_file(&c, path, es, sizeof(es)), -1);
    CHECK(strstr(es, "longer") != NULL);
    CHECK(strstr(es, "xxxx") == NULL);

    /* exactly the field size minus one, plus newline: fits */
    memset(big, 'y', sizeof(c.password) - 1);
    big[sizeof(c.password) - 1] = '\n';
    write_file(path, big, sizeof(c.password));
    CHECK_INT(ferry_redis_conf_read_password_file(&c, path, es, sizeof(es)), 0);
    CHECK_INT(strlen(c.password), sizeof(c.password) - 1);

    unlink(path);
    CHECK_INT(ferry_redis_conf_read_password_file(&c, path, es, sizeof(es)), -1);
    CHECK(strstr(es, path) != NULL);
    ferry_redis_conf_clear(&c);
}

static void test_new_validates(void)
{
    ferry_redis_conf c;
    ferry_redis *r;
    char es[256];

    ferry_redis_conf_init(&c);
    r = ferry_redis_new(&c, es, sizeof(es)); /* does not connect */
    CHECK(r != NULL);
    CHECK_STR(ferry_redis_describe(r), "127.0.0.1:6379/0");
    ferry_redis_destroy(r);
    ferry_redis_destroy(NULL);

    snprintf(c.username, sizeof(c.username), "ferry");
    CHECK(ferry_redis_new(&c, es, sizeof(es)) == NULL);
    CHECK(strstr(es, "without a password") != NULL);
    snprintf(c.password, sizeof(c.password), "topsecret");
    r = ferry_redis_new(&c, es, sizeof(es));
    CHECK(r != NULL);
    CHECK(strstr(ferry_redis_describe(r), "topsecret") == NULL);
    CHECK(strstr(ferry_redis_describe(r), "ferry") == NULL);
    ferry_redis_destroy(r);

    ferry_redis_conf_init(&c);
    c.port = 0;
    CHECK(ferry_redis_new(&c, es, sizeof(es)) == NULL);
    ferry_redis_conf_init(&c);
    c.command_timeout_ms = 0;
    CHECK(ferry_redis_new(&c, es, sizeof(es)) == NULL);
    ferry_redis_conf_init(&c);
    c.host[0] = '\0';
    CHECK(ferry_redis_new(&c, es, sizeof(es)) == NULL);
    ferry_redis_conf_init(&c);
    snprintf(c.host, sizeof(c.host), "::1");
    r = ferry_redis_new(&c, es, sizeof(es));
    CHECK(r != NULL);
    CHECK_STR(ferry_redis_describe(r), "[::1]:6379/0");
    ferry_redis_destroy(r);
}

/* Hashes other modules store in Redis and Kafka (multipart records, chunk event ids, DLQ
 * fingerprints), pinned: a change to them would orphan uploads, re-run chunks and replay
 * dead letters twice. The values were computed before these modules shared
 * ferry_fnv1a64. */
static void test_stored_hashes(void)
{
    char key[FERRY_MPU_KEY_MAX], id[37];
    ferry_error err;

    CHECK_INT(ferry_mpu_key(key, sizeof(key), "ds-1", "bucket", "a/b c.bin", &err), FERRY_OK);
    CHECK_STR(key, "ferry:{ds-1}:mpu:8ac7b4da55379cd5");
    ferry_chunks_event_id("5f0c2a9e-7b1d-4e8f-a3c6-1d2e3f405162", 1000, id);
    CHECK_STR(id, "aa782d49-af69-461a-a2e7-e050f8cd0dd7");
    CHECK(ferry_dlq_fingerprint("k", 1, "value", 5, 12345) == 0x5e4aee95a6653fc6ULL);
}

int main(void)
{
    RUN(test_key_ok);
    RUN(test_key_hostile);
    RUN(test_key_suffix_and_buffer);
    RUN(test_key_dataset);
    RUN(test_spec_hash);
    RUN(test_stored_hashes);
    RUN(test_status_names);
    RUN(test_url_ok);
    RUN(test_url_bad);
    RUN(test_password_file);
    RUN(test_new_validates);
    return TEST_EXIT();
}
