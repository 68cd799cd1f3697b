#include "ferry_conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

const ferry_conf_def ferry_conf_common_defs[] = {
    {"kafka.brokers", FERRY_CONF_STR, "127.0.0.1:9092", 0, 0, 0,
     "Kafka bootstrap servers (librdkafka bootstrap.servers)"},
    /* The security properties are declared (not only passed through) so that they have
     * FERRY_KAFKA_* environment names and the password can come from a file. */
    {"kafka.security.protocol", FERRY_CONF_STR, NULL, 0, 0, 0,
     "librdkafka security.protocol: plaintext, ssl, sasl_plaintext or sasl_ssl"},
    {"kafka.sasl.mechanism", FERRY_CONF_STR, NULL, 0, 0, 0,
     "librdkafka sasl.mechanism, e.g. SCRAM-SHA-512"},
    {"kafka.sasl.username", FERRY_CONF_STR, NULL, 0, 0, 0, "librdkafka sasl.username"},
    {"kafka.sasl.password_file", FERRY_CONF_STR, NULL, 0, 0, 0,
     "File holding the SASL password (passed to librdkafka as sasl.password)"},
    {"kafka.ssl.ca.location", FERRY_CONF_STR, NULL, 0, 0, 0,
     "CA file that verifies the brokers' certificates (librdkafka ssl.ca.location)"},
    {"topic.onboard", FERRY_CONF_STR, "ferry.dataset.onboard", 0, 0, 0,
     "Topic carrying DatasetOnboard events"},
    {"topic.dlq", FERRY_CONF_STR, "ferry.dataset.onboard.dlq", 0, 0, 0,
     "Dead-letter topic for events that cannot be processed"},
    {"topic.chunks", FERRY_CONF_STR, "ferry.dataset.chunk", 0, 0, 0,
     "Topic carrying the chunk events of datasets split across the fleet"},
    {"topic.migrated", FERRY_CONF_STR, "ferry.dataset.migrated", 0, 0, 0,
     "Topic receiving DatasetMigrated notifications"},
    {"redis.url", FERRY_CONF_STR, "redis://127.0.0.1:6379", 0, 0, 1,
     "Redis URL redis://[user[:password]@]host:port[/db]"},
    {"redis.password_file", FERRY_CONF_STR, NULL, 0, 0, 0,
     "File holding the Redis password (overrides a password in redis.url)"},
    {"s3.endpoint", FERRY_CONF_STR, "https://s3.amazonaws.com", 0, 0, 0,
     "S3 endpoint URL (http:// or https://)"},
    {"s3.region", FERRY_CONF_STR, "us-east-1", 0, 0, 0, "Region used for request signing"},
    {"s3.path_style", FERRY_CONF_BOOL, "true", 0, 0, 0,
     "Path-style URLs (endpoint/bucket/key) instead of virtual-hosted"},
    {"s3.credentials_file", FERRY_CONF_STR, NULL, 0, 0, 0,
     "AWS shared credentials file; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY win if set"},
    {"s3.profile", FERRY_CONF_STR, "default", 0, 0, 0, "Profile in s3.credentials_file"},
    {"s3.ca_file", FERRY_CONF_STR, NULL, 0, 0, 0, "CA bundle for https endpoints"},
    {"s3.backend", FERRY_CONF_STR, "sigv4", 0, 0, 0,
     "sigv4 (libcurl, AWS Signature V4) or libs3 (Signature V2, for V2-only stores)"},
    {"s3.insecure_tls_ok", FERRY_CONF_BOOL, "false", 0, 0, 0,
     "Allow the libs3 backend over https although it does not verify certificates"},
    {"s3.target.endpoint", FERRY_CONF_STR, NULL, 0, 0, 0,
     "Target S3 endpoint when it differs from s3.endpoint (objects are then streamed)"},
    {"s3.target.region", FERRY_CONF_STR, NULL, 0, 0, 0,
     "Target signing region (default s3.region)"},
    {"s3.target.credentials_file", FERRY_CONF_STR, NULL, 0, 0, 0,
     "Credentials file for the target (default: the source credentials)"},
    {"s3.target.profile", FERRY_CONF_STR, "default", 0, 0, 0,
     "Profile in s3.target.credentials_file"},
    {"s3.target.access_key_id", FERRY_CONF_STR, NULL, 0, 0, 1,
     "Target access key (env or config file only)"},
    {"s3.target.secret_access_key", FERRY_CONF_STR, NULL, 0, 0, 1,
     "Target secret key (env or config file only)"},
    {"s3.target.session_token", FERRY_CONF_STR, NULL, 0, 0, 1,
     "Target session token (env or config file only)"},
    {"s3.timeout_ms", FERRY_CONF_INT, "30000", 1000, 3600000, 0,
     "Abort an S3 request that made no progress for this long"},
    {"log.level", FERRY_CONF_STR, "info", 0, 0, 0, "debug, info, warn or error"},
    {"log.format", FERRY_CONF_STR, "auto", 0, 0, 0,
     "json, text, or auto (text on a terminal, json otherwise)"},
    {NULL, 0, NULL, 0, 0, 0, NULL},
};

typedef struct entry {
    const ferry_conf_def *def;
    char *value; /* owned; NULL = unset */
} entry;

typedef struct kv {
    char *key, *value;
} kv;

struct ferry_conf {
    entry *entries;
    size_t n_entries;
    kv *kafka;
    size_t n_kafka, cap_kafka;
};

static void add_defs(ferry_conf *c, const ferry_conf_def *defs, size_t *i)
{
    for (; defs && defs->name; defs++) {
        c->entries[*i].def = defs;
        c->entries[*i].value = defs->def ? strdup(defs->def) : NULL;
        (*i)++;
    }
}

static size_t count_defs(const ferry_conf_def *defs)
{
    size_t n = 0;
    while (defs && defs[n].name)
        n++;
    return n;
}

ferry_conf *ferry_conf_new(const ferry_conf_def *prog_defs)
{
    ferry_conf *c = calloc(1, sizeof(*c));
    size_t i = 0;

    if (!c)
        return NULL;
    c->n_entries = count_defs(ferry_conf_common_defs) + count_defs(prog_defs);
    c->entries = calloc(c->n_entries, sizeof(*c->entries));
    if (!c->entries) {
        free(c);
        return NULL;
    }
    add_defs(c, ferry_conf_common_defs, &i);
    add_defs(c, prog_defs, &i);
    return c;
}

void ferry_conf_destroy(ferry_conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_entries; i++)
        free(c->entries[i].value);
    for (size_t i = 0; i < c->n_kafka; i++) {
        free(c->kafka[i].key);
        free(c->kafka[i].value);
    }
    free(c->entries);
    free(c->kafka);
    free(c);
}

static entry *find(const ferry_conf *c, const char *key)
{
    for (size_t i = 0; i < c->n_entries; i++)
        if (strcmp(c->entries[i].def->name, key) == 0)
            return &c->entries[i];
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
             !strcasecmp(v, "off"))
        *out = 0;
    else
        return -1;
    return 0;
}

static int parse_int(const char *v, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return -1;
    return 0;
}

static int kafka_set(ferry_conf *c, const char *prop, const char *value)
{
    for (size_t i = 0; i < c->n_kafka; i++)
        if (strcmp(c->kafka[i].key, prop) == 0) {
            char *v = strdup(value);
            if (!v)
                return -1;
            free(c->kafka[i].value);
            c->kafka[i].value = v;
            return 0;
        }
    if (c->n_kafka == c->cap_kafka) {
        size_t cap = c->cap_kafka ? c->cap_kafka * 2 : 8;
        kv *n = realloc(c->kafka, cap * sizeof(*n));
        if (!n)
            return -1;
        c->kafka = n;
        c->cap_kafka = cap;
    }
    c->kafka[c->n_kafka].key = strdup(prop);
    c->kafka[c->n_kafka].value = strdup(value);
    if (!c->kafka[c->n_kafka].key || !c->kafka[c->n_kafka].value) {
        free(c->kafka[c->n_kafka].key);
        free(c->kafka[c->n_kafka].value);
        return -1;
    }
    c->n_kafka++;
    return 0;
}

int ferry_conf_set(ferry_conf *c, const char *key, const char *value, int passthrough,
                   char *errstr, size_t errstr_size)
{
    entry *e = find(c, key);
    char *copy;

    if (!e) {
        if (strncmp(key, "kafka.", 6) == 0 && key[6])
            key += 6;
        else if (!passthrough) {
            snprintf(errstr, errstr_size, "unknown setting \"%s\" (see --help)", key);
            return -1;
        }
        if (kafka_set(c, key, value) != 0) {
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
        return 0;
    }
    if (e->def->type == FERRY_CONF_INT) {
        long long v;
        if (parse_int(value, &v) != 0) {
            snprintf(errstr, errstr_size, "%s: \"%s\" is not an integer", key, value);
            return -1;
        }
        if (v < e->def->min || v > e->def->max) {
            snprintf(errstr, errstr_size, "%s: %lld is out of range [%lld, %lld]", key, v,
                     e->def->min, e->def->max);
            return -1;
        }
    } else if (e->def->type == FERRY_CONF_BOOL) {
        int b;
        if (parse_bool(value, &b) != 0) {
            snprintf(errstr, errstr_size, "%s: \"%s\" is not a boolean (true/false)", key,
                     value);
            return -1;
        }
    }
    copy = strdup(value);
    if (!copy) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    free(e->value);
    e->value = copy;
    return 0;
}

static char *trim(char *s)
{
    char *end;
    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

int ferry_conf_load_file(ferry_conf *c, const char *path, char *errstr, size_t errstr_size)
{
    FILE *fp = fopen(path, "r");
    char line[4096], sub[512];
    int lineno = 0, rc = 0;

    if (!fp) {
        snprintf(errstr, errstr_size, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), fp)) {
        char *p, *eq, *key, *val;
        lineno++;
        if (!strchr(line, '\n') && !feof(fp)) {
            snprintf(errstr, errstr_size, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        p = trim(line);
        if (!*p || *p == '#')
            continue;
        eq = strchr(p, '=');
        if (!eq) {
            snprintf(errstr, errstr_size, "%s:%d: expected key=value", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        key = trim(p);
        val = trim(eq + 1);
        if (ferry_conf_set(c, key, val, 0, sub, sizeof(sub)) != 0) {
            snprintf(errstr, errstr_size, "%s:%d: %s", path, lineno, sub);
            rc = -1;
            break;
        }
    }
    fclose(fp);
    return rc;
}

static void env_name(const char *key, char *out, size_t size)
{
    size_t o = snprintf(out, size, "FERRY_");
    for (; *key && o + 1 < size; key++)
        out[o++] = *key == '.' ? '_' : (char)toupper((unsigned char)*key);
    out[o] = '\0';
}

int ferry_conf_load_env(ferry_conf *c, char *errstr, size_t errstr_size)
{
    char name[128], sub[512];
    for (size_t i = 0; i < c->n_entries; i++) {
        const char *v;
        env_name(c->entries[i].def->name, name, sizeof(name));
        v = getenv(name);
        if (!v)
            continue;
        if (ferry_conf_set(c, c->entries[i].def->name, v, 0, sub, sizeof(sub)) != 0) {
            snprintf(errstr, errstr_size, "environment %s: %s", name, sub);
            return -1;
        }
    }
    return 0;
}

static const entry *must_find(const ferry_conf *c, const char *key, ferry_conf_type type)
{
    const entry *e = find(c, key);
    if (!e || e->def->type != type) {
        fprintf(stderr, "BUG: config key %s not declared with that type\n", key);
        abort();
    }
    return e;
}

int ferry_conf_is_declared(const ferry_conf *c, const char *key)
{
    return find(c, key) != NULL;
}

int ferry_conf_is_secret(const ferry_conf *c, const char *key)
{
    const entry *e = find(c, key);
    return e && e->def->secret;
}

/* scheme://user:password@host/...: the '@' before the path is what carries them. */
static int url_has_userinfo(const char *url)
{
    const char *auth = strstr(url, "://");
    size_t n;

    auth = auth ? auth + 3 : url;
    n = strcspn(auth, "/?#");
    return memchr(auth, '@', n) != NULL;
}

int ferry_conf_value_is_secret(const ferry_conf *c, const char *key, const char *value)
{
    size_t n = strlen(key);

    if (!ferry_conf_is_secret(c, key))
        return 0;
    if (n > 4 && !strcmp(key + n - 4, ".url"))
        return value && url_has_userinfo(value);
    return 1;
}

void ferry_conf_env_name(const char *key, char *out, size_t size) { env_name(key, out, size); }

const char *ferry_conf_str(const ferry_conf *c, const char *key)
{
    const entry *e = must_find(c, key, FERRY_CONF_STR);
    return e->value && *e->value ? e->value : NULL;
}

long long ferry_conf_int(const ferry_conf *c, const char *key)
{
    const entry *e = must_find(c, key, FERRY_CONF_INT);
    long long v = 0;
    if (e->value)
        parse_int(e->value, &v); /* validated by ferry_conf_set */
    return v;
}

int ferry_conf_bool(const ferry_conf *c, const char *key)
{
    const entry *e = must_find(c, key, FERRY_CONF_BOOL);
    int b = 0;
    if (e->value)
        parse_bool(e->value, &b);
    return b;
}

void ferry_conf_kafka_foreach(const ferry_conf *c, ferry_conf_kafka_cb cb, void *opaque)
{
    for (size_t i = 0; i < c->n_kafka; i++)
        cb(c->kafka[i].key, c->kafka[i].value, opaque);
}

int ferry_conf_kafka_prop_is_secret(const char *prop)
{
    return strstr(prop, "password") || strstr(prop, "secret") || strstr(prop, "token") ||
           strstr(prop, "key.pem") || strstr(prop, "sasl.jaas");
}

void ferry_conf_dump(const ferry_conf *c, FILE *fp)
{
    for (size_t i = 0; i < c->n_entries; i++) {
        const entry *e = &c->entries[i];
        fprintf(fp, "%s=%s\n", e->def->name,
                !e->value        ? ""
                : e->def->secret ? "[redacted]"
                                 : e->value);
    }
    for (size_t i = 0; i < c->n_kafka; i++)
        fprintf(fp, "kafka.%s=%s\n", c->kafka[i].key,
                ferry_conf_kafka_prop_is_secret(c->kafka[i].key) ? "[redacted]"
                                                                 : c->kafka[i].value);
}

static void help_defs(const ferry_conf_def *d, FILE *fp)
{
    char name[128];
    for (; d && d->name; d++) {
        env_name(d->name, name, sizeof(name));
        fprintf(fp, "  %-26s %s\n  %-26s (env %s%s%s)\n", d->name, d->doc, "", name,
                d->def ? ", default " : "", d->def ? d->def : "");
    }
}

void ferry_conf_help(const ferry_conf_def *prog_defs, FILE *fp)
{
    fprintf(fp, "Settings (--config FILE lines, FERRY_* environment, or -X key=value):\n");
    help_defs(prog_defs, fp);
    help_defs(ferry_conf_common_defs, fp);
    fprintf(fp, "  kafka.<property>           any librdkafka property, passed through "
                "(also -X <property>=value)\n");
}
