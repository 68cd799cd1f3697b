#include "ferry_s3xml.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <expat.h>

#include "ferry_uri.h"
#include "objstore/objstore_internal.h"

#define NS_SEP '\x01' /* cannot occur in an XML document, so never in a namespace */
#define MAX_DEPTH 16
#define MAX_TEXT 8192      /* an encoded 1024-byte key is at most 3072 */
#define MAX_ENTRIES 100000 /* S3 sends at most 1000 per page */

enum field {
    F_NONE = 0,
    /* result documents */
    F_ETAG,
    F_UPLOAD_ID,
    F_CODE,
    F_MESSAGE,
    F_CHECKSUM,
    /* ListBucketResult */
    F_IS_TRUNCATED,
    F_ENCODING_TYPE,
    F_C_KEY,
    F_C_SIZE,
    F_C_ETAG,
    F_C_LAST_MODIFIED,
    F_P_PREFIX, /* CommonPrefixes/Prefix */
    /* ListMultipartUploadsResult (Upload/Key and IsTruncated reuse the above) */
    F_U_UPLOAD_ID,
};

typedef struct pctx {
    XML_Parser p;
    int depth;
    int is_list;
    int uploads; /* is_list for a ListMultipartUploadsResult: Upload entries */
    char root[64];
    int in_contents;
    int in_prefixes;  /* inside CommonPrefixes */
    enum field field; /* element whose text is being collected */
    int field_depth;
    char text[MAX_TEXT + 1];
    size_t text_len;
    int text_truncated;
    char why[160];
    int failed;
    /* results */
    ferry_s3xml_result *r;
    ferry_objstore_listing *l;
    int url_encoded;
    int have_key, have_size;
    ferry_objstore_entry cur;
} pctx;

static void fail(pctx *c, const char *why)
{
    if (!c->failed) {
        c->failed = 1;
        snprintf(c->why, sizeof(c->why), "%s", why);
    }
    XML_StopParser(c->p, XML_FALSE);
}

static const char *local_name(const XML_Char *name)
{
    const char *s = strrchr(name, NS_SEP);
    return s ? s + 1 : name;
}

static void strip_etag(const char *in, char *out, size_t size)
{
    size_t len;

    while (*in == ' ' || *in == '\t' || *in == '\n' || *in == '\r' || *in == '"')
        in++;
    len = strlen(in);
    while (len && (in[len - 1] == ' ' || in[len - 1] == '\t' || in[len - 1] == '\n' ||
                   in[len - 1] == '\r' || in[len - 1] == '"'))
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(out, in, len);
    out[len] = '\0';
}

static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
        s++;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
        s++;
    if (*s)
        return -1;
    *out = v;
    return 0;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0, i;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

long long ferry_s3xml_parse_time(const char *s)
{
    struct tm tm;
    int y, mo, d, h, mi, se, ms = 0;
    const char *p;
    time_t t;

    if (!s || strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d) || s[10] != 'T' || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
        return -1;
    p = s + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++) {
            if (n < 3)
                ms = ms * 10 + (*p - '0');
        }
        if (!n)
            return -1;
        for (; n < 3; n++)
            ms *= 10;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    return (long long)t * 1000 + ms;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    fail(ud, "DOCTYPE declarations are not accepted");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param,
                              const XML_Char *value, int value_len, const XML_Char *base,
                              const XML_Char *sysid, const XML_Char *pubid,
                              const XML_Char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid;
    (void)pubid, (void)notation;
    fail(ud, "entity declarations are not accepted");
}

static enum field result_field(const pctx *c, const char *name)
{
    if (c->depth != 2)
        return F_NONE;
    if (!strcmp(name, "ETag"))
        return F_ETAG;
    if (!strcmp(name, "UploadId"))
        return F_UPLOAD_ID;
    if (!strncmp(name, "Checksum", 8) && !c->r->checksum_algo[0] &&
        ferry_objstore_checksum_algo(name + 8, strlen(name + 8))) {
        snprintf(c->r->checksum_algo, sizeof(c->r->checksum_algo), "%s", name + 8);
        return F_CHECKSUM;
    }
    if (!strcmp(c->root, "Error")) {
        if (!strcmp(name, "Code"))
            return F_CODE;
        if (!strcmp(name, "Message"))
            return F_MESSAGE;
    }
    return F_NONE;
}

static enum field list_field(const pctx *c, const char *name)
{
    if (c->depth == 2) {
        if (!strcmp(name, "IsTruncated"))
            return F_IS_TRUNCATED;
        if (!strcmp(name, "EncodingType"))
            return F_ENCODING_TYPE;
    } else if (c->depth == 3 && c->in_prefixes) {
        if (!strcmp(name, "Prefix"))
            return F_P_PREFIX;
    } else if (c->depth == 3 && c->in_contents && c->uploads) {
        if (!strcmp(name, "Key"))
            return F_C_KEY;
        if (!strcmp(name, "UploadId"))
            return F_U_UPLOAD_ID;
        if (!strcmp(name, "Initiated")) /* the upload's age, for sweeping orphans */
            return F_C_LAST_MODIFIED;
    } else if (c->depth == 3 && c->in_contents) {
        if (!strcmp(name, "Key"))
            return F_C_KEY;
        if (!strcmp(name, "Size"))
            return F_C_SIZE;
        if (!strcmp(name, "ETag"))
            return F_C_ETAG;
        if (!strcmp(name, "LastModified"))
            return F_C_LAST_MODIFIED;
    }
    return F_NONE;
}

static void XMLCALL on_start(void *ud, const XML_Char *qname, const XML_Char **attrs)
{
    pctx *c = ud;
    const char *name = local_name(qname);

    (void)attrs;
    if (c->failed)
        return;
    if (++c->depth > MAX_DEPTH) {
        fail(c, "elements nested too deeply");
        return;
    }
    if (c->depth == 1) {
        snprintf(c->root, sizeof(c->root), "%s", name);
        if (c->is_list &&
            strcmp(name, c->uploads ? "ListMultipartUploadsResult" : "ListBucketResult") != 0) {
            fail(c, !strcmp(name, "Error") ? "got an Error document, not a listing"
                    : c->uploads           ? "root element is not ListMultipartUploadsResult"
                                           : "root element is not ListBucketResult");
            return;
        }
    }
    if (c->is_list && c->depth == 2 && !strcmp(name, c->uploads ? "Upload" : "Contents")) {
        if (c->l->count >= MAX_ENTRIES) {
            fail(c, "too many entries in one listing page");
            return;
        }
        c->in_contents = 1;
        c->have_key = c->have_size = 0;
        memset(&c->cur, 0, sizeof(c->cur));
        c->cur.etag_off_ = SIZE_MAX;
    }
    if (c->is_list && !c->uploads && c->depth == 2 && !strcmp(name, "CommonPrefixes"))
        c->in_prefixes = 1;
    c->field = c->is_list ? list_field(c, name) : result_field(c, name);
    if (c->field != F_NONE) {
        c->field_depth = c->depth;
        c->text_len = 0;
        c->text_truncated = 0;
    }
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    pctx *c = ud;
    size_t n = (size_t)len;

    if (c->failed || c->field == F_NONE || c->depth != c->field_depth)
        return;
    if (c->text_len + n > MAX_TEXT) {
        if (c->field != F_MESSAGE) {
            fail(c, "element text too long");
            return;
        }
        n = MAX_TEXT - c->text_len;
        c->text_truncated = 1;
    }
    memcpy(c->text + c->text_len, s, n);
    c->text_len += n;
}

static void copy_text(const pctx *c, char *out, size_t size)
{
    size_t n = c->text_len < size - 1 ? c->text_len : size - 1;
    memcpy(out, c->text, n);
    out[n] = '\0';
}

static void end_result_field(pctx *c)
{
    ferry_s3xml_result *r = c->r;

    switch (c->field) {
    case F_ETAG: strip_etag(c->text, r->etag, sizeof(r->etag)); break;
    case F_UPLOAD_ID:
        if (c->text_len >= sizeof(r->upload_id)) {
            fail(c, "UploadId too long");
            return;
        }
        copy_text(c, r->upload_id, sizeof(r->upload_id));
        break;
    case F_CODE: copy_text(c, r->code, sizeof(r->code)); break;
    case F_MESSAGE: copy_text(c, r->message, sizeof(r->message)); break;
    case F_CHECKSUM:
        /* base64, maybe "-N": a value that needs XML escapes when sent back is refused */
        if (c->text_len >= sizeof(r->checksum) ||
            strcspn(c->text, "<>&\"' \t\r\n") < c->text_len) {
            fail(c, "malformed checksum");
            return;
        }
        copy_text(c, r->checksum, sizeof(r->checksum));
        break;
    default: break;
    }
}

static void end_list_field(pctx *c)
{
    ferry_objstore_listing *l = c->l;
    char etag[FERRY_OBJSTORE_ETAG_MAX];
    size_t off;
    long long t;

    switch (c->field) {
    case F_IS_TRUNCATED: l->is_truncated = !strcmp(c->text, "true"); break;
    case F_ENCODING_TYPE: c->url_encoded = !strcmp(c->text, "url"); break;
    case F_C_KEY:
        if (memchr(c->text, '\0', c->text_len)) {
            fail(c, "key contains a NUL byte");
            return;
        }
        off = ferry_objstore__listing_arena_add(l, c->text, c->text_len);
        if (off == SIZE_MAX) {
            fail(c, "out of memory");
            return;
        }
        c->cur.key_off_ = off;
        c->cur.key_len = c->text_len;
        c->have_key = 1;
        break;
    case F_P_PREFIX:
        if (c->l->count >= MAX_ENTRIES) {
            fail(c, "too many entries in one listing page");
            return;
        }
        if (memchr(c->text, '\0', c->text_len) ||
            ferry_objstore__listing_add_prefix(l, c->text, c->text_len)) {
            fail(c, memchr(c->text, '\0', c->text_len) ? "prefix contains a NUL byte"
                                                       : "out of memory");
            return;
        }
        break;
    case F_C_SIZE:
        if (parse_u64(c->text, &c->cur.size)) {
            fail(c, "malformed Size");
            return;
        }
        c->have_size = 1;
        break;
    case F_U_UPLOAD_ID:
        if (memchr(c->text, '\0', c->text_len)) {
            fail(c, "UploadId contains a NUL byte");
            return;
        }
        off = ferry_objstore__listing_arena_add(l, c->text, c->text_len);
        if (off == SIZE_MAX) {
            fail(c, "out of memory");
            return;
        }
        c->cur.etag_off_ = off; /* held in the etag slot until the page is finished */
        c->have_size = 1;       /* uploads have no Size */
        break;
    case F_C_ETAG:
        strip_etag(c->text, etag, sizeof(etag));
        off = ferry_objstore__listing_arena_add(l, etag, strlen(etag));
        if (off == SIZE_MAX) {
            fail(c, "out of memory");
            return;
        }
        c->cur.etag_off_ = off;
        break;
    case F_C_LAST_MODIFIED:
        t = ferry_s3xml_parse_time(c->text);
        c->cur.last_modified_ms = t < 0 ? 0 : (int64_t)t;
        break;
    default: break;
    }
}

static void finish_contents(pctx *c)
{
    ferry_objstore_listing *l = c->l;

    if (!c->have_key || !c->have_size) {
        fail(c, "a Contents entry lacks Key or Size");
        return;
    }
    if (ferry_objstore__listing_reserve(l)) {
        fail(c, "out of memory");
        return;
    }
    l->entries[l->count++] = c->cur;
}

static void XMLCALL on_end(void *ud, const XML_Char *qname)
{
    pctx *c = ud;
    const char *name = local_name(qname);

    if (c->failed)
        return;
    if (c->field != F_NONE && c->depth == c->field_depth) {
        c->text[c->text_len] = '\0';
        if (c->is_list)
            end_list_field(c);
        else
            end_result_field(c);
        c->field = F_NONE;
    }
    if (c->is_list && c->depth == 2 && c->in_contents &&
        !strcmp(name, c->uploads ? "Upload" : "Contents")) {
        c->in_contents = 0;
        finish_contents(c);
    }
    if (c->is_list && c->depth == 2 && c->in_prefixes && !strcmp(name, "CommonPrefixes"))
        c->in_prefixes = 0;
    c->depth--;
}

static int run(pctx *c, const char *xml, size_t len, char *why, size_t why_size)
{
    int rc = -1;

    /* S3 keeps a long copy's connection alive with whitespace before the document. */
    while (len && (*xml == ' ' || *xml == '\t' || *xml == '\r' || *xml == '\n'))
        xml++, len--;
    if (len > INT_MAX) {
        snprintf(why, why_size, "document too large");
        return -1;
    }
    c->p = XML_ParserCreateNS(NULL, NS_SEP);
    if (!c->p) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    XML_SetUserData(c->p, c);
    XML_SetElementHandler(c->p, on_start, on_end);
    XML_SetCharacterDataHandler(c->p, on_text);
    XML_SetStartDoctypeDeclHandler(c->p, on_doctype);
    XML_SetEntityDeclHandler(c->p, on_entity);
    XML_SetParamEntityParsing(c->p, XML_PARAM_ENTITY_PARSING_NEVER);
    if (XML_Parse(c->p, xml, (int)len, XML_TRUE) != XML_STATUS_OK) {
        if (c->failed)
            snprintf(why, why_size, "%s", c->why);
        else
            snprintf(why, why_size, "malformed XML at line %lu: %s",
                     (unsigned long)XML_GetCurrentLineNumber(c->p),
                     XML_ErrorString(XML_GetErrorCode(c->p)));
        goto out;
    }
    if (c->failed) {
        snprintf(why, why_size, "%s", c->why);
        goto out;
    }
    rc = 0;
out:
    XML_ParserFree(c->p);
    c->p = NULL;
    return rc;
}

int ferry_s3xml_parse_result(const char *xml, size_t len, ferry_s3xml_result *r, char *why,
                             size_t why_size)
{
    pctx *c = calloc(1, sizeof(*c));
    int rc;

    memset(r, 0, sizeof(*r));
    if (!c) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    c->r = r;
    rc = run(c, xml, len, why, why_size);
    if (!rc && !c->root[0]) {
        snprintf(why, why_size, "empty document");
        rc = -1;
    }
    if (!rc)
        memcpy(r->root, c->root, sizeof(r->root));
    free(c);
    return rc;
}

/* ListBucketResult entries: decodes url-encoded keys and prefixes, drops directories.
 * *last_off: the page's last object key, skipped entries included. 0, or -1 and why. */
static int finish_objects(ferry_objstore_listing *l, int url_encoded, size_t *last_off,
                          char *why, size_t why_size)
{
    size_t i, j;

    for (i = 0, j = 0; i < l->count; i++) {
        ferry_objstore_entry e = l->entries[i];
        if (!e.is_prefix)
            *last_off = e.key_off_;
        if (url_encoded) {
            char *k = l->arena_ + e.key_off_;
            size_t n = ferry_uri_pct_decode(k, e.key_len, 1, k, e.key_len + 1);
            if (n == (size_t)-1) {
                snprintf(why, why_size, "malformed url-encoded key in listing");
                return -1;
            }
            e.key_len = n;
        }
        if (e.key_len > FERRY_URI_KEY_MAX) {
            snprintf(why, why_size, "key longer than 1024 bytes in listing");
            return -1;
        }
        /* S3 sends an ETag with every object. A "dir/" entry without one is a file-system
         * backend's directory (S3Proxy's jclouds "filesystem" provider lists them), not an
         * object: copying it would fail or invent an object. */
        if (!e.is_prefix && e.etag_off_ == SIZE_MAX && e.key_len &&
            l->arena_[e.key_off_ + e.key_len - 1] == '/') {
            l->skipped_dirs++;
            continue;
        }
        l->entries[j++] = e;
    }
    l->count = j;
    return 0;
}

/* ListMultipartUploadsResult entries: sets key and upload_id (held in the etag slot while
 * parsing). *last_off: the page's last key. 0, or -1 and why. */
static int finish_uploads(ferry_objstore_listing *l, size_t *last_off, char *why,
                          size_t why_size)
{
    size_t i, j;

    for (i = 0, j = 0; i < l->count; i++) {
        ferry_objstore_entry e = l->entries[i];
        if (e.etag_off_ == SIZE_MAX || e.key_len > FERRY_URI_KEY_MAX) {
            snprintf(why, why_size, "an Upload entry lacks UploadId or has a key too long");
            return -1;
        }
        *last_off = e.key_off_;
        e.key = l->arena_ + e.key_off_;
        e.upload_id = l->arena_ + e.etag_off_;
        e.etag = "";
        e.size = 0;
        l->entries[j++] = e;
    }
    l->count = j;
    return 0;
}

/* Both listing documents: parse into l (reusing its buffers), finish the entries the way
 * the document wants, set the cursor. On failure l is left empty. */
static int parse_page(const char *xml, size_t len, ferry_objstore_listing *l, int uploads,
                      char *why, size_t why_size)
{
    pctx *c = calloc(1, sizeof(*c));
    size_t last_off = SIZE_MAX;
    int rc = -1;

    ferry_objstore__listing_begin(l);
    if (!c) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    c->is_list = 1;
    c->uploads = uploads;
    c->l = l;
    if (run(c, xml, len, why, why_size))
        goto out;
    if (!c->root[0]) {
        snprintf(why, why_size, "empty document");
        goto out;
    }
    /* The cursor to the next page is our own: the page's last key (skipped entries
     * included), sent back as start-after. Server tokens are opaque and not portable
     * (S3Proxy url-encodes its token under encoding-type=url, which breaks it). */
    if (uploads) {
        if (finish_uploads(l, &last_off, why, why_size))
            goto out;
        if (l->is_truncated && last_off != SIZE_MAX)
            l->next_token = l->arena_ + last_off;
    } else {
        if (finish_objects(l, c->url_encoded, &last_off, why, why_size))
            goto out;
        if (ferry_objstore__listing_seal(l, last_off)) {
            snprintf(why, why_size, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    if (rc) {
        l->count = 0;
        l->is_truncated = 0;
        l->next_token = NULL;
    }
    free(c);
    return rc;
}

int ferry_s3xml_parse_list(const char *xml, size_t len, ferry_objstore_listing *l, char *why,
                           size_t why_size)
{
    return parse_page(xml, len, l, 0, why, why_size);
}

int ferry_s3xml_parse_uploads(const char *xml, size_t len, ferry_objstore_listing *l, char *why,
                              size_t why_size)
{
    return parse_page(xml, len, l, 1, why, why_size);
}
