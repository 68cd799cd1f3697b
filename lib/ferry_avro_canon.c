/* Parsing Canonical Form and the CRC-64-AVRO fingerprint (Avro specification, "Schema
 * Fingerprints" and "Transforming into Parsing Canonical Form"). The canonical form is
 * built from the JSON with jansson rather than from avro-c's schema objects, because
 * avro-c keeps no canonical-form writer of its own and accepts schemas the spec does not
 * (duplicate field names, duplicate enum symbols); we reject those here. */
#include "ferry_avro.h"
#include "ferry_avro_internal.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRC64_EMPTY 0xc15d213aa4d7a795ULL

static uint64_t crc64_table[256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint64_t fp = (uint64_t)i;
        for (int j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (CRC64_EMPTY & (0 - (fp & 1)));
        crc64_table[i] = fp;
    }
}

uint64_t ferry_avro_crc64(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t fp = CRC64_EMPTY;

    pthread_once(&crc64_once, crc64_init);
    for (size_t i = 0; i < len; i++)
        fp = (fp >> 8) ^ crc64_table[(fp ^ p[i]) & 0xff];
    return fp;
}

/* ---- a growing string ---- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* A JSON string literal: raw UTF-8 ([STRINGS]: escapes replaced by their characters);
 * only what JSON requires is escaped. */
static void sb_putq(sbuf *b, const char *s)
{
    sb_putn(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            sb_putn(b, e, 2);
        } else if (ch < 0x20) {
            char e[8];
            snprintf(e, sizeof(e), "\\u%04x", ch);
            sb_puts(b, e);
        } else {
            sb_putn(b, s, 1);
        }
    }
    sb_putn(b, "\"", 1);
}

/* ---- canonical form ---- */

typedef struct canon {
    sbuf out;
    char **names; /* full names defined so far, in definition order */
    size_t nnames;
    ferry_error *err;
    int failed;
} canon;

static const char *const primitives[] = {"null",  "boolean", "int",   "long",
                                         "float", "double",  "bytes", "string"};

static int is_primitive(const char *s)
{
    for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++)
        if (strcmp(s, primitives[i]) == 0)
            return 1;
    return 0;
}

static void fail(canon *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(canon *c, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    if (c->failed)
        return;
    c->failed = 1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ferry_error_set(c->err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA, "invalid schema: %s", msg);
}

/* [A-Za-z_][A-Za-z0-9_]* */
static int valid_simple_name(const char *s, size_t n)
{
    if (n == 0 ||
        !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '_'))
            return 0;
    }
    return 1;
}

/* A dotted full name: each component a simple name. */
static int valid_full_name(const char *s)
{
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (!valid_simple_name(start, (size_t)(p - start)))
                return 0;
            if (*p == '\0')
                return 1;
            start = p + 1;
        }
    }
}

char *ferry_avro_full_name(const char *name, const char *ns)
{
    size_t n;
    char *out;

    if (strchr(name, '.') || !ns || !*ns)
        return strdup(name);
    n = strlen(ns) + 1 + strlen(name) + 1;
    if ((out = malloc(n)) != NULL)
        snprintf(out, n, "%s.%s", ns, name);
    return out;
}

static int defined(const canon *c, const char *fullname)
{
    for (size_t i = 0; i < c->nnames; i++)
        if (strcmp(c->names[i], fullname) == 0)
            return 1;
    return 0;
}

static int define(canon *c, char *fullname) /* takes fullname */
{
    char **v = realloc(c->names, (c->nnames + 1) * sizeof(*v));
    if (!v) {
        free(fullname);
        return -1;
    }
    c->names = v;
    c->names[c->nnames++] = fullname;
    return 0;
}

static void emit(canon *c, const json_t *node, const char *ns, int depth);

/* A reference to a type by name: a primitive, or a named type defined earlier. */
static void emit_name(canon *c, const char *name, const char *ns)
{
    if (is_primitive(name)) {
        sb_putq(&c->out, name);
        return;
    }
    char *fn = ferry_avro_full_name(name, ns);
    if (!fn) {
        c->out.oom = 1;
        return;
    }
    /* An unqualified name may also refer to a type in the null namespace. */
    if (!defined(c, fn) && defined(c, name)) {
        free(fn);
        fn = strdup(name);
        if (!fn) {
            c->out.oom = 1;
            return;
        }
    }
    if (!defined(c, fn))
        fail(c, "undefined type name \"%s\"", fn);
    else
        sb_putq(&c->out, fn);
    free(fn);
}

static const char *get_str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void emit_named(canon *c, const json_t *node, const char *type, const char *ns,
                       int depth)
{
    const char *name = get_str(node, "name");
    const char *own_ns = get_str(node, "namespace");
    char *fn, *inner_ns = NULL;

    if (!name) {
        fail(c, "%s without a name", type);
        return;
    }
    if (json_object_get(node, "namespace") && !own_ns) {
        fail(c, "namespace of \"%s\" is not a string", name);
        return;
    }
    if (own_ns)
        ns = own_ns;
    fn = ferry_avro_full_name(name, ns);
    if (!fn) {
        c->out.oom = 1;
        return;
    }
    if (!valid_full_name(fn)) {
        fail(c, "invalid name \"%s\"", fn);
        free(fn);
        return;
    }
    if (is_primitive(fn)) {
        fail(c, "a named type cannot be called \"%s\"", fn);
        free(fn);
        return;
    }
    if (defined(c, fn)) {
        /* Redefinition is an error in the spec; a second occurrence by name is handled by
         * emit_name(). */
        fail(c, "type \"%s\" defined twice", fn);
        free(fn);
        return;
    }
    /* Nested types inherit the namespace of the full name. */
    const char *dot = strrchr(fn, '.');
    if (dot) {
        inner_ns = strndup(fn, (size_t)(dot - fn));
        if (!inner_ns) {
            free(fn);
            c->out.oom = 1;
            return;
        }
    }
    sb_puts(&c->out, "{\"name\":");
    sb_putq(&c->out, fn);
    if (define(c, fn) != 0) {
        c->out.oom = 1;
        free(inner_ns);
        return;
    }

    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0) {
        const json_t *fields = json_object_get(node, "fields");
        if (!json_is_array(fields)) {
            fail(c, "record \"%s\" has no fields array", c->names[c->nnames - 1]);
            goto out;
        }
        sb_puts(&c->out, ",\"type\":\"record\",\"fields\":[");
        for (size_t i = 0; i < json_array_size(fields); i++) {
            const json_t *f = json_array_get(fields, i);
            const char *fname = get_str(f, "name");
            const json_t *ftype = json_object_get(f, "type");
            if (!json_is_object(f) || !fname || !ftype) {
                fail(c, "field %zu of a record needs a name and a type", i);
                goto out;
            }
            if (!valid_simple_name(fname, strlen(fname))) {
                fail(c, "invalid field name \"%s\"", fname);
                goto out;
            }
            for (size_t k = 0; k < i; k++)
                if (strcmp(fname, get_str(json_array_get(fields, k), "name")) == 0) {
                    fail(c, "duplicate field \"%s\"", fname);
                    goto out;
                }
            sb_puts(&c->out, i ? ",{\"name\":" : "{\"name\":");
            sb_putq(&c->out, fname);
            sb_puts(&c->out, ",\"type\":");
            emit(c, ftype, inner_ns, depth + 1);
            sb_puts(&c->out, "}");
        }
        sb_puts(&c->out, "]}");
    } else if (strcmp(type, "enum") == 0) {
        const json_t *syms = json_object_get(node, "symbols");
        if (!json_is_array(syms)) {
            fail(c, "enum has no symbols array");
            goto out;
        }
        sb_puts(&c->out, ",\"type\":\"enum\",\"symbols\":[");
        for (size_t i = 0; i < json_array_size(syms); i++) {
            const char *s = json_string_value(json_array_get(syms, i));
            if (!s || !valid_simple_name(s, strlen(s))) {
                fail(c, "invalid enum symbol #%zu", i);
                goto out;
            }
            for (size_t k = 0; k < i; k++)
                if (strcmp(s, json_string_value(json_array_get(syms, k))) == 0) {
                    fail(c, "duplicate enum symbol \"%s\"", s);
                    goto out;
                }
            if (i)
                sb_puts(&c->out, ",");
            sb_putq(&c->out, s);
        }
        sb_puts(&c->out, "]}");
    } else { /* fixed */
        const json_t *size = json_object_get(node, "size");
        long long n = -1;
        char num[32];
        if (json_is_integer(size)) {
            n = json_integer_value(size);
        } else if (json_is_string(size)) { /* [INTEGERS]: quotes and leading zeros go */
            const char *s = json_string_value(size);
            size_t digits = strspn(s, "0123456789");
            if (digits > 0 && digits < 12 && s[digits] == '\0')
                n = strtoll(s, NULL, 10);
        }
        if (n < 0 || n > INT32_MAX) {
            fail(c, "fixed needs a size between 0 and 2^31-1");
            goto out;
        }
        snprintf(num, sizeof(num), "%lld", n);
        sb_puts(&c->out, ",\"type\":\"fixed\",\"size\":");
        sb_puts(&c->out, num);
        sb_puts(&c->out, "}");
    }
out:
    free(inner_ns);
}

static void emit(canon *c, const json_t *node, const char *ns, int depth)
{
    if (c->failed || c->out.oom)
        return;
    if (depth > 64) {
        fail(c, "nested too deeply");
        return;
    }
    if (json_is_string(node)) {
        emit_name(c, json_string_value(node), ns);
    } else if (json_is_array(node)) { /* union */
        sb_puts(&c->out, "[");
        for (size_t i = 0; i < json_array_size(node); i++) {
            if (i)
                sb_puts(&c->out, ",");
            emit(c, json_array_get(node, i), ns, depth + 1);
        }
        sb_puts(&c->out, "]");
    } else if (json_is_object(node)) {
        const json_t *tnode = json_object_get(node, "type");
        const char *type = json_string_value(tnode);
        if (!tnode) {
            fail(c, "object without \"type\"");
        } else if (!type) {
            emit(c, tnode, ns, depth + 1); /* {"type": {...}} / {"type": [...]} */
        } else if (is_primitive(type)) {
            sb_putq(&c->out, type); /* [PRIMITIVES]; logicalType etc. stripped */
        } else if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 ||
                   strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0) {
            emit_named(c, node, type, ns, depth);
        } else if (strcmp(type, "array") == 0) {
            const json_t *items = json_object_get(node, "items");
            if (!items) {
                fail(c, "array without items");
                return;
            }
            sb_puts(&c->out, "{\"type\":\"array\",\"items\":");
            emit(c, items, ns, depth + 1);
            sb_puts(&c->out, "}");
        } else if (strcmp(type, "map") == 0) {
            const json_t *values = json_object_get(node, "values");
            if (!values) {
                fail(c, "map without values");
                return;
            }
            sb_puts(&c->out, "{\"type\":\"map\",\"values\":");
            emit(c, values, ns, depth + 1);
            sb_puts(&c->out, "}");
        } else {
            emit_name(c, type, ns); /* {"type": "SomeNamedType"} */
        }
    } else {
        fail(c, "a schema is a string, an array or an object");
    }
}

char *ferry_avro_canonical_form(const char *json, ferry_error *err)
{
    canon c;
    json_error_t jerr;
    json_t *root = NULL;
    char *result = NULL;

    memset(&c, 0, sizeof(c));
    c.err = err;
    if (!json) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA, "invalid schema: NULL");
        goto out;
    }
    root = json_loads(json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                        "invalid schema: JSON error at line %d column %d: %s", jerr.line,
                        jerr.column, jerr.text);
        goto out;
    }
    emit(&c, root, NULL, 0);
    if (c.failed)
        goto out;
    if (c.out.oom || !c.out.s) {
        ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
        goto out;
    }
    result = c.out.s;
    c.out.s = NULL;
out:
    free(c.out.s);
    for (size_t i = 0; i < c.nnames; i++)
        free(c.names[i]);
    free(c.names);
    json_decref(root);
    return result;
}

ferry_rc ferry_avro_fingerprint(const char *json, uint64_t *out, ferry_error *err)
{
    char *cf = ferry_avro_canonical_form(json, err);
    if (!cf)
        return err ? err->rc : FERRY_ERR_PERMANENT;
    *out = ferry_avro_crc64(cf, strlen(cf));
    free(cf);
    return FERRY_OK;
}
