/* ferry_avro: framing, the known-schema table, and the mapping between avro-c generic
 * values and ferry's event structs. See ferry_avro.h for the contract; the canonical form
 * lives in ferry_avro_canon.c and the pre-decode validator in ferry_avro_guard.c. */
#include "ferry_avro.h"
#include "ferry_avro_internal.h"

#include <avro.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Generated from schemas/ by cmake/FerryEmbedRun.cmake. */
struct ferry_embedded_file {
    const char *name;
    const char *text;
};
extern const struct ferry_embedded_file ferry_schemas_table[];

#define KIND_OTHER (-1) /* an embedded schema of some other record type */
#define NKINDS 2

static const char *const current_files[NKINDS] = {"dataset_onboard.avsc",
                                                  "dataset_migrated.avsc"};

/* One accepted writer schema. */
typedef struct known {
    uint64_t fp;
    char *canon;    /* Parsing Canonical Form, to tell a fingerprint collision */
    char *fullname; /* of the top-level record */
    int kind;       /* ferry_avro_event or KIND_OTHER */
    avro_schema_t schema;
    avro_value_iface_t *iface;
} known;

/* A named type of a current schema's JSON, for reaching field defaults. */
typedef struct named {
    char *fullname;
    char *ns;           /* namespace for names used inside it */
    const json_t *node; /* the {"type":"record",...} object, borrowed from root */
} named;

/* The current (newest) version of one event's schema. */
typedef struct reader {
    const char *text; /* embedded, static storage */
    json_t *root;
    named *names;
    size_t nnames;
    size_t known_idx; /* its entry in codec->known */
    int loaded;
} reader;

typedef struct idmap {
    int32_t id;
    size_t idx;
} idmap;

struct ferry_avro_codec {
    known *known;
    size_t nknown;
    idmap *ids;
    size_t nids;
    reader rd[NKINDS];
};

static const char *const kind_names[NKINDS] = {"DatasetOnboard", "DatasetMigrated"};

static ferry_rc oom(ferry_error *err)
{
    return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
}

/* avro-c keeps its last error in a buffer that later calls prefix or overwrite: read it
 * right after the failing call. */
static ferry_rc avro_fail(ferry_error *err, const char *cls, const char *what)
{
    const char *msg = avro_strerror();
    return ferry_error_set(err, FERRY_ERR_PERMANENT, cls, "%s: %s", what,
                           msg && *msg ? msg : "avro-c error");
}

/* ---------------------------------------------------------------- the current schemas */

static int add_named(reader *rd, const char *fullname, const json_t *node)
{
    named *v = realloc(rd->names, (rd->nnames + 1) * sizeof(*v));
    if (!v)
        return -1;
    rd->names = v;
    named *n = &rd->names[rd->nnames];
    n->fullname = strdup(fullname);
    const char *dot = strrchr(fullname, '.');
    n->ns = dot ? strndup(fullname, (size_t)(dot - fullname)) : strdup("");
    n->node = node;
    if (!n->fullname || !n->ns) {
        free(n->fullname);
        free(n->ns);
        return -1;
    }
    rd->nnames++;
    return 0;
}

/* Records every named type of the (already validated) JSON schema with its full name. */
static int collect_names(reader *rd, const json_t *node, const char *ns, int depth)
{
    if (depth > 64)
        return 0;
    if (json_is_array(node)) {
        for (size_t i = 0; i < json_array_size(node); i++)
            if (collect_names(rd, json_array_get(node, i), ns, depth + 1) != 0)
                return -1;
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    const json_t *t = json_object_get(node, "type");
    const char *type = json_string_value(t);
    if (!type)
        return collect_names(rd, t, ns, depth + 1);
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 ||
        strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0) {
        const char *own = json_string_value(json_object_get(node, "namespace"));
        char *fn = ferry_avro_full_name(json_string_value(json_object_get(node, "name")),
                                        own ? own : ns);
        if (!fn || add_named(rd, fn, node) != 0) {
            free(fn);
            return -1;
        }
        free(fn);
        const char *inner = rd->names[rd->nnames - 1].ns;
        const json_t *fields = json_object_get(node, "fields");
        for (size_t i = 0; i < json_array_size(fields); i++)
            if (collect_names(rd, json_object_get(json_array_get(fields, i), "type"), inner,
                              depth + 1) != 0)
                return -1;
        return 0;
    }
    if (strcmp(type, "array") == 0)
        return collect_names(rd, json_object_get(node, "items"), ns, depth + 1);
    if (strcmp(type, "map") == 0)
        return collect_names(rd, json_object_get(node, "values"), ns, depth + 1);
    return 0;
}

static const named *find_named(const reader *rd, const char *fullname)
{
    for (size_t i = 0; i < rd->nnames; i++)
        if (strcmp(rd->names[i].fullname, fullname) == 0)
            return &rd->names[i];
    return NULL;
}

/* The named record a field's type denotes (inline or by name), or NULL. */
static const named *record_of(const reader *rd, const named *parent, const json_t *type)
{
    if (json_is_object(type)) {
        for (size_t i = 0; i < rd->nnames; i++)
            if (rd->names[i].node == type)
                return &rd->names[i];
        return NULL;
    }
    if (json_is_string(type)) {
        char *fn = ferry_avro_full_name(json_string_value(type), parent->ns);
        const named *n = fn ? find_named(rd, fn) : NULL;
        if (!n)
            n = find_named(rd, json_string_value(type));
        free(fn);
        return n;
    }
    return NULL;
}

static const json_t *field_of(const json_t *record, const char *name)
{
    const json_t *fields = json_object_get(record, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++) {
        const json_t *f = json_array_get(fields, i);
        const char *fname = json_string_value(json_object_get(f, "name"));
        if (fname && strcmp(fname, name) == 0)
            return f;
    }
    return NULL;
}

static void reader_clear(reader *rd)
{
    for (size_t i = 0; i < rd->nnames; i++) {
        free(rd->names[i].fullname);
        free(rd->names[i].ns);
    }
    free(rd->names);
    json_decref(rd->root);
    memset(rd, 0, sizeof(*rd));
}

/* ---------------------------------------------------------------- compatibility */

static avro_schema_t deref(avro_schema_t s)
{
    while (is_avro_link(s))
        s = avro_schema_link_target(s);
    return s;
}

static char *schema_full_name(avro_schema_t s)
{
    return ferry_avro_full_name(avro_schema_name(s), avro_schema_namespace(s));
}

/* The JSON node of the current schema's record `r`, for its field defaults. Matched by
 * full name, else by unqualified name if that is unique. */
static const named *reader_record(const reader *rd, avro_schema_t r)
{
    const named *hit = NULL;
    int nhits = 0;
    char *fn = schema_full_name(r);

    if (fn) {
        hit = find_named(rd, fn);
        free(fn);
        if (hit)
            return hit;
    }
    for (size_t i = 0; i < rd->nnames; i++) {
        const char *dot = strrchr(rd->names[i].fullname, '.');
        const char *simple = dot ? dot + 1 : rd->names[i].fullname;
        if (strcmp(simple, avro_schema_name(r)) == 0) {
            hit = &rd->names[i];
            nhits++;
        }
    }
    return nhits == 1 ? hit : NULL;
}

static int primitive_promotes(avro_type_t w, avro_type_t r)
{
    if (w == r)
        return 1;
    switch (w) {
    case AVRO_INT32: return r == AVRO_INT64 || r == AVRO_FLOAT || r == AVRO_DOUBLE;
    case AVRO_INT64: return r == AVRO_FLOAT || r == AVRO_DOUBLE;
    case AVRO_FLOAT: return r == AVRO_DOUBLE;
    case AVRO_STRING: return r == AVRO_BYTES;
    case AVRO_BYTES: return r == AVRO_STRING;
    default: return 0;
    }
}

static const char *type_name(avro_type_t t)
{
    switch (t) {
    case AVRO_STRING: return "string";
    case AVRO_BYTES: return "bytes";
    case AVRO_INT32: return "int";
    case AVRO_INT64: return "long";
    case AVRO_FLOAT: return "float";
    case AVRO_DOUBLE: return "double";
    case AVRO_BOOLEAN: return "boolean";
    case AVRO_NULL: return "null";
    case AVRO_RECORD: return "record";
    case AVRO_ENUM: return "enum";
    case AVRO_FIXED: return "fixed";
    case AVRO_MAP: return "map";
    case AVRO_ARRAY: return "array";
    case AVRO_UNION: return "union";
    default: return "?";
    }
}

static const char *type_label(avro_schema_t s) { return type_name(avro_typeof(s)); }

/* Can data written with `w` be read into `r` by our by-name mapping? Checked when a writer
 * schema is added, so a schema we could never read is refused up front; decode still
 * checks each value (e.g. which union branch a datum took). */
static ferry_rc compat(const reader *rd, avro_schema_t w, avro_schema_t r, const char *path,
                       int depth, ferry_error *err)
{
    char sub[256];
    ferry_error scratch;

    w = deref(w);
    r = deref(r);
    if (depth > 48)
        return FERRY_OK; /* a recursive schema: assume the cycle matches */
    if (!w || !r)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                               "%s: dangling schema reference", path);

    if (is_avro_union(w)) { /* some branch must be readable; each datum is checked later */
        for (size_t i = 0; i < avro_schema_union_size(w); i++)
            if (compat(rd, avro_schema_union_branch(w, (int)i), r, path, depth + 1, &scratch) ==
                FERRY_OK)
                return FERRY_OK;
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                               "%s: no branch of the writer's union can be read as %s", path,
                               type_label(r));
    }
    if (is_avro_union(r)) {
        for (size_t i = 0; i < avro_schema_union_size(r); i++)
            if (compat(rd, w, avro_schema_union_branch(r, (int)i), path, depth + 1, &scratch) ==
                FERRY_OK)
                return FERRY_OK;
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                               "%s: the writer's %s fits no branch of the current union", path,
                               type_label(w));
    }
    if (avro_typeof(w) != avro_typeof(r)) {
        if (primitive_promotes(avro_typeof(w), avro_typeof(r)))
            return FERRY_OK;
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                               "%s: the writer's %s cannot be read as %s", path, type_label(w),
                               type_label(r));
    }
    if (is_avro_named_type(r) && strcmp(avro_schema_name(w), avro_schema_name(r)) != 0)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                               "%s: the writer's %s %s is not the current %s", path,
                               type_label(w), avro_schema_name(w), avro_schema_name(r));

    switch (avro_typeof(r)) {
    case AVRO_RECORD: {
        const named *rn = reader_record(rd, r);
        for (size_t i = 0; i < avro_schema_record_size(r); i++) {
            const char *fname = avro_schema_record_field_name(r, (int)i);
            snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", fname);
            if (avro_schema_record_field_get_index(w, fname) >= 0) {
                ferry_rc rc = compat(rd, avro_schema_record_field_get(w, fname),
                                     avro_schema_record_field_get_by_index(r, (int)i), sub,
                                     depth + 1, err);
                if (rc != FERRY_OK)
                    return rc;
            } else if (!rn || !json_object_get(field_of(rn->node, fname), "default")) {
                return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                                       "the writer's schema lacks field %s, which has no "
                                       "default in the current schema",
                                       sub);
            }
        }
        return FERRY_OK;
    }
    case AVRO_FIXED:
        if (avro_schema_fixed_size(w) != avro_schema_fixed_size(r))
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                                   "%s: fixed sizes differ", path);
        return FERRY_OK;
    case AVRO_ARRAY:
        return compat(rd, avro_schema_array_items(w), avro_schema_array_items(r), path,
                      depth + 1, err);
    case AVRO_MAP:
        return compat(rd, avro_schema_map_values(w), avro_schema_map_values(r), path, depth + 1,
                      err);
    default: /* primitives; enums (symbols are mapped by name per datum) */ return FERRY_OK;
    }
}

/* ---------------------------------------------------------------- the schema table */

static int kind_of(const ferry_avro_codec *c, const char *fullname)
{
    for (int k = 0; k < NKINDS; k++)
        if (c->rd[k].nnames && strcmp(c->rd[k].names[0].fullname, fullname) == 0)
            return k;
    return KIND_OTHER;
}

/* Adds `json` as an accepted writer schema (or finds it); *idx_out is its index. */
static ferry_rc add_known(ferry_avro_codec *c, const char *json, int allow_other,
                          size_t *idx_out, ferry_error *err)
{
    known k;
    ferry_rc rc = FERRY_OK;

    memset(&k, 0, sizeof(k));
    k.canon = ferry_avro_canonical_form(json, err);
    if (!k.canon)
        return err ? err->rc : FERRY_ERR_PERMANENT;
    k.fp = ferry_avro_crc64(k.canon, strlen(k.canon));
    for (size_t i = 0; i < c->nknown; i++) {
        if (c->known[i].fp != k.fp)
            continue;
        if (strcmp(c->known[i].canon, k.canon) != 0) {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                                 "schema fingerprint 0x%016llx collides with another schema",
                                 (unsigned long long)k.fp);
            goto out;
        }
        *idx_out = i; /* already known */
        goto out;
    }
    if (avro_schema_from_json_length(json, strlen(json), &k.schema) != 0) {
        k.schema = NULL;
        rc = avro_fail(err, FERRY_EC_SCHEMA, "avro-c rejects the schema");
        goto out;
    }
    if (!is_avro_record(k.schema)) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                             "an event schema must be a record, not %s", type_label(k.schema));
        goto out;
    }
    k.fullname = schema_full_name(k.schema);
    if (!k.fullname) {
        rc = oom(err);
        goto out;
    }
    k.kind = kind_of(c, k.fullname);
    if (k.kind == KIND_OTHER && !allow_other) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                             "schema is record %s; this codec reads only %s and %s", k.fullname,
                             c->rd[0].names[0].fullname, c->rd[1].names[0].fullname);
        goto out;
    }
    if (k.kind != KIND_OTHER && c->rd[k.kind].loaded) {
        const reader *rd = &c->rd[k.kind];
        rc = compat(rd, k.schema, c->known[rd->known_idx].schema, "", 0, err);
        if (rc != FERRY_OK) {
            ferry_error_prefix(err, "%s cannot be read into the current schema", k.fullname);
            goto out;
        }
    }
    k.iface = avro_generic_class_from_schema(k.schema);
    if (!k.iface) {
        rc = avro_fail(err, FERRY_EC_INTERNAL, "avro_generic_class_from_schema");
        goto out;
    }
    known *v = realloc(c->known, (c->nknown + 1) * sizeof(*v));
    if (!v) {
        rc = oom(err);
        goto out;
    }
    c->known = v;
    c->known[c->nknown] = k;
    *idx_out = c->nknown++;
    return FERRY_OK; /* k's members now belong to the table */
out:
    if (k.iface)
        avro_value_iface_decref(k.iface);
    if (k.schema)
        avro_schema_decref(k.schema);
    free(k.fullname);
    free(k.canon);
    return rc;
}

void ferry_avro_codec_destroy(ferry_avro_codec *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nknown; i++) {
        avro_value_iface_decref(c->known[i].iface);
        avro_schema_decref(c->known[i].schema);
        free(c->known[i].canon);
        free(c->known[i].fullname);
    }
    free(c->known);
    free(c->ids);
    for (int k = 0; k < NKINDS; k++)
        reader_clear(&c->rd[k]);
    free(c);
}

static const struct ferry_embedded_file *embedded(const char *name)
{
    for (const struct ferry_embedded_file *f = ferry_schemas_table; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

ferry_avro_codec *ferry_avro_codec_new(char *errstr, size_t errstr_size)
{
    ferry_avro_codec *c = calloc(1, sizeof(*c));
    ferry_error err;
    size_t idx;

    ferry_error_clear(&err);
    if (!c) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    /* The current versions first: their JSON (for defaults) and full names decide which
     * event every other schema is a version of. */
    for (int k = 0; k < NKINDS; k++) {
        reader *rd = &c->rd[k];
        const struct ferry_embedded_file *f = embedded(current_files[k]);
        json_error_t jerr;
        if (!f) {
            snprintf(errstr, errstr_size, "schemas/%s is not embedded in this build",
                     current_files[k]);
            goto fail;
        }
        rd->text = f->text;
        char *cf = ferry_avro_canonical_form(f->text, &err); /* validates the JSON */
        if (!cf) {
            ferry_error_to_errstr(&err, errstr, errstr_size, "schemas/%s", f->name);
            goto fail;
        }
        free(cf);
        rd->root = json_loads(f->text, 0, &jerr);
        if (!rd->root) {
            snprintf(errstr, errstr_size, "schemas/%s: JSON error line %d: %s", f->name,
                     jerr.line, jerr.text);
            goto fail;
        }
        if (collect_names(rd, rd->root, NULL, 0) != 0) {
            snprintf(errstr, errstr_size, "out of memory");
            goto fail;
        }
        if (rd->nnames == 0 || rd->names[0].node != rd->root ||
            strcmp(json_string_value(json_object_get(rd->root, "type")), "record") != 0) {
            snprintf(errstr, errstr_size, "schemas/%s: not a record schema", f->name);
            goto fail;
        }
    }
    for (int k = 0; k < NKINDS; k++) {
        const struct ferry_embedded_file *f = embedded(current_files[k]);
        if (add_known(c, f->text, 0, &idx, &err) != FERRY_OK) {
            ferry_error_to_errstr(&err, errstr, errstr_size, "schemas/%s", f->name);
            goto fail;
        }
        if (c->known[idx].kind != k) {
            snprintf(errstr, errstr_size, "schemas/%s: not a %s schema", f->name,
                     kind_names[k]);
            goto fail;
        }
        c->rd[k].known_idx = idx;
        c->rd[k].loaded = 1;
    }
    /* Every other embedded file: an older released version (or another record type). */
    for (const struct ferry_embedded_file *f = ferry_schemas_table; f->name; f++) {
        if (add_known(c, f->text, 1, &idx, &err) != FERRY_OK) {
            ferry_error_to_errstr(&err, errstr, errstr_size, "schemas/%s", f->name);
            goto fail;
        }
    }
    return c;
fail:
    ferry_avro_codec_destroy(c);
    return NULL;
}

ferry_rc ferry_avro_codec_add_schema(ferry_avro_codec *c, const char *json, ferry_error *err)
{
    size_t idx;
    if (!json)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA, "schema is NULL");
    return add_known(c, json, 0, &idx, err);
}

ferry_rc ferry_avro_codec_register_id(ferry_avro_codec *c, int32_t id, const char *json,
                                      ferry_error *err)
{
    size_t idx;
    uint64_t fp;
    ferry_rc rc;

    if (id < 0)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                               "invalid Schema Registry id %d", (int)id);
    if (!json)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA, "schema is NULL");
    if ((rc = ferry_avro_fingerprint(json, &fp, err)) != FERRY_OK)
        return rc;
    /* Check for a conflicting mapping before adding anything. */
    for (size_t i = 0; i < c->nids; i++) {
        if (c->ids[i].id != id)
            continue;
        if (c->known[c->ids[i].idx].fp == fp)
            return FERRY_OK;
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                               "Schema Registry id %d is already mapped to another schema "
                               "(fingerprint 0x%016llx)",
                               (int)id, (unsigned long long)c->known[c->ids[i].idx].fp);
    }
    if ((rc = add_known(c, json, 0, &idx, err)) != FERRY_OK) /* adds or finds it */
        return rc;
    idmap *v = realloc(c->ids, (c->nids + 1) * sizeof(*v));
    if (!v)
        return oom(err);
    c->ids = v;
    c->ids[c->nids].id = id;
    c->ids[c->nids].idx = idx;
    c->nids++;
    return FERRY_OK;
}

const char *ferry_avro_codec_schema_json(const ferry_avro_codec *c, ferry_avro_event ev)
{
    return (unsigned)ev < NKINDS ? c->rd[ev].text : NULL;
}

uint64_t ferry_avro_codec_fingerprint(const ferry_avro_codec *c, ferry_avro_event ev)
{
    return (unsigned)ev < NKINDS ? c->known[c->rd[ev].known_idx].fp : 0;
}

/* ---------------------------------------------------------------- framing */

static ferry_rc parse_header(const ferry_avro_codec *c, const unsigned char *p, size_t len,
                             size_t *idx, size_t *hdr, ferry_error *err)
{
    if (len > FERRY_AVRO_MAX_EVENT_BYTES)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_DECODE,
                               "event of %zu bytes exceeds the %d-byte limit", len,
                               FERRY_AVRO_MAX_EVENT_BYTES);
    if (len == 0)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_DECODE, "empty payload");
    if (p[0] == 0xC3) {
        uint64_t fp = 0;
        if (len < 2)
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_DECODE,
                                   "truncated single-object header (%zu bytes)", len);
        if (p[1] != 0x01)
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                                   "wrong magic 0xc3 0x%02x (single-object encoding is "
                                   "0xc3 0x01)",
                                   p[1]);
        if (len < FERRY_AVRO_SINGLE_OBJECT_HEADER)
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_DECODE,
                                   "truncated single-object header (%zu bytes)", len);
        for (int i = 7; i >= 0; i--)
            fp = (fp << 8) | p[2 + i];
        for (size_t i = 0; i < c->nknown; i++)
            if (c->known[i].fp == fp) {
                *idx = i;
                *hdr = FERRY_AVRO_SINGLE_OBJECT_HEADER;
                return FERRY_OK;
            }
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                               "unknown schema fingerprint 0x%016llx (not one of the %zu "
                               "schemas this reader knows)",
                               (unsigned long long)fp, c->nknown);
    }
    if (p[0] == 0x00) {
        if (len < FERRY_AVRO_CONFLUENT_HEADER)
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_DECODE,
                                   "truncated Confluent header (%zu bytes)", len);
        int32_t id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
                               ((uint32_t)p[3] << 8) | (uint32_t)p[4]);
        for (size_t i = 0; i < c->nids; i++)
            if (c->ids[i].id == id) {
                *idx = c->ids[i].idx;
                *hdr = FERRY_AVRO_CONFLUENT_HEADER;
                return FERRY_OK;
            }
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                               "unknown Schema Registry id %d (not registered with this "
                               "reader)",
                               (int)id);
    }
    return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                           "unknown magic byte 0x%02x (expected 0xc3 0x01 single-object or "
                           "0x00 Confluent framing)",
                           p[0]);
}

ferry_rc ferry_avro_peek(ferry_avro_codec *c, const void *buf, size_t len,
                         ferry_avro_event *kind, ferry_error *err)
{
    size_t idx = 0, hdr = 0; /* set by parse_header on success */
    ferry_rc rc = parse_header(c, buf, len, &idx, &hdr, err);

    if (rc != FERRY_OK)
        return rc;
    if (c->known[idx].kind == KIND_OTHER)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                               "payload is a %s, not a ferry event", c->known[idx].fullname);
    *kind = (ferry_avro_event)c->known[idx].kind;
    return FERRY_OK;
}

/* Header + guard + avro-c read. On success *v holds the writer's datum (caller decrefs)
 * and *idx its schema. */
static ferry_rc read_datum(ferry_avro_codec *c, const void *buf, size_t len, int kind,
                           avro_value_t *v, size_t *idx, ferry_error *err)
{
    const unsigned char *p = buf;
    size_t hdr = 0;
    avro_reader_t r = NULL;
    ferry_rc rc;

    if (!buf && len)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_DECODE, "NULL buffer");
    if ((rc = parse_header(c, p, len, idx, &hdr, err)) != FERRY_OK)
        return rc;
    const known *k = &c->known[*idx];
    if (k->kind != kind)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_SCHEMA,
                               "payload is a %s, not a %s", k->fullname,
                               c->rd[kind].names[0].fullname);
    if ((rc = ferry_avro_guard_check(k->schema, p + hdr, len - hdr, err)) != FERRY_OK)
        return rc;
    if (avro_generic_value_new(k->iface, v) != 0)
        return avro_fail(err, FERRY_EC_INTERNAL, "avro_generic_value_new");
    r = avro_reader_memory((const char *)p + hdr, (int64_t)(len - hdr));
    if (!r) {
        avro_value_decref(v);
        return oom(err);
    }
    if (avro_value_read(r, v) != 0) {
        rc = avro_fail(err, FERRY_EC_DECODE, "avro-c cannot read the body");
        avro_value_decref(v);
    }
    avro_reader_free(r);
    return rc;
}

/* ---------------------------------------------------------------- writer value -> struct */

/* A source for one field of the current schema: the writer's value if it had the field,
 * else the current schema's default. */
typedef struct slot {
    avro_value_t av;   /* valid if !def; unions already unwrapped */
    const json_t *def; /* default (JSON) */
    const named *rec;  /* for records: the current schema's definition */
    char path[128];    /* for messages */
} slot;

typedef struct mapper {
    const reader *rd;
    ferry_error *err;
} mapper;

static ferry_rc mfail(mapper *m, const slot *s, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ferry_rc mfail(mapper *m, const slot *s, const char *cls, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return ferry_error_set(m->err, FERRY_ERR_PERMANENT, cls, "field %s: %s", s->path, what);
}

static int unwrap(avro_value_t *v)
{
    avro_value_t branch;

    if (avro_value_get_type(v) != AVRO_UNION)
        return 0;
    if (avro_value_get_current_branch(v, &branch) != 0)
        return -1;
    *v = branch;
    return 0;
}

/* out = field `name` of record slot `parent`. */
static ferry_rc field(mapper *m, const slot *parent, const char *name, slot *out)
{
    const json_t *rfield = parent->rec ? field_of(parent->rec->node, name) : NULL;

    memset(out, 0, sizeof(*out));
    snprintf(out->path, sizeof(out->path), "%s%s%s", parent->path, *parent->path ? "." : "",
             name);
    if (!rfield)
        return mfail(m, out, FERRY_EC_INTERNAL, "not in the current schema");
    out->rec = record_of(m->rd, parent->rec, json_object_get(rfield, "type"));
    if (!parent->def) {
        if (avro_value_get_by_name(&parent->av, name, &out->av, NULL) == 0) {
            if (unwrap(&out->av) != 0)
                return mfail(m, out, FERRY_EC_DECODE, "union without a branch");
            return FERRY_OK;
        }
    } else if ((out->def = json_object_get(parent->def, name)) != NULL) {
        return FERRY_OK;
    }
    out->def = json_object_get(rfield, "default");
    if (!out->def)
        return mfail(m, out, FERRY_EC_SCHEMA,
                     "the writer's schema lacks it and the current schema has no default");
    return FERRY_OK;
}

static ferry_rc check_text(mapper *m, const slot *s, const char *p, size_t n)
{
    if (memchr(p, '\0', n))
        return mfail(m, s, FERRY_EC_DECODE, "string contains a NUL byte");
    if (!ferry_avro_utf8_ok(p, n))
        return mfail(m, s, FERRY_EC_DECODE, "string is not valid UTF-8");
    return FERRY_OK;
}

static ferry_rc dup_text(mapper *m, const slot *s, const char *p, size_t n, char **out)
{
    ferry_rc rc = check_text(m, s, p, n);
    if (rc != FERRY_OK)
        return rc;
    *out = strndup(p, n);
    return *out ? FERRY_OK : oom(m->err);
}

/* A string; NULL only if `nullable` and the value (or default) is null. */
static ferry_rc get_string(mapper *m, const slot *s, int nullable, char **out)
{
    *out = NULL;
    if (s->def) {
        if (json_is_null(s->def) && nullable)
            return FERRY_OK;
        if (!json_is_string(s->def))
            return mfail(m, s, FERRY_EC_SCHEMA, "default is not a string");
        return dup_text(m, s, json_string_value(s->def), json_string_length(s->def), out);
    }
    switch (avro_value_get_type(&s->av)) {
    case AVRO_NULL:
        if (nullable)
            return FERRY_OK;
        return mfail(m, s, FERRY_EC_DECODE, "null, but the current schema requires a string");
    case AVRO_STRING: {
        const char *p;
        size_t n;
        if (avro_value_get_string(&s->av, &p, &n) != 0 || n == 0)
            return mfail(m, s, FERRY_EC_DECODE, "unreadable string");
        return dup_text(m, s, p, n - 1, out); /* avro-c's size counts the NUL */
    }
    case AVRO_BYTES: {
        const void *p;
        size_t n;
        if (avro_value_get_bytes(&s->av, &p, &n) != 0)
            return mfail(m, s, FERRY_EC_DECODE, "unreadable bytes");
        return dup_text(m, s, p, n, out);
    }
    default:
        return mfail(m, s, FERRY_EC_SCHEMA, "the writer's type cannot be read as a string");
    }
}

static ferry_rc get_long(mapper *m, const slot *s, int64_t *out)
{
    if (s->def) {
        if (!json_is_integer(s->def))
            return mfail(m, s, FERRY_EC_SCHEMA, "default is not an integer");
        *out = json_integer_value(s->def);
        return FERRY_OK;
    }
    switch (avro_value_get_type(&s->av)) {
    case AVRO_INT64:
        return avro_value_get_long(&s->av, out) == 0
                   ? FERRY_OK
                   : mfail(m, s, FERRY_EC_DECODE, "unreadable long");
    case AVRO_INT32: {
        int32_t i;
        if (avro_value_get_int(&s->av, &i) != 0)
            return mfail(m, s, FERRY_EC_DECODE, "unreadable int");
        *out = i;
        return FERRY_OK;
    }
    default: return mfail(m, s, FERRY_EC_SCHEMA, "the writer's type cannot be read as a long");
    }
}

static ferry_rc get_bool(mapper *m, const slot *s, int *out)
{
    if (s->def) {
        if (!json_is_boolean(s->def))
            return mfail(m, s, FERRY_EC_SCHEMA, "default is not a boolean");
        *out = json_is_true(s->def);
        return FERRY_OK;
    }
    int b;
    if (avro_value_get_type(&s->av) != AVRO_BOOLEAN)
        return mfail(m, s, FERRY_EC_SCHEMA, "the writer's type cannot be read as a boolean");
    if (avro_value_get_boolean(&s->av, &b) != 0)
        return mfail(m, s, FERRY_EC_DECODE, "unreadable boolean");
    *out = b ? 1 : 0;
    return FERRY_OK;
}

/* An enum symbol (borrowed from the writer's schema or the default). */
static ferry_rc get_symbol(mapper *m, const slot *s, const char **out)
{
    if (s->def) {
        if (!json_is_string(s->def))
            return mfail(m, s, FERRY_EC_SCHEMA, "default is not an enum symbol");
        *out = json_string_value(s->def);
        return FERRY_OK;
    }
    int idx;
    if (avro_value_get_type(&s->av) != AVRO_ENUM)
        return mfail(m, s, FERRY_EC_SCHEMA, "the writer's type cannot be read as an enum");
    if (avro_value_get_enum(&s->av, &idx) != 0)
        return mfail(m, s, FERRY_EC_DECODE, "unreadable enum");
    avro_schema_t es = deref(avro_value_get_schema(&s->av));
    *out = es ? avro_schema_enum_get(es, idx) : NULL;
    if (!*out)
        return mfail(m, s, FERRY_EC_DECODE, "enum index %d out of range", idx);
    return FERRY_OK;
}

static ferry_rc get_origin(mapper *m, const slot *s, ferry_origin *out)
{
    const char *sym;
    ferry_rc rc = get_symbol(m, s, &sym);
    if (rc == FERRY_OK && ferry_origin_parse(sym, out) != 0)
        return mfail(m, s, FERRY_EC_DECODE, "symbol \"%s\" is not known to this reader", sym);
    return rc;
}

static ferry_rc get_overwrite(mapper *m, const slot *s, ferry_overwrite *out)
{
    const char *sym;
    ferry_rc rc = get_symbol(m, s, &sym);
    if (rc == FERRY_OK && ferry_overwrite_parse(sym, out) != 0)
        return mfail(m, s, FERRY_EC_DECODE, "symbol \"%s\" is not known to this reader", sym);
    return rc;
}

/* An array of strings; *v is NULL when empty. On failure nothing is left allocated. */
static ferry_rc get_strv(mapper *m, const slot *s, char ***v, size_t *n)
{
    size_t count;
    char **out = NULL;
    ferry_rc rc = FERRY_OK;
    size_t i = 0;

    *v = NULL;
    *n = 0;
    if (s->def) {
        if (!json_is_array(s->def))
            return mfail(m, s, FERRY_EC_SCHEMA, "default is not an array");
        count = json_array_size(s->def);
    } else {
        if (avro_value_get_type(&s->av) != AVRO_ARRAY)
            return mfail(m, s, FERRY_EC_SCHEMA, "the writer's type cannot be read as an array");
        if (avro_value_get_size(&s->av, &count) != 0)
            return mfail(m, s, FERRY_EC_DECODE, "unreadable array");
    }
    if (count == 0)
        return FERRY_OK;
    if (count > FERRY_AVRO_MAX_ITEMS)
        return mfail(m, s, FERRY_EC_DECODE, "more than %d items", FERRY_AVRO_MAX_ITEMS);
    out = calloc(count, sizeof(*out));
    if (!out)
        return oom(m->err);
    for (i = 0; i < count; i++) {
        slot item;
        memset(&item, 0, sizeof(item));
        snprintf(item.path, sizeof(item.path), "%s[%zu]", s->path, i);
        if (s->def) {
            item.def = json_array_get(s->def, i);
        } else if (avro_value_get_by_index(&s->av, i, &item.av, NULL) != 0 ||
                   unwrap(&item.av) != 0) {
            rc = mfail(m, &item, FERRY_EC_DECODE, "unreadable item");
            goto out;
        }
        if ((rc = get_string(m, &item, 0, &out[i])) != FERRY_OK)
            goto out;
    }
    *v = out;
    *n = count;
    return FERRY_OK;
out:
    for (size_t k = 0; k < i; k++)
        free(out[k]);
    free(out);
    return rc;
}

/* Checks that a slot holds a record (value or default) to take fields from. */
static ferry_rc get_record(mapper *m, const slot *s)
{
    if (!s->rec)
        return mfail(m, s, FERRY_EC_INTERNAL, "not a record in the current schema");
    if (s->def ? !json_is_object(s->def) : avro_value_get_type(&s->av) != AVRO_RECORD)
        return mfail(m, s, FERRY_EC_SCHEMA, "%s cannot be read as a record",
                     s->def ? "default" : "the writer's type");
    return FERRY_OK;
}

#define STEP(expr)                                                                             \
    do {                                                                                       \
        if ((rc = (expr)) != FERRY_OK)                                                         \
            goto out;                                                                          \
    } while (0)

static ferry_rc map_onboard(mapper *m, const slot *root, ferry_onboard *ev)
{
    slot f, opts;
    ferry_rc rc = FERRY_OK;

    STEP(field(m, root, "event_id", &f));
    STEP(get_string(m, &f, 0, &ev->event_id));
    STEP(field(m, root, "dataset", &f));
    STEP(get_string(m, &f, 0, &ev->dataset));
    STEP(field(m, root, "source_uri", &f));
    STEP(get_string(m, &f, 0, &ev->source_uri));
    STEP(field(m, root, "target_uri", &f));
    STEP(get_string(m, &f, 0, &ev->target_uri));
    STEP(field(m, root, "requested_at", &f));
    STEP(get_long(m, &f, &ev->requested_at_ms));
    STEP(field(m, root, "requested_by", &f));
    STEP(get_string(m, &f, 0, &ev->requested_by));
    STEP(field(m, root, "origin", &f));
    STEP(get_origin(m, &f, &ev->origin));
    STEP(field(m, root, "catalog_ref", &f));
    STEP(get_string(m, &f, 1, &ev->catalog_ref));
    STEP(field(m, root, "catalog_etag", &f));
    STEP(get_string(m, &f, 1, &ev->catalog_etag));
    STEP(field(m, root, "options", &opts));
    STEP(get_record(m, &opts));
    STEP(field(m, &opts, "verify", &f));
    STEP(get_bool(m, &f, &ev->verify));
    STEP(field(m, &opts, "overwrite", &f));
    STEP(get_overwrite(m, &f, &ev->overwrite));
    STEP(field(m, &opts, "include_prefixes", &f));
    STEP(get_strv(m, &f, &ev->include_prefixes, &ev->include_count));
    STEP(field(m, &opts, "exclude_prefixes", &f));
    STEP(get_strv(m, &f, &ev->exclude_prefixes, &ev->exclude_count));
    STEP(field(m, root, "chunk_parent_event_id", &f));
    STEP(get_string(m, &f, 1, &ev->chunk_parent_event_id));
    STEP(field(m, root, "chunk_index", &f));
    STEP(get_long(m, &f, &ev->chunk_index));
    STEP(field(m, root, "chunk_count", &f));
    STEP(get_long(m, &f, &ev->chunk_count));
    STEP(field(m, root, "chunk_start_after", &f));
    STEP(get_string(m, &f, 1, &ev->chunk_start_after));
    STEP(field(m, root, "chunk_end_key", &f));
    STEP(get_string(m, &f, 1, &ev->chunk_end_key));
    STEP(field(m, root, "source_inventory", &f));
    STEP(get_string(m, &f, 1, &ev->source_inventory));
out:
    return rc;
}

static ferry_rc map_migrated(mapper *m, const slot *root, ferry_migrated *ev)
{
    slot f;
    ferry_rc rc = FERRY_OK;

    STEP(field(m, root, "event_id", &f));
    STEP(get_string(m, &f, 0, &ev->event_id));
    STEP(field(m, root, "dataset", &f));
    STEP(get_string(m, &f, 0, &ev->dataset));
    STEP(field(m, root, "source_uri", &f));
    STEP(get_string(m, &f, 0, &ev->source_uri));
    STEP(field(m, root, "target_uri", &f));
    STEP(get_string(m, &f, 0, &ev->target_uri));
    STEP(field(m, root, "objects", &f));
    STEP(get_long(m, &f, &ev->objects));
    STEP(field(m, root, "bytes", &f));
    STEP(get_long(m, &f, &ev->bytes));
    STEP(field(m, root, "duration_ms", &f));
    STEP(get_long(m, &f, &ev->duration_ms));
    STEP(field(m, root, "finished_at", &f));
    STEP(get_long(m, &f, &ev->finished_at_ms));
    STEP(field(m, root, "worker", &f));
    STEP(get_string(m, &f, 0, &ev->worker));
    STEP(field(m, root, "objects_copied", &f));
    STEP(get_long(m, &f, &ev->objects_copied));
    STEP(field(m, root, "objects_identical", &f));
    STEP(get_long(m, &f, &ev->objects_identical));
    STEP(field(m, root, "objects_vanished", &f));
    STEP(get_long(m, &f, &ev->objects_vanished));
    STEP(field(m, root, "objects_failed", &f));
    STEP(get_long(m, &f, &ev->objects_failed));
out:
    return rc;
}

ferry_rc ferry_avro_decode_onboard(ferry_avro_codec *c, const void *buf, size_t len,
                                   ferry_onboard *out, ferry_error *err)
{
    const int kind = FERRY_AVRO_EVENT_ONBOARD;
    mapper m = {&c->rd[kind], err};
    slot root;
    size_t idx;
    ferry_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&root, 0, sizeof(root));
    if ((rc = read_datum(c, buf, len, kind, &root.av, &idx, err)) != FERRY_OK)
        return rc;
    root.rec = &c->rd[kind].names[0];
    rc = map_onboard(&m, &root, out);
    avro_value_decref(&root.av);
    if (rc != FERRY_OK)
        ferry_onboard_clear(out);
    return rc;
}

ferry_rc ferry_avro_decode_migrated(ferry_avro_codec *c, const void *buf, size_t len,
                                    ferry_migrated *out, ferry_error *err)
{
    const int kind = FERRY_AVRO_EVENT_MIGRATED;
    mapper m = {&c->rd[kind], err};
    slot root;
    size_t idx;
    ferry_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&root, 0, sizeof(root));
    if ((rc = read_datum(c, buf, len, kind, &root.av, &idx, err)) != FERRY_OK)
        return rc;
    root.rec = &c->rd[kind].names[0];
    rc = map_migrated(&m, &root, out);
    avro_value_decref(&root.av);
    if (rc != FERRY_OK)
        ferry_migrated_clear(out);
    return rc;
}

/* ---------------------------------------------------------------- struct -> value */

static ferry_rc efail(ferry_error *err, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ferry_rc efail(ferry_error *err, const char *cls, const char *fmt, ...)
{
    char what[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return ferry_error_set(err, FERRY_ERR_PERMANENT, cls, "cannot encode: %s", what);
}

/* The field `name` of record value `rec`; if it is a union, the branch of type `want`
 * (selected). */
static ferry_rc put_field(avro_value_t *rec, const char *name, avro_type_t want,
                          avro_value_t *out, ferry_error *err)
{
    avro_value_t f;

    if (avro_value_get_by_name(rec, name, &f, NULL) != 0)
        return efail(err, FERRY_EC_INTERNAL, "current schema has no field %s", name);
    if (avro_value_get_type(&f) == AVRO_UNION) {
        avro_schema_t us = avro_value_get_schema(&f);
        for (size_t i = 0; i < avro_schema_union_size(us); i++) {
            avro_schema_t b = deref(avro_schema_union_branch(us, (int)i));
            if (b && avro_typeof(b) == want) {
                if (avro_value_set_branch(&f, (int)i, out) != 0)
                    return avro_fail(err, FERRY_EC_INTERNAL, "avro_value_set_branch");
                return FERRY_OK;
            }
        }
        return efail(err, FERRY_EC_INTERNAL, "%s: the current schema's union has no %s", name,
                     type_name(want));
    }
    if (avro_value_get_type(&f) != want)
        return efail(err, FERRY_EC_INTERNAL,
                     "field %s has an unexpected type in the current "
                     "schema",
                     name);
    *out = f;
    return FERRY_OK;
}

static ferry_rc check_string(const char *name, const char *s, ferry_error *err)
{
    if (!ferry_avro_utf8_ok(s, strlen(s)))
        return efail(err, FERRY_EC_INVALID_SPEC, "%s is not valid UTF-8", name);
    return FERRY_OK;
}

static ferry_rc put_string(avro_value_t *rec, const char *name, const char *s, int nullable,
                           ferry_error *err)
{
    avro_value_t f;
    ferry_rc rc;

    if (!s) {
        if (!nullable)
            return efail(err, FERRY_EC_INVALID_SPEC, "%s is required", name);
        if ((rc = put_field(rec, name, AVRO_NULL, &f, err)) != FERRY_OK)
            return rc;
        return avro_value_set_null(&f) == 0 ? FERRY_OK
                                            : avro_fail(err, FERRY_EC_INTERNAL, name);
    }
    if ((rc = check_string(name, s, err)) != FERRY_OK)
        return rc;
    if ((rc = put_field(rec, name, AVRO_STRING, &f, err)) != FERRY_OK)
        return rc;
    return avro_value_set_string(&f, s) == 0 ? FERRY_OK
                                             : avro_fail(err, FERRY_EC_INTERNAL, name);
}

static ferry_rc put_long(avro_value_t *rec, const char *name, int64_t v, ferry_error *err)
{
    avro_value_t f;
    ferry_rc rc = put_field(rec, name, AVRO_INT64, &f, err);
    if (rc != FERRY_OK)
        return rc;
    return avro_value_set_long(&f, v) == 0 ? FERRY_OK : avro_fail(err, FERRY_EC_INTERNAL, name);
}

static ferry_rc put_bool(avro_value_t *rec, const char *name, int v, ferry_error *err)
{
    avro_value_t f;
    ferry_rc rc = put_field(rec, name, AVRO_BOOLEAN, &f, err);
    if (rc != FERRY_OK)
        return rc;
    return avro_value_set_boolean(&f, v ? 1 : 0) == 0 ? FERRY_OK
                                                      : avro_fail(err, FERRY_EC_INTERNAL, name);
}

/* Enum by symbol name, so the C enum's order need not match the schema's. */
static ferry_rc put_enum(avro_value_t *rec, const char *name, const char *sym, ferry_error *err)
{
    avro_value_t f;
    ferry_rc rc = put_field(rec, name, AVRO_ENUM, &f, err);
    if (rc != FERRY_OK)
        return rc;
    avro_schema_t es = deref(avro_value_get_schema(&f));
    int idx = avro_schema_enum_get_by_name(es, sym);
    if (idx < 0)
        return efail(err, FERRY_EC_INVALID_SPEC,
                     "%s: \"%s\" is not a symbol of the current "
                     "schema",
                     name, sym);
    return avro_value_set_enum(&f, idx) == 0 ? FERRY_OK
                                             : avro_fail(err, FERRY_EC_INTERNAL, name);
}

static ferry_rc put_strv(avro_value_t *rec, const char *name, char *const *v, size_t n,
                         ferry_error *err)
{
    avro_value_t arr, item;
    ferry_rc rc = put_field(rec, name, AVRO_ARRAY, &arr, err);

    if (rc != FERRY_OK)
        return rc;
    if (n && !v)
        return efail(err, FERRY_EC_INVALID_SPEC, "%s: %zu items but no array", name, n);
    if (n > FERRY_AVRO_MAX_ITEMS)
        return efail(err, FERRY_EC_INVALID_SPEC, "%s: more than %d items", name,
                     FERRY_AVRO_MAX_ITEMS);
    for (size_t i = 0; i < n; i++) {
        if (!v[i])
            return efail(err, FERRY_EC_INVALID_SPEC, "%s[%zu] is NULL", name, i);
        if ((rc = check_string(name, v[i], err)) != FERRY_OK)
            return rc;
        if (avro_value_append(&arr, &item, NULL) != 0 ||
            avro_value_set_string(&item, v[i]) != 0)
            return avro_fail(err, FERRY_EC_INTERNAL, name);
    }
    return FERRY_OK;
}

static ferry_rc fill_onboard(avro_value_t *v, const ferry_onboard *ev, ferry_error *err)
{
    avro_value_t opts;
    ferry_rc rc = FERRY_OK;

    if ((unsigned)ev->origin > FERRY_ORIGIN_REPLAY)
        return efail(err, FERRY_EC_INVALID_SPEC, "origin %d out of range", (int)ev->origin);
    if ((unsigned)ev->overwrite > FERRY_OVERWRITE_NEVER)
        return efail(err, FERRY_EC_INVALID_SPEC, "overwrite %d out of range",
                     (int)ev->overwrite);
    STEP(put_string(v, "event_id", ev->event_id, 0, err));
    STEP(put_string(v, "dataset", ev->dataset, 0, err));
    STEP(put_string(v, "source_uri", ev->source_uri, 0, err));
    STEP(put_string(v, "target_uri", ev->target_uri, 0, err));
    STEP(put_long(v, "requested_at", ev->requested_at_ms, err));
    STEP(put_string(v, "requested_by", ev->requested_by, 0, err));
    STEP(put_enum(v, "origin", ferry_origin_name(ev->origin), err));
    STEP(put_string(v, "catalog_ref", ev->catalog_ref, 1, err));
    STEP(put_string(v, "catalog_etag", ev->catalog_etag, 1, err));
    STEP(put_field(v, "options", AVRO_RECORD, &opts, err));
    STEP(put_bool(&opts, "verify", ev->verify, err));
    STEP(put_enum(&opts, "overwrite", ferry_overwrite_name(ev->overwrite), err));
    STEP(put_strv(&opts, "include_prefixes", ev->include_prefixes, ev->include_count, err));
    STEP(put_strv(&opts, "exclude_prefixes", ev->exclude_prefixes, ev->exclude_count, err));
    STEP(put_string(v, "chunk_parent_event_id", ev->chunk_parent_event_id, 1, err));
    STEP(put_long(v, "chunk_index", ev->chunk_index, err));
    STEP(put_long(v, "chunk_count", ev->chunk_count, err));
    STEP(put_string(v, "chunk_start_after", ev->chunk_start_after, 1, err));
    STEP(put_string(v, "chunk_end_key", ev->chunk_end_key, 1, err));
    STEP(put_string(v, "source_inventory", ev->source_inventory, 1, err));
out:
    return rc;
}

static ferry_rc fill_migrated(avro_value_t *v, const ferry_migrated *ev, ferry_error *err)
{
    ferry_rc rc = FERRY_OK;

    STEP(put_string(v, "event_id", ev->event_id, 0, err));
    STEP(put_string(v, "dataset", ev->dataset, 0, err));
    STEP(put_string(v, "source_uri", ev->source_uri, 0, err));
    STEP(put_string(v, "target_uri", ev->target_uri, 0, err));
    STEP(put_long(v, "objects", ev->objects, err));
    STEP(put_long(v, "bytes", ev->bytes, err));
    STEP(put_long(v, "duration_ms", ev->duration_ms, err));
    STEP(put_long(v, "finished_at", ev->finished_at_ms, err));
    STEP(put_string(v, "worker", ev->worker, 0, err));
    STEP(put_long(v, "objects_copied", ev->objects_copied, err));
    STEP(put_long(v, "objects_identical", ev->objects_identical, err));
    STEP(put_long(v, "objects_vanished", ev->objects_vanished, err));
    STEP(put_long(v, "objects_failed", ev->objects_failed, err));
out:
    return rc;
}

typedef ferry_rc (*fill_fn)(avro_value_t *v, const void *ev, ferry_error *err);

static ferry_rc fill_onboard_v(avro_value_t *v, const void *ev, ferry_error *err)
{
    return fill_onboard(v, ev, err);
}

static ferry_rc fill_migrated_v(avro_value_t *v, const void *ev, ferry_error *err)
{
    return fill_migrated(v, ev, err);
}

static ferry_rc encode(ferry_avro_codec *c, int kind, fill_fn fill, const void *ev,
                       ferry_avro_framing f, int32_t id, void **out, size_t *out_len,
                       ferry_error *err)
{
    const known *k = &c->known[c->rd[kind].known_idx];
    avro_value_t v;
    avro_writer_t w = NULL;
    unsigned char *buf = NULL;
    size_t size, hdr;
    ferry_rc rc = FERRY_OK;
    int have_v = 0;

    *out = NULL;
    *out_len = 0;
    if (!ev)
        return efail(err, FERRY_EC_INVALID_SPEC, "NULL event");
    if (f == FERRY_AVRO_CONFLUENT) {
        size_t i;
        for (i = 0; i < c->nids && c->ids[i].id != id; i++)
            ;
        if (i == c->nids)
            return efail(err, FERRY_EC_SCHEMA,
                         "Schema Registry id %d is not registered "
                         "with this codec (ferry_avro_codec_register_id)",
                         (int)id);
        if (c->ids[i].idx != c->rd[kind].known_idx)
            return efail(err, FERRY_EC_SCHEMA,
                         "Schema Registry id %d is not the current "
                         "%s schema",
                         (int)id, kind_names[kind]);
        hdr = FERRY_AVRO_CONFLUENT_HEADER;
    } else if (f == FERRY_AVRO_SINGLE_OBJECT) {
        hdr = FERRY_AVRO_SINGLE_OBJECT_HEADER;
    } else {
        return efail(err, FERRY_EC_INTERNAL, "unknown framing %d", (int)f);
    }

    if (avro_generic_value_new(k->iface, &v) != 0)
        return avro_fail(err, FERRY_EC_INTERNAL, "avro_generic_value_new");
    have_v = 1;
    if ((rc = fill(&v, ev, err)) != FERRY_OK)
        goto out;
    if (avro_value_sizeof(&v, &size) != 0) {
        rc = avro_fail(err, FERRY_EC_INTERNAL, "avro_value_sizeof");
        goto out;
    }
    if (size > FERRY_AVRO_MAX_EVENT_BYTES - hdr) {
        rc = efail(err, FERRY_EC_INVALID_SPEC, "event of %zu bytes exceeds the %d-byte limit",
                   size + hdr, FERRY_AVRO_MAX_EVENT_BYTES);
        goto out;
    }
    buf = malloc(hdr + size);
    if (!buf) {
        rc = oom(err);
        goto out;
    }
    if (f == FERRY_AVRO_CONFLUENT) {
        buf[0] = 0x00;
        buf[1] = (unsigned char)((uint32_t)id >> 24);
        buf[2] = (unsigned char)((uint32_t)id >> 16);
        buf[3] = (unsigned char)((uint32_t)id >> 8);
        buf[4] = (unsigned char)id;
    } else {
        buf[0] = 0xC3;
        buf[1] = 0x01;
        for (int i = 0; i < 8; i++)
            buf[2 + i] = (unsigned char)(k->fp >> (8 * i));
    }
    /* avro_writer_memory has a fixed size: hence avro_value_sizeof first. */
    w = avro_writer_memory((const char *)buf + hdr, (int64_t)size);
    if (!w) {
        rc = oom(err);
        goto out;
    }
    if (avro_value_write(w, &v) != 0) {
        rc = avro_fail(err, FERRY_EC_INTERNAL, "avro_value_write");
        goto out;
    }
    if (avro_writer_tell(w) != (int64_t)size) {
        rc = efail(err, FERRY_EC_INTERNAL, "avro-c wrote %lld bytes, sized %zu",
                   (long long)avro_writer_tell(w), size);
        goto out;
    }
    *out = buf;
    *out_len = hdr + size;
    buf = NULL;
out:
    if (w)
        avro_writer_free(w);
    free(buf);
    if (have_v)
        avro_value_decref(&v);
    return rc;
}

ferry_rc ferry_avro_encode_onboard(ferry_avro_codec *c, const ferry_onboard *ev,
                                   ferry_avro_framing f, int32_t id, void **out,
                                   size_t *out_len, ferry_error *err)
{
    return encode(c, FERRY_AVRO_EVENT_ONBOARD, fill_onboard_v, ev, f, id, out, out_len, err);
}

ferry_rc ferry_avro_encode_migrated(ferry_avro_codec *c, const ferry_migrated *ev,
                                    ferry_avro_framing f, int32_t id, void **out,
                                    size_t *out_len, ferry_error *err)
{
    return encode(c, FERRY_AVRO_EVENT_MIGRATED, fill_migrated_v, ev, f, id, out, out_len, err);
}
