/* Fuzz target: the small S3 response documents (Error, CopyObjectResult, CopyPartResult,
 * InitiateMultipartUploadResult, CompleteMultipartUploadResult) -- ferry_s3xml_parse_result
 * on a body a hostile or broken S3 endpoint sent. Invariants: every field comes back
 * NUL-terminated within its array, and so does the reason of a failure, even when the
 * caller's buffer is tiny. */
#include "fuzz.h"

#include "ferry_s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ferry_s3xml_result r;
    char why[160], tiny[8];
    int rc;

    memset(why, 'x', sizeof(why));
    rc = ferry_s3xml_parse_result((const char *)data, size, &r, why, sizeof(why));
    FUZZ_ASSERT(fuzz_terminated(r.root, sizeof(r.root)));
    FUZZ_ASSERT(fuzz_terminated(r.etag, sizeof(r.etag)));
    FUZZ_ASSERT(fuzz_terminated(r.upload_id, sizeof(r.upload_id)));
    FUZZ_ASSERT(fuzz_terminated(r.code, sizeof(r.code)));
    FUZZ_ASSERT(fuzz_terminated(r.message, sizeof(r.message)));
    if (rc == 0) {
        FUZZ_ASSERT(r.root[0] != '\0');
        FUZZ_ASSERT(r.etag[0] != '"'); /* quotes stripped */
    } else {
        FUZZ_ASSERT(rc == -1);
        FUZZ_ASSERT(fuzz_terminated(why, sizeof(why)) && why[0]);
        /* The same document, a reason buffer too small for any message. */
        FUZZ_ASSERT(
            ferry_s3xml_parse_result((const char *)data, size, &r, tiny, sizeof(tiny)) == -1);
        FUZZ_ASSERT(fuzz_terminated(tiny, sizeof(tiny)));
    }
    return 0;
}
