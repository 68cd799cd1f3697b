/* S3 Inventory beyond one line: manifest.json, gzip data files read line by line, and the
 * sample of keys that chunk bounds come from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ferry_inventory.h"
#include "ferry_test.h"

static ferry_rc parse_manifest(const char *json, ferry_inventory_manifest *m, ferry_error *err)
{
    return ferry_inventory_manifest_parse(json, strlen(json), m, err);
}

static void test_manifest(void)
{
    ferry_inventory_manifest m;
    ferry_error err;

    /* as AWS writes it (trimmed) */
    CHECK_INT(parse_manifest(
                  "{\"sourceBucket\":\"src-bucket\","
                  "\"destinationBucket\":\"arn:aws:s3:::inv-bucket\",\"version\":\"2016-11-30\","
                  "\"creationTimestamp\":\"1514944800000\",\"fileFormat\":\"CSV\","
                  "\"fileSchema\":\"Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size\","
                  "\"files\":[{\"key\":\"inv/src-bucket/data/a.csv.gz\",\"size\":10,"
                  "\"MD5checksum\":\"f11166069f1990abeb9c97ace9cdfabc\"},"
                  "{\"key\":\"inv/src-bucket/data/b.csv.gz\"}]}",
                  &m, &err),
              FERRY_OK);
    CHECK_STR(m.source_bucket, "src-bucket");
    CHECK_INT(m.schema.nfields, 6);
    CHECK_INT(m.schema.is_latest, 3);
    CHECK_INT(m.nfiles, 2);
    CHECK_STR(m.files[0], "inv/src-bucket/data/a.csv.gz");
    CHECK_STR(m.files_md5[0], "f11166069f1990abeb9c97ace9cdfabc");
    CHECK_STR(m.files[1], "inv/src-bucket/data/b.csv.gz");
    CHECK(m.files_md5[1] == NULL);
    ferry_inventory_manifest_clear(&m);

    /* refused, each with a reason */
    static const struct {
        const char *json, *says;
    } bad[] = {
        {"{", "not JSON"},
        {"[]", "not a JSON object"},
        {"{\"sourceBucket\":\"s\",\"fileFormat\":\"Parquet\",\"fileSchema\":\"Bucket,Key\","
         "\"files\":[{\"key\":\"k\"}]}",
         "only CSV inventories are read"},
        {"{\"fileSchema\":\"Bucket,Key\",\"files\":[{\"key\":\"k\"}]}", "sourceBucket"},
        {"{\"sourceBucket\":\"Bad_Bucket\",\"fileSchema\":\"Bucket,Key\","
         "\"files\":[{\"key\":\"k\"}]}",
         "sourceBucket"},
        {"{\"sourceBucket\":\"src\",\"fileSchema\":\"Key,Size\",\"files\":[{\"key\":\"k\"}]}",
         "Bucket or Key"},
        {"{\"sourceBucket\":\"src\",\"fileSchema\":\"Bucket,Key\",\"files\":[]}", "no files"},
        {"{\"sourceBucket\":\"src\",\"fileSchema\":\"Bucket,Key\",\"files\":[{\"size\":1}]}",
         "files[0] has no valid key"},
        {"{\"sourceBucket\":\"src\",\"fileSchema\":\"Bucket,Key\","
         "\"files\":[{\"key\":\"k\",\"MD5checksum\":\"xyz\"}]}",
         "not an MD5"},
        {"{\"sourceBucket\":\"src\",\"sourceBucket\":\"src\",\"fileSchema\":\"Bucket,Key\","
         "\"files\":[{\"key\":\"k\"}]}",
         "not JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(parse_manifest(bad[i].json, &m, &err), FERRY_ERR_PERMANENT);
        CHECK_STR(err.cls, FERRY_EC_INVALID_SPEC);
        if (!strstr(err.msg, bad[i].says))
            CHECK_STR(err.msg, bad[i].says);
        ferry_inventory_manifest_clear(&m);
    }
}

/* ---- lines */

typedef struct lines {
    char text[4096];
    size_t len;
    int n;
    int stop_at; /* return an error at this line (1-based), 0: never */
} lines;

static ferry_rc collect(const char *line, size_t len, void *opaque, ferry_error *err)
{
    lines *l = opaque;
    if (++l->n == l->stop_at)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC, "stop");
    if (l->len + len + 1 < sizeof(l->text)) {
        memcpy(l->text + l->len, line, len);
        l->len += len;
        l->text[l->len++] = '|';
        l->text[l->len] = '\0';
    }
    return FERRY_OK;
}

/* gzip of len bytes into a malloc'd buffer */
static char *gz(const char *data, size_t len, size_t *out_len)
{
    z_stream z;
    size_t cap = len + 1024;
    char *out = malloc(cap);

    memset(&z, 0, sizeof(z));
    CHECK_INT(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    CHECK_INT(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void test_lines(void)
{
    const char *text = "a,1\nb,2\r\n\nc,3";
    lines l = {0};
    ferry_error err;
    size_t n1, n2;
    char *g1, *g2, *both;

    CHECK_INT(ferry_inventory_lines(text, strlen(text), 0, collect, &l, &err), FERRY_OK);
    CHECK_STR(l.text, "a,1|b,2\r|c,3|"); /* empty lines dropped; \r left to the parser */

    /* gzip, and two concatenated members (as large files may be written) */
    g1 = gz("x,1\ny,", 6, &n1);
    g2 = gz("2\nz,3\n", 6, &n2);
    both = malloc(n1 + n2);
    memcpy(both, g1, n1);
    memcpy(both + n1, g2, n2);
    memset(&l, 0, sizeof(l));
    CHECK_INT(ferry_inventory_lines(g1, n1, 1, collect, &l, &err), FERRY_OK);
    CHECK_STR(l.text, "x,1|y,|");
    memset(&l, 0, sizeof(l));
    CHECK_INT(ferry_inventory_lines(both, n1 + n2, 1, collect, &l, &err), FERRY_OK);
    CHECK_STR(l.text, "x,1|y,2|z,3|"); /* a line across the members is one line */

    /* the callback's error stops the walk */
    memset(&l, 0, sizeof(l));
    l.stop_at = 2;
    CHECK_INT(ferry_inventory_lines(both, n1 + n2, 1, collect, &l, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.msg, "stop");
    CHECK_INT(l.n, 2);

    /* truncated, corrupt, empty, not gzip at all */
    memset(&l, 0, sizeof(l));
    CHECK_INT(ferry_inventory_lines(g1, n1 - 5, 1, collect, &l, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "truncated") != NULL);
    g1[n1 / 2] ^= 0x55;
    g1[n1 / 2 + 1] ^= 0x55;
    CHECK_INT(ferry_inventory_lines(g1, n1, 1, collect, &l, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_inventory_lines(g1, 0, 1, collect, &l, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_inventory_lines(text, strlen(text), 1, collect, &l, &err),
              FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "corrupt gzip") != NULL);
    /* trailing bytes after the last member are not a member */
    {
        char *trail = malloc(n1 + 4);
        memcpy(trail, both, n1);
        memcpy(trail + n1, "junk", 4);
        CHECK_INT(ferry_inventory_lines(trail, n1 + 4, 1, collect, &l, &err),
                  FERRY_ERR_PERMANENT);
        free(trail);
    }
    free(g1);
    free(g2);
    free(both);

    /* a line at the limit is read, one byte more is refused */
    {
        size_t big = FERRY_INVENTORY_LINE_MAX + 2;
        char *s = malloc(big);
        memset(s, 'k', big);
        s[FERRY_INVENTORY_LINE_MAX] = '\n';
        memset(&l, 0, sizeof(l));
        CHECK_INT(ferry_inventory_lines(s, FERRY_INVENTORY_LINE_MAX + 1, 0, collect, &l, &err),
                  FERRY_OK);
        CHECK_INT(l.n, 1);
        CHECK_INT(ferry_inventory_lines(s, big, 0, collect, &l, &err), FERRY_OK);
        s[FERRY_INVENTORY_LINE_MAX] = 'k';
        CHECK_INT(ferry_inventory_lines(s, big, 0, collect, &l, &err), FERRY_ERR_PERMANENT);
        CHECK(strstr(err.msg, "longer than") != NULL);
        free(s);
    }
}

/* ---- sample */

static void key_of(int i, char *out, size_t size) { snprintf(out, size, "d/%07d", i); }

/* Adds keys 0..n-1 in a scrambled order (inventories are not sorted). */
static void fill(ferry_inventory_sample *s, int n)
{
    char k[32];
    for (int i = 0; i < n; i++) {
        key_of((int)(((long long)i * 7919) % n), k, sizeof(k));
        CHECK_INT(ferry_inventory_sample_add(s, k, strlen(k)), 0);
    }
}

static void test_sample_exact(void)
{
    ferry_inventory_sample s;
    char k[32];

    /* 1000 keys, all in the sample: bounds are exactly every 100th key */
    ferry_inventory_sample_init(&s, 4096);
    fill(&s, 1000);
    CHECK_INT(s.seen, 1000);
    ferry_inventory_sample_bounds(&s, 100);
    CHECK_INT(s.n, 9); /* 10 chunks */
    for (int i = 0; i < 9; i++) {
        key_of((i + 1) * 100 - 1, k, sizeof(k));
        CHECK_STR(s.keys[i], k);
    }
    ferry_inventory_sample_clear(&s);

    /* not a multiple: 1050 keys in chunks of 100 -> 11 chunks, the last of 50 */
    ferry_inventory_sample_init(&s, 4096);
    fill(&s, 1050);
    ferry_inventory_sample_bounds(&s, 100);
    CHECK_INT(s.n, 10);
    key_of(999, k, sizeof(k));
    CHECK_STR(s.keys[9], k);
    ferry_inventory_sample_clear(&s);

    /* one chunk's worth, or nothing: no bounds */
    ferry_inventory_sample_init(&s, 4096);
    fill(&s, 100);
    ferry_inventory_sample_bounds(&s, 100);
    CHECK_INT(s.n, 0);
    ferry_inventory_sample_clear(&s);
    ferry_inventory_sample_init(&s, 4096);
    ferry_inventory_sample_bounds(&s, 100);
    CHECK_INT(s.n, 0);
    ferry_inventory_sample_clear(&s);
}

static void test_sample_bounded(void)
{
    ferry_inventory_sample s, again;
    int prev = -1, worst = 0;

    /* 200,000 keys through a sample of 2,000: 20 chunks of about 10,000 */
    ferry_inventory_sample_init(&s, 2000);
    fill(&s, 200000);
    CHECK_INT(s.n, 2000);
    CHECK_INT(s.seen, 200000);
    ferry_inventory_sample_bounds(&s, 10000);
    CHECK_INT(s.n, 19);
    for (size_t i = 0; i < s.n; i++) {
        int v = atoi(s.keys[i] + 2), size = v - prev;
        CHECK(v > prev); /* strictly increasing */
        if (abs(size - 10000) > worst)
            worst = abs(size - 10000);
        prev = v;
    }
    CHECK(worst < 3000); /* within 30% of the chunk size (sampling error ~ 2%) */

    /* the same keys give the same bounds */
    ferry_inventory_sample_init(&again, 2000);
    fill(&again, 200000);
    ferry_inventory_sample_bounds(&again, 10000);
    CHECK_INT(again.n, s.n);
    for (size_t i = 0; i < s.n && i < again.n; i++)
        CHECK_STR(again.keys[i], s.keys[i]);
    ferry_inventory_sample_clear(&again);
    ferry_inventory_sample_clear(&s);

    /* more chunks than the sample can tell apart: fewer bounds, still increasing */
    ferry_inventory_sample_init(&s, 10);
    fill(&s, 1000);
    ferry_inventory_sample_bounds(&s, 5);
    CHECK(s.n <= 10 && s.n > 0);
    for (size_t i = 1; i < s.n; i++)
        CHECK(strcmp(s.keys[i - 1], s.keys[i]) < 0);
    ferry_inventory_sample_clear(&s);

    /* duplicates (an inventory listing a key twice) never make equal bounds */
    ferry_inventory_sample_init(&s, 100);
    for (int i = 0; i < 50; i++)
        CHECK_INT(ferry_inventory_sample_add(&s, "same", 4), 0);
    ferry_inventory_sample_bounds(&s, 5);
    CHECK_INT(s.n, 1);
    ferry_inventory_sample_clear(&s);
}

int main(void)
{
    RUN(test_manifest);
    RUN(test_lines);
    RUN(test_sample_exact);
    RUN(test_sample_bounded);
    return TEST_EXIT();
}
