/* Fuzz target: ListObjectsV2 pages (ferry_s3xml_parse_list) and the LastModified
 * timestamps in them (ferry_s3xml_parse_time), as a hostile or broken S3 endpoint could
 * send them. Each input is parsed twice into the same listing, as the copy engine reuses
 * one listing across pages. Invariants: every entry's key is NUL-terminated, as long as
 * key_len says, at most 1024 bytes and inside the listing's arena; etag is never NULL;
 * next_token is set only on a truncated page and is one of its keys (or a skipped
 * directory's); a failed parse leaves an empty, untruncated listing. */
#include "fuzz.h"

#include "ferry_s3xml.h"
#include "ferry_uri.h"

static void check_listing(const ferry_objstore_listing *l)
{
    for (size_t i = 0; i < l->count; i++) {
        const ferry_objstore_entry *e = &l->entries[i];
        FUZZ_ASSERT(e->key && e->etag);
        FUZZ_ASSERT(e->key_len <= FERRY_URI_KEY_MAX);
        FUZZ_ASSERT(strlen(e->key) == e->key_len);
        FUZZ_ASSERT(e->key >= l->arena_ && e->key + e->key_len < l->arena_ + l->arena_len_);
        FUZZ_ASSERT(e->upload_id == NULL); /* object listings have none */
        FUZZ_ASSERT(e->last_modified_ms >= 0);
        (void)strlen(e->etag);
    }
    if (l->next_token) {
        FUZZ_ASSERT(l->is_truncated);
        FUZZ_ASSERT(l->next_token >= l->arena_ && l->next_token < l->arena_ + l->arena_len_);
        (void)strlen(l->next_token);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ferry_objstore_listing l;
    char why[160];
    int rc[2];
    char *s;

    ferry_objstore_listing_init(&l);
    for (int pass = 0; pass < 2; pass++) {
        rc[pass] = ferry_s3xml_parse_list((const char *)data, size, &l, why, sizeof(why));
        if (rc[pass] == 0) {
            check_listing(&l);
        } else {
            FUZZ_ASSERT(rc[pass] == -1 && fuzz_terminated(why, sizeof(why)) && why[0]);
            FUZZ_ASSERT(l.count == 0 && !l.is_truncated && !l.next_token);
        }
    }
    FUZZ_ASSERT(rc[0] == rc[1]); /* reusing the listing changes nothing */
    ferry_objstore_listing_free(&l);

    s = fuzz_cstr(data, size);
    (void)ferry_s3xml_parse_time(s);
    free(s);
    return 0;
}
