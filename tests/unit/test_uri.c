/* Unit tests: s3:// URIs, names, overlap, percent-encoding, canonical queries, SigV4
 * signatures, S3 XML parsing (incl. hostile documents), error classification and store
 * configuration checks. No network. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_names.h"
#include "ferry_objstore.h"
#include "ferry_s3xml.h"
#include "ferry_sigv4.h"
#include "ferry_test.h"
#include "ferry_uri.h"

static void test_uri_parse(void)
{
    ferry_uri u;
    ferry_error err;
    char buf[2048];

    CHECK_INT(ferry_uri_parse("s3://my-bucket/data/2024/", &u, &err), FERRY_OK);
    CHECK_STR(u.bucket, "my-bucket");
    CHECK_STR(u.prefix, "data/2024/");
    CHECK_INT(ferry_uri_parse("s3://my.bucket.1", &u, &err), FERRY_OK);
    CHECK_STR(u.bucket, "my.bucket.1");
    CHECK_STR(u.prefix, "");
    CHECK_INT(ferry_uri_parse("s3://abc/", &u, &err), FERRY_OK);
    CHECK_STR(u.prefix, "");
    CHECK_INT(ferry_uri_parse("s3://abc/d\xC3\xA9j\xC3\xA0 vu/+%=&~", &u, &err), FERRY_OK);
    CHECK_STR(u.prefix, "d\xC3\xA9j\xC3\xA0 vu/+%=&~");
    ferry_uri_format(&u, buf, sizeof(buf));
    CHECK_STR(buf, "s3://abc/d\xC3\xA9j\xC3\xA0 vu/+%=&~");

    /* each failure says which rule */
    CHECK_INT(ferry_uri_parse("http://abc/x", &u, &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_INVALID_SPEC);
    CHECK(strstr(err.msg, "s3://bucket/prefix") != NULL);
    CHECK_INT(ferry_uri_parse(NULL, &u, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_uri_parse("s3://", &u, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "empty") != NULL);
    CHECK_INT(ferry_uri_parse("s3://ab/x", &u, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "3 to 63") != NULL);
    CHECK_INT(ferry_uri_parse("s3://MyBucket/x", &u, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "lowercase") != NULL);
    CHECK_INT(ferry_uri_parse("s3://my_bucket/x", &u, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_uri_parse("s3://-bucket/x", &u, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "start and end") != NULL);
    CHECK_INT(ferry_uri_parse("s3://bucket-/x", &u, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_uri_parse("s3://my..bucket/x", &u, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "periods") != NULL);
    CHECK_INT(ferry_uri_parse("s3://192.168.5.4/x", &u, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "IP address") != NULL);
    CHECK_INT(ferry_uri_parse("s3://192.168.5.4a/x", &u, &err), FERRY_OK);
    CHECK_INT(ferry_uri_parse("s3://xn--bucket/x", &u, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_uri_parse("s3://bucket-s3alias/x", &u, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_uri_parse(
                  "s3://a234567890123456789012345678901234567890123456789012345678901234/x", &u,
                  &err),
              FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_uri_parse(
                  "s3://a23456789012345678901234567890123456789012345678901234567890123/x", &u,
                  &err),
              FERRY_OK);
    CHECK_INT(ferry_uri_parse("s3://abc//x", &u, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "start with '/'") != NULL);
    CHECK_INT(ferry_uri_parse("s3://abc/a/../b", &u, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "..") != NULL);
    CHECK_INT(ferry_uri_parse("s3://abc/..", &u, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_uri_parse("s3://abc/a/./b", &u, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_uri_parse("s3://abc/a..b/...", &u, &err), FERRY_OK); /* not segments */
    CHECK_INT(ferry_uri_parse("s3://abc/a\nb", &u, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "control") != NULL);
    CHECK_INT(ferry_uri_parse("s3://abc/a\x7f", &u, &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_uri_parse("s3://abc/a\xC2\x85", &u, &err),
              FERRY_ERR_PERMANENT); /* C1 NEL */
    CHECK_INT(ferry_uri_parse("s3://abc/\xC3(", &u, &err), FERRY_ERR_PERMANENT);
    CHECK(strstr(err.msg, "UTF-8") != NULL);
    CHECK_INT(ferry_uri_parse("s3://abc/\xC0\xAF", &u, &err),
              FERRY_ERR_PERMANENT); /* overlong */
    CHECK_INT(ferry_uri_parse("s3://abc/\xED\xA0\x80", &u, &err),
              FERRY_ERR_PERMANENT);                                              /* surrogate */
    CHECK_INT(ferry_uri_parse("s3://abc/\xF0\x9F\x98\x80", &u, &err), FERRY_OK); /* emoji */

    {
        char big[1100 + 16];
        memcpy(big, "s3://abc/", 9);
        memset(big + 9, 'k', 1024);
        big[9 + 1024] = '\0';
        CHECK_INT(ferry_uri_parse(big, &u, &err), FERRY_OK);
        CHECK_INT(strlen(u.prefix), 1024);
        big[9 + 1024] = 'k';
        big[9 + 1025] = '\0';
        CHECK_INT(ferry_uri_parse(big, &u, &err), FERRY_ERR_PERMANENT);
        CHECK(strstr(err.msg, "1024") != NULL);
    }
}

static void test_overlap(void)
{
    ferry_uri a, b;
    ferry_error err;

#define OV(x, y)                                                                               \
    (ferry_uri_parse((x), &a, &err) == FERRY_OK &&                                             \
     ferry_uri_parse((y), &b, &err) == FERRY_OK && ferry_uri_overlaps(&a, &b))
    CHECK(OV("s3://src/data/", "s3://src/data/"));
    CHECK(OV("s3://src/data/", "s3://src/data/copy/"));
    CHECK(OV("s3://src/data/copy/", "s3://src/data/"));
    CHECK(OV("s3://src", "s3://src/anything"));
    CHECK(OV("s3://src/data", "s3://src/data2")); /* "data" lists data2/... too */
    CHECK(!OV("s3://src/data/", "s3://src/data2/"));
    CHECK(!OV("s3://src/a/", "s3://src/b/"));
    CHECK(!OV("s3://src/data/", "s3://dst/data/"));
    CHECK(!OV("s3://src", "s3://dst"));
#undef OV
}

static void test_dataset_names(void)
{
    char why[200];

    CHECK(ferry_dataset_name_valid("sales", why, sizeof(why)));
    CHECK(ferry_dataset_name_valid("0", why, sizeof(why)));
    CHECK(ferry_dataset_name_valid("a.b_c-d9", why, sizeof(why)));
    CHECK(ferry_dataset_name_valid(
        "a23456789012345678901234567890123456789012345678901234567890123", why, sizeof(why)));
    CHECK(!ferry_dataset_name_valid(
        "a234567890123456789012345678901234567890123456789012345678901234", why, sizeof(why)));
    CHECK(strstr(why, "63") != NULL);
    CHECK(!ferry_dataset_name_valid("", why, sizeof(why)));
    CHECK(strstr(why, "empty") != NULL);
    CHECK(!ferry_dataset_name_valid(NULL, why, sizeof(why)));
    CHECK(!ferry_dataset_name_valid("-abc", why, sizeof(why)));
    CHECK(strstr(why, "start") != NULL);
    CHECK(!ferry_dataset_name_valid(".abc", why, sizeof(why)));
    CHECK(!ferry_dataset_name_valid("Sales", why, sizeof(why)));
    CHECK(!ferry_dataset_name_valid("sales data", why, sizeof(why)));
    CHECK(strstr(why, "0x20") != NULL);
    CHECK(!ferry_dataset_name_valid("sales/x", why, sizeof(why)));
    CHECK(strstr(why, "'/'") != NULL);
    CHECK(!ferry_dataset_name_valid("a{b}", why, sizeof(why)));
    CHECK(!ferry_dataset_name_valid("a\r\nb", why, sizeof(why)));
    CHECK(!ferry_dataset_name_valid("caf\xC3\xA9", why, sizeof(why)));
    CHECK(ferry_dataset_name_valid("ok", NULL, 0));
    CHECK(!ferry_dataset_name_valid("NO", NULL, 0));
}

static void test_pct(void)
{
    char out[64], small[6];
    size_t n;

    n = ferry_uri_pct_encode("a b/c+%~_.-", 11, 1, out, sizeof(out));
    CHECK_STR(out, "a%20b/c%2B%25~_.-");
    CHECK_INT(n, strlen(out));
    ferry_uri_pct_encode("a b/c", 5, 0, out, sizeof(out));
    CHECK_STR(out, "a%20b%2Fc");
    ferry_uri_pct_encode("\xC3\xA9=&?#", 6, 1, out, sizeof(out));
    CHECK_STR(out, "%C3%A9%3D%26%3F%23");
    /* truncation: like snprintf, and never half an escape */
    n = ferry_uri_pct_encode("abcd efgh", 9, 0, small, sizeof(small));
    CHECK_INT(n, 11);
    CHECK_STR(small, "abcd");
    n = ferry_uri_pct_encode("abc", 3, 0, NULL, 0);
    CHECK_INT(n, 3);

    n = ferry_uri_pct_decode("a%20b+c%2Bd%c3%a9", 17, 1, out, sizeof(out));
    CHECK_STR(out, "a b c+d\xC3\xA9");
    CHECK_INT(n, 9);
    n = ferry_uri_pct_decode("a+b", 3, 0, out, sizeof(out));
    CHECK_STR(out, "a+b");
    CHECK_INT(ferry_uri_pct_decode("a%2", 3, 1, out, sizeof(out)), (size_t)-1);
    CHECK_INT(ferry_uri_pct_decode("a%", 2, 1, out, sizeof(out)), (size_t)-1);
    CHECK_INT(ferry_uri_pct_decode("%zz", 3, 1, out, sizeof(out)), (size_t)-1);
    CHECK_INT(ferry_uri_pct_decode("a%00b", 5, 1, out, sizeof(out)), (size_t)-1);
    CHECK_INT(ferry_uri_pct_decode("abcdef", 6, 1, out, 6), (size_t)-1);
    /* in place */
    strcpy(out, "x%2Fy");
    CHECK_INT(ferry_uri_pct_decode(out, 5, 1, out, 6), 3);
    CHECK_STR(out, "x/y");
}

static void test_query(void)
{
    char out[256];
    size_t n;
    ferry_uri_qparam q[] = {
        {"prefix", "dir/\xC3\xA9 x"},   {"list-type", "2"},
        {"continuation-token", "x+y="}, {"max-keys", "2"},
        {"encoding-type", "url"},
    };
    ferry_uri_qparam up[] = {{"uploads", NULL}};
    ferry_uri_qparam part[] = {{"uploadId", "abc/123"}, {"partNumber", "3"}};

    n = ferry_uri_query_build(q, 5, out, sizeof(out));
    CHECK_STR(out, "continuation-token=x%2By%3D&encoding-type=url&list-type=2&max-keys=2&"
                   "prefix=dir%2F%C3%A9%20x");
    CHECK_INT(n, strlen(out));
    ferry_uri_query_build(up, 1, out, sizeof(out));
    CHECK_STR(out, "uploads=");
    ferry_uri_query_build(part, 2, out, sizeof(out));
    CHECK_STR(out, "partNumber=3&uploadId=abc%2F123");
    n = ferry_uri_query_build(NULL, 0, out, sizeof(out));
    CHECK_INT(n, 0);
    CHECK_STR(out, "");
    n = ferry_uri_query_build(part, 2, out, 10);
    CHECK_INT(n, 31);
    CHECK_INT(strlen(out), 9);
}

static void test_sigv4(void)
{
    unsigned char key[32];
    char auth[1024], hex[65];
    ferry_sigv4_request r;

    /* AWS documentation example: GET object with a Range header. */
    ferry_sigv4_header get_h[] = {
        {"host", "examplebucket.s3.amazonaws.com"},
        {"range", "bytes=0-9"},
        {"x-amz-content-sha256", FERRY_SIGV4_EMPTY_SHA256},
        {"x-amz-date", "20130524T000000Z"},
    };
    /* UploadPartCopy with x-amz-copy-source, -range and -if-match plus a session token:
     * the header set libcurl 7.88 orders wrongly. Expected value from botocore 1.43. */
    ferry_sigv4_header part_h[] = {
        {"x-amz-copy-source-range", "bytes=0-5242879"},
        {"x-amz-copy-source", "/src-bucket/a%20b/c%2Bd.bin"},
        {"x-amz-copy-source-if-match", "\"9b2cf535f27731c974343645a3985328\""},
        {"host", "127.0.0.1:9000"},
        {"x-amz-content-sha256", FERRY_SIGV4_EMPTY_SHA256},
        {"x-amz-date", "20130524T000000Z"},
        {"x-amz-security-token", "tok/en+=="},
    };
    ferry_sigv4_header list_h[] = {
        {"x-amz-date", "20130524T000000Z"},
        {"host", "127.0.0.1:9000"},
        {"x-amz-content-sha256", "  " FERRY_SIGV4_EMPTY_SHA256 "  "}, /* trimmed */
    };

    CHECK_INT(ferry_sigv4_sha256_hex("", 0, hex), 0);
    CHECK_STR(hex, FERRY_SIGV4_EMPTY_SHA256);
    CHECK_INT(ferry_sigv4_sha256_hex("Welcome to Amazon S3.", 21, hex), 0);
    CHECK_STR(hex, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    ferry_sigv4_amz_date(1369353600, auth);
    CHECK_STR(auth, "20130524T000000Z");

    CHECK_INT(ferry_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524",
                                      "us-east-1", "s3", key),
              0);
    memset(&r, 0, sizeof(r));
    r.method = "GET";
    r.canonical_uri = "/test.txt";
    r.canonical_query = "";
    r.headers = get_h;
    r.n_headers = 4;
    r.payload_hash = FERRY_SIGV4_EMPTY_SHA256;
    r.amz_date = "20130524T000000Z";
    r.region = "us-east-1";
    r.service = "s3";
    r.access_key = "AKIAIOSFODNN7EXAMPLE";
    r.signing_key = key;
    CHECK(ferry_sigv4_authorization(&r, auth, sizeof(auth)) > 0);
    CHECK_STR(auth,
              "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
              "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");

    r.method = "PUT";
    r.canonical_uri = "/dst-bucket/a%20b/c%2Bd.bin";
    r.canonical_query = "partNumber=3&uploadId=abc%2F123";
    r.headers = part_h;
    r.n_headers = 7;
    CHECK(ferry_sigv4_authorization(&r, auth, sizeof(auth)) > 0);
    CHECK(strstr(auth, "SignedHeaders=host;x-amz-content-sha256;x-amz-copy-source;"
                       "x-amz-copy-source-if-match;x-amz-copy-source-range;x-amz-date;"
                       "x-amz-security-token, ") != NULL);
    CHECK(
        strstr(auth,
               "Signature=9c2fde0a957738178972930baa4619977ea1d35e4b81769073738b1ddcce56ec") !=
        NULL);

    CHECK_INT(ferry_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524",
                                      "eu-west-1", "s3", key),
              0);
    r.method = "GET";
    r.canonical_uri = "/bkt";
    r.canonical_query = "continuation-token=x%2By&encoding-type=url&list-type=2&max-keys=2&"
                        "prefix=dir%2F%C3%A9%20x";
    r.headers = list_h;
    r.n_headers = 3;
    r.region = "eu-west-1";
    CHECK(ferry_sigv4_authorization(&r, auth, sizeof(auth)) > 0);
    CHECK(
        strstr(auth,
               "Signature=d5a1507bb5fc30333a16a62e53cf9c755bbdb4a959c84f1e3eede0006612d3a2") !=
        NULL);

    /* refused inputs */
    {
        ferry_sigv4_header bad_name[] = {{"Host", "x"}};
        ferry_sigv4_header crlf[] = {{"host", "x\r\nevil: 1"}};
        ferry_sigv4_header dup[] = {{"host", "x"}, {"host", "y"}};
        r.headers = bad_name;
        r.n_headers = 1;
        CHECK_INT(ferry_sigv4_authorization(&r, auth, sizeof(auth)), 0);
        r.headers = crlf;
        CHECK_INT(ferry_sigv4_authorization(&r, auth, sizeof(auth)), 0);
        r.headers = dup;
        r.n_headers = 2;
        CHECK_INT(ferry_sigv4_authorization(&r, auth, sizeof(auth)), 0);
        r.headers = list_h;
        r.n_headers = 3;
        CHECK_INT(ferry_sigv4_authorization(&r, auth, 20), 0);
    }
}

#define XMLDECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

static void test_xml_results(void)
{
    ferry_s3xml_result r;
    char why[200];
    const char *err_doc = XMLDECL
        "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist."
        "</Message><Key>a/b</Key><RequestId>4442587FB7D0A2F9</RequestId></Error>";
    const char *copy_doc = XMLDECL
        "<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LastModified>2026-11-26T01:18:10Z</LastModified>"
        "<ETag>&quot;b1946ac92492d2347c6235b4d2611184&quot;</ETag></CopyObjectResult>";
    const char *init_doc = XMLDECL
        "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE+/=</UploadId>"
        "</InitiateMultipartUploadResult>";
    const char *complete_doc =
        "<CompleteMultipartUploadResult><Location>http://x/b/k</Location><Bucket>b</Bucket>"
        "<Key>k</Key><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
        "</CompleteMultipartUploadResult>";
    /* S3 may answer a long copy with 200 and only then fail; the body is an Error. */
    const char *err_in_200 = "\n\n   \n" XMLDECL "<Error><Code>InternalError</Code>"
                             "<Message>We encountered an internal error.</Message></Error>";
    char long_msg[12000];

    CHECK_INT(ferry_s3xml_parse_result(err_doc, strlen(err_doc), &r, why, sizeof(why)), 0);
    CHECK_STR(r.root, "Error");
    CHECK_STR(r.code, "NoSuchKey");
    CHECK_STR(r.message, "The specified key does not exist.");
    CHECK_INT(ferry_s3xml_parse_result(copy_doc, strlen(copy_doc), &r, why, sizeof(why)), 0);
    CHECK_STR(r.root, "CopyObjectResult");
    CHECK_STR(r.etag, "b1946ac92492d2347c6235b4d2611184");
    CHECK_STR(r.code, "");
    CHECK_INT(ferry_s3xml_parse_result(init_doc, strlen(init_doc), &r, why, sizeof(why)), 0);
    CHECK_STR(r.upload_id, "VXBsb2FkIElE+/=");
    CHECK_INT(ferry_s3xml_parse_result(complete_doc, strlen(complete_doc), &r, why,
                                       sizeof(why)),
              0);
    CHECK_STR(r.etag, "3858f62230ac3c915f300c664312c11f-9");
    /* keep-alive whitespace before the document is skipped */
    CHECK_INT(ferry_s3xml_parse_result(err_in_200, strlen(err_in_200), &r, why, sizeof(why)),
              0);
    CHECK_STR(r.root, "Error");
    CHECK_STR(r.code, "InternalError");
    CHECK_INT(ferry_s3xml_parse_result("  \n ", 4, &r, why, sizeof(why)), -1);

    /* UploadPartCopy into an upload with a checksum algorithm: the part's checksum */
    {
        const char *part = XMLDECL "<CopyPartResult><ETag>\"0f343b0931126a20f133d67c2b018a3b\""
                                   "</ETag><ChecksumCRC32C>yZRlqg==</ChecksumCRC32C>"
                                   "</CopyPartResult>";
        const char *odd = "<CopyPartResult><ChecksumMD9>x</ChecksumMD9></CopyPartResult>";
        const char *hostile = "<CopyPartResult><ChecksumSHA256>a&lt;b</ChecksumSHA256>"
                              "</CopyPartResult>";
        CHECK_INT(ferry_s3xml_parse_result(part, strlen(part), &r, why, sizeof(why)), 0);
        CHECK_STR(r.etag, "0f343b0931126a20f133d67c2b018a3b");
        CHECK_STR(r.checksum_algo, "CRC32C");
        CHECK_STR(r.checksum, "yZRlqg==");
        CHECK_INT(ferry_s3xml_parse_result(copy_doc, strlen(copy_doc), &r, why, sizeof(why)),
                  0);
        CHECK_STR(r.checksum_algo, "");
        CHECK_INT(ferry_s3xml_parse_result(odd, strlen(odd), &r, why, sizeof(why)), 0);
        CHECK_STR(r.checksum_algo, ""); /* not an algorithm S3 has: ignored */
        /* sent back in CompleteMultipartUpload: nothing that needs escaping */
        CHECK_INT(ferry_s3xml_parse_result(hostile, strlen(hostile), &r, why, sizeof(why)), -1);
    }

    /* a long Message is truncated, not refused */
    {
        size_t pre = (size_t)snprintf(long_msg, sizeof(long_msg),
                                      "<Error><Code>X</Code><Message>");
        memset(long_msg + pre, 'm', 10000);
        long_msg[pre + 10000] = '\0';
    }
    strcat(long_msg, "</Message></Error>");
    CHECK_INT(ferry_s3xml_parse_result(long_msg, strlen(long_msg), &r, why, sizeof(why)), 0);
    CHECK_INT(strlen(r.message), sizeof(r.message) - 1);

    /* malformed */
    CHECK_INT(ferry_s3xml_parse_result("", 0, &r, why, sizeof(why)), -1);
    CHECK_INT(ferry_s3xml_parse_result("<Error><Code>x</Error>", 22, &r, why, sizeof(why)), -1);
    CHECK(strstr(why, "malformed") != NULL);
    CHECK_INT(ferry_s3xml_parse_result("not xml at all", 14, &r, why, sizeof(why)), -1);
    CHECK_INT(ferry_s3xml_parse_result("<a><b>", 6, &r, why, sizeof(why)), -1);
}

static void test_xml_hostile(void)
{
    ferry_s3xml_result r;
    ferry_objstore_listing l;
    char why[200];
    char deep[4096];
    size_t i;
    const char *laughs = XMLDECL
        "<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
        "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
        "<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">"
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
        "<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">"
        "<!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">"
        "<!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">"
        "<!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">"
        "<!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">"
        "<!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">"
        "]><Error><Code>&lol9;</Code></Error>";
    const char *xxe = XMLDECL "<!DOCTYPE e [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                              "<Error><Code>&x;</Code></Error>";
    const char *ext_dtd = XMLDECL "<!DOCTYPE e SYSTEM \"http://127.0.0.1:1/evil.dtd\">"
                                  "<Error><Code>x</Code></Error>";
    const char *undefined_ent = "<Error><Code>&nope;</Code></Error>";
    const char *bad_ns = "<s3:Error><s3:Code>x</s3:Code></s3:Error>";

    CHECK_INT(ferry_s3xml_parse_result(laughs, strlen(laughs), &r, why, sizeof(why)), -1);
    CHECK(strstr(why, "DOCTYPE") != NULL);
    ferry_objstore_listing_init(&l);
    CHECK_INT(ferry_s3xml_parse_list(laughs, strlen(laughs), &l, why, sizeof(why)), -1);
    CHECK(strstr(why, "DOCTYPE") != NULL);
    ferry_objstore_listing_free(&l);
    CHECK_INT(ferry_s3xml_parse_result(xxe, strlen(xxe), &r, why, sizeof(why)), -1);
    CHECK_STR(r.code, "");
    CHECK_INT(ferry_s3xml_parse_result(ext_dtd, strlen(ext_dtd), &r, why, sizeof(why)), -1);
    CHECK_INT(ferry_s3xml_parse_result(undefined_ent, strlen(undefined_ent), &r, why,
                                       sizeof(why)),
              -1);
    CHECK_INT(ferry_s3xml_parse_result(bad_ns, strlen(bad_ns), &r, why, sizeof(why)), -1);

    /* nesting depth */
    deep[0] = '\0';
    for (i = 0; i < 40; i++)
        strcat(deep, "<a>");
    for (i = 0; i < 40; i++)
        strcat(deep, "</a>");
    CHECK_INT(ferry_s3xml_parse_result(deep, strlen(deep), &r, why, sizeof(why)), -1);
    CHECK(strstr(why, "deep") != NULL);
}

static void test_xml_list(void)
{
    ferry_objstore_listing l;
    char why[200];
    /* AWS-style page with encoding-type=url: '+' is a space, %2B a plus. */
    const char *page1 = XMLDECL
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>bkt</Name><Prefix>dir%2F</Prefix><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys>"
        "<IsTruncated>true</IsTruncated>"
        "<Contents><Key>dir%2Fa+b%2Bc%25d.txt</Key>"
        "<LastModified>2009-10-12T17:50:30.000Z</LastModified>"
        "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        "<Contents><Key>dir%2F%C3%A9t%C3%A9%2Fx%3D1%26y%7E</Key>"
        "<LastModified>2026-11-26T01:18:10Z</LastModified>"
        "<ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag><Size>0</Size></Contents>"
        "<Contents><Key>dir%2Fbig</Key><Size>18446744073709551615</Size></Contents>"
        "<EncodingType>url</EncodingType>"
        "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
        "</ListBucketResult>";
    /* S3Proxy-style last page without encoding: keys are literal. */
    const char *page2 =
        "<ListBucketResult><Name>bkt</Name><IsTruncated>false</IsTruncated>"
        "<NextContinuationToken>ignored</NextContinuationToken>"
        "<Contents><Key>dir/100% a+b</Key><Size>7</Size><ETag>abc</ETag></Contents>"
        "</ListBucketResult>";
    const char *empty = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";

    ferry_objstore_listing_init(&l);
    CHECK_INT(ferry_s3xml_parse_list(page1, strlen(page1), &l, why, sizeof(why)), 0);
    CHECK_INT(l.count, 3);
    CHECK(l.is_truncated);
    CHECK_STR(l.next_token, "dir/big"); /* our cursor: the last key, not the server's token */
    if (l.count == 3) {
        CHECK_STR(l.entries[0].key, "dir/a b+c%d.txt");
        CHECK_INT(l.entries[0].key_len, 15);
        CHECK_INT(l.entries[0].size, 434234);
        CHECK_STR(l.entries[0].etag, "fba9dede5f27731c9771645a39863328");
        CHECK_INT(l.entries[0].last_modified_ms, 1255369830000LL);
        CHECK_STR(l.entries[1].key, "dir/\xC3\xA9t\xC3\xA9/x=1&y~");
        CHECK_STR(l.entries[1].etag, "3858f62230ac3c915f300c664312c11f-9");
        CHECK_INT(l.entries[1].size, 0);
        CHECK_INT(l.entries[1].last_modified_ms, 1795655890000LL);
        CHECK(l.entries[2].size == UINT64_MAX);
        CHECK_STR(l.entries[2].etag, "");
        CHECK_INT(l.entries[2].last_modified_ms, 0);
    }
    /* the same listing is reused for the next page */
    CHECK_INT(ferry_s3xml_parse_list(page2, strlen(page2), &l, why, sizeof(why)), 0);
    CHECK_INT(l.count, 1);
    CHECK(!l.is_truncated);
    CHECK(l.next_token == NULL);
    CHECK_STR(l.entries[0].key, "dir/100% a+b");
    CHECK_STR(l.entries[0].etag, "abc");
    CHECK_INT(ferry_s3xml_parse_list(empty, strlen(empty), &l, why, sizeof(why)), 0);
    CHECK_INT(l.count, 0);
    /* S3Proxy's filesystem provider lists directories: "dir/" without an ETag. They are
     * left out (and counted); a real "dir/" marker object has an ETag and stays. */
    {
        const char *fs =
            "<ListBucketResult><IsTruncated>true</IsTruncated>"
            "<NextContinuationToken>d1/d2/</NextContinuationToken><EncodingType>url</EncodingType>"
            "<Contents><Key>d1%2F</Key><Size>4096</Size></Contents>"
            "<Contents><Key>d1%2Fd2%2F</Key><Size>4096</Size></Contents>"
            "<Contents><Key>d1%2Fd2%2Ff.txt</Key><Size>2</Size><ETag>\"e1\"</ETag></Contents>"
            "<Contents><Key>marker%2F</Key><Size>0</Size>"
            "<ETag>\"d41d8cd98f00b204e9800998ecf8427e\"</ETag></Contents>"
            "<Contents><Key>noetag</Key><Size>3</Size></Contents>"
            "</ListBucketResult>";
        CHECK_INT(ferry_s3xml_parse_list(fs, strlen(fs), &l, why, sizeof(why)), 0);
        CHECK_INT(l.skipped_dirs, 2);
        CHECK_INT(l.count, 3);
        CHECK_STR(l.entries[0].key, "d1/d2/f.txt");
        CHECK_STR(l.entries[1].key, "marker/");
        CHECK_STR(l.entries[2].key, "noetag");
        CHECK_STR(l.entries[2].etag, "");
        CHECK(l.is_truncated);
        CHECK_STR(l.next_token, "noetag");
    }
    {
        /* a truncated page holding only directories: empty, but paging goes on */
        const char *dirs =
            "<ListBucketResult><IsTruncated>true</IsTruncated><EncodingType>url</EncodingType>"
            "<Contents><Key>d1%2F</Key><Size>4096</Size></Contents>"
            "<Contents><Key>d1%2Fd%C3%A9%2F</Key><Size>4096</Size></Contents>"
            "</ListBucketResult>";
        CHECK_INT(ferry_s3xml_parse_list(dirs, strlen(dirs), &l, why, sizeof(why)), 0);
        CHECK_INT(l.count, 0);
        CHECK(l.is_truncated);
        CHECK_STR(l.next_token, "d1/d\xC3\xA9/");
    }
    {
        /* A delimiter listing: common prefixes after the objects. The cursor is the later of
         * the last key and the last prefix followed by U+10FFFF, so the next page starts
         * past every key under that prefix instead of rolling it up again. */
        const char *delim =
            "<ListBucketResult><IsTruncated>true</IsTruncated><EncodingType>url</EncodingType>"
            "<Contents><Key>ds%2Fa.txt</Key><Size>1</Size><ETag>\"e\"</ETag></Contents>"
            "<CommonPrefixes><Prefix>ds%2Fd%3D1%2F</Prefix></CommonPrefixes>"
            "<CommonPrefixes><Prefix>ds%2Fd%3D2%2F</Prefix></CommonPrefixes>"
            "</ListBucketResult>";
        const char *later_key =
            "<ListBucketResult><IsTruncated>true</IsTruncated>"
            "<CommonPrefixes><Prefix>ds/d=3/</Prefix></CommonPrefixes>"
            "<Contents><Key>ds/z</Key><Size>1</Size><ETag>\"e\"</ETag></Contents>"
            "</ListBucketResult>";
        const char *last = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                           "<CommonPrefixes><Prefix>ds/e/</Prefix></CommonPrefixes>"
                           "</ListBucketResult>";
        CHECK_INT(ferry_s3xml_parse_list(delim, strlen(delim), &l, why, sizeof(why)), 0);
        CHECK_INT(l.count, 3);
        CHECK_INT(l.skipped_dirs, 0); /* a prefix is not a directory entry */
        if (l.count == 3) {
            CHECK_STR(l.entries[0].key, "ds/a.txt");
            CHECK(!l.entries[0].is_prefix);
            CHECK_STR(l.entries[1].key, "ds/d=1/");
            CHECK(l.entries[1].is_prefix);
            CHECK_STR(l.entries[1].etag, "");
            CHECK_INT(l.entries[2].key_len, 7);
            CHECK_STR(l.entries[2].key, "ds/d=2/");
        }
        CHECK_STR(l.next_token, "ds/d=2/\xF4\x8F\xBF\xBF");
        CHECK_INT(ferry_s3xml_parse_list(later_key, strlen(later_key), &l, why, sizeof(why)),
                  0);
        CHECK_INT(l.count, 2);
        CHECK_STR(l.next_token, "ds/z"); /* the key sorts after "ds/d=3/" + U+10FFFF */
        CHECK_INT(ferry_s3xml_parse_list(last, strlen(last), &l, why, sizeof(why)), 0);
        CHECK_INT(l.count, 1);
        CHECK(l.next_token == NULL);
        CHECK(l.entries[0].is_prefix);
    }

    /* broken pages */
#define BAD(doc, needle)                                                                       \
    do {                                                                                       \
        CHECK_INT(ferry_s3xml_parse_list((doc), strlen(doc), &l, why, sizeof(why)), -1);       \
        CHECK(strstr(why, (needle)) != NULL);                                                  \
        CHECK_INT(l.count, 0);                                                                 \
    } while (0)
    BAD("<Error><Code>AccessDenied</Code></Error>", "Error document");
    BAD("<ListAllMyBucketsResult/>", "not ListBucketResult");
    BAD("<ListBucketResult><EncodingType>url</EncodingType><CommonPrefixes><Prefix>a%00/"
        "</Prefix></CommonPrefixes></ListBucketResult>",
        "url-encoded");
    BAD("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        "lacks Key");
    BAD("<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>", "lacks Key");
    BAD("<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>",
        "Size");
    BAD("<ListBucketResult><Contents><Key>a</Key><Size>18446744073709551616</Size></Contents>"
        "</ListBucketResult>",
        "Size");
    BAD("<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%00b</Key>"
        "<Size>1</Size></Contents></ListBucketResult>",
        "url-encoded");
    BAD("<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%zz</Key>"
        "<Size>1</Size></Contents></ListBucketResult>",
        "url-encoded");
    BAD("<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents>", "malformed");
    BAD("", "malformed");
    {
        /* an over-long key is refused, whether it is one text node or many */
        char *doc = malloc(20000);
        size_t pre = strlen(strcpy(doc, "<ListBucketResult><Contents><Key>"));
        memset(doc + pre, 'k', 9000);
        doc[pre + 9000] = '\0';
        strcat(doc, "</Key><Size>1</Size></Contents></ListBucketResult>");
        BAD(doc, "too long");
        strcpy(doc, "<ListBucketResult><Contents><Key>");
        memset(doc + pre, 'k', 1025);
        doc[pre + 1025] = '\0';
        strcat(doc, "</Key><Size>1</Size></Contents></ListBucketResult>");
        BAD(doc, "1024");
        free(doc);
    }
#undef BAD
    ferry_objstore_listing_free(&l);
}

static void test_xml_list_many(void)
{
    /* 1000 entries, like a full S3 page; parse twice into one listing. */
    size_t cap = 1000 * 200 + 200, off = 0, i;
    char *doc = malloc(cap), why[200];
    ferry_objstore_listing l;
    int round;

    off += (size_t)snprintf(doc + off, cap - off,
                            "<ListBucketResult><IsTruncated>true</IsTruncated>"
                            "<NextContinuationToken>t</NextContinuationToken>");
    for (i = 0; i < 1000; i++)
        off += (size_t)snprintf(doc + off, cap - off,
                                "<Contents><Key>k/%06zu</Key><Size>%zu</Size>"
                                "<ETag>\"e%zu\"</ETag></Contents>",
                                i, i * 3, i);
    off += (size_t)snprintf(doc + off, cap - off, "</ListBucketResult>");
    ferry_objstore_listing_init(&l);
    for (round = 0; round < 2; round++) {
        CHECK_INT(ferry_s3xml_parse_list(doc, off, &l, why, sizeof(why)), 0);
        CHECK_INT(l.count, 1000);
        CHECK_STR(l.entries[0].key, "k/000000");
        CHECK_STR(l.entries[999].key, "k/000999");
        CHECK_STR(l.entries[999].etag, "e999");
        CHECK_INT(l.entries[999].size, 2997);
        CHECK_STR(l.next_token, "k/000999");
    }
    ferry_objstore_listing_free(&l);
    free(doc);
}

static void test_time(void)
{
    CHECK_INT(ferry_s3xml_parse_time("1970-01-01T00:00:00Z"), 0);
    CHECK_INT(ferry_s3xml_parse_time("2009-10-12T17:50:30.000Z"), 1255369830000LL);
    CHECK_INT(ferry_s3xml_parse_time("2009-10-12T17:50:30.5Z"), 1255369830500LL);
    CHECK_INT(ferry_s3xml_parse_time("2009-10-12T17:50:30.123456Z"), 1255369830123LL);
    CHECK_INT(ferry_s3xml_parse_time("2009-10-12 17:50:30Z"), -1);
    CHECK_INT(ferry_s3xml_parse_time("2009-13-12T17:50:30Z"), -1);
    CHECK_INT(ferry_s3xml_parse_time("2009-10-12T17:50:30"), -1);
    CHECK_INT(ferry_s3xml_parse_time("2009-10-12T17:50:30.Z"), -1);
    CHECK_INT(ferry_s3xml_parse_time(""), -1);
    CHECK_INT(ferry_s3xml_parse_time(NULL), -1);
}

static void test_classify(void)
{
    ferry_rc rc;

#define CL(status, code, want_rc, want_cls)                                                    \
    do {                                                                                       \
        CHECK_STR(ferry_objstore_classify((status), (code), &rc), (want_cls));                 \
        CHECK_INT(rc, (want_rc));                                                              \
    } while (0)
    CL(500, "InternalError", FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER);
    CL(503, "SlowDown", FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER);
    CL(502, "", FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER);
    CL(501, "NotImplemented", FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT);
    CL(501, "", FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT);
    CL(429, NULL, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER);
    CL(400, "RequestTimeout", FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER);
    CL(409, "OperationAborted", FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER);
    CL(400, "ExpiredToken", FERRY_ERR_RETRYABLE, FERRY_EC_S3_AUTH);
    CL(403, "SignatureDoesNotMatch", FERRY_ERR_PERMANENT, FERRY_EC_S3_AUTH);
    CL(403, "InvalidAccessKeyId", FERRY_ERR_PERMANENT, FERRY_EC_S3_AUTH);
    CL(403, "AccessDenied", FERRY_ERR_PERMANENT, FERRY_EC_S3_AUTH);
    CL(403, "", FERRY_ERR_PERMANENT, FERRY_EC_S3_AUTH);
    CL(401, "", FERRY_ERR_PERMANENT, FERRY_EC_S3_AUTH);
    CL(403, "RequestTimeTooSkewed", FERRY_ERR_PERMANENT, FERRY_EC_S3_AUTH);
    CL(400, "AuthorizationHeaderMalformed", FERRY_ERR_PERMANENT, FERRY_EC_S3_AUTH);
    CL(404, "NoSuchBucket", FERRY_ERR_PERMANENT, FERRY_EC_S3_NOT_FOUND);
    CL(404, "NoSuchKey", FERRY_ERR_PERMANENT, FERRY_EC_S3_NOT_FOUND);
    CL(404, "", FERRY_ERR_PERMANENT, FERRY_EC_S3_NOT_FOUND);
    CL(412, "PreconditionFailed", FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT);
    CL(400, "InvalidArgument", FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT);
    CL(409, "BucketAlreadyExists", FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT);
    CL(301, "PermanentRedirect", FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT);
#undef CL
}

static void test_store_config(void)
{
    ferry_objstore_conf c;
    ferry_objstore *os;
    ferry_error err;
    ferry_objstore_op op;
    static const char secret[] = "TOPSECRETVALUE-do-not-leak";

    ferry_objstore_conf_init(&c);
    CHECK_INT(c.max_in_flight, 16);
    CHECK(c.path_style);
    CHECK_STR(c.region, "us-east-1");
    c.access_key = "AKID";
    c.secret_key = secret;

#define BADCONF(ep, needle)                                                                    \
    do {                                                                                       \
        c.endpoint = (ep);                                                                     \
        ferry_error_clear(&err);                                                               \
        os = ferry_objstore_new(&c, &err);                                                     \
        CHECK(os == NULL);                                                                     \
        ferry_objstore_destroy(os);                                                            \
        CHECK_INT(err.rc, FERRY_ERR_PERMANENT);                                                \
        CHECK_STR(err.cls, FERRY_EC_CONFIG);                                                   \
        CHECK(strstr(err.msg, (needle)) != NULL);                                              \
        CHECK(strstr(err.msg, secret) == NULL);                                                \
    } while (0)
    BADCONF(NULL, "not a valid URL");
    BADCONF("", "not a valid URL");
    BADCONF("ftp://127.0.0.1:21", "http or https");
    BADCONF("http://127.0.0.1:9000/base", "without path");
    BADCONF("http://127.0.0.1:9000/?x=1", "without path");
    BADCONF("http://user:pw@127.0.0.1:9000", "without path");
    c.secret_key = NULL;
    BADCONF("http://127.0.0.1:9000", "credentials");
    c.secret_key = secret;
    c.max_in_flight = 0;
    BADCONF("http://127.0.0.1:9000", "max_in_flight");
    c.max_in_flight = 16;
    c.multipart_part_size = 1024;
    BADCONF("http://127.0.0.1:9000", "5 MiB");
    c.multipart_part_size = (uint64_t)256 << 20;
    c.backend = "s3v2";
    BADCONF("http://127.0.0.1:9000", "unknown object store backend");
    c.backend = "libs3"; /* known, but refuses https: libs3 2.0 never verifies TLS */
    BADCONF("https://127.0.0.1:9000", "insecure_tls_ok");
    c.backend = NULL;
#undef BADCONF

    c.endpoint = "https://s3.example.com";
    os = ferry_objstore_new(&c, &err);
    CHECK(os != NULL);
    if (!os)
        return;
    CHECK_STR(ferry_objstore_backend_name(os), "sigv4");
    CHECK_INT(ferry_objstore_max_in_flight(os), 16);

    /* invalid operations fail at once, without I/O, PERMANENT */
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_HEAD);
    op.bucket = "bkt";
    CHECK_INT(ferry_objstore_exec(os, &op), FERRY_ERR_PERMANENT);
    CHECK(strstr(op.err.msg, "missing key") != NULL);
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_COPY);
    op.bucket = "bkt";
    op.key = "k";
    CHECK_INT(ferry_objstore_exec(os, &op), FERRY_ERR_PERMANENT);
    CHECK(strstr(op.err.msg, "source") != NULL);
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_LIST);
    op.bucket = "bkt";
    CHECK_INT(ferry_objstore_exec(os, &op), FERRY_ERR_PERMANENT);
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_GET);
    op.bucket = "b/x";
    op.key = "k";
    CHECK_INT(ferry_objstore_exec(os, &op), FERRY_ERR_PERMANENT);
    {
        char longkey[1100];
        memset(longkey, 'k', 1025);
        longkey[1025] = '\0';
        ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_DELETE);
        op.bucket = "bkt";
        op.key = longkey;
        CHECK_INT(ferry_objstore_exec(os, &op), FERRY_ERR_PERMANENT);
    }
    /* a batch of invalid ops: each completes with its own error */
    {
        ferry_objstore_op ops[3];
        ferry_objstore_batch_opts bo;
        int i;
        memset(&bo, 0, sizeof(bo));
        for (i = 0; i < 3; i++) {
            ferry_objstore_op_init(&ops[i], FERRY_OBJSTORE_OP_HEAD);
            ops[i].bucket = "bkt"; /* no key: fails at submit without I/O */
        }
        CHECK_INT(ferry_objstore_run_batch(os, ops, 3, &bo), FERRY_OK);
        for (i = 0; i < 3; i++)
            CHECK_INT(ops[i].rc, FERRY_ERR_PERMANENT);
    }
    ferry_objstore_destroy(os);
    ferry_objstore_destroy(NULL);
}

static int always(void *opaque)
{
    (void)opaque;
    return 1;
}

static int n_done;

static void count_done(ferry_objstore_op *op, void *opaque)
{
    (void)op;
    (void)opaque;
    n_done++;
}

static void test_batch_cancel(void)
{
    ferry_objstore_conf c;
    ferry_objstore *os;
    ferry_error err;
    ferry_objstore_op ops[5];
    ferry_objstore_batch_opts bo = {0, always, count_done, NULL};
    int i;

    ferry_objstore_conf_init(&c);
    c.endpoint = "http://127.0.0.1:9";
    c.access_key = "a";
    c.secret_key = "b";
    os = ferry_objstore_new(&c, &err);
    CHECK(os != NULL);
    if (!os)
        return;
    for (i = 0; i < 5; i++) {
        ferry_objstore_op_init(&ops[i], FERRY_OBJSTORE_OP_HEAD);
        ops[i].bucket = "bkt";
        ops[i].key = "k";
    }
    n_done = 0;
    CHECK_INT(ferry_objstore_run_batch(os, ops, 5, &bo), FERRY_ERR_CANCELLED);
    CHECK_INT(n_done, 5);
    for (i = 0; i < 5; i++)
        CHECK_INT(ops[i].rc, FERRY_ERR_CANCELLED);
    ferry_objstore_destroy(os);
}

int main(void)
{
    RUN(test_uri_parse);
    RUN(test_overlap);
    RUN(test_dataset_names);
    RUN(test_pct);
    RUN(test_query);
    RUN(test_sigv4);
    RUN(test_xml_results);
    RUN(test_xml_hostile);
    RUN(test_xml_list);
    RUN(test_xml_list_many);
    RUN(test_time);
    RUN(test_classify);
    RUN(test_store_config);
    RUN(test_batch_cancel);
    return TEST_EXIT();
}
