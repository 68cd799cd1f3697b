/* S3 Inventory CSV as a source listing: fileSchema columns, quoting, URL-encoded keys,
 * versions and delete markers, and the lines that must be refused. */
#include <string.h>

#include "ferry_inventory.h"
#include "ferry_test.h"

static ferry_inventory_schema schema_of(const char *s)
{
    ferry_inventory_schema sc;
    ferry_error err;
    CHECK_INT(ferry_inventory_schema_parse(s, &sc, &err), FERRY_OK);
    return sc;
}

static ferry_rc parse(const ferry_inventory_schema *sc, const char *line,
                      ferry_inventory_row *row)
{
    ferry_error err;
    return ferry_inventory_parse_line(sc, line, strlen(line), row, &err);
}

static void test_schema(void)
{
    ferry_inventory_schema sc;
    ferry_error err;

    sc = schema_of("Bucket, Key, Size, LastModifiedDate, ETag, StorageClass");
    CHECK_INT(sc.nfields, 6);
    CHECK_INT(sc.bucket, 0);
    CHECK_INT(sc.key, 1);
    CHECK_INT(sc.size, 2);
    CHECK_INT(sc.last_modified, 3);
    CHECK_INT(sc.etag, 4);
    CHECK_INT(sc.is_latest, -1);
    sc = schema_of("bucket,key,VersionId,IsLatest,IsDeleteMarker,size");
    CHECK_INT(sc.is_latest, 3);
    CHECK_INT(sc.is_delete_marker, 4);
    CHECK_INT(sc.size, 5);
    CHECK_INT(ferry_inventory_schema_parse("Key, Size", &sc, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_INVALID_SPEC);
    CHECK_INT(ferry_inventory_schema_parse("Bucket, Key, Key", &sc, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_inventory_schema_parse("Bucket,,Key", &sc, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_inventory_schema_parse(NULL, &sc, &err), FERRY_ERR_PERMANENT);
}

static void test_rows(void)
{
    ferry_inventory_schema sc = schema_of("Bucket, Key, Size, LastModifiedDate, ETag");
    ferry_inventory_row row;

    CHECK_INT(parse(&sc,
                    "\"src\",\"data/a%20b+c%2Bd.txt\",\"4096\",\"2026-12-01T00:00:00.000Z\","
                    "\"9e107d9d372bb6826bd81d3542a419d6\"\r",
                    &row),
              FERRY_OK);
    CHECK_STR(row.bucket, "src");
    CHECK_STR(row.key, "data/a b c+d.txt");
    CHECK_INT(row.key_len, 16);
    CHECK_INT(row.size, 4096);
    CHECK_STR(row.etag, "9e107d9d372bb6826bd81d3542a419d6");
    CHECK_INT(row.skip, 0);
    /* a quote inside a field; an empty size is unknown */
    CHECK_INT(parse(&sc, "\"src\",\"q%22k\",\"\",\"x\",\"e\"\"t\"", &row), FERRY_OK);
    CHECK_STR(row.key, "q\"k");
    CHECK(row.size == FERRY_INVENTORY_SIZE_UNKNOWN);
    CHECK_STR(row.etag, "e\"t");
    /* unquoted fields are accepted */
    CHECK_INT(parse(&sc, "src,k,7,x,e", &row), FERRY_OK);
    CHECK_INT(row.size, 7);
}

static void test_versions(void)
{
    ferry_inventory_schema sc = schema_of(
        "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size");
    ferry_inventory_row row;

    CHECK_INT(parse(&sc, "\"b\",\"k\",\"v1\",\"true\",\"false\",\"1\"", &row), FERRY_OK);
    CHECK_INT(row.skip, 0);
    CHECK_INT(parse(&sc, "\"b\",\"k\",\"v0\",\"false\",\"false\",\"1\"", &row), FERRY_OK);
    CHECK_INT(row.skip, 1);
    CHECK_INT(parse(&sc, "\"b\",\"k\",\"v2\",\"true\",\"true\",\"\"", &row), FERRY_OK);
    CHECK_INT(row.skip, 1);
}

static void test_refused(void)
{
    ferry_inventory_schema sc = schema_of("Bucket, Key, Size");
    ferry_inventory_row row;
    char long_key[4000];

    CHECK_INT(parse(&sc, "\"b\",\"k\"", &row), FERRY_ERR_PERMANENT);             /* too few */
    CHECK_INT(parse(&sc, "\"b\",\"k\",\"1\",\"x\"", &row), FERRY_ERR_PERMANENT); /* too many */
    CHECK_INT(parse(&sc, "\"b\",\"k,\"1\"", &row), FERRY_ERR_PERMANENT);         /* quoting */
    CHECK_INT(parse(&sc, "\"b\",\"k\"x,\"1\"", &row), FERRY_ERR_PERMANENT);
    CHECK_INT(parse(&sc, "\"b\",\"k%2\",\"1\"", &row), FERRY_ERR_PERMANENT);  /* bad escape */
    CHECK_INT(parse(&sc, "\"b\",\"k%00\",\"1\"", &row), FERRY_ERR_PERMANENT); /* NUL */
    CHECK_INT(parse(&sc, "\"b\",\"\",\"1\"", &row), FERRY_ERR_PERMANENT);     /* empty key */
    CHECK_INT(parse(&sc, "\"\",\"k\",\"1\"", &row), FERRY_ERR_PERMANENT);     /* no bucket */
    CHECK_INT(parse(&sc, "\"b\",\"k\",\"-1\"", &row), FERRY_ERR_PERMANENT);   /* size */
    CHECK_INT(parse(&sc, "\"b\",\"k\",\"12x\"", &row), FERRY_ERR_PERMANENT);
    memset(long_key, 'a', sizeof(long_key));
    memcpy(long_key, "\"b\",\"", 5);
    memcpy(long_key + 1030, "\",\"1\"", 6); /* a 1025-byte key */
    CHECK_INT(parse(&sc, long_key, &row), FERRY_ERR_PERMANENT);
    memcpy(long_key + 1029, "\",\"1\"", 6); /* 1024 bytes: the limit */
    CHECK_INT(parse(&sc, long_key, &row), FERRY_OK);
    CHECK_INT(row.key_len, 1024);
}

int main(void)
{
    RUN(test_schema);
    RUN(test_rows);
    RUN(test_versions);
    RUN(test_refused);
    return TEST_EXIT();
}
