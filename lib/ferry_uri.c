#include "ferry_uri.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void why_set(char *why, size_t why_size, const char *msg)
{
    if (why && why_size)
        snprintf(why, why_size, "%s", msg);
}

static int is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int has_suffix(const char *s, size_t len, const char *suf)
{
    size_t n = strlen(suf);
    return len >= n && memcmp(s + len - n, suf, n) == 0;
}

/* Four dot-separated decimal numbers, as S3 forbids ("192.168.5.4"). */
static int looks_like_ipv4(const char *s)
{
    int parts = 0, digits = 0;

    for (;; s++) {
        if (*s >= '0' && *s <= '9') {
            if (++digits > 3)
                return 0;
        } else if (*s == '.' || *s == '\0') {
            if (!digits)
                return 0;
            parts++;
            digits = 0;
            if (*s == '\0')
                break;
        } else {
            return 0;
        }
    }
    return parts == 4;
}

int ferry_uri_bucket_valid(const char *name, char *why, size_t why_size)
{
    static const char *const bad_prefixes[] = {"xn--", "sthree-", "amzn-s3-demo-"};
    static const char *const bad_suffixes[] = {"-s3alias", "--ol-s3", ".mrap", "--x-s3",
                                               "--table-s3"};
    size_t len, i;

    if (!name || !*name) {
        why_set(why, why_size, "bucket name is empty");
        return 0;
    }
    len = strlen(name);
    if (len < 3 || len > FERRY_URI_BUCKET_MAX) {
        why_set(why, why_size, "bucket name must be 3 to 63 characters long");
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!is_lower_alnum(c) && c != '.' && c != '-') {
            why_set(why, why_size,
                    "bucket name may hold only lowercase letters, digits, '.' and '-'");
            return 0;
        }
    }
    if (!is_lower_alnum((unsigned char)name[0]) ||
        !is_lower_alnum((unsigned char)name[len - 1])) {
        why_set(why, why_size, "bucket name must start and end with a letter or digit");
        return 0;
    }
    if (strstr(name, "..")) {
        why_set(why, why_size, "bucket name must not contain two adjacent periods");
        return 0;
    }
    if (looks_like_ipv4(name)) {
        why_set(why, why_size, "bucket name must not be formatted as an IP address");
        return 0;
    }
    for (i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++) {
        if (has_prefix(name, bad_prefixes[i])) {
            if (why && why_size)
                snprintf(why, why_size, "bucket name must not start with \"%s\"",
                         bad_prefixes[i]);
            return 0;
        }
    }
    for (i = 0; i < sizeof(bad_suffixes) / sizeof(bad_suffixes[0]); i++) {
        if (has_suffix(name, len, bad_suffixes[i])) {
            if (why && why_size)
                snprintf(why, why_size, "bucket name must not end with \"%s\"",
                         bad_suffixes[i]);
            return 0;
        }
    }
    return 1;
}

/* Length of the UTF-8 sequence at s (at most avail bytes) and its code point, or 0 if it is
 * not well-formed (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    size_t n, i;
    uint32_t c, min;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        n = 2, c = s[0] & 0x1F, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3, c = s[0] & 0x0F, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

int ferry_uri_prefix_valid(const char *prefix, char *why, size_t why_size)
{
    const unsigned char *p = (const unsigned char *)prefix;
    size_t len, i, seg_start = 0;

    if (!prefix) {
        why_set(why, why_size, "prefix is missing");
        return 0;
    }
    len = strlen(prefix);
    if (len > FERRY_URI_KEY_MAX) {
        why_set(why, why_size, "prefix is longer than 1024 bytes");
        return 0;
    }
    if (p[0] == '/') {
        why_set(why, why_size, "prefix must not start with '/'");
        return 0;
    }
    for (i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (!n) {
            why_set(why, why_size, "prefix is not valid UTF-8");
            return 0;
        }
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
            why_set(why, why_size, "prefix contains a control character");
            return 0;
        }
        i += n;
    }
    for (i = 0; i <= len; i++) {
        if (i == len || p[i] == '/') {
            size_t seg = i - seg_start;
            if ((seg == 1 && p[seg_start] == '.') ||
                (seg == 2 && p[seg_start] == '.' && p[seg_start + 1] == '.')) {
                why_set(why, why_size, "prefix must not contain a \".\" or \"..\" segment");
                return 0;
            }
            seg_start = i + 1;
        }
    }
    return 1;
}

ferry_rc ferry_uri_parse(const char *text, ferry_uri *out, ferry_error *err)
{
    const char *b, *slash;
    size_t blen;
    char why[128];

    memset(out, 0, sizeof(*out));
    if (!text || strncmp(text, "s3://", 5) != 0)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "location must look like s3://bucket/prefix");
    b = text + 5;
    slash = strchr(b, '/');
    blen = slash ? (size_t)(slash - b) : strlen(b);
    if (blen > FERRY_URI_BUCKET_MAX) {
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "invalid s3:// location: bucket name must be 3 to 63 "
                               "characters long");
    }
    memcpy(out->bucket, b, blen);
    out->bucket[blen] = '\0';
    if (!ferry_uri_bucket_valid(out->bucket, why, sizeof(why)))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "invalid s3:// location: %s", why);
    if (slash) {
        const char *prefix = slash + 1;
        if (!ferry_uri_prefix_valid(prefix, why, sizeof(why)))
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                   "invalid s3:// location: %s", why);
        snprintf(out->prefix, sizeof(out->prefix), "%s", prefix);
    }
    return FERRY_OK;
}

int ferry_uri_format(const ferry_uri *u, char *out, size_t size)
{
    return snprintf(out, size, "s3://%s/%s", u->bucket, u->prefix);
}

int ferry_uri_overlaps(const ferry_uri *a, const ferry_uri *b)
{
    size_t la, lb;

    if (strcmp(a->bucket, b->bucket) != 0)
        return 0;
    la = strlen(a->prefix);
    lb = strlen(b->prefix);
    return strncmp(a->prefix, b->prefix, la < lb ? la : lb) == 0;
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

size_t ferry_uri_pct_encode(const char *in, size_t len, int keep_slash, char *out,
                            size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            if (o + 1 < out_size)
                out[o] = (char)c;
            o++;
        } else {
            if (o + 3 < out_size) {
                out[o] = '%';
                out[o + 1] = hex[c >> 4];
                out[o + 2] = hex[c & 15];
            } else if (o < out_size) {
                out_size = o + 1; /* don't emit a partial escape */
            }
            o += 3;
        }
    }
    if (out_size)
        out[o < out_size ? o : out_size - 1] = '\0';
    return o;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t ferry_uri_pct_decode(const char *in, size_t len, int plus_is_space, char *out,
                            size_t out_size)
{
    size_t i, o = 0;

    if (out_size < len + 1)
        return (size_t)-1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return (size_t)-1;
            hi = hexval((unsigned char)in[i + 1]);
            lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return (size_t)-1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0')
            return (size_t)-1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return o;
}

static int qparam_cmp(const ferry_uri_qparam *a, const ferry_uri_qparam *b)
{
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    if (!a->value || !b->value)
        return (a->value != NULL) - (b->value != NULL);
    return strcmp(a->value, b->value);
}

size_t ferry_uri_query_build(ferry_uri_qparam *params, size_t n, char *out, size_t out_size)
{
    size_t i, j, o = 0;

    if (n > 16)
        return (size_t)-1;
    /* Insertion sort: n is tiny. Names are S3's own parameter names, all unreserved
     * characters, so raw order equals encoded order. */
    for (i = 1; i < n; i++) {
        ferry_uri_qparam t = params[i];
        for (j = i; j > 0 && qparam_cmp(&params[j - 1], &t) > 0; j--)
            params[j] = params[j - 1];
        params[j] = t;
    }
    if (out_size)
        out[0] = '\0';
    for (i = 0; i < n; i++) {
        const char *v = params[i].value ? params[i].value : "";
        if (i) {
            if (o + 1 < out_size)
                out[o] = '&';
            o++;
        }
        /* Past the end, encode into nothing (not out + out_size: out may be NULL when
         * only the length is wanted, and NULL + 0 is undefined). */
        o += ferry_uri_pct_encode(params[i].name, strlen(params[i].name), 0,
                                  o < out_size ? out + o : NULL,
                                  o < out_size ? out_size - o : 0);
        if (o + 1 < out_size)
            out[o] = '=';
        o++;
        o += ferry_uri_pct_encode(v, strlen(v), 0, o < out_size ? out + o : NULL,
                                  o < out_size ? out_size - o : 0);
    }
    if (out_size)
        out[o < out_size ? o : out_size - 1] = '\0';
    return o;
}
