#include "ferry_inventory.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static ferry_rc bad(ferry_error *err, const char *what)
{
    return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC, "inventory: %s",
                           what);
}

ferry_rc ferry_inventory_schema_parse(const char *file_schema, ferry_inventory_schema *out,
                                      ferry_error *err)
{
    static const struct {
        const char *name;
        size_t off;
    } known[] = {
        {"Bucket", offsetof(ferry_inventory_schema, bucket)},
        {"Key", offsetof(ferry_inventory_schema, key)},
        {"Size", offsetof(ferry_inventory_schema, size)},
        {"ETag", offsetof(ferry_inventory_schema, etag)},
        {"LastModifiedDate", offsetof(ferry_inventory_schema, last_modified)},
        {"IsLatest", offsetof(ferry_inventory_schema, is_latest)},
        {"IsDeleteMarker", offsetof(ferry_inventory_schema, is_delete_marker)},
    };
    const char *p = file_schema;
    int n = 0;

    out->nfields = 0;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        *(int *)(void *)((char *)out + known[i].off) = -1;
    if (!p)
        return bad(err, "no fileSchema");
    for (;;) {
        const char *start, *end;
        while (*p == ' ' || *p == '\t')
            p++;
        start = p;
        while (*p && *p != ',')
            p++;
        end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end == start)
            return bad(err, "empty column name in fileSchema");
        if (n >= FERRY_INVENTORY_FIELDS_MAX)
            return bad(err, "too many columns in fileSchema");
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            int *slot = (int *)(void *)((char *)out + known[i].off);
            if (strlen(known[i].name) == (size_t)(end - start) &&
                !strncasecmp(known[i].name, start, (size_t)(end - start))) {
                if (*slot >= 0)
                    return bad(err, "a column repeats in fileSchema");
                *slot = n;
            }
        }
        n++;
        if (!*p)
            break;
        p++; /* the comma */
    }
    out->nfields = n;
    if (out->bucket < 0 || out->key < 0)
        return bad(err, "fileSchema lacks Bucket or Key");
    return FERRY_OK;
}

typedef struct field {
    const char *s; /* raw text between the quotes (may hold "" pairs) */
    size_t len;
    int quoted;
} field;

/* Splits a CSV line; returns the field count or -1 on bad quoting / too many fields. */
static int split(const char *line, size_t len, field *f, int max)
{
    size_t i = 0;
    int n = 0;

    for (;;) {
        if (n == max)
            return -1;
        if (i < len && line[i] == '"') {
            size_t start = ++i;
            for (;;) {
                if (i >= len)
                    return -1; /* unterminated */
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i++;
            }
            f[n].s = line + start;
            f[n].len = i - start;
            f[n].quoted = 1;
            i++; /* closing quote */
            if (i < len && line[i] != ',')
                return -1;
        } else {
            size_t start = i;
            while (i < len && line[i] != ',') {
                if (line[i] == '"')
                    return -1;
                i++;
            }
            f[n].s = line + start;
            f[n].len = i - start;
            f[n].quoted = 0;
        }
        n++;
        if (i >= len)
            return n;
        i++; /* comma */
    }
}

/* Copies a field, turning "" into ", into out (out_size > 0). -1 if it does not fit. */
static int unquote(const field *f, char *out, size_t out_size, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (o + 1 >= out_size)
            return -1;
        out[o++] = f->s[i];
        if (f->quoted && f->s[i] == '"')
            i++; /* the second quote of a pair */
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return 0;
}

static int is_word(const field *f, const char *w)
{
    return f->len == strlen(w) && !strncasecmp(f->s, w, f->len);
}

ferry_rc ferry_inventory_parse_line(const ferry_inventory_schema *schema, const char *line,
                                    size_t len, ferry_inventory_row *row, ferry_error *err)
{
    field f[FERRY_INVENTORY_FIELDS_MAX];
    char raw[3 * FERRY_URI_KEY_MAX + 1];
    size_t rawlen, klen;
    int n;

    memset(row, 0, sizeof(*row));
    row->size = FERRY_INVENTORY_SIZE_UNKNOWN;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if ((n = split(line, len, f, FERRY_INVENTORY_FIELDS_MAX)) < 0)
        return bad(err, "malformed CSV line (quoting or too many fields)");
    if (n != schema->nfields)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "inventory: %d fields in a line, the fileSchema has %d", n,
                               schema->nfields);
    if (unquote(&f[schema->bucket], row->bucket, sizeof(row->bucket), NULL) != 0 ||
        !row->bucket[0])
        return bad(err, "bucket missing or too long");
    if (unquote(&f[schema->key], raw, sizeof(raw), &rawlen) != 0)
        return bad(err, "key too long");
    klen = ferry_uri_pct_decode(raw, rawlen, 1, row->key, sizeof(row->key));
    if (klen == (size_t)-1 || klen == 0)
        return bad(err, "key does not decode (URL encoding) or is empty or too long");
    row->key_len = klen;
    if (schema->size >= 0 && f[schema->size].len > 0) {
        char num[24], *end;
        unsigned long long v;
        if (unquote(&f[schema->size], num, sizeof(num), NULL) != 0 || num[0] < '0' ||
            num[0] > '9')
            return bad(err, "size is not a number");
        v = strtoull(num, &end, 10);
        if (*end)
            return bad(err, "size is not a number");
        row->size = (uint64_t)v;
    }
    if (schema->etag >= 0 && unquote(&f[schema->etag], row->etag, sizeof(row->etag), NULL) != 0)
        return bad(err, "ETag too long");
    if ((schema->is_latest >= 0 && is_word(&f[schema->is_latest], "false")) ||
        (schema->is_delete_marker >= 0 && is_word(&f[schema->is_delete_marker], "true")))
        row->skip = 1;
    return FERRY_OK;
}
