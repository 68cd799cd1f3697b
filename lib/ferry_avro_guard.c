/* The pre-decode validator: walks an Avro binary body against the writer schema before a
 * single byte reaches avro-c. avro-c 1.11.1 trusts lengths and counts it reads (a negative
 * or huge string length becomes a huge malloc, a block count of INT64_MIN overflows, a
 * union discriminant is only checked for < 0), so everything it would trust is bounded
 * here: varints well-formed and at most 10 bytes (5 for int), lengths within the bytes
 * left, block counts within FERRY_AVRO_MAX_ITEMS and block byte sizes exact, union and enum
 * indexes in range, booleans 0 or 1, nesting within FERRY_AVRO_MAX_DEPTH, strings UTF-8
 * without NUL, and the datum ending exactly at the end of the body. */
#include "ferry_avro.h"
#include "ferry_avro_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ferry_avro_utf8_ok(const void *buf, size_t len)
{
    const unsigned char *s = buf, *end = s + len;

    while (s < end) {
        unsigned char c = *s;
        size_t n;
        uint32_t cp, min;

        if (c == 0)
            return 0;
        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0; /* continuation byte, 0xC0/0xC1 overlong lead, or > U+10FFFF */
        }
        if ((size_t)(end - s) <= n)
            return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        s += n + 1;
    }
    return 1;
}

typedef struct guard {
    const unsigned char *base, *p, *end;
    size_t items; /* array items + map entries so far */
    ferry_error *err;
    char path[160]; /* field path for messages, e.g. options.include_prefixes[2] */
    size_t pathlen;
} guard;

static ferry_rc gfail(guard *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ferry_rc gfail(guard *g, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return ferry_error_set(g->err, FERRY_ERR_PERMANENT, FERRY_EC_DECODE,
                           "malformed Avro body at byte %zu%s%s: %s", (size_t)(g->p - g->base),
                           g->pathlen ? ", field " : "", g->pathlen ? g->path : "", what);
}

static size_t left(const guard *g) { return (size_t)(g->end - g->p); }

/* Appends to the path; returns the length to restore. */
static size_t push(guard *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t push(guard *g, const char *fmt, ...)
{
    size_t saved = g->pathlen;
    va_list ap;

    if (g->pathlen < sizeof(g->path) - 1) {
        va_start(ap, fmt);
        int n = vsnprintf(g->path + g->pathlen, sizeof(g->path) - g->pathlen, fmt, ap);
        va_end(ap);
        if (n > 0)
            g->pathlen += (size_t)n;
        if (g->pathlen > sizeof(g->path) - 1)
            g->pathlen = sizeof(g->path) - 1;
    }
    return saved;
}

static void pop(guard *g, size_t saved)
{
    g->pathlen = saved;
    g->path[saved] = '\0';
}

/* A zig-zag varint of at most maxbytes bytes that fits in 64 bits. */
static ferry_rc read_varint(guard *g, int maxbytes, int64_t *out)
{
    uint64_t raw = 0;

    for (int i = 0;; i++) {
        if (i == maxbytes)
            return gfail(g, "varint longer than %d bytes", maxbytes);
        if (g->p == g->end)
            return gfail(g, "truncated (varint runs past the end)");
        unsigned char b = *g->p++;
        if (i == 9 && (b & 0xFE))
            return gfail(g, "varint overflows 64 bits");
        raw |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    *out = (int64_t)((raw >> 1) ^ (0 - (raw & 1)));
    return FERRY_OK;
}

static ferry_rc read_long(guard *g, int64_t *out) { return read_varint(g, 10, out); }

static ferry_rc read_int(guard *g, int64_t *out)
{
    ferry_rc rc = read_varint(g, 5, out);
    if (rc == FERRY_OK && (*out < INT32_MIN || *out > INT32_MAX))
        return gfail(g, "int value %lld out of range", (long long)*out);
    return rc;
}

/* A length prefix: 0 <= n <= bytes left. */
static ferry_rc read_len(guard *g, const char *what, size_t *out)
{
    int64_t n = 0;
    ferry_rc rc = read_long(g, &n);

    if (rc != FERRY_OK)
        return rc;
    if (n < 0)
        return gfail(g, "negative %s length %lld", what, (long long)n);
    if ((uint64_t)n > left(g))
        return gfail(g, "%s length %lld exceeds the %zu bytes left", what, (long long)n,
                     left(g));
    *out = (size_t)n;
    return FERRY_OK;
}

static ferry_rc skip(guard *g, size_t n, const char *what)
{
    if (n > left(g))
        return gfail(g, "truncated (%s needs %zu bytes, %zu left)", what, n, left(g));
    g->p += n;
    return FERRY_OK;
}

static ferry_rc read_string(guard *g)
{
    size_t n = 0; /* set by read_len on success; gcc -O3 cannot see it */
    ferry_rc rc = read_len(g, "string", &n);

    if (rc != FERRY_OK)
        return rc;
    if (memchr(g->p, '\0', n))
        return gfail(g, "string contains a NUL byte");
    if (!ferry_avro_utf8_ok(g->p, n))
        return gfail(g, "string is not valid UTF-8");
    g->p += n;
    return FERRY_OK;
}

static ferry_rc walk(guard *g, avro_schema_t s, int depth);

/* Arrays and maps: blocks of `count` items; a negative count is followed by the block's
 * byte size. */
static ferry_rc walk_blocks(guard *g, avro_schema_t item, int is_map, int depth)
{
    size_t index = 0;
    ferry_rc rc;

    for (;;) {
        int64_t count, bsize = -1;
        const unsigned char *start;

        if ((rc = read_long(g, &count)) != FERRY_OK)
            return rc;
        if (count == 0)
            return FERRY_OK;
        if (count < 0) {
            if (count == INT64_MIN)
                return gfail(g, "invalid block count");
            count = -count;
            if ((rc = read_long(g, &bsize)) != FERRY_OK)
                return rc;
            if (bsize < 0 || (uint64_t)bsize > left(g))
                return gfail(g, "block size %lld out of range (%zu bytes left)",
                             (long long)bsize, left(g));
        }
        if ((uint64_t)count > FERRY_AVRO_MAX_ITEMS - g->items)
            return gfail(g, "more than %d array items / map entries in one event",
                         FERRY_AVRO_MAX_ITEMS);
        g->items += (size_t)count;
        start = g->p;
        for (int64_t i = 0; i < count; i++, index++) {
            size_t saved = push(g, "[%zu]", index);
            if (is_map && (rc = read_string(g)) != FERRY_OK)
                return rc;
            if ((rc = walk(g, item, depth + 1)) != FERRY_OK)
                return rc;
            pop(g, saved);
        }
        if (bsize >= 0 && (size_t)(g->p - start) != (uint64_t)bsize)
            return gfail(g, "block size %lld does not match its %zu bytes of items",
                         (long long)bsize, (size_t)(g->p - start));
    }
}

static ferry_rc walk(guard *g, avro_schema_t s, int depth)
{
    int64_t v;
    size_t n = 0;
    ferry_rc rc;

    if (depth > FERRY_AVRO_MAX_DEPTH)
        return gfail(g, "nested deeper than %d", FERRY_AVRO_MAX_DEPTH);
    if (is_avro_link(s))
        s = avro_schema_link_target(s);
    if (!s)
        return gfail(g, "schema has a dangling reference");

    switch (avro_typeof(s)) {
    case AVRO_NULL: return FERRY_OK;
    case AVRO_BOOLEAN:
        if (g->p == g->end)
            return gfail(g, "truncated (boolean)");
        if (*g->p > 1)
            return gfail(g, "boolean byte 0x%02x is neither 0 nor 1", *g->p);
        g->p++;
        return FERRY_OK;
    case AVRO_INT32: return read_int(g, &v);
    case AVRO_INT64: return read_long(g, &v);
    case AVRO_FLOAT: return skip(g, 4, "float");
    case AVRO_DOUBLE: return skip(g, 8, "double");
    case AVRO_STRING: return read_string(g);
    case AVRO_BYTES:
        if ((rc = read_len(g, "bytes", &n)) != FERRY_OK)
            return rc;
        g->p += n;
        return FERRY_OK;
    case AVRO_FIXED: {
        int64_t size = avro_schema_fixed_size(s);
        if (size < 0)
            return gfail(g, "fixed with negative size");
        return skip(g, (size_t)size, "fixed");
    }
    case AVRO_ENUM: {
        int nsym = avro_schema_enum_number_of_symbols(s);
        if ((rc = read_long(g, &v)) != FERRY_OK)
            return rc;
        if (v < 0 || v >= nsym)
            return gfail(g, "enum index %lld out of range (%d symbols)", (long long)v, nsym);
        return FERRY_OK;
    }
    case AVRO_UNION: {
        size_t nb = avro_schema_union_size(s);
        if ((rc = read_long(g, &v)) != FERRY_OK)
            return rc;
        if (v < 0 || (uint64_t)v >= nb)
            return gfail(g, "union branch %lld out of range (%zu branches)", (long long)v, nb);
        return walk(g, avro_schema_union_branch(s, (int)v), depth + 1);
    }
    case AVRO_RECORD: {
        size_t nf = avro_schema_record_size(s);
        for (size_t i = 0; i < nf; i++) {
            size_t saved = push(g, "%s%s", g->pathlen ? "." : "",
                                avro_schema_record_field_name(s, (int)i));
            rc = walk(g, avro_schema_record_field_get_by_index(s, (int)i), depth + 1);
            if (rc != FERRY_OK)
                return rc;
            pop(g, saved);
        }
        return FERRY_OK;
    }
    case AVRO_ARRAY: return walk_blocks(g, avro_schema_array_items(s), 0, depth);
    case AVRO_MAP: return walk_blocks(g, avro_schema_map_values(s), 1, depth);
    default: return gfail(g, "unsupported schema type %d", (int)avro_typeof(s));
    }
}

ferry_rc ferry_avro_guard_check(avro_schema_t writer, const void *body, size_t len,
                                ferry_error *err)
{
    guard g;
    ferry_rc rc;

    memset(&g, 0, sizeof(g));
    g.base = g.p = body;
    g.end = g.p + len;
    g.err = err;
    if (len > FERRY_AVRO_MAX_EVENT_BYTES)
        return gfail(&g, "body of %zu bytes exceeds the %d-byte limit", len,
                     FERRY_AVRO_MAX_EVENT_BYTES);
    if ((rc = walk(&g, writer, 0)) != FERRY_OK)
        return rc;
    if (g.p != g.end)
        return gfail(&g, "%zu trailing bytes after the record", left(&g));
    return FERRY_OK;
}
