#include "ferry_sigv4.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAX_HEADERS 32

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void ferry_sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int n = 32;
    return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out,
                &n) &&
                   n == 32
               ? 0
               : -1;
}

int ferry_sigv4_signing_key(const char *secret_key, const char *date8, const char *region,
                            const char *service, unsigned char out[32])
{
    char k0[300];
    unsigned char a[32], b[32];
    int rc = -1, n;

    n = snprintf(k0, sizeof(k0), "AWS4%s", secret_key);
    if (n < 0 || (size_t)n >= sizeof(k0))
        goto out;
    if (hmac(k0, (size_t)n, date8, a) || hmac(a, 32, region, b) || hmac(b, 32, service, a) ||
        hmac(a, 32, "aws4_request", out))
        goto out;
    rc = 0;
out:
    OPENSSL_cleanse(k0, sizeof(k0));
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
    return rc;
}

int ferry_sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return -1;
    to_hex(md, 32, out);
    return 0;
}

/* Value with outer blanks trimmed and inner runs of blanks collapsed, as SigV4's Trimall. */
static int digest_value(EVP_MD_CTX *md, const char *v)
{
    int pending_space = 0, started = 0;

    for (; *v; v++) {
        if (*v == '\r' || *v == '\n')
            return -1;
        if (*v == ' ' || *v == '\t') {
            pending_space = started;
            continue;
        }
        if (pending_space && !EVP_DigestUpdate(md, " ", 1))
            return -1;
        pending_space = 0;
        started = 1;
        if (!EVP_DigestUpdate(md, v, 1))
            return -1;
    }
    return 0;
}

static int name_ok(const char *n)
{
    if (!*n)
        return 0;
    for (; *n; n++) {
        unsigned char c = (unsigned char)*n;
        if (c <= ' ' || c >= 0x7F || c == ':' || (c >= 'A' && c <= 'Z'))
            return 0;
    }
    return 1;
}

size_t ferry_sigv4_authorization(const ferry_sigv4_request *r, char *out, size_t out_size)
{
    const ferry_sigv4_header *h[MAX_HEADERS];
    char signed_headers[1024], hash_hex[65], date8[9], sts[512], sig_hex[65];
    unsigned char md_out[32], sig[32];
    unsigned int md_len = 0;
    size_t i, j, sh = 0, result = 0;
    EVP_MD_CTX *md = NULL;
    int n;

    if (r->n_headers > MAX_HEADERS || strlen(r->amz_date) != 16)
        return 0;
    for (i = 0; i < r->n_headers; i++) {
        const ferry_sigv4_header *t = &r->headers[i];
        if (!name_ok(t->name) || !t->value)
            return 0;
        for (j = i; j > 0 && strcmp(h[j - 1]->name, t->name) > 0; j--)
            h[j] = h[j - 1];
        h[j] = t;
    }
    for (i = 0; i < r->n_headers; i++) {
        size_t len = strlen(h[i]->name);
        if (i && strcmp(h[i - 1]->name, h[i]->name) == 0)
            return 0; /* duplicates would need comma-joining; we never send them */
        if (sh + len + 2 > sizeof(signed_headers))
            return 0;
        if (i)
            signed_headers[sh++] = ';';
        memcpy(signed_headers + sh, h[i]->name, len);
        sh += len;
    }
    signed_headers[sh] = '\0';

    md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        goto out;
#define UPD(s)                                                                                 \
    do {                                                                                       \
        if (!EVP_DigestUpdate(md, (s), strlen(s)))                                             \
            goto out;                                                                          \
    } while (0)
    UPD(r->method);
    UPD("\n");
    UPD(r->canonical_uri);
    UPD("\n");
    UPD(r->canonical_query ? r->canonical_query : "");
    UPD("\n");
    for (i = 0; i < r->n_headers; i++) {
        UPD(h[i]->name);
        UPD(":");
        if (digest_value(md, h[i]->value))
            goto out;
        UPD("\n");
    }
    UPD("\n");
    UPD(signed_headers);
    UPD("\n");
    UPD(r->payload_hash);
#undef UPD
    if (!EVP_DigestFinal_ex(md, md_out, &md_len) || md_len != 32)
        goto out;
    to_hex(md_out, 32, hash_hex);

    memcpy(date8, r->amz_date, 8);
    date8[8] = '\0';
    n = snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
                 r->amz_date, date8, r->region, r->service, hash_hex);
    if (n < 0 || (size_t)n >= sizeof(sts))
        goto out;
    if (hmac(r->signing_key, 32, sts, sig))
        goto out;
    to_hex(sig, 32, sig_hex);
    n = snprintf(out, out_size,
                 "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                 "Signature=%s",
                 r->access_key, date8, r->region, r->service, signed_headers, sig_hex);
    if (n > 0 && (size_t)n < out_size)
        result = (size_t)n;
out:
    EVP_MD_CTX_free(md);
    return result;
}
