/* Fuzz target: s3:// URIs and the S3 name rules (ferry_uri_parse, _bucket_valid,
 * _prefix_valid, _overlaps, _format) and the percent-encoding used for signing and for
 * url-encoded listings (ferry_uri_pct_encode, _pct_decode, _query_build).
 *
 * Input: the text up to the first NUL is URI A (and the bytes for every string function);
 * the text after it is URI B; the whole input, NULs included, is encoded and decoded as
 * bytes; the lines of A are query parameters "name[=value]".
 * Invariants: a parsed URI satisfies the bucket and prefix rules and survives
 * format -> parse unchanged; overlaps is symmetric and reflexive; encoding returns the
 * same length whatever the buffer, truncates on an escape boundary and always
 * NUL-terminates; decode(encode(x)) == x for NUL-free x; decoding in place equals
 * decoding into another buffer. */
#include "fuzz.h"

#include "ferry_uri.h"

static void check_parsed(const char *text, const ferry_uri *u)
{
    char why[128], buf[FERRY_URI_BUCKET_MAX + FERRY_URI_KEY_MAX + 16];
    ferry_uri again;
    ferry_error err;

    FUZZ_ASSERT(ferry_uri_bucket_valid(u->bucket, why, sizeof(why)));
    FUZZ_ASSERT(ferry_uri_prefix_valid(u->prefix, why, sizeof(why)));
    FUZZ_ASSERT(u->prefix[0] != '/');
    int n = ferry_uri_format(u, buf, sizeof(buf));
    FUZZ_ASSERT(n > 0 && (size_t)n < sizeof(buf));
    FUZZ_ASSERT(ferry_uri_parse(buf, &again, &err) == FERRY_OK);
    FUZZ_ASSERT(strcmp(again.bucket, u->bucket) == 0 && strcmp(again.prefix, u->prefix) == 0);
    (void)text;
}

static void check_encode(const uint8_t *data, size_t size, int keep_slash)
{
    size_t need = ferry_uri_pct_encode((const char *)data, size, keep_slash, NULL, 0);
    char *full = malloc(need + 1), *dec = malloc(need + 1);
    const size_t sizes[] = {1, 2, 3, 4, need / 2 + 1, need};

    FUZZ_ASSERT(full && dec);
    FUZZ_ASSERT(need >= size && need <= 3 * size);
    FUZZ_ASSERT(ferry_uri_pct_encode((const char *)data, size, keep_slash, full, need + 1) ==
                need);
    FUZZ_ASSERT(strlen(full) == need);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t sz = sizes[i];
        if (sz == 0)
            continue;
        char *t = malloc(sz);
        FUZZ_ASSERT(t);
        FUZZ_ASSERT(ferry_uri_pct_encode((const char *)data, size, keep_slash, t, sz) == need);
        size_t tl = strlen(t); /* ASan catches a missing NUL */
        FUZZ_ASSERT(tl < sz && memcmp(t, full, tl) == 0);
        /* never a partial %XX at the end */
        const char *pct = memrchr(t, '%', tl);
        FUZZ_ASSERT(!pct || (size_t)(pct - t) + 3 <= tl);
        free(t);
    }
    /* Decoding gives the bytes back, unless they held a NUL (refused by design). */
    size_t dn = ferry_uri_pct_decode(full, need, 0, dec, need + 1);
    if (memchr(data, '\0', size)) {
        FUZZ_ASSERT(dn == (size_t)-1);
    } else {
        FUZZ_ASSERT(dn == size && memcmp(dec, data, size) == 0);
        FUZZ_ASSERT(ferry_uri_pct_decode(full, need, 1, dec, need + 1) == size);
    }
    free(full);
    free(dec);
}

static void check_decode(const uint8_t *data, size_t size)
{
    char *out = malloc(size + 1), *inplace = malloc(size + 1);

    FUZZ_ASSERT(out && inplace);
    for (int plus = 0; plus < 2; plus++) {
        size_t n = ferry_uri_pct_decode((const char *)data, size, plus, out, size + 1);
        if (size)
            memcpy(inplace, data, size);
        size_t m = ferry_uri_pct_decode(inplace, size, plus, inplace, size + 1);
        FUZZ_ASSERT(n == m);
        if (n != (size_t)-1) {
            FUZZ_ASSERT(n <= size && strlen(out) == n && memcmp(out, inplace, n) == 0);
        }
        /* too small an output buffer is refused, not overrun */
        if (size)
            FUZZ_ASSERT(ferry_uri_pct_decode((const char *)data, size, plus, out, size) ==
                        (size_t)-1);
    }
    free(out);
    free(inplace);
}

static void check_query(char *text)
{
    ferry_uri_qparam params[17];
    size_t n = 0;
    char *save = NULL;

    for (char *line = strtok_r(text, "\n", &save); line && n < 17;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (eq)
            *eq = '\0';
        params[n].name = line;
        params[n].value = eq ? eq + 1 : NULL;
        n++;
    }
    size_t need = ferry_uri_query_build(params, n, NULL, 0);
    if (n > 16) {
        FUZZ_ASSERT(need == (size_t)-1);
        return;
    }
    char *full = malloc(need + 1), *half = malloc(need / 2 + 1);
    FUZZ_ASSERT(full && half);
    FUZZ_ASSERT(ferry_uri_query_build(params, n, full, need + 1) == need);
    FUZZ_ASSERT(strlen(full) == need);
    FUZZ_ASSERT(ferry_uri_query_build(params, n, half, need / 2 + 1) == need);
    FUZZ_ASSERT(strlen(half) <= need / 2 && strncmp(half, full, strlen(half)) == 0);
    free(full);
    free(half);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *a = fuzz_cstr(data, size), *b;
    size_t alen = strlen(a);
    char why[128], small[5];
    ferry_uri ua, ub;
    ferry_error err;
    int pa, pb;

    b = fuzz_cstr(data + (alen < size ? alen + 1 : size), alen < size ? size - alen - 1 : 0);

    pa = ferry_uri_parse(a, &ua, &err) == FERRY_OK;
    if (pa)
        check_parsed(a, &ua);
    else
        FUZZ_ASSERT(err.rc == FERRY_ERR_PERMANENT &&
                    strcmp(err.cls, FERRY_EC_INVALID_SPEC) == 0);
    pb = ferry_uri_parse(b, &ub, &err) == FERRY_OK;
    if (pb)
        check_parsed(b, &ub);
    if (pa && pb) {
        FUZZ_ASSERT(ferry_uri_overlaps(&ua, &ub) == ferry_uri_overlaps(&ub, &ua));
        FUZZ_ASSERT(ferry_uri_overlaps(&ua, &ua));
    }

    if (!ferry_uri_bucket_valid(a, why, sizeof(why)))
        FUZZ_ASSERT(why[0] && fuzz_terminated(why, sizeof(why)));
    memset(small, 'x', sizeof(small));
    if (!ferry_uri_bucket_valid(a, small, sizeof(small)))
        FUZZ_ASSERT(fuzz_terminated(small, sizeof(small)));
    (void)ferry_uri_bucket_valid(a, NULL, 0);
    if (!ferry_uri_prefix_valid(a, why, sizeof(why)))
        FUZZ_ASSERT(why[0] && fuzz_terminated(why, sizeof(why)));
    (void)ferry_uri_prefix_valid(a, NULL, 0);

    check_encode(data, size, 0);
    check_encode(data, size, 1);
    check_decode(data, size);
    check_query(a); /* last: it cuts a into pieces */

    free(a);
    free(b);
    return 0;
}
