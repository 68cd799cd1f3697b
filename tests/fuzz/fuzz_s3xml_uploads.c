/* Fuzz target: ListMultipartUploads pages (ferry_s3xml_parse_uploads), which the worker
 * reads to abort uploads a dead worker left behind, as a hostile or broken S3 endpoint
 * could send them. Each input is parsed twice into the same listing, as pages reuse it.
 * Invariants: every entry has a NUL-terminated key of key_len <= 1024 bytes and an
 * upload_id, both inside the listing's arena, etag "" and size 0; next_token is set only
 * on a truncated page and points into the arena; a failed parse leaves an empty,
 * untruncated listing. */
#include "fuzz.h"

#include "ferry_s3xml.h"
#include "ferry_uri.h"

static int in_arena(const ferry_objstore_listing *l, const char *p)
{
    return p >= l->arena_ && p < l->arena_ + l->arena_len_;
}

static void check_listing(const ferry_objstore_listing *l)
{
    for (size_t i = 0; i < l->count; i++) {
        const ferry_objstore_entry *e = &l->entries[i];
        FUZZ_ASSERT(e->key && e->upload_id && e->etag);
        FUZZ_ASSERT(e->key_len <= FERRY_URI_KEY_MAX);
        FUZZ_ASSERT(strlen(e->key) == e->key_len);
        FUZZ_ASSERT(in_arena(l, e->key) && in_arena(l, e->upload_id));
        FUZZ_ASSERT(in_arena(l, e->upload_id + strlen(e->upload_id)));
        FUZZ_ASSERT(e->etag[0] == '\0' && e->size == 0);
    }
    if (l->next_token) {
        FUZZ_ASSERT(l->is_truncated);
        FUZZ_ASSERT(in_arena(l, l->next_token));
        FUZZ_ASSERT(in_arena(l, l->next_token + strlen(l->next_token)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ferry_objstore_listing l;
    char why[160];
    int rc[2];

    ferry_objstore_listing_init(&l);
    for (int pass = 0; pass < 2; pass++) {
        rc[pass] = ferry_s3xml_parse_uploads((const char *)data, size, &l, why, sizeof(why));
        if (rc[pass] == 0) {
            check_listing(&l);
        } else {
            FUZZ_ASSERT(rc[pass] == -1 && fuzz_terminated(why, sizeof(why)) && why[0]);
            FUZZ_ASSERT(l.count == 0 && !l.is_truncated && !l.next_token);
        }
    }
    FUZZ_ASSERT(rc[0] == rc[1]); /* reusing the listing changes nothing */
    ferry_objstore_listing_free(&l);
    return 0;
}
