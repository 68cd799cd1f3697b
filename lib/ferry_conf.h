/* ferry_conf: ferry's own settings in one table (name, type, default, bounds, doc) that
 * drives parsing, validation, --help and a secret-redacting dump. librdkafka settings are
 * not re-modelled: `kafka.<prop>` keys and unknown `-X` keys pass through verbatim.
 *
 * Sources, later wins: defaults < --config file < FERRY_* environment < command line.
 * A ferry_conf is built by main() and then treated as immutable; pass it explicitly. */
#ifndef FERRY_CONF_H
#define FERRY_CONF_H

#include <stdio.h>

typedef enum { FERRY_CONF_STR, FERRY_CONF_INT, FERRY_CONF_BOOL } ferry_conf_type;

typedef struct ferry_conf_def {
    const char *name; /* "redis.url"; env name is FERRY_ + upper(name) with . -> _ */
    ferry_conf_type type;
    const char *def;    /* default as text; NULL = unset */
    long long min, max; /* bounds for INT */
    int secret;         /* redacted in dumps */
    const char *doc;
} ferry_conf_def;

typedef struct ferry_conf ferry_conf;

/* Settings every program has (brokers, topics, redis, s3, log). */
extern const ferry_conf_def ferry_conf_common_defs[];

/* prog_defs: the program's own table, terminated by {NULL}; may be NULL. */
ferry_conf *ferry_conf_new(const ferry_conf_def *prog_defs);
void ferry_conf_destroy(ferry_conf *c);

/* Sets a ferry key, or a librdkafka property if `key` is `kafka.<prop>` or `passthrough`
 * is set and the key is not one of ferry's. Returns 0, or -1 with errstr filled. */
int ferry_conf_set(ferry_conf *c, const char *key, const char *value, int passthrough,
                   char *errstr, size_t errstr_size);
/* key=value lines; '#' comments; blank lines ignored. */
int ferry_conf_load_file(ferry_conf *c, const char *path, char *errstr, size_t errstr_size);
/* Every FERRY_<KEY> variable naming a known key. */
int ferry_conf_load_env(ferry_conf *c, char *errstr, size_t errstr_size);

/* Getters never fail for keys in the tables (abort() on a typo'd name: a programming error). */
const char *ferry_conf_str(const ferry_conf *c, const char *key); /* NULL if unset */
long long ferry_conf_int(const ferry_conf *c, const char *key);
int ferry_conf_bool(const ferry_conf *c, const char *key);

/* librdkafka pass-through properties, in the order they were set. */
typedef void (*ferry_conf_kafka_cb)(const char *prop, const char *value, void *opaque);
void ferry_conf_kafka_foreach(const ferry_conf *c, ferry_conf_kafka_cb cb, void *opaque);

/* 1 if key is one of ferry's secret settings (never accepted on the command line). */
int ferry_conf_is_secret(const ferry_conf *c, const char *key);
/* 1 if this value of key holds a secret: any value of a secret setting, except for a URL
 * setting (redis.url), whose value is secret only when it carries credentials (user@). */
int ferry_conf_value_is_secret(const ferry_conf *c, const char *key, const char *value);
/* The environment variable that sets key: redis.url -> FERRY_REDIS_URL. */
void ferry_conf_env_name(const char *key, char *out, size_t size);
/* 1 if key is one of ferry's declared settings (not a librdkafka pass-through). */
int ferry_conf_is_declared(const ferry_conf *c, const char *key);
/* 1 if a librdkafka property name looks like a secret (sasl.password, ssl.key.password,
 * ...): redacted by ferry_conf_dump and refused on the command line. */
int ferry_conf_kafka_prop_is_secret(const char *prop);

void ferry_conf_dump(const ferry_conf *c, FILE *fp); /* secrets redacted */
void ferry_conf_help(const ferry_conf_def *prog_defs, FILE *fp);

#endif
