/* Unit: the parts of ferry_objstore that need no server -- the listing builder backends
 * use, the ListMultipartUploads parser, configuration checks of both backends, and ops that
 * are refused before any request (they complete from the first pump). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_objstore.h"
#include "ferry_s3xml.h"
#include "ferry_test.h"
#include "objstore/objstore_internal.h"

static void listing_builder(void)
{
    ferry_objstore_listing l;
    char key[32];
    size_t i;

    ferry_objstore_listing_init(&l);
    ferry_objstore__listing_begin(&l);
    CHECK_INT(ferry_objstore__listing_add(&l, "a/", 2, 0, "", 0), 0); /* a directory */
    CHECK_INT(ferry_objstore__listing_add(&l, "a/x", 3, 5, "e1", 1000), 0);
    CHECK_INT(ferry_objstore__listing_add(&l, "b", 1, 0, "", 0), 0);    /* object, no ETag */
    CHECK_INT(ferry_objstore__listing_add(&l, "c/", 2, 0, NULL, 0), 0); /* last: skipped */
    ferry_objstore__listing_end(&l, 1);
    CHECK_INT(l.count, 2);
    CHECK_INT(l.skipped_dirs, 2);
    CHECK_STR(l.entries[0].key, "a/x");
    CHECK_STR(l.entries[0].etag, "e1");
    CHECK_INT(l.entries[0].size, 5);
    CHECK_INT(l.entries[0].last_modified_ms, 1000);
    CHECK(l.entries[0].upload_id == NULL);
    CHECK_STR(l.entries[1].key, "b");
    CHECK_STR(l.entries[1].etag, "");
    CHECK(l.is_truncated);
    CHECK_STR(l.next_token, "c/"); /* the page's last key, skipped or not */

    /* reuse: a big page (the arena moves while it grows; pointers are fixed at the end) */
    ferry_objstore__listing_begin(&l);
    for (i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof(key), "k%06zu", i);
        CHECK_INT(ferry_objstore__listing_add(&l, key, (size_t)n, i, "etag", 0), 0);
    }
    ferry_objstore__listing_end(&l, 0);
    CHECK_INT(l.count, 5000);
    CHECK_INT(l.skipped_dirs, 0);
    CHECK_STR(l.entries[4999].key, "k004999");
    CHECK_INT(l.entries[4999].key_len, 7);
    CHECK_STR(l.entries[0].etag, "etag");
    CHECK(!l.is_truncated && l.next_token == NULL);
    ferry_objstore_listing_free(&l);
}

static void uploads_parser(void)
{
    static const char doc[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
        "<NextKeyMarker>k &amp; 2</NextKeyMarker><MaxUploads>2</MaxUploads>"
        "<IsTruncated>true</IsTruncated>"
        "<Upload><Key>k1</Key><UploadId>id-1</UploadId><Initiator><ID>x</ID></Initiator>"
        "<StorageClass>STANDARD</StorageClass><Initiated>2026-11-26T01:00:00.000Z</Initiated>"
        "</Upload>"
        "<Upload><Key>k &amp; 2</Key><UploadId>id-2</UploadId></Upload>"
        "</ListMultipartUploadsResult>";
    static const char empty[] = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
                                "</ListMultipartUploadsResult>";
    static const char no_id[] =
        "<ListMultipartUploadsResult><Upload><Key>k</Key></Upload></ListMultipartUploadsResult>";
    static const char err_doc[] = "<Error><Code>AccessDenied</Code></Error>";
    static const char objects[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                                  "</ListBucketResult>";
    static const char doctype[] =
        "<!DOCTYPE x [<!ENTITY a \"b\">]><ListMultipartUploadsResult/>";
    ferry_objstore_listing l;
    char why[160];

    ferry_objstore_listing_init(&l);
    CHECK_INT(ferry_s3xml_parse_uploads(doc, sizeof(doc) - 1, &l, why, sizeof(why)), 0);
    CHECK_INT(l.count, 2);
    if (l.count == 2) {
        CHECK_STR(l.entries[0].key, "k1");
        CHECK_STR(l.entries[0].upload_id, "id-1");
        CHECK_STR(l.entries[0].etag, "");
        CHECK_STR(l.entries[1].key, "k & 2");
        CHECK_STR(l.entries[1].upload_id, "id-2");
    }
    CHECK(l.is_truncated);
    CHECK_STR(l.next_token, "k & 2");
    CHECK_INT(ferry_s3xml_parse_uploads(empty, sizeof(empty) - 1, &l, why, sizeof(why)), 0);
    CHECK_INT(l.count, 0);
    CHECK(!l.is_truncated && !l.next_token);
    CHECK_INT(ferry_s3xml_parse_uploads(no_id, sizeof(no_id) - 1, &l, why, sizeof(why)), -1);
    CHECK_INT(ferry_s3xml_parse_uploads(err_doc, sizeof(err_doc) - 1, &l, why, sizeof(why)),
              -1);
    CHECK(strstr(why, "Error") != NULL);
    CHECK_INT(ferry_s3xml_parse_uploads(objects, sizeof(objects) - 1, &l, why, sizeof(why)),
              -1);
    CHECK_INT(ferry_s3xml_parse_uploads(doctype, sizeof(doctype) - 1, &l, why, sizeof(why)),
              -1);
    /* and the object listing parser does not take an uploads document */
    CHECK_INT(ferry_s3xml_parse_list(doc, sizeof(doc) - 1, &l, why, sizeof(why)), -1);
    CHECK_INT(l.count, 0);
    ferry_objstore_listing_free(&l);
}

static ferry_objstore *make(const char *backend, const char *endpoint, size_t tx_buffer,
                            int insecure, int max_in_flight, ferry_error *err)
{
    ferry_objstore_conf c;

    ferry_objstore_conf_init(&c);
    c.backend = backend;
    c.endpoint = endpoint;
    c.access_key = "AKIDEXAMPLE";
    c.secret_key = "offline-secret-never-printed";
    c.transfer_buffer_bytes = tx_buffer;
    c.insecure_tls_ok = insecure;
    c.max_in_flight = max_in_flight;
    return ferry_objstore_new(&c, err);
}

static void config_checks(void)
{
    ferry_error err;
    ferry_objstore *os;
    ferry_objstore_conf c;

    ferry_objstore_conf_init(&c);
    CHECK_INT(c.transfer_buffer_bytes, 1 << 20);
    CHECK_INT(c.insecure_tls_ok, 0);

    os = make("libs3", "https://s3.example.com", 0, 0, 4, &err);
    CHECK(os == NULL);
    CHECK(!os && !strcmp(err.cls, FERRY_EC_CONFIG) &&
          strstr(err.msg, "does not verify TLS certificates"));
    ferry_objstore_destroy(os);
    os = make("libs3", "https://s3.example.com", 0, 1, 4, &err);
    CHECK(os != NULL);
    ferry_objstore_destroy(os);
    os = make("libs3", "http://s3.example.com:9000/", 0, 0, 4, &err);
    CHECK(os != NULL);
    if (os)
        CHECK_STR(ferry_objstore_backend_name(os), "libs3");
    ferry_objstore_destroy(os);
    os = make("libs3", "ftp://s3.example.com", 0, 0, 4, &err);
    CHECK(os == NULL);
    ferry_objstore_destroy(os);
    os = make("libs3", "http://user@s3.example.com", 0, 0, 4, &err);
    CHECK(os == NULL);
    ferry_objstore_destroy(os);

    os = make("sigv4", "http://s3.example.com", 1024, 0, 4, &err); /* buffer too small */
    CHECK(os == NULL);
    CHECK(!os && strstr(err.msg, "transfer buffer") != NULL);
    ferry_objstore_destroy(os);
    os = make("sigv4", "http://s3.example.com", (size_t)65 << 20, 0, 4, &err);
    CHECK(os == NULL);
    ferry_objstore_destroy(os);
    os = make("sigv4", "http://s3.example.com", 64 << 10, 0, 4, &err);
    CHECK(os != NULL);
    ferry_objstore_destroy(os);
    os = make("v2", "http://s3.example.com", 0, 0, 4, &err);
    CHECK(os == NULL);
    CHECK(!os && strstr(err.msg, "libs3") != NULL);
    ferry_objstore_destroy(os);
}

/* Refused at submit: no request, so no server needed. */
static void refusals_before_any_request(void)
{
    ferry_error err;
    ferry_objstore *v4 = make("sigv4", "http://127.0.0.1:9", 0, 0, 4, &err);
    ferry_objstore *one = make("sigv4", "http://127.0.0.1:9", 0, 0, 1, &err);
    ferry_objstore *v2 = make("libs3", "http://127.0.0.1:9", 0, 0, 4, &err);
    ferry_objstore_op op;

    CHECK(v4 && one && v2);
    if (!v4 || !one || !v2)
        goto out;
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_TRANSFER);
    op.src_bucket = "src";
    op.src_key = "k";
    op.bucket = "dst";
    op.key = "k";
    CHECK_INT(ferry_objstore_exec(v4, &op), FERRY_ERR_PERMANENT); /* no source store */
    CHECK_STR(op.err.cls, FERRY_EC_CONFIG);
    op.src_store = v2;
    CHECK_INT(ferry_objstore_exec(v4, &op), FERRY_ERR_PERMANENT); /* source not sigv4 */
    CHECK(strstr(op.err.msg, "sigv4") != NULL);
    op.src_store = v4;
    CHECK_INT(ferry_objstore_exec(one, &op), FERRY_ERR_PERMANENT); /* one slot */
    CHECK(strstr(op.err.msg, "max_in_flight") != NULL);
    CHECK_INT(ferry_objstore_exec(v2, &op), FERRY_ERR_PERMANENT); /* libs3 cannot stream */
    CHECK_STR(op.err.cls, FERRY_EC_CONFIG);
    op.src_key = "";
    CHECK_INT(ferry_objstore_exec(v4, &op), FERRY_ERR_PERMANENT);
    CHECK_STR(op.err.cls, FERRY_EC_S3_CLIENT);

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_COPY);
    op.src_bucket = "src";
    op.src_key = "k";
    op.src_size = ((uint64_t)5 << 30) + 1;
    op.bucket = "dst";
    op.key = "k";
    CHECK_INT(ferry_objstore_exec(v2, &op), FERRY_ERR_PERMANENT);
    CHECK(strstr(op.err.msg, "5 GiB") != NULL);
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_PUT);
    op.bucket = "b";
    op.key = "k";
    op.if_none_match = 1;
    CHECK_INT(ferry_objstore_exec(v2, &op), FERRY_ERR_PERMANENT);
    CHECK(strstr(op.err.msg, "If-None-Match") != NULL);
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_LIST_UPLOADS);
    op.bucket = "b";
    CHECK_INT(ferry_objstore_exec(v2, &op), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_objstore_exec(v4, &op), FERRY_ERR_PERMANENT); /* no listing given */
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_ABORT_UPLOAD);
    op.bucket = "b";
    op.key = "k";
    CHECK_INT(ferry_objstore_exec(v4, &op), FERRY_ERR_PERMANENT); /* no upload id */
    CHECK(strstr(op.err.msg, "upload id") != NULL);
    CHECK(strstr(op.err.msg, "offline-secret") == NULL);
out:
    ferry_objstore_destroy(v4);
    ferry_objstore_destroy(one);
    ferry_objstore_destroy(v2);
}

/* Failure scope of a failed copy (DESIGN.md §9): which errors stop the dataset and which
 * only the object. */
/* One list of checksum algorithms for headers (any case) and XML elements. */
static void checksum_names(void)
{
    CHECK_STR(ferry_objstore_checksum_algo("crc32c", 6), "CRC32C");
    CHECK_STR(ferry_objstore_checksum_algo("CRC32C", 6), "CRC32C");
    CHECK_STR(ferry_objstore_checksum_algo("crc32c-extra", 5), "CRC32"); /* len counts */
    CHECK_STR(ferry_objstore_checksum_algo("Crc64Nvme", 9), "CRC64NVME");
    CHECK(ferry_objstore_checksum_algo("md5", 3) == NULL);
    CHECK(ferry_objstore_checksum_algo("mode", 4) == NULL);
    CHECK(ferry_objstore_checksum_algo("", 0) == NULL);
    CHECK(ferry_objstore_checksum_composite("AAAAAA==-3", ""));
    CHECK(ferry_objstore_checksum_composite("AAAAAA==", "COMPOSITE"));
    CHECK(!ferry_objstore_checksum_composite("AAAAAA==", "FULL_OBJECT"));
    CHECK(!ferry_objstore_checksum_composite("AAAAAA==", NULL));
}

static void object_scope(void)
{
    static const struct {
        ferry_rc rc;
        int status;
        const char *code;
        ferry_objstore_scope scope;
        const char *cls;
        const char *msg; /* the op's err.msg; NULL where it does not matter */
    } cases[] = {
        {FERRY_ERR_PERMANENT, 403, "AccessDenied", FERRY_SCOPE_OBJECT, FERRY_EC_S3_AUTH, NULL},
        {FERRY_ERR_PERMANENT, 403, "AccessDenied", FERRY_SCOPE_OBJECT, FERRY_EC_S3_AUTH,
         "copy b/kms:x -> c/kms:x: 403 AccessDenied: Access Denied"},
        /* what AWS answers when the caller may not use the object's KMS key */
        {FERRY_ERR_PERMANENT, 403, "AccessDenied", FERRY_SCOPE_OBJECT, FERRY_EC_S3_KMS,
         "copy b/k -> c/k: 403 AccessDenied: The ciphertext refers to a customer master key "
         "that does not exist, does not exist in this region, or you are not allowed to "
         "access."},
        {FERRY_ERR_PERMANENT, 403, "AccessDenied", FERRY_SCOPE_OBJECT, FERRY_EC_S3_KMS,
         "copy b/k -> c/k: 403 AccessDenied: User: arn:aws:iam::1:user/u is not authorized "
         "to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:1:key/k"},
        {FERRY_ERR_PERMANENT, 403, "InvalidObjectState", FERRY_SCOPE_OBJECT,
         FERRY_EC_S3_ARCHIVED, NULL},
        {FERRY_ERR_PERMANENT, 403, "ObjectNotInActiveTierError", FERRY_SCOPE_OBJECT,
         FERRY_EC_S3_ARCHIVED, NULL},
        {FERRY_ERR_PERMANENT, 400, "KMS.DisabledException", FERRY_SCOPE_OBJECT, FERRY_EC_S3_KMS,
         NULL},
        {FERRY_ERR_PERMANENT, 400, "KeyTooLongError", FERRY_SCOPE_OBJECT,
         FERRY_EC_S3_INVALID_KEY, NULL},
        {FERRY_ERR_PERMANENT, 400, "BadDigest", FERRY_SCOPE_OBJECT, FERRY_EC_S3_BAD_DIGEST,
         NULL},
        {FERRY_ERR_PERMANENT, 404, "NoSuchKey", FERRY_SCOPE_VANISHED, FERRY_EC_VANISHED, NULL},
        /* the whole dataset: wrong credentials, a bucket gone, anything unknown */
        {FERRY_ERR_PERMANENT, 403, "InvalidAccessKeyId", FERRY_SCOPE_DATASET, FERRY_EC_S3_AUTH,
         NULL},
        {FERRY_ERR_PERMANENT, 403, "SignatureDoesNotMatch", FERRY_SCOPE_DATASET,
         FERRY_EC_S3_AUTH, NULL},
        {FERRY_ERR_PERMANENT, 404, "NoSuchBucket", FERRY_SCOPE_DATASET, FERRY_EC_S3_NOT_FOUND,
         NULL},
        {FERRY_ERR_PERMANENT, 404, "", FERRY_SCOPE_DATASET, FERRY_EC_S3_NOT_FOUND, NULL},
        {FERRY_ERR_PERMANENT, 400, "InvalidRequest", FERRY_SCOPE_DATASET, FERRY_EC_S3_CLIENT,
         NULL},
        /* the endpoint: retryable */
        {FERRY_ERR_RETRYABLE, 503, "SlowDown", FERRY_SCOPE_ENDPOINT, FERRY_EC_S3_SERVER, NULL},
        {FERRY_ERR_RETRYABLE, 0, "", FERRY_SCOPE_ENDPOINT, FERRY_EC_S3_CLIENT, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *cls = NULL;
        ferry_objstore_scope sc = ferry_objstore_object_scope(cases[i].rc, cases[i].status,
                                                              cases[i].code, cases[i].msg,
                                                              &cls);
        if (sc != cases[i].scope || !cls || strcmp(cls, cases[i].cls) != 0) {
            fprintf(stderr, "  case %zu (%d %s): scope %d class %s\n", i, cases[i].status,
                    cases[i].code, (int)sc, cls ? cls : "(null)");
            CHECK(0);
        }
    }
}

int main(void)
{
    RUN(checksum_names);
    RUN(object_scope);
    RUN(listing_builder);
    RUN(uploads_parser);
    RUN(config_checks);
    RUN(refusals_before_any_request);
    return TEST_EXIT();
}
